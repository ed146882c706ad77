#include "policy/fraud/fraud_stage.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/base/log.h"
#include "core/sip/headers.h"

namespace palisade::policy::fraud {

namespace {

// What the caller is told: the class of refusal, never which rule matched.
struct Refusal {
  stats::Counter counter;
  const char* kind;
  const char* text;
};

Refusal refusalOf(Judgement::Outcome outcome) {
  switch (outcome) {
    case Judgement::Outcome::International:
      return {stats::Counter::FraudRefusedInternational, "international_refused",
              "International calls not allowed"};
    case Judgement::Outcome::UnknownNumber:
      return {stats::Counter::FraudRefusedUnknownNumber, "unknown_number", "Number not recognised"};
    case Judgement::Outcome::Denied:
    case Judgement::Outcome::Allowed:
      break;
  }
  return {stats::Counter::FraudRefusedDestination, "destination_refused", "Destination not allowed"};
}

std::uint32_t shorterLimit(std::uint32_t a, std::uint32_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

}  // namespace

bool FraudStage::mayLog(base::Millis now) {
  base::Millis second = now / 1000;
  if (second != log_second_) {
    if (skipped_ != 0) LOG_WARN("fraud: {} more refused call(s) in the last second not logged", skipped_);
    log_second_ = second;
    lines_ = 0;
    skipped_ = 0;
  }
  if (lines_ < kLinesPerSecond) {
    ++lines_;
    return true;
  }
  ++skipped_;
  return false;
}

Decision FraudStage::evaluate(RequestContext& context, const PolicySnapshot& snapshot,
                              StageServices& services) {
  const sip::Message& request = *context.request;
  if (request.method() != sip::Method::Invite) return Decision::proceed();
  sip::Uri uri;
  if (!sip::parseUri(request.requestUri(), uri)) return Decision::proceed();  // the engine answers 400
  const PeerRules* caller = nullptr;
  const PeerRules* trunk = nullptr;
  bool toward_pbx = true;
  if (context.flow.side == net::Side::Pbx) {
    // A call from the PBX to one of the users stays inside: Palisade is their registrar.
    if (snapshot.user(uri.user) != nullptr) return Decision::proceed();
    const PeerInfo* pbx = snapshot.peer(context.flow.peer);
    if (pbx == nullptr) return Decision::proceed();  // the packet filter let no other source in
    caller = &pbx->fraud;
    const PeerInfo* routed = snapshot.routedTrunk(uri.user);
    trunk = routed != nullptr ? &routed->fraud : nullptr;
    toward_pbx = false;
  } else if (context.peer_kind == PeerKind::Trunk) {
    const PeerInfo* peer = snapshot.peer(context.flow.peer);
    if (peer == nullptr) return Decision::proceed();
    caller = &peer->fraud;
  } else if (context.peer_kind == PeerKind::User) {
    const UserEntry* user = snapshot.user(context.identity);
    if (user == nullptr) return Decision::proceed();
    caller = &user->fraud;
  } else {
    return Decision::proceed();  // nobody: the digest stage has challenged it already
  }
  Judgement judgement = judge(uri.user, toward_pbx, *caller, trunk, snapshot.destinations);
  context.fraud_source = caller->key;
  context.destination = judgement.destination;
  context.destination_class = judgement.destination_class;
  context.fraud_rule = judgement.rule;
  context.max_duration_s =
      shorterLimit(caller->max_call_duration_s, trunk != nullptr ? trunk->max_call_duration_s : 0);
  if (judgement.allowed()) return Decision::proceed();

  Refusal refusal = refusalOf(judgement.outcome);
  services.count(refusal.counter);
  // As dialled when it could not be read, cut short: it is the attacker's text.
  std::string destination =
      judgement.destination.empty() ? std::string(uri.user.substr(0, 64)) : judgement.destination;
  std::string source_address = context.flow.remote.toString();
  if (mayLog(services.now()))
    LOG_WARN("fraud: refused call {} from {} ({}) to {}: {}", request.callId(), caller->key, source_address,
             destination, judgement.rule);
  services.alert(FraudEvent{refusal.kind, caller->key, std::move(source_address), std::move(destination),
                            judgement.rule, refusal.text, std::string(request.callId())});
  return Decision::reject(403, "Forbidden",
                          fmt::format("Reason: SIP;cause=403;text=\"{}\"\r\n", refusal.text));
}

}  // namespace palisade::policy::fraud
