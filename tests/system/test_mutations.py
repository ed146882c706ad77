#!/usr/bin/env python3
"""Hostile input against the running daemon, inside a private network namespace: every corpus
message and thousands of random mutations of real INVITEs, over UDP and TCP, from a trunk and
from strangers on the internet. No crash, no hang, and legitimate calls work afterwards.

The corpus names real-looking hosts (192.0.2.x, example.com), so the script re-executes itself
under `unshare -n` (loopback only). Palisade runs with one user that may come from anywhere,
so that the strangers' messages reach the scanner and the policy stages instead of being
dropped by default deny, and with its PBX pointed at a UDP black hole, so that forwarded
INVITEs stay inside and time out quickly (t1_ms = 100).
  1. From the "callers" trunk (127.0.0.2): every corpus message (RFC 4475, RFC 5118, PROTOS
     c07, captures), then MUTATIONS mutated INVITEs as datagrams and, in batches, over TCP.
  2. From strangers (127.0.0.20-.59, a few hundred messages each): the same mutations. The
     ones that misbehave may be banned; none of it may reach the PBX unauthenticated.
  3. The daemon is alive and healthy, nothing crashed; once the forwarded INVITEs have timed
     out, a SIPp PBX takes the black hole's port and CALLS calls from the trunk all succeed.
"""
import glob
import os
import random
import socket
import time

import harness

MUTATIONS = 3000
CALLS = 200
RATE = 100
STRANGERS = [f"127.0.0.{n}" for n in range(20, 60)]
SEED = 4475


def corpus_messages(corpus):
    files = []
    for pattern in ("rfc4475/*.dat", "rfc5118/wire/*.dat", "protos-c07/cases/*.sip",
                    "captures/seeds/wireshark-samples/*.sip", "captures/seeds/profuzzbench-kamailio/*.raw"):
        files += sorted(glob.glob(os.path.join(corpus, pattern)))
    return [open(f, "rb").read() for f in files]


def mutate(rng, message):
    """One random change of the kinds that break parsers: flipped and inserted bytes, cuts,
    repeated or dropped header lines, huge numbers, stray CR/LF/NUL, wrong lengths."""
    data = bytearray(message)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(9)
        if not data:
            data = bytearray(b"INVITE")
        pos = rng.randrange(len(data))
        if kind == 0:
            data[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data[pos:pos] = bytes([rng.choice([0, 13, 10, 32, 58, 59, 60, 62, 34, 92, 255])])
        elif kind == 2:
            del data[pos:pos + rng.randint(1, 40)]
        elif kind == 3:
            data = data[:pos]
        elif kind == 4:
            lines = bytes(data).split(b"\r\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i] * rng.randint(1, 3))
            data = bytearray(b"\r\n".join(lines))
        elif kind == 5:
            lines = bytes(data).split(b"\r\n")
            del lines[rng.randrange(len(lines))]
            data = bytearray(b"\r\n".join(lines))
        elif kind == 6:
            data[pos:pos] = rng.choice([b"99999999999999999999", b"-1", b"4294967296", b"0x10", b";;;;", b"%00"])
        elif kind == 7:
            text = bytes(data)
            at = text.find(b"Content-Length:")
            if at >= 0:
                end = text.find(b"\r\n", at)
                data = bytearray(text[:at] + b"Content-Length: " + str(rng.choice([0, 1, 5000, 70000])).encode()
                                 + (text[end:] if end >= 0 else b""))
        else:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(data[:65000])


def send_udp(source, target, payloads, pace_s=0.0005):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.setblocking(False)
    try:
        for data in payloads:
            try:
                s.sendto(data, target)
            except (BlockingIOError, OSError):
                pass
            try:
                while True:
                    s.recvfrom(65535)  # answers are not checked here; keep the buffer empty
            except (BlockingIOError, OSError):
                pass
            time.sleep(pace_s)
    finally:
        s.close()


def send_tcp(source, target, payloads, batch=50):
    """Batches of messages back to back on one connection each; the daemon may close it on the
    first framing error, which is its right."""
    sent = 0
    for start in range(0, len(payloads), batch):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.bind((source, 0))
            s.connect(target)
            for data in payloads[start:start + batch]:
                s.sendall(data)
                sent += 1
        except OSError:
            pass  # refused (banned, over a limit) or closed by the daemon mid-batch
        finally:
            s.close()
    return sent


def invites(corpus):
    found = []
    for path in sorted(glob.glob(os.path.join(corpus, "captures/seeds/wireshark-samples/*.sip"))) + \
            sorted(glob.glob(os.path.join(corpus, "rfc4475/*.dat"))):
        data = open(path, "rb").read()
        if data.startswith(b"INVITE "):
            found.append(data)
    return found


def body(run):
    rng = random.Random(SEED)
    corpus = corpus_messages(run.corpus)
    seeds = invites(run.corpus)
    run.require(len(corpus) > 100 and seeds, "corpora present", f"{len(corpus)} messages, {len(seeds)} INVITEs")
    mutations = [mutate(rng, rng.choice(seeds)) for _ in range(MUTATIONS)]
    for workers in harness.worker_counts(run.args, default=(2,)):
        label = f"{workers} worker(s)"
        pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
        carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
        black_hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        black_hole.bind((harness.PBX_IP, pbx_port))
        try:
            cfg = run.config(workers, pbx_port, carrier_port, sip={"t1_ms": 100}, users=[harness.TEST_USER],
                             auth={"algorithms": ["MD5"]})
            palisade = run.start_palisade(cfg, name=f"palisade-w{workers}")
            udp = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
            tcp = (harness.PUBLIC_IP, cfg["public"]["tcp_port"])
            started = time.monotonic()
            send_udp(harness.CALLER_IP, udp, corpus + mutations)
            sent_tcp = send_tcp(harness.CALLER_IP, tcp, corpus[:200] + mutations[:500])
            run.check(palisade.alive() and palisade.health() == 200,
                      f"{label}: alive after {len(corpus)} corpus messages and {MUTATIONS} mutations from a trunk "
                      f"({sent_tcp} more over TCP)", palisade.log_tail())
            per = len(mutations) // len(STRANGERS)
            for i, stranger in enumerate(STRANGERS):
                chunk = mutations[i * per:(i + 1) * per]
                send_udp(stranger, udp, chunk + corpus[i::len(STRANGERS)])
                if i % 8 == 0:
                    send_tcp(stranger, tcp, chunk[:100], batch=25)
            run.log(f"{label}: everything sent in {time.monotonic() - started:.1f} s")
            run.check(palisade.alive() and palisade.health() == 200,
                      f"{label}: alive after the same from {len(STRANGERS)} strangers", palisade.log_tail())
            metrics = palisade.metrics()
            run.log(f"{label}: parse errors {palisade.metric('parse_errors', metrics):g}, "
                    f"bans {metrics.get('palisade_bans_total', 0):g}, "
                    f"scanner errors {metrics.get('palisade_scanner_errors_total', 0):g}")
            run.check(palisade.metric("parse_errors", metrics) > 0, f"{label}: the mutations were seen as malformed")
        finally:
            black_hole.close()
        active = palisade.wait_metric("active_calls", lambda v: v == 0, 30)
        run.check(active == 0, f"{label}: forwarded INVITEs time out", f"active calls {active:g}")
        before = palisade.metrics()
        uac, uas = harness.start_calls(run, udp, "uas", "uac", CALLS, RATE, harness.PBX_IP, pbx_port,
                                       harness.CALLER_IP, timeout_s=60).wait()
        run.check_sipp(uac, CALLS, f"{label}: {CALLS} calls from the trunk afterwards (caller)")
        run.check_sipp(uas, CALLS, f"{label}: {CALLS} calls from the trunk afterwards (PBX)")
        harness.expect_counters(run, palisade, before, {"calls_answered": CALLS, "calls_failed": 0},
                                f"{label}: calls afterwards")
        harness.wait_idle(run, palisade, label)
        run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.enter_namespace(__file__, "Mutated and torture messages")
    harness.main_wrapper("test_mutations", __doc__, body)
