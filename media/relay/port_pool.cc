#include "media/relay/port_pool.h"

namespace palisade::media {

PortPool::PortPool(std::uint16_t first, std::uint16_t last, unsigned index, unsigned workers)
    : stride_(workers == 0 ? 1 : workers), index_(index) {
  base_ = static_cast<std::uint16_t>(first + (first & 1u));  // RTP ports are even
  if (last < base_ + 1 || index_ >= stride_) return;
  std::size_t pairs = (static_cast<std::size_t>(last) - base_ + 1) / 2;
  // Pair p belongs to worker p % workers.
  capacity_ = pairs > index_ ? (pairs - index_ + stride_ - 1) / stride_ : 0;
  ring_.resize(capacity_);
  in_use_.assign(capacity_, false);
  for (std::size_t k = 0; k < capacity_; ++k) {
    ring_[k] = static_cast<std::uint16_t>(base_ + 2 * (index_ + k * stride_));
  }
  count_ = capacity_;
}

std::size_t PortPool::slot(std::uint16_t port) const {
  if (port < base_ || (port - base_) % 2 != 0) return capacity_;
  std::size_t pair = (port - base_) / 2;
  if (pair % stride_ != index_) return capacity_;
  std::size_t k = pair / stride_;
  return k < capacity_ ? k : capacity_;
}

std::optional<std::uint16_t> PortPool::acquire() {
  if (count_ == 0) return std::nullopt;
  std::uint16_t port = ring_[head_];
  head_ = (head_ + 1) % capacity_;
  --count_;
  in_use_[slot(port)] = true;
  return port;
}

bool PortPool::release(std::uint16_t rtp_port) {
  std::size_t k = slot(rtp_port);
  if (k >= capacity_ || !in_use_[k]) return false;
  in_use_[k] = false;
  ring_[(head_ + count_) % capacity_] = rtp_port;
  ++count_;
  return true;
}

}  // namespace palisade::media
