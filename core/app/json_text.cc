#include "core/app/json_text.h"

#include <cstdint>

namespace palisade::app {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed UTF-8 sequence at text[i] (Unicode 15 table 3-7), or 0 with
// `skip` set to the maximal ill-formed prefix to replace by one U+FFFD.
std::size_t wellFormedLength(std::string_view text, std::size_t i, std::size_t& skip) {
  auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[i + k]); };
  std::uint8_t lead = byte(0);
  std::size_t length = 0;
  std::uint8_t second_min = 0x80;
  std::uint8_t second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;  // overlong
    if (lead == 0xED) second_max = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;  // overlong
    if (lead == 0xF4) second_max = 0x8F;  // above U+10FFFF
  } else {
    skip = 1;
    return 0;
  }
  for (std::size_t k = 1; k < length; ++k) {
    std::uint8_t lo = k == 1 ? second_min : 0x80;
    std::uint8_t hi = k == 1 ? second_max : 0xBF;
    if (i + k >= text.size() || byte(k) < lo || byte(k) > hi) {
      skip = k;
      return 0;
    }
  }
  return length;
}

}  // namespace

void appendJsonString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<std::uint8_t>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7F) {
            out += "\\u00";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    std::size_t skip = 0;
    std::size_t length = wellFormedLength(text, i, skip);
    if (length == 0) {
      out += kReplacement;
      i += skip;
      continue;
    }
    std::string_view sequence = text.substr(i, length);
    if (sequence == "\xE2\x80\xA8") {
      out += "\\u2028";
    } else if (sequence == "\xE2\x80\xA9") {
      out += "\\u2029";
    } else {
      out += sequence;
    }
    i += length;
  }
  out.push_back('"');
}

}  // namespace palisade::app
