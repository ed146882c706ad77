#pragma once
// What the policy stages see: an immutable snapshot compiled from a config on the control
// thread (peers with stable rule ids, source-address tries), handed to every worker by
// message on reload. Stages never read the config itself.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/base/result.h"
#include "core/config/config.h"
#include "core/net/endpoint.h"
#include "policy/acl/address_trie.h"
#include "policy/api/request_context.h"

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
};

struct PolicySnapshot {
  std::vector<PeerInfo> peers;  // configured peers
  AddressTrie public_sources;   // public listener: trunk addresses -> peer id
  AddressTrie pbx_sources;      // PBX listener: PBX addresses -> peer id (everything else is dropped)
  const PeerInfo* peer(std::uint16_t id) const;
};

base::Result<std::shared_ptr<const PolicySnapshot>> compileSnapshot(const config::Config& config,
                                                                    RuleRegistry& registry);

}  // namespace palisade::policy
