#include "certs/cert_store.h"

#include <openssl/pem.h>

#include <ctime>

#include <gtest/gtest.h>

#include "tests/support/test_certs.h"

namespace palisade::certs {
namespace {

using testing::makeTestCert;
using testing::TempDir;
using testing::TestCert;
using testing::TestCertSpec;

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

class CertStoreTest : public ::testing::Test {
 protected:
  CertStoreTest() {
    TestCertSpec ca_spec;
    ca_spec.common_name = "Test CA";
    ca_spec.dns = {};
    ca_spec.ips = {};
    ca_spec.ca = true;
    ca_ = makeTestCert(dir_.path(), "ca", ca_spec);
    TestCertSpec leaf_spec;
    leaf_spec.issuer = &ca_;
    leaf_ = makeTestCert(dir_.path(), "leaf", leaf_spec);
  }

  std::string concat(const std::string& name, const std::vector<std::string>& files) {
    std::string text;
    for (const auto& f : files) text += testing::readFile(f);
    return dir_.write(name, text);
  }

  TempDir dir_;
  TestCert ca_;
  TestCert leaf_;
};

TEST_F(CertStoreTest, LoadsACertificateWithItsNamesAndFingerprint) {
  auto loaded = loadCertificate(leaf_.certificate, leaf_.key, now());
  ASSERT_TRUE(loaded.ok()) << loaded.error().toString();
  const CertificateInfo& info = loaded.value().info;
  EXPECT_EQ(info.subject, "localhost");
  EXPECT_EQ(info.names, (std::vector<std::string>{"localhost", "127.0.0.1"}));
  EXPECT_EQ(info.sha256_fingerprint.size(), 32u * 3 - 1);  // "AB:CD:..."
  EXPECT_EQ(info.chain_length, 0u);
  EXPECT_GT(info.not_after, now() + 86400 * 300);
  EXPECT_TRUE(certificateNames(loaded.value().leaf.get(), "localhost"));
  EXPECT_TRUE(certificateNames(loaded.value().leaf.get(), "127.0.0.1"));
  EXPECT_FALSE(certificateNames(loaded.value().leaf.get(), "127.0.0.2"));
  EXPECT_FALSE(certificateNames(loaded.value().leaf.get(), "example.com"));
}

TEST_F(CertStoreTest, AcceptsAChainInOrderAndRefusesOneOutOfOrder) {
  auto with_chain =
      loadCertificate(concat("chain.pem", {leaf_.certificate, ca_.certificate}), leaf_.key, now());
  ASSERT_TRUE(with_chain.ok()) << with_chain.error().toString();
  EXPECT_EQ(with_chain.value().info.chain_length, 1u);

  TestCertSpec other_spec;
  other_spec.common_name = "Other";
  other_spec.ca = true;
  TestCert other = makeTestCert(dir_.path(), "other", other_spec);
  std::string wrong = concat("wrong.pem", {leaf_.certificate, other.certificate});
  auto refused = loadCertificate(wrong, leaf_.key, now());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().file, wrong);
  EXPECT_NE(refused.error().message.find("did not issue"), std::string::npos) << refused.error().message;
}

TEST_F(CertStoreTest, NamesTheFileThatIsMissingOrUnreadable) {
  auto missing = loadCertificate(dir_.file("nope.pem"), leaf_.key, now());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().file, dir_.file("nope.pem"));
  EXPECT_NE(missing.error().message.find("cannot open"), std::string::npos);

  std::string garbage = dir_.write("garbage.pem", "this is not PEM\n");
  auto bad = loadCertificate(garbage, leaf_.key, now());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().toString(), garbage + ": holds no PEM certificate");

  auto no_key = loadCertificate(leaf_.certificate, garbage, now());
  ASSERT_FALSE(no_key.ok());
  EXPECT_EQ(no_key.error().file, garbage);
}

TEST_F(CertStoreTest, RefusesAKeyThatDoesNotMatch) {
  auto mismatched = loadCertificate(leaf_.certificate, ca_.key, now());
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.error().file, ca_.key);
  EXPECT_NE(mismatched.error().message.find("does not match"), std::string::npos);
}

TEST_F(CertStoreTest, RefusesAnEncryptedKeyWithoutPrompting) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  std::string path = dir_.file("encrypted.key");
  FILE* f = std::fopen(path.c_str(), "w");
  char passphrase[] = "secret-passphrase";
  PEM_write_PrivateKey(f, key, EVP_aes_128_cbc(), nullptr, 0, nullptr, passphrase);
  std::fclose(f);
  EVP_PKEY_free(key);
  auto refused = loadCertificate(leaf_.certificate, path, now());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("unencrypted"), std::string::npos);
}

TEST_F(CertStoreTest, RefusesExpiredAndNotYetValidCertificates) {
  TestCertSpec expired_spec;
  expired_spec.not_before_offset_s = -86400 * 10;
  expired_spec.not_after_offset_s = -60;
  TestCert expired = makeTestCert(dir_.path(), "expired", expired_spec);
  auto e = loadCertificate(expired.certificate, expired.key, now());
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("expired on"), std::string::npos) << e.error().message;

  TestCertSpec future_spec;
  future_spec.not_before_offset_s = 86400;
  TestCert future = makeTestCert(dir_.path(), "future", future_spec);
  auto f = loadCertificate(future.certificate, future.key, now());
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("not valid before"), std::string::npos);
}

config::Config configWith(const TestCert& cert) {
  config::Config c;
  c.source_name = "test.toml";
  c.tls.certificates.push_back(config::TlsCertificate{cert.certificate, cert.key, 1});
  return c;
}

TEST_F(CertStoreTest, BuildsServerAndClientContexts) {
  config::Config c = configWith(leaf_);
  c.tls.ca_file = ca_.certificate;
  auto built = buildTlsContexts(c, std::make_shared<TicketKeys>(), now());
  ASSERT_TRUE(built.ok()) << built.error().toString();
  ASSERT_NE(built.value()->server(), nullptr);
  ASSERT_NE(built.value()->client(), nullptr);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(built.value()->server()), TLS1_2_VERSION);
  EXPECT_EQ(built.value()->certificates().size(), 1u);
  EXPECT_EQ(built.value()->serverFor("localhost"), built.value()->server());
  EXPECT_EQ(built.value()->serverFor("example.com"), nullptr);
  EXPECT_TRUE(expiryWarnings(*built.value(), now(), 14).empty());
}

TEST_F(CertStoreTest, ChoosesTheCertificateBySni) {
  TestCertSpec other_spec;
  other_spec.common_name = "sip.example.com";
  other_spec.dns = {"sip.example.com"};
  other_spec.ips = {};
  other_spec.issuer = &ca_;
  TestCert other = makeTestCert(dir_.path(), "sni", other_spec);
  config::Config c = configWith(leaf_);
  c.tls.certificates.push_back(config::TlsCertificate{other.certificate, other.key, 2});
  auto built = buildTlsContexts(c, std::make_shared<TicketKeys>(), now());
  ASSERT_TRUE(built.ok()) << built.error().toString();
  SSL_CTX* chosen = built.value()->serverFor("SIP.example.com");
  ASSERT_NE(chosen, nullptr);
  EXPECT_NE(chosen, built.value()->server());
}

TEST_F(CertStoreTest, RefusesCipherListsOpenSslDoesNotKnow) {
  config::Config c = configWith(leaf_);
  c.tls.ciphers = "NO-SUCH-CIPHER";
  auto built = buildTlsContexts(c, std::make_shared<TicketKeys>(), now());
  ASSERT_FALSE(built.ok());
  EXPECT_NE(built.error().message.find("tls.ciphers"), std::string::npos);
}

TEST_F(CertStoreTest, RefusesAMissingClientCa) {
  config::Config c = configWith(leaf_);
  c.trunks.front().tls_client_ca = dir_.file("missing-ca.pem");
  c.trunks.front().tls_client_names = {"carrier"};
  auto built = buildTlsContexts(c, std::make_shared<TicketKeys>(), now());
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.error().file, dir_.file("missing-ca.pem"));

  c.trunks.front().tls_client_ca = ca_.certificate;
  auto ok = buildTlsContexts(c, std::make_shared<TicketKeys>(), now());
  ASSERT_TRUE(ok.ok()) << ok.error().toString();
  ASSERT_NE(ok.value()->clientAuth("carrier"), nullptr);
  EXPECT_EQ(ok.value()->clientAuth("carrier")->names, (std::vector<std::string>{"carrier"}));
  EXPECT_EQ(ok.value()->clientAuth("other"), nullptr);
}

TEST_F(CertStoreTest, WarnsAboutACertificateCloseToExpiry) {
  TestCertSpec soon_spec;
  soon_spec.not_after_offset_s = 86400 * 5 + 3600;
  TestCert soon = makeTestCert(dir_.path(), "soon", soon_spec);
  auto built = buildTlsContexts(configWith(soon), std::make_shared<TicketKeys>(), now());
  ASSERT_TRUE(built.ok()) << built.error().toString();
  auto warnings = expiryWarnings(*built.value(), now(), 14);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(soon.certificate), std::string::npos);
  EXPECT_NE(warnings[0].find("expires in 5 days"), std::string::npos) << warnings[0];
  EXPECT_TRUE(expiryWarnings(*built.value(), now(), 3).empty());
}

TEST(TicketKeys, RotationKeepsThePreviousKeyForDecryptionOnly) {
  TicketKeys keys;
  TicketKeys::Key first = keys.current();
  bool is_current = false;
  ASSERT_NE(keys.find(first.name.data(), is_current), nullptr);
  EXPECT_TRUE(is_current);
  keys.rotate();
  TicketKeys::Key second = keys.current();
  EXPECT_NE(first.name, second.name);
  EXPECT_NE(first.aes, second.aes);
  ASSERT_NE(keys.find(first.name.data(), is_current), nullptr);
  EXPECT_FALSE(is_current);  // still decrypts; a new ticket is issued under the current key
  keys.rotate();
  EXPECT_EQ(keys.find(first.name.data(), is_current), nullptr);  // two rotations: gone
  ASSERT_NE(keys.find(second.name.data(), is_current), nullptr);
  EXPECT_FALSE(is_current);
}

}  // namespace
}  // namespace palisade::certs
