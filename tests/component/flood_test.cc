// Flood defence, admission, overload shedding, the drain and the amplification guard, through
// one engine behind the daemon's policy chain and dispatcher, on a manual clock.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "tests/support/engine_harness.h"

namespace palisade {
namespace {

using namespace palisade::testing;  // NOLINT: test-local brevity

constexpr std::uint16_t kCarrierPort = 5090;
constexpr std::uint16_t kPbxPort = 5080;
constexpr std::uint16_t kStrangerPort = 5062;
constexpr const char* kPassword = "Tr0ub4dor&3-Horse!Staple";

// The shipped config with one user that may come from anywhere (so that the internet reaches
// the policy stages instead of being dropped by default deny), and `changes` applied.
template <typename Change>
std::shared_ptr<config::Config> configWith(Change change) {
  auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
  config::User user;
  user.name = "2001";
  user.password = kPassword;
  config->users = {user};
  change(*config);
  return config;
}

net::Flow pbxFlow() {
  net::Flow flow = udpFlow(net::Side::Pbx, "127.0.0.1", kPbxPort);
  return flow;
}

PeerDialog stranger(const std::string& call_id, const char* address = "127.0.0.66") {
  PeerDialog d = callerPeer(call_id);
  d.flow = udpFlow(net::Side::Public, address, kStrangerPort);
  d.host = address;
  d.port = kStrangerPort;
  return d;
}

// The final answer `port` got last, or null.
std::unique_ptr<sip::Message> lastFinal(EngineHarness& h, std::uint16_t port) {
  std::unique_ptr<sip::Message> last;
  while (auto m = h.next(port)) {
    if (m->statusCode() >= 200) last = std::move(m);
  }
  return last;
}

std::string headerOf(const sip::Message& m, std::string_view name) {
  for (const auto& h : m.headers()) {
    if (sip::iequals(h.name, name)) return std::string(h.value);
  }
  return {};
}

class AdmissionTest : public ::testing::Test {
 protected:
  explicit AdmissionTest(std::shared_ptr<config::Config> config = configWith([](config::Config& c) {
                           c.trunks.front().max_calls = 3;
                           c.trunks.front().max_cps = 5;
                         }))
      : h_(config, nullptr, true) {}

  // A new call from the carrier: the INVITE the PBX got, or null (then `refused` is the answer).
  std::unique_ptr<sip::Message> call(const std::string& call_id,
                                     std::unique_ptr<sip::Message>* refused = nullptr) {
    PeerDialog carrier = carrierPeer(call_id);
    h_.clearSent();  // what went before (ACKs of refused calls) is not this call's
    h_.inject(makeInvite(carrier, "z9hG4bK-" + call_id), carrier.flow);
    auto at_pbx = h_.next(kPbxPort);
    auto answer = lastFinal(h_, kCarrierPort);
    if (refused != nullptr) *refused = std::move(answer);
    return at_pbx;
  }

  // Answers a call the PBX got and confirms it from the carrier: the carrier's dialog.
  PeerDialog answer(const sip::Message& at_pbx, const std::string& call_id) {
    PeerDialog carrier = carrierPeer(call_id);
    h_.inject(makeResponse(at_pbx, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
    auto ok = lastFinal(h_, kCarrierPort);
    EXPECT_TRUE(ok);
    if (!ok) return carrier;
    carrier.remote_tag = std::string(ok->toTag());
    sip::NameAddr contact;
    EXPECT_TRUE(ok->firstContact(contact));
    carrier.request_uri = std::string(contact.uri);
    h_.inject(makeAck(carrier, 1, "z9hG4bK-ack-" + call_id), carrier.flow);
    EXPECT_TRUE(h_.next(kPbxPort));  // the ACK
    return carrier;
  }

  EngineHarness h_;
};

TEST_F(AdmissionTest, ATrunksConcurrentCallsAreLimitedAndGivenBackWhenACallEnds) {
  std::vector<std::unique_ptr<sip::Message>> at_pbx;
  for (int i = 0; i < 3; ++i) {
    at_pbx.push_back(call(fmt::format("c{}", i)));
    ASSERT_TRUE(at_pbx.back()) << i;
  }
  std::unique_ptr<sip::Message> refused;
  EXPECT_FALSE(call("c3", &refused));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->statusCode(), 503);
  EXPECT_EQ(headerOf(*refused, "Retry-After"), "5");
  EXPECT_EQ(h_.counter(stats::Counter::RejectedCallLimit), 1u);
  // The PBX turns one call down: its unit comes back, and the next call gets through.
  h_.inject(makeResponse(*at_pbx[0], 486, "Busy Here", "pbx-tag", ""), pbxFlow());
  EXPECT_TRUE(call("c4"));
}

TEST_F(AdmissionTest, ATrunksCallsPerSecondAreLimitedButItsDialogsNeverRefused) {
  auto first = call("r0");
  ASSERT_TRUE(first);
  PeerDialog established = answer(*first, "r0");
  // Four more this second (five in all, the limit), then 503s.
  for (int i = 1; i < 5; ++i) {
    auto at_pbx = call(fmt::format("r{}", i));
    ASSERT_TRUE(at_pbx) << i;
    h_.inject(makeResponse(*at_pbx, 486, "Busy Here", "pbx-tag", ""), pbxFlow());  // so max_calls is no issue
    lastFinal(h_, kCarrierPort);
  }
  std::unique_ptr<sip::Message> refused;
  EXPECT_FALSE(call("r5", &refused));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->statusCode(), 503);
  EXPECT_EQ(h_.counter(stats::Counter::RejectedCallRate), 1u);
  // Over its rate, the established call still gets its re-INVITE and BYE through.
  h_.inject(makeRequest(established, "INVITE", "z9hG4bK-reinv", kDefaultSdp), established.flow);
  auto reinvite = h_.next(kPbxPort);
  ASSERT_TRUE(reinvite);
  EXPECT_EQ(reinvite->method(), sip::Method::Invite);
  h_.inject(makeResponse(*reinvite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  lastFinal(h_, kCarrierPort);
  h_.inject(makeAck(established, established.cseq, "z9hG4bK-reack"), established.flow);
  h_.next(kPbxPort);
  h_.inject(makeRequest(established, "BYE", "z9hG4bK-bye"), established.flow);
  auto bye = h_.next(kPbxPort);
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->method(), sip::Method::Bye);
  // A second later the trunk may call again.
  h_.advance(1000);
  EXPECT_TRUE(call("r6"));
}

TEST_F(AdmissionTest, DrainingRefusesNewCallsFromBothSidesAndKeepsCallsInProgress) {
  auto first = call("d0");
  ASSERT_TRUE(first);
  PeerDialog established = answer(*first, "d0");
  h_.shared().startDraining();
  std::unique_ptr<sip::Message> refused;
  EXPECT_FALSE(call("d1", &refused));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->statusCode(), 503);
  EXPECT_EQ(headerOf(*refused, "Retry-After"), "5");
  PeerDialog pbx = pbxPeer("d2");
  h_.inject(makeInvite(pbx, "z9hG4bK-d2"), pbx.flow);
  EXPECT_FALSE(h_.next(kCarrierPort));
  auto from_pbx = lastFinal(h_, kPbxPort);
  ASSERT_TRUE(from_pbx);
  EXPECT_EQ(from_pbx->statusCode(), 503);
  EXPECT_EQ(h_.counter(stats::Counter::RejectedDraining), 2u);
  // The call in progress ends normally.
  h_.inject(makeRequest(established, "BYE", "z9hG4bK-bye"), established.flow);
  auto bye = h_.next(kPbxPort);
  ASSERT_TRUE(bye);
  h_.inject(makeResponse(*bye, 200, "OK", "", ""), pbxFlow());
  auto ok = lastFinal(h_, kCarrierPort);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->statusCode(), 200);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
}

TEST_F(AdmissionTest, OverloadShedsNewWorkAndRecoversAtOnce) {
  auto first = call("o0");
  ASSERT_TRUE(first);
  PeerDialog established = answer(*first, "o0");
  h_.chain().noteLoad(500, 0);  // one slow tick is no overload
  h_.chain().noteLoad(0, 0);
  h_.chain().noteLoad(500, 0);
  h_.chain().noteLoad(500, 0);
  EXPECT_FALSE(h_.shared().overloaded());
  h_.chain().noteLoad(500, 0);  // three in a row are
  EXPECT_TRUE(h_.shared().overloaded());
  std::size_t transactions = h_.engine().transactionCount();
  // A carrier's new call: an immediate stateless 503, so it can try elsewhere.
  std::unique_ptr<sip::Message> refused;
  EXPECT_FALSE(call("o1", &refused));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->statusCode(), 503);
  EXPECT_EQ(h_.counter(stats::Counter::RejectedOverload), 1u);
  EXPECT_EQ(h_.engine().transactionCount(), transactions);  // nothing was kept for it
  // A stranger's new work: silence.
  PeerDialog s = stranger("o2");
  h_.inject(makeInvite(s, "z9hG4bK-o2"), s.flow);
  EXPECT_FALSE(h_.next(kStrangerPort));
  EXPECT_EQ(h_.counter(stats::Counter::DroppedOverload), 1u);
  // The established call keeps everything it needs.
  h_.inject(makeRequest(established, "BYE", "z9hG4bK-bye"), established.flow);
  ASSERT_TRUE(h_.next(kPbxPort));
  // The queue is full instead: overloaded too. Then the load falls, and the next call is taken.
  for (int i = 0; i < 5; ++i) h_.chain().noteLoad(0, 90);
  EXPECT_TRUE(h_.shared().overloaded());
  for (int i = 0; i < 3; ++i) h_.chain().noteLoad(0, 0);
  EXPECT_FALSE(h_.shared().overloaded());
  EXPECT_TRUE(call("o3"));
}

TEST(FloodTest, AStrangersInviteFloodIsDroppedThenBanned) {
  EngineHarness h(configWith([](config::Config& c) {
                    c.flood.ban_excess = 100;
                    c.ban.duration_s = 600;
                  }),
                  nullptr, true);
  PeerDialog s = stranger("f0");
  int answered = 0;
  for (int i = 0; i < 300; ++i) {
    s.call_id = fmt::format("flood-{}", i);
    h.inject(makeInvite(s, fmt::format("z9hG4bK-f{}", i)), s.flow);
    while (h.next(kStrangerPort)) ++answered;
  }
  // Its burst (four seconds' worth at 5/s) was challenged; the rest dropped unanswered, and at
  // the 100th excess INVITE it was banned: what follows is dropped before parsing.
  EXPECT_EQ(answered, 20);
  EXPECT_EQ(h.counter(stats::Counter::DroppedRateLimited), 100u);
  EXPECT_EQ(h.counter(stats::Counter::Bans), 1u);
  EXPECT_EQ(h.counter(stats::Counter::DroppedUntrusted), 180u);  // the harness's count of packet-filter drops
  EXPECT_TRUE(h.store().banned(s.flow.remote.address, h.clock().now()));
  // The carrier is not affected.
  PeerDialog carrier = carrierPeer("after");
  h.inject(makeInvite(carrier, "z9hG4bK-after"), carrier.flow);
  EXPECT_TRUE(h.next(kPbxPort));
}

TEST(FloodTest, MalformedMessagesAndErrorAnswersBanAStranger) {
  EngineHarness h(configWith([](config::Config& c) { c.scanners.max_errors = 20; }), nullptr, true);
  PeerDialog s = stranger("e0");
  for (int i = 0; i < 10; ++i) h.inject("GARBAGE\r\n\r\n", s.flow);
  EXPECT_FALSE(h.store().banned(s.flow.remote.address, h.clock().now()));
  // Requests that draw a 4xx other than a challenge: an unsupported extension.
  for (int i = 0; i < 11; ++i) {
    s.call_id = fmt::format("err-{}", i);
    std::string invite = makeInvite(s, fmt::format("z9hG4bK-e{}", i));
    invite.insert(invite.find("Content-Length:"), "Require: teleportation\r\n");
    h.inject(invite, s.flow);
  }
  EXPECT_EQ(h.counter(stats::Counter::ScannerErrors), 21u);
  EXPECT_EQ(h.counter(stats::Counter::Bans), 1u);
  EXPECT_TRUE(h.store().banned(s.flow.remote.address, h.clock().now()));
  // A trunk's errors are its own business: never banned.
  PeerDialog carrier = carrierPeer("c");
  for (int i = 0; i < 50; ++i) h.inject("GARBAGE\r\n\r\n", carrier.flow);
  EXPECT_FALSE(h.store().banned(carrier.flow.remote.address, h.clock().now()));
}

// An unauthenticated UDP request never draws an answer larger than itself: a forged source
// address must not turn Palisade into an amplifier.
TEST(AmplificationTest, AnswersToUnverifiedSourcesAreNoLargerThanTheirRequests) {
  EngineHarness h(configWith([](config::Config&) {}), nullptr, true);
  PeerDialog s = stranger("a0");
  // A phone-sized REGISTER gets both challenges.
  std::string full = makeInvite(s, "z9hG4bK-a0", "");
  full.replace(0, 6, "REGISTER");
  full.replace(full.find("CSeq: 1 INVITE"), 14, "CSeq: 1 REGISTER");
  h.inject(full, s.flow);
  auto both = h.next(kStrangerPort);
  ASSERT_TRUE(both);
  EXPECT_EQ(both->statusCode(), 401);
  EXPECT_LE(h.lastBytes().size(), full.size());
  EXPECT_NE(h.lastBytes().find("algorithm=SHA-256"), std::string::npos);
  EXPECT_NE(h.lastBytes().find("algorithm=MD5"), std::string::npos);
  // A minimal one gets the most widely supported challenge alone, or nothing.
  std::string minimal = fmt::format(
      "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {}:{};branch=z9hG4bK-m1\r\nFrom: "
      "<sip:2001@x>;tag=1\r\n"
      "To: <sip:2001@x>\r\nCall-ID: m1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
      s.host, s.port);
  h.inject(minimal, s.flow);
  auto trimmed = h.next(kStrangerPort);
  if (trimmed) {
    EXPECT_LE(h.lastBytes().size(), minimal.size());
    EXPECT_EQ(h.lastBytes().find("algorithm=SHA-256"), std::string::npos);
    EXPECT_NE(h.lastBytes().find("algorithm=MD5"), std::string::npos);
  } else {
    EXPECT_EQ(h.counter(stats::Counter::DroppedAmplification), 1u);
  }
  // A tiny request whose error answer cannot fit: not answered at all.
  std::string tiny = fmt::format(
      "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP {}:{};branch=z9hG4bK-t\r\nFrom: <sip:c@d>;tag=1\r\nTo: "
      "<sip:a@b>\r\n"
      "Call-ID: t\r\nCSeq: 1 INVITE\r\nRequire: x\r\nContent-Length: 0\r\n\r\n",
      s.host, s.port);
  std::uint64_t before = h.counter(stats::Counter::DroppedAmplification);
  h.inject(tiny, s.flow);
  if (auto answer = h.next(kStrangerPort)) {
    EXPECT_LE(h.lastBytes().size(), tiny.size());
  } else {
    EXPECT_EQ(h.counter(stats::Counter::DroppedAmplification), before + 1);
  }
  // Over TCP (the handshake proved the address) the full answer goes.
  PeerDialog t = stranger("a1", "127.0.0.67");
  t.flow.transport = net::Transport::Tcp;
  t.flow.verified = true;
  t.flow.conn_id = 7;
  h.inject(minimal, t.flow);
  auto over_tcp = h.next(kStrangerPort);
  ASSERT_TRUE(over_tcp);
  EXPECT_NE(h.lastBytes().find("algorithm=SHA-256"), std::string::npos);
  EXPECT_NE(h.lastBytes().find("algorithm=MD5"), std::string::npos);
}

}  // namespace
}  // namespace palisade
