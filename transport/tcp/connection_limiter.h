#pragma once
// Global TCP connection accounting shared by all workers: a total and a fixed table of
// per-source-address counters (atomics keyed by a hash of the address; two addresses that
// share a bucket share a limit, which only ever errs on the strict side).
#include <array>
#include <atomic>
#include <cstdint>

#include <boost/asio/ip/address.hpp>

namespace palisade::transport {

class ConnectionLimiter {
 public:
  // Any thread. True when the connection may be kept (then release() must follow).
  bool acquire(const boost::asio::ip::address& address, std::uint32_t max_total, std::uint32_t max_per_ip);
  void release(const boost::asio::ip::address& address);
  std::uint32_t total() const { return total_.load(std::memory_order_relaxed); }

 private:
  static std::size_t bucketOf(const boost::asio::ip::address& address);
  std::atomic<std::uint32_t> total_{0};
  std::array<std::atomic<std::uint32_t>, 4096> per_ip_{};
};

}  // namespace palisade::transport
