#pragma once
// Dialled numbers as the toll-fraud rules see them: normalised to E.164 by the dial plan of the
// peer that dialled (its country code and its national and international prefixes), and
// classified. A number that cannot be normalised is Unknown, which the rules treat as the most
// restricted class; an emergency number of the dial plan is recognised before anything else,
// so no rule can block it. Pure functions, any thread; the input is untrusted.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace palisade::policy::fraud {

struct DialPlan {
  std::string country_code;          // "1" (NANP), "44", "49"...
  std::string national_prefix;       // "1" (NANP long distance), "0" (most of Europe); may be empty
  std::string international_prefix;  // "011" (NANP), "00" (most of Europe)
  std::vector<std::string> emergency = {"112"};  // dialled as they are: 911, 112, 999...
  std::size_t national_min = 7;                  // digits of a national (significant) number without prefix
  std::size_t national_max = 10;
  // E.164 prefixes under the plan's own country code that are other countries: NANP's +1 876
  // (Jamaica), +1 809 (Dominican Republic)... Numbers there are international, not domestic.
  std::vector<std::string> foreign = {};
};

enum class NumberClass { Emergency, Domestic, International, Unknown };
const char* numberClassName(NumberClass c);

struct Number {
  NumberClass kind = NumberClass::Unknown;
  std::string e164;  // digits only, country code first, no '+' (empty for Unknown); the
                     // emergency number as dialled for Emergency
};

// E.164 allows at most 15 digits (ITU-T E.164 §6).
constexpr std::size_t kMaxE164Digits = 15;

// `dialled`: a SIP URI's user part or a tel: number, without parameters: a ';' (phone-context,
// isub, postd...) makes the number Unknown, since a carrier may read the number by them.
// Visual separators (RFC 3966: - . ( ) and space) are dropped, and "(0)", the national prefix
// written inside an international number (+44 (0)20...), with them; anything else that is not
// a digit, or a leading '+', makes the number Unknown (letters, '*', '#', a '+' in the middle).
// A national number that begins with 00 (Europe's international prefix, under a plan with
// another one) is Unknown too: a carrier that uses 00 would ring it abroad.
Number normalise(std::string_view dialled, const DialPlan& plan);

}  // namespace palisade::policy::fraud
