#pragma once
// Checks that a per-worker object is only touched by its owning thread (DESIGN.md: one owner
// per object). The owner is the first thread that calls check(); construction and start-up
// set-up (before the worker thread runs) deliberately do not check. Compiled in only when
// PALISADE_OWNER_CHECKS is defined (debug and sanitizer builds); otherwise check() is empty.
#include <atomic>
#include <thread>

#if defined(PALISADE_OWNER_CHECKS)
#include <cstdio>
#include <cstdlib>
#endif

namespace palisade::base {

class OwnerThread {
 public:
#if defined(PALISADE_OWNER_CHECKS)
  void check(const char* what) const {
    std::thread::id self = std::this_thread::get_id();
    std::thread::id expected{};
    if (owner_.compare_exchange_strong(expected, self, std::memory_order_acq_rel)) return;
    if (expected == self) return;
    std::fprintf(stderr, "owner-thread check failed: %s used off its owning thread\n", what);
    std::abort();
  }
  // The object changes hands (e.g. set up on the main thread, then run by a worker).
  void release() { owner_.store(std::thread::id{}, std::memory_order_release); }
  static constexpr bool kEnabled = true;

 private:
  mutable std::atomic<std::thread::id> owner_{};
#else
  void check(const char*) const {}
  void release() {}
  static constexpr bool kEnabled = false;
#endif
};

}  // namespace palisade::base
