#include "policy/fraud/destination_rules.h"

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace palisade::policy::fraud {
namespace {

using Outcome = Judgement::Outcome;

DestinationRules globalRules(config::FraudConfig config = {}) {
  auto rules = compileDestinationRules(config);
  EXPECT_TRUE(rules.ok()) << (rules.ok() ? "" : rules.error().message);
  return rules.ok() ? std::move(rules.value()) : DestinationRules{};
}

PeerRules peerRules(const DestinationRules& global, const std::string& key, bool international,
                    std::vector<std::string> allow = {}, std::vector<std::string> deny = {},
                    std::string dial_plan = {}) {
  config::FraudRules c;
  c.international = international;
  c.allow = std::move(allow);
  c.deny = std::move(deny);
  c.dial_plan = std::move(dial_plan);
  auto rules = compilePeerRules(c, key, global);
  EXPECT_TRUE(rules.ok()) << (rules.ok() ? "" : rules.error().message);
  return rules.ok() ? std::move(rules.value()) : PeerRules{};
}

TEST(DestinationRules, TheShippedHighRiskRangesAreRefusedOnEveryPathEvenWithInternationalAllowed) {
  DestinationRules global = globalRules();
  PeerRules pbx = peerRules(global, "pbx", true);
  PeerRules carrier = peerRules(global, "trunk:carrier", true);
  for (const char* dialled : {"011881612345678", "+8821234567", "011883123456789", "+53 7 123 4567"}) {
    Judgement j = judge(dialled, false, pbx, &carrier, global);
    EXPECT_EQ(j.outcome, Outcome::Denied) << dialled;
    EXPECT_TRUE(j.rule.starts_with("high-risk +")) << j.rule;
  }
  Judgement satellite = judge("011881612345678", false, pbx, &carrier, global);
  EXPECT_EQ(satellite.destination, "+881612345678");
  EXPECT_EQ(std::string(satellite.destination_class), "international");
  EXPECT_NE(satellite.rule.find("Global Mobile Satellite"), std::string::npos) << satellite.rule;
  // A domestic premium range (NANP 900) is high-risk too.
  EXPECT_EQ(judge("19005551234", false, pbx, &carrier, global).outcome, Outcome::Denied);
  // The same numbers from a user toward the PBX.
  PeerRules user = peerRules(global, "user:2001", true);
  EXPECT_EQ(judge("+881612345678", true, user, nullptr, global).outcome, Outcome::Denied);
  // Ordinary destinations pass.
  Judgement london = judge("011442079460958", false, pbx, &carrier, global);
  EXPECT_TRUE(london.allowed());
  EXPECT_EQ(london.destination, "+442079460958");
  EXPECT_TRUE(london.rule.empty());
  Judgement domestic = judge("12125550101", false, pbx, &carrier, global);
  EXPECT_TRUE(domestic.allowed());
  EXPECT_EQ(std::string(domestic.destination_class), "domestic");
}

TEST(DestinationRules, UsersMayNotCallAbroadUnlessACountryIsAllowed) {
  DestinationRules global = globalRules();
  PeerRules user = peerRules(global, "user:2001", false);
  Judgement j = judge("011442079460958", true, user, nullptr, global);
  EXPECT_EQ(j.outcome, Outcome::International);
  EXPECT_EQ(j.rule, "user:2001 international");
  EXPECT_TRUE(judge("2125550101", true, user, nullptr, global).allowed());  // domestic
  PeerRules uk_only = peerRules(global, "user:2002", false, {"+44"});
  Judgement uk = judge("011442079460958", true, uk_only, nullptr, global);
  EXPECT_TRUE(uk.allowed());
  EXPECT_EQ(uk.rule, "user:2002 allow +44");
  EXPECT_EQ(judge("0114930123456", true, uk_only, nullptr, global).outcome, Outcome::International);
  // An allowed country does not pierce its high-risk ranges: +4490 is longer than +44.
  EXPECT_EQ(judge("011449012345678", true, uk_only, nullptr, global).outcome, Outcome::Denied);
  // A trunk without international calling refuses them for the PBX too.
  PeerRules pbx = peerRules(global, "pbx", true);
  PeerRules local_carrier = peerRules(global, "trunk:local", false);
  Judgement via = judge("011442079460958", false, pbx, &local_carrier, global);
  EXPECT_EQ(via.outcome, Outcome::International);
  EXPECT_EQ(via.rule, "trunk:local international");
}

TEST(DestinationRules, TheLongestPrefixDecidesAndTheNarrowerScopeWinsATie) {
  config::FraudConfig config;
  config.deny = {"+44"};
  config.allow = {"+4420"};
  DestinationRules global = globalRules(config);
  PeerRules pbx = peerRules(global, "pbx", true, {"+8816"}, {"+442079"});
  EXPECT_EQ(judge("+441612345678", false, pbx, nullptr, global).outcome, Outcome::Denied);
  EXPECT_TRUE(judge("+442071234567", false, pbx, nullptr, global).allowed());  // +4420 beats +44
  Judgement narrow = judge("+442079460958", false, pbx, nullptr, global);
  EXPECT_EQ(narrow.outcome, Outcome::Denied);  // the caller's +442079 beats +4420
  EXPECT_EQ(narrow.rule, "pbx deny +442079");
  // An explicit allow longer than a high-risk range opens it (Iridium for one peer).
  Judgement iridium = judge("+881612345678", false, pbx, nullptr, global);
  EXPECT_TRUE(iridium.allowed());
  EXPECT_EQ(iridium.rule, "pbx allow +8816");
  EXPECT_EQ(judge("+881712345678", false, pbx, nullptr, global).outcome, Outcome::Denied);
  // Equal length: the caller's allow beats the global deny.
  PeerRules user = peerRules(global, "user:2001", true, {"+44"});
  EXPECT_TRUE(judge("+441612345678", true, user, nullptr, global).allowed());
}

TEST(DestinationRules, EmergencyNumbersAreNeverRefusedAndUnreadableNumbersAlwaysAre) {
  config::FraudConfig config;
  config.deny = {"+1"};
  DestinationRules global = globalRules(config);
  PeerRules user = peerRules(global, "user:2001", false, {}, {"+9"});
  Judgement emergency = judge("911", true, user, nullptr, global);
  EXPECT_TRUE(emergency.allowed());
  EXPECT_EQ(std::string(emergency.destination_class), "emergency");
  PeerRules pbx = peerRules(global, "pbx", true);
  EXPECT_TRUE(judge("112", false, pbx, nullptr, global).allowed());
  // Numbers the dial plan cannot read: an outside-line digit, feature codes, escapes.
  for (const char* dialled : {"9011881612345678", "*72", "%2B881612345678", "+", "12345678901234567890"}) {
    EXPECT_EQ(judge(dialled, false, pbx, nullptr, global).outcome, Outcome::UnknownNumber) << dialled;
    EXPECT_EQ(judge(dialled, true, user, nullptr, global).outcome, Outcome::UnknownNumber) << dialled;
  }
  // Toward the PBX, extensions and names are internal; toward a trunk a short number is not.
  EXPECT_EQ(std::string(judge("2002", true, user, nullptr, global).destination_class), "internal");
  EXPECT_TRUE(judge("voicemail", true, user, nullptr, global).allowed());
  EXPECT_EQ(judge("2002", false, pbx, nullptr, global).outcome, Outcome::UnknownNumber);
}

TEST(DestinationRules, EachPeerReadsNumbersByItsOwnDialPlan) {
  config::FraudConfig config;
  config::DialPlanConfig germany;
  germany.name = "de";
  germany.country_code = "49";
  germany.national_prefix = "0";
  germany.international_prefix = "00";
  germany.emergency = {"112", "110"};
  config.dial_plans.push_back(germany);
  DestinationRules global = globalRules(config);
  PeerRules berlin = peerRules(global, "user:berlin", false, {}, {}, "de");
  Judgement national = judge("030 1234567", true, berlin, nullptr, global);
  EXPECT_TRUE(national.allowed());
  EXPECT_EQ(national.destination, "+49301234567");
  EXPECT_EQ(judge("00881612345678", true, berlin, nullptr, global).outcome, Outcome::Denied);
  EXPECT_EQ(judge("0044 20 7946 0958", true, berlin, nullptr, global).outcome, Outcome::International);
  EXPECT_TRUE(judge("110", true, berlin, nullptr, global).allowed());
  config::FraudRules unknown_plan;
  unknown_plan.dial_plan = "fr";
  EXPECT_FALSE(compilePeerRules(unknown_plan, "user:x", global).ok());
}

TEST(DestinationRules, AnOperatorsHighRiskFileReplacesTheShippedOneAndItsErrorsNameTheLine) {
  const std::string path = ::testing::TempDir() + "high_risk_test.txt";
  {
    std::ofstream out(path);
    out << "# mine\n+4475 UK mobiles I never call\n";
  }
  config::FraudConfig config;
  config.high_risk_file = path;
  DestinationRules global = globalRules(config);
  PeerRules pbx = peerRules(global, "pbx", true);
  EXPECT_EQ(judge("+447512345678", false, pbx, nullptr, global).outcome, Outcome::Denied);
  EXPECT_TRUE(judge("+881612345678", false, pbx, nullptr, global).allowed());
  {
    std::ofstream out(path);
    out << "+44\n+4x4\n";
  }
  auto bad = compileDestinationRules(config);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.error().message.starts_with(path + ":2:")) << bad.error().message;
  std::remove(path.c_str());
}

}  // namespace
}  // namespace palisade::policy::fraud

namespace palisade::policy::fraud {
namespace {

TEST(DestinationRulesReview, NanpCaribbeanNumbersAreInternationalNotDomestic) {
  DestinationRules global = globalRules();  // the shipped dial plan lists NANP's foreign ranges
  PeerRules user = peerRules(global, "user:2001", false);
  Judgement bahamas = judge("12425550123", true, user, nullptr, global);
  EXPECT_EQ(bahamas.outcome, Judgement::Outcome::International);
  EXPECT_EQ(std::string(bahamas.destination_class), "international");
  // Jamaica is in the shipped high-risk ranges too: refused even where international is allowed.
  PeerRules pbx = peerRules(global, "pbx", true);
  EXPECT_EQ(judge("18765550123", false, pbx, nullptr, global).outcome, Judgement::Outcome::Denied);
  EXPECT_EQ(judge("8095550123", false, pbx, nullptr, global).outcome, Judgement::Outcome::Denied);
  EXPECT_TRUE(judge("12125550123", true, user, nullptr, global).allowed());
}

TEST(DestinationRulesReview, AGlobalAllowGrantsNoInternationalCalling) {
  config::FraudConfig config;
  config.allow = {"+8816"};  // a hole in +881 for one vessel, meant for whoever may call abroad
  DestinationRules global = globalRules(config);
  PeerRules user = peerRules(global, "user:2001", false);
  EXPECT_EQ(judge("+881612345678", true, user, nullptr, global).outcome, Judgement::Outcome::International);
  PeerRules abroad = peerRules(global, "user:2002", true);
  EXPECT_TRUE(judge("+881612345678", true, abroad, nullptr, global).allowed());
}

TEST(DestinationRulesReview, NumbersDisguisedAsNamesAndEmptyUserPartsTowardATrunkAreRefused) {
  DestinationRules global = globalRules();
  PeerRules pbx = peerRules(global, "pbx", true);
  EXPECT_EQ(judge("x18765550123", false, pbx, nullptr, global).outcome, Judgement::Outcome::UnknownNumber);
  EXPECT_EQ(judge("", false, pbx, nullptr, global).outcome, Judgement::Outcome::UnknownNumber);
  // SIP addresses at a peer are names: no toll.
  EXPECT_TRUE(judge("sales", false, pbx, nullptr, global).allowed());
  EXPECT_TRUE(judge("ext2001", false, pbx, nullptr, global).allowed());
  // Toward the PBX what is not dialled like a number is the PBX's (judged again on its way out).
  PeerRules user = peerRules(global, "user:2001", false);
  EXPECT_TRUE(judge("x18765550123", true, user, nullptr, global).allowed());
  EXPECT_TRUE(judge("sips%3Auser%40example.com", true, user, nullptr, global).allowed());  // RFC 4475 esc01
  EXPECT_TRUE(judge("voicemail", true, user, nullptr, global).allowed());
  EXPECT_EQ(judge("%2B881612345678", true, user, nullptr, global).outcome, Judgement::Outcome::UnknownNumber);
}

}  // namespace
}  // namespace palisade::policy::fraud
