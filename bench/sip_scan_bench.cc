// Cost of scanning one typical INVITE and one 200 OK (the per-message work every worker does
// before the hand-off). Run: build/bench/micro_bench
#include <benchmark/benchmark.h>

#include <string>

#include "core/sip/message.h"

namespace {

const std::string kInvite =
    "INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-12345-1-0;rport\r\n"
    "From: sipp <sip:sipp@127.0.0.2:5061>;tag=12345SIPpTag001\r\n"
    "To: 1000 <sip:1000@127.0.0.1:5060>\r\n"
    "Call-ID: 1-12345@127.0.0.2\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: sip:sipp@127.0.0.2:5061\r\n"
    "Max-Forwards: 70\r\n"
    "Subject: Performance Test\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 129\r\n\r\n"
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

void scanInvite(benchmark::State& state) {
  palisade::sip::Limits limits;
  for (auto _ : state) {
    auto message = palisade::sip::Message::parse(kInvite, limits, true);
    benchmark::DoNotOptimize(message->callId());
  }
}
BENCHMARK(scanInvite);

}  // namespace
