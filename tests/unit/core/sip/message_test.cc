// The scanner (RFC 3261 §7, §18.3).
#include "core/sip/message.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>

namespace palisade::sip {
namespace {

constexpr std::string_view kHeaders =
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1;rport\r\n"
    "From: \"Alice\" <sip:alice@example.com>;tag=from-1\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: call-1@192.0.2.1\r\n"
    "CSeq: 7 INVITE\r\n"
    "Max-Forwards: 70\r\n";

// An INVITE made of `headers` (the mandatory ones by default), `extra` header lines and `tail`
// (what follows the header fields: "\r\n" + body in the common case).
std::string invite(std::string_view extra = {}, std::string_view tail = "\r\n",
                   std::string_view headers = kHeaders) {
  return fmt::format("INVITE sip:bob@example.com SIP/2.0\r\n{}{}{}", headers, extra, tail);
}

std::unique_ptr<Message> datagram(const std::string& bytes, const Limits& limits = Limits{}) {
  return Message::parse(bytes, limits, true);
}

std::unique_ptr<Message> streamed(const std::string& bytes, const Limits& limits = Limits{}) {
  return Message::parse(bytes, limits, false);
}

// --- start lines ----------------------------------------------------------------------------

TEST(MessageTest, RequestLineAndTransactionKey) {
  auto m = datagram(invite("Content-Length: 0\r\n"));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_TRUE(m->isRequest());
  EXPECT_EQ(m->method(), Method::Invite);
  EXPECT_EQ(m->methodText(), "INVITE");
  EXPECT_EQ(m->requestUri(), "sip:bob@example.com");
  EXPECT_EQ(m->statusCode(), 0);
  EXPECT_EQ(m->callId(), "call-1@192.0.2.1");
  EXPECT_EQ(m->cseq(), 7u);
  EXPECT_EQ(m->cseqMethod(), Method::Invite);
  EXPECT_EQ(m->cseqMethodText(), "INVITE");
  EXPECT_EQ(m->fromTag(), "from-1");
  EXPECT_TRUE(m->toTag().empty());
  EXPECT_EQ(m->from().display, "\"Alice\"");
  EXPECT_EQ(m->to().uri, "sip:bob@example.com");
  EXPECT_EQ(m->topVia().branch, "z9hG4bK-1");
  EXPECT_EQ(m->viaCount(), 1u);
  EXPECT_EQ(m->maxForwards(), 70);
  EXPECT_TRUE(m->body().empty());
}

TEST(MessageTest, StatusLine) {
  auto m = datagram(fmt::format("SIP/2.0 180 Ringing Now\r\n{}Content-Length: 0\r\n\r\n", kHeaders));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok());
  EXPECT_FALSE(m->isRequest());
  EXPECT_EQ(m->statusCode(), 180);
  EXPECT_EQ(m->reasonPhrase(), "Ringing Now");
  EXPECT_EQ(m->method(), Method::Unknown);
  EXPECT_EQ(m->cseqMethod(), Method::Invite);

  // RFC 4475 §3.1.1.13: an empty reason phrase, the SP after the code still present.
  m = datagram(fmt::format("SIP/2.0 100 \r\n{}Content-Length: 0\r\n\r\n", kHeaders));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok());
  EXPECT_EQ(m->statusCode(), 100);
  EXPECT_EQ(m->reasonPhrase(), "");
}

TEST(MessageTest, MalformedStatusLinesAreDropped) {
  for (const char* line :
       {"SIP/2.0 100", "SIP/2.0 4294967301 better not break the receiver", "SIP/2.0 099 Low",
        "SIP/2.0 700 High", "SIP/2.0 1000 Long", "SIP/2.0 2x0 Bad", "SIP/2.0  200 Space"}) {
    auto m = datagram(fmt::format("{}\r\n{}Content-Length: 0\r\n\r\n", line, kHeaders));
    ASSERT_TRUE(m) << line;
    EXPECT_FALSE(m->isRequest()) << line;
    EXPECT_TRUE(m->dropped()) << line;
    EXPECT_FALSE(m->ok()) << line;
    EXPECT_EQ(m->fault().status, 0) << line;
  }
}

TEST(MessageTest, OversizedResponseWithBadStatusLineIsDroppedWithoutStatus) {
  Limits limits;
  limits.max_message_bytes = 1024;
  auto m = datagram(
      fmt::format("SIP/2.0 200\xffW OK\r\n{}Content-Length: 0\r\n\r\n{}", kHeaders, std::string(1024, 'x')),
      limits);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->dropped());
  EXPECT_EQ(m->fault().status, 0);
}

TEST(MessageTest, FaultyResponsesAreDroppedWithoutStatus) {
  // RFC 4475 §3.1.2.5: a response with overlarge scalars is discarded, never answered.
  auto m = datagram(
      "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
      "To: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 4294967296 INVITE\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->dropped());
  EXPECT_EQ(m->fault().status, 0);
  m = datagram(fmt::format("SIP/3.0 200 OK\r\n{}Content-Length: 0\r\n\r\n", kHeaders));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->dropped());
}

TEST(MessageTest, UnknownMethodsAndCaseSensitivity) {
  std::string headers(kHeaders);
  headers.replace(headers.find("7 INVITE"), 8, "7 invite");
  auto m =
      datagram(fmt::format("invite sip:bob@example.com SIP/2.0\r\n{}Content-Length: 0\r\n\r\n", headers));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->method(), Method::Unknown);  // method names are case-sensitive (RFC 3261 §7.1)
  EXPECT_EQ(m->methodText(), "invite");

  EXPECT_EQ(methodFromName("REGISTER"), Method::Register);
  EXPECT_EQ(methodFromName("PUBLISH"), Method::Publish);
  EXPECT_EQ(methodFromName("RE%47IST%45R"), Method::Unknown);  // RFC 4475 §3.1.1.5
  EXPECT_EQ(methodFromName(""), Method::Unknown);
  EXPECT_EQ(methodName(Method::Options), "OPTIONS");
  EXPECT_EQ(methodName(Method::Unknown), "");
}

TEST(MessageTest, NotAStartLine) {
  EXPECT_EQ(datagram(""), nullptr);
  EXPECT_EQ(datagram("\r\n\r\n"), nullptr);
  EXPECT_EQ(datagram("INVITE"), nullptr);                    // no line end
  EXPECT_EQ(datagram("INVITE\r\n\r\n"), nullptr);            // no SP
  EXPECT_EQ(datagram(" sip:a@b SIP/2.0\r\n\r\n"), nullptr);  // empty method
}

TEST(MessageTest, MalformedRequestLines) {
  struct Case {
    const char* line;
    int status;
  };
  for (const Case& c :
       {Case{"INVITE sip:bob@example.com", 400},              // no version
        Case{"INVITE  sip:bob@example.com SIP/2.0", 400},     // RFC 4475 §3.1.2.9
        Case{"INVITE sip:bob@example.com SIP/2.0 ", 400},     // RFC 4475 §3.1.2.10
        Case{"INVITE sip:bob@example.com; lr SIP/2.0", 400},  // RFC 4475 §3.1.2.8
        Case{"INVITE <sip:bob@example.com> SIP/2.0", 400},    // RFC 4475 §3.1.2.7
        Case{"INVITE sip:bob@example.com HTTP/1.1", 400}, Case{"INVITE sip:bob@example.com SIP/2", 400},
        Case{"INVITE sip:bob@example.com SIP/2.x", 400},
        Case{"INVITE sip:bob@example.com SIP/7.0", 505},  // RFC 4475 §3.1.2.16
        Case{"INVITE sip:bob@example.com SIP/20.01", 505},
        Case{"INVITE sip:bob@example.com?Route=%3Csip:x%3E SIP/2.0", 400},  // §3.1.2.11
        Case{"INV(TE sip:bob@example.com SIP/2.0", 400}}) {
    auto m = datagram(fmt::format("{}\r\n{}Content-Length: 0\r\n\r\n", c.line, kHeaders));
    ASSERT_TRUE(m) << c.line;
    EXPECT_TRUE(m->isRequest()) << c.line;
    EXPECT_FALSE(m->ok()) << c.line;
    EXPECT_FALSE(m->dropped()) << c.line;
    EXPECT_EQ(m->fault().status, c.status) << c.line << ": " << m->fault().reason;
    EXPECT_EQ(m->viaCount(), 1u) << c.line;  // enough was scanned to answer
  }
  // Version names are case-insensitive.
  auto m =
      datagram(fmt::format("INVITE sip:bob@example.com sip/2.0\r\n{}Content-Length: 0\r\n\r\n", kHeaders));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok());
}

TEST(MessageTest, TelRequestUriMayCarryAnything) {
  auto m = datagram(fmt::format(
      "INVITE tel:+1-201-555-0123;phone-context=example.com SIP/2.0\r\n{}Content-Length: 0\r\n\r\n",
      kHeaders));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->requestUri(), "tel:+1-201-555-0123;phone-context=example.com");
}

TEST(MessageTest, LeadingLineEndsAreSkipped) {
  auto m = datagram("\r\n\r\n\n" + invite("Content-Length: 0\r\n"));  // RFC 3261 §7.5
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok());
  EXPECT_EQ(m->method(), Method::Invite);
}

TEST(MessageTest, BareLineFeedsAreAccepted) {
  std::string bytes = invite("Content-Length: 4\r\n", "\r\nbody");
  std::string lf;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n') continue;
    lf.push_back(bytes[i]);
  }
  auto m = datagram(lf);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->callId(), "call-1@192.0.2.1");
  EXPECT_EQ(m->body(), "body");
}

// --- header fields --------------------------------------------------------------------------

TEST(MessageTest, HeaderNamesLongCompactAndAnyCase) {
  EXPECT_EQ(headerIdFromName("Via"), Hdr::Via);
  EXPECT_EQ(headerIdFromName("v"), Hdr::Via);
  EXPECT_EQ(headerIdFromName("V"), Hdr::Via);
  EXPECT_EQ(headerIdFromName("f"), Hdr::From);
  EXPECT_EQ(headerIdFromName("t"), Hdr::To);
  EXPECT_EQ(headerIdFromName("i"), Hdr::CallId);
  EXPECT_EQ(headerIdFromName("CALL-ID"), Hdr::CallId);
  EXPECT_EQ(headerIdFromName("m"), Hdr::Contact);
  EXPECT_EQ(headerIdFromName("l"), Hdr::ContentLength);
  EXPECT_EQ(headerIdFromName("c"), Hdr::ContentType);
  EXPECT_EQ(headerIdFromName("k"), Hdr::Supported);
  EXPECT_EQ(headerIdFromName("mAX-fOrWaRdS"), Hdr::MaxForwards);
  EXPECT_EQ(headerIdFromName("Proxy-Require"), Hdr::ProxyRequire);
  EXPECT_EQ(headerIdFromName("Record-Route"), Hdr::RecordRoute);
  EXPECT_EQ(headerIdFromName("Content-Lengthy"), Hdr::Other);
  EXPECT_EQ(headerIdFromName("C%6Fntact"), Hdr::Other);  // RFC 4475 §3.1.1.5
  EXPECT_EQ(headerIdFromName("s"), Hdr::Other);          // Subject: not indexed
  EXPECT_EQ(headerIdFromName(""), Hdr::Other);
  EXPECT_EQ(headerIdFromName("a-very-long-header-name-indeed"), Hdr::Other);
}

TEST(MessageTest, CompactFormsInAMessage) {
  auto m = datagram(
      "OPTIONS sip:bob@example.com SIP/2.0\r\n"
      "v: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK-c\r\n"
      "f: <sip:alice@example.com>;tag=f\r\n"
      "t: sip:bob@example.com;tag=t\r\n"
      "i: compact@192.0.2.1\r\n"
      "CSeq: 1 OPTIONS\r\n"
      "m: <sip:alice@192.0.2.1>\r\n"
      "k: timer\r\n"
      "c: text/plain\r\n"
      "l: 5\r\n\r\nhello");
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->topVia().transport, "TCP");
  EXPECT_EQ(m->fromTag(), "f");
  EXPECT_EQ(m->toTag(), "t");
  EXPECT_EQ(m->callId(), "compact@192.0.2.1");
  EXPECT_EQ(m->body(), "hello");
  EXPECT_EQ(m->count(Hdr::Supported), 1u);
  ASSERT_TRUE(m->find(Hdr::ContentType));
  EXPECT_EQ(m->find(Hdr::ContentType)->value, "text/plain");
  EXPECT_EQ(m->find(Hdr::ContentType)->name, "c");
  NameAddr contact;
  ASSERT_TRUE(m->firstContact(contact));
  EXPECT_EQ(contact.uri, "sip:alice@192.0.2.1");
}

TEST(MessageTest, FieldsKeepTheirPositionsAndValuesAreTrimmed) {
  std::string bytes = invite("Subject:   lunch?  \r\nX-Empty:\r\nX-Spaced :\tvalue\r\nContent-Length: 0\r\n");
  auto m = datagram(bytes);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->raw(), bytes);  // the received bytes are never modified
  const HeaderField* subject = nullptr;
  const HeaderField* empty = nullptr;
  const HeaderField* spaced = nullptr;
  for (const auto& h : m->headers()) {
    if (h.name == "Subject") subject = &h;
    if (h.name == "X-Empty") empty = &h;
    if (h.name == "X-Spaced") spaced = &h;
  }
  ASSERT_TRUE(subject && empty && spaced);
  EXPECT_EQ(subject->id, Hdr::Other);
  EXPECT_EQ(subject->value, "lunch?");
  EXPECT_EQ(bytes.substr(subject->begin, subject->end - subject->begin), "Subject:   lunch?  \r\n");
  EXPECT_EQ(empty->value, "");
  EXPECT_EQ(spaced->value, "value");
  EXPECT_EQ(m->headers().size(), 10u);
  EXPECT_EQ(m->find(Hdr::Route), nullptr);
  EXPECT_EQ(m->count(Hdr::Route), 0u);
}

TEST(MessageTest, FoldedHeaderFields) {
  std::string headers =
      "Via: SIP/2.0/UDP 192.0.2.1;\r\n branch=z9hG4bK-f\r\n"
      "From: <sip:alice@example.com>\r\n\t;tag=from-f\r\n"
      "To:\r\n <sip:bob@example.com>\r\n"
      "Call-ID: folded@192.0.2.1\r\n"
      "CSeq: 0009\r\n  INVITE\r\n";  // RFC 4475 §3.1.1.1
  std::string bytes = invite("Subject: one\r\n two\r\n\t three\r\nContent-Length: 0\r\n", "\r\n", headers);
  auto m = datagram(bytes);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->topVia().branch, "z9hG4bK-f");
  EXPECT_EQ(m->fromTag(), "from-f");
  EXPECT_EQ(m->to().uri, "sip:bob@example.com");
  EXPECT_EQ(m->cseq(), 9u);
  EXPECT_EQ(m->cseqMethod(), Method::Invite);
  const HeaderField* subject = nullptr;
  for (const auto& h : m->headers()) {
    if (h.name == "Subject") subject = &h;
  }
  ASSERT_TRUE(subject);
  EXPECT_EQ(subject->value, "one\r\n two\r\n\t three");
  EXPECT_EQ(bytes.substr(subject->begin, subject->end - subject->begin),
            "Subject: one\r\n two\r\n\t three\r\n");
  EXPECT_EQ(m->headers().size(), 7u);
}

TEST(MessageTest, FoldedLineWithoutAFieldIsRejected) {
  auto m = datagram(std::string("OPTIONS sip:bob@example.com SIP/2.0\r\n continued\r\n") +
                    std::string(kHeaders) + "Content-Length: 0\r\n\r\n");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
}

TEST(MessageTest, MalformedHeaderLines) {
  for (const char* line : {"NoColonHere", ": no name", "Bad Name: x", "Bad(Name): x", "Via\r: x"}) {
    auto m = datagram(invite(std::string(line) + "\r\nContent-Length: 0\r\n"));
    ASSERT_TRUE(m) << line;
    EXPECT_EQ(m->fault().status, 400) << line;
  }
  // LWS between the name and the colon is allowed (RFC 3261 §7.3.1).
  auto m = datagram(invite("Subject \t: x\r\nContent-Length: 0\r\n"));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok()) << m->fault().reason;
}

TEST(MessageTest, HeaderSectionMustBeClosed) {
  auto m = datagram(invite("Content-Length: 0\r\n", ""));  // RFC 4475 §3.1.2.15 (baddn.dat)
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
  EXPECT_EQ(m->viaCount(), 1u);
}

TEST(MessageTest, ViaListsAcrossFieldsAndCommas) {
  std::string headers(kHeaders);
  headers +=
      "Via: SIP/2.0/TCP [2001:db8::9:1]:6050;branch=z9hG4bK-2 , SIP/2.0/UDP 192.0.2.3;branch=z9hG4bK-3\r\n";
  headers += "v: SIP/2.0/TLS example.org;branch=z9hG4bK-4\r\n";
  auto m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->viaCount(), 4u);
  EXPECT_EQ(m->count(Hdr::Via), 3u);
  EXPECT_EQ(m->topVia().host, "192.0.2.1");
  EXPECT_EQ(m->topVia().branch, "z9hG4bK-1");
  EXPECT_TRUE(m->topVia().has_rport);
}

TEST(MessageTest, Ipv6TopVia) {
  std::string headers(kHeaders);
  headers.replace(0, headers.find("\r\n"),
                  "Via: SIP/2.0/UDP [2001:db8::9:1]:5070;received=2001:db8::9:255;branch=z9hG4bKas3");
  auto m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->topVia().host, "2001:db8::9:1");
  EXPECT_EQ(m->topVia().port, 5070);
  EXPECT_EQ(m->topVia().received, "2001:db8::9:255");
  EXPECT_EQ(m->topVia().branch, "z9hG4bKas3");
}

TEST(MessageTest, MalformedOrMissingVia) {
  std::string headers(kHeaders);
  headers.replace(0, headers.find("\r\n"), "Via: SIP/2.0/UDP 192.0.2.15;;,;,,");  // RFC 4475 §3.1.2.1
  auto m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
  EXPECT_EQ(m->viaCount(), 0u);  // no Via to answer to

  headers = std::string(kHeaders).substr(std::string(kHeaders).find("\r\n") + 2);
  m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
  EXPECT_EQ(m->viaCount(), 0u);
}

TEST(MessageTest, TopViaComesFromTheFirstViaField) {
  // A malformed first Via must not let a later field pose as the top Via: answers are
  // addressed by the top Via (RFC 3261 §18.2.2).
  std::string headers(kHeaders);
  headers.replace(0, headers.find("\r\n"), "Via: SIP/2.0/UDP02:1[ 0db8::9:1]:6050;branch=z9hG4bKas3");
  headers += "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKjhja\r\n";
  auto m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
  EXPECT_EQ(m->viaCount(), 0u);
  EXPECT_TRUE(m->topVia().text.empty());

  // A malformed Via further down keeps the ones above it.
  headers = std::string(kHeaders) +
            "Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK2, junk\r\nVia: SIP/2.0/UDP 192.0.2.3\r\n";
  m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
  EXPECT_EQ(m->viaCount(), 2u);
  EXPECT_EQ(m->topVia().branch, "z9hG4bK-1");

  m = datagram(invite("Via:\r\nContent-Length: 0\r\n"));  // an empty Via field
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
}

TEST(MessageTest, ContactLists) {
  auto m = datagram(invite(
      "Contact: \"Joe, \\\"Jr\\\"\" <sip:joe@192.0.2.4>;expires=60, <sip:joe@[2001:db8::4]:5070>;q=0.5\r\n"
      "Contact: sip:joe@example.org\r\nContent-Length: 0\r\n"));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  NameAddr contact;
  ASSERT_TRUE(m->firstContact(contact));
  EXPECT_EQ(contact.display, "\"Joe, \\\"Jr\\\"\"");
  EXPECT_EQ(contact.uri, "sip:joe@192.0.2.4");
  EXPECT_EQ(contact.params, ";expires=60");
  EXPECT_EQ(m->count(Hdr::Contact), 2u);
}

TEST(MessageTest, StarContact) {
  std::string headers(kHeaders);
  headers.replace(headers.find("7 INVITE"), 8, "7 REGISTER");
  auto m = datagram(fmt::format(
      "REGISTER sip:example.com SIP/2.0\r\n{}Contact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n",
      headers));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  NameAddr contact;
  EXPECT_FALSE(m->firstContact(contact));
  m = datagram(invite("Content-Length: 0\r\n"));
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->firstContact(contact));  // absent
}

TEST(MessageTest, MalformedContactsAreRejectedInRequests) {
  for (const char* contact :
       {"sip:user@example.com?Route=%3Csip:example.com%3E",  // RFC 4475 §3.1.2.13
        "\"Joe\" <sip:joe@example.org>;;;;", "<sip:a@example.com>, ,<sip:b@example.com>",
        "Bell, Alexander <sip:a@example.com>"}) {
    auto m = datagram(invite(fmt::format("Contact: {}\r\nContent-Length: 0\r\n", contact)));
    ASSERT_TRUE(m) << contact;
    EXPECT_EQ(m->fault().status, 400) << contact;
  }
}

TEST(MessageTest, TagsAndUnusualToFrom) {
  std::string headers(kHeaders);
  headers.replace(headers.find("To: <sip:bob@example.com>"), 25, "To: sip:bob@example.com ;  TAG = to-9");
  auto m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->toTag(), "to-9");
  EXPECT_EQ(m->fromTag(), "from-1");

  // Unknown schemes in To/From still parse (RFC 4475 §3.3.4).
  headers = std::string(kHeaders);
  headers.replace(headers.find("To: <sip:bob@example.com>"), 25, "To: <http://www.example.com>");
  m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok()) << m->fault().reason;

  // An unterminated quote in To (RFC 4475 §3.1.2.6).
  headers = std::string(kHeaders);
  headers.replace(headers.find("To: <sip:bob@example.com>"), 25,
                  "To: \"Mr. J. User <sip:j.user@example.com>");
  m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
}

// --- single-valued fields -------------------------------------------------------------------

TEST(MessageTest, CSeqLimits) {
  auto withCseq = [](std::string_view cseq) {
    std::string headers(kHeaders);
    headers.replace(headers.find("CSeq: 7 INVITE"), 14, fmt::format("CSeq: {}", cseq));
    return datagram(invite("Content-Length: 0\r\n", "\r\n", headers));
  };
  auto m = withCseq("4294967295 INVITE");  // 2^32-1: the largest legal value (RFC 3261 §8.1.1.5)
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->cseq(), 4294967295u);
  m = withCseq("0 INVITE");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok());
  EXPECT_EQ(m->cseq(), 0u);
  m = withCseq("1\tINVITE");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok());

  for (const char* bad : {"4294967296 INVITE",  // RFC 4475 §3.1.2.4
                          "36893488147419103232 INVITE", "-1 INVITE", "+1 INVITE", "1", "INVITE", "1 OPTIONS",
                          "1 invite", "x1 INVITE", "1 INVITE extra"}) {
    m = withCseq(bad);
    ASSERT_TRUE(m) << bad;
    EXPECT_EQ(m->fault().status, 400) << bad;
  }
}

TEST(MessageTest, SingleValuedFieldsMustNotRepeat) {
  // RFC 4475 §3.3.8.
  for (const char* extra :
       {"CSeq: 8 INVITE\r\n", "From: <sip:x@example.com>;tag=2\r\n", "To: <sip:y@example.com>\r\n",
        "Call-ID: other\r\n", "Max-Forwards: 69\r\n", "i: other\r\n"}) {
    auto m = datagram(invite(std::string(extra) + "Content-Length: 0\r\n"));
    ASSERT_TRUE(m) << extra;
    EXPECT_EQ(m->fault().status, 400) << extra;
  }
  // The same Call-ID twice is harmless.
  auto m = datagram(invite("Call-ID: call-1@192.0.2.1\r\nContent-Length: 0\r\n"));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok()) << m->fault().reason;
}

TEST(MessageTest, MissingMandatoryFields) {
  for (const char* name : {"From:", "To:", "Call-ID:", "CSeq:"}) {
    std::string headers(kHeaders);
    std::size_t at = headers.find(name);
    headers.erase(at, headers.find("\r\n", at) + 2 - at);
    auto m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers));
    ASSERT_TRUE(m) << name;
    EXPECT_EQ(m->fault().status, 400) << name;
  }
  auto m = datagram(invite(
      "Call-ID:\r\nContent-Length: 0\r\n", "\r\n",
      "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCSeq: 1 INVITE\r\n"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);  // empty Call-ID
}

TEST(MessageTest, MaxForwards) {
  std::string headers(kHeaders);
  headers.erase(headers.find("Max-Forwards"));
  auto m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok());
  EXPECT_EQ(m->maxForwards(), -1);  // absent (RFC 2543 style, RFC 4475 §3.4.1)

  m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers + "Max-Forwards: 0\r\n"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->maxForwards(), 0);
  m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers + "Max-Forwards: 0068\r\n"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->maxForwards(), 68);
  // Above 255 is clamped (RFC 4475 §3.1.2.4 allows treating it as absent or at most 255).
  m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers + "Max-Forwards: 300\r\n"));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok());
  EXPECT_EQ(m->maxForwards(), 255);
  for (const char* bad :
       {"Max-Forwards: -1\r\n", "Max-Forwards: seventy\r\n", "Max-Forwards: 99999999999\r\n"}) {
    m = datagram(invite("Content-Length: 0\r\n", "\r\n", headers + bad));
    ASSERT_TRUE(m) << bad;
    EXPECT_EQ(m->fault().status, 400) << bad;
  }
}

// --- Content-Length and bodies --------------------------------------------------------------

TEST(MessageTest, DatagramWithoutContentLengthTakesTheRest) {
  auto m = datagram(invite("", "\r\nv=0\r\nrest of datagram"));  // RFC 3261 §18.3, RFC 4475 §3.4.1
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->body(), "v=0\r\nrest of datagram");
}

TEST(MessageTest, DatagramContentLengthLargerThanBodyIsRejected) {
  auto m = datagram(invite("Content-Length: 9999\r\n", "\r\nshort"));  // RFC 4475 §3.1.2.2
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
  m = datagram(invite("Content-Length: 6\r\n", "\r\nshort"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
}

TEST(MessageTest, DatagramBytesBeyondContentLengthAreIgnored) {
  auto m = datagram(invite("Content-Length: 4\r\n", "\r\nbodyINVITE sip:junk SIP/2.0\r\n\r\n"));  // §3.1.1.8
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->body(), "body");
  m = datagram(invite("l: 0\r\n", "\r\n\r\nmore"));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok());
  EXPECT_EQ(m->body(), "");
}

TEST(MessageTest, BadContentLengths) {
  for (const char* cl : {"Content-Length: -999\r\n",  // RFC 4475 §3.1.2.3
                         "Content-Length: 0x10\r\n", "Content-Length:\r\n", "Content-Length: 1 2\r\n",
                         "Content-Length: 99999999999999999999\r\n",
                         "Content-Length: 0\r\nContent-Length: 4\r\n",  // RFC 4475 §3.3.9
                         "l: 4\r\nContent-Length: 0\r\n"}) {
    auto m = datagram(invite(cl, "\r\nbody"));
    ASSERT_TRUE(m) << cl;
    EXPECT_EQ(m->fault().status, 400) << cl;
  }
  // The same value twice frames the same way.
  auto m = datagram(invite("Content-Length: 4\r\nl: 4\r\n", "\r\nbody"));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok()) << m->fault().reason;
}

TEST(MessageTest, BodyWithBinaryBytes) {
  std::string body("\0\x01\xff\r\n\n--", 8);
  auto m = datagram(invite(fmt::format("Content-Length: {}\r\n", body.size()), "\r\n" + body));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok());
  EXPECT_EQ(m->body(), body);
}

TEST(MessageTest, StreamMessagesNeedContentLength) {
  auto m = streamed(invite("", "\r\n"));  // RFC 3261 §18.3
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
  m = streamed(invite("Content-Length: 4\r\n", "\r\nbody"));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok());
  EXPECT_EQ(m->body(), "body");
}

// --- limits ---------------------------------------------------------------------------------

TEST(MessageTest, MaxHeaders) {
  Limits limits;
  limits.max_headers = 8;
  auto m = datagram(invite("X-A: 1\r\nContent-Length: 0\r\n"), limits);  // 8 fields
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok()) << m->fault().reason;
  m = datagram(invite("X-A: 1\r\nX-B: 2\r\nContent-Length: 0\r\n"), limits);  // 9 fields
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
  EXPECT_EQ(m->headers().size(), 8u);
}

TEST(MessageTest, MaxLineBytes) {
  Limits limits;
  limits.max_line_bytes = 256;
  std::string long_value(256 - std::string_view("X-Long: ").size(), 'a');
  auto m = datagram(invite("X-Long: " + long_value + "\r\nContent-Length: 0\r\n"), limits);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok()) << m->fault().reason;  // exactly at the limit
  m = datagram(invite("X-Long: " + long_value + "a\r\nContent-Length: 0\r\n"), limits);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
  EXPECT_EQ(m->callId(), "call-1@192.0.2.1");  // the rest is still scanned for the answer

  // A start line beyond the limit leaves nothing to answer.
  std::string uri = "sip:" + std::string(300, 'b') + "@example.com";
  EXPECT_EQ(datagram(fmt::format("INVITE {} SIP/2.0\r\n{}Content-Length: 0\r\n\r\n", uri, kHeaders), limits),
            nullptr);
}

TEST(MessageTest, MaxMessageBytes) {
  Limits limits;
  limits.max_message_bytes = 1024;
  auto withBody = [](std::size_t n) {
    return invite(fmt::format("Content-Length: {:04}\r\n", n), "\r\n" + std::string(n, 'x'));
  };
  std::size_t fits = 1024 - withBody(0).size();
  auto m = datagram(withBody(fits), limits);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->raw().size(), 1024u);
  EXPECT_TRUE(m->ok()) << m->fault().reason;
  m = datagram(withBody(fits + 1), limits);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->raw().size(), 1025u);
  EXPECT_EQ(m->fault().status, 513);
  EXPECT_EQ(m->viaCount(), 1u);  // still indexed, so that the 513 can be sent
  // Content-Length itself is bounded by the message size limit.
  m = datagram(invite("Content-Length: 1025\r\n", "\r\n"), limits);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fault().status, 400);
}

}  // namespace
}  // namespace palisade::sip
