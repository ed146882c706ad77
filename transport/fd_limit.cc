#include "transport/fd_limit.h"

#include <sys/resource.h>

#include <cerrno>
#include <system_error>

#include <fmt/format.h>

namespace palisade::transport {

std::uint64_t descriptorsNeeded(std::uint32_t max_connections, std::uint32_t workers) {
  constexpr std::uint64_t kPerWorker = 14;  // 2 UDP, 4 acceptors (TCP, TLS), eventfd, epoll, timerfd, spare
  constexpr std::uint64_t kProcess = 64;    // management, stdio, config and proc reads, spare
  return static_cast<std::uint64_t>(max_connections) + kPerWorker * workers + kProcess;
}

base::Result<std::uint64_t> ensureDescriptorLimit(std::uint64_t needed) {
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return base::Error{fmt::format("getrlimit(RLIMIT_NOFILE): {}",
                                   std::error_code(errno, std::generic_category()).message())};
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur >= needed)
    return static_cast<std::uint64_t>(limit.rlim_cur);
  if (limit.rlim_cur == RLIM_INFINITY) return needed;
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
    return base::Error{
        fmt::format("the descriptor limit (RLIMIT_NOFILE) is {} soft / {} hard, but tcp.max_connections "
                    "needs {}: raise the hard "
                    "limit (LimitNOFILE= in the systemd unit, ulimit -Hn) or lower tcp.max_connections",
                    limit.rlim_cur, limit.rlim_max, needed)};
  }
  struct rlimit raised = limit;
  raised.rlim_cur = needed;
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    return base::Error{fmt::format("setrlimit(RLIMIT_NOFILE, {}): {}", needed,
                                   std::error_code(errno, std::generic_category()).message())};
  }
  return needed;
}

}  // namespace palisade::transport
