#include "policy/bans/ban_source.h"

#include "core/base/log.h"
#include "core/net/endpoint.h"

namespace palisade::policy::bans {

std::optional<BanRecord> banSource(StateStore& store, const boost::asio::ip::address& address,
                                   base::Millis now, const BanSettings& settings, std::string_view reason) {
  auto banned = store.ban(address, now, settings, reason);
  if (!banned) return banned;
  LOG_WARN("ban: {} for {} s (strike {}): {}", net::canonicalAddress(address).to_string(),
           (banned->until - now) / 1000, banned->strikes, reason);
  return banned;
}

}  // namespace palisade::policy::bans
