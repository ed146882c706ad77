#pragma once
// The toll-fraud stage (after digest authentication, before admission). For every new INVITE:
// the destination is judged by the caller's rules (a user, a trunk, the PBX) and those of the
// trunk it goes through (DestinationRules); then, in the fraud store, whether the caller is
// blocked, its calls per minute and international calls per hour, anomaly detection on its
// international attempts, and its 24 h spend against its cap. A refused call gets 403 with a
// Reason header (RFC 3326), a log line, a metric and a fraud event; what the rules made of an
// admitted call goes into the request context for its CDR, its cost and its maximum duration.
// Emergency numbers skip everything. One per worker's chain.
#include <optional>
#include <string>
#include <unordered_map>

#include "core/base/clock.h"
#include "policy/fraud/anomaly_detector.h"
#include "policy/policy_chain.h"

namespace palisade::policy::fraud {

class FraudStage final : public Stage {
 public:
  const char* name() const override { return "fraud"; }
  Decision evaluate(RequestContext& context, const PolicySnapshot& snapshot,
                    StageServices& services) override;

 private:
  struct Refusal {
    stats::Counter counter;
    const char* kind;  // the fraud event's kind
    const char* text;  // what the caller is told (never which rule)
    std::string rule;  // what the log, the event and the CDR say
  };
  Decision refuse(RequestContext& context, const Refusal& refusal, std::string destination,
                  StageServices& services);
  // The store's checks for one key (the caller's or its trunk's): blocked, rate limits.
  std::optional<Refusal> limits(const PeerRules& rules, const std::string& key, bool international,
                                const PolicySnapshot& snapshot, std::int64_t now);
  // Whether a refusal event for `key` (caller and rule) goes out now; `suppressed`: how many
  // were held back since the last one.
  bool mayAlert(const std::string& key, base::Millis now, int& suppressed);
  std::optional<Refusal> spendCap(const PeerRules& rules, const PolicySnapshot& snapshot,
                                  RequestContext& context, StageServices& services, std::int64_t now);
  AnomalyDetector& detector(const PolicySnapshot& snapshot);

  // Refusal log lines per second on this worker: a flood of refused calls is counted in full
  // but cannot make the log the bottleneck.
  static constexpr int kLinesPerSecond = 20;
  static constexpr std::size_t kMaxEventText = 256;  // of the caller's text (Call-ID) in an event
  bool mayLog(base::Millis now);
  base::Millis log_second_ = -1;
  int lines_ = 0;
  int skipped_ = 0;
  // Rebuilt when a reload brings other settings; what it learned lives in the store.
  std::uint64_t detector_generation_ = 0;
  std::optional<AnomalyDetector> detector_;
  struct AlertWindow {
    base::Millis since = 0;
    int suppressed = 0;
  };
  static constexpr std::size_t kMaxAlertKeys = 4096;
  std::unordered_map<std::string, AlertWindow> alerted_;
};

}  // namespace palisade::policy::fraud
