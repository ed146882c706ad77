#pragma once
// One worker's media sockets, read from an epoll set of their own instead of one asio wait per
// socket. Under load the set is read on a short tick: each tick one epoll_wait returns every
// socket that has packets, and each of those is read once (recvmmsg) and relayed, so a packet
// costs its recvmmsg and its sendto and little else. Between busy ticks the set is not in the
// worker's asio loop at all, so arriving packets do not wake the thread one by one; when a tick
// finds nothing the set goes back into the loop and the next packet wakes it at once.
//
// Under sustained load a packet waits at most one tick (kTick) before it is read: nothing next
// to a jitter buffer's 20-60 ms, and what buys the batching. An idle relay adds no delay, and an
// overloaded one (a pass that leaves packets behind) passes again at once.
//
// Sockets are level-triggered: one that still has packets after its read budget is offered
// again by the next epoll_wait, after every other ready socket (epoll's ready list is a queue),
// so a flooded socket neither starves the others nor is left unread.
//
// Owned by the worker's thread, like the sockets and the streams that register them.
#include <sys/epoll.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/base/clock.h"

namespace palisade::media {

// One pass over the ready sockets: its time, and its number (consecutive passes differ by one).
struct PollPass {
  base::Millis now = 0;
  std::uint32_t number = 0;
};

// What the poller calls when a registered socket is readable.
class ReadableSocket {
 public:
  // True if the read stopped at its budget (more may be queued): the next pass comes at once.
  virtual bool onReadable(std::uint8_t tag, const PollPass& pass) = 0;

 protected:
  ~ReadableSocket() = default;
};

class MediaPoller {
 public:
  static constexpr std::chrono::microseconds kTick{1000};
  // Sockets read per tick before the worker's other work (SIP, timers) gets its turn.
  static constexpr int kEventsPerTick = 1024;

  // Names one registration; stale once removed, so an event already returned for a socket
  // closed in the same tick is recognised and skipped.
  struct Handle {
    std::uint32_t slot = 0;
    std::uint32_t generation = 0;  // 0: not registered
    bool registered() const { return generation != 0; }
  };

  MediaPoller(boost::asio::io_context& io, const base::Clock& clock);
  ~MediaPoller();
  MediaPoller(const MediaPoller&) = delete;
  MediaPoller& operator=(const MediaPoller&) = delete;

  // Watches `fd` for reading on behalf of `reader`, which is told `tag`. Empty on failure.
  Handle add(int fd, ReadableSocket& reader, std::uint8_t tag);
  // Stops watching (before the fd is closed). Safe to call from within onReadable.
  void remove(Handle& handle, int fd);
  std::size_t watched() const { return watched_; }

 private:
  struct Slot {
    ReadableSocket* reader = nullptr;
    std::uint32_t generation = 1;
    std::uint8_t tag = 0;
  };
  using Clock = std::chrono::steady_clock;
  struct Drained {
    int read = 0;          // sockets read
    bool backlog = false;  // some were left with packets, or the pass hit kEventsPerTick
  };
  void waitIdle();
  void schedulePass(Clock::time_point last_started, bool backlog);
  Drained drain();

  const base::Clock& clock_;
  int epoll_ = -1;
  // The epoll set as seen by the worker's loop, only while idle (otherwise released).
  boost::asio::posix::stream_descriptor idle_wait_;
  boost::asio::steady_timer tick_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::size_t watched_ = 0;
  std::uint32_t passes_ = 0;
  std::array<epoll_event, 256> events_{};
};

}  // namespace palisade::media
