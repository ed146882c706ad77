#pragma once
// A Call: one back-to-back user agent pair. Leg 0 faces the caller (we are its UAS), leg 1
// faces the callee (we are its UAC). Each leg has its own Call-ID, tags, CSeq space, Contact
// and route set, so nothing identifying one side reaches the other (topology hiding); which
// other header fields cross is the engine's HeaderPolicy. Owned by the Engine of one worker;
// all methods run on that worker.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dialog/call_record.h"
#include "core/dialog/media_hook.h"
#include "core/event/timer_queue.h"
#include "core/net/endpoint.h"
#include "core/sip/builder.h"
#include "core/sip/header_policy.h"
#include "core/sip/message.h"
#include "core/txn/transaction.h"
#include "policy/api/request_context.h"

namespace palisade::dialog {

class Engine;
struct Target;

struct Leg {
  net::Side side = net::Side::Public;                        // the listener this leg uses
  net::Flow flow;                                            // next hop for everything sent on this leg
  std::shared_ptr<const txn::PeerAddresses> peer_addresses;  // where else it may answer from
  bool identity_trusted = false;  // identity headers it sends may cross to the other leg
  std::string call_id;
  std::string local_tag;
  std::string remote_tag;
  std::string local_uri;      // From/To value (without tag) that names us on this leg
  std::string remote_uri;     // From/To value (without tag) that names the peer
  std::string remote_target;  // the peer's Contact URI (Request-URI of our requests)
  std::vector<std::string> route_set;
  bool sips = false;  // the dialog began with a SIPS Request-URI (our Contact is SIPS too)
  std::uint32_t local_cseq = 1;
  std::uint32_t remote_cseq = 0;
};

class Call final : public txn::TransactionUser {
 public:
  // Bounds on per-call state that grows with what peers send.
  static constexpr std::size_t kMaxEarlyDialogs = 16;         // forks answering one INVITE
  static constexpr std::size_t kMaxRequestsInFlight = 16;     // relayed non-INVITE requests
  static constexpr std::size_t kMaxInviteExchanges = 8;       // INVITE exchanges kept at once
  static constexpr std::size_t kMaxUnackedProvisionals = 16;  // reliable provisionals awaiting PRACK
  static constexpr base::Millis kSpendCheckMs = 5000;         // how often a rated call checks the caps

  // `admitted`: what the policy chain knew when it let the INVITE in (kept for the call's life).
  Call(Engine& engine, const policy::RequestContext& admitted, std::unique_ptr<CallMedia> media);
  ~Call() override;

  // Starts the call from an initial INVITE received on `flow` (its server transaction is
  // already created and has sent 100 Trying), towards `target` on the other side.
  void start(txn::ServerTransaction& invite, const Target& target);
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
    std::string ack_bytes;                  // our ACK to the other leg, resent on 2xx retransmissions
    std::vector<std::string> hung_up_tags;  // stray 2xx dialogs already ACKed and hung up
  };
  // A non-INVITE request relayed from leg `from` to the other leg.
  struct RequestExchange {
    int from = 0;
    sip::Method method = sip::Method::Unknown;
    bool early = false;  // in an early dialog: part of the initial offer/answer
    txn::ServerTransaction* server = nullptr;
    txn::ClientTransaction* client = nullptr;
  };
  // One early dialog of the initial INVITE (RFC 3261 §12.1: one per callee To-tag). Each has
  // its own RSeq space on both legs (RFC 3262 §3) and its own callee target and route set.
  struct EarlyDialog {
    std::string callee_tag;
    std::string caller_side_tag;
    std::string callee_target;               // the callee's Contact in this early dialog
    std::vector<std::string> callee_routes;  // its Record-Route list, reversed
    std::uint32_t next_rseq = 0;             // our next RSeq toward the caller; 0: none sent yet
    std::uint32_t callee_rseq = 0;           // the callee's last RSeq taken; 0: none yet
    std::uint32_t caller_cseq = 0;           // the caller's last CSeq in this dialog
    std::uint32_t callee_cseq = 0;           // the callee's last CSeq in this dialog
  };
  // The early dialogs, kept apart from the confirmed dialog in legs_, and bounded.
  class EarlyDialogs {
   public:
    // The early dialog for `callee_tag`: the first one uses `first_tag` toward the caller,
    // later forks get `make()`'s; nullptr once kMaxEarlyDialogs are known.
    template <typename MakeTag>
    EarlyDialog* forCallee(std::string_view callee_tag, const std::string& first_tag, MakeTag make);
    EarlyDialog* byCalleeTag(std::string_view callee_tag);
    EarlyDialog* byCallerSideTag(std::string_view caller_side_tag);

   private:
    std::vector<std::unique_ptr<EarlyDialog>> entries_;  // stable addresses
  };
  // A reliable provisional we sent the caller (RFC 3262 §3), relaying one of the callee's.
  struct ReliableProvisional {
    EarlyDialog* dialog = nullptr;
    std::uint32_t rseq = 0;         // ours, which the caller's RAck names
    std::uint32_t callee_rseq = 0;  // the callee's, which our RAck on the callee leg names
    std::string bytes;              // retransmitted until the PRACK or the final response
    base::Millis interval = 0;
    base::Millis deadline = 0;
    event::TimerQueue::Id timer = 0;
  };
  enum class Reliability { Plain, Reliable, Drop };

  // `early`: the early dialog the request belongs to (nullptr: the confirmed dialog);
  // `extra`: header lines the call writes itself (RAck).
  void relayRequest(int from, std::unique_ptr<sip::Message> request, const net::Flow& flow,
                    EarlyDialog* early = nullptr, std::string_view extra = {});
  // PRACK (RFC 3262 §7.2) and UPDATE (RFC 3311 §5.1) inside an early dialog of the initial INVITE.
  void onPrack(int leg, std::unique_ptr<sip::Message> request, const net::Flow& flow);
  void onEarlyUpdate(int leg, std::unique_ptr<sip::Message> request, const net::Flow& flow);
  // The common checks of a request relayed in an early dialog; false when it was answered.
  bool admitEarlyRequest(int leg, const sip::Message& request, std::uint32_t& last_cseq,
                         const net::Flow& flow);
  // Whether the callee's provisional `response` in `dialog` crosses reliably, plainly, or not
  // at all (a retransmission, out of order, malformed, over the bound); `callee_rseq` is its RSeq.
  Reliability classifyProvisional(const EarlyDialog& dialog, const sip::Message& response,
                                  std::uint32_t& callee_rseq);
  void sendReliableProvisional(InviteExchange& ex, EarlyDialog& dialog, std::uint32_t callee_rseq, int status,
                               const sip::Message& response, sip::Body body);
  void retransmitProvisional(ReliableProvisional* provisional);
  void onPrackTimeout(ReliableProvisional* provisional);
  // The INVITE got its final response (or the call ends): no more retransmissions.
  void stopProvisionals();
  void learnEarlyDialog(EarlyDialog& dialog, const sip::Message& response);
  void relayAck(int from, const sip::Message& ack, const net::Flow& flow);
  void relayInviteResponse(InviteExchange& ex, const sip::Message& response);
  void relayNonInviteResponse(RequestExchange& rx, const sip::Message& response);
  // A 2xx for a dialog the call does not want (a late fork, the CANCEL race): ACK and BYE it,
  // once per To-tag and for at most kMaxEarlyDialogs of them.
  void hangUpStray(InviteExchange& ex, const sip::Message& response, bool initial);
  bool identityCrosses(int from, int to) const;
  // The body that crosses toward leg `to`; `storage` holds a rewritten one.
  BodyVerdict crossBody(const BodyCrossing& where, const sip::Message& source, std::string& storage);
  std::string buildRequest(int to, std::string_view method, std::uint32_t cseq, const std::string& branch,
                           const sip::Message* source, sip::Body body, txn::RequestLines* lines,
                           const EarlyDialog* early = nullptr, std::string_view extra = {});
  std::string buildResponse(txn::ServerTransaction& server, int from, const sip::Message& response,
                            std::string_view to_tag, sip::Body body, std::string_view extra = {});
  std::string contactLine(int leg) const;
  std::string viaLine(int leg, const std::string& branch) const;
  void sendCancel(InviteExchange& invite);
  // Answers a pending request ourselves (timeout, CANCEL, end of call) and lets go of it.
  void answerLocally(txn::ServerTransaction*& server, int status, std::string_view reason,
                     std::string_view to_tag);
  void retransmitOk(InviteExchange* invite);
  void onAckTimeout(InviteExchange* invite);
  void learnCalleeDialog(const sip::Message& response);
  void startClient(int to, sip::Method method, const std::string& branch, std::string bytes,
                   txn::RequestLines lines, txn::ClientTransaction** out);
  void sendBye(int leg);
  // Whether requests of our own (BYE) may go to that leg: not to a UDP source that never
  // showed it receives there (a spoofed caller), which would only reflect traffic.
  bool reachable(int leg) const;
  void markVerified(int leg, const net::Flow& flow);
  void terminate(bool count_timeout);
  // Who ended the call and why, for its CDR; the first one said counts.
  void noteEnd(const char* by, const char* reason);
  // Unique on this node while the call lives (spend accounting names its active call by it).
  std::uint64_t token() const { return reinterpret_cast<std::uintptr_t>(this); }
  void checkSpend();
  void end();
  InviteExchange* findInvite(const txn::ClientTransaction* client);
  InviteExchange* findInvite(const txn::ServerTransaction* server);
  RequestExchange* findRequest(const txn::ClientTransaction* client);
  void forgetRequest(RequestExchange* rx);

  Engine& engine_;
  State state_ = State::Calling;
  Leg legs_[2];
  policy::RuleIds rules_;  // shared counters this call holds besides the global one
  std::shared_ptr<const sip::HeaderPolicy> header_policy_;  // as admitted: a reload does not change it
  std::string asserted_;              // an authenticated caller's identity, asserted toward the callee
  std::uint32_t max_duration_s_ = 0;  // the caller's maximum duration (0: sip.max_call_duration_s)
  policy::RequestContext admitted_;   // what the policy chain made of it (its request pointer cleared)
  CallRecord record_;                 // its CDR, filled as it goes, written when it ends
  std::unique_ptr<CallMedia> media_;
  EarlyDialogs early_;
  bool caller_reliable_ = false;  // the caller's INVITE offered 100rel (Supported or Require)
  std::vector<std::unique_ptr<ReliableProvisional>> unacked_;  // at most kMaxUnackedProvisionals
  std::vector<std::unique_ptr<InviteExchange>> invites_;
  std::vector<std::unique_ptr<RequestExchange>> requests_;
  event::TimerQueue::Id duration_timer_ = 0;
  event::TimerQueue::Id ring_timer_ = 0;
  event::TimerQueue::Id cancel_guard_timer_ = 0;
  event::TimerQueue::Id spend_timer_ = 0;  // answered rated calls: whether the caller reached its cap
};

}  // namespace palisade::dialog
