#pragma once
// SDP (RFC 8866) as the media layer needs it: a parse into views over the received body, and a
// writer that emits a description naming only Palisade. The writer works from a plan (our
// address, ports, profile and keys per media section) and copies across only what is safe:
// codecs, bandwidth, timing and attributes that say nothing about where the other side is.
// Nothing here allocates per packet; parse and write run once per offer or answer.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"

namespace palisade::media::sdp {

enum class Direction : std::uint8_t { SendRecv, SendOnly, RecvOnly, Inactive };
std::string_view directionName(Direction d);

struct Connection {
  bool ipv6 = false;
  std::string_view address;  // as written ("0.0.0.0" is RFC 2543 hold)
  bool isHold() const { return address == "0.0.0.0" || address == "::"; }
};

struct MediaSection {
  std::string_view kind;  // audio, video, image, application...
  std::uint16_t port = 0;
  std::uint16_t port_count = 1;          // m=audio 49170/2 ...
  std::string_view proto;                // RTP/AVP, RTP/SAVP, RTP/AVPF, RTP/SAVPF, UDP/TLS/RTP/SAVP, udptl...
  std::string_view formats;              // the fmt list as written
  std::optional<Connection> connection;  // media-level c=
  std::optional<Direction> direction;
  bool rtcp_mux = false;
  std::optional<std::uint16_t> rtcp_port;  // a=rtcp:PORT [IN IP4 addr]
  std::vector<std::string_view> crypto;    // a=crypto values (RFC 4568)
  bool dtls = false;                       // a=fingerprint present (DTLS-SRTP keys)
  // The section's other lines (b=, a=...), in order, without their line ending; the writer
  // filters them.
  std::vector<std::string_view> lines;

  bool rejected() const { return port == 0; }
  bool isRtp() const { return proto.starts_with("RTP/") || proto.starts_with("UDP/TLS/RTP/"); }
  bool isSecure() const { return proto.find("SAVP") != std::string_view::npos; }
  bool hasFeedback() const { return proto.ends_with("AVPF"); }
};

struct SessionDescription {
  std::string_view origin_username;
  std::string_view session_id;
  std::string_view session_version;
  std::optional<Connection> connection;  // session-level c=
  std::optional<Direction> direction;    // session-level direction attribute
  std::vector<std::string_view> lines;   // other session-level lines (t=, b=, a=...), in order
  std::vector<MediaSection> media;

  // The connection that applies to media section `i` (its own, or the session's).
  const Connection* connectionFor(std::size_t i) const;
  // The direction that applies to media section `i`.
  Direction directionFor(std::size_t i) const;
};

struct Limits {
  std::size_t max_media = 16;   // m= sections
  std::size_t max_lines = 512;  // lines in all
};

// Parses `body` (CRLF or bare LF line ends). The result views into `body`, which must outlive it.
// A description that is not SDP, lacks v=/o=/m= essentials, or exceeds the limits is an error.
base::Result<SessionDescription> parse(std::string_view body, const Limits& limits = {});

// What Palisade writes for one media section.
struct MediaPlan {
  bool reject = false;          // port 0 (a stream we do not relay)
  std::uint16_t port = 0;       // our RTP port for this side
  std::uint16_t rtcp_port = 0;  // our RTCP port (port + 1), unless rtcp_mux
  bool rtcp_mux = false;
  bool hold_address = false;        // write c=0.0.0.0 (the other side put it on hold that way)
  std::string_view proto;           // the profile for this side
  std::vector<std::string> crypto;  // a=crypto values to write (SDES keys of ours)
};

struct Plan {
  std::string_view address;  // our media address on this side
  bool ipv6 = false;
  std::uint64_t session_id = 0;
  std::uint64_t session_version = 0;
  std::vector<MediaPlan> media;  // one per section of the input, same order
};

// Writes the description `in` as Palisade presents it to one side: o=/s=/c= are ours, each
// m= line and its transport attributes follow `plan`, and every line that would name the other
// side's addresses or keys (ICE candidates, rtcp, crypto, fingerprints, e=/p=/u=/i=) is dropped.
std::string write(const SessionDescription& in, const Plan& plan);

}  // namespace palisade::media::sdp
