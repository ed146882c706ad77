#pragma once
// Views of RTP and RTCP packets (RFC 3550) as the relay needs them: is it plausibly RTP at
// all, is it RTCP (RFC 5761 §4 demultiplexing on rtcp-mux), and its sequence number for the
// per-call gap counter. Header-only: this runs per packet.
#include <cstddef>
#include <cstdint>

namespace palisade::media::rtp {

constexpr std::size_t kHeaderSize = 12;

// Version 2 and at least a fixed header (RTP) or a common header (RTCP).
inline bool plausible(const std::uint8_t* p, std::size_t len) { return len >= 8 && (p[0] >> 6) == 2; }

// RFC 5761 §4: RTCP packet types 192-223 sit where RTP's marker bit and payload type are;
// RTP payload types 64-95 are not used so that the two never collide.
inline bool isRtcp(const std::uint8_t* p, std::size_t len) { return len >= 8 && p[1] >= 192 && p[1] <= 223; }

inline std::uint16_t sequence(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[2] << 8 | p[3]); }

// Counts packets lost or reordered on one direction from RTP sequence numbers (wrapping at
// 2^16). A jump of more than kMaxJump counts as a restart (a new source), not a gap.
class SequenceTracker {
 public:
  static constexpr std::uint16_t kMaxJump = 3000;
  void observe(std::uint16_t seq) {
    if (started_) {
      auto delta = static_cast<std::uint16_t>(seq - next_);
      if (delta != 0 && delta < kMaxJump) gaps_ += delta;
      if (delta >= kMaxJump && static_cast<std::uint16_t>(next_ - seq) <= kMaxJump)
        return;  // late, reordered
    }
    started_ = true;
    next_ = static_cast<std::uint16_t>(seq + 1);
  }
  std::uint64_t gaps() const { return gaps_; }

 private:
  bool started_ = false;
  std::uint16_t next_ = 0;
  std::uint64_t gaps_ = 0;
};

}  // namespace palisade::media::rtp
