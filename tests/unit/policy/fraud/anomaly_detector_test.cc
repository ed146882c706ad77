#include "policy/fraud/anomaly_detector.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "policy/fraud/local_fraud_store.h"

namespace palisade::policy::fraud {
namespace {

constexpr std::int64_t kSecond = 1'000;
constexpr std::int64_t kMinute = 60 * kSecond;
constexpr std::int64_t kHour = 60 * kMinute;
constexpr std::int64_t kDay = 24 * kHour;
constexpr std::int64_t kWeek = 7 * kDay;
constexpr std::int64_t kMonday = 1'704'067'200'000;  // 2024-01-01 00:00 UTC, a Monday

struct Alert {
  Anomaly anomaly;
  std::int64_t at = 0;
};

// An office's international traffic: 27 to 33 attempts an hour from 08:00 to 17:00 UTC on
// weekdays, 2 an hour until 19:00, one attempt every fourth hour otherwise, spread evenly over
// each hour. The numbers
// step by 7919, so they never run sequentially.
class Office {
 public:
  explicit Office(AnomalyDetector& detector, std::string key = "user:2001")
      : detector_(detector), key_(std::move(key)) {}

  static int attemptsIn(std::int64_t hour_start) {
    int how = hourOfWeek(hour_start);
    int day = how / 24, hour = how % 24;
    if (day < 5 && hour >= 8 && hour < 17) return 27 + static_cast<int>((hour_start / kHour * 5) % 7);
    if (day < 5 && hour >= 17 && hour < 19) return 2;  // the evening: the busy hour is still in the window
    return hour % 4 == 0 ? 1 : 0;
  }
  // Plays `hours` hours from `start` and returns the alerts raised.
  std::vector<Alert> play(std::int64_t start, std::int64_t hours) {
    std::vector<Alert> alerts;
    for (std::int64_t h = 0; h < hours; ++h) {
      std::int64_t hour_start = start + h * kHour;
      int n = attemptsIn(hour_start);
      for (int i = 0; i < n; ++i) attempt(hour_start + (2 * i + 1) * kHour / (2 * n), alerts);
    }
    return alerts;
  }
  void attempt(std::int64_t at, std::vector<Alert>& alerts) {
    sequence_ = (sequence_ + 7919) % 100'000;
    std::string number = "4420794" + std::to_string(100'000 + sequence_).substr(1);
    if (auto anomaly = detector_.onInternationalAttempt(key_, number, at)) alerts.push_back({*anomaly, at});
  }

 private:
  AnomalyDetector& detector_;
  std::string key_;
  std::int64_t sequence_ = 0;
};

int leadingCount(const std::string& detail) { return std::stoi(detail); }

TEST(AnomalyDetector, HourOfWeekIsUtcFromMonday) {
  EXPECT_EQ(hourOfWeek(kMonday), 0);
  EXPECT_EQ(hourOfWeek(kMonday + 3 * kHour + 59 * kMinute), 3);
  EXPECT_EQ(hourOfWeek(kMonday + 6 * kDay + 23 * kHour + 30 * kMinute), 167);
  EXPECT_EQ(hourOfWeek(kMonday + kWeek), 0);
  EXPECT_EQ(hourOfWeek(0), 72) << "1970-01-01 was a Thursday";
}

TEST(AnomalyDetector, NoAlertDuringANormalWeekOfLearnedTraffic) {
  LocalFraudStore store;
  AnomalyDetector detector(store);
  Office office(detector);
  // Learning: only the very first day may alert, before there is any baseline to speak of.
  auto learning = office.play(kMonday, 2 * 7 * 24);
  for (const Alert& alert : learning) {
    EXPECT_LT(alert.at, kMonday + kDay) << alert.anomaly.name() << ": " << alert.anomaly.detail;
  }
  // Learned: hour-of-week baselines. Two more ordinary weeks, busy hours and quiet ones.
  auto learned = office.play(kMonday + 2 * kWeek, 2 * 7 * 24);
  for (const Alert& alert : learned) {
    ADD_FAILURE() << "at hour of week " << hourOfWeek(alert.at) << ": " << alert.anomaly.name() << ": "
                  << alert.anomaly.detail;
  }
  EXPECT_GE(Office::attemptsIn(kMonday + 2 * kWeek + 10 * kHour), 27) << "busy hours are above the minimum";
}

TEST(AnomalyDetector, ATenfoldSpikeAlertsOncePerHour) {
  LocalFraudStore store;
  AnomalyDetector detector(store);
  Office office(detector);
  office.play(kMonday, 3 * 7 * 24 + 10);                       // to week 4, Monday 10:00
  const std::int64_t busy = kMonday + 3 * kWeek + 10 * kHour;  // a busy hour: baseline about 30/h
  ASSERT_EQ(hourOfWeek(busy), 10);
  std::vector<Alert> alerts;
  for (int i = 0; i < 300; ++i) office.attempt(busy + i * 12 * kSecond, alerts);  // 300 in the hour
  ASSERT_EQ(alerts.size(), 1u) << "one alert for the hour, not one per attempt";
  const Anomaly& spike = alerts[0].anomaly;
  EXPECT_EQ(spike.kind, AnomalyKind::Spike);
  EXPECT_STREQ(spike.name(), "international_spike");
  EXPECT_EQ(spike.key, "user:2001");
  EXPECT_NE(spike.detail.find("this hour of the week"), std::string::npos) << spike.detail;
  EXPECT_FALSE(spike.learning);
  EXPECT_NE(spike.detail.find(" international attempts in the last hour, baseline "), std::string::npos)
      << spike.detail;
  // Five times a baseline of 27 to 33, counting the previous hour's attempts still in the window.
  EXPECT_GE(leadingCount(spike.detail), 135) << spike.detail;
  EXPECT_LE(leadingCount(spike.detail), 166) << spike.detail;
  // The attack goes on: the next hour alerts again, against the same baseline (the attack's
  // hour is not yet in it).
  alerts.clear();
  for (int i = 0; i < 300; ++i) office.attempt(busy + kHour + i * 12 * kSecond, alerts);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_GE(alerts[0].at - busy, kHour);
}

TEST(AnomalyDetector, ASpikeInAQuietHourAlertsAtTheMinimum) {
  LocalFraudStore store;
  AnomalyDetector detector(store);
  Office office(detector);
  office.play(kMonday, 3 * 7 * 24 + 5 * 24 + 3);  // to week 4, Saturday 03:00
  const std::int64_t night = kMonday + 3 * kWeek + 5 * kDay + 3 * kHour;
  ASSERT_EQ(hourOfWeek(night), 5 * 24 + 3);
  std::vector<Alert> alerts;
  for (int i = 0; i < 9; ++i) office.attempt(night + i * kMinute, alerts);
  EXPECT_TRUE(alerts.empty()) << "9 attempts are below min_spike_attempts";
  office.attempt(night + 9 * kMinute, alerts);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].anomaly.kind, AnomalyKind::Spike);
  EXPECT_EQ(leadingCount(alerts[0].anomaly.detail), 10) << alerts[0].anomaly.detail;
  EXPECT_NE(alerts[0].anomaly.detail.find("baseline 0."), std::string::npos) << alerts[0].anomaly.detail;
  // 100 more within the hour: not repeated.
  for (int i = 0; i < 100; ++i) office.attempt(night + 10 * kMinute + i * 20 * kSecond, alerts);
  EXPECT_EQ(alerts.size(), 1u);
}

TEST(AnomalyDetector, WhileLearningTheBaselineIsOverAllHours) {
  LocalFraudStore store;
  AnomalyDetector detector(store);
  const std::string key = "trunk:carrier";
  std::uint64_t n = 0;
  auto attempt = [&](std::int64_t at) {
    n += 7919;
    return detector.onInternationalAttempt(key, std::to_string(33'100'000'000 + n % 100'000'000), at);
  };
  // Four attempts an hour, every hour, for two days: below the minimum, no alert.
  for (std::int64_t h = 0; h < 48; ++h) {
    for (int i = 0; i < 4; ++i) {
      ASSERT_FALSE(attempt(kMonday + h * kHour + (2 * i + 1) * 15 * kMinute / 2));
    }
  }
  // Then 20 at once: five times the baseline of 4/h, with the last hour's 4 in the window.
  const std::int64_t burst = kMonday + 48 * kHour;
  std::optional<Anomaly> alert;
  int sent = 0;
  while (!alert && sent < 40) alert = attempt(burst + (sent++) * kSecond);
  ASSERT_TRUE(alert);
  EXPECT_GE(sent, 16);
  EXPECT_LE(sent, 17);
  EXPECT_NE(alert->detail.find("baseline 4.0/h (all hours, still learning)"), std::string::npos)
      << alert->detail;
  EXPECT_TRUE(alert->learning);
}

TEST(AnomalyDetector, AKeyWithoutHistoryAlertsAtTheMinimum) {
  LocalFraudStore store;
  AnomalyDetector detector(store);
  for (int i = 0; i < 9; ++i) {
    ASSERT_FALSE(
        detector.onInternationalAttempt("user:new", std::to_string(88'212'340'000LL + i * 37), kMonday + i));
  }
  auto alert = detector.onInternationalAttempt("user:new", "88212349999", kMonday + 9);
  ASSERT_TRUE(alert);
  EXPECT_EQ(alert->detail,
            "10 international attempts in the last hour, baseline 0.0/h (all hours, still learning)");
}

TEST(AnomalyDetector, SequentialDiallingAlertsAfterTheRun) {
  LocalFraudStore store;
  AnomalySettings settings;
  settings.min_spike_attempts = 1'000;  // no spike from this many attempts in a few minutes
  AnomalyDetector detector(store, settings);
  std::int64_t t = kMonday;
  auto attempt = [&](const char* number) {
    return detector.onInternationalAttempt("user:2001", number, t += kSecond);
  };
  EXPECT_FALSE(attempt("442079460100"));
  EXPECT_FALSE(attempt("442079460101"));
  EXPECT_FALSE(attempt("442079460101")) << "a retry neither breaks nor extends the run";
  EXPECT_FALSE(attempt("442079460102"));
  EXPECT_FALSE(attempt("442079460103"));
  auto alert = attempt("442079460104");
  ASSERT_TRUE(alert);
  EXPECT_EQ(alert->kind, AnomalyKind::Sequential);
  EXPECT_STREQ(alert->name(), "sequential_dialling");
  EXPECT_EQ(alert->detail, "5 attempts in a row to incrementing numbers, the last +442079460104");
  EXPECT_FALSE(attempt("442079460105")) << "not repeated within the hour";
  EXPECT_FALSE(attempt("442079460106"));

  // Runs that are broken: by another number, by a change of length, by a pause.
  AnomalyDetector other(store, settings);
  t = kMonday;
  auto broken = [&](const char* number, std::int64_t after) {
    return other.onInternationalAttempt("user:2002", number, t += after);
  };
  for (const char* number : {"33142278180", "33142278181", "33142278182", "33142278183"}) {
    EXPECT_FALSE(broken(number, kSecond));
  }
  EXPECT_FALSE(broken("4915112345678", kSecond));
  EXPECT_FALSE(broken("4915112345679", kSecond));
  EXPECT_FALSE(broken("491511234568", kSecond)) << "one digit fewer";
  EXPECT_FALSE(broken("491511234569", kSecond));
  EXPECT_FALSE(broken("491511234570", kSecond));
  EXPECT_FALSE(broken("491511234571", kSecond));
  EXPECT_FALSE(broken("491511234572", 11 * kMinute)) << "more than 10 minutes after the last";
  EXPECT_FALSE(broken("491511234573", kSecond));
  EXPECT_FALSE(broken("491511234574", kSecond));
  EXPECT_FALSE(broken("491511234575", kSecond));
  EXPECT_TRUE(broken("491511234576", kSecond));

  // An hour after the first alert a new run alerts again.
  t = kMonday + kHour + 10 * kSecond;
  for (const char* number : {"442079460200", "442079460201", "442079460202", "442079460203"}) {
    EXPECT_FALSE(attempt(number));
  }
  EXPECT_TRUE(attempt("442079460204"));
}

TEST(AnomalyDetector, EachKindIsRaisedOnItsOwn) {
  LocalFraudStore store;
  AnomalyDetector detector(store);
  std::vector<AnomalyKind> kinds;
  std::int64_t t = kMonday;
  for (const char* number :
       {"4420794601", "4420794622", "4420794643", "4420794664", "4420794685", "4420794606", "4420794627",
        "4420794648", "4420794669", "4420794690", "4420794691", "4420794692", "4420794693", "4420794694"}) {
    if (auto alert = detector.onInternationalAttempt("user:2001", number, t += kSecond)) {
      kinds.push_back(alert->kind);
    }
  }
  // The 10th attempt is a spike for a key without history; the 14th ends a run of five.
  ASSERT_EQ(kinds.size(), 2u);
  EXPECT_EQ(kinds[0], AnomalyKind::Spike);
  EXPECT_EQ(kinds[1], AnomalyKind::Sequential);
}

TEST(AnomalyDetector, ABurstOfShortCallsToOnePrefixAlerts) {
  LocalFraudStore store;
  AnomalyDetector detector(store);
  std::int64_t t = kMonday;
  auto ended = [&](const char* number, std::int64_t duration, std::int64_t after = kMinute) {
    return detector.onCallEnded("user:2001", number, duration, t += after);
  };
  EXPECT_FALSE(ended("442079460123", 3 * kSecond));
  EXPECT_FALSE(ended("442079460999", 10 * kSecond));
  EXPECT_FALSE(ended("442079460555", 30 * kSecond)) << "not short";
  EXPECT_FALSE(ended("442079461000", 2 * kSecond)) << "another prefix";
  EXPECT_FALSE(ended("33142278186", 2 * kSecond)) << "another prefix";
  EXPECT_FALSE(ended("442079460001", 1 * kSecond));
  EXPECT_FALSE(ended("442079460002", 0));
  auto alert = ended("442079460003", 4 * kSecond);
  ASSERT_TRUE(alert);
  EXPECT_EQ(alert->kind, AnomalyKind::ShortCallBurst);
  EXPECT_STREQ(alert->name(), "short_call_burst");
  EXPECT_EQ(alert->key, "user:2001");
  EXPECT_EQ(alert->detail, "5 calls of at most 10 s to +442079460xxx within 600 s");
  EXPECT_FALSE(ended("442079460004", kSecond)) << "not repeated within the hour";
  EXPECT_FALSE(ended("442079460005", kSecond));

  // Short calls spread wider than the window do not make a burst.
  AnomalyDetector other(store);
  t = kMonday;
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(other.onCallEnded("user:2002", "88212340000", kSecond, t += 151 * kSecond));
  }
  // An hour after the first alert, a new burst alerts again.
  t = kMonday + kHour + 10 * kMinute;
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(ended("442079460010", kSecond, 10 * kSecond));
  EXPECT_TRUE(ended("442079460011", kSecond, 10 * kSecond));
}

TEST(AnomalyDetector, TheStoreStaysBoundedUnderAMillionKeys) {
  LocalFraudStore store;  // default limits: 65,536 keys
  AnomalyDetector detector(store);
  detector.onInternationalAttempt("user:watched", "442079460958", kMonday);
  for (int i = 0; i < 1'000'000; ++i) {
    detector.onInternationalAttempt("user:" + std::to_string(i), "442079460958", kMonday + i);
    if (i % 1000 == 0) detector.onInternationalAttempt("user:watched", "442079460958", kMonday + i);
  }
  EXPECT_LE(store.keys(), LocalFraudStoreLimits{}.max_keys);
  EXPECT_GE(store.keys(), LocalFraudStoreLimits{}.max_keys * 9 / 10);
  EXPECT_EQ(store.evictions(), 1'000'001u - store.keys());
  // The recently used key kept its state: 1,001 attempts within the hour (spread over 17 min).
  std::uint32_t hour_attempts = 0;
  store.updateAnomaly("user:watched", [&](AnomalyState& s) { hour_attempts = s.hour_attempts; });
  EXPECT_EQ(hour_attempts, 1'001u);
  // The first keys were evicted: their state starts again.
  store.updateAnomaly("user:0", [&](AnomalyState& s) { hour_attempts = s.hour_attempts; });
  EXPECT_EQ(hour_attempts, 0u);
}

}  // namespace
}  // namespace palisade::policy::fraud
