#pragma once
// One stream connection (TCP, or TLS over TCP) owned by one worker: the TLS handshake within
// tls.handshake_timeout_s, framing through sip::StreamReader, a deadline timer for a message
// that does not complete (slow-loris: tcp.head_timeout_s) and for idleness (tcp.idle_timeout_s,
// re-armed only by complete messages, never by partial reads), and a send queue bounded in
// bytes. Messages go through the packet filter, then up to the worker's net::Receiver as
// bytes. Everything runs on the owning worker; asio handlers keep the connection alive until
// they return.
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/base/log.h"
#include "core/base/owner_thread.h"
#include "core/net/endpoint.h"
#include "core/sip/stream_framer.h"
#include "core/stats/metrics.h"
#include "policy/api/filters.h"
#include "transport/stream/stream_socket.h"

namespace palisade::transport {

struct StreamSettings {
  sip::Limits limits;
  std::uint32_t idle_timeout_s = 600;
  std::uint32_t head_timeout_s = 10;
  std::uint32_t max_connections = 4096;
  std::uint32_t max_connections_per_ip = 32;
  std::uint32_t max_send_queue_bytes = 1048576;
  // TLS
  std::uint32_t handshake_timeout_s = 5;
  std::uint32_t max_handshakes = 256;
  std::uint32_t max_handshakes_per_ip = 4;
  std::uint32_t max_tls_connections_per_ip = 32;
};

// What every connection of one worker's stream transport shares.
struct StreamContext {
  net::Receiver* receiver = nullptr;
  policy::PacketFilter* filter = nullptr;
  stats::Shard* stats = nullptr;
  const StreamSettings* settings = nullptr;  // the transport's current settings
  base::OwnerThread* owner = nullptr;        // the transport's owner check
};

class StreamConnection final : public std::enable_shared_from_this<StreamConnection> {
 public:
  using Clock = std::chrono::steady_clock;
  using Closed = std::function<void(StreamConnection&)>;
  using Handshaken = std::function<void(StreamConnection&, bool ok)>;

  StreamConnection(boost::asio::ip::tcp::socket socket, const StreamContext& context, const net::Flow& flow,
                   bool outbound, Closed on_closed)
      : flow_(flow),
        outbound_(outbound),
        socket_(std::move(socket)),
        context_(context),
        reader_(context.settings->limits),
        deadline_(socket_.socket().get_executor()),
        on_closed_(std::move(on_closed)),
        last_activity_(Clock::now()) {}

  std::uint32_t id() const { return flow_.conn_id; }
  const net::Flow& flow() const { return flow_; }
  bool outbound() const { return outbound_; }
  bool closing() const { return closing_; }
  bool handshaking() const { return handshaking_; }
  bool counted = false;               // holds a ConnectionLimiter slot
  bool holds_handshake_slot = false;  // holds a slot of the handshake limiter
  // The TLS contexts its handshake began with (kept alive for OpenSSL's callbacks).
  std::shared_ptr<const void> tls_contexts;

  StreamSocket& socket() { return socket_; }

  // An accepted connection must bring its first message within head_timeout_s, like any
  // message that has begun: a connection that never sends a byte holds a slot no longer.
  void expectFirstMessage() { partial_since_ = Clock::now(); }

  // The stream is connected (accepted, or our connect completed): read, and write what waits.
  void start() {
    connected_ = true;
    armDeadline();
    read();
    write();
  }

  // TLS is attached to the socket: run the handshake, within handshake_timeout_s, then tell
  // `done` (which starts the connection, or closes it).
  void startHandshake(Handshaken done) {
    handshaking_ = true;
    handshake_since_ = Clock::now();
    armDeadline();
    auto self = shared_from_this();
    socket_.asyncHandshake([self, done = std::move(done)](const boost::system::error_code& ec) {
      if (self->closing_) return;
      self->handshaking_ = false;
      if (ec) {
        self->context_.stats->add(stats::Counter::TlsHandshakeFailures);
        LOG_DEBUG("TLS handshake with {} failed: {}", self->flow_.remote.toString(),
                  self->socket_.lastError().empty() ? ec.message() : self->socket_.lastError());
      }
      done(*self, !ec);
    });
  }

  void send(std::string&& bytes) {
    context_.owner->check("StreamConnection");
    if (closing_ || close_after_flush_) return;
    const std::size_t limit = context_.settings->max_send_queue_bytes;
    if (queued_bytes_ + bytes.size() > limit) {
      context_.stats->add(stats::Counter::TcpSendQueueOverflows);
      LOG_WARN("{} connection to {} is not reading what we send, closing",
               net::transportName(flow_.transport), flow_.remote.toString());
      close();
      return;
    }
    queued_bytes_ += bytes.size();
    queue_.push_back(std::move(bytes));
    last_activity_ = Clock::now();
    if (connected_) write();
  }

  void close() {
    if (closing_) return;
    // The transport lets go of us in on_closed_: stay alive until this returns (a connection
    // still connecting has no handler holding it).
    auto self = shared_from_this();
    closing_ = true;
    deadline_.cancel();
    socket_.close();
    queue_.clear();
    if (on_closed_) on_closed_(*this);
  }

  // Stops reading and closes once everything queued has been written (a final answer).
  void closeAfterFlush() {
    close_after_flush_ = true;
    if (!writing_ && queue_.empty()) close();
  }

  // Re-evaluates the deadline after a settings change (reload).
  void settingsChanged() {
    reader_.setLimits(context_.settings->limits);
    armDeadline();
  }

 private:
  void read() {
    if (closing_ || close_after_flush_) return;
    auto self = shared_from_this();
    socket_.asyncReadSome(boost::asio::buffer(chunk_),
                          [self](const boost::system::error_code& ec, std::size_t size) {
                            if (self->closing_) return;
                            if (ec) {
                              self->close();
                              return;
                            }
                            self->onRead(size);
                          });
  }

  void onRead(std::size_t size) {
    context_.owner->check("StreamConnection");
    reader_.append(std::string_view(chunk_.data(), size));
    bool framed = false;  // a message (or keep-alive) completed in this read
    while (!closing_ && !close_after_flush_) {
      sip::StreamReader::Frame frame = reader_.next();
      if (frame.status == sip::StreamFramer::Status::NeedMore) break;
      framed = true;
      if (frame.status == sip::StreamFramer::Status::KeepAlive) {
        last_activity_ = Clock::now();
        // RFC 5626 §3.5.1: a double-CRLF ping gets a single-CRLF pong.
        if (frame.bytes.size() >= 4 && frame.bytes.compare(0, 4, "\r\n\r\n") == 0) send(std::string("\r\n"));
        continue;
      }
      if (frame.status == sip::StreamFramer::Status::Error) {
        // Unrecoverable framing (RFC 3261 §18.3): answer if we can, then close.
        context_.receiver->onStreamFault(flow_, std::move(frame.bytes), frame.fault.status,
                                         frame.fault.reason);
        closeAfterFlush();
        return;
      }
      last_activity_ = Clock::now();
      context_.stats->add(flow_.transport == net::Transport::Tls ? stats::Counter::MessagesInTls
                                                                 : stats::Counter::MessagesInTcp);
      net::Flow flow = flow_;
      // The Via sent-by port a response may reconnect to is the dispatcher's to read; an
      // accepted connection falls back to the default port (RFC 3261 §18.2.2, §19.1.2).
      flow.reconnect_port = outbound_ ? 0 : flow_.transport == net::Transport::Tls ? 5061 : 5060;
      if (context_.filter != nullptr && !context_.filter->admit(flow, frame.bytes)) {
        context_.stats->add(stats::Counter::DroppedUntrusted);
      } else {
        context_.receiver->onPacket(flow, std::move(frame.bytes), false);
      }
    }
    if (closing_ || close_after_flush_) return;
    // A message that has begun must complete within head_timeout_s, however slowly it drips.
    if (framed) partial_since_.reset();
    if (reader_.partial()) {
      if (!partial_since_) {
        partial_since_ = Clock::now();
        armDeadline();
      }
    } else {
      partial_since_.reset();
    }
    read();
  }

  void write() {
    if (writing_ || queue_.empty() || closing_ || !connected_) return;
    writing_ = true;
    in_flight_.clear();
    buffers_.clear();
    while (!queue_.empty() && in_flight_.size() < 64) {
      in_flight_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    for (const auto& bytes : in_flight_) buffers_.emplace_back(bytes.data(), bytes.size());
    auto self = shared_from_this();
    socket_.asyncWrite(buffers_, [self](const boost::system::error_code& ec) {
      if (self->closing_) return;
      self->writing_ = false;
      if (ec) {
        self->close();
        return;
      }
      for (const auto& bytes : self->in_flight_) self->queued_bytes_ -= bytes.size();
      self->in_flight_.clear();
      if (self->close_after_flush_ && self->queue_.empty()) {
        self->close();
        return;
      }
      self->write();
    });
  }

  // One timer serves both deadlines: it is armed for the earlier one and, when it fires,
  // re-armed for whatever is due next (activity only moves a timestamp).
  void armDeadline() {
    if (closing_) return;
    Clock::time_point due = last_activity_ + std::chrono::seconds(context_.settings->idle_timeout_s);
    if (partial_since_) {
      due = std::min(due, *partial_since_ + std::chrono::seconds(context_.settings->head_timeout_s));
    }
    if (handshaking_) {
      due = std::min(due, handshake_since_ + std::chrono::seconds(context_.settings->handshake_timeout_s));
    }
    if (armed_ && armed_for_ <= due) return;
    armed_ = true;
    armed_for_ = due;
    deadline_.expires_at(due);
    auto self = shared_from_this();
    deadline_.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->closing_) return;  // re-armed or closed
      self->armed_ = false;
      self->onDeadline();
    });
  }

  void onDeadline() {
    context_.owner->check("StreamConnection");
    Clock::time_point now = Clock::now();
    const StreamSettings& s = *context_.settings;
    if (handshaking_ && now >= handshake_since_ + std::chrono::seconds(s.handshake_timeout_s)) {
      context_.stats->add(stats::Counter::TlsHandshakeTimeouts);
      // Connections that never finish a handshake count against their source, like slow-loris.
      if (context_.filter != nullptr && !outbound_)
        context_.filter->report(flow_, policy::Offence::HeadTimeout);
      LOG_DEBUG("TLS handshake with {} not done after {} s, closing", flow_.remote.toString(),
                s.handshake_timeout_s);
      close();
      return;
    }
    if (partial_since_ && now >= *partial_since_ + std::chrono::seconds(s.head_timeout_s)) {
      context_.stats->add(stats::Counter::TcpHeadTimeouts);
      // Slow-loris from many addresses: each one's stalled connections count against it.
      if (context_.filter != nullptr) context_.filter->report(flow_, policy::Offence::HeadTimeout);
      LOG_DEBUG("{} connection from {}: message not complete after {} s, closing",
                net::transportName(flow_.transport), flow_.remote.toString(), s.head_timeout_s);
      close();
      return;
    }
    if (now >= last_activity_ + std::chrono::seconds(s.idle_timeout_s)) {
      LOG_DEBUG("{} connection {} idle, closing", net::transportName(flow_.transport), flow_.conn_id);
      close();
      return;
    }
    armDeadline();
  }

  net::Flow flow_;  // side, transport, remote, conn_id, conn_worker; peer and verified from the filter
  bool outbound_ = false;
  bool closing_ = false;
  StreamSocket socket_;
  StreamContext context_;
  sip::StreamReader reader_;
  boost::asio::steady_timer deadline_;
  Closed on_closed_;
  // Small: an idle connection should cost little (many phones keep one open each).
  std::array<char, 4096> chunk_{};
  std::deque<std::string> queue_;
  std::vector<std::string> in_flight_;
  std::vector<boost::asio::const_buffer> buffers_;
  std::size_t queued_bytes_ = 0;  // queued and in flight
  Clock::time_point last_activity_;
  std::optional<Clock::time_point> partial_since_;
  Clock::time_point armed_for_{};
  bool armed_ = false;
  bool connected_ = false;
  bool handshaking_ = false;
  Clock::time_point handshake_since_{};
  bool writing_ = false;
  bool close_after_flush_ = false;
};

}  // namespace palisade::transport
