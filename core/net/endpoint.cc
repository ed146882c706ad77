#include "core/net/endpoint.h"

#include <fmt/format.h>

namespace palisade::net {

std::string Endpoint::toString() const {
  if (address.is_v6()) return fmt::format("[{}]:{}", address.to_string(), port);
  return fmt::format("{}:{}", address.to_string(), port);
}

boost::asio::ip::address canonicalAddress(const boost::asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
  }
  return address;
}

}  // namespace palisade::net
