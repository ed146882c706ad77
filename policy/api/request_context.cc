#include "policy/api/request_context.h"

namespace palisade::policy {

const char* peerKindName(PeerKind kind) {
  switch (kind) {
    case PeerKind::Pbx:
      return "pbx";
    case PeerKind::Trunk:
      return "trunk";
    case PeerKind::User:
      return "user";
    case PeerKind::Unknown:
      break;
  }
  return "unknown";
}

}  // namespace palisade::policy
