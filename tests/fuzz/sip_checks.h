#pragma once
// Shared by the fuzz targets: runs every header view over a scanned message and checks the
// invariants the rest of Palisade relies on. A violated invariant aborts, which libFuzzer
// reports as a crash with the input that caused it.
#include <string_view>

#include "core/sip/message.h"

namespace palisade::fuzz {

// Aborts with `what` when `condition` is false.
void require(bool condition, const char* what);

// True when `part` lies inside `whole` (an empty view always does).
bool within(std::string_view part, std::string_view whole);

// Every accessor of `message`, and parseUri / parseNameAddr / parseVia / splitList /
// paramValue / parseUnsigned on every header value, with their results checked to be views
// into the received bytes.
void exerciseMessage(const sip::Message& message);

}  // namespace palisade::fuzz
