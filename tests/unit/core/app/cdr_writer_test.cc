#include "core/app/cdr_writer.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/stats/metrics.h"
#include "tests/support/json_check.h"
#include "tests/support/test_certs.h"

namespace palisade::app {
namespace {

using stats::Counter;

dialog::CallRecord sampleRecord() {
  dialog::CallRecord r;
  r.call_id = "a84b4c76e66710@pc33.example.com";
  r.from = "2001";
  r.to = "011 44 20 7946 0018";
  r.destination = "+442079460018";
  r.destination_class = "international";
  r.source = "user:2001";
  r.auth = "digest";
  r.source_address = "192.0.2.10:5060";
  r.transport = "udp";
  r.start_ms = 1709210096789;
  r.answer_ms = 1709210101000;
  r.end_ms = 1709210161500;
  r.final_status = 200;
  r.ended_by = "caller";
  r.end_reason = "bye";
  r.srtp_public = true;
  r.srtp_pbx = false;
  r.packets = 6000;
  r.bytes = 1032000;
  r.sequence_gaps = 3;
  r.srtp_auth_failures = 1;
  r.cost_micros = 120500;
  r.decision = "allowed";
  r.rule = "user:2001 allow +44";
  return r;
}

std::vector<std::string> lines(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(testing::readFile(path));
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(CdrFormat, EveryField) {
  EXPECT_EQ(
      formatCdrLine(sampleRecord()),
      R"({"call_id":"a84b4c76e66710@pc33.example.com","from":"2001","to":"011 44 20 7946 0018",)"
      R"("destination":"+442079460018","destination_class":"international","source":"user:2001",)"
      R"("auth":"digest","source_address":"192.0.2.10:5060","transport":"udp",)"
      R"("start":"2024-02-29T12:34:56.789Z","start_ms":1709210096789,)"
      R"("answer":"2024-02-29T12:35:01.000Z","answer_ms":1709210101000,)"
      R"("end":"2024-02-29T12:36:01.500Z","end_ms":1709210161500,"duration_ms":60500,)"
      R"("final_status":200,"ended_by":"caller","end_reason":"bye","srtp_public":true,"srtp_pbx":false,)"
      R"("packets":6000,"bytes":1032000,"sequence_gaps":3,"srtp_auth_failures":1,"cost":"0.120500",)"
      R"("decision":"allowed","rule":"user:2001 allow +44"})");
}

TEST(CdrFormat, RefusedCallHasNoAnswerAndNoDuration) {
  dialog::CallRecord r;
  r.start_ms = 1709210096789;
  r.end_ms = 1709210096790;
  r.final_status = 403;
  std::string line = formatCdrLine(r);
  EXPECT_NE(line.find(R"("answer":null,"answer_ms":0,)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("duration_ms":0,)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("cost":"0.000000")"), std::string::npos) << line;
  EXPECT_TRUE(testing::isValidJson(line));
}

TEST(CdrFormat, Times) {
  EXPECT_EQ(isoUtcMillis(1), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(isoUtcMillis(951782400000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(isoUtcMillis(951868799999), "2000-02-29T23:59:59.999Z");
  EXPECT_EQ(isoUtcMillis(1709210096789), "2024-02-29T12:34:56.789Z");
  EXPECT_EQ(isoUtcMillis(253402300799999), "9999-12-31T23:59:59.999Z");
}

TEST(CdrFormat, CostFromMicros) {
  EXPECT_EQ(decimalFromMicros(0), "0.000000");
  EXPECT_EQ(decimalFromMicros(1234567), "1.234567");
  EXPECT_EQ(decimalFromMicros(-5), "-0.000005");
  EXPECT_EQ(decimalFromMicros(std::numeric_limits<std::int64_t>::max()), "9223372036854.775807");
  EXPECT_EQ(decimalFromMicros(std::numeric_limits<std::int64_t>::min()), "-9223372036854.775808");
}

TEST(CdrFormat, HostileStringsStayValidJson) {
  using namespace std::string_literals;  // the value holds a NUL
  dialog::CallRecord r = sampleRecord();
  r.from = "\"Mallory\" <sip:x\",\"decision\":\"allowed\"}\n{\"call_id\":\"forged@evil>";
  r.to = "00\\\x00\x01\x1b[31m\r\n\t\x7f\xFF\xFE\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80\xE2\x82"s;
  r.call_id = "\xE2\x80\xA8</script>";
  r.rule = "high-risk +881 \xF0\x9F";
  std::string line = formatCdrLine(r);
  std::string why;
  EXPECT_TRUE(testing::isValidJson(line, &why)) << why << ": " << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
  // The forged member is text inside "from", not a second "decision".
  EXPECT_NE(line.find(R"("from":"\"Mallory\" <sip:x\",\"decision\":\"allowed\"}\n{\"call_id\":)"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find(R"("to":"00\\\u0000\u0001\u001b[31m\r\n\t\u007f)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("call_id":"\u2028</script>")"), std::string::npos) << line;
}

TEST(CdrFormat, ExtremeNumbersStayValidJson) {
  dialog::CallRecord r;
  r.start_ms = std::numeric_limits<std::int64_t>::min();
  r.answer_ms = std::numeric_limits<std::int64_t>::max();
  r.end_ms = -1;
  r.final_status = std::numeric_limits<int>::min();
  r.packets = std::numeric_limits<std::uint64_t>::max();
  r.cost_micros = std::numeric_limits<std::int64_t>::min();
  std::string line = formatCdrLine(r);
  std::string why;
  EXPECT_TRUE(testing::isValidJson(line, &why)) << why << ": " << line;
  EXPECT_NE(line.find(R"("start":null,)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("duration_ms":0,)"), std::string::npos) << line;
}

class CdrWriterTest : public ::testing::Test {
 protected:
  stats::Metrics metrics{4};
  testing::TempDir dir;
  boost::asio::io_context io;
  std::string path = dir.file("cdr.jsonl");

  std::unique_ptr<CdrWriter> open(CdrWriterOptions options = {}) {
    auto writer = CdrWriter::open(io, path, metrics.controlShard(), options);
    EXPECT_TRUE(writer.ok()) << (writer.ok() ? "" : writer.error().message);
    return writer.ok() ? std::move(writer.value()) : nullptr;
  }

  static dialog::CallRecord record(const std::string& call_id) {
    dialog::CallRecord r = sampleRecord();
    r.call_id = call_id;
    return r;
  }
};

TEST_F(CdrWriterTest, CreatesTheFileWithMode0640AndAppends) {
  dir.write("cdr.jsonl", "{\"earlier\":1}\n");
  auto writer = open();
  ASSERT_NE(writer, nullptr);
  writer->sinkFor(metrics.shard(0))->write(record("one"));
  writer->flush();
  auto got = lines(path);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "{\"earlier\":1}");
  EXPECT_EQ(got[1], formatCdrLine(record("one")));
  EXPECT_EQ(metrics.total(Counter::CdrRecordsWritten), 1u);

  std::string fresh = dir.file("fresh.jsonl");
  auto second = CdrWriter::open(io, fresh, metrics.controlShard());
  ASSERT_TRUE(second.ok());
  struct stat st {};
  ASSERT_EQ(::stat(fresh.c_str(), &st), 0);
  mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0640u & ~mask);
}

TEST_F(CdrWriterTest, OpenFailureNamesThePath) {
  auto writer = CdrWriter::open(io, dir.file("missing/cdr.jsonl"), metrics.controlShard());
  ASSERT_FALSE(writer.ok());
  EXPECT_NE(writer.error().message.find(dir.file("missing/cdr.jsonl")), std::string::npos);
  EXPECT_NE(writer.error().message.find("No such file"), std::string::npos) << writer.error().message;
}

TEST_F(CdrWriterTest, TheTimerDrainsTheQueue) {
  auto writer = open({.drain_interval = std::chrono::milliseconds(20)});
  ASSERT_NE(writer, nullptr);
  auto sink = writer->sinkFor(metrics.shard(1));
  sink->write(record("timer-1"));
  sink->write(record("timer-2"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (metrics.total(Counter::CdrRecordsWritten) < 2 && std::chrono::steady_clock::now() < deadline)
    io.run_for(std::chrono::milliseconds(10));
  EXPECT_EQ(lines(path).size(), 2u);
  EXPECT_EQ(metrics.total(Counter::CdrRecordsWritten), 2u);
}

TEST_F(CdrWriterTest, StopLeavesTheIoContextWithoutWork) {
  auto writer = open({.drain_interval = std::chrono::milliseconds(20)});
  ASSERT_NE(writer, nullptr);
  writer->stop();
  auto start = std::chrono::steady_clock::now();
  io.run_for(std::chrono::seconds(3));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  // Records after stop() still reach the file through flush() (shutdown).
  writer->sinkFor(metrics.shard(0))->write(record("late"));
  writer->flush();
  EXPECT_EQ(lines(path).size(), 1u);
}

TEST_F(CdrWriterTest, AFullQueueCountsDropsOnTheWorkersShard) {
  auto writer = open({.queue_capacity = 4});
  ASSERT_NE(writer, nullptr);
  auto sink = writer->sinkFor(metrics.shard(2));
  for (int i = 0; i < 10; ++i) sink->write(record("full-" + std::to_string(i)));
  EXPECT_EQ(metrics.shard(2).counters[static_cast<std::size_t>(Counter::CdrRecordsDropped)].load(), 6u);
  EXPECT_FALSE(writer->tryWrite(record("direct")));
  writer->flush();
  auto got = lines(path);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], formatCdrLine(record("full-0")));
  EXPECT_EQ(got[3], formatCdrLine(record("full-3")));
  EXPECT_EQ(metrics.total(Counter::CdrRecordsWritten), 4u);
  EXPECT_EQ(metrics.total(Counter::CdrRecordsDropped), 6u);
  // Room again once drained.
  EXPECT_TRUE(writer->tryWrite(record("after")));
}

TEST_F(CdrWriterTest, ReopenAfterRenameStartsANewFile) {
  auto writer = open();
  ASSERT_NE(writer, nullptr);
  auto sink = writer->sinkFor(metrics.shard(0));
  for (int i = 0; i < 3; ++i) sink->write(record("before-" + std::to_string(i)));
  writer->flush();
  // logrotate: rename, then SIGHUP.
  ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);
  sink->write(record("queued-at-rotation"));
  writer->reopen();
  sink->write(record("after"));
  writer->flush();
  auto old_lines = lines(path + ".1");
  auto new_lines = lines(path);
  ASSERT_EQ(old_lines.size(), 3u);
  EXPECT_EQ(old_lines[2], formatCdrLine(record("before-2")));
  ASSERT_EQ(new_lines.size(), 2u);
  EXPECT_EQ(new_lines[0], formatCdrLine(record("queued-at-rotation")));
  EXPECT_EQ(new_lines[1], formatCdrLine(record("after")));
}

TEST_F(CdrWriterTest, ReopenFailureKeepsTheOldFile) {
  std::string sub = dir.file("logs");
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  std::string file = sub + "/cdr.jsonl";
  auto opened = CdrWriter::open(io, file, metrics.controlShard());
  ASSERT_TRUE(opened.ok());
  auto& writer = opened.value();
  // The folder moves away: the path cannot be opened any more.
  ASSERT_EQ(std::rename(sub.c_str(), (sub + "-rotated").c_str()), 0);
  writer->reopen();  // the folder is gone: keeps writing to the open file
  writer->sinkFor(metrics.shard(0))->write(record("kept"));
  writer->flush();
  EXPECT_EQ(lines(sub + "-rotated/cdr.jsonl").size(), 1u);
  EXPECT_EQ(metrics.total(Counter::CdrRecordsWritten), 1u);
  EXPECT_EQ(metrics.total(Counter::CdrRecordsDropped), 0u);
}

TEST_F(CdrWriterTest, WriteErrorsCountDroppedRecordsAndDoNotThrow) {
  auto opened = CdrWriter::open(io, "/dev/full", metrics.controlShard());
  ASSERT_TRUE(opened.ok());
  auto& writer = opened.value();
  auto sink = writer->sinkFor(metrics.shard(3));
  for (int i = 0; i < 3; ++i) sink->write(record("lost-" + std::to_string(i)));
  writer->flush();
  for (int i = 0; i < 2; ++i) sink->write(record("lost-again-" + std::to_string(i)));
  writer->flush();
  EXPECT_EQ(metrics.total(Counter::CdrRecordsWritten), 0u);
  EXPECT_EQ(metrics.total(Counter::CdrRecordsDropped), 5u);
}

TEST_F(CdrWriterTest, DestructionWritesWhatIsQueued) {
  {
    auto writer = open();
    ASSERT_NE(writer, nullptr);
    writer->sinkFor(metrics.shard(0))->write(record("at-shutdown"));
  }
  auto got = lines(path);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], formatCdrLine(record("at-shutdown")));
}

// Four workers write at once while the control thread drains: every record arrives once,
// each line whole and valid. (Also run under TSan.)
TEST_F(CdrWriterTest, ConcurrentWritersAllArrive) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  auto writer = open({.drain_interval = std::chrono::milliseconds(5)});
  ASSERT_NE(writer, nullptr);
  std::vector<std::unique_ptr<dialog::CallRecordSink>> sinks;
  for (int t = 0; t < kThreads; ++t) sinks.push_back(writer->sinkFor(metrics.shard(t)));
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        dialog::CallRecord r = sampleRecord();
        r.call_id = "t" + std::to_string(t) + "-" + std::to_string(i);
        r.from = "caller \"" + std::to_string(t) + "\"\n";
        sinks[t]->write(std::move(r));
      }
      done.fetch_add(1);
    });
  }
  while (done.load() < kThreads) io.run_for(std::chrono::milliseconds(5));
  for (auto& thread : threads) thread.join();
  writer->flush();
  EXPECT_EQ(metrics.total(Counter::CdrRecordsDropped), 0u);
  EXPECT_EQ(metrics.total(Counter::CdrRecordsWritten), static_cast<std::uint64_t>(kThreads * kPerThread));
  auto got = lines(path);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::set<std::string> ids;
  std::string why;
  for (const auto& line : got) {
    ASSERT_TRUE(testing::isValidJson(line, &why)) << why << ": " << line;
    std::size_t start = line.find("\"call_id\":\"") + 11;
    ids.insert(line.substr(start, line.find('"', start) - start));
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_TRUE(ids.count("t3-4999"));
}

}  // namespace
}  // namespace palisade::app
