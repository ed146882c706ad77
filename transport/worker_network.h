#pragma once
// The transports of one worker behind net::Network: UDP sockets per listener side and the
// worker's TCP connections. A TCP send for a connection owned by another worker is handed to
// that worker through its inbox.
#include <memory>

#include "core/config/config.h"
#include "core/event/worker.h"
#include "transport/tcp/tcp_transport.h"
#include "transport/udp/udp_listener.h"

namespace palisade::transport {

sip::Limits limitsOf(const config::Config& config);
TcpSettings tcpSettingsOf(const config::Config& config);

// Fails when another process already holds `port` (for UDP or TCP) on `address`. Worker
// sockets share ports through SO_REUSEPORT, which would otherwise let a second daemon (or a
// stale one) silently take part of the traffic; run once before the workers bind.
base::Result<bool> checkPortFree(const boost::asio::ip::address& address, std::uint16_t port, bool tcp);
base::Result<bool> checkListenersFree(const config::Config& config);

class WorkerNetwork final : public net::Network {
 public:
  WorkerNetwork(event::Worker& worker, event::Dispatcher& dispatcher, ConnectionLimiter& limiter,
                const config::Config& config);
  // Binds every listener of `config`; the error names the address that failed.
  base::Result<bool> open(const config::Config& config);
  void start();
  void close();
  // Reload: new limits for framing and TCP (listen addresses need a restart).
  void applyConfig(const config::Config& config);

  void send(const net::Flow& flow, std::string&& bytes) override;

 private:
  event::Worker& worker_;
  event::Dispatcher& dispatcher_;
  UdpListener udp_[2];
  TcpTransport tcp_;
};

}  // namespace palisade::transport
