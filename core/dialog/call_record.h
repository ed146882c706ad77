#pragma once
// One call attempt as the CDR file records it (one JSON line each): a call that was set up,
// or a new INVITE the policy chain refused. Filled on the call's worker and handed, by value,
// to a CallRecordSink, which must never block the worker.
#include <cstdint>
#include <string>

#include "core/net/endpoint.h"
#include "core/sip/message.h"
#include "policy/api/request_context.h"

namespace palisade::dialog {

struct CallRecord {
  std::string call_id;            // the caller leg's Call-ID, as received
  std::string from;               // the calling user part (From URI), as received
  std::string to;                 // the dialled user part (Request-URI, or a tel: number), as received
  std::string destination;        // normalised E.164 with '+' (empty when it could not be normalised)
  std::string destination_class;  // "emergency", "domestic", "international", "internal", "unknown"
  std::string source;             // who placed it: "user:2001", "trunk:carrier", "pbx"
  std::string auth;               // how: "digest", "trunk-address", "trunk-tls", "pbx-address", "none"
  std::string source_address;     // "IP:port" of the request's source
  std::string transport;          // "udp", "tcp", "tls"
  std::int64_t start_ms = 0;      // Unix time in ms: the INVITE arrived
  std::int64_t answer_ms = 0;     // the 2xx (0: never answered)
  std::int64_t end_ms = 0;        // the call ended or was refused
  int final_status = 0;           // the final status the caller got (200 for an answered call)
  std::string ended_by;           // "caller", "callee", "palisade" (refused, timeout, limit)
  std::string end_reason;     // "bye", "cancel", "rejected", "policy", "max_duration", "media_timeout", ...
  bool srtp_public = false;   // the public leg's media was SRTP
  bool srtp_pbx = false;      // the PBX leg's media was SRTP
  std::uint64_t packets = 0;  // media packets relayed, both ways
  std::uint64_t bytes = 0;
  std::uint64_t sequence_gaps = 0;
  std::uint64_t srtp_auth_failures = 0;
  std::int64_t cost_micros = 0;  // rated cost in millionths of the rate table's currency
  std::string decision;          // "allowed" or "refused"
  std::string rule;              // the rule that decided ("high-risk +881", "user:2001 deny +44", ...)
};

// The fields of `record` a new INVITE gives before anything happens to it: who called whom
// from where, how it authenticated, and what the policy chain made of it.
void describeAttempt(const sip::Message& invite, const net::Flow& flow, const policy::RequestContext& context,
                     CallRecord& record);

// Where a worker sends its records. write() is called on the worker and must not block: a full
// queue is counted, never waited on.
class CallRecordSink {
 public:
  virtual ~CallRecordSink() = default;
  virtual void write(CallRecord&& record) = 0;
};

}  // namespace palisade::dialog
