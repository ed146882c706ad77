#include "policy/acl/address_trie.h"

#include <charconv>
#include <string>

#include "core/net/endpoint.h"

namespace palisade::policy {

std::optional<std::pair<boost::asio::ip::address, unsigned>> parsePrefix(std::string_view text) {
  std::size_t slash = text.find('/');
  std::string host(text.substr(0, slash));
  if (host.find('\0') != std::string::npos) return std::nullopt;
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  address = net::canonicalAddress(address);
  unsigned max = address.is_v4() ? 32 : 128;
  unsigned length = max;
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (err != std::errc() || end != digits.data() + digits.size() || length > max) return std::nullopt;
  }
  return std::make_pair(address, length);
}

bool AddressTrie::insertBits(std::vector<Node>& nodes, const unsigned char* bytes, unsigned bits,
                             std::uint16_t value) {
  std::size_t at = 0;
  for (unsigned i = 0; i < bits; ++i) {
    int bit = (bytes[i / 8] >> (7 - i % 8)) & 1;
    if (nodes[at].child[bit] < 0) {
      nodes[at].child[bit] = static_cast<std::int32_t>(nodes.size());
      nodes.push_back(Node{});
    }
    at = static_cast<std::size_t>(nodes[at].child[bit]);
  }
  nodes[at].value = value;
  nodes[at].has_value = true;
  return true;
}

std::optional<std::uint16_t> AddressTrie::lookupBits(const std::vector<Node>& nodes,
                                                     const unsigned char* bytes, unsigned bits) {
  std::optional<std::uint16_t> best;
  std::size_t at = 0;
  for (unsigned i = 0;; ++i) {
    if (nodes[at].has_value) best = nodes[at].value;
    if (i == bits) break;
    int bit = (bytes[i / 8] >> (7 - i % 8)) & 1;
    if (nodes[at].child[bit] < 0) break;
    at = static_cast<std::size_t>(nodes[at].child[bit]);
  }
  return best;
}

bool AddressTrie::insert(const boost::asio::ip::address& address, unsigned prefix_length,
                         std::uint16_t value) {
  auto canonical = net::canonicalAddress(address);
  if (canonical.is_v4()) {
    if (prefix_length > 32) return false;
    auto bytes = canonical.to_v4().to_bytes();
    return insertBits(v4_, bytes.data(), prefix_length, value);
  }
  if (prefix_length > 128) return false;
  auto bytes = canonical.to_v6().to_bytes();
  return insertBits(v6_, bytes.data(), prefix_length, value);
}

std::optional<std::uint16_t> AddressTrie::lookup(const boost::asio::ip::address& address) const {
  if (address.is_v4()) {
    auto bytes = address.to_v4().to_bytes();
    return lookupBits(v4_, bytes.data(), 32);
  }
  auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    auto bytes = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_bytes();
    return lookupBits(v4_, bytes.data(), 32);
  }
  auto bytes = v6.to_bytes();
  return lookupBits(v6_, bytes.data(), 128);
}

}  // namespace palisade::policy
