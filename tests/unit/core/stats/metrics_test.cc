#include "core/stats/metrics.h"

#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace palisade::stats {
namespace {

constexpr std::size_t kCounters = static_cast<std::size_t>(Counter::kCount);
constexpr std::size_t kGauges = static_cast<std::size_t>(Gauge::kCount);

// Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict on chained operator+.
std::string seriesName(const CounterInfo& info) {
  std::string name;
  name.reserve(16 + info.family.size() + info.labels.size());
  name.append("palisade_").append(info.family).append("_total");
  if (!info.labels.empty()) name.append("{").append(info.labels).append("}");
  return name;
}

// Number of lines in `text` that start with `prefix`.
int linesStartingWith(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) ++n;
  }
  return n;
}

TEST(MetricsTest, SumsCountersAcrossWorkerAndControlShards) {
  Metrics m(3);
  m.shard(0).add(Counter::CallsAttempted);
  m.shard(1).add(Counter::CallsAttempted, 4);
  m.shard(2).add(Counter::CallsAttempted, 10);
  m.controlShard().add(Counter::CallsAttempted, 100);
  m.shard(1).add(Counter::ParseErrors, 2);

  EXPECT_EQ(m.total(Counter::CallsAttempted), 115u);
  EXPECT_EQ(m.total(Counter::ParseErrors), 2u);
  EXPECT_EQ(m.total(Counter::CallsAnswered), 0u);
  EXPECT_EQ(m.workers(), 3u);
  EXPECT_EQ(&m.controlShard(), &m.shard(3));
}

TEST(MetricsTest, GaugeSumMayCancelAcrossShards) {
  Metrics m(2);
  m.shard(0).adjust(Gauge::TcpConnections, 3);
  m.shard(1).adjust(Gauge::TcpConnections, -1);  // closed on another worker than the one that opened it
  m.shard(0).adjust(Gauge::ActiveCalls, 2);
  m.shard(0).adjust(Gauge::ActiveCalls, -2);
  EXPECT_EQ(m.total(Gauge::TcpConnections), 2);
  EXPECT_EQ(m.total(Gauge::ActiveCalls), 0);
}

TEST(MetricsTest, RendersCounterBlockExactly) {
  Metrics m(2);
  m.shard(0).add(Counter::CallsAttempted, 2);
  m.shard(1).add(Counter::CallsAttempted, 3);
  const std::string text = m.renderPrometheus();
  EXPECT_NE(text.find("# HELP palisade_calls_attempted_total INVITEs that started a call.\n"
                      "# TYPE palisade_calls_attempted_total counter\n"
                      "palisade_calls_attempted_total 5\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\npalisade_rejected_503_total 0\n"), std::string::npos) << text;
}

TEST(MetricsTest, RendersLabelledMessagesUnderOneFamily) {
  Metrics m(1);
  m.shard(0).add(Counter::MessagesInUdp, 7);
  m.controlShard().add(Counter::MessagesOutTcp, 1);
  const std::string text = m.renderPrometheus();
  EXPECT_NE(text.find("# TYPE palisade_messages_total counter\n"
                      "palisade_messages_total{direction=\"in\",transport=\"udp\"} 7\n"
                      "palisade_messages_total{direction=\"out\",transport=\"udp\"} 0\n"
                      "palisade_messages_total{direction=\"in\",transport=\"tcp\"} 0\n"
                      "palisade_messages_total{direction=\"out\",transport=\"tcp\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(linesStartingWith(text, "# TYPE palisade_messages_total "), 1);
  EXPECT_EQ(linesStartingWith(text, "# HELP palisade_messages_total "), 1);
  EXPECT_EQ(text.find("messages_in_udp"), std::string::npos);
}

TEST(MetricsTest, RendersGaugeBlockExactly) {
  Metrics m(2);
  m.shard(0).adjust(Gauge::ActiveCalls, 4);
  m.shard(1).adjust(Gauge::ActiveCalls, -1);
  const std::string text = m.renderPrometheus();
  EXPECT_NE(text.find("# HELP palisade_active_calls Calls being set up or established.\n"
                      "# TYPE palisade_active_calls gauge\n"
                      "palisade_active_calls 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE palisade_tcp_connections gauge\npalisade_tcp_connections 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE palisade_workers gauge\npalisade_workers 2\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE palisade_build_info gauge\npalisade_build_info{version=\"0.1.0\"} 1\n"),
            std::string::npos);
}

TEST(MetricsTest, EveryCounterAndGaugeHasAUniqueName) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < kCounters; ++i) {
    const auto& info = counterInfo(static_cast<Counter>(i));
    EXPECT_EQ(static_cast<std::size_t>(info.counter), i);
    EXPECT_FALSE(info.family.empty());
    EXPECT_FALSE(info.help.empty());
    EXPECT_TRUE(names.insert(seriesName(info)).second) << seriesName(info);
  }
  for (std::size_t i = 0; i < kGauges; ++i) {
    const auto& info = gaugeInfo(static_cast<Gauge>(i));
    EXPECT_EQ(static_cast<std::size_t>(info.gauge), i);
    EXPECT_TRUE(names.insert("palisade_" + std::string(info.name)).second) << info.name;
  }
  EXPECT_EQ(names.size(), kCounters + kGauges);
}

TEST(MetricsTest, EverySeriesAppearsOnceWithItsSummedValue) {
  Metrics m(2);
  for (std::size_t i = 0; i < kCounters; ++i) {
    // Distinct per-counter values so a swapped row shows up.
    m.shard(0).add(static_cast<Counter>(i), i + 1);
    m.shard(1).add(static_cast<Counter>(i), 1000);
  }
  const std::string text = m.renderPrometheus();
  for (std::size_t i = 0; i < kCounters; ++i) {
    const std::string series = seriesName(counterInfo(static_cast<Counter>(i)));
    EXPECT_EQ(linesStartingWith(text, series + " "), 1) << series;
    EXPECT_NE(text.find(series + " " + std::to_string(1000 + i + 1) + "\n"), std::string::npos) << series;
  }
}

TEST(MetricsTest, EverySampleFollowsItsTypeLine) {
  Metrics m(1);
  std::istringstream in(m.renderPrometheus());
  std::set<std::string> typed;
  std::string current;
  int samples = 0;
  for (std::string line; std::getline(in, line);) {
    ASSERT_FALSE(line.empty());
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string type;
      words >> current >> type;
      EXPECT_TRUE(type == "counter" || type == "gauge") << line;
      EXPECT_TRUE(typed.insert(current).second) << "metric typed twice: " << current;
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    const std::string name = line.substr(0, line.find_first_of("{ "));
    EXPECT_EQ(name, current) << line;
    ++samples;
  }
  // Six message series share one family, five policy decisions another, eight drop reasons,
  // five rejection reasons and five authentication failure reasons three more, four media drop
  // reasons one more, six fraud refusal reasons and three webhook results two more; workers and
  // build_info come on top of the Gauge enum.
  EXPECT_EQ(samples, static_cast<int>(kCounters + kGauges + 2));
  EXPECT_EQ(typed.size(), kCounters - 5 - 4 - 7 - 4 - 4 - 3 - 5 - 2 + kGauges + 2);
}

}  // namespace
}  // namespace palisade::stats
