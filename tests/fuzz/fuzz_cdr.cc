// The CDR line formatter on hostile input: From, To and the Call-ID come from the network, so
// whatever bytes and numbers a record holds, its line must be one valid JSON object without a
// raw newline (one record, one line).
//
// Input: the bytes are cut into the record's string fields and numbers (FuzzedDataProvider).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/app/cdr_writer.h"
#include "core/app/json_text.h"
#include "tests/fuzz/sip_checks.h"
#include "tests/support/json_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using palisade::fuzz::require;
  FuzzedDataProvider input(data, size);
  palisade::dialog::CallRecord r;
  for (std::string* text :
       {&r.call_id, &r.from, &r.to, &r.destination, &r.destination_class, &r.source, &r.auth,
        &r.source_address, &r.transport, &r.ended_by, &r.end_reason, &r.decision, &r.rule}) {
    *text = input.ConsumeRandomLengthString(256);
  }
  r.start_ms = input.ConsumeIntegral<std::int64_t>();
  r.answer_ms = input.ConsumeIntegral<std::int64_t>();
  r.end_ms = input.ConsumeIntegral<std::int64_t>();
  r.final_status = input.ConsumeIntegral<int>();
  r.srtp_public = input.ConsumeBool();
  r.srtp_pbx = input.ConsumeBool();
  r.packets = input.ConsumeIntegral<std::uint64_t>();
  r.bytes = input.ConsumeIntegral<std::uint64_t>();
  r.sequence_gaps = input.ConsumeIntegral<std::uint64_t>();
  r.srtp_auth_failures = input.ConsumeIntegral<std::uint64_t>();
  r.cost_micros = input.ConsumeIntegral<std::int64_t>();
  std::string line = palisade::app::formatCdrLine(r);
  require(palisade::testing::isValidJson(line), "a CDR line is valid JSON");
  require(line.front() == '{' && line.find('\n') == std::string::npos,
          "a CDR line is one object on one line");

  std::string whole;
  palisade::app::appendJsonString(whole, std::string_view(reinterpret_cast<const char*>(data), size));
  require(palisade::testing::isValidJson(whole), "any bytes make a valid JSON string");
  return 0;
}
