#include "transport/udp/udp_listener.h"

#include <fmt/format.h>
#include <boost/asio/socket_base.hpp>

#include "core/base/log.h"

namespace palisade::transport {

using stats::Counter;

UdpListener::UdpListener(event::Worker& worker, event::Dispatcher& dispatcher, net::Side side,
                         const sip::Limits& limits)
    : worker_(worker), dispatcher_(dispatcher), side_(side), limits_(limits), socket_(worker.io()) {}

base::Result<bool> UdpListener::open(const boost::asio::ip::address& address, std::uint16_t port) {
  boost::system::error_code ec;
  boost::asio::ip::udp::endpoint endpoint(address, port);
  socket_.open(endpoint.protocol(), ec);
  if (!ec) {
    int one = 1;
    // SO_REUSEPORT only (not SO_REUSEADDR): the workers share the port, nobody else can.
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    // Bursts of signalling must not overflow the kernel queue while a worker is busy.
    socket_.set_option(boost::asio::socket_base::receive_buffer_size(4 << 20), ec);
    ec = {};
    socket_.bind(endpoint, ec);
  }
  if (!ec) socket_.non_blocking(true, ec);
  if (ec) return base::Error{fmt::format("udp {}:{}: {}", address.to_string(), port, ec.message())};
  return true;
}

void UdpListener::start() { receive(); }

void UdpListener::close() {
  boost::system::error_code ec;
  socket_.close(ec);
}

void UdpListener::receive() {
  socket_.async_receive_from(
      boost::asio::buffer(buffer_), sender_, [this](const boost::system::error_code& ec, std::size_t size) {
        if (ec == boost::asio::error::operation_aborted) return;
        if (!ec && size > 0) {
          worker_.stats().add(Counter::MessagesInUdp);
          net::Flow flow;
          flow.side = side_;
          flow.transport = net::Transport::Udp;
          flow.remote.address = sender_.address();
          flow.remote.port = sender_.port();
          auto message = sip::Message::parse(std::string(buffer_.data(), size), limits_, true);
          if (message) {
            dispatcher_.deliver(worker_, std::move(message), flow);
          } else {
            worker_.stats().add(Counter::ParseErrors);
          }
        }
        if (socket_.is_open()) receive();
      });
}

void UdpListener::send(const net::Endpoint& to, std::string_view bytes) {
  boost::system::error_code ec;
  socket_.send_to(boost::asio::buffer(bytes.data(), bytes.size()),
                  boost::asio::ip::udp::endpoint(to.address, to.port), 0, ec);
  if (ec) {
    LOG_DEBUG("udp send to {} failed: {}", to.toString(), ec.message());
    return;
  }
  worker_.stats().add(Counter::MessagesOutUdp);
}

}  // namespace palisade::transport
