#pragma once
// Admission of new calls (the stage after digest authentication): while draining for
// shutdown, or over the calls-per-second limit in total or of the trunk or user the call comes
// from, or over that peer's concurrent calls, a new INVITE gets 503 with Retry-After. The
// counters are shared by every worker (SharedCounters); a call holds its concurrent-call unit
// (RequestContext::rules) until it ends. Only new INVITEs get here: ACK, BYE, CANCEL, PRACK
// and re-INVITEs within a dialog never pass the request filter, so admission never refuses one.
#include "policy/policy_chain.h"

namespace palisade::policy::flood {

class AdmissionStage final : public Stage {
 public:
  static constexpr std::string_view kRetryAfter = "Retry-After: 5\r\n";
  const char* name() const override { return "admission"; }
  Decision evaluate(RequestContext& context, const PolicySnapshot& snapshot,
                    StageServices& services) override;
};

}  // namespace palisade::policy::flood
