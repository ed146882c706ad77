#include "core/base/log.h"

#include <unistd.h>

#include <chrono>
#include <ctime>

namespace palisade::base {

std::atomic<int>& logThreshold() {
  static std::atomic<int> threshold{static_cast<int>(LogLevel::Info)};
  return threshold;
}

bool parseLogLevel(std::string_view name, LogLevel& out) {
  static constexpr std::pair<std::string_view, LogLevel> kNames[] = {
      {"trace", LogLevel::Trace}, {"debug", LogLevel::Debug}, {"info", LogLevel::Info},
      {"warn", LogLevel::Warn},   {"error", LogLevel::Error}, {"off", LogLevel::Off}};
  for (const auto& [text, level] : kNames) {
    if (text == name) {
      out = level;
      return true;
    }
  }
  return false;
}

void writeLogLine(LogLevel level, std::string_view text) {
  static constexpr std::string_view kTags[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF"};
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  // Control characters from the network never reach the terminal raw.
  std::string line =
      fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z {} ", tm, millis, kTags[static_cast<int>(level)]);
  line.reserve(line.size() + text.size() + 1);
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    line.push_back(((u < 0x20 && c != '\t') || u == 0x7f) ? '?' : c);
  }
  line.push_back('\n');
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace palisade::base
