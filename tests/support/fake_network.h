#pragma once
// Test doubles for the SIP core: a network that records what the engine sends and a clock
// that only moves when the test says so.
#include <deque>
#include <string>
#include <vector>

#include "core/base/clock.h"
#include "core/net/endpoint.h"

namespace palisade::testing {

class ManualClock final : public base::Clock {
 public:
  base::Millis now() const override { return now_; }
  void advance(base::Millis by) { now_ += by; }

 private:
  base::Millis now_ = 1'000'000;
};

struct SentPacket {
  net::Flow flow;
  std::string bytes;
};

class FakeNetwork final : public net::Network {
 public:
  void send(const net::Flow& flow, std::string&& bytes) override { sent.push_back({flow, std::move(bytes)}); }
  std::deque<SentPacket> sent;
};

net::Endpoint endpoint(const char* address, std::uint16_t port);
net::Flow udpFlow(net::Side side, const char* address, std::uint16_t port);

}  // namespace palisade::testing
