#include "media/relay/relay_stream.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>

namespace palisade::media {

namespace {

using boost::asio::ip::udp;
using stats::Counter;

constexpr int kRtp = 0;
constexpr int kRtcp = 1;

// Per worker thread: what one recvmmsg reads (every packet is relayed before the next read).
// Each slot is 4-byte aligned for libsrtp and has room for the largest SRTP trailer.
constexpr std::size_t kSlotSize = RelayStream::kMaxPacket + srtp::Session::kMaxTrailer + 20;
struct alignas(16) ReadBatch {
  std::array<std::array<std::uint8_t, kSlotSize>, RelayStream::kReadBudget> slots;
  std::array<mmsghdr, RelayStream::kReadBudget> headers;
  std::array<iovec, RelayStream::kReadBudget> vectors;
  std::array<sockaddr_storage, RelayStream::kReadBudget> sources;
  bool ready = false;

  // The headers point into the batch once; each read resets only what the kernel wrote.
  void prepare() {
    for (int i = 0; i < RelayStream::kReadBudget; ++i) {
      // One byte more than kMaxPacket: a datagram that fills it was too large and is dropped.
      vectors[i] = iovec{slots[i].data(), RelayStream::kMaxPacket + 1};
      headers[i] = mmsghdr{};
      headers[i].msg_hdr.msg_name = &sources[i];
      headers[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      headers[i].msg_hdr.msg_iov = &vectors[i];
      headers[i].msg_hdr.msg_iovlen = 1;
    }
    ready = true;
  }
};
thread_local ReadBatch t_batch;

udp::endpoint endpointOf(const sockaddr_storage& source) {
  udp::endpoint e;
  std::memcpy(e.data(), &source, source.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  return e;
}

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
  ReadBatch& b = t_batch;
  if (!b.ready) b.prepare();
  // One system call for whatever is queued (usually one packet per wake at 50 packets/s): the
  // EAGAIN read that a recvfrom loop ends with is not paid.
  int got = ::recvmmsg(socket.native_handle(), b.headers.data(), kReadBudget, MSG_DONTWAIT, nullptr);
  if (got < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      // An ICMP error queued on the socket is returned once; the next read gets data.
      boost::asio::post(socket.get_executor(), [self = shared_from_this(), index, component] {
        if (!self->closed_) self->read(index, component);
      });
      return;
    }
    arm(index, component);
    return;
  }
  for (int i = 0; i < got; ++i) b.headers[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
  for (int i = 0; i < got && !closed_; ++i) {
    std::size_t length = b.headers[i].msg_len;
    if (length > kMaxPacket || (b.headers[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
      legs_[index].counters.unready++;
      stats_.add(Counter::MediaDroppedUnready);
      continue;
    }
    relay(index, component, b.slots[i].data(), length, endpointOf(b.sources[i]), now);
  }
  if (closed_) return;
  if (got < kReadBudget) {
    arm(index, component);
    return;
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
  const udp::endpoint& signalled = component == kRtp ? in.peer.rtp : in.peer.rtcp;
  const bool exact = in.peer.named && !in.peer.hold && from == signalled;
  const auto& latched = in.latched[component];
  if (latched) {
    // NAT: the exact address and port the SDP names always win the latch back, so a packet
    // spoofed from the phone's IP before the phone's own cannot keep the stream.
    return *latched == from || (in.latching == config::Latching::Nat && exact && in.signalling_verified);
  }
  if (in.latching == config::Latching::Strict) return exact;
  // NAT: an SRTP peer proves itself by its key (checked next); a plain one by its address: the
  // SIP source's, or the SDP's when that SIP source is known not to be spoofed.
  if (in.secure) return true;
  return from.address() == in.signalling ||
         (in.signalling_verified && in.peer.named && from.address() == in.peer.rtp.address());
}

const udp::endpoint* RelayStream::destination(const Leg& out, int component) const {
  if (out.latched[component]) return &*out.latched[component];
  if (component == kRtcp && out.peer.mux && out.latched[kRtp]) return &*out.latched[kRtp];
  if (!out.peer.named || out.peer.hold) return nullptr;
  // Before the peer's first packet its SDP address is used only if its SIP came from a source
  // that has shown it receives there, and (NAT) only if the SDP names that same address: a
  // spoofed INVITE or a forged c= line must not aim the other side's media at someone else.
  if (!out.signalling_verified) return nullptr;
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
  // The peer's packets are shed over the rate first; a source not latched yet pays for the
  // check of its key first, so that a flood of forgeries cannot use up the real peer's rate.
  const bool from_latched = in.latched[component] && *in.latched[component] == from;
  if (from_latched && !takeToken(in, now)) {
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
  if (!from_latched && !takeToken(in, now)) {
    drop(in.counters.rate_dropped, Counter::MediaDroppedRate);
    return;
  }
  // Only now, with the source admitted and (SRTP) its packet authenticated, is it latched.
  if (!from_latched) in.latched[component] = from;
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
    bool ok = component == kRtp ? out.outbound->protectRtp(packet, length, kSlotSize)
                                : out.outbound->protectRtcp(packet, length, kSlotSize);
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
