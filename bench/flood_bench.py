#!/usr/bin/env python3
"""Flood defence benchmark: what dropping a flood costs Palisade, and Palisade beside Kamailio
with pike under a 10,000/s INVITE flood, in one run.

Part 1, early-drop cost. Palisade with one worker, pinned (taskset) to one core; a paced Python
sender pinned to the other core sends --drop-rate datagrams/s (a 500-byte INVITE, Call-ID and
branch varied) from 127.0.0.9 to the public port for --drop-duration seconds:

  banned        one [[users]] entry (so the internet is not default-denied); 127.0.0.9 is
                banned first by one OPTIONS with "User-Agent: friendly-scanner" (checked in
                GET /bans); drops_total{reason="banned"} must count the flood.
  default_deny  no [[users]]: the internet is denied outright; drops_total{reason="default_deny"}.
  idle          the banned configuration without traffic (the baseline).

  The daemon's CPU is utime+stime from /proc/PID/stat over the sending window, as a fraction of
  one core; the achieved rate is what the sender(s) really sent in the window; kernel receive
  drops (/proc/net/snmp Udp RcvbufErrors, machine-wide) show whether the daemon kept up.

Part 2, flood scenario. SIPp floods --flood-rate INVITEs/s from 127.0.0.9 (the reference
flood_uac.xml, -nr; or --flood-scenario send-only) while a second SIPp places --legit-calls
legitimate calls at --legit-rate from 127.0.0.3 (the carrier trunk) to a SIPp UAS at
127.0.0.2:5080 playing the PBX (the reference uac_rr.xml / uas_rr.xml), through

  Palisade      default flood settings, --workers (2); 127.0.0.3 is a [[trunks]] address; one
                [[users]] entry, so the flooder (an internet source) is not simply default-denied.
  Kamailio      the reference kamailio.cfg with -A WITH_SECURITY (pike + the dbtext address
                allow-list, which lists 127.0.0.3 and 127.0.0.9) and -A PIKE_DENSITY=N for each
                --pike-density (pike's sampling unit is 2 s: 100 = ~50 requests/s per address,
                the reference notes' setting).

  Reported: legitimate calls succeeded / attempted (the caller's SIPp), the daemon's CPU in cores
  averaged over the flood, when the flooder was banned (Palisade: first seen in GET /bans) or
  blocked (Kamailio: pike's "BLOCKing ip" log line), and the flood packets dropped (Palisade
  /metrics drops_total by reason; Kamailio the script's pike_dropped statistic through kamcmd).

Every measurement is run --repeats times (default 2), each with a fresh daemon. The machine load
from other processes ("others", cores, from /proc/stat minus the daemon, the sender and SIPp) is
printed for every run. Only loopback addresses are used; every process runs in its own process
group and is stopped in a finally block; every SIPp run is bounded by -m and -timeout.

Python 3 standard library only; helpers come from bench/signalling_bench.py. Needs a Palisade
binary (--palisade), sipp 3.6 (sip-tester), kamailio 5.6 (kamailio) and taskset (util-linux).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import signalling_bench as sb  # noqa: E402
from signalling_bench import Proc, REPO, DEFAULT_REFERENCE  # noqa: E402

FLOOD_IP, FLOOD_PORT = "127.0.0.9", 5060
FLOOD_MEDIA_PORT = 27000
USER_NAME, USER_PASSWORD = "2001", "Flood-Bench-9-Granite%"
KAMAILIO_DBTEXT_NEEDS = ("127.0.0.3", "127.0.0.9")
MGMT_TIMEOUT_S = 2


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# Sender (a child process of this script: python3 flood_bench.py --sender ...)
# --------------------------------------------------------------------------------------------

def invite_packets(src_ip: str, src_port: int, dst_ip: str, dst_port: int, variants: int = 1024) -> list[bytes]:
    """`variants` realistic ~500-byte INVITEs with SDP, each with its own Call-ID, branch and tag."""
    out = []
    for i in range(variants):
        sdp = ("v=0\r\n"
               f"o=user1 53655765 2353687637 IN IP4 {src_ip}\r\n"
               "s=-\r\n"
               f"c=IN IP4 {src_ip}\r\n"
               "t=0 0\r\n"
               "m=audio 6000 RTP/AVP 0\r\n"
               "a=rtpmap:0 PCMU/8000\r\n")
        msg = (f"INVITE sip:100@{dst_ip}:{dst_port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {src_ip}:{src_port};branch=z9hG4bK-{i:08x}-fl00d\r\n"
               f"From: sipp <sip:sipp@{src_ip}:{src_port}>;tag={i:06d}SIPpTag001\r\n"
               f"To: 100 <sip:100@{dst_ip}:{dst_port}>\r\n"
               f"Call-ID: {i:06d}-flood@{src_ip}\r\n"
               "CSeq: 1 INVITE\r\n"
               f"Contact: sip:sipp@{src_ip}:{src_port};transport=UDP\r\n"
               "Max-Forwards: 70\r\n"
               "Subject: Performance Test\r\n"
               "Content-Type: application/sdp\r\n"
               f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
        out.append(msg.encode())
    return out


def sender_main(a: argparse.Namespace) -> int:
    """Sends a.rate datagrams/s for a.duration s, starting at epoch a.start_at; prints JSON."""
    dst_ip, dst_port = a.dst.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((a.src, 0))
    sock.connect((dst_ip, int(dst_port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    packets = invite_packets(a.src, sock.getsockname()[1], dst_ip, int(dst_port))
    mask = len(packets) - 1
    send = sock.send
    perf = time.perf_counter
    while time.time() < a.start_at:
        time.sleep(min(0.01, max(0.0, a.start_at - time.time())))
    wall0 = time.time()
    t0 = perf()
    end = t0 + a.duration
    rate = a.rate
    sent = errors = 0
    max_lag = 0
    while True:
        now = perf()
        if now >= end:
            break
        due = int((now - t0) * rate)
        lag = due - sent
        if lag > max_lag:
            max_lag = lag
        while sent < due:
            try:
                send(packets[sent & mask])
            except OSError:
                errors += 1
            sent += 1
        time.sleep(0.0002)
    wall1 = time.time()
    ru = os.times()
    print(json.dumps({"sent": sent, "errors": errors, "start": wall0, "end": wall1,
                      "max_lag_packets": max_lag, "cpu_s": ru.user + ru.system,
                      "bytes": len(packets[0])}), flush=True)
    return 0


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def udp_snmp() -> dict[str, int]:
    """Machine-wide UDP counters from /proc/net/snmp (InDatagrams, RcvbufErrors, ...)."""
    with open("/proc/net/snmp") as f:
        lines = [l.split() for l in f if l.startswith("Udp:")]
    return dict(zip(lines[0][1:], (int(v) for v in lines[1][1:])))


class Load:
    """Busy cores of the whole machine over a window, for the 'others' column."""

    def __init__(self):
        self.busy0, self.t0 = sb.machine_busy_seconds()

    def cores(self) -> float:
        busy1, t1 = sb.machine_busy_seconds()
        return (busy1 - self.busy0) / (t1 - self.t0) if t1 > self.t0 else 0.0


def check_ports_free(ports: list[tuple[str, int]]) -> None:
    if not sb.wait_until(lambda: not any(sb.udp_bound(ip, p) for ip, p in ports), 30, 0.2):
        busy = [f"{ip}:{p}" for ip, p in ports if sb.udp_bound(ip, p)]
        raise RuntimeError("UDP port(s) in use by another process: " + ", ".join(busy))


def pin(pid: int, cpu: int) -> None:
    """Pins every thread of pid to one CPU."""
    subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True,
                   stdout=subprocess.DEVNULL, timeout=10)


def quiet(args) -> float:
    if args.quiet_wait <= 0:
        return 0.0
    return sb.wait_for_quiet(args.quiet_wait, args.quiet_threshold, log)


# --------------------------------------------------------------------------------------------
# Systems
# --------------------------------------------------------------------------------------------

class FloodPalisade(sb.Palisade):
    """Palisade with a trunk at 127.0.0.3 and, if `with_user`, one [[users]] entry (no sources:
    usable from anywhere, so the internet passes the default-deny filter and meets the flood
    defence). Everything else, [flood] and [scanners] included, stays at its default."""

    def __init__(self, work: Path, binary: Path, workers: int, with_user: bool):
        super().__init__(work, binary, workers)
        self.with_user = with_user
        self.name = "Palisade"

    def _callers(self) -> str:
        text = f"""[[trunks]]
name = "carrier"
addresses = ["{sb.UAC_IP}"]
host = "{sb.UAC_IP}"
port = {sb.UAC_PORT}
"""
        if self.with_user:
            text += f"""
[[users]]
name = "{USER_NAME}"
password = "{USER_PASSWORD}"
"""
        return text

    def get(self, path: str) -> Optional[str]:
        return self._get(path)

    def bans(self) -> list[dict]:
        text = self._get("/bans")
        try:
            return json.loads(text) if text else []
        except ValueError:
            return []

    def drops(self) -> dict[str, float]:
        """{'banned': n, 'rate_limit': n, ...} plus messages in."""
        out = {}
        for key, value in self.metrics().items():
            m = re.fullmatch(r'palisade_drops_total\{reason="(\w+)"\}', key)
            if m:
                out[m.group(1)] = value
            elif key in ('palisade_messages_total{direction="in",transport="udp"}',
                         "palisade_dropped_untrusted_total", "palisade_bans_total",
                         'palisade_rejections_total{reason="rate_limit"}',
                         'palisade_rejections_total{reason="call_rate"}',
                         'palisade_rejections_total{reason="overload"}',
                         "palisade_inbox_overflows_total", "palisade_calls_attempted_total",
                         "palisade_calls_answered_total"):
                out[key.replace("palisade_", "")] = value
        return out


class SecureKamailio(sb.Kamailio):
    """The reference Kamailio with -A WITH_SECURITY and -A PIKE_DENSITY=density."""

    def __init__(self, work: Path, reference: Path, density: int):
        super().__init__(work, reference)
        self.density = density
        for ip in KAMAILIO_DBTEXT_NEEDS:
            if ip not in (self.dbtext / "address").read_text():
                raise RuntimeError(f"{self.dbtext}/address does not allow {ip}")

    def start(self, tag: str) -> None:
        if self.ctl.exists():
            self.ctl.unlink()
        argv = [self.binary, "-f", str(self.cfg), "-DD", "-E", "-m", "1024", "-M", "16",
                "-A", f'DBURL="text://{self.dbtext}"', "-A", f'CTLSOCK="unix:{self.ctl}"',
                "-A", "WITH_SECURITY", "-A", f"PIKE_DENSITY={self.density}"]
        self.proc = Proc("kamailio", argv, self.work / f"{tag}-kamailio.log", self.work)
        ok = sb.wait_until(lambda: (sb.udp_bound(sb.PUBLIC_IP, sb.PUBLIC_PORT) and self.ctl.exists())
                           or self.proc.poll() is not None, 30, 0.1)
        if not ok or not self.alive():
            raise RuntimeError(f"Kamailio did not start (rc {self.proc.poll()}):\n{self.proc.log_tail()}")
        time.sleep(1.0)
        self.refresh_pids()

    def statistic(self, name: str) -> Optional[int]:
        if not self.kamcmd or not self.ctl.exists():
            return None
        try:
            out = subprocess.run([self.kamcmd, "-s", f"unix:{self.ctl}", "stats.get_statistics", name],
                                 capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        m = re.search(rf"{name}\s*=\s*(\d+)", out)
        return int(m.group(1)) if m else None


class LogWatch:
    """Follows a log file and records when lines matching a pattern first appear."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.first: dict[str, float] = {}
        self.lines: list[str] = []

    def poll(self, patterns: dict[str, str]) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return
        if not chunk:
            return
        last_nl = chunk.rfind(b"\n")
        if last_nl < 0:
            return
        self.offset += last_nl + 1
        now = time.time()
        for line in chunk[:last_nl].decode(errors="replace").splitlines():
            for key, pattern in patterns.items():
                if key not in self.first and re.search(pattern, line):
                    self.first[key] = now
                    self.lines.append(line.strip())


# --------------------------------------------------------------------------------------------
# Part 1: the cost of dropping
# --------------------------------------------------------------------------------------------

def ban_by_scanner(system: FloodPalisade) -> tuple[bool, str]:
    """One OPTIONS with a scanner User-Agent from FLOOD_IP; then waits for it in GET /bans."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((FLOOD_IP, 0))
        port = s.getsockname()[1]
        s.sendto((f"OPTIONS sip:{sb.PUBLIC_IP}:{sb.PUBLIC_PORT} SIP/2.0\r\n"
                  f"Via: SIP/2.0/UDP {FLOOD_IP}:{port};branch=z9hG4bK-scan-1\r\n"
                  f"From: \"sipvicious\" <sip:100@{FLOOD_IP}>;tag=scan1\r\n"
                  f"To: \"sipvicious\" <sip:100@{FLOOD_IP}>\r\n"
                  f"Call-ID: scan-1@{FLOOD_IP}\r\nCSeq: 1 OPTIONS\r\n"
                  f"Contact: <sip:100@{FLOOD_IP}:{port}>\r\nMax-Forwards: 70\r\n"
                  "User-Agent: friendly-scanner\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n").encode(),
                 (sb.PUBLIC_IP, sb.PUBLIC_PORT))
    entry: list = []

    def listed() -> bool:
        entry[:] = [b for b in system.bans() if b.get("address") == FLOOD_IP]
        return bool(entry)

    ok = sb.wait_until(listed, 5, 0.1)
    return ok, json.dumps(entry[0]) if entry else ""


def drop_run(args, work: Path, case: str, repeat: int, tagno: list[int]) -> dict:
    tagno[0] += 1
    tag = f"{tagno[0]:02d}-drop-{case}-{repeat}"
    res: dict = {"part": "drop", "case": case, "repeat": repeat, "rate_target": args.drop_rate,
                 "duration": args.drop_duration}
    res["others_before"] = quiet(args)
    check_ports_free([(sb.PUBLIC_IP, sb.PUBLIC_PORT), (sb.PBX_SIDE_IP, sb.PBX_SIDE_PORT)])
    system = FloodPalisade(work, args.palisade, 1, with_user=(case != "default_deny"))
    senders: list[Proc] = []
    try:
        system.start(tag)
        pin(system.proc.pid, args.daemon_cpu)
        system.refresh_pids()
        if case == "banned":
            ok, entry = ban_by_scanner(system)
            res["ban_listed"] = ok
            res["ban_entry"] = entry
            log(f"  GET /bans lists {FLOOD_IP}: {'yes ' + entry if ok else 'NO'}")
        else:
            res["bans_at_start"] = system.bans()
        time.sleep(1.0)
        m0 = system.drops()
        snmp0 = udp_snmp()
        start_at = time.time() + 1.5
        if case != "idle":
            n = args.sender_procs
            for i in range(n):
                argv = ["taskset", "-c", str(args.sender_cpu), sys.executable, str(Path(__file__).resolve()),
                        "--sender", "--src", FLOOD_IP, "--dst", f"{sb.PUBLIC_IP}:{sb.PUBLIC_PORT}",
                        "--rate", str(args.drop_rate / n), "--duration", str(args.drop_duration),
                        "--start-at", repr(start_at)]
                senders.append(Proc(f"sender{i}", argv, work / f"{tag}-sender{i}.log", work))
        while time.time() < start_at:
            time.sleep(0.005)
        cpu0, load, t0 = system.cpu(), Load(), time.time()
        time.sleep(max(0.0, start_at + args.drop_duration - time.time()))
        cpu1, t1 = system.cpu(), time.time()
        res["machine_cores"] = load.cores()
        for p in senders:
            p.wait(10)
        time.sleep(0.5)  # let the daemon drain its socket before the counters are read
        m1 = system.drops()
        snmp1 = udp_snmp()
        res["alive"] = system.alive()
        res["cpu_s"] = cpu1 - cpu0
        res["wall_s"] = t1 - t0
        res["daemon_core_fraction"] = (cpu1 - cpu0) / (t1 - t0)
        res["metrics_delta"] = {k: m1.get(k, 0) - m0.get(k, 0) for k in set(m0) | set(m1)
                                if m1.get(k, 0) != m0.get(k, 0)}
        res["rcvbuf_errors"] = snmp1.get("RcvbufErrors", 0) - snmp0.get("RcvbufErrors", 0)
        sent = 0
        sender_cpu = 0.0
        spans = []
        for p in senders:
            try:
                out = json.loads(p.log_path.read_text().strip().splitlines()[-1])
            except (OSError, ValueError, IndexError):
                raise RuntimeError(f"sender {p.name} gave no result (rc {p.rc}):\n{p.log_tail()}")
            sent += out["sent"]
            sender_cpu += out["cpu_s"]
            spans.append((out["start"], out["end"]))
            res["send_errors"] = res.get("send_errors", 0) + out["errors"]
            res["max_lag_packets"] = max(res.get("max_lag_packets", 0), out["max_lag_packets"])
            res["packet_bytes"] = out["bytes"]
        res["sent"] = sent
        if spans:
            span = max(e for _, e in spans) - min(s for s, _ in spans)
            res["achieved_rate"] = sent / span if span > 0 else 0.0
        res["sender_cpu_s"] = sender_cpu
        res["others_cores"] = max(0.0, res["machine_cores"] - res["daemon_core_fraction"]
                                  - sender_cpu / max(1e-9, res["wall_s"]))
        reason = {"banned": "banned", "default_deny": "default_deny"}.get(case)
        if reason:
            res["counted"] = res["metrics_delta"].get(reason, 0)
        res["log_tail"] = system.log_tail()
    finally:
        for p in senders:
            p.stop(signal.SIGTERM, grace=2)
        system.stop()
    return res


def describe_drop(r: dict) -> str:
    s = (f"  {r['case']:<12} run {r['repeat']}: daemon {100 * r['daemon_core_fraction']:.1f}% of a core "
         f"over {r['wall_s']:.1f} s")
    if r["case"] != "idle":
        s += (f"; sent {r['sent']:,} ({r.get('achieved_rate', 0):,.0f}/s, {r.get('packet_bytes', 0)} B)"
              f", counted {r.get('counted', 0):,.0f} as {r['case']}, kernel rcvbuf drops {r['rcvbuf_errors']:,}"
              f", sender {r['sender_cpu_s'] / r['wall_s']:.2f} cores")
    s += f"; others {r['others_cores']:.2f} cores"
    if not r.get("alive", True):
        s += "  DAEMON EXITED"
    other = {k: v for k, v in r["metrics_delta"].items() if k not in ("banned", "default_deny",
             'messages_total{direction="in",transport="udp"}', "dropped_untrusted_total")}
    if other:
        s += f"; other counters: {other}"
    return s


# --------------------------------------------------------------------------------------------
# Part 2: the flood scenario
# --------------------------------------------------------------------------------------------

SEND_ONLY_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- Written by bench/flood_bench.py: the INVITE of the reference flood_uac.xml, sent and
     forgotten (the call ends at once; answers are out-of-call messages SIPp ignores). -->
<scenario name="INVITE flood, send only">
  <send>
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port];transport=[transport]
      Max-Forwards: 70
      Subject: Performance Test
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
</scenario>
"""

FLOOD_KEYS = ["OutgoingCall(C)", "SuccessfulCall(C)", "FailedCall(C)", "FailedTimeoutOnRecv(C)",
              "FailedUnexpectedMessage(C)", "OutOfCallMsgs(C)", "CurrentCall"]


def start_flooder(work: Path, tag: str, scenario: Path, rate: int, calls: int, timeout_s: int) -> Proc:
    argv = [sb.sipp_binary(), f"{sb.PUBLIC_IP}:{sb.PUBLIC_PORT}", "-sf", str(scenario),
            "-i", FLOOD_IP, "-p", str(FLOOD_PORT), "-mi", FLOOD_IP, "-mp", str(FLOOD_MEDIA_PORT),
            "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", str(rate * 4), "-nr",
            "-recv_timeout", "2000", "-timeout", f"{timeout_s}s", "-nostdin",
            "-buff_size", str(4 << 20), "-trace_stat", "-stf", str(work / f"{tag}-flood.csv"), "-fd", "1",
            "-trace_counts"]
    return Proc("sipp-flood", argv, work / f"{tag}-flood.log", work)


def flood_run(args, work: Path, system, label: str, repeat: int, tagno: list[int]) -> dict:
    tagno[0] += 1
    tag = f"{tagno[0]:02d}-flood-{label.lower().replace(' ', '').replace('=', '')}-{repeat}"
    res: dict = {"part": "flood", "system": label, "repeat": repeat, "flood_rate": args.flood_rate,
                 "legit_rate": args.legit_rate, "legit_calls": args.legit_calls}
    res["others_before"] = quiet(args)
    check_ports_free([(sb.PUBLIC_IP, sb.PUBLIC_PORT), (sb.PBX_SIDE_IP, sb.PBX_SIDE_PORT),
                      (sb.PBX_IP, sb.PBX_PORT), (sb.UAC_IP, sb.UAC_PORT), (FLOOD_IP, FLOOD_PORT)])
    is_palisade = isinstance(system, FloodPalisade)
    legit_duration = args.legit_calls / args.legit_rate
    flood_duration = legit_duration + args.flood_delay  # from flood_delay after the legit start to its end + delay
    flood_calls = int(args.flood_rate * flood_duration)
    uac_timeout = int(legit_duration + 60)
    uas = uac = flood = None
    watch = None
    try:
        system.start(tag)
        if not is_palisade:
            watch = LogWatch(system.proc.log_path)
        uas = sb.start_uas(work, tag, args.reference / "uas_rr.xml", args.legit_calls + flood_calls,
                           uac_timeout + 60, (uac_timeout + 60) * 1000)
        m0 = system.drops() if is_palisade else {}
        snmp0 = udp_snmp()
        pike0 = None if is_palisade else system.statistic("pike_dropped")
        load = Load()
        t_legit = time.time()
        uac = sb.start_uac(work, tag, args.reference / "uac_rr.xml", args.legit_rate, args.legit_calls,
                           uac_timeout, 10000)
        samples: list[tuple[float, float]] = []  # (time, daemon cpu)
        t_flood = t_flood_end = None
        ban_at = None
        ban_entry = ""
        deadline = t_legit + uac_timeout + 30
        while time.time() < deadline:
            now = time.time()
            if flood is None and now >= t_legit + args.flood_delay:
                flood = start_flooder(work, tag, args.flood_scenario_path, args.flood_rate, flood_calls,
                                      int(flood_duration + 30))
                t_flood = time.time()
            samples.append((now, system.cpu()))
            if t_flood and ban_at is None:
                if is_palisade:
                    listed = [b for b in system.bans() if b.get("address") == FLOOD_IP]
                    if listed:
                        ban_at, ban_entry = time.time(), json.dumps(listed[0])
            if watch:
                watch.poll({"flooder": rf"BLOCKing ip {re.escape(FLOOD_IP)}\b",
                            "carrier": rf"BLOCKing ip {re.escape(sb.UAC_IP)}\b",
                            "pbx": rf"BLOCKing ip {re.escape(sb.PBX_IP)}\b"})
            if flood is not None and t_flood_end is None and flood.poll() is not None:
                t_flood_end = time.time()
            if uac.poll() is not None and (flood is not None and flood.poll() is not None):
                break
            if not system.alive():
                res["died"] = f"{system.name} exited during the run (rc {system.proc.rc})"
                break
            # Poll finely around the start of the flood, so that the ban's time is known to ~20 ms.
            seen = ban_at is not None if is_palisade else "flooder" in watch.first
            early = flood is None or (time.time() - t_flood < 5 and not seen)
            time.sleep(0.02 if early else 0.1)
        res["machine_cores"] = load.cores()
        t_end = time.time()
        for p, name in ((uac, "uac"), (flood, "flood")):
            if p is not None and p.poll() is None:
                res.setdefault("notes", []).append(f"SIPp {name} did not finish in time: stopped")
                p.stop(signal.SIGUSR1, grace=5)
        time.sleep(0.5)
        if watch:
            watch.poll({"flooder": rf"BLOCKing ip {re.escape(FLOOD_IP)}\b",
                        "carrier": rf"BLOCKing ip {re.escape(sb.UAC_IP)}\b",
                        "pbx": rf"BLOCKing ip {re.escape(sb.PBX_IP)}\b"})
        res["alive"] = system.alive()
        # SIPp results
        uac_rows = sb.read_sipp_stats(work / f"{tag}-uac.csv")
        res["uac"] = sb.summarize_sipp(uac_rows, sb.UAC_KEYS)
        flood_rows = sb.read_sipp_stats(work / f"{tag}-flood.csv")
        res["flood"] = sb.summarize_sipp(flood_rows, FLOOD_KEYS)
        flood_sent = res["flood"].get("OutgoingCall(C)", 0)
        res["flood_sent"] = flood_sent
        t_last_flood = None
        if flood_rows:
            f_start = sb.sipp_epoch(flood_rows[0]["StartTime"])
            t_last_flood = sb.time_reached(flood_rows, "OutgoingCall(C)", flood_sent) if flood_sent else None
            if t_last_flood and t_last_flood > f_start:
                res["flood_achieved_rate"] = flood_sent / (t_last_flood - f_start)
            t_flood = f_start
        res["error_sample"] = sb.error_sample(work / f"{tag}-uac.err")
        # CPU over the flood: from its start to its last INVITE
        w0, w1 = (t_flood or t_legit), (t_last_flood or t_flood_end or t_end)
        inside = [s for s in samples if w0 <= s[0] <= w1]
        if len(inside) >= 2:
            res["flood_window_s"] = inside[-1][0] - inside[0][0]
            res["daemon_cores"] = (inside[-1][1] - inside[0][1]) / res["flood_window_s"]
        # The reference scenario waits for the INVITE's 200: a 200 means the flood call was put
        # through to the PBX (its first *_200_Recv counter; the later one is the BYE's). The
        # send-only scenario cannot tell.
        res["flood_answered"] = None
        if args.flood_scenario == "reference" and flood is not None:
            counts = sb.read_sipp_counts(work, args.flood_scenario_path, flood.pid)
            ok = sorted((int(k.split("_")[0]), v) for k, v in counts.items() if re.fullmatch(r"\d+_200_Recv", k))
            res["flood_answered"] = ok[0][1] if ok else (0 if counts else None)
            res["flood_counts"] = counts
            # Answers the scenario did not expect (Palisade's 407s to the first INVITEs).
            res["flood_unexpected"] = sum(v for k, v in counts.items() if k.endswith("_Unexp"))
        res["rcvbuf_errors"] = udp_snmp().get("RcvbufErrors", 0) - snmp0.get("RcvbufErrors", 0)
        if is_palisade:
            m1 = system.drops()
            res["metrics_delta"] = {k: m1.get(k, 0) - m0.get(k, 0) for k in set(m0) | set(m1)
                                    if m1.get(k, 0) != m0.get(k, 0)}
            res["flood_dropped"] = sum(v for k, v in res["metrics_delta"].items()
                                       if k in ("banned", "rate_limit", "scanner_user_agent", "extension_scan",
                                                "overload", "default_deny"))
            res["ban_after_s"] = (ban_at - t_flood) if (ban_at and t_flood) else None
            res["ban_entry"] = ban_entry
            res["bans_at_end"] = system.bans()
        else:
            pike1 = system.statistic("pike_dropped")
            res["pike_dropped"] = (pike1 - (pike0 or 0)) if pike1 is not None else None
            res["acl_rejected"] = system.statistic("acl_rejected")
            res["flood_dropped"] = res["pike_dropped"]
            # The flooder's block from the flood's start, the carrier's from its first call.
            res["blocked_after_s"] = {}
            if "flooder" in watch.first and t_flood:
                res["blocked_after_s"]["flooder"] = watch.first["flooder"] - t_flood
            if "carrier" in watch.first:
                res["blocked_after_s"]["carrier"] = watch.first["carrier"] - t_legit
            if "pbx" in watch.first:
                res["blocked_after_s"]["pbx"] = watch.first["pbx"] - t_legit
            res["pike_log"] = watch.lines[:6]
        res["log_tail"] = system.log_tail()
        # The UAS last: its CPU (from wait4) is part of SIPp's, like the two callers'.
        uas.stop(signal.SIGUSR1, grace=5)
        res["uas"] = sb.summarize_sipp(sb.read_sipp_stats(work / f"{tag}-uas.csv"), sb.UAS_KEYS)
        whole = samples[-1][0] - samples[0][0] if len(samples) >= 2 else 0
        if whole > 0:
            res["daemon_cores_whole"] = (samples[-1][1] - samples[0][1]) / whole
            res["sipp_cores"] = sum(p.cpu_seconds_of_sipp() for p in (uac, flood, uas) if p) / whole
        res["others_cores"] = max(0.0, res["machine_cores"] - res.get("daemon_cores_whole", 0)
                                  - res.get("sipp_cores", 0))
    finally:
        for p in (flood, uac, uas):
            if p is not None:
                p.stop(signal.SIGUSR1, grace=3)
        system.stop()
    return res


def ban_text(r: dict) -> tuple[str, str]:
    """(flooder, carrier) ban/block descriptions."""
    if "ban_after_s" in r:
        b = r["ban_after_s"]
        flooder = f"banned after {b:.2f} s" if b is not None else "NOT BANNED"
        carrier = "banned" if any(x.get("address") == sb.UAC_IP for x in r.get("bans_at_end", [])) else "no"
        return flooder, carrier
    bl = r.get("blocked_after_s", {})
    flooder = f"blocked after {bl['flooder']:.2f} s" if "flooder" in bl else "not blocked"
    carrier = f"blocked {bl['carrier']:.1f} s after its first call" if "carrier" in bl else "no"
    return flooder, carrier


def drop_counters(r: dict) -> str:
    if "pike_dropped" in r:
        d = r["pike_dropped"]
        return "pike_dropped n/a (kamcmd)" if d is None else f"pike_dropped {d:,.0f} (all sources)"
    md = r.get("metrics_delta", {})
    parts = [f"{md[k]:,.0f} {k}" for k in ("banned", "rate_limit", "scanner_user_agent", "extension_scan",
                                          "overload", "default_deny") if md.get(k)]
    return " + ".join(parts) or "0"


def fmt_n(v) -> str:
    return "n/a" if v is None else f"{v:,}"


def describe_flood(r: dict) -> str:
    u = r.get("uac", {})
    flooder, carrier = ban_text(r)
    s = (f"  {r['system']:<18} run {r['repeat']}: legit {u.get('SuccessfulCall(C)', 0)}/{u.get('OutgoingCall(C)', 0)}"
         f" ok ({u.get('FailedCall(C)', 0)} failed, {u.get('Retransmissions(C)', 0)} retransmissions)"
         f"; flood {r.get('flood_sent', 0):,} INVITEs at {r.get('flood_achieved_rate', 0):,.0f}/s, "
         f"{fmt_n(r.get('flood_answered'))} put through to the PBX; daemon {r.get('daemon_cores', 0):.3f} cores over the flood"
         f"; flooder {flooder}; carrier blocked: {carrier}; drops: {drop_counters(r)}"
         f"; kernel rcvbuf drops {r.get('rcvbuf_errors', 0):,}; SIPp {r.get('sipp_cores', 0):.2f} cores"
         f"; others {r.get('others_cores', 0):.2f} cores")
    if not r.get("alive", True) or r.get("died"):
        s += "  DAEMON EXITED"
    for note in r.get("notes", []):
        s += f"\n    note: {note}"
    if r.get("error_sample") and u.get("FailedCall(C)"):
        # SIPp's error file has no line breaks between entries: split on its timestamps.
        errs = [e.strip() for e in re.split(r"(?=\d{4}-\d\d-\d\d\t)", r["error_sample"])
                if re.match(r"\d{4}-", e.strip())]
        s += "\n    first caller errors:" + "".join(f"\n      {e[:200]}" for e in errs[:3])
    return s


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def report(drops: list[dict], floods: list[dict]) -> None:
    if drops:
        log("\nEarly-drop cost (Palisade, 1 worker pinned to one core, sender pinned to the other):\n")
        rows = [["case", "run", "sent", "achieved/s", "daemon % of 1 core", "counted by /metrics",
                 "kernel rcvbuf drops", "sender cores", "others (cores)"]]
        for r in drops:
            rows.append([r["case"], str(r["repeat"]),
                         f"{r.get('sent', 0):,}" if r["case"] != "idle" else "-",
                         f"{r.get('achieved_rate', 0):,.0f}" if r["case"] != "idle" else "-",
                         f"{100 * r['daemon_core_fraction']:.1f}",
                         (f"{r.get('counted', 0):,.0f} {r['case']}" if r["case"] != "idle" else "-"),
                         f"{r.get('rcvbuf_errors', 0):,}" if r["case"] != "idle" else "-",
                         f"{r['sender_cpu_s'] / r['wall_s']:.2f}" if r["case"] != "idle" else "-",
                         f"{r['others_cores']:.2f}"])
        sb.print_table(rows)
    if floods:
        log("\nFlood scenario (legitimate calls from the trunk while 127.0.0.9 floods INVITEs):\n")
        rows = [["system", "run", "legit ok/attempted", "daemon cores (flood)", "flooder", "carrier blocked",
                 "flood INVITEs (rate/s)", "put through", "daemon's drop counters", "SIPp cores", "others (cores)"]]
        for r in floods:
            u = r.get("uac", {})
            flooder, carrier = ban_text(r)
            rows.append([r["system"], str(r["repeat"]),
                         f"{u.get('SuccessfulCall(C)', 0)}/{u.get('OutgoingCall(C)', 0)}",
                         f"{r.get('daemon_cores', 0):.3f}", flooder, carrier,
                         f"{r.get('flood_sent', 0):,} ({r.get('flood_achieved_rate', 0):,.0f})",
                         fmt_n(r.get("flood_answered")), drop_counters(r),
                         f"{r.get('sipp_cores', 0):.2f}", f"{r.get('others_cores', 0):.2f}"])
        sb.print_table(rows)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--palisade", type=Path, default=REPO / "build" / "palisade", help="Palisade binary (default build/palisade)")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                   help="folder with kamailio.cfg, uac_rr.xml, uas_rr.xml, flood_uac.xml, dbtext/")
    p.add_argument("--parts", default="drop,flood", help="drop,flood (default both)")
    p.add_argument("--repeats", type=int, default=2, help="runs of every measurement (default 2)")
    p.add_argument("--drop-rate", type=int, default=50000, help="datagrams/s in part 1 (default 50000)")
    p.add_argument("--drop-duration", type=float, default=20.0, help="seconds of sending in part 1 (default 20)")
    p.add_argument("--drop-cases", default="idle,banned,default_deny")
    p.add_argument("--sender-procs", type=int, default=1, help="sender processes sharing the rate (default 1)")
    p.add_argument("--daemon-cpu", type=int, default=0, help="CPU the part-1 daemon is pinned to (default 0)")
    p.add_argument("--sender-cpu", type=int, default=1, help="CPU the part-1 sender is pinned to (default 1)")
    p.add_argument("--workers", type=int, default=2, help="Palisade workers in part 2 (default 2)")
    p.add_argument("--flood-rate", type=int, default=10000, help="flood INVITEs/s in part 2 (default 10000)")
    p.add_argument("--flood-scenario", default="reference", choices=("reference", "send-only"),
                   help="reference: flood_uac.xml (waits 2 s for a 200); send-only: the INVITE alone")
    p.add_argument("--flood-delay", type=float, default=2.0,
                   help="the flood starts this long after the legitimate calls and ends as long after them")
    p.add_argument("--legit-rate", type=int, default=50)
    p.add_argument("--legit-calls", type=int, default=1500)
    p.add_argument("--systems", default="palisade,kamailio")
    p.add_argument("--pike-density", default="100,1000",
                   help="comma-separated PIKE_DENSITY values for Kamailio, requests per address per 2 s "
                        "(default 100,1000: the reference notes' ~50/s, and 500/s, above the caller's 150/s)")
    p.add_argument("--quiet-wait", type=float, default=0.0,
                   help="before each run, wait up to this long for other processes to use < --quiet-threshold "
                        "cores (default 0: run at once; the load of others is reported for every run anyway)")
    p.add_argument("--quiet-threshold", type=float, default=0.3)
    p.add_argument("--json", type=Path, help="write every run's result as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, SIPp statistics)")
    # the sender child
    p.add_argument("--sender", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--src", help=argparse.SUPPRESS)
    p.add_argument("--dst", help=argparse.SUPPRESS)
    p.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, help=argparse.SUPPRESS)
    p.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.parts = [s.strip() for s in a.parts.split(",") if s.strip()]
    a.systems = [s.strip().lower() for s in a.systems.split(",") if s.strip()]
    a.drop_cases = [s.strip() for s in a.drop_cases.split(",") if s.strip()]
    a.pike_density = [int(s) for s in a.pike_density.split(",") if s.strip()]
    return a


def main() -> int:
    args = parse_args()
    if args.sender:
        return sender_main(args)
    signal.signal(signal.SIGTERM, sb._raise_exit)
    signal.signal(signal.SIGHUP, sb._raise_exit)
    if not os.access(args.palisade, os.X_OK):
        sys.exit(f"{args.palisade} not found (build it, or pass --palisade)")
    if not shutil.which("taskset"):
        sys.exit("taskset not found (util-linux)")
    if "flood" in args.parts:
        sb.sipp_binary()
        for name in ("uac_rr.xml", "uas_rr.xml", "flood_uac.xml", "kamailio.cfg"):
            if not (args.reference / name).is_file():
                sys.exit(f"missing {args.reference / name} (set --reference)")
    if os.cpu_count() and max(args.daemon_cpu, args.sender_cpu) >= os.cpu_count():
        sys.exit("--daemon-cpu/--sender-cpu beyond the CPUs of this machine")
    sb.raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="palisade-flood-bench-"))
    started = datetime.datetime.now(datetime.timezone.utc)
    with open("/proc/loadavg") as f:
        loadavg = f.read().split()[:3]
    log(f"flood benchmark {started:%Y-%m-%d %H:%M} UTC  host {platform.node()}  cores {os.cpu_count()}  "
        f"Palisade {sb.git_revision()} ({args.palisade})  load average {' '.join(loadavg)}")
    log(f"work folder {work}")
    drops: list[dict] = []
    floods: list[dict] = []
    tagno = [0]
    try:
        if args.flood_scenario == "send-only":
            args.flood_scenario_path = work / "flood_send_only.xml"
            args.flood_scenario_path.write_text(SEND_ONLY_SCENARIO)
        else:
            args.flood_scenario_path = args.reference / "flood_uac.xml"
        if "drop" in args.parts:
            log(f"\n== Early-drop cost: {args.drop_rate:,} datagrams/s for {args.drop_duration:g} s from {FLOOD_IP}, "
                f"daemon on CPU {args.daemon_cpu}, sender(s) on CPU {args.sender_cpu}")
            for repeat in range(1, args.repeats + 1):
                for case in args.drop_cases:
                    r = drop_run(args, work, case, repeat, tagno)
                    drops.append(r)
                    log(describe_drop(r))
        if "flood" in args.parts:
            log(f"\n== Flood: {args.flood_rate:,} INVITEs/s from {FLOOD_IP} ({args.flood_scenario_path.name}, -nr) "
                f"while {args.legit_calls} calls at {args.legit_rate}/s come from the trunk {sb.UAC_IP}")
            systems = []
            if "palisade" in args.systems:
                systems.append(("Palisade", lambda: FloodPalisade(work, args.palisade, args.workers, with_user=True)))
            if "kamailio" in args.systems:
                for d in args.pike_density:
                    systems.append((f"Kamailio pike={d}", lambda d=d: SecureKamailio(work, args.reference, d)))
            for repeat in range(1, args.repeats + 1):
                for label, make in systems:
                    r = flood_run(args, work, make(), label, repeat, tagno)
                    floods.append(r)
                    log(describe_flood(r))
        report(drops, floods)
        with open("/proc/loadavg") as f:
            log(f"\nload average at the end: {' '.join(f.read().split()[:3])}; "
                f"finished {datetime.datetime.now(datetime.timezone.utc):%H:%M} UTC")
    finally:
        sb.stop_all()
        if args.json:
            args.json.write_text(json.dumps({"started": started.isoformat(), "revision": sb.git_revision(),
                                             "drop": drops, "flood": floods}, indent=1, default=str))
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
