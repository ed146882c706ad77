#include "core/dialog/registrar.h"

#include <ctime>

#include <fmt/format.h>

#include "core/sip/builder.h"
#include "core/sip/headers.h"

namespace palisade::dialog {
namespace {

// Longer contact URIs are refused: a binding is stored, and echoed in every 200.
constexpr std::size_t kMaxContactUri = 512;
// A REGISTER naming more contacts than this is refused before any is looked at.
constexpr std::size_t kMaxContactsPerRequest = 32;

RegistrarAnswer refuse(int status, std::string_view reason, std::string headers = {}) {
  RegistrarAnswer answer;
  answer.status = status;
  answer.reason = std::string(reason);
  answer.headers = std::move(headers);
  return answer;
}

}  // namespace

std::string httpDate() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[64];
  std::size_t size = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return std::string(text, size);
}

RegistrarAnswer registerBindings(const sip::Message& request, const net::Flow& flow, std::string_view user,
                                 const config::RegistrarConfig& settings, routing::LocationStore& store,
                                 base::Millis now) {
  sip::Uri to;
  if (!sip::parseUri(request.to().uri, to) || !to.isSip()) return refuse(400, "Bad To");
  if (to.user != user) return refuse(403, "Forbidden");

  // Expires header: the default for every contact without an expires parameter.
  std::uint64_t fallback = settings.default_expires_s;
  bool header_zero = false;
  for (const auto& h : request.headers()) {
    if (h.id != sip::Hdr::Other || !sip::iequals(h.name, "Expires")) continue;
    if (!sip::parseUnsigned(sip::trimLws(h.value), UINT32_MAX, fallback)) return refuse(400, "Bad Expires");
    header_zero = fallback == 0;
  }

  routing::Registration registration;
  registration.user = std::string(user);
  registration.flow = flow;
  registration.call_id = std::string(request.callId());
  registration.cseq = request.cseq();
  registration.max_bindings = settings.max_contacts;
  std::size_t items = 0;
  bool star = false;
  for (const auto& h : request.headers()) {
    if (h.id != sip::Hdr::Contact) continue;
    std::vector<std::string_view> list;
    if (!sip::splitList(h.value, list)) return refuse(400, "Bad Contact");
    for (std::string_view item : list) {
      item = sip::trimLws(item);
      if (++items > kMaxContactsPerRequest) return refuse(403, "Too Many Contacts");
      if (item == "*") {
        star = true;
        continue;
      }
      sip::NameAddr contact;
      sip::Uri uri;
      if (!sip::parseNameAddr(item, contact) || !sip::parseUri(contact.uri, uri) || !uri.isSip() ||
          contact.uri.size() > kMaxContactUri || !sip::isCleanHeaderText(contact.uri))
        return refuse(400, "Bad Contact");
      std::uint64_t expires = fallback;
      bool has_param = false;
      std::string_view param = sip::paramValue(contact.params, "expires", &has_param);
      if (has_param && !sip::parseUnsigned(param, UINT32_MAX, expires))
        return refuse(400, "Bad Contact Expires");
      if (expires != 0 && expires < settings.min_expires_s)
        return refuse(423, "Interval Too Brief", fmt::format("Min-Expires: {}\r\n", settings.min_expires_s));
      expires = std::min<std::uint64_t>(expires, settings.max_expires_s);
      std::string target(sip::withoutUriHeaders(contact.uri));
      // The same contact twice: the last one counts.
      std::erase_if(registration.contacts, [&](const auto& c) { return c.uri == target; });
      registration.contacts.push_back({std::move(target), static_cast<base::Millis>(expires) * 1000});
    }
  }
  // RFC 3261 §10.3 step 6: "*" only alone and with Expires: 0.
  if (star) {
    if (items != 1 || !header_zero) return refuse(400, "Invalid Wildcard Contact");
    registration.remove_all = true;
  }

  RegistrarAnswer answer;
  answer.result = store.update(registration, now);
  switch (answer.result.outcome) {
    case routing::RegistrationResult::Outcome::OutOfOrder:
      return refuse(400, "Out of Order CSeq");
    case routing::RegistrationResult::Outcome::TooMany:
      return refuse(403, "Too Many Registrations");
    case routing::RegistrationResult::Outcome::Updated:
      break;
  }
  for (const routing::Binding& binding : answer.result.bindings) {
    fmt::format_to(std::back_inserter(answer.headers), "Contact: <{}>;expires={}\r\n", binding.contact,
                   (binding.expires - now + 999) / 1000);
  }
  fmt::format_to(std::back_inserter(answer.headers), "Date: {}\r\n", httpDate());
  return answer;
}

}  // namespace palisade::dialog
