#pragma once
// One UDP socket of one worker on one SIP listener, bound with SO_REUSEPORT so that every
// worker has its own socket on the same address and port. Receives datagrams (one message
// each), scans them and hands them to the Dispatcher; sends are synchronous and non-blocking
// (a full socket buffer drops the datagram: SIP retransmits).
#include <array>
#include <memory>

#include <boost/asio/ip/udp.hpp>

#include "core/base/result.h"
#include "core/event/worker.h"
#include "core/sip/message.h"

namespace palisade::transport {

class UdpListener {
 public:
  UdpListener(event::Worker& worker, event::Dispatcher& dispatcher, net::Side side,
              const sip::Limits& limits);
  base::Result<bool> open(const boost::asio::ip::address& address, std::uint16_t port);
  void start();
  void close();
  void send(const net::Endpoint& to, std::string_view bytes);
  void setLimits(const sip::Limits& limits) { limits_ = limits; }

 private:
  void receive();

  event::Worker& worker_;
  event::Dispatcher& dispatcher_;
  net::Side side_;
  sip::Limits limits_;
  boost::asio::ip::udp::socket socket_;
  boost::asio::ip::udp::endpoint sender_;
  std::array<char, 65536> buffer_{};
};

}  // namespace palisade::transport
