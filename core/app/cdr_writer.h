#pragma once
// The CDR file: one JSON line per call attempt (issue 10, item 8). Workers hand records to the
// control thread through a bounded lock-free queue; the control thread formats and appends them
// to the file, and reopens it on SIGHUP for logrotate. Nothing on a worker blocks or locks.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/base/owner_thread.h"
#include "core/base/result.h"
#include "core/dialog/call_record.h"
#include "core/event/inbox.h"
#include "core/stats/metrics.h"

namespace palisade::app {

// One CDR line, without the trailing newline: every CallRecord field, times as ISO-8601 UTC
// with milliseconds (null when 0) and as Unix ms, the cost as a decimal string. Any bytes in
// the record's strings give valid JSON (see appendJsonString). Pure, any thread.
std::string formatCdrLine(const dialog::CallRecord& record);

// "2024-05-01T12:34:56.789Z" for Unix time in ms (> 0). Pure, any thread.
std::string isoUtcMillis(std::int64_t unix_ms);

// Millionths as a decimal string of units: 1234567 → "1.234567", -5 → "-0.000005".
std::string decimalFromMicros(std::int64_t micros);

struct CdrWriterOptions {
  std::size_t queue_capacity = 65536;             // records in flight; rounded up to a power of two
  std::chrono::milliseconds drain_interval{100};  // how often the control thread empties the queue
  std::chrono::seconds error_log_interval{60};    // at most one write-error warning per interval
};

class CdrWriter {
 public:
  // Control thread, before or while it runs `control`. Opens `path` (O_APPEND, created 0640)
  // and starts the drain timer. The error names the path and the OS reason.
  static base::Result<std::unique_ptr<CdrWriter>> open(boost::asio::io_context& control, std::string path,
                                                       stats::Shard& control_shard,
                                                       CdrWriterOptions options = {});
  // Control thread, before `control` is destroyed: writes what is queued, closes the file.
  ~CdrWriter();
  CdrWriter(const CdrWriter&) = delete;
  CdrWriter& operator=(const CdrWriter&) = delete;

  // A worker's sink: write() queues the record, and a full queue counts CdrRecordsDropped on
  // `worker_shard` (the worker's own). One per worker; it must not outlive the writer.
  std::unique_ptr<dialog::CallRecordSink> sinkFor(stats::Shard& worker_shard);

  // Any thread, lock-free, never blocks. False when the queue is full: the record is dropped
  // and the caller counts CdrRecordsDropped on its own shard.
  bool tryWrite(dialog::CallRecord&& record);

  // Control thread (SIGHUP, after logrotate renamed the file): opens `path` anew and closes the
  // old descriptor. Records still queued go to the new file. If the open fails, the old file
  // stays in use and a warning is logged.
  void reopen();

  // Control thread: formats and writes every record queued so far. For shutdown, after the
  // workers have stopped, so that nothing is lost.
  void flush();

  // Control thread: cancels the drain timer (the io_context then runs out of work from this
  // writer). flush() still works afterwards. Idempotent.
  void stop();

  const std::string& path() const { return path_; }

 private:
  class WorkerSink;
  CdrWriter(boost::asio::io_context& control, std::string path, int fd, stats::Shard& control_shard,
            CdrWriterOptions options);
  void armTimer(std::chrono::milliseconds delay);
  // Writes up to `max_records` queued records; true when the queue may hold more.
  bool drain(std::size_t max_records);
  // Appends buffer_ (whole lines ending at line_ends_) and counts what was written or lost.
  void writeLines();
  void noteWriteError(int error, std::uint64_t dropped);

  std::string path_;
  int fd_ = -1;
  stats::Shard& control_shard_;
  CdrWriterOptions options_;
  event::Inbox<dialog::CallRecord> queue_;
  std::string buffer_;
  std::vector<std::size_t> line_ends_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
  // A write that failed mid-line: the next write starts on a fresh line.
  bool torn_line_ = false;
  std::chrono::steady_clock::time_point last_error_log_{};
  bool error_logged_ = false;
  std::uint64_t dropped_since_log_ = 0;
  base::OwnerThread control_thread_;
  // Expires with the writer: a timer handler already queued when it died does nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace palisade::app
