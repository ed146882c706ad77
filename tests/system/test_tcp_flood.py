#!/usr/bin/env python3
"""TCP connection flood and slow-loris on the real daemon's public TCP port (inside a private
network namespace), while the carrier places TCP calls at 20/s with a new connection for each
call (SIPp -t tn), so that it has to get in while the flood is on:

- slow-loris: 5 connections from 127.0.0.6 drip a message one byte a second and never finish;
  each is closed about tcp.head_timeout_s (2 s) after it opened (tcp_head_timeouts_total);
- one address (127.0.0.9) opens 100 connections and holds them: past
  tcp.max_connections_per_ip (8) they are refused, and scanners.max_errors (20) refusals ban
  it (one ban line naming refused connections, GET /bans, palisade_bans_total); after that its
  connections are closed unparsed (drops_total{reason="banned"}); the 8 it got in never send a
  message and are closed by the head timeout;
- 21 addresses (127.0.0.20-40) open 12 connections each and hold them, filling
  tcp.max_connections (128) as well: refused past the limits, the rest closed by the head
  timeout, and none of them banned (too few errors each);
- every carrier call succeeds (configured peers are not counted against either limit);
- nothing leaks: when the peers are gone, palisade_tcp_connections is back to 0 and the daemon
  holds as many descriptors as it did before the flood.
"""
import os
import socket
import time

import harness
import flood_helpers

HEAD_TIMEOUT_S = 2
PER_IP, TOTAL, MAX_ERRORS = 8, 128, 20
FLOODER_IP, LORIS_IP = flood_helpers.FLOODER_IP, "127.0.0.6"
SPREAD_IPS = [f"127.0.0.{n}" for n in range(20, 41)]
FLOOD_CONNECTIONS, SPREAD_CONNECTIONS, LORIS_CONNECTIONS = 100, 12, 5
CALLS, RATE = 300, 20


def open_from(source, target):
    """A connected, non-blocking socket from `source`, or None if the connection failed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    s.bind((source, 0))
    try:
        s.connect(target)
    except OSError:
        s.close()
        return None
    s.setblocking(False)
    return s


def closed(s):
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def wait_all_closed(socks, deadline):
    """Polls until every socket is closed by the peer or the deadline passes; returns the open ones."""
    pending = [s for s in socks if s is not None]
    while pending and time.monotonic() < deadline:
        pending = [s for s in pending if not closed(s)]
        time.sleep(0.05)
    return pending


def descriptors(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def body(run):
    pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    # A user: the internet gets past default deny, so its connections are accepted and counted.
    cfg = run.config(harness.worker_counts(run.args, default=(2,))[0], pbx_port, carrier_port, pbx_transport="tcp", carrier_transport="tcp",
                     users=[harness.TEST_USER], scanners={"max_errors": MAX_ERRORS},
                     tcp={"head_timeout_s": HEAD_TIMEOUT_S, "idle_timeout_s": 60, "max_connections_per_ip": PER_IP,
                          "max_connections": TOTAL})
    palisade = run.start_palisade(cfg)
    target = (harness.PUBLIC_IP, cfg["public"]["tcp_port"])
    before = palisade.metrics()
    time.sleep(0.2)
    fds_before = descriptors(palisade.pid)
    pair = harness.start_calls(run, target, "uas", "uac", CALLS, RATE, harness.PBX_IP, pbx_port, harness.CARRIER_IP,
                               transport="tcp", timeout_s=CALLS // RATE + 60, uac_extra=["-t", "tn", "-max_socket", "1000"])
    time.sleep(1)
    run.check(pair.uac.popen.poll() is None, "carrier TCP calls are flowing before the flood")

    # Slow-loris first (so that it gets in before the flood fills the limits), then the floods.
    payload = (f"INVITE sip:1000@{target[0]}:{target[1]} SIP/2.0\r\nVia: SIP/2.0/TCP {LORIS_IP}:5060;branch=z9hG4bK-l\r\n"
               f"From: <sip:x@{LORIS_IP}>;tag=l\r\nTo: <sip:1000@x>\r\nCall-ID: loris\r\nCSeq: 1 INVITE\r\n").encode()
    loris = [open_from(LORIS_IP, target) for _ in range(LORIS_CONNECTIONS)]
    run.require(all(s is not None for s in loris), "the slow-loris connections open")
    loris_start = time.monotonic()
    for s in loris:
        s.send(payload[:1])
    flood = [open_from(FLOODER_IP, target) for _ in range(FLOOD_CONNECTIONS)]
    spread = [open_from(ip, target) for ip in SPREAD_IPS for _ in range(SPREAD_CONNECTIONS)]
    flood_opened = time.monotonic()
    run.log(f"flood: {sum(s is not None for s in flood)} of {FLOOD_CONNECTIONS} connections from {FLOODER_IP} and "
            f"{sum(s is not None for s in spread)} of {len(spread)} from {len(SPREAD_IPS)} addresses opened "
            f"in {flood_opened - loris_start:.2f} s")

    # Drip one byte a second into each loris connection; note when each is closed.
    loris_closed = [None] * len(loris)
    sent = 1
    next_drip = loris_start + 1
    while None in loris_closed and time.monotonic() - loris_start < HEAD_TIMEOUT_S + 4:
        now = time.monotonic()
        for i, s in enumerate(loris):
            if loris_closed[i] is None and closed(s):
                loris_closed[i] = now - loris_start
        if now >= next_drip:
            for i, s in enumerate(loris):
                if loris_closed[i] is None:
                    try:
                        s.send(payload[sent:sent + 1])
                    except OSError:
                        loris_closed[i] = now - loris_start
            sent += 1
            next_drip += 1
        time.sleep(0.05)
    run.check(None not in loris_closed and all(HEAD_TIMEOUT_S - 0.5 <= t <= HEAD_TIMEOUT_S + 2.0 for t in loris_closed),
              f"every slow-loris connection is closed about {HEAD_TIMEOUT_S} s after it opened, dripping or not "
              f"({['-' if t is None else round(t, 1) for t in loris_closed]})")

    held = wait_all_closed(flood + spread, flood_opened + HEAD_TIMEOUT_S + 3)
    run.check(not held, f"every flood connection is closed by Palisade within {HEAD_TIMEOUT_S + 3} s "
              f"({len(held)} still open)")
    took = flood_helpers.wait_banned(palisade, FLOODER_IP, 1)
    run.check(took is not None, f"{FLOODER_IP} is banned for its refused connections (GET /bans)",
              str(flood_helpers.bans(palisade)))
    lines = flood_helpers.ban_lines(palisade, FLOODER_IP)
    run.check(len(lines) == 1 and "refused connections" in lines[0] and "(strike 1)" in lines[0],
              "the ban line names the refused connections", "\n".join(lines) or palisade.log_tail())

    # A banned address's next connection is closed at once, unparsed.
    banned_before = palisade.metric(flood_helpers.drops("banned"))
    s = open_from(FLOODER_IP, target)
    run.check(s is None or not wait_all_closed([s], time.monotonic() + 1.0),
              "a new connection from the banned address is closed at once")
    if s is not None:
        s.close()
    run.check(palisade.wait_metric(flood_helpers.drops("banned"), lambda v: v > banned_before, 3) > banned_before,
              "... and counted in drops_total{reason=\"banned\"}")
    for sock in loris + flood + spread:
        if sock is not None:
            sock.close()

    uac, uas = pair.wait()
    run.check_sipp(uac, CALLS, f"{CALLS} carrier TCP calls, a new connection each, during the flood")
    run.check_sipp(uas, CALLS, "the PBX answered every carrier call")
    harness.wait_idle(run, palisade, "TCP flood")
    after = palisade.metrics()
    refused = flood_helpers.delta(before, after, "tcp_connections_refused")
    banned = flood_helpers.delta(before, after, flood_helpers.drops("banned"))
    head_timeouts = flood_helpers.delta(before, after, "tcp_head_timeouts")
    run.log(f"refused +{refused:g}, dropped as banned +{banned:g}, head timeouts +{head_timeouts:g}, "
            f"scanner errors +{flood_helpers.delta(before, after, 'palisade_scanner_errors_total'):g}")
    run.check(refused >= MAX_ERRORS + 1 + len(SPREAD_IPS) * (SPREAD_CONNECTIONS - PER_IP),
              f"connections past the limits are refused and counted (+{refused:g})")
    run.check(refused + banned >= (FLOOD_CONNECTIONS - PER_IP) + len(SPREAD_IPS) * (SPREAD_CONNECTIONS - PER_IP),
              f"every connection from {FLOODER_IP} past its 8 was refused or dropped as banned "
              f"(refused +{refused:g}, banned +{banned:g})")
    run.check(head_timeouts >= LORIS_CONNECTIONS + PER_IP + len(SPREAD_IPS),
              f"the connections that got in and never sent a whole message met the head timeout (+{head_timeouts:g})")
    run.check(flood_helpers.delta(before, after, "palisade_scanner_errors_total") >= MAX_ERRORS + 1,
              "refusals and head timeouts count as scanner errors")
    run.check(flood_helpers.banned_addresses(palisade) == [FLOODER_IP],
              f"only {FLOODER_IP} is banned (not the spread addresses, the slow-loris or the carrier)",
              str(flood_helpers.bans(palisade)))

    gauge = palisade.wait_metric("tcp_connections", lambda v: v == 0, 10)
    run.check(gauge == 0, f"palisade_tcp_connections back to 0 once the peers are gone ({gauge:g})")
    deadline = time.monotonic() + 5
    fds = descriptors(palisade.pid)
    while fds > fds_before and time.monotonic() < deadline:
        time.sleep(0.1)
        fds = descriptors(palisade.pid)
    run.check(0 < fds <= fds_before, f"the daemon holds no more descriptors than before the flood ({fds} vs {fds_before})")
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.enter_namespace(__file__, "The TCP connection flood")
    harness.main_wrapper("test_tcp_flood", __doc__, body, budget_s=150)
