#!/usr/bin/env python3
"""Trusted responses on the real daemon: while a call rings, an attacker who knows the callee
leg's branch forges a 486 and a 200 with its own SDP, from another host, to both of
Palisade's listeners; a forged CANCEL with the caller's branch comes from a third address.
None of it changes the call: the caller sees only the PBX's answer, the PBX keeps the call,
and the forgeries are counted."""
import time

import harness
from sip_peer import SDP, UdpPeer

ATTACKER_IP = "127.0.0.5"


def body(run):
    pbx = UdpPeer(harness.PBX_IP)
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    cfg = run.config(2, pbx.port, carrier_port)
    palisade = run.start_palisade(cfg)
    public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
    pbx_side = (harness.PBX_SIDE_IP, cfg["pbx_side"]["udp_port"])
    caller = UdpPeer(harness.CALLER_IP)
    attacker = UdpPeer(ATTACKER_IP)
    try:
        before = palisade.metrics()
        caller.send(caller.invite(public, "forged-1"), public)
        invite = pbx.recv(3, want=lambda m: m.method == "INVITE")
        run.require(invite is not None, "the INVITE reaches the PBX")
        pbx.send(pbx.response_to(invite, 180, "Ringing", to_tag="pbx-1"), invite.source)
        ringing = caller.recv(3, want=lambda m: not m.is_request and m.status == 180)
        run.require(ringing is not None, "the caller hears ringing")

        # The attacker has the branch (from a capture, a log, a guess): it answers for the PBX.
        evil_sdp = SDP.format(ip="198.51.100.66", port=4444)
        forged_busy = pbx.response_to(invite, 486, "Busy Here", to_tag="evil")
        forged_ok = pbx.response_to(invite, 200, "OK", to_tag="evil").replace(
            "Content-Length: 0\r\n\r\n",
            f"Content-Type: application/sdp\r\nContent-Length: {len(evil_sdp)}\r\n\r\n{evil_sdp}")
        for target in (public, pbx_side):
            attacker.send(forged_busy, target)
            attacker.send(forged_ok, target)
        time.sleep(0.5)
        seen = caller.drain(0.3)
        run.check(not any(not m.is_request and m.status >= 200 for m in seen),
                  "no forged final response reaches the caller", "\n".join(m.start for m in seen))
        run.check(attacker.drain(0.2) == [], "the attacker gets nothing back (no ACK, no error)")
        after = palisade.metrics()
        run.check(palisade.metric("dropped_foreign_responses", after) -
                  palisade.metric("dropped_foreign_responses", before) == 2,
                  "forgeries on the public listener are dropped as foreign responses (2)")
        run.check(palisade.metric("dropped_untrusted", after) - palisade.metric("dropped_untrusted", before) == 2,
                  "forgeries on the PBX listener are dropped by its source ACL (2)")
        run.check(palisade.metric("active_calls", after) == 1, "the call is still up")

        # A forged CANCEL with the caller's branch, from elsewhere.
        attacker.send(caller.cancel(public, "forged-1"), public)
        time.sleep(0.3)
        run.check(pbx.recv(0.5, want=lambda m: m.method == "CANCEL") is None, "the forged CANCEL reaches no one")
        run.check(palisade.metric("dropped_foreign_cancels") - palisade.metric("dropped_foreign_cancels", before) == 1,
                  "the forged CANCEL is counted")

        # The real answer still works: its SDP (anchored, so naming Palisade) crosses.
        pbx.send(pbx.response_to(invite, 200, "OK", to_tag="pbx-1", sdp=True), invite.source)
        ok = caller.recv(3, want=lambda m: not m.is_request and m.status == 200)
        run.require(ok is not None, "the PBX's 200 reaches the caller")
        run.check("198.51.100.66" not in ok.body and "4444" not in ok.body and "a=rtpmap:0 PCMU/8000" in ok.body
                  and f"c=IN IP4 {harness.PUBLIC_IP}" in ok.body,
                  "the caller gets the PBX's session description (anchored), not the attacker's", ok.body)
        contact = ok.value("Contact").strip("<>")
        caller.send(caller.ack_for(ok, contact), public)
        run.check(pbx.recv(3, want=lambda m: m.method == "ACK") is not None, "the ACK reaches the PBX")
        bye = caller.ack_for(ok, contact).replace("ACK ", "BYE ", 1).replace(" ACK\r\n", " BYE\r\n").replace(
            "CSeq: 1 BYE", "CSeq: 2 BYE")
        caller.send(bye, public)
        b_bye = pbx.recv(3, want=lambda m: m.method == "BYE")
        run.require(b_bye is not None, "the BYE reaches the PBX")
        pbx.send(pbx.response_to(b_bye, 200, "OK"), b_bye.source)
        run.check(caller.recv(3, want=lambda m: not m.is_request and "BYE" in (m.value("CSeq") or "")) is not None,
                  "the call ends normally")
        harness.expect_counters(run, palisade, before, {"calls_answered": 1, "calls_cancelled": 0, "calls_failed": 0},
                                "forged responses")
        harness.wait_idle(run, palisade, "forged responses")
        run.check_clean_stop(palisade)
    finally:
        for peer in (pbx, caller, attacker):
            peer.close()


if __name__ == "__main__":
    harness.main_wrapper("test_forged_response", __doc__, body, budget_s=120)
