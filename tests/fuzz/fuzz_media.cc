// Media anchoring's offer/answer on hostile input: a sequence of SDP bodies crossing a call's
// legs in any order and role (INVITE, 18x, 2xx, ACK, PRACK, UPDATE, either direction, verified
// or not). Every verdict must be a known answer, every body we write must parse and carry no ICE
// candidate, and when the call is gone every port pair must be back in the pool.
//
// Input: records separated by two NUL bytes; a record is one selector byte and a body.
//   selector bit 0: toward leg 1 (else leg 0); bits 1-3: what carries it (see kCarriers);
//   bit 4: its source is verified; bit 5: leg 0 is the PBX side (a call from the PBX).
// Sockets are bound on 127.0.0.10/11 but nothing is ever sent: no packet reaches the relay.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "core/base/clock.h"
#include "media/relay/media_session.h"
#include "media/sdp/sdp.h"
#include "tests/fuzz/sip_checks.h"

using palisade::fuzz::require;
namespace media = palisade::media;
namespace dialog = palisade::dialog;
namespace sip = palisade::sip;
namespace net = palisade::net;

namespace {

struct Carrier {
  sip::Method method;
  int status;
};
constexpr Carrier kCarriers[8] = {{sip::Method::Invite, 0},   {sip::Method::Invite, 183},
                                  {sip::Method::Invite, 200}, {sip::Method::Ack, 0},
                                  {sip::Method::Prack, 0},    {sip::Method::Update, 0},
                                  {sip::Method::Update, 200}, {sip::Method::Prack, 200}};

struct Relay {
  Relay() {
    auto cfg = std::make_shared<palisade::config::Config>();
    cfg->startup.public_side.address = "127.0.0.10";
    cfg->startup.pbx_side.address = "127.0.0.11";
    cfg->startup.media.first = 47000;
    cfg->startup.media.last = 47099;
    cfg->media.pbx_side.srtp = palisade::config::SrtpMode::Optional;
    worker = std::make_unique<media::WorkerMedia>(io, clock, shard, cfg->startup, 0, 1, cfg);
  }
  boost::asio::io_context io;
  palisade::base::SteadyClock clock;
  palisade::stats::Shard shard;
  std::unique_ptr<media::WorkerMedia> worker;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Relay relay;
  const std::size_t capacity = relay.worker->pool().capacity();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  {
    palisade::policy::RequestContext context;
    auto session = relay.worker->create(context);
    require(session != nullptr, "anchoring is on");
    std::size_t records = 0;
    while (!input.empty() && records++ < 16) {
      std::size_t end = input.find(std::string_view("\0\0", 2));
      std::string_view record = input.substr(0, end);
      input = end == std::string_view::npos ? std::string_view() : input.substr(end + 2);
      if (record.empty()) continue;
      const auto selector = static_cast<std::uint8_t>(record[0]);
      std::string body(record.substr(1));
      const Carrier& carrier = kCarriers[(selector >> 1) & 7];
      dialog::BodyCrossing where(selector & 1, carrier.method, carrier.status, true);
      const bool pbx_first = (selector & 0x20) != 0;
      const net::Side side0 = pbx_first ? net::Side::Pbx : net::Side::Public;
      const net::Side side1 = pbx_first ? net::Side::Public : net::Side::Pbx;
      where.to_side = where.to_leg == 0 ? side0 : side1;
      where.from_side = where.to_leg == 0 ? side1 : side0;
      where.source = boost::asio::ip::make_address(where.to_leg == 0 ? "127.0.0.3" : "127.0.0.2");
      where.source_verified = (selector & 0x10) != 0;
      std::string storage;
      dialog::BodyVerdict v =
          session->rewrite(where, body.empty() ? sip::Body{} : sip::Body{"application/sdp", body}, storage);
      require(v.status == 0 || v.status == 415 || v.status == 488 || v.status == 500 || v.status == 503,
              "a known refusal");
      if (v.status == 0 && !v.body.empty()) {
        auto written = media::sdp::parse(v.body.bytes);
        require(written.ok(), "what we write parses");
        // Codec attributes are copied as they are (a peer may write any text there); what names
        // an address, o= and every c=, is ours (or hold).
        const auto& sd = written.value();
        auto ours = [](std::string_view a) {
          return a == "127.0.0.10" || a == "127.0.0.11" || a == "0.0.0.0" || a == "::";
        };
        require(sd.origin_username == "palisade", "o= is ours");
        require(sd.connection && ours(sd.connection->address), "the session c= is ours");
        for (const auto& m : sd.media)
          require(!m.connection || ours(m.connection->address), "a media c= is ours");
      }
      relay.io.poll();
    }
  }
  relay.io.poll();
  require(relay.worker->pool().available() == capacity, "every port pair is back after the call");
  return 0;
}
