#include "core/app/json_text.h"

#include <cstdint>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/json_check.h"

namespace palisade::app {
namespace {

std::string jsonQuoted(std::string_view text) {
  std::string out;
  appendJsonString(out, text);
  return out;
}

const std::string kFffd = "\xEF\xBF\xBD";

TEST(JsonText, PlainTextIsQuoted) {
  EXPECT_EQ(jsonQuoted("2001"), "\"2001\"");
  EXPECT_EQ(jsonQuoted(""), "\"\"");
  std::string out = "x";
  appendJsonString(out, "y");
  EXPECT_EQ(out, "x\"y\"");
}

TEST(JsonText, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(jsonQuoted("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(jsonQuoted("\r\n\t"), R"("\r\n\t")");
  EXPECT_EQ(jsonQuoted(std::string_view("\x00\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
  // A From that tries to close the string and add a member stays one string.
  EXPECT_EQ(jsonQuoted(R"(x","decision":"allowed)"), R"("x\",\"decision\":\"allowed")");
}

TEST(JsonText, KeepsWellFormedUtf8) {
  EXPECT_EQ(jsonQuoted("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"),
            "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF\"");
  // Line and paragraph separators are valid JSON but end a JavaScript string literal.
  EXPECT_EQ(jsonQuoted("a\xE2\x80\xA8"
                       "b\xE2\x80\xA9"),
            R"("a\u2028b\u2029")");
}

TEST(JsonText, ReplacesEachIllFormedSequenceWithOneReplacementCharacter) {
  EXPECT_EQ(jsonQuoted("\xFF"), "\"" + kFffd + "\"");
  EXPECT_EQ(jsonQuoted("a\x80z"), "\"a" + kFffd + "z\"");                      // stray continuation
  EXPECT_EQ(jsonQuoted("\xC0\xAF"), "\"" + kFffd + kFffd + "\"");              // overlong '/'
  EXPECT_EQ(jsonQuoted("\xE0\x80\xAF"), "\"" + kFffd + kFffd + kFffd + "\"");  // overlong, 3 bytes
  EXPECT_EQ(jsonQuoted("\xED\xA0\x80"), "\"" + kFffd + kFffd + kFffd + "\"");  // UTF-16 surrogate
  EXPECT_EQ(jsonQuoted("\xF4\x90\x80\x80"), "\"" + kFffd + kFffd + kFffd + kFffd + "\"");  // > U+10FFFF
  EXPECT_EQ(jsonQuoted("\xE2\x82"), "\"" + kFffd + "\"");            // truncated at the end
  EXPECT_EQ(jsonQuoted("\xE2\x82z"), "\"" + kFffd + "z\"");          // truncated before ASCII
  EXPECT_EQ(jsonQuoted("\xF0\x9F\x98\""), "\"" + kFffd + "\\\"\"");  // truncated before a quote
}

TEST(JsonText, EveryOneAndTwoByteInputGivesValidJson) {
  std::string why;
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      char bytes[2] = {static_cast<char>(a), static_cast<char>(b)};
      std::string text = jsonQuoted(std::string_view(bytes, 2));
      ASSERT_TRUE(testing::isValidJson(text, &why)) << a << " " << b << ": " << why;
      text = jsonQuoted(std::string_view(bytes, 1));
      ASSERT_TRUE(testing::isValidJson(text, &why)) << a << ": " << why;
    }
  }
}

TEST(JsonText, RandomBytesGiveValidJson) {
  std::mt19937 random(20240501);
  std::uniform_int_distribution<int> length(0, 24);
  // Biased toward the bytes that matter: leads, continuations, quotes, backslashes, controls.
  const std::string interesting =
      std::string("\x80\xBF\xC2\xDF\xE0\xED\xEF\xF0\xF4\xF5\xFF\"\\\x00\x1f\x7f", 16);
  std::uniform_int_distribution<int> pick(0, static_cast<int>(interesting.size()) * 2);
  std::uniform_int_distribution<int> any(0, 255);
  std::string why;
  for (int n = 0; n < 20000; ++n) {
    std::string bytes;
    for (int k = length(random); k > 0; --k) {
      int p = pick(random);
      bytes.push_back(p < static_cast<int>(interesting.size()) ? interesting[p]
                                                               : static_cast<char>(any(random)));
    }
    ASSERT_TRUE(testing::isValidJson(jsonQuoted(bytes), &why)) << why;
  }
}

// The checker the tests rely on must itself reject what is not JSON.
TEST(JsonCheck, RejectsInvalidText) {
  EXPECT_TRUE(testing::isValidJson(R"({"a":[1,-2.5e3,true,false,null,"\u00e9\ud83d\ude00"]})"));
  EXPECT_FALSE(testing::isValidJson("\"a\nb\""));           // raw control character
  EXPECT_FALSE(testing::isValidJson("\"\xFF\""));           // not UTF-8
  EXPECT_FALSE(testing::isValidJson("\"\xC0\xAF\""));       // overlong
  EXPECT_FALSE(testing::isValidJson("\"\xED\xA0\x80\""));   // surrogate
  EXPECT_FALSE(testing::isValidJson(R"("\ud800")"));        // lone surrogate escape
  EXPECT_FALSE(testing::isValidJson(R"("a\x")"));           // bad escape
  EXPECT_FALSE(testing::isValidJson(R"({"a":1,})"));        // trailing comma
  EXPECT_FALSE(testing::isValidJson(R"({"a":1}{"b":2})"));  // two values
  EXPECT_FALSE(testing::isValidJson(R"({"a":01})"));        // leading zero
  EXPECT_FALSE(testing::isValidJson(R"("abc)"));            // unterminated
}

}  // namespace
}  // namespace palisade::app
