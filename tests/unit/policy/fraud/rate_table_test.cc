#include "policy/fraud/rate_table.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include <gtest/gtest.h>

namespace palisade::policy::fraud {
namespace {

std::string writeFile(const std::string& name, const std::string& text) {
  std::string path = testing::TempDir() + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(RateTable, PricesAreExactMicroUnitsWithLongestPrefixMatch) {
  auto table = parseRateTable(
      "# prefix  price/min  label\n"
      "+44 0.0120 United Kingdom\n"
      "+44-7\t0.045\tUnited Kingdom mobile  # a comment\n"
      "+1(900) 1.5\n"
      "882 12.000001 International Networks\r\n"
      "\n"
      "+1 0.000001 NANP\n"
      "+49 0.0 Germany (free)\n",
      "rates.txt");
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_EQ(table->size(), 6u);

  auto uk = table->rateOf("442079460958");
  ASSERT_TRUE(uk);
  EXPECT_EQ(uk->prefix, "44");
  EXPECT_EQ(uk->micros_per_minute, 12'000);
  EXPECT_EQ(uk->label, "United Kingdom");
  auto mobile = table->rateOf("447700900123");
  ASSERT_TRUE(mobile);
  EXPECT_EQ(mobile->prefix, "447");
  EXPECT_EQ(mobile->micros_per_minute, 45'000);
  EXPECT_EQ(mobile->label, "United Kingdom mobile");
  auto premium = table->rateOf("19005550100");
  ASSERT_TRUE(premium);
  EXPECT_EQ(premium->micros_per_minute, 1'500'000);
  EXPECT_EQ(premium->label, "");
  auto nanp = table->rateOf("12125550100");
  ASSERT_TRUE(nanp);
  EXPECT_EQ(nanp->prefix, "1");
  EXPECT_EQ(nanp->micros_per_minute, 1);
  auto satellite = table->rateOf("88212345678");
  ASSERT_TRUE(satellite);
  EXPECT_EQ(satellite->micros_per_minute, 12'000'001);  // no double rounding on the way
  auto germany = table->rateOf("4930123456");
  ASSERT_TRUE(germany);
  EXPECT_EQ(germany->micros_per_minute, 0);
  EXPECT_EQ(germany->label, "Germany (free)");
  EXPECT_FALSE(table->rateOf("33142278186")) << "France is not in the table";
}

void expectError(std::string_view text, std::string_view starts, std::string_view mentions) {
  auto table = parseRateTable(text, "rates.txt");
  ASSERT_FALSE(table.ok()) << text;
  EXPECT_EQ(table.error().message.rfind(starts, 0), 0u) << table.error().message;
  EXPECT_NE(table.error().message.find(mentions), std::string::npos) << table.error().message;
}

TEST(RateTable, ErrorsNameFileAndLine) {
  expectError("+44 0.01 UK\n+33 abc France\n", "rates.txt:2: ", "not a decimal");
  expectError("+44 -0.01 UK\n", "rates.txt:1: ", "negative");
  expectError("\n\n+44 0.0000001\n", "rates.txt:3: ", "more than 6 decimals");
  expectError("+44\n", "rates.txt:1: ", "missing");
  expectError("+44 .5\n", "rates.txt:1: ", "not a decimal");
  expectError("+44 5.\n", "rates.txt:1: ", "not a decimal");
  expectError("+44 0.0.1\n", "rates.txt:1: ", "not a decimal");
  expectError("+44 1e3\n", "rates.txt:1: ", "not a decimal");
  expectError("+44 +0.01\n", "rates.txt:1: ", "not a decimal");
  expectError("+44 5\n", "rates.txt:1: ", "decimal point");
  // A prefix written with spaces would otherwise read as a price of 20 a minute.
  expectError("+44 20 0.05 London\n", "rates.txt:1: ", "decimal point");
  expectError("+4x4 0.01\n", "rates.txt:1: ", "not an E.164 prefix");
  expectError("+ 0.01\n", "rates.txt:1: ", "not an E.164 prefix");
  expectError("1234567890123456 0.01\n", "rates.txt:1: ", "not an E.164 prefix");
  expectError("+44 1000000.000001\n", "rates.txt:1: ", "too large");
  expectError("+44 99999999999999999999.0\n", "rates.txt:1: ", "too large");
  EXPECT_TRUE(parseRateTable("+44 1000000.000000\n", "rates.txt").ok()) << "the largest price";
}

TEST(RateTable, ADuplicatePrefixNamesBothLines) {
  expectError("+44 0.01 UK\n+33 0.02\n+4-4 0.03 UK again\n", "rates.txt:3: ", "line 1");
  // Of two duplicated prefixes, the repeat that comes first in the file is reported.
  expectError("+1 0.01\n+33 0.02\n+33 0.02\n+1 0.01\n", "rates.txt:3: ", "+33 is priced already on line 2");
}

TEST(RateTable, LoadsFilesAndRefusesLargeOnes) {
  auto table = loadRateTable(writeFile("rates_small.txt", "+44 0.0120 United Kingdom\n"));
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_EQ(table->rateOf("442079460958")->micros_per_minute, 12'000);
  auto missing = loadRateTable("/nonexistent/rates.txt");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot be read"), std::string::npos);
  std::string big(std::size_t{8} * 1024 * 1024 + 1, '\n');
  auto refused = loadRateTable(writeFile("rates_big.txt", big));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("larger than 8 MiB"), std::string::npos);
}

TEST(RateTable, FiftyThousandPrefixesLoadFastAndMatchTheLongest) {
  // Prefixes 1..50000: 1, 12, 123, 1234 and 12345 are all in, so matches nest five deep.
  std::string text;
  for (int i = 1; i <= 50'000; ++i) {
    char line[64];
    std::snprintf(line, sizeof line, "+%d 0.%06d Zone %d\n", i, i, i);
    text += line;
  }
  std::string path = writeFile("rates_50k.txt", text);
  auto start = std::chrono::steady_clock::now();
  auto table = loadRateTable(path);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_EQ(table->size(), 50'000u);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 2'000)
      << "even a sanitizer build loads 50,000 lines well within this";
  for (int i = 1; i <= 50'000; ++i) {
    std::string prefix = std::to_string(i);
    auto rate = table->rateOf(prefix);
    ASSERT_TRUE(rate) << prefix;
    ASSERT_EQ(rate->prefix, prefix);
    ASSERT_EQ(rate->micros_per_minute, i);
  }
  auto deepest = table->rateOf("123456789012");
  ASSERT_TRUE(deepest);
  EXPECT_EQ(deepest->prefix, "12345");
  EXPECT_EQ(deepest->label, "Zone 12345");
  auto shorter = table->rateOf("50001999");  // 50001 is not in; 5000 is
  ASSERT_TRUE(shorter);
  EXPECT_EQ(shorter->prefix, "5000");
  EXPECT_EQ(shorter->micros_per_minute, 5'000);
  EXPECT_FALSE(table->rateOf("0123"));
}

TEST(RateTable, CostRoundsUpToTheStartedSecond) {
  const std::int64_t price = 12'000;  // 0.012 a minute: 200 micro-units a second
  EXPECT_EQ(costMicros(price, 0), 0);
  EXPECT_EQ(costMicros(price, -5'000), 0);
  EXPECT_EQ(costMicros(price, 1), 200);  // a started second is billed whole
  EXPECT_EQ(costMicros(price, 1'000), 200);
  EXPECT_EQ(costMicros(price, 1'001), 400);
  EXPECT_EQ(costMicros(price, 60'000), 12'000);
  EXPECT_EQ(costMicros(price, 60'001), 12'200);
  EXPECT_EQ(costMicros(price, 3'600'000), 720'000);
  EXPECT_EQ(costMicros(7, 1'000), 1) << "a fraction of a micro-unit rounds up";
  EXPECT_EQ(costMicros(7, 60'000), 7);
  EXPECT_EQ(costMicros(61, 1'000), 2);
  EXPECT_EQ(costMicros(0, 60'000), 0);
  EXPECT_EQ(costMicros(kMaxMicrosPerMinute, std::numeric_limits<std::int64_t>::max()),
            std::numeric_limits<std::int64_t>::max())
      << "saturates";
  EXPECT_EQ(costMicros(kMaxMicrosPerMinute, 3'600'000), kMaxMicrosPerMinute * 60);
}

}  // namespace
}  // namespace palisade::policy::fraud
