#include "media/relay/media_poller.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/base/log.h"

namespace palisade::media {

MediaPoller::MediaPoller(boost::asio::io_context& io, const base::Clock& clock)
    : clock_(clock), idle_wait_(io), pass_timer_(io) {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) {
    // Every stream's registration then fails, and its call is answered 503: no media, no crash.
    LOG_ERROR("media: epoll_create1 failed: {}; calls needing media are refused", std::strerror(errno));
    return;
  }
  waitIdle();
}

MediaPoller::~MediaPoller() {
  alive_.reset();
  // The descriptor object would close the epoll fd itself; it is ours to close.
  if (idle_wait_.is_open()) idle_wait_.release();
  if (epoll_ >= 0) ::close(epoll_);
}

MediaPoller::Handle MediaPoller::add(int fd, ReadableSocket& reader, std::uint8_t tag) {
  if (epoll_ < 0) return {};
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[slot];
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: see the header
  ev.data.u64 = std::uint64_t{s.generation} << 32 | slot;
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    free_slots_.push_back(slot);
    return {};
  }
  s.reader = &reader;
  s.tag = tag;
  ++watched_;
  return Handle{slot, s.generation};
}

void MediaPoller::remove(Handle& handle, int fd) {
  if (!handle.registered() || handle.slot >= slots_.size()) return;
  Slot& s = slots_[handle.slot];
  if (s.generation != handle.generation) return;
  ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
  s.reader = nullptr;
  // Generation 0 means "not registered": skip it when the counter wraps.
  if (++s.generation == 0) s.generation = 1;
  free_slots_.push_back(handle.slot);
  --watched_;
  handle = {};
}

void MediaPoller::waitIdle() {
  if (!idle_wait_.is_open()) {
    boost::system::error_code ec;
    idle_wait_.assign(epoll_, ec);
    if (ec) {
      // The worker's loop refused the set: read on passes instead, never not at all.
      schedulePass(Clock::now(), false);
      return;
    }
  }
  idle_wait_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                        [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
                          if (alive.expired() || ec == boost::asio::error::operation_aborted) return;
                          if (ec) {
                            // Waiting failed: read on passes rather than stop reading.
                            idle_wait_.release();
                            schedulePass(Clock::now(), false);
                            return;
                          }
                          // Coming from idle: this pass does not follow the last one.
                          ++passes_;
                          const auto started = Clock::now();
                          const Drained drained = drain();
                          if (drained.read == 0) {
                            waitIdle();
                            return;
                          }
                          // Busy: out of the loop, so that packets stop waking the thread
                          // one by one, and read again on the next pass.
                          idle_wait_.release();
                          schedulePass(started, drained.backlog);
                        });
}

void MediaPoller::schedulePass(Clock::time_point last_started, bool backlog) {
  // A pass that left packets behind is followed at once (after whatever else the worker has
  // queued): an overloaded relay reads all the time instead of a pass a millisecond.
  pass_timer_.expires_at(backlog ? last_started : last_started + kPassInterval);
  pass_timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
    if (alive.expired() || ec == boost::asio::error::operation_aborted) return;
    const auto started = Clock::now();
    const Drained drained = drain();
    if (drained.read == 0 && !ec) {
      waitIdle();
    } else {
      schedulePass(started, drained.backlog);
    }
  });
}

MediaPoller::Drained MediaPoller::drain() {
  PollPass pass{clock_.now(), ++passes_, overloaded_};
  Drained drained;
  int packets = 0;
  for (;;) {
    int n = ::epoll_wait(epoll_, events_.data(), static_cast<int>(events_.size()), 0);
    if (n < 0) {
      drained.backlog = true;  // interrupted: look again at once rather than wait for a packet
      break;
    }
    // Every socket a batch returns is read: epoll has moved them behind the others, so one left
    // unread would wait a whole round of the ready list.
    for (int i = 0; i < n; ++i) {
      const auto slot = static_cast<std::uint32_t>(events_[i].data.u64);
      const auto generation = static_cast<std::uint32_t>(events_[i].data.u64 >> 32);
      Slot& s = slots_[slot];
      // Removed earlier in this pass (its stream closed): the event is stale.
      if (s.generation != generation) continue;
      const ReadableSocket::ReadResult result = s.reader->onReadable(s.tag, pass);
      packets += result.packets;
      drained.socket_backlog = drained.socket_backlog || result.backlog;
      ++drained.read;
    }
    if (n < static_cast<int>(events_.size())) break;
    if (packets >= kPacketsPerPass) {
      // The rest stay ready (level-triggered) for the next pass, which comes at once: the
      // worker's SIP gets its turn in between.
      drained.backlog = true;
      break;
    }
    pass.now = clock_.now();  // a long pass: the rate limits see the time move
  }
  // A burst can fill one pass; only a socket left full, or the budget spent pass after pass,
  // is overload (read in batches: single reads would fall behind).
  budget_streak_ = drained.backlog ? budget_streak_ + 1 : 0;
  drained.backlog = drained.backlog || drained.socket_backlog;
  overloaded_ = drained.socket_backlog || budget_streak_ >= 2;
  return drained;
}

}  // namespace palisade::media
