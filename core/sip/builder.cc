#include "core/sip/builder.h"

#include <vector>

#include "core/sip/response.h"

namespace palisade::sip {

Body bodyOf(const Message& message) {
  Body body;
  body.bytes = message.body();
  if (const HeaderField* ct = message.find(Hdr::ContentType)) body.content_type = ct->value;
  return body;
}

bool isCleanHeaderText(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\t' || (c >= 0x20 && c != 0x7f)) continue;
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    if (c == '\n' && i + 1 < text.size() && (text[i + 1] == ' ' || text[i + 1] == '\t')) continue;
    return false;
  }
  return true;
}

MessageBuilder& MessageBuilder::request(std::string_view method, std::string_view uri) {
  out_.append(method).push_back(' ');
  out_.append(uri).append(" SIP/2.0\r\n");
  return *this;
}

MessageBuilder& MessageBuilder::status(int status, std::string_view reason) {
  fmt::format_to(std::back_inserter(out_), "SIP/2.0 {} {}\r\n", status, reason);
  return *this;
}

MessageBuilder& MessageBuilder::responseTo(const Message& request, const net::Endpoint& source, int status,
                                           std::string_view reason, std::string_view to_tag) {
  out_.append(responseHead(request, source, status, reason, to_tag));
  return *this;
}

MessageBuilder& MessageBuilder::field(std::string_view name, std::string_view value) {
  out_.append(name).append(": ").append(value).append("\r\n");
  return *this;
}

MessageBuilder& MessageBuilder::product(std::string_view name, std::string_view product) {
  if (!product.empty()) field(name, product);
  return *this;
}

namespace {

// The option tags Palisade relays end to end. `100rel` only on an initial INVITE: the call
// maps the reliable provisionals of that exchange (RSeq/RAck) across the legs, nothing else.
bool relayedOption(std::string_view option, bool initial_invite) {
  return iequals(option, "timer") || (initial_invite && iequals(option, "100rel"));
}

}  // namespace

MessageBuilder& MessageBuilder::crossing(const Message& source, const HeaderPolicy& policy, net::Side to,
                                         bool identity_trusted) {
  bool initial_invite = source.isRequest() && source.method() == Method::Invite && source.toTag().empty();
  for (const auto& h : source.headers()) {
    // Supported, and Require of requests, shrink to the extensions Palisade relays; a
    // response's Require is the call's to write (it decides what is reliable on each leg).
    bool require = h.id == Hdr::Require && source.isRequest();
    if (h.id == Hdr::Supported || require) {
      std::vector<std::string_view> options;
      if (!splitList(h.value, options)) continue;
      std::string kept;
      for (auto opt : options) {
        if (!relayedOption(opt, initial_invite)) continue;
        if (!kept.empty()) kept.append(", ");
        kept.append(opt);
      }
      if (!kept.empty()) field(require ? "Require" : "Supported", kept);
      continue;
    }
    if (!policy.crosses(h, to, identity_trusted)) continue;
    // Byte for byte, but always with our line ending (a peer may end lines with a bare LF).
    std::string_view line = source.raw().substr(h.begin, h.end - h.begin);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (!isCleanHeaderText(line)) continue;
    out_.append(line).append("\r\n");
  }
  return *this;
}

std::string MessageBuilder::finish(Body body) {
  if (!body.empty() && !body.content_type.empty() && isCleanHeaderText(body.content_type))
    field("Content-Type", body.content_type);
  fmt::format_to(std::back_inserter(out_), "Content-Length: {}\r\n\r\n", body.bytes.size());
  out_.append(body.bytes);
  return std::move(out_);
}

}  // namespace palisade::sip
