#pragma once
// Process-wide counters. Each worker increments its own cache-line-aligned shard (no sharing
// on the data path); the control thread sums the shards when /metrics is scraped.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace palisade::stats {

enum class Counter : std::uint16_t {
  CallsAttempted,      // INVITEs that started a call (either direction)
  CallsAnswered,       // calls that got a 2xx
  CallsFailed,         // calls that ended with a final non-2xx to the caller (not CANCEL)
  CallsCancelled,      // calls the caller cancelled
  CallsTimedOut,       // calls torn down by Timer B/F or the ACK/duration guards
  CallsMediaTimedOut,  // answered calls torn down because no media flowed for media.timeout_s
  CallsMediaRefused,   // offers or answers refused by media anchoring (bad SDP, no acceptable crypto)
  CallsNoMediaPorts,   // new calls answered 503: the worker's media port pairs were exhausted
  MediaPacketsRelayed,
  MediaBytesRelayed,
  MediaSequenceGaps,    // RTP packets missing (by sequence number) on arrival
  MediaAuthFailures,    // SRTP/SRTCP packets that failed authentication (or replays)
  MediaDroppedForeign,  // packets from a source other than the stream's peer (no injection)
  MediaDroppedRate,     // packets over media.max_packet_rate
  MediaDroppedUnready,  // packets before the stream's answer, or not RTP at all
  MessagesInUdp,
  MessagesOutUdp,
  MessagesInTcp,
  MessagesOutTcp,
  MessagesInTls,
  MessagesOutTls,
  ParseErrors,              // received bytes that were not a valid SIP message
  Retransmissions,          // retransmissions sent by our transactions (Timers A, E, G, 2xx)
  RetransmissionsAbsorbed,  // duplicates received and answered from transaction state
  InboxOverflows,           // hand-offs refused because the owner's queue was full
  Rejected503,              // stateless 503s sent for overload
  DroppedUntrusted,         // datagrams/connections from sources not allowed on a listener
  DroppedForeignResponses,  // responses for one of our branches from elsewhere than the request went
  DroppedForeignCancels,    // CANCELs for an INVITE from a source other than the INVITE's
  SentToUnverified,         // messages sent to UDP sources that have not shown they receive there
  EarlyDialogsRefused,      // provisionals of forks beyond the per-call bound
  RequestsOverCallLimit,    // in-dialog requests refused: too many in flight on one call
  ProvisionalsDropped,      // callee reliable provisionals not relayed (bad RSeq, out of order, bound)
  PrackTimeouts,            // INVITEs rejected (500) for a reliable provisional never PRACKed
  PolicyRejected,           // requests the policy chain answered with an error
  PolicyChallenged,         // requests the policy chain challenged (401/407)
  PolicyDropped,            // requests the policy chain dropped without an answer
  PolicyPending,            // requests a policy stage decided later
  PolicyPendingExpired,     // pending requests that got no decision in time (answered 503)
  DroppedBanned,            // packets and connections from banned sources (before parsing)
  DroppedDefaultDeny,       // from the internet when no user may come from there
  DroppedPbxAcl,            // on the PBX listener from anything but the PBX
  DroppedRateLimited,       // over the source's per-class rate ([flood]), dropped
  DroppedScannerAgent,      // requests with a scanner's User-Agent
  DroppedExtensionScan,     // the request that showed a source to be scanning extensions
  DroppedOverload,          // new work shed while a worker was overloaded
  DroppedAmplification,     // answers not sent to an unverified UDP source: larger than its request
  RejectedRateLimited,      // over the source's rate, answered 503 (flood.action = "503")
  RejectedOverload,         // new INVITEs from trunks or the PBX answered 503 while overloaded
  RejectedCallRate,         // new INVITEs over limits.max_cps or a trunk's or user's max_cps
  RejectedCallLimit,        // new INVITEs over a trunk's or user's max_calls
  RejectedDraining,         // new INVITEs while draining for shutdown
  ScannerErrors,            // malformed messages, 4xx answers and refused connections of internet sources
  AuthFailedUnknownUser,    // credentials for a user that does not exist
  AuthFailedPassword,       // a wrong response
  AuthFailedSource,         // a user from an address it may not use
  AuthFailedNonce,          // a nonce that is not ours, or a replayed nonce count
  AuthFailedMalformed,      // credentials that are not usable (no qop, other URI, ...)
  Bans,                     // sources banned
  Registrations,            // REGISTERs the registrar accepted (200)
  RegistrationsRefused,     // authenticated REGISTERs it refused (400, 403, 423)
  CallsToUnregistered,      // calls from the PBX to a user with no binding (480)
  TcpConnectionsAccepted,
  TcpConnectionsRefused,  // over max_connections or max_connections_per_ip
  TcpConnectionsClosed,
  TcpHeadTimeouts,               // connections closed because a message did not complete in time
  TcpSendQueueOverflows,         // connections closed because the peer did not read what we sent
  TcpAcceptBackoffs,             // accept paused because the process ran out of descriptors
  TlsHandshakes,                 // TLS handshakes completed (either direction)
  TlsHandshakeFailures,          // handshakes that failed (bad version, cipher, certificate, ...)
  TlsHandshakeTimeouts,          // connections closed: no handshake within tls.handshake_timeout_s
  TlsHandshakesRefused,          // connections refused: too many handshakes in progress
  TlsClientCertificatesRefused,  // mutual TLS: a verified certificate without the trunk's names
  ConfigReloads,
  ConfigReloadFailures,
  FraudRefusedDestination,    // new calls refused (403): a denied or high-risk destination
  FraudRefusedInternational,  // international calls from a peer without international calling
  FraudRefusedUnknownNumber,  // dialled numbers the dial plan cannot normalise
  FraudRefusedLimit,          // over a per-minute, international-per-hour or calling-hours limit
  FraudRefusedSpendCap,       // over a 24 h spend cap
  FraudRefusedBlockedSource,  // from a user or trunk blocked by anomaly detection
  FraudAlerts,                // fraud events raised (log line, webhook)
  CallsMaxDuration,           // calls ended at their maximum duration
  CdrRecordsWritten,          // CDR lines written
  CdrRecordsDropped,          // CDR records lost to a full queue or a failed write
  AlertWebhooksSent,          // alert webhook POSTs answered 2xx
  AlertWebhooksFailed,        // alert events given up after every retry
  AlertWebhooksDropped,       // alert events not queued: the webhook queue was full
  kCount
};

enum class Gauge : std::uint16_t {
  ActiveCalls,
  TcpConnections,
  BansActive,
  RegistrationsActive,
  OverloadedWorkers,
  Draining,
  MediaPortPairsFree,
  kCount
};

// Kept in step with project(VERSION) in CMakeLists.txt; exported as palisade_build_info.
inline constexpr std::string_view kVersion = "0.1.0";

// How a Counter is exposed: `palisade_<family>_total{<labels>}`. Counters sharing a family are
// rendered under one HELP/TYPE block (e.g. messages_total by direction and transport).
struct CounterInfo {
  Counter counter;
  std::string_view family;
  std::string_view labels;  // `key="value",...` without braces; empty for none
  std::string_view help;
};

// How a Gauge is exposed: `palisade_<name>`.
struct GaugeInfo {
  Gauge gauge;
  std::string_view name;
  std::string_view help;
};

const CounterInfo& counterInfo(Counter c);
const GaugeInfo& gaugeInfo(Gauge g);

struct alignas(64) Shard {
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Counter::kCount)> counters{};
  std::array<std::atomic<std::int64_t>, static_cast<std::size_t>(Gauge::kCount)> gauges{};

  // Only the owning thread writes a shard, so relaxed load+store is enough and costs no lock.
  void add(Counter c, std::uint64_t n = 1) {
    auto& slot = counters[static_cast<std::size_t>(c)];
    slot.store(slot.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void adjust(Gauge g, std::int64_t delta) {
    auto& slot = gauges[static_cast<std::size_t>(g)];
    slot.store(slot.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
};

class Metrics {
 public:
  // One shard per worker plus one for the control thread (index `workers`).
  explicit Metrics(std::size_t workers);
  Shard& shard(std::size_t index) { return *shards_[index]; }
  Shard& controlShard() { return *shards_.back(); }
  std::size_t workers() const { return shards_.size() - 1; }

  std::uint64_t total(Counter c) const;
  std::int64_t total(Gauge g) const;

  // Prometheus text exposition format 0.0.4, metric names prefixed "palisade_". Called on the
  // control thread; shards are read with relaxed loads, so a scrape may miss in-flight increments.
  std::string renderPrometheus() const;

 private:
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace palisade::stats
