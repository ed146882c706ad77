#!/usr/bin/env python3
"""TCP transport limits on the real daemon: connections per source address, idle timeout,
stream framing errors (missing Content-Length -> 400 and close, oversized -> 513 and close),
the RFC 5626 CRLF keep-alive, and that a refused connection costs nothing else. The sources are
internet addresses (not trunks, which are not counted), so a user is configured to get them
past default deny; their REGISTERs are answered with the 401 challenge."""
import socket
import time

import harness

OPTIONS = ("REGISTER sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/TCP {src};branch=z9hG4bK-tl-{n}\r\n"
           "From: <sip:2001@{host}>;tag=tl{n}\r\nTo: <sip:2001@{host}>\r\nCall-ID: tcp-limits-{n}\r\n"
           "CSeq: 1 REGISTER\r\nContact: <sip:2001@{src};transport=tcp>\r\nMax-Forwards: 70\r\n"
           "Content-Length: 0\r\n\r\n")
INTERNET_IP = "127.0.0.6"
OTHER_INTERNET_IP = "127.0.0.7"


def connect(source, target):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    s.bind((source, 0))
    s.connect(target)
    return s


def closed_by_peer(s, within_s):
    """True when the peer closes the connection within the time (recv returns b'' or resets)."""
    s.settimeout(within_s)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def read_status(s):
    s.settimeout(3)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return int(line.split()[1]) if line.startswith("SIP/2.0 ") else None


def body(run):
    pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    cfg = run.config(1, pbx_port, carrier_port, tcp={"max_connections_per_ip": 3, "idle_timeout_s": 2},
                     users=[harness.TEST_USER])
    p = run.start_palisade(cfg)
    host, port = cfg["public"]["address"], cfg["public"]["tcp_port"]
    target = (host, port)

    kept = []
    for n in range(3):
        s = connect(INTERNET_IP, target)
        s.sendall(OPTIONS.format(host=host, port=port, src=f"{INTERNET_IP}:{s.getsockname()[1]}", n=n).encode())
        run.check(read_status(s) == 401, f"REGISTER on connection {n + 1} of 3 answered (401) over TCP")
        kept.append(s)
    extra = connect(INTERNET_IP, target)
    run.check(closed_by_peer(extra, 2.0), "a 4th connection from the same address is closed at once")
    run.check(p.wait_metric("palisade_tcp_connections_refused_total", lambda v: v >= 1, 5) >= 1,
              "palisade_tcp_connections_refused_total counts it")
    other = connect(OTHER_INTERNET_IP, target)
    other.sendall(OPTIONS.format(host=host, port=port, src=f"{OTHER_INTERNET_IP}:{other.getsockname()[1]}", n=9).encode())
    run.check(read_status(other) == 401, "another source address still gets in")
    other.close()

    start = time.monotonic()
    run.check(closed_by_peer(kept[0], 5.0), "an idle connection is closed after tcp.idle_timeout_s")
    idle = time.monotonic() - start
    run.check(1.0 <= idle <= 4.5, f"idle close after about 2 s (took {idle:.1f} s)")
    for s in kept:
        s.close()

    s = connect(INTERNET_IP, target)
    s.sendall(b"\r\n\r\n")
    s.settimeout(3)
    run.check(s.recv(16) == b"\r\n", "a CRLF CRLF keep-alive gets a CRLF pong (RFC 5626)")
    no_length = OPTIONS.format(host=host, port=port, src=f"{INTERNET_IP}:{s.getsockname()[1]}", n=20)
    s.sendall(no_length.replace("Content-Length: 0\r\n", "").encode())
    run.check(read_status(s) == 400, "a stream message without Content-Length gets 400")
    run.check(closed_by_peer(s, 3.0), "... and the connection is closed (RFC 3261 §18.3)")

    s = connect(INTERNET_IP, target)
    huge = OPTIONS.format(host=host, port=port, src=f"{INTERNET_IP}:{s.getsockname()[1]}", n=21)
    s.sendall(huge.replace("Content-Length: 0", "Content-Length: 900000").encode())
    run.check(read_status(s) == 513, "a Content-Length beyond max_message_bytes gets 513")
    run.check(closed_by_peer(s, 3.0), "... and the connection is closed")

    run.check(p.alive(), "palisade is still running")
    run.check_clean_stop(p)


if __name__ == "__main__":
    harness.main_wrapper("test_tcp_limits", __doc__, body, budget_s=120)
