#!/usr/bin/env python3
"""Topology hiding: nothing of one side reaches the other.

A few calls of every flow (plain call, re-INVITE, callee BYE, CANCEL, 486) run from the caller
(127.0.0.2) through Palisade to the PBX (127.0.0.3), with -trace_msg on both SIPp instances.
Then every header section the caller received is scanned for the PBX's address and port,
Palisade's PBX-facing address and port, and the Call-IDs, tags and branches seen on the PBX leg;
and every header section the PBX received for the caller's address and port and the Call-IDs,
tags and branches seen on the caller leg.

SDP bodies are left out of the scan: Palisade passes them through unchanged for now (media
anchoring comes later), so they would carry whatever address the endpoints put in them. SIPp's
-mi gives both endpoints the neutral media address 127.0.0.9 (the harness does that for every
SIPp), so the bodies do not name the signalling addresses either; once media is anchored the
bodies can join the scan.
"""
import re

import harness

FLOWS = [("uac", "uas", 10), ("uac_reinvite", "uas_reinvite", 4), ("uac_wait_bye", "uas_bye", 4),
         ("uac_cancel", "uas_ring", 4), ("uac_busy", "uas_busy", 4)]

TOKEN_CHARS = r"\w.!%*+`'~\-"


def identifiers(messages):
    """Call-IDs, tags and branches in a list of message texts."""
    ids = set()
    for _, _, text in messages:
        head, _ = harness.split_message(text)
        ids.update(harness.header_values(head, "Call-ID", "i"))
        for value in harness.header_values(head, "From", "f") + harness.header_values(head, "To", "t"):
            tag = harness.tag_of(value)
            if tag:
                ids.add(tag)
        for value in harness.header_values(head, "Via", "v"):
            ids.update(re.findall(r"branch=([^;,\s]+)", value, re.I))
    return ids


def scan(run, side, messages, own_ids, needles):
    """needles: list of (description, compiled regex). own_ids are removed first: what a side
    generated itself (its Call-IDs, tags, branches) may come back to it and must not be taken for
    a leak when it happens to contain a digit string equal to a port."""
    leaks = []
    for direction, _, text in messages:
        if direction != "received":
            continue
        head, _ = harness.split_message(text)
        for line in head.splitlines():
            cleaned = line
            for own in own_ids:
                cleaned = cleaned.replace(own, "")
            for what, rx in needles:
                if rx.search(cleaned):
                    leaks.append(f"{what} in a message received by the {side}: {line.strip()!r} "
                                 f"(in {head.splitlines()[0]!r})")
    return leaks


def token(value):
    return re.compile(rf"(?<![{TOKEN_CHARS}]){re.escape(value)}(?![{TOKEN_CHARS}])")


def address(value):
    return re.compile(rf"(?<![\d.]){re.escape(value)}(?!\d)")


def port(value):
    return re.compile(rf"(?<!\d){value}(?!\d)")


def body(run):
    for workers in harness.worker_counts(run.args):
        pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
        carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
        cfg = run.config(workers, pbx_port, carrier_port)
        palisade = run.start_palisade(cfg, name=f"palisade-w{workers}")
        public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
        pbx_side_port = cfg["pbx_side"]["udp_port"]
        caller_msgs, pbx_msgs, caller_ports = [], [], set()
        for uac_scenario, uas_scenario, calls in FLOWS:
            pair = harness.start_calls(run, public, uas_scenario, uac_scenario, calls, 20, harness.PBX_IP,
                                       pbx_port, harness.CALLER_IP, timeout_s=30, trace_msg=True)
            uac, uas = pair.wait()
            run.check_sipp(uac, calls, f"{workers} worker(s): {uac_scenario} calls")
            run.check_sipp(uas, calls, f"{workers} worker(s): {uas_scenario} calls")
            caller_ports.add(pair.uac.local_port)
            caller_msgs += harness.parse_message_log(pair.uac.message_file)
            pbx_msgs += harness.parse_message_log(pair.uas.message_file)
        harness.wait_idle(run, palisade, f"{workers} worker(s)")

        received_by_caller = [m for m in caller_msgs if m[0] == "received"]
        received_by_pbx = [m for m in pbx_msgs if m[0] == "received"]
        run.check(len(received_by_caller) >= 90 and len(received_by_pbx) >= 70,
                  f"{workers} worker(s): message logs captured",
                  f"caller received {len(received_by_caller)}, PBX received {len(received_by_pbx)}")

        caller_ids = identifiers(caller_msgs)
        pbx_ids = identifiers(pbx_msgs)
        shared = caller_ids & pbx_ids
        run.check(not shared, f"{workers} worker(s): no Call-ID, tag or branch used on both legs",
                  "shared: " + ", ".join(sorted(shared)))

        to_caller = [("PBX address", address(harness.PBX_IP)), ("PBX port", port(pbx_port)),
                     ("Palisade's PBX-facing address", address(harness.PBX_SIDE_IP)),
                     ("Palisade's PBX-facing port", port(pbx_side_port))]
        to_caller += [(f"PBX-leg identifier {i}", token(i)) for i in sorted(pbx_ids - caller_ids)]
        own_caller = {i for i in caller_ids if harness.CALLER_IP in i or "SIPpTag00" in i or i.startswith("z9hG4bK-")}
        leaks = scan(run, "caller", caller_msgs, own_caller, to_caller)
        run.check(not leaks, f"{workers} worker(s): the caller sees nothing of the PBX leg "
                  f"({len(received_by_caller)} messages)", "\n".join(leaks[:20]))

        to_pbx = [("caller address", address(harness.CALLER_IP))]
        to_pbx += [(f"caller port {p}", port(p)) for p in sorted(caller_ports)]
        to_pbx += [(f"caller-leg identifier {i}", token(i)) for i in sorted(caller_ids - pbx_ids)]
        own_pbx = {i for i in pbx_ids if "SIPpTag01" in i or i.startswith("z9hG4bK-")}
        leaks = scan(run, "PBX", pbx_msgs, own_pbx, to_pbx)
        run.check(not leaks, f"{workers} worker(s): the PBX sees nothing of the caller leg "
                  f"({len(received_by_pbx)} messages)", "\n".join(leaks[:20]))
        run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_topology_hiding", __doc__, body)
