#include "core/app/alert_webhook.h"

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include "core/stats/metrics.h"
#include "tests/support/test_certs.h"

namespace palisade::app {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using stats::Counter;
using namespace std::chrono_literals;

// ---- URL parsing -------------------------------------------------------------------------

TEST(WebhookUrl, ParsesHttpAndHttps) {
  auto plain = parseWebhookUrl("http://alerts.example.com");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_FALSE(plain->tls);
  EXPECT_EQ(plain->host, "alerts.example.com");
  EXPECT_FALSE(plain->host_is_address);
  EXPECT_EQ(plain->port, 80);
  EXPECT_EQ(plain->target, "/");
  EXPECT_EQ(plain->authority(), "alerts.example.com");

  auto secure = parseWebhookUrl("HTTPS://Hooks.Example.com:8443/palisade/events?token=abc");
  ASSERT_TRUE(secure.ok()) << secure.error().message;
  EXPECT_TRUE(secure->tls);
  EXPECT_EQ(secure->host, "Hooks.Example.com");
  EXPECT_EQ(secure->port, 8443);
  EXPECT_EQ(secure->target, "/palisade/events?token=abc");
  EXPECT_EQ(secure->authority(), "Hooks.Example.com:8443");

  auto v4 = parseWebhookUrl("https://192.0.2.7/hook");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->host_is_address);
  EXPECT_EQ(v4->port, 443);
  EXPECT_EQ(v4->authority(), "192.0.2.7");

  auto v6 = parseWebhookUrl("http://[2001:db8::1]:9000?x=1");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_TRUE(v6->host_is_address);
  EXPECT_EQ(v6->port, 9000);
  EXPECT_EQ(v6->target, "/?x=1");
  EXPECT_EQ(v6->authority(), "[2001:db8::1]:9000");

  auto user = parseWebhookUrl("https://ops:p%40ss:w0rd@hooks.example.com/x");
  ASSERT_TRUE(user.ok()) << user.error().message;
  EXPECT_EQ(user->userinfo, "ops:p@ss:w0rd");
  EXPECT_EQ(user->host, "hooks.example.com");
}

TEST(WebhookUrl, RejectsBadValuesWithClearMessages) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "must start with http:// or https://"},
      {"alerts.example.com/hook", "must start with http:// or https://"},
      {"ftp://alerts.example.com/", "scheme must be http or https"},
      {"http://", "no host"},
      {"http:///path", "no host"},
      {"http://:8080/", "no host"},
      {"http://host:/", "empty port"},
      {"http://host:0/", "port must be a number from 1 to 65535"},
      {"http://host:65536/", "port must be a number from 1 to 65535"},
      {"http://host:80a/", "port must be a number from 1 to 65535"},
      {"http://host:-1/", "port must be a number from 1 to 65535"},
      {"http://[2001:db8::1/", "closing ']'"},
      {"http://[not-v6]/", "not a valid IPv6 address"},
      {"http://[fe80::1%25eth0]/", "not a valid IPv6 address"},
      {"http://[::1]x/", "after the IPv6 address"},
      {"http://999.0.0.1/", "not a valid IPv4 address"},
      {"http://1.2.3/", "not a valid IPv4 address"},
      {"http://-bad-.example/", "must be a DNS name"},
      {"http://bad_name.example/", "must be a DNS name"},
      {"http://a..b/", "must be a DNS name"},
      {"http://host/a b", "space, control or non-ASCII"},
      {"http://host/a\r\nX-Injected: 1", "space, control or non-ASCII"},
      {"http://host/caf\xC3\xA9", "space, control or non-ASCII"},
      {"http://host/#frag", "fragment"},
      {"http://us er@host/", "userinfo has a character"},
      {"http://user:%zz@host/", "bad %-escape"},
      {"http://user:%4@host/", "bad %-escape"},
  };
  for (const auto& [text, expected] : cases) {
    auto url = parseWebhookUrl(text);
    ASSERT_FALSE(url.ok()) << text;
    EXPECT_NE(url.error().message.find(expected), std::string::npos) << text << " → " << url.error().message;
    EXPECT_EQ(url.error().message.rfind("alert webhook URL: ", 0), 0u) << url.error().message;
  }
}

TEST(WebhookUrl, NeitherErrorsNorRedactedFormRepeatSecrets) {
  for (const char* text :
       {"http://admin:hunter2@/", "http://admin:hunter2@host:99999/", "ftp://admin:hunter2@h/"}) {
    auto url = parseWebhookUrl(text);
    ASSERT_FALSE(url.ok()) << text;
    EXPECT_EQ(url.error().message.find("hunter2"), std::string::npos) << url.error().message;
  }
  auto url = parseWebhookUrl("https://admin:hunter2@hooks.example.com/services/T00/B00/s3cr3t?key=k3y");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->redacted(), "https://hooks.example.com/services/...");
  auto root = parseWebhookUrl("http://[::1]:8080?key=k3y");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->redacted(), "http://[::1]:8080/");
  auto single = parseWebhookUrl("http://127.0.0.1/alerts");
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->redacted(), "http://127.0.0.1/alerts");
}

// ---- A local HTTP(S) server on 127.0.0.1 -------------------------------------------------

enum class Reply { Ok, ServerError, Hang, CloseSilently, InterimThenNoContent };

struct Received {
  std::string head;  // request line and header fields, up to the blank line
  std::string body;
  std::string sni;  // TLS: the server name the client sent, if any
};

// Accepts on an ephemeral port, reads one request per connection and answers per `script`
// (connection i gets script[min(i, size-1)]). Runs on the test's io_context, with the webhook.
class TestServer {
 public:
  TestServer(asio::io_context& io, std::vector<Reply> script, ssl::context* tls = nullptr)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        script_(std::move(script)),
        tls_(tls) {
    accept();
  }
  ~TestServer() {
    error_code ignored;
    acceptor_.close(ignored);
    for (auto& connection : connections_) connection->socket.close(ignored);
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  const std::vector<Received>& requests() const { return requests_; }
  std::size_t accepted() const { return connections_.size(); }
  int maxOpen() const { return max_open_; }

 private:
  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(TestServer& s, tcp::socket sock, Reply r) : server(s), socket(std::move(sock)), reply(r) {}
    TestServer& server;
    tcp::socket socket;
    std::unique_ptr<ssl::stream<tcp::socket&>> tls;
    Reply reply;
    std::string buffer;
    std::array<char, 4096> chunk{};
    std::string answer;
    bool open = true;

    void start() {
      ++server.open_;
      server.max_open_ = std::max(server.max_open_, server.open_);
      if (server.tls_ == nullptr) return read();
      tls = std::make_unique<ssl::stream<tcp::socket&>>(socket, *server.tls_);
      tls->async_handshake(ssl::stream_base::server, [self = shared_from_this()](const error_code& ec) {
        if (ec) return self->end();
        self->read();
      });
    }

    void read() {
      auto done = [self = shared_from_this()](const error_code& ec, std::size_t n) {
        if (ec) return self->end();
        self->buffer.append(self->chunk.data(), n);
        if (!self->complete()) return self->read();
        self->respond();
      };
      if (tls) {
        tls->async_read_some(asio::buffer(chunk), done);
      } else {
        socket.async_read_some(asio::buffer(chunk), done);
      }
    }

    bool complete() {
      std::size_t head_end = buffer.find("\r\n\r\n");
      if (head_end == std::string::npos) return false;
      std::string head = buffer.substr(0, head_end);
      std::string lower = head;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::size_t at = lower.find("\r\ncontent-length: ");
      std::size_t length = at == std::string::npos ? 0 : std::stoul(head.substr(at + 18));
      if (buffer.size() < head_end + 4 + length) return false;
      Received received{head, buffer.substr(head_end + 4, length), {}};
      if (tls) {
        const char* name = SSL_get_servername(tls->native_handle(), TLSEXT_NAMETYPE_host_name);
        if (name != nullptr) received.sni = name;
      }
      server.requests_.push_back(std::move(received));
      return true;
    }

    void respond() {
      switch (reply) {
        case Reply::Hang:
          return;
        case Reply::CloseSilently:
          return end();
        case Reply::Ok:
          answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
          break;
        case Reply::ServerError:
          answer = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
          break;
        case Reply::InterimThenNoContent:
          answer =
              "HTTP/1.1 100 Continue\r\nX-A: b\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
          break;
      }
      auto done = [self = shared_from_this()](const error_code&, std::size_t) { self->end(); };
      if (tls) {
        asio::async_write(*tls, asio::buffer(answer), done);
      } else {
        asio::async_write(socket, asio::buffer(answer), done);
      }
    }

    void end() {
      if (!open) return;
      open = false;
      --server.open_;
      error_code ignored;
      socket.close(ignored);
    }
  };

  void accept() {
    acceptor_.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (ec) return;
      Reply reply = script_[std::min(connections_.size(), script_.size() - 1)];
      connections_.push_back(std::make_shared<Connection>(*this, std::move(socket), reply));
      connections_.back()->start();
      accept();
    });
  }

  tcp::acceptor acceptor_;
  std::vector<Reply> script_;
  ssl::context* tls_;
  std::vector<std::shared_ptr<Connection>> connections_;  // kept: a hanging one stays open
  std::vector<Received> requests_;
  int open_ = 0;
  int max_open_ = 0;
};

class AlertWebhookTest : public ::testing::Test {
 protected:
  stats::Metrics metrics{1};
  asio::io_context io;

  std::uint64_t count(Counter c) const { return metrics.total(c); }

  // Runs the io_context until `done` or `limit`; true if `done`.
  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(5ms);
    }
    return done();
  }

  std::unique_ptr<AlertWebhook> webhook(const std::string& url_text, WebhookOptions options = fast()) {
    auto url = parseWebhookUrl(url_text);
    EXPECT_TRUE(url.ok()) << (url.ok() ? "" : url.error().message);
    if (!url.ok()) return nullptr;
    auto created = AlertWebhook::create(io, url.value(), metrics.controlShard(), options);
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message);
    return created.ok() ? std::move(created.value()) : nullptr;
  }

  static WebhookOptions fast() {
    WebhookOptions options;
    options.timeout = 2000ms;
    options.retries = 0;
    options.backoff = 20ms;
    return options;
  }

  std::string base(const TestServer& server) const {
    return "http://127.0.0.1:" + std::to_string(server.port());
  }
};

TEST_F(AlertWebhookTest, DeliversOnePostWithItsHeaders) {
  TestServer server(io, {Reply::Ok});
  auto hook = webhook(base(server) + "/hooks/alert?source=palisade");
  ASSERT_NE(hook, nullptr);
  const std::string body = R"({"event":"fraud_spike","source":"user:2001"})";
  EXPECT_TRUE(hook->post(body));
  ASSERT_TRUE(runUntil([&] { return count(Counter::AlertWebhooksSent) == 1; }));
  ASSERT_EQ(server.requests().size(), 1u);
  const Received& got = server.requests()[0];
  EXPECT_EQ(got.head.substr(0, got.head.find("\r\n")), "POST /hooks/alert?source=palisade HTTP/1.1");
  EXPECT_NE(got.head.find("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"), std::string::npos)
      << got.head;
  EXPECT_NE(got.head.find("\r\nContent-Type: application/json\r\n"), std::string::npos) << got.head;
  EXPECT_NE(got.head.find("\r\nContent-Length: " + std::to_string(body.size())), std::string::npos)
      << got.head;
  EXPECT_NE(got.head.find("\r\nConnection: close"), std::string::npos) << got.head;
  EXPECT_NE(got.head.find("\r\nUser-Agent: palisade/" + std::string(stats::kVersion) + "\r\n"),
            std::string::npos)
      << got.head;
  EXPECT_EQ(got.head.find("Authorization"), std::string::npos);
  EXPECT_EQ(got.body, body);
  EXPECT_EQ(count(Counter::AlertWebhooksFailed), 0u);
  EXPECT_EQ(hook->pending(), 0u);
}

TEST_F(AlertWebhookTest, SendsEventsOneAtATimeInOrder) {
  TestServer server(io, {Reply::Ok});
  auto hook = webhook(base(server) + "/");
  ASSERT_NE(hook, nullptr);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(hook->post("{\"n\":" + std::to_string(i) + "}"));
  EXPECT_EQ(hook->pending(), 5u);
  ASSERT_TRUE(runUntil([&] { return count(Counter::AlertWebhooksSent) == 5; }));
  ASSERT_EQ(server.requests().size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(server.requests()[i].body, "{\"n\":" + std::to_string(i) + "}");
  EXPECT_EQ(server.maxOpen(), 1);
}

TEST_F(AlertWebhookTest, RetriesAfter500ThenDelivers) {
  TestServer server(io, {Reply::ServerError, Reply::ServerError, Reply::Ok});
  WebhookOptions options = fast();
  options.retries = 3;
  options.backoff = 30ms;
  auto hook = webhook(base(server) + "/retry", options);
  ASSERT_NE(hook, nullptr);
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(hook->post("{\"retry\":true}"));
  ASSERT_TRUE(runUntil([&] { return count(Counter::AlertWebhooksSent) == 1; }));
  // Backoff 30 ms, then 60 ms.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 90ms);
  ASSERT_EQ(server.requests().size(), 3u);
  EXPECT_EQ(server.requests()[2].body, "{\"retry\":true}");
  EXPECT_EQ(count(Counter::AlertWebhooksFailed), 0u);
}

TEST_F(AlertWebhookTest, InterimResponsesAreSkipped) {
  TestServer server(io, {Reply::InterimThenNoContent});
  auto hook = webhook(base(server));
  ASSERT_NE(hook, nullptr);
  EXPECT_TRUE(hook->post("{}"));
  ASSERT_TRUE(runUntil([&] { return count(Counter::AlertWebhooksSent) == 1; }));
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(AlertWebhookTest, GivesUpAfterTheRetriesAndMovesOn) {
  TestServer server(io, {Reply::ServerError, Reply::ServerError, Reply::ServerError, Reply::Ok});
  WebhookOptions options = fast();
  options.retries = 2;
  auto hook = webhook(base(server), options);
  ASSERT_NE(hook, nullptr);
  EXPECT_TRUE(hook->post("{\"first\":1}"));
  EXPECT_TRUE(hook->post("{\"second\":2}"));
  ASSERT_TRUE(runUntil([&] { return count(Counter::AlertWebhooksSent) == 1; }));
  EXPECT_EQ(count(Counter::AlertWebhooksFailed), 1u);
  ASSERT_EQ(server.requests().size(), 4u);
  EXPECT_EQ(server.requests()[2].body, "{\"first\":1}");
  EXPECT_EQ(server.requests()[3].body, "{\"second\":2}");
}

TEST_F(AlertWebhookTest, TimesOutOnAHangingServerThenFails) {
  TestServer server(io, {Reply::Hang});
  WebhookOptions options = fast();
  options.timeout = 150ms;
  options.retries = 2;
  auto hook = webhook(base(server), options);
  ASSERT_NE(hook, nullptr);
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(hook->post("{\"hang\":1}"));
  ASSERT_TRUE(runUntil([&] { return count(Counter::AlertWebhooksFailed) == 1; }));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 3 * 150ms + 20ms + 40ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(server.accepted(), 3u);
  EXPECT_EQ(server.requests().size(), 3u);  // each attempt sent its request, none got an answer
  EXPECT_EQ(count(Counter::AlertWebhooksSent), 0u);
}

TEST_F(AlertWebhookTest, AServerThatClosesWithoutAnAnswerFails) {
  TestServer server(io, {Reply::CloseSilently});
  auto hook = webhook(base(server));
  ASSERT_NE(hook, nullptr);
  EXPECT_TRUE(hook->post("{}"));
  ASSERT_TRUE(runUntil([&] { return count(Counter::AlertWebhooksFailed) == 1; }));
  EXPECT_EQ(count(Counter::AlertWebhooksSent), 0u);
}

TEST_F(AlertWebhookTest, ARefusedConnectionFails) {
  std::uint16_t closed_port;
  {
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    closed_port = probe.local_endpoint().port();
  }
  WebhookOptions options = fast();
  options.retries = 1;
  auto hook = webhook("http://127.0.0.1:" + std::to_string(closed_port) + "/", options);
  ASSERT_NE(hook, nullptr);
  EXPECT_TRUE(hook->post("{}"));
  ASSERT_TRUE(runUntil([&] { return count(Counter::AlertWebhooksFailed) == 1; }));
}

TEST_F(AlertWebhookTest, AFullQueueDropsAndCounts) {
  TestServer server(io, {Reply::Hang});
  WebhookOptions options = fast();
  options.queue_capacity = 2;
  auto hook = webhook(base(server), options);
  ASSERT_NE(hook, nullptr);
  EXPECT_TRUE(hook->post("{\"n\":1}"));  // in flight
  EXPECT_TRUE(hook->post("{\"n\":2}"));  // waiting
  EXPECT_FALSE(hook->post("{\"n\":3}"));
  EXPECT_FALSE(hook->post("{\"n\":4}"));
  EXPECT_EQ(count(Counter::AlertWebhooksDropped), 2u);
  EXPECT_EQ(hook->pending(), 2u);
}

TEST_F(AlertWebhookTest, StopAbandonsTheAttemptInFlight) {
  TestServer server(io, {Reply::Hang});
  WebhookOptions options = fast();
  options.timeout = 10s;
  auto hook = webhook(base(server), options);
  ASSERT_NE(hook, nullptr);
  EXPECT_TRUE(hook->post("{\"n\":1}"));
  EXPECT_TRUE(hook->post("{\"n\":2}"));
  ASSERT_TRUE(runUntil([&] { return server.requests().size() == 1; }));
  hook->stop();
  EXPECT_EQ(hook->pending(), 0u);
  EXPECT_FALSE(hook->post("{\"n\":3}"));
  EXPECT_EQ(count(Counter::AlertWebhooksDropped), 1u);
  hook.reset();
  // The abandoned attempt's handlers run after the webhook is gone: nothing is reported.
  runUntil([] { return false; }, 100ms);
  EXPECT_EQ(count(Counter::AlertWebhooksSent) + count(Counter::AlertWebhooksFailed), 0u);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(AlertWebhookTest, DestructionDuringTheBackoffIsClean) {
  TestServer server(io, {Reply::ServerError});
  WebhookOptions options = fast();
  options.retries = 3;
  options.backoff = 200ms;
  auto hook = webhook(base(server), options);
  ASSERT_NE(hook, nullptr);
  EXPECT_TRUE(hook->post("{}"));
  ASSERT_TRUE(runUntil([&] { return server.requests().size() == 1; }));
  runUntil([] { return false; }, 50ms);  // the 500 arrives, the backoff starts
  hook.reset();
  runUntil([] { return false; }, 300ms);
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(count(Counter::AlertWebhooksFailed), 0u);
}

TEST_F(AlertWebhookTest, UserinfoIsSentAsBasicAuth) {
  TestServer server(io, {Reply::Ok});
  auto hook = webhook("http://alice:s3cr%3At@127.0.0.1:" + std::to_string(server.port()) + "/");
  ASSERT_NE(hook, nullptr);
  EXPECT_TRUE(hook->post("{}"));
  ASSERT_TRUE(runUntil([&] { return count(Counter::AlertWebhooksSent) == 1; }));
  ASSERT_EQ(server.requests().size(), 1u);
  // base64("alice:s3cr:t")
  EXPECT_NE(server.requests()[0].head.find("\r\nAuthorization: Basic YWxpY2U6czNjcjp0\r\n"),
            std::string::npos)
      << server.requests()[0].head;
}

TEST_F(AlertWebhookTest, RejectsBadOptions) {
  auto url = parseWebhookUrl("http://127.0.0.1/");
  ASSERT_TRUE(url.ok());
  WebhookOptions options;
  options.timeout = 0ms;
  EXPECT_FALSE(AlertWebhook::create(io, url.value(), metrics.controlShard(), options).ok());
  options = {};
  options.queue_capacity = 0;
  EXPECT_FALSE(AlertWebhook::create(io, url.value(), metrics.controlShard(), options).ok());
  options = {};
  options.retries = -1;
  EXPECT_FALSE(AlertWebhook::create(io, url.value(), metrics.controlShard(), options).ok());
}

// ---- HTTPS against a local TLS server with DEV-ONLY test certificates -----------------------

class AlertWebhookTlsTest : public AlertWebhookTest {
 protected:
  testing::TempDir dir;
  testing::TestCert ca = makeCa("ca", "Palisade Test CA");
  ssl::context server_tls{ssl::context::tls_server};

  testing::TestCert makeCa(const std::string& name, const std::string& cn) {
    testing::TestCertSpec spec;
    spec.common_name = cn;
    spec.dns = {};
    spec.ips = {};
    spec.ca = true;
    return testing::makeTestCert(dir.path(), name, spec);
  }

  void serve(std::vector<std::string> dns, std::vector<std::string> ips) {
    testing::TestCertSpec spec;
    spec.common_name = dns.empty() ? "server" : dns.front();
    spec.dns = std::move(dns);
    spec.ips = std::move(ips);
    spec.issuer = &ca;
    testing::TestCert leaf = testing::makeTestCert(dir.path(), "leaf", spec);
    server_tls.use_certificate_chain_file(leaf.certificate);
    server_tls.use_private_key_file(leaf.key, ssl::context::pem);
  }

  WebhookOptions trusting(const testing::TestCert& authority) {
    WebhookOptions options = fast();
    options.ca_file = authority.certificate;
    return options;
  }
};

TEST_F(AlertWebhookTlsTest, VerifiesTheServerByNameAndSendsSni) {
  serve({"localhost"}, {});
  TestServer server(io, {Reply::Ok}, &server_tls);
  auto hook = webhook("https://localhost:" + std::to_string(server.port()) + "/secure", trusting(ca));
  ASSERT_NE(hook, nullptr);
  EXPECT_TRUE(hook->post("{\"tls\":true}"));
  ASSERT_TRUE(
      runUntil([&] { return count(Counter::AlertWebhooksSent) + count(Counter::AlertWebhooksFailed) == 1; }));
  ASSERT_EQ(count(Counter::AlertWebhooksSent), 1u);
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].sni, "localhost");
  EXPECT_EQ(server.requests()[0].body, "{\"tls\":true}");
  EXPECT_NE(server.requests()[0].head.find("\r\nHost: localhost:" + std::to_string(server.port()) + "\r\n"),
            std::string::npos);
}

TEST_F(AlertWebhookTlsTest, VerifiesAnAddressAgainstTheIpSanWithoutSni) {
  serve({}, {"127.0.0.1"});
  TestServer server(io, {Reply::Ok}, &server_tls);
  auto hook = webhook("https://127.0.0.1:" + std::to_string(server.port()) + "/", trusting(ca));
  ASSERT_NE(hook, nullptr);
  EXPECT_TRUE(hook->post("{}"));
  ASSERT_TRUE(
      runUntil([&] { return count(Counter::AlertWebhooksSent) + count(Counter::AlertWebhooksFailed) == 1; }));
  ASSERT_EQ(count(Counter::AlertWebhooksSent), 1u);
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].sni, "");
}

TEST_F(AlertWebhookTlsTest, RefusesACertificateForAnotherName) {
  serve({"other.test"}, {"127.0.0.2"});
  TestServer server(io, {Reply::Ok}, &server_tls);
  auto by_name = webhook("https://localhost:" + std::to_string(server.port()) + "/", trusting(ca));
  auto by_address = webhook("https://127.0.0.1:" + std::to_string(server.port()) + "/", trusting(ca));
  ASSERT_NE(by_name, nullptr);
  ASSERT_NE(by_address, nullptr);
  EXPECT_TRUE(by_name->post("{}"));
  EXPECT_TRUE(by_address->post("{}"));
  ASSERT_TRUE(runUntil([&] { return count(Counter::AlertWebhooksFailed) == 2; }));
  EXPECT_EQ(count(Counter::AlertWebhooksSent), 0u);
  EXPECT_EQ(server.requests().size(), 0u);  // nothing was sent to the wrong server
}

TEST_F(AlertWebhookTlsTest, RefusesAServerFromAnotherCa) {
  serve({"localhost"}, {"127.0.0.1"});
  testing::TestCert stranger = makeCa("stranger", "Some Other CA");
  TestServer server(io, {Reply::Ok}, &server_tls);
  auto hook = webhook("https://localhost:" + std::to_string(server.port()) + "/", trusting(stranger));
  ASSERT_NE(hook, nullptr);
  EXPECT_TRUE(hook->post("{}"));
  ASSERT_TRUE(runUntil([&] { return count(Counter::AlertWebhooksFailed) == 1; }));
  EXPECT_EQ(count(Counter::AlertWebhooksSent), 0u);
  EXPECT_EQ(server.requests().size(), 0u);
}

TEST_F(AlertWebhookTlsTest, AMissingCaFileIsAnError) {
  auto url = parseWebhookUrl("https://localhost/");
  ASSERT_TRUE(url.ok());
  WebhookOptions options;
  options.ca_file = dir.file("nope.pem");
  auto created = AlertWebhook::create(io, url.value(), metrics.controlShard(), options);
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.error().message.find(dir.file("nope.pem")), std::string::npos) << created.error().message;
  // The system's trust store is the default.
  EXPECT_TRUE(AlertWebhook::create(io, url.value(), metrics.controlShard(), WebhookOptions{}).ok());
}

}  // namespace
}  // namespace palisade::app
