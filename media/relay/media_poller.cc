#include "media/relay/media_poller.h"

#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace palisade::media {

MediaPoller::MediaPoller(boost::asio::io_context& io, const base::Clock& clock)
    : clock_(clock), idle_wait_(io), tick_(io) {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) throw std::system_error(errno, std::generic_category(), "media epoll_create1");
  waitIdle();
}

MediaPoller::~MediaPoller() {
  // The descriptor object would close the epoll fd itself; it is ours to close.
  if (idle_wait_.is_open()) idle_wait_.release();
  ::close(epoll_);
}

MediaPoller::Handle MediaPoller::add(int fd, ReadableSocket& reader, std::uint8_t tag) {
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
                        [this](const boost::system::error_code& ec) {
                          if (ec) return;  // cancelled: the poller may be gone
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
  tick_.expires_at(backlog ? last_started : last_started + kTick);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: the poller may be gone
    const auto started = Clock::now();
    const Drained drained = drain();
    if (drained.read == 0) {
      waitIdle();
    } else {
      schedulePass(started, drained.backlog);
    }
  });
}

MediaPoller::Drained MediaPoller::drain() {
  const PollPass pass{clock_.now(), ++passes_};
  Drained drained;
  while (drained.read < kEventsPerTick) {
    int n = ::epoll_wait(epoll_, events_.data(), static_cast<int>(events_.size()), 0);
    if (n <= 0) break;  // nothing ready (or EINTR: the next pass)
    for (int i = 0; i < n; ++i) {
      const auto slot = static_cast<std::uint32_t>(events_[i].data.u64);
      const auto generation = static_cast<std::uint32_t>(events_[i].data.u64 >> 32);
      if (slot >= slots_.size()) continue;
      Slot& s = slots_[slot];
      // Removed earlier in this batch (its stream closed): the event is stale.
      if (s.generation != generation || s.reader == nullptr) continue;
      if (s.reader->onReadable(s.tag, pass)) drained.backlog = true;
      ++drained.read;
    }
    if (n < static_cast<int>(events_.size())) break;
  }
  if (drained.read >= kEventsPerTick) drained.backlog = true;
  return drained;
}

}  // namespace palisade::media
