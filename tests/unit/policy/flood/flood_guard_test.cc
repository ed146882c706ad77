#include "policy/flood/flood_guard.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "tests/support/fake_network.h"

namespace palisade::policy::flood {
namespace {

std::unique_ptr<sip::Message> parse(const std::string& text) {
  return sip::Message::parse(text, sip::Limits{}, true);
}

std::string request(std::string_view method, std::string_view user, int n, std::string_view extra = {},
                    std::string_view to_tag = {}) {
  return fmt::format(
      "{} sip:{}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-{}\r\n"
      "From: <sip:{}@127.0.0.1>;tag=f{}\r\nTo: <sip:{}@127.0.0.1>{}{}\r\nCall-ID: c{}\r\nCSeq: 1 {}\r\n"
      "Max-Forwards: 70\r\n{}Content-Length: 0\r\n\r\n",
      method, user, n, user, n, user, to_tag.empty() ? "" : ";tag=", to_tag, n, method, extra);
}

net::Flow from(const char* address) { return testing::udpFlow(net::Side::Public, address, 5060); }

FloodSettings settings() {
  FloodSettings s;
  s.internet = {Rate{5, 10}, Rate{5, 10}, Rate{10, 20}, Rate{50, 100}};
  s.trunk = {Rate{10000, 20000}, Rate{100, 200}, Rate{2000, 4000}, Rate{50000, 100000}};
  s.pbx = s.trunk;
  s.scanner_agents = {"friendly-scanner", "sipvicious"};
  return s;
}

TEST(Classify, RequestClasses) {
  EXPECT_EQ(classify(*parse(request("INVITE", "1", 1))), RequestClass::Invite);
  EXPECT_EQ(classify(*parse(request("REGISTER", "1", 1))), RequestClass::Register);
  EXPECT_EQ(classify(*parse(request("OPTIONS", "1", 1))), RequestClass::Other);
  EXPECT_EQ(classify(*parse(request("INVITE", "1", 1, {}, "t1"))), RequestClass::InDialog);  // re-INVITE
  EXPECT_EQ(classify(*parse(request("BYE", "1", 1, {}, "t1"))), RequestClass::InDialog);
  EXPECT_EQ(classify(*parse(request("ACK", "1", 1))), RequestClass::InDialog);
  EXPECT_EQ(classify(*parse(request("CANCEL", "1", 1))), RequestClass::InDialog);
}

TEST(ScannerAgent, SubstringIgnoringCase) {
  std::vector<std::string> agents = {"friendly-scanner", "sipvicious"};
  EXPECT_TRUE(isScannerAgent("friendly-scanner", agents));
  EXPECT_TRUE(isScannerAgent("SIPVicious 0.3.4", agents));
  EXPECT_TRUE(isScannerAgent("x Friendly-Scanner y", agents));
  EXPECT_FALSE(isScannerAgent("Yealink SIP-T46S", agents));
  EXPECT_FALSE(isScannerAgent("", agents));
  // Only the first 256 bytes are searched (scanners name themselves first).
  EXPECT_TRUE(isScannerAgent("sipvicious" + std::string(8000, 'x'), agents));
  EXPECT_FALSE(isScannerAgent(std::string(300, 'x') + "sipvicious", agents));
}

TEST(ErrorKey, AnIpv6SourceIsItsSlash64) {
  auto a = errorKey(boost::asio::ip::make_address("2001:db8:1:2::1"));
  auto b = errorKey(boost::asio::ip::make_address("2001:db8:1:2:ffff::9"));
  auto c = errorKey(boost::asio::ip::make_address("2001:db8:1:3::1"));
  EXPECT_EQ(a.view(), b.view());
  EXPECT_NE(a.view(), c.view());
  // An IPv4-mapped address is the IPv4 source.
  EXPECT_EQ(errorKey(boost::asio::ip::make_address("::ffff:192.0.2.7")).view(),
            errorKey(boost::asio::ip::make_address("192.0.2.7")).view());
  EXPECT_NE(errorKey(boost::asio::ip::make_address("192.0.2.7")).view(),
            errorKey(boost::asio::ip::make_address("192.0.2.8")).view());
}

TEST(FloodGuard, InternetSourceOverItsRateIsDroppedAndBannedWhenItKeepsOn) {
  testing::ManualClock clock;
  FloodGuard guard;
  FloodSettings s = settings();
  s.ban_excess = 50;
  auto invite = parse(request("INVITE", "2001", 1));
  int passed = 0, dropped = 0, bans = 0;
  for (int i = 0; i < 200; ++i) {
    ScreenResult r = guard.screen(from("192.0.2.7"), PeerKind::Unknown, *invite, s, clock.now());
    passed += r.verdict == Screen::Pass ? 1 : 0;
    dropped += r.verdict == Screen::Drop && r.reason == ScreenReason::RateLimited ? 1 : 0;
    bans += r.ban ? 1 : 0;
  }
  EXPECT_EQ(passed, 10);  // the burst
  EXPECT_EQ(dropped, 190);
  EXPECT_EQ(bans, 1);  // once, at the 50th excess message
  // Other classes of the same source have their own budget; other sources theirs.
  EXPECT_EQ(guard
                .screen(from("192.0.2.7"), PeerKind::Unknown, *parse(request("BYE", "2001", 2, {}, "t")), s,
                        clock.now())
                .verdict,
            Screen::Pass);
  EXPECT_EQ(guard.screen(from("192.0.2.8"), PeerKind::Unknown, *invite, s, clock.now()).verdict,
            Screen::Pass);
  // A second later, five more.
  clock.advance(1000);
  passed = 0;
  for (int i = 0; i < 20; ++i)
    passed +=
        guard.screen(from("192.0.2.7"), PeerKind::Unknown, *invite, s, clock.now()).verdict == Screen::Pass;
  EXPECT_EQ(passed, 5);
}

TEST(FloodGuard, ExcessSpreadOverWindowsDoesNotBan) {
  testing::ManualClock clock;
  FloodGuard guard;
  FloodSettings s = settings();
  s.ban_excess = 50;
  s.ban_window_ms = 10'000;
  auto invite = parse(request("INVITE", "2001", 1));
  int bans = 0;
  // 30 excess messages in each of ten 10-second windows: never 50 in one.
  for (int window = 0; window < 10; ++window) {
    for (int i = 0; i < 40; ++i)
      bans += guard.screen(from("192.0.2.7"), PeerKind::Unknown, *invite, s, clock.now()).ban;
    clock.advance(10'000);
  }
  EXPECT_EQ(bans, 0);
}

// A carrier at 3,000 calls/s for five seconds, each call's INVITE, ACK and BYE and the
// responses to our requests: nothing dropped, nothing banned.
TEST(FloodGuard, TrunkAtThreeThousandCallsPerSecondIsNeverLimited) {
  testing::ManualClock clock;
  FloodGuard guard;
  FloodSettings s = settings();
  auto invite = parse(request("INVITE", "2001", 1));
  auto ack = parse(request("ACK", "2001", 1, {}, "t"));
  auto bye = parse(request("BYE", "2001", 1, {}, "t"));
  int refused = 0;
  for (int ms = 0; ms < 5000; ++ms) {
    for (int call = 0; call < 3; ++call) {
      for (const auto* m : {invite.get(), ack.get(), bye.get()}) {
        ScreenResult r = guard.screen(from("203.0.113.1"), PeerKind::Trunk, *m, s, clock.now());
        refused += r.verdict != Screen::Pass || r.ban ? 1 : 0;
      }
    }
    clock.advance(1);
  }
  EXPECT_EQ(refused, 0);
}

TEST(FloodGuard, TrunksAreLimitedButNeverBanned) {
  testing::ManualClock clock;
  FloodGuard guard;
  FloodSettings s = settings();
  s.ban_excess = 1;
  auto reg = parse(request("REGISTER", "2001", 1));
  int dropped = 0, bans = 0;
  for (int i = 0; i < 1000; ++i) {
    ScreenResult r = guard.screen(from("203.0.113.1"), PeerKind::Trunk, *reg, s, clock.now());
    dropped += r.verdict == Screen::Drop;
    bans += r.ban;
  }
  EXPECT_EQ(dropped, 800);  // over its 200 at once
  EXPECT_EQ(bans, 0);
}

TEST(FloodGuard, Reply503AtMostOncePerSecondPerSource) {
  testing::ManualClock clock;
  FloodGuard guard;
  FloodSettings s = settings();
  s.reply_503 = true;
  auto invite = parse(request("INVITE", "2001", 1));
  auto ack = parse(request("ACK", "2001", 1));
  int replies = 0;
  for (int i = 0; i < 100; ++i)
    replies += guard.screen(from("192.0.2.7"), PeerKind::Unknown, *invite, s, clock.now()).verdict ==
               Screen::Reply503;
  EXPECT_EQ(replies, 1);
  clock.advance(999);
  EXPECT_NE(guard.screen(from("192.0.2.7"), PeerKind::Unknown, *invite, s, clock.now()).verdict,
            Screen::Reply503);
  clock.advance(1);
  // The budget has refilled: those pass; the first over it in the new second is answered.
  Screen verdict = Screen::Pass;
  int passed = 0;
  while ((verdict = guard.screen(from("192.0.2.7"), PeerKind::Unknown, *invite, s, clock.now()).verdict) ==
         Screen::Pass)
    ++passed;
  EXPECT_EQ(passed, 4);
  EXPECT_EQ(verdict, Screen::Reply503);
  // An ACK over the limit is never answered.
  for (int i = 0; i < 200; ++i) {
    EXPECT_NE(guard.screen(from("192.0.2.9"), PeerKind::Unknown, *ack, s, clock.now()).verdict,
              Screen::Reply503);
    clock.advance(1000);
  }
}

TEST(FloodGuard, ScannerUserAgentIsDroppedAndBanned) {
  testing::ManualClock clock;
  FloodGuard guard;
  auto probe = parse(request("OPTIONS", "100", 1, "User-Agent: friendly-scanner\r\n"));
  ScreenResult r = guard.screen(from("192.0.2.7"), PeerKind::Unknown, *probe, settings(), clock.now());
  EXPECT_EQ(r.verdict, Screen::Drop);
  EXPECT_EQ(r.reason, ScreenReason::ScannerAgent);
  EXPECT_TRUE(r.ban);
  // From a trunk it is the trunk's business.
  EXPECT_EQ(guard.screen(from("203.0.113.1"), PeerKind::Trunk, *probe, settings(), clock.now()).verdict,
            Screen::Pass);
  // An empty list turns the check off.
  FloodSettings none = settings();
  none.scanner_agents.clear();
  EXPECT_EQ(guard.screen(from("192.0.2.8"), PeerKind::Unknown, *probe, none, clock.now()).verdict,
            Screen::Pass);
}

// An extension scan: REGISTERs for one name after another, never answering a challenge. A
// phone answers each challenge at once, so a whole office behind one address is not a scan.
TEST(FloodGuard, NamesChallengedAndNeverAnsweredAreAnExtensionScan) {
  testing::ManualClock clock;
  FloodGuard guard;
  FloodSettings s = settings();
  s.internet[static_cast<int>(RequestClass::Register)] = Rate{1000, 1000};
  s.max_unanswered = 10;
  int flagged_at = 0;
  for (int n = 100; n < 200 && flagged_at == 0; ++n) {
    ScreenResult r = guard.screen(from("192.0.2.7"), PeerKind::Unknown,
                                  *parse(request("REGISTER", std::to_string(n), n)), s, clock.now());
    if (r.reason == ScreenReason::ExtensionScan) {
      EXPECT_TRUE(r.ban);
      flagged_at = n - 100 + 1;
    }
    clock.advance(10);
  }
  EXPECT_GT(flagged_at, 10);
  EXPECT_LT(flagged_at, 20);  // a hash collision may hide a name or two

  // A decoy Authorization line (another realm, or no digest at all) answers nothing.
  FloodGuard decoyed;
  int decoy_flagged = 0;
  for (int n = 100; n < 140; ++n) {
    auto probe = parse(request("REGISTER", std::to_string(n), n, "Authorization: x\r\n"));
    decoy_flagged += decoyed.screen(from("192.0.2.9"), PeerKind::Unknown, *probe, s, clock.now()).reason ==
                     ScreenReason::ExtensionScan;
  }
  EXPECT_GE(decoy_flagged, 1);

  // 60 phones behind one NAT registering at once: each answers its challenge.
  for (int n = 0; n < 60; ++n) {
    std::string name = std::to_string(3000 + n);
    ScreenResult first = guard.screen(from("198.51.100.1"), PeerKind::Unknown,
                                      *parse(request("REGISTER", name, n)), s, clock.now());
    ScreenResult second = guard.screen(
        from("198.51.100.1"), PeerKind::Unknown,
        *parse(request("REGISTER", name, n,
                       "Authorization: Digest username=\"" + name +
                           "\", realm=\"palisade\", nonce=\"n\", uri=\"sip:127.0.0.1\", response=\"r\"\r\n")),
        s, clock.now());
    EXPECT_EQ(first.verdict, Screen::Pass) << name;
    EXPECT_EQ(second.verdict, Screen::Pass) << name;
  }
}

TEST(FloodGuard, ManySourcesDoNotGrowTheTable) {
  testing::ManualClock clock;
  FloodGuard guard;
  auto invite = parse(request("INVITE", "2001", 1));
  // Four times as many sources as slots: the least recent give way, nothing grows or breaks.
  for (std::uint32_t i = 0; i < FloodGuard::kSlots * 4; ++i) {
    auto address = boost::asio::ip::address_v4(0x0A000000u + i);
    net::Flow flow = from("10.0.0.1");
    flow.remote.address = address;
    EXPECT_EQ(guard.screen(flow, PeerKind::Unknown, *invite, settings(), clock.now()).verdict, Screen::Pass);
  }
}

}  // namespace
}  // namespace palisade::policy::flood
