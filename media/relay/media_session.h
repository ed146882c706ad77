#pragma once
// Media anchoring for the B2BUA: one MediaSession per call implements dialog::CallMedia. It
// follows the SDP offer/answer exchange (RFC 3264) across both legs (INVITE, 18x, 2xx,
// re-INVITE, UPDATE, PRACK and the late offer in 2xx/ACK), takes port pairs for each stream
// from the worker's pool, rewrites each description so that a side sees only Palisade (c=,
// m= ports, a=rtcp, profile and SDES keys), and sets up the relay streams.
//
// SRTP per side follows [media.public] / [media.pbx]: "off" refuses SRTP offers, "required"
// refuses plain ones and never sends plaintext, "optional" mirrors the other side. Keys of
// ours are fresh for every offer and answer we write (never reused across sessions), and come
// from OpenSSL's RAND.
//
// All of it runs on the call's worker. WorkerMedia is the per-worker factory and owns the pool.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/base/clock.h"
#include "core/config/config.h"
#include "core/dialog/media_hook.h"
#include "core/stats/metrics.h"
#include "media/relay/port_pool.h"
#include "media/relay/relay_stream.h"
#include "media/sdp/sdp.h"
#include "media/srtp/crypto_suite.h"

namespace palisade::media {

class WorkerMedia;

class MediaSession final : public dialog::CallMedia {
 public:
  MediaSession(WorkerMedia& owner, std::string call_id);
  ~MediaSession() override;
  void describe(dialog::CallRecord& record, bool srtp_leg[2]) const override;
  MediaSession(const MediaSession&) = delete;
  MediaSession& operator=(const MediaSession&) = delete;

  dialog::BodyVerdict rewrite(const dialog::BodyCrossing& where, sip::Body in, std::string& storage) override;
  void setEndHandler(std::function<void(std::string_view reason)> end) override { end_ = std::move(end); }

  // For tests and the end-of-call line.
  std::size_t streamCount() const { return streams_.size(); }
  const RelayStream* stream(std::size_t i) const { return i < streams_.size() ? streams_[i].get() : nullptr; }
  std::string summary() const;

 private:
  // Our key offered to the answering leg for one suite (RFC 4568: one a=crypto line each).
  struct OfferedKey {
    std::uint32_t tag = 0;
    srtp::KeyMaterial key;
  };
  // What an offer said about one stream, kept until (and after) its answer.
  struct StreamOffer {
    bool rejected = false;
    bool secure[2] = {false, false};        // SRTP on leg 0 / leg 1
    std::string proto[2];                   // the profile each leg sees
    std::uint32_t offerer_tag = 0;          // the offerer's chosen a=crypto tag
    srtp::KeyMaterial offerer_key;          // and key (what it will send with)
    std::vector<OfferedKey> offered;        // our keys for the answerer, if it is an SRTP leg
    srtp::KeyMaterial our_key_for_offerer;  // made at the first answer, kept for re-answers
    PeerMedia offerer_media;
    sdp::Direction direction = sdp::Direction::SendRecv;
  };
  struct Offer {
    int from = 0;  // the leg that made it
    bool answered = false;
    boost::asio::ip::address offerer_signalling;
    bool offerer_verified = false;
    std::vector<StreamOffer> streams;
  };
  struct Refusal {
    int status = 0;
    std::string_view reason;
  };

  dialog::BodyVerdict offer(const dialog::BodyCrossing& where, const sdp::SessionDescription& sd,
                            std::string& storage);
  dialog::BodyVerdict answer(const dialog::BodyCrossing& where, const sdp::SessionDescription& sd,
                             std::string& storage);
  dialog::BodyVerdict refuse(int status, std::string_view reason);
  // Makes stream `i` (binding port pairs for both legs) if it does not exist yet.
  bool ensureStream(std::size_t i, const dialog::BodyCrossing& where);
  std::string writeFor(int leg, net::Side side, const sdp::SessionDescription& sd, sdp::Plan& plan);
  void armWatchdog();
  void checkMedia();
  const config::MediaSidePolicy& policyFor(net::Side side) const;

  WorkerMedia& owner_;
  // The configuration the call was admitted under: a reload changes new calls, not this one.
  std::shared_ptr<const config::Config> config_;
  std::vector<srtp::Suite> suites_;
  std::string call_id_;
  std::vector<std::unique_ptr<RelayStream>> streams_;
  std::optional<Offer> offer_;
  int late_offer_from_ = -1;  // an INVITE crossed without SDP from this leg: the answer will offer
  std::uint64_t offer_generation_ = 0;
  // Digests, not copies, of what a call keeps for comparison: a call's memory is mostly its SDP.
  using Digest = std::array<std::uint8_t, 32>;  // SHA-256
  // The last answer (its digest) and what we wrote for it, to give a repeated answer the same
  // description.
  struct AnswerCache {
    std::uint64_t generation = 0;
    std::optional<Digest> in;
    std::string out;
  } answer_cache_;
  // Empty when hashing failed: then it matches nothing.
  static std::optional<Digest> digestOf(std::string_view text);
  std::optional<Digest> last_out_[2];  // what we last wrote to each leg (its version rises when it changes)
  bool written_[2] = {false, false};
  std::uint64_t session_id_[2] = {0, 0};
  std::uint64_t version_[2] = {1, 1};
  bool established_ = false;
  bool on_hold_ = false;
  base::Millis answered_at_ = 0;
  boost::asio::steady_timer watchdog_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::function<void(std::string_view)> end_;
};

class WorkerMedia final : public dialog::MediaFactory {
 public:
  WorkerMedia(boost::asio::io_context& io, const base::Clock& clock, stats::Shard& stats,
              const config::StartupSettings& startup, std::uint32_t index, std::uint32_t workers,
              std::shared_ptr<const config::Config> config);
  ~WorkerMedia() override;

  // On the worker: the snapshot new offers use (SRTP modes, latching, timeout, suites).
  void setConfig(std::shared_ptr<const config::Config> config);
  std::unique_ptr<dialog::CallMedia> create(const policy::RequestContext& admitted) override;

  PortPool& pool() { return pool_; }
  MediaPoller& poller() { return poller_; }
  boost::asio::io_context& io() { return io_; }
  const base::Clock& clock() const { return clock_; }
  stats::Shard& stats() { return stats_; }
  const config::MediaConfig& config() const { return config_->media; }
  const std::shared_ptr<const config::Config>& configSnapshot() const { return config_; }
  const std::vector<srtp::Suite>& suites() const { return suites_; }
  const boost::asio::ip::address& address(net::Side side) const { return addresses_[static_cast<int>(side)]; }
  const std::string& addressText(net::Side side) const { return address_texts_[static_cast<int>(side)]; }
  // Takes a pair from the pool and binds it on `address` for leg `leg` of `stream`; tries a few
  // pairs when some other process holds one. False when none could be bound.
  bool bindPair(RelayStream& stream, int leg, const boost::asio::ip::address& address);
  void releasePair(std::uint16_t port);
  // Closes the stream's sockets and returns the pairs it took to the pool.
  void release(RelayStream& stream);

 private:
  boost::asio::io_context& io_;
  const base::Clock& clock_;
  stats::Shard& stats_;
  MediaPoller poller_;
  PortPool pool_;
  std::shared_ptr<const config::Config> config_;
  std::vector<srtp::Suite> suites_;
  boost::asio::ip::address addresses_[2];
  std::string address_texts_[2];
};

}  // namespace palisade::media
