#include "core/event/timer_queue.h"

#include <gtest/gtest.h>

#include <vector>

namespace palisade::event {
namespace {

TEST(TimerQueue, RunsDueCallbacksInDeadlineOrder) {
  TimerQueue timers;
  std::vector<int> fired;
  timers.schedule(300, [&] { fired.push_back(3); });
  timers.schedule(100, [&] { fired.push_back(1); });
  timers.schedule(200, [&] { fired.push_back(2); });
  timers.runDue(150);
  EXPECT_EQ(fired, (std::vector<int>{1}));
  EXPECT_EQ(timers.nextDeadline(), 200);
  timers.runDue(1000);
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(timers.nextDeadline(), -1);
}

TEST(TimerQueue, CancelledTimersNeverFire) {
  TimerQueue timers;
  int fired = 0;
  TimerQueue::Id id = timers.schedule(100, [&] { ++fired; });
  timers.cancel(id);
  EXPECT_EQ(id, 0u);
  timers.cancel(id);  // idempotent
  timers.runDue(200);
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(timers.size(), 0u);
}

TEST(TimerQueue, CallbacksMayScheduleAndCancel) {
  TimerQueue timers;
  std::vector<int> fired;
  TimerQueue::Id later = timers.schedule(500, [&] { fired.push_back(5); });
  timers.schedule(100, [&] {
    fired.push_back(1);
    timers.cancel(later);
    timers.schedule(150, [&] { fired.push_back(2); });  // due within the same run
  });
  timers.runDue(200);
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
  timers.runDue(1000);
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace palisade::event
