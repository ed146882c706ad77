#pragma once
// The toll-fraud stage (after digest authentication, before admission): every new INVITE's
// destination is judged by the caller's rules (a user, a trunk, the PBX) and those of the trunk
// it goes through (DestinationRules). A refused call gets 403 with a Reason header (RFC 3326),
// a log line, a metric and a fraud event; what the rules made of it goes into the request
// context for the call's CDR and its maximum duration. One per worker's chain.
#include "core/base/clock.h"
#include "policy/policy_chain.h"

namespace palisade::policy::fraud {

class FraudStage final : public Stage {
 public:
  const char* name() const override { return "fraud"; }
  Decision evaluate(RequestContext& context, const PolicySnapshot& snapshot,
                    StageServices& services) override;

 private:
  // Refusal log lines per second on this worker: a flood of refused calls is counted in full
  // but cannot make the log the bottleneck.
  static constexpr int kLinesPerSecond = 20;
  bool mayLog(base::Millis now);
  base::Millis log_second_ = -1;
  int lines_ = 0;
  int skipped_ = 0;
};

}  // namespace palisade::policy::fraud
