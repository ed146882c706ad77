#!/usr/bin/env python3
"""SIP over TLS end to end. SIPp has no TLS, so stunnel4 wraps its TCP:
  (a) caller SIPp (TCP) -> stunnel client (TLS, verifies Palisade's DEV-ONLY certificate) ->
      Palisade public TLS port -> PBX SIPp on UDP: 1,000 calls over one TLS connection, then
      200 calls with one TLS connection each, 0 failed;
  (b) PBX SIPp (UDP) -> Palisade -> carrier trunk with transport "tls" -> stunnel server ->
      carrier SIPp on TCP: 200 calls, Palisade verifying the carrier's certificate name;
  (c) TLS 1.0, TLS 1.1 and a weak TLS 1.2 cipher (openssl s_client) are refused by the server,
      TLS 1.2 with ECDHE+AEAD and TLS 1.3 are accepted;
  (d) a client that never handshakes and one that stops half-way through its ClientHello are
      closed after tls.handshake_timeout_s; an idle TLS connection after tcp.idle_timeout_s."""
import re
import socket
import subprocess
import time

import harness
from harness import CALLER_IP, CARRIER_IP, PBX_IP, PUBLIC_IP

CALLS_ONE_CONNECTION = 1000
CALLS_PER_CONNECTION = 200
CALLS_OUT = 200
RATE = 200


def s_client(run, port, *args, timeout=10):
    argv = ["openssl", "s_client", "-connect", f"{PUBLIC_IP}:{port}", "-servername", "localhost",
            "-CAfile", run.certs["ca"], "-verify_return_error", *args]
    p = subprocess.run(argv, input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


def handshakes(run, port):
    # SECLEVEL=0 lets the client offer what Debian's OpenSSL would not: the refusal must come
    # from Palisade (its alert), not from the client.
    cases = [
        ("TLS 1.0", ["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"], False),
        ("TLS 1.1", ["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"], False),
        ("TLS 1.2 with AES128-SHA (RSA key exchange, CBC)", ["-tls1_2", "-cipher", "AES128-SHA:@SECLEVEL=0"], False),
        ("TLS 1.2 with ECDHE-ECDSA-AES128-SHA (CBC, no AEAD)", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"], False),
        ("TLS 1.2 with ECDHE+AES-GCM", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"], True),
        ("TLS 1.3", ["-tls1_3"], True),
    ]
    for what, args, accepted in cases:
        rc, out = s_client(run, port, *args)
        if accepted:
            run.check(rc == 0 and "Verify return code: 0 (ok)" in out, f"{what} is accepted (certificate verified)",
                      out[-1500:])
        else:
            refused_by_server = "alert" in out and ("protocol version" in out or "handshake failure" in out)
            run.check(rc != 0 and refused_by_server, f"{what} is refused by the server (its alert)", out[-1500:])


def connection_closed_within(sock, seconds):
    """Seconds until the peer closed `sock`, or None if it stayed open longer than `seconds`."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            data = sock.recv(4096)
            if not data:
                return time.monotonic() - start
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - start
    return None


def slow_clients(run, palisade, port):
    before = palisade.metrics()
    silent = socket.create_connection((PUBLIC_IP, port))
    half = socket.create_connection((PUBLIC_IP, port))
    # The first bytes of a TLS 1.2 ClientHello record header and no more.
    half.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]))
    closed_silent = connection_closed_within(silent, 6)
    closed_half = connection_closed_within(half, 6)
    run.check(closed_silent is not None and closed_silent < 4,
              "a connection that never starts a handshake is closed after tls.handshake_timeout_s (2 s)",
              f"closed after {closed_silent}")
    run.check(closed_half is not None and closed_half < 4,
              "a connection that stops half-way through its ClientHello is closed on time",
              f"closed after {closed_half}")
    harness.expect_counters(run, palisade, before, {"tls_handshake_timeouts": 2}, "handshake deadlines")
    silent.close()
    half.close()
    # After a handshake, silence is the idle timeout (tcp.idle_timeout_s = 3).
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"{PUBLIC_IP}:{port}", "-CAfile", run.certs["ca"],
                          "-quiet"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        start = time.monotonic()
        p.wait(timeout=8)
        elapsed = time.monotonic() - start
        run.check(2.5 < elapsed < 6, "an idle TLS connection is closed after tcp.idle_timeout_s (3 s)",
                  f"s_client ended after {elapsed:.1f} s")
    except subprocess.TimeoutExpired:
        run.check(False, "an idle TLS connection is closed after tcp.idle_timeout_s (3 s)", "still open after 8 s")
        p.kill()
        p.wait()
    run.check(palisade.metric("tcp_connections") == 0, "no connection left open",
              f"palisade_tcp_connections = {palisade.metric('tcp_connections')}")


def body(run):
    run.certs = run.dev_certs()
    pbx_port = harness.free_ports(PBX_IP, 1)[0]
    carrier_port, carrier_tls_port = harness.free_ports(CARRIER_IP, 2)
    # A user: the internet (s_client and the probes on 127.0.0.1) may connect at all.
    cfg = run.config(2, pbx_port, carrier_tls_port, carrier_transport="tls", tcp={"idle_timeout_s": 3},
                     users=[harness.TEST_USER])
    # The carrier's stunnel presents the DEV-ONLY server certificate (names localhost, 127.0.0.1).
    cfg["trunks"][0]["tls_server_name"] = "localhost"
    tls_port = run.with_tls(cfg, run.certs, handshake_timeout_s=2, ca_file=run.certs["ca"])
    palisade = run.start_palisade(cfg, name="palisade-tls")

    # (a) The caller's stunnel connects from the caller's address (trunk "callers").
    wrap_port = harness.free_ports(CALLER_IP, 1)[0]
    run.stunnel("caller", True, (CALLER_IP, wrap_port), (PUBLIC_IP, tls_port), ca=run.certs["ca"],
                check_host="localhost", local=CALLER_IP)
    before = palisade.metrics()
    uac, uas = harness.start_calls(run, (CALLER_IP, wrap_port), "uas", "uac", CALLS_ONE_CONNECTION, RATE,
                                   PBX_IP, pbx_port, CALLER_IP, transport="tcp", uas_transport="udp",
                                   timeout_s=CALLS_ONE_CONNECTION // RATE + 60).wait()
    run.check_sipp(uac, CALLS_ONE_CONNECTION, f"TLS caller -> UDP PBX: {CALLS_ONE_CONNECTION} calls over one connection")
    run.check_sipp(uas, CALLS_ONE_CONNECTION, "TLS caller -> UDP PBX (PBX side)")
    before = harness.expect_counters(
        run, palisade, before,
        {"calls_attempted": CALLS_ONE_CONNECTION, "calls_answered": CALLS_ONE_CONNECTION, "calls_failed": 0,
         "tls_handshakes": 1, "messages_in_tls": 3 * CALLS_ONE_CONNECTION},  # INVITE, ACK, BYE
        "TLS caller, one connection")
    harness.wait_idle(run, palisade, "TLS caller, one connection")

    # One TLS connection per call (SIPp -t tn: a TCP connection per call, so stunnel one TLS each).
    uac, uas = harness.start_calls(run, (CALLER_IP, wrap_port), "uas", "uac", CALLS_PER_CONNECTION, 50,
                                   PBX_IP, pbx_port, CALLER_IP, transport="tcp", uas_transport="udp",
                                   timeout_s=CALLS_PER_CONNECTION // 50 + 60, uac_extra=("-t", "tn", "-max_socket", "1000")).wait()
    run.check_sipp(uac, CALLS_PER_CONNECTION, f"TLS caller: {CALLS_PER_CONNECTION} calls, one TLS connection each")
    run.check_sipp(uas, CALLS_PER_CONNECTION, "TLS caller, connection per call (PBX side)")
    before = harness.expect_counters(
        run, palisade, before,
        {"calls_answered": CALLS_PER_CONNECTION, "calls_failed": 0,
         "tls_handshakes": (CALLS_PER_CONNECTION, CALLS_PER_CONNECTION + 2)},
        "TLS caller, connection per call")
    harness.wait_idle(run, palisade, "TLS caller, connection per call")

    # (b) PBX -> carrier over TLS: the carrier's stunnel serves TLS in front of its TCP SIPp.
    run.stunnel("carrier", False, (CARRIER_IP, carrier_tls_port), (CARRIER_IP, carrier_port),
                cert=run.certs["server"], key=run.certs["server_key"])
    pbx_side = (harness.PBX_SIDE_IP, cfg["pbx_side"]["udp_port"])
    uac, uas = harness.start_calls(run, pbx_side, "uas", "uac", CALLS_OUT, RATE, CARRIER_IP, carrier_port, PBX_IP,
                                   transport="udp", uas_transport="tcp", timeout_s=CALLS_OUT // RATE + 60).wait()
    run.check_sipp(uac, CALLS_OUT, f"UDP PBX -> TLS carrier: {CALLS_OUT} calls")
    run.check_sipp(uas, CALLS_OUT, "UDP PBX -> TLS carrier (carrier side)")
    before = harness.expect_counters(run, palisade, before,
                                     # one connection per worker that sent calls
                                     {"calls_answered": CALLS_OUT, "calls_failed": 0, "tls_handshakes": (1, 2)},
                                     "PBX -> TLS carrier")
    harness.wait_idle(run, palisade, "PBX -> TLS carrier")

    # (c) versions and ciphers
    handshakes(run, tls_port)
    # Clients that vanish right after their handshake (s_time: full handshakes, then close):
    # the session tickets Palisade writes then meet a closed socket (EPIPE, never SIGPIPE).
    p = subprocess.run(["openssl", "s_time", "-connect", f"{PUBLIC_IP}:{tls_port}", "-new", "-time", "1",
                        "-CAfile", run.certs["ca"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    made = re.search(r"(\d+) connections in", p.stdout.decode(errors="replace"))
    run.check(made is not None and int(made.group(1)) > 50,
              "openssl s_time completes full handshakes in a loop", p.stdout.decode(errors="replace")[-800:])
    run.check(palisade.alive() and palisade.health() == 200,
              "the daemon survives clients that close right after the handshake", palisade.log_tail())
    # (d) deadlines
    slow_clients(run, palisade, tls_port)
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_tls_calls", __doc__, body)
