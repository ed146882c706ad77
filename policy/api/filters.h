#pragma once
// The two places policy runs, as the transports and the SIP engine call them.
#include <cstdint>
#include <string_view>

#include "core/net/endpoint.h"
#include "policy/api/decision.h"
#include "policy/api/request_context.h"

namespace palisade::policy {

// Runs on the receiving worker for every datagram, every new stream connection (`bytes`
// empty) and every framed stream message, before any SIP parsing: the cheap checks (ban list,
// source ACLs). Classifies the source (sets flow.peer, and flow.verified for configured
// peers) and returns false to drop it silently; the caller counts the drop. Must not block.
class PacketFilter {
 public:
  virtual ~PacketFilter() = default;
  virtual bool admit(net::Flow& flow, std::string_view bytes) = 0;
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
};

}  // namespace palisade::policy
