#pragma once
// TCP for one worker: an SO_REUSEPORT acceptor per SIP listener and the connections this
// worker accepted or opened (StreamConnection over a TCP socket). A connection is only
// touched by its worker; other workers reach it through the worker's inbox (its Flow names
// {worker, conn_id}). Accepting backs off when the process runs out of descriptors instead of
// spinning on EMFILE. The packet filter sees every new connection and every framed message.
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

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
               const StreamSettings& settings);
  ~TcpTransport();
  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  // Set-up (before the worker runs). `port` 0 binds an ephemeral port (tests).
  base::Result<bool> listen(net::Side side, const boost::asio::ip::address& address, std::uint16_t port);
  std::uint16_t localPort(net::Side side) const;
  void start();
  // On the worker, or once it has stopped.
  void close();
  // On the worker: no new connections on `side`'s listener; open ones go on.
  void stopAccepting(net::Side side);
  // On the worker: new limits and timeouts (existing connections pick them up).
  void setSettings(const StreamSettings& settings);
  // On the worker: writes on the flow's connection, or on a connection to flow.remote
  // (opened on demand) when flow.conn_id is 0.
  void send(const net::Flow& flow, std::string&& bytes);
  std::size_t connectionCount() const { return connections_.size(); }

 private:
  using Connection = StreamConnection<boost::asio::ip::tcp::socket>;
  struct Acceptor {
    Acceptor(boost::asio::io_context& io, net::Side s) : side(s), acceptor(io), backoff(io) {}
    net::Side side;
    boost::asio::ip::tcp::acceptor acceptor;
    boost::asio::steady_timer backoff;
  };
  void accept(Acceptor& acceptor);
  void closeAcceptor(Acceptor& acceptor);
  void onAccepted(Acceptor& acceptor, boost::asio::ip::tcp::socket socket);
  std::shared_ptr<Connection> adopt(boost::asio::ip::tcp::socket socket, const net::Flow& flow,
                                    bool outbound);
  Connection* connectTo(const net::Flow& flow, const net::Endpoint& peer, bool reconnect);
  void forget(StreamConnectionBase& conn);

  base::OwnerThread owner_;
  boost::asio::io_context& io_;
  std::uint16_t worker_index_;
  stats::Shard& stats_;
  ConnectionLimiter& limiter_;
  StreamSettings settings_;
  StreamContext context_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::unordered_map<std::uint32_t, std::shared_ptr<Connection>> connections_;
  std::map<std::pair<int, std::string>, std::uint32_t> outbound_;  // (side, remote) -> conn
  std::uint32_t next_id_ = 1;
  std::chrono::steady_clock::time_point last_backoff_log_{};
};

}  // namespace palisade::transport
