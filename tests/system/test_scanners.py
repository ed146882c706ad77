#!/usr/bin/env python3
"""Scanner detection on the real daemon with Debian's sipvicious (0.3.3), inside a private
network namespace with only loopback, while the carrier trunk places calls throughout:

- svmap (OPTIONS, its default; User-Agent "friendly-scanner") from an internet address finds
  nothing: its first request is dropped as a scanner's (drops_total{reason="scanner_user_agent"})
  and the address banned (one ban line, GET /bans, palisade_bans_total);
- svwar over extensions 100-300 (REGISTER, the same User-Agent) finds nothing and is banned
  at its first request the same way;
- svwar over 100-300 in compact form (-c: no User-Agent header at all) is caught as an extension
  scan instead: once more than scanners.max_unanswered names have been challenged without an
  answer, the next is dropped (drops_total{reason="extension_scan"}) and the address banned;
  the rest of its range is dropped unparsed (reason="banned"). (A long --domain makes its
  sanity probe, with a 10-digit random name, big enough to get the 401 under the amplification
  guard; the 3-digit extensions then get no answer, so svwar goes on through its range instead
  of stopping at the first answer equal to the sanity probe's.)
- the control: twelve phones behind one address, each registering its own user and answering
  its challenge at once, are not an extension scan: all register, nobody is banned for it;
- every carrier call succeeds and the trunk is never banned.
"""
import os
import subprocess
import time

import harness
import flood_helpers

MAPPER_IP, WARDIALER_IP, SILENT_WARDIALER_IP, PHONES_IP = "127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.27"
LOOPBACK_SRC = "127.0.0.1"
PHONES = [{"name": f"30{n:02d}", "password": f"Phone-{n:02d}-Lantern#Orbit"} for n in range(1, 13)]
MAX_UNANSWERED = 10
DOMAIN = "a" * 74  # see the docstring: the sanity probe fits under the guard, 3-digit names do not
CALLS, RATE = 300, 20


def send_from(address):
    """Makes `address` the source of unbound sockets sending to Palisade's public address
    (svwar ignores -b). Only possible, and only done, inside the test's own namespace."""
    subprocess.run(["ip", "route", "replace", "local", f"{harness.PUBLIC_IP}/32", "dev", "lo", "table", "local",
                    "src", address], check=True, timeout=10)


def tool(run, program, source, args, name, timeout_s=60):
    """Runs one sipvicious program from `source` (-P: a free local port), session files in the
    test's directory; returns its output."""
    send_from(source)
    argv = [program, "-b", source, "-P", str(harness.free_ports(source, 1)[0])] + args
    run.log(f"{name}: {' '.join(argv)}")
    started = time.monotonic()
    try:
        done = subprocess.run(argv, env=dict(os.environ, HOME=run.dir), capture_output=True, text=True,
                              timeout=timeout_s, cwd=run.dir)
        out = done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        out += f"\n[{name} killed after {timeout_s} s]"
    finally:
        send_from(LOOPBACK_SRC)
    run.log(f"{name}: done in {time.monotonic() - started:.1f} s")
    with open(run.path(f"{name}.out"), "w") as f:
        f.write(out)
    return out


def check_banned(run, palisade, before, address, reason_metric, reason_text, what):
    after = palisade.metrics()
    run.check(flood_helpers.delta(before, after, reason_metric) >= 1,
              f"{what}: counted in {reason_metric} (+{flood_helpers.delta(before, after, reason_metric):g})")
    run.check(flood_helpers.delta(before, after, "palisade_bans_total") == 1,
              f"{what}: palisade_bans_total +1 (+{flood_helpers.delta(before, after, 'palisade_bans_total'):g})")
    run.check(address in flood_helpers.banned_addresses(palisade), f"{what}: GET /bans lists {address}",
              str(flood_helpers.bans(palisade)))
    lines = flood_helpers.ban_lines(palisade, address)
    run.check(len(lines) == 1 and reason_text in lines[0], f"{what}: one ban line, for {reason_text}",
              "\n".join(lines) or palisade.log_tail())
    return after


def body(run):
    pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    # Users with no `sources`: the internet gets past default deny, so scanners reach the flood
    # guard. MD5 only: sipvicious knows nothing else.
    cfg = run.config(harness.worker_counts(run.args, default=(1,))[0], pbx_port, carrier_port, users=[harness.TEST_USER] + PHONES, auth={"algorithms": ["MD5"]},
                     scanners={"max_unanswered": MAX_UNANSWERED})
    palisade = run.start_palisade(cfg)
    host, port = harness.PUBLIC_IP, cfg["public"]["udp_port"]
    public = (host, port)
    calls = harness.start_calls(run, public, "uas", "uac", CALLS, RATE, harness.PBX_IP, pbx_port, harness.CARRIER_IP,
                                timeout_s=CALLS // RATE + 60)
    time.sleep(1)
    challenged = 'palisade_policy_decisions_total{decision="challenge"}'

    # 1. svmap: OPTIONS with User-Agent friendly-scanner.
    before = palisade.metrics()
    out = tool(run, "svmap", MAPPER_IP, ["-p", str(port), host], "svmap")
    run.check(f"{host}:{port}" not in out and "found nothing" in out.lower() and "Traceback" not in out,
              "svmap finds nothing", out[-1500:])
    check_banned(run, palisade, before, MAPPER_IP, flood_helpers.drops("scanner_user_agent"), "a scanner's User-Agent",
                 "svmap")

    # 2. svwar over 100-300 (REGISTER), the same User-Agent: banned at its first request.
    before = palisade.metrics()
    out = tool(run, "svwar", WARDIALER_IP, ["--force", "-e", "100-300", "-p", str(port), host], "svwar")
    run.check("found nothing" in out and "Traceback" not in out, "svwar -e 100-300 finds nothing", out[-1500:])
    after = check_banned(run, palisade, before, WARDIALER_IP, flood_helpers.drops("scanner_user_agent"),
                         "a scanner's User-Agent", "svwar -e 100-300")
    run.check(flood_helpers.delta(before, after, challenged) == 0, "svwar: not one of its requests was challenged")

    # 3. svwar in compact form: no User-Agent, caught as an extension scan. Its random sanity
    # probe may (rarely, 0.02 %) be too short to be answered, which ends that run at once;
    # the next run then goes on from the same address.
    before = palisade.metrics()
    for attempt in range(3):
        out = tool(run, "svwar", SILENT_WARDIALER_IP,
                   ["-c", "--force", "--domain", DOMAIN, "--maximumtime", "3", "-e", "100-300", "-p", str(port), host],
                   f"svwar-compact-{attempt + 1}")
        if SILENT_WARDIALER_IP in flood_helpers.banned_addresses(palisade):
            break
    run.check("found nothing" in out and "Traceback" not in out, "svwar -c -e 100-300 finds nothing", out[-1500:])
    after = check_banned(run, palisade, before, SILENT_WARDIALER_IP, flood_helpers.drops("extension_scan"),
                         "an extension scan", "svwar -c -e 100-300 (no User-Agent)")
    probes = flood_helpers.delta(before, after, challenged)
    run.check(probes <= MAX_UNANSWERED + attempt + 1,
              f"svwar -c: at most max_unanswered ({MAX_UNANSWERED}) names challenged before the ban "
              f"({probes:g} in {attempt + 1} run(s))")
    run.check(flood_helpers.delta(before, after, flood_helpers.drops("extension_scan")) == 1
              and flood_helpers.delta(before, after, flood_helpers.drops("banned")) >= 150,
              "svwar -c: the name over the limit is dropped as extension_scan, the rest of its range as banned",
              f"extension_scan +{flood_helpers.delta(before, after, flood_helpers.drops('extension_scan')):g}, "
              f"banned +{flood_helpers.delta(before, after, flood_helpers.drops('banned')):g}")
    run.check(flood_helpers.delta(before, after, flood_helpers.drops("scanner_user_agent")) == 0,
              "svwar -c: no User-Agent to catch it by")

    # 4. The control: twelve phones behind one address answer their challenges: no ban.
    before = palisade.metrics()
    for phone in PHONES:  # one SIPp each: its own port behind the shared address, as behind a NAT
        sipp = run.sipp(f"phone-{phone['name']}", "register_phone", PHONES_IP, harness.free_ports(PHONES_IP, 1)[0],
                        remote=public, calls=1, timeout_s=10,
                        extra=["-s", phone["name"], "-au", phone["name"], "-ap", phone["password"]])
        run.check_sipp(sipp.wait(), 1, f"phone {phone['name']} behind {PHONES_IP} registers (401, credentials, 200)")
    after = palisade.metrics()
    run.check(PHONES_IP not in flood_helpers.banned_addresses(palisade)
              and flood_helpers.delta(before, after, "palisade_bans_total") == 0
              and flood_helpers.delta(before, after, flood_helpers.drops("extension_scan")) == 0,
              "phones that answer their challenges are not an extension scan", str(flood_helpers.bans(palisade)))

    run.check(calls.uac.popen.poll() is None, "the carrier calls were running throughout the scans")
    uac, uas = calls.wait()
    run.check_sipp(uac, CALLS, "carrier calls during the scans")
    run.check_sipp(uas, CALLS, "the PBX answered every carrier call")
    run.check(sorted(flood_helpers.banned_addresses(palisade)) == [MAPPER_IP, WARDIALER_IP, SILENT_WARDIALER_IP],
              "GET /bans lists the three scanners and nothing else", str(flood_helpers.bans(palisade)))
    harness.wait_idle(run, palisade, "scanners")
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.enter_namespace(__file__, "Scanner traffic")
    harness.main_wrapper("test_scanners", __doc__, body, budget_s=150)
