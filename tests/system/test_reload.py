#!/usr/bin/env python3
"""Configuration reload under load: while 1,500 calls run at 100/s, the config file is rewritten
with a valid change (log_level) and SIGHUP sent, then rewritten with an unknown key and SIGHUP
sent again. No call may fail, palisade_config_reloads_total and
palisade_config_reload_failures_total go up by exactly one each and the daemon stays up.
--check-config must agree about both files ("FILE:LINE: KEY: MESSAGE" for the broken one).
Then a reload that changes a timer (sip.t1_ms) and restart-only keys (the listen ports): the
new T1 paces the next INVITE's retransmissions, while Via and Contact keep advertising the
ports that are really bound, and the log says the port change waits for a restart."""
import re
import signal
import subprocess
import time

import harness
from sip_peer import UdpPeer

CALLS = 1500
RATE = 100


def check_config(run, path, expect_ok, bad_line=None, bad_key=None):
    proc = subprocess.run([run.binary, "--check-config", path], capture_output=True, text=True, timeout=10)
    output = (proc.stdout + proc.stderr).strip()
    if expect_ok:
        run.check(proc.returncode == 0, "--check-config accepts the valid file", f"exit {proc.returncode}: {output}")
        return
    run.check(proc.returncode == 1, "--check-config rejects the broken file with exit 1",
              f"exit {proc.returncode}: {output}")
    pattern = rf"^{re.escape(path)}:{bad_line}: (\S+\.)?{re.escape(bad_key)}: \S.*$"
    run.check(re.search(pattern, output, re.M) is not None,
              f"--check-config names the broken line: FILE:{bad_line}: ...{bad_key}: MESSAGE", output)


def wait_answered(run, palisade, at_least, timeout_s):
    value = palisade.wait_metric("calls_answered", lambda v: v >= at_least, timeout_s)
    run.require(value >= at_least, f"calls are being answered (>= {at_least} before reloading)",
                f"palisade_calls_answered_total = {value:g}")


def body(run):
    for workers in harness.worker_counts(run.args):
        label = f"{workers} worker(s)"
        pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
        carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
        cfg = run.config(workers, pbx_port, carrier_port, log_level="info")
        palisade = run.start_palisade(cfg, name=f"palisade-w{workers}")
        public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
        before = palisade.metrics()

        pair = harness.start_calls(run, public, "uas", "uac", CALLS, RATE, harness.PBX_IP, pbx_port,
                                   harness.CALLER_IP, timeout_s=CALLS // RATE + 60)
        wait_answered(run, palisade, 300, 20)

        # A valid change that applies on reload.
        cfg["general"]["log_level"] = "warn"
        valid = run.write_config(cfg, f"palisade-w{workers}.toml")
        check_config(run, valid, True)
        reloads = palisade.metric("config_reloads")
        palisade.signal(signal.SIGHUP)
        value = palisade.wait_metric("config_reloads", lambda v: v > reloads, 5)
        run.check(value == reloads + 1, f"{label}: valid reload counted", f"config_reloads_total {reloads:g} -> {value:g}")

        wait_answered(run, palisade, 700, 20)

        # The same file with an unknown key: rejected, the running config stays.
        text = harness.toml_text(cfg)
        lines = text.split("\n")
        at = lines.index("[general]") + 1
        lines.insert(at, "no_such_key = 1")
        with open(valid, "w") as f:
            f.write("\n".join(lines))
        check_config(run, valid, False, bad_line=at + 1, bad_key="no_such_key")
        failures = palisade.metric("config_reload_failures")
        palisade.signal(signal.SIGHUP)
        value = palisade.wait_metric("config_reload_failures", lambda v: v > failures, 5)
        run.check(value == failures + 1, f"{label}: rejected reload counted",
                  f"config_reload_failures_total {failures:g} -> {value:g}")
        time.sleep(0.2)
        run.check(palisade.alive() and palisade.health() == 200, f"{label}: daemon alive after the broken reload",
                  palisade.log_tail())

        uac, uas = pair.wait()
        run.check_sipp(uac, CALLS, f"{label}: {CALLS} calls across both reloads (caller)")
        run.check_sipp(uas, CALLS, f"{label}: {CALLS} calls across both reloads (PBX)")
        harness.expect_counters(run, palisade, before,
                                {"calls_answered": CALLS, "calls_failed": 0, "calls_timed_out": 0,
                                 "config_reloads": 1, "config_reload_failures": 1},
                                f"{label}: after the run")
        harness.wait_idle(run, palisade, label)
        run.check_clean_stop(palisade)


def retransmission_gap(run, caller, pbx, public, call_id, label):
    """Sends an INVITE, returns (the INVITE the silent PBX got, seconds until its first retransmission)."""
    caller.send(caller.invite(public, call_id), public)
    first = pbx.recv(3, want=lambda m: m.method == "INVITE")
    run.require(first is not None, f"{label}: the INVITE reaches the PBX")
    at = time.monotonic()
    again = pbx.recv(3, want=lambda m: m.method == "INVITE" and m.branch() == first.branch())
    run.require(again is not None, f"{label}: the silent PBX gets a retransmission")
    # End the call: the PBX refuses it, the caller acknowledges.
    pbx.send(pbx.response_to(first, 486, "Busy Here", to_tag="busy"), first.source)
    final = caller.recv(3, want=lambda m: not m.is_request and m.status >= 200)
    if final is not None:
        caller.send(caller.ack_for(final, f"sip:1000@{public[0]}:{public[1]}"), public)
    return first, time.monotonic() - at


def sent_by_port(message):
    via = message.value("Via") or ""
    return int(re.search(r"SIP/2.0/UDP [^:;]+:(\d+)", via).group(1))


def contact_port(message):
    return int(re.search(r":(\d+)[;>]", message.value("Contact") or "").group(1))


def reload_timer_and_listener(run):
    pbx = UdpPeer(harness.PBX_IP)
    caller = UdpPeer(harness.CALLER_IP)
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    cfg = run.config(1, pbx.port, carrier_port, sip={"t1_ms": 500})
    palisade = run.start_palisade(cfg, name="palisade-advertised")
    public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
    bound_pbx_side = cfg["pbx_side"]["udp_port"]
    try:
        first, gap = retransmission_gap(run, caller, pbx, public, "adv-1", "before reload")
        run.check(0.4 <= gap <= 0.8, f"T1 = 500 ms paces the retransmission (first after {gap:.2f} s)")
        run.check(sent_by_port(first) == bound_pbx_side and contact_port(first) == bound_pbx_side,
                  "Via and Contact advertise the bound PBX-side port", first.raw)

        cfg["sip"]["t1_ms"] = 200
        cfg["pbx_side"]["udp_port"] = harness.free_ports(harness.PBX_SIDE_IP, 1)[0]
        cfg["public"]["udp_port"] = harness.free_ports(harness.PUBLIC_IP, 1)[0]
        run.write_config(cfg, "palisade-advertised.toml")
        reloads = palisade.metric("config_reloads")
        palisade.signal(signal.SIGHUP)
        run.require(palisade.wait_metric("config_reloads", lambda v: v > reloads, 5) > reloads, "reload applied")
        time.sleep(0.2)
        log = palisade.log_tail(20000)
        for key in ("pbx_side.udp_port", "public.udp_port"):
            run.check(f"reload: {key} changed but only takes effect after a restart" in log,
                      f"the log says {key} needs a restart", log)

        second, gap = retransmission_gap(run, caller, pbx, public, "adv-2", "after reload")
        run.check(0.12 <= gap <= 0.4, f"the reloaded T1 = 200 ms paces the next call (first after {gap:.2f} s)")
        run.check(sent_by_port(second) == bound_pbx_side and contact_port(second) == bound_pbx_side,
                  "after the reload Via and Contact still advertise the port that is bound", second.raw)
        probe = UdpPeer(harness.CALLER_IP)
        new_public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
        probe.send(probe.invite(new_public, "adv-3"), new_public)
        run.check(probe.recv(1.0) is None, "nothing listens on the new public port before a restart")
        probe.close()
        harness.wait_idle(run, palisade, "advertised addresses")
        run.check_clean_stop(palisade)
    finally:
        pbx.close()
        caller.close()


def all_parts(run):
    body(run)
    reload_timer_and_listener(run)


if __name__ == "__main__":
    harness.main_wrapper("test_reload", __doc__, all_parts)
