// SRTP cost per packet with the OpenSSL build of libsrtp2: protect and unprotect of one 20 ms
// G.711 packet (12-byte header, 160-byte payload), round-robin over 1 to 6,000 live session
// pairs (an outbound and an inbound srtp_t each, as one direction of a relayed leg). Debian's
// NSS build grows with the number of sessions (DESIGN.md, media); this one must stay flat.
// AES_CM_128_HMAC_SHA1_80 is what phones offer; AEAD_AES_128_GCM is there for comparison.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "media/srtp/srtp_session.h"

namespace {

using palisade::media::srtp::KeyMaterial;
using palisade::media::srtp::randomKey;
using palisade::media::srtp::Session;
using palisade::media::srtp::Suite;
using palisade::media::srtp::suiteName;

struct Leg {
  std::unique_ptr<Session> out;
  std::unique_ptr<Session> in;
  std::uint32_t ssrc = 0;
  std::uint16_t seq = 0;
};

void put32(std::uint8_t* at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
}

void protectUnprotect(benchmark::State& state) {
  const auto suite = static_cast<Suite>(state.range(0));
  const auto pairs = static_cast<std::size_t>(state.range(1));
  std::vector<Leg> legs(pairs);
  for (std::size_t i = 0; i < pairs; ++i) {
    KeyMaterial key;
    if (!randomKey(suite, key)) {
      state.SkipWithError("RAND_bytes failed");
      return;
    }
    legs[i].out = Session::create(Session::Direction::Outbound, key);
    legs[i].in = Session::create(Session::Direction::Inbound, key);
    legs[i].ssrc = 0x10000000u + static_cast<std::uint32_t>(i);
    if (!legs[i].out || !legs[i].in) {
      state.SkipWithError("srtp_create failed");
      return;
    }
  }
  alignas(8) std::array<std::uint8_t, 172 + Session::kMaxTrailer> packet{};
  packet[0] = 0x80;  // V=2, PT 0 (PCMU)
  for (std::size_t i = 12; i < 172; ++i) packet[i] = static_cast<std::uint8_t>(i);

  std::size_t next = 0;
  for (auto _ : state) {
    Leg& leg = legs[next];
    next = next + 1 == pairs ? 0 : next + 1;
    ++leg.seq;
    packet[2] = static_cast<std::uint8_t>(leg.seq >> 8);
    packet[3] = static_cast<std::uint8_t>(leg.seq);
    put32(&packet[4], 160u * leg.seq);
    put32(&packet[8], leg.ssrc);
    std::size_t len = 172;
    if (!leg.out->protectRtp(packet.data(), len, packet.size()) ||
        !leg.in->unprotectRtp(packet.data(), len)) {
      state.SkipWithError("protect or unprotect failed");
      return;
    }
    benchmark::DoNotOptimize(packet.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["live_sessions"] = static_cast<double>(2 * pairs);
  state.SetLabel(std::string(suiteName(suite)));
}

}  // namespace

// Time per iteration is nanoseconds per packet, protect plus unprotect.
constexpr auto kCm80 = static_cast<std::int64_t>(Suite::AesCm128HmacSha1_80);
constexpr auto kGcm128 = static_cast<std::int64_t>(Suite::AeadAes128Gcm);
BENCHMARK(protectUnprotect)
    ->ArgNames({"suite", "pairs"})
    ->Args({kCm80, 1})
    ->Args({kCm80, 250})
    ->Args({kCm80, 500})
    ->Args({kCm80, 3000})
    ->Args({kCm80, 6000})
    ->Args({kGcm128, 1})
    ->Args({kGcm128, 6000});
