#pragma once
// Routes what a worker's transports receive to the engine that owns it: the owner of a
// message is hash(Call-ID) % N, or the worker index Palisade wrote into the identifiers it
// generated (ownerOf). A message is scanned once, on the worker that received it, then handed
// whole to its owner through the owner's inbox (one bounded lock-free queue per worker).
// One Dispatcher per worker: it is that worker's transports' net::Receiver.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/base/owner_thread.h"
#include "core/event/worker.h"
#include "core/net/endpoint.h"
#include "core/sip/message.h"
#include "core/stats/metrics.h"
#include "policy/api/filters.h"

namespace palisade::dialog {

class Engine;

class Dispatcher final : public net::Receiver {
 public:
  struct Owner {
    event::Worker* worker = nullptr;
    Engine* engine = nullptr;
  };

  Dispatcher(std::uint32_t index, stats::Shard& stats, const sip::Limits& limits);
  // Before the workers start: every worker's engine, by index (immutable afterwards).
  void setOwners(std::vector<Owner> owners) { owners_ = std::move(owners); }
  // Before the workers start: the packet filter that screens scanned messages (null: none).
  void setFilter(policy::PacketFilter* filter) { filter_ = filter; }
  // Reload, on this worker: new scanner limits.
  void setLimits(const sip::Limits& limits) { limits_ = limits; }

  // net::Receiver, on this dispatcher's worker.
  void onPacket(const net::Flow& flow, std::string&& bytes, bool datagram) override;
  void onStreamFault(const net::Flow& flow, std::string&& bytes, int status,
                     std::string_view reason) override;
  void onStreamClosed(const net::Flow& flow) override;

  // Hands a scanned message to its owner (or handles it here when this worker owns it).
  // `shed`: the screen refused it; the owner answers 503 unless it is a retransmission of a
  // request it already has a transaction for.
  void deliver(std::unique_ptr<sip::Message> message, const net::Flow& flow, bool shed = false);

 private:
  base::OwnerThread owner_thread_;
  std::uint32_t index_;
  stats::Shard& stats_;
  sip::Limits limits_;
  std::vector<Owner> owners_;
  policy::PacketFilter* filter_ = nullptr;
};

}  // namespace palisade::dialog
