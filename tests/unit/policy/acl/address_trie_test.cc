#include "policy/acl/address_trie.h"

#include <gtest/gtest.h>

namespace palisade::policy {
namespace {

boost::asio::ip::address ip(const char* text) { return boost::asio::ip::make_address(text); }

void add(AddressTrie& trie, const char* prefix, std::uint16_t value) {
  auto parsed = parsePrefix(prefix);
  ASSERT_TRUE(parsed) << prefix;
  ASSERT_TRUE(trie.insert(parsed->first, parsed->second, value));
}

TEST(AddressTrie, LongestPrefixWins) {
  AddressTrie trie;
  EXPECT_TRUE(trie.empty());
  add(trie, "10.0.0.0/8", 1);
  add(trie, "10.1.0.0/16", 2);
  add(trie, "10.1.2.3", 3);
  add(trie, "2001:db8::/32", 4);
  add(trie, "2001:db8:1::/48", 5);
  EXPECT_FALSE(trie.empty());
  EXPECT_EQ(trie.lookup(ip("10.9.9.9")), 1);
  EXPECT_EQ(trie.lookup(ip("10.1.9.9")), 2);
  EXPECT_EQ(trie.lookup(ip("10.1.2.3")), 3);
  EXPECT_EQ(trie.lookup(ip("10.1.2.4")), 2);
  EXPECT_FALSE(trie.lookup(ip("11.0.0.1")));
  EXPECT_EQ(trie.lookup(ip("2001:db8:2::1")), 4);
  EXPECT_EQ(trie.lookup(ip("2001:db8:1::1")), 5);
  EXPECT_FALSE(trie.lookup(ip("2001:db9::1")));
  // IPv4-mapped IPv6 sources match IPv4 prefixes, never IPv6 ones.
  EXPECT_EQ(trie.lookup(ip("::ffff:10.1.2.3")), 3);
}

TEST(AddressTrie, DefaultRouteAndReplacement) {
  AddressTrie trie;
  add(trie, "0.0.0.0/0", 7);
  EXPECT_EQ(trie.lookup(ip("203.0.113.1")), 7);
  EXPECT_FALSE(trie.lookup(ip("::1")));
  add(trie, "0.0.0.0/0", 8);
  EXPECT_EQ(trie.lookup(ip("203.0.113.1")), 8);
  add(trie, "::/0", 9);
  EXPECT_EQ(trie.lookup(ip("::1")), 9);
}

TEST(AddressTrie, BadPrefixesAreRefused) {
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "2001:db8::/129", "host/8", "", "/8",
                          "10.0.0.0/-1", "10.0.0.0/0008"}) {
    EXPECT_FALSE(parsePrefix(bad)) << bad;
  }
  auto mapped = parsePrefix("::ffff:192.0.2.1");
  ASSERT_TRUE(mapped);
  EXPECT_TRUE(mapped->first.is_v4());
  EXPECT_EQ(mapped->second, 32u);
  AddressTrie trie;
  EXPECT_FALSE(trie.insert(ip("10.0.0.0"), 40, 1));
}

}  // namespace
}  // namespace palisade::policy
