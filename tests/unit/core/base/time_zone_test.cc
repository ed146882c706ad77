#include "core/base/time_zone.h"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/test_certs.h"

namespace palisade::base {
namespace {

// Unix time of a UTC date and time, by std::chrono's calendar (no time zone involved).
std::int64_t utc(int y, unsigned mo, unsigned d, int h, int mi, int s = 0) {
  using namespace std::chrono;
  return (sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s})
      .time_since_epoch()
      .count();
}

bool haveZone(const std::string& name) {
  return std::filesystem::is_regular_file(std::string(kDefaultZoneinfoDir) + "/" + name);
}

TimeZone load(const std::string& name) {
  auto zone = loadTimeZone(name);
  if (!zone.ok()) {
    ADD_FAILURE() << zone.error().message << " (the tzdata package provides " << kDefaultZoneinfoDir << ")";
    return TimeZone::utc();
  }
  return std::move(zone).value();
}

std::string readZoneFile(const std::string& name) {
  return palisade::testing::readFile(std::string(kDefaultZoneinfoDir) + "/" + name);
}

// A TZif version 2 file: an empty version 1 block, then `transitions` (time, type index) with
// `offsets` as the time types, then `footer`. Only the test's inputs are encoded here.
struct Transition {
  std::int64_t at;
  std::uint8_t type;
};
std::string makeTzif(const std::vector<Transition>& transitions, const std::vector<std::int32_t>& offsets,
                     const std::string& footer, char version = '2') {
  std::string out;
  auto put32 = [&out](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  auto header = [&](std::uint32_t times, std::uint32_t types, std::uint32_t chars) {
    out += "TZif";
    out.push_back(version);
    out.append(15, '\0');
    for (std::uint32_t count : {0u, 0u, 0u, times, types, chars}) put32(count);
  };
  header(0, 1, 1);
  put32(0);
  out.append(2, '\0');
  out.push_back('\0');
  header(static_cast<std::uint32_t>(transitions.size()), static_cast<std::uint32_t>(offsets.size()), 4);
  for (const Transition& t : transitions) {
    put32(static_cast<std::uint32_t>(static_cast<std::uint64_t>(t.at) >> 32));
    put32(static_cast<std::uint32_t>(static_cast<std::uint64_t>(t.at) & 0xffffffffu));
  }
  for (const Transition& t : transitions) out.push_back(static_cast<char>(t.type));
  for (std::int32_t offset : offsets) {
    put32(static_cast<std::uint32_t>(offset));
    out.push_back('\0');  // isdst
    out.push_back('\0');  // abbreviation index
  }
  out += "ABC";
  out.push_back('\0');  // the abbreviations, NUL-terminated
  out += "\n" + footer + "\n";
  return out;
}

TimeZone fromFooter(const std::string& footer) {
  auto zone = parseTimeZone("Test/Footer", makeTzif({}, {0}, footer));
  if (!zone.ok()) {
    ADD_FAILURE() << zone.error().message;
    return TimeZone::utc();
  }
  return std::move(zone).value();
}

TEST(TimeZone, TheTestsUtcHelperIsUnixTime) {
  EXPECT_EQ(utc(1970, 1, 1, 0, 0), 0);
  EXPECT_EQ(utc(2026, 3, 8, 7, 0), 1772953200);
  EXPECT_EQ(utc(2100, 3, 14, 7, 0), 4108690800);
}

TEST(TimeZone, UtcIsBuiltInAndNeedsNoFile) {
  auto zone = loadTimeZone("UTC", "/nonexistent/zoneinfo");
  ASSERT_TRUE(zone.ok()) << zone.error().message;
  EXPECT_EQ(zone->name(), "UTC");
  for (std::int64_t t :
       {std::int64_t{0}, utc(2026, 7, 1, 12, 0), utc(2100, 1, 1, 0, 0), std::int64_t{-1'000'000'000}}) {
    EXPECT_EQ(zone->offsetAt(t), 0) << t;
  }
  EXPECT_EQ(TimeZone::utc().offsetAt(utc(2026, 3, 8, 7, 0)), 0);
}

TEST(TimeZone, NewYorkAcrossBothDstSwitchesOf2026) {
  TimeZone ny = load("America/New_York");
  EXPECT_GT(ny.transitionCount(), 100u);
  // 8 March 2026, 02:00 EST = 07:00 UTC: clocks go forward.
  EXPECT_EQ(ny.offsetAt(utc(2026, 3, 8, 6, 59, 59)), -5 * 3600);
  EXPECT_EQ(ny.offsetAt(utc(2026, 3, 8, 7, 0)), -4 * 3600);
  // 1 November 2026, 02:00 EDT = 06:00 UTC: clocks go back.
  EXPECT_EQ(ny.offsetAt(utc(2026, 11, 1, 5, 59, 59)), -4 * 3600);
  EXPECT_EQ(ny.offsetAt(utc(2026, 11, 1, 6, 0)), -5 * 3600);
  EXPECT_EQ(ny.offsetAt(utc(2026, 7, 4, 16, 0)), -4 * 3600);
  EXPECT_EQ(ny.offsetAt(utc(2026, 12, 25, 16, 0)), -5 * 3600);
}

TEST(TimeZone, LondonSummerTimeAndTheAllYearBritishStandardTimeOf1970) {
  TimeZone london = load("Europe/London");
  // Last Sunday of March and of October, 01:00 UTC.
  EXPECT_EQ(london.offsetAt(utc(2026, 3, 29, 0, 59, 59)), 0);
  EXPECT_EQ(london.offsetAt(utc(2026, 3, 29, 1, 0)), 3600);
  EXPECT_EQ(london.offsetAt(utc(2026, 10, 25, 0, 59, 59)), 3600);
  EXPECT_EQ(london.offsetAt(utc(2026, 10, 25, 1, 0)), 0);
  // From 1968 to 1971 the UK kept GMT+1 all year: only the transition table knows that.
  EXPECT_EQ(london.offsetAt(0), 3600);
  EXPECT_EQ(london.offsetAt(utc(1970, 12, 25, 12, 0)), 3600);
}

TEST(TimeZone, KolkataIsFiveAndAHalfHoursAhead) {
  TimeZone kolkata = load("Asia/Kolkata");
  EXPECT_EQ(kolkata.offsetAt(utc(2026, 1, 1, 0, 0)), 5 * 3600 + 1800);
  EXPECT_EQ(kolkata.offsetAt(utc(2026, 7, 1, 0, 0)), 19800);
  EXPECT_EQ(kolkata.offsetAt(utc(2100, 7, 1, 0, 0)), 19800);
  EXPECT_EQ(kolkata.offsetAt(utc(1942, 9, 1, 0, 0)), 6 * 3600 + 1800) << "war time";
}

TEST(TimeZone, LordHoweMovesItsClocksByHalfAnHour) {
  if (!haveZone("Australia/Lord_Howe")) GTEST_SKIP() << "no Australia/Lord_Howe in " << kDefaultZoneinfoDir;
  TimeZone lord_howe = load("Australia/Lord_Howe");
  // Daylight time (+11) ends on the first Sunday of April at 02:00 local, 15:00 UTC the day before.
  EXPECT_EQ(lord_howe.offsetAt(utc(2026, 1, 1, 0, 0)), 11 * 3600);
  EXPECT_EQ(lord_howe.offsetAt(utc(2026, 4, 4, 14, 59, 59)), 11 * 3600);
  EXPECT_EQ(lord_howe.offsetAt(utc(2026, 4, 4, 15, 0)), 10 * 3600 + 1800);
  // And starts on the first Sunday of October at 02:00 local (+10:30).
  EXPECT_EQ(lord_howe.offsetAt(utc(2026, 10, 3, 15, 29, 59)), 37800);
  EXPECT_EQ(lord_howe.offsetAt(utc(2026, 10, 3, 15, 30)), 39600);
  EXPECT_EQ(lord_howe.offsetAt(utc(2100, 7, 1, 0, 0)), 37800);
  EXPECT_EQ(lord_howe.offsetAt(utc(2100, 1, 1, 0, 0)), 39600);
}

TEST(TimeZone, Year2100ComesFromTheFooterRule) {
  // The shipped files list transitions up to 2037 at most; 2100 is the POSIX TZ footer's.
  TimeZone ny = load("America/New_York");
  EXPECT_EQ(ny.offsetAt(utc(2100, 3, 14, 6, 59, 59)), -18000);
  EXPECT_EQ(ny.offsetAt(utc(2100, 3, 14, 7, 0)), -14400);
  EXPECT_EQ(ny.offsetAt(utc(2100, 11, 7, 5, 59, 59)), -14400);
  EXPECT_EQ(ny.offsetAt(utc(2100, 11, 7, 6, 0)), -18000);
  TimeZone london = load("Europe/London");
  EXPECT_EQ(london.offsetAt(utc(2100, 3, 28, 0, 59, 59)), 0);
  EXPECT_EQ(london.offsetAt(utc(2100, 3, 28, 1, 0)), 3600);
  // Far beyond: still the rule, and no overflow at the ends of the range.
  EXPECT_EQ(ny.offsetAt(utc(9000, 7, 1, 0, 0)), -14400);
  EXPECT_EQ(ny.offsetAt(utc(9000, 1, 1, 12, 0)), -18000);
  (void)ny.offsetAt(std::numeric_limits<std::int64_t>::max());
  (void)ny.offsetAt(std::numeric_limits<std::int64_t>::min());
}

// Offsets glibc gives for these zones and times (`TZ=ZONE date -d @T +%z` with tzdata 2025b),
// written down once: the test must not depend on the process's TZ.
TEST(TimeZone, AgreesWithGlibcOnKnownOffsets) {
  struct Known {
    const char* zone;
    std::int64_t unix_s;
    std::int32_t offset;
  };
  const Known known[] = {
      {"America/New_York", 1772953199, -18000},   // 2026-03-08 01:59:59 EST
      {"America/New_York", 1772953200, -14400},   // 2026-03-08 03:00:00 EDT
      {"America/New_York", 1793512799, -14400},   // 2026-11-01 01:59:59 EDT
      {"America/New_York", 1793512800, -18000},   // 2026-11-01 01:00:00 EST
      {"America/New_York", 962409600, -14400},    // 2000-07-01
      {"America/New_York", -3029443200, -17762},  // 1874: local mean time, -4:56:02
      {"Europe/London", 1774746000, 3600},       {"Asia/Kolkata", 1767225600, 19800},
      {"Asia/Tokyo", 1782864000, 32400},         {"Asia/Kathmandu", 1767225600, 20700},  // +05:45
      {"Pacific/Chatham", 1767225600, 49500},                                            // +13:45
      {"Pacific/Chatham", 1782864000, 45900},                                            // +12:45
      {"Pacific/Chatham", 4125563999, 45900},     // 2100-09-26 02:44:59, the footer's
      {"Pacific/Chatham", 4125564000, 49500},     // 2100-09-26 03:45:00
      {"America/St_Johns", 1767225600, -12600},   // -03:30
      {"America/St_Johns", 1782864000, -9000},    // -02:30
      {"America/Sao_Paulo", 1516017600, -7200},   // 2018, before Brazil dropped DST
      {"America/Sao_Paulo", 1768478400, -10800},  // 2026
      {"Asia/Tehran", 1625097600, 16200},         // 2021: +04:30 in summer
      {"Asia/Tehran", 1782864000, 12600},         // 2026: +03:30 all year
      {"Etc/GMT+5", 1782864000, -18000},          // POSIX sign: GMT+5 is 5 h west
      {"Pacific/Kiritimati", 1782864000, 50400},  // +14
      {"Australia/Sydney", 1767225600, 39600},    // southern summer
      {"Australia/Sydney", 1782864000, 36000},    // southern winter
      {"Europe/Dublin", 4102444800, 0},           // 2100: "IST-1GMT0,M10.5.0,M3.5.0/1",
      {"Europe/Dublin", 4118083200, 3600},        // negative DST (winter is the "DST")
      {"Europe/Dublin", 4128627599, 3600},        // 2100-10-31 01:59:59 IST
      {"Europe/Dublin", 4128627600, 0},           // 2100-10-31 01:00:00 GMT
      {"America/Nuuk", 4109878799, -7200},        // "<-02>2<-01>,M3.5.0/-1,M10.5.0/0":
      {"America/Nuuk", 4109878800, -3600},        // a transition at -1:00 local
      {"America/Nuuk", 4128627599, -3600},       {"America/Nuuk", 4128627600, -7200},
      {"Asia/Jerusalem", 4109702399, 7200},   // "IST-2IDT,M3.4.4/26,M10.5.0":
      {"Asia/Jerusalem", 4109702400, 10800},  // Thursday 26:00 is Friday 02:00
      {"Asia/Jerusalem", 4128620399, 10800},     {"Asia/Jerusalem", 4128620400, 7200},
  };
  for (const Known& k : known) {
    if (!haveZone(k.zone)) {
      ADD_FAILURE() << k.zone << " is missing from " << kDefaultZoneinfoDir << " (install tzdata)";
      continue;
    }
    EXPECT_EQ(load(k.zone).offsetAt(k.unix_s), k.offset) << k.zone << " at " << k.unix_s;
  }
}

TEST(TimeZone, FooterGovernsAfterTheLastTransition) {
  // Until 2000 at +1 h, then (by the table) +2 h, but the footer says +3 h: after the last
  // transition the footer wins (RFC 8536 §3.3).
  auto zone = parseTimeZone("Test/Zone", makeTzif({{utc(1990, 1, 1, 0, 0), 1}, {utc(2000, 1, 1, 0, 0), 2}},
                                                  {3600, 3600, 7200}, "<+03>-3"));
  ASSERT_TRUE(zone.ok()) << zone.error().message;
  EXPECT_EQ(zone->transitionCount(), 2u);
  EXPECT_EQ(zone->offsetAt(utc(1980, 1, 1, 0, 0)), 3600) << "before the first transition: type 0";
  EXPECT_EQ(zone->offsetAt(utc(1995, 1, 1, 0, 0)), 3600);
  EXPECT_EQ(zone->offsetAt(utc(2000, 1, 1, 0, 0)), 7200) << "at the last transition: the table";
  EXPECT_EQ(zone->offsetAt(utc(2000, 1, 1, 0, 0, 1)), 10800);
  EXPECT_EQ(zone->offsetAt(utc(2026, 7, 1, 0, 0)), 10800);

  // An empty footer: the last transition's type stays.
  auto no_footer = parseTimeZone("Test/Zone", makeTzif({{utc(2000, 1, 1, 0, 0), 1}}, {0, -9000}, ""));
  ASSERT_TRUE(no_footer.ok()) << no_footer.error().message;
  EXPECT_EQ(no_footer->offsetAt(utc(2100, 1, 1, 0, 0)), -9000);
  EXPECT_EQ(no_footer->offsetAt(utc(1999, 1, 1, 0, 0)), 0);

  // No transitions: the footer everywhere, also in a version 3 file.
  auto footer_only = parseTimeZone("Test/Zone", makeTzif({}, {0}, "<-0330>3:30", '3'));
  ASSERT_TRUE(footer_only.ok()) << footer_only.error().message;
  EXPECT_EQ(footer_only->offsetAt(utc(1900, 1, 1, 0, 0)), -12600);
  EXPECT_EQ(footer_only->offsetAt(utc(2026, 1, 1, 0, 0)), -12600);
}

TEST(TimeZone, FooterRulesInEveryDateForm) {
  // Jn: 1..365, 29 February never counted, so J60 is 1 March and J300 27 October in any year.
  TimeZone julian = fromFooter("XST-1XDT,J60/2,J300/3");
  for (int year : {2027, 2028}) {
    EXPECT_EQ(julian.offsetAt(utc(year, 3, 1, 0, 59, 59)), 3600) << year;
    EXPECT_EQ(julian.offsetAt(utc(year, 3, 1, 1, 0)), 7200) << year;
    EXPECT_EQ(julian.offsetAt(utc(year, 10, 27, 0, 59, 59)), 7200) << year;
    EXPECT_EQ(julian.offsetAt(utc(year, 10, 27, 1, 0)), 3600) << year;
  }
  // n: 0..365 counting 29 February: day 59 is 1 March, or 29 February in a leap year.
  TimeZone zero_based = fromFooter("XST-1XDT,59/2,299/3");
  EXPECT_EQ(zero_based.offsetAt(utc(2027, 3, 1, 0, 59, 59)), 3600);
  EXPECT_EQ(zero_based.offsetAt(utc(2027, 3, 1, 1, 0)), 7200);
  EXPECT_EQ(zero_based.offsetAt(utc(2027, 10, 27, 0, 59, 59)), 7200);
  EXPECT_EQ(zero_based.offsetAt(utc(2027, 10, 27, 1, 0)), 3600);
  EXPECT_EQ(zero_based.offsetAt(utc(2028, 2, 29, 0, 59, 59)), 3600);
  EXPECT_EQ(zero_based.offsetAt(utc(2028, 2, 29, 1, 0)), 7200);
  EXPECT_EQ(zero_based.offsetAt(utc(2028, 10, 26, 0, 59, 59)), 7200);
  EXPECT_EQ(zero_based.offsetAt(utc(2028, 10, 26, 1, 0)), 3600);
  // Mm.w.d with minutes in the offsets and times: the first Sunday of April at 00:00 (+05:30),
  // the last Saturday of September at 23:30 (+06:30).
  TimeZone mwd = fromFooter("<+0530>-5:30<+0630>-6:30,M4.1.0/0,M9.5.6/23:30");
  EXPECT_EQ(mwd.offsetAt(utc(2030, 4, 6, 18, 29, 59)), 19800);
  EXPECT_EQ(mwd.offsetAt(utc(2030, 4, 6, 18, 30)), 23400);
  EXPECT_EQ(mwd.offsetAt(utc(2030, 9, 28, 16, 59, 59)), 23400);  // 2030-09-28 23:29:59 +06:30
  EXPECT_EQ(mwd.offsetAt(utc(2030, 9, 28, 17, 0)), 19800);
  // No rule after the daylight name: one hour ahead, on the US rules (second Sunday of March,
  // first of November, at 02:00).
  TimeZone default_rule = fromFooter("ABC-2XYZ");
  EXPECT_EQ(default_rule.offsetAt(utc(2030, 1, 15, 0, 0)), 7200);
  EXPECT_EQ(default_rule.offsetAt(utc(2030, 3, 9, 23, 59, 59)), 7200);
  EXPECT_EQ(default_rule.offsetAt(utc(2030, 3, 10, 0, 0)), 10800);
  EXPECT_EQ(default_rule.offsetAt(utc(2030, 11, 2, 22, 59, 59)), 10800);
  EXPECT_EQ(default_rule.offsetAt(utc(2030, 11, 2, 23, 0)), 7200);
  // Daylight time all year, RFC 8536 §3.3.1's example: it starts at 00:00 on 1 January and ends
  // at 25:00 on 31 December, i.e. as the next one starts (glibc gets the year's ends wrong).
  TimeZone permanent = fromFooter("EST5EDT,0/0,J365/25");
  for (std::int64_t t : {utc(2030, 1, 1, 0, 0), utc(2030, 1, 1, 4, 30), utc(2030, 7, 1, 0, 0),
                         utc(2030, 12, 31, 23, 59, 59), utc(2031, 1, 1, 4, 0), utc(2031, 1, 1, 5, 0)}) {
    EXPECT_EQ(permanent.offsetAt(t), -14400) << t;
  }
  // No daylight time at all.
  EXPECT_EQ(fromFooter("UTC0").offsetAt(utc(2030, 7, 1, 0, 0)), 0);
  EXPECT_EQ(fromFooter("<+03>-3").offsetAt(utc(2030, 7, 1, 0, 0)), 10800);
  EXPECT_EQ(fromFooter("<-0930>9:30").offsetAt(utc(2030, 7, 1, 0, 0)), -34200);
}

TEST(TimeZone, MalformedFootersAreRefused) {
  for (const char* footer :
       {"E5", "EST", "EST+", "EST5EDT,M3.2.0", "EST5EDT,M13.2.0,M11.1.0", "EST5EDT,M3.6.0,M11.1.0",
        "EST5EDT,M3.2.7,M11.1.0", "EST5EDT,J0,J365", "EST5EDT,J366,J1", "EST5EDT,366,1",
        "EST5EDT,M3.2.0/168,M11.1.0", "EST25", "EST5:60", "EST5EDT,M3.2.0,M11.1.0x", "<AB>5", "<EST5",
        "EST5EDT4,", "EST 5", "EST0005"}) {
    auto zone = parseTimeZone("Test/Bad", makeTzif({}, {0}, footer));
    ASSERT_FALSE(zone.ok()) << footer;
    EXPECT_NE(zone.error().message.find("time zone \"Test/Bad\": the footer"), std::string::npos)
        << zone.error().message;
  }
}

TEST(TimeZone, CorruptOrTruncatedFilesGiveErrors) {
  const std::string good = readZoneFile("America/New_York");
  ASSERT_GT(good.size(), 1000u) << "install tzdata";
  ASSERT_TRUE(parseTimeZone("America/New_York", good).ok());

  // Every truncation is an error, never a crash or a read past the end (ASan builds check).
  for (std::size_t size = 0; size < good.size(); ++size) {
    EXPECT_FALSE(parseTimeZone("America/New_York", good.substr(0, size)).ok()) << "truncated at " << size;
  }
  // Any single corrupted byte: an error or a zone, but never undefined behaviour.
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0xff);
    auto zone = parseTimeZone("America/New_York", bad);
    if (zone.ok()) (void)zone->offsetAt(utc(2026, 7, 1, 0, 0));
  }

  auto message = [](const std::string& bytes) {
    auto zone = parseTimeZone("Test/Corrupt", bytes);
    return zone.ok() ? std::string("(parsed)") : zone.error().message;
  };
  EXPECT_EQ(message("TZif"),
            "time zone \"Test/Corrupt\": truncated: a header needs 44 bytes at offset 0, 4 are left");
  EXPECT_NE(message("not a zone file at all, but long enough for a header.....").find("no \"TZif\" magic"),
            std::string::npos);
  EXPECT_NE(message(makeTzif({}, {0}, "UTC0", '\0')).find("version 1"), std::string::npos);
  // A count far beyond the file: version 2 transition count set to 2^32 - 1.
  std::string huge = makeTzif({{0, 0}}, {0}, "UTC0");
  const std::size_t v2_header = 44 + 6 + 1;
  huge.replace(v2_header + 32, 4, "\xff\xff\xff\xff");
  EXPECT_NE(message(huge).find("truncated: the 64-bit data needs"), std::string::npos) << message(huge);
  EXPECT_NE(message(makeTzif({{0, 1}}, {0}, "UTC0")).find("transition 0 names time type 1 of 1"),
            std::string::npos);
  EXPECT_NE(message(makeTzif({{100, 0}, {100, 0}}, {0}, "UTC0")).find("transition 1 is not later"),
            std::string::npos);
  EXPECT_NE(message(makeTzif({}, {0, 100000}, "UTC0")).find("beyond ±26 h"), std::string::npos);
  EXPECT_NE(message(makeTzif({}, {}, "UTC0")).find("no local time types"), std::string::npos);
  std::string no_footer = makeTzif({}, {0}, "UTC0");
  EXPECT_NE(message(no_footer.substr(0, no_footer.size() - 6)).find("footer (a TZ string) is missing"),
            std::string::npos);
  EXPECT_NE(message(no_footer.substr(0, no_footer.size() - 1)).find("not terminated"), std::string::npos);
  EXPECT_NE(message(std::string(std::size_t{300} * 1024, 'x')).find("larger than 256 KiB"),
            std::string::npos);
  std::string leap = makeTzif({}, {0}, "UTC0");
  leap.replace(v2_header + 28, 4, std::string("\0\0\0\1", 4));
  leap.insert(leap.size() - 6, std::string(12, '\0'));  // one leap-second record before "\nUTC0\n"
  EXPECT_NE(message(leap).find("leap-second"), std::string::npos) << message(leap);

  // The same through loadTimeZone, from a copy in a directory of our own.
  palisade::testing::TempDir dir;
  dir.write("Truncated", good.substr(0, good.size() / 2));
  dir.write("Text", "this is not a zone file, though it is long enough to hold a header");
  auto truncated = loadTimeZone("Truncated", dir.path());
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.error().message.find("time zone \"Truncated\": truncated"), std::string::npos)
      << truncated.error().message;
  auto text = loadTimeZone("Text", dir.path());
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.error().message.find("no \"TZif\" magic"), std::string::npos) << text.error().message;
  dir.write("Copy", good);
  auto copy = loadTimeZone("Copy", dir.path());
  ASSERT_TRUE(copy.ok()) << copy.error().message;
  EXPECT_EQ(copy->offsetAt(utc(2026, 7, 1, 0, 0)), -14400);
}

TEST(TimeZone, BadNamesAreRefusedBeforeAnyFileIsOpened) {
  const std::string too_long(129, 'a');
  for (const std::string& name :
       {std::string(""), std::string("../etc/passwd"), std::string("America/../../etc/shadow"),
        std::string(".."), std::string("/etc/localtime"), std::string("/usr/share/zoneinfo/UTC"),
        std::string("America//New_York"), std::string("America/New_York/"), std::string("Europe/Lon don"),
        std::string("Europe/London\n"), std::string("Europe/Zürich"), std::string("./UTC"),
        std::string("posix.rules"), std::string("A\\B"), std::string("UTC\0x", 5), too_long}) {
    auto zone = loadTimeZone(name);
    ASSERT_FALSE(zone.ok()) << name;
    EXPECT_EQ(zone.error().message.rfind("time zone ", 0), 0u) << zone.error().message;
  }
  EXPECT_NE(loadTimeZone("../etc/passwd").error().message.find("\"..\""), std::string::npos);
  EXPECT_NE(loadTimeZone("/etc/localtime").error().message.find("absolute"), std::string::npos);

  auto unknown = loadTimeZone("Mars/Olympus_Mons");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message, "time zone \"Mars/Olympus_Mons\": no such zone in /usr/share/zoneinfo");
  auto directory = loadTimeZone("America");
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.error().message.find("is not a zone file"), std::string::npos)
      << directory.error().message;
  auto no_dir = loadTimeZone("Europe/London", "/nonexistent/zoneinfo");
  ASSERT_FALSE(no_dir.ok());
  EXPECT_NE(no_dir.error().message.find("(is tzdata installed?)"), std::string::npos)
      << no_dir.error().message;
  // Names with '+' and '-' are real ones.
  EXPECT_TRUE(loadTimeZone("Etc/GMT-14").ok());
  EXPECT_TRUE(loadTimeZone("America/Port-au-Prince").ok());
}

}  // namespace
}  // namespace palisade::base
