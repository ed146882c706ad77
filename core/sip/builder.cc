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

MessageBuilder& MessageBuilder::crossing(const Message& source, const HeaderPolicy& policy, net::Side to,
                                         bool identity_trusted) {
  for (const auto& h : source.headers()) {
    if (h.id == Hdr::Supported) {
      std::vector<std::string_view> options;
      if (!splitList(h.value, options)) continue;
      for (auto opt : options) {
        if (!iequals(opt, "timer")) continue;
        field("Supported", "timer");
        break;
      }
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
