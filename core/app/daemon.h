#pragma once
// The running daemon: workers with their dispatchers, engines, transports and policy chains,
// and the control thread (the caller of run()) that owns signals, config reload and the
// management endpoint. This is the only place that sees every layer: it wires each worker's
// transports to its dispatcher, and each dispatcher to the engines of all workers.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "certs/cert_store.h"
#include "core/app/alert_relay.h"
#include "core/app/alert_webhook.h"
#include "core/app/cdr_writer.h"
#include "core/config/config.h"
#include "core/dialog/dispatcher.h"
#include "core/dialog/engine.h"
#include "core/event/worker.h"
#include "core/routing/local_location_store.h"
#include "core/stats/http_server.h"
#include "core/stats/metrics.h"
#include "media/relay/media_session.h"
#include "policy/api/shared_counters.h"
#include "policy/bans/local_store.h"
#include "policy/fraud/local_fraud_store.h"
#include "policy/policy_chain.h"
#include "policy/snapshot.h"
#include "transport/worker_network.h"

namespace palisade::app {

// The folder of the running binary: the built-in default config's relative file names (the
// DEV-ONLY certificate the build makes) are taken from there.
std::string binaryDir();

// The config named by `path`, or the built-in default when it is empty.
config::ConfigResult loadConfig(const std::string& path);

// The names the certificates of the configured TLS peers (the PBX, trunks) must carry, by
// "address:port".
std::map<std::string, std::string> tlsPeerNames(const config::Config& config);

class Daemon {
 public:
  // `config_path` empty: the built-in default config (SIGHUP then re-reads the default).
  Daemon(std::shared_ptr<const config::Config> config, std::string config_path);
  ~Daemon();
  // Binds everything, starts the workers and blocks until SIGTERM/SIGINT. Returns the exit code.
  int run();

 private:
  // Everything one worker thread owns.
  struct WorkerParts {
    std::unique_ptr<event::Worker> worker;
    std::unique_ptr<dialog::Dispatcher> dispatcher;
    std::unique_ptr<policy::PolicyChain> chain;
    std::unique_ptr<transport::WorkerNetwork> network;
    std::unique_ptr<media::WorkerMedia> media;  // outlives the engine: calls give their ports back
    std::unique_ptr<dialog::Engine> engine;
  };
  void reload();
  // The alert webhook `config` asks for (null for none); control thread.
  base::Result<std::unique_ptr<AlertWebhook>> makeWebhook(const config::Config& config);
  void shutdown();
  // The certificates of `config`, checked; logs what expires soon. Control thread.
  base::Result<std::shared_ptr<const certs::TlsContexts>, certs::CertError> loadTls(
      const config::Config& config);
  // palisade_tls_certificate_expiry_seconds per certificate, for /metrics.
  std::string tlsMetrics() const;
  // GET /bans (JSON) and DELETE /bans/ADDRESS; control thread.
  stats::ManagementServer::Reply bansRoute(std::string_view method, std::string_view path);
  // GET /fraud/blocks (JSON) and DELETE /fraud/blocks/KEY (a caller anomaly detection blocked).
  stats::ManagementServer::Reply fraudRoute(std::string_view method, std::string_view path);
  // GET /registrations (JSON); control thread.
  stats::ManagementServer::Reply registrationsRoute(std::string_view method, std::string_view path);
  // Once a second on the control thread: logs bans and registrations that ended, updates the
  // bans and registrations gauges.
  void sweep();
  std::int64_t bans_reported_ = 0;
  std::int64_t registrations_reported_ = 0;

  std::shared_ptr<const config::Config> config_;
  std::string config_path_;
  std::uint32_t worker_count_;
  stats::Metrics metrics_;
  policy::RuleRegistry rules_;
  std::unique_ptr<policy::AuthState> auth_ =
      std::make_unique<policy::AuthState>();  // nonce key, replay table
  // Failure counts and bans, shared by every worker; survives reloads.
  std::unique_ptr<policy::bans::LocalStateStore> store_ = std::make_unique<policy::bans::LocalStateStore>();
  // The users' registrations, shared by every worker; survives reloads.
  std::unique_ptr<routing::LocalLocationStore> location_ = std::make_unique<routing::LocalLocationStore>();
  // Toll-fraud counts, spend, anomaly baselines and blocks, shared by every worker; survives reloads.
  std::unique_ptr<policy::fraud::LocalFraudStore> fraud_store_ =
      std::make_unique<policy::fraud::LocalFraudStore>();
  policy::SharedCounters shared_;
  std::shared_ptr<const policy::PolicySnapshot> policy_;
  transport::ConnectionLimiter limiter_;
  transport::ConnectionLimiter tls_limiter_;
  // Session-ticket keys outlive every context version (resumption across reloads).
  std::shared_ptr<certs::TicketKeys> tickets_ = std::make_shared<certs::TicketKeys>();
  std::shared_ptr<const certs::TlsContexts> tls_;
  std::vector<WorkerParts> workers_;
  boost::asio::io_context control_;
  // On the control thread's io_context, so after it (destroyed first).
  std::unique_ptr<CdrWriter> cdr_;                                  // null: no fraud.cdr_file
  std::vector<std::unique_ptr<dialog::CallRecordSink>> cdr_sinks_;  // one per worker
  std::unique_ptr<AlertWebhook> webhook_;                           // null: no fraud.webhook_url
  std::unique_ptr<AlertRelay> alerts_;
};

}  // namespace palisade::app
