#pragma once
// Flood defence on the receiving worker, after the scan and before the hand-off to the call's
// owner (DESIGN.md "Policy": the per-packet part). Per source address and request class, a
// rate limit for the source's peer class (the internet, a trunk, the PBX); scanner
// User-Agents; sources that collect challenges they never answer (extension scans). A source
// of the internet that keeps exceeding its limits is banned through the ban list; trunks and
// the PBX are only ever limited, never banned.
//
// One FloodGuard per worker, used only on that worker: its table needs no lock. A source whose
// packets reach several workers (several source ports under SO_REUSEPORT) is limited on each.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/clock.h"
#include "core/base/expiring_set.h"
#include "core/net/endpoint.h"
#include "core/sip/message.h"
#include "policy/api/filters.h"
#include "policy/api/rate.h"
#include "policy/api/request_context.h"

namespace palisade::policy::flood {

// What a message asks of Palisade, for rate limiting.
enum class RequestClass : std::uint8_t { Invite, Register, Other, InDialog, kCount };
RequestClass classify(const sip::Message& message);

using ClassRates = std::array<Rate, static_cast<std::size_t>(RequestClass::kCount)>;

struct FloodSettings {
  bool reply_503 = false;  // over the limit: a 503 (at most one per source per second) instead of silence
  ClassRates internet{};   // users and strangers
  ClassRates trunk{};
  ClassRates pbx{};
  std::uint32_t ban_excess = 100;  // messages over the limit within ban_window_ms that ban (0: never)
  base::Millis ban_window_ms = 10'000;
  std::vector<std::string> scanner_agents;  // lower case; a User-Agent containing one is a scanner
  std::uint32_t max_unanswered = 10;        // distinct names challenged and never answered, per window
  base::Millis names_window_ms = 60'000;
  std::string realm = "palisade";        // credentials for it answer a challenge
  base::Millis overload_lag_ms = 200;    // a worker whose loop lags this much is overloaded
  unsigned overload_queue_percent = 50;  // or whose inbox is this full
};

// Why a message was screened out (the caller counts it).
enum class ScreenReason : std::uint8_t { None, RateLimited, ScannerAgent, ExtensionScan };

struct ScreenResult {
  Screen verdict = Screen::Pass;
  ScreenReason reason = ScreenReason::None;
  bool ban = false;  // the caller bans the source (its limits were exceeded for too long)
  std::string_view ban_reason;
};

class FloodGuard {
 public:
  static constexpr std::size_t kSlots = 16384;  // sources tracked per worker (least recent go first)

  FloodGuard();
  // `kind` is the source's peer class (Unknown: the internet).
  ScreenResult screen(const net::Flow& flow, PeerKind kind, const sip::Message& message,
                      const FloodSettings& settings, base::Millis now);

 private:
  struct Source {
    std::array<std::uint64_t, 2> address{};
    bool used = false;
    base::Millis last_seen = 0;
    std::array<std::int64_t, static_cast<std::size_t>(RequestClass::kCount)> tat_us{};
    base::Millis excess_since = 0;
    std::uint32_t excess = 0;
    base::Millis last_reply = -1'000'000;
    // Names challenged (no credentials) and names answered (credentials), as bit sets: the
    // difference is what an extension scanner leaves behind.
    base::Millis names_since = 0;
    std::array<std::uint64_t, 2> challenged{};
    std::array<std::uint64_t, 2> answered{};
  };
  Source& lookup(const boost::asio::ip::address& address, base::Millis now);
  bool unansweredOver(Source& source, const sip::Message& message, const FloodSettings& settings,
                      base::Millis now);

  base::KeyedHash hash_;
  std::vector<Source> sources_;
};

// What a source's errors are counted under in the state store: "err:" and the address (an IPv6
// source's /64) as bytes, built on the stack (this runs for every malformed packet).
struct ErrorKey {
  std::array<char, 20> bytes{};
  std::string_view view() const { return {bytes.data(), bytes.size()}; }
};
ErrorKey errorKey(const boost::asio::ip::address& address);

// Whether `user_agent` contains one of `agents` (lower case), ignoring case.
bool isScannerAgent(std::string_view user_agent, const std::vector<std::string>& agents);

}  // namespace palisade::policy::flood
