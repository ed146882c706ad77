// Palisade as its users' registrar, through one engine behind the policy chain: bindings made,
// refreshed and removed by authenticated REGISTERs (RFC 3261 §10.3), calls from the PBX routed
// to them, keep-alives, and what a reload does to them.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <regex>

#include "policy/auth/digest.h"
#include "tests/support/engine_harness.h"

namespace palisade {
namespace {

using namespace palisade::testing;  // NOLINT: test-local brevity
using policy::auth::Algorithm;

constexpr std::uint16_t kPhonePort = 5061;
constexpr std::uint16_t kPbxPort = 5080;
constexpr std::uint16_t kCarrierPort = 5090;
constexpr const char* kPassword = "Tr0ub4dor&3-Horse!Staple";

std::shared_ptr<config::Config> usersConfig() {
  auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
  config->ban.threshold = 1000;
  config::User alice;
  alice.name = "2001";
  alice.password = kPassword;
  config::User bob;
  bob.name = "2002";
  bob.password = kPassword;
  config->users = {alice, bob};
  return config;
}

net::Flow phoneFlow(const char* host = "127.0.0.2", std::uint16_t port = kPhonePort) {
  net::Flow flow;
  flow.side = net::Side::Public;
  flow.transport = net::Transport::Udp;
  boost::system::error_code ec;
  flow.remote.address = boost::asio::ip::make_address(host, ec);
  flow.remote.port = port;
  return flow;
}

std::string nonceOf(const sip::Message& challenge) {
  for (const auto& h : challenge.headers()) {
    if (!sip::iequals(h.name, "WWW-Authenticate") && !sip::iequals(h.name, "Proxy-Authenticate")) continue;
    std::smatch match;
    std::string value(h.value);
    if (std::regex_search(value, match, std::regex("nonce=\"([^\"]+)\""))) return match[1];
  }
  return {};
}

std::vector<std::string> contactsOf(const sip::Message& m) {
  std::vector<std::string> out;
  for (const auto& h : m.headers()) {
    if (h.id == sip::Hdr::Contact) out.emplace_back(h.value);
  }
  return out;
}

std::string headerOf(const sip::Message& m, std::string_view name) {
  for (const auto& h : m.headers()) {
    if (sip::iequals(h.name, name)) return std::string(h.value);
  }
  return {};
}

class RegistrarTest : public ::testing::Test {
 protected:
  RegistrarTest() : h_(usersConfig(), nullptr, true) {}

  // One REGISTER exchange as a phone does it: unauthenticated, then again with credentials
  // for the challenge's nonce. Returns the final answer to the second one. `lines` are the
  // Contact (and Expires) header lines.
  std::unique_ptr<sip::Message> registerAs(const std::string& user, const std::string& lines,
                                           const net::Flow& flow = phoneFlow(), const std::string& aor = {},
                                           const std::string& call_id = "reg-call") {
    std::string to_user = aor.empty() ? user : aor;
    auto build = [&](const std::string& authorization) {
      std::uint32_t cseq = ++cseq_;
      return fmt::format(
          "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {}:{};branch=z9hG4bK-reg{}-{};rport\r\n"
          "From: <sip:{}@127.0.0.1>;tag=phone-tag\r\nTo: <sip:{}@127.0.0.1>\r\nCall-ID: {}\r\n"
          "CSeq: {} REGISTER\r\n{}{}{}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
          flow.remote.address.to_string(), flow.remote.port, ++branches_, cseq, user, to_user, call_id, cseq,
          lines, kPhoneHeaders, authorization);
    };
    h_.inject(build(""), flow);
    auto challenge = h_.next(flow.remote.port);
    if (!challenge || challenge->statusCode() != 401) return challenge;
    std::string nonce = nonceOf(*challenge);
    std::string uri = "sip:127.0.0.1:5060";
    std::string ha1 = policy::auth::ha1(Algorithm::Sha256, user, "palisade", kPassword);
    std::string response = policy::auth::requestDigest(Algorithm::Sha256, ha1, nonce, "00000001", "cafe",
                                                       "auth", "REGISTER", uri);
    last_request_ = build(
        fmt::format("Authorization: Digest username=\"{}\", realm=\"palisade\", nonce=\"{}\", uri=\"{}\", "
                    "response=\"{}\", algorithm=SHA-256, cnonce=\"cafe\", qop=auth, nc=00000001\r\n",
                    user, nonce, uri, response));
    h_.inject(last_request_, flow);
    return h_.next(flow.remote.port);
  }

  // An INVITE from the PBX to `user`; returns what reached `port` (the phone or the carrier)
  // or, when nothing did, the PBX's answer.
  std::unique_ptr<sip::Message> callFromPbx(const std::string& user, std::uint16_t port,
                                            const std::string& call_id = "pbx-call") {
    PeerDialog pbx = pbxPeer(call_id);
    pbx.request_uri = fmt::format("sip:{}@127.0.0.1:5070", user);
    pbx.remote_uri = pbx.request_uri;
    h_.inject(makeInvite(pbx, "z9hG4bK-pbx-" + call_id), pbx.flow);
    if (auto reached = h_.next(port)) return reached;
    std::unique_ptr<sip::Message> last;
    while (auto m = h_.next(kPbxPort)) last = std::move(m);
    return last;
  }

  EngineHarness h_;
  std::uint32_t cseq_ = 0;
  std::uint32_t branches_ = 0;
  std::string last_request_;
};

TEST_F(RegistrarTest, ARegisteredUserIsCalledWhereItRegisteredFrom) {
  auto ok = registerAs("2001", "Contact: <sip:2001@10.0.0.7:5062;transport=udp>\r\n");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->statusCode(), 200);
  auto contacts = contactsOf(*ok);
  ASSERT_EQ(contacts.size(), 1u);
  EXPECT_EQ(contacts[0], "<sip:2001@10.0.0.7:5062;transport=udp>;expires=600");  // the default
  EXPECT_NE(headerOf(*ok, "Date").find("GMT"), std::string::npos);
  EXPECT_EQ(h_.counter(stats::Counter::Registrations), 1u);
  EXPECT_EQ(h_.location().size(), 1u);
  EXPECT_EQ(h_.pending(kPbxPort), 0u) << "a REGISTER never reaches the PBX";

  // The PBX calls the extension: it goes to the flow the REGISTER came from (the NAT pinhole),
  // addressed to the registered Contact, never to the private address in it.
  auto invite = callFromPbx("2001", kPhonePort);
  ASSERT_TRUE(invite);
  EXPECT_EQ(invite->method(), sip::Method::Invite);
  EXPECT_EQ(invite->requestUri(), "sip:2001@10.0.0.7:5062;transport=udp");
  EXPECT_EQ(invite->to().uri, "sip:2001@127.0.0.1");
  EXPECT_EQ(h_.pending(kCarrierPort), 0u);

  // Another user with no binding: 480. A number that is no user's: the trunk.
  auto unavailable = callFromPbx("2002", kPhonePort, "pbx-call-2");
  ASSERT_TRUE(unavailable);
  EXPECT_EQ(unavailable->statusCode(), 480);
  EXPECT_EQ(h_.counter(stats::Counter::CallsToUnregistered), 1u);
  auto outbound = callFromPbx("15551234", kCarrierPort, "pbx-call-3");
  ASSERT_TRUE(outbound);
  EXPECT_EQ(outbound->method(), sip::Method::Invite);
}

TEST_F(RegistrarTest, ABindingOverAConnectionEndsWithIt) {
  net::Flow over_tcp = phoneFlow();
  over_tcp.transport = net::Transport::Tcp;
  over_tcp.conn_id = 7;
  auto ok = registerAs("2001", "Contact: <sip:2001@10.0.0.7:5062;transport=tcp>\r\n", over_tcp);
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->statusCode(), 200);

  // Another connection from the same address closing changes nothing.
  net::Flow other = over_tcp;
  other.conn_id = 8;
  h_.engine().onFlowClosed(other);
  EXPECT_EQ(h_.location().size(), 1u);

  // Its own connection closing ends the binding: the PBX's call gets 480 at once instead of
  // waiting for a transaction timeout toward a connection that is gone.
  h_.engine().onFlowClosed(over_tcp);
  EXPECT_EQ(h_.location().size(), 0u);
  auto unavailable = callFromPbx("2001", kPhonePort);
  ASSERT_TRUE(unavailable);
  EXPECT_EQ(unavailable->statusCode(), 480);
}

TEST_F(RegistrarTest, ExpiryRulesOfRfc3261) {
  // Too brief: 423 with Min-Expires, and nothing bound.
  auto brief = registerAs("2001", "Contact: <sip:2001@10.0.0.7>\r\nExpires: 30\r\n");
  ASSERT_TRUE(brief);
  EXPECT_EQ(brief->statusCode(), 423);
  EXPECT_EQ(headerOf(*brief, "Min-Expires"), "60");
  EXPECT_EQ(h_.location().size(), 0u);
  EXPECT_EQ(h_.counter(stats::Counter::RegistrationsRefused), 1u);

  // Too long is shortened; the parameter beats the header; several contacts at once.
  auto two = registerAs(
      "2001", "Contact: <sip:2001@10.0.0.7>;expires=999999, <sip:2001@10.0.0.8>\r\nExpires: 120\r\n");
  ASSERT_TRUE(two);
  ASSERT_EQ(two->statusCode(), 200);
  auto contacts = contactsOf(*two);
  ASSERT_EQ(contacts.size(), 2u);
  EXPECT_NE(std::find(contacts.begin(), contacts.end(), "<sip:2001@10.0.0.7>;expires=3600"), contacts.end());
  EXPECT_NE(std::find(contacts.begin(), contacts.end(), "<sip:2001@10.0.0.8>;expires=120"), contacts.end());

  // A query (no Contact) lists the bindings without changing them.
  auto query = registerAs("2001", "");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->statusCode(), 200);
  EXPECT_EQ(contactsOf(*query).size(), 2u);

  // Expires: 0 on one contact removes it.
  auto one = registerAs("2001", "Contact: <sip:2001@10.0.0.8>;expires=0\r\n");
  ASSERT_TRUE(one);
  EXPECT_EQ(contactsOf(*one).size(), 1u);

  // "*" is valid only alone and with Expires: 0.
  auto star_with_more = registerAs("2001", "Contact: *, <sip:2001@10.0.0.9>\r\nExpires: 0\r\n");
  ASSERT_TRUE(star_with_more);
  EXPECT_EQ(star_with_more->statusCode(), 400);
  auto star_without_zero = registerAs("2001", "Contact: *\r\nExpires: 60\r\n");
  ASSERT_TRUE(star_without_zero);
  EXPECT_EQ(star_without_zero->statusCode(), 400);
  EXPECT_EQ(h_.location().size(), 1u);
  auto star = registerAs("2001", "Contact: *\r\nExpires: 0\r\n");
  ASSERT_TRUE(star);
  EXPECT_EQ(star->statusCode(), 200);
  EXPECT_TRUE(contactsOf(*star).empty());
  EXPECT_EQ(h_.location().size(), 0u);
}

TEST_F(RegistrarTest, BindingsExpireAndEndTheRouteToTheUser) {
  ASSERT_EQ(registerAs("2001", "Contact: <sip:2001@10.0.0.7>\r\nExpires: 60\r\n")->statusCode(), 200);
  ASSERT_TRUE(callFromPbx("2001", kPhonePort, "before"));
  h_.clock().advance(61'000);
  auto late = callFromPbx("2001", kPhonePort, "after");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->statusCode(), 480);
  EXPECT_EQ(h_.location().expire(h_.clock().now()).size(), 1u);
  EXPECT_EQ(h_.location().size(), 0u);
}

TEST_F(RegistrarTest, NoUserMayRegisterAnotherUsersName) {
  // Authenticated as 2001, binding 2002: refused, so one account cannot take another's calls.
  auto hijack = registerAs("2001", "Contact: <sip:evil@10.0.0.66>\r\n", phoneFlow(), "2002");
  ASSERT_TRUE(hijack);
  EXPECT_EQ(hijack->statusCode(), 403);
  EXPECT_EQ(h_.location().size(), 0u);
  auto call = callFromPbx("2002", kPhonePort);
  ASSERT_TRUE(call);
  EXPECT_EQ(call->statusCode(), 480);
}

TEST_F(RegistrarTest, RetransmissionsAreAnsweredAndOutOfOrderRequestsRefused) {
  auto ok = registerAs("2001", "Contact: <sip:2001@10.0.0.7>\r\n");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->statusCode(), 200);
  // The same REGISTER again (a UDP retransmission): the transaction answers it again; it is
  // not a replayed nonce and changes nothing.
  h_.inject(last_request_, phoneFlow());
  auto again = h_.next(kPhonePort);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->statusCode(), 200);
  EXPECT_EQ(h_.counter(stats::Counter::Registrations), 1u);
  EXPECT_EQ(h_.counter(stats::Counter::AuthFailedNonce), 0u);

  // A lower CSeq on the same Call-ID: refused (RFC 3261 §10.3 step 7).
  cseq_ = 0;
  auto stale = registerAs("2001", "Contact: <sip:2001@10.0.0.7>;expires=0\r\n");
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->statusCode(), 400);
  EXPECT_EQ(h_.location().size(), 1u);
}

TEST_F(RegistrarTest, ContactsPerUserAreBounded) {
  std::string lines;
  for (int i = 0; i < 5; ++i) lines += fmt::format("Contact: <sip:2001@10.0.0.{}>\r\n", i + 1);
  auto many = registerAs("2001", lines);
  ASSERT_TRUE(many);
  EXPECT_EQ(many->statusCode(), 403);
  EXPECT_EQ(h_.location().size(), 0u);
}

TEST_F(RegistrarTest, KeepAlivesFromARegisteredFlowAreAnswered) {
  auto options = [](const net::Flow& flow, const std::string& branch) {
    return fmt::format(
        "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {}:{};branch={}\r\nFrom: "
        "<sip:2001@127.0.0.1>;"
        "tag=ka\r\nTo: <sip:127.0.0.1>\r\nCall-ID: ka-{}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n",
        flow.remote.address.to_string(), flow.remote.port, branch, branch);
  };
  h_.inject(options(phoneFlow(), "z9hG4bK-ka0"), phoneFlow());
  EXPECT_EQ(h_.pending(kPhonePort), 0u) << "not registered yet: silence";
  ASSERT_EQ(registerAs("2001", "Contact: <sip:2001@10.0.0.7>\r\n")->statusCode(), 200);
  h_.inject(options(phoneFlow(), "z9hG4bK-ka1"), phoneFlow());
  auto pong = h_.next(kPhonePort);
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->statusCode(), 200);
  EXPECT_EQ(h_.pending(kPbxPort), 0u);
  // Another port on the same address is another flow: nothing.
  net::Flow other = phoneFlow("127.0.0.2", 5999);
  h_.inject(options(other, "z9hG4bK-ka2"), other);
  EXPECT_EQ(h_.pending(5999), 0u);
  // Unregistered: silence again.
  ASSERT_EQ(registerAs("2001", "Contact: *\r\nExpires: 0\r\n")->statusCode(), 200);
  h_.inject(options(phoneFlow(), "z9hG4bK-ka3"), phoneFlow());
  EXPECT_EQ(h_.pending(kPhonePort), 0u);
}

TEST_F(RegistrarTest, BindingsSurviveAReloadButNotTheirUsersRemoval) {
  ASSERT_EQ(registerAs("2001", "Contact: <sip:2001@10.0.0.7>\r\n")->statusCode(), 200);
  ASSERT_EQ(
      registerAs("2002", "Contact: <sip:2002@10.0.0.8>\r\n", phoneFlow("127.0.0.3"), {}, "bob")->statusCode(),
      200);
  EXPECT_EQ(h_.location().size(), 2u);

  // The same users: everything stays.
  h_.reload(usersConfig());
  EXPECT_EQ(h_.location().size(), 2u);
  ASSERT_TRUE(callFromPbx("2001", kPhonePort, "kept"));

  // 2002 removed, 2001 now fenced to another address: both bindings end.
  auto next = usersConfig();
  next->users.pop_back();
  next->users[0].sources = {"192.0.2.0/24"};
  h_.reload(next);
  EXPECT_EQ(h_.location().size(), 0u);
  auto gone = callFromPbx("2001", kPhonePort, "gone");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->statusCode(), 480);
}

}  // namespace
}  // namespace palisade
