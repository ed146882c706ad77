#pragma once
// Unpredictable bytes for identifiers (tags, branches, Call-IDs, cookies) from the kernel's
// CSPRNG (getrandom), drawn in batches so that the message path makes no system call per
// identifier. One pool per worker: not thread-safe.
#include <array>
#include <cstddef>
#include <cstdint>

namespace palisade::base {

class RandomPool {
 public:
  RandomPool() = default;
  RandomPool(const RandomPool&) = delete;
  RandomPool& operator=(const RandomPool&) = delete;
  ~RandomPool();

  // Fills `out` with `size` bytes. Aborts the process if the kernel cannot supply randomness
  // (no identifier may ever come from a predictable source).
  void fill(void* out, std::size_t size);

 private:
  void refill();
  std::array<std::uint8_t, 4096> batch_{};
  std::size_t used_ = sizeof(batch_);  // empty until the first draw
};

// One-shot draw straight from the kernel (start-up keys and seeds). Aborts on failure.
void secureRandom(void* out, std::size_t size);

}  // namespace palisade::base
