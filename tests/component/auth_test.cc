// Digest authentication of users through one engine behind the policy chain: challenges,
// answers, the identity Palisade asserts, and what an attacker learns (nothing).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <regex>

#include "policy/auth/digest.h"
#include "tests/support/engine_harness.h"

namespace palisade {
namespace {

using namespace palisade::testing;  // NOLINT: test-local brevity
using policy::auth::Algorithm;

constexpr std::uint16_t kCallerPort = 5061;
constexpr std::uint16_t kPbxPort = 5080;
constexpr const char* kPassword = "Tr0ub4dor&3-Horse!Staple";

std::shared_ptr<config::Config> usersConfig(std::uint32_t ban_threshold = 1000) {
  auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
  config->ban.threshold = ban_threshold;
  config::User alice;
  alice.name = "2001";
  alice.password = kPassword;
  alice.number = "+12125550101";
  config::User fenced;
  fenced.name = "2002";
  fenced.password = kPassword;
  fenced.sources = {"127.0.0.9/32"};
  config->users = {alice, fenced};
  return config;
}

struct Challenge {
  int status = 0;
  std::vector<std::string> headers;  // the WWW-/Proxy-Authenticate values, in order
  std::string nonce;
};

Challenge challengeOf(const sip::Message& m) {
  Challenge c;
  c.status = m.statusCode();
  for (const auto& h : m.headers()) {
    if (sip::iequals(h.name, "Proxy-Authenticate") || sip::iequals(h.name, "WWW-Authenticate"))
      c.headers.emplace_back(h.value);
  }
  std::smatch match;
  if (!c.headers.empty() && std::regex_search(c.headers[0], match, std::regex("nonce=\"([^\"]+)\"")))
    c.nonce = match[1];
  return c;
}

// The challenge with its nonce blanked: what must be identical for every kind of failure.
std::vector<std::string> shapeOf(const Challenge& c) {
  std::vector<std::string> out;
  for (const auto& h : c.headers)
    out.push_back(std::regex_replace(h, std::regex("nonce=\"[^\"]+\""), "nonce=\"\""));
  return out;
}

class AuthTest : public ::testing::Test {
 protected:
  AuthTest() : h_(usersConfig(), nullptr, true) {}

  // Sends an INVITE (with `authorization`, if any) and returns the first final answer.
  std::unique_ptr<sip::Message> invite(PeerDialog& caller, const std::string& branch,
                                       const std::string& authorization = {}) {
    std::string bytes = makeInvite(caller, branch);
    if (!authorization.empty()) bytes = withHeader(bytes, "Proxy-Authorization: " + authorization + "\r\n");
    h_.inject(bytes, caller.flow);
    while (auto m = h_.next(caller.port)) {
      if (m->statusCode() >= 200) return m;
    }
    return nullptr;
  }

  EngineHarness h_;
};

TEST_F(AuthTest, AUserIsChallengedThenLetThroughWithItsAssertedIdentity) {
  PeerDialog caller = callerPeer("auth-1");
  caller.request_uri = "sip:1000@127.0.0.1:5060";
  auto first = invite(caller, "z9hG4bK-a1");
  ASSERT_TRUE(first);
  Challenge c = challengeOf(*first);
  EXPECT_EQ(c.status, 407);
  ASSERT_EQ(c.headers.size(), 2u);  // strongest first (RFC 8760 §2.4)
  EXPECT_NE(c.headers[0].find("algorithm=SHA-256"), std::string::npos);
  EXPECT_NE(c.headers[1].find("algorithm=MD5"), std::string::npos);
  EXPECT_NE(c.headers[0].find("qop=\"auth\""), std::string::npos);
  EXPECT_NE(c.headers[0].find("realm=\"palisade\""), std::string::npos);
  EXPECT_EQ(h_.pending(kPbxPort), 0u);

  caller.cseq = 2;
  std::string auth = digestCredentials("2001", kPassword, c.nonce, caller.request_uri, "INVITE");
  std::string bytes = withHeader(makeInvite(caller, "z9hG4bK-a2"),
                                 "Proxy-Authorization: " + auth + "\r\nP-Asserted-Identity: <sip:911@x>\r\n");
  h_.inject(bytes, caller.flow);
  auto forwarded = h_.next(kPbxPort);
  ASSERT_TRUE(forwarded);
  EXPECT_EQ(forwarded->method(), sip::Method::Invite);
  std::vector<std::string_view> pai;
  for (const auto& hd : forwarded->headers()) {
    if (sip::iequals(hd.name, "P-Asserted-Identity")) pai.push_back(hd.value);
    EXPECT_FALSE(sip::iequals(hd.name, "Proxy-Authorization")) << "credentials never reach the PBX";
  }
  ASSERT_EQ(pai.size(), 1u) << forwarded->raw();  // ours, not the caller's
  EXPECT_EQ(pai[0], "<sip:+12125550101@127.0.0.1>");
  EXPECT_NE(forwarded->from().uri.find("sip:+12125550101@"), std::string_view::npos);
  EXPECT_EQ(h_.counter(stats::Counter::PolicyChallenged), 1u);
}

// An unknown user, a wrong password and a known user from a disallowed source get the same
// challenge (only the nonce differs), so svwar and svcrack learn nothing.
TEST_F(AuthTest, EveryFailureLooksTheSame) {
  PeerDialog caller = callerPeer("enum-1");
  auto first = invite(caller, "z9hG4bK-e0");
  ASSERT_TRUE(first);
  Challenge reference = challengeOf(*first);
  std::string uri = caller.request_uri;
  struct Case {
    const char* what;
    std::string authorization;
  };
  std::vector<Case> cases = {
      {"unknown user", digestCredentials("9999", kPassword, reference.nonce, uri, "INVITE")},
      {"wrong password", digestCredentials("2001", "Wr0ng-Password!123", reference.nonce, uri, "INVITE")},
      {"disallowed source", digestCredentials("2002", kPassword, reference.nonce, uri, "INVITE")},
      {"other URI", digestCredentials("2001", kPassword, reference.nonce, uri, "INVITE", Algorithm::Sha256,
                                      "00000001", "sip:other@127.0.0.1")},
      {"made-up nonce", digestCredentials("2001", kPassword, std::string(64, 'a'), uri, "INVITE")},
      {"malformed", "Digest username=\"2001\", realm=\"palisade\""},
  };
  int n = 0;
  for (const Case& c : cases) {
    caller.cseq = static_cast<std::uint32_t>(10 + n);
    auto answer = invite(caller, fmt::format("z9hG4bK-e{}", ++n), c.authorization);
    ASSERT_TRUE(answer) << c.what;
    Challenge got = challengeOf(*answer);
    EXPECT_EQ(got.status, reference.status) << c.what;
    EXPECT_EQ(shapeOf(got), shapeOf(reference)) << c.what;
    EXPECT_NE(got.nonce, reference.nonce) << c.what;
    EXPECT_EQ(answer->headers().size(), first->headers().size()) << c.what;
    EXPECT_EQ(answer->body(), first->body()) << c.what;
  }
  EXPECT_EQ(h_.pending(kPbxPort), 0u);
  EXPECT_EQ(h_.engine().activeCalls(), 0u);
}

TEST_F(AuthTest, ReplayedAndStaleNonces) {
  PeerDialog caller = callerPeer("replay-1");
  Challenge c = challengeOf(*invite(caller, "z9hG4bK-r0"));
  caller.cseq = 2;
  std::string auth = digestCredentials("2001", kPassword, c.nonce, caller.request_uri, "INVITE");
  h_.inject(withHeader(makeInvite(caller, "z9hG4bK-r1"), "Proxy-Authorization: " + auth + "\r\n"),
            caller.flow);
  ASSERT_TRUE(h_.next(kPbxPort));
  // The same credentials (same nonce count) on another INVITE: a replay.
  PeerDialog again = callerPeer("replay-2");
  auto replayed = invite(again, "z9hG4bK-r2", auth);
  ASSERT_TRUE(replayed);
  EXPECT_EQ(replayed->statusCode(), 407);
  EXPECT_EQ(h_.pending(kPbxPort), 0u);
  // The next count on the same nonce is fine.
  PeerDialog next = callerPeer("replay-3");
  h_.inject(withHeader(makeInvite(next, "z9hG4bK-r3"),
                       "Proxy-Authorization: " +
                           digestCredentials("2001", kPassword, c.nonce, next.request_uri, "INVITE",
                                             Algorithm::Sha256, "00000002") +
                           "\r\n"),
            next.flow);
  EXPECT_TRUE(h_.next(kPbxPort));
  // After the nonce's lifetime, the right password draws stale=true (RFC 7616 §3.3).
  h_.clock().advance(301'000);
  PeerDialog late = callerPeer("replay-4");
  auto stale = invite(late, "z9hG4bK-r4",
                      digestCredentials("2001", kPassword, c.nonce, late.request_uri, "INVITE",
                                        Algorithm::Sha256, "00000003"));
  ASSERT_TRUE(stale);
  Challenge s = challengeOf(*stale);
  EXPECT_EQ(s.status, 407);
  ASSERT_FALSE(s.headers.empty());
  EXPECT_NE(s.headers[0].find("stale=true"), std::string::npos);
  // The wrong password with an old nonce is told nothing of the kind.
  PeerDialog wrong = callerPeer("replay-5");
  auto plain = invite(wrong, "z9hG4bK-r5",
                      digestCredentials("2001", "Wr0ng-Password!123", c.nonce, wrong.request_uri, "INVITE"));
  ASSERT_TRUE(plain);
  EXPECT_EQ(challengeOf(*plain).headers[0].find("stale"), std::string::npos);
}

TEST_F(AuthTest, Md5AndRegisterAndWhatIsNeverChallenged) {
  PeerDialog caller = callerPeer("md5-1");
  Challenge c = challengeOf(*invite(caller, "z9hG4bK-m0"));
  caller.cseq = 2;
  h_.inject(withHeader(makeInvite(caller, "z9hG4bK-m1"),
                       "Proxy-Authorization: " +
                           digestCredentials("2001", kPassword, c.nonce, caller.request_uri, "INVITE",
                                             Algorithm::Md5) +
                           "\r\n"),
            caller.flow);
  EXPECT_TRUE(h_.next(kPbxPort));  // MD5 was offered too

  // REGISTER is challenged with 401 and WWW-Authenticate (RFC 3261 §22.2).
  while (h_.next(kCallerPort)) {
  }
  PeerDialog reg = callerPeer("reg-1");
  std::string bytes = makeInvite(reg, "z9hG4bK-reg", "");
  bytes.replace(0, 6, "REGISTER");
  bytes.replace(bytes.find("CSeq: 1 INVITE"), 14, "CSeq: 1 REGISTER");
  h_.inject(bytes, reg.flow);
  auto challenge = h_.next(kCallerPort);
  ASSERT_TRUE(challenge);
  EXPECT_EQ(challenge->statusCode(), 401);
  EXPECT_TRUE(challengeOf(*challenge).headers.size() == 2);

  // An OPTIONS probe from the internet gets no answer at all (svmap finds nothing).
  PeerDialog probe = callerPeer("probe-1");
  std::string options = makeInvite(probe, "z9hG4bK-opt", "");
  options.replace(0, 6, "OPTIONS");
  options.replace(options.find("CSeq: 1 INVITE"), 14, "CSeq: 1 OPTIONS");
  h_.inject(options, probe.flow);
  EXPECT_EQ(h_.pending(kCallerPort), 0u);
  EXPECT_GE(h_.counter(stats::Counter::PolicyDropped), 1u);

  // The carrier trunk is never challenged.
  PeerDialog carrier = carrierPeer("trunk-1");
  h_.inject(makeInvite(carrier, "z9hG4bK-t1"), carrier.flow);
  auto to_pbx = h_.next(kPbxPort);
  ASSERT_TRUE(to_pbx);
  EXPECT_EQ(to_pbx->method(), sip::Method::Invite);
}

// Brute force: `threshold` failures in the window ban the source, whose packets are then dropped
// before parsing; per user name too (a distributed guess at one password); a ban repeats for
// twice as long; trunks are never banned.
TEST(Bans, FailedAuthenticationsBanTheSource) {
  EngineHarness h(usersConfig(5), nullptr, true);
  PeerDialog caller = callerPeer("brute-1");
  auto challenge = [&h](PeerDialog& p, const std::string& branch, const std::string& auth) {
    std::string bytes = makeInvite(p, branch);
    if (!auth.empty()) bytes = withHeader(bytes, "Proxy-Authorization: " + auth + "\r\n");
    h.inject(bytes, p.flow);
    std::unique_ptr<sip::Message> last;
    while (auto m = h.next(p.port)) last = std::move(m);
    return last;
  };
  auto first = challenge(caller, "z9hG4bK-b0", "");
  ASSERT_TRUE(first);
  std::string nonce = challengeOf(*first).nonce;
  for (int i = 1; i <= 5; ++i) {
    caller.cseq = static_cast<std::uint32_t>(i + 1);
    auto answer = challenge(caller, fmt::format("z9hG4bK-b{}", i),
                            digestCredentials("2001", fmt::format("Guess-{}-Password!x", i), nonce,
                                              caller.request_uri, "INVITE"));
    ASSERT_TRUE(answer) << i;  // each guess is answered like any failure, up to the threshold
    EXPECT_EQ(answer->statusCode(), 407);
  }
  EXPECT_EQ(h.counter(stats::Counter::Bans), 1u);
  EXPECT_EQ(h.counter(stats::Counter::AuthFailedPassword), 5u);
  EXPECT_TRUE(h.store().banned(caller.flow.remote.address, h.clock().now()));
  // Banned: nothing is parsed or answered, not even the right password.
  caller.cseq = 20;
  EXPECT_FALSE(challenge(caller, "z9hG4bK-b-right",
                         digestCredentials("2001", kPassword, nonce, caller.request_uri, "INVITE")));
  EXPECT_GE(h.counter(stats::Counter::DroppedBanned), 1u);
  EXPECT_EQ(h.pending(kPbxPort), 0u);
  // The ban ends after its duration; the next one lasts twice as long.
  h.clock().advance(601'000);
  EXPECT_FALSE(h.store().banned(caller.flow.remote.address, h.clock().now()));
  auto again = challenge(caller, "z9hG4bK-b-again", "");
  ASSERT_TRUE(again);
  nonce = challengeOf(*again).nonce;
  for (int i = 0; i < 5; ++i) {
    caller.cseq = static_cast<std::uint32_t>(30 + i);
    challenge(caller, fmt::format("z9hG4bK-c{}", i),
              digestCredentials("9999", kPassword, nonce, caller.request_uri, "INVITE"));
  }
  auto bans = h.store().bans(h.clock().now());
  ASSERT_EQ(bans.size(), 1u);
  EXPECT_EQ(bans[0].strikes, 2u);
  EXPECT_EQ(bans[0].until - h.clock().now(), 1'200'000);
  // The carrier trunk is never challenged, so never banned, whatever it sends.
  PeerDialog carrier = carrierPeer("trunk-brute");
  h.inject(makeInvite(carrier, "z9hG4bK-tb"), carrier.flow);
  EXPECT_TRUE(h.next(kPbxPort));
}

TEST(Bans, OneUserNameGuessedFromManySources) {
  EngineHarness h(usersConfig(3), nullptr, true);
  const char* sources[] = {"127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"};
  int i = 0;
  for (const char* address : sources) {
    PeerDialog p = callerPeer(fmt::format("spread-{}", i));
    p.flow = udpFlow(net::Side::Public, address, 5061);
    h.inject(makeInvite(p, fmt::format("z9hG4bK-s{}", i)), p.flow);
    auto c = h.next(5061);
    ASSERT_TRUE(c) << address;
    p.cseq = 2;
    h.inject(withHeader(makeInvite(p, fmt::format("z9hG4bK-s{}b", i)),
                        "Proxy-Authorization: " +
                            digestCredentials("2001", "Wr0ng-Password!123", challengeOf(*c).nonce,
                                              p.request_uri, "INVITE") +
                            "\r\n"),
             p.flow);
    while (h.next(5061)) {
    }
    ++i;
  }
  // One failure per source, but three for the one user name: the sources from the third on
  // are banned.
  EXPECT_FALSE(h.store().banned(boost::asio::ip::make_address("127.0.0.21"), h.clock().now()));
  EXPECT_TRUE(h.store().banned(boost::asio::ip::make_address("127.0.0.23"), h.clock().now()));
  EXPECT_TRUE(h.store().banned(boost::asio::ip::make_address("127.0.0.24"), h.clock().now()));
}

// With no users configured the internet is dropped before parsing: no answer to anything.
TEST(DefaultDeny, WithoutUsersTheInternetGetsNothing) {
  EngineHarness h(nullptr, nullptr, true);
  PeerDialog caller = callerPeer("deny-1");
  h.inject(makeInvite(caller, "z9hG4bK-d1"), caller.flow);
  EXPECT_EQ(h.pending(kCallerPort), 0u);
  EXPECT_EQ(h.pending(kPbxPort), 0u);
  EXPECT_EQ(h.counter(stats::Counter::DroppedUntrusted), 1u);
  PeerDialog carrier = carrierPeer("deny-2");
  h.inject(makeInvite(carrier, "z9hG4bK-d2"), carrier.flow);
  EXPECT_TRUE(h.next(kPbxPort));  // the trunk still calls in
  // No product token to fingerprint in what Palisade sends.
  for (const auto& packet : h.network().sent) {
    EXPECT_EQ(packet.bytes.find("\r\nServer:"), std::string::npos);
    EXPECT_EQ(packet.bytes.find("\r\nUser-Agent:"), std::string::npos);
  }
}

}  // namespace
}  // namespace palisade
