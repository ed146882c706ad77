#!/usr/bin/env python3
"""Header policy across the B2BUA on the real daemon: identity headers (P-Asserted-Identity,
P-Preferred-Identity, Remote-Party-ID, Diversion, History-Info, Privacy) from an untrusted
internet caller never reach the PBX; from the carrier trunk (trusted for identity) they do;
credentials (Authorization, Proxy-Authorization) and unknown headers never cross; neither the
PBX's identity nor its internal headers reach an internet caller; a reload that marks the
carrier untrusted applies to the next call."""
import signal

import harness
from sip_peer import UdpPeer

IDENTITY = ["P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID", "Diversion", "History-Info",
            "Privacy"]
HOSTILE = ("P-Asserted-Identity: <sip:+12125550100@carrier.example>\r\n"
           "P-Preferred-Identity: <sip:ceo@victim.example>\r\n"
           "Remote-Party-ID: <sip:911@x>;party=calling;screen=yes\r\n"
           "Diversion: <sip:+18005550000@x>;reason=unconditional\r\n"
           "History-Info: <sip:a@x>;index=1\r\n"
           "Privacy: none\r\n"
           "Authorization: Digest username=\"2001\", realm=\"pbx\", nonce=\"n\", uri=\"sip:x\", response=\"0\"\r\n"
           "Proxy-Authorization: Digest username=\"2001\", realm=\"pbx\", nonce=\"n\", uri=\"sip:x\", "
           "response=\"0\"\r\n"
           "Alert-Info: <http://198.51.100.1/r>;info=alert-autoanswer\r\n"
           "X-Evil: 1\r\n"
           "Subject: header policy\r\n")


def call_through(run, source, target, pbx, call_id, label, response_extra=""):
    """INVITE from `source` to Palisade, read at the PBX, answered 486 with `response_extra`.
    Returns (what the PBX received, what the caller received as the final response)."""
    source.send(source.invite(target, call_id, extra=HOSTILE), target)
    invite = pbx.recv(3, want=lambda m: m.method == "INVITE")
    run.require(invite is not None, f"{label}: the INVITE reaches the PBX")
    pbx.send(pbx.response_to(invite, 486, "Busy Here", to_tag=f"pbx-{call_id}", extra=response_extra),
             invite.source)
    final = source.recv(3, want=lambda m: not m.is_request and m.status >= 200)
    run.require(final is not None, f"{label}: the caller gets the final response")
    source.send(source.ack_for(final, f"sip:1000@{target[0]}:{target[1]}"), target)
    pbx.recv(2, want=lambda m: m.method == "ACK")
    return invite, final


def body(run):
    pbx = UdpPeer(harness.PBX_IP)
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    cfg = run.config(1, pbx.port, carrier_port)
    palisade = run.start_palisade(cfg)
    target = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
    caller = UdpPeer(harness.CALLER_IP)
    carrier = UdpPeer(harness.CARRIER_IP)
    try:
        invite, final = call_through(run, caller, target, pbx, "hp-internet", "internet caller",
                                     response_extra="P-Asserted-Identity: <sip:100@pbx.internal>\r\n"
                                                    "X-Asterisk-HangupCause: Busy\r\n"
                                                    "Warning: 399 pbx.internal \"debug\"\r\n")
        leaked = [name for name in IDENTITY if invite.has(name)]
        run.check(not leaked, "identity headers from an untrusted source never reach the PBX",
                  f"the PBX received {leaked}:\n{invite.raw}")
        for name in ("Authorization", "Proxy-Authorization", "Alert-Info", "X-Evil"):
            run.check(not invite.has(name), f"{name} from the internet does not reach the PBX", invite.raw)
        run.check(invite.value("Subject") == "header policy", "an allowed header crosses byte for byte", invite.raw)
        run.check(final.status == 486 and not final.has("P-Asserted-Identity"),
                  "the PBX's identity does not reach an internet caller (RFC 3325 §5)", final.raw)
        for name in ("X-Asterisk-HangupCause", "Warning"):
            run.check(not final.has(name), f"the PBX's {name} does not reach the caller", final.raw)
        run.check("pbx.internal\"" not in final.raw, "nothing of the PBX's internal names leaks", final.raw)

        invite, _ = call_through(run, carrier, target, pbx, "hp-carrier", "carrier trunk")
        missing = [name for name in IDENTITY if not invite.has(name)]
        run.check(not missing, "identity headers from the carrier trunk (trusted) reach the PBX",
                  f"missing {missing}:\n{invite.raw}")
        for name in ("Authorization", "Proxy-Authorization", "X-Evil"):
            run.check(not invite.has(name), f"{name} never crosses, even from a trusted peer", invite.raw)

        # Reload: the carrier is no longer trusted for identity.
        cfg["trunks"][0]["trust_identity"] = False
        run.write_config(cfg, "palisade.toml")
        reloads = palisade.metric("config_reloads")
        palisade.signal(signal.SIGHUP)
        run.require(palisade.wait_metric("config_reloads", lambda v: v > reloads, 5) > reloads, "reload applied")
        invite, _ = call_through(run, carrier, target, pbx, "hp-carrier-2", "carrier after reload")
        leaked = [name for name in IDENTITY if invite.has(name)]
        run.check(not leaked, "after the reload the carrier's identity headers are dropped", f"{leaked}")
        harness.wait_idle(run, palisade, "header policy")
        run.check_clean_stop(palisade)
    finally:
        for peer in (pbx, caller, carrier):
            peer.close()


if __name__ == "__main__":
    harness.main_wrapper("test_header_policy", __doc__, body, budget_s=120)
