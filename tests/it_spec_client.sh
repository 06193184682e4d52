#!/usr/bin/env bash
# A client written from protocol/SPEC.md alone (tests/spec_client/, Python,
# no code shared with the C tree) against the real broker and matcher: two
# devices of a fresh account, every answer checked against the spec, the
# malformed inputs of 7.2 each with its documented code, the push path
# end to end (with user data), DEVICE_REMOVE; then, on a second broker
# without a matcher, the client's own workers. If the broker and the spec
# part, this fails, whichever of the two is wrong.
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

# 3. worker_checks.py: a second broker with no matcher (request_timeout
# 8 s) whose "matcher" workers are the client's own (their certificates
# written into its worker keys directory); 441 and 429 on fresh accounts
# (pw-per-source raised: 64 devices are 64 password logins from 127.0.0.1)
BROKER1_PID=$BROKER_PID
printf 'broker\n    request_timeout = 8000\n' > "$T/broker2.cfg"
NODES_EP="" WORKERS_EP=""
start_broker broker2 --config "$T/broker2.cfg" --pw-per-source 1000
"$PY" "$S/worker_checks.py" "$NODES_EP" "$WORKERS_EP" "$BROKER_CERT" "$BROKER_DIR/workers" 8000 \
    > "$T/checks3.log" 2>&1
rc3=$?
check "the second broker is still running after its checks" kill -0 "$BROKER_PID"

# 4. social_checks.py: a third broker with a matcher on the demo catalog
# plus game1 (4.99 EUR) and free1 (as paid_catalog makes them), the contacts
# service (its OPRF key in $T/contacts) and the payments service with its
# test processor: friends (5.35-5.45), GET/BROWSE and records (5.47, 5.47a),
# payments (5.46), backups (5.48-5.50), across five fresh accounts
BROKER2_PID=$BROKER_PID
"$CATALOG" --catalog "$T/catalog3" import "$(free_demo_manifest)" >> "$T/import.log" 2>&1 \
    || die "catalog3 import failed"
jq -n --arg f "$AF_SRC/data/catalog/packages/notes-2.1.0-universal.tar" \
    '[{ program: "game1", platform: "android", versionCode: 1, versionName: "1.1", minSdk: 21,
        price: 499, currency: "EUR", file: $f },
      { program: "free1", platform: "android", versionCode: 1, versionName: "1.0", minSdk: 21, file: $f }]' \
    > "$T/paid3.json" && "$CATALOG" --catalog "$T/catalog3" import "$T/paid3.json" >> "$T/import.log" 2>&1 \
    || die "catalog3 paid import failed"
NODES_EP="" WORKERS_EP=""
start_broker broker3 --catalog "$T/catalog3" --pw-per-source 1000
start_matcher matcher3 "$T/catalog3"
"$CONTACTS" -b "$WORKERS_EP" -k "$BROKER_CERT" -c "$T/contacts.cert" -K "$T/contacts/oprf.key" \
    --heartbeat $HB >> "$T/contacts.log" 2>&1 &
PIDS+=("$!")
wait_until 10 test -s "$T/contacts.cert" || die "contacts made no certificate"
cp "$T/contacts.cert" "$BROKER_DIR/workers/contacts.cert"
wait_until 10 grep -q "ready for 'contacts'" "$BROKER_DIR.log" || die "contacts not ready"
start_payments
"$PY" "$S/social_checks.py" "$NODES_EP" "$BROKER_CERT" > "$T/checks4.log" 2>&1
rc4=$?
check "the third broker is still running after its checks" kill -0 "$BROKER_PID"

for log in checks checks2 checks3 checks4; do
    total=$(grep -c '^ok - \|^not ok - ' "$T/$log.log")
    failed=$(grep '^not ok - ' "$T/$log.log")
    case $log in checks) min=200 what=run_checks;; checks2) min=100 what=push_checks;; checks3) min=35 what=worker_checks;; checks4) min=150 what=social_checks;; esac
    check "the spec's client ran its $what ($total checks)" test "$total" -gt $min
    check "  ... every one passed" test -z "$failed"
    [ -z "$failed" ] || echo "$failed" | head -20
done
check "  ... and they exited 0" test "$rc$rc2$rc3$rc4" = 0000
check "the first broker is still running" kill -0 "$BROKER1_PID"
check "the second broker is still running" kill -0 "$BROKER2_PID"

finish
