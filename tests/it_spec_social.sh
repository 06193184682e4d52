#!/usr/bin/env bash
# The spec's client (tests/spec_client/, written from protocol/SPEC.md
# alone) across accounts (social_checks.py): friends with its own RFC 9497
# OPRF (afoprf.py), GET, BROWSE and records, payments, backups, on a
# broker with the matcher, the contacts service and the payments service.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3         # Debian's, with python3-zmq, python3-msgpack and python3-zstandard
"$PY" -c 'import zmq, msgpack, zstandard' 2> /dev/null \
    || die "$PY lacks python3-zmq, python3-msgpack or python3-zstandard (zstd CHUNKs, SPEC 5.23)"
HB=1000                     # the spec's default: the client beats at 1 s before LOGIN_OK tells it H
S=$AF_SRC/tests/spec_client

# A broker with a matcher on the demo catalog
# plus game1 (4.99 EUR) and free1 (as paid_catalog makes them), the contacts
# service (its OPRF key in $T/contacts) and the payments service with its
# test processor: friends (5.35-5.45), GET/BROWSE and records (5.47, 5.47a),
# payments (5.46), backups (5.48-5.50), across five fresh accounts
"$CATALOG" --catalog "$T/catalog3" import "$(free_demo_manifest)" >> "$T/import.log" 2>&1 \
    || die "catalog3 import failed"
jq -n --arg f "$AF_SRC/data/catalog/packages/notes-2.1.0-universal.tar" \
    '[{ program: "game1", platform: "android", versionCode: 1, versionName: "1.1", minSdk: 21,
        price: 499, currency: "EUR", file: $f },
      { program: "free1", platform: "android", versionCode: 1, versionName: "1.0", minSdk: 21, file: $f }]' \
    > "$T/paid3.json" && "$CATALOG" --catalog "$T/catalog3" import "$T/paid3.json" >> "$T/import.log" 2>&1 \
    || die "catalog3 paid import failed"
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
check "the broker is still running after them" kill -0 "$BROKER_PID"

spec_results checks4.log social_checks 150 "$rc4"

finish
