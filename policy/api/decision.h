#pragma once
// What a policy stage decides about a request (DESIGN.md "Policy").
#include <cstdint>
#include <string>
#include <string_view>

namespace palisade::policy {

struct Decision {
  enum class Kind : std::uint8_t {
    Continue,   // the next stage, or the request goes ahead
    Reject,     // answer `status` `reason` with `headers`, statelessly
    Challenge,  // 401 (REGISTER) or 407 with the WWW-/Proxy-Authenticate line(s) in `headers`
    Drop,       // say nothing (scanners, attackers); the stage counts why
    Pending,    // the stage answers later through PendingSink::resume(token, ...)
  };
  Kind kind = Kind::Continue;
  int status = 0;
  std::string reason;
  std::string headers;      // complete header lines, each ending in CRLF
  std::uint64_t token = 0;  // Pending: names the request when the stage resumes it

  static Decision proceed() { return {}; }
  static Decision reject(int status, std::string_view reason, std::string_view headers = {}) {
    return Decision{Kind::Reject, status, std::string(reason), std::string(headers), 0};
  }
  // `status` is 401 or 407; `header_lines` the challenge(s), strongest algorithm first.
  static Decision challenge(int status, std::string_view header_lines) {
    return Decision{Kind::Challenge, status, status == 401 ? "Unauthorized" : "Proxy Authentication Required",
                    std::string(header_lines), 0};
  }
  static Decision drop() { return Decision{Kind::Drop, 0, {}, {}, 0}; }
  static Decision pending(std::uint64_t token) { return Decision{Kind::Pending, 0, {}, {}, token}; }
};

}  // namespace palisade::policy
