#pragma once
// The in-process StateStore. The per-packet check is a keyed-hash table of atomics (a 32-bit
// fingerprint and the ban's end in one word), so workers read it without a lock; failure
// counts are another such table (approximate under collisions, which only ever err toward
// counting more). The list of bans with their strikes and reasons, which only banning and the
// management endpoint touch, is behind a mutex: banning is rare and never per packet.
#include <array>
#include <atomic>
#include <map>
#include <mutex>

#include "core/base/expiring_set.h"
#include "policy/bans/state_store.h"

namespace palisade::policy::bans {

class LocalStateStore final : public StateStore {
 public:
  static constexpr std::size_t kBanSlots = 16384;
  static constexpr std::size_t kCountSlots = 65536;
  static constexpr std::size_t kMaxRecords = 65536;  // ban records kept (live bans and strikes)

  std::uint32_t countFailure(std::string_view key, base::Millis now, base::Millis window) override;
  std::optional<BanRecord> ban(const boost::asio::ip::address& address, base::Millis now,
                               const BanSettings& settings, std::string_view reason) override;
  bool banned(const boost::asio::ip::address& address, base::Millis now) const override;
  std::vector<BanRecord> bans(base::Millis now) const override;
  bool unban(const boost::asio::ip::address& address) override;
  std::vector<BanRecord> expired(base::Millis now) override;

 private:
  std::uint64_t addressHash(const boost::asio::ip::address& address) const;

  base::KeyedHash hash_;
  base::ExpiringSet<kBanSlots> banned_;
  // fingerprint << 32 | window start in seconds; and the count
  std::array<std::atomic<std::uint64_t>, kCountSlots> count_keys_{};
  std::array<std::atomic<std::uint32_t>, kCountSlots> counts_{};
  mutable std::mutex mutex_;
  std::map<boost::asio::ip::address, BanRecord> records_;    // including expired ones (their strikes)
  std::map<boost::asio::ip::address, base::Millis> active_;  // bans not yet reported as ended
  base::Millis last_prune_ = -1'000'000;                     // when records_ was last swept (full)
};

}  // namespace palisade::policy::bans
