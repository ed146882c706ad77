#pragma once
// The SIP core of one worker: transactions, calls (B2BUA legs) and the local answers
// (OPTIONS, 4xx/5xx). It does no I/O itself: messages come in through onMessage() and leave
// through net::Network, time comes from a base::Clock, so tests drive it with a fake network
// and a manual clock. Every method runs on the owning worker's thread.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/base/clock.h"
#include "core/config/config.h"
#include "core/dialog/identifiers.h"
#include "core/event/timer_queue.h"
#include "core/net/endpoint.h"
#include "core/sip/message.h"
#include "core/stats/metrics.h"
#include "core/txn/transaction.h"

namespace palisade::dialog {

class Call;

// Checks a new out-of-dialog request before it creates state (the policy chain implements
// it). Runs on the owning worker; must not block.
struct Verdict {
  enum class Kind { Continue, Reject, Drop } kind = Kind::Continue;
  int status = 0;
  std::string reason;
};
class RequestFilter {
 public:
  virtual ~RequestFilter() = default;
  virtual Verdict check(const sip::Message& request, const net::Flow& flow) = 0;
};

// How one of Palisade's listeners is addressed in Via and Contact.
struct LocalAddress {
  std::string host;  // "127.0.0.1" or "[::1]"
  std::uint16_t udp_port = 0;
  std::uint16_t tcp_port = 0;
  std::uint16_t port(net::Transport t) const { return t == net::Transport::Udp ? udp_port : tcp_port; }
};

class Engine {
 public:
  // `worker` is this engine's index, written into every identifier it generates.
  Engine(std::uint32_t worker, net::Network& network, const base::Clock& clock, stats::Shard& stats,
         std::shared_ptr<const config::Config> config, std::uint64_t seed);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // A message received on `flow`, already routed to this worker (the owner of its Call-ID).
  void onMessage(std::unique_ptr<sip::Message> message, const net::Flow& flow);
  // Runs due timers; the worker calls it on its tick, tests after advancing the clock.
  void runTimers();

  // New config snapshot (reload). Calls keep what they were admitted under.
  void applyConfig(std::shared_ptr<const config::Config> config);
  void setFilter(RequestFilter* filter) { filter_ = filter; }

  std::size_t activeCalls() const { return calls_.size(); }
  std::size_t transactionCount() const { return layer_.clientCount() + layer_.serverCount(); }

  // --- for Call ---
  txn::TransactionLayer& layer() { return layer_; }
  event::TimerQueue& timers() { return timer_queue_; }
  base::Millis now() const { return clock_.now(); }
  IdGenerator& ids() { return ids_; }
  stats::Shard& stats() { return stats_; }
  const config::Config& config() const { return *config_; }
  const LocalAddress& local(net::Side side) const { return local_[static_cast<int>(side)]; }
  void registerLeg(net::Side side, const std::string& call_id, Call* call);
  void unregisterLeg(net::Side side, const std::string& call_id);
  // Frees the call after the current event has been handled.
  void retire(Call* call);
  // Sends a stateless response to `request` (no transaction), e.g. 400 or 503.
  void replyStateless(const sip::Message& request, const net::Flow& flow, int status, std::string_view reason,
                      std::string_view extra_headers = {});
  std::string responseHead(const sip::Message& request, const net::Flow& flow, int status,
                           std::string_view reason, std::string_view to_tag) const;
  // ACKs and then BYEs a 2xx for a dialog we do not want (late fork, CANCEL race).
  void ackAndBye(const sip::Message& response, const net::Flow& flow);

 private:
  void onRequest(std::unique_ptr<sip::Message> request, const net::Flow& flow);
  void onResponse(std::unique_ptr<sip::Message> response, const net::Flow& flow);
  void onOutOfDialog(std::unique_ptr<sip::Message> request, const net::Flow& flow);
  Call* findLeg(net::Side side, std::string_view call_id);
  void collectRetired();

  const base::Clock& clock_;
  stats::Shard& stats_;
  std::shared_ptr<const config::Config> config_;
  LocalAddress local_[2];
  event::TimerQueue timer_queue_;
  txn::TransactionLayer layer_;
  IdGenerator ids_;
  RequestFilter* filter_ = nullptr;
  std::unordered_map<std::string, Call*> legs_;  // key: side digit + Call-ID
  std::unordered_map<Call*, std::unique_ptr<Call>> calls_;
  std::vector<std::unique_ptr<Call>> retired_;
};

}  // namespace palisade::dialog
