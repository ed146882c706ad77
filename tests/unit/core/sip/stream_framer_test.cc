// The stream framer and reader (RFC 3261 §18.3): framing by Content-Length, keep-alives,
// limits enforced while the head is still arriving, and incremental scanning.
#include "core/sip/stream_framer.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>

namespace palisade::sip {
namespace {

constexpr std::string_view kHeaders =
    "Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-1\r\n"
    "From: \"Alice\" <sip:alice@example.com>;tag=from-1\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: call-1@192.0.2.1\r\n"
    "CSeq: 7 INVITE\r\n"
    "Max-Forwards: 70\r\n";

std::string invite(std::string_view extra = {}, std::string_view tail = "\r\n") {
  return fmt::format("INVITE sip:bob@example.com SIP/2.0\r\n{}{}{}", kHeaders, extra, tail);
}

std::unique_ptr<Message> streamed(const std::string& bytes) { return Message::parse(bytes, Limits{}, false); }

// One buffer, framed by a fresh framer.
StreamFramer::Result once(std::string_view buffered, const Limits& limits = Limits{}) {
  StreamFramer framer(limits);
  return framer.next(buffered);
}

TEST(StreamFramer, NeedsMoreUntilHeadersAndBodyAreComplete) {
  std::string message = invite("Content-Length: 4\r\n", "\r\nbody");
  StreamFramer framer{Limits{}};
  for (std::size_t n = 1; n < message.size(); ++n) {
    auto r = framer.next(std::string_view(message).substr(0, n));
    ASSERT_EQ(r.status, StreamFramer::Status::NeedMore) << n;
    EXPECT_EQ(r.length, 0u);
  }
  auto r = framer.next(message);
  ASSERT_EQ(r.status, StreamFramer::Status::Message);
  EXPECT_EQ(r.length, message.size());
  EXPECT_EQ(framer.next("").status, StreamFramer::Status::NeedMore);
}

TEST(StreamFramer, KeepAlives) {
  // RFC 5626 §3.5.1: CRLFCRLF ping, CRLF pong; RFC 3261 §7.5: stray CRLFs before a message.
  StreamFramer framer{Limits{}};
  auto r = framer.next("\r\n\r\n");
  EXPECT_EQ(r.status, StreamFramer::Status::KeepAlive);
  EXPECT_EQ(r.length, 4u);
  r = framer.next("\r\n");
  EXPECT_EQ(r.status, StreamFramer::Status::KeepAlive);
  EXPECT_EQ(r.length, 2u);
  std::string message = invite("Content-Length: 0\r\n");
  r = framer.next("\r\n" + message);
  EXPECT_EQ(r.status, StreamFramer::Status::KeepAlive);
  EXPECT_EQ(r.length, 2u);
  r = framer.next(std::string_view(message).substr(0, 10));
  EXPECT_EQ(r.status, StreamFramer::Status::NeedMore);
  r = framer.next(message);
  EXPECT_EQ(r.status, StreamFramer::Status::Message);
}

TEST(StreamFramer, TwoPipelinedMessagesAreFramedExactly) {
  std::string first = invite("Content-Length: 11\r\n", "\r\nfirst\r\nbody");
  std::string second = fmt::format("SIP/2.0 200 OK\r\n{}l: 6\r\n\r\nsecond", kHeaders);
  std::string stream = first + second + "INVITE";  // and the start of a third
  StreamFramer framer{Limits{}};
  auto r = framer.next(stream);
  ASSERT_EQ(r.status, StreamFramer::Status::Message);
  EXPECT_EQ(r.length, first.size());
  auto m = streamed(stream.substr(0, r.length));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->body(), "first\r\nbody");

  std::string_view rest = std::string_view(stream).substr(r.length);
  r = framer.next(rest);
  ASSERT_EQ(r.status, StreamFramer::Status::Message);
  EXPECT_EQ(r.length, second.size());
  m = streamed(std::string(rest.substr(0, r.length)));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->ok()) << m->fault().reason;
  EXPECT_EQ(m->statusCode(), 200);
  EXPECT_EQ(m->body(), "second");

  EXPECT_EQ(framer.next(rest.substr(r.length)).status, StreamFramer::Status::NeedMore);
}

TEST(StreamFramer, ContentLengthFormsAsTheScannerReadsThem) {
  for (const char* cl : {"l: 4\r\n", "content-length  :  4  \r\n", "Content-Length:\r\n 4\r\n",
                         "Content-Length: 4\r\nContent-Length: 4\r\n"}) {
    std::string message = invite(cl, "\r\nbody");
    auto r = once(message + "extra");
    ASSERT_EQ(r.status, StreamFramer::Status::Message) << cl;
    EXPECT_EQ(r.length, message.size()) << cl;
    auto m = streamed(message);
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->ok()) << cl << m->fault().reason;
  }
}

TEST(StreamFramer, ContinuationLineIsNotAContentLength) {
  // A folded line belongs to the field above it; reading it as a Content-Length would frame
  // the stream differently from the scanner.
  std::string message = invite("Subject: x\r\n Content-Length: 40\r\nContent-Length: 0\r\n", "\r\n");
  auto r = once(message + std::string(40, 'z'));
  ASSERT_EQ(r.status, StreamFramer::Status::Message);
  EXPECT_EQ(r.length, message.size());
  auto m = streamed(message);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->ok()) << m->fault().reason;
}

TEST(StreamFramer, MissingOrBadContentLengthIsAnError) {
  auto r = once(invite("", "\r\nbody"));  // RFC 3261 §18.3
  ASSERT_EQ(r.status, StreamFramer::Status::Error);
  EXPECT_EQ(r.fault.status, 400);
  for (const char* cl : {"Content-Length: -999\r\n", "Content-Length: 1\r\nl: 2\r\n",
                         "Content-Length: four\r\n", "Subject: x\r\n Content-Length: 4\r\n"}) {
    r = once(invite(cl, "\r\nbody"));
    ASSERT_EQ(r.status, StreamFramer::Status::Error) << cl;
    EXPECT_EQ(r.fault.status, 400) << cl;
  }
}

TEST(StreamFramer, SizeLimit) {
  Limits limits;
  limits.max_message_bytes = 1024;
  // A header section that never ends.
  std::string endless = "INVITE sip:bob@example.com SIP/2.0\r\n";
  while (endless.size() <= 1024) endless += "X-Pad: 0123456789\r\n";
  StreamFramer framer(limits);
  auto r = framer.next(endless.substr(0, 1024));
  EXPECT_EQ(r.status, StreamFramer::Status::NeedMore);
  r = framer.next(endless);
  ASSERT_EQ(r.status, StreamFramer::Status::Error);
  EXPECT_EQ(r.fault.status, 513);
  // A header section longer than the limit is 513 even when it arrives whole with a bad
  // Content-Length, as it is when it arrives in pieces.
  r = once(endless + "Content-Length: -1\r\n\r\n", limits);
  ASSERT_EQ(r.status, StreamFramer::Status::Error);
  EXPECT_EQ(r.fault.status, 513);
  // A Content-Length that announces too much, refused before the body arrives.
  r = once(invite("Content-Length: 1000\r\n"), limits);
  ASSERT_EQ(r.status, StreamFramer::Status::Error);
  EXPECT_EQ(r.fault.status, 513);
  // Exactly at the limit is fine.
  std::string body(1024 - invite("Content-Length: 0000\r\n").size(), 'b');
  std::string exact = invite(fmt::format("Content-Length: {:04}\r\n", body.size()), "\r\n" + body);
  ASSERT_EQ(exact.size(), 1024u);
  r = once(exact, limits);
  ASSERT_EQ(r.status, StreamFramer::Status::Message);
  EXPECT_EQ(r.length, 1024u);
}

// A line that can no longer fit is refused as soon as it is too long, not when its end
// finally arrives: a slow drip of one endless line costs nothing beyond the limit.
TEST(StreamFramer, LineLengthLimitWhileTheLineIsArriving) {
  Limits limits;
  limits.max_line_bytes = 256;
  std::string head = "INVITE sip:bob@example.com SIP/2.0\r\nSubject: ";
  StreamFramer framer(limits);
  std::string buffered = head;
  StreamFramer::Result r = framer.next(buffered);
  while (r.status == StreamFramer::Status::NeedMore && buffered.size() < 4096) {
    buffered.push_back('x');
    r = framer.next(buffered);
  }
  ASSERT_EQ(r.status, StreamFramer::Status::Error);
  EXPECT_EQ(r.fault.status, 400);
  EXPECT_EQ(r.fault.reason, "Header Line Too Long");
  EXPECT_LE(buffered.size(), head.size() + 256);
  // A complete line over the limit, too.
  r = once(invite(fmt::format("Subject: {}\r\nContent-Length: 0\r\n", std::string(300, 's'))), limits);
  ASSERT_EQ(r.status, StreamFramer::Status::Error);
  EXPECT_EQ(r.fault.reason, "Header Line Too Long");
}

// When a head breaks both the line and the size limit, the verdict is the limit that was
// broken first in the byte stream, whether the bytes came in one read or one by one
// (found by fuzz_stream).
TEST(StreamFramer, TheFirstLimitBrokenWinsHoweverTheStreamIsCut) {
  Limits limits;
  limits.max_message_bytes = 1024;
  limits.max_line_bytes = 256;
  auto verdicts = [&limits](const std::string& stream) {
    std::vector<int> out;
    for (std::size_t step : {stream.size(), std::size_t{1}, std::size_t{7}, std::size_t{100}}) {
      StreamReader reader(limits);
      int status = 0;
      for (std::size_t at = 0; at < stream.size() && status == 0; at += step) {
        reader.append(std::string_view(stream).substr(at, step));
        auto frame = reader.next();
        if (frame.status == StreamFramer::Status::Error) status = frame.fault.status;
      }
      out.push_back(status);
    }
    return out;
  };
  std::string start = "INVITE sip:bob@example.com SIP/2.0\r\n";
  std::string late = start;
  while (late.size() < 900) late += "X-Pad: 0123456789\r\n";
  late += "Subject: " + std::string(300, 's') + "\r\n\r\n";  // too long, but past the size limit first
  EXPECT_EQ(verdicts(late), (std::vector<int>{513, 513, 513, 513}));
  std::string early = start + "Subject: " + std::string(300, 's') + "\r\n";
  while (early.size() < 1200) early += "X-Pad: 0123456789\r\n";
  EXPECT_EQ(verdicts(early), (std::vector<int>{400, 400, 400, 400}));
  // Exactly max_line_bytes of text, then CR LF split across reads: fine.
  std::string exact = start + "Subject: " + std::string(256 - 9, 's') + "\r\nContent-Length: 0\r\n\r\n";
  EXPECT_EQ(verdicts(exact), (std::vector<int>{0, 0, 0, 0}));
}

TEST(StreamFramer, HeaderCountLimitWhileTheHeadIsArriving) {
  Limits limits;
  limits.max_headers = 8;  // the six of kHeaders, then two more at most
  std::string head = invite("X-A: 1\r\nX-B: 2\r\n", "");
  auto r = once(head + "Content-Length: 0\r\n\r\n", limits);
  ASSERT_EQ(r.status, StreamFramer::Status::Error);
  EXPECT_EQ(r.fault.reason, "Too Many Headers");
  // Refused at the ninth field's first line, before the head ends.
  r = once(head + "X-C", limits);
  EXPECT_EQ(r.status, StreamFramer::Status::NeedMore);
  r = once(head + "X-C: 3\r\n", limits);
  ASSERT_EQ(r.status, StreamFramer::Status::Error);
  EXPECT_EQ(r.fault.reason, "Too Many Headers");
  r = once(invite("X-A: 1\r\nContent-Length: 0\r\n"), limits);
  EXPECT_EQ(r.status, StreamFramer::Status::Message);
}

// Byte by byte through one framer gives the same frames as the whole stream at once.
TEST(StreamFramer, ByteByByteMatchesWhole) {
  std::string stream = "\r\n\r\n" + invite("Content-Length: 5\r\nSubject: a\r\n b\r\n", "\r\nhello") +
                       invite("l: 0\r\n") + "\r\n";
  auto frames = [](const std::string& bytes, std::size_t step) {
    StreamReader reader{Limits{}};
    std::vector<std::pair<StreamFramer::Status, std::string>> out;
    for (std::size_t at = 0; at < bytes.size(); at += step) {
      reader.append(std::string_view(bytes).substr(at, step));
      for (;;) {
        auto frame = reader.next();
        if (frame.status == StreamFramer::Status::NeedMore) break;
        out.emplace_back(frame.status, frame.bytes);
      }
    }
    return out;
  };
  auto whole = frames(stream, stream.size());
  ASSERT_EQ(whole.size(), 4u);
  EXPECT_EQ(whole[0].first, StreamFramer::Status::KeepAlive);
  EXPECT_EQ(whole[1].first, StreamFramer::Status::Message);
  EXPECT_EQ(whole[2].first, StreamFramer::Status::Message);
  EXPECT_EQ(whole[3].first, StreamFramer::Status::KeepAlive);
  // Keep-alives may come in pieces; messages do not.
  auto dripped = frames(stream, 1);
  std::vector<std::string> whole_messages, dripped_messages;
  for (auto& [status, bytes] : whole)
    if (status == StreamFramer::Status::Message) whole_messages.push_back(bytes);
  for (auto& [status, bytes] : dripped)
    if (status == StreamFramer::Status::Message) dripped_messages.push_back(bytes);
  EXPECT_EQ(whole_messages, dripped_messages);
}

TEST(StreamReader, KeepsOnlyTheUnconsumedTailAndReportsPartialMessages) {
  StreamReader reader{Limits{}};
  std::string message = invite("Content-Length: 0\r\n");
  reader.append(message + message.substr(0, 20));
  auto frame = reader.next();
  ASSERT_EQ(frame.status, StreamFramer::Status::Message);
  EXPECT_EQ(frame.bytes, message);
  EXPECT_TRUE(reader.partial());
  EXPECT_EQ(reader.next().status, StreamFramer::Status::NeedMore);
  EXPECT_EQ(reader.buffered(), 20u);
  reader.append(message.substr(20));
  frame = reader.next();
  ASSERT_EQ(frame.status, StreamFramer::Status::Message);
  EXPECT_EQ(frame.bytes, message);
  EXPECT_FALSE(reader.partial());
}

TEST(StreamReader, AnErrorKeepsTheBufferedBytesForTheAnswerAndSticks) {
  Limits limits;
  limits.max_message_bytes = 1024;
  StreamReader reader(limits);
  std::string bad = invite("", "\r\nbody");  // no Content-Length
  reader.append(bad);
  auto frame = reader.next();
  ASSERT_EQ(frame.status, StreamFramer::Status::Error);
  EXPECT_EQ(frame.fault.status, 400);
  EXPECT_EQ(frame.bytes, bad);
  reader.append(invite("Content-Length: 0\r\n"));
  EXPECT_EQ(reader.next().status, StreamFramer::Status::Error);
  EXPECT_FALSE(reader.partial());
}

}  // namespace
}  // namespace palisade::sip
