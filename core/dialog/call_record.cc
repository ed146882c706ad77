#include "core/dialog/call_record.h"

#include "core/sip/headers.h"

namespace palisade::dialog {

void describeAttempt(const sip::Message& invite, const net::Flow& flow, const policy::RequestContext& context,
                     CallRecord& record) {
  // The caller's text, cut short: a record must not hold 8 kB header lines by the thousand.
  constexpr std::size_t kMaxText = 256;
  record.call_id = std::string(invite.callId().substr(0, kMaxText));
  sip::Uri uri;
  if (sip::parseUri(invite.from().uri, uri)) record.from = std::string(uri.user.substr(0, kMaxText));
  if (sip::parseUri(invite.requestUri(), uri)) record.to = std::string(uri.user.substr(0, kMaxText));
  record.destination = context.destination;
  record.destination_class = context.destination_class;
  record.rule = context.fraud_rule;
  record.source_address = flow.remote.toString();
  for (const char* c = net::transportName(flow.transport); *c != '\0'; ++c)
    record.transport.push_back(static_cast<char>(*c - 'A' + 'a'));
  switch (context.peer_kind) {
    case policy::PeerKind::User:
      record.source = "user:" + context.identity;
      record.auth = "digest";
      break;
    case policy::PeerKind::Trunk:
      record.source = "trunk:" + context.peer_name;
      record.auth = flow.transport == net::Transport::Tls ? "trunk-tls" : "trunk-address";
      break;
    case policy::PeerKind::Pbx:
      record.source = "pbx";
      record.auth = "pbx-address";
      break;
    case policy::PeerKind::Unknown:
      record.source = "internet";
      record.auth = "none";
      break;
  }
}

}  // namespace palisade::dialog
