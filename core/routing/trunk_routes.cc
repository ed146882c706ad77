#include "core/routing/trunk_routes.h"

#include <algorithm>

namespace palisade::routing {

std::string dialledNumber(std::string_view user) {
  std::string out;
  for (char c : user) {
    if (c >= '0' && c <= '9') {
      out.push_back(c);
    } else if (c == '+' && out.empty()) {
      out.push_back(c);
    } else if (c != '-' && c != '.' && c != '(' && c != ')' && c != ' ') {
      break;  // ;params or letters: the number ends
    }
  }
  return out;
}

void TrunkRoutes::build() {
  // Sorted, so that the longest match is a few binary searches rather than a scan.
  std::stable_sort(prefixes_.begin(), prefixes_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

std::size_t TrunkRoutes::route(std::string_view request_user) const {
  std::string number = dialledNumber(request_user);
  for (std::size_t length = std::min<std::size_t>(number.size(), 21); length > 0; --length) {
    std::string_view candidate(number.data(), length);
    auto it = std::lower_bound(prefixes_.begin(), prefixes_.end(), candidate,
                               [](const auto& entry, std::string_view key) { return entry.first < key; });
    if (it != prefixes_.end() && it->first == candidate) return it->second;
  }
  return 0;
}

}  // namespace palisade::routing
