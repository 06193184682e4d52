#!/usr/bin/python3
"""push_checks.py ENDPOINT BROKER_CERT

The second part of the spec client's scenario (run_checks.py is the
first), against a broker WITH a matcher on the demo catalog (prices taken
out, as tests/lib.sh free_demo_manifest does): RESOLVE/RESOLVED (5.7, 5.8,
4.4), the push path between two simulated devices of one fresh account
(5.16-5.26: PUSH, PUSH_ACCEPTED, ITEM/OFFER, FETCH, CHUNK, CREDIT,
PROGRESS, DONE, RESULT, ACK, redelivery), UPLOAD of user data (5.27) and a
push naming it, DEVICE_REMOVE and the 410 after it (5.34). Written from
protocol/SPEC.md alone. Prints "ok - ..." / "not ok - ..." lines.
"""

import argparse
import hashlib
import io
import os
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from afclient import Client, Timeout, decode, load_cert, new_keypair, new_rid  # noqa: E402
from run_checks import HEX32, PC, PHONE, attempt, check, err, item_of, summary  # noqa: E402

try:
    import zstandard        # Debian: python3-zstandard
except ImportError:         # pragma: no cover
    zstandard = None

HEX64 = __import__("re").compile(r"^[0-9a-f]{64}$")
AF_MAX_CHUNK = 262144
AF_MAX_CREDIT = 16
MATCHER_WAIT = 20.0         # a RESOLVE or PUSH waits for the matcher (broker deadline 10 s)
PW_WAIT = 30.0              # password work is off the reactor and queued (8.7)


def blake(data):
    """The file hash of 4.3 / 5.22: BLAKE2b-256, 64 lowercase hex digits."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def short(m):
    """A message for a failure line, long bins by their length."""
    if not isinstance(m, dict):
        return m
    return {k: (("<%d bytes>" % len(v)) if isinstance(v, bytes) and len(v) > 40 else v)
            for k, v in m.items() if k != "_t"}


class Download:
    """A node's side of one FETCH (5.22-5.24), checking every CHUNK as 5.23
    says, and returning credit chunk by chunk as they are 'written'."""

    def __init__(self, c, h, total, name):
        self.c, self.h, self.total, self.name = c, h, total, name
        self.data = bytearray()
        self.chunks = []            # (offset, size, zstd, len(data))
        self.bad = []               # what broke a 5.23 rule

    def take(self, m):
        off, size, z, data = m.get("offset"), m.get("size"), m.get("zstd", False), m.get("data", b"")
        self.chunks.append((off, size, z, len(data)))
        if m.get("hash") != self.h:
            self.bad.append("hash %r" % m.get("hash"))
        if m.get("total") != self.total:
            self.bad.append("total %r != %d" % (m.get("total"), self.total))
        if off != len(self.data):
            self.bad.append("offset %r, have %d" % (off, len(self.data)))
            return
        if not isinstance(size, int) or not 1 <= size <= AF_MAX_CHUNK or off + size > self.total:
            self.bad.append("size %r at %r" % (size, off))
            return
        if off + size < self.total and size != AF_MAX_CHUNK:
            self.bad.append("a chunk but the last of %d bytes" % size)
        if z:
            if len(data) >= size:
                self.bad.append("compressed chunk not smaller (%d >= %d)" % (len(data), size))
            if zstandard is None:
                self.bad.append("zstd chunk and no zstandard module")
                raw = b"\0" * size
            else:
                declared = zstandard.frame_content_size(data)
                if declared not in (size, -1):
                    self.bad.append("zstd frame declares %d, size %d" % (declared, size))
                raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
        else:
            raw = data
        if len(raw) != size:
            self.bad.append("%d bytes for size %d" % (len(raw), size))
        self.data += raw

    def run(self, credit, offset=0, timeout=10.0, give_back=True, rid=None):
        """FETCH from offset with credit; read until the file is complete
        (or a timeout); returns the FETCH's error reply, if any."""
        rid = rid or new_rid()
        self.c.send("FETCH", rid=rid, hash=self.h, offset=offset or None, credit=credit)
        end = time.monotonic() + timeout
        while len(self.data) < self.total and time.monotonic() < end:
            with self.c._cv:
                if rid in self.c._replies:
                    return self.c._replies.pop(rid)
            try:
                m = self.c.wait_event(lambda m: m["cmd"] == "CHUNK" and m.get("hash") == self.h, 0.2)
            except Timeout:
                continue
            self.take(m)
            if self.bad:
                break
            if give_back and len(self.data) < self.total:
                self.c.send("CREDIT", hash=self.h, credit=1)
        return None

    def verify(self, h_expected=None):
        n = self.name
        check("%s: every CHUNK follows 5.23 (hash, total, offset, size, zstd frame)" % n, not self.bad,
              self.bad[:3])
        check("%s: the whole file arrived (%d bytes)" % (n, self.total), len(self.data) == self.total,
              "%d bytes, chunks %s" % (len(self.data), self.chunks[:5]))
        check("%s: BLAKE2b-256 of the whole file is the offer's hash" % n,
              blake(bytes(self.data)) == (h_expected or self.h), self.chunks[:5])


def user_data_blob():
    """A tar (user data, 5.16 dataHash) of 300 000 random bytes and 300 000
    zeros: three chunks, the first incompressible, the others compressible."""
    buf = io.BytesIO()
    rnd = os.urandom(300000)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in (("r.bin", rnd), ("z.bin", b"\0" * 300000)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def login_pair(ep, key, account, password):
    A = Client(ep, key, new_keypair())
    A.connect()
    A.register(account, password, timeout=PW_WAIT)
    A.login(account, PHONE, password=password)
    B = Client(ep, key, new_keypair())
    B.connect()
    B.login(account, PC, password=password)
    return A, B


# ------------------------------------------------------------------ 4.4, 5.7, 5.8


def resolve_checks(A, da, db):
    rid = new_rid()
    A.send("RESOLVE", rid=rid, program="weixin")
    r = attempt("RESOLVE weixin", lambda: A.wait_reply(rid, MATCHER_WAIT))
    check("RESOLVE weixin -> RESOLVED with the rid", r and r["cmd"] == "RESOLVED" and r.get("rid") == rid, short(r))
    if r and r["cmd"] == "RESOLVED":
        p = r.get("package", {})
        check("RESOLVED.program is the program asked for", r.get("program") == "weixin", short(r))
        check("weixin on the Android arm64 phone: fit 0 (package)", r.get("fit") == 0, short(r))
        check("fit 0: package for the device's platform, 8.0.48, arm64-v8a",
              p.get("platform") == "android" and p.get("versionName") == "8.0.48"
              and p.get("abi") == "arm64-v8a", p)
        check("package map: hash is 64 hex, size > 0, packageId 32 hex (4.3)",
              HEX64.match(p.get("hash", "")) and p.get("size", 0) > 0 and HEX32.match(p.get("packageId", "")), p)
        check("package map: program, name, publisher, category, versionCode, votes from the catalog",
              p.get("program") == "weixin" and p.get("name") == "WeChat" and p.get("publisher") == "Tencent"
              and p.get("category") == "social" and p.get("versionCode") == 2480 and p.get("votes") == 9120, p)
        check("a free package has no price and no currency", not p.get("price") and "currency" not in p, p)

    r = attempt("RESOLVE for another device map", lambda: A.call("RESOLVE", "RESOLVED", MATCHER_WAIT,
                                                                  program="weixin", device=PC))
    if r:
        p = r.get("package", {})
        check("RESOLVE with device (a PC): fit 0, the windows package 3.9.8",
              r.get("fit") == 0 and p.get("platform") == "windows" and p.get("versionName") == "3.9.8", short(r))

    ios = {"name": "Spec iPhone", "platform": "ios", "osVersion": "17.1", "model": "iPhone 15",
           "manufacturer": "Apple", "formFactor": "phone", "screenWidth": 1179, "screenHeight": 2556}
    r = attempt("RESOLVE for an iPhone", lambda: A.call("RESOLVE", "RESOLVED", MATCHER_WAIT,
                                                       program="weixin", device=ios))
    if r:
        p = r.get("package", {})
        check("iOS: fit 1 (store-link) with package.storeLink", r.get("fit") == 1 and p.get("storeLink", "")
              .startswith("https://apps.apple.com/"), short(r))
        check("store entry: no hash, size absent or 0 (4.3)", "hash" not in p and not p.get("size"), p)

    old = dict(PHONE, sdkVersion=22, osVersion="5.1", supportedAbis=["x86"])
    r = attempt("RESOLVE nothing fits", lambda: A.call("RESOLVE", "RESOLVED", MATCHER_WAIT,
                                                      program="weixin", device=old, recommend=True))
    if r:
        check("no ABI fits: fit 2 (no-fit) with a reason", r.get("fit") == 2 and r.get("reason"), short(r))
        check("fit 2: the closest candidate is sent as package (4.4)", isinstance(r.get("package"), dict)
              and r["package"].get("program") == "weixin", short(r))
        check("recommend: no alternative when no other program of the category fits",
              "alternative" not in r, short(r))

    rid = new_rid()
    A.send("RESOLVE", rid=rid, program="no.such-program")
    r = attempt("RESOLVE unknown", lambda: A.wait_reply(rid, MATCHER_WAIT))
    check("RESOLVE unknown program -> RESOLVED fit 3 with the rid",
          r and r["cmd"] == "RESOLVED" and r.get("fit") == 3 and r.get("rid") == rid, short(r))
    check("fit 3: no package (4.4)", r is not None and "package" not in r, short(r))
    check("fit 3: program echoed", r is not None and r.get("program") == "no.such-program", short(r))

    r = A.request("RESOLVE", timeout=MATCHER_WAIT, program="weixin", device=dict(PHONE, id=db))
    err(r, 403, name="RESOLVE device.id of another device (section 6)")
    r = A.request("RESOLVE", timeout=MATCHER_WAIT, program="weixin", device=dict(PHONE, id=da))
    check("RESOLVE device.id = the session's own -> RESOLVED", r and r["cmd"] == "RESOLVED", short(r))
    r = A.request("RESOLVE", timeout=MATCHER_WAIT, program="weixin", device=dict(PHONE, formFactor="car"))
    err(r, 422, name="RESOLVE invalid device")
    r = A.request("RESOLVE", timeout=MATCHER_WAIT, program="Bad/Name")
    err(r, 400, name="RESOLVE program that is not a program ID (4.1)")


# ------------------------------------------------------------------ 5.27


def upload(c, blob, name, compress_last=True):
    """UPLOAD (5.27); returns the final reply and the number of CREDITs."""
    h = blake(blob)
    rid = new_rid()
    t = time.monotonic()
    c.send("UPLOAD", rid=rid, hash=h, total=len(blob))
    first = c.wait_reply(rid, 10)
    if first["cmd"] != "CREDIT":
        return first, first, 0, 0
    credit = first.get("credit", 0)
    off, sent, credits = 0, 0, 0
    end = time.monotonic() + 20
    while off < len(blob) and time.monotonic() < end:
        while credit > 0 and off < len(blob):
            d = blob[off:off + AF_MAX_CHUNK]
            data, z = d, None
            if compress_last and off + len(d) == len(blob) and zstandard is not None:
                cz = zstandard.ZstdCompressor(level=1, write_content_size=True).compress(d)
                if len(cz) < len(d):
                    data, z = cz, True
            c.send("CHUNK", hash=h, offset=off, total=len(blob), size=len(d), zstd=z, data=data)
            off += len(d)
            sent += 1
            credit -= 1
        if off < len(blob):
            e = c.wait_event(lambda m: m["cmd"] == "CREDIT" and m.get("hash") == h, 10, since=t)
            credits += 1
            credit += e.get("credit", 0)
    fin = c.wait_reply(rid, 20)
    time.sleep(0.3)
    credits += len(c.events(lambda m: m["cmd"] == "CREDIT" and m.get("hash") == h, since=t))
    c.drop_events(lambda m: m["cmd"] == "CREDIT" and m.get("hash") == h)
    return first, fin, sent, credits


def upload_checks(A, blob):
    h = blake(blob)
    first, fin, sent, credits = upload(A, blob, "user data")
    check("UPLOAD of a new blob -> CREDIT with the UPLOAD's rid, hash and credit 1..16",
          first["cmd"] == "CREDIT" and first.get("hash") == h and 1 <= first.get("credit", 0) <= AF_MAX_CREDIT,
          short(first))
    check("UPLOAD: %d CHUNKs (the last one zstd-compressed) -> OK with the UPLOAD's rid" % sent,
          fin["cmd"] == "OK" and fin.get("rid") == first.get("rid"), short(fin))
    # 5.27: a CREDIT for each chunk written but the last, which the OK answers
    check("UPLOAD: a CREDIT for each chunk written but the last, answered by the OK (%d chunks)" % sent,
          credits == sent - 1, "%d CREDITs for %d chunks" % (credits, sent))
    r = A.request("UPLOAD", hash=h, total=len(blob))
    check("UPLOAD of a blob already held (same size) -> OK at once", r["cmd"] == "OK", short(r))

    bad = os.urandom(1000)
    rid = new_rid()
    A.send("UPLOAD", rid=rid, hash=blake(b"something else"), total=len(bad))
    r = A.wait_reply(rid, 10)
    if check("UPLOAD with a wrong hash -> CREDIT first", r["cmd"] == "CREDIT", short(r)):
        A.send("CHUNK", hash=blake(b"something else"), offset=0, total=len(bad), size=len(bad), data=bad)
        err(attempt("UPLOAD wrong hash", lambda: A.wait_reply(rid, 10)), 400, rid,
            "UPLOAD whose bytes do not match its hash")
    t = time.monotonic()
    A.send("CHUNK", hash=h, offset=0, total=len(bad), size=len(bad), data=bad)
    try:
        m = A.wait_event(lambda m: m["cmd"] == "ERROR", 5, since=t)
        check("CHUNK for no upload in progress -> ERROR 400 without a rid",
              m.get("code") == 400 and "rid" not in m, short(m))
    except Timeout:
        check("CHUNK for no upload in progress -> ERROR 400 without a rid", False, "no answer")
    r = A.request("UPLOAD", hash=h, total=0)
    err(r, 400, name="UPLOAD total 0 (range 1..268435456)")
    return h


# ------------------------------------------------------------------ 5.16-5.26


def push_checks(A, B, account, da, db, data_hash, data_size):
    # --- PUSH refusals and target states
    r = A.request("PUSH", timeout=MATCHER_WAIT, program="weixin",
                  targets=[da, os.urandom(16).hex(), "no-such-device"])
    ok = check("PUSH to self-ID and unknown IDs -> PUSH_ACCEPTED", r["cmd"] == "PUSH_ACCEPTED", short(r))
    if ok:
        ts = r.get("targets", [])
        check("PUSH_ACCEPTED: push is 32 hex, program echoed", HEX32.match(r.get("push", ""))
              and r.get("program") == "weixin", short(r))
        check("target: the sender's own ID -> refused 'a device cannot push to itself'",
              len(ts) == 3 and ts[0].get("deviceId") == da and ts[0].get("state") == "refused"
              and ts[0].get("reason") == "a device cannot push to itself", ts)
        check("targets: unknown IDs -> refused 'not a device of this account', in the order given",
              len(ts) == 3 and [t.get("state") for t in ts[1:]] == ["refused", "refused"]
              and all(t.get("reason") == "not a device of this account" for t in ts[1:])
              and ts[2].get("deviceId") == "no-such-device", ts)
    r = A.request("PUSH", timeout=MATCHER_WAIT, program="weixin", targets=["self", "all"])
    check("'self' and 'all' are special only as the one entry: else refused as unknown devices",
          r["cmd"] == "PUSH_ACCEPTED" and [(t.get("deviceId"), t.get("state")) for t in r.get("targets", [])]
          == [("self", "refused"), ("all", "refused")], short(r))
    r = A.request("PUSH", timeout=MATCHER_WAIT, program="no.such-program", targets=[db])
    if check("PUSH of an unknown program -> PUSH_ACCEPTED", r["cmd"] == "PUSH_ACCEPTED", short(r)):
        ts = r.get("targets", [])
        check("unknown program: target no-fit, reason \"unknown program 'no.such-program'\"",
              len(ts) == 1 and ts[0].get("state") == "no-fit"
              and ts[0].get("reason") == "unknown program 'no.such-program'", ts)
    r = A.request("PUSH", timeout=MATCHER_WAIT, program="weixin", targets=[db], dataHash=blake(b"never uploaded"),
                  dataSize=14)
    err(r, 400, name="PUSH with a dataHash the broker does not hold")
    if r.get("code") == 400:
        check("  ... reason says 'UPLOAD it first'", "UPLOAD it first" in r.get("reason", ""), r.get("reason"))
    r = A.request("PUSH", timeout=MATCHER_WAIT, program="weixin", targets=[db], dataHash=data_hash,
                  dataSize=data_size + 1)
    err(r, 400, name="PUSH with the held dataHash but another dataSize")
    r = A.request("PUSH", timeout=MATCHER_WAIT, program="weixin", targets=[])
    err(r, 400, name="PUSH with no target (1..64 entries)")
    time.sleep(0.5)
    B.drop_events()
    A.drop_events()

    # --- PUSH with user data to B (online)
    rid = new_rid()
    A.send("PUSH", rid=rid, program="weixin", targets=[db, db], withData=True, dataHash=data_hash,
           dataSize=data_size)
    pa = attempt("PUSH weixin+data to B", lambda: A.wait_reply(rid, MATCHER_WAIT))
    if not check("PUSH to B -> PUSH_ACCEPTED with the rid",
                 pa and pa["cmd"] == "PUSH_ACCEPTED" and pa.get("rid") == rid, short(pa)):
        return
    P = pa["push"]
    ts = pa.get("targets", [])
    check("a target named twice is answered once", len(ts) == 1, ts)
    check("B (online, a Windows PC): offered, versionName 3.9.8, name 'Spec PC'",
          ts and ts[0].get("deviceId") == db and ts[0].get("state") == "offered"
          and ts[0].get("versionName") == "3.9.8" and ts[0].get("name") == "Spec PC", ts)

    got = attempt("B gets ITEM(OFFER)", lambda: item_of(B, "OFFER", 10, pred=lambda i: i.get("push") == P))
    if not got:
        return
    item, offer = got
    check("ITEM: item is 32 hex, no rid", HEX32.match(item.get("item", "")) and "rid" not in item, short(item))
    check("ITEM body is a message of its own: v 1, no rid", offer.get("v") == 1 and "rid" not in offer, short(offer))
    pkg = offer.get("package", {})
    check("OFFER: push, program, from = initiator, fit 0",
          offer.get("push") == P and offer.get("program") == "weixin" and offer.get("from") == da
          and offer.get("fit") == 0, short(offer))
    check("OFFER.package: the target's package (windows 3.9.8), 64-hex hash, size",
          pkg.get("platform") == "windows" and pkg.get("versionName") == "3.9.8"
          and HEX64.match(pkg.get("hash", "")) and pkg.get("size", 0) > 0, pkg)
    check("OFFER carries dataHash and dataSize of the PUSH",
          offer.get("dataHash") == data_hash and offer.get("dataSize") == data_size, short(offer))
    meta = offer.get("meta")
    mm = None
    if isinstance(meta, bytes):
        try:
            import msgpack
            mm = msgpack.unpackb(meta, raw=False)
        except Exception:  # noqa: BLE001
            mm = None
    check("OFFER.meta: a msgpack map of exactly four bins root, rootSig, targets, targetsSig (5.20)",
          isinstance(mm, dict) and set(mm) == {"root", "rootSig", "targets", "targetsSig"}
          and all(isinstance(v, bytes) and v for v in mm.values()), short(offer))

    # an OFFER is never ACKed
    rid = new_rid()
    B.send("ACK", rid=rid, item=item["item"])
    err(attempt("ACK of an OFFER", lambda: B.wait_reply(rid, 5)), 403, rid, "ACK of an OFFER item")
    r = B.request("FETCH", hash=blake(b"not offered"), credit=1)
    err(r, 403, name="FETCH of a hash no pending offer names")
    r = B.request("FETCH", hash="ABC", credit=1)
    err(r, 400, name="FETCH hash not 64 hex")
    r = B.request("FETCH", hash=pkg.get("hash", ""), offset=pkg.get("size", 0) + 1, credit=1)
    err(r, 400, name="FETCH offset past the end")
    r = B.request("FETCH", hash=pkg.get("hash", ""), credit=AF_MAX_CREDIT + 1)
    err(r, 400, name="FETCH credit 17 (1..16)")

    # the package
    A.drop_events(lambda m: m["cmd"] == "PROGRESS")
    dl = Download(B, pkg["hash"], pkg["size"], "package FETCH")
    e = dl.run(credit=8)
    check("package FETCH: CHUNKs, no ERROR", e is None, short(e))
    dl.verify()
    check("package chunk sent zstd-compressed (a tar of 10 KiB compresses; 5.23)",
          dl.chunks and all(c[2] for c in dl.chunks), dl.chunks)
    try:
        pr = A.wait_event(lambda m: m["cmd"] == "PROGRESS" and m.get("push") == P
                          and m.get("offset") == m.get("total") == pkg["size"], 10)
        check("initiator gets PROGRESS {push, deviceId, offset = total} once the last chunk went",
              pr.get("deviceId") == db and "rid" not in pr, short(pr))
    except Timeout:
        check("initiator gets PROGRESS once the last chunk went", False,
              [short(m) for m in A.events(lambda m: m["cmd"] == "PROGRESS")])

    # the user data, with flow control
    dd = Download(B, data_hash, data_size, "user data FETCH")
    t = time.monotonic()
    B.send("FETCH", rid=new_rid(), hash=data_hash, credit=1)
    try:
        dd.take(B.wait_event(lambda m: m["cmd"] == "CHUNK" and m.get("hash") == data_hash, 10))
    except Timeout:
        pass
    time.sleep(1.0)
    more = B.events(lambda m: m["cmd"] == "CHUNK" and m.get("hash") == data_hash, since=t)
    check("FETCH credit 1: exactly one CHUNK, no more until CREDIT (5.22, 5.24)",
          len(dd.chunks) == 1 and not more, "%d chunks then %d" % (len(dd.chunks), len(more)))
    check("the first data chunk is incompressible: sent raw (zstd absent), %d bytes" % AF_MAX_CHUNK,
          dd.chunks and dd.chunks[0] == (0, AF_MAX_CHUNK, False, AF_MAX_CHUNK), dd.chunks)
    B.send("CREDIT", hash=data_hash, credit=1)
    try:
        dd.take(B.wait_event(lambda m: m["cmd"] == "CHUNK" and m.get("hash") == data_hash, 10))
        check("CREDIT 1 -> the next CHUNK, at offset %d" % AF_MAX_CHUNK,
              dd.chunks[-1][0] == AF_MAX_CHUNK and not dd.bad, dd.chunks)
    except Timeout:
        check("CREDIT 1 -> the next CHUNK", False, "none")

    # reconnect before DONE: the OFFER comes again after LOGIN_OK, the same
    # push; FETCH again from the offset we have
    B.reconnect()
    B.drop_events()
    lo = attempt("B re-login by key", lambda: B.login(account, PC, device_id=db))
    got = attempt("OFFER redelivered after re-login (not DONE, not ACKable)",
                  lambda: item_of(B, "OFFER", 10, pred=lambda i: i.get("push") == P))
    if got:
        check("redelivered OFFER: same push ID (and same item ID)", got[1].get("push") == P
              and got[0].get("item") == item["item"], short(got[0]))
        check("redelivered ITEM came after LOGIN_OK", lo is not None and got[0]["_t"] >= lo["_t"])
    have = len(dd.data)
    e = dd.run(credit=AF_MAX_CREDIT, offset=have)
    check("FETCH with offset %d (resume) -> the remaining CHUNKs" % have, e is None, short(e))
    dd.verify()
    check("the last data chunk is compressible: zstd and shorter than size",
          len(dd.chunks) == 3 and dd.chunks[-1][2] and dd.chunks[-1][3] < dd.chunks[-1][1], dd.chunks)

    # DONE, RESULT, ACK
    A.drop_events(lambda m: m["cmd"] == "ITEM")
    rid = new_rid()
    B.send("DONE", rid=rid, push=P, state="installed", versionName="3.9.8", files=2)
    r = attempt("DONE", lambda: B.wait_reply(rid, 10))
    check("DONE installed -> OK with the rid", r and r["cmd"] == "OK" and r.get("rid") == rid, short(r))
    got = attempt("initiator gets ITEM(RESULT)", lambda: item_of(A, "RESULT", 10, pred=lambda i: i.get("push") == P))
    if got:
        it, res = got
        check("RESULT: push, program, deviceId = target, state installed, versionName 3.9.8",
              res.get("push") == P and res.get("program") == "weixin" and res.get("deviceId") == db
              and res.get("state") == "installed" and res.get("versionName") == "3.9.8", short(res))
        A.ack(it["item"])
    r = B.request("FETCH", hash=pkg["hash"], credit=1)
    err(r, 403, name="FETCH after DONE (no pending offer any more)")
    r = B.request("DONE", push=P, state="installed")
    check("DONE again (a repeat after a crash) -> OK", r["cmd"] == "OK", short(r))
    r = B.request("DONE", push=P, state="exploded")
    err(r, 400, name="DONE with an unknown state")
    r = B.request("DONE", push="XYZ", state="installed")
    err(r, 400, name="DONE push not 32 hex (5.25 table)")
    r = B.request("DONE", push=os.urandom(16).hex(), state="failed", reason="x")
    check("DONE for no pending offer -> OK", r["cmd"] == "OK", short(r))
    time.sleep(0.5)
    check("no second RESULT for the repeated DONE", not A.events(
        lambda m: m["cmd"] == "ITEM" and decode(m["body"]).get("push") == P))

    # after DONE and ACK, nothing comes again at the next logins
    B.reconnect()
    B.login(account, PC, device_id=db)
    A.reconnect()
    A.login(account, PHONE, device_id=da)
    time.sleep(1.5)
    check("after DONE the OFFER is not delivered again at B's next login",
          not [m for m in B.events(lambda m: m["cmd"] == "ITEM") if decode(m["body"]).get("push") == P])
    check("after ACK the RESULT is not delivered again at A's next login",
          not [m for m in A.events(lambda m: m["cmd"] == "ITEM") if decode(m["body"]).get("push") == P])

    # --- to an offline target: queued; DONE failed -> RESULT failed
    B.logout()
    time.sleep(0.3)
    A.drop_events()
    pa = A.call("PUSH", "PUSH_ACCEPTED", MATCHER_WAIT, program="weixin", targets=["all"])
    ts = pa.get("targets", [])
    check("PUSH 'all' -> the other device only, queued while offline (reason optional)",
          len(ts) == 1 and ts[0].get("deviceId") == db and ts[0].get("state") == "queued", ts)
    P2 = pa.get("push")
    B.drop_events()
    lo = B.login(account, PC, device_id=db)
    got = attempt("queued OFFER after B's LOGIN_OK", lambda: item_of(B, "OFFER", 10,
                                                                     pred=lambda i: i.get("push") == P2))
    if got:
        check("queued OFFER arrives after LOGIN_OK, no dataHash", got[0]["_t"] >= lo["_t"]
              and "dataHash" not in got[1], short(got[1]))
    r = B.request("DONE", push=P2, state="failed", reason="spec client: disk full")
    check("DONE failed -> OK", r["cmd"] == "OK", short(r))
    got = attempt("RESULT failed", lambda: item_of(A, "RESULT", 10, pred=lambda i: i.get("push") == P2))
    if got:
        check("RESULT failed carries the target's reason",
              got[1].get("state") == "failed" and got[1].get("reason") == "spec client: disk full", short(got[1]))
        A.ack(got[0]["item"])

    # --- to "self", with a dataHash that is ignored; the RESULT is not ACKed
    A.drop_events()
    pa = A.call("PUSH", "PUSH_ACCEPTED", MATCHER_WAIT, program="notes", targets=["self"],
                dataHash=data_hash, dataSize=data_size)
    ts = pa.get("targets", [])
    P3 = pa.get("push")
    check("PUSH 'self' -> one target, offered, versionName 2.1.0", len(ts) == 1
          and ts[0].get("state") == "offered" and ts[0].get("versionName") == "2.1.0", ts)
    check("PUSH 'self': the target's deviceId is the sender's own ID (5.17)",
          len(ts) == 1 and ts[0].get("deviceId") == da, ts)
    got = attempt("OFFER to self", lambda: item_of(A, "OFFER", 10, pred=lambda i: i.get("push") == P3))
    if got:
        o = got[1]
        check("self OFFER: from = the sender, android package, dataHash ignored (no dataHash)",
              o.get("from") == da and o.get("package", {}).get("platform") == "android"
              and "dataHash" not in o, short(o))
        d3 = Download(A, o["package"]["hash"], o["package"]["size"], "self FETCH")
        d3.run(credit=AF_MAX_CREDIT)
        d3.verify()
    r = A.request("DONE", push=P3, state="installed", versionName="2.1.0")
    check("self DONE -> OK", r["cmd"] == "OK", short(r))
    got = attempt("self RESULT", lambda: item_of(A, "RESULT", 10, pred=lambda i: i.get("push") == P3))
    if got:
        check("self RESULT: deviceId = the sender, installed", got[1].get("deviceId") == da
              and got[1].get("state") == "installed", short(got[1]))
        first_item = got[0]["item"]
        A.reconnect()
        A.drop_events()
        A.login(account, PHONE, device_id=da)
        again = attempt("un-ACKed RESULT redelivered after re-login",
                        lambda: item_of(A, "RESULT", 10, pred=lambda i: i.get("push") == P3))
        if again:
            check("un-ACKed RESULT comes again, same item ID", again[0]["item"] == first_item, short(again[0]))
            A.ack(first_item)
            rid = new_rid()
            A.send("ACK", rid=rid, item=os.urandom(16).hex())
            time.sleep(0.5)
            with A._cv:
                ans = A._replies.pop(rid, None)
            check("ACK of an unknown item ID changes nothing (no answer)", ans is None, short(ans))
            r = A.request("ACK", item="XYZ")
            err(r, 400, name="ACK with a malformed item ID")


# ------------------------------------------------------------------ 5.34


def remove_checks(A, B, account, password, da, db, kb):
    # a pending offer for B, to see it end as failed
    A.drop_events()
    pa = A.call("PUSH", "PUSH_ACCEPTED", MATCHER_WAIT, program="weixin", targets=[db])
    P = pa.get("push")
    attempt("B gets the OFFER to be removed with", lambda: item_of(B, "OFFER", 10, pred=lambda i: i.get("push") == P))
    r = A.request("DEVICE_REMOVE", timeout=PW_WAIT, deviceId="B", password=password)
    err(r, 400, name="DEVICE_REMOVE deviceId not a device ID")
    r = A.request("DEVICE_REMOVE", timeout=PW_WAIT, deviceId=da, password=password)
    err(r, 403, name="DEVICE_REMOVE the sender itself")
    r = A.request("DEVICE_REMOVE", timeout=PW_WAIT, deviceId=os.urandom(16).hex(), password=password)
    err(r, 406, name="DEVICE_REMOVE not a device of the account")
    r = A.request("DEVICE_REMOVE", timeout=PW_WAIT, deviceId=db, password="wrong-password")
    err(r, 401, name="DEVICE_REMOVE wrong password")
    r = A.request("DEVICE_REMOVE", timeout=PW_WAIT, deviceId=db)
    err(r, 400, name="DEVICE_REMOVE without password (required)")
    B.drop_events()
    A.drop_events()
    rid = new_rid()
    A.send("DEVICE_REMOVE", rid=rid, deviceId=db, password=password)
    r = attempt("DEVICE_REMOVE", lambda: A.wait_reply(rid, PW_WAIT))
    check("DEVICE_REMOVE B -> OK with the rid", r and r["cmd"] == "OK" and r.get("rid") == rid, short(r))
    d = attempt("removed B gets DISCONNECT", lambda: B.wait_event(lambda m: m["cmd"] == "DISCONNECT", 5))
    check("DISCONNECT has a reason", d is not None and d.get("reason"), short(d))
    p = B.ping()
    check("removed B's session ended (PONG not loggedIn)", not p.get("loggedIn"), short(p))
    dl = attempt("A gets the new DEVICE_LIST", lambda: A.wait_event(lambda m: m["cmd"] == "DEVICE_LIST", 5))
    check("the new DEVICE_LIST has no B", dl is not None and [x.get("id") for x in dl.get("devices", [])] == [da],
          short(dl))
    got = attempt("B's pending offer ends failed", lambda: item_of(A, "RESULT", 10, pred=lambda i: i.get("push") == P))
    if got:
        check("RESULT failed 'the device was removed from the account'",
              got[1].get("state") == "failed" and got[1].get("deviceId") == db
              and got[1].get("reason") == "the device was removed from the account", short(got[1]))
        A.ack(got[0]["item"])
    r = B.request("LOGIN", timeout=PW_WAIT, account=account, deviceId=db, device=PC)
    err(r, 410, name="LOGIN by key of the removed device")
    r = B.request("LOGIN", timeout=PW_WAIT, account=account, password=password, deviceId=db, device=PC)
    err(r, 410, name="LOGIN with password naming the removed device")
    r = A.request("APPS", deviceId=db)
    err(r, 406, name="APPS of the removed device")
    r = A.call("PUSH", "PUSH_ACCEPTED", MATCHER_WAIT, program="notes", targets=[db])
    check("PUSH to the removed device: refused 'not a device of this account'",
          [t.get("state") for t in r.get("targets", [])] == ["refused"], short(r))
    r = B.request("LOGIN", timeout=PW_WAIT, account=account, password=password, device=PC)
    check("the old key logs in with the password as a new device",
          r["cmd"] == "LOGIN_OK" and HEX32.match(r.get("deviceId", "")) and r.get("deviceId") != db, short(r))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("endpoint")
    ap.add_argument("broker_cert")
    a = ap.parse_args()
    key = load_cert(a.broker_cert)
    account = "spec2-%s" % os.urandom(5).hex()
    password = "pw-" + os.urandom(8).hex()
    check("python3-zstandard is importable (zstd chunks, 5.23)", zstandard is not None)
    A, B = login_pair(a.endpoint, key, account, password)
    da, db = A.device_id, B.device_id
    time.sleep(0.3)
    A.drop_events()
    B.drop_events()
    attempt("RESOLVE checks", lambda: resolve_checks(A, da, db))
    blob = user_data_blob()
    h = attempt("UPLOAD checks", lambda: upload_checks(A, blob))
    if h:
        attempt("push checks", lambda: push_checks(A, B, account, da, db, h, len(blob)))
    attempt("DEVICE_REMOVE checks", lambda: remove_checks(A, B, account, password, da, db, B.keypair))
    A.close()
    B.close()
    return summary("push_checks")


if __name__ == "__main__":
    sys.exit(main())
