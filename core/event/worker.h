#pragma once
// A worker: one thread running its own io_context (concurrency hint 1 is not used: posts from
// other threads stay legal), the SIP Engine that owns its calls, and an Inbox through which
// other workers hand it messages. A message is scanned once on the worker that received it,
// then handed whole to the owner of its Call-ID.
#include <sys/eventfd.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/base/clock.h"
#include "core/dialog/engine.h"
#include "core/event/inbox.h"
#include "core/net/endpoint.h"
#include "core/sip/message.h"
#include "core/stats/metrics.h"

namespace palisade::event {

// Cheap per-source checks that run on the receiving worker before any hand-off.
class SourceFilter {
 public:
  virtual ~SourceFilter() = default;
  virtual bool allowSource(const net::Flow& flow) = 0;
};

// What crosses between workers: a received message for its owner, or bytes to write on a TCP
// connection that the receiving worker owns.
struct Envelope {
  std::unique_ptr<sip::Message> message;
  net::Flow flow;
  std::string bytes;
};

class Worker;

// The set of workers; routes each message to its owner. Shared by all workers, immutable
// after start-up.
class Dispatcher {
 public:
  void add(Worker* worker) { workers_.push_back(worker); }
  std::uint32_t size() const { return static_cast<std::uint32_t>(workers_.size()); }
  Worker& worker(std::uint32_t index) { return *workers_[index]; }
  // Runs on worker `here`: filters, then processes locally or hands off to the owner.
  void deliver(Worker& here, std::unique_ptr<sip::Message> message, const net::Flow& flow);

 private:
  std::vector<Worker*> workers_;
};

class Worker {
 public:
  Worker(std::uint32_t index, stats::Shard& stats, std::size_t inbox_depth);
  ~Worker();

  // Called once before start(): the engine sends through `network` (this worker's transports).
  void attach(net::Network& network, std::shared_ptr<const config::Config> config, std::uint64_t seed);
  void setSourceFilter(SourceFilter* filter) { source_filter_ = filter; }
  void setRequestFilter(dialog::RequestFilter* filter) { engine_->setFilter(filter); }
  void start();
  void stop();  // any thread
  void join();

  std::uint32_t index() const { return index_; }
  boost::asio::io_context& io() { return io_; }
  dialog::Engine& engine() { return *engine_; }
  stats::Shard& stats() { return stats_; }
  net::Network& network() { return *network_; }
  SourceFilter* sourceFilter() { return source_filter_; }

  // Any thread. False when the inbox is full (the envelope stays with the caller).
  bool post(std::unique_ptr<Envelope>& envelope);
  // Any thread: the fallback when the inbox is full, for messages of calls in progress. Goes
  // through asio::post (a lock) and holds at most kMaxOverflow envelopes; beyond that the
  // envelope is dropped (SIP retransmits).
  void postOverflow(std::unique_ptr<Envelope> envelope);
  static constexpr int kMaxOverflow = 4096;
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
  stats::Shard& stats_;
  boost::asio::io_context io_;
  base::SteadyClock clock_;
  Inbox<Envelope> inbox_;
  int wake_fd_ = -1;
  boost::asio::posix::stream_descriptor wake_;
  std::uint64_t wake_buffer_ = 0;
  std::atomic<bool> wake_pending_{false};
  std::atomic<int> overflow_in_flight_{0};
  boost::asio::steady_timer tick_;
  net::Network* network_ = nullptr;
  std::unique_ptr<dialog::Engine> engine_;
  SourceFilter* source_filter_ = nullptr;
  std::thread thread_;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
};

}  // namespace palisade::event
