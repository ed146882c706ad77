#include "core/sip/stream_framer.h"

#include <algorithm>

namespace palisade::sip {
namespace {

bool isWs(char c) { return c == ' ' || c == '\t'; }

}  // namespace

void StreamFramer::startOver() {
  line_start_ = 0;
  searched_ = 0;
  field_start_ = field_end_ = 0;
  in_field_ = false;
  start_line_seen_ = false;
  fields_ = 0;
  content_length_ = -1;
  head_end_ = 0;
  if (limits_changed_) {
    limits_ = pending_limits_;
    limits_changed_ = false;
  }
}

StreamFramer::Result StreamFramer::fail(int status, std::string_view reason) {
  Result result;
  result.status = Status::Error;
  result.fault = ParseFault{status, reason};
  return result;
}

// A header field is complete (the next field or the empty line began): frame by it if it is
// Content-Length. Continuation lines belong to the field (RFC 3261 §7.3.1), exactly as the
// scanner reads them, so a folded Content-Length cannot frame the stream differently.
bool StreamFramer::finishField(std::string_view buffered, Result& result) {
  if (!in_field_) return true;
  in_field_ = false;
  std::string_view text = buffered.substr(field_start_, field_end_ - field_start_);
  std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) return true;  // the scanner answers 400 for it
  if (headerIdFromName(trimLws(text.substr(0, colon))) != Hdr::ContentLength) return true;
  std::uint64_t value = 0;
  if (!parseUnsigned(trimLws(text.substr(colon + 1)), 0xFFFFFFFFull, value) ||
      (content_length_ >= 0 && static_cast<std::uint64_t>(content_length_) != value)) {
    result = fail(400, "Bad Content-Length");
    return false;
  }
  content_length_ = static_cast<long long>(value);
  return true;
}

StreamFramer::Result StreamFramer::next(std::string_view buffered) {
  Result result;
  if (!start_line_seen_ && line_start_ == 0) {
    // Leading CRLFs are keep-alives (RFC 5626 §3.5.1) or padding (RFC 3261 §7.5).
    std::size_t pos = 0;
    while (pos < buffered.size() && (buffered[pos] == '\r' || buffered[pos] == '\n')) ++pos;
    if (pos > 0) {
      result.status = Status::KeepAlive;
      result.length = pos;
      startOver();
      return result;
    }
  }
  while (head_end_ == 0) {
    // Bytes already searched for this line's end are not searched again: a line that drips in
    // a byte at a time costs O(length), not O(length²).
    std::size_t nl = buffered.find('\n', std::max(line_start_, searched_));
    const bool complete = nl != std::string_view::npos;
    if (!complete) searched_ = buffered.size();
    std::size_t content_end = buffered.size();
    if (complete) content_end = (nl > line_start_ && buffered[nl - 1] == '\r') ? nl - 1 : nl;
    // Each limit is judged by the buffer size at which breaking it became certain, so that the
    // verdict is the same however the stream was cut into reads.
    std::size_t line_at = std::string_view::npos;
    std::size_t size_at = std::string_view::npos;
    const std::size_t beyond = line_start_ + limits_.max_line_bytes;  // first byte past the allowed text
    if (beyond < content_end) {
      // A CR there may still be the line's own CR LF until the byte after it arrives.
      bool cr = buffered[beyond] == '\r';
      if (!cr || complete || beyond + 1 < buffered.size()) line_at = beyond + (cr ? 2 : 1);
    }
    if ((complete ? nl + 1 : buffered.size()) > limits_.max_message_bytes)
      size_at = limits_.max_message_bytes + 1;
    if (line_at != std::string_view::npos || size_at != std::string_view::npos) {
      if (line_at <= size_at) return fail(400, "Header Line Too Long");
      return fail(513, "Message Too Large");
    }
    if (!complete) return result;  // NeedMore
    if (!start_line_seen_) {
      start_line_seen_ = true;
    } else if (content_end == line_start_) {
      if (!finishField(buffered, result)) return result;
      head_end_ = nl + 1;
    } else if (isWs(buffered[line_start_])) {
      if (in_field_) field_end_ = content_end;
    } else {
      if (!finishField(buffered, result)) return result;
      if (++fields_ > limits_.max_headers) return fail(400, "Too Many Headers");
      in_field_ = true;
      field_start_ = line_start_;
      field_end_ = content_end;
    }
    line_start_ = nl + 1;
  }
  if (content_length_ < 0) return fail(400, "Missing Content-Length");
  std::size_t total = head_end_ + static_cast<std::size_t>(content_length_);
  if (total > limits_.max_message_bytes) return fail(513, "Message Too Large");
  if (buffered.size() < total) return result;
  result.status = Status::Message;
  result.length = total;
  startOver();
  return result;
}

void StreamReader::append(std::string_view bytes) {
  if (consumed_ > 0 && consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  }
  buffer_.append(bytes);
}

StreamReader::Frame StreamReader::next() {
  Frame frame;
  if (failed_) {
    frame.status = StreamFramer::Status::Error;
    frame.fault = fault_;
    return frame;
  }
  std::string_view pending(buffer_.data() + consumed_, buffer_.size() - consumed_);
  if (pending.empty()) return frame;
  StreamFramer::Result r = framer_.next(pending);
  frame.status = r.status;
  switch (r.status) {
    case StreamFramer::Status::NeedMore:
      // Keep the unconsumed tail only, so the buffer never holds more than one message.
      if (consumed_ > 0) {
        buffer_.erase(0, consumed_);
        consumed_ = 0;
      }
      break;
    case StreamFramer::Status::KeepAlive:
      frame.bytes.assign(pending.substr(0, r.length));
      consumed_ += r.length;
      break;
    case StreamFramer::Status::Message:
      frame.bytes.assign(pending.substr(0, r.length));
      consumed_ += r.length;
      break;
    case StreamFramer::Status::Error:
      failed_ = true;
      fault_ = r.fault;
      frame.fault = r.fault;
      frame.bytes.assign(pending.substr(0, std::min<std::size_t>(pending.size(), max_error_bytes_)));
      buffer_.clear();
      consumed_ = 0;
      break;
  }
  return frame;
}

}  // namespace palisade::sip
