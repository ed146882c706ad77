#!/usr/bin/env python3
"""Slow-loris over TCP on the real daemon: clients that drip a message one byte at a time are
closed once tcp.head_timeout_s has passed since the message began (partial reads do not keep
them alive), while SIPp places TCP calls through the same listener without a failure."""
import socket
import time

import harness

HEAD_TIMEOUT_S = 2
DRIPPERS = 5
CALLS = 150
RATE = 30


def dripper(target, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.connect(target)
    s.setblocking(False)
    return s


def closed(s):
    try:
        data = s.recv(4096)
        return data == b""
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


def body(run):
    pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    # A user, so that the drippers (the internet) get a connection before default deny can act.
    cfg = run.config(2, pbx_port, carrier_port, pbx_transport="tcp", carrier_transport="tcp",
                     tcp={"head_timeout_s": HEAD_TIMEOUT_S, "idle_timeout_s": 60}, users=[harness.TEST_USER])
    palisade = run.start_palisade(cfg)
    target = (harness.PUBLIC_IP, cfg["public"]["tcp_port"])
    before = palisade.metrics()
    pair = harness.start_calls(run, target, "uas", "uac", CALLS, RATE, harness.PBX_IP, pbx_port, harness.CALLER_IP,
                               transport="tcp", timeout_s=CALLS // RATE + 60)
    time.sleep(1)  # calls are flowing

    payload = (f"INVITE sip:1000@{target[0]}:{target[1]} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.6:5060;branch=z9hG4bK-d\r\n"
               "From: <sip:x@127.0.0.6>;tag=d\r\nTo: <sip:1000@x>\r\nCall-ID: drip\r\nCSeq: 1 INVITE\r\n").encode()
    clients = [dripper(target, "127.0.0.6") for _ in range(DRIPPERS)]
    started = time.monotonic()
    closed_at = [None] * DRIPPERS
    sent = 0
    while time.monotonic() - started < HEAD_TIMEOUT_S + 4 and None in closed_at:
        for i, s in enumerate(clients):
            if closed_at[i] is not None:
                continue
            if closed(s):
                closed_at[i] = time.monotonic() - started
                continue
            try:
                s.send(payload[sent % len(payload):sent % len(payload) + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed_at[i] = time.monotonic() - started
        sent += 1
        time.sleep(0.2)
    for s in clients:
        s.close()
    run.check(None not in closed_at, f"every dripping client is closed ({closed_at})")
    late = [t for t in closed_at if t is not None and not (HEAD_TIMEOUT_S - 0.5 <= t <= HEAD_TIMEOUT_S + 2.5)]
    run.check(not late, f"... about {HEAD_TIMEOUT_S} s after its message began", f"closed after {closed_at} s")
    run.check(palisade.wait_metric("tcp_head_timeouts", lambda v: v >= DRIPPERS, 5) -
              palisade.metric("tcp_head_timeouts", before) == DRIPPERS,
              "palisade_tcp_head_timeouts_total counts each of them")

    uac, uas = pair.wait()
    run.check_sipp(uac, CALLS, f"{CALLS} TCP calls through the same listener meanwhile (caller)")
    run.check_sipp(uas, CALLS, f"{CALLS} TCP calls (PBX)")
    harness.expect_counters(run, palisade, before, {"calls_answered": CALLS, "calls_failed": 0}, "slow drip")
    harness.wait_idle(run, palisade, "slow drip")
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_tcp_slow_drip", __doc__, body, budget_s=150)
