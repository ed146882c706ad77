#include "media/relay/port_pool.h"

#include <set>

#include <gtest/gtest.h>

namespace palisade::media {
namespace {

TEST(PortPool, WorkersShareTheRangeWithoutOverlap) {
  std::set<std::uint16_t> seen;
  std::size_t total = 0;
  for (unsigned w = 0; w < 3; ++w) {
    PortPool pool(10000, 10099, w, 3);
    total += pool.capacity();
    while (auto port = pool.acquire()) {
      EXPECT_EQ(*port % 2, 0);
      EXPECT_GE(*port, 10000);
      EXPECT_LE(*port + 1, 10099);
      EXPECT_TRUE(seen.insert(*port).second) << *port;
    }
    EXPECT_EQ(pool.available(), 0u);
  }
  EXPECT_EQ(total, 50u);
  EXPECT_EQ(seen.size(), 50u);
}

TEST(PortPool, OddBoundsKeepPairsWhole) {
  PortPool pool(10001, 10006, 0, 1);  // pairs 10002/3 and 10004/5; 10006 has no RTCP port
  EXPECT_EQ(pool.capacity(), 2u);
  EXPECT_EQ(pool.acquire(), 10002);
  EXPECT_EQ(pool.acquire(), 10004);
  EXPECT_EQ(pool.acquire(), std::nullopt);
}

TEST(PortPool, ReleasedPairsQueueBehindTheOthers) {
  PortPool pool(20000, 20007, 0, 1);
  auto a = pool.acquire();
  ASSERT_TRUE(a);
  EXPECT_TRUE(pool.release(*a));
  EXPECT_EQ(pool.acquire(), 20002);  // not the pair just released
  EXPECT_EQ(pool.acquire(), 20004);
  EXPECT_EQ(pool.acquire(), 20006);
  EXPECT_EQ(pool.acquire(), 20000);
  EXPECT_EQ(pool.acquire(), std::nullopt);
}

TEST(PortPool, RefusesDoubleAndForeignReleases) {
  PortPool pool(30000, 30011, 1, 2);  // worker 1 of 2: pairs 30002, 30006, 30010
  EXPECT_EQ(pool.capacity(), 3u);
  auto a = pool.acquire();
  ASSERT_EQ(a, 30002);
  EXPECT_TRUE(pool.release(30002));
  EXPECT_FALSE(pool.release(30002));  // twice
  EXPECT_FALSE(pool.release(30000));  // worker 0's
  EXPECT_FALSE(pool.release(30003));  // an RTCP port
  EXPECT_FALSE(pool.release(40000));  // outside
  EXPECT_FALSE(pool.release(30006));  // never handed out
  EXPECT_EQ(pool.available(), 3u);
  // Exhaust and refill: the pool is full again.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.acquire());
  EXPECT_EQ(pool.acquire(), std::nullopt);
  for (std::uint16_t p : {30002, 30006, 30010}) EXPECT_TRUE(pool.release(p));
  EXPECT_EQ(pool.available(), pool.capacity());
}

TEST(PortPool, EmptyRanges) {
  EXPECT_EQ(PortPool(10000, 10000, 0, 1).capacity(), 0u);
  EXPECT_EQ(PortPool(10000, 10003, 2, 2).capacity(), 0u);  // no such worker
  PortPool none(10000, 10001, 1, 2);                       // one pair, worker 0's
  EXPECT_EQ(none.acquire(), std::nullopt);
}

}  // namespace
}  // namespace palisade::media
