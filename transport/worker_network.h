#pragma once
// The transports of one worker behind net::Network: a UDP socket per listener side and the
// worker's TCP and TLS connections. A stream send for a connection owned by another worker is
// handed to that worker through its inbox. What the transports receive goes up to a
// net::Receiver.
#include <memory>
#include <vector>

#include "core/config/config.h"
#include "core/event/worker.h"
#include "core/net/endpoint.h"
#include "core/stats/metrics.h"
#include "policy/api/filters.h"
#include "transport/tcp/tcp_transport.h"
#include "transport/udp/udp_listener.h"

namespace palisade::transport {

sip::Limits limitsOf(const config::Config& config);
StreamSettings streamSettingsOf(const config::Config& config);

// Fails when another process already holds `port` (for UDP or TCP) on `address`. Worker
// sockets share ports through SO_REUSEPORT, which would otherwise let a second daemon (or a
// stale one) silently take part of the traffic; run once before the workers bind.
base::Result<bool> checkPortFree(const boost::asio::ip::address& address, std::uint16_t port, bool tcp);
base::Result<bool> checkListenersFree(const config::StartupSettings& startup);

class WorkerNetwork final : public net::Network {
 public:
  WorkerNetwork(event::Worker& worker, net::Receiver& receiver, policy::PacketFilter* filter,
                stats::Shard& stats, ConnectionLimiter& limiter, ConnectionLimiter& tls_limiter,
                const config::Config& config);
  // Before start: every worker's network, by worker index (immutable afterwards).
  void setPeers(std::vector<WorkerNetwork*> peers) { peers_ = std::move(peers); }
  // Binds every listener of `startup`; the error names the address that failed.
  base::Result<bool> open(const config::StartupSettings& startup);
  void start();
  void close();
  // On the worker (draining for shutdown): the public TCP and TLS listeners close; UDP, the
  // PBX-facing listeners (the PBX may need a new connection to end a call) and open
  // connections stay.
  void stopAccepting() { tcp_.stopAccepting(net::Side::Public); }
  // Reload, on the worker: new limits for framing and TCP (listen addresses need a restart).
  void applyConfig(const config::Config& config);
  // On the worker: the TLS contexts for new handshakes (see TcpTransport::setTls).
  void setTls(std::shared_ptr<const certs::TlsContexts> contexts,
              std::map<std::string, std::string> peer_names) {
    tcp_.setTls(std::move(contexts), std::move(peer_names));
  }
  std::uint16_t localPort(net::Side side, net::Transport transport) const;

  void send(const net::Flow& flow, std::string&& bytes) override;

 private:
  event::Worker& worker_;
  stats::Shard& stats_;
  UdpListener udp_[2];
  TcpTransport tcp_;
  std::vector<WorkerNetwork*> peers_;
};

}  // namespace palisade::transport
