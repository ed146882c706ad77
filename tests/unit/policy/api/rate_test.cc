#include "policy/api/rate.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "policy/api/shared_counters.h"

namespace palisade::policy {
namespace {

// A limit lets its burst through at once, then one unit per interval, and forgets nothing
// between: a steady sender at the rate is never refused.
TEST(Rate, BurstThenOnePerInterval) {
  Rate rate{10, 3};  // 10 per second, 3 at once
  std::int64_t tat = 0;
  std::int64_t now = microsOf(5'000);
  EXPECT_TRUE(takeUnit(tat, now, rate));
  EXPECT_TRUE(takeUnit(tat, now, rate));
  EXPECT_TRUE(takeUnit(tat, now, rate));
  EXPECT_FALSE(takeUnit(tat, now, rate));
  EXPECT_FALSE(takeUnit(tat, now + 99'000, rate));  // 99 ms later: not yet
  EXPECT_TRUE(takeUnit(tat, now + 100'000, rate));  // 100 ms later: one more
  EXPECT_FALSE(takeUnit(tat, now + 100'000, rate));
  // After a quiet second the whole burst is back, and no more.
  now += 2'000'000;
  int taken = 0;
  while (takeUnit(tat, now, rate)) ++taken;
  EXPECT_EQ(taken, 3);
  // Exactly at the rate, for ten seconds: all through.
  for (int i = 1; i <= 100; ++i) EXPECT_TRUE(takeUnit(tat, now + i * 100'000, rate)) << i;
}

TEST(Rate, RatesAboveAThousandPerSecondKeepTheirSpacingOnAMillisecondClock) {
  Rate rate{5000, 5000};
  std::int64_t tat = 0;
  int taken = 0;
  // 10 s of a sender at 6,000/s, seen at millisecond resolution: about 5,000/s get through,
  // plus the first burst.
  for (base::Millis ms = 0; ms < 10'000; ++ms) {
    for (int i = 0; i < 6; ++i) taken += takeUnit(tat, microsOf(1'000'000 + ms), rate) ? 1 : 0;
  }
  EXPECT_GE(taken, 50'000);
  EXPECT_LE(taken, 55'100);
}

TEST(Rate, ZeroMeansNoLimit) {
  std::int64_t tat = 0;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(takeUnit(tat, 0, Rate{0, 0}));
  SharedRate shared;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(shared.take(0, Rate{0, 0}));
}

// The shared form under contention: workers taking from one limit at the same time never get
// more than the burst between them.
TEST(Rate, SharedLimitHoldsAcrossThreads) {
  SharedCounters counters;
  Rate rate{1, 1000};  // 1,000 at once, then 1 per second
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) taken += counters.takeRate(7, 1'000'000, rate) ? 1 : 0;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(taken.load(), 1000);
  EXPECT_TRUE(counters.takeRate(8, 1'000'000, rate));  // another id has its own
}

TEST(SharedCounters, OverloadIsSetAndClearedPerWorker) {
  SharedCounters counters;
  EXPECT_FALSE(counters.overloaded());
  counters.setOverloaded(0, true);
  counters.setOverloaded(1, true);
  counters.setOverloaded(1, true);  // repeated: counted once
  EXPECT_TRUE(counters.overloaded());
  counters.setOverloaded(0, false);
  EXPECT_TRUE(counters.overloaded());
  counters.setOverloaded(1, false);
  EXPECT_FALSE(counters.overloaded());
}

}  // namespace
}  // namespace palisade::policy
