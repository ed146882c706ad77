#pragma once
// Calling hours (toll fraud, issue 10 item 4): the weekly windows of local time, in a user's or
// trunk's time zone, inside which it may call. Outside them the fraud stage refuses
// international (or all) calls; which of the two is the caller's configuration, not this class's.
//
// Each window is one string, DAYS START-END:
//
//   "Mon-Fri 08:00-18:00"   Monday to Friday from 08:00 up to, not including, 18:00
//   "Sat 09:00-13:00"       one day
//   "Sat,Sun 10:00-12:00"   a comma-separated list of days and day ranges ("Mon,Wed-Fri")
//   "Fri-Mon 09:00-17:00"   a range may wrap past Sunday: Friday, Saturday, Sunday and Monday
//   "Mon-Sun 00:00-24:00"   all day, every day: 24:00 is the end of the day
//   "Mon-Fri 22:00-06:00"   an END before START crosses midnight: from 22:00 on each listed day
//                           until 06:00 the day after (Friday's window ends Saturday 06:00,
//                           Sunday's ends Monday 06:00)
//
// Days are Mon Tue Wed Thu Fri Sat Sun (any case); times are HH:MM on the 24-hour clock, a start
// from 00:00 to 23:59 and an end from 00:00 to 24:00 ("22:00-00:00" and "22:00-24:00" both end
// at midnight); a window that starts where it ends is refused (write 00:00-24:00 for a whole day). A list of
// windows is their union; an empty list is refused. Spaces or tabs separate DAYS from the times. Local time
// is the zone's wall clock with its daylight saving time: "Sun 01:00-04:00" lasts two hours on a
// spring-forward night and four on a fall-back night. Resolution: one minute.
//
// Parsed on the control thread (start-up, reload: loading the zone reads a file); immutable
// afterwards, so any worker may call open() concurrently.
#include <bitset>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"
#include "core/base/time_zone.h"

namespace palisade::base {

// Limits on what a config may hold.
constexpr std::size_t kMaxCallingWindows = 64;
constexpr std::size_t kMaxCallingWindowLength = 128;

class CallingHours {
 public:
  static constexpr int kMinutesPerWeek = 7 * 24 * 60;

  // Whether the zone's local time at `unix_ms` lies inside a window. One binary search over the
  // zone's transitions (or a few calendar computations past the last one) and a bit test: no
  // allocation, no lock, no system call.
  bool open(std::int64_t unix_ms) const;
  const TimeZone& zone() const { return *zone_; }

 private:
  friend base::Result<CallingHours> parseCallingHours(const std::vector<std::string>& windows,
                                                      std::shared_ptr<const TimeZone> zone);
  // Shared: many users and trunks of one snapshot may name the same zone.
  std::shared_ptr<const TimeZone> zone_;
  std::bitset<kMinutesPerWeek> minutes_;  // bit i: minute i of the local week from Monday 00:00
};

// Loads `zone` (loadTimeZone) and parses `windows`. Errors name the entry, counted from 1:
// `entry 2 ("Mon-Fry 08:00-18:00"): "Fry" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)`;
// a zone that cannot be loaded gives loadTimeZone's error.
base::Result<CallingHours> parseCallingHours(const std::vector<std::string>& windows, std::string_view zone,
                                             std::string_view zoneinfo_dir = kDefaultZoneinfoDir);
// The same with a zone already loaded, for a config loader that loads each zone name once.
base::Result<CallingHours> parseCallingHours(const std::vector<std::string>& windows,
                                             std::shared_ptr<const TimeZone> zone);

}  // namespace palisade::base
