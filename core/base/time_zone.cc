#include "core/base/time_zone.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>

#include <fmt/format.h>

namespace palisade::base {

namespace {

namespace chr = std::chrono;

constexpr std::size_t kMaxFileBytes = std::size_t{256} * 1024;  // real zone files are under 4 KiB
constexpr std::size_t kMaxNameLength = 128;
constexpr std::size_t kMaxFooterLength = 256;
constexpr std::size_t kHeaderBytes = 44;
// RFC 8536 §3.2: offsets should lie in -25:59:59..+25:59:59 (-89999..93599 is what it allows).
constexpr std::int32_t kMinOffset = -89999;
constexpr std::int32_t kMaxOffset = 93599;
// offsetAt() clamps to the years 1..9999, which std::chrono's calendar holds with room to spare.
constexpr std::int64_t kMinUnix = -62135596800;  // 0001-01-01T00:00:00Z
constexpr std::int64_t kMaxUnix = 253402300799;  // 9999-12-31T23:59:59Z
constexpr std::int64_t kSecondsPerDay = 86400;

std::int64_t daysFromCivil(int year, unsigned month, unsigned day) {
  return chr::sys_days{chr::year{year} / chr::month{month} / chr::day{day}}.time_since_epoch().count();
}

int yearOf(std::int64_t unix_s) {
  chr::sys_days day = chr::floor<chr::days>(chr::sys_seconds{chr::seconds{unix_s}});
  return static_cast<int>(chr::year_month_day{day}.year());
}

// The local date a rule names in `year`, as days since 1970-01-01.
std::int64_t ruleDay(const TimeZone::RuleDate& date, int year) {
  using Kind = TimeZone::RuleDate::Kind;
  switch (date.kind) {
    case Kind::kJulian: {
      // Jn counts 1..365 and never 29 February: J60 is always 1 March.
      bool skip_leap_day = chr::year{year}.is_leap() && date.day >= 60;
      return daysFromCivil(year, 1, 1) + date.day - 1 + (skip_leap_day ? 1 : 0);
    }
    case Kind::kZeroBased:
      return daysFromCivil(year, 1, 1) + date.day;
    case Kind::kMonthWeekDay:
      break;
  }
  const auto month = static_cast<unsigned>(date.month);
  std::int64_t first = daysFromCivil(year, month, 1);
  auto first_weekday = static_cast<int>(chr::weekday{chr::sys_days{chr::days{first}}}.c_encoding());
  std::int64_t day = first + (date.day - first_weekday + 7) % 7 + std::int64_t{date.week - 1} * 7;
  unsigned length = static_cast<unsigned>(
      chr::year_month_day_last{chr::year{year}, chr::month_day_last{chr::month{month}}}.day());
  while (day >= first + length) day -= 7;  // week 5: the last such day of the month
  return day;
}

// A POSIX TZ string, as in a TZif footer (RFC 8536 §3.3):
//   std offset [dst [offset] [,start[/time],end[/time]]]
class PosixParser {
 public:
  explicit PosixParser(std::string_view text) : text_(text) {}

  // The error, or nullopt with `rule` filled in.
  std::optional<std::string> parse(TimeZone::Rule& rule) {
    if (!name()) return "the standard time's name is missing or malformed";
    std::int32_t west = 0;
    if (!hms(24, west)) return "the standard time's offset is missing or malformed";
    rule.std_offset = -west;
    rule.dst_offset = rule.std_offset;
    if (done()) return std::nullopt;
    if (!name()) return "the daylight time's name is malformed";
    rule.has_dst = true;
    rule.dst_offset = rule.std_offset + 3600;
    if (!done() && text_[pos_] != ',') {
      if (!hms(24, west)) return "the daylight time's offset is malformed";
      rule.dst_offset = -west;
    }
    if (done()) {
      // No rule: the US rules since 2007, as the reference implementation assumes.
      rule.start = {TimeZone::RuleDate::Kind::kMonthWeekDay, 0, 3, 2, 7200};
      rule.end = {TimeZone::RuleDate::Kind::kMonthWeekDay, 0, 11, 1, 7200};
      return std::nullopt;
    }
    if (!eat(',') || !date(rule.start)) return "the daylight time's start is malformed";
    if (!eat(',') || !date(rule.end)) return "the daylight time's end is malformed";
    if (!done()) return "characters follow the daylight time's end";
    return std::nullopt;
  }

 private:
  bool done() const { return pos_ == text_.size(); }
  bool eat(char c) {
    if (done() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  static bool isAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
  static bool isDigit(char c) { return c >= '0' && c <= '9'; }

  // "EST" or "<+0530>"; at least three characters (POSIX).
  bool name() {
    std::size_t start = pos_;
    if (eat('<')) {
      while (!done() &&
             (isAlpha(text_[pos_]) || isDigit(text_[pos_]) || text_[pos_] == '+' || text_[pos_] == '-')) {
        ++pos_;
      }
      std::size_t length = pos_ - start - 1;
      return eat('>') && length >= 3;
    }
    while (!done() && isAlpha(text_[pos_])) ++pos_;
    return pos_ - start >= 3;
  }

  // One to three digits within [min, max].
  bool number(int min, int max, int& out) {
    std::size_t start = pos_;
    out = 0;
    while (!done() && isDigit(text_[pos_]) && pos_ - start < 3) out = out * 10 + (text_[pos_++] - '0');
    if (pos_ == start || (!done() && isDigit(text_[pos_]))) return false;
    return out >= min && out <= max;
  }

  // [+|-]hh[:mm[:ss]] in seconds.
  bool hms(int max_hours, std::int32_t& out) {
    int sign = 1;
    if (eat('-')) {
      sign = -1;
    } else {
      eat('+');
    }
    int hours = 0;
    int minutes = 0;
    int seconds = 0;
    if (!number(0, max_hours, hours)) return false;
    if (eat(':')) {
      if (!number(0, 59, minutes)) return false;
      if (eat(':') && !number(0, 59, seconds)) return false;
    }
    out = sign * (hours * 3600 + minutes * 60 + seconds);
    return true;
  }

  // Jn, n or Mm.w.d, then an optional /time (RFC 8536 §3.3.1 allows -167..167 hours).
  bool date(TimeZone::RuleDate& out) {
    using Kind = TimeZone::RuleDate::Kind;
    out = {};
    if (eat('J')) {
      out.kind = Kind::kJulian;
      if (!number(1, 365, out.day)) return false;
    } else if (eat('M')) {
      out.kind = Kind::kMonthWeekDay;
      if (!number(1, 12, out.month) || !eat('.') || !number(1, 5, out.week) || !eat('.') ||
          !number(0, 6, out.day)) {
        return false;
      }
    } else {
      out.kind = Kind::kZeroBased;
      if (!number(0, 365, out.day)) return false;
    }
    out.time = 7200;
    if (eat('/')) return hms(167, out.time);
    return true;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// Big-endian reads; callers check the length first.
std::uint32_t readU32(const char* p) {
  auto byte = [p](int i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])); };
  return byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
}
std::int64_t readI64(const char* p) {
  std::uint64_t high = readU32(p);
  std::uint64_t low = readU32(p + 4);
  return static_cast<std::int64_t>(high << 32 | low);
}

struct Header {
  char version = 0;
  std::uint64_t isut = 0, isstd = 0, leap = 0, time = 0, type = 0, chars = 0;
};

std::optional<std::string> readHeader(std::string_view data, std::size_t pos, Header& header) {
  if (data.size() - pos < kHeaderBytes) {
    return fmt::format("truncated: a header needs {} bytes at offset {}, {} are left", kHeaderBytes, pos,
                       data.size() - pos);
  }
  const char* p = data.data() + pos;
  if (std::string_view(p, 4) != "TZif") {
    return fmt::format("no \"TZif\" magic at offset {}: not a zone file", pos);
  }
  header.version = p[4];
  p += 20;
  header.isut = readU32(p);
  header.isstd = readU32(p + 4);
  header.leap = readU32(p + 8);
  header.time = readU32(p + 12);
  header.type = readU32(p + 16);
  header.chars = readU32(p + 20);
  return std::nullopt;
}

// The size of a data block; `time_bytes` is 4 in version 1's block, 8 in version 2's.
std::uint64_t blockBytes(const Header& h, std::uint64_t time_bytes) {
  // Each count is at most 2^32 - 1, so no sum here comes near 2^64.
  return h.time * (time_bytes + 1) + h.type * 6 + h.chars + h.leap * (time_bytes + 4) + h.isstd + h.isut;
}

std::optional<std::string> validateName(std::string_view name) {
  if (name.empty()) return "the name is empty";
  if (name.size() > kMaxNameLength)
    return fmt::format("the name is longer than {} characters", kMaxNameLength);
  if (name.front() == '/') return "the name must not be an absolute path";
  if (name.find("..") != std::string_view::npos) return "the name must not hold \"..\"";
  for (char c : name) {
    bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                   c == '+' || c == '-' || c == '/';
    if (!allowed) return "the name may hold only letters, digits, '_', '+', '-' and '/'";
  }
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = std::min(name.find('/', start), name.size());
    std::string_view part = name.substr(start, end - start);
    if (part.empty()) return "the name has an empty part";
    start = end + 1;
  }
  return std::nullopt;
}

base::Error zoneError(std::string_view name, std::string_view what) {
  return base::Error{fmt::format("time zone {:?}: {}", std::string(name), what)};
}

}  // namespace

TimeZone TimeZone::utc() {
  TimeZone zone;
  zone.name_ = "UTC";
  return zone;
}

std::int32_t TimeZone::offsetAt(std::int64_t unix_s) const {
  unix_s = std::clamp(unix_s, kMinUnix, kMaxUnix);
  if (transitions_.empty()) return rule_ ? ruleOffsetAt(unix_s) : first_offset_;
  if (unix_s < transitions_.front()) return first_offset_;
  if (unix_s > transitions_.back() && rule_) return ruleOffsetAt(unix_s);
  auto after = std::upper_bound(transitions_.begin(), transitions_.end(), unix_s);
  return offsets_[static_cast<std::size_t>(after - transitions_.begin() - 1)];
}

std::int32_t TimeZone::ruleOffsetAt(std::int64_t unix_s) const {
  const Rule& rule = *rule_;
  if (!rule.has_dst) return rule.std_offset;
  // The latest of the rule's transitions at or before `unix_s`, looking one year either side,
  // since a rule time may be negative or past 24:00 (RFC 8536 §3.3.1). At a tie the later one in
  // the year's order wins: "0/0,J365/25" is daylight time all year.
  int year = yearOf(unix_s + rule.std_offset);
  bool found = false;
  bool dst = false;
  std::int64_t latest = 0;
  bool start_last_first_year = false;  // whether the start is the later transition of year - 1
  auto consider = [&](std::int64_t when, bool to_dst) {
    if (when <= unix_s && (!found || when >= latest)) {
      found = true;
      latest = when;
      dst = to_dst;
    }
  };
  for (int y = year - 1; y <= year + 1; ++y) {
    std::int64_t start = ruleDay(rule.start, y) * kSecondsPerDay + rule.start.time - rule.std_offset;
    std::int64_t end = ruleDay(rule.end, y) * kSecondsPerDay + rule.end.time - rule.dst_offset;
    bool start_last = start > end;
    if (y == year - 1) start_last_first_year = start_last;
    if (start_last) {
      consider(end, false);
      consider(start, true);
    } else {
      consider(start, true);
      consider(end, false);
    }
  }
  // Before all of last year's transitions: as after the previous year's later one.
  if (!found) dst = start_last_first_year;
  return dst ? rule.dst_offset : rule.std_offset;
}

base::Result<TimeZone> parseTimeZone(std::string_view name, std::string_view tzif) {
  if (tzif.size() > kMaxFileBytes) return zoneError(name, "the zone file is larger than 256 KiB");
  Header v1;
  if (auto error = readHeader(tzif, 0, v1)) return zoneError(name, *error);
  if (v1.version < '2') {
    return zoneError(name, "a version 1 zone file (version 2 or later is needed for 64-bit times)");
  }
  std::uint64_t v1_bytes = blockBytes(v1, 4);
  if (v1_bytes > tzif.size() - kHeaderBytes) {
    return zoneError(name, fmt::format("truncated: the version 1 data needs {} bytes, {} are left", v1_bytes,
                                       tzif.size() - kHeaderBytes));
  }
  std::size_t pos = kHeaderBytes + static_cast<std::size_t>(v1_bytes);
  Header h;
  if (auto error = readHeader(tzif, pos, h)) return zoneError(name, *error);
  pos += kHeaderBytes;
  std::uint64_t bytes = blockBytes(h, 8);
  if (bytes > tzif.size() - pos) {
    return zoneError(name, fmt::format("truncated: the 64-bit data needs {} bytes, {} are left", bytes,
                                       tzif.size() - pos));
  }
  if (h.type == 0) return zoneError(name, "no local time types");
  if (h.leap != 0) return zoneError(name, "leap-second zones (the \"right/\" files) are not supported");
  if ((h.isstd != 0 && h.isstd != h.type) || (h.isut != 0 && h.isut != h.type)) {
    return zoneError(name, "the standard/wall and UT/local indicators do not match the number of time types");
  }
  const char* times = tzif.data() + pos;
  const char* indices = times + h.time * 8;
  const char* types = indices + h.time;

  std::vector<std::int32_t> type_offsets(static_cast<std::size_t>(h.type));
  for (std::size_t i = 0; i < type_offsets.size(); ++i) {
    auto offset = static_cast<std::int32_t>(readU32(types + i * 6));
    if (offset < kMinOffset || offset > kMaxOffset) {
      return zoneError(name, fmt::format("time type {} has an offset of {} s, beyond ±26 h", i, offset));
    }
    type_offsets[i] = offset;
  }

  TimeZone zone;
  zone.name_ = std::string(name);
  zone.first_offset_ = type_offsets[0];
  zone.transitions_.reserve(static_cast<std::size_t>(h.time));
  zone.offsets_.reserve(static_cast<std::size_t>(h.time));
  for (std::size_t i = 0; i < h.time; ++i) {
    std::int64_t when = readI64(times + i * 8);
    auto type = static_cast<unsigned char>(indices[i]);
    if (type >= h.type) {
      return zoneError(name, fmt::format("transition {} names time type {} of {}", i, type, h.type));
    }
    if (i > 0 && when <= zone.transitions_.back()) {
      return zoneError(name, fmt::format("transition {} is not later than the one before", i));
    }
    zone.transitions_.push_back(when);
    zone.offsets_.push_back(type_offsets[type]);
  }

  // The footer: a POSIX TZ string between two newlines, for times after the last transition.
  pos += static_cast<std::size_t>(bytes);
  if (pos == tzif.size() || tzif[pos] != '\n') return zoneError(name, "the footer (a TZ string) is missing");
  std::size_t end = tzif.find('\n', pos + 1);
  if (end == std::string_view::npos) return zoneError(name, "the footer (a TZ string) is not terminated");
  std::string_view footer = tzif.substr(pos + 1, end - pos - 1);
  if (footer.size() > kMaxFooterLength) {
    return zoneError(name, fmt::format("the footer is longer than {} characters", kMaxFooterLength));
  }
  if (!footer.empty()) {
    TimeZone::Rule rule;
    if (auto error = PosixParser(footer).parse(rule)) {
      return zoneError(name, fmt::format("the footer {:?}: {}", std::string(footer), *error));
    }
    for (std::int32_t offset : {rule.std_offset, rule.dst_offset}) {
      if (offset < kMinOffset || offset > kMaxOffset) {
        return zoneError(name,
                         fmt::format("the footer {:?} has an offset beyond ±26 h", std::string(footer)));
      }
    }
    zone.rule_ = rule;
  }
  return zone;
}

base::Result<TimeZone> loadTimeZone(std::string_view name, std::string_view zoneinfo_dir) {
  if (auto error = validateName(name)) return zoneError(name, *error);
  if (name == "UTC") return TimeZone::utc();
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(fs::path(zoneinfo_dir), ec)) {
    return zoneError(name, fmt::format("{} is not a directory (is tzdata installed?)", zoneinfo_dir));
  }
  fs::path path = fs::path(zoneinfo_dir) / fs::path(name);
  fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return zoneError(name, fmt::format("no such zone in {}", zoneinfo_dir));
  // Not only for directories ("America"): opening a FIFO would block the control thread.
  if (!fs::is_regular_file(status))
    return zoneError(name, fmt::format("{} is not a zone file", path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in) return zoneError(name, fmt::format("{} cannot be read", path.string()));
  std::string data(kMaxFileBytes + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<std::size_t>(in.gcount()));
  return parseTimeZone(name, data);
}

}  // namespace palisade::base
