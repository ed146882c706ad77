#pragma once
// JSON text from untrusted bytes (SIP From/To, Call-IDs): any input yields a valid RFC 8259
// string. Pure functions, any thread.
#include <string>
#include <string_view>

namespace palisade::app {

// Appends `text` to `out` as a quoted JSON string. Quotes, backslashes and control characters
// are escaped; U+2028/U+2029 too (JavaScript consumers); each ill-formed UTF-8 sequence (bad
// lead byte, truncated, overlong, surrogate, above U+10FFFF) becomes one U+FFFD.
void appendJsonString(std::string& out, std::string_view text);

}  // namespace palisade::app
