#include "core/stats/metrics.h"

#include <fmt/format.h>

namespace palisade::stats {
namespace {

constexpr std::size_t kCounterCount = static_cast<std::size_t>(Counter::kCount);
constexpr std::size_t kGaugeCount = static_cast<std::size_t>(Gauge::kCount);

// Exposed names (all prefixed "palisade_"):
//   counters: calls_attempted_total, calls_answered_total, calls_failed_total,
//     calls_cancelled_total, calls_timed_out_total,
//     messages_total{direction="in"|"out",transport="udp"|"tcp"|"tls"},
//     parse_errors_total, retransmissions_total, retransmissions_absorbed_total,
//     inbox_overflows_total, rejected_503_total, dropped_untrusted_total,
//     dropped_foreign_responses_total, dropped_foreign_cancels_total, sent_to_unverified_total,
//     early_dialogs_refused_total, requests_over_call_limit_total,
//     policy_decisions_total{decision="reject"|"challenge"|"drop"|"pending"|"pending_expired"},
//     tcp_connections_accepted_total, tcp_connections_refused_total,
//     tcp_connections_closed_total, tcp_head_timeouts_total, tcp_send_queue_overflows_total,
//     tcp_accept_backoffs_total, tls_handshakes_total, tls_handshake_failures_total,
//     tls_handshake_timeouts_total, tls_handshakes_refused_total,
//     tls_client_certificates_refused_total, config_reloads_total, config_reload_failures_total,
//     drops_total{reason="banned"|"default_deny"|"pbx_acl"|"rate_limit"|"scanner_user_agent"|
//       "extension_scan"|"overload"|"amplification"},
//     rejections_total{reason="rate_limit"|"overload"|"call_rate"|"call_limit"|"draining"},
//     scanner_errors_total,
//     auth_failures_total{reason="unknown_user"|"wrong_password"|"disallowed_source"|"bad_nonce"|"malformed"},
//     bans_total, registrations_total, registrations_refused_total, calls_to_unregistered_total
//   gauges: active_calls, tcp_connections, bans_active, registrations_active, overloaded_workers,
//     draining, workers, tls_certificate_expiry_seconds{file="..."} (from the daemon),
//     build_info{version="..."} (always 1)
// Rows are in enum order; the static_assert below rejects a Counter added without a row.
constexpr std::string_view kMessagesHelp = "SIP messages by direction and transport.";
constexpr std::string_view kPolicyHelp = "New requests the policy chain did not let through, by decision.";
constexpr std::string_view kDropsHelp = "Packets, messages and connections dropped unanswered, by reason.";
constexpr std::string_view kRejectionsHelp =
    "New requests answered 503 by flood, overload or admission control.";
constexpr std::string_view kAuthHelp =
    "Failed digest authentications, by reason (each drew the same challenge).";

constexpr std::string_view kMediaDroppedHelp =
    "Media packets dropped, by reason: SRTP authentication or replay failure, a source other than "
    "the stream's peer, over max_packet_rate, before the answer or not RTP.";

constexpr std::string_view kFraudHelp =
    "New calls refused by the toll-fraud rules, by reason: a denied or high-risk destination, "
    "international calling not allowed, a number the dial plan cannot read, a rate or time limit, "
    "a spend cap, a source blocked by anomaly detection.";

constexpr std::string_view kWebhookHelp =
    "Alert events for the webhook: delivered (2xx), given up after the retries, not queued (queue full).";

constexpr std::array<CounterInfo, kCounterCount> kCounters{{
    {Counter::CallsAttempted, "calls_attempted", "", "INVITEs that started a call."},
    {Counter::CallsAnswered, "calls_answered", "", "Calls that received a 2xx."},
    {Counter::CallsFailed, "calls_failed", "", "Calls that ended with a final non-2xx response."},
    {Counter::CallsCancelled, "calls_cancelled", "", "Calls cancelled by the caller."},
    {Counter::CallsTimedOut, "calls_timed_out", "", "Calls torn down by a transaction or call timer."},
    {Counter::CallsMediaTimedOut, "calls_media_timed_out", "",
     "Answered calls torn down because no media flowed for media.timeout_s."},
    {Counter::CallsMediaRefused, "calls_media_refused", "",
     "Offers or answers refused by media anchoring (unusable SDP, no acceptable crypto)."},
    {Counter::CallsNoMediaPorts, "calls_no_media_ports", "",
     "New calls answered 503: no media port pair free."},
    {Counter::MediaPacketsRelayed, "media_packets_relayed", "", "RTP and RTCP packets relayed."},
    {Counter::MediaBytesRelayed, "media_bytes_relayed", "", "RTP and RTCP bytes relayed (as received)."},
    {Counter::MediaSequenceGaps, "media_sequence_gaps", "", "RTP packets missing by sequence number."},
    {Counter::MediaAuthFailures, "media_dropped", R"(reason="srtp_auth")", kMediaDroppedHelp},
    {Counter::MediaDroppedForeign, "media_dropped", R"(reason="foreign_source")", kMediaDroppedHelp},
    {Counter::MediaDroppedRate, "media_dropped", R"(reason="rate")", kMediaDroppedHelp},
    {Counter::MediaDroppedUnready, "media_dropped", R"(reason="unready")", kMediaDroppedHelp},
    {Counter::MessagesInUdp, "messages", R"(direction="in",transport="udp")", kMessagesHelp},
    {Counter::MessagesOutUdp, "messages", R"(direction="out",transport="udp")", kMessagesHelp},
    {Counter::MessagesInTcp, "messages", R"(direction="in",transport="tcp")", kMessagesHelp},
    {Counter::MessagesOutTcp, "messages", R"(direction="out",transport="tcp")", kMessagesHelp},
    {Counter::MessagesInTls, "messages", R"(direction="in",transport="tls")", kMessagesHelp},
    {Counter::MessagesOutTls, "messages", R"(direction="out",transport="tls")", kMessagesHelp},
    {Counter::ParseErrors, "parse_errors", "", "Received messages that were not valid SIP."},
    {Counter::Retransmissions, "retransmissions", "", "Retransmissions sent by our transactions."},
    {Counter::RetransmissionsAbsorbed, "retransmissions_absorbed", "",
     "Received duplicates answered from transaction state."},
    {Counter::InboxOverflows, "inbox_overflows", "", "Hand-offs refused because the owner's inbox was full."},
    {Counter::Rejected503, "rejected_503", "", "Stateless 503 responses sent for overload."},
    {Counter::DroppedUntrusted, "dropped_untrusted", "", "Packets or connections from sources not allowed."},
    {Counter::DroppedForeignResponses, "dropped_foreign_responses", "",
     "Responses matching one of our branches that came from elsewhere than the request went."},
    {Counter::DroppedForeignCancels, "dropped_foreign_cancels", "",
     "CANCELs from a source other than the INVITE's."},
    {Counter::SentToUnverified, "sent_to_unverified", "",
     "Messages sent to UDP sources that have not shown they receive at their address."},
    {Counter::EarlyDialogsRefused, "early_dialogs_refused", "",
     "Provisional responses of forks beyond the per-call bound."},
    {Counter::RequestsOverCallLimit, "requests_over_call_limit", "",
     "In-dialog requests refused because too many were in flight on the call."},
    {Counter::ProvisionalsDropped, "provisionals_dropped", "",
     "Reliable provisional responses of the callee not relayed: malformed or out-of-order RSeq, or "
     "too many awaiting PRACK on the call."},
    {Counter::PrackTimeouts, "prack_timeouts", "",
     "INVITEs rejected with 500 because a reliable provisional was not acknowledged within 64*T1."},
    {Counter::PolicyRejected, "policy_decisions", R"(decision="reject")", kPolicyHelp},
    {Counter::PolicyChallenged, "policy_decisions", R"(decision="challenge")", kPolicyHelp},
    {Counter::PolicyDropped, "policy_decisions", R"(decision="drop")", kPolicyHelp},
    {Counter::PolicyPending, "policy_decisions", R"(decision="pending")", kPolicyHelp},
    {Counter::PolicyPendingExpired, "policy_decisions", R"(decision="pending_expired")", kPolicyHelp},
    {Counter::DroppedBanned, "drops", R"(reason="banned")", kDropsHelp},
    {Counter::DroppedDefaultDeny, "drops", R"(reason="default_deny")", kDropsHelp},
    {Counter::DroppedPbxAcl, "drops", R"(reason="pbx_acl")", kDropsHelp},
    {Counter::DroppedRateLimited, "drops", R"(reason="rate_limit")", kDropsHelp},
    {Counter::DroppedScannerAgent, "drops", R"(reason="scanner_user_agent")", kDropsHelp},
    {Counter::DroppedExtensionScan, "drops", R"(reason="extension_scan")", kDropsHelp},
    {Counter::DroppedOverload, "drops", R"(reason="overload")", kDropsHelp},
    {Counter::DroppedAmplification, "drops", R"(reason="amplification")", kDropsHelp},
    {Counter::RejectedRateLimited, "rejections", R"(reason="rate_limit")", kRejectionsHelp},
    {Counter::RejectedOverload, "rejections", R"(reason="overload")", kRejectionsHelp},
    {Counter::RejectedCallRate, "rejections", R"(reason="call_rate")", kRejectionsHelp},
    {Counter::RejectedCallLimit, "rejections", R"(reason="call_limit")", kRejectionsHelp},
    {Counter::RejectedDraining, "rejections", R"(reason="draining")", kRejectionsHelp},
    {Counter::ScannerErrors, "scanner_errors", "",
     "Malformed messages, 4xx answers and refused TCP connections counted against internet sources."},
    {Counter::AuthFailedUnknownUser, "auth_failures", R"(reason="unknown_user")", kAuthHelp},
    {Counter::AuthFailedPassword, "auth_failures", R"(reason="wrong_password")", kAuthHelp},
    {Counter::AuthFailedSource, "auth_failures", R"(reason="disallowed_source")", kAuthHelp},
    {Counter::AuthFailedNonce, "auth_failures", R"(reason="bad_nonce")", kAuthHelp},
    {Counter::AuthFailedMalformed, "auth_failures", R"(reason="malformed")", kAuthHelp},
    {Counter::Bans, "bans", "", "Sources banned for failed authentications."},
    {Counter::Registrations, "registrations", "", "REGISTERs the registrar accepted."},
    {Counter::RegistrationsRefused, "registrations_refused", "",
     "Authenticated REGISTERs the registrar refused."},
    {Counter::CallsToUnregistered, "calls_to_unregistered", "",
     "Calls from the PBX to a user with no registration (480)."},
    {Counter::TcpConnectionsAccepted, "tcp_connections_accepted", "", "TCP connections accepted."},
    {Counter::TcpConnectionsRefused, "tcp_connections_refused", "", "TCP connections refused by limits."},
    {Counter::TcpConnectionsClosed, "tcp_connections_closed", "", "TCP connections closed."},
    {Counter::TcpHeadTimeouts, "tcp_head_timeouts", "",
     "TCP connections closed because a message did not complete within tcp.head_timeout_s."},
    {Counter::TcpSendQueueOverflows, "tcp_send_queue_overflows", "",
     "TCP connections closed because the peer did not read what was sent."},
    {Counter::TcpAcceptBackoffs, "tcp_accept_backoffs", "",
     "Times accepting paused because the process had no descriptor left."},
    {Counter::TlsHandshakes, "tls_handshakes", "", "TLS handshakes completed."},
    {Counter::TlsHandshakeFailures, "tls_handshake_failures", "",
     "TLS handshakes that failed (protocol version, cipher, certificate)."},
    {Counter::TlsHandshakeTimeouts, "tls_handshake_timeouts", "",
     "TLS connections closed because the handshake did not finish within tls.handshake_timeout_s."},
    {Counter::TlsHandshakesRefused, "tls_handshakes_refused", "",
     "TLS connections refused: too many handshakes in progress (per source or in total)."},
    {Counter::TlsClientCertificatesRefused, "tls_client_certificates_refused", "",
     "Mutual TLS: client certificates that did not carry the trunk's tls_client_names."},
    {Counter::ConfigReloads, "config_reloads", "", "Configuration reloads applied."},
    {Counter::ConfigReloadFailures, "config_reload_failures", "", "Configuration reloads rejected."},
    {Counter::FraudRefusedDestination, "fraud_refused", R"(reason="destination")", kFraudHelp},
    {Counter::FraudRefusedInternational, "fraud_refused", R"(reason="international")", kFraudHelp},
    {Counter::FraudRefusedUnknownNumber, "fraud_refused", R"(reason="unknown_number")", kFraudHelp},
    {Counter::FraudRefusedLimit, "fraud_refused", R"(reason="limit")", kFraudHelp},
    {Counter::FraudRefusedSpendCap, "fraud_refused", R"(reason="spend_cap")", kFraudHelp},
    {Counter::FraudRefusedBlockedSource, "fraud_refused", R"(reason="blocked_source")", kFraudHelp},
    {Counter::FraudAlerts, "fraud_alerts", "", "Fraud events raised (log line and webhook)."},
    {Counter::CallsMaxDuration, "calls_max_duration", "", "Calls ended at their maximum duration."},
    {Counter::CdrRecordsWritten, "cdr_records_written", "", "CDR lines written."},
    {Counter::CdrRecordsDropped, "cdr_records_dropped", "",
     "CDR records lost: the queue to the writer was full or the file could not be written."},
    {Counter::AlertWebhooksSent, "alert_webhooks", R"(result="sent")", kWebhookHelp},
    {Counter::AlertWebhooksFailed, "alert_webhooks", R"(result="failed")", kWebhookHelp},
    {Counter::AlertWebhooksDropped, "alert_webhooks", R"(result="dropped")", kWebhookHelp},
}};

constexpr std::array<GaugeInfo, kGaugeCount> kGauges{{
    {Gauge::ActiveCalls, "active_calls", "Calls being set up or established."},
    {Gauge::TcpConnections, "tcp_connections", "Open TCP connections."},
    {Gauge::BansActive, "bans_active", "Sources banned right now."},
    {Gauge::RegistrationsActive, "registrations_active", "Live registrar bindings."},
    {Gauge::OverloadedWorkers, "overloaded_workers", "Workers shedding new work right now."},
    {Gauge::Draining, "draining", "1 while shutting down gracefully (new calls refused)."},
    {Gauge::MediaPortPairsFree, "media_port_pairs_free", "RTP/RTCP port pairs free for new calls."},
}};

// A zero-initialised trailing row carries the first enum value, so a missing row fails here.
consteval bool tablesComplete() {
  for (std::size_t i = 0; i < kCounterCount; ++i) {
    const auto& row = kCounters[i];
    if (static_cast<std::size_t>(row.counter) != i || row.family.empty()) return false;
    for (std::size_t j = 0; j < i; ++j) {
      if (kCounters[j].family == row.family && kCounters[j].labels == row.labels) return false;
      // A family's rows must be adjacent: 0.0.4 wants one block per metric.
      if (kCounters[j].family == row.family && kCounters[i - 1].family != row.family) return false;
    }
  }
  for (std::size_t i = 0; i < kGaugeCount; ++i) {
    if (static_cast<std::size_t>(kGauges[i].gauge) != i || kGauges[i].name.empty()) return false;
  }
  return true;
}
static_assert(tablesComplete(), "every Counter and Gauge needs one unique row, in enum order");

void appendHeader(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP palisade_{} {}\n# TYPE palisade_{} {}\n", name, help, name,
                 type);
}

}  // namespace

const CounterInfo& counterInfo(Counter c) { return kCounters[static_cast<std::size_t>(c)]; }
const GaugeInfo& gaugeInfo(Gauge g) { return kGauges[static_cast<std::size_t>(g)]; }

Metrics::Metrics(std::size_t workers) {
  shards_.reserve(workers + 1);
  for (std::size_t i = 0; i <= workers; ++i) shards_.push_back(std::make_unique<Shard>());
}

std::uint64_t Metrics::total(Counter c) const {
  std::uint64_t sum = 0;
  for (const auto& shard : shards_)
    sum += shard->counters[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
  return sum;
}

std::int64_t Metrics::total(Gauge g) const {
  // A gauge can go negative on one shard (a connection closed on another worker); only the sum counts.
  std::int64_t sum = 0;
  for (const auto& shard : shards_)
    sum += shard->gauges[static_cast<std::size_t>(g)].load(std::memory_order_relaxed);
  return sum;
}

std::string Metrics::renderPrometheus() const {
  std::string out;
  out.reserve(4096);
  auto it = std::back_inserter(out);
  for (std::size_t i = 0; i < kCounterCount; ++i) {
    const auto& row = kCounters[i];
    const std::string name = fmt::format("{}_total", row.family);
    if (i == 0 || kCounters[i - 1].family != row.family) appendHeader(out, name, "counter", row.help);
    if (row.labels.empty()) {
      fmt::format_to(it, "palisade_{} {}\n", name, total(row.counter));
    } else {
      fmt::format_to(it, "palisade_{}{{{}}} {}\n", name, row.labels, total(row.counter));
    }
  }
  for (const auto& row : kGauges) {
    appendHeader(out, row.name, "gauge", row.help);
    fmt::format_to(it, "palisade_{} {}\n", row.name, total(row.gauge));
  }
  appendHeader(out, "workers", "gauge", "Worker threads.");
  fmt::format_to(it, "palisade_workers {}\n", workers());
  appendHeader(out, "build_info", "gauge", "Build version; the value is always 1.");
  fmt::format_to(it, "palisade_build_info{{version=\"{}\"}} 1\n", kVersion);
  return out;
}

}  // namespace palisade::stats
