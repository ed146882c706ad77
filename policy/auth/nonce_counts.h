#pragma once
// Replay protection for digest nonce counts (RFC 7616 §3.4.5): the highest nc seen per nonce,
// in a fixed table of atomics shared by every worker (a user's requests land on whichever
// worker owns their Call-ID). A request whose nc is not above the last one for its nonce is
// a replay. Lock-free, any thread.
//
// Each slot holds one nonce (the upper 32 bits of its tag) and its highest count. A newer
// nonce that hashes to the same slot takes it over; the older nonce then loses its history, so
// a replay of it within its remaining lifetime would pass. With 65,536 slots and nonces that
// live minutes, that takes a replay aimed at a slot just reused; the nonce's MAC still binds
// it to its source address.
#include <array>
#include <atomic>
#include <cstdint>

namespace palisade::policy::auth {

class NonceCounts {
 public:
  static constexpr std::size_t kSlots = 65536;

  // True when `nc` is fresh for the nonce `tag` (and records it); false for a replay.
  bool accept(std::uint64_t tag, std::uint32_t nc) {
    if (nc == 0) return false;
    auto& slot = slots_[tag % kSlots];
    const std::uint64_t owner = tag & 0xffffffff00000000ull;
    std::uint64_t current = slot.load(std::memory_order_acquire);
    for (;;) {
      if ((current & 0xffffffff00000000ull) == owner && current != 0 &&
          nc <= static_cast<std::uint32_t>(current & 0xffffffffu)) {
        return false;
      }
      if (slot.compare_exchange_weak(current, owner | nc, std::memory_order_acq_rel)) return true;
    }
  }

 private:
  std::array<std::atomic<std::uint64_t>, kSlots> slots_{};
};

}  // namespace palisade::policy::auth
