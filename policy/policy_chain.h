#pragma once
// The policy chain (DESIGN.md "Policy"): the packet filter and the stages of the request
// filter, over an immutable PolicySnapshot. One chain per worker, so stages keep per-worker
// state without locks; a reload hands every worker's chain the new snapshot by message.
//
// Packet filter: the source ACL of the PBX-facing listener (only the PBX may talk to it), the
// classification of public sources (a trunk, or the internet) and default deny (with no user
// configured, or none that may come from the source, the internet is dropped before parsing).
// Request stages, in order (installDefaultStages): digest authentication, toll fraud (the
// destination, the caller's limits), admission (calls per second, concurrent calls);
// STIR/SHAKEN comes after them.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/clock.h"
#include "core/base/owner_thread.h"
#include "core/stats/metrics.h"
#include "policy/api/alert.h"
#include "policy/api/filters.h"
#include "policy/snapshot.h"

namespace palisade::policy {

// What a stage may use besides the request: where to deliver a late decision.
class StageServices {
 public:
  virtual ~StageServices() = default;
  virtual PendingSink& pendingSink() = 0;
  virtual std::uint64_t newPendingToken() = 0;
  virtual base::Millis now() const = 0;            // the worker's monotonic clock
  virtual std::int64_t unixMillis() const = 0;     // wall-clock time, moving with now()
  virtual void count(stats::Counter counter) = 0;  // the worker's metrics
  virtual void alert(FraudEvent&& event) = 0;      // counted, then to the alert sink if any
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual const char* name() const = 0;
  virtual Decision evaluate(RequestContext& context, const PolicySnapshot& snapshot,
                            StageServices& services) = 0;
  // The engine gave up on a request this stage answered Pending for.
  virtual void cancel(std::uint64_t /*token*/) {}
};

class PolicyChain final : public PacketFilter, public RequestFilter, private StageServices {
 public:
  // `stats`: the worker's shard, for the drop and failure reasons (null: not counted).
  // `worker`: the index overload control reports this worker's load under.
  PolicyChain(std::shared_ptr<const PolicySnapshot> snapshot, const base::Clock& clock,
              stats::Shard* stats = nullptr, std::uint32_t worker = 0);
  // Reload, on the worker.
  void apply(std::shared_ptr<const PolicySnapshot> snapshot);
  // Set-up, before the worker runs.
  void addStage(std::unique_ptr<Stage> stage) { stages_.push_back(std::move(stage)); }
  // Set-up: where fraud events go besides the log and the metrics (null: nowhere else).
  void setAlertSink(AlertSink* sink) { alerts_ = sink; }

  // PacketFilter
  bool admit(net::Flow& flow, std::string_view bytes) override;
  Screen screen(const net::Flow& flow, const sip::Message& message) override;
  void report(const net::Flow& flow, Offence offence) override;
  std::string_view peerName(const net::Flow& flow) const override;
  // On every tick of the worker: its event-loop lag and inbox fill decide whether it is
  // overloaded (the snapshot's thresholds); the answer takes effect at once, both ways.
  void noteLoad(base::Millis lag_ms, unsigned inbox_fill_percent);
  // RequestFilter
  Decision check(RequestContext& context) override;
  void callAnswered(const RequestContext& admitted, std::uint64_t call_token, std::int64_t unix_ms) override;
  std::int64_t callEnded(const RequestContext& admitted, std::uint64_t call_token, std::int64_t answer_ms,
                         std::int64_t end_ms) override;
  bool overSpendCap(const RequestContext& admitted, std::int64_t unix_ms) override;
  void bindPendingSink(PendingSink* sink) override { sink_ = sink; }
  void cancelPending(std::uint64_t token) override;

 private:
  PendingSink& pendingSink() override { return *sink_; }
  std::uint64_t newPendingToken() override { return next_token_++; }
  base::Millis now() const override { return clock_.now(); }
  std::int64_t unixMillis() const override { return wall_base_ + clock_.now(); }
  void count(stats::Counter counter) override {
    if (stats_ != nullptr) stats_->add(counter);
  }
  void alert(FraudEvent&& event) override {
    count(stats::Counter::FraudAlerts);
    if (alerts_ != nullptr) alerts_->raise(std::move(event));
  }

  // The peer class of a source as the packet filter classified it.
  PeerKind kindOf(const net::Flow& flow) const;
  void ban(const net::Flow& flow, std::string_view reason);

  base::OwnerThread owner_;
  const base::Clock& clock_;
  std::int64_t wall_base_;  // Unix ms at the clock's zero: wall time that moves with the worker's clock
  stats::Shard* stats_;
  std::uint32_t worker_;
  bool overloaded_ = false;  // this worker sheds new work
  static constexpr int kLoadTicks = 3;
  int load_ticks_ = 0;
  flood::FloodGuard flood_;
  std::shared_ptr<const PolicySnapshot> snapshot_;
  std::vector<std::unique_ptr<Stage>> stages_;
  PendingSink* sink_ = nullptr;
  AlertSink* alerts_ = nullptr;
  std::uint64_t next_token_ = 1;
};

// The stages every chain runs, in order (the daemon and the tests install the same ones).
void installDefaultStages(PolicyChain& chain);

}  // namespace palisade::policy
