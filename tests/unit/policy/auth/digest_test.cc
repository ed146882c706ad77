#include "policy/auth/digest.h"

#include "policy/auth/nonce_counts.h"

#include <gtest/gtest.h>

namespace palisade::policy::auth {
namespace {

// RFC 2617 §3.5 (MD5, qop=auth).
TEST(Digest, Rfc2617Example) {
  std::string h1 = ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
  EXPECT_EQ(requestDigest(Algorithm::Md5, h1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b",
                          "auth", "GET", "/dir/index.html"),
            "6629fae49393a05397450978507c4ef1");
}

// RFC 7616 §3.9.1, the same request with MD5 and with SHA-256.
TEST(Digest, Rfc7616Examples) {
  const char* nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
  const char* cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
  std::string md5 = ha1(Algorithm::Md5, "Mufasa", "http-auth@example.org", "Circle of Life");
  EXPECT_EQ(requestDigest(Algorithm::Md5, md5, nonce, "00000001", cnonce, "auth", "GET", "/dir/index.html"),
            "8ca523f5e9506fed4657c9700eebdbec");
  std::string sha = ha1(Algorithm::Sha256, "Mufasa", "http-auth@example.org", "Circle of Life");
  EXPECT_EQ(
      requestDigest(Algorithm::Sha256, sha, nonce, "00000001", cnonce, "auth", "GET", "/dir/index.html"),
      "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

// FIPS 180-4 SHA-512/256 of "abc" (the RFC 7616 SHA-512-256 example uses userhash).
TEST(Digest, Sha512_256) {
  EXPECT_EQ(hexDigest(Algorithm::Sha512_256, "abc"),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23");
  EXPECT_EQ(hexLength(Algorithm::Sha512_256), 64u);
  EXPECT_EQ(hexLength(Algorithm::Md5), 32u);
}

TEST(Digest, AlgorithmNames) {
  EXPECT_EQ(algorithmFromName("md5"), Algorithm::Md5);
  EXPECT_EQ(algorithmFromName("SHA-256"), Algorithm::Sha256);
  EXPECT_EQ(algorithmFromName("sha-512-256"), Algorithm::Sha512_256);
  EXPECT_FALSE(algorithmFromName("MD5-sess"));
  EXPECT_FALSE(algorithmFromName("SHA-1"));
  EXPECT_EQ(algorithmName(Algorithm::Sha512_256), "SHA-512-256");
}

TEST(Digest, ParsesCredentials) {
  DigestCredentials c;
  ASSERT_TRUE(parseDigestCredentials(
      R"(Digest username="2001", realm="palisade", nonce="abc", uri="sip:1000@127.0.0.1",)"
      R"( response="0123", algorithm=SHA-256, cnonce="xyz", qop=auth, nc=00000001, opaque="o")",
      c));
  EXPECT_EQ(c.username, "2001");
  EXPECT_EQ(c.realm, "palisade");
  EXPECT_EQ(c.nonce, "abc");
  EXPECT_EQ(c.uri, "sip:1000@127.0.0.1");
  EXPECT_EQ(c.response, "0123");
  EXPECT_EQ(c.algorithm, "SHA-256");
  EXPECT_EQ(c.cnonce, "xyz");
  EXPECT_EQ(c.qop, "auth");
  EXPECT_EQ(c.nc, "00000001");
  EXPECT_EQ(c.opaque, "o");
  // Case-insensitive scheme and names, folding whitespace, no spaces after commas.
  ASSERT_TRUE(parseDigestCredentials(
      "digest USERNAME=\"a\",realm=\"r\",\r\n nonce=\"n\",uri=\"u\",response=\"x\"", c));
  EXPECT_EQ(c.username, "a");
}

TEST(Digest, RefusesMalformedCredentials) {
  DigestCredentials c;
  for (const char* bad : {
           "",
           "Basic dXNlcjpwYXNz",
           "Digest",
           "Digest username=\"a\"",  // missing fields
           R"(Digest username="a", username="b", realm="r", nonce="n", uri="u", response="x")",  // twice
           R"(Digest username="a, realm="r", nonce="n", uri="u", response="x")",      // unterminated
           R"(Digest username="a\"b", realm="r", nonce="n", uri="u", response="x")",  // escapes
           R"(Digest username, realm="r", nonce="n", uri="u", response="x")",         // no value
           R"(Digestusername="a", realm="r", nonce="n", uri="u", response="x")",
       }) {
    EXPECT_FALSE(parseDigestCredentials(bad, c)) << bad;
  }
}

TEST(Digest, SameSecretIsExact) {
  EXPECT_TRUE(sameSecret("abc", "abc"));
  EXPECT_FALSE(sameSecret("abc", "abd"));
  EXPECT_FALSE(sameSecret("abc", "ab"));
}

TEST(Nonce, VerifiesItsOwnAndNothingElse) {
  std::array<std::uint8_t, 32> key{};
  key[0] = 7;
  NonceIssuer issuer(key);
  auto source = boost::asio::ip::make_address("192.0.2.10");
  std::string nonce = issuer.issue(1'000'000, source, "palisade", 42);
  EXPECT_EQ(nonce.size(), 64u);
  EXPECT_NE(issuer.issue(1'000'000, source, "palisade", 43), nonce);  // same millisecond, other salt
  EXPECT_EQ(issuer.verify(nonce, 1'000'500, source, "palisade", 300'000), NonceIssuer::Verdict::Valid);
  // Older than its lifetime: stale (the client retries with a fresh one, RFC 7616 §3.3).
  EXPECT_EQ(issuer.verify(nonce, 1'000'000 + 300'001, source, "palisade", 300'000),
            NonceIssuer::Verdict::Stale);
  // Another source, realm, key or a tampered timestamp: not ours.
  EXPECT_EQ(issuer.verify(nonce, 1'000'500, boost::asio::ip::make_address("192.0.2.11"), "palisade", 300'000),
            NonceIssuer::Verdict::Invalid);
  EXPECT_EQ(issuer.verify(nonce, 1'000'500, source, "other", 300'000), NonceIssuer::Verdict::Invalid);
  std::array<std::uint8_t, 32> other_key{};
  EXPECT_EQ(NonceIssuer(other_key).verify(nonce, 1'000'500, source, "palisade", 300'000),
            NonceIssuer::Verdict::Invalid);
  std::string tampered = nonce;
  tampered[15] = tampered[15] == '0' ? '1' : '0';  // the timestamp
  EXPECT_EQ(issuer.verify(tampered, 1'000'500, source, "palisade", 300'000), NonceIssuer::Verdict::Invalid);
  tampered = nonce;
  tampered[20] = tampered[20] == '0' ? '1' : '0';  // the salt
  EXPECT_EQ(issuer.verify(tampered, 1'000'500, source, "palisade", 300'000), NonceIssuer::Verdict::Invalid);
  EXPECT_EQ(issuer.verify("short", 1'000'500, source, "palisade", 300'000), NonceIssuer::Verdict::Invalid);
  // A nonce "from the future" is not ours either.
  EXPECT_EQ(issuer.verify(nonce, 999'000, source, "palisade", 300'000), NonceIssuer::Verdict::Invalid);
  // An IPv4-mapped IPv6 source is the same source.
  EXPECT_EQ(issuer.verify(nonce, 1'000'500, boost::asio::ip::make_address("::ffff:192.0.2.10"), "palisade",
                          300'000),
            NonceIssuer::Verdict::Valid);
  EXPECT_NE(NonceIssuer::tagOf(nonce), NonceIssuer::tagOf(issuer.issue(1'000'001, source, "palisade")));
}

TEST(Nonce, KeysDifferPerProcess) {
  NonceIssuer a, b;
  auto source = boost::asio::ip::make_address("192.0.2.10");
  EXPECT_NE(a.issue(1, source, "r"), b.issue(1, source, "r"));
}

TEST(NonceCounts, ACountIsUsedOnce) {
  auto counts = std::make_unique<NonceCounts>();
  std::uint64_t a = 0x1234567800000001ull;
  EXPECT_TRUE(counts->accept(a, 1));
  EXPECT_FALSE(counts->accept(a, 1));  // replayed
  EXPECT_TRUE(counts->accept(a, 2));
  EXPECT_FALSE(counts->accept(a, 1));  // older
  EXPECT_TRUE(counts->accept(a, 7));   // counts may skip (parallel requests)
  EXPECT_FALSE(counts->accept(a, 0));  // nc starts at 1
  std::uint64_t b = 0x9abcdef000000002ull;
  EXPECT_TRUE(counts->accept(b, 1));  // another nonce, its own history
  EXPECT_FALSE(counts->accept(b, 1));
}

}  // namespace
}  // namespace palisade::policy::auth
