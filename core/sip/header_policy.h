#pragma once
// Which received header fields cross the B2BUA, per direction (DESIGN.md "Calls"): an
// allow-list, not a drop-list. Palisade writes the dialog, routing and framing fields itself;
// credentials never cross; identity headers cross only from peers trusted for identity; other
// fields cross when the list of the side they go to names them, and unknown ones are dropped.
// Immutable once built; one per config snapshot.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/net/endpoint.h"
#include "core/sip/message.h"

namespace palisade::sip {

// The lower-case long form of a header name, compact forms expanded (RFC 3261 §7.3.3 and the
// IANA registry); empty when `name` is not a token of at most 64 characters.
std::string canonicalHeaderName(std::string_view name);

// For config validation: why `name` may not be listed (in a direction list, or in the identity
// list), or nothing when it may.
std::optional<std::string> headerListProblem(std::string_view name, bool identity_list);

// The identity headers of RFC 3325, RFC 5806, RFC 7044 and RFC 3323 (the default identity list).
const std::vector<std::string>& defaultIdentityHeaders();

class HeaderPolicy {
 public:
  HeaderPolicy() = default;  // copies nothing
  // Names are validated by the config loader (headerListProblem); others are ignored here.
  HeaderPolicy(const std::vector<std::string>& to_pbx, const std::vector<std::string>& to_public,
               const std::vector<std::string>& identity);

  // Whether a field received in a message crosses toward side `to`. `identity_trusted`: the
  // sender of the message is trusted for identity.
  bool crosses(const HeaderField& field, net::Side to, bool identity_trusted) const;

 private:
  enum Verdict : std::uint8_t { kNever = 0, kAlways = 1, kIfTrusted = 2, kByName = 3 };
  bool listed(std::string_view canonical, net::Side to, bool identity_trusted) const;
  // Per direction: the verdict for every scanned header id (Hdr::Other is kByName).
  std::array<std::array<std::uint8_t, static_cast<std::size_t>(Hdr::kCount)>, 2> by_id_{};
  std::array<std::vector<std::string>, 2> names_;  // sorted canonical names per direction
  std::vector<std::string> identity_;              // sorted canonical names
};

}  // namespace palisade::sip
