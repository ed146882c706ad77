#!/bin/bash
# Relay throughput per core in one run: the bare loop (floor), Palisade's relay and rtpengine
# (Debian's rtpengine-daemon, userspace forwarding, a fresh daemon per case), RTP<->RTP and
# SRTP<->RTP, 500 streams x 2 directions x 50 pps. The relay runs on CPU 0, the generator on
# CPU 1. Loopback only. Usage: bash bench/relay_bench.sh [SECONDS] [STREAMS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_CASE=${1:-10}
STREAMS=${2:-500}
BENCH=build/bench/relay_bench
[ -x "$BENCH" ] || { echo "build it first: cmake --build build -j2 --target relay_bench" >&2; exit 1; }
command -v rtpengine >/dev/null || { echo "rtpengine missing: apt-get install -y --no-install-recommends rtpengine-daemon" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || true
NG_PORT=22230
RTPENGINE_PID=
stop_rtpengine() { [ -n "$RTPENGINE_PID" ] && kill "$RTPENGINE_PID" 2>/dev/null && wait "$RTPENGINE_PID" 2>/dev/null; RTPENGINE_PID=; }
trap stop_rtpengine EXIT
run() { echo "== $*"; "$BENCH" --seconds "$SECONDS_PER_CASE" --streams "$STREAMS" "$@" 2>&1 | grep -v " INFO "; }
for mode in "" "--srtp"; do
  [ -z "$mode" ] && { run --target floor || true; }  # the bare loop does no SRTP: RTP only
  run --target palisade $mode || true
  taskset -c 0 rtpengine --foreground --log-stderr --log-level=4 --interface=127.0.0.10 \
    --listen-ng=127.0.0.1:$NG_PORT --port-min=30000 --port-max=40000 --num-threads=1 --table=-1 \
    >/dev/null 2>&1 &
  RTPENGINE_PID=$!
  sleep 1
  run --target rtpengine --ng 127.0.0.1:$NG_PORT --pid "$RTPENGINE_PID" $mode || true
  stop_rtpengine
done
