// Owner routing: a message is scanned where it arrived and handled by the owner of its
// Call-ID, through the owner's inbox; a full inbox refuses new INVITEs at once and keeps
// messages of calls in progress.
#include "core/dialog/dispatcher.h"

#include <gtest/gtest.h>

#include "core/dialog/engine.h"
#include "core/dialog/identifiers.h"
#include "tests/support/engine_harness.h"

namespace palisade::dialog {
namespace {

using namespace palisade::testing;  // NOLINT: test-local brevity

std::string callIdOwnedBy(std::uint32_t owner, std::uint32_t workers, const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string id = prefix + std::to_string(i);
    if (ownerOf(id, workers) == owner) return id;
  }
}

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest() {
    auto config = config::defaultConfig().value();
    for (std::uint32_t i = 0; i < 2; ++i) {
      workers_.push_back(std::make_unique<event::Worker>(i, 64));
      engines_.push_back(
          std::make_unique<Engine>(i, networks_[i], clocks_[i], metrics_.shard(i), config, shared_));
    }
    dispatcher_ = std::make_unique<Dispatcher>(0, metrics_.shard(0), sip::Limits{});
    dispatcher_->setOwners({{workers_[0].get(), engines_[0].get()}, {workers_[1].get(), engines_[1].get()}});
  }
  ~DispatcherTest() override {
    for (auto& w : workers_) w->stop();
    for (auto& w : workers_) w->join();
  }
  // Runs worker 1 until its inbox and posted work are done, then stops it again.
  void drainWorker1() {
    workers_[1]->start();
    auto done = std::make_shared<std::atomic<bool>>(false);
    workers_[1]->control([done] { done->store(true); });
    while (!done->load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    workers_[1]->stop();
    workers_[1]->join();
  }

  stats::Metrics metrics_{2};
  policy::SharedCounters shared_;
  ManualClock clocks_[2];
  FakeNetwork networks_[2];
  std::vector<std::unique_ptr<event::Worker>> workers_;
  std::vector<std::unique_ptr<Engine>> engines_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

TEST_F(DispatcherTest, TheOwnerHandlesTheMessage) {
  PeerDialog mine = callerPeer(callIdOwnedBy(0, 2, "here-"));
  dispatcher_->onPacket(mine.flow, makeInvite(mine, "z9hG4bK-d0"), true);
  EXPECT_EQ(engines_[0]->activeCalls(), 1u);  // handled inline: this worker owns it
  PeerDialog theirs = callerPeer(callIdOwnedBy(1, 2, "there-"));
  dispatcher_->onPacket(theirs.flow, makeInvite(theirs, "z9hG4bK-d1"), true);
  EXPECT_EQ(engines_[1]->activeCalls(), 0u);  // queued for worker 1
  drainWorker1();
  EXPECT_EQ(engines_[1]->activeCalls(), 1u);
  ASSERT_FALSE(networks_[1].sent.empty());
  EXPECT_NE(networks_[1].sent.front().bytes.find("SIP/2.0 100 Trying"), std::string::npos);
}

TEST_F(DispatcherTest, BytesThatAreNotSipAreCountedAndDropped) {
  dispatcher_->onPacket(udpFlow(net::Side::Public, "127.0.0.2", 5061), std::string("\x16\x03\x01 hello"),
                        true);
  EXPECT_EQ(metrics_.total(stats::Counter::ParseErrors), 1u);
  EXPECT_TRUE(networks_[0].sent.empty());
}

TEST_F(DispatcherTest, StreamFaultsAreAnsweredHere) {
  PeerDialog caller = callerPeer(callIdOwnedBy(1, 2, "fault-"));
  net::Flow over_tcp = caller.flow;
  over_tcp.transport = net::Transport::Tcp;
  over_tcp.conn_id = 5;
  std::string bad = makeInvite(caller, "z9hG4bK-f");
  dispatcher_->onStreamFault(over_tcp, std::move(bad), 400, "Missing Content-Length");
  ASSERT_EQ(networks_[0].sent.size(), 1u);  // the receiving worker owns the connection
  EXPECT_NE(networks_[0].sent.front().bytes.find("SIP/2.0 400 Missing Content-Length"), std::string::npos);
}

TEST_F(DispatcherTest, StreamRequestsLearnTheirReconnectPortFromVia) {
  PeerDialog caller = callerPeer(callIdOwnedBy(0, 2, "via-"));
  net::Flow over_tcp = caller.flow;
  over_tcp.transport = net::Transport::Tcp;
  over_tcp.conn_id = 5;
  over_tcp.reconnect_port = 5060;
  dispatcher_->onPacket(over_tcp, makeInvite(caller, "z9hG4bK-v"), false);
  ASSERT_FALSE(networks_[0].sent.empty());
  EXPECT_EQ(networks_[0].sent.front().flow.reconnect_port, caller.port);  // the Via sent-by port
}

TEST_F(DispatcherTest, AFullInboxRefusesNewCallsAndKeepsCallsInProgress) {
  std::size_t queued = 0;
  for (int i = 0; queued < 64; ++i) {
    PeerDialog caller = callerPeer(callIdOwnedBy(1, 2, "fill-" + std::to_string(i) + "-"));
    dispatcher_->onPacket(caller.flow, makeInvite(caller, "z9hG4bK-fill-" + std::to_string(i)), true);
    ++queued;
  }
  EXPECT_EQ(metrics_.total(stats::Counter::InboxOverflows), 0u);
  PeerDialog late = callerPeer(callIdOwnedBy(1, 2, "late-"));
  dispatcher_->onPacket(late.flow, makeInvite(late, "z9hG4bK-late"), true);
  EXPECT_EQ(metrics_.total(stats::Counter::InboxOverflows), 1u);
  EXPECT_EQ(metrics_.total(stats::Counter::Rejected503), 1u);
  ASSERT_EQ(networks_[0].sent.size(), 1u);  // refused statelessly by the receiving worker
  EXPECT_NE(networks_[0].sent.front().bytes.find("SIP/2.0 503"), std::string::npos);
  EXPECT_NE(networks_[0].sent.front().bytes.find("Retry-After:"), std::string::npos);
  // An in-dialog request of a call in progress takes the bounded posted path instead.
  PeerDialog in_dialog = callerPeer(callIdOwnedBy(1, 2, "bye-"));
  in_dialog.remote_tag = "x";
  dispatcher_->onPacket(in_dialog.flow, makeRequest(in_dialog, "BYE", "z9hG4bK-bye"), true);
  EXPECT_EQ(metrics_.total(stats::Counter::InboxOverflows), 2u);
  EXPECT_EQ(networks_[0].sent.size(), 1u);
  drainWorker1();
  EXPECT_EQ(engines_[1]->activeCalls(), 64u);
  bool answered_bye = false;
  for (const auto& packet : networks_[1].sent)
    answered_bye = answered_bye || packet.bytes.find("CSeq: 2 BYE") != std::string::npos;
  EXPECT_TRUE(answered_bye);
}

}  // namespace
}  // namespace palisade::dialog
