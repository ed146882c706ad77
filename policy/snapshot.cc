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
                           const std::string& name, PeerKind kind, const config::Peer& peer) {
  auto id = registry.idOf("peer:" + name);
  if (!id) return base::Error{"too many rules"};
  snapshot.peers.push_back(PeerInfo{*id, kind, name, peer.trust_identity});
  for (const auto& text : peer.addresses) {
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
  auto pbx = addPeer(*snapshot, registry, snapshot->pbx_sources, "pbx", PeerKind::Pbx, config.pbx);
  if (!pbx) return pbx.error();
  auto carrier =
      addPeer(*snapshot, registry, snapshot->public_sources, "carrier", PeerKind::Trunk, config.carrier);
  if (!carrier) return carrier.error();
  return std::shared_ptr<const PolicySnapshot>(std::move(snapshot));
}

}  // namespace palisade::policy
