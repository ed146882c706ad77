#pragma once
// Views over header values (RFC 3261 §25 grammar), parsed on demand. Every parser returns
// false on malformed input and never throws; results are string_views into the message.
#include <cstdint>
#include <string_view>
#include <vector>

namespace palisade::sip {

struct Uri {
  std::string_view scheme;   // "sip", "sips", "tel", ... as written
  std::string_view user;     // SIP: userinfo without password; tel: the number
  std::string_view host;     // without brackets for IPv6 references
  std::uint16_t port = 0;    // 0 when absent
  std::string_view params;   // ";a=b;lr" (with the leading ';'), may be empty
  std::string_view headers;  // after '?', may be empty
  bool ipv6 = false;
  bool isSip() const;  // sip or sips (case-insensitive)
};
bool parseUri(std::string_view text, Uri& out);

struct NameAddr {
  std::string_view display;  // with quotes if it was quoted; empty when absent
  std::string_view uri;      // the URI text, without angle brackets
  std::string_view params;   // header parameters after the URI, with leading ';'
  std::string_view tag;      // value of the tag parameter, empty when absent
  bool bracketed = false;
};
// One name-addr / addr-spec with header parameters (From, To, one Contact, one Route).
bool parseNameAddr(std::string_view text, NameAddr& out);

struct Via {
  std::string_view transport;  // "UDP", "TCP", ...
  std::string_view host;       // without brackets
  std::uint16_t port = 0;      // 0 when absent
  std::string_view branch;
  std::string_view received;
  bool has_rport = false;
  std::string_view rport;   // value when present ("" for a bare rport)
  std::string_view params;  // all params with the leading ';'
  std::string_view text;    // the whole via-parm as received
};
// One via-parm (the first of a possibly comma-separated list is returned in `out`;
// `rest` receives the remainder after the comma, or empty).
bool parseVia(std::string_view text, Via& out, std::string_view& rest);

// Splits a comma-separated header value into elements, honouring quotes and <...>.
// Returns false on unbalanced quotes or brackets, or on an empty element.
bool splitList(std::string_view text, std::vector<std::string_view>& out);

// Value of parameter `name` (case-insensitive) in ";a=b;c" style text; `found` tells a bare
// parameter from an absent one.
std::string_view paramValue(std::string_view params, std::string_view name, bool* found = nullptr);

// A URI usable as a Request-URI: the same text without its "?headers" part (RFC 3261 §19.1.5).
std::string_view withoutUriHeaders(std::string_view uri);

// RSeq (RFC 3262 §7.1): 1*DIGIT, 1 to 2^32-1.
bool parseRSeq(std::string_view text, std::uint32_t& out);

// RAck (RFC 3262 §7.2): response-num LWS CSeq-num LWS Method.
struct RAck {
  std::uint32_t rseq = 0;
  std::uint32_t cseq = 0;
  std::string_view method;
};
bool parseRAck(std::string_view text, RAck& out);

bool isTokenChar(char c);
bool iequals(std::string_view a, std::string_view b);
std::string_view trimLws(std::string_view s);
// Parses an unsigned decimal number of at most `max` into `out`; false if not all digits.
bool parseUnsigned(std::string_view digits, std::uint64_t max, std::uint64_t& out);

}  // namespace palisade::sip
