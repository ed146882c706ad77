#pragma once
// What the toll-fraud rules learn about users and trunks and must share across workers, and
// across nodes once there are several (DESIGN.md "Beyond one machine"): rolling counts, spend
// over 24 h with the projected cost of active calls, blocked sources, and the anomaly
// detector's baselines. One small interface, so that a shared store (Redis) can replace the
// in-process one (local_fraud_store.h) without touching the stages.
//
// Keys name a source: "user:2001", "trunk:carrier". Times are passed in, in milliseconds, so
// tests drive a manual clock; all times given to one store must come from the same clock (for a
// store shared by nodes, Unix time). Every method may be called from any worker thread, at call
// set-up and call end, never per packet.
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/base/clock.h"

namespace palisade::policy::fraud {

struct BlockRecord {
  std::string key;
  std::string reason;
  base::Millis since = 0;
};

enum class BlockResult {
  Blocked,         // this call blocked the key
  AlreadyBlocked,  // it was blocked already; the first reason stays
  TableFull,       // the store holds its maximum of blocks: nothing recorded
};

// What the anomaly detector (anomaly_detector.h) keeps per key. Fixed in size (about 2 KiB),
// so a store bounds its memory by its number of keys and a shared store can keep it as one
// value. Hours are UTC hours since the Unix epoch; minutes likewise.
struct AnomalyState {
  static constexpr std::size_t kMinutes = 60;
  static constexpr std::size_t kHoursOfWeek = 168;
  static constexpr std::size_t kShortCalls = 16;
  static constexpr std::size_t kKinds = 3;
  static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::min() / 2;

  // International attempts: the hour being counted (not in the baselines until it is over),
  // the hour before it (in the overall baseline, not yet in its hour-of-week one, so that the
  // hour an attack started in does not raise the baseline the next hour is compared with), and
  // the last 60 minutes, for the rolling hour.
  std::int64_t first_hour = -1;  // the first hour with an attempt: learning starts there
  std::int64_t hour = -1;
  std::uint32_t hour_attempts = 0;
  std::int64_t pending_hour = -1;
  std::uint32_t pending_attempts = 0;
  std::int64_t minute = -1;  // the newest minute in per_minute
  std::array<std::uint16_t, kMinutes> per_minute{};
  // Baselines of attempts per hour: exponentially weighted sums over zero-initialised state and
  // the weight they carry, so sum / weight is the weighted mean of the hours seen so far (a
  // young baseline is not biased toward zero). One over all hours, one per hour of the week.
  double overall_sum = 0;
  double overall_weight = 0;
  std::array<float, kHoursOfWeek> week_sum{};
  std::array<float, kHoursOfWeek> week_weight{};
  // Sequential dialling: the last number and how many attempts in a row incremented by one.
  std::uint64_t last_number = 0;
  std::uint8_t last_digits = 0;
  std::uint16_t run = 0;
  std::int64_t last_attempt_ms = kNever;
  // The last short calls (a ring), for bursts to one prefix.
  struct ShortCall {
    std::int64_t at_ms = kNever;
    std::uint64_t prefix = 0;
    std::uint8_t digits = 0;
  };
  std::array<ShortCall, kShortCalls> short_calls{};
  std::uint8_t next_short_call = 0;
  // When each kind of anomaly was last raised (AnomalyKind order).
  std::array<std::int64_t, kKinds> last_alert_ms{kNever, kNever, kNever};
};

// A non-owning reference to the function that updates a key's AnomalyState (std::function
// would allocate per call). The function may be run more than once for one update (a shared
// store retries when another node changed the state meanwhile), so it must depend only on the
// state it is given and overwrite, not accumulate, what it reports.
class AnomalyUpdate {
 public:
  template <typename F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, AnomalyUpdate> && std::is_invocable_v<F&, AnomalyState&>)
      AnomalyUpdate(F&& f)  // NOLINT(google-explicit-constructor): passed like a std::function
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* object, AnomalyState& state) {
          (*static_cast<std::remove_reference_t<F>*>(object))(state);
        }) {}
  void operator()(AnomalyState& state) const { call_(object_, state); }

 private:
  void* object_;
  void (*call_)(void*, AnomalyState&);
};

class FraudStore {
 public:
  virtual ~FraudStore() = default;

  // Adds `add` events for `key` at `now_ms` and returns the events of the window that ends now
  // (calls per minute with add 1; a read with add 0). Each (key, window) pair is its own count.
  // The window is kept in 60 buckets and one more: an event is never forgotten before it is
  // `window_ms` old, and at most 1/60 of the window after (the count errs toward more).
  virtual std::uint32_t countInWindow(std::string_view key, base::Millis now_ms, base::Millis window_ms,
                                      std::uint32_t add) = 0;

  // Spend in micro-units (rate_table.h). A finished call's cost counts at the time it is added
  // (its end) for the next 24 h, in 15-minute buckets: it leaves the sum 24 h to 24 h 15 min
  // later (errs toward more). Negative amounts are ignored.
  virtual void addSpend(std::string_view key, std::int64_t micros, base::Millis now_ms) = 0;
  // An answered call whose cost accrues until endActive. Starting a token twice replaces the
  // first. False when the store holds its maximum of active calls (nothing recorded).
  virtual bool startActive(std::string_view key, std::uint64_t call_token, std::int64_t micros_per_minute,
                           base::Millis answer_ms) = 0;
  // False when the call was not active. At a call's end, add its cost before ending it: the
  // sum then briefly counts the call twice rather than not at all.
  virtual bool endActive(std::string_view key, std::uint64_t call_token) = 0;
  // Committed spend of the last 24 h plus, for each active call, costMicros(price, now − answer).
  virtual std::int64_t spend(std::string_view key, base::Millis now_ms) = 0;

  // Blocks never expire: an operator clears them (the management endpoint). `reason` is kept
  // to 256 bytes.
  virtual BlockResult block(std::string_view key, std::string_view reason, base::Millis now_ms) = 0;
  virtual std::optional<std::string> blocked(std::string_view key) const = 0;
  // False when the key was not blocked.
  virtual bool clear(std::string_view key) = 0;
  // Sorted by key.
  virtual std::vector<BlockRecord> blockedList() const = 0;

  // Runs `update` on the key's anomaly state (default-constructed the first time) as one atomic
  // step. `update` must be short and do no I/O: the local store runs it under a lock.
  virtual void updateAnomaly(std::string_view key, AnomalyUpdate update) = 0;
};

}  // namespace palisade::policy::fraud
