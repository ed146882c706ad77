#include "policy/fraud/rate_table.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace palisade::policy::fraud {

namespace {

constexpr std::size_t kMaxFileBytes = std::size_t{8} * 1024 * 1024;
constexpr int kDecimals = 6;

bool isBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && isBlank(s.back())) s.remove_suffix(1);
  return s;
}

// The first blank-separated field of `line`, which is left holding the rest (trimmed).
std::string_view takeField(std::string_view& line) {
  std::size_t end = 0;
  while (end < line.size() && !isBlank(line[end])) ++end;
  std::string_view field = line.substr(0, end);
  line = trim(line.substr(end));
  return field;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// "+44-20" → "4420"; false for anything but digits and visual separators after an optional '+'.
bool prefixDigits(std::string_view field, std::string& digits) {
  if (!field.empty() && field[0] == '+') field.remove_prefix(1);
  digits.clear();
  for (char c : field) {
    if (isDigit(c)) {
      digits.push_back(c);
    } else if (c != '-' && c != '.' && c != '(' && c != ')') {
      return false;
    }
  }
  return !digits.empty() && digits.size() <= kMaxE164Digits;
}

// "0.0120" → 12000 exactly; the error text when it is not a price.
std::optional<std::string> parsePrice(std::string_view field, std::int64_t& micros) {
  if (field.empty()) return "a price per minute is missing after the prefix";
  if (field[0] == '-') return fmt::format("the price {:?} is negative", std::string(field));
  auto all_digits = [](std::string_view s) { return std::all_of(s.begin(), s.end(), isDigit); };
  std::size_t point = field.find('.');
  if (point == std::string_view::npos && all_digits(field)) {
    return fmt::format("the price {:?} has no decimal point (write 5.0, not 5; a prefix has no spaces)",
                       std::string(field));
  }
  std::string_view whole = field.substr(0, point);
  std::string_view fraction = point == std::string_view::npos ? std::string_view() : field.substr(point + 1);
  if (whole.empty() || fraction.empty() || !all_digits(whole) || !all_digits(fraction)) {
    return fmt::format("the price {:?} is not a decimal number like 0.0120", std::string(field));
  }
  if (fraction.size() > kDecimals) {
    return fmt::format("the price {:?} has more than {} decimals", std::string(field), kDecimals);
  }
  while (whole.size() > 1 && whole[0] == '0') whole.remove_prefix(1);
  constexpr std::int64_t kUnit = 1'000'000;
  if (whole.size() > 7) return fmt::format("the price {:?} is too large", std::string(field));
  std::int64_t units = 0;
  for (char c : whole) units = units * 10 + (c - '0');
  std::int64_t fraction_micros = 0;
  for (int i = 0; i < kDecimals; ++i) {
    fraction_micros = fraction_micros * 10 + (i < static_cast<int>(fraction.size()) ? fraction[i] - '0' : 0);
  }
  if (units > kMaxMicrosPerMinute / kUnit || units * kUnit + fraction_micros > kMaxMicrosPerMinute) {
    return fmt::format("the price {:?} is too large", std::string(field));
  }
  micros = units * kUnit + fraction_micros;
  return std::nullopt;
}

struct Line {
  std::string digits;
  std::size_t line = 0;
  RateTable::Entry entry;
};

}  // namespace

std::optional<Rate> RateTable::rateOf(std::string_view e164) const {
  auto match = table_.longest(e164);
  if (!match) return std::nullopt;
  return Rate{match->prefix, match->value->micros_per_minute, match->value->label};
}

base::Result<RateTable> parseRateTable(std::string_view text, std::string_view source) {
  std::vector<Line> lines;
  std::size_t line_number = 0;
  std::string digits;
  while (!text.empty()) {
    ++line_number;
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    std::string_view prefix = takeField(line);
    if (!prefixDigits(prefix, digits)) {
      return base::Error{fmt::format("{}:{}: {:?} is not an E.164 prefix of 1 to {} digits", source,
                                     line_number, std::string(prefix), kMaxE164Digits)};
    }
    std::int64_t micros = 0;
    if (auto error = parsePrice(takeField(line), micros)) {
      return base::Error{fmt::format("{}:{}: {}", source, line_number, *error)};
    }
    lines.push_back(Line{digits, line_number, RateTable::Entry{micros, std::string(line)}});
  }
  // A prefix priced twice is a mistake in the file, not a rule to pick from: refuse it, naming
  // both lines. The sort is stable, so equal prefixes stay in file order and the one before the
  // earliest repeat is its first line.
  std::stable_sort(lines.begin(), lines.end(),
                   [](const Line& a, const Line& b) { return a.digits < b.digits; });
  const Line* first = nullptr;
  const Line* again = nullptr;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].digits == lines[i - 1].digits && (!again || lines[i].line < again->line)) {
      first = &lines[i - 1];
      again = &lines[i];
    }
  }
  if (again) {
    return base::Error{fmt::format("{}:{}: the prefix +{} is priced already on line {}", source, again->line,
                                   again->digits, first->line)};
  }
  RateTable table;
  for (Line& l : lines) table.table_.add(l.digits, std::move(l.entry));
  table.table_.build();
  return table;
}

base::Result<RateTable> loadRateTable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::Error{fmt::format("{}: cannot be read", path)};
  std::string text;
  text.resize(kMaxFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes) return base::Error{fmt::format("{}: larger than 8 MiB", path)};
  return parseRateTable(text, path);
}

std::int64_t costMicros(std::int64_t micros_per_minute, base::Millis billed_ms) {
  if (billed_ms <= 0 || micros_per_minute <= 0) return 0;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::int64_t price = std::min(micros_per_minute, kMaxMicrosPerMinute);
  const std::int64_t seconds = billed_ms / 1000 + (billed_ms % 1000 != 0 ? 1 : 0);
  // Whole minutes, then the seconds left: price × 59 stays far inside 64 bits.
  const std::int64_t minutes = seconds / 60;
  const std::int64_t rest = seconds % 60;
  if (minutes > (kMax - price) / price) return kMax;
  return minutes * price + (price * rest + 59) / 60;
}

}  // namespace palisade::policy::fraud
