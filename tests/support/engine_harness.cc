#include "tests/support/engine_harness.h"

#include <fmt/format.h>

namespace palisade::testing {

EngineHarness::EngineHarness(std::shared_ptr<const config::Config> config, policy::SharedCounters* shared,
                             bool with_policy)
    : metrics_(1), shared_(shared != nullptr ? shared : &own_shared_) {
  if (!config) config = config::defaultConfig().value();
  engine_ = std::make_unique<dialog::Engine>(0, network_, clock_, metrics_.shard(0), config, *shared_);
  if (with_policy) {
    chain_ = std::make_unique<policy::PolicyChain>(
        policy::compileSnapshot(*config, rules_, *auth_, *store_, *location_, shared_, fraud_store_.get())
            .value(),
        clock_, &metrics_.shard(0));
    policy::installDefaultStages(*chain_);
    engine_->setFilter(chain_.get());
    // Scanned messages reach the engine as in the daemon: through a dispatcher that screens
    // them (flood limits, scanners, overload) on the receiving worker.
    dispatcher_ = std::make_unique<dialog::Dispatcher>(0, metrics_.shard(0), sip::Limits{});
    dispatcher_->setOwners({dialog::Dispatcher::Owner{nullptr, engine_.get()}});
    dispatcher_->setFilter(chain_.get());
  }
  engine_->setLocation(location_.get());
}

void EngineHarness::reload(std::shared_ptr<const config::Config> config) {
  engine_->applyConfig(config);
  if (!chain_) return;
  auto snapshot =
      policy::compileSnapshot(*config, rules_, *auth_, *store_, *location_, shared_, fraud_store_.get())
          .value();
  chain_->apply(snapshot);
  location_->retain(
      [&snapshot](const routing::Binding& binding) { return snapshot->allowsBinding(binding); });
}

void EngineHarness::inject(const std::string& bytes, const net::Flow& flow) {
  net::Flow classified = flow;
  if (chain_ && !chain_->admit(classified, bytes)) {
    metrics_.shard(0).add(stats::Counter::DroppedUntrusted);
    return;
  }
  if (dispatcher_) {
    dispatcher_->onPacket(classified, std::string(bytes), flow.transport == net::Transport::Udp);
    return;
  }
  auto message = sip::Message::parse(bytes, sip::Limits{}, flow.transport == net::Transport::Udp);
  if (message) engine_->onMessage(std::move(message), classified);
}

std::unique_ptr<sip::Message> EngineHarness::next(std::uint16_t port) {
  for (auto it = network_.sent.begin(); it != network_.sent.end(); ++it) {
    if (it->flow.remote.port != port) continue;
    last_bytes_ = it->bytes;
    network_.sent.erase(it);
    return sip::Message::parse(last_bytes_, sip::Limits{}, true);
  }
  return nullptr;
}

std::size_t EngineHarness::pending(std::uint16_t port) const {
  std::size_t n = 0;
  for (const auto& p : network_.sent) n += p.flow.remote.port == port ? 1 : 0;
  return n;
}

void EngineHarness::advance(base::Millis ms) {
  for (base::Millis step = 0; step < ms; step += 10) {
    clock_.advance(10);
    engine_->runTimers();
  }
}

namespace {

PeerDialog peer(net::Side side, const char* host, std::uint16_t port, const std::string& call_id,
                const std::string& user, const std::string& tag, const std::string& target) {
  PeerDialog d;
  d.flow = udpFlow(side, host, port);
  d.host = host;
  d.port = port;
  d.call_id = call_id;
  d.local_tag = tag;
  d.local_uri = fmt::format("sip:{}@{}:{}", user, host, port);
  d.remote_uri = target;
  d.request_uri = target;
  return d;
}

}  // namespace

PeerDialog callerPeer(const std::string& call_id) {
  return peer(net::Side::Public, "127.0.0.2", 5061, call_id, "alice", "alice-tag", "sip:1000@127.0.0.1:5060");
}

PeerDialog carrierPeer(const std::string& call_id) {
  PeerDialog d =
      peer(net::Side::Public, "127.0.0.1", 5090, call_id, "carrier", "carrier-tag", "sip:127.0.0.1:5060");
  d.flow.peer = 2;
  d.flow.verified = true;
  return d;
}

PeerDialog pbxPeer(const std::string& call_id) {
  PeerDialog d = peer(net::Side::Pbx, "127.0.0.1", 5080, call_id, "pbx", "pbx-caller-tag",
                      "sip:15551234@127.0.0.1:5070");
  d.flow.peer = 1;
  d.flow.verified = true;
  return d;
}

std::string makeInvite(PeerDialog& p, const std::string& branch, const std::string& sdp) {
  return fmt::format(
      "INVITE {} SIP/2.0\r\nVia: SIP/2.0/UDP {}:{};branch={};rport\r\nFrom: \"Peer\" <{}>;tag={}\r\nTo: "
      "<{}>\r\n"
      "Call-ID: {}\r\nCSeq: {} INVITE\r\nContact: <{}>\r\nMax-Forwards: 70\r\n{}{}Content-Length: "
      "{}\r\n\r\n{}",
      p.request_uri, p.host, p.port, branch, p.local_uri, p.local_tag, p.remote_uri, p.call_id, p.cseq,
      p.local_uri, kPhoneHeaders, sdp.empty() ? "" : "Content-Type: application/sdp\r\n", sdp.size(), sdp);
}

std::string makeRequest(PeerDialog& p, const std::string& method, const std::string& branch,
                        const std::string& body) {
  std::uint32_t cseq = ++p.cseq;
  return fmt::format(
      "{} {} SIP/2.0\r\nVia: SIP/2.0/UDP {}:{};branch={};rport\r\nFrom: <{}>;tag={}\r\nTo: <{}>;tag={}\r\n"
      "Call-ID: {}\r\nCSeq: {} {}\r\nContact: <{}>\r\nMax-Forwards: 70\r\n{}{}Content-Length: {}\r\n\r\n{}",
      method, p.request_uri, p.host, p.port, branch, p.local_uri, p.local_tag, p.remote_uri, p.remote_tag,
      p.call_id, cseq, method, p.local_uri, kPhoneHeaders,
      body.empty() ? "" : "Content-Type: application/sdp\r\n", body.size(), body);
}

std::string makeAck(PeerDialog& p, std::uint32_t cseq, const std::string& branch) {
  return fmt::format(
      "ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP {}:{};branch={};rport\r\nFrom: <{}>;tag={}\r\nTo: <{}>;tag={}\r\n"
      "Call-ID: {}\r\nCSeq: {} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
      p.request_uri, p.host, p.port, branch, p.local_uri, p.local_tag, p.remote_uri, p.remote_tag, p.call_id,
      cseq);
}

std::string makeCancel(const PeerDialog& p, std::uint32_t cseq, const std::string& branch) {
  return fmt::format(
      "CANCEL {} SIP/2.0\r\nVia: SIP/2.0/UDP {}:{};branch={};rport\r\nFrom: \"Peer\" <{}>;tag={}\r\nTo: "
      "<{}>\r\n"
      "Call-ID: {}\r\nCSeq: {} CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
      p.remote_uri, p.host, p.port, branch, p.local_uri, p.local_tag, p.remote_uri, p.call_id, cseq);
}

std::string makeResponse(const sip::Message& req, int status, const std::string& reason,
                         const std::string& to_tag, const std::string& contact, const std::string& body) {
  std::string out = fmt::format("SIP/2.0 {} {}\r\n", status, reason);
  for (const auto& h : req.headers()) {
    if (h.id == sip::Hdr::Via || h.id == sip::Hdr::From || h.id == sip::Hdr::CallId ||
        h.id == sip::Hdr::CSeq) {
      out.append(req.raw().substr(h.begin, h.end - h.begin));
    }
  }
  std::string to(req.find(sip::Hdr::To)->value);
  if (req.toTag().empty() && !to_tag.empty()) to += ";tag=" + to_tag;
  out += "To: " + to + "\r\n";
  if (!contact.empty()) out += "Contact: <" + contact + ">\r\n";
  if (!body.empty()) out += "Content-Type: application/sdp\r\n";
  out += fmt::format("Content-Length: {}\r\n\r\n{}", body.size(), body);
  return out;
}

std::string digestCredentials(const std::string& user, const std::string& password, const std::string& nonce,
                              const std::string& uri, const std::string& method,
                              policy::auth::Algorithm algorithm, const std::string& nc,
                              const std::string& uri_in_credentials) {
  std::string used_uri = uri_in_credentials.empty() ? uri : uri_in_credentials;
  std::string ha1 = policy::auth::ha1(algorithm, user, "palisade", password);
  std::string response =
      policy::auth::requestDigest(algorithm, ha1, nonce, nc, "c0ffee", "auth", method, used_uri);
  return fmt::format(
      "Digest username=\"{}\", realm=\"palisade\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}, "
      "cnonce=\"c0ffee\", qop=auth, nc={}",
      user, nonce, used_uri, response, policy::auth::algorithmName(algorithm), nc);
}

std::string withHeader(std::string message, const std::string& line) {
  message.insert(message.find("Content-Length:"), line);
  return message;
}

}  // namespace palisade::testing
