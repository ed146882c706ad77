#pragma once
// The part of a response that echoes its request (RFC 3261 §8.2.6.2), shared by every place
// that answers: transactions (100 Trying, 200 for CANCEL), stateless replies and calls.
#include <string>
#include <string_view>

#include "core/net/endpoint.h"
#include "core/sip/message.h"

namespace palisade::sip {

// Status line, the Via fields (the top one edited for `source`: received= when the sent-by host
// differs, rport= filled in; RFC 3261 §18.2.1, RFC 3581), From, To (with `to_tag` added when
// the request had none), Call-ID and CSeq. The caller appends the rest, Content-Length last.
std::string responseHead(const Message& request, const net::Endpoint& source, int status,
                         std::string_view reason, std::string_view to_tag);

}  // namespace palisade::sip
