#!/usr/bin/python3
"""cluster_checks.py --shards N --dir DIR BROKER_CERT EP1 EP2 EP3

AFP v1 against a running cluster (it starts nothing), from protocol/SPEC.md
alone: 5.3 (LOGIN_OK.standby), 5.36 (REDIRECT, held logins), 8.1/8.3
(reconnect, login by key). N is the cluster's number of shards (the
protocol does not tell a node; the operator does). DIR is the dialog with
the test script: this writes DIR/accounts ("ACCOUNT SHARD OWNER-ENDPOINT"
a line, for the script to compare with etcd) and then DIR/kill (the nodes
endpoint of the broker to kill -9), and waits for DIR/killed.

Prints one "ok - ..." / "not ok - ..." line per check, "# note" lines for
behaviour the spec leaves open; exit 1 if any check failed.
"""

import argparse
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from afclient import Client, Timeout, load_cert, new_keypair, now_ms  # noqa: E402
from run_checks import PHONE, attempt, check, strip, summary  # noqa: E402

PASSWORD = "correct horse battery"
PROGRAM = "org.example.specapp"


def note(text):
    print("# note: " + text, flush=True)


class Cluster:
    def __init__(self, a):
        self.key = load_cert(a.cert)
        self.eps = a.endpoints
        self.shards = a.shards
        self.dir = a.dir
        self.clients = []

    def shard_of(self, account):
        """SPEC 5.36: the first two bytes of the BLAKE2b-128 of the account
        name, big-endian, modulo the number of shards."""
        d = hashlib.blake2b(account.encode(), digest_size=16).digest()
        return int.from_bytes(d[:2], "big") % self.shards

    def client(self, ep, kp=None):
        c = Client(ep, self.key, kp or new_keypair())
        c.connect()
        self.clients.append(c)
        return c

    def close_all(self):
        for c in self.clients:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass


def redirect_ok(cl, name, r, rid, account, owner=None, sender=None):
    """Check that r is a REDIRECT for account as 5.36 defines it; returns
    its endpoint (or None)."""
    if not check("%s -> REDIRECT" % name, r is not None and r.get("cmd") == "REDIRECT", strip(r)):
        return None
    check("%s: REDIRECT echoes the rid" % name, r.get("rid") == rid, strip(r))
    want = cl.shard_of(account)
    check("%s: REDIRECT.shard is the client's BLAKE2b-128 shard (%d)" % (name, want),
          r.get("shard") == want and type(r.get("shard")) is int, strip(r))
    check("%s: REDIRECT.epoch is a uint >= 1 (the shard is owned)" % name,
          type(r.get("epoch")) is int and r["epoch"] >= 1, strip(r))
    ep = r.get("endpoint")
    check("%s: REDIRECT.endpoint is another broker's nodes endpoint" % name,
          isinstance(ep, str) and ep in cl.eps and ep != sender, strip(r))
    if owner is not None:
        check("%s: REDIRECT.endpoint is the owner's" % name, ep == owner, "%r, owner %s" % (strip(r), owner))
    return ep if isinstance(ep, str) and ep in cl.eps else None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shards", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("cert")
    p.add_argument("endpoints", nargs=3)
    a = p.parse_args()
    cl = Cluster(a)
    try:
        run(cl)
    finally:
        cl.close_all()
    return summary("cluster_checks")


def run(cl):
    eps = cl.eps
    # ---- PING is answered by any broker (5.36), not logged in (5.10)
    probes = {}
    for i, ep in enumerate(eps):
        c = cl.client(ep)
        probes[ep] = c
        pong = attempt("PING to broker %d" % (i + 1), c.ping)
        check("PING to broker %d -> PONG, not logged in" % (i + 1),
              pong is not None and pong.get("cmd") == "PONG" and not pong.get("loggedIn"), strip(pong))

    # ---- REGISTER at broker 1 until every broker owns an account
    tag = os.urandom(3).hex()
    owner_of = {}                   # account -> owner endpoint
    first = eps[0]
    detailed = 0
    for i in range(40):
        if len(set(owner_of.values())) == len(eps) and len(owner_of) >= 4:
            break
        acct = "sc%s.%d" % (tag, i)
        rid = os.urandom(16)
        probes[first].send("REGISTER", rid=rid, account=acct, password=PASSWORD)
        r = attempt("REGISTER %s at broker 1" % acct, lambda: probes[first].wait_reply(rid, 10))
        if r is None:
            continue
        if r.get("cmd") == "OK":
            owner_of[acct] = first
            continue
        if detailed < 2:
            ep = redirect_ok(cl, "REGISTER at a non-owner", r, rid, acct, sender=first)
            detailed += 1
        else:
            ok = (r.get("cmd") == "REDIRECT" and r.get("rid") == rid and r.get("shard") == cl.shard_of(acct)
                  and r.get("endpoint") in eps and r.get("endpoint") != first)
            check("REGISTER %s at broker 1: OK or a well-formed REDIRECT" % acct, ok, strip(r))
            ep = r.get("endpoint") if ok else None
        if ep is None:
            continue
        r2 = attempt("REGISTER %s at the REDIRECT's endpoint" % acct,
                     lambda: probes[ep].request("REGISTER", 10, account=acct, password=PASSWORD))
        if check("REGISTER sent again at REDIRECT.endpoint -> OK", r2 is not None and r2.get("cmd") == "OK",
                 strip(r2)):
            owner_of[acct] = ep
    owners = set(owner_of.values())
    check("an account owned by each of the 3 brokers (%d accounts)" % len(owner_of), len(owners) == len(eps),
          owner_of)
    with open(os.path.join(cl.dir, "accounts"), "w") as f:
        for acct, ep in owner_of.items():
            f.write("%s %d %s\n" % (acct, cl.shard_of(acct), ep))

    # one account per broker, each logged in on its owner
    chosen = {}
    for acct, ep in owner_of.items():
        chosen.setdefault(ep, acct)
    nodes = {}                      # account -> (Client, LOGIN_OK, keypair)
    for ep, acct in chosen.items():
        other = next(e for e in eps if e != ep)
        r = attempt("REGISTER of an existing account at a non-owner",
                    lambda: probes[other].request("REGISTER", 10, account=acct, password=PASSWORD))
        check("REGISTER %s (exists) at a non-owner -> REDIRECT, not 409" % acct,
              r is not None and r.get("cmd") == "REDIRECT" and r.get("endpoint") == ep, strip(r))
        kp = new_keypair()
        c = cl.client(other, kp)
        rid = os.urandom(16)
        c.send("LOGIN", rid=rid, account=acct, password=PASSWORD, device=PHONE)
        r = attempt("LOGIN at a non-owner", lambda: c.wait_reply(rid, 15))
        target = redirect_ok(cl, "LOGIN (password) at a non-owner", r, rid, acct, owner=ep, sender=other)
        c.close()
        c = cl.client(target or ep, kp)
        ok = attempt("LOGIN sent again at REDIRECT.endpoint", lambda: c.login(acct, PHONE, password=PASSWORD))
        if not check("LOGIN sent again at REDIRECT.endpoint -> LOGIN_OK (%s)" % acct, ok is not None):
            continue
        nodes[acct] = (c, ok, kp)
        sb = ok.get("standby")
        check("LOGIN_OK.standby names another broker's nodes endpoint",
              isinstance(sb, str) and sb in eps and sb != ep, strip(ok))
        pong = attempt("PING after LOGIN_OK", c.ping)
        check("PONG after LOGIN_OK has loggedIn true", pong is not None and pong.get("loggedIn") is True,
              strip(pong))

    # a logged-in session's requests on the owner work (REPORT, APPS, CONFIG)
    blob = os.urandom(64)
    for acct, (c, ok, kp) in nodes.items():
        r = attempt("REPORT on the owner", lambda: c.report(1, "install", PROGRAM, versionName="1.0", at=now_ms()))
        check("REPORT on the owner -> OK", r is not None)
        r = attempt("APPS on the owner", lambda: c.apps(c.device_id))
        check("APPS on the owner lists the reported program",
              r is not None and [x.get("program") for x in r.get("apps", [])] == [PROGRAM], strip(r))
        r = attempt("CONFIG_PUT on the owner", lambda: c.config_put(PROGRAM, now_ms(), blob))
        check("CONFIG_PUT on the owner -> OK", r is not None)
        r = attempt("CONFIG_GET on the owner", lambda: c.config_get(PROGRAM))
        check("CONFIG_GET on the owner -> the blob put", r is not None and r.get("blob") == blob, strip(r))

    # login by key of a logged-in device at a non-owner: REDIRECT too
    if nodes:
        acct, (c, ok, kp) = next(iter(nodes.items()))
        ep = owner_of[acct]
        other = next(e for e in eps if e != ep)
        c2 = cl.client(other, kp)
        rid = os.urandom(16)
        c2.send("LOGIN", rid=rid, account=acct, deviceId=ok["deviceId"], device=PHONE)
        r = attempt("LOGIN by key at a non-owner", lambda: c2.wait_reply(rid, 15))
        redirect_ok(cl, "LOGIN by key at a non-owner", r, rid, acct, owner=ep, sender=other)
        rid = os.urandom(16)
        c2.send("LOGIN", rid=rid, account=acct, password="wrong password!", device=PHONE)
        r = attempt("LOGIN, wrong password, at a non-owner", lambda: c2.wait_reply(rid, 15))
        check("LOGIN with a wrong password at a non-owner -> REDIRECT (not 401)",
              r is not None and r.get("cmd") == "REDIRECT" and r.get("endpoint") == ep, strip(r))
        c2.close()
        # observed, spec silent (7.2 has no stage for REDIRECT)
        for what, fields in (("an invalid device map", dict(account=acct, password=PASSWORD, device={"name": 1})),
                             ("no device", dict(account=acct, password=PASSWORD))):
            r = probes[other].request("LOGIN", 15, **fields)
            note("LOGIN with %s at a non-owner -> %s %s" % (what, r.get("cmd"), r.get("code", "")))
        # a REGISTER whose name is of a bad form (stage 12 of 7.2) at a non-owner
        # of its shard: 400 or REDIRECT? (spec silent)
        known = {cl.shard_of(x): e for x, e in owner_of.items()}
        bad = next((("Sc%s.%d" % (tag, i)) for i in range(5000)
                    if cl.shard_of("Sc%s.%d" % (tag, i)) in known), None)
        if bad:
            nonowner = next(e for e in eps if e != known[cl.shard_of(bad)])
            r = probes[nonowner].request("REGISTER", 10, account=bad, password=PASSWORD)
            note("REGISTER of a name of a bad form (%s) at a non-owner of its shard -> %s %s"
                 % (bad, r.get("cmd"), r.get("code", "")))
            r = probes[nonowner].request("REGISTER", 10, account=bad.lower(), password="short")
            note("REGISTER with a too short password at a non-owner of its shard -> %s %s"
                 % (r.get("cmd"), r.get("code", "")))
        c.drop_events()

    # ---- failover: kill the owner of one account, reconnect as 8.1/5.3 say
    victim = None
    for acct, (c, ok, kp) in nodes.items():
        if owner_of[acct] != eps[0] and ok.get("standby") in eps:
            victim = acct
            break
    if victim is None:
        check("an account to fail over (logged in, with a standby)", False, list(nodes))
        return
    c, ok, kp = nodes[victim]
    dead_ep, standby = owner_of[victim], ok["standby"]
    survivors = [a for a in nodes if owner_of[a] != dead_ep]
    epoch_before = None
    r = probes[next(e for e in eps if e not in (dead_ep, standby))].request(
        "REGISTER", 10, account=victim, password=PASSWORD)
    if r.get("cmd") == "REDIRECT":
        epoch_before = r.get("epoch")
    with open(os.path.join(cl.dir, "kill"), "w") as f:
        f.write(dead_ep + "\n")
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(cl.dir, "killed")) and time.monotonic() < deadline:
        time.sleep(0.05)
    t_kill = time.monotonic()
    # at once, a REGISTER of a new account of the dead owner's shard at the
    # standby: held until the claim (5.36, at most 6 s) or answered at once
    fresh = next(("sc%s.h%d" % (tag, i) for i in range(5000)
                  if cl.shard_of("sc%s.h%d" % (tag, i)) == cl.shard_of(victim)), None)
    held = None
    if fresh:
        hrid = os.urandom(16)
        probes[standby].send("REGISTER", rid=hrid, account=fresh, password=PASSWORD)
        try:
            held = probes[standby].wait_reply(hrid, 10)
        except Timeout:
            pass
        dt = time.monotonic() - t_kill
        check("REGISTER at the standby just after the owner's kill is answered within 7 s (5.36: held <= 6 s)",
              held is not None and dt < 7.5, "%.1f s: %r" % (dt, strip(held)))
        if held is not None:
            note("REGISTER at the standby %.1f s after the kill -> %s %s" % (
                dt, held.get("cmd"), strip({k: v for k, v in held.items() if k not in ("v", "cmd", "rid")})))
            check("  ... with OK (this broker took the shard) or REDIRECT (5.36), not 'REGISTER_OK'",
                  held.get("cmd") in ("OK", "REDIRECT"), strip(held))
    # 8.1: the broker is dead after nothing for H x L
    while not c.broker_dead and time.monotonic() - t_kill < 10:
        time.sleep(0.05)
    check("the node sees the killed owner as dead (nothing for H x L, %.1f s)" % (time.monotonic() - t_kill),
          c.broker_dead)
    c.close()
    # 5.3: standby first, once; its LOGIN is held until the claim (5.36): wait >= 7 s
    order = [standby] + [e for e in eps if e not in (standby, dead_ep)] + [dead_ep]
    relogin = None
    redirects = 0
    t0 = time.monotonic()
    for ep in order:
        if relogin is not None:
            break
        n = cl.client(ep, kp)
        for _ in range(4):
            rid = os.urandom(16)
            n.send("LOGIN", rid=rid, account=victim, deviceId=ok["deviceId"], device=PHONE)
            try:
                r = n.wait_reply(rid, 15)
            except Timeout:
                note("LOGIN by key at %s: no answer in 15 s" % ep)
                break
            if r.get("cmd") == "LOGIN_OK":
                n._on_login_ok(r)
                relogin = (ep, n, r)
                break
            if r.get("cmd") == "REDIRECT":
                redirects += 1
                note("LOGIN by key at %s after the kill -> REDIRECT %r" % (ep, strip(r)))
                if r.get("endpoint") in eps and r.get("endpoint") != ep:
                    n.close()
                    ep = r["endpoint"]
                    n = cl.client(ep, kp)
                else:
                    time.sleep(1)   # 5.36: no endpoint: wait a second, try again
                continue
            note("LOGIN by key at %s after the kill -> %r" % (ep, strip(r)))
            break
    if not check("after the kill the node logs in again by key (LOGIN_OK, %.1f s)" % (time.monotonic() - t0),
                 relogin is not None):
        return
    ep, n, r = relogin
    check("  ... at LOGIN_OK.standby, with no REDIRECT (5.3, held login)", ep == standby and redirects == 0,
          "served at %s, standby %s, %d REDIRECTs" % (ep, standby, redirects))
    check("  ... the same device and account", r.get("deviceId") == ok["deviceId"] and r.get("account") == victim,
          strip(r))
    check("  ... LOGIN_OK.reportSeq is the REPORT's of before the kill (1)", r.get("reportSeq") == 1, strip(r))
    sb = r.get("standby")
    check("  ... its LOGIN_OK.standby, if any, is a live broker's (not the killed one)",
          sb in (None, "") or (sb in eps and sb not in (dead_ep, ep)), strip(r))
    x = attempt("APPS on the new owner", lambda: n.apps(n.device_id))
    check("APPS on the new owner: the install reported before the kill is there",
          x is not None and [y.get("program") for y in x.get("apps", [])] == [PROGRAM], strip(x))
    x = attempt("CONFIG_GET on the new owner", lambda: n.config_get(PROGRAM))
    check("CONFIG_GET on the new owner: the blob put before the kill", x is not None and x.get("blob") == blob,
          strip(x))
    x = attempt("REPORT on the new owner", lambda: n.report(2, "uninstall", PROGRAM, at=now_ms()))
    check("REPORT on the new owner -> OK", x is not None)
    # the third broker now sends the account to the new owner, at a newer epoch
    third = [e for e in eps if e not in (dead_ep, ep)]
    if third:
        rid = os.urandom(16)
        probes[third[0]].send("REGISTER", rid=rid, account=victim, password=PASSWORD)
        x = attempt("REGISTER at the third broker after the failover", lambda: probes[third[0]].wait_reply(rid, 15))
        redirect_ok(cl, "REGISTER after the failover at a non-owner", x, rid, victim, owner=ep, sender=third[0])
        if x is not None and epoch_before is not None:
            check("  ... REDIRECT.epoch grew with the new owner (%s -> %s)" % (epoch_before, x.get("epoch")),
                  type(x.get("epoch")) is int and x["epoch"] > epoch_before, strip(x))
    # the killed broker comes back (the script restarts it on its store):
    # if its shard moves back, the session here gets a REDIRECT without rid
    # (5.36) and logs in again by key on the endpoint it names
    n.drop_events()
    with open(os.path.join(cl.dir, "restart"), "w") as f:
        f.write(dead_ep + "\n")
    try:
        rd = n.wait_event(lambda m: m["cmd"] == "REDIRECT", 25)
    except Timeout:
        rd = None
    if rd is None:
        note("no REDIRECT without rid within 25 s of the old owner's restart")
    else:
        check("REDIRECT on its own (no rid) to the session whose shard moved: shard, epoch, another endpoint",
              "rid" not in rd and rd.get("shard") == cl.shard_of(victim) and type(rd.get("epoch")) is int
              and rd.get("epoch") >= (x.get("epoch", 0) if x else 0) and rd.get("endpoint") in eps
              and rd.get("endpoint") != ep, strip(rd))
        note("the REDIRECT without rid: epoch %s (the failover's REDIRECT had %s), endpoint %s the restarted broker"
             % (rd.get("epoch"), x.get("epoch") if x else None, "is" if rd.get("endpoint") == dead_ep else "is not"))
        pong = attempt("PING after the REDIRECT without rid", n.ping)
        check("  ... the session there is gone (PONG without loggedIn)",
              pong is not None and not pong.get("loggedIn"), strip(pong))
        n.close()
        if rd.get("endpoint") in eps:
            m = cl.client(rd["endpoint"], kp)
            y = attempt("LOGIN by key at the REDIRECT's endpoint",
                        lambda: m.login(victim, PHONE, device_id=ok["deviceId"], timeout=15))
            check("  ... LOGIN by key at its endpoint -> LOGIN_OK, the same device",
                  y is not None and y.get("deviceId") == ok["deviceId"], strip(y))
            z = attempt("CONFIG_GET after the move back", lambda: m.config_get(PROGRAM))
            check("  ... and the data is there (CONFIG_GET)", z is not None and z.get("blob") == blob, strip(z))
    # sessions of accounts owned by the brokers still up carry on
    for acct in survivors:
        s = nodes[acct][0]
        x = attempt("APPS of a session on a live broker after the kill", lambda: s.apps(s.device_id))
        check("a session on a broker still up is still served after the kill (%s)" % acct,
              x is not None and s.logged_in, strip(x))


if __name__ == "__main__":
    sys.exit(main())
