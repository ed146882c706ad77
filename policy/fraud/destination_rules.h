#pragma once
// Where a call may go (issue: toll fraud, destination policy). A dialled number is read by the
// caller's dial plan, then judged by the longest matching prefix across the caller's own allow
// and deny lists, those of the trunk the call goes through, the [fraud] lists and the high-risk
// ranges; at equal length the narrower scope wins (caller, trunk, global, high-risk), so
// "deny +88, allow +8816" works and a user's "allow +1" does not pierce "+1900". International
// numbers need the caller's (and the trunk's) international switch or an allow match. Emergency
// numbers of the dial plan are never refused. Compiled on the control thread; immutable after.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/calling_hours.h"
#include "core/base/result.h"
#include "core/config/config.h"
#include "policy/fraud/e164.h"
#include "policy/fraud/prefix_file.h"
#include "policy/fraud/prefix_table.h"

namespace palisade::policy::fraud {

// The scopes a prefix rule comes from, narrowest last (it wins a tie in length).
enum class Scope : std::uint8_t { HighRisk, Global, Trunk, Caller };

struct PrefixRule {
  bool allow = false;
  std::string label;  // the high-risk file's label
};
using RuleTable = PrefixTable<PrefixRule>;

// One peer's rules (a user, a trunk, the PBX).
struct PeerRules {
  std::string key;          // "user:2001", "trunk:carrier", "pbx": names it in logs, CDRs, counters
  std::string inbound_key;  // a trunk's calls to the PBX ("trunk:carrier:in"), counted apart
  bool international = true;
  RuleTable prefixes;  // its allow and deny lists
  std::size_t dial_plan = 0;
  std::uint32_t max_calls_per_minute = 0;
  std::uint32_t max_international_per_hour = 0;
  std::uint32_t max_call_duration_s = 0;            // 0: the global one
  std::int64_t max_spend_24h_micros = 0;            // 0: no cap
  std::shared_ptr<const base::CallingHours> hours;  // null: any time
  bool hours_all = false;                           // closed hours refuse all calls, not only international
};

struct DestinationRules {
  std::vector<DialPlan> dial_plans;  // [0]: [fraud.dial_plan]; then [[fraud.dial_plans]] in order
  std::vector<std::string> dial_plan_names;
  RuleTable global;
  RuleTable high_risk;  // deny rules, with the file's labels
  std::size_t extension_max_digits = 6;
};

// What the rules made of a call.
struct Judgement {
  enum class Outcome : std::uint8_t { Allowed, Denied, International, UnknownNumber };
  Outcome outcome = Outcome::Allowed;
  const char* destination_class = "unknown";  // "emergency", "domestic", "international", "internal"...
  std::string destination;                    // "+E164" (the emergency number as dialled; empty if none)
  std::string rule;                           // the rule that decided (empty: no rule matched)
  bool international = false;
  bool allowed() const { return outcome == Outcome::Allowed; }
};

// `dialled`: the Request-URI user part (or tel: number). `toward_pbx`: the call goes to the PBX
// (from a user or a trunk), where short numbers and names are extensions; toward a trunk they
// are not numbers a carrier can be asked to ring. `trunk`: the rules of the trunk the call goes
// through (from it, or routed to it); null for users.
Judgement judge(std::string_view dialled, bool toward_pbx, const PeerRules& caller, const PeerRules* trunk,
                const DestinationRules& rules);

// Compiles the rules of one peer and the global ones; `source` names the config entry in errors.
base::Result<PeerRules> compilePeerRules(const config::FraudRules& rules, std::string key,
                                         const DestinationRules& global);
// The high-risk list (the shipped one when `high_risk_file` is empty), dial plans, global lists.
base::Result<DestinationRules> compileDestinationRules(const config::FraudConfig& config);

// The shipped high-risk ranges (policy/fraud/high_risk_ranges.txt, compiled in).
extern const std::string_view kShippedHighRiskRanges;

}  // namespace palisade::policy::fraud
