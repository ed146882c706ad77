#include "transport/tcp/tcp_transport.h"

#include <array>

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "core/base/log.h"

namespace palisade::transport {

using stats::Counter;
using stats::Gauge;

struct TcpTransport::Connection {
  Connection(boost::asio::io_context& io, boost::asio::ip::tcp::socket s) : socket(std::move(s)), idle(io) {}
  std::uint32_t id = 0;
  net::Side side = net::Side::Public;
  net::Endpoint remote;
  boost::asio::ip::tcp::socket socket;
  boost::asio::steady_timer idle;
  std::string buffer;
  std::array<char, 16384> chunk{};
  std::deque<std::string> queue;
  bool writing = false;
  bool connected = true;
  bool closing = false;
  bool outbound = false;
  bool counted = false;
};

TcpTransport::TcpTransport(event::Worker& worker, event::Dispatcher& dispatcher, ConnectionLimiter& limiter,
                           const TcpSettings& settings)
    : worker_(worker), dispatcher_(dispatcher), limiter_(limiter), settings_(settings) {}

TcpTransport::~TcpTransport() {
  for (auto& [id, conn] : connections_) {
    if (conn->counted) limiter_.release(conn->remote.address);
  }
}

base::Result<bool> TcpTransport::listen(net::Side side, const boost::asio::ip::address& address,
                                        std::uint16_t port) {
  auto acceptor = std::make_unique<Acceptor>(Acceptor{side, boost::asio::ip::tcp::acceptor(worker_.io())});
  boost::system::error_code ec;
  boost::asio::ip::tcp::endpoint endpoint(address, port);
  acceptor->acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    int one = 1;
    ::setsockopt(acceptor->acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    acceptor->acceptor.set_option(boost::asio::socket_base::reuse_address(true), ec);
    acceptor->acceptor.bind(endpoint, ec);
  }
  if (!ec) acceptor->acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) return base::Error{fmt::format("tcp {}:{}: {}", address.to_string(), port, ec.message())};
  acceptors_.push_back(std::move(acceptor));
  return true;
}

void TcpTransport::start() {
  for (auto& acceptor : acceptors_) accept(*acceptor);
}

void TcpTransport::close() {
  for (auto& acceptor : acceptors_) {
    boost::system::error_code ec;
    acceptor->acceptor.close(ec);
  }
  std::vector<std::uint32_t> ids;
  for (auto& [id, conn] : connections_) ids.push_back(id);
  for (auto id : ids) closeConnection(id);
}

void TcpTransport::accept(Acceptor& acceptor) {
  acceptor.acceptor.async_accept(
      [this, &acceptor](const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket) {
        if (ec == boost::asio::error::operation_aborted || !acceptor.acceptor.is_open()) return;
        if (!ec) {
          boost::system::error_code peer_ec;
          auto peer = socket.remote_endpoint(peer_ec);
          if (!peer_ec) {
            net::Endpoint remote{peer.address(), peer.port()};
            net::Flow probe{acceptor.side, net::Transport::Tcp, remote, 0,
                            static_cast<std::uint16_t>(worker_.index())};
            if (worker_.sourceFilter() != nullptr && !worker_.sourceFilter()->allowSource(probe)) {
              worker_.stats().add(Counter::DroppedUntrusted);
            } else if (!limiter_.acquire(remote.address, settings_.max_connections,
                                         settings_.max_connections_per_ip)) {
              worker_.stats().add(Counter::TcpConnectionsRefused);
            } else {
              Connection& conn = adopt(std::move(socket), acceptor.side, remote);
              conn.counted = true;
              worker_.stats().add(Counter::TcpConnectionsAccepted);
              read(conn);
            }
          }
        }
        accept(acceptor);
      });
}

TcpTransport::Connection& TcpTransport::adopt(boost::asio::ip::tcp::socket socket, net::Side side,
                                              const net::Endpoint& remote) {
  auto conn = std::make_unique<Connection>(worker_.io(), std::move(socket));
  conn->id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  conn->side = side;
  conn->remote = remote;
  Connection& ref = *conn;
  connections_.emplace(ref.id, std::move(conn));
  worker_.stats().adjust(Gauge::TcpConnections, 1);
  armIdle(ref);
  return ref;
}

void TcpTransport::armIdle(Connection& conn) {
  conn.idle.expires_after(std::chrono::seconds(settings_.idle_timeout_s));
  std::uint32_t id = conn.id;
  conn.idle.async_wait([this, id](const boost::system::error_code& ec) {
    if (ec) return;
    LOG_DEBUG("tcp connection {} idle, closing", id);
    closeConnection(id);
  });
}

void TcpTransport::read(Connection& conn) {
  std::uint32_t id = conn.id;
  conn.socket.async_read_some(boost::asio::buffer(conn.chunk),
                              [this, id](const boost::system::error_code& ec, std::size_t size) {
                                auto it = connections_.find(id);
                                if (it == connections_.end() || it->second->closing) return;
                                Connection& c = *it->second;
                                if (ec) {
                                  closeConnection(id);
                                  return;
                                }
                                c.buffer.append(c.chunk.data(), size);
                                armIdle(c);
                                processBuffer(c);
                                if (connections_.count(id) != 0 && !c.closing) read(c);
                              });
}

void TcpTransport::processBuffer(Connection& conn) {
  sip::StreamFramer framer(settings_.limits);
  std::size_t consumed = 0;
  for (;;) {
    std::string_view pending(conn.buffer.data() + consumed, conn.buffer.size() - consumed);
    if (pending.empty()) break;
    sip::StreamFramer::Result frame = framer.next(pending);
    if (frame.status == sip::StreamFramer::Status::NeedMore) break;
    if (frame.status == sip::StreamFramer::Status::KeepAlive) {
      // RFC 5626 §3.5.1: a double-CRLF ping gets a single-CRLF pong.
      if (frame.length >= 4 && pending.substr(0, 4) == "\r\n\r\n")
        send(net::Flow{conn.side, net::Transport::Tcp, conn.remote, conn.id,
                       static_cast<std::uint16_t>(worker_.index())},
             "\r\n");
      consumed += frame.length;
      continue;
    }
    net::Flow flow{conn.side, net::Transport::Tcp, conn.remote, conn.id,
                   static_cast<std::uint16_t>(worker_.index())};
    if (frame.status == sip::StreamFramer::Status::Error) {
      // Unrecoverable framing error (RFC 3261 §18.3): answer if we can, then close.
      worker_.stats().add(Counter::ParseErrors);
      auto message = sip::Message::parse(
          std::string(
              pending.substr(0, std::min<std::size_t>(pending.size(), settings_.limits.max_message_bytes))),
          settings_.limits, false);
      if (message && message->isRequest() && message->find(sip::Hdr::Via) != nullptr &&
          message->method() != sip::Method::Ack) {
        worker_.engine().replyStateless(*message, flow, frame.fault.status, frame.fault.reason);
      }
      closeConnection(conn.id);
      return;
    }
    worker_.stats().add(Counter::MessagesInTcp);
    auto message = sip::Message::parse(std::string(pending.substr(0, frame.length)), settings_.limits, false);
    consumed += frame.length;
    if (message && message->isRequest() && !conn.outbound) {
      flow.reconnect_port = message->topVia().port != 0 ? message->topVia().port : 5060;
    }
    if (message) {
      dispatcher_.deliver(worker_, std::move(message), flow);
    } else {
      worker_.stats().add(Counter::ParseErrors);
    }
    if (conn.closing) return;
  }
  conn.buffer.erase(0, consumed);
}

void TcpTransport::send(const net::Flow& flow, std::string&& bytes) {
  Connection* conn = nullptr;
  if (flow.conn_id != 0) {
    auto it = connections_.find(flow.conn_id);
    if (it != connections_.end() && !it->second->closing) conn = it->second.get();
  }
  if (conn == nullptr) {
    // The original connection is gone, or none was named: reuse or open one to the peer
    // (RFC 3261 §18.2.2: the received address and the Via sent-by port; §18.1.1 for requests).
    net::Endpoint peer = flow.remote;
    if (flow.conn_id != 0) {
      if (flow.reconnect_port == 0) return;  // the peer's own connection, and no way back
      peer.port = flow.reconnect_port;
    }
    auto key = std::make_pair(static_cast<int>(flow.side), peer.toString());
    auto found = outbound_.find(key);
    if (found != outbound_.end()) {
      auto it = connections_.find(found->second);
      if (it != connections_.end() && !it->second->closing) conn = it->second.get();
    }
    if (conn == nullptr) {
      // Connections we open count against the same limits as accepted ones: a peer that
      // closes its connection and names other ports in Via cannot make us open without bound.
      if (!limiter_.acquire(peer.address, settings_.max_connections, settings_.max_connections_per_ip)) {
        worker_.stats().add(Counter::TcpConnectionsRefused);
        return;
      }
      Connection& fresh = adopt(boost::asio::ip::tcp::socket(worker_.io()), flow.side, peer);
      fresh.counted = true;
      fresh.connected = false;
      fresh.outbound = true;
      bool reconnect = flow.conn_id != 0;
      outbound_[key] = fresh.id;
      conn = &fresh;
      std::uint32_t id = fresh.id;
      fresh.socket.async_connect(
          boost::asio::ip::tcp::endpoint(peer.address, peer.port),
          [this, id, reconnect](const boost::system::error_code& ec) {
            auto it = connections_.find(id);
            if (it == connections_.end() || it->second->closing) return;
            if (ec) {
              // A configured peer that is down is worth a warning; a caller's port is not.
              if (reconnect) {
                LOG_DEBUG("tcp reconnect to {} failed: {}", it->second->remote.toString(), ec.message());
              } else {
                LOG_WARN("tcp connect to {} failed: {}", it->second->remote.toString(), ec.message());
              }
              closeConnection(id);
              return;
            }
            boost::system::error_code opt_ec;
            it->second->socket.set_option(boost::asio::ip::tcp::no_delay(true), opt_ec);
            it->second->connected = true;
            read(*it->second);
            write(*it->second);
          });
    }
  }
  // Bound the queue: a peer that stops reading must not grow our memory.
  if (conn->queue.size() >= 1024) {
    LOG_WARN("tcp connection to {} is not draining, closing", conn->remote.toString());
    closeConnection(conn->id);
    return;
  }
  conn->queue.push_back(std::move(bytes));
  worker_.stats().add(Counter::MessagesOutTcp);
  if (conn->connected) write(*conn);
}

void TcpTransport::write(Connection& conn) {
  if (conn.writing || conn.queue.empty() || conn.closing) return;
  conn.writing = true;
  std::uint32_t id = conn.id;
  boost::asio::async_write(conn.socket, boost::asio::buffer(conn.queue.front()),
                           [this, id](const boost::system::error_code& ec, std::size_t) {
                             auto it = connections_.find(id);
                             if (it == connections_.end() || it->second->closing) return;
                             Connection& c = *it->second;
                             c.writing = false;
                             if (ec) {
                               closeConnection(id);
                               return;
                             }
                             c.queue.pop_front();
                             write(c);
                           });
}

void TcpTransport::closeConnection(std::uint32_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second->closing) return;
  Connection& conn = *it->second;
  conn.closing = true;
  boost::system::error_code ec;
  conn.socket.close(ec);
  conn.idle.cancel();
  if (conn.counted) limiter_.release(conn.remote.address);
  conn.counted = false;
  if (conn.outbound) outbound_.erase(std::make_pair(static_cast<int>(conn.side), conn.remote.toString()));
  worker_.stats().add(Counter::TcpConnectionsClosed);
  worker_.stats().adjust(Gauge::TcpConnections, -1);
  // Erase after the cancelled handlers have run (they find `closing` and return).
  boost::asio::post(worker_.io(), [this, id] { connections_.erase(id); });
}

}  // namespace palisade::transport
