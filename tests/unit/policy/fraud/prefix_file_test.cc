#include "policy/fraud/prefix_file.h"

#include <string>

#include <gtest/gtest.h>

namespace palisade::policy::fraud {
namespace {

TEST(PrefixFile, PrefixesLabelsAndComments) {
  auto table = parsePrefixList(
      "# a comment\n\n+882 International Networks\n+1 (900)\tNANP premium\n4490 # no label, a comment\r\n",
      "list.txt");
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_EQ(table.value().size(), 3u);
  auto m = table.value().longest("88212345678");
  ASSERT_TRUE(m);
  EXPECT_EQ(*m->value, "International Networks");
  m = table.value().longest("19005550100");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->prefix, "1900");
  EXPECT_EQ(*m->value, "NANP premium");
  m = table.value().longest("449012345678");
  ASSERT_TRUE(m);
  EXPECT_EQ(*m->value, "");
}

TEST(PrefixFile, ErrorsNameFileAndLine) {
  auto bad = parsePrefixList("+882 ok\n88x2 broken\n", "ranges.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("ranges.txt:2: ", 0), 0u) << bad.error().message;
  auto empty_prefix = parsePrefixList("+ label only\n", "ranges.txt");
  ASSERT_FALSE(empty_prefix.ok());
  EXPECT_EQ(empty_prefix.error().message.rfind("ranges.txt:1: ", 0), 0u) << empty_prefix.error().message;
  auto letters = parsePrefixList("abc\n", "ranges.txt");
  ASSERT_FALSE(letters.ok());
  auto too_long = parsePrefixList("1234567890123456\n", "ranges.txt");
  ASSERT_FALSE(too_long.ok());
  EXPECT_FALSE(loadPrefixFile("/nonexistent/ranges.txt").ok());
}

TEST(PrefixFile, TheShippedHighRiskRangesLoad) {
  auto table = loadPrefixFile(std::string(PALISADE_SOURCE_DIR) + "/policy/fraud/high_risk_ranges.txt");
  ASSERT_TRUE(table.ok()) << table.error().message;
  for (const char* number : {"8816212345678", "88234567890", "88351000123", "8701234567"}) {
    EXPECT_TRUE(table.value().longest(number)) << number << " is a shared-cost or satellite number";
  }
  EXPECT_FALSE(table.value().longest("12125550100")) << "an ordinary NANP number";
  EXPECT_FALSE(table.value().longest("442079460958")) << "an ordinary London number";
}

}  // namespace
}  // namespace palisade::policy::fraud
