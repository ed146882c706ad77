#include "policy/fraud/prefix_file.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace palisade::policy::fraud {

namespace {

constexpr std::size_t kMaxFileBytes = std::size_t{8} * 1024 * 1024;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

base::Result<LabelledPrefixes> parsePrefixList(std::string_view text, std::string_view source) {
  LabelledPrefixes table;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    // The prefix runs to the first character that is neither a digit nor a visual separator.
    std::size_t i = 0;
    std::string digits;
    if (line[0] == '+') i = 1;
    for (; i < line.size(); ++i) {
      char c = line[i];
      if (c >= '0' && c <= '9') {
        digits.push_back(c);
      } else if (c != '-' && c != '.' && c != '(' && c != ')' && c != ' ') {
        break;
      }
    }
    std::string_view label = trim(line.substr(i));
    const bool separated = i == line.size() || line[i] == '\t' || (i > 0 && line[i - 1] == ' ');
    if (!separated) {
      return base::Error{
          fmt::format("{}:{}: {:?} is not an E.164 prefix (digits, then a label after a space)", source,
                      line_number, std::string(line.substr(0, i + 1)))};
    }
    if (!table.add(digits, std::string(label))) {
      return base::Error{fmt::format("{}:{}: {:?} is not an E.164 prefix of 1 to {} digits", source,
                                     line_number, std::string(line.substr(0, i)), kMaxE164Digits)};
    }
  }
  table.build();
  return table;
}

base::Result<LabelledPrefixes> loadPrefixFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::Error{fmt::format("{}: cannot be read", path)};
  std::string text;
  text.resize(kMaxFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes) return base::Error{fmt::format("{}: larger than 8 MiB", path)};
  return parsePrefixList(text, path);
}

}  // namespace palisade::policy::fraud
