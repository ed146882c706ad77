#pragma once
// Time zones from the system's compiled zone files (TZif, RFC 8536), for policy that depends on a
// caller's local time (calling hours). GCC 12's libstdc++ has no std::chrono time-zone database,
// and TZ with localtime_r is process-global state that concurrent workers cannot share, so
// Palisade reads the files itself: the version 2+ 64-bit data block (transition times and the UTC
// offset after each) and, for times after the last transition, the POSIX TZ string of the footer
// (RFC 8536 §3.3). Leap-second ("right/") files and version 1 files are refused.
//
// Loaded on the control thread (start-up and reload: it reads a file). A TimeZone is immutable,
// so any worker may call offsetAt() concurrently; offsetAt() allocates nothing.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"

namespace palisade::base {

inline constexpr std::string_view kDefaultZoneinfoDir = "/usr/share/zoneinfo";

class TimeZone {
 public:
  // UTC, built in: no file is needed.
  static TimeZone utc();

  // The offset from UTC in effect at `unix_s`, in seconds east of UTC (New York in winter:
  // -18000, Kolkata: 19800): before the first transition, the file's first time type; then a
  // binary search of the transitions; after the last one, the footer's rule (a few calendar
  // computations), or the last transition's offset if the footer is empty. Times beyond the
  // years 1 to 9999 are taken as those years' ends.
  std::int32_t offsetAt(std::int64_t unix_s) const;
  const std::string& name() const { return name_; }
  std::size_t transitionCount() const { return transitions_.size(); }

  // A POSIX TZ string's rule (RFC 8536 §3.3, POSIX.1-2017 §8.3), e.g. "EST5EDT,M3.2.0,M11.1.0".
  struct RuleDate {
    enum class Kind : std::uint8_t { kJulian, kZeroBased, kMonthWeekDay };
    Kind kind = Kind::kMonthWeekDay;
    int day = 0;            // Jn: 1..365 (29 February never counted); n: 0..365; Mm.w.d: d 0..6 (Sunday 0)
    int month = 0;          // Mm.w.d: 1..12
    int week = 0;           // Mm.w.d: 1..5, 5 = the last
    std::int32_t time = 0;  // seconds after local midnight, -167 h..167 h (RFC 8536 §3.3.1)
  };
  struct Rule {
    std::int32_t std_offset = 0;  // seconds east of UTC (the string says west: "EST5" is -18000)
    bool has_dst = false;
    std::int32_t dst_offset = 0;
    RuleDate start;  // standard → daylight, in standard local time
    RuleDate end;    // daylight → standard, in daylight local time
  };

 private:
  friend base::Result<TimeZone> parseTimeZone(std::string_view name, std::string_view tzif);
  std::int32_t ruleOffsetAt(std::int64_t unix_s) const;

  std::string name_;
  std::vector<std::int64_t> transitions_;  // strictly ascending Unix times
  std::vector<std::int32_t> offsets_;      // offsets_[i] applies from transitions_[i] on
  std::int32_t first_offset_ = 0;          // before the first transition (time type 0)
  std::optional<Rule> rule_;               // after the last transition: the footer, if not empty
};

// Reads ZONEINFO_DIR/NAME. NAME is an IANA zone name ("Europe/London"): letters, digits, '_',
// '+', '-' and '/' only (so no "." or ".."), relative, no empty part, at most 128 characters. "UTC"
// is built in and works without the file. Files over 256 KiB are refused. Errors name the zone:
// `time zone "Mars/Olympus": no such zone in /usr/share/zoneinfo`.
base::Result<TimeZone> loadTimeZone(std::string_view name,
                                    std::string_view zoneinfo_dir = kDefaultZoneinfoDir);

// Parses the bytes of a TZif file (version 2 or later); `name` is kept and used in errors. Every
// count is checked against the size of `tzif`: a corrupt or truncated file gives an error.
base::Result<TimeZone> parseTimeZone(std::string_view name, std::string_view tzif);

}  // namespace palisade::base
