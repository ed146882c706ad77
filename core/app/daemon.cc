#include "core/app/daemon.h"

#include <unistd.h>

#include <ctime>
#include <thread>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/app/json_text.h"
#include "core/base/log.h"
#include "core/net/endpoint.h"
#include "core/stats/http_server.h"
#include "transport/fd_limit.h"

namespace palisade::app {

namespace {

std::uint32_t workerCountFor(const config::Config& config) {
  if (config.startup.workers != 0) return config.startup.workers;
  // The worker index is written into identifiers as two hex digits: at most 256 workers.
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : std::min(cores, 256u);
}

// Text from the network as a JSON string value, quotes included (bad UTF-8 repaired).
std::string jsonString(std::string_view text) {
  std::string out;
  appendJsonString(out, text);
  return out;
}

void applyLogLevel(const config::Config& config) {
  base::LogLevel level = base::LogLevel::Info;
  if (base::parseLogLevel(config.log_level, level)) base::setLogLevel(level);
}

std::int64_t unixNow() { return static_cast<std::int64_t>(std::time(nullptr)); }

}  // namespace

std::string binaryDir() {
  char path[4096];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return ".";
  std::string text(path, static_cast<std::size_t>(n));
  std::size_t slash = text.rfind('/');
  return slash == std::string::npos || slash == 0 ? std::string("/") : text.substr(0, slash);
}

config::ConfigResult loadConfig(const std::string& path) {
  return path.empty() ? config::defaultConfig(binaryDir()) : config::loadConfigFile(path);
}

std::map<std::string, std::string> tlsPeerNames(const config::Config& config) {
  std::map<std::string, std::string> names;
  auto add = [&names](const std::string& host, std::uint16_t port, config::TransportKind transport,
                      const std::string& server_name) {
    if (transport != config::TransportKind::Tls) return;
    boost::system::error_code ec;
    net::Endpoint endpoint{boost::asio::ip::make_address(host, ec), port};
    if (!ec) names[endpoint.toString()] = server_name.empty() ? host : server_name;
  };
  add(config.pbx.host, config.pbx.port, config.pbx.transport, config.pbx.tls_server_name);
  for (const auto& trunk : config.trunks) add(trunk.host, trunk.port, trunk.transport, trunk.tls_server_name);
  return names;
}

base::Result<std::shared_ptr<const certs::TlsContexts>, certs::CertError> Daemon::loadTls(
    const config::Config& config) {
  auto built = certs::buildTlsContexts(config, tickets_, unixNow());
  if (!built) return built.error();
  for (const auto& info : built.value()->certificates()) {
    LOG_INFO("tls: certificate {} (CN {}, {} chain certificate(s)), sha256 {}, valid until {}",
             info.certificate_file, info.subject.empty() ? "-" : info.subject, info.chain_length,
             info.sha256_fingerprint, certs::utcDate(info.not_after));
  }
  for (const auto& warning : certs::expiryWarnings(*built.value(), unixNow(), config.tls.expiry_warning_days))
    LOG_WARN("tls: {}", warning);
  return built;
}

std::string Daemon::tlsMetrics() const {
  std::string out;
  if (tls_ == nullptr || tls_->certificates().empty()) return out;
  out +=
      "# HELP palisade_tls_certificate_expiry_seconds Seconds until each loaded certificate expires.\n"
      "# TYPE palisade_tls_certificate_expiry_seconds gauge\n";
  std::int64_t now = unixNow();
  for (const auto& info : tls_->certificates()) {
    // Our own file names from the config: quotes and backslashes escaped for the label.
    std::string file;
    for (char c : info.certificate_file) {
      if (c == '"' || c == '\\') file.push_back('\\');
      if (c != '\n') file.push_back(c);
    }
    out += fmt::format("palisade_tls_certificate_expiry_seconds{{file=\"{}\"}} {}\n", file,
                       info.not_after - now);
  }
  return out;
}

Daemon::Daemon(std::shared_ptr<const config::Config> config, std::string config_path)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      worker_count_(workerCountFor(*config_)),
      metrics_(worker_count_) {}

Daemon::~Daemon() { shutdown(); }

int Daemon::run() {
  applyLogLevel(*config_);
  for (const auto& warning : config_->warnings) LOG_WARN("config: {}", warning);
  auto fds = transport::ensureDescriptorLimit(
      transport::descriptorsNeeded(config_->tcp_max_connections, worker_count_));
  if (!fds) {
    LOG_ERROR("cannot start: {}", fds.error().message);
    return 1;
  }
  auto free = transport::checkListenersFree(config_->startup);
  if (!free) {
    LOG_ERROR("cannot listen: {}", free.error().message);
    return 1;
  }
  auto compiled =
      policy::compileSnapshot(*config_, rules_, *auth_, *store_, *location_, &shared_, fraud_store_.get());
  if (!compiled) {
    LOG_ERROR("cannot start: policy: {}", compiled.error().message);
    return 1;
  }
  policy_ = compiled.value();
  auto tls = loadTls(*config_);
  if (!tls) {
    LOG_ERROR("cannot start: tls: {}", tls.error().toString());
    return 1;
  }
  tls_ = tls.value();
  std::map<std::string, std::string> tls_peer_names = tlsPeerNames(*config_);

  if (!config_->fraud.cdr_file.empty()) {
    auto cdr = CdrWriter::open(control_, config_->fraud.cdr_file, metrics_.controlShard());
    if (!cdr) {
      LOG_ERROR("cannot start: fraud.cdr_file: {}", cdr.error().message);
      return 1;
    }
    cdr_ = std::move(cdr.value());
  }
  alerts_ = std::make_unique<AlertRelay>(control_, metrics_.controlShard());
  if (auto webhook = makeWebhook(*config_); !webhook) {
    LOG_ERROR("cannot start: fraud.webhook_url: {}", webhook.error().message);
    return 1;
  } else {
    webhook_ = std::move(webhook.value());
    alerts_->setWebhook(webhook_.get());
  }

  sip::Limits limits = transport::limitsOf(*config_);
  for (std::uint32_t i = 0; i < worker_count_; ++i) {
    WorkerParts parts;
    stats::Shard& shard = metrics_.shard(i);
    parts.worker = std::make_unique<event::Worker>(i, config_->startup.inbox_depth);
    parts.dispatcher = std::make_unique<dialog::Dispatcher>(i, shard, limits);
    parts.chain = std::make_unique<policy::PolicyChain>(policy_, parts.worker->clock(), &shard, i);
    parts.dispatcher->setFilter(parts.chain.get());
    policy::installDefaultStages(*parts.chain);
    parts.network = std::make_unique<transport::WorkerNetwork>(
        *parts.worker, *parts.dispatcher, parts.chain.get(), shard, limiter_, tls_limiter_, *config_);
    parts.engine =
        std::make_unique<dialog::Engine>(i, *parts.network, parts.worker->clock(), shard, config_, shared_);
    parts.engine->setFilter(parts.chain.get());
    parts.chain->setAlertSink(alerts_.get());
    if (cdr_ != nullptr) {
      cdr_sinks_.push_back(cdr_->sinkFor(shard));
      parts.engine->setRecordSink(cdr_sinks_.back().get());
    }
    parts.engine->setLocation(location_.get());
    parts.media = std::make_unique<media::WorkerMedia>(parts.worker->io(), parts.worker->clock(), shard,
                                                       config_->startup, i, worker_count_, config_);
    parts.engine->setMediaFactory(parts.media.get());
    if (config_->media.anchor && parts.media->pool().capacity() == 0) {
      LOG_ERROR("media: ports {}-{} leave worker {} no RTP/RTCP pair; widen [media] port_min/port_max",
                config_->startup.media.first, config_->startup.media.last, i);
      return 1;
    }
    dialog::Engine* engine = parts.engine.get();
    policy::PolicyChain* chain = parts.chain.get();
    event::Worker* worker = parts.worker.get();
    parts.worker->setTick([engine, chain, worker] {
      engine->runTimers();
      chain->noteLoad(worker->lagMs(), worker->inboxFillPercent());
    });
    auto opened = parts.network->open(config_->startup);
    workers_.push_back(std::move(parts));
    if (!opened) {
      LOG_ERROR("cannot listen: {}", opened.error().message);
      return 1;
    }
  }
  std::vector<dialog::Dispatcher::Owner> owners;
  std::vector<transport::WorkerNetwork*> networks;
  for (auto& parts : workers_) {
    owners.push_back({parts.worker.get(), parts.engine.get()});
    networks.push_back(parts.network.get());
  }
  for (auto& parts : workers_) {
    parts.dispatcher->setOwners(owners);
    parts.network->setPeers(networks);
  }

  stats::ManagementServer management(control_, config_->startup.management_address,
                                     config_->startup.management_port,
                                     [this] { return metrics_.renderPrometheus() + tlsMetrics(); });
  management.addRoute(
      "/bans", [this](std::string_view method, std::string_view path) { return bansRoute(method, path); });
  management.addRoute("/fraud/blocks", [this](std::string_view method, std::string_view path) {
    return fraudRoute(method, path);
  });
  management.addRoute("/registrations", [this](std::string_view method, std::string_view path) {
    return registrationsRoute(method, path);
  });
  auto started = management.start();
  if (!started) {
    LOG_ERROR("cannot start the management endpoint: {}", started.error().message);
    return 1;
  }
  for (auto& parts : workers_) {
    // Sockets are started on their worker's thread: asio objects stay with one thread.
    transport::WorkerNetwork* network = parts.network.get();
    parts.worker->control([network, contexts = tls_, tls_peer_names] {
      network->setTls(contexts, tls_peer_names);
      network->start();
    });
    parts.worker->start();
  }
  const config::StartupSettings& s = config_->startup;
  LOG_INFO(
      "palisade started: {} worker(s), public {}:{} (udp) {}:{} (tcp){}, pbx side {}:{}, management {}:{}, "
      "descriptor limit {}, config {}",
      worker_count_, s.public_side.address, s.public_side.udp_port, s.public_side.address,
      s.public_side.tcp_port,
      s.public_side.tls_port != 0 ? fmt::format(" {}:{} (tls)", s.public_side.address, s.public_side.tls_port)
                                  : std::string(),
      s.pbx_side.address, s.pbx_side.udp_port, s.management_address, s.management_port, fds.value(),
      config_->source_name);

  boost::asio::steady_timer sweeper(control_);
  std::function<void(const boost::system::error_code&)> on_sweep = [&](const boost::system::error_code& ec) {
    if (ec) return;
    sweep();
    sweeper.expires_after(std::chrono::seconds(1));
    sweeper.async_wait(on_sweep);
  };
  sweeper.expires_after(std::chrono::seconds(1));
  sweeper.async_wait(on_sweep);

  // Session-ticket keys rotate on their own clock: a ticket resumes for up to two periods.
  boost::asio::steady_timer ticket_rotation(control_);
  std::function<void(const boost::system::error_code&)> on_rotate = [&](const boost::system::error_code& ec) {
    if (ec) return;
    tickets_->rotate();
    ticket_rotation.expires_after(std::chrono::seconds(config_->tls.ticket_key_rotation_s));
    ticket_rotation.async_wait(on_rotate);
  };
  ticket_rotation.expires_after(std::chrono::seconds(config_->tls.ticket_key_rotation_s));
  ticket_rotation.async_wait(on_rotate);

  auto stop = [&] {
    sweeper.cancel();
    ticket_rotation.cancel();
    management.stop();
    control_.stop();
  };
  // Graceful drain: the first SIGTERM refuses new calls and closes the TCP listeners while
  // calls in progress end (up to general.drain_timeout_s); a second one, or SIGINT, stops at once.
  boost::asio::steady_timer drain_timer(control_);
  base::Millis drain_deadline = 0;
  std::function<void(const boost::system::error_code&)> on_drain_tick =
      [&](const boost::system::error_code& ec) {
        if (ec) return;
        std::int64_t active = metrics_.total(stats::Gauge::ActiveCalls);
        base::Millis now = base::SteadyClock().now();
        if (active <= 0 || now >= drain_deadline) {
          if (active > 0)
            LOG_WARN("drain: {} call(s) still in progress after {} s; stopping", active,
                     config_->drain_timeout_s);
          else
            LOG_INFO("drain: no call in progress; stopping");
          stop();
          return;
        }
        drain_timer.expires_after(std::chrono::milliseconds(100));
        drain_timer.async_wait(on_drain_tick);
      };
  boost::asio::signal_set signals(control_, SIGHUP, SIGTERM, SIGINT);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
          reload();
          signals.async_wait(on_signal);
          return;
        }
        if (signal == SIGTERM && !shared_.draining() && config_->drain_timeout_s > 0) {
          LOG_INFO(
              "signal {}: draining: new calls refused, public TCP listener closed; {} call(s) in progress "
              "may take "
              "up to {} s",
              signal, metrics_.total(stats::Gauge::ActiveCalls), config_->drain_timeout_s);
          shared_.startDraining();
          metrics_.controlShard().adjust(stats::Gauge::Draining, 1);
          for (auto& parts : workers_) {
            transport::WorkerNetwork* network = parts.network.get();
            parts.worker->control([network] { network->stopAccepting(); });
          }
          drain_deadline =
              base::SteadyClock().now() + static_cast<base::Millis>(config_->drain_timeout_s) * 1000;
          drain_timer.expires_after(std::chrono::milliseconds(100));
          drain_timer.async_wait(on_drain_tick);
          signals.async_wait(on_signal);
          return;
        }
        LOG_INFO("signal {}: shutting down", signal);
        drain_timer.cancel();
        stop();
      };
  signals.async_wait(on_signal);
  control_.run();
  shutdown();
  LOG_INFO("palisade stopped");
  return 0;
}

base::Result<std::unique_ptr<AlertWebhook>> Daemon::makeWebhook(const config::Config& config) {
  const config::FraudConfig& f = config.fraud;
  if (f.webhook_url.empty()) return std::unique_ptr<AlertWebhook>();
  auto url = parseWebhookUrl(f.webhook_url);
  if (!url) return url.error();
  WebhookOptions options;
  options.timeout = std::chrono::seconds(f.webhook_timeout_s);
  options.retries = static_cast<int>(f.webhook_retries);
  options.ca_file = f.webhook_ca_file;
  return AlertWebhook::create(control_, std::move(url.value()), metrics_.controlShard(), options);
}

void Daemon::reload() {
  // logrotate's SIGHUP: the CDR file is reopened whatever becomes of the new config.
  if (cdr_ != nullptr) cdr_->reopen();
  config::ConfigResult loaded = loadConfig(config_path_);
  if (!loaded) {
    metrics_.controlShard().add(stats::Counter::ConfigReloadFailures);
    LOG_ERROR("reload rejected, keeping the running config: {}", loaded.error().toString());
    return;
  }
  for (const auto& warning : loaded.value()->warnings) LOG_WARN("config: {}", warning);
  for (const auto& key : config::startupChanges(config_->startup, loaded.value()->startup)) {
    LOG_WARN("reload: {} changed but only takes effect after a restart; keeping the running value", key);
  }
  // Start-up settings (listen addresses, workers, inbox depth) never change under a running
  // daemon: what it advertises in Via and Contact stays what it is bound to.
  std::shared_ptr<const config::Config> next = config::mergeForReload(*config_, *loaded.value());
  if (next->fraud.cdr_file != config_->fraud.cdr_file)
    LOG_WARN(
        "reload: fraud.cdr_file changed but only takes effect after a restart; keeping the running value");
  const config::FraudConfig& was = config_->fraud;
  const config::FraudConfig& now = next->fraud;
  bool webhook_changed =
      now.webhook_url != was.webhook_url || now.webhook_timeout_s != was.webhook_timeout_s ||
      now.webhook_retries != was.webhook_retries || now.webhook_ca_file != was.webhook_ca_file;
  std::unique_ptr<AlertWebhook> next_webhook;
  if (webhook_changed) {
    auto made = makeWebhook(*next);
    if (!made) {
      metrics_.controlShard().add(stats::Counter::ConfigReloadFailures);
      LOG_ERROR("reload rejected, keeping the running config: {}: fraud.webhook_url: {}", next->source_name,
                made.error().message);
      return;
    }
    next_webhook = std::move(made.value());
  }
  auto compiled =
      policy::compileSnapshot(*next, rules_, *auth_, *store_, *location_, &shared_, fraud_store_.get());
  if (!compiled) {
    metrics_.controlShard().add(stats::Counter::ConfigReloadFailures);
    LOG_ERROR("reload rejected, keeping the running config: {}: policy: {}", next->source_name,
              compiled.error().message);
    return;
  }
  auto fds = transport::ensureDescriptorLimit(
      transport::descriptorsNeeded(next->tcp_max_connections, worker_count_));
  if (!fds) {
    metrics_.controlShard().add(stats::Counter::ConfigReloadFailures);
    LOG_ERROR("reload rejected, keeping the running config: {}: tcp.max_connections: {}", next->source_name,
              fds.error().message);
    return;
  }
  // New certificates apply to new handshakes only; a bad one leaves the old one in use.
  auto tls = loadTls(*next);
  if (!tls) {
    metrics_.controlShard().add(stats::Counter::ConfigReloadFailures);
    LOG_ERROR("reload rejected, keeping the running config and certificates: tls: {}",
              tls.error().toString());
    return;
  }
  std::shared_ptr<const certs::TlsContexts> contexts = tls.value();
  std::map<std::string, std::string> tls_peer_names = tlsPeerNames(*next);
  std::shared_ptr<const policy::PolicySnapshot> snapshot = compiled.value();
  policy_ = snapshot;
  config_ = next;
  tls_ = contexts;
  // Registrations outlive the reload, except those of users it removed or whose sources no
  // longer allow where they registered from.
  auto ended = location_->retain(
      [&snapshot](const routing::Binding& binding) { return snapshot->allowsBinding(binding); });
  for (const auto& binding : ended) {
    LOG_INFO("register: {} from {} ended by the reload", binding.user, binding.flow.remote.toString());
  }
  applyLogLevel(*next);
  sip::Limits limits = transport::limitsOf(*next);
  for (auto& parts : workers_) {
    dialog::Engine* engine = parts.engine.get();
    transport::WorkerNetwork* network = parts.network.get();
    policy::PolicyChain* chain = parts.chain.get();
    dialog::Dispatcher* dispatcher = parts.dispatcher.get();
    media::WorkerMedia* media = parts.media.get();
    parts.worker->control(
        [engine, network, chain, dispatcher, media, next, snapshot, limits, contexts, tls_peer_names] {
          chain->apply(snapshot);
          dispatcher->setLimits(limits);
          engine->applyConfig(next);
          media->setConfig(next);
          network->applyConfig(*next);
          network->setTls(contexts, tls_peer_names);
        });
  }
  if (webhook_changed) {
    alerts_->setWebhook(next_webhook.get());
    webhook_ = std::move(next_webhook);  // the old one's queued events are dropped with it
  }
  metrics_.controlShard().add(stats::Counter::ConfigReloads);
  LOG_INFO("config reloaded from {}", next->source_name);
}

stats::ManagementServer::Reply Daemon::bansRoute(std::string_view method, std::string_view path) {
  base::Millis now = base::SteadyClock().now();
  stats::ManagementServer::Reply reply;
  if (method == "GET" && path == "/bans") {
    std::string body = "[";
    for (const auto& ban : store_->bans(now)) {
      if (body.size() > 1) body += ",";
      // The reason is our own text (no peer input), so it needs no escaping beyond quotes.
      body += fmt::format(R"({{"address":"{}","seconds_left":{},"strikes":{},"reason":"{}"}})",
                          ban.address.to_string(), (ban.until - now + 999) / 1000, ban.strikes, ban.reason);
    }
    reply.body = body + "]\n";
    return reply;
  }
  if (method == "DELETE" && path.size() > 6) {
    std::string text(path.substr(6));  // after "/bans/"
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(text, ec);
    if (ec)
      return {400, "Bad Request", "application/json",
              R"({"error":"not an IP address"})"
              "\n"};
    if (!store_->unban(address))
      return {404, "Not Found", "application/json",
              R"({"error":"not banned"})"
              "\n"};
    LOG_WARN("unban: {} (management)", net::canonicalAddress(address).to_string());
    sweep();
    return {200, "OK", "application/json",
            R"({"unbanned":")" + net::canonicalAddress(address).to_string() + "\"}\n"};
  }
  return {404, "Not Found", "application/json",
          R"({"error":"not found"})"
          "\n"};
}

stats::ManagementServer::Reply Daemon::fraudRoute(std::string_view method, std::string_view path) {
  constexpr std::string_view kPrefix = "/fraud/blocks";
  if (method == "GET" && path == kPrefix) {
    std::string body = "[";
    for (const auto& block : fraud_store_->blockedList()) {
      if (body.size() > 1) body += ",";
      body += fmt::format(R"({{"key":{},"since_ms":{},"reason":{}}})", jsonString(block.key), block.since,
                          jsonString(block.reason));
    }
    return {200, "OK", "application/json", body + "]\n"};
  }
  if (method == "DELETE" && path.size() > kPrefix.size() + 1 && path[kPrefix.size()] == '/') {
    std::string key(path.substr(kPrefix.size() + 1));
    if (!fraud_store_->clear(key))
      return {404, "Not Found", "application/json", "{\"error\":\"not blocked\"}\n"};
    LOG_WARN("fraud: {} unblocked (management)", key);
    return {200, "OK", "application/json", "{\"unblocked\":" + jsonString(key) + "}\n"};
  }
  return {404, "Not Found", "application/json", "{\"error\":\"not found\"}\n"};
}

stats::ManagementServer::Reply Daemon::registrationsRoute(std::string_view method, std::string_view path) {
  if (method != "GET" || path != "/registrations")
    return {404, "Not Found", "application/json", "{\"error\":\"not found\"}\n"};
  base::Millis now = base::SteadyClock().now();
  std::string body = "[";
  for (const auto& binding : location_->all(now)) {
    if (body.size() > 1) body += ",";
    // The user and contact are the peer's text: escaped for JSON.
    body += fmt::format(R"({{"user":{},"contact":{},"source":"{}","transport":"{}","seconds_left":{}}})",
                        jsonString(binding.user), jsonString(binding.contact), binding.flow.remote.toString(),
                        net::transportName(binding.flow.transport), (binding.expires - now + 999) / 1000);
  }
  stats::ManagementServer::Reply reply;
  reply.body = body + "]\n";
  return reply;
}

void Daemon::sweep() {
  base::Millis now = base::SteadyClock().now();
  for (const auto& ended : store_->expired(now)) {
    LOG_WARN("unban: {} (expired after strike {})", ended.address.to_string(), ended.strikes);
  }
  auto active = static_cast<std::int64_t>(store_->bans(now).size());
  metrics_.controlShard().adjust(stats::Gauge::BansActive, active - bans_reported_);
  bans_reported_ = active;
  for (const auto& ended : location_->expire(now)) {
    LOG_INFO("register: {} from {} expired", ended.user, ended.flow.remote.toString());
  }
  auto bound = static_cast<std::int64_t>(location_->size());
  metrics_.controlShard().adjust(stats::Gauge::RegistrationsActive, bound - registrations_reported_);
  registrations_reported_ = bound;
}

void Daemon::shutdown() {
  for (auto& parts : workers_) parts.worker->stop();
  for (auto& parts : workers_) parts.worker->join();
  // Worker threads are gone: closing sockets from here is safe. Calls go before the network
  // they send through, sockets before the io_context they belong to.
  for (auto& parts : workers_) parts.network->close();
  for (auto& parts : workers_) parts.engine.reset();
  for (auto& parts : workers_) parts.media.reset();
  for (auto& parts : workers_) parts.network.reset();
  workers_.clear();
  // The calls ended above wrote their records: every one reaches the file.
  if (cdr_ != nullptr) cdr_->flush();
  cdr_sinks_.clear();
  cdr_.reset();
  if (alerts_ != nullptr) alerts_->stop();
  alerts_.reset();
  webhook_.reset();
}

}  // namespace palisade::app
