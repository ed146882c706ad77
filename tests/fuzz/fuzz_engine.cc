// Several messages through one worker as the daemon wires it: the packet filter, the
// dispatcher's screen (flood limits, scanners, overload), the policy stages (digest, admission)
// and the Engine (default config with a "callers" trunk and one user, fake network, manual
// clock), with time passing between them, so that policy, transactions, calls and timers see
// hostile input.
//
// Input: records separated by two NUL bytes. A record is a datagram from the caller
// (127.0.0.2:5061, public side, a trunk), unless it starts with ESC (0x1b): then the next byte
// holds flags and the rest is the payload:
//   0x01  from the PBX (127.0.0.1:5080) instead of the caller
//   0x02  over TCP instead of UDP
//   0x04  then let 4 s pass (otherwise 20 ms)
//   0x08  synthesized in-dialog request from that peer, on the last dialog the engine opened
//         with it; the payload is the method, then extra header lines
//   0x10  synthesized response from that peer to the last request the engine sent it; the
//         payload is a three-digit status, then extra header lines
//   0x20  from a stranger on the internet (127.0.0.66:5062) instead of the caller: challenged,
//         rate limited as the internet, banned when it misbehaves
// Without 0x08/0x10 the rest of the record is sent as it is. The synthesized messages let the
// fuzzer reach answered calls, re-INVITEs and BYEs without guessing Palisade's identifiers.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "core/base/log.h"
#include "core/dialog/dispatcher.h"
#include "core/dialog/engine.h"
#include "core/routing/local_location_store.h"
#include "policy/api/shared_counters.h"
#include "policy/bans/local_store.h"
#include "policy/policy_chain.h"
#include "tests/fuzz/sip_checks.h"
#include "tests/support/fake_network.h"

namespace palisade {
namespace {

using fuzz::require;

constexpr std::string_view kSeparator{"\0\0", 2};

std::shared_ptr<const config::Config> sharedConfig() {
  static const std::shared_ptr<const config::Config> config = [] {
    auto c = std::make_shared<config::Config>(*config::defaultConfig().value());
    config::Trunk callers = c->trunks.front();
    callers.name = "callers";
    callers.addresses = {"127.0.0.2"};
    callers.host = "127.0.0.2";
    callers.port = 5061;
    c->trunks.push_back(callers);
    config::User user;
    user.name = "2001";
    user.password = "Tr0ub4dor&3-Horse!Staple";
    c->users = {user};
    return std::shared_ptr<const config::Config>(std::move(c));
  }();
  return config;
}

net::Flow peerFlow(net::Side side, bool tcp, bool stranger) {
  net::Flow flow = side == net::Side::Pbx ? testing::udpFlow(net::Side::Pbx, "127.0.0.1", 5080)
                   : stranger             ? testing::udpFlow(net::Side::Public, "127.0.0.66", 5062)
                                          : testing::udpFlow(net::Side::Public, "127.0.0.2", 5061);
  if (tcp) {
    flow.transport = net::Transport::Tcp;
    flow.conn_id = 1;
  }
  return flow;
}

std::string fieldLines(const sip::Message& m, sip::Hdr id) {
  std::string out;
  for (const auto& h : m.headers()) {
    if (h.id == id) out.append(m.raw().substr(h.begin, h.end - h.begin));
  }
  return out;
}

std::string extraLines(std::string_view extra) {
  std::string out(extra);
  if (!out.empty() && !out.ends_with("\r\n")) out.append("\r\n");
  return out;
}

class Harness {
 public:
  Harness() : metrics_(1) {
    engine_ =
        std::make_unique<dialog::Engine>(0, network_, clock_, metrics_.shard(0), sharedConfig(), shared_);
    chain_ = std::make_unique<policy::PolicyChain>(
        policy::compileSnapshot(*sharedConfig(), rules_, auth_, store_, location_, &shared_).value(), clock_,
        &metrics_.shard(0));
    policy::installDefaultStages(*chain_);
    engine_->setFilter(chain_.get());
    engine_->setLocation(&location_);
    dispatcher_ = std::make_unique<dialog::Dispatcher>(0, metrics_.shard(0), sip::Limits{});
    dispatcher_->setOwners({dialog::Dispatcher::Owner{nullptr, engine_.get()}});
    dispatcher_->setFilter(chain_.get());
  }

  void record(std::string_view rec) {
    std::uint8_t flags = 0;
    if (rec.size() >= 2 && rec[0] == '\x1b') {
      flags = static_cast<std::uint8_t>(rec[1]);
      rec.remove_prefix(2);
    }
    net::Side side = (flags & 0x01) ? net::Side::Pbx : net::Side::Public;
    net::Flow flow = peerFlow(side, flags & 0x02, side == net::Side::Public && (flags & 0x20));
    std::string bytes;
    if (flags & 0x10) {
      bytes = responseFrom(side, rec);
    } else if (flags & 0x08) {
      bytes = requestFrom(side, rec);
    } else {
      bytes.assign(rec);
    }
    // As the transports deliver: the packet filter first (bans, ACLs, classification).
    if (!bytes.empty() && chain_->admit(flow, bytes)) {
      dispatcher_->onPacket(flow, std::move(bytes), flow.transport == net::Transport::Udp);
    }
    collect();
    advance((flags & 0x04) ? 4000 : 20);
  }

  // Lets every timer run out (Timer B/F/H and the 2xx/ACK guards are at most 64*T1).
  void finish() {
    for (int i = 0; i < 80; ++i) advance(500);
  }

 private:
  void advance(base::Millis ms) {
    clock_.advance(ms);
    engine_->runTimers();
    chain_->noteLoad(0, 0);
    collect();
  }

  // Checks what the engine sent and remembers what the synthesized messages need.
  void collect() {
    for (auto& packet : network_.sent) {
      auto m = sip::Message::parse(packet.bytes, sip::Limits{}, true);
      require(m != nullptr, "the engine sends SIP");
      fuzz::exerciseMessage(*m);
      int side = static_cast<int>(packet.flow.side);
      if (m->isRequest()) {
        // Requests are built by Palisade itself: they must be clean, whatever came in.
        require(m->ok(), "every request the engine sends is well-formed");
        if (m->method() != sip::Method::Ack) last_request_[side] = packet.bytes;
        if (m->method() == sip::Method::Invite) last_invite_[side] = packet.bytes;
      } else {
        require(m->statusCode() >= 100 && m->statusCode() <= 699, "the engine sends valid status codes");
        if (m->ok() && m->statusCode() >= 200 && !m->toTag().empty()) last_final_[side] = packet.bytes;
      }
    }
    network_.sent.clear();
  }

  std::string responseFrom(net::Side side, std::string_view payload) {
    const std::string& request_bytes = last_request_[static_cast<int>(side)];
    if (request_bytes.empty()) return {};
    auto request = sip::Message::parse(request_bytes, sip::Limits{}, true);
    if (!request || !request->ok()) return {};
    int status = 200;
    if (payload.size() >= 3 && payload[0] >= '1' && payload[0] <= '6' &&
        std::isdigit(static_cast<unsigned char>(payload[1])) &&
        std::isdigit(static_cast<unsigned char>(payload[2]))) {
      status = (payload[0] - '0') * 100 + (payload[1] - '0') * 10 + (payload[2] - '0');
      payload.remove_prefix(3);
    }
    std::string out = fmt::format("SIP/2.0 {} Fuzz\r\n", status);
    out += fieldLines(*request, sip::Hdr::Via);
    out += fieldLines(*request, sip::Hdr::From);
    if (request->toTag().empty() && status > 100) {
      out +=
          fmt::format("To: {};tag=peer-{}\r\n", request->find(sip::Hdr::To)->value, static_cast<int>(side));
    } else {
      out += fieldLines(*request, sip::Hdr::To);
    }
    out += fieldLines(*request, sip::Hdr::CallId);
    out += fieldLines(*request, sip::Hdr::CSeq);
    out += side == net::Side::Pbx ? "Contact: <sip:pbx@127.0.0.1:5080>\r\n"
                                  : "Contact: <sip:caller@127.0.0.2:5061>\r\n";
    out += extraLines(payload);
    out += "Content-Length: 0\r\n\r\n";
    return out;
  }

  std::string requestFrom(net::Side side, std::string_view payload) {
    std::size_t n = 0;
    while (n < payload.size() && sip::isTokenChar(payload[n])) ++n;
    std::string method(n == 0 ? (side == net::Side::Public ? "ACK" : "BYE") : payload.substr(0, n));
    payload.remove_prefix(n);
    const char* via_host = side == net::Side::Public ? "127.0.0.2:5061" : "127.0.0.1:5080";
    std::string from, to, call_id, target;
    std::uint32_t cseq = 0;
    if (side == net::Side::Public) {
      // The caller's dialog: from the last final response with a To tag the engine sent it.
      auto final = sip::Message::parse(last_final_[0], sip::Limits{}, true);
      if (!final || !final->ok()) return {};
      from = fieldLines(*final, sip::Hdr::From);
      to = fieldLines(*final, sip::Hdr::To);
      call_id = fieldLines(*final, sip::Hdr::CallId);
      sip::NameAddr contact;
      target = final->firstContact(contact) ? std::string(contact.uri) : "sip:127.0.0.1:5060";
      cseq = method == "ACK" ? final->cseq() : final->cseq() + ++cseq_step_;
    } else {
      // The PBX's dialog: the last INVITE the engine sent it, answered with tag peer-1.
      auto invite = sip::Message::parse(last_invite_[1], sip::Limits{}, true);
      if (!invite || !invite->ok()) return {};
      std::string to_value(invite->find(sip::Hdr::To)->value);
      if (invite->toTag().empty()) to_value += ";tag=peer-1";
      from = "From: " + to_value + "\r\n";
      to = "To: " + std::string(invite->find(sip::Hdr::From)->value) + "\r\n";
      call_id = fieldLines(*invite, sip::Hdr::CallId);
      sip::NameAddr contact;
      target = invite->firstContact(contact) ? std::string(contact.uri) : "sip:127.0.0.1:5070";
      // An ACK confirms the PBX's own last INVITE (RFC 3261 §13.2.2.4); anything else is new.
      cseq = method == "ACK" && pbx_invite_cseq_ != 0 ? pbx_invite_cseq_ : 1000 + ++cseq_step_;
      if (method == "INVITE") pbx_invite_cseq_ = cseq;
    }
    return fmt::format(
        "{} {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-fz-{}\r\nMax-Forwards: 70\r\n{}{}{}CSeq: {} "
        "{}\r\n{}"
        "Content-Length: 0\r\n\r\n",
        method, target, via_host, ++branch_, from, to, call_id, cseq, method, extraLines(payload));
  }

  testing::ManualClock clock_;
  testing::FakeNetwork network_;
  stats::Metrics metrics_;
  policy::SharedCounters shared_;
  policy::RuleRegistry rules_;
  policy::AuthState auth_;
  policy::bans::LocalStateStore store_;
  routing::LocalLocationStore location_;
  // The chain outlives the engine, which gives its pending requests back to it when it goes.
  std::unique_ptr<policy::PolicyChain> chain_;
  std::unique_ptr<dialog::Engine> engine_;
  std::unique_ptr<dialog::Dispatcher> dispatcher_;
  std::string last_request_[2];  // per side: the last request (not ACK) the engine sent there
  std::string last_invite_[2];
  std::string last_final_[2];  // per side: the last final response with a To tag sent there
  std::uint32_t cseq_step_ = 0;
  std::uint32_t pbx_invite_cseq_ = 0;
  std::uint32_t branch_ = 0;
};

}  // namespace
}  // namespace palisade

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  palisade::base::setLogLevel(palisade::base::LogLevel::Off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  palisade::Harness harness;
  int records = 0;
  while (records++ < 64) {
    std::size_t end = input.find(palisade::kSeparator);
    harness.record(input.substr(0, end));
    if (end == std::string_view::npos) break;
    input.remove_prefix(end + palisade::kSeparator.size());
  }
  harness.finish();
  return 0;
}
