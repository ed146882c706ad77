#include "transport/tcp/tcp_transport.h"

#include <cerrno>

#include <fmt/format.h>
#include <openssl/x509v3.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>

#include "core/base/log.h"

namespace palisade::transport {

using stats::Counter;
using stats::Gauge;

namespace {

// The process (or the system) has no descriptor or buffer left for a new connection: retrying
// at once would spin; the pending connection waits in the backlog instead.
bool outOfResources(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

}  // namespace

TcpTransport::TcpTransport(boost::asio::io_context& io, std::uint16_t worker_index, net::Receiver& receiver,
                           policy::PacketFilter* filter, stats::Shard& stats, ConnectionLimiter& limiter,
                           ConnectionLimiter& tls_limiter, const StreamSettings& settings)
    : io_(io),
      worker_index_(worker_index),
      stats_(stats),
      limiter_(limiter),
      tls_limiter_(tls_limiter),
      settings_(settings) {
  context_.receiver = &receiver;
  context_.filter = filter;
  context_.stats = &stats_;
  context_.settings = &settings_;
  context_.owner = &owner_;
}

TcpTransport::~TcpTransport() { close(); }

base::Result<bool> TcpTransport::listen(net::Side side, const boost::asio::ip::address& address,
                                        std::uint16_t port, net::Transport transport) {
  auto acceptor = std::make_unique<Acceptor>(io_, side, transport);
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
  if (ec) {
    return base::Error{fmt::format("{} {}:{}: {}", transport == net::Transport::Tls ? "tls" : "tcp",
                                   address.to_string(), port, ec.message())};
  }
  acceptors_.push_back(std::move(acceptor));
  return true;
}

std::uint16_t TcpTransport::localPort(net::Side side, net::Transport transport) const {
  for (const auto& acceptor : acceptors_) {
    boost::system::error_code ec;
    if (acceptor->side == side && acceptor->transport == transport) {
      auto endpoint = acceptor->acceptor.local_endpoint(ec);
      if (!ec) return endpoint.port();
    }
  }
  return 0;
}

void TcpTransport::start() {
  for (auto& acceptor : acceptors_) accept(*acceptor);
}

void TcpTransport::closeAcceptor(Acceptor& acceptor) {
  boost::system::error_code ec;
  acceptor.acceptor.close(ec);
  acceptor.backoff.cancel();
}

void TcpTransport::stopAccepting(net::Side side) {
  owner_.check("TcpTransport");
  for (auto& acceptor : acceptors_) {
    if (acceptor->side == side) closeAcceptor(*acceptor);
  }
}

void TcpTransport::close() {
  for (auto& acceptor : acceptors_) closeAcceptor(*acceptor);
  std::vector<std::shared_ptr<Connection>> open;
  for (auto& [id, conn] : connections_) open.push_back(conn);
  for (auto& conn : open) conn->close();
}

void TcpTransport::setSettings(const StreamSettings& settings) {
  owner_.check("TcpTransport");
  settings_ = settings;
  for (auto& [id, conn] : connections_) conn->settingsChanged();
}

void TcpTransport::setTls(std::shared_ptr<const certs::TlsContexts> contexts,
                          std::map<std::string, std::string> peer_names) {
  owner_.check("TcpTransport");
  tls_ = std::move(contexts);
  tls_peer_names_ = std::move(peer_names);
}

void TcpTransport::accept(Acceptor& acceptor) {
  acceptor.acceptor.async_accept(
      [this, &acceptor](const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket) {
        if (ec == boost::asio::error::operation_aborted || !acceptor.acceptor.is_open()) return;
        owner_.check("TcpTransport");
        if (ec && outOfResources(ec)) {
          stats_.add(Counter::TcpAcceptBackoffs);
          auto now = std::chrono::steady_clock::now();
          if (now - last_backoff_log_ > std::chrono::seconds(10)) {
            last_backoff_log_ = now;
            LOG_WARN(
                "tcp accept: {}; pausing accepts for {} ms (raise the descriptor limit or lower "
                "tcp.max_connections)",
                ec.message(), kAcceptBackoff.count());
          }
          acceptor.backoff.expires_after(kAcceptBackoff);
          acceptor.backoff.async_wait([this, &acceptor](const boost::system::error_code& wait_ec) {
            if (!wait_ec && acceptor.acceptor.is_open()) accept(acceptor);
          });
          return;
        }
        if (!ec) onAccepted(acceptor, std::move(socket));
        accept(acceptor);
      });
}

void TcpTransport::onAccepted(Acceptor& acceptor, boost::asio::ip::tcp::socket socket) {
  boost::system::error_code peer_ec;
  auto peer = socket.remote_endpoint(peer_ec);
  if (peer_ec) return;
  net::Flow flow;
  flow.side = acceptor.side;
  flow.transport = acceptor.transport;
  flow.remote = net::Endpoint{peer.address(), peer.port()};
  flow.conn_worker = worker_index_;
  flow.verified = true;  // the handshake shows the peer receives at its address
  if (context_.filter != nullptr && !context_.filter->admit(flow, {})) {
    stats_.add(Counter::DroppedUntrusted);
    return;  // the socket closes as it goes out of scope
  }
  // Configured peers (the PBX, the trunks) are not counted against the limits, so that a
  // flood of connections from the internet cannot lock them out.
  bool counted = flow.peer == 0;
  bool over_per_ip = false;
  if (counted && !acquireSlot(flow, &over_per_ip)) {
    stats_.add(Counter::TcpConnectionsRefused);
    // A connection flood from one address counts toward its ban (scanner detection); a full
    // total says nothing about the address that happened to knock next.
    if (over_per_ip && context_.filter != nullptr)
      context_.filter->report(flow, policy::Offence::ConnectionRefused);
    return;
  }
  bool tls = flow.transport == net::Transport::Tls;
  if (tls) {
    // Handshakes cost CPU and memory before the peer has shown anything: few per source, and
    // a bounded number in all, on every worker. Configured peers are not counted, so that
    // stalled handshakes from the internet cannot lock a trunk out.
    bool over_own = false;
    if (tls_ == nullptr || tls_->server() == nullptr ||
        (counted && !handshakes_.acquire(flow.remote.address, settings_.max_handshakes,
                                         settings_.max_handshakes_per_ip, &over_own))) {
      stats_.add(Counter::TlsHandshakesRefused);
      if (counted) releaseSlot(flow);
      if (over_own && counted && context_.filter != nullptr)
        context_.filter->report(flow, policy::Offence::ConnectionRefused);
      return;
    }
  }
  std::shared_ptr<Connection> conn = adopt(std::move(socket), flow, false);
  conn->counted = counted;
  stats_.add(Counter::TcpConnectionsAccepted);
  if (tls) {
    conn->holds_handshake_slot = counted;
    secureAccepted(conn);
    return;
  }
  conn->expectFirstMessage();
  conn->start();
}

void TcpTransport::secureAccepted(const std::shared_ptr<Connection>& conn) {
  SSL* ssl = SSL_new(tls_->server());
  if (ssl == nullptr) {
    ERR_clear_error();
    conn->close();
    return;
  }
  SSL_set_accept_state(ssl);
  // Mutual TLS: a trunk that requires it must present a certificate from its own CA.
  const certs::ClientAuth* rule = nullptr;
  if (conn->flow().peer != 0 && context_.filter != nullptr) {
    std::string_view name = context_.filter->peerName(conn->flow());
    if (!name.empty()) rule = tls_->clientAuth(name);
  }
  if (rule != nullptr) certs::requireClientCertificate(ssl, rule);
  if (!conn->socket().attach(ssl)) {
    conn->close();
    return;
  }
  conn->tls_contexts = tls_;  // `rule` lives in it
  conn->startHandshake([this, rule](StreamConnection& c, bool ok) { onAcceptedHandshake(c, ok, rule); });
}

void TcpTransport::releaseHandshake(Connection& conn) {
  if (!conn.holds_handshake_slot) return;
  conn.holds_handshake_slot = false;
  handshakes_.release(conn.flow().remote.address);
}

void TcpTransport::onAcceptedHandshake(Connection& conn, bool ok, const certs::ClientAuth* rule) {
  owner_.check("TcpTransport");
  releaseHandshake(conn);
  if (!ok) {
    // Failed handshakes from the internet count toward the source's ban like malformed SIP.
    if (conn.flow().peer == 0 && context_.filter != nullptr)
      context_.filter->report(conn.flow(), policy::Offence::Malformed);
    conn.close();
    return;
  }
  if (rule != nullptr) {
    SSL* ssl = conn.socket().ssl();
    X509* cert = SSL_get0_peer_certificate(ssl);
    bool named = false;
    if (cert != nullptr && SSL_get_verify_result(ssl) == X509_V_OK) {
      for (const std::string& name : rule->names) named = named || certs::certificateNames(cert, name);
    }
    if (!named) {
      stats_.add(Counter::TlsClientCertificatesRefused);
      LOG_WARN("trunk {}: TLS client certificate from {} carries none of its tls_client_names, closing",
               rule->trunk, conn.flow().remote.toString());
      conn.close();
      return;
    }
  }
  stats_.add(Counter::TlsHandshakes);
  conn.expectFirstMessage();
  conn.start();
}

std::shared_ptr<TcpTransport::Connection> TcpTransport::adopt(boost::asio::ip::tcp::socket socket,
                                                              const net::Flow& flow, bool outbound) {
  net::Flow named = flow;
  named.conn_id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  auto conn = std::make_shared<Connection>(std::move(socket), context_, named, outbound,
                                           [this](Connection& closed) { forget(closed); });
  connections_.emplace(named.conn_id, conn);
  stats_.adjust(Gauge::TcpConnections, 1);
  return conn;
}

bool TcpTransport::acquireSlot(const net::Flow& flow, bool* over_per_ip) {
  if (!limiter_.acquire(flow.remote.address, settings_.max_connections, settings_.max_connections_per_ip,
                        over_per_ip))
    return false;
  if (flow.transport != net::Transport::Tls) return true;
  if (tls_limiter_.acquire(flow.remote.address, settings_.max_connections,
                           settings_.max_tls_connections_per_ip, over_per_ip))
    return true;
  limiter_.release(flow.remote.address);
  return false;
}

void TcpTransport::releaseSlot(const net::Flow& flow) {
  limiter_.release(flow.remote.address);
  if (flow.transport == net::Transport::Tls) tls_limiter_.release(flow.remote.address);
}

void TcpTransport::forget(Connection& conn) {
  if (conn.counted) releaseSlot(conn.flow());
  conn.counted = false;
  releaseHandshake(conn);
  if (conn.outbound()) {
    auto key = std::make_tuple(static_cast<int>(conn.flow().side), static_cast<int>(conn.flow().transport),
                               conn.flow().remote.toString());
    auto it = outbound_.find(key);
    if (it != outbound_.end() && it->second == conn.id()) outbound_.erase(it);
  }
  stats_.add(Counter::TcpConnectionsClosed);
  stats_.adjust(Gauge::TcpConnections, -1);
  if (context_.receiver != nullptr) context_.receiver->onStreamClosed(conn.flow());
  // Handlers still pending hold their own reference; the map lets go now.
  connections_.erase(conn.id());
}

TcpTransport::Connection* TcpTransport::connectTo(const net::Flow& flow, const net::Endpoint& peer,
                                                  bool reconnect) {
  // Reconnections toward a peer's Via port count against the same limits as accepted
  // connections: a peer that closes its connection and names other ports in Via cannot make
  // us open without bound. Connections to our configured targets (flows that name no
  // connection) are ours to open and never refused.
  if (flow.transport == net::Transport::Tls && (tls_ == nullptr || tls_->client() == nullptr)) return nullptr;
  bool counted = reconnect;
  net::Flow slot = flow;
  slot.remote = peer;
  if (counted && !acquireSlot(slot)) {
    stats_.add(Counter::TcpConnectionsRefused);
    return nullptr;
  }
  net::Flow named;
  named.side = flow.side;
  named.transport = flow.transport;
  named.remote = peer;
  named.conn_worker = worker_index_;
  named.peer = flow.peer;
  named.verified = true;
  std::shared_ptr<Connection> conn = adopt(boost::asio::ip::tcp::socket(io_), named, true);
  conn->counted = counted;
  outbound_[std::make_tuple(static_cast<int>(flow.side), static_cast<int>(flow.transport), peer.toString())] =
      conn->id();
  std::weak_ptr<Connection> weak = conn;
  conn->socket().socket().async_connect(
      boost::asio::ip::tcp::endpoint(peer.address, peer.port),
      [this, weak, reconnect](const boost::system::error_code& ec) {
        std::shared_ptr<Connection> c = weak.lock();
        if (!c || c->closing()) return;
        if (ec) {
          // A configured peer that is down is worth a warning; a caller's port is not.
          if (reconnect) {
            LOG_DEBUG("tcp reconnect to {} failed: {}", c->flow().remote.toString(), ec.message());
          } else {
            LOG_WARN("tcp connect to {} failed: {}", c->flow().remote.toString(), ec.message());
          }
          c->close();
          return;
        }
        boost::system::error_code opt_ec;
        c->socket().socket().set_option(boost::asio::ip::tcp::no_delay(true), opt_ec);
        onConnected(*c, reconnect);
      });
  return conn.get();
}

void TcpTransport::onConnected(Connection& conn, bool reconnect) {
  owner_.check("TcpTransport");
  if (conn.flow().transport != net::Transport::Tls) {
    conn.start();
    return;
  }
  if (tls_ == nullptr || tls_->client() == nullptr) {
    conn.close();
    return;
  }
  SSL* ssl = SSL_new(tls_->client());
  if (ssl == nullptr) {
    ERR_clear_error();
    conn.close();
    return;
  }
  SSL_set_connect_state(ssl);
  // The name the peer's certificate must carry: its configured tls_server_name, else its
  // address (RFC 5922 §7.2 for names; an address must be an IP subjectAltName).
  std::string remote = conn.flow().remote.toString();
  auto found = tls_peer_names_.find(remote);
  std::string name = found != tls_peer_names_.end() ? found->second : conn.flow().remote.address.to_string();
  boost::system::error_code ec;
  boost::asio::ip::make_address(name, ec);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  bool named = !ec ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1
                   : SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 &&
                         X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) == 1;
  if (!named) {
    // Without the name only the chain would be checked: any trusted certificate would do.
    LOG_WARN("TLS to {}: cannot check the certificate name {}, not connecting", remote, name);
    SSL_free(ssl);
    ERR_clear_error();
    conn.close();
    return;
  }
  if (!conn.socket().attach(ssl)) {
    conn.close();
    return;
  }
  conn.tls_contexts = tls_;
  conn.startHandshake([this, reconnect, name](StreamConnection& c, bool ok) {
    if (ok) stats_.add(Counter::TlsHandshakes);
    if (!ok) {
      if (reconnect) {
        LOG_DEBUG("TLS to {} failed: {}", c.flow().remote.toString(), c.socket().lastError());
      } else {
        LOG_WARN("TLS to {} (certificate name {}) failed: {}", c.flow().remote.toString(), name,
                 c.socket().lastError());
      }
      c.close();
      return;
    }
    c.start();
  });
}

void TcpTransport::send(const net::Flow& flow, std::string&& bytes) {
  owner_.check("TcpTransport");
  Connection* conn = nullptr;
  if (flow.conn_id != 0) {
    auto it = connections_.find(flow.conn_id);
    if (it != connections_.end() && !it->second->closing()) conn = it->second.get();
  }
  if (conn == nullptr) {
    // The original connection is gone, or none was named: reuse or open one to the peer
    // (RFC 3261 §18.2.2: the received address and the Via sent-by port; §18.1.1 for requests).
    net::Endpoint peer = flow.remote;
    if (flow.conn_id != 0) {
      if (flow.reconnect_port == 0) return;  // the peer's own connection, and no way back
      // A TLS client (a phone) serves no TLS of its own; only configured peers are called back.
      if (flow.transport == net::Transport::Tls && flow.peer == 0) return;
      peer.port = flow.reconnect_port;
    }
    auto found = outbound_.find(
        std::make_tuple(static_cast<int>(flow.side), static_cast<int>(flow.transport), peer.toString()));
    if (found != outbound_.end()) {
      auto it = connections_.find(found->second);
      if (it != connections_.end() && !it->second->closing()) conn = it->second.get();
    }
    if (conn == nullptr) conn = connectTo(flow, peer, flow.conn_id != 0);
    if (conn == nullptr) return;
  }
  stats_.add(flow.transport == net::Transport::Tls ? Counter::MessagesOutTls : Counter::MessagesOutTcp);
  conn->send(std::move(bytes));
}

}  // namespace palisade::transport
