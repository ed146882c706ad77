#!/usr/bin/env python3
"""baresip (the Debian package) as a TLS phone: user 2001, configured with `require_tls`,
registers over TLS with digest auth (401, then 200) and calls the PBX (SIPp on UDP) through
Palisade (407, then the call is answered; the PBX hangs up). The binding is listed with
transport TLS; the PBX sees the call over UDP. Then the PBX calls 2001 and baresip, reached over
the TLS connection it registered on, answers. A second phone with the same credentials over UDP is
refused (require_tls: the same challenge again, no binding)."""
import json
import os
import struct
import subprocess
import time
import urllib.request
import wave

import harness
from harness import PBX_IP, PUBLIC_IP

PHONE_IP = "127.0.0.6"  # its SIP listener; its TLS connection comes from 127.0.0.1 (the internet)


def write_wav(path, seconds=10):
    """8 kHz mono 16-bit PCM (aufile's source needs a file it can play at the codec's rate)."""
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", (i % 40) * 200 - 4000) for i in range(8000 * seconds)))


def baresip_config(run, folder, sip_port, tls_port, srtp=False):
    """baresip's folder for user 2001 over TLS; `srtp`: SDES-SRTP mandatory (the module is loaded
    before account.so, which reads the account's mediaenc)."""
    os.makedirs(folder, exist_ok=True)
    wav = os.path.join(folder, "source.wav")
    write_wav(wav)
    user = harness.TEST_USER
    with open(os.path.join(folder, "config"), "w") as f:
        f.write(f"""poll_method epoll
sip_listen {PHONE_IP}:{sip_port}
sip_cafile {run.certs['ca']}
module_path /usr/lib/baresip/modules
module stdio.so
module g711.so
module aufile.so
module aubridge.so
{"module srtp.so" if srtp else ""}
module account.so
module menu.so
audio_player aubridge,nil
audio_source aufile,{wav}
audio_alert aubridge,nil
""")
    with open(os.path.join(folder, "accounts"), "w") as f:
        f.write(f"<sip:{user['name']}@{PUBLIC_IP};transport=tls>;auth_pass={user['password']};"
                f"outbound=\"sip:{PUBLIC_IP}:{tls_port};transport=tls\";regint=300;"
                + ("mediaenc=srtp-mand\n" if srtp else "answermode=auto\n"))
    with open(os.path.join(folder, "contacts"), "w") as f:
        f.write("")


def registrations(palisade):
    with urllib.request.urlopen(palisade.url("/registrations"), timeout=3) as r:
        return json.loads(r.read().decode())


def body(run):
    run.certs = run.dev_certs()
    pbx_port = harness.free_ports(PBX_IP, 1)[0]
    user = dict(harness.TEST_USER, require_tls=True)
    # baresip 1.0 (libre) answers MD5 challenges only: it gives up on a first challenge of SHA-256.
    cfg = run.config(1, pbx_port, harness.free_ports(harness.CARRIER_IP, 1)[0], users=[user],
                     auth={"algorithms": ["MD5"]})
    tls_port = run.with_tls(cfg, run.certs)
    palisade = run.start_palisade(cfg, name="palisade-baresip")
    before = palisade.metrics()

    # The PBX answers baresip's call and hangs up after its pause.
    uas = run.sipp("uas-pbx", "uas_bye", PBX_IP, pbx_port, calls=1, timeout_s=60, recv_timeout_ms=40000)
    folder = run.path("baresip")
    baresip_config(run, folder, harness.free_ports(PHONE_IP, 1)[0], tls_port)
    log_path = run.path("baresip.log")
    with open(log_path, "w") as log:
        phone = subprocess.Popen(
            ["baresip", "-f", folder, "-n", PHONE_IP, "-t", "20",
             "-e", f"/dial sip:1234@{PUBLIC_IP}"],  # through the outbound proxy: Palisade over TLS
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)
    run.procs.append((phone, "baresip"))
    listed = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not listed:
        listed = [b for b in registrations(palisade) if b.get("user") == "2001"]
        time.sleep(0.2)
    run.check(len(listed) == 1 and listed[0]["transport"] == "TLS",
              "baresip registered 2001 over TLS (digest auth), listed with transport TLS", json.dumps(listed))
    answered = palisade.wait_metric("calls_answered", lambda v: v >= before.get(
        harness.METRICS["calls_answered"], 0) + 1, 15)
    run.check(answered >= 1, "baresip's call over TLS reached the PBX and was answered",
              harness._read_tail(log_path, 3000))
    result = uas.wait(60)
    run.check(result.successful == 1, "the PBX (SIPp on UDP) saw one complete call, its BYE answered",
              result.details())
    # The PBX calls 2001: Palisade reaches the phone over the TLS connection it registered on
    # (baresip answers by itself; the PBX hangs up).
    pbx_side = (harness.PBX_SIDE_IP, cfg["pbx_side"]["udp_port"])
    pbx_uac = run.sipp("pbx-calls-2001", "uac", PBX_IP, harness.free_ports(PBX_IP, 1)[0], remote=pbx_side,
                       calls=1, timeout_s=15, extra=["-s", "2001"])
    run.check_sipp(pbx_uac.wait(), 1, "the PBX calls 2001: the phone that registered over TLS answers")
    harness.expect_counters(run, palisade, before,
                            {"calls_attempted": 2, "calls_answered": 2, "calls_failed": 0,
                             "messages_out_tls": (8, 60), "tls_handshake_failures": 0},
                            "baresip over TLS")
    try:
        phone.wait(timeout=30)
    except subprocess.TimeoutExpired:
        phone.kill()

    # The same user over UDP: require_tls makes the right password fail like a disallowed source.
    udp_ip = "127.0.0.7"
    sipp = run.sipp("register-udp", "register", udp_ip, harness.free_ports(udp_ip, 1)[0],
                    remote=(PUBLIC_IP, cfg["public"]["udp_port"]), calls=1, timeout_s=10, recv_timeout_ms=3000,
                    extra=["-s", user["name"], "-au", user["name"], "-ap", user["password"], "-key", "expires", "300"])
    result = sipp.wait()
    run.check(result.successful == 0, "2001 over UDP with the right password gets no binding (require_tls)",
              result.summary())
    udp = [b for b in registrations(palisade) if b.get("transport") != "TLS"]
    run.check(not udp, "no binding over anything but TLS", json.dumps(udp))
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_tls_baresip", __doc__, body)
