#pragma once
// libsrtp2 (the OpenSSL build from tests/install_deps.sh) behind RAII: one Session is one srtp_t
// for one direction of one leg. libsrtp searches the streams of an srtp_t linearly, so sessions
// are never shared between legs (DESIGN.md, media). No exceptions, no logging, no keys kept.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/base/owner_thread.h"
#include "media/srtp/crypto_suite.h"

struct srtp_ctx_t_;  // libsrtp's srtp_t, kept out of this header

namespace palisade::media::srtp {

// srtp_init, once per process (std::call_once: safe from any thread). Session::create calls it;
// call it at start-up to keep the one-time cost off the first call.
void initialiseLibrary();

// Owned by the worker that owns the call: not thread-safe. Packets are processed in place and
// must start on a 4-byte boundary (libsrtp reads the header as 32-bit words).
class Session {
 public:
  enum class Direction : std::uint8_t { Inbound, Outbound };
  // Why the last call returned false, for counters (a relay latches only on success).
  enum class Failure : std::uint8_t { None, Auth, Replay, Other };

  // Spare bytes a buffer needs after the packet for protect: libsrtp may write a 16-byte tag and
  // a 128-byte MKI (SRTP_MAX_TRAILER_LEN), and for SRTCP the 4-byte E|index word too.
  static constexpr std::size_t kMaxTrailer = 16 + 128 + 4;
  // libsrtp's replay window on inbound sessions, in packets.
  static constexpr unsigned long kReplayWindow = 1024;

  // A session for any SSRC the peer uses (inbound) or we send (outbound), keyed with `key`
  // (whose size must be masterKeyLength(key.suite)). Outbound sessions allow retransmitting a
  // sequence number (allow_repeat_tx), as a relay re-protects what it receives twice. nullptr
  // if libsrtp refuses. libsrtp derives its session keys here and keeps no pointer to `key`.
  static std::unique_ptr<Session> create(Direction direction, const KeyMaterial& key);

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // In place. `len` is the packet's length before and, on success, after. protect needs
  // len + kMaxTrailer <= capacity. false on any error: authentication failure, replay, a packet
  // too short or misaligned, the wrong direction. On failure `len` is unchanged and the packet
  // must be dropped (its bytes may have been changed).
  bool protectRtp(std::uint8_t* packet, std::size_t& len, std::size_t capacity);
  bool unprotectRtp(std::uint8_t* packet, std::size_t& len);
  bool protectRtcp(std::uint8_t* packet, std::size_t& len, std::size_t capacity);
  bool unprotectRtcp(std::uint8_t* packet, std::size_t& len);

  Failure lastFailure() const { return last_failure_; }
  Direction direction() const { return direction_; }
  Suite suite() const { return suite_; }

 private:
  Session(srtp_ctx_t_* ctx, Direction direction, Suite suite)
      : ctx_(ctx), direction_(direction), suite_(suite) {}
  bool usable(const std::uint8_t* packet, std::size_t len, Direction wanted);
  bool finish(int status, int length, std::size_t& len);

  srtp_ctx_t_* ctx_;
  Direction direction_;
  Suite suite_;
  Failure last_failure_ = Failure::None;
  base::OwnerThread owner_;
};

}  // namespace palisade::media::srtp
