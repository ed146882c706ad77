#include "policy/policy_chain.h"

#include "policy/auth/digest_stage.h"

namespace palisade::policy {

PolicyChain::PolicyChain(std::shared_ptr<const PolicySnapshot> snapshot, const base::Clock& clock,
                         stats::Shard* stats)
    : clock_(clock), stats_(stats), snapshot_(std::move(snapshot)) {}

void installDefaultStages(PolicyChain& chain) { chain.addStage(std::make_unique<auth::DigestStage>()); }

void PolicyChain::apply(std::shared_ptr<const PolicySnapshot> snapshot) {
  owner_.check("PolicyChain");
  snapshot_ = std::move(snapshot);
}

bool PolicyChain::admit(net::Flow& flow, std::string_view /*bytes*/) {
  owner_.check("PolicyChain");
  const PolicySnapshot& s = *snapshot_;
  if (flow.side == net::Side::Pbx) {
    // Only the PBX may use the PBX-facing listener: anything else is dropped unanswered.
    auto id = s.pbx_sources.lookup(flow.remote.address);
    if (!id) {
      count(stats::Counter::DroppedPbxAcl);
      return false;
    }
    flow.peer = *id;
    flow.verified = true;
    return true;
  }
  auto id = s.public_sources.lookup(flow.remote.address);
  if (id) {
    flow.peer = *id;
    flow.verified = true;  // a configured trunk
    return true;
  }
  flow.peer = 0;
  // A banned source costs a hash lookup: no parse, no answer.
  if (s.store != nullptr && s.store->banned(flow.remote.address, clock_.now())) {
    count(stats::Counter::DroppedBanned);
    return false;
  }
  // Default deny: the internet reaches something only as a user. With no user that may come
  // from this address, it gets nothing at all, not even a parse.
  if (!s.users.empty() && (s.users_anywhere || s.user_sources.lookup(flow.remote.address).has_value()))
    return true;
  count(stats::Counter::DroppedDefaultDeny);
  return false;
}

Decision PolicyChain::check(RequestContext& context) {
  owner_.check("PolicyChain");
  const PolicySnapshot& s = *snapshot_;
  if (const PeerInfo* peer = s.peer(context.flow.peer)) {
    context.peer_kind = peer->kind;
    context.peer_name = peer->name;
    context.identity_trusted = peer->trust_identity;
  } else {
    context.peer_kind = PeerKind::Unknown;
    context.peer_name.clear();
    context.identity_trusted = false;
  }
  for (std::size_t i = context.resume_at; i < stages_.size(); ++i) {
    Decision decision = stages_[i]->evaluate(context, s, *this);
    if (decision.kind == Decision::Kind::Pending) {
      context.resume_at = static_cast<std::uint8_t>(i + 1);
      return decision;
    }
    if (decision.kind != Decision::Kind::Continue) return decision;
  }
  return Decision::proceed();
}

void PolicyChain::cancelPending(std::uint64_t token) {
  for (auto& stage : stages_) stage->cancel(token);
}

}  // namespace palisade::policy
