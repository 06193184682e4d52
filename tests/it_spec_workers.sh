#!/usr/bin/env bash
# The spec's client (tests/spec_client/, written from protocol/SPEC.md
# alone) as workers: on a broker with no matcher, the client's own
# "matcher" workers (afworker.py) speak the backend dialog (READY,
# DISCONNECT, jobs handed on when a worker leaves or goes silent, the
# timeout's 503); 441 and 429 on fresh accounts (worker_checks.py).
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3         # Debian's, with python3-zmq, python3-msgpack and python3-zstandard
"$PY" -c 'import zmq, msgpack, zstandard' 2> /dev/null \
    || die "$PY lacks python3-zmq, python3-msgpack or python3-zstandard (zstd CHUNKs, SPEC 5.23)"
HB=1000                     # the spec's default: the client beats at 1 s before LOGIN_OK tells it H
S=$AF_SRC/tests/spec_client

# A broker with no matcher (request_timeout 8 s) whose "matcher" workers
# are the client's own (their certificates written into its worker keys
# directory); pw-per-source raised: 64 devices are 64 password logins from
# 127.0.0.1
printf 'broker\n    request_timeout = 8000\n' > "$T/broker.cfg"
start_broker broker --config "$T/broker.cfg" --pw-per-source 1000
"$PY" "$S/worker_checks.py" "$NODES_EP" "$WORKERS_EP" "$BROKER_CERT" "$BROKER_DIR/workers" 8000 \
    > "$T/checks3.log" 2>&1
rc3=$?
check "the broker is still running after them" kill -0 "$BROKER_PID"

spec_results checks3.log worker_checks 35 "$rc3"

finish
