#include "policy/bans/ban_source.h"

#include <atomic>

#include "core/base/log.h"
#include "core/net/endpoint.h"

namespace palisade::policy::bans {

namespace {

// Ban lines per second, across workers: enough for every real attacker, while a flood of
// forged sources cannot make the log the bottleneck (the bans themselves still happen, are
// counted, and GET /bans lists them).
constexpr std::uint32_t kLinesPerSecond = 50;
std::atomic<std::int64_t> line_second{0};
std::atomic<std::uint32_t> lines_this_second{0};
std::atomic<std::uint32_t> lines_skipped{0};

bool mayLog(base::Millis now) {
  std::int64_t second = now / 1000;
  std::int64_t seen = line_second.load(std::memory_order_relaxed);
  if (seen != second && line_second.compare_exchange_strong(seen, second, std::memory_order_relaxed)) {
    lines_this_second.store(0, std::memory_order_relaxed);
    if (std::uint32_t skipped = lines_skipped.exchange(0, std::memory_order_relaxed); skipped != 0)
      LOG_WARN("ban: {} more ban(s) in the last second not logged (GET /bans lists them)", skipped);
  }
  if (lines_this_second.fetch_add(1, std::memory_order_relaxed) < kLinesPerSecond) return true;
  lines_skipped.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace

std::optional<BanRecord> banSource(StateStore& store, const boost::asio::ip::address& address,
                                   base::Millis now, const BanSettings& settings, std::string_view reason) {
  auto banned = store.ban(address, now, settings, reason);
  if (!banned || !mayLog(now)) return banned;
  LOG_WARN("ban: {} for {} s (strike {}): {}", net::canonicalAddress(address).to_string(),
           (banned->until - now) / 1000, banned->strikes, reason);
  return banned;
}

}  // namespace palisade::policy::bans
