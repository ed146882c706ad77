#pragma once
// The two places policy runs, as the transports and the SIP engine call them.
#include <cstdint>
#include <string_view>

#include "core/net/endpoint.h"
#include "core/sip/message.h"
#include "policy/api/decision.h"
#include "policy/api/request_context.h"

namespace palisade::policy {

// Runs on the receiving worker for every datagram, every new stream connection (`bytes`
// empty) and every framed stream message, before any SIP parsing: the cheap checks (ban list,
// source ACLs). Classifies the source (sets flow.peer, and flow.verified for configured
// peers) and returns false to drop it silently; the caller counts the drop. Must not block.
// What a source did that counts against it (scanner detection): the caller reports it, the
// filter counts it and bans an internet source that collects too many.
enum class Offence : std::uint8_t {
  Malformed,          // bytes that were not a valid SIP message
  ErrorAnswer,        // a 4xx answer other than a challenge (404, 403, 481, ...)
  ConnectionRefused,  // a TCP connection over the per-address limit
  HeadTimeout,        // a TCP message that did not complete in time
};

// What the receiving worker does with a scanned message before handing it to its owner.
enum class Screen : std::uint8_t { Pass, Drop, Reply503 };

class PacketFilter {
 public:
  virtual ~PacketFilter() = default;
  virtual bool admit(net::Flow& flow, std::string_view bytes) = 0;
  // After the scan, on the receiving worker, for every message the packet filter admitted:
  // per-source rate limits, scanner signs, overload shedding. Must not block.
  virtual Screen screen(const net::Flow& /*flow*/, const sip::Message& /*message*/) { return Screen::Pass; }
  // Any worker (for the sources of its own flows).
  virtual void report(const net::Flow& /*flow*/, Offence /*offence*/) {}
  // The configured peer (trunk name, "pbx") that admit() matched the flow to; empty for the
  // internet. Valid until the next snapshot reaches this worker.
  virtual std::string_view peerName(const net::Flow& /*flow*/) const { return {}; }
};

// Where a stage that answered Pending delivers its decision, later, on the same worker (never
// from inside the check() that returned Pending: the request is held only once it returns).
class PendingSink {
 public:
  virtual ~PendingSink() = default;
  virtual void resume(std::uint64_t token, Decision decision) = 0;
};

// Runs on the call's worker for every new out-of-dialog request, before it creates any state.
// Fills `context` (peer kind, identity, rule ids) and returns the first non-Continue decision
// of its stages. Must not block: slow checks answer Pending and resume through the sink; when
// the resumed decision is Continue, the engine calls check() again with the same context
// (context.resume_at says where the filter left off).
class RequestFilter {
 public:
  virtual ~RequestFilter() = default;
  virtual Decision check(RequestContext& context) = 0;
  // The engine that asks binds itself once, before the first check().
  virtual void bindPendingSink(PendingSink* sink) = 0;
  // The engine gave up on a pending request (timeout, shutdown): the stage forgets the token.
  virtual void cancelPending(std::uint64_t token) = 0;
  // As PacketFilter::report, for what the engine sees (the answers it sends).
  virtual void report(const net::Flow& /*flow*/, Offence /*offence*/) {}
  // A call the filter admitted was answered, and later ended (its cost counts toward spend
  // caps; short calls feed anomaly detection). `call_token` names it uniquely on this node;
  // times are Unix ms. callEnded returns the call's cost in millionths (0: not rated).
  virtual void callAnswered(const RequestContext& /*admitted*/, std::uint64_t /*call_token*/,
                            std::int64_t /*unix_ms*/) {}
  virtual std::int64_t callEnded(const RequestContext& /*admitted*/, std::uint64_t /*call_token*/,
                                 std::int64_t /*answer_ms*/, std::int64_t /*end_ms*/) {
    return 0;
  }
  // Every few seconds of an answered rated call: whether its caller (or trunk) reached its spend
  // cap (raising the fraud event once a day), and true when the config says such calls end.
  virtual bool overSpendCap(const RequestContext& /*admitted*/, std::int64_t /*unix_ms*/) { return false; }
};

}  // namespace palisade::policy
