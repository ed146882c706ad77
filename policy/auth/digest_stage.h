#pragma once
// Digest authentication of users (RFC 3261 §22, RFC 7616, RFC 8760): the first request stage.
// Trunks and the PBX pass unchallenged. From anyone else only INVITE (407) and REGISTER (401)
// are challenged, with one challenge per configured algorithm; everything else from an
// unauthenticated source is dropped, so a scanner's OPTIONS gets no answer.
//
// Every failure (unknown user, wrong password, disallowed source, bad or replayed nonce, a
// credentials URI that is not the request's) draws the same fresh challenge after the same
// work, so svwar and svcrack learn nothing from status, headers, body or timing. Only a right
// password with an expired nonce is told stale=true (RFC 7616 §3.3).
#include "core/base/random.h"
#include "policy/policy_chain.h"

namespace palisade::policy::auth {

class DigestStage final : public Stage {
 public:
  const char* name() const override { return "digest-auth"; }
  Decision evaluate(RequestContext& context, const PolicySnapshot& snapshot,
                    StageServices& services) override;

 private:
  enum class Failure { UnknownUser, Password, Source, Nonce, Malformed };
  Decision challenge(const RequestContext& context, const PolicySnapshot& snapshot, StageServices& services,
                     bool stale);
  // Counts a failure by source address and by user name, and bans the source over the
  // threshold (a trunk or the PBX never gets here).
  void recordFailure(const RequestContext& context, const PolicySnapshot& snapshot, StageServices& services,
                     Failure failure, std::string_view user_name);
  base::RandomPool salts_;  // per worker, like the stage
};

}  // namespace palisade::policy::auth
