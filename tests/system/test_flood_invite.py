#!/usr/bin/env python3
"""INVITE flood on the real daemon (inside a private network namespace): SIPp floods new
INVITEs at 5,000/s or more from an internet address (127.0.0.9) for 12 s while the carrier trunk
places 1,000 calls at 50/s through Palisade to a SIPp PBX. At least 99.9 % of the carrier's
calls succeed; the flooder's excess over [flood.internet] invite_per_s is dropped (rate_limit)
until ban_excess of it bans the address within a few seconds (GET /bans lists it, one ban
line, palisade_bans_total); everything it sends afterwards is dropped before parsing (banned);
the trunk is never limited, banned or shed, and no flood INVITE becomes a call. A second run
with flood.ban_excess = 0 keeps the flooder unbanned for the whole flood, so that every one of
its INVITEs is parsed and rate limited: the carrier's calls still succeed (99.9 %) and all but
the flooder's allowance is dropped as rate_limit."""
import harness
import flood_helpers

CALLS, RATE = 1000, 50
FLOOD_RATE, FLOOD_S = 5500, 12


def body(run):
    for workers in harness.worker_counts(run.args, default=(2,)):
        # A user with no `sources`: the internet gets past default deny (and is challenged), so
        # the flood reaches the flood guard instead of being dropped unparsed.
        for banning in (True, False):
            pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
            carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
            cfg = run.config(workers, pbx_port, carrier_port, users=[harness.TEST_USER],
                             **({} if banning else {"flood": {"ban_excess": 0}}))
            what = "banned" if banning else "never banned"
            palisade = run.start_palisade(cfg, name=f"palisade-w{workers}-{'ban' if banning else 'noban'}")
            flood_helpers.flood_with_calls(run, palisade, cfg, pbx_port, "flood_invite", FLOOD_RATE, FLOOD_S, CALLS,
                                           RATE, f"INVITE flood ({what}), {workers} worker(s)", expect_ban=banning)
            run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.enter_namespace(__file__, "The INVITE flood")
    harness.main_wrapper("test_flood_invite", __doc__, body, budget_s=150)
