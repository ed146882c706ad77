#include "policy/fraud/e164.h"

#include <algorithm>

namespace palisade::policy::fraud {

namespace {

bool isVisualSeparator(char c) { return c == '-' || c == '.' || c == '(' || c == ')' || c == ' '; }

// The digits of `dialled` with an optional leading '+', or false if anything else is in it.
bool digitsOf(std::string_view dialled, bool& plus, std::string& digits) {
  if (dialled.size() >= 4 && (dialled.substr(0, 4) == "tel:" || dialled.substr(0, 4) == "TEL:")) {
    dialled.remove_prefix(4);
  }
  if (dialled.find(';') != std::string_view::npos) return false;
  plus = false;
  digits.clear();
  for (std::size_t i = 0; i < dialled.size(); ++i) {
    char c = dialled[i];
    if (plus && dialled.substr(i, 3) == "(0)") {
      i += 2;  // +44 (0)20...: the national prefix no carrier dials after the country code
      continue;
    }
    if (c >= '0' && c <= '9') {
      if (digits.size() > kMaxE164Digits + 8) return false;  // longer than any prefix + number
      digits.push_back(c);
    } else if (c == '+' && digits.empty() && !plus) {
      plus = true;
    } else if (!isVisualSeparator(c)) {
      return false;
    }
  }
  return !digits.empty();
}

Number international(std::string digits, const DialPlan& plan) {
  Number n;
  // Country codes are 1-3 digits and a subscriber number follows: at least 7 digits in all.
  if (digits.size() < 7 || digits.size() > kMaxE164Digits || digits[0] == '0') return n;
  n.kind = digits.starts_with(plan.country_code) && !plan.country_code.empty() ? NumberClass::Domestic
                                                                               : NumberClass::International;
  if (n.kind == NumberClass::Domestic &&
      std::any_of(plan.foreign.begin(), plan.foreign.end(), [&digits](const std::string& prefix) {
        return !prefix.empty() && digits.starts_with(prefix);
      }))
    n.kind = NumberClass::International;
  n.e164 = std::move(digits);
  return n;
}

}  // namespace

const char* numberClassName(NumberClass c) {
  switch (c) {
    case NumberClass::Emergency:
      return "emergency";
    case NumberClass::Domestic:
      return "domestic";
    case NumberClass::International:
      return "international";
    case NumberClass::Unknown:
      break;
  }
  return "unknown";
}

Number normalise(std::string_view dialled, const DialPlan& plan) {
  bool plus = false;
  std::string digits;
  if (!digitsOf(dialled, plus, digits)) return {};
  if (!plus && std::find(plan.emergency.begin(), plan.emergency.end(), digits) != plan.emergency.end()) {
    return Number{NumberClass::Emergency, digits};
  }
  if (plus) return international(std::move(digits), plan);
  if (!plan.international_prefix.empty() && digits.starts_with(plan.international_prefix)) {
    return international(digits.substr(plan.international_prefix.size()), plan);
  }
  // Europe's international prefix under a plan with another one (NANP's 011): a carrier that
  // uses 00 would ring it abroad, so it is no national number here.
  if (digits.starts_with("00")) return {};
  std::string national = digits;
  if (!plan.national_prefix.empty() && digits.starts_with(plan.national_prefix)) {
    national = digits.substr(plan.national_prefix.size());
  }
  if (national.size() < plan.national_min || national.size() > plan.national_max) return {};
  Number n = international(plan.country_code + national, plan);
  return n;  // domestic, or international in one of the plan's foreign ranges
}

}  // namespace palisade::policy::fraud
