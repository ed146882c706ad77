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

// Headers never copied from one leg to the other: they describe the sending side's
// topology or dialog state, or we write our own.
bool isLegLocal(Hdr id) {
  switch (id) {
    case Hdr::Via:
    case Hdr::From:
    case Hdr::To:
    case Hdr::CallId:
    case Hdr::CSeq:
    case Hdr::MaxForwards:
    case Hdr::Contact:
    case Hdr::Route:
    case Hdr::RecordRoute:
    case Hdr::ContentLength:
    case Hdr::ContentType:
    case Hdr::Path:
    case Hdr::ServiceRoute:
    case Hdr::Rseq:
    case Hdr::Rack:
    case Hdr::Warning:
    case Hdr::UserAgent:
    case Hdr::Server:
    case Hdr::Supported:
    case Hdr::Require:
    case Hdr::ProxyRequire:
    case Hdr::Unsupported:
    case Hdr::ReplyTo:
    case Hdr::ErrorInfo:
    case Hdr::CallInfo:
    case Hdr::Organization:
      return true;
    default:
      return false;
  }
}

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

// Stops listening to a transaction the call no longer needs (it may outlive the call).
template <typename Txn>
void release(Txn*& txn) {
  if (txn != nullptr) txn->detach();
  txn = nullptr;
}

}  // namespace

Call::Call(Engine& engine) : engine_(engine) { engine_.stats().adjust(stats::Gauge::ActiveCalls, 1); }

Call::~Call() { engine_.stats().adjust(stats::Gauge::ActiveCalls, -1); }

void Call::start(txn::ServerTransaction& invite, const net::Flow& target) {
  const sip::Message& req = invite.request();
  Leg& a = legs_[0];
  Leg& b = legs_[1];
  a.side = invite.flow().side;
  a.flow = invite.flow();
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

  // The callee leg names nobody from the caller side: our address, the target's address.
  sip::Uri request_uri, from_uri;
  sip::parseUri(req.requestUri(), request_uri);
  sip::parseUri(req.from().uri, from_uri);
  const LocalAddress& local = engine_.local(target.side);
  std::string target_host = target.remote.address.is_v6() ? "[" + target.remote.address.to_string() + "]"
                                                          : target.remote.address.to_string();
  std::string user_prefix = request_uri.user.empty() ? "" : std::string(request_uri.user) + "@";
  std::string from_prefix = from_uri.user.empty() ? "" : std::string(from_uri.user) + "@";
  b.side = target.side;
  b.flow = target;
  b.call_id = engine_.ids().callId();
  b.local_tag = engine_.ids().tag();
  std::string from_display = req.from().display.empty() ? "" : std::string(req.from().display) + " ";
  std::string to_display = req.to().display.empty() ? "" : std::string(req.to().display) + " ";
  b.local_uri = fmt::format("{}<sip:{}{}>", from_display, from_prefix, formatHost(local.host));
  b.remote_uri = fmt::format("{}<sip:{}{}:{}>", to_display, user_prefix, target_host, target.remote.port);
  b.remote_target = fmt::format("sip:{}{}:{}{}", user_prefix, target_host, target.remote.port,
                                target.transport == net::Transport::Tcp ? ";transport=tcp" : "");
  engine_.registerLeg(a.side, a.call_id, this);
  engine_.registerLeg(b.side, b.call_id, this);

  auto exchange = std::make_unique<InviteExchange>();
  exchange->from = 0;
  exchange->from_cseq = req.cseq();
  exchange->to_cseq = b.local_cseq++;
  exchange->server = &invite;
  invite.attach(this);
  std::string branch = engine_.ids().branch();
  txn::RequestLines lines;
  std::string bytes = buildRequest(1, "INVITE", exchange->to_cseq, branch, &req, &lines);
  InviteExchange* ex = exchange.get();
  invites_.push_back(std::move(exchange));
  engine_.stats().add(Counter::CallsAttempted);
  LOG_DEBUG("call {}: {} -> {} as {}", a.call_id, a.flow.remote.toString(), b.flow.remote.toString(),
            b.call_id);
  duration_timer_ = engine_.timers().schedule(
      engine_.now() + static_cast<base::Millis>(engine_.config().max_call_duration_s) * 1000, [this] {
        duration_timer_ = 0;
        LOG_INFO("call {} reached max_call_duration_s, tearing down", legs_[0].call_id);
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
  ex->client =
      engine_.layer().startClient(Method::Invite, branch, b.flow, std::move(bytes), std::move(lines), this);
}

std::string Call::viaLine(int leg, const std::string& branch) const {
  const Leg& l = legs_[leg];
  const LocalAddress& local = engine_.local(l.side);
  return fmt::format("Via: SIP/2.0/{} {}:{};branch={}{}\r\n", net::transportName(l.flow.transport),
                     formatHost(local.host), local.port(l.flow.transport), branch,
                     l.flow.transport == net::Transport::Udp ? ";rport" : "");
}

void Call::appendContact(std::string& out, int leg) const {
  const Leg& l = legs_[leg];
  const LocalAddress& local = engine_.local(l.side);
  fmt::format_to(std::back_inserter(out), "Contact: <sip:{}:{}{}>\r\n", formatHost(local.host),
                 local.port(l.flow.transport),
                 l.flow.transport == net::Transport::Tcp ? ";transport=tcp" : "");
}

void Call::appendCopiedHeaders(std::string& out, const sip::Message& source) const {
  for (const auto& h : source.headers()) {
    if (h.id == Hdr::Supported) {
      // We relay reliable provisionals as plain ones, so 100rel is never offered across.
      std::vector<std::string_view> options;
      if (!sip::splitList(h.value, options)) continue;
      std::string kept;
      for (auto opt : options) {
        if (sip::iequals(opt, "100rel")) continue;
        if (!kept.empty()) kept.append(", ");
        kept.append(opt);
      }
      if (!kept.empty()) fmt::format_to(std::back_inserter(out), "Supported: {}\r\n", kept);
      continue;
    }
    if (isLegLocal(h.id)) continue;
    out.append(source.raw().substr(h.begin, h.end - h.begin));
  }
}

std::string Call::buildRequest(int to, std::string_view method, std::uint32_t cseq, const std::string& branch,
                               const sip::Message* source, txn::RequestLines* lines) {
  Leg& y = legs_[to];
  std::string out;
  out.reserve(768 + (source ? source->body().size() + source->raw().size() / 2 : 0));
  std::string via = viaLine(to, branch);
  std::string routes;
  for (const auto& r : y.route_set) fmt::format_to(std::back_inserter(routes), "Route: {}\r\n", r);
  std::string from = fmt::format("From: {};tag={}\r\n", y.local_uri, y.local_tag);
  std::string to_line = y.remote_tag.empty() ? fmt::format("To: {}\r\n", y.remote_uri)
                                             : fmt::format("To: {};tag={}\r\n", y.remote_uri, y.remote_tag);
  std::string call_id = fmt::format("Call-ID: {}\r\n", y.call_id);
  int max_forwards = (source == nullptr || source->maxForwards() < 0) ? 70 : source->maxForwards() - 1;
  fmt::format_to(std::back_inserter(out), "{} {} SIP/2.0\r\n", method, y.remote_target);
  out.append(via).append(routes);
  fmt::format_to(std::back_inserter(out), "Max-Forwards: {}\r\n", max_forwards);
  out.append(from).append(to_line).append(call_id);
  fmt::format_to(std::back_inserter(out), "CSeq: {} {}\r\n", cseq, method);
  Method m = sip::methodFromName(method);
  if (m == Method::Invite || m == Method::Update || m == Method::Subscribe || m == Method::Refer ||
      m == Method::Notify) {
    appendContact(out, to);
  }
  std::string_view body;
  if (source != nullptr) {
    appendCopiedHeaders(out, *source);
    body = source->body();
    const sip::HeaderField* ct = source->find(Hdr::ContentType);
    if (!body.empty() && ct != nullptr)
      fmt::format_to(std::back_inserter(out), "Content-Type: {}\r\n", ct->value);
  }
  fmt::format_to(std::back_inserter(out), "User-Agent: {}\r\nContent-Length: {}\r\n\r\n",
                 engine_.config().user_agent, body.size());
  out.append(body);
  if (lines != nullptr) {
    lines->request_uri = y.remote_target;
    lines->via = std::move(via);
    lines->routes = std::move(routes);
    lines->from = std::move(from);
    lines->to = std::move(to_line);
    lines->call_id = std::move(call_id);
    lines->cseq = cseq;
  }
  return out;
}

std::string Call::buildResponse(txn::ServerTransaction& server, int from, const sip::Message& response,
                                std::string_view to_tag) {
  const sip::Message& req = server.request();
  int status = response.statusCode();
  std::string out = engine_.responseHead(req, server.flow(), status, response.reasonPhrase(), to_tag);
  if (status > 100 && status < 300 && isTargetRefresh(req.method())) appendContact(out, from);
  appendCopiedHeaders(out, response);
  std::string_view body = response.body();
  const sip::HeaderField* ct = response.find(Hdr::ContentType);
  if (!body.empty() && ct != nullptr)
    fmt::format_to(std::back_inserter(out), "Content-Type: {}\r\n", ct->value);
  fmt::format_to(std::back_inserter(out), "Server: {}\r\nContent-Length: {}\r\n\r\n",
                 engine_.config().user_agent, body.size());
  out.append(body);
  return out;
}

std::string& Call::callerSideTag(std::string_view callee_tag) {
  for (auto& entry : early_tags_) {
    if (entry.callee_tag == callee_tag) return entry.caller_side_tag;
  }
  // The first early dialog uses the tag made at start; each further fork gets its own.
  std::string tag = early_tags_.empty() ? legs_[0].local_tag : engine_.ids().tag();
  early_tags_.push_back(EarlyTag{std::string(callee_tag), std::move(tag)});
  return early_tags_.back().caller_side_tag;
}

void Call::learnCalleeDialog(const sip::Message& response) {
  Leg& b = legs_[1];
  b.remote_tag = std::string(response.toTag());
  sip::NameAddr contact;
  if (response.firstContact(contact)) b.remote_target = targetOf(contact.uri);
  // RFC 3261 §12.1.2: the UAC's route set is the Record-Route list in reverse order.
  b.route_set.clear();
  for (const auto& h : response.headers()) {
    if (h.id != Hdr::RecordRoute) continue;
    std::vector<std::string_view> routes;
    if (sip::splitList(h.value, routes)) {
      for (auto r : routes) b.route_set.emplace_back(r);
    }
  }
  std::reverse(b.route_set.begin(), b.route_set.end());
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

void Call::onResponse(txn::ClientTransaction& txn, std::unique_ptr<sip::Message> response) {
  if (state_ == State::Ended) return;
  if (InviteExchange* ex = findInvite(&txn)) {
    relayResponse(ex, nullptr, *response);
  } else if (RequestExchange* rx = findRequest(&txn)) {
    relayResponse(nullptr, rx, *response);
  }
}

void Call::relayResponse(InviteExchange* ex, RequestExchange* rx, const sip::Message& response) {
  int status = response.statusCode();
  if (rx != nullptr) {
    if (status == 100) return;  // hop by hop: we sent our own
    if (rx->server != nullptr) {
      txn::ServerTransaction* server = rx->server;
      std::string bytes = buildResponse(*server, rx->from, response, {});
      if (status >= 200) release(rx->server);
      engine_.layer().respond(*server, status, std::move(bytes));
    }
    if (status >= 200) {
      bool was_bye = rx->method == Method::Bye;
      release(rx->client);
      requests_.erase(
          std::remove_if(requests_.begin(), requests_.end(), [rx](const auto& p) { return p.get() == rx; }),
          requests_.end());
      if (was_bye) end();
    }
    return;
  }

  bool initial =
      !invites_.empty() && ex == invites_.front().get() && ex->from == 0 && legs_[1].remote_tag.empty();
  int to = 1 - ex->from;
  if (status < 200) {
    if (ex->cancel_pending) {
      ex->cancel_pending = false;
      sendCancel(*ex);
    }
    if (ex->server == nullptr || status == 100) return;  // 100 is hop by hop: we sent our own
    std::string tag = initial ? callerSideTag(response.toTag()) : std::string();
    engine_.layer().respond(*ex->server, status, buildResponse(*ex->server, ex->from, response, tag));
    return;
  }
  if (status < 300) {
    if (ex->answered) {
      if (response.toTag() != ex->answered_tag) {
        engine_.ackAndBye(response, legs_[to].flow);  // another fork answered too
      } else if (ex->acked && !ex->ack_bytes.empty()) {
        engine_.layer().sendRaw(legs_[to].flow, std::string(ex->ack_bytes));  // our ACK was lost
      }
      return;
    }
    if (ex->server == nullptr) {
      // The caller cancelled (or the transaction is gone): the CANCEL/200 race.
      engine_.ackAndBye(response, legs_[to].flow);
      if (state_ == State::Cancelled) end();
      return;
    }
    std::string tag;
    if (initial) {
      learnCalleeDialog(response);
      tag = callerSideTag(response.toTag());
      legs_[0].local_tag = tag;
      state_ = State::Answered;
      engine_.timers().cancel(ring_timer_);
      engine_.stats().add(Counter::CallsAnswered);
    } else {
      sip::NameAddr contact;
      if (response.firstContact(contact)) legs_[to].remote_target = targetOf(contact.uri);
    }
    ex->answered = true;
    ex->answered_tag = std::string(response.toTag());
    ex->ok_bytes = buildResponse(*ex->server, ex->from, response, tag);
    txn::ServerTransaction* server = ex->server;
    release(ex->server);
    engine_.layer().respond(*server, status, std::string(ex->ok_bytes));
    // RFC 3261 §13.3.1.4: the UAS core retransmits its 2xx until the ACK arrives.
    // Over TCP the transport is reliable: only the 64*T1 deadline for the ACK applies.
    const txn::Timers& t = engine_.layer().timers();
    bool reliable = legs_[ex->from].flow.transport != net::Transport::Udp;
    ex->ok_deadline = engine_.now() + 64 * t.t1;
    ex->ok_interval = t.t1;
    ex->ok_timer = engine_.timers().schedule(reliable ? ex->ok_deadline : engine_.now() + t.t1,
                                             [this, ex] { retransmitOk(ex); });
    return;
  }
  // Final failure: the client transaction ACKs the callee itself.
  if (ex->server != nullptr) {
    txn::ServerTransaction* server = ex->server;
    release(ex->server);
    std::string tag = initial ? callerSideTag(response.toTag()) : std::string();
    engine_.layer().respond(*server, status, buildResponse(*server, ex->from, response, tag));
    if (initial && state_ == State::Calling) engine_.stats().add(Counter::CallsFailed);
  }
  if (initial || state_ == State::Cancelled) end();
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
    engine_.layer().sendRaw(legs_[to].flow,
                            buildRequest(to, "ACK", ex->to_cseq, engine_.ids().branch(), nullptr, nullptr));
    ex->acked = true;
  }
  terminate(true);
}

void Call::answerLocally(txn::ServerTransaction*& server, int status, std::string_view reason,
                         std::string_view to_tag) {
  if (server == nullptr) return;
  txn::ServerTransaction* txn = server;
  release(server);
  std::string head = engine_.responseHead(txn->request(), txn->flow(), status, reason, to_tag);
  head.append("Content-Length: 0\r\n\r\n");
  engine_.layer().respond(*txn, status, std::move(head));
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
    requests_.erase(
        std::remove_if(requests_.begin(), requests_.end(), [rx](const auto& p) { return p.get() == rx; }),
        requests_.end());
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
    engine_.stats().add(Counter::CallsCancelled);
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
  engine_.layer().startClient(Method::Cancel, invite.branch(), invite.flow(), invite.buildCancel(),
                              invite.lines(), nullptr);
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

void Call::onInDialogRequest(int leg, std::unique_ptr<sip::Message> request, const net::Flow& flow) {
  if (state_ == State::Ended) return;
  const sip::Message& req = *request;
  if (req.method() == Method::Ack) {
    relayAck(leg, req);
    return;
  }
  Leg& x = legs_[leg];
  bool dialog_up = state_ == State::Answered || state_ == State::Confirmed;
  if (!dialog_up || req.toTag() != x.local_tag || req.fromTag() != x.remote_tag) {
    engine_.replyStateless(req, flow, 481, "Call/Transaction Does Not Exist");
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
  }
  x.remote_cseq = req.cseq();
  relayRequest(leg, std::move(request), flow);
}

void Call::relayRequest(int from, std::unique_ptr<sip::Message> request, const net::Flow& flow) {
  int to = 1 - from;
  Method method = request->method();
  txn::ServerTransaction* server = engine_.layer().startServer(std::move(request), flow, this);
  if (server == nullptr) return;
  const sip::Message& req = server->request();
  sip::NameAddr contact;
  if (isTargetRefresh(method) && req.firstContact(contact)) legs_[from].remote_target = targetOf(contact.uri);
  std::string branch = engine_.ids().branch();
  std::uint32_t cseq = legs_[to].local_cseq++;
  txn::RequestLines lines;
  std::string bytes = buildRequest(to, req.methodText(), cseq, branch, &req, &lines);
  if (method == Method::Invite) {
    auto ex = std::make_unique<InviteExchange>();
    ex->from = from;
    ex->from_cseq = req.cseq();
    ex->to_cseq = cseq;
    ex->server = server;
    InviteExchange* raw = ex.get();
    invites_.push_back(std::move(ex));
    raw->client =
        engine_.layer().startClient(method, branch, legs_[to].flow, std::move(bytes), std::move(lines), this);
  } else {
    auto rx = std::make_unique<RequestExchange>();
    rx->from = from;
    rx->method = method;
    rx->server = server;
    RequestExchange* raw = rx.get();
    requests_.push_back(std::move(rx));
    raw->client =
        engine_.layer().startClient(method, branch, legs_[to].flow, std::move(bytes), std::move(lines), this);
  }
}

void Call::relayAck(int from, const sip::Message& ack) {
  for (auto& ex : invites_) {
    if (ex->from != from || ex->from_cseq != ack.cseq() || !ex->answered) continue;
    int to = 1 - from;
    engine_.timers().cancel(ex->ok_timer);
    std::string().swap(ex->ok_bytes);
    if (!ex->acked) {
      // End-to-end ACK: same CSeq number as the INVITE it confirms on that leg (§13.2.2.4).
      ex->ack_bytes = buildRequest(to, "ACK", ex->to_cseq, engine_.ids().branch(), &ack, nullptr);
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
  std::string bytes = buildRequest(leg, "BYE", cseq, branch, nullptr, &lines);
  engine_.layer().startClient(Method::Bye, branch, legs_[leg].flow, std::move(bytes), std::move(lines),
                              nullptr);
}

void Call::terminate(bool count_timeout) {
  if (state_ == State::Ended) return;
  if (state_ == State::Answered || state_ == State::Confirmed) {
    sendBye(0);
    sendBye(1);
  } else if (state_ == State::Calling && !invites_.empty()) {
    InviteExchange& ex = *invites_.front();
    answerLocally(ex.server, 408, "Request Timeout", legs_[0].local_tag);
    sendCancel(ex);
  }
  if (count_timeout) engine_.stats().add(Counter::CallsTimedOut);
  end();
}

void Call::end() {
  if (state_ == State::Ended) return;
  state_ = State::Ended;
  engine_.timers().cancel(duration_timer_);
  engine_.timers().cancel(ring_timer_);
  engine_.timers().cancel(cancel_guard_timer_);
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
