#pragma once
// Counters that must be global across workers (concurrent calls in total and per trunk or
// user, later CPS buckets and the overload level): a fixed table of atomics keyed by stable
// rule ids (DESIGN.md "Threading"). Any thread; lock-free.
#include <array>
#include <atomic>
#include <cstdint>

namespace palisade::policy {

class SharedCounters {
 public:
  static constexpr std::size_t kSlots = 4096;
  static constexpr std::uint16_t kGlobalCalls = 0;  // every call in progress (limits.max_calls)

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

 private:
  std::array<std::atomic<std::uint32_t>, kSlots> slots_{};
};

}  // namespace palisade::policy
