#pragma once
// Where Palisade's users are: the registrar's bindings (RFC 3261 §10), behind one small
// interface (DESIGN.md "Beyond one machine") so that a store shared by several nodes can
// replace the in-process one without touching the registrar or the routing. Every method may
// be called from any worker; the per-packet one (registeredFlow) never blocks.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/clock.h"
#include "core/net/endpoint.h"

namespace palisade::routing {

struct Binding {
  std::string user;
  std::string contact;         // the Contact URI as registered: the Request-URI of calls to it
  net::Flow flow;              // where the REGISTER came from (its NAT pinhole): calls go there
  base::Millis expires = 0;    // on the monotonic clock
  base::Millis refreshed = 0;  // when it was last registered
  std::string call_id;         // of the REGISTER that made or refreshed it (RFC 3261 §10.3)
  std::uint32_t cseq = 0;
};

// One authenticated REGISTER, as the registrar read it.
struct Registration {
  struct Contact {
    std::string uri;
    base::Millis expires_ms = 0;  // 0 removes the binding
  };
  std::string user;
  net::Flow flow;
  std::string call_id;
  std::uint32_t cseq = 0;
  bool remove_all = false;  // Contact: * with Expires: 0
  std::vector<Contact> contacts;
  std::size_t max_bindings = 4;
};

struct RegistrationResult {
  enum class Outcome {
    Updated,     // applied (or nothing to change: a query)
    OutOfOrder,  // a CSeq not above the binding's for the same Call-ID: nothing applied
    TooMany,     // more than max_bindings would remain: nothing applied
  };
  Outcome outcome = Outcome::Updated;
  std::vector<Binding> bindings;  // the user's live bindings afterwards, newest first
  std::size_t added = 0;
  std::size_t removed = 0;
};

class LocationStore {
 public:
  virtual ~LocationStore() = default;
  // Applies a REGISTER atomically: all of its contacts or none.
  virtual RegistrationResult update(const Registration& registration, base::Millis now) = 0;
  // The user's live bindings, the most recently refreshed first.
  virtual std::vector<Binding> lookup(std::string_view user, base::Millis now) const = 0;
  // Per packet, lock-free: whether `flow` is one a live binding registered from (keep-alives
  // from it are answered).
  virtual bool registeredFlow(const net::Flow& flow, base::Millis now) const = 0;
  // Ends the bindings `keep` refuses (users removed by a reload, sources no longer allowed);
  // returns them.
  virtual std::vector<Binding> retain(const std::function<bool(const Binding&)>& keep) = 0;
  // Forgets the bindings that expired; returns them.
  virtual std::vector<Binding> expire(base::Millis now) = 0;
  // Every live binding (the management endpoint).
  virtual std::vector<Binding> all(base::Millis now) const = 0;
  virtual std::size_t size() const = 0;
};

}  // namespace palisade::routing
