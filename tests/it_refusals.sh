#!/usr/bin/env bash
# Every refused handshake is logged (SPEC 2.4, issue 9 section 4), on both
# sockets, with the peer's address and the reason: NULL and PLAIN
# clients, a CURVE client with a wrong broker key, a worker key that is
# not listed; and a flood of refusals is logged at a bounded rate, then
# counted.
. "$(dirname "$0")/lib.sh"

start_broker broker
refusals () { grep -c "refused a connection on $1" "$T/broker.log"; }

# Real libzmq clients. A NULL or PLAIN client often closes first, as soon
# as it reads the broker's greeting: each refusal is logged, with the
# address when the broker could still read it (on loopback it may not:
# the peers below are slow enough, as remote ones are)
for mech in NULL PLAIN CURVE-BAD; do
    before=$(refusals nodes)
    "$RAW" "$NODES_EP" "$BROKER_CERT" dealer $mech 127.0.0.3 > "$T/dealer.out" 2>&1
    sed -n 's/^not ok/  # not ok/p' "$T/dealer.out"
    check "a $mech DEALER gets no answer" grep -q "0 failed" "$T/dealer.out"
    check "  ... and the broker logs its refusal" \
        wait_until 5 test "$(refusals nodes)" -gt "$before"
done

# Peers that answer as one across a network does (50 ms later), so the
# broker reads each address before the refusal: the address and reason
"$RAW" "$NODES_EP" "$BROKER_CERT" zmtp NULL 127.0.0.5 1 > "$T/zmtp.out" 2>&1
"$RAW" "$NODES_EP" "$BROKER_CERT" zmtp PLAIN 127.0.0.6 1 >> "$T/zmtp.out" 2>&1
"$RAW" "$NODES_EP" "$BROKER_CERT" zmtp CURVE-BAD 127.0.0.7 1 >> "$T/zmtp.out" 2>&1
sed -n 's/^not ok/  # not ok/p' "$T/zmtp.out"
check "NULL, PLAIN and bad CURVE peers are answered CURVE and closed" test "$(grep -c '0 failed' "$T/zmtp.out")" = 3
check "the broker logs the NULL peer's address and why it was refused" \
    wait_until 5 grep -q "refused a connection on nodes from 127.0.0.5: not a CURVE client (mechanism mismatch" "$T/broker.log"
check "  ... the PLAIN peer's" \
    wait_until 5 grep -q "refused a connection on nodes from 127.0.0.6: not a CURVE client (mechanism mismatch" "$T/broker.log"
check "  ... and the bad CURVE peer's" \
    wait_until 5 grep -q "refused a connection on nodes from 127.0.0.7: its CURVE handshake failed" "$T/broker.log"

# The workers' socket: a key with no certificate in the worker keys
"$RAW" "$WORKERS_EP" "$BROKER_CERT" dealer CURVE 127.0.0.8 > "$T/worker.out" 2>&1
check "an unlisted worker key gets no answer" grep -q "0 failed" "$T/worker.out"
check "  ... and the broker logs its address and key" \
    wait_until 5 grep -q "refused worker key .* (a connection on workers from 127.0.0.8): no certificate" "$T/broker.log"
"$RAW" "$WORKERS_EP" "$BROKER_CERT" zmtp NULL 127.0.0.9 1 > "$T/zmtp.out" 2>&1
check "a NULL peer on the workers' socket is refused and logged" \
    wait_until 5 grep -q "refused a connection on workers from 127.0.0.9: not a CURVE client" "$T/broker.log"

# A flood: 30 refusals at once (under the 32 connections one address may
# hold) are logged as at most 10 lines a second and a count of the rest
"$RAW" "$NODES_EP" "$BROKER_CERT" zmtp NULL 127.0.0.10 30 > "$T/flood.out" 2>&1
check "30 NULL peers at once are all refused" grep -q "0 failed" "$T/flood.out"
wait_until 5 grep -q "more refused connections not logged" "$T/broker.log"
lines=$(grep -c "from 127.0.0.10:" "$T/broker.log")
check "  ... in at most 20 log lines (10 a second; got $lines)" test "$lines" -le 20
check "  ... and a count of those not logged" grep -q "more refused connections not logged in the last second" "$T/broker.log"
check "the broker still serves a CURVE client" bash -c \
    "'$RAW' '$NODES_EP' '$BROKER_CERT' sources 1 127.0.0.11 1 | grep -q '0 failed'"
finish
