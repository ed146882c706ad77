#!/usr/bin/env bash
# Installs dependencies, builds once per configuration and runs the whole suite:
#   release     unit + component + system tests (the real binary against SIPp on loopback)
#   asan-ubsan  unit + component tests under AddressSanitizer and UndefinedBehaviorSanitizer,
#               and the TLS certificate-rotation system test on the sanitized daemon
#   tsan        component tests (including the multi-worker ones) under ThreadSanitizer
#   fuzz        each libFuzzer target for 15 s (ASan + UBSan), seeded from the corpora
set -uo pipefail
cd "$(dirname "$0")/.."
bash tests/install_deps.sh || exit 1
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
jobs="$(nproc)"

build() {  # preset, targets...
  local preset="$1"; shift
  cmake --preset "$preset" >/dev/null || return 1
  cmake --build --preset "$preset" -j "$jobs" ${1:+--target "$@"} || return 1
}

total_passed=0
total_failed=0
run_ctest() {  # build dir, ctest args...
  local dir="$1"; shift
  local log
  log="$(mktemp)"
  (cd "$dir" && ctest --output-on-failure --timeout 900 "$@") 2>&1 | tee "$log"
  local line passed failed total
  line="$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)"
  if [ -z "$line" ]; then
    total_failed=$((total_failed + 1))
  else
    failed="$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')"
    total="$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')"
    passed=$((total - failed))
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
  fi
  rm -f "$log"
}

status=0
if build release; then run_ctest build; else echo "release build failed"; total_failed=$((total_failed + 1)); fi
if build asan-ubsan unit_tests component_tests palisade; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest build-asan -L 'unit|component'
  # One system test on the sanitized daemon: 20 certificate rotations during TLS calls (a leak
  # or a memory error makes the daemon's exit code, and so the test, fail).
  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      python3 tests/system/test_tls_reload.py --binary build-asan/palisade; then
    echo "system.test_tls_reload under ASan+UBSan: passed"; total_passed=$((total_passed + 1))
  else
    echo "system.test_tls_reload under ASan+UBSan: FAILED"; total_failed=$((total_failed + 1))
  fi
else
  echo "asan-ubsan build failed"; total_failed=$((total_failed + 1))
fi
if build tsan component_tests; then
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_ctest build-tsan -L component
else
  echo "tsan build failed"; total_failed=$((total_failed + 1))
fi

if build fuzz fuzz_datagram fuzz_stream fuzz_engine fuzz_digest fuzz_sdp fuzz_media fuzz_cdr; then
  fuzz_log="$(mktemp)"
  fuzz_out="$(mktemp -d)"
  PALISADE_FUZZ_OUT="$fuzz_out" bash tests/fuzz/run_fuzz.sh 15 2>&1 | tee "$fuzz_log"
  fuzz_passed="$(grep -c '^== .*: no findings' "$fuzz_log")"
  fuzz_failed="$(grep -c '^== .*: FAILED' "$fuzz_log")"
  [ $((fuzz_passed + fuzz_failed)) -gt 0 ] || fuzz_failed=1
  echo "fuzz: $fuzz_passed target(s) without findings, $fuzz_failed with"
  total_passed=$((total_passed + fuzz_passed))
  total_failed=$((total_failed + fuzz_failed))
  rm -rf "$fuzz_log" "$fuzz_out"
else
  echo "fuzz build failed"; total_failed=$((total_failed + 1))
fi

[ "$total_failed" -eq 0 ] || status=1
echo "summary: $total_passed passed, $total_failed failed"
exit $status
