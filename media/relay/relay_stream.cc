#include "media/relay/relay_stream.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

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

RelayStream::RelayStream(MediaPoller& poller, stats::Shard& stats, std::uint32_t max_packet_rate,
                         bool datagrams_only)
    : poller_(poller), stats_(stats), max_packet_rate_(max_packet_rate), datagrams_only_(datagrams_only) {}

RelayStream::~RelayStream() { close(); }

bool RelayStream::bind(int index, const boost::asio::ip::address& address, std::uint16_t port) {
  Leg& leg = legs_[index];
  for (int component : {kRtp, kRtcp}) {
    udp::endpoint local(address, static_cast<std::uint16_t>(port + component));
    int fd = ::socket(local.protocol().family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::bind(fd, local.data(), static_cast<socklen_t>(local.size())) == 0) {
      leg.fd[component] = fd;
      continue;
    }
    if (fd >= 0) ::close(fd);
    closeLeg(leg);
    return false;
  }
  leg.port = port;
  return true;
}

bool RelayStream::start() {
  for (int i = 0; i < 2; ++i) {
    for (int component : {kRtp, kRtcp}) {
      Leg& leg = legs_[i];
      leg.watch[component] =
          poller_.add(leg.fd[component], *this, static_cast<std::uint8_t>(i * 2 + component));
      if (!leg.watch[component].registered()) {
        close();
        return false;
      }
    }
  }
  return true;
}

void RelayStream::closeLeg(Leg& leg) {
  for (int component : {kRtp, kRtcp}) {
    if (leg.fd[component] < 0) continue;
    poller_.remove(leg.watch[component], leg.fd[component]);
    ::close(leg.fd[component]);
    leg.fd[component] = -1;
  }
}

void RelayStream::close() {
  if (closed_) return;
  closed_ = true;
  for (Leg& leg : legs_) closeLeg(leg);
}

base::Millis RelayStream::lastPacket() const { return std::max(legs_[0].last_packet, legs_[1].last_packet); }

ReadableSocket::ReadResult RelayStream::onReadable(std::uint8_t tag, const PollPass& pass) {
  const int index = tag / 2;
  const int component = tag % 2;
  Leg& leg = legs_[index];
  const int fd = leg.fd[component];
  ReadBatch& b = t_batch;
  if (!b.ready) b.prepare();
  // A stream's socket holds one packet per pass (50 packets/s; busy passes are a millisecond
  // apart): one recvfrom reads it, cheaper than recvmmsg's set-up. A socket read again in the
  // same or the very next pass has a backlog (a burst, video, a flood), and so has every socket
  // while the relay is overloaded: those are read kReadBudget at a time. Whatever is left stays
  // readable for the next pass; so do the packets behind a failed read.
  const std::uint32_t last = leg.last_pass[component];
  const bool backlog = pass.overloaded || (last != 0 && pass.number - last <= 1);
  leg.last_pass[component] = pass.number;
  int got = 0;
  if (backlog) {
    got = ::recvmmsg(fd, b.headers.data(), kReadBudget, MSG_DONTWAIT, nullptr);
    if (got <= 0) return {};
    for (int i = 0; i < got; ++i) b.headers[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
  } else {
    socklen_t source_length = sizeof(sockaddr_storage);
    // MSG_TRUNC: the datagram's real length, so that one too large is seen and dropped.
    ssize_t n = ::recvfrom(fd, b.slots[0].data(), kMaxPacket + 1, MSG_DONTWAIT | MSG_TRUNC,
                           reinterpret_cast<sockaddr*>(&b.sources[0]), &source_length);
    if (n < 0) return {};
    b.headers[0].msg_len = static_cast<unsigned>(n);
    b.headers[0].msg_hdr.msg_flags = 0;
    got = 1;
  }
  for (int i = 0; i < got; ++i) {
    std::size_t length = b.headers[i].msg_len;
    if (length > kMaxPacket || (b.headers[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
      leg.counters.unready++;
      stats_.add(Counter::MediaDroppedUnready);
      continue;
    }
    relay(index, component, b.slots[i].data(), length, endpointOf(b.sources[i]), pass.now);
  }
  return {got, got == kReadBudget};
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
  const int socket = out.fd[component == kRtcp && !out.peer.mux ? kRtcp : kRtp];
  // A full send buffer loses this packet, not the next one.
  if (::sendto(socket, packet, length, 0, to->data(), static_cast<socklen_t>(to->size())) < 0) return;
  in.counters.packets++;
  in.counters.bytes += received;
  stats_.add(Counter::MediaPacketsRelayed);
  stats_.add(Counter::MediaBytesRelayed, received);
}

}  // namespace palisade::media
