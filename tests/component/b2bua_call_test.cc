// Whole call flows through one worker's Engine over a fake network and a manual clock
// (RFC 3261 §13-§17 behaviour of the B2BUA, both directions).
#include <gtest/gtest.h>

#include "tests/support/engine_harness.h"

namespace palisade {
namespace {

using namespace palisade::testing;  // NOLINT: test-local brevity

constexpr std::uint16_t kCallerPort = 5061;
constexpr std::uint16_t kPbxPort = 5080;
constexpr std::uint16_t kCarrierPort = 5090;

class CallFlowTest : public ::testing::Test {
 protected:
  // Caller -> Palisade -> PBX, answered and acknowledged. Fills caller_ and callee_.
  void establish(const std::string& call_id = "call-1") {
    caller_ = callerPeer(call_id);
    h_.inject(makeInvite(caller_, "z9hG4bK-inv-" + call_id), caller_.flow);
    auto trying = h_.next(kCallerPort);
    ASSERT_TRUE(trying);
    ASSERT_EQ(trying->statusCode(), 100);
    b_invite_ = h_.next(kPbxPort);
    ASSERT_TRUE(b_invite_);
    h_.inject(makeResponse(*b_invite_, 180, "Ringing", "pbx-tag", "sip:pbx@127.0.0.1:5080"), pbxFlow());
    ASSERT_TRUE(h_.next(kCallerPort));
    h_.inject(makeResponse(*b_invite_, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp),
              pbxFlow());
    ok_ = h_.next(kCallerPort);
    ASSERT_TRUE(ok_);
    ASSERT_EQ(ok_->statusCode(), 200);
    caller_.remote_tag = std::string(ok_->toTag());
    sip::NameAddr contact;
    ASSERT_TRUE(ok_->firstContact(contact));
    caller_.request_uri = std::string(contact.uri);
    h_.inject(makeAck(caller_, 1, "z9hG4bK-ack-" + call_id), caller_.flow);
    auto ack = h_.next(kPbxPort);
    ASSERT_TRUE(ack);
    ASSERT_EQ(ack->method(), sip::Method::Ack);
    // The PBX's view of its dialog with Palisade.
    callee_ = pbxPeer(std::string(b_invite_->callId()));
    callee_.local_tag = "pbx-tag";
    callee_.remote_tag = std::string(b_invite_->fromTag());
    callee_.local_uri = "sip:pbx@127.0.0.1:5080";
    ASSERT_TRUE(b_invite_->firstContact(contact));
    callee_.request_uri = std::string(contact.uri);
    callee_.remote_uri = std::string(b_invite_->from().uri);
    callee_.cseq = 100;
  }

  static net::Flow pbxFlow() { return udpFlow(net::Side::Pbx, "127.0.0.1", kPbxPort); }

  EngineHarness h_;
  PeerDialog caller_, callee_;
  std::unique_ptr<sip::Message> b_invite_, ok_;
};

TEST_F(CallFlowTest, BasicCallHidesEachSideFromTheOther) {
  establish();
  // What the PBX received names nothing of the caller (header section; SDP is media's job).
  std::string to_pbx(b_invite_->raw().substr(0, b_invite_->raw().find("\r\n\r\n")));
  EXPECT_EQ(to_pbx.find("127.0.0.2"), std::string::npos) << to_pbx;
  EXPECT_EQ(to_pbx.find("5061"), std::string::npos) << to_pbx;
  EXPECT_EQ(to_pbx.find("alice-tag"), std::string::npos);
  EXPECT_EQ(to_pbx.find("call-1"), std::string::npos);
  EXPECT_EQ(b_invite_->maxForwards(), 69);
  EXPECT_EQ(b_invite_->cseq(), 1u);
  // And the caller's 200 names nothing of the PBX.
  std::string to_caller(ok_->raw().substr(0, ok_->raw().find("\r\n\r\n")));
  EXPECT_EQ(to_caller.find("5080"), std::string::npos) << to_caller;
  EXPECT_EQ(to_caller.find("pbx-tag"), std::string::npos);
  EXPECT_EQ(to_caller.find(b_invite_->callId()), std::string::npos);
  EXPECT_NE(to_caller.find("rport=5061"), std::string::npos) << to_caller;
  EXPECT_EQ(ok_->body(), kDefaultSdp);

  h_.inject(makeRequest(caller_, "BYE", "z9hG4bK-bye-1"), caller_.flow);
  auto bye = h_.next(kPbxPort);
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->method(), sip::Method::Bye);
  EXPECT_EQ(bye->callId(), b_invite_->callId());
  EXPECT_EQ(bye->toTag(), "pbx-tag");
  EXPECT_EQ(bye->cseq(), 2u);
  h_.inject(makeResponse(*bye, 200, "OK", "", ""), pbxFlow());
  auto bye_ok = h_.next(kCallerPort);
  ASSERT_TRUE(bye_ok);
  EXPECT_EQ(bye_ok->statusCode(), 200);
  EXPECT_EQ(bye_ok->cseqMethod(), sip::Method::Bye);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
  EXPECT_EQ(h_.counter(stats::Counter::CallsAttempted), 1u);
  EXPECT_EQ(h_.counter(stats::Counter::CallsAnswered), 1u);
}

TEST_F(CallFlowTest, ByeFromTheCallee) {
  establish();
  h_.inject(makeRequest(callee_, "BYE", "z9hG4bK-pbx-bye"), callee_.flow);
  auto bye = h_.next(kCallerPort);
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->method(), sip::Method::Bye);
  EXPECT_EQ(bye->callId(), "call-1");
  EXPECT_EQ(bye->toTag(), "alice-tag");
  EXPECT_EQ(bye->fromTag(), caller_.remote_tag);
  h_.inject(makeResponse(*bye, 200, "OK", "", ""), caller_.flow);
  auto ok = h_.next(kPbxPort);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->statusCode(), 200);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
}

TEST_F(CallFlowTest, LateRepeatedAckIsIgnored) {
  establish();
  h_.advance(64 * 500 + 100);  // the callee's INVITE transaction is gone
  h_.inject(makeAck(caller_, 1, "z9hG4bK-ack-call-1"), caller_.flow);
  EXPECT_EQ(h_.pending(kPbxPort), 0u);
  for (const auto& packet : h_.network().sent) EXPECT_FALSE(packet.bytes.empty());
}

TEST_F(CallFlowTest, ContactHeadersNeverReachTheRequestUri) {
  caller_ = callerPeer("uri-headers-1");
  std::string invite = makeInvite(caller_, "z9hG4bK-uh");
  invite.replace(invite.find("Contact: <sip:alice@127.0.0.2:5061>"), 35,
                 "Contact: <sip:alice@127.0.0.2:5061;lr?Subject=x&Route=%3Csip:evil%3E>");
  h_.inject(invite, caller_.flow);
  ASSERT_TRUE(h_.next(kCallerPort));
  b_invite_ = h_.next(kPbxPort);
  ASSERT_TRUE(b_invite_);
  h_.inject(makeResponse(*b_invite_, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080?X=y", kDefaultSdp),
            pbxFlow());
  auto ok = h_.next(kCallerPort);
  ASSERT_TRUE(ok);
  caller_.remote_tag = std::string(ok->toTag());
  sip::NameAddr contact;
  ASSERT_TRUE(ok->firstContact(contact));
  caller_.request_uri = std::string(contact.uri);
  h_.inject(makeAck(caller_, 1, "z9hG4bK-uh-ack"), caller_.flow);
  auto ack = h_.next(kPbxPort);
  ASSERT_TRUE(ack);
  EXPECT_TRUE(ack->ok());
  EXPECT_EQ(ack->requestUri(), "sip:pbx@127.0.0.1:5080");
  // A request from the callee goes to the caller's Contact, without its headers.
  callee_ = pbxPeer(std::string(b_invite_->callId()));
  callee_.local_tag = "pbx-tag";
  callee_.remote_tag = std::string(b_invite_->fromTag());
  ASSERT_TRUE(b_invite_->firstContact(contact));
  callee_.request_uri = std::string(contact.uri);
  callee_.cseq = 10;
  h_.inject(makeRequest(callee_, "BYE", "z9hG4bK-uh-bye"), callee_.flow);
  auto bye = h_.next(kCallerPort);
  ASSERT_TRUE(bye);
  EXPECT_TRUE(bye->ok()) << h_.lastBytes();
  EXPECT_EQ(bye->requestUri(), "sip:alice@127.0.0.2:5061;lr");
}

TEST_F(CallFlowTest, ByesThatCrossAreBothAnswered) {
  establish();
  h_.inject(makeRequest(caller_, "BYE", "z9hG4bK-bye-a"), caller_.flow);
  h_.inject(makeRequest(callee_, "BYE", "z9hG4bK-bye-b"), callee_.flow);
  auto bye_to_pbx = h_.next(kPbxPort);
  ASSERT_TRUE(bye_to_pbx);
  EXPECT_EQ(bye_to_pbx->method(), sip::Method::Bye);
  // The PBX answers our BYE; the call ends and the PBX's own BYE gets its 200 too.
  h_.inject(makeResponse(*bye_to_pbx, 200, "OK", "", ""), pbxFlow());
  auto pbx_bye_answer = h_.next(kPbxPort);
  ASSERT_TRUE(pbx_bye_answer);
  EXPECT_EQ(pbx_bye_answer->statusCode(), 200);
  EXPECT_EQ(pbx_bye_answer->cseqMethod(), sip::Method::Bye);
  bool caller_got_200 = false;
  while (auto m = h_.next(kCallerPort)) {
    if (!m->isRequest() && m->statusCode() == 200 && m->cseqMethod() == sip::Method::Bye)
      caller_got_200 = true;
  }
  EXPECT_TRUE(caller_got_200);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
}

TEST_F(CallFlowTest, ReinviteFromCallerAndCalleeMapCSeqs) {
  establish();
  // Caller re-INVITE (hold): relayed with the callee leg's own CSeq, ACK mapped back.
  h_.inject(makeRequest(caller_, "INVITE", "z9hG4bK-reinv-a", kDefaultSdp), caller_.flow);
  auto trying = h_.next(kCallerPort);
  ASSERT_TRUE(trying);
  EXPECT_EQ(trying->statusCode(), 100);
  auto reinvite = h_.next(kPbxPort);
  ASSERT_TRUE(reinvite);
  EXPECT_EQ(reinvite->method(), sip::Method::Invite);
  EXPECT_EQ(reinvite->toTag(), "pbx-tag");
  EXPECT_EQ(reinvite->cseq(), 2u);
  h_.inject(makeResponse(*reinvite, 200, "OK", "", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto ok = h_.next(kCallerPort);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->statusCode(), 200);
  EXPECT_EQ(ok->cseq(), caller_.cseq);
  h_.inject(makeAck(caller_, caller_.cseq, "z9hG4bK-reinv-a-ack"), caller_.flow);
  auto ack = h_.next(kPbxPort);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->method(), sip::Method::Ack);
  EXPECT_EQ(ack->cseq(), 2u);

  // Callee re-INVITE.
  h_.inject(makeRequest(callee_, "INVITE", "z9hG4bK-reinv-b", kDefaultSdp), callee_.flow);
  ASSERT_TRUE(h_.next(kPbxPort));  // 100 Trying
  auto to_caller = h_.next(kCallerPort);
  ASSERT_TRUE(to_caller);
  EXPECT_EQ(to_caller->method(), sip::Method::Invite);
  EXPECT_EQ(to_caller->callId(), "call-1");
  h_.inject(makeResponse(*to_caller, 200, "OK", "", "sip:alice@127.0.0.2:5061", kDefaultSdp), caller_.flow);
  auto ok_b = h_.next(kPbxPort);
  ASSERT_TRUE(ok_b);
  EXPECT_EQ(ok_b->statusCode(), 200);
  h_.inject(makeAck(callee_, callee_.cseq, "z9hG4bK-reinv-b-ack"), callee_.flow);
  auto ack_a = h_.next(kCallerPort);
  ASSERT_TRUE(ack_a);
  EXPECT_EQ(ack_a->method(), sip::Method::Ack);
  EXPECT_EQ(ack_a->cseq(), to_caller->cseq());
}

TEST_F(CallFlowTest, InfoAndUpdateAreRelayed) {
  establish();
  for (const char* method : {"INFO", "UPDATE"}) {
    h_.inject(makeRequest(caller_, method, std::string("z9hG4bK-") + method), caller_.flow);
    auto relayed = h_.next(kPbxPort);
    ASSERT_TRUE(relayed);
    EXPECT_EQ(relayed->methodText(), method);
    h_.inject(makeResponse(*relayed, 200, "OK", "", ""), pbxFlow());
    auto ok = h_.next(kCallerPort);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->statusCode(), 200);
    EXPECT_EQ(ok->cseqMethodText(), method);
  }
}

TEST_F(CallFlowTest, BusyIsRelayedAndAckedHopByHop) {
  caller_ = callerPeer("busy-1");
  h_.inject(makeInvite(caller_, "z9hG4bK-busy"), caller_.flow);
  ASSERT_TRUE(h_.next(kCallerPort));
  auto invite = h_.next(kPbxPort);
  ASSERT_TRUE(invite);
  h_.inject(makeResponse(*invite, 486, "Busy Here", "pbx-tag", ""), pbxFlow());
  auto ack = h_.next(kPbxPort);  // the client transaction ACKs the 486 itself
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->method(), sip::Method::Ack);
  EXPECT_EQ(ack->topVia().branch, invite->topVia().branch);
  auto busy = h_.next(kCallerPort);
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->statusCode(), 486);
  EXPECT_EQ(h_.counter(stats::Counter::CallsFailed), 1u);
  // The 486 is retransmitted (Timer G) until the caller ACKs it.
  h_.advance(600);
  auto again = h_.next(kCallerPort);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->statusCode(), 486);
  caller_.remote_tag = std::string(busy->toTag());
  h_.inject(makeAck(caller_, 1, "z9hG4bK-busy"), caller_.flow);
  h_.advance(5000);
  EXPECT_EQ(h_.pending(kCallerPort), 0u);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
}

TEST_F(CallFlowTest, CancelAfterRinging) {
  caller_ = callerPeer("cancel-1");
  h_.inject(makeInvite(caller_, "z9hG4bK-c1"), caller_.flow);
  ASSERT_TRUE(h_.next(kCallerPort));
  auto invite = h_.next(kPbxPort);
  ASSERT_TRUE(invite);
  h_.inject(makeResponse(*invite, 180, "Ringing", "pbx-tag", "sip:pbx@127.0.0.1:5080"), pbxFlow());
  ASSERT_TRUE(h_.next(kCallerPort));
  h_.inject(makeCancel(caller_, 1, "z9hG4bK-c1"), caller_.flow);
  auto cancel_ok = h_.next(kCallerPort);
  ASSERT_TRUE(cancel_ok);
  EXPECT_EQ(cancel_ok->statusCode(), 200);
  EXPECT_EQ(cancel_ok->cseqMethod(), sip::Method::Cancel);
  auto terminated = h_.next(kCallerPort);
  ASSERT_TRUE(terminated);
  EXPECT_EQ(terminated->statusCode(), 487);
  auto cancel = h_.next(kPbxPort);
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->method(), sip::Method::Cancel);
  EXPECT_EQ(cancel->topVia().branch, invite->topVia().branch);
  EXPECT_EQ(cancel->cseq(), invite->cseq());
  h_.inject(makeResponse(*cancel, 200, "OK", "pbx-tag", ""), pbxFlow());
  h_.inject(makeResponse(*invite, 487, "Request Terminated", "pbx-tag", ""), pbxFlow());
  auto ack = h_.next(kPbxPort);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->method(), sip::Method::Ack);
  EXPECT_EQ(h_.pending(kCallerPort), 0u);  // no second final response to the caller
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
  EXPECT_EQ(h_.counter(stats::Counter::CallsCancelled), 1u);
}

TEST_F(CallFlowTest, CancelBeforeAnyProvisionalWaitsForOne) {
  caller_ = callerPeer("cancel-2");
  h_.inject(makeInvite(caller_, "z9hG4bK-c2"), caller_.flow);
  ASSERT_TRUE(h_.next(kCallerPort));
  auto invite = h_.next(kPbxPort);
  ASSERT_TRUE(invite);
  h_.inject(makeCancel(caller_, 1, "z9hG4bK-c2"), caller_.flow);
  EXPECT_EQ(h_.next(kCallerPort)->statusCode(), 200);
  EXPECT_EQ(h_.next(kCallerPort)->statusCode(), 487);
  EXPECT_FALSE(h_.next(kPbxPort));  // RFC 3261 §9.1: no CANCEL before a provisional
  h_.inject(makeResponse(*invite, 100, "Trying", "", ""), pbxFlow());
  auto cancel = h_.next(kPbxPort);
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->method(), sip::Method::Cancel);
}

TEST_F(CallFlowTest, CancelRacesWithTheCalleesOk) {
  caller_ = callerPeer("race-1");
  h_.inject(makeInvite(caller_, "z9hG4bK-r1"), caller_.flow);
  ASSERT_TRUE(h_.next(kCallerPort));
  auto invite = h_.next(kPbxPort);
  ASSERT_TRUE(invite);
  h_.inject(makeResponse(*invite, 180, "Ringing", "pbx-tag", "sip:pbx@127.0.0.1:5080"), pbxFlow());
  h_.inject(makeCancel(caller_, 1, "z9hG4bK-r1"), caller_.flow);
  ASSERT_TRUE(h_.next(kPbxPort));  // CANCEL
  // The 200 crosses the CANCEL: the caller already has its 487, so the callee leg is ACKed and
  // hung up.
  h_.inject(makeResponse(*invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto ack = h_.next(kPbxPort);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->method(), sip::Method::Ack);
  auto bye = h_.next(kPbxPort);
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->method(), sip::Method::Bye);
  EXPECT_EQ(bye->toTag(), "pbx-tag");
  EXPECT_EQ(bye->callId(), invite->callId());
  std::unique_ptr<sip::Message> last;
  while (auto m = h_.next(kCallerPort)) last = std::move(m);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->statusCode(), 487);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
}

TEST_F(CallFlowTest, ForkingCalleeKeepsTheFirstAnswer) {
  caller_ = callerPeer("fork-1");
  h_.inject(makeInvite(caller_, "z9hG4bK-f1"), caller_.flow);
  ASSERT_TRUE(h_.next(kCallerPort));
  auto invite = h_.next(kPbxPort);
  ASSERT_TRUE(invite);
  h_.inject(makeResponse(*invite, 180, "Ringing", "fork-a", "sip:a@127.0.0.1:5080"), pbxFlow());
  h_.inject(makeResponse(*invite, 183, "Session Progress", "fork-b", "sip:b@127.0.0.1:5080"), pbxFlow());
  auto ring_a = h_.next(kCallerPort);
  auto ring_b = h_.next(kCallerPort);
  ASSERT_TRUE(ring_a && ring_b);
  EXPECT_NE(ring_a->toTag(), ring_b->toTag());  // two early dialogs, two tags
  h_.inject(makeResponse(*invite, 200, "OK", "fork-b", "sip:b@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto ok = h_.next(kCallerPort);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->toTag(), ring_b->toTag());
  h_.inject(makeResponse(*invite, 200, "OK", "fork-a", "sip:a@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto ack = h_.next(kPbxPort);
  auto bye = h_.next(kPbxPort);
  ASSERT_TRUE(ack && bye);
  EXPECT_EQ(ack->method(), sip::Method::Ack);
  EXPECT_EQ(bye->method(), sip::Method::Bye);
  EXPECT_EQ(bye->toTag(), "fork-a");
  EXPECT_EQ(h_.pending(kCallerPort), 0u);  // the second answer never reaches the caller
}

TEST_F(CallFlowTest, RetransmissionsAreAbsorbedOnBothLegs) {
  caller_ = callerPeer("rtx-1");
  std::string invite_bytes = makeInvite(caller_, "z9hG4bK-x1");
  h_.inject(invite_bytes, caller_.flow);
  ASSERT_TRUE(h_.next(kCallerPort));
  auto invite = h_.next(kPbxPort);
  ASSERT_TRUE(invite);
  h_.inject(invite_bytes, caller_.flow);  // caller retransmits
  auto repeated = h_.next(kCallerPort);
  ASSERT_TRUE(repeated);
  EXPECT_EQ(repeated->statusCode(), 100);
  EXPECT_FALSE(h_.next(kPbxPort));  // not a second call
  std::string ringing = makeResponse(*invite, 180, "Ringing", "pbx-tag", "sip:pbx@127.0.0.1:5080");
  h_.inject(ringing, pbxFlow());
  h_.inject(ringing, pbxFlow());
  EXPECT_TRUE(h_.next(kCallerPort));
  EXPECT_TRUE(h_.next(kCallerPort));  // a repeated provisional is relayed (harmless, RFC 3261 §17.1.1.2)
  std::string ok_bytes = makeResponse(*invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp);
  h_.inject(ok_bytes, pbxFlow());
  auto ok = h_.next(kCallerPort);
  ASSERT_TRUE(ok);
  // No ACK from the caller yet: our 2xx is retransmitted at T1, 2*T1...
  h_.advance(510);
  auto ok_again = h_.next(kCallerPort);
  ASSERT_TRUE(ok_again);
  EXPECT_EQ(ok_again->statusCode(), 200);
  h_.inject(ok_bytes, pbxFlow());  // the PBX retransmits its 2xx before our ACK: absorbed
  EXPECT_FALSE(h_.next(kPbxPort));
  caller_.remote_tag = std::string(ok->toTag());
  h_.inject(makeAck(caller_, 1, "z9hG4bK-x1-ack"), caller_.flow);
  ASSERT_TRUE(h_.next(kPbxPort));  // ACK
  h_.inject(ok_bytes, pbxFlow());  // 2xx again after the ACK: our ACK was lost, resend it
  auto ack_again = h_.next(kPbxPort);
  ASSERT_TRUE(ack_again);
  EXPECT_EQ(ack_again->method(), sip::Method::Ack);
  h_.advance(2000);
  EXPECT_EQ(h_.pending(kCallerPort), 0u);  // retransmissions stopped by the ACK
}

TEST_F(CallFlowTest, MissingAckTearsTheCallDown) {
  // The carrier trunk is a configured peer: it gets its BYE (an unverified internet caller
  // does not; see hardening_test.cc).
  caller_ = carrierPeer("noack-1");
  h_.inject(makeInvite(caller_, "z9hG4bK-n1"), caller_.flow);
  ASSERT_TRUE(h_.next(kCarrierPort));
  auto invite = h_.next(kPbxPort);
  h_.inject(makeResponse(*invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  h_.advance(64 * 500 + 100);
  // Callee leg: ACK then BYE. Caller leg: BYE.
  auto ack = h_.next(kPbxPort);
  auto bye = h_.next(kPbxPort);
  ASSERT_TRUE(ack && bye);
  EXPECT_EQ(ack->method(), sip::Method::Ack);
  EXPECT_EQ(bye->method(), sip::Method::Bye);
  bool caller_bye = false;
  while (auto m = h_.next(kCarrierPort))
    caller_bye = caller_bye || (m->isRequest() && m->method() == sip::Method::Bye);
  EXPECT_TRUE(caller_bye);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
  EXPECT_EQ(h_.counter(stats::Counter::CallsTimedOut), 1u);
}

TEST_F(CallFlowTest, InviteTimesOutWithTimerB) {
  caller_ = callerPeer("timeout-1");
  h_.inject(makeInvite(caller_, "z9hG4bK-t1"), caller_.flow);
  ASSERT_TRUE(h_.next(kCallerPort));
  ASSERT_TRUE(h_.next(kPbxPort));
  h_.advance(600);
  auto retransmission = h_.next(kPbxPort);  // Timer A
  ASSERT_TRUE(retransmission);
  EXPECT_EQ(retransmission->method(), sip::Method::Invite);
  h_.advance(64 * 500);
  std::unique_ptr<sip::Message> final;
  while (auto m = h_.next(kCallerPort)) final = std::move(m);
  ASSERT_TRUE(final);
  EXPECT_EQ(final->statusCode(), 408);
  EXPECT_EQ(h_.counter(stats::Counter::CallsTimedOut), 1u);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
}

TEST_F(CallFlowTest, RingingCallIsCancelledAfterRingTimeout) {
  caller_ = callerPeer("ring-1");
  h_.inject(makeInvite(caller_, "z9hG4bK-ring"), caller_.flow);
  ASSERT_TRUE(h_.next(kCallerPort));
  auto invite = h_.next(kPbxPort);
  ASSERT_TRUE(invite);
  h_.inject(makeResponse(*invite, 180, "Ringing", "pbx-tag", "sip:pbx@127.0.0.1:5080"), pbxFlow());
  ASSERT_TRUE(h_.next(kCallerPort));
  h_.advance(179'000);
  EXPECT_EQ(h_.pending(kCallerPort), 0u);
  EXPECT_EQ(h_.pending(kPbxPort), 0u);
  h_.advance(2'000);  // ring_timeout_s = 180 in the default config
  auto timeout = h_.next(kCallerPort);
  ASSERT_TRUE(timeout);
  EXPECT_EQ(timeout->statusCode(), 408);
  auto cancel = h_.next(kPbxPort);
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->method(), sip::Method::Cancel);
  EXPECT_EQ(h_.counter(stats::Counter::CallsTimedOut), 1u);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
}

TEST_F(CallFlowTest, ByeTimesOutWithTimerF) {
  establish();
  h_.inject(makeRequest(caller_, "BYE", "z9hG4bK-bye-f"), caller_.flow);
  ASSERT_TRUE(h_.next(kPbxPort));
  h_.advance(64 * 500 + 100);
  std::unique_ptr<sip::Message> final;
  while (auto m = h_.next(kCallerPort)) final = std::move(m);
  ASSERT_TRUE(final);
  EXPECT_EQ(final->statusCode(), 408);
  EXPECT_EQ(final->cseqMethod(), sip::Method::Bye);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
}

TEST_F(CallFlowTest, PbxCallsGoToTheCarrier) {
  PeerDialog pbx = pbxPeer("pbx-out-1");
  h_.inject(makeInvite(pbx, "z9hG4bK-p1"), pbx.flow);
  ASSERT_TRUE(h_.next(kPbxPort));  // 100
  auto invite = h_.next(kCarrierPort);
  ASSERT_TRUE(invite);
  EXPECT_EQ(invite->requestUri().substr(0, 21), "sip:15551234@127.0.0.");
  std::string head(invite->raw().substr(0, invite->raw().find("\r\n\r\n")));
  EXPECT_EQ(head.find("5080"), std::string::npos) << head;
  EXPECT_EQ(head.find("pbx-caller-tag"), std::string::npos);
  EXPECT_NE(head.find("Via: SIP/2.0/UDP 127.0.0.1:5060"), std::string::npos) << head;
  net::Flow carrier = udpFlow(net::Side::Public, "127.0.0.1", kCarrierPort);
  h_.inject(makeResponse(*invite, 200, "OK", "carrier-tag", "sip:carrier@127.0.0.1:5090", kDefaultSdp),
            carrier);
  auto ok = h_.next(kPbxPort);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->statusCode(), 200);
  std::string ok_head(ok->raw().substr(0, ok->raw().find("\r\n\r\n")));
  EXPECT_EQ(ok_head.find("5090"), std::string::npos) << ok_head;
  EXPECT_NE(ok_head.find("Contact: <sip:127.0.0.1:5070>"), std::string::npos) << ok_head;
}

TEST_F(CallFlowTest, LocalAnswers) {
  PeerDialog peer = callerPeer("local-1");
  // A monitor that has shown it receives at its address: an unverified source's probe this
  // small would draw no answer at all (no amplification; see AmplificationTest).
  peer.flow.verified = true;
  std::string probe =
      "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-opt\r\n"
      "From: <sip:mon@127.0.0.2>;tag=m1\r\nTo: <sip:127.0.0.1:5060>\r\nCall-ID: opt-1\r\nCSeq: 7 OPTIONS\r\n"
      "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
  h_.inject(probe, peer.flow);
  auto ok = h_.next(kCallerPort);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->statusCode(), 200);
  EXPECT_NE(h_.lastBytes().find("Allow: INVITE"), std::string::npos);
  EXPECT_FALSE(h_.next(kPbxPort));
  EXPECT_EQ(h_.engine().transactionCount(), 0u);  // answered statelessly: a probe flood keeps nothing
  h_.inject(probe, peer.flow);                    // a retransmission is simply answered again
  EXPECT_EQ(h_.next(kCallerPort)->statusCode(), 200);

  std::string zero = probe;
  zero.replace(zero.find("Max-Forwards: 70"), 16, "Max-Forwards: 0");
  zero.replace(zero.find("opt-1"), 5, "opt-2").replace(zero.find("z9hG4bK-opt"), 11, "z9hG4bK-mf0");
  h_.inject(zero, peer.flow);
  EXPECT_EQ(h_.next(kCallerPort)->statusCode(), 483);

  std::string bye_out_of_dialog = probe;
  bye_out_of_dialog.replace(0, 7, "BYE").replace(bye_out_of_dialog.find("7 OPTIONS"), 9, "7 BYE");
  bye_out_of_dialog.replace(bye_out_of_dialog.find("z9hG4bK-opt"), 11, "z9hG4bK-bye");
  h_.inject(bye_out_of_dialog, peer.flow);
  EXPECT_EQ(h_.next(kCallerPort)->statusCode(), 481);

  std::string register_request = probe;
  register_request.replace(0, 7, "REGISTER").replace(register_request.find("7 OPTIONS"), 9, "7 REGISTER");
  register_request.replace(register_request.find("z9hG4bK-opt"), 11, "z9hG4bK-reg");
  h_.inject(register_request, peer.flow);
  EXPECT_EQ(h_.next(kCallerPort)->statusCode(), 405);
}

TEST_F(CallFlowTest, UnknownDialogGets481) {
  PeerDialog ghost = callerPeer("ghost-1");
  ghost.remote_tag = "no-such-tag";
  h_.inject(makeRequest(ghost, "BYE", "z9hG4bK-g1"), ghost.flow);
  auto reply = h_.next(kCallerPort);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->statusCode(), 481);
}

TEST_F(CallFlowTest, ReloadMidCallKeepsTheCall) {
  establish();
  auto changed = std::make_shared<config::Config>(*config::defaultConfig().value());
  changed->timing.t1_ms = 250;
  changed->user_agent = "Palisade-reloaded";
  h_.engine().applyConfig(changed);
  h_.inject(makeRequest(caller_, "BYE", "z9hG4bK-bye-reload"), caller_.flow);
  auto bye = h_.next(kPbxPort);
  ASSERT_TRUE(bye);
  EXPECT_NE(h_.lastBytes().find("User-Agent: Palisade-reloaded"), std::string::npos);
  h_.advance(260);  // new T1 applies to new transactions
  auto retransmitted = h_.next(kPbxPort);
  ASSERT_TRUE(retransmitted);
  EXPECT_EQ(retransmitted->method(), sip::Method::Bye);
  h_.inject(makeResponse(*bye, 200, "OK", "", ""), pbxFlow());
  EXPECT_EQ(h_.next(kCallerPort)->statusCode(), 200);
}

TEST_F(CallFlowTest, MaxCallsGets503) {
  auto limited = std::make_shared<config::Config>(*config::defaultConfig().value());
  limited->max_calls = 1;
  h_.engine().applyConfig(limited);
  PeerDialog first = callerPeer("cap-1");
  PeerDialog second = callerPeer("cap-2");
  h_.inject(makeInvite(first, "z9hG4bK-cap1"), first.flow);
  h_.clearSent();
  h_.inject(makeInvite(second, "z9hG4bK-cap2"), second.flow);
  auto reply = h_.next(kCallerPort);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->statusCode(), 503);
  EXPECT_NE(h_.lastBytes().find("Retry-After:"), std::string::npos);
}

}  // namespace
}  // namespace palisade
