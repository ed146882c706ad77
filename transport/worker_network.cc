#include "transport/worker_network.h"

#include <fmt/format.h>

#include "core/base/log.h"

namespace palisade::transport {

sip::Limits limitsOf(const config::Config& config) {
  return sip::Limits{config.limits.max_message_bytes, config.limits.max_headers,
                     config.limits.max_line_bytes};
}

TcpSettings tcpSettingsOf(const config::Config& config) {
  return TcpSettings{limitsOf(config), config.tcp_idle_timeout_s, config.tcp_max_connections,
                     config.tcp_max_connections_per_ip};
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

base::Result<bool> checkListenersFree(const config::Config& config) {
  for (const config::Listener* listener : {&config.public_side, &config.pbx_side}) {
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(listener->address, ec);
    if (ec) return base::Error{"bad listen address " + listener->address};
    auto udp = checkPortFree(address, listener->udp_port, false);
    if (!udp) return udp.error();
    auto tcp = checkPortFree(address, listener->tcp_port, true);
    if (!tcp) return tcp.error();
  }
  return true;
}

WorkerNetwork::WorkerNetwork(event::Worker& worker, event::Dispatcher& dispatcher, ConnectionLimiter& limiter,
                             const config::Config& config)
    : worker_(worker),
      dispatcher_(dispatcher),
      udp_{UdpListener(worker, dispatcher, net::Side::Public, limitsOf(config)),
           UdpListener(worker, dispatcher, net::Side::Pbx, limitsOf(config))},
      tcp_(worker, dispatcher, limiter, tcpSettingsOf(config)) {}

base::Result<bool> WorkerNetwork::open(const config::Config& config) {
  const config::Listener* listeners[2] = {&config.public_side, &config.pbx_side};
  for (int side = 0; side < 2; ++side) {
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(listeners[side]->address, ec);
    if (ec) return base::Error{"bad listen address " + listeners[side]->address};
    auto udp = udp_[side].open(address, listeners[side]->udp_port);
    if (!udp) return udp.error();
    auto tcp = tcp_.listen(static_cast<net::Side>(side), address, listeners[side]->tcp_port);
    if (!tcp) return tcp.error();
  }
  return true;
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

void WorkerNetwork::applyConfig(const config::Config& config) {
  udp_[0].setLimits(limitsOf(config));
  udp_[1].setLimits(limitsOf(config));
  tcp_.setSettings(tcpSettingsOf(config));
}

void WorkerNetwork::send(const net::Flow& flow, std::string&& bytes) {
  if (flow.transport == net::Transport::Udp) {
    udp_[static_cast<int>(flow.side)].send(flow.remote, bytes);
    return;
  }
  if (flow.conn_id != 0 && flow.conn_worker != worker_.index() && flow.conn_worker < dispatcher_.size()) {
    auto envelope = std::make_unique<event::Envelope>();
    envelope->flow = flow;
    envelope->bytes = std::move(bytes);
    event::Worker& owner = dispatcher_.worker(flow.conn_worker);
    if (!owner.post(envelope)) {
      worker_.stats().add(stats::Counter::InboxOverflows);
      owner.postOverflow(std::move(envelope));
    }
    return;
  }
  tcp_.send(flow, std::move(bytes));
}

}  // namespace palisade::transport
