#include "core/dialog/identifiers.h"

#include <fmt/format.h>

namespace palisade::dialog {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::uint32_t ownerOf(std::string_view call_id, std::uint32_t workers) {
  if (workers <= 1) return 0;
  if (call_id.size() > 4 && call_id[0] == 'P' && call_id[3] == '-') {
    int hi = hexValue(call_id[1]);
    int lo = hexValue(call_id[2]);
    if (hi >= 0 && lo >= 0 && static_cast<std::uint32_t>(hi * 16 + lo) < workers) {
      return static_cast<std::uint32_t>(hi * 16 + lo);
    }
  }
  std::uint64_t hash = 1469598103934665603ull;  // FNV-1a: stable across processes and runs
  for (char c : call_id) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return static_cast<std::uint32_t>(hash % workers);
}

IdGenerator::IdGenerator(std::uint32_t worker, std::uint64_t seed)
    : worker_(worker), state_(seed ^ (0x9E3779B97F4A7C15ull * (worker + 1))) {}

std::uint64_t IdGenerator::next() {
  // splitmix64
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string IdGenerator::callId() { return fmt::format("P{:02x}-{:016x}{:016x}", worker_, next(), next()); }
std::string IdGenerator::tag() { return fmt::format("{:02x}{:016x}", worker_, next()); }
std::string IdGenerator::branch() { return fmt::format("z9hG4bK-P{:02x}-{:016x}", worker_, next()); }

}  // namespace palisade::dialog
