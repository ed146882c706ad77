#include "certs/cert_store.h"

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

#include <fmt/format.h>

namespace palisade::certs {

namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// An encrypted key would make OpenSSL prompt on the terminal: refuse it instead.
int noPassphrase(char*, int, int, void*) { return -1; }

std::int64_t unixTime(const ASN1_TIME* time) {
  struct tm tm {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace

std::string utcDate(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

namespace {

base::Result<BioPtr, CertError> openFile(const std::string& file) {
  ERR_clear_error();
  errno = 0;
  BioPtr bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) {
    int error = errno;
    ERR_clear_error();
    return CertError{file, fmt::format("cannot open: {}",
                                       error != 0 ? std::error_code(error, std::generic_category()).message()
                                                  : std::string("unreadable"))};
  }
  return bio;
}

std::string commonName(X509* cert) {
  X509_NAME* subject = X509_get_subject_name(cert);
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return {};
  std::string name(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(length));
  OPENSSL_free(utf8);
  return name;
}

std::vector<std::string> altNames(X509* cert) {
  std::vector<std::string> names;
  auto* general = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (general == nullptr) return names;
  for (int i = 0; i < sk_GENERAL_NAME_num(general); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(general, i);
    if (name->type == GEN_DNS) {
      const ASN1_STRING* dns = name->d.dNSName;
      std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                       static_cast<std::size_t>(ASN1_STRING_length(dns)));
      for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      names.push_back(std::move(text));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      int family = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
      if (ASN1_STRING_length(ip) == 4 || ASN1_STRING_length(ip) == 16) {
        if (inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text) != nullptr)
          names.emplace_back(text);
      }
    }
  }
  GENERAL_NAMES_free(general);
  return names;
}

std::string fingerprint(X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &length) != 1) return {};
  std::string text;
  for (unsigned int i = 0; i < length; ++i)
    fmt::format_to(std::back_inserter(text), "{}{:02X}", i ? ":" : "", digest[i]);
  return text;
}

// Session tickets: AES-256-CBC with HMAC-SHA256 (RFC 5077 §4's recommended construction).
int ticketCallback(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                   EVP_MAC_CTX* mac, int encrypt) {
  auto* keys = static_cast<const TicketKeys*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  if (keys == nullptr) return -1;
  const TicketKeys::Key* key = nullptr;
  bool is_current = true;
  if (encrypt == 1) {
    key = &keys->current();
    if (RAND_bytes(iv, 16) != 1) return -1;
    std::memcpy(key_name, key->name.data(), key->name.size());
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv) != 1) return -1;
  } else {
    key = keys->find(key_name, is_current);
    if (key == nullptr) return 0;  // an expired or foreign ticket: a full handshake
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv) != 1) return -1;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key->hmac.data()),
                                        key->hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  return is_current ? 1 : 2;  // 2: valid, but issue a ticket under the current key
}

// SNI (RFC 6066 §3): a certificate whose names carry the requested host.
int serverNameCallback(SSL* ssl, int*, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  SSL_CTX* chosen = static_cast<const TlsContexts*>(arg)->serverFor(name);
  if (chosen != nullptr && chosen != SSL_get_SSL_CTX(ssl)) {
    SSL_set_SSL_CTX(ssl, chosen);
    if (const auto* rule = static_cast<const ClientAuth*>(SSL_get_app_data(ssl)))
      requireClientCertificate(ssl, rule);
  }
  return SSL_TLSEXT_ERR_OK;
}

// What every context shares: versions, suites, small buffers.
base::Result<SslCtxPtr, CertError> baseContext(const SSL_METHOD* method, const config::Config& config) {
  const config::TlsConfig& tls = config.tls;
  SslCtxPtr ctx(SSL_CTX_new(method));
  if (!ctx) return CertError{config.source_name, "cannot create a TLS context: " + opensslErrors()};
  SSL_CTX_set_min_proto_version(ctx.get(), tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_options(ctx.get(),
                      SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // An idle connection keeps no 16 kB record buffers (memory per idle connection).
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_set_cipher_list(ctx.get(), tls.ciphers.c_str()) != 1) {
    ERR_clear_error();
    return CertError{config.source_name,
                     fmt::format("tls.ciphers: OpenSSL knows no cipher in \"{}\"", tls.ciphers)};
  }
  if (SSL_CTX_set_ciphersuites(ctx.get(), tls.ciphersuites.c_str()) != 1) {
    ERR_clear_error();
    return CertError{
        config.source_name,
        fmt::format("tls.ciphersuites: OpenSSL knows no TLS 1.3 suite in \"{}\"", tls.ciphersuites)};
  }
  return ctx;
}

base::Result<bool, CertError> useCertificate(SSL_CTX* ctx, const LoadedCertificate& loaded) {
  if (SSL_CTX_use_certificate(ctx, loaded.leaf.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, loaded.key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return CertError{loaded.info.certificate_file, "OpenSSL refused the certificate: " + opensslErrors()};
  }
  for (const X509Ptr& cert : loaded.chain) {
    if (SSL_CTX_add1_chain_cert(ctx, cert.get()) != 1)
      return CertError{loaded.info.certificate_file, "OpenSSL refused the chain: " + opensslErrors()};
  }
  return true;
}

}  // namespace

std::string opensslErrors() {
  std::string out;
  char text[256];
  while (unsigned long error = ERR_get_error()) {
    ERR_error_string_n(error, text, sizeof text);
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? std::string("no detail") : out;
}

base::Result<LoadedCertificate, CertError> loadCertificate(const std::string& certificate_file,
                                                           const std::string& key_file, std::int64_t now) {
  LoadedCertificate loaded;
  {
    auto bio = openFile(certificate_file);
    if (!bio) return bio.error();
    loaded.leaf.reset(PEM_read_bio_X509(bio.value().get(), nullptr, noPassphrase, nullptr));
    if (!loaded.leaf) {
      ERR_clear_error();
      return CertError{certificate_file, "holds no PEM certificate"};
    }
    while (X509* next = PEM_read_bio_X509(bio.value().get(), nullptr, noPassphrase, nullptr))
      loaded.chain.emplace_back(next);
    unsigned long last = ERR_peek_last_error();
    if (last != 0 && ERR_GET_REASON(last) != PEM_R_NO_START_LINE) {
      std::string detail = opensslErrors();
      return CertError{certificate_file, fmt::format("certificate {} of the file cannot be read: {}",
                                                     loaded.chain.size() + 2, detail)};
    }
    ERR_clear_error();
  }
  {
    auto bio = openFile(key_file);
    if (!bio) return bio.error();
    loaded.key.reset(PEM_read_bio_PrivateKey(bio.value().get(), nullptr, noPassphrase, nullptr));
    if (!loaded.key) {
      ERR_clear_error();
      return CertError{key_file, "holds no usable private key (an unencrypted PEM key is needed)"};
    }
  }
  if (X509_check_private_key(loaded.leaf.get(), loaded.key.get()) != 1) {
    ERR_clear_error();
    return CertError{key_file, fmt::format("does not match the certificate in {}", certificate_file)};
  }
  // Leaf first, then each certificate's issuer: each one must have issued and signed the one
  // before it (a chain out of order or from another certificate breaks clients).
  for (std::size_t i = 0; i < loaded.chain.size(); ++i) {
    X509* subject = i == 0 ? loaded.leaf.get() : loaded.chain[i - 1].get();
    X509* issuer = loaded.chain[i].get();
    if (X509_check_issued(issuer, subject) != X509_V_OK ||
        X509_verify(subject, X509_get0_pubkey(issuer)) != 1) {
      ERR_clear_error();
      return CertError{certificate_file,
                       fmt::format("certificate {} did not issue certificate {} (the file must hold the "
                                   "certificate, then each issuer in order)",
                                   i + 2, i + 1)};
    }
  }
  for (std::size_t i = 0; i <= loaded.chain.size(); ++i) {
    X509* cert = i == 0 ? loaded.leaf.get() : loaded.chain[i - 1].get();
    std::int64_t not_before = unixTime(X509_get0_notBefore(cert));
    std::int64_t not_after = unixTime(X509_get0_notAfter(cert));
    const char* which = i == 0 ? "the certificate" : "a certificate of its chain";
    if (now < not_before)
      return CertError{certificate_file,
                       fmt::format("{} is not valid before {}", which, utcDate(not_before))};
    if (now >= not_after)
      return CertError{certificate_file, fmt::format("{} expired on {}", which, utcDate(not_after))};
  }
  CertificateInfo& info = loaded.info;
  info.certificate_file = certificate_file;
  info.key_file = key_file;
  info.subject = commonName(loaded.leaf.get());
  info.names = altNames(loaded.leaf.get());
  info.not_before = unixTime(X509_get0_notBefore(loaded.leaf.get()));
  info.not_after = unixTime(X509_get0_notAfter(loaded.leaf.get()));
  info.sha256_fingerprint = fingerprint(loaded.leaf.get());
  info.chain_length = loaded.chain.size();
  return loaded;
}

base::Result<X509StorePtr, CertError> loadTrustStore(const std::string& ca_file) {
  auto bio = openFile(ca_file);  // a clear "cannot open" before OpenSSL's own message
  if (!bio) return bio.error();
  X509StorePtr store(X509_STORE_new());
  if (!store || X509_STORE_load_file(store.get(), ca_file.c_str()) != 1) {
    std::string detail = opensslErrors();
    return CertError{ca_file, "holds no usable CA certificate: " + detail};
  }
  return store;
}

bool certificateNames(X509* cert, std::string_view name) {
  std::string text(name);
  ERR_clear_error();
  bool match =
      X509_check_ip_asc(cert, text.c_str(), 0) == 1 ||
      X509_check_host(cert, text.data(), text.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
  ERR_clear_error();
  return match;
}

TicketKeys::TicketKeys() {
  Key& key = slots_[0];
  if (RAND_bytes(key.name.data(), key.name.size()) != 1 || RAND_bytes(key.aes.data(), key.aes.size()) != 1 ||
      RAND_bytes(key.hmac.data(), key.hmac.size()) != 1) {
    throw std::runtime_error("no randomness for the session-ticket keys");  // start-up only
  }
}

void TicketKeys::rotate() {
  std::uint32_t next = current_.load(std::memory_order_relaxed) + 1;
  Key& key = slots_[next % 3];
  if (RAND_bytes(key.name.data(), key.name.size()) != 1 || RAND_bytes(key.aes.data(), key.aes.size()) != 1 ||
      RAND_bytes(key.hmac.data(), key.hmac.size()) != 1) {
    return;  // keep the current key rather than publish a weak one
  }
  current_.store(next, std::memory_order_release);
}

const TicketKeys::Key* TicketKeys::find(const unsigned char* name, bool& is_current) const {
  std::uint32_t now = current_.load(std::memory_order_acquire);
  const Key& current = slots_[now % 3];
  if (std::memcmp(current.name.data(), name, current.name.size()) == 0) {
    is_current = true;
    return &current;
  }
  if (now == 0) return nullptr;
  const Key& previous = slots_[(now - 1) % 3];
  if (std::memcmp(previous.name.data(), name, previous.name.size()) == 0) {
    is_current = false;
    return &previous;
  }
  return nullptr;
}

void requireClientCertificate(SSL* ssl, const ClientAuth* rule) {
  SSL_set_app_data(ssl, const_cast<ClientAuth*>(rule));
  SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_set1_verify_cert_store(ssl, rule->store.get());
  SSL_set_options(ssl, SSL_OP_NO_TICKET);
  SSL_set_num_tickets(ssl, 0);
}

TlsContexts::~TlsContexts() = default;

const ClientAuth* TlsContexts::clientAuth(std::string_view trunk) const {
  for (const ClientAuth& rule : client_auth_) {
    if (rule.trunk == trunk) return &rule;
  }
  return nullptr;
}

SSL_CTX* TlsContexts::serverFor(std::string_view name) const {
  for (const SslCtxPtr& ctx : servers_) {
    if (certificateNames(SSL_CTX_get0_certificate(ctx.get()), name)) return ctx.get();
  }
  return nullptr;
}

base::Result<std::shared_ptr<const TlsContexts>, CertError> buildTlsContexts(
    const config::Config& config, std::shared_ptr<TicketKeys> tickets, std::int64_t now) {
  auto contexts = std::make_shared<TlsContexts>();
  contexts->tickets_ = std::move(tickets);
  contexts->verify_server_ = config.tls.verify_server;
  for (const config::TlsCertificate& entry : config.tls.certificates) {
    auto loaded = loadCertificate(entry.certificate, entry.key, now);
    if (!loaded) return loaded.error();
    auto ctx = baseContext(TLS_server_method(), config);
    if (!ctx) return ctx.error();
    SSL_CTX* raw = ctx.value().get();
    auto used = useCertificate(raw, loaded.value());
    if (!used) return used.error();
    // Resumption by stateless tickets only: no session cache to lock across workers.
    SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(raw, 1);
    static const unsigned char kSessionContext[] = "palisade";
    SSL_CTX_set_session_id_context(raw, kSessionContext, sizeof kSessionContext - 1);
    SSL_CTX_set_app_data(raw, contexts->tickets_.get());
    SSL_CTX_set_tlsext_ticket_key_evp_cb(raw, ticketCallback);
    contexts->infos_.push_back(loaded.value().info);
    contexts->servers_.push_back(std::move(ctx.value()));
  }
  if (!contexts->servers_.empty()) {
    // The connection that uses these contexts keeps them alive, so `arg` outlives every handshake.
    SSL_CTX_set_tlsext_servername_callback(contexts->servers_.front().get(), serverNameCallback);
    SSL_CTX_set_tlsext_servername_arg(contexts->servers_.front().get(), contexts.get());
  }

  auto client = baseContext(TLS_client_method(), config);
  if (!client) return client.error();
  SSL_CTX* raw_client = client.value().get();
  if (config.tls.verify_server) {
    SSL_CTX_set_verify(raw_client, SSL_VERIFY_PEER, nullptr);
    if (!config.tls.ca_file.empty()) {
      auto bio = openFile(config.tls.ca_file);
      if (!bio) return bio.error();
      if (SSL_CTX_load_verify_file(raw_client, config.tls.ca_file.c_str()) != 1)
        return CertError{config.tls.ca_file, "holds no usable CA certificate: " + opensslErrors()};
    } else if (SSL_CTX_set_default_verify_paths(raw_client) != 1) {
      return CertError{config.source_name, "cannot load the system trust store: " + opensslErrors()};
    }
  }
  if (!config.tls.client_certificate.empty()) {
    auto loaded = loadCertificate(config.tls.client_certificate, config.tls.client_key, now);
    if (!loaded) return loaded.error();
    auto used = useCertificate(raw_client, loaded.value());
    if (!used) return used.error();
    contexts->infos_.push_back(loaded.value().info);
  }
  contexts->client_ = std::move(client.value());

  for (const config::Trunk& trunk : config.trunks) {
    if (trunk.tls_client_ca.empty()) continue;
    auto store = loadTrustStore(trunk.tls_client_ca);
    if (!store) return store.error();
    contexts->client_auth_.push_back(
        ClientAuth{trunk.name, std::move(store.value()), trunk.tls_client_names});
  }
  return std::shared_ptr<const TlsContexts>(std::move(contexts));
}

std::vector<std::string> expiryWarnings(const TlsContexts& contexts, std::int64_t now, std::uint32_t days) {
  std::vector<std::string> warnings;
  for (const CertificateInfo& info : contexts.certificates()) {
    std::int64_t left = info.not_after - now;
    if (left >= static_cast<std::int64_t>(days) * 86400) continue;
    warnings.push_back(fmt::format("certificate {} ({}) expires in {} days, on {}", info.certificate_file,
                                   info.subject.empty() ? std::string("no CN") : "CN " + info.subject,
                                   left / 86400, utcDate(info.not_after)));
  }
  return warnings;
}

}  // namespace palisade::certs
