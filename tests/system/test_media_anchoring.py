#!/usr/bin/env python3
"""Media anchoring on the real daemon, plain RTP:
(1) a call between two scripted peers: each side's SDP names only Palisade (its media address
    and a port from [media]), RTP flows both ways through the relay and is counted at both
    ends, byte for byte;
(2) spoofed RTP (from a third address, and from the caller's address but another port once it
    is latched, and toward the strict PBX side from a port the PBX did not signal) is never
    relayed, and is counted;
(3) once the peers stop sending, media.timeout_s ends the call with a BYE to both;
(4) SIPp calls with RTP (pcap playback through Palisade to a SIPp echo), packets counted;
(5) with two port pairs, a third concurrent call gets 503, and after calls that fail, are
    cancelled or time out, every pair is free again."""
import re
import socket
import struct
import time

import harness
from sip_peer import UdpPeer

SPOOF_IP = "127.0.0.6"
PORT_MIN = 31000


def sdp_of(ip, port):
    return (f"v=0\r\no=- 7 7 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            f"a=candidate:1 1 UDP 2130706431 {ip} {port} typ host\r\na=sendrecv\r\n")


def with_sdp(message, sdp):
    return message.replace("Content-Length: 0\r\n\r\n",
                           f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")


def media_of(body):
    """(address, port) from an SDP body."""
    c = re.search(r"^c=IN IP4 (\S+)", body, re.M)
    m = re.search(r"^m=audio (\d+) ", body, re.M)
    return (c.group(1) if c else None, int(m.group(1)) if m else None)


def rtp_packet(seq, ssrc, payload):
    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160, ssrc) + payload


def receive_all(sock, quiet_s=0.5):
    out = []
    sock.settimeout(quiet_s)
    while True:
        try:
            data, source = sock.recvfrom(2048)
        except socket.timeout:
            return out
        out.append((data, source))


def udp_socket(ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    return s


def bye_for(peer, request_uri, from_value, to_value, call_id, cseq):
    return (f"BYE {request_uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {peer.ip}:{peer.port};branch=z9hG4bK-bye-{time.monotonic_ns()};rport\r\n"
            f"From: {from_value}\r\nTo: {to_value}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} BYE\r\n"
            f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


def contact_uri(message):
    value = message.value("Contact") or ""
    match = re.search(r"<([^>]+)>", value)
    return match.group(1) if match else value


def scripted_call(run, palisade, public, pbx, caller, call_id):
    """Sets up one answered call; returns (invite seen by the PBX, 200 seen by the caller, RTP sockets)."""
    caller_rtp = udp_socket(harness.CALLER_IP)
    pbx_rtp = udp_socket(harness.PBX_IP)
    invite = with_sdp(caller.invite(public, call_id, sdp=False), sdp_of(harness.CALLER_IP, caller_rtp.getsockname()[1]))
    caller.send(invite, public)
    seen = pbx.recv(3, want=lambda m: m.method == "INVITE")
    run.require(seen is not None, f"{call_id}: the INVITE reaches the PBX")
    answer = with_sdp(pbx.response_to(seen, 200, "OK", to_tag=f"pbx-{call_id}"),
                      sdp_of(harness.PBX_IP, pbx_rtp.getsockname()[1]))
    pbx.send(answer, seen.source)
    ok = caller.recv(3, want=lambda m: not m.is_request and m.status == 200)
    run.require(ok is not None, f"{call_id}: the caller gets the 200")
    caller.send(caller.ack_for(ok, contact_uri(ok)), public)
    pbx.recv(3, want=lambda m: m.method == "ACK")
    return seen, ok, caller_rtp, pbx_rtp


def scripted_checks(run, palisade, public, pbx, caller, cfg):
    seen, ok, caller_rtp, pbx_rtp = scripted_call(run, palisade, public, pbx, caller, "media-1")
    to_pbx = media_of(seen.body)
    to_caller = media_of(ok.body)
    port_max = cfg["media"]["port_max"]
    run.check(to_pbx[0] == harness.PBX_SIDE_IP and PORT_MIN <= to_pbx[1] <= port_max,
              "the PBX is offered Palisade's PBX-side media address and a port of the range", seen.body)
    run.check(to_caller[0] == harness.PUBLIC_IP and PORT_MIN <= to_caller[1] <= port_max,
              "the caller is answered with Palisade's public media address and a port of the range", ok.body)
    run.check(harness.CALLER_IP not in seen.body and "candidate" not in seen.body,
              "nothing of the caller's addresses (c=, o=, ICE candidates) reaches the PBX", seen.body)
    run.check(harness.PBX_IP not in ok.body and "candidate" not in ok.body,
              "nothing of the PBX's media address reaches the caller", ok.body)
    run.check("telephone-event" in seen.body and "a=sendrecv" in seen.body,
              "codecs and direction cross unchanged", seen.body)

    before = palisade.metrics()
    public_media = (harness.PUBLIC_IP, to_caller[1])
    pbx_media = (harness.PBX_SIDE_IP, to_pbx[1])
    sent_up = [rtp_packet(i, 0x1111, bytes([i % 256]) * 160) for i in range(1, 51)]
    for p in sent_up:
        caller_rtp.sendto(p, public_media)
        time.sleep(0.002)
    got_up = receive_all(pbx_rtp)
    run.check([d for d, _ in got_up] == sent_up, "50 RTP packets from the caller reach the PBX unchanged, in order",
              f"received {len(got_up)}")
    run.check(all(src == pbx_media for _, src in got_up), "the PBX receives them from Palisade's PBX-side port",
              str({src for _, src in got_up}))
    sent_down = [rtp_packet(i, 0x2222, bytes([255 - i % 256]) * 160) for i in range(1, 51)]
    for p in sent_down:
        pbx_rtp.sendto(p, pbx_media)
        time.sleep(0.002)
    got_down = receive_all(caller_rtp)
    run.check([d for d, _ in got_down] == sent_down, "50 RTP packets from the PBX reach the caller unchanged",
              f"received {len(got_down)}")
    run.check(all(src == public_media for _, src in got_down), "the caller receives them from Palisade's public port")
    before = harness.expect_counters(run, palisade, before, {"palisade_media_packets_relayed_total": 100},
                                     "100 packets relayed")

    # Injection: a stranger, the caller's own address from another port (it is latched), and a
    # PBX-side packet from a port the PBX did not signal (strict latching).
    stranger = udp_socket(SPOOF_IP)
    same_host = udp_socket(harness.CALLER_IP)
    pbx_other = udp_socket(harness.PBX_IP)
    for i in range(20):
        stranger.sendto(rtp_packet(1000 + i, 0x6666, b"\x99" * 160), public_media)
        same_host.sendto(rtp_packet(2000 + i, 0x7777, b"\x98" * 160), public_media)
        pbx_other.sendto(rtp_packet(3000 + i, 0x8888, b"\x97" * 160), pbx_media)
    leaked_up = receive_all(pbx_rtp)
    leaked_down = receive_all(caller_rtp)
    run.check(not leaked_up and not leaked_down, "no spoofed packet is relayed either way",
              f"{len(leaked_up)} reached the PBX, {len(leaked_down)} the caller")
    before = harness.expect_counters(
        run, palisade, before,
        {'palisade_media_dropped_total{reason="foreign_source"}': 60, "palisade_media_packets_relayed_total": 0},
        "60 spoofed packets dropped and counted")
    # The real peers still get through after the attempt.
    caller_rtp.sendto(rtp_packet(51, 0x1111, b"\x01" * 160), public_media)
    run.check(len(receive_all(pbx_rtp)) == 1, "the caller's media still flows after the spoofing")
    for s in (stranger, same_host, pbx_other):
        s.close()

    # Media timeout: nobody sends; both legs get a BYE within timeout_s (+ a check period).
    timeout_s = cfg["media"]["timeout_s"]
    t0 = time.monotonic()
    bye_caller = caller.recv(timeout_s + 4, want=lambda m: m.method == "BYE")
    bye_pbx = pbx.recv(2, want=lambda m: m.method == "BYE")
    waited = time.monotonic() - t0
    run.check(bye_caller is not None and bye_pbx is not None,
              f"no media for media.timeout_s ({timeout_s} s): BYE to both legs (after {waited:.1f} s)")
    for peer, bye in ((caller, bye_caller), (pbx, bye_pbx)):
        if bye is not None:
            peer.send(peer.response_to(bye, 200, "OK"), bye.source)
    harness.expect_counters(run, palisade, before, {"palisade_calls_media_timed_out_total": 1},
                            "the media timeout is counted")
    caller_rtp.close()
    pbx_rtp.close()


def exhaustion_checks(run, palisade, public, pbx, caller, pairs):
    free = palisade.metric("palisade_media_port_pairs_free")
    run.check(free == pairs, f"all {pairs} port pairs free before the test", f"free = {free:g}")
    calls = []
    for n in range(pairs):
        calls.append(scripted_call(run, palisade, public, pbx, caller, f"full-{n}"))
    run.check(palisade.metric("palisade_media_port_pairs_free") == 0, "every pair in use")
    before = palisade.metrics()
    caller_rtp = udp_socket(harness.CALLER_IP)
    caller.send(with_sdp(caller.invite(public, "full-x", sdp=False), sdp_of(harness.CALLER_IP, 4000)), public)
    refused = caller.recv(3, want=lambda m: not m.is_request and m.status >= 300)
    run.check(refused is not None and refused.status == 503, "one call more gets 503 (no media port)",
              refused.start if refused else "no answer")
    if refused is not None:
        caller.send(caller.ack_for(refused, f"sip:1000@{public[0]}:{public[1]}"), public)
    run.check(pbx.recv(0.5, want=lambda m: m.method == "INVITE") is None, "and never reaches the PBX")
    harness.expect_counters(run, palisade, before, {"palisade_calls_no_media_ports_total": 1},
                            "the refusal is counted")
    caller_rtp.close()
    for seen, ok, a, b in calls:
        caller.send(bye_for(caller, contact_uri(ok), ok.value("From"), ok.value("To"), ok.value("Call-ID"), 2), public)
        bye = pbx.recv(3, want=lambda m: m.method == "BYE")
        if bye is not None:
            pbx.send(pbx.response_to(bye, 200, "OK"), bye.source)
        caller.recv(3, want=lambda m: not m.is_request and m.value("CSeq", ) and "BYE" in m.value("CSeq"))
        a.close()
        b.close()
    free = palisade.wait_metric("palisade_media_port_pairs_free", lambda v: v == pairs, 5)
    run.check(free == pairs, "after the BYEs every pair is free again", f"free = {free:g}")


def sipp_checks(run, palisade, cfg, pbx_port, label):
    public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
    before = palisade.metrics()
    calls = 6
    uac, uas = harness.start_calls(run, public, "uas", "uac_rtp", calls, 3, harness.PBX_IP, pbx_port,
                                   harness.CALLER_IP, timeout_s=60, uas_extra=("-rtp_echo",)).wait()
    run.check_sipp(uac, calls, f"{label}: {calls} SIPp calls with RTP (caller)")
    run.check_sipp(uas, calls, f"{label}: SIPp calls with RTP (PBX echo)")
    after = palisade.metrics()
    relayed = palisade.metric("palisade_media_packets_relayed_total", after) - \
        palisade.metric("palisade_media_packets_relayed_total", before)
    # g711a.pcap is about 250 packets; each is relayed to the echo and its echo back.
    run.check(relayed >= calls * 2 * 200, f"{label}: RTP played by the caller goes to the echo and back "
              f"({relayed:g} packets relayed)")
    harness.wait_idle(run, palisade, label)
    return after


def failure_checks(run, palisade, cfg, pbx_port, pairs):
    public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
    uac, uas = harness.start_calls(run, public, "uas_busy", "uac_busy", 20, 10, harness.PBX_IP, pbx_port,
                                   harness.CALLER_IP, timeout_s=30).wait()
    run.check_sipp(uac, 20, "20 calls the PBX refuses with 486")
    uac, uas = harness.start_calls(run, public, "uas_ring", "uac_cancel", 20, 10, harness.PBX_IP, pbx_port,
                                   harness.CALLER_IP, timeout_s=30).wait()
    run.check(uac.successful >= 1, "calls cancelled while ringing", str(uac))
    harness.wait_idle(run, palisade, "after failures and cancels")
    free = palisade.wait_metric("palisade_media_port_pairs_free", lambda v: v == pairs, 5)
    run.check(free == pairs, "after failed and cancelled calls the pool is full again", f"free = {free:g}")


def body(run):
    pbx = UdpPeer(harness.PBX_IP)
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    pairs = 2
    media = {"port_min": PORT_MIN, "port_max": PORT_MIN + 2 * pairs - 1, "timeout_s": 2}
    cfg = run.config(1, pbx.port, carrier_port, media=media)
    palisade = run.start_palisade(cfg)
    public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
    caller = UdpPeer(harness.CALLER_IP)
    try:
        scripted_checks(run, palisade, public, pbx, caller, cfg)
        exhaustion_checks(run, palisade, public, pbx, caller, pairs)
    finally:
        caller.close()
        pbx.close()
    run.check_clean_stop(palisade)

    # SIPp load with RTP, then failures and cancels, on a larger range.
    pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
    pairs = 100
    media = {"port_min": PORT_MIN, "port_max": PORT_MIN + 2 * pairs - 1, "timeout_s": 30}
    cfg = run.config(2, pbx_port, carrier_port, media=media)
    palisade = run.start_palisade(cfg, name="palisade-sipp")
    sipp_checks(run, palisade, cfg, pbx_port, "SIPp RTP, 2 workers")
    failure_checks(run, palisade, cfg, pbx_port, pairs)
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_media_anchoring", __doc__, body)
