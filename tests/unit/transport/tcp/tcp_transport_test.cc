// The TCP transport on real loopback sockets, driven on the test thread (the transport's
// owner): framing across reads, the slow-drip and idle timers, the byte-bounded send queue,
// the final answer before closing, accept back-off when descriptors run out, limits.
#include "transport/tcp/tcp_transport.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

namespace palisade::transport {
namespace {

using boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;

class RecordingReceiver final : public net::Receiver {
 public:
  struct Packet {
    net::Flow flow;
    std::string bytes;
  };
  void onPacket(const net::Flow& flow, std::string&& bytes, bool datagram) override {
    EXPECT_FALSE(datagram);
    packets.push_back({flow, std::move(bytes)});
  }
  void onStreamFault(const net::Flow& flow, std::string&& bytes, int status, std::string_view) override {
    faults.push_back({flow, std::move(bytes)});
    statuses.push_back(status);
    if (answer) answer(flow);
  }
  void onStreamClosed(const net::Flow& flow) override { closed.push_back(flow); }
  std::vector<Packet> packets;
  std::vector<Packet> faults;
  std::vector<net::Flow> closed;
  std::vector<int> statuses;
  std::function<void(const net::Flow&)> answer;  // the engine's stateless reply, in the daemon
};

class ScriptedFilter final : public policy::PacketFilter {
 public:
  bool admit(net::Flow& flow, std::string_view) override {
    ++calls;
    flow.peer = peer;
    return allow;
  }
  bool allow = true;
  std::uint16_t peer = 0;  // what the sources are classified as (non-zero: a configured peer)
  int calls = 0;
};

std::string message(std::string_view method = "OPTIONS", std::string_view body = {}) {
  return fmt::format(
      "{} sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-t\r\nFrom: "
      "<sip:a@x>;tag=1\r\n"
      "To: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 {}\r\nMax-Forwards: 70\r\nContent-Length: {}\r\n\r\n{}",
      method, method, body.size(), body);
}

class TcpTransportTest : public ::testing::Test {
 protected:
  void SetUp() override { settings_.max_connections_per_ip = 64; }

  void start() {
    tcp_ = std::make_unique<TcpTransport>(io_, 3, receiver_, &filter_, metrics_.shard(0), limiter_,
                                          tls_limiter_, settings_);
    auto listened = tcp_->listen(net::Side::Public, boost::asio::ip::make_address("127.0.0.1"), 0);
    ASSERT_TRUE(listened.ok()) << listened.error().message;
    port_ = tcp_->localPort(net::Side::Public);
    ASSERT_NE(port_, 0);
    tcp_->start();
  }

  // Runs the io_context until `done` or the deadline; false on timeout.
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
  void runFor(std::chrono::milliseconds span) {
    auto deadline = Clock::now() + span;
    while (Clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
  }

  tcp::socket connectClient() {
    tcp::socket client(io_);
    client.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_));
    return client;
  }

  // True once the peer has closed `client` (EOF or reset), reading whatever came before.
  bool closedByPeer(tcp::socket& client, std::string* received = nullptr) {
    client.non_blocking(true);
    char buffer[4096];
    for (;;) {
      boost::system::error_code ec;
      std::size_t n = client.read_some(boost::asio::buffer(buffer), ec);
      if (ec == boost::asio::error::would_block) return false;
      if (ec) return true;
      if (received != nullptr) received->append(buffer, n);
    }
  }

  std::uint64_t counter(stats::Counter c) const { return metrics_.total(c); }

  boost::asio::io_context io_;
  stats::Metrics metrics_{1};
  ConnectionLimiter limiter_;
  ConnectionLimiter tls_limiter_;
  RecordingReceiver receiver_;
  ScriptedFilter filter_;
  StreamSettings settings_;
  std::unique_ptr<TcpTransport> tcp_;
  std::uint16_t port_ = 0;
};

TEST_F(TcpTransportTest, FramesMessagesWhateverTheReadsLookLike) {
  filter_.peer = 9;
  start();
  tcp::socket client = connectClient();
  std::string first = message("OPTIONS");
  std::string second = message("INFO", "hello");
  std::string stream = first + second;
  // Split in the middle of the first message's head, then the rest in one go.
  boost::asio::write(client, boost::asio::buffer(stream.substr(0, 40)));
  runFor(std::chrono::milliseconds(30));
  EXPECT_TRUE(receiver_.packets.empty());
  boost::asio::write(client, boost::asio::buffer(stream.substr(40)));
  ASSERT_TRUE(runUntil([&] { return receiver_.packets.size() == 2; }));
  EXPECT_EQ(receiver_.packets[0].bytes, first);
  EXPECT_EQ(receiver_.packets[1].bytes, second);
  const net::Flow& flow = receiver_.packets[0].flow;
  EXPECT_EQ(flow.transport, net::Transport::Tcp);
  EXPECT_EQ(flow.side, net::Side::Public);
  EXPECT_EQ(flow.conn_worker, 3);
  EXPECT_NE(flow.conn_id, 0u);
  EXPECT_EQ(flow.remote.port, client.local_endpoint().port());
  EXPECT_TRUE(flow.verified);
  EXPECT_EQ(flow.peer, 9);  // the packet filter's classification travels with each message
  EXPECT_EQ(flow.reconnect_port, 5060);
  EXPECT_EQ(filter_.calls, 3);  // the connection, then each message
  EXPECT_EQ(counter(stats::Counter::MessagesInTcp), 2u);
  EXPECT_EQ(counter(stats::Counter::TcpConnectionsAccepted), 1u);

  // Replies go back on the connection the request came on.
  tcp_->send(flow, std::string("SIP/2.0 200 OK\r\n\r\n"));
  std::string reply;
  ASSERT_TRUE(runUntil([&] {
    closedByPeer(client, &reply);
    return !reply.empty();
  }));
  EXPECT_EQ(reply, "SIP/2.0 200 OK\r\n\r\n");
}

// The receiver hears when a connection ends, with the flow its messages came on (the
// registrar ends bindings made over it).
TEST_F(TcpTransportTest, TheReceiverHearsWhenAConnectionEnds) {
  start();
  tcp::socket client = connectClient();
  boost::asio::write(client, boost::asio::buffer(message()));
  ASSERT_TRUE(runUntil([&] { return receiver_.packets.size() == 1; }));
  EXPECT_TRUE(receiver_.closed.empty());
  client.close();
  ASSERT_TRUE(runUntil([&] { return receiver_.closed.size() == 1; }));
  EXPECT_TRUE(receiver_.closed[0].samePath(receiver_.packets[0].flow));
  EXPECT_EQ(counter(stats::Counter::TcpConnectionsClosed), 1u);
}

TEST_F(TcpTransportTest, AKeepAlivePingGetsAPong) {
  start();
  tcp::socket client = connectClient();
  boost::asio::write(client, boost::asio::buffer(std::string("\r\n\r\n")));
  std::string pong;
  ASSERT_TRUE(runUntil([&] {
    closedByPeer(client, &pong);
    return !pong.empty();
  }));
  EXPECT_EQ(pong, "\r\n");
}

// Slow-loris: a message that has begun must complete within head_timeout_s, however the
// bytes trickle in.
TEST_F(TcpTransportTest, ASlowDripIsClosedOnTime) {
  settings_.head_timeout_s = 1;
  start();
  tcp::socket client = connectClient();
  tcp::socket healthy = connectClient();
  boost::asio::write(healthy, boost::asio::buffer(message()));  // a first message, then quiet
  std::string head = message();
  auto started = Clock::now();
  std::size_t sent = 0;
  bool closed = false;
  while (!closed && Clock::now() - started < std::chrono::seconds(4)) {
    if (sent < head.size() - 4) boost::asio::write(client, boost::asio::buffer(head.substr(sent++, 1)));
    runFor(std::chrono::milliseconds(50));
    closed = closedByPeer(client);
  }
  auto took = Clock::now() - started;
  ASSERT_TRUE(closed);
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LE(took, std::chrono::milliseconds(2500));
  EXPECT_EQ(counter(stats::Counter::TcpHeadTimeouts), 1u);
  EXPECT_EQ(receiver_.packets.size(), 1u);  // the healthy connection's first message only
  // The other connection was not touched.
  boost::asio::write(healthy, boost::asio::buffer(message()));
  ASSERT_TRUE(runUntil([&] { return receiver_.packets.size() == 2; }));
  EXPECT_FALSE(closedByPeer(healthy));
}

// Partial reads are not activity: a connection that never completes a message is idle.
TEST_F(TcpTransportTest, PartialReadsDoNotKeepAConnectionAlive) {
  settings_.idle_timeout_s = 1;
  settings_.head_timeout_s = 60;
  start();
  tcp::socket client = connectClient();
  std::string head = message();
  auto started = Clock::now();
  std::size_t sent = 0;
  bool closed = false;
  while (!closed && Clock::now() - started < std::chrono::seconds(4)) {
    if (sent < head.size() - 4) boost::asio::write(client, boost::asio::buffer(head.substr(sent++, 1)));
    runFor(std::chrono::milliseconds(50));
    closed = closedByPeer(client);
  }
  ASSERT_TRUE(closed);
  EXPECT_LE(Clock::now() - started, std::chrono::milliseconds(2500));
  EXPECT_EQ(counter(stats::Counter::TcpHeadTimeouts), 0u);
}

TEST_F(TcpTransportTest, CompleteMessagesKeepAConnectionAlive) {
  settings_.idle_timeout_s = 1;
  start();
  tcp::socket client = connectClient();
  for (int i = 0; i < 6; ++i) {
    boost::asio::write(client, boost::asio::buffer(message()));
    runFor(std::chrono::milliseconds(300));
    ASSERT_FALSE(closedByPeer(client)) << i;
  }
  EXPECT_EQ(receiver_.packets.size(), 6u);
  ASSERT_TRUE(runUntil([&] { return closedByPeer(client); }, std::chrono::seconds(3)));
}

// A framing error is answered, and the connection closes only once the answer is written.
TEST_F(TcpTransportTest, AFramingErrorIsAnsweredThenClosed) {
  start();
  receiver_.answer = [this](const net::Flow& flow) {
    tcp_->send(flow, std::string("SIP/2.0 400 Missing Content-Length\r\nContent-Length: 0\r\n\r\n"));
  };
  tcp::socket client = connectClient();
  std::string bad = message();
  bad.erase(bad.find("Content-Length: 0\r\n"), 19);
  boost::asio::write(client, boost::asio::buffer(bad));
  std::string reply;
  ASSERT_TRUE(runUntil([&] { return closedByPeer(client, &reply); }));
  EXPECT_EQ(reply, "SIP/2.0 400 Missing Content-Length\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(receiver_.statuses, std::vector<int>{400});
  EXPECT_EQ(receiver_.faults[0].bytes, bad);
  EXPECT_EQ(tcp_->connectionCount(), 0u);
}

// A peer that stops reading loses its connection once more than max_send_queue_bytes wait.
TEST_F(TcpTransportTest, APeerThatDoesNotReadIsCutOff) {
  settings_.max_send_queue_bytes = 65536;
  start();
  tcp::socket client = connectClient();
  client.set_option(boost::asio::socket_base::receive_buffer_size(4096));
  boost::asio::write(client, boost::asio::buffer(message()));
  ASSERT_TRUE(runUntil([&] { return receiver_.packets.size() == 1; }));
  net::Flow flow = receiver_.packets[0].flow;
  std::string chunk(16384, 'x');
  for (int i = 0; i < 2000 && tcp_->connectionCount() == 1; ++i) {
    tcp_->send(flow, std::string(chunk));
    io_.restart();
    io_.poll();
  }
  EXPECT_EQ(tcp_->connectionCount(), 0u);
  EXPECT_EQ(counter(stats::Counter::TcpSendQueueOverflows), 1u);
}

// Too much for a connection that is still being opened: it is closed at once, and nothing of
// it is touched afterwards (ASan watches this one).
TEST_F(TcpTransportTest, AnOverflowWhileConnectingClosesCleanly) {
  settings_.max_send_queue_bytes = 16384;
  start();
  tcp::acceptor peer(io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  net::Flow to_peer;
  to_peer.side = net::Side::Pbx;
  to_peer.transport = net::Transport::Tcp;
  to_peer.remote = net::Endpoint{boost::asio::ip::make_address("127.0.0.1"), peer.local_endpoint().port()};
  tcp_->send(to_peer, std::string(20000, 'x'));
  EXPECT_EQ(tcp_->connectionCount(), 0u);
  EXPECT_EQ(counter(stats::Counter::TcpSendQueueOverflows), 1u);
  runFor(std::chrono::milliseconds(50));
  EXPECT_EQ(limiter_.total(), 0u);
}

TEST_F(TcpTransportTest, PacketFilterAndPerAddressLimit) {
  settings_.max_connections_per_ip = 2;
  start();
  tcp::socket a = connectClient();
  tcp::socket b = connectClient();
  ASSERT_TRUE(runUntil([&] { return tcp_->connectionCount() == 2; }));
  tcp::socket c = connectClient();
  ASSERT_TRUE(runUntil([&] { return closedByPeer(c); }));
  EXPECT_EQ(counter(stats::Counter::TcpConnectionsRefused), 1u);
  filter_.allow = false;
  a.close();
  ASSERT_TRUE(runUntil([&] { return tcp_->connectionCount() == 1; }));
  tcp::socket d = connectClient();
  ASSERT_TRUE(runUntil([&] { return closedByPeer(d); }));
  EXPECT_EQ(counter(stats::Counter::DroppedUntrusted), 1u);
  EXPECT_EQ(tcp_->connectionCount(), 1u);
}

// The PBX and the trunks are not counted: a connection flood from the internet cannot lock
// them out.
TEST_F(TcpTransportTest, ConfiguredPeersAreNotCounted) {
  settings_.max_connections_per_ip = 1;
  settings_.max_connections = 1;
  filter_.peer = 1;
  start();
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(connectClient());
  ASSERT_TRUE(runUntil([&] { return tcp_->connectionCount() == 4; }));
  EXPECT_EQ(counter(stats::Counter::TcpConnectionsRefused), 0u);
  EXPECT_EQ(limiter_.total(), 0u);
}

// A connection that never sends a byte holds its slot for head_timeout_s, not idle_timeout_s.
TEST_F(TcpTransportTest, ASilentConnectionIsClosedAfterTheHeadTimeout) {
  settings_.head_timeout_s = 1;
  settings_.idle_timeout_s = 60;
  start();
  tcp::socket client = connectClient();
  auto started = Clock::now();
  ASSERT_TRUE(runUntil([&] { return closedByPeer(client); }, std::chrono::seconds(4)));
  EXPECT_GE(Clock::now() - started, std::chrono::milliseconds(800));
  EXPECT_EQ(counter(stats::Counter::TcpHeadTimeouts), 1u);
}

TEST_F(TcpTransportTest, OpensConnectionsToPeersAndReadsTheirAnswers) {
  start();
  tcp::acceptor peer(io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket accepted(io_);
  bool got = false;
  peer.async_accept(accepted, [&](const boost::system::error_code& ec) { got = !ec; });
  net::Flow to_peer;
  to_peer.side = net::Side::Pbx;
  to_peer.transport = net::Transport::Tcp;
  to_peer.remote = net::Endpoint{boost::asio::ip::make_address("127.0.0.1"), peer.local_endpoint().port()};
  std::string request = message("INVITE");
  tcp_->send(to_peer, std::string(request));
  ASSERT_TRUE(runUntil([&] { return got; }));
  std::string received(request.size(), '\0');
  boost::asio::read(accepted, boost::asio::buffer(received));
  EXPECT_EQ(received, request);
  // A second send reuses the connection; the peer's answer comes up on it.
  tcp_->send(to_peer, std::string(request));
  boost::asio::read(accepted, boost::asio::buffer(received));
  boost::asio::write(accepted, boost::asio::buffer(message("OPTIONS")));
  ASSERT_TRUE(runUntil([&] { return receiver_.packets.size() == 1; }));
  EXPECT_EQ(receiver_.packets[0].flow.side, net::Side::Pbx);
  EXPECT_EQ(receiver_.packets[0].flow.remote, to_peer.remote);
  EXPECT_EQ(receiver_.packets[0].flow.reconnect_port, 0);  // a connection we opened
  EXPECT_EQ(tcp_->connectionCount(), 1u);
}

// Out of descriptors: accepting pauses and retries (a few times a second, not in a spin),
// and picks up the waiting connections once descriptors are back.
TEST_F(TcpTransportTest, AcceptBacksOffWhenDescriptorsRunOut) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizers' runtime checks open descriptors themselves (UBSan's vptr check probes
  // memory through a pipe) and misreport when there are none; the plain build runs this.
  GTEST_SKIP() << "needs descriptors to run out, which sanitizer runtimes cannot survive";
#endif
  start();
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(connectClient());
  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  int lowest_free = ::dup(0);
  ASSERT_GE(lowest_free, 0);
  ::close(lowest_free);
  struct rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);  // no new descriptor can be made
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  runFor(std::chrono::milliseconds(450));
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  std::uint64_t backoffs = counter(stats::Counter::TcpAcceptBackoffs);
  EXPECT_GE(backoffs, 1u);
  EXPECT_LE(backoffs, 8u);  // about one per 100 ms, not thousands
  EXPECT_EQ(tcp_->connectionCount(), 0u);
  ASSERT_TRUE(runUntil([&] { return tcp_->connectionCount() == 5; }));
}

}  // namespace
}  // namespace palisade::transport
