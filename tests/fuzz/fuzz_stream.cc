// A TCP byte stream cut into arbitrary chunks and framed by the transports' own StreamReader
// (buffer + incremental StreamFramer), then Message::parse on each frame. Input: two bytes
// that seed the chunk sizes, then the stream. The frames must not depend on how the stream
// was chunked, and the scanner must agree with the framer on where each message ends.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/sip/message.h"
#include "core/sip/stream_framer.h"
#include "tests/fuzz/sip_checks.h"

using palisade::fuzz::require;
using palisade::sip::Limits;
using palisade::sip::Message;
using palisade::sip::StreamFramer;
using palisade::sip::StreamReader;

namespace {

struct Event {
  StreamFramer::Status status;
  std::size_t length;
  int fault;
  bool operator==(const Event&) const = default;
};

// The receive side of a stream connection exactly as the transports run it: the same
// sip::StreamReader (buffer + incremental framer) that StreamConnection drives.
class Connection {
 public:
  explicit Connection(const Limits& limits) : limits_(limits), reader_(limits) {}

  // Appends `chunk` and frames whatever is complete; false once the connection is closed.
  bool receive(std::string_view chunk) {
    if (closed_) return false;
    reader_.append(chunk);
    for (;;) {
      std::size_t before = reader_.buffered();
      StreamReader::Frame frame = reader_.next();
      if (frame.status == StreamFramer::Status::NeedMore) {
        require(frame.bytes.empty(), "NeedMore consumes nothing");
        require(reader_.buffered() == before, "NeedMore keeps every byte");
        break;
      }
      if (frame.status == StreamFramer::Status::Error) {
        require(frame.fault.status == 400 || frame.fault.status == 513, "framing errors are 400 or 513");
        require(frame.bytes.size() <= limits_.max_message_bytes, "the answer is built from bounded bytes");
        events_.push_back({frame.status, 0, frame.fault.status});
        // The transport answers from what it has, then closes the connection.
        auto message = Message::parse(std::move(frame.bytes), limits_, false);
        if (message) palisade::fuzz::exerciseMessage(*message);
        require(reader_.next().status == StreamFramer::Status::Error, "an error sticks");
        closed_ = true;
        return false;
      }
      require(!frame.bytes.empty() && frame.bytes.size() <= before, "a frame lies inside the buffer");
      require(reader_.buffered() == before - frame.bytes.size(), "a frame consumes exactly its bytes");
      if (frame.status == StreamFramer::Status::KeepAlive) {
        for (char c : frame.bytes) require(c == '\r' || c == '\n', "keep-alive is CR/LF");
        // Consecutive keep-alives are one event, however they were chunked.
        if (!events_.empty() && events_.back().status == StreamFramer::Status::KeepAlive) {
          events_.back().length += frame.bytes.size();
        } else {
          events_.push_back({frame.status, frame.bytes.size(), 0});
        }
      } else {
        require(frame.bytes.size() <= limits_.max_message_bytes, "a frame respects the size limit");
        events_.push_back({frame.status, frame.bytes.size(), 0});
        checkFrame(frame.bytes);
      }
    }
    return true;
  }

  const std::vector<Event>& events() const { return events_; }

 private:
  void checkFrame(std::string_view frame) {
    auto message = Message::parse(std::string(frame), limits_, false);
    if (!message) return;  // no readable start line: the transport counts a parse error
    palisade::fuzz::exerciseMessage(*message);
    std::string_view reason = message->fault().reason;
    // The framer found the empty line and a usable Content-Length: the scanner must too.
    require(reason != "Missing Content-Length" && reason != "Content-Length Exceeds Body" &&
                reason != "Conflicting Content-Length" && reason != "Header Section Not Terminated",
            "framer and scanner agree on framing");
    if (message->ok()) {
      require(
          message->body().data() + message->body().size() == message->raw().data() + message->raw().size(),
          "the body ends where the frame ends");
    }
  }

  Limits limits_;
  StreamReader reader_;
  std::vector<Event> events_;
  bool closed_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::uint32_t seed = static_cast<std::uint32_t>(data[0]) << 8 | data[1];
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  Limits limits;
  if (seed & 1) {  // tight limits on odd seeds, to reach the 513 paths with small inputs
    limits.max_message_bytes = 1024;
    limits.max_headers = 8;
    limits.max_line_bytes = 256;
  }

  Connection whole(limits);
  whole.receive(stream);

  Connection chunked(limits);
  std::uint32_t state = seed * 2654435761u + 1;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    state = state * 1103515245u + 12345u;
    std::size_t n = 1 + (state >> 16) % (seed % 7 == 0 ? 3 : 97);  // sometimes byte by byte
    n = std::min(n, stream.size() - pos);
    if (!chunked.receive(stream.substr(pos, n))) break;
    pos += n;
  }
  require(whole.events() == chunked.events(), "framing does not depend on chunking");
  return 0;
}
