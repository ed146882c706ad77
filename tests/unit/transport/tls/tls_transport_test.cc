// TLS on the stream transport, on real loopback sockets driven on the test thread: a handshake
// and messages both ways, the handshake deadline and limits, a client that speaks plain SIP to
// the TLS port, new certificates for new handshakes only, and mutual TLS for a trunk.
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/ssl.hpp>

#include "certs/cert_store.h"
#include "tests/support/test_certs.h"
#include "transport/tcp/tcp_transport.h"

namespace palisade::transport {
namespace {

using boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using SslClient = boost::asio::ssl::stream<tcp::socket>;

class Receiver final : public net::Receiver {
 public:
  void onPacket(const net::Flow& flow, std::string&& bytes, bool) override {
    packets.push_back({flow, bytes});
  }
  void onStreamFault(const net::Flow&, std::string&&, int, std::string_view) override {}
  void onStreamClosed(const net::Flow&) override { ++closed; }
  std::vector<std::pair<net::Flow, std::string>> packets;
  int closed = 0;
};

class Filter final : public policy::PacketFilter {
 public:
  bool admit(net::Flow& flow, std::string_view) override {
    flow.peer = peer;
    return true;
  }
  std::string_view peerName(const net::Flow& flow) const override {
    return flow.peer != 0 ? std::string_view("carrier") : std::string_view();
  }
  std::uint16_t peer = 0;
};

std::string options() {
  return "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-t\r\n"
         "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
         "Content-Length: 0\r\n\r\n";
}

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

class TlsTransportTest : public ::testing::Test {
 protected:
  TlsTransportTest() {
    std::signal(SIGPIPE, SIG_IGN);  // as the daemon does: OpenSSL writes with write(2)
    testing::TestCertSpec ca;
    ca.common_name = "Test CA";
    ca.dns = {};
    ca.ips = {};
    ca.ca = true;
    ca_ = testing::makeTestCert(dir_.path(), "ca", ca);
    testing::TestCertSpec server;
    server.issuer = &ca_;
    server_ = testing::makeTestCert(dir_.path(), "server", server);
    settings_.handshake_timeout_s = 1;
  }

  std::shared_ptr<const certs::TlsContexts> contexts(const testing::TestCert& cert, bool mutual = false) {
    config::Config c;
    c.source_name = "test.toml";
    c.tls.certificates.push_back(config::TlsCertificate{cert.certificate, cert.key, 1});
    if (mutual) {
      c.trunks.front().tls_client_ca = ca_.certificate;
      c.trunks.front().tls_client_names = {"carrier.example"};
    }
    auto built = certs::buildTlsContexts(c, tickets_, now());
    EXPECT_TRUE(built.ok()) << built.error().toString();
    return built.ok() ? built.value() : nullptr;
  }

  void start(std::shared_ptr<const certs::TlsContexts> tls) {
    tcp_ = std::make_unique<TcpTransport>(io_, 0, receiver_, &filter_, metrics_.shard(0), limiter_,
                                          tls_limiter_, settings_);
    auto listened =
        tcp_->listen(net::Side::Public, boost::asio::ip::make_address("127.0.0.1"), 0, net::Transport::Tls);
    ASSERT_TRUE(listened.ok()) << listened.error().message;
    port_ = tcp_->localPort(net::Side::Public, net::Transport::Tls);
    tcp_->setTls(std::move(tls), {});
    tcp_->start();
  }

  bool runUntil(const std::function<bool()>& done,
                std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    auto deadline = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > deadline) return false;
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  boost::asio::ssl::context clientContext(const testing::TestCert* cert = nullptr) {
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_client);
    ctx.load_verify_file(ca_.certificate);
    ctx.set_verify_mode(boost::asio::ssl::verify_peer);
    if (cert != nullptr) {
      ctx.use_certificate_file(cert->certificate, boost::asio::ssl::context::pem);
      ctx.use_private_key_file(cert->key, boost::asio::ssl::context::pem);
    }
    return ctx;
  }

  // Connects and handshakes; the result says whether the handshake succeeded.
  bool handshake(SslClient& client) {
    client.next_layer().connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_));
    bool done = false;
    boost::system::error_code result;
    client.async_handshake(boost::asio::ssl::stream_base::client, [&](const boost::system::error_code& ec) {
      result = ec;
      done = true;
    });
    EXPECT_TRUE(runUntil([&] { return done; }));
    return done && !result;
  }

  // Reads from the client until `predicate` holds for what arrived, or the stream ends.
  std::string readUntil(SslClient& client, const std::function<bool(const std::string&)>& predicate,
                        bool* ended = nullptr) {
    std::string received;
    bool finished = false;
    std::array<char, 4096> buffer{};
    std::function<void()> next = [&] {
      client.async_read_some(boost::asio::buffer(buffer),
                             [&](const boost::system::error_code& ec, std::size_t n) {
                               received.append(buffer.data(), n);
                               if (ec) {
                                 if (ended != nullptr) *ended = true;
                                 finished = true;
                                 return;
                               }
                               if (predicate(received)) {
                                 finished = true;
                                 return;
                               }
                               next();
                             });
    };
    next();
    runUntil([&] { return finished; });
    return received;
  }

  std::uint64_t counter(stats::Counter c) const { return metrics_.total(c); }

  testing::TempDir dir_;
  testing::TestCert ca_;
  testing::TestCert server_;
  std::shared_ptr<certs::TicketKeys> tickets_ = std::make_shared<certs::TicketKeys>();
  boost::asio::io_context io_;
  Receiver receiver_;
  Filter filter_;
  stats::Metrics metrics_{1};
  ConnectionLimiter limiter_;
  ConnectionLimiter tls_limiter_;
  StreamSettings settings_;
  std::unique_ptr<TcpTransport> tcp_;
  std::uint16_t port_ = 0;
};

TEST_F(TlsTransportTest, CarriesMessagesBothWaysOverTls) {
  start(contexts(server_));
  auto ctx = clientContext();
  SslClient client(io_, ctx);
  ASSERT_TRUE(handshake(client));
  EXPECT_EQ(std::string(SSL_get_version(client.native_handle())), "TLSv1.3");
  std::string request = options() + options();
  bool written = false;
  boost::asio::async_write(client, boost::asio::buffer(request),
                           [&](const boost::system::error_code& ec, std::size_t) { written = !ec; });
  ASSERT_TRUE(runUntil([&] { return written && receiver_.packets.size() == 2; }));
  const net::Flow& flow = receiver_.packets[0].first;
  EXPECT_EQ(flow.transport, net::Transport::Tls);
  EXPECT_EQ(receiver_.packets[0].second, options());
  EXPECT_EQ(counter(stats::Counter::MessagesInTls), 2u);
  EXPECT_EQ(counter(stats::Counter::TlsHandshakes), 1u);

  // A large answer crosses several TLS records.
  std::string answer = "SIP/2.0 200 OK\r\nContent-Length: 40000\r\n\r\n" + std::string(40000, 'x');
  tcp_->send(flow, std::string(answer));
  std::string got = readUntil(client, [&](const std::string& r) { return r.size() >= answer.size(); });
  EXPECT_EQ(got, answer);
  EXPECT_EQ(counter(stats::Counter::MessagesOutTls), 1u);
}

TEST_F(TlsTransportTest, AClientThatNeverHandshakesIsClosedOnTimeAndFreesItsSlot) {
  settings_.max_handshakes_per_ip = 1;
  start(contexts(server_));
  tcp::socket idle(io_);
  idle.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_));
  ASSERT_TRUE(runUntil([&] { return tcp_->connectionCount() == 1; }));
  // Its handshake holds the only slot of this address: the next connection is refused.
  tcp::socket second(io_);
  second.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_));
  ASSERT_TRUE(runUntil([&] { return counter(stats::Counter::TlsHandshakesRefused) == 1; }));
  auto started = Clock::now();
  ASSERT_TRUE(runUntil([&] { return counter(stats::Counter::TlsHandshakeTimeouts) == 1; }));
  EXPECT_LT(Clock::now() - started, std::chrono::milliseconds(1500));
  EXPECT_EQ(tcp_->connectionCount(), 0u);
  EXPECT_EQ(tls_limiter_.total(), 0u);
  // The slot is free again.
  auto ctx = clientContext();
  SslClient client(io_, ctx);
  EXPECT_TRUE(handshake(client));
}

TEST_F(TlsTransportTest, PlainSipOnTheTlsPortFailsTheHandshake) {
  start(contexts(server_));
  tcp::socket plain(io_);
  plain.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_));
  boost::asio::write(plain, boost::asio::buffer(options()));
  ASSERT_TRUE(runUntil([&] { return counter(stats::Counter::TlsHandshakeFailures) == 1; }));
  EXPECT_TRUE(runUntil([&] { return tcp_->connectionCount() == 0; }));
  EXPECT_TRUE(receiver_.packets.empty());
}

TEST_F(TlsTransportTest, NewCertificatesApplyToNewHandshakesOnly) {
  start(contexts(server_));
  auto ctx = clientContext();
  SslClient before(io_, ctx);
  ASSERT_TRUE(handshake(before));
  std::string first =
      certs::loadCertificate(server_.certificate, server_.key, now()).value().info.sha256_fingerprint;

  testing::TestCertSpec renewed_spec;
  renewed_spec.issuer = &ca_;
  testing::TestCert renewed = testing::makeTestCert(dir_.path(), "renewed", renewed_spec);
  tcp_->setTls(contexts(renewed), {});

  SslClient after(io_, ctx);
  ASSERT_TRUE(handshake(after));
  auto fingerprintOf = [](SslClient& c) {
    X509* cert = SSL_get0_peer_certificate(c.native_handle());
    unsigned char md[32];
    unsigned int len = 0;
    X509_digest(cert, EVP_sha256(), md, &len);
    std::string text;
    for (unsigned i = 0; i < len; ++i) text += fmt::format("{}{:02X}", i ? ":" : "", md[i]);
    return text;
  };
  EXPECT_EQ(fingerprintOf(before), first);
  EXPECT_NE(fingerprintOf(after), first);
  // The connection from before the reload still carries messages.
  std::string request = options();
  bool written = false;
  boost::asio::async_write(before, boost::asio::buffer(request),
                           [&](const boost::system::error_code& ec, std::size_t) { written = !ec; });
  EXPECT_TRUE(runUntil([&] { return written && receiver_.packets.size() == 1; }));
}

TEST_F(TlsTransportTest, ATrunkWithMutualTlsMustPresentACertificateWithItsName) {
  filter_.peer = 7;  // every source is the trunk "carrier"
  start(contexts(server_, true));
  {
    auto ctx = clientContext();
    SslClient anonymous(io_, ctx);
    handshake(anonymous);
    bool ended = false;
    readUntil(
        anonymous, [](const std::string&) { return false; }, &ended);
    EXPECT_TRUE(ended);
    EXPECT_GE(counter(stats::Counter::TlsHandshakeFailures), 1u);
  }
  {
    testing::TestCertSpec wrong_spec;
    wrong_spec.common_name = "someone.example";
    wrong_spec.dns = {"someone.example"};
    wrong_spec.issuer = &ca_;
    testing::TestCert wrong = testing::makeTestCert(dir_.path(), "wrong", wrong_spec);
    auto ctx = clientContext(&wrong);
    SslClient client(io_, ctx);
    handshake(client);
    bool ended = false;
    readUntil(
        client, [](const std::string&) { return false; }, &ended);
    EXPECT_TRUE(ended);
    EXPECT_EQ(counter(stats::Counter::TlsClientCertificatesRefused), 1u);
  }
  {
    testing::TestCertSpec right_spec;
    right_spec.common_name = "carrier.example";
    right_spec.dns = {"carrier.example"};
    right_spec.issuer = &ca_;
    testing::TestCert right = testing::makeTestCert(dir_.path(), "right", right_spec);
    auto ctx = clientContext(&right);
    SslClient client(io_, ctx);
    ASSERT_TRUE(handshake(client));
    std::string request = options();
    bool written = false;
    boost::asio::async_write(client, boost::asio::buffer(request),
                             [&](const boost::system::error_code& ec, std::size_t) { written = !ec; });
    EXPECT_TRUE(runUntil([&] { return written && receiver_.packets.size() == 1; }));
  }
}

}  // namespace
}  // namespace palisade::transport
