#pragma once
// Which worker owns a call, and the identifiers Palisade generates. Every Call-ID, tag and
// Via branch we create starts with the owner's index, so a response or in-dialog request
// finds its worker in O(1) with no shared table (the owner is chosen once per call).
#include <cstdint>
#include <string>
#include <string_view>

namespace palisade::dialog {

// Owner of a message, from its Call-ID: an index embedded by IdGenerator when present, or a
// stable hash of the Call-ID (peers' Call-IDs). Same answer on every worker.
std::uint32_t ownerOf(std::string_view call_id, std::uint32_t workers);

// Per-worker generator (not thread-safe; one per worker). Values are unpredictable enough
// that a peer cannot guess another call's tags or branches.
class IdGenerator {
 public:
  IdGenerator(std::uint32_t worker, std::uint64_t seed);
  std::string callId();  // "P<ww>-<32 hex>"
  std::string tag();     // "<ww><16 hex>"
  std::string branch();  // "z9hG4bK-P<ww>-<16 hex>" (RFC 3261 magic cookie)

 private:
  std::uint64_t next();
  std::uint32_t worker_;
  std::uint64_t state_;
};

}  // namespace palisade::dialog
