// Whole call flows through one worker's Engine over a fake network and a manual clock.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "core/dialog/engine.h"
#include "tests/support/fake_network.h"

namespace palisade {
namespace {

using testing::FakeNetwork;
using testing::ManualClock;
using testing::udpFlow;

class CallFlowTest : public ::testing::Test {
 protected:
  CallFlowTest() : metrics_(1) {
    auto loaded = config::defaultConfig();
    config_ = loaded.value();
    engine_ = std::make_unique<dialog::Engine>(0, 1, network_, clock_, metrics_.shard(0), config_, 42);
  }

  net::Flow caller() const { return udpFlow(net::Side::Public, "127.0.0.2", 5061); }
  net::Flow pbx() const { return udpFlow(net::Side::Pbx, "127.0.0.1", 5080); }

  void inject(const std::string& bytes, const net::Flow& flow) {
    auto message = sip::Message::parse(bytes, sip::Limits{}, true);
    ASSERT_TRUE(message != nullptr);
    engine_->onMessage(std::move(message), flow);
  }

  // Pops the next packet sent to `port` and scans it.
  std::unique_ptr<sip::Message> next(std::uint16_t port) {
    for (auto it = network_.sent.begin(); it != network_.sent.end(); ++it) {
      if (it->flow.remote.port != port) continue;
      auto message = sip::Message::parse(it->bytes, sip::Limits{}, true);
      last_bytes_ = it->bytes;
      network_.sent.erase(it);
      return message;
    }
    return nullptr;
  }

  void advance(base::Millis ms) {
    for (base::Millis step = 0; step < ms; step += 10) {
      clock_.advance(10);
      engine_->runTimers();
    }
  }

  std::string invite(const std::string& call_id, int cseq = 1) {
    std::string sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
    return fmt::format(
        "INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-a-{}-{};rport\r\n"
        "From: \"Alice\" <sip:alice@127.0.0.2:5061>;tag=alice-tag\r\n"
        "To: <sip:1000@127.0.0.1:5060>\r\n"
        "Call-ID: {}\r\nCSeq: {} INVITE\r\nContact: <sip:alice@127.0.0.2:5061>\r\nMax-Forwards: 70\r\n"
        "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}",
        call_id, cseq, call_id, cseq, sdp.size(), sdp);
  }

  // A response from the PBX to the request `req` it received.
  std::string pbxResponse(const sip::Message& req, int status, const std::string& reason, const std::string& tag) {
    std::string out = fmt::format("SIP/2.0 {} {}\r\n", status, reason);
    for (const auto& h : req.headers()) {
      if (h.id == sip::Hdr::Via || h.id == sip::Hdr::From || h.id == sip::Hdr::CallId || h.id == sip::Hdr::CSeq) {
        out.append(req.raw().substr(h.begin, h.end - h.begin));
      }
    }
    std::string to(req.find(sip::Hdr::To)->value);
    if (req.toTag().empty() && !tag.empty()) to += ";tag=" + tag;
    out += "To: " + to + "\r\nContact: <sip:pbx@127.0.0.1:5080>\r\nContent-Length: 0\r\n\r\n";
    return out;
  }

  std::string callerAck(const sip::Message& ok, const std::string& call_id) {
    return fmt::format(
        "ACK sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-ack-{}\r\n"
        "From: \"Alice\" <sip:alice@127.0.0.2:5061>;tag=alice-tag\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        call_id, ok.find(sip::Hdr::To)->value, call_id, ok.cseq());
  }

  std::string callerBye(const sip::Message& ok, const std::string& call_id, int cseq) {
    return fmt::format(
        "BYE sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-bye-{}-{}\r\n"
        "From: \"Alice\" <sip:alice@127.0.0.2:5061>;tag=alice-tag\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} BYE\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        call_id, cseq, ok.find(sip::Hdr::To)->value, call_id, cseq);
  }

  std::uint64_t counter(stats::Counter c) const { return metrics_.total(c); }

  ManualClock clock_;
  FakeNetwork network_;
  stats::Metrics metrics_;
  std::shared_ptr<const config::Config> config_;
  std::unique_ptr<dialog::Engine> engine_;
  std::string last_bytes_;
};

TEST_F(CallFlowTest, BasicCallWithTopologyHiding) {
  inject(invite("call-1"), caller());
  auto trying = next(5061);
  ASSERT_TRUE(trying);
  EXPECT_EQ(trying->statusCode(), 100);
  auto b_invite = next(5080);
  ASSERT_TRUE(b_invite);
  EXPECT_EQ(b_invite->method(), sip::Method::Invite);
  EXPECT_NE(b_invite->callId(), "call-1");
  EXPECT_EQ(b_invite->maxForwards(), 69);
  EXPECT_EQ(last_bytes_.find("127.0.0.2"), last_bytes_.find("c=IN IP4 127.0.0.2") == std::string::npos
                                               ? std::string::npos
                                               : last_bytes_.find("127.0.0.2"));
  std::string headers = last_bytes_.substr(0, last_bytes_.find("\r\n\r\n"));
  EXPECT_EQ(headers.find("127.0.0.2"), std::string::npos) << headers;
  EXPECT_EQ(headers.find("alice-tag"), std::string::npos);
  EXPECT_EQ(headers.find("5061"), std::string::npos);

  inject(pbxResponse(*b_invite, 180, "Ringing", "pbx-tag"), pbx());
  auto ringing = next(5061);
  ASSERT_TRUE(ringing);
  EXPECT_EQ(ringing->statusCode(), 180);
  EXPECT_FALSE(ringing->toTag().empty());
  EXPECT_NE(ringing->toTag(), "pbx-tag");

  inject(pbxResponse(*b_invite, 200, "OK", "pbx-tag"), pbx());
  auto ok = next(5061);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->statusCode(), 200);
  EXPECT_EQ(ok->toTag(), ringing->toTag());
  EXPECT_EQ(last_bytes_.find("5080"), std::string::npos) << last_bytes_;
  EXPECT_EQ(last_bytes_.find("pbx-tag"), std::string::npos);
  EXPECT_NE(last_bytes_.find("rport=5061"), std::string::npos) << last_bytes_;
  EXPECT_EQ(counter(stats::Counter::CallsAnswered), 1u);

  inject(callerAck(*ok, "call-1"), caller());
  auto b_ack = next(5080);
  ASSERT_TRUE(b_ack);
  EXPECT_EQ(b_ack->method(), sip::Method::Ack);
  EXPECT_EQ(b_ack->cseq(), b_invite->cseq());
  EXPECT_EQ(b_ack->toTag(), "pbx-tag");

  inject(callerBye(*ok, "call-1", 2), caller());
  auto b_bye = next(5080);
  ASSERT_TRUE(b_bye);
  EXPECT_EQ(b_bye->method(), sip::Method::Bye);
  EXPECT_EQ(b_bye->callId(), b_invite->callId());
  inject(pbxResponse(*b_bye, 200, "OK", ""), pbx());
  auto bye_ok = next(5061);
  ASSERT_TRUE(bye_ok);
  EXPECT_EQ(bye_ok->statusCode(), 200);
  EXPECT_EQ(bye_ok->cseqMethod(), sip::Method::Bye);
  EXPECT_EQ(engine_->activeCalls(), 0u);
}

TEST_F(CallFlowTest, InviteTimesOutWithTimerB) {
  inject(invite("call-timeout"), caller());
  ASSERT_TRUE(next(5061));  // 100
  ASSERT_TRUE(next(5080));  // INVITE
  advance(600);
  auto retransmission = next(5080);
  ASSERT_TRUE(retransmission);
  EXPECT_EQ(retransmission->method(), sip::Method::Invite);
  advance(64 * 500);
  std::unique_ptr<sip::Message> final;
  while (auto m = next(5061)) final = std::move(m);
  ASSERT_TRUE(final);
  EXPECT_EQ(final->statusCode(), 408);
  EXPECT_EQ(counter(stats::Counter::CallsTimedOut), 1u);
  EXPECT_EQ(engine_->activeCalls(), 0u);
}

}  // namespace
}  // namespace palisade
