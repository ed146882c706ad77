#!/usr/bin/env bash
# Runs the libFuzzer targets, one after the other, seeded from the shared corpora.
#
#   cmake --preset fuzz && cmake --build build-fuzz
#   tests/fuzz/run_fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; TARGET defaults to fuzz_datagram fuzz_stream fuzz_engine fuzz_digest fuzz_sdp fuzz_media fuzz_cdr.
# Seeds (the RFC 4475, RFC 5118 wire, PROTOS c07 and capture files, plus framed and call-flow
# variants) go to a temporary folder. What a run learns is kept for the next one, and crashes
# are written, under $PALISADE_FUZZ_OUT (default build-fuzz/fuzz-out/<target>/).
# Environment: PALISADE_FUZZ_BUILD (build folder, default build-fuzz), PALISADE_CORPUS_DIR,
# PALISADE_FUZZ_ARGS (more libFuzzer flags, e.g. "-fork=1 -ignore_crashes=1" to keep going
# past a known crash).
set -uo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${PALISADE_FUZZ_BUILD:-$root/build-fuzz}"
corpus="${PALISADE_CORPUS_DIR:-$root/../shared/corpus}"
out="${PALISADE_FUZZ_OUT:-$build/fuzz-out}"
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_datagram fuzz_stream fuzz_engine fuzz_digest fuzz_sdp fuzz_media fuzz_cdr)

for t in "${targets[@]}"; do
  if [ ! -x "$build/fuzz/$t" ]; then
    echo "missing $build/fuzz/$t: run 'cmake --preset fuzz && cmake --build build-fuzz' first" >&2
    exit 2
  fi
done
[ -d "$corpus/rfc4475" ] || { echo "corpus not found at $corpus" >&2; exit 2; }

seeds="$(mktemp -d)"
trap 'rm -rf "$seeds"' EXIT

# Every message file of the corpora, byte for byte.
mkdir -p "$seeds/raw"
for f in "$corpus"/rfc4475/*.dat "$corpus"/rfc5118/wire/*.dat "$corpus"/protos-c07/cases/*.sip \
         "$corpus"/captures/seeds/*/*.sip "$corpus"/captures/seeds/*/in-sip_*.raw; do
  [ -f "$f" ] || continue
  folder="$(basename "$(dirname "$f")")"
  cp "$f" "$seeds/raw/$folder-$(basename "$f")"
done

# Target-specific forms: fuzz_stream reads two chunking bytes first; fuzz_engine reads
# records separated by two NUL bytes (see the header comments of the targets).
PALISADE_ROOT="$root" python3 - "$seeds" <<'PY'
import os, sys
seeds = sys.argv[1]
raw = os.path.join(seeds, "raw")
files = sorted(os.listdir(raw))
data = {f: open(os.path.join(raw, f), "rb").read() for f in files}

stream = os.path.join(seeds, "fuzz_stream"); os.makedirs(stream)
for i, (name, body) in enumerate(data.items()):
    open(os.path.join(stream, name), "wb").write(bytes([i % 251, (i * 7) % 256]) + body)
framed = [b for n, b in data.items() if n.startswith(("wireshark", "profuzzbench"))]
open(os.path.join(stream, "pipeline-keepalives"), "wb").write(
    b"\x00\x02\r\n\r\n" + b"\r\n".join(framed[:6]) + b"\r\n\r\n")

engine = os.path.join(seeds, "fuzz_engine"); os.makedirs(engine)
for name, body in data.items():
    open(os.path.join(engine, name), "wb").write(body)
def records(*parts):
    return b"\x00\x00".join(parts)
def ctl(flags, payload=b""):  # ESC, flags, payload (see fuzz_engine.cc)
    return b"\x1b" + bytes([flags]) + payload
PBX, LONG, REQ, RESP, STRANGER = 0x01, 0x04, 0x08, 0x10, 0x20
invites = [n for n, b in data.items() if b.startswith(b"INVITE ") and n.startswith(("wireshark", "rfc4475-esc01", "rfc4475-sdp01"))]
for n in invites[:4]:
    b = data[n]
    flows = {
        "answered-caller-bye": records(b, ctl(PBX | RESP, b"180"), ctl(PBX | RESP, b"200"), ctl(REQ, b"ACK"),
                                       ctl(REQ, b"BYE"), ctl(PBX | RESP, b"200")),
        "answered-pbx-bye": records(b, ctl(PBX | RESP, b"200"), ctl(REQ, b"ACK"), ctl(PBX | REQ, b"BYE"),
                                    ctl(RESP, b"200")),
        "busy": records(b, ctl(PBX | RESP, b"486"), ctl(REQ, b"ACK")),
        "reinvite": records(b, ctl(PBX | RESP, b"200"), ctl(REQ, b"ACK"), ctl(REQ, b"INVITE"),
                            ctl(PBX | RESP, b"200"), ctl(REQ, b"ACK"), ctl(PBX | REQ, b"INVITE"), ctl(RESP, b"200"),
                            ctl(PBX | REQ, b"ACK"), ctl(REQ, b"BYE"), ctl(PBX | RESP, b"200")),
        "timeout": records(b, *[ctl(LONG) for _ in range(10)]),
    }
    # From a stranger on the internet: challenged, rate limited, scanner checks.
    scanner = b.replace(b"\r\n", b"\r\nUser-Agent: friendly-scanner\r\n", 1)
    flows["stranger-flood"] = records(*[ctl(STRANGER, b) for _ in range(30)])
    flows["stranger-scanner"] = records(ctl(STRANGER, scanner), ctl(STRANGER, b))
    flows["stranger-then-caller"] = records(ctl(STRANGER, b), b, ctl(PBX | RESP, b"200"), ctl(REQ, b"ACK"))
    for flow, content in flows.items():
        open(os.path.join(engine, f"flow-{flow}-{n}"), "wb").write(content)

# fuzz_digest: credentials values, from the corpora and as phones write them.
digest = os.path.join(seeds, "fuzz_digest"); os.makedirs(digest)
count = 0
for name, body in data.items():
    for line in body.split(b"\r\n"):
        head, _, value = line.partition(b":")
        if head.strip().lower() in (b"authorization", b"proxy-authorization") and value.strip():
            count += 1
            open(os.path.join(digest, f"{name}-{count}"), "wb").write(value.strip())
for i, value in enumerate([
    b'Digest username="2001", realm="palisade", nonce="0000018c0a1b2c3d0000000000000001' + b"a" * 32 +
    b'", uri="sip:127.0.0.1", response="' + b"0" * 64 + b'", algorithm=SHA-256, cnonce="c0ffee", qop=auth, nc=00000001',
    b'Digest username="2001",realm="palisade",nonce="abc",uri="sip:x",response="' + b"f" * 32 + b'",algorithm=MD5',
    b'Digest username*=UTF-8\'\'%32%30, userhash=true, realm="r", nonce="n", uri="u", response="r", opaque="o"',
]):
    open(os.path.join(digest, f"phone-{i}"), "wb").write(value)

# fuzz_sdp: the bodies of the corpora's messages, and the SDP golden inputs.
sdp = os.path.join(seeds, "fuzz_sdp"); os.makedirs(sdp)
for name, body in data.items():
    head, sep, rest = body.partition(b"\r\n\r\n")
    if sep and rest.startswith(b"v="):
        open(os.path.join(sdp, name), "wb").write(rest)
golden = os.path.join(os.environ["PALISADE_ROOT"], "tests", "golden", "sdp")
for f in os.listdir(golden):
    if f.endswith(".in"):
        open(os.path.join(sdp, f), "wb").write(open(os.path.join(golden, f), "rb").read())

# fuzz_media: offer/answer sequences (selector byte + body, records split by two NULs) made of
# the golden inputs: an offer toward the PBX answered by a 200, a late offer answered in the ACK,
# and a re-INVITE from the PBX side.
media = os.path.join(seeds, "fuzz_media"); os.makedirs(media)
bodies = [open(os.path.join(golden, f), "rb").read() for f in sorted(os.listdir(golden)) if f.endswith(".in")]
for i, body in enumerate(bodies):
    other = bodies[(i + 1) % len(bodies)]
    sequences = [
        [b"\x11" + body, b"\x14" + other],                    # INVITE offer, 200 answer
        [b"\x11", b"\x14" + body, b"\x17" + other],           # late offer: 200 offers, ACK answers
        [b"\x11" + body, b"\x12" + other, b"\x14" + other,   # 183 then 200, then a re-INVITE
         b"\x10" + other, b"\x15" + body],
    ]
    for j, seq in enumerate(sequences):
        open(os.path.join(media, f"seq-{i}-{j}"), "wb").write(b"\x00\x00".join(seq))

PY
mkdir -p "$seeds/fuzz_datagram" "$seeds/fuzz_cdr"
cp "$seeds"/raw/* "$seeds/fuzz_datagram/"
# fuzz_cdr: SIP messages as raw bytes for the record's fields (From/To/Call-ID text).
cp "$seeds"/raw/* "$seeds/fuzz_cdr/"

status=0
for t in "${targets[@]}"; do
  mkdir -p "$out/$t/corpus"
  before="$(ls "$out/$t" | grep -cE '^(crash|timeout|oom|leak)-')"
  echo "== $t: ${seconds}s, seeds $(ls "$seeds/$t" | wc -l), corpus $(ls "$out/$t/corpus" | wc -l)"
  "$build/fuzz/$t" -max_len=65536 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -dict="$root/tests/fuzz/sip.dict" -print_final_stats=1 -artifact_prefix="$out/$t/" ${PALISADE_FUZZ_ARGS:-} \
    "$out/$t/corpus" "$seeds/$t" 2>&1 | grep -vE '^#[0-9]+\s+(NEW|REDUCE|pulse)' | tail -n 40
  rc=${PIPESTATUS[0]}
  after="$(ls "$out/$t" | grep -cE '^(crash|timeout|oom|leak)-')"
  if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then  # fork mode may exit 0 after crashes
    echo "== $t: FAILED (exit $rc); reproducer(s): $(ls "$out/$t"/crash-* "$out/$t"/timeout-* "$out/$t"/oom-* "$out/$t"/leak-* 2>/dev/null | tr '\n' ' ')"
    status=1
  else
    echo "== $t: no findings"
  fi
done
exit $status
