#pragma once
// Longest-prefix match of source addresses against IPv4 and IPv6 prefixes (a binary trie per
// family; an IPv4-mapped IPv6 address is looked up as the IPv4 address it stands for). Built on
// the control thread inside a policy snapshot, then only read, from any worker.
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace palisade::policy {

// "192.0.2.0/24", "2001:db8::/32" or a plain address (a host prefix). Nothing on bad input.
std::optional<std::pair<boost::asio::ip::address, unsigned>> parsePrefix(std::string_view text);

class AddressTrie {
 public:
  AddressTrie() : v4_(1), v6_(1) {}  // each family starts with its root
  // Later inserts of the same prefix replace the value. False for a bad prefix length.
  bool insert(const boost::asio::ip::address& address, unsigned prefix_length, std::uint16_t value);
  // The value of the longest prefix covering `address`.
  std::optional<std::uint16_t> lookup(const boost::asio::ip::address& address) const;
  bool empty() const { return v4_.size() <= 1 && v6_.size() <= 1; }

 private:
  struct Node {
    std::int32_t child[2] = {-1, -1};
    std::uint16_t value = 0;
    bool has_value = false;
  };
  static bool insertBits(std::vector<Node>& nodes, const unsigned char* bytes, unsigned bits,
                         std::uint16_t value);
  static std::optional<std::uint16_t> lookupBits(const std::vector<Node>& nodes, const unsigned char* bytes,
                                                 unsigned bits);
  std::vector<Node> v4_;
  std::vector<Node> v6_;
};

}  // namespace palisade::policy
