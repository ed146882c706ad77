#include "policy/snapshot.h"

#include <algorithm>
#include <atomic>

#include <fmt/format.h>

#include "policy/api/shared_counters.h"

namespace palisade::policy {

std::optional<std::uint16_t> RuleRegistry::idOf(const std::string& name) {
  if (auto it = ids_.find(name); it != ids_.end()) return it->second;
  if (next_ >= SharedCounters::kSlots) return std::nullopt;
  std::uint16_t id = next_++;
  ids_.emplace(name, id);
  return id;
}

const UserEntry* PolicySnapshot::user(std::string_view name) const {
  auto it = std::lower_bound(users.begin(), users.end(), name, [](const UserEntry& u, std::string_view n) {
    return std::string_view(u.name) < n;
  });
  return it != users.end() && it->name == name ? &*it : nullptr;
}

const PeerInfo* PolicySnapshot::peer(std::uint16_t id) const {
  if (id == 0) return nullptr;
  for (const auto& p : peers) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

const PeerInfo* PolicySnapshot::routedTrunk(std::string_view request_user) const {
  // peers: the PBX, then the trunks in config order (compileSnapshot).
  std::size_t index = 1 + trunk_routes.route(request_user);
  return index < peers.size() ? &peers[index] : nullptr;
}

namespace {

// A calls-per-second limit lets one second's worth through at once.
Rate callRate(std::uint32_t per_second) { return Rate{per_second, std::max<std::uint32_t>(per_second, 1)}; }

flood::ClassRates classRates(const config::FloodRates& r) {
  auto rate = [&r](std::uint32_t per_second) { return Rate{per_second, per_second * r.burst_s}; };
  return {rate(r.invite_per_s), rate(r.register_per_s), rate(r.other_per_s), rate(r.in_dialog_per_s)};
}

std::string lowerCase(std::string text) {
  for (char& c : text) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return text;
}

base::Result<bool> addPeer(PolicySnapshot& snapshot, RuleRegistry& registry, AddressTrie& trie,
                           const std::string& name, PeerKind kind, const std::vector<std::string>& addresses,
                           bool trust_identity, std::uint32_t max_calls = 0, std::uint32_t max_cps = 0) {
  auto id = registry.idOf(fmt::format("peer:{}:{}", peerKindName(kind), name));
  if (!id) return base::Error{"too many rules"};
  snapshot.peers.push_back(
      PeerInfo{*id, kind, name, trust_identity, max_calls, callRate(max_cps), false, {}});
  for (const auto& text : addresses) {
    auto prefix = parsePrefix(text);
    if (!prefix) return base::Error{fmt::format("{}: bad address {}", name, text)};
    trie.insert(prefix->first, prefix->second, *id);
  }
  return true;
}

}  // namespace

bool PolicySnapshot::allowsBinding(const routing::Binding& binding) const {
  const UserEntry* entry = user(binding.user);
  return entry != nullptr &&
         (entry->anywhere || entry->sources.lookup(binding.flow.remote.address).has_value()) &&
         (!entry->require_tls || binding.flow.transport == net::Transport::Tls);
}

base::Result<std::shared_ptr<const PolicySnapshot>> compileSnapshot(
    const config::Config& config, RuleRegistry& registry, AuthState& auth, bans::StateStore& store,
    const routing::LocationStore& location, SharedCounters* shared, fraud::FraudStore* fraud_store) {
  static std::atomic<std::uint64_t> generations{0};
  auto snapshot = std::make_shared<PolicySnapshot>();
  snapshot->generation = ++generations;
  snapshot->shared = shared;
  snapshot->max_cps = callRate(config.max_cps);
  flood::FloodSettings& flood = snapshot->flood;
  flood.reply_503 = config.flood.reply_503;
  flood.internet = classRates(config.flood.internet);
  flood.trunk = classRates(config.flood.trunk);
  flood.pbx = classRates(config.flood.pbx);
  flood.ban_excess = config.flood.ban_excess;
  flood.ban_window_ms = static_cast<base::Millis>(config.flood.ban_window_s) * 1000;
  for (const auto& agent : config.scanners.user_agents) flood.scanner_agents.push_back(lowerCase(agent));
  flood.max_unanswered = config.scanners.max_unanswered;
  flood.names_window_ms = static_cast<base::Millis>(config.scanners.window_s) * 1000;
  flood.overload_lag_ms = config.flood.overload_lag_ms;
  flood.realm = config.auth.realm;
  flood.overload_queue_percent = config.flood.overload_queue_percent;
  snapshot->max_errors = config.scanners.max_errors;
  snapshot->errors_window_ms = flood.names_window_ms;
  snapshot->auth = &auth;
  snapshot->store = &store;
  snapshot->location = &location;
  snapshot->ban.threshold = config.ban.threshold;
  snapshot->ban.window_ms = static_cast<base::Millis>(config.ban.window_s) * 1000;
  snapshot->ban.duration_ms = static_cast<base::Millis>(config.ban.duration_s) * 1000;
  snapshot->ban.max_duration_ms = static_cast<base::Millis>(config.ban.max_duration_s) * 1000;
  snapshot->realm = config.auth.realm;
  snapshot->nonce_lifetime_ms = static_cast<std::int64_t>(config.auth.nonce_lifetime_s) * 1000;
  for (const auto& name : config.auth.algorithms) {
    if (auto algorithm = auth::algorithmFromName(name)) snapshot->algorithms.push_back(*algorithm);
  }
  auto destinations = fraud::compileDestinationRules(config.fraud);
  if (!destinations) return destinations.error();
  snapshot->destinations = std::move(destinations.value());
  snapshot->fraud_store = fraud_store;
  if (!config.fraud.rate_file.empty()) {
    auto rates = fraud::loadRateTable(config.fraud.rate_file);
    if (!rates) return rates.error();
    snapshot->rates = std::make_shared<const fraud::RateTable>(std::move(rates.value()));
  }
  snapshot->currency = config.fraud.currency;
  snapshot->spend_warning_percent = config.fraud.spend_warning_percent;
  snapshot->end_calls_over_cap = config.fraud.end_calls_over_cap;
  snapshot->anomaly.spike_factor = config.fraud.spike_factor;
  snapshot->anomaly.min_spike_attempts = config.fraud.min_spike_attempts;
  snapshot->anomaly.sequential_run = config.fraud.sequential_run;
  snapshot->anomaly.short_calls.count = config.fraud.short_call_count;
  snapshot->anomaly.short_calls.max_duration_s = config.fraud.short_call_max_s;
  snapshot->anomaly.short_calls.window_s = config.fraud.short_call_window_s;
  snapshot->block_on_anomaly = config.fraud.block_on_anomaly;
  for (const config::User& user : config.users) {
    UserEntry entry;
    auto rules = fraud::compilePeerRules(user.fraud, "user:" + user.name, snapshot->destinations);
    if (!rules) return rules.error();
    entry.fraud = std::move(rules.value());
    auto id = registry.idOf("user:" + user.name);
    if (!id) return base::Error{"too many rules"};
    entry.id = *id;
    entry.name = user.name;
    entry.asserted = user.number.empty() ? user.name : user.number;
    // HA1s are computed once here; the password itself goes no further.
    for (auth::Algorithm algorithm :
         {auth::Algorithm::Md5, auth::Algorithm::Sha256, auth::Algorithm::Sha512_256}) {
      std::string& slot = entry.ha1[static_cast<std::size_t>(algorithm)];
      if (!user.password.empty()) {
        slot = auth::ha1(algorithm, user.name, config.auth.realm, user.password);
      } else {
        slot = algorithm == auth::Algorithm::Md5      ? user.ha1_md5
               : algorithm == auth::Algorithm::Sha256 ? user.ha1_sha256
                                                      : user.ha1_sha512_256;
      }
    }
    entry.max_calls = user.max_calls;
    entry.max_cps = callRate(user.max_cps);
    entry.anywhere = user.sources.empty();
    entry.require_tls = user.require_tls;
    snapshot->users_anywhere = snapshot->users_anywhere || entry.anywhere;
    for (const auto& text : user.sources) {
      auto prefix = parsePrefix(text);
      if (!prefix) return base::Error{fmt::format("user {}: bad source {}", user.name, text)};
      entry.sources.insert(prefix->first, prefix->second, 1);
      snapshot->user_sources.insert(prefix->first, prefix->second, 1);
    }
    snapshot->users.push_back(std::move(entry));
  }
  std::sort(snapshot->users.begin(), snapshot->users.end(),
            [](const UserEntry& a, const UserEntry& b) { return a.name < b.name; });
  auto pbx = addPeer(*snapshot, registry, snapshot->pbx_sources, "pbx", PeerKind::Pbx, config.pbx.addresses,
                     config.pbx.trust_identity);
  if (!pbx) return pbx.error();
  auto pbx_rules = fraud::compilePeerRules(config.pbx.fraud, "pbx", snapshot->destinations);
  if (!pbx_rules) return pbx_rules.error();
  snapshot->peers.back().fraud = std::move(pbx_rules.value());
  // Trunks in config order: where address ranges overlap, the longest prefix decides.
  for (const config::Trunk& trunk : config.trunks) {
    auto added = addPeer(*snapshot, registry, snapshot->public_sources, trunk.name, PeerKind::Trunk,
                         trunk.addresses, trunk.trust_identity, trunk.max_calls, trunk.max_cps);
    if (!added) return added.error();
    auto rules = fraud::compilePeerRules(trunk.fraud, "trunk:" + trunk.name, snapshot->destinations);
    if (!rules) return rules.error();
    snapshot->peers.back().fraud = std::move(rules.value());
    for (const auto& prefix : trunk.prefixes) snapshot->trunk_routes.add(prefix, snapshot->peers.size() - 2);
    if (!trunk.tls_client_ca.empty()) {
      snapshot->peers.back().tls_only = true;
      snapshot->any_tls_only = true;
    }
  }
  snapshot->trunk_routes.build();
  return std::shared_ptr<const PolicySnapshot>(std::move(snapshot));
}

}  // namespace palisade::policy
