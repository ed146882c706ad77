#include "core/event/worker.h"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>

#include "core/base/log.h"
#include "core/dialog/identifiers.h"

namespace palisade::event {

using stats::Counter;

void Dispatcher::deliver(Worker& here, std::unique_ptr<sip::Message> message, const net::Flow& flow) {
  if (here.sourceFilter() != nullptr && !here.sourceFilter()->allowSource(flow)) {
    here.stats().add(Counter::DroppedUntrusted);
    return;
  }
  std::uint32_t owner = dialog::ownerOf(message->callId(), size());
  if (owner == here.index()) {
    here.engine().onMessage(std::move(message), flow);
    return;
  }
  auto envelope = std::make_unique<Envelope>();
  envelope->message = std::move(message);
  envelope->flow = flow;
  if (worker(owner).post(envelope)) return;
  here.stats().add(Counter::InboxOverflows);
  // Overloaded owner: a new call is refused at once so the caller can retry elsewhere.
  const sip::Message& msg = *envelope->message;
  if (msg.ok() && msg.isRequest() && msg.method() == sip::Method::Invite && msg.toTag().empty()) {
    here.stats().add(Counter::Rejected503);
    here.engine().replyStateless(msg, flow, 503, "Service Unavailable", "Retry-After: 5\r\n");
    return;
  }
  // Calls in progress are not lost to overload: responses, ACK, BYE, CANCEL and other
  // in-dialog requests take the slower posted path, itself bounded per owner.
  worker(owner).postOverflow(std::move(envelope));
}

Worker::Worker(std::uint32_t index, stats::Shard& stats, std::size_t inbox_depth)
    : index_(index),
      stats_(stats),
      io_(),
      inbox_(inbox_depth),
      wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      wake_(io_, wake_fd_),
      tick_(io_) {}

Worker::~Worker() {
  stop();
  join();
  // The engine (calls, transactions) goes before the network it sends through.
  engine_.reset();
}

void Worker::attach(net::Network& network, std::shared_ptr<const config::Config> config, std::uint64_t seed) {
  network_ = &network;
  engine_ = std::make_unique<dialog::Engine>(index_, network, clock_, stats_, std::move(config), seed);
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

bool Worker::post(std::unique_ptr<Envelope>& envelope) {
  if (!inbox_.push(envelope)) return false;
  // One wake-up per batch: only the producer that flips the flag writes the eventfd.
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    std::uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }
  return true;
}

void Worker::postOverflow(std::unique_ptr<Envelope> envelope) {
  if (overflow_in_flight_.fetch_add(1, std::memory_order_relaxed) >= kMaxOverflow) {
    overflow_in_flight_.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  boost::asio::post(io_, [this, held = std::shared_ptr<Envelope>(std::move(envelope))] {
    overflow_in_flight_.fetch_sub(1, std::memory_order_relaxed);
    if (held->message) {
      engine_->onMessage(std::move(held->message), held->flow);
    } else {
      network_->send(held->flow, std::move(held->bytes));
    }
  });
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
  while (std::unique_ptr<Envelope> envelope = inbox_.pop()) {
    if (envelope->message) {
      engine_->onMessage(std::move(envelope->message), envelope->flow);
    } else {
      network_->send(envelope->flow, std::move(envelope->bytes));
    }
  }
}

void Worker::armTick() {
  // Transaction timers have 500 ms granularity at best (T1): a 10 ms tick is precise enough.
  tick_.expires_after(std::chrono::milliseconds(10));
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    engine_->runTimers();
    armTick();
  });
}

}  // namespace palisade::event
