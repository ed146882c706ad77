#include "media/srtp/srtp_session.h"

#include <algorithm>
#include <array>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
// Boost 1.74's JSON reader includes the deprecated <boost/bind.hpp>, which prints a note unless
// this is defined.
#define BOOST_BIND_GLOBAL_PLACEHOLDERS
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include "media/srtp/crypto_suite.h"
#include "tests/support/corpus.h"

namespace palisade::media::srtp {
namespace {

constexpr std::array<Suite, 4> kAllSuites{Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32,
                                          Suite::AeadAes128Gcm, Suite::AeadAes256Gcm};

std::vector<std::uint8_t> fromHex(std::string_view hex) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

KeyMaterial keyFromHex(Suite suite, std::string_view hex) {
  KeyMaterial key;
  key.suite = suite;
  std::vector<std::uint8_t> bytes = fromHex(hex);
  std::copy(bytes.begin(), bytes.end(), key.bytes.begin());
  key.size = bytes.size();
  return key;
}

std::vector<std::uint8_t> keyBytes(const KeyMaterial& key) {
  return {key.bytes.begin(), key.bytes.begin() + static_cast<std::ptrdiff_t>(key.size)};
}

// A packet buffer as a relay holds one: aligned, with room for the SRTP trailer.
struct Packet {
  alignas(8) std::array<std::uint8_t, 1500> bytes{};
  std::size_t len = 0;

  Packet() = default;
  explicit Packet(const std::vector<std::uint8_t>& content) : len(content.size()) {
    std::copy(content.begin(), content.end(), bytes.begin());
  }
  std::vector<std::uint8_t> content() const {
    return {bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len)};
  }
};

// A 20 ms G.711 packet: 12-byte RTP header (PT 0) and 160 bytes of payload.
Packet g711Packet(std::uint16_t seq, std::uint32_t ssrc = 0x11223344) {
  Packet p;
  p.len = 172;
  p.bytes[0] = 0x80;
  p.bytes[1] = 0x00;
  p.bytes[2] = static_cast<std::uint8_t>(seq >> 8);
  p.bytes[3] = static_cast<std::uint8_t>(seq);
  std::uint32_t timestamp = 160u * seq;
  for (int i = 0; i < 4; ++i) {
    p.bytes[4 + i] = static_cast<std::uint8_t>(timestamp >> (24 - 8 * i));
    p.bytes[8 + i] = static_cast<std::uint8_t>(ssrc >> (24 - 8 * i));
  }
  for (std::size_t i = 12; i < 172; ++i) p.bytes[i] = static_cast<std::uint8_t>(0x55 ^ i);
  return p;
}

// An RTCP sender report without report blocks (RFC 3550 §6.4.1): 28 bytes.
Packet senderReport(std::uint32_t ssrc = 0x11223344) {
  Packet p;
  p.len = 28;
  p.bytes[0] = 0x80;
  p.bytes[1] = 200;
  p.bytes[3] = 6;  // length in 32-bit words minus one
  for (int i = 0; i < 4; ++i) p.bytes[4 + i] = static_cast<std::uint8_t>(ssrc >> (24 - 8 * i));
  for (std::size_t i = 8; i < 28; ++i) p.bytes[i] = static_cast<std::uint8_t>(i);
  return p;
}

KeyMaterial freshKey(Suite suite) {
  KeyMaterial key;
  EXPECT_TRUE(randomKey(suite, key));
  return key;
}

// SRTP tag and SRTCP trailer (E|index word plus tag) for each suite.
std::size_t rtpTag(Suite suite) {
  switch (suite) {
    case Suite::AesCm128HmacSha1_80:
      return 10;
    case Suite::AesCm128HmacSha1_32:
      return 4;
    default:
      return 16;
  }
}
std::size_t rtcpTrailer(Suite suite) {
  return 4 + (suite == Suite::AeadAes128Gcm || suite == Suite::AeadAes256Gcm ? 16 : 10);
}

// --- suites ---

TEST(SrtpSuites, NamesRoundTripExactly) {
  EXPECT_EQ(suiteName(Suite::AesCm128HmacSha1_80), "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(suiteName(Suite::AesCm128HmacSha1_32), "AES_CM_128_HMAC_SHA1_32");
  EXPECT_EQ(suiteName(Suite::AeadAes128Gcm), "AEAD_AES_128_GCM");
  EXPECT_EQ(suiteName(Suite::AeadAes256Gcm), "AEAD_AES_256_GCM");
  for (Suite suite : kAllSuites) EXPECT_EQ(suiteByName(suiteName(suite)), suite);
  EXPECT_EQ(suiteByName("aes_cm_128_hmac_sha1_80"), std::nullopt);
  EXPECT_EQ(suiteByName("AES_CM_128_HMAC_SHA1_80 "), std::nullopt);
  EXPECT_EQ(suiteByName("F8_128_HMAC_SHA1_80"), std::nullopt);
  EXPECT_EQ(suiteByName("AES_256_CM_HMAC_SHA1_80"), std::nullopt);
  EXPECT_EQ(suiteByName(""), std::nullopt);
}

TEST(SrtpSuites, MasterKeyLengths) {
  EXPECT_EQ(masterKeyLength(Suite::AesCm128HmacSha1_80), 30u);
  EXPECT_EQ(masterKeyLength(Suite::AesCm128HmacSha1_32), 30u);
  EXPECT_EQ(masterKeyLength(Suite::AeadAes128Gcm), 28u);
  EXPECT_EQ(masterKeyLength(Suite::AeadAes256Gcm), 44u);
}

TEST(SrtpSuites, RandomKeysHaveTheSuitesLengthAndDiffer) {
  for (Suite suite : kAllSuites) {
    KeyMaterial a, b;
    ASSERT_TRUE(randomKey(suite, a));
    ASSERT_TRUE(randomKey(suite, b));
    EXPECT_EQ(a.suite, suite);
    EXPECT_EQ(a.size, masterKeyLength(suite));
    EXPECT_NE(keyBytes(a), keyBytes(b));
    // Nothing past the key is touched.
    EXPECT_TRUE(std::all_of(a.bytes.begin() + static_cast<std::ptrdiff_t>(a.size), a.bytes.end(),
                            [](std::uint8_t byte) { return byte == 0; }));
  }
}

TEST(SrtpSuites, ClearWipesTheKey) {
  KeyMaterial key = freshKey(Suite::AeadAes256Gcm);
  key.clear();
  EXPECT_EQ(key.size, 0u);
  EXPECT_TRUE(std::all_of(key.bytes.begin(), key.bytes.end(), [](std::uint8_t byte) { return byte == 0; }));
}

// --- SDES key-params ---

TEST(SrtpSdesKeyParams, EncodesStandardBase64WithPadding) {
  // Expected strings from Python's base64 module.
  EXPECT_EQ(inlineKeyParams(keyFromHex(Suite::AesCm128HmacSha1_80,
                                       "e1f97a0d3e018be0d64fa32c06de41390ec675ad498afeebb6960b3aabe6")),
            "inline:4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm");
  EXPECT_EQ(inlineKeyParams(
                keyFromHex(Suite::AeadAes128Gcm, "000102030405060708090a0b0c0d0e0fa0a1a2a3a4a5a6a7a8a9aaab")),
            "inline:AAECAwQFBgcICQoLDA0OD6ChoqOkpaanqKmqqw==");
  KeyMaterial wide;
  wide.suite = Suite::AeadAes256Gcm;
  for (std::size_t i = 0; i < 44; ++i) wide.bytes[i] = static_cast<std::uint8_t>(i);
  wide.size = 44;
  EXPECT_EQ(inlineKeyParams(wide), "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKis=");
}

TEST(SrtpSdesKeyParams, RoundTripsEverySuite) {
  for (Suite suite : kAllSuites) {
    for (int i = 0; i < 50; ++i) {
      KeyMaterial key = freshKey(suite);
      KeyMaterial parsed;
      ASSERT_TRUE(parseInlineKeyParams(suite, inlineKeyParams(key), parsed)) << suiteName(suite);
      EXPECT_EQ(parsed.suite, suite);
      EXPECT_EQ(keyBytes(parsed), keyBytes(key));
    }
  }
}

TEST(SrtpSdesKeyParams, DecodesTheRfc4568ExampleKey) {
  // RFC 4568 §9.1's example carries MKI 1:32; without it the key is ours.
  KeyMaterial key;
  ASSERT_TRUE(parseInlineKeyParams(Suite::AesCm128HmacSha1_80,
                                   "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20", key));
  EXPECT_EQ(keyBytes(key), fromHex("3d2d6e40255e7821426a75667239293f2c2335685c603d265d7b71695051"));
  EXPECT_FALSE(parseInlineKeyParams(Suite::AesCm128HmacSha1_80,
                                    "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32", key));
  EXPECT_EQ(key.size, 0u);
}

TEST(SrtpSdesKeyParams, AcceptsLifetimesAndKeyLists) {
  const std::string base = "inline:4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm";
  const auto expected = fromHex("e1f97a0d3e018be0d64fa32c06de41390ec675ad498afeebb6960b3aabe6");
  for (const std::string& text : {base, base + "|2^31", base + "|1048576",
                                  base + ";inline:AAECAwQFBgcICQoLDA0OD6ChoqOkpaanqKmqqw==|1:4",
                                  std::string("INLINE:4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm")}) {
    KeyMaterial key;
    ASSERT_TRUE(parseInlineKeyParams(Suite::AesCm128HmacSha1_80, text, key)) << text;
    EXPECT_EQ(keyBytes(key), expected) << text;
  }
  // Some phones drop the padding of a 28-byte key.
  KeyMaterial key;
  ASSERT_TRUE(
      parseInlineKeyParams(Suite::AeadAes128Gcm, "inline:AAECAwQFBgcICQoLDA0OD6ChoqOkpaanqKmqqw", key));
  EXPECT_EQ(keyBytes(key), fromHex("000102030405060708090a0b0c0d0e0fa0a1a2a3a4a5a6a7a8a9aaab"));
}

TEST(SrtpSdesKeyParams, RefusesMalformedKeys) {
  const std::string key30 = "4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm";
  const std::vector<std::pair<Suite, std::string>> refused = {
      {Suite::AesCm128HmacSha1_80, ""},
      {Suite::AesCm128HmacSha1_80, "inline:"},
      {Suite::AesCm128HmacSha1_80, "inline"},
      {Suite::AesCm128HmacSha1_80, key30},                             // no method
      {Suite::AesCm128HmacSha1_80, "uri:" + key30},                    // not inline
      {Suite::AesCm128HmacSha1_80, "inline:" + key30 + "|1:4"},        // MKI
      {Suite::AesCm128HmacSha1_80, "inline:" + key30 + "|2^20|1:32"},  // MKI after a lifetime
      {Suite::AesCm128HmacSha1_80, "inline:" + key30 + "|"},           // empty field
      {Suite::AesCm128HmacSha1_80, "inline:" + key30 + "|2^"},         // bad lifetime
      {Suite::AesCm128HmacSha1_80, "inline:" + key30 + "|forever"},    // bad lifetime
      {Suite::AesCm128HmacSha1_80, "inline:" + key30 + "|2^20|2^20"},  // two lifetimes
      {Suite::AesCm128HmacSha1_80, "inline:4fl6DT4Bi-DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm"},      // URL-safe
      {Suite::AesCm128HmacSha1_80, "inline:4fl6DT4Bi+DWT6Ms Bt5BOQ7Gda1Jiv7rtpYLOqv"},      // space
      {Suite::AesCm128HmacSha1_80, "inline:4fl6DT4Bi+DWT6MsB=5BOQ7Gda1Jiv7rtpYLOqvm"},      // '=' inside
      {Suite::AesCm128HmacSha1_80, "inline:4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqv"},       // 29 bytes
      {Suite::AesCm128HmacSha1_80, "inline:4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvmAA=="},  // 31
      {Suite::AeadAes128Gcm, "inline:" + key30},                                            // 30 for 28
      {Suite::AeadAes256Gcm, "inline:AAECAwQFBgcICQoLDA0OD6ChoqOkpaanqKmqqw=="},            // 28 for 44
      {Suite::AeadAes128Gcm, "inline:AAECAwQFBgcICQoLDA0OD6ChoqOkpaanqKmqqw="},             // short padding
      {Suite::AeadAes128Gcm, "inline:AAECAwQFBgcICQoLDA0OD6ChoqOkpaanqKmqqw==="},           // long padding
  };
  for (const auto& [suite, text] : refused) {
    KeyMaterial key = freshKey(suite);
    EXPECT_FALSE(parseInlineKeyParams(suite, text, key)) << suiteName(suite) << " " << text;
    EXPECT_EQ(key.size, 0u);
    EXPECT_TRUE(std::all_of(key.bytes.begin(), key.bytes.end(), [](std::uint8_t byte) { return byte == 0; }));
  }
}

// --- a=crypto ---

TEST(SrtpCryptoAttribute, ParsesTagSuiteKeyAndSessionParams) {
  CryptoAttribute attribute;
  ASSERT_TRUE(parseCryptoAttribute(
      "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32", attribute));
  EXPECT_EQ(attribute.tag, 1u);
  EXPECT_EQ(attribute.suite_name, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(attribute.key_params, "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32");
  EXPECT_EQ(attribute.session_params, "");

  ASSERT_TRUE(parseCryptoAttribute(
      "999999999  AEAD_AES_256_GCM\tinline:AAEC==  UNENCRYPTED_SRTCP KDR=23 WSH=128 \r", attribute));
  EXPECT_EQ(attribute.tag, 999999999u);
  EXPECT_EQ(attribute.suite_name, "AEAD_AES_256_GCM");
  EXPECT_EQ(attribute.key_params, "inline:AAEC==");
  EXPECT_EQ(attribute.session_params, "UNENCRYPTED_SRTCP KDR=23 WSH=128");

  // A suite we do not offer is still a well-formed line.
  ASSERT_TRUE(parseCryptoAttribute("7 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm",
                                   attribute));
  EXPECT_EQ(attribute.tag, 7u);
  EXPECT_EQ(suiteByName(attribute.suite_name), std::nullopt);
}

TEST(SrtpCryptoAttribute, RefusesBadTagsAndMissingFields) {
  for (std::string_view text : {
           "",
           "   ",
           "1",
           "1 AES_CM_128_HMAC_SHA1_80",
           "1 AES_CM_128_HMAC_SHA1_80   ",
           "0 AES_CM_128_HMAC_SHA1_80 inline:x",
           "1000000000 AES_CM_128_HMAC_SHA1_80 inline:x",
           "0000000001 AES_CM_128_HMAC_SHA1_80 inline:x",  // ten digits
           "-1 AES_CM_128_HMAC_SHA1_80 inline:x",
           "+1 AES_CM_128_HMAC_SHA1_80 inline:x",
           "x AES_CM_128_HMAC_SHA1_80 inline:x",
           "1a AES_CM_128_HMAC_SHA1_80 inline:x",
           "1 AES-CM-128 inline:x",
       }) {
    CryptoAttribute attribute;
    EXPECT_FALSE(parseCryptoAttribute(text, attribute)) << '"' << text << '"';
  }
}

// --- sessions ---

struct SessionPair {
  std::unique_ptr<Session> out;
  std::unique_ptr<Session> in;
};

SessionPair makePair(const KeyMaterial& key) {
  return {Session::create(Session::Direction::Outbound, key),
          Session::create(Session::Direction::Inbound, key)};
}

class SrtpSession : public ::testing::TestWithParam<Suite> {};

TEST_P(SrtpSession, RtpRoundTrip) {
  KeyMaterial key = freshKey(GetParam());
  SessionPair pair = makePair(key);
  ASSERT_TRUE(pair.out && pair.in);
  for (std::uint16_t seq = 1000; seq < 1010; ++seq) {
    Packet plain = g711Packet(seq);
    Packet packet = plain;
    ASSERT_TRUE(pair.out->protectRtp(packet.bytes.data(), packet.len, packet.bytes.size()));
    EXPECT_EQ(packet.len, 172 + rtpTag(GetParam()));
    EXPECT_TRUE(
        std::equal(plain.bytes.begin(), plain.bytes.begin() + 12, packet.bytes.begin()));  // header in clear
    EXPECT_FALSE(std::equal(plain.bytes.begin() + 12, plain.bytes.begin() + 172, packet.bytes.begin() + 12));
    ASSERT_TRUE(pair.in->unprotectRtp(packet.bytes.data(), packet.len));
    EXPECT_EQ(packet.content(), plain.content());
    EXPECT_EQ(pair.in->lastFailure(), Session::Failure::None);
  }
}

TEST_P(SrtpSession, RtcpRoundTrip) {
  KeyMaterial key = freshKey(GetParam());
  SessionPair pair = makePair(key);
  ASSERT_TRUE(pair.out && pair.in);
  for (int i = 0; i < 3; ++i) {
    Packet plain = senderReport();
    Packet packet = plain;
    ASSERT_TRUE(pair.out->protectRtcp(packet.bytes.data(), packet.len, packet.bytes.size()));
    // AES_CM_128_HMAC_SHA1_32 keeps the 80-bit tag on SRTCP.
    EXPECT_EQ(packet.len, 28 + rtcpTrailer(GetParam()));
    ASSERT_TRUE(pair.in->unprotectRtcp(packet.bytes.data(), packet.len));
    EXPECT_EQ(packet.content(), plain.content());
  }
}

TEST_P(SrtpSession, TamperedPacketsFailAuthentication) {
  KeyMaterial key = freshKey(GetParam());
  SessionPair pair = makePair(key);
  ASSERT_TRUE(pair.out && pair.in);
  std::uint16_t seq = 1;
  for (std::size_t offset :
       {std::size_t{3}, std::size_t{12}, std::size_t{100}, std::size_t{171}, std::size_t{172}}) {
    Packet packet = g711Packet(seq++);
    ASSERT_TRUE(pair.out->protectRtp(packet.bytes.data(), packet.len, packet.bytes.size()));
    packet.bytes[offset] ^= 0x01;
    std::size_t len = packet.len;
    EXPECT_FALSE(pair.in->unprotectRtp(packet.bytes.data(), len)) << offset;
    EXPECT_EQ(pair.in->lastFailure(), Session::Failure::Auth) << offset;
    EXPECT_EQ(len, packet.len);
  }
  Packet report = senderReport();
  ASSERT_TRUE(pair.out->protectRtcp(report.bytes.data(), report.len, report.bytes.size()));
  report.bytes[20] ^= 0x80;
  EXPECT_FALSE(pair.in->unprotectRtcp(report.bytes.data(), report.len));
  EXPECT_EQ(pair.in->lastFailure(), Session::Failure::Auth);
  // The untouched packet after a forgery still passes.
  Packet good = g711Packet(seq);
  ASSERT_TRUE(pair.out->protectRtp(good.bytes.data(), good.len, good.bytes.size()));
  EXPECT_TRUE(pair.in->unprotectRtp(good.bytes.data(), good.len));
}

TEST_P(SrtpSession, ReplayedPacketsAreRefused) {
  KeyMaterial key = freshKey(GetParam());
  SessionPair pair = makePair(key);
  ASSERT_TRUE(pair.out && pair.in);
  Packet packet = g711Packet(42);
  ASSERT_TRUE(pair.out->protectRtp(packet.bytes.data(), packet.len, packet.bytes.size()));
  Packet copy = packet;
  ASSERT_TRUE(pair.in->unprotectRtp(packet.bytes.data(), packet.len));
  EXPECT_FALSE(pair.in->unprotectRtp(copy.bytes.data(), copy.len));
  EXPECT_EQ(pair.in->lastFailure(), Session::Failure::Replay);

  Packet report = senderReport();
  ASSERT_TRUE(pair.out->protectRtcp(report.bytes.data(), report.len, report.bytes.size()));
  Packet report_copy = report;
  ASSERT_TRUE(pair.in->unprotectRtcp(report.bytes.data(), report.len));
  EXPECT_FALSE(pair.in->unprotectRtcp(report_copy.bytes.data(), report_copy.len));
  EXPECT_EQ(pair.in->lastFailure(), Session::Failure::Replay);
}

TEST_P(SrtpSession, AWrongKeyFailsAuthentication) {
  KeyMaterial key = freshKey(GetParam());
  KeyMaterial other = freshKey(GetParam());
  auto out = Session::create(Session::Direction::Outbound, key);
  auto in = Session::create(Session::Direction::Inbound, other);
  ASSERT_TRUE(out && in);
  Packet packet = g711Packet(7);
  ASSERT_TRUE(out->protectRtp(packet.bytes.data(), packet.len, packet.bytes.size()));
  EXPECT_FALSE(in->unprotectRtp(packet.bytes.data(), packet.len));
  EXPECT_EQ(in->lastFailure(), Session::Failure::Auth);
  Packet report = senderReport();
  ASSERT_TRUE(out->protectRtcp(report.bytes.data(), report.len, report.bytes.size()));
  EXPECT_FALSE(in->unprotectRtcp(report.bytes.data(), report.len));
  EXPECT_EQ(in->lastFailure(), Session::Failure::Auth);
}

INSTANTIATE_TEST_SUITE_P(Srtp, SrtpSession, ::testing::ValuesIn(kAllSuites),
                         [](const ::testing::TestParamInfo<Suite>& info) {
                           std::string name(suiteName(info.param));
                           name.erase(std::remove(name.begin(), name.end(), '_'), name.end());
                           return name;
                         });

TEST(SrtpSessionLimits, ReplayWindowIs1024Packets) {
  KeyMaterial key = freshKey(Suite::AesCm128HmacSha1_80);
  SessionPair pair = makePair(key);
  ASSERT_TRUE(pair.out && pair.in);
  std::vector<Packet> sent;
  for (std::uint16_t seq = 0; seq <= 1100; ++seq) {
    sent.push_back(g711Packet(seq));
    ASSERT_TRUE(pair.out->protectRtp(sent.back().bytes.data(), sent.back().len, sent.back().bytes.size()));
  }
  ASSERT_TRUE(pair.in->unprotectRtp(sent[1100].bytes.data(), sent[1100].len));
  EXPECT_TRUE(
      pair.in->unprotectRtp(sent[200].bytes.data(), sent[200].len));         // 900 behind: late, not replayed
  EXPECT_FALSE(pair.in->unprotectRtp(sent[10].bytes.data(), sent[10].len));  // 1090 behind
  EXPECT_EQ(pair.in->lastFailure(), Session::Failure::Replay);
}

TEST(SrtpSessionLimits, OneInboundSessionServesAnySsrcOfItsPeer) {
  KeyMaterial key = freshKey(Suite::AesCm128HmacSha1_80);
  SessionPair pair = makePair(key);
  ASSERT_TRUE(pair.out && pair.in);
  for (std::uint32_t ssrc : {0x1u, 0xdeadbeefu, 0x2u}) {
    Packet packet = g711Packet(5, ssrc);
    ASSERT_TRUE(pair.out->protectRtp(packet.bytes.data(), packet.len, packet.bytes.size()));
    EXPECT_TRUE(pair.in->unprotectRtp(packet.bytes.data(), packet.len)) << ssrc;
  }
}

TEST(SrtpSessionLimits, RetransmissionsAreProtectedAgain) {
  KeyMaterial key = freshKey(Suite::AesCm128HmacSha1_80);
  auto out = Session::create(Session::Direction::Outbound, key);
  ASSERT_TRUE(out);
  Packet first = g711Packet(9);
  Packet again = g711Packet(9);
  ASSERT_TRUE(out->protectRtp(first.bytes.data(), first.len, first.bytes.size()));
  ASSERT_TRUE(out->protectRtp(again.bytes.data(), again.len, again.bytes.size()));
  EXPECT_EQ(first.content(), again.content());
}

TEST(SrtpSessionLimits, RefusesBadKeysBuffersAndDirections) {
  KeyMaterial key = freshKey(Suite::AesCm128HmacSha1_80);
  KeyMaterial short_key = key;
  short_key.size = 28;
  EXPECT_EQ(Session::create(Session::Direction::Outbound, short_key), nullptr);
  KeyMaterial empty;
  EXPECT_EQ(Session::create(Session::Direction::Inbound, empty), nullptr);

  SessionPair pair = makePair(key);
  ASSERT_TRUE(pair.out && pair.in);
  Packet packet = g711Packet(1);
  // No room for the worst-case trailer.
  std::size_t len = packet.len;
  EXPECT_FALSE(pair.out->protectRtp(packet.bytes.data(), len, 172 + Session::kMaxTrailer - 1));
  EXPECT_EQ(pair.out->lastFailure(), Session::Failure::Other);
  EXPECT_EQ(len, 172u);
  EXPECT_FALSE(pair.out->protectRtp(packet.bytes.data(), len, 100));  // capacity below the packet
  // Too short to be RTP or RTCP.
  len = 11;
  EXPECT_FALSE(pair.out->protectRtp(packet.bytes.data(), len, packet.bytes.size()));
  EXPECT_FALSE(pair.in->unprotectRtp(packet.bytes.data(), len));
  EXPECT_EQ(pair.in->lastFailure(), Session::Failure::Other);
  len = 7;
  EXPECT_FALSE(pair.out->protectRtcp(packet.bytes.data(), len, packet.bytes.size()));
  EXPECT_FALSE(pair.in->unprotectRtcp(packet.bytes.data(), len));
  // A protected packet shorter than its tag.
  len = 15;
  EXPECT_FALSE(pair.in->unprotectRtp(packet.bytes.data(), len));
  // Each session works one way only.
  len = packet.len;
  EXPECT_FALSE(pair.in->protectRtp(packet.bytes.data(), len, packet.bytes.size()));
  EXPECT_EQ(pair.in->lastFailure(), Session::Failure::Other);
  EXPECT_FALSE(pair.out->unprotectRtp(packet.bytes.data(), len));
  EXPECT_FALSE(pair.in->protectRtcp(packet.bytes.data(), len, packet.bytes.size()));
  EXPECT_FALSE(pair.out->unprotectRtcp(packet.bytes.data(), len));
  // libsrtp reads 32-bit words: a misaligned packet is refused, not read.
  EXPECT_FALSE(pair.out->protectRtp(packet.bytes.data() + 1, len, packet.bytes.size() - 1));
  EXPECT_EQ(pair.out->lastFailure(), Session::Failure::Other);
  EXPECT_EQ(len, 172u);
}

// --- known answers (../shared/corpus/srtp-vectors) ---
//
// Packet-level vectors from libsrtp's srtp_driver.c. Our Session drives two of them:
// libsrtp_kat (AES_CM_128_HMAC_SHA1_80) and libsrtp_kat_gcm (AEAD_AES_128_GCM), RTP and RTCP.
// Left out, because they need what Palisade does not offer:
//   libsrtp_kat_mki                     an MKI (we refuse MKI in SDES)
//   libsrtp_kat_null_sha1_80, _null_null NULL ciphers (never offered)
//   libsrtp_kat_aes_192, _aes_256       AES-192/256-CM suites (not in Suite)
//   libsrtp_kat_encrypted_extensions_headers{,_gcm}  RFC 6904 header-extension encryption
// The corpus has no packet-level AEAD_AES_256_GCM vector; that suite is covered by the round
// trips above only. The keystream, KDF and cipher-level vectors (rfc3711-appendix-b.tsv,
// libsrtp-cipher-kat.json) test libsrtp's and OpenSSL's primitives, which the Session API does
// not expose. The test below fails if the index gains a packet-level vector nobody has judged.

struct KnownAnswer {
  std::string id;
  Suite suite;
  std::string key_hex;
  std::string rtp_hex, srtp_hex, rtcp_hex, srtcp_hex;
};

std::vector<KnownAnswer> packetVectors(std::set<std::string>& left_out) {
  std::vector<KnownAnswer> out;
  std::set<std::string> files;
  for (const auto& row : testing::readCorpusIndex("srtp-vectors/index.tsv")) {
    if (row["level"].starts_with("packet")) files.insert(row["file"]);
  }
  EXPECT_FALSE(files.empty());
  for (const std::string& file : files) {
    std::stringstream text(testing::readCorpusFile("srtp-vectors/" + file));
    boost::property_tree::ptree tree;
    boost::property_tree::read_json(text, tree);
    for (const auto& entry : tree.get_child("vectors")) {
      const boost::property_tree::ptree& vector = entry.second;
      std::string id = vector.get<std::string>("id");
      std::optional<Suite> suite = suiteByName(vector.get<std::string>("suite"));
      bool usable = suite && vector.get<std::string>("mki_hex") == "null" &&
                    !vector.get_child_optional("encrypted_header_extension_ids");
      if (!usable) {
        left_out.insert(id);
        continue;
      }
      out.push_back({id, *suite, vector.get<std::string>("master_key_and_salt_hex"),
                     vector.get<std::string>("rtp_plaintext_hex"),
                     vector.get<std::string>("srtp_protected_hex"),
                     vector.get<std::string>("rtcp_plaintext_hex", ""),
                     vector.get<std::string>("srtcp_protected_hex", "")});
    }
  }
  return out;
}

TEST(SrtpKnownAnswer, LibsrtpPacketVectors) {
  std::set<std::string> left_out;
  std::vector<KnownAnswer> vectors = packetVectors(left_out);
  std::set<std::string> used;
  for (const KnownAnswer& v : vectors) used.insert(v.id);
  EXPECT_EQ(used, (std::set<std::string>{"libsrtp_kat", "libsrtp_kat_gcm"}));
  EXPECT_EQ(left_out,
            (std::set<std::string>{"libsrtp_kat_mki", "libsrtp_kat_null_sha1_80", "libsrtp_kat_null_null",
                                   "libsrtp_kat_aes_192", "libsrtp_kat_aes_256",
                                   "libsrtp_kat_encrypted_extensions_headers",
                                   "libsrtp_kat_encrypted_extensions_headers_gcm"}));

  for (const KnownAnswer& v : vectors) {
    SCOPED_TRACE(v.id);
    KeyMaterial key = keyFromHex(v.suite, v.key_hex);
    ASSERT_EQ(key.size, masterKeyLength(v.suite));
    SessionPair pair = makePair(key);
    ASSERT_TRUE(pair.out && pair.in);

    Packet rtp(fromHex(v.rtp_hex));
    ASSERT_TRUE(pair.out->protectRtp(rtp.bytes.data(), rtp.len, rtp.bytes.size()));
    EXPECT_EQ(rtp.content(), fromHex(v.srtp_hex));
    Packet srtp(fromHex(v.srtp_hex));
    ASSERT_TRUE(pair.in->unprotectRtp(srtp.bytes.data(), srtp.len));
    EXPECT_EQ(srtp.content(), fromHex(v.rtp_hex));

    ASSERT_FALSE(v.rtcp_hex.empty());
    Packet rtcp(fromHex(v.rtcp_hex));
    ASSERT_TRUE(pair.out->protectRtcp(rtcp.bytes.data(), rtcp.len, rtcp.bytes.size()));
    EXPECT_EQ(rtcp.content(), fromHex(v.srtcp_hex));
    Packet srtcp(fromHex(v.srtcp_hex));
    ASSERT_TRUE(pair.in->unprotectRtcp(srtcp.bytes.data(), srtcp.len));
    EXPECT_EQ(srtcp.content(), fromHex(v.rtcp_hex));
  }
}

}  // namespace
}  // namespace palisade::media::srtp
