// The digest credentials parser (Authorization / Proxy-Authorization values, RFC 7616 §3.4)
// and the nonce check behind it, on hostile input: every parsed parameter must be a view into
// the value, and no nonce that Palisade did not issue may verify.
//
// Input: a credentials value, as it would follow "Authorization: ".
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "policy/auth/digest.h"
#include "tests/fuzz/sip_checks.h"

namespace {

using palisade::fuzz::require;
using palisade::fuzz::within;
using palisade::policy::auth::Algorithm;
using palisade::policy::auth::DigestCredentials;
using palisade::policy::auth::NonceIssuer;

const NonceIssuer& issuer() {
  static const NonceIssuer nonces(std::array<std::uint8_t, 32>{7, 1, 4});
  return nonces;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string value(reinterpret_cast<const char*>(data), size);
  DigestCredentials credentials;
  bool parsed = palisade::policy::auth::parseDigestCredentials(value, credentials);
  std::string_view whole(value);
  for (std::string_view part :
       {credentials.username, credentials.realm, credentials.nonce, credentials.uri, credentials.response,
        credentials.algorithm, credentials.cnonce, credentials.qop, credentials.nc, credentials.opaque}) {
    require(within(part, whole), "every parameter is a view into the value");
  }
  if (!parsed) return 0;
  require(!credentials.username.empty() && !credentials.nonce.empty() && !credentials.response.empty(),
          "parsed credentials have a username, a nonce and a response");
  auto source = boost::asio::ip::make_address("192.0.2.7");
  // A nonce the fuzzer made up is never ours, whatever it looks like.
  auto verdict = issuer().verify(credentials.nonce, 5'000'000, source, "palisade", 300'000);
  require(verdict == NonceIssuer::Verdict::Invalid, "only issued nonces verify");
  (void)NonceIssuer::tagOf(credentials.nonce);
  // What the stage computes from them, for each algorithm: hex of the right length.
  for (Algorithm algorithm : {Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256}) {
    std::string ha1 =
        palisade::policy::auth::ha1(algorithm, credentials.username, credentials.realm, "secret");
    std::string digest = palisade::policy::auth::requestDigest(algorithm, ha1, credentials.nonce,
                                                               credentials.nc, credentials.cnonce,
                                                               credentials.qop, "REGISTER", credentials.uri);
    require(digest.size() == palisade::policy::auth::hexLength(algorithm), "digests are full length");
    require(
        !palisade::policy::auth::sameSecret(digest, credentials.response) || credentials.response == digest,
        "the comparison agrees with equality");
  }
  return 0;
}
