#include "core/event/worker.h"

#include <unistd.h>

#include <algorithm>

#include <boost/asio/read.hpp>

namespace palisade::event {

Worker::Worker(std::uint32_t index, std::size_t inbox_depth)
    : index_(index),
      io_(),
      inbox_(inbox_depth),
      wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      wake_(io_, wake_fd_),
      tick_(io_) {}

Worker::~Worker() {
  stop();
  join();
}

void Worker::start() {
  guard_ = std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
      io_.get_executor());
  armWake();
  armTick();
  thread_ = std::thread([this] { io_.run(); });
}

void Worker::stop() {
  guard_.reset();
  io_.stop();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

bool Worker::post(std::unique_ptr<Task>& task) {
  if (!inbox_.push(task)) return false;
  // One wake-up per batch: only the producer that flips the flag writes the eventfd.
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    std::uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }
  return true;
}

bool Worker::postOverflow(std::unique_ptr<Task> task) {
  if (overflow_in_flight_.fetch_add(1, std::memory_order_relaxed) >= kMaxOverflow) {
    overflow_in_flight_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  boost::asio::post(io_, [this, held = std::shared_ptr<Task>(std::move(task))] {
    overflow_in_flight_.fetch_sub(1, std::memory_order_relaxed);
    held->run();
  });
  return true;
}

void Worker::armWake() {
  boost::asio::async_read(wake_, boost::asio::buffer(&wake_buffer_, sizeof wake_buffer_),
                          [this](const boost::system::error_code& ec, std::size_t) {
                            if (ec) return;
                            drainInbox();
                            armWake();
                          });
}

void Worker::drainInbox() {
  // Clear the flag first: a push that lands after this point wakes us again.
  wake_pending_.store(false, std::memory_order_release);
  // A bounded batch, then the rest after whatever else is ready (sockets, the tick): a
  // worker that other workers keep feeding still reads its own sockets.
  for (int i = 0; i < kDrainBatch; ++i) {
    std::unique_ptr<Task> task = inbox_.pop();
    if (!task) return;
    task->run();
  }
  boost::asio::post(io_, [this] { drainInbox(); });
}

void Worker::armTick() {
  // Transaction timers have 500 ms granularity at best (T1): a 10 ms tick is precise enough.
  tick_.expires_after(std::chrono::milliseconds(10));
  tick_due_ = clock_.now() + 10;
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    lag_ms_ = std::max<base::Millis>(0, clock_.now() - tick_due_);
    if (tick_fn_) tick_fn_();
    armTick();
  });
}

}  // namespace palisade::event
