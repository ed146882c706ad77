#include "policy/fraud/anomaly_detector.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace palisade::policy::fraud {

namespace {

constexpr std::int64_t kMinuteMs = 60'000;
constexpr std::int64_t kHourMs = 3'600'000;
constexpr std::int64_t kHoursOfWeek = static_cast<std::int64_t>(AnomalyState::kHoursOfWeek);
constexpr std::int64_t kMinutes = static_cast<std::int64_t>(AnomalyState::kMinutes);

std::int64_t floorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// The Unix epoch was a Thursday: its first hour is hour 72 of a week that starts on Monday.
std::size_t weekSlot(std::int64_t hour) {
  return static_cast<std::size_t>(((hour + 72) % kHoursOfWeek + kHoursOfWeek) % kHoursOfWeek);
}

std::size_t minuteSlot(std::int64_t minute) {
  return static_cast<std::size_t>((minute % kMinutes + kMinutes) % kMinutes);
}

// The digits of `digits` as a number; false for an empty string, a non-digit or more than 19.
bool numberOf(std::string_view digits, std::uint64_t& value) {
  if (digits.empty() || digits.size() > 19) return false;
  value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

double meanOf(double sum, double weight) { return weight > 0 ? sum / weight : 0; }

// One more sample for an exponentially weighted mean kept as a sum and its weight.
template <typename T>
void sample(T& sum, T& weight, double decay, double value) {
  sum = static_cast<T>(decay * sum + (1 - decay) * value);
  weight = static_cast<T>(decay * weight + (1 - decay));
}

// `count` zero samples at once: the weight they add is 1 − decay^count.
template <typename T>
void zeros(T& sum, T& weight, double decay_count) {
  sum = static_cast<T>(sum * decay_count);
  weight = static_cast<T>(weight * decay_count + (1 - decay_count));
}

// Moves the count on to `hour`: the hour counted goes into the overall baseline at once and
// into its hour-of-week baseline an hour later (AnomalyState); hours without attempts go in as
// zeros.
void closeHours(AnomalyState& s, std::int64_t hour, double hourly, double weekly) {
  const std::int64_t silent = hour - s.hour - 1;
  sample(s.overall_sum, s.overall_weight, hourly, s.hour_attempts);
  if (silent > 0) zeros(s.overall_sum, s.overall_weight, std::pow(hourly, static_cast<double>(silent)));
  auto weekSample = [&](std::int64_t h, double value) {
    std::size_t slot = weekSlot(h);
    sample(s.week_sum[slot], s.week_weight[slot], weekly, value);
  };
  if (s.pending_hour >= 0) weekSample(s.pending_hour, s.pending_attempts);
  if (silent == 0) {
    s.pending_hour = s.hour;
    s.pending_attempts = s.hour_attempts;
  } else {
    weekSample(s.hour, s.hour_attempts);
    // The silent hours but the last, which waits like any previous hour. Whole weeks give
    // every hour of the week the same number of zeros; the rest one each.
    const std::int64_t zero_hours = silent - 1;
    if (std::int64_t weeks = zero_hours / kHoursOfWeek; weeks > 0) {
      const double decay = std::pow(weekly, static_cast<double>(weeks));
      for (std::size_t i = 0; i < AnomalyState::kHoursOfWeek; ++i) {
        zeros(s.week_sum[i], s.week_weight[i], decay);
      }
    }
    for (std::int64_t i = 0; i < zero_hours % kHoursOfWeek; ++i) {
      std::size_t slot = weekSlot(s.hour + 1 + i);
      zeros(s.week_sum[slot], s.week_weight[slot], weekly);
    }
    s.pending_hour = hour - 1;
    s.pending_attempts = 0;
  }
  s.hour = hour;
  s.hour_attempts = 0;
}

bool mayRaise(const AnomalyState& state, AnomalyKind kind, std::int64_t now_ms, std::int64_t repeat_ms) {
  return now_ms - state.last_alert_ms[static_cast<std::size_t>(kind)] >= repeat_ms;
}

}  // namespace

const char* anomalyKindName(AnomalyKind kind) {
  switch (kind) {
    case AnomalyKind::Spike:
      return "international_spike";
    case AnomalyKind::Sequential:
      return "sequential_dialling";
    case AnomalyKind::ShortCallBurst:
      break;
  }
  return "short_call_burst";
}

int hourOfWeek(std::int64_t unix_ms) { return static_cast<int>(weekSlot(floorDiv(unix_ms, kHourMs))); }

AnomalyDetector::AnomalyDetector(FraudStore& store, AnomalySettings settings)
    : store_(store), settings_(settings) {
  if (!(settings_.baseline_half_life_h > 0)) {
    settings_.baseline_half_life_h = AnomalySettings{}.baseline_half_life_h;
  }
  settings_.learning_h = std::max<std::uint32_t>(settings_.learning_h, AnomalyState::kHoursOfWeek);
  settings_.sequential_run = std::max<std::uint32_t>(settings_.sequential_run, 2);
  settings_.short_calls.count =
      std::clamp<std::uint32_t>(settings_.short_calls.count, 1, AnomalyState::kShortCalls);
  hourly_decay_ = std::pow(0.5, 1.0 / settings_.baseline_half_life_h);
  weekly_decay_ = std::pow(0.5, static_cast<double>(kHoursOfWeek) / settings_.baseline_half_life_h);
}

std::optional<Anomaly> AnomalyDetector::onInternationalAttempt(std::string_view key, std::string_view e164,
                                                               std::int64_t unix_ms) {
  const std::int64_t hour = floorDiv(unix_ms, kHourMs);
  const std::int64_t minute = floorDiv(unix_ms, kMinuteMs);
  std::uint64_t number = 0;
  const bool numeric = numberOf(e164, number);
  const auto digits = static_cast<std::uint8_t>(e164.size());
  const auto repeat_ms = static_cast<std::int64_t>(settings_.repeat_after_s) * 1000;
  const auto gap_ms = static_cast<std::int64_t>(settings_.sequential_max_gap_s) * 1000;

  // What the update found; overwritten on every run of it (a shared store may retry).
  std::optional<AnomalyKind> raised;
  std::uint32_t in_last_hour = 0;
  double baseline = 0;
  bool learned = false;
  std::uint16_t run = 0;

  store_.updateAnomaly(key, [&](AnomalyState& s) {
    raised.reset();
    if (s.first_hour < 0) {
      s.first_hour = hour;
      s.hour = hour;
      s.hour_attempts = 0;
    } else if (hour > s.hour) {
      closeHours(s, hour, hourly_decay_, weekly_decay_);
    }
    // An attempt timed a little before the current hour (another worker's clock read) counts
    // in the current one.
    s.hour_attempts = s.hour_attempts == UINT32_MAX ? UINT32_MAX : s.hour_attempts + 1;

    // The rolling hour, by minutes.
    if (s.minute < 0 || minute - s.minute >= kMinutes) {
      s.per_minute.fill(0);
      s.minute = minute;
    }
    while (s.minute < minute) s.per_minute[minuteSlot(++s.minute)] = 0;
    if (minute > s.minute - kMinutes) {
      auto& bucket = s.per_minute[minuteSlot(minute)];
      if (bucket < UINT16_MAX) ++bucket;
    }
    in_last_hour = 0;
    for (std::uint16_t n : s.per_minute) in_last_hour += n;

    learned = hour - s.first_hour >= static_cast<std::int64_t>(settings_.learning_h);
    if (learned) {
      const std::size_t now_slot = weekSlot(hour);
      const std::size_t before = weekSlot(hour - 1);
      const double into_hour = static_cast<double>(unix_ms - hour * kHourMs) / kHourMs;
      baseline = into_hour * meanOf(s.week_sum[now_slot], s.week_weight[now_slot]) +
                 (1 - into_hour) * meanOf(s.week_sum[before], s.week_weight[before]);
    } else {
      baseline = meanOf(s.overall_sum, s.overall_weight);
    }
    const bool spike =
        in_last_hour >= settings_.min_spike_attempts && in_last_hour >= settings_.spike_factor * baseline;

    if (numeric) {
      const bool close = unix_ms - s.last_attempt_ms <= gap_ms;
      if (close && digits == s.last_digits && number == s.last_number + 1) {
        if (s.run < UINT16_MAX) ++s.run;
      } else if (!(close && digits == s.last_digits && number == s.last_number)) {
        s.run = 1;
      }
      s.last_number = number;
      s.last_digits = digits;
      s.last_attempt_ms = unix_ms;
    }
    run = s.run;
    const bool sequential = numeric && s.run >= settings_.sequential_run;

    if (spike && mayRaise(s, AnomalyKind::Spike, unix_ms, repeat_ms)) {
      raised = AnomalyKind::Spike;
    } else if (sequential && mayRaise(s, AnomalyKind::Sequential, unix_ms, repeat_ms)) {
      raised = AnomalyKind::Sequential;
    }
    if (raised) s.last_alert_ms[static_cast<std::size_t>(*raised)] = unix_ms;
  });

  if (!raised) return std::nullopt;
  Anomaly anomaly{*raised, std::string(key), {}, *raised == AnomalyKind::Spike && !learned};
  if (*raised == AnomalyKind::Spike) {
    anomaly.detail =
        fmt::format("{} international attempts in the last hour, baseline {:.1f}/h ({})", in_last_hour,
                    baseline, learned ? "this hour of the week" : "all hours, still learning");
  } else {
    anomaly.detail = fmt::format("{} attempts in a row to incrementing numbers, the last +{}", run, e164);
  }
  return anomaly;
}

std::optional<Anomaly> AnomalyDetector::onCallEnded(std::string_view key, std::string_view e164,
                                                    std::int64_t duration_ms, std::int64_t unix_ms) {
  const auto& rule = settings_.short_calls;
  if (duration_ms < 0 || duration_ms > static_cast<std::int64_t>(rule.max_duration_s) * 1000) {
    return std::nullopt;
  }
  std::string_view prefix =
      e164.size() > rule.drop_digits ? e164.substr(0, e164.size() - rule.drop_digits) : e164;
  std::uint64_t value = 0;
  if (!numberOf(prefix, value)) return std::nullopt;
  const auto digits = static_cast<std::uint8_t>(prefix.size());
  const auto window_ms = static_cast<std::int64_t>(rule.window_s) * 1000;
  const auto repeat_ms = static_cast<std::int64_t>(settings_.repeat_after_s) * 1000;

  bool raised = false;
  std::uint32_t calls = 0;
  store_.updateAnomaly(key, [&](AnomalyState& s) {
    s.short_calls[s.next_short_call] = AnomalyState::ShortCall{unix_ms, value, digits};
    s.next_short_call = static_cast<std::uint8_t>((s.next_short_call + 1) % AnomalyState::kShortCalls);
    calls = 0;
    for (const auto& call : s.short_calls) {
      if (call.digits == digits && call.prefix == value && unix_ms - call.at_ms < window_ms) ++calls;
    }
    raised = calls >= rule.count && mayRaise(s, AnomalyKind::ShortCallBurst, unix_ms, repeat_ms);
    if (raised) s.last_alert_ms[static_cast<std::size_t>(AnomalyKind::ShortCallBurst)] = unix_ms;
  });

  if (!raised) return std::nullopt;
  return Anomaly{AnomalyKind::ShortCallBurst, std::string(key),
                 fmt::format("{} calls of at most {} s to +{}{} within {} s", calls, rule.max_duration_s,
                             prefix, std::string(e164.size() - prefix.size(), 'x'), rule.window_s),
                 false};
}

}  // namespace palisade::policy::fraud
