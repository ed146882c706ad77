#include "policy/fraud/local_fraud_store.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "policy/fraud/rate_table.h"

namespace palisade::policy::fraud {
namespace {

constexpr base::Millis kMinute = 60'000;
constexpr base::Millis kHour = 3'600'000;
constexpr base::Millis kDay = 24 * kHour;

TEST(LocalFraudStore, CountsRollPerKeyAndWindow) {
  auto store = std::make_unique<LocalFraudStore>();
  EXPECT_EQ(store->countInWindow("user:2001", 500, kMinute, 3), 3u);
  EXPECT_EQ(store->countInWindow("user:2001", 30'000, kMinute, 1), 4u);
  EXPECT_EQ(store->countInWindow("user:2001", 30'000, kMinute, 0), 4u) << "add 0 reads";
  EXPECT_EQ(store->countInWindow("user:2002", 30'000, kMinute, 1), 1u) << "another key";
  EXPECT_EQ(store->countInWindow("user:2001", 30'000, kHour, 1), 1u) << "another window of the same key";
  // The first events are 59.999 s old: still in the window.
  EXPECT_EQ(store->countInWindow("user:2001", 60'499, kMinute, 0), 4u);
  // 60.5 s old: gone; the one at 30 s stays.
  EXPECT_EQ(store->countInWindow("user:2001", 61'000, kMinute, 0), 1u);
  EXPECT_EQ(store->countInWindow("user:2001", 91'000, kMinute, 0), 0u);
  EXPECT_EQ(store->countInWindow("user:2001", 30'000, kHour, 0), 1u) << "the hour window kept its count";
  // Long silence then an event: only the new one.
  EXPECT_EQ(store->countInWindow("user:2001", 10 * kDay, kMinute, 1), 1u);
  // A read timed a little behind the newest (another worker's clock) sees the same window.
  EXPECT_EQ(store->countInWindow("user:2001", 10 * kDay - 2'000, kMinute, 1), 2u);
}

TEST(LocalFraudStore, AKeyKeepsAtMostFourWindows) {
  auto store = std::make_unique<LocalFraudStore>();
  for (base::Millis window : {1'000, 2'000, 3'000, 4'000}) {
    store->countInWindow("trunk:carrier", 0, window, 5);
  }
  EXPECT_EQ(store->countInWindow("trunk:carrier", 0, 1'000, 0), 5u);  // now the most recently used
  store->countInWindow("trunk:carrier", 0, 5'000, 5);                 // replaces the 2 s window
  EXPECT_EQ(store->countInWindow("trunk:carrier", 0, 1'000, 0), 5u);
  EXPECT_EQ(store->countInWindow("trunk:carrier", 0, 3'000, 0), 5u);
  EXPECT_EQ(store->countInWindow("trunk:carrier", 0, 5'000, 0), 5u);
  EXPECT_EQ(store->countInWindow("trunk:carrier", 0, 2'000, 0), 0u) << "evicted, counts again from zero";
}

TEST(LocalFraudStore, SpendRollsOverTwentyFourHoursWithActiveCallsProjected) {
  auto store = std::make_unique<LocalFraudStore>();
  EXPECT_EQ(store->spend("user:2001", 0), 0);
  store->addSpend("user:2001", 1'000'000, 1'000);
  store->addSpend("user:2001", -5, 1'000);  // ignored
  store->addSpend("user:2002", 7, 1'000);
  EXPECT_EQ(store->spend("user:2001", 1'000), 1'000'000);
  store->addSpend("user:2001", 500'000, 12 * kHour);
  EXPECT_EQ(store->spend("user:2001", 12 * kHour), 1'500'000);
  EXPECT_EQ(store->spend("user:2001", kDay), 1'500'000) << "24 h after: still counted";
  EXPECT_EQ(store->spend("user:2001", kDay + 15 * kMinute), 500'000) << "the first amount has left";
  EXPECT_EQ(store->spend("user:2001", 36 * kHour + 15 * kMinute), 0);
  EXPECT_EQ(store->spend("user:2002", 1'000), 7);

  // An answered call at 0.012 a minute (200 micro-units a second), answered at 40 h.
  const base::Millis answer = 40 * kHour;
  ASSERT_TRUE(store->startActive("user:2001", 77, 12'000, answer));
  EXPECT_EQ(store->activeCalls(), 1u);
  EXPECT_EQ(store->spend("user:2001", answer), 0);
  EXPECT_EQ(store->spend("user:2001", answer + 1), 200) << "the started second";
  EXPECT_EQ(store->spend("user:2001", answer + 10 * kMinute), 120'000);
  ASSERT_TRUE(store->startActive("user:2001", 78, 60'000'000, answer + 9 * kMinute));  // 60 a minute
  EXPECT_EQ(store->spend("user:2001", answer + 10 * kMinute), 120'000 + 60'000'000);
  // The first call ends after 10 minutes: its cost is committed, then it stops accruing.
  store->addSpend("user:2001", costMicros(12'000, 10 * kMinute), answer + 10 * kMinute);
  ASSERT_TRUE(store->endActive("user:2001", 77));
  EXPECT_FALSE(store->endActive("user:2001", 77)) << "ended once";
  EXPECT_FALSE(store->endActive("user:9999", 77)) << "never started";
  EXPECT_EQ(store->activeCalls(), 1u);
  EXPECT_EQ(store->spend("user:2001", answer + 11 * kMinute), 120'000 + 120'000'000);
  ASSERT_TRUE(store->endActive("user:2001", 78));
  EXPECT_EQ(store->spend("user:2001", answer + 11 * kMinute), 120'000);
  EXPECT_EQ(store->activeCalls(), 0u);
}

TEST(LocalFraudStore, ActiveCallsAreBounded) {
  LocalFraudStoreLimits limits;
  limits.max_active_calls = 2;
  auto store = std::make_unique<LocalFraudStore>(limits);
  EXPECT_TRUE(store->startActive("user:1", 1, 100, 0));
  EXPECT_TRUE(store->startActive("user:2", 2, 100, 0));
  EXPECT_FALSE(store->startActive("user:3", 3, 100, 0)) << "full";
  EXPECT_TRUE(store->startActive("user:2", 2, 200, 0)) << "the same call again replaces it";
  EXPECT_EQ(store->activeCalls(), 2u);
  EXPECT_EQ(store->spend("user:2", 60'000), 200);
  EXPECT_TRUE(store->endActive("user:1", 1));
  EXPECT_TRUE(store->startActive("user:3", 3, 100, 0));
  EXPECT_EQ(store->spend("user:3", 60'000), 100);
}

TEST(LocalFraudStore, BlocksStayUntilCleared) {
  LocalFraudStoreLimits limits;
  limits.max_blocks = 3;
  auto store = std::make_unique<LocalFraudStore>(limits);
  EXPECT_FALSE(store->blocked("user:2001"));
  EXPECT_EQ(store->block("user:2001", "international_spike: 42 attempts", 1'000), BlockResult::Blocked);
  EXPECT_EQ(store->block("user:2001", "again", 2'000), BlockResult::AlreadyBlocked);
  EXPECT_EQ(store->block("trunk:carrier", "sequential_dialling", 3'000), BlockResult::Blocked);
  EXPECT_EQ(store->block("user:1000", std::string(1'000, 'r'), 4'000), BlockResult::Blocked);
  EXPECT_EQ(store->block("user:3000", "one too many", 5'000), BlockResult::TableFull);
  EXPECT_FALSE(store->blocked("user:3000"));
  EXPECT_EQ(store->blocked("user:2001"), "international_spike: 42 attempts") << "the first reason stays";
  EXPECT_FALSE(store->blocked("user:2002"));
  // Counting and time passing do not lift a block.
  store->countInWindow("user:2001", 400 * kDay, kMinute, 1);
  EXPECT_TRUE(store->blocked("user:2001"));

  auto list = store->blockedList();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].key, "trunk:carrier");
  EXPECT_EQ(list[0].since, 3'000);
  EXPECT_EQ(list[1].key, "user:1000");
  EXPECT_EQ(list[1].reason.size(), 256u);
  EXPECT_EQ(list[2].key, "user:2001");
  EXPECT_EQ(list[2].reason, "international_spike: 42 attempts");

  EXPECT_TRUE(store->clear("user:2001"));
  EXPECT_FALSE(store->clear("user:2001"));
  EXPECT_FALSE(store->blocked("user:2001"));
  EXPECT_EQ(store->blocks(), 2u);
  EXPECT_EQ(store->block("user:3000", "now there is room", 6'000), BlockResult::Blocked);
}

TEST(LocalFraudStore, EvictsTheLeastRecentlyUsedKeysButKeepsActiveOnes) {
  LocalFraudStoreLimits limits;
  limits.max_keys = 4 * LocalFraudStore::kShards;
  auto store = std::make_unique<LocalFraudStore>(limits);
  store->countInWindow("user:first", 0, kHour, 3);
  ASSERT_TRUE(store->startActive("user:busy", 1, 60'000, 0));
  store->addSpend("user:busy", 5'000, 0);
  store->countInWindow("user:kept", 0, kHour, 7);
  for (int i = 0; i < 20'000; ++i) {
    store->countInWindow("user:" + std::to_string(i), 1'000, kHour, 1);
    store->countInWindow("user:kept", 1'000, kHour, 0);  // used all along: never the oldest
  }
  EXPECT_LE(store->keys(), limits.max_keys);
  EXPECT_GE(store->keys(), limits.max_keys * 9 / 10) << "the shards fill about evenly";
  EXPECT_EQ(store->evictions(), 20'000u + 3 - store->keys());
  EXPECT_EQ(store->countInWindow("user:kept", 1'000, kHour, 0), 7u);
  EXPECT_EQ(store->countInWindow("user:first", 1'000, kHour, 0), 0u) << "evicted long ago";
  EXPECT_EQ(store->activeCalls(), 1u);
  EXPECT_EQ(store->spend("user:busy", 60'000), 5'000 + 60'000) << "a key with an active call was passed over";
}

TEST(LocalFraudStore, AnomalyStatePersistsPerKey) {
  auto store = std::make_unique<LocalFraudStore>();
  store->updateAnomaly("user:2001", [](AnomalyState& s) {
    EXPECT_EQ(s.first_hour, -1) << "fresh";
    s.run = 4;
  });
  std::uint16_t seen = 0;
  store->updateAnomaly("user:2001", [&](AnomalyState& s) { seen = s.run; });
  EXPECT_EQ(seen, 4);
  store->updateAnomaly("user:2002", [&](AnomalyState& s) { seen = s.run; });
  EXPECT_EQ(seen, 0);
}

TEST(LocalFraudStore, WorkersCountWithoutLosingEvents) {
  auto store = std::make_unique<LocalFraudStore>();
  constexpr int kThreads = 4;
  constexpr int kEach = 5'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&store, t] {
      const std::string own = "user:" + std::to_string(t);
      for (int i = 0; i < kEach; ++i) {
        store->countInWindow("trunk:carrier", 1'000, kHour, 1);
        store->countInWindow(own, 1'000, kHour, 1);
        store->addSpend("trunk:carrier", 3, 1'000);
        store->startActive(own, static_cast<std::uint64_t>(i), 60, 0);
        store->endActive(own, static_cast<std::uint64_t>(i));
        store->blocked("trunk:carrier");
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(store->countInWindow("trunk:carrier", 1'000, kHour, 0),
            static_cast<std::uint32_t>(kThreads * kEach));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(store->countInWindow("user:" + std::to_string(t), 1'000, kHour, 0),
              static_cast<std::uint32_t>(kEach));
  }
  EXPECT_EQ(store->spend("trunk:carrier", 1'000), 3 * kThreads * kEach);
  EXPECT_EQ(store->activeCalls(), 0u);
}

}  // namespace
}  // namespace palisade::policy::fraud
