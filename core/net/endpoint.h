#pragma once
// Transport-neutral addressing shared by the SIP core and the transports, and the two
// interfaces between them: Network (the core sends) and Receiver (a transport hands up).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

namespace palisade::net {

enum class Transport : std::uint8_t { Udp, Tcp, Tls };

// Which of Palisade's listeners a flow belongs to.
enum class Side : std::uint8_t { Public = 0, Pbx = 1 };
inline Side otherSide(Side s) { return s == Side::Public ? Side::Pbx : Side::Public; }
inline const char* sideName(Side s) { return s == Side::Public ? "public" : "pbx"; }
inline const char* transportName(Transport t) {
  return t == Transport::Udp ? "UDP" : t == Transport::Tcp ? "TCP" : "TLS";
}
// The URI parameter value (RFC 3261 §19.1.1); UDP is the default and is not written.
inline const char* transportParam(Transport t) {
  return t == Transport::Udp ? "" : t == Transport::Tcp ? ";transport=tcp" : ";transport=tls";
}
inline bool isReliable(Transport t) { return t != Transport::Udp; }

struct Endpoint {
  boost::asio::ip::address address;
  std::uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
  std::string toString() const;  // "1.2.3.4:5060" or "[::1]:5060"
};

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it stands for.
boost::asio::ip::address canonicalAddress(const boost::asio::ip::address& address);

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
  // The configured peer the packet filter matched this source to (its id in the policy
  // snapshot); 0 for a source that matched no peer (the internet).
  std::uint16_t peer = 0;
  // The remote has shown that it receives at this address: a stream connection, a configured
  // peer, or a request that echoed an identifier only our messages carried.
  bool verified = false;

  // Same path for a reply: same listener, transport and remote (and connection, for streams).
  bool samePath(const Flow& other) const {
    return side == other.side && transport == other.transport && remote == other.remote &&
           conn_id == other.conn_id && conn_worker == other.conn_worker;
  }
};

// Where the SIP core's output goes. Implemented by the transports (and by the fake network in
// tests). Called on the worker that owns the sending object; never blocks.
class Network {
 public:
  virtual ~Network() = default;
  virtual void send(const Flow& flow, std::string&& bytes) = 0;
};

// What a transport hands up, on the worker that received it: bytes and the flow they came on.
// The transport has already run the packet filter (bans, ACLs) on the source.
class Receiver {
 public:
  virtual ~Receiver() = default;
  // One datagram (`datagram` true), or one message framed from a stream.
  virtual void onPacket(const Flow& flow, std::string&& bytes, bool datagram) = 0;
  // A stream that cannot be framed (RFC 3261 §18.3): `bytes` is what was buffered (at most the
  // message size limit), `status` the answer a request deserves (400, 513). The transport
  // closes the connection once whatever was sent in reply has been written.
  virtual void onStreamFault(const Flow& flow, std::string&& bytes, int status, std::string_view reason) = 0;
  // A stream connection ended (either end closed it, or a limit did): nothing can be sent on
  // `flow` any more.
  virtual void onStreamClosed(const Flow& flow) { (void)flow; }
};

}  // namespace palisade::net
