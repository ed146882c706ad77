#!/usr/bin/env bash
# Watch Palisade work: SIPp plays the PBX (127.0.0.1:5080, where the default config sends
# calls) and the carrier calling in (127.0.0.1, the default config's trunk: anything else is
# the internet, which default deny drops), places calls through the running daemon for a few
# seconds, then prints what passed through, from Palisade's own metrics.
# Usage: tests/system/watch_calls.sh [seconds=5] [calls_per_second=50]
set -euo pipefail
seconds="${1:-5}"
rate="${2:-50}"
here="$(cd "$(dirname "$0")" && pwd)"
metrics_url="http://127.0.0.1:9180/metrics"
work="$(mktemp -d)"
uas_pid=""
cleanup() {
  [ -n "$uas_pid" ] && kill "$uas_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

curl -sf "$metrics_url" >/dev/null || { echo "Palisade is not running (no $metrics_url)"; exit 1; }
snapshot() { curl -sf "$metrics_url" | grep -E '^palisade_' ; }
snapshot > "$work/before"

calls=$((seconds * rate))
(cd "$work" && exec sipp -sf "$here/scenarios/uas.xml" -i 127.0.0.1 -p 5080 -m "$calls" \
   -timeout "$((seconds + 30))" -nostdin >/dev/null 2>&1) &
uas_pid=$!
sleep 0.5
echo "placing $calls calls at $rate/s through 127.0.0.1:5060 ..."
(cd "$work" && sipp -sf "$here/scenarios/uac.xml" -i 127.0.0.1 -p 0 127.0.0.1:5060 -s 1000 -m "$calls" -r "$rate" \
   -timeout "$((seconds + 30))" -nostdin >/dev/null 2>&1) && echo "SIPp caller: all calls succeeded" \
  || echo "SIPp caller: some calls failed (exit $?)"
wait "$uas_pid" 2>/dev/null || true
uas_pid=""
snapshot > "$work/after"

echo
printf '%-60s %12s\n' "metric (change during this run)" "delta"
join -j1 <(awk '{print $1, $2}' "$work/before" | sort) <(awk '{print $1, $2}' "$work/after" | sort) |
  awk '{d = $3 - $2; if (d != 0) printf "%-60s %12d\n", $1, d}'
