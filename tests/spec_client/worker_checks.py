#!/usr/bin/python3
"""worker_checks.py NODES_EP WORKERS_EP BROKER_CERT WORKER_KEYS_DIR [REQUEST_TIMEOUT_MS]

The third part of the spec client's scenario, against a broker with NO
matcher (and request_timeout REQUEST_TIMEOUT_MS, default 8000): this
script's own Python workers (afworker.py) speak the backend dialog as
the service "matcher" (5.13, 5.14, 8.5, 10.6), admitted by writing their
certificates into the broker's worker keys directory (2.3, 2.4), and
answer the RESOLVEs of a simulated node themselves. Also, on fresh
accounts: 441 at 64 devices (5.2), 429 after 10 wrong passwords (6,
8.7). Written from protocol/SPEC.md alone.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from afclient import Client, Timeout, load_cert, new_keypair, new_rid  # noqa: E402
from afworker import Worker  # noqa: E402
from run_checks import PC, PHONE, attempt, check, err, strip, summary  # noqa: E402

PW_WAIT = 30.0


def no_message(w, seconds, pred=lambda m: m["cmd"] != "PONG", since=None):
    time.sleep(seconds)
    return [strip(m) for m in w.events(pred, since=since)]


def devices_checks(ep, key, account, password):
    """5.2 step 5: the 65th device of an account -> 441 (one key, one device:
    each new device is a new connection with a new keypair)."""
    codes = []
    last = None
    for n in range(2, 66):
        c = Client(ep, key, new_keypair())
        try:
            c.connect()
            last = c.request("LOGIN", timeout=PW_WAIT, account=account, password=password,
                             device=dict(PC, name="spec pc %d" % n))
            codes.append(last["cmd"] if last["cmd"] != "ERROR" else last.get("code"))
        finally:
            c.close()
    check("devices 2..64 of one account log in", codes[:63] == ["LOGIN_OK"] * 63,
          [x for x in codes[:63] if x != "LOGIN_OK"][:5])
    check("the 65th device -> ERROR 441 (AF_MAX_DEVICES 64)", codes[63:] == [441], strip(last))
    return codes


def ratelimit_checks(ep, key):
    account = "spec3-rl-%s" % os.urandom(4).hex()
    password = "pw-" + os.urandom(8).hex()
    C1 = Client(ep, key, new_keypair())
    C1.connect()
    C1.register(account, password, timeout=PW_WAIT)
    lo = C1.login(account, PHONE, password=password)
    C2 = Client(ep, key, new_keypair())
    C2.connect()
    codes = []
    for i in range(10):
        r = C2.request("LOGIN", timeout=PW_WAIT, account=account, password="wrong-%02d-password" % i, device=PC)
        codes.append(r.get("code"))
    check("10 wrong passwords -> 401 each", codes == [401] * 10, codes)
    r = C2.request("LOGIN", timeout=PW_WAIT, account=account, password="wrong-10-password", device=PC)
    err(r, 429, name="the 11th wrong password from this source")
    r = C2.request("LOGIN", timeout=PW_WAIT, account=account, password=password, device=PC)
    err(r, 429, name="then the right password too (locked for this source)")
    if r.get("code") == 429:
        check("429 reason says how long to wait", any(ch.isdigit() for ch in r.get("reason", "")), r.get("reason"))
    C3 = Client(ep, key, new_keypair())
    C3.connect()
    r = C3.request("LOGIN", timeout=PW_WAIT, account=account, password=password, device=PC)
    err(r, 429, name="the right password on a new connection from the same address")
    C3.close()
    C1.reconnect()
    r = C1.request("LOGIN", timeout=PW_WAIT, account=account, deviceId=lo["deviceId"], device=PHONE)
    check("a login by key is never limited (8.7): LOGIN_OK while the account is locked",
          r["cmd"] == "LOGIN_OK" and r.get("deviceId") == lo["deviceId"], strip(r))
    C1.close()
    C2.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("nodes_ep")
    ap.add_argument("workers_ep")
    ap.add_argument("broker_cert")
    ap.add_argument("worker_keys")
    ap.add_argument("request_timeout", nargs="?", type=int, default=8000)
    a = ap.parse_args()
    key = load_cert(a.broker_cert)
    rt = a.request_timeout / 1000.0
    account = "spec3-%s" % os.urandom(5).hex()
    password = "pw-" + os.urandom(8).hex()

    A = Client(a.nodes_ep, key, new_keypair())
    A.connect()
    A.register(account, password, timeout=PW_WAIT)
    la = A.login(account, PHONE, password=password)
    da = la["deviceId"]

    # 8.5 Timeout: no worker of the service; the request waits in the queue
    # until its deadline (the 441 and 429 checks run meanwhile)
    rid0 = new_rid()
    t0 = time.monotonic()
    A.send("RESOLVE", rid=rid0, program="weixin")

    # 2.4: a key not in the worker keys directory: no message at all
    U = Worker(a.workers_ep, key)
    try:
        U.connect(timeout=2.5)
        check("a worker key not in the keys directory gets no message at all", False, U.events())
    except Timeout:
        check("a worker key not in the keys directory gets no message at all", True)
    U.close()

    # 5.14: before READY, anything else -> DISCONNECT "send READY first"
    W1 = Worker(a.workers_ep, key)
    W1.allow(a.worker_keys, "spec-w1")
    attempt("allowed worker connects", lambda: W1.connect(timeout=10))
    d = W1.events(lambda m: m["cmd"] == "DISCONNECT")
    check("a PING before READY -> DISCONNECT 'send READY first'",
          d and d[0].get("reason") == "send READY first" and not W1.events(lambda m: m["cmd"] == "PONG"),
          [strip(m) for m in W1.events()])
    W1.heartbeat_enabled = False
    W1.drop_events()
    t = time.monotonic()
    W1.ready("no-such-service")
    m = attempt("READY unknown service", lambda: W1.wait_event(lambda m: m["cmd"] == "DISCONNECT", 5))
    check("READY for an unknown service -> DISCONNECT \"unknown service 'no-such-service'\"",
          m is not None and m.get("reason") == "unknown service 'no-such-service'", strip(m))

    attempt("441 checks", lambda: devices_checks(a.nodes_ep, key, account, password))
    attempt("429 checks", lambda: ratelimit_checks(a.nodes_ep, key))

    r = attempt("RESOLVE with no worker", lambda: A.wait_reply(rid0, rt + 10))
    dt = time.monotonic() - t0
    err(r, 503, rid0, "RESOLVE with no matcher worker, at the request deadline")
    check("  ... not before request_timeout (%.1f s after; %.1f s)" % (dt, rt), dt >= rt - 0.3, dt)
    check("  ... within request_timeout + 3 s", dt <= rt + 3, dt)
    if r and r.get("code") == 503:
        check("  ... reason 'no matcher answered within %d ms'" % a.request_timeout,
              r.get("reason") == "no matcher answered within %d ms" % a.request_timeout, r.get("reason"))

    # 5.13 READY: no answer on success; then PING -> PONG loggedIn
    W1.drop_events()
    t = time.monotonic()
    W1.ready("matcher", credit=1)
    check("READY matcher -> no answer", not no_message(W1, 0.5, pred=lambda m: True, since=t))
    W1.heartbeat_enabled = True
    p = attempt("worker PING", lambda: W1.ping(5))
    check("registered worker: PING -> PONG loggedIn true, no rid", p is not None and p.get("loggedIn") is True
          and "rid" not in p, strip(p))

    # a job: the broker's rid, the program, the sender's device with its id
    ra, rb = new_rid(), new_rid()
    A.send("RESOLVE", rid=ra, program="weixin")
    A.send("RESOLVE", rid=rb, program="zz.unknown", device=PC)
    j1 = attempt("worker gets RESOLVE", lambda: W1.next_job(5))
    if not j1:
        return 1
    check("job: RESOLVE with a 16-byte broker rid of its own (not the node's)",
          isinstance(j1.get("rid"), bytes) and len(j1["rid"]) == 16 and j1["rid"] not in (ra, rb), strip(j1))
    dev = j1.get("device", {})
    check("job: program, and device = the login description with id = the node's device ID",
          j1.get("program") == "weixin" and dev.get("id") == da
          and {k: v for k, v in dev.items() if k != "id"} == PHONE, strip(j1))
    time.sleep(0.7)
    check("credit 1: no second job while the first is open", not W1.events(lambda m: m["cmd"] == "RESOLVE"))
    W1.send("RESOLVED", rid=new_rid(), program="weixin", fit=1)        # no such request: dropped
    W1.answer(j1, "RESOLVED", program="weixin", fit=0, zzTop="x",
              package={"program": "weixin", "versionName": "9.9.9-spec", "zzUnknown": 5})
    r = attempt("node gets the worker's RESOLVED", lambda: A.wait_reply(ra, 10))
    check("node gets the worker's RESOLVED with its own rid", r and r["cmd"] == "RESOLVED" and r.get("rid") == ra
          and r.get("fit") == 0 and r.get("package", {}).get("versionName") == "9.9.9-spec", strip(r))
    check("a RESOLVED with an unknown rid was dropped (the node's answer is the real one)",
          r is not None and r.get("fit") == 0, strip(r))
    check("the broker re-encodes: unknown keys do not reach the node (5.8)", r is not None and "zzTop" not in r
          and "zzUnknown" not in r.get("package", {}), strip(r))
    j2 = attempt("the second job after the answer (credit 1)", lambda: W1.next_job(5))
    if j2:
        check("job 2: the node's own device map as given (no id added)", j2.get("program") == "zz.unknown"
              and j2.get("device") == PC, strip(j2))
        W1.answer(j2, "ERROR", code=500, reason="spec worker: catalog unreadable")
        r = attempt("node gets the worker's ERROR", lambda: A.wait_reply(rb, 10))
        check("a worker's ERROR reaches the node with its rid (5.12)", r and r["cmd"] == "ERROR"
              and r.get("code") == 500 and r.get("rid") == rb and r.get("reason") == "spec worker: catalog unreadable",
              strip(r))

    # 8.5 Hand-over on DISCONNECT: same broker rid to another worker
    rc = new_rid()
    A.send("RESOLVE", rid=rc, program="notes")
    j3 = attempt("job 3", lambda: W1.next_job(5))
    W2 = Worker(a.workers_ep, key)
    W2.allow(a.worker_keys, "spec-w2")
    W2.connect(timeout=10)
    W2.ready("matcher", credit=4)
    W2.ping(5)
    W1.drop_events()
    W1.disconnect("spec worker leaving")
    j3b = attempt("job 3 handed to W2", lambda: W2.next_job(5))
    check("DISCONNECT: the held job goes to another worker, same broker rid",
          j3 and j3b and j3b["rid"] == j3["rid"] and j3b.get("program") == "notes", (j3 and strip(j3), j3b and strip(j3b)))
    if j3:
        t = time.monotonic()
        W1.answer(j3, "RESOLVED", program="notes", fit=1)
        m = attempt("late answer", lambda: W1.wait_event(lambda m: m["cmd"] == "DISCONNECT", 5, since=t))
        check("an answer from the removed worker -> DISCONNECT (unknown worker)", m is not None, strip(m))
    if j3b:
        W2.answer(j3b, "RESOLVED", program="notes", fit=0, package={"program": "notes", "versionName": "w2"})
    r = attempt("node answer after hand-over", lambda: A.wait_reply(rc, 10))
    check("the node gets exactly the second worker's answer", r and r["cmd"] == "RESOLVED"
          and r.get("package", {}).get("versionName") == "w2", strip(r))
    time.sleep(0.3)
    with A._cv:
        dup = rc in A._replies
    check("  ... and only one answer", not dup)

    # 8.5 Hand-over on silence: W2 dies mid-job (no DISCONNECT)
    rd = new_rid()
    A.send("RESOLVE", rid=rd, program="notes")
    j4 = attempt("job 4", lambda: W2.next_job(5))
    W3 = Worker(a.workers_ep, key)
    W3.allow(a.worker_keys, "spec-w3")
    W3.connect(timeout=10)
    W3.drop_events()
    t = time.monotonic()
    W2.die()
    W3.ready("matcher", credit=2)
    j4b = attempt("job 4 handed over after W2's silence", lambda: W3.next_job(rt))
    dt = time.monotonic() - t
    hb = 1.0    # the broker's H (it_spec_client.sh starts it with --heartbeat 1000), L = 3
    check("a silent worker's job goes to another worker, same broker rid (after %.1f s)" % dt,
          j4 and j4b and j4b["rid"] == j4["rid"], (j4 and strip(j4), j4b and strip(j4b)))
    check("  ... after H x L of silence, not before (%.1f s; H x L = %.0f s)" % (dt, 3 * hb),
          dt >= 3 * hb - 0.5, dt)
    if j4b:
        W3.answer(j4b, "RESOLVED", program="notes", fit=2, reason="spec worker: nothing fits")
    r = attempt("node answer after W2 died", lambda: A.wait_reply(rd, 10))
    check("the node gets the third worker's answer", r and r["cmd"] == "RESOLVED" and r.get("fit") == 2
          and r.get("reason") == "spec worker: nothing fits", strip(r))

    # re-ready: W1 (unknown since its DISCONNECT) sends READY again
    W1.ready("matcher")
    p = attempt("W1 re-ready", lambda: W1.ping(5))
    check("after DISCONNECT a worker registers again with READY (PONG loggedIn)",
          p is not None and p.get("loggedIn") is True, strip(p))
    for w in (W1, W3):
        w.disconnect()
    time.sleep(0.3)
    t = time.monotonic()
    W3.send("PING")
    m = attempt("PING after DISCONNECT", lambda: W3.wait_event(lambda m: m["cmd"] in ("PONG", "DISCONNECT"), 5,
                                                              since=t))
    check("a worker that sent DISCONNECT is unknown: PING -> DISCONNECT", m is not None and m["cmd"] == "DISCONNECT",
          strip(m))
    for w in (W1, W3):
        w.close()
    A.close()
    return summary("worker_checks")


if __name__ == "__main__":
    sys.exit(main())
