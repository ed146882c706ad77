#include "policy/snapshot.h"

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

const PeerInfo* PolicySnapshot::peer(std::uint16_t id) const {
  if (id == 0) return nullptr;
  for (const auto& p : peers) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

namespace {

base::Result<bool> addPeer(PolicySnapshot& snapshot, RuleRegistry& registry, AddressTrie& trie,
                           const std::string& name, PeerKind kind, const std::vector<std::string>& addresses,
                           bool trust_identity) {
  auto id = registry.idOf(fmt::format("peer:{}:{}", peerKindName(kind), name));
  if (!id) return base::Error{"too many rules"};
  snapshot.peers.push_back(PeerInfo{*id, kind, name, trust_identity});
  for (const auto& text : addresses) {
    auto prefix = parsePrefix(text);
    if (!prefix) return base::Error{fmt::format("{}: bad address {}", name, text)};
    trie.insert(prefix->first, prefix->second, *id);
  }
  return true;
}

}  // namespace

base::Result<std::shared_ptr<const PolicySnapshot>> compileSnapshot(const config::Config& config,
                                                                    RuleRegistry& registry) {
  auto snapshot = std::make_shared<PolicySnapshot>();
  auto pbx = addPeer(*snapshot, registry, snapshot->pbx_sources, "pbx", PeerKind::Pbx, config.pbx.addresses,
                     config.pbx.trust_identity);
  if (!pbx) return pbx.error();
  // Trunks in config order: where address ranges overlap, the longest prefix decides.
  for (const config::Trunk& trunk : config.trunks) {
    auto added = addPeer(*snapshot, registry, snapshot->public_sources, trunk.name, PeerKind::Trunk,
                         trunk.addresses, trunk.trust_identity);
    if (!added) return added.error();
  }
  return std::shared_ptr<const PolicySnapshot>(std::move(snapshot));
}

}  // namespace palisade::policy
