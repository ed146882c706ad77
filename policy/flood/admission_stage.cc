#include "policy/flood/admission_stage.h"

namespace palisade::policy::flood {

Decision AdmissionStage::evaluate(RequestContext& context, const PolicySnapshot& snapshot,
                                  StageServices& services) {
  const sip::Message& request = *context.request;
  if (request.method() != sip::Method::Invite || snapshot.shared == nullptr) return Decision::proceed();
  SharedCounters& shared = *snapshot.shared;
  if (shared.draining()) {
    services.count(stats::Counter::RejectedDraining);
    return Decision::reject(503, "Service Unavailable", kRetryAfter);
  }
  // The limits of the peer the call comes from: its trunk, or the user it authenticated as.
  std::uint16_t id = 0;
  std::uint32_t max_calls = 0;
  Rate max_cps;
  if (context.peer_kind == PeerKind::Trunk) {
    if (const PeerInfo* peer = snapshot.peer(context.flow.peer)) {
      id = peer->id;
      max_calls = peer->max_calls;
      max_cps = peer->max_cps;
    }
  } else if (context.peer_kind == PeerKind::User) {
    if (const UserEntry* user = snapshot.user(context.identity)) {
      id = user->id;
      max_calls = user->max_calls;
      max_cps = user->max_cps;
    }
  }
  // The peer's own limits first: a peer over them must not use up the budget every other
  // peer shares (a retry storm from one small trunk would otherwise lock out the rest).
  bool holds_call = false;
  if (id != 0 && max_calls != 0) {
    if (!shared.tryAcquire(id, max_calls)) {
      services.count(stats::Counter::RejectedCallLimit);
      return Decision::reject(503, "Service Unavailable", kRetryAfter);
    }
    holds_call = true;
  }
  std::int64_t now_us = microsOf(services.now());
  if ((id != 0 && !shared.takeRate(id, now_us, max_cps)) ||
      !shared.takeRate(SharedCounters::kGlobalRate, now_us, snapshot.max_cps)) {
    if (holds_call) shared.release(id);
    services.count(stats::Counter::RejectedCallRate);
    return Decision::reject(503, "Service Unavailable", kRetryAfter);
  }
  // Given back when the call ends, or when the request does not become one.
  if (holds_call && !context.rules.add(id)) shared.release(id);
  return Decision::proceed();
}

}  // namespace palisade::policy::flood
