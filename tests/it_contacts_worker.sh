#!/usr/bin/env bash
# The contacts worker (issue 13, SPEC 5.35) as a program: its options, its
# OPRF key file (made once, 0600, the same key on every start, refused when
# others may read it or it holds no key), and the worker dialog against the
# real broker, which takes it for the service 'contacts'. What it answers
# is af_evaluator's self-test; the routing through the broker, the
# allowance and the rest of issue 13 are tests/it_friends.sh.
. "$(dirname "$0")/lib.sh"


out=$("$CONTACTS" --help); rc=$?
check "--help says how to use it, and exits 0" has "$out" "--key FILE" "--broker-key FILE" "mode 0600"
check "  ... exit 0" test $rc -eq 0
out=$("$CONTACTS" --version); rc=$?
check "--version names the version and the OPRF suite" test $rc -eq 0
check "  ... $out" has "$out" "appferry-contacts 0." "ristretto255-SHA512"
"$CONTACTS" --cert "$T/c.cert" > "$T/usage.out" 2>&1; rc=$?
check "without --broker-key and --key it explains and exits 2" test $rc -eq 2
check "  ... naming what is required" grep -q "are required" "$T/usage.out"

start_broker broker
KEY="$T/contacts/private/oprf.key"
start_contacts () {
    "$CONTACTS" -b "$WORKERS_EP" -k "$BROKER_CERT" -c "$T/contacts/worker.cert" -K "$KEY" \
        --heartbeat $HB "$@" >> "$T/contacts.log" 2>&1 &
    CONTACTS_PID=$!
    PIDS+=("$CONTACTS_PID")
}
start_contacts
wait_until 10 test -s "$KEY" || die "the contacts worker made no key"
check "first start: it makes the OPRF key, mode 0600, in a 0700 directory" \
    test "$(stat -c %a "$KEY")" = 600 -a "$(stat -c %a "$T/contacts/private")" = 700
check "  ... 64 hex digits and a newline, nothing else" \
    test "$(wc -c < "$KEY")" -eq 65 -a -n "$(grep -xE '[0-9a-f]{64}' "$KEY")"
check "  ... and says so with the key's fingerprint, not the key" \
    wait_until 5 grep -qE "contacts: made a new key [0-9a-f]{16} from $KEY" "$T/contacts.log"
check "  ... the key itself is in no log" bash -c "! grep -q '$(cat "$KEY")' '$T/contacts.log' '$T/broker.log'"
KEY_ID=$(sed -n 's/.*contacts: made a new key \([0-9a-f]*\) from.*/\1/p' "$T/contacts.log")
cp "$T/contacts/worker.cert" "$BROKER_DIR/workers/contacts.cert"

# The broker admits its CURVE key and its service
check "the broker admits its key and takes it for the service 'contacts'" \
    wait_until 10 grep -q "ready for 'contacts'" "$T/broker.log"
check "  ... and does not refuse the service" bash -c "! grep -q \"unknown service 'contacts'\" '$T/broker.log'"

kill -TERM "$CONTACTS_PID"
check "SIGTERM stops it" wait_until 5 bash -c "! kill -0 $CONTACTS_PID 2>/dev/null"
check "  ... saying so" grep -q "contacts: stopped" "$T/contacts.log"

# Second start: the same key
KEY_BEFORE=$(cat "$KEY")
start_contacts
check "second start: the same key, by its fingerprint" \
    wait_until 5 grep -q "contacts: using key $KEY_ID from $KEY" "$T/contacts.log"
check "  ... the file unchanged" test "$(cat "$KEY")" = "$KEY_BEFORE"
kill -TERM "$CONTACTS_PID"
wait_until 5 bash -c "! kill -0 $CONTACTS_PID 2>/dev/null"

# Refusals: a key others may read, a file that holds no key
chmod 0644 "$KEY"
out=$("$CONTACTS" -b "$WORKERS_EP" -k "$BROKER_CERT" -c "$T/contacts/worker.cert" -K "$KEY" 2>&1); rc=$?
check "a key file others may read is refused: it does not start" test $rc -eq 1
check "  ... saying what to do" has "$out" "may be read or written by others (mode 0644): chmod 600 it"
chmod 0600 "$KEY"
printf 'not a key\n' > "$T/bad.key"; chmod 0600 "$T/bad.key"
out=$("$CONTACTS" -b "$WORKERS_EP" -k "$BROKER_CERT" -c "$T/contacts/worker.cert" -K "$T/bad.key" 2>&1); rc=$?
check "a key file that holds no key is refused, and not replaced" \
    test $rc -eq 1 -a "$(cat "$T/bad.key")" = "not a key"
check "  ... $out" has "$out" "does not hold one key"
out=$("$CONTACTS" -b "$WORKERS_EP" -k "$T/missing.cert" -c "$T/contacts/worker.cert" -K "$KEY" 2>&1); rc=$?
check "no broker certificate: a clear error" test $rc -eq 1 -a "$out" = "appferry-contacts: cannot read $T/missing.cert"
finish
