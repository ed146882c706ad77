#include "tests/support/json_check.h"

#include <cstdint>

namespace palisade::testing {

namespace {

class Checker {
 public:
  explicit Checker(std::string_view text) : s_(text) {}

  bool run(std::string* why) {
    skipSpace();
    bool ok = value(0);
    skipSpace();
    if (ok && i_ != s_.size()) ok = fail("trailing bytes");
    if (!ok && why != nullptr) *why = error_ + " at byte " + std::to_string(i_);
    return ok;
  }

 private:
  static constexpr int kMaxDepth = 64;

  bool fail(const char* what) {
    if (error_.empty()) error_ = what;
    return false;
  }
  bool atEnd() const { return i_ >= s_.size(); }
  char peek() const { return atEnd() ? '\0' : s_[i_]; }
  void skipSpace() {
    while (!atEnd() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return fail("bad literal");
    i_ += word.size();
    return true;
  }

  bool value(int depth) {
    if (depth > kMaxDepth) return fail("nested too deeply");
    switch (peek()) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  bool object(int depth) {
    ++i_;
    skipSpace();
    if (peek() == '}') {
      ++i_;
      return true;
    }
    for (;;) {
      skipSpace();
      if (peek() != '"') return fail("expected a member name");
      if (!string()) return false;
      skipSpace();
      if (peek() != ':') return fail("expected ':'");
      ++i_;
      skipSpace();
      if (!value(depth + 1)) return false;
      skipSpace();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() == '}') {
        ++i_;
        return true;
      }
      return fail("expected ',' or '}'");
    }
  }

  bool array(int depth) {
    ++i_;
    skipSpace();
    if (peek() == ']') {
      ++i_;
      return true;
    }
    for (;;) {
      skipSpace();
      if (!value(depth + 1)) return false;
      skipSpace();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() == ']') {
        ++i_;
        return true;
      }
      return fail("expected ',' or ']'");
    }
  }

  bool digits() {
    std::size_t start = i_;
    while (!atEnd() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }

  bool number() {
    if (peek() == '-') ++i_;
    if (peek() == '0') {
      ++i_;
    } else if (peek() >= '1' && peek() <= '9') {
      digits();
    } else {
      return fail("expected a value");
    }
    if (peek() == '.') {
      ++i_;
      if (!digits()) return fail("expected fraction digits");
    }
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      if (!digits()) return fail("expected exponent digits");
    }
    return true;
  }

  bool hex4(std::uint32_t& out) {
    if (s_.size() - i_ < 4) return fail("short \\u escape");
    out = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      out <<= 4;
      if (c >= '0' && c <= '9') {
        out |= static_cast<std::uint32_t>(c - '0');
      } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
        out |= static_cast<std::uint32_t>((c | 0x20) - 'a' + 10);
      } else {
        return fail("bad hex digit");
      }
    }
    return true;
  }

  // Decodes one UTF-8 code point by its bits, then rejects overlong forms, surrogates and
  // values above U+10FFFF.
  bool utf8() {
    auto lead = static_cast<std::uint8_t>(s_[i_]);
    int extra = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if ((lead & 0xE0) == 0xC0) {
      extra = 1, cp = lead & 0x1F, min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      extra = 2, cp = lead & 0x0F, min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      extra = 3, cp = lead & 0x07, min = 0x10000;
    } else {
      return fail("bad UTF-8 lead byte");
    }
    ++i_;
    for (int k = 0; k < extra; ++k) {
      if (atEnd() || (static_cast<std::uint8_t>(s_[i_]) & 0xC0) != 0x80) return fail("truncated UTF-8");
      cp = (cp << 6) | (static_cast<std::uint8_t>(s_[i_]) & 0x3F);
      ++i_;
    }
    if (cp < min) return fail("overlong UTF-8");
    if (cp >= 0xD800 && cp <= 0xDFFF) return fail("UTF-8 surrogate");
    if (cp > 0x10FFFF) return fail("UTF-8 above U+10FFFF");
    return true;
  }

  bool string() {
    ++i_;
    for (;;) {
      if (atEnd()) return fail("unterminated string");
      auto c = static_cast<std::uint8_t>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return fail("raw control character in a string");
      if (c >= 0x80) {
        if (!utf8()) return false;
        continue;
      }
      ++i_;
      if (c != '\\') continue;
      if (atEnd()) return fail("unterminated escape");
      char e = s_[i_++];
      if (e == 'u') {
        std::uint32_t unit = 0;
        if (!hex4(unit)) return false;
        if (unit >= 0xDC00 && unit <= 0xDFFF) return fail("lone low surrogate");
        if (unit >= 0xD800 && unit <= 0xDBFF) {
          std::uint32_t low = 0;
          if (s_.substr(i_, 2) != "\\u") return fail("lone high surrogate");
          i_ += 2;
          if (!hex4(low)) return false;
          if (low < 0xDC00 || low > 0xDFFF) return fail("lone high surrogate");
        }
      } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
        return fail("bad escape");
      }
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::string error_;
};

}  // namespace

bool isValidJson(std::string_view text, std::string* why) { return Checker(text).run(why); }

}  // namespace palisade::testing
