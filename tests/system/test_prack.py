#!/usr/bin/env python3
"""Reliable provisionals (RFC 3262) relayed end to end, caller -> public listener -> PBX over
UDP, with 1 and 4 workers. The SIPp caller requires 100rel; the SIPp PBX answers with a 183
carrying SDP, Require: 100rel and RSeq: 1, and checks that the INVITE offered and required
100rel and that the PRACK's RAck names its own RSeq and INVITE CSeq (1 1 INVITE). The caller
checks that its 183 is reliable (Require: 100rel, an RSeq) and builds its RAck from Palisade's
RSeq. Then 200, ACK and BYE. Asserts on SIPp's exit codes (both sides) and on Palisade's
counters (no PRACK timeout, no dropped provisional)."""
import harness

CALLS = 50
RATE = 25


def body(run):
    for workers in harness.worker_counts(run.args):
        pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
        carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
        cfg = run.config(workers, pbx_port, carrier_port)
        palisade = run.start_palisade(cfg, name=f"palisade-w{workers}")
        public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
        label = f"reliable 183 and PRACK, {workers} worker(s)"
        before = palisade.metrics()
        uac, uas = harness.start_calls(run, public, "uas_prack", "uac_prack", CALLS, RATE, harness.PBX_IP,
                                       pbx_port, harness.CALLER_IP, timeout_s=60).wait()
        run.check_sipp(uac, CALLS, f"{label}: caller uac_prack")
        run.check_sipp(uas, CALLS, f"{label}: callee uas_prack")
        harness.expect_counters(run, palisade, before,
                                {"calls_attempted": CALLS, "calls_answered": CALLS, "calls_failed": 0,
                                 "calls_timed_out": 0, "parse_errors": 0, "prack_timeouts": 0,
                                 "provisionals_dropped": 0},
                                label)
        harness.wait_idle(run, palisade, label)
        run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_prack", __doc__, body)
