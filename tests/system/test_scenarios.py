#!/usr/bin/env python3
"""Call flows other than the plain call, caller -> public listener -> PBX over UDP, with 1 and
4 workers: CANCEL while ringing, 486 Busy Here, re-INVITE from the caller once the call is up,
BYE from the callee. Asserts on SIPp's exit codes (both sides) and on Palisade's counters."""
import harness

CALLS = 50
RATE = 25

# (caller scenario, callee scenario, what, expected counter deltas)
FLOWS = [
    ("uac_cancel", "uas_ring", "CANCEL after 180 (caller gets 487, CANCEL gets 200)",
     {"calls_attempted": CALLS, "calls_cancelled": CALLS, "calls_answered": 0, "calls_failed": 0}),
    ("uac_busy", "uas_busy", "486 Busy Here relayed to the caller (a failed call)",
     {"calls_attempted": CALLS, "calls_failed": CALLS, "calls_answered": 0, "calls_cancelled": 0}),
    ("uac_reinvite", "uas_reinvite", "re-INVITE from the caller on an established call",
     {"calls_attempted": CALLS, "calls_answered": CALLS, "calls_failed": 0, "calls_cancelled": 0}),
    ("uac_wait_bye", "uas_bye", "BYE from the callee",
     {"calls_attempted": CALLS, "calls_answered": CALLS, "calls_failed": 0, "calls_cancelled": 0}),
]


def body(run):
    for workers in harness.worker_counts(run.args):
        pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
        carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
        cfg = run.config(workers, pbx_port, carrier_port)
        palisade = run.start_palisade(cfg, name=f"palisade-w{workers}")
        public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
        for uac_scenario, uas_scenario, what, counters in FLOWS:
            label = f"{what}, {workers} worker(s)"
            before = palisade.metrics()
            uac, uas = harness.start_calls(run, public, uas_scenario, uac_scenario, CALLS, RATE,
                                           harness.PBX_IP, pbx_port, harness.CALLER_IP, timeout_s=60).wait()
            run.check_sipp(uac, CALLS, f"{label}: caller {uac_scenario}")
            run.check_sipp(uas, CALLS, f"{label}: callee {uas_scenario}")
            expected = dict(counters, calls_timed_out=0, parse_errors=0)
            harness.expect_counters(run, palisade, before, expected, label)
            harness.wait_idle(run, palisade, label)
        run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_scenarios", __doc__, body)
