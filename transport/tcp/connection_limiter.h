#pragma once
// Global TCP connection accounting shared by all workers: a total and a fixed table of
// per-source counters (atomics keyed by a hash of the IPv4 address or the IPv6 /64, so that
// one subscriber's prefix is one source). The hash is keyed with a random value drawn at
// start, so an attacker cannot pick addresses that share a bucket with a peer's. Two sources
// that do share one share a limit, which only ever errs on the strict side.
#include <array>
#include <atomic>
#include <cstdint>

#include <boost/asio/ip/address.hpp>

namespace palisade::transport {

class ConnectionLimiter {
 public:
  ConnectionLimiter();
  // Any thread. True when the connection may be kept (then release() must follow).
  // `over_per_ip` (optional) says whether a refusal was the address's own limit (it counts
  // against the address) rather than the total (which says nothing about it).
  bool acquire(const boost::asio::ip::address& address, std::uint32_t max_total, std::uint32_t max_per_ip,
               bool* over_per_ip = nullptr);
  void release(const boost::asio::ip::address& address);
  std::uint32_t total() const { return total_.load(std::memory_order_relaxed); }

 private:
  std::size_t bucketOf(const boost::asio::ip::address& address) const;
  std::uint64_t key_ = 0;
  std::atomic<std::uint32_t> total_{0};
  std::array<std::atomic<std::uint32_t>, 4096> per_ip_{};
};

}  // namespace palisade::transport
