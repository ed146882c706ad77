#include "media/srtp/crypto_suite.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

namespace palisade::media::srtp {

namespace {

struct SuiteInfo {
  Suite suite;
  std::string_view name;
  std::size_t master_length;
};

constexpr std::array<SuiteInfo, 4> kSuites{{
    {Suite::AesCm128HmacSha1_80, "AES_CM_128_HMAC_SHA1_80", 16 + 14},
    {Suite::AesCm128HmacSha1_32, "AES_CM_128_HMAC_SHA1_32", 16 + 14},
    {Suite::AeadAes128Gcm, "AEAD_AES_128_GCM", 16 + 12},
    {Suite::AeadAes256Gcm, "AEAD_AES_256_GCM", 32 + 12},
}};

const SuiteInfo& info(Suite suite) {
  for (const SuiteInfo& entry : kSuites) {
    if (entry.suite == suite) return entry;
  }
  return kSuites.front();  // unreachable for a valid enumerator
}

constexpr std::string_view kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Decodes `text` into exactly `want` bytes at `out`. Padding is optional (some phones drop it
// from 28-byte AEAD keys), but when present it must be correct; anything outside the standard
// alphabet is refused.
bool decodeBase64(std::string_view text, std::uint8_t* out, std::size_t want) {
  std::size_t padding = 0;
  while (!text.empty() && text.back() == '=' && padding < 2) {
    text.remove_suffix(1);
    ++padding;
  }
  if (text.size() % 4 == 1) return false;
  if (padding != 0 && (text.size() + padding) % 4 != 0) return false;
  if (text.size() * 3 / 4 != want) return false;
  std::uint32_t bits = 0;
  int bit_count = 0;
  std::size_t written = 0;
  for (char c : text) {
    int value = base64Value(c);
    if (value < 0) return false;
    bits = (bits << 6) | static_cast<std::uint32_t>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out[written++] = static_cast<std::uint8_t>(bits >> bit_count);
    }
  }
  OPENSSL_cleanse(&bits, sizeof bits);
  return written == want;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool allDigits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!isDigit(c)) return false;
  }
  return true;
}

// RFC 4568 §9.1: lifetime = ["2^"] 1*(DIGIT).
bool isLifetime(std::string_view text) {
  if (text.starts_with("2^")) text.remove_prefix(2);
  return allDigits(text);
}

bool isWhitespace(char c) { return c == ' ' || c == '\t'; }

std::string_view nextField(std::string_view& rest) {
  while (!rest.empty() && isWhitespace(rest.front())) rest.remove_prefix(1);
  std::size_t end = 0;
  while (end < rest.size() && !isWhitespace(rest[end])) ++end;
  std::string_view field = rest.substr(0, end);
  rest.remove_prefix(end);
  return field;
}

}  // namespace

std::optional<Suite> suiteByName(std::string_view sdes_name) {
  for (const SuiteInfo& entry : kSuites) {
    if (entry.name == sdes_name) return entry.suite;
  }
  return std::nullopt;
}

std::string_view suiteName(Suite suite) { return info(suite).name; }

std::size_t masterKeyLength(Suite suite) { return info(suite).master_length; }

KeyMaterial::~KeyMaterial() { OPENSSL_cleanse(bytes.data(), bytes.size()); }

void KeyMaterial::clear() {
  OPENSSL_cleanse(bytes.data(), bytes.size());
  size = 0;
}

bool randomKey(Suite suite, KeyMaterial& out) {
  out.clear();
  out.suite = suite;
  std::size_t length = masterKeyLength(suite);
  if (RAND_bytes(out.bytes.data(), static_cast<int>(length)) != 1) {
    out.clear();
    return false;
  }
  out.size = length;
  return true;
}

std::string inlineKeyParams(const KeyMaterial& key) {
  constexpr std::string_view kPrefix = "inline:";
  std::size_t size = key.size <= key.bytes.size() ? key.size : 0;
  // Sized once: a growing string would leave copies of the key in freed memory.
  std::string out;
  out.reserve(kPrefix.size() + (size + 2) / 3 * 4);
  out.append(kPrefix);
  for (std::size_t i = 0; i < size; i += 3) {
    std::uint32_t group = static_cast<std::uint32_t>(key.bytes[i]) << 16;
    if (i + 1 < size) group |= static_cast<std::uint32_t>(key.bytes[i + 1]) << 8;
    if (i + 2 < size) group |= key.bytes[i + 2];
    out.push_back(kBase64[(group >> 18) & 0x3f]);
    out.push_back(kBase64[(group >> 12) & 0x3f]);
    out.push_back(i + 1 < size ? kBase64[(group >> 6) & 0x3f] : '=');
    out.push_back(i + 2 < size ? kBase64[group & 0x3f] : '=');
    OPENSSL_cleanse(&group, sizeof group);
  }
  return out;
}

bool parseInlineKeyParams(Suite suite, std::string_view key_params, KeyMaterial& out) {
  out.clear();
  out.suite = suite;
  // Only the first key of "key-param *(";" key-param)".
  key_params = key_params.substr(0, key_params.find(';'));
  constexpr std::string_view kMethod = "inline:";
  if (key_params.size() < kMethod.size()) return false;
  for (std::size_t i = 0; i < kMethod.size(); ++i) {
    char c = key_params[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');  // ABNF literals ignore case
    if (c != kMethod[i]) return false;
  }
  key_params.remove_prefix(kMethod.size());

  // key-info = key-salt ["|" lifetime] ["|" mki]
  std::size_t bar = key_params.find('|');
  std::string_view key_salt = key_params.substr(0, bar);
  bool seen_lifetime = false;
  while (bar != std::string_view::npos) {
    key_params.remove_prefix(bar + 1);
    bar = key_params.find('|');
    std::string_view field = key_params.substr(0, bar);
    // mki = mki-value ":" mki-length: refused, we never negotiate an MKI.
    if (field.find(':') != std::string_view::npos) return false;
    if (seen_lifetime || !isLifetime(field)) return false;
    seen_lifetime = true;
  }

  std::size_t want = masterKeyLength(suite);
  if (!decodeBase64(key_salt, out.bytes.data(), want)) {
    out.clear();
    return false;
  }
  out.size = want;
  return true;
}

bool parseCryptoAttribute(std::string_view value, CryptoAttribute& out) {
  out = CryptoAttribute{};
  std::string_view rest = value;
  std::string_view tag = nextField(rest);
  // tag = 1*9DIGIT, and 0 names no line in an answer.
  if (tag.size() > 9 || !allDigits(tag)) return false;
  std::uint32_t number = 0;
  for (char c : tag) number = number * 10 + static_cast<std::uint32_t>(c - '0');
  if (number == 0) return false;

  // srtp-crypto-suite = 1*(ALPHA / DIGIT / "_")
  std::string_view suite = nextField(rest);
  if (suite.empty()) return false;
  for (char c : suite) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || isDigit(c) || c == '_';
    if (!ok) return false;
  }

  std::string_view key_params = nextField(rest);
  if (key_params.empty()) return false;

  while (!rest.empty() && isWhitespace(rest.front())) rest.remove_prefix(1);
  while (!rest.empty() && (isWhitespace(rest.back()) || rest.back() == '\r' || rest.back() == '\n'))
    rest.remove_suffix(1);

  out.tag = number;
  out.suite_name = suite;
  out.key_params = key_params;
  out.session_params = rest;
  return true;
}

}  // namespace palisade::media::srtp
