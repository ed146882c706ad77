#pragma once
// What policy learns about sources and shares across workers (DESIGN.md "Beyond one
// machine"): failure counts and the ban list, behind one small interface, so that a store
// shared by several nodes (Redis) can replace the in-process one without touching the stages.
// Every method may be called from any worker; the per-packet ones (banned) never block.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "core/base/clock.h"

namespace palisade::policy::bans {

struct BanSettings {
  std::uint32_t threshold = 5;  // failures in the window that ban
  base::Millis window_ms = 60'000;
  base::Millis duration_ms = 600'000;  // the first ban; each repeat doubles it
  base::Millis max_duration_ms = 86'400'000;
};

struct BanRecord {
  boost::asio::ip::address address;
  base::Millis until = 0;     // on the monotonic clock
  std::uint32_t strikes = 0;  // bans so far (the duration doubles with each)
  std::string reason;
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  // One more failure for `key` ("ip:192.0.2.1", "user:2001"); the count within the window
  // that ends now.
  virtual std::uint32_t countFailure(std::string_view key, base::Millis now, base::Millis window) = 0;
  // Bans `address` for the next duration of its escalation and returns the record; nothing
  // when it is banned already (another worker got there first).
  virtual std::optional<BanRecord> ban(const boost::asio::ip::address& address, base::Millis now,
                                       const BanSettings& settings, std::string_view reason) = 0;
  // Per packet, lock-free.
  virtual bool banned(const boost::asio::ip::address& address, base::Millis now) const = 0;
  virtual std::vector<BanRecord> bans(base::Millis now) const = 0;
  // Lifts a ban and forgives its strikes; false when nothing was recorded for the address.
  virtual bool unban(const boost::asio::ip::address& address) = 0;
  // The bans that have ended since the last call (for the unban log line); control thread.
  virtual std::vector<BanRecord> expired(base::Millis now) = 0;
};

}  // namespace palisade::policy::bans
