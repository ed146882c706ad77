#include "media/relay/relay_stream.h"

#include <algorithm>

#include <boost/asio/post.hpp>

namespace palisade::media {

namespace {

using boost::asio::ip::udp;
using stats::Counter;

constexpr int kRtp = 0;
constexpr int kRtcp = 1;

// One buffer per worker thread: a packet is relayed before the next is read. 4-byte aligned
// for libsrtp, with room for the largest SRTP trailer.
struct alignas(16) PacketBuffer {
  std::array<std::uint8_t, RelayStream::kMaxPacket + srtp::Session::kMaxTrailer + 16> bytes;
};
thread_local PacketBuffer t_buffer;

}  // namespace

RelayStream::RelayStream(boost::asio::io_context& io, const base::Clock& clock, stats::Shard& stats,
                         std::uint32_t max_packet_rate, bool datagrams_only)
    : clock_(clock),
      stats_(stats),
      max_packet_rate_(max_packet_rate),
      datagrams_only_(datagrams_only),
      legs_{{Leg(io), Leg(io)}} {}

RelayStream::~RelayStream() { close(); }

bool RelayStream::bind(int index, const boost::asio::ip::address& address, std::uint16_t port) {
  Leg& leg = legs_[index];
  boost::system::error_code ec;
  udp protocol = address.is_v6() ? udp::v6() : udp::v4();
  for (udp::socket* socket : {&leg.rtp, &leg.rtcp}) {
    socket->open(protocol, ec);
    if (!ec) socket->bind(udp::endpoint(address, socket == &leg.rtp ? port : port + 1), ec);
    if (!ec) socket->non_blocking(true, ec);
    if (ec) {
      leg.rtp.close(ec);
      leg.rtcp.close(ec);
      return false;
    }
  }
  leg.port = port;
  return true;
}

void RelayStream::start() {
  for (int i = 0; i < 2; ++i) {
    arm(i, kRtp);
    arm(i, kRtcp);
  }
}

void RelayStream::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  for (Leg& leg : legs_) {
    leg.rtp.close(ec);
    leg.rtcp.close(ec);
  }
}

base::Millis RelayStream::lastPacket() const { return std::max(legs_[0].last_packet, legs_[1].last_packet); }

void RelayStream::arm(int index, int component) {
  udp::socket& socket = component == kRtp ? legs_[index].rtp : legs_[index].rtcp;
  // The handler holds the stream: a read that completes after close() finds it still there.
  socket.async_wait(udp::socket::wait_read,
                    [self = shared_from_this(), index, component](const boost::system::error_code& ec) {
                      if (ec || self->closed_) return;
                      self->read(index, component);
                    });
}

void RelayStream::read(int index, int component) {
  udp::socket& socket = component == kRtp ? legs_[index].rtp : legs_[index].rtcp;
  base::Millis now = clock_.now();
  std::uint8_t* packet = t_buffer.bytes.data();
  for (int n = 0; n < kReadBudget; ++n) {
    udp::endpoint from;
    boost::system::error_code ec;
    // One byte more than kMaxPacket: a datagram that fills it was too large and is dropped.
    std::size_t length = socket.receive_from(boost::asio::buffer(packet, kMaxPacket + 1), from, 0, ec);
    if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
      arm(index, component);
      return;
    }
    if (closed_) return;
    if (ec) continue;  // an ICMP error queued on the socket: the next read gets data
    if (length > kMaxPacket) {
      legs_[index].counters.unready++;
      stats_.add(Counter::MediaDroppedUnready);
      continue;
    }
    relay(index, component, packet, length, from, now);
    if (closed_) return;
  }
  // Budget spent: let the worker's other work run, then read on. Never stop reading.
  boost::asio::post(socket.get_executor(), [self = shared_from_this(), index, component] {
    if (!self->closed_) self->read(index, component);
  });
}

bool RelayStream::takeToken(Leg& in, base::Millis now) {
  // A bucket of half a second's packets, refilled at max_packet_rate.
  const std::int64_t burst = std::int64_t{max_packet_rate_} * 500;
  if (now > in.refilled) {
    in.tokens = std::min(burst, in.tokens + (now - in.refilled) * std::int64_t{max_packet_rate_});
    in.refilled = now;
  }
  if (in.tokens < 1000) return false;
  in.tokens -= 1000;
  return true;
}

bool RelayStream::admits(const Leg& in, int component, const udp::endpoint& from) const {
  const auto& latched = in.latched[component];
  if (latched) return *latched == from;
  if (in.latching == config::Latching::Strict) {
    const udp::endpoint& signalled = component == kRtp ? in.peer.rtp : in.peer.rtcp;
    return in.peer.named && !in.peer.hold && from == signalled;
  }
  // NAT: an SRTP peer proves itself by its key (checked next); a plain one by its address.
  if (in.secure) return true;
  return (in.peer.named && from.address() == in.peer.rtp.address()) || from.address() == in.signalling;
}

const udp::endpoint* RelayStream::destination(const Leg& out, int component) const {
  if (out.latched[component]) return &*out.latched[component];
  if (component == kRtcp && out.peer.mux && out.latched[kRtp]) return &*out.latched[kRtp];
  if (!out.peer.named || out.peer.hold) return nullptr;
  // Before a NAT peer's first packet, its SDP address is used only if it is where its SIP came
  // from: a forged c= line must not aim the other side's media at someone else.
  if (out.latching == config::Latching::Nat && out.peer.rtp.address() != out.signalling) return nullptr;
  return component == kRtp ? &out.peer.rtp : &out.peer.rtcp;
}

void RelayStream::relay(int index, int component, std::uint8_t* packet, std::size_t length,
                        const udp::endpoint& from, base::Millis now) {
  Leg& in = legs_[index];
  Leg& out = legs_[1 - index];
  auto drop = [this](std::uint64_t& counter, Counter metric) {
    counter++;
    stats_.add(metric);
  };
  if (!active_ || (!datagrams_only_ && !rtp::plausible(packet, length))) {
    drop(in.counters.unready, Counter::MediaDroppedUnready);
    return;
  }
  // RFC 5761 §4: on a multiplexed port, RTCP is told apart by its packet type.
  if (component == kRtp && !datagrams_only_ && rtp::isRtcp(packet, length)) component = kRtcp;
  if (!admits(in, component, from)) {
    drop(in.counters.foreign, Counter::MediaDroppedForeign);
    return;
  }
  if (!takeToken(in, now)) {
    drop(in.counters.rate_dropped, Counter::MediaDroppedRate);
    return;
  }
  const Transform transform = kTransforms[in.secure ? 1 : 0][out.secure ? 1 : 0];
  if (transform == Transform::Decrypt || transform == Transform::Reencrypt) {
    bool ok = component == kRtp ? in.inbound->unprotectRtp(packet, length)
                                : in.inbound->unprotectRtcp(packet, length);
    if (!ok) {
      drop(in.counters.auth_failures, Counter::MediaAuthFailures);
      return;
    }
  }
  // Only now, with the source admitted and (SRTP) its packet authenticated, is it latched.
  if (!in.latched[component]) in.latched[component] = from;
  std::size_t received = length;
  in.last_packet = now;
  if (component == kRtp && !datagrams_only_) {
    std::uint64_t before = in.sequence.gaps();
    in.sequence.observe(rtp::sequence(packet));
    if (std::uint64_t gaps = in.sequence.gaps() - before; gaps != 0)
      stats_.add(Counter::MediaSequenceGaps, gaps);
  }
  const udp::endpoint* to = destination(out, component);
  if (to == nullptr) {
    drop(in.counters.unready, Counter::MediaDroppedUnready);
    return;
  }
  if (transform == Transform::Encrypt || transform == Transform::Reencrypt) {
    bool ok = component == kRtp ? out.outbound->protectRtp(packet, length, t_buffer.bytes.size())
                                : out.outbound->protectRtcp(packet, length, t_buffer.bytes.size());
    if (!ok) {
      drop(in.counters.unready, Counter::MediaDroppedUnready);
      return;
    }
  }
  udp::socket& socket = component == kRtcp && !out.peer.mux ? out.rtcp : out.rtp;
  boost::system::error_code ec;
  socket.send_to(boost::asio::buffer(packet, length), *to, 0, ec);
  if (ec) return;  // a full send buffer: this packet is lost, the next one is not
  in.counters.packets++;
  in.counters.bytes += received;
  stats_.add(Counter::MediaPacketsRelayed);
  stats_.add(Counter::MediaBytesRelayed, received);
}

}  // namespace palisade::media
