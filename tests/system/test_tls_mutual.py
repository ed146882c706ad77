#!/usr/bin/env python3
"""Mutual TLS for a trunk: the trunk "callers" (127.0.0.2) requires a client certificate issued
by its CA and naming "dev-client". Through stunnel (client mode, from 127.0.0.2): without a
certificate the handshake fails; with a certificate from another (untrusted) CA it fails; with
a trusted certificate of another name the connection is closed after the handshake; with the
right certificate 100 calls go through to the PBX. Nothing from the refused connections
reaches the PBX."""
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

    uac, uas = attempt(run, palisade, "good", tls_port, pbx_port, run.certs["client"], run.certs["client_key"],
                       calls=CALLS, refused=False)
    run.check_sipp(uac, CALLS, f"with the trunk's certificate, {CALLS} calls go through")
    run.check_sipp(uas, CALLS, "with the trunk's certificate (PBX side)")
    harness.expect_counters(run, palisade, before, {"calls_answered": CALLS, "calls_failed": 0}, "mutual TLS")
    harness.wait_idle(run, palisade, "mutual TLS")
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_tls_mutual", __doc__, body)
