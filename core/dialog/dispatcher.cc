#include "core/dialog/dispatcher.h"

#include "core/dialog/engine.h"
#include "core/dialog/identifiers.h"

namespace palisade::dialog {

using stats::Counter;

namespace {

// A scanned message on its way to the engine that owns it.
class DeliverTask final : public event::Task {
 public:
  DeliverTask(Engine& engine, std::unique_ptr<sip::Message> message, const net::Flow& flow, bool shed)
      : engine_(engine), message_(std::move(message)), flow_(flow), shed_(shed) {}
  void run() override {
    if (shed_) {
      engine_.onShed(std::move(message_), flow_);
    } else {
      engine_.onMessage(std::move(message_), flow_);
    }
  }
  const sip::Message& message() const { return *message_; }

 private:
  Engine& engine_;
  std::unique_ptr<sip::Message> message_;
  net::Flow flow_;
  bool shed_;
};

}  // namespace

Dispatcher::Dispatcher(std::uint32_t index, stats::Shard& stats, const sip::Limits& limits)
    : index_(index), stats_(stats), limits_(limits) {}

void Dispatcher::onPacket(const net::Flow& flow, std::string&& bytes, bool datagram) {
  owner_thread_.check("Dispatcher");
  // A datagram of bare line ends is a NAT keep-alive (what phones send between REGISTERs):
  // it has done its work by arriving, and is no parse error.
  if (datagram && bytes.find_first_not_of("\r\n") == std::string::npos) return;
  // STUN (RFC 5389, first byte 0 or 1) and NUL keep-alives of phones are not SIP, but not
  // an offence either.
  bool binary = !bytes.empty() && static_cast<unsigned char>(bytes[0]) < 0x04;
  auto message = sip::Message::parse(std::move(bytes), limits_, datagram);
  if (!message) {
    stats_.add(Counter::ParseErrors);  // not even a start line: nothing to answer
    if (filter_ != nullptr && !binary) filter_->report(flow, policy::Offence::Malformed);
    return;
  }
  if (filter_ != nullptr) {
    if (!message->ok()) {
      filter_->report(flow, policy::Offence::Malformed);  // the owner still answers it (400)
    } else {
      switch (filter_->screen(flow, *message)) {
        case policy::Screen::Pass:
          break;
        case policy::Screen::Drop:
          return;
        case policy::Screen::Reply503:
          // The owner answers: a retransmission of an INVITE it already took is absorbed by
          // its transaction instead of drawing a 503 that would end a call being set up.
          deliver(std::move(message), flow, true);
          return;
      }
    }
  }
  if (!datagram && flow.reconnect_port != 0 && message->isRequest() && message->topVia().port != 0) {
    // A response whose connection is gone reconnects to the Via sent-by port (RFC 3261 §18.2.2).
    net::Flow with_port = flow;
    with_port.reconnect_port = message->topVia().port;
    deliver(std::move(message), with_port);
    return;
  }
  deliver(std::move(message), flow);
}

void Dispatcher::onStreamFault(const net::Flow& flow, std::string&& bytes, int status,
                               std::string_view reason) {
  owner_thread_.check("Dispatcher");
  stats_.add(Counter::ParseErrors);
  if (filter_ != nullptr) filter_->report(flow, policy::Offence::Malformed);
  // Answer what can be answered from the bytes we have (never an ACK), on this worker: the
  // connection is ours and is closed once the answer is written.
  auto message = sip::Message::parse(std::move(bytes), limits_, false);
  if (message && message->isRequest() && message->find(sip::Hdr::Via) != nullptr &&
      message->method() != sip::Method::Ack) {
    owners_[index_].engine->replyStateless(*message, flow, status, reason);
  }
}

void Dispatcher::onStreamClosed(const net::Flow& flow) {
  owner_thread_.check("Dispatcher");
  owners_[index_].engine->onFlowClosed(flow);
}

void Dispatcher::deliver(std::unique_ptr<sip::Message> message, const net::Flow& flow, bool shed) {
  std::uint32_t owner = ownerOf(message->callId(), static_cast<std::uint32_t>(owners_.size()));
  if (owner == index_) {
    if (shed) {
      owners_[owner].engine->onShed(std::move(message), flow);
    } else {
      owners_[owner].engine->onMessage(std::move(message), flow);
    }
    return;
  }
  auto task = std::make_unique<DeliverTask>(*owners_[owner].engine, std::move(message), flow, shed);
  std::unique_ptr<event::Task> queued = std::move(task);
  if (owners_[owner].worker->post(queued)) return;
  stats_.add(Counter::InboxOverflows);
  // Overloaded owner: a new call is refused at once so the caller can retry elsewhere.
  const sip::Message& msg = static_cast<DeliverTask&>(*queued).message();
  if (msg.ok() && msg.isRequest() && msg.method() == sip::Method::Invite && msg.toTag().empty()) {
    stats_.add(Counter::Rejected503);
    owners_[index_].engine->replyStateless(msg, flow, 503, "Service Unavailable", "Retry-After: 5\r\n");
    return;
  }
  // Calls in progress are not lost to overload: responses, ACK, CANCEL and in-dialog requests
  // take the slower posted path, itself bounded per owner. Anything else (malformed, or new
  // work that is not an INVITE) is dropped: it has no call to lose.
  bool in_progress = msg.ok() && (!msg.isRequest() || !msg.toTag().empty() ||
                                  msg.method() == sip::Method::Ack || msg.method() == sip::Method::Cancel);
  if (in_progress) owners_[owner].worker->postOverflow(std::move(queued));
}

}  // namespace palisade::dialog
