// palisade: the session border controller daemon.
#include <cstdio>
#include <cstring>
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
  auto loaded =
      config_path.empty() ? palisade::config::defaultConfig() : palisade::config::loadConfigFile(config_path);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().toString().c_str());
    return 1;
  }
  for (const auto& warning : loaded.value()->warnings) std::fprintf(stderr, "warning: %s\n", warning.c_str());
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  palisade::app::Daemon daemon(loaded.value(), config_path);
  return daemon.run();
}
