#include "core/app/daemon.h"

#include <random>
#include <thread>

#include <boost/asio/signal_set.hpp>

#include "core/base/log.h"
#include "core/stats/http_server.h"

namespace palisade::app {

namespace {

std::uint32_t workerCountFor(const config::Config& config) {
  if (config.workers != 0) return config.workers;
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

void applyLogLevel(const config::Config& config) {
  base::LogLevel level = base::LogLevel::Info;
  if (base::parseLogLevel(config.log_level, level)) base::setLogLevel(level);
}

}  // namespace

Daemon::Daemon(std::shared_ptr<const config::Config> config, std::string config_path)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      worker_count_(workerCountFor(*config_)),
      metrics_(worker_count_) {}

Daemon::~Daemon() { shutdown(); }

int Daemon::run() {
  applyLogLevel(*config_);
  auto free = transport::checkListenersFree(*config_);
  if (!free) {
    LOG_ERROR("cannot listen: {}", free.error().message);
    return 1;
  }
  std::random_device entropy;
  for (std::uint32_t i = 0; i < worker_count_; ++i) {
    workers_.push_back(std::make_unique<event::Worker>(i, metrics_.shard(i), config_->inbox_depth));
    dispatcher_.add(workers_.back().get());
  }
  for (std::uint32_t i = 0; i < worker_count_; ++i) {
    event::Worker& worker = *workers_[i];
    networks_.push_back(std::make_unique<transport::WorkerNetwork>(worker, dispatcher_, limiter_, *config_));
    chains_.push_back(std::make_unique<policy::PolicyChain>(*config_));
    auto opened = networks_.back()->open(*config_);
    if (!opened) {
      LOG_ERROR("cannot listen: {}", opened.error().message);
      return 1;
    }
    std::uint64_t seed = (static_cast<std::uint64_t>(entropy()) << 32) ^ entropy();
    worker.attach(*networks_.back(), config_, seed);
    worker.setSourceFilter(chains_.back().get());
    worker.setRequestFilter(chains_.back().get());
  }

  stats::ManagementServer management(control_, config_->management_address, config_->management_port,
                                     [this] { return metrics_.renderPrometheus(); });
  auto started = management.start();
  if (!started) {
    LOG_ERROR("cannot start the management endpoint: {}", started.error().message);
    return 1;
  }
  for (std::uint32_t i = 0; i < worker_count_; ++i) {
    // Sockets are started on their worker's thread: asio objects stay with one thread.
    transport::WorkerNetwork* network = networks_[i].get();
    workers_[i]->control([network] { network->start(); });
    workers_[i]->start();
  }
  LOG_INFO(
      "palisade started: {} worker(s), public {}:{} (udp) {}:{} (tcp), pbx side {}:{}, management {}:{}, "
      "config {}",
      worker_count_, config_->public_side.address, config_->public_side.udp_port,
      config_->public_side.address, config_->public_side.tcp_port, config_->pbx_side.address,
      config_->pbx_side.udp_port, config_->management_address, config_->management_port,
      config_->source_name);

  boost::asio::signal_set signals(control_, SIGHUP, SIGTERM, SIGINT);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
          reload();
          signals.async_wait(on_signal);
          return;
        }
        LOG_INFO("signal {}: shutting down", signal);
        management.stop();
        control_.stop();
      };
  signals.async_wait(on_signal);
  control_.run();
  shutdown();
  LOG_INFO("palisade stopped");
  return 0;
}

void Daemon::reload() {
  config::ConfigResult loaded =
      config_path_.empty() ? config::defaultConfig() : config::loadConfigFile(config_path_);
  if (!loaded) {
    metrics_.controlShard().add(stats::Counter::ConfigReloadFailures);
    LOG_ERROR("reload rejected, keeping the running config: {}", loaded.error().toString());
    return;
  }
  std::shared_ptr<const config::Config> next = loaded.value();
  for (const auto& key : config::restartOnlyChanges(*config_, *next)) {
    LOG_WARN("reload: {} changed but only takes effect after a restart", key);
  }
  config_ = next;
  applyLogLevel(*next);
  for (std::uint32_t i = 0; i < worker_count_; ++i) {
    event::Worker* worker = workers_[i].get();
    transport::WorkerNetwork* network = networks_[i].get();
    policy::PolicyChain* chain = chains_[i].get();
    worker->control([worker, network, chain, next] {
      worker->engine().applyConfig(next);
      network->applyConfig(*next);
      chain->apply(*next);
    });
  }
  metrics_.controlShard().add(stats::Counter::ConfigReloads);
  LOG_INFO("config reloaded from {}", next->source_name);
}

void Daemon::shutdown() {
  for (auto& worker : workers_) worker->stop();
  for (auto& worker : workers_) worker->join();
  // Worker threads are gone: closing sockets from here is safe.
  for (auto& network : networks_) network->close();
  workers_.clear();
  networks_.clear();
  chains_.clear();
}

}  // namespace palisade::app
