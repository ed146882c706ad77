#!/usr/bin/env bash
# Installs everything Palisade needs to build, test and benchmark on Debian 12 (run as root).
set -euo pipefail
packages=(
  cmake ninja-build g++ clang clang-format clang-tidy ccache pkg-config git dpkg-dev build-essential
  libboost-dev libtomlplusplus-dev libfmt-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  sip-tester sipvicious stunnel4 baresip openssl python3 iproute2 util-linux procps curl tzdata
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

# libsrtp2 from Debian's own source package, built on OpenSSL: Debian's binary package uses NSS,
# whose per-packet context set-up grows with the number of live sessions (DESIGN.md, media).
# Palisade links the static library from this prefix; the stamp names the source version and
# crypto engine, so a second run does nothing and a version bump rebuilds.
srtp_version=2.5.0-3
srtp_prefix=/opt/palisade/libsrtp2
srtp_stamp="$srtp_prefix/.built-$srtp_version-openssl"
if [ ! -f "$srtp_prefix/lib/libsrtp2.a" ] || [ ! -f "$srtp_stamp" ]; then
  export DEBIAN_FRONTEND=noninteractive
  cat >/etc/apt/sources.list.d/palisade-deb-src.sources <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  apt-get update -qq
  mkdir -p /opt/palisade/src
  # Kept after a failure, for its config.log; removed after a good build.
  srtp_src="$(mktemp -d /opt/palisade/src/libsrtp2.XXXXXX)"
  (
    cd "$srtp_src"
    # The download lands in a root-only temporary folder, which apt's _apt user cannot write.
    apt-get source -qq -o APT::Sandbox::User=root "libsrtp2=$srtp_version" >/dev/null
    cd libsrtp2-*/
    ./configure -q --enable-openssl --disable-pcap --prefix="$srtp_prefix" CFLAGS="-O2 -fPIC" >/dev/null
    # The flat per-packet cost comes from OpenSSL's ciphers: make sure configure chose them.
    grep -q '^#define OPENSSL 1' crypto/include/config.h || {
      echo "libsrtp2: configure did not enable OpenSSL (see $PWD/config.log)" >&2
      exit 1
    }
    make -s -j"$(nproc)" libsrtp2.a >/dev/null
    rm -rf "$srtp_prefix"
    make -s install >/dev/null
  )
  rm -rf "$srtp_src"
  touch "$srtp_stamp"
fi
