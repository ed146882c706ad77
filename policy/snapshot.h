#pragma once
// What the policy stages see: an immutable snapshot compiled from a config on the control
// thread (peers with stable rule ids, source-address tries), handed to every worker by
// message on reload. Stages never read the config itself.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/base/result.h"
#include "core/config/config.h"
#include "core/net/endpoint.h"
#include "core/routing/location_store.h"
#include "core/routing/trunk_routes.h"
#include "policy/acl/address_trie.h"
#include "policy/api/request_context.h"
#include "policy/api/shared_counters.h"
#include "policy/auth/digest.h"
#include "policy/auth/nonce_counts.h"
#include "policy/bans/state_store.h"
#include "policy/flood/flood_guard.h"
#include "policy/fraud/anomaly_detector.h"
#include "policy/fraud/destination_rules.h"
#include "policy/fraud/fraud_store.h"
#include "policy/fraud/rate_table.h"

namespace palisade::policy {

// Stable ids for named rules (peers, limits): the same name keeps its id across reloads, so
// limiter state and shared counters keyed by it survive. Control thread only.
class RuleRegistry {
 public:
  // 0 is never returned (it is the global slot / "no peer"); nothing when the table is full.
  std::optional<std::uint16_t> idOf(const std::string& name);

 private:
  std::map<std::string, std::uint16_t, std::less<>> ids_;
  std::uint16_t next_ = 1;
};

struct PeerInfo {
  std::uint16_t id = 0;
  PeerKind kind = PeerKind::Unknown;
  std::string name;
  bool trust_identity = false;
  std::uint32_t max_calls = 0;  // its calls in progress (0: no limit of its own)
  Rate max_cps;                 // its new calls per second
  bool tls_only = false;        // mutual TLS: its addresses count as it over TLS only
  fraud::PeerRules fraud;       // its toll-fraud rules
};

// A user that authenticates with digest credentials.
struct UserEntry {
  std::uint16_t id = 0;  // stable rule id
  std::string name;
  std::string asserted;            // what its calls assert toward the PBX: its number, else its name
  std::array<std::string, 3> ha1;  // by auth::Algorithm; empty where it has none
  bool anywhere = true;            // no `sources`: from any address
  bool require_tls = false;        // authenticates and registers over TLS only
  AddressTrie sources;
  std::uint32_t max_calls = 0;  // its calls in progress (0: no limit of its own)
  Rate max_cps;                 // its new calls per second
  fraud::PeerRules fraud;       // its toll-fraud rules
};

// State that outlives snapshots (nonces issued before a reload stay valid after it), shared by
// every worker's chain; owned by whoever compiles the snapshots.
struct AuthState {
  auth::NonceIssuer nonces;  // key drawn once, at start
  auth::NonceCounts counts;  // highest nonce count seen per nonce, across workers
};

struct PolicySnapshot {
  std::vector<PeerInfo> peers;  // configured peers
  AddressTrie public_sources;   // public listener: trunk addresses -> peer id
  AddressTrie pbx_sources;      // PBX listener: PBX addresses -> peer id (everything else is dropped)
  const PeerInfo* peer(std::uint16_t id) const;

  // Digest users (sorted by name) and how they are challenged.
  std::vector<UserEntry> users;
  const UserEntry* user(std::string_view name) const;
  // Whether a registration may stand under this snapshot: its user exists and may come from
  // where it registered (a reload ends the others).
  bool allowsBinding(const routing::Binding& binding) const;
  bool users_anywhere = false;  // some user may come from any address
  bool any_tls_only = false;    // some trunk requires mutual TLS
  AddressTrie user_sources;     // every address some user may come from (when none is "anywhere")
  std::string realm;
  std::vector<auth::Algorithm> algorithms;  // offered in this order
  std::int64_t nonce_lifetime_ms = 300'000;
  AuthState* auth = nullptr;

  // Brute-force defence: where failures are counted and bans kept (survives reloads).
  bans::BanSettings ban;
  bans::StateStore* store = nullptr;
  // The registrar's bindings: keep-alives from a registered flow are answered.
  const routing::LocationStore* location = nullptr;

  // Flood defence on the receiving worker, and scanner detection.
  flood::FloodSettings flood;
  std::uint32_t max_errors = 20;  // malformed messages, 4xx answers, refused connections per window
  base::Millis errors_window_ms = 60'000;
  // Admission: new calls per second across all workers, and the shared counters behind it and
  // the per-peer limits (null: no admission limits, as in tests that do not need them).
  Rate max_cps;
  SharedCounters* shared = nullptr;

  // Toll fraud: the destination rules, and the routing of the PBX's calls to trunks (the same
  // as the engine's), so that the rules of the trunk a call goes out through apply to it.
  fraud::DestinationRules destinations;
  routing::TrunkRoutes trunk_routes;
  // Limits, spend and anomalies are counted in the fraud store (null: none of them apply, as in
  // tests that do not need them); prices come from the rate table (null: calls are not rated).
  fraud::FraudStore* fraud_store = nullptr;
  std::shared_ptr<const fraud::RateTable> rates;
  std::string currency;
  std::uint32_t spend_warning_percent = 80;
  bool end_calls_over_cap = false;
  fraud::AnomalySettings anomaly;
  bool block_on_anomaly = false;
  std::uint64_t generation = 0;  // distinct for every compiled snapshot (stages cache by it)
  // The trunk a Request-URI user part from the PBX is routed to (null without trunks).
  const PeerInfo* routedTrunk(std::string_view request_user) const;
};

base::Result<std::shared_ptr<const PolicySnapshot>> compileSnapshot(const config::Config& config,
                                                                    RuleRegistry& registry, AuthState& auth,
                                                                    bans::StateStore& store,
                                                                    const routing::LocationStore& location,
                                                                    SharedCounters* shared = nullptr,
                                                                    fraud::FraudStore* fraud_store = nullptr);

}  // namespace palisade::policy
