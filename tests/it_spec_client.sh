#!/usr/bin/env bash
# A client written from protocol/SPEC.md alone (tests/spec_client/, Python,
# no code shared with the C tree) against the real broker and matcher: two
# devices of a fresh account, every answer checked against the spec, the
# malformed inputs of 7.2 each with its documented code. If the broker and
# the spec part, this fails, whichever of the two is wrong.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3         # Debian's, with python3-zmq and python3-msgpack
"$PY" -c 'import zmq, msgpack' 2> /dev/null || die "$PY lacks python3-zmq or python3-msgpack (./run installs them)"
HB=1000                     # the spec's default: the client beats at 1 s before LOGIN_OK tells it H

"$CATALOG" --catalog "$T/catalog" import "$(free_demo_manifest)" >> "$T/import.log" 2>&1 || die "catalog import failed"
start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"

"$PY" "$AF_SRC/tests/spec_client/run_checks.py" "$NODES_EP" "$BROKER_CERT" > "$T/checks.log" 2>&1
rc=$?
total=$(grep -c '^ok - \|^not ok - ' "$T/checks.log")
failed=$(grep '^not ok - ' "$T/checks.log")
check "the spec's client ran its checks ($total)" test "$total" -gt 200
check "  ... every one passed" test -z "$failed"
[ -z "$failed" ] || echo "$failed" | head -20
check "  ... and it exited 0" test "$rc" = 0
check "the broker is still running after all of it" kill -0 "$BROKER_PID"

finish
