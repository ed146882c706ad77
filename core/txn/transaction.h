#pragma once
// The four RFC 3261 §17 transaction machines (with the RFC 6026 Accepted states) for one
// worker. Transactions are owned by the TransactionLayer; the transaction user (a Call)
// holds raw pointers and detaches itself on destruction. Single-threaded: every method runs
// on the owning worker.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "core/base/clock.h"
#include "core/base/owner_thread.h"
#include "core/event/timer_queue.h"
#include "core/net/endpoint.h"
#include "core/sip/message.h"

namespace palisade::stats {
struct Shard;
}

namespace palisade::txn {

struct Timers {
  base::Millis t1 = 500;
  base::Millis t2 = 4000;
  base::Millis t4 = 5000;
};

class ClientTransaction;
class ServerTransaction;

enum class ResponseDisposition {
  Consumed,       // matched a client transaction (and went to its user, if any)
  NoTransaction,  // stray: no client transaction matches
  Orphan2xx,      // the first 2xx of a dialog for an INVITE transaction whose user has gone
  Foreign,        // matched a branch but came from elsewhere than the request went: dropped
};

// An address prefix ("192.0.2.0/24"; a host is /32 or /128).
struct AddressPrefix {
  boost::asio::ip::address address;  // canonical (IPv4-mapped addresses as IPv4)
  unsigned length = 0;
  bool contains(const boost::asio::ip::address& candidate) const;
  // "192.0.2.0/24", "2001:db8::/32" or a plain address; nothing on bad input.
  static std::optional<AddressPrefix> parse(std::string_view text);
};
// Where a peer may answer from besides the address the request went to (a configured peer's
// `addresses`). Shared by every transaction toward that peer; immutable.
using PeerAddresses = std::vector<AddressPrefix>;

// Receives what transactions pass up (RFC 3261 §17: "the TU").
class TransactionUser {
 public:
  virtual ~TransactionUser() = default;
  // Provisional and final responses (for INVITE: every 2xx, including retransmissions and
  // other forks, while the transaction is Accepted).
  virtual void onResponse(ClientTransaction& txn, std::unique_ptr<sip::Message> response) = 0;
  // Timer B or F fired without a final response (reported as a 408 by the caller).
  virtual void onTimeout(ClientTransaction& txn) = 0;
  // A CANCEL matched this INVITE server transaction (the layer already answered it 200).
  virtual void onCancel(ServerTransaction& txn) = 0;
  // The layer is about to destroy a transaction this user is attached to.
  virtual void onClientGone(ClientTransaction& txn) = 0;
  virtual void onServerGone(ServerTransaction& txn) = 0;
};

// What the layer needs to build an ACK for a non-2xx final response and a CANCEL
// (RFC 3261 §17.1.1.3, §9.1): the INVITE's fields, serialized.
struct RequestLines {
  std::string request_uri;
  std::string via;      // full "Via: ...\r\n" line with our branch
  std::string routes;   // "Route: ...\r\n" lines, may be empty
  std::string from;     // full "From: ...\r\n" line
  std::string to;       // full "To: ...\r\n" line as sent (no tag on initial requests)
  std::string call_id;  // full "Call-ID: ...\r\n" line
  std::uint32_t cseq = 0;
};

class ClientTransaction {
 public:
  enum class State { Calling, Trying, Proceeding, Accepted, Completed, Terminated };
  sip::Method method() const { return method_; }
  State state() const { return state_; }
  const std::string& branch() const { return branch_; }
  const net::Flow& flow() const { return flow_; }
  const RequestLines& lines() const { return lines_; }
  bool gotProvisional() const { return got_provisional_; }
  // Whether a response received on `from` may belong to this transaction: the flow the
  // request was sent on (UDP: its destination address and port, or one of the peer's
  // configured addresses; TCP: the same connection, or the one opened to that peer).
  bool acceptsResponseFrom(const net::Flow& from) const;
  void detach() { user_ = nullptr; }
  // Builds the CANCEL for this INVITE (same branch, RFC 3261 §9.1).
  std::string buildCancel() const;

 private:
  friend class TransactionLayer;
  sip::Method method_ = sip::Method::Unknown;
  State state_ = State::Calling;
  std::string key_;
  std::string branch_;
  net::Flow flow_;
  std::shared_ptr<const PeerAddresses> peer_addresses_;
  std::string request_;
  RequestLines lines_;
  std::string ack_;                       // the ACK sent for a non-2xx final, resent on retransmissions
  std::vector<std::string> orphan_tags_;  // 2xx To-tags already reported as Orphan2xx
  TransactionUser* user_ = nullptr;
  bool got_provisional_ = false;
  base::Millis retransmit_interval_ = 0;
  event::TimerQueue::Id retransmit_timer_ = 0;
  event::TimerQueue::Id timeout_timer_ = 0;
  event::TimerQueue::Id cleanup_timer_ = 0;
};

class ServerTransaction {
 public:
  enum class State { Trying, Proceeding, Accepted, Completed, Confirmed, Terminated };
  sip::Method method() const { return method_; }
  State state() const { return state_; }
  // The request; only until the final response is sent (then it is freed: a call can keep
  // thousands of finished transactions alive for Timer L/J).
  const sip::Message& request() const { return *request_; }
  const net::Flow& flow() const { return flow_; }
  bool finalSent() const { return final_status_ >= 200; }
  void attach(TransactionUser* user) { user_ = user; }
  void detach() { user_ = nullptr; }

 private:
  friend class TransactionLayer;
  State state_ = State::Trying;
  std::string key_;
  sip::Method method_ = sip::Method::Unknown;
  std::unique_ptr<sip::Message> request_;
  net::Flow flow_;
  std::string last_response_;
  int final_status_ = 0;
  TransactionUser* user_ = nullptr;
  base::Millis retransmit_interval_ = 0;
  event::TimerQueue::Id retransmit_timer_ = 0;
  event::TimerQueue::Id timeout_timer_ = 0;
};

class TransactionLayer {
 public:
  // Dialogs of an INVITE whose user has gone that are reported (to be ACKed and hung up).
  static constexpr std::size_t kMaxOrphanDialogs = 16;
  TransactionLayer(net::Network& network, event::TimerQueue& timers, const base::Clock& clock,
                   stats::Shard& stats);
  ~TransactionLayer();
  void setTimers(const Timers& timers) { timers_ = timers; }
  const Timers& timers() const { return timers_; }

  // Client side: sends `request` (already serialized, its top Via carrying `branch`).
  // `peer_addresses`: where else the peer may answer from (null: only flow.remote).
  ClientTransaction* startClient(sip::Method method, std::string branch, const net::Flow& flow,
                                 std::string request, RequestLines lines, TransactionUser* user,
                                 std::shared_ptr<const PeerAddresses> peer_addresses = nullptr);
  // Routes a response received on `flow` to its client transaction (RFC 3261 §17.1.3), if it
  // came from where that transaction's request went.
  ResponseDisposition handleResponse(std::unique_ptr<sip::Message>& response, const net::Flow& flow);

  // Server side. Returns true when `request` was a retransmission or an ACK/CANCEL consumed by
  // an existing transaction; `request` is then consumed.
  bool absorbRequest(std::unique_ptr<sip::Message>& request, const net::Flow& flow);
  // Creates the server transaction for a new request (sends 100 Trying for INVITE).
  ServerTransaction* startServer(std::unique_ptr<sip::Message> request, const net::Flow& flow,
                                 TransactionUser* user);
  // Sends a response built by the TU through the transaction.
  void respond(ServerTransaction& txn, int status, std::string bytes);
  // Forgets a server transaction that will never be answered (a request dropped by policy
  // after it was held): its user is told through onServerGone.
  void abandon(ServerTransaction& txn);

  // Sends bytes outside any transaction (ACK for 2xx, stateless replies).
  void sendRaw(const net::Flow& flow, std::string bytes);

  std::size_t clientCount() const { return clients_.size(); }
  std::size_t serverCount() const { return servers_.size(); }

 private:
  static std::string serverKey(const sip::Message& msg, bool as_invite, net::Side side);
  static bool fromOrigin(const ServerTransaction& t, const net::Flow& flow);
  void destroyClient(ClientTransaction* txn);
  void destroyServer(ServerTransaction* txn);
  void clientRetransmit(ClientTransaction* txn);
  void clientTimeout(ClientTransaction* txn);
  void serverRetransmit(ServerTransaction* txn);
  std::string buildAck(const ClientTransaction& txn, const sip::Message& response) const;
  bool reliable(const net::Flow& flow) const { return flow.transport != net::Transport::Udp; }
  base::Millis now() const { return clock_.now(); }

  base::OwnerThread owner_;
  net::Network& network_;
  event::TimerQueue& timer_queue_;
  const base::Clock& clock_;
  stats::Shard& stats_;
  Timers timers_;
  std::unordered_map<std::string, std::unique_ptr<ClientTransaction>> clients_;
  std::unordered_map<std::string, std::unique_ptr<ServerTransaction>> servers_;
};

}  // namespace palisade::txn
