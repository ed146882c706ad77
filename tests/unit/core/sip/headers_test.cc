// Header value views (RFC 3261 §25): URIs, name-addr, Via, lists and parameters.
#include "core/sip/headers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace palisade::sip {
namespace {

using namespace std::string_literals;

// --- parseUri -------------------------------------------------------------------------------

TEST(ParseUriTest, SipUriWithAllParts) {
  Uri uri;
  ASSERT_TRUE(parseUri("sips:bob:secret@example.com:5061;transport=tcp;lr?Subject=hi&Priority=urgent", uri));
  EXPECT_EQ(uri.scheme, "sips");
  EXPECT_TRUE(uri.isSip());
  EXPECT_EQ(uri.user, "bob");  // the password is not part of the user
  EXPECT_EQ(uri.host, "example.com");
  EXPECT_EQ(uri.port, 5061);
  EXPECT_EQ(uri.params, ";transport=tcp;lr");
  EXPECT_EQ(uri.headers, "Subject=hi&Priority=urgent");
  EXPECT_FALSE(uri.ipv6);
}

TEST(ParseUriTest, HostOnlyAndSchemeCase) {
  Uri uri;
  ASSERT_TRUE(parseUri("SIP:Example.COM", uri));
  EXPECT_TRUE(uri.isSip());
  EXPECT_EQ(uri.scheme, "SIP");
  EXPECT_TRUE(uri.user.empty());
  EXPECT_EQ(uri.host, "Example.COM");
  EXPECT_EQ(uri.port, 0);
  EXPECT_TRUE(uri.params.empty());
  EXPECT_TRUE(uri.headers.empty());
}

TEST(ParseUriTest, TelUri) {
  Uri uri;
  ASSERT_TRUE(parseUri("tel:+1-201-555-0123;phone-context=example.com", uri));
  EXPECT_FALSE(uri.isSip());
  EXPECT_EQ(uri.user, "+1-201-555-0123");
  EXPECT_EQ(uri.params, ";phone-context=example.com");
  EXPECT_TRUE(uri.host.empty());
  ASSERT_TRUE(parseUri("tel:911", uri));
  EXPECT_EQ(uri.user, "911");
  EXPECT_TRUE(uri.params.empty());
  EXPECT_FALSE(parseUri("tel:;isub=1", uri));  // no number
}

TEST(ParseUriTest, OtherSchemesStayOpaque) {
  Uri uri;
  ASSERT_TRUE(parseUri("soap.beep://192.0.2.103:3002", uri));  // RFC 4475 §3.3.3
  EXPECT_EQ(uri.scheme, "soap.beep");
  EXPECT_FALSE(uri.isSip());
  EXPECT_TRUE(uri.host.empty());
  EXPECT_EQ(uri.port, 0);
  EXPECT_TRUE(parseUri("http://www.example.com/a?b=c", uri));
  EXPECT_TRUE(parseUri("mailto:info@example.com", uri));
  EXPECT_TRUE(parseUri("urn:service:sos", uri));
}

TEST(ParseUriTest, UserPartWithSemicolonsAsInSemiuri) {
  // RFC 4475 §3.1.1.9: the user part is "user;par=u%40example.net".
  Uri uri;
  ASSERT_TRUE(parseUri("sip:user;par=u%40example.net@example.com", uri));
  EXPECT_EQ(uri.user, "user;par=u%40example.net");
  EXPECT_EQ(uri.host, "example.com");
  EXPECT_TRUE(uri.params.empty());
}

TEST(ParseUriTest, UserPartWithQuestionMarkAndPasswordAsInIntmeth) {
  // RFC 4475 §3.1.1.2: '?', ',' and '/' are legal in the user part, so the header part only
  // starts after the host.
  Uri uri;
  ASSERT_TRUE(
      parseUri("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/"
               ";;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
               uri));
  EXPECT_EQ(uri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
  EXPECT_EQ(uri.host, "example.com");
  EXPECT_TRUE(uri.headers.empty());
  ASSERT_TRUE(parseUri("sip:a?b@example.com?Subject=x", uri));
  EXPECT_EQ(uri.user, "a?b");
  EXPECT_EQ(uri.host, "example.com");
  EXPECT_EQ(uri.headers, "Subject=x");
}

TEST(ParseUriTest, EscapedCharactersAreKeptAsWritten) {
  Uri uri;
  ASSERT_TRUE(parseUri("sip:sips%3Auser%40example.com@example.net", uri));  // RFC 4475 §3.1.1.3
  EXPECT_EQ(uri.user, "sips%3Auser%40example.com");
  EXPECT_EQ(uri.host, "example.net");
  ASSERT_TRUE(parseUri("sip:null-%00-null@example.com", uri));  // RFC 4475 §3.1.1.4
  EXPECT_EQ(uri.user, "null-%00-null");
}

TEST(ParseUriTest, Ipv6References) {
  Uri uri;
  ASSERT_TRUE(parseUri("sip:user@[2001:db8::10]:5070;transport=udp", uri));  // RFC 5118 §4.4
  EXPECT_TRUE(uri.ipv6);
  EXPECT_EQ(uri.host, "2001:db8::10");
  EXPECT_EQ(uri.port, 5070);
  EXPECT_EQ(uri.params, ";transport=udp");

  ASSERT_TRUE(parseUri("sip:[2001:db8::10:5070]", uri));  // RFC 5118 §4.3: no port
  EXPECT_EQ(uri.host, "2001:db8::10:5070");
  EXPECT_EQ(uri.port, 0);

  ASSERT_TRUE(parseUri("sip:[::ffff:192.0.2.10]", uri));  // RFC 5118 §4.9
  EXPECT_EQ(uri.host, "::ffff:192.0.2.10");
  ASSERT_TRUE(parseUri("sip:[::1]", uri));
  EXPECT_EQ(uri.host, "::1");

  EXPECT_FALSE(parseUri("sip:2001:db8::10", uri));  // RFC 5118 §4.2: brackets are mandatory
  EXPECT_FALSE(parseUri("sip:[2001:db8::10", uri));
  EXPECT_FALSE(parseUri("sip:[]", uri));
  EXPECT_FALSE(parseUri("sip:[g::1]", uri));
  EXPECT_FALSE(parseUri("sip:[::1]x", uri));
}

TEST(ParseUriTest, PortRange) {
  Uri uri;
  ASSERT_TRUE(parseUri("sip:host:1", uri));
  EXPECT_EQ(uri.port, 1);
  ASSERT_TRUE(parseUri("sip:host:65535", uri));
  EXPECT_EQ(uri.port, 65535);
  ASSERT_TRUE(parseUri("sip:host:05060", uri));  // leading zeros are digits too
  EXPECT_EQ(uri.port, 5060);
  EXPECT_FALSE(parseUri("sip:host:65536", uri));
  EXPECT_FALSE(parseUri("sip:host:99999999999999999999", uri));
  EXPECT_FALSE(parseUri("sip:host:0", uri));
  EXPECT_FALSE(parseUri("sip:host:", uri));
  EXPECT_FALSE(parseUri("sip:host:50a", uri));
  EXPECT_FALSE(parseUri("sip:[::1]:", uri));
}

TEST(ParseUriTest, Params) {
  Uri uri;
  ASSERT_TRUE(parseUri("sip:host;lr;maddr=[2001:db8::1];transport=tcp", uri));
  EXPECT_EQ(uri.params, ";lr;maddr=[2001:db8::1];transport=tcp");
  EXPECT_FALSE(parseUri("sip:host;x=\"q\"", uri));  // pvalue has no quoted-string form
  EXPECT_FALSE(parseUri("sip:host;;lr", uri));
  EXPECT_FALSE(parseUri("sip:host;", uri));
  EXPECT_FALSE(parseUri("sip:host;=x", uri));
  EXPECT_FALSE(parseUri("sip:host;x=", uri));
}

TEST(ParseUriTest, Malformed) {
  Uri uri;
  EXPECT_FALSE(parseUri("", uri));
  EXPECT_FALSE(parseUri("sip", uri));
  EXPECT_FALSE(parseUri(":host", uri));
  EXPECT_FALSE(parseUri("sip:", uri));
  EXPECT_FALSE(parseUri("1sip:host", uri));
  EXPECT_FALSE(parseUri("s_p:host", uri));
  EXPECT_FALSE(parseUri("sip:@host", uri));  // empty user part
  EXPECT_FALSE(parseUri("sip:user@", uri));
  EXPECT_FALSE(parseUri("sip:user@example.com; lr", uri));  // RFC 4475 §3.1.2.8
  EXPECT_FALSE(parseUri("<sip:user@example.com>", uri));    // RFC 4475 §3.1.2.7
  EXPECT_FALSE(parseUri("sip:user@<example.com>", uri));
  EXPECT_FALSE(parseUri("sip:\"user\"@example.com", uri));
  EXPECT_FALSE(parseUri("sip:user@exa mple.com", uri));
  EXPECT_FALSE(parseUri("sip:user@example.com\r\n", uri));
  EXPECT_FALSE(parseUri("sip:user@ex\x01mple.com"s, uri));
  EXPECT_FALSE(parseUri("sip:user@example.com/path", uri));
  EXPECT_FALSE(parseUri("sip:a\0b@example.com"s, uri));
}

// --- parseNameAddr --------------------------------------------------------------------------

TEST(ParseNameAddrTest, QuotedDisplayNameWithEscapedQuotesAndCommas) {
  NameAddr na;
  ASSERT_TRUE(parseNameAddr(R"("Bell, \"Alexander\" G." <sip:a.g.bell@example.com>;tag=43)", na));
  EXPECT_EQ(na.display, R"("Bell, \"Alexander\" G.")");
  EXPECT_EQ(na.uri, "sip:a.g.bell@example.com");
  EXPECT_EQ(na.params, ";tag=43");
  EXPECT_EQ(na.tag, "43");
  EXPECT_TRUE(na.bracketed);

  ASSERT_TRUE(parseNameAddr(R"("J Rosenberg \\\""       <sip:jdrosen@example.com>)", na));  // wsinv
  EXPECT_EQ(na.display, R"("J Rosenberg \\\"")");
  EXPECT_EQ(na.uri, "sip:jdrosen@example.com");
  EXPECT_TRUE(na.tag.empty());
}

TEST(ParseNameAddrTest, UnquotedDisplayName) {
  NameAddr na;
  ASSERT_TRUE(parseNameAddr("A. G. Bell <sip:a.g.bell@example.com> ;tag=qweoiqpe", na));
  EXPECT_EQ(na.display, "A. G. Bell");
  EXPECT_EQ(na.uri, "sip:a.g.bell@example.com");
  EXPECT_EQ(na.tag, "qweoiqpe");
  ASSERT_TRUE(
      parseNameAddr("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;tag=_token~1'+`*%!-.", na));
  EXPECT_EQ(na.display, "token1~` token2'+_ token3*%!.-");  // RFC 4475 §3.1.1.2
  EXPECT_EQ(na.tag, "_token~1'+`*%!-.");
}

TEST(ParseNameAddrTest, NoSpaceBetweenDisplayNameAndBracket) {
  NameAddr na;  // RFC 4475 §3.1.1.6
  ASSERT_TRUE(parseNameAddr(R"("caller"<sip:caller@example.com>;tag=323)", na));
  EXPECT_EQ(na.display, R"("caller")");
  EXPECT_EQ(na.uri, "sip:caller@example.com");
  EXPECT_EQ(na.tag, "323");
}

TEST(ParseNameAddrTest, AddrSpecWithoutBrackets) {
  NameAddr na;
  ASSERT_TRUE(parseNameAddr("sip:j.user@example.com;tag=43251j3j324", na));
  EXPECT_FALSE(na.bracketed);
  EXPECT_TRUE(na.display.empty());
  EXPECT_EQ(na.uri, "sip:j.user@example.com");  // ';' starts header parameters here
  EXPECT_EQ(na.params, ";tag=43251j3j324");
  EXPECT_EQ(na.tag, "43251j3j324");
  ASSERT_TRUE(parseNameAddr("  sip:j.user@example.com  ", na));
  EXPECT_EQ(na.uri, "sip:j.user@example.com");
  EXPECT_TRUE(na.params.empty());
  // A '?' needs the brackets (RFC 3261 §20.10).
  EXPECT_FALSE(parseNameAddr("sip:user@example.com?Route=%3Csip:a%3E", na));
  ASSERT_TRUE(parseNameAddr("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>", na));
  EXPECT_EQ(na.uri, "sip:user@example.com?Route=%3Csip:sip.example.com%3E");
}

TEST(ParseNameAddrTest, TagExtraction) {
  NameAddr na;
  ASSERT_TRUE(parseNameAddr("<sip:a@example.com>;TAG=AbC;x=1", na));
  EXPECT_EQ(na.tag, "AbC");
  ASSERT_TRUE(parseNameAddr("<sip:a@example.com>;p=\"x;tag=bad\";tag=good", na));
  EXPECT_EQ(na.tag, "good");
  ASSERT_TRUE(parseNameAddr("<sip:a@example.com>;p=\"x\\\";tag=bad\";tag=good", na));
  EXPECT_EQ(na.tag, "good");
  ASSERT_TRUE(parseNameAddr("<sip:a@example.com;tag=uri-param>", na));
  EXPECT_TRUE(na.tag.empty());  // a URI parameter is not the header's tag
  ASSERT_TRUE(parseNameAddr("<sip:a@example.com>;tagx=1;tag=2", na));
  EXPECT_EQ(na.tag, "2");
  ASSERT_TRUE(parseNameAddr("<sip:a@example.com> ;   tag    = 1918181833n", na));  // wsinv
  EXPECT_EQ(na.tag, "1918181833n");
  ASSERT_TRUE(parseNameAddr("<sip:a@example.com>\r\n  ;\r\n  tag = 98asjd8", na));  // folded
  EXPECT_EQ(na.tag, "98asjd8");
}

TEST(ParseNameAddrTest, UnknownSchemeInsideBrackets) {
  NameAddr na;  // RFC 4475 §3.3.4
  ASSERT_TRUE(parseNameAddr("<http://www.example.com>", na));
  EXPECT_EQ(na.uri, "http://www.example.com");
  ASSERT_TRUE(parseNameAddr("<tel:+1-201-555-0123>;tag=1", na));
  EXPECT_EQ(na.tag, "1");
}

TEST(ParseNameAddrTest, Ipv6InsideBrackets) {
  NameAddr na;
  ASSERT_TRUE(parseNameAddr("\"x\" <sip:user@[2001:db8::9:1]:5060;transport=tcp>;expires=60", na));
  EXPECT_EQ(na.uri, "sip:user@[2001:db8::9:1]:5060;transport=tcp");
  EXPECT_EQ(na.params, ";expires=60");
}

TEST(ParseNameAddrTest, Malformed) {
  NameAddr na;
  EXPECT_FALSE(parseNameAddr("", na));
  EXPECT_FALSE(parseNameAddr("   ", na));
  // RFC 4475 §3.1.2.15: a comma is not a token character.
  EXPECT_FALSE(parseNameAddr("Bell, Alexander <sip:a.g.bell@example.com>;tag=43", na));
  EXPECT_FALSE(parseNameAddr("Joe@home <sip:joe@example.com>", na));
  // RFC 4475 §3.1.2.6: unterminated quoted string.
  EXPECT_FALSE(parseNameAddr("\"Mr. J. User <sip:j.user@example.com>", na));
  // RFC 4475 §3.1.2.14: spaces inside <>.
  EXPECT_FALSE(parseNameAddr("\"Watson, Thomas\" < sip:t.watson@example.org >", na));
  EXPECT_FALSE(parseNameAddr("<sip:t.watson@example.org >", na));
  EXPECT_FALSE(parseNameAddr("< sip:t.watson@example.org>", na));
  EXPECT_FALSE(parseNameAddr("<sip:a@example.com", na));
  EXPECT_FALSE(parseNameAddr("<>", na));
  EXPECT_FALSE(parseNameAddr("\"x\" sip:a@example.com", na));
  EXPECT_FALSE(parseNameAddr("<sip:a@example.com>;;tag=1", na));  // RFC 4475 §3.1.2.1
  EXPECT_FALSE(parseNameAddr("\"Joe\" <sip:joe@example.org>;;;;", na));
  EXPECT_FALSE(parseNameAddr("<sip:a@example.com> junk", na));
  EXPECT_FALSE(parseNameAddr("sip:a@example.com junk", na));
  EXPECT_FALSE(parseNameAddr("<not a uri>", na));
  EXPECT_FALSE(parseNameAddr("sip:user@example.com, sip:other@example.com", na));
}

// --- parseVia -------------------------------------------------------------------------------

TEST(ParseViaTest, SingleViaWithParams) {
  Via via;
  std::string_view rest = "unchanged";
  ASSERT_TRUE(
      parseVia("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport;received=192.0.2.9", via, rest));
  EXPECT_EQ(via.transport, "UDP");
  EXPECT_EQ(via.host, "192.0.2.1");
  EXPECT_EQ(via.port, 5060);
  EXPECT_EQ(via.branch, "z9hG4bK776asdhds");
  EXPECT_EQ(via.received, "192.0.2.9");
  EXPECT_TRUE(via.has_rport);
  EXPECT_TRUE(via.rport.empty());  // RFC 3581: a bare rport asks for the source port
  EXPECT_EQ(via.params, ";branch=z9hG4bK776asdhds;rport;received=192.0.2.9");
  EXPECT_EQ(via.text, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport;received=192.0.2.9");
  EXPECT_TRUE(rest.empty());
}

TEST(ParseViaTest, RportWithValueAndAbsentRport) {
  Via via;
  std::string_view rest;
  ASSERT_TRUE(parseVia("SIP/2.0/TCP client.example.com;rport=5061;branch=z9hG4bKx", via, rest));
  EXPECT_TRUE(via.has_rport);
  EXPECT_EQ(via.rport, "5061");
  EXPECT_EQ(via.port, 0);
  ASSERT_TRUE(parseVia("SIP/2.0/TCP client.example.com;branch=z9hG4bKx;rportx=1", via, rest));
  EXPECT_FALSE(via.has_rport);
  EXPECT_TRUE(via.rport.empty());
  EXPECT_TRUE(via.received.empty());
}

TEST(ParseViaTest, LwsInsideSentProtocolAndAroundParams) {
  Via via;
  std::string_view rest;
  // RFC 4475 §3.1.1.1 (wsinv), the first Via after unfolding.
  ASSERT_TRUE(parseVia("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw", via, rest));
  EXPECT_EQ(via.transport, "UDP");
  EXPECT_EQ(via.host, "192.0.2.2");
  EXPECT_EQ(via.branch, "390skdjuw");
  ASSERT_TRUE(
      parseVia("SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n"
               " SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239",
               via, rest));
  EXPECT_EQ(via.transport, "TCP");
  EXPECT_EQ(via.host, "spindle.example.com");
  EXPECT_EQ(via.branch, "z9hG4bK9ikj8");
  Via second;
  std::string_view tail;
  ASSERT_TRUE(parseVia(rest, second, tail));
  EXPECT_EQ(second.transport, "UDP");
  EXPECT_EQ(second.host, "192.168.255.111");
  EXPECT_EQ(second.branch, "z9hG4bK30239");
  EXPECT_TRUE(tail.empty());
}

TEST(ParseViaTest, CommaSeparatedList) {
  std::string_view value =
      "SIP/2.0/UDP a.example.com;branch=z9hG4bK1;x=\"a, b\" , SIP/2.0/TCP "
      "[2001:db8::9:1]:6050;branch=z9hG4bK2,"
      "SIP/2.0/TLS c.example.com";
  std::vector<Via> vias;
  std::string_view rest = value;
  do {
    Via via;
    ASSERT_TRUE(parseVia(rest, via, rest));
    vias.push_back(via);
  } while (!rest.empty());
  ASSERT_EQ(vias.size(), 3u);
  EXPECT_EQ(vias[0].host, "a.example.com");
  EXPECT_EQ(vias[0].branch, "z9hG4bK1");
  EXPECT_EQ(vias[0].text, "SIP/2.0/UDP a.example.com;branch=z9hG4bK1;x=\"a, b\"");
  EXPECT_EQ(vias[1].transport, "TCP");
  EXPECT_EQ(vias[1].host, "2001:db8::9:1");
  EXPECT_EQ(vias[1].port, 6050);
  EXPECT_EQ(vias[1].branch, "z9hG4bK2");
  EXPECT_EQ(vias[2].transport, "TLS");
  EXPECT_EQ(vias[2].host, "c.example.com");
  EXPECT_TRUE(vias[2].branch.empty());
}

TEST(ParseViaTest, Ipv6SentByAndReceived) {
  Via via;
  std::string_view rest;
  // RFC 5118 §4.5, both forms of received.
  ASSERT_TRUE(
      parseVia("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111", via, rest));
  EXPECT_EQ(via.host, "2001:db8::9:1");
  EXPECT_EQ(via.received, "[2001:db8::9:255]");
  EXPECT_EQ(via.branch, "z9hG4bKas3-111");
  ASSERT_TRUE(parseVia("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3", via, rest));
  EXPECT_EQ(via.received, "2001:db8::9:255");
  EXPECT_EQ(via.branch, "z9hG4bKas3");  // parameters after the bare address still parse
  ASSERT_TRUE(parseVia("SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK451jj;received=192.0.2.200", via, rest));
  EXPECT_EQ(via.received, "192.0.2.200");
  ASSERT_TRUE(parseVia("SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19", via, rest));
  EXPECT_EQ(via.host, "::ffff:192.0.2.10");
  EXPECT_EQ(via.port, 19823);
}

TEST(ParseViaTest, UnknownTransportsAndVersions) {
  Via via;
  std::string_view rest;
  for (const char* transport : {"SCTP", "TLS-SCTP", "UNKNOWN", "WSS", "udp"}) {
    std::string text = std::string("SIP/2.0/") + transport + " t.example.com;branch=z9hG4bK1";
    ASSERT_TRUE(parseVia(text, via, rest)) << transport;
    EXPECT_EQ(via.transport, std::string_view(transport));
  }
  // The version is a token: a request of another SIP version must keep its Via, so that it
  // can be answered 505 (RFC 4475 §3.1.2.16).
  ASSERT_TRUE(parseVia("SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw", via, rest));
  EXPECT_EQ(via.host, "c.example.com");
  ASSERT_TRUE(parseVia("sip/2.0/UDP c.example.com", via, rest));
}

TEST(ParseViaTest, Malformed) {
  Via via;
  std::string_view rest;
  EXPECT_FALSE(parseVia("", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP 192.0.2.15;;,;,,", via, rest));  // RFC 4475 §3.1.2.1
  EXPECT_FALSE(parseVia("SIP/2.0/UDP 192.0.2.15;;", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP host;", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP host;branch=", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP host;=x", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP host;x=\"open", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP host,", via, rest));  // an empty via-parm after the comma
  EXPECT_FALSE(parseVia("SIP/2.0/UDP host, ", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP host junk", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP ", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDPhost", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0 host", via, rest));
  EXPECT_FALSE(parseVia("SIP//UDP host", via, rest));
  EXPECT_FALSE(parseVia("XIP/2.0/UDP host", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP host:0", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP host:65536", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP host:", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP 2001:db8::1", via, rest));
  EXPECT_FALSE(parseVia("SIP/2.0/UDP [2001:db8::1", via, rest));
}

// --- splitList ------------------------------------------------------------------------------

TEST(SplitListTest, PlainTokens) {
  std::vector<std::string_view> items;
  ASSERT_TRUE(splitList("timer,  100rel ,\r\n path", items));
  EXPECT_EQ(items, (std::vector<std::string_view>{"timer", "100rel", "path"}));
  items.clear();
  ASSERT_TRUE(splitList("one", items));
  EXPECT_EQ(items, (std::vector<std::string_view>{"one"}));
}

TEST(SplitListTest, QuotesAndBracketsHideCommas) {
  std::vector<std::string_view> items;
  ASSERT_TRUE(splitList(
      R"("Bell, A. \"G\", Jr" <sip:a@example.com;x=1,2>;q=0.5, sip:b@example.com, <sip:c@[::1]>)", items));
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0], R"("Bell, A. \"G\", Jr" <sip:a@example.com;x=1,2>;q=0.5)");
  EXPECT_EQ(items[1], "sip:b@example.com");
  EXPECT_EQ(items[2], "<sip:c@[::1]>");
}

TEST(SplitListTest, AppendsToOutput) {
  std::vector<std::string_view> items{"kept"};
  ASSERT_TRUE(splitList("a, b", items));
  EXPECT_EQ(items, (std::vector<std::string_view>{"kept", "a", "b"}));
}

TEST(SplitListTest, Malformed) {
  std::vector<std::string_view> items;
  EXPECT_FALSE(splitList("", items));
  EXPECT_FALSE(splitList("  ", items));
  EXPECT_FALSE(splitList("a,,b", items));
  EXPECT_FALSE(splitList("a,", items));
  EXPECT_FALSE(splitList(",a", items));
  EXPECT_FALSE(splitList("\"unterminated, b", items));
  EXPECT_FALSE(splitList("\"ends in escape\\", items));
  EXPECT_FALSE(splitList("<sip:a@example.com, b", items));
  EXPECT_FALSE(splitList("sip:a@example.com>, b", items));
  EXPECT_FALSE(splitList("<<sip:a@example.com>>", items));
}

// --- paramValue -----------------------------------------------------------------------------

TEST(ParamValueTest, FindsValuesAndBareParameters) {
  std::string_view params = ";branch=z9hG4bK1;rport;received=192.0.2.4;lr";
  bool found = false;
  EXPECT_EQ(paramValue(params, "branch", &found), "z9hG4bK1");
  EXPECT_TRUE(found);
  EXPECT_EQ(paramValue(params, "rport", &found), "");
  EXPECT_TRUE(found);
  EXPECT_EQ(paramValue(params, "received"), "192.0.2.4");
  EXPECT_EQ(paramValue(params, "lr", &found), "");
  EXPECT_TRUE(found);
  EXPECT_EQ(paramValue(params, "maddr", &found), "");
  EXPECT_FALSE(found);
  EXPECT_EQ(paramValue("", "x", &found), "");
  EXPECT_FALSE(found);
}

TEST(ParamValueTest, NameIsCaseInsensitiveAndMatchedWhole) {
  bool found = false;
  EXPECT_EQ(paramValue(";BRANCH=AbC", "branch"), "AbC");
  EXPECT_EQ(paramValue(";tagx=1;xtag=2;tag=3", "tag"), "3");
  EXPECT_EQ(paramValue(";tagx=1", "tag", &found), "");
  EXPECT_FALSE(found);
  EXPECT_EQ(paramValue(";first=1;first=2", "first"), "1");
}

TEST(ParamValueTest, QuotedValuesWithEscapes) {
  std::string_view params = R"(;a="x;tag=bad, y";b="say \"hi;tag=no\"";tag=yes)";
  EXPECT_EQ(paramValue(params, "a"), R"("x;tag=bad, y")");
  EXPECT_EQ(paramValue(params, "b"), R"("say \"hi;tag=no\"")");
  EXPECT_EQ(paramValue(params, "tag"), "yes");
}

TEST(ParamValueTest, LwsAroundSeparators) {
  EXPECT_EQ(paramValue(" ;  tag  =  abc  ;x", "tag"), "abc");
  EXPECT_EQ(paramValue(";\r\n  tag = 98asjd8", "tag"), "98asjd8");
  bool found = false;
  EXPECT_EQ(paramValue("; x ; y", "y", &found), "");
  EXPECT_TRUE(found);
}

TEST(ParamValueTest, StopsAtCommaAndKeepsIpv6References) {
  EXPECT_EQ(paramValue(";branch=z9hG4bK1, SIP/2.0/UDP other", "branch"), "z9hG4bK1");
  EXPECT_EQ(paramValue(";received=[2001:db8::9:255];rport=1", "received"), "[2001:db8::9:255]");
  EXPECT_EQ(paramValue(";received=2001:db8::9:255;rport=1", "received"), "2001:db8::9:255");
  EXPECT_EQ(paramValue(";received=2001:db8::9:255;rport=1", "rport"), "1");
}

// --- small helpers --------------------------------------------------------------------------

TEST(HeaderHelpersTest, ParseUnsignedLimits) {
  std::uint64_t v = 7;
  ASSERT_TRUE(parseUnsigned("4294967295", 0xFFFFFFFFull, v));
  EXPECT_EQ(v, 4294967295ull);
  EXPECT_FALSE(parseUnsigned("4294967296", 0xFFFFFFFFull, v));
  EXPECT_EQ(v, 4294967295ull);  // untouched on failure
  ASSERT_TRUE(parseUnsigned("0000000000000000000000000009", 10, v));
  EXPECT_EQ(v, 9u);
  EXPECT_FALSE(parseUnsigned("0000000000000000000000000000009", 10, v));  // longer than 30 digits
  ASSERT_TRUE(parseUnsigned("18446744073709551615", ~0ull, v));
  EXPECT_EQ(v, ~0ull);
  EXPECT_FALSE(parseUnsigned("18446744073709551616", ~0ull, v));
  EXPECT_FALSE(parseUnsigned("", 10, v));
  EXPECT_FALSE(parseUnsigned("-1", 10, v));
  EXPECT_FALSE(parseUnsigned("+1", 10, v));
  EXPECT_FALSE(parseUnsigned(" 1", 10, v));
  EXPECT_FALSE(parseUnsigned("1 ", 10, v));
  ASSERT_TRUE(parseUnsigned("0", 0, v));
  EXPECT_EQ(v, 0u);
  EXPECT_FALSE(parseUnsigned("1", 0, v));
}

TEST(HeaderHelpersTest, TokenCharsAndCaseFolding) {
  for (char c : std::string_view("-.!%*_+`'~azAZ09")) EXPECT_TRUE(isTokenChar(c)) << c;
  for (char c : "\"(),/:;<=>?@[\\]{} \t\r\n\x7f\x80"s) EXPECT_FALSE(isTokenChar(c)) << static_cast<int>(c);
  EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(iequals("Via", "Vias"));
  EXPECT_FALSE(iequals("a[", "A{"));  // only letters fold
  EXPECT_EQ(trimLws(" \t\r\n x y \r\n"), "x y");
  EXPECT_EQ(trimLws("   "), "");
}

// --- RSeq / RAck (RFC 3262 §7) -----------------------------------------------------------------

TEST(ReliableProvisionalHeadersTest, RSeq) {
  std::uint32_t rseq = 0;
  ASSERT_TRUE(parseRSeq("988789", rseq));
  EXPECT_EQ(rseq, 988789u);
  ASSERT_TRUE(parseRSeq(" 4294967295 ", rseq));
  EXPECT_EQ(rseq, 4294967295u);
  EXPECT_FALSE(parseRSeq("0", rseq));
  EXPECT_FALSE(parseRSeq("4294967296", rseq));
  EXPECT_FALSE(parseRSeq("", rseq));
  EXPECT_FALSE(parseRSeq("12a", rseq));
  EXPECT_FALSE(parseRSeq("-1", rseq));
  EXPECT_FALSE(parseRSeq("1 2", rseq));
}

TEST(ReliableProvisionalHeadersTest, RAck) {
  RAck rack;
  ASSERT_TRUE(parseRAck("776656 1 INVITE", rack));
  EXPECT_EQ(rack.rseq, 776656u);
  EXPECT_EQ(rack.cseq, 1u);
  EXPECT_EQ(rack.method, "INVITE");
  ASSERT_TRUE(parseRAck("  5\t 2\r\n  INVITE  ", rack));
  EXPECT_EQ(rack.rseq, 5u);
  EXPECT_EQ(rack.cseq, 2u);
  EXPECT_EQ(rack.method, "INVITE");
  EXPECT_FALSE(parseRAck("", rack));
  EXPECT_FALSE(parseRAck("1 INVITE", rack));
  EXPECT_FALSE(parseRAck("1 2", rack));
  EXPECT_FALSE(parseRAck("0 1 INVITE", rack));
  EXPECT_FALSE(parseRAck("1 x INVITE", rack));
  EXPECT_FALSE(parseRAck("1 2 INVITE extra", rack));
  EXPECT_FALSE(parseRAck("1 2 IN<VITE", rack));
  EXPECT_FALSE(parseRAck("99999999999 1 INVITE", rack));
}

}  // namespace
}  // namespace palisade::sip
