#include "media/relay/media_poller.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/fake_network.h"

namespace palisade::media {
namespace {

// A bound loopback UDP socket and a sender aimed at it.
class Datagrams {
 public:
  Datagrams() {
    receiver_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    sender_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(receiver_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t length = sizeof address_;
    ::getsockname(receiver_, reinterpret_cast<sockaddr*>(&address_), &length);
  }
  ~Datagrams() {
    ::close(receiver_);
    ::close(sender_);
  }
  Datagrams(const Datagrams&) = delete;
  Datagrams& operator=(const Datagrams&) = delete;
  int fd() const { return receiver_; }
  void send(int count = 1) {
    for (int i = 0; i < count; ++i) {
      char byte = static_cast<char>(i);
      ::sendto(sender_, &byte, 1, 0, reinterpret_cast<const sockaddr*>(&address_), sizeof address_);
    }
  }
  // Reads one datagram; false if none is queued.
  bool readOne() const {
    char byte;
    return ::recv(receiver_, &byte, 1, MSG_DONTWAIT) == 1;
  }

 private:
  int receiver_ = -1;
  int sender_ = -1;
  sockaddr_in address_{};
};

// Reads one datagram per offer (the poller's level-triggered contract) and records the offers.
class Recorder final : public ReadableSocket {
 public:
  struct Offer {
    std::uint8_t tag;
    std::uint32_t pass;
  };
  std::vector<const Datagrams*> sockets;  // by tag
  std::vector<Offer> offers;
  std::function<void(std::uint8_t)> also;  // run on every offer, after the read
  bool report_backlog = false;             // what onReadable answers

  ReadResult onReadable(std::uint8_t tag, const PollPass& pass) override {
    offers.push_back({tag, pass.number});
    const bool read = tag < sockets.size() && sockets[tag]->readOne();
    if (also) also(tag);
    return {read ? 1 : 0, report_backlog};
  }
};

class MediaPollerTest : public ::testing::Test {
 protected:
  // Runs the loop until `done` or the time is up.
  template <typename Done>
  bool runUntil(Done done, int ms = 1000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.run_for(std::chrono::milliseconds(2));
      io_.restart();
    }
    return done();
  }

  boost::asio::io_context io_;
  testing::ManualClock clock_;
};

TEST_F(MediaPollerTest, AnIdlePollerReadsTheFirstPacketAtOnce) {
  MediaPoller poller(io_, clock_);
  Datagrams socket;
  Recorder reader;
  reader.sockets = {&socket};
  auto handle = poller.add(socket.fd(), reader, 0);
  ASSERT_TRUE(handle.registered());
  EXPECT_EQ(poller.watched(), 1u);
  io_.poll();
  io_.restart();
  EXPECT_TRUE(reader.offers.empty());  // nothing sent, nothing offered
  socket.send();
  // Idle, the set is in the loop: the packet wakes it without waiting for a pass.
  io_.run_one_for(std::chrono::milliseconds(500));
  ASSERT_EQ(reader.offers.size(), 1u);
  EXPECT_EQ(reader.offers[0].tag, 0);
  poller.remove(handle, socket.fd());
  EXPECT_FALSE(handle.registered());
  EXPECT_EQ(poller.watched(), 0u);
}

TEST_F(MediaPollerTest, ABacklogIsOfferedAgainOnConsecutivePassesUntilItIsRead) {
  MediaPoller poller(io_, clock_);
  Datagrams socket;
  Recorder reader;
  reader.sockets.assign(4, &socket);
  auto handle = poller.add(socket.fd(), reader, 3);
  socket.send(5);
  ASSERT_TRUE(runUntil([&] { return reader.offers.size() >= 5; }));
  // One datagram read per offer, the rest left queued: offered on each following pass.
  for (std::size_t i = 1; i < reader.offers.size(); ++i) {
    EXPECT_EQ(reader.offers[i].pass, reader.offers[i - 1].pass + 1);
    EXPECT_EQ(reader.offers[i].tag, 3);
  }
  EXPECT_FALSE(socket.readOne());
  // Back to idle after a pass that finds nothing, and a later packet still wakes it.
  const auto before = reader.offers.size();
  io_.run_for(std::chrono::milliseconds(10));
  io_.restart();
  EXPECT_EQ(reader.offers.size(), before);
  socket.send();
  ASSERT_TRUE(runUntil([&] { return reader.offers.size() == before + 1; }));
  poller.remove(handle, socket.fd());
}

TEST_F(MediaPollerTest, APassThatLeavesABacklogIsFollowedAtOnce) {
  // 40 queued datagrams read one per pass: paced, that is 40 passes a millisecond apart at
  // least (a timer never fires early); a reader that reports its budget spent is served again
  // at once.
  auto timeFor = [this](bool backlog) {
    MediaPoller poller(io_, clock_);
    Datagrams socket;
    Recorder reader;
    reader.sockets = {&socket};
    reader.report_backlog = backlog;
    auto handle = poller.add(socket.fd(), reader, 0);
    socket.send(40);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(runUntil([&] { return reader.offers.size() >= 40; }, 3000));
    const auto took = std::chrono::steady_clock::now() - started;
    poller.remove(handle, socket.fd());
    io_.run_for(std::chrono::milliseconds(5));
    io_.restart();
    return took;
  };
  const auto paced = timeFor(false);
  const auto at_once = timeFor(true);
  EXPECT_GE(paced, std::chrono::milliseconds(39));
  EXPECT_LT(at_once * 2, paced);
}

TEST_F(MediaPollerTest, APassStopsAtItsPacketBudgetAndTheRestComeOnTheNextPasses) {
  // Readers that each claim 100 datagrams per read: a pass ends after the batch in which it has
  // read kPacketsPerPass, so the worker's other work is never held up for longer than that.
  constexpr int kSockets = 100;
  constexpr int kClaimed = 100;
  class Heavy final : public ReadableSocket {
   public:
    Heavy(const Datagrams& s, std::vector<std::uint32_t>& passes) : socket_(s), passes_(passes) {}
    ReadResult onReadable(std::uint8_t, const PollPass& pass) override {
      if (!socket_.readOne()) return {};
      passes_.push_back(pass.number);
      return {kClaimed, false};
    }

   private:
    const Datagrams& socket_;
    std::vector<std::uint32_t>& passes_;
  };
  MediaPoller poller(io_, clock_);
  std::vector<std::unique_ptr<Datagrams>> sockets;
  std::vector<std::unique_ptr<Heavy>> readers;
  std::vector<MediaPoller::Handle> handles;
  std::vector<std::uint32_t> passes;
  for (int i = 0; i < kSockets; ++i) {
    sockets.push_back(std::make_unique<Datagrams>());
    readers.push_back(std::make_unique<Heavy>(*sockets.back(), passes));
    handles.push_back(poller.add(sockets.back()->fd(), *readers.back(), 0));
  }
  for (auto& s : sockets) s->send();
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(runUntil([&] { return passes.size() == kSockets; }));
  const int per_batch_budget = (MediaPoller::kPacketsPerPass + kClaimed - 1) / kClaimed;
  const int per_pass = std::max(per_batch_budget, MediaPoller::kBatch);
  std::map<std::uint32_t, int> reads_in;
  for (auto number : passes) reads_in[number]++;
  EXPECT_GE(reads_in.size(), static_cast<std::size_t>((kSockets + per_pass - 1) / per_pass));
  for (const auto& [number, reads] : reads_in) EXPECT_LE(reads, per_pass) << "pass " << number;
  for (int i = 0; i < kSockets; ++i) poller.remove(handles[i], sockets[i]->fd());
}

TEST_F(MediaPollerTest, ASocketRemovedDuringAPassIsNotOfferedFromThatPass) {
  MediaPoller poller(io_, clock_);
  Datagrams first, second;
  Recorder reader;
  reader.sockets = {&first, &second};
  MediaPoller::Handle handles[2] = {poller.add(first.fd(), reader, 0), poller.add(second.fd(), reader, 1)};
  // Whichever is offered first closes the other, as a call ending mid-pass would.
  reader.also = [&](std::uint8_t tag) {
    const int other = 1 - tag;
    poller.remove(handles[other], (other == 0 ? first : second).fd());
  };
  first.send();
  second.send();
  // Both are ready before the loop runs: one pass returns both events.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(runUntil([&] { return !reader.offers.empty(); }));
  io_.run_for(std::chrono::milliseconds(20));
  ASSERT_EQ(reader.offers.size(), 1u);
  EXPECT_EQ(poller.watched(), 1u);
  // The survivor's slot carries on; a stale handle's removal does nothing.
  const int survivor = reader.offers[0].tag;
  MediaPoller::Handle stale = handles[1 - survivor];
  poller.remove(stale, (1 - survivor == 0 ? first : second).fd());
  EXPECT_EQ(poller.watched(), 1u);
  poller.remove(handles[survivor], (survivor == 0 ? first : second).fd());
  EXPECT_EQ(poller.watched(), 0u);
}

TEST_F(MediaPollerTest, AReusedSlotIgnoresItsFormerHandle) {
  MediaPoller poller(io_, clock_);
  Datagrams a, b;
  Recorder reader;
  reader.sockets = {&a, &b};
  auto old_handle = poller.add(a.fd(), reader, 0);
  auto copy = old_handle;
  poller.remove(old_handle, a.fd());
  auto new_handle = poller.add(b.fd(), reader, 1);
  EXPECT_EQ(new_handle.slot, copy.slot);
  EXPECT_NE(new_handle.generation, copy.generation);
  poller.remove(copy, b.fd());  // the former owner's handle: not this registration
  EXPECT_EQ(poller.watched(), 1u);
  b.send();
  ASSERT_TRUE(runUntil([&] { return !reader.offers.empty(); }));
  EXPECT_EQ(reader.offers[0].tag, 1);
  poller.remove(new_handle, b.fd());
}

TEST_F(MediaPollerTest, ARefusedDescriptorIsNotRegistered) {
  MediaPoller poller(io_, clock_);
  Recorder reader;
  EXPECT_FALSE(poller.add(-1, reader, 0).registered());
  EXPECT_EQ(poller.watched(), 0u);
  Datagrams socket;
  reader.sockets = {&socket};
  auto handle = poller.add(socket.fd(), reader, 0);
  EXPECT_TRUE(handle.registered());  // the refused slot is free again and reused
  EXPECT_EQ(handle.slot, 0u);
  poller.remove(handle, socket.fd());
}

TEST_F(MediaPollerTest, ManyReadySocketsAreAllServedAcrossPasses) {
  MediaPoller poller(io_, clock_);
  constexpr int kSockets = 600;  // more than one epoll_wait batch
  std::vector<std::unique_ptr<Datagrams>> sockets;
  std::vector<MediaPoller::Handle> handles;
  std::vector<int> served(kSockets, 0);
  class PerSocket final : public ReadableSocket {
   public:
    PerSocket(const Datagrams& s, int& count) : socket_(s), count_(count) {}
    ReadResult onReadable(std::uint8_t, const PollPass&) override {
      if (!socket_.readOne()) return {};
      ++count_;
      return {1, false};
    }

   private:
    const Datagrams& socket_;
    int& count_;
  };
  std::vector<std::unique_ptr<PerSocket>> readers;
  for (int i = 0; i < kSockets; ++i) {
    sockets.push_back(std::make_unique<Datagrams>());
    readers.push_back(std::make_unique<PerSocket>(*sockets.back(), served[i]));
    handles.push_back(poller.add(sockets.back()->fd(), *readers.back(), 0));
    ASSERT_TRUE(handles.back().registered());
  }
  for (auto& s : sockets) s->send(2);
  auto all = [&] {
    for (int n : served) {
      if (n != 2) return false;
    }
    return true;
  };
  EXPECT_TRUE(runUntil(all, 3000));
  for (int i = 0; i < kSockets; ++i) poller.remove(handles[i], sockets[i]->fd());
}

}  // namespace
}  // namespace palisade::media
