#include "core/app/alert_webhook.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <exception>

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "core/base/log.h"

namespace palisade::app {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::size_t kMaxResponseHead = 16384;  // interim responses and the status line
constexpr auto kDropLogInterval = std::chrono::seconds(60);

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isAlpha(char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

int hexValue(char c) {
  if (isDigit(c)) return c - '0';
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
  return -1;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c | 0x20);
  return out;
}

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
bool isHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  std::size_t start = 0;
  for (;;) {
    std::size_t dot = host.find('.', start);
    std::string_view label = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!isAlpha(c) && !isDigit(c) && c != '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// RFC 3986 §3.2.1 userinfo, percent-decoded.
base::Result<std::string> decodeUserinfo(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      int hi = i + 2 < text.size() ? hexValue(text[i + 1]) : -1;
      int lo = i + 2 < text.size() ? hexValue(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) return base::Error{"alert webhook URL: the userinfo has a bad %-escape"};
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (isAlpha(c) || isDigit(c) ||
               std::string_view("-._~!$&'()*+,;=:").find(c) != std::string_view::npos) {
      out.push_back(c);
    } else {
      return base::Error{"alert webhook URL: the userinfo has a character that must be %-encoded"};
    }
  }
  return out;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

// The final status of a response head in `buf`: 0 while incomplete, -1 when malformed. 1xx
// interim responses (RFC 9110 §15.2) are skipped with their header fields.
int finalStatus(std::string_view buf) {
  std::size_t pos = 0;
  for (;;) {
    std::size_t eol = buf.find('\n', pos);
    if (eol == std::string_view::npos) return buf.size() - pos > 1024 ? -1 : 0;
    std::string_view line = buf.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // RFC 9112 §4: HTTP-version SP 3DIGIT SP [reason-phrase]
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || !isDigit(line[7]) || line[8] != ' ' ||
        !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) ||
        (line.size() > 12 && line[12] != ' '))
      return -1;
    int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (status < 100 || status > 599) return -1;
    if (status >= 200) return status;
    std::size_t end = buf.find("\r\n\r\n", pos);
    if (end == std::string_view::npos) return 0;
    pos = end + 4;
  }
}

}  // namespace

base::Result<WebhookUrl> parseWebhookUrl(std::string_view text) {
  auto error = [](std::string what) { return base::Error{"alert webhook URL: " + std::move(what)}; };
  WebhookUrl url;
  std::size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return error("must start with http:// or https://");
  std::string scheme = lower(text.substr(0, scheme_end));
  if (scheme == "https") {
    url.tls = true;
  } else if (scheme != "http") {
    return error("the scheme must be http or https");
  }
  std::string_view rest = text.substr(scheme_end + 3);
  if (rest.find('#') != std::string_view::npos) return error("a fragment (#...) is not allowed");
  std::size_t authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);

  std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    auto userinfo = decodeUserinfo(authority.substr(0, at));
    if (!userinfo) return userinfo.error();
    url.userinfo = std::move(userinfo.value());
    authority.remove_prefix(at + 1);
  }

  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return error("an IPv6 address needs its closing ']'");
    url.host = std::string(authority.substr(1, close - 1));
    boost::system::error_code ec;
    asio::ip::make_address_v6(url.host, ec);
    if (ec || url.host.find('%') != std::string::npos) return error("not a valid IPv6 address in [...]");
    url.host_is_address = true;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return error("unexpected text after the IPv6 address");
    if (!after.empty()) port_text = after.substr(1);
    if (after == ":") return error("an empty port");
  } else {
    std::size_t colon = authority.find(':');
    std::string_view host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return error("an empty port");
    }
    if (host.empty()) return error("no host");
    url.host = std::string(host);
    if (std::all_of(host.begin(), host.end(), [](char c) { return isDigit(c) || c == '.'; })) {
      boost::system::error_code ec;
      asio::ip::make_address_v4(url.host, ec);
      if (ec) return error("not a valid IPv4 address");
      url.host_is_address = true;
    } else if (!isHostName(host)) {
      return error("the host must be a DNS name (letters, digits, '-', '.'), an IPv4 address or [IPv6]");
    }
  }
  if (url.host.empty()) return error("no host");

  url.port = url.tls ? 443 : 80;
  if (!port_text.empty()) {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), isDigit))
      return error("the port must be a number from 1 to 65535");
    int port = std::stoi(std::string(port_text));
    if (port < 1 || port > 65535) return error("the port must be a number from 1 to 65535");
    url.port = static_cast<std::uint16_t>(port);
  }

  // Bytes that could split the request line or a header never reach it.
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f)
      return error("the path has a space, control or non-ASCII character (%-encode it)");
  }
  if (target.empty()) {
    url.target = "/";
  } else if (target.front() == '?') {
    url.target = "/" + std::string(target);
  } else {
    url.target = std::string(target);
  }
  return url;
}

std::string WebhookUrl::authority() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) out += ":" + std::to_string(port);
  return out;
}

std::string WebhookUrl::redacted() const {
  std::string path = target.substr(0, target.find('?'));
  std::size_t second = path.find('/', 1);
  if (second != std::string::npos) path = path.substr(0, second + 1) + "...";
  return (tls ? "https://" : "http://") + authority() + path;
}

namespace detail {

// One delivery attempt. Its handlers keep it alive; the webhook holds it while in flight and
// abandons it on stop() (owner becomes null, sockets close, handlers then only return).
struct WebhookAttempt : std::enable_shared_from_this<WebhookAttempt> {
  WebhookAttempt(AlertWebhook& webhook, asio::io_context& io)
      : owner(&webhook),
        url(webhook.url_),
        timeout(webhook.options_.timeout),
        resolver(io),
        socket(io),
        deadline(io) {}

  void start(ssl::context* tls_context) {
    auto self = shared_from_this();
    deadline.expires_after(timeout);
    deadline.async_wait([self](const error_code& ec) {
      if (ec || self->finished) return;
      // Reported now: a cancelled name lookup completes only when getaddrinfo returns.
      self->finish(0, fmt::format("timed out after {} ms ({})", self->timeout.count(), self->stage));
    });
    if (tls_context != nullptr) tls = std::make_unique<ssl::stream<tcp::socket&>>(socket, *tls_context);
    auto flags = tcp::resolver::numeric_service;
    if (url.host_is_address) flags |= tcp::resolver::numeric_host;
    resolver.async_resolve(url.host, std::to_string(url.port), flags,
                           [self](const error_code& ec, const tcp::resolver::results_type& results) {
                             self->onResolved(ec, results);
                           });
  }

  void onResolved(const error_code& ec, const tcp::resolver::results_type& results) {
    if (finished) return;
    if (ec) return fail(ec);
    stage = "connect";
    asio::async_connect(
        socket, results,
        [self = shared_from_this()](const error_code& ec, const tcp::endpoint&) { self->onConnected(ec); });
  }

  void onConnected(const error_code& ec) {
    if (finished) return;
    if (ec) return fail(ec);
    if (tls == nullptr) return send();
    stage = "TLS handshake";
    SSL* ssl = tls->native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    bool named;
    if (url.host_is_address) {
      named = X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str()) == 1;
    } else {
      // SNI carries names only (RFC 6066 §3); the certificate must name the host (RFC 6125).
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      named = SSL_set_tlsext_host_name(ssl, url.host.c_str()) == 1 &&
              X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), url.host.size()) == 1;
    }
    if (!named) return finish(0, "cannot set the TLS server name");
    tls->async_handshake(ssl::stream_base::client,
                         [self = shared_from_this()](const error_code& ec) { self->onHandshake(ec); });
  }

  void onHandshake(const error_code& ec) {
    if (finished) return;
    if (ec) {
      long verify = SSL_get_verify_result(tls->native_handle());
      if (verify != X509_V_OK)
        return finish(
            0, std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify));
      return fail(ec);
    }
    send();
  }

  void send() {
    stage = "request";
    auto done = [self = shared_from_this()](const error_code& ec, std::size_t) {
      if (self->finished) return;
      if (ec) return self->fail(ec);
      self->stage = "response";
      self->read();
    };
    if (tls != nullptr) {
      asio::async_write(*tls, asio::buffer(request), done);
    } else {
      asio::async_write(socket, asio::buffer(request), done);
    }
  }

  void read() {
    auto done = [self = shared_from_this()](const error_code& ec, std::size_t n) { self->onRead(ec, n); };
    if (tls != nullptr) {
      tls->async_read_some(asio::buffer(chunk), done);
    } else {
      socket.async_read_some(asio::buffer(chunk), done);
    }
  }

  void onRead(const error_code& ec, std::size_t n) {
    if (finished) return;
    response.append(chunk.data(), n);
    int status = finalStatus(response);
    if (status > 0) return finish(status, {});
    if (status < 0 || response.size() > kMaxResponseHead) return finish(0, "not an HTTP/1.x response");
    if (ec == asio::error::eof || ec == ssl::error::stream_truncated)
      return finish(0, "the server closed the connection without a status line");
    if (ec) return fail(ec);
    read();
  }

  void fail(const error_code& ec) { finish(0, fmt::format("{}: {}", stage, ec.message())); }

  void finish(int status, const std::string& error) {
    if (finished) return;
    finished = true;
    close();
    AlertWebhook* webhook = owner;
    owner = nullptr;
    if (webhook != nullptr) webhook->attemptDone(status, error);
  }

  // The webhook stopped: nothing is reported any more.
  void abandon() {
    owner = nullptr;
    finished = true;
    close();
  }

  void close() {
    error_code ignored;
    deadline.cancel();
    resolver.cancel();
    socket.close(ignored);
  }

  AlertWebhook* owner;
  WebhookUrl url;
  std::chrono::milliseconds timeout;
  tcp::resolver resolver;
  tcp::socket socket;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls;
  asio::steady_timer deadline;
  std::string request;
  std::string response;
  std::array<char, 2048> chunk{};
  const char* stage = "resolve";
  bool finished = false;
};

}  // namespace detail

base::Result<std::unique_ptr<AlertWebhook>> AlertWebhook::create(asio::io_context& control, WebhookUrl url,
                                                                 stats::Shard& control_shard,
                                                                 WebhookOptions options) {
  if (options.timeout.count() <= 0) return base::Error{"alert webhook: the timeout must be positive"};
  if (options.retries < 0) return base::Error{"alert webhook: retries must not be negative"};
  if (options.queue_capacity == 0) return base::Error{"alert webhook: the queue needs room for one event"};
  std::unique_ptr<ssl::context> tls;
  if (url.tls) {
    tls = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
    tls->set_verify_mode(ssl::verify_peer);
    error_code ec;
    if (!options.ca_file.empty()) {
      tls->load_verify_file(options.ca_file, ec);
      if (ec)
        return base::Error{
            fmt::format("alert webhook: cannot load ca_file {}: {}", options.ca_file, ec.message())};
    } else {
      tls->set_default_verify_paths(ec);
      if (ec) return base::Error{fmt::format("alert webhook: cannot load the system CAs: {}", ec.message())};
    }
  }
  return std::unique_ptr<AlertWebhook>(
      new AlertWebhook(control, std::move(url), control_shard, std::move(options), std::move(tls)));
}

AlertWebhook::AlertWebhook(asio::io_context& control, WebhookUrl url, stats::Shard& control_shard,
                           WebhookOptions options, std::unique_ptr<ssl::context> tls)
    : io_(control),
      url_(std::move(url)),
      control_shard_(control_shard),
      options_(std::move(options)),
      tls_(std::move(tls)),
      backoff_(control) {
  request_head_ = fmt::format(
      "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: palisade/{}\r\nContent-Type: application/json\r\n",
      url_.target, url_.authority(), stats::kVersion);
  if (!url_.userinfo.empty()) request_head_ += "Authorization: Basic " + base64(url_.userinfo) + "\r\n";
  request_head_ += "Connection: close\r\nContent-Length: ";
}

AlertWebhook::~AlertWebhook() { stop(); }

bool AlertWebhook::post(std::string json_body) {
  control_thread_.check("AlertWebhook");
  if (stopped_ || queue_.size() >= options_.queue_capacity) {
    control_shard_.add(stats::Counter::AlertWebhooksDropped);
    ++drops_since_log_;
    auto now = std::chrono::steady_clock::now();
    if (!drop_logged_ || now - last_drop_log_ >= kDropLogInterval) {
      LOG_WARN("alert webhook: {}: {}; {} event(s) dropped since the last warning", url_.redacted(),
               stopped_ ? "stopped" : fmt::format("queue full ({} events)", options_.queue_capacity),
               drops_since_log_);
      drop_logged_ = true;
      last_drop_log_ = now;
      drops_since_log_ = 0;
    }
    return false;
  }
  queue_.push_back(std::move(json_body));
  if (queue_.size() == 1) startAttempt();  // otherwise one is in flight or waiting to retry
  return true;
}

void AlertWebhook::startAttempt() {
  const std::string& body = queue_.front();
  try {
    attempt_ = std::make_shared<detail::WebhookAttempt>(*this, io_);
    attempt_->request = request_head_ + std::to_string(body.size()) + "\r\n\r\n" + body;
    attempt_->start(tls_.get());
  } catch (const std::exception& e) {
    // Out of memory or SSL_new failing: a failed attempt, reported from the loop, not from here.
    if (attempt_ != nullptr) attempt_->abandon();
    attempt_.reset();
    asio::post(io_, [this, alive = std::weak_ptr<int>(alive_), why = std::string(e.what())] {
      if (!alive.expired() && !stopped_) attemptDone(0, why);
    });
  }
}

void AlertWebhook::attemptDone(int status, const std::string& error) {
  control_thread_.check("AlertWebhook");
  attempt_.reset();
  if (status >= 200 && status < 300) {
    control_shard_.add(stats::Counter::AlertWebhooksSent);
    LOG_DEBUG("alert webhook: {}: delivered ({})", url_.redacted(), status);
    queue_.pop_front();
    failures_ = 0;
    next();
    return;
  }
  ++failures_;
  std::string why = status != 0 ? fmt::format("HTTP status {}", status) : error;
  if (failures_ > options_.retries) {
    control_shard_.add(stats::Counter::AlertWebhooksFailed);
    LOG_WARN("alert webhook: {}: event given up after {} attempt(s): {}", url_.redacted(), failures_, why);
    queue_.pop_front();
    failures_ = 0;
    next();
    return;
  }
  auto delay = options_.backoff * (1 << std::min(failures_ - 1, 16));
  LOG_DEBUG("alert webhook: {}: attempt {} failed ({}); retrying in {} ms", url_.redacted(), failures_, why,
            delay.count());
  backoff_.expires_after(delay);
  backoff_.async_wait([this, alive = std::weak_ptr<int>(alive_)](const error_code& ec) {
    if (ec || alive.expired() || stopped_) return;
    startAttempt();
  });
}

void AlertWebhook::next() {
  if (!stopped_ && !queue_.empty()) startAttempt();
}

void AlertWebhook::stop() {
  if (stopped_) return;
  stopped_ = true;
  backoff_.cancel();
  if (attempt_ != nullptr) {
    attempt_->abandon();
    attempt_.reset();
  }
  if (!queue_.empty())
    LOG_WARN("alert webhook: {}: stopped with {} event(s) not delivered", url_.redacted(), queue_.size());
  queue_.clear();
}

}  // namespace palisade::app
