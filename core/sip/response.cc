#include "core/sip/response.h"

#include <fmt/format.h>

namespace palisade::sip {
namespace {

// Re-emits one via-parm with received= (when the sent-by host is not the source address)
// and the value of a bare rport filled in.
void appendEditedVia(std::string& out, const Via& via, const net::Endpoint& source) {
  std::size_t params_at = static_cast<std::size_t>(via.params.data() - via.text.data());
  if (via.params.empty()) params_at = via.text.size();
  out.append(via.text.substr(0, params_at));
  std::string address = source.address.to_string();
  std::string_view params = via.params;
  while (!params.empty()) {
    std::size_t next = params.find(';', 1);
    std::string_view param = params.substr(0, next);
    if (iequals(trimLws(param.substr(1)), "rport")) {
      fmt::format_to(std::back_inserter(out), ";rport={}", source.port);
    } else {
      out.append(param);
    }
    if (next == std::string_view::npos) break;
    params.remove_prefix(next);
  }
  if (via.received.empty() && via.host != address)
    fmt::format_to(std::back_inserter(out), ";received={}", address);
}

// The scanner takes the top Via from the first Via field; check it anyway before slicing.
bool viaWithin(const Via& via, std::string_view field) {
  return !via.text.empty() && via.text.data() >= field.data() &&
         via.text.data() + via.text.size() <= field.data() + field.size();
}

}  // namespace

std::string responseHead(const Message& request, const net::Endpoint& source, int status,
                         std::string_view reason, std::string_view to_tag) {
  std::string out;
  out.reserve(512);
  fmt::format_to(std::back_inserter(out), "SIP/2.0 {} {}\r\n", status, reason);
  bool first_via = true;
  for (const auto& h : request.headers()) {
    switch (h.id) {
      case Hdr::Via:
        if (first_via && viaWithin(request.topVia(), h.value)) {
          // RFC 3261 §18.2.1 received= and RFC 3581 rport= on the top Via, as an edit of the
          // received value (the rest of the field is copied as is).
          const Via& top = request.topVia();
          std::size_t offset = static_cast<std::size_t>(top.text.data() - h.value.data());
          out.append("Via: ").append(h.value.substr(0, offset));
          appendEditedVia(out, top, source);
          out.append(h.value.substr(offset + top.text.size())).append("\r\n");
          first_via = false;
        } else {
          out.append(request.raw().substr(h.begin, h.end - h.begin));
        }
        break;
      case Hdr::To:
        if (!to_tag.empty() && request.toTag().empty()) {
          fmt::format_to(std::back_inserter(out), "To: {};tag={}\r\n", h.value, to_tag);
        } else {
          out.append(request.raw().substr(h.begin, h.end - h.begin));
        }
        break;
      case Hdr::From:
      case Hdr::CallId:
      case Hdr::CSeq:
        out.append(request.raw().substr(h.begin, h.end - h.begin));
        break;
      default:
        break;
    }
  }
  return out;
}

}  // namespace palisade::sip
