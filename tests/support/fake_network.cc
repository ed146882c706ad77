#include "tests/support/fake_network.h"

namespace palisade::testing {

net::Endpoint endpoint(const char* address, std::uint16_t port) {
  return net::Endpoint{boost::asio::ip::make_address(address), port};
}

net::Flow udpFlow(net::Side side, const char* address, std::uint16_t port) {
  net::Flow flow;
  flow.side = side;
  flow.transport = net::Transport::Udp;
  flow.remote = endpoint(address, port);
  return flow;
}

}  // namespace palisade::testing
