#include "policy/policy_chain.h"

#include <chrono>

#include <fmt/format.h>

#include "core/base/log.h"

#include "policy/auth/digest_stage.h"
#include "policy/bans/ban_source.h"
#include "policy/flood/admission_stage.h"
#include "policy/fraud/fraud_stage.h"

namespace palisade::policy {

PolicyChain::PolicyChain(std::shared_ptr<const PolicySnapshot> snapshot, const base::Clock& clock,
                         stats::Shard* stats, std::uint32_t worker)
    : clock_(clock),
      wall_base_(base::wallBaseOf(clock)),
      stats_(stats),
      worker_(worker),
      snapshot_(std::move(snapshot)) {}

void installDefaultStages(PolicyChain& chain) {
  chain.addStage(std::make_unique<auth::DigestStage>());
  chain.addStage(std::make_unique<fraud::FraudStage>());
  chain.addStage(std::make_unique<flood::AdmissionStage>());
}

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
    // A trunk that authenticates by certificate is not its address over UDP or TCP: a
    // spoofed datagram from that address must not pass as the trunk.
    if (s.any_tls_only && flow.transport != net::Transport::Tls) {
      const PeerInfo* peer = s.peer(*id);
      if (peer != nullptr && peer->tls_only) {
        flow.peer = 0;
        return false;
      }
    }
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

std::string_view PolicyChain::peerName(const net::Flow& flow) const {
  const PeerInfo* peer = flow.peer != 0 ? snapshot_->peer(flow.peer) : nullptr;
  return peer != nullptr ? std::string_view(peer->name) : std::string_view();
}

PeerKind PolicyChain::kindOf(const net::Flow& flow) const {
  if (flow.side == net::Side::Pbx) return PeerKind::Pbx;
  const PeerInfo* peer = snapshot_->peer(flow.peer);
  return peer != nullptr ? peer->kind : PeerKind::Unknown;
}

void PolicyChain::ban(const net::Flow& flow, std::string_view reason) {
  const PolicySnapshot& s = *snapshot_;
  if (s.store == nullptr) return;
  if (bans::banSource(*s.store, flow.remote.address, clock_.now(), s.ban, reason))
    count(stats::Counter::Bans);
}

Screen PolicyChain::screen(const net::Flow& flow, const sip::Message& message) {
  owner_.check("PolicyChain");
  const PolicySnapshot& s = *snapshot_;
  PeerKind kind = kindOf(flow);
  // The flood screen first, overload or not: what floods us is still counted and banned.
  flood::ScreenResult result = flood_.screen(flow, kind, message, s.flood, clock_.now());
  switch (result.reason) {
    case flood::ScreenReason::None:
      break;
    case flood::ScreenReason::RateLimited:
      count(result.verdict == Screen::Reply503 ? stats::Counter::RejectedRateLimited
                                               : stats::Counter::DroppedRateLimited);
      break;
    case flood::ScreenReason::ScannerAgent:
      count(stats::Counter::DroppedScannerAgent);
      break;
    case flood::ScreenReason::ExtensionScan:
      count(stats::Counter::DroppedExtensionScan);
      break;
  }
  if (result.ban) ban(flow, result.ban_reason);
  if (result.verdict != Screen::Pass) return result.verdict;
  // Overload of this worker: new work goes first, calls in progress keep everything they need.
  if (overloaded_ && message.isRequest()) {
    flood::RequestClass request_class = flood::classify(message);
    if (request_class != flood::RequestClass::InDialog) {
      bool trusted = kind == PeerKind::Trunk || kind == PeerKind::Pbx;
      if (request_class == flood::RequestClass::Invite && trusted) {
        count(stats::Counter::RejectedOverload);
        return Screen::Reply503;  // a carrier retries elsewhere at once
      }
      count(stats::Counter::DroppedOverload);
      return Screen::Drop;
    }
  }
  return Screen::Pass;
}

void PolicyChain::report(const net::Flow& flow, Offence offence) {
  owner_.check("PolicyChain");
  PeerKind kind = kindOf(flow);
  if (kind == PeerKind::Trunk || kind == PeerKind::Pbx) return;  // limited, never banned
  count(stats::Counter::ScannerErrors);
  const PolicySnapshot& s = *snapshot_;
  if (s.store == nullptr || s.max_errors == 0) return;
  base::Millis now = clock_.now();
  std::uint32_t errors =
      s.store->countFailure(flood::errorKey(flow.remote.address).view(), now, s.errors_window_ms);
  if (errors <= s.max_errors) return;
  static constexpr const char* kWhat[] = {"malformed messages", "error answers", "refused connections",
                                          "timed-out connections"};
  ban(flow, fmt::format("{} malformed messages, error answers and refused connections in {} s (last: {})",
                        errors, s.errors_window_ms / 1000, kWhat[static_cast<int>(offence)]));
}

void PolicyChain::noteLoad(base::Millis lag_ms, unsigned inbox_fill_percent) {
  owner_.check("PolicyChain");
  const PolicySnapshot& s = *snapshot_;
  if (s.shared == nullptr) return;
  bool over = lag_ms >= s.flood.overload_lag_ms || inbox_fill_percent >= s.flood.overload_queue_percent;
  // The state changes after kLoadTicks ticks in a row (30 ms) on the other side of the
  // thresholds: one slow tick does not shed calls, and recovery is as quick.
  load_ticks_ = over == overloaded_ ? 0 : load_ticks_ + 1;
  if (load_ticks_ < kLoadTicks) return;
  load_ticks_ = 0;
  overloaded_ = over;
  s.shared->setOverloaded(worker_, over);
  if (stats_ != nullptr) stats_->adjust(stats::Gauge::OverloadedWorkers, over ? 1 : -1);
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

void PolicyChain::callAnswered(const RequestContext& admitted, std::uint64_t call_token,
                               std::int64_t unix_ms) {
  owner_.check("PolicyChain");
  fraud::FraudStore* store = snapshot_->fraud_store;
  if (store == nullptr || admitted.micros_per_minute == 0) return;
  // Its cost so far counts toward the caps from now on (the projected cost of active calls).
  for (const std::string* key : {&admitted.fraud_source, &admitted.fraud_trunk}) {
    if (!key->empty()) store->startActive(*key, call_token, admitted.micros_per_minute, unix_ms);
  }
}

std::int64_t PolicyChain::callEnded(const RequestContext& admitted, std::uint64_t call_token,
                                    std::int64_t answer_ms, std::int64_t end_ms) {
  owner_.check("PolicyChain");
  const PolicySnapshot& s = *snapshot_;
  if (s.fraud_store == nullptr || admitted.fraud_source.empty() || answer_ms == 0) return 0;
  fraud::FraudStore& store = *s.fraud_store;
  std::int64_t cost =
      fraud::costMicros(admitted.micros_per_minute, std::max<std::int64_t>(end_ms - answer_ms, 0));
  for (const std::string* key : {&admitted.fraud_source, &admitted.fraud_trunk}) {
    if (key->empty() || admitted.micros_per_minute == 0) continue;
    // Committed before the active entry goes: briefly counted twice, never missed.
    store.addSpend(*key, cost, end_ms);
    store.endActive(*key, call_token);
  }
  if (!admitted.fraud_inbound && admitted.destination.size() > 1 && admitted.destination[0] == '+') {
    fraud::AnomalyDetector detector(store, s.anomaly);
    std::string_view digits = std::string_view(admitted.destination).substr(1);
    if (auto anomaly = detector.onCallEnded(admitted.fraud_source, digits, end_ms - answer_ms, end_ms)) {
      LOG_WARN("fraud: {} by {}: {}", anomaly->name(), admitted.fraud_source, anomaly->detail);
      std::string reason = fmt::format("{}: {}", anomaly->name(), anomaly->detail);
      if (s.block_on_anomaly &&
          store.block(admitted.fraud_source, reason, end_ms) == fraud::BlockResult::Blocked)
        LOG_WARN("fraud: {} blocked until an operator clears it (DELETE /fraud/blocks/{})",
                 admitted.fraud_source, admitted.fraud_source);
      alert(FraudEvent{anomaly->name(),
                       admitted.fraud_source,
                       admitted.flow.remote.toString(),
                       admitted.destination,
                       anomaly->name(),
                       anomaly->detail,
                       {}});
    }
  }
  return cost;
}

bool PolicyChain::overSpendCap(const RequestContext& admitted, std::int64_t unix_ms) {
  owner_.check("PolicyChain");
  const PolicySnapshot& s = *snapshot_;
  if (s.fraud_store == nullptr || admitted.micros_per_minute == 0) return false;
  bool over = false;
  std::pair<const std::string*, std::int64_t> caps[] = {{&admitted.fraud_source, admitted.source_spend_cap},
                                                        {&admitted.fraud_trunk, admitted.trunk_spend_cap}};
  for (const auto& [key, cap] : caps) {
    if (cap == 0 || key->empty()) continue;
    std::int64_t spent = s.fraud_store->spend(*key, unix_ms);
    if (spent < cap) continue;
    over = true;
    // Calls in progress took it over its cap: the operator hears it now, once a day per caller,
    // not at the next call it places.
    if (s.fraud_store->countInWindow(*key + ":cap-alert", unix_ms, 86'400'000, 1) != 1) continue;
    std::string detail =
        fmt::format("{} reached its 24 h cap of {:.2f} {} with calls in progress ({:.2f} spent){}", *key,
                    static_cast<double>(cap) / 1e6, s.currency, static_cast<double>(spent) / 1e6,
                    s.end_calls_over_cap ? "; ending them" : "");
    LOG_WARN("fraud: spend cap: {}", detail);
    alert(FraudEvent{"spend_cap",
                     *key,
                     admitted.flow.remote.toString(),
                     admitted.destination,
                     "max_spend_24h",
                     std::move(detail),
                     {}});
  }
  return over && s.end_calls_over_cap;
}

void PolicyChain::cancelPending(std::uint64_t token) {
  for (auto& stage : stages_) stage->cancel(token);
}

}  // namespace palisade::policy
