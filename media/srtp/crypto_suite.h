#pragma once
// SRTP crypto suites and SDES key material (RFC 4568, RFC 7714): suite names, master keys,
// a=crypto values and their inline key-params. Pure functions, callable from any thread; the
// parsers take untrusted SDP and never throw.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace palisade::media::srtp {

// The suites Palisade offers and accepts. AES_CM_128_HMAC_SHA1_32 shortens only the SRTP tag:
// SRTCP keeps 80 bits (RFC 4568 §6.2, RFC 3711 §7.5).
enum class Suite : std::uint8_t { AesCm128HmacSha1_80, AesCm128HmacSha1_32, AeadAes128Gcm, AeadAes256Gcm };

// The SDES name, matched exactly: AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32 (RFC 4568
// §6.2), AEAD_AES_128_GCM, AEAD_AES_256_GCM (RFC 7714 §14.1). Any other name is not ours.
std::optional<Suite> suiteByName(std::string_view sdes_name);
std::string_view suiteName(Suite suite);

// Master key plus master salt, in bytes: 30, 30, 28, 44 (RFC 7714 §14.2: a 96-bit AEAD salt).
std::size_t masterKeyLength(Suite suite);

// A master key and salt, `size` bytes of `bytes`. Wiped when destroyed, copies included; never
// log it or put it in an error string.
struct KeyMaterial {
  KeyMaterial() = default;
  KeyMaterial(const KeyMaterial&) = default;
  KeyMaterial& operator=(const KeyMaterial&) = default;
  ~KeyMaterial();
  // Wipes the bytes and sets size to 0.
  void clear();

  Suite suite = Suite::AesCm128HmacSha1_80;
  std::array<std::uint8_t, 46> bytes{};
  std::size_t size = 0;
};

// A fresh key for `suite` from OpenSSL's CSPRNG; false (and `out` cleared) if it fails.
bool randomKey(Suite suite, KeyMaterial& out);

// "inline:" + base64(key || salt), standard base64 with padding (RFC 4568 §6.1; 28- and
// 44-byte AEAD keys end in '='). The result is key material too.
std::string inlineKeyParams(const KeyMaterial& key);

// Parses RFC 4568 §9.1 key-params "inline:<base64>[|lifetime][|MKI:length]", the first key of
// a ';'-separated list only. Refuses bad base64, a decoded length other than masterKeyLength,
// and any MKI (Palisade never uses one, and libsrtp would need it on every packet). A lifetime
// (2^n or decimal) is accepted and ignored. On failure `out` is cleared.
bool parseInlineKeyParams(Suite suite, std::string_view key_params, KeyMaterial& out);

// An a=crypto value: "<tag> <suite> <key-params> [<session-params>...]" (RFC 4568 §9.1). Views
// into the parsed text. The suite is only checked for syntax: an unknown suite is a valid line
// that the offer/answer code skips. Session parameters (UNENCRYPTED_SRTCP, KDR=, ...) are kept
// as one text, trimmed, for the caller to judge.
struct CryptoAttribute {
  std::uint32_t tag = 0;  // 1..999999999
  std::string_view suite_name;
  std::string_view key_params;
  std::string_view session_params;
};

bool parseCryptoAttribute(std::string_view value, CryptoAttribute& out);

}  // namespace palisade::media::srtp
