#!/usr/bin/env python3
"""Call load over TCP in both directions: caller -> public listener -> PBX (2,000 calls) and
PBX -> PBX-facing listener -> carrier (500 calls), with 1 and 4 workers. SIPp runs with -t t1
(one connection per peer) and [pbx]/[carrier] use transport "tcp". Every call must
succeed on both SIPp sides and Palisade's counters must agree."""
import harness

CALLS_IN = 2000
CALLS_OUT = 500
RATE = 250


def body(run):
    for workers in harness.worker_counts(run.args):
        harness.call_load(run, workers, "tcp", CALLS_IN, CALLS_OUT, RATE)


if __name__ == "__main__":
    harness.main_wrapper("test_calls_tcp", __doc__, body)
