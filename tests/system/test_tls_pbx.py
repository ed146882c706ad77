#!/usr/bin/env python3
"""TLS toward the PBX ([pbx] transport = "tls", a TLS listener on the PBX-facing side): a UDP
caller's 200 calls reach the PBX over TLS (stunnel in server mode in front of the PBX's TCP
SIPp, Palisade verifying its certificate name), and the PBX's 200 calls come in over TLS
(stunnel client mode from the PBX's address to pbx_side.tls_port) and go to the carrier over
UDP. 0 failed calls."""
import harness
from harness import CALLER_IP, CARRIER_IP, PBX_IP, PBX_SIDE_IP, PUBLIC_IP

CALLS = 200
RATE = 100


def body(run):
    run.certs = run.dev_certs()
    pbx_port, pbx_tls_port = harness.free_ports(PBX_IP, 2)
    carrier_port = harness.free_ports(CARRIER_IP, 1)[0]
    cfg = run.config(2, pbx_tls_port, carrier_port, pbx_transport="tls")
    cfg["pbx"]["tls_server_name"] = "localhost"
    pbx_side_tls = harness.free_ports(PBX_SIDE_IP, 1)[0]
    cfg["pbx_side"]["tls_port"] = pbx_side_tls
    run.with_tls(cfg, run.certs, ca_file=run.certs["ca"])
    palisade = run.start_palisade(cfg, name="palisade-tls-pbx")

    # Caller (UDP) -> Palisade -> PBX over TLS.
    run.stunnel("pbx-server", False, (PBX_IP, pbx_tls_port), (PBX_IP, pbx_port), cert=run.certs["server"],
                key=run.certs["server_key"])
    before = palisade.metrics()
    uac, uas = harness.start_calls(run, (PUBLIC_IP, cfg["public"]["udp_port"]), "uas", "uac", CALLS, RATE, PBX_IP,
                                   pbx_port, CALLER_IP, transport="udp", uas_transport="tcp",
                                   timeout_s=CALLS // RATE + 60).wait()
    run.check_sipp(uac, CALLS, f"UDP caller -> TLS PBX: {CALLS} calls")
    run.check_sipp(uas, CALLS, "UDP caller -> TLS PBX (PBX side)")
    before = harness.expect_counters(run, palisade, before,
                                     {"calls_answered": CALLS, "calls_failed": 0, "tls_handshakes": (1, 2),
                                      "tls_handshake_failures": 0},
                                     "caller -> TLS PBX")
    harness.wait_idle(run, palisade, "caller -> TLS PBX")

    # PBX over TLS -> Palisade's PBX-facing TLS port -> carrier (UDP).
    wrap_port = harness.free_ports(PBX_IP, 1)[0]
    run.stunnel("pbx-client", True, (PBX_IP, wrap_port), (PBX_SIDE_IP, pbx_side_tls), ca=run.certs["ca"],
                check_host="localhost", local=PBX_IP)
    uac, uas = harness.start_calls(run, (PBX_IP, wrap_port), "uas", "uac", CALLS, RATE, CARRIER_IP, carrier_port,
                                   PBX_IP, transport="tcp", uas_transport="udp",
                                   timeout_s=CALLS // RATE + 60).wait()
    run.check_sipp(uac, CALLS, f"TLS PBX -> UDP carrier: {CALLS} calls")
    run.check_sipp(uas, CALLS, "TLS PBX -> UDP carrier (carrier side)")
    harness.expect_counters(run, palisade, before,
                            {"calls_answered": CALLS, "calls_failed": 0, "messages_in_tls": (3 * CALLS, 6 * CALLS)},
                            "TLS PBX -> carrier")
    harness.wait_idle(run, palisade, "TLS PBX -> carrier")
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_tls_pbx", __doc__, body)
