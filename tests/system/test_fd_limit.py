#!/usr/bin/env python3
"""Descriptor limits on the real daemon. Started with a soft RLIMIT_NOFILE of 1024 (hard
limit higher), Palisade raises it to fit tcp.max_connections; 3,000 TCP connections from 100
loopback addresses are then held open without the accept loop spinning (the daemon stays
near idle) and new calls over UDP and TCP still go through. With a hard limit of 1024 and the
default tcp.max_connections it refuses to start with an error that says what to change."""
import os
import resource
import socket
import subprocess
import time

import harness

CONNECTIONS_PER_ADDRESS = 30
ADDRESSES = 100


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def soft_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


def body(run):
    needed = CONNECTIONS_PER_ADDRESS * ADDRESSES + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard_text = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    run.require(hard == resource.RLIM_INFINITY or hard >= 2 * needed,
                f"the hard descriptor limit ({hard_text}) leaves room for {needed} connections on each side")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))

    pbx_port = harness.free_ports(harness.PBX_IP, 1)[0]
    carrier_port = harness.free_ports(harness.CARRIER_IP, 1)[0]
    # A user, so that connections from the internet (127.0.1.x) get past default deny.
    cfg = run.config(2, pbx_port, carrier_port, users=[harness.TEST_USER])
    palisade = run.start_palisade(cfg, wrapper=["prlimit", f"--nofile=1024:{hard_text}", "--"])
    limit = soft_nofile(palisade.pid)
    run.check(limit is not None and limit >= 4096, f"the soft descriptor limit was raised from 1024 (now {limit})")
    target = (harness.PUBLIC_IP, cfg["public"]["tcp_port"])

    held = []
    try:
        for a in range(ADDRESSES):
            source = f"127.0.1.{a + 1}"
            for _ in range(CONNECTIONS_PER_ADDRESS):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((source, 0))
                s.connect(target)
                held.append(s)
        total = CONNECTIONS_PER_ADDRESS * ADDRESSES
        value = palisade.wait_metric("tcp_connections", lambda v: v >= total, 20)
        run.check(value >= total, f"{total} connections from {ADDRESSES} addresses are held open",
                  f"palisade_tcp_connections = {value:g}")
        start_cpu, start = cpu_seconds(palisade.pid), time.monotonic()
        time.sleep(3)
        cores = (cpu_seconds(palisade.pid) - start_cpu) / (time.monotonic() - start)
        run.check(cores < 0.2, f"holding them costs almost nothing ({cores:.3f} cores)")
        run.check(palisade.metric("tcp_accept_backoffs") == 0, "no accept ever ran out of descriptors")

        for transport in ("udp", "tcp"):
            public = (harness.PUBLIC_IP, cfg["public"]["udp_port" if transport == "udp" else "tcp_port"])
            uac, uas = harness.start_calls(run, public, "uas", "uac", 100, 50, harness.PBX_IP, pbx_port,
                                           harness.CALLER_IP, transport=transport, uas_transport="udp",
                                           timeout_s=60).wait()
            run.check_sipp(uac, 100, f"new {transport.upper()} calls go through meanwhile (caller)")
            run.check_sipp(uas, 100, f"new {transport.upper()} calls (PBX)")
    finally:
        for s in held:
            s.close()
    harness.wait_idle(run, palisade, "descriptor limit")
    run.check_clean_stop(palisade)

    # A hard limit that cannot fit tcp.max_connections: a clear refusal to start.
    cfg = run.config(1, pbx_port, carrier_port)
    path = run.write_config(cfg, "tight.toml")
    proc = subprocess.run(["prlimit", "--nofile=1024:1024", "--", run.binary, "--config", path],
                          capture_output=True, text=True, timeout=20)
    output = proc.stdout + proc.stderr
    run.check(proc.returncode == 1, "with a hard limit of 1024 it refuses to start (exit 1)",
              f"exit {proc.returncode}: {output}")
    run.check("RLIMIT_NOFILE" in output and "tcp.max_connections" in output and "1024 hard" in output,
              "... saying which limit and which setting", output)


if __name__ == "__main__":
    harness.main_wrapper("test_fd_limit", __doc__, body, budget_s=180)
