#!/usr/bin/python3
"""social_checks.py ENDPOINT BROKER_CERT

The cross-account part of the spec client, against ONE broker with a
matcher (demo catalog without prices, plus game1 at 4.99 EUR and free1),
the contacts service and the payments service (test processor):
CONTACTS_EVAL (5.35, the OPRF done here: afoprf.py), CONTACTS_PUT,
FRIENDS, BLOCK, SHARE/SHARES, FRIEND_APPS, RECOMMEND, REFUSE,
FRIEND_INSTALL (5.38-5.45), BROWSE/GET between devices of one account
(5.47), RECORD_PUT/RECORD (5.47a), payments (5.46: PAYMENT_REQUIRED,
PAY_CONFIRM, PURCHASES), backups (5.48-5.50). Written from
protocol/SPEC.md alone. Prints "ok - ..." / "not ok - ..." lines.
"""

import argparse
import hashlib
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import afoprf  # noqa: E402
from afclient import Client, Timeout, decode, load_cert, new_keypair, new_rid, now_ms  # noqa: E402
from run_checks import HEX32, PHONE, attempt, check, err, item_of, summary  # noqa: E402

HEX16 = re.compile(r"^[0-9a-f]{16}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
W = 20.0            # a request that waits for a worker (matcher, contacts, payments)
PW_WAIT = 30.0
NOT_FRIENDS = "this contact is not a friend of yours and shares nothing publicly"
PHONE2 = dict(PHONE, name="Spec phone 2")


def short(m):
    if not isinstance(m, dict):
        return m
    return {k: (("<%d bytes>" % len(v)) if isinstance(v, bytes) and len(v) > 40 else v)
            for k, v in m.items() if k != "_t"}


def number():
    return ("+49151%08d" % int.from_bytes(os.urandom(4), "big"))[:14]


def device(ep, key, account, password, desc, register=False):
    c = Client(ep, key, new_keypair())
    c.connect()
    if register:
        c.register(account, password, timeout=PW_WAIT)
    c.login(account, desc, password=password, timeout=PW_WAIT)
    return c


def req(c, cmd, timeout=W, **f):
    rid = new_rid()
    c.send(cmd, rid=rid, **f)
    try:
        return rid, c.wait_reply(rid, timeout)
    except Timeout:
        return rid, {"cmd": "(no answer)"}


def answered(name, r, cmd, rid=None):
    return check(name + " -> " + cmd + (" with the rid" if rid else ""),
                 r.get("cmd") == cmd and (rid is None or r.get("rid") == rid), short(r))


# ------------------------------------------------------------------ 5.35


def tokens_for(c, numbers, name):
    """CONTACTS_EVAL of numbers; returns their tokens (first 32 bytes of
    the OPRF output) or None."""
    bl = [afoprf.blind(n.encode()) for n in numbers]
    rid, r = req(c, "CONTACTS_EVAL", elements=[e for _, e in bl])
    if not answered("%s: CONTACTS_EVAL of %d numbers" % (name, len(numbers)), r, "CONTACTS_EVALUATED", rid):
        return None
    ev = r.get("elements")
    if not check("%s: as many evaluated elements as sent, each 32 bytes" % name,
                 isinstance(ev, list) and len(ev) == len(numbers)
                 and all(isinstance(e, bytes) and len(e) == 32 for e in ev), short(r)):
        return None
    try:
        return [afoprf.finalize(n.encode(), b, e)[:32] for n, (b, _), e in zip(numbers, bl, ev)]
    except ValueError as e:
        check("%s: every evaluated element is a valid element" % name, False, e)
        return None


def eval_checks(A, X, ep, key):
    check("the OPRF (afoprf.py) gives RFC 9497's test vector A.1.1 #1", afoprf.self_test())
    n = number()
    b1, e1 = afoprf.blind(n.encode())
    b2, e2 = afoprf.blind(n.encode())
    rid, r = req(A, "CONTACTS_EVAL", elements=[e1, e2])
    if answered("CONTACTS_EVAL of one number blinded twice", r, "CONTACTS_EVALUATED", rid):
        ev = r.get("elements", [])
        check("keyId: 16 lowercase hex digits (the reference worker sends it)",
              isinstance(r.get("keyId"), str) and HEX16.match(r["keyId"]), short(r))
        kid = r.get("keyId")
        rid, r2 = req(A, "CONTACTS_EVAL", elements=[e1])
        check("keyId: the same in the next answer (one key)", r2.get("keyId") == kid, short(r2))
        check("the evaluated elements differ (two blinds)", len(ev) == 2 and ev[0] != ev[1], short(r))
        try:
            o1, o2 = afoprf.finalize(n.encode(), b1, ev[0]), afoprf.finalize(n.encode(), b2, ev[1])
            check("Finalize: one 64-byte output for the number whatever the blind", o1 == o2 and len(o1) == 64)
        except (ValueError, IndexError) as e:
            check("Finalize of both", False, e)
    rid, r = req(A, "CONTACTS_EVAL", elements=[])
    err(r, 400, rid, "CONTACTS_EVAL with 0 elements (1..1000)")
    rid, r = req(A, "CONTACTS_EVAL", elements=[e1] * 1001)
    err(r, 400, rid, "CONTACTS_EVAL with 1001 elements")
    rid, r = req(A, "CONTACTS_EVAL", elements=[e1, e1[:31]])
    err(r, 400, rid, "CONTACTS_EVAL with a 31-byte element")
    rid, r = req(A, "CONTACTS_EVAL", elements=[e1, b"\xff" * 32])
    if err(r, 400, rid, "CONTACTS_EVAL with a non-canonical element (worker)"):
        check("  ... the reason: 'element 1 is not a valid ristretto255 element' (counted from 0)",
              r.get("reason") == "element 1 is not a valid ristretto255 element", r.get("reason"))
    rid, r = req(A, "CONTACTS_EVAL", elements=[e1, e2, b"\0" * 32])
    err(r, 400, rid, "CONTACTS_EVAL with the identity element")
    rid, r = req(X, "CONTACTS_EVAL", elements=[e1])
    err(r, 440, rid, "CONTACTS_EVAL without a session")


def no_session_checks(X):
    t, h = [os.urandom(32)], os.urandom(16).hex()
    for cmd, f in (("CONTACTS_PUT", dict(op="add", tokens=t)), ("FRIENDS", {}), ("BLOCK", dict(op="block", tokens=t)),
                   ("SHARE", dict(program="notes", state="public")), ("SHARES", {}),
                   ("FRIEND_APPS", dict(tokens=t)), ("RECOMMEND", dict(tokens=t, program="notes")),
                   ("REFUSE", dict(op="all")), ("FRIEND_INSTALL", dict(tokens=t, program="notes")),
                   ("BROWSE", dict(deviceId=h)), ("GET", dict(program="notes", deviceId=h)),
                   ("PAY_CONFIRM", dict(intent=h, token="tok_approve")), ("PURCHASES", {}),
                   ("RECORD_PUT", dict(ask=h, program="notes", deviceId=h, code=404, reason="x")),
                   ("BACKUP_PUT", dict(backups=[backup_map("notes", "1.0")])), ("BACKUPS", {}),
                   ("BACKUP_GET", dict(program="notes")),
                   ("RESTORE", dict(program="notes", latest=False, recommend=False))):
        rid, r = req(X, cmd, **f)
        check("%s without a session -> ERROR 440 with the rid" % cmd, r.get("cmd") == "ERROR" and r.get("code") == 440
              and r.get("rid") == rid, short(r))


def book_limit_checks(D):
    """dan: 20 x 1000 tokens fill the book (AF_MAX_BOOK 20,000); one more
    is 470 and nothing changes (FRIENDS still answers)."""
    rid, r = req(D, "CONTACTS_PUT", op="replace", tokens=[os.urandom(32) for _ in range(1000)])
    got = [r.get("cmd")]
    for _ in range(19):
        rid, r = req(D, "CONTACTS_PUT", op="add", tokens=[os.urandom(32) for _ in range(1000)])
        got.append(r.get("cmd"))
    check("a book of 20,000 tokens is taken (replace + 19 adds of 1000)", got == ["OK"] * 20, got)
    rid, r = req(D, "CONTACTS_PUT", op="add", tokens=[os.urandom(32)])
    err(r, 470, rid, "one token past AF_MAX_BOOK")
    rid, r = req(D, "CONTACTS_PUT", op="add", tokens=[])
    answered("adding nothing to the full book", r, "OK", rid)
    fl = friends(D)
    check("FRIENDS of the full book: an empty FRIEND_LIST", fl == [], fl)


def eval_limit_checks(D):
    """dan: 20 requests of 1000 elements use the allowance (20,000); the next
    is refused whole with 471; one element more too."""
    els = [afoprf.hash_to_group(os.urandom(8)) for _ in range(1000)]
    got = []
    for i in range(21):
        rid, r = req(D, "CONTACTS_EVAL", timeout=40.0, elements=els)
        got.append(r.get("cmd") if r.get("cmd") != "ERROR" else r.get("code"))
        if r.get("cmd") == "ERROR":
            break
    check("20 CONTACTS_EVAL of 1000 elements are evaluated (the 20,000 allowance)",
          got[:20] == ["CONTACTS_EVALUATED"] * 20, got)
    check("the 21st -> ERROR 471 (would pass contacts/eval_limit)", len(got) == 21 and got[20] == 471, got)
    rid, r = req(D, "CONTACTS_EVAL", elements=els[:1])
    if err(r, 471, rid, "one element more, with the allowance used"):
        check("  ... the reason names the limit 20000", "20000" in r.get("reason", "").replace(",", ""),
              r.get("reason"))


# ------------------------------------------------------------------ 5.38-5.45


def put(c, op, toks, name):
    rid, r = req(c, "CONTACTS_PUT", op=op, tokens=toks)
    return answered("%s: CONTACTS_PUT %s (%d tokens)" % (name, op, len(toks) if toks else 0), r, "OK", rid)


def friends(c):
    rid, r = req(c, "FRIENDS")
    if r.get("cmd") != "FRIEND_LIST" or r.get("rid") != rid:
        return None
    return r.get("tokens", [])


def put_checks(A, X):
    t = os.urandom(32)
    rid, r = req(A, "CONTACTS_PUT", op="merge", tokens=[t])
    err(r, 400, rid, "CONTACTS_PUT op 'merge'")
    rid, r = req(A, "CONTACTS_PUT", op="add", tokens=[t[:31]])
    err(r, 400, rid, "CONTACTS_PUT a 31-byte token")
    rid, r = req(A, "CONTACTS_PUT", op="add", tokens=[t] * 1001)
    err(r, 400, rid, "CONTACTS_PUT 1001 tokens (0..1000)")
    rid, r = req(A, "CONTACTS_PUT", op="own", tokens=[os.urandom(32) for _ in range(5)])
    check("CONTACTS_PUT own with 5 tokens (0..4) -> ERROR (400 or 470: the spec names none)",
          r.get("cmd") == "ERROR" and r.get("code") in (400, 470), short(r))
    check("  ... it is 470 naming the limit of 4 own numbers (as the broker does)",
          r.get("code") == 470 and "4 own numbers" in r.get("reason", ""), short(r))
    rid, r = req(A, "CONTACTS_PUT", op="add")
    answered("CONTACTS_PUT add without tokens (absent: none)", r, "OK", rid)


def friend_checks(A, B, C, T):
    fa, fb, fc = friends(A), friends(B), friends(C)
    check("ana FRIEND_LIST: exactly bob's token (2 common contacts); not cat's (1 common)",
          fa is not None and set(fa) == {T["bob"]}, fa)
    check("bob FRIEND_LIST: exactly ana's token (symmetric)", fb is not None and set(fb) == {T["ana"]}, fb)
    check("cat FRIEND_LIST: empty (one common contact with ana)", fc == [], fc)
    # BLOCK
    rid, r = req(A, "BLOCK", op="block", tokens=[T["bob"]])
    answered("ana BLOCK bob's number", r, "OK", rid)
    fa, fb = friends(A), friends(B)
    check("after the block: ana and bob are no friends, both ways", fa == [] and fb == [], (fa, fb))
    rid, r = req(A, "BLOCK", op="unblock", tokens=[T["bob"]])
    answered("ana BLOCK unblock bob's number", r, "OK", rid)
    fa, fb = friends(A), friends(B)
    check("after unblock: friends again", fa == [T["bob"]] and fb == [T["ana"]], (fa, fb))
    rid, r = req(A, "BLOCK", op="ban", tokens=[T["bob"]])
    err(r, 400, rid, "BLOCK op 'ban'")
    rid, r = req(A, "BLOCK", op="block", tokens=[T["bob"], T["cat"]])
    err(r, 400, rid, "BLOCK with 2 tokens (exactly 1)")
    rid, r = req(A, "BLOCK", op="block")
    err(r, 400, rid, "BLOCK without tokens")


def share_checks(A, B, C, T, da):
    for p, s in (("weixin", "friends"), ("notes", "public"), ("free1", "friends"), ("game1", "friends")):
        rid, r = req(A, "SHARE", program=p, state=s)
        answered("ana SHARE %s %s" % (p, s), r, "OK", rid)
    rid, r = req(A, "SHARE", program="notes", state="everyone")
    err(r, 400, rid, "SHARE state 'everyone'")
    rid, r = req(A, "SHARE", program="NOT A PROGRAM", state="public")
    err(r, 400, rid, "SHARE of a program ID that breaks 4.1")
    rid, r = req(A, "SHARES")
    if answered("SHARES", r, "SHARE_LIST", rid):
        apps = r.get("apps", [])
        check("SHARE_LIST: the programs not private, in program order, each with its share",
              [(a.get("program"), a.get("share")) for a in apps]
              == [("free1", "friends"), ("game1", "friends"), ("notes", "public"), ("weixin", "friends")], apps)
    # FRIEND_APPS
    rid, r = req(B, "FRIEND_APPS", tokens=[T["ana"]])
    if answered("bob FRIEND_APPS ana (a friend)", r, "FRIEND_APP_LIST", rid):
        apps = {a.get("program"): a for a in r.get("apps", [])}
        check("  ... the friends and public apps of ana's devices: free1, game1, notes, weixin",
              sorted(apps) == ["free1", "game1", "notes", "weixin"], r.get("apps"))
        check("  ... each with versionName as installed there and its share",
              apps.get("weixin", {}).get("versionName") == "8.0.48" and apps["weixin"].get("share") == "friends"
              and apps.get("notes", {}).get("share") == "public", r.get("apps"))
    rid, r = req(C, "FRIEND_APPS", tokens=[T["ana"]])
    if answered("cat FRIEND_APPS ana (not a friend)", r, "FRIEND_APP_LIST", rid):
        check("  ... only the public app, notes", [a.get("program") for a in r.get("apps", [])] == ["notes"],
              r.get("apps"))
    rid, r = req(C, "FRIEND_APPS", tokens=[T["bob"]])
    if err(r, 472, rid, "cat FRIEND_APPS bob (no friend, nothing public)"):
        check("  ... reason word for word", r.get("reason") == NOT_FRIENDS, r.get("reason"))
    rid, r = req(C, "FRIEND_APPS", tokens=[T["nobody"]])
    if err(r, 472, rid, "FRIEND_APPS of a number no account claims"):
        check("  ... the same reason word for word", r.get("reason") == NOT_FRIENDS, r.get("reason"))
    rid, r = req(A, "FRIEND_APPS", tokens=[T["bob"]])
    if err(r, 473, rid, "ana FRIEND_APPS bob (a friend who shares nothing)"):
        check("  ... reason 'your friend shares no app with friends'",
              "your friend shares no app with friends" in r.get("reason", ""), r.get("reason"))
    rid, r = req(B, "FRIEND_APPS", tokens=[])
    err(r, 400, rid, "FRIEND_APPS with 0 tokens (1..16)")
    rid, r = req(B, "FRIEND_APPS", tokens=[T["ana"]] * 17)
    err(r, 400, rid, "FRIEND_APPS with 17 tokens")


def recommend_checks(A, B, C, T, da):
    B.drop_events()
    rid, r = req(A, "RECOMMEND", tokens=[T["bob"]], program="weixin")
    answered("ana RECOMMEND weixin to bob (a friend)", r, "OK", rid)
    got = attempt("bob gets ITEM(RECOMMENDATION)", lambda: item_of(B, "RECOMMENDATION", 10))
    if got:
        item, rec = got
        check("RECOMMENDATION: account ana, program weixin, versionName 8.0.48",
              rec.get("account") == A.account and rec.get("program") == "weixin"
              and rec.get("versionName") == "8.0.48", short(rec))
        check("RECOMMENDATION: tokens are the sender's own numbers' tokens",
              rec.get("tokens") == [T["ana"]], short(rec))
        check("RECOMMENDATION: at is a recent ms time", isinstance(rec.get("at"), int)
              and abs(rec["at"] - now_ms()) < 120000, short(rec))
        B.ack(item["item"])
    rid, r = req(A, "RECOMMEND", tokens=[T["bob"]], program="chess.none")
    err(r, 473, rid, "RECOMMEND of a program on none of the sender's devices")
    rid, r = req(A, "RECOMMEND", tokens=[T["cat"]], program="weixin")
    err(r, 472, rid, "RECOMMEND a friends-only app to a non-friend")
    C.drop_events()
    rid, r = req(A, "RECOMMEND", tokens=[T["cat"]], program="notes")
    answered("RECOMMEND a public app to a non-friend", r, "OK", rid)
    got = attempt("cat gets ITEM(RECOMMENDATION notes)", lambda: item_of(C, "RECOMMENDATION", 10))
    if got:
        check("  ... program notes from ana", got[1].get("program") == "notes"
              and got[1].get("account") == A.account, short(got[1]))
        C.ack(got[0]["item"])
    # REFUSE
    rid, r = req(B, "REFUSE", op="contact", tokens=[T["ana"]])
    answered("bob REFUSE contact ana", r, "OK", rid)
    B.drop_events()
    rid, r = req(A, "RECOMMEND", tokens=[T["bob"]], program="weixin")
    err(r, 474, rid, "RECOMMEND to a contact who refuses the sender")
    rid, r = req(B, "REFUSE", op="accept", tokens=[T["ana"]])
    answered("bob REFUSE accept ana", r, "OK", rid)
    rid, r = req(B, "REFUSE", op="all")
    answered("bob REFUSE all", r, "OK", rid)
    rid, r = req(A, "RECOMMEND", tokens=[T["bob"]], program="weixin")
    err(r, 474, rid, "RECOMMEND to a contact who refuses all")
    rid, r = req(B, "REFUSE", op="none")
    answered("bob REFUSE none", r, "OK", rid)
    rid, r = req(A, "RECOMMEND", tokens=[T["bob"]], program="notes")
    answered("RECOMMEND after REFUSE none", r, "OK", rid)
    time.sleep(1.0)
    n = len(B.events(lambda m: m["cmd"] == "ITEM"))
    check("bob got exactly one RECOMMENDATION item for the refused and accepted ones (nothing queued when 474)",
          n == 1, n)
    for m in B.events(lambda m: m["cmd"] == "ITEM"):
        B.ack(m["item"])
    B.drop_events()
    rid, r = req(B, "REFUSE", op="block")
    err(r, 400, rid, "REFUSE op 'block'")
    rid, r = req(B, "REFUSE", op="contact")
    err(r, 400, rid, "REFUSE contact without a token")


def friend_install_checks(A, B, C, T):
    B.drop_events()
    rid, r = req(B, "FRIEND_INSTALL", tokens=[T["ana"]], program="weixin")
    if answered("bob FRIEND_INSTALL weixin from ana (a friend's, free)", r, "PUSH_ACCEPTED", rid):
        ts = r.get("targets", [])
        check("  ... a push to bob's device itself, offered 8.0.48",
              r.get("program") == "weixin" and HEX32.match(r.get("push", "")) and len(ts) == 1
              and ts[0].get("deviceId") == B.device_id and ts[0].get("state") == "offered"
              and ts[0].get("versionName") == "8.0.48", short(r))
        got = attempt("bob gets the OFFER", lambda: item_of(B, "OFFER", 10, pred=lambda o: o.get("push") == r["push"]))
        if got:
            check("  ... OFFER of weixin, fit 0", got[1].get("program") == "weixin" and got[1].get("fit") == 0,
                  short(got[1]))
    rid, r = req(B, "FRIEND_INSTALL", tokens=[T["ana"]], program="game1")
    err(r, 402, rid, "FRIEND_INSTALL of a paid app (game1, 4.99 EUR)")
    rid, r = req(C, "FRIEND_INSTALL", tokens=[T["ana"]], program="weixin")
    err(r, 472, rid, "cat FRIEND_INSTALL a friends-only app of ana (not a friend)")
    rid, r = req(B, "FRIEND_INSTALL", tokens=[T["ana"]], program="chess")
    err(r, 473, rid, "FRIEND_INSTALL of an app ana has but does not share")
    rid, r = req(B, "FRIEND_INSTALL", tokens=[T["nobody"]], program="weixin")
    if err(r, 472, rid, "FRIEND_INSTALL from a number no account claims"):
        check("  ... reason word for word", r.get("reason") == NOT_FRIENDS, r.get("reason"))
    # the paid app from a contact: GET with tokens
    rid, r = req(B, "GET", program="game1", tokens=[T["ana"]])
    if answered("bob GET game1 from ana (tokens): paid", r, "PAYMENT_REQUIRED", rid):
        check("  ... price 499 EUR, intent 32 hex, sourceAccount ana",
              r.get("price") == 499 and r.get("currency") == "EUR" and HEX32.match(r.get("intent", ""))
              and r.get("sourceAccount") == A.account, short(r))
        A.drop_events()
        rid, r = req(B, "PAY_CONFIRM", intent=r.get("intent", ""), token="tok_approve")
        answered("bob PAY_CONFIRM game1 (from ana)", r, "PUSH_ACCEPTED", rid)
        got = attempt("ana's phone gets ITEM(NOTIFY friend-paid)", lambda: item_of(A, "NOTIFY", 10))
        if got:
            check("  ... kind friend-paid, deviceId bob's, body 'game1 BOB-DEVICE BOB-ACCOUNT', an ask",
                  got[1].get("kind") == "friend-paid" and got[1].get("deviceId") == B.device_id
                  and got[1].get("body") == ("game1 %s %s" % (B.device_id, B.account)).encode()
                  and HEX32.match(got[1].get("ask", "")), short(got[1]))
            A.ack(got[0]["item"])
        rid, r = req(B, "PURCHASES")
        check("bob's PURCHASES: game1 (his account paid)", r.get("cmd") == "PURCHASE_LIST"
              and [p.get("program") for p in r.get("purchases", [])] == ["game1"], short(r))
    A.drop_events()
    rid, r = req(C, "GET", program="notes", tokens=[T["ana"]])
    if answered("cat GET notes from ana (public, free)", r, "PUSH_ACCEPTED", rid):
        got = attempt("ana's phone gets ITEM(NOTIFY friend-requested)", lambda: item_of(A, "NOTIFY", 10))
        if got:
            check("  ... kind friend-requested, body 'notes CAT-DEVICE CAT-ACCOUNT', ask the GET's rid",
                  got[1].get("kind") == "friend-requested" and got[1].get("deviceId") == C.device_id
                  and got[1].get("body") == ("notes %s %s" % (C.device_id, C.account)).encode()
                  and got[1].get("ask") == rid.hex(), short(got[1]))
            A.ack(got[0]["item"])
    rid, r = req(C, "BROWSE", tokens=[T["ana"]])
    if answered("cat BROWSE ana (tokens)", r, "APP_LIST", rid):
        check("  ... no deviceId; only notes, share public", "deviceId" not in r
              and [(a.get("program"), a.get("share")) for a in r.get("apps", [])] == [("notes", "public")], short(r))
    rid, r = req(B, "BROWSE", tokens=[T["ana"]])
    if answered("bob BROWSE ana (a friend)", r, "APP_LIST", rid):
        g = {a.get("program"): a for a in r.get("apps", [])}
        check("  ... four apps; game1 with price 499 EUR and entitled (bob bought it)",
              sorted(g) == ["free1", "game1", "notes", "weixin"] and g["game1"].get("price") == 499
              and g["game1"].get("entitled") is True, short(r))
    rid, r = req(B, "GET", program="weixin", tokens=[T["ana"]], withData=True)
    err(r, 403, rid, "GET from a contact withData (user data never moves between people)")
    rid, r = req(C, "GET", program="weixin", tokens=[T["ana"]])
    err(r, 472, rid, "cat GET a friends-only app of ana")
    rid, r = req(B, "GET", program="chess", tokens=[T["ana"]])
    if err(r, 473, rid, "bob GET an app ana does not share"):
        check("  ... reason 'your friend does not share chess'", "your friend does not share chess"
              in r.get("reason", ""), r.get("reason"))


# ------------------------------------------------------------------ 5.47, 5.47a, 5.46


def get_checks(A1, A2, da1, da2):
    rid, r = req(A2, "BROWSE", deviceId=da1)
    if answered("BROWSE ana's phone 1 from phone 2", r, "APP_LIST", rid):
        apps = {a.get("program"): a for a in r.get("apps", [])}
        check("  ... deviceId is the browsed device", r.get("deviceId") == da1, short(r))
        check("  ... its five apps", sorted(apps) == ["chess", "free1", "game1", "notes", "weixin"], sorted(apps))
        w = apps.get("weixin", {})
        check("  ... weixin: versionName as there, fit 0 (absent) and fitVersion 8.0.48 for the sender",
              w.get("versionName") == "8.0.48" and w.get("fit", 0) == 0 and w.get("fitVersion") == "8.0.48", w)
        g = apps.get("game1", {})
        check("  ... game1: price 499, currency EUR, not entitled", g.get("price") == 499
              and g.get("currency") == "EUR" and not g.get("entitled"), g)
        check("  ... free apps carry no price", "price" not in w, w)
    rid, r = req(A2, "BROWSE", deviceId=da2)
    check("BROWSE of the sender itself (the spec is silent): APP_LIST of its own apps",
          r.get("cmd") == "APP_LIST" and r.get("deviceId") == da2 and r.get("apps") == [], short(r))
    rid, r = req(A2, "BROWSE", deviceId=os.urandom(16).hex())
    err(r, 406, rid, "BROWSE a device not of the account")
    rid, r = req(A2, "BROWSE", deviceId=da1, tokens=[os.urandom(32)])
    err(r, 400, rid, "BROWSE with both deviceId and tokens")
    rid, r = req(A2, "BROWSE")
    err(r, 400, rid, "BROWSE with neither")
    rid, r = req(A2, "GET", program="weixin", deviceId=da2)
    err(r, 403, rid, "GET from the sender itself")
    rid, r = req(A2, "GET", program="weixin", deviceId=os.urandom(16).hex())
    err(r, 406, rid, "GET from a device not of the account")
    rid, r = req(A2, "GET", program="weixin.x", deviceId=da1)
    err(r, 465, rid, "GET of a program the device does not have")
    rid, r = req(A2, "GET", program="weixin")
    err(r, 400, rid, "GET naming no source")
    rid, r = req(A2, "PAY_INTENT", account=A2.account, program="game1", price=499, currency="EUR")
    err(r, 405, rid, "PAY_INTENT from a node")
    # free GET, its notice and its ask
    A1.drop_events()
    A2.drop_events()
    rid, r = req(A2, "GET", program="notes", deviceId=da1)
    if not answered("GET notes from phone 1 (free)", r, "PUSH_ACCEPTED", rid):
        return
    ts = r.get("targets", [])
    check("  ... a push to the sender itself, offered", len(ts) == 1 and ts[0].get("deviceId") == da2
          and ts[0].get("state") == "offered", ts)
    got = attempt("phone 2 gets the OFFER of notes", lambda: item_of(A2, "OFFER", 10,
                                                                   pred=lambda o: o.get("push") == r.get("push")))
    got = attempt("phone 1 gets ITEM(NOTIFY requested)", lambda: item_of(A1, "NOTIFY", 10))
    if not got:
        return
    item, note = got
    check("NOTIFY: deviceId the asker, kind requested, body 'notes ASKER'",
          note.get("deviceId") == da2 and note.get("kind") == "requested"
          and note.get("body") == ("notes " + da2).encode(), short(note))
    check("NOTIFY.ask is the GET's rid (32 hex)", note.get("ask") == rid.hex(), short(note))
    ask = note.get("ask", "")
    # a repeated GET with the same rid tells nothing more
    A2.send("GET", rid=rid, program="notes", deviceId=da1)
    r2 = attempt("GET sent again with the same rid", lambda: A2.wait_reply(rid, W))
    check("  ... PUSH_ACCEPTED again", r2 and r2.get("cmd") == "PUSH_ACCEPTED", short(r2))
    time.sleep(1.0)
    again = [m for m in A1.events(lambda m: m["cmd"] == "ITEM") if decode(m["body"]).get("cmd") == "NOTIFY"
             and m["item"] != item["item"]]
    check("  ... and phone 1 is told nothing more (the notice's key)", not again, [short(m) for m in again])
    record_checks(A1, A2, da1, da2, ask, item)


def record_checks(A1, A2, da1, da2, ask, item):
    rec = json.dumps({"program": "notes", "versionName": "2.1.0", "versionCode": 1,
                      "settings": {"theme": "dark"}, "startup": []}, separators=(",", ":")).encode()
    rid, r = req(A1, "RECORD_PUT", ask="zz" * 16, program="notes", deviceId=da2, record=rec)
    err(r, 400, rid, "RECORD_PUT with an ask that is not hex")
    rid, r = req(A1, "RECORD_PUT", ask=ask, program="notes", deviceId=da2, record=rec, code=500, reason="x")
    err(r, 400, rid, "RECORD_PUT with both record and code")
    rid, r = req(A1, "RECORD_PUT", ask=ask, program="notes", deviceId=da2)
    err(r, 400, rid, "RECORD_PUT with neither record nor code")
    rid, r = req(A1, "RECORD_PUT", ask=ask, program="notes", deviceId=da2, record=b"[1,2]")
    err(r, 400, rid, "RECORD_PUT whose record is not a JSON object")
    rid, r = req(A1, "RECORD_PUT", ask=ask, program="notes", deviceId=da2,
                 record=rec.replace(b'"notes"', b'"weixin"'))
    err(r, 400, rid, "RECORD_PUT whose record is of another program")
    rid, r = req(A1, "RECORD_PUT", ask=os.urandom(16).hex(), program="notes", deviceId=da2, record=rec)
    err(r, 468, rid, "RECORD_PUT of an unknown ask")
    rid, r = req(A1, "RECORD_PUT", ask=ask, program="weixin", deviceId=da2,
                 record=rec.replace(b'"notes"', b'"weixin"'))
    err(r, 468, rid, "RECORD_PUT of the ask for another program")
    rid, r = req(A2, "RECORD_PUT", ask=ask, program="notes", deviceId=da2, record=rec)
    err(r, 468, rid, "RECORD_PUT of the ask from another device (the asker)")
    A2.drop_events(lambda m: m["cmd"] == "ITEM" and decode(m["body"]).get("cmd") == "RECORD")
    rid, r = req(A1, "RECORD_PUT", ask=ask, program="notes", deviceId=da2, record=rec)
    answered("RECORD_PUT of the open ask", r, "OK", rid)
    A1.ack(item["item"])
    got = attempt("phone 2 gets ITEM(RECORD)", lambda: item_of(A2, "RECORD", 10))
    if got:
        check("RECORD: ask, program, deviceId the source, record as sent",
              got[1].get("ask") == ask and got[1].get("program") == "notes" and got[1].get("deviceId") == da1
              and got[1].get("record") == rec and "code" not in got[1], short(got[1]))
        A2.ack(got[0]["item"])
    rid, r = req(A1, "RECORD_PUT", ask=ask, program="notes", deviceId=da2, record=rec)
    err(r, 469, rid, "RECORD_PUT again (answered)")


def pay_checks(A1, A2, da1, da2):
    rid, r = req(A2, "GET", program="game1", deviceId=da1)
    if not answered("GET game1 from phone 1 (paid)", r, "PAYMENT_REQUIRED", rid):
        return
    intent = r.get("intent", "")
    check("PAYMENT_REQUIRED: program, price 499, currency EUR, intent 32 hex, deviceId, expires ~600 s on",
          r.get("program") == "game1" and r.get("price") == 499 and r.get("currency") == "EUR"
          and HEX32.match(intent) and isinstance(r.get("deviceId"), str)
          and isinstance(r.get("expires"), int) and 500000 < r["expires"] - now_ms() < 700000, short(r))
    check("PAYMENT_REQUIRED.deviceId: the device it is asked from (the source)", r.get("deviceId") == da1, short(r))
    rid, r = req(A2, "GET", program="game1", deviceId=da1)
    check("a GET asked again gets the same intent", r.get("cmd") == "PAYMENT_REQUIRED"
          and r.get("intent") == intent, short(r))
    rid, r = req(A2, "PURCHASES")
    if answered("PURCHASES before paying", r, "PURCHASE_LIST", rid):
        check("  ... empty", r.get("purchases") == [], short(r))
    rid, r = req(A2, "PAY_CONFIRM", intent="ABC", token="tok_approve")
    err(r, 400, rid, "PAY_CONFIRM with a malformed intent")
    rid, r = req(A2, "PAY_CONFIRM", intent=os.urandom(16).hex(), token="tok_approve")
    err(r, 464, rid, "PAY_CONFIRM of an unknown intent")
    rid, r = req(A2, "PAY_CONFIRM", intent=intent, token="x" * 65)
    err(r, 400, rid, "PAY_CONFIRM with a 65-byte token (1..64)")
    rid, r = req(A2, "PAY_CONFIRM", intent=intent, token="tok_transient")
    if err(r, 402, rid, "PAY_CONFIRM tok_transient (fails once per intent)"):
        check("  ... the reason says 'confirm again'", "confirm again" in r.get("reason", ""), r.get("reason"))
    A1.drop_events()
    rid, r = req(A2, "PAY_CONFIRM", intent=intent, token="tok_approve")
    if answered("PAY_CONFIRM tok_approve", r, "PUSH_ACCEPTED", rid):
        ts = r.get("targets", [])
        check("  ... program game1, the sender offered", r.get("program") == "game1" and len(ts) == 1
              and ts[0].get("deviceId") == da2 and ts[0].get("state") == "offered", short(r))
    got = attempt("phone 1 gets ITEM(NOTIFY paid)", lambda: item_of(A1, "NOTIFY", 10))
    if got:
        item, note = got
        check("NOTIFY kind paid, deviceId the asker, body 'game1 ASKER', an ask",
              note.get("kind") == "paid" and note.get("deviceId") == da2
              and note.get("body") == ("game1 " + da2).encode() and HEX32.match(note.get("ask", "")), short(note))
        ib = bytes.fromhex(intent)
        keys = {"ascii": hashlib.blake2b(ib + da2.encode(), digest_size=16).hexdigest(),
                "raw": hashlib.blake2b(ib + bytes.fromhex(da2), digest_size=16).hexdigest()}
        which = [k for k, v in keys.items() if v == note.get("ask")]
        check("  ... ask = BLAKE2b-128(intent's 16 bytes || asking device ID) (%s)" % (which or "neither"),
              bool(which), (note.get("ask"), keys))
        pask = note.get("ask", "")
        rid, r = req(A1, "RECORD_PUT", ask=pask, program="game1", deviceId=da2, code=399, reason="x")
        err(r, 400, rid, "RECORD_PUT with code 399 (400..599)")
        A2.drop_events(lambda m: m["cmd"] == "ITEM" and decode(m["body"]).get("cmd") == "RECORD")
        rid, r = req(A1, "RECORD_PUT", ask=pask, program="game1", deviceId=da2, code=404,
                     reason="the record cannot be read")
        answered("RECORD_PUT of the paid ask with code 404 and a reason", r, "OK", rid)
        got = attempt("phone 2 gets ITEM(RECORD) with the code", lambda: item_of(A2, "RECORD", 10))
        if got:
            check("RECORD: ask, program game1, deviceId the source, code 404, a reason with the source's, no record",
                  got[1].get("ask") == pask and got[1].get("program") == "game1" and got[1].get("deviceId") == da1
                  and got[1].get("code") == 404 and "the record cannot be read" in got[1].get("reason", "")
                  and "record" not in got[1], short(got[1]))
            A2.ack(got[0]["item"])
        A1.ack(item["item"])
    rid, r = req(A2, "PAY_CONFIRM", intent=intent, token="tok_approve")
    answered("PAY_CONFIRM again (a repeat charges nothing, starts a transfer)", r, "PUSH_ACCEPTED", rid)
    rid, r = req(A2, "PAY_CONFIRM", intent=intent, token="tok_decline")
    check("PAY_CONFIRM of the paid intent with a declining token: still PUSH_ACCEPTED (charged before)",
          r.get("cmd") == "PUSH_ACCEPTED", short(r))
    time.sleep(1.0)
    again = [m for m in A1.events(lambda m: m["cmd"] == "ITEM") if decode(m["body"]).get("cmd") == "NOTIFY"]
    check("  ... and phone 1 is told nothing more", not again, [short(decode(m["body"])) for m in again])
    rid, r = req(A2, "PURCHASES")
    if answered("PURCHASES", r, "PURCHASE_LIST", rid):
        ps = r.get("purchases", [])
        check("  ... game1: price 499, currency EUR, the intent, at (ms)",
              len(ps) == 1 and ps[0].get("program") == "game1" and ps[0].get("price") == 499
              and ps[0].get("currency") == "EUR" and ps[0].get("intent") == intent
              and isinstance(ps[0].get("at"), int) and abs(ps[0]["at"] - now_ms()) < 120000, ps)
    rid, r = req(A1, "PURCHASES")
    check("the account's other device sees the same entitlement",
          r.get("cmd") == "PURCHASE_LIST" and [p.get("program") for p in r.get("purchases", [])] == ["game1"],
          short(r))
    rid, r = req(A2, "GET", program="game1", deviceId=da1)
    check("GET game1 again, entitled: PUSH_ACCEPTED at once (nothing to pay)",
          r.get("cmd") == "PUSH_ACCEPTED" and r.get("rid") == rid, short(r))
    time.sleep(1.0)
    again = [m for m in A1.events(lambda m: m["cmd"] == "ITEM") if decode(m["body"]).get("cmd") == "NOTIFY"]
    check("  ... and phone 1 is not told again ('paid' and a later 'entitled' from one device: one notice)",
          not again, [short(decode(m["body"])) for m in again])
    rid, r = req(A2, "BROWSE", deviceId=da1)
    g = {a.get("program"): a for a in r.get("apps", [])}.get("game1", {})
    check("BROWSE: game1 now entitled: true, with its price", g.get("entitled") is True and g.get("price") == 499, g)
    # with the user data: a notice of its own, withData true
    A1.drop_events()
    rid, r = req(A2, "GET", program="notes", deviceId=da1, withData=True)
    answered("GET notes withData from phone 1", r, "PUSH_ACCEPTED", rid)
    got = attempt("phone 1 gets ITEM(NOTIFY requested, withData)", lambda: item_of(A1, "NOTIFY", 10))
    if got:
        check("  ... withData true, ask the GET's rid", got[1].get("withData") is True
              and got[1].get("ask") == rid.hex() and got[1].get("kind") == "requested", short(got[1]))
        rid2, r = req(A1, "PUSH", program="notes", targets=[da2], ask=got[1].get("ask"))
        err(r, 400, rid2, "the source's PUSH with ask but no dataHash")
        A1.ack(got[0]["item"])
    return intent


def decline_checks(E1, E2, de1):
    rid, r = req(E2, "GET", program="game1", deviceId=de1)
    if not answered("eve GET game1 (paid)", r, "PAYMENT_REQUIRED", rid):
        return
    intent = r["intent"]
    rid, r = req(E2, "PAY_CONFIRM", intent=intent, token="tok_decline")
    if err(r, 402, rid, "PAY_CONFIRM tok_decline"):
        check("  ... 'nothing was charged'", "nothing was charged" in r.get("reason", ""), r.get("reason"))
    rid, r = req(E2, "PAY_CONFIRM", intent=intent, token="tok_approve")
    check("a declined intent is final: confirming it again (with a good token) -> 402 again",
          r.get("cmd") == "ERROR" and r.get("code") == 402, short(r))
    rid, r = req(E2, "GET", program="game1", deviceId=de1)
    check("the next GET makes a new intent", r.get("cmd") == "PAYMENT_REQUIRED"
          and r.get("intent") not in (None, intent), short(r))
    rid, r = req(E2, "PURCHASES")
    check("PURCHASES: nothing bought", r.get("cmd") == "PURCHASE_LIST" and r.get("purchases") == [], short(r))
    return intent


def cross_intent_checks(A1, E2, intent_a):
    rid, r = req(E2, "PAY_CONFIRM", intent=intent_a, token="tok_approve")
    err(r, 464, rid, "PAY_CONFIRM of another account's intent")


# ------------------------------------------------------------------ 5.48-5.50


def backup_map(program, version, **kw):
    m = {"program": program, "versionName": version, "versionCode": 1, "name": "Notes", "publisher": "Tests",
         "backupId": os.urandom(16).hex(), "created": now_ms(), "mac": "ab" * 32}
    m.update(kw)
    return m


def backup_checks(A1, A2, da1):
    cfg = os.urandom(1000)
    bm = backup_map("notes", "2.1.0", configHash=hashlib.blake2b(cfg, digest_size=32).hexdigest(),
                    platform="ios", deviceId="0" * 32, at=1)
    rid, r = req(A1, "BACKUP_PUT", backups=[bm], config=cfg)
    answered("BACKUP_PUT notes 2.1.0 with a config", r, "OK", rid)
    rid, r = req(A1, "BACKUP_PUT", backups=[backup_map("weixin", "8.0.48", configHash="")])
    answered("BACKUP_PUT weixin 8.0.48 without a config", r, "OK", rid)
    rid, r = req(A1, "BACKUP_PUT", backups=[backup_map("weixin", "8.0.1"), backup_map("notes", "2.0")])
    err(r, 400, rid, "BACKUP_PUT with two backups")
    rid, r = req(A1, "BACKUP_PUT", backups=[])
    err(r, 400, rid, "BACKUP_PUT with no backup")
    b = backup_map("notes", "x")
    del b["versionName"]
    rid, r = req(A1, "BACKUP_PUT", backups=[b])
    err(r, 400, rid, "BACKUP_PUT without versionName")
    rid, r = req(A1, "BACKUP_PUT", backups=[backup_map("mac.test", "1.0", mac="xyz")])
    answered("BACKUP_PUT with a mac that is not 64 hex: taken (7.2: a string's form is no stage-9 rule)",
             r, "OK", rid)
    rid, r = req(A1, "BACKUP_GET", program="mac.test")
    check("  ... and returned as stored", r.get("cmd") == "BACKUP_LIST"
          and [b.get("mac") for b in r.get("backups", [])] == ["xyz"], short(r))
    rid, r = req(A1, "BACKUP_PUT", backups=[backup_map("notes", "2.2")], config=b"")
    err(r, 400, rid, "BACKUP_PUT with an empty config (1..262144)")
    rid, r = req(A2, "BACKUPS")
    if answered("BACKUPS from the other device", r, "BACKUP_LIST", rid):
        bs = r.get("backups", [])
        check("  ... mac.test, notes, weixin (by program)", [x.get("program") for x in bs] == ["mac.test", "notes", "weixin"], bs)
        n = bs[1] if len(bs) > 1 else {}
        check("  ... the broker set platform, deviceId (the session's), at, configSize 1000",
              n.get("platform") == "android" and n.get("deviceId") == da1 and isinstance(n.get("at"), int)
              and abs(n["at"] - now_ms()) < 120000 and n.get("configSize") == 1000, n)
        check("  ... the rest as stored, mac included, no config", n.get("mac") == bm["mac"]
              and n.get("backupId") == bm["backupId"] and n.get("configHash") == bm["configHash"]
              and "config" not in n and "config" not in r, short(r))
    rid, r = req(A2, "BACKUP_GET", program="notes")
    if answered("BACKUP_GET notes", r, "BACKUP_LIST", rid):
        bs = r.get("backups", [])
        check("  ... one backup, 2.1.0, with its config", len(bs) == 1 and bs[0].get("versionName") == "2.1.0"
              and r.get("config", bs[0].get("config") if bs else None) == cfg, short(r))
        check("  ... config at the top level of BACKUP_LIST (as BACKUP_PUT sends it)", r.get("config") == cfg,
              short(r))
    rid, r = req(A2, "BACKUP_GET", program="chess")
    err(r, 466, rid, "BACKUP_GET of a program never backed up")
    rid, r = req(A2, "BACKUP_GET", program="notes", versionName="9.9")
    if err(r, 467, rid, "BACKUP_GET of a version not backed up"):
        check("  ... the reason lists 2.1.0", "2.1.0" in r.get("reason", ""), r.get("reason"))
    # nine versions: eight kept, the oldest replaced
    for i in range(1, 9):
        rid, r = req(A1, "BACKUP_PUT", backups=[backup_map("chess", "5.0.%d" % i)])
        if r.get("cmd") != "OK":
            check("BACKUP_PUT chess 5.0.%d" % i, False, short(r))
        time.sleep(0.01)
    rid, r = req(A1, "BACKUPS", program="chess")
    vs = [x.get("versionName") for x in r.get("backups", [])]
    check("BACKUPS chess: 8 versions (AF_MAX_BACKUP_VERSIONS), newest first, the oldest (5.0.1) gone",
          vs == ["5.0.%d" % i for i in range(8, 0, -1)], vs)
    rid, r = req(A1, "BACKUP_PUT", backups=[backup_map("chess", "5.0.9")])
    rid, r = req(A1, "BACKUPS", program="chess")
    vs = [x.get("versionName") for x in r.get("backups", [])]
    check("a ninth version replaces the oldest: 5.0.9..5.0.2, newest first",
          vs == ["5.0.%d" % i for i in range(9, 1, -1)], vs)
    # RESTORE
    rid, r = req(A2, "RESTORE", program="go.none", latest=False, recommend=False)
    err(r, 466, rid, "RESTORE of a program never backed up")
    rid, r = req(A2, "RESTORE", program="notes", versionName="1.0", latest=False, recommend=False)
    err(r, 467, rid, "RESTORE of a version not backed up")
    A2.drop_events()
    rid, r = req(A2, "RESTORE", program="notes", latest=False, recommend=False)
    if answered("RESTORE notes (2.1.0 fits the phone)", r, "PUSH_ACCEPTED", rid):
        ts = r.get("targets", [])
        check("  ... a push to the sender, offered 2.1.0", len(ts) == 1 and ts[0].get("deviceId") == A2.device_id
              and ts[0].get("state") == "offered" and ts[0].get("versionName") == "2.1.0", ts)
        got = attempt("phone 2 gets the OFFER of notes", lambda: item_of(A2, "OFFER", 10,
                                                                       pred=lambda o: o.get("push") == r.get("push")))
        if got:
            check("  ... with the signed meta", isinstance(got[1].get("meta"), bytes), short(got[1]))
    rid, r = req(A2, "RESTORE", program="weixin", versionName="8.0.48", latest=True, recommend=False)
    answered("RESTORE weixin latest", r, "PUSH_ACCEPTED", rid)
    rid, r = req(A2, "BACKUP_PUT", backups=[backup_map("tv.app", "1.0")])
    answered("BACKUP_PUT tv.app 1.0 (not in the catalog)", r, "OK", rid)
    rid, r = req(A2, "RESTORE", program="tv.app", latest=False, recommend=True)
    if answered("RESTORE of a backup nothing fits", r, "RESOLVED", rid):
        check("  ... fit 2 or 3 with a reason", r.get("fit") in (2, 3) and r.get("reason"), short(r))


# ------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("endpoint")
    ap.add_argument("broker_cert")
    a = ap.parse_args()
    ep, key = a.endpoint, load_cert(a.broker_cert)
    tag = os.urandom(4).hex()
    pw = "pw-" + os.urandom(8).hex()
    names = {n: "%s-%s" % (n, tag) for n in ("ana", "bob", "cat", "dan", "eve")}
    A1 = device(ep, key, names["ana"], pw, PHONE, register=True)
    A2 = device(ep, key, names["ana"], pw, PHONE2)
    B = device(ep, key, names["bob"], pw, PHONE, register=True)
    C = device(ep, key, names["cat"], pw, PHONE, register=True)
    D = device(ep, key, names["dan"], pw, PHONE, register=True)
    E1 = device(ep, key, names["eve"], pw, PHONE, register=True)
    E2 = device(ep, key, names["eve"], pw, PHONE2)
    X = Client(ep, key, new_keypair())
    X.connect()
    da1, da2 = A1.device_id, A2.device_id
    apps = [{"program": p, "versionName": v, "versionCode": 1, "at": now_ms()} for p, v in
            (("weixin", "8.0.48"), ("notes", "2.1.0"), ("game1", "1.1"), ("free1", "1.0"), ("chess", "5.0.1"))]
    for c in (A1, E1):
        c.send_list(1, apps)
    for c in (A2, B, C, D, E2):
        c.send_list(1, [])
    time.sleep(0.3)

    attempt("CONTACTS_EVAL checks", lambda: eval_checks(A1, X, ep, key))
    nums = {n: number() for n in ("ana", "bob", "cat", "x1", "x2", "nobody")}
    T = attempt("tokens", lambda: dict(zip(nums, tokens_for(A1, list(nums.values()), "ana"))))
    if T:
        Tb = attempt("bob's tokens", lambda: tokens_for(B, [nums["ana"], nums["x1"]], "bob"))
        check("the same numbers give the same tokens on another account's device",
              Tb == [T["ana"], T["x1"]], "tokens differ")
        attempt("CONTACTS_PUT checks", lambda: put_checks(A1, X))
        put(A1, "replace", [T["bob"], T["cat"], T["x1"]], "ana")
        put(A1, "add", [T["x2"], T["x1"]], "ana")
        put(A1, "own", [T["ana"]], "ana")
        put(B, "replace", [T["ana"], T["x1"], T["x2"]], "bob")
        put(B, "own", [T["bob"]], "bob")
        put(C, "replace", [T["x1"], T["nobody"]], "cat")
        put(C, "own", [T["cat"]], "cat")
        attempt("friend checks", lambda: friend_checks(A1, B, C, T))
        attempt("share checks", lambda: share_checks(A1, B, C, T, da1))
        attempt("recommend checks", lambda: recommend_checks(A1, B, C, T, da1))
        attempt("friend install checks", lambda: friend_install_checks(A1, B, C, T))
    attempt("GET/BROWSE checks", lambda: get_checks(A1, A2, da1, da2))
    ia = attempt("payment checks", lambda: pay_checks(A1, A2, da1, da2))
    attempt("declined payment checks", lambda: decline_checks(E1, E2, E1.device_id))
    if ia:
        attempt("another account's intent", lambda: cross_intent_checks(A1, E2, ia))
    attempt("backup checks", lambda: backup_checks(A1, A2, da1))
    attempt("CONTACTS_EVAL allowance checks", lambda: eval_limit_checks(D))
    attempt("book limit checks", lambda: book_limit_checks(D))
    attempt("no-session checks", lambda: no_session_checks(X))
    for c in (A1, A2, B, C, D, E1, E2, X):
        c.close()
    return summary("social_checks")


if __name__ == "__main__":
    sys.exit(main())
