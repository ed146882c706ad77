#!/usr/bin/env python3
"""TLS benchmark: Palisade against Kamailio 5.6 with its tls module, on loopback, in one run.

Parts (each system gets a fresh daemon per part; both serve the DEV-ONLY certificate the
script makes with certs/dev/make_dev_certs.sh, EC P-256):

  memory      N idle TLS connections (default 1,000; Python's ssl module, TLS 1.3, each one
              handshaken and then silent): the daemon's memory with them open minus before,
              per connection. Palisade: RSS. Kamailio: PSS of all its processes plus its shared
              memory pool (kamcmd core.shmmem real_used), where its tls module keeps OpenSSL's
              allocations.
  handshakes  `openssl s_time -new` (full handshakes, no resumption, TLS 1.3, nothing sent)
              against the TLS port for D seconds; handshakes per second of daemon CPU
              (utime+stime of all its processes) = full handshakes per second per core.
  calls       SIPp (uac_rr.xml / uas_rr.xml, as in signalling_bench.py) over TCP wrapped in TLS
              by stunnel4 (client mode) -> the daemon's TLS port -> SIPp UAS on UDP, at R
              calls/s for D seconds, twice: all calls over one TLS connection (SIPp -t t1) and
              one TLS connection per call (-t tn). Daemon CPU per call; failed calls counted.

Palisade runs with [general] workers = 2 (as in the signalling benchmark); Kamailio with the
reference kamailio.cfg plus `listen=tls:...`, tls.so and a tls.cfg naming the same certificate
(TLSv1.2+, no client certificates). Do not run it while other jobs use the CPU.

  python3 bench/tls_bench.py --palisade build/palisade [--parts memory,handshakes,calls]
      [--systems palisade,kamailio] [--connections 1000] [--duration 20] [--rate 300] [--json F]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import signalling_bench as sb  # noqa: E402
from signalling_bench import DEFAULT_REFERENCE, PBX_IP, PBX_PORT, Proc, REPO, UAC_IP  # noqa: E402

TLS_IP, TLS_PORT = "127.0.0.1", 5061
WRAP_IP, WRAP_PORT = UAC_IP, 5070  # stunnel's plain TCP side, on the caller's address


def log(msg: str) -> None:
    print(msg, flush=True)


def make_certs(work: Path) -> dict:
    out = work / "certs"
    subprocess.run(["sh", str(REPO / "certs/dev/make_dev_certs.sh"), str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return {k: str(out / f) for k, f in [("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key")]}


class Palisade:
    name = "Palisade"

    def __init__(self, work: Path, binary: Path, certs: dict):
        self.work, self.certs = work, certs
        self.binary = work / "palisade"
        shutil.copy2(binary, self.binary)
        self.proc: Optional[Proc] = None
        self.mgmt = sb.free_tcp_port()

    def start(self, tag: str) -> None:
        cfg = self.work / f"{tag}-palisade.toml"
        cfg.write_text(f"""[general]
workers = 2
log_level = "warn"
[public]
address = "127.0.0.1"
udp_port = 5060
tcp_port = 5060
tls_port = {TLS_PORT}
[pbx_side]
address = "127.0.0.1"
udp_port = 5072
tcp_port = 5072
[pbx]
host = "{PBX_IP}"
port = {PBX_PORT}
addresses = ["{PBX_IP}"]
[[trunks]]
name = "callers"
addresses = ["{UAC_IP}", "127.0.0.1"]
host = "{UAC_IP}"
port = 5060
[tcp]
max_connections = 8192
max_connections_per_ip = 65535
[tls]
max_connections_per_ip = 65535
max_handshakes = 4096
max_handshakes_per_ip = 1024
[[tls.certificates]]
certificate = "{self.certs['cert']}"
key = "{self.certs['key']}"
[management]
address = "127.0.0.1"
port = {self.mgmt}
""")
        self.proc = Proc("palisade", [str(self.binary), "--config", str(cfg)], self.work / f"{tag}-palisade.log",
                         self.work)
        if not sb.wait_until(lambda: tcp_open(TLS_IP, TLS_PORT) or self.proc.poll() is not None, 15):
            raise RuntimeError("Palisade did not open its TLS port")
        if self.proc.poll() is not None:
            raise RuntimeError(f"Palisade exited at start:\n{self.proc.log_tail()}")

    def daemon_pids(self) -> list[int]:
        return [self.proc.pid]

    def memory_kib(self) -> int:
        return sb.proc_memory_kib(self.daemon_pids())[0]

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


class Kamailio(sb.Kamailio):
    """The signalling benchmark's Kamailio (start, control socket, shared-memory figures) with
    a TLS listener and tls.so added to its config."""
    name = "Kamailio"

    def __init__(self, work: Path, reference: Path, certs: dict):
        super().__init__(work, reference)
        self.certs = certs
        if not Path("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so").exists():
            sys.exit("Kamailio's tls module is missing: apt-get install -y kamailio-tls-modules")
        tls_cfg = work / "kamailio-tls.cfg"
        tls_cfg.write_text(f"""[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = {certs['key']}
certificate = {certs['cert']}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
""")
        cfg = self.cfg.read_text()
        block = "#!else\ndisable_tcp=yes\n#!endif\n"
        if block not in cfg or 'loadmodule "kex.so"\n' not in cfg:
            raise RuntimeError("kamailio.cfg does not have the shape this script edits")
        cfg = cfg.replace(block, block + f"""disable_tcp=no
enable_tls=yes
tcp_children=2
listen=tls:{TLS_IP}:{TLS_PORT}
tcp_connection_lifetime=3605
tcp_max_connections=65536
tls_max_connections=65536
""", 1)
        cfg = cfg.replace('loadmodule "kex.so"\n', f'loadmodule "kex.so"\nloadmodule "tls.so"\n'
                          f'modparam("tls", "config", "{tls_cfg}")\n', 1)
        self.cfg.write_text(cfg)

    def start(self, tag: str) -> None:
        super().start(tag)
        if not sb.wait_until(lambda: tcp_open(TLS_IP, TLS_PORT), 10):
            raise RuntimeError(f"Kamailio did not open its TLS port:\n{self.log_tail()}")

    def daemon_pids(self) -> list[int]:
        return sb.group_members(self.proc.pid)

    def memory_kib(self) -> int:
        # Its processes' PSS plus the shared pool, where tls.so keeps OpenSSL's allocations.
        return sb.proc_memory_kib(self.daemon_pids())[1] + (self.allocator_used_kib() or 0)


def tcp_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.2):
            return True
    except OSError:
        return False


def memory_part(system, args, tag: str) -> dict:
    system.start(tag)
    time.sleep(1.0)
    before = system.memory_kib()
    ctx = ssl.create_default_context(cafile=system.certs["ca"])
    ctx.check_hostname = False
    conns = []
    failed = 0
    for _ in range(args.connections):
        try:
            raw = socket.create_connection((TLS_IP, TLS_PORT), timeout=5)
            conns.append(ctx.wrap_socket(raw, server_hostname="localhost"))
        except OSError:
            failed += 1
    time.sleep(2.0)  # let the daemon finish what each handshake left (tickets, buffers)
    after = system.memory_kib()
    for c in conns:
        c.close()
    system.stop()
    held = len(conns)
    per = (after - before) / held if held else float("nan")
    log(f"  {system.name:8s} memory: {held} idle TLS connections ({failed} failed): {before} -> {after} KiB, "
        f"{per:.1f} KiB per connection")
    return {"connections": held, "failed": failed, "before_kib": before, "after_kib": after, "per_conn_kib": per}


def handshake_part(system, args, tag: str) -> dict:
    system.start(tag)
    cpu0 = sb.proc_cpu_seconds(system.daemon_pids())
    p = subprocess.run(["openssl", "s_time", "-connect", f"{TLS_IP}:{TLS_PORT}", "-new", "-time", str(args.duration),
                        "-CAfile", system.certs["ca"]], capture_output=True, text=True, timeout=args.duration + 60)
    cpu = sb.proc_cpu_seconds(system.daemon_pids()) - cpu0
    system.stop()
    m = re.search(r"(\d+) connections in ([\d.]+)s", p.stdout)
    n = int(m.group(1)) if m else 0
    wall = float(m.group(2)) if m else float(args.duration)
    per_core = n / cpu if cpu > 0 else float("nan")
    log(f"  {system.name:8s} handshakes: {n} full handshakes in {wall:.1f} s ({n / wall:.0f}/s, client-bound), "
        f"daemon CPU {cpu:.2f} s -> {per_core:.0f} handshakes per second per core")
    return {"handshakes": n, "seconds": wall, "daemon_cpu_s": cpu, "per_core": per_core}


def calls_part(system, args, tag: str, per_call_connection: bool) -> dict:
    system.start(tag)
    work = system.work
    conf = work / f"{tag}-stunnel.conf"
    conf.write_text(f"""foreground = yes
pid =
syslog = no
output = {work / (tag + '-stunnel.log')}
[sip]
client = yes
accept = {WRAP_IP}:{WRAP_PORT}
connect = {TLS_IP}:{TLS_PORT}
local = {WRAP_IP}
CAfile = {system.certs['ca']}
verifyChain = yes
checkHost = localhost
delay = no
""")
    stunnel = Proc("stunnel", ["stunnel4", str(conf)], work / f"{tag}-stunnel.out", work)
    sb.wait_until(lambda: tcp_open(WRAP_IP, WRAP_PORT), 10)
    calls = args.rate * args.duration
    ref = args.reference
    uas = sb.start_uas(work, tag, ref / "uas_rr.xml", calls, args.duration + 60, 20000)
    argv = [sb.sipp_binary(), f"{WRAP_IP}:{WRAP_PORT}", "-sf", str(ref / "uac_rr.xml"), "-i", UAC_IP, "-p", "5064",
            "-t", "tn" if per_call_connection else "t1", "-max_socket", "4096", "-r", str(args.rate), "-rp", "1000",
            "-m", str(calls), "-nostdin", "-timeout", f"{args.duration + 60}s", "-recv_timeout", "10000",
            "-trace_stat", "-stf", str(work / f"{tag}-uac.csv"), "-fd", "1"]
    cpu0 = sb.proc_cpu_seconds(system.daemon_pids())
    uac = Proc("sipp-uac", argv, work / f"{tag}-uac.log", work)
    uac.wait(args.duration + 90)
    cpu = sb.proc_cpu_seconds(system.daemon_pids()) - cpu0
    rows = sb.read_sipp_stats(work / f"{tag}-uac.csv")
    ok = sb.count(rows[-1], "SuccessfulCall(C)") if rows else 0
    failed = sb.count(rows[-1], "FailedCall(C)") if rows else calls
    uas.stop()
    stunnel.stop()
    system.stop()
    kind = "one TLS connection per call" if per_call_connection else "one TLS connection"
    per_call = cpu / ok * 1000 if ok else float("nan")
    log(f"  {system.name:8s} calls, {kind}: {ok}/{calls} ok, {failed} failed at {args.rate}/s; daemon CPU "
        f"{cpu:.2f} s -> {per_call:.3f} ms per call")
    return {"calls": calls, "ok": ok, "failed": failed, "daemon_cpu_s": cpu, "ms_per_call": per_call}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--palisade", type=Path, default=REPO / "build" / "palisade")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    p.add_argument("--systems", default="palisade,kamailio")
    p.add_argument("--parts", default="memory,handshakes,calls")
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--duration", type=int, default=20)
    p.add_argument("--rate", type=int, default=300)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    work = Path(tempfile.mkdtemp(prefix="palisade-tls-bench-"))
    log(f"TLS benchmark {time.strftime('%Y-%m-%d %H:%M')}  Palisade {sb.git_revision()}  work folder {work}")
    certs = make_certs(work)
    results: dict = {}
    try:
        for name in args.systems.split(","):
            system = (Palisade(work, args.palisade, certs) if name == "palisade"
                      else Kamailio(work, args.reference, certs))
            log(f"== {system.name}")
            r: dict = {}
            parts = args.parts.split(",")
            if "memory" in parts:
                r["memory"] = memory_part(system, args, f"{name}-memory")
            if "handshakes" in parts:
                r["handshakes"] = handshake_part(system, args, f"{name}-handshakes")
            if "calls" in parts:
                r["calls_one_connection"] = calls_part(system, args, f"{name}-calls-t1", False)
                r["calls_connection_per_call"] = calls_part(system, args, f"{name}-calls-tn", True)
            results[name] = r
    finally:
        sb.stop_all()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    log(f"work folder kept: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
