#!/usr/bin/env python3
"""Certificate rotation without dropping a call. SIPp places calls (each held 1 s) over one
TLS connection (stunnel client mode) while the server certificate is replaced and SIGHUP sent
20 times: every new handshake (openssl s_client) gets the new certificate, verified against the
CA; the open connection and its calls carry on; 0 calls fail. A mismatched certificate and key
and a missing file are refused by the reload, naming the file, and the previous certificate
stays in use. A certificate that expires within 14 days is a warning and shows in
palisade_tls_certificate_expiry_seconds. The daemon exits 0 (under ASan: no leak)."""
import os
import re
import shutil
import signal
import subprocess
import time

import harness
from harness import CALLER_IP, PBX_IP, PUBLIC_IP

ROTATIONS = 20
RATE = 20
HOLD_MS = 1000


def served_fingerprint(run, port):
    p = subprocess.run(["openssl", "s_client", "-connect", f"{PUBLIC_IP}:{port}", "-CAfile", run.certs["ca"],
                        "-verify_return_error", "-showcerts"], input=b"", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0 or "Verify return code: 0 (ok)" not in out:
        return None, out
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S).group(0)
    return fingerprint_of_text(pem), out


def fingerprint_of_text(pem):
    p = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=pem.encode(),
                       stdout=subprocess.PIPE, check=True)
    return p.stdout.decode().strip().split("=", 1)[1]


def file_fingerprint(path):
    with open(path) as f:
        return fingerprint_of_text(f.read())


def reload_and_wait(run, palisade, counter):
    before = palisade.metric(counter)
    palisade.signal(signal.SIGHUP)
    return palisade.wait_metric(counter, lambda v: v > before, 10) > before


def expiry_seconds(palisade, path):
    return palisade.metrics().get(f'palisade_tls_certificate_expiry_seconds{{file="{path}"}}')


def body(run):
    run.certs = run.dev_certs()
    pbx_port = harness.free_ports(PBX_IP, 1)[0]
    # A user: the internet (s_client on 127.0.0.1) may connect at all (no default deny).
    cfg = run.config(2, pbx_port, harness.free_ports(harness.CARRIER_IP, 1)[0], users=[harness.TEST_USER])
    tls_port = run.with_tls(cfg, run.certs)
    palisade = run.start_palisade(cfg, name="palisade-tls-reload")
    left = expiry_seconds(palisade, run.certs["server"])
    run.check(left is not None and left > 800 * 86400, "the expiry metric shows the certificate's ~825 days",
              f"{left}")

    wrap_port = harness.free_ports(CALLER_IP, 1)[0]
    run.stunnel("caller", True, (CALLER_IP, wrap_port), (PUBLIC_IP, tls_port), ca=run.certs["ca"],
                check_host="localhost", local=CALLER_IP)
    calls = RATE * (ROTATIONS * 3 // 2 + 6)
    pair = harness.start_calls(run, (CALLER_IP, wrap_port), "uas", "uac", calls, RATE, PBX_IP, pbx_port, CALLER_IP,
                               transport="tcp", uas_transport="udp", timeout_s=calls // RATE + 60,
                               uac_extra=("-d", str(HOLD_MS)))
    time.sleep(2)
    run.check(palisade.metric("active_calls") > 0, "calls are in progress before the first rotation")

    previous = file_fingerprint(run.certs["server"])
    served_ok = 0
    for i in range(1, ROTATIONS + 1):
        env = dict(os.environ)
        if i == ROTATIONS:
            env["DEV_CERT_DAYS"] = "5"  # the last one is close to expiry
        subprocess.run(["sh", harness.DEV_CERT_SCRIPT, os.path.dirname(run.certs["server"]), "--renew"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        expected = file_fingerprint(run.certs["server"])
        if not reload_and_wait(run, palisade, "config_reloads"):
            run.check(False, f"rotation {i}: the reload was applied", palisade.log_tail())
            continue
        served, out = served_fingerprint(run, tls_port)
        if served == expected and served != previous:
            served_ok += 1
        else:
            run.log(f"rotation {i}: served {served}, expected {expected}\n{out[-800:]}")
        previous = expected

        if i == ROTATIONS // 2:
            # A key that does not belong to the certificate: refused, the old one stays.
            good_key = run.path("good.key")
            shutil.copy(run.certs["server_key"], good_key)
            shutil.copy(run.certs["client_key"], run.certs["server_key"])
            run.check(reload_and_wait(run, palisade, "config_reload_failures"),
                      "a mismatched certificate and key are refused by the reload")
            run.check(f"{run.certs['server_key']}: does not match the certificate" in palisade.log_tail(20000),
                      "the refusal names the key file", palisade.log_tail())
            served, _ = served_fingerprint(run, tls_port)
            run.check(served == previous, "after a refused reload the previous certificate is still served")
            shutil.copy(good_key, run.certs["server_key"])
            # A missing file: refused too.
            os.rename(run.certs["server"], run.path("moved.pem"))
            run.check(reload_and_wait(run, palisade, "config_reload_failures"),
                      "a missing certificate file is refused by the reload")
            run.check(f"{run.certs['server']}: cannot open" in palisade.log_tail(20000),
                      "the refusal names the missing file", palisade.log_tail())
            os.rename(run.path("moved.pem"), run.certs["server"])
        time.sleep(0.5)
    run.check(served_ok == ROTATIONS, f"each of {ROTATIONS} rotations: new handshakes get the new certificate",
              f"{served_ok} of {ROTATIONS}")
    log = palisade.log_tail(50000)
    run.check("expires in 4 days" in log or "expires in 5 days" in log,
              "a certificate within 14 days of expiry is a warning at reload", log[-2000:])
    left = expiry_seconds(palisade, run.certs["server"])
    run.check(left is not None and left < 6 * 86400, "the expiry metric follows the new certificate", f"{left}")

    uac, uas = pair.wait()
    run.check_sipp(uac, calls, f"{calls} TLS calls during {ROTATIONS} certificate rotations")
    run.check_sipp(uas, calls, "TLS calls during rotations (PBX side)")
    run.check(palisade.metric("calls_failed") == 0, "no call failed", "")
    run.check(palisade.metric("tls_handshake_failures") == 0, "no handshake failed", "")
    harness.wait_idle(run, palisade, "after the rotations")
    run.check_clean_stop(palisade)


if __name__ == "__main__":
    harness.main_wrapper("test_tls_reload", __doc__, body)
