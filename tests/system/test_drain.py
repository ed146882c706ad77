#!/usr/bin/env python3
"""Graceful drain on SIGTERM, on the real daemon:

1. over UDP, then over TCP (one carrier connection opened before the drain): the carrier places
   calls of 3 s at 20/s through Palisade to a SIPp PBX; 3 s in, SIGTERM. Every call admitted
   before it completes (its BYE gets 200: SIPp counts it successful), every INVITE after it gets
   503 (palisade_rejections_total{reason="draining"}, gauge palisade_draining = 1, scraped
   during the drain), no call fails; the public TCP listener refuses new connections (the
   PBX-facing one stays open: the PBX may need one to end a call) while the calls go on (over TCP, on the connection that already exists); the
   process exits 0 by itself once the last call has ended, well before general.drain_timeout_s.
2. a second SIGTERM during the drain stops at once (exit 0) with calls still up.
3. calls that outlast general.drain_timeout_s: Palisade stops when it has passed (exit 0) and
   says how many calls were still up.
"""
import glob
import os
import signal
import socket
import time

import harness
import flood_helpers

DRAIN_TIMEOUT_S = 20
CALL_MS = 3000
CALLS, RATE = 100, 20
TERM_AFTER_S = 3.0


def connect_refused(address):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(address)
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


def message_counts(run, scenario, pid):
    """The last row of SIPp's -trace_counts file for the instance with `pid`: {column: int}."""
    paths = glob.glob(os.path.join(run.dir, f"{scenario}_{pid}_counts.csv"))
    if not paths:
        return {}
    with open(paths[0], encoding="latin-1") as f:
        rows = [line.rstrip("\r\n") for line in f if line.strip()]
    if len(rows) < 2:
        return {}
    out = {}
    for k, v in zip(rows[0].split(";"), rows[-1].split(";")):
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def step(counts, index, kind):
    """Count of `kind` (Recv, Sent, ...) at scenario step `index` in -trace_counts columns."""
    for k, v in counts.items():
        if k.startswith(f"{index}_") and k.endswith(f"_{kind}"):
            return v
    return 0


def drain_with_calls(run, transport):
    label = f"drain over {transport.upper()}"
    pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    cfg = run.config(2, pbx_port, carrier_port, pbx_transport=transport, carrier_transport=transport,
                     general={"drain_timeout_s": DRAIN_TIMEOUT_S})
    palisade = run.start_palisade(cfg, name=f"palisade-{transport}")
    public_tcp = (harness.PUBLIC_IP, cfg["public"]["tcp_port"])
    pbx_tcp = (harness.PBX_SIDE_IP, cfg["pbx_side"]["tcp_port"])
    public = (harness.PUBLIC_IP, cfg["public"]["udp_port" if transport == "udp" else "tcp_port"])
    run.check(not connect_refused(public_tcp) and not connect_refused(pbx_tcp),
              f"{label}: before SIGTERM both TCP listeners accept connections")

    uas = run.sipp("uas", "uas", harness.PBX_IP, pbx_port, transport=transport, calls=CALLS, timeout_s=60,
                   recv_timeout_ms=20000, extra=["-fd", "1", "-trace_counts"])
    uac = run.sipp("uac-drain", "uac_drain", harness.CARRIER_IP, harness.free_ports(harness.CARRIER_IP, 1)[0],
                   remote=public, transport=transport, calls=CALLS, rate=RATE, timeout_s=60,
                   extra=["-d", str(CALL_MS), "-trace_counts", "-fd", "1"])
    time.sleep(TERM_AFTER_S)
    before = palisade.metrics()
    run.check(before.get("palisade_active_calls", 0) >= 30,
              f"{label}: calls in progress at SIGTERM ({before.get('palisade_active_calls', 0):g})")
    palisade.signal(signal.SIGTERM)
    term_at = time.monotonic()

    # During the drain: scrape, and try both TCP listeners.
    last, draining_seen, refused = None, False, None
    while palisade.alive() and time.monotonic() - term_at < DRAIN_TIMEOUT_S + 5:
        try:
            m = palisade.metrics()
        except harness.TestFailure:
            break  # it has just exited
        last = m
        draining_seen = draining_seen or m.get("palisade_draining") == 1
        if refused is None and time.monotonic() - term_at > 0.5 and palisade.alive():
            refused = connect_refused(public_tcp) and not connect_refused(pbx_tcp)
            still_up = palisade.alive()
            refused = refused and still_up
        time.sleep(0.1)
    try:
        rc = palisade.popen.wait(timeout=DRAIN_TIMEOUT_S + 5)
    except Exception:  # noqa: BLE001 - reported below
        rc = None
    exited_after = time.monotonic() - term_at
    result = uac.wait(timeout_s=20)
    counts = message_counts(run, "uac_drain", uac.popen.pid)

    run.check(draining_seen, f"{label}: palisade_draining is 1 during the drain")
    run.check(refused is True, f"{label}: during the drain the public TCP listener refuses new connections, the PBX-facing one "
              "still accepts (the PBX may need a connection to end a call)")
    answered, rejected, bye_ok = step(counts, 4, "Recv"), step(counts, 5, "Recv"), step(counts, 11, "Recv")
    run.log(f"{label}: {answered} calls answered, {rejected} refused with 503, {bye_ok} BYEs answered 200; "
            f"exit after {exited_after:.1f} s")
    run.check(result.rc == 0 and result.failed == 0 and result.successful == CALLS and not result.timed_out,
              f"{label}: all {CALLS} calls end well (answered then hung up, or 503)", result.details())
    run.check(answered + rejected == CALLS and bye_ok == answered,
              f"{label}: every call answered before SIGTERM completes (BYE gets 200: {bye_ok} of {answered})",
              f"counts: {counts}")
    run.check(answered >= 40 and rejected >= 25,
              f"{label}: calls before SIGTERM were admitted ({answered}), INVITEs after it got 503 ({rejected})")
    draining = flood_helpers.metric_or_zero(last or {}, flood_helpers.rejections("draining"))
    run.check(1 <= draining <= rejected,
              f"{label}: palisade_rejections_total{{reason=\"draining\"}} counts the 503s ({draining:g} at the "
              f"last scrape, {rejected} seen)")
    run.check(flood_helpers.metric_or_zero(last or {}, flood_helpers.rejections("call_limit")) == 0
              and flood_helpers.metric_or_zero(last or {}, flood_helpers.rejections("overload")) == 0,
              f"{label}: no 503 for another reason")
    run.check(rc == 0, f"{label}: palisade exits 0 by itself once the calls are done ({harness.describe_exit(rc)})",
              palisade.log_tail())
    run.check(CALL_MS / 1000 - 1 <= exited_after <= CALL_MS / 1000 + (CALLS / RATE - TERM_AFTER_S) + 4,
              f"{label}: ... after the last call, not at once nor at drain_timeout_s ({exited_after:.1f} s after "
              f"SIGTERM, drain_timeout_s = {DRAIN_TIMEOUT_S})")
    run.check("drain: no call in progress; stopping" in palisade.log_tail(20000),
              f"{label}: the log says the drain ended with no call in progress", palisade.log_tail())
    # The PBX expected up to CALLS calls and got fewer: stopped here, its statistics (written
    # every second) must show each answered call completed on its side too.
    callee = uas.wait(timeout_s=4)
    # Counted by what it sent: its 200 to each BYE (step 6 of uas.xml). Over TCP the last calls may
    # still sit in SIPp's 2 s timewait (for retransmitted BYEs, which TCP never has) when Palisade
    # exits and closes the connection; SIPp counts those as failed though they are complete.
    pbx_counts = message_counts(run, "uas", uas.popen.pid)
    completed = step(pbx_counts, 6, "Sent")
    run.check(completed == answered and (callee.failed == 0 or transport == "tcp"),
              f"{label}: the PBX completed each admitted call ({completed} BYEs answered of {answered})",
              callee.details())


def second_term(run):
    label = "second SIGTERM"
    pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    cfg = run.config(1, pbx_port, carrier_port, general={"drain_timeout_s": DRAIN_TIMEOUT_S})
    palisade = run.start_palisade(cfg, name="palisade-second-term")
    public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
    uas = run.sipp("uas-long", "uas", harness.PBX_IP, pbx_port, calls=20, timeout_s=40, recv_timeout_ms=30000)
    uac = run.sipp("uac-long", "uac", harness.CARRIER_IP, harness.free_ports(harness.CARRIER_IP, 1)[0],
                   remote=public, calls=20, rate=20, timeout_s=40, extra=["-d", "15000"])
    active = palisade.wait_metric("active_calls", lambda v: v >= 20, 5)
    run.check(active >= 20, f"{label}: 20 long calls up ({active:g})")
    palisade.signal(signal.SIGTERM)
    time.sleep(1.0)
    run.check(palisade.alive() and palisade.metric("palisade_draining") == 1,
              f"{label}: after the first one it is draining with the calls up")
    palisade.signal(signal.SIGTERM)
    started = time.monotonic()
    try:
        rc = palisade.popen.wait(timeout=5)
    except Exception:  # noqa: BLE001 - reported below
        rc = None
    took = time.monotonic() - started
    run.check(rc == 0 and took < 2.0, f"{label}: the second one stops it at once, exit 0 "
              f"({harness.describe_exit(rc)} after {took:.2f} s)", palisade.log_tail())
    run.check("shutting down" in palisade.log_tail(20000), f"{label}: the log says it is shutting down",
              palisade.log_tail())
    for sipp in (uac, uas):
        run.kill_group(sipp.popen)
        sipp.popen.wait(timeout=10)


def drain_timeout(run):
    label = "drain timeout"
    pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    cfg = run.config(1, pbx_port, carrier_port, general={"drain_timeout_s": 2})
    palisade = run.start_palisade(cfg, name="palisade-drain-timeout")
    public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
    uas = run.sipp("uas-longer", "uas", harness.PBX_IP, pbx_port, calls=10, timeout_s=40, recv_timeout_ms=30000)
    uac = run.sipp("uac-longer", "uac", harness.CARRIER_IP, harness.free_ports(harness.CARRIER_IP, 1)[0],
                   remote=public, calls=10, rate=20, timeout_s=40, extra=["-d", "20000"])
    active = palisade.wait_metric("active_calls", lambda v: v >= 10, 5)
    run.check(active >= 10, f"{label}: 10 long calls up ({active:g})")
    palisade.signal(signal.SIGTERM)
    started = time.monotonic()
    try:
        rc = palisade.popen.wait(timeout=10)
    except Exception:  # noqa: BLE001 - reported below
        rc = None
    took = time.monotonic() - started
    run.check(rc == 0 and 1.5 <= took <= 4.0,
              f"{label}: with calls still up it stops after drain_timeout_s = 2, exit 0 "
              f"({harness.describe_exit(rc)} after {took:.2f} s)", palisade.log_tail())
    run.check("drain: 10 call(s) still in progress after 2 s; stopping" in palisade.log_tail(20000),
              f"{label}: the log says how many calls were still up", palisade.log_tail())
    for sipp in (uac, uas):
        run.kill_group(sipp.popen)
        sipp.popen.wait(timeout=10)


def body(run):
    drain_with_calls(run, "udp")
    drain_with_calls(run, "tcp")
    second_term(run)
    drain_timeout(run)


if __name__ == "__main__":
    harness.main_wrapper("test_drain", __doc__, body, budget_s=150)
