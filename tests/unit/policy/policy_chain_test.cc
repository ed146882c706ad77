#include "policy/policy_chain.h"

#include "core/routing/local_location_store.h"
#include "policy/bans/local_store.h"

#include <gtest/gtest.h>

#include "tests/support/fake_network.h"

namespace palisade::policy {
namespace {

using palisade::testing::ManualClock;
using palisade::testing::udpFlow;

AuthState& sharedAuth() {
  static AuthState* state = new AuthState();  // one per test process, like the daemon's
  return *state;
}

bans::LocalStateStore& sharedStore() {
  static auto* store = new bans::LocalStateStore();
  return *store;
}

routing::LocalLocationStore& sharedLocation() {
  static auto* location = new routing::LocalLocationStore();
  return *location;
}

std::shared_ptr<const PolicySnapshot> compiled(const config::Config& config, RuleRegistry& registry) {
  auto result = compileSnapshot(config, registry, sharedAuth(), sharedStore(), sharedLocation());
  EXPECT_TRUE(result.ok());
  return result.ok() ? result.value() : nullptr;
}

TEST(PolicyChain, OnlyThePbxMayUseThePbxSide) {
  auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
  config->pbx.addresses = {"127.0.0.3", "::1"};
  RuleRegistry registry;
  ManualClock clock;
  PolicyChain chain(compiled(*config, registry), clock);
  auto admits = [&chain](net::Flow flow) { return chain.admit(flow, {}); };
  EXPECT_TRUE(admits(udpFlow(net::Side::Pbx, "127.0.0.3", 5080)));
  EXPECT_TRUE(admits(udpFlow(net::Side::Pbx, "::1", 5080)));
  EXPECT_TRUE(admits(udpFlow(net::Side::Pbx, "::ffff:127.0.0.3", 5080)));
  EXPECT_FALSE(admits(udpFlow(net::Side::Pbx, "127.0.0.4", 5080)));
  // The public side has no PBX ACL; with no users configured, only trunks reach anything there.
  EXPECT_TRUE(admits(udpFlow(net::Side::Public, "127.0.0.1", 5080)));
  EXPECT_FALSE(admits(udpFlow(net::Side::Public, "127.0.0.4", 5080)));

  config->pbx.addresses = {"127.0.0.4"};
  chain.apply(compiled(*config, registry));  // reload
  EXPECT_FALSE(admits(udpFlow(net::Side::Pbx, "127.0.0.3", 5080)));
  EXPECT_TRUE(admits(udpFlow(net::Side::Pbx, "127.0.0.4", 5080)));
}

TEST(PolicyChain, ClassifiesSourcesAsConfiguredPeers) {
  auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
  config->trunks[0].addresses = {"127.0.0.4"};
  config->trunks[0].trust_identity = false;
  config->trunks.push_back(config::Trunk{"backup",
                                         {"10.1.0.0/16"},
                                         "10.1.0.1",
                                         5060,
                                         config::TransportKind::Udp,
                                         {},
                                         true,
                                         0,
                                         0,
                                         0,
                                         {},
                                         {},
                                         {},
                                         {}});
  RuleRegistry registry;
  ManualClock clock;
  PolicyChain chain(compiled(*config, registry), clock);

  net::Flow carrier = udpFlow(net::Side::Public, "127.0.0.4", 5090);
  ASSERT_TRUE(chain.admit(carrier, {}));
  EXPECT_NE(carrier.peer, 0);
  EXPECT_TRUE(carrier.verified);
  net::Flow in_range = udpFlow(net::Side::Public, "10.1.200.7", 5060);  // CIDR match
  ASSERT_TRUE(chain.admit(in_range, {}));
  EXPECT_NE(in_range.peer, 0);
  EXPECT_NE(in_range.peer, carrier.peer);
  net::Flow internet = udpFlow(net::Side::Public, "198.51.100.1", 5060);
  EXPECT_FALSE(chain.admit(internet, {}));  // default deny: no users, so nothing for the internet
  EXPECT_EQ(internet.peer, 0);
  EXPECT_FALSE(internet.verified);
  net::Flow pbx = udpFlow(net::Side::Pbx, "127.0.0.1", 5080);
  ASSERT_TRUE(chain.admit(pbx, {}));
  EXPECT_NE(pbx.peer, carrier.peer);

  RequestContext from_carrier;
  from_carrier.flow = carrier;
  EXPECT_EQ(chain.check(from_carrier).kind, Decision::Kind::Continue);
  EXPECT_EQ(from_carrier.peer_kind, PeerKind::Trunk);
  EXPECT_EQ(from_carrier.peer_name, "carrier");
  EXPECT_FALSE(from_carrier.identity_trusted);  // trust_identity = false
  RequestContext from_pbx;
  from_pbx.flow = pbx;
  chain.check(from_pbx);
  EXPECT_EQ(from_pbx.peer_kind, PeerKind::Pbx);
  EXPECT_TRUE(from_pbx.identity_trusted);
  RequestContext from_internet;
  from_internet.flow = internet;
  chain.check(from_internet);
  EXPECT_EQ(from_internet.peer_kind, PeerKind::Unknown);
  EXPECT_FALSE(from_internet.identity_trusted);
}

// With users, the internet passes the packet filter to be challenged, but only from where some
// user may come from.
TEST(PolicyChain, DefaultDenyFollowsTheUsersSources) {
  auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
  config::User restricted;
  restricted.name = "2001";
  restricted.password = "Tr0ub4dor&3-Horse!Staple";
  restricted.sources = {"198.51.100.0/24"};
  config->users = {restricted};
  RuleRegistry registry;
  ManualClock clock;
  PolicyChain chain(compiled(*config, registry), clock);
  net::Flow inside = udpFlow(net::Side::Public, "198.51.100.77", 5060);
  net::Flow outside = udpFlow(net::Side::Public, "203.0.113.5", 5060);
  EXPECT_TRUE(chain.admit(inside, {}));
  EXPECT_FALSE(chain.admit(outside, {}));
  config::User roaming = restricted;
  roaming.name = "2002";
  roaming.sources.clear();  // from anywhere
  config->users.push_back(roaming);
  chain.apply(compiled(*config, registry));
  outside = udpFlow(net::Side::Public, "203.0.113.5", 5060);
  EXPECT_TRUE(chain.admit(outside, {}));
  EXPECT_EQ(outside.peer, 0);
}

// Ids are keyed by name: a reload that keeps a peer keeps its id (counters keyed by it survive).
TEST(PolicyChain, RuleIdsAreStableAcrossReloads) {
  auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
  RuleRegistry registry;
  auto first = compiled(*config, registry);
  config->trunks[0].addresses = {"10.0.0.1", "10.0.0.2"};
  auto second = compiled(*config, registry);
  ASSERT_EQ(first->peers.size(), second->peers.size());
  for (std::size_t i = 0; i < first->peers.size(); ++i) {
    EXPECT_EQ(first->peers[i].id, second->peers[i].id);
    EXPECT_EQ(first->peers[i].name, second->peers[i].name);
    EXPECT_NE(first->peers[i].id, 0);
  }
}

// A stage that decides later; the chain then goes on with the stages after it.
class LaterStage final : public Stage {
 public:
  const char* name() const override { return "later"; }
  Decision evaluate(RequestContext&, const PolicySnapshot&, StageServices& services) override {
    ++evaluated;
    sink = &services.pendingSink();
    token = services.newPendingToken();
    return Decision::pending(token);
  }
  void cancel(std::uint64_t t) override { cancelled = t; }
  int evaluated = 0;
  PendingSink* sink = nullptr;
  std::uint64_t token = 0;
  std::uint64_t cancelled = 0;
};

class RejectStage final : public Stage {
 public:
  const char* name() const override { return "reject"; }
  Decision evaluate(RequestContext& context, const PolicySnapshot&, StageServices&) override {
    ++evaluated;
    context.identity = "seen";
    return Decision::reject(403, "Forbidden", "Reason: test\r\n");
  }
  int evaluated = 0;
};

class NullSink final : public PendingSink {
 public:
  void resume(std::uint64_t, Decision) override {}
};

TEST(PolicyChain, PendingResumesAfterTheStageThatAskedForTime) {
  auto config = config::defaultConfig().value();
  RuleRegistry registry;
  ManualClock clock;
  PolicyChain chain(compiled(*config, registry), clock);
  auto later = std::make_unique<LaterStage>();
  auto reject = std::make_unique<RejectStage>();
  LaterStage* later_raw = later.get();
  RejectStage* reject_raw = reject.get();
  chain.addStage(std::move(later));
  chain.addStage(std::move(reject));
  NullSink sink;
  chain.bindPendingSink(&sink);

  RequestContext context;
  context.flow = udpFlow(net::Side::Public, "198.51.100.1", 5060);
  Decision first = chain.check(context);
  ASSERT_EQ(first.kind, Decision::Kind::Pending);
  EXPECT_EQ(later_raw->sink, &sink);
  EXPECT_EQ(first.token, later_raw->token);
  EXPECT_EQ(reject_raw->evaluated, 0);
  // The engine calls again after the stage resumed with Continue: only the later stages run.
  Decision second = chain.check(context);
  EXPECT_EQ(later_raw->evaluated, 1);
  EXPECT_EQ(reject_raw->evaluated, 1);
  ASSERT_EQ(second.kind, Decision::Kind::Reject);
  EXPECT_EQ(second.status, 403);
  EXPECT_EQ(second.headers, "Reason: test\r\n");
  EXPECT_EQ(context.identity, "seen");
  chain.cancelPending(77);
  EXPECT_EQ(later_raw->cancelled, 77u);
}

}  // namespace
}  // namespace palisade::policy
