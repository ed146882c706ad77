#include "core/sip/message.h"

#include <algorithm>
#include <array>

namespace palisade::sip {
namespace {

constexpr std::array<std::string_view, 15> kMethodNames = {
    "",     "INVITE", "ACK",       "BYE",    "CANCEL", "OPTIONS", "REGISTER", "UPDATE",
    "INFO", "PRACK",  "SUBSCRIBE", "NOTIFY", "REFER",  "MESSAGE", "PUBLISH"};

struct HeaderName {
  std::string_view name;
  Hdr id;
};
// Long and compact forms (RFC 3261 §7.3.3, RFC 3515, RFC 3841...).
constexpr HeaderName kHeaderNames[] = {
    {"via", Hdr::Via},
    {"v", Hdr::Via},
    {"from", Hdr::From},
    {"f", Hdr::From},
    {"to", Hdr::To},
    {"t", Hdr::To},
    {"call-id", Hdr::CallId},
    {"i", Hdr::CallId},
    {"cseq", Hdr::CSeq},
    {"max-forwards", Hdr::MaxForwards},
    {"contact", Hdr::Contact},
    {"m", Hdr::Contact},
    {"route", Hdr::Route},
    {"record-route", Hdr::RecordRoute},
    {"content-length", Hdr::ContentLength},
    {"l", Hdr::ContentLength},
    {"content-type", Hdr::ContentType},
    {"c", Hdr::ContentType},
    {"require", Hdr::Require},
    {"proxy-require", Hdr::ProxyRequire},
    {"supported", Hdr::Supported},
    {"k", Hdr::Supported},
    {"unsupported", Hdr::Unsupported},
    {"allow", Hdr::Allow},
    {"user-agent", Hdr::UserAgent},
    {"server", Hdr::Server},
    {"path", Hdr::Path},
    {"service-route", Hdr::ServiceRoute},
    {"rseq", Hdr::Rseq},
    {"rack", Hdr::Rack},
    {"warning", Hdr::Warning},
    {"reply-to", Hdr::ReplyTo},
    {"error-info", Hdr::ErrorInfo},
    {"call-info", Hdr::CallInfo},
    {"organization", Hdr::Organization},
    {"timestamp", Hdr::Timestamp},
};

bool isWs(char c) { return c == ' ' || c == '\t'; }

// Returns the end of the line starting at `pos` (index of '\n', or npos) and sets `content_end`
// to the index where the line's text ends (before CR LF or LF).
std::size_t lineEnd(std::string_view s, std::size_t pos, std::size_t& content_end) {
  std::size_t nl = s.find('\n', pos);
  if (nl == std::string_view::npos) {
    content_end = s.size();
    return nl;
  }
  content_end = (nl > pos && s[nl - 1] == '\r') ? nl - 1 : nl;
  return nl;
}

bool isSipVersion(std::string_view v) {
  if (v.size() < 7 || !iequals(v.substr(0, 4), "SIP/")) return false;
  std::size_t dot = v.find('.', 4);
  if (dot == std::string_view::npos || dot == 4 || dot + 1 == v.size()) return false;
  for (std::size_t i = 4; i < v.size(); ++i) {
    if (i != dot && (v[i] < '0' || v[i] > '9')) return false;
  }
  return true;
}

}  // namespace

Method methodFromName(std::string_view name) {
  for (std::size_t i = 1; i < kMethodNames.size(); ++i) {
    if (kMethodNames[i] == name) return static_cast<Method>(i);
  }
  return Method::Unknown;
}

std::string_view methodName(Method m) { return kMethodNames[static_cast<std::size_t>(m)]; }

Hdr headerIdFromName(std::string_view name) {
  if (name.empty() || name.size() > 16) return Hdr::Other;
  // Dispatch on the first letter so that each header name is compared with a few candidates.
  char first = static_cast<char>(name[0] | 0x20);
  for (const auto& entry : kHeaderNames) {
    if (entry.name[0] == first && entry.name.size() == name.size() && iequals(entry.name, name))
      return entry.id;
  }
  return Hdr::Other;
}

const HeaderField* Message::find(Hdr id) const {
  for (const auto& h : headers_) {
    if (h.id == id) return &h;
  }
  return nullptr;
}

std::size_t Message::count(Hdr id) const {
  return static_cast<std::size_t>(
      std::count_if(headers_.begin(), headers_.end(), [id](const HeaderField& h) { return h.id == id; }));
}

bool Message::firstContact(NameAddr& out) const {
  const HeaderField* h = find(Hdr::Contact);
  if (h == nullptr || h->value == "*") return false;
  std::vector<std::string_view> items;
  if (!splitList(h->value, items) || items.empty()) return false;
  return parseNameAddr(items.front(), out);
}

void Message::fail(int status, std::string_view reason) {
  if (fault_.status == 0) fault_ = ParseFault{status, reason};
}

std::unique_ptr<Message> Message::parse(std::string bytes, const Limits& limits, bool datagram) {
  std::unique_ptr<Message> msg(new Message());
  msg->bytes_ = std::move(bytes);
  msg->scan(limits, datagram);
  if (msg->method_text_.empty() && msg->status_code_ == 0 && !msg->dropped_) return nullptr;
  return msg;
}

bool Message::scanStartLine(std::string_view line) {
  if (line.size() >= 8 && iequals(line.substr(0, 4), "SIP/")) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 §7.2)
    is_request_ = false;
    std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || line.size() < sp1 + 5) return false;
    version_ = line.substr(0, sp1);
    std::string_view code = line.substr(sp1 + 1, 3);
    std::uint64_t value = 0;
    if (!parseUnsigned(code, 699, value) || value < 100) return false;
    if (line[sp1 + 4] != ' ') return false;  // also rejects codes longer than three digits
    status_code_ = static_cast<int>(value);
    reason_ = line.substr(sp1 + 5);
    return true;
  }
  // Request-Line = Method SP Request-URI SP SIP-Version (single SPs, no LWS).
  is_request_ = true;
  std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return false;
  method_text_ = line.substr(0, sp1);
  std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  request_uri_ = line.substr(sp1 + 1, sp2 - sp1 - 1);
  version_ = line.substr(sp2 + 1);
  return true;
}

void Message::indexHeader(HeaderField& field) { field.id = headerIdFromName(field.name); }

void Message::scan(const Limits& limits, bool datagram) {
  std::string_view s(bytes_);
  if (s.size() > limits.max_message_bytes) {
    // Still index the start line and headers for the reply, but refuse the message.
    fail(513, "Message Too Large");
  }
  headers_.reserve(24);
  std::size_t pos = 0;
  while (pos < s.size() && (s[pos] == '\r' || s[pos] == '\n')) ++pos;  // RFC 3261 §7.5
  std::size_t content_end = 0;
  std::size_t nl = lineEnd(s, pos, content_end);
  if (nl == std::string_view::npos || content_end - pos > limits.max_line_bytes) {
    method_text_ = {};
    status_code_ = 0;
    return;
  }
  if (!scanStartLine(s.substr(pos, content_end - pos))) {
    if (!is_request_) {
      // "SIP/..." with a status code we cannot read (RFC 4475 §3.1.2.19): a response that
      // is dropped, not an unknown kind of datagram.
      status_code_ = 0;
      fault_ = {};  // a response is never answered, whatever else was wrong with it
      drop();
      return;
    }
    if (method_text_.empty()) {
      // Neither a request line nor a status line: nothing to answer.
      method_text_ = {};
      status_code_ = 0;
      return;
    }
    fail(400, "Malformed Request-Line");
  }
  pos = nl + 1;

  // Header fields, with folding (a line starting with SP/HT continues the previous field).
  bool header_end_seen = false;
  while (pos < s.size()) {
    nl = lineEnd(s, pos, content_end);
    std::size_t line_stop = (nl == std::string_view::npos) ? s.size() : nl + 1;
    if (content_end - pos > limits.max_line_bytes) {
      fail(400, "Header Line Too Long");
      pos = line_stop;
      continue;
    }
    if (content_end == pos) {  // the empty line
      header_end_seen = nl != std::string_view::npos;
      pos = line_stop;
      break;
    }
    if (isWs(s[pos])) {
      if (headers_.empty()) {
        fail(400, "Folded Line Without Header");
      } else {
        HeaderField& last = headers_.back();
        last.end = static_cast<std::uint32_t>(line_stop);
        std::size_t value_start = static_cast<std::size_t>(last.value.data() - s.data());
        if (last.value.empty()) value_start = pos;
        last.value = trimLws(s.substr(value_start, content_end - value_start));
      }
      pos = line_stop;
      continue;
    }
    std::string_view line = s.substr(pos, content_end - pos);
    std::size_t colon = line.find(':');
    std::size_t name_end = 0;
    while (name_end < line.size() && isTokenChar(line[name_end])) ++name_end;
    std::size_t after_name = name_end;
    while (after_name < line.size() && isWs(line[after_name])) ++after_name;
    if (colon == std::string_view::npos || name_end == 0 || after_name != colon) {
      fail(400, "Malformed Header Line");
      pos = line_stop;
      continue;
    }
    if (headers_.size() >= limits.max_headers) {
      fail(400, "Too Many Headers");
      pos = line_stop;
      continue;
    }
    HeaderField field;
    field.name = line.substr(0, name_end);
    field.value = trimLws(line.substr(colon + 1));
    field.begin = static_cast<std::uint32_t>(pos);
    field.end = static_cast<std::uint32_t>(line_stop);
    indexHeader(field);
    headers_.push_back(field);
    pos = line_stop;
  }
  if (!header_end_seen) fail(400, "Header Section Not Terminated");

  // Transaction key and framing headers.
  std::size_t call_ids = 0, cseqs = 0, froms = 0, tos = 0, mfs = 0;
  bool cl_conflict = false;
  bool via_broken = false;
  for (const HeaderField& h : headers_) {
    switch (h.id) {
      case Hdr::Via: {
        // Vias are counted from the top down to the first malformed one: the top Via is the
        // first via-parm of the first Via field or nothing, never one from a later field.
        std::string_view rest = h.value;
        while (!via_broken && !rest.empty()) {
          Via via;
          if (!parseVia(rest, via, rest)) {
            fail(400, "Malformed Via");
            via_broken = true;
            break;
          }
          if (via_count_++ == 0) top_via_ = via;
        }
        if (h.value.empty()) {
          fail(400, "Malformed Via");
          via_broken = true;
        }
        break;
      }
      case Hdr::CallId:
        if (call_ids++ == 0)
          call_id_ = h.value;
        else if (h.value != call_id_)
          fail(400, "Multiple Call-ID Values");
        if (h.value.empty()) fail(400, "Empty Call-ID");
        break;
      case Hdr::CSeq: {
        if (cseqs++ > 0) {
          fail(400, "Multiple CSeq Values");
          break;
        }
        // The number and the method may be separated by folded LWS (RFC 4475 §3.1.1.1).
        std::size_t sp = h.value.find_first_of(" \t\r\n");
        std::uint64_t number = 0;
        if (sp == std::string_view::npos || !parseUnsigned(h.value.substr(0, sp), 0xFFFFFFFFull, number)) {
          fail(400, "Malformed CSeq");
          break;
        }
        cseq_ = static_cast<std::uint32_t>(number);
        cseq_method_text_ = trimLws(h.value.substr(sp));
        cseq_method_ = methodFromName(cseq_method_text_);
        break;
      }
      case Hdr::From:
        if (froms++ > 0)
          fail(400, "Multiple From Headers");
        else if (!parseNameAddr(h.value, from_))
          fail(400, "Malformed From");
        break;
      case Hdr::To:
        if (tos++ > 0)
          fail(400, "Multiple To Headers");
        else if (!parseNameAddr(h.value, to_))
          fail(400, "Malformed To");
        break;
      case Hdr::MaxForwards: {
        std::uint64_t value = 0;
        if (mfs++ > 0) {
          fail(400, "Multiple Max-Forwards");
        } else if (!parseUnsigned(h.value, 0xFFFFFFFFull, value)) {
          fail(400, "Malformed Max-Forwards");
        } else {
          max_forwards_ = static_cast<int>(std::min<std::uint64_t>(value, 255));
        }
        break;
      }
      case Hdr::ContentLength: {
        std::uint64_t value = 0;
        if (!parseUnsigned(h.value, limits.max_message_bytes, value)) {
          fail(400, "Bad Content-Length");
        } else if (content_length_ >= 0 && static_cast<std::uint64_t>(content_length_) != value) {
          cl_conflict = true;
        } else {
          content_length_ = static_cast<long long>(value);
        }
        break;
      }
      default:
        break;
    }
  }
  if (cl_conflict) fail(400, "Conflicting Content-Length");

  // Body (RFC 3261 §18.3).
  std::string_view rest = header_end_seen ? s.substr(pos) : std::string_view{};
  if (content_length_ < 0) {
    if (!datagram) fail(400, "Missing Content-Length");
    body_ = rest;
  } else if (static_cast<std::size_t>(content_length_) > rest.size()) {
    fail(400, "Content-Length Exceeds Body");
    body_ = rest;
  } else {
    body_ = rest.substr(0, static_cast<std::size_t>(content_length_));
  }

  if (via_count_ == 0) fail(400, "Missing Via");
  if (call_ids == 0 || cseqs == 0 || froms == 0 || tos == 0) fail(400, "Missing Mandatory Header");
  if (!is_request_) {
    if (fault_.status != 0 || !iequals(version_, "SIP/2.0")) dropped_ = true;  // bad responses vanish
    fault_ = {};
    return;
  }
  validateRequest();
}

void Message::validateRequest() {
  for (char c : method_text_) {
    if (!isTokenChar(c)) {
      fail(400, "Malformed Method");
      break;
    }
  }
  method_ = methodFromName(method_text_);
  if (!iequals(version_, "SIP/2.0")) {
    // 505 only for a well-formed SIP-Version ("SIP" "/" 1*DIGIT "." 1*DIGIT, RFC 3261 §25.1);
    // anything else, such as "SIP/2.0" followed by SP (RFC 4475 §3.1.2.10), is malformed.
    if (fault_.status == 0 && isSipVersion(version_))
      fault_ = ParseFault{505, "Version Not Supported"};
    else
      fail(400, "Malformed SIP-Version");
  }
  Uri uri;
  if (!parseUri(request_uri_, uri)) {
    fail(400, "Malformed Request-URI");
  } else if (uri.isSip() && !uri.headers.empty()) {
    fail(400, "Headers Not Allowed In Request-URI");
  }
  if (cseq_method_text_ != method_text_) fail(400, "CSeq Method Mismatch");
  for (const HeaderField& h : headers_) {
    if (h.id != Hdr::Contact || h.value == "*") continue;
    std::vector<std::string_view> items;
    NameAddr contact;
    if (!splitList(h.value, items)) {
      fail(400, "Malformed Contact");
      break;
    }
    for (std::string_view item : items) {
      if (!parseNameAddr(item, contact)) {
        fail(400, "Malformed Contact");
        break;
      }
    }
  }
}

}  // namespace palisade::sip
