#pragma once
// The certificate store: PEM certificates and keys loaded and checked (the chain in order and
// signed, the key matching, the validity period), their names and fingerprints, and the
// OpenSSL contexts built from them for new handshakes. Built on the control thread at start
// and at every reload; workers only ever hold a std::shared_ptr<const TlsContexts>, and every
// connection keeps the one it began with, so a reload never touches a live connection.
#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"
#include "core/config/config.h"

namespace palisade::certs {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct X509StoreFree {
  void operator()(X509_STORE* store) const { X509_STORE_free(store); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using X509StorePtr = std::unique_ptr<X509_STORE, X509StoreFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// Why a file was refused: "FILE: message".
struct CertError {
  std::string file;
  std::string message;
  std::string toString() const { return file + ": " + message; }
};

// What is known about one loaded certificate (never the key).
struct CertificateInfo {
  std::string certificate_file;
  std::string key_file;
  std::string subject;             // the subject's CN, if any
  std::vector<std::string> names;  // DNS and IP subjectAltNames (lower case)
  std::int64_t not_before = 0;     // Unix seconds
  std::int64_t not_after = 0;
  std::string sha256_fingerprint;  // "AB:CD:...", of the leaf
  std::size_t chain_length = 0;    // certificates after the leaf
};

struct LoadedCertificate {
  X509Ptr leaf;
  std::vector<X509Ptr> chain;
  PkeyPtr key;
  CertificateInfo info;
};

// Loads a PEM certificate (then its chain, each issued and signed by the next) and its PEM
// key; refuses a missing or unreadable file, a key that does not match, an encrypted key, and
// a certificate outside its validity period at `now` (Unix seconds).
base::Result<LoadedCertificate, CertError> loadCertificate(const std::string& certificate_file,
                                                           const std::string& key_file, std::int64_t now);

// A PEM file of CA certificates as a trust store.
base::Result<X509StorePtr, CertError> loadTrustStore(const std::string& ca_file);

// Whether a certificate carries `name` as a DNS or IP subjectAltName or, when it has no
// DNS names, as its subject CN (RFC 6125 §6.4.4); "*.example.com" matches one label.
bool certificateNames(X509* cert, std::string_view name);

// Session-ticket keys (RFC 5077), shared by every context version so that a session resumes
// across a reload. The control thread rotates them; handshakes on any worker read them without
// a lock: three slots, the current one, the previous one (still decrypts) and the one being
// written, published by an atomic index.
class TicketKeys {
 public:
  struct Key {
    std::array<unsigned char, 16> name{};
    std::array<unsigned char, 32> aes{};
    std::array<unsigned char, 32> hmac{};
  };
  TicketKeys();
  // On the control thread: a fresh key encrypts from now on; the old one still decrypts.
  void rotate();
  // On any thread, inside a handshake.
  const Key& current() const { return slots_[current_.load(std::memory_order_acquire) % 3]; }
  // The key named `name`, and whether it is the current one; null when it has expired.
  const Key* find(const unsigned char* name, bool& is_current) const;

 private:
  std::array<Key, 3> slots_{};
  std::atomic<std::uint32_t> current_{0};
};

// Mutual TLS for one trunk: its clients' certificates must come from `store` and carry one of
// `names`.
struct ClientAuth {
  std::string trunk;
  X509StorePtr store;
  std::vector<std::string> names;
};

// On a server SSL before its handshake: the client must present a certificate that `rule`'s
// store verifies, and no session is resumed or ticketed (a session verified under one trunk's
// CA, or under a CA a reload removed, must not stand in for a verification). The SNI callback
// applies it again when it switches contexts (which resets the verify store).
void requireClientCertificate(SSL* ssl, const ClientAuth* rule);

// Everything a worker needs for new TLS handshakes, for one config version. Immutable.
class TlsContexts {
 public:
  ~TlsContexts();
  SSL_CTX* server() const { return servers_.empty() ? nullptr : servers_.front().get(); }
  SSL_CTX* client() const { return client_.get(); }
  bool verifyServer() const { return verify_server_; }
  // The mutual-TLS rule of the trunk named `trunk`, or null.
  const ClientAuth* clientAuth(std::string_view trunk) const;
  const std::vector<CertificateInfo>& certificates() const { return infos_; }

  // For the SNI callback: the context whose certificate carries `name`, or null.
  SSL_CTX* serverFor(std::string_view name) const;

 private:
  friend base::Result<std::shared_ptr<const TlsContexts>, CertError> buildTlsContexts(
      const config::Config&, std::shared_ptr<TicketKeys>, std::int64_t);
  std::vector<SslCtxPtr> servers_;  // by certificate, in config order
  std::vector<CertificateInfo> infos_;
  SslCtxPtr client_;
  bool verify_server_ = true;
  std::vector<ClientAuth> client_auth_;
  std::shared_ptr<TicketKeys> tickets_;
};

// Builds the contexts for `config`'s [tls] and trunks. `now` (Unix seconds) judges validity.
base::Result<std::shared_ptr<const TlsContexts>, CertError> buildTlsContexts(
    const config::Config& config, std::shared_ptr<TicketKeys> tickets, std::int64_t now);

// "certificate FILE (CN, names) expires in N days": one line per certificate that expires
// within `days` of `now`.
std::vector<std::string> expiryWarnings(const TlsContexts& contexts, std::int64_t now, std::uint32_t days);

// "2027-03-01 12:00:00 UTC".
std::string utcDate(std::int64_t unix_seconds);

// Everything OpenSSL has queued on this thread, as one line (and the queue cleared).
std::string opensslErrors();

}  // namespace palisade::certs
