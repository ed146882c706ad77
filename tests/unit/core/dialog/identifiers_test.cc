#include "core/dialog/identifiers.h"

#include <gtest/gtest.h>

#include <set>

namespace palisade::dialog {
namespace {

TEST(Identifiers, GeneratedIdsLeadBackToTheirWorker) {
  for (std::uint32_t worker = 0; worker < 8; ++worker) {
    IdGenerator ids(worker, 12345);
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

TEST(Identifiers, UniqueAndWellFormed) {
  IdGenerator ids(3, 99);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string branch = ids.branch();
    EXPECT_EQ(branch.rfind("z9hG4bK", 0), 0u);  // RFC 3261 magic cookie
    EXPECT_TRUE(seen.insert(branch).second);
    EXPECT_TRUE(seen.insert(ids.tag()).second);
    EXPECT_TRUE(seen.insert(ids.callId()).second);
  }
  IdGenerator other(3, 100);
  EXPECT_NE(other.callId(), IdGenerator(3, 99).callId());
}

}  // namespace
}  // namespace palisade::dialog
