// Calls across several real worker threads: messages arrive on any worker, are handed to the
// owner of their Call-ID through the lock-free inboxes, and every identifier Palisade makes
// leads a response back to the same owner. Run under TSan in CI.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <set>

#include "core/dialog/dispatcher.h"
#include "core/event/worker.h"
#include "policy/api/shared_counters.h"
#include "tests/support/engine_harness.h"

namespace palisade {
namespace {

using namespace palisade::testing;  // NOLINT: test-local brevity

// Records what every worker sends, with the sending worker's index. Test-only lock.
class SharedNetwork {
 public:
  struct Packet {
    std::uint32_t worker;
    net::Flow flow;
    std::string bytes;
  };
  class Port final : public net::Network {
   public:
    Port(SharedNetwork& shared, std::uint32_t worker) : shared_(shared), worker_(worker) {}
    void send(const net::Flow& flow, std::string&& bytes) override {
      std::lock_guard lock(shared_.mutex_);
      shared_.packets_.push_back({worker_, flow, std::move(bytes)});
      shared_.changed_.notify_all();
    }

   private:
    SharedNetwork& shared_;
    std::uint32_t worker_;
  };

  // Waits for a packet to `port` whose bytes contain `needle`; removes and returns it.
  std::optional<Packet> take(std::uint16_t port, const std::string& needle) {
    std::unique_lock lock(mutex_);
    std::optional<Packet> found;
    changed_.wait_for(lock, std::chrono::seconds(10), [&] {
      for (auto it = packets_.begin(); it != packets_.end(); ++it) {
        if (it->flow.remote.port == port && it->bytes.find(needle) != std::string::npos) {
          found = std::move(*it);
          packets_.erase(it);
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Packet> packets_;
};

class WorkersTest : public ::testing::TestWithParam<std::uint32_t> {
 protected:
  void SetUp() override { startWorkers(config::defaultConfig().value()); }

  // The daemon's wiring, without sockets: per worker an engine and a dispatcher that knows
  // every worker's engine.
  void startWorkers(std::shared_ptr<const config::Config> config) {
    workers_count_ = GetParam();
    metrics_ = std::make_unique<stats::Metrics>(workers_count_);
    std::vector<dialog::Dispatcher::Owner> owners;
    for (std::uint32_t i = 0; i < workers_count_; ++i) {
      workers_.push_back(std::make_unique<event::Worker>(i, 1024));
      ports_.push_back(std::make_unique<SharedNetwork::Port>(network_, i));
      engines_.push_back(std::make_unique<dialog::Engine>(i, *ports_.back(), workers_.back()->clock(),
                                                          metrics_->shard(i), config, shared_));
      dispatchers_.push_back(std::make_unique<dialog::Dispatcher>(i, metrics_->shard(i), sip::Limits{}));
      dialog::Engine* engine = engines_.back().get();
      workers_.back()->setTick([engine] { engine->runTimers(); });
      owners.push_back({workers_.back().get(), engine});
    }
    for (auto& d : dispatchers_) d->setOwners(owners);
    for (auto& w : workers_) w->start();
  }
  void TearDown() override {
    for (auto& w : workers_) w->stop();
    for (auto& w : workers_) w->join();
    engines_.clear();
  }

  // Delivers bytes as if worker `via` had received them (the kernel picks any worker).
  void receive(std::uint32_t via, const std::string& bytes, const net::Flow& flow) {
    std::uint32_t index = via % workers_count_;
    dialog::Dispatcher* dispatcher = dispatchers_[index].get();
    workers_[index]->control([dispatcher, bytes, flow] {
      std::string copy = bytes;
      dispatcher->onPacket(flow, std::move(copy), true);
    });
  }

  std::uint32_t workers_count_ = 1;
  std::unique_ptr<stats::Metrics> metrics_;
  policy::SharedCounters shared_;
  SharedNetwork network_;
  std::vector<std::unique_ptr<SharedNetwork::Port>> ports_;
  std::vector<std::unique_ptr<event::Worker>> workers_;
  std::vector<std::unique_ptr<dialog::Engine>> engines_;
  std::vector<std::unique_ptr<dialog::Dispatcher>> dispatchers_;
};

TEST_P(WorkersTest, CallsCompleteWhicheverWorkerReceivesTheirMessages) {
  constexpr int kCalls = 60;
  std::mt19937 pick(1234);
  const net::Flow pbx = udpFlow(net::Side::Pbx, "127.0.0.1", 5080);
  std::vector<PeerDialog> callers;
  for (int i = 0; i < kCalls; ++i) {
    callers.push_back(callerPeer("mw-call-" + std::to_string(i)));
    receive(pick(), makeInvite(callers.back(), "z9hG4bK-mw-" + std::to_string(i)), callers.back().flow);
  }
  for (int i = 0; i < kCalls; ++i) {
    PeerDialog& caller = callers[i];
    // The caller's INVITE is handled by the owner of its Call-ID, whoever received it.
    auto trying = network_.take(5061, "Call-ID: " + caller.call_id + "\r\n");
    ASSERT_TRUE(trying) << caller.call_id;
    EXPECT_EQ(trying->worker, dialog::ownerOf(caller.call_id, workers_count_));
    // A callee-leg INVITE (any call's: they are matched back through the 200 below).
    auto invite = network_.take(5080, "From: \"Peer\" <sip:alice@127.0.0.1>;tag=");
    ASSERT_TRUE(invite);
    auto b_invite = sip::Message::parse(invite->bytes, sip::Limits{}, true);
    receive(
        pick(),
        makeResponse(*b_invite, 200, "OK", "pbx-" + std::to_string(i), "sip:pbx@127.0.0.1:5080", kDefaultSdp),
        pbx);
    // Map the B-leg back to its caller through the 200 (Call-IDs differ by design).
    auto ok = network_.take(5061, "SIP/2.0 200 OK");
    ASSERT_TRUE(ok);
    auto a_ok = sip::Message::parse(ok->bytes, sip::Limits{}, true);
    PeerDialog* owner_call = nullptr;
    for (auto& c : callers) {
      if (c.call_id == a_ok->callId()) owner_call = &c;
    }
    ASSERT_NE(owner_call, nullptr);
    EXPECT_EQ(ok->worker, invite->worker) << "the 200 came back to the worker that sent the INVITE";
    owner_call->remote_tag = std::string(a_ok->toTag());
    sip::NameAddr contact;
    ASSERT_TRUE(a_ok->firstContact(contact));
    owner_call->request_uri = std::string(contact.uri);
    receive(pick(), makeAck(*owner_call, 1, "z9hG4bK-mw-ack-" + std::to_string(i)), owner_call->flow);
    receive(pick(), makeRequest(*owner_call, "BYE", "z9hG4bK-mw-bye-" + std::to_string(i)), owner_call->flow);
    auto ack = network_.take(5080, "ACK ");
    ASSERT_TRUE(ack);
    auto bye = network_.take(5080, "BYE ");
    ASSERT_TRUE(bye);
    EXPECT_EQ(ack->worker, invite->worker);
    auto b_bye = sip::Message::parse(bye->bytes, sip::Limits{}, true);
    receive(pick(), makeResponse(*b_bye, 200, "OK", "", ""), pbx);
    auto bye_ok = network_.take(5061, "CSeq: 2 BYE");
    ASSERT_TRUE(bye_ok);
  }
  EXPECT_EQ(metrics_->total(stats::Counter::CallsAttempted), static_cast<std::uint64_t>(kCalls));
  EXPECT_EQ(metrics_->total(stats::Counter::CallsAnswered), static_cast<std::uint64_t>(kCalls));
  // Active calls reach zero on every worker once the BYEs are done.
  for (int spin = 0; spin < 500 && metrics_->total(stats::Gauge::ActiveCalls) != 0; ++spin) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(metrics_->total(stats::Gauge::ActiveCalls), 0);
}

// Hand-offs need at least two workers.
class InboxOverflowTest : public WorkersTest {};

TEST_P(InboxOverflowTest, FullInboxRefusesNewInvitesWith503) {  // Stall worker 1 so its inbox fills up, then
                                                                // offer it more INVITEs than it can queue.
  auto released = std::make_shared<std::atomic<bool>>(false);
  workers_[1]->control([released] {
    while (!released->load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  int refused_before = static_cast<int>(metrics_->total(stats::Counter::Rejected503));
  int sent = 0;
  for (int i = 0; sent < 1100 && i < 100000; ++i) {
    std::string call_id = "overflow-" + std::to_string(i);
    if (dialog::ownerOf(call_id, workers_count_) != 1) continue;
    PeerDialog caller = callerPeer(call_id);
    receive(0, makeInvite(caller, "z9hG4bK-of-" + std::to_string(i)), caller.flow);
    ++sent;
  }
  auto refused = network_.take(5061, "SIP/2.0 503 Service Unavailable");
  // With the inbox still full, a message of a call in progress is not lost: it waits on the
  // bounded overflow path and is handled once the owner catches up.
  std::string bye_call;
  for (int i = 0; bye_call.empty(); ++i) {
    std::string candidate = "overflow-bye-" + std::to_string(i);
    if (dialog::ownerOf(candidate, workers_count_) == 1) bye_call = candidate;
  }
  PeerDialog in_dialog = callerPeer(bye_call);
  in_dialog.remote_tag = "gone";
  receive(0, makeRequest(in_dialog, "BYE", "z9hG4bK-of-bye"), in_dialog.flow);
  released->store(true);
  auto answered = network_.take(5061, "Call-ID: " + bye_call + "\r\n");
  ASSERT_TRUE(answered);
  EXPECT_NE(answered->bytes.find("SIP/2.0 481"), std::string::npos);
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->bytes.find("Retry-After: "), std::string::npos);
  EXPECT_EQ(refused->worker, 0u);  // answered by the receiving worker, statelessly
  EXPECT_GT(static_cast<int>(metrics_->total(stats::Counter::InboxOverflows)), 0);
  EXPECT_GT(static_cast<int>(metrics_->total(stats::Counter::Rejected503)), refused_before);
}

// limits.max_calls holds for the whole daemon, not per worker: with 4 workers and a limit of
// 3, the fourth concurrent call is refused whichever worker owns it.
class GlobalLimitTest : public WorkersTest {
 protected:
  void SetUp() override {
    auto config = std::make_shared<config::Config>(*config::defaultConfig().value());
    config->max_calls = 3;
    startWorkers(config);
  }
};

TEST_P(GlobalLimitTest, MaxCallsIsGlobalAcrossWorkers) {
  std::vector<PeerDialog> callers;
  std::set<std::uint32_t> owners;
  for (int i = 0; callers.size() < 4; ++i) {
    std::string call_id = "limit-" + std::to_string(i);
    std::uint32_t owner = dialog::ownerOf(call_id, workers_count_);
    if (owners.size() < workers_count_ && owners.count(owner) != 0) continue;  // one call per worker first
    owners.insert(owner);
    callers.push_back(callerPeer(call_id));
  }
  std::vector<std::unique_ptr<sip::Message>> b_invites;
  for (std::size_t i = 0; i < 3; ++i) {
    receive(0, makeInvite(callers[i], "z9hG4bK-lim-" + std::to_string(i)), callers[i].flow);
    ASSERT_TRUE(network_.take(5061, "Call-ID: " + callers[i].call_id + "\r\n")) << i;  // 100 Trying
    auto invite = network_.take(5080, "INVITE ");
    ASSERT_TRUE(invite) << i;
    b_invites.push_back(sip::Message::parse(invite->bytes, sip::Limits{}, true));
  }
  receive(0, makeInvite(callers[3], "z9hG4bK-lim-3"), callers[3].flow);
  auto refused = network_.take(5061, "Call-ID: " + callers[3].call_id + "\r\n");
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->bytes.find("SIP/2.0 503 Service Unavailable"), std::string::npos) << refused->bytes;
  EXPECT_EQ(shared_.value(policy::SharedCounters::kGlobalCalls), 3u);
  // A call that ends gives its slot back: the next INVITE goes through.
  receive(1, makeResponse(*b_invites[0], 486, "Busy Here", "pbx-busy", ""),
          udpFlow(net::Side::Pbx, "127.0.0.1", 5080));
  ASSERT_TRUE(network_.take(5061, "SIP/2.0 486 Busy Here"));
  for (int spin = 0; spin < 500 && shared_.value(policy::SharedCounters::kGlobalCalls) != 2; ++spin)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(shared_.value(policy::SharedCounters::kGlobalCalls), 2u);
  PeerDialog again = callerPeer("limit-again");
  receive(2, makeInvite(again, "z9hG4bK-lim-again"), again.flow);
  auto trying = network_.take(5061, "Call-ID: limit-again\r\n");
  ASSERT_TRUE(trying);
  EXPECT_NE(trying->bytes.find("SIP/2.0 100 Trying"), std::string::npos) << trying->bytes;
}

INSTANTIATE_TEST_SUITE_P(Workers, WorkersTest, ::testing::Values(1u, 4u));
INSTANTIATE_TEST_SUITE_P(Workers, GlobalLimitTest, ::testing::Values(4u));
INSTANTIATE_TEST_SUITE_P(Workers, InboxOverflowTest, ::testing::Values(2u, 4u));

}  // namespace
}  // namespace palisade
