#pragma once
// The in-process LocationStore. Bindings live in a map behind a mutex: they change on a
// REGISTER and are read once per call to a user, never per packet. The per-packet question
// (does this flow belong to a registered user, so that its keep-alive is answered) is a
// lock-free ExpiringSet of flow hashes, which the mutex side keeps in step.
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/base/expiring_set.h"
#include "core/routing/location_store.h"

namespace palisade::routing {

class LocalLocationStore final : public LocationStore {
 public:
  static constexpr std::size_t kFlowSlots = 16384;

  RegistrationResult update(const Registration& registration, base::Millis now) override;
  std::vector<Binding> lookup(std::string_view user, base::Millis now) const override;
  bool registeredFlow(const net::Flow& flow, base::Millis now) const override;
  std::vector<Binding> retain(const std::function<bool(const Binding&)>& keep) override;
  std::vector<Binding> expire(base::Millis now) override;
  std::vector<Binding> all(base::Millis now) const override;
  std::size_t size() const override;

 private:
  std::uint64_t flowHash(const net::Flow& flow) const;
  // Keeps the lock-free flow set in step with the bindings (mutex held).
  void addFlow(const Binding& binding);
  void removeFlow(const Binding& binding);
  // Drops `user`'s bindings that ended by `now` into `out` (mutex held).
  void dropExpired(std::vector<Binding>& bindings, base::Millis now, std::vector<Binding>* out);

  base::KeyedHash hash_;
  base::ExpiringSet<kFlowSlots> flows_;
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<Binding>, std::less<>> users_;
  std::unordered_map<std::uint64_t, std::multiset<base::Millis>> flow_ends_;  // per flow: its bindings' ends
  std::size_t count_ = 0;
};

}  // namespace palisade::routing
