#include "core/stats/http_server.h"

#include <algorithm>
#include <array>
#include <exception>
#include <string_view>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>

#include "core/base/log.h"

namespace palisade::stats {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace detail {

class HttpConnection;

struct ManagementState : std::enable_shared_from_this<ManagementState> {
  ManagementState(asio::io_context& io, ManagementServer::MetricsSource source, ManagementServer::Limits lim)
      : acceptor(io), retry_timer(io), metrics(std::move(source)), limits(lim) {}

  void accept();

  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  ManagementServer::MetricsSource metrics;
  ManagementServer::Limits limits;
  std::vector<std::pair<std::string, ManagementServer::Route>> routes;
  std::unordered_set<HttpConnection*> live;
  bool stopped = false;
};

}  // namespace detail

namespace {

using detail::ManagementState;

constexpr std::size_t kMaxDrainBytes = 65536;
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

struct Response {
  int status;
  std::string reason;
  std::string content_type;
  std::string body;
  std::string_view extra_headers;  // each line ends in CRLF
};

Response plain(int status, std::string_view reason, std::string body, std::string_view extra = {}) {
  return Response{status, std::string(reason), "text/plain; charset=utf-8", std::move(body), extra};
}

// RFC 9110 §5.6.2 tchar.
bool isToken(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    if (u >= '0' && u <= '9') return true;
    if ((u | 0x20) >= 'a' && (u | 0x20) <= 'z') return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// End of the head (one past the blank line), or npos. Bare LF is accepted as a line ending
// (RFC 9112 §2.2).
std::size_t findHeadEnd(std::string_view buf, std::size_t from) {
  for (std::size_t i = buf.find('\n', from); i != std::string_view::npos; i = buf.find('\n', i + 1)) {
    if (i + 1 < buf.size() && buf[i + 1] == '\n') return i + 2;
    if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

}  // namespace

namespace detail {

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(std::shared_ptr<ManagementState> state, tcp::socket socket)
      : state_(std::move(state)), socket_(std::move(socket)), timer_(socket_.get_executor()) {}
  ~HttpConnection() { state_->live.erase(this); }

  void start() {
    state_->live.insert(this);
    armTimer();
    read();
  }

  void close() {
    error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
  }

 private:
  void armTimer() {
    timer_.expires_after(state_->limits.read_timeout);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      // A wait that already completed when the timer was re-armed still arrives without error.
      if (ec || self->timer_.expiry() > asio::steady_timer::clock_type::now()) return;
      error_code ignored;
      self->socket_.close(ignored);
    });
  }

  void read() {
    socket_.async_read_some(asio::buffer(chunk_), [self = shared_from_this()](error_code ec, std::size_t n) {
      self->onRead(ec, n);
    });
  }

  void onRead(error_code ec, std::size_t n) {
    if (ec) return close();
    std::size_t scan_from = head_.size() >= 2 ? head_.size() - 2 : 0;
    head_.append(chunk_.data(), n);
    if (!seen_request_line_) {
      // Empty lines before the request line are ignored (RFC 9112 §2.2).
      std::size_t first = head_.find_first_not_of("\r\n");
      if (first == std::string::npos) {
        head_.clear();
        return read();
      }
      head_.erase(0, first);
      seen_request_line_ = true;
      scan_from = 0;
    }
    const std::size_t limit = state_->limits.max_head_bytes;
    const std::size_t end = findHeadEnd(head_, scan_from);
    if (end != std::string::npos && end <= limit) return send(handle(std::string_view(head_).substr(0, end)));
    if (end != std::string::npos || head_.size() >= limit) {
      return send(plain(431, "Request Header Fields Too Large", "request head too large\n"));
    }
    read();
  }

  Response handle(std::string_view head) {
    std::string_view line = head.substr(0, head.find('\n'));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // request-line = method SP request-target SP HTTP-version (RFC 9112 §3)
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return plain(400, "Bad Request", "bad request\n");
    const std::string_view method = line.substr(0, sp1);
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (!isToken(method) || target.empty() || target.front() != '/' ||
        (version != "HTTP/1.1" && version != "HTTP/1.0")) {
      return plain(400, "Bad Request", "bad request\n");
    }
    const std::string_view path = target.substr(0, target.find('?'));
    for (const auto& [prefix, route] : state_->routes) {
      bool under = path == prefix || (path.size() > prefix.size() &&
                                      path.substr(0, prefix.size()) == prefix && path[prefix.size()] == '/');
      if (!under) continue;
      if (method != "GET" && method != "DELETE")
        return plain(405, "Method Not Allowed", "method not allowed\n", "Allow: GET, DELETE\r\n");
      try {
        ManagementServer::Reply reply = route(method, path);
        return Response{reply.status, reply.reason, reply.content_type, std::move(reply.body), {}};
      } catch (const std::exception& e) {
        LOG_ERROR("management: {} {} failed: {}", method, path, e.what());
        return plain(500, "Internal Server Error", "failed\n");
      }
    }
    if (method != "GET") return plain(405, "Method Not Allowed", "method not allowed\n", "Allow: GET\r\n");
    if (path == "/health") return plain(200, "OK", "ok\n");
    if (path == "/metrics") {
      try {
        return Response{200, "OK", "text/plain; version=0.0.4", state_->metrics ? state_->metrics() : "", {}};
      } catch (const std::exception& e) {
        LOG_ERROR("management: rendering /metrics failed: {}", e.what());
        return plain(500, "Internal Server Error", "metrics unavailable\n");
      }
    }
    return plain(404, "Not Found", "not found\n");
  }

  void send(Response r) {
    out_ =
        fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
                    r.status, r.reason, r.content_type, r.body.size(), r.extra_headers);
    out_ += r.body;
    head_.clear();
    head_.shrink_to_fit();
    armTimer();  // a client that does not read must not hold the slot forever
    asio::async_write(socket_, asio::buffer(out_), [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->close();
      // Half-close, then drain what the client still sends: closing with unread bytes makes the
      // kernel send RST, which can destroy the response before the client reads it.
      error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
      self->drain();
    });
  }

  void drain() {
    socket_.async_read_some(asio::buffer(chunk_), [self = shared_from_this()](error_code ec, std::size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > kMaxDrainBytes) return self->close();
      self->drain();
    });
  }

  std::shared_ptr<ManagementState> state_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::array<char, 2048> chunk_{};
  std::string head_;
  std::string out_;
  std::size_t drained_ = 0;
  bool seen_request_line_ = false;
};

void ManagementState::accept() {
  acceptor.async_accept([self = shared_from_this()](error_code ec, tcp::socket socket) {
    if (self->stopped || ec == asio::error::operation_aborted) return;
    if (ec) {
      if (ec == asio::error::connection_aborted) return self->accept();
      // Out of descriptors fails again at once: back off rather than spin the control thread.
      LOG_WARN("management: accept failed: {}", ec.message());
      self->retry_timer.expires_after(kAcceptRetryDelay);
      self->retry_timer.async_wait([self](error_code wait_ec) {
        if (!wait_ec && !self->stopped) self->accept();
      });
      return;
    }
    if (self->live.size() >= self->limits.max_connections) {
      error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<HttpConnection>(self, std::move(socket))->start();
    }
    self->accept();
  });
}

}  // namespace detail

ManagementServer::ManagementServer(asio::io_context& io, std::string address, std::uint16_t port,
                                   MetricsSource metrics, Limits limits)
    : address_(std::move(address)),
      requested_port_(port),
      state_(std::make_shared<ManagementState>(io, std::move(metrics), limits)) {}

void ManagementServer::addRoute(std::string prefix, Route route) {
  state_->routes.emplace_back(std::move(prefix), std::move(route));
}

ManagementServer::ManagementServer(asio::io_context& io, std::string address, std::uint16_t port,
                                   MetricsSource metrics)
    : ManagementServer(io, std::move(address), port, std::move(metrics), Limits{}) {}

ManagementServer::~ManagementServer() {
  try {
    stop();
  } catch (const std::exception& e) {  // cancelling a timer can report an OS error; never from a destructor
    LOG_WARN("management: stop failed: {}", e.what());
  }
}

base::Result<bool> ManagementServer::start() {
  error_code ec;
  const auto addr = asio::ip::make_address(address_, ec);
  if (ec) return base::Error{fmt::format("management: '{}' is not a numeric address", address_)};
  const tcp::endpoint endpoint(addr, requested_port_);
  auto describe = [&](std::uint16_t port) {
    return addr.is_v6() ? fmt::format("[{}]:{}", address_, port) : fmt::format("{}:{}", address_, port);
  };
  const std::string where = describe(requested_port_);
  if (state_->stopped || state_->acceptor.is_open()) {
    return base::Error{fmt::format("management: {} already started or stopped", where)};
  }
  auto fail = [&](std::string_view step) {
    error_code ignored;
    state_->acceptor.close(ignored);
    return base::Error{fmt::format("management: cannot listen on {}: {}: {}", where, step, ec.message())};
  };
  auto& acceptor = state_->acceptor;
  if (acceptor.open(endpoint.protocol(), ec); ec) return fail("open");
  if (acceptor.set_option(tcp::acceptor::reuse_address(true), ec); ec) return fail("SO_REUSEADDR");
  if (acceptor.bind(endpoint, ec); ec) return fail("bind");
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) return fail("listen");
  const auto local = acceptor.local_endpoint(ec);
  if (ec) return fail("getsockname");
  bound_port_ = local.port();
  state_->accept();
  LOG_INFO("management: listening on {}", describe(bound_port_));
  return true;
}

void ManagementServer::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  error_code ignored;
  state_->acceptor.close(ignored);
  state_->retry_timer.cancel();
  // close() only cancels; connections leave `live` later, from their handlers.
  for (auto* connection : state_->live) connection->close();
}

std::size_t ManagementServer::connectionCount() const { return state_->live.size(); }

}  // namespace palisade::stats
