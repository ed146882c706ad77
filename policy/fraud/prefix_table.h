#pragma once
// Longest-prefix match of E.164 numbers (digits, country code first) against a table of
// prefixes: destination allow and deny lists, the high-risk ranges, the rate table. A sorted
// vector searched once per candidate length (at most 15 binary searches): no scan, compact for
// 50,000-prefix rate tables, and immutable once built, so a snapshot can be shared by workers.
#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/fraud/e164.h"

namespace palisade::policy::fraud {

template <typename Value>
class PrefixTable {
 public:
  // False (and nothing added) for a prefix that is empty, not all digits or longer than E.164.
  bool add(std::string_view prefix, Value value) {
    if (prefix.empty() || prefix.size() > kMaxE164Digits) return false;
    if (!std::all_of(prefix.begin(), prefix.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    entries_.emplace_back(std::string(prefix), std::move(value));
    built_ = false;
    return true;
  }
  // Sorts the table; of a prefix listed twice the first added wins. Call before lookups.
  void build() {
    std::stable_sort(entries_.begin(), entries_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    entries_.erase(std::unique(entries_.begin(), entries_.end(),
                               [](const auto& a, const auto& b) { return a.first == b.first; }),
                   entries_.end());
    std::size_t longest = 0;
    for (const auto& e : entries_) longest = std::max(longest, e.first.size());
    longest_ = longest;
    built_ = true;
  }
  // The value of the longest prefix of `number` in the table, with that prefix; nullopt if none.
  struct Match {
    std::string_view prefix;
    const Value* value;
  };
  std::optional<Match> longest(std::string_view number) const {
    if (!built_) return std::nullopt;
    for (std::size_t length = std::min(number.size(), longest_); length > 0; --length) {
      std::string_view candidate = number.substr(0, length);
      auto it = std::lower_bound(entries_.begin(), entries_.end(), candidate,
                                 [](const auto& entry, std::string_view key) { return entry.first < key; });
      if (it != entries_.end() && it->first == candidate) return Match{it->first, &it->second};
    }
    return std::nullopt;
  }
  std::size_t size() const { return entries_.size(); }
  // Sorted by prefix once built.
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, Value>> entries_;
  std::size_t longest_ = 0;
  bool built_ = true;
};

}  // namespace palisade::policy::fraud
