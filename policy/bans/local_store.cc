#include "policy/bans/local_store.h"

#include <algorithm>

#include "core/net/endpoint.h"

namespace palisade::policy::bans {
namespace {

std::uint32_t seconds(base::Millis ms) {
  return static_cast<std::uint32_t>(std::max<base::Millis>(ms, 0) / 1000);
}

}  // namespace

std::uint64_t LocalStateStore::addressHash(const boost::asio::ip::address& address) const {
  auto canonical = net::canonicalAddress(address);
  if (canonical.is_v4()) {
    auto bytes = canonical.to_v4().to_bytes();
    return hash_(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  auto bytes = canonical.to_v6().to_bytes();
  return hash_(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::uint32_t LocalStateStore::countFailure(std::string_view key, base::Millis now, base::Millis window) {
  std::uint64_t hash = hash_(key);
  std::size_t slot = hash % kCountSlots;
  auto fingerprint = static_cast<std::uint32_t>(hash >> 32) | 1u;
  std::uint32_t now_s = seconds(now);
  std::uint32_t window_s = std::max<std::uint32_t>(seconds(window), 1);
  std::uint64_t current = count_keys_[slot].load(std::memory_order_acquire);
  std::uint64_t mine = (static_cast<std::uint64_t>(fingerprint) << 32) | now_s;
  if (static_cast<std::uint32_t>(current >> 32) == fingerprint &&
      now_s - static_cast<std::uint32_t>(current) < window_s) {
    return counts_[slot].fetch_add(1, std::memory_order_acq_rel) + 1;
  }
  // Another key, or this key's window is over: start a window (a race loses a count or two).
  if (count_keys_[slot].compare_exchange_strong(current, mine, std::memory_order_acq_rel)) {
    counts_[slot].store(1, std::memory_order_release);
    return 1;
  }
  return counts_[slot].fetch_add(1, std::memory_order_acq_rel) + 1;
}

bool LocalStateStore::banned(const boost::asio::ip::address& address, base::Millis now) const {
  return banned_.contains(addressHash(address), now);
}

std::optional<BanRecord> LocalStateStore::ban(const boost::asio::ip::address& address, base::Millis now,
                                              const BanSettings& settings, std::string_view reason) {
  auto canonical = net::canonicalAddress(address);
  BanRecord record;
  {
    std::lock_guard lock(mutex_);
    // Bounded: when a flood of bans from ever new addresses fills the table, the records of
    // bans that have ended go first (their strikes are forgotten).
    // The sweep runs at most once a second: a full table of live bans refuses new ones at the
    // cost of a lookup, not a sweep per attempt.
    if (records_.size() >= kMaxRecords && records_.find(canonical) == records_.end()) {
      if (now - last_prune_ < 1000) return std::nullopt;
      last_prune_ = now;
      for (auto it = records_.begin(); it != records_.end();) {
        it = it->second.until <= now ? records_.erase(it) : std::next(it);
      }
      if (records_.size() >= kMaxRecords) return std::nullopt;  // every record a live ban: no room
    }
    BanRecord& entry = records_[canonical];
    entry.address = canonical;
    // Already banned (a worker raced us); unless the lock-free table lost the entry to
    // eviction, in which case the ban is written again below.
    if (entry.until > now && banned_.contains(addressHash(canonical), now)) return std::nullopt;
    if (entry.until > now) {
      record = entry;
      banned_.insert(addressHash(canonical), record.until);
      return std::nullopt;
    }
    entry.strikes += 1;
    base::Millis duration = settings.duration_ms;
    for (std::uint32_t i = 1; i < entry.strikes && duration < settings.max_duration_ms; ++i) duration *= 2;
    entry.until = now + std::min(duration, settings.max_duration_ms);
    entry.reason = std::string(reason);
    active_[canonical] = entry.until;
    record = entry;
  }
  banned_.insert(addressHash(canonical), record.until);
  return record;
}

std::vector<BanRecord> LocalStateStore::bans(base::Millis now) const {
  std::lock_guard lock(mutex_);
  std::vector<BanRecord> out;
  for (const auto& [address, record] : records_) {
    if (record.until > now) out.push_back(record);
  }
  return out;
}

bool LocalStateStore::unban(const boost::asio::ip::address& address) {
  auto canonical = net::canonicalAddress(address);
  bool was = false;
  {
    std::lock_guard lock(mutex_);
    auto it = records_.find(canonical);
    if (it != records_.end()) {
      was = true;
      records_.erase(it);  // a manual unban forgives the strikes too
    }
    active_.erase(canonical);
  }
  banned_.erase(addressHash(canonical));
  return was;
}

std::vector<BanRecord> LocalStateStore::expired(base::Millis now) {
  std::lock_guard lock(mutex_);
  std::vector<BanRecord> out;
  for (auto it = active_.begin(); it != active_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    if (auto record = records_.find(it->first); record != records_.end()) out.push_back(record->second);
    it = active_.erase(it);
  }
  return out;
}

}  // namespace palisade::policy::bans
