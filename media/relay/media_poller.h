#pragma once
// One worker's media sockets, read from an epoll set of their own instead of one asio wait per
// socket. Under load the set is read in passes on a short timer: each pass, one epoll_wait
// returns every socket that has packets, and each of those is read once and its packets relayed,
// so a packet costs its read and its sendto and little else. Between busy passes the set is not
// in the worker's asio loop at all, so arriving packets do not wake the thread one by one; when
// a pass finds nothing the set goes back into the loop and the next packet wakes it at once.
//
// Under sustained load a packet waits at most one pass interval before it is read: nothing next
// to a jitter buffer's 20-60 ms, and what buys the batching. An idle relay adds no delay, and an
// overloaded one (a pass that leaves packets behind) passes again at once.
//
// Sockets are level-triggered: one that still has packets after its read budget stays in
// epoll's ready list, behind every other ready socket (the list is a queue), and is read again
// on the next pass, so a flooded socket neither starves the others nor is left unread.
//
// Owned by the worker's thread, like the sockets and the streams that register them.
#include <sys/epoll.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/base/clock.h"

namespace palisade::media {

// One pass over the ready sockets: its time, and its number. Passes that follow each other
// without a pause between them (busy) have consecutive numbers; a pass after an idle wait does not.
struct PollPass {
  base::Millis now = 0;
  std::uint32_t number = 0;
  bool overloaded = false;  // the pass before left packets queued: read in batches
};

// What the poller calls when a registered socket is readable.
class ReadableSocket {
 public:
  struct ReadResult {
    int packets = 0;       // datagrams read
    bool backlog = false;  // the read stopped at its budget (more may be queued)
  };
  // Reads what it will of the socket; a backlog makes the next pass come at once.
  virtual ReadResult onReadable(std::uint8_t tag, const PollPass& pass) = 0;

 protected:
  ~ReadableSocket() = default;
};

class MediaPoller {
 public:
  static constexpr std::chrono::microseconds kPassInterval{1000};
  // Datagrams read per pass before the worker's other work (SIP, timers) gets its turn, checked
  // between batches of kBatch sockets: at most 512 + 32 x 32 packets, some 10 ms of relaying,
  // so that a media flood cannot hold up signalling for longer.
  static constexpr int kPacketsPerPass = 512;
  static constexpr int kBatch = 32;

  // Names one registration; stale once removed, so an event already returned for a socket
  // closed in the same pass is recognised and skipped.
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
    int read = 0;                 // sockets read
    bool backlog = false;         // the pass hit kPacketsPerPass (or was interrupted), or...
    bool socket_backlog = false;  // ...a socket's read stopped at its budget
  };
  void waitIdle();
  void schedulePass(Clock::time_point last_started, bool backlog);
  Drained drain();

  const base::Clock& clock_;
  int epoll_ = -1;
  // The epoll set as seen by the worker's loop, only while idle (otherwise released).
  boost::asio::posix::stream_descriptor idle_wait_;
  boost::asio::steady_timer pass_timer_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::size_t watched_ = 0;
  std::uint32_t passes_ = 0;
  bool overloaded_ = false;  // the next pass reads in batches
  int budget_streak_ = 0;    // passes in a row that spent kPacketsPerPass
  std::array<epoll_event, kBatch> events_{};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for handlers still queued
};

}  // namespace palisade::media
