// One UDP datagram: Message::parse as the UDP listener calls it, then every view on every
// header field (see sip_checks.h), under the default limits and under tight ones.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/sip/message.h"
#include "tests/fuzz/sip_checks.h"

using palisade::sip::Limits;
using palisade::sip::Message;

namespace {

Limits tightLimits() {
  Limits limits;
  limits.max_message_bytes = 1024;
  limits.max_headers = 8;
  limits.max_line_bytes = 256;
  return limits;
}

void scan(const std::string& bytes, const Limits& limits, bool datagram) {
  auto message = Message::parse(bytes, limits, datagram);
  if (!message) return;
  palisade::fuzz::require(message->raw() == bytes, "the received bytes are kept unchanged");
  palisade::fuzz::exerciseMessage(*message);
  if (bytes.size() > limits.max_message_bytes) {
    palisade::fuzz::require(!message->ok(), "oversized message refused");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  scan(bytes, Limits{}, /*datagram=*/true);
  scan(bytes, tightLimits(), /*datagram=*/true);
  scan(bytes, Limits{}, /*datagram=*/false);  // as a message cut from a stream
  return 0;
}
