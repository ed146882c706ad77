#include "policy/auth/digest.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fmt/format.h>

#include "core/base/random.h"
#include "core/net/endpoint.h"

namespace palisade::policy::auth {
namespace {

constexpr char kHex[] = "0123456789abcdef";

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

const EVP_MD* mdOf(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::Md5:
      return EVP_md5();
    case Algorithm::Sha256:
      return EVP_sha256();
    case Algorithm::Sha512_256:
      return EVP_sha512_256();
  }
  return EVP_sha256();
}

std::string toHex(const unsigned char* bytes, std::size_t n) {
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xf]);
  }
  return out;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool isWs(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

std::optional<Algorithm> algorithmFromName(std::string_view name) {
  if (iequal(name, "MD5")) return Algorithm::Md5;
  if (iequal(name, "SHA-256")) return Algorithm::Sha256;
  if (iequal(name, "SHA-512-256")) return Algorithm::Sha512_256;
  return std::nullopt;
}

std::string_view algorithmName(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::Md5:
      return "MD5";
    case Algorithm::Sha256:
      return "SHA-256";
    case Algorithm::Sha512_256:
      return "SHA-512-256";
  }
  return "SHA-256";
}

std::size_t hexLength(Algorithm algorithm) { return algorithm == Algorithm::Md5 ? 32 : 64; }

std::string hexDigest(Algorithm algorithm, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, mdOf(algorithm), nullptr) != 1) return {};
  return toHex(digest, length);
}

std::string ha1(Algorithm algorithm, std::string_view username, std::string_view realm,
                std::string_view password) {
  return hexDigest(algorithm, fmt::format("{}:{}:{}", username, realm, password));
}

std::string requestDigest(Algorithm algorithm, std::string_view ha1_hex, std::string_view nonce,
                          std::string_view nc, std::string_view cnonce, std::string_view qop,
                          std::string_view method, std::string_view uri) {
  std::string ha2 = hexDigest(algorithm, fmt::format("{}:{}", method, uri));
  return hexDigest(algorithm, fmt::format("{}:{}:{}:{}:{}:{}", ha1_hex, nonce, nc, cnonce, qop, ha2));
}

bool parseDigestCredentials(std::string_view value, DigestCredentials& out) {
  out = DigestCredentials{};
  std::size_t pos = 0;
  while (pos < value.size() && isWs(value[pos])) ++pos;
  if (value.size() - pos < 7 || !iequal(value.substr(pos, 6), "Digest") || !isWs(value[pos + 6]))
    return false;
  pos += 7;
  bool seen[11] = {};
  for (;;) {
    while (pos < value.size() && (isWs(value[pos]) || value[pos] == ',')) ++pos;
    if (pos >= value.size()) break;
    std::size_t name_start = pos;
    while (pos < value.size() && value[pos] != '=' && !isWs(value[pos]) && value[pos] != ',') ++pos;
    std::string_view name = value.substr(name_start, pos - name_start);
    while (pos < value.size() && isWs(value[pos])) ++pos;
    if (name.empty() || pos >= value.size() || value[pos] != '=') return false;
    ++pos;
    while (pos < value.size() && isWs(value[pos])) ++pos;
    std::string_view param;
    if (pos < value.size() && value[pos] == '"') {
      std::size_t close = value.find('"', pos + 1);
      if (close == std::string_view::npos) return false;
      param = value.substr(pos + 1, close - pos - 1);
      if (param.find('\\') != std::string_view::npos) return false;
      pos = close + 1;
    } else {
      std::size_t start = pos;
      while (pos < value.size() && value[pos] != ',' && !isWs(value[pos])) ++pos;
      param = value.substr(start, pos - start);
    }
    struct Field {
      std::string_view name;
      std::string_view* slot;
    };
    const Field fields[] = {
        {"username", &out.username}, {"realm", &out.realm},       {"nonce", &out.nonce},
        {"uri", &out.uri},           {"response", &out.response}, {"algorithm", &out.algorithm},
        {"cnonce", &out.cnonce},     {"qop", &out.qop},           {"nc", &out.nc},
        {"opaque", &out.opaque}};
    bool known = false;
    for (std::size_t i = 0; i < std::size(fields); ++i) {
      if (!iequal(name, fields[i].name)) continue;
      if (seen[i]) return false;  // a parameter twice: which one would a PBX read?
      seen[i] = true;
      *fields[i].slot = param;
      known = true;
      break;
    }
    if (!known && iequal(name, "userhash")) {
      if (seen[10]) return false;
      seen[10] = true;
      out.has_userhash = iequal(param, "true");
    }
  }
  return !out.username.empty() && !out.realm.empty() && !out.nonce.empty() && !out.uri.empty() &&
         !out.response.empty();
}

bool sameSecret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

NonceIssuer::NonceIssuer() { base::secureRandom(key_.data(), key_.size()); }

std::string NonceIssuer::mac(std::uint64_t timestamp, std::uint64_t salt,
                             const boost::asio::ip::address& source, std::string_view realm) const {
  std::string message;
  message.reserve(64 + realm.size());
  for (int i = 7; i >= 0; --i) message.push_back(static_cast<char>((timestamp >> (8 * i)) & 0xff));
  for (int i = 7; i >= 0; --i) message.push_back(static_cast<char>((salt >> (8 * i)) & 0xff));
  auto canonical = net::canonicalAddress(source);
  if (canonical.is_v4()) {
    auto bytes = canonical.to_v4().to_bytes();
    message.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } else {
    auto bytes = canonical.to_v6().to_bytes();
    message.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  message.append(realm);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  return toHex(digest, 16);  // 128 bits of MAC
}

std::string NonceIssuer::issue(std::int64_t now_ms, const boost::asio::ip::address& source,
                               std::string_view realm, std::uint64_t salt) const {
  auto timestamp = static_cast<std::uint64_t>(now_ms);
  unsigned char stamp[16];
  for (int i = 0; i < 8; ++i) stamp[i] = static_cast<unsigned char>((timestamp >> (8 * (7 - i))) & 0xff);
  for (int i = 0; i < 8; ++i) stamp[8 + i] = static_cast<unsigned char>((salt >> (8 * (7 - i))) & 0xff);
  return toHex(stamp, 16) + mac(timestamp, salt, source, realm);
}

NonceIssuer::Verdict NonceIssuer::verify(std::string_view nonce, std::int64_t now_ms,
                                         const boost::asio::ip::address& source, std::string_view realm,
                                         std::int64_t lifetime_ms) const {
  if (nonce.size() != 32 + 32) return Verdict::Invalid;
  std::uint64_t timestamp = 0, salt = 0;
  for (std::size_t i = 0; i < 32; ++i) {
    int v = hexValue(nonce[i]);
    if (v < 0) return Verdict::Invalid;
    std::uint64_t& field = i < 16 ? timestamp : salt;
    field = (field << 4) | static_cast<std::uint64_t>(v);
  }
  if (!sameSecret(nonce.substr(32), mac(timestamp, salt, source, realm))) return Verdict::Invalid;
  auto issued = static_cast<std::int64_t>(timestamp);
  if (issued > now_ms) return Verdict::Invalid;  // from the future: not ours
  if (now_ms - issued > lifetime_ms) return Verdict::Stale;
  return Verdict::Valid;
}

std::uint64_t NonceIssuer::tagOf(std::string_view nonce) {
  std::uint64_t tag = 0;  // the MAC's first 64 bits, already unpredictable
  for (std::size_t i = 32; i < 48 && i < nonce.size(); ++i) {
    int v = hexValue(nonce[i]);
    tag = (tag << 4) | static_cast<std::uint64_t>(v < 0 ? 0 : v);
  }
  return tag;
}

}  // namespace palisade::policy::auth
