#include "core/dialog/call.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/base/log.h"
#include "core/dialog/engine.h"

namespace palisade::dialog {

using sip::Hdr;
using sip::Method;
using stats::Counter;

namespace {

// From/To value without its tag parameter (we write our own tags on each leg).
std::string withoutTag(const sip::HeaderField* field, const sip::NameAddr& parsed) {
  if (field == nullptr) return {};
  std::string out;
  if (!parsed.display.empty()) {
    out.append(parsed.display);
    out.push_back(' ');
  }
  out.push_back('<');
  out.append(parsed.uri);
  out.push_back('>');
  // Keep other header params, drop tag.
  std::string_view params = parsed.params;
  while (!params.empty()) {
    std::size_t next = params.find(';', 1);
    std::string_view param = params.substr(0, next);
    std::string_view name = sip::trimLws(param.substr(
        1, param.find('=') == std::string_view::npos ? std::string_view::npos : param.find('=') - 1));
    if (!sip::iequals(name, "tag")) out.append(param);
    if (next == std::string_view::npos) break;
    params.remove_prefix(next);
  }
  return out;
}

std::string formatHost(const std::string& host) {
  return host.find(':') != std::string::npos && host.front() != '[' ? "[" + host + "]" : host;
}

std::string targetOf(std::string_view uri) { return std::string(sip::withoutUriHeaders(uri)); }

bool isTargetRefresh(Method m) { return m == Method::Invite || m == Method::Update; }

// Methods whose bodies are session descriptions in offer/answer (RFC 3264, 3262, 3311).
bool carriesOfferAnswer(Method m) { return m == Method::Invite || m == Method::Update || m == Method::Prack; }

// In-dialog methods relayed to the other leg.
bool relayedInDialog(Method m) {
  switch (m) {
    case Method::Invite:
    case Method::Bye:
    case Method::Update:
    case Method::Info:
    case Method::Prack:
    case Method::Options:
      return true;
    default:
      return false;
  }
}

bool hasContact(Method m) {
  return m == Method::Invite || m == Method::Update || m == Method::Subscribe || m == Method::Refer ||
         m == Method::Notify;
}

// Whether one of the `id` fields of `message` lists the option tag `option`.
bool hasOption(const sip::Message& message, Hdr id, std::string_view option) {
  for (const auto& h : message.headers()) {
    if (h.id != id) continue;
    std::vector<std::string_view> options;
    if (!sip::splitList(h.value, options)) continue;
    for (auto opt : options) {
      if (sip::iequals(opt, option)) return true;
    }
  }
  return false;
}

// RFC 3261 §12.1.2: a UAC's route set is the Record-Route list of the response, reversed.
std::vector<std::string> reversedRecordRoutes(const sip::Message& response) {
  std::vector<std::string> route_set;
  for (const auto& h : response.headers()) {
    if (h.id != Hdr::RecordRoute) continue;
    std::vector<std::string_view> routes;
    if (sip::splitList(h.value, routes)) {
      for (auto r : routes) route_set.emplace_back(r);
    }
  }
  std::reverse(route_set.begin(), route_set.end());
  return route_set;
}

// Stops listening to a transaction the call no longer needs (it may outlive the call).
template <typename Txn>
void release(Txn*& txn) {
  if (txn != nullptr) txn->detach();
  txn = nullptr;
}

}  // namespace

template <typename MakeTag>
Call::EarlyDialog* Call::EarlyDialogs::forCallee(std::string_view callee_tag, const std::string& first_tag,
                                                 MakeTag make) {
  if (EarlyDialog* known = byCalleeTag(callee_tag)) return known;
  if (entries_.size() >= kMaxEarlyDialogs) return nullptr;
  // The first early dialog uses the tag made at start; each further fork gets its own.
  auto entry = std::make_unique<EarlyDialog>();
  entry->callee_tag = std::string(callee_tag);
  entry->caller_side_tag = entries_.empty() ? first_tag : make();
  entries_.push_back(std::move(entry));
  return entries_.back().get();
}

Call::EarlyDialog* Call::EarlyDialogs::byCalleeTag(std::string_view callee_tag) {
  for (auto& entry : entries_) {
    if (entry->callee_tag == callee_tag) return entry.get();
  }
  return nullptr;
}

Call::EarlyDialog* Call::EarlyDialogs::byCallerSideTag(std::string_view caller_side_tag) {
  for (auto& entry : entries_) {
    if (entry->caller_side_tag == caller_side_tag) return entry.get();
  }
  return nullptr;
}

Call::Call(Engine& engine, const policy::RequestContext& admitted, std::unique_ptr<CallMedia> media)
    : engine_(engine),
      rules_(admitted.rules),
      header_policy_(engine.headerPolicy()),
      asserted_(admitted.asserted_identity),
      max_duration_s_(admitted.max_duration_s),
      admitted_(admitted),
      media_(std::move(media)) {
  admitted_.request = nullptr;
  record_.start_ms = engine_.unixNow();
  record_.decision = "allowed";
  legs_[0].identity_trusted = admitted.identity_trusted;
  engine_.stats().adjust(stats::Gauge::ActiveCalls, 1);
  if (media_ != nullptr) {
    media_->setEndHandler([this](std::string_view reason) {
      if (state_ == State::Ended) return;
      LOG_INFO("call {}: {}, tearing down", legs_[0].call_id, reason);
      engine_.stats().add(Counter::CallsMediaTimedOut);
      noteEnd("palisade", "media_timeout");
      terminate(false);
    });
  }
}

Call::~Call() {
  record_.end_ms = engine_.unixNow();
  if (record_.ended_by.empty()) noteEnd("palisade", "shutdown");
  bool srtp_leg[2] = {false, false};
  if (media_ != nullptr) media_->describe(record_, srtp_leg);
  for (int leg = 0; leg < 2; ++leg) {
    (legs_[leg].side == net::Side::Public ? record_.srtp_public : record_.srtp_pbx) |= srtp_leg[leg];
  }
  if (policy::RequestFilter* filter = engine_.filter())
    record_.cost_micros = filter->callEnded(admitted_, token(), record_.answer_ms, record_.end_ms);
  if (CallRecordSink* sink = engine_.recordSink()) sink->write(std::move(record_));
  engine_.timers().cancel(spend_timer_);
  media_.reset();  // media resources go with the call, however it ended
  engine_.shared().release(policy::SharedCounters::kGlobalCalls);
  for (std::uint8_t i = 0; i < rules_.count; ++i) engine_.shared().release(rules_.ids[i]);
  engine_.stats().adjust(stats::Gauge::ActiveCalls, -1);
}

void Call::start(txn::ServerTransaction& invite, const Target& target) {
  const sip::Message& req = invite.request();
  Leg& a = legs_[0];
  Leg& b = legs_[1];
  a.side = invite.flow().side;
  a.flow = invite.flow();
  {
    sip::Uri uri;
    a.sips = sip::parseUri(req.requestUri(), uri) && sip::iequals(uri.scheme, "sips");
  }
  a.call_id = std::string(req.callId());
  a.remote_tag = std::string(req.fromTag());
  a.local_tag = engine_.ids().tag();
  a.remote_uri = withoutTag(req.find(Hdr::From), req.from());
  a.local_uri = withoutTag(req.find(Hdr::To), req.to());
  sip::NameAddr contact;
  a.remote_target = req.firstContact(contact) ? targetOf(contact.uri) : targetOf(req.from().uri);
  for (const auto& h : req.headers()) {
    if (h.id != Hdr::RecordRoute) continue;
    std::vector<std::string_view> routes;
    if (sip::splitList(h.value, routes)) {
      for (auto r : routes) a.route_set.emplace_back(r);
    }
  }
  a.remote_cseq = req.cseq();
  if (engine_.recordSink() != nullptr) describeAttempt(req, invite.flow(), admitted_, record_);
  caller_reliable_ = hasOption(req, Hdr::Supported, "100rel") || hasOption(req, Hdr::Require, "100rel");

  // The callee leg names nobody from the caller side: our address, the target's address.
  sip::Uri request_uri, from_uri;
  sip::parseUri(req.requestUri(), request_uri);
  sip::parseUri(req.from().uri, from_uri);
  const net::Flow& next_hop = target.flow;
  const LocalAddress& local = engine_.local(next_hop.side);
  std::string target_host = next_hop.remote.address.is_v6() ? "[" + next_hop.remote.address.to_string() + "]"
                                                            : next_hop.remote.address.to_string();
  std::string user_prefix = request_uri.user.empty() ? "" : std::string(request_uri.user) + "@";
  std::string from_prefix = from_uri.user.empty() ? "" : std::string(from_uri.user) + "@";
  b.side = next_hop.side;
  b.flow = next_hop;
  b.peer_addresses = target.addresses;
  b.identity_trusted = target.trust_identity;
  b.call_id = engine_.ids().callId();
  b.local_tag = engine_.ids().tag();
  // Display names cross into our From/To only when they are clean (no bare CR to end a line).
  auto display = [](std::string_view d) {
    return d.empty() || !sip::isCleanHeaderText(d) ? std::string() : std::string(d) + " ";
  };
  std::string from_display = display(req.from().display);
  std::string to_display = display(req.to().display);
  if (!asserted_.empty()) {
    // An authenticated user calls as itself, whatever its From says.
    from_prefix = asserted_ + "@";
    from_display.clear();
  }
  b.local_uri = fmt::format("{}<sip:{}{}>", from_display, from_prefix, formatHost(local.host));
  if (target.request_uri.empty()) {
    b.remote_uri = fmt::format("{}<sip:{}{}:{}>", to_display, user_prefix, target_host, next_hop.remote.port);
    b.remote_target = fmt::format("sip:{}{}:{}{}", user_prefix, target_host, next_hop.remote.port,
                                  net::transportParam(next_hop.transport));
  } else {
    // A registered user: its own Contact, reached through the flow it registered from; To
    // names its address-of-record here.
    b.remote_uri = fmt::format("{}<sip:{}{}>", to_display, user_prefix, formatHost(target.to_host));
    b.remote_target = target.request_uri;
  }
  engine_.registerLeg(a.side, a.call_id, this);
  engine_.registerLeg(b.side, b.call_id, this);

  auto exchange = std::make_unique<InviteExchange>();
  exchange->from = 0;
  exchange->from_cseq = req.cseq();
  exchange->to_cseq = b.local_cseq++;
  exchange->server = &invite;
  invite.attach(this);
  InviteExchange* ex = exchange.get();
  invites_.push_back(std::move(exchange));
  engine_.stats().add(Counter::CallsAttempted);

  std::string storage;
  BodyVerdict offer = crossBody(BodyCrossing{1, Method::Invite, 0, true}, req, storage);
  if (offer.status != 0) {
    answerLocally(ex->server, offer.status, offer.reason, a.local_tag);
    engine_.stats().add(Counter::CallsFailed);
    end();
    return;
  }
  std::string branch = engine_.ids().branch();
  txn::RequestLines lines;
  std::string bytes = buildRequest(1, "INVITE", ex->to_cseq, branch, &req, offer.body, &lines);
  LOG_DEBUG("call {}: {} -> {} as {}", a.call_id, a.flow.remote.toString(), b.flow.remote.toString(),
            b.call_id);
  // The caller's own limit (its toll-fraud rules) when it is shorter than sip.max_call_duration_s.
  std::uint32_t max_duration_s = engine_.config().max_call_duration_s;
  if (max_duration_s_ != 0 && max_duration_s_ < max_duration_s) max_duration_s = max_duration_s_;
  duration_timer_ =
      engine_.timers().schedule(engine_.now() + static_cast<base::Millis>(max_duration_s) * 1000, [this] {
        duration_timer_ = 0;
        LOG_INFO("call {} reached its maximum duration, tearing down", legs_[0].call_id);
        engine_.stats().add(Counter::CallsMaxDuration);
        noteEnd("palisade", "max_duration");
        terminate(true);
      });
  // Timer C: a callee that rings but never answers does not hold the call forever.
  ring_timer_ = engine_.timers().schedule(
      engine_.now() + static_cast<base::Millis>(engine_.config().ring_timeout_s) * 1000, [this] {
        ring_timer_ = 0;
        if (state_ != State::Calling) return;
        LOG_INFO("call {}: not answered within ring_timeout_s, cancelling", legs_[0].call_id);
        terminate(true);
      });
  startClient(1, Method::Invite, branch, std::move(bytes), std::move(lines), &ex->client);
}

void Call::startClient(int to, Method method, const std::string& branch, std::string bytes,
                       txn::RequestLines lines, txn::ClientTransaction** out) {
  txn::ClientTransaction* client =
      engine_.layer().startClient(method, branch, legs_[to].flow, std::move(bytes), std::move(lines),
                                  out != nullptr ? this : nullptr, legs_[to].peer_addresses);
  if (out != nullptr) *out = client;
}

BodyVerdict Call::crossBody(const BodyCrossing& where, const sip::Message& source, std::string& storage) {
  sip::Body in = sip::bodyOf(source);
  if (media_ == nullptr) return BodyVerdict{in, 0, {}};
  BodyCrossing full = where;
  const Leg& from = legs_[1 - where.to_leg];
  full.from_side = from.side;
  full.to_side = legs_[where.to_leg].side;
  full.source = from.flow.remote.address;
  full.source_verified = from.flow.verified || net::isReliable(from.flow.transport);
  return media_->rewrite(full, in, storage);
}

// RFC 3325 §5: asserted identity stays within the trust domain. It crosses only from a peer
// trusted for identity to another one (the carrier and the PBX by default), never to or from
// an internet caller, whose view would otherwise show the PBX's internal identities.
bool Call::identityCrosses(int from, int to) const {
  return legs_[from].identity_trusted && legs_[to].identity_trusted;
}

std::string Call::viaLine(int leg, const std::string& branch) const {
  const Leg& l = legs_[leg];
  const LocalAddress& local = engine_.local(l.side);
  return fmt::format("Via: SIP/2.0/{} {}:{};branch={}{}\r\n", net::transportName(l.flow.transport),
                     formatHost(local.host), local.port(l.flow.transport), branch,
                     l.flow.transport == net::Transport::Udp ? ";rport" : "");
}

std::string Call::contactLine(int leg) const {
  const Leg& l = legs_[leg];
  const LocalAddress& local = engine_.local(l.side);
  // RFC 3261 §12.1.1: a dialog that began with a SIPS URI gets a SIPS Contact (its hops are
  // TLS); otherwise the transport is a parameter.
  if (l.sips)
    return fmt::format("Contact: <sips:{}:{}>\r\n", formatHost(local.host), local.port(l.flow.transport));
  return fmt::format("Contact: <sip:{}:{}{}>\r\n", formatHost(local.host), local.port(l.flow.transport),
                     net::transportParam(l.flow.transport));
}

std::string Call::buildRequest(int to, std::string_view method, std::uint32_t cseq, const std::string& branch,
                               const sip::Message* source, sip::Body body, txn::RequestLines* lines,
                               const EarlyDialog* early, std::string_view extra) {
  Leg& y = legs_[to];
  // In an early dialog our tag toward the caller, and the callee's tag, target and route set,
  // are that dialog's.
  bool early_callee = early != nullptr && to == 1;
  const std::string& local_tag = early != nullptr && to == 0 ? early->caller_side_tag : y.local_tag;
  const std::string& remote_tag = early_callee ? early->callee_tag : y.remote_tag;
  const std::string& target =
      early_callee && !early->callee_target.empty() ? early->callee_target : y.remote_target;
  const std::vector<std::string>& route_set = early_callee ? early->callee_routes : y.route_set;
  std::string via = viaLine(to, branch);
  std::string routes;
  for (const auto& r : route_set) fmt::format_to(std::back_inserter(routes), "Route: {}\r\n", r);
  std::string from = fmt::format("From: {};tag={}\r\n", y.local_uri, local_tag);
  std::string to_line = remote_tag.empty() ? fmt::format("To: {}\r\n", y.remote_uri)
                                           : fmt::format("To: {};tag={}\r\n", y.remote_uri, remote_tag);
  std::string call_id = fmt::format("Call-ID: {}\r\n", y.call_id);
  int max_forwards =
      (source == nullptr || source->maxForwards() < 0) ? 70 : std::max(source->maxForwards() - 1, 0);
  sip::MessageBuilder out(768 + body.bytes.size() + (source != nullptr ? source->raw().size() / 2 : 0));
  out.request(method, target).lines(via).lines(routes);
  out.fieldf("Max-Forwards", "{}", max_forwards).lines(from).lines(to_line).lines(call_id);
  out.fieldf("CSeq", "{} {}", cseq, method).lines(extra);
  if (hasContact(sip::methodFromName(method))) out.lines(contactLine(to));
  if (source != nullptr) out.crossing(*source, *header_policy_, y.side, identityCrosses(1 - to, to));
  if (to == 1 && !asserted_.empty()) {
    // RFC 3325: Palisade asserts the identity it authenticated (the user's own are not copied).
    out.fieldf("P-Asserted-Identity", "<sip:{}@{}>", asserted_, formatHost(engine_.local(y.side).host));
  }
  out.product("User-Agent", engine_.config().user_agent);
  std::string bytes = out.finish(body);
  if (lines != nullptr) {
    lines->request_uri = target;
    lines->via = std::move(via);
    lines->routes = std::move(routes);
    lines->from = std::move(from);
    lines->to = std::move(to_line);
    lines->call_id = std::move(call_id);
    lines->cseq = cseq;
  }
  return bytes;
}

std::string Call::buildResponse(txn::ServerTransaction& server, int from, const sip::Message& response,
                                std::string_view to_tag, sip::Body body, std::string_view extra) {
  const sip::Message& req = server.request();
  int status = response.statusCode();
  std::string_view reason = response.reasonPhrase();
  // A challenge from the other side cannot be answered across (credentials never cross):
  // the caller learns the request was refused, not the far side's realm.
  if (status == 401 || status == 407) {
    status = 403;
    reason = "Forbidden";
  }
  sip::MessageBuilder out(512 + body.bytes.size() + response.raw().size() / 2);
  out.responseTo(req, server.flow().remote, status, reason, to_tag);
  if (status > 100 && status < 300 && isTargetRefresh(req.method())) out.lines(contactLine(from));
  out.lines(extra);
  out.crossing(response, *header_policy_, legs_[from].side, identityCrosses(1 - from, from));
  out.product("Server", engine_.config().user_agent);
  return out.finish(body);
}

void Call::learnCalleeDialog(const sip::Message& response) {
  Leg& b = legs_[1];
  b.remote_tag = std::string(response.toTag());
  sip::NameAddr contact;
  if (response.firstContact(contact)) b.remote_target = targetOf(contact.uri);
  b.route_set = reversedRecordRoutes(response);  // recomputed for the confirmed dialog (§12.1.2)
}

void Call::learnEarlyDialog(EarlyDialog& dialog, const sip::Message& response) {
  sip::NameAddr contact;
  if (response.firstContact(contact)) dialog.callee_target = targetOf(contact.uri);
  dialog.callee_routes = reversedRecordRoutes(response);
  // The caller's requests in it follow its INVITE's CSeq.
  if (dialog.caller_cseq == 0) dialog.caller_cseq = legs_[0].remote_cseq;
}

Call::InviteExchange* Call::findInvite(const txn::ClientTransaction* client) {
  for (auto& ex : invites_) {
    if (ex->client == client) return ex.get();
  }
  return nullptr;
}

Call::InviteExchange* Call::findInvite(const txn::ServerTransaction* server) {
  for (auto& ex : invites_) {
    if (ex->server == server) return ex.get();
  }
  return nullptr;
}

Call::RequestExchange* Call::findRequest(const txn::ClientTransaction* client) {
  for (auto& rx : requests_) {
    if (rx->client == client) return rx.get();
  }
  return nullptr;
}

void Call::forgetRequest(RequestExchange* rx) {
  requests_.erase(
      std::remove_if(requests_.begin(), requests_.end(), [rx](const auto& p) { return p.get() == rx; }),
      requests_.end());
}

void Call::onResponse(txn::ClientTransaction& txn, std::unique_ptr<sip::Message> response) {
  if (state_ == State::Ended) return;
  if (InviteExchange* ex = findInvite(&txn)) {
    relayInviteResponse(*ex, *response);
  } else if (RequestExchange* rx = findRequest(&txn)) {
    relayNonInviteResponse(*rx, *response);
  }
}

void Call::relayNonInviteResponse(RequestExchange& rx, const sip::Message& response) {
  int status = response.statusCode();
  if (status == 100) return;  // hop by hop: we sent our own
  if (rx.server != nullptr) {
    txn::ServerTransaction* server = rx.server;
    std::string storage;
    sip::Body body = sip::bodyOf(response);
    if (carriesOfferAnswer(rx.method) && status < 300) {
      BodyVerdict verdict = crossBody(BodyCrossing{rx.from, rx.method, status, rx.early}, response, storage);
      if (verdict.status != 0) {
        // An answer that cannot be anchored: the session cannot go on.
        LOG_INFO("call {}: {} answer refused by media ({}), tearing down", legs_[0].call_id,
                 sip::methodName(rx.method), verdict.status);
        answerLocally(rx.server, verdict.status, verdict.reason, {});
        terminate(false);
        return;
      }
      body = verdict.body;
    }
    std::string bytes = buildResponse(*server, rx.from, response, {}, body);
    if (status >= 200) release(rx.server);
    engine_.layer().respond(*server, status, std::move(bytes));
  }
  if (status >= 200) {
    bool was_bye = rx.method == Method::Bye;
    release(rx.client);
    forgetRequest(&rx);
    if (was_bye) end();
  }
}

void Call::relayInviteResponse(InviteExchange& ex, const sip::Message& response) {
  int status = response.statusCode();
  // The call's first INVITE exchange (it alone forks), and whether it is still unanswered.
  bool first_exchange = !invites_.empty() && &ex == invites_.front().get() && ex.from == 0;
  bool initial = first_exchange && legs_[1].remote_tag.empty();
  int to = 1 - ex.from;
  if (status < 200) {
    if (ex.cancel_pending) {
      ex.cancel_pending = false;
      sendCancel(ex);
    }
    if (ex.server == nullptr || status == 100) return;  // 100 is hop by hop: we sent our own
    std::string tag;
    EarlyDialog* early = nullptr;
    Reliability reliability = Reliability::Plain;
    std::uint32_t callee_rseq = 0;
    if (initial) {
      early = early_.forCallee(response.toTag(), legs_[0].local_tag, [this] { return engine_.ids().tag(); });
      if (early == nullptr) {
        engine_.stats().add(Counter::EarlyDialogsRefused);  // a fork storm: not relayed
        return;
      }
      tag = early->caller_side_tag;
      // Before the body: a retransmission goes no further (the caller gets ours).
      reliability = classifyProvisional(*early, response, callee_rseq);
      if (reliability == Reliability::Drop) return;
      if (!response.toTag().empty()) learnEarlyDialog(*early, response);
    }
    std::string storage;
    sip::Body body = sip::bodyOf(response);
    if (!body.empty()) {
      BodyVerdict verdict =
          crossBody(BodyCrossing{ex.from, Method::Invite, status, initial}, response, storage);
      if (verdict.status != 0) return;  // early media that cannot be anchored: not relayed
      body = verdict.body;
    }
    if (early != nullptr && callee_rseq != 0) early->callee_rseq = callee_rseq;  // taken
    if (reliability == Reliability::Reliable) {
      sendReliableProvisional(ex, *early, callee_rseq, status, response, body);
      return;
    }
    engine_.layer().respond(*ex.server, status, buildResponse(*ex.server, ex.from, response, tag, body));
    return;
  }
  if (status < 300) {
    if (ex.answered) {
      if (response.toTag() != ex.answered_tag) {
        hangUpStray(ex, response, first_exchange);  // another fork answered too
      } else if (ex.acked && !ex.ack_bytes.empty()) {
        engine_.layer().sendRaw(legs_[to].flow, std::string(ex.ack_bytes));  // our ACK was lost
      }
      return;
    }
    if (ex.server == nullptr) {
      // The request was cancelled (or its transaction is gone): the CANCEL/200 race.
      if (initial) {
        hangUpStray(ex, response, true);
        if (state_ == State::Cancelled) end();
      } else if (response.toTag() == legs_[to].remote_tag && !ex.acked) {
        // A re-INVITE answered after all: acknowledge it in the dialog, which goes on.
        ex.ack_bytes = buildRequest(to, "ACK", ex.to_cseq, engine_.ids().branch(), nullptr, {}, nullptr);
        ex.acked = true;
        ex.answered = true;
        ex.answered_tag = std::string(response.toTag());
        engine_.layer().sendRaw(legs_[to].flow, std::string(ex.ack_bytes));
      }
      return;
    }
    std::string storage;
    BodyVerdict verdict =
        crossBody(BodyCrossing{ex.from, Method::Invite, status, initial}, response, storage);
    if (verdict.status != 0) {
      LOG_INFO("call {}: answer refused by media ({}), tearing down", legs_[0].call_id, verdict.status);
      if (initial) {
        engine_.ackAndBye(response, legs_[to].flow);
        answerLocally(ex.server, verdict.status, verdict.reason, legs_[0].local_tag);
        engine_.stats().add(Counter::CallsFailed);
        end();
      } else {
        answerLocally(ex.server, verdict.status, verdict.reason, {});
        terminate(false);
      }
      return;
    }
    std::string tag;
    if (initial) {
      EarlyDialog* early =
          early_.forCallee(response.toTag(), legs_[0].local_tag, [this] { return engine_.ids().tag(); });
      if (early == nullptr) {
        hangUpStray(ex, response, true);  // a fork beyond the bound answered
        return;
      }
      learnCalleeDialog(response);
      tag = early->caller_side_tag;
      legs_[0].local_tag = tag;
      // The early dialog becomes the dialog (RFC 3261 §12.1): its CSeq spaces go on.
      legs_[0].remote_cseq = std::max(legs_[0].remote_cseq, early->caller_cseq);
      legs_[1].remote_cseq = std::max(legs_[1].remote_cseq, early->callee_cseq);
      stopProvisionals();  // RFC 3262 §3: a final response may overtake their PRACKs
      state_ = State::Answered;
      engine_.timers().cancel(ring_timer_);
      engine_.stats().add(Counter::CallsAnswered);
      record_.answer_ms = engine_.unixNow();
      record_.final_status = status;
      if (policy::RequestFilter* filter = engine_.filter()) {
        filter->callAnswered(admitted_, token(), record_.answer_ms);
        if (admitted_.micros_per_minute != 0 &&
            (admitted_.source_spend_cap != 0 || admitted_.trunk_spend_cap != 0))
          spend_timer_ = engine_.timers().schedule(engine_.now() + kSpendCheckMs, [this] { checkSpend(); });
      }
    } else {
      sip::NameAddr contact;
      if (response.firstContact(contact)) legs_[to].remote_target = targetOf(contact.uri);
    }
    ex.answered = true;
    ex.answered_tag = std::string(response.toTag());
    ex.ok_bytes = buildResponse(*ex.server, ex.from, response, tag, verdict.body);
    txn::ServerTransaction* server = ex.server;
    release(ex.server);
    engine_.layer().respond(*server, status, std::string(ex.ok_bytes));
    // RFC 3261 §13.3.1.4: the UAS core retransmits its 2xx until the ACK arrives.
    // Over TCP the transport is reliable: only the 64*T1 deadline for the ACK applies.
    const txn::Timers& t = engine_.layer().timers();
    bool reliable = net::isReliable(legs_[ex.from].flow.transport);
    ex.ok_deadline = engine_.now() + 64 * t.t1;
    ex.ok_interval = t.t1;
    InviteExchange* exp = &ex;
    ex.ok_timer = engine_.timers().schedule(reliable ? ex.ok_deadline : engine_.now() + t.t1,
                                            [this, exp] { retransmitOk(exp); });
    return;
  }
  // Final failure: the client transaction ACKs the callee itself.
  if (ex.server != nullptr) {
    txn::ServerTransaction* server = ex.server;
    release(ex.server);
    std::string tag;
    if (initial) {
      EarlyDialog* early =
          early_.forCallee(response.toTag(), legs_[0].local_tag, [this] { return engine_.ids().tag(); });
      tag = early != nullptr ? early->caller_side_tag : legs_[0].local_tag;
      stopProvisionals();
    }
    engine_.layer().respond(*server, status,
                            buildResponse(*server, ex.from, response, tag, sip::bodyOf(response)));
    if (initial && state_ == State::Calling) {
      engine_.stats().add(Counter::CallsFailed);
      record_.final_status = status;
      noteEnd("callee", "rejected");
    }
  }
  if (initial || state_ == State::Cancelled) end();
}

void Call::hangUpStray(InviteExchange& ex, const sip::Message& response, bool initial) {
  // Only the initial INVITE forks; a re-INVITE's 2xx with a foreign To-tag belongs to no dialog.
  if (!initial) return;
  // Each stray dialog is ACKed and hung up once, and only so many: a peer that repeats or
  // varies 2xx responses cannot make us open BYE transactions without bound.
  std::string_view tag = response.toTag();
  if (std::find(ex.hung_up_tags.begin(), ex.hung_up_tags.end(), tag) != ex.hung_up_tags.end()) return;
  if (ex.hung_up_tags.size() >= kMaxEarlyDialogs) {
    engine_.stats().add(Counter::EarlyDialogsRefused);
    return;
  }
  ex.hung_up_tags.emplace_back(tag);
  engine_.ackAndBye(response, legs_[1 - ex.from].flow);
}

void Call::retransmitOk(InviteExchange* ex) {
  ex->ok_timer = 0;
  base::Millis now = engine_.now();
  if (now >= ex->ok_deadline) {
    onAckTimeout(ex);
    return;
  }
  engine_.layer().sendRaw(legs_[ex->from].flow, std::string(ex->ok_bytes));
  engine_.stats().add(Counter::Retransmissions);
  ex->ok_interval = std::min(ex->ok_interval * 2, engine_.layer().timers().t2);
  ex->ok_timer = engine_.timers().schedule(std::min(now + ex->ok_interval, ex->ok_deadline),
                                           [this, ex] { retransmitOk(ex); });
}

void Call::onAckTimeout(InviteExchange* ex) {
  LOG_INFO("call {}: no ACK for our 2xx, tearing down", legs_[0].call_id);
  int to = 1 - ex->from;
  // Confirm the other leg's dialog with an ACK so that our BYE is valid there.
  if (!ex->acked) {
    engine_.layer().sendRaw(
        legs_[to].flow, buildRequest(to, "ACK", ex->to_cseq, engine_.ids().branch(), nullptr, {}, nullptr));
    ex->acked = true;
  }
  terminate(true);
}

void Call::answerLocally(txn::ServerTransaction*& server, int status, std::string_view reason,
                         std::string_view to_tag) {
  if (server == nullptr) return;
  txn::ServerTransaction* txn = server;
  release(server);
  std::string bytes = sip::MessageBuilder(384)
                          .responseTo(txn->request(), txn->flow().remote, status, reason, to_tag)
                          .finish();
  engine_.layer().respond(*txn, status, std::move(bytes));
}

void Call::onTimeout(txn::ClientTransaction& txn) {
  if (state_ == State::Ended) return;
  if (InviteExchange* ex = findInvite(&txn)) {
    bool initial = ex == invites_.front().get() && state_ != State::Answered && state_ != State::Confirmed;
    release(ex->client);
    answerLocally(ex->server, 408, "Request Timeout", initial ? legs_[0].local_tag : std::string());
    if (initial) {
      if (state_ == State::Calling) engine_.stats().add(Counter::CallsTimedOut);
      end();
    }
    return;
  }
  if (RequestExchange* rx = findRequest(&txn)) {
    release(rx->client);
    answerLocally(rx->server, 408, "Request Timeout", {});
    bool was_bye = rx->method == Method::Bye;
    forgetRequest(rx);
    if (was_bye) end();
  }
}

void Call::onCancel(txn::ServerTransaction& txn) {
  InviteExchange* ex = findInvite(&txn);
  if (ex == nullptr || state_ == State::Ended) return;
  bool initial = ex == invites_.front().get() && state_ == State::Calling;
  answerLocally(ex->server, 487, "Request Terminated", initial ? legs_[0].local_tag : std::string());
  if (ex->client != nullptr && ex->client->gotProvisional()) {
    sendCancel(*ex);
  } else {
    ex->cancel_pending = true;
  }
  if (initial) {
    state_ = State::Cancelled;
    stopProvisionals();
    engine_.stats().add(Counter::CallsCancelled);
    record_.final_status = 487;
    noteEnd("caller", "cancel");
    // If the callee never answers the CANCEL or the INVITE, give up after 64*T1 (§9.1).
    cancel_guard_timer_ = engine_.timers().schedule(engine_.now() + 64 * engine_.layer().timers().t1, [this] {
      cancel_guard_timer_ = 0;
      end();
    });
  }
}

void Call::sendCancel(InviteExchange& ex) {
  if (ex.client == nullptr) return;
  const txn::ClientTransaction& invite = *ex.client;
  // Only a pending INVITE can be cancelled (RFC 3261 §9.1); after a final it is moot.
  if (invite.state() != txn::ClientTransaction::State::Calling &&
      invite.state() != txn::ClientTransaction::State::Proceeding) {
    return;
  }
  int to = 1 - ex.from;
  engine_.layer().startClient(Method::Cancel, invite.branch(), invite.flow(), invite.buildCancel(),
                              invite.lines(), nullptr, legs_[to].peer_addresses);
}

void Call::onClientGone(txn::ClientTransaction& txn) {
  if (InviteExchange* ex = findInvite(&txn)) {
    ex->client = nullptr;
    // No more 2xx can reach us for it: the ACK we kept for them is no longer needed.
    if (ex->acked) std::string().swap(ex->ack_bytes);
  }
  if (RequestExchange* rx = findRequest(&txn)) rx->client = nullptr;
  // Forget finished exchanges once nothing refers to them any more.
  invites_.erase(std::remove_if(invites_.begin() + (invites_.empty() ? 0 : 1), invites_.end(),
                                [](const auto& e) {
                                  return e->client == nullptr && e->server == nullptr && e->ok_timer == 0;
                                }),
                 invites_.end());
}

void Call::onServerGone(txn::ServerTransaction& txn) {
  if (InviteExchange* ex = findInvite(&txn)) ex->server = nullptr;
  for (auto& rx : requests_) {
    if (rx->server == &txn) rx->server = nullptr;
  }
}

void Call::markVerified(int leg, const net::Flow& flow) {
  // A request carrying our unpredictable tag from the leg's own address: that address
  // receives what we send.
  if (flow.remote == legs_[leg].flow.remote) legs_[leg].flow.verified = true;
}

bool Call::reachable(int leg) const {
  const net::Flow& flow = legs_[leg].flow;
  return net::isReliable(flow.transport) || flow.verified;
}

void Call::onInDialogRequest(int leg, std::unique_ptr<sip::Message> request, const net::Flow& flow) {
  if (state_ == State::Ended) return;
  const sip::Message& req = *request;
  Leg& x = legs_[leg];
  // Every request in a dialog, the ACK of a 2xx included, carries our tag for that leg (an
  // unpredictable value only the peer saw) and the peer's: a Call-ID alone is not enough.
  bool in_dialog = req.toTag() == x.local_tag && req.fromTag() == x.remote_tag;
  if (req.method() == Method::Ack) {
    if (in_dialog) relayAck(leg, req, flow);  // an ACK gets no answer either way
    return;
  }
  // PRACK names an early dialog's provisional even after the 2xx (they may cross); UPDATE
  // before the answer goes to the matching early dialog on the other leg.
  if (req.method() == Method::Prack) {
    onPrack(leg, std::move(request), flow);
    return;
  }
  if (req.method() == Method::Update && state_ == State::Calling) {
    onEarlyUpdate(leg, std::move(request), flow);
    return;
  }
  bool dialog_up = state_ == State::Answered || state_ == State::Confirmed;
  if (!dialog_up || !in_dialog) {
    engine_.replyStateless(req, flow, 481, "Call/Transaction Does Not Exist");
    return;
  }
  markVerified(leg, flow);
  if (!relayedInDialog(req.method())) {
    // REFER (a transfer to a number the sender picks), SUBSCRIBE, MESSAGE and unknown methods
    // are not relayed: the B2BUA does not map their dialog references across.
    engine_.replyStateless(req, flow, 405, "Method Not Allowed",
                           "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK\r\n");
    return;
  }
  if (req.maxForwards() == 0) {
    engine_.replyStateless(req, flow, 483, "Too Many Hops");
    return;
  }
  // RFC 3261 §12.2.2: a lower CSeq than the last one seen is out of order.
  if (req.cseq() <= x.remote_cseq && x.remote_cseq != 0) {
    engine_.replyStateless(req, flow, 500, "CSeq Out Of Order");
    return;
  }
  if (req.method() == Method::Invite) {
    for (const auto& ex : invites_) {
      if (ex->client != nullptr && ex->client->state() != txn::ClientTransaction::State::Accepted &&
          ex->client->state() != txn::ClientTransaction::State::Completed) {
        engine_.replyStateless(req, flow, 491, "Request Pending");  // glare (RFC 3261 §14.2)
        return;
      }
    }
    if (invites_.size() >= kMaxInviteExchanges) {
      engine_.stats().add(Counter::RequestsOverCallLimit);
      engine_.replyStateless(req, flow, 500, "Server Internal Error",
                             "Retry-After: 2\r\n");  // RFC 3261 §14.2
      return;
    }
  } else if (requests_.size() >= kMaxRequestsInFlight) {
    engine_.stats().add(Counter::RequestsOverCallLimit);
    engine_.replyStateless(req, flow, 503, "Service Unavailable", "Retry-After: 2\r\n");
    return;
  }
  x.remote_cseq = req.cseq();
  net::Flow from = flow;
  from.verified = from.verified || from.remote == x.flow.remote;
  relayRequest(leg, std::move(request), from);
}

bool Call::admitEarlyRequest(int leg, const sip::Message& req, std::uint32_t& last_cseq,
                             const net::Flow& flow) {
  if (req.maxForwards() == 0) {
    engine_.replyStateless(req, flow, 483, "Too Many Hops");
    return false;
  }
  // RFC 3261 §12.2.2, per dialog: each early dialog has its own remote CSeq.
  if (last_cseq != 0 && req.cseq() <= last_cseq) {
    engine_.replyStateless(req, flow, 500, "CSeq Out Of Order");
    return false;
  }
  if (requests_.size() >= kMaxRequestsInFlight) {
    engine_.stats().add(Counter::RequestsOverCallLimit);
    engine_.replyStateless(req, flow, 503, "Service Unavailable", "Retry-After: 2\r\n");
    return false;
  }
  last_cseq = req.cseq();
  markVerified(leg, flow);
  return true;
}

void Call::onPrack(int leg, std::unique_ptr<sip::Message> request, const net::Flow& flow) {
  const sip::Message& req = *request;
  // Only the caller acknowledges: on the callee leg the INVITE is ours, and we never ask for
  // reliable provisionals of our own.
  EarlyDialog* dialog = nullptr;
  if (leg == 0 && req.fromTag() == legs_[0].remote_tag && !invites_.empty() && state_ != State::Cancelled)
    dialog = early_.byCallerSideTag(req.toTag());
  if (dialog == nullptr) {
    engine_.replyStateless(req, flow, 481, "Call/Transaction Does Not Exist");
    return;
  }
  const sip::HeaderField* rack_field = req.find(Hdr::Rack);
  sip::RAck rack;
  if (rack_field == nullptr || req.count(Hdr::Rack) != 1 || !sip::parseRAck(rack_field->value, rack)) {
    engine_.replyStateless(req, flow, 400, "Bad RAck");
    return;
  }
  // RFC 3262 §7.2: a PRACK that matches no unacknowledged reliable provisional gets 481.
  const InviteExchange& invite = *invites_.front();
  auto it = std::find_if(unacked_.begin(), unacked_.end(), [&](const auto& p) {
    return p->dialog == dialog && p->rseq == rack.rseq && rack.cseq == invite.from_cseq &&
           rack.method == "INVITE";
  });
  if (it == unacked_.end()) {
    engine_.replyStateless(req, flow, 481, "Call/Transaction Does Not Exist");
    return;
  }
  if (!admitEarlyRequest(leg, req, dialog->caller_cseq, flow)) return;
  // Acknowledged: our retransmissions stop, and the callee gets its own RSeq and INVITE CSeq.
  std::string rack_line = fmt::format("RAck: {} {} INVITE\r\n", (*it)->callee_rseq, invite.to_cseq);
  engine_.timers().cancel((*it)->timer);
  unacked_.erase(it);
  // After the 2xx, the answering fork's early dialog is the call's dialog.
  bool confirmed = !legs_[1].remote_tag.empty() && dialog->callee_tag == legs_[1].remote_tag;
  if (confirmed) legs_[0].remote_cseq = std::max(legs_[0].remote_cseq, req.cseq());
  net::Flow from = flow;
  from.verified = from.verified || from.remote == legs_[leg].flow.remote;
  relayRequest(leg, std::move(request), from, confirmed ? nullptr : dialog, rack_line);
}

void Call::onEarlyUpdate(int leg, std::unique_ptr<sip::Message> request, const net::Flow& flow) {
  const sip::Message& req = *request;
  // RFC 3311 §5.1: UPDATE within an early dialog; which one is told by our tag (caller) or by
  // the callee's own tag (callee).
  EarlyDialog* dialog = nullptr;
  if (leg == 0 && req.fromTag() == legs_[0].remote_tag) dialog = early_.byCallerSideTag(req.toTag());
  if (leg == 1 && req.toTag() == legs_[1].local_tag && !req.fromTag().empty())
    dialog = early_.byCalleeTag(req.fromTag());
  if (dialog == nullptr || dialog->callee_tag.empty()) {
    engine_.replyStateless(req, flow, 481, "Call/Transaction Does Not Exist");
    return;
  }
  if (!admitEarlyRequest(leg, req, leg == 0 ? dialog->caller_cseq : dialog->callee_cseq, flow)) return;
  net::Flow from = flow;
  from.verified = from.verified || from.remote == legs_[leg].flow.remote;
  relayRequest(leg, std::move(request), from, dialog);
}

Call::Reliability Call::classifyProvisional(const EarlyDialog& dialog, const sip::Message& response,
                                            std::uint32_t& callee_rseq) {
  callee_rseq = 0;
  // RFC 3262 §3: reliable means Require: 100rel; such a response makes an early dialog, so
  // one without a To-tag has nothing a PRACK could name.
  if (response.toTag().empty() || !hasOption(response, Hdr::Require, "100rel")) return Reliability::Plain;
  const sip::HeaderField* field = response.find(Hdr::Rseq);
  std::uint32_t rseq = 0;
  if (field == nullptr || response.count(Hdr::Rseq) != 1 || !sip::parseRSeq(field->value, rseq)) {
    engine_.stats().add(Counter::ProvisionalsDropped);
    return Reliability::Drop;
  }
  // RFC 3262 §4: each new one is one above the last. Not above it: a retransmission, which
  // the caller does not get again (we retransmit ours); further above: out of order, and the
  // callee retransmits the one in between.
  if (dialog.callee_rseq != 0 && rseq != dialog.callee_rseq + 1) {
    engine_.stats().add(rseq <= dialog.callee_rseq ? Counter::RetransmissionsAbsorbed
                                                   : Counter::ProvisionalsDropped);
    return Reliability::Drop;
  }
  if (!caller_reliable_) {
    // The callee only had 100rel from the caller's INVITE: this should not happen. The
    // caller gets it plain, once.
    callee_rseq = rseq;
    return Reliability::Plain;
  }
  if (unacked_.size() >= kMaxUnackedProvisionals) {
    engine_.stats().add(Counter::ProvisionalsDropped);
    return Reliability::Drop;
  }
  callee_rseq = rseq;
  return Reliability::Reliable;
}

void Call::sendReliableProvisional(InviteExchange& ex, EarlyDialog& dialog, std::uint32_t callee_rseq,
                                   int status, const sip::Message& response, sip::Body body) {
  // RFC 3262 §3: our own RSeq space per early dialog, from a random start, one up each time.
  if (dialog.next_rseq == 0) dialog.next_rseq = engine_.ids().firstRSeq();
  auto provisional = std::make_unique<ReliableProvisional>();
  ReliableProvisional* p = provisional.get();
  p->dialog = &dialog;
  p->rseq = dialog.next_rseq++;
  p->callee_rseq = callee_rseq;
  std::string extra = fmt::format("Require: 100rel\r\nRSeq: {}\r\n", p->rseq);
  std::string bytes = buildResponse(*ex.server, ex.from, response, dialog.caller_side_tag, body, extra);
  // Retransmitted from T1 on over UDP; over TCP and TLS sent once, and only the 64*T1
  // deadline for the PRACK applies.
  const txn::Timers& t = engine_.layer().timers();
  bool reliable = net::isReliable(ex.server->flow().transport);
  if (!reliable) p->bytes = bytes;
  p->interval = t.t1;
  p->deadline = engine_.now() + 64 * t.t1;
  p->timer = engine_.timers().schedule(reliable ? p->deadline : engine_.now() + t.t1,
                                       [this, p] { retransmitProvisional(p); });
  unacked_.push_back(std::move(provisional));
  engine_.layer().respond(*ex.server, status, std::move(bytes));
}

void Call::retransmitProvisional(ReliableProvisional* p) {
  p->timer = 0;
  base::Millis now = engine_.now();
  if (now >= p->deadline) {
    onPrackTimeout(p);
    return;
  }
  const txn::ServerTransaction* server = invites_.empty() ? nullptr : invites_.front()->server;
  if (server == nullptr) return;  // answered meanwhile
  engine_.layer().sendRaw(server->flow(), std::string(p->bytes));
  engine_.stats().add(Counter::Retransmissions);
  // RFC 3262 §3: the interval doubles without the T2 cap of 2xx retransmissions.
  p->interval *= 2;
  p->timer = engine_.timers().schedule(std::min(now + p->interval, p->deadline),
                                       [this, p] { retransmitProvisional(p); });
}

void Call::onPrackTimeout(ReliableProvisional* p) {
  // RFC 3262 §3: the UAS SHOULD reject the INVITE with a 5xx. We take 500: the caller broke
  // off (504 would blame a server beyond us). The callee's INVITE is cancelled.
  LOG_INFO("call {}: reliable provisional {} not acknowledged within 64*T1, rejecting the INVITE",
           legs_[0].call_id, p->rseq);
  if (invites_.empty() || state_ != State::Calling) return;  // answered meanwhile: timers were stopped
  std::string tag = p->dialog->caller_side_tag;
  engine_.stats().add(Counter::PrackTimeouts);
  InviteExchange& ex = *invites_.front();
  answerLocally(ex.server, 500, "Provisional Response Not Acknowledged", tag);
  sendCancel(ex);
  engine_.stats().add(Counter::CallsTimedOut);
  end();
}

void Call::stopProvisionals() {
  // Kept without their bytes: a PRACK that crossed the final response is still relayed.
  for (auto& p : unacked_) {
    engine_.timers().cancel(p->timer);
    std::string().swap(p->bytes);
  }
}

void Call::relayRequest(int from, std::unique_ptr<sip::Message> request, const net::Flow& flow,
                        EarlyDialog* early, std::string_view extra) {
  int to = 1 - from;
  Method method = request->method();
  if (method == Method::Bye) noteEnd(from == 0 ? "caller" : "callee", "bye");
  txn::ServerTransaction* server = engine_.layer().startServer(std::move(request), flow, this);
  if (server == nullptr) return;
  const sip::Message& req = server->request();
  std::string storage;
  sip::Body body = sip::bodyOf(req);
  if (carriesOfferAnswer(method)) {
    BodyVerdict verdict = crossBody(BodyCrossing{to, method, 0, early != nullptr}, req, storage);
    if (verdict.status != 0) {
      txn::ServerTransaction* refused = server;
      answerLocally(refused, verdict.status, verdict.reason, {});
      return;
    }
    body = verdict.body;
  }
  sip::NameAddr contact;
  if (isTargetRefresh(method) && req.firstContact(contact)) {
    // The callee's target in an early dialog is that dialog's; the caller has one for all.
    (early != nullptr && from == 1 ? early->callee_target : legs_[from].remote_target) =
        targetOf(contact.uri);
  }
  std::string branch = engine_.ids().branch();
  std::uint32_t cseq = legs_[to].local_cseq++;
  txn::RequestLines lines;
  std::string bytes = buildRequest(to, req.methodText(), cseq, branch, &req, body, &lines, early, extra);
  if (method == Method::Invite) {
    auto ex = std::make_unique<InviteExchange>();
    ex->from = from;
    ex->from_cseq = req.cseq();
    ex->to_cseq = cseq;
    ex->server = server;
    InviteExchange* raw = ex.get();
    invites_.push_back(std::move(ex));
    startClient(to, method, branch, std::move(bytes), std::move(lines), &raw->client);
  } else {
    auto rx = std::make_unique<RequestExchange>();
    rx->from = from;
    rx->method = method;
    rx->early = early != nullptr;
    rx->server = server;
    RequestExchange* raw = rx.get();
    requests_.push_back(std::move(rx));
    startClient(to, method, branch, std::move(bytes), std::move(lines), &raw->client);
  }
}

void Call::relayAck(int from, const sip::Message& ack, const net::Flow& flow) {
  for (auto& ex : invites_) {
    if (ex->from != from || ex->from_cseq != ack.cseq() || !ex->answered) continue;
    int to = 1 - from;
    markVerified(from, flow);
    engine_.timers().cancel(ex->ok_timer);
    std::string().swap(ex->ok_bytes);
    if (!ex->acked) {
      // End-to-end ACK: same CSeq number as the INVITE it confirms on that leg (§13.2.2.4),
      // with the late offer's answer when it carries one.
      std::string storage;
      sip::Body body = sip::bodyOf(ack);
      if (!body.empty()) {
        BodyVerdict verdict =
            crossBody(BodyCrossing{to, Method::Ack, 0, ex.get() == invites_.front().get()}, ack, storage);
        if (verdict.status != 0) {
          LOG_INFO("call {}: ACK answer refused by media ({}), tearing down", legs_[0].call_id,
                   verdict.status);
          ex->ack_bytes = buildRequest(to, "ACK", ex->to_cseq, engine_.ids().branch(), nullptr, {}, nullptr);
          ex->acked = true;
          engine_.layer().sendRaw(legs_[to].flow, std::string(ex->ack_bytes));
          if (state_ == State::Answered) state_ = State::Confirmed;
          terminate(false);
          return;
        }
        body = verdict.body;
      }
      ex->ack_bytes = buildRequest(to, "ACK", ex->to_cseq, engine_.ids().branch(), &ack, body, nullptr);
      ex->acked = true;
    }
    // After the callee's transaction is gone the ACK is no longer kept: a late repeat from
    // the caller needs no answer.
    if (!ex->ack_bytes.empty()) engine_.layer().sendRaw(legs_[to].flow, std::string(ex->ack_bytes));
    if (state_ == State::Answered) state_ = State::Confirmed;
    return;
  }
}

void Call::sendBye(int leg) {
  std::string branch = engine_.ids().branch();
  std::uint32_t cseq = legs_[leg].local_cseq++;
  txn::RequestLines lines;
  std::string bytes = buildRequest(leg, "BYE", cseq, branch, nullptr, {}, &lines);
  startClient(leg, Method::Bye, branch, std::move(bytes), std::move(lines), nullptr);
}

void Call::terminate(bool count_timeout) {
  if (state_ == State::Ended) return;
  if (state_ == State::Answered || state_ == State::Confirmed) {
    // RFC 3261 §13.3.1.4 ends an unacknowledged session with a BYE; one that goes to a UDP
    // source which never showed it receives there (no ACK, no request with our tag) would
    // only reflect traffic at whoever it spoofed, so that leg gets none.
    if (reachable(0)) sendBye(0);
    if (reachable(1)) sendBye(1);
  } else if (state_ == State::Calling && !invites_.empty()) {
    InviteExchange& ex = *invites_.front();
    answerLocally(ex.server, 408, "Request Timeout", legs_[0].local_tag);
    sendCancel(ex);
  }
  if (count_timeout) engine_.stats().add(Counter::CallsTimedOut);
  if (state_ == State::Calling) record_.final_status = 408;
  noteEnd("palisade", count_timeout ? "timeout" : "media_refused");
  end();
}

void Call::noteEnd(const char* by, const char* reason) {
  if (!record_.ended_by.empty()) return;
  record_.ended_by = by;
  record_.end_reason = reason;
}

void Call::checkSpend() {
  spend_timer_ = 0;
  if (state_ == State::Ended) return;
  policy::RequestFilter* filter = engine_.filter();
  if (filter != nullptr && filter->overSpendCap(admitted_, engine_.unixNow())) {
    LOG_WARN("call {}: its caller reached its spend cap, tearing down", legs_[0].call_id);
    noteEnd("palisade", "spend_cap");
    terminate(false);
    return;
  }
  spend_timer_ = engine_.timers().schedule(engine_.now() + kSpendCheckMs, [this] { checkSpend(); });
}

void Call::end() {
  if (state_ == State::Ended) return;
  state_ = State::Ended;
  engine_.timers().cancel(duration_timer_);
  engine_.timers().cancel(ring_timer_);
  engine_.timers().cancel(cancel_guard_timer_);
  engine_.timers().cancel(spend_timer_);
  spend_timer_ = 0;
  stopProvisionals();
  // Requests still waiting for the other leg get their answer now: a BYE that crossed ours
  // is done (200), anything else has lost its dialog (481).
  for (auto& ex : invites_) {
    engine_.timers().cancel(ex->ok_timer);
    release(ex->client);
    answerLocally(ex->server, 481, "Call/Transaction Does Not Exist", {});
  }
  for (auto& rx : requests_) {
    release(rx->client);
    if (rx->method == Method::Bye) {
      answerLocally(rx->server, 200, "OK", {});
    } else {
      answerLocally(rx->server, 481, "Call/Transaction Does Not Exist", {});
    }
  }
  LOG_DEBUG("call {} ended", legs_[0].call_id);
  engine_.unregisterLeg(legs_[0].side, legs_[0].call_id);
  engine_.unregisterLeg(legs_[1].side, legs_[1].call_id);
  engine_.retire(this);
}

}  // namespace palisade::dialog
