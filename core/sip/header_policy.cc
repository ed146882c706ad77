#include "core/sip/header_policy.h"

#include <algorithm>

#include <fmt/format.h>

namespace palisade::sip {
namespace {

constexpr std::size_t kMaxNameChars = 64;

// Compact forms (RFC 3261 §7.3.3, RFC 3515, RFC 3841, RFC 3892, RFC 4028, RFC 6665, RFC 8224).
constexpr std::pair<char, std::string_view> kCompact[] = {
    {'a', "accept-contact"},
    {'b', "referred-by"},
    {'c', "content-type"},
    {'d', "request-disposition"},
    {'e', "content-encoding"},
    {'f', "from"},
    {'i', "call-id"},
    {'j', "reject-contact"},
    {'k', "supported"},
    {'l', "content-length"},
    {'m', "contact"},
    {'n', "identity-info"},
    {'o', "event"},
    {'r', "refer-to"},
    {'s', "subject"},
    {'t', "to"},
    {'u', "allow-events"},
    {'v', "via"},
    {'x', "session-expires"},
    {'y', "identity"},
};

// Fields Palisade writes for each leg itself (dialog, routing, framing, extensions, product).
constexpr std::string_view kOwn[] = {
    "via",           "from",        "to",     "call-id",      "cseq",
    "max-forwards",  "contact",     "route",  "record-route", "content-length",
    "content-type",  "user-agent",  "server", "supported",    "require",
    "proxy-require", "unsupported", "rseq",   "rack",         "path",
    "service-route",
};

// Credentials and challenges: never cross (Palisade authenticates its side itself).
constexpr std::string_view kCredentials[] = {"authorization", "proxy-authorization", "www-authenticate",
                                             "proxy-authenticate", "authentication-info"};

const std::vector<std::string> kIdentityDefaults = {
    "P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID", "Diversion", "History-Info", "Privacy"};

template <std::size_t N>
bool contains(const std::string_view (&list)[N], std::string_view name) {
  return std::find(std::begin(list), std::end(list), name) != std::end(list);
}

bool isIdentityName(std::string_view canonical) {
  for (const auto& n : kIdentityDefaults) {
    if (canonicalHeaderName(n) == canonical) return true;
  }
  return false;
}

}  // namespace

std::optional<std::string> headerListProblem(std::string_view name, bool identity_list);

namespace {

// Names that may not be listed are left out even when the lists did not come through the
// config loader: credentials and our own fields can never be made to cross.
std::vector<std::string> canonicalSorted(const std::vector<std::string>& names, bool identity_list) {
  std::vector<std::string> out;
  for (const auto& n : names) {
    if (headerListProblem(n, identity_list)) continue;
    out.push_back(canonicalHeaderName(n));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool sortedContains(const std::vector<std::string>& names, std::string_view name) {
  auto it = std::lower_bound(names.begin(), names.end(), name, [](const std::string& a, std::string_view b) {
    return std::string_view(a) < b;
  });
  return it != names.end() && *it == name;
}

// Lower-cases `name` into `buffer` with compact forms expanded; empty when it is no header name.
std::string_view canonicalInto(std::string_view name, std::array<char, kMaxNameChars>& buffer) {
  if (name.empty() || name.size() > kMaxNameChars) return {};
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!isTokenChar(name[i])) return {};
    char c = name[i];
    buffer[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
  }
  if (name.size() == 1) {
    for (const auto& [letter, full] : kCompact) {
      if (letter == buffer[0]) return full;
    }
  }
  return std::string_view(buffer.data(), name.size());
}

}  // namespace

std::string canonicalHeaderName(std::string_view name) {
  std::array<char, kMaxNameChars> buffer{};
  return std::string(canonicalInto(name, buffer));
}

const std::vector<std::string>& defaultIdentityHeaders() { return kIdentityDefaults; }

std::optional<std::string> headerListProblem(std::string_view name, bool identity_list) {
  std::string canonical = canonicalHeaderName(name);
  if (canonical.empty())
    return fmt::format("is not a header name (a token of at most {} characters)", kMaxNameChars);
  if (contains(kCredentials, canonical))
    return std::string("credentials and challenges never cross the B2BUA");
  if (contains(kOwn, canonical)) return std::string("Palisade writes this header for each leg itself");
  if (!identity_list && isIdentityName(canonical))
    return std::string("is an identity header: list it in headers.identity (copied only from trusted peers)");
  return std::nullopt;
}

HeaderPolicy::HeaderPolicy(const std::vector<std::string>& to_pbx, const std::vector<std::string>& to_public,
                           const std::vector<std::string>& identity) {
  names_[static_cast<int>(net::Side::Pbx)] = canonicalSorted(to_pbx, false);
  names_[static_cast<int>(net::Side::Public)] = canonicalSorted(to_public, false);
  identity_ = canonicalSorted(identity, true);
  // Scanned ids: the fields Palisade writes are never copied; the rest go by name.
  for (auto& table : by_id_) {
    table.fill(kByName);
    for (std::size_t id = 0; id < table.size(); ++id) {
      switch (static_cast<Hdr>(id)) {
        case Hdr::Other:
        case Hdr::Allow:
        case Hdr::Warning:
        case Hdr::ReplyTo:
        case Hdr::ErrorInfo:
        case Hdr::CallInfo:
        case Hdr::Organization:
        case Hdr::Timestamp:
        case Hdr::kCount:
          break;
        default:
          table[id] = kNever;
          break;
      }
    }
  }
}

bool HeaderPolicy::listed(std::string_view canonical, net::Side to, bool identity_trusted) const {
  if (sortedContains(identity_, canonical)) return identity_trusted;
  return sortedContains(names_[static_cast<int>(to)], canonical);
}

bool HeaderPolicy::crosses(const HeaderField& field, net::Side to, bool identity_trusted) const {
  std::uint8_t verdict = by_id_[static_cast<int>(to)][static_cast<std::size_t>(field.id)];
  if (verdict == kNever) return false;
  std::array<char, kMaxNameChars> buffer{};
  std::string_view canonical = canonicalInto(field.name, buffer);
  if (canonical.empty()) return false;
  return listed(canonical, to, identity_trusted);
}

}  // namespace palisade::sip
