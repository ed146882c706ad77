#include "core/net/endpoint.h"

#include <fmt/format.h>

namespace palisade::net {

std::string Endpoint::toString() const {
  if (address.is_v6()) return fmt::format("[{}]:{}", address.to_string(), port);
  return fmt::format("{}:{}", address.to_string(), port);
}

}  // namespace palisade::net
