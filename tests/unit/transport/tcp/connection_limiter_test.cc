#include "transport/tcp/connection_limiter.h"

#include <gtest/gtest.h>

namespace palisade::transport {
namespace {

TEST(ConnectionLimiter, EnforcesPerSourceAndTotalLimits) {
  ConnectionLimiter limiter;
  auto a = boost::asio::ip::make_address("127.0.0.2");
  auto b = boost::asio::ip::make_address("127.0.0.3");
  EXPECT_TRUE(limiter.acquire(a, 3, 2));
  EXPECT_TRUE(limiter.acquire(a, 3, 2));
  EXPECT_FALSE(limiter.acquire(a, 3, 2));  // per source
  EXPECT_TRUE(limiter.acquire(b, 3, 2));
  EXPECT_FALSE(limiter.acquire(b, 3, 2));  // total
  EXPECT_EQ(limiter.total(), 3u);
  limiter.release(a);
  EXPECT_TRUE(limiter.acquire(b, 3, 2));
  EXPECT_EQ(limiter.total(), 3u);
}

}  // namespace
}  // namespace palisade::transport
