#pragma once
// Rate limits as the generic cell rate algorithm (GCRA, ITU-T I.371): one number per limit,
// the theoretical arrival time of the next unit, instead of a token count and a refill time.
// A limit of `per_second` with `burst` lets `burst` units through back to back and then one
// every 1/per_second. Time is in microseconds so that rates above 1,000/s keep their spacing
// on a millisecond clock.
#include <algorithm>
#include <atomic>
#include <cstdint>

#include "core/base/clock.h"

namespace palisade::policy {

struct Rate {
  std::uint32_t per_second = 0;  // 0: no limit
  std::uint32_t burst = 1;       // units that may arrive at once

  std::int64_t intervalUs() const { return per_second == 0 ? 0 : 1'000'000 / per_second; }
  std::int64_t toleranceUs() const { return intervalUs() * (std::max<std::uint32_t>(burst, 1) - 1); }
};

inline std::int64_t microsOf(base::Millis now) { return now * 1000; }

// One owner (a worker's table): true when a unit is allowed at `now_us`, and it is taken.
inline bool takeUnit(std::int64_t& tat_us, std::int64_t now_us, const Rate& rate) {
  if (rate.per_second == 0) return true;
  std::int64_t start = std::max(tat_us, now_us);
  if (start - now_us > rate.toleranceUs()) return false;
  tat_us = start + rate.intervalUs();
  return true;
}

// The same limit shared by every worker (global and per-trunk calls per second): one atomic
// word, taken with a compare-and-swap, so no worker ever waits for another.
class SharedRate {
 public:
  bool take(std::int64_t now_us, const Rate& rate) {
    if (rate.per_second == 0) return true;
    std::int64_t tat = tat_us_.load(std::memory_order_relaxed);
    for (;;) {
      std::int64_t start = std::max(tat, now_us);
      if (start - now_us > rate.toleranceUs()) return false;
      if (tat_us_.compare_exchange_weak(tat, start + rate.intervalUs(), std::memory_order_relaxed))
        return true;
    }
  }

 private:
  std::atomic<std::int64_t> tat_us_{0};
};

}  // namespace palisade::policy
