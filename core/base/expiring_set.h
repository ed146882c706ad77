#pragma once
// What every worker checks per packet and any thread may change: a fixed table of keyed
// hashes, each with the time it ends, read and written without a lock (bans, the flows users
// registered from). A slot is one 64-bit word: a 32-bit fingerprint and the end in seconds on
// the monotonic clock. A full neighbourhood gives up the entry that ends first, and two keys
// may share a fingerprint (2^-32 per probe): callers use it where such an error is harmless
// or is checked again behind it.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/base/clock.h"
#include "core/base/random.h"

namespace palisade::base {

// A hash keyed at start from the kernel CSPRNG, so that nobody can aim a key at a slot.
class KeyedHash {
 public:
  KeyedHash() { secureRandom(&key_, sizeof key_); }
  std::uint64_t operator()(std::string_view bytes) const {
    std::uint64_t hash = 1469598103934665603ull ^ key_;
    for (unsigned char c : bytes) {
      hash ^= c;
      hash *= 1099511628211ull;
    }
    hash ^= hash >> 31;
    hash *= 0x9E3779B97F4A7C15ull;
    return hash ^ (hash >> 29);
  }

 private:
  std::uint64_t key_ = 0;
};

template <std::size_t Slots>
class ExpiringSet {
 public:
  // Adds `hash` (or moves its end) until `until`.
  void insert(std::uint64_t hash, Millis until) {
    std::uint32_t fingerprint = fingerprintOf(hash);
    std::uint64_t word = (static_cast<std::uint64_t>(fingerprint) << 32) | seconds(until + 999);
    std::size_t start = hash % Slots;
    for (std::size_t probe = 0; probe < kProbes; ++probe) {
      auto& slot = slots_[(start + probe) % Slots];
      std::uint64_t current = slot.load(std::memory_order_acquire);
      if (current == 0 || static_cast<std::uint32_t>(current >> 32) == fingerprint) {
        if (slot.compare_exchange_strong(current, word, std::memory_order_acq_rel)) return;
      }
    }
    // Every probe slot is taken: take the one that ends first.
    std::size_t victim = start % Slots;
    std::uint32_t earliest = UINT32_MAX;
    for (std::size_t probe = 0; probe < kProbes; ++probe) {
      std::size_t index = (start + probe) % Slots;
      auto end = static_cast<std::uint32_t>(slots_[index].load(std::memory_order_acquire));
      if (end < earliest) earliest = end, victim = index;
    }
    slots_[victim].store(word, std::memory_order_release);
  }

  void erase(std::uint64_t hash) {
    std::uint32_t fingerprint = fingerprintOf(hash);
    std::size_t start = hash % Slots;
    for (std::size_t probe = 0; probe < kProbes; ++probe) {
      auto& slot = slots_[(start + probe) % Slots];
      std::uint64_t current = slot.load(std::memory_order_acquire);
      if (static_cast<std::uint32_t>(current >> 32) == fingerprint) slot.compare_exchange_strong(current, 0);
    }
  }

  bool contains(std::uint64_t hash, Millis now) const {
    std::uint32_t fingerprint = fingerprintOf(hash);
    std::uint32_t now_s = seconds(now);
    std::size_t start = hash % Slots;
    for (std::size_t probe = 0; probe < kProbes; ++probe) {
      std::uint64_t word = slots_[(start + probe) % Slots].load(std::memory_order_acquire);
      if (static_cast<std::uint32_t>(word >> 32) == fingerprint)
        return static_cast<std::uint32_t>(word) > now_s;
    }
    return false;
  }

 private:
  static constexpr std::size_t kProbes = 8;
  static std::uint32_t fingerprintOf(std::uint64_t hash) {
    return static_cast<std::uint32_t>(hash >> 32) | 1u;
  }
  static std::uint32_t seconds(Millis ms) {
    return static_cast<std::uint32_t>(std::max<Millis>(ms, 0) / 1000);
  }

  std::array<std::atomic<std::uint64_t>, Slots> slots_{};
};

}  // namespace palisade::base
