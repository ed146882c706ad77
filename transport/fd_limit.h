#pragma once
// The process's descriptor limit (RLIMIT_NOFILE) must fit the configured connection limits:
// otherwise accept() fails with EMFILE under a connection flood while the limits say there
// is room. Raised at start (and on reload) up to the hard limit, or a clear error.
#include <cstdint>

#include "core/base/result.h"

namespace palisade::transport {

// Descriptors the daemon needs besides TCP connections: per worker its UDP sockets, acceptors,
// eventfd and epoll/timer descriptors; plus the management endpoint, logs and config reads.
std::uint64_t descriptorsNeeded(std::uint32_t max_connections, std::uint32_t workers);

// Raises the soft limit to `needed` when it is lower. Returns the soft limit in force, or an
// error naming the hard limit when that is below `needed`.
base::Result<std::uint64_t> ensureDescriptorLimit(std::uint64_t needed);

}  // namespace palisade::transport
