#pragma once
// State that must be global across workers (DESIGN.md "Threading"): concurrent calls in total
// and per trunk or user, calls per second in total and per trunk or user, and whether the
// daemon is draining. Fixed tables of atomics keyed by stable rule ids. Any thread; lock-free.
#include <array>
#include <atomic>
#include <cstdint>

#include "policy/api/rate.h"

namespace palisade::policy {

class SharedCounters {
 public:
  static constexpr std::size_t kSlots = 4096;
  static constexpr std::uint16_t kGlobalCalls = 0;  // every call in progress (limits.max_calls)
  static constexpr std::uint16_t kGlobalRate = 0;   // every new call (limits.max_cps)

  // Takes one unit of `id` unless that would exceed `limit`. True when taken (release() follows).
  bool tryAcquire(std::uint16_t id, std::uint32_t limit) {
    auto& slot = slots_[id % kSlots];
    std::uint32_t current = slot.load(std::memory_order_relaxed);
    while (current < limit) {
      if (slot.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel)) return true;
    }
    return false;
  }
  void release(std::uint16_t id) { slots_[id % kSlots].fetch_sub(1, std::memory_order_acq_rel); }
  std::uint32_t value(std::uint16_t id) const { return slots_[id % kSlots].load(std::memory_order_relaxed); }

  // One new call of `id` at `now_us` under `rate` (calls per second); false when over it.
  bool takeRate(std::uint16_t id, std::int64_t now_us, const Rate& rate) {
    return rates_[id % kSlots].take(now_us, rate);
  }

  // Overload control: each worker says on every tick whether it is overloaded; new work is
  // shed while any is.
  void setOverloaded(std::uint32_t worker, bool overloaded) {
    auto& flag = overloaded_[worker % kMaxWorkers];
    if (flag.exchange(overloaded, std::memory_order_relaxed) != overloaded)
      overloaded_count_.fetch_add(overloaded ? 1 : -1, std::memory_order_relaxed);
  }
  bool overloaded() const { return overloaded_count_.load(std::memory_order_relaxed) > 0; }

  // SIGTERM: new calls are refused while the calls in progress end.
  void startDraining() { draining_.store(true, std::memory_order_release); }
  bool draining() const { return draining_.load(std::memory_order_acquire); }

 private:
  std::array<std::atomic<std::uint32_t>, kSlots> slots_{};
  std::array<SharedRate, kSlots> rates_{};
  std::atomic<bool> draining_{false};
  static constexpr std::size_t kMaxWorkers = 256;
  std::array<std::atomic<bool>, kMaxWorkers> overloaded_{};
  std::atomic<int> overloaded_count_{0};
};

}  // namespace palisade::policy
