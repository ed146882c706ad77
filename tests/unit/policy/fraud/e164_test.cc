#include "policy/fraud/e164.h"

#include <string>

#include <gtest/gtest.h>

#include "policy/fraud/prefix_table.h"

namespace palisade::policy::fraud {
namespace {

DialPlan nanp() {
  DialPlan p;
  p.country_code = "1";
  p.national_prefix = "1";
  p.international_prefix = "011";
  p.emergency = {"911", "933"};
  p.national_min = 10;
  p.national_max = 10;
  return p;
}

DialPlan unitedKingdom() {
  DialPlan p;
  p.country_code = "44";
  p.national_prefix = "0";
  p.international_prefix = "00";
  p.emergency = {"999", "112"};
  p.national_min = 9;
  p.national_max = 10;
  return p;
}

void expectNumber(const Number& n, NumberClass kind, std::string_view e164) {
  EXPECT_EQ(n.kind, kind) << numberClassName(n.kind) << " " << n.e164;
  EXPECT_EQ(n.e164, e164);
}

TEST(E164, NanpNumbersInEveryWrittenForm) {
  const DialPlan plan = nanp();
  expectNumber(normalise("+1 (212) 555-0100", plan), NumberClass::Domestic, "12125550100");
  expectNumber(normalise("2125550100", plan), NumberClass::Domestic, "12125550100");
  expectNumber(normalise("1-212-555-0100", plan), NumberClass::Domestic, "12125550100");
  expectNumber(normalise("tel:+1.212.555.0100", plan), NumberClass::Domestic, "12125550100");
  // Parameters can make a carrier read another number (phone-context=+882): refused.
  expectNumber(normalise("tel:+1.212.555.0100;phone-context=example.com", plan), NumberClass::Unknown, "");
  expectNumber(normalise("16123456;phone-context=+882", plan), NumberClass::Unknown, "");
  // 00 is no NANP prefix, but a carrier that uses it would ring Cuba.
  expectNumber(normalise("00535123456", plan), NumberClass::Unknown, "");
  expectNumber(normalise("011 44 20 7946 0958", plan), NumberClass::International, "442079460958");
  expectNumber(normalise("+882 1234 5678", plan), NumberClass::International, "88212345678");
  expectNumber(normalise("911", plan), NumberClass::Emergency, "911");
  expectNumber(normalise("933", plan), NumberClass::Emergency, "933");
}

TEST(E164, EuropeanNumbers) {
  const DialPlan plan = unitedKingdom();
  expectNumber(normalise("020 7946 0958", plan), NumberClass::Domestic, "442079460958");
  expectNumber(normalise("00 1 212 555 0100", plan), NumberClass::International, "12125550100");
  expectNumber(normalise("0044 20 7946 0958", plan), NumberClass::Domestic, "442079460958");
  expectNumber(normalise("+44 (0)20", plan), NumberClass::Unknown, "");  // too short once normalised
  // The national prefix in parentheses is dropped, as carriers do: +44 (0)909 is +44 909.
  expectNumber(normalise("+44 (0)909 879 0000", plan), NumberClass::Domestic, "449098790000");
  // A number of a leading 0 is national here (Leeds 0113), not a foreign prefix.
  expectNumber(normalise("0113 496 0000", plan), NumberClass::Domestic, "441134960000");
  expectNumber(normalise("999", plan), NumberClass::Emergency, "999");
  expectNumber(normalise("112", plan), NumberClass::Emergency, "112");
}

TEST(E164, ForeignRangesUnderTheCountryCodeAreInternational) {
  DialPlan plan = nanp();
  plan.foreign = {"1876", "1809"};
  expectNumber(normalise("1 876 555 0123", plan), NumberClass::International, "18765550123");
  expectNumber(normalise("+1 809 555 0123", plan), NumberClass::International, "18095550123");
  expectNumber(normalise("8765550123", plan), NumberClass::International, "18765550123");
  expectNumber(normalise("1 212 555 0123", plan), NumberClass::Domestic, "12125550123");
}

TEST(E164, WhatCannotBeNormalisedIsUnknown) {
  const DialPlan plan = nanp();
  for (const char* dialled :
       {"", "*72", "#31#2125550100", "alice", "21255501+00", "+", "++12125550100",
        "5550100" /* 7-digit local dialling: no area code */, "0123456789012345678901234",
        "+1234567890123456" /* 16 digits */, "+0123456789", "011"}) {
    Number n = normalise(dialled, plan);
    EXPECT_EQ(n.kind, NumberClass::Unknown) << dialled << " -> " << n.e164;
    EXPECT_TRUE(n.e164.empty()) << dialled;
  }
  // An emergency number is recognised only as dialled: "+911" is not a way around a rule.
  EXPECT_NE(normalise("+911", plan).kind, NumberClass::Emergency);
}

TEST(PrefixTable, LongestPrefixWins) {
  PrefixTable<std::string> t;
  EXPECT_TRUE(t.add("44", "uk"));
  EXPECT_TRUE(t.add("4420", "london"));
  EXPECT_TRUE(t.add("882", "shared-cost"));
  EXPECT_TRUE(t.add("44", "duplicate, ignored"));
  EXPECT_FALSE(t.add("", "empty"));
  EXPECT_FALSE(t.add("44x", "not digits"));
  EXPECT_FALSE(t.add("1234567890123456", "too long"));
  t.build();
  EXPECT_EQ(t.size(), 3u);
  auto m = t.longest("442079460958");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->prefix, "4420");
  EXPECT_EQ(*m->value, "london");
  m = t.longest("441612345678");
  ASSERT_TRUE(m);
  EXPECT_EQ(*m->value, "uk");
  EXPECT_FALSE(t.longest("12125550100"));
  EXPECT_FALSE(t.longest(""));
  EXPECT_FALSE(t.longest("4"));
  ASSERT_TRUE(t.longest("882"));
}

TEST(PrefixTable, FiftyThousandPrefixes) {
  PrefixTable<int> t;
  for (int i = 0; i < 50000; ++i) ASSERT_TRUE(t.add(std::to_string(100000 + i * 7), i));
  t.build();
  EXPECT_EQ(t.size(), 50000u);
  auto m = t.longest("1000079999");  // 100007 = i 1
  ASSERT_TRUE(m);
  EXPECT_EQ(*m->value, 1);
  EXPECT_FALSE(t.longest("1000019999"));  // 100001 is not in the table, nor any shorter prefix
}

}  // namespace
}  // namespace palisade::policy::fraud
