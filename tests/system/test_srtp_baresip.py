#!/usr/bin/env python3
"""SRTP on the public side, plain RTP to the PBX: baresip (user 2001, TLS, `mediaenc=srtp-mand`,
SDES) calls the PBX through Palisade; the PBX is a scripted peer that echoes every RTP packet.
The PBX is offered plain RTP/AVP with no key; baresip is answered RTP/SAVP with Palisade's own
key. Audio flows both ways: the PBX receives plain RTP, baresip gets the echo back encrypted.
A sniffer on `lo` sees every packet of the public leg: none carries a payload the PBX sent in
the clear. No SRTP packet fails authentication. The PBX hangs up."""
import os
import re
import socket
import struct
import subprocess
import threading
import time

import harness
from harness import PBX_IP, PUBLIC_IP
from sip_peer import UdpPeer
from test_tls_baresip import PHONE_IP, baresip_config

ECHO_SECONDS = 4


class Sniffer(threading.Thread):
    """Every UDP datagram on `lo` to or from `address`:`port` (needs root: AF_PACKET)."""

    def __init__(self, address, port):
        super().__init__(daemon=True)
        self.address = socket.inet_aton(address)
        self.port = port
        self.packets = []  # (to_palisade, udp payload)
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)

    def run(self):
        while not self.stop.is_set():
            try:
                frame, meta = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            if meta[2] == socket.PACKET_OUTGOING:
                continue  # loopback shows each packet twice
            ip = frame[14:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            header = (ip[0] & 0x0F) * 4
            src, dst = ip[12:16], ip[16:20]
            sport, dport = struct.unpack("!HH", ip[header:header + 4])
            payload = ip[header + 8:]
            if dst == self.address and dport == self.port:
                self.packets.append((True, payload))
            elif src == self.address and sport == self.port:
                self.packets.append((False, payload))


def echo_pbx(run, pbx, rtp, state):
    """Answers the INVITE, echoes RTP for ECHO_SECONDS, then hangs up."""
    invite = pbx.recv(20, want=lambda m: m.method == "INVITE")
    state["invite"] = invite
    if invite is None:
        return
    port = rtp.getsockname()[1]
    sdp = (f"v=0\r\no=pbx 1 1 IN IP4 {PBX_IP}\r\ns=-\r\nc=IN IP4 {PBX_IP}\r\nt=0 0\r\n"
           f"m=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n")
    ok = pbx.response_to(invite, 200, "OK", to_tag="pbx-srtp")
    ok = ok.replace("Content-Length: 0\r\n\r\n",
                    f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
    pbx.send(ok, invite.source)
    state["ack"] = pbx.recv(5, want=lambda m: m.method == "ACK")
    rtp.settimeout(0.2)
    deadline = time.monotonic() + ECHO_SECONDS
    while time.monotonic() < deadline:
        try:
            data, source = rtp.recvfrom(2048)
        except socket.timeout:
            continue
        state["received"].append(data)
        rtp.sendto(data, source)
    contact = re.search(r"<([^>]+)>", invite.value("Contact")).group(1)
    bye = (f"BYE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx.ip}:{pbx.port};branch=z9hG4bK-pbx-bye\r\n"
           f"From: {invite.value('To')};tag=pbx-srtp\r\nTo: {invite.value('From')}\r\n"
           f"Call-ID: {invite.value('Call-ID')}\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    pbx.send(bye, invite.source)
    state["bye_ok"] = pbx.recv(5, want=lambda m: not m.is_request and "BYE" in (m.value("CSeq") or ""))


def body(run):
    run.certs = run.dev_certs()
    pbx = UdpPeer(PBX_IP)
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind((PBX_IP, 0))
    port_min = 32000
    cfg = run.config(1, pbx.port, harness.free_ports(harness.CARRIER_IP, 1)[0], users=[harness.TEST_USER],
                     auth={"algorithms": ["MD5"]}, media={"port_min": port_min, "port_max": port_min + 99})
    tls_port = run.with_tls(cfg, run.certs)
    palisade = run.start_palisade(cfg, name="palisade-srtp")
    before = palisade.metrics()
    # The call's port is the first pair of the range (one worker, an unused pool); it is
    # checked against the INVITE below.
    sniffer = Sniffer(PUBLIC_IP, port_min)
    sniffer.start()
    state = {"received": []}
    pbx_thread = threading.Thread(target=echo_pbx, args=(run, pbx, rtp, state), daemon=True)
    pbx_thread.start()

    folder = run.path("baresip")
    baresip_config(run, folder, harness.free_ports(PHONE_IP, 1)[0], tls_port, srtp=True)
    log_path = run.path("baresip.log")
    with open(log_path, "w") as log:
        phone = subprocess.Popen(["baresip", "-f", folder, "-n", PHONE_IP, "-t", str(ECHO_SECONDS + 12),
                                  "-e", f"/dial sip:1234@{PUBLIC_IP}"],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=folder,
                                 start_new_session=True)
    run.procs.append((phone, "baresip"))
    pbx_thread.join(ECHO_SECONDS + 25)
    sniffer.stop.set()
    sniffer.join(2)

    invite = state.get("invite")
    run.require(invite is not None, "baresip's call reaches the PBX", harness._read_tail(log_path, 3000))
    run.check("RTP/AVP" in invite.body and "a=crypto" not in invite.body and "inline:" not in invite.body,
              "the PBX is offered plain RTP/AVP, without any key", invite.body)
    offered_port = re.search(r"^m=audio (\d+) ", invite.body, re.M)
    run.check(offered_port is not None and int(offered_port.group(1)) == port_min
              and f"c=IN IP4 {harness.PBX_SIDE_IP}" in invite.body and PHONE_IP not in invite.body,
              "the PBX sees only Palisade's PBX-side media address", invite.body)
    run.check(state.get("ack") is not None, "the call is answered and acknowledged")
    plain = state["received"]
    run.check(len(plain) >= 50 and all(len(p) == 172 and p[0] >> 6 == 2 and (p[1] & 0x7F) in (0, 8) for p in plain),
              f"the PBX receives plain G.711 RTP ({len(plain)} packets of 172 bytes)",
              str(sorted({len(p) for p in plain})))
    public_rtp = [(inbound, p) for inbound, p in sniffer.packets if len(p) >= 12 and not 192 <= p[1] <= 223]
    to_phone = [p for inbound, p in public_rtp if not inbound]
    from_phone = [p for inbound, p in public_rtp if inbound]
    run.check(len(to_phone) >= 50 and len(from_phone) >= 50,
              f"audio flows both ways on the public leg ({len(from_phone)} in, {len(to_phone)} out)")
    clear = {p[12:] for p in plain}
    leaked = [p for p in to_phone + from_phone if p[12:] in clear or p[12:172] in clear]
    run.check(not leaked and all(len(p) > 172 for p in to_phone),
              "the public leg is SRTP only: no packet carries a payload the PBX had in the clear, each has "
              "an authentication tag", f"{len(leaked)} clear packets; lengths {sorted({len(p) for p in to_phone})}")
    run.check(state.get("bye_ok") is not None, "the PBX's BYE reaches baresip and is answered")
    # baresip sends one 16-byte RTCP APP packet in the clear when the call starts (a NAT
    # pinhole): it is not SRTCP, so it is dropped as unauthenticated. Nothing else may fail.
    harness.expect_counters(run, palisade, before,
                            {"calls_answered": 1, 'palisade_media_dropped_total{reason="srtp_auth"}': (0, 2),
                             "palisade_media_packets_relayed_total": (200, 1000)},
                            "SRTP relayed, only baresip's clear RTCP APP packets dropped")
    try:
        phone.wait(timeout=30)
    except subprocess.TimeoutExpired:
        phone.kill()
    log = harness._read_tail(log_path, 20000)
    run.check("mediaenc not found" not in log and "mediaenc: srtp-mand" in log,
              "baresip had its SRTP module (srtp-mand) for the account", log[-2000:])
    pbx.close()
    rtp.close()
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_srtp_baresip", __doc__, body)
