#!/usr/bin/env python3
"""Torture messages against the running daemon, inside a private network namespace.

The corpus messages name real-looking hosts (192.0.2.x, example.com, 2001:db8::) and whatever
they provoke must not leave the machine (../shared/corpus/README.md), so the script re-executes
itself under `unshare -n` (loopback only) and fails, loudly, when that is not possible.

Inside, per worker count: Palisade with its PBX pointed at a UDP black hole (a bound socket that
never answers), so forwarded INVITEs stay inside and time out quickly (t1_ms = 100: Timer B is
6.4 s). Each message is one UDP datagram from its own socket on 127.0.0.2 to the public port.
  1. corpus/rfc4475: the first answer must be what index.tsv (and EXPECT below) says.
  2. corpus/rfc5118/wire, protos-c07/cases, captures/seeds/wireshark-samples: any answer or
     none, but the daemon must stay up and healthy.
  3. Once every forwarded INVITE has timed out, a SIPp PBX takes the black hole's port and 200
     calls run through the same daemon: none may fail.
"""
import csv
import glob
import os
import selectors
import socket
import time

import harness

NONE = None  # no answer at all
WINDOW_S = 1.5  # how long answers are collected after the last datagram was sent
CALLS = 200
RATE = 100

# Expected first answer for each RFC 4475 message whose expectation is not simply derived from
# index.tsv (responses: none; invalid and valid-semantic-error requests: 400). Where the RFC
# allows a choice, the set lists each acceptable answer and the comment says why.
EXPECT = {
    "badvers.dat": {505},
    # Unknown method with a CSeq mismatch: 501 preferred, 400 acceptable (RFC 4475 3.1.2.18).
    "mismatch02.dat": {400, 501},
    # Archive-only message without a SIP-Version: "reject/drop" (index.tsv).
    "test.dat": {400, NONE},
    # Valid INVITEs: Palisade answers 100 Trying at once and forwards them (to the black hole).
    "esc01.dat": {100}, "longreq.dat": {100}, "invut.dat": {100}, "sdp01.dat": {100}, "inv2543.dat": {100},
    # The index says "proxy forwards", but this INVITE carries a To tag: for a B2BUA it is a
    # request inside a dialog that does not exist, so RFC 3261 12.2.2 asks for 481 (which also
    # shows the message parsed: a 400 would mean it had not).
    "wsinv.dat": {481},
    # Invalid Date time zone: "may reject only if Date matters to it; otherwise ignore Date".
    # Palisade does not use Date, so it takes the INVITE (100 Trying) instead of answering 400.
    "baddate.dat": {100},
    # Valid OPTIONS: answered by Palisade itself, or the error the index names.
    "lwsdisp.dat": {200}, "semiuri.dat": {200}, "transports.dat": {200},
    "unkscm.dat": {416}, "novelsc.dat": {416}, "bext01.dat": {420}, "zeromf.dat": {483},
    # No branch: "either 400 (preferably stateless) or fall back to RFC 2543 matching".
    "badbranch.dat": {200, 400},
    # REGISTER is not a method Palisade serves: 405 with Allow.
    "cparam01.dat": {405}, "cparam02.dat": {405}, "dblreq.dat": {405}, "escnull.dat": {405},
    "regaut01.dat": {405}, "regescrt.dat": {405}, "unksm2.dat": {405},
    # MESSAGE (RFC 3428) is a method Palisade knows but does not allow: 405 with Allow.
    "mpart01.dat": {405},
    # Unknown methods: 501 Not Implemented.
    "intmeth.dat": {501}, "esc02.dat": {501},
}


def expected_answer(row):
    name = row["file"]
    if name in EXPECT:
        return EXPECT[name]
    if row["kind"] == "response":
        return {NONE}  # bad and good responses alike match no transaction: dropped
    if row["syntax"] in ("invalid", "valid-semantic-error"):
        return {400}
    raise KeyError(f"no expectation for valid request {name}")


# --------------------------------------------------------------------------- sending

def send_all(target, payloads, pace_s=0.002):
    """Sends each payload as one datagram from its own socket on CALLER_IP; returns
    {name: [answer bytes, ...]} collected until WINDOW_S after the last send."""
    sel = selectors.DefaultSelector()
    answers = {}
    socks = []
    try:
        for name, data in payloads:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((harness.CALLER_IP, 0))
            s.setblocking(False)
            socks.append(s)
            answers[name] = []
            sel.register(s, selectors.EVENT_READ, name)
            s.sendto(data, target)
            time.sleep(pace_s)
        deadline = time.monotonic() + WINDOW_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in sel.select(timeout=left):
                try:
                    data, _ = key.fileobj.recvfrom(65535)
                except BlockingIOError:
                    continue
                answers[key.data].append(data)
    finally:
        sel.close()
        for s in socks:
            s.close()
    return answers


def status_of(datagram):
    if not datagram.startswith(b"SIP/2.0 "):
        return "not a response"
    try:
        return int(datagram[8:11])
    except ValueError:
        return "bad status"


def first_line(datagram):
    return datagram.split(b"\r\n", 1)[0].decode("latin-1")


def read_payloads(pattern):
    return [(os.path.relpath(p, os.path.dirname(os.path.dirname(pattern))), open(p, "rb").read())
            for p in sorted(glob.glob(pattern))]


# --------------------------------------------------------------------------- test

def rfc4475_phase(run, palisade, public, label):
    folder = os.path.join(run.corpus, "rfc4475")
    with open(os.path.join(folder, "index.tsv"), newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    run.require(len(rows) >= 50, "rfc4475/index.tsv lists the corpus", f"{len(rows)} rows")
    payloads = [(row["file"], open(os.path.join(folder, row["file"]), "rb").read()) for row in rows]
    answers = send_all(public, payloads)
    wrong = []
    for row in rows:
        name = row["file"]
        expected = expected_answer(row)
        got = answers[name]
        first = status_of(got[0]) if got else NONE
        ok = first in expected
        if ok and first == 405:
            ok = b"\r\nAllow:" in got[0]
        if ok and first == 420:
            ok = b"\r\nUnsupported:" in got[0]
        if not ok:
            shown = " | ".join(first_line(d) for d in got) if got else "no answer"
            wrong.append(f"  {name} ({row['syntax']} {row['kind']}, {row['rfc_section']}): expected "
                         f"{sorted(expected, key=str)}, got {shown}")
    run.check(not wrong, f"{label}: RFC 4475 messages answered as index.tsv expects ({len(rows)} files)",
              "\n".join(wrong))
    run.check(palisade.alive() and palisade.health() == 200, f"{label}: daemon alive after RFC 4475",
              palisade.log_tail())


def other_corpora_phase(run, palisade, public, label):
    payloads = []
    for pattern in ("rfc5118/wire/*.dat", "protos-c07/cases/*.sip", "captures/seeds/wireshark-samples/*.sip"):
        found = read_payloads(os.path.join(run.corpus, pattern))
        run.require(found, f"corpus files {pattern} present")
        payloads += found
    answers = send_all(public, payloads)
    answered = sum(1 for v in answers.values() if v)
    run.log(f"{label}: {answered} of {len(payloads)} other corpus messages got an answer")
    bad = [f"  {name}: {first_line(d)!r}" for name, v in answers.items() for d in v
           if not isinstance(status_of(d), int)]
    run.check(not bad, f"{label}: every answer to the other corpora is a SIP response", "\n".join(bad[:20]))
    time.sleep(0.2)
    run.check(palisade.alive() and palisade.health() == 200,
              f"{label}: daemon alive after {len(payloads)} RFC 5118 / PROTOS / capture messages",
              palisade.log_tail())


def body(run):
    for workers in harness.worker_counts(run.args):
        label = f"{workers} worker(s)"
        pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
        carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
        black_hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        black_hole.bind((harness.PBX_IP, pbx_port))
        try:
            cfg = run.config(workers, pbx_port, carrier_port, sip={"t1_ms": 100})
            palisade = run.start_palisade(cfg, name=f"palisade-w{workers}")
            public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
            rfc4475_phase(run, palisade, public, label)
            other_corpora_phase(run, palisade, public, label)
        finally:
            black_hole.close()
        # Every INVITE forwarded to the black hole ends by Timer B (64 * T1 = 6.4 s).
        active = palisade.wait_metric("active_calls", lambda v: v == 0, 20)
        run.check(active == 0, f"{label}: forwarded torture INVITEs time out", f"active calls {active:g}")

        before = palisade.metrics()
        uac, uas = harness.start_calls(run, public, "uas", "uac", CALLS, RATE, harness.PBX_IP, pbx_port,
                                       harness.CALLER_IP, timeout_s=60).wait()
        run.check_sipp(uac, CALLS, f"{label}: {CALLS} calls after the torture messages (caller)")
        run.check_sipp(uas, CALLS, f"{label}: {CALLS} calls after the torture messages (PBX)")
        harness.expect_counters(run, palisade, before, {"calls_answered": CALLS, "calls_failed": 0},
                                f"{label}: calls after the torture messages")
        harness.wait_idle(run, palisade, label)
        run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.enter_namespace(__file__, "The torture corpus")
    harness.main_wrapper("test_rfc4475", __doc__, body)
