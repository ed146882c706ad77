#pragma once
// A Call: one back-to-back user agent pair. Leg 0 faces the caller (we are its UAS), leg 1
// faces the callee (we are its UAC). Each leg has its own Call-ID, tags, CSeq space, Contact
// and route set, so nothing identifying one side reaches the other (topology hiding).
// Owned by the Engine of one worker; all methods run on that worker.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/event/timer_queue.h"
#include "core/net/endpoint.h"
#include "core/sip/message.h"
#include "core/txn/transaction.h"

namespace palisade::dialog {

class Engine;

struct Leg {
  net::Side side = net::Side::Public;  // the listener this leg uses
  net::Flow flow;                      // next hop for everything sent on this leg
  std::string call_id;
  std::string local_tag;
  std::string remote_tag;
  std::string local_uri;      // From/To value (without tag) that names us on this leg
  std::string remote_uri;     // From/To value (without tag) that names the peer
  std::string remote_target;  // the peer's Contact URI (Request-URI of our requests)
  std::vector<std::string> route_set;
  std::uint32_t local_cseq = 1;
  std::uint32_t remote_cseq = 0;
};

class Call final : public txn::TransactionUser {
 public:
  Call(Engine& engine);
  ~Call() override;

  // Starts the call from an initial INVITE received on `flow` (its server transaction is
  // already created and has sent 100 Trying), towards `target` on the other side.
  void start(txn::ServerTransaction& invite, const net::Flow& target);
  // A request inside one of our dialogs (To-tag present), or an ACK for a 2xx.
  void onInDialogRequest(int leg, std::unique_ptr<sip::Message> request, const net::Flow& flow);
  const Leg& leg(int index) const { return legs_[index]; }
  bool ended() const { return state_ == State::Ended; }

  // txn::TransactionUser
  void onResponse(txn::ClientTransaction& txn, std::unique_ptr<sip::Message> response) override;
  void onTimeout(txn::ClientTransaction& txn) override;
  void onCancel(txn::ServerTransaction& txn) override;
  void onClientGone(txn::ClientTransaction& txn) override;
  void onServerGone(txn::ServerTransaction& txn) override;

 private:
  enum class State { Calling, Answered, Confirmed, Cancelled, Ended };

  // An INVITE (initial or re-INVITE) relayed from leg `from` to the other leg.
  struct InviteExchange {
    int from = 0;
    std::uint32_t from_cseq = 0;
    std::uint32_t to_cseq = 0;
    txn::ServerTransaction* server = nullptr;
    txn::ClientTransaction* client = nullptr;
    bool answered = false;        // 2xx relayed to `from`
    bool acked = false;           // ACK relayed to the other leg
    bool cancel_pending = false;  // CANCEL waits for a provisional (RFC 3261 §9.1)
    std::string answered_tag;     // callee's To-tag of the 2xx we relayed
    std::string ok_bytes;         // our 2xx to `from`, retransmitted until the ACK
    base::Millis ok_interval = 0;
    base::Millis ok_deadline = 0;
    event::TimerQueue::Id ok_timer = 0;
    std::string ack_bytes;  // our ACK to the other leg, resent on 2xx retransmissions
  };
  // A non-INVITE request relayed from leg `from` to the other leg.
  struct RequestExchange {
    int from = 0;
    sip::Method method = sip::Method::Unknown;
    txn::ServerTransaction* server = nullptr;
    txn::ClientTransaction* client = nullptr;
  };
  struct EarlyTag {
    std::string callee_tag;
    std::string caller_side_tag;
  };

  void relayRequest(int from, std::unique_ptr<sip::Message> request, const net::Flow& flow);
  void relayAck(int from, const sip::Message& ack);
  void relayResponse(InviteExchange* invite, RequestExchange* request, const sip::Message& response);
  std::string buildRequest(int to, std::string_view method, std::uint32_t cseq, const std::string& branch,
                           const sip::Message* source, txn::RequestLines* lines);
  std::string buildResponse(txn::ServerTransaction& server, int from, const sip::Message& response,
                            std::string_view to_tag);
  void appendCopiedHeaders(std::string& out, const sip::Message& source) const;
  void appendContact(std::string& out, int leg) const;
  std::string viaLine(int leg, const std::string& branch) const;
  void sendCancel(InviteExchange& invite);
  // Answers a pending request ourselves (timeout, CANCEL, end of call) and lets go of it.
  void answerLocally(txn::ServerTransaction*& server, int status, std::string_view reason,
                     std::string_view to_tag);
  void retransmitOk(InviteExchange* invite);
  void onAckTimeout(InviteExchange* invite);
  std::string& callerSideTag(std::string_view callee_tag);
  void learnCalleeDialog(const sip::Message& response);
  void sendBye(int leg);
  void terminate(bool count_timeout);
  void end();
  InviteExchange* findInvite(const txn::ClientTransaction* client);
  InviteExchange* findInvite(const txn::ServerTransaction* server);
  RequestExchange* findRequest(const txn::ClientTransaction* client);

  Engine& engine_;
  State state_ = State::Calling;
  Leg legs_[2];
  std::vector<EarlyTag> early_tags_;
  std::vector<std::unique_ptr<InviteExchange>> invites_;
  std::vector<std::unique_ptr<RequestExchange>> requests_;
  event::TimerQueue::Id duration_timer_ = 0;
  event::TimerQueue::Id ring_timer_ = 0;
  event::TimerQueue::Id cancel_guard_timer_ = 0;
};

}  // namespace palisade::dialog
