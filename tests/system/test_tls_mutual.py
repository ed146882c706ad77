#!/usr/bin/env python3
"""Mutual TLS for a trunk: the trunk "callers" (127.0.0.2) requires a client certificate issued
by its CA and naming "dev-client". Through stunnel (client mode, from 127.0.0.2): without a
certificate the handshake fails; with a certificate from another (untrusted) CA it fails; with
a trusted certificate of another name the connection is closed after the handshake; with the
right certificate 100 calls go through to the PBX. Nothing from the refused connections
reaches the PBX."""
import socket

import harness
from harness import CALLER_IP, PBX_IP, PUBLIC_IP

CALLS = 100


def attempt(run, palisade, name, tls_port, pbx_port, cert=None, key=None, calls=1, refused=True):
    """One SIPp call through a fresh stunnel presenting `cert`; returns the SIPp results."""
    wrap_port = harness.free_ports(CALLER_IP, 1)[0]
    stunnel = run.stunnel(name, True, (CALLER_IP, wrap_port), (PUBLIC_IP, tls_port), cert=cert, key=key,
                          ca=run.certs["ca"], check_host="localhost", local=CALLER_IP)
    if refused:
        # No callee needed: nothing may reach the PBX (calls_attempted stays 0).
        uac = run.sipp("uac-refused", "uac", CALLER_IP, harness.free_ports(CALLER_IP, 1)[0],
                       remote=(CALLER_IP, wrap_port), transport="tcp", calls=1, timeout_s=5)
        result = (uac.wait(), None)
    else:
        result = harness.start_calls(run, (CALLER_IP, wrap_port), "uas", "uac", calls, 50, PBX_IP, pbx_port,
                                     CALLER_IP, transport="tcp", uas_transport="udp",
                                     timeout_s=calls // 50 + 15).wait()
    stunnel.terminate()
    stunnel.wait(timeout=10)
    return result


def body(run):
    run.certs = run.dev_certs()
    other = run.dev_certs("untrusted")  # a second DEV-ONLY CA: same names, not trusted
    pbx_port = harness.free_ports(PBX_IP, 1)[0]
    cfg = run.config(2, pbx_port, harness.free_ports(harness.CARRIER_IP, 1)[0])
    callers = cfg["trunks"][1]
    callers["transport"] = "tls"
    callers["tls_client_ca"] = run.certs["ca"]
    callers["tls_client_names"] = ["dev-client"]
    tls_port = run.with_tls(cfg, run.certs)
    palisade = run.start_palisade(cfg, name="palisade-mtls")

    before = palisade.metrics()
    uac, _ = attempt(run, palisade, "no-cert", tls_port, pbx_port)
    run.check(uac.successful == 0, "a trunk connection without a client certificate carries no call", uac.summary())
    before = harness.expect_counters(run, palisade, before, {"tls_handshake_failures": (1, 10),
                                                             "calls_attempted": 0}, "no client certificate")

    uac, _ = attempt(run, palisade, "untrusted", tls_port, pbx_port, other["client"], other["client_key"])
    run.check(uac.successful == 0, "a client certificate from an untrusted CA carries no call", uac.summary())
    before = harness.expect_counters(run, palisade, before, {"tls_handshake_failures": (1, 10),
                                                             "calls_attempted": 0}, "untrusted client certificate")

    # Trusted, but not the trunk's name: the server certificate carries "localhost", not "dev-client".
    uac, _ = attempt(run, palisade, "wrong-name", tls_port, pbx_port, run.certs["server"], run.certs["server_key"])
    run.check(uac.successful == 0, "a trusted certificate without the trunk's name carries no call", uac.summary())
    before = harness.expect_counters(run, palisade, before, {"tls_client_certificates_refused": (1, 10),
                                                             "calls_attempted": 0}, "wrong certificate name")

    # Over UDP the trunk's address is nobody: a datagram from it (spoofed or not) is dropped.
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((CALLER_IP, 0))
    probe.settimeout(1.0)
    port = probe.getsockname()[1]
    probe.sendto((f"OPTIONS sip:{PUBLIC_IP} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER_IP}:{port};branch=z9hG4bK-mtls\r\n"
                  f"From: <sip:probe@{CALLER_IP}>;tag=1\r\nTo: <sip:{PUBLIC_IP}>\r\nCall-ID: mtls-probe\r\n"
                  "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(),
                 (PUBLIC_IP, cfg["public"]["udp_port"]))
    try:
        answer = probe.recv(4096)
    except socket.timeout:
        answer = None
    probe.close()
    run.check(answer is None, "a UDP request from a mutual-TLS trunk's address gets no answer", repr(answer))
    before = harness.expect_counters(run, palisade, before, {"dropped_untrusted": 1}, "UDP from a mutual-TLS trunk")

    uac, uas = attempt(run, palisade, "good", tls_port, pbx_port, run.certs["client"], run.certs["client_key"],
                       calls=CALLS, refused=False)
    run.check_sipp(uac, CALLS, f"with the trunk's certificate, {CALLS} calls go through")
    run.check_sipp(uas, CALLS, "with the trunk's certificate (PBX side)")
    harness.expect_counters(run, palisade, before, {"calls_answered": CALLS, "calls_failed": 0}, "mutual TLS")
    harness.wait_idle(run, palisade, "mutual TLS")
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_tls_mutual", __doc__, body)
