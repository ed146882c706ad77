"""Shared helpers for Palisade's system tests (Python 3 standard library only).

Every test script builds one TestRun: it owns a temporary directory, the Palisade daemon and the
SIPp peers it starts, and stops all of them when the run ends, whatever happened (try/finally,
process groups). Checks are collected with TestRun.check(); the script exits 0 only when none
failed, after printing a short summary.

Loopback plan (one address per role, so that a leak of one role's address is easy to see):
  caller 127.0.0.2, PBX 127.0.0.3, carrier 127.0.0.4, Palisade public listener and management
  127.0.0.10, Palisade PBX-facing listener 127.0.0.11, SDP media address 127.0.0.9 (SIPp -mi).
Ports are chosen free at run time.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "scenarios")
REPO = os.path.dirname(os.path.dirname(HERE))
DEV_CERT_SCRIPT = os.path.join(REPO, "certs", "dev", "make_dev_certs.sh")

CALLER_IP = "127.0.0.2"
OTHER_CALLER_IP = "127.0.0.5"
# A user for tests that need the internet to get past default deny (a strong password: the
# credential policy refuses weak ones).
TEST_USER = {"name": "2001", "password": "Tr0ub4dor&3-Horse!Staple"}
PBX_IP = "127.0.0.3"
CARRIER_IP = "127.0.0.4"
MEDIA_IP = "127.0.0.9"
PUBLIC_IP = "127.0.0.10"
PBX_SIDE_IP = "127.0.0.11"
MGMT_IP = PUBLIC_IP

# Short name -> exposed Prometheus sample (core/stats/metrics.cc is the source of truth).
METRICS = {
    "calls_attempted": "palisade_calls_attempted_total",
    "calls_answered": "palisade_calls_answered_total",
    "calls_failed": "palisade_calls_failed_total",
    "calls_cancelled": "palisade_calls_cancelled_total",
    "calls_timed_out": "palisade_calls_timed_out_total",
    "parse_errors": "palisade_parse_errors_total",
    "retransmissions": "palisade_retransmissions_total",
    "inbox_overflows": "palisade_inbox_overflows_total",
    "rejected_503": "palisade_rejected_503_total",
    "dropped_untrusted": "palisade_dropped_untrusted_total",
    "dropped_foreign_responses": "palisade_dropped_foreign_responses_total",
    "dropped_foreign_cancels": "palisade_dropped_foreign_cancels_total",
    "sent_to_unverified": "palisade_sent_to_unverified_total",
    "tcp_head_timeouts": "palisade_tcp_head_timeouts_total",
    "tcp_accept_backoffs": "palisade_tcp_accept_backoffs_total",
    "tcp_connections_accepted": "palisade_tcp_connections_accepted_total",
    "tcp_connections_refused": "palisade_tcp_connections_refused_total",
    "config_reloads": "palisade_config_reloads_total",
    "config_reload_failures": "palisade_config_reload_failures_total",
    "active_calls": "palisade_active_calls",
    "tcp_connections": "palisade_tcp_connections",
    "messages_in_udp": 'palisade_messages_total{direction="in",transport="udp"}',
    "messages_out_udp": 'palisade_messages_total{direction="out",transport="udp"}',
    "messages_in_tcp": 'palisade_messages_total{direction="in",transport="tcp"}',
    "messages_out_tcp": 'palisade_messages_total{direction="out",transport="tcp"}',
    "messages_in_tls": 'palisade_messages_total{direction="in",transport="tls"}',
    "messages_out_tls": 'palisade_messages_total{direction="out",transport="tls"}',
    "tls_handshakes": "palisade_tls_handshakes_total",
    "tls_handshake_failures": "palisade_tls_handshake_failures_total",
    "tls_handshake_timeouts": "palisade_tls_handshake_timeouts_total",
    "tls_handshakes_refused": "palisade_tls_handshakes_refused_total",
    "tls_client_certificates_refused": "palisade_tls_client_certificates_refused_total",
    "tcp_connections_closed": "palisade_tcp_connections_closed_total",
    "provisionals_dropped": "palisade_provisionals_dropped_total",
    "prack_timeouts": "palisade_prack_timeouts_total",
}

SIPP_EXIT = {
    0: "all calls successful",
    1: "at least one call failed",
    97: "exit on internal command",
    99: "normal exit without calls processed",
    255: "fatal error",
    254: "fatal error binding a socket",
    -9: "killed (timeout)",
}


def describe_exit(rc):
    if rc is None:
        return "no exit code"
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit code {rc}"


class TestFailure(Exception):
    """Aborts a test run: the condition makes the remaining steps meaningless."""


# --------------------------------------------------------------------------- arguments

def parse_args(description, argv=None):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--binary", required=True, help="path to the palisade executable")
    parser.add_argument("--corpus", default=os.path.join(HERE, "..", "..", "..", "shared", "corpus"),
                        help="path to the shared test corpus")
    parser.add_argument("--workers", type=int, default=None,
                        help="run with this many Palisade workers only (default: 1 and 4)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--verbose", "-v", action="store_true", help="print each step")
    return parser.parse_args(argv)


def worker_counts(args, default=(1, 4)):
    return [args.workers] if args.workers is not None else list(default)


# --------------------------------------------------------------------------- ports

def _bindable(family_type, address, port):
    s = socket.socket(socket.AF_INET, family_type)
    try:
        s.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_ports(address, count):
    """`count` distinct ports on `address` that are free for both UDP and TCP right now."""
    held, ports = [], []
    try:
        for _ in range(count * 50):
            if len(ports) == count:
                break
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.bind((address, 0))
            port = tcp.getsockname()[1]
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.bind((address, port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            held += [tcp, udp]
            ports.append(port)
    finally:
        for s in held:
            s.close()
    if len(ports) != count:
        raise TestFailure(f"could not find {count} free ports on {address}")
    return ports


def free_media_port(address=MEDIA_IP, avoid=()):
    """An even port p on `address` with p..p+3 free for UDP (SIPp binds p and p+2 for RTP)."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((address, 0))
        p = s.getsockname()[1] & ~1
        s.close()
        if p + 3 > 65535 or any(abs(p - a) < 4 for a in avoid):
            continue
        if all(_bindable(socket.SOCK_DGRAM, address, p + i) for i in range(4)):
            return p
    raise TestFailure(f"no free media port range on {address}")


def port_in_use(address, port, transport="udp"):
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    return not _bindable(kind, address, port)


# --------------------------------------------------------------------------- config

def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")


def toml_text(config):
    """Tables from dicts; arrays of tables ([[trunks]]) from lists of dicts."""
    lines = []
    for table, values in config.items():
        entries = values if isinstance(values, list) else [values]
        header = f"[[{table}]]" if isinstance(values, list) else f"[{table}]"
        for entry in entries:
            lines.append(header)
            for key, value in entry.items():
                lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- SIPp results

class SippResult:
    def __init__(self, name, rc, stat_file, error_file, out_file, timed_out):
        self.name = name
        self.rc = rc
        self.timed_out = timed_out
        self.stats = _last_stat_row(stat_file)
        self.error_file = error_file
        self.out_file = out_file

    def count(self, column):
        try:
            return int(self.stats.get(column, "0") or 0)
        except ValueError:
            return 0

    @property
    def successful(self):
        return self.count("SuccessfulCall(C)")

    @property
    def failed(self):
        return self.count("FailedCall(C)")

    def summary(self):
        meaning = SIPP_EXIT.get(self.rc, "?")
        extra = " TIMED OUT (killed)" if self.timed_out else ""
        return f"{self.name}: exit {self.rc} ({meaning}){extra}, successful {self.successful}, failed {self.failed}"

    def details(self, limit=3000):
        parts = [self.summary()]
        failed_cols = {k: v for k, v in self.stats.items() if k.startswith("Failed") and k.endswith("(C)") and v not in ("0", "")}
        if failed_cols:
            parts.append("  failure columns: " + ", ".join(f"{k}={v}" for k, v in failed_cols.items()))
        errors = _read_tail(self.error_file, limit)
        if errors.strip():
            parts.append(f"  --- errors ({self.error_file}) ---\n" + errors)
        screen = _last_scenario_screen(self.out_file)
        if screen:
            parts.append(f"  --- last scenario screen ({self.out_file}) ---\n" + screen)
        return "\n".join(parts)


def _last_scenario_screen(path):
    """The last "Scenario Screen" SIPp printed (message counts per scenario step), or the tail."""
    text = _read_tail(path, 200000)
    start = text.rfind("Scenario Screen")
    if start < 0:
        return text[-2000:]
    start = text.rfind("\n", 0, start) + 1
    end = text.find("Statistics Screen", start)
    end = text.rfind("\n", start, end) if end > 0 else len(text)
    return text[start:end]


def _last_stat_row(path):
    if not path or not os.path.exists(path):
        return {}
    with open(path, encoding="latin-1") as f:
        rows = [line.rstrip("\r\n") for line in f if line.strip()]
    if len(rows) < 2:
        return {}
    header = rows[0].split(";")
    values = rows[-1].split(";")
    return dict(zip(header, values))


def _read_tail(path, limit):
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - limit))
        return f.read().decode("latin-1")


class SippProcess:
    def __init__(self, run, name, argv, popen, stat_file, error_file, out_file, timeout_s):
        self.run = run
        self.name = name
        self.argv = argv
        self.popen = popen
        self.stat_file = stat_file
        self.error_file = error_file
        self.out_file = out_file
        self.deadline = time.monotonic() + timeout_s
        self.result = None

    def wait(self, timeout_s=None):
        """Waits for SIPp to exit (kills it after its deadline) and returns a SippResult."""
        if self.result is not None:
            return self.result
        deadline = self.deadline if timeout_s is None else min(self.deadline, time.monotonic() + timeout_s)
        timed_out = False
        try:
            rc = self.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            self.run.kill_group(self.popen)
            rc = self.popen.wait(timeout=10)
        self.result = SippResult(self.name, rc, self.stat_file, self.error_file, self.out_file, timed_out)
        self.run.log(self.result.summary())
        return self.result


def parse_message_log(path):
    """SIPp -trace_msg log -> list of (direction, transport, message text).

    direction is "sent" or "received". Text is decoded as Latin-1 so every byte survives.
    """
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read().decode("latin-1")
    out = []
    for chunk in re.split(r"(?m)^-{20,} [^\n]*\n", data):
        m = re.match(r"(\w+) message (sent|received) [^\n]*\n\n?", chunk)
        if not m:
            continue
        out.append((m.group(2), m.group(1), chunk[m.end():]))
    return out


def split_message(text):
    """(header section, body) of one SIP message, at the first empty line."""
    m = re.search(r"\r?\n\r?\n", text)
    if not m:
        return text, ""
    return text[:m.start()], text[m.end():]


def header_values(head, name, compact=None):
    names = {name.lower()} | ({compact.lower()} if compact else set())
    values = []
    for line in re.split(r"\r?\n", head)[1:]:
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        if key.strip().lower() in names:
            values.append(value.strip())
    return values


def tag_of(value):
    m = re.search(r";\s*tag\s*=\s*([^;>\s,]+)", value, re.I)
    return m.group(1) if m else None


# --------------------------------------------------------------------------- test run

class Palisade:
    def __init__(self, run, popen, config_path, log_path, mgmt):
        self.run = run
        self.popen = popen
        self.config_path = config_path
        self.log_path = log_path
        self.mgmt = mgmt

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def url(self, path):
        return f"http://{self.mgmt[0]}:{self.mgmt[1]}{path}"

    def health(self, timeout=1.0):
        try:
            with urllib.request.urlopen(self.url("/health"), timeout=timeout) as r:
                return r.status
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def metrics(self):
        """Scrapes /metrics into {sample name with labels: float}."""
        try:
            with urllib.request.urlopen(self.url("/metrics"), timeout=5) as r:
                text = r.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as e:
            state = "running" if self.alive() else f"exited with {describe_exit(self.popen.returncode)}"
            raise TestFailure(f"GET /metrics failed ({e}); palisade is {state}\n{self.log_tail()}") from None
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^(\S+?(?:\{[^}]*\})?)\s+(\S+)", line)
            if m:
                try:
                    out[m.group(1)] = float(m.group(2))
                except ValueError:
                    pass
        return out

    def metric(self, short, metrics=None):
        metrics = self.metrics() if metrics is None else metrics
        name = METRICS.get(short, short)
        if name not in metrics:
            raise TestFailure(f"metric {name} missing from /metrics (have: {sorted(metrics)[:40]})")
        return metrics[name]

    def wait_metric(self, short, predicate, timeout_s=10.0):
        """Polls until predicate(value) holds; returns the last value seen."""
        deadline = time.monotonic() + timeout_s
        value = self.metric(short)
        while not predicate(value) and time.monotonic() < deadline:
            time.sleep(0.05)
            value = self.metric(short)
        return value

    def signal(self, sig):
        self.popen.send_signal(sig)

    def log_tail(self, limit=3000):
        return _read_tail(self.log_path, limit)


class TestRun:
    """Owns a temporary directory and every process a test starts; use as a context manager."""

    def __init__(self, name, args):
        self.name = name
        self.args = args
        self.binary = os.path.abspath(args.binary)
        self.corpus = os.path.abspath(args.corpus)
        self.dir = tempfile.mkdtemp(prefix=f"palisade-{name}-")
        self.procs = []
        self.failures = []
        self.passes = []
        self.started = time.monotonic()
        self._sipp_seq = 0

    # --- reporting
    def log(self, text):
        if self.args.verbose:
            print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def check(self, condition, what, details=""):
        if condition:
            self.passes.append(what)
            self.log(f"ok: {what}")
        else:
            self.failures.append((what, details))
            print(f"FAIL: {what}" + (f"\n{details}" if details else ""), flush=True)
        return condition

    def require(self, condition, what, details=""):
        if not self.check(condition, what, details):
            raise TestFailure(what)

    # --- lifetime
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        signal.alarm(0)
        if exc is not None:
            if isinstance(exc, TestFailure):
                self.failures.append((f"aborted: {exc}", ""))
                print(f"FAIL: aborted: {exc}", flush=True)
            else:
                self.failures.append((f"exception: {exc!r}", ""))
                print("FAIL: exception\n" + "".join(traceback.format_exception(exc_type, exc, tb)), flush=True)
        self.stop_all()
        elapsed = time.monotonic() - self.started
        if self.failures:
            print(f"{self.name}: FAILED {len(self.failures)} of {len(self.failures) + len(self.passes)} checks "
                  f"in {elapsed:.1f}s; files kept in {self.dir}", flush=True)
            for what, _ in self.failures:
                print(f"  - {what}")
        else:
            print(f"{self.name}: passed {len(self.passes)} checks in {elapsed:.1f}s", flush=True)
            if not self.args.keep:
                shutil.rmtree(self.dir, ignore_errors=True)
        return True  # the exception has been reported; exit_code() says how it went

    def exit_code(self):
        return 1 if self.failures else 0

    def kill_group(self, popen, sig=signal.SIGKILL):
        try:
            os.killpg(popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_all(self):
        for popen, kind in reversed(self.procs):
            if popen.poll() is not None:
                continue
            if kind == "palisade":
                self.kill_group(popen, signal.SIGTERM)
                try:
                    popen.wait(timeout=10)
                    continue
                except subprocess.TimeoutExpired:
                    pass
            self.kill_group(popen, signal.SIGKILL)
            try:
                popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()

    def path(self, name):
        return os.path.join(self.dir, name)

    # --- Palisade
    def config(self, workers, pbx_port, carrier_port, pbx_transport="udp", carrier_transport="udp",
               log_level="info", **tables):
        """A config dict for the standard loopback plan; `tables` override or add whole tables/keys."""
        public_port, mgmt_port = free_ports(PUBLIC_IP, 2)  # MGMT_IP is PUBLIC_IP: distinct ports
        pbx_side_port = free_ports(PBX_SIDE_IP, 1)[0]
        cfg = {
            "general": {"workers": workers, "log_level": log_level},
            "public": {"address": PUBLIC_IP, "udp_port": public_port, "tcp_port": public_port},
            "pbx_side": {"address": PBX_SIDE_IP, "udp_port": pbx_side_port, "tcp_port": pbx_side_port},
            "pbx": {"host": PBX_IP, "port": pbx_port, "transport": pbx_transport, "addresses": [PBX_IP]},
            # The carrier, and the test callers (127.0.0.2, 127.0.0.5) as a trunk that is not
            # trusted for identity: with no [[users]] the internet reaches nothing (default deny).
            "trunks": [{"name": "carrier", "host": CARRIER_IP, "port": carrier_port,
                        "transport": carrier_transport, "addresses": [CARRIER_IP]},
                       {"name": "callers", "host": CALLER_IP, "port": 5060, "transport": "udp",
                        "addresses": [CALLER_IP, OTHER_CALLER_IP], "trust_identity": False}],
            "management": {"address": MGMT_IP, "port": mgmt_port},
        }
        for table, values in tables.items():
            if isinstance(values, list):
                cfg[table] = values
            else:
                cfg.setdefault(table, {}).update(values)
        return cfg

    def dev_certs(self, name="certs", days=None, force=False):
        """DEV-ONLY certificates (CA, server for 127.0.0.1/localhost/PUBLIC_IP, client "dev-client") in the
        run folder, made by certs/dev/make_dev_certs.sh. Returns {"ca", "server", "server_key",
        "client", "client_key"} paths."""
        out = self.path(name)
        env = dict(os.environ)
        env["DEV_CERT_SAN"] = f"IP:{PUBLIC_IP}"  # phones check the address they dial
        if days is not None:
            env["DEV_CERT_DAYS"] = str(days)
        argv = ["sh", DEV_CERT_SCRIPT, out] + (["--force"] if force else [])
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        j = lambda f: os.path.join(out, f)
        return {"ca": j("ca.pem"), "server": j("server.pem"), "server_key": j("server.key"),
                "client": j("client.pem"), "client_key": j("client.key")}

    def with_tls(self, cfg, certs, tls_port=None, **tls):
        """Turns on the public TLS listener of a config dict with `certs` (from dev_certs())."""
        port = tls_port or free_ports(PUBLIC_IP, 1)[0]
        cfg["public"]["tls_port"] = port
        cfg.setdefault("tls", {}).update(tls)
        cfg["tls.certificates"] = [{"certificate": certs["server"], "key": certs["server_key"]}]
        return port

    def write_config(self, config, name="palisade.toml", extra_text=""):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(toml_text(config) + extra_text)
        return path

    def start_palisade(self, config, name="palisade", health_timeout_s=10.0, wrapper=()):
        """Starts the daemon on `config` (optionally under `wrapper`, e.g. prlimit) and waits for /health."""
        if not os.access(self.binary, os.X_OK):
            raise TestFailure(f"palisade binary {self.binary} is missing or not executable")
        config_path = self.write_config(config, f"{name}.toml")
        log_path = self.path(f"{name}.log")
        log = open(log_path, "wb")
        popen = subprocess.Popen(list(wrapper) + [self.binary, "--config", config_path], stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)
        log.close()
        self.procs.append((popen, "palisade"))
        p = Palisade(self, popen, config_path, log_path,
                     (config["management"]["address"], config["management"]["port"]))
        deadline = time.monotonic() + health_timeout_s
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                raise TestFailure(f"palisade exited with {popen.returncode} at start-up:\n{p.log_tail()}")
            if p.health(timeout=0.5) == 200:
                self.log(f"palisade pid {popen.pid} healthy (workers={config['general']['workers']})")
                return p
            time.sleep(0.05)
        raise TestFailure(f"palisade /health did not answer 200 within {health_timeout_s}s:\n{p.log_tail()}")

    def stop_palisade(self, p, timeout_s=10.0):
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        if p.popen.poll() is not None:
            return p.popen.returncode
        p.signal(signal.SIGTERM)
        try:
            return p.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill_group(p.popen)
            p.popen.wait(timeout=10)
            return None

    def check_clean_stop(self, p):
        rc = self.stop_palisade(p)
        self.check(rc == 0, "palisade stops cleanly on SIGTERM (exit 0)", f"{describe_exit(rc)}\n{p.log_tail()}")

    # --- stunnel (TLS in front of SIPp, which has none)
    def stunnel(self, name, client, accept, connect, cert=None, key=None, ca=None, check_host=None,
                local=None, options=()):
        """Starts stunnel4 in the foreground: `client` mode takes plain TCP on `accept` and
        speaks TLS to `connect` (verifying against `ca`, and `check_host` if given, presenting
        `cert` if given); server mode the other way round. Waits until `accept` is bound."""
        conf = self.path(f"stunnel-{name}.conf")
        lines = ["foreground = yes", "pid =", f"output = {self.path('stunnel-' + name + '.log')}", "debug = 5",
                 "syslog = no", f"[{name}]", f"client = {'yes' if client else 'no'}",
                 f"accept = {accept[0]}:{accept[1]}", f"connect = {connect[0]}:{connect[1]}",
                 "sslVersionMin = TLSv1.2", "delay = no", "TIMEOUTclose = 0"]
        if cert:
            lines += [f"cert = {cert}", f"key = {key}"]
        if ca:
            lines += [f"CAfile = {ca}", "verifyChain = yes"]
        if check_host:
            lines.append(f"checkHost = {check_host}")
        if local:
            lines.append(f"local = {local}")
        lines += list(options)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        popen = subprocess.Popen(["stunnel4", conf], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                 cwd=self.dir, start_new_session=True)
        self.procs.append((popen, "stunnel"))
        deadline = time.monotonic() + 10
        while not port_in_use(accept[0], accept[1], "tcp"):
            if popen.poll() is not None or time.monotonic() > deadline:
                log = _read_tail(self.path(f"stunnel-{name}.log"), 2000)
                raise TestFailure(f"stunnel {name} did not start (rc {popen.poll()}):\n{log}")
            time.sleep(0.05)
        return popen

    # --- SIPp
    def sipp(self, name, scenario, local_ip, local_port, remote=None, transport="udp", calls=1, rate=None,
             limit=None, timeout_s=60, recv_timeout_ms=10000, trace_msg=False, extra=()):
        """Starts one SIPp in the foreground (no -bg) as a child in its own process group.

        UAS instances (remote=None) are waited for until their SIP port is bound. Always passes
        -m (calls), -timeout (global, an error when reached), -trace_stat and -trace_err.
        """
        self._sipp_seq += 1
        tag = f"{self._sipp_seq:02d}-{name}"
        scenario_path = scenario if os.path.isabs(scenario) else os.path.join(SCENARIOS, scenario)
        if not scenario_path.endswith(".xml"):
            scenario_path += ".xml"
        stat_file = self.path(f"{tag}.csv")
        error_file = self.path(f"{tag}.errors.log")
        out_file = self.path(f"{tag}.out")
        argv = ["sipp"]
        if remote:
            argv.append(f"{remote[0]}:{remote[1]}")
        argv += ["-sf", scenario_path, "-i", local_ip, "-p", str(local_port),
                 "-t", "t1" if transport == "tcp" else "u1",
                 "-m", str(calls), "-timeout", f"{int(timeout_s)}s", "-timeout_error",
                 "-nostdin", "-bind_local", "-mi", MEDIA_IP, "-mp", str(free_media_port()),
                 "-trace_stat", "-stf", stat_file, "-fd", "10",
                 "-trace_err", "-error_file", error_file]
        if recv_timeout_ms:
            argv += ["-recv_timeout", str(recv_timeout_ms)]
        if rate is not None:
            argv += ["-r", str(rate)]
        if limit is not None:
            argv += ["-l", str(limit)]
        if trace_msg:
            argv += ["-trace_msg", "-message_file", self.path(f"{tag}.messages.log")]
        argv += list(extra)
        out = open(out_file, "wb")
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 cwd=self.dir, start_new_session=True)
        out.close()
        self.procs.append((popen, "sipp"))
        proc = SippProcess(self, tag, argv, popen, stat_file, error_file, out_file, timeout_s + 15)
        proc.message_file = self.path(f"{tag}.messages.log") if trace_msg else None
        self.log(f"started {tag}: {' '.join(argv)}")
        if remote is None:
            deadline = time.monotonic() + 10
            while not port_in_use(local_ip, local_port, transport):
                if popen.poll() is not None:
                    raise TestFailure(f"SIPp {tag} exited at start-up:\n{_read_tail(out_file, 2000)}")
                if time.monotonic() > deadline:
                    raise TestFailure(f"SIPp {tag} did not bind {local_ip}:{local_port}/{transport}")
                time.sleep(0.02)
        return proc

    def check_sipp(self, result, expect_successful=None, what=None):
        """Exit code 0, no failed call and (optionally) the number of successful calls."""
        what = what or result.name
        ok = result.rc == 0 and result.failed == 0 and not result.timed_out
        if expect_successful is not None:
            ok = ok and result.successful == expect_successful
        expected = f", {expect_successful} successful" if expect_successful is not None else ""
        return self.check(ok, f"{what}: exit 0, 0 failed{expected}", result.details())


NETNS_MARKER = "PALISADE_SYSTEST_NETNS"


def enter_namespace(script, what):
    """Re-executes `script` under `unshare -n` unless already there; then brings lo up.

    For tests whose traffic must not leave the machine (hostile corpora, attack tools): inside,
    only loopback exists. `what` names that traffic in the failure message.
    """
    if os.environ.get(NETNS_MARKER) == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10).stdout
        names = [line.split(":")[1].strip() for line in links.splitlines() if line.strip()]
        if names != ["lo"]:
            print(f"FAIL: expected a namespace with only lo, found {names}; refusing to go on")
            sys.exit(1)
        return
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        print("FAIL: cannot create a private network namespace (`unshare -n` exited "
              f"{probe.returncode}: {probe.stderr.strip()}). {what} must only be sent from "
              "inside one; run this test as root or with CAP_SYS_ADMIN.", flush=True)
        sys.exit(1)
    env = dict(os.environ, **{NETNS_MARKER: "1"})
    argv = ["unshare", "-n", "--", sys.executable, os.path.abspath(script)] + sys.argv[1:]
    try:
        rc = subprocess.run(argv, env=env, timeout=540).returncode
    except subprocess.TimeoutExpired:
        print("FAIL: the test did not finish inside its namespace within 540 s")
        rc = 1
    sys.exit(rc)


def _on_alarm(signum, frame):
    raise TestFailure("the test exceeded its time budget")


def main_wrapper(name, description, body, argv=None, budget_s=300):
    """Parses the arguments, runs body(run) inside a TestRun and exits with its result.

    SIGALRM after `budget_s` aborts the body, so that every process is still stopped.
    """
    args = parse_args(description, argv)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(budget_s)
    with TestRun(name, args) as run:
        body(run)
    signal.alarm(0)
    sys.exit(run.exit_code())


class CallPair:
    """A UAS and a UAC SIPp started together; wait() returns (uac result, uas result)."""

    def __init__(self, run, uas, uac):
        self.run = run
        self.uas = uas
        self.uac = uac

    def wait(self):
        uac = self.uac.wait()
        # The UAS ends once it has processed as many calls as the UAC placed (plus its timewait).
        uas = self.uas.wait(timeout_s=30)
        return uac, uas


def start_calls(run, palisade_target, uas_scenario, uac_scenario, calls, rate, uas_ip, uas_port, uac_ip,
                transport="udp", uas_transport=None, timeout_s=90, trace_msg=False, limit=None, uac_extra=(),
                uas_extra=()):
    """Starts the callee SIPp (bound and ready), then the caller SIPp aimed at Palisade."""
    uac_port = free_ports(uac_ip, 1)[0]
    uas = run.sipp(f"uas-{uas_scenario}", uas_scenario, uas_ip, uas_port, transport=uas_transport or transport,
                   calls=calls, timeout_s=timeout_s + 10, trace_msg=trace_msg, recv_timeout_ms=20000,
                   extra=uas_extra)
    uac = run.sipp(f"uac-{uac_scenario}", uac_scenario, uac_ip, uac_port, remote=palisade_target,
                   transport=transport, calls=calls, rate=rate, limit=limit, timeout_s=timeout_s,
                   trace_msg=trace_msg, extra=uac_extra)
    uac.local_port = uac_port
    return CallPair(run, uas, uac)


def expect_counters(run, palisade, before, expected, what):
    """Checks counter deltas since `before` (a metrics() dict): expected maps short name to
    an int (exact delta) or a (low, high) inclusive range. Waits up to 5 s for late increments."""
    deadline = time.monotonic() + 5
    while True:
        after = palisade.metrics()
        bad = []
        for short, want in expected.items():
            delta = palisade.metric(short, after) - palisade.metric(short, before)
            low, high = want if isinstance(want, tuple) else (want, want)
            if not (low <= delta <= high):
                bad.append(f"{METRICS.get(short, short)} went up by {delta:g}, expected "
                           + (f"{low}" if low == high else f"{low}..{high}"))
        if not bad or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    run.check(not bad, f"{what}: counters " + ", ".join(f"{k}+{v}" for k, v in expected.items()), "\n".join(bad))
    return after


def wait_idle(run, palisade, what, timeout_s=10.0):
    """Active calls back to 0 (every call torn down) and the daemon still healthy."""
    active = palisade.wait_metric("active_calls", lambda v: v == 0, timeout_s)
    run.check(active == 0, f"{what}: active calls back to 0", f"palisade_active_calls = {active:g}")
    run.check(palisade.alive() and palisade.health() == 200, f"{what}: daemon alive and healthy",
              palisade.log_tail())


def call_load(run, workers, transport, calls_in, calls_out, rate):
    """Caller -> Palisade public -> PBX, then PBX -> Palisade PBX side -> carrier, over `transport`."""
    pbx_port = free_ports(PBX_IP, 1)[0]
    carrier_port = free_ports(CARRIER_IP, 1)[0]
    cfg = run.config(workers, pbx_port, carrier_port, pbx_transport=transport, carrier_transport=transport)
    palisade = run.start_palisade(cfg, name=f"palisade-{transport}-w{workers}")
    public = (PUBLIC_IP, cfg["public"]["udp_port" if transport == "udp" else "tcp_port"])
    pbx_side = (PBX_SIDE_IP, cfg["pbx_side"]["udp_port" if transport == "udp" else "tcp_port"])
    label = f"{transport}, {workers} worker(s)"

    before = palisade.metrics()
    uac, uas = start_calls(run, public, "uas", "uac", calls_in, rate, PBX_IP, pbx_port, CALLER_IP,
                           transport=transport, timeout_s=calls_in // rate + 60).wait()
    run.check_sipp(uac, calls_in, f"{label}: caller -> PBX, {calls_in} calls at {rate}/s (caller)")
    run.check_sipp(uas, calls_in, f"{label}: caller -> PBX (PBX side)")
    before = expect_counters(run, palisade, before,
                             {"calls_attempted": calls_in, "calls_answered": calls_in, "calls_failed": 0,
                              "calls_timed_out": 0, "parse_errors": 0},
                             f"{label}: caller -> PBX")
    wait_idle(run, palisade, f"{label}: caller -> PBX")

    # The PBX calls out: its UAC binds the address listed in [pbx].addresses.
    uac, uas = start_calls(run, pbx_side, "uas", "uac", calls_out, rate, CARRIER_IP, carrier_port, PBX_IP,
                           transport=transport, timeout_s=calls_out // rate + 60).wait()
    run.check_sipp(uac, calls_out, f"{label}: PBX -> carrier, {calls_out} calls at {rate}/s (PBX)")
    run.check_sipp(uas, calls_out, f"{label}: PBX -> carrier (carrier side)")
    expect_counters(run, palisade, before,
                    {"calls_attempted": calls_out, "calls_answered": calls_out, "calls_failed": 0,
                     "calls_timed_out": 0, "parse_errors": 0, "dropped_untrusted": 0},
                    f"{label}: PBX -> carrier")
    wait_idle(run, palisade, f"{label}: PBX -> carrier")
    run.check_clean_stop(palisade)
