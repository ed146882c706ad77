#include "core/routing/local_location_store.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace palisade::routing {
namespace {

void newestFirst(std::vector<Binding>& bindings) {
  std::stable_sort(bindings.begin(), bindings.end(),
                   [](const Binding& a, const Binding& b) { return a.refreshed > b.refreshed; });
}

}  // namespace

std::uint64_t LocalLocationStore::flowHash(const net::Flow& flow) const {
  // A stream is its connection; a datagram flow is the address and port it came from. Packed
  // into a stack buffer: this runs for every keep-alive and every request a stranger sends.
  std::array<char, 27> key{};
  std::size_t at = 0;
  auto put = [&key, &at](const void* data, std::size_t size) {
    std::memcpy(key.data() + at, data, size);
    at += size;
  };
  auto side = static_cast<std::uint8_t>(flow.side);
  auto transport = static_cast<std::uint8_t>(flow.transport);
  auto address = net::canonicalAddress(flow.remote.address);
  std::array<unsigned char, 16> bytes{};
  if (address.is_v4()) {
    auto v4 = address.to_v4().to_bytes();
    std::memcpy(bytes.data(), v4.data(), v4.size());
  } else {
    bytes = address.to_v6().to_bytes();
  }
  std::uint8_t family = address.is_v4() ? 4 : 6;
  put(&side, 1);
  put(&transport, 1);
  put(&family, 1);
  put(bytes.data(), bytes.size());
  put(&flow.remote.port, sizeof flow.remote.port);
  put(&flow.conn_worker, sizeof flow.conn_worker);
  put(&flow.conn_id, sizeof flow.conn_id);
  return hash_(std::string_view(key.data(), at));
}

void LocalLocationStore::addFlow(const Binding& binding) {
  std::uint64_t hash = flowHash(binding.flow);
  auto& ends = flow_ends_[hash];
  ends.insert(binding.expires);
  flows_.insert(hash, *ends.rbegin());
  ++count_;
}

void LocalLocationStore::removeFlow(const Binding& binding) {
  --count_;
  std::uint64_t hash = flowHash(binding.flow);
  auto it = flow_ends_.find(hash);
  if (it == flow_ends_.end()) return;
  if (auto end = it->second.find(binding.expires); end != it->second.end()) it->second.erase(end);
  if (it->second.empty()) {
    flow_ends_.erase(it);
    flows_.erase(hash);
  } else {
    flows_.insert(hash, *it->second.rbegin());
  }
}

void LocalLocationStore::dropExpired(std::vector<Binding>& bindings, base::Millis now,
                                     std::vector<Binding>* out) {
  for (auto it = bindings.begin(); it != bindings.end();) {
    if (it->expires > now) {
      ++it;
      continue;
    }
    removeFlow(*it);
    if (out != nullptr) out->push_back(std::move(*it));
    it = bindings.erase(it);
  }
}

RegistrationResult LocalLocationStore::update(const Registration& registration, base::Millis now) {
  RegistrationResult result;
  std::lock_guard lock(mutex_);
  auto found = users_.find(registration.user);
  std::vector<Binding> empty;
  std::vector<Binding>& bindings = found != users_.end() ? found->second : empty;
  dropExpired(bindings, now, nullptr);

  // RFC 3261 §10.3 step 7: for the same Call-ID, only a higher CSeq changes a binding; a
  // request that fails this check changes nothing at all.
  auto outOfOrder = [&](const Binding& binding) {
    return binding.call_id == registration.call_id && registration.cseq <= binding.cseq;
  };
  auto bindingFor = [&](const std::string& uri) {
    return std::find_if(bindings.begin(), bindings.end(), [&](const Binding& b) { return b.contact == uri; });
  };
  std::size_t remaining = bindings.size();
  if (registration.remove_all) {
    for (const Binding& binding : bindings) {
      if (outOfOrder(binding)) result.outcome = RegistrationResult::Outcome::OutOfOrder;
    }
    remaining = 0;
  } else {
    for (const auto& contact : registration.contacts) {
      auto existing = bindingFor(contact.uri);
      if (existing != bindings.end() && outOfOrder(*existing))
        result.outcome = RegistrationResult::Outcome::OutOfOrder;
      if (existing == bindings.end() && contact.expires_ms > 0) ++remaining;
      if (existing != bindings.end() && contact.expires_ms == 0) --remaining;
    }
    if (result.outcome == RegistrationResult::Outcome::Updated && remaining > registration.max_bindings &&
        remaining > bindings.size())
      result.outcome = RegistrationResult::Outcome::TooMany;
  }

  if (result.outcome == RegistrationResult::Outcome::Updated) {
    if (registration.remove_all) {
      for (const Binding& binding : bindings) removeFlow(binding);
      result.removed = bindings.size();
      bindings.clear();
    }
    for (const auto& contact : registration.contacts) {
      auto existing = bindingFor(contact.uri);
      if (contact.expires_ms == 0) {
        if (existing == bindings.end()) continue;
        removeFlow(*existing);
        bindings.erase(existing);
        ++result.removed;
        continue;
      }
      if (existing == bindings.end()) {
        bindings.emplace_back();
        existing = std::prev(bindings.end());
        existing->user = registration.user;
        existing->contact = contact.uri;
        ++result.added;
      } else {
        removeFlow(*existing);
      }
      existing->flow = registration.flow;
      existing->expires = now + contact.expires_ms;
      existing->refreshed = now;
      existing->call_id = registration.call_id;
      existing->cseq = registration.cseq;
      addFlow(*existing);
    }
    newestFirst(bindings);
  }
  result.bindings = bindings;
  if (found == users_.end() && !bindings.empty()) {
    users_.emplace(registration.user, std::move(bindings));
  } else if (found != users_.end() && bindings.empty()) {
    users_.erase(found);
  }
  return result;
}

std::vector<Binding> LocalLocationStore::lookup(std::string_view user, base::Millis now) const {
  std::vector<Binding> out;
  std::lock_guard lock(mutex_);
  auto found = users_.find(user);
  if (found == users_.end()) return out;
  for (const Binding& binding : found->second) {
    if (binding.expires > now) out.push_back(binding);
  }
  return out;
}

bool LocalLocationStore::registeredFlow(const net::Flow& flow, base::Millis now) const {
  return flows_.contains(flowHash(flow), now);
}

std::vector<Binding> LocalLocationStore::retain(const std::function<bool(const Binding&)>& keep) {
  std::vector<Binding> ended;
  std::lock_guard lock(mutex_);
  for (auto user = users_.begin(); user != users_.end();) {
    auto& bindings = user->second;
    for (auto it = bindings.begin(); it != bindings.end();) {
      if (keep(*it)) {
        ++it;
        continue;
      }
      removeFlow(*it);
      ended.push_back(std::move(*it));
      it = bindings.erase(it);
    }
    user = bindings.empty() ? users_.erase(user) : std::next(user);
  }
  return ended;
}

std::vector<Binding> LocalLocationStore::expire(base::Millis now) {
  std::vector<Binding> ended;
  std::lock_guard lock(mutex_);
  for (auto user = users_.begin(); user != users_.end();) {
    dropExpired(user->second, now, &ended);
    user = user->second.empty() ? users_.erase(user) : std::next(user);
  }
  return ended;
}

std::vector<Binding> LocalLocationStore::all(base::Millis now) const {
  std::vector<Binding> out;
  std::lock_guard lock(mutex_);
  for (const auto& [user, bindings] : users_) {
    for (const Binding& binding : bindings) {
      if (binding.expires > now) out.push_back(binding);
    }
  }
  return out;
}

std::size_t LocalLocationStore::size() const {
  std::lock_guard lock(mutex_);
  return count_;
}

}  // namespace palisade::routing
