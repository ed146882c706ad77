#include "core/dialog/engine.h"

#include <fmt/format.h>

#include "core/base/log.h"
#include "core/dialog/call.h"
#include "core/sip/response.h"

namespace palisade::dialog {

using sip::Hdr;
using sip::Method;
using stats::Counter;

namespace {

constexpr std::string_view kAllow = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO";
// Extensions we accept in Require / Proxy-Require (RFC 3261 §8.2.2.3): none needs our help.
constexpr std::string_view kSupported = "timer";

LocalAddress localOf(const config::Listener& listener) {
  LocalAddress out;
  out.host =
      listener.address.find(':') != std::string::npos ? "[" + listener.address + "]" : listener.address;
  out.udp_port = listener.udp_port;
  out.tcp_port = listener.tcp_port;
  return out;
}

}  // namespace

Engine::Engine(std::uint32_t worker, net::Network& network, const base::Clock& clock, stats::Shard& stats,
               std::shared_ptr<const config::Config> config, std::uint64_t seed)
    : clock_(clock), stats_(stats), layer_(network, timer_queue_, clock, stats), ids_(worker, seed) {
  applyConfig(std::move(config));
}

// Calls die before the transaction layer (member order), and destroying a transaction never
// calls its user, so no callback reaches a dead call.
Engine::~Engine() = default;

void Engine::applyConfig(std::shared_ptr<const config::Config> config) {
  config_ = std::move(config);
  local_[0] = localOf(config_->public_side);
  local_[1] = localOf(config_->pbx_side);
  txn::Timers timers;
  timers.t1 = config_->timing.t1_ms;
  timers.t2 = config_->timing.t2_ms;
  timers.t4 = config_->timing.t4_ms;
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
  timer_queue_.runDue(clock_.now());
  collectRetired();
}

void Engine::onMessage(std::unique_ptr<sip::Message> message, const net::Flow& flow) {
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

void Engine::onResponse(std::unique_ptr<sip::Message> response, const net::Flow& flow) {
  bool is_invite_2xx = response->cseqMethod() == Method::Invite && response->statusCode() >= 200 &&
                       response->statusCode() < 300;
  // A 2xx for an INVITE whose call is gone (after a CANCEL race): confirm and hang up, so the
  // callee does not keep a dead call. The transaction must still exist: a 2xx from nowhere is
  // not answered (no reflection).
  if (layer_.handleResponse(response) == txn::ResponseDisposition::Orphan2xx && is_invite_2xx) {
    ackAndBye(*response, flow);
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
  std::string unsupported;
  for (const auto& h : req.headers()) {
    if (h.id != Hdr::Require && h.id != Hdr::ProxyRequire) continue;
    std::vector<std::string_view> options;
    sip::splitList(h.value, options);
    for (auto opt : options) {
      if (sip::iequals(opt, kSupported)) continue;
      if (!unsupported.empty()) unsupported.append(", ");
      unsupported.append(opt);
    }
  }
  if (!unsupported.empty()) {
    replyStateless(req, flow, 420, "Bad Extension", fmt::format("Unsupported: {}\r\n", unsupported));
    return;
  }
  if (filter_ != nullptr) {
    Verdict verdict = filter_->check(req, flow);
    if (verdict.kind == Verdict::Kind::Drop) return;
    if (verdict.kind == Verdict::Kind::Reject) {
      replyStateless(req, flow, verdict.status, verdict.reason);
      return;
    }
  }
  switch (req.method()) {
    case Method::Options:
      // Answered by Palisade itself: a keep-alive probe from a trunk or a monitor. Statelessly
      // (RFC 3261 §8.2.7): a retransmission is simply answered again, and a probe flood leaves
      // no transaction state behind.
      replyStateless(
          req, flow, 200, "OK",
          fmt::format("Allow: {}\r\nAccept: application/sdp\r\nSupported: {}\r\n", kAllow, kSupported));
      return;
    case Method::Invite: {
      if (calls_.size() >= config_->max_calls) {
        stats_.add(Counter::Rejected503);
        replyStateless(req, flow, 503, "Service Unavailable", "Retry-After: 5\r\n");
        return;
      }
      if (findLeg(flow.side, req.callId()) != nullptr) {
        replyStateless(req, flow, 482, "Loop Detected");  // a second INVITE for a live Call-ID
        return;
      }
      const config::Peer& peer = flow.side == net::Side::Public ? config_->pbx : config_->carrier;
      net::Flow target;
      target.side = net::otherSide(flow.side);
      target.transport =
          peer.transport == config::TransportKind::Tcp ? net::Transport::Tcp : net::Transport::Udp;
      boost::system::error_code ec;
      target.remote.address = boost::asio::ip::make_address(peer.host, ec);
      target.remote.port = peer.port;
      if (ec) {
        replyStateless(req, flow, 500, "Server Internal Error");
        return;
      }
      txn::ServerTransaction* server = layer_.startServer(std::move(request), flow, nullptr);
      if (server == nullptr) return;
      auto call = std::make_unique<Call>(*this);
      Call* raw = call.get();
      calls_.emplace(raw, std::move(call));
      raw->start(*server, target);
      return;
    }
    case Method::Bye:
    case Method::Update:
    case Method::Info:
    case Method::Prack:
      replyStateless(req, flow, 481, "Call/Transaction Does Not Exist");
      return;
    case Method::Unknown:
      replyStateless(req, flow, 501, "Not Implemented", fmt::format("Allow: {}\r\n", kAllow));
      return;
    default:
      replyStateless(req, flow, 405, "Method Not Allowed", fmt::format("Allow: {}\r\n", kAllow));
      return;
  }
}

std::string Engine::responseHead(const sip::Message& request, const net::Flow& flow, int status,
                                 std::string_view reason, std::string_view to_tag) const {
  return sip::responseHead(request, flow.remote, status, reason, to_tag);
}

void Engine::replyStateless(const sip::Message& request, const net::Flow& flow, int status,
                            std::string_view reason, std::string_view extra_headers) {
  std::string out =
      responseHead(request, flow, status, reason, request.toTag().empty() ? ids_.tag() : std::string());
  out.append(extra_headers);
  fmt::format_to(std::back_inserter(out), "Server: {}\r\nContent-Length: 0\r\n\r\n", config_->user_agent);
  layer_.sendRaw(flow, std::move(out));
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
  auto build = [&](std::string_view method, std::uint32_t cseq) {
    return fmt::format(
        "{} {} SIP/2.0\r\nVia: SIP/2.0/{} {}:{};branch={}\r\n{}Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\n"
        "Call-ID: {}\r\nCSeq: {} {}\r\nUser-Agent: {}\r\nContent-Length: 0\r\n\r\n",
        method, target, net::transportName(flow.transport), here.host, here.port(flow.transport),
        ids_.branch(), routes, from->value, to->value, response.callId(), cseq, method, config_->user_agent);
  };
  layer_.sendRaw(flow, build("ACK", response.cseq()));
  std::string bye = build("BYE", response.cseq() + 1);
  // The BYE is a real client transaction so that it is retransmitted over UDP.
  std::string branch =
      bye.substr(bye.find("branch=") + 7, bye.find("\r\n", bye.find("branch=")) - bye.find("branch=") - 7);
  txn::RequestLines lines;
  lines.request_uri = target;
  layer_.startClient(Method::Bye, branch, flow, std::move(bye), std::move(lines), nullptr);
}

}  // namespace palisade::dialog
