#include "core/base/calling_hours.h"

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace palisade::base {
namespace {

// Unix milliseconds of a UTC date and time, by std::chrono's calendar. In March 2026, the 6th
// is a Friday, the 8th (New York's spring-forward day) a Sunday, the 9th a Monday.
std::int64_t utcMs(int y, unsigned mo, unsigned d, int h, int mi, int s = 0, int ms = 0) {
  using namespace std::chrono;
  auto t = sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s} + milliseconds{ms};
  return duration_cast<milliseconds>(t.time_since_epoch()).count();
}

CallingHours parse(const std::vector<std::string>& windows, std::string_view zone = "UTC") {
  auto hours = parseCallingHours(windows, zone);
  if (!hours.ok()) {
    ADD_FAILURE() << hours.error().message;
    return parseCallingHours({"Mon 00:00-00:01"}, "UTC").value();
  }
  return std::move(hours).value();
}

std::string errorOf(const std::vector<std::string>& windows, std::string_view zone = "UTC") {
  auto hours = parseCallingHours(windows, zone);
  return hours.ok() ? std::string("(parsed)") : hours.error().message;
}

TEST(CallingHours, OfficeHoursInNewYorkFollowDaylightSavingTime) {
  CallingHours office = parse({"Mon-Fri 08:00-18:00"}, "America/New_York");
  EXPECT_EQ(office.zone().name(), "America/New_York");
  // Friday 6 March 2026, EST (UTC-5): 08:00 there is 13:00 UTC.
  EXPECT_FALSE(office.open(utcMs(2026, 3, 6, 12, 59, 59, 999)));
  EXPECT_TRUE(office.open(utcMs(2026, 3, 6, 13, 0)));
  EXPECT_TRUE(office.open(utcMs(2026, 3, 6, 22, 59, 59, 999)));
  EXPECT_FALSE(office.open(utcMs(2026, 3, 6, 23, 0)));
  // The weekend.
  EXPECT_FALSE(office.open(utcMs(2026, 3, 7, 15, 0)));
  EXPECT_FALSE(office.open(utcMs(2026, 3, 8, 15, 0)));
  // Monday 9 March 2026, EDT (UTC-4): 08:00 is 12:00 UTC now.
  EXPECT_FALSE(office.open(utcMs(2026, 3, 9, 11, 59, 59, 999)));
  EXPECT_TRUE(office.open(utcMs(2026, 3, 9, 12, 0)));
  EXPECT_TRUE(office.open(utcMs(2026, 3, 9, 21, 59, 59)));
  EXPECT_FALSE(office.open(utcMs(2026, 3, 9, 22, 0)));
  // Monday 2 November 2026, EST again: 12:30 UTC is 07:30 there.
  EXPECT_FALSE(office.open(utcMs(2026, 11, 2, 12, 30)));
  EXPECT_TRUE(office.open(utcMs(2026, 11, 2, 13, 0)));
  // Friday 30 October 2026, still EDT: 21:30 UTC is 17:30 there.
  EXPECT_TRUE(office.open(utcMs(2026, 10, 30, 21, 30)));
  EXPECT_FALSE(office.open(utcMs(2026, 10, 30, 22, 30)));
}

TEST(CallingHours, WallClockWindowsOnDaylightSavingNights) {
  CallingHours night = parse({"Sun 01:00-04:00"}, "America/New_York");
  // 8 March 2026: 01:00 EST (06:00 UTC) to 04:00 EDT (08:00 UTC), two hours.
  EXPECT_FALSE(night.open(utcMs(2026, 3, 8, 5, 59, 59)));
  EXPECT_TRUE(night.open(utcMs(2026, 3, 8, 6, 0)));
  EXPECT_TRUE(night.open(utcMs(2026, 3, 8, 7, 30)));  // 03:30 EDT
  EXPECT_TRUE(night.open(utcMs(2026, 3, 8, 7, 59, 59)));
  EXPECT_FALSE(night.open(utcMs(2026, 3, 8, 8, 0)));
  // 1 November 2026: 01:00 EDT (05:00 UTC) to 04:00 EST (09:00 UTC), four hours.
  EXPECT_FALSE(night.open(utcMs(2026, 11, 1, 4, 59, 59)));
  EXPECT_TRUE(night.open(utcMs(2026, 11, 1, 5, 0)));
  EXPECT_TRUE(night.open(utcMs(2026, 11, 1, 6, 30)));  // 01:30 EST, the second 01:30
  EXPECT_TRUE(night.open(utcMs(2026, 11, 1, 8, 59, 59)));
  EXPECT_FALSE(night.open(utcMs(2026, 11, 1, 9, 0)));
}

TEST(CallingHours, AListIsTheUnionOfItsWindows) {
  CallingHours hours = parse({"Mon-Fri 08:00-18:00", "Sat 09:00-13:00"});
  EXPECT_TRUE(hours.open(utcMs(2026, 3, 4, 8, 0)));  // Wednesday
  EXPECT_TRUE(hours.open(utcMs(2026, 3, 6, 17, 59)));
  EXPECT_FALSE(hours.open(utcMs(2026, 3, 7, 8, 59)));  // Saturday
  EXPECT_TRUE(hours.open(utcMs(2026, 3, 7, 9, 0)));
  EXPECT_TRUE(hours.open(utcMs(2026, 3, 7, 12, 59, 59)));
  EXPECT_FALSE(hours.open(utcMs(2026, 3, 7, 13, 0)));
  EXPECT_FALSE(hours.open(utcMs(2026, 3, 8, 10, 0)));  // Sunday

  CallingHours overlapping = parse({"Mon 08:00-12:00", "Mon 10:00-14:00"});
  EXPECT_TRUE(overlapping.open(utcMs(2026, 3, 9, 8, 0)));
  EXPECT_TRUE(overlapping.open(utcMs(2026, 3, 9, 13, 59)));
  EXPECT_FALSE(overlapping.open(utcMs(2026, 3, 9, 14, 0)));
}

TEST(CallingHours, WindowsCrossingMidnightEndTheNextDay) {
  CallingHours nights = parse({"Mon-Fri 22:00-06:00"});
  EXPECT_FALSE(nights.open(utcMs(2026, 3, 9, 21, 59, 59)));  // Monday
  EXPECT_TRUE(nights.open(utcMs(2026, 3, 9, 22, 0)));
  EXPECT_TRUE(nights.open(utcMs(2026, 3, 10, 5, 59, 59)));  // Tuesday morning
  EXPECT_FALSE(nights.open(utcMs(2026, 3, 10, 6, 0)));
  EXPECT_TRUE(nights.open(utcMs(2026, 3, 13, 23, 0)));      // Friday night
  EXPECT_TRUE(nights.open(utcMs(2026, 3, 14, 5, 59, 59)));  // into Saturday
  EXPECT_FALSE(nights.open(utcMs(2026, 3, 14, 6, 0)));
  EXPECT_FALSE(nights.open(utcMs(2026, 3, 14, 23, 0)));  // Saturday night is not listed
  EXPECT_FALSE(nights.open(utcMs(2026, 3, 15, 23, 0)));  // nor Sunday night,
  EXPECT_FALSE(nights.open(utcMs(2026, 3, 16, 3, 0)));   // so Monday 03:00 is closed

  // Sunday's window runs into Monday: the week wraps.
  CallingHours sunday = parse({"Sun 22:00-02:00"});
  EXPECT_FALSE(sunday.open(utcMs(2026, 3, 15, 21, 59)));
  EXPECT_TRUE(sunday.open(utcMs(2026, 3, 15, 22, 0)));
  EXPECT_TRUE(sunday.open(utcMs(2026, 3, 16, 1, 59, 59)));
  EXPECT_FALSE(sunday.open(utcMs(2026, 3, 16, 2, 0)));
  EXPECT_FALSE(sunday.open(utcMs(2026, 3, 16, 22, 30)));

  // Ending at 00:00 and at 24:00 are the same midnight.
  for (const char* window : {"Fri 18:00-00:00", "Fri 18:00-24:00"}) {
    CallingHours evening = parse({window});
    EXPECT_TRUE(evening.open(utcMs(2026, 3, 13, 23, 59, 59, 999))) << window;
    EXPECT_FALSE(evening.open(utcMs(2026, 3, 14, 0, 0))) << window;
    EXPECT_FALSE(evening.open(utcMs(2026, 3, 13, 17, 59))) << window;
  }
}

TEST(CallingHours, AllDayEveryDay) {
  CallingHours always = parse({"Mon-Sun 00:00-24:00"}, "America/New_York");
  for (std::int64_t t = utcMs(2026, 3, 1, 0, 0); t < utcMs(2026, 3, 16, 0, 0);
       t += std::int64_t{7} * 60 * 1000) {
    ASSERT_TRUE(always.open(t)) << t;
  }
  CallingHours almost = parse({"Mon-Sun 00:00-23:59"});
  EXPECT_TRUE(almost.open(utcMs(2026, 3, 15, 23, 58, 59)));
  EXPECT_FALSE(almost.open(utcMs(2026, 3, 15, 23, 59, 30)));
}

TEST(CallingHours, DayListsRangesThatWrapAndAnyCase) {
  CallingHours weekend = parse({"sat,SUN 10:00-12:00"});
  EXPECT_TRUE(weekend.open(utcMs(2026, 3, 14, 11, 0)));
  EXPECT_TRUE(weekend.open(utcMs(2026, 3, 15, 11, 0)));
  EXPECT_FALSE(weekend.open(utcMs(2026, 3, 16, 11, 0)));

  CallingHours wrap = parse({"Fri-Mon 09:00-17:00"});
  // 9 March 2026 is a Monday: Monday to Sunday, in order.
  const bool expected[7] = {true, false, false, false, true, true, true};
  for (unsigned i = 0; i < 7; ++i) {
    EXPECT_EQ(wrap.open(utcMs(2026, 3, 9 + i, 10, 0)), expected[i]) << "day " << i;
  }

  CallingHours mixed = parse({"  Mon,Wed-Fri\t 09:00-17:00  "});
  EXPECT_TRUE(mixed.open(utcMs(2026, 3, 9, 10, 0)));
  EXPECT_FALSE(mixed.open(utcMs(2026, 3, 10, 10, 0)));
  EXPECT_TRUE(mixed.open(utcMs(2026, 3, 11, 10, 0)));
  EXPECT_TRUE(mixed.open(utcMs(2026, 3, 13, 16, 59)));
  EXPECT_FALSE(mixed.open(utcMs(2026, 3, 14, 10, 0)));
}

TEST(CallingHours, HalfHourZoneAndMilliseconds) {
  CallingHours kolkata = parse({"Mon-Fri 09:00-17:30"}, "Asia/Kolkata");
  // Monday 9 March 2026: 09:00 IST is 03:30 UTC, 17:30 IST is 12:00 UTC.
  EXPECT_FALSE(kolkata.open(utcMs(2026, 3, 9, 3, 29, 59, 999)));
  EXPECT_TRUE(kolkata.open(utcMs(2026, 3, 9, 3, 30)));
  EXPECT_TRUE(kolkata.open(utcMs(2026, 3, 9, 11, 59, 59, 999)));
  EXPECT_FALSE(kolkata.open(utcMs(2026, 3, 9, 12, 0)));
  // Monday 00:00 IST is Sunday 18:30 UTC: the local weekday counts, not UTC's.
  CallingHours monday_night = parse({"Mon 00:00-01:00"}, "Asia/Kolkata");
  EXPECT_FALSE(monday_night.open(utcMs(2026, 3, 8, 18, 29, 59, 999)));
  EXPECT_TRUE(monday_night.open(utcMs(2026, 3, 8, 18, 30)));
  EXPECT_FALSE(monday_night.open(utcMs(2026, 3, 9, 0, 30)));
}

TEST(CallingHours, TimesBefore1970AndAtTheEnds) {
  // 1 January 1970 was a Thursday; a millisecond before it, Wednesday 23:59:59.999.
  CallingHours wednesday = parse({"Wed 23:00-24:00"});
  EXPECT_TRUE(wednesday.open(-1));
  EXPECT_FALSE(wednesday.open(0));
  CallingHours thursday = parse({"Thu 00:00-01:00"});
  EXPECT_FALSE(thursday.open(-1));
  EXPECT_TRUE(thursday.open(0));
  CallingHours ny = parse({"Mon-Sun 00:00-24:00"}, "America/New_York");
  EXPECT_TRUE(ny.open(std::numeric_limits<std::int64_t>::max()));
  EXPECT_TRUE(ny.open(std::numeric_limits<std::int64_t>::min()));
}

TEST(CallingHours, ParseErrorsNameTheEntry) {
  struct Bad {
    const char* entry;
    const char* error;
  };
  const Bad bad[] = {
      {"", "expected DAYS HH:MM-HH:MM, as in \"Mon-Fri 08:00-18:00\""},
      {"Mon-Fri", "expected DAYS HH:MM-HH:MM"},
      {"08:00-18:00", "expected DAYS HH:MM-HH:MM"},
      {"Mon-Fri 08:00-18:00 CET", "expected DAYS HH:MM-HH:MM"},
      {"Mon-Fri 08:00 - 18:00", "expected DAYS HH:MM-HH:MM"},
      {"Mon-Fry 08:00-18:00", "\"Fry\" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"},
      {"Monday 08:00-18:00", "\"Monday\" is not a day"},
      {"Mon,,Fri 08:00-18:00", "the day list \"Mon,,Fri\" has an empty item"},
      {"Mon, 08:00-18:00", "has an empty item"},
      {"Mon- 08:00-18:00", "\"\" is not a day"},
      {"Mon-Fri-Sat 08:00-18:00", "\"Fri-Sat\" is not a day"},
      {"Mon-Fri 8:00-18:00", "\"8:00\" is not a time HH:MM from 00:00 to 24:00"},
      {"Mon-Fri 08:00", "\"08:00\" is not a time range HH:MM-HH:MM"},
      {"Mon-Fri 08:00-", "\"\" is not a time HH:MM"},
      {"Mon-Fri 08:00-24:01", "\"24:01\" is not a time"},
      {"Mon-Fri 25:00-26:00", "\"25:00\" is not a time"},
      {"Mon-Fri 08:60-09:00", "\"08:60\" is not a time"},
      {"Mon-Fri 08h00-18h00", "is not a time"},
      {"Mon-Fri 24:00-06:00", "a window cannot start at 24:00"},
      {"Mon-Fri 08:00-08:00", "the window starts and ends at 08:00: write 00:00-24:00 for a whole day"},
      {"Mon-Fri 00:00-00:00", "starts and ends at 00:00"},
  };
  for (const Bad& b : bad) {
    std::string message = errorOf({"Sat 09:00-13:00", b.entry});
    std::string entry_prefix = "entry 2 (\"" + std::string(b.entry) + "\"): ";
    EXPECT_EQ(message.rfind(entry_prefix, 0), 0u) << message;
    EXPECT_NE(message.find(b.error), std::string::npos) << b.entry << " → " << message;
  }
  // Control characters in an entry are escaped in the message.
  EXPECT_NE(errorOf({"Mon\n 08:00-18:00"}).find("entry 1 (\"Mon\\n 08:00-18:00\")"), std::string::npos)
      << errorOf({"Mon\n 08:00-18:00"});
  EXPECT_EQ(errorOf({std::string(129, 'x')}), "entry 1: longer than 128 characters");
}

TEST(CallingHours, ListAndZoneErrors) {
  EXPECT_EQ(errorOf({}), "no calling-hours windows (at least one is needed, e.g. \"Mon-Fri 08:00-18:00\")");
  std::vector<std::string> many(kMaxCallingWindows + 1, "Mon 08:00-09:00");
  EXPECT_EQ(errorOf(many), "65 calling-hours windows, at most 64");
  many.pop_back();
  EXPECT_EQ(errorOf(many), "(parsed)");
  EXPECT_EQ(errorOf({"Mon-Fri 08:00-18:00"}, "Mars/Olympus_Mons"),
            "time zone \"Mars/Olympus_Mons\": no such zone in /usr/share/zoneinfo");
  EXPECT_NE(errorOf({"Mon-Fri 08:00-18:00"}, "../../etc/passwd").find("time zone \"../../etc/passwd\""),
            std::string::npos);
  auto no_zone = parseCallingHours({"Mon-Fri 08:00-18:00"}, std::shared_ptr<const TimeZone>());
  ASSERT_FALSE(no_zone.ok());
  EXPECT_EQ(no_zone.error().message, "calling hours without a time zone");
  // The zone directory is a parameter; UTC needs none.
  EXPECT_EQ(errorOf({"Mon-Fri 08:00-18:00"}, "UTC"), "(parsed)");
  auto elsewhere = parseCallingHours({"Mon 08:00-09:00"}, "Europe/London", "/nonexistent/zoneinfo");
  ASSERT_FALSE(elsewhere.ok());
  EXPECT_NE(elsewhere.error().message.find("is tzdata installed?"), std::string::npos);
}

TEST(CallingHours, SchedulesShareOneLoadedZone) {
  auto loaded = loadTimeZone("Europe/London");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto london = std::make_shared<const TimeZone>(std::move(loaded).value());
  auto day = parseCallingHours({"Mon-Fri 08:00-18:00"}, london);
  auto night = parseCallingHours({"Mon-Fri 18:00-08:00"}, london);
  ASSERT_TRUE(day.ok() && night.ok());
  EXPECT_EQ(&day->zone(), london.get());
  EXPECT_EQ(&night->zone(), london.get());
  // Tuesday 31 March 2026, BST (UTC+1): 07:30 UTC is 08:30 in London, 06:30 UTC 07:30, still
  // Monday's night.
  EXPECT_TRUE(day->open(utcMs(2026, 3, 31, 7, 30)));
  EXPECT_FALSE(night->open(utcMs(2026, 3, 31, 7, 30)));
  EXPECT_FALSE(day->open(utcMs(2026, 3, 31, 6, 30)));
  EXPECT_TRUE(night->open(utcMs(2026, 3, 31, 6, 30)));
}

}  // namespace
}  // namespace palisade::base
