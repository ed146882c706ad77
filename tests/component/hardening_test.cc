// What an attacker can and cannot do to calls through one engine: forge responses or CANCELs,
// reflect traffic with spoofed sources, smuggle identity or credentials across, grow a call's
// state; and the seams later stages use (the media hook, pending policy decisions).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "core/dialog/call.h"
#include "core/dialog/engine.h"
#include "tests/support/engine_harness.h"

namespace palisade {
namespace {

using namespace palisade::testing;  // NOLINT: test-local brevity

constexpr std::uint16_t kCallerPort = 5061;
constexpr std::uint16_t kPbxPort = 5080;
constexpr std::uint16_t kCarrierPort = 5090;

net::Flow pbxFlow() {
  net::Flow flow = udpFlow(net::Side::Pbx, "127.0.0.1", kPbxPort);
  flow.peer = 1;
  flow.verified = true;
  return flow;
}

// Adds header lines to a message made by the factories (just before Content-Length).
std::string withHeaders(std::string message, std::string_view lines) {
  message.insert(message.find("Content-Length:"), lines);
  return message;
}

bool hasHeader(const sip::Message& m, std::string_view name) {
  for (const auto& h : m.headers())
    if (sip::iequals(h.name, name)) return true;
  return false;
}

std::size_t drain(EngineHarness& h, std::uint16_t port) {
  std::size_t n = 0;
  while (h.next(port)) ++n;
  return n;
}

// RFC 3261 §17.2.1: a final response over UDP is sent once, then retransmitted on Timer G
// (T1, doubling up to T2) until Timer H (64*T1).
std::size_t finalResponseTransmissions(base::Millis t1, base::Millis t2) {
  std::size_t sent = 1;
  base::Millis interval = t1;
  for (base::Millis at = t1; at < 64 * t1; at += interval, interval = std::min(interval * 2, t2)) ++sent;
  return sent;
}

// --- trusted responses --------------------------------------------------------------------

TEST(TrustedResponses, ForgedResponsesFromForeignSourcesChangeNothing) {
  EngineHarness h;
  PeerDialog caller = callerPeer("forge-1");
  h.inject(makeInvite(caller, "z9hG4bK-forge"), caller.flow);
  ASSERT_TRUE(h.next(kCallerPort));  // 100
  auto b_invite = h.next(kPbxPort);
  ASSERT_TRUE(b_invite);
  h.inject(makeResponse(*b_invite, 180, "Ringing", "pbx-tag", "sip:pbx@127.0.0.1:5080"), pbxFlow());
  ASSERT_TRUE(h.next(kCallerPort));  // the 180 is relayed

  // An attacker who learnt the branch answers from elsewhere: a host that is not the PBX, or
  // the other listener. A 486 would end the call, a 200 with its own SDP would take it.
  const std::string evil_sdp =
      "v=0\r\no=- 1 1 IN IP4 198.51.100.66\r\ns=-\r\nc=IN IP4 198.51.100.66\r\n"
      "t=0 0\r\nm=audio 4444 RTP/AVP 0\r\n";
  h.engine().onMessage(sip::Message::parse(makeResponse(*b_invite, 486, "Busy Here", "evil", ""), {}, true),
                       udpFlow(net::Side::Pbx, "127.0.0.9", kPbxPort));
  h.engine().onMessage(
      sip::Message::parse(makeResponse(*b_invite, 200, "OK", "evil", "sip:evil@198.51.100.66", evil_sdp), {},
                          true),
      udpFlow(net::Side::Pbx, "127.0.0.9", kPbxPort));
  h.inject(makeResponse(*b_invite, 200, "OK", "evil", "sip:evil@198.51.100.66", evil_sdp),
           udpFlow(net::Side::Public, "127.0.0.1", kPbxPort));
  h.advance(100);
  EXPECT_EQ(h.pending(kCallerPort), 0u);
  EXPECT_EQ(h.counter(stats::Counter::DroppedForeignResponses), 3u);
  EXPECT_EQ(h.engine().activeCalls(), 1u);
  for (const auto& packet : h.network().sent) EXPECT_NE(packet.flow.remote.address.to_string(), "127.0.0.9");

  h.inject(makeResponse(*b_invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto ok = h.next(kCallerPort);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->statusCode(), 200);
  EXPECT_EQ(ok->body(), kDefaultSdp);
  EXPECT_EQ(h.counter(stats::Counter::CallsAnswered), 1u);
}

// A peer with no configured addresses (an internet caller) must answer from exactly where
// our request went: here the answer to a BYE relayed to the caller.
TEST(TrustedResponses, AnUnconfiguredPeerAnswersFromItsOwnAddressAndPort) {
  EngineHarness h;
  PeerDialog caller = callerPeer("forge-2");
  h.inject(makeInvite(caller, "z9hG4bK-forge2"), caller.flow);
  h.next(kCallerPort);
  auto b_invite = h.next(kPbxPort);
  h.inject(makeResponse(*b_invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto ok = h.next(kCallerPort);
  ASSERT_TRUE(ok);
  caller.remote_tag = std::string(ok->toTag());
  h.inject(makeAck(caller, 1, "z9hG4bK-forge2-ack"), caller.flow);
  drain(h, kPbxPort);
  PeerDialog callee = pbxPeer(std::string(b_invite->callId()));
  callee.local_tag = "pbx-tag";
  callee.remote_tag = std::string(b_invite->fromTag());
  callee.remote_uri = std::string(b_invite->from().uri);
  callee.cseq = 100;
  h.inject(makeRequest(callee, "INFO", "z9hG4bK-pbx-info"), pbxFlow());
  auto info = h.next(kCallerPort);
  ASSERT_TRUE(info);
  h.inject(makeResponse(*info, 200, "OK", "", ""), udpFlow(net::Side::Public, "127.0.0.2", kCallerPort + 1));
  EXPECT_EQ(h.pending(kPbxPort), 0u);
  EXPECT_EQ(h.counter(stats::Counter::DroppedForeignResponses), 1u);
  h.inject(makeResponse(*info, 200, "OK", "", ""), caller.flow);
  auto relayed = h.next(kPbxPort);
  ASSERT_TRUE(relayed);
  EXPECT_EQ(relayed->statusCode(), 200);
}

TEST(TrustedResponses, CancelFromAnotherSourceIsRefused) {
  EngineHarness h;
  PeerDialog caller = callerPeer("forge-cancel");
  h.inject(makeInvite(caller, "z9hG4bK-fc"), caller.flow);
  ASSERT_TRUE(h.next(kCallerPort));
  auto b_invite = h.next(kPbxPort);
  ASSERT_TRUE(b_invite);
  h.inject(makeResponse(*b_invite, 180, "Ringing", "pbx-tag", "sip:pbx@127.0.0.1:5080"), pbxFlow());
  ASSERT_TRUE(h.next(kCallerPort));
  net::Flow attacker = udpFlow(net::Side::Public, "127.0.0.66", kCallerPort);
  h.inject(makeCancel(caller, 1, "z9hG4bK-fc"), attacker);
  EXPECT_EQ(h.pending(kPbxPort), 0u);  // no CANCEL toward the PBX
  EXPECT_EQ(h.counter(stats::Counter::DroppedForeignCancels), 1u);
  EXPECT_EQ(h.counter(stats::Counter::CallsCancelled), 0u);
  h.inject(makeCancel(caller, 1, "z9hG4bK-fc"), caller.flow);
  auto cancel = h.next(kPbxPort);
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->method(), sip::Method::Cancel);
  EXPECT_EQ(h.counter(stats::Counter::CallsCancelled), 1u);
}

// Knowing a Call-ID is not enough to confirm (and so keep alive) a call, or to answer a late
// offer: the ACK must carry the dialog's tags.
TEST(TrustedResponses, AnAckWithoutTheDialogsTagsDoesNothing) {
  EngineHarness h;
  PeerDialog victim = callerPeer("forged-ack");
  h.inject(makeInvite(victim, "z9hG4bK-fa"), victim.flow);
  auto b_invite = h.next(kPbxPort);
  ASSERT_TRUE(b_invite);
  h.inject(makeResponse(*b_invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  victim.remote_tag = "guessed";  // the spoofer never saw our tag
  h.inject(makeAck(victim, 1, "z9hG4bK-fa-ack"), victim.flow);
  EXPECT_EQ(h.pending(kPbxPort), 0u);  // not relayed
  h.advance(64 * 500 + 100);
  // The call was never confirmed: torn down at the ACK timeout, with no BYE to the victim.
  EXPECT_EQ(h.engine().activeCalls(), 0u);
  while (auto m = h.next(kCallerPort)) EXPECT_FALSE(m->isRequest());
}

TEST(TrustedResponses, TransfersAreNotRelayed) {
  EngineHarness h;
  PeerDialog caller = callerPeer("refer-1");
  h.inject(makeInvite(caller, "z9hG4bK-rf"), caller.flow);
  h.next(kCallerPort);
  auto invite = h.next(kPbxPort);
  h.inject(makeResponse(*invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto ok = h.next(kCallerPort);
  ASSERT_TRUE(ok);
  caller.remote_tag = std::string(ok->toTag());
  h.inject(makeAck(caller, 1, "z9hG4bK-rf-ack"), caller.flow);
  drain(h, kPbxPort);
  h.inject(withHeaders(makeRequest(caller, "REFER", "z9hG4bK-rf-refer"), "Refer-To: <sip:00900123@pbx>\r\n"),
           caller.flow);
  auto refused = h.next(kCallerPort);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->statusCode(), 405);
  EXPECT_EQ(h.pending(kPbxPort), 0u);
}

// Repeated or varied 2xx for an INVITE whose call is gone draw one ACK and BYE per dialog, and
// only so many: a peer cannot make us open transactions without bound.
TEST(Amplification, StrayAnswersOpenBoundedTransactions) {
  EngineHarness h;
  PeerDialog caller = callerPeer("stray");
  h.inject(makeInvite(caller, "z9hG4bK-stray"), caller.flow);
  auto invite = h.next(kPbxPort);
  ASSERT_TRUE(invite);
  h.inject(makeResponse(*invite, 180, "Ringing", "t0", "sip:pbx@127.0.0.1:5080"), pbxFlow());
  h.inject(makeCancel(caller, 1, "z9hG4bK-stray"), caller.flow);
  drain(h, kCallerPort);
  drain(h, kPbxPort);
  std::size_t before = h.engine().transactionCount();
  for (int i = 0; i < 200; ++i)
    h.inject(
        makeResponse(*invite, 200, "OK", fmt::format("t{}", i % 40), "sip:pbx@127.0.0.1:5080", kDefaultSdp),
        pbxFlow());
  std::size_t byes = 0;
  while (auto m = h.next(kPbxPort)) byes += m->isRequest() && m->method() == sip::Method::Bye ? 1 : 0;
  // The call hangs up strays while it lives, its INVITE transaction once the call is gone.
  const std::size_t bound = dialog::Call::kMaxEarlyDialogs + txn::TransactionLayer::kMaxOrphanDialogs;
  EXPECT_LE(byes, bound);
  EXPECT_GE(byes, 1u);
  EXPECT_LE(h.engine().transactionCount(), before + bound);
}

// --- amplification -------------------------------------------------------------------------

// One spoofed INVITE toward a PBX that never answers: the spoofed address gets the 100 and the
// 408 with its RFC 3261 retransmissions, nothing more, and every one of them is counted.
TEST(Amplification, SpoofedInviteToASilentPbx) {
  EngineHarness h;
  PeerDialog victim = callerPeer("spoof-1");
  h.inject(makeInvite(victim, "z9hG4bK-spoof"), victim.flow);
  h.advance(64 * 500 + 64 * 500 + 1000);  // Timer B, then Timer H
  std::size_t to_victim = drain(h, kCallerPort);
  std::size_t expected = 1 /* 100 */ + finalResponseTransmissions(500, 4000);
  EXPECT_EQ(to_victim, expected);
  EXPECT_EQ(h.counter(stats::Counter::SentToUnverified), expected);
  EXPECT_EQ(h.engine().activeCalls(), 0u);
  EXPECT_EQ(h.engine().transactionCount(), 0u);
}

// The PBX answers a spoofed INVITE: the 2xx is retransmitted as RFC 3261 §13.3.1.4 requires,
// but no BYE is sent to an address that never showed it receives anything.
TEST(Amplification, SpoofedInviteAnsweredGetsNoBye) {
  EngineHarness h;
  PeerDialog victim = callerPeer("spoof-2");
  h.inject(makeInvite(victim, "z9hG4bK-spoof2"), victim.flow);
  auto b_invite = h.next(kPbxPort);
  ASSERT_TRUE(b_invite);
  h.inject(makeResponse(*b_invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  h.advance(64 * 500 + 100);
  std::size_t requests_to_victim = 0, to_victim = 0;
  while (auto m = h.next(kCallerPort)) {
    ++to_victim;
    if (m->isRequest()) ++requests_to_victim;
  }
  EXPECT_EQ(requests_to_victim, 0u);
  EXPECT_EQ(to_victim, 1u /* 100 */ + finalResponseTransmissions(500, 4000));
  EXPECT_EQ(h.counter(stats::Counter::SentToUnverified), to_victim);
  auto ack = h.next(kPbxPort);
  auto bye = h.next(kPbxPort);
  ASSERT_TRUE(ack && bye);
  EXPECT_EQ(ack->method(), sip::Method::Ack);
  EXPECT_EQ(bye->method(), sip::Method::Bye);
}

// A caller that ACKs has shown it receives at its address: it gets its BYE like anyone else.
TEST(Amplification, AVerifiedCallerIsHungUpOnProperly) {
  EngineHarness h;
  PeerDialog caller = callerPeer("verified-1");
  h.inject(makeInvite(caller, "z9hG4bK-v1"), caller.flow);
  auto b_invite = h.next(kPbxPort);
  h.inject(makeResponse(*b_invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  std::unique_ptr<sip::Message> ok;
  while (auto m = h.next(kCallerPort)) ok = std::move(m);
  ASSERT_TRUE(ok);
  caller.remote_tag = std::string(ok->toTag());
  h.inject(makeAck(caller, 1, "z9hG4bK-v1-ack"), caller.flow);
  std::uint64_t unverified = h.counter(stats::Counter::SentToUnverified);
  h.advance(14400 * 1000 + 1000);  // max_call_duration_s
  bool caller_bye = false;
  while (auto m = h.next(kCallerPort))
    caller_bye = caller_bye || (m->isRequest() && m->method() == sip::Method::Bye);
  EXPECT_TRUE(caller_bye);
  EXPECT_EQ(h.counter(stats::Counter::SentToUnverified), unverified);
}

// --- header policy -------------------------------------------------------------------------

constexpr std::string_view kIdentityLines =
    "P-Asserted-Identity: <sip:+12125550100@carrier.example>\r\n"
    "P-Preferred-Identity: <sip:ceo@victim.example>\r\n"
    "Remote-Party-ID: <sip:911@x>;party=calling\r\n"
    "Diversion: <sip:+18005550000@x>;reason=unconditional\r\n"
    "History-Info: <sip:a@x>;index=1\r\n"
    "Privacy: id\r\n";
constexpr std::string_view kOtherLines =
    "X-Evil: 1\r\n"
    "Alert-Info: <http://198.51.100.1/ring>;info=alert-autoanswer\r\n"
    "Call-Info: <sip:x>;answer-after=0\r\n"
    "Authorization: Digest username=\"2001\", realm=\"pbx\", nonce=\"n\", uri=\"sip:x\", response=\"r\"\r\n"
    "Proxy-Authorization: Digest username=\"2001\", realm=\"pbx\", nonce=\"n\", uri=\"sip:x\", "
    "response=\"r\"\r\n"
    "Subject: hello\r\n"
    "s: compact subject\r\n";

std::unique_ptr<sip::Message> forwardedInvite(EngineHarness& h, PeerDialog& from, std::uint16_t from_port) {
  h.inject(withHeaders(makeInvite(from, "z9hG4bK-hdr-" + from.call_id),
                       std::string(kIdentityLines) + std::string(kOtherLines)),
           from.flow);
  h.next(from_port);  // 100
  return h.next(kPbxPort);
}

TEST(HeaderPolicy, IdentityFromTheInternetNeverReachesThePbx) {
  EngineHarness h;
  PeerDialog caller = callerPeer("hdr-untrusted");
  auto invite = forwardedInvite(h, caller, kCallerPort);
  ASSERT_TRUE(invite);
  for (const char* name :
       {"P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID", "Diversion", "History-Info",
        "Privacy", "X-Evil", "Alert-Info", "Call-Info", "Authorization", "Proxy-Authorization"}) {
    EXPECT_FALSE(hasHeader(*invite, name)) << name << "\n" << invite->raw();
  }
  EXPECT_TRUE(hasHeader(*invite, "Subject"));
  EXPECT_TRUE(hasHeader(*invite, "s"));  // compact form of an allowed header
}

TEST(HeaderPolicy, IdentityFromATrustedTrunkCrossesButCredentialsNever) {
  EngineHarness h(nullptr, nullptr, true);  // the policy chain classifies the carrier as a trunk
  PeerDialog carrier = carrierPeer("hdr-trusted");
  auto invite = forwardedInvite(h, carrier, kCarrierPort);
  ASSERT_TRUE(invite);
  for (const char* name : {"P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID", "Diversion",
                           "History-Info", "Privacy"}) {
    EXPECT_TRUE(hasHeader(*invite, name)) << name;
  }
  for (const char* name : {"X-Evil", "Alert-Info", "Call-Info", "Authorization", "Proxy-Authorization"}) {
    EXPECT_FALSE(hasHeader(*invite, name)) << name;
  }
}

TEST(HeaderPolicy, TrustAndListsComeFromTheConfig) {
  auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
  config->trunks[0].trust_identity = false;
  config->headers.to_pbx.push_back("X-Evil");
  config->headers.to_public = {};  // nothing optional toward the public side
  EngineHarness h(config, nullptr, true);
  PeerDialog carrier = carrierPeer("hdr-config");
  auto invite = forwardedInvite(h, carrier, kCarrierPort);
  ASSERT_TRUE(invite);
  EXPECT_FALSE(hasHeader(*invite, "P-Asserted-Identity"));
  EXPECT_TRUE(hasHeader(*invite, "X-Evil"));
  // Toward the public side: the carrier is no longer trusted, so not even the PBX's identity
  // reaches it; everything else optional is gone too.
  std::string ok =
      withHeaders(makeResponse(*invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp),
                  "P-Asserted-Identity: <sip:100@pbx.internal>\r\nX-Asterisk-HangupCause: x\r\n"
                  "Warning: 399 pbx.internal \"debug\"\r\nSubject: s\r\n");
  h.inject(ok, pbxFlow());
  std::unique_ptr<sip::Message> relayed;
  while (auto m = h.next(kCarrierPort)) relayed = std::move(m);
  ASSERT_TRUE(relayed);
  EXPECT_EQ(relayed->statusCode(), 200);
  EXPECT_FALSE(hasHeader(*relayed, "P-Asserted-Identity"));
  EXPECT_FALSE(hasHeader(*relayed, "X-Asterisk-HangupCause"));
  EXPECT_FALSE(hasHeader(*relayed, "Warning"));
  EXPECT_FALSE(hasHeader(*relayed, "Subject"));
  EXPECT_EQ(relayed->raw().find("pbx.internal\""), std::string::npos);
}

// RFC 3325 §5: asserted identity stays in the trust domain. The PBX's identity reaches the
// trusted carrier, never an internet caller.
TEST(HeaderPolicy, IdentityOnlyBetweenTrustedPeers) {
  EngineHarness h;
  const std::string pai = "P-Asserted-Identity: <sip:201@pbx.internal>\r\nPrivacy: none\r\n";
  PeerDialog internet = callerPeer("hdr-to-internet");
  h.inject(makeInvite(internet, "z9hG4bK-ti"), internet.flow);
  h.next(kCallerPort);
  auto invite = h.next(kPbxPort);
  ASSERT_TRUE(invite);
  h.inject(withHeaders(makeResponse(*invite, 486, "Busy Here", "pbx-tag", ""), pai), pbxFlow());
  auto busy = h.next(kCallerPort);
  ASSERT_TRUE(busy);
  EXPECT_FALSE(hasHeader(*busy, "P-Asserted-Identity"));
  EXPECT_FALSE(hasHeader(*busy, "Privacy"));

  EngineHarness classified(nullptr, nullptr, true);  // the PBX and the carrier as the chain sees them
  PeerDialog pbx = pbxPeer("hdr-to-carrier");
  classified.inject(withHeaders(makeInvite(pbx, "z9hG4bK-tc"), pai), pbx.flow);
  classified.next(kPbxPort);  // 100
  auto out = classified.next(kCarrierPort);
  ASSERT_TRUE(out);
  EXPECT_TRUE(hasHeader(*out, "P-Asserted-Identity"));  // PBX to carrier: both trusted
}

// A bare CR ends a line for some parsers: a field or a display name holding one never crosses.
TEST(HeaderPolicy, ControlCharactersNeverCross) {
  EngineHarness h;
  PeerDialog caller = callerPeer("hdr-ctl");
  std::string invite = withHeaders(makeInvite(caller, "z9hG4bK-ctl"),
                                   "Subject: x\rP-Asserted-Identity: <sip:ceo@corp>\r\nDate: \x01\r\n"
                                   "Priority: normal\r\n");
  invite.replace(invite.find("From: \"Peer\""), 12, "From: \"a\rP-Asserted-Identity: <sip:ceo@corp>\"");
  h.inject(invite, caller.flow);
  h.next(kCallerPort);
  auto forwarded = h.next(kPbxPort);
  ASSERT_TRUE(forwarded);
  std::string_view head = forwarded->raw().substr(0, forwarded->raw().find("\r\n\r\n"));
  EXPECT_EQ(head.find('\r' + std::string("P-Asserted")), std::string_view::npos) << forwarded->raw();
  EXPECT_EQ(head.find("ceo@corp"), std::string_view::npos) << forwarded->raw();
  EXPECT_FALSE(hasHeader(*forwarded, "Subject"));
  EXPECT_FALSE(hasHeader(*forwarded, "Date"));
  EXPECT_TRUE(hasHeader(*forwarded, "Priority"));
  for (char c : head)
    EXPECT_TRUE(c == '\r' || c == '\n' || c == '\t' || static_cast<unsigned char>(c) >= 0x20);
}

// A call keeps the header policy it was admitted under; a reload applies to new calls.
TEST(HeaderPolicy, ACallKeepsItsPolicyAcrossAReload) {
  EngineHarness h;
  PeerDialog caller = callerPeer("hdr-reload");
  h.inject(makeInvite(caller, "z9hG4bK-hr"), caller.flow);
  h.next(kCallerPort);
  auto invite = h.next(kPbxPort);
  h.inject(makeResponse(*invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto ok = h.next(kCallerPort);
  ASSERT_TRUE(ok);
  caller.remote_tag = std::string(ok->toTag());
  h.inject(makeAck(caller, 1, "z9hG4bK-hr-ack"), caller.flow);
  drain(h, kPbxPort);

  auto reloaded = std::make_shared<config::Config>(*config::defaultConfig().value());
  reloaded->headers.to_pbx.clear();
  h.engine().applyConfig(reloaded);
  h.inject(withHeaders(makeRequest(caller, "INFO", "z9hG4bK-hr-info"), "Subject: still allowed\r\n"),
           caller.flow);
  auto info = h.next(kPbxPort);
  ASSERT_TRUE(info);
  EXPECT_TRUE(hasHeader(*info, "Subject"));

  PeerDialog next = callerPeer("hdr-reload-2");
  h.inject(withHeaders(makeInvite(next, "z9hG4bK-hr2"), "Subject: not any more\r\n"), next.flow);
  h.next(kCallerPort);
  auto second = h.next(kPbxPort);
  ASSERT_TRUE(second);
  EXPECT_FALSE(hasHeader(*second, "Subject"));
}

// A challenge from the far side cannot be answered across the B2BUA (credentials never
// cross): the caller gets a plain refusal, not the PBX's realm.
TEST(HeaderPolicy, FarSideChallengesBecomeForbidden) {
  EngineHarness h;
  PeerDialog caller = callerPeer("hdr-407");
  h.inject(makeInvite(caller, "z9hG4bK-407"), caller.flow);
  h.next(kCallerPort);
  auto invite = h.next(kPbxPort);
  ASSERT_TRUE(invite);
  h.inject(withHeaders(makeResponse(*invite, 407, "Proxy Authentication Required", "pbx-tag", ""),
                       "Proxy-Authenticate: Digest realm=\"pbx.internal\", nonce=\"abc\"\r\n"),
           pbxFlow());
  auto refused = h.next(kCallerPort);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->statusCode(), 403);
  EXPECT_FALSE(hasHeader(*refused, "Proxy-Authenticate"));
  EXPECT_EQ(refused->raw().find("pbx.internal"), std::string::npos);
}

// --- the media seam ------------------------------------------------------------------------

struct MediaLog {
  std::vector<dialog::BodyCrossing> crossings;
  int created = 0;
  int destroyed = 0;
  int refuse_status = 0;  // refuse every body with this status when non-zero
};

class MarkingMedia final : public dialog::CallMedia {
 public:
  explicit MarkingMedia(MediaLog& log) : log_(log) {}
  ~MarkingMedia() override { ++log_.destroyed; }
  dialog::BodyVerdict rewrite(const dialog::BodyCrossing& where, sip::Body in,
                              std::string& storage) override {
    log_.crossings.push_back(where);
    if (log_.refuse_status != 0) return {in, log_.refuse_status, "Not Acceptable Here"};
    storage = fmt::format("{}a=x-anchored:{}\r\n", in.bytes, log_.crossings.size());
    return {sip::Body{in.content_type, storage}, 0, {}};
  }

 private:
  MediaLog& log_;
};

class MarkingFactory final : public dialog::MediaFactory {
 public:
  explicit MarkingFactory(MediaLog& log) : log_(log) {}
  std::unique_ptr<dialog::CallMedia> create(const policy::RequestContext&) override {
    ++log_.created;
    return std::make_unique<MarkingMedia>(log_);
  }

 private:
  MediaLog& log_;
};

bool anchored(const sip::Message& m, std::size_t n) {
  return m.body().find(fmt::format("a=x-anchored:{}\r\n", n)) != std::string_view::npos;
}

TEST(MediaSeam, EveryOfferAndAnswerGoesThroughTheCallsMedia) {
  EngineHarness h;
  MediaLog log;
  MarkingFactory factory(log);
  h.engine().setMediaFactory(&factory);
  PeerDialog caller = callerPeer("media-1");
  h.inject(makeInvite(caller, "z9hG4bK-m1"), caller.flow);
  h.next(kCallerPort);
  auto invite = h.next(kPbxPort);
  ASSERT_TRUE(invite);
  EXPECT_TRUE(anchored(*invite, 1));
  EXPECT_NE(invite->find(sip::Hdr::ContentType), nullptr);
  // Early media in a reliable 183, then the answer in the 200.
  std::string reliable_183 =
      makeResponse(*invite, 183, "Session Progress", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp);
  reliable_183.insert(reliable_183.find("Content-Length:"), "Require: 100rel\r\nRSeq: 1\r\n");
  h.inject(reliable_183, pbxFlow());
  auto early = h.next(kCallerPort);
  ASSERT_TRUE(early);
  EXPECT_TRUE(anchored(*early, 2));
  std::string early_rseq(early->find(sip::Hdr::Rseq)->value);
  h.inject(makeResponse(*invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto ok = h.next(kCallerPort);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(anchored(*ok, 3));
  EXPECT_EQ(ok->find(sip::Hdr::ContentLength)->value, std::to_string(ok->body().size()));
  caller.remote_tag = std::string(ok->toTag());
  sip::NameAddr contact;
  ASSERT_TRUE(ok->firstContact(contact));
  caller.request_uri = std::string(contact.uri);
  h.inject(makeAck(caller, 1, "z9hG4bK-m1-ack"), caller.flow);
  ASSERT_TRUE(h.next(kPbxPort));  // no body: nothing for the media layer

  // A re-INVITE from the caller, its answer, and an UPDATE and PRACK with bodies.
  h.inject(makeRequest(caller, "INVITE", "z9hG4bK-m1-re", kDefaultSdp), caller.flow);
  h.next(kCallerPort);  // 100
  auto reinvite = h.next(kPbxPort);
  ASSERT_TRUE(reinvite);
  EXPECT_TRUE(anchored(*reinvite, 4));
  h.inject(makeResponse(*reinvite, 200, "OK", "", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto re_ok = h.next(kCallerPort);
  ASSERT_TRUE(re_ok);
  EXPECT_TRUE(anchored(*re_ok, 5));
  h.inject(makeAck(caller, caller.cseq, "z9hG4bK-m1-re-ack"), caller.flow);
  ASSERT_TRUE(h.next(kPbxPort));
  h.inject(makeRequest(caller, "UPDATE", "z9hG4bK-m1-up", kDefaultSdp), caller.flow);
  auto update = h.next(kPbxPort);
  ASSERT_TRUE(update);
  EXPECT_TRUE(anchored(*update, 6));
  h.inject(makeResponse(*update, 200, "OK", "", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto update_ok = h.next(kCallerPort);
  ASSERT_TRUE(update_ok);
  EXPECT_TRUE(anchored(*update_ok, 7));
  // The PRACK for the 183 (it may come after the 2xx) carries an offer too.
  std::string prack_bytes = makeRequest(caller, "PRACK", "z9hG4bK-m1-pr", kDefaultSdp);
  prack_bytes.insert(prack_bytes.find("Content-Length:"), "RAck: " + early_rseq + " 1 INVITE\r\n");
  h.inject(prack_bytes, caller.flow);
  auto prack = h.next(kPbxPort);
  ASSERT_TRUE(prack);
  EXPECT_TRUE(anchored(*prack, 8));
  // INFO bodies are not session descriptions: they cross untouched.
  h.inject(makeRequest(caller, "INFO", "z9hG4bK-m1-info", "Signal=5\r\n"), caller.flow);
  auto info = h.next(kPbxPort);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->body(), "Signal=5\r\n");

  ASSERT_EQ(log.crossings.size(), 8u);
  EXPECT_EQ(log.created, 1);
  EXPECT_EQ(log.crossings[0].to_leg, 1);
  EXPECT_TRUE(log.crossings[0].initial);
  EXPECT_EQ(log.crossings[1].status, 183);
  EXPECT_EQ(log.crossings[1].to_leg, 0);
  EXPECT_EQ(log.crossings[2].status, 200);
  EXPECT_EQ(log.crossings[3].method, sip::Method::Invite);
  EXPECT_FALSE(log.crossings[3].initial);
  EXPECT_EQ(log.crossings[5].method, sip::Method::Update);
  EXPECT_EQ(log.crossings[7].method, sip::Method::Prack);
  EXPECT_EQ(log.destroyed, 0);
  h.inject(makeRequest(caller, "BYE", "z9hG4bK-m1-bye"), caller.flow);
  auto bye = h.next(kPbxPort);
  while (bye && bye->method() != sip::Method::Bye) bye = h.next(kPbxPort);
  ASSERT_TRUE(bye);
  h.inject(makeResponse(*bye, 200, "OK", "", ""), pbxFlow());
  EXPECT_EQ(h.engine().activeCalls(), 0u);
  EXPECT_EQ(log.destroyed, 1);  // media resources go with the call
}

TEST(MediaSeam, LateOfferAnswerInTheAck) {
  EngineHarness h;
  MediaLog log;
  MarkingFactory factory(log);
  h.engine().setMediaFactory(&factory);
  PeerDialog caller = callerPeer("media-late");
  h.inject(makeInvite(caller, "z9hG4bK-ml", ""), caller.flow);  // no SDP: late offer
  h.next(kCallerPort);
  auto invite = h.next(kPbxPort);
  ASSERT_TRUE(invite);
  h.inject(makeResponse(*invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto ok = h.next(kCallerPort);
  ASSERT_TRUE(ok);
  caller.remote_tag = std::string(ok->toTag());
  std::string ack = makeAck(caller, 1, "z9hG4bK-ml-ack");
  ack.replace(ack.find("Content-Length: 0\r\n\r\n"), 21,
              fmt::format("Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}", kDefaultSdp.size(),
                          kDefaultSdp));
  h.inject(ack, caller.flow);
  auto b_ack = h.next(kPbxPort);
  ASSERT_TRUE(b_ack);
  EXPECT_EQ(b_ack->method(), sip::Method::Ack);
  ASSERT_FALSE(log.crossings.empty());
  EXPECT_EQ(log.crossings.back().method, sip::Method::Ack);
  EXPECT_TRUE(anchored(*b_ack, log.crossings.size()));
}

TEST(MediaSeam, ARefusedOfferIsAnsweredAndNeverForwarded) {
  EngineHarness h;
  MediaLog log;
  log.refuse_status = 488;
  MarkingFactory factory(log);
  h.engine().setMediaFactory(&factory);
  PeerDialog caller = callerPeer("media-refused");
  h.inject(makeInvite(caller, "z9hG4bK-mr"), caller.flow);
  std::unique_ptr<sip::Message> last;
  while (auto m = h.next(kCallerPort)) last = std::move(m);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->statusCode(), 488);
  EXPECT_EQ(h.pending(kPbxPort), 0u);
  EXPECT_EQ(h.engine().activeCalls(), 0u);
  EXPECT_EQ(log.destroyed, 1);
  EXPECT_EQ(h.counter(stats::Counter::CallsFailed), 1u);
}

// --- bounds on per-call state --------------------------------------------------------------

TEST(CallBounds, ForkStormIsBounded) {
  EngineHarness h;
  PeerDialog caller = callerPeer("forks");
  h.inject(makeInvite(caller, "z9hG4bK-forks"), caller.flow);
  h.next(kCallerPort);
  auto invite = h.next(kPbxPort);
  ASSERT_TRUE(invite);
  const std::size_t forks = dialog::Call::kMaxEarlyDialogs + 4;
  for (std::size_t i = 0; i < forks; ++i)
    h.inject(makeResponse(*invite, 180, "Ringing", fmt::format("fork-{}", i), "sip:pbx@127.0.0.1:5080"),
             pbxFlow());
  EXPECT_EQ(drain(h, kCallerPort), dialog::Call::kMaxEarlyDialogs);
  EXPECT_EQ(h.counter(stats::Counter::EarlyDialogsRefused), 4u);
  // A known fork still gets through, and a fork beyond the bound that answers is hung up.
  h.inject(makeResponse(*invite, 180, "Ringing", "fork-0", "sip:pbx@127.0.0.1:5080"), pbxFlow());
  EXPECT_EQ(drain(h, kCallerPort), 1u);
  h.inject(makeResponse(*invite, 200, "OK", fmt::format("fork-{}", forks - 1), "sip:pbx@127.0.0.1:5080",
                        kDefaultSdp),
           pbxFlow());
  EXPECT_EQ(drain(h, kCallerPort), 0u);
  auto ack = h.next(kPbxPort);
  auto bye = h.next(kPbxPort);
  ASSERT_TRUE(ack && bye);
  EXPECT_EQ(bye->method(), sip::Method::Bye);
}

TEST(CallBounds, RequestsInFlightAreBounded) {
  EngineHarness h;
  PeerDialog caller = callerPeer("inflight");
  h.inject(makeInvite(caller, "z9hG4bK-if"), caller.flow);
  h.next(kCallerPort);
  auto invite = h.next(kPbxPort);
  h.inject(makeResponse(*invite, 200, "OK", "pbx-tag", "sip:pbx@127.0.0.1:5080", kDefaultSdp), pbxFlow());
  auto ok = h.next(kCallerPort);
  ASSERT_TRUE(ok);
  caller.remote_tag = std::string(ok->toTag());
  h.inject(makeAck(caller, 1, "z9hG4bK-if-ack"), caller.flow);
  drain(h, kPbxPort);
  for (std::size_t i = 0; i <= dialog::Call::kMaxRequestsInFlight; ++i)
    h.inject(makeRequest(caller, "INFO", fmt::format("z9hG4bK-if-{}", i)), caller.flow);
  EXPECT_EQ(drain(h, kPbxPort), dialog::Call::kMaxRequestsInFlight);
  auto refused = h.next(kCallerPort);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->statusCode(), 503);
  EXPECT_EQ(h.counter(stats::Counter::RequestsOverCallLimit), 1u);
}

// --- trunks --------------------------------------------------------------------------------

// Calls from the PBX go to the trunk whose prefix matches the dialled number best (visual
// separators ignored), else to the first trunk; a trunk's answers may come from any address
// in its ranges.
TEST(Trunks, PbxCallsRouteByLongestPrefix) {
  auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
  config->trunks = {
      config::Trunk{"default",
                    {"127.0.0.1"},
                    "127.0.0.1",
                    5090,
                    config::TransportKind::Udp,
                    {},
                    true,
                    0,
                    0,
                    0,
                    {},
                    {},
                    {},
                    {}},
      config::Trunk{"uk",
                    {"127.0.0.4"},
                    "127.0.0.4",
                    5094,
                    config::TransportKind::Udp,
                    {"+44"},
                    true,
                    0,
                    0,
                    0,
                    {},
                    {},
                    {},
                    {}},
      config::Trunk{"london",
                    {"127.0.1.0/24"},
                    "127.0.1.5",
                    5095,
                    config::TransportKind::Udp,
                    {"+4420"},
                    true,
                    0,
                    0,
                    0,
                    {},
                    {},
                    {},
                    {}},
  };
  EngineHarness h(config);
  auto dial = [&h](const std::string& number, const std::string& id) {
    PeerDialog pbx = pbxPeer(id);
    pbx.request_uri = "sip:" + number + "@127.0.0.1:5070";
    h.inject(makeInvite(pbx, "z9hG4bK-" + id), pbx.flow);
    h.next(kPbxPort);  // 100
  };
  dial("+44-20-7946-0000", "route-london");
  auto london = h.next(5095);
  ASSERT_TRUE(london);
  EXPECT_EQ(london->requestUri().substr(0, 18), "sip:+44-20-7946-00");
  dial("+441632960000", "route-uk");
  EXPECT_TRUE(h.next(5094));
  dial("+12125550100", "route-default");
  EXPECT_TRUE(h.next(5090));
  dial("4420", "route-no-plus");  // a prefix is matched as written
  EXPECT_TRUE(h.next(5090));
  // The London trunk answers from another address in its /24: accepted.
  h.inject(makeResponse(*london, 180, "Ringing", "lon", "sip:x@127.0.1.9:5095"),
           udpFlow(net::Side::Public, "127.0.1.9", 5095));
  bool ringing = false;
  while (auto m = h.next(kPbxPort)) ringing = ringing || m->statusCode() == 180;
  EXPECT_TRUE(ringing);
  EXPECT_EQ(h.counter(stats::Counter::DroppedForeignResponses), 0u);
}

// --- global call limit ---------------------------------------------------------------------

TEST(Admission, MaxCallsIsTakenFromTheSharedCounters) {
  auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
  config->max_calls = 1;
  policy::SharedCounters shared;
  EngineHarness a(config, &shared);
  EngineHarness b(config, &shared);  // another worker, same daemon
  PeerDialog first = callerPeer("adm-1");
  a.inject(makeInvite(first, "z9hG4bK-adm1"), first.flow);
  EXPECT_EQ(a.engine().activeCalls(), 1u);
  PeerDialog second = callerPeer("adm-2");
  b.inject(makeInvite(second, "z9hG4bK-adm2"), second.flow);
  auto refused = b.next(kCallerPort);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->statusCode(), 503);
  EXPECT_EQ(b.engine().activeCalls(), 0u);
}

// --- pending policy decisions --------------------------------------------------------------

// A request filter whose first answer is Pending; the test decides later.
class DeferringFilter final : public policy::RequestFilter {
 public:
  policy::Decision check(policy::RequestContext& context) override {
    ++checks;
    last_resume_at = context.resume_at;
    if (context.resume_at == 0) {
      context.resume_at = 1;
      return policy::Decision::pending(next_token++);
    }
    return second_answer;
  }
  void bindPendingSink(policy::PendingSink* s) override { sink = s; }
  void cancelPending(std::uint64_t token) override { cancelled.push_back(token); }
  policy::PendingSink* sink = nullptr;
  policy::Decision second_answer;
  std::uint64_t next_token = 100;
  std::vector<std::uint64_t> cancelled;
  int checks = 0;
  int last_resume_at = -1;
};

class PendingTest : public ::testing::Test {
 protected:
  PendingTest() { h_.engine().setFilter(&filter_); }
  DeferringFilter filter_;  // outlives the engine: calls still up at the end report to it
  EngineHarness h_;
  PeerDialog caller_ = callerPeer("pending-1");
};

TEST_F(PendingTest, HeldThenLetThrough) {
  ASSERT_EQ(filter_.sink, &h_.engine());
  h_.inject(makeInvite(caller_, "z9hG4bK-p1"), caller_.flow);
  auto trying = h_.next(kCallerPort);
  ASSERT_TRUE(trying);
  EXPECT_EQ(trying->statusCode(), 100);  // the held INVITE's transaction stops Timer A
  EXPECT_EQ(h_.pending(kPbxPort), 0u);
  EXPECT_EQ(h_.engine().pendingCount(), 1u);
  h_.inject(makeInvite(caller_, "z9hG4bK-p1"), caller_.flow);  // retransmission: absorbed
  EXPECT_EQ(filter_.checks, 1);
  drain(h_, kCallerPort);
  filter_.sink->resume(100, policy::Decision::proceed());
  EXPECT_EQ(filter_.checks, 2);
  EXPECT_EQ(filter_.last_resume_at, 1);  // the chain goes on after the stage that held it
  auto invite = h_.next(kPbxPort);
  ASSERT_TRUE(invite);
  EXPECT_EQ(invite->method(), sip::Method::Invite);
  EXPECT_EQ(h_.engine().pendingCount(), 0u);
  EXPECT_EQ(h_.counter(stats::Counter::PolicyPending), 1u);
  EXPECT_TRUE(filter_.cancelled.empty());
}

TEST_F(PendingTest, HeldThenRejectedOrChallenged) {
  filter_.second_answer =
      policy::Decision::challenge(407, "Proxy-Authenticate: Digest realm=\"palisade\"\r\n");
  h_.inject(makeInvite(caller_, "z9hG4bK-p2"), caller_.flow);
  drain(h_, kCallerPort);
  filter_.sink->resume(100, policy::Decision::proceed());
  auto challenge = h_.next(kCallerPort);
  ASSERT_TRUE(challenge);
  EXPECT_EQ(challenge->statusCode(), 407);
  EXPECT_TRUE(hasHeader(*challenge, "Proxy-Authenticate"));
  EXPECT_FALSE(challenge->toTag().empty());
  EXPECT_EQ(h_.counter(stats::Counter::PolicyChallenged), 1u);

  PeerDialog other = callerPeer("pending-2");
  h_.inject(makeInvite(other, "z9hG4bK-p3"), other.flow);
  drain(h_, kCallerPort);
  filter_.sink->resume(101, policy::Decision::reject(403, "Forbidden", "Reason: SIP;cause=403\r\n"));
  auto rejected = h_.next(kCallerPort);
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->statusCode(), 403);
  EXPECT_TRUE(hasHeader(*rejected, "Reason"));
  EXPECT_EQ(h_.pending(kPbxPort), 0u);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
}

TEST_F(PendingTest, NoDecisionInTimeIsA503AndTheStageForgetsIt) {
  h_.inject(makeInvite(caller_, "z9hG4bK-p4"), caller_.flow);
  drain(h_, kCallerPort);
  h_.advance(dialog::Engine::kPendingTimeoutMs + 20);
  auto refused = h_.next(kCallerPort);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->statusCode(), 503);
  EXPECT_EQ(filter_.cancelled, std::vector<std::uint64_t>{100});
  EXPECT_EQ(h_.counter(stats::Counter::PolicyPendingExpired), 1u);
  filter_.sink->resume(100, policy::Decision::proceed());  // too late: ignored
  EXPECT_EQ(h_.pending(kPbxPort), 0u);
}

TEST_F(PendingTest, CancelWhileHeldAndDrop) {
  h_.inject(makeInvite(caller_, "z9hG4bK-p5"), caller_.flow);
  drain(h_, kCallerPort);
  h_.inject(makeCancel(caller_, 1, "z9hG4bK-p5"), caller_.flow);
  bool got_487 = false;
  while (auto m = h_.next(kCallerPort)) got_487 = got_487 || m->statusCode() == 487;
  EXPECT_TRUE(got_487);
  EXPECT_EQ(filter_.cancelled, std::vector<std::uint64_t>{100});
  EXPECT_EQ(h_.engine().pendingCount(), 0u);

  PeerDialog dropped = callerPeer("pending-3");
  h_.inject(makeInvite(dropped, "z9hG4bK-p6"), dropped.flow);
  drain(h_, kCallerPort);
  filter_.sink->resume(101, policy::Decision::drop());
  h_.advance(64 * 500 + 100);
  while (auto m = h_.next(kCallerPort)) EXPECT_NE(m->callId(), "pending-3");  // not a word more
  EXPECT_EQ(h_.counter(stats::Counter::PolicyDropped), 1u);
  EXPECT_EQ(h_.engine().transactionCount(), 0u);
}

}  // namespace
}  // namespace palisade
