// The torture corpora sent to one worker's Engine (default config) from the public side:
// what Palisade answers to each RFC 4475 message, and that no corpus message makes it crash,
// answer twice or emit something that is not SIP.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/dialog/engine.h"
#include "tests/support/corpus.h"
#include "tests/support/engine_harness.h"

namespace palisade {
namespace {

using testing::EngineHarness;
using testing::IndexRow;
using testing::readCorpusFile;
using testing::readCorpusIndex;

constexpr const char* kSourceAddress = "127.0.0.2";
constexpr std::uint16_t kSourcePort = 5061;
constexpr std::uint16_t kPbxPort = 5080;  // the default config's PBX: 127.0.0.1:5080

// A source that has shown it receives at its address (as a trunk has): the answers the index
// gives are not cut short by the amplification guard, which AmplificationTest covers.
net::Flow source() {
  net::Flow flow = testing::udpFlow(net::Side::Public, kSourceAddress, kSourcePort);
  flow.verified = true;
  return flow;
}

// What the engine sent after one datagram, sorted by destination.
struct Sent {
  std::vector<std::string> to_source;
  std::vector<std::string> to_pbx;
  std::vector<std::string> elsewhere;
};

Sent deliver(EngineHarness& h, const std::string& bytes) {
  h.clearSent();
  h.inject(bytes, source());
  Sent out;
  for (const auto& p : h.network().sent) {
    if (p.flow.side == net::Side::Public && p.flow.remote == source().remote) {
      out.to_source.push_back(p.bytes);
    } else if (p.flow.side == net::Side::Pbx && p.flow.remote == testing::endpoint("127.0.0.1", kPbxPort)) {
      out.to_pbx.push_back(p.bytes);
    } else {
      out.elsewhere.push_back(p.bytes);
    }
  }
  h.clearSent();
  return out;
}

std::unique_ptr<sip::Message> scan(const std::string& bytes) {
  return sip::Message::parse(bytes, sip::Limits{}, true);
}

std::string testName(const std::string& file) {
  std::string name = file.substr(file.rfind('/') + 1);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// --- RFC 4475: the exact answer -------------------------------------------------------------

struct Answer {
  int status = 0;                // the response sent back to the source; 0: nothing is sent
  bool forwards_invite = false;  // an INVITE goes to the PBX (and the status is 100 Trying)
};

constexpr Answer kNothing{0, false};
constexpr Answer kTryingAndForward{100, true};

// One entry per file of rfc4475/index.tsv. Comments explain the cases where the index allows
// more than one behaviour, or where an SBC's answer differs from a proxy's or an endpoint's.
const std::map<std::string, Answer, std::less<>>& expectedAnswers() {
  static const std::map<std::string, Answer, std::less<>> kAnswers = {
      // §3.1.1.1 wsinv: well-formed, but its To carries a tag and no dialog exists here, so the
      // UAS side answers 481 (RFC 3261 §12.2.2); a proxy would forward it instead.
      {"wsinv.dat", {481}},
      {"intmeth.dat", {501}},  // unknown method: 501 with Allow
      {"esc01.dat", kTryingAndForward},
      // A REGISTER is not relayed by Palisade: 405 with Allow, for every REGISTER below.
      {"escnull.dat", {405}},
      {"esc02.dat", {501}},  // RE%47IST%45R is an unknown method, not REGISTER
      {"lwsdisp.dat", {200}},
      {"longreq.dat", kTryingAndForward},
      {"dblreq.dat", {405}},  // the REGISTER only; the trailing octets are ignored
      {"semiuri.dat", {200}},
      {"transports.dat", {200}},
      // §3.1.1.11 mpart01 parses (framing by Content-Length is checked by the scanner test),
      // but MESSAGE is outside what Palisade relays: 405.
      {"mpart01.dat", {405}},
      {"unreason.dat", kNothing},  // responses without a transaction are never answered
      {"noreason.dat", kNothing},
      // §3.1.2.1 badinv01: the only Via is malformed; the 400 copies it back as received and
      // goes to the packet's source address.
      {"badinv01.dat", {400}},
      {"clerr.dat", {400}},
      {"ncl.dat", {400}},
      {"scalar02.dat", {400}},
      {"scalarlg.dat", kNothing},  // invalid response: dropped
      {"quotbal.dat", {400}},
      // §3.1.2.7 - §3.1.2.11, §3.1.2.13, §3.1.2.14: the index allows a liberal element to
      // repair these; Palisade takes the other allowed path and refuses them with 400, so that
      // nothing it cannot forward faithfully reaches the PBX.
      {"ltgtruri.dat", {400}},
      {"lwsruri.dat", {400}},
      {"lwsstart.dat", {400}},
      {"trws.dat", {400}},
      {"escruri.dat", {400}},
      // §3.1.2.12 baddate: "may reject only if Date matters to it". Date does not matter to
      // Palisade, so the INVITE is processed like any other.
      {"baddate.dat", kTryingAndForward},
      {"regbadct.dat", {400}},
      {"badaspec.dat", {400}},
      {"baddn.dat", {400}},
      {"baddn.crlf-terminated.dat", {400}},
      {"badvers.dat", {505}},
      {"mismatch01.dat", {400}},
      // §3.1.2.18 mismatch02: 501 preferred, 400 acceptable. The scanner refuses the CSeq
      // mismatch before the method is looked at, which gives the acceptable 400.
      {"mismatch02.dat", {400}},
      {"bigcode.dat", kNothing},  // invalid response: dropped
      // §3.2.1 badbranch: either 400 or RFC 2543 matching; Palisade accepts requests without a
      // magic-cookie branch (its transactions fall back to the RFC 2543 key), so: 200.
      {"badbranch.dat", {200}},
      {"insuf.dat", {400}},
      {"unkscm.dat", {416}},
      // §3.3.3 novelsc: 416 rather than 404, since Palisade routes only sip, sips and tel.
      {"novelsc.dat", {416}},
      // §3.3.4 unksm2: a registrar would answer 400; Palisade is none, so this is any REGISTER.
      {"unksm2.dat", {405}},
      {"bext01.dat", {420}},
      // §3.3.6 invut, §3.3.15 sdp01: a proxy forwards them, and so does the B2BUA: the PBX,
      // as the endpoint, decides about the body and the Accept header.
      {"invut.dat", kTryingAndForward},
      {"regaut01.dat", {405}},
      {"multi01.dat", {400}},
      {"mcl01.dat", {400}},
      {"bcast.dat", kNothing},  // a response: dropped, never forwarded to 255.255.255.255
      {"zeromf.dat", {483}},
      {"cparam01.dat", {405}},
      {"cparam02.dat", {405}},
      {"regescrt.dat", {405}},
      {"sdp01.dat", kTryingAndForward},
      {"inv2543.dat", kTryingAndForward},
      // test.dat: no SIP-Version and no Via; the index says "reject/drop". Without a Via there
      // is nobody to answer, so it is dropped.
      {"test.dat", kNothing},
  };
  return kAnswers;
}

class Rfc4475EngineTest : public ::testing::TestWithParam<IndexRow> {};

TEST_P(Rfc4475EngineTest, AnswersAsTheIndexAllows) {
  const IndexRow& row = GetParam();
  auto it = expectedAnswers().find(row["file"]);
  ASSERT_NE(it, expectedAnswers().end()) << "no expected answer for " << row["file"];
  const Answer& expected = it->second;
  std::string bytes = readCorpusFile("rfc4475/" + row["file"]);
  auto request = scan(bytes);

  EngineHarness h;
  Sent sent = deliver(h, bytes);
  EXPECT_TRUE(sent.elsewhere.empty()) << sent.elsewhere.front();

  if (expected.status == 0) {
    EXPECT_TRUE(sent.to_source.empty()) << "unexpected answer:\n" << sent.to_source.front();
  } else {
    ASSERT_EQ(sent.to_source.size(), 1u) << row["file"] << ": expected exactly one " << expected.status;
    auto response = scan(sent.to_source.front());
    ASSERT_TRUE(response) << sent.to_source.front();
    EXPECT_EQ(response->statusCode(), expected.status) << sent.to_source.front();
    ASSERT_TRUE(request);
    EXPECT_EQ(response->topVia().branch, request->topVia().branch);
    if (request->ok()) {
      EXPECT_TRUE(response->ok()) << response->fault().reason << "\n" << sent.to_source.front();
      EXPECT_EQ(response->callId(), request->callId());
      EXPECT_EQ(response->cseq(), request->cseq());
      EXPECT_EQ(response->fromTag(), request->fromTag());
      if (expected.status >= 200) {
        EXPECT_FALSE(response->toTag().empty());  // RFC 3261 §8.2.6.2
      }
    }
    // Otherwise the answer echoes the faulty fields as they were received (RFC 3261 §8.2.6.2),
    // so it need not be well-formed itself; its top Via still names the request's transaction.
  }

  if (expected.forwards_invite) {
    ASSERT_EQ(sent.to_pbx.size(), 1u);
    auto invite = scan(sent.to_pbx.front());
    ASSERT_TRUE(invite);
    EXPECT_TRUE(invite->ok()) << invite->fault().reason << "\n" << sent.to_pbx.front();
    EXPECT_EQ(invite->method(), sip::Method::Invite);
    EXPECT_NE(invite->callId(), request->callId());  // topology hiding
  } else {
    EXPECT_TRUE(sent.to_pbx.empty()) << sent.to_pbx.front();
  }
}

std::string rowName(const ::testing::TestParamInfo<IndexRow>& info) { return testName(info.param["file"]); }

INSTANTIATE_TEST_SUITE_P(Corpus, Rfc4475EngineTest, ::testing::ValuesIn(readCorpusIndex("rfc4475/index.tsv")),
                         rowName);

TEST(Rfc4475EngineTableTest, CoversExactlyTheIndex) {
  auto rows = readCorpusIndex("rfc4475/index.tsv");
  EXPECT_EQ(rows.size(), expectedAnswers().size());
  for (const auto& row : rows) EXPECT_EQ(expectedAnswers().count(row["file"]), 1u) << row["file"];
}

// Answers whose details matter beyond the status code.
TEST(Rfc4475EngineDetailTest, BadExtensionListsRequireAndProxyRequireTags) {  // §3.3.5
  EngineHarness h;
  Sent sent = deliver(h, readCorpusFile("rfc4475/bext01.dat"));
  ASSERT_EQ(sent.to_source.size(), 1u);
  auto response = scan(sent.to_source.front());
  ASSERT_TRUE(response && response->ok());
  EXPECT_EQ(response->statusCode(), 420);
  ASSERT_EQ(response->count(sip::Hdr::Unsupported), 1u);
  std::vector<std::string_view> tags;
  ASSERT_TRUE(sip::splitList(response->find(sip::Hdr::Unsupported)->value, tags));
  std::sort(tags.begin(), tags.end());
  EXPECT_EQ(tags, (std::vector<std::string_view>{"noProxiesSupportThis", "norDoAnyProxiesSupportThis",
                                                 "nothingSupportsThis", "nothingSupportsThisEither"}));
}

TEST(Rfc4475EngineDetailTest, UnknownMethodsGetAllow) {  // §3.1.1.2, §3.1.1.5
  for (const char* file : {"rfc4475/intmeth.dat", "rfc4475/esc02.dat"}) {
    EngineHarness h;
    Sent sent = deliver(h, readCorpusFile(file));
    ASSERT_EQ(sent.to_source.size(), 1u) << file;
    auto response = scan(sent.to_source.front());
    ASSERT_TRUE(response && response->ok()) << file;
    EXPECT_EQ(response->statusCode(), 501) << file;
    ASSERT_TRUE(response->find(sip::Hdr::Allow)) << file;
    EXPECT_EQ(response->find(sip::Hdr::Allow)->value.find("REGISTER"), std::string_view::npos);
  }
}

TEST(Rfc4475EngineDetailTest, VersionNotSupportedEchoesTheVia) {  // §3.1.2.16
  EngineHarness h;
  Sent sent = deliver(h, readCorpusFile("rfc4475/badvers.dat"));
  ASSERT_EQ(sent.to_source.size(), 1u);
  EXPECT_TRUE(sent.to_source.front().starts_with("SIP/2.0 505 "));
  auto response = scan(sent.to_source.front());
  ASSERT_TRUE(response && response->ok());
  EXPECT_EQ(response->topVia().host, "c.example.com");
  EXPECT_EQ(response->topVia().received, kSourceAddress);
}

TEST(Rfc4475EngineDetailTest, MissingMaxForwardsIsSetOnTheForwardedInvite) {  // §3.4.1
  EngineHarness h;
  Sent sent = deliver(h, readCorpusFile("rfc4475/inv2543.dat"));
  ASSERT_EQ(sent.to_pbx.size(), 1u);
  auto invite = scan(sent.to_pbx.front());
  ASSERT_TRUE(invite && invite->ok());
  EXPECT_EQ(invite->maxForwards(), 70);  // RFC 3261 §16.6 step 3
  EXPECT_FALSE(invite->topVia().branch.empty());
}

// §3.1.1.8: the octets after Content-Length are not part of the request and must never be
// relayed. dblreq.dat is a REGISTER (answered 405, nothing relayed); the same octets in the
// other order make an INVITE followed by trailing bytes, and the INVITE the PBX receives must
// end where the Content-Length says.
TEST(DblreqTest, RegisterWithTrailingInviteIsAnsweredOnce) {
  std::string bytes = readCorpusFile("rfc4475/dblreq.dat");
  EngineHarness h;
  Sent sent = deliver(h, bytes);
  ASSERT_EQ(sent.to_source.size(), 1u);
  EXPECT_TRUE(sent.to_source.front().starts_with("SIP/2.0 405 "));
  EXPECT_EQ(sent.to_source.front().find("dblreq.0ha0isnda977644900765"), std::string::npos);
  EXPECT_TRUE(sent.to_pbx.empty());
  EXPECT_EQ(h.engine().activeCalls(), 0u);
}

TEST(DblreqTest, ForwardedInviteDoesNotCarryTrailingOctets) {
  std::string bytes = readCorpusFile("rfc4475/dblreq.dat");
  std::size_t split = bytes.find("INVITE sip:joe@example.com");
  ASSERT_NE(split, std::string::npos);
  std::string invite_part = bytes.substr(split);  // its body is 5 octets longer than Content-Length
  std::string trailing = bytes.substr(0, split);  // then a whole REGISTER
  auto original = scan(invite_part + trailing);
  ASSERT_TRUE(original && original->ok()) << original->fault().reason;
  ASSERT_EQ(original->body().size(), 150u);

  EngineHarness h;
  Sent sent = deliver(h, invite_part + trailing);
  ASSERT_EQ(sent.to_source.size(), 1u);
  EXPECT_TRUE(sent.to_source.front().starts_with("SIP/2.0 100 "));
  ASSERT_EQ(sent.to_pbx.size(), 1u);
  const std::string& forwarded = sent.to_pbx.front();
  auto b_invite = scan(forwarded);
  ASSERT_TRUE(b_invite && b_invite->ok()) << forwarded;
  // The datagram ends where its own Content-Length says: no octet beyond the body.
  std::size_t header_end = forwarded.find("\r\n\r\n") + 4;
  ASSERT_TRUE(b_invite->find(sip::Hdr::ContentLength));
  EXPECT_EQ(b_invite->find(sip::Hdr::ContentLength)->value, std::to_string(forwarded.size() - header_end));
  EXPECT_LE(b_invite->body().size(), original->body().size());
  EXPECT_EQ(forwarded.find("REGISTER"), std::string::npos) << forwarded;
  EXPECT_EQ(forwarded.find("dblreq.0ha0isndaksdj99sdfafnl3lk233412"), std::string::npos);
  EXPECT_FALSE(forwarded.ends_with("LPC\r\n\r\n")) << "the 5 octets beyond Content-Length were relayed";
}

// --- the other corpora: robustness ----------------------------------------------------------

struct CorpusFile {
  std::string path;         // relative to the corpus root
  std::string expectation;  // from the folder's index, when it has one
};

void PrintTo(const CorpusFile& file, std::ostream* os) { *os << file.path; }

std::vector<CorpusFile> robustnessFiles() {
  std::vector<CorpusFile> files;
  std::map<std::string, std::string> rfc5118;
  for (const auto& row : readCorpusIndex("rfc5118/index.tsv")) rfc5118[row["file"]] = row["syntax"];
  for (auto& path : testing::listCorpusFiles("rfc5118/wire", ".dat")) {
    files.push_back({path, rfc5118[path.substr(std::string("rfc5118/").size())]});
  }
  std::map<std::string, std::string> protos;
  for (const auto& row : readCorpusIndex("protos-c07/index.tsv")) protos[row["file"]] = row["group"];
  for (auto& path : testing::listCorpusFiles("protos-c07/cases", ".sip")) {
    files.push_back({path, protos[path.substr(path.rfind('/') + 1)]});
  }
  for (auto& path : testing::listCorpusFiles("captures/seeds/wireshark-samples", ".sip"))
    files.push_back({path, ""});
  return files;
}

class CorpusRobustnessTest : public ::testing::TestWithParam<CorpusFile> {};

TEST_P(CorpusRobustnessTest, AtMostOneAnswerAndOnlySip) {
  const CorpusFile& file = GetParam();
  std::string bytes = readCorpusFile(file.path);
  ASSERT_FALSE(bytes.empty());
  auto message = scan(bytes);

  EngineHarness h;
  Sent sent = deliver(h, bytes);
  EXPECT_TRUE(sent.elsewhere.empty());
  EXPECT_LE(sent.to_source.size(), 1u);
  EXPECT_LE(sent.to_pbx.size(), 1u);
  bool request = message && message->isRequest() && !message->dropped();
  for (const auto& out : sent.to_source) {
    auto m = scan(out);
    ASSERT_TRUE(m) << out;
    EXPECT_FALSE(m->isRequest());
    EXPECT_GE(m->statusCode(), 100) << out;
    // An answer to a well-formed request is well-formed; one to a refused request echoes its
    // faulty fields (RFC 3261 §8.2.6.2).
    if (request && message->ok()) {
      EXPECT_TRUE(m->ok()) << out;
    }
  }
  for (const auto& out : sent.to_pbx) {
    auto m = scan(out);
    ASSERT_TRUE(m) << out;
    EXPECT_TRUE(m->ok()) << m->fault().reason << "\n" << out;  // the PBX only gets clean SIP
  }
  if (!request) {
    EXPECT_TRUE(sent.to_source.empty()) << "answered a response or unreadable datagram";
    EXPECT_TRUE(sent.to_pbx.empty());
  }
  if (!sent.to_pbx.empty()) {
    // Only an accepted INVITE reaches the PBX, and only after 100 Trying.
    ASSERT_TRUE(request);
    EXPECT_TRUE(message->ok());
    EXPECT_EQ(message->method(), sip::Method::Invite);
    ASSERT_EQ(sent.to_source.size(), 1u);
    EXPECT_TRUE(sent.to_source.front().starts_with("SIP/2.0 100 "));
  }
  int status = sent.to_source.empty() ? 0 : std::atoi(sent.to_source.front().c_str() + 8);

  // What each folder's index allows.
  if (file.path.starts_with("rfc5118/")) {
    // §4.10's three-colon form is "valid-tolerate": Palisade tolerates it, as RFC 5118 asks.
    if (file.expectation == "invalid") {
      EXPECT_EQ(status, 400);
    } else {
      EXPECT_NE(status, 400) << "valid RFC 5118 message refused: " << sent.to_source.front();
      EXPECT_NE(status, 0);
    }
  } else if (file.path.starts_with("protos-c07/")) {
    if (file.expectation == "valid") {
      EXPECT_EQ(status, 100);  // case 0: a well-formed INVITE, relayed to the PBX
      EXPECT_EQ(sent.to_pbx.size(), 1u);
    } else {
      EXPECT_TRUE(status == 0 || status == 400 || status == 501) << status;  // "400/501 or drop"
    }
  } else if (request) {
    // Real traffic must parse. The one exception is the Metasploit spoofing INVITE, whose
    // Request-URI "sip:@127.0.0.1" has an empty user part.
    if (file.path.find("metasploit") == std::string::npos) {
      EXPECT_TRUE(message->ok()) << message->fault().reason;
    }
  }
}

std::string fileName(const ::testing::TestParamInfo<CorpusFile>& info) {
  std::string folder = info.param.path.substr(0, info.param.path.find('/'));
  return testName(folder) + "_" + testName(info.param.path);
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusRobustnessTest, ::testing::ValuesIn(robustnessFiles()), fileName);

TEST(CorpusFoldersTest, CoversEveryFolder) {
  auto files = robustnessFiles();
  auto in = [&](std::string_view prefix) {
    return std::count_if(files.begin(), files.end(),
                         [&](const CorpusFile& f) { return f.path.starts_with(prefix); });
  };
  EXPECT_EQ(in("rfc5118/wire/"), 12);
  EXPECT_EQ(in("protos-c07/cases/"), 37);
  EXPECT_EQ(in("captures/seeds/wireshark-samples/"), 44);
}

// One engine takes every corpus message in turn, with time passing, and keeps serving.
TEST(CorpusFoldersTest, OneEngineSurvivesAllCorporaAndKeepsServing) {
  std::vector<std::string> paths;
  for (const auto& row : readCorpusIndex("rfc4475/index.tsv")) paths.push_back("rfc4475/" + row["file"]);
  for (const auto& f : robustnessFiles()) paths.push_back(f.path);
  EngineHarness h;
  for (const auto& path : paths) {
    h.inject(readCorpusFile(path), source());
    h.advance(50);
  }
  h.advance(64 * 500 + 1000);  // past Timer B for every INVITE that the PBX never answered
  EXPECT_EQ(h.engine().activeCalls(), 0u);
  h.clearSent();

  std::string options =
      "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-after-corpus\r\n"
      "From: <sip:monitor@127.0.0.2>;tag=m1\r\nTo: <sip:127.0.0.1:5060>\r\nCall-ID: after-corpus\r\n"
      "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
  Sent sent = deliver(h, options);
  ASSERT_EQ(sent.to_source.size(), 1u);
  EXPECT_TRUE(sent.to_source.front().starts_with("SIP/2.0 200 "));
}

}  // namespace
}  // namespace palisade
