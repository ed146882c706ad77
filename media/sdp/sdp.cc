#include "media/sdp/sdp.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <iterator>

#include <fmt/format.h>

namespace palisade::media::sdp {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return (x | 0x20) == (y | 0x20); });
}

bool istartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// Splits on single spaces (RFC 8866 fields are separated by exactly one; tolerate runs).
std::size_t tokens(std::string_view s, std::string_view* out, std::size_t max) {
  std::size_t n = 0;
  std::size_t i = 0;
  while (i < s.size() && n < max) {
    while (i < s.size() && s[i] == ' ') ++i;
    if (i >= s.size()) break;
    std::size_t j = s.find(' ', i);
    if (j == std::string_view::npos || n + 1 == max) j = s.size();
    out[n++] = s.substr(i, j - i);
    i = j;
  }
  return n;
}

bool parsePort(std::string_view s, std::uint16_t& out) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

bool parseConnection(std::string_view value, Connection& out) {
  std::string_view t[3];
  if (tokens(value, t, 3) != 3 || t[0] != "IN") return false;
  if (t[1] == "IP4") {
    out.ipv6 = false;
  } else if (t[1] == "IP6") {
    out.ipv6 = true;
  } else {
    return false;
  }
  std::string_view address = t[2];
  // Multicast TTL and address count (c=IN IP4 224.2.1.1/127/3) are not part of the address.
  if (std::size_t slash = address.find('/'); slash != std::string_view::npos)
    address = address.substr(0, slash);
  if (address.empty()) return false;
  out.address = address;
  return true;
}

std::optional<Direction> directionOf(std::string_view attribute) {
  if (attribute == "sendrecv") return Direction::SendRecv;
  if (attribute == "sendonly") return Direction::SendOnly;
  if (attribute == "recvonly") return Direction::RecvOnly;
  if (attribute == "inactive") return Direction::Inactive;
  return std::nullopt;
}

// RFC 8866 token (attribute names, formats, media and protocol names).
bool isToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`{|}~/").find(c) != std::string_view::npos;
  });
}

base::Error fail(std::string message) { return base::Error{std::move(message)}; }

// Attributes that name the sender's addresses, keys or software, or that only make sense
// between the two original ends: never copied across (the ones of ours are written anew).
bool dropAttribute(std::string_view name) {
  static constexpr std::string_view kDropped[] = {"candidate",
                                                  "remote-candidates",
                                                  "end-of-candidates",
                                                  "ice-ufrag",
                                                  "ice-pwd",
                                                  "ice-options",
                                                  "ice-lite",
                                                  "ice-mismatch",
                                                  "ice-pacing",
                                                  "rtcp",
                                                  "rtcp-mux",
                                                  "rtcp-mux-only",
                                                  "crypto",
                                                  "fingerprint",
                                                  "setup",
                                                  "connection",
                                                  "tls-id",
                                                  "tool",
                                                  "group",
                                                  "alt",
                                                  "alt-group",
                                                  "record",
                                                  "label",
                                                  "identity"};
  for (auto d : kDropped) {
    if (iequals(name, d)) return true;
  }
  // Vendor extensions (some carry addresses), every ICE attribute, and names that are not
  // RFC 8866 tokens (nothing downstream should have to guess what they mean).
  if (istartsWith(name, "x-") || istartsWith(name, "ice-") || name.empty()) return true;
  return !isToken(name);
}

std::string_view attributeName(std::string_view line) {
  // line is "a=name[:value]"
  std::string_view rest = line.substr(2);
  return rest.substr(0, rest.find(':'));
}

}  // namespace

std::string_view directionName(Direction d) {
  switch (d) {
    case Direction::SendRecv:
      return "sendrecv";
    case Direction::SendOnly:
      return "sendonly";
    case Direction::RecvOnly:
      return "recvonly";
    case Direction::Inactive:
      return "inactive";
  }
  return "sendrecv";
}

const Connection* SessionDescription::connectionFor(std::size_t i) const {
  if (i < media.size() && media[i].connection) return &*media[i].connection;
  return connection ? &*connection : nullptr;
}

Direction SessionDescription::directionFor(std::size_t i) const {
  if (i < media.size() && media[i].direction) return *media[i].direction;
  return direction.value_or(Direction::SendRecv);
}

base::Result<SessionDescription> parse(std::string_view body, const Limits& limits) {
  SessionDescription sd;
  bool seen_version = false;
  bool seen_origin = false;
  std::size_t count = 0;
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t end = body.find('\n', pos);
    std::string_view line =
        body.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? body.size() : end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;  // a trailing blank line is common; tolerate any
    if (++count > limits.max_lines) return fail("too many lines");
    if (line.size() < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z')
      return fail("not a type=value line");
    // A bare CR or another control character would end the line for some parser downstream
    // and smuggle what follows past the writer's filter.
    if (std::any_of(line.begin(), line.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 && c != '\t'; }))
      return fail("control character in a line");
    char type = line[0];
    std::string_view value = line.substr(2);
    if (!seen_version) {
      if (type != 'v' || value != "0") return fail("does not start with v=0");
      seen_version = true;
      continue;
    }
    MediaSection* m = sd.media.empty() ? nullptr : &sd.media.back();
    switch (type) {
      case 'v':
        return fail("a second v= line");
      case 'o': {
        std::string_view t[6];
        if (m != nullptr || seen_origin || tokens(value, t, 6) != 6) return fail("bad o= line");
        sd.origin_username = t[0];
        sd.session_id = t[1];
        sd.session_version = t[2];
        seen_origin = true;
        break;
      }
      case 'c': {
        Connection c;
        if (!parseConnection(value, c)) return fail("bad c= line");
        if (m != nullptr) {
          m->connection = c;
        } else {
          sd.connection = c;
        }
        break;
      }
      case 'm': {
        if (sd.media.size() >= limits.max_media) return fail("too many m= sections");
        std::string_view t[4];
        if (tokens(value, t, 4) != 4) return fail("bad m= line");
        MediaSection section;
        section.kind = t[0];
        std::string_view port = t[1];
        if (std::size_t slash = port.find('/'); slash != std::string_view::npos) {
          std::uint16_t n = 0;
          if (!parsePort(port.substr(slash + 1), n) || n == 0) return fail("bad port count in m= line");
          section.port_count = n;
          port = port.substr(0, slash);
        }
        if (!parsePort(port, section.port)) return fail("bad port in m= line");
        section.proto = t[2];
        section.formats = t[3];
        if (!isToken(section.kind) || !isToken(section.proto))
          return fail("bad media or protocol in m= line");
        for (std::size_t at = 0; at < section.formats.size();) {
          std::size_t next = section.formats.find(' ', at);
          if (next == std::string_view::npos) next = section.formats.size();
          if (next > at && !isToken(section.formats.substr(at, next - at)))
            return fail("bad format in m= line");
          at = next + 1;
        }
        sd.media.push_back(section);
        break;
      }
      case 'a': {
        std::string_view name = value.substr(0, value.find(':'));
        std::string_view attr =
            name.size() < value.size() ? value.substr(name.size() + 1) : std::string_view();
        if (auto d = directionOf(name)) {
          if (m != nullptr) {
            m->direction = d;
          } else {
            sd.direction = d;
          }
        } else if (m != nullptr && name == "rtcp-mux") {
          m->rtcp_mux = true;
        } else if (m != nullptr && name == "rtcp") {
          std::uint16_t p = 0;
          std::string_view first = attr.substr(0, attr.find(' '));
          if (!parsePort(first, p)) return fail("bad a=rtcp port");
          m->rtcp_port = p;
        } else if (m != nullptr && name == "crypto") {
          m->crypto.push_back(attr);
        } else if (m != nullptr && name == "fingerprint") {
          m->dtls = true;  // a session-level one is applied to every section after the parse
        }
        if (m != nullptr) {
          m->lines.push_back(line);
        } else {
          sd.lines.push_back(line);
        }
        break;
      }
      default:
        if (m != nullptr) {
          m->lines.push_back(line);
        } else {
          sd.lines.push_back(line);
        }
    }
  }
  if (!seen_version) return fail("empty");
  if (!seen_origin) return fail("no o= line");
  // A session-level fingerprint applies to every section (RFC 8842 §5).
  bool session_dtls = std::any_of(sd.lines.begin(), sd.lines.end(),
                                  [](std::string_view l) { return l.starts_with("a=fingerprint:"); });
  for (std::size_t i = 0; i < sd.media.size(); ++i) {
    MediaSection& m = sd.media[i];
    m.dtls = m.dtls || session_dtls;
    if (!m.rejected() && sd.connectionFor(i) == nullptr) return fail("a media section without c=");
  }
  return sd;
}

std::string write(const SessionDescription& in, const Plan& plan) {
  std::string out;
  out.reserve(256 + 160 * in.media.size());
  const char* ip = plan.ipv6 ? "IP6" : "IP4";
  auto it = std::back_inserter(out);
  fmt::format_to(it, "v=0\r\no=palisade {} {} IN {} {}\r\ns=-\r\nc=IN {} {}\r\n", plan.session_id,
                 plan.session_version, ip, plan.address, ip, plan.address);
  // t= is mandatory and comes before the session attributes; one missing is repaired.
  bool timing = std::any_of(in.lines.begin(), in.lines.end(), [](std::string_view l) { return l[0] == 't'; });
  for (std::string_view line : in.lines) {
    char type = line[0];
    // i=, u=, e=, p= describe the other side's operator; k= is a key; c= is replaced.
    if (type != 't' && type != 'r' && type != 'z' && type != 'b' && type != 'a') continue;
    if (type == 'a' && dropAttribute(attributeName(line))) continue;
    if (type == 'a' && !timing) {
      out.append("t=0 0\r\n");
      timing = true;
    }
    out.append(line).append("\r\n");
  }
  if (!timing) out.append("t=0 0\r\n");
  for (std::size_t i = 0; i < in.media.size(); ++i) {
    const MediaSection& m = in.media[i];
    MediaPlan none;
    none.reject = true;
    const MediaPlan& p = i < plan.media.size() ? plan.media[i] : none;
    if (p.reject) {
      fmt::format_to(it, "m={} 0 {} {}\r\n", m.kind, p.proto.empty() ? m.proto : p.proto, m.formats);
      continue;
    }
    fmt::format_to(it, "m={} {} {} {}\r\n", m.kind, p.port, p.proto, m.formats);
    if (p.hold_address) fmt::format_to(it, "c=IN {} {}\r\n", ip, plan.ipv6 ? "::" : "0.0.0.0");
    for (std::string_view line : m.lines) {
      char type = line[0];
      if (type != 'b' && type != 'a') continue;  // i=, k=, c= as above
      if (type == 'a' && dropAttribute(attributeName(line))) continue;
      out.append(line).append("\r\n");
    }
    if (p.rtcp_mux) {
      out.append("a=rtcp-mux\r\n");
    } else {
      fmt::format_to(it, "a=rtcp:{}\r\n", p.rtcp_port);
    }
    for (const auto& c : p.crypto) fmt::format_to(it, "a=crypto:{}\r\n", c);
  }
  return out;
}

}  // namespace palisade::media::sdp
