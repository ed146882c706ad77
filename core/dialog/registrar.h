#pragma once
// Palisade as the registrar of its users (RFC 3261 §10.3): reads an authenticated REGISTER,
// applies it to the location store, and says what to answer. Runs on the worker that owns the
// REGISTER's transaction; the store is shared by all workers.
#include <string>
#include <string_view>

#include "core/base/clock.h"
#include "core/config/config.h"
#include "core/net/endpoint.h"
#include "core/routing/location_store.h"
#include "core/sip/message.h"

namespace palisade::dialog {

struct RegistrarAnswer {
  int status = 200;
  std::string reason = "OK";
  std::string headers;  // complete lines: the bindings (200), Min-Expires (423)
  routing::RegistrationResult result;
};

// `user` is the name the request authenticated as. A user registers only its own name: the
// To header names the address-of-record, and one that is not the user's is refused (403)
// rather than letting one account take another's calls.
RegistrarAnswer registerBindings(const sip::Message& request, const net::Flow& flow, std::string_view user,
                                 const config::RegistrarConfig& settings, routing::LocationStore& store,
                                 base::Millis now);

// The Date header of a registrar's 200 (RFC 3261 §10.3 step 8), from the wall clock.
std::string httpDate();

}  // namespace palisade::dialog
