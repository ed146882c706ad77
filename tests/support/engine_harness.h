#pragma once
// Drives one worker's Engine like the network would: inject bytes from a peer, collect what
// the engine sends to each peer, advance a manual clock. Plus factories for the SIP messages
// the test peers (a caller, a PBX, a carrier) send.
#include <memory>
#include <string>

#include "core/dialog/dispatcher.h"
#include "core/dialog/engine.h"
#include "core/routing/local_location_store.h"
#include "policy/api/shared_counters.h"
#include "policy/auth/digest.h"
#include "policy/bans/local_store.h"
#include "policy/fraud/local_fraud_store.h"
#include "policy/policy_chain.h"
#include "tests/support/fake_network.h"

namespace palisade::testing {

// A test user agent's view of one dialog.
struct PeerDialog {
  net::Flow flow;    // how the engine sees this peer
  std::string host;  // the peer's own address as it writes it in Via/Contact
  std::uint16_t port = 0;
  std::string call_id;
  std::string local_tag;    // the peer's tag
  std::string remote_tag;   // the engine's tag towards this peer
  std::string local_uri;    // e.g. sip:alice@127.0.0.2:5061
  std::string remote_uri;   // e.g. sip:1000@127.0.0.1:5060
  std::string request_uri;  // where in-dialog requests are addressed (the engine's Contact)
  std::uint32_t cseq = 1;
};

class EngineHarness {
 public:
  // `shared`: the cross-worker counters (limits.max_calls); the harness's own when null.
  // `with_policy`: run the config's policy chain (packet filter, then its request stages) as
  // the daemon does; without it the engine sees every source unclassified, which is what the
  // tests of SIP mechanics want (the default-deny filter would drop their internet caller).
  explicit EngineHarness(std::shared_ptr<const config::Config> config = nullptr,
                         policy::SharedCounters* shared = nullptr, bool with_policy = false);

  // As the transports deliver: with the policy chain, through its packet filter first (which
  // drops what the ACL refuses and classifies the source), then to the engine.
  void inject(const std::string& bytes, const net::Flow& flow);
  // Pops the oldest packet sent to `port` (nullptr when none).
  std::unique_ptr<sip::Message> next(std::uint16_t port);
  std::size_t pending(std::uint16_t port) const;
  // Drops everything sent so far.
  void clearSent() { network_.sent.clear(); }
  // Moves the clock in 10 ms steps, running timers at each.
  void advance(base::Millis ms);
  const std::string& lastBytes() const { return last_bytes_; }
  std::uint64_t counter(stats::Counter c) const { return metrics_.total(c); }
  dialog::Engine& engine() { return *engine_; }
  FakeNetwork& network() { return network_; }
  policy::SharedCounters& shared() { return *shared_; }
  policy::PolicyChain& chain() { return *chain_; }
  ManualClock& clock() { return clock_; }
  policy::bans::LocalStateStore& store() { return *store_; }
  routing::LocalLocationStore& location() { return *location_; }
  policy::fraud::LocalFraudStore& fraudStore() { return *fraud_store_; }
  // What the daemon does on SIGHUP: a new config and policy snapshot, and the registrations
  // the new snapshot no longer allows end.
  void reload(std::shared_ptr<const config::Config> config);

 private:
  ManualClock clock_;
  FakeNetwork network_;
  stats::Metrics metrics_;
  policy::SharedCounters own_shared_;
  policy::SharedCounters* shared_;
  policy::RuleRegistry rules_;
  std::unique_ptr<policy::AuthState> auth_ = std::make_unique<policy::AuthState>();
  std::unique_ptr<policy::bans::LocalStateStore> store_ = std::make_unique<policy::bans::LocalStateStore>();
  std::unique_ptr<routing::LocalLocationStore> location_ = std::make_unique<routing::LocalLocationStore>();
  std::unique_ptr<policy::fraud::LocalFraudStore> fraud_store_ =
      std::make_unique<policy::fraud::LocalFraudStore>();
  std::unique_ptr<policy::PolicyChain> chain_;
  std::unique_ptr<dialog::Dispatcher> dispatcher_;
  std::unique_ptr<dialog::Engine> engine_;
  std::string last_bytes_;
};

// What a desk phone adds to its requests. A request without such headers is smaller than a
// 401/407 with two challenges, which an unverified UDP source never draws (no amplification).
inline const std::string kPhoneHeaders =
    "User-Agent: Desk phone 8.4.1 (firmware 2024-05-17, hardware rev B)\r\n"
    "Allow-Events: talk, hold, conference, refer, check-sync, message-summary\r\n"
    "Supported: replaces, timer, 100rel, path, gruu, outbound\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY, MESSAGE, SUBSCRIBE\r\n";

inline const std::string kDefaultSdp =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";

// Peers of the default config: a caller on the public side, the PBX, the carrier. The PBX's
// and the carrier's flows are marked as the packet filter marks configured peers (peer id,
// verified); the caller's is an unverified internet source.
PeerDialog callerPeer(const std::string& call_id);
PeerDialog carrierPeer(const std::string& call_id);  // the carrier trunk (callee of PBX calls)
PeerDialog pbxPeer(const std::string& call_id);      // the PBX as caller (PBX -> carrier calls)

// Out-of-dialog INVITE from `peer` (body: SDP offer unless `sdp` is empty).
std::string makeInvite(PeerDialog& peer, const std::string& branch, const std::string& sdp = kDefaultSdp);
// In-dialog request from `peer`; CSeq is taken from peer.cseq (incremented unless ACK).
std::string makeRequest(PeerDialog& peer, const std::string& method, const std::string& branch,
                        const std::string& body = {});
// ACK for a 2xx, CSeq number `cseq`.
std::string makeAck(PeerDialog& peer, std::uint32_t cseq, const std::string& branch);
// CANCEL for the INVITE sent with `branch` and CSeq `cseq`.
std::string makeCancel(const PeerDialog& peer, std::uint32_t cseq, const std::string& branch);
// Response from a peer to a request it received.
std::string makeResponse(const sip::Message& request, int status, const std::string& reason,
                         const std::string& to_tag, const std::string& contact, const std::string& body = {});

// A digest Proxy-Authorization value for `nonce` (RFC 7616, qop=auth, the "palisade" realm);
// `uri_in_credentials` replaces the URI the credentials name (to test a mismatch).
std::string digestCredentials(const std::string& user, const std::string& password, const std::string& nonce,
                              const std::string& uri, const std::string& method,
                              policy::auth::Algorithm algorithm = policy::auth::Algorithm::Sha256,
                              const std::string& nc = "00000001", const std::string& uri_in_credentials = {});
// `message` with the header `line` (ending in CRLF) added before its Content-Length.
std::string withHeader(std::string message, const std::string& line);

}  // namespace palisade::testing
