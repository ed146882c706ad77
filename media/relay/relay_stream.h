#pragma once
// One anchored media stream (one m= line): for each of the call's two legs an RTP and an RTCP
// socket on Palisade's address for that leg's side, the peer's signalled and latched addresses,
// and the leg's SRTP sessions. A packet that arrives on one leg is checked (source, rate,
// authentication), transformed by the table below and sent from the other leg's socket.
//
// Owned by the call's worker: sockets, libsrtp sessions and counters never cross threads. The
// worker's MediaPoller offers each readable socket once per pass; a read takes at most
// kReadBudget datagrams, and a socket with more is offered again after the others, so one busy
// stream cannot starve the worker and no socket is ever left unread (rtpengine's failure mode).
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ip/udp.hpp>

#include "core/base/clock.h"
#include "core/config/config.h"
#include "core/stats/metrics.h"
#include "media/relay/media_poller.h"
#include "media/relay/rtp.h"
#include "media/srtp/srtp_session.h"

namespace palisade::media {

// How a packet is changed on its way from one leg to the other, by the two legs' profiles.
enum class Transform : std::uint8_t { Forward, Decrypt, Encrypt, Reencrypt };
// [arriving leg is SRTP][leaving leg is SRTP]
inline constexpr Transform kTransforms[2][2] = {{Transform::Forward, Transform::Encrypt},
                                                {Transform::Decrypt, Transform::Reencrypt}};

// What one leg's peer sent, as counted for the metrics and the end-of-call line.
struct LegCounters {
  std::uint64_t packets = 0;  // relayed onward
  std::uint64_t bytes = 0;
  std::uint64_t auth_failures = 0;
  std::uint64_t foreign = 0;
  std::uint64_t rate_dropped = 0;
  std::uint64_t unready = 0;
};

// Where a leg's peer said it receives (its SDP), as the relay uses it.
struct PeerMedia {
  boost::asio::ip::udp::endpoint rtp;
  boost::asio::ip::udp::endpoint rtcp;  // the RTP endpoint when the peer multiplexes
  bool mux = false;                     // RTCP on the RTP port (RFC 5761)
  bool hold = false;                    // c=0.0.0.0: nothing is sent to it
  bool named = false;                   // the SDP's address is a numeric IP (not a host name)
};

class RelayStream final : public ReadableSocket {
 public:
  static constexpr int kReadBudget = 32;           // datagrams per socket per read
  static constexpr std::size_t kMaxPacket = 1500;  // larger datagrams are not RTP we relay

  struct Leg {
    std::array<int, 2> fd{-1, -1};  // [RTP, RTCP] sockets, non-blocking
    std::array<MediaPoller::Handle, 2> watch;
    std::array<std::uint32_t, 2> last_pass{};  // the poller's pass that last read each socket
    std::uint16_t port = 0;                    // our RTP port on this leg (RTCP: port + 1)
    bool owns_pair = false;  // this leg took the pair from the pool (the other may share it)
    config::Latching latching = config::Latching::Strict;
    boost::asio::ip::address signalling;  // where the leg's SIP came from
    bool signalling_verified = false;     // ...and it has shown it receives there (not spoofed)
    PeerMedia peer;
    bool known = false;  // the peer's SDP is known (offer and answer done)
    std::array<std::optional<boost::asio::ip::udp::endpoint>, 2> latched;  // [RTP, RTCP]
    bool secure = false;
    std::unique_ptr<srtp::Session> inbound;   // the peer's key: what it sends us
    std::unique_ptr<srtp::Session> outbound;  // our key for it: what we send it
    srtp::KeyMaterial inbound_key;            // the keys the sessions were made with (to spot a re-key)
    srtp::KeyMaterial outbound_key;
    rtp::SequenceTracker sequence;
    LegCounters counters;
    base::Millis last_packet = 0;
    std::int64_t tokens = 0;  // rate limit, in thousandths of a packet
    base::Millis refilled = 0;
  };

  RelayStream(MediaPoller& poller, stats::Shard& stats, std::uint32_t max_packet_rate, bool datagrams_only);
  ~RelayStream();
  RelayStream(const RelayStream&) = delete;
  RelayStream& operator=(const RelayStream&) = delete;

  // Binds leg `index`'s sockets to `address`:`port` and `port`+1 (non-blocking). False if the
  // address or a port is taken; the sockets are then closed again.
  bool bind(int index, const boost::asio::ip::address& address, std::uint16_t port);
  // Starts reading both legs' sockets. Call once both are bound. False if the poller refused one
  // (the stream is then closed).
  bool start();
  // Stops reading and closes every socket.
  void close();

  Leg& leg(int index) { return legs_[index]; }
  const Leg& leg(int index) const { return legs_[index]; }
  // Packets flow only while both legs' peers are known.
  void setActive(bool active) { active_ = active; }
  bool active() const { return active_; }
  // The last time either peer's packet was relayed (0: never).
  base::Millis lastPacket() const;
  void setMaxPacketRate(std::uint32_t rate) { max_packet_rate_ = rate; }
  // Not RTP (T.38 over udptl): datagrams are relayed as they are, without RTP checks.
  void setDatagramsOnly(bool datagrams_only) { datagrams_only_ = datagrams_only; }

 private:
  ReadResult onReadable(std::uint8_t tag, const PollPass& pass) override;
  void closeLeg(Leg& leg);
  void relay(int index, int component, std::uint8_t* packet, std::size_t length,
             const boost::asio::ip::udp::endpoint& from, base::Millis now);
  bool admits(const Leg& in, int component, const boost::asio::ip::udp::endpoint& from) const;
  const boost::asio::ip::udp::endpoint* destination(const Leg& out, int component) const;
  bool takeToken(Leg& in, base::Millis now);

  MediaPoller& poller_;
  stats::Shard& stats_;
  std::uint32_t max_packet_rate_;
  bool datagrams_only_;  // not RTP (T.38 udptl): relayed as is, never SRTP
  bool active_ = false;
  bool closed_ = false;
  std::array<Leg, 2> legs_;
};

}  // namespace palisade::media
