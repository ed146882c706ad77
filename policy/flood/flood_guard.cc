#include "policy/flood/flood_guard.h"

#include <bit>
#include <cstring>

#include "core/sip/headers.h"
#include "policy/auth/digest.h"

namespace palisade::policy::flood {

namespace {

constexpr std::size_t kProbes = 8;

std::array<std::uint64_t, 2> keyOf(const boost::asio::ip::address& address) {
  std::array<std::uint64_t, 2> key{};
  boost::asio::ip::address canonical = net::canonicalAddress(address);
  if (canonical.is_v4()) {
    key[1] = 0xffff00000000ull | canonical.to_v4().to_uint();
  } else {
    // An IPv6 host has a /64 to choose its addresses from: the /64 is the source.
    auto bytes = canonical.to_v6().to_bytes();
    std::memcpy(key.data(), bytes.data(), 8);
  }
  return key;
}

// The name a request claims: the AOR a REGISTER binds, the caller an INVITE comes from.
std::string_view claimedName(const sip::Message& message) {
  sip::Uri uri;
  std::string_view text = message.method() == sip::Method::Register ? message.to().uri : message.from().uri;
  if (!sip::parseUri(text, uri)) return {};
  return uri.user;
}

// Credentials for our realm: what a phone sends back. Any other Authorization line (a
// scanner's decoy) does not answer a challenge.
bool answersChallenge(const sip::Message& message, std::string_view realm) {
  std::string_view header =
      message.method() == sip::Method::Register ? "Authorization" : "Proxy-Authorization";
  for (const auto& h : message.headers()) {
    if (h.id != sip::Hdr::Other || !sip::iequals(h.name, header)) continue;
    auth::DigestCredentials credentials;
    if (auth::parseDigestCredentials(h.value, credentials) && credentials.realm == realm) return true;
  }
  return false;
}

void setBit(std::array<std::uint64_t, 2>& bits, std::uint64_t hash) {
  unsigned bit = static_cast<unsigned>(hash % 128);
  bits[bit / 64] |= std::uint64_t{1} << (bit % 64);
}

}  // namespace

ErrorKey errorKey(const boost::asio::ip::address& address) {
  ErrorKey out;
  std::array<std::uint64_t, 2> key = keyOf(address);
  std::memcpy(out.bytes.data(), "err:", 4);
  std::memcpy(out.bytes.data() + 4, key.data(), sizeof key);
  return out;
}

RequestClass classify(const sip::Message& message) {
  if (!message.isRequest()) return RequestClass::InDialog;
  sip::Method method = message.method();
  // ACK and CANCEL belong to an INVITE transaction already under way.
  if (!message.toTag().empty() || method == sip::Method::Ack || method == sip::Method::Cancel)
    return RequestClass::InDialog;
  if (method == sip::Method::Invite) return RequestClass::Invite;
  if (method == sip::Method::Register) return RequestClass::Register;
  return RequestClass::Other;
}

bool isScannerAgent(std::string_view user_agent, const std::vector<std::string>& agents) {
  // Scanners put their name first; a long header is not searched to its end (it may be up to
  // sip.max_line_bytes, and this runs for every request from the internet). Lower-cased once
  // on the stack, then each agent is one find.
  std::array<char, 256> lower{};
  std::size_t size = std::min(user_agent.size(), lower.size());
  for (std::size_t i = 0; i < size; ++i) {
    char c = user_agent[i];
    lower[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  std::string_view text(lower.data(), size);
  for (const std::string& agent : agents) {
    if (text.find(agent) != std::string_view::npos) return true;
  }
  return false;
}

FloodGuard::FloodGuard() : sources_(kSlots) {}

FloodGuard::Source& FloodGuard::lookup(const boost::asio::ip::address& address, base::Millis now) {
  std::array<std::uint64_t, 2> key = keyOf(address);
  std::uint64_t hash = hash_(std::string_view(reinterpret_cast<const char*>(key.data()), sizeof key));
  std::size_t start = hash % kSlots;
  Source* victim = nullptr;
  for (std::size_t probe = 0; probe < kProbes; ++probe) {
    Source& slot = sources_[(start + probe) % kSlots];
    if (slot.used && slot.address == key) {
      slot.last_seen = now;
      return slot;
    }
    if (!slot.used) {
      if (victim == nullptr || victim->used) victim = &slot;
    } else if (victim == nullptr || (victim->used && slot.last_seen < victim->last_seen)) {
      victim = &slot;
    }
  }
  // A new source takes a free slot, else the least recently seen of its neighbourhood.
  *victim = Source{};
  victim->address = key;
  victim->used = true;
  victim->last_seen = now;
  victim->excess_since = now;
  victim->names_since = now;
  return *victim;
}

bool FloodGuard::unansweredOver(Source& source, const sip::Message& message, const FloodSettings& settings,
                                base::Millis now) {
  if (settings.max_unanswered == 0) return false;
  sip::Method method = message.method();
  if (method != sip::Method::Register && method != sip::Method::Invite) return false;
  std::string_view name = claimedName(message);
  if (now - source.names_since >= settings.names_window_ms) {
    source.names_since = now;
    source.challenged = {};
    source.answered = {};
  }
  std::uint64_t hash = hash_(name);
  if (answersChallenge(message, settings.realm)) {
    setBit(source.answered, hash);
    return false;
  }
  setBit(source.challenged, hash);
  // A phone answers its challenge within a round trip, so its name leaves the difference at
  // once; a scanner moves on to the next name and the difference grows.
  int unanswered = std::popcount(source.challenged[0] & ~source.answered[0]) +
                   std::popcount(source.challenged[1] & ~source.answered[1]);
  return static_cast<std::uint32_t>(unanswered) > settings.max_unanswered;
}

ScreenResult FloodGuard::screen(const net::Flow& flow, PeerKind kind, const sip::Message& message,
                                const FloodSettings& settings, base::Millis now) {
  ScreenResult result;
  bool internet = kind != PeerKind::Trunk && kind != PeerKind::Pbx;
  if (internet && !settings.scanner_agents.empty() && message.isRequest()) {
    const sip::HeaderField* agent = message.find(sip::Hdr::UserAgent);
    if (agent != nullptr && isScannerAgent(agent->value, settings.scanner_agents)) {
      result.verdict = Screen::Drop;
      result.reason = ScreenReason::ScannerAgent;
      result.ban = true;
      result.ban_reason = "a scanner's User-Agent";
      return result;
    }
  }
  const ClassRates& rates = kind == PeerKind::Pbx     ? settings.pbx
                            : kind == PeerKind::Trunk ? settings.trunk
                                                      : settings.internet;
  RequestClass request_class = classify(message);
  Source& source = lookup(flow.remote.address, now);
  auto index = static_cast<std::size_t>(request_class);
  if (!takeUnit(source.tat_us[index], microsOf(now), rates[index])) {
    result.reason = ScreenReason::RateLimited;
    if (now - source.excess_since >= settings.ban_window_ms) {
      source.excess_since = now;
      source.excess = 0;
    }
    ++source.excess;
    if (internet && settings.ban_excess != 0 && source.excess == settings.ban_excess) {
      result.ban = true;
      result.ban_reason = "requests over its rate limit";
    }
    // At most one answer per source per second, and never to an ACK or a response.
    bool answerable = message.isRequest() && message.method() != sip::Method::Ack;
    if (settings.reply_503 && answerable && now - source.last_reply >= 1000) {
      source.last_reply = now;
      result.verdict = Screen::Reply503;
    } else {
      result.verdict = Screen::Drop;
    }
    return result;
  }
  if (internet && unansweredOver(source, message, settings, now)) {
    result.verdict = Screen::Drop;
    result.reason = ScreenReason::ExtensionScan;
    result.ban = true;
    result.ban_reason = "names challenged and never answered (an extension scan)";
  }
  return result;
}

}  // namespace palisade::policy::flood
