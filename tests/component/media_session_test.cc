// MediaSession on real loopback sockets: offer/answer across both legs (initial, 18x then 2xx,
// re-INVITE hold and resume, re-key, late offer in 2xx/ACK), the SRTP table per side policy,
// 488/503/415 refusals, latching and the pool returning to full.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "media/relay/media_session.h"
#include "media/sdp/sdp.h"
#include "media/srtp/crypto_suite.h"
#include "media/srtp/srtp_session.h"
#include "tests/support/fake_network.h"

namespace palisade {
namespace {

using dialog::BodyCrossing;
using dialog::BodyVerdict;
using media::MediaSession;
using media::WorkerMedia;
using sip::Method;

constexpr const char* kCallerIp = "127.0.0.2";
constexpr const char* kPbxIp = "127.0.0.3";
constexpr const char* kPublicMedia = "127.0.0.10";
constexpr const char* kPbxMedia = "127.0.0.11";

// A UDP socket of a test peer on loopback.
class Peer {
 public:
  explicit Peer(const char* ip) : ip_(ip) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, ip, &a.sin_addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Peer() { ::close(fd_); }
  std::uint16_t port() const { return port_; }
  const char* ip() const { return ip_; }
  void sendTo(const std::string& ip, std::uint16_t port, const std::uint8_t* data, std::size_t len) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    ::sendto(fd_, data, len, 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  // One datagram, running the relay's io_context meanwhile; nullopt after `ms`.
  std::optional<std::vector<std::uint8_t>> receive(boost::asio::io_context& io, int ms = 300) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    std::array<std::uint8_t, 2048> buffer{};
    while (std::chrono::steady_clock::now() < deadline) {
      io.poll();
      ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n >= 0) return std::vector<std::uint8_t>(buffer.begin(), buffer.begin() + n);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return std::nullopt;
  }

 private:
  const char* ip_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

std::vector<std::uint8_t> rtpPacket(std::uint16_t seq, std::uint32_t ssrc, std::uint8_t fill) {
  std::vector<std::uint8_t> p(12 + 160, fill);
  p[0] = 0x80;
  p[1] = 0;
  p[2] = static_cast<std::uint8_t>(seq >> 8);
  p[3] = static_cast<std::uint8_t>(seq);
  for (int i = 0; i < 4; ++i) p[4 + i] = 0;
  for (int i = 0; i < 4; ++i) p[8 + i] = static_cast<std::uint8_t>(ssrc >> (24 - 8 * i));
  return p;
}

std::string sdpOf(const char* ip, std::uint16_t port, std::string_view proto = "RTP/AVP",
                  std::string_view extra = "", int version = 1) {
  return fmt::format(
      "v=0\r\no=- 42 {} IN IP4 {}\r\ns=-\r\nc=IN IP4 {}\r\nt=0 0\r\nm=audio {} {} 0 8\r\n"
      "a=rtpmap:0 PCMU/8000\r\na=candidate:1 1 UDP 1 {} {} typ host\r\n{}",
      version, ip, ip, port, proto, ip, port, extra);
}

std::string cryptoOf(std::uint32_t tag, const media::srtp::KeyMaterial& key) {
  return fmt::format("a=crypto:{} {} {}\r\n", tag, media::srtp::suiteName(key.suite),
                     media::srtp::inlineKeyParams(key));
}

struct Written {
  std::string text;
  std::string address;
  std::uint16_t port = 0;
  std::string proto;
  std::vector<std::string> crypto;
};

Written inspect(const BodyVerdict& v) {
  Written w;
  w.text = std::string(v.body.bytes);
  auto parsed = media::sdp::parse(w.text);
  EXPECT_TRUE(parsed.ok()) << w.text;
  if (!parsed.ok() || parsed.value().media.empty()) return w;
  const auto& sd = parsed.value();
  if (const auto* c = sd.connectionFor(0)) w.address = std::string(c->address);
  w.port = sd.media[0].port;
  w.proto = std::string(sd.media[0].proto);
  for (auto c : sd.media[0].crypto) w.crypto.emplace_back(c);
  return w;
}

// Aligned packet buffers for the test's own SRTP endpoints.
struct alignas(16) PacketBuffer {
  std::array<std::uint8_t, 2048> bytes{};
};

class MediaSessionTest : public ::testing::Test {
 protected:
  void start(std::uint16_t first = 41000, std::uint16_t last = 41099,
             void (*adjust)(config::Config&) = nullptr) {
    auto cfg = std::make_shared<config::Config>();
    cfg->startup.public_side.address = "127.0.0.10";
    cfg->startup.pbx_side.address = "127.0.0.11";
    cfg->startup.media.first = first;
    cfg->startup.media.last = last;
    if (adjust != nullptr) adjust(*cfg);
    media_ = std::make_unique<WorkerMedia>(io_, clock_, shard_, cfg->startup, 0, 1, cfg);
  }
  std::unique_ptr<MediaSession> session() {
    policy::RequestContext context;
    return std::unique_ptr<MediaSession>(static_cast<MediaSession*>(media_->create(context).release()));
  }
  // A body crossing from the caller (leg 0, public) toward the PBX (leg 1), or back.
  static BodyCrossing toPbx(Method method = Method::Invite, int status = 0) {
    BodyCrossing where(1, method, status, true);
    where.from_side = net::Side::Public;
    where.to_side = net::Side::Pbx;
    where.source = boost::asio::ip::make_address(kCallerIp);
    where.source_verified = true;  // a configured trunk, or a source that showed it receives
    return where;
  }
  static BodyCrossing toCaller(Method method = Method::Invite, int status = 200) {
    BodyCrossing where(0, method, status, true);
    where.from_side = net::Side::Pbx;
    where.to_side = net::Side::Public;
    where.source = boost::asio::ip::make_address(kPbxIp);
    where.source_verified = true;  // the PBX is a configured peer
    return where;
  }
  static sip::Body sdpBody(const std::string& text) { return sip::Body{"application/sdp", text}; }
  std::uint64_t counter(stats::Counter c) { return shard_.counters[static_cast<std::size_t>(c)].load(); }
  std::int64_t freePairs() {
    return shard_.gauges[static_cast<std::size_t>(stats::Gauge::MediaPortPairsFree)].load();
  }

  // Sets up a plain call caller <-> PBX; returns what each side was given.
  std::pair<Written, Written> plainCall(MediaSession& s, Peer& caller, Peer& pbx) {
    std::string offer_in = sdpOf(kCallerIp, caller.port());
    std::string out1;
    Written to_pbx = inspect(s.rewrite(toPbx(), sdpBody(offer_in), out1));
    std::string answer_in = sdpOf(kPbxIp, pbx.port());
    std::string out2;
    Written to_caller = inspect(s.rewrite(toCaller(), sdpBody(answer_in), out2));
    return {to_pbx, to_caller};
  }

  boost::asio::io_context io_;
  palisade::testing::ManualClock clock_;
  stats::Shard shard_;
  std::unique_ptr<WorkerMedia> media_;
};

TEST_F(MediaSessionTest, PlainCallRewritesBothSidesAndRelaysBothWays) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp);
  auto [to_pbx, to_caller] = plainCall(*s, caller, pbx);
  EXPECT_EQ(to_pbx.address, kPbxMedia);
  EXPECT_EQ(to_caller.address, kPublicMedia);
  EXPECT_EQ(to_pbx.proto, "RTP/AVP");
  EXPECT_GE(to_pbx.port, 41000);
  EXPECT_LE(to_pbx.port, 41099);
  EXPECT_EQ(to_pbx.port % 2, 0);
  // Two media addresses: one port number serves both legs.
  EXPECT_EQ(to_pbx.port, to_caller.port);
  EXPECT_EQ(to_pbx.text.find(kCallerIp), std::string::npos) << to_pbx.text;
  EXPECT_EQ(to_caller.text.find(kPbxIp), std::string::npos) << to_caller.text;
  EXPECT_EQ(to_pbx.text.find("candidate"), std::string::npos);
  EXPECT_NE(to_pbx.text.find(" RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n"), std::string::npos)
      << "codecs cross";

  auto up = rtpPacket(1, 0x1234, 0xAA);
  caller.sendTo(kPublicMedia, to_caller.port, up.data(), up.size());
  auto got = pbx.receive(io_);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, up);
  auto down = rtpPacket(7, 0x9999, 0x55);
  pbx.sendTo(kPbxMedia, to_pbx.port, down.data(), down.size());
  got = caller.receive(io_);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, down);
  // RTCP on the odd port, relayed to the peer's RTCP port (RTP port + 1).
  Peer pbx_rtcp_listener(kPbxIp);  // (not the peer's RTCP port: nothing must arrive there)
  std::vector<std::uint8_t> rtcp = {0x80, 200, 0, 6, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 0,
                                    0,    0,   0, 0, 0, 0, 0,    0,    0, 0, 0, 0, 0, 0};
  caller.sendTo(kPublicMedia, static_cast<std::uint16_t>(to_caller.port + 1), rtcp.data(), rtcp.size());
  EXPECT_FALSE(pbx_rtcp_listener.receive(io_, 100));
  EXPECT_EQ(counter(stats::Counter::MediaPacketsRelayed), 3u);
  EXPECT_EQ(s->stream(0)->leg(0).counters.packets, 2u);  // RTP + RTCP from the caller
  EXPECT_EQ(s->stream(0)->leg(1).counters.packets, 1u);
}

TEST_F(MediaSessionTest, SpoofedSourcesAreDroppedAndTheLatchHolds) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp);
  auto [to_pbx, to_caller] = plainCall(*s, caller, pbx);
  Peer stranger("127.0.0.6"), caller_other_port(kCallerIp), pbx_other_port(kPbxIp);
  auto p = rtpPacket(1, 1, 1);
  // Public side (NAT latching): a stranger's address is neither the SDP's nor the signalling's.
  stranger.sendTo(kPublicMedia, to_caller.port, p.data(), p.size());
  EXPECT_FALSE(pbx.receive(io_, 100));
  // The caller's first packet latches its source; later ones from another port are refused.
  caller.sendTo(kPublicMedia, to_caller.port, p.data(), p.size());
  EXPECT_TRUE(pbx.receive(io_));
  caller_other_port.sendTo(kPublicMedia, to_caller.port, p.data(), p.size());
  EXPECT_FALSE(pbx.receive(io_, 100));
  // PBX side (strict): only the signalled address and port.
  pbx_other_port.sendTo(kPbxMedia, to_pbx.port, p.data(), p.size());
  EXPECT_FALSE(caller.receive(io_, 100));
  EXPECT_EQ(counter(stats::Counter::MediaDroppedForeign), 3u);
  // Not RTP at all.
  std::uint8_t junk[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  caller.sendTo(kPublicMedia, to_caller.port, junk, sizeof junk);
  EXPECT_FALSE(pbx.receive(io_, 100));
  EXPECT_EQ(counter(stats::Counter::MediaDroppedUnready), 1u);
}

TEST_F(MediaSessionTest, NothingGoesToAnUnverifiedCallerUntilItSendsMedia) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp);
  // A UDP INVITE whose source never showed it receives there: maybe spoofed, naming a victim.
  BodyCrossing spoofable = toPbx();
  spoofable.source_verified = false;
  std::string out1, out2;
  Written to_pbx = inspect(s->rewrite(spoofable, sdpBody(sdpOf(kCallerIp, caller.port())), out1));
  Written to_caller = inspect(s->rewrite(toCaller(), sdpBody(sdpOf(kPbxIp, pbx.port())), out2));
  auto ringback = rtpPacket(1, 2, 2);
  pbx.sendTo(kPbxMedia, to_pbx.port, ringback.data(), ringback.size());
  EXPECT_FALSE(caller.receive(io_, 100)) << "no media toward an address only the SDP names";
  // Once the caller's own media arrives from its SIP address, it is latched and gets media.
  auto voice = rtpPacket(1, 1, 1);
  caller.sendTo(kPublicMedia, to_caller.port, voice.data(), voice.size());
  EXPECT_TRUE(pbx.receive(io_));
  pbx.sendTo(kPbxMedia, to_pbx.port, ringback.data(), ringback.size());
  EXPECT_TRUE(caller.receive(io_));
}

TEST_F(MediaSessionTest, NatLatchIsWonBackByTheSignalledPort) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp), spoofer(kCallerIp);
  auto [to_pbx, to_caller] = plainCall(*s, caller, pbx);
  auto p = rtpPacket(1, 1, 1);
  // A packet from the caller's IP but another port gets there first and is latched...
  spoofer.sendTo(kPublicMedia, to_caller.port, p.data(), p.size());
  EXPECT_TRUE(pbx.receive(io_));
  // ...but the port the caller's SDP names takes the stream back, and the spoofer is out.
  caller.sendTo(kPublicMedia, to_caller.port, p.data(), p.size());
  EXPECT_TRUE(pbx.receive(io_));
  spoofer.sendTo(kPublicMedia, to_caller.port, p.data(), p.size());
  EXPECT_FALSE(pbx.receive(io_, 100));
  auto back = rtpPacket(2, 2, 2);
  pbx.sendTo(kPbxMedia, to_pbx.port, back.data(), back.size());
  EXPECT_TRUE(caller.receive(io_));
  EXPECT_FALSE(spoofer.receive(io_, 50));
}

TEST_F(MediaSessionTest, AnOfferRelaysAtMostFourStreams) {
  start();
  auto s = session();
  Peer caller(kCallerIp);
  std::string body =
      fmt::format("v=0\r\no=- 1 1 IN IP4 {}\r\ns=-\r\nc=IN IP4 {}\r\nt=0 0\r\n", kCallerIp, kCallerIp);
  for (int i = 0; i < 16; ++i) body += fmt::format("m=audio {} RTP/AVP 0\r\n", 5000 + 2 * i);
  std::string out;
  BodyVerdict v = s->rewrite(toPbx(), sdpBody(body), out);
  ASSERT_EQ(v.status, 0);
  auto sd = media::sdp::parse(out);
  ASSERT_TRUE(sd.ok());
  int relayed = 0;
  for (const auto& m : sd.value().media) relayed += m.port != 0 ? 1 : 0;
  EXPECT_EQ(relayed, 4);
  EXPECT_EQ(freePairs(), 50 - 4);
}

TEST_F(MediaSessionTest, T38OverUdptlIsRelayedAsDatagrams) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp);
  auto image = [](const char* ip, std::uint16_t port) {
    return fmt::format(
        "v=0\r\no=- 1 1 IN IP4 {}\r\ns=-\r\nc=IN IP4 {}\r\nt=0 0\r\nm=image {} udptl t38\r\n"
        "a=T38FaxVersion:0\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n",
        ip, ip, port);
  };
  std::string out1, out2;
  Written to_pbx = inspect(s->rewrite(toPbx(), sdpBody(image(kCallerIp, caller.port())), out1));
  Written to_caller = inspect(s->rewrite(toCaller(), sdpBody(image(kPbxIp, pbx.port())), out2));
  EXPECT_EQ(to_pbx.proto, "udptl");
  EXPECT_NE(to_pbx.text.find("a=T38FaxVersion:0"), std::string::npos);
  // A UDPTL packet is not RTP (no version 2 header): it crosses as it is, both ways.
  std::vector<std::uint8_t> ifp = {0x00, 0x01, 0x06, 0x01, 0x02, 0x03, 0x04, 0x05, 0x00, 0x00};
  caller.sendTo(kPublicMedia, to_caller.port, ifp.data(), ifp.size());
  auto got = pbx.receive(io_);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, ifp);
  pbx.sendTo(kPbxMedia, to_pbx.port, ifp.data(), ifp.size());
  got = caller.receive(io_);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, ifp);
}

TEST_F(MediaSessionTest, ASessionRefreshFromTheCalleeKeepsTheCallWorking) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp);
  auto [to_pbx, to_caller] = plainCall(*s, caller, pbx);
  // The PBX re-INVITEs with its SDP unchanged; the caller answers with a new port.
  Peer caller_moved(kCallerIp);
  BodyCrossing reinvite_from_pbx(0, Method::Invite, 0, false);
  reinvite_from_pbx.from_side = net::Side::Pbx;
  reinvite_from_pbx.to_side = net::Side::Public;
  reinvite_from_pbx.source = boost::asio::ip::make_address(kPbxIp);
  reinvite_from_pbx.source_verified = true;
  BodyCrossing answer_from_caller(1, Method::Invite, 200, false);
  answer_from_caller.from_side = net::Side::Public;
  answer_from_caller.to_side = net::Side::Pbx;
  answer_from_caller.source = boost::asio::ip::make_address(kCallerIp);
  answer_from_caller.source_verified = true;
  std::string out1, out2;
  Written offer = inspect(s->rewrite(reinvite_from_pbx, sdpBody(sdpOf(kPbxIp, pbx.port())), out1));
  EXPECT_EQ(offer.address, kPublicMedia);
  EXPECT_EQ(offer.port, to_caller.port);
  Written answer = inspect(
      s->rewrite(answer_from_caller, sdpBody(sdpOf(kCallerIp, caller_moved.port(), "RTP/AVP", "", 2)), out2));
  EXPECT_EQ(answer.address, kPbxMedia);
  auto p = rtpPacket(1, 4, 4);
  pbx.sendTo(kPbxMedia, to_pbx.port, p.data(), p.size());
  EXPECT_TRUE(caller_moved.receive(io_)) << "media follows the caller's new port";
  EXPECT_FALSE(caller.receive(io_, 50));
}

TEST_F(MediaSessionTest, PacketsBeforeTheAnswerAreNotRelayed) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp);
  std::string out;
  Written to_pbx = inspect(s->rewrite(toPbx(), sdpBody(sdpOf(kCallerIp, caller.port())), out));
  auto p = rtpPacket(1, 1, 1);
  pbx.sendTo(kPbxMedia, to_pbx.port, p.data(), p.size());
  EXPECT_FALSE(caller.receive(io_, 100));
  EXPECT_EQ(counter(stats::Counter::MediaDroppedUnready), 1u);
}

TEST_F(MediaSessionTest, SrtpCallerToPlainPbxInterworksBothWays) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp);
  media::srtp::KeyMaterial caller_key;
  ASSERT_TRUE(media::srtp::randomKey(media::srtp::Suite::AesCm128HmacSha1_80, caller_key));
  // The caller lists a suite we do not know first: the first acceptable one is taken.
  std::string crypto =
      "a=crypto:1 F8_128_HMAC_SHA1_80 inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n" +
      cryptoOf(2, caller_key);
  std::string out1, out2;
  Written to_pbx =
      inspect(s->rewrite(toPbx(), sdpBody(sdpOf(kCallerIp, caller.port(), "RTP/SAVP", crypto)), out1));
  EXPECT_EQ(to_pbx.proto, "RTP/AVP") << "the PBX side is srtp = off";
  EXPECT_TRUE(to_pbx.crypto.empty());
  EXPECT_EQ(to_pbx.text.find("inline:"), std::string::npos) << "no key crosses to the other side";
  Written to_caller = inspect(s->rewrite(toCaller(), sdpBody(sdpOf(kPbxIp, pbx.port())), out2));
  EXPECT_EQ(to_caller.proto, "RTP/SAVP");
  ASSERT_EQ(to_caller.crypto.size(), 1u);
  media::srtp::CryptoAttribute attribute;
  ASSERT_TRUE(media::srtp::parseCryptoAttribute(to_caller.crypto[0], attribute));
  EXPECT_EQ(attribute.tag, 2u);
  EXPECT_EQ(attribute.suite_name, "AES_CM_128_HMAC_SHA1_80");
  media::srtp::KeyMaterial our_key;
  ASSERT_TRUE(media::srtp::parseInlineKeyParams(media::srtp::Suite::AesCm128HmacSha1_80, attribute.key_params,
                                                our_key));
  EXPECT_FALSE(std::equal(our_key.bytes.begin(), our_key.bytes.begin() + 30, caller_key.bytes.begin()))
      << "our key is our own";

  auto caller_out = media::srtp::Session::create(media::srtp::Session::Direction::Outbound, caller_key);
  auto caller_in = media::srtp::Session::create(media::srtp::Session::Direction::Inbound, our_key);
  ASSERT_TRUE(caller_out && caller_in);
  // Caller -> PBX: SRTP in, plain RTP out.
  auto plain = rtpPacket(100, 0xCAFE, 0x42);
  PacketBuffer buffer;
  std::copy(plain.begin(), plain.end(), buffer.bytes.begin());
  std::size_t len = plain.size();
  ASSERT_TRUE(caller_out->protectRtp(buffer.bytes.data(), len, buffer.bytes.size()));
  caller.sendTo(kPublicMedia, to_caller.port, buffer.bytes.data(), len);
  auto got = pbx.receive(io_);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, plain) << "decrypted for the plain PBX";
  // A forged SRTP packet (wrong key) from the caller's own address is refused.
  std::vector<std::uint8_t> forged(buffer.bytes.begin(), buffer.bytes.begin() + len);
  forged[20] ^= 0xFF;
  Peer forger(kCallerIp);
  forger.sendTo(kPublicMedia, to_caller.port, forged.data(), forged.size());
  EXPECT_FALSE(pbx.receive(io_, 100));
  EXPECT_GE(counter(stats::Counter::MediaAuthFailures) + counter(stats::Counter::MediaDroppedForeign), 1u);
  // PBX -> caller: plain in, SRTP out with our key.
  auto reply = rtpPacket(5, 0xBEEF, 0x24);
  pbx.sendTo(kPbxMedia, to_pbx.port, reply.data(), reply.size());
  got = caller.receive(io_);
  ASSERT_TRUE(got);
  EXPECT_NE(*got, reply) << "never plaintext toward an SRTP side";
  std::copy(got->begin(), got->end(), buffer.bytes.begin());
  len = got->size();
  ASSERT_TRUE(caller_in->unprotectRtp(buffer.bytes.data(), len));
  EXPECT_EQ(std::vector<std::uint8_t>(buffer.bytes.begin(), buffer.bytes.begin() + len), reply);
}

TEST_F(MediaSessionTest, SrtpAuthFailureDoesNotLatchAStranger) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp);
  media::srtp::KeyMaterial caller_key, wrong_key;
  ASSERT_TRUE(media::srtp::randomKey(media::srtp::Suite::AeadAes128Gcm, caller_key));
  ASSERT_TRUE(media::srtp::randomKey(media::srtp::Suite::AeadAes128Gcm, wrong_key));
  std::string out1, out2;
  s->rewrite(toPbx(), sdpBody(sdpOf(kCallerIp, caller.port(), "RTP/SAVP", cryptoOf(1, caller_key))), out1);
  Written to_caller = inspect(s->rewrite(toCaller(), sdpBody(sdpOf(kPbxIp, pbx.port())), out2));
  Peer stranger("127.0.0.6");
  auto send = [&](Peer& from, const media::srtp::KeyMaterial& key, std::uint16_t seq) {
    auto session = media::srtp::Session::create(media::srtp::Session::Direction::Outbound, key);
    auto plain = rtpPacket(seq, 0x77, 1);
    PacketBuffer b;
    std::copy(plain.begin(), plain.end(), b.bytes.begin());
    std::size_t len = plain.size();
    ASSERT_TRUE(session->protectRtp(b.bytes.data(), len, b.bytes.size()));
    from.sendTo(kPublicMedia, to_caller.port, b.bytes.data(), len);
  };
  // SRTP + NAT latching admits any source, but only a packet that authenticates latches it.
  send(stranger, wrong_key, 1);
  EXPECT_FALSE(pbx.receive(io_, 100));
  EXPECT_EQ(counter(stats::Counter::MediaAuthFailures), 1u);
  send(caller, caller_key, 2);
  EXPECT_TRUE(pbx.receive(io_));
  send(stranger, caller_key, 3);  // even with the key, after the latch: not from the peer
  EXPECT_FALSE(pbx.receive(io_, 100));
  EXPECT_EQ(counter(stats::Counter::MediaDroppedForeign), 1u);
}

TEST_F(MediaSessionTest, SrtpOfferWithoutAcceptableCryptoGets488) {
  start();
  {
    auto s = session();
    Peer caller(kCallerIp);
    std::string out;
    auto crypto =
        "a=crypto:1 AES_192_CM_HMAC_SHA1_80 "
        "inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n";
    BodyVerdict v = s->rewrite(toPbx(), sdpBody(sdpOf(kCallerIp, caller.port(), "RTP/SAVP", crypto)), out);
    EXPECT_EQ(v.status, 488);
  }
  {
    auto s = session();
    Peer caller(kCallerIp);
    std::string out;
    BodyVerdict v = s->rewrite(toPbx(), sdpBody(sdpOf(kCallerIp, caller.port(), "RTP/SAVP")), out);
    EXPECT_EQ(v.status, 488) << "SAVP without any a=crypto";
  }
  {
    // From the PBX side, where SRTP is off.
    auto s = session();
    media::srtp::KeyMaterial key;
    media::srtp::randomKey(media::srtp::Suite::AesCm128HmacSha1_80, key);
    std::string out;
    BodyCrossing from_pbx = toCaller(Method::Invite, 0);
    BodyVerdict v = s->rewrite(from_pbx, sdpBody(sdpOf(kPbxIp, 4000, "RTP/SAVP", cryptoOf(1, key))), out);
    EXPECT_EQ(v.status, 488);
  }
  EXPECT_EQ(counter(stats::Counter::CallsMediaRefused), 3u);
  EXPECT_EQ(freePairs(), 50) << "nothing taken by refused offers";
}

TEST_F(MediaSessionTest, RequiredSideGetsSrtpOfferAndRefusesAPlainAnswer) {
  start(41000, 41099, [](config::Config& c) { c.media.public_side.srtp = config::SrtpMode::Required; });
  Peer pbx(kPbxIp), phone(kCallerIp);
  // The PBX calls out to the public side (leg 0 is the PBX here).
  BodyCrossing to_public(1, Method::Invite, 0, true);
  to_public.from_side = net::Side::Pbx;
  to_public.to_side = net::Side::Public;
  to_public.source = boost::asio::ip::make_address(kPbxIp);
  to_public.source_verified = true;
  BodyCrossing to_pbx(0, Method::Invite, 200, true);
  to_pbx.from_side = net::Side::Public;
  to_pbx.to_side = net::Side::Pbx;
  to_pbx.source = boost::asio::ip::make_address(kCallerIp);
  to_pbx.source_verified = true;
  {
    auto s = session();
    std::string out1, out2;
    Written offered = inspect(s->rewrite(to_public, sdpBody(sdpOf(kPbxIp, pbx.port())), out1));
    EXPECT_EQ(offered.proto, "RTP/SAVP");
    ASSERT_EQ(offered.crypto.size(), 4u) << "one line per configured suite";
    media::srtp::CryptoAttribute chosen;
    ASSERT_TRUE(media::srtp::parseCryptoAttribute(offered.crypto[1], chosen));
    EXPECT_EQ(chosen.suite_name, "AEAD_AES_128_GCM");
    media::srtp::KeyMaterial phone_key;
    media::srtp::randomKey(media::srtp::Suite::AeadAes128Gcm, phone_key);
    Written answered = inspect(s->rewrite(
        to_pbx, sdpBody(sdpOf(kCallerIp, phone.port(), "RTP/SAVP", cryptoOf(2, phone_key))), out2));
    EXPECT_EQ(answered.proto, "RTP/AVP");
    EXPECT_TRUE(answered.crypto.empty());
    EXPECT_TRUE(s->stream(0)->leg(1).secure);
    EXPECT_FALSE(s->stream(0)->leg(0).secure);
  }
  {
    auto s = session();
    std::string out1, out2;
    s->rewrite(to_public, sdpBody(sdpOf(kPbxIp, pbx.port())), out1);
    BodyVerdict v = s->rewrite(to_pbx, sdpBody(sdpOf(kCallerIp, phone.port())), out2);
    EXPECT_EQ(v.status, 488) << "a plain answer on a required side";
  }
  {
    // And a plain offer from a required side is refused outright.
    auto s = session();
    std::string out;
    BodyVerdict v = s->rewrite(toPbx(), sdpBody(sdpOf(kCallerIp, phone.port())), out);
    EXPECT_EQ(v.status, 488);
  }
}

TEST_F(MediaSessionTest, RepeatedAnswerIn18xAnd200GetsTheSameDescription) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp);
  std::string out1, out2, out3;
  s->rewrite(toPbx(), sdpBody(sdpOf(kCallerIp, caller.port())), out1);
  std::string answer = sdpOf(kPbxIp, pbx.port());
  BodyVerdict early = s->rewrite(toCaller(Method::Invite, 183), sdpBody(answer), out2);
  BodyVerdict final_answer = s->rewrite(toCaller(Method::Invite, 200), sdpBody(answer), out3);
  EXPECT_EQ(early.body.bytes, final_answer.body.bytes);
  // Early media flows after the 183.
  auto p = rtpPacket(1, 5, 5);
  pbx.sendTo(kPbxMedia, inspect(BodyVerdict{sip::Body{"application/sdp", out1}, 0, {}}).port, p.data(),
             p.size());
  EXPECT_TRUE(caller.receive(io_));
}

TEST_F(MediaSessionTest, HoldAndResumeKeepPortsAndRaiseTheVersion) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp);
  auto [to_pbx, to_caller] = plainCall(*s, caller, pbx);
  auto version = [](const std::string& text) {
    auto sd = media::sdp::parse(text);
    return std::string(sd.value().session_version);
  };
  std::string out1, out2, out3, out4;
  BodyCrossing reinvite = toPbx();
  reinvite.initial = false;
  Written hold = inspect(
      s->rewrite(reinvite, sdpBody(sdpOf(kCallerIp, caller.port(), "RTP/AVP", "a=sendonly\r\n", 2)), out1));
  EXPECT_NE(hold.text.find("a=sendonly"), std::string::npos);
  EXPECT_EQ(hold.port, to_pbx.port);
  EXPECT_NE(version(hold.text), version(to_pbx.text));
  BodyCrossing reanswer = toCaller();
  reanswer.initial = false;
  inspect(s->rewrite(reanswer, sdpBody(sdpOf(kPbxIp, pbx.port(), "RTP/AVP", "a=recvonly\r\n", 2)), out2));
  // RFC 2543 hold with c=0.0.0.0 stays hold.
  std::string zero = "v=0\r\no=- 42 3 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio " +
                     std::to_string(caller.port()) + " RTP/AVP 0\r\n";
  Written old_hold = inspect(s->rewrite(reinvite, sdpBody(zero), out3));
  EXPECT_EQ(old_hold.address, "0.0.0.0");
  s->rewrite(reanswer, sdpBody(sdpOf(kPbxIp, pbx.port(), "RTP/AVP", "", 3)), out4);
  // Resume: media flows again.
  std::string out5, out6;
  inspect(s->rewrite(reinvite, sdpBody(sdpOf(kCallerIp, caller.port(), "RTP/AVP", "", 4)), out5));
  inspect(s->rewrite(reanswer, sdpBody(sdpOf(kPbxIp, pbx.port(), "RTP/AVP", "", 4)), out6));
  auto p = rtpPacket(1, 9, 9);
  caller.sendTo(kPublicMedia, to_caller.port, p.data(), p.size());
  EXPECT_TRUE(pbx.receive(io_));
}

TEST_F(MediaSessionTest, ReInviteWithANewKeyReKeys) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp);
  media::srtp::KeyMaterial first, second;
  media::srtp::randomKey(media::srtp::Suite::AesCm128HmacSha1_80, first);
  media::srtp::randomKey(media::srtp::Suite::AesCm128HmacSha1_80, second);
  std::string o1, o2, o3, o4;
  s->rewrite(toPbx(), sdpBody(sdpOf(kCallerIp, caller.port(), "RTP/SAVP", cryptoOf(1, first))), o1);
  Written a1 = inspect(s->rewrite(toCaller(), sdpBody(sdpOf(kPbxIp, pbx.port())), o2));
  BodyCrossing reinvite = toPbx();
  reinvite.initial = false;
  s->rewrite(reinvite, sdpBody(sdpOf(kCallerIp, caller.port(), "RTP/SAVP", cryptoOf(1, second), 2)), o3);
  BodyCrossing reanswer = toCaller();
  reanswer.initial = false;
  Written a2 = inspect(s->rewrite(reanswer, sdpBody(sdpOf(kPbxIp, pbx.port(), "RTP/AVP", "", 2)), o4));
  ASSERT_EQ(a1.crypto.size(), 1u);
  ASSERT_EQ(a2.crypto.size(), 1u);
  EXPECT_NE(a1.crypto[0], a2.crypto[0]) << "our key is fresh in every answer";
  auto send = [&](const media::srtp::KeyMaterial& key, std::uint16_t seq) {
    auto session = media::srtp::Session::create(media::srtp::Session::Direction::Outbound, key);
    auto plain = rtpPacket(seq, 0x77, 1);
    PacketBuffer b;
    std::copy(plain.begin(), plain.end(), b.bytes.begin());
    std::size_t len = plain.size();
    ASSERT_TRUE(session->protectRtp(b.bytes.data(), len, b.bytes.size()));
    caller.sendTo(kPublicMedia, a2.port, b.bytes.data(), len);
  };
  send(first, 10);
  EXPECT_FALSE(pbx.receive(io_, 100)) << "the old key no longer authenticates";
  send(second, 11);
  EXPECT_TRUE(pbx.receive(io_));
}

TEST_F(MediaSessionTest, LateOfferIn200AnswerInAck) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp);
  std::string o0, o1, o2;
  BodyVerdict none = s->rewrite(toPbx(), sip::Body{}, o0);
  EXPECT_TRUE(none.body.empty());
  Written offer_to_caller =
      inspect(s->rewrite(toCaller(Method::Invite, 200), sdpBody(sdpOf(kPbxIp, pbx.port())), o1));
  EXPECT_EQ(offer_to_caller.address, kPublicMedia);
  Written answer_to_pbx =
      inspect(s->rewrite(toPbx(Method::Ack, 0), sdpBody(sdpOf(kCallerIp, caller.port())), o2));
  EXPECT_EQ(answer_to_pbx.address, kPbxMedia);
  auto p = rtpPacket(1, 3, 3);
  caller.sendTo(kPublicMedia, offer_to_caller.port, p.data(), p.size());
  EXPECT_TRUE(pbx.receive(io_));
}

TEST_F(MediaSessionTest, BadBodiesAreRefused) {
  start();
  auto s = session();
  std::string out;
  EXPECT_EQ(s->rewrite(toPbx(), sip::Body{"multipart/mixed", "--x\r\n"}, out).status, 415);
  EXPECT_EQ(s->rewrite(toPbx(), sdpBody("v=0\r\nm=audio 1 RTP/AVP 0\r\n"), out).status, 488);
  EXPECT_EQ(s->rewrite(toPbx(), sdpBody("garbage"), out).status, 488);
}

TEST_F(MediaSessionTest, PortExhaustionGets503AndThePoolRefills) {
  start(41200, 41203);  // two pairs
  EXPECT_EQ(freePairs(), 2);
  Peer caller(kCallerIp);
  std::vector<std::unique_ptr<MediaSession>> calls;
  for (int i = 0; i < 2; ++i) {
    calls.push_back(session());
    std::string out;
    EXPECT_EQ(calls.back()->rewrite(toPbx(), sdpBody(sdpOf(kCallerIp, caller.port())), out).status, 0);
  }
  EXPECT_EQ(freePairs(), 0);
  auto third = session();
  std::string out;
  EXPECT_EQ(third->rewrite(toPbx(), sdpBody(sdpOf(kCallerIp, caller.port())), out).status, 503);
  EXPECT_EQ(counter(stats::Counter::CallsNoMediaPorts), 1u);
  calls.clear();
  third.reset();
  io_.poll();
  EXPECT_EQ(freePairs(), 2);
  EXPECT_EQ(media_->pool().available(), 2u);
}

TEST_F(MediaSessionTest, MediaTimeoutEndsAnAnsweredCall) {
  start(41000, 41099, [](config::Config& c) { c.media.timeout_s = 1; });
  auto s = session();
  std::string reason;
  s->setEndHandler([&reason](std::string_view why) { reason = std::string(why); });
  Peer caller(kCallerIp), pbx(kPbxIp);
  plainCall(*s, caller, pbx);
  clock_.advance(1500);
  io_.run_for(std::chrono::milliseconds(1300));
  EXPECT_NE(reason.find("no media"), std::string::npos) << reason;
}

}  // namespace
}  // namespace palisade

namespace palisade {
namespace {

TEST_F(MediaSessionTest, SrtcpIsDecryptedTowardThePlainSide) {
  start();
  auto s = session();
  Peer caller(kCallerIp), pbx(kPbxIp), pbx_rtcp(kPbxIp);
  media::srtp::KeyMaterial caller_key;
  ASSERT_TRUE(media::srtp::randomKey(media::srtp::Suite::AesCm128HmacSha1_80, caller_key));
  std::string out1, out2;
  s->rewrite(toPbx(), sdpBody(sdpOf(kCallerIp, caller.port(), "RTP/SAVP", cryptoOf(1, caller_key))), out1);
  Written to_caller = inspect(s->rewrite(
      toCaller(),
      sdpBody(sdpOf(kPbxIp, pbx.port(), "RTP/AVP", fmt::format("a=rtcp:{}\r\n", pbx_rtcp.port()))), out2));
  auto caller_out = media::srtp::Session::create(media::srtp::Session::Direction::Outbound, caller_key);
  // An RTCP receiver report (RFC 3550 §6.4.2) with no report blocks.
  std::vector<std::uint8_t> rr = {0x80, 201, 0, 1, 0, 0, 0x12, 0x34};
  PacketBuffer b;
  for (int i = 0; i < 3; ++i) {
    std::copy(rr.begin(), rr.end(), b.bytes.begin());
    std::size_t len = rr.size();
    ASSERT_TRUE(caller_out->protectRtcp(b.bytes.data(), len, b.bytes.size()));
    caller.sendTo(kPublicMedia, static_cast<std::uint16_t>(to_caller.port + 1), b.bytes.data(), len);
    auto got = pbx_rtcp.receive(io_);
    ASSERT_TRUE(got) << "packet " << i;
    EXPECT_EQ(*got, rr);
  }
  EXPECT_EQ(counter(stats::Counter::MediaAuthFailures), 0u);
}

}  // namespace
}  // namespace palisade
