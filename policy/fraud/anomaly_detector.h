#pragma once
// Toll-fraud anomalies per user or trunk key, learned over the FraudStore (so the baselines are
// shared like the other counters):
//
// - Spike: international attempts in the rolling last hour at least spike_factor × the
//   baseline, and at least min_spike_attempts. The baseline is attempts per hour, exponentially
//   weighted (half-life baseline_half_life_h): over all hours while the key is learning, then,
//   once it has learning_h of history, of the same hours of the week in past weeks (the rolling
//   hour spans this clock hour and the one before: their baselines are weighted by how much of
//   each it covers). A key without history has a baseline of 0, so min_spike_attempts alone
//   decides for it. Hours are UTC: hour of week 0 is Monday 00:00-01:00 UTC, whatever the time
//   zone of the users.
// - Sequential: sequential_run attempts in a row, each to the previous number plus one (same
//   number of digits, at most sequential_max_gap_s apart): number scanning. Dialling the same
//   number again neither breaks nor extends the run.
// - Short-call burst: short_calls.count answered calls of at most short_calls.max_duration_s
//   within short_calls.window_s to one prefix, the number without its last
//   short_calls.drop_digits digits (a range of a thousand numbers by default: IRSF ranges are
//   leased in blocks, and a fraudster's test calls stay in his).
//
// Each kind is raised at most once per key per repeat_after_s, so an attack gives one alert an
// hour per kind, not one per call. The detector only holds its settings: any worker may use it
// at once (the store serialises each key's update), and a reload replaces it without losing
// what the store has learned.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/fraud/fraud_store.h"

namespace palisade::policy::fraud {

struct AnomalySettings {
  double spike_factor = 5.0;
  std::uint32_t min_spike_attempts = 10;  // in the last hour; fewer never alert
  double baseline_half_life_h = 168;      // one week
  std::uint32_t learning_h = 336;         // two weeks; at least 168, so every hour of the week has a sample
  std::uint32_t sequential_run = 5;
  std::uint32_t sequential_max_gap_s = 600;
  struct ShortCalls {
    std::uint32_t count = 5;  // at most AnomalyState::kShortCalls (16)
    std::uint32_t max_duration_s = 10;
    std::uint32_t window_s = 600;
    std::uint32_t drop_digits = 3;
  } short_calls;
  std::uint32_t repeat_after_s = 3600;
};

enum class AnomalyKind { Spike, Sequential, ShortCallBurst };
// "international_spike", "sequential_dialling", "short_call_burst"
const char* anomalyKindName(AnomalyKind kind);

struct Anomaly {
  AnomalyKind kind = AnomalyKind::Spike;
  std::string key;
  std::string detail;  // with the numbers: "42 international attempts in the last hour, baseline 1.5/h (...)"
  // A spike of a key still learning, judged against its all-hours baseline: a new, busy key
  // raises a few on its first day, so a caller may choose not to block on these.
  bool learning = false;
  const char* name() const { return anomalyKindName(kind); }
};

// 0 for Monday 00:00-00:59 UTC ... 167 for Sunday 23:00-23:59 UTC.
int hourOfWeek(std::int64_t unix_ms);

class AnomalyDetector {
 public:
  // `store` outlives the detector.
  explicit AnomalyDetector(FraudStore& store, AnomalySettings settings = {});

  // An international call attempt by `key` to `e164` (digits, country code first), at set-up.
  std::optional<Anomaly> onInternationalAttempt(std::string_view key, std::string_view e164,
                                                std::int64_t unix_ms);
  // An answered call by `key` to `e164` ended after `duration_ms` (from answer); unanswered
  // attempts are not calls and are not reported here.
  std::optional<Anomaly> onCallEnded(std::string_view key, std::string_view e164, std::int64_t duration_ms,
                                     std::int64_t unix_ms);

  const AnomalySettings& settings() const { return settings_; }

 private:
  FraudStore& store_;
  AnomalySettings settings_;
  double hourly_decay_;  // of the overall baseline, per hour
  double weekly_decay_;  // of an hour-of-week baseline, per week (one sample a week)
};

}  // namespace palisade::policy::fraud
