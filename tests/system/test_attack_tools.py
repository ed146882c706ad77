#!/usr/bin/env python3
"""Real attack tools (Debian's sipvicious) against the daemon, inside a private network
namespace with only loopback, while the carrier trunk (127.0.0.1) keeps placing calls:

- svmap (OPTIONS, its default) from a non-trunk address finds nothing: Palisade does not answer;
  with -m INVITE neither: its probe is smaller than a challenge, and an unverified UDP source
  never gets an answer larger than its request (no amplification);
- svwar --force (REGISTER and INVITE) probing each of the three configured users and one name
  that is no user's finds nothing: every probe reaches Palisade, which challenges it, and the
  answer is withheld for the same reason, whatever the name;
- svcrack against a real user with a dictionary that holds the right password never finds it,
  from anywhere, because it never gets a challenge to answer (brute-force banning itself is
  test_bans.py, with SIPp clients whose requests are phone-sized);
- every carrier call succeeds throughout.

The challenge offers MD5 only: sipvicious answers nothing else, and the weakest setting is the
one to defend. Scanner detection is off here ([scanners] with no User-Agents and no
extension-scan limit): these are the properties that hold for an attacker who hides its
User-Agent and probes slowly. With the shipped settings sipvicious is banned at its first
packet (test_scanners.py).
"""
import os
import re
import subprocess
import time

import harness

CARRIER_LO = "127.0.0.1"
MAPPER_IP, WARDIALER_IP, CRACKER_IP, CONTROL_IP = "127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"
USERS = [dict(harness.TEST_USER, sources=[f"{CONTROL_IP}/32"]),
         {"name": "2002", "password": "Quiet-Lantern-7-Orbit#"},
         {"name": "2003", "password": "Velvet_Anchor-42-Thistle"}]


def send_from(address):
    """Makes `address` the source of unbound sockets sending to Palisade's public address.

    svwar and svcrack ignore -b (only svmap binds to it), so without this their packets would
    leave from 127.0.0.1, the carrier trunk's address. Only possible, and only done, inside the
    test's own network namespace."""
    subprocess.run(["ip", "route", "replace", "local", f"{harness.PUBLIC_IP}/32", "dev", "lo", "table", "local",
                    "src", address], check=True, timeout=10)


def tool(run, program, source, args, name=None, timeout_s=60):
    """Runs one sipvicious program from `source`, with its session files in the test's directory."""
    name = name or program
    send_from(source)
    argv = [program, "-b", source, "-P", str(harness.free_ports(source, 1)[0])] + args
    env = dict(os.environ, HOME=run.dir)
    run.log(f"{name}: {' '.join(argv)}")
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s, cwd=run.dir)
        out = done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        out += f"\n[{name} killed after {timeout_s} s]"
    with open(run.path(f"{name}.out"), "w") as f:
        f.write(out)
    send_from(CARRIER_LO)
    return out


def body(run):
    pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    cfg = run.config(1, pbx_port, carrier_port, users=USERS, auth={"algorithms": ["MD5"]},
                     ban={"threshold": 5, "window_s": 60},
                     scanners={"user_agents": [], "max_unanswered": 0})
    cfg["trunks"].append({"name": "carrier-lo", "host": CARRIER_LO, "port": 5060, "transport": "udp",
                          "addresses": [CARRIER_LO]})
    palisade = run.start_palisade(cfg)
    host, port = harness.PUBLIC_IP, cfg["public"]["udp_port"]
    public = (host, port)

    calls = harness.start_calls(run, public, "uas", "uac", 1200, 20, harness.PBX_IP, pbx_port, CARRIER_LO,
                                timeout_s=120)
    time.sleep(1)

    # svmap
    out = tool(run, "svmap", MAPPER_IP, ["-p", str(port), host])
    run.check(host not in out and "found nothing" in out.lower(), "svmap (OPTIONS) from a non-trunk address finds nothing",
              out[-1500:])
    withheld = 'palisade_drops_total{reason="amplification"}'
    before = palisade.metric(withheld)
    out = tool(run, "svmap", MAPPER_IP, ["-m", "INVITE", "-p", str(port), host], name="svmap-invite")
    run.check(host not in out and "found nothing" in out.lower() and palisade.metric(withheld) > before,
              "svmap -m INVITE reaches Palisade and finds nothing (the challenge is larger than its probe)",
              out[-1500:])

    # svwar. It takes the answer to a random name as "no such user" and stops at the first answer
    # that differs in no way it knows, so a range run ends after its first probe; each user (and
    # one name that is no user's) is therefore probed in its own run, REGISTER and INVITE, and
    # each run must have reached Palisade (its sanity probe and the extension were challenged).
    challenged = 'palisade_policy_decisions_total{decision="challenge"}'
    for method in ("REGISTER", "INVITE"):
        for extension in [u["name"] for u in USERS] + ["1999"]:
            before = palisade.metric(challenged)
            out = tool(run, "svwar", WARDIALER_IP, ["--force", "-m", method, "-e", extension, "-p", str(port), host],
                       name=f"svwar-{method}-{extension}")
            probed = palisade.metric(challenged) - before
            run.check(probed >= 1 and re.search(rf"\|\s*{extension}\s*\|", out) is None
                      and "found nothing" in out and "Traceback" not in out,
                      f"svwar --force -m {method} -e {extension}: probed ({probed:g} challenged, none sent) "
                      "and nothing found", out[-1500:])
    run.check(palisade.metric("palisade_bans_total") == 0, "challenges alone ban nobody")

    # svcrack: the right password sixth, after five wrong ones
    wrong = [f"Wrong-Guess-{i}-Password!" for i in range(5)]
    dictionary = run.path("passwords.txt")
    with open(dictionary, "w") as f:
        f.write("\n".join(wrong + [USERS[0]["password"]] + ["Later-Guess-Password-1!"]) + "\n")
    out = tool(run, "svcrack", CRACKER_IP, ["-u", "2001", "-d", dictionary, "--maximumtime", "5", "-p", str(port), host],
               timeout_s=45)
    run.check(USERS[0]["password"] not in out and "Traceback" not in out, "svcrack never finds the password",
              out[-1500:])
    run.check(palisade.metric('palisade_auth_failures_total{reason="wrong_password"}') == 0,
              "no guess reached the digest check: svcrack never got a challenge to answer")
    run.check(calls.uac.popen.poll() is None, "the carrier calls were running throughout the attacks")

    # Not even from 2001's own source with the right password first: the answer is withheld
    # because of the request's size, not because of who sends it.
    with open(dictionary, "w") as f:
        f.write(USERS[0]["password"] + "\n")
    before = palisade.metric(withheld)
    out = tool(run, "svcrack", CONTROL_IP, ["-u", "2001", "-d", dictionary, "--maximumtime", "5", "-p", str(port), host],
               name="svcrack-control", timeout_s=45)
    run.check(USERS[0]["password"] not in out and palisade.metric(withheld) > before,
              "svcrack with the right password, from the user's own source, reaches Palisade and gets nothing",
              out[-1500:])

    uac, uas = calls.wait()
    run.check_sipp(uac, 1200, "carrier calls from 127.0.0.1 during the attacks")
    run.check_sipp(uas, 1200, "the PBX answered every carrier call")
    harness.wait_idle(run, palisade, "attack tools")
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.enter_namespace(__file__, "Attack tool traffic")
    harness.main_wrapper("test_attack_tools", __doc__, body, budget_s=200)
