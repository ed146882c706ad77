#pragma once
// One UDP socket of one worker on one SIP listener, bound with SO_REUSEPORT so that every
// worker has its own socket on the same address and port. Each datagram goes through the
// packet filter (before any parsing), then up to the worker's net::Receiver as bytes; sends
// are synchronous and non-blocking (a full socket buffer drops the datagram: SIP retransmits).
#include <array>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "core/base/owner_thread.h"
#include "core/base/result.h"
#include "core/net/endpoint.h"
#include "core/stats/metrics.h"
#include "policy/api/filters.h"

namespace palisade::transport {

class UdpListener {
 public:
  UdpListener(boost::asio::io_context& io, net::Receiver& receiver, policy::PacketFilter* filter,
              stats::Shard& stats, net::Side side);
  // Set-up (before the worker runs). `port` 0 binds an ephemeral port (tests).
  base::Result<bool> open(const boost::asio::ip::address& address, std::uint16_t port);
  std::uint16_t localPort() const;
  void start();
  // Only once the worker has stopped, or on the worker.
  void close();
  // On the worker.
  void send(const net::Endpoint& to, std::string_view bytes);

 private:
  void receive();

  base::OwnerThread owner_;
  net::Receiver& receiver_;
  policy::PacketFilter* filter_;
  stats::Shard& stats_;
  net::Side side_;
  boost::asio::ip::udp::socket socket_;
  boost::asio::ip::udp::endpoint sender_;
  std::array<char, 65536> buffer_{};
};

}  // namespace palisade::transport
