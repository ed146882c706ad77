#include "core/dialog/identifiers.h"

#include <array>

namespace palisade::dialog {
namespace {

constexpr char kHex[] = "0123456789abcdef";

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

IdGenerator::IdGenerator(std::uint32_t worker) : worker_(worker) {
  worker_hex_[0] = kHex[(worker_ >> 4) & 0xf];
  worker_hex_[1] = kHex[worker_ & 0xf];
}

void IdGenerator::appendRandomHex(std::string& out, std::size_t bytes) {
  std::array<std::uint8_t, 32> raw{};
  pool_.fill(raw.data(), bytes);
  for (std::size_t i = 0; i < bytes; ++i) {
    out.push_back(kHex[raw[i] >> 4]);
    out.push_back(kHex[raw[i] & 0xf]);
  }
}

std::string IdGenerator::callId() {
  std::string out;
  out.reserve(4 + 2 * kCallIdRandomBytes);
  out.push_back('P');
  out.append(worker_hex_, 2);
  out.push_back('-');
  appendRandomHex(out, kCallIdRandomBytes);
  return out;
}

std::string IdGenerator::tag() {
  std::string out;
  out.reserve(2 + 2 * kTagRandomBytes);
  out.append(worker_hex_, 2);
  appendRandomHex(out, kTagRandomBytes);
  return out;
}

std::uint32_t IdGenerator::firstRSeq() {
  for (;;) {
    std::uint32_t value = 0;
    pool_.fill(&value, sizeof(value));
    value &= 0x7fffffffu;
    if (value != 0) return value;  // drawn again rather than shifted: stays uniform
  }
}

std::string IdGenerator::branch() {
  std::string out;
  out.reserve(12 + 2 * kBranchRandomBytes);
  out.append("z9hG4bK-P");
  out.append(worker_hex_, 2);
  out.push_back('-');
  appendRandomHex(out, kBranchRandomBytes);
  return out;
}

}  // namespace palisade::dialog
