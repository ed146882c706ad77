#pragma once
// The SIP core of one worker: transactions, calls (B2BUA legs) and the local answers
// (OPTIONS, 4xx/5xx). It does no I/O itself: messages come in through onMessage() and leave
// through net::Network, time comes from a base::Clock, so tests drive it with a fake network
// and a manual clock. Every method runs on the owning worker's thread (asserted in debug and
// sanitizer builds); the constructor may run elsewhere, before the worker starts.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/base/clock.h"
#include "core/base/owner_thread.h"
#include "core/config/config.h"
#include "core/dialog/call_record.h"
#include "core/dialog/identifiers.h"
#include "core/dialog/media_hook.h"
#include "core/event/timer_queue.h"
#include "core/net/endpoint.h"
#include "core/routing/location_store.h"
#include "core/routing/trunk_routes.h"
#include "core/sip/header_policy.h"
#include "core/sip/message.h"
#include "core/stats/metrics.h"
#include "core/txn/transaction.h"
#include "policy/api/filters.h"
#include "policy/api/shared_counters.h"

namespace palisade::dialog {

class Call;

// How one of Palisade's listeners is addressed in Via and Contact.
struct LocalAddress {
  std::string host;  // "127.0.0.1" or "[::1]"
  std::uint16_t udp_port = 0;
  std::uint16_t tcp_port = 0;
  std::uint16_t tls_port = 0;
  std::uint16_t port(net::Transport t) const {
    return t == net::Transport::Udp ? udp_port : t == net::Transport::Tcp ? tcp_port : tls_port;
  }
};

// Where new calls from one side go, compiled from a config snapshot.
struct Target {
  net::Flow flow;                                       // the next hop on the other side
  std::shared_ptr<const txn::PeerAddresses> addresses;  // where that peer may answer from
  bool trust_identity = false;                          // its identity headers may cross
  bool valid = false;
  std::string request_uri;  // a registered user's Contact; empty: the dialled user at the peer
  std::string to_host;      // the host part of To; empty: the peer's address and port
};

// Counts what is sent to UDP sources that have not shown they receive at their address
// (RFC 3261 allows no more than its timers; this makes the amount visible).
class UnverifiedSendCounter final : public net::Network {
 public:
  UnverifiedSendCounter(net::Network& inner, stats::Shard& stats) : inner_(inner), stats_(stats) {}
  void send(const net::Flow& flow, std::string&& bytes) override;

 private:
  net::Network& inner_;
  stats::Shard& stats_;
};

class Engine final : public policy::PendingSink {
 public:
  // `worker` is this engine's index, written into every identifier it generates. `shared`
  // holds the limits that are global across workers (limits.max_calls).
  Engine(std::uint32_t worker, net::Network& network, const base::Clock& clock, stats::Shard& stats,
         std::shared_ptr<const config::Config> config, policy::SharedCounters& shared);
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // A message received on `flow`, already routed to this worker (the owner of its Call-ID).
  void onMessage(std::unique_ptr<sip::Message> message, const net::Flow& flow);
  // A new request the screen refused (over its rate with flood.action = "503", or new work
  // while overloaded): absorbed when it retransmits a request already taken, else 503.
  void onShed(std::unique_ptr<sip::Message> message, const net::Flow& flow);
  // Runs due timers; the worker calls it on its tick, tests after advancing the clock.
  void runTimers();

  // New config snapshot (reload). Calls keep what they were admitted under.
  void applyConfig(std::shared_ptr<const config::Config> config);
  // Before the first message: the policy chain that decides about new requests. It must
  // outlive the engine: calls still up when the engine goes report their end to it.
  void setFilter(policy::RequestFilter* filter);
  // Before the first message: where the users' registrations are kept (none: REGISTER gets
  // 405 and calls from the PBX go to the trunks).
  void setLocation(routing::LocationStore* location) { location_ = location; }
  // Before the first message: where calls get their media handling (none: bodies cross as is).
  void setMediaFactory(MediaFactory* factory) { media_ = factory; }
  // Where call records (CDRs) go: every call, and every new INVITE refused (null: nowhere).
  void setRecordSink(CallRecordSink* sink) { records_ = sink; }  // outlives the engine, like the filter
  CallRecordSink* recordSink() const { return records_; }
  policy::RequestFilter* filter() const { return filter_; }

  // policy::PendingSink: a stage decided about a request it answered Pending for.
  void resume(std::uint64_t token, policy::Decision decision) override;

  std::size_t activeCalls() const { return calls_.size(); }
  std::size_t transactionCount() const { return layer_.clientCount() + layer_.serverCount(); }
  std::size_t pendingCount() const { return parked_.size(); }
  static constexpr std::size_t kMaxPending = 1024;
  static constexpr base::Millis kPendingTimeoutMs = 5000;

  // --- for Call ---
  txn::TransactionLayer& layer() { return layer_; }
  event::TimerQueue& timers() { return timer_queue_; }
  base::Millis now() const { return clock_.now(); }
  // Wall-clock Unix ms that moves with now() (CDR times, spend; a manual clock in tests).
  std::int64_t unixNow() const { return wall_base_ + clock_.now(); }
  IdGenerator& ids() { return ids_; }
  stats::Shard& stats() { return stats_; }
  policy::SharedCounters& shared() { return shared_; }
  const config::Config& config() const { return *config_; }
  // The header policy new calls are admitted under (a call keeps its own across reloads).
  const std::shared_ptr<const sip::HeaderPolicy>& headerPolicy() const { return header_policy_; }
  const LocalAddress& local(net::Side side) const { return local_[static_cast<int>(side)]; }
  void registerLeg(net::Side side, const std::string& call_id, Call* call);
  void unregisterLeg(net::Side side, const std::string& call_id);
  // Frees the call after the current event has been handled.
  void retire(Call* call);
  // A stream connection of this worker ended: bindings registered over it end too (calls to
  // those users would have no way to reach them; RFC 5626 §5.4 treats such a flow as failed).
  void onFlowClosed(const net::Flow& flow);
  // Sends a stateless response to `request` (no transaction), e.g. 400 or 503.
  void replyStateless(const sip::Message& request, const net::Flow& flow, int status, std::string_view reason,
                      std::string_view extra_headers = {});
  // ACKs and then BYEs a 2xx for a dialog we do not want (late fork, CANCEL race).
  void ackAndBye(const sip::Message& response, const net::Flow& flow);

 private:
  struct Parked;
  class ParkedUser;
  void onRequest(std::unique_ptr<sip::Message> request, const net::Flow& flow);
  void onResponse(std::unique_ptr<sip::Message> response, const net::Flow& flow);
  void onOutOfDialog(std::unique_ptr<sip::Message> request, const net::Flow& flow);
  // A new request the policy let through. Either `request` is set, or `parked` is its server
  // transaction (made while a stage decided).
  void admit(std::unique_ptr<sip::Message> request, txn::ServerTransaction* parked, const net::Flow& flow,
             policy::RequestContext context);
  // Gives back the shared counters the stages took for a request that will not be a call.
  void releaseRules(policy::RequestContext& context);
  // The CDR of a new INVITE that did not become a call.
  void recordRefused(const sip::Message& request, const net::Flow& flow,
                     const policy::RequestContext& context, int status, std::string_view reason);
  void answer(const sip::Message& request, txn::ServerTransaction* parked, const net::Flow& flow, int status,
              std::string_view reason, std::string_view extra_headers = {});
  // Carries out the policy's decision about a new request (see admit() for the two forms).
  void decide(const policy::Decision& decision, std::unique_ptr<sip::Message> request,
              txn::ServerTransaction* parked, const net::Flow& flow, policy::RequestContext context);
  void park(std::unique_ptr<sip::Message> request, txn::ServerTransaction* parked, const net::Flow& flow,
            policy::RequestContext context, std::uint64_t token);
  void unpark(std::uint64_t token);
  void expirePending(std::uint64_t token);
  Call* findLeg(net::Side side, std::string_view call_id);
  void collectRetired();
  void compileTargets();
  // Where a new call from `from` goes: the PBX, or (from the PBX) the trunk whose prefix
  // matches the dialled number best, else the first trunk.
  const Target* targetFor(const sip::Message& request, net::Side from) const;
  // A call from the PBX to one of the users: the configured user its Request-URI names, or
  // nullptr when it names none.
  const config::User* calledUser(const sip::Message& request) const;
  // Its newest live binding as a target; false when it has none.
  bool userTarget(const config::User& user, Target& out) const;
  // An authenticated REGISTER (either `parked` is its transaction, or `request` is set).
  void onRegister(std::unique_ptr<sip::Message> request, txn::ServerTransaction* parked,
                  const net::Flow& flow, const policy::RequestContext& context);

  base::OwnerThread owner_;
  const base::Clock& clock_;
  std::int64_t wall_base_;  // Unix ms at the clock's zero
  stats::Shard& stats_;
  policy::SharedCounters& shared_;
  std::shared_ptr<const config::Config> config_;
  std::shared_ptr<const sip::HeaderPolicy> header_policy_;
  LocalAddress local_[2];
  Target pbx_target_;
  std::vector<Target> trunk_targets_;  // in config order
  routing::TrunkRoutes trunk_routes_;
  UnverifiedSendCounter network_;
  event::TimerQueue timer_queue_;
  txn::TransactionLayer layer_;
  IdGenerator ids_;
  policy::RequestFilter* filter_ = nullptr;
  MediaFactory* media_ = nullptr;
  CallRecordSink* records_ = nullptr;
  routing::LocationStore* location_ = nullptr;
  std::vector<const config::User*> users_by_name_;  // into config_, sorted by name
  std::unique_ptr<ParkedUser> parked_user_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Parked>> parked_;
  std::unordered_map<std::string, Call*> legs_;  // key: side digit + Call-ID
  std::unordered_map<Call*, std::unique_ptr<Call>> calls_;
  std::vector<std::unique_ptr<Call>> retired_;
};

}  // namespace palisade::dialog
