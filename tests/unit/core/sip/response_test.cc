#include "core/sip/response.h"

#include <gtest/gtest.h>

#include "tests/support/fake_network.h"

namespace palisade::sip {
namespace {

using palisade::testing::endpoint;

std::unique_ptr<Message> request(const std::string& vias, const std::string& to = "To: <sip:b@x>") {
  return Message::parse(
      "OPTIONS sip:b@x SIP/2.0\r\n" + vias + "From: <sip:a@y>;tag=f\r\n" + to +
          "\r\nCall-ID: r1\r\nCSeq: 3 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
      Limits{}, true);
}

TEST(ResponseHead, FillsRportAndAddsReceivedOnTheTopViaOnly) {
  auto req = request(
      "Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1;rport, SIP/2.0/UDP p.example;branch=z9hG4bK0\r\n"
      "v: SIP/2.0/UDP q.example;branch=z9hG4bKq\r\n");
  ASSERT_TRUE(req && req->ok());
  std::string head = responseHead(*req, endpoint("127.0.0.2", 40000), 200, "OK", "t1");
  EXPECT_EQ(head,
            "SIP/2.0 200 OK\r\n"
            "Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1;rport=40000;received=127.0.0.2, "
            "SIP/2.0/UDP p.example;branch=z9hG4bK0\r\n"
            "v: SIP/2.0/UDP q.example;branch=z9hG4bKq\r\n"
            "From: <sip:a@y>;tag=f\r\nTo: <sip:b@x>;tag=t1\r\nCall-ID: r1\r\nCSeq: 3 OPTIONS\r\n");
}

TEST(ResponseHead, NoReceivedWhenTheSentByIsTheSourceAndNoTagTwice) {
  auto req = request("Via: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK2\r\n", "To: <sip:b@x>;tag=already");
  ASSERT_TRUE(req && req->ok());
  std::string head = responseHead(*req, endpoint("127.0.0.2", 5061), 481, "Gone", "ignored");
  EXPECT_NE(head.find("Via: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK2\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("To: <sip:b@x>;tag=already\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find("ignored"), std::string::npos);
}

TEST(ResponseHead, Ipv6Source) {
  auto req = request("Via: SIP/2.0/UDP [2001:db8::1]:5060;rport;branch=z9hG4bK3\r\n");
  ASSERT_TRUE(req && req->ok());
  std::string head = responseHead(*req, endpoint("::1", 5999), 100, "Trying", {});
  EXPECT_NE(head.find("Via: SIP/2.0/UDP [2001:db8::1]:5060;rport=5999;branch=z9hG4bK3;received=::1\r\n"),
            std::string::npos)
      << head;
}

}  // namespace
}  // namespace palisade::sip
