#pragma once
// One SIP message: the received bytes plus an index built in one pass (RFC 3261 §7).
// The scanner records where each header field lies and parses the transaction key (top Via,
// From/To tags, Call-ID, CSeq, Max-Forwards, Content-Length); every other header value is
// parsed on demand by the views in headers.h. The received bytes are never modified.
// A Message is owned by one worker at a time and is moved, not shared, between workers.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/sip/headers.h"

namespace palisade::sip {

enum class Method : std::uint8_t {
  Unknown,
  Invite,
  Ack,
  Bye,
  Cancel,
  Options,
  Register,
  Update,
  Info,
  Prack,
  Subscribe,
  Notify,
  Refer,
  Message,
  Publish
};
Method methodFromName(std::string_view name);  // case-sensitive (RFC 3261 §7.1)
std::string_view methodName(Method m);

enum class Hdr : std::uint8_t {
  Other,
  Via,
  From,
  To,
  CallId,
  CSeq,
  MaxForwards,
  Contact,
  Route,
  RecordRoute,
  ContentLength,
  ContentType,
  Require,
  ProxyRequire,
  Supported,
  Unsupported,
  Allow,
  UserAgent,
  Server,
  Path,
  ServiceRoute,
  Rseq,
  Rack,
  Warning,
  ReplyTo,
  ErrorInfo,
  CallInfo,
  Organization,
  Timestamp,
  kCount
};
Hdr headerIdFromName(std::string_view name);  // case-insensitive, compact forms included

struct HeaderField {
  Hdr id = Hdr::Other;
  std::string_view name;    // as received
  std::string_view value;   // trimmed; may still contain folded line breaks
  std::uint32_t begin = 0;  // offset of the field's first byte in the buffer
  std::uint32_t end = 0;    // offset just past its line ending
};

struct Limits {
  std::uint32_t max_message_bytes = 65535;
  std::uint32_t max_headers = 128;
  std::uint32_t max_line_bytes = 8192;
};

// Why a message was refused: `status` is the SIP response to send for a request (400, 505,
// 513...), or 0 when the message is to be dropped silently.
struct ParseFault {
  int status = 0;
  std::string_view reason;
};

class Message {
 public:
  // Scans `bytes` (one datagram, or one message cut from a stream by the StreamFramer).
  // Returns nullptr only when not even a start line could be found; otherwise check ok():
  // a faulty request still exposes whatever was scanned, so that a 400 can be built.
  // `datagram`: no Content-Length means "body is the rest" (RFC 3261 §18.3), a short body
  // is an error and trailing bytes beyond Content-Length are ignored.
  static std::unique_ptr<Message> parse(std::string bytes, const Limits& limits, bool datagram);

  bool ok() const { return fault_.status == 0 && !dropped_; }
  bool dropped() const { return dropped_; }
  const ParseFault& fault() const { return fault_; }

  bool isRequest() const { return is_request_; }
  Method method() const { return method_; }
  std::string_view methodText() const { return method_text_; }
  std::string_view requestUri() const { return request_uri_; }
  int statusCode() const { return status_code_; }
  std::string_view reasonPhrase() const { return reason_; }

  const std::vector<HeaderField>& headers() const { return headers_; }
  const HeaderField* find(Hdr id) const;
  std::size_t count(Hdr id) const;

  std::string_view callId() const { return call_id_; }
  std::uint32_t cseq() const { return cseq_; }
  Method cseqMethod() const { return cseq_method_; }
  std::string_view cseqMethodText() const { return cseq_method_text_; }
  std::string_view fromTag() const { return from_.tag; }
  std::string_view toTag() const { return to_.tag; }
  const NameAddr& from() const { return from_; }
  const NameAddr& to() const { return to_; }
  const Via& topVia() const { return top_via_; }
  std::size_t viaCount() const { return via_count_; }
  int maxForwards() const { return max_forwards_; }  // -1 when absent
  std::string_view body() const { return body_; }
  std::string_view raw() const { return bytes_; }

  // The first Contact of this message (parsed on demand); false when absent or '*'.
  bool firstContact(NameAddr& out) const;

 private:
  Message() = default;
  void scan(const Limits& limits, bool datagram);
  bool scanStartLine(std::string_view line);
  void validateRequest();
  void indexHeader(HeaderField& field);
  void fail(int status, std::string_view reason);
  void drop() { dropped_ = true; }

  std::string bytes_;
  bool is_request_ = false;
  bool dropped_ = false;
  ParseFault fault_;
  Method method_ = Method::Unknown;
  std::string_view method_text_, request_uri_, version_, reason_;
  int status_code_ = 0;
  std::vector<HeaderField> headers_;
  std::string_view call_id_;
  std::uint32_t cseq_ = 0;
  Method cseq_method_ = Method::Unknown;
  std::string_view cseq_method_text_;
  NameAddr from_, to_;
  Via top_via_;
  std::size_t via_count_ = 0;
  int max_forwards_ = -1;
  long long content_length_ = -1;
  std::string_view body_;
};

}  // namespace palisade::sip
