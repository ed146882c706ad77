#include "core/dialog/identifiers.h"

#include <gtest/gtest.h>

#include <array>
#include <set>

namespace palisade::dialog {
namespace {

TEST(Identifiers, GeneratedIdsLeadBackToTheirWorker) {
  for (std::uint32_t worker = 0; worker < 8; ++worker) {
    IdGenerator ids(worker);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(ownerOf(ids.callId(), 8), worker);
  }
}

TEST(Identifiers, PeerCallIdsHashStablyAndSpread) {
  std::set<std::uint32_t> owners;
  for (int i = 0; i < 200; ++i) {
    std::string call_id = "peer-" + std::to_string(i) + "@example.com";
    std::uint32_t owner = ownerOf(call_id, 4);
    EXPECT_LT(owner, 4u);
    EXPECT_EQ(owner, ownerOf(call_id, 4));
    owners.insert(owner);
  }
  EXPECT_EQ(owners.size(), 4u);
  EXPECT_EQ(ownerOf("anything", 1), 0u);
  // An index beyond the worker count is not trusted: the Call-ID is hashed instead.
  EXPECT_LT(ownerOf("Pff-0123456789abcdef", 4), 4u);
}

bool allHex(std::string_view s) { return s.find_first_not_of("0123456789abcdef") == std::string_view::npos; }

// RFC 3261 §19.3 and the bar: at least 96 unpredictable bits after the owner index.
TEST(Identifiers, FormatAndRandomWidth) {
  IdGenerator ids(0x2a);
  std::string tag = ids.tag();
  ASSERT_EQ(tag.size(), 2u + 24u);
  EXPECT_EQ(tag.substr(0, 2), "2a");
  EXPECT_TRUE(allHex(tag));
  std::string branch = ids.branch();
  ASSERT_EQ(branch.rfind("z9hG4bK-P2a-", 0), 0u);  // RFC 3261 magic cookie
  EXPECT_EQ(branch.size(), 12u + 24u);
  EXPECT_TRUE(allHex(branch.substr(12)));
  std::string call_id = ids.callId();
  ASSERT_EQ(call_id.rfind("P2a-", 0), 0u);
  EXPECT_EQ(call_id.size(), 4u + 32u);
  EXPECT_TRUE(allHex(call_id.substr(4)));
}

TEST(Identifiers, UniqueAcrossGenerators) {
  IdGenerator a(3);
  IdGenerator b(3);  // same worker index, as after a restart: still no collision
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    EXPECT_TRUE(seen.insert(a.branch()).second);
    EXPECT_TRUE(seen.insert(a.tag()).second);
    EXPECT_TRUE(seen.insert(a.callId()).second);
    EXPECT_TRUE(seen.insert(b.branch()).second);
    EXPECT_TRUE(seen.insert(b.tag()).second);
  }
}

// The random part of consecutive tags carries no visible structure: each of the 24 hex
// positions takes many different values, and no tag shares its random part's first half with
// the previous one (a counter or an invertible mixer seeded from one observation would).
TEST(Identifiers, ConsecutiveTagsShowNoPattern) {
  IdGenerator ids(1);
  std::array<std::set<char>, 24> digits;
  std::string previous = ids.tag();
  for (int i = 0; i < 4096; ++i) {
    std::string tag = ids.tag();
    for (std::size_t d = 0; d < 24; ++d) digits[d].insert(tag[2 + d]);
    EXPECT_NE(tag.substr(2, 12), previous.substr(2, 12));
    previous = tag;
  }
  for (const auto& seen : digits) EXPECT_EQ(seen.size(), 16u);
}

// RFC 3262 §3: the first RSeq lies in 1..2^31-1, and one sequence does not predict another.
TEST(Identifiers, FirstRSeqIsInRangeAndVaries) {
  IdGenerator ids(3);
  std::set<std::uint32_t> seen;
  for (int i = 0; i < 1000; ++i) {
    std::uint32_t rseq = ids.firstRSeq();
    EXPECT_GE(rseq, 1u);
    EXPECT_LE(rseq, 0x7fffffffu);
    seen.insert(rseq);
  }
  EXPECT_GT(seen.size(), 990u);
}

}  // namespace
}  // namespace palisade::dialog
