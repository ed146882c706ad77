#!/usr/bin/env python3
"""A weekend toll-fraud attack, replayed against the real daemon with its time compressed into
limits a test can reach in seconds (a 1.00 USD cap at 6.00 a minute, a spike at 6 attempts):

- user 2001's credentials are stolen: a scripted phone registers with them (digest over UDP) and dials high-risk numbers
  (+881 satellite, +882, NANP 900, UK 90 premium): each gets 403 with a Reason header, by rule;
- it then dials UK numbers one after another, faster and faster, each answered by the PBX (SIPp)
  and hung up after a second: sequential dialling and the spike of international attempts raise
  alerts at the local webhook, and the 24 h spend cap stops the rest (403 "Spend limit reached");
- user 2002 places domestic calls through the whole attack: every one is answered;
- the PBX (SIPp) dials +881 toward the carrier: refused on that path too, nothing reaches it;
- the CDR file has one valid JSON line per call attempt, each refusal with the rule that made
  it, the answered calls with their cost; /metrics counts the refusals by reason.

(SIPp 3.6.1 computes its digest over sip:[remote_ip]:[remote_port] whatever the Request-URI, and
Palisade checks that the credentials name the Request-URI, so the phones that dial numbers are
scripted here; SIPp is the PBX that answers and the PBX that dials out.)
"""
import http.server
import json
import re
import threading
import time

import harness
from sip_peer import UdpPeer, digest

ATTACKER_IP = "127.0.0.6"
OFFICE_IP = "127.0.0.7"
WEBHOOK_IP = "127.0.0.12"
ATTACKER = {"name": "2001", "password": harness.TEST_USER["password"], "international": True,
            "max_spend_24h": 1.0, "max_cps": 50, "max_calls": 20}
OFFICE = {"name": "2002", "password": "Quiet-Lantern-7-Orbit#", "max_cps": 20}
HIGH_RISK = ["011881612345678", "011882123456789", "19005551234", "0114490123456"]


class Webhook:
    """A local HTTP server that keeps every JSON body POSTed to it."""

    def __init__(self, ip):
        events = self.events = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the stdlib's name)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                events.append((self.path, self.headers.get("Content-Type"), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((ip, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kinds(self):
        return [event.get("kind") for _, _, event in self.events]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Phone(UdpPeer):
    """A user's phone: INVITE, 407, INVITE with credentials; if answered, ACK, talk, BYE."""

    def __init__(self, ip, user, target):
        super().__init__(ip)
        self.user, self.target, self.calls = user, target, 0

    def register(self):
        """REGISTER, 401, REGISTER with credentials: the final status."""
        host, port = self.target
        uri = f"sip:{host}:{port}"
        call_id = f"reg-{self.user['name']}-{time.monotonic_ns()}"

        def request(cseq, extra=""):
            return (f"REGISTER {uri} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bK-{call_id}-{cseq};rport\r\n"
                    f"From: <sip:{self.user['name']}@{host}>;tag=reg-{call_id}\r\n"
                    f"To: <sip:{self.user['name']}@{host}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
                    f"Contact: <sip:{self.user['name']}@{self.ip}:{self.port}>\r\nExpires: 600\r\n"
                    f"User-Agent: Desk phone 8.4.1 (firmware 2024-05-17, hardware rev B)\r\n"
                    f"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY\r\n"
                    f"Max-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n")

        self.send(request(1), self.target)
        challenge = self.recv(3, want=lambda m: not m.is_request and m.status >= 200)
        if challenge is None or challenge.status != 401:
            return challenge.status if challenge else None
        nonce = re.search(r'nonce="([^"]+)"', challenge.value("WWW-Authenticate")).group(1)
        auth = digest(self.user["name"], self.user["password"], nonce, uri, method="REGISTER")
        self.send(request(2, f"Authorization: {auth}\r\n"), self.target)
        final = self.recv(3, want=lambda m: not m.is_request and m.status >= 200)
        return final.status if final else None

    def call(self, number, talk_s=1.0):
        """The final status of a call to `number`, and the Reason header of a refusal."""
        self.calls += 1
        call_id = f"{self.user['name']}-{self.calls}-{time.monotonic_ns()}"
        uri = f"sip:{number}@{self.target[0]}:{self.target[1]}"
        self.send(self.invite(self.target, call_id, user=number), self.target)
        challenge = self.recv(3, want=lambda m: not m.is_request and m.status >= 200)
        if challenge is None or challenge.status != 407:
            return (challenge.status if challenge else None), None
        self.send(self.ack_for(challenge, uri), self.target)
        nonce = re.search(r'nonce="([^"]+)"', challenge.value("Proxy-Authenticate")).group(1)
        auth = digest(self.user["name"], self.user["password"], nonce, uri)
        self.send(self.invite(self.target, call_id, user=number, cseq=2, branch=f"z9hG4bK-{call_id}-2",
                              extra=f"Proxy-Authorization: {auth}\r\n"), self.target)
        final = self.recv(5, want=lambda m: not m.is_request and m.status >= 200 and "INVITE" in m.value("CSeq"))
        if final is None:
            return None, None
        if final.status >= 300:
            self.send(self.ack_for(final, uri), self.target)
            return final.status, final.value("Reason")
        contact = re.search(r"<([^>]+)>", final.value("Contact")).group(1)
        self.send(self.ack_for(final, contact), self.target)
        time.sleep(talk_s)
        bye = (f"BYE {contact} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bK-bye-{call_id};rport\r\n"
               f"From: {final.value('From')}\r\nTo: {final.value('To')}\r\nCall-ID: {call_id}\r\n"
               f"CSeq: 3 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        self.send(bye, self.target)
        self.recv(3, want=lambda m: not m.is_request and "BYE" in m.value("CSeq"))
        return final.status, None


def body(run):
    pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
    carrier = UdpPeer(harness.CARRIER_IP)
    webhook = Webhook(WEBHOOK_IP)
    rates = run.path("rates.txt")
    with open(rates, "w") as f:
        f.write("# test rates\n+44 6.000000 United Kingdom\n+1 0.010000 NANP\n")
    cdr_path = run.path("cdr.jsonl")
    cfg = run.config(1, pbx_port, carrier.port, users=[ATTACKER, OFFICE],
                     fraud={"rate_file": rates, "min_spike_attempts": 6, "sequential_run": 5,
                            "webhook_url": f"http://{WEBHOOK_IP}:{webhook.port}/alerts", "webhook_timeout_s": 2,
                            "cdr_file": cdr_path})
    palisade = run.start_palisade(cfg)
    public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
    pbx_side = (harness.PBX_SIDE_IP, cfg["pbx_side"]["udp_port"])
    pbx = run.sipp("pbx", "uas", harness.PBX_IP, pbx_port, calls=200, timeout_s=120)
    attacker = Phone(ATTACKER_IP, ATTACKER, public)
    office = Phone(OFFICE_IP, OFFICE, public)
    attempts = 0
    office_results = []

    def office_call():
        nonlocal attempts
        attempts += 1
        office_results.append(office.call(f"212555{len(office_results):04d}", talk_s=0.2))

    try:
        run.check(attacker.register() == 200, "the stolen extension 2001 registers (401, then 200)")
        # 1. High-risk destinations: refused by rule.
        for number in HIGH_RISK:
            attempts += 1
            status, reason = attacker.call(number)
            run.check(status == 403 and reason == 'SIP;cause=403;text="Destination not allowed"',
                      f"2001 dialling {number} gets 403 with its Reason", f"{status} {reason}")
        office_call()

        # 2. Sequential UK numbers, faster and faster, until the spend cap stops them.
        answered = refused_by_cap = 0
        gap = 0.6
        for i in range(30):
            attempts += 1
            status, reason = attacker.call(f"01144207946{i:04d}", talk_s=1.0)
            if status == 200:
                answered += 1
            elif status == 403 and reason == 'SIP;cause=403;text="Spend limit reached"':
                refused_by_cap += 1
                if refused_by_cap >= 3:
                    break
            else:
                run.check(False, f"UK call {i}: answered or refused by the spend cap", f"{status} {reason}")
            if i % 2 == 1:
                office_call()
            time.sleep(gap)
            gap = max(0.05, gap * 0.7)
        run.check(answered >= 3, f"the first UK calls are answered ({answered})")
        run.check(refused_by_cap >= 3, "then the spend cap refuses the rest", f"{refused_by_cap}")
        office_call()
        run.check(len(office_results) >= 5 and all(status == 200 for status, _ in office_results),
                  f"2002's {len(office_results)} domestic calls are all answered during the attack",
                  str(office_results))

        # 3. The PBX dials a satellite number toward the carrier: refused there too.
        out = run.sipp("pbx-out", "uac", harness.PBX_IP, harness.free_ports(harness.PBX_IP, 1)[0],
                       remote=pbx_side, calls=3, rate=10, timeout_s=20, recv_timeout_ms=3000,
                       extra=["-s", "011881612345678"]).wait()
        attempts += 3
        run.check(out.failed == 3 and out.successful == 0, "the PBX's 3 calls to +881 all fail", out.details())
        run.check(carrier.recv(0.5, want=lambda m: m.is_request and m.method == "INVITE") is None,
                  "nothing reaches the carrier")

        # 4. Alerts at the webhook, metrics, CDRs.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not {"destination_refused", "spend_cap"} <= set(webhook.kinds()):
            time.sleep(0.1)
        kinds = webhook.kinds()
        run.check("destination_refused" in kinds, "the refused destinations reach the webhook", str(kinds))
        run.check("sequential_dialling" in kinds or "international_spike" in kinds,
                  "the attack's pattern raises an anomaly alert", str(kinds))
        run.check("spend_cap" in kinds, "the spend cap raises an alert", str(kinds))
        run.check(all(path == "/alerts" and ctype == "application/json" for path, ctype, _ in webhook.events),
                  "every alert is a JSON POST to the configured path")
        event = next(e for _, _, e in webhook.events if e.get("kind") == "destination_refused")
        run.check(event.get("source") == "user:2001" and event.get("destination", "").startswith("+881"),
                  "the first alert names the user and the destination", json.dumps(event))
        metrics = palisade.metrics()
        refused = {reason: palisade.metric(f'palisade_fraud_refused_total{{reason="{reason}"}}', metrics)
                   for reason in ("destination", "spend_cap")}
        run.check(refused["destination"] == len(HIGH_RISK) + 3, "fraud_refused{destination} counts them all",
                  str(refused))
        run.check(refused["spend_cap"] == refused_by_cap, "fraud_refused{spend_cap} counts the cap's refusals",
                  str(refused))
        # The CDR writer drains on the control thread.
        records = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(cdr_path) as f:
                lines = f.read().splitlines()
            if len(lines) >= attempts:
                break
            time.sleep(0.2)
        for line in lines:
            records.append(json.loads(line))
        run.check(len(records) == attempts, f"the CDR file has one line per attempt ({len(records)} of {attempts})")
        by_rule = [r for r in records if r.get("decision") == "refused"]
        run.check(all(r.get("rule") for r in by_rule), "every refusal names its rule",
                  json.dumps(by_rule[:3]))
        paid = [r for r in records if r.get("source") == "user:2001" and r.get("final_status") == 200]
        run.check(len(paid) == answered and all(float(r.get("cost", "0")) > 0 for r in paid),
                  "the attacker's answered calls are in the CDRs with their cost", json.dumps(paid[:2]))
        run.check(all(r.get("destination", "").startswith("+44") for r in paid),
                  "with their normalised destination")
    finally:
        for peer in (attacker, office, carrier):
            peer.close()
        webhook.close()
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_toll_fraud", __doc__, body, budget_s=120)
