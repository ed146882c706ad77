#pragma once
// Banning a source, the same way from every stage that can: through the state store, with one
// log line per ban in a fixed form (policy/bans/fail2ban/palisade.conf matches it).
#include <optional>
#include <string_view>

#include "policy/bans/state_store.h"

namespace palisade::policy::bans {

// The record when this call made the ban; nothing when the source was banned already.
std::optional<BanRecord> banSource(StateStore& store, const boost::asio::ip::address& address,
                                   base::Millis now, const BanSettings& settings, std::string_view reason);

}  // namespace palisade::policy::bans
