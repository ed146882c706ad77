#include "core/dialog/engine.h"

#include <chrono>

#include <fmt/format.h>

#include "core/base/log.h"
#include "core/dialog/call.h"
#include "core/dialog/registrar.h"
#include "core/sip/builder.h"

namespace palisade::dialog {

using sip::Hdr;
using sip::Method;
using stats::Counter;

namespace {

constexpr std::string_view kAllow = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK";
// Extensions we accept in Require / Proxy-Require (RFC 3261 §8.2.2.3): session timers need
// nothing of us; reliable provisionals (RFC 3262) are relayed by the call with RSeq/RAck mapped.
constexpr std::string_view kSupported = "timer, 100rel";
constexpr std::string_view kSupportedOptions[] = {"timer", "100rel"};

bool supportedOption(std::string_view option) {
  for (auto known : kSupportedOptions) {
    if (sip::iequals(option, known)) return true;
  }
  return false;
}

LocalAddress localOf(const config::Listener& listener) {
  LocalAddress out;
  out.host =
      listener.address.find(':') != std::string::npos ? "[" + listener.address + "]" : listener.address;
  out.udp_port = listener.udp_port;
  out.tcp_port = listener.tcp_port;
  out.tls_port = listener.tls_port;
  return out;
}

Target targetOf(const std::string& host, std::uint16_t port, config::TransportKind transport,
                const std::vector<std::string>& addresses, bool trust_identity, net::Side side) {
  Target target;
  target.flow.side = side;
  target.flow.transport = transport == config::TransportKind::Tls   ? net::Transport::Tls
                          : transport == config::TransportKind::Tcp ? net::Transport::Tcp
                                                                    : net::Transport::Udp;
  boost::system::error_code ec;
  target.flow.remote.address = boost::asio::ip::make_address(host, ec);
  target.flow.remote.port = port;
  target.flow.verified = true;  // a configured peer
  target.trust_identity = trust_identity;
  auto prefixes = std::make_shared<txn::PeerAddresses>();
  for (const auto& text : addresses) {
    if (auto prefix = txn::AddressPrefix::parse(text)) prefixes->push_back(*prefix);
  }
  target.addresses = std::move(prefixes);
  target.valid = !ec;
  return target;
}

// The dialled number as routing reads it: a leading '+' and the digits, without the visual
// separators people and PBXs write (RFC 3966 §5.1.1).
}  // namespace

void UnverifiedSendCounter::send(const net::Flow& flow, std::string&& bytes) {
  if (flow.transport == net::Transport::Udp && !flow.verified) stats_.add(Counter::SentToUnverified);
  inner_.send(flow, std::move(bytes));
}

// A request held while a policy stage decides (Decision::Pending). Its server transaction
// absorbs retransmissions meanwhile.
struct Engine::Parked {
  std::uint64_t token = 0;
  txn::ServerTransaction* server = nullptr;
  net::Flow flow;
  policy::RequestContext context;  // context.request is null: the transaction holds the request
  event::TimerQueue::Id timer = 0;
};

// Hears about the transactions of parked requests: a CANCEL, or the transaction going away.
class Engine::ParkedUser final : public txn::TransactionUser {
 public:
  explicit ParkedUser(Engine& engine) : engine_(engine) {}
  void onResponse(txn::ClientTransaction&, std::unique_ptr<sip::Message>) override {}
  void onTimeout(txn::ClientTransaction&) override {}
  void onClientGone(txn::ClientTransaction&) override {}
  void onCancel(txn::ServerTransaction& txn) override {
    if (Parked* p = find(&txn)) {
      std::uint64_t token = p->token;
      txn::ServerTransaction* server = p->server;
      engine_.unpark(token);
      engine_.answer(server->request(), server, server->flow(), 487, "Request Terminated");
    }
  }
  void onServerGone(txn::ServerTransaction& txn) override {
    if (Parked* p = find(&txn)) {
      p->server = nullptr;
      engine_.unpark(p->token);
    }
  }

 private:
  Parked* find(const txn::ServerTransaction* server) {
    for (auto& [token, parked] : engine_.parked_) {
      if (parked->server == server) return parked.get();
    }
    return nullptr;
  }
  Engine& engine_;
};

Engine::Engine(std::uint32_t worker, net::Network& network, const base::Clock& clock, stats::Shard& stats,
               std::shared_ptr<const config::Config> config, policy::SharedCounters& shared)
    : clock_(clock),
      wall_base_(base::wallBaseOf(clock)),
      stats_(stats),
      shared_(shared),
      network_(network, stats),
      layer_(network_, timer_queue_, clock, stats),
      ids_(worker),
      parked_user_(std::make_unique<ParkedUser>(*this)) {
  config_ = std::move(config);
  local_[0] = localOf(config_->startup.public_side);
  local_[1] = localOf(config_->startup.pbx_side);
  header_policy_ = std::make_shared<const sip::HeaderPolicy>(
      config_->headers.to_pbx, config_->headers.to_public, config_->headers.identity);
  compileTargets();
  txn::Timers timers{config_->timing.t1_ms, config_->timing.t2_ms, config_->timing.t4_ms};
  layer_.setTimers(timers);
}

// Calls die before the transaction layer (member order), and destroying a transaction never
// calls its user, so no callback reaches a dead call.
Engine::~Engine() {
  for (auto& [token, parked] : parked_) {
    if (filter_ != nullptr) filter_->cancelPending(token);
  }
}

void Engine::setFilter(policy::RequestFilter* filter) {
  filter_ = filter;
  if (filter_ != nullptr) filter_->bindPendingSink(this);
}

void Engine::compileTargets() {
  const config::Peer& pbx = config_->pbx;
  pbx_target_ =
      targetOf(pbx.host, pbx.port, pbx.transport, pbx.addresses, pbx.trust_identity, net::Side::Pbx);
  trunk_targets_.clear();
  trunk_routes_.clear();
  for (const config::Trunk& trunk : config_->trunks) {
    trunk_targets_.push_back(targetOf(trunk.host, trunk.port, trunk.transport, trunk.addresses,
                                      trunk.trust_identity, net::Side::Public));
    for (const auto& prefix : trunk.prefixes) trunk_routes_.add(prefix, trunk_targets_.size() - 1);
  }
  trunk_routes_.build();
  users_by_name_.clear();
  for (const config::User& user : config_->users) users_by_name_.push_back(&user);
  std::sort(users_by_name_.begin(), users_by_name_.end(),
            [](const config::User* a, const config::User* b) { return a->name < b->name; });
}

const config::User* Engine::calledUser(const sip::Message& request) const {
  if (location_ == nullptr || users_by_name_.empty()) return nullptr;
  sip::Uri uri;
  if (!sip::parseUri(request.requestUri(), uri) || uri.user.empty()) return nullptr;
  auto it =
      std::lower_bound(users_by_name_.begin(), users_by_name_.end(), uri.user,
                       [](const config::User* user, std::string_view name) { return user->name < name; });
  return it != users_by_name_.end() && (*it)->name == uri.user ? *it : nullptr;
}

bool Engine::userTarget(const config::User& user, Target& out) const {
  std::vector<routing::Binding> bindings = location_->lookup(user.name, now());
  if (bindings.empty()) return false;
  const routing::Binding& newest = bindings.front();
  out.flow = newest.flow;
  // The user proved it receives there: its REGISTER answered a nonce sent to that address.
  out.flow.verified = true;
  out.trust_identity = false;
  out.valid = true;
  out.request_uri = newest.contact;
  out.to_host = local_[static_cast<int>(net::Side::Public)].host;
  return true;
}

void Engine::onFlowClosed(const net::Flow& flow) {
  owner_.check("Engine");
  // Users register on the public side only; then the lock-free check: most connections that
  // close never registered anyone.
  if (location_ == nullptr || flow.side != net::Side::Public || !location_->registeredFlow(flow, now()))
    return;
  for (const routing::Binding& ended :
       location_->retain([&flow](const routing::Binding& binding) { return !binding.flow.samePath(flow); })) {
    LOG_INFO("register: {} from {} {} ended: its connection closed", ended.user,
             net::transportName(flow.transport), flow.remote.toString());
  }
}

void Engine::onRegister(std::unique_ptr<sip::Message> request, txn::ServerTransaction* parked,
                        const net::Flow& flow, const policy::RequestContext& context) {
  // A server transaction absorbs retransmissions: a repeated REGISTER is answered again, not
  // applied again (its CSeq would no longer be above the binding's).
  txn::ServerTransaction* server =
      parked != nullptr ? parked : layer_.startServer(std::move(request), flow, nullptr);
  if (server == nullptr) return;
  RegistrarAnswer reply =
      registerBindings(server->request(), flow, context.identity, config_->registrar, *location_, now());
  if (reply.status == 200) {
    stats_.add(Counter::Registrations);
    if (reply.result.added != 0 || reply.result.removed != 0) {
      LOG_INFO("register: {} from {} {}: {} added, {} removed, {} bound", context.identity,
               net::transportName(flow.transport), flow.remote.toString(), reply.result.added,
               reply.result.removed, reply.result.bindings.size());
    }
  } else {
    stats_.add(Counter::RegistrationsRefused);
    LOG_INFO("register: {} from {} refused: {} {}", context.identity, flow.remote.toString(), reply.status,
             reply.reason);
  }
  answer(server->request(), server, flow, reply.status, reply.reason, reply.headers);
}

const Target* Engine::targetFor(const sip::Message& request, net::Side from) const {
  if (from == net::Side::Public) return &pbx_target_;
  if (trunk_targets_.empty()) return nullptr;
  sip::Uri uri;
  std::string_view user = sip::parseUri(request.requestUri(), uri) ? uri.user : std::string_view();
  return &trunk_targets_[trunk_routes_.route(user)];
}

void Engine::applyConfig(std::shared_ptr<const config::Config> config) {
  owner_.check("Engine");
  // Listen addresses are start-up settings: what we advertise in Via and Contact never moves
  // away from the sockets that are really bound (the reload keeps config->startup as running).
  config_ = std::move(config);
  header_policy_ = std::make_shared<const sip::HeaderPolicy>(
      config_->headers.to_pbx, config_->headers.to_public, config_->headers.identity);
  compileTargets();
  txn::Timers timers{config_->timing.t1_ms, config_->timing.t2_ms, config_->timing.t4_ms};
  layer_.setTimers(timers);
}

void Engine::registerLeg(net::Side side, const std::string& call_id, Call* call) {
  std::string key;
  key.reserve(call_id.size() + 1);
  key.push_back(static_cast<char>('0' + static_cast<int>(side)));
  key.append(call_id);
  legs_[std::move(key)] = call;
}

void Engine::unregisterLeg(net::Side side, const std::string& call_id) {
  std::string key;
  key.push_back(static_cast<char>('0' + static_cast<int>(side)));
  key.append(call_id);
  legs_.erase(key);
}

Call* Engine::findLeg(net::Side side, std::string_view call_id) {
  std::string key;
  key.reserve(call_id.size() + 1);
  key.push_back(static_cast<char>('0' + static_cast<int>(side)));
  key.append(call_id);
  auto it = legs_.find(key);
  return it == legs_.end() ? nullptr : it->second;
}

void Engine::retire(Call* call) {
  auto it = calls_.find(call);
  if (it == calls_.end()) return;
  retired_.push_back(std::move(it->second));
  calls_.erase(it);
}

void Engine::collectRetired() { retired_.clear(); }

void Engine::runTimers() {
  owner_.check("Engine");
  timer_queue_.runDue(clock_.now());
  collectRetired();
}

void Engine::onMessage(std::unique_ptr<sip::Message> message, const net::Flow& flow) {
  owner_.check("Engine");
  if (!message->ok()) {
    stats_.add(Counter::ParseErrors);
    // Bad responses vanish; bad requests get the error the scanner chose (never an ACK).
    // A Via we could not parse is still copied back as received (badinv01): the reply goes
    // to the packet's source, never to an address taken from the message.
    if (message->isRequest() && !message->dropped() && message->method() != Method::Ack &&
        message->find(Hdr::Via) != nullptr) {
      LOG_DEBUG("rejecting malformed request from {}: {} {}", flow.remote.toString(), message->fault().status,
                message->fault().reason);
      replyStateless(*message, flow, message->fault().status, message->fault().reason);
    }
    return;
  }
  if (message->isRequest()) {
    onRequest(std::move(message), flow);
  } else {
    onResponse(std::move(message), flow);
  }
  collectRetired();
}

void Engine::onShed(std::unique_ptr<sip::Message> message, const net::Flow& flow) {
  owner_.check("Engine");
  if (layer_.absorbRequest(message, flow)) return;
  replyStateless(*message, flow, 503, "Service Unavailable", "Retry-After: 5\r\n");
}

void Engine::onResponse(std::unique_ptr<sip::Message> response, const net::Flow& flow) {
  bool is_invite_2xx = response->cseqMethod() == Method::Invite && response->statusCode() >= 200 &&
                       response->statusCode() < 300;
  switch (layer_.handleResponse(response, flow)) {
    case txn::ResponseDisposition::Foreign:
      stats_.add(Counter::DroppedForeignResponses);
      LOG_DEBUG("dropped a {} for one of our branches from {}: not where the request went",
                response->statusCode(), flow.remote.toString());
      return;
    case txn::ResponseDisposition::Orphan2xx:
      // A 2xx for an INVITE whose call is gone (after a CANCEL race): confirm and hang up, so
      // the callee does not keep a dead call. The transaction must still exist: a 2xx from
      // nowhere is not answered (no reflection).
      if (is_invite_2xx) ackAndBye(*response, flow);
      return;
    case txn::ResponseDisposition::Consumed:
    case txn::ResponseDisposition::NoTransaction:
      return;
  }
}

void Engine::onRequest(std::unique_ptr<sip::Message> request, const net::Flow& flow) {
  if (layer_.absorbRequest(request, flow)) return;
  Method method = request->method();
  if (method == Method::Cancel) {
    replyStateless(*request, flow, 481, "Call/Transaction Does Not Exist");
    return;
  }
  if (!request->toTag().empty()) {
    Call* call = findLeg(flow.side, request->callId());
    if (call == nullptr) {
      if (method != Method::Ack) replyStateless(*request, flow, 481, "Call/Transaction Does Not Exist");
      return;
    }
    int leg = (call->leg(0).side == flow.side && call->leg(0).call_id == request->callId()) ? 0 : 1;
    call->onInDialogRequest(leg, std::move(request), flow);
    return;
  }
  if (method == Method::Ack) return;  // ACK for a transaction we no longer know
  onOutOfDialog(std::move(request), flow);
}

void Engine::onOutOfDialog(std::unique_ptr<sip::Message> request, const net::Flow& flow) {
  const sip::Message& req = *request;
  // RFC 3261 §16.3 / §8.2.2: hops, URI scheme, extensions.
  if (req.maxForwards() == 0) {
    replyStateless(req, flow, 483, "Too Many Hops");
    return;
  }
  sip::Uri uri;
  if (!sip::parseUri(req.requestUri(), uri) || !(uri.isSip() || sip::iequals(uri.scheme, "tel"))) {
    replyStateless(req, flow, 416, "Unsupported URI Scheme");
    return;
  }
  // RFC 5630 §3.1.3: a SIPS request promises TLS on every hop; one that reached us in the
  // clear has already broken it.
  if (sip::iequals(uri.scheme, "sips") && flow.transport != net::Transport::Tls) {
    replyStateless(req, flow, 416, "Unsupported URI Scheme");
    return;
  }
  std::string unsupported;
  for (const auto& h : req.headers()) {
    if (h.id != Hdr::Require && h.id != Hdr::ProxyRequire) continue;
    std::vector<std::string_view> options;
    sip::splitList(h.value, options);
    for (auto opt : options) {
      if (supportedOption(opt)) continue;
      if (!unsupported.empty()) unsupported.append(", ");
      unsupported.append(opt);
    }
  }
  if (!unsupported.empty()) {
    replyStateless(req, flow, 420, "Bad Extension", fmt::format("Unsupported: {}\r\n", unsupported));
    return;
  }
  policy::RequestContext context;
  context.request = &req;
  context.flow = flow;
  if (filter_ == nullptr) {
    admit(std::move(request), nullptr, flow, context);
    return;
  }
  policy::Decision decision = filter_->check(context);
  // A source the chain recognised (a configured peer, an authenticated or registered user)
  // has shown it receives at its address: its answers need no amplification guard.
  net::Flow known = flow;
  if (context.peer_kind != policy::PeerKind::Unknown) known.verified = true;
  decide(decision, std::move(request), nullptr, known, std::move(context));
}

void Engine::decide(const policy::Decision& decision, std::unique_ptr<sip::Message> request,
                    txn::ServerTransaction* parked, const net::Flow& flow, policy::RequestContext context) {
  const sip::Message& req = parked != nullptr ? parked->request() : *request;
  // Shared counters the stages took are held by a call; a request that does not become one
  // gives them back (admit() for a call it does not make).
  if (decision.kind != policy::Decision::Kind::Continue && decision.kind != policy::Decision::Kind::Pending)
    releaseRules(context);
  switch (decision.kind) {
    case policy::Decision::Kind::Continue:
      admit(std::move(request), parked, flow, context);
      return;
    case policy::Decision::Kind::Reject:
      stats_.add(Counter::PolicyRejected);
      if (req.method() == Method::Invite) recordRefused(req, flow, context, decision.status, "policy");
      answer(req, parked, flow, decision.status, decision.reason, decision.headers);
      return;
    case policy::Decision::Kind::Challenge:
      stats_.add(Counter::PolicyChallenged);
      answer(req, parked, flow, decision.status, decision.reason, decision.headers);
      return;
    case policy::Decision::Kind::Drop:
      stats_.add(Counter::PolicyDropped);
      if (parked != nullptr) layer_.abandon(*parked);
      return;
    case policy::Decision::Kind::Pending:
      stats_.add(Counter::PolicyPending);
      park(std::move(request), parked, flow, std::move(context), decision.token);
      return;
  }
}

void Engine::answer(const sip::Message& request, txn::ServerTransaction* parked, const net::Flow& flow,
                    int status, std::string_view reason, std::string_view extra_headers) {
  if (parked == nullptr) {
    replyStateless(request, flow, status, reason, extra_headers);
    return;
  }
  std::string out =
      sip::MessageBuilder(512)
          .responseTo(request, flow.remote, status, reason, request.toTag().empty() ? ids_.tag() : "")
          .lines(extra_headers)
          .product("Server", config_->user_agent)
          .finish();
  layer_.respond(*parked, status, std::move(out));
}

void Engine::admit(std::unique_ptr<sip::Message> request, txn::ServerTransaction* parked,
                   const net::Flow& flow, policy::RequestContext context) {
  const sip::Message& req = parked != nullptr ? parked->request() : *request;
  if (req.method() != Method::Invite) releaseRules(context);  // only a call holds counters
  switch (req.method()) {
    case Method::Options:
      // Answered by Palisade itself: a keep-alive probe from a trunk or a monitor. Statelessly
      // (RFC 3261 §8.2.7): a retransmission is simply answered again, and a probe flood leaves
      // no transaction state behind.
      answer(req, parked, flow, 200, "OK",
             fmt::format("Allow: {}\r\nAccept: application/sdp\r\nSupported: {}\r\n", kAllow, kSupported));
      return;
    case Method::Invite: {
      // The dialled and calling users are written into the callee leg's From and To.
      sip::Uri request_uri, from_uri;
      sip::parseUri(req.requestUri(), request_uri);  // checked when the request was scanned
      sip::parseUri(req.from().uri, from_uri);       // a From that is no URI names no user
      if (!sip::isCleanHeaderText(request_uri.user) || !sip::isCleanHeaderText(from_uri.user)) {
        releaseRules(context);
        answer(req, parked, flow, 400, "Bad Request URI");
        return;
      }
      if (findLeg(flow.side, req.callId()) != nullptr) {
        releaseRules(context);
        answer(req, parked, flow, 482, "Loop Detected");  // a second INVITE for a live Call-ID
        return;
      }
      Target user_target;
      const Target* routed = nullptr;
      if (const config::User* callee = flow.side == net::Side::Pbx ? calledUser(req) : nullptr) {
        // A call to one of the users goes to where it registered from, or nowhere.
        if (!userTarget(*callee, user_target)) {
          releaseRules(context);
          stats_.add(Counter::CallsToUnregistered);
          recordRefused(req, flow, context, 480, "unregistered");
          answer(req, parked, flow, 480, "Temporarily Unavailable");
          return;
        }
        routed = &user_target;
      } else {
        routed = targetFor(req, flow.side);
      }
      if (routed == nullptr || !routed->valid) {
        releaseRules(context);
        answer(req, parked, flow, 500, "Server Internal Error");
        return;
      }
      // limits.max_calls holds across all workers (one shared counter, released by ~Call).
      if (!shared_.tryAcquire(policy::SharedCounters::kGlobalCalls, config_->max_calls)) {
        releaseRules(context);
        stats_.add(Counter::Rejected503);
        recordRefused(req, flow, context, 503, "max_calls");
        answer(req, parked, flow, 503, "Service Unavailable", "Retry-After: 5\r\n");
        return;
      }
      txn::ServerTransaction* server =
          parked != nullptr ? parked : layer_.startServer(std::move(request), flow, nullptr);
      if (server == nullptr) {
        releaseRules(context);
        shared_.release(policy::SharedCounters::kGlobalCalls);
        return;
      }
      std::unique_ptr<CallMedia> media = media_ != nullptr ? media_->create(context) : nullptr;
      auto call = std::make_unique<Call>(*this, context, std::move(media));
      Call* raw = call.get();
      calls_.emplace(raw, std::move(call));
      raw->start(*server, *routed);
      return;
    }
    case Method::Register:
      if (location_ != nullptr && context.peer_kind == policy::PeerKind::User && !context.identity.empty()) {
        onRegister(std::move(request), parked, flow, context);
        return;
      }
      answer(req, parked, flow, 405, "Method Not Allowed", fmt::format("Allow: {}\r\n", kAllow));
      return;
    case Method::Bye:
    case Method::Update:
    case Method::Info:
    case Method::Prack:
      answer(req, parked, flow, 481, "Call/Transaction Does Not Exist");
      return;
    case Method::Unknown:
      answer(req, parked, flow, 501, "Not Implemented", fmt::format("Allow: {}\r\n", kAllow));
      return;
    default:
      answer(req, parked, flow, 405, "Method Not Allowed", fmt::format("Allow: {}\r\n", kAllow));
      return;
  }
}

void Engine::park(std::unique_ptr<sip::Message> request, txn::ServerTransaction* parked,
                  const net::Flow& flow, policy::RequestContext context, std::uint64_t token) {
  if (parked_.size() >= kMaxPending || parked_.count(token) != 0) {
    releaseRules(context);
    filter_->cancelPending(token);
    stats_.add(Counter::Rejected503);
    answer(parked != nullptr ? parked->request() : *request, parked, flow, 503, "Service Unavailable",
           "Retry-After: 5\r\n");
    return;
  }
  // The transaction absorbs retransmissions while the stage decides (an INVITE gets its 100).
  txn::ServerTransaction* server =
      parked != nullptr ? parked : layer_.startServer(std::move(request), flow, parked_user_.get());
  if (server == nullptr) {
    releaseRules(context);
    filter_->cancelPending(token);
    return;
  }
  server->attach(parked_user_.get());
  auto held = std::make_unique<Parked>();
  held->token = token;
  held->server = server;
  held->flow = flow;
  context.request = nullptr;
  held->context = std::move(context);
  held->timer = timer_queue_.schedule(now() + kPendingTimeoutMs, [this, token] { expirePending(token); });
  parked_.emplace(token, std::move(held));
}

void Engine::unpark(std::uint64_t token) {
  auto it = parked_.find(token);
  if (it == parked_.end()) return;
  timer_queue_.cancel(it->second->timer);
  if (it->second->server != nullptr) it->second->server->detach();
  releaseRules(it->second->context);
  parked_.erase(it);
  // Last: the stage may react (even resume another request) without touching this entry.
  if (filter_ != nullptr) filter_->cancelPending(token);
}

void Engine::recordRefused(const sip::Message& request, const net::Flow& flow,
                           const policy::RequestContext& context, int status, std::string_view reason) {
  if (records_ == nullptr) return;
  CallRecord record;
  describeAttempt(request, flow, context, record);
  record.start_ms = record.end_ms = unixNow();
  record.final_status = status;
  record.ended_by = "palisade";
  record.end_reason = std::string(reason);
  record.decision = "refused";
  records_->write(std::move(record));
}

void Engine::releaseRules(policy::RequestContext& context) {
  for (std::uint8_t i = 0; i < context.rules.count; ++i) shared_.release(context.rules.ids[i]);
  context.rules.count = 0;
}

void Engine::expirePending(std::uint64_t token) {
  auto it = parked_.find(token);
  if (it == parked_.end()) return;
  it->second->timer = 0;
  txn::ServerTransaction* server = it->second->server;
  stats_.add(Counter::PolicyPendingExpired);
  unpark(token);
  if (server != nullptr) {
    answer(server->request(), server, server->flow(), 503, "Service Unavailable", "Retry-After: 5\r\n");
  }
  collectRetired();
}

void Engine::resume(std::uint64_t token, policy::Decision decision) {
  owner_.check("Engine");
  auto it = parked_.find(token);
  if (it == parked_.end()) return;  // already answered (CANCEL, timeout)
  Parked& p = *it->second;
  txn::ServerTransaction* server = p.server;
  net::Flow flow = p.flow;
  policy::RequestContext context = std::move(p.context);
  // The decision is in: the stage no longer holds the token.
  timer_queue_.cancel(p.timer);
  if (server != nullptr) server->detach();
  parked_.erase(it);
  if (server == nullptr) return;
  context.request = &server->request();
  if (decision.kind == policy::Decision::Kind::Continue) {
    // The rest of the chain runs from where the stage left off.
    decision = filter_->check(context);
  }
  decide(decision, nullptr, server, flow, std::move(context));
  collectRetired();
}

void Engine::replyStateless(const sip::Message& request, const net::Flow& flow, int status,
                            std::string_view reason, std::string_view extra_headers) {
  owner_.check("Engine");
  // An error answer (not a challenge) to the internet counts against the source: scanners
  // collect them by the hundred, phones hardly ever.
  // Only for new requests (not CANCEL races, late in-dialog retransmissions or what a
  // registered phone sends), and once per message (a malformed one was counted on arrival).
  if (filter_ != nullptr && flow.side == net::Side::Public && flow.peer == 0 && status >= 400 &&
      status < 500 && status != 401 && status != 407 && request.ok() && request.toTag().empty() &&
      request.method() != Method::Cancel && request.method() != Method::Ack &&
      (location_ == nullptr || !location_->registeredFlow(flow, now()))) {
    filter_->report(flow, policy::Offence::ErrorAnswer);
  }
  // No amplification: a UDP source that has not shown it receives at its address (it may be
  // a forged one, aimed at a victim) never gets more bytes than it sent. Challenges offer
  // fewer algorithms until they fit, the most widely supported (the last) kept longest:
  // a phone that only knows MD5 must still be able to register. Anything else that does
  // not fit is not sent.
  bool guarded = flow.transport == net::Transport::Udp && !flow.verified;
  std::string_view extra = extra_headers;
  for (;;) {
    std::string tag = request.toTag().empty() ? ids_.tag() : std::string();
    std::string out = sip::MessageBuilder(512)
                          .responseTo(request, flow.remote, status, reason, tag)
                          .lines(extra)
                          .product("Server", config_->user_agent)
                          .finish();
    if (!guarded || out.size() <= request.raw().size()) {
      layer_.sendRaw(flow, std::move(out));
      return;
    }
    std::size_t first_end = extra.find("\r\n");
    if ((status != 401 && status != 407) || first_end == std::string_view::npos ||
        first_end + 2 >= extra.size()) {
      LOG_DEBUG("not answering {} from {} with {}: {} bytes for a {}-byte request", request.methodText(),
                flow.remote.toString(), status, out.size(), request.raw().size());
      stats_.add(Counter::DroppedAmplification);
      return;
    }
    extra.remove_prefix(first_end + 2);
  }
}

void Engine::ackAndBye(const sip::Message& response, const net::Flow& flow) {
  sip::NameAddr contact;
  std::string target(
      sip::withoutUriHeaders(response.firstContact(contact) ? contact.uri : response.to().uri));
  std::string routes;
  std::vector<std::string> route_set;
  for (const auto& h : response.headers()) {
    if (h.id != Hdr::RecordRoute) continue;
    std::vector<std::string_view> items;
    if (sip::splitList(h.value, items)) {
      for (auto r : items) route_set.emplace_back(r);
    }
  }
  for (auto it = route_set.rbegin(); it != route_set.rend(); ++it)
    fmt::format_to(std::back_inserter(routes), "Route: {}\r\n", *it);
  const sip::HeaderField* from = response.find(Hdr::From);
  const sip::HeaderField* to = response.find(Hdr::To);
  if (from == nullptr || to == nullptr) return;
  const LocalAddress& here = local(flow.side);
  auto build = [&](std::string_view method, std::uint32_t cseq, const std::string& branch) {
    return sip::MessageBuilder(512)
        .request(method, target)
        .fieldf("Via", "SIP/2.0/{} {}:{};branch={}", net::transportName(flow.transport), here.host,
                here.port(flow.transport), branch)
        .lines(routes)
        .field("Max-Forwards", "70")
        .field("From", from->value)
        .field("To", to->value)
        .field("Call-ID", response.callId())
        .fieldf("CSeq", "{} {}", cseq, method)
        .product("User-Agent", config_->user_agent)
        .finish();
  };
  layer_.sendRaw(flow, build("ACK", response.cseq(), ids_.branch()));
  // The BYE is a real client transaction so that it is retransmitted over UDP.
  std::string branch = ids_.branch();
  std::string bye = build("BYE", response.cseq() + 1, branch);
  txn::RequestLines lines;
  lines.request_uri = target;
  layer_.startClient(Method::Bye, branch, flow, std::move(bye), std::move(lines), nullptr);
}

}  // namespace palisade::dialog
