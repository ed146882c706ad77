#pragma once
// Monotonic time for the SIP core. Workers read the steady clock; tests use a ManualClock.
#include <chrono>
#include <cstdint>

namespace palisade::base {

using Millis = std::int64_t;  // milliseconds on a monotonic clock

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  Millis now() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// Unix ms at `clock`'s zero: wall time that moves with the clock (a manual one in tests) is
// this plus clock.now().
inline std::int64_t wallBaseOf(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
             .count() -
         clock.now();
}

}  // namespace palisade::base
