"""Helpers shared by the flood and DoS system tests (test_flood_*.py, test_scanners.py,
test_drain.py, test_tcp_flood.py): the management API's ban list, per-reason drop and
rejection counters, and the SIPp flooder run beside legitimate carrier calls.

Not a test itself (CTest globs test_*.py only)."""
import json
import re
import time
import urllib.error
import urllib.request

import harness

FLOODER_IP = "127.0.0.9"  # an internet source (no trunk, no [pbx].addresses); also SIPp's -mi


def drops(reason):
    return f'palisade_drops_total{{reason="{reason}"}}'


def rejections(reason):
    return f'palisade_rejections_total{{reason="{reason}"}}'


def metric_or_zero(metrics, name):
    return metrics.get(harness.METRICS.get(name, name), 0.0)


def delta(before, after, name):
    return metric_or_zero(after, name) - metric_or_zero(before, name)


def http(palisade, path, method="GET", timeout=3):
    """(status, body text) of one management request."""
    req = urllib.request.Request(palisade.url(path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def bans(palisade):
    """GET /bans as a list of dicts (address, strikes, ...); [] when it fails."""
    status, text = http(palisade, "/bans")
    if status != 200:
        return []
    try:
        return json.loads(text)
    except ValueError:
        return []


def banned_addresses(palisade):
    return [b.get("address") for b in bans(palisade)]


def wait_banned(palisade, address, timeout_s):
    """Polls GET /bans until `address` is listed; returns the seconds it took, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if address in banned_addresses(palisade):
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def ban_lines(palisade, address):
    """The daemon's `ban: ADDR for N s (strike K): reason` lines for `address`."""
    return re.findall(rf"ban: {re.escape(address)} for \d+ s \(strike \d+\): [^\n]*", palisade.log_tail(400000))


def check_share(run, result, expected, share, what):
    """SIPp `result` placed `expected` calls and at least `share` of them succeeded."""
    need = int(expected * share + 0.999999) if share < 1 else expected
    ok = (not result.timed_out and result.successful >= need
          and result.successful + result.failed <= expected)
    return run.check(ok, f"{what}: at least {need} of {expected} calls successful "
                         f"(got {result.successful}, failed {result.failed})", result.details())


def flood_with_calls(run, palisade, cfg, pbx_port, scenario, flood_rate, flood_s, calls, rate, label,
                     ban_within_s=3.0, min_flood_rate=5000, expect_ban=True):
    """Carrier (127.0.0.4) calls at `rate`/s to the SIPp PBX while SIPp floods `scenario` from
    FLOODER_IP at `flood_rate`/s for `flood_s` seconds, starting 2 s into the calls. Checks that
    the calls succeed (99.9 %), that the flooder is banned within `ban_within_s` and listed by
    GET /bans, that its excess and then everything it sends is dropped and counted, and that the
    trunk is never limited. With expect_ban=False (flood.ban_excess = 0) it checks instead that
    the flooder is never banned and that all but its allowance is dropped as rate_limit.
    Returns (metrics before, metrics after)."""
    public = (harness.PUBLIC_IP, cfg["public"]["udp_port"])
    before = palisade.metrics()
    pair = harness.start_calls(run, public, "uas", "uac", calls, rate, harness.PBX_IP, pbx_port, harness.CARRIER_IP,
                               timeout_s=calls // rate + 60)
    time.sleep(2)
    run.check(pair.uac.popen.poll() is None, f"{label}: carrier calls are flowing before the flood")
    flood_port = harness.free_ports(FLOODER_IP, 1)[0]
    flood_calls = int(flood_rate * flood_s)
    flooder = run.sipp(f"flood-{scenario}", scenario, FLOODER_IP, flood_port, remote=public, calls=flood_calls,
                       rate=flood_rate, timeout_s=flood_s + 30, recv_timeout_ms=0,
                       extra=["-s", harness.TEST_USER["name"]])
    if expect_ban:
        took = wait_banned(palisade, FLOODER_IP, ban_within_s + 2)
        run.check(took is not None and took <= ban_within_s,
                  f"{label}: the flooder {FLOODER_IP} is listed by GET /bans within {ban_within_s:g} s of the flood's "
                  "start" + (f" ({took:.2f} s)" if took is not None else ""),
                  f"GET /bans: {bans(palisade)}\n{palisade.log_tail()}")
    flood = flooder.wait()
    achieved = float(flood.stats.get("CallRate(C)", "0") or 0)
    run.log(f"{label}: flooder sent {flood.count('OutgoingCall(C)')} requests at {achieved:.0f}/s")
    run.check(flood.count("OutgoingCall(C)") == flood_calls and not flood.timed_out,
              f"{label}: the flooder sent all {flood_calls} requests", flood.details())
    run.check(achieved >= min_flood_rate, f"{label}: the flood ran at >= {min_flood_rate}/s (measured {achieved:.0f}/s)",
              flood.details())
    uac, uas = pair.wait()
    check_share(run, uac, calls, 0.999, f"{label}: carrier calls during the flood (caller)")
    check_share(run, uas, calls, 0.999, f"{label}: carrier calls during the flood (PBX)")
    harness.wait_idle(run, palisade, label)
    after = palisade.metrics()

    rate_limited = delta(before, after, drops("rate_limit"))
    banned = delta(before, after, drops("banned"))
    sent = flood.count("OutgoingCall(C)")
    run.log(f"{label}: drops rate_limit +{rate_limited:g}, banned +{banned:g}, flood sent {sent}")
    if expect_ban:
        ban_excess = cfg.get("flood", {}).get("ban_excess", 100)
        run.check(rate_limited >= ban_excess, f"{label}: the flood's excess is dropped as rate_limit "
                  f"(+{rate_limited:g}, at least ban_excess = {ban_excess})")
        run.check(banned >= 0.9 * sent, f"{label}: once banned, the rest is dropped as banned "
                  f"(+{banned:g} of {sent} sent)")
        run.check(delta(before, after, "palisade_bans_total") >= 1, f"{label}: palisade_bans_total counts the ban")
        lines = ban_lines(palisade, FLOODER_IP)
        run.check(len(lines) == 1 and "rate limit" in lines[0], f"{label}: one ban line, for its rate",
                  "\n".join(lines))
        run.check(banned_addresses(palisade) == [FLOODER_IP], f"{label}: only the flooder is banned (not the carrier)",
                  str(bans(palisade)))
    else:
        run.check(rate_limited >= 0.99 * sent and banned == 0,
                  f"{label}: never banned, all but its allowance is dropped as rate_limit "
                  f"(+{rate_limited:g} of {sent} sent, banned +{banned:g})")
        run.check(delta(before, after, "palisade_bans_total") == 0 and bans(palisade) == [],
                  f"{label}: with flood.ban_excess = 0 nobody is banned", str(bans(palisade)))
    run.check(delta(before, after, "calls_answered") >= int(calls * 0.999 + 0.999999)
              and delta(before, after, "calls_attempted") == calls,
              f"{label}: Palisade saw exactly the {calls} carrier calls (nothing of the flood became a call)",
              f"attempted +{delta(before, after, 'calls_attempted'):g}, answered +{delta(before, after, 'calls_answered'):g}")
    run.check(delta(before, after, rejections("rate_limit")) == 0 and delta(before, after, drops("overload")) == 0
              and delta(before, after, rejections("overload")) == 0,
              f"{label}: no 503 for rate or overload, no overload shedding",
              "\n".join(f"{k} +{delta(before, after, k):g}" for k in
                        (rejections("rate_limit"), drops("overload"), rejections("overload"))))
    return before, after
