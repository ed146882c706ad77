#include "core/base/calling_hours.h"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include <fmt/format.h>

namespace palisade::base {

namespace {

constexpr int kMinutesPerDay = 24 * 60;
constexpr std::array<std::string_view, 7> kDays = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

bool isBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && isBlank(s.back())) s.remove_suffix(1);
  return s;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// 0 for Monday .. 6 for Sunday, -1 for anything else.
int dayIndex(std::string_view name) {
  if (name.size() != 3) return -1;
  for (std::size_t i = 0; i < kDays.size(); ++i) {
    if (lower(name[0]) == kDays[i][0] && lower(name[1]) == kDays[i][1] && lower(name[2]) == kDays[i][2]) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

std::string notADay(std::string_view name) {
  return fmt::format("{:?} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)", std::string(name));
}

// "Mon-Fri,Sun" → the days it names.
std::optional<std::string> parseDays(std::string_view field, std::array<bool, 7>& days) {
  days.fill(false);
  std::size_t start = 0;
  while (start <= field.size()) {
    std::size_t end = std::min(field.find(',', start), field.size());
    std::string_view item = field.substr(start, end - start);
    start = end + 1;
    if (item.empty()) return fmt::format("the day list {:?} has an empty item", std::string(field));
    std::size_t dash = item.find('-');
    std::string_view first_name = item.substr(0, dash);
    int first = dayIndex(first_name);
    if (first < 0) return notADay(first_name);
    int last = first;
    if (dash != std::string_view::npos) {
      std::string_view last_name = item.substr(dash + 1);
      last = dayIndex(last_name);
      if (last < 0) return notADay(last_name);
    }
    // A range may wrap past Sunday: Fri-Mon is Fri, Sat, Sun, Mon.
    for (int d = first;; d = (d + 1) % 7) {
      days[static_cast<std::size_t>(d)] = true;
      if (d == last) break;
    }
  }
  return std::nullopt;
}

// "08:00" → minutes after midnight, 0..1440.
std::optional<int> parseClock(std::string_view text) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (text.size() != 5 || !digit(text[0]) || !digit(text[1]) || text[2] != ':' || !digit(text[3]) ||
      !digit(text[4])) {
    return std::nullopt;
  }
  int hours = (text[0] - '0') * 10 + (text[1] - '0');
  int minutes = (text[3] - '0') * 10 + (text[4] - '0');
  if (minutes > 59 || hours > 24 || (hours == 24 && minutes != 0)) return std::nullopt;
  return hours * 60 + minutes;
}

std::string notAClock(std::string_view text) {
  return fmt::format("{:?} is not a time HH:MM from 00:00 to 24:00", std::string(text));
}

std::optional<std::string> parseWindow(std::string_view entry,
                                       std::bitset<CallingHours::kMinutesPerWeek>& minutes) {
  entry = trim(entry);
  std::size_t blank = 0;
  while (blank < entry.size() && !isBlank(entry[blank])) ++blank;
  std::string_view day_field = entry.substr(0, blank);
  std::string_view time_field = trim(entry.substr(blank));
  bool one_blank_run = std::none_of(time_field.begin(), time_field.end(), isBlank);
  if (day_field.empty() || time_field.empty() || !one_blank_run) {
    return "expected DAYS HH:MM-HH:MM, as in \"Mon-Fri 08:00-18:00\"";
  }
  std::array<bool, 7> days{};
  if (auto error = parseDays(day_field, days)) return error;

  std::size_t dash = time_field.find('-');
  if (dash == std::string_view::npos) {
    return fmt::format("{:?} is not a time range HH:MM-HH:MM", std::string(time_field));
  }
  std::string_view start_text = time_field.substr(0, dash);
  std::string_view end_text = time_field.substr(dash + 1);
  std::optional<int> start = parseClock(start_text);
  if (!start) return notAClock(start_text);
  std::optional<int> end = parseClock(end_text);
  if (!end) return notAClock(end_text);
  if (*start == kMinutesPerDay) return "a window cannot start at 24:00 (start at 00:00 of the next day)";
  if (*start == *end) {
    return fmt::format("the window starts and ends at {}: write 00:00-24:00 for a whole day",
                       std::string(start_text));
  }

  // Minutes [from, to) of day `d` (0 = Monday) of the week.
  auto set = [&minutes](std::size_t d, int from, int to) {
    for (int m = from; m < to; ++m) {
      minutes.set(d * std::size_t{kMinutesPerDay} + static_cast<std::size_t>(m));
    }
  };
  for (std::size_t d = 0; d < days.size(); ++d) {
    if (!days[d]) continue;
    if (*start < *end) {
      set(d, *start, *end);
    } else {
      // Across midnight: to the end of this day, then into the next (Sunday's into Monday's).
      set(d, *start, kMinutesPerDay);
      set((d + 1) % 7, 0, *end);
    }
  }
  return std::nullopt;
}

std::int64_t floorDiv(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

}  // namespace

bool CallingHours::open(std::int64_t unix_ms) const {
  std::int64_t unix_s = floorDiv(unix_ms, 1000);
  std::int64_t local_s = unix_s + zone_->offsetAt(unix_s);
  std::int64_t day = floorDiv(local_s, 86400);
  std::int64_t second_of_day = local_s - day * 86400;
  // 1970-01-01 was a Thursday: day 0 is weekday 3 counted from Monday.
  std::int64_t weekday = (day % 7 + 7 + 3) % 7;
  auto minute = static_cast<std::size_t>(weekday * kMinutesPerDay + second_of_day / 60);
  return minutes_[minute];  // weekday < 7 and second_of_day < 86400: in range
}

base::Result<CallingHours> parseCallingHours(const std::vector<std::string>& windows,
                                             std::shared_ptr<const TimeZone> zone) {
  if (!zone) return base::Error{"calling hours without a time zone"};
  if (windows.empty())
    return base::Error{"no calling-hours windows (at least one is needed, e.g. \"Mon-Fri 08:00-18:00\")"};
  if (windows.size() > kMaxCallingWindows) {
    return base::Error{
        fmt::format("{} calling-hours windows, at most {}", windows.size(), kMaxCallingWindows)};
  }
  CallingHours hours;
  hours.zone_ = std::move(zone);
  for (std::size_t i = 0; i < windows.size(); ++i) {
    const std::string& entry = windows[i];
    if (entry.size() > kMaxCallingWindowLength) {
      return base::Error{fmt::format("entry {}: longer than {} characters", i + 1, kMaxCallingWindowLength)};
    }
    if (auto error = parseWindow(entry, hours.minutes_)) {
      return base::Error{fmt::format("entry {} ({:?}): {}", i + 1, entry, *error)};
    }
  }
  return hours;
}

base::Result<CallingHours> parseCallingHours(const std::vector<std::string>& windows, std::string_view zone,
                                             std::string_view zoneinfo_dir) {
  auto loaded = loadTimeZone(zone, zoneinfo_dir);
  if (!loaded) return loaded.error();
  return parseCallingHours(windows, std::make_shared<const TimeZone>(std::move(loaded).value()));
}

}  // namespace palisade::base
