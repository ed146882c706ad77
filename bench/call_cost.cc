// CPU cost of one call on the per-message path, without sockets: every message of a call
// (the SIPp benchmark's INVITE, 180, 200, ACK, BYE, 200: 6 in, 7 out) goes through the packet
// filter, the dispatcher's scan and flood screen, the policy stages and the engine of one
// worker, and what the engine sends is serialized as for the wire. Finished transactions are
// freed as time passes (part of the cost).
//
//   build/bench/call_cost [CALLS] [MODE]                wall time per call
//   valgrind --tool=callgrind --collect-atstart=no build/bench/call_cost 2000 [MODE]
//                                                       instructions per call, stable across runs
//
// MODE: "default" (the shipped policy stages: digest, toll-fraud destination rules, admission),
// "no-fraud" (the chain without the toll-fraud stage: the baseline it is measured against) or
// "fraud" (toll fraud with everything on: a 50,000-prefix rate table, the carrier's per-minute,
// international-per-hour and spend limits in the fraud store, anomaly detection, a call record
// per call). Every call dials +442079460958 (international, rated) from the carrier.
//
// Under callgrind only the work of Palisade's own path is counted: the script that plays the
// caller and the PBX (building and reading their messages) runs with collection off.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <random>

#include <unistd.h>
#include <memory>
#include <string>

#include <fmt/format.h>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define COLLECT_ON() CALLGRIND_TOGGLE_COLLECT
#define COLLECT_OFF() CALLGRIND_TOGGLE_COLLECT
#else
#define COLLECT_ON()
#define COLLECT_OFF()
#endif

#include "core/base/log.h"
#include "core/config/config.h"
#include "core/dialog/dispatcher.h"
#include "core/dialog/engine.h"
#include "core/event/worker.h"
#include "core/routing/local_location_store.h"
#include "policy/api/shared_counters.h"
#include "policy/auth/digest_stage.h"
#include "policy/bans/local_store.h"
#include "policy/flood/admission_stage.h"
#include "policy/fraud/fraud_stage.h"
#include "policy/fraud/local_fraud_store.h"
#include "policy/policy_chain.h"
#include "policy/snapshot.h"

namespace {

using namespace palisade;  // NOLINT: a benchmark's brevity

class ManualClock final : public base::Clock {
 public:
  base::Millis now() const override { return now_; }
  void advance(base::Millis ms) { now_ += ms; }

 private:
  base::Millis now_ = 1'000'000;
};

struct Sent {
  net::Flow flow;
  std::string bytes;
};

class QueueNetwork final : public net::Network {
 public:
  void send(const net::Flow& flow, std::string&& bytes) override { sent.push_back({flow, std::move(bytes)}); }
  std::deque<Sent> sent;
};

net::Flow udp(net::Side side, const char* address, std::uint16_t port) {
  net::Flow f;
  f.side = side;
  f.transport = net::Transport::Udp;
  f.remote = net::Endpoint{boost::asio::ip::make_address(address), port};
  return f;
}

std::string echoHeaders(const sip::Message& m, std::string_view to_tag) {
  std::string out;
  for (const auto& h : m.headers()) {
    if (h.id == sip::Hdr::Via || h.id == sip::Hdr::From || h.id == sip::Hdr::CallId ||
        h.id == sip::Hdr::CSeq) {
      out.append(m.raw().substr(h.begin, h.end - h.begin));
    } else if (h.id == sip::Hdr::To) {
      out.append("To: ").append(h.value);
      if (!to_tag.empty() && m.toTag().empty()) out.append(";tag=").append(to_tag);
      out.append("\r\n");
    }
  }
  return out;
}

constexpr std::string_view kSdp =
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

// The scripted caller (127.0.0.2) is a trunk: the carrier path that the SIPp benchmark measures.
// Everything else is the shipped default.
constexpr const char* kConfig = R"([[trunks]]
name = "carrier"
addresses = ["127.0.0.2"]
host = "127.0.0.2"
port = 5061
)";

enum class Mode { Default, NoFraud, Fraud };

// A rate table of `prefixes` distinct prefixes (3 to 5 digits: +201 ... +50199), +44 among them.
std::string writeRateTable(int prefixes) {
  std::string path = fmt::format("/tmp/palisade-call-cost-rates-{}.txt", ::getpid());
  std::ofstream out(path);
  std::mt19937 random(42);
  out << "+44 0.0120 United Kingdom\n";
  for (int i = 1; i < prefixes; ++i) out << fmt::format("+{} 0.{:04d}\n", 200 + i, random() % 10000);
  return path;
}

std::string configFor(Mode mode, const std::string& rates) {
  std::string text = kConfig;
  if (mode != Mode::Fraud) return text;
  return text + fmt::format(R"(max_calls_per_minute = 1000000
max_international_per_hour = 1000000
max_spend_24h = 1000000.0
[fraud]
rate_file = "{}"
)",
                            rates);
}

class RecordSink final : public dialog::CallRecordSink {
 public:
  void write(dialog::CallRecord&& record) override {
    records_.push_back(std::move(record));
    if (records_.size() > 1000) records_.clear();
  }

 private:
  std::vector<dialog::CallRecord> records_;
};

class Bench {
 public:
  Bench(Mode mode, const std::string& rates)
      : config_(config::parseConfig(configFor(mode, rates), "call_cost").value()),
        metrics_(1),
        chain_(policy::compileSnapshot(*config_, rules_, *auth_, *store_, location_, &shared_,
                                       mode == Mode::Fraud ? &fraud_store_ : nullptr)
                   .value(),
               clock_),
        worker_(0, 64),
        engine_(0, network_, clock_, metrics_.shard(0), config_, shared_),
        dispatcher_(0, metrics_.shard(0), sip::Limits{}) {
    if (mode == Mode::NoFraud) {
      chain_.addStage(std::make_unique<policy::auth::DigestStage>());
      chain_.addStage(std::make_unique<policy::flood::AdmissionStage>());
    } else {
      policy::installDefaultStages(chain_);
    }
    if (mode == Mode::Fraud) engine_.setRecordSink(&records_);
    engine_.setFilter(&chain_);
    dispatcher_.setOwners({{&worker_, &engine_}});
    dispatcher_.setFilter(&chain_);  // the flood screen after the scan, as in the daemon
  }

  // One message in, as a transport hands it up.
  void receive(const net::Flow& from, std::string bytes) {
    COLLECT_ON();
    net::Flow flow = from;
    if (chain_.admit(flow, bytes)) dispatcher_.onPacket(flow, std::move(bytes), true);
    COLLECT_OFF();
  }

  std::unique_ptr<sip::Message> take(std::uint16_t port) {
    for (auto it = network_.sent.begin(); it != network_.sent.end(); ++it) {
      if (it->flow.remote.port != port) continue;
      auto m = sip::Message::parse(std::move(it->bytes), sip::Limits{}, true);
      network_.sent.erase(it);
      return m;
    }
    return nullptr;
  }

  bool call(int n) {
    const net::Flow caller = udp(net::Side::Public, "127.0.0.2", 5061);
    net::Flow pbx = udp(net::Side::Pbx, "127.0.0.1", 5080);
    std::string call_id = fmt::format("{}-12345@127.0.0.2", n);
    receive(
        caller,
        fmt::format("INVITE sip:+442079460958@127.0.0.1:5060 SIP/2.0\r\n"
                    "Via: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-12345-{0}-0;rport\r\n"
                    "From: sipp <sip:sipp@127.0.0.2:5061>;tag={0}SIPpTag001\r\n"
                    "To: 1000 <sip:1000@127.0.0.1:5060>\r\nCall-ID: {1}\r\nCSeq: 1 INVITE\r\n"
                    "Contact: sip:sipp@127.0.0.2:5061\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\n"
                    "Content-Type: application/sdp\r\nContent-Length: {2}\r\n\r\n{3}",
                    n, call_id, kSdp.size(), kSdp));
    auto trying = take(5061);
    auto invite = take(5080);
    if (!trying || !invite) return false;
    std::string contact = "Contact: <sip:pbx@127.0.0.1:5080>\r\n";
    receive(pbx, "SIP/2.0 180 Ringing\r\n" + echoHeaders(*invite, "pbx-tag") + contact +
                     "Content-Length: 0\r\n\r\n");
    receive(pbx, "SIP/2.0 200 OK\r\n" + echoHeaders(*invite, "pbx-tag") + contact +
                     fmt::format("Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}", kSdp.size(),
                                 kSdp));
    auto ringing = take(5061);
    auto ok = take(5061);
    if (!ringing || !ok || ok->statusCode() != 200) return false;
    sip::NameAddr target;
    if (!ok->firstContact(target)) return false;
    std::string dialog = fmt::format(
        "From: sipp <sip:sipp@127.0.0.2:5061>;tag={}SIPpTag001\r\nTo: 1000 "
        "<sip:1000@127.0.0.1:5060>;tag={}\r\n"
        "Call-ID: {}\r\n",
        n, ok->toTag(), call_id);
    receive(caller,
            fmt::format("ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-12345-{}-5\r\n{}"
                        "CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                        target.uri, n, dialog));
    receive(caller,
            fmt::format("BYE {} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-12345-{}-7\r\n{}"
                        "CSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                        target.uri, n, dialog));
    auto ack = take(5080);
    auto bye = take(5080);
    if (!ack || !bye || bye->method() != sip::Method::Bye) return false;
    receive(pbx, "SIP/2.0 200 OK\r\n" + echoHeaders(*bye, {}) + "Content-Length: 0\r\n\r\n");
    auto bye_ok = take(5061);
    return bye_ok && bye_ok->statusCode() == 200;
  }

  // Lets 40 s pass: the finished calls' transactions are freed (Timers J, K, D, L, M).
  void expire() {
    clock_.advance(40'000);
    COLLECT_ON();
    engine_.runTimers();
    COLLECT_OFF();
  }

  std::size_t transactions() const { return engine_.transactionCount(); }

 private:
  std::shared_ptr<const config::Config> config_;
  stats::Metrics metrics_;
  policy::RuleRegistry rules_;
  std::unique_ptr<policy::AuthState> auth_ = std::make_unique<policy::AuthState>();
  std::unique_ptr<policy::bans::LocalStateStore> store_ = std::make_unique<policy::bans::LocalStateStore>();
  routing::LocalLocationStore location_;
  policy::fraud::LocalFraudStore fraud_store_;
  RecordSink records_;
  ManualClock clock_;
  policy::PolicyChain chain_;
  policy::SharedCounters shared_;
  QueueNetwork network_;
  event::Worker worker_;  // never started: every message here is owned by worker 0
  dialog::Engine engine_;
  dialog::Dispatcher dispatcher_;
};

}  // namespace

int main(int argc, char** argv) {
  int calls = argc > 1 ? std::atoi(argv[1]) : 20000;
  if (calls <= 0) calls = 20000;
  Mode mode = Mode::Default;
  if (argc > 2 && std::strcmp(argv[2], "no-fraud") == 0) mode = Mode::NoFraud;
  if (argc > 2 && std::strcmp(argv[2], "fraud") == 0) mode = Mode::Fraud;
  // Anomaly detection speaks up at this rate of international calls: not part of the measure.
  palisade::base::setLogLevel(palisade::base::LogLevel::Error);
  std::string rates = mode == Mode::Fraud ? writeRateTable(50000) : std::string();
  Bench bench(mode, rates);
  if (!rates.empty()) std::remove(rates.c_str());
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) {
    if (!bench.call(i)) {
      std::fprintf(stderr, "call %d did not complete\n", i);
      return 1;
    }
    if ((i + 1) % 1000 == 0) bench.expire();
  }
  bench.expire();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%d calls, %.2f us per call (wall, including the scripted peers), %zu transactions left\n",
              calls, seconds * 1e6 / calls, bench.transactions());
  return bench.transactions() == 0 ? 0 : 1;
}
