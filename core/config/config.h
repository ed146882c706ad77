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

enum class TransportKind : std::uint8_t { Udp, Tcp };

struct Listener {
  std::string address;  // numeric IPv4 or IPv6 address
  std::uint16_t udp_port = 0;
  std::uint16_t tcp_port = 0;
};

// A next hop that calls are sent to, and the source addresses that identify that peer.
struct Peer {
  std::string host;  // numeric address (DNS comes with RFC 3263 routing)
  std::uint16_t port = 0;
  TransportKind transport = TransportKind::Udp;
  std::vector<std::string> addresses;  // numeric source addresses of this peer
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

struct Config {
  std::string source_name;  // file the snapshot came from ("<default>" for the built-in one)

  // [general]
  std::uint32_t workers = 0;  // 0: one per core
  std::string log_level = "info";

  Listener public_side{"127.0.0.1", 5060, 5060};
  Listener pbx_side{"127.0.0.1", 5070, 5070};
  Peer pbx{"127.0.0.1", 5080, TransportKind::Udp, {"127.0.0.1"}};
  Peer carrier{"127.0.0.1", 5090, TransportKind::Udp, {"127.0.0.1"}};

  // [sip]
  SipTiming timing;
  SipLimits limits;
  std::uint32_t ring_timeout_s = 180;  // RFC 3261 Timer C (> 3 min is the proxy rule)
  std::uint32_t max_call_duration_s = 14400;
  std::string user_agent = "Palisade";

  // [tcp]
  std::uint32_t tcp_idle_timeout_s = 600;
  std::uint32_t tcp_max_connections = 4096;
  std::uint32_t tcp_max_connections_per_ip = 32;

  // [limits]
  std::uint32_t inbox_depth = 8192;
  std::uint32_t max_calls = 100000;

  // [management]
  std::string management_address = "127.0.0.1";
  std::uint16_t management_port = 9180;
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
ConfigResult parseConfig(std::string_view toml_text, std::string_view source_name);

// Reads FILE and parses it. A missing or unreadable file is a ConfigError naming the file.
ConfigResult loadConfigFile(const std::string& path);

// The shipped default (core/config/default.toml, compiled in).
ConfigResult defaultConfig();

// Settings that only take effect on restart, for the reload log: names of keys whose value
// differs between the two snapshots and that a reload cannot apply.
std::vector<std::string> restartOnlyChanges(const Config& running, const Config& loaded);

}  // namespace palisade::config
