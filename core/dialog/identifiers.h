#pragma once
// Which worker owns a call, and the identifiers Palisade generates. Every Call-ID, tag and
// Via branch we create starts with the owner's index, so a response or in-dialog request
// finds its worker in O(1) with no shared table (the owner is chosen once per call).
#include <cstdint>
#include <string>
#include <string_view>

#include "core/base/random.h"

namespace palisade::dialog {

// Owner of a message, from its Call-ID: an index embedded by IdGenerator when present, or a
// stable hash of the Call-ID (peers' Call-IDs). Same answer on every worker.
std::uint32_t ownerOf(std::string_view call_id, std::uint32_t workers);

// Per-worker generator (not thread-safe; one per worker). Every identifier carries at least
// 96 bits from the kernel CSPRNG (RFC 3261 §19.3 asks for 32 bits of randomness; seeing one
// identifier tells nothing about the next), drawn in batches through a RandomPool.
class IdGenerator {
 public:
  static constexpr std::size_t kTagRandomBytes = 12;     // 96 bits
  static constexpr std::size_t kBranchRandomBytes = 12;  // 96 bits
  static constexpr std::size_t kCallIdRandomBytes = 16;  // 128 bits

  explicit IdGenerator(std::uint32_t worker);
  std::string callId();  // "P<ww>-<32 hex>"
  std::string tag();     // "<ww><24 hex>"
  std::string branch();  // "z9hG4bK-P<ww>-<24 hex>" (RFC 3261 magic cookie)
  // The first RSeq of a reliable provisional sequence: uniform in 1..2^31-1 (RFC 3262 §3).
  std::uint32_t firstRSeq();

 private:
  void appendRandomHex(std::string& out, std::size_t bytes);
  std::uint32_t worker_;
  char worker_hex_[2];
  base::RandomPool pool_;
};

}  // namespace palisade::dialog
