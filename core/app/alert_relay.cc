#include "core/app/alert_relay.h"

#include <fmt/format.h>

#include "core/app/cdr_writer.h"
#include "core/app/json_text.h"

namespace palisade::app {

namespace {

constexpr std::chrono::milliseconds kDrainInterval{200};

std::int64_t unixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void field(std::string& out, std::string_view name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  appendJsonString(out, value);
}

}  // namespace

std::string formatFraudEvent(const policy::FraudEvent& event, std::int64_t unix_ms) {
  std::string out = "{\"kind\":";
  appendJsonString(out, event.kind);
  out += fmt::format(",\"time_ms\":{}", unix_ms);
  field(out, "time", isoUtcMillis(unix_ms));
  field(out, "source", event.source);
  field(out, "source_address", event.source_address);
  field(out, "destination", event.destination);
  field(out, "rule", event.rule);
  field(out, "detail", event.detail);
  field(out, "call_id", event.call_id);
  out += "}";
  return out;
}

AlertRelay::AlertRelay(boost::asio::io_context& control, stats::Shard& control_shard)
    : timer_(control), control_shard_(control_shard) {
  arm();
}

AlertRelay::~AlertRelay() { stop(); }

void AlertRelay::raise(policy::FraudEvent&& event) {
  auto item =
      std::make_unique<std::pair<policy::FraudEvent, std::int64_t>>(std::move(event), unixMillisNow());
  if (!queue_.push(item)) dropped_.fetch_add(1, std::memory_order_relaxed);
}

void AlertRelay::arm() {
  timer_.expires_after(kDrainInterval);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    drain();
    arm();
  });
}

void AlertRelay::drain() {
  if (std::uint64_t dropped = dropped_.exchange(0, std::memory_order_relaxed); dropped != 0)
    control_shard_.add(stats::Counter::AlertWebhooksDropped, dropped);
  while (auto item = queue_.pop()) {
    if (webhook_ != nullptr) webhook_->post(formatFraudEvent(item->first, item->second));
  }
}

void AlertRelay::stop() {
  if (stopped_) return;
  drain();
  stopped_ = true;
  timer_.cancel();
}

}  // namespace palisade::app
