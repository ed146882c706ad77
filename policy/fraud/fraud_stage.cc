#include "policy/fraud/fraud_stage.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/base/log.h"
#include "core/sip/headers.h"

namespace palisade::policy::fraud {

namespace {

constexpr std::int64_t kMinuteMs = 60'000;
constexpr std::int64_t kHourMs = 3'600'000;
constexpr std::int64_t kDayMs = 86'400'000;

std::uint32_t shorterLimit(std::uint32_t a, std::uint32_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

std::string money(std::int64_t micros, const std::string& currency) {
  return fmt::format("{}.{:02d} {}", micros / 1'000'000, (micros % 1'000'000) / 10'000, currency);
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

AnomalyDetector& FraudStage::detector(const PolicySnapshot& snapshot) {
  if (!detector_ || detector_generation_ != snapshot.generation) {
    detector_.emplace(*snapshot.fraud_store, snapshot.anomaly);
    detector_generation_ = snapshot.generation;
  }
  return *detector_;
}

bool FraudStage::mayAlert(const std::string& key, base::Millis now, int& suppressed) {
  if (alerted_.size() > kMaxAlertKeys) alerted_.clear();  // a bound, not a policy: worst case more events
  auto [it, fresh] = alerted_.try_emplace(key, AlertWindow{now, 0});
  if (fresh) return true;
  if (now - it->second.since < 60'000) {
    ++it->second.suppressed;
    return false;
  }
  suppressed = it->second.suppressed;
  it->second = AlertWindow{now, 0};
  return true;
}

Decision FraudStage::refuse(RequestContext& context, const Refusal& refusal, std::string destination,
                            StageServices& services) {
  services.count(refusal.counter);
  context.fraud_rule = refusal.rule;
  std::string source_address = context.flow.remote.toString();
  std::string call_id(context.request->callId().substr(0, kMaxEventText));
  if (mayLog(services.now()))
    LOG_WARN("fraud: refused call {} from {} ({}) to {}: {}", call_id, context.fraud_source, source_address,
             destination, refusal.rule);
  // One event per caller and rule a minute: a caller dialling +881 in a loop must not crowd the
  // alerts the operator needs (a spike, a block) out of the bounded queues.
  if (int suppressed = 0; mayAlert(context.fraud_source + '\n' + refusal.rule, services.now(), suppressed)) {
    std::string detail =
        suppressed == 0 ? std::string(refusal.text)
                        : fmt::format("{} ({} more like it in the last minute)", refusal.text, suppressed);
    services.alert(FraudEvent{refusal.kind, context.fraud_source, std::move(source_address),
                              std::move(destination), refusal.rule, std::move(detail), std::move(call_id)});
  }
  return Decision::reject(403, "Forbidden",
                          fmt::format("Reason: SIP;cause=403;text=\"{}\"\r\n", refusal.text));
}

std::optional<FraudStage::Refusal> FraudStage::limits(const PeerRules& rules, const std::string& key,
                                                      bool international, const PolicySnapshot& snapshot,
                                                      std::int64_t now) {
  FraudStore& store = *snapshot.fraud_store;
  if (auto reason = store.blocked(key))
    return Refusal{stats::Counter::FraudRefusedBlockedSource, "source_blocked", "Caller blocked",
                   fmt::format("{} blocked: {}", key, *reason)};
  if (rules.max_calls_per_minute != 0) {
    std::uint32_t calls = store.countInWindow(key, now, kMinuteMs, 1);
    if (calls > rules.max_calls_per_minute)
      return Refusal{stats::Counter::FraudRefusedLimit, "limit", "Call limit reached",
                     fmt::format("{} max_calls_per_minute {}", key, rules.max_calls_per_minute)};
  }
  if (international && rules.max_international_per_hour != 0) {
    std::uint32_t calls = store.countInWindow(key, now, kHourMs, 1);
    if (calls > rules.max_international_per_hour)
      return Refusal{stats::Counter::FraudRefusedLimit, "limit", "Call limit reached",
                     fmt::format("{} max_international_per_hour {}", key, rules.max_international_per_hour)};
  }
  return std::nullopt;
}

std::optional<FraudStage::Refusal> FraudStage::spendCap(const PeerRules& rules,
                                                        const PolicySnapshot& snapshot,
                                                        RequestContext& context, StageServices& services,
                                                        std::int64_t now) {
  if (rules.max_spend_24h_micros == 0 || context.micros_per_minute == 0) return std::nullopt;
  FraudStore& store = *snapshot.fraud_store;
  std::int64_t spent = store.spend(rules.key, now);
  if (spent >= rules.max_spend_24h_micros)
    return Refusal{
        stats::Counter::FraudRefusedSpendCap, "spend_cap", "Spend limit reached",
        fmt::format("{} max_spend_24h {} (spent {})", rules.key,
                    money(rules.max_spend_24h_micros, snapshot.currency), money(spent, snapshot.currency))};
  // The warning, once a day per key: the first time a day's spend crosses the threshold.
  std::int64_t threshold = rules.max_spend_24h_micros / 100 * snapshot.spend_warning_percent;
  if (spent >= threshold && store.countInWindow(rules.key, now, kDayMs, 1) == 1) {
    std::string detail =
        fmt::format("{} spent {} of its {} cap in 24 h", rules.key, money(spent, snapshot.currency),
                    money(rules.max_spend_24h_micros, snapshot.currency));
    LOG_WARN("fraud: spend warning: {}", detail);
    services.alert(FraudEvent{"spend_warning", rules.key, context.flow.remote.toString(), context.destination,
                              fmt::format("spend_warning_percent {}", snapshot.spend_warning_percent),
                              std::move(detail), std::string(context.request->callId())});
  }
  return std::nullopt;
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
  bool inbound = false;  // from a trunk: the public calling us, not a caller we pay for
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
    inbound = true;
  } else if (context.peer_kind == PeerKind::User) {
    const UserEntry* user = snapshot.user(context.identity);
    if (user == nullptr) return Decision::proceed();
    caller = &user->fraud;
  } else {
    return Decision::proceed();  // nobody: the digest stage has challenged it already
  }
  Judgement judgement = judge(uri.user, toward_pbx, *caller, trunk, snapshot.destinations);
  // Calls from a trunk are counted apart from the calls the PBX places through it: whoever dials
  // the company's numbers must not use up (or block) its outbound limits.
  const std::string& source_key = inbound ? caller->inbound_key : caller->key;
  context.fraud_source = source_key;
  context.fraud_inbound = inbound;
  context.fraud_trunk = trunk != nullptr ? trunk->key : std::string();
  context.destination = judgement.destination;
  context.destination_class = judgement.destination_class;
  context.fraud_rule = judgement.rule;
  context.international = judgement.international;
  context.source_spend_cap = caller->max_spend_24h_micros;
  context.trunk_spend_cap = trunk != nullptr ? trunk->max_spend_24h_micros : 0;
  context.max_duration_s =
      shorterLimit(caller->max_call_duration_s, trunk != nullptr ? trunk->max_call_duration_s : 0);
  // As dialled when it could not be read, cut short: it is the attacker's text.
  std::string destination =
      judgement.destination.empty() ? std::string(uri.user.substr(0, 64)) : judgement.destination;
  switch (judgement.outcome) {
    case Judgement::Outcome::Allowed:
      break;
    case Judgement::Outcome::Denied:
      return refuse(context,
                    {stats::Counter::FraudRefusedDestination, "destination_refused",
                     "Destination not allowed", judgement.rule},
                    std::move(destination), services);
    case Judgement::Outcome::International:
      return refuse(context,
                    {stats::Counter::FraudRefusedInternational, "international_refused",
                     "International calls not allowed", judgement.rule},
                    std::move(destination), services);
    case Judgement::Outcome::UnknownNumber:
      return refuse(context,
                    {stats::Counter::FraudRefusedUnknownNumber, "unknown_number", "Number not recognised",
                     judgement.rule},
                    std::move(destination), services);
  }
  if (std::string_view(judgement.destination_class) == "emergency" || snapshot.fraud_store == nullptr)
    return Decision::proceed();

  std::int64_t now = services.unixMillis();
  for (const PeerRules* rules : {caller, trunk}) {
    if (rules == nullptr || rules->hours == nullptr || !(rules->hours_all || judgement.international))
      continue;
    if (!rules->hours->open(now))
      return refuse(context,
                    {stats::Counter::FraudRefusedLimit, "calling_hours", "Outside calling hours",
                     fmt::format("{} calling_hours", rules->key)},
                    std::move(destination), services);
  }
  if (auto refusal = limits(*caller, source_key, judgement.international, snapshot, now))
    return refuse(context, *refusal, std::move(destination), services);
  if (trunk != nullptr) {
    if (auto refusal = limits(*trunk, trunk->key, judgement.international, snapshot, now))
      return refuse(context, *refusal, std::move(destination), services);
  }
  // Inbound calls are not ours to pay for, and what the public does must not block the trunk.
  if (inbound) return Decision::proceed();
  if (judgement.international) {
    std::string_view digits = std::string_view(judgement.destination).substr(1);
    if (auto anomaly = detector(snapshot).onInternationalAttempt(caller->key, digits, now)) {
      LOG_WARN("fraud: {} by {}: {}", anomaly->name(), caller->key, anomaly->detail);
      services.alert(FraudEvent{anomaly->name(), caller->key, context.flow.remote.toString(), destination,
                                anomaly->name(), anomaly->detail, std::string(request.callId())});
      if (snapshot.block_on_anomaly) {
        std::string reason = fmt::format("{}: {}", anomaly->name(), anomaly->detail);
        if (snapshot.fraud_store->block(caller->key, reason, now) == BlockResult::Blocked)
          LOG_WARN("fraud: {} blocked until an operator clears it (DELETE /fraud/blocks/{})", caller->key,
                   caller->key);
        return refuse(context,
                      {stats::Counter::FraudRefusedBlockedSource, "source_blocked", "Caller blocked",
                       fmt::format("{} blocked: {}", caller->key, reason)},
                      std::move(destination), services);
      }
    }
  }
  if (snapshot.rates != nullptr && !judgement.destination.empty()) {
    if (auto rate = snapshot.rates->rateOf(std::string_view(judgement.destination).substr(1)))
      context.micros_per_minute = rate->micros_per_minute;
  }
  for (const PeerRules* rules : {caller, trunk}) {
    if (rules == nullptr) continue;
    if (auto refusal = spendCap(*rules, snapshot, context, services, now))
      return refuse(context, *refusal, std::move(destination), services);
  }
  return Decision::proceed();
}

}  // namespace palisade::policy::fraud
