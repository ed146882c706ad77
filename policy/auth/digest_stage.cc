#include "policy/auth/digest_stage.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/sip/headers.h"
#include "policy/bans/ban_source.h"

namespace palisade::policy::auth {

// The challenge for `context`'s request: 401/WWW-Authenticate for REGISTER, else
// 407/Proxy-Authenticate, one header per algorithm, strongest first (RFC 8760 §2.4).
Decision DigestStage::challenge(const RequestContext& context, const PolicySnapshot& snapshot,
                                StageServices& services, bool stale) {
  bool registering = context.request->method() == sip::Method::Register;
  std::uint64_t salt = 0;
  salts_.fill(&salt, sizeof salt);
  std::string nonce =
      snapshot.auth->nonces.issue(services.now(), context.flow.remote.address, snapshot.realm, salt);
  std::string lines;
  for (Algorithm algorithm : snapshot.algorithms) {
    fmt::format_to(std::back_inserter(lines),
                   "{}: Digest realm=\"{}\", nonce=\"{}\", algorithm={}, qop=\"auth\"{}\r\n",
                   registering ? "WWW-Authenticate" : "Proxy-Authenticate", snapshot.realm, nonce,
                   algorithmName(algorithm), stale ? ", stale=true" : "");
  }
  return Decision::challenge(registering ? 401 : 407, lines);
}

namespace {

bool isHex(std::string_view text, std::size_t length) {
  if (text.size() != length) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

std::uint32_t hexNumber(std::string_view text) {
  std::uint32_t value = 0;
  for (char c : text) {
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10;
    value = (value << 4) | static_cast<std::uint32_t>(v);
  }
  return value;
}

// The credentials meant for our realm, from the header the method uses (RFC 3261 §22.2/3).
bool findCredentials(const sip::Message& request, std::string_view realm, DigestCredentials& out) {
  std::string_view header =
      request.method() == sip::Method::Register ? "Authorization" : "Proxy-Authorization";
  for (const auto& h : request.headers()) {
    if (!sip::iequals(h.name, header)) continue;
    DigestCredentials candidate;
    if (parseDigestCredentials(h.value, candidate) && candidate.realm == realm) {
      out = candidate;
      return true;
    }
  }
  return false;
}

}  // namespace

Decision DigestStage::evaluate(RequestContext& context, const PolicySnapshot& snapshot,
                               StageServices& services) {
  if (context.flow.side == net::Side::Pbx || context.peer_kind == PeerKind::Trunk ||
      context.peer_kind == PeerKind::Pbx) {
    return Decision::proceed();  // trusted by address: never challenged
  }
  const sip::Message& request = *context.request;
  sip::Method method = request.method();
  if (method != sip::Method::Invite && method != sip::Method::Register) {
    // A registered phone's keep-alive (OPTIONS) and its other requests (SUBSCRIBE, MESSAGE)
    // are answered by Palisade itself and go no further; from anywhere else, silence.
    if (snapshot.location != nullptr && snapshot.location->registeredFlow(context.flow, services.now())) {
      context.peer_kind = PeerKind::User;
      return Decision::proceed();
    }
    return Decision::drop();
  }
  if (snapshot.users.empty() || snapshot.algorithms.empty()) return Decision::drop();

  DigestCredentials credentials;
  if (!findCredentials(request, snapshot.realm, credentials))
    return challenge(context, snapshot, services, false);

  // From here every path does the same work, whatever is wrong, and fails the same way.
  const UserEntry* user = snapshot.user(credentials.username);
  std::optional<Algorithm> algorithm = credentials.algorithm.empty()
                                           ? std::optional<Algorithm>(Algorithm::Md5)
                                           : algorithmFromName(credentials.algorithm);
  bool offered = algorithm && std::find(snapshot.algorithms.begin(), snapshot.algorithms.end(), *algorithm) !=
                                  snapshot.algorithms.end();
  Algorithm used = offered ? *algorithm : snapshot.algorithms.front();
  static const std::string kNoUser(64, '0');  // stands in for a HA1 so that the work is the same
  const std::string& ha1_hex = user != nullptr && !user->ha1[static_cast<std::size_t>(used)].empty()
                                   ? user->ha1[static_cast<std::size_t>(used)]
                                   : kNoUser;
  std::string expected = requestDigest(used, std::string_view(ha1_hex).substr(0, hexLength(used)),
                                       credentials.nonce, credentials.nc, credentials.cnonce, credentials.qop,
                                       request.methodText(), credentials.uri);
  NonceIssuer::Verdict nonce =
      snapshot.auth->nonces.verify(credentials.nonce, services.now(), context.flow.remote.address,
                                   snapshot.realm, snapshot.nonce_lifetime_ms);
  bool response_ok = sameSecret(expected, credentials.response);
  bool well_formed = offered && sip::iequals(credentials.qop, "auth") && isHex(credentials.nc, 8) &&
                     !credentials.cnonce.empty() && credentials.uri == request.requestUri() &&
                     !credentials.has_userhash;
  // A user that requires TLS authenticates over nothing else (its credentials fail like a
  // disallowed source's: the same challenge, counted toward a ban).
  bool source_ok = user != nullptr && (user->anywhere || user->sources.lookup(context.flow.remote.address)) &&
                   (!user->require_tls || context.flow.transport == net::Transport::Tls);
  bool valid = user != nullptr && response_ok && well_formed && source_ok;
  if (valid && nonce == NonceIssuer::Verdict::Stale) return challenge(context, snapshot, services, true);
  bool fresh = nonce == NonceIssuer::Verdict::Valid;
  // A replayed nonce count (RFC 7616 §3.4.5): the request was captured, or sent twice.
  bool replayed =
      valid && fresh &&
      !snapshot.auth->counts.accept(NonceIssuer::tagOf(credentials.nonce), hexNumber(credentials.nc));
  if (!valid || !fresh || replayed) {
    Failure failure = user == nullptr      ? Failure::UnknownUser
                      : !well_formed       ? Failure::Malformed
                      : !fresh || replayed ? Failure::Nonce
                      : !response_ok       ? Failure::Password
                                           : Failure::Source;
    recordFailure(context, snapshot, services, failure, credentials.username);
    return challenge(context, snapshot, services, false);
  }
  context.peer_kind = PeerKind::User;
  context.peer_name = user->name;
  context.identity = user->name;
  context.asserted_identity = user->asserted;
  context.identity_trusted = false;  // what the user writes is not asserted; Palisade asserts for it
  return Decision::proceed();
}

void DigestStage::recordFailure(const RequestContext& context, const PolicySnapshot& snapshot,
                                StageServices& services, Failure failure, std::string_view user_name) {
  static constexpr std::pair<Failure, const char*> kReasons[] = {
      {Failure::UnknownUser, "requests for unknown users"},   {Failure::Password, "failed authentications"},
      {Failure::Source, "requests from a disallowed source"}, {Failure::Nonce, "stale or replayed nonces"},
      {Failure::Malformed, "unusable credentials"},
  };
  switch (failure) {
    case Failure::UnknownUser:
      services.count(stats::Counter::AuthFailedUnknownUser);
      break;
    case Failure::Password:
      services.count(stats::Counter::AuthFailedPassword);
      break;
    case Failure::Source:
      services.count(stats::Counter::AuthFailedSource);
      break;
    case Failure::Nonce:
      services.count(stats::Counter::AuthFailedNonce);
      break;
    case Failure::Malformed:
      services.count(stats::Counter::AuthFailedMalformed);
      break;
  }
  if (snapshot.store == nullptr || snapshot.ban.threshold == 0) return;
  base::Millis now = services.now();
  const auto& source = context.flow.remote.address;
  std::uint32_t by_source =
      snapshot.store->countFailure("ip:" + source.to_string(), now, snapshot.ban.window_ms);
  std::uint32_t by_user =
      snapshot.store->countFailure(fmt::format("user:{}", user_name), now, snapshot.ban.window_ms);
  if (by_source < snapshot.ban.threshold && by_user < snapshot.ban.threshold) return;
  const char* why = "failed authentications";
  for (const auto& [kind, text] : kReasons) {
    if (kind == failure) why = text;
  }
  std::string reason =
      by_source >= snapshot.ban.threshold
          ? fmt::format("{} {} in {} s from this address", by_source, why, snapshot.ban.window_ms / 1000)
          : fmt::format("{} {} in {} s for one user name", by_user, why, snapshot.ban.window_ms / 1000);
  if (bans::banSource(*snapshot.store, source, now, snapshot.ban, reason))
    services.count(stats::Counter::Bans);
}

}  // namespace palisade::policy::auth
