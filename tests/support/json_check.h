#pragma once
// A strict RFC 8259 checker for tests and fuzz targets: the whole text must be one JSON value,
// strings must be UTF-8 without raw control characters, and \u escapes must not leave a lone
// surrogate. It only validates; it does not build a document.
#include <string>
#include <string_view>

namespace palisade::testing {

// True when `text` is exactly one valid JSON value (surrounding whitespace allowed). On
// failure, `why` (if given) says what is wrong and at which byte offset.
bool isValidJson(std::string_view text, std::string* why = nullptr);

}  // namespace palisade::testing
