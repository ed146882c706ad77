#include "transport/udp/udp_listener.h"

#include <fmt/format.h>
#include <boost/asio/socket_base.hpp>

#include "core/base/log.h"

namespace palisade::transport {

using stats::Counter;

UdpListener::UdpListener(boost::asio::io_context& io, net::Receiver& receiver, policy::PacketFilter* filter,
                         stats::Shard& stats, net::Side side)
    : receiver_(receiver), filter_(filter), stats_(stats), side_(side), socket_(io) {}

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

std::uint16_t UdpListener::localPort() const {
  boost::system::error_code ec;
  auto endpoint = socket_.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void UdpListener::start() { receive(); }

void UdpListener::close() {
  boost::system::error_code ec;
  socket_.close(ec);
}

void UdpListener::receive() {
  socket_.async_receive_from(boost::asio::buffer(buffer_), sender_,
                             [this](const boost::system::error_code& ec, std::size_t size) {
                               if (ec == boost::asio::error::operation_aborted) return;
                               owner_.check("UdpListener");
                               if (!ec && size > 0) {
                                 stats_.add(Counter::MessagesInUdp);
                                 net::Flow flow;
                                 flow.side = side_;
                                 flow.transport = net::Transport::Udp;
                                 flow.remote.address = sender_.address();
                                 flow.remote.port = sender_.port();
                                 std::string_view bytes(buffer_.data(), size);
                                 // Bans and ACLs cost a lookup, not a parse.
                                 if (filter_ != nullptr && !filter_->admit(flow, bytes)) {
                                   stats_.add(Counter::DroppedUntrusted);
                                 } else {
                                   receiver_.onPacket(flow, std::string(bytes), true);
                                 }
                               }
                               if (socket_.is_open()) receive();
                             });
}

void UdpListener::send(const net::Endpoint& to, std::string_view bytes) {
  owner_.check("UdpListener");
  boost::system::error_code ec;
  socket_.send_to(boost::asio::buffer(bytes.data(), bytes.size()),
                  boost::asio::ip::udp::endpoint(to.address, to.port), 0, ec);
  if (ec) {
    LOG_DEBUG("udp send to {} failed: {}", to.toString(), ec.message());
    return;
  }
  stats_.add(Counter::MessagesOutUdp);
}

}  // namespace palisade::transport
