#pragma once
// The one serializer for messages Palisade sends: forwarded requests and responses, local
// answers, ACK, CANCEL and BYE. Start line, then header fields in call order, then the body
// given explicitly (content type and bytes), with Content-Length always written by finish().
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "core/net/endpoint.h"
#include "core/sip/header_policy.h"
#include "core/sip/message.h"

namespace palisade::sip {

// A message body with its content type; empty bytes means no body.
struct Body {
  std::string_view content_type;
  std::string_view bytes;
  bool empty() const { return bytes.empty(); }
};

// The body of a received message, as it arrived.
Body bodyOf(const Message& message);

// Whether header text may be copied into a message we send: no control characters but HTAB,
// and line breaks only as folding (CR LF or LF followed by SP or HTAB). A bare CR would end a
// line for some parsers downstream and smuggle a header past the allow-list.
bool isCleanHeaderText(std::string_view text);

class MessageBuilder {
 public:
  explicit MessageBuilder(std::size_t reserve = 768) { out_.reserve(reserve); }

  MessageBuilder& request(std::string_view method, std::string_view uri);
  MessageBuilder& status(int status, std::string_view reason);
  // The status line and the fields that echo `request` (RFC 3261 §8.2.6.2: Via with received=
  // and rport= on the top one, From, To with `to_tag` added if it had none, Call-ID, CSeq).
  MessageBuilder& responseTo(const Message& request, const net::Endpoint& source, int status,
                             std::string_view reason, std::string_view to_tag);
  // A complete header line, ending in CRLF (or several).
  MessageBuilder& lines(std::string_view text) {
    out_.append(text);
    return *this;
  }
  MessageBuilder& field(std::string_view name, std::string_view value);
  template <typename... Args>
  MessageBuilder& fieldf(std::string_view name, fmt::format_string<Args...> format, Args&&... args) {
    out_.append(name).append(": ");
    fmt::format_to(std::back_inserter(out_), format, std::forward<Args>(args)...);
    out_.append("\r\n");
    return *this;
  }
  // The product token (User-Agent or Server); nothing when `product` is empty.
  MessageBuilder& product(std::string_view name, std::string_view product);
  // The fields of `source` that `policy` lets cross toward `to`, byte for byte, unless they
  // hold control characters. Supported, and a request's Require, are reduced to the
  // extensions Palisade relays: `timer`, and `100rel` on an initial INVITE (the call maps
  // RSeq/RAck across); dialog references (Replaces, Join, GRUU) are not mapped across.
  MessageBuilder& crossing(const Message& source, const HeaderPolicy& policy, net::Side to,
                           bool identity_trusted);

  // Content-Type (when there is a body and its type is clean), Content-Length, the empty line
  // and the body.
  std::string finish(Body body = {});

 private:
  std::string out_;
};

}  // namespace palisade::sip
