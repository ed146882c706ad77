#include "core/txn/transaction.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/sip/builder.h"
#include "core/stats/metrics.h"

namespace palisade::txn {

using sip::Method;
using stats::Counter;

namespace {

// A response that only echoes the transaction fields: 100 Trying, and the 200 for a CANCEL.
std::string minimalResponse(const sip::Message& request, const net::Flow& flow, int status,
                            std::string_view reason) {
  return sip::MessageBuilder(384).responseTo(request, flow.remote, status, reason, {}).finish();
}

}  // namespace

TransactionLayer::TransactionLayer(net::Network& network, event::TimerQueue& timers, const base::Clock& clock,
                                   stats::Shard& stats)
    : network_(network), timer_queue_(timers), clock_(clock), stats_(stats) {}

bool AddressPrefix::contains(const boost::asio::ip::address& candidate) const {
  auto c = net::canonicalAddress(candidate);
  if (c.is_v4() != address.is_v4()) return false;
  auto compare = [this](const unsigned char* a, const unsigned char* b, unsigned bits) {
    unsigned n = std::min(length, bits);
    for (unsigned i = 0; i < n / 8; ++i)
      if (a[i] != b[i]) return false;
    unsigned rest = n % 8;
    if (rest == 0) return true;
    auto mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (a[n / 8] & mask) == (b[n / 8] & mask);
  };
  if (c.is_v4()) {
    auto x = c.to_v4().to_bytes();
    auto y = address.to_v4().to_bytes();
    return compare(x.data(), y.data(), 32);
  }
  auto x = c.to_v6().to_bytes();
  auto y = address.to_v6().to_bytes();
  return compare(x.data(), y.data(), 128);
}

std::optional<AddressPrefix> AddressPrefix::parse(std::string_view text) {
  std::size_t slash = text.find('/');
  std::string host(text.substr(0, slash));
  if (host.find('\0') != std::string::npos) return std::nullopt;
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  AddressPrefix prefix{net::canonicalAddress(address), 0};
  unsigned max = prefix.address.is_v4() ? 32 : 128;
  prefix.length = max;
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    unsigned length = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      length = length * 10 + static_cast<unsigned>(c - '0');
    }
    if (length > max) return std::nullopt;
    prefix.length = length;
  }
  return prefix;
}

bool ClientTransaction::acceptsResponseFrom(const net::Flow& from) const {
  if (from.side != flow_.side || from.transport != flow_.transport) return false;
  if (flow_.transport == net::Transport::Udp) {
    if (from.remote == flow_.remote) return true;
    if (peer_addresses_ == nullptr) return false;
    for (const auto& prefix : *peer_addresses_) {
      if (prefix.contains(from.remote.address)) return true;
    }
    return false;
  }
  // A stream: the connection the request went on, or (when the request asked for any
  // connection to the peer) the one opened to that peer's address and port, or (when the
  // peer's connection was gone) the one opened to its Via port (RFC 3261 §18.2.2).
  if (flow_.conn_id != 0) {
    if (from.conn_id == flow_.conn_id && from.conn_worker == flow_.conn_worker) return true;
    return flow_.reconnect_port != 0 && from.remote.address == flow_.remote.address &&
           from.remote.port == flow_.reconnect_port;
  }
  return from.remote == flow_.remote;
}

TransactionLayer::~TransactionLayer() {
  for (auto& [key, txn] : clients_) {
    timer_queue_.cancel(txn->retransmit_timer_);
    timer_queue_.cancel(txn->timeout_timer_);
    timer_queue_.cancel(txn->cleanup_timer_);
  }
  for (auto& [key, txn] : servers_) {
    timer_queue_.cancel(txn->retransmit_timer_);
    timer_queue_.cancel(txn->timeout_timer_);
  }
}

void TransactionLayer::sendRaw(const net::Flow& flow, std::string bytes) {
  owner_.check("TransactionLayer");
  network_.send(flow, std::move(bytes));
}

// ---------------------------------------------------------------------------------------------
// Client transactions (RFC 3261 §17.1)

ClientTransaction* TransactionLayer::startClient(Method method, std::string branch, const net::Flow& flow,
                                                 std::string request, RequestLines lines,
                                                 TransactionUser* user,
                                                 std::shared_ptr<const PeerAddresses> peer_addresses) {
  owner_.check("TransactionLayer");
  auto txn = std::make_unique<ClientTransaction>();
  ClientTransaction* t = txn.get();
  t->method_ = method;
  t->state_ = method == Method::Invite ? ClientTransaction::State::Calling : ClientTransaction::State::Trying;
  t->key_ = fmt::format("{}|{}", branch, sip::methodName(method));
  t->branch_ = std::move(branch);
  t->flow_ = flow;
  t->peer_addresses_ = std::move(peer_addresses);
  t->request_ = std::move(request);
  t->lines_ = std::move(lines);
  t->user_ = user;
  auto [it, inserted] = clients_.emplace(t->key_, std::move(txn));
  if (!inserted) return nullptr;  // branch collision: cannot happen with our generator
  network_.send(flow, std::string(t->request_));
  if (!reliable(flow)) {
    t->retransmit_interval_ = timers_.t1;  // Timer A / Timer E
    t->retransmit_timer_ = timer_queue_.schedule(now() + timers_.t1, [this, t] { clientRetransmit(t); });
  }
  t->timeout_timer_ =
      timer_queue_.schedule(now() + 64 * timers_.t1, [this, t] { clientTimeout(t); });  // B / F
  return t;
}

void TransactionLayer::clientRetransmit(ClientTransaction* t) {
  t->retransmit_timer_ = 0;
  bool invite = t->method_ == Method::Invite;
  if (invite && t->state_ != ClientTransaction::State::Calling) return;
  if (!invite && t->state_ != ClientTransaction::State::Trying &&
      t->state_ != ClientTransaction::State::Proceeding) {
    return;
  }
  network_.send(t->flow_, std::string(t->request_));
  stats_.add(Counter::Retransmissions);
  // Timer A doubles without bound; Timer E doubles up to T2, and is T2 in Proceeding.
  t->retransmit_interval_ = invite ? t->retransmit_interval_ * 2
                                   : (t->state_ == ClientTransaction::State::Proceeding
                                          ? timers_.t2
                                          : std::min(t->retransmit_interval_ * 2, timers_.t2));
  t->retransmit_timer_ =
      timer_queue_.schedule(now() + t->retransmit_interval_, [this, t] { clientRetransmit(t); });
}

void TransactionLayer::clientTimeout(ClientTransaction* t) {
  t->timeout_timer_ = 0;
  // Timer B applies in Calling only (RFC 3261 §17.1.1.2); Timer F in Trying and Proceeding.
  bool expired = (t->method_ == Method::Invite) ? t->state_ == ClientTransaction::State::Calling
                                                : (t->state_ == ClientTransaction::State::Trying ||
                                                   t->state_ == ClientTransaction::State::Proceeding);
  if (!expired) return;
  t->state_ = ClientTransaction::State::Terminated;
  if (t->user_ != nullptr) t->user_->onTimeout(*t);
  destroyClient(t);
}

std::string TransactionLayer::buildAck(const ClientTransaction& t, const sip::Message& response) const {
  // RFC 3261 §17.1.1.3: same Request-URI, top Via, Route, From, Call-ID and CSeq number;
  // the To of the response (it carries the tag).
  const sip::HeaderField* to = response.find(sip::Hdr::To);
  return sip::MessageBuilder(512)
      .request("ACK", t.lines_.request_uri)
      .lines(t.lines_.via)
      .lines(t.lines_.routes)
      .field("Max-Forwards", "70")
      .lines(t.lines_.from)
      .field("To", to ? to->value : std::string_view{})
      .lines(t.lines_.call_id)
      .fieldf("CSeq", "{} ACK", t.lines_.cseq)
      .finish();
}

std::string ClientTransaction::buildCancel() const {
  return sip::MessageBuilder(512)
      .request("CANCEL", lines_.request_uri)
      .lines(lines_.via)
      .lines(lines_.routes)
      .field("Max-Forwards", "70")
      .lines(lines_.from)
      .lines(lines_.to)
      .lines(lines_.call_id)
      .fieldf("CSeq", "{} CANCEL", lines_.cseq)
      .finish();
}

ResponseDisposition TransactionLayer::handleResponse(std::unique_ptr<sip::Message>& response,
                                                     const net::Flow& flow) {
  owner_.check("TransactionLayer");
  std::string key = fmt::format("{}|{}", response->topVia().branch, response->cseqMethodText());
  auto it = clients_.find(key);
  if (it == clients_.end()) return ResponseDisposition::NoTransaction;
  ClientTransaction* t = it->second.get();
  // Knowing a branch is not enough to answer, or end, someone's call.
  if (!t->acceptsResponseFrom(flow)) return ResponseDisposition::Foreign;
  int status = response->statusCode();
  bool orphan_2xx = t->method_ == Method::Invite && t->user_ == nullptr && status >= 200 && status < 300;
  if (orphan_2xx) {
    // Each of its dialogs is hung up once, and only so many: repeated or varied 2xx from the
    // peer cannot make the TU open BYE transactions without bound.
    std::string_view tag = response->toTag();
    bool known = std::find(t->orphan_tags_.begin(), t->orphan_tags_.end(), tag) != t->orphan_tags_.end();
    if (known || t->orphan_tags_.size() >= kMaxOrphanDialogs) {
      orphan_2xx = false;
    } else {
      t->orphan_tags_.emplace_back(tag);
    }
  }
  using S = ClientTransaction::State;
  if (t->method_ == Method::Invite) {
    switch (t->state_) {
      case S::Calling:
      case S::Proceeding:
        if (status < 200) {
          t->state_ = S::Proceeding;
          t->got_provisional_ = true;
          timer_queue_.cancel(t->retransmit_timer_);
          std::string().swap(t->request_);  // Timer A is over: the bytes are not needed
          if (t->user_) t->user_->onResponse(*t, std::move(response));
        } else if (status < 300) {
          // RFC 6026 Accepted: pass every 2xx up until Timer M.
          t->state_ = S::Accepted;
          timer_queue_.cancel(t->retransmit_timer_);
          timer_queue_.cancel(t->timeout_timer_);
          std::string().swap(t->request_);
          t->lines_ = RequestLines{};  // no CANCEL or ACK is built from here on
          t->cleanup_timer_ = timer_queue_.schedule(now() + 64 * timers_.t1, [this, t] { destroyClient(t); });
          if (t->user_) t->user_->onResponse(*t, std::move(response));
        } else {
          t->state_ = S::Completed;
          timer_queue_.cancel(t->retransmit_timer_);
          timer_queue_.cancel(t->timeout_timer_);
          t->ack_ = buildAck(*t, *response);
          t->lines_ = RequestLines{};
          network_.send(t->flow_, std::string(t->ack_));
          base::Millis timer_d = reliable(t->flow_) ? 0 : 32000;
          t->cleanup_timer_ = timer_queue_.schedule(now() + timer_d, [this, t] { destroyClient(t); });
          if (t->user_) t->user_->onResponse(*t, std::move(response));
        }
        break;
      case S::Accepted:
        if (status >= 200 && status < 300) {
          if (t->user_) t->user_->onResponse(*t, std::move(response));
        }
        break;
      case S::Completed:
        if (status >= 300) {
          network_.send(t->flow_, std::string(t->ack_));
          stats_.add(Counter::RetransmissionsAbsorbed);
        }
        break;
      default:
        break;
    }
    return orphan_2xx ? ResponseDisposition::Orphan2xx : ResponseDisposition::Consumed;
  }
  switch (t->state_) {
    case S::Trying:
    case S::Proceeding:
      if (status < 200) {
        t->state_ = S::Proceeding;
        t->got_provisional_ = true;
        if (t->user_) t->user_->onResponse(*t, std::move(response));
      } else {
        t->state_ = S::Completed;
        timer_queue_.cancel(t->retransmit_timer_);
        timer_queue_.cancel(t->timeout_timer_);
        std::string().swap(t->request_);
        base::Millis timer_k = reliable(t->flow_) ? 0 : timers_.t4;
        t->cleanup_timer_ = timer_queue_.schedule(now() + timer_k, [this, t] { destroyClient(t); });
        if (t->user_) t->user_->onResponse(*t, std::move(response));
      }
      break;
    default:
      stats_.add(Counter::RetransmissionsAbsorbed);
      break;
  }
  return ResponseDisposition::Consumed;
}

void TransactionLayer::destroyClient(ClientTransaction* t) {
  timer_queue_.cancel(t->retransmit_timer_);
  timer_queue_.cancel(t->timeout_timer_);
  timer_queue_.cancel(t->cleanup_timer_);
  if (t->user_ != nullptr) t->user_->onClientGone(*t);
  clients_.erase(t->key_);
}

// ---------------------------------------------------------------------------------------------
// Server transactions (RFC 3261 §17.2)

std::string TransactionLayer::serverKey(const sip::Message& msg, bool as_invite, net::Side side) {
  const sip::Via& via = msg.topVia();
  std::string_view method = as_invite ? std::string_view("INVITE") : msg.methodText();
  // The listener is part of the key: the two sides' peers choose branches independently.
  char listener = side == net::Side::Public ? 'P' : 'X';
  if (via.branch.size() > 7 && via.branch.substr(0, 7) == "z9hG4bK") {
    return fmt::format("{}|{}|{}:{}|{}", listener, via.branch, via.host, via.port, method);
  }
  // RFC 2543 peers (no magic cookie): match on the dialog and CSeq fields (§17.2.3).
  return fmt::format("{}|2543|{}|{}|{}|{}|{}:{}|{}", listener, msg.requestUri(), msg.callId(), msg.fromTag(),
                     msg.cseq(), via.host, via.port, method);
}

bool TransactionLayer::fromOrigin(const ServerTransaction& t, const net::Flow& flow) {
  return flow.side == t.flow_.side && flow.transport == t.flow_.transport && flow.remote == t.flow_.remote;
}

bool TransactionLayer::absorbRequest(std::unique_ptr<sip::Message>& request, const net::Flow& flow) {
  owner_.check("TransactionLayer");
  Method method = request->method();
  if (method == Method::Ack) {
    // An ACK for a non-2xx final belongs to the INVITE transaction (same branch).
    auto it = servers_.find(serverKey(*request, true, flow.side));
    if (it == servers_.end()) return false;
    ServerTransaction* t = it->second.get();
    if (!fromOrigin(*t, flow)) return true;  // not from the INVITE's source: ignored
    if (t->state_ == ServerTransaction::State::Completed) {
      t->state_ = ServerTransaction::State::Confirmed;
      timer_queue_.cancel(t->retransmit_timer_);
      timer_queue_.cancel(t->timeout_timer_);
      base::Millis timer_i = reliable(t->flow_) ? 0 : timers_.t4;
      t->timeout_timer_ = timer_queue_.schedule(now() + timer_i, [this, t] { destroyServer(t); });
      return true;
    }
    if (t->state_ == ServerTransaction::State::Confirmed) {
      stats_.add(Counter::RetransmissionsAbsorbed);
      return true;
    }
    return false;  // an ACK for a 2xx: end to end, for the TU
  }
  auto it = servers_.find(serverKey(*request, false, flow.side));
  if (it != servers_.end()) {
    ServerTransaction* t = it->second.get();
    // A "retransmission" from another source would have us resend our last response, maybe
    // an 18x with SDP several times its size, to the original source: say nothing.
    if (!fromOrigin(*t, flow)) return true;
    stats_.add(Counter::RetransmissionsAbsorbed);
    // Retransmitted request: repeat the last response, except in Accepted (RFC 6026 §7.1).
    if (!t->last_response_.empty() && t->state_ != ServerTransaction::State::Accepted) {
      network_.send(t->flow_, std::string(t->last_response_));
    }
    return true;
  }
  if (method == Method::Cancel) {
    auto invite = servers_.find(serverKey(*request, true, flow.side));
    if (invite == servers_.end()) return false;
    ServerTransaction* t = invite->second.get();  // before startServer() may rehash the map
    // A CANCEL ends someone's call: only the INVITE's own source may send it (UDP: the same
    // address and port; a stream: the same connection). RFC 3261 §9.2 matches on the branch,
    // which a third party can learn. Anything else is answered as if no transaction matched.
    const net::Flow& origin = t->flow_;
    bool same_source = flow.side == origin.side && flow.transport == origin.transport &&
                       (flow.transport == net::Transport::Udp
                            ? flow.remote == origin.remote
                            : flow.conn_id == origin.conn_id && flow.conn_worker == origin.conn_worker);
    if (!same_source) {
      stats_.add(Counter::DroppedForeignCancels);
      return false;
    }
    // Answer the CANCEL through its own transaction, then tell the INVITE's user.
    ServerTransaction* cancel_txn = startServer(std::move(request), flow, nullptr);
    if (cancel_txn == nullptr) return true;
    respond(*cancel_txn, 200, minimalResponse(cancel_txn->request(), flow, 200, "OK"));
    if (t->final_status_ < 200 && t->user_ != nullptr) t->user_->onCancel(*t);
    return true;
  }
  return false;
}

ServerTransaction* TransactionLayer::startServer(std::unique_ptr<sip::Message> request, const net::Flow& flow,
                                                 TransactionUser* user) {
  owner_.check("TransactionLayer");
  auto txn = std::make_unique<ServerTransaction>();
  ServerTransaction* t = txn.get();
  bool invite = request->method() == Method::Invite;
  t->method_ = request->method();
  t->key_ = serverKey(*request, invite, flow.side);
  t->request_ = std::move(request);
  t->flow_ = flow;
  t->user_ = user;
  t->state_ = invite ? ServerTransaction::State::Proceeding : ServerTransaction::State::Trying;
  auto [it, inserted] = servers_.emplace(t->key_, std::move(txn));
  if (!inserted) return nullptr;
  if (invite) {
    // 100 Trying at once: it stops the caller's Timer A (RFC 3261 §17.2.1).
    std::string trying = minimalResponse(*t->request_, flow, 100, "Trying");
    t->last_response_ = trying;
    network_.send(flow, std::move(trying));
  }
  return t;
}

void TransactionLayer::respond(ServerTransaction& txn, int status, std::string bytes) {
  owner_.check("TransactionLayer");
  ServerTransaction* t = &txn;
  using S = ServerTransaction::State;
  if (t->state_ == S::Completed || t->state_ == S::Confirmed || t->state_ == S::Terminated) return;
  if (t->state_ == S::Accepted) {
    // Only further 2xx (retransmissions by the TU) may pass in Accepted.
    if (status >= 200 && status < 300) network_.send(t->flow_, std::move(bytes));
    return;
  }
  t->last_response_ = bytes;
  network_.send(t->flow_, std::move(bytes));
  if (status < 200) {
    if (t->state_ == S::Trying) t->state_ = S::Proceeding;
    return;
  }
  t->final_status_ = status;
  t->request_.reset();  // only the key and the last response matter from here on
  if (t->method_ == Method::Invite) {
    if (status < 300) {
      t->state_ = S::Accepted;    // Timer L
      t->last_response_.clear();  // Accepted never repeats it: the TU retransmits its 2xx
      t->timeout_timer_ = timer_queue_.schedule(now() + 64 * timers_.t1, [this, t] { destroyServer(t); });
    } else {
      t->state_ = S::Completed;
      if (!reliable(t->flow_)) {
        t->retransmit_interval_ = timers_.t1;  // Timer G
        t->retransmit_timer_ = timer_queue_.schedule(now() + timers_.t1, [this, t] { serverRetransmit(t); });
      }
      t->timeout_timer_ =
          timer_queue_.schedule(now() + 64 * timers_.t1, [this, t] { destroyServer(t); });  // H
    }
  } else {
    t->state_ = S::Completed;
    base::Millis timer_j = reliable(t->flow_) ? 0 : 64 * timers_.t1;
    t->timeout_timer_ = timer_queue_.schedule(now() + timer_j, [this, t] { destroyServer(t); });
  }
}

void TransactionLayer::abandon(ServerTransaction& txn) {
  owner_.check("TransactionLayer");
  destroyServer(&txn);
}

void TransactionLayer::serverRetransmit(ServerTransaction* t) {
  t->retransmit_timer_ = 0;
  if (t->state_ != ServerTransaction::State::Completed) return;
  network_.send(t->flow_, std::string(t->last_response_));
  stats_.add(Counter::Retransmissions);
  t->retransmit_interval_ = std::min(t->retransmit_interval_ * 2, timers_.t2);
  t->retransmit_timer_ =
      timer_queue_.schedule(now() + t->retransmit_interval_, [this, t] { serverRetransmit(t); });
}

void TransactionLayer::destroyServer(ServerTransaction* t) {
  timer_queue_.cancel(t->retransmit_timer_);
  timer_queue_.cancel(t->timeout_timer_);
  if (t->user_ != nullptr) t->user_->onServerGone(*t);
  servers_.erase(t->key_);
}

}  // namespace palisade::txn
