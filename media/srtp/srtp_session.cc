#include "media/srtp/srtp_session.h"

#include <srtp2/srtp.h>

#include <climits>
#include <cstdint>
#include <mutex>

namespace palisade::media::srtp {

static_assert(Session::kMaxTrailer == SRTP_MAX_TRAILER_LEN + 4, "libsrtp's trailer bound changed");

namespace {

constexpr std::size_t kRtpHeader = 12;  // RFC 3550 §5.1 fixed header
constexpr std::size_t kRtcpHeader = 8;  // RFC 3550 §6.4.1 up to the sender's SSRC

std::once_flag g_init_once;
srtp_err_status_t g_init_status = srtp_err_status_fail;

bool libraryReady() {
  initialiseLibrary();
  return g_init_status == srtp_err_status_ok;  // ordered by call_once
}

// RTP and RTCP transforms per suite. AES_CM_128_HMAC_SHA1_32 keeps the 80-bit tag on SRTCP
// (RFC 4568 §6.2; libsrtp documents its 32-bit policy as unfit for SRTCP). The AEAD suites
// carry a 16-octet tag on both (RFC 7714 §14.1 registers no shorter one for SDES).
void setPolicies(Suite suite, srtp_crypto_policy_t& rtp, srtp_crypto_policy_t& rtcp) {
  switch (suite) {
    case Suite::AesCm128HmacSha1_80:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&rtcp);
      return;
    case Suite::AesCm128HmacSha1_32:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&rtcp);
      return;
    case Suite::AeadAes128Gcm:
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&rtp);
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&rtcp);
      return;
    case Suite::AeadAes256Gcm:
      srtp_crypto_policy_set_aes_gcm_256_16_auth(&rtp);
      srtp_crypto_policy_set_aes_gcm_256_16_auth(&rtcp);
      return;
  }
}

Session::Failure failureOf(srtp_err_status_t status) {
  switch (status) {
    case srtp_err_status_ok:
      return Session::Failure::None;
    case srtp_err_status_auth_fail:
      return Session::Failure::Auth;
    case srtp_err_status_replay_fail:  // index seen before
    case srtp_err_status_replay_old:   // index left of the window
      return Session::Failure::Replay;
    default:
      return Session::Failure::Other;
  }
}

}  // namespace

void initialiseLibrary() {
  std::call_once(g_init_once, [] { g_init_status = srtp_init(); });
}

std::unique_ptr<Session> Session::create(Direction direction, const KeyMaterial& key) {
  if (!libraryReady() || key.size != masterKeyLength(key.suite)) return nullptr;
  srtp_policy_t policy{};
  setPolicies(key.suite, policy.rtp, policy.rtcp);
  policy.ssrc.type = direction == Direction::Inbound ? ssrc_any_inbound : ssrc_any_outbound;
  // libsrtp reads the master key during srtp_create only; it never writes through this pointer.
  policy.key = const_cast<unsigned char*>(key.bytes.data());
  if (direction == Direction::Inbound) {
    policy.window_size = kReplayWindow;
  } else {
    policy.allow_repeat_tx = 1;
  }
  srtp_t ctx = nullptr;
  if (srtp_create(&ctx, &policy) != srtp_err_status_ok) return nullptr;
  return std::unique_ptr<Session>(new Session(ctx, direction, key.suite));
}

Session::~Session() { srtp_dealloc(ctx_); }

bool Session::usable(const std::uint8_t* packet, std::size_t len, Direction wanted) {
  owner_.check("srtp::Session");
  // libsrtp would serve the wrong direction from the other side's template: refuse it.
  if (packet == nullptr || direction_ != wanted || len > INT_MAX ||
      reinterpret_cast<std::uintptr_t>(packet) % 4 != 0) {
    last_failure_ = Failure::Other;
    return false;
  }
  return true;
}

bool Session::finish(int status, int length, std::size_t& len) {
  last_failure_ = failureOf(static_cast<srtp_err_status_t>(status));
  if (last_failure_ != Failure::None || length < 0) {
    if (last_failure_ == Failure::None) last_failure_ = Failure::Other;
    return false;
  }
  len = static_cast<std::size_t>(length);
  return true;
}

bool Session::protectRtp(std::uint8_t* packet, std::size_t& len, std::size_t capacity) {
  if (!usable(packet, len, Direction::Outbound)) return false;
  if (len < kRtpHeader || capacity < len || capacity - len < kMaxTrailer) {
    last_failure_ = Failure::Other;
    return false;
  }
  int length = static_cast<int>(len);
  srtp_err_status_t status = srtp_protect(ctx_, packet, &length);
  return finish(status, length, len);
}

bool Session::unprotectRtp(std::uint8_t* packet, std::size_t& len) {
  if (!usable(packet, len, Direction::Inbound)) return false;
  if (len < kRtpHeader) {
    last_failure_ = Failure::Other;
    return false;
  }
  int length = static_cast<int>(len);
  srtp_err_status_t status = srtp_unprotect(ctx_, packet, &length);
  return finish(status, length, len);
}

bool Session::protectRtcp(std::uint8_t* packet, std::size_t& len, std::size_t capacity) {
  if (!usable(packet, len, Direction::Outbound)) return false;
  if (len < kRtcpHeader || capacity < len || capacity - len < kMaxTrailer) {
    last_failure_ = Failure::Other;
    return false;
  }
  int length = static_cast<int>(len);
  srtp_err_status_t status = srtp_protect_rtcp(ctx_, packet, &length);
  return finish(status, length, len);
}

bool Session::unprotectRtcp(std::uint8_t* packet, std::size_t& len) {
  if (!usable(packet, len, Direction::Inbound)) return false;
  if (len < kRtcpHeader) {
    last_failure_ = Failure::Other;
    return false;
  }
  int length = static_cast<int>(len);
  srtp_err_status_t status = srtp_unprotect_rtcp(ctx_, packet, &length);
  return finish(status, length, len);
}

}  // namespace palisade::media::srtp
