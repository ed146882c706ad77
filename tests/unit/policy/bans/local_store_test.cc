#include "policy/bans/local_store.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>

namespace palisade::policy::bans {
namespace {

boost::asio::ip::address ip(const char* text) { return boost::asio::ip::make_address(text); }

TEST(LocalStateStore, CountsFailuresPerKeyWithinTheWindow) {
  auto store = std::make_unique<LocalStateStore>();
  EXPECT_EQ(store->countFailure("ip:192.0.2.1", 1'000, 60'000), 1u);
  EXPECT_EQ(store->countFailure("ip:192.0.2.1", 2'000, 60'000), 2u);
  EXPECT_EQ(store->countFailure("ip:192.0.2.2", 2'000, 60'000), 1u);  // another key
  EXPECT_EQ(store->countFailure("user:2001", 2'000, 60'000), 1u);
  EXPECT_EQ(store->countFailure("ip:192.0.2.1", 70'000, 60'000), 1u);  // a new window
}

TEST(LocalStateStore, BansEscalateAndExpire) {
  auto store = std::make_unique<LocalStateStore>();
  BanSettings settings;
  settings.duration_ms = 10'000;
  settings.max_duration_ms = 25'000;
  auto first = store->ban(ip("192.0.2.1"), 1'000, settings, "test");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->strikes, 1u);
  EXPECT_EQ(first->until, 11'000);
  EXPECT_FALSE(store->ban(ip("192.0.2.1"), 2'000, settings, "again"));  // already banned
  EXPECT_TRUE(store->banned(ip("192.0.2.1"), 5'000));
  EXPECT_TRUE(store->banned(ip("::ffff:192.0.2.1"), 5'000));  // the same source
  EXPECT_FALSE(store->banned(ip("192.0.2.2"), 5'000));
  EXPECT_FALSE(store->banned(ip("192.0.2.1"), 12'000));
  EXPECT_EQ(store->bans(5'000).size(), 1u);
  EXPECT_TRUE(store->expired(5'000).empty());
  auto ended = store->expired(12'000);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].address, ip("192.0.2.1"));
  EXPECT_TRUE(store->expired(13'000).empty());  // reported once
  // A repeat doubles the ban, up to the cap.
  auto second = store->ban(ip("192.0.2.1"), 20'000, settings, "test");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->strikes, 2u);
  EXPECT_EQ(second->until, 40'000);
  auto third = store->ban(ip("192.0.2.1"), 50'000, settings, "test");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->until, 75'000);  // 40 s would exceed the 25 s cap
  // A manual unban lifts it and forgives the strikes.
  EXPECT_TRUE(store->unban(ip("192.0.2.1")));
  EXPECT_FALSE(store->banned(ip("192.0.2.1"), 51'000));
  EXPECT_FALSE(store->unban(ip("192.0.2.1")));
  auto fresh = store->ban(ip("192.0.2.1"), 52'000, settings, "test");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->strikes, 1u);
}

TEST(LocalStateStore, ManyBansAndConcurrentReaders) {
  auto store = std::make_unique<LocalStateStore>();
  BanSettings settings;
  for (int i = 0; i < 2000; ++i) {
    auto address = boost::asio::ip::address_v4(0xC6336400u + static_cast<unsigned>(i));  // 198.51.100.0 + i
    ASSERT_TRUE(store->ban(address, 1'000, settings, "bulk"));
  }
  std::atomic<int> misses{0};
  std::thread reader([&] {
    for (int i = 0; i < 2000; ++i) {
      auto address = boost::asio::ip::address_v4(0xC6336400u + static_cast<unsigned>(i));
      if (!store->banned(address, 2'000)) ++misses;
    }
  });
  reader.join();
  EXPECT_EQ(misses.load(), 0);
  EXPECT_FALSE(store->banned(ip("203.0.113.1"), 2'000));
  EXPECT_FALSE(store->banned(ip("2001:db8::1"), 2'000));
}

// A flood of bans from ever new (forged) addresses: the records stay bounded, a full table of
// live bans refuses new ones, and once bans have ended their records make room again.
TEST(LocalStateStore, BanRecordsAreBounded) {
  auto store = std::make_unique<LocalStateStore>();
  BanSettings settings;
  settings.duration_ms = 10'000;
  base::Millis now = 1'000'000;
  for (std::uint32_t i = 0; i < LocalStateStore::kMaxRecords; ++i)
    ASSERT_TRUE(store->ban(boost::asio::ip::address_v4(0x0A000000u + i), now, settings, "flood")) << i;
  EXPECT_FALSE(store->ban(ip("192.0.2.1"), now, settings, "one too many"));
  EXPECT_EQ(store->bans(now).size(), LocalStateStore::kMaxRecords);
  // Ten seconds later the bans have ended: the next ban sweeps their records away.
  now += 11'000;
  EXPECT_TRUE(store->ban(ip("192.0.2.1"), now, settings, "room again"));
  EXPECT_EQ(store->bans(now).size(), 1u);
  EXPECT_TRUE(store->banned(ip("192.0.2.1"), now));
}

}  // namespace
}  // namespace palisade::policy::bans
