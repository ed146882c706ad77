#pragma once
// TCP and TLS for one worker: an SO_REUSEPORT acceptor per SIP listener (TCP or TLS) and the
// connections this worker accepted or opened (StreamConnection). A connection is only
// touched by its worker; other workers reach it through the worker's inbox (its Flow names
// {worker, conn_id}). Accepting backs off when the process runs out of descriptors instead of
// spinning on EMFILE. The packet filter sees every new connection before anything else (a
// banned source never gets a TLS handshake) and every framed message. A TLS handshake is
// bounded in time and in number (per source and in total, per worker); a trunk that requires
// mutual TLS must present a certificate from its CA carrying one of its names.
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "certs/cert_store.h"
#include "core/base/owner_thread.h"
#include "core/base/result.h"
#include "core/net/endpoint.h"
#include "core/stats/metrics.h"
#include "policy/api/filters.h"
#include "transport/stream/stream_connection.h"
#include "transport/tcp/connection_limiter.h"

namespace palisade::transport {

class TcpTransport {
 public:
  static constexpr std::chrono::milliseconds kAcceptBackoff{100};

  TcpTransport(boost::asio::io_context& io, std::uint16_t worker_index, net::Receiver& receiver,
               policy::PacketFilter* filter, stats::Shard& stats, ConnectionLimiter& limiter,
               ConnectionLimiter& tls_limiter, const StreamSettings& settings);
  ~TcpTransport();
  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  // Set-up (before the worker runs). `port` 0 binds an ephemeral port (tests).
  base::Result<bool> listen(net::Side side, const boost::asio::ip::address& address, std::uint16_t port,
                            net::Transport transport = net::Transport::Tcp);
  std::uint16_t localPort(net::Side side, net::Transport transport = net::Transport::Tcp) const;
  void start();
  // On the worker, or once it has stopped.
  void close();
  // On the worker: no new connections on `side`'s listener; open ones go on.
  void stopAccepting(net::Side side);
  // On the worker: new limits and timeouts (existing connections pick them up).
  void setSettings(const StreamSettings& settings);
  // On the worker (or before it runs): the TLS contexts for new handshakes, and the names the
  // configured TLS peers' certificates must carry, by "address:port". Open connections keep
  // the contexts they began with.
  void setTls(std::shared_ptr<const certs::TlsContexts> contexts,
              std::map<std::string, std::string> peer_names);
  // On the worker: writes on the flow's connection, or on a connection to flow.remote
  // (opened on demand) when flow.conn_id is 0.
  void send(const net::Flow& flow, std::string&& bytes);
  std::size_t connectionCount() const { return connections_.size(); }

 private:
  using Connection = StreamConnection;
  struct Acceptor {
    Acceptor(boost::asio::io_context& io, net::Side s, net::Transport t)
        : side(s), transport(t), acceptor(io), backoff(io) {}
    net::Side side;
    net::Transport transport;
    boost::asio::ip::tcp::acceptor acceptor;
    boost::asio::steady_timer backoff;
  };
  void accept(Acceptor& acceptor);
  void closeAcceptor(Acceptor& acceptor);
  void onAccepted(Acceptor& acceptor, boost::asio::ip::tcp::socket socket);
  std::shared_ptr<Connection> adopt(boost::asio::ip::tcp::socket socket, const net::Flow& flow,
                                    bool outbound);
  Connection* connectTo(const net::Flow& flow, const net::Endpoint& peer, bool reconnect);
  void onConnected(Connection& conn, bool reconnect);
  // TLS on an accepted connection: the handshake, then (mutual TLS) the client's certificate.
  void secureAccepted(const std::shared_ptr<Connection>& conn);
  void onAcceptedHandshake(Connection& conn, bool ok, const certs::ClientAuth* rule);
  void releaseHandshake(Connection& conn);
  // A connection's slots: the total and per-address limits every stream connection shares
  // (the descriptor budget), and for TLS the per-address TLS limit too.
  bool acquireSlot(const net::Flow& flow, bool* over_per_ip = nullptr);
  void releaseSlot(const net::Flow& flow);
  void forget(Connection& conn);

  base::OwnerThread owner_;
  boost::asio::io_context& io_;
  std::uint16_t worker_index_;
  stats::Shard& stats_;
  ConnectionLimiter& limiter_;
  ConnectionLimiter& tls_limiter_;
  ConnectionLimiter handshakes_;  // this worker's TLS handshakes in progress
  std::shared_ptr<const certs::TlsContexts> tls_;
  std::map<std::string, std::string> tls_peer_names_;
  StreamSettings settings_;
  StreamContext context_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::unordered_map<std::uint32_t, std::shared_ptr<Connection>> connections_;
  // (side, transport, remote) -> conn
  std::map<std::tuple<int, int, std::string>, std::uint32_t> outbound_;
  std::uint32_t next_id_ = 1;
  std::chrono::steady_clock::time_point last_backoff_log_{};
};

}  // namespace palisade::transport
