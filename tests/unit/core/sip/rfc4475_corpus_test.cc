// Every RFC 4475 torture message (and the RFC 5118 IPv6 ones) scanned as one UDP datagram,
// with the verdict checked against the corpus index (../shared/corpus/rfc4475/index.tsv).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>

#include "core/sip/message.h"
#include "tests/support/corpus.h"

namespace palisade::sip {
namespace {

using testing::IndexRow;
using testing::readCorpusFile;
using testing::readCorpusIndex;

struct Verdict {
  enum class Kind { Accepted, Refused, Dropped } kind = Kind::Accepted;
  int status = 0;  // for Refused
  bool operator==(const Verdict&) const = default;
};

std::string describe(const Verdict& v) {
  switch (v.kind) {
    case Verdict::Kind::Accepted:
      return "accepted";
    case Verdict::Kind::Refused:
      return "refused " + std::to_string(v.status);
    case Verdict::Kind::Dropped:
      return "dropped";
  }
  return "?";
}

Verdict verdictOf(const Message* m) {
  if (m == nullptr || m->dropped()) return {Verdict::Kind::Dropped, 0};
  if (!m->ok()) return {Verdict::Kind::Refused, m->fault().status};
  return {Verdict::Kind::Accepted, 0};
}

// Where the index leaves a choice, the one Palisade makes, and why it is allowed.
const std::map<std::string, Verdict, std::less<>>& chosenAlternatives() {
  static const std::map<std::string, Verdict, std::less<>> kChoices = {
      // §3.1.2.12: "may reject only if Date matters to it". The Date header is never
      // interpreted by Palisade, so the message is accepted.
      {"baddate.dat", {Verdict::Kind::Accepted, 0}},
  };
  return kChoices;
}

// The verdict the index asks for: valid requests and responses are accepted; invalid and
// semantically wrong requests are refused with 400, or 505 when the index says so; invalid
// responses are dropped (a response is never answered).
Verdict expectedVerdict(const IndexRow& row) {
  auto choice = chosenAlternatives().find(row["file"]);
  if (choice != chosenAlternatives().end()) return choice->second;
  const std::string& syntax = row["syntax"];
  if (row["kind"] == "response") return syntax == "valid" ? Verdict{} : Verdict{Verdict::Kind::Dropped, 0};
  if (syntax == "valid") return {};
  if (row["expected_behaviour"].starts_with("505")) return {Verdict::Kind::Refused, 505};
  return {Verdict::Kind::Refused, 400};
}

std::unique_ptr<Message> scanCorpusFile(const std::string& relative) {
  return Message::parse(readCorpusFile(relative), Limits{}, /*datagram=*/true);
}

std::string testName(const ::testing::TestParamInfo<IndexRow>& info) {
  std::string name = info.param["file"];
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// --- RFC 4475 -------------------------------------------------------------------------------

class Rfc4475ScanTest : public ::testing::TestWithParam<IndexRow> {};

TEST_P(Rfc4475ScanTest, VerdictMatchesIndex) {
  const IndexRow& row = GetParam();
  std::string bytes = readCorpusFile("rfc4475/" + row["file"]);
  ASSERT_EQ(std::to_string(bytes.size()), row["bytes"]) << "corpus file altered (line endings?)";
  auto message = Message::parse(bytes, Limits{}, /*datagram=*/true);
  Verdict expected = expectedVerdict(row);
  Verdict got = verdictOf(message.get());
  EXPECT_EQ(got, expected) << row["file"] << " (" << row["syntax"] << ", " << row["rfc_section"]
                           << "): expected " << describe(expected) << ", got " << describe(got)
                           << (message ? " - " + std::string(message->fault().reason) : std::string())
                           << "\nindex: " << row["expected_behaviour"];
  if (message && row["kind"] == "request" && got.kind != Verdict::Kind::Dropped) {
    // A refused request must still expose what a stateless answer needs.
    EXPECT_TRUE(message->isRequest());
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, Rfc4475ScanTest, ::testing::ValuesIn(readCorpusIndex("rfc4475/index.tsv")),
                         testName);

TEST(Rfc4475IndexTest, CoversTheWholeFolder) {
  auto rows = readCorpusIndex("rfc4475/index.tsv");
  auto files = testing::listCorpusFiles("rfc4475", ".dat");
  EXPECT_EQ(rows.size(), 51u);
  EXPECT_EQ(rows.size(), files.size());
  for (const auto& choice : chosenAlternatives()) {
    const std::string& file = choice.first;
    EXPECT_TRUE(std::any_of(rows.begin(), rows.end(), [&](const IndexRow& r) { return r["file"] == file; }))
        << file;
  }
}

// What the accepted messages must be understood as (the RFC's own explanation of each).
TEST(Rfc4475ScanDetailTest, ShortTortuousInvite) {  // §3.1.1.1
  auto m = scanCorpusFile("rfc4475/wsinv.dat");
  ASSERT_TRUE(m && m->ok());
  EXPECT_EQ(m->method(), Method::Invite);
  EXPECT_EQ(m->cseq(), 9u);
  EXPECT_EQ(m->cseqMethod(), Method::Invite);
  EXPECT_EQ(m->maxForwards(), 68);
  EXPECT_EQ(m->toTag(), "1918181833n");
  EXPECT_EQ(m->fromTag(), "98asjd8");
  EXPECT_EQ(m->from().display, R"("J Rosenberg \\\"")");
  EXPECT_EQ(m->viaCount(), 3u);
  EXPECT_EQ(m->topVia().host, "192.0.2.2");
  EXPECT_EQ(m->topVia().branch, "390skdjuw");
  EXPECT_EQ(m->callId(), "wsinv.ndaksdj@192.0.2.1");
  EXPECT_EQ(m->body().size(), 150u);
}

TEST(Rfc4475ScanDetailTest, WideRangeOfValidCharacters) {  // §3.1.1.2
  auto m = scanCorpusFile("rfc4475/intmeth.dat");
  ASSERT_TRUE(m && m->ok()) << (m ? m->fault().reason : "null");
  EXPECT_EQ(m->method(), Method::Unknown);
  EXPECT_EQ(m->methodText(), "!interesting-Method0123456789_*+`.%indeed'~");
  EXPECT_EQ(m->cseqMethodText(), m->methodText());
  Uri uri;
  ASSERT_TRUE(parseUri(m->requestUri(), uri));
  EXPECT_EQ(uri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
  EXPECT_EQ(uri.host, "example.com");
  EXPECT_EQ(m->fromTag(), "_token~1'+`*%!-.");
  EXPECT_EQ(m->topVia().branch, "z9hG4bK-.!%66*_+`'~");
  EXPECT_EQ(m->callId(), "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
  EXPECT_EQ(m->maxForwards(), 255);
}

TEST(Rfc4475ScanDetailTest, EscapesAreNotDecoded) {  // §3.1.1.3 - §3.1.1.5
  auto m = scanCorpusFile("rfc4475/esc01.dat");
  ASSERT_TRUE(m && m->ok());
  Uri uri;
  ASSERT_TRUE(parseUri(m->requestUri(), uri));
  EXPECT_EQ(uri.user, "sips%3Auser%40example.com");
  EXPECT_EQ(uri.host, "example.net");

  m = scanCorpusFile("rfc4475/escnull.dat");
  ASSERT_TRUE(m && m->ok());
  EXPECT_EQ(m->count(Hdr::Contact), 2u);

  m = scanCorpusFile("rfc4475/esc02.dat");
  ASSERT_TRUE(m && m->ok());
  EXPECT_EQ(m->method(), Method::Unknown);  // RE%47IST%45R is not REGISTER
  EXPECT_EQ(m->methodText(), "RE%47IST%45R");
  EXPECT_EQ(m->count(Hdr::Contact), 2u);  // C%6Fntact, between them, is an extension header
  EXPECT_EQ(m->from().display, "\"%Z%45\"");
}

TEST(Rfc4475ScanDetailTest, NoSpaceBeforeBracket) {  // §3.1.1.6
  auto m = scanCorpusFile("rfc4475/lwsdisp.dat");
  ASSERT_TRUE(m && m->ok());
  EXPECT_EQ(m->from().display, "caller");
  EXPECT_EQ(m->from().uri, "sip:caller@example.com");
}

TEST(Rfc4475ScanDetailTest, LongValues) {  // §3.1.1.7
  auto m = scanCorpusFile("rfc4475/longreq.dat");
  ASSERT_TRUE(m && m->ok());
  EXPECT_EQ(m->viaCount(), 34u);
  EXPECT_GT(m->fromTag().size(), 100u);
  EXPECT_GT(m->callId().size(), 100u);
  EXPECT_GT(m->to().display.size(), 100u);
}

TEST(Rfc4475ScanDetailTest, ExtraTrailingOctetsAreNotPartOfTheMessage) {  // §3.1.1.8
  std::string bytes = readCorpusFile("rfc4475/dblreq.dat");
  auto m = Message::parse(bytes, Limits{}, true);
  ASSERT_TRUE(m && m->ok());
  EXPECT_EQ(m->method(), Method::Register);
  EXPECT_EQ(m->callId(), "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
  EXPECT_TRUE(m->body().empty());
  EXPECT_EQ(m->count(Hdr::To), 1u);  // the trailing INVITE's "t:" is not a field of this message
  EXPECT_EQ(m->raw(), bytes);        // kept, but never part of a field or the body
}

TEST(Rfc4475ScanDetailTest, SemicolonsInUserPart) {  // §3.1.1.9
  auto m = scanCorpusFile("rfc4475/semiuri.dat");
  ASSERT_TRUE(m && m->ok());
  Uri uri;
  ASSERT_TRUE(parseUri(m->requestUri(), uri));
  EXPECT_EQ(uri.user, "user;par=u%40example.net");
  EXPECT_EQ(uri.host, "example.com");
  EXPECT_TRUE(uri.params.empty());
}

TEST(Rfc4475ScanDetailTest, UnknownTransports) {  // §3.1.1.10
  auto m = scanCorpusFile("rfc4475/transports.dat");
  ASSERT_TRUE(m && m->ok());
  EXPECT_EQ(m->viaCount(), 5u);
  EXPECT_EQ(m->topVia().transport, "UDP");
  EXPECT_EQ(m->topVia().host, "t1.example.com");
}

TEST(Rfc4475ScanDetailTest, MultipartBodyFramedByContentLength) {  // §3.1.1.11
  auto m = scanCorpusFile("rfc4475/mpart01.dat");
  ASSERT_TRUE(m && m->ok());
  EXPECT_EQ(m->method(), Method::Message);
  const HeaderField* cl = m->find(Hdr::ContentLength);
  ASSERT_TRUE(cl);
  EXPECT_EQ(std::to_string(m->body().size()), cl->value);
  EXPECT_NE(m->body().find('\0'), std::string_view::npos);
  EXPECT_EQ(m->body().data() + m->body().size(), m->raw().data() + m->raw().size());
}

TEST(Rfc4475ScanDetailTest, UnusualAndEmptyReasonPhrases) {  // §3.1.1.12, §3.1.1.13
  auto m = scanCorpusFile("rfc4475/unreason.dat");
  ASSERT_TRUE(m && m->ok());
  EXPECT_EQ(m->statusCode(), 200);
  EXPECT_TRUE(m->reasonPhrase().starts_with("= 2**3 * 5**2"));
  m = scanCorpusFile("rfc4475/noreason.dat");
  ASSERT_TRUE(m && m->ok());
  EXPECT_EQ(m->statusCode(), 100);
  EXPECT_TRUE(m->reasonPhrase().empty());
}

TEST(Rfc4475ScanDetailTest, RefusedRequestsKeepWhatTheAnswerNeeds) {
  auto m = scanCorpusFile("rfc4475/badvers.dat");  // §3.1.2.16
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 505);
  EXPECT_EQ(m->viaCount(), 1u);
  EXPECT_EQ(m->topVia().branch, "z9hG4bKkdjuw");
  EXPECT_EQ(m->callId(), "badvers.31417@c.example.com");

  m = scanCorpusFile("rfc4475/scalar02.dat");  // §3.1.2.4
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
  EXPECT_EQ(m->viaCount(), 1u);

  m = scanCorpusFile("rfc4475/badinv01.dat");  // §3.1.2.1: the Via itself is the fault
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
  EXPECT_EQ(m->viaCount(), 0u);
}

TEST(Rfc4475ScanDetailTest, Rfc2543Invite) {  // §3.4.1
  auto m = scanCorpusFile("rfc4475/inv2543.dat");
  ASSERT_TRUE(m && m->ok());
  EXPECT_TRUE(m->topVia().branch.empty());
  EXPECT_TRUE(m->fromTag().empty());
  EXPECT_EQ(m->maxForwards(), -1);
  EXPECT_EQ(m->find(Hdr::ContentLength), nullptr);
  EXPECT_EQ(m->body().data() + m->body().size(), m->raw().data() + m->raw().size());  // the rest
  EXPECT_FALSE(m->body().empty());
}

// --- RFC 5118 (the sendable wire/ forms) ----------------------------------------------------

class Rfc5118ScanTest : public ::testing::TestWithParam<IndexRow> {};

TEST_P(Rfc5118ScanTest, VerdictMatchesIndex) {
  const IndexRow& row = GetParam();
  std::string bytes = readCorpusFile("rfc5118/" + row["file"]);
  ASSERT_EQ(std::to_string(bytes.size()), row["bytes"]);
  auto message = Message::parse(bytes, Limits{}, true);
  Verdict got = verdictOf(message.get());
  const std::string& syntax = row["syntax"];
  // §4.10 "valid-tolerate": both readings are allowed (RFC 5954 corrected the ABNF). The
  // scanner does not validate the inside of an IPv6 reference, so it tolerates the
  // three-colon form, as RFC 5118 asks.
  Verdict expected = syntax == "invalid" ? Verdict{Verdict::Kind::Refused, 400} : Verdict{};
  EXPECT_EQ(got, expected) << row["file"] << ": expected " << describe(expected) << ", got " << describe(got)
                           << (message ? " - " + std::string(message->fault().reason) : std::string());
}

std::vector<IndexRow> rfc5118WireRows() {
  std::vector<IndexRow> rows;
  for (auto& row : readCorpusIndex("rfc5118/index.tsv")) {
    if (row["file"].starts_with("wire/")) rows.push_back(row);
  }
  return rows;
}

INSTANTIATE_TEST_SUITE_P(Corpus, Rfc5118ScanTest, ::testing::ValuesIn(rfc5118WireRows()), testName);

TEST(Rfc5118ScanDetailTest, Ipv6References) {
  auto m = scanCorpusFile("rfc5118/wire/port-ambiguous.dat");  // §4.3
  ASSERT_TRUE(m && m->ok());
  Uri uri;
  ASSERT_TRUE(parseUri(m->requestUri(), uri));
  EXPECT_EQ(uri.host, "2001:db8::10:5070");
  EXPECT_EQ(uri.port, 0);

  m = scanCorpusFile("rfc5118/wire/port-unambiguous.dat");  // §4.4
  ASSERT_TRUE(m && m->ok());
  ASSERT_TRUE(parseUri(m->requestUri(), uri));
  EXPECT_EQ(uri.host, "2001:db8::10");
  EXPECT_EQ(uri.port, 5070);

  m = scanCorpusFile("rfc5118/wire/via-received-param-no-delim.dat");  // §4.5
  ASSERT_TRUE(m && m->ok());
  EXPECT_EQ(m->topVia().received, "2001:db8::9:255");
  EXPECT_EQ(m->topVia().branch, "z9hG4bKas3");

  m = scanCorpusFile("rfc5118/wire/mult-ip-in-header.dat");  // §4.7
  ASSERT_TRUE(m && m->ok());
  EXPECT_EQ(m->viaCount(), 3u);
  EXPECT_EQ(m->topVia().host, "2001:db8::9:1");
  EXPECT_EQ(m->topVia().port, 6050);
}

}  // namespace
}  // namespace palisade::sip
