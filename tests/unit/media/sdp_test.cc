#include "media/sdp/sdp.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace palisade::media::sdp {
namespace {

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr std::string_view kOffer =
    "v=0\r\no=alice 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    "m=audio 49170 RTP/SAVP 0 101\r\na=rtcp:49171\r\na=sendonly\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
    "m=video 0 RTP/AVP 96\r\n";

TEST(SdpParse, SectionsConnectionsAndAttributes) {
  auto sd = parse(kOffer);
  ASSERT_TRUE(sd.ok()) << sd.error().message;
  EXPECT_EQ(sd->origin_username, "alice");
  ASSERT_EQ(sd->media.size(), 2u);
  const MediaSection& audio = sd->media[0];
  EXPECT_EQ(audio.kind, "audio");
  EXPECT_EQ(audio.port, 49170);
  EXPECT_EQ(audio.proto, "RTP/SAVP");
  EXPECT_TRUE(audio.isSecure());
  EXPECT_TRUE(audio.isRtp());
  EXPECT_EQ(audio.formats, "0 101");
  ASSERT_TRUE(audio.rtcp_port);
  EXPECT_EQ(*audio.rtcp_port, 49171);
  ASSERT_EQ(audio.crypto.size(), 1u);
  EXPECT_TRUE(audio.crypto[0].starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"));
  EXPECT_EQ(sd->directionFor(0), Direction::SendOnly);
  EXPECT_EQ(sd->directionFor(1), Direction::SendRecv);
  ASSERT_NE(sd->connectionFor(0), nullptr);
  EXPECT_EQ(sd->connectionFor(0)->address, "192.0.2.1");
  EXPECT_TRUE(sd->media[1].rejected());
}

TEST(SdpParse, MediaLevelConnectionWinsAndHoldIsSeen) {
  auto sd = parse(
      "v=0\no=- 1 1 IN IP6 ::1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 4000 RTP/AVP 0\n"
      "m=audio 4002 RTP/AVP 0\nc=IN IP6 2001:db8::5\na=rtcp-mux\n");
  ASSERT_TRUE(sd.ok()) << sd.error().message;
  EXPECT_TRUE(sd->connectionFor(0)->isHold());
  EXPECT_TRUE(sd->connectionFor(1)->ipv6);
  EXPECT_EQ(sd->connectionFor(1)->address, "2001:db8::5");
  EXPECT_TRUE(sd->media[1].rtcp_mux);
}

TEST(SdpParse, RefusesWhatIsNotSdp) {
  const char* bad[] = {
      "",
      "hello",
      "v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n",
      "v=0\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n",                     // no o=
      "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\n",  // no c= anywhere
      "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
      "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IPX 1.2.3.4\r\n",
      "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP\r\n",  // no formats
      "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:x\r\n",
      "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nX=1\r\n",
      "v=0\r\nv=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n",
  };
  for (const char* body : bad) EXPECT_FALSE(parse(body).ok()) << body;
}

TEST(SdpParse, BoundsSectionsAndLines) {
  std::string many = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\n";
  for (int i = 0; i < 17; ++i) many += "m=audio 1000 RTP/AVP 0\r\n";
  EXPECT_FALSE(parse(many).ok());
  Limits small;
  small.max_lines = 4;
  EXPECT_FALSE(parse(kOffer, small).ok());
}

TEST(SdpWrite, NamesOnlyPalisadeAndKeepsCodecs) {
  auto sd = parse(kOffer);
  ASSERT_TRUE(sd.ok());
  Plan plan;
  plan.address = "203.0.113.10";
  plan.session_id = 7;
  plan.session_version = 9;
  MediaPlan audio;
  audio.port = 30000;
  audio.rtcp_port = 30001;
  audio.proto = "RTP/AVP";
  plan.media.push_back(audio);
  std::string out = write(sd.value(), plan);
  EXPECT_EQ(out.find("192.0.2.1"), std::string::npos) << out;
  EXPECT_EQ(out.find("inline:"), std::string::npos) << out;
  EXPECT_NE(out.find("o=palisade 7 9 IN IP4 203.0.113.10\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("m=audio 30000 RTP/AVP 0 101\r\na=sendonly\r\na=rtcp:30001\r\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("m=video 0 RTP/AVP 96\r\n"), std::string::npos) << out;  // no plan: rejected
  // What we write parses again.
  EXPECT_TRUE(parse(out).ok());
}

// tests/golden/sdp/NAME.in is rewritten with a fixed plan (our address 203.0.113.10, ports
// 30000 + 2i, the section's own profile, rtcp-mux kept, one key of ours where the input had
// crypto) and compared with NAME.out. PALISADE_UPDATE_GOLDEN=1 writes the .out files.
TEST(SdpGolden, EveryInputMatchesItsOutput) {
  std::filesystem::path dir = std::filesystem::path(PALISADE_SOURCE_DIR) / "tests/golden/sdp";
  bool update = std::getenv("PALISADE_UPDATE_GOLDEN") != nullptr;
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".in") continue;
    std::string input = readFile(entry.path());
    auto sd = parse(input);
    ASSERT_TRUE(sd.ok()) << entry.path() << ": " << sd.error().message;
    Plan plan;
    plan.address = "203.0.113.10";
    plan.session_id = 42;
    plan.session_version = 1;
    for (std::size_t i = 0; i < sd->media.size(); ++i) {
      const MediaSection& m = sd->media[i];
      MediaPlan p;
      p.reject = m.rejected();
      p.port = static_cast<std::uint16_t>(30000 + 2 * i);
      p.rtcp_port = static_cast<std::uint16_t>(p.port + 1);
      p.rtcp_mux = m.rtcp_mux;
      p.hold_address = sd->connectionFor(i) != nullptr && sd->connectionFor(i)->isHold();
      p.proto = m.proto;
      if (!m.crypto.empty())
        p.crypto.emplace_back("1 AES_CM_128_HMAC_SHA1_80 inline:OURKEYOURKEYOURKEYOURKEYOURKEYOURKEYOURKEY");
      plan.media.push_back(p);
    }
    std::string out = write(sd.value(), plan);
    std::filesystem::path golden = entry.path();
    golden.replace_extension(".out");
    if (update) std::ofstream(golden, std::ios::binary) << out;
    EXPECT_EQ(out, readFile(golden)) << entry.path();
    EXPECT_TRUE(parse(out).ok()) << golden;
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

}  // namespace
}  // namespace palisade::media::sdp
