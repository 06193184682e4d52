#!/usr/bin/env bash
# A client written from protocol/SPEC.md alone (tests/spec_client/, Python,
# no code shared with the C tree) against the real broker and matcher: two
# devices of a fresh account, every answer checked against the spec, the
# malformed inputs of 7.2 each with its documented code (run_checks.py),
# RESOLVE, the push path end to end with user data, DEVICE_REMOVE
# (push_checks.py). it_spec_workers and it_spec_social run the client's
# other parts, it_spec_cluster its cluster part. If the broker and the
# spec part, this fails, whichever of the two is wrong.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3         # Debian's, with python3-zmq, python3-msgpack and python3-zstandard
"$PY" -c 'import zmq, msgpack, zstandard' 2> /dev/null \
    || die "$PY lacks python3-zmq, python3-msgpack or python3-zstandard (zstd CHUNKs, SPEC 5.23)"
HB=1000                     # the spec's default: the client beats at 1 s before LOGIN_OK tells it H

"$CATALOG" --catalog "$T/catalog" import "$(free_demo_manifest)" >> "$T/import.log" 2>&1 || die "catalog import failed"
start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"

S=$AF_SRC/tests/spec_client
# 1. run_checks.py: sessions, devices, notifications, outbox, decoding (7.2)
"$PY" "$S/run_checks.py" "$NODES_EP" "$BROKER_CERT" > "$T/checks.log" 2>&1
rc=$?
# 2. push_checks.py: RESOLVE, the push path with user data (UPLOAD), DEVICE_REMOVE
"$PY" "$S/push_checks.py" "$NODES_EP" "$BROKER_CERT" > "$T/checks2.log" 2>&1
rc2=$?
check "the broker is still running after all of it" kill -0 "$BROKER_PID"

spec_results checks.log run_checks 200 "$rc"
spec_results checks2.log push_checks 100 "$rc2"

finish
