#pragma once
// The running daemon: workers with their transports and policy chains, and the control
// thread (the caller of run()) that owns signals, config reload and the management endpoint.
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "core/config/config.h"
#include "core/event/worker.h"
#include "core/stats/metrics.h"
#include "policy/policy_chain.h"
#include "transport/worker_network.h"

namespace palisade::app {

class Daemon {
 public:
  // `config_path` empty: the built-in default config (SIGHUP then re-reads the default).
  Daemon(std::shared_ptr<const config::Config> config, std::string config_path);
  ~Daemon();
  // Binds everything, starts the workers and blocks until SIGTERM/SIGINT. Returns the exit code.
  int run();

 private:
  void reload();
  void shutdown();

  std::shared_ptr<const config::Config> config_;
  std::string config_path_;
  std::uint32_t worker_count_;
  stats::Metrics metrics_;
  event::Dispatcher dispatcher_;
  transport::ConnectionLimiter limiter_;
  std::vector<std::unique_ptr<event::Worker>> workers_;
  std::vector<std::unique_ptr<transport::WorkerNetwork>> networks_;
  std::vector<std::unique_ptr<policy::PolicyChain>> chains_;
  boost::asio::io_context control_;
};

}  // namespace palisade::app
