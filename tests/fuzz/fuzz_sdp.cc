// The SDP parser and writer on hostile input: every parsed field must be a view into the
// body, and whatever the writer makes of a parsed description must parse again, name only
// Palisade's address and carry no key or candidate of the sender's.
//
// Input: a message body, as it would follow the header section of an INVITE.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "media/sdp/sdp.h"
#include "tests/fuzz/sip_checks.h"

using palisade::fuzz::require;
using palisade::fuzz::within;
namespace sdp = palisade::media::sdp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  auto parsed = sdp::parse(body);
  if (!parsed.ok()) return 0;
  const sdp::SessionDescription& sd = parsed.value();
  std::string_view whole(body);
  require(within(sd.origin_username, whole) && within(sd.session_id, whole), "origin fields are views");
  for (auto line : sd.lines) require(within(line, whole) && line.size() >= 2, "session lines are views");
  sdp::Plan plan;
  plan.address = "203.0.113.77";
  plan.session_id = 1;
  plan.session_version = 2;
  for (std::size_t i = 0; i < sd.media.size(); ++i) {
    const sdp::MediaSection& m = sd.media[i];
    require(within(m.kind, whole) && within(m.proto, whole) && within(m.formats, whole),
            "m= fields are views");
    for (auto line : m.lines) require(within(line, whole) && line.size() >= 2, "media lines are views");
    for (auto c : m.crypto) require(within(c, whole), "crypto values are views");
    require(m.rejected() || sd.connectionFor(i) != nullptr, "a live section has a connection");
    sdp::MediaPlan p;
    p.reject = m.rejected() || i % 3 == 2;
    p.port = static_cast<std::uint16_t>(20000 + 2 * i);
    p.rtcp_port = static_cast<std::uint16_t>(p.port + 1);
    p.rtcp_mux = m.rtcp_mux;
    p.proto = "RTP/AVP";
    plan.media.push_back(p);
  }
  std::string out = sdp::write(sd, plan);
  auto again = sdp::parse(out);
  require(again.ok(), "what we write parses");
  require(again.value().media.size() == sd.media.size(), "every section is written");
  auto forbidden = [](std::string_view line) {
    if (!line.starts_with("a=")) return false;
    std::string_view name =
        line.substr(2, line.find(':') == std::string_view::npos ? line.npos : line.find(':') - 2);
    return name == "candidate" || name == "crypto" || name == "fingerprint" || name.starts_with("ice-");
  };
  for (auto line : again.value().lines) require(!forbidden(line), "no candidate, key or fingerprint crosses");
  for (const auto& m : again.value().media) {
    for (auto line : m.lines) require(!forbidden(line), "no candidate, key or fingerprint crosses");
  }
  for (std::size_t i = 0; i < again.value().media.size(); ++i) {
    const auto* c = again.value().connectionFor(i);
    require(c == nullptr || c->address == "203.0.113.77" || c->isHold(), "only our address is named");
  }
  return 0;
}
