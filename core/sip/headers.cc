#include "core/sip/headers.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace palisade::sip {
namespace {

bool isLws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Host: IPv4/hostname characters (RFC 3261 §25.1 hostname / IPv4address).
bool isHostChar(char c) { return isAlpha(c) || isDigit(c) || c == '.' || c == '-' || c == '_'; }

// Parses host[:port] at the start of `s`; on success advances `s` past it.
bool parseHostPort(std::string_view& s, std::string_view& host, std::uint16_t& port, bool& ipv6) {
  ipv6 = false;
  std::size_t i = 0;
  if (!s.empty() && s[0] == '[') {
    std::size_t close = s.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    host = s.substr(1, close - 1);
    for (char c : host) {
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) return false;
    }
    ipv6 = true;
    i = close + 1;
  } else {
    while (i < s.size() && isHostChar(s[i])) ++i;
    if (i == 0) return false;
    host = s.substr(0, i);
  }
  port = 0;
  if (i < s.size() && s[i] == ':') {
    std::size_t start = ++i;
    while (i < s.size() && isDigit(s[i])) ++i;
    std::uint64_t value = 0;
    if (!parseUnsigned(s.substr(start, i - start), 65535, value) || value == 0) return false;
    port = static_cast<std::uint16_t>(value);
  }
  s.remove_prefix(i);
  return true;
}

// Scans ";name[=value]" parameters; each name a token, each value a token, quoted string or
// IPv6 reference. Stops at `stop` characters outside quotes; advances `s`.
bool scanParams(std::string_view& s, std::string_view stops) {
  std::size_t i = 0;
  while (i < s.size()) {
    // Allow LWS around ';' and '=' (SEMI / EQUAL are SWS-padded in the grammar).
    std::size_t j = i;
    while (j < s.size() && isLws(s[j])) ++j;
    if (j >= s.size()) {
      i = j;
      break;
    }
    if (stops.find(s[j]) != std::string_view::npos) {
      i = j;
      break;
    }
    if (s[j] != ';') return false;
    i = j + 1;
    while (i < s.size() && isLws(s[i])) ++i;
    std::size_t name_start = i;
    while (i < s.size() && isTokenChar(s[i])) ++i;
    if (i == name_start) return false;  // ";;" or "; ," is malformed
    std::size_t k = i;
    while (k < s.size() && isLws(s[k])) ++k;
    if (k < s.size() && s[k] == '=') {
      i = k + 1;
      while (i < s.size() && isLws(s[i])) ++i;
      if (i < s.size() && s[i] == '"') {
        ++i;
        while (i < s.size() && s[i] != '"') {
          if (s[i] == '\\') ++i;
          ++i;
        }
        if (i >= s.size()) return false;
        ++i;
      } else if (i < s.size() && s[i] == '[') {
        std::size_t close = s.find(']', i);
        if (close == std::string_view::npos) return false;
        i = close + 1;
      } else {
        std::size_t value_start = i;
        while (i < s.size() && (isTokenChar(s[i]) || s[i] == ':')) ++i;
        if (i == value_start) return false;
      }
    }
  }
  s.remove_prefix(i);
  return true;
}

}  // namespace

namespace {
// RFC 3261 §25.1 token characters, as a table: the scanner asks once per byte.
constexpr std::array<bool, 256> makeTokenTable() {
  std::array<bool, 256> table{};
  for (int c = 'a'; c <= 'z'; ++c) table[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[static_cast<std::size_t>(c)] = true;
  for (int c = '0'; c <= '9'; ++c) table[static_cast<std::size_t>(c)] = true;
  for (char c : std::string_view("-.!%*_+`'~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}
constexpr std::array<bool, 256> kTokenTable = makeTokenTable();
}  // namespace

bool isTokenChar(char c) { return kTokenTable[static_cast<unsigned char>(c)]; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trimLws(std::string_view s) {
  while (!s.empty() && isLws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isLws(s.back())) s.remove_suffix(1);
  return s;
}

bool parseUnsigned(std::string_view digits, std::uint64_t max, std::uint64_t& out) {
  if (digits.empty() || digits.size() > 30) return false;
  std::uint64_t value = 0;
  for (char c : digits) {
    if (!isDigit(c)) return false;
    std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (digit > max || value > (max - digit) / 10) return false;  // no wrap-around when max < 9
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

bool parseRSeq(std::string_view text, std::uint32_t& out) {
  std::uint64_t value = 0;
  if (!parseUnsigned(trimLws(text), 0xffffffffu, value) || value == 0) return false;
  out = static_cast<std::uint32_t>(value);
  return true;
}

bool parseRAck(std::string_view text, RAck& out) {
  // Three fields separated by linear white space; nothing else.
  std::string_view fields[3];
  std::string_view s = trimLws(text);
  for (auto& field : fields) {
    std::size_t end = 0;
    while (end < s.size() && !isLws(s[end])) ++end;
    if (end == 0) return false;
    field = s.substr(0, end);
    s = trimLws(s.substr(end));
  }
  if (!s.empty()) return false;
  std::uint64_t cseq = 0;
  if (!parseRSeq(fields[0], out.rseq) || !parseUnsigned(fields[1], 0xffffffffu, cseq)) return false;
  for (char c : fields[2]) {
    if (!isTokenChar(c)) return false;
  }
  out.cseq = static_cast<std::uint32_t>(cseq);
  out.method = fields[2];
  return true;
}

std::string_view withoutUriHeaders(std::string_view uri) { return uri.substr(0, uri.find('?')); }

bool Uri::isSip() const { return iequals(scheme, "sip") || iequals(scheme, "sips"); }

bool parseUri(std::string_view text, Uri& out) {
  out = Uri{};
  std::size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  out.scheme = text.substr(0, colon);
  if (!isAlpha(out.scheme[0])) return false;
  for (char c : out.scheme) {
    if (!(isAlpha(c) || isDigit(c) || c == '+' || c == '-' || c == '.')) return false;
  }
  std::string_view rest = text.substr(colon + 1);
  if (rest.empty()) return false;
  for (char c : rest) {
    // No whitespace, angle brackets or quotes inside any URI we accept.
    if (static_cast<unsigned char>(c) <= ' ' || c == '<' || c == '>' || c == '"' || c == 0x7f) return false;
  }
  if (!out.isSip()) {
    if (iequals(out.scheme, "tel")) {
      std::size_t semi = rest.find(';');
      out.user = rest.substr(0, semi);
      if (out.user.empty()) return false;
      if (semi != std::string_view::npos) out.params = rest.substr(semi);
    }
    return true;  // other schemes stay opaque
  }
  // The user part may contain '?', ';' and '/' (user-unreserved), while '@' appears nowhere
  // else unescaped, so the userinfo ends at the first '@' and the headers start at the first
  // '?' after it (RFC 3261 §25.1, RFC 4475 §3.1.1.2).
  std::size_t at = rest.find('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    if (userinfo.empty()) return false;
    out.user = userinfo.substr(0, userinfo.find(':'));
    rest = rest.substr(at + 1);
  }
  std::size_t question = rest.find('?');
  if (question != std::string_view::npos) {
    out.headers = rest.substr(question + 1);
    rest = rest.substr(0, question);
  }
  if (!parseHostPort(rest, out.host, out.port, out.ipv6)) return false;
  if (!rest.empty()) {
    if (rest[0] != ';') return false;
    out.params = rest;
    std::string_view scan = rest;
    if (!scanParams(scan, "") || !scan.empty()) return false;
  }
  return true;
}

bool parseNameAddr(std::string_view text, NameAddr& out) {
  out = NameAddr{};
  std::string_view s = trimLws(text);
  if (s.empty()) return false;
  std::size_t i = 0;
  std::string_view after;
  if (s[0] == '"' || s.find('<') != std::string_view::npos) {
    // name-addr: [display-name] LAQUOT addr-spec RAQUOT
    if (s[0] == '"') {
      i = 1;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\') ++i;
        ++i;
      }
      if (i >= s.size()) return false;  // unbalanced quote
      out.display = s.substr(0, i + 1);
      ++i;
      while (i < s.size() && isLws(s[i])) ++i;
      if (i >= s.size() || s[i] != '<') return false;
    } else {
      std::size_t lt = s.find('<');
      std::string_view display = trimLws(s.substr(0, lt));
      for (char c : display) {
        if (!(isTokenChar(c) || isLws(c))) return false;  // e.g. "Bell, Alexander" unquoted
      }
      out.display = display;
      i = lt;
    }
    std::size_t gt = s.find('>', i);
    if (gt == std::string_view::npos) return false;
    out.uri = s.substr(i + 1, gt - i - 1);
    if (out.uri.empty() || isLws(out.uri.front()) || isLws(out.uri.back())) return false;
    out.bracketed = true;
    after = s.substr(gt + 1);
  } else {
    // addr-spec: the URI cannot contain ';', ',' or '?' here; they belong to the header.
    std::size_t end = 0;
    while (end < s.size() && s[end] != ';' && !isLws(s[end])) ++end;
    out.uri = s.substr(0, end);
    if (out.uri.find('?') != std::string_view::npos) return false;
    after = s.substr(end);
  }
  Uri uri;
  if (!parseUri(out.uri, uri)) return false;
  std::string_view params = after;
  if (!scanParams(params, "")) return false;
  if (!trimLws(params).empty()) return false;
  out.params = trimLws(after);
  out.tag = paramValue(out.params, "tag");
  return true;
}

bool parseVia(std::string_view text, Via& out, std::string_view& rest) {
  out = Via{};
  std::string_view s = trimLws(text);
  const std::string_view whole = s;
  // sent-protocol: "SIP" SLASH "2.0" SLASH transport, LWS allowed around the slashes.
  auto takeToken = [&](std::string_view& src) -> std::string_view {
    std::size_t n = 0;
    while (n < src.size() && isTokenChar(src[n])) ++n;
    std::string_view tok = src.substr(0, n);
    src.remove_prefix(n);
    return tok;
  };
  auto skipLws = [](std::string_view& src) {
    while (!src.empty() && isLws(src.front())) src.remove_prefix(1);
  };
  auto expectSlash = [&](std::string_view& src) {
    skipLws(src);
    if (src.empty() || src.front() != '/') return false;
    src.remove_prefix(1);
    skipLws(src);
    return true;
  };
  std::string_view name = takeToken(s);
  if (!iequals(name, "SIP") || !expectSlash(s)) return false;
  // protocol-version is any token: a Via of an unknown SIP version must still parse, so that
  // the request can be answered 505 (RFC 3261 §25.1, RFC 4475 §3.1.2.16).
  std::string_view version = takeToken(s);
  if (version.empty() || !expectSlash(s)) return false;
  out.transport = takeToken(s);
  if (out.transport.empty()) return false;
  if (s.empty() || !isLws(s.front())) return false;
  skipLws(s);
  bool ipv6 = false;
  if (!parseHostPort(s, out.host, out.port, ipv6)) return false;
  std::string_view params_start = s;
  if (!scanParams(s, ",")) return false;
  out.params = trimLws(params_start.substr(0, params_start.size() - s.size()));
  bool found = false;
  out.branch = paramValue(out.params, "branch");
  out.received = paramValue(out.params, "received");
  out.rport = paramValue(out.params, "rport", &found);
  out.has_rport = found;
  out.text = trimLws(whole.substr(0, whole.size() - s.size()));
  skipLws(s);
  if (s.empty()) {
    rest = {};
    return true;
  }
  if (s.front() != ',') return false;
  s.remove_prefix(1);
  rest = trimLws(s);
  return !rest.empty();  // a trailing comma leaves an empty via-parm
}

bool splitList(std::string_view text, std::vector<std::string_view>& out) {
  std::size_t start = 0;
  bool in_quote = false;
  bool in_angle = false;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || (!in_quote && !in_angle && text[i] == ',')) {
      std::string_view element = trimLws(text.substr(start, i - start));
      if (element.empty()) return false;
      out.push_back(element);
      start = i + 1;
      continue;
    }
    char c = text[i];
    if (in_quote) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_quote = false;
    } else if (c == '"') {
      in_quote = true;
    } else if (c == '<') {
      if (in_angle) return false;
      in_angle = true;
    } else if (c == '>') {
      if (!in_angle) return false;
      in_angle = false;
    }
  }
  return !in_quote && !in_angle;
}

std::string_view paramValue(std::string_view params, std::string_view name, bool* found) {
  if (found) *found = false;
  std::size_t i = 0;
  bool in_quote = false;
  while (i < params.size()) {
    if (params[i] == '"') in_quote = !in_quote;
    if (in_quote || params[i] != ';') {
      ++i;
      continue;
    }
    std::size_t start = i + 1;
    while (start < params.size() && isLws(params[start])) ++start;
    std::size_t end = start;
    while (end < params.size() && isTokenChar(params[end])) ++end;
    std::string_view pname = params.substr(start, end - start);
    std::size_t k = end;
    while (k < params.size() && isLws(params[k])) ++k;
    std::string_view value;
    std::size_t next = k;
    if (k < params.size() && params[k] == '=') {
      std::size_t v = k + 1;
      while (v < params.size() && isLws(params[v])) ++v;
      std::size_t ve = v;
      if (ve < params.size() && params[ve] == '"') {
        ++ve;
        while (ve < params.size() && params[ve] != '"') ve += (params[ve] == '\\') ? 2 : 1;
        ve = std::min(ve + 1, params.size());
      } else {
        while (ve < params.size() && params[ve] != ';' && params[ve] != ',' && !isLws(params[ve])) ++ve;
      }
      value = params.substr(v, ve - v);
      next = ve;
    }
    if (iequals(pname, name)) {
      if (found) *found = true;
      return value;
    }
    i = std::max(next, start);
  }
  return {};
}

}  // namespace palisade::sip
