#!/usr/bin/python3
"""afclient: a small AFP (appferry protocol v1) node client, written from
protocol/SPEC.md alone (sections 2-5, 7, 8).

Library use:

    from afclient import Client, load_cert, new_keypair
    c = Client("tcp://127.0.0.1:5670", load_cert("broker.cert"), new_keypair())
    c.connect()
    c.register("ana", "correct horse")
    ok = c.login("ana", device, password="correct horse")
    ...
    c.close()

One I/O thread per Client owns the ZeroMQ socket (sockets are not thread
safe); it sends queued messages, keeps the heartbeat (SPEC 8.1), decodes
what arrives and files it: replies by rid, everything else (pushes,
PONGs, rid-less ERRORs, forwarded NOTIFYs, ITEMs, DISCONNECT) as events.

CLI: see `afclient.py --help`.
"""

import argparse
import json
import os
import queue
import re
import sys
import threading
import time

import msgpack
import zmq
import zmq.utils.z85

PROTO_VERSION = 1             # SPEC 3.2, AF_PROTO_VERSION
AF_MAX_ZMQ_MSG = 1052672      # SPEC 2.2
DEFAULT_HEARTBEAT_MS = 1000   # SPEC 8.1, used before LOGIN_OK
DEFAULT_LIVENESS = 3
CONNECT_PING_MS = 100         # SPEC 8.1: PING every 100 ms until first reply

HEX32 = re.compile(r"^[0-9a-f]{32}$")


# ---------------------------------------------------------------- keys


def load_cert(path):
    """Return the 40-char Z85 public key of a czmq certificate (SPEC 2.3)."""
    section = None
    key = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line.startswith(" "):
                section = line.strip()
                continue
            if section != "curve":
                continue
            name, sep, value = line.strip().partition("=")
            if not sep or name.strip() != "public-key":
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            key = value
    if key is None or len(key) != 40:
        raise ValueError("%s: no 40-character curve/public-key" % path)
    zmq.utils.z85.decode(key.encode())   # validates Z85
    return key.encode()


def new_keypair():
    """A fresh CURVE keypair, (public, secret), each 40 bytes of Z85."""
    return zmq.curve_keypair()


def save_keypair(path, kp):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"public": kp[0].decode(), "secret": kp[1].decode()}, f)


def load_keypair(path):
    with open(path) as f:
        d = json.load(f)
    return d["public"].encode(), d["secret"].encode()


# ---------------------------------------------------------------- codec


def encode(msg):
    """Encode a message map: str as str, bytes as bin, shortest forms."""
    return msgpack.packb(msg, use_bin_type=True)


def decode(frame):
    """Decode one AFP frame into a dict; raises ValueError if it is not a
    single msgpack map with str keys and v == 1 (SPEC 3.1, 3.2)."""
    try:
        msg = msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except Exception as e:          # includes ExtraData (trailing bytes)
        raise ValueError("undecodable frame: %s" % e)
    if not isinstance(msg, dict):
        raise ValueError("top-level value is not a map")
    if msg.get("v") != PROTO_VERSION or not isinstance(msg.get("cmd"), str):
        raise ValueError("bad envelope: %r" % {k: msg.get(k) for k in ("v", "cmd")})
    rid = msg.get("rid")
    if rid is not None and not (isinstance(rid, bytes) and len(rid) == 16):
        raise ValueError("bad rid")
    return msg


def new_rid():
    return os.urandom(16)


class AfError(Exception):
    """An ERROR answer (SPEC 5.12)."""

    def __init__(self, msg):
        self.msg = msg
        self.code = msg.get("code")
        self.reason = msg.get("reason", "")
        super().__init__("ERROR %s: %s" % (self.code, self.reason))


class Timeout(Exception):
    pass


# ---------------------------------------------------------------- client


class Client:
    def __init__(self, endpoint, server_key, keypair=None, heartbeat_ms=DEFAULT_HEARTBEAT_MS,
                 log=None):
        self.endpoint = endpoint
        self.server_key = server_key
        self.keypair = keypair or new_keypair()
        self.own_heartbeat = heartbeat_ms
        self.heartbeat_ms = heartbeat_ms
        self.liveness = DEFAULT_LIVENESS
        self.log = log
        # session state from LOGIN_OK (SPEC 5.3)
        self.account = None
        self.device_id = None
        self.login_ok = None
        self.logged_in = False
        self.disconnected_reason = None
        self.devices = None            # last DEVICE_LIST (push or answer)
        # I/O thread plumbing
        self._out = queue.Queue()
        self._cv = threading.Condition()
        self._replies = {}             # rid -> msg
        self._events = []              # messages without a (pending) rid
        self._undecodable = []         # frames we could not decode
        self._stop = False
        self._up = False               # first message received
        self.heartbeat_enabled = True
        self.last_recv = None
        self.last_send = 0.0
        self.broker_dead = False
        self.rid_replies = True        # False (a worker): jobs with a rid are events
        self._ctx = zmq.Context.instance()
        self._sock = None
        self._thread = None

    # ---- connection

    def _make_socket(self):
        s = self._ctx.socket(zmq.DEALER)
        s.curve_publickey = self.keypair[0]
        s.curve_secretkey = self.keypair[1]
        s.curve_serverkey = self.server_key
        s.setsockopt(zmq.MAXMSGSIZE, AF_MAX_ZMQ_MSG)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.IMMEDIATE, 1)
        s.setsockopt(zmq.RECONNECT_IVL, min(self.own_heartbeat, 1000))
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 16 * min(self.own_heartbeat, 1000))
        s.connect(self.endpoint)
        return s

    def connect(self, timeout=10.0):
        """Open the connection and wait until the broker answered once
        (SPEC 8.1: PING every 100 ms before the first reply)."""
        self._sock = self._make_socket()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        with self._cv:
            while not self._up:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("no answer from %s within %.1fs (wrong broker key?)"
                                  % (self.endpoint, timeout))
                self._cv.wait(left)
        return self

    def close(self):
        self._stop = True
        if self._thread:
            self._thread.join(2)
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def reconnect(self, timeout=10.0):
        """New socket, new handshake, new routing ID (SPEC 8.1); session lost."""
        self.close()
        with self._cv:
            self._up = False
            self.logged_in = False
            self.broker_dead = False
        return self.connect(timeout)

    # ---- I/O thread

    def _now_ms(self):
        return time.monotonic() * 1000.0

    def _send_frames(self, frames):
        try:
            self._sock.send_multipart(frames, flags=zmq.NOBLOCK)
            self.last_send = self._now_ms()
            return True
        except zmq.Again:
            return False

    def _run(self):
        sock = self._sock
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        pending = None
        while not self._stop:
            now = self._now_ms()
            # heartbeat: some message at least every H ms; we beat at H/3.
            if self.heartbeat_enabled:
                interval = CONNECT_PING_MS if not self._up else max(self.heartbeat_ms / 3.0, 20)
                if now - self.last_send >= interval and self._out.empty() and pending is None:
                    self._send_frames([encode({"v": PROTO_VERSION, "cmd": "PING"})])
            # outbound
            while True:
                if pending is None:
                    try:
                        pending = self._out.get_nowait()
                    except queue.Empty:
                        break
                if not self._send_frames(pending):
                    break          # not connected yet (IMMEDIATE); retry
                pending = None
            # inbound
            for s, _ in poller.poll(20):
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._on_frames(frames)
            if self.last_recv is not None and self._up:
                if self._now_ms() - self.last_recv > self.heartbeat_ms * self.liveness:
                    self.broker_dead = True

    def _on_frames(self, frames):
        self.last_recv = self._now_ms()
        with self._cv:
            self._up = True
            if len(frames) != 1:
                self._undecodable.append(frames)
                self._cv.notify_all()
                return
            try:
                msg = decode(frames[0])
            except ValueError as e:
                self._undecodable.append((frames[0], str(e)))
                if self.log:
                    self.log("drop undecodable message: %s" % e)
                self._cv.notify_all()
                return
            msg["_t"] = time.monotonic()
            cmd = msg["cmd"]
            if cmd == "PONG":
                # a PONG never carries a rid (SPEC 5.10)
                if self.logged_in and not msg.get("loggedIn"):
                    self.logged_in = False     # session lost (SPEC 5.10, 8.3)
            elif cmd == "DISCONNECT":
                self.logged_in = False
                self.disconnected_reason = msg.get("reason", "")
            elif cmd == "DEVICE_LIST" and "rid" not in msg:
                self.devices = msg
            rid = msg.get("rid")
            if rid is not None and self.rid_replies:
                self._replies[rid] = msg
            else:
                self._events.append(msg)
            self._cv.notify_all()

    # ---- sending

    def send(self, cmd, rid=None, **fields):
        """Send one message; returns the rid used (or None)."""
        msg = {"v": PROTO_VERSION, "cmd": cmd}
        if rid is not None:
            msg["rid"] = rid
        for k, val in fields.items():
            if val is not None:
                msg[k] = val
        self._out.put([encode(msg)])
        return rid

    def send_raw(self, *frames):
        """Send raw frames as they are (for malformed-message tests)."""
        self._out.put(list(frames))

    def wait_reply(self, rid, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self._cv:
            while rid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("no reply for rid %s" % rid.hex())
                self._cv.wait(left)
            return self._replies.pop(rid)

    def request(self, cmd, timeout=5.0, **fields):
        """Send with a fresh rid and return the reply (OK, ERROR, ...)."""
        rid = new_rid()
        self.send(cmd, rid=rid, **fields)
        return self.wait_reply(rid, timeout)

    def call(self, cmd, expect, timeout=5.0, **fields):
        """request(), raising AfError on ERROR and ValueError on another cmd."""
        r = self.request(cmd, timeout=timeout, **fields)
        if r["cmd"] == "ERROR":
            raise AfError(r)
        if r["cmd"] != expect:
            raise ValueError("%s answered with %s, expected %s" % (cmd, r["cmd"], expect))
        return r

    # ---- events

    def wait_event(self, pred=None, timeout=5.0, since=None):
        """Pop and return the first event (rid-less message) matching pred."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for i, m in enumerate(self._events):
                    if since is not None and m["_t"] < since:
                        continue
                    if pred is None or pred(m):
                        return self._events.pop(i)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("no matching event")
                self._cv.wait(left)

    def events(self, pred=None, since=None):
        with self._cv:
            return [m for m in self._events
                    if (pred is None or pred(m)) and (since is None or m["_t"] >= since)]

    def drop_events(self, pred=None):
        with self._cv:
            self._events = [m for m in self._events if pred is not None and not pred(m)]

    def idle(self, seconds):
        """Wait while the I/O thread keeps heartbeating."""
        time.sleep(seconds)

    # ---- commands (SPEC 5)

    def ping(self, timeout=3.0):
        """PING and return the next PONG (SPEC 5.9, 5.10)."""
        t = time.monotonic()
        self.send("PING")
        return self.wait_event(lambda m: m["cmd"] == "PONG", timeout, since=t)

    def register(self, account, password, timeout=30.0):
        return self.call("REGISTER", "OK", timeout, account=account, password=password)

    def login(self, account, device, password=None, device_id=None, timeout=30.0):
        """LOGIN (SPEC 5.2): with a password (first login), or by key
        (device_id, no password). Returns LOGIN_OK; raises AfError."""
        r = self.call("LOGIN", "LOGIN_OK", timeout, account=account, password=password,
                      deviceId=device_id, device=device)
        self._on_login_ok(r)
        return r

    def _on_login_ok(self, r):
        if not isinstance(r.get("deviceId"), str) or not HEX32.match(r["deviceId"]):
            raise ValueError("LOGIN_OK without a 32-hex deviceId: %r" % r)
        self.login_ok = r
        self.account = r["account"]
        self.device_id = r["deviceId"]
        hb = r.get("heartbeat", 0)
        if hb:   # SPEC 8.1: the smaller of our own interval and the broker's
            self.heartbeat_ms = min(self.own_heartbeat, hb)
        if r.get("liveness"):
            self.liveness = r["liveness"]
        self.logged_in = True
        self.disconnected_reason = None

    def logout(self):
        r = self.call("LOGOUT", "OK")
        self.logged_in = False
        return r

    def devices_list(self):
        r = self.call("DEVICES", "DEVICE_LIST")
        self.devices = r
        return r

    def report(self, seq, op, program, **opt):
        return self.call("REPORT", "OK", seq=seq, op=op, program=program, **opt)

    def send_list(self, seq, apps):
        return self.call("LIST", "OK", seq=seq, apps=apps)

    def apps(self, device_id):
        return self.call("APPS", "APP_LIST", deviceId=device_id)

    def sync(self, grouped=False, timeout=30.0):
        return self.call("SYNC", "SYNC_DIFF", timeout, grouped=True if grouped else None)

    def notify(self, device_id, body, kind=None, with_rid=True):
        """NOTIFY (SPEC 5.15); with a rid returns the OK, else None."""
        if isinstance(body, str):
            body = body.encode()
        if with_rid:
            return self.call("NOTIFY", "OK", deviceId=device_id, kind=kind, body=body)
        self.send("NOTIFY", deviceId=device_id, kind=kind, body=body)
        return None

    def ack(self, item):
        self.send("ACK", item=item)

    def config_put(self, program, at, blob):
        return self.call("CONFIG_PUT", "OK", program=program, at=at, blob=blob)

    def config_get(self, program, previous=False):
        return self.call("CONFIG_GET", "CONFIG", program=program,
                         previous=True if previous else None)

    # ---- helpers

    def next_notification(self, timeout=5.0, pred=None):
        """The next notification: a forwarded NOTIFY (SPEC 5.15), or a
        NOTIFY inside an ITEM (SPEC 5.18), which is then ACKed."""
        def match(m):
            if m["cmd"] == "NOTIFY":
                return pred is None or pred(m)
            if m["cmd"] == "ITEM":
                try:
                    inner = decode(m["body"])
                except (ValueError, KeyError, TypeError):
                    return False
                return inner["cmd"] == "NOTIFY" and (pred is None or pred(inner))
            return False
        m = self.wait_event(match, timeout)
        if m["cmd"] == "ITEM":
            inner = decode(m["body"])
            inner["_item"] = m["item"]
            self.ack(m["item"])
            return inner
        return m


def now_ms():
    return int(time.time() * 1000)


def load_device(path):
    """Read a device JSON (camelCase keys, SPEC 4.2) as the wire map."""
    with open(path) as f:
        d = json.load(f)
    for k in ("id", "online", "lastSeen"):
        d.pop(k, None)
    return d


# ---------------------------------------------------------------- CLI


def _jsonable(x):
    if isinstance(x, bytes):
        try:
            return x.decode()
        except UnicodeDecodeError:
            return "0x" + x.hex()
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items() if k != "_t"}
    if isinstance(x, list):
        return [_jsonable(v) for v in x]
    return x


def main(argv=None):
    p = argparse.ArgumentParser(
        description="AFP v1 node client (from protocol/SPEC.md). One run = one "
                    "connection: it logs in (password from $AF_PASSWORD, else by "
                    "key with the saved device ID) and runs one command.")
    p.add_argument("--broker", required=True, help="frontend endpoint, tcp://HOST:PORT")
    p.add_argument("--broker-key", required=True, help="the broker's broker.cert")
    p.add_argument("--home", required=True,
                   help="directory for this device's keypair (node.key) and state (node.state)")
    p.add_argument("--device", help="device JSON (SPEC 4.2, completed); needed to log in")
    p.add_argument("--account")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ping")
    sr = sub.add_parser("register"); sr.add_argument("account")
    sub.add_parser("login")
    sub.add_parser("logout")
    sub.add_parser("devices")
    s = sub.add_parser("report"); s.add_argument("seq", type=int)
    s.add_argument("op", choices=["install", "uninstall"]); s.add_argument("program")
    s.add_argument("--version-name")
    s = sub.add_parser("list"); s.add_argument("seq", type=int); s.add_argument("programs", nargs="*")
    s = sub.add_parser("apps"); s.add_argument("device_id", nargs="?")
    s = sub.add_parser("sync"); s.add_argument("--grouped", action="store_true")
    s = sub.add_parser("notify"); s.add_argument("device_id"); s.add_argument("text")
    s.add_argument("--kind", default="text")
    s = sub.add_parser("listen", help="print notifications/pushes for SECONDS")
    s.add_argument("seconds", type=float)
    s = sub.add_parser("config-put"); s.add_argument("program"); s.add_argument("file")
    s = sub.add_parser("config-get"); s.add_argument("program"); s.add_argument("--previous", action="store_true")
    a = p.parse_args(argv)

    os.makedirs(a.home, mode=0o700, exist_ok=True)
    keyfile = os.path.join(a.home, "node.key")
    statefile = os.path.join(a.home, "node.state")
    if not os.path.exists(keyfile):
        save_keypair(keyfile, new_keypair())
    state = {}
    if os.path.exists(statefile):
        with open(statefile) as f:
            state = json.load(f)
    c = Client(a.broker, load_cert(a.broker_key), load_keypair(keyfile))
    c.connect()
    out = lambda m: print(json.dumps(_jsonable(m), indent=1, sort_keys=True))
    try:
        if a.cmd == "ping":
            out(c.ping()); return 0
        password = os.environ.get("AF_PASSWORD")
        if a.cmd == "register":
            if not password:
                sys.exit("set AF_PASSWORD")
            out(c.register(a.account, password)); return 0
        account = a.account or state.get("account")
        if not account or not a.device:
            sys.exit("--account (or a saved state) and --device are needed to log in")
        dev = load_device(a.device)
        if a.cmd == "login" or not state.get("deviceId") or state.get("account") != account:
            if not password:
                sys.exit("first login needs AF_PASSWORD")
            r = c.login(account, dev, password=password)
        else:
            r = c.login(account, dev, device_id=state["deviceId"])
        tmp = statefile + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"account": r["account"], "deviceId": r["deviceId"]}, f)
        os.replace(tmp, statefile)
        if a.cmd == "login":
            out(r); return 0
        if a.cmd == "logout":
            out(c.logout())
        elif a.cmd == "devices":
            out(c.devices_list())
        elif a.cmd == "report":
            out(c.report(a.seq, a.op, a.program, versionName=a.version_name, at=now_ms()))
        elif a.cmd == "list":
            out(c.send_list(a.seq, [{"program": x} for x in a.programs]))
        elif a.cmd == "apps":
            out(c.apps(a.device_id or c.device_id))
        elif a.cmd == "sync":
            out(c.sync(a.grouped))
        elif a.cmd == "notify":
            out(c.notify(a.device_id, a.text, kind=a.kind))
        elif a.cmd == "listen":
            end = time.monotonic() + a.seconds
            while time.monotonic() < end:
                try:
                    m = c.wait_event(lambda m: m["cmd"] != "PONG", end - time.monotonic())
                except Timeout:
                    break
                if m["cmd"] == "ITEM":
                    try:
                        inner = decode(m["body"])
                        if inner["cmd"] != "OFFER":   # an OFFER is never ACKed (5.18)
                            c.ack(m["item"])
                        m["body"] = inner
                    except ValueError:
                        c.ack(m["item"])
                out(m)
        elif a.cmd == "config-put":
            with open(a.file, "rb") as f:
                out(c.config_put(a.program, now_ms(), f.read()))
        elif a.cmd == "config-get":
            out(c.config_get(a.program, a.previous))
        return 0
    except AfError as e:
        out(e.msg)
        return 1
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(main())
