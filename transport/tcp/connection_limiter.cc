#include "transport/tcp/connection_limiter.h"

#include "core/base/random.h"
#include "core/net/endpoint.h"

namespace palisade::transport {

ConnectionLimiter::ConnectionLimiter() { base::secureRandom(&key_, sizeof key_); }

std::size_t ConnectionLimiter::bucketOf(const boost::asio::ip::address& address) const {
  std::uint64_t hash = 1469598103934665603ull ^ key_;
  auto mix = [&hash](const unsigned char* bytes, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      hash ^= bytes[i];
      hash *= 1099511628211ull;
    }
  };
  auto canonical = net::canonicalAddress(address);
  if (canonical.is_v4()) {
    auto bytes = canonical.to_v4().to_bytes();
    mix(bytes.data(), bytes.size());
  } else {
    auto bytes = canonical.to_v6().to_bytes();
    mix(bytes.data(), 8);  // the /64
  }
  hash ^= hash >> 29;  // fold the high bits in before taking the bucket
  return hash % 4096;
}

bool ConnectionLimiter::acquire(const boost::asio::ip::address& address, std::uint32_t max_total,
                                std::uint32_t max_per_ip, bool* over_per_ip) {
  if (over_per_ip != nullptr) *over_per_ip = false;
  if (total_.fetch_add(1, std::memory_order_relaxed) >= max_total) {
    total_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  auto& bucket = per_ip_[bucketOf(address)];
  if (bucket.fetch_add(1, std::memory_order_relaxed) >= max_per_ip) {
    bucket.fetch_sub(1, std::memory_order_relaxed);
    total_.fetch_sub(1, std::memory_order_relaxed);
    if (over_per_ip != nullptr) *over_per_ip = true;
    return false;
  }
  return true;
}

void ConnectionLimiter::release(const boost::asio::ip::address& address) {
  per_ip_[bucketOf(address)].fetch_sub(1, std::memory_order_relaxed);
  total_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace palisade::transport
