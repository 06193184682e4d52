#!/usr/bin/env bash
# An automatic login the broker cannot serve (issue 9, section 3): a 5xx
# (here 500, a store that cannot grow: a file size limit stands in for a
# full disk) is tried again with back-off, and the node logs in by itself
# once the broker can serve it; a 4xx (an account the broker does not
# know) stops the automatic login, and status says why.
. "$(dirname "$0")/lib.sh"

start_broker broker
start_node phone "$DEVICES/galaxy-s21.json"
af phone register ana > /dev/null || die "register failed"
af phone login ana > /dev/null || die "login failed"
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null

# The same broker, on the same endpoints, with a store that cannot be
# written (writes past 16 KiB fail with EFBIG; SIGXFSZ ignored, inherited)
rm -f "$T/broker/endpoints"
bash -c "trap '' XFSZ; exec prlimit --fsize=16384 -- '$BROKER' -d '$T/broker' --nodes '$NODES_EP' \
    --workers '$WORKERS_EP' --pwhash min --heartbeat $HB" > "$T/full.log" 2>&1 &
FULL_PID=$!; PIDS+=("$FULL_PID")
wait_until 10 test -s "$T/broker/endpoints" || die "the broker with a full store did not start"
# (the login's change cannot be committed: the broker answers its
# LOGIN_OK, held for the group commit, with ERROR 500 instead)
check "the broker answers the automatic login with 500" \
    wait_until 10 grep -q "File too large" "$T/full.log"
check "  ... the node tries again" \
    wait_until 10 bash -c "test \$(grep -c 'group commit .* failed' '$T/full.log') -ge 2"
check "  ... and status says why, and that it does" \
    wait_eq 5 E_INTERNAL afj phone '.loginRetry.error | split(":")[0]' status
out=$(af phone status)
check "  ... in the text form too" has "$out" "not logged in: E_INTERNAL" "trying again in"
kill "$FULL_PID"; wait "$FULL_PID" 2>/dev/null
start_broker broker
check "once the broker can serve it, the node logs in by itself" \
    wait_eq 70 true afj phone .loggedIn status

# A 4xx stops: a broker that does not know the account (its own store,
# the same keypair and endpoints)
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
mkdir -p "$T/other"
cp "$T/broker/broker.cert" "$T/broker/broker.cert_secret" "$T/other/"
start_broker other
check "an automatic login refused with a 4xx stops" wait_eq 10 E_NO_ACCOUNT \
    afj phone '.loginError | split(":")[0]' status
sleep 2
check "  ... it is not tried again" test "$(grep -c "refused LOGIN to 'ana'" "$T/other.log")" -eq 1
check "  ... and status says why" has "$(af phone status)" "not logged in: E_NO_ACCOUNT"

finish
