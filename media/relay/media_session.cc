#include "media/relay/media_session.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/base/log.h"
#include "core/sip/headers.h"
#include "media/srtp/srtp_session.h"

namespace palisade::media {

namespace {

using dialog::BodyCrossing;
using dialog::BodyVerdict;
using sip::Method;
using stats::Counter;
namespace asio = boost::asio;

constexpr std::string_view kSdpType = "application/sdp";
// Bind attempts per pair before a call is refused: another process may hold a port of the range.
constexpr int kBindAttempts = 8;
// Relayed streams per call (audio, video, and room for T.38 or a second video); further m=
// lines are answered with port 0, so that one INVITE cannot take a worker's ports.
constexpr std::size_t kMaxRelayedStreams = 4;

bool isSdp(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  return sip::iequals(type, kSdpType);
}

bool isRtpProfile(std::string_view proto) {
  return proto == "RTP/AVP" || proto == "RTP/AVPF" || proto == "RTP/SAVP" || proto == "RTP/SAVPF";
}
bool isUdptl(std::string_view proto) { return sip::iequals(proto, "udptl"); }

std::string securedProfile(std::string_view proto) {
  if (proto == "RTP/AVP") return "RTP/SAVP";
  if (proto == "RTP/AVPF") return "RTP/SAVPF";
  return std::string(proto);
}
std::string plainProfile(std::string_view proto) {
  if (proto == "RTP/SAVP") return "RTP/AVP";
  if (proto == "RTP/SAVPF") return "RTP/AVPF";
  return std::string(proto);
}

bool sameKey(const srtp::KeyMaterial& a, const srtp::KeyMaterial& b) {
  return a.suite == b.suite && a.size == b.size &&
         std::equal(a.bytes.begin(), a.bytes.begin() + a.size, b.bytes.begin());
}

// The peer's media address for section `i` as the relay uses it.
PeerMedia peerOf(const sdp::SessionDescription& sd, std::size_t i, bool mux) {
  PeerMedia peer;
  const sdp::MediaSection& m = sd.media[i];
  const sdp::Connection* c = sd.connectionFor(i);
  boost::system::error_code ec;
  asio::ip::address address =
      c != nullptr ? asio::ip::make_address(std::string(c->address), ec) : asio::ip::address();
  peer.named = c != nullptr && !ec;
  peer.hold = c != nullptr && c->isHold();
  peer.mux = mux;
  peer.rtp = asio::ip::udp::endpoint(address, m.port);
  std::uint16_t rtcp_port = mux ? m.port : m.rtcp_port.value_or(static_cast<std::uint16_t>(m.port + 1));
  peer.rtcp = asio::ip::udp::endpoint(address, rtcp_port);
  return peer;
}

// A leg's peer moved (re-INVITE to another address): what was latched no longer holds.
void updatePeer(RelayStream::Leg& leg, const PeerMedia& peer, const asio::ip::address& signalling,
                bool verified) {
  if (leg.known && (leg.peer.rtp != peer.rtp || leg.peer.rtcp != peer.rtcp || leg.signalling != signalling)) {
    leg.latched = {};
  }
  leg.peer = peer;
  leg.signalling = signalling;
  leg.signalling_verified = verified;
  leg.known = true;
}

// The sessions one leg gets from an answer, made before anything is changed. A session whose
// key is unchanged is kept: a new inbound one would reset the replay window (old packets would
// be accepted again), and a new outbound one would restart the SRTP and SRTCP indexes under the
// same key (a repeated keystream; with GCM a repeated nonce).
struct LegKeys {
  bool secure = false;
  std::unique_ptr<srtp::Session> inbound, outbound;  // null: keep the leg's own
  srtp::KeyMaterial inbound_key, outbound_key;
};

bool prepare(const RelayStream::Leg& leg, bool secure, const srtp::KeyMaterial* peer_key,
             const srtp::KeyMaterial* our_key, LegKeys& out) {
  out.secure = secure;
  if (!secure) return true;
  out.inbound_key = *peer_key;
  out.outbound_key = *our_key;
  if (leg.inbound == nullptr || !sameKey(leg.inbound_key, *peer_key)) {
    out.inbound = srtp::Session::create(srtp::Session::Direction::Inbound, *peer_key);
    if (out.inbound == nullptr) return false;
  }
  if (leg.outbound == nullptr || !sameKey(leg.outbound_key, *our_key)) {
    out.outbound = srtp::Session::create(srtp::Session::Direction::Outbound, *our_key);
    if (out.outbound == nullptr) return false;
  }
  return true;
}

void commit(RelayStream::Leg& leg, LegKeys& keys) {
  leg.secure = keys.secure;
  if (!keys.secure) {
    leg.inbound.reset();
    leg.outbound.reset();
    leg.inbound_key.clear();
    leg.outbound_key.clear();
    return;
  }
  if (keys.inbound != nullptr) {
    leg.inbound = std::move(keys.inbound);
    leg.latched = {};  // a new key: the source proves itself again
  }
  if (keys.outbound != nullptr) leg.outbound = std::move(keys.outbound);
  leg.inbound_key = keys.inbound_key;
  leg.outbound_key = keys.outbound_key;
}

std::string cryptoLine(std::uint32_t tag, const srtp::KeyMaterial& key) {
  return fmt::format("{} {} {}", tag, srtp::suiteName(key.suite), srtp::inlineKeyParams(key));
}

}  // namespace

// ---- MediaSession ----

MediaSession::MediaSession(WorkerMedia& owner, std::string call_id)
    : owner_(owner),
      config_(owner.configSnapshot()),
      suites_(owner.suites()),
      call_id_(std::move(call_id)),
      watchdog_(owner.io()) {
  // RFC 8866 §5.2: a session id of our own per leg, numeric and unpredictable enough.
  for (auto& id : session_id_) {
    srtp::KeyMaterial random;
    srtp::randomKey(srtp::Suite::AesCm128HmacSha1_80, random);
    std::uint64_t v = 0;
    for (int b = 0; b < 7; ++b) v = v << 8 | random.bytes[b];
    id = v != 0 ? v : 1;
  }
}

MediaSession::~MediaSession() {
  alive_.reset();
  watchdog_.cancel();
  bool anchored = std::any_of(streams_.begin(), streams_.end(), [](const auto& s) { return s != nullptr; });
  if (anchored) LOG_INFO("call {}: media {}", call_id_, summary());
  // What we wrote holds our SDES keys.
  OPENSSL_cleanse(answer_cache_.out.data(), answer_cache_.out.size());
  for (auto& stream : streams_) {
    if (stream) owner_.release(*stream);
  }
}

void MediaSession::describe(dialog::CallRecord& record, bool srtp_leg[2]) const {
  for (const auto& stream : streams_) {
    if (stream == nullptr) continue;
    for (int leg = 0; leg < 2; ++leg) {
      const RelayStream::Leg& l = stream->leg(leg);
      record.packets += l.counters.packets;
      record.bytes += l.counters.bytes;
      record.sequence_gaps += l.sequence.gaps();
      record.srtp_auth_failures += l.counters.auth_failures;
      srtp_leg[leg] = srtp_leg[leg] || l.secure;
    }
  }
}

std::string MediaSession::summary() const {
  std::string out;
  for (std::size_t i = 0; i < streams_.size(); ++i) {
    const RelayStream* s = streams_[i].get();
    if (s == nullptr) continue;
    if (!out.empty()) out.append("; ");
    fmt::format_to(std::back_inserter(out), "stream {} {}/{}", i, s->leg(0).secure ? "SRTP" : "RTP",
                   s->leg(1).secure ? "SRTP" : "RTP");
    const char* names[] = {"caller", "callee"};
    for (int leg = 0; leg < 2; ++leg) {
      const RelayStream::Leg& l = s->leg(leg);
      const LegCounters& c = l.counters;
      fmt::format_to(std::back_inserter(out),
                     ", from {}: {} packets {} bytes {} gaps {} auth failures {} foreign {} over rate",
                     names[leg], c.packets, c.bytes, l.sequence.gaps(), c.auth_failures, c.foreign,
                     c.rate_dropped);
    }
  }
  return out;
}

const config::MediaSidePolicy& MediaSession::policyFor(net::Side side) const {
  return side == net::Side::Public ? config_->media.public_side : config_->media.pbx_side;
}

BodyVerdict MediaSession::refuse(int status, std::string_view reason) {
  owner_.stats().add(status == 503 ? Counter::CallsNoMediaPorts : Counter::CallsMediaRefused);
  return BodyVerdict{{}, status, reason};
}

BodyVerdict MediaSession::rewrite(const BodyCrossing& where, sip::Body in, std::string& storage) {
  const int to = where.to_leg;
  const int from = 1 - to;
  const bool final_ok = where.method == Method::Invite && where.status >= 200 && where.status < 300;
  if (in.empty()) {
    // RFC 3264 §4 late offer: an INVITE without SDP gets its offer in the 2xx (or a reliable 18x).
    if (where.status == 0 && where.method == Method::Invite) late_offer_from_ = from;
    if (final_ok && offer_ && offer_->answered) armWatchdog();
    return BodyVerdict{in, 0, {}};
  }
  if (!isSdp(in.content_type)) {
    // A body we cannot rewrite would carry the other side's addresses across.
    return where.status == 0 ? refuse(415, "Unsupported Media Type") : refuse(488, "Not Acceptable Here");
  }
  bool is_answer = false;
  if (where.status != 0) {
    if (late_offer_from_ == to) {
      late_offer_from_ = -1;  // this response makes the offer
    } else {
      is_answer = offer_ && offer_->from == to;
    }
  } else {
    is_answer = (where.method == Method::Ack || where.method == Method::Prack) && offer_ &&
                offer_->from == to && !offer_->answered;
    if (where.method == Method::Ack && !is_answer) return BodyVerdict{{}, 0, {}};  // nothing to answer
    if (where.method == Method::Invite) late_offer_from_ = -1;
  }
  // The same answer to the same offer again (18x then 2xx) gets what we wrote for it: same
  // keys, same version (RFC 3264 §8).
  const std::optional<Digest> in_digest = is_answer ? digestOf(in.bytes) : std::nullopt;
  if (in_digest && answer_cache_.in && answer_cache_.generation == offer_generation_ &&
      *in_digest == *answer_cache_.in) {
    storage = answer_cache_.out;
    if (final_ok) armWatchdog();
    return BodyVerdict{sip::Body{kSdpType, storage}, 0, {}};
  }
  auto parsed = sdp::parse(in.bytes);
  if (!parsed) return refuse(488, "Not Acceptable Here");
  BodyVerdict verdict =
      is_answer ? answer(where, parsed.value(), storage) : offer(where, parsed.value(), storage);
  if (verdict.status == 0 && is_answer) {
    answer_cache_.generation = offer_generation_;
    answer_cache_.in = in_digest;
    OPENSSL_cleanse(answer_cache_.out.data(), answer_cache_.out.size());
    answer_cache_.out = storage;
    if (final_ok || where.method == Method::Ack) armWatchdog();
  }
  return verdict;
}

bool MediaSession::ensureStream(std::size_t i, const BodyCrossing& where) {
  if (i < streams_.size() && streams_[i]) return true;
  if (streams_.size() <= i) streams_.resize(i + 1);
  const net::Side sides[2] = {where.to_leg == 0 ? where.to_side : where.from_side,
                              where.to_leg == 1 ? where.to_side : where.from_side};
  const auto& a0 = owner_.address(sides[0]);
  const auto& a1 = owner_.address(sides[1]);
  auto stream =
      std::make_unique<RelayStream>(owner_.poller(), owner_.stats(), config_->media.max_packet_rate, false);
  if (!owner_.bindPair(*stream, 0, a0)) return false;
  // Two addresses: the same port number serves both legs, which halves what a call takes.
  bool shared = a0 != a1 && stream->bind(1, a1, stream->leg(0).port);
  if (!shared && !owner_.bindPair(*stream, 1, a1)) {
    owner_.release(*stream);
    return false;
  }
  if (!stream->start()) {
    owner_.release(*stream);
    return false;
  }
  streams_[i] = std::move(stream);
  return true;
}

BodyVerdict MediaSession::offer(const BodyCrossing& where, const sdp::SessionDescription& sd,
                                std::string& storage) {
  const int to = where.to_leg;
  const int from = 1 - to;
  if (sd.media.size() < streams_.size())
    return refuse(488, "Not Acceptable Here");  // RFC 3264 §8: m= lines stay
  const config::MediaSidePolicy& offerer_policy = policyFor(where.from_side);
  const config::MediaSidePolicy& answerer_policy = policyFor(where.to_side);
  const auto& suites = suites_;
  Offer o;
  o.from = from;
  o.offerer_signalling = where.source;
  o.offerer_verified = where.source_verified;
  bool any = false;
  std::size_t relayed = 0;
  for (std::size_t i = 0; i < sd.media.size(); ++i) {
    const sdp::MediaSection& m = sd.media[i];
    StreamOffer so;
    so.proto[0] = so.proto[1] = std::string(m.proto);
    so.direction = sd.directionFor(i);
    const bool udptl = isUdptl(m.proto);
    // Every relayed stream holds port pairs from the offer on: a call gets a few, not sixteen.
    so.rejected = m.rejected() || m.port_count != 1 || (!isRtpProfile(m.proto) && !udptl) ||
                  relayed >= kMaxRelayedStreams;
    // The offerer's key: the first a=crypto line whose suite we accept (RFC 4568 §7.1.1). Lines
    // with session parameters (UNENCRYPTED_SRTP, KDR, ...) are skipped: we would not honour them.
    bool keyed = false;
    for (std::string_view value : m.crypto) {
      if (so.rejected || keyed) break;
      srtp::CryptoAttribute attribute;
      if (!srtp::parseCryptoAttribute(value, attribute) || !attribute.session_params.empty()) continue;
      auto suite = srtp::suiteByName(attribute.suite_name);
      if (!suite || std::find(suites.begin(), suites.end(), *suite) == suites.end()) continue;
      if (!srtp::parseInlineKeyParams(*suite, attribute.key_params, so.offerer_key)) continue;
      so.offerer_tag = attribute.tag;
      keyed = true;
    }
    bool offerer_secure = false;
    if (!so.rejected) {
      if (m.isSecure()) {
        // RTP/SAVP without a key we accept, or from a side where SRTP is off: RFC 4568 §7.1.2.
        so.rejected = !keyed || offerer_policy.srtp == config::SrtpMode::Off;
        offerer_secure = true;
      } else {
        // a=crypto on RTP/AVP is best-effort SRTP: used unless SRTP is off on that side.
        offerer_secure = keyed && !udptl && offerer_policy.srtp != config::SrtpMode::Off;
        so.rejected = offerer_policy.srtp == config::SrtpMode::Required && !offerer_secure;
      }
    }
    bool answerer_secure = answerer_policy.srtp == config::SrtpMode::Required ||
                           (answerer_policy.srtp == config::SrtpMode::Optional && offerer_secure);
    if (udptl && answerer_secure) so.rejected = true;  // T.38 has no SRTP: never plain to a required side
    if (so.rejected) {
      o.streams.push_back(std::move(so));
      continue;
    }
    so.secure[from] = offerer_secure;
    so.secure[to] = answerer_secure;
    so.proto[to] = udptl             ? std::string(m.proto)
                   : answerer_secure ? securedProfile(m.proto)
                                     : plainProfile(m.proto);
    if (answerer_secure) {
      std::uint32_t tag = 1;
      for (srtp::Suite suite : suites) {
        OfferedKey key;
        key.tag = tag++;
        if (!srtp::randomKey(suite, key.key)) return refuse(500, "Server Internal Error");
        so.offered.push_back(std::move(key));
      }
    }
    so.offerer_media = peerOf(sd, i, m.rtcp_mux);
    if (!ensureStream(i, where)) return refuse(503, "Service Unavailable");
    any = true;
    ++relayed;
    o.streams.push_back(std::move(so));
  }
  if (!any) return refuse(488, "Not Acceptable Here");

  sdp::Plan plan;
  for (std::size_t i = 0; i < o.streams.size(); ++i) {
    const StreamOffer& so = o.streams[i];
    sdp::MediaPlan p;
    p.proto = so.proto[to];
    p.reject = so.rejected;
    if (!p.reject) {
      p.port = streams_[i]->leg(to).port;
      p.rtcp_port = static_cast<std::uint16_t>(p.port + 1);
      p.rtcp_mux = so.offerer_media.mux;
      p.hold_address = so.offerer_media.hold;
      for (const OfferedKey& k : so.offered) p.crypto.push_back(cryptoLine(k.tag, k.key));
    }
    plan.media.push_back(std::move(p));
  }
  storage = writeFor(to, where.to_side, sd, plan);
  offer_ = std::move(o);
  ++offer_generation_;
  return BodyVerdict{sip::Body{kSdpType, storage}, 0, {}};
}

BodyVerdict MediaSession::answer(const BodyCrossing& where, const sdp::SessionDescription& sd,
                                 std::string& storage) {
  Offer& o = *offer_;
  const int offerer = o.from;
  const int answerer = 1 - offerer;
  if (sd.media.size() != o.streams.size()) return refuse(488, "Not Acceptable Here");
  const config::MediaSidePolicy& offerer_policy = policyFor(where.to_side);
  const config::MediaSidePolicy& answerer_policy = policyFor(where.from_side);
  bool any = false;
  bool unusable = false;
  bool two_way = false;  // some stream flows both ways: the media timeout applies
  sdp::Plan plan;
  for (std::size_t i = 0; i < sd.media.size(); ++i) {
    StreamOffer& so = o.streams[i];
    const sdp::MediaSection& m = sd.media[i];
    sdp::MediaPlan p;
    p.proto = so.proto[offerer];
    RelayStream* stream = i < streams_.size() ? streams_[i].get() : nullptr;
    bool usable = !so.rejected && !m.rejected() && stream != nullptr;
    // The answerer keeps the profile we offered it; with SRTP, one of our tags and suites.
    if (usable && !isUdptl(m.proto) && m.isSecure() != so.secure[answerer]) {
      usable = false;
      unusable = true;
    }
    srtp::KeyMaterial answerer_key;
    const OfferedKey* ours = nullptr;
    if (usable && so.secure[answerer]) {
      for (std::string_view value : m.crypto) {
        srtp::CryptoAttribute attribute;
        if (!srtp::parseCryptoAttribute(value, attribute) || !attribute.session_params.empty()) continue;
        auto suite = srtp::suiteByName(attribute.suite_name);
        for (const OfferedKey& k : so.offered) {
          if (k.tag == attribute.tag && suite && *suite == k.key.suite &&
              srtp::parseInlineKeyParams(*suite, attribute.key_params, answerer_key)) {
            ours = &k;
          }
        }
        if (ours != nullptr) break;
      }
      if (ours == nullptr) {
        usable = false;
        unusable = true;
      }
    }
    if (!usable) {
      p.reject = true;
      if (stream != nullptr) stream->setActive(false);
      plan.media.push_back(std::move(p));
      continue;
    }
    RelayStream::Leg& lo = stream->leg(offerer);
    RelayStream::Leg& la = stream->leg(answerer);
    // Our key toward the offerer is made once per offer: a re-answer (183 then 200) keeps it.
    if (so.secure[offerer] && so.our_key_for_offerer.size == 0 &&
        !srtp::randomKey(so.offerer_key.suite, so.our_key_for_offerer)) {
      return refuse(500, "Server Internal Error");
    }
    LegKeys offerer_keys, answerer_keys;
    if (!prepare(lo, so.secure[offerer], &so.offerer_key, &so.our_key_for_offerer, offerer_keys) ||
        !prepare(la, so.secure[answerer], &answerer_key, ours != nullptr ? &ours->key : nullptr,
                 answerer_keys)) {
      return refuse(500, "Server Internal Error");
    }
    commit(lo, offerer_keys);
    commit(la, answerer_keys);
    if (so.secure[offerer]) p.crypto.push_back(cryptoLine(so.offerer_tag, so.our_key_for_offerer));
    PeerMedia answerer_media = peerOf(sd, i, m.rtcp_mux && so.offerer_media.mux);
    updatePeer(lo, so.offerer_media, o.offerer_signalling, o.offerer_verified);
    updatePeer(la, answerer_media, where.source, where.source_verified);
    lo.latching = offerer_policy.latching;
    la.latching = answerer_policy.latching;
    stream->setMaxPacketRate(config_->media.max_packet_rate);
    stream->setDatagramsOnly(isUdptl(m.proto));
    stream->setActive(true);
    p.port = lo.port;
    p.rtcp_port = static_cast<std::uint16_t>(lo.port + 1);
    p.rtcp_mux = so.offerer_media.mux;
    p.hold_address = answerer_media.hold;
    two_way = two_way ||
              (so.direction == sdp::Direction::SendRecv && sd.directionFor(i) == sdp::Direction::SendRecv &&
               !answerer_media.hold && !so.offerer_media.hold);
    any = true;
    plan.media.push_back(std::move(p));
  }
  if (!any && unusable) return refuse(488, "Not Acceptable Here");
  on_hold_ = !two_way;
  storage = writeFor(offerer, where.to_side, sd, plan);
  o.answered = true;
  return BodyVerdict{sip::Body{kSdpType, storage}, 0, {}};
}

std::optional<MediaSession::Digest> MediaSession::digestOf(std::string_view text) {
  Digest d{};
  // Over memory, EVP_Digest fails only when an allocation does: then nothing compares equal.
  if (EVP_Digest(text.data(), text.size(), d.data(), nullptr, EVP_sha256(), nullptr) != 1)
    return std::nullopt;
  return d;
}

std::string MediaSession::writeFor(int leg, net::Side side, const sdp::SessionDescription& sd,
                                   sdp::Plan& plan) {
  plan.address = owner_.addressText(side);
  plan.ipv6 = owner_.address(side).is_v6();
  plan.session_id = session_id_[leg];
  plan.session_version = version_[leg];
  std::string out = sdp::write(sd, plan);
  std::optional<Digest> written = digestOf(out);
  // RFC 3264 §8: a changed description carries a higher version.
  if (written_[leg] && (!written || !last_out_[leg] || *written != *last_out_[leg])) {
    plan.session_version = ++version_[leg];
    OPENSSL_cleanse(out.data(), out.size());
    out = sdp::write(sd, plan);
    written = digestOf(out);
  }
  last_out_[leg] = written;
  written_[leg] = true;
  return out;
}

void MediaSession::armWatchdog() {
  if (established_) return;
  established_ = true;
  answered_at_ = owner_.clock().now();
  checkMedia();
}

void MediaSession::checkMedia() {
  const std::uint32_t timeout_s = config_->media.timeout_s;
  if (timeout_s != 0 && !on_hold_) {
    base::Millis last = answered_at_;
    for (const auto& s : streams_) {
      if (s && s->active()) last = std::max(last, s->lastPacket());
    }
    base::Millis silent = owner_.clock().now() - last;
    if (silent >= base::Millis{timeout_s} * 1000) {
      if (end_) end_(fmt::format("no media for {} s (media.timeout_s)", silent / 1000));
      return;
    }
  }
  // Checked a few times per timeout, at least every 5 s so that a reload's new value applies.
  std::uint32_t period_s = timeout_s == 0 ? 5 : std::clamp<std::uint32_t>(timeout_s / 4, 1, 5);
  watchdog_.expires_after(std::chrono::seconds(period_s));
  watchdog_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    checkMedia();
  });
}

// ---- WorkerMedia ----

WorkerMedia::WorkerMedia(asio::io_context& io, const base::Clock& clock, stats::Shard& stats,
                         const config::StartupSettings& startup, std::uint32_t index, std::uint32_t workers,
                         std::shared_ptr<const config::Config> config)
    : io_(io),
      clock_(clock),
      stats_(stats),
      poller_(io, clock),
      pool_(startup.media.first, startup.media.last, index, workers) {
  address_texts_[0] =
      startup.media.public_address.empty() ? startup.public_side.address : startup.media.public_address;
  address_texts_[1] =
      startup.media.pbx_address.empty() ? startup.pbx_side.address : startup.media.pbx_address;
  for (int i = 0; i < 2; ++i) {
    boost::system::error_code ec;
    addresses_[i] = asio::ip::make_address(address_texts_[i], ec);  // validated by the config loader
    address_texts_[i] = addresses_[i].to_string();
  }
  srtp::initialiseLibrary();
  stats_.adjust(stats::Gauge::MediaPortPairsFree, static_cast<std::int64_t>(pool_.available()));
  setConfig(std::move(config));
}

WorkerMedia::~WorkerMedia() {
  stats_.adjust(stats::Gauge::MediaPortPairsFree, -static_cast<std::int64_t>(pool_.available()));
}

void WorkerMedia::setConfig(std::shared_ptr<const config::Config> config) {
  config_ = std::move(config);
  suites_.clear();
  for (const auto& name : config_->media.suites) {
    if (auto suite = srtp::suiteByName(name)) suites_.push_back(*suite);
  }
}

std::unique_ptr<dialog::CallMedia> WorkerMedia::create(const policy::RequestContext& admitted) {
  if (!config_->media.anchor) return nullptr;
  std::string call_id = admitted.request != nullptr ? std::string(admitted.request->callId()) : std::string();
  return std::make_unique<MediaSession>(*this, std::move(call_id));
}

bool WorkerMedia::bindPair(RelayStream& stream, int leg, const asio::ip::address& address) {
  for (int attempt = 0; attempt < kBindAttempts; ++attempt) {
    std::optional<std::uint16_t> port = pool_.acquire();
    if (!port) return false;
    if (stream.bind(leg, address, *port)) {
      stream.leg(leg).owns_pair = true;
      stats_.adjust(stats::Gauge::MediaPortPairsFree, -1);
      return true;
    }
    pool_.release(*port);  // held by another process: to the back of the queue
  }
  return false;
}

void WorkerMedia::releasePair(std::uint16_t port) {
  if (pool_.release(port)) stats_.adjust(stats::Gauge::MediaPortPairsFree, 1);
}

void WorkerMedia::release(RelayStream& stream) {
  stream.close();
  for (int leg = 0; leg < 2; ++leg) {
    if (stream.leg(leg).owns_pair) releasePair(stream.leg(leg).port);
  }
}

}  // namespace palisade::media
