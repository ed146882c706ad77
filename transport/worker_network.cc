#include "transport/worker_network.h"

#include <fmt/format.h>

#include "core/base/log.h"

namespace palisade::transport {

namespace {

// Bytes for a TCP connection that another worker owns, on their way to it.
class StreamSendTask final : public event::Task {
 public:
  StreamSendTask(TcpTransport& tcp, const net::Flow& flow, std::string&& bytes)
      : tcp_(tcp), flow_(flow), bytes_(std::move(bytes)) {}
  void run() override { tcp_.send(flow_, std::move(bytes_)); }

 private:
  TcpTransport& tcp_;
  net::Flow flow_;
  std::string bytes_;
};

}  // namespace

sip::Limits limitsOf(const config::Config& config) {
  return sip::Limits{config.limits.max_message_bytes, config.limits.max_headers,
                     config.limits.max_line_bytes};
}

StreamSettings streamSettingsOf(const config::Config& config) {
  StreamSettings s;
  s.limits = limitsOf(config);
  s.idle_timeout_s = config.tcp_idle_timeout_s;
  s.head_timeout_s = config.tcp_head_timeout_s;
  s.max_connections = config.tcp_max_connections;
  s.max_connections_per_ip = config.tcp_max_connections_per_ip;
  s.max_send_queue_bytes = config.tcp_max_send_queue_bytes;
  s.handshake_timeout_s = config.tls.handshake_timeout_s;
  s.max_handshakes = config.tls.max_handshakes;
  s.max_handshakes_per_ip = config.tls.max_handshakes_per_ip;
  s.max_tls_connections_per_ip = config.tls.max_connections_per_ip;
  return s;
}

base::Result<bool> checkPortFree(const boost::asio::ip::address& address, std::uint16_t port, bool tcp) {
  boost::asio::io_context io;
  boost::system::error_code ec;
  if (tcp) {
    boost::asio::ip::tcp::acceptor probe(io);
    boost::asio::ip::tcp::endpoint endpoint(address, port);
    probe.open(endpoint.protocol(), ec);
    if (!ec) probe.set_option(boost::asio::socket_base::reuse_address(true), ec);  // TIME_WAIT is fine
    if (!ec) probe.bind(endpoint, ec);
  } else {
    boost::asio::ip::udp::socket probe(io);
    boost::asio::ip::udp::endpoint endpoint(address, port);
    probe.open(endpoint.protocol(), ec);
    if (!ec) probe.bind(endpoint, ec);
  }
  if (ec) {
    return base::Error{
        fmt::format("{} {}:{}: {}", tcp ? "tcp" : "udp", address.to_string(), port, ec.message())};
  }
  return true;
}

base::Result<bool> checkListenersFree(const config::StartupSettings& startup) {
  for (const config::Listener* listener : {&startup.public_side, &startup.pbx_side}) {
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(listener->address, ec);
    if (ec) return base::Error{"bad listen address " + listener->address};
    auto udp = checkPortFree(address, listener->udp_port, false);
    if (!udp) return udp.error();
    auto tcp = checkPortFree(address, listener->tcp_port, true);
    if (!tcp) return tcp.error();
    if (listener->tls_port != 0) {
      auto tls = checkPortFree(address, listener->tls_port, true);
      if (!tls) return tls.error();
    }
  }
  return true;
}

WorkerNetwork::WorkerNetwork(event::Worker& worker, net::Receiver& receiver, policy::PacketFilter* filter,
                             stats::Shard& stats, ConnectionLimiter& limiter, ConnectionLimiter& tls_limiter,
                             const config::Config& config)
    : worker_(worker),
      stats_(stats),
      udp_{UdpListener(worker.io(), receiver, filter, stats, net::Side::Public),
           UdpListener(worker.io(), receiver, filter, stats, net::Side::Pbx)},
      tcp_(worker.io(), static_cast<std::uint16_t>(worker.index()), receiver, filter, stats, limiter,
           tls_limiter, streamSettingsOf(config)) {}

base::Result<bool> WorkerNetwork::open(const config::StartupSettings& startup) {
  const config::Listener* listeners[2] = {&startup.public_side, &startup.pbx_side};
  for (int side = 0; side < 2; ++side) {
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(listeners[side]->address, ec);
    if (ec) return base::Error{"bad listen address " + listeners[side]->address};
    auto udp = udp_[side].open(address, listeners[side]->udp_port);
    if (!udp) return udp.error();
    auto tcp = tcp_.listen(static_cast<net::Side>(side), address, listeners[side]->tcp_port);
    if (!tcp) return tcp.error();
    if (listeners[side]->tls_port != 0) {
      auto tls =
          tcp_.listen(static_cast<net::Side>(side), address, listeners[side]->tls_port, net::Transport::Tls);
      if (!tls) return tls.error();
    }
  }
  return true;
}

std::uint16_t WorkerNetwork::localPort(net::Side side, net::Transport transport) const {
  if (transport == net::Transport::Udp) return udp_[static_cast<int>(side)].localPort();
  return tcp_.localPort(side, transport);
}

void WorkerNetwork::start() {
  udp_[0].start();
  udp_[1].start();
  tcp_.start();
}

void WorkerNetwork::close() {
  udp_[0].close();
  udp_[1].close();
  tcp_.close();
}

void WorkerNetwork::applyConfig(const config::Config& config) { tcp_.setSettings(streamSettingsOf(config)); }

void WorkerNetwork::send(const net::Flow& flow, std::string&& bytes) {
  if (flow.transport == net::Transport::Udp) {
    udp_[static_cast<int>(flow.side)].send(flow.remote, bytes);
    return;
  }
  if (flow.conn_id != 0 && flow.conn_worker != worker_.index() && flow.conn_worker < peers_.size()) {
    WorkerNetwork& owner = *peers_[flow.conn_worker];
    std::unique_ptr<event::Task> task = std::make_unique<StreamSendTask>(owner.tcp_, flow, std::move(bytes));
    if (!owner.worker_.post(task)) {
      stats_.add(stats::Counter::InboxOverflows);
      owner.worker_.postOverflow(std::move(task));
    }
    return;
  }
  tcp_.send(flow, std::move(bytes));
}

}  // namespace palisade::transport
