#include "transport/tcp/connection_limiter.h"

namespace palisade::transport {

std::size_t ConnectionLimiter::bucketOf(const boost::asio::ip::address& address) {
  std::uint64_t hash = 1469598103934665603ull;
  auto mix = [&hash](const auto& bytes) {
    for (unsigned char b : bytes) {
      hash ^= b;
      hash *= 1099511628211ull;
    }
  };
  if (address.is_v4())
    mix(address.to_v4().to_bytes());
  else
    mix(address.to_v6().to_bytes());
  return hash % 4096;
}

bool ConnectionLimiter::acquire(const boost::asio::ip::address& address, std::uint32_t max_total,
                                std::uint32_t max_per_ip) {
  if (total_.fetch_add(1, std::memory_order_relaxed) >= max_total) {
    total_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  auto& bucket = per_ip_[bucketOf(address)];
  if (bucket.fetch_add(1, std::memory_order_relaxed) >= max_per_ip) {
    bucket.fetch_sub(1, std::memory_order_relaxed);
    total_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void ConnectionLimiter::release(const boost::asio::ip::address& address) {
  per_ip_[bucketOf(address)].fetch_sub(1, std::memory_order_relaxed);
  total_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace palisade::transport
