#include "policy/fraud/local_fraud_store.h"

#include <algorithm>
#include <array>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>

#include "policy/fraud/rate_table.h"

namespace palisade::policy::fraud {

namespace {

constexpr std::size_t kWindowBuckets = 60;
constexpr base::Millis kSpendWindowMs = 24 * 3'600'000;
constexpr std::size_t kSpendBuckets = 96;  // of 15 minutes
constexpr std::size_t kMaxReasonBytes = 256;
// How often the least recently used key is passed over for having active calls before it is
// evicted anyway (a shard full of keys with active calls must still take new keys).
constexpr int kEvictionSkips = 8;

std::int64_t floorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

template <typename T>
T saturatingAdd(T a, T b) {
  return a > std::numeric_limits<T>::max() - b ? std::numeric_limits<T>::max() : a + b;
}

// Counts in time buckets: the newest bucket and the N − 1 before it. A time older than the
// ring is dropped; a time a little behind the newest (another worker's clock read) still
// lands in its own bucket.
template <typename T, std::size_t N>
struct Ring {
  static constexpr std::int64_t kEmpty = std::numeric_limits<std::int64_t>::min();
  std::int64_t newest = kEmpty;
  std::array<T, N> buckets{};

  static std::size_t slot(std::int64_t index) {
    auto n = static_cast<std::int64_t>(N);
    return static_cast<std::size_t>(((index % n) + n) % n);
  }
  void advance(std::int64_t index) {
    if (newest == kEmpty || index - newest >= static_cast<std::int64_t>(N)) {
      buckets.fill(T{});
      newest = index;
      return;
    }
    while (newest < index) buckets[slot(++newest)] = T{};
  }
  void add(std::int64_t index, T value) {
    advance(index);
    if (index > newest - static_cast<std::int64_t>(N)) {
      buckets[slot(index)] = saturatingAdd(buckets[slot(index)], value);
    }
  }
  T sum(std::int64_t index) {
    advance(index);
    T total{};
    for (T b : buckets) total = saturatingAdd(total, b);
    return total;
  }
};

struct WindowCount {
  base::Millis window_ms = 0;
  base::Millis width_ms = 1;
  Ring<std::uint32_t, kWindowBuckets + 1> ring;
};

struct ActiveCall {
  std::uint64_t token = 0;
  std::int64_t micros_per_minute = 0;
  base::Millis answer_ms = 0;
};

struct Hasher {
  base::KeyedHash hash;
  std::size_t operator()(std::string_view key) const { return static_cast<std::size_t>(hash(key)); }
};

}  // namespace

struct LocalFraudStore::Entry {
  std::string key;
  std::vector<WindowCount> windows;  // most recently used first
  std::unique_ptr<Ring<std::int64_t, kSpendBuckets + 1>> spend;
  std::vector<ActiveCall> active;
  std::unique_ptr<AnomalyState> anomaly;
};

struct alignas(64) LocalFraudStore::Shard {
  mutable std::mutex mutex;
  std::list<Entry> lru;                                                            // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator, Hasher> index;  // views of Entry::key
  std::map<std::string, BlockRecord, std::less<>> blocks;
};

LocalFraudStore::LocalFraudStore(LocalFraudStoreLimits limits)
    : limits_(limits),
      keys_per_shard_(std::max<std::size_t>((limits.max_keys + kShards - 1) / kShards, 1)),
      shards_(std::make_unique<Shard[]>(kShards)) {}

LocalFraudStore::~LocalFraudStore() = default;

LocalFraudStore::Shard& LocalFraudStore::shardOf(std::string_view key) const {
  return shards_[hash_(key) >> 58];  // the top 6 bits: 64 shards
}

LocalFraudStore::Entry* LocalFraudStore::touch(Shard& shard, std::string_view key, bool create) {
  if (auto it = shard.index.find(key); it != shard.index.end()) {
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
    return &*it->second;
  }
  if (!create) return nullptr;
  int skips = 0;
  while (shard.index.size() >= keys_per_shard_) {
    auto victim = std::prev(shard.lru.end());
    if (!victim->active.empty() && skips < kEvictionSkips && shard.lru.size() > 1) {
      ++skips;
      shard.lru.splice(shard.lru.begin(), shard.lru, victim);
      continue;
    }
    active_calls_.fetch_sub(victim->active.size(), std::memory_order_relaxed);
    shard.index.erase(victim->key);
    shard.lru.erase(victim);
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
  shard.lru.emplace_front();
  Entry& entry = shard.lru.front();
  entry.key = std::string(key);
  shard.index.emplace(entry.key, shard.lru.begin());
  return &entry;
}

std::uint32_t LocalFraudStore::countInWindow(std::string_view key, base::Millis now_ms,
                                             base::Millis window_ms, std::uint32_t add) {
  window_ms = std::max<base::Millis>(window_ms, 1);
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  Entry& entry = *touch(shard, key, true);
  auto it = std::find_if(entry.windows.begin(), entry.windows.end(),
                         [&](const WindowCount& w) { return w.window_ms == window_ms; });
  if (it == entry.windows.end()) {
    if (entry.windows.size() >= kWindowsPerKey) entry.windows.pop_back();
    WindowCount fresh;
    fresh.window_ms = window_ms;
    fresh.width_ms = (window_ms + static_cast<base::Millis>(kWindowBuckets) - 1) / kWindowBuckets;
    entry.windows.insert(entry.windows.begin(), fresh);
    it = entry.windows.begin();
  } else if (it != entry.windows.begin()) {
    std::rotate(entry.windows.begin(), it, it + 1);
    it = entry.windows.begin();
  }
  std::int64_t index = floorDiv(now_ms, it->width_ms);
  if (add > 0) it->ring.add(index, add);
  return it->ring.sum(index);
}

void LocalFraudStore::addSpend(std::string_view key, std::int64_t micros, base::Millis now_ms) {
  if (micros <= 0) return;
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  Entry& entry = *touch(shard, key, true);
  if (!entry.spend) entry.spend = std::make_unique<Ring<std::int64_t, kSpendBuckets + 1>>();
  entry.spend->add(floorDiv(now_ms, kSpendWindowMs / kSpendBuckets), micros);
}

bool LocalFraudStore::startActive(std::string_view key, std::uint64_t call_token,
                                  std::int64_t micros_per_minute, base::Millis answer_ms) {
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  Entry& entry = *touch(shard, key, true);
  ActiveCall call{call_token, std::max<std::int64_t>(micros_per_minute, 0), answer_ms};
  for (ActiveCall& existing : entry.active) {
    if (existing.token == call_token) {
      existing = call;
      return true;
    }
  }
  if (active_calls_.fetch_add(1, std::memory_order_relaxed) >= limits_.max_active_calls) {
    active_calls_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  entry.active.push_back(call);
  return true;
}

bool LocalFraudStore::endActive(std::string_view key, std::uint64_t call_token) {
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  Entry* entry = touch(shard, key, false);
  if (!entry) return false;
  auto it = std::find_if(entry->active.begin(), entry->active.end(),
                         [&](const ActiveCall& c) { return c.token == call_token; });
  if (it == entry->active.end()) return false;
  *it = entry->active.back();  // order does not matter
  entry->active.pop_back();
  active_calls_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

std::int64_t LocalFraudStore::spend(std::string_view key, base::Millis now_ms) {
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  Entry* entry = touch(shard, key, false);
  if (!entry) return 0;
  std::int64_t total = entry->spend ? entry->spend->sum(floorDiv(now_ms, kSpendWindowMs / kSpendBuckets)) : 0;
  for (const ActiveCall& call : entry->active) {
    total = saturatingAdd(total, costMicros(call.micros_per_minute, now_ms - call.answer_ms));
  }
  return total;
}

BlockResult LocalFraudStore::block(std::string_view key, std::string_view reason, base::Millis now_ms) {
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  if (shard.blocks.find(key) != shard.blocks.end()) return BlockResult::AlreadyBlocked;
  if (blocks_.fetch_add(1, std::memory_order_acq_rel) >= limits_.max_blocks) {
    blocks_.fetch_sub(1, std::memory_order_acq_rel);
    return BlockResult::TableFull;
  }
  BlockRecord record{std::string(key), std::string(reason.substr(0, kMaxReasonBytes)), now_ms};
  shard.blocks.emplace(record.key, std::move(record));
  return BlockResult::Blocked;
}

std::optional<std::string> LocalFraudStore::blocked(std::string_view key) const {
  if (blocks_.load(std::memory_order_acquire) == 0) return std::nullopt;  // the usual case: no lock
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  auto it = shard.blocks.find(key);
  if (it == shard.blocks.end()) return std::nullopt;
  return it->second.reason;
}

bool LocalFraudStore::clear(std::string_view key) {
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  auto it = shard.blocks.find(key);
  if (it == shard.blocks.end()) return false;
  shard.blocks.erase(it);
  blocks_.fetch_sub(1, std::memory_order_acq_rel);
  return true;
}

std::vector<BlockRecord> LocalFraudStore::blockedList() const {
  std::vector<BlockRecord> out;
  for (std::size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    for (const auto& [key, record] : shards_[i].blocks) out.push_back(record);
  }
  std::sort(out.begin(), out.end(), [](const BlockRecord& a, const BlockRecord& b) { return a.key < b.key; });
  return out;
}

void LocalFraudStore::updateAnomaly(std::string_view key, AnomalyUpdate update) {
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  Entry& entry = *touch(shard, key, true);
  if (!entry.anomaly) entry.anomaly = std::make_unique<AnomalyState>();
  update(*entry.anomaly);
}

std::size_t LocalFraudStore::keys() const {
  std::size_t total = 0;
  for (std::size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    total += shards_[i].index.size();
  }
  return total;
}

}  // namespace palisade::policy::fraud
