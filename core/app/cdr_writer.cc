#include "core/app/cdr_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>

#include <fmt/format.h>

#include "core/app/json_text.h"
#include "core/base/log.h"

namespace palisade::app {

namespace {

constexpr std::size_t kDrainBatch = 4096;        // records per turn of the control loop
constexpr std::size_t kWriteChunk = 256 * 1024;  // bytes per write()
constexpr std::int64_t kMsPerDay = 86'400'000;

std::size_t powerOfTwoAtLeast(std::size_t n) {
  std::size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

int openAppend(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

void field(std::string& out, std::string_view name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  appendJsonString(out, value);
}

template <typename T>
void number(std::string& out, std::string_view name, T value) {
  fmt::format_to(std::back_inserter(out), ",\"{}\":{}", name, value);
}

void timeField(std::string& out, std::string_view name, std::int64_t unix_ms) {
  out += ",\"";
  out += name;
  if (unix_ms > 0) {
    out += "\":\"";
    out += isoUtcMillis(unix_ms);
    out += "\"";
  } else {
    out += "\":null";
  }
  number(out, std::string(name) + "_ms", unix_ms);
}

}  // namespace

std::string isoUtcMillis(std::int64_t unix_ms) {
  // Days to civil date (H. Hinnant's algorithm), valid for every positive int64 of ms.
  std::int64_t days = unix_ms / kMsPerDay;
  std::int64_t of_day = unix_ms % kMsPerDay;
  std::int64_t z = days + 719468;
  std::int64_t era = z / 146097;
  std::int64_t doe = z - era * 146097;
  std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  std::int64_t mp = (5 * doy + 2) / 153;
  std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", year, month, day, of_day / 3'600'000,
                     of_day / 60'000 % 60, of_day / 1000 % 60, of_day % 1000);
}

std::string decimalFromMicros(std::int64_t micros) {
  // Through unsigned: the magnitude of INT64_MIN does not fit an int64.
  std::uint64_t magnitude =
      micros < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(micros) : static_cast<std::uint64_t>(micros);
  return fmt::format("{}{}.{:06}", micros < 0 ? "-" : "", magnitude / 1'000'000, magnitude % 1'000'000);
}

std::string formatCdrLine(const dialog::CallRecord& r) {
  std::string out;
  out.reserve(768);
  out += "{\"call_id\":";
  appendJsonString(out, r.call_id);
  field(out, "from", r.from);
  field(out, "to", r.to);
  field(out, "destination", r.destination);
  field(out, "destination_class", r.destination_class);
  field(out, "source", r.source);
  field(out, "auth", r.auth);
  field(out, "source_address", r.source_address);
  field(out, "transport", r.transport);
  timeField(out, "start", r.start_ms);
  timeField(out, "answer", r.answer_ms);
  timeField(out, "end", r.end_ms);
  // Billable time: from the answer to the end; 0 for a call never answered.
  std::int64_t duration = r.answer_ms > 0 && r.end_ms > r.answer_ms ? r.end_ms - r.answer_ms : 0;
  number(out, "duration_ms", duration);
  number(out, "final_status", r.final_status);
  field(out, "ended_by", r.ended_by);
  field(out, "end_reason", r.end_reason);
  number(out, "srtp_public", r.srtp_public);
  number(out, "srtp_pbx", r.srtp_pbx);
  number(out, "packets", r.packets);
  number(out, "bytes", r.bytes);
  number(out, "sequence_gaps", r.sequence_gaps);
  number(out, "srtp_auth_failures", r.srtp_auth_failures);
  out += ",\"cost\":\"";
  out += decimalFromMicros(r.cost_micros);
  out += "\"";
  field(out, "decision", r.decision);
  field(out, "rule", r.rule);
  out += "}";
  return out;
}

class CdrWriter::WorkerSink final : public dialog::CallRecordSink {
 public:
  WorkerSink(CdrWriter& writer, stats::Shard& shard) : writer_(writer), shard_(shard) {}
  void write(dialog::CallRecord&& record) override {
    if (!writer_.tryWrite(std::move(record))) shard_.add(stats::Counter::CdrRecordsDropped);
  }

 private:
  CdrWriter& writer_;
  stats::Shard& shard_;
};

base::Result<std::unique_ptr<CdrWriter>> CdrWriter::open(boost::asio::io_context& control, std::string path,
                                                         stats::Shard& control_shard,
                                                         CdrWriterOptions options) {
  int fd = openAppend(path);
  if (fd < 0) return base::Error{fmt::format("cdr: cannot open {}: {}", path, std::strerror(errno))};
  std::unique_ptr<CdrWriter> writer(new CdrWriter(control, std::move(path), fd, control_shard, options));
  writer->armTimer(writer->options_.drain_interval);
  return writer;
}

CdrWriter::CdrWriter(boost::asio::io_context& control, std::string path, int fd, stats::Shard& control_shard,
                     CdrWriterOptions options)
    : path_(std::move(path)),
      fd_(fd),
      control_shard_(control_shard),
      options_(options),
      queue_(powerOfTwoAtLeast(options.queue_capacity)),
      timer_(control) {}

CdrWriter::~CdrWriter() {
  stop();
  flush();
  ::close(fd_);
}

std::unique_ptr<dialog::CallRecordSink> CdrWriter::sinkFor(stats::Shard& worker_shard) {
  return std::make_unique<WorkerSink>(*this, worker_shard);
}

bool CdrWriter::tryWrite(dialog::CallRecord&& record) {
  auto item = std::make_unique<dialog::CallRecord>(std::move(record));
  return queue_.push(item);
}

// A timer rather than a wake-up per batch: CDRs tolerate 100 ms of latency, so workers pay no
// syscall or flag for them, and at 65,536 slots the queue fills only above ~650,000 records/s.
// A batch per turn keeps the control thread responsive (signals, /metrics) under a backlog.
void CdrWriter::armTimer(std::chrono::milliseconds delay) {
  if (stopped_) return;
  timer_.expires_after(delay);
  timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
    if (ec || alive.expired() || stopped_) return;
    bool more = drain(kDrainBatch);
    armTimer(more ? std::chrono::milliseconds(0) : options_.drain_interval);
  });
}

bool CdrWriter::drain(std::size_t max_records) {
  control_thread_.check("CdrWriter");
  buffer_.clear();
  line_ends_.clear();
  std::size_t taken = 0;
  while (taken < max_records) {
    std::unique_ptr<dialog::CallRecord> record = queue_.pop();
    if (record == nullptr) break;
    ++taken;
    buffer_ += formatCdrLine(*record);
    buffer_.push_back('\n');
    line_ends_.push_back(buffer_.size());
    if (buffer_.size() >= kWriteChunk) {
      writeLines();
      buffer_.clear();
      line_ends_.clear();
    }
  }
  if (!line_ends_.empty()) writeLines();
  return taken == max_records;
}

void CdrWriter::writeLines() {
  std::size_t offset = 0;
  int error = 0;
  if (torn_line_) {
    ssize_t n;
    do {
      n = ::write(fd_, "\n", 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1) {
      torn_line_ = false;
    } else {
      error = n < 0 ? errno : ENOSPC;
    }
  }
  while (error == 0 && offset < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + offset, buffer_.size() - offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : ENOSPC;
      break;
    }
    offset += static_cast<std::size_t>(n);
  }
  std::size_t written = 0;
  while (written < line_ends_.size() && line_ends_[written] <= offset) ++written;
  if (written > 0) control_shard_.add(stats::Counter::CdrRecordsWritten, written);
  if (error == 0) return;
  std::size_t boundary = written == 0 ? 0 : line_ends_[written - 1];
  if (offset != boundary) torn_line_ = true;
  noteWriteError(error, line_ends_.size() - written);
}

void CdrWriter::noteWriteError(int error, std::uint64_t dropped) {
  control_shard_.add(stats::Counter::CdrRecordsDropped, dropped);
  dropped_since_log_ += dropped;
  auto now = std::chrono::steady_clock::now();
  if (error_logged_ && now - last_error_log_ < options_.error_log_interval) return;
  LOG_WARN("cdr: cannot write {}: {}; {} record(s) dropped since the last warning", path_,
           std::strerror(error), dropped_since_log_);
  error_logged_ = true;
  last_error_log_ = now;
  dropped_since_log_ = 0;
}

void CdrWriter::reopen() {
  control_thread_.check("CdrWriter");
  int fd = openAppend(path_);
  if (fd < 0) {
    LOG_WARN("cdr: cannot reopen {}: {}; still writing to the old file", path_, std::strerror(errno));
    return;
  }
  // Records still queued go to the new file: logrotate may compress the old one at once.
  ::close(fd_);
  fd_ = fd;
  torn_line_ = false;
  LOG_INFO("cdr: reopened {}", path_);
}

void CdrWriter::flush() {
  while (drain(kDrainBatch)) {
  }
}

void CdrWriter::stop() {
  stopped_ = true;
  timer_.cancel();
}

}  // namespace palisade::app
