#include "media/relay/rtp.h"

#include <gtest/gtest.h>

namespace palisade::media::rtp {
namespace {

TEST(Rtp, DemultiplexesRtcpFromRtp) {
  std::uint8_t rtp_packet[12] = {0x80, 0x00, 0x12, 0x34};  // PCMU
  std::uint8_t marked[12] = {0x80, 0x80 | 101, 0, 1};      // telephone-event with marker
  std::uint8_t sender_report[28] = {0x80, 200, 0, 6};      // RTCP SR
  std::uint8_t receiver_report[8] = {0x81, 201, 0, 1};     // RTCP RR
  std::uint8_t version1[12] = {0x40, 0x00};
  EXPECT_TRUE(plausible(rtp_packet, sizeof rtp_packet));
  EXPECT_FALSE(isRtcp(rtp_packet, sizeof rtp_packet));
  EXPECT_FALSE(isRtcp(marked, sizeof marked));
  EXPECT_TRUE(isRtcp(sender_report, sizeof sender_report));
  EXPECT_TRUE(isRtcp(receiver_report, sizeof receiver_report));
  EXPECT_FALSE(plausible(version1, sizeof version1));
  EXPECT_FALSE(plausible(rtp_packet, 4));
  EXPECT_EQ(sequence(rtp_packet), 0x1234);
}

TEST(Rtp, CountsGapsAcrossTheWrap) {
  SequenceTracker t;
  for (std::uint16_t s : {65533, 65534, 65535, 0, 1}) t.observe(s);
  EXPECT_EQ(t.gaps(), 0u);
  t.observe(4);  // 2 and 3 lost
  EXPECT_EQ(t.gaps(), 2u);
  t.observe(3);  // a late one: not a new gap
  EXPECT_EQ(t.gaps(), 2u);
  t.observe(5);
  EXPECT_EQ(t.gaps(), 2u);
  t.observe(40000);  // a restart, not 34,994 lost packets
  t.observe(40001);
  EXPECT_EQ(t.gaps(), 2u);
}

}  // namespace
}  // namespace palisade::media::rtp
