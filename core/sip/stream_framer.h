#pragma once
// Cuts messages out of a stream (TCP now, TLS later; RFC 3261 §18.3: Content-Length is
// mandatory). Incremental: it keeps a scan cursor, so bytes arriving in small pieces are
// examined once, not re-scanned from the start of the message on every read (a slow drip
// costs O(n), not O(n²)). Enforces the line-length, header-count and message-size limits
// while the head is still arriving. One framer per connection, on the connection's worker.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/sip/message.h"

namespace palisade::sip {

class StreamFramer {
 public:
  enum class Status { NeedMore, Message, KeepAlive, Error };
  struct Result {
    Status status = Status::NeedMore;
    std::size_t length = 0;  // bytes to consume (message or CRLF keep-alive)
    ParseFault fault;        // for Error: 400 or 513
  };

  explicit StreamFramer(const Limits& limits) : limits_(limits) {}
  // New limits apply from the next message on.
  void setLimits(const Limits& limits) { pending_limits_ = limits, limits_changed_ = true; }

  // `buffered` holds the unconsumed bytes of the stream. Between calls it may only grow at
  // its end, until a Message or KeepAlive result: the caller then consumes `length` bytes and
  // the framer starts over at the next message. After an Error the stream is unusable.
  Result next(std::string_view buffered);

 private:
  void startOver();
  bool finishField(std::string_view buffered, Result& result);
  Result fail(int status, std::string_view reason);

  Limits limits_;
  Limits pending_limits_;
  bool limits_changed_ = false;
  std::size_t line_start_ = 0;  // the line being scanned
  std::size_t searched_ = 0;    // how far the current line has been searched for its end
  std::size_t field_start_ = 0;
  std::size_t field_end_ = 0;  // content end of the current field's last line
  bool in_field_ = false;
  bool start_line_seen_ = false;
  std::uint32_t fields_ = 0;
  long long content_length_ = -1;
  std::size_t head_end_ = 0;  // 0 until the empty line has been found
};

// A stream's receive side: the bytes read so far and the framer over them. The transports
// append what they read and take frames out; the stream fuzz target drives this same class.
class StreamReader {
 public:
  struct Frame {
    StreamFramer::Status status = StreamFramer::Status::NeedMore;
    std::string bytes;  // the message or keep-alive; for Error, what was buffered (capped)
    ParseFault fault;
  };
  explicit StreamReader(const Limits& limits) : framer_(limits), max_error_bytes_(limits.max_message_bytes) {}
  void setLimits(const Limits& limits) {
    framer_.setLimits(limits), max_error_bytes_ = limits.max_message_bytes;
  }

  void append(std::string_view bytes);
  // The next complete frame, or NeedMore. After an Error every call returns that Error.
  Frame next();
  // Bytes of a message that has begun but is not complete yet (the head timer runs meanwhile).
  bool partial() const { return !failed_ && buffer_.size() > consumed_; }
  std::size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  StreamFramer framer_;
  std::string buffer_;
  std::size_t consumed_ = 0;
  std::size_t max_error_bytes_;
  bool failed_ = false;
  ParseFault fault_;
};

}  // namespace palisade::sip
