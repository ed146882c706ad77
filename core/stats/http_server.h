#pragma once
// Management HTTP endpoint: GET /metrics (Prometheus) and GET /health. Deliberately tiny: one
// request per connection, Connection: close, fixed limits. It runs on the control thread's
// io_context and never touches worker state directly; the metrics source does the summing.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include "core/base/result.h"

namespace palisade::stats {

namespace detail {
struct ManagementState;  // shared with connections, which may outlive the server object
}

class ManagementServer {
 public:
  using MetricsSource = std::function<std::string()>;

  // A resource under a path prefix ("/bans"): called on the control thread with the method
  // (GET or DELETE) and the full path; returns the status, reason, content type and body.
  struct Reply {
    int status = 200;
    std::string reason = "OK";
    std::string content_type = "application/json";
    std::string body;
  };
  using Route = std::function<Reply(std::string_view method, std::string_view path)>;

  struct Limits {
    std::size_t max_head_bytes = 8192;             // request line + headers; more gets 431
    std::size_t max_connections = 64;              // further connections are closed on accept
    std::chrono::milliseconds read_timeout{5000};  // to receive the head, and again to send the reply
  };

  // `address` is numeric (IPv4 or IPv6); port 0 picks a free port (see port()).
  ManagementServer(boost::asio::io_context& io, std::string address, std::uint16_t port,
                   MetricsSource metrics, Limits limits);
  ManagementServer(boost::asio::io_context& io, std::string address, std::uint16_t port,
                   MetricsSource metrics);
  ~ManagementServer();  // calls stop()
  ManagementServer(const ManagementServer&) = delete;
  ManagementServer& operator=(const ManagementServer&) = delete;

  // Before start(): serves `prefix` and everything below it with `route` (GET and DELETE).
  void addRoute(std::string prefix, Route route);

  // Binds and starts accepting. Call once, on the io_context's thread or before it runs.
  // The error names address:port and the OS reason.
  base::Result<bool> start();

  // Closes the listener and every open connection; the io_context then runs out of work from
  // this server. Call on the io_context's thread, or while it is not running. Idempotent.
  void stop();

  // The bound port (useful after binding port 0); 0 before start().
  std::uint16_t port() const { return bound_port_; }

  // Connections currently open. Control thread only.
  std::size_t connectionCount() const;

 private:
  std::string address_;
  std::uint16_t requested_port_;
  std::uint16_t bound_port_ = 0;
  std::shared_ptr<detail::ManagementState> state_;
};

}  // namespace palisade::stats
