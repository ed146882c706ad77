#include "policy/policy_chain.h"

#include <gtest/gtest.h>

#include "tests/support/fake_network.h"

namespace palisade::policy {
namespace {

using palisade::testing::udpFlow;

TEST(PolicyChain, OnlyThePbxMayUseThePbxSide) {
  auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
  config->pbx.addresses = {"127.0.0.3", "::1"};
  PolicyChain chain(*config);
  EXPECT_TRUE(chain.allowSource(udpFlow(net::Side::Pbx, "127.0.0.3", 5080)));
  EXPECT_TRUE(chain.allowSource(udpFlow(net::Side::Pbx, "::1", 5080)));
  EXPECT_TRUE(chain.allowSource(udpFlow(net::Side::Pbx, "::ffff:127.0.0.3", 5080)));
  EXPECT_FALSE(chain.allowSource(udpFlow(net::Side::Pbx, "127.0.0.4", 5080)));
  // The public side is the internet: the ACL does not apply there.
  EXPECT_TRUE(chain.allowSource(udpFlow(net::Side::Public, "127.0.0.4", 5080)));

  config->pbx.addresses = {"127.0.0.4"};
  chain.apply(*config);  // reload
  EXPECT_FALSE(chain.allowSource(udpFlow(net::Side::Pbx, "127.0.0.3", 5080)));
  EXPECT_TRUE(chain.allowSource(udpFlow(net::Side::Pbx, "127.0.0.4", 5080)));
}

}  // namespace
}  // namespace palisade::policy
