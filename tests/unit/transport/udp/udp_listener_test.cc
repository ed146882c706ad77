// The UDP listener on a real loopback socket: the packet filter runs before anything is
// handed up, the classification travels with the bytes, and sends go out of the same socket.
#include "transport/udp/udp_listener.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>

namespace palisade::transport {
namespace {

using boost::asio::ip::udp;

class RecordingReceiver final : public net::Receiver {
 public:
  void onPacket(const net::Flow& flow, std::string&& bytes, bool datagram) override {
    EXPECT_TRUE(datagram);
    flows.push_back(flow);
    payloads.push_back(std::move(bytes));
  }
  void onStreamFault(const net::Flow&, std::string&&, int, std::string_view) override { ADD_FAILURE(); }
  std::vector<net::Flow> flows;
  std::vector<std::string> payloads;
};

class DenyFrom final : public policy::PacketFilter {
 public:
  explicit DenyFrom(std::uint16_t port) : denied_port_(port) {}
  bool admit(net::Flow& flow, std::string_view bytes) override {
    seen.emplace_back(bytes);
    if (flow.remote.port == denied_port_) return false;
    flow.peer = 4;
    flow.verified = true;
    return true;
  }
  std::vector<std::string> seen;

 private:
  std::uint16_t denied_port_;
};

class UdpListenerTest : public ::testing::Test {
 protected:
  bool runUntil(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  boost::asio::io_context io_;
  stats::Metrics metrics_{1};
  RecordingReceiver receiver_;
};

TEST_F(UdpListenerTest, FiltersBeforeHandingUpAndSendsFromTheSameSocket) {
  udp::socket allowed(io_, udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  udp::socket denied(io_, udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  DenyFrom filter(denied.local_endpoint().port());
  UdpListener listener(io_, receiver_, &filter, metrics_.shard(0), net::Side::Pbx);
  ASSERT_TRUE(listener.open(boost::asio::ip::make_address("127.0.0.1"), 0).ok());
  std::uint16_t port = listener.localPort();
  ASSERT_NE(port, 0);
  listener.start();
  udp::endpoint to(boost::asio::ip::make_address("127.0.0.1"), port);
  denied.send_to(boost::asio::buffer(std::string("not even SIP")), to);
  allowed.send_to(boost::asio::buffer(std::string("OPTIONS sip:x SIP/2.0\r\n\r\n")), to);
  ASSERT_TRUE(runUntil([&] { return receiver_.payloads.size() == 1 && filter.seen.size() == 2; }));
  EXPECT_EQ(receiver_.payloads[0], "OPTIONS sip:x SIP/2.0\r\n\r\n");
  const net::Flow& flow = receiver_.flows[0];
  EXPECT_EQ(flow.side, net::Side::Pbx);
  EXPECT_EQ(flow.transport, net::Transport::Udp);
  EXPECT_EQ(flow.remote.port, allowed.local_endpoint().port());
  EXPECT_EQ(flow.peer, 4);
  EXPECT_TRUE(flow.verified);
  EXPECT_EQ(metrics_.total(stats::Counter::MessagesInUdp), 2u);
  EXPECT_EQ(metrics_.total(stats::Counter::DroppedUntrusted), 1u);

  listener.send(flow.remote, "SIP/2.0 200 OK\r\n\r\n");
  char buffer[128];
  udp::endpoint from;
  std::size_t n = allowed.receive_from(boost::asio::buffer(buffer), from);
  EXPECT_EQ(std::string(buffer, n), "SIP/2.0 200 OK\r\n\r\n");
  EXPECT_EQ(from.port(), port);
  EXPECT_EQ(metrics_.total(stats::Counter::MessagesOutUdp), 1u);
  listener.close();
}

TEST_F(UdpListenerTest, ABusyPortIsAnErrorNamingIt) {
  udp::socket holder(io_, udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  UdpListener listener(io_, receiver_, nullptr, metrics_.shard(0), net::Side::Public);
  auto result = listener.open(boost::asio::ip::make_address("127.0.0.1"), holder.local_endpoint().port());
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find(std::to_string(holder.local_endpoint().port())), std::string::npos);
}

}  // namespace
}  // namespace palisade::transport
