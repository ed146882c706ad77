#pragma once
// A worker: one thread running its own io_context (concurrency hint 1 is not used: posts from
// other threads stay legal), a 10 ms tick, and an Inbox through which other threads hand it
// work. It knows nothing of SIP: the app wires what runs on it (a SIP engine, transports).
#include <sys/eventfd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/base/clock.h"
#include "core/event/inbox.h"

namespace palisade::event {

// Work handed to a worker from another thread; run() executes on the worker.
class Task {
 public:
  virtual ~Task() = default;
  virtual void run() = 0;
};

class Worker {
 public:
  Worker(std::uint32_t index, std::size_t inbox_depth);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Before start(): runs on the worker every 10 ms (timers of what it owns).
  void setTick(std::function<void()> tick) { tick_fn_ = std::move(tick); }
  void start();
  void stop();  // any thread
  void join();

  std::uint32_t index() const { return index_; }
  // On the worker: how late its last tick ran (the event loop's lag), and how full its inbox
  // is, in percent. Overload control reads both on every tick.
  base::Millis lagMs() const { return lag_ms_; }
  unsigned inboxFillPercent() const { return static_cast<unsigned>(inbox_.size() * 100 / inbox_.capacity()); }
  boost::asio::io_context& io() { return io_; }
  const base::Clock& clock() const { return clock_; }

  // Any thread. False when the inbox is full (the task stays with the caller).
  bool post(std::unique_ptr<Task>& task);
  // Any thread: the fallback when the inbox is full, for work that must not be lost (messages
  // of calls in progress). Goes through asio::post (a lock) and holds at most kMaxOverflow
  // tasks; false when that bound is reached too (the task is dropped; SIP retransmits).
  bool postOverflow(std::unique_ptr<Task> task);
  static constexpr int kMaxOverflow = 4096;
  static constexpr int kDrainBatch = 256;  // inbox tasks run per turn of the event loop
  // Control messages (config snapshots): rare, so asio::post's lock is fine here.
  template <typename Fn>
  void control(Fn&& fn) {
    boost::asio::post(io_, std::forward<Fn>(fn));
  }

 private:
  void armWake();
  void drainInbox();
  void armTick();

  std::uint32_t index_;
  boost::asio::io_context io_;
  base::SteadyClock clock_;
  Inbox<Task> inbox_;
  int wake_fd_ = -1;
  boost::asio::posix::stream_descriptor wake_;
  std::uint64_t wake_buffer_ = 0;
  std::atomic<bool> wake_pending_{false};
  std::atomic<int> overflow_in_flight_{0};
  boost::asio::steady_timer tick_;
  base::Millis tick_due_ = 0;
  base::Millis lag_ms_ = 0;
  std::function<void()> tick_fn_;
  std::thread thread_;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
};

}  // namespace palisade::event
