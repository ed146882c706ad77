#!/usr/bin/env python3
"""REGISTER and OPTIONS floods on the real daemon (inside a private network namespace), one
daemon run each: SIPp floods at 5,000/s or more from an internet address (127.0.0.9) for 12 s,
REGISTERs of one real user's address-of-record (challenged with 401 until the ban) in the
first run, OPTIONS (never answered to an unauthenticated source) in the second, while the
carrier trunk places 1,000 calls at 50/s to a SIPp PBX. In each: at least 99.9 % of the
carrier's calls succeed; the flooder is rate limited ([flood.internet] register_per_s and
other_per_s), banned within a few seconds (GET /bans, one ban line, palisade_bans_total) and then
dropped before parsing; nothing is shed for overload and the trunk is never limited."""
import harness
import flood_helpers

CALLS, RATE = 1000, 50
FLOOD_RATE, FLOOD_S = 5500, 12


def body(run):
    workers = harness.worker_counts(run.args, default=(2,))[0]
    for method, scenario in (("REGISTER", "flood_register"), ("OPTIONS", "flood_options")):
        pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
        carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
        cfg = run.config(workers, pbx_port, carrier_port, users=[harness.TEST_USER])
        palisade = run.start_palisade(cfg, name=f"palisade-{method.lower()}")
        flood_helpers.flood_with_calls(run, palisade, cfg, pbx_port, scenario, FLOOD_RATE, FLOOD_S, CALLS, RATE,
                                       f"{method} flood, {workers} worker(s)")
        run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.enter_namespace(__file__, "The REGISTER and OPTIONS floods")
    harness.main_wrapper("test_flood_register_options", __doc__, body, budget_s=170)
