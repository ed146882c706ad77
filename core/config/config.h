#pragma once
// Plain configuration structs, loaded and validated from one TOML file into an immutable
// snapshot. Loading runs on the control thread; workers only ever see a
// std::shared_ptr<const Config>.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/base/result.h"

namespace palisade::config {

enum class TransportKind : std::uint8_t { Udp, Tcp, Tls };

struct Listener {
  std::string address;  // numeric IPv4 or IPv6 address
  std::uint16_t udp_port = 0;
  std::uint16_t tcp_port = 0;
  std::uint16_t tls_port = 0;  // 0: no TLS listener on this side
  bool operator==(const Listener&) const = default;
};

// The toll-fraud rules of one peer (a trunk, a user, the PBX): where its calls may go and how
// many it may make. Prefixes are E.164 with '+' ("+44", "+4420"); the longest match across the
// peer's lists, the [fraud] lists and the high-risk file decides.
struct FraudRules {
  bool international = true;                     // may call international numbers (users: false by default)
  std::vector<std::string> allow;                // destinations allowed (an allow longer than a deny wins)
  std::vector<std::string> deny;                 // destinations refused (403)
  std::string dial_plan;                         // a [[fraud.dial_plans]] name; empty: [fraud.dial_plan]
  std::uint32_t max_calls_per_minute = 0;        // new calls in any 60 s (0: no limit)
  std::uint32_t max_international_per_hour = 0;  // international calls in any hour (0: no limit)
  std::uint32_t max_call_duration_s = 0;         // 0: sip.max_call_duration_s
  std::int64_t max_spend_24h_micros = 0;         // rated spend in any 24 h, millionths (0: no cap)
  // Calling hours: weekly windows of local time ("Mon-Fri 08:00-18:00") in a zone, outside of
  // which its international calls (or all, with calling_hours_for = "all") are refused.
  std::vector<std::string> calling_hours;  // empty: any time
  std::string calling_hours_zone = "UTC";  // a zone of /usr/share/zoneinfo ("America/New_York")
  bool calling_hours_all = false;          // calling_hours_for = "all" (default "international")
};

// Users may not call international numbers unless their rules say so.
inline FraudRules userFraudRules() {
  FraudRules rules;
  rules.international = false;
  return rules;
}

// How a peer's dialled numbers are read (E.164 normalisation).
struct DialPlanConfig {
  std::string name;  // [[fraud.dial_plans]] only
  std::string country_code = "1";
  std::string national_prefix = "1";
  std::string international_prefix = "011";
  std::vector<std::string> emergency = {"911", "112"};
  std::uint32_t national_min = 7;  // digits of a national number without its prefix
  std::uint32_t national_max = 10;
  // Ranges under the country code that are other countries (E.164 with '+'): international.
  // The default is NANP's: the Caribbean and Atlantic countries that share +1.
  std::vector<std::string> foreign = {"+1242", "+1246", "+1264", "+1268", "+1284", "+1345", "+1441",
                                      "+1473", "+1649", "+1658", "+1664", "+1721", "+1758", "+1767",
                                      "+1784", "+1809", "+1829", "+1849", "+1868", "+1869", "+1876"};
  std::uint32_t line = 0;
};

// [fraud]: the rules every call's destination passes, on every path.
struct FraudConfig {
  DialPlanConfig dial_plan;                // [fraud.dial_plan]: the default
  std::vector<DialPlanConfig> dial_plans;  // [[fraud.dial_plans]]: named, for peers that dial otherwise
  std::string high_risk_file;              // empty: the shipped list (policy/fraud/high_risk_ranges.txt)
  std::vector<std::string> allow;          // global allow and deny prefixes
  std::vector<std::string> deny;
  std::uint32_t extension_max_digits = 6;  // shorter all-digit numbers toward the PBX are extensions
  // Spend control: the rate table (prefix, price per minute) and what a cap does.
  std::string rate_file;  // empty: calls are not rated, and no spend cap applies
  std::string currency = "USD";
  std::uint32_t spend_warning_percent =
      80;                           // an alert when a caller's 24 h spend reaches this share of its cap
  bool end_calls_over_cap = false;  // true: a caller's active calls end when it reaches its cap
  // Anomaly detection (per user, trunk and the PBX).
  double spike_factor = 5.0;  // international attempts in an hour over this many times the baseline
  std::uint32_t min_spike_attempts = 10;  // and at least this many
  std::uint32_t sequential_run = 5;       // consecutive attempts to incrementing numbers
  std::uint32_t short_call_count = 5;     // answered calls shorter than short_call_max_s to one range...
  std::uint32_t short_call_max_s = 10;
  std::uint32_t short_call_window_s = 600;  // ...within this window
  bool block_on_anomaly = false;            // true: an anomaly blocks the caller until an operator clears it
  // Alerts: every fraud event is a log line and a metric, and is POSTed here as JSON if set.
  std::string webhook_url;
  std::uint32_t webhook_timeout_s = 5;
  std::uint32_t webhook_retries = 3;
  std::string webhook_ca_file;  // https: the CA to verify the server with (empty: the system's)
  // CDRs: one JSON line per call attempt (empty: none); reopened on SIGHUP (logrotate).
  std::string cdr_file;
};

// A next hop that calls are sent to, and the source addresses that identify that peer.
struct Peer {
  std::string host;  // numeric address (DNS comes with RFC 3263 routing)
  std::uint16_t port = 0;
  TransportKind transport = TransportKind::Udp;
  std::vector<std::string> addresses;  // numeric source addresses of this peer
  bool trust_identity = true;          // its identity headers (P-Asserted-Identity, ...) may cross
  std::string tls_server_name;         // TLS: the name its certificate must carry (empty: host)
  FraudRules fraud;                    // [pbx]: the PBX's outgoing calls
};

// A trunk (a carrier or another SIP peer that is trusted by address): calls from the PBX go to
// it, calls from its addresses go to the PBX without a challenge.
struct Trunk {
  std::string name;                    // unique; names its counters, logs and rule ids
  std::vector<std::string> addresses;  // source addresses or CIDRs (IPv4 or IPv6)
  std::string host;                    // numeric address calls to it go to
  std::uint16_t port = 5060;
  TransportKind transport = TransportKind::Udp;
  std::vector<std::string> prefixes;  // dialled numbers it takes (longest match wins); none: only as default
  bool trust_identity = true;
  std::uint32_t line = 0;       // where the file wrote it (0 for the built-in default)
  std::uint32_t max_calls = 0;  // calls from it in progress (0: only limits.max_calls)
  std::uint32_t max_cps = 0;    // new calls from it per second (0: only limits.max_cps)
  // TLS toward it: the name its certificate must carry (empty: host).
  std::string tls_server_name;
  // Mutual TLS: connections from it must present a certificate issued by this CA (PEM file)
  // carrying one of tls_client_names as a DNS or IP subjectAltName or as the subject's CN.
  std::string tls_client_ca;
  std::vector<std::string> tls_client_names;
  FraudRules fraud;  // calls from it and calls routed to it
};

// [auth]: how Palisade challenges its users (RFC 3261 §22, RFC 7616, RFC 8760).
struct AuthSettings {
  std::string realm = "palisade";
  std::vector<std::string> algorithms = {"SHA-256", "MD5"};  // offered, strongest first
  std::uint32_t nonce_lifetime_s = 300;                      // then stale=true
};

// [[users]]: remote extensions that authenticate with digest credentials. The secrets are
// never logged, echoed in an error, or sent anywhere.
struct User {
  std::string name;      // digest user name = the extension
  std::string password;  // or the HA1 values below (hex)
  std::string ha1_md5, ha1_sha256, ha1_sha512_256;
  std::vector<std::string> sources;  // where it may register and call from; empty: anywhere
  std::string number;                // the caller ID its calls carry toward the PBX; empty: its name
  bool allow_weak_password = false;
  std::uint32_t line = 0;       // where the file wrote it
  std::uint32_t max_calls = 4;  // its calls in progress (0: no limit of its own)
  std::uint32_t max_cps = 2;    // its new calls per second (0: no limit of its own)
  bool require_tls = false;     // registers and calls only over TLS
  FraudRules fraud = userFraudRules();
};

// [ban]: brute-force defence. Failed authentications (and requests for unknown users or from
// disallowed sources) per source address and per user name; over the threshold in the window
// the source is banned, for longer each time.
struct BanConfig {
  std::uint32_t threshold = 5;
  std::uint32_t window_s = 60;
  std::uint32_t duration_s = 600;
  std::uint32_t max_duration_s = 86400;
};

// [registrar]: Palisade keeps its users' registrations (RFC 3261 §10.3).
struct RegistrarConfig {
  std::uint32_t min_expires_s = 60;       // shorter gets 423 Interval Too Brief
  std::uint32_t max_expires_s = 3600;     // longer is shortened to this
  std::uint32_t default_expires_s = 600;  // a Contact with no expiry of its own
  std::uint32_t max_contacts = 4;         // bindings per user
};

// Per-source rate limits of one peer class, per request class (messages per second; a
// source may send `burst_s` seconds' worth at once).
struct FloodRates {
  std::uint32_t invite_per_s = 0;     // new INVITEs
  std::uint32_t register_per_s = 0;   // REGISTERs
  std::uint32_t other_per_s = 0;      // other new requests (OPTIONS, SUBSCRIBE, ...)
  std::uint32_t in_dialog_per_s = 0;  // requests within dialogs, ACK, CANCEL and responses
  std::uint32_t burst_s = 2;
};

// [flood]: per-source limits, sustained excess bans, and overload shedding.
struct FloodConfig {
  bool reply_503 = false;          // action = "503": over the limit gets a 503 (one per source per second)
  std::uint32_t ban_excess = 100;  // messages over the limit in ban_window_s that ban an internet source
  std::uint32_t ban_window_s = 10;
  FloodRates internet{5, 5, 10, 50, 4};
  FloodRates trunk{10000, 100, 2000, 50000, 2};
  FloodRates pbx{10000, 2000, 10000, 50000, 2};
  std::uint32_t overload_lag_ms = 200;        // event-loop lag that means overload
  std::uint32_t overload_queue_percent = 50;  // inbox fill that means overload
};

// [scanners]: sources that behave like scanners are banned.
struct ScannerConfig {
  std::vector<std::string> user_agents = {"friendly-scanner", "sipvicious", "sipcli",    "VaxSIPUserAgent",
                                          "pplsip",           "iWar",       "sundayddr", "sip-scan",
                                          "SIPScan",          "smap"};
  std::uint32_t max_unanswered = 10;  // names challenged and never answered, per source and window
  std::uint32_t max_errors = 20;      // malformed messages and 4xx answers (not challenges) per window
  std::uint32_t window_s = 60;
};

struct SipTiming {
  std::uint32_t t1_ms = 500;
  std::uint32_t t2_ms = 4000;
  std::uint32_t t4_ms = 5000;
};

struct SipLimits {
  std::uint32_t max_message_bytes = 65535;
  std::uint32_t max_headers = 128;
  std::uint32_t max_line_bytes = 8192;
};

// One certificate Palisade presents, with its key (PEM files; paths made absolute against the
// config file's folder). The first is the default; the others are chosen by SNI.
struct TlsCertificate {
  std::string certificate;  // the certificate, then its chain
  std::string key;
  std::uint32_t line = 0;
  bool operator==(const TlsCertificate&) const = default;
};

// [tls]: SIP over TLS (RFC 3261 §26.2, RFC 5630).
struct TlsConfig {
  std::vector<TlsCertificate> certificates;
  std::string min_version = "1.2";  // "1.2" or "1.3"; TLS 1.0 and 1.1 are never offered
  // TLS 1.2: ECDHE key exchange with AEAD ciphers only.
  std::string ciphers =
      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
      "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
  std::string ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
  // Outbound: the trust store for servers' certificates (empty: the system's) and whether to
  // check them at all (false is a warning at every start and reload).
  std::string ca_file;
  bool verify_server = true;
  // Outbound: the certificate presented to peers that ask for one (optional).
  std::string client_certificate;
  std::string client_key;
  std::uint32_t handshake_timeout_s = 5;
  std::uint32_t max_handshakes = 256;          // in progress per worker
  std::uint32_t max_handshakes_per_ip = 4;     // in progress from one address, per worker
  std::uint32_t max_connections_per_ip = 32;   // TLS connections from one address
  std::uint32_t ticket_key_rotation_s = 3600;  // session-ticket keys: a key encrypts this long,
                                               // and decrypts for as long again
  std::uint32_t expiry_warning_days = 14;
};

// Settings read once at start-up: a reload never applies them (it keeps the running values and
// warns). Everything restart-only lives here, so the reload cannot forget one.
// [media]: RTP anchoring. How SRTP is used on one side (RFC 4568 SDES).
enum class SrtpMode : std::uint8_t {
  Off,       // plain RTP only: an RTP/SAVP offer from this side gets 488
  Optional,  // answer SRTP with SRTP and RTP with RTP; offer what the other side offered
  Required,  // SRTP only: no plaintext RTP ever leaves on this side
};
// Which source a plain-RTP side's media is accepted from (SRTP sides also need a packet that
// authenticates before anything is latched).
enum class Latching : std::uint8_t {
  Strict,  // exactly the address and port the side's SDP names
  Nat,     // the first packet from the SDP's or the signalling's IP address, any port
};
struct MediaSidePolicy {
  SrtpMode srtp = SrtpMode::Optional;
  Latching latching = Latching::Nat;
};

// The media ports and addresses: sockets are bound from them, so they change only at restart.
struct MediaPorts {
  std::uint16_t first = 10000;  // RTP/RTCP pairs are taken from [first, last]
  std::uint16_t last = 20000;
  std::string public_address;  // where the public side's media is; empty: [public] address
  std::string pbx_address;     // where the PBX side's media is; empty: [pbx_side] address
  bool operator==(const MediaPorts&) const = default;
};

struct MediaConfig {
  bool anchor = true;  // false: SDP crosses unchanged (the PBX sees the caller's media address)
  MediaSidePolicy public_side{SrtpMode::Optional, Latching::Nat};
  MediaSidePolicy pbx_side{SrtpMode::Off, Latching::Strict};
  std::uint32_t timeout_s = 60;          // no media either way for this long on an answered call: BYE
  std::uint32_t max_packet_rate = 2000;  // per stream and direction, packets per second; excess dropped
  std::vector<std::string> suites = {"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM", "AEAD_AES_256_GCM",
                                     "AES_CM_128_HMAC_SHA1_32"};  // offered in this order
};

struct StartupSettings {
  // [general]
  std::uint32_t workers = 0;  // 0: one per core
  Listener public_side{"127.0.0.1", 5060, 5060, 0};
  Listener pbx_side{"127.0.0.1", 5070, 5070, 0};
  // [limits]
  std::uint32_t inbox_depth = 8192;
  // [management]
  std::string management_address = "127.0.0.1";
  std::uint16_t management_port = 9180;
  // [media]
  MediaPorts media;
  bool operator==(const StartupSettings&) const = default;
};

// Which received header fields cross the B2BUA (DESIGN.md: an allow-list). Names as written in
// the file; validated (tokens, no credentials, no header Palisade writes itself).
struct HeaderLists {
  // Copied toward the PBX-facing side. Not Alert-Info or Call-Info: from the internet they can
  // make phones behind the PBX ring differently or answer by themselves (intercom). Not
  // Refer-To, Referred-By or Replaces: transfers are not relayed (REFER gets 405).
  std::vector<std::string> to_pbx = {"Accept",
                                     "Accept-Encoding",
                                     "Accept-Language",
                                     "Allow",
                                     "Allow-Events",
                                     "Content-Disposition",
                                     "Content-Encoding",
                                     "Content-Language",
                                     "Date",
                                     "Event",
                                     "Expires",
                                     "Min-Expires",
                                     "Min-SE",
                                     "MIME-Version",
                                     "Priority",
                                     "Reason",
                                     "Retry-After",
                                     "Session-Expires",
                                     "Subject",
                                     "Subscription-State",
                                     "Timestamp"};
  // Copied toward the public side (carrier, callers).
  std::vector<std::string> to_public = {"Accept",
                                        "Accept-Encoding",
                                        "Accept-Language",
                                        "Alert-Info",
                                        "Allow",
                                        "Allow-Events",
                                        "Content-Disposition",
                                        "Content-Encoding",
                                        "Content-Language",
                                        "Date",
                                        "Event",
                                        "Expires",
                                        "Min-Expires",
                                        "Min-SE",
                                        "MIME-Version",
                                        "Priority",
                                        "Reason",
                                        "Retry-After",
                                        "Session-Expires",
                                        "Subject",
                                        "Subscription-State",
                                        "Timestamp"};
  // Copied in both directions, and only from peers trusted for identity (trust_identity).
  std::vector<std::string> identity = {"P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID",
                                       "Diversion",           "History-Info",         "Privacy"};
};

struct Config {
  std::string source_name;  // file the snapshot came from ("<default>" for the built-in one)
  // Accepted but worth saying at every start and reload (a weak password allowed by
  // allow_weak_password): "FILE:LINE: KEY: message", never the secret itself.
  std::vector<std::string> warnings;

  StartupSettings startup;

  // [general]
  std::string log_level = "info";
  std::uint32_t drain_timeout_s = 30;  // SIGTERM: how long calls in progress may take to end

  Peer pbx{"127.0.0.1", 5080, TransportKind::Udp, {"127.0.0.1"}, true, {}, {}};
  // [[trunks]]: at least one; a file that names none gets this one (the loopback carrier).
  std::vector<Trunk> trunks{Trunk{
      "carrier", {"127.0.0.1"}, "127.0.0.1", 5090, TransportKind::Udp, {}, true, 0, 0, 0, {}, {}, {}, {}}};

  // [sip]
  SipTiming timing;
  SipLimits limits;
  std::uint32_t ring_timeout_s = 180;  // RFC 3261 Timer C (> 3 min is the proxy rule)
  std::uint32_t max_call_duration_s = 14400;
  std::string user_agent;  // empty: no User-Agent/Server header (nothing for a scanner to fingerprint)

  // [headers]
  HeaderLists headers;

  // [auth], [[users]]
  AuthSettings auth;
  std::vector<User> users;

  // [ban]
  BanConfig ban;

  // [registrar]
  RegistrarConfig registrar;

  // [flood], [scanners]
  FloodConfig flood;
  ScannerConfig scanners;

  // [tls]
  TlsConfig tls;

  // [media]
  MediaConfig media;

  // [fraud]
  FraudConfig fraud;

  // [tcp]
  std::uint32_t tcp_idle_timeout_s = 600;
  std::uint32_t tcp_head_timeout_s = 10;
  std::uint32_t tcp_max_connections = 4096;
  std::uint32_t tcp_max_connections_per_ip = 32;
  std::uint32_t tcp_max_send_queue_bytes = 1048576;

  // [limits]
  std::uint32_t max_calls = 100000;  // across all workers
  std::uint32_t max_cps = 10000;     // new calls per second across all workers (0: no limit)
};

// Where and why a file was rejected: printed as "FILE:LINE: KEY: MESSAGE".
struct ConfigError {
  std::string file;
  std::uint32_t line = 0;  // 0 when the error is not tied to a line
  std::string key;         // dotted key path, e.g. "sip.t1_ms"; empty for syntax errors
  std::string message;
  std::string toString() const;
};

using ConfigResult = base::Result<std::shared_ptr<const Config>, ConfigError>;

// Parses and validates TOML text. Unknown tables and keys are errors. `source_name` is used in
// errors and stored in the snapshot.
// Relative file names in it (certificates) are taken from `base_dir` (empty: as written).
ConfigResult parseConfig(std::string_view toml_text, std::string_view source_name,
                         std::string_view base_dir = {});

// Reads FILE and parses it. A missing or unreadable file is a ConfigError naming the file.
ConfigResult loadConfigFile(const std::string& path);

// The shipped default (core/config/default.toml, compiled in); its relative file names (the
// DEV-ONLY certificate) are taken from `base_dir`, the palisade binary's folder.
ConfigResult defaultConfig(std::string_view base_dir = {});

// The keys of StartupSettings whose values differ (for the reload warning).
std::vector<std::string> startupChanges(const StartupSettings& running, const StartupSettings& loaded);

// What a reload applies: `loaded` with the running start-up settings kept.
std::shared_ptr<const Config> mergeForReload(const Config& running, const Config& loaded);

}  // namespace palisade::config
