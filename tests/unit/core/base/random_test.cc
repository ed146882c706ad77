#include "core/base/random.h"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <vector>

namespace palisade::base {
namespace {

TEST(RandomPool, DrawsAcrossBatchBoundariesWithoutRepeating) {
  RandomPool pool;
  std::set<std::array<std::uint8_t, 12>> seen;
  // 1,000 draws of 12 bytes span three 4 KiB batches.
  for (int i = 0; i < 1000; ++i) {
    std::array<std::uint8_t, 12> draw{};
    pool.fill(draw.data(), draw.size());
    EXPECT_TRUE(seen.insert(draw).second);
  }
  // A draw larger than a batch is served too.
  std::vector<std::uint8_t> large(10000, 0);
  pool.fill(large.data(), large.size());
  std::size_t zeros = 0;
  for (auto b : large) zeros += b == 0 ? 1 : 0;
  EXPECT_LT(zeros, 200u);  // about 39 expected of uniform bytes
}

TEST(RandomPool, TwoPoolsDiffer) {
  RandomPool a, b;
  std::array<std::uint8_t, 16> x{}, y{};
  a.fill(x.data(), x.size());
  b.fill(y.data(), y.size());
  EXPECT_NE(x, y);
}

}  // namespace
}  // namespace palisade::base
