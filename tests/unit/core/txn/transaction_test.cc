// The RFC 3261 §17 machines in isolation: what goes on the wire, and when.
#include "core/txn/transaction.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "core/stats/metrics.h"
#include "tests/support/fake_network.h"

namespace palisade::txn {
namespace {

using palisade::testing::FakeNetwork;
using palisade::testing::ManualClock;
using palisade::testing::udpFlow;

class RecordingUser final : public TransactionUser {
 public:
  void onResponse(ClientTransaction&, std::unique_ptr<sip::Message> response) override {
    statuses.push_back(response->statusCode());
  }
  void onTimeout(ClientTransaction&) override { ++timeouts; }
  void onCancel(ServerTransaction&) override { ++cancels; }
  void onClientGone(ClientTransaction&) override { ++clients_gone; }
  void onServerGone(ServerTransaction&) override { ++servers_gone; }
  std::vector<int> statuses;
  int timeouts = 0, cancels = 0, clients_gone = 0, servers_gone = 0;
};

class TransactionTest : public ::testing::Test {
 protected:
  TransactionTest() : metrics_(1), layer_(network_, timers_, clock_, metrics_.shard(0)) {}

  // Advances in 10 ms steps; returns how many packets were sent meanwhile.
  std::size_t advance(base::Millis ms) {
    std::size_t before = network_.sent.size();
    for (base::Millis t = 0; t < ms; t += 10) {
      clock_.advance(10);
      timers_.runDue(clock_.now());
    }
    return network_.sent.size() - before;
  }

  ClientTransaction* startInvite(const net::Flow& flow) {
    RequestLines lines;
    lines.request_uri = "sip:bob@127.0.0.1:5080";
    lines.via = "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-c1\r\n";
    lines.from = "From: <sip:a@127.0.0.1>;tag=f1\r\n";
    lines.to = "To: <sip:bob@127.0.0.1:5080>\r\n";
    lines.call_id = "Call-ID: c1\r\n";
    lines.cseq = 1;
    std::string request = "INVITE sip:bob@127.0.0.1:5080 SIP/2.0\r\n" + lines.via + lines.from + lines.to +
                          lines.call_id + "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    return layer_.startClient(sip::Method::Invite, "z9hG4bK-c1", flow, request, lines, &user_);
  }

  std::unique_ptr<sip::Message> response(int status, std::string_view method = "INVITE") {
    return sip::Message::parse(
        fmt::format("SIP/2.0 {} X\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-c1\r\n"
                    "From: <sip:a@127.0.0.1>;tag=f1\r\nTo: <sip:bob@127.0.0.1:5080>;tag=t\r\n"
                    "Call-ID: c1\r\nCSeq: 1 {}\r\nContent-Length: 0\r\n\r\n",
                    status, method),
        sip::Limits{}, true);
  }

  std::unique_ptr<sip::Message> request(std::string_view method, std::string_view branch = "z9hG4bK-s1",
                                        std::string_view cseq_method = {}) {
    return sip::Message::parse(
        fmt::format("{} sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5061;branch={}\r\n"
                    "From: <sip:a@127.0.0.2>;tag=f2\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: s1\r\nCSeq: 5 {}\r\n"
                    "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                    method, branch, cseq_method.empty() ? method : cseq_method),
        sip::Limits{}, true);
  }

  static net::Flow pbx() { return udpFlow(net::Side::Pbx, "127.0.0.1", 5080); }

  ManualClock clock_;
  FakeNetwork network_;
  event::TimerQueue timers_;
  stats::Metrics metrics_;
  TransactionLayer layer_;
  RecordingUser user_;
};

TEST_F(TransactionTest, InviteClientRetransmitsWithTimerAUntilTimerB) {
  startInvite(udpFlow(net::Side::Pbx, "127.0.0.1", 5080));
  EXPECT_EQ(network_.sent.size(), 1u);
  EXPECT_EQ(advance(500), 1u);   // A = T1
  EXPECT_EQ(advance(1000), 1u);  // 2*T1
  EXPECT_EQ(advance(2000), 1u);  // 4*T1
  EXPECT_EQ(user_.timeouts, 0);
  advance(64 * 500);
  EXPECT_EQ(user_.timeouts, 1);  // Timer B
  EXPECT_EQ(user_.clients_gone, 1);
  EXPECT_EQ(layer_.clientCount(), 0u);
}

TEST_F(TransactionTest, ProvisionalStopsTimerAAndB) {
  startInvite(udpFlow(net::Side::Pbx, "127.0.0.1", 5080));
  auto ringing = response(180);
  EXPECT_EQ(layer_.handleResponse(ringing, pbx()), ResponseDisposition::Consumed);
  EXPECT_EQ(advance(64 * 500 + 100), 0u);
  EXPECT_EQ(user_.timeouts, 0);
  EXPECT_EQ(user_.statuses, (std::vector<int>{180}));
}

TEST_F(TransactionTest, NonSuccessFinalIsAckedOnceAndRetransmissionsReAcked) {
  startInvite(udpFlow(net::Side::Pbx, "127.0.0.1", 5080));
  network_.sent.clear();
  auto busy = response(486);
  layer_.handleResponse(busy, pbx());
  ASSERT_EQ(network_.sent.size(), 1u);
  auto ack = sip::Message::parse(network_.sent.front().bytes, sip::Limits{}, true);
  EXPECT_EQ(ack->method(), sip::Method::Ack);
  EXPECT_EQ(ack->topVia().branch, "z9hG4bK-c1");
  EXPECT_EQ(ack->toTag(), "t");
  EXPECT_EQ(ack->cseq(), 1u);
  auto again = response(486);
  layer_.handleResponse(again, pbx());
  EXPECT_EQ(network_.sent.size(), 2u);                 // the ACK again, from Completed
  EXPECT_EQ(user_.statuses, (std::vector<int>{486}));  // reported once
  advance(32000 + 10);                                 // Timer D
  EXPECT_EQ(layer_.clientCount(), 0u);
}

TEST_F(TransactionTest, ReliableTransportsDoNotRetransmit) {
  net::Flow tcp = udpFlow(net::Side::Pbx, "127.0.0.1", 5080);
  tcp.transport = net::Transport::Tcp;
  startInvite(tcp);
  EXPECT_EQ(advance(30000), 0u);
  auto busy = response(486);
  layer_.handleResponse(busy, tcp);
  advance(10);  // Timer D is 0 on TCP
  EXPECT_EQ(layer_.clientCount(), 0u);
}

TEST_F(TransactionTest, NonInviteClientCapsTimerEAtT2) {
  RequestLines lines;
  layer_.startClient(sip::Method::Bye, "z9hG4bK-c1", udpFlow(net::Side::Pbx, "127.0.0.1", 5080),
                     "BYE sip:x SIP/2.0\r\n\r\n", lines, &user_);
  EXPECT_EQ(advance(500), 1u);
  EXPECT_EQ(advance(1000), 1u);
  EXPECT_EQ(advance(2000), 1u);
  EXPECT_EQ(advance(4000), 1u);
  EXPECT_EQ(advance(4000), 1u);  // capped at T2 = 4 s
  advance(64 * 500);
  EXPECT_EQ(user_.timeouts, 1);  // Timer F
}

TEST_F(TransactionTest, InviteServerSendsTryingAndRetransmitsFailureUntilAck) {
  net::Flow caller = udpFlow(net::Side::Public, "127.0.0.2", 5061);
  ServerTransaction* st = layer_.startServer(request("INVITE"), caller, &user_);
  ASSERT_NE(st, nullptr);
  ASSERT_EQ(network_.sent.size(), 1u);
  EXPECT_NE(network_.sent.front().bytes.find("SIP/2.0 100 Trying"), std::string::npos);
  auto retransmitted = request("INVITE");
  EXPECT_TRUE(layer_.absorbRequest(retransmitted, caller));
  EXPECT_EQ(network_.sent.size(), 2u);  // 100 again
  layer_.respond(*st, 480, "SIP/2.0 480 Temporarily Unavailable\r\n\r\n");
  EXPECT_EQ(advance(500), 1u);  // Timer G
  EXPECT_EQ(advance(1000), 1u);
  auto ack = request("ACK", "z9hG4bK-s1", "ACK");
  EXPECT_TRUE(layer_.absorbRequest(ack, caller));
  EXPECT_EQ(advance(4000), 0u);  // Confirmed: no more retransmissions
  advance(5000);                 // Timer I = T4
  EXPECT_EQ(layer_.serverCount(), 0u);
}

TEST_F(TransactionTest, CancelIsAnsweredAndReportedToTheInviteUser) {
  net::Flow caller = udpFlow(net::Side::Public, "127.0.0.2", 5061);
  layer_.startServer(request("INVITE"), caller, &user_);
  network_.sent.clear();
  auto cancel = request("CANCEL");
  EXPECT_TRUE(layer_.absorbRequest(cancel, caller));
  ASSERT_EQ(network_.sent.size(), 1u);
  EXPECT_NE(network_.sent.front().bytes.find("SIP/2.0 200 OK"), std::string::npos);
  EXPECT_NE(network_.sent.front().bytes.find("CSeq: 5 CANCEL"), std::string::npos);
  EXPECT_EQ(user_.cancels, 1);
  auto repeated = request("CANCEL");  // a retransmitted CANCEL gets the same 200, once reported
  EXPECT_TRUE(layer_.absorbRequest(repeated, caller));
  ASSERT_EQ(network_.sent.size(), 2u);
  EXPECT_EQ(network_.sent.back().bytes, network_.sent.front().bytes);
  EXPECT_EQ(user_.cancels, 1);
  auto unknown = request("CANCEL", "z9hG4bK-other");
  EXPECT_FALSE(layer_.absorbRequest(unknown, caller));  // no INVITE: the caller answers 481
}

TEST_F(TransactionTest, NonInviteServerRepeatsItsFinalResponse) {
  net::Flow caller = udpFlow(net::Side::Public, "127.0.0.2", 5061);
  ServerTransaction* st = layer_.startServer(request("OPTIONS"), caller, &user_);
  layer_.respond(*st, 200, "SIP/2.0 200 OK\r\n\r\n");
  auto again = request("OPTIONS");
  EXPECT_TRUE(layer_.absorbRequest(again, caller));
  ASSERT_EQ(network_.sent.size(), 2u);
  EXPECT_EQ(network_.sent.back().bytes, "SIP/2.0 200 OK\r\n\r\n");
  advance(64 * 500 + 10);  // Timer J
  EXPECT_EQ(layer_.serverCount(), 0u);
  EXPECT_EQ(user_.servers_gone, 1);
}

// Knowing a branch is not enough: a response counts only from where the request went.
TEST_F(TransactionTest, ResponsesFromElsewhereAreForeign) {
  startInvite(pbx());
  auto forged = response(486);
  EXPECT_EQ(layer_.handleResponse(forged, udpFlow(net::Side::Pbx, "127.0.0.1", 5081)),
            ResponseDisposition::Foreign);  // another port
  forged = response(486);
  EXPECT_EQ(layer_.handleResponse(forged, udpFlow(net::Side::Pbx, "127.0.0.9", 5080)),
            ResponseDisposition::Foreign);  // another address
  forged = response(200);
  EXPECT_EQ(layer_.handleResponse(forged, udpFlow(net::Side::Public, "127.0.0.1", 5080)),
            ResponseDisposition::Foreign);  // the other listener
  net::Flow over_tcp = pbx();
  over_tcp.transport = net::Transport::Tcp;
  forged = response(200);
  EXPECT_EQ(layer_.handleResponse(forged, over_tcp), ResponseDisposition::Foreign);  // another transport
  EXPECT_TRUE(user_.statuses.empty());
  EXPECT_EQ(network_.sent.size(), 1u);  // no ACK went anywhere
  auto real = response(180);
  EXPECT_EQ(layer_.handleResponse(real, pbx()), ResponseDisposition::Consumed);
  EXPECT_EQ(user_.statuses, (std::vector<int>{180}));
}

TEST_F(TransactionTest, ConfiguredPeerAddressesMayAnswer) {
  RequestLines lines;
  lines.request_uri = "sip:bob@127.0.0.1:5080";
  auto addresses = std::make_shared<PeerAddresses>(
      PeerAddresses{*AddressPrefix::parse("127.0.0.1"), *AddressPrefix::parse("127.0.0.7")});
  layer_.startClient(sip::Method::Invite, "z9hG4bK-c1", pbx(), "INVITE x SIP/2.0\r\n\r\n", lines, &user_,
                     addresses);
  auto ringing = response(180);
  EXPECT_EQ(layer_.handleResponse(ringing, udpFlow(net::Side::Pbx, "127.0.0.7", 6000)),
            ResponseDisposition::Consumed);
  auto foreign = response(200);
  EXPECT_EQ(layer_.handleResponse(foreign, udpFlow(net::Side::Pbx, "127.0.0.8", 5080)),
            ResponseDisposition::Foreign);
  EXPECT_EQ(user_.statuses, (std::vector<int>{180}));
}

TEST(AddressPrefix, MatchesCidrRanges) {
  auto v4 = AddressPrefix::parse("10.1.0.0/16");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->contains(boost::asio::ip::make_address("10.1.255.1")));
  EXPECT_TRUE(v4->contains(boost::asio::ip::make_address("::ffff:10.1.0.9")));
  EXPECT_FALSE(v4->contains(boost::asio::ip::make_address("10.2.0.1")));
  auto odd = AddressPrefix::parse("192.0.2.128/25");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains(boost::asio::ip::make_address("192.0.2.200")));
  EXPECT_FALSE(odd->contains(boost::asio::ip::make_address("192.0.2.100")));
  auto v6 = AddressPrefix::parse("2001:db8:1::/48");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(boost::asio::ip::make_address("2001:db8:1:ffff::1")));
  EXPECT_FALSE(v6->contains(boost::asio::ip::make_address("2001:db8:2::1")));
  EXPECT_FALSE(v6->contains(boost::asio::ip::make_address("10.1.0.1")));
  auto host = AddressPrefix::parse("2001:db8::5");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->length, 128u);
  for (const char* bad : {"10.0.0.0/33", "x/8", "10.0.0.0/", "10.0.0.0/1x"})
    EXPECT_FALSE(AddressPrefix::parse(bad)) << bad;
}

TEST_F(TransactionTest, StreamResponsesOnlyOnTheRequestsConnection) {
  net::Flow conn = pbx();
  conn.transport = net::Transport::Tcp;
  conn.conn_id = 7;
  conn.conn_worker = 1;
  startInvite(conn);
  net::Flow other = conn;
  other.conn_id = 8;
  auto forged = response(486);
  EXPECT_EQ(layer_.handleResponse(forged, other), ResponseDisposition::Foreign);
  other = conn;
  other.conn_worker = 0;
  forged = response(486);
  EXPECT_EQ(layer_.handleResponse(forged, other), ResponseDisposition::Foreign);
  auto real = response(486);
  EXPECT_EQ(layer_.handleResponse(real, conn), ResponseDisposition::Consumed);
  EXPECT_EQ(user_.statuses, (std::vector<int>{486}));
}

// The caller's connection was gone and the request went out on one reopened to its Via port
// (RFC 3261 §18.2.2): the answer on that connection belongs to the transaction.
TEST_F(TransactionTest, AnswersOnAReopenedConnectionAreAccepted) {
  net::Flow conn = udpFlow(net::Side::Public, "127.0.0.2", 40000);
  conn.transport = net::Transport::Tcp;
  conn.conn_id = 7;
  conn.reconnect_port = 5062;
  startInvite(conn);
  net::Flow reopened = udpFlow(net::Side::Public, "127.0.0.2", 5062);
  reopened.transport = net::Transport::Tcp;
  reopened.conn_id = 12;
  auto ringing = response(180);
  EXPECT_EQ(layer_.handleResponse(ringing, reopened), ResponseDisposition::Consumed);
  net::Flow elsewhere = reopened;
  elsewhere.remote.port = 5063;
  auto forged = response(486);
  EXPECT_EQ(layer_.handleResponse(forged, elsewhere), ResponseDisposition::Foreign);
}

// A retransmission (or an ACK) from another source than the request's draws nothing: it would
// have us send our last response, maybe much larger than the packet, to the original source.
TEST_F(TransactionTest, RetransmissionsFromElsewhereAreIgnored) {
  net::Flow caller = udpFlow(net::Side::Public, "127.0.0.2", 5061);
  ServerTransaction* invite = layer_.startServer(request("INVITE"), caller, &user_);
  ASSERT_NE(invite, nullptr);
  network_.sent.clear();
  auto again = request("INVITE");
  EXPECT_TRUE(layer_.absorbRequest(again, udpFlow(net::Side::Public, "127.0.0.66", 5061)));
  EXPECT_TRUE(network_.sent.empty());
  again = request("INVITE");
  EXPECT_TRUE(layer_.absorbRequest(again, caller));
  EXPECT_EQ(network_.sent.size(), 1u);  // the 100 again, to the caller
  // The same branch on the other listener is another transaction.
  auto other_side = request("INVITE");
  EXPECT_FALSE(layer_.absorbRequest(other_side, udpFlow(net::Side::Pbx, "127.0.0.2", 5061)));
}

TEST_F(TransactionTest, CancelOnlyFromTheInvitesSource) {
  net::Flow caller = udpFlow(net::Side::Public, "127.0.0.2", 5061);
  ServerTransaction* invite = layer_.startServer(request("INVITE"), caller, &user_);
  ASSERT_NE(invite, nullptr);
  network_.sent.clear();
  auto cancel = request("CANCEL");
  EXPECT_FALSE(layer_.absorbRequest(cancel, udpFlow(net::Side::Public, "127.0.0.66", 5061)));
  cancel = request("CANCEL");
  EXPECT_FALSE(
      layer_.absorbRequest(cancel, udpFlow(net::Side::Public, "127.0.0.2", 5099)));  // same NAT, other port
  EXPECT_EQ(user_.cancels, 0);
  EXPECT_TRUE(network_.sent.empty());
  EXPECT_EQ(metrics_.total(stats::Counter::DroppedForeignCancels), 2u);
  cancel = request("CANCEL");
  EXPECT_TRUE(layer_.absorbRequest(cancel, caller));
  EXPECT_EQ(user_.cancels, 1);
}

}  // namespace
}  // namespace palisade::txn
