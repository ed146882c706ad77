#pragma once
// Fraud events from the workers to the operator: each worker's policy chain raises them
// (policy::AlertSink, on the worker), they cross to the control thread through a bounded
// lock-free queue drained on a short timer (a refused destination can raise one per call, too
// many for a post per event), and the control thread POSTs each as a JSON object to the alert
// webhook when one is configured. A full queue drops the event and counts it.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/app/alert_webhook.h"
#include "core/event/inbox.h"
#include "core/stats/metrics.h"
#include "policy/api/alert.h"

namespace palisade::app {

// The JSON object an event is POSTed as: kind, Unix ms and ISO time, source, source address,
// destination, rule, detail, Call-ID. Pure, any thread.
std::string formatFraudEvent(const policy::FraudEvent& event, std::int64_t unix_ms);

class AlertRelay final : public policy::AlertSink {
 public:
  static constexpr std::size_t kQueueCapacity = 4096;
  // Control thread; starts the drain timer on `control`.
  AlertRelay(boost::asio::io_context& control, stats::Shard& control_shard);
  ~AlertRelay() override;
  AlertRelay(const AlertRelay&) = delete;
  AlertRelay& operator=(const AlertRelay&) = delete;

  // Any worker; lock-free, never blocks.
  void raise(policy::FraudEvent&& event) override;
  // Control thread: where events go (null: nowhere but the log and metrics they already had).
  void setWebhook(AlertWebhook* webhook) { webhook_ = webhook; }
  // Control thread: drains what is queued and cancels the timer.
  void stop();

 private:
  void arm();
  void drain();

  boost::asio::steady_timer timer_;
  stats::Shard& control_shard_;
  event::Inbox<std::pair<policy::FraudEvent, std::int64_t>> queue_{kQueueCapacity};
  std::atomic<std::uint64_t> dropped_{0};  // by workers; added to the control shard on drain
  AlertWebhook* webhook_ = nullptr;
  bool stopped_ = false;
};

}  // namespace palisade::app
