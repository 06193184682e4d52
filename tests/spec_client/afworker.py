#!/usr/bin/python3
"""afworker: a minimal AFP v1 worker (SPEC 2.1, 2.3, 5.13, 5.14, 8.5),
written from protocol/SPEC.md alone, on afclient's I/O thread.

    w = Worker(workers_endpoint, load_cert("broker.cert"))
    w.allow(worker_keys_dir, "spec-w1")    # its *.cert in the broker's worker keys dir (2.3)
    w.connect()                            # the first answer: DISCONNECT "send READY first"
    w.ready("matcher", credit=1)
    job = w.next_job()                     # a RESOLVE, with the broker's rid
    w.answer(job, "RESOLVED", program=job["program"], fit=3)

Its PINGs (every H/3, from afclient) keep it registered (8.5); every
message from the broker, jobs with their rid included, is an event.
"""

import os

from afclient import PROTO_VERSION, Client, new_keypair

JOBS = ("RESOLVE", "CONTACTS_EVAL", "PAY_INTENT", "PAY_CONFIRM", "PURCHASES")


class Worker(Client):
    def __init__(self, endpoint, server_key, keypair=None, heartbeat_ms=1000, log=None):
        super().__init__(endpoint, server_key, keypair or new_keypair(), heartbeat_ms, log)
        self.rid_replies = False

    def allow(self, keys_dir, name):
        """Write the minimal accepted certificate (SPEC 2.3) into the
        broker's worker keys directory; re-read at every handshake (2.4)."""
        path = os.path.join(keys_dir, name + ".cert")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write('curve\n    public-key = "%s"\n' % self.keypair[0].decode())
        os.replace(tmp, path)
        return path

    def ready(self, service="matcher", credit=None, heartbeat=None):
        self.send("READY", service=service, credit=credit, heartbeat=heartbeat)

    def next_job(self, timeout=5.0, since=None):
        return self.wait_event(lambda m: m["cmd"] in JOBS, timeout, since=since)

    def answer(self, job, cmd, **fields):
        """Answer a job with its broker rid (SPEC 5.7, 8.5)."""
        self.send(cmd, rid=job["rid"], **fields)

    def disconnect(self, reason="leaving"):
        self.send("DISCONNECT", reason=reason)

    def die(self):
        """Go silent without DISCONNECT (a crash): no more PINGs, socket closed."""
        self.heartbeat_enabled = False
        self.close()


def resolved_for(job, fit=0, **pkg):
    """A RESOLVED body for a RESOLVE job (SPEC 5.8)."""
    out = {"program": job["program"], "fit": fit}
    if pkg:
        out["package"] = dict(pkg, program=job["program"])
    return out


__all__ = ["Worker", "resolved_for", "PROTO_VERSION"]
