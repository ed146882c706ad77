#pragma once
// TCP for one worker: an SO_REUSEPORT acceptor per SIP listener and the connections this
// worker accepted or opened. A connection is only touched by its worker; other workers
// reach it through the worker's inbox (FlowId = {worker, conn_id}).
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/base/result.h"
#include "core/event/worker.h"
#include "core/sip/message.h"
#include "transport/tcp/connection_limiter.h"

namespace palisade::transport {

struct TcpSettings {
  sip::Limits limits;
  std::uint32_t idle_timeout_s = 600;
  std::uint32_t max_connections = 4096;
  std::uint32_t max_connections_per_ip = 32;
};

class TcpTransport {
 public:
  TcpTransport(event::Worker& worker, event::Dispatcher& dispatcher, ConnectionLimiter& limiter,
               const TcpSettings& settings);
  ~TcpTransport();
  base::Result<bool> listen(net::Side side, const boost::asio::ip::address& address, std::uint16_t port);
  void start();
  void close();
  void setSettings(const TcpSettings& settings) { settings_ = settings; }
  // On this worker: writes on the flow's connection, or on a connection to flow.remote
  // (opened on demand) when flow.conn_id is 0.
  void send(const net::Flow& flow, std::string&& bytes);

 private:
  struct Connection;
  struct Acceptor {
    net::Side side;
    boost::asio::ip::tcp::acceptor acceptor;
  };
  void accept(Acceptor& acceptor);
  Connection& adopt(boost::asio::ip::tcp::socket socket, net::Side side, const net::Endpoint& remote);
  void read(Connection& conn);
  void write(Connection& conn);
  void processBuffer(Connection& conn);
  void armIdle(Connection& conn);
  void closeConnection(std::uint32_t id);

  event::Worker& worker_;
  event::Dispatcher& dispatcher_;
  ConnectionLimiter& limiter_;
  TcpSettings settings_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::unordered_map<std::uint32_t, std::unique_ptr<Connection>> connections_;
  std::map<std::pair<int, std::string>, std::uint32_t> outbound_;  // (side, remote) -> conn
  std::uint32_t next_id_ = 1;
};

}  // namespace palisade::transport
