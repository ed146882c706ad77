#pragma once
// Prefix lists kept in text files (the shipped high-risk ranges, an operator's own lists): one
// E.164 prefix per line, '+' optional, visual separators allowed, then optionally a label;
// '#' starts a comment. Errors name the file and line. Read on the control thread at start-up
// and reload; the table it gives is immutable.
#include <string>
#include <string_view>

#include "core/base/result.h"
#include "policy/fraud/prefix_table.h"

namespace palisade::policy::fraud {

// The label of each prefix (the rest of its line, trimmed; empty if none).
using LabelledPrefixes = PrefixTable<std::string>;

// `text` as read from `source` (used in error messages: "SOURCE:LINE: ...").
base::Result<LabelledPrefixes> parsePrefixList(std::string_view text, std::string_view source);
// Reads and parses `path`; files larger than 8 MiB are refused.
base::Result<LabelledPrefixes> loadPrefixFile(const std::string& path);

}  // namespace palisade::policy::fraud
