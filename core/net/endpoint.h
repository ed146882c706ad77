#pragma once
// Transport-neutral addressing shared by the SIP core and the transports.
#include <cstdint>
#include <functional>
#include <string>

#include <boost/asio/ip/address.hpp>

namespace palisade::net {

enum class Transport : std::uint8_t { Udp, Tcp };

// Which of Palisade's listeners a flow belongs to.
enum class Side : std::uint8_t { Public = 0, Pbx = 1 };
inline Side otherSide(Side s) { return s == Side::Public ? Side::Pbx : Side::Public; }
inline const char* sideName(Side s) { return s == Side::Public ? "public" : "pbx"; }
inline const char* transportName(Transport t) { return t == Transport::Udp ? "UDP" : "TCP"; }

struct Endpoint {
  boost::asio::ip::address address;
  std::uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
  std::string toString() const;  // "1.2.3.4:5060" or "[::1]:5060"
};

// A path to a peer: the listener side, the transport, the peer's address and, for TCP, the
// connection (conn_id 0 means "any connection to `remote`, or open one").
struct Flow {
  Side side = Side::Public;
  Transport transport = Transport::Udp;
  Endpoint remote;
  std::uint32_t conn_id = 0;
  std::uint16_t conn_worker = 0;  // TCP: the worker that owns the connection
  // TCP: where to reconnect if the connection is gone (the sent-by port of the request's top
  // Via, RFC 3261 §18.2.2); 0 for flows Palisade opened itself.
  std::uint16_t reconnect_port = 0;
};

// Where the SIP core's output goes. Implemented by the transports (and by the fake network in
// tests). Called on the worker that owns the sending object; never blocks.
class Network {
 public:
  virtual ~Network() = default;
  virtual void send(const Flow& flow, std::string&& bytes) = 0;
};

}  // namespace palisade::net
