#pragma once
// HTTP digest authentication as SIP uses it (RFC 3261 §22.4, RFC 7616, RFC 8760): the
// algorithms, the Authorization / Proxy-Authorization parser, and stateless nonces. No I/O,
// no logging: callers never see a password or a response value in a log line from here.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

namespace palisade::policy::auth {

enum class Algorithm : std::uint8_t { Md5, Sha256, Sha512_256 };

// "MD5", "SHA-256", "SHA-512-256" (case-insensitive, RFC 8760 §2).
std::optional<Algorithm> algorithmFromName(std::string_view name);
std::string_view algorithmName(Algorithm algorithm);
// Hex digits of one digest of the algorithm (32 for MD5, 64 for the others).
std::size_t hexLength(Algorithm algorithm);

// Lower-case hex of H(data).
std::string hexDigest(Algorithm algorithm, std::string_view data);
// HA1 = H(username ":" realm ":" password) (RFC 7616 §3.4.2).
std::string ha1(Algorithm algorithm, std::string_view username, std::string_view realm,
                std::string_view password);
// The request-digest for qop=auth (RFC 7616 §3.4.1): H(HA1:nonce:nc:cnonce:qop:H(method:uri)).
std::string requestDigest(Algorithm algorithm, std::string_view ha1_hex, std::string_view nonce,
                          std::string_view nc, std::string_view cnonce, std::string_view qop,
                          std::string_view method, std::string_view uri);

// The parameters of a "Digest ..." credentials value; views into the header value, quotes
// removed (a value with escapes is refused rather than unescaped: no client needs them).
struct DigestCredentials {
  std::string_view username, realm, nonce, uri, response, algorithm, cnonce, qop, nc, opaque;
  bool has_userhash = false;
};
// False when the value is not well-formed digest credentials (RFC 7616 §3.4): a parameter
// twice, an unterminated quote, a missing username/realm/nonce/uri/response.
bool parseDigestCredentials(std::string_view value, DigestCredentials& out);

// Constant-time comparison of two equally long strings (responses, MACs).
bool sameSecret(std::string_view a, std::string_view b);

// Stateless nonces: a timestamp and an HMAC-SHA-256 over it, the client's address and the
// realm, keyed with random bytes drawn at start. Any worker verifies any nonce without shared
// state; a nonce from another address, another realm or another process fails.
class NonceIssuer {
 public:
  NonceIssuer();  // draws its key from the kernel CSPRNG
  explicit NonceIssuer(const std::array<std::uint8_t, 32>& key) : key_(key) {}

  // `now_ms` on the monotonic clock the caller verifies with; `salt` makes two nonces issued
  // in the same millisecond to the same address differ (their nonce counts are separate).
  std::string issue(std::int64_t now_ms, const boost::asio::ip::address& source, std::string_view realm,
                    std::uint64_t salt = 0) const;
  enum class Verdict { Valid, Stale, Invalid };
  // Stale: ours and intact but older than `lifetime_ms` (the client retries with a fresh one).
  Verdict verify(std::string_view nonce, std::int64_t now_ms, const boost::asio::ip::address& source,
                 std::string_view realm, std::int64_t lifetime_ms) const;
  // The 64-bit tag that names a nonce in replay tables.
  static std::uint64_t tagOf(std::string_view nonce);

 private:
  std::string mac(std::uint64_t timestamp, std::uint64_t salt, const boost::asio::ip::address& source,
                  std::string_view realm) const;
  std::array<std::uint8_t, 32> key_{};
};

}  // namespace palisade::policy::auth
