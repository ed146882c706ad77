#include "core/event/inbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace palisade::event {
namespace {

TEST(Inbox, FifoAndBounded) {
  Inbox<int> inbox(4);
  for (int i = 0; i < 4; ++i) {
    auto item = std::make_unique<int>(i);
    ASSERT_TRUE(inbox.push(item));
    EXPECT_EQ(item, nullptr);
  }
  auto overflow = std::make_unique<int>(99);
  EXPECT_FALSE(inbox.push(overflow));
  ASSERT_NE(overflow, nullptr);  // the caller keeps what did not fit
  EXPECT_EQ(*overflow, 99);
  for (int i = 0; i < 4; ++i) {
    auto item = inbox.pop();
    ASSERT_NE(item, nullptr);
    EXPECT_EQ(*item, i);
  }
  EXPECT_EQ(inbox.pop(), nullptr);
  EXPECT_TRUE(inbox.push(overflow));  // room again after draining
}

TEST(Inbox, ManyProducersOneConsumerLoseNothing) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 20000;
  Inbox<int> inbox(256);
  std::atomic<int> refused{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        auto item = std::make_unique<int>(p * kPerProducer + i);
        while (!inbox.push(item)) {
          refused.fetch_add(1, std::memory_order_relaxed);
          std::this_thread::yield();
        }
      }
    });
  }
  std::vector<int> last_seen(kProducers, -1);
  int received = 0;
  while (received < kProducers * kPerProducer) {
    auto item = inbox.pop();
    if (!item) {
      std::this_thread::yield();
      continue;
    }
    int producer = *item / kPerProducer;
    int sequence = *item % kPerProducer;
    EXPECT_GT(sequence, last_seen[producer]);  // per-producer order is kept
    last_seen[producer] = sequence;
    ++received;
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(inbox.pop(), nullptr);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(last_seen[p], kPerProducer - 1);
}

}  // namespace
}  // namespace palisade::event
