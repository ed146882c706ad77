#pragma once
// What the policy stages see of a new request: where it came from, which configured peer that
// is, and what the stages learned so far (authenticated identity, matched rule ids).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/net/endpoint.h"
#include "core/sip/message.h"

namespace palisade::policy {

// What kind of peer a source is. Unknown is the internet: no configured trunk or PBX address.
enum class PeerKind : std::uint8_t { Unknown = 0, Pbx, Trunk, User };
const char* peerKindName(PeerKind kind);

// Stable rule ids (per-trunk limits, fraud rules, ...) a request matched, so that the shared
// counters it took can be given back when the call ends. Ids survive reloads by name.
struct RuleIds {
  static constexpr std::size_t kMax = 8;
  std::array<std::uint16_t, kMax> ids{};
  std::uint8_t count = 0;
  bool add(std::uint16_t id) {
    if (count == kMax) return false;
    ids[count++] = id;
    return true;
  }
};

struct RequestContext {
  const sip::Message* request = nullptr;
  net::Flow flow;  // source address, transport, listener side, and the peer id the packet filter set
  PeerKind peer_kind = PeerKind::Unknown;
  std::string peer_name;          // the configured name ("pbx", "carrier", a trunk's name)
  bool identity_trusted = false;  // identity headers from this source may cross the B2BUA
  std::string identity;           // set by the stage that authenticated the request (the user name)
  std::string asserted_identity;  // what the call asserts toward the PBX (the user's number or name)
  RuleIds rules;
  // What the toll-fraud stage made of the call (for its CDR and its limits).
  std::string fraud_source;            // "user:2001", "trunk:carrier", "pbx"
  bool fraud_inbound = false;          // from a trunk: not rated, no anomaly detection
  std::string fraud_trunk;             // the trunk it goes through ("trunk:carrier"; empty: none)
  std::string destination;             // "+E164" (empty when it could not be read)
  const char* destination_class = "";  // "domestic", "international", "emergency", "internal"
  std::string fraud_rule;              // the rule that decided
  std::uint32_t max_duration_s = 0;    // the caller's maximum call duration (0: sip.max_call_duration_s)
  std::int64_t micros_per_minute = 0;  // the destination's price (0: not rated)
  bool international = false;          // the destination is international
  std::int64_t source_spend_cap = 0;   // the caller's and the trunk's 24 h caps when admitted (0: none)
  std::int64_t trunk_spend_cap = 0;
  // The filter's own bookkeeping: after a Pending decision resolves to Continue, the engine
  // calls check() again with the same context and the filter goes on from here.
  std::uint8_t resume_at = 0;
};

}  // namespace palisade::policy
