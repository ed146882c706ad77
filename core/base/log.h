#pragma once
// One line per event on stderr, via fmt. Thread-safe: each line is a single write().
// Never pass a password, an Authorization value or key material to these macros.
#include <atomic>
#include <string_view>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace palisade::base {

enum class LogLevel : int { Trace = 0, Debug, Info, Warn, Error, Off };

std::atomic<int>& logThreshold();
bool parseLogLevel(std::string_view name, LogLevel& out);
void writeLogLine(LogLevel level, std::string_view text);

inline bool logEnabled(LogLevel level) {
  return static_cast<int>(level) >= logThreshold().load(std::memory_order_relaxed);
}
inline void setLogLevel(LogLevel level) {
  logThreshold().store(static_cast<int>(level), std::memory_order_relaxed);
}

}  // namespace palisade::base

#define PALISADE_LOG(level, ...)                                         \
  do {                                                                   \
    if (::palisade::base::logEnabled(level))                             \
      ::palisade::base::writeLogLine(level, ::fmt::format(__VA_ARGS__)); \
  } while (0)
#define LOG_DEBUG(...) PALISADE_LOG(::palisade::base::LogLevel::Debug, __VA_ARGS__)
#define LOG_INFO(...) PALISADE_LOG(::palisade::base::LogLevel::Info, __VA_ARGS__)
#define LOG_WARN(...) PALISADE_LOG(::palisade::base::LogLevel::Warn, __VA_ARGS__)
#define LOG_ERROR(...) PALISADE_LOG(::palisade::base::LogLevel::Error, __VA_ARGS__)
