// Toll fraud through one engine behind the daemon's policy chain, on a manual clock: the
// destination rules on every path, the per-caller limits, the maximum duration, the spend cap,
// anomaly detection and its block, and the call records of every attempt.
#include <cstdio>
#include <ctime>
#include <fstream>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "tests/support/engine_harness.h"

namespace palisade {
namespace {

using namespace palisade::testing;  // NOLINT: test-local brevity

constexpr std::uint16_t kCarrierPort = 5090;
constexpr std::uint16_t kPbxPort = 5080;

class RecordingSinks final : public dialog::CallRecordSink, public policy::AlertSink {
 public:
  void write(dialog::CallRecord&& record) override { records.push_back(std::move(record)); }
  void raise(policy::FraudEvent&& event) override { events.push_back(std::move(event)); }
  std::vector<dialog::CallRecord> records;
  std::vector<policy::FraudEvent> events;
};

std::string headerOf(const sip::Message& m, std::string_view name) {
  for (const auto& h : m.headers()) {
    if (sip::iequals(h.name, name)) return std::string(h.value);
  }
  return {};
}

template <typename Change>
std::shared_ptr<config::Config> configWith(Change change) {
  auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
  change(*config);
  return config;
}

class FraudTest : public ::testing::Test {
 protected:
  void start(std::shared_ptr<config::Config> config) {
    h_ = std::make_unique<EngineHarness>(config, nullptr, true);
    h_->engine().setRecordSink(&sinks_);
    h_->chain().setAlertSink(&sinks_);
  }

  // A call from the PBX to `number`: the INVITE the carrier got, or null (then `refused` holds
  // the PBX's final answer).
  std::unique_ptr<sip::Message> call(const std::string& call_id, const std::string& number,
                                     std::unique_ptr<sip::Message>* refused = nullptr) {
    PeerDialog pbx = pbxPeer(call_id);
    pbx.request_uri = fmt::format("sip:{}@127.0.0.1:5070", number);
    pbx.remote_uri = pbx.request_uri;
    h_->clearSent();
    h_->inject(makeInvite(pbx, "z9hG4bK-" + call_id), pbx.flow);
    auto at_carrier = h_->next(kCarrierPort);
    std::unique_ptr<sip::Message> last;
    while (auto m = h_->next(kPbxPort)) {
      if (m->statusCode() >= 200) last = std::move(m);
    }
    if (refused != nullptr) *refused = std::move(last);
    return at_carrier;
  }

  // The carrier answers; the PBX gets the 2xx and ACKs it. The PBX's dialog.
  PeerDialog answer(const sip::Message& at_carrier, const std::string& call_id) {
    PeerDialog pbx = pbxPeer(call_id);
    h_->inject(makeResponse(at_carrier, 200, "OK", "carrier-tag", "sip:carrier@127.0.0.1:5090", kDefaultSdp),
               carrierPeer(call_id).flow);
    std::unique_ptr<sip::Message> ok;
    while (auto m = h_->next(kPbxPort)) {
      if (m->statusCode() == 200) ok = std::move(m);
    }
    EXPECT_TRUE(ok);
    if (!ok) return pbx;
    pbx.remote_tag = std::string(ok->toTag());
    sip::NameAddr contact;
    EXPECT_TRUE(ok->firstContact(contact));
    pbx.request_uri = std::string(contact.uri);
    h_->inject(makeAck(pbx, 1, "z9hG4bK-ack-" + call_id), pbx.flow);
    return pbx;
  }

  void hangUp(PeerDialog& pbx, const std::string& call_id) {
    h_->inject(makeRequest(pbx, "BYE", "z9hG4bK-bye-" + call_id), pbx.flow);
    auto bye = h_->next(kCarrierPort);
    while (bye && bye->method() != sip::Method::Bye) bye = h_->next(kCarrierPort);
    ASSERT_TRUE(bye);
    h_->inject(makeResponse(*bye, 200, "OK", "", ""), carrierPeer(call_id).flow);
  }

  RecordingSinks sinks_;  // outlives the engine: calls still up at the end write their records
  std::unique_ptr<EngineHarness> h_;
};

TEST_F(FraudTest, AHighRiskDestinationFromThePbxIsRefusedWithAReasonAndRecorded) {
  start(configWith([](config::Config&) {}));
  std::unique_ptr<sip::Message> refused;
  EXPECT_FALSE(call("hr-1", "011881612345678", &refused));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->statusCode(), 403);
  EXPECT_EQ(headerOf(*refused, "Reason"), "SIP;cause=403;text=\"Destination not allowed\"");
  EXPECT_EQ(h_->counter(stats::Counter::FraudRefusedDestination), 1u);
  EXPECT_EQ(h_->counter(stats::Counter::FraudAlerts), 1u);
  ASSERT_EQ(sinks_.events.size(), 1u);
  EXPECT_EQ(sinks_.events[0].kind, "destination_refused");
  EXPECT_EQ(sinks_.events[0].source, "pbx");
  EXPECT_EQ(sinks_.events[0].destination, "+881612345678");
  EXPECT_TRUE(sinks_.events[0].rule.starts_with("high-risk +881")) << sinks_.events[0].rule;
  ASSERT_EQ(sinks_.records.size(), 1u);
  const dialog::CallRecord& r = sinks_.records[0];
  EXPECT_EQ(r.call_id, "hr-1");
  EXPECT_EQ(r.to, "011881612345678");
  EXPECT_EQ(r.destination, "+881612345678");
  EXPECT_EQ(r.destination_class, "international");
  EXPECT_EQ(r.source, "pbx");
  EXPECT_EQ(r.auth, "pbx-address");
  EXPECT_EQ(r.final_status, 403);
  EXPECT_EQ(r.decision, "refused");
  EXPECT_EQ(r.ended_by, "palisade");
  EXPECT_TRUE(r.rule.starts_with("high-risk +881")) << r.rule;
}

TEST_F(FraudTest, AnAllowedCallIsRecordedFromStartToHangUp) {
  start(configWith([](config::Config&) {}));
  auto at_carrier = call("ok-1", "011442079460958");
  ASSERT_TRUE(at_carrier);
  PeerDialog pbx = answer(*at_carrier, "ok-1");
  h_->advance(42'000);
  hangUp(pbx, "ok-1");
  ASSERT_EQ(sinks_.records.size(), 1u);
  const dialog::CallRecord& r = sinks_.records[0];
  EXPECT_EQ(r.decision, "allowed");
  EXPECT_EQ(r.destination, "+442079460958");
  EXPECT_EQ(r.final_status, 200);
  EXPECT_EQ(r.ended_by, "caller");
  EXPECT_EQ(r.end_reason, "bye");
  EXPECT_GT(r.answer_ms, 0);
  EXPECT_GE(r.end_ms - r.answer_ms, 42'000);
  EXPECT_EQ(r.cost_micros, 0);  // no rate table
  EXPECT_TRUE(sinks_.events.empty());
}

TEST_F(FraudTest, ATrunkWithoutInternationalCallingRefusesThePbxsInternationalCalls) {
  start(configWith([](config::Config& c) { c.trunks.front().fraud.international = false; }));
  std::unique_ptr<sip::Message> refused;
  EXPECT_FALSE(call("int-1", "011442079460958", &refused));
  ASSERT_TRUE(refused);
  EXPECT_EQ(headerOf(*refused, "Reason"), "SIP;cause=403;text=\"International calls not allowed\"");
  EXPECT_EQ(h_->counter(stats::Counter::FraudRefusedInternational), 1u);
  EXPECT_TRUE(call("int-2", "12125550101"));  // domestic
  EXPECT_TRUE(call("int-3", "911"));          // emergency, whatever the rules
}

TEST_F(FraudTest, CallsPerMinuteAreLimitedAndTheLimitRollsOver) {
  start(configWith([](config::Config& c) { c.pbx.fraud.max_calls_per_minute = 2; }));
  EXPECT_TRUE(call("pm-1", "12125550101"));
  EXPECT_TRUE(call("pm-2", "12125550102"));
  std::unique_ptr<sip::Message> refused;
  EXPECT_FALSE(call("pm-3", "12125550103", &refused));
  ASSERT_TRUE(refused);
  EXPECT_EQ(headerOf(*refused, "Reason"), "SIP;cause=403;text=\"Call limit reached\"");
  EXPECT_EQ(h_->counter(stats::Counter::FraudRefusedLimit), 1u);
  EXPECT_EQ(sinks_.records.back().rule, "pbx max_calls_per_minute 2");
  h_->advance(61'000);
  EXPECT_TRUE(call("pm-4", "12125550104"));
}

TEST_F(FraudTest, ACallLongerThanItsCallersMaximumGetsByeOnBothLegs) {
  start(configWith([](config::Config& c) { c.pbx.fraud.max_call_duration_s = 30; }));
  auto at_carrier = call("md-1", "12125550101");
  ASSERT_TRUE(at_carrier);
  answer(*at_carrier, "md-1");
  h_->clearSent();
  h_->advance(31'000);
  int legs_with_bye = 0;  // (retransmitted: nobody answers them here)
  for (std::uint16_t port : {kPbxPort, kCarrierPort}) {
    bool bye = false;
    while (auto m = h_->next(port)) bye = bye || m->method() == sip::Method::Bye;
    legs_with_bye += bye ? 1 : 0;
  }
  EXPECT_EQ(legs_with_bye, 2);
  EXPECT_EQ(h_->counter(stats::Counter::CallsMaxDuration), 1u);
}

TEST_F(FraudTest, OutsideItsCallingHoursTheCallersInternationalCallsAreRefused) {
  // A window two hours from now (UTC), so that it is closed now and open two hours later.
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::string window =
      fmt::format("Mon-Sun {:02d}:00-{:02d}:00", (utc.tm_hour + 2) % 24, (utc.tm_hour + 3) % 24);
  start(configWith([&window](config::Config& c) {
    c.pbx.fraud.calling_hours = {window};
    c.pbx.fraud.calling_hours_zone = "UTC";
  }));
  std::unique_ptr<sip::Message> refused;
  EXPECT_FALSE(call("ch-1", "011442079460958", &refused));
  ASSERT_TRUE(refused);
  EXPECT_EQ(headerOf(*refused, "Reason"), "SIP;cause=403;text=\"Outside calling hours\"");
  EXPECT_EQ(sinks_.records.back().rule, "pbx calling_hours");
  EXPECT_TRUE(call("ch-2", "12125550101"));  // domestic: the hours are for international calls
  EXPECT_TRUE(call("ch-3", "911"));
  h_->advance(2 * 3600 * 1000);
  EXPECT_TRUE(call("ch-4", "011442079460958"));
}

class FraudSpendTest : public FraudTest {
 protected:
  void SetUp() override {
    rates_ = ::testing::TempDir() + "fraud_test_rates.txt";
    std::ofstream(rates_) << "+44 1.000000 United Kingdom\n+1 0.010000 NANP\n";
  }
  void TearDown() override { std::remove(rates_.c_str()); }
  std::string rates_;
};

TEST_F(FraudSpendTest, AnsweredCallsCostAndTheCapRefusesTheNextPaidCall) {
  start(configWith([this](config::Config& c) {
    c.fraud.rate_file = rates_;
    c.pbx.fraud.max_spend_24h_micros = 2'000'000;
  }));
  auto at_carrier = call("sp-1", "011442079460958");
  ASSERT_TRUE(at_carrier);
  PeerDialog pbx = answer(*at_carrier, "sp-1");
  h_->advance(150'000);  // 2.5 minutes at 1.00 a minute
  hangUp(pbx, "sp-1");
  ASSERT_EQ(sinks_.records.size(), 1u);
  EXPECT_EQ(sinks_.records[0].cost_micros, 2'500'000);
  std::unique_ptr<sip::Message> refused;
  EXPECT_FALSE(call("sp-2", "011442079460959", &refused));
  ASSERT_TRUE(refused);
  EXPECT_EQ(headerOf(*refused, "Reason"), "SIP;cause=403;text=\"Spend limit reached\"");
  EXPECT_EQ(h_->counter(stats::Counter::FraudRefusedSpendCap), 1u);
  EXPECT_TRUE(call("sp-3", "911"));  // emergency numbers are never refused
  // A rolling 24 h: the spend is forgotten a day later.
  h_->advance(25LL * 3600 * 1000);
  EXPECT_TRUE(call("sp-4", "011442079460959"));
}

TEST_F(FraudSpendTest, OverTheCapActiveCallsEndWhenConfigured) {
  start(configWith([this](config::Config& c) {
    c.fraud.rate_file = rates_;
    c.fraud.end_calls_over_cap = true;
    c.pbx.fraud.max_spend_24h_micros = 1'000'000;
  }));
  auto at_carrier = call("sc-1", "011442079460958");
  ASSERT_TRUE(at_carrier);
  answer(*at_carrier, "sc-1");
  h_->advance(50'000);
  EXPECT_EQ(sinks_.records.size(), 0u);  // under the cap: still up
  h_->advance(20'000);                   // one minute and more: the cap is reached
  ASSERT_EQ(sinks_.records.size(), 1u);
  EXPECT_EQ(sinks_.records[0].end_reason, "spend_cap");
  EXPECT_GE(sinks_.records[0].cost_micros, 1'000'000);
  // The warning came first (80 % of the cap), once.
  int warnings = 0;
  for (const auto& e : sinks_.events) warnings += e.kind == "spend_warning" ? 1 : 0;
  EXPECT_LE(warnings, 1);
}

TEST_F(FraudSpendTest, ACallInProgressThatReachesTheCapRaisesTheEventAtOnce) {
  start(configWith([this](config::Config& c) {
    c.fraud.rate_file = rates_;
    c.pbx.fraud.max_spend_24h_micros = 1'000'000;  // the call is not ended (end_calls_over_cap off)
  }));
  auto at_carrier = call("ca-1", "011442079460958");
  ASSERT_TRUE(at_carrier);
  answer(*at_carrier, "ca-1");
  h_->advance(75'000);
  int caps = 0;
  for (const auto& e : sinks_.events) caps += e.kind == "spend_cap" ? 1 : 0;
  EXPECT_EQ(caps, 1);  // raised once, while the call goes on
  EXPECT_TRUE(sinks_.records.empty());
}

TEST_F(FraudTest, ASpikeOfInternationalAttemptsAlertsAndBlocksTheCallerUntilCleared) {
  start(configWith([](config::Config& c) {
    c.fraud.min_spike_attempts = 4;
    c.fraud.block_on_anomaly = true;
  }));
  int refused_calls = 0;
  for (int i = 0; i < 6; ++i) {
    std::unique_ptr<sip::Message> refused;
    if (!call(fmt::format("sk-{}", i), fmt::format("0114420794609{:02d}", i * 7), &refused)) ++refused_calls;
  }
  EXPECT_GE(refused_calls, 2);
  bool spike = false;
  for (const auto& e : sinks_.events) spike = spike || e.kind == "international_spike";
  EXPECT_TRUE(spike);
  EXPECT_TRUE(h_->fraudStore().blocked("pbx").has_value());
  EXPECT_GE(h_->counter(stats::Counter::FraudRefusedBlockedSource), 1u);
  // Blocked for everything but emergency calls, until an operator clears it.
  EXPECT_FALSE(call("sk-d", "12125550101"));
  EXPECT_TRUE(call("sk-e", "911"));
  EXPECT_TRUE(h_->fraudStore().clear("pbx"));
  EXPECT_TRUE(call("sk-f", "12125550101"));
}

}  // namespace
}  // namespace palisade
