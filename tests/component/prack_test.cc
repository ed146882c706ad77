// Reliable provisionals (RFC 3262) and UPDATE in early dialogs (RFC 3311) relayed across the
// B2BUA legs: each leg has its own RSeq space, RAck is mapped back to the callee's RSeq and
// INVITE CSeq, and Palisade retransmits its reliable provisionals to the caller itself.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "core/dialog/call.h"
#include "tests/support/engine_harness.h"

namespace palisade {
namespace {

using namespace palisade::testing;  // NOLINT: test-local brevity

constexpr std::uint16_t kCallerPort = 5061;
constexpr std::uint16_t kPbxPort = 5080;
constexpr std::uint16_t kCarrierPort = 5090;
constexpr base::Millis kT1 = 500;
constexpr char kPbxContact[] = "sip:pbx@127.0.0.1:5080";

// `message` with header `lines` added before its Content-Length.
std::string withHeaders(std::string message, const std::string& lines) {
  message.insert(message.find("Content-Length:"), lines);
  return message;
}

std::string header(const sip::Message& m, sip::Hdr id) {
  const sip::HeaderField* field = m.find(id);
  return field != nullptr ? std::string(field->value) : std::string();
}

std::uint32_t rseqOf(const sip::Message& m) {
  std::uint32_t rseq = 0;
  EXPECT_TRUE(sip::parseRSeq(header(m, sip::Hdr::Rseq), rseq)) << m.raw();
  return rseq;
}

std::string headerSection(const sip::Message& m) {
  return std::string(m.raw().substr(0, m.raw().find("\r\n\r\n")));
}

class PrackTest : public ::testing::Test {
 protected:
  static net::Flow pbxFlow() { return udpFlow(net::Side::Pbx, "127.0.0.1", kPbxPort); }

  // Caller -> Palisade -> PBX INVITE; `extra` goes into the caller's INVITE.
  void call(const std::string& extra = {}, const std::string& call_id = "prack-1") {
    caller_ = callerPeer(call_id);
    h_.inject(withHeaders(makeInvite(caller_, "z9hG4bK-inv-" + call_id), extra), caller_.flow);
    auto trying = h_.next(kCallerPort);
    ASSERT_TRUE(trying);
    ASSERT_EQ(trying->statusCode(), 100);
    b_invite_ = h_.next(kPbxPort);
    ASSERT_TRUE(b_invite_);
  }

  // A 183 from the PBX in its early dialog `tag`, reliable with `rseq` unless 0.
  std::string calleeProvisional(std::uint32_t rseq, const std::string& tag = "pbx-tag", int status = 183,
                                const std::string& body = kDefaultSdp) {
    std::string response = makeResponse(*b_invite_, status, status == 180 ? "Ringing" : "Session Progress",
                                        tag, kPbxContact, body);
    return rseq == 0 ? response : withHeaders(response, fmt::format("Require: 100rel\r\nRSeq: {}\r\n", rseq));
  }

  // The caller's view of the early dialog a provisional it received opened.
  void callerLearns(const sip::Message& provisional) {
    caller_.remote_tag = std::string(provisional.toTag());
    sip::NameAddr contact;
    ASSERT_TRUE(provisional.firstContact(contact));
    caller_.request_uri = std::string(contact.uri);
  }

  std::string prack(std::uint32_t rseq, std::uint32_t cseq, const std::string& branch,
                    const std::string& body = {}, const std::string& method = "INVITE") {
    return withHeaders(makeRequest(caller_, "PRACK", branch, body),
                       fmt::format("RAck: {} {} {}\r\n", rseq, cseq, method));
  }

  // The PBX's view of its early dialog with Palisade.
  void calleeLearns(const std::string& tag = "pbx-tag") {
    callee_ = pbxPeer(std::string(b_invite_->callId()));
    callee_.local_tag = tag;
    callee_.remote_tag = std::string(b_invite_->fromTag());
    callee_.local_uri = kPbxContact;
    sip::NameAddr contact;
    ASSERT_TRUE(b_invite_->firstContact(contact));
    callee_.request_uri = std::string(contact.uri);
    callee_.remote_uri = std::string(b_invite_->from().uri);
    callee_.cseq = 100;
  }

  // Reliable 183 relayed, PRACKed and its 200 back: the usual carrier early media.
  std::uint32_t earlyMediaAcknowledged() {
    h_.inject(calleeProvisional(7001), pbxFlow());
    auto relayed = h_.next(kCallerPort);
    EXPECT_TRUE(relayed);
    if (!relayed) return 0;
    callerLearns(*relayed);
    std::uint32_t ours = rseqOf(*relayed);
    h_.inject(prack(ours, 1, "z9hG4bK-pr-1"), caller_.flow);
    auto to_pbx = h_.next(kPbxPort);
    EXPECT_TRUE(to_pbx);
    if (!to_pbx) return 0;
    EXPECT_EQ(to_pbx->method(), sip::Method::Prack);
    h_.inject(makeResponse(*to_pbx, 200, "OK", "", ""), pbxFlow());
    auto ok = h_.next(kCallerPort);
    EXPECT_TRUE(ok);
    if (ok) {
      EXPECT_EQ(ok->cseqMethod(), sip::Method::Prack);
    }
    return ours;
  }

  // 200 from the PBX, ACK from the caller, BYE from the caller: the call ends cleanly.
  void answerAndHangUp() {
    h_.inject(makeResponse(*b_invite_, 200, "OK", "pbx-tag", kPbxContact, kDefaultSdp), pbxFlow());
    auto ok = h_.next(kCallerPort);
    ASSERT_TRUE(ok);
    ASSERT_EQ(ok->statusCode(), 200);
    ASSERT_EQ(ok->cseqMethod(), sip::Method::Invite);
    callerLearns(*ok);
    h_.inject(makeAck(caller_, 1, "z9hG4bK-ack"), caller_.flow);
    auto ack = h_.next(kPbxPort);
    ASSERT_TRUE(ack);
    ASSERT_EQ(ack->method(), sip::Method::Ack);
    h_.inject(makeRequest(caller_, "BYE", "z9hG4bK-bye"), caller_.flow);
    auto bye = h_.next(kPbxPort);
    ASSERT_TRUE(bye);
    ASSERT_EQ(bye->method(), sip::Method::Bye);
    h_.inject(makeResponse(*bye, 200, "OK", "", ""), pbxFlow());
    EXPECT_EQ(h_.engine().activeCalls(), 0u);
  }

  EngineHarness h_;
  PeerDialog caller_, callee_;
  std::unique_ptr<sip::Message> b_invite_;
};

TEST_F(PrackTest, RequireHundredRelIsAcceptedAndCrossesWithTimerOnly) {
  call("Require: 100rel\r\n");
  // Only the extensions Palisade relays reach the PBX: no replaces, path, gruu, outbound.
  EXPECT_EQ(header(*b_invite_, sip::Hdr::Require), "100rel");
  EXPECT_EQ(header(*b_invite_, sip::Hdr::Supported), "timer, 100rel");
  EXPECT_EQ(h_.counter(stats::Counter::CallsAttempted), 1u);
}

TEST_F(PrackTest, UnknownRequiredExtensionsStillGet420) {
  caller_ = callerPeer("prack-420");
  h_.inject(withHeaders(makeInvite(caller_, "z9hG4bK-420"), "Require: 100rel, foo\r\n"), caller_.flow);
  auto answer = h_.next(kCallerPort);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->statusCode(), 420);
  EXPECT_EQ(header(*answer, sip::Hdr::Unsupported), "foo");
  EXPECT_EQ(h_.pending(kPbxPort), 0u);
}

TEST_F(PrackTest, OptionsAdvertisesHundredRelAndPrack) {
  PeerDialog carrier = carrierPeer("prack-options");
  h_.inject(
      "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-opt\r\n"
      "From: <sip:carrier@127.0.0.1:5090>;tag=o1\r\nTo: <sip:127.0.0.1:5060>\r\nCall-ID: prack-options\r\n"
      "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
      carrier.flow);
  auto ok = h_.next(kCarrierPort);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->statusCode(), 200);
  EXPECT_EQ(header(*ok, sip::Hdr::Supported), "timer, 100rel");
  EXPECT_NE(header(*ok, sip::Hdr::Allow).find("PRACK"), std::string::npos);
}

TEST_F(PrackTest, ReliableProvisionalCrossesWithOurRSeqUntilPracked) {
  call();
  h_.inject(calleeProvisional(7001), pbxFlow());
  auto relayed = h_.next(kCallerPort);
  ASSERT_TRUE(relayed);
  EXPECT_EQ(relayed->statusCode(), 183);
  EXPECT_EQ(header(*relayed, sip::Hdr::Require), "100rel");
  std::uint32_t ours = rseqOf(*relayed);
  EXPECT_GE(ours, 1u);
  EXPECT_LE(ours, 0x7fffffffu);
  EXPECT_EQ(relayed->body(), kDefaultSdp);
  EXPECT_FALSE(relayed->toTag().empty());
  // Nothing of the PBX leg: its tag, address and port stay there.
  std::string head = headerSection(*relayed);
  EXPECT_EQ(head.find("pbx-tag"), std::string::npos) << head;
  EXPECT_EQ(head.find("5080"), std::string::npos) << head;
  EXPECT_EQ(head.find(b_invite_->callId()), std::string::npos) << head;

  // UDP: retransmitted after T1, then 2*T1 later, with the same RSeq.
  h_.advance(kT1);
  auto again = h_.next(kCallerPort);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->statusCode(), 183);
  EXPECT_EQ(rseqOf(*again), ours);
  h_.advance(2 * kT1 - 20);
  EXPECT_EQ(h_.pending(kCallerPort), 0u);
  h_.advance(20);
  EXPECT_EQ(h_.pending(kCallerPort), 1u);
  h_.clearSent();

  // The PRACK crosses with the callee's RSeq and the callee leg's INVITE CSeq.
  callerLearns(*relayed);
  h_.inject(prack(ours, 1, "z9hG4bK-pr-1"), caller_.flow);
  auto to_pbx = h_.next(kPbxPort);
  ASSERT_TRUE(to_pbx);
  EXPECT_EQ(to_pbx->method(), sip::Method::Prack);
  EXPECT_EQ(header(*to_pbx, sip::Hdr::Rack), fmt::format("7001 {} INVITE", b_invite_->cseq()));
  EXPECT_EQ(to_pbx->toTag(), "pbx-tag");
  EXPECT_EQ(to_pbx->fromTag(), b_invite_->fromTag());
  EXPECT_EQ(to_pbx->callId(), b_invite_->callId());
  EXPECT_EQ(to_pbx->requestUri(), kPbxContact);
  EXPECT_GT(to_pbx->cseq(), b_invite_->cseq());
  std::string to_pbx_head = headerSection(*to_pbx);
  EXPECT_EQ(to_pbx_head.find("alice-tag"), std::string::npos) << to_pbx_head;
  EXPECT_EQ(to_pbx_head.find("127.0.0.2"), std::string::npos) << to_pbx_head;
  EXPECT_EQ(to_pbx_head.find("prack-1"), std::string::npos) << to_pbx_head;

  // No more retransmissions once acknowledged.
  h_.advance(40 * kT1);
  EXPECT_EQ(h_.pending(kCallerPort), 0u);
  h_.clearSent();  // the PRACK's own retransmissions toward the PBX (Timer E)

  // The PBX's 200 goes back to the caller's PRACK transaction.
  h_.inject(makeResponse(*to_pbx, 200, "OK", "", ""), pbxFlow());
  auto prack_ok = h_.next(kCallerPort);
  ASSERT_TRUE(prack_ok);
  EXPECT_EQ(prack_ok->statusCode(), 200);
  EXPECT_EQ(prack_ok->cseqMethod(), sip::Method::Prack);
  EXPECT_EQ(prack_ok->toTag(), relayed->toTag());
  EXPECT_EQ(prack_ok->callId(), "prack-1");
  answerAndHangUp();
}

TEST_F(PrackTest, PrackBodiesCrossBothWays) {
  // A late offer: the 183 carries the offer, the PRACK the answer (RFC 3262 §5).
  call();
  h_.inject(calleeProvisional(11), pbxFlow());
  auto relayed = h_.next(kCallerPort);
  ASSERT_TRUE(relayed);
  callerLearns(*relayed);
  h_.inject(prack(rseqOf(*relayed), 1, "z9hG4bK-pr-body", kDefaultSdp), caller_.flow);
  auto to_pbx = h_.next(kPbxPort);
  ASSERT_TRUE(to_pbx);
  EXPECT_EQ(to_pbx->body(), kDefaultSdp);
  EXPECT_EQ(header(*to_pbx, sip::Hdr::ContentType), "application/sdp");
}

TEST_F(PrackTest, CalleeRetransmissionIsNotRelayedAgain) {
  call();
  h_.inject(calleeProvisional(7001), pbxFlow());
  ASSERT_TRUE(h_.next(kCallerPort));
  h_.inject(calleeProvisional(7001), pbxFlow());
  h_.inject(calleeProvisional(7001), pbxFlow());
  EXPECT_EQ(h_.pending(kCallerPort), 0u);
  // The next one in order is a new provisional, with our next RSeq.
  h_.inject(calleeProvisional(7002, "pbx-tag", 180, ""), pbxFlow());
  auto ringing = h_.next(kCallerPort);
  ASSERT_TRUE(ringing);
  EXPECT_EQ(ringing->statusCode(), 180);
  // Out of order (7004 before 7003) is not relayed: the callee retransmits 7003.
  h_.inject(calleeProvisional(7004), pbxFlow());
  EXPECT_EQ(h_.pending(kCallerPort), 0u);
  EXPECT_EQ(h_.counter(stats::Counter::ProvisionalsDropped), 1u);
}

TEST_F(PrackTest, SuccessiveReliableProvisionalsCountUpOnTheCallerLeg) {
  call();
  std::uint32_t first = earlyMediaAcknowledged();
  h_.inject(calleeProvisional(7002, "pbx-tag", 180, ""), pbxFlow());
  auto ringing = h_.next(kCallerPort);
  ASSERT_TRUE(ringing);
  EXPECT_EQ(rseqOf(*ringing), first + 1);
  h_.inject(prack(first + 1, 1, "z9hG4bK-pr-2"), caller_.flow);
  auto to_pbx = h_.next(kPbxPort);
  ASSERT_TRUE(to_pbx);
  EXPECT_EQ(header(*to_pbx, sip::Hdr::Rack), "7002 1 INVITE");
}

TEST_F(PrackTest, PrackThatMatchesNothingGets481) {
  call();
  h_.inject(calleeProvisional(7001), pbxFlow());
  auto relayed = h_.next(kCallerPort);
  ASSERT_TRUE(relayed);
  callerLearns(*relayed);
  std::uint32_t ours = rseqOf(*relayed);
  auto answered = [&](const std::string& request) {
    h_.inject(request, caller_.flow);
    auto answer = h_.next(kCallerPort);
    while (answer && answer->cseqMethod() != sip::Method::Prack) answer = h_.next(kCallerPort);
    return answer ? answer->statusCode() : 0;
  };
  EXPECT_EQ(answered(prack(ours + 1, 1, "z9hG4bK-bad-1")), 481);             // unknown RSeq
  EXPECT_EQ(answered(prack(ours, 7, "z9hG4bK-bad-2")), 481);                 // wrong INVITE CSeq
  EXPECT_EQ(answered(prack(ours, 1, "z9hG4bK-bad-3", {}, "UPDATE")), 481);   // wrong method
  EXPECT_EQ(answered(makeRequest(caller_, "PRACK", "z9hG4bK-bad-4")), 400);  // no RAck
  EXPECT_EQ(answered(withHeaders(makeRequest(caller_, "PRACK", "z9hG4bK-bad-5"), "RAck: x 1 INVITE\r\n")),
            400);
  // A tag of no early dialog.
  PeerDialog stranger = caller_;
  stranger.remote_tag = "not-ours";
  h_.inject(withHeaders(makeRequest(stranger, "PRACK", "z9hG4bK-bad-6"),
                        fmt::format("RAck: {} 1 INVITE\r\n", ours)),
            caller_.flow);
  auto stray = h_.next(kCallerPort);
  while (stray && stray->cseqMethod() != sip::Method::Prack) stray = h_.next(kCallerPort);
  ASSERT_TRUE(stray);
  EXPECT_EQ(stray->statusCode(), 481);
  EXPECT_EQ(h_.pending(kPbxPort), 0u);  // nothing of that reached the PBX

  // The right one crosses; a second PRACK for the same provisional matches nothing any more.
  caller_.cseq = 20;
  h_.inject(prack(ours, 1, "z9hG4bK-good"), caller_.flow);
  auto to_pbx = h_.next(kPbxPort);
  ASSERT_TRUE(to_pbx);
  EXPECT_EQ(to_pbx->method(), sip::Method::Prack);
  h_.clearSent();
  EXPECT_EQ(answered(prack(ours, 1, "z9hG4bK-again")), 481);
}

TEST_F(PrackTest, UpdateInTheEarlyDialogCrossesBothWays) {
  call();
  earlyMediaAcknowledged();
  calleeLearns();
  // Caller -> PBX: in the PBX's early dialog, with the PBX leg's tags.
  h_.inject(makeRequest(caller_, "UPDATE", "z9hG4bK-up-a", kDefaultSdp), caller_.flow);
  auto update = h_.next(kPbxPort);
  ASSERT_TRUE(update);
  EXPECT_EQ(update->method(), sip::Method::Update);
  EXPECT_EQ(update->toTag(), "pbx-tag");
  EXPECT_EQ(update->fromTag(), b_invite_->fromTag());
  EXPECT_EQ(update->requestUri(), kPbxContact);
  EXPECT_EQ(update->body(), kDefaultSdp);
  h_.inject(makeResponse(*update, 200, "OK", "", kPbxContact, kDefaultSdp), pbxFlow());
  auto update_ok = h_.next(kCallerPort);
  ASSERT_TRUE(update_ok);
  EXPECT_EQ(update_ok->statusCode(), 200);
  EXPECT_EQ(update_ok->cseqMethod(), sip::Method::Update);
  EXPECT_EQ(update_ok->body(), kDefaultSdp);
  EXPECT_EQ(headerSection(*update_ok).find("5080"), std::string::npos);

  // PBX -> caller: our early-dialog tag toward the caller, the caller's Contact.
  h_.inject(makeRequest(callee_, "UPDATE", "z9hG4bK-up-b", kDefaultSdp), callee_.flow);
  auto to_caller = h_.next(kCallerPort);
  ASSERT_TRUE(to_caller);
  EXPECT_EQ(to_caller->method(), sip::Method::Update);
  EXPECT_EQ(to_caller->callId(), "prack-1");
  EXPECT_EQ(to_caller->fromTag(), caller_.remote_tag);
  EXPECT_EQ(to_caller->toTag(), "alice-tag");
  EXPECT_EQ(to_caller->requestUri(), "sip:alice@127.0.0.2:5061");
  EXPECT_EQ(to_caller->body(), kDefaultSdp);
  std::string head = headerSection(*to_caller);
  EXPECT_EQ(head.find("pbx-tag"), std::string::npos) << head;
  EXPECT_EQ(head.find("5080"), std::string::npos) << head;
  h_.inject(makeResponse(*to_caller, 200, "OK", "", "sip:alice@127.0.0.2:5061", kDefaultSdp), caller_.flow);
  auto back = h_.next(kPbxPort);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->statusCode(), 200);
  EXPECT_EQ(back->cseqMethod(), sip::Method::Update);
  EXPECT_EQ(back->cseq(), callee_.cseq);

  // An UPDATE from the PBX in a dialog it never opened is refused.
  PeerDialog other = callee_;
  other.local_tag = "no-such-fork";
  h_.inject(makeRequest(other, "UPDATE", "z9hG4bK-up-c"), other.flow);
  auto refused = h_.next(kPbxPort);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->statusCode(), 481);
  answerAndHangUp();
}

TEST_F(PrackTest, EarlyInfoIsStillRefused) {
  call();
  earlyMediaAcknowledged();
  h_.inject(makeRequest(caller_, "INFO", "z9hG4bK-info"), caller_.flow);
  auto refused = h_.next(kCallerPort);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->statusCode(), 481);
}

TEST_F(PrackTest, CallerWithoutHundredRelGetsPlainProvisionals) {
  caller_ = callerPeer("prack-plain");
  std::string invite = makeInvite(caller_, "z9hG4bK-plain");
  invite.replace(invite.find("timer, 100rel, "), 15, "timer, ");
  h_.inject(invite, caller_.flow);
  ASSERT_TRUE(h_.next(kCallerPort));
  b_invite_ = h_.next(kPbxPort);
  ASSERT_TRUE(b_invite_);
  EXPECT_EQ(header(*b_invite_, sip::Hdr::Supported), "timer");
  // A callee that sends a reliable 183 anyway: the caller gets it plain, once.
  h_.inject(calleeProvisional(5), pbxFlow());
  auto relayed = h_.next(kCallerPort);
  ASSERT_TRUE(relayed);
  EXPECT_EQ(relayed->statusCode(), 183);
  EXPECT_EQ(relayed->find(sip::Hdr::Require), nullptr);
  EXPECT_EQ(relayed->find(sip::Hdr::Rseq), nullptr);
  h_.inject(calleeProvisional(5), pbxFlow());
  h_.advance(4 * kT1);
  EXPECT_EQ(h_.pending(kCallerPort), 0u);
  answerAndHangUp();
}

TEST_F(PrackTest, UnreliableProvisionalsStayPlain) {
  call();
  h_.inject(calleeProvisional(0, "pbx-tag", 180, ""), pbxFlow());
  auto ringing = h_.next(kCallerPort);
  ASSERT_TRUE(ringing);
  EXPECT_EQ(ringing->find(sip::Hdr::Rseq), nullptr);
  EXPECT_EQ(ringing->find(sip::Hdr::Require), nullptr);
  h_.advance(4 * kT1);
  EXPECT_EQ(h_.pending(kCallerPort), 0u);
}

TEST_F(PrackTest, NoPrackWithin64T1RejectsTheInviteAndCancelsTheCallee) {
  call();
  h_.inject(calleeProvisional(7001), pbxFlow());
  auto relayed = h_.next(kCallerPort);
  ASSERT_TRUE(relayed);
  std::uint32_t ours = rseqOf(*relayed);
  // Retransmitted at 1, 3, 7, 15, 31 and 63 T1 (the interval doubles without a cap), then
  // at 64*T1 the INVITE is rejected.
  h_.advance(64 * kT1 - 10);
  std::size_t retransmissions = 0;
  while (auto m = h_.next(kCallerPort)) {
    ASSERT_EQ(m->statusCode(), 183);
    EXPECT_EQ(rseqOf(*m), ours);
    ++retransmissions;
  }
  EXPECT_EQ(retransmissions, 6u);
  EXPECT_EQ(h_.pending(kPbxPort), 0u);
  h_.advance(20);
  auto rejected = h_.next(kCallerPort);
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->statusCode(), 500);
  EXPECT_EQ(rejected->cseqMethod(), sip::Method::Invite);
  EXPECT_EQ(rejected->toTag(), relayed->toTag());
  auto cancel = h_.next(kPbxPort);
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->method(), sip::Method::Cancel);
  EXPECT_EQ(cancel->topVia().branch, b_invite_->topVia().branch);
  EXPECT_EQ(h_.counter(stats::Counter::PrackTimeouts), 1u);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
  // The PBX ends its side: 200 to the CANCEL, 487 to the INVITE (ACKed by the transaction).
  h_.inject(makeResponse(*cancel, 200, "OK", "", ""), pbxFlow());
  h_.inject(makeResponse(*b_invite_, 487, "Request Terminated", "pbx-tag", ""), pbxFlow());
  auto ack = h_.next(kPbxPort);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->method(), sip::Method::Ack);
  // The caller's ACK for the 500 is absorbed; a late PRACK finds no call.
  h_.advance(64 * kT1 + 100);
  EXPECT_EQ(h_.engine().transactionCount(), 0u);
}

TEST_F(PrackTest, FinalResponseStopsRetransmissionsAndALatePrackStillCrosses) {
  call();
  h_.inject(calleeProvisional(7001), pbxFlow());
  auto relayed = h_.next(kCallerPort);
  ASSERT_TRUE(relayed);
  std::uint32_t ours = rseqOf(*relayed);
  // RFC 3262 allows the 2xx before the PRACK: relayed, and our retransmissions stop.
  h_.inject(makeResponse(*b_invite_, 200, "OK", "pbx-tag", kPbxContact, kDefaultSdp), pbxFlow());
  auto ok = h_.next(kCallerPort);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->statusCode(), 200);
  EXPECT_EQ(ok->toTag(), relayed->toTag());
  callerLearns(*ok);
  h_.inject(makeAck(caller_, 1, "z9hG4bK-ack-late"), caller_.flow);
  ASSERT_TRUE(h_.next(kPbxPort));
  h_.advance(8 * kT1);
  EXPECT_EQ(h_.pending(kCallerPort), 0u);
  // The PRACK that crossed the 2xx goes to the (now confirmed) dialog with the callee's RSeq.
  h_.inject(prack(ours, 1, "z9hG4bK-pr-late"), caller_.flow);
  auto to_pbx = h_.next(kPbxPort);
  ASSERT_TRUE(to_pbx);
  EXPECT_EQ(to_pbx->method(), sip::Method::Prack);
  EXPECT_EQ(header(*to_pbx, sip::Hdr::Rack), "7001 1 INVITE");
  EXPECT_EQ(to_pbx->toTag(), "pbx-tag");
  h_.inject(makeResponse(*to_pbx, 200, "OK", "", ""), pbxFlow());
  auto prack_ok = h_.next(kCallerPort);
  ASSERT_TRUE(prack_ok);
  EXPECT_EQ(prack_ok->statusCode(), 200);
}

TEST_F(PrackTest, ForksHaveTheirOwnRSeqSpacesAndPracksGoToTheirFork) {
  call();
  // Both forks start their RSeq at 1; each early dialog toward the caller gets its own tag
  // and its own RSeq space.
  h_.inject(calleeProvisional(1, "fork-a"), pbxFlow());
  auto a = h_.next(kCallerPort);
  h_.inject(calleeProvisional(1, "fork-b"), pbxFlow());
  auto b = h_.next(kCallerPort);
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_NE(a->toTag(), b->toTag());
  std::uint32_t rseq_a = rseqOf(*a);
  std::uint32_t rseq_b = rseqOf(*b);
  // A PRACK for fork a's provisional in fork b's dialog matches nothing there (unless the
  // two random starts happen to agree).
  if (rseq_a != rseq_b) {
    callerLearns(*b);
    h_.inject(prack(rseq_a, 1, "z9hG4bK-pr-cross"), caller_.flow);
    auto answer = h_.next(kCallerPort);
    while (answer && answer->cseqMethod() != sip::Method::Prack) answer = h_.next(kCallerPort);
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->statusCode(), 481);
  }
  callerLearns(*b);
  h_.inject(prack(rseq_b, 1, "z9hG4bK-pr-b"), caller_.flow);
  callerLearns(*a);
  h_.inject(prack(rseq_a, 1, "z9hG4bK-pr-a"), caller_.flow);
  auto to_b = h_.next(kPbxPort);
  auto to_a = h_.next(kPbxPort);
  ASSERT_TRUE(to_b);
  ASSERT_TRUE(to_a);
  EXPECT_EQ(to_b->toTag(), "fork-b");
  EXPECT_EQ(to_a->toTag(), "fork-a");
  EXPECT_EQ(header(*to_b, sip::Hdr::Rack), "1 1 INVITE");
  EXPECT_EQ(header(*to_a, sip::Hdr::Rack), "1 1 INVITE");
  EXPECT_NE(to_a->cseq(), to_b->cseq());
  h_.advance(8 * kT1);
  while (auto m = h_.next(kCallerPort)) EXPECT_NE(m->statusCode(), 183) << "retransmitted after its PRACK";
}

TEST_F(PrackTest, UnacknowledgedProvisionalsAreBounded) {
  call();
  // The callee goes on sending new reliable provisionals without waiting for PRACKs.
  for (std::uint32_t rseq = 1; rseq <= dialog::Call::kMaxUnackedProvisionals + 4; ++rseq)
    h_.inject(calleeProvisional(rseq, "pbx-tag", 180, ""), pbxFlow());
  EXPECT_EQ(h_.pending(kCallerPort), dialog::Call::kMaxUnackedProvisionals);
  EXPECT_EQ(h_.counter(stats::Counter::ProvisionalsDropped), 4u);
}

TEST_F(PrackTest, MalformedRSeqIsDropped) {
  call();
  std::string bad = withHeaders(makeResponse(*b_invite_, 183, "Session Progress", "pbx-tag", kPbxContact),
                                "Require: 100rel\r\nRSeq: 12x\r\n");
  h_.inject(bad, pbxFlow());
  std::string missing = withHeaders(makeResponse(*b_invite_, 183, "Session Progress", "pbx-tag", kPbxContact),
                                    "Require: 100rel\r\n");
  h_.inject(missing, pbxFlow());
  std::string two = withHeaders(makeResponse(*b_invite_, 183, "Session Progress", "pbx-tag", kPbxContact),
                                "Require: 100rel\r\nRSeq: 1\r\nRSeq: 2\r\n");
  h_.inject(two, pbxFlow());
  EXPECT_EQ(h_.pending(kCallerPort), 0u);
  EXPECT_EQ(h_.counter(stats::Counter::ProvisionalsDropped), 3u);
  // The call goes on: a good one is relayed.
  h_.inject(calleeProvisional(1), pbxFlow());
  EXPECT_EQ(h_.pending(kCallerPort), 1u);
}

TEST_F(PrackTest, OverTcpTheProvisionalIsSentOnce) {
  caller_ = callerPeer("prack-tcp");
  caller_.flow.transport = net::Transport::Tcp;
  std::string invite = makeInvite(caller_, "z9hG4bK-tcp");
  invite.replace(invite.find("SIP/2.0/UDP"), 11, "SIP/2.0/TCP");
  h_.inject(invite, caller_.flow);
  ASSERT_TRUE(h_.next(kCallerPort));
  b_invite_ = h_.next(kPbxPort);
  ASSERT_TRUE(b_invite_);
  h_.inject(calleeProvisional(9), pbxFlow());
  auto relayed = h_.next(kCallerPort);
  ASSERT_TRUE(relayed);
  EXPECT_EQ(header(*relayed, sip::Hdr::Require), "100rel");
  h_.advance(60 * kT1);
  EXPECT_EQ(h_.pending(kCallerPort), 0u);
  // The 64*T1 deadline for the PRACK still applies.
  h_.advance(5 * kT1);
  auto rejected = h_.next(kCallerPort);
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->statusCode(), 500);
}

TEST_F(PrackTest, HundredRelDoesNotCrossOnReInvites) {
  // A call answered at once; then a re-INVITE that requires 100rel: only the initial
  // INVITE's provisionals are mapped, so the callee does not learn of it.
  call({}, "prack-reinvite");
  h_.inject(makeResponse(*b_invite_, 200, "OK", "pbx-tag", kPbxContact, kDefaultSdp), pbxFlow());
  auto ok = h_.next(kCallerPort);
  ASSERT_TRUE(ok);
  callerLearns(*ok);
  h_.inject(makeAck(caller_, 1, "z9hG4bK-re-ack"), caller_.flow);
  ASSERT_TRUE(h_.next(kPbxPort));
  h_.inject(withHeaders(makeRequest(caller_, "INVITE", "z9hG4bK-re", kDefaultSdp), "Require: 100rel\r\n"),
            caller_.flow);
  auto reinvite = h_.next(kPbxPort);
  ASSERT_TRUE(reinvite);
  EXPECT_EQ(reinvite->method(), sip::Method::Invite);
  EXPECT_EQ(header(*reinvite, sip::Hdr::Supported), "timer");
  EXPECT_EQ(reinvite->find(sip::Hdr::Require), nullptr);
}

TEST_F(PrackTest, PbxCallsOutWithReliableEarlyMedia) {
  // The PBX is the caller here (leg 0) and the carrier the callee: the same mapping applies.
  PeerDialog pbx = pbxPeer("prack-out");
  h_.inject(makeInvite(pbx, "z9hG4bK-out"), pbx.flow);
  ASSERT_TRUE(h_.next(kPbxPort));  // 100
  auto invite = h_.next(kCarrierPort);
  ASSERT_TRUE(invite);
  EXPECT_EQ(header(*invite, sip::Hdr::Supported), "timer, 100rel");
  net::Flow carrier = carrierPeer("unused").flow;
  std::string reliable = withHeaders(makeResponse(*invite, 183, "Session Progress", "carrier-tag",
                                                  "sip:carrier@127.0.0.1:5090", kDefaultSdp),
                                     "Require: 100rel\r\nRSeq: 42\r\n");
  h_.inject(reliable, carrier);
  auto relayed = h_.next(kPbxPort);
  ASSERT_TRUE(relayed);
  EXPECT_EQ(header(*relayed, sip::Hdr::Require), "100rel");
  pbx.remote_tag = std::string(relayed->toTag());
  sip::NameAddr contact;
  ASSERT_TRUE(relayed->firstContact(contact));
  pbx.request_uri = std::string(contact.uri);
  h_.inject(withHeaders(makeRequest(pbx, "PRACK", "z9hG4bK-out-pr"),
                        fmt::format("RAck: {} 1 INVITE\r\n", rseqOf(*relayed))),
            pbx.flow);
  auto to_carrier = h_.next(kCarrierPort);
  ASSERT_TRUE(to_carrier);
  EXPECT_EQ(to_carrier->method(), sip::Method::Prack);
  EXPECT_EQ(header(*to_carrier, sip::Hdr::Rack), fmt::format("42 {} INVITE", invite->cseq()));
  EXPECT_EQ(to_carrier->toTag(), "carrier-tag");
}

}  // namespace
}  // namespace palisade
