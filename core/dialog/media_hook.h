#pragma once
// The media seam of the B2BUA: every session description that crosses from one leg to the
// other (offers and answers in INVITE, 18x, 2xx, re-INVITE, UPDATE, PRACK and ACK) goes
// through the call's CallMedia, which may rewrite it (anchoring: c=, m=, crypto) or refuse it.
// Without a MediaFactory bodies cross unchanged. Runs on the call's worker.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/dialog/call_record.h"
#include "core/net/endpoint.h"
#include "core/sip/builder.h"
#include "core/sip/message.h"
#include "policy/api/request_context.h"

namespace palisade::dialog {

// Where a body is crossing.
struct BodyCrossing {
  BodyCrossing() = default;
  // What the call says at each crossing; the rest is filled in from the legs.
  BodyCrossing(int to, sip::Method m, int response_status, bool in_initial_exchange)
      : to_leg(to), method(m), status(response_status), initial(in_initial_exchange) {}

  int to_leg = 1;                            // 0: toward the caller, 1: toward the callee
  sip::Method method = sip::Method::Invite;  // the request's method (for a response, its CSeq method)
  int status = 0;                            // 0 for a request, else the response's status
  bool initial = false;                      // part of the call's initial INVITE exchange
  net::Side from_side = net::Side::Public;   // the listener of the leg the body came from
  net::Side to_side = net::Side::Pbx;        // and of the leg it goes to
  boost::asio::ip::address source;           // where the body's message came from (NAT latching)
  bool source_verified = false;              // and it has shown it receives there (not a spoofed UDP source)
};

struct BodyVerdict {
  sip::Body body;  // what to send: the body given, or one written into the storage string
  int status = 0;  // non-zero: refuse (a request is answered with it and not forwarded; an
                   // answer that cannot be used ends the call)
  std::string_view reason;
};

class CallMedia {
 public:
  virtual ~CallMedia() = default;
  // `in` is the body as received (it may be empty: a late offer). `storage` outlives the send.
  virtual BodyVerdict rewrite(const BodyCrossing& where, sip::Body in, std::string& storage) = 0;
  // How the media layer ends the call (media timeout): `end` runs on the call's worker, never
  // from inside rewrite(), and not after the CallMedia is destroyed.
  virtual void setEndHandler(std::function<void(std::string_view reason)> end) { (void)end; }
  // The call's media as its CDR records it: packets, bytes, gaps, SRTP authentication failures,
  // and which leg's media was SRTP (leg 0 faces the caller).
  virtual void describe(CallRecord& record, bool srtp_leg[2]) const { (void)record, (void)srtp_leg; }
};

class MediaFactory {
 public:
  virtual ~MediaFactory() = default;
  // One per call, made when the call is admitted and destroyed however the call ends (the
  // media layer releases its ports there).
  virtual std::unique_ptr<CallMedia> create(const policy::RequestContext& admitted) = 0;
};

}  // namespace palisade::dialog
