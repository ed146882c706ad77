#pragma once
// The RTP/RTCP port pairs of one worker: its own slice of the configured range, so workers
// never contend for a port and no lock is needed. A pair is an even RTP port and the odd RTCP
// port above it. Released pairs go to the back of the queue: the pair a call just gave up is
// the last to be handed out again, so late packets of an old call do not reach a new one.
// Owned by one worker; not thread-safe.
#include <cstdint>
#include <optional>
#include <vector>

namespace palisade::media {

class PortPool {
 public:
  // The slice of [first, last] (inclusive) that worker `index` of `workers` owns. Pairs are
  // dealt round-robin in blocks, so every worker gets the same number (±1).
  PortPool(std::uint16_t first, std::uint16_t last, unsigned index, unsigned workers);

  // An even RTP port whose RTCP port (+1) is free too; nullopt when the slice is exhausted.
  std::optional<std::uint16_t> acquire();
  // Gives a pair back. A port this pool did not hand out, or one already released, is ignored
  // (returns false): a double release must never put a pair in use twice.
  bool release(std::uint16_t rtp_port);

  std::size_t capacity() const { return capacity_; }
  std::size_t available() const { return count_; }

 private:
  std::size_t slot(std::uint16_t port) const;

  std::uint16_t base_ = 0;  // first even port of the range
  unsigned stride_ = 1;     // workers: the slice is base_ + 2*(index + k*stride_)
  unsigned index_ = 0;
  std::size_t capacity_ = 0;
  std::vector<std::uint16_t> ring_;  // free pairs, FIFO
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::vector<bool> in_use_;  // by slot
};

}  // namespace palisade::media
