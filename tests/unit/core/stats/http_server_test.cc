#include "core/stats/http_server.h"

#include <poll.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include "core/stats/metrics.h"

namespace palisade::stats {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto kClientTimeout = std::chrono::seconds(5);

struct HttpReply {
  std::string status_line;
  std::string headers;  // raw, each line ending in CRLF
  std::string body;
  bool complete = false;  // the server closed the connection (EOF) rather than timing out
};

// A blocking client whose reads give up after kClientTimeout, so a broken server fails the test
// instead of hanging it. (Asio's blocking reads poll without a timeout, hence the explicit poll.)
class Client {
 public:
  explicit Client(std::uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  void send(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }

  // Everything until the server closes; `complete` is false if the read timed out or reset.
  std::string readAll(bool& complete) {
    std::string out;
    char buf[4096];
    const auto deadline = std::chrono::steady_clock::now() + kClientTimeout;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd pfd{socket_.native_handle(), POLLIN, 0};
      if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) != 1) {
        complete = false;
        return out;
      }
      error_code ec;
      std::size_t n = socket_.read_some(asio::buffer(buf), ec);
      out.append(buf, n);
      if (ec) {
        complete = ec == asio::error::eof;
        return out;
      }
    }
  }

  HttpReply exchange(const std::string& request) {
    send(request);
    HttpReply reply;
    std::string raw = readAll(reply.complete);
    std::size_t line_end = raw.find("\r\n");
    std::size_t head_end = raw.find("\r\n\r\n");
    if (line_end == std::string::npos || head_end == std::string::npos) {
      reply.status_line = raw;
      return reply;
    }
    reply.status_line = raw.substr(0, line_end);
    reply.headers = raw.substr(line_end + 2, head_end + 2 - (line_end + 2));
    reply.body = raw.substr(head_end + 4);
    return reply;
  }

  void close() { socket_.close(); }

 private:
  asio::io_context io_;
  tcp::socket socket_;
};

class ManagementServerTest : public ::testing::Test {
 protected:
  void start(ManagementServer::Limits limits = {}, ManagementServer::MetricsSource source = {}) {
    if (!source) source = [this] { return metrics_body_; };
    server_ = std::make_unique<ManagementServer>(io_, "127.0.0.1", 0, std::move(source), limits);
    auto started = server_->start();
    ASSERT_TRUE(started.ok()) << started.error().message;
    ASSERT_NE(server_->port(), 0);
    std::promise<void> done;
    finished_ = done.get_future();
    io_thread_ = std::thread([this, done = std::move(done)]() mutable {
      io_.run();
      done.set_value();
    });
  }

  // Runs `f` on the control (io) thread and returns its result.
  template <typename F>
  auto onIo(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(io_, [&task] { task(); });
    return result.get();
  }

  // Stops the server on its thread; true if the io_context then ran out of work by itself.
  bool stopAndDrain() {
    if (!io_thread_.joinable()) return true;
    asio::post(io_, [this] { server_->stop(); });
    bool drained = finished_.wait_for(std::chrono::seconds(3)) == std::future_status::ready;
    if (!drained) io_.stop();
    io_thread_.join();
    return drained;
  }

  void TearDown() override {
    stopAndDrain();
    server_.reset();
  }

  HttpReply get(const std::string& request) { return Client(server_->port()).exchange(request); }

  asio::io_context io_;
  std::string metrics_body_ = "palisade_test_metric 42\n";
  std::unique_ptr<ManagementServer> server_;
  std::thread io_thread_;
  std::future<void> finished_;
};

TEST_F(ManagementServerTest, ServesMetricsFromTheCallerSource) {
  start();
  HttpReply r = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_NE(r.headers.find("Content-Type: text/plain; version=0.0.4\r\n"), std::string::npos) << r.headers;
  EXPECT_NE(r.headers.find("Content-Length: 24\r\n"), std::string::npos) << r.headers;
  EXPECT_NE(r.headers.find("Connection: close\r\n"), std::string::npos) << r.headers;
  EXPECT_EQ(r.body, "palisade_test_metric 42\n");
}

TEST_F(ManagementServerTest, ServesRenderedMetricsWithQueryString) {
  Metrics metrics(1);
  metrics.shard(0).add(Counter::CallsAnswered, 9);
  metrics_body_ = metrics.renderPrometheus();
  start();
  HttpReply r = get("GET /metrics?name[]=x HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.body, metrics_body_);
  EXPECT_NE(r.body.find("\npalisade_calls_answered_total 9\n"), std::string::npos);
}

TEST_F(ManagementServerTest, Health) {
  start();
  HttpReply r = get("GET /health HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.body, "ok\n");
}

TEST_F(ManagementServerTest, UnknownPathIs404) {
  start();
  EXPECT_EQ(get("GET /nope HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 404 Not Found");
  EXPECT_EQ(get("GET /metricsX HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 404 Not Found");
  EXPECT_EQ(get("GET / HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 404 Not Found");
}

TEST_F(ManagementServerTest, NonGetIs405WithAllow) {
  start();
  HttpReply r = get("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.status_line, "HTTP/1.1 405 Method Not Allowed");
  EXPECT_NE(r.headers.find("Allow: GET\r\n"), std::string::npos);
  EXPECT_EQ(get("DELETE /health HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(get("get /health HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 405 Method Not Allowed");
}

TEST_F(ManagementServerTest, OversizedHeadIs431) {
  start();
  // No blank line ever arrives: the server must stop reading at the limit.
  HttpReply r = get("GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(9000, 'a'));
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.status_line, "HTTP/1.1 431 Request Header Fields Too Large");
  // Complete, but one byte over.
  const std::string prefix = "GET /health HTTP/1.1\r\nX: ";
  const std::string over = prefix + std::string(8192 + 1 - prefix.size() - 4, 'b') + "\r\n\r\n";
  ASSERT_EQ(over.size(), 8193u);
  EXPECT_EQ(get(over).status_line, "HTTP/1.1 431 Request Header Fields Too Large");
}

TEST_F(ManagementServerTest, HeadOfExactlyTheLimitIsServed) {
  start();
  const std::string prefix = "GET /health HTTP/1.1\r\nX: ";
  const std::string exact = prefix + std::string(8192 - prefix.size() - 4, 'b') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), 8192u);
  EXPECT_EQ(get(exact).status_line, "HTTP/1.1 200 OK");
}

TEST_F(ManagementServerTest, ConfigurableHeadLimit) {
  ManagementServer::Limits limits;
  limits.max_head_bytes = 64;
  start(limits);
  EXPECT_EQ(get("GET /health HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 200 OK");
  // Both arrive in one read, so only the position of the blank line decides.
  const std::string prefix = "GET /health HTTP/1.1\r\nX: ";
  EXPECT_EQ(get(prefix + std::string(64 - prefix.size() - 4, 'b') + "\r\n\r\n").status_line,
            "HTTP/1.1 200 OK");
  EXPECT_EQ(get(prefix + std::string(65 - prefix.size() - 4, 'b') + "\r\n\r\n").status_line,
            "HTTP/1.1 431 Request Header Fields Too Large");
  EXPECT_EQ(get("GET /health HTTP/1.1\r\nUser-Agent: " + std::string(60, 'u') + "\r\n\r\n").status_line,
            "HTTP/1.1 431 Request Header Fields Too Large");
}

TEST_F(ManagementServerTest, MalformedRequestsGet400AndServerKeepsServing) {
  start();
  const std::string bad[] = {
      std::string("\x00\x01\xff\xfe\r\n\r\n", 8),
      "GET\r\n\r\n",
      "GET /health\r\n\r\n",
      "GET /health HTTP/2.0\r\n\r\n",
      "GET health HTTP/1.1\r\n\r\n",
      "GET  /health HTTP/1.1\r\n\r\n",
      "G(T /health HTTP/1.1\r\n\r\n",
      "GET /health HTTP/1.1 extra\r\n\r\n",
  };
  for (const auto& request : bad) {
    HttpReply r = get(request);
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.status_line, "HTTP/1.1 400 Bad Request") << request;
  }
  EXPECT_EQ(get("GET /health HTTP/1.1\r\n\r\n").body, "ok\n");
}

TEST_F(ManagementServerTest, AcceptsBareLfLeadingBlankLinesAndFragments) {
  start();
  EXPECT_EQ(get("GET /health HTTP/1.0\n\n").status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(get("\r\n\r\nGET /health HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 200 OK");

  Client client(server_->port());
  const std::string request = "GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
  for (char c : request) client.send(std::string(1, c));
  bool complete = false;
  std::string raw = client.readAll(complete);
  EXPECT_TRUE(complete);
  EXPECT_EQ(raw.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << raw;
}

TEST_F(ManagementServerTest, ThrowingSourceGives500) {
  start({}, []() -> std::string { throw std::runtime_error("boom"); });
  EXPECT_EQ(get("GET /metrics HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 500 Internal Server Error");
  EXPECT_EQ(get("GET /health HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 200 OK");
}

TEST_F(ManagementServerTest, IdleConnectionIsClosedAfterReadTimeout) {
  ManagementServer::Limits limits;
  limits.read_timeout = std::chrono::milliseconds(200);
  start(limits);
  Client client(server_->port());
  client.send("GET /health HTTP/1.1\r\n");  // never finished
  const auto begin = std::chrono::steady_clock::now();
  bool complete = false;
  EXPECT_EQ(client.readAll(complete), "");
  EXPECT_TRUE(complete) << "server did not close the idle connection";
  EXPECT_GE(std::chrono::steady_clock::now() - begin, std::chrono::milliseconds(150));
  EXPECT_EQ(onIo([this] { return server_->connectionCount(); }), 0u);
}

TEST_F(ManagementServerTest, ConnectionsOverTheLimitAreClosedAtOnce) {
  ManagementServer::Limits limits;
  limits.max_connections = 2;
  limits.read_timeout = std::chrono::seconds(30);
  start(limits);
  auto first = std::make_unique<Client>(server_->port());
  Client second(server_->port());
  // The listen queue is FIFO, so the first two are accepted before the third.
  Client third(server_->port());
  bool complete = false;
  EXPECT_EQ(third.readAll(complete), "");
  EXPECT_TRUE(complete) << "excess connection was not closed";
  EXPECT_EQ(onIo([this] { return server_->connectionCount(); }), 2u);

  first->close();
  first.reset();
  // Wait (without sleeping) until the server has seen the close.
  const auto deadline = std::chrono::steady_clock::now() + kClientTimeout;
  while (onIo([this] { return server_->connectionCount(); }) > 1 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(get("GET /health HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 200 OK");
}

TEST_F(ManagementServerTest, StopClosesListenerAndOpenConnections) {
  ManagementServer::Limits limits;
  limits.read_timeout = std::chrono::seconds(60);  // so only stop() can end the idle connection
  start(limits);
  const std::uint16_t port = server_->port();
  Client idle(port);
  idle.send("GET /he");
  ASSERT_EQ(get("GET /health HTTP/1.1\r\n\r\n").body, "ok\n");  // the idle one is surely accepted now

  EXPECT_TRUE(stopAndDrain()) << "io_context still had work after stop()";
  bool complete = false;
  EXPECT_EQ(idle.readAll(complete), "");
  EXPECT_TRUE(complete);
  asio::io_context io;
  tcp::socket probe(io);
  error_code ec;
  probe.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  EXPECT_TRUE(ec) << "listener still accepting after stop()";
  server_->stop();  // idempotent
}

TEST_F(ManagementServerTest, BindFailureNamesTheEndpoint) {
  start();
  asio::io_context other;
  ManagementServer clash(other, "127.0.0.1", server_->port(), [] { return std::string(); });
  auto result = clash.start();
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("127.0.0.1:" + std::to_string(server_->port())), std::string::npos)
      << result.error().message;
  EXPECT_EQ(clash.port(), 0);
}

TEST(ManagementServerStartTest, RejectsNonNumericAddressAndDoubleStart) {
  asio::io_context io;
  ManagementServer named(io, "localhost", 0, [] { return std::string(); });
  auto bad = named.start();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("localhost"), std::string::npos);

  ManagementServer twice(io, "127.0.0.1", 0, [] { return std::string(); });
  ASSERT_TRUE(twice.start().ok());
  EXPECT_FALSE(twice.start().ok());
}

TEST(ManagementServerStartTest, ListensOnIpv6Loopback) {
  asio::io_context io;
  ManagementServer server(io, "::1", 0, [] { return std::string(); });
  auto started = server.start();
  if (!started.ok()) GTEST_SKIP() << "no IPv6 loopback: " << started.error().message;
  EXPECT_NE(server.port(), 0);
}

}  // namespace
}  // namespace palisade::stats
