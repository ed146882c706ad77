// RTP relay throughput per core: a load generator on one CPU drives N anchored streams through a
// relay on the other, 20 ms G.711 packets (12-byte header, 160-byte payload) both ways on every
// stream, and counts what comes out. The relay is one of:
//   palisade   Palisade's relay (WorkerMedia + MediaSession, in this process, on its own thread:
//              what one worker of the daemon runs), sessions set up through its SDP offer/answer;
//   rtpengine  an rtpengine daemon already running (userspace forwarding), driven over its ng
//              control protocol (offer/answer) on --ng; its CPU is read from /proc/--pid/stat;
//   floor      a bare epoll loop (recvfrom, sendto, no checks): the kernel's share of the cost.
// --srtp makes the caller side SRTP (AES_CM_128_HMAC_SHA1_80) and the PBX side plain RTP, so the
// relay decrypts one direction and encrypts the other (the generator does the caller's crypto).
// Prints packets relayed, relay CPU seconds, packets per CPU second, and (palisade) the memory
// the sessions took per call. Loopback only: 127.0.0.2 (caller), 127.0.0.3 (PBX) and the relay's
// 127.0.0.10 / 127.0.0.11.
#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "core/base/clock.h"
#include "media/relay/media_session.h"
#include "media/sdp/sdp.h"
#include "media/srtp/crypto_suite.h"
#include "media/srtp/srtp_session.h"

namespace {

using namespace palisade;
using Clock = std::chrono::steady_clock;

constexpr const char* kCallerIp = "127.0.0.2";
constexpr const char* kPbxIp = "127.0.0.3";

struct Options {
  std::string target = "palisade";
  int streams = 500;
  int pps = 50;
  double seconds = 10;
  bool srtp = false;
  std::string ng = "127.0.0.1:2223";
  int pid = 0;
  int relay_cpu = 0;
  int load_cpu = 1;
  double overload_s = 0;         // > 0: the overload and recovery test instead of the throughput run
  bool overload_shared = false;  // the flood comes on the normal streams themselves
};

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

sockaddr_in addressOf(const std::string& ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

int udpSocket(const char* ip, std::uint16_t port = 0) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  sockaddr_in a = addressOf(ip, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int size = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  return fd;
}

std::uint16_t portOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

std::string sdpOf(const char* ip, std::uint16_t port, bool srtp, const media::srtp::KeyMaterial* key) {
  std::string s = fmt::format(
      "v=0\r\no=- 1 1 IN IP4 {}\r\ns=-\r\nc=IN IP4 {}\r\nt=0 0\r\nm=audio {} {} 0\r\na=rtpmap:0 "
      "PCMU/8000\r\n",
      ip, ip, port, srtp ? "RTP/SAVP" : "RTP/AVP");
  if (key != nullptr) {
    s += fmt::format("a=crypto:1 {} {}\r\n", media::srtp::suiteName(key->suite),
                     media::srtp::inlineKeyParams(*key));
  }
  return s;
}

// What the relay handed back for one side of a stream.
struct RelaySide {
  std::string ip;
  std::uint16_t port = 0;
  std::optional<media::srtp::KeyMaterial> key;  // the relay's key toward the caller (SRTP)
};

bool readSide(const std::string& sdp, RelaySide& side) {
  auto parsed = media::sdp::parse(sdp);
  if (!parsed.ok() || parsed.value().media.empty()) return false;
  const auto& sd = parsed.value();
  side.ip = std::string(sd.connectionFor(0)->address);
  side.port = sd.media[0].port;
  for (auto value : sd.media[0].crypto) {
    media::srtp::CryptoAttribute attribute;
    if (!media::srtp::parseCryptoAttribute(value, attribute)) continue;
    auto suite = media::srtp::suiteByName(attribute.suite_name);
    media::srtp::KeyMaterial key;
    if (suite && media::srtp::parseInlineKeyParams(*suite, attribute.key_params, key)) {
      side.key = key;
      break;
    }
  }
  return side.port != 0;
}

struct Stream {
  int caller_fd = -1;
  int pbx_fd = -1;
  sockaddr_in to_public{};  // where the caller sends
  sockaddr_in to_pbx_side{};
  std::unique_ptr<media::srtp::Session> caller_out;  // the caller's key
  std::unique_ptr<media::srtp::Session> caller_in;   // the relay's key toward the caller
  std::uint16_t seq = 0;
  media::srtp::KeyMaterial caller_key;
  std::optional<media::srtp::KeyMaterial> relay_key;
};

// ---- rtpengine's ng protocol (bencode over UDP) ----

std::string bstr(const std::string& s) { return fmt::format("{}:{}", s.size(), s); }

std::optional<std::string> bencodeString(const std::string& reply, const std::string& key) {
  std::string needle = bstr(key);
  auto at = reply.find(needle);
  if (at == std::string::npos) return std::nullopt;
  std::size_t p = at + needle.size();
  std::size_t colon = reply.find(':', p);
  if (colon == std::string::npos) return std::nullopt;
  std::size_t len = std::stoul(reply.substr(p, colon - p));
  return reply.substr(colon + 1, len);
}

class NgClient {
 public:
  explicit NgClient(const std::string& where) {
    auto colon = where.find(':');
    to_ = addressOf(where.substr(0, colon), static_cast<std::uint16_t>(std::stoi(where.substr(colon + 1))));
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    timeval tv{2, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NgClient() { close(fd_); }
  std::optional<std::string> call(const std::string& dict) {
    std::string cookie = fmt::format("c{}", ++n_);
    std::string msg = cookie + " " + dict;
    sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to_), sizeof to_);
    char buf[65536];
    ssize_t got = recv(fd_, buf, sizeof buf, 0);
    if (got <= 0) return std::nullopt;
    std::string reply(buf, static_cast<std::size_t>(got));
    if (reply.find("6:result2:ok") == std::string::npos) {
      std::fprintf(stderr, "rtpengine: %s\n", reply.c_str());
      return std::nullopt;
    }
    return bencodeString(reply, "sdp");
  }

 private:
  int fd_ = -1;
  sockaddr_in to_{};
  int n_ = 0;
};

// ---- relays ----

double threadCpuSeconds(pthread_t thread) {
  clockid_t id;
  pthread_getcpuclockid(thread, &id);
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double processCpuSeconds(int pid) {
  std::ifstream f(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close_paren = text.rfind(')');
  std::istringstream rest(text.substr(close_paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15; ++i) {
    rest >> field;
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long rssKib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

// The bare relay: every packet from one socket of a pair goes out of the other to the peer.
class FloorRelay {
 public:
  explicit FloorRelay(int streams) {
    epoll_ = epoll_create1(0);
    for (int i = 0; i < streams; ++i) {
      Pair p;
      p.fd[0] = udpSocket("127.0.0.10");
      p.fd[1] = udpSocket("127.0.0.11");
      pairs_.push_back(p);
    }
    for (std::size_t i = 0; i < pairs_.size(); ++i) {
      for (int side = 0; side < 2; ++side) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i * 2 + static_cast<unsigned>(side);
        epoll_ctl(epoll_, EPOLL_CTL_ADD, pairs_[i].fd[side], &ev);
      }
    }
  }
  std::uint16_t port(int i, int side) const { return portOf(pairs_[i].fd[side]); }
  void peer(int i, int side, const sockaddr_in& a) { pairs_[i].peer[side] = a; }
  void run(std::atomic<bool>& stop) {
    epoll_event events[64];
    char buf[2048];
    while (!stop.load(std::memory_order_relaxed)) {
      int n = epoll_wait(epoll_, events, 64, 50);
      for (int k = 0; k < n; ++k) {
        std::size_t i = events[k].data.u64 / 2;
        int side = static_cast<int>(events[k].data.u64 % 2);
        for (;;) {
          ssize_t got = recv(pairs_[i].fd[side], buf, sizeof buf, 0);
          if (got < 0) break;
          const sockaddr_in& to = pairs_[i].peer[1 - side];
          sendto(pairs_[i].fd[1 - side], buf, static_cast<std::size_t>(got), 0,
                 reinterpret_cast<const sockaddr*>(&to), sizeof to);
        }
      }
    }
  }

 private:
  struct Pair {
    int fd[2] = {-1, -1};
    sockaddr_in peer[2]{};
  };
  int epoll_ = -1;
  std::vector<Pair> pairs_;
};

// ---- the generator ----

struct Totals {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t bad = 0;  // received but not a packet we sent (or failed to decrypt)
};

void generate(std::vector<Stream>& streams, const Options& o, Totals& totals) {
  alignas(16) std::uint8_t packet[2048];
  alignas(16) std::uint8_t in[2048];
  const auto period = std::chrono::microseconds(1000000 / o.pps);
  auto next = Clock::now();
  const auto end =
      next + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  std::uint32_t timestamp = 0;
  auto drain = [&] {
    for (auto& s : streams) {
      for (int fd : {s.caller_fd, s.pbx_fd}) {
        for (;;) {
          ssize_t got = recv(fd, in, sizeof in, 0);
          if (got < 0) break;
          std::size_t len = static_cast<std::size_t>(got);
          if (fd == s.caller_fd && s.caller_in && !s.caller_in->unprotectRtp(in, len)) {
            totals.bad++;
            continue;
          }
          if (len == 172 && in[0] == 0x80) {
            totals.received++;
          } else {
            totals.bad++;
          }
        }
      }
    }
  };
  while (Clock::now() < end) {
    timestamp += 160;
    for (std::size_t i = 0; i < streams.size(); ++i) {
      Stream& s = streams[i];
      ++s.seq;
      for (int direction = 0; direction < 2; ++direction) {
        std::memset(packet, static_cast<int>(i & 0xFF), 172);
        packet[0] = 0x80;
        packet[1] = 0;
        packet[2] = static_cast<std::uint8_t>(s.seq >> 8);
        packet[3] = static_cast<std::uint8_t>(s.seq);
        std::uint32_t ts = htonl(timestamp), ssrc = htonl(static_cast<std::uint32_t>(i * 2 + direction + 1));
        std::memcpy(packet + 4, &ts, 4);
        std::memcpy(packet + 8, &ssrc, 4);
        std::size_t len = 172;
        if (direction == 0 && s.caller_out) s.caller_out->protectRtp(packet, len, sizeof packet);
        int fd = direction == 0 ? s.caller_fd : s.pbx_fd;
        const sockaddr_in& to = direction == 0 ? s.to_public : s.to_pbx_side;
        if (sendto(fd, packet, len, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) > 0) totals.sent++;
      }
    }
    drain();
    next += period;
    std::this_thread::sleep_until(next);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  drain();
}

// --overload: the streams are doubled; the second half are flood streams whose callers, for
// `flood_s` seconds, send as fast as the generator can (from their own, latched addresses: a real
// overload, not spoofing; their PBX ends are never read, so the kernel drops what the relay
// forwards there at no cost to the generator), while the first half keep 50 packets/s each, and
// then only the normal load runs for 3 s. Normal packets carry the 100 ms window they were sent in; what the
// PBX side receives is counted per window, so the report says how much got through during the flood and how
// long after it every window was whole again.
void overload(std::vector<Stream>& all, const Options& o, double flood_s) {
  const std::size_t half = o.overload_shared ? all.size() : all.size() / 2;
  std::vector<Stream*> streams_normal, streams_flood;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i < half) streams_normal.push_back(&all[i]);
    if (i >= half || o.overload_shared) streams_flood.push_back(&all[i]);
  }
  for (std::size_t i = half; i < all.size(); ++i) {
    int tiny = 4096;
    setsockopt(all[i].pbx_fd, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny);
  }
  constexpr int kWindowMs = 100;
  constexpr std::uint32_t kFloodTag = 0xFFFFFFFF;
  const auto start = Clock::now();
  const auto flood_end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(flood_s));
  const auto end = flood_end + std::chrono::seconds(3);
  const std::size_t windows = static_cast<std::size_t>((flood_s + 3) * 1000 / kWindowMs) + 20;
  std::vector<std::uint64_t> sent(windows), received(windows);
  auto windowOf = [&](Clock::time_point t) {
    return static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(t - start).count() / kWindowMs);
  };
  alignas(16) std::uint8_t packet[256];
  std::memset(packet, 0x55, sizeof packet);
  packet[0] = 0x80;
  std::uint64_t flood_sent = 0;
  std::vector<std::uint16_t> flood_seq(streams_flood.size(), 30000);
  constexpr int kBatch = 32;
  std::array<std::array<std::uint8_t, 172>, kBatch> flood_packets{};
  std::array<mmsghdr, kBatch> out{};
  std::array<iovec, kBatch> out_iov{};
  alignas(16) static std::uint8_t in_slots[kBatch][2048];
  std::array<mmsghdr, kBatch> in{};
  std::array<iovec, kBatch> in_iov{};
  for (int k = 0; k < kBatch; ++k) {
    in_iov[k] = iovec{in_slots[k], sizeof in_slots[k]};
    in[k].msg_hdr.msg_iov = &in_iov[k];
    in[k].msg_hdr.msg_iovlen = 1;
  }
  auto drain = [&] {
    for (Stream* s : streams_normal) {
      Stream& st = *s;
      for (;;) {
        int n = recvmmsg(st.pbx_fd, in.data(), kBatch, MSG_DONTWAIT, nullptr);
        if (n <= 0) break;
        for (int k = 0; k < n; ++k) {
          std::uint32_t tag;
          std::memcpy(&tag, in_slots[k] + 12, 4);
          if (tag != kFloodTag && tag < windows) received[tag]++;
        }
        if (n < kBatch) break;
      }
      // The PBX's replies are not part of this test: empty the caller sockets too.
      while (recv(st.caller_fd, in_slots[0], sizeof in_slots[0], MSG_DONTWAIT) > 0) {
      }
    }
  };
  auto next = start;
  auto next_drain = start;
  std::size_t rr = 0;
  std::uint16_t seq = 0;
  for (;;) {
    auto now = Clock::now();
    if (now >= end) break;
    if (now >= next) {
      std::uint32_t w = windowOf(now);
      ++seq;
      for (std::size_t i = 0; i < streams_normal.size(); ++i) {
        packet[2] = static_cast<std::uint8_t>(seq >> 8);
        packet[3] = static_cast<std::uint8_t>(seq);
        std::uint32_t ssrc = htonl(static_cast<std::uint32_t>(i + 1));
        std::memcpy(packet + 8, &ssrc, 4);
        std::memcpy(packet + 12, &w, 4);
        if (sendto(streams_normal[i]->caller_fd, packet, 172, 0,
                   reinterpret_cast<const sockaddr*>(&streams_normal[i]->to_public),
                   sizeof(sockaddr_in)) > 0 &&
            w < windows) {
          sent[w]++;
        }
      }
      next += std::chrono::milliseconds(20);
    }
    if (now >= next_drain) {
      drain();
      next_drain = now + std::chrono::milliseconds(2);
    }
    if (now < flood_end) {
      std::size_t i = rr++ % streams_flood.size();
      Stream& st = *streams_flood[i];
      for (int k = 0; k < kBatch; ++k) {
        auto& f = flood_packets[k];
        std::memset(f.data(), 0x66, f.size());
        f[0] = 0x80;
        std::uint16_t fs = flood_seq[i]++;
        f[2] = static_cast<std::uint8_t>(fs >> 8);
        f[3] = static_cast<std::uint8_t>(fs);
        std::uint32_t ssrc = htonl(static_cast<std::uint32_t>(0x10000 + i));
        std::memcpy(f.data() + 8, &ssrc, 4);
        std::memcpy(f.data() + 12, &kFloodTag, 4);
        out_iov[k] = iovec{f.data(), f.size()};
        out[k] = mmsghdr{};
        out[k].msg_hdr.msg_name = &st.to_public;
        out[k].msg_hdr.msg_namelen = sizeof(sockaddr_in);
        out[k].msg_hdr.msg_iov = &out_iov[k];
        out[k].msg_hdr.msg_iovlen = 1;
      }
      int n = sendmmsg(st.caller_fd, out.data(), kBatch, MSG_DONTWAIT);
      if (n > 0) flood_sent += static_cast<std::uint64_t>(n);
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  drain();
  const std::uint32_t flood_windows = windowOf(flood_end);
  std::uint64_t flood_normal_sent = 0, flood_normal_received = 0;
  for (std::uint32_t w = 0; w < flood_windows; ++w) {
    flood_normal_sent += sent[w];
    flood_normal_received += received[w];
  }
  // The first window after the flood from which every window (but the unfinished last) is whole.
  std::uint32_t last = windowOf(end) - 1;
  std::optional<std::uint32_t> recovered;
  for (std::uint32_t w = flood_windows; w < last; ++w) {
    bool whole_from_here = true;
    for (std::uint32_t v = w; v < last; ++v) {
      if (received[v] * 100 < sent[v] * 99) whole_from_here = false;
    }
    if (whole_from_here) {
      recovered = w;
      break;
    }
  }
  std::printf(
      "overload: %.0f packets/s offered on %zu flood streams for %.0f s, on top of %zu streams x %d pps\n",
      static_cast<double>(flood_sent) / flood_s, streams_flood.size(), flood_s, streams_normal.size(), o.pps);
  std::printf("  normal packets delivered during the flood: %.1f%%\n",
              flood_normal_sent ? 100.0 * static_cast<double>(flood_normal_received) /
                                      static_cast<double>(flood_normal_sent)
                                : 0.0);
  if (recovered) {
    std::printf("  full rate again %u ms after the flood ended (every 100 ms window >= 99%% delivered)\n",
                (*recovered - flood_windows) * kWindowMs);
  } else {
    std::printf("  NOT recovered within 3 s of the flood's end\n");
  }
  for (std::uint32_t w = flood_windows > 5 ? flood_windows - 5 : 0; w < std::min(last, flood_windows + 15);
       ++w) {
    std::printf("    window %+5d ms: %llu/%llu\n", static_cast<int>(w - flood_windows) * kWindowMs,
                static_cast<unsigned long long>(received[w]), static_cast<unsigned long long>(sent[w]));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--target")
      o.target = value();
    else if (a == "--streams")
      o.streams = std::stoi(value());
    else if (a == "--pps")
      o.pps = std::stoi(value());
    else if (a == "--seconds")
      o.seconds = std::stod(value());
    else if (a == "--srtp")
      o.srtp = true;
    else if (a == "--ng")
      o.ng = value();
    else if (a == "--pid")
      o.pid = std::stoi(value());
    else if (a == "--relay-cpu")
      o.relay_cpu = std::stoi(value());
    else if (a == "--load-cpu")
      o.load_cpu = std::stoi(value());
    else if (a == "--overload")
      o.overload_s = std::stod(value());
    else if (a == "--shared")
      o.overload_shared = true;
    else {
      std::fprintf(
          stderr,
          "usage: relay_bench [--target palisade|rtpengine|floor] [--streams N] [--pps N] [--seconds S] "
          "[--srtp] [--ng IP:PORT --pid PID] [--relay-cpu N] [--load-cpu N] [--overload SECONDS "
          "[--shared]]\n");
      return 2;
    }
  }
  pin(o.load_cpu);
  if (o.overload_s > 0 && !o.overload_shared) o.streams *= 2;  // the second half are the flood streams
  std::vector<Stream> streams(static_cast<std::size_t>(o.streams));
  for (auto& s : streams) {
    s.caller_fd = udpSocket(kCallerIp);
    s.pbx_fd = udpSocket(kPbxIp);
    if (o.srtp) media::srtp::randomKey(media::srtp::Suite::AesCm128HmacSha1_80, s.caller_key);
  }
  auto keyStream = [&](Stream& s, const RelaySide& public_side, const RelaySide& pbx_side) {
    s.to_public = addressOf(public_side.ip, public_side.port);
    s.to_pbx_side = addressOf(pbx_side.ip, pbx_side.port);
    if (o.srtp) s.relay_key = public_side.key;
  };

  std::atomic<bool> stop{false};
  std::function<double()> relay_cpu;
  std::function<void()> relay_body;  // palisade, floor: the relay thread's loop
  std::thread relay;
  long rss_before = rssKib();
  std::size_t heap_before = mallinfo2().uordblks;
  std::size_t heap_sessions = 0;
  long rss_sessions = 0;

  // Palisade: sessions made on this thread before the relay thread starts, used only by it after.
  boost::asio::io_context io;
  base::SteadyClock clock;
  stats::Shard shard;
  std::unique_ptr<media::WorkerMedia> worker_media;
  std::vector<std::unique_ptr<dialog::CallMedia>> sessions;
  std::unique_ptr<FloorRelay> floor;

  if (o.target == "palisade") {
    auto cfg = std::make_shared<config::Config>();
    cfg->startup.public_side.address = "127.0.0.10";
    cfg->startup.pbx_side.address = "127.0.0.11";
    cfg->startup.media.first = 20000;
    cfg->startup.media.last = 20000 + static_cast<std::uint16_t>(2 * o.streams + 40);
    worker_media = std::make_unique<media::WorkerMedia>(io, clock, shard, cfg->startup, 0, 1, cfg);
    policy::RequestContext context;
    for (auto& s : streams) {
      auto session = worker_media->create(context);
      dialog::BodyCrossing to_pbx(1, sip::Method::Invite, 0, true);
      to_pbx.from_side = net::Side::Public;
      to_pbx.to_side = net::Side::Pbx;
      to_pbx.source = boost::asio::ip::make_address(kCallerIp);
      to_pbx.source_verified = true;
      dialog::BodyCrossing to_caller(0, sip::Method::Invite, 200, true);
      to_caller.from_side = net::Side::Pbx;
      to_caller.to_side = net::Side::Public;
      to_caller.source = boost::asio::ip::make_address(kPbxIp);
      to_caller.source_verified = true;
      std::string offer = sdpOf(kCallerIp, portOf(s.caller_fd), o.srtp, o.srtp ? &s.caller_key : nullptr);
      std::string answer = sdpOf(kPbxIp, portOf(s.pbx_fd), false, nullptr);
      std::string out1, out2;
      auto v1 = session->rewrite(to_pbx, sip::Body{"application/sdp", offer}, out1);
      auto v2 = session->rewrite(to_caller, sip::Body{"application/sdp", answer}, out2);
      RelaySide public_side, pbx_side;
      if (v1.status != 0 || v2.status != 0 || !readSide(out1, pbx_side) || !readSide(out2, public_side)) {
        std::fprintf(stderr, "palisade refused a stream (%d, %d)\n", v1.status, v2.status);
        return 1;
      }
      keyStream(s, public_side, pbx_side);
      sessions.push_back(std::move(session));
    }
    rss_sessions = rssKib();
    heap_sessions = mallinfo2().uordblks;
    relay_body = [&] {
      auto guard = boost::asio::make_work_guard(io);
      while (!stop.load(std::memory_order_relaxed)) io.run_for(std::chrono::milliseconds(50));
    };
  } else if (o.target == "floor") {
    floor = std::make_unique<FloorRelay>(o.streams);
    for (int i = 0; i < o.streams; ++i) {
      Stream& s = streams[static_cast<std::size_t>(i)];
      floor->peer(i, 0, addressOf(kCallerIp, portOf(s.caller_fd)));
      floor->peer(i, 1, addressOf(kPbxIp, portOf(s.pbx_fd)));
      keyStream(s, RelaySide{"127.0.0.10", floor->port(i, 0), {}},
                RelaySide{"127.0.0.11", floor->port(i, 1), {}});
    }
    relay_body = [&] { floor->run(stop); };
  } else if (o.target == "rtpengine") {
    if (o.pid == 0) {
      std::fprintf(stderr, "--target rtpengine needs --pid (the daemon's process id)\n");
      return 2;
    }
    NgClient ng(o.ng);
    for (std::size_t i = 0; i < streams.size(); ++i) {
      Stream& s = streams[i];
      std::string call_id = fmt::format("bench-{}-{}", getpid(), i);
      std::string offer = sdpOf(kCallerIp, portOf(s.caller_fd), o.srtp, o.srtp ? &s.caller_key : nullptr);
      std::string answer = sdpOf(kPbxIp, portOf(s.pbx_fd), false, nullptr);
      // The callee gets plain RTP/AVP; rtpengine answers the caller with SRTP and its own key.
      std::string extra = o.srtp ? bstr("transport-protocol") + bstr("RTP/AVP") : "";
      auto to_pbx = ng.call("d" + bstr("command") + bstr("offer") + bstr("call-id") + bstr(call_id) +
                            bstr("from-tag") + bstr("caller") + bstr("sdp") + bstr(offer) + extra + "e");
      auto to_caller = ng.call("d" + bstr("command") + bstr("answer") + bstr("call-id") + bstr(call_id) +
                               bstr("from-tag") + bstr("caller") + bstr("to-tag") + bstr("callee") +
                               bstr("sdp") + bstr(answer) + "e");
      RelaySide public_side, pbx_side;
      if (!to_pbx || !to_caller || !readSide(*to_pbx, pbx_side) || !readSide(*to_caller, public_side)) {
        std::fprintf(stderr, "rtpengine refused stream %zu\n", i);
        return 1;
      }
      keyStream(s, public_side, pbx_side);
    }
    int pid = o.pid;
    relay_cpu = [pid] { return processCpuSeconds(pid); };
  } else {
    std::fprintf(stderr, "unknown --target %s\n", o.target.c_str());
    return 2;
  }

  // The generator runs in a child process, so that its sockets and SRTP sessions are not in the
  // relay's memory figure; it reports over a pipe after a second of warm-up (latching, SRTP
  // streams made on first packets) and after the measured run.
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    close(pipe_fds[0]);
    pin(o.load_cpu);
    for (auto& st : streams) {
      if (!o.srtp) continue;
      st.caller_out = media::srtp::Session::create(media::srtp::Session::Direction::Outbound, st.caller_key);
      if (st.relay_key)
        st.caller_in = media::srtp::Session::create(media::srtp::Session::Direction::Inbound, *st.relay_key);
    }
    Totals warm;
    Options warm_options = o;
    warm_options.seconds = 1;
    generate(streams, warm_options, warm);
    char ready = 'w';
    if (write(pipe_fds[1], &ready, 1) != 1) _exit(1);
    Totals run;
    if (o.overload_s > 0) {
      overload(streams, o, o.overload_s);
    } else {
      generate(streams, o, run);
    }
    std::fflush(stdout);
    if (write(pipe_fds[1], &run, sizeof run) != static_cast<ssize_t>(sizeof run)) _exit(1);
    _exit(0);
  }
  close(pipe_fds[1]);
  if (relay_body) {
    relay = std::thread([&] {
      pin(o.relay_cpu);
      relay_body();
    });
    pthread_t handle = relay.native_handle();
    relay_cpu = [handle] { return threadCpuSeconds(handle); };
  }
  char ready = 0;
  if (read(pipe_fds[0], &ready, 1) != 1) return 1;
  long rss_warm = rssKib();
  std::size_t heap_warm = mallinfo2().uordblks;
  double cpu0 = relay_cpu();
  auto t0 = Clock::now();
  Totals totals;
  if (read(pipe_fds[0], &totals, sizeof totals) != static_cast<ssize_t>(sizeof totals)) return 1;
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = relay_cpu() - cpu0;
  waitpid(child, nullptr, 0);
  stop = true;
  if (relay.joinable()) relay.join();

  if (o.overload_s > 0) {
    std::printf("target %s: relay CPU %.2f s over %.1f s\n", o.target.c_str(), cpu, wall);
    return 0;
  }
  std::printf("target %s%s: %d streams x 2 directions x %d pps, %.1f s\n", o.target.c_str(),
              o.srtp ? " (SRTP caller side, RTP PBX side)" : " (RTP both sides)", o.streams, o.pps, wall);
  std::printf(
      "  sent %llu, relayed back to the generator %llu (%.2f%%), bad %llu\n",
      static_cast<unsigned long long>(totals.sent), static_cast<unsigned long long>(totals.received),
      totals.sent ? 100.0 * static_cast<double>(totals.received) / static_cast<double>(totals.sent) : 0.0,
      static_cast<unsigned long long>(totals.bad));
  std::printf("  relay CPU %.3f s (%.1f%% of a core): %.0f packets per CPU second, %.2f us per packet\n", cpu,
              100.0 * cpu / wall, cpu > 0 ? static_cast<double>(totals.received) / cpu : 0.0,
              totals.received ? 1e6 * cpu / static_cast<double>(totals.received) : 0.0);
  if (o.target == "palisade") {
    std::printf(
        "  memory: %.2f kB per call after set-up, %.2f kB per call with media flowing (RSS, %d calls)\n",
        static_cast<double>(rss_sessions - rss_before) / o.streams,
        static_cast<double>(rss_warm - rss_before) / o.streams, o.streams);
    std::printf("  heap in use: %.2f kB per call after set-up, %.2f kB with media flowing\n",
                static_cast<double>(heap_sessions - heap_before) / 1024.0 / o.streams,
                static_cast<double>(heap_warm - heap_before) / 1024.0 / o.streams);
  }
  sessions.clear();
  return totals.received * 100 >= totals.sent * 99 ? 0 : 1;
}
