#include "core/base/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/base/log.h"

namespace palisade::base {

void secureRandom(void* out, std::size_t size) {
  auto* bytes = static_cast<std::uint8_t*>(out);
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::getrandom(bytes + done, size - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      LOG_ERROR("getrandom failed (errno {}): cannot make unpredictable identifiers", errno);
      std::abort();
    }
    done += static_cast<std::size_t>(n);
  }
}

RandomPool::~RandomPool() {
  // Bytes not yet handed out must not linger in freed memory.
  volatile std::uint8_t* p = batch_.data();
  for (std::size_t i = 0; i < batch_.size(); ++i) p[i] = 0;
}

void RandomPool::refill() {
  secureRandom(batch_.data(), batch_.size());
  used_ = 0;
}

void RandomPool::fill(void* out, std::size_t size) {
  auto* bytes = static_cast<std::uint8_t*>(out);
  while (size > 0) {
    if (used_ == batch_.size()) refill();
    std::size_t take = std::min(size, batch_.size() - used_);
    std::memcpy(bytes, batch_.data() + used_, take);
    // Handed-out bytes are wiped so that a later memory disclosure cannot replay them.
    std::memset(batch_.data() + used_, 0, take);
    used_ += take;
    bytes += take;
    size -= take;
  }
}

}  // namespace palisade::base
