#include "core/config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace {

using palisade::config::Config;
using palisade::config::ConfigError;
using palisade::config::ConfigResult;
using palisade::config::defaultConfig;
using palisade::config::Latching;
using palisade::config::loadConfigFile;
using palisade::config::mergeForReload;
using palisade::config::parseConfig;
using palisade::config::SrtpMode;
using palisade::config::startupChanges;
using palisade::config::TransportKind;

// Every field against expected values written out by hand, so a change to either side shows.
void expectDefaults(const Config& c) {
  EXPECT_EQ(c.startup.workers, 0u);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.startup.public_side.address, "127.0.0.1");
  EXPECT_EQ(c.startup.public_side.udp_port, 5060);
  EXPECT_EQ(c.startup.public_side.tcp_port, 5060);
  EXPECT_EQ(c.startup.pbx_side.address, "127.0.0.1");
  EXPECT_EQ(c.startup.pbx_side.udp_port, 5070);
  EXPECT_EQ(c.startup.pbx_side.tcp_port, 5070);
  EXPECT_EQ(c.pbx.host, "127.0.0.1");
  EXPECT_EQ(c.pbx.port, 5080);
  EXPECT_EQ(c.pbx.transport, TransportKind::Udp);
  EXPECT_EQ(c.pbx.addresses, std::vector<std::string>{"127.0.0.1"});
  ASSERT_EQ(c.trunks.size(), 1u);
  EXPECT_EQ(c.trunks[0].name, "carrier");
  EXPECT_EQ(c.trunks[0].host, "127.0.0.1");
  EXPECT_EQ(c.trunks[0].port, 5090);
  EXPECT_EQ(c.trunks[0].transport, TransportKind::Udp);
  EXPECT_EQ(c.trunks[0].addresses, std::vector<std::string>{"127.0.0.1"});
  EXPECT_TRUE(c.trunks[0].prefixes.empty());
  EXPECT_TRUE(c.pbx.trust_identity);
  EXPECT_TRUE(c.trunks[0].trust_identity);
  EXPECT_EQ(c.headers.identity,
            (std::vector<std::string>{"P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID",
                                      "Diversion", "History-Info", "Privacy"}));
  EXPECT_EQ(c.headers.to_pbx.size(), 21u);
  EXPECT_EQ(c.headers.to_public.size(), 22u);
  EXPECT_EQ(std::count(c.headers.to_pbx.begin(), c.headers.to_pbx.end(), "Refer-To"), 0);
  EXPECT_EQ(std::count(c.headers.to_pbx.begin(), c.headers.to_pbx.end(), "Alert-Info"), 0);
  EXPECT_EQ(c.timing.t1_ms, 500u);
  EXPECT_EQ(c.timing.t2_ms, 4000u);
  EXPECT_EQ(c.timing.t4_ms, 5000u);
  EXPECT_EQ(c.limits.max_message_bytes, 65535u);
  EXPECT_EQ(c.limits.max_headers, 128u);
  EXPECT_EQ(c.limits.max_line_bytes, 8192u);
  EXPECT_EQ(c.ring_timeout_s, 180u);
  EXPECT_EQ(c.max_call_duration_s, 14400u);
  EXPECT_EQ(c.user_agent, "");  // nothing for a scanner to fingerprint
  EXPECT_EQ(c.tcp_idle_timeout_s, 600u);
  EXPECT_EQ(c.tcp_head_timeout_s, 10u);
  EXPECT_EQ(c.tcp_max_connections, 4096u);
  EXPECT_EQ(c.tcp_max_connections_per_ip, 32u);
  EXPECT_EQ(c.tcp_max_send_queue_bytes, 1048576u);
  EXPECT_EQ(c.startup.inbox_depth, 8192u);
  EXPECT_EQ(c.max_calls, 100000u);
  EXPECT_EQ(c.max_cps, 10000u);
  EXPECT_EQ(c.drain_timeout_s, 30u);
  EXPECT_FALSE(c.flood.reply_503);
  EXPECT_EQ(c.flood.ban_excess, 100u);
  EXPECT_EQ(c.flood.internet.invite_per_s, 5u);
  EXPECT_EQ(c.flood.internet.burst_s, 4u);
  EXPECT_EQ(c.flood.trunk.invite_per_s, 10000u);  // a carrier at 3,000 calls/s is never limited
  EXPECT_EQ(c.flood.pbx.in_dialog_per_s, 50000u);
  EXPECT_EQ(c.flood.overload_lag_ms, 200u);
  EXPECT_EQ(c.scanners.user_agents.size(), 10u);
  EXPECT_EQ(c.scanners.user_agents.front(), "friendly-scanner");
  EXPECT_EQ(c.scanners.max_unanswered, 10u);
  EXPECT_EQ(c.scanners.max_errors, 20u);
  EXPECT_EQ(c.startup.management_address, "127.0.0.1");
  EXPECT_EQ(c.startup.management_port, 9180);
  EXPECT_EQ(c.startup.public_side.tls_port, 0);
  EXPECT_EQ(c.startup.pbx_side.tls_port, 0);
  EXPECT_TRUE(c.tls.certificates.empty());
  EXPECT_EQ(c.tls.min_version, "1.2");
  EXPECT_TRUE(c.tls.verify_server);
  EXPECT_EQ(c.tls.handshake_timeout_s, 5u);
  EXPECT_EQ(c.tls.max_handshakes_per_ip, 4u);
  EXPECT_EQ(c.tls.ticket_key_rotation_s, 3600u);
  EXPECT_EQ(c.tls.expiry_warning_days, 14u);
  EXPECT_FALSE(c.tls.ciphers.empty());
}

ConfigError errorOf(std::string_view text, std::string_view source = "test.toml") {
  ConfigResult result = parseConfig(text, source);
  EXPECT_FALSE(result.ok()) << "accepted:\n" << text;
  if (result.ok()) return ConfigError{};
  return result.error();
}

void expectError(std::string_view text, std::uint32_t line, std::string_view key, std::string_view message) {
  ConfigError e = errorOf(text);
  EXPECT_EQ(e.file, "test.toml") << text;
  EXPECT_EQ(e.line, line) << text;
  EXPECT_EQ(e.key, key) << text;
  EXPECT_EQ(e.message, message) << text;
}

std::shared_ptr<const Config> parseOk(std::string_view text) {
  ConfigResult result = parseConfig(text, "test.toml");
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().toString());
  return result.ok() ? result.value() : nullptr;
}

TEST(ConfigDefaults, ShippedDefaultParsesToStructDefaults) {
  ConfigResult result = defaultConfig();
  ASSERT_TRUE(result.ok()) << result.error().toString();
  EXPECT_EQ(result.value()->source_name, "<default>");
  // The one difference: the shipped file turns TLS on, with the DEV-ONLY certificate.
  Config shipped = *result.value();
  EXPECT_EQ(shipped.startup.public_side.tls_port, 5061);
  ASSERT_EQ(shipped.tls.certificates.size(), 1u);
  EXPECT_EQ(shipped.tls.certificates[0].certificate, "certs/dev/server.pem");
  EXPECT_EQ(shipped.tls.certificates[0].key, "certs/dev/server.key");
  shipped.startup.public_side.tls_port = 0;
  shipped.tls.certificates.clear();
  expectDefaults(shipped);
  expectDefaults(Config{});
  EXPECT_TRUE(startupChanges(Config{}.startup, shipped.startup).empty());
}

TEST(ConfigDefaults, TheDefaultsFilesAreTakenFromTheBinarysFolder) {
  ConfigResult result = defaultConfig("/opt/palisade/bin");
  ASSERT_TRUE(result.ok()) << result.error().toString();
  EXPECT_EQ(result.value()->tls.certificates[0].certificate, "/opt/palisade/bin/certs/dev/server.pem");
}

TEST(ConfigTls, ReadsTheTlsTableAndTlsPeers) {
  auto config = parseConfig(
      "[public]\ntls_port = 5061\n[pbx_side]\ntls_port = 5071\n"
      "[pbx]\ntransport = \"tls\"\ntls_server_name = \"pbx.example.com\"\n"
      "[[trunks]]\nname = \"carrier\"\naddresses = [\"192.0.2.1\"]\nhost = \"192.0.2.1\"\ntransport = "
      "\"tls\"\n"
      "tls_client_ca = \"ca/carrier.pem\"\ntls_client_names = [\"sip.carrier.example\"]\n"
      "[[users]]\nname = \"2001\"\npassword = \"Correct-Horse-Battery-9\"\nrequire_tls = true\n"
      "[tls]\nmin_version = \"1.3\"\nhandshake_timeout_s = 3\nverify_server = false\n"
      "[[tls.certificates]]\ncertificate = \"server.pem\"\nkey = \"/etc/keys/server.key\"\n"
      "[[tls.certificates]]\ncertificate = \"other.pem\"\nkey = \"other.key\"\n",
      "/etc/palisade/palisade.toml", "/etc/palisade");
  ASSERT_TRUE(config.ok()) << config.error().toString();
  const Config& c = *config.value();
  EXPECT_EQ(c.startup.public_side.tls_port, 5061);
  EXPECT_EQ(c.pbx.transport, TransportKind::Tls);
  EXPECT_EQ(c.pbx.tls_server_name, "pbx.example.com");
  EXPECT_EQ(c.trunks[0].transport, TransportKind::Tls);
  EXPECT_EQ(c.trunks[0].tls_client_ca, "/etc/palisade/ca/carrier.pem");
  EXPECT_EQ(c.trunks[0].tls_client_names, std::vector<std::string>{"sip.carrier.example"});
  EXPECT_TRUE(c.users[0].require_tls);
  EXPECT_EQ(c.tls.min_version, "1.3");
  EXPECT_EQ(c.tls.handshake_timeout_s, 3u);
  ASSERT_EQ(c.tls.certificates.size(), 2u);
  EXPECT_EQ(c.tls.certificates[0].certificate, "/etc/palisade/server.pem");
  EXPECT_EQ(c.tls.certificates[0].key, "/etc/keys/server.key");
  EXPECT_EQ(c.tls.certificates[1].key, "/etc/palisade/other.key");
  // Turning verification off is allowed, and said at every start and reload.
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("tls.verify_server"), std::string::npos);
}

TEST(ConfigErrors, TlsSettings) {
  expectError("[public]\ntls_port = 5061\n", 2, "public.tls_port",
              "a TLS listener needs a certificate: add a [[tls.certificates]] entry (or set tls_port = 0)");
  expectError("[tls]\nmin_version = \"1.1\"\n", 2, "tls.min_version",
              "must be \"1.2\" or \"1.3\" (TLS 1.0 and 1.1 are never offered), got \"1.1\"");
  expectError("[tls]\n[[tls.certificates]]\ncertificate = \"a.pem\"\n", 2, "tls.certificates[1].key",
              "is required in every [[tls.certificates]] entry");
  expectError("[tls]\ncertificates = \"a.pem\"\n", 2, "tls.certificates",
              "must be written as one or more [[tls.certificates]] tables");
  expectError("[tls]\nhandshake_timeout_s = 0\n", 2, "tls.handshake_timeout_s",
              "must be between 1 and 60, got 0");
  expectError(
      "[[trunks]]\nname = \"c\"\naddresses = [\"192.0.2.1\"]\nhost = \"192.0.2.1\"\ntls_client_ca = "
      "\"ca.pem\"\n",
      5, "trunks[1].tls_client_names",
      "is required with tls_client_ca: the names a client certificate must carry");
  expectError("[pbx]\ntransport = \"tls\"\n", 2, "pbx.transport",
              "\"tls\" needs a TLS listener on the PBX side: set pbx_side.tls_port");
  expectError(
      "[[trunks]]\nname = \"c\"\naddresses = [\"192.0.2.1\"]\nhost = \"192.0.2.1\"\ntls_client_ca = "
      "\"ca.pem\"\n"
      "tls_client_names = [\"c.example\"]\n",
      5, "trunks[1].tls_client_ca",
      "mutual TLS needs transport = \"tls\" (its addresses then count as the trunk over TLS only)");
  // The TLS port is a TCP socket: it cannot share the listener's TCP port.
  expectError(
      "[public]\ntcp_port = 5060\ntls_port = 5060\n[tls]\n[[tls.certificates]]\ncertificate = \"a\"\nkey = "
      "\"b\"\n",
      3, "public.tls_port",
      "port 5060 on 127.0.0.1 is also public.tcp_port on 127.0.0.1; they would be one socket");
}

TEST(ConfigDefaults, EmptyFileIsTheDefaults) {
  auto config = parseOk("");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->source_name, "test.toml");
  expectDefaults(*config);
}

TEST(ConfigDefaults, EmptyTablesKeepDefaults) {
  auto config =
      parseOk("[general]\n[public]\n[pbx_side]\n[pbx]\n[sip]\n[headers]\n[tcp]\n[limits]\n[management]\n");
  ASSERT_NE(config, nullptr);
  expectDefaults(*config);
}

TEST(ConfigParse, FullFile) {
  auto config = parseOk(R"toml(# every key, none at its default
[general]
workers = 4
log_level = "debug"

[public]
address = "203.0.113.10"
udp_port = 5062
tcp_port = 5063

[pbx_side]
address = "10.0.0.1"
udp_port = 5062
tcp_port = 5063

[pbx]
host = "10.0.0.20"
port = 5064
transport = "tcp"
addresses = ["10.0.0.20", "10.0.0.21", "fd00::20"]
trust_identity = false

[[trunks]]
name = "carrier-a"
host = "2001:db8::5"
port = 5065
transport = "udp"
addresses = ["2001:db8::5", "198.51.100.0/24"]
prefixes = ["+1", "+44"]
trust_identity = false

[[trunks]]
name = "backup"
host = "198.51.100.20"
transport = "tcp"
addresses = ["198.51.100.20"]

[sip]
t1_ms = 250
t2_ms = 2000
t4_ms = 2500
max_message_bytes = 32768
max_headers = 64
max_line_bytes = 4096
ring_timeout_s = 60
max_call_duration_s = 7200
user_agent = "Edge SBC/1.0 (lab)"

[headers]
to_pbx = ["X-Trunk-Tag"]
to_public = ["Subject", "Date"]
identity = ["P-Asserted-Identity"]

[tcp]
idle_timeout_s = 120
head_timeout_s = 5
max_connections = 1000
max_connections_per_ip = 8
max_send_queue_bytes = 65536

[limits]
inbox_depth = 1024
max_calls = 500

[management]
address = "::1"
port = 8080
)toml");
  ASSERT_NE(config, nullptr);
  const Config& c = *config;
  EXPECT_EQ(c.source_name, "test.toml");
  EXPECT_EQ(c.startup.workers, 4u);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.startup.public_side.address, "203.0.113.10");
  EXPECT_EQ(c.startup.public_side.udp_port, 5062);
  EXPECT_EQ(c.startup.public_side.tcp_port, 5063);
  EXPECT_EQ(c.startup.pbx_side.address, "10.0.0.1");
  EXPECT_EQ(c.startup.pbx_side.udp_port, 5062);
  EXPECT_EQ(c.startup.pbx_side.tcp_port, 5063);
  EXPECT_EQ(c.pbx.host, "10.0.0.20");
  EXPECT_EQ(c.pbx.port, 5064);
  EXPECT_EQ(c.pbx.transport, TransportKind::Tcp);
  EXPECT_EQ(c.pbx.addresses, (std::vector<std::string>{"10.0.0.20", "10.0.0.21", "fd00::20"}));
  ASSERT_EQ(c.trunks.size(), 2u);
  EXPECT_EQ(c.trunks[0].name, "carrier-a");
  EXPECT_EQ(c.trunks[0].host, "2001:db8::5");
  EXPECT_EQ(c.trunks[0].port, 5065);
  EXPECT_EQ(c.trunks[0].transport, TransportKind::Udp);
  EXPECT_EQ(c.trunks[0].addresses, (std::vector<std::string>{"2001:db8::5", "198.51.100.0/24"}));
  EXPECT_EQ(c.trunks[0].prefixes, (std::vector<std::string>{"+1", "+44"}));
  EXPECT_EQ(c.trunks[1].name, "backup");
  EXPECT_EQ(c.trunks[1].port, 5060);
  EXPECT_EQ(c.trunks[1].transport, TransportKind::Tcp);
  EXPECT_TRUE(c.trunks[1].trust_identity);
  EXPECT_FALSE(c.pbx.trust_identity);
  EXPECT_FALSE(c.trunks[0].trust_identity);
  EXPECT_EQ(c.headers.to_pbx, std::vector<std::string>{"X-Trunk-Tag"});
  EXPECT_EQ(c.headers.to_public, (std::vector<std::string>{"Subject", "Date"}));
  EXPECT_EQ(c.headers.identity, std::vector<std::string>{"P-Asserted-Identity"});
  EXPECT_EQ(c.timing.t1_ms, 250u);
  EXPECT_EQ(c.timing.t2_ms, 2000u);
  EXPECT_EQ(c.timing.t4_ms, 2500u);
  EXPECT_EQ(c.limits.max_message_bytes, 32768u);
  EXPECT_EQ(c.limits.max_headers, 64u);
  EXPECT_EQ(c.limits.max_line_bytes, 4096u);
  EXPECT_EQ(c.ring_timeout_s, 60u);
  EXPECT_EQ(c.max_call_duration_s, 7200u);
  EXPECT_EQ(c.user_agent, "Edge SBC/1.0 (lab)");
  EXPECT_EQ(c.tcp_idle_timeout_s, 120u);
  EXPECT_EQ(c.tcp_head_timeout_s, 5u);
  EXPECT_EQ(c.tcp_max_connections, 1000u);
  EXPECT_EQ(c.tcp_max_connections_per_ip, 8u);
  EXPECT_EQ(c.tcp_max_send_queue_bytes, 65536u);
  EXPECT_EQ(c.startup.inbox_depth, 1024u);
  EXPECT_EQ(c.max_calls, 500u);
  EXPECT_EQ(c.startup.management_address, "::1");
  EXPECT_EQ(c.startup.management_port, 8080);
}

TEST(ConfigParse, PartialTableKeepsOtherDefaults) {
  auto config = parseOk("[sip]\nt1_ms = 1000\nt2_ms = 8000\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->timing.t1_ms, 1000u);
  EXPECT_EQ(config->timing.t2_ms, 8000u);
  EXPECT_EQ(config->timing.t4_ms, 5000u);
  EXPECT_EQ(config->startup.public_side.udp_port, 5060);
}

TEST(ConfigErrors, UnknownKey) {
  expectError("[general]\nworkers = 2\nwokers = 3\n", 3, "general.wokers", "unknown key");
  expectError("[sip]\ntimers.t1 = 5\n", 2, "sip.timers", "unknown key");
}

TEST(ConfigErrors, UnknownTable) {
  expectError("[general]\nworkers = 2\n\n[video]\nports = 10\n", 4, "video", "unknown table [video]");
  expectError("workers = 2\n", 1, "workers", "unknown key; settings belong in a table such as [general]");
}

TEST(ConfigErrors, KnownTableOfWrongType) {
  expectError("general = 5\n", 1, "general", "expected a table, got an integer");
  expectError("[[pbx]]\nhost = \"10.0.0.1\"\n", 1, "pbx", "expected a table, got an array");
}

TEST(ConfigErrors, WrongType) {
  expectError("[public]\nudp_port = \"5060\"\n", 2, "public.udp_port", "expected an integer, got a string");
  expectError("[sip]\n\nt1_ms = 500.0\n", 3, "sip.t1_ms", "expected an integer, got a floating-point number");
  expectError("[general]\nlog_level = 3\n", 2, "general.log_level", "expected a string, got an integer");
  expectError("[pbx]\naddresses = \"10.0.0.1\"\n", 2, "pbx.addresses", "expected an array, got a string");
  expectError("[[trunks]]\nname = \"t\"\nhost = \"10.0.0.1\"\naddresses = [\n  \"10.0.0.1\",\n  5,\n]\n", 6,
              "trunks[1].addresses", "entry 2 must be a string, got an integer");
  expectError("[tcp]\nidle_timeout_s = true\n", 2, "tcp.idle_timeout_s",
              "expected an integer, got a boolean");
}

struct RangeCase {
  const char* table;
  const char* key;
  std::int64_t min;
  std::int64_t max;
};

// Both bounds are accepted and one step past either is rejected, for every integer key.
TEST(ConfigErrors, IntegerRanges) {
  const RangeCase cases[] = {
      {"general", "workers", 0, 256},
      {"public", "udp_port", 1, 65535},
      {"public", "tcp_port", 1, 65535},
      {"pbx_side", "udp_port", 1, 65535},
      {"pbx_side", "tcp_port", 1, 65535},
      {"pbx", "port", 1, 65535},
      {"sip", "t4_ms", 100, 60000},
      {"sip", "max_message_bytes", 1024, 1048576},
      {"sip", "max_headers", 8, 1024},
      {"sip", "max_line_bytes", 256, 65535},
      {"sip", "ring_timeout_s", 10, 3600},
      {"sip", "max_call_duration_s", 60, 604800},
      {"tcp", "idle_timeout_s", 1, 86400},
      {"tcp", "head_timeout_s", 1, 300},
      {"tcp", "max_connections", 1, 1048576},
      {"tcp", "max_send_queue_bytes", 16384, 67108864},
      {"tcp", "max_connections_per_ip", 1, 65535},
      {"limits", "max_calls", 1, 10000000},
      {"management", "port", 1, 65535},
  };
  for (const RangeCase& c : cases) {
    SCOPED_TRACE(std::string(c.table) + "." + c.key);
    auto text = [&c](std::int64_t value) {
      return "# range\n[" + std::string(c.table) + "]\n" + c.key + " = " + std::to_string(value) + "\n";
    };
    for (std::int64_t good : {c.min, c.max}) {
      EXPECT_TRUE(parseConfig(text(good), "test.toml").ok()) << text(good);
    }
    std::string expected_key = std::string(c.table) + "." + c.key;
    for (std::int64_t bad : {c.min - 1, c.max + 1}) {
      expectError(text(bad), 3, expected_key,
                  "must be between " + std::to_string(c.min) + " and " + std::to_string(c.max) + ", got " +
                      std::to_string(bad));
    }
  }
  expectError("[general]\nworkers = -1\n", 2, "general.workers", "must be between 0 and 256, got -1");
  expectError("[public]\nudp_port = 9223372036854775807\n", 2, "public.udp_port",
              "must be between 1 and 65535, got 9223372036854775807");
}

TEST(ConfigErrors, SipTimers) {
  expectError("[sip]\nt1_ms = 49\n", 2, "sip.t1_ms", "must be between 50 and 10000, got 49");
  expectError("[sip]\nt1_ms = 10001\n", 2, "sip.t1_ms", "must be between 50 and 10000, got 10001");
  expectError("[sip]\nt2_ms = 64001\n", 2, "sip.t2_ms", "must be between 50 and 64000, got 64001");
  // T2 below T1: blame the key the file wrote.
  expectError("[sip]\nt1_ms = 1000\nt2_ms = 999\n", 3, "sip.t2_ms",
              "must be at least sip.t1_ms (1000), got 999");
  expectError("[sip]\nt2_ms = 400\n", 2, "sip.t2_ms",
              "must be at least sip.t1_ms (500, the default), got 400");
  expectError("[sip]\nt1_ms = 5000\n", 2, "sip.t1_ms",
              "must not exceed sip.t2_ms (4000, the default), got 5000");
  auto config = parseOk("[sip]\nt1_ms = 10000\nt2_ms = 64000\nt4_ms = 60000\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->timing.t2_ms, 64000u);
  ASSERT_NE(parseOk("[sip]\nt1_ms = 700\nt2_ms = 700\n"), nullptr);
}

TEST(ConfigHeaders, ListsAreCheckedNameByName) {
  auto config = parseOk(
      "[headers]\nto_pbx = [\"X-Custom\", \"s\"]\nto_public = []\nidentity = [\"P-Asserted-Identity\"]\n"
      "[[trunks]]\nname = \"c\"\nhost = \"127.0.0.1\"\naddresses = [\"127.0.0.1\"]\ntrust_identity = "
      "false\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->headers.to_pbx, (std::vector<std::string>{"X-Custom", "s"}));
  EXPECT_TRUE(config->headers.to_public.empty());
  EXPECT_FALSE(config->trunks[0].trust_identity);
  EXPECT_TRUE(config->pbx.trust_identity);
  // Credentials never cross, whatever the file says.
  expectError("[headers]\nto_pbx = [\"Accept\",\n  \"Authorization\"]\n", 3, "headers.to_pbx",
              "entry 2: \"Authorization\" credentials and challenges never cross the B2BUA");
  expectError("[headers]\nto_public = [\"proxy-authorization\"]\n", 2, "headers.to_public",
              "entry 1: \"proxy-authorization\" credentials and challenges never cross the B2BUA");
  expectError("[headers]\nidentity = [\"WWW-Authenticate\"]\n", 2, "headers.identity",
              "entry 1: \"WWW-Authenticate\" credentials and challenges never cross the B2BUA");
  // Headers Palisade writes itself, by long or compact name.
  expectError("[headers]\nto_pbx = [\"v\"]\n", 2, "headers.to_pbx",
              "entry 1: \"v\" Palisade writes this header for each leg itself");
  expectError("[headers]\nto_pbx = [\"Record-Route\"]\n", 2, "headers.to_pbx",
              "entry 1: \"Record-Route\" Palisade writes this header for each leg itself");
  // Identity headers only through the identity list (only from trusted peers).
  expectError("[headers]\nto_pbx = [\"p-asserted-identity\"]\n", 2, "headers.to_pbx",
              "entry 1: \"p-asserted-identity\" is an identity header: list it in headers.identity (copied "
              "only from trusted peers)");
  expectError("[headers]\nto_pbx = [\"Bad Name\"]\n", 2, "headers.to_pbx",
              "entry 1: \"Bad Name\" is not a header name (a token of at most 64 characters)");
  expectError("[pbx]\ntrust_identity = 1\n", 2, "pbx.trust_identity", "expected a boolean, got an integer");
}

constexpr const char* kStrong = "Tr0ub4dor&3-Horse!Staple";

TEST(ConfigUsers, UsersAndAuth) {
  auto config =
      parseOk(std::string("[auth]\nrealm = \"sbc.example\"\nalgorithms = [\"SHA-512-256\", \"MD5\"]\n") +
              "[[users]]\nname = \"2001\"\npassword = \"" + kStrong +
              "\"\nsources = [\"127.0.0.3/32\"]\n"
              "number = \"+12125550101\"\n"
              "[[users]]\nname = \"2002\"\nha1_md5 = \"" +
              std::string(32, 'a') +
              "\"\n"
              "ha1_sha512_256 = \"" +
              std::string(64, 'b') + "\"\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->auth.realm, "sbc.example");
  EXPECT_EQ(config->auth.algorithms, (std::vector<std::string>{"SHA-512-256", "MD5"}));
  EXPECT_EQ(config->auth.nonce_lifetime_s, 300u);
  ASSERT_EQ(config->users.size(), 2u);
  EXPECT_EQ(config->users[0].name, "2001");
  EXPECT_EQ(config->users[0].sources, std::vector<std::string>{"127.0.0.3/32"});
  EXPECT_EQ(config->users[0].number, "+12125550101");
  EXPECT_EQ(config->users[1].ha1_md5, std::string(32, 'a'));
  EXPECT_TRUE(config->warnings.empty());
  auto defaults = parseOk("");
  EXPECT_TRUE(defaults->users.empty());
  EXPECT_EQ(defaults->auth.realm, "palisade");
  EXPECT_EQ(defaults->auth.algorithms, (std::vector<std::string>{"SHA-256", "MD5"}));
}

// A password an attacker would try first is refused at load, and the error never echoes it.
TEST(ConfigUsers, CredentialPolicy) {
  auto user = [](const std::string& password, const std::string& extra = "") {
    return "[[users]]\nname = \"2001\"\npassword = \"" + password + "\"\n" + extra;
  };
  const char* why = " (set allow_weak_password = true to accept it)";
  expectError(user("Sh0rt!pass"), 3, "users[1].password",
              std::string("the password is shorter than 16 characters") + why);
  expectError(user("alllowercaseletters1!"), 3, "users[1].password",
              std::string("the password needs upper and lower case letters, digits and symbols") + why);
  expectError(user("NoDigitsOrSymbolsHere"), 3, "users[1].password",
              std::string("the password needs upper and lower case letters, digits and symbols") + why);
  expectError(user("My-2001-Extension!x"), 3, "users[1].password",
              std::string("the password contains the user name") + why);
  expectError(user("p@SSW0RD12345678"), 3, "users[1].password",
              std::string("the password is a common default password") + why);
  for (const char* secret : {"Sh0rt!pass", "p@SSW0RD12345678"}) {
    ConfigError e = errorOf(user(secret));
    EXPECT_EQ(e.toString().find(secret), std::string::npos) << "the error echoes the password";
  }
  // Allowed by the user's own override: a warning (without the secret), not an error.
  auto config = parseOk(user("1234", "allow_weak_password = true\n"));
  ASSERT_NE(config, nullptr);
  ASSERT_EQ(config->warnings.size(), 1u);
  EXPECT_EQ(config->warnings[0],
            "test.toml:3: users[1].password: the password is shorter than 16 characters (allowed by "
            "allow_weak_password)");
  EXPECT_NE(parseOk(user(kStrong)), nullptr);
}

TEST(ConfigUsers, EntriesAreChecked) {
  expectError("[[users]]\npassword = \"x\"\n", 1, "users[1].name", "is required in every [[users]] entry");
  expectError("[[users]]\nname = \"2001\"\n", 1, "users[1].password",
              "is required (or ha1_md5 / ha1_sha256 / ha1_sha512_256)");
  expectError(std::string("[[users]]\nname = \"2001\"\npassword = \"") + kStrong + "\"\nha1_md5 = \"" +
                  std::string(32, 'a') + "\"\n",
              3, "users[1].password", "give either password or ha1_* values, not both");
  expectError("[[users]]\nname = \"2001\"\nha1_md5 = \"ABC\"\n", 3, "users[1].ha1_md5",
              "must be 32 lower-case hex digits");
  // HA1s must cover every offered algorithm (the default offers SHA-256 and MD5).
  expectError("[[users]]\nname = \"2001\"\nha1_md5 = \"" + std::string(32, 'a') + "\"\n", 1,
              "users[1].ha1_sha256", "is needed because auth.algorithms offers SHA-256 (or give a password)");
  expectError(std::string("[[users]]\nname = \"2001\"\npassword = \"") + kStrong +
                  "\"\n[[users]]\nname = \"2001\"\n" + "password = \"" + kStrong + "\"\n",
              5, "users[2].name", "\"2001\" is already the name of the user at line 1");
  expectError(
      std::string("[[users]]\nname = \"2001\"\npassword = \"") + kStrong + "\"\nnumber = \"555-1234\"\n", 4,
      "users[1].number", "must be 1 to 20 digits with an optional leading '+', got \"555-1234\"");
  expectError("[auth]\nalgorithms = [\"SHA-1\"]\n", 2, "auth.algorithms",
              "entry 1: must be \"SHA-256\", \"SHA-512-256\" or \"MD5\", got \"SHA-1\"");
  expectError("[auth]\nalgorithms = [\"MD5\", \"MD5\"]\n", 2, "auth.algorithms", "\"MD5\" is listed twice");
  expectError("[auth]\nrealm = \"a\\\"b\"\n", 2, "auth.realm",
              "must be 1 to 64 printable ASCII characters without quotes or backslashes, got \"a\\\"b\"");
  expectError("[users]\nname = \"x\"\n", 1, "users", "must be written as [[users]] tables");
}

TEST(ConfigTrunks, EntriesAreCheckedOneByOne) {
  // The old single table is refused with a pointer to the new form.
  expectError(
      "[carrier]\nhost = \"10.0.0.1\"\n", 1, "carrier",
      "the [carrier] table is now a [[trunks]] entry (name, addresses, host, port, transport, prefixes)");
  expectError("trunks = []\n", 1, "trunks", "must be written as [[trunks]] tables");
  expectError("[trunks]\nname = \"t\"\n", 1, "trunks", "must be written as [[trunks]] tables");
  expectError("[[trunks]]\nname = \"t\"\nhost = \"10.0.0.1\"\n", 1, "trunks[1].addresses",
              "is required in every [[trunks]] entry");
  expectError("[[trunks]]\nname = \"a b\"\nhost = \"10.0.0.1\"\naddresses = [\"10.0.0.1\"]\n", 2,
              "trunks[1].name", "must be 1 to 32 letters, digits, '-' or '_', got \"a b\"");
  expectError(
      "[[trunks]]\nname = \"t\"\nhost = \"10.0.0.1\"\naddresses = [\"10.0.0.1\"]\n"
      "[[trunks]]\nname = \"t\"\nhost = \"10.0.0.2\"\naddresses = [\"10.0.0.2\"]\n",
      6, "trunks[2].name", "\"t\" is already the name of trunk at line 1");
  expectError(
      "[[trunks]]\nname = \"t\"\nhost = \"10.0.0.1\"\naddresses = [\"10.0.0.1\"]\nprefixes = [\"1-800\"]\n",
      5, "trunks[1].prefixes", "entry 1: must be 1 to 20 digits with an optional leading '+', got \"1-800\"");
  expectError("[[trunks]]\nname = \"t\"\nhost = \"10.0.0.1\"\naddresses = [\"10.0.0.1\"]\nportt = 1\n", 5,
              "trunks[1].portt", "unknown key");
}

TEST(ConfigErrors, InboxDepthIsAPowerOfTwo) {
  for (std::uint32_t good : {64u, 128u, 65536u, 1048576u}) {
    auto config = parseOk("[limits]\ninbox_depth = " + std::to_string(good) + "\n");
    ASSERT_NE(config, nullptr);
    EXPECT_EQ(config->startup.inbox_depth, good);
  }
  expectError("[limits]\ninbox_depth = 1000\n", 2, "limits.inbox_depth",
              "must be a power of two between 64 and 1048576, got 1000");
  expectError("[limits]\ninbox_depth = 32\n", 2, "limits.inbox_depth",
              "must be between 64 and 1048576, got 32");
  expectError("[limits]\ninbox_depth = 2097152\n", 2, "limits.inbox_depth",
              "must be between 64 and 1048576, got 2097152");
}

TEST(ConfigErrors, BadAddress) {
  expectError("[public]\naddress = \"sbc.example.com\"\n", 2, "public.address",
              "\"sbc.example.com\" is not a numeric IPv4 or IPv6 address");
  expectError("[pbx_side]\naddress = \"10.0.0.256\"\n", 2, "pbx_side.address",
              "\"10.0.0.256\" is not a numeric IPv4 or IPv6 address");
  expectError("[management]\naddress = \"\"\n", 2, "management.address",
              "\"\" is not a numeric IPv4 or IPv6 address");
  expectError("[pbx]\nhost = \"pbx.local\"\n", 2, "pbx.host",
              "\"pbx.local\" is not a numeric IPv4 or IPv6 address");
  expectError("[[trunks]]\nname = \"t\"\naddresses = [\"10.0.0.1\"]\nhost = \"0.0.0.0\"\n", 4,
              "trunks[1].host", "\"0.0.0.0\" is the unspecified address");
  expectError("[pbx]\naddresses = [\"10.0.0.1\",\n  \"10.0.0.2/33\"]\n", 3, "pbx.addresses",
              "entry 2: \"10.0.0.2/33\" has a prefix length outside 0..32");
  expectError("[pbx]\naddresses = [\"0.0.0.0/0\"]\n", 2, "pbx.addresses",
              "entry 1: \"0.0.0.0/0\" would match every source");
  expectError("[pbx]\naddresses = [\"pbx.local\"]\n", 2, "pbx.addresses",
              "entry 1: \"pbx.local\" is not an IPv4 or IPv6 address or CIDR prefix");
  expectError("[pbx]\naddresses = []\n", 2, "pbx.addresses", "must list at least one entry");
  // A NUL would end the string early for inet_pton.
  expectError("[public]\naddress = \"127.0.0.1\\u0000x\"\n", 2, "public.address",
              "\"127.0.0.1\\x00x\" is not a numeric IPv4 or IPv6 address");

  auto config = parseOk(
      "[public]\naddress = \"::\"\n[pbx_side]\naddress = \"fe80::1\"\nudp_port = 5062\n"
      "tcp_port = 5062\n[management]\naddress = \"0.0.0.0\"\n[media]\npublic_address = \"2001:db8::5\"\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->startup.public_side.address, "::");
  EXPECT_EQ(config->startup.management_address, "0.0.0.0");
}

TEST(ConfigErrors, BadTransport) {
  expectError("[pbx]\ntransport = \"sctp\"\n", 2, "pbx.transport",
              "must be \"udp\", \"tcp\" or \"tls\", got \"sctp\"");
  expectError(
      "[[trunks]]\nname = \"t\"\nhost = \"10.0.0.1\"\naddresses = [\"10.0.0.1\"]\ntransport = \"UDP\"\n", 5,
      "trunks[1].transport", "must be \"udp\", \"tcp\" or \"tls\", got \"UDP\"");
  auto config = parseOk(
      "[[trunks]]\nname = \"t\"\nhost = \"10.0.0.1\"\naddresses = [\"10.0.0.1\"]\ntransport = \"tcp\"\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->trunks[0].transport, TransportKind::Tcp);
  EXPECT_EQ(config->pbx.transport, TransportKind::Udp);
}

TEST(ConfigErrors, BadLogLevel) {
  expectError("[general]\nlog_level = \"verbose\"\n", 2, "general.log_level",
              "must be one of trace, debug, info, warn, error, off; got \"verbose\"");
  for (const char* level : {"trace", "debug", "info", "warn", "error", "off"}) {
    auto config = parseOk(std::string("[general]\nlog_level = \"") + level + "\"\n");
    ASSERT_NE(config, nullptr);
    EXPECT_EQ(config->log_level, level);
  }
}

TEST(ConfigErrors, BadUserAgent) {
  EXPECT_NE(parseOk("[sip]\nuser_agent = \"\"\n"), nullptr);  // empty: no header at all
  expectError("[sip]\nuser_agent = \"Palisade\\r\\nX-Injected: 1\"\n", 2, "sip.user_agent",
              "must be at most 64 printable ASCII characters, got \"Palisade\\x0d\\x0aX-Injected: 1\"");
  expectError("[sip]\nuser_agent = \"" + std::string(65, 'a') + "\"\n", 2, "sip.user_agent",
              "must be at most 64 printable ASCII characters, got \"" + std::string(64, 'a') + "...\"");
  expectError("[sip]\nuser_agent = \"Pal\u00e9sade\"\n", 2, "sip.user_agent",
              "must be at most 64 printable ASCII characters, got \"Pal\xc3\xa9"
              "sade\"");
  auto config = parseOk("[sip]\nuser_agent = \"" + std::string(64, 'a') + "\"\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->user_agent, std::string(64, 'a'));
}

TEST(ConfigErrors, SyntaxError) {
  ConfigError e = errorOf("[general]\nworkers = 2\nlog_level = \"info\n[sip]\n");
  EXPECT_EQ(e.file, "test.toml");
  EXPECT_EQ(e.line, 3u);
  EXPECT_EQ(e.key, "");
  EXPECT_FALSE(e.message.empty());
  EXPECT_EQ(e.toString().rfind("test.toml:3: ", 0), 0u) << e.toString();

  e = errorOf("[sip]\nt1_ms = 500\nt1_ms = 600\n");
  EXPECT_EQ(e.line, 3u);
  EXPECT_EQ(e.key, "");
  EXPECT_NE(e.message.find("t1_ms"), std::string::npos) << e.message;
}

TEST(ConfigErrors, ListenersMustNotShareASocket) {
  expectError(
      "[public]\naddress = \"127.0.0.1\"\nudp_port = 5070\ntcp_port = 5061\n", 3, "public.udp_port",
      "port 5070 on 127.0.0.1 is also pbx_side.udp_port (default) on 127.0.0.1; they would be one socket");
  expectError(
      "[public]\nudp_port = 5062\n[pbx_side]\nudp_port = 5070\ntcp_port = 5060\n", 5, "pbx_side.tcp_port",
      "port 5060 on 127.0.0.1 is also public.tcp_port (default) on 127.0.0.1; they would be one socket");
  // A wildcard covers every address of its family, and "::" covers IPv4 too.
  expectError(
      "[public]\naddress = \"0.0.0.0\"\n[pbx_side]\nudp_port = 5060\ntcp_port = 5071\n", 4,
      "pbx_side.udp_port",
      "port 5060 on 127.0.0.1 is also public.udp_port (default) on 0.0.0.0; they would be one socket");
  expectError("[public]\naddress = \"::\"\nudp_port = 5070\n", 3, "public.udp_port",
              "port 5070 on :: is also pbx_side.udp_port (default) on 127.0.0.1; they would be one socket");
  expectError(
      "[public]\naddress = \"::ffff:127.0.0.1\"\ntcp_port = 5070\n", 3, "public.tcp_port",
      "port 5070 on ::ffff:127.0.0.1 is also pbx_side.tcp_port (default) on 127.0.0.1; they would be one "
      "socket");
  // Same ports on different addresses, or UDP and TCP on one number, are separate sockets.
  ASSERT_NE(parseOk("[public]\naddress = \"192.0.2.1\"\n[pbx_side]\naddress = \"10.0.0.1\"\nudp_port = 5060\n"
                    "tcp_port = 5060\n"),
            nullptr);
  ASSERT_NE(parseOk("[public]\naddress = \"0.0.0.0\"\n[pbx_side]\naddress = \"::1\"\nudp_port = 5060\n"
                    "tcp_port = 5060\n[media]\nanchor = false\n"),
            nullptr);
  ASSERT_NE(
      parseOk("[public]\nudp_port = 5070\ntcp_port = 5071\n[pbx_side]\nudp_port = 5071\ntcp_port = 5070\n"),
      nullptr);
}

TEST(ConfigErrors, ManagementPortMustNotBeASipPort) {
  expectError(
      "[management]\nport = 5060\n", 2, "management.port",
      "port 5060 on 127.0.0.1 is also public.udp_port (default) on 127.0.0.1; they would be one socket");
  expectError(
      "[pbx_side]\ntcp_port = 9180\n", 2, "pbx_side.tcp_port",
      "port 9180 on 127.0.0.1 is also management.port (default) on 127.0.0.1; they would be one socket");
  expectError(
      "[management]\naddress = \"0.0.0.0\"\nport = 5071\n[pbx_side]\nudp_port = 5072\ntcp_port = 5071\n", 3,
      "management.port",
      "port 5071 on 0.0.0.0 is also pbx_side.tcp_port on 127.0.0.1; they would be one socket");
  ASSERT_NE(parseOk("[management]\naddress = \"127.0.0.2\"\nport = 5060\n"), nullptr);
}

TEST(ConfigErrors, FirstErrorInFileOrderWins) {
  // [sip] is read after [general], but its error comes first in the file.
  expectError("[sip]\nt1_ms = 1\n[general]\nworkers = 1000\n", 2, "sip.t1_ms",
              "must be between 50 and 10000, got 1");
}

TEST(ConfigError, ToStringFormat) {
  EXPECT_EQ((ConfigError{"a.toml", 12, "sip.t1_ms", "must be between 50 and 10000, got 1"}).toString(),
            "a.toml:12: sip.t1_ms: must be between 50 and 10000, got 1");
  EXPECT_EQ((ConfigError{"a.toml", 0, "sip.t1_ms", "bad"}).toString(), "a.toml: sip.t1_ms: bad");
  EXPECT_EQ((ConfigError{"a.toml", 3, "", "bad"}).toString(), "a.toml:3: bad");
  EXPECT_EQ((ConfigError{"a.toml", 0, "", "bad"}).toString(), "a.toml: bad");
  EXPECT_EQ(errorOf("[tcp]\nmax_connections = 0\n", "/etc/palisade/palisade.toml").toString(),
            "/etc/palisade/palisade.toml:2: tcp.max_connections: must be between 1 and 1048576, got 0");
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/palisade-config-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::remove((dir_ + "/palisade.toml").c_str());
    ::rmdir(dir_.c_str());
  }
  std::string write(const std::string& text) {
    std::string path = dir_ + "/palisade.toml";
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(ConfigFileTest, LoadsAFile) {
  std::string path = write("[general]\nworkers = 3\n");
  ConfigResult result = loadConfigFile(path);
  ASSERT_TRUE(result.ok()) << result.error().toString();
  EXPECT_EQ(result.value()->source_name, path);
  EXPECT_EQ(result.value()->startup.workers, 3u);
  EXPECT_EQ(result.value()->startup.public_side.udp_port, 5060);
}

TEST_F(ConfigFileTest, ErrorsNameTheFile) {
  std::string path = write("[general]\n\nworkers = \"many\"\n");
  ConfigResult result = loadConfigFile(path);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().toString(), path + ":3: general.workers: expected an integer, got a string");
}

TEST_F(ConfigFileTest, MissingFile) {
  std::string path = dir_ + "/absent.toml";
  ConfigResult result = loadConfigFile(path);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().file, path);
  EXPECT_EQ(result.error().line, 0u);
  EXPECT_EQ(result.error().key, "");
  EXPECT_EQ(result.error().toString(), path + ": cannot open: No such file or directory");
}

TEST_F(ConfigFileTest, DirectoryIsNotAFile) {
  ConfigResult result = loadConfigFile(dir_);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().toString(), dir_ + ": cannot read: Is a directory");
}

TEST(ConfigRestart, NoChangesBetweenEqualSnapshots) {
  EXPECT_TRUE(startupChanges(Config{}.startup, Config{}.startup).empty());
}

TEST(ConfigRestart, ReloadableChangesAreNotListed) {
  auto loaded = parseOk(R"toml([general]
log_level = "debug"
[pbx]
host = "10.0.0.9"
addresses = ["10.0.0.9"]
[sip]
t1_ms = 250
user_agent = "X"
[tcp]
idle_timeout_s = 30
[limits]
max_calls = 10
)toml");
  ASSERT_NE(loaded, nullptr);
  EXPECT_EQ(startupChanges(Config{}.startup, loaded->startup), std::vector<std::string>{});
}

TEST(ConfigRestart, ListsEveryRestartOnlyKeyInSchemaOrder) {
  auto loaded = parseOk(R"toml([general]
workers = 8
[public]
address = "192.0.2.1"
udp_port = 5160
tcp_port = 5161
[pbx_side]
address = "10.0.0.1"
udp_port = 5170
tcp_port = 5171
[limits]
inbox_depth = 4096
max_calls = 7
[management]
address = "10.0.0.2"
port = 9190
[media]
port_min = 30000
port_max = 31000
public_address = "192.0.2.9"
pbx_address = "10.0.0.9"
)toml");
  ASSERT_NE(loaded, nullptr);
  const std::vector<std::string> expected = {
      "general.workers",      "public.address",    "public.udp_port",   "public.tcp_port",
      "pbx_side.address",     "pbx_side.udp_port", "pbx_side.tcp_port", "limits.inbox_depth",
      "management.address",   "management.port",   "media.port_min",    "media.port_max",
      "media.public_address", "media.pbx_address"};
  EXPECT_EQ(startupChanges(Config{}.startup, loaded->startup), expected);
  EXPECT_EQ(startupChanges(loaded->startup, Config{}.startup), expected);
}

TEST(ConfigRestart, SingleChangeAndEquivalentAddressSpellings) {
  Config running;
  Config loaded;
  loaded.startup.management_port = 9181;
  EXPECT_EQ(startupChanges(running.startup, loaded.startup), std::vector<std::string>{"management.port"});

  running.startup.public_side.address = "2001:db8::1";
  loaded.startup.public_side.address = "2001:DB8:0::1";
  loaded.startup.management_port = running.startup.management_port;
  EXPECT_TRUE(startupChanges(running.startup, loaded.startup).empty());
  loaded.startup.public_side.address = "2001:db8::2";
  EXPECT_EQ(startupChanges(running.startup, loaded.startup), std::vector<std::string>{"public.address"});
}

// A reload applies everything but the start-up settings, which keep their running values
// (so Via and Contact keep naming the sockets that are really bound).
TEST(ConfigRestart, ReloadKeepsRunningStartupSettings) {
  Config running;
  Config loaded;
  loaded.startup.public_side.udp_port = 5999;
  loaded.startup.workers = 7;
  loaded.timing.t1_ms = 250;
  loaded.max_calls = 3;
  auto merged = mergeForReload(running, loaded);
  EXPECT_EQ(merged->startup, running.startup);
  EXPECT_EQ(merged->timing.t1_ms, 250u);
  EXPECT_EQ(merged->max_calls, 3u);
}

TEST(ConfigFlood, ValuesAndErrors) {
  auto set = parseOk(
      "[flood]\naction = \"503\"\nban_excess = 0\n[flood.internet]\ninvite_per_s = 1\nburst_s = 10\n"
      "[flood.trunk]\nregister_per_s = 7\n[scanners]\nuser_agents = []\nmax_unanswered = 0\n"
      "[limits]\nmax_cps = 0\n[general]\ndrain_timeout_s = 0\n[[trunks]]\nname = \"t\"\n"
      "addresses = [\"192.0.2.0/24\"]\nhost = \"192.0.2.1\"\nmax_calls = 30\nmax_cps = 3\n");
  ASSERT_NE(set, nullptr);
  EXPECT_TRUE(set->flood.reply_503);
  EXPECT_EQ(set->flood.ban_excess, 0u);
  EXPECT_EQ(set->flood.internet.invite_per_s, 1u);
  EXPECT_EQ(set->flood.internet.register_per_s, 5u);  // the rest of the table keeps its defaults
  EXPECT_EQ(set->flood.internet.burst_s, 10u);
  EXPECT_EQ(set->flood.trunk.register_per_s, 7u);
  EXPECT_EQ(set->flood.trunk.invite_per_s, 10000u);
  EXPECT_TRUE(set->scanners.user_agents.empty());
  EXPECT_EQ(set->max_cps, 0u);
  EXPECT_EQ(set->drain_timeout_s, 0u);
  EXPECT_EQ(set->trunks.front().max_calls, 30u);
  EXPECT_EQ(set->trunks.front().max_cps, 3u);

  expectError("[flood]\naction = \"reject\"\n", 2, "flood.action",
              "must be \"drop\" or \"503\", got \"reject\"");
  expectError("[flood.internet]\ninvite_per_s = 0\n", 2, "flood.internet.invite_per_s",
              "must be between 1 and 100000, got 0");
  expectError("[flood.pbx]\ninvites = 3\n", 2, "flood.pbx.invites", "unknown key");
  expectError("[flood]\noverload_lag_ms = 5\n", 2, "flood.overload_lag_ms",
              "must be between 50 and 10000, got 5");
  expectError("[scanners]\nuser_agents = [\"\"]\n", 2, "scanners.user_agents",
              "entry 1: \"\" must be 1..64 characters");
  expectError("[general]\ndrain_timeout_s = 90000\n", 2, "general.drain_timeout_s",
              "must be between 0 and 86400, got 90000");
}

}  // namespace

namespace {

TEST(ConfigBansAndRegistrar, DefaultsValuesAndRelations) {
  auto defaults = parseOk("");
  EXPECT_EQ(defaults->ban.threshold, 5u);
  EXPECT_EQ(defaults->ban.window_s, 60u);
  EXPECT_EQ(defaults->ban.duration_s, 600u);
  EXPECT_EQ(defaults->registrar.min_expires_s, 60u);
  EXPECT_EQ(defaults->registrar.max_expires_s, 3600u);
  EXPECT_EQ(defaults->registrar.default_expires_s, 600u);
  EXPECT_EQ(defaults->registrar.max_contacts, 4u);
  auto set = parseOk(
      "[ban]\nthreshold = 3\nduration_s = 60\nmax_duration_s = 120\n[registrar]\n"
      "min_expires_s = 30\nmax_expires_s = 300\ndefault_expires_s = 120\nmax_contacts = 1\n");
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->ban.threshold, 3u);
  EXPECT_EQ(set->ban.max_duration_s, 120u);
  EXPECT_EQ(set->registrar.default_expires_s, 120u);
  EXPECT_EQ(set->registrar.max_contacts, 1u);

  expectError("[ban]\nthreshold = 0\n", 2, "ban.threshold", "must be between 1 and 1000, got 0");
  expectError("[ban]\nduration_s = 600\nmax_duration_s = 60\n", 3, "ban.max_duration_s",
              "ban.max_duration_s (60) must be at least ban.duration_s (600)");
  expectError("[registrar]\nmin_expires_s = 600\nmax_expires_s = 60\n", 3, "registrar.max_expires_s",
              "registrar.max_expires_s (60) must be at least registrar.min_expires_s (600)");
  expectError(
      "[registrar]\ndefault_expires_s = 30\n", 2, "registrar.default_expires_s",
      "registrar.default_expires_s (30) must lie between min_expires_s (60) and max_expires_s (3600)");
  expectError("[registrar]\nmax_contacts = 33\n", 2, "registrar.max_contacts",
              "must be between 1 and 32, got 33");
}

}  // namespace

TEST(ConfigMedia, DefaultsValuesAndErrors) {
  Config defaults;
  EXPECT_TRUE(defaults.media.anchor);
  EXPECT_EQ(defaults.startup.media.first, 10000);
  EXPECT_EQ(defaults.startup.media.last, 20000);
  EXPECT_EQ(defaults.media.public_side.srtp, SrtpMode::Optional);
  EXPECT_EQ(defaults.media.public_side.latching, Latching::Nat);
  EXPECT_EQ(defaults.media.pbx_side.srtp, SrtpMode::Off);
  EXPECT_EQ(defaults.media.pbx_side.latching, Latching::Strict);

  auto config = parseOk(R"toml([media]
port_min = 40000
port_max = 40999
timeout_s = 0
max_packet_rate = 400
suites = ["AEAD_AES_128_GCM"]
[media.public]
srtp = "required"
latching = "strict"
[media.pbx]
srtp = "optional"
latching = "nat"
)toml");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->startup.media.first, 40000);
  EXPECT_EQ(config->startup.media.last, 40999);
  EXPECT_EQ(config->media.timeout_s, 0u);
  EXPECT_EQ(config->media.max_packet_rate, 400u);
  EXPECT_EQ(config->media.suites, std::vector<std::string>{"AEAD_AES_128_GCM"});
  EXPECT_EQ(config->media.public_side.srtp, SrtpMode::Required);
  EXPECT_EQ(config->media.public_side.latching, Latching::Strict);
  EXPECT_EQ(config->media.pbx_side.srtp, SrtpMode::Optional);
  EXPECT_EQ(config->media.pbx_side.latching, Latching::Nat);

  expectError("[media]\n[media.public]\nsrtp = \"yes\"\n", 3, "media.public.srtp",
              "must be \"off\", \"optional\" or \"required\", got \"yes\"");
  expectError("[media]\n[media.pbx]\nlatching = \"loose\"\n", 3, "media.pbx.latching",
              "must be \"strict\" or \"nat\", got \"loose\"");
  expectError("[media]\nport_min = 20000\nport_max = 20001\n", 3, "media.port_max",
              "media.port_max (20001) must be at least media.port_min (20000) + 3: two RTP/RTCP pairs");
  expectError(
      "[media]\nsuites = [\"NULL\"]\n", 2, "media.suites",
      "entry 1: \"NULL\" is not a supported SRTP suite (AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, "
      "AEAD_AES_128_GCM, AEAD_AES_256_GCM)");
  expectError("[media]\npbx_address = \"0.0.0.0\"\n", 2, "media.pbx_address",
              "\"0.0.0.0\" is the unspecified address");
  expectError("[public]\naddress = \"0.0.0.0\"\n[media]\ntimeout_s = 5\n", 3, "media.public_address",
              "must be set: the listener address 0.0.0.0 is the wildcard, which SDP cannot name");
  expectError("[media]\nbogus = 1\n", 2, "media.bogus", "unknown key");
}

TEST(ConfigFraud, DefaultsValuesAndErrors) {
  Config defaults;
  EXPECT_TRUE(defaults.pbx.fraud.international);
  EXPECT_TRUE(defaults.trunks.front().fraud.international);
  palisade::config::User user;
  EXPECT_FALSE(user.fraud.international);  // users may not call abroad unless allowed
  EXPECT_EQ(defaults.fraud.dial_plan.country_code, "1");
  EXPECT_EQ(defaults.fraud.dial_plan.international_prefix, "011");
  EXPECT_TRUE(defaults.fraud.high_risk_file.empty());

  auto config = parseOk(R"toml([fraud]
high_risk_file = "ranges.txt"
deny = ["+44"]
allow = ["+4420"]
extension_max_digits = 4
[fraud.dial_plan]
country_code = "44"
national_prefix = "0"
international_prefix = "00"
emergency = ["999", "112"]
national_min = 9
national_max = 10
[[fraud.dial_plans]]
name = "nanp"
country_code = "1"
[pbx]
deny = ["+1900"]
max_calls_per_minute = 30
[[trunks]]
name = "carrier"
addresses = ["127.0.0.1"]
host = "127.0.0.1"
international = false
dial_plan = "nanp"
max_call_duration_s = 3600
[[users]]
name = "2001"
password = "Correct-Horse-Battery-9"
international = true
allow = ["+33"]
max_international_per_hour = 5
)toml");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->fraud.high_risk_file, "ranges.txt");  // relative to the config's folder (none here)
  EXPECT_EQ(config->fraud.deny, std::vector<std::string>{"+44"});
  EXPECT_EQ(config->fraud.allow, std::vector<std::string>{"+4420"});
  EXPECT_EQ(config->fraud.extension_max_digits, 4u);
  EXPECT_EQ(config->fraud.dial_plan.country_code, "44");
  EXPECT_EQ(config->fraud.dial_plan.emergency, (std::vector<std::string>{"999", "112"}));
  EXPECT_EQ(config->fraud.dial_plan.national_min, 9u);
  ASSERT_EQ(config->fraud.dial_plans.size(), 1u);
  EXPECT_EQ(config->fraud.dial_plans[0].name, "nanp");
  EXPECT_EQ(config->fraud.dial_plans[0].international_prefix, "011");  // the defaults fill the rest
  EXPECT_EQ(config->pbx.fraud.deny, std::vector<std::string>{"+1900"});
  EXPECT_EQ(config->pbx.fraud.max_calls_per_minute, 30u);
  EXPECT_FALSE(config->trunks[0].fraud.international);
  EXPECT_EQ(config->trunks[0].fraud.dial_plan, "nanp");
  EXPECT_EQ(config->trunks[0].fraud.max_call_duration_s, 3600u);
  EXPECT_TRUE(config->users[0].fraud.international);
  EXPECT_EQ(config->users[0].fraud.allow, std::vector<std::string>{"+33"});
  EXPECT_EQ(config->users[0].fraud.max_international_per_hour, 5u);

  expectError("[fraud]\ndeny = [\"0044\"]\n", 2, "fraud.deny",
              "entry 1: must be '+' and 1 to 15 digits (an E.164 prefix such as \"+44\"), got \"0044\"");
  expectError("[fraud]\nallow = [\"+44\"]\ndeny = [\"+44\"]\n", 3, "fraud.deny",
              "\"+44\" is also in fraud.allow");
  expectError("[pbx]\ndial_plan = \"de\"\n", 2, "pbx.dial_plan",
              "\"de\" is not the name of a [[fraud.dial_plans]] entry");
  expectError("[fraud]\n[fraud.dial_plan]\nnational_min = 10\nnational_max = 9\n", 4,
              "fraud.dial_plan.national_max", "must be at least national_min (10), got 9");
  expectError("[fraud]\n[fraud.dial_plan]\ncountry_code = \"+1\"\n", 3, "fraud.dial_plan.country_code",
              "must be 1 to 3 digits, got \"+1\"");
  expectError("[fraud]\n[[fraud.dial_plans]]\ncountry_code = \"49\"\n", 2, "fraud.dial_plans[1].name",
              "is required in every [[fraud.dial_plans]] entry");
  expectError("[[users]]\nname = \"2001\"\npassword = \"Correct-Horse-Battery-9\"\ninternational = \"yes\"\n",
              4, "users[1].international", "expected a boolean, got a string");
  expectError("[fraud]\nwebhook_url = \"ftp://x\"\n", 2, "fraud.webhook_url",
              "must be an http:// or https:// URL with a host and no spaces");
  expectError("[fraud]\ncurrency = \"usd\"\n", 2, "fraud.currency",
              "must be a three-letter ISO 4217 code such as \"USD\", got \"usd\"");
  expectError("[pbx]\nmax_spend_24h = -1.0\n", 2, "pbx.max_spend_24h",
              "must be between 0 and 1000000000, got -1");
  expectError("[pbx]\nmax_spend_24h = \"5\"\n", 2, "pbx.max_spend_24h", "expected a number, got a string");
  auto spend = parseOk("[pbx]\nmax_spend_24h = 25.5\n[fraud]\nspike_factor = 8\n");
  ASSERT_NE(spend, nullptr);
  EXPECT_EQ(spend->pbx.fraud.max_spend_24h_micros, 25'500'000);
  EXPECT_EQ(spend->fraud.spike_factor, 8.0);
  expectError("[pbx]\ncalling_hours = [\"Mon-Fri 08:00-18:00\", \"Mon-Fry 08:00-18:00\"]\n", 2,
              "pbx.calling_hours",
              "entry 2 (\"Mon-Fry 08:00-18:00\"): \"Fry\" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)");
  expectError("[pbx]\ncalling_hours = [\"Mon-Fri 08:00-18:00\"]\ncalling_hours_zone = \"Mars/Olympus\"\n", 3,
              "pbx.calling_hours_zone", "time zone \"Mars/Olympus\": no such zone in /usr/share/zoneinfo");
  expectError("[pbx]\ncalling_hours_for = \"some\"\n", 2, "pbx.calling_hours_for",
              "must be \"international\" or \"all\", got \"some\"");
  auto hours = parseOk(
      "[pbx]\ncalling_hours = [\"Mon-Fri 08:00-18:00\"]\ncalling_hours_zone = \"Europe/London\"\n"
      "calling_hours_for = \"all\"\n");
  ASSERT_NE(hours, nullptr);
  EXPECT_EQ(hours->pbx.fraud.calling_hours_zone, "Europe/London");
  EXPECT_TRUE(hours->pbx.fraud.calling_hours_all);
  expectError("[fraud]\nbogus = 1\n", 2, "fraud.bogus", "unknown key");
}
