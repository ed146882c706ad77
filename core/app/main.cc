// palisade: the session border controller daemon.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include "core/app/daemon.h"
#include "core/base/log.h"
#include "core/config/config.h"

namespace {

void usage() {
  std::fputs(
      "usage: palisade [--config FILE]      run (default: the built-in loopback config)\n"
      "       palisade --check-config FILE  validate FILE and exit 0 (valid) or 1\n"
      "       palisade --version\n",
      stderr);
}

}  // namespace

int main(int argc, char** argv) {
  // OpenSSL writes TLS records with write(2): a peer that has gone away must give EPIPE, never
  // a SIGPIPE that ends the process.
  std::signal(SIGPIPE, SIG_IGN);
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--config" || arg == "-c" || arg == "--check-config") && i + 1 < argc) {
      check_only = check_only || arg == "--check-config";
      config_path = argv[++i];
    } else if (arg == "--version") {
      std::puts("palisade 0.1.0");
      return 0;
    } else {
      usage();
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }
  auto loaded = palisade::app::loadConfig(config_path);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().toString().c_str());
    return 1;
  }
  for (const auto& warning : loaded.value()->warnings) std::fprintf(stderr, "warning: %s\n", warning.c_str());
  if (check_only) {
    // The same checks as a start or a reload: the certificates and keys it names too.
    auto tls =
        palisade::certs::buildTlsContexts(*loaded.value(), std::make_shared<palisade::certs::TicketKeys>(),
                                          static_cast<std::int64_t>(std::time(nullptr)));
    if (!tls) {
      std::fprintf(stderr, "%s: tls: %s\n", config_path.c_str(), tls.error().toString().c_str());
      return 1;
    }
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  palisade::app::Daemon daemon(loaded.value(), config_path);
  return daemon.run();
}
