#pragma once
// The alert webhook (issue 10, item 7): fraud events as JSON, POSTed one at a time to the URL in
// the config, over HTTP/1.1 or HTTPS, from the control thread's io_context. Asynchronous
// throughout: a bounded queue, a timeout per attempt, retries with backoff. It never blocks the
// control thread and never throws out of its handlers.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/base/owner_thread.h"
#include "core/base/result.h"
#include "core/stats/metrics.h"

namespace palisade::app {

// `http://[userinfo@]host[:port][/path][?query]` or `https://...`, validated.
struct WebhookUrl {
  bool tls = false;
  std::string host;              // a DNS name or a numeric address (IPv6 without brackets)
  bool host_is_address = false;  // numeric: no DNS, no SNI, the certificate must name the IP
  std::uint16_t port = 0;        // 80 or 443 unless given
  std::string target;            // path and query as sent in the request line; "/" by default
  std::string userinfo;          // percent-decoded "user:password", sent as Basic auth; may be empty

  // For logs: scheme, host, port and the first path segment only. Userinfo, the query and the
  // rest of the path are left out: webhook services often put their secret token there.
  std::string redacted() const;
  // The Host header (RFC 9110 §7.2): IPv6 in brackets, the port unless it is the default.
  std::string authority() const;
};

// Validates a config value. Errors say which part is wrong and never repeat the userinfo.
base::Result<WebhookUrl> parseWebhookUrl(std::string_view text);

struct WebhookOptions {
  std::chrono::milliseconds timeout{5000};  // per attempt: resolve + connect + TLS + request + status line
  int retries = 3;                          // attempts after the first, before the event is given up
  std::chrono::milliseconds backoff{1000};  // wait before the first retry, doubled for each next one
  std::size_t queue_capacity = 1000;        // events waiting or in flight; more are dropped
  std::string ca_file;                      // https: PEM file of the CAs to trust; empty: the system's
};

namespace detail {
struct WebhookAttempt;
}

class AlertWebhook {
 public:
  // Control thread. For https, loads the trust store (ca_file, or the system's CAs); the
  // error names the file and OpenSSL's reason.
  static base::Result<std::unique_ptr<AlertWebhook>> create(boost::asio::io_context& control, WebhookUrl url,
                                                            stats::Shard& control_shard,
                                                            WebhookOptions options = {});
  // Control thread, before `control` is destroyed. Calls stop().
  ~AlertWebhook();
  AlertWebhook(const AlertWebhook&) = delete;
  AlertWebhook& operator=(const AlertWebhook&) = delete;

  // Control thread. Queues one event (a JSON document) for delivery. False when the queue is
  // full or the webhook is stopped: the event is dropped and counted (AlertWebhooksDropped).
  // Delivered: AlertWebhooksSent; given up after every retry: AlertWebhooksFailed and a warning.
  bool post(std::string json_body);

  // Control thread: abandons the attempt in flight and the queue (logged with the count),
  // cancels every timer and socket, so the io_context runs out of work from this webhook.
  // post() fails afterwards. Idempotent.
  void stop();

  // Control thread: events queued or in flight.
  std::size_t pending() const { return queue_.size(); }
  const WebhookUrl& url() const { return url_; }

 private:
  friend struct detail::WebhookAttempt;
  AlertWebhook(boost::asio::io_context& control, WebhookUrl url, stats::Shard& control_shard,
               WebhookOptions options, std::unique_ptr<boost::asio::ssl::context> tls);
  void startAttempt();
  // `status` is the HTTP status, 0 when the attempt failed before one arrived (`error` says why).
  void attemptDone(int status, const std::string& error);
  void next();

  boost::asio::io_context& io_;
  WebhookUrl url_;
  stats::Shard& control_shard_;
  WebhookOptions options_;
  std::unique_ptr<boost::asio::ssl::context> tls_;  // https only
  std::string request_head_;                        // the request up to the Content-Length value
  std::deque<std::string> queue_;                   // front: the event being delivered
  int failures_ = 0;                                // of the front event
  std::shared_ptr<detail::WebhookAttempt> attempt_;
  boost::asio::steady_timer backoff_;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point last_drop_log_{};
  bool drop_logged_ = false;
  std::uint64_t drops_since_log_ = 0;
  base::OwnerThread control_thread_;
  // Expires with the webhook: a backoff handler already queued when it died does nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace palisade::app
