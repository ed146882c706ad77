#include "tests/support/test_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace palisade::testing {

namespace {

void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) throw std::runtime_error("bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

EVP_PKEY* readKey(const std::string& file) {
  FILE* f = std::fopen(file.c_str(), "r");
  if (f == nullptr) throw std::runtime_error("cannot open " + file);
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return key;
}

X509* readCert(const std::string& file) {
  FILE* f = std::fopen(file.c_str(), "r");
  if (f == nullptr) throw std::runtime_error("cannot open " + file);
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return cert;
}

}  // namespace

TestCert makeTestCert(const std::string& dir, const std::string& name, const TestCertSpec& spec) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  static long serial = 1000;
  ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), static_cast<long>(spec.not_before_offset_s));
  X509_gmtime_adj(X509_getm_notAfter(cert), static_cast<long>(spec.not_after_offset_s));
  X509_set_pubkey(cert, key);
  X509_NAME* subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1, 0);
  X509* issuer_cert = spec.issuer != nullptr ? readCert(spec.issuer->certificate) : nullptr;
  EVP_PKEY* issuer_key = spec.issuer != nullptr ? readKey(spec.issuer->key) : nullptr;
  X509_set_issuer_name(cert, issuer_cert != nullptr ? X509_get_subject_name(issuer_cert) : subject);
  X509* signer = issuer_cert != nullptr ? issuer_cert : cert;
  addExtension(cert, signer, NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  addExtension(cert, signer, NID_key_usage,
               spec.ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  addExtension(cert, signer, NID_subject_key_identifier, "hash");
  if (issuer_cert != nullptr) addExtension(cert, signer, NID_authority_key_identifier, "keyid");
  std::string names;
  for (const auto& dns : spec.dns) names += (names.empty() ? "DNS:" : ",DNS:") + dns;
  for (const auto& ip : spec.ips) names += (names.empty() ? "IP:" : ",IP:") + ip;
  if (!names.empty()) addExtension(cert, signer, NID_subject_alt_name, names);
  X509_sign(cert, issuer_key != nullptr ? issuer_key : key, EVP_sha256());

  TestCert out{dir + "/" + name + ".pem", dir + "/" + name + ".key"};
  FILE* f = std::fopen(out.certificate.c_str(), "w");
  PEM_write_X509(f, cert);
  std::fclose(f);
  f = std::fopen(out.key.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(cert);
  EVP_PKEY_free(key);
  if (issuer_cert != nullptr) X509_free(issuer_cert);
  if (issuer_key != nullptr) EVP_PKEY_free(issuer_key);
  return out;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "palisade-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& text) const {
  std::string path = file(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace palisade::testing
