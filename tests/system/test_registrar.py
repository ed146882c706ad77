#!/usr/bin/env python3
"""Palisade as registrar, on the real daemon with SIPp as the phone (digest auth through SIPp's
[authentication] keyword):

- user 2001 registers from its allowed source (401, then 200 with the binding); the binding is
  in /registrations and the registrations gauge;
- it calls the PBX with digest auth (407, then 200): the PBX sees the asserted identity and
  never the credentials;
- the PBX calls 2001: the INVITE reaches the SIPp phone on the flow it registered from, with
  the Request-URI of its Contact; the PBX calling 2002 (a user with no binding) gets 480;
- 2001 registering with the right password from a source it is not allowed to use gets the
  same 401 as a wrong password, and no binding; a call without credentials from an address no
  trunk lists gets a challenge and reaches nothing;
- the binding survives SIGHUP; a reload that removes the user ends it; REGISTER with
  Expires 0 unregisters.
"""
import json
import re
import signal
import time
import urllib.request

import harness
from sip_peer import UdpPeer

USER_IP = "127.0.0.6"       # 2001's phone (no trunk lists it)
ELSEWHERE_IP = "127.0.0.7"  # not one of 2001's sources
STRANGER_IP = "127.0.0.8"   # no trunk, no credentials
# SIPp places the user's calls at 10/s, above a phone's default of 2 new calls per second.
USER = dict(harness.TEST_USER, sources=[f"{USER_IP}/32"], number="+12125550101", max_cps=20)
OTHER_USER = {"name": "2002", "password": "Quiet-Lantern-7-Orbit#"}


def registrations(palisade):
    with urllib.request.urlopen(palisade.url("/registrations"), timeout=3) as r:
        return json.loads(r.read().decode())


def register(run, name, ip, port, target, expires, user=USER, password=None, expect_ok=True):
    extra = ["-s", user["name"], "-au", user["name"], "-ap", password or user["password"],
             "-key", "expires", str(expires)]
    sipp = run.sipp(name, "register", ip, port, remote=target, calls=1, timeout_s=15,
                    recv_timeout_ms=3000, trace_msg=True, extra=extra)
    result = sipp.wait()
    if expect_ok:
        run.check_sipp(result, 1, f"{name}: REGISTER, 401, REGISTER with credentials, 200")
    return result, harness.parse_message_log(sipp.message_file)


def answer_shape(messages):
    """Every response received, as its status line and header fields, with what differs between
    any two SIPp runs (the echoed Via/From/To/Call-ID/CSeq, the nonce, the tag) taken out."""
    out = []
    for text in received(messages, "SIP/2.0"):
        head, _ = harness.split_message(text)  # (SIPp's log runs on after the body)
        lines = head.splitlines()
        fields = [re.sub(r'nonce="[^"]*"', 'nonce=""', line) for line in lines[1:]
                  if line.split(":", 1)[0].strip().lower() not in ("via", "from", "to", "call-id", "cseq")]
        out.append((lines[0], fields))
    return out


def received(messages, first_line):
    return [text for direction, _, text in messages if direction == "received" and text.startswith(first_line)]


def body(run):
    pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    # SIPp 3.6.1 answers MD5 challenges only (SHA-256 is tested with a scripted client in
    # test_bans.py and in the component tests).
    cfg = run.config(1, pbx_port, carrier_port, users=[USER, OTHER_USER], auth={"algorithms": ["MD5"]},
                     registrar={"min_expires_s": 60, "max_expires_s": 3600})
    palisade = run.start_palisade(cfg)
    public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
    pbx_side = (harness.PBX_SIDE_IP, cfg["pbx_side"]["udp_port"])
    phone_port = harness.free_ports(USER_IP, 1)[0]

    # 1. Registration.
    _, messages = register(run, "register", USER_IP, phone_port, public, 120)
    oks = received(messages, "SIP/2.0 200")
    run.check(bool(oks) and re.search(rf"(?mi)^Contact:.*{USER_IP}:{phone_port}.*;expires=120", oks[0]) is not None,
              "the 200 lists the binding with its expiry", "\n".join(oks))
    challenges = received(messages, "SIP/2.0 401")
    run.check(bool(challenges) and re.findall(r"(?mi)^WWW-Authenticate:.*algorithm=(\S+),", challenges[0]) == ["MD5"]
              and 'qop="auth"' in challenges[0], "the 401 offers the configured algorithm with qop=auth",
              "\n".join(challenges))
    run.check(palisade.wait_metric("palisade_registrations_active", lambda v: v == 1, 3) == 1,
              "palisade_registrations_active is 1")
    listed = registrations(palisade)
    run.check(len(listed) == 1 and listed[0]["user"] == "2001" and listed[0]["source"] == f"{USER_IP}:{phone_port}"
              and listed[0]["transport"].lower() == "udp" and 100 <= listed[0]["seconds_left"] <= 120,
              "GET /registrations lists 2001's binding with its flow", json.dumps(listed))

    # 2. The user calls the PBX with digest auth.
    pair = harness.start_calls(run, public, "uas", "uac_auth", 3, 10, harness.PBX_IP, pbx_port, USER_IP,
                               trace_msg=True,
                               uac_extra=["-s", "1000", "-au", "2001", "-ap", USER["password"]])
    uac, uas = pair.wait()
    run.check_sipp(uac, 3, "user calls with digest auth (407, INVITE with credentials, 200, BYE)")
    run.check_sipp(uas, 3, "the PBX answers the user's calls")
    invites = received(harness.parse_message_log(pair.uas.message_file), "INVITE ")
    run.check(len(invites) == 3 and all(re.search(r"(?mi)^P-Asserted-Identity:.*\+12125550101", t) for t in invites),
              "every INVITE at the PBX asserts the user's number", invites[0] if invites else "no INVITE")
    run.check(not any(re.search(r"(?mi)^(Proxy-)?Authorization:", t) for t in invites),
              "the credentials never reach the PBX")

    # 3. The PBX calls the registered user: it reaches the phone on its registered flow.
    phone = run.sipp("phone", "uas", USER_IP, phone_port, calls=1, timeout_s=20, trace_msg=True)
    pbx_uac = run.sipp("pbx-calls-2001", "uac", harness.PBX_IP, harness.free_ports(harness.PBX_IP, 1)[0],
                       remote=pbx_side, calls=1, timeout_s=15, extra=["-s", "2001"])
    run.check_sipp(pbx_uac.wait(), 1, "the PBX calls 2001")
    run.check_sipp(phone.wait(), 1, "2001's phone answers on the flow it registered from")
    phone_invites = received(harness.parse_message_log(phone.message_file), "INVITE ")
    run.check(bool(phone_invites) and phone_invites[0].startswith(f"INVITE sip:2001@{USER_IP}:{phone_port}"),
              "the INVITE to the phone carries its Contact as Request-URI",
              phone_invites[0][:200] if phone_invites else "no INVITE")

    pbx = UdpPeer(harness.PBX_IP)
    stranger = UdpPeer(STRANGER_IP)
    try:
        pbx.send(pbx.invite(pbx_side, "to-2002", user="2002"), pbx_side)
        final = pbx.recv(3, want=lambda m: not m.is_request and m.status >= 200)
        run.check(final is not None and final.status == 480, "the PBX calling unregistered 2002 gets 480",
                  final.raw if final else "no answer")
        if final is not None:
            pbx.send(pbx.ack_for(final, f"sip:2002@{pbx_side[0]}:{pbx_side[1]}"), pbx_side)
        run.check(palisade.metric("palisade_calls_to_unregistered_total") == 1, "and it is counted")

        # 4. The right password from a source 2001 may not use: the same 401 as a wrong one.
        elsewhere_port = harness.free_ports(ELSEWHERE_IP, 1)[0]
        right, right_msgs = register(run, "register-elsewhere", ELSEWHERE_IP, elsewhere_port, public, 120,
                                     expect_ok=False)
        wrong, wrong_msgs = register(run, "register-wrong", USER_IP, harness.free_ports(USER_IP, 1)[0], public, 120,
                                     password="Not-The-Right-0ne!x", expect_ok=False)
        run.check(right.successful == 0 and wrong.successful == 0 and answer_shape(right_msgs) == answer_shape(wrong_msgs)
                  and answer_shape(right_msgs) and all(a[0].startswith("SIP/2.0 401") for a in answer_shape(right_msgs)),
                  "right password from a disallowed source and wrong password: the same 401s, field for field",
                  f"{answer_shape(right_msgs)} vs {answer_shape(wrong_msgs)}")
        run.check(len(registrations(palisade)) == 1, "neither adds a binding")

        # 5. An address no trunk lists, no credentials: a challenge, nothing reaches the PBX.
        stranger.send(stranger.invite(public, "stranger-call"), public)
        answer = stranger.recv(2, want=lambda m: not m.is_request and m.status >= 200)
        run.check(answer is not None and answer.status == 407, "an unlisted address is challenged",
                  answer.raw if answer else "no answer")
        run.check(pbx.recv(0.5, want=lambda m: m.method == "INVITE") is None, "and reaches nothing")

        # 6. Reloads: the binding survives one; a reload without the user ends it.
        palisade.signal(signal.SIGHUP)
        palisade.wait_metric("config_reloads", lambda v: v >= 1, 5)
        run.check([b["user"] for b in registrations(palisade)] == ["2001"], "the binding survives SIGHUP")
        run.write_config(dict(cfg, users=[OTHER_USER]), "palisade.toml")
        palisade.signal(signal.SIGHUP)
        palisade.wait_metric("config_reloads", lambda v: v >= 2, 5)
        run.check(registrations(palisade) == [], "a reload that removes 2001 ends its binding")
        run.check(palisade.wait_metric("palisade_registrations_active", lambda v: v == 0, 3) == 0,
                  "and the gauge follows")

        # 7. Unregister: 2001 back in the config, registered, then Expires 0.
        run.write_config(cfg, "palisade.toml")
        palisade.signal(signal.SIGHUP)
        palisade.wait_metric("config_reloads", lambda v: v >= 3, 5)
        register(run, "register-again", USER_IP, phone_port, public, 300)
        run.check(len(registrations(palisade)) == 1, "registered again")
        register(run, "unregister", USER_IP, phone_port, public, 0)
        run.check(registrations(palisade) == [], "Expires 0 removes the binding")
        run.check(palisade.metric("palisade_registrations_total") >= 3, "registrations are counted")
        harness.wait_idle(run, palisade, "registrar")
        run.check_clean_stop(palisade)
    finally:
        pbx.close()
        stranger.close()


if __name__ == "__main__":
    harness.main_wrapper("test_registrar", __doc__, body, budget_s=150)
