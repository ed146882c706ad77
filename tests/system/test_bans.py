#!/usr/bin/env python3
"""Brute-force banning on the real daemon: five wrong passwords from one internet address ban
it (one log line that the shipped fail2ban filter matches); then nothing from it is answered,
not even the right password; GET /bans lists it, the ban survives SIGHUP, DELETE /bans/ADDR
lifts it (one unban line); carrier calls keep working throughout."""
import json
import re
import signal
import time
import urllib.request

import harness
from sip_peer import UdpPeer, digest

ATTACKER_IP = "127.0.0.6"
PASSWORD = harness.TEST_USER["password"]


def request(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=3) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def fail2ban_regex():
    path = f"{harness.HERE}/../../policy/bans/fail2ban/palisade.conf"
    with open(path) as f:
        line = next(l for l in f if l.startswith("failregex"))
    pattern = line.split("=", 1)[1].strip()
    return re.compile(pattern.replace("<HOST>", r"(?P<host>[0-9a-fA-F.:]+)"), re.M)


def body(run):
    pbx = UdpPeer(harness.PBX_IP)
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    cfg = run.config(1, pbx.port, carrier_port, users=[harness.TEST_USER], ban={"threshold": 5, "window_s": 60})
    palisade = run.start_palisade(cfg)
    target = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
    attacker = UdpPeer(ATTACKER_IP)
    caller = UdpPeer(harness.CALLER_IP)  # the "callers" trunk
    mgmt = f"http://{cfg['management']['address']}:{cfg['management']['port']}"
    uri = f"sip:1000@{target[0]}:{target[1]}"
    try:
        attacker.send(attacker.invite(target, "bf-0"), target)
        challenge = attacker.recv(2, want=lambda m: not m.is_request and m.status == 407)
        run.require(challenge is not None, "an internet INVITE is challenged (a user is configured)")
        nonce = re.search(r'nonce="([^"]+)"', challenge.value("Proxy-Authenticate")).group(1)
        for i in range(5):
            auth = digest("2001", f"Guess-{i}-Password!x", nonce, uri)
            attacker.send(attacker.invite(target, f"bf-{i + 1}", extra=f"Proxy-Authorization: {auth}\r\n"), target)
            answer = attacker.recv(2, want=lambda m: not m.is_request and m.status >= 200)
            run.check(answer is not None and answer.status == 407, f"guess {i + 1} gets the same 407")
        time.sleep(0.3)
        log = palisade.log_tail(20000)
        matches = [m.group("host") for m in fail2ban_regex().finditer(log)]
        run.check(matches == [ATTACKER_IP], "one ban line, and the shipped fail2ban filter finds the address in it",
                  log)
        run.check(palisade.metric("palisade_bans_total") == 1, "palisade_bans_total counts the ban")
        run.check(palisade.metric('palisade_auth_failures_total{reason="wrong_password"}') == 5,
                  "the failures are counted by reason")

        good = digest("2001", PASSWORD, nonce, uri, nc="00000009")
        attacker.send(attacker.invite(target, "bf-right", extra=f"Proxy-Authorization: {good}\r\n"), target)
        run.check(attacker.recv(1.0) is None, "once banned, not even the right password is answered")
        run.check(pbx.recv(0.5, want=lambda m: m.method == "INVITE") is None, "... and nothing reaches the PBX")

        status, text = request(f"{mgmt}/bans")
        listed = json.loads(text) if status == 200 else []
        run.check(status == 200 and [b["address"] for b in listed] == [ATTACKER_IP] and listed[0]["strikes"] == 1,
                  "GET /bans lists the ban", text)
        palisade.signal(signal.SIGHUP)
        time.sleep(0.5)
        status, text = request(f"{mgmt}/bans")
        run.check(status == 200 and ATTACKER_IP in text, "the ban survives a reload", text)

        # A trunk call goes through meanwhile.
        caller.send(caller.invite(target, "trunk-call"), target)
        invite = pbx.recv(3, want=lambda m: m.method == "INVITE")
        run.check(invite is not None, "a call from a trunk still reaches the PBX")
        if invite is not None:
            pbx.send(pbx.response_to(invite, 486, "Busy Here", to_tag="busy"), invite.source)
            final = caller.recv(2, want=lambda m: not m.is_request and m.status >= 200)
            if final is not None:
                caller.send(caller.ack_for(final, uri), target)

        status, text = request(f"{mgmt}/bans/{ATTACKER_IP}", "DELETE")
        run.check(status == 200, "DELETE /bans/ADDR lifts it", text)
        status, text = request(f"{mgmt}/bans/{ATTACKER_IP}", "DELETE")
        run.check(status == 404, "a second DELETE finds no ban", text)
        time.sleep(0.2)
        run.check(f"unban: {ATTACKER_IP} (management)" in palisade.log_tail(20000), "one unban line")
        attacker.send(attacker.invite(target, "bf-after"), target)
        again = attacker.recv(2, want=lambda m: not m.is_request and m.status >= 200)
        run.check(again is not None and again.status == 407, "after the unban it is challenged again")
        status, text = request(f"{mgmt}/bans/not-an-address", "DELETE")
        run.check(status == 400, "a DELETE that names no address is refused", text)
        harness.wait_idle(run, palisade, "bans")
        run.check_clean_stop(palisade)
    finally:
        for peer in (pbx, attacker, caller):
            peer.close()


if __name__ == "__main__":
    harness.main_wrapper("test_bans", __doc__, body, budget_s=90)
