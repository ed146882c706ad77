#pragma once
// Fraud events (a refused destination, a spike of international attempts, a spend cap): every
// one is a log line and a metric, and goes to the operator's webhook if one is configured.
// AlertSink::raise is called on a worker and never blocks (the daemon queues to the control
// thread, bounded; what does not fit is counted).
#include <string>

namespace palisade::policy {

struct FraudEvent {
  std::string kind;            // "destination_refused", "limit", "spike", "sequential_dialling", ...
  std::string source;          // "user:2001", "trunk:carrier", "pbx"
  std::string source_address;  // "IP:port"
  std::string destination;     // "+E164", or the number as dialled when it could not be read
  std::string rule;            // the rule that fired
  std::string detail;          // human-readable, with the numbers
  std::string call_id;
};

class AlertSink {
 public:
  virtual ~AlertSink() = default;
  virtual void raise(FraudEvent&& event) = 0;
};

}  // namespace palisade::policy
