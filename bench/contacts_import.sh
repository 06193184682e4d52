#!/usr/bin/env bash
# bench/contacts_import.sh - an address book of N contacts (1,000) through
# the real path, timed at the CLI (bench/README.md "Contact tokens"):
# `appferry contacts import` parses it, blinds every number, the broker
# routes CONTACTS_EVAL to the contacts worker (under the account's
# allowance), the node unblinds and uploads the tokens with CONTACTS_PUT
# and writes contacts.json. Issue 13's target: under 1 s for 1,000.
#
#   AF_BIN=$PWD/build AF_SRC=$PWD bash bench/contacts_import.sh [N] [ROUNDS]
. "$AF_SRC/tests/lib.sh"
N=${1:-1000} ROUNDS=${2:-3}
start_broker broker
"$AF_BIN/contacts/appferry-contacts" -b "$WORKERS_EP" -k "$BROKER_CERT" -c "$T/contacts.cert" \
    -K "$T/contacts-key/oprf.key" --heartbeat $HB >> "$T/contacts.log" 2>&1 &
PIDS+=($!)
wait_until 10 test -s "$T/contacts.cert" || die "the contacts worker made no certificate"
cp "$T/contacts.cert" "$BROKER_DIR/workers/contacts.cert"
wait_until 10 grep -q "ready for 'contacts'" "$BROKER_DIR.log" || die "no contacts worker"
start_node a "$DEVICES/galaxy-s21.json"
af a register bench > /dev/null && af a login bench > /dev/null || die "no login"
for i in $(seq 1 "$N"); do
    printf 'BEGIN:VCARD\nVERSION:3.0\nFN:Contact %d\nTEL;TYPE=CELL:0151 %08d\nEND:VCARD\n' "$i" "$i"
done > "$T/book.vcf"
echo "  # load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
    start=$(date +%s%N)
    out=$(af a contacts import "$T/book.vcf" --country DE 2>&1) || die "import failed: $out"
    echo "  # round $r: $N contacts evaluated and uploaded in $(( ($(date +%s%N) - start) / 1000000 )) ms"
done
echo "  # load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
check "every contact uploaded" test "$(jq '.contacts | length' "$T/a/contacts.json")" = "$N"
finish
