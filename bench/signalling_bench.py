#!/usr/bin/env python3
"""Signalling load benchmark: Palisade against Kamailio 5.6 on loopback, in one run.

For each system (Palisade as a B2BUA, Kamailio as a transaction-stateful record-routing proxy
configured by the reference kamailio.cfg) the script

  1. climbs a ladder of call rates. Every step starts a fresh daemon, a SIPp UAS standing in for the
     PBX (127.0.0.2:5080) and a SIPp UAC (127.0.0.3) that places rate * duration calls against
     127.0.0.1:5060. A step passes when every call succeeds: SIPp's Failed call counter is 0 on both
     sides, calls completed = calls started (unexpected messages abort a call and so count as
     failures), the UAS saw an ACK and a BYE for every call, and SIPp really generated the rate
     (>= 95% of it). The ladder stops at the first step that fails (after --retries repeats).
  2. confirms the best rate with --confirm more runs and measures the CPU cost there, including a
     drain period after the last call so that timers that release call state (64*T1 = 32 s for
     Palisade's completed transactions, 5 s for Kamailio's tm wait timer) are paid for.
  3. runs a hold test: --hold-calls calls are set up at --hold-rate and kept up by a long pause in
     the UAC scenario; memory with every call up minus memory of the idle daemon gives memory per
     1,000 concurrent calls.

CPU is utime+stime from /proc/PID/stat, summed over every process of the daemon's process group
(so Kamailio's children are included). Memory: Palisade's VmRSS; for Kamailio the sum of PSS
(/proc/PID/smaps_rollup: every child maps the same shared pool) plus what its allocator reports
used in that pool (kamcmd core.shmmem), because the pool is pre-faulted and PSS cannot see it.

Only loopback addresses are used. Every process started here runs in its own process group and is
stopped in a finally block; every SIPp run is bounded by -timeout and by a deadline here.

Python 3 standard library only. Needs: build/palisade (cmake --preset release && cmake --build
build -j2 --target palisade), sipp 3.6 (Debian: sip-tester), kamailio 5.6 (Debian: kamailio).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = Path(os.environ.get("PALISADE_KAMAILIO_REF", "/work/shared/reference/kamailio"))

PUBLIC_IP, PUBLIC_PORT = "127.0.0.1", 5060      # the system under test (both systems)
PBX_SIDE_IP, PBX_SIDE_PORT = "127.0.0.1", 5070  # Palisade's PBX-facing listener
PBX_IP, PBX_PORT = "127.0.0.2", 5080            # SIPp UAS = the PBX
UAC_IP, UAC_PORT = "127.0.0.3", 5060            # SIPp UAC = the callers
UAC_MEDIA_PORT, UAS_MEDIA_PORT = 26000, 26100   # SIPp binds a media socket; keep it on its own IP
# --auth: the caller is a digest user (MD5, the one algorithm SIPp 3.6.1 answers).
AUTH_USER, AUTH_PASSWORD = "3001", "Bench-Caller-7-Quartz!"
AUTH_UAC_SCENARIO = REPO / "tests" / "system" / "scenarios" / "uac_auth.xml"

CLK_TCK = os.sysconf("SC_CLK_TCK")
PALISADE_T1_MS = 500  # default.toml; the drain period covers 64*T1


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------

class Proc:
    """A child in its own process group (session). Reaped with wait4 to get its rusage."""

    running: list["Proc"] = []

    def __init__(self, name: str, argv: list[str], log_path: Path, cwd: Path):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.popen.pid
        self.rc: Optional[int] = None
        self.rusage: Optional[resource.struct_rusage] = None
        self.started = time.time()
        Proc.running.append(self)

    def poll(self) -> Optional[int]:
        if self.rc is None:
            try:
                pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status, ru = self.pid, 0, None
            if pid:
                self.rc = os.waitstatus_to_exitcode(status)
                self.rusage = ru
                self.popen.returncode = self.rc
                self._log.close()
                if self in Proc.running:
                    Proc.running.remove(self)
        return self.rc

    def wait(self, timeout: float) -> Optional[int]:
        deadline = time.time() + timeout
        while self.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        return self.rc

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, first_signal: int = signal.SIGTERM, grace: float = 5.0) -> Optional[int]:
        """Stop the whole group: first_signal, then SIGKILL after grace seconds."""
        if self.poll() is None:
            self._signal_group(first_signal)
            if self.wait(grace) is None:
                self._signal_group(signal.SIGKILL)
                self.wait(5.0)
        # Children that outlived their leader (Kamailio's workers) go with the group.
        self._signal_group(signal.SIGKILL)
        return self.rc

    def cpu_seconds_of_sipp(self) -> float:
        if self.rusage is None:
            return 0.0
        return self.rusage.ru_utime + self.rusage.ru_stime

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def stop_all() -> None:
    for proc in list(reversed(Proc.running)):
        proc.stop(signal.SIGUSR1 if proc.name.startswith("sipp") else signal.SIGTERM, grace=3.0)


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------------------------
# /proc readers
# --------------------------------------------------------------------------------------------

def group_members(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is state (field 3); pgrp is field 5
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def proc_cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime (14), stime (15)
    return total / CLK_TCK


def proc_memory_kib(pids: list[int]) -> tuple[int, int]:
    """(sum of VmRSS, sum of PSS) in KiB; PSS is 0 when smaps_rollup is unavailable."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                        break
        except OSError:
            continue
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                        break
        except OSError:
            pass
    return rss, pss


def machine_busy_seconds() -> tuple[float, float]:
    """(busy CPU seconds over all cores, wall clock) from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    busy = sum(values[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / CLK_TCK, time.time()


def udp_bound(ip: str, port: int) -> bool:
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(ip), "little"), port)
    try:
        with open("/proc/net/udp") as f:
            next(f)
            return any(line.split()[1] == want for line in f)
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def free_tcp_port(ip: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def wait_for_quiet(max_wait: float, threshold: float, log: Callable[[str], None]) -> float:
    """Waits (up to max_wait s) until other processes use less than `threshold` cores.
    Returns the last measured load in cores."""
    deadline = time.time() + max_wait
    while True:
        b0, t0 = machine_busy_seconds()
        time.sleep(3.0)
        b1, t1 = machine_busy_seconds()
        load = (b1 - b0) / (t1 - t0)
        if load < threshold or time.time() >= deadline:
            if load >= threshold and max_wait > 0:
                log(f"  machine still busy ({load:.2f} cores used by other processes); running anyway")
            return load
        log(f"  machine busy ({load:.2f} cores used by other processes), waiting...")
        time.sleep(min(20.0, max(0.0, deadline - time.time())))


# --------------------------------------------------------------------------------------------
# SIPp
# --------------------------------------------------------------------------------------------

def sipp_binary() -> str:
    path = shutil.which("sipp")
    if not path:
        sys.exit("sipp not found: install SIPp 3.6 (Debian package sip-tester)")
    return path


def sipp_time_seconds(value: str) -> float:
    """SIPp's 'HH:MM:SS:uuuuuu' durations."""
    parts = value.strip().split(":")
    if len(parts) != 4:
        return 0.0
    h, m, s, us = (int(p) for p in parts)
    return h * 3600 + m * 60 + s + us / 1e6


def sipp_epoch(value: str) -> float:
    # "2024-01-01\t12:00:00.000000\t1704110400.000000"
    return float(value.split("\t")[-1])


def read_sipp_stats(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter=";"))
    except OSError:
        return []
    return [r for r in rows if r.get("CurrentTime")]


def count(row: dict, key: str) -> int:
    try:
        return int(row.get(key) or 0)
    except ValueError:
        return 0


def time_reached(rows: list[dict], key: str, target: int) -> Optional[float]:
    """Epoch time at which counter `key` reached `target`, interpolated between stat rows."""
    prev_t, prev_c = None, None
    for row in rows:
        t, c = sipp_epoch(row["CurrentTime"]), count(row, key)
        if c >= target:
            if prev_t is None or c == prev_c:
                return t
            return prev_t + (target - prev_c) / (c - prev_c) * (t - prev_t)
        prev_t, prev_c = t, c
    return None


def counter_at(rows: list[dict], key: str, when: float) -> float:
    """Counter `key` at epoch time `when`, interpolated."""
    prev_t, prev_c = None, 0.0
    for row in rows:
        t, c = sipp_epoch(row["CurrentTime"]), count(row, key)
        if t >= when:
            if prev_t is None or t == prev_t:
                return c
            return prev_c + (c - prev_c) * (when - prev_t) / (t - prev_t)
        prev_t, prev_c = t, c
    return prev_c


def read_sipp_counts(work: Path, scenario: Path, pid: int) -> dict[str, int]:
    """Last row of SIPp's per-message counts (-trace_counts): e.g. {'4_BYE_Recv': 1000, ...}."""
    path = work / f"{scenario.stem}_{pid}_counts.csv"
    rows = read_sipp_stats(path)
    if not rows:
        return {}
    return {k: count(rows[-1], k) for k in rows[-1] if k and k[0].isdigit()}


def counts_total(counts: dict[str, int], suffix: str) -> Optional[int]:
    """Sum of the per-message counters ending in `suffix` (e.g. '_BYE_Recv'); None if none exist."""
    keys = [k for k in counts if k.endswith(suffix)]
    return sum(counts[k] for k in keys) if keys else None


def start_uas(work: Path, tag: str, scenario: Path, calls: int, timeout_s: int, recv_timeout_ms: int) -> Proc:
    argv = [sipp_binary(), "-sf", str(scenario), "-i", PBX_IP, "-p", str(PBX_PORT),
            "-mi", PBX_IP, "-mp", str(UAS_MEDIA_PORT), "-m", str(calls), "-nostdin",
            "-timeout", f"{timeout_s}s", "-recv_timeout", str(recv_timeout_ms),
            "-buff_size", str(4 << 20), "-trace_stat", "-stf", str(work / f"{tag}-uas.csv"), "-fd", "1",
            "-trace_counts", "-trace_err", "-error_file", str(work / f"{tag}-uas.err"), "-max_log_size", "2000000"]
    proc = Proc("sipp-uas", argv, work / f"{tag}-uas.log", work)
    if not wait_until(lambda: udp_bound(PBX_IP, PBX_PORT) or proc.poll() is not None, 10):
        raise RuntimeError("SIPp UAS did not bind %s:%d" % (PBX_IP, PBX_PORT))
    if proc.poll() is not None:
        raise RuntimeError(f"SIPp UAS exited at once (rc {proc.rc}):\n{proc.log_tail()}")
    return proc


def start_uac(work: Path, tag: str, scenario: Path, rate: int, calls: int, timeout_s: int,
              recv_timeout_ms: int, limit: Optional[int] = None, extra: tuple = ()) -> Proc:
    argv = [sipp_binary(), f"{PUBLIC_IP}:{PUBLIC_PORT}", "-sf", str(scenario), "-i", UAC_IP, "-p", str(UAC_PORT),
            "-mi", UAC_IP, "-mp", str(UAC_MEDIA_PORT), "-r", str(rate), "-rp", "1000", "-m", str(calls),
            "-nostdin", "-timeout", f"{timeout_s}s", "-recv_timeout", str(recv_timeout_ms),
            "-buff_size", str(4 << 20), "-trace_stat", "-stf", str(work / f"{tag}-uac.csv"), "-fd", "1",
            "-trace_counts", "-trace_err", "-error_file", str(work / f"{tag}-uac.err"), "-max_log_size", "2000000"]
    if limit:
        argv += ["-l", str(limit)]
    argv += list(extra)
    return Proc("sipp-uac", argv, work / f"{tag}-uac.log", work)


# --------------------------------------------------------------------------------------------
# Systems under test
# --------------------------------------------------------------------------------------------

class System:
    name = ""
    memory_metric = ""  # "rss" or "pss"

    def __init__(self, work: Path):
        self.work = work
        self.proc: Optional[Proc] = None
        self.pids: list[int] = []

    def start(self, tag: str) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(signal.SIGTERM, grace=10.0)
            self.proc = None

    def refresh_pids(self) -> None:
        if self.proc:
            self.pids = group_members(self.proc.pid) or [self.proc.pid]

    def cpu(self) -> float:
        return proc_cpu_seconds(self.pids)

    def memory_kib(self) -> int:
        rss, pss = proc_memory_kib(self.pids)
        return pss if self.memory_metric == "pss" and pss else rss

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def active_calls(self) -> Optional[int]:
        return None

    def allocator_used_kib(self) -> Optional[int]:
        return None

    def log_tail(self) -> str:
        return self.proc.log_tail() if self.proc else ""


class Palisade(System):
    name = "Palisade"
    memory_metric = "rss"

    def __init__(self, work: Path, binary: Path, workers: int, auth: bool = False, anchor: bool = True,
                 fraud: bool = False):
        super().__init__(work)
        self.auth = auth
        self.anchor = anchor
        self.fraud = fraud
        if not anchor:
            self.name = "Palisade-no-anchoring"
        if fraud:
            self.name = "Palisade-fraud"
        # A private copy: a rebuild in the tree during the run must not change what is measured.
        self.binary = work / "palisade"
        shutil.copy2(binary, self.binary)
        self.workers = workers
        self.mgmt_port = 0

    def write_config(self) -> Path:
        self.mgmt_port = free_tcp_port()
        path = self.work / "palisade.toml"
        path.write_text(f"""# written by bench/signalling_bench.py
[general]
workers = {self.workers}
log_level = "warn"

[public]
address = "{PUBLIC_IP}"
udp_port = {PUBLIC_PORT}
tcp_port = {PUBLIC_PORT}

[pbx_side]
address = "{PBX_SIDE_IP}"
udp_port = {PBX_SIDE_PORT}
tcp_port = {PBX_SIDE_PORT}

[pbx]
host = "{PBX_IP}"
port = {PBX_PORT}
transport = "udp"
addresses = ["{PBX_IP}"]

{self._callers()}
[management]
address = "127.0.0.1"
port = {self.mgmt_port}

# Both listeners share 127.0.0.1, so an anchored call takes two port pairs: the range holds
# 20,000 pairs, enough for the hold test's concurrent calls.
[media]
anchor = {"true" if self.anchor else "false"}
port_min = 20000
port_max = 59999
{self._fraud()}""")
        return path

    def _fraud(self) -> str:
        """palisade-fraud: every toll-fraud stage with work to do on each call: a 50,000-prefix rate
        table, the caller's per-minute, international-per-hour and spend limits in the fraud store,
        anomaly detection on every international attempt, and a CDR line per call."""
        if not self.fraud:
            return ""
        rates = self.work / "rates.txt"
        with rates.open("w") as f:
            f.write("+44 0.0120 United Kingdom\n")
            for i in range(1, 50000):
                f.write(f"+{200 + i} 0.{i % 10000:04d}\n")
        return f"""
[fraud]
rate_file = "{rates}"
cdr_file = "{self.work / 'cdr.jsonl'}"
"""


    def _trunk_limits(self) -> str:
        if not self.fraud:
            return ""
        return """max_calls_per_minute = 1000000
max_international_per_hour = 1000000
max_spend_24h = 1000000.0
"""

    def _callers(self) -> str:
        if not self.auth:
            return f"""# The SIPp caller is a trunk (the carrier path): anything else is the internet.
[[trunks]]
name = "callers"
addresses = ["{UAC_IP}"]
host = "{UAC_IP}"
port = {UAC_PORT}
{self._trunk_limits()}"""
        return f"""# --auth: the SIPp caller is a digest user; the one trunk is an address nobody uses.
[[trunks]]
name = "carrier"
addresses = ["127.0.0.4"]
host = "127.0.0.4"
port = 5060

[auth]
algorithms = ["MD5"]

[[users]]
name = "{AUTH_USER}"
password = "{AUTH_PASSWORD}"
sources = ["{UAC_IP}/32"]
# One SIPp stands for thousands of phones: no per-user call limits, and internet flood limits
# far above the load (the flood defence itself is measured by bench/flood_bench.py).
max_calls = 0
max_cps = 0

[flood.internet]
invite_per_s = 100000
register_per_s = 100000
other_per_s = 100000
in_dialog_per_s = 100000
"""

    def start(self, tag: str) -> None:
        config = self.write_config()
        self.proc = Proc("palisade", [str(self.binary), "--config", str(config)],
                         self.work / f"{tag}-palisade.log", self.work)
        if not wait_until(lambda: self._health() or self.proc.poll() is not None, 10, 0.1) or not self.alive():
            raise RuntimeError(f"Palisade did not start (rc {self.proc.poll()}):\n{self.proc.log_tail()}")
        if not wait_until(lambda: udp_bound(PUBLIC_IP, PUBLIC_PORT), 5):
            raise RuntimeError("Palisade is not listening on %s:%d/udp" % (PUBLIC_IP, PUBLIC_PORT))
        self.refresh_pids()

    def _get(self, path: str) -> Optional[str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.mgmt_port}{path}", timeout=2) as r:
                return r.read().decode()
        except OSError:
            return None

    def _health(self) -> bool:
        return self._get("/health") is not None

    def metrics(self) -> dict[str, float]:
        text = self._get("/metrics") or ""
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                try:
                    out[key] = float(value)
                except ValueError:
                    pass
        return out

    def active_calls(self) -> Optional[int]:
        value = self.metrics().get("palisade_active_calls")
        return None if value is None else int(value)


class Kamailio(System):
    name = "Kamailio"
    memory_metric = "pss"

    def __init__(self, work: Path, reference: Path, auth: bool = False):
        super().__init__(work)
        self.binary = shutil.which("kamailio") or (
            "/usr/sbin/kamailio" if os.access("/usr/sbin/kamailio", os.X_OK) else None)
        if not self.binary:
            sys.exit("kamailio not found: install Kamailio 5.6 (apt-get install -y kamailio) "
                     "or run with --systems palisade")
        self.kamcmd = shutil.which("kamcmd") or ("/usr/sbin/kamcmd" if os.access("/usr/sbin/kamcmd", os.X_OK) else None)
        self.cfg = work / "kamailio.cfg"
        shutil.copy2(reference / "kamailio.cfg", self.cfg)
        if auth:
            self.cfg.write_text(self.with_digest_auth(self.cfg.read_text()))
        self.dbtext = work / "dbtext"
        if (reference / "dbtext").is_dir():
            shutil.copytree(reference / "dbtext", self.dbtext, dirs_exist_ok=True)
        else:
            self.dbtext.mkdir(exist_ok=True)
        self.ctl = work / "kamailio.ctl"

    @staticmethod
    def with_digest_auth(cfg: str) -> str:
        """The reference config with the auth module challenging every initial INVITE (qop=auth,
        the password of AUTH_USER, realm = From host), as a Kamailio admin would write it."""
        load = 'loadmodule "pv.so"\n'
        initial = "\t# initial requests: only INVITE dialogs go to the PBX\n"
        if load not in cfg or initial not in cfg:
            raise RuntimeError("kamailio.cfg does not have the shape --auth edits (pv.so, initial requests)")
        cfg = cfg.replace(load, load + 'loadmodule "auth.so"\nmodparam("auth", "secret", "bench-secret-0123456789")\n', 1)
        check = (f'\tif (is_method("INVITE")) {{\n'
                 f'\t\tif (!pv_proxy_authenticate("$fd", "{AUTH_PASSWORD}", "0")) {{\n'
                 f'\t\t\tproxy_challenge("$fd", "1");\n\t\t\texit;\n\t\t}}\n'
                 f'\t\tconsume_credentials();\n\t}}\n\n')
        return cfg.replace(initial, check + initial, 1)

    def version(self) -> str:
        out = subprocess.run([self.binary, "-v"], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0] if out else "?"

    def start(self, tag: str) -> None:
        if self.ctl.exists():
            self.ctl.unlink()
        argv = [self.binary, "-f", str(self.cfg), "-DD", "-E", "-m", "1024", "-M", "16",
                "-A", f'DBURL="text://{self.dbtext}"', "-A", f'CTLSOCK="unix:{self.ctl}"']
        self.proc = Proc("kamailio", argv, self.work / f"{tag}-kamailio.log", self.work)
        ok = wait_until(lambda: (udp_bound(PUBLIC_IP, PUBLIC_PORT) and self.ctl.exists())
                        or self.proc.poll() is not None, 30, 0.1)
        if not ok or not self.alive():
            raise RuntimeError(f"Kamailio did not start (rc {self.proc.poll()}):\n{self.proc.log_tail()}")
        time.sleep(1.0)  # let every child finish its start-up (shm_force_alloc touches the pool)
        self.refresh_pids()

    def shmmem(self) -> dict[str, int]:
        if not self.kamcmd or not self.ctl.exists():
            return {}
        try:
            out = subprocess.run([self.kamcmd, "-s", f"unix:{self.ctl}", "core.shmmem"],
                                 capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            return {}
        return {k: int(v) for k, v in re.findall(r"(\w+):\s*(\d+)", out)}

    def allocator_used_kib(self) -> Optional[int]:
        value = self.shmmem().get("real_used")
        return None if value is None else value // 1024

    def log_tail(self) -> str:
        # Start-up chatter is not interesting: keep warnings and errors only.
        text = self.proc.log_tail(200) if self.proc else ""
        return "\n".join(l for l in text.splitlines() if re.search(r"WARN|ERROR|CRIT|BUG|ALERT", l))


class KamailioRtpengine(Kamailio):
    """The reference Kamailio driving rtpengine (userspace forwarding) through its rtpengine
    module, as a Kamailio operator anchors media: rtpengine_manage() on the INVITE, on replies
    with SDP and on the BYE. CPU and memory are Kamailio's and rtpengine's together."""
    name = "Kamailio+rtpengine"
    NG = "127.0.0.1:22222"

    def __init__(self, work: Path, reference: Path, auth: bool = False):
        super().__init__(work, reference, auth)
        self.rtpengine_bin = shutil.which("rtpengine")
        if not self.rtpengine_bin:
            sys.exit("rtpengine not found: apt-get install -y --no-install-recommends rtpengine-daemon")
        self.rtpengine: Optional[Proc] = None
        self.cfg.write_text(self.with_rtpengine(self.cfg.read_text()))

    @classmethod
    def with_rtpengine(cls, cfg: str) -> str:
        load = 'loadmodule "textops.so"\n'
        initial = "\t\troute(RELAY);\n\t\texit;\n\t}\n\n\tsl_send_reply(\"405\""
        in_dialog = "\t\tif (loose_route()) {\n\t\t\troute(RELAY);"
        if load not in cfg or initial not in cfg or in_dialog not in cfg:
            raise RuntimeError("kamailio.cfg does not have the shape the rtpengine variant edits")
        cfg = cfg.replace(load, load + f'loadmodule "rtpengine.so"\nmodparam("rtpengine", "rtpengine_sock", "udp:{cls.NG}")\n', 1)
        cfg = cfg.replace(initial, "\t\trtpengine_manage();\n\t\tt_on_reply(\"MEDIA\");\n" + initial, 1)
        cfg = cfg.replace(in_dialog, "\t\tif (loose_route()) {\n\t\t\tif (is_method(\"BYE\")) rtpengine_manage();\n\t\t\troute(RELAY);", 1)
        return cfg + '\nonreply_route[MEDIA] {\n\tif (has_body("application/sdp")) rtpengine_manage();\n}\n'

    def start(self, tag: str) -> None:
        ng_ip, ng_port = self.NG.split(":")
        argv = [self.rtpengine_bin, "--foreground", "--log-stderr", "--log-level=4", "--interface=127.0.0.1",
                f"--listen-ng={self.NG}", "--port-min=30000", "--port-max=60000", "--table=-1",
                "--num-threads=2", "--delete-delay=0"]
        self.rtpengine = Proc("rtpengine", argv, self.work / f"{tag}-rtpengine.log", self.work)
        time.sleep(1.0)
        if self.rtpengine.poll() is not None:
            raise RuntimeError(f"rtpengine did not start:\n{self.rtpengine.log_tail()}")
        super().start(tag)

    def refresh_pids(self) -> None:
        super().refresh_pids()
        if self.rtpengine and self.rtpengine.poll() is None:
            self.pids = self.pids + [self.rtpengine.pid]

    def stop(self) -> None:
        super().stop()
        if self.rtpengine:
            self.rtpengine.stop(signal.SIGTERM, grace=10.0)
            self.rtpengine = None

    def alive(self) -> bool:
        return super().alive() and self.rtpengine is not None and self.rtpengine.poll() is None


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------

@dataclass
class Step:
    system: str
    kind: str          # ladder, confirm, hold
    rate: int
    calls: int
    duration: float
    passed: bool = False
    reasons: list[str] = field(default_factory=list)
    uac: dict = field(default_factory=dict)
    uas: dict = field(default_factory=dict)
    uac_counts: dict = field(default_factory=dict)
    uas_counts: dict = field(default_factory=dict)
    uas_left_open: int = 0         # UAS calls still waiting when stopped (an ACK overtaken by the BYE)
    achieved_rate: float = 0.0
    rtd_ms: float = 0.0
    cpu_s: float = 0.0             # daemon CPU over [UAC start, UAC end + drain]
    cpu_window_s: float = 0.0      # daemon CPU while calls were being placed
    calls_window: float = 0.0      # calls started in that window
    window_wall: float = 0.0       # length of that window (s)
    wall_s: float = 0.0
    drain_s: float = 0.0
    sipp_cpu_s: float = 0.0
    other_cores: float = 0.0       # busy cores not used by the daemon or SIPp
    idle_mem_kib: int = 0
    peak_mem_kib: int = 0
    plateau_mem_kib: int = 0
    idle_alloc_kib: Optional[int] = None
    plateau_alloc_kib: Optional[int] = None
    peak_alloc_kib: Optional[int] = None
    active_calls_seen: Optional[int] = None
    daemon_log: str = ""
    error_sample: str = ""

    @property
    def ms_per_call(self) -> float:
        ok = self.uac.get("SuccessfulCall(C)", 0)
        return 1000.0 * self.cpu_s / ok if ok else 0.0

    @property
    def window_ms_per_call(self) -> float:
        return 1000.0 * self.cpu_window_s / self.calls_window if self.calls_window else 0.0


UAC_KEYS = ["OutgoingCall(C)", "SuccessfulCall(C)", "FailedCall(C)", "FailedUnexpectedMessage(C)",
            "FailedMaxUDPRetrans(C)", "FailedTimeoutOnRecv(C)", "FailedCallRejected(C)",
            "FailedCannotSendMessage(C)", "Retransmissions(C)", "OutOfCallMsgs(C)", "DeadCallMsgs(C)",
            "WatchdogMajor(C)", "WatchdogMinor(C)", "CurrentCall"]
UAS_KEYS = ["IncomingCall(C)", "SuccessfulCall(C)", "FailedCall(C)", "FailedUnexpectedMessage(C)",
            "FailedMaxUDPRetrans(C)", "FailedTimeoutOnRecv(C)", "Retransmissions(C)", "OutOfCallMsgs(C)",
            "DeadCallMsgs(C)", "CurrentCall"]


def summarize_sipp(rows: list[dict], keys: list[str]) -> dict:
    if not rows:
        return {}
    last = rows[-1]
    return {k: count(last, k) for k in keys}


def error_sample(path: Path, n: int = 6) -> str:
    """The first few lines of a SIPp error log that say why a call was aborted (not the harmless
    'Dead call' notes about retransmissions that arrive after a call ended)."""
    picked = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if re.search(r"abort|unexpected|timeout|failed", line, re.IGNORECASE) and "Dead call" not in line:
                    picked.append(line.rstrip())
                    if len(picked) >= n:
                        break
    except OSError:
        pass
    return "\n".join(picked)


class Runner:
    def __init__(self, args, work: Path, log: Callable[[str], None]):
        self.args = args
        self.work = work
        self.log = log
        self.uac_scenario = AUTH_UAC_SCENARIO if args.auth else args.reference / "uac_rr.xml"
        self.uac_extra = ("-au", AUTH_USER, "-ap", AUTH_PASSWORD) if args.auth else ()
        if args.dial:
            self.uac_extra += ("-s", args.dial)
        self.uas_scenario = args.reference / "uas_rr.xml"
        self.counter = 0

    def _tag(self, system: System, kind: str, rate: int) -> str:
        self.counter += 1
        return f"{self.counter:02d}-{system.name.lower()}-{kind}-{rate}"

    def _check_ports_free(self) -> None:
        ports = ((PUBLIC_IP, PUBLIC_PORT), (PBX_SIDE_IP, PBX_SIDE_PORT), (PBX_IP, PBX_PORT), (UAC_IP, UAC_PORT))
        if not wait_until(lambda: not any(udp_bound(ip, port) for ip, port in ports), 15, 0.2):
            busy = [f"{ip}:{port}" for ip, port in ports if udp_bound(ip, port)]
            raise RuntimeError("UDP port(s) in use by another process: " + ", ".join(busy))

    def load_step(self, system: System, rate: int, kind: str, drain: float) -> Step:
        args = self.args
        calls = int(rate * args.duration)
        step = Step(system.name, kind, rate, calls, args.duration, drain_s=drain)
        if args.quiet_wait > 0:
            wait_for_quiet(args.quiet_wait, args.quiet_threshold, self.log)
        self._check_ports_free()
        tag = self._tag(system, kind, rate)
        uac_timeout = int(args.duration * 1.5) + 40
        uas = uac = None
        try:
            system.start(tag)
            time.sleep(0.5)
            step.idle_mem_kib = system.memory_kib()
            step.idle_alloc_kib = system.allocator_used_kib()
            uas = start_uas(self.work, tag, self.uas_scenario, calls, uac_timeout + 30,
                            int((uac_timeout + 30) * 1000))
            cpu0 = system.cpu()
            busy0, t0 = machine_busy_seconds()
            uac = start_uac(self.work, tag, self.uac_scenario, rate, calls, uac_timeout, 32000,
                            extra=self.uac_extra)
            samples = []  # (time, daemon cpu)
            peak = step.idle_mem_kib
            deadline = t0 + uac_timeout + 15
            next_sample = time.time()
            while uac.poll() is None and time.time() < deadline:
                now = time.time()
                if now >= next_sample:
                    samples.append((now, system.cpu()))
                    peak = max(peak, system.memory_kib())
                    next_sample = now + 1.0
                if not system.alive():
                    step.reasons.append(f"{system.name} exited during the step (rc {system.proc.rc})")
                    break
                time.sleep(0.05)
            if uac.poll() is None:
                step.reasons.append("SIPp UAC did not finish in time: stopped")
                uac.stop(signal.SIGUSR1, grace=5)
            uac_end = time.time()
            samples.append((uac_end, system.cpu()))
            peak = max(peak, system.memory_kib())
            self._finish_uas(step, uas, tag)
            # Drain: let the daemon release call state (timers) so that its cost is counted.
            drain_end = uac_end + drain
            while time.time() < drain_end and system.alive():
                peak = max(peak, system.memory_kib())
                time.sleep(min(1.0, max(0.0, drain_end - time.time())))
            cpu1 = system.cpu()
            busy1, t1 = machine_busy_seconds()
            step.peak_mem_kib = peak
            if isinstance(system, Kamailio):
                shm = system.shmmem()
                if "max_used" in shm:
                    step.peak_alloc_kib = shm["max_used"] // 1024
            step.cpu_s = cpu1 - cpu0
            step.wall_s = uac_end - t0
            step.sipp_cpu_s = uac.cpu_seconds_of_sipp() + uas.cpu_seconds_of_sipp()
            step.other_cores = max(0.0, ((busy1 - busy0) - step.cpu_s - step.sipp_cpu_s) / (t1 - t0))
            if not system.alive():
                step.reasons.append(f"{system.name} is not running after the step (rc {system.proc.rc})")

            uac_rows = read_sipp_stats(self.work / f"{tag}-uac.csv")
            step.uac = summarize_sipp(uac_rows, UAC_KEYS)
            step.uac_counts = read_sipp_counts(self.work, self.uac_scenario, uac.pid)
            if uac_rows:
                start_epoch = sipp_epoch(uac_rows[0]["StartTime"])
                t_last = time_reached(uac_rows, "OutgoingCall(C)", calls)
                if t_last and t_last > start_epoch:
                    step.achieved_rate = calls / (t_last - start_epoch)
                step.rtd_ms = 1000 * sipp_time_seconds(uac_rows[-1].get("ResponseTime1(C)", ""))
                # Steady-state window: from 2 s after the start to the last call placed.
                w0 = start_epoch + min(2.0, args.duration / 4)
                w1 = t_last or uac_end
                inside = [s for s in samples if w0 <= s[0] <= w1]
                if len(inside) >= 2:
                    step.cpu_window_s = inside[-1][1] - inside[0][1]
                    step.window_wall = inside[-1][0] - inside[0][0]
                    step.calls_window = (counter_at(uac_rows, "OutgoingCall(C)", inside[-1][0])
                                         - counter_at(uac_rows, "OutgoingCall(C)", inside[0][0]))
            else:
                step.reasons.append("no SIPp UAC statistics")
            self._judge_with_evidence(step, uac, system, tag)
        finally:
            self._stop_all(system, uac, uas)
        return step

    def _judge_with_evidence(self, step: Step, uac: Proc, system, tag: str) -> None:
        """Judges the step; a failed one keeps the daemon's log tail and SIPp's first errors."""
        self._judge(step, uac)
        if not step.passed:
            step.daemon_log = system.log_tail()
            step.error_sample = error_sample(self.work / f"{tag}-uac.err")

    @staticmethod
    def _stop_all(system, *procs) -> None:
        for proc in procs:
            if proc is not None:
                proc.stop(signal.SIGUSR1, grace=5)
        system.stop()

    def _finish_uas(self, step: Step, uas: Proc, tag: str) -> None:
        """Gives the UAS its 4 s timewait, then stops it and reads its statistics.

        A UAS call whose ACK arrives after the BYE (a proxy with parallel workers can reorder
        them) is matched by uas_rr.xml's optional="global" ACK, which moves SIPp back to waiting
        for a BYE: the call stays open although every message arrived. Those calls are counted
        (uas_left_open) and judged by the per-message counts instead."""
        if uas.wait(8.0) is None:
            time.sleep(1.2)  # one more -fd 1 statistics row
            uas.stop(signal.SIGUSR1, grace=3)
        step.uas = summarize_sipp(read_sipp_stats(self.work / f"{tag}-uas.csv"), UAS_KEYS)
        step.uas_counts = read_sipp_counts(self.work, self.uas_scenario, uas.pid)
        step.uas_left_open = step.uas.get("CurrentCall", 0) if step.uas else 0

    def _judge(self, step: Step, uac: Proc) -> None:
        u, s = step.uac, step.uas
        if u:
            if u["FailedCall(C)"]:
                step.reasons.append(f"UAC failed calls: {u['FailedCall(C)']} (unexpected msg "
                                    f"{u['FailedUnexpectedMessage(C)']}, max retrans {u['FailedMaxUDPRetrans(C)']}, "
                                    f"recv timeout {u['FailedTimeoutOnRecv(C)']}, rejected {u['FailedCallRejected(C)']})")
            if u["OutgoingCall(C)"] != step.calls:
                step.reasons.append(f"UAC started {u['OutgoingCall(C)']} of {step.calls} calls")
            if u["SuccessfulCall(C)"] != u["OutgoingCall(C)"]:
                step.reasons.append(f"UAC completed {u['SuccessfulCall(C)']} of {u['OutgoingCall(C)']} started calls")
        if s:
            if s["FailedCall(C)"]:
                step.reasons.append(f"UAS (PBX) failed calls: {s['FailedCall(C)']} (unexpected msg "
                                    f"{s['FailedUnexpectedMessage(C)']}, recv timeout {s['FailedTimeoutOnRecv(C)']})")
            if s["IncomingCall(C)"] != step.calls:
                step.reasons.append(f"UAS (PBX) received {s['IncomingCall(C)']} of {step.calls} calls")
            for what in ("ACK", "BYE"):
                got = counts_total(step.uas_counts, f"_{what}_Recv")
                if got is None:
                    if step.uas_left_open:
                        step.reasons.append(f"UAS (PBX) left {step.uas_left_open} calls open (no per-message counts)")
                    break
                if got != step.calls:
                    step.reasons.append(f"UAS (PBX) received {got} {what}s for {step.calls} calls")
        else:
            step.reasons.append("no SIPp UAS statistics")
        if uac.rc not in (0, None) and not step.reasons:
            step.reasons.append(f"SIPp UAC exit code {uac.rc}")
        if step.kind != "hold" and step.achieved_rate and step.achieved_rate < 0.95 * step.rate:
            step.reasons.append(f"SIPp generated only {step.achieved_rate:.0f} calls/s")
        step.passed = not step.reasons

    def hold_test(self, system: System) -> Step:
        args = self.args
        calls, rate = args.hold_calls, args.hold_rate
        ramp = calls / rate
        pause_ms = int((ramp + args.hold_plateau) * 1000)
        scenario = self.work / "uac_hold.xml"
        text = self.uac_scenario.read_text()
        if "<pause/>" not in text:
            raise RuntimeError(f"{self.uac_scenario} has no <pause/> to lengthen")
        scenario.write_text(text.replace("<pause/>", f'<pause milliseconds="{pause_ms}"/>', 1))
        step = Step(system.name, "hold", rate, calls, ramp)
        if args.quiet_wait > 0:
            wait_for_quiet(args.quiet_wait, args.quiet_threshold, self.log)
        self._check_ports_free()
        tag = self._tag(system, "hold", calls)
        timeout = int(ramp + pause_ms / 1000 + ramp) + 60
        uas = uac = None
        try:
            system.start(tag)
            time.sleep(1.0)
            step.idle_mem_kib = system.memory_kib()
            step.idle_alloc_kib = system.allocator_used_kib()
            uas = start_uas(self.work, tag, self.uas_scenario, calls, timeout + 20, (timeout + 20) * 1000)
            t0 = time.time()
            uac = start_uac(self.work, tag, scenario, rate, calls, timeout, pause_ms + 32000, limit=calls + 100)
            # The plateau: every call set up (ramp + margin) until the BYEs start (pause after the first
            # call). Memory is read in its last quarter, when the set-up transactions have ended too
            # (Palisade keeps a completed INVITE transaction 64*T1 = 32 s, Kamailio's tm 5 s), so
            # what is left is the state of confirmed calls.
            plateau = (t0 + ramp + min(2.0, args.hold_plateau / 4), t0 + pause_ms / 1000 - 0.5)
            settled = plateau[1] - (plateau[1] - plateau[0]) / 4
            plateau_mem, plateau_alloc, active = [], [], []
            peak = step.idle_mem_kib
            deadline = t0 + timeout + 15
            while uac.poll() is None and time.time() < deadline and system.alive():
                now = time.time()
                mem = system.memory_kib()
                peak = max(peak, mem)
                if settled <= now <= plateau[1]:
                    plateau_mem.append(mem)
                    alloc = system.allocator_used_kib()
                    if alloc is not None:
                        plateau_alloc.append(alloc)
                if plateau[0] <= now <= plateau[1]:
                    calls_now = system.active_calls()
                    if calls_now is not None:
                        active.append(calls_now)
                time.sleep(0.5)
            if uac.poll() is None:
                step.reasons.append("hold test: SIPp UAC did not finish in time or the daemon died")
                uac.stop(signal.SIGUSR1, grace=5)
            self._finish_uas(step, uas, tag)
            step.peak_mem_kib = peak
            step.plateau_mem_kib = int(statistics.median(plateau_mem)) if plateau_mem else 0
            step.plateau_alloc_kib = int(statistics.median(plateau_alloc)) if plateau_alloc else None
            step.active_calls_seen = min(active) if active else None
            step.uac = summarize_sipp(read_sipp_stats(self.work / f"{tag}-uac.csv"), UAC_KEYS)
            step.uac_counts = read_sipp_counts(self.work, scenario, uac.pid)
            if not plateau_mem:
                step.reasons.append("no memory sample on the plateau")
            self._judge_with_evidence(step, uac, system, tag)
        finally:
            self._stop_all(system, uac, uas)
        return step


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------

def describe_step(step: Step) -> str:
    u = step.uac
    cores = step.cpu_window_s / step.window_wall if step.window_wall else 0.0
    text = (f"  {step.kind:<7} {step.rate:>5}/s  {'PASS' if step.passed else 'FAIL'}  "
            f"calls {u.get('SuccessfulCall(C)', 0)}/{step.calls} failed {u.get('FailedCall(C)', 0)} "
            f"retrans {u.get('Retransmissions(C)', 0)}+{step.uas.get('Retransmissions(C)', 0)}  "
            f"gen {step.achieved_rate:.0f}/s  rtd {step.rtd_ms:.1f} ms  "
            f"cpu {1000 * step.cpu_s / max(1, u.get('SuccessfulCall(C)', 0)):.3f} ms/call "
            f"({cores:.2f} cores)  sipp {step.sipp_cpu_s / max(1e-9, step.wall_s):.2f} cores  "
            f"others {step.other_cores:.2f} cores")
    if step.uas_left_open:
        text += f"\n      (UAS calls still open when it was stopped: {step.uas_left_open})"
    if not step.passed:
        for side, counts in (("UAC", step.uac_counts), ("UAS", step.uas_counts)):
            odd = {k: v for k, v in counts.items()
                   if v and (k.endswith("_Timeout") or k.endswith("_Unexp") or k.endswith("_Retrans"))}
            if odd:
                text += f"\n      {side} per-message: " + ", ".join(f"{k} {v}" for k, v in odd.items())
    for reason in step.reasons:
        text += f"\n      - {reason}"
    return text


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def ratio(a: Optional[float], b: Optional[float], fmt: str = "{:.2f}") -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return fmt.format(a / b)


def print_table(rows: list[list[str]], out=sys.stdout) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(row)), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke check: 5 s steps, ladder 500,1000, 1,000-call hold test, no confirmation")
    p.add_argument("--workers", type=int, default=2, help="Palisade [general] workers (default 2)")
    p.add_argument("--steps", help="comma-separated call rates of the ladder "
                   "(default 500,1000,...,8000; --quick: 500,1000)")
    p.add_argument("--duration", type=float, help="seconds per step (default 20; --quick: 5)")
    p.add_argument("--systems", default="palisade,kamailio",
                   help="comma-separated, of palisade, palisade-noanchor (media anchoring off), palisade-fraud (every "
                        "toll-fraud limit on, a 50,000-prefix rate table, CDRs), kamailio, "
                        "kamailio-rtpengine (Kamailio driving rtpengine); default palisade,kamailio")
    p.add_argument("--retries", type=int, default=None,
                   help="repeat a failing ladder step this many times before stopping (default 1; --quick: 0)")
    p.add_argument("--confirm", type=int, default=None,
                   help="confirmation runs at the best rate, used for the CPU figures (default 1; --quick: 0)")
    p.add_argument("--drain", type=float, default=None,
                   help="seconds the daemon keeps running after a confirmation run so that call "
                        "state release is counted (default 64*T1+2 = 34; --quick: 2)")
    p.add_argument("--hold-calls", type=int, default=None, help="concurrent calls in the hold test (default 5000)")
    p.add_argument("--hold-rate", type=int, default=500, help="set-up rate of the hold test (default 500/s)")
    p.add_argument("--hold-plateau", type=float, default=None, help="seconds all hold calls stay up (default 45: longer than 64*T1, so that "
                        "the set-up transactions are gone when memory is read)")
    p.add_argument("--no-hold", action="store_true", help="skip the hold (memory) test")
    p.add_argument("--quiet-wait", type=float, default=None,
                   help="before each run, wait up to this many seconds for other processes to go "
                        "below --quiet-threshold cores (default 120; --quick: 0)")
    p.add_argument("--quiet-threshold", type=float, default=0.3)
    p.add_argument("--palisade", type=Path, default=REPO / "build" / "palisade", help="Palisade binary")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                   help="folder with kamailio.cfg, uac_rr.xml, uas_rr.xml, dbtext/")
    p.add_argument("--json", type=Path, help="also write every step's result as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, SIPp statistics)")
    p.add_argument("--dial", help="the number every call dials (SIPp -s; default: SIPp's 'service', or "
                                  "+442079460958 when palisade-fraud is measured, for every system of the run)")
    p.add_argument("--auth", action="store_true",
                   help="the caller is a digest user: INVITE, 407, ACK, INVITE with credentials (MD5, qop=auth); "
                        "Kamailio challenges with its auth module; implies --no-hold")
    a = p.parse_args()
    q = a.quick
    a.steps = [int(s) for s in (a.steps or ("500,1000" if q else ",".join(str(r) for r in range(500, 8001, 500)))).split(",")]
    a.duration = a.duration or (5.0 if q else 20.0)
    a.retries = a.retries if a.retries is not None else (0 if q else 1)
    a.confirm = a.confirm if a.confirm is not None else (0 if q else 1)
    a.drain = a.drain if a.drain is not None else (2.0 if q else 64 * PALISADE_T1_MS / 1000 + 2)
    a.hold_calls = a.hold_calls or (1000 if q else 5000)
    a.hold_plateau = a.hold_plateau if a.hold_plateau is not None else (6.0 if q else 45.0)
    a.quiet_wait = a.quiet_wait if a.quiet_wait is not None else (0.0 if q else 120.0)
    a.no_hold = a.no_hold or a.auth
    a.systems = [s.strip().lower() for s in a.systems.split(",") if s.strip()]
    for s in a.systems:
        if s not in ("palisade", "palisade-noanchor", "palisade-fraud", "kamailio", "kamailio-rtpengine"):
            p.error(f"unknown system {s}")
    if "palisade-fraud" in a.systems and not a.dial:
        a.dial = "+442079460958"  # international and rated: the fraud stages' heaviest path
    return a


def raise_fd_limit(want: int = 65536) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+local changes" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.signal(signal.SIGHUP, _raise_exit)

    def log(msg: str) -> None:
        print(msg, flush=True)

    uses_kamailio = any(n.startswith("kamailio") for n in args.systems)
    for name in ("uac_rr.xml", "uas_rr.xml") + (("kamailio.cfg",) if uses_kamailio else ()):
        if not (args.reference / name).is_file():
            sys.exit(f"missing {args.reference / name} (set --reference)")
    if any(n.startswith("palisade") for n in args.systems) and not os.access(args.palisade, os.X_OK):
        sys.exit(f"{args.palisade} not found: cmake --preset release && cmake --build build -j2 --target palisade")
    sipp_binary()
    fds = raise_fd_limit()
    if fds < 16384:
        log(f"warning: only {fds} file descriptors allowed; SIPp may run out of sockets")

    work = Path(tempfile.mkdtemp(prefix="palisade-bench-"))
    results: dict[str, dict] = {}
    all_steps: list[Step] = []
    try:
        systems: list[System] = []
        for name in args.systems:
            if name.startswith("palisade"):
                systems.append(Palisade(work, args.palisade, args.workers, args.auth,
                                        anchor=name != "palisade-noanchor", fraud=name == "palisade-fraud"))
            elif name == "kamailio-rtpengine":
                systems.append(KamailioRtpengine(work, args.reference, args.auth))
            else:
                systems.append(Kamailio(work, args.reference, args.auth))
        started = datetime.datetime.now()
        revision = git_revision()  # the tree the copied binary was taken from
        log(f"signalling benchmark {started:%Y-%m-%d %H:%M}  host {platform.node()}  cores {os.cpu_count()}  "
            f"Palisade {revision} ({args.workers} workers)  steps {args.steps}  {args.duration:g} s per step")
        if args.auth:
            log(f"calls: digest-authenticated ({AUTH_UAC_SCENARIO.name}, MD5, qop=auth)")
        log(f"work folder {work}")
        runner = Runner(args, work, log)
        for system in systems:
            log(f"\n== {system.name}" + (f" ({system.version()})" if isinstance(system, Kamailio) else ""))
            best: Optional[Step] = None
            ladder: list[Step] = []
            for rate in args.steps:
                step = None
                for attempt in range(args.retries + 1):
                    step = runner.load_step(system, rate, "ladder", drain=1.0)
                    all_steps.append(step)
                    log(describe_step(step))
                    if step.passed:
                        break
                ladder.append(step)
                if not step.passed:
                    break
                best = step
            confirm: list[Step] = []
            if best and args.confirm:
                candidates = [s.rate for s in ladder if s.passed][::-1]
                for rate in candidates:
                    runs = []
                    for _ in range(args.confirm):
                        step = runner.load_step(system, rate, "confirm", drain=args.drain)
                        all_steps.append(step)
                        log(describe_step(step))
                        runs.append(step)
                        if not step.passed:
                            break
                    if all(s.passed for s in runs):
                        confirm = runs
                        best = next(s for s in ladder if s.rate == rate)
                        break
                    log(f"  {rate}/s not confirmed; trying the next lower rate")
                else:
                    best = None
            hold = None
            if not args.no_hold:
                hold = runner.hold_test(system)
                all_steps.append(hold)
                msg = (f"  hold    {hold.calls} calls  {'PASS' if hold.passed else 'FAIL'}  idle {mib(hold.idle_mem_kib)} MiB"
                       f"  plateau {mib(hold.plateau_mem_kib)} MiB  peak {mib(hold.peak_mem_kib)} MiB ({system.memory_metric})")
                if hold.active_calls_seen is not None:
                    msg += f"  active calls {hold.active_calls_seen}"
                if hold.plateau_alloc_kib is not None and hold.idle_alloc_kib is not None:
                    msg += f"  shm used {mib(hold.idle_alloc_kib)} -> {mib(hold.plateau_alloc_kib)} MiB"
                for reason in hold.reasons:
                    msg += f"\n      - {reason}"
                log(msg)
            cost_steps = confirm or ([best] if best else [])
            res = {"sustained_rate": best.rate if best else 0, "ladder": ladder, "confirm": confirm,
                   "hold": hold, "memory_metric": system.memory_metric}
            if cost_steps:
                cpu = sum(s.cpu_s for s in cost_steps)
                ok = sum(s.uac.get("SuccessfulCall(C)", 0) for s in cost_steps)
                res["ms_per_call"] = 1000 * cpu / ok if ok else None
                res["cost_source"] = "confirm" if confirm else "ladder"
            if hold and hold.passed and hold.plateau_mem_kib:
                res["mem_kib_per_1000"] = (hold.plateau_mem_kib - hold.idle_mem_kib) * 1000 / hold.calls
                res["total_kib_per_1000"] = res["mem_kib_per_1000"]
                if hold.plateau_alloc_kib is not None and hold.idle_alloc_kib is not None:
                    res["alloc_kib_per_1000"] = (hold.plateau_alloc_kib - hold.idle_alloc_kib) * 1000 / hold.calls
                    # Kamailio's shared pool is resident from the start (shm_force_alloc), so PSS does
                    # not see what calls take from it: add the allocator's count.
                    res["total_kib_per_1000"] += res["alloc_kib_per_1000"]
            results[system.name] = res
            res["ladder_exhausted"] = bool(ladder) and all(s.passed for s in ladder) and len(ladder) == len(args.steps)
            failed = [s for s in ladder + confirm + ([hold] if hold else []) if not s.passed]
            if failed:
                step = failed[0]
                if step.daemon_log.strip():
                    log(f"  {system.name} log at the failed {step.kind} step ({step.rate}/s), last lines:\n"
                        + "\n".join("    " + l for l in step.daemon_log.splitlines()[-15:]))
                if step.error_sample.strip():
                    log(f"  SIPp UAC errors at the failed {step.kind} step ({step.rate}/s), first lines:\n"
                        + "\n".join("    " + l for l in step.error_sample.splitlines()))

        report(args, results, started, log)
        if args.json:
            args.json.write_text(json.dumps(
                {"date": started.isoformat(timespec="seconds"), "host": platform.node(), "cores": os.cpu_count(),
                 "revision": revision, "args": {k: str(v) for k, v in vars(args).items()},
                 "steps": [step_json(s) for s in all_steps]}, indent=1))
            log(f"\nJSON written to {args.json}")
        return 0 if all(r["sustained_rate"] for r in results.values()) else 1
    finally:
        stop_all()
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def step_json(step: Step) -> dict:
    d = {k: v for k, v in vars(step).items() if k not in ("daemon_log",)}
    d["ms_per_call"] = step.ms_per_call
    d["window_ms_per_call"] = step.window_ms_per_call
    return d


def report(args, results: dict, started: datetime.datetime, log: Callable[[str], None]) -> None:
    names = list(results)
    log("\n== Ladder (CPU while calls are placed: daemon cores and ms per call in the steady window)")
    rows = [["rate/s"] + [f"{n} {c}" for n in names for c in ("result", "ms/call", "cores")]]
    rates = sorted({s.rate for r in results.values() for s in r["ladder"]})
    for rate in rates:
        row = [str(rate)]
        for n in names:
            step = next((s for s in results[n]["ladder"] if s.rate == rate), None)
            if step is None:
                row += ["-", "-", "-"]
            else:
                row += ["pass" if step.passed else "FAIL", f"{step.window_ms_per_call:.3f}",
                        f"{step.cpu_window_s / step.window_wall:.2f}" if step.window_wall else "-"]
        rows.append(row)
    print_table(rows)

    log(f"\n== Summary ({started:%Y-%m-%d}, {os.cpu_count()} cores shared by the daemon and both SIPp instances)")
    header = ["metric"] + names + (["Palisade/Kamailio"] if set(names) == {"Palisade", "Kamailio"} else [])
    pal, kam = results.get("Palisade"), results.get("Kamailio")

    def row(label: str, key: str, fmt: str, scale: float = 1.0) -> list[str]:
        if key == "sustained_rate":
            cells = [(">= " if results[n].get("ladder_exhausted") else "") + f"{results[n]['sustained_rate']}"
                     for n in names]
            if len(header) > len(names) + 1:
                cells.append(ratio(pal.get(key), kam.get(key)))
            return [label] + cells
        vals = [results[n].get(key) for n in names]
        cells = [fmt.format(v * scale) if v is not None else "n/a" for v in vals]
        if len(header) > len(names) + 1:
            cells.append(ratio(pal.get(key), kam.get(key)))
        return [label] + cells

    for n in names:
        results[n].setdefault("ms_per_call", None)
        results[n].setdefault("mem_kib_per_1000", None)
        results[n].setdefault("alloc_kib_per_1000", None)
        results[n].setdefault("total_kib_per_1000", None)
    rows = [header,
            row("sustained rate, 0 failed calls (calls/s)", "sustained_rate", "{:.0f}"),
            row("CPU per call at that rate (ms)", "ms_per_call", "{:.3f}"),
            row("CPU per 1,000 calls (s)", "ms_per_call", "{:.3f}"),
            row("memory per 1,000 concurrent calls (MiB)", "total_kib_per_1000", "{:.2f}", 1 / 1024)]
    if any(results[n].get("alloc_kib_per_1000") is not None for n in names):
        rows.append(row("  of which process memory (RSS/PSS)", "mem_kib_per_1000", "{:.2f}", 1 / 1024))
        rows.append(row("  of which shared pool (kamcmd core.shmmem)", "alloc_kib_per_1000", "{:.2f}", 1 / 1024))
    # Same-rate comparison: the highest ladder rate that every system passed.
    common = [s.rate for s in results[names[0]]["ladder"] if s.passed]
    for n in names[1:]:
        passed = {s.rate for s in results[n]["ladder"] if s.passed}
        common = [r for r in common if r in passed]
    if common and len(names) > 1:
        rate = max(common)
        vals = {n: next(s for s in results[n]["ladder"] if s.rate == rate).window_ms_per_call for n in names}
        r = [f"CPU per call at {rate}/s, steady window (ms)"] + [f"{vals[n]:.3f}" for n in names]
        if len(header) > len(names) + 1:
            r.append(ratio(vals.get("Palisade"), vals.get("Kamailio")))
        rows.append(r)
        peaks = {}
        for n in names:
            step = next(s for s in results[n]["ladder"] if s.rate == rate)
            extra = 0
            if step.peak_alloc_kib is not None and step.idle_alloc_kib is not None:
                extra = step.peak_alloc_kib - step.idle_alloc_kib  # Kamailio: shm max_used above idle
            peaks[n] = (step.peak_mem_kib - step.idle_mem_kib + extra) / 1024
        r = [f"peak memory above idle during the {rate}/s step (MiB)"] + [f"{peaks[n]:.0f}" for n in names]
        if len(header) > len(names) + 1:
            r.append(ratio(peaks.get("Palisade"), peaks.get("Kamailio")))
        rows.append(r)
    print_table(rows)
    for n in names:
        res = results[n]
        src = res.get("cost_source")
        hold = res.get("hold")
        notes = []
        if src == "confirm":
            notes.append(f"CPU from {len(res['confirm'])} confirmation run(s) incl. {args.drain:g} s drain")
        elif src == "ladder":
            notes.append("CPU from the ladder step (no confirmation run, 1 s drain)")
        if hold:
            note = (f"memory: {res['memory_metric'].upper()} with {hold.calls} calls up minus idle "
                    f"({mib(hold.idle_mem_kib)} -> {mib(hold.plateau_mem_kib)} MiB)")
            if hold.plateau_alloc_kib is not None and hold.idle_alloc_kib is not None:
                note += f" + shm used ({mib(hold.idle_alloc_kib)} -> {mib(hold.plateau_alloc_kib)} MiB)"
            if not hold.passed:
                note += " [hold test FAILED: " + "; ".join(hold.reasons) + "]"
            notes.append(note)
        log(f"  {n}: " + "; ".join(notes))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
