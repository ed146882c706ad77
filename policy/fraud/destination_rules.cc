#include "policy/fraud/destination_rules.h"

#include <algorithm>

#include <fmt/format.h>

namespace palisade::policy::fraud {

namespace {

const char* scopeName(Scope scope) {
  switch (scope) {
    case Scope::HighRisk:
      return "high-risk";
    case Scope::Global:
      return "fraud";
    case Scope::Trunk:
      return "trunk";
    case Scope::Caller:
      break;
  }
  return "caller";
}

// A name ("alice", "sales", "ext2001"): a SIP address, no number any carrier could be asked to
// ring. Letters first, and no run of more than 4 digits: "x18765550123" is a number in disguise.
bool isName(std::string_view dialled) {
  if (dialled.empty() ||
      !((dialled[0] >= 'a' && dialled[0] <= 'z') || (dialled[0] >= 'A' && dialled[0] <= 'Z')))
    return false;
  std::size_t digits = 0;
  for (char c : dialled) {
    bool digit = c >= '0' && c <= '9';
    digits = digit ? digits + 1 : 0;
    if (digits > 4) return false;
    if (!digit && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.'))
      return false;
  }
  return true;
}

// What a phone sends when it dials a number (digits, '+', a feature code, a separator, an
// escaped '+'), as opposed to a SIP address of the PBX's, however odd.
bool looksLikeNumber(std::string_view dialled) {
  if (dialled.empty()) return false;
  char c = dialled[0];
  return (c >= '0' && c <= '9') || c == '+' || c == '*' || c == '#' || c == '(' ||
         dialled.starts_with("%2B") || dialled.starts_with("%2b") || dialled.starts_with("tel:") ||
         dialled.starts_with("TEL:");
}

bool isExtension(std::string_view dialled, std::size_t max_digits) {
  return !dialled.empty() && dialled.size() <= max_digits &&
         std::all_of(dialled.begin(), dialled.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct Candidate {
  std::string_view prefix;
  const PrefixRule* rule = nullptr;
  Scope scope = Scope::HighRisk;
};

// Longer wins; at equal length the narrower scope.
void consider(Candidate& best, const RuleTable& table, std::string_view number, Scope scope) {
  auto match = table.longest(number);
  if (!match) return;
  if (best.rule == nullptr || match->prefix.size() > best.prefix.size() ||
      (match->prefix.size() == best.prefix.size() && scope > best.scope)) {
    best = Candidate{match->prefix, match->value, scope};
  }
}

std::string describe(const Candidate& c, const PeerRules& caller, const PeerRules* trunk) {
  std::string where = c.scope == Scope::Caller  ? caller.key
                      : c.scope == Scope::Trunk ? (trunk != nullptr ? trunk->key : std::string("trunk"))
                                                : std::string(scopeName(c.scope));
  if (c.scope == Scope::HighRisk)
    return c.rule->label.empty() ? fmt::format("high-risk +{}", c.prefix)
                                 : fmt::format("high-risk +{} ({})", c.prefix, c.rule->label);
  return fmt::format("{} {} +{}", where, c.rule->allow ? "allow" : "deny", c.prefix);
}

base::Result<bool> addPrefixes(RuleTable& table, const std::vector<std::string>& prefixes, bool allow) {
  for (const std::string& text : prefixes) {
    std::string_view digits = text;
    if (!digits.empty() && digits[0] == '+') digits.remove_prefix(1);
    if (!table.add(digits, PrefixRule{allow, {}})) return base::Error{fmt::format("bad prefix {}", text)};
  }
  return true;
}

DialPlan dialPlanOf(const config::DialPlanConfig& c) {
  DialPlan plan;
  plan.country_code = c.country_code;
  plan.national_prefix = c.national_prefix;
  plan.international_prefix = c.international_prefix;
  plan.emergency = c.emergency;
  plan.national_min = c.national_min;
  plan.national_max = c.national_max;
  for (const std::string& prefix : c.foreign) plan.foreign.push_back(prefix.substr(prefix[0] == '+' ? 1 : 0));
  return plan;
}

}  // namespace

Judgement judge(std::string_view dialled, bool toward_pbx, const PeerRules& caller, const PeerRules* trunk,
                const DestinationRules& rules) {
  Judgement j;
  // Names are SIP addresses (an extension at the PBX, a peer's user at a trunk): no toll.
  // Toward the PBX, anything that is not dialled like a number is the PBX's own business (its
  // calls onward are judged again on their way to a trunk), and no user part is its default
  // destination (a trunk's "sip:pbx-host"); toward a trunk, it is no one a carrier should ring.
  if (isName(dialled) || (toward_pbx && !looksLikeNumber(dialled))) {
    j.destination_class = "internal";
    return j;
  }
  if (dialled.empty()) {
    j.outcome = Judgement::Outcome::UnknownNumber;
    j.rule = "unknown number";
    return j;
  }
  const DialPlan& plan = rules.dial_plans[std::min(caller.dial_plan, rules.dial_plans.size() - 1)];
  Number number = normalise(dialled, plan);
  switch (number.kind) {
    case NumberClass::Emergency:
      j.destination_class = "emergency";
      j.destination = number.e164;
      j.rule = "emergency";
      return j;
    case NumberClass::Unknown:
      if (toward_pbx && isExtension(dialled, rules.extension_max_digits)) {
        j.destination_class = "internal";
        return j;
      }
      j.outcome = Judgement::Outcome::UnknownNumber;
      j.rule = "unknown number";
      return j;
    case NumberClass::Domestic:
      j.destination_class = "domestic";
      break;
    case NumberClass::International:
      j.destination_class = "international";
      j.international = true;
      break;
  }
  j.destination = "+" + number.e164;
  Candidate best;
  consider(best, rules.high_risk, number.e164, Scope::HighRisk);
  consider(best, rules.global, number.e164, Scope::Global);
  if (trunk != nullptr) consider(best, trunk->prefixes, number.e164, Scope::Trunk);
  consider(best, caller.prefixes, number.e164, Scope::Caller);
  if (best.rule != nullptr) j.rule = describe(best, caller, trunk);
  if (best.rule != nullptr && !best.rule->allow) {
    j.outcome = Judgement::Outcome::Denied;
    return j;
  }
  // International calling is a right of the caller (and of the trunk): only an allow in the
  // caller's own list grants it to a caller without it, and one in the caller's or the trunk's
  // list to a trunk without it. A global allow (a hole in a high-risk range) grants neither.
  if (j.international) {
    bool allowed_by_caller = best.rule != nullptr && best.scope == Scope::Caller;
    bool allowed_by_trunk = best.rule != nullptr && best.scope >= Scope::Trunk;
    if (!caller.international && !allowed_by_caller) {
      j.outcome = Judgement::Outcome::International;
      j.rule = fmt::format("{} international", caller.key);
    } else if (trunk != nullptr && !trunk->international && !allowed_by_trunk) {
      j.outcome = Judgement::Outcome::International;
      j.rule = fmt::format("{} international", trunk->key);
    }
  }
  return j;
}

base::Result<PeerRules> compilePeerRules(const config::FraudRules& config, std::string key,
                                         const DestinationRules& global) {
  PeerRules rules;
  rules.key = std::move(key);
  rules.inbound_key = rules.key + ":in";
  rules.international = config.international;
  rules.max_calls_per_minute = config.max_calls_per_minute;
  rules.max_international_per_hour = config.max_international_per_hour;
  rules.max_call_duration_s = config.max_call_duration_s;
  rules.max_spend_24h_micros = config.max_spend_24h_micros;
  if (!config.calling_hours.empty()) {
    auto hours = base::parseCallingHours(config.calling_hours, config.calling_hours_zone);
    if (!hours) return base::Error{fmt::format("{}: calling_hours: {}", rules.key, hours.error().message)};
    rules.hours = std::make_shared<const base::CallingHours>(std::move(hours.value()));
    rules.hours_all = config.calling_hours_all;
  }
  if (!config.dial_plan.empty()) {
    auto it = std::find(global.dial_plan_names.begin(), global.dial_plan_names.end(), config.dial_plan);
    if (it == global.dial_plan_names.end())
      return base::Error{fmt::format("{}: no dial plan named {}", rules.key, config.dial_plan)};
    rules.dial_plan = static_cast<std::size_t>(it - global.dial_plan_names.begin());
  }
  // Deny first: of a prefix in both lists (which config validation refuses) deny would win.
  if (auto added = addPrefixes(rules.prefixes, config.deny, false); !added) return added.error();
  if (auto added = addPrefixes(rules.prefixes, config.allow, true); !added) return added.error();
  rules.prefixes.build();
  return rules;
}

base::Result<DestinationRules> compileDestinationRules(const config::FraudConfig& config) {
  DestinationRules rules;
  rules.extension_max_digits = config.extension_max_digits;
  rules.dial_plans.push_back(dialPlanOf(config.dial_plan));
  rules.dial_plan_names.emplace_back();
  for (const config::DialPlanConfig& plan : config.dial_plans) {
    rules.dial_plans.push_back(dialPlanOf(plan));
    rules.dial_plan_names.push_back(plan.name);
  }
  auto high_risk = config.high_risk_file.empty()
                       ? parsePrefixList(kShippedHighRiskRanges, "policy/fraud/high_risk_ranges.txt")
                       : loadPrefixFile(config.high_risk_file);
  if (!high_risk) return high_risk.error();
  for (const auto& [prefix, label] : high_risk.value().entries())
    rules.high_risk.add(prefix, PrefixRule{false, label});
  rules.high_risk.build();
  if (auto added = addPrefixes(rules.global, config.deny, false); !added) return added.error();
  if (auto added = addPrefixes(rules.global, config.allow, true); !added) return added.error();
  rules.global.build();
  return rules;
}

}  // namespace palisade::policy::fraud
