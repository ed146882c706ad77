#include "core/base/owner_thread.h"

#include <gtest/gtest.h>

#include <thread>

namespace palisade::base {
namespace {

TEST(OwnerThread, TheFirstUserOwnsItAndOthersAbort) {
  if (!OwnerThread::kEnabled) GTEST_SKIP() << "owner checks are compiled in debug and sanitizer builds only";
  OwnerThread owner;
  owner.check("test object");
  owner.check("test object");  // the owner may come back
  EXPECT_DEATH(
      {
        std::thread other([&owner] { owner.check("test object"); });
        other.join();
      },
      "owner-thread check failed: test object used off its owning thread");
}

TEST(OwnerThread, ReleaseHandsItOver) {
  if (!OwnerThread::kEnabled) GTEST_SKIP() << "owner checks are compiled in debug and sanitizer builds only";
  OwnerThread owner;
  owner.check("set-up");  // bound to this thread during set-up
  owner.release();
  std::thread worker([&owner] { owner.check("worker"); });
  worker.join();
  EXPECT_DEATH(owner.check("after hand-over"), "used off its owning thread");
}

}  // namespace
}  // namespace palisade::base
