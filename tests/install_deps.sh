#!/usr/bin/env bash
# Installs everything Palisade needs to build, test and benchmark on Debian 12 (run as root).
set -euo pipefail
packages=(
  cmake ninja-build g++ clang clang-format clang-tidy ccache pkg-config git
  libboost-dev libtomlplusplus-dev libfmt-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  sip-tester sipvicious stunnel4 baresip openssl python3 iproute2 util-linux procps curl
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
