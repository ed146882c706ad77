#pragma once
// Which trunk a call from the PBX goes to: the trunk whose dialled-number prefix is the longest
// match of the Request-URI's number, else the first trunk. The engine routes by it and the
// toll-fraud stage applies that trunk's rules by it, so both always agree. Immutable once built.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace palisade::routing {

// The number in a Request-URI user part as the routing compares it: digits with an optional
// leading '+', visual separators dropped, up to the first character that is neither.
std::string dialledNumber(std::string_view user);

class TrunkRoutes {
 public:
  // `prefix` as configured ("+44", "0044"); the first trunk that names a prefix keeps it.
  void add(std::string_view prefix, std::size_t trunk) { prefixes_.emplace_back(std::string(prefix), trunk); }
  void build();
  void clear() { prefixes_.clear(); }
  // The trunk index for a Request-URI user part (0, the first trunk, when nothing matches).
  std::size_t route(std::string_view request_user) const;

 private:
  std::vector<std::pair<std::string, std::size_t>> prefixes_;  // sorted prefix -> trunk
};

}  // namespace palisade::routing
