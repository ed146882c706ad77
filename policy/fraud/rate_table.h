#pragma once
// The rate table of the spend caps: E.164 prefix → price per minute, from a text file, one line
// per prefix:
//
//   +44       0.0120   United Kingdom
//   +44-7     0.0450   United Kingdom mobile   # '#' starts a comment
//
// Fields are separated by spaces or tabs, so a prefix is written without spaces ('+' optional;
// '-', '.', '(' and ')' may separate its digits). The price is a non-negative decimal with at
// most 6 decimals and a decimal point ("5.0", not "5": a prefix written with spaces, as in
// "+44 20 0.05", is then an error rather than a price of 20). It is read exactly into integer
// millionths of the currency unit (micro-units), never through a double. The rest of the line is
// the label. Errors name the file and line. Read on the control thread at start-up and reload;
// the table is immutable afterwards, so workers may share it.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/clock.h"
#include "core/base/result.h"
#include "policy/fraud/prefix_table.h"

namespace palisade::policy::fraud {

// Prices above this (a million units a minute) are refused as typing errors; it also keeps
// every cost computation inside 64 bits.
constexpr std::int64_t kMaxMicrosPerMinute = std::int64_t{1'000'000} * 1'000'000;

struct Rate {
  std::string_view prefix;  // the matched prefix (digits); both views live as long as the table
  std::int64_t micros_per_minute = 0;
  std::string_view label;
};

class RateTable {
 public:
  struct Entry {
    std::int64_t micros_per_minute = 0;
    std::string label;
  };

  // The rate of the longest prefix of `e164` (digits, country code first); nullopt if none.
  std::optional<Rate> rateOf(std::string_view e164) const;
  std::size_t size() const { return table_.size(); }

 private:
  friend base::Result<RateTable> parseRateTable(std::string_view text, std::string_view source);
  PrefixTable<Entry> table_;
};

// `text` as read from `source` (used in error messages: "SOURCE:LINE: ...").
base::Result<RateTable> parseRateTable(std::string_view text, std::string_view source);
// Reads and parses `path`; files larger than 8 MiB are refused.
base::Result<RateTable> loadRateTable(const std::string& path);

// What `billed_ms` of a call at `micros_per_minute` costs. Billing is per second, every started
// second counts (1 ms bills 1 s), and the fraction of a micro-unit is rounded up too, so the
// cost is never under-stated: ceil(price × ceil(ms / 1000) / 60). A negative duration costs 0;
// a result beyond 64 bits saturates.
std::int64_t costMicros(std::int64_t micros_per_minute, base::Millis billed_ms);

}  // namespace palisade::policy::fraud
