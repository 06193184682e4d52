#!/usr/bin/env bash
# Password work (issue 9, section 4): Argon2id runs off the broker's
# reactor, so a storm of sign-ups does not stop it answering; one password
# check at a time per connection; wrong passwords are counted per account
# and source address, durably, so a guesser elsewhere does not lock the
# owner out and a broker restart does not reset the count.
. "$(dirname "$0")/lib.sh"

# The real cost (interactive: 64 MiB, ~0.1 s a hash), on one hashing
# thread, so the reactor keeps a core of this machine to itself
printf 'security\n    pw_threads = 1\n' > "$T/broker.cfg"
start_broker broker --config "$T/broker.cfg" --pwhash interactive

"$RAW" "$NODES_EP" "$BROKER_CERT" storm 16 > "$T/storm.out" 2>&1
grep '^#' "$T/storm.out" | sed 's/^/  /'
check "16 sign-ups at once: all registered" grep -q "^ok - every REGISTER of the storm" "$T/storm.out"
check "  ... and the broker answered PINGs at once meanwhile" grep -q "^ok - PINGs are answered" "$T/storm.out"

start_node tablet "$DEVICES/galaxy-tab-s7.json"
APPFERRY_PASSWORD="carol's password" af tablet register carol > /dev/null || die "register carol failed"
"$RAW" "$NODES_EP" "$BROKER_CERT" hurry carol > "$T/hurry.out" 2>&1
grep -v '^ok' "$T/hurry.out" | sed 's/^/  # /'
check "one password check at a time per connection" grep -q "0 failed" "$T/hurry.out"

# Someone at 127.0.0.2 guesses carol's password
"$RAW" "$NODES_EP" "$BROKER_CERT" guess carol 10 127.0.0.2 > "$T/guess.out" 2>&1
check "10 wrong passwords from one address, then that address is refused" grep -q "0 failed" "$T/guess.out"
out=$(APPFERRY_PASSWORD="carol's password" af tablet login carol 2>&1)
check "  ... while carol herself, from elsewhere, logs in" has "$out" "Logged in"
check "the broker logs whom it refused and why" grep -q "refused LOGIN to 'carol'.*from here" "$T/broker.log"

# The count is in the store: a restarted broker still refuses the guesser
kill -TERM "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
start_broker broker --config "$T/broker.cfg" --pwhash interactive
"$RAW" "$NODES_EP" "$BROKER_CERT" guess carol 0 127.0.0.2 > "$T/guess2.out" 2>&1
check "after a restart the guesser is still refused" grep -q "^ok - then this source is refused" "$T/guess2.out"

finish
