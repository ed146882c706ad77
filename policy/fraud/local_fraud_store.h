#pragma once
// The in-process FraudStore. Keys are spread over 64 shards by a keyed hash (nobody can aim
// keys at one shard), each a mutex over a hash map and an LRU list. A call takes one shard's
// lock for a bounded, I/O-free section (no loop longer than a key's buckets or active calls),
// so workers setting up calls for different keys rarely meet.
//
// Memory is bounded by the number of keys: each shard keeps at most max_keys / 64 (rounded
// up) and, when a new key comes, evicts its least recently used one, all of that key's
// counts, spend and anomaly state going with it. A key with active calls is passed over for
// eviction a few times (its projected spend matters most) but not forever. Per key: about
// 160 bytes plus the key, 272 per window counted (at most 4 windows per key; a fifth replaces
// the least recently used), 784 for spend, 24 per active call, 1,968 of anomaly state: about
// 4 KiB with everything in use, so at most about 256 MiB at the default 65,536 keys (users and
// trunks with a counter or two and spend take under 1.5 KiB). Active calls and blocks have
// their own global maximum; blocks are kept apart from the keys and never evicted.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/base/expiring_set.h"
#include "policy/fraud/fraud_store.h"

namespace palisade::policy::fraud {

struct LocalFraudStoreLimits {
  std::size_t max_keys = 65'536;
  std::size_t max_active_calls = 262'144;
  std::size_t max_blocks = 65'536;
};

class LocalFraudStore final : public FraudStore {
 public:
  static constexpr std::size_t kShards = 64;
  static constexpr std::size_t kWindowsPerKey = 4;

  explicit LocalFraudStore(LocalFraudStoreLimits limits = {});
  ~LocalFraudStore() override;
  LocalFraudStore(const LocalFraudStore&) = delete;
  LocalFraudStore& operator=(const LocalFraudStore&) = delete;

  std::uint32_t countInWindow(std::string_view key, base::Millis now_ms, base::Millis window_ms,
                              std::uint32_t add) override;
  void addSpend(std::string_view key, std::int64_t micros, base::Millis now_ms) override;
  bool startActive(std::string_view key, std::uint64_t call_token, std::int64_t micros_per_minute,
                   base::Millis answer_ms) override;
  bool endActive(std::string_view key, std::uint64_t call_token) override;
  std::int64_t spend(std::string_view key, base::Millis now_ms) override;
  BlockResult block(std::string_view key, std::string_view reason, base::Millis now_ms) override;
  std::optional<std::string> blocked(std::string_view key) const override;
  bool clear(std::string_view key) override;
  std::vector<BlockRecord> blockedList() const override;
  void updateAnomaly(std::string_view key, AnomalyUpdate update) override;

  // For metrics and tests: keys held now, keys evicted so far, active calls, blocks.
  std::size_t keys() const;
  std::uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  std::size_t activeCalls() const { return active_calls_.load(std::memory_order_relaxed); }
  std::size_t blocks() const { return blocks_.load(std::memory_order_relaxed); }

 private:
  struct Entry;
  struct Shard;

  Shard& shardOf(std::string_view key) const;
  // The key's entry, made most recently used; `create` makes it (evicting) when missing.
  Entry* touch(Shard& shard, std::string_view key, bool create);

  LocalFraudStoreLimits limits_;
  std::size_t keys_per_shard_;
  base::KeyedHash hash_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<std::size_t> active_calls_{0};
  std::atomic<std::size_t> blocks_{0};
  std::atomic<std::uint64_t> evictions_{0};
};

}  // namespace palisade::policy::fraud
