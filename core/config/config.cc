#include "core/config/config.h"

#include "core/base/calling_hours.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <exception>
#include <map>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/base/log.h"
#include "core/sip/header_policy.h"

namespace palisade::config {

extern const std::string_view kDefaultConfigToml;
extern const std::string_view kWeakPasswords;

namespace {

// A config file is a few kilobytes; the cap keeps `--check-config /dev/zero` from eating memory.
constexpr std::size_t kMaxFileBytes = std::size_t{4} * 1024 * 1024;
constexpr std::size_t kMaxUserAgentChars = 64;
constexpr std::string_view kDefaultSourceName = "<default>";

constexpr std::string_view kTables[] = {
    "general", "public", "pbx_side", "pbx",        "trunks", "auth",     "users", "ban",   "registrar", "sip",
    "headers", "tcp",    "limits",   "management", "flood",  "scanners", "tls",   "media", "fraud"};

// strerror() is not thread-safe; the error category's message() is.
std::string errnoText(int error) { return std::error_code(error, std::generic_category()).message(); }

std::uint32_t lineOf(const toml::source_region& region) { return region.begin.line; }

std::string_view typeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// Echoes a value from the file inside an error message without letting control bytes or a
// megabyte-long string through.
std::string quoted(std::string_view text) {
  constexpr std::size_t kMaxEcho = 64;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kMaxEcho; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (text.size() > kMaxEcho) out += "...";
  out.push_back('"');
  return out;
}

// ---- numeric addresses ----

struct IpAddress {
  int family = AF_INET;
  std::array<unsigned char, 16> bytes{};
};

std::optional<IpAddress> parseIp(std::string_view text) {
  // inet_pton stops at a NUL, and TOML strings may contain one ("\u0000").
  if (text.empty() || text.find('\0') != std::string_view::npos) return std::nullopt;
  const std::string copy(text);
  IpAddress ip;
  if (::inet_pton(AF_INET, copy.c_str(), ip.bytes.data()) == 1) return ip;
  ip.family = AF_INET6;
  if (::inet_pton(AF_INET6, copy.c_str(), ip.bytes.data()) == 1) return ip;
  return std::nullopt;
}

// ::ffff:a.b.c.d reaches the same socket as a.b.c.d.
IpAddress unmapped(const IpAddress& ip) {
  constexpr std::array<unsigned char, 12> kMappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (ip.family != AF_INET6 || !std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), ip.bytes.begin())) {
    return ip;
  }
  IpAddress v4;
  std::copy(ip.bytes.begin() + 12, ip.bytes.end(), v4.bytes.begin());
  return v4;
}

bool isUnspecified(const IpAddress& ip) {
  std::size_t size = ip.family == AF_INET ? 4 : 16;
  return std::all_of(ip.bytes.begin(), ip.bytes.begin() + static_cast<std::ptrdiff_t>(size),
                     [](unsigned char b) { return b == 0; });
}

// Whether two listen addresses would take the same port. A wildcard covers its family, and "::"
// covers IPv4 too unless the socket is v6-only, which the config cannot promise.
bool sameSocket(std::string_view a_text, std::string_view b_text) {
  auto a = parseIp(a_text);
  auto b = parseIp(b_text);
  if (!a || !b) return a_text == b_text;
  IpAddress x = unmapped(*a);
  IpAddress y = unmapped(*b);
  if ((x.family == AF_INET6 && isUnspecified(x)) || (y.family == AF_INET6 && isUnspecified(y))) return true;
  if (x.family != y.family) return false;
  if (isUnspecified(x) || isUnspecified(y)) return true;
  return x.bytes == y.bytes;
}

bool sameAddress(std::string_view a_text, std::string_view b_text) {
  auto a = parseIp(a_text);
  auto b = parseIp(b_text);
  if (!a || !b) return a_text == b_text;
  return a->family == b->family && a->bytes == b->bytes;
}

// ---- reading tables ----

// Collects errors and remembers where every key was written, so that checks across keys can
// point at a line the operator actually wrote.
class Loader {
 public:
  Loader(std::string_view file, std::string_view base_dir) : file_(file), base_dir_(base_dir) {}

  // A file named in the config: relative names are taken from the config file's folder.
  std::string resolve(std::string_view name) const {
    if (name.empty() || name.front() == '/' || base_dir_.empty()) return std::string(name);
    return fmt::format("{}/{}", base_dir_, name);
  }

  void fail(std::uint32_t line, std::string key, std::string message) {
    errors_.push_back(ConfigError{file_, line, std::move(key), std::move(message)});
  }
  bool failed() const { return !errors_.empty(); }

  // The earliest problem in the file, so fixing errors top to bottom converges.
  ConfigError firstError() const {
    const ConfigError* best = &errors_.front();
    for (const auto& e : errors_) {
      bool earlier = e.line != 0 && (best->line == 0 || e.line < best->line);
      if (earlier) best = &e;
    }
    return *best;
  }

  void noteLine(std::string path, std::uint32_t line) { lines_[std::move(path)] = line; }
  bool written(std::string_view path) const { return lines_.find(path) != lines_.end(); }

  // The key's own line, else its table's, else 0 (neither is in the file).
  std::uint32_t lineFor(std::string_view path) const {
    if (auto it = lines_.find(path); it != lines_.end()) return it->second;
    auto dot = path.find('.');
    if (dot == std::string_view::npos) return 0;
    if (auto it = lines_.find(path.substr(0, dot)); it != lines_.end()) return it->second;
    return 0;
  }

 private:
  std::string file_;
  std::string base_dir_;
  std::vector<ConfigError> errors_;
  std::map<std::string, std::uint32_t, std::less<>> lines_;
};

// One [table] of the schema. Each read marks its key as known; finish() reports the rest.
class Section {
 public:
  // One element of an array of tables ([[trunks]]), named `path` ("trunks[2]") in errors.
  Section(Loader& loader, const toml::table* table, std::string path)
      : loader_(loader), name_(std::move(path)), table_(table) {
    if (table_ != nullptr) loader_.noteLine(name_, lineOf(table_->source()));
  }

  Section(Loader& loader, const toml::table& root, std::string_view name) : loader_(loader), name_(name) {
    const toml::node* node = root.get(name);
    if (node == nullptr) return;
    table_ = node->as_table();
    if (table_ == nullptr) {
      loader_.fail(lineOf(node->source()), name_,
                   fmt::format("expected a table, got {}", typeName(node->type())));
      return;
    }
    loader_.noteLine(name_, lineOf(table_->source()));
  }

  template <typename T>
  const toml::node* integer(std::string_view key, std::int64_t min, std::int64_t max, T& out) {
    const toml::node* node = take(key, toml::node_type::integer);
    if (node == nullptr) return nullptr;
    std::int64_t value = node->as_integer()->get();
    if (value < min || value > max) {
      loader_.fail(lineOf(node->source()), path(key),
                   fmt::format("must be between {} and {}, got {}", min, max, value));
      return nullptr;
    }
    out = static_cast<T>(value);
    return node;
  }

  void port(std::string_view key, std::uint16_t& out) { integer(key, 1, 65535, out); }

  // `check` returns an error message for a bad value, or nothing.
  template <typename Check>
  void string(std::string_view key, std::string& out, Check check) {
    const toml::node* node = take(key, toml::node_type::string);
    if (node == nullptr) return;
    const std::string& value = node->as_string()->get();
    if (std::optional<std::string> problem = check(value)) {
      loader_.fail(lineOf(node->source()), path(key), std::move(*problem));
      return;
    }
    out = value;
  }

  template <typename Check>
  void stringList(std::string_view key, std::vector<std::string>& out, Check check,
                  bool allow_empty = false) {
    const toml::node* node = take(key, toml::node_type::array);
    if (node == nullptr) return;
    const toml::array& array = *node->as_array();
    if (array.empty() && !allow_empty) {
      loader_.fail(lineOf(node->source()), path(key), "must list at least one entry");
      return;
    }
    std::vector<std::string> values;
    bool ok = true;
    for (std::size_t i = 0; i < array.size(); ++i) {
      const toml::node& item = array[i];
      const std::uint32_t line = lineOf(item.source());
      if (!item.is_string()) {
        loader_.fail(line, path(key),
                     fmt::format("entry {} must be a string, got {}", i + 1, typeName(item.type())));
        ok = false;
        continue;
      }
      const std::string& value = item.as_string()->get();
      if (std::optional<std::string> problem = check(value)) {
        loader_.fail(line, path(key), fmt::format("entry {}: {}", i + 1, *problem));
        ok = false;
        continue;
      }
      values.push_back(value);
    }
    if (ok) out = std::move(values);
  }

  // A table inside this one ([flood.internet]); null when absent or not a table (reported).
  const toml::table* table(std::string_view key) {
    const toml::node* node = take(key, toml::node_type::table);
    return node != nullptr ? node->as_table() : nullptr;
  }

  // A key read some other way (an array of tables inside this table).
  void skip(std::string_view key) { known_.push_back(key); }

  // An amount of money (an integer or a float, 0 to 1e9) as millionths of the currency.
  void money(std::string_view key, std::int64_t& out_micros) {
    double value = -1;
    floating(key, 0, 1e9, value);
    if (value >= 0) out_micros = static_cast<std::int64_t>(value * 1e6 + 0.5);
  }

  void floating(std::string_view key, double min, double max, double& out) {
    known_.push_back(key);
    if (table_ == nullptr) return;
    const toml::node* node = table_->get(key);
    if (node == nullptr) return;
    loader_.noteLine(path(key), lineOf(node->source()));
    double value = 0;
    if (const auto* integer = node->as_integer()) {
      value = static_cast<double>(integer->get());
    } else if (const auto* floating = node->as_floating_point()) {
      value = floating->get();
    } else {
      loader_.fail(lineOf(node->source()), path(key),
                   fmt::format("expected a number, got {}", typeName(node->type())));
      return;
    }
    if (!(value >= min && value <= max)) {
      loader_.fail(lineOf(node->source()), path(key),
                   fmt::format("must be between {} and {}, got {}", min, max, value));
      return;
    }
    out = value;
  }

  void boolean(std::string_view key, bool& out) {
    const toml::node* node = take(key, toml::node_type::boolean);
    if (node != nullptr) out = node->as_boolean()->get();
  }

  void finish() {
    if (table_ == nullptr) return;
    for (const auto& [key, node] : *table_) {
      if (std::find(known_.begin(), known_.end(), key.str()) != known_.end()) continue;
      loader_.fail(lineOf(key.source()), path(key.str()), "unknown key");
    }
  }

 private:
  // The key's node if it is present and of `type`; a wrong type is reported here.
  const toml::node* take(std::string_view key, toml::node_type type) {
    known_.push_back(key);
    if (table_ == nullptr) return nullptr;
    const toml::node* node = table_->get(key);
    if (node == nullptr) return nullptr;
    loader_.noteLine(path(key), lineOf(node->source()));
    if (node->type() != type) {
      loader_.fail(lineOf(node->source()), path(key),
                   fmt::format("expected {}, got {}", typeName(type), typeName(node->type())));
      return nullptr;
    }
    return node;
  }

  std::string path(std::string_view key) const { return fmt::format("{}.{}", name_, key); }

  Loader& loader_;
  std::string name_;
  const toml::table* table_ = nullptr;
  std::vector<std::string_view> known_;
};

// ---- value checks ----

std::optional<std::string> checkListenAddress(std::string_view text) {
  if (parseIp(text)) return std::nullopt;
  return fmt::format("{} is not a numeric IPv4 or IPv6 address", quoted(text));
}

// Peers are real hosts: the wildcard is neither a destination nor a source.
std::optional<std::string> checkPeerAddress(std::string_view text) {
  auto ip = parseIp(text);
  if (!ip) return fmt::format("{} is not a numeric IPv4 or IPv6 address", quoted(text));
  if (isUnspecified(unmapped(*ip))) return fmt::format("{} is the unspecified address", quoted(text));
  return std::nullopt;
}

std::optional<std::string> checkLogLevel(std::string_view text) {
  base::LogLevel level;
  if (base::parseLogLevel(text, level)) return std::nullopt;
  return fmt::format("must be one of trace, debug, info, warn, error, off; got {}", quoted(text));
}

std::optional<std::string> checkTransport(std::string_view text) {
  if (text == "udp" || text == "tcp" || text == "tls") return std::nullopt;
  return fmt::format("must be \"udp\", \"tcp\" or \"tls\", got {}", quoted(text));
}

TransportKind transportKind(std::string_view text) {
  if (text == "tls") return TransportKind::Tls;
  return text == "tcp" ? TransportKind::Tcp : TransportKind::Udp;
}

// A host name or address a peer's certificate must carry.
std::optional<std::string> checkCertificateName(std::string_view text) {
  bool ok = !text.empty() && text.size() <= 253 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == ':' || c == '*';
  });
  if (ok) return std::nullopt;
  return fmt::format("{} is not a host name or address", quoted(text));
}

std::optional<std::string> checkFileName(std::string_view text) {
  if (!text.empty() && text.find('\0') == std::string_view::npos) return std::nullopt;
  return std::string("must name a file");
}

// Empty means "none" (or "the system's", for the trust store).
std::optional<std::string> checkOptionalFileName(std::string_view text) {
  return text.empty() ? std::nullopt : checkFileName(text);
}

// The value goes verbatim into User-Agent/Server headers (RFC 3261 §20.41); empty sends none.
std::optional<std::string> checkUserAgent(std::string_view text) {
  bool printable = std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
  if (text.size() <= kMaxUserAgentChars && printable) return std::nullopt;
  return fmt::format("must be at most {} printable ASCII characters, got {}", kMaxUserAgentChars,
                     quoted(text));
}

// A source address or a CIDR prefix ("192.0.2.0/24", "2001:db8::/32").
std::optional<std::string> checkSourcePrefix(std::string_view text) {
  std::size_t slash = text.find('/');
  auto ip = parseIp(text.substr(0, slash));
  if (!ip) return fmt::format("{} is not an IPv4 or IPv6 address or CIDR prefix", quoted(text));
  if (slash == std::string_view::npos) {
    if (isUnspecified(unmapped(*ip))) return fmt::format("{} is the unspecified address", quoted(text));
    return std::nullopt;
  }
  std::string_view digits = text.substr(slash + 1);
  unsigned max = ip->family == AF_INET ? 32 : 128;
  unsigned length = 0;
  bool ok = !digits.empty() && digits.size() <= 3 &&
            std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (ok) length = static_cast<unsigned>(std::stoul(std::string(digits)));
  if (!ok || length > max) return fmt::format("{} has a prefix length outside 0..{}", quoted(text), max);
  if (length == 0) return fmt::format("{} would match every source", quoted(text));
  return std::nullopt;
}

// A trunk's name: it appears in logs, metrics and rule ids.
std::optional<std::string> checkTrunkName(std::string_view text) {
  bool token = !text.empty() && text.size() <= 32 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
  if (token) return std::nullopt;
  return fmt::format("must be 1 to 32 letters, digits, '-' or '_', got {}", quoted(text));
}

// A dialled-number prefix: digits, with an optional leading '+'.
std::optional<std::string> checkDialPrefix(std::string_view text) {
  std::string_view digits = text.substr(!text.empty() && text[0] == '+' ? 1 : 0);
  bool ok = !digits.empty() && digits.size() <= 20 &&
            std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (ok) return std::nullopt;
  return fmt::format("must be 1 to 20 digits with an optional leading '+', got {}", quoted(text));
}

// An E.164 prefix in the fraud rules: '+' and 1 to 15 digits (E.164 §6: at most 15 in all).
std::optional<std::string> checkE164Prefix(std::string_view text) {
  bool ok = text.size() >= 2 && text.size() <= 16 && text[0] == '+' &&
            std::all_of(text.begin() + 1, text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (ok) return std::nullopt;
  return fmt::format("must be '+' and 1 to 15 digits (an E.164 prefix such as \"+44\"), got {}",
                     quoted(text));
}

// A webhook URL, checked fully when the alert sender is set up; here the shape an operator
// can see at a glance (the scheme, a host, no whitespace).
std::optional<std::string> checkWebhookUrl(std::string_view text) {
  if (text.empty()) return std::nullopt;
  bool scheme = text.starts_with("http://") || text.starts_with("https://");
  std::string_view rest = scheme ? text.substr(text.find("//") + 2) : std::string_view();
  bool clean = std::none_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) == 0x7f;
  });
  if (text.empty() || (scheme && clean && !rest.empty() && rest[0] != '/' && text.size() <= 2048))
    return std::nullopt;
  return "must be an http:// or https:// URL with a host and no spaces";
}

std::optional<std::string> checkDigits(std::string_view text, std::size_t min, std::size_t max) {
  bool ok = text.size() >= min && text.size() <= max &&
            std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (ok) return std::nullopt;
  return fmt::format("must be {} to {} digits, got {}", min, max, quoted(text));
}

// The fraud keys of a [[trunks]], [[users]] or [pbx] table.
void readFraudRules(Section& s, FraudRules& rules) {
  s.boolean("international", rules.international);
  s.stringList("allow", rules.allow, checkE164Prefix, true);
  s.stringList("deny", rules.deny, checkE164Prefix, true);
  s.string("dial_plan", rules.dial_plan, checkTrunkName);
  s.integer("max_calls_per_minute", 0, 1000000, rules.max_calls_per_minute);
  s.integer("max_international_per_hour", 0, 1000000, rules.max_international_per_hour);
  s.integer("max_call_duration_s", 0, 604800, rules.max_call_duration_s);
  s.money("max_spend_24h", rules.max_spend_24h_micros);
  // Checked in full (windows, zone file) by checkPeerFraud, which knows where they were written.
  s.stringList(
      "calling_hours", rules.calling_hours, [](std::string_view) { return std::optional<std::string>(); },
      true);
  s.string("calling_hours_zone", rules.calling_hours_zone,
           [](std::string_view) { return std::optional<std::string>(); });
  std::string applies;
  s.string("calling_hours_for", applies, [](std::string_view t) -> std::optional<std::string> {
    if (t == "international" || t == "all") return std::nullopt;
    return fmt::format("must be \"international\" or \"all\", got {}", quoted(t));
  });
  if (!applies.empty()) rules.calling_hours_all = applies == "all";
}

void readPeer(Loader& loader, const toml::table& root, std::string_view name, Peer& peer) {
  Section s(loader, root, name);
  s.string("host", peer.host, checkPeerAddress);
  s.port("port", peer.port);
  std::string transport;
  s.string("transport", transport, checkTransport);
  if (!transport.empty()) peer.transport = transportKind(transport);
  s.stringList("addresses", peer.addresses, checkSourcePrefix);
  s.boolean("trust_identity", peer.trust_identity);
  s.string("tls_server_name", peer.tls_server_name, checkCertificateName);
  readFraudRules(s, peer.fraud);
  s.finish();
}

// ---- users and credentials ----

bool isLowerHex(std::string_view text, std::size_t length) {
  return text.size() == length && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string lowered(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

bool isCommonPassword(std::string_view password) {
  std::string wanted = lowered(password);
  std::string_view list = kWeakPasswords;
  while (!list.empty()) {
    std::size_t nl = list.find('\n');
    std::string_view line = list.substr(0, nl);
    list = nl == std::string_view::npos ? std::string_view{} : list.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    if (lowered(line) == wanted) return true;
  }
  return false;
}

// Why a password is weak (RFC 3261 offers no protection against guessing: the password is).
// Never mentions the password itself.
std::optional<std::string> passwordWeakness(std::string_view password, std::string_view user) {
  if (password.size() < 16) return std::string("is shorter than 16 characters");
  bool upper = false, lower = false, digit = false, symbol = false;
  for (char c : password) {
    if (c >= 'A' && c <= 'Z')
      upper = true;
    else if (c >= 'a' && c <= 'z')
      lower = true;
    else if (c >= '0' && c <= '9')
      digit = true;
    else
      symbol = true;
  }
  if (!upper || !lower || !digit || !symbol)
    return std::string("needs upper and lower case letters, digits and symbols");
  if (!user.empty() && lowered(password).find(lowered(user)) != std::string::npos)
    return std::string("contains the user name");
  if (isCommonPassword(password)) return std::string("is a common default password");
  return std::nullopt;
}

std::optional<std::string> checkUserName(std::string_view text) {
  bool ok = !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '+';
  });
  if (ok) return std::nullopt;
  return fmt::format("must be 1 to 64 letters, digits, '-', '_', '.' or '+', got {}", quoted(text));
}

std::optional<std::string> checkNumber(std::string_view text) {
  std::string_view digits = text.substr(!text.empty() && text[0] == '+' ? 1 : 0);
  bool ok = !digits.empty() && digits.size() <= 20 &&
            std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (ok) return std::nullopt;
  return fmt::format("must be 1 to 20 digits with an optional leading '+', got {}", quoted(text));
}

std::optional<std::string> checkRealm(std::string_view text) {
  bool ok = !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
  });
  if (ok) return std::nullopt;
  return fmt::format("must be 1 to 64 printable ASCII characters without quotes or backslashes, got {}",
                     quoted(text));
}

std::optional<std::string> checkAlgorithm(std::string_view text) {
  if (text == "MD5" || text == "SHA-256" || text == "SHA-512-256") return std::nullopt;
  return fmt::format("must be \"SHA-256\", \"SHA-512-256\" or \"MD5\", got {}", quoted(text));
}

// Secrets are read without echoing them in any error.
std::optional<std::string> checkSecret(std::string_view text) {
  if (text.empty() || text.size() > 128) return std::string("must be 1 to 128 characters");
  bool printable = std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
  if (!printable) return std::string("must be printable ASCII");
  return std::nullopt;
}

void readAuth(Loader& loader, const toml::table& root, Config& c) {
  Section s(loader, root, "auth");
  s.string("realm", c.auth.realm, checkRealm);
  std::vector<std::string> algorithms = c.auth.algorithms;
  s.stringList("algorithms", algorithms, checkAlgorithm);
  for (std::size_t i = 0; i < algorithms.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (algorithms[i] == algorithms[j])
        loader.fail(loader.lineFor("auth.algorithms"), "auth.algorithms",
                    fmt::format("{} is listed twice", quoted(algorithms[i])));
    }
  }
  c.auth.algorithms = std::move(algorithms);
  s.integer("nonce_lifetime_s", 30, 3600, c.auth.nonce_lifetime_s);
  s.finish();
}

void readUsers(Loader& loader, const toml::table& root, Config& c) {
  const toml::node* node = root.get("users");
  if (node == nullptr) return;
  const toml::array* array = node->as_array();
  if (array == nullptr || !array->is_array_of_tables()) {
    loader.fail(lineOf(node->source()), "users", "must be written as [[users]] tables");
    return;
  }
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::table* table = (*array)[i].as_table();
    std::string path = fmt::format("users[{}]", i + 1);
    Section s(loader, table, path);
    User user;
    user.line = lineOf(table->source());
    s.string("name", user.name, checkUserName);
    s.string("password", user.password, checkSecret);
    auto hex = [](std::size_t length) {
      return [length](std::string_view text) -> std::optional<std::string> {
        if (isLowerHex(text, length)) return std::nullopt;
        return fmt::format("must be {} lower-case hex digits", length);
      };
    };
    s.string("ha1_md5", user.ha1_md5, hex(32));
    s.string("ha1_sha256", user.ha1_sha256, hex(64));
    s.string("ha1_sha512_256", user.ha1_sha512_256, hex(64));
    s.stringList("sources", user.sources, checkSourcePrefix);
    s.string("number", user.number, checkNumber);
    s.boolean("allow_weak_password", user.allow_weak_password);
    s.integer("max_calls", 0, 10000000, user.max_calls);
    s.integer("max_cps", 0, 100000, user.max_cps);
    s.boolean("require_tls", user.require_tls);
    readFraudRules(s, user.fraud);
    s.finish();
    if (!loader.written(path + ".name"))
      loader.fail(user.line, path + ".name", "is required in every [[users]] entry");
    for (const User& earlier : c.users) {
      if (!user.name.empty() && earlier.name == user.name)
        loader.fail(
            loader.lineFor(path + ".name"), path + ".name",
            fmt::format("{} is already the name of the user at line {}", quoted(user.name), earlier.line));
    }
    // Judged by what the file wrote, so that a bad value is reported as itself.
    bool any_ha1 = loader.written(path + ".ha1_md5") || loader.written(path + ".ha1_sha256") ||
                   loader.written(path + ".ha1_sha512_256");
    bool wrote_password = loader.written(path + ".password");
    if (wrote_password && any_ha1) {
      loader.fail(loader.lineFor(path + ".password"), path + ".password",
                  "give either password or ha1_* values, not both");
    } else if (!wrote_password && !any_ha1 && loader.written(path + ".name")) {
      loader.fail(user.line, path + ".password", "is required (or ha1_md5 / ha1_sha256 / ha1_sha512_256)");
    }
    if (!user.password.empty()) {
      if (auto weakness = passwordWeakness(user.password, user.name)) {
        std::string message = fmt::format("the password {}", *weakness);
        if (user.allow_weak_password) {
          c.warnings.push_back(ConfigError{std::string(c.source_name), loader.lineFor(path + ".password"),
                                           path + ".password", message + " (allowed by allow_weak_password)"}
                                   .toString());
        } else {
          loader.fail(loader.lineFor(path + ".password"), path + ".password",
                      message + " (set allow_weak_password = true to accept it)");
        }
      }
    }
    c.users.push_back(std::move(user));
  }
}

// Users given as HA1 values need one for every algorithm Palisade offers.
void checkUserAlgorithms(Loader& loader, const Config& c) {
  for (std::size_t i = 0; i < c.users.size(); ++i) {
    const User& user = c.users[i];
    if (!user.password.empty()) continue;
    std::string path = fmt::format("users[{}]", i + 1);
    for (const std::string& algorithm : c.auth.algorithms) {
      bool have = (algorithm == "MD5" && !user.ha1_md5.empty()) ||
                  (algorithm == "SHA-256" && !user.ha1_sha256.empty()) ||
                  (algorithm == "SHA-512-256" && !user.ha1_sha512_256.empty());
      if (!have) {
        std::string key = algorithm == "MD5"       ? "ha1_md5"
                          : algorithm == "SHA-256" ? "ha1_sha256"
                                                   : "ha1_sha512_256";
        loader.fail(
            user.line, path + "." + key,
            fmt::format("is needed because auth.algorithms offers {} (or give a password)", algorithm));
      }
    }
  }
}

void readTrunks(Loader& loader, const toml::table& root, Config& c) {
  const toml::node* node = root.get("trunks");
  if (node == nullptr) return;  // the built-in loopback trunk stays
  const toml::array* array = node->as_array();
  if (array == nullptr || !array->is_array_of_tables()) {
    loader.fail(lineOf(node->source()), "trunks", "must be written as [[trunks]] tables");
    return;
  }
  if (array->empty()) {
    loader.fail(lineOf(node->source()), "trunks", "must list at least one trunk");
    return;
  }
  std::vector<Trunk> trunks;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::table* table = (*array)[i].as_table();
    std::string path = fmt::format("trunks[{}]", i + 1);
    Section s(loader, table, path);
    Trunk trunk;
    trunk.line = lineOf(table->source());
    s.string("name", trunk.name, checkTrunkName);
    s.stringList("addresses", trunk.addresses, checkSourcePrefix);
    s.string("host", trunk.host, checkPeerAddress);
    s.port("port", trunk.port);
    std::string transport;
    s.string("transport", transport, checkTransport);
    if (!transport.empty()) trunk.transport = transportKind(transport);
    s.stringList("prefixes", trunk.prefixes, checkDialPrefix, true);
    s.boolean("trust_identity", trunk.trust_identity);
    s.integer("max_calls", 0, 10000000, trunk.max_calls);
    s.integer("max_cps", 0, 100000, trunk.max_cps);
    s.string("tls_server_name", trunk.tls_server_name, checkCertificateName);
    s.string("tls_client_ca", trunk.tls_client_ca, checkFileName);
    trunk.tls_client_ca = loader.resolve(trunk.tls_client_ca);
    s.stringList("tls_client_names", trunk.tls_client_names, checkCertificateName);
    readFraudRules(s, trunk.fraud);
    s.finish();
    if (!trunk.tls_client_ca.empty() && trunk.tls_client_names.empty())
      loader.fail(loader.lineFor(path + ".tls_client_ca"), path + ".tls_client_names",
                  "is required with tls_client_ca: the names a client certificate must carry");
    if (trunk.tls_client_ca.empty() && !trunk.tls_client_names.empty())
      loader.fail(loader.lineFor(path + ".tls_client_names"), path + ".tls_client_ca",
                  "is required with tls_client_names: the CA that issues the client certificates");
    for (const char* key : {"name", "addresses", "host"}) {
      if (!loader.written(path + "." + key))
        loader.fail(trunk.line, path + "." + key, "is required in every [[trunks]] entry");
    }
    for (const Trunk& earlier : trunks) {
      if (!trunk.name.empty() && earlier.name == trunk.name)
        loader.fail(
            loader.lineFor(path + ".name"), path + ".name",
            fmt::format("{} is already the name of trunk at line {}", quoted(trunk.name), earlier.line));
    }
    trunks.push_back(std::move(trunk));
  }
  c.trunks = std::move(trunks);
}

// Header names go verbatim into the allow-lists; a name Palisade can never copy is an error
// here rather than a silent no-op.
std::optional<std::string> checkDirectionHeader(std::string_view text) {
  if (auto problem = sip::headerListProblem(text, false)) return fmt::format("{} {}", quoted(text), *problem);
  return std::nullopt;
}
std::optional<std::string> checkIdentityHeader(std::string_view text) {
  if (auto problem = sip::headerListProblem(text, true)) return fmt::format("{} {}", quoted(text), *problem);
  return std::nullopt;
}

void readListener(Loader& loader, const toml::table& root, std::string_view name, Listener& listener) {
  Section s(loader, root, name);
  s.string("address", listener.address, checkListenAddress);
  s.port("udp_port", listener.udp_port);
  s.port("tcp_port", listener.tcp_port);
  s.integer("tls_port", 0, 65535, listener.tls_port);
  s.finish();
}

std::optional<std::string> checkTlsVersion(std::string_view text) {
  if (text == "1.2" || text == "1.3") return std::nullopt;
  return fmt::format("must be \"1.2\" or \"1.3\" (TLS 1.0 and 1.1 are never offered), got {}", quoted(text));
}

std::optional<std::string> checkCipherList(std::string_view text) {
  bool ok = !text.empty() && text.size() <= 1024 &&
            std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f && c != '"'; });
  if (ok) return std::nullopt;
  return std::string("must be an OpenSSL cipher list (printable, no spaces)");
}

void readTls(Loader& loader, const toml::table& root, Config& c) {
  Section s(loader, root, "tls");
  TlsConfig& t = c.tls;
  if (const toml::node* node = root.get("tls"); node != nullptr && node->is_table()) {
    if (const toml::node* certs = node->as_table()->get("certificates")) {
      const toml::array* array = certs->as_array();
      if (array == nullptr || !array->is_array_of_tables() || array->empty()) {
        loader.fail(lineOf(certs->source()), "tls.certificates",
                    "must be written as one or more [[tls.certificates]] tables");
      } else {
        t.certificates.clear();
        for (std::size_t i = 0; i < array->size(); ++i) {
          const toml::table* table = (*array)[i].as_table();
          std::string path = fmt::format("tls.certificates[{}]", i + 1);
          Section cs(loader, table, path);
          TlsCertificate cert;
          cert.line = lineOf(table->source());
          cs.string("certificate", cert.certificate, checkFileName);
          cs.string("key", cert.key, checkFileName);
          cs.finish();
          for (const char* key : {"certificate", "key"}) {
            if (!loader.written(path + "." + key))
              loader.fail(cert.line, path + "." + key, "is required in every [[tls.certificates]] entry");
          }
          cert.certificate = loader.resolve(cert.certificate);
          cert.key = loader.resolve(cert.key);
          t.certificates.push_back(std::move(cert));
        }
      }
    }
  }
  s.skip("certificates");  // read above
  s.string("min_version", t.min_version, checkTlsVersion);
  s.string("ciphers", t.ciphers, checkCipherList);
  s.string("ciphersuites", t.ciphersuites, checkCipherList);
  s.string("ca_file", t.ca_file, checkOptionalFileName);
  t.ca_file = loader.resolve(t.ca_file);
  s.boolean("verify_server", t.verify_server);
  s.string("client_certificate", t.client_certificate, checkOptionalFileName);
  s.string("client_key", t.client_key, checkOptionalFileName);
  t.client_certificate = loader.resolve(t.client_certificate);
  t.client_key = loader.resolve(t.client_key);
  s.integer("handshake_timeout_s", 1, 60, t.handshake_timeout_s);
  s.integer("max_handshakes", 1, 65535, t.max_handshakes);
  s.integer("max_handshakes_per_ip", 1, 1024, t.max_handshakes_per_ip);
  s.integer("max_connections_per_ip", 1, 65535, t.max_connections_per_ip);
  s.integer("ticket_key_rotation_s", 60, 604800, t.ticket_key_rotation_s);
  s.integer("expiry_warning_days", 0, 365, t.expiry_warning_days);
  s.finish();
  if (t.client_certificate.empty() != t.client_key.empty()) {
    const char* missing = t.client_certificate.empty() ? "tls.client_certificate" : "tls.client_key";
    loader.fail(loader.lineFor("tls"), missing, "tls.client_certificate and tls.client_key go together");
  }
  if (!t.verify_server) {
    c.warnings.push_back(ConfigError{c.source_name, loader.lineFor("tls.verify_server"), "tls.verify_server",
                                     "false: outbound TLS accepts any server certificate (no protection "
                                     "against an attacker in the middle)"}
                             .toString());
  }
}

// TLS needs a certificate wherever it listens, and a listener's TCP ports must differ.
void checkTls(Loader& loader, const Config& c) {
  const StartupSettings& st = c.startup;
  bool listening = st.public_side.tls_port != 0 || st.pbx_side.tls_port != 0;
  if (listening && c.tls.certificates.empty()) {
    const char* key = st.public_side.tls_port != 0 ? "public.tls_port" : "pbx_side.tls_port";
    loader.fail(loader.lineFor(key), key,
                "a TLS listener needs a certificate: add a [[tls.certificates]] entry (or set tls_port = 0)");
  }
  // A TLS leg advertises our TLS port in Via and Contact, where the peer sends what comes next.
  if (c.pbx.transport == TransportKind::Tls && st.pbx_side.tls_port == 0)
    loader.fail(loader.lineFor("pbx.transport"), "pbx.transport",
                "\"tls\" needs a TLS listener on the PBX side: set pbx_side.tls_port");
  for (std::size_t i = 0; i < c.trunks.size(); ++i) {
    const Trunk& trunk = c.trunks[i];
    std::string path = fmt::format("trunks[{}]", i + 1);
    bool tls = trunk.transport == TransportKind::Tls;
    if (tls && st.public_side.tls_port == 0)
      loader.fail(loader.lineFor(path + ".transport"), path + ".transport",
                  "\"tls\" needs a TLS listener on the public side: set public.tls_port");
    if (!trunk.tls_client_ca.empty() && !tls)
      loader.fail(
          loader.lineFor(path + ".tls_client_ca"), path + ".tls_client_ca",
          "mutual TLS needs transport = \"tls\" (its addresses then count as the trunk over TLS only)");
  }
}

std::optional<std::string> checkFloodAction(std::string_view text) {
  if (text == "drop" || text == "503") return std::nullopt;
  return fmt::format("must be \"drop\" or \"503\", got {}", quoted(text));
}

std::optional<std::string> checkAgent(std::string_view text) {
  if (text.empty() || text.size() > 64) return fmt::format("{} must be 1..64 characters", quoted(text));
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return fmt::format("{} must be printable ASCII", quoted(text));
  }
  return std::nullopt;
}

void readFloodRates(Loader& loader, const toml::table* table, const std::string& path, FloodRates& rates) {
  Section s(loader, table, path);
  // Up to 100,000/s: the limits keep microsecond spacing, so higher rates would round up.
  s.integer("invite_per_s", 1, 100000, rates.invite_per_s);
  s.integer("register_per_s", 1, 100000, rates.register_per_s);
  s.integer("other_per_s", 1, 100000, rates.other_per_s);
  s.integer("in_dialog_per_s", 1, 100000, rates.in_dialog_per_s);
  s.integer("burst_s", 1, 60, rates.burst_s);
  s.finish();
}

std::optional<std::string> checkSrtpMode(std::string_view text) {
  if (text == "off" || text == "optional" || text == "required") return std::nullopt;
  return fmt::format("must be \"off\", \"optional\" or \"required\", got {}", quoted(text));
}

std::optional<std::string> checkLatching(std::string_view text) {
  if (text == "strict" || text == "nat") return std::nullopt;
  return fmt::format("must be \"strict\" or \"nat\", got {}", quoted(text));
}

std::optional<std::string> checkSrtpSuite(std::string_view text) {
  for (std::string_view known :
       {"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM", "AEAD_AES_256_GCM"}) {
    if (text == known) return std::nullopt;
  }
  return fmt::format(
      "{} is not a supported SRTP suite (AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, "
      "AEAD_AES_128_GCM, AEAD_AES_256_GCM)",
      quoted(text));
}

// The address written into SDP: a real one, since the peer sends its media there.
std::optional<std::string> checkMediaAddress(std::string_view text) {
  if (text.empty()) return std::nullopt;  // the side's SIP listener address
  return checkPeerAddress(text);
}

void readMediaSide(Loader& loader, const toml::table* table, const std::string& path, MediaSidePolicy& side) {
  Section s(loader, table, path);
  std::string srtp;
  s.string("srtp", srtp, checkSrtpMode);
  if (!srtp.empty()) {
    side.srtp = srtp == "off" ? SrtpMode::Off : srtp == "required" ? SrtpMode::Required : SrtpMode::Optional;
  }
  std::string latching;
  s.string("latching", latching, checkLatching);
  if (!latching.empty()) side.latching = latching == "strict" ? Latching::Strict : Latching::Nat;
  s.finish();
}

void readMedia(Loader& loader, const toml::table& root, Config& c) {
  Section s(loader, root, "media");
  MediaPorts& ports = c.startup.media;
  s.boolean("anchor", c.media.anchor);
  s.integer("port_min", 1024, 65534, ports.first);
  const toml::node* last = s.integer("port_max", 1025, 65535, ports.last);
  if (ports.last < ports.first + 3) {
    loader.fail(
        last != nullptr ? lineOf(last->source()) : loader.lineFor("media.port_min"),
        last != nullptr ? "media.port_max" : "media.port_min",
        fmt::format("media.port_max ({}) must be at least media.port_min ({}) + 3: two RTP/RTCP pairs",
                    ports.last, ports.first));
  }
  s.string("public_address", ports.public_address, checkMediaAddress);
  s.string("pbx_address", ports.pbx_address, checkMediaAddress);
  s.integer("timeout_s", 0, 86400, c.media.timeout_s);
  s.integer("max_packet_rate", 50, 1000000, c.media.max_packet_rate);
  s.stringList("suites", c.media.suites, checkSrtpSuite);
  std::pair<const char*, MediaSidePolicy*> sides[] = {{"public", &c.media.public_side},
                                                      {"pbx", &c.media.pbx_side}};
  for (auto& [name, side] : sides) {
    if (const toml::table* table = s.table(name))
      readMediaSide(loader, table, std::string("media.") + name, *side);
  }
  s.finish();
}

void readDialPlan(Section& s, DialPlanConfig& plan) {
  s.string("country_code", plan.country_code, [](std::string_view t) { return checkDigits(t, 1, 3); });
  s.string("national_prefix", plan.national_prefix, [](std::string_view t) { return checkDigits(t, 0, 4); });
  s.string("international_prefix", plan.international_prefix,
           [](std::string_view t) { return checkDigits(t, 1, 4); });
  s.stringList(
      "emergency", plan.emergency, [](std::string_view t) { return checkDigits(t, 2, 6); }, true);
  s.integer("national_min", 1, 15, plan.national_min);
  s.integer("national_max", 1, 15, plan.national_max);
  s.stringList("foreign", plan.foreign, checkE164Prefix, true);
}

void checkDialPlan(Loader& loader, const DialPlanConfig& plan, const std::string& path) {
  if (plan.national_max < plan.national_min)
    loader.fail(
        loader.lineFor(path + ".national_max"), path + ".national_max",
        fmt::format("must be at least national_min ({}), got {}", plan.national_min, plan.national_max));
  if (plan.international_prefix == plan.national_prefix)
    loader.fail(loader.lineFor(path + ".international_prefix"), path + ".international_prefix",
                "must differ from national_prefix");
}

// The same prefix both allowed and denied in one list pair is a mistake, not a rule.
void checkAllowDeny(Loader& loader, const FraudRules& rules, const std::string& path) {
  for (const std::string& prefix : rules.allow) {
    if (std::find(rules.deny.begin(), rules.deny.end(), prefix) != rules.deny.end())
      loader.fail(loader.lineFor(path + ".deny"), path + ".deny",
                  fmt::format("{} is also in {}.allow", quoted(prefix), path));
  }
}

void readFraud(Loader& loader, const toml::table& root, Config& c) {
  Section s(loader, root, "fraud");
  FraudConfig& f = c.fraud;
  s.string("high_risk_file", f.high_risk_file, checkOptionalFileName);
  f.high_risk_file = loader.resolve(f.high_risk_file);
  FraudRules global;
  s.stringList("allow", f.allow, checkE164Prefix, true);
  s.stringList("deny", f.deny, checkE164Prefix, true);
  global.allow = f.allow;
  global.deny = f.deny;
  checkAllowDeny(loader, global, "fraud");
  s.integer("extension_max_digits", 0, 8, f.extension_max_digits);
  s.string("rate_file", f.rate_file, checkOptionalFileName);
  f.rate_file = loader.resolve(f.rate_file);
  s.string("currency", f.currency, [](std::string_view t) -> std::optional<std::string> {
    bool ok = t.size() == 3 && std::all_of(t.begin(), t.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    if (ok) return std::nullopt;
    return fmt::format("must be a three-letter ISO 4217 code such as \"USD\", got {}", quoted(t));
  });
  s.integer("spend_warning_percent", 1, 100, f.spend_warning_percent);
  s.boolean("end_calls_over_cap", f.end_calls_over_cap);
  s.floating("spike_factor", 1.5, 1000, f.spike_factor);
  s.integer("min_spike_attempts", 1, 100000, f.min_spike_attempts);
  s.integer("sequential_run", 2, 1000, f.sequential_run);
  s.integer("short_call_count", 1, 16, f.short_call_count);
  s.integer("short_call_max_s", 1, 3600, f.short_call_max_s);
  s.integer("short_call_window_s", 60, 86400, f.short_call_window_s);
  s.boolean("block_on_anomaly", f.block_on_anomaly);
  s.string("webhook_url", f.webhook_url, checkWebhookUrl);
  s.integer("webhook_timeout_s", 1, 60, f.webhook_timeout_s);
  s.integer("webhook_retries", 0, 10, f.webhook_retries);
  s.string("webhook_ca_file", f.webhook_ca_file, checkOptionalFileName);
  f.webhook_ca_file = loader.resolve(f.webhook_ca_file);
  s.string("cdr_file", f.cdr_file, checkOptionalFileName);
  f.cdr_file = loader.resolve(f.cdr_file);
  if (const toml::table* table = s.table("dial_plan")) {
    Section plan(loader, table, "fraud.dial_plan");
    readDialPlan(plan, f.dial_plan);
    plan.finish();
    checkDialPlan(loader, f.dial_plan, "fraud.dial_plan");
  }
  s.skip("dial_plans");
  const toml::node* fraud_node = root.get("fraud");
  const toml::table* fraud_table = fraud_node != nullptr ? fraud_node->as_table() : nullptr;
  if (const toml::node* node = fraud_table != nullptr ? fraud_table->get("dial_plans") : nullptr) {
    const toml::array* array = node->as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      loader.fail(lineOf(node->source()), "fraud.dial_plans",
                  "must be written as [[fraud.dial_plans]] tables");
    } else {
      for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::table* table = (*array)[i].as_table();
        std::string path = fmt::format("fraud.dial_plans[{}]", i + 1);
        Section plan_section(loader, table, path);
        DialPlanConfig plan;
        plan.line = lineOf(table->source());
        plan_section.string("name", plan.name, checkTrunkName);
        readDialPlan(plan_section, plan);
        plan_section.finish();
        checkDialPlan(loader, plan, path);
        if (!loader.written(path + ".name"))
          loader.fail(plan.line, path + ".name", "is required in every [[fraud.dial_plans]] entry");
        for (const DialPlanConfig& earlier : f.dial_plans) {
          if (!plan.name.empty() && earlier.name == plan.name)
            loader.fail(loader.lineFor(path + ".name"), path + ".name",
                        fmt::format("{} is already the name of the dial plan at line {}", quoted(plan.name),
                                    earlier.line));
        }
        f.dial_plans.push_back(std::move(plan));
      }
    }
  }
  s.finish();
}

// Every peer's fraud rules: its dial plan exists, no prefix both allowed and denied, its calling
// hours parse and their zone loads.
void checkPeerFraud(Loader& loader, const Config& c) {
  auto check = [&](const FraudRules& rules, const std::string& path) {
    checkAllowDeny(loader, rules, path);
    if (!rules.calling_hours.empty() || loader.written(path + ".calling_hours_zone")) {
      auto hours = base::parseCallingHours(rules.calling_hours, rules.calling_hours_zone);
      if (!hours) {
        bool zone = hours.error().message.starts_with("time zone");
        std::string key = path + (zone ? ".calling_hours_zone" : ".calling_hours");
        loader.fail(loader.lineFor(key), key, hours.error().message);
      }
    }
    if (rules.dial_plan.empty()) return;
    bool known = std::any_of(c.fraud.dial_plans.begin(), c.fraud.dial_plans.end(),
                             [&](const DialPlanConfig& plan) { return plan.name == rules.dial_plan; });
    if (!known)
      loader.fail(loader.lineFor(path + ".dial_plan"), path + ".dial_plan",
                  fmt::format("{} is not the name of a [[fraud.dial_plans]] entry", quoted(rules.dial_plan)));
  };
  check(c.pbx.fraud, "pbx");
  for (std::size_t i = 0; i < c.trunks.size(); ++i)
    check(c.trunks[i].fraud, fmt::format("trunks[{}]", i + 1));
  for (std::size_t i = 0; i < c.users.size(); ++i) check(c.users[i].fraud, fmt::format("users[{}]", i + 1));
}

void readFlood(Loader& loader, const toml::table& root, Config& c) {
  Section s(loader, root, "flood");
  std::string action;
  s.string("action", action, checkFloodAction);
  if (!action.empty()) c.flood.reply_503 = action == "503";
  s.integer("ban_excess", 0, 1000000, c.flood.ban_excess);
  s.integer("ban_window_s", 1, 3600, c.flood.ban_window_s);
  s.integer("overload_lag_ms", 50, 10000, c.flood.overload_lag_ms);
  s.integer("overload_queue_percent", 5, 100, c.flood.overload_queue_percent);
  std::pair<const char*, FloodRates*> classes[] = {
      {"internet", &c.flood.internet}, {"trunk", &c.flood.trunk}, {"pbx", &c.flood.pbx}};
  for (auto& [name, rates] : classes) {
    if (const toml::table* table = s.table(name))
      readFloodRates(loader, table, std::string("flood.") + name, *rates);
  }
  s.finish();
}

void readScanners(Loader& loader, const toml::table& root, Config& c) {
  Section s(loader, root, "scanners");
  s.stringList("user_agents", c.scanners.user_agents, checkAgent, true);
  s.integer("max_unanswered", 0, 64, c.scanners.max_unanswered);
  s.integer("max_errors", 0, 100000, c.scanners.max_errors);
  s.integer("window_s", 1, 86400, c.scanners.window_s);
  s.finish();
}

void readAll(Loader& loader, const toml::table& root, Config& c) {
  for (const auto& [key, node] : root) {
    if (std::find(std::begin(kTables), std::end(kTables), key.str()) != std::end(kTables)) continue;
    if (key.str() == "carrier") {
      loader.fail(lineOf(key.source()), "carrier",
                  "the [carrier] table is now a [[trunks]] entry (name, addresses, host, port, transport, "
                  "prefixes)");
      continue;
    }
    loader.fail(lineOf(key.source()), std::string(key.str()),
                node.is_table() ? fmt::format("unknown table [{}]", key.str())
                                : std::string("unknown key; settings belong in a table such as [general]"));
  }

  {
    Section s(loader, root, "general");
    s.integer("workers", 0, 256, c.startup.workers);
    s.string("log_level", c.log_level, checkLogLevel);
    s.integer("drain_timeout_s", 0, 86400, c.drain_timeout_s);
    s.finish();
  }
  readListener(loader, root, "public", c.startup.public_side);
  readListener(loader, root, "pbx_side", c.startup.pbx_side);
  readMedia(loader, root, c);
  readPeer(loader, root, "pbx", c.pbx);
  readTrunks(loader, root, c);
  readAuth(loader, root, c);
  readUsers(loader, root, c);
  readFraud(loader, root, c);
  checkPeerFraud(loader, c);
  {
    Section s(loader, root, "ban");
    s.integer("threshold", 1, 1000, c.ban.threshold);
    s.integer("window_s", 1, 86400, c.ban.window_s);
    s.integer("duration_s", 1, 604800, c.ban.duration_s);
    const toml::node* max = s.integer("max_duration_s", 1, 31536000, c.ban.max_duration_s);
    if (c.ban.max_duration_s < c.ban.duration_s) {
      loader.fail(max != nullptr ? lineOf(max->source()) : loader.lineFor("ban.duration_s"),
                  max != nullptr ? "ban.max_duration_s" : "ban.duration_s",
                  fmt::format("ban.max_duration_s ({}) must be at least ban.duration_s ({})",
                              c.ban.max_duration_s, c.ban.duration_s));
    }
    s.finish();
  }
  {
    Section s(loader, root, "registrar");
    s.integer("min_expires_s", 1, 86400, c.registrar.min_expires_s);
    const toml::node* max = s.integer("max_expires_s", 1, 604800, c.registrar.max_expires_s);
    const toml::node* fallback = s.integer("default_expires_s", 1, 604800, c.registrar.default_expires_s);
    s.integer("max_contacts", 1, 32, c.registrar.max_contacts);
    const RegistrarConfig& r = c.registrar;
    if (r.max_expires_s < r.min_expires_s) {
      loader.fail(max != nullptr ? lineOf(max->source()) : loader.lineFor("registrar.min_expires_s"),
                  "registrar.max_expires_s",
                  fmt::format("registrar.max_expires_s ({}) must be at least registrar.min_expires_s ({})",
                              r.max_expires_s, r.min_expires_s));
    } else if (r.default_expires_s < r.min_expires_s || r.default_expires_s > r.max_expires_s) {
      loader.fail(
          fallback != nullptr ? lineOf(fallback->source()) : loader.lineFor("registrar.min_expires_s"),
          "registrar.default_expires_s",
          fmt::format("registrar.default_expires_s ({}) must lie between min_expires_s ({}) and "
                      "max_expires_s ({})",
                      r.default_expires_s, r.min_expires_s, r.max_expires_s));
    }
    s.finish();
  }
  {
    Section s(loader, root, "sip");
    s.integer("t1_ms", 50, 10000, c.timing.t1_ms);
    s.integer("t2_ms", 50, 64000, c.timing.t2_ms);
    s.integer("t4_ms", 100, 60000, c.timing.t4_ms);
    s.integer("max_message_bytes", 1024, 1048576, c.limits.max_message_bytes);
    s.integer("max_headers", 8, 1024, c.limits.max_headers);
    s.integer("max_line_bytes", 256, 65535, c.limits.max_line_bytes);
    s.integer("ring_timeout_s", 10, 3600, c.ring_timeout_s);
    s.integer("max_call_duration_s", 60, 604800, c.max_call_duration_s);
    s.string("user_agent", c.user_agent, checkUserAgent);
    s.finish();
  }
  {
    Section s(loader, root, "headers");
    s.stringList("to_pbx", c.headers.to_pbx, checkDirectionHeader, true);
    s.stringList("to_public", c.headers.to_public, checkDirectionHeader, true);
    s.stringList("identity", c.headers.identity, checkIdentityHeader, true);
    s.finish();
  }
  {
    Section s(loader, root, "tcp");
    s.integer("idle_timeout_s", 1, 86400, c.tcp_idle_timeout_s);
    s.integer("head_timeout_s", 1, 300, c.tcp_head_timeout_s);
    s.integer("max_connections", 1, 1048576, c.tcp_max_connections);
    s.integer("max_connections_per_ip", 1, 65535, c.tcp_max_connections_per_ip);
    s.integer("max_send_queue_bytes", 16384, 67108864, c.tcp_max_send_queue_bytes);
    s.finish();
  }
  {
    Section s(loader, root, "limits");
    std::uint32_t depth = c.startup.inbox_depth;
    if (const toml::node* node = s.integer("inbox_depth", 64, 1048576, depth)) {
      // The hand-off ring indexes slots with a mask.
      if ((depth & (depth - 1)) != 0) {
        loader.fail(lineOf(node->source()), "limits.inbox_depth",
                    fmt::format("must be a power of two between 64 and 1048576, got {}", depth));
      } else {
        c.startup.inbox_depth = depth;
      }
    }
    s.integer("max_calls", 1, 10000000, c.max_calls);
    s.integer("max_cps", 0, 100000, c.max_cps);
    s.finish();
  }
  readFlood(loader, root, c);
  readScanners(loader, root, c);
  readTls(loader, root, c);
  {
    Section s(loader, root, "management");
    s.string("address", c.startup.management_address, checkListenAddress);
    s.port("port", c.startup.management_port);
    s.finish();
  }
}

// Which of two related keys to blame: the one the file wrote, preferring `later`.
bool blameLater(const Loader& loader, std::string_view later, std::string_view earlier) {
  return loader.written(later) || !loader.written(earlier);
}

std::string_view defaultNote(const Loader& loader, std::string_view key) {
  return loader.written(key) ? "" : ", the default";
}

void checkTiming(Loader& loader, const Config& c) {
  const std::uint32_t t1 = c.timing.t1_ms;
  const std::uint32_t t2 = c.timing.t2_ms;
  if (t2 >= t1) return;
  if (blameLater(loader, "sip.t2_ms", "sip.t1_ms")) {
    loader.fail(
        loader.lineFor("sip.t2_ms"), "sip.t2_ms",
        fmt::format("must be at least sip.t1_ms ({}{}), got {}", t1, defaultNote(loader, "sip.t1_ms"), t2));
  } else {
    loader.fail(
        loader.lineFor("sip.t1_ms"), "sip.t1_ms",
        fmt::format("must not exceed sip.t2_ms ({}{}), got {}", t2, defaultNote(loader, "sip.t2_ms"), t1));
  }
}

struct Socket {
  std::string_view key;
  std::string_view protocol;  // "udp", "tcp", or "any" for the management port
  const std::string& address;
  std::uint16_t port;
};

// Two listeners on one address and port would be one socket (SO_REUSEPORT would even let both
// bind and split the traffic between them), so the sides could no longer be told apart.
void checkSockets(Loader& loader, const Config& c) {
  const StartupSettings& st = c.startup;
  const Socket sockets[] = {
      {"public.udp_port", "udp", st.public_side.address, st.public_side.udp_port},
      {"public.tcp_port", "tcp", st.public_side.address, st.public_side.tcp_port},
      {"pbx_side.udp_port", "udp", st.pbx_side.address, st.pbx_side.udp_port},
      {"pbx_side.tcp_port", "tcp", st.pbx_side.address, st.pbx_side.tcp_port},
      {"public.tls_port", "tcp", st.public_side.address, st.public_side.tls_port},
      {"pbx_side.tls_port", "tcp", st.pbx_side.address, st.pbx_side.tls_port},
      {"management.port", "any", st.management_address, st.management_port},
  };
  for (std::size_t j = 0; j < std::size(sockets); ++j) {
    for (std::size_t i = 0; i < j; ++i) {
      const Socket& a = sockets[i];
      const Socket& b = sockets[j];
      if (a.port == 0 || b.port == 0) continue;  // a TLS listener that is off
      bool protocols_meet = a.protocol == b.protocol || a.protocol == "any" || b.protocol == "any";
      // A listener's own UDP and TCP ports may share a number; that is two sockets.
      if (!protocols_meet || a.port != b.port || !sameSocket(a.address, b.address)) continue;
      const bool later = blameLater(loader, b.key, a.key);
      const Socket& blamed = later ? b : a;
      const Socket& other = later ? a : b;
      loader.fail(loader.lineFor(blamed.key), std::string(blamed.key),
                  fmt::format("port {} on {} is also {}{} on {}; they would be one socket", blamed.port,
                              blamed.address, other.key, loader.written(other.key) ? "" : " (default)",
                              other.address));
      return;
    }
  }
}

// SDP names the media address, so a side listening on the wildcard needs one of its own.
void checkMediaAddresses(Loader& loader, const Config& c) {
  if (!c.media.anchor) return;
  const std::pair<const Listener*, const std::string*> sides[] = {
      {&c.startup.public_side, &c.startup.media.public_address},
      {&c.startup.pbx_side, &c.startup.media.pbx_address}};
  const char* keys[] = {"media.public_address", "media.pbx_address"};
  for (std::size_t i = 0; i < 2; ++i) {
    if (!sides[i].second->empty()) continue;
    auto ip = parseIp(sides[i].first->address);
    if (!ip || !isUnspecified(unmapped(*ip))) continue;
    loader.fail(loader.lineFor("media"), keys[i],
                fmt::format("must be set: the listener address {} is the wildcard, which SDP cannot name",
                            sides[i].first->address));
    return;
  }
}

ConfigResult parseOrFail(std::string_view toml_text, std::string_view source_name,
                         std::string_view base_dir) {
  toml::table root;
  try {
    root = toml::parse(toml_text, std::string(source_name));
  } catch (const toml::parse_error& e) {
    return ConfigError{std::string(source_name), lineOf(e.source()), "", std::string(e.description())};
  }

  auto config = std::make_shared<Config>();
  config->source_name = source_name;
  Loader loader(source_name, base_dir);
  readAll(loader, root, *config);
  // Cross-key checks only make sense once every key on its own is valid.
  if (!loader.failed()) {
    checkTiming(loader, *config);
    checkSockets(loader, *config);
    checkMediaAddresses(loader, *config);
    checkUserAlgorithms(loader, *config);
    checkTls(loader, *config);
  }
  if (loader.failed()) return loader.firstError();
  return std::shared_ptr<const Config>(std::move(config));
}

}  // namespace

std::string ConfigError::toString() const {
  std::string out = file;
  if (line != 0) out += fmt::format(":{}", line);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

ConfigResult parseConfig(std::string_view toml_text, std::string_view source_name,
                         std::string_view base_dir) {
  try {
    return parseOrFail(toml_text, source_name, base_dir);
  } catch (const std::exception& e) {
    // Out of memory while building the snapshot: still an error the caller can log and survive.
    return ConfigError{std::string(source_name), 0, "", fmt::format("cannot load: {}", e.what())};
  }
}

ConfigResult loadConfigFile(const std::string& path) {
  auto fail = [&path](std::string message) { return ConfigError{path, 0, "", std::move(message)}; };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(fmt::format("cannot open: {}", errnoText(errno)));
  std::string text;
  std::array<char, 16384> buffer;
  int read_errno = 0;
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      read_errno = errno;
      break;
    }
    if (n == 0) break;
    if (text.size() + static_cast<std::size_t>(n) > kMaxFileBytes) {
      ::close(fd);
      return fail(fmt::format("file is larger than {} bytes", kMaxFileBytes));
    }
    text.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (read_errno != 0) return fail(fmt::format("cannot read: {}", errnoText(read_errno)));
  std::size_t slash = path.rfind('/');
  std::string base_dir = slash == std::string::npos ? std::string(".") : path.substr(0, slash);
  if (base_dir.empty()) base_dir = "/";
  return parseConfig(text, path, base_dir);
}

ConfigResult defaultConfig(std::string_view base_dir) {
  return parseConfig(kDefaultConfigToml, kDefaultSourceName, base_dir);
}

std::vector<std::string> startupChanges(const StartupSettings& running, const StartupSettings& loaded) {
  std::vector<std::string> changed;
  auto note = [&changed](bool differs, const char* key) {
    if (differs) changed.emplace_back(key);
  };
  note(running.workers != loaded.workers, "general.workers");
  note(!sameAddress(running.public_side.address, loaded.public_side.address), "public.address");
  note(running.public_side.udp_port != loaded.public_side.udp_port, "public.udp_port");
  note(running.public_side.tcp_port != loaded.public_side.tcp_port, "public.tcp_port");
  note(running.public_side.tls_port != loaded.public_side.tls_port, "public.tls_port");
  note(!sameAddress(running.pbx_side.address, loaded.pbx_side.address), "pbx_side.address");
  note(running.pbx_side.udp_port != loaded.pbx_side.udp_port, "pbx_side.udp_port");
  note(running.pbx_side.tcp_port != loaded.pbx_side.tcp_port, "pbx_side.tcp_port");
  note(running.pbx_side.tls_port != loaded.pbx_side.tls_port, "pbx_side.tls_port");
  note(running.inbox_depth != loaded.inbox_depth, "limits.inbox_depth");
  note(!sameAddress(running.management_address, loaded.management_address), "management.address");
  note(running.management_port != loaded.management_port, "management.port");
  note(running.media.first != loaded.media.first, "media.port_min");
  note(running.media.last != loaded.media.last, "media.port_max");
  note(!sameAddress(running.media.public_address, loaded.media.public_address), "media.public_address");
  note(!sameAddress(running.media.pbx_address, loaded.media.pbx_address), "media.pbx_address");
  // A field added to StartupSettings without a line above is still never applied (see
  // mergeForReload); the warning then names the struct rather than the key.
  if (changed.empty()) {
    StartupSettings respelled = loaded;  // the same address written differently is no change
    respelled.public_side.address = running.public_side.address;
    respelled.pbx_side.address = running.pbx_side.address;
    respelled.management_address = running.management_address;
    respelled.media.public_address = running.media.public_address;
    respelled.media.pbx_address = running.media.pbx_address;
    if (!(respelled == running)) changed.emplace_back("a start-up setting");
  }
  return changed;
}

std::shared_ptr<const Config> mergeForReload(const Config& running, const Config& loaded) {
  auto merged = std::make_shared<Config>(loaded);
  merged->startup = running.startup;
  return merged;
}

}  // namespace palisade::config
