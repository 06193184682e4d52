#!/usr/bin/env bash
# Connections that never authenticate (issue 9, section 4): 60 TCP
# connections from one address that greet the broker as CURVE clients and
# then send most of a handshake frame as large as a frame may be, and
# wait. The broker holds bounded memory for them (frames are at most
# AF_MAX_ZMQ_MSG, one address may hold security/max_per_source
# connections) and only for the handshake time (AF_HANDSHAKE_MS); nodes
# from other addresses are served meanwhile. Then the per-source limit
# itself, with CURVE clients that finish their handshake.
. "$(dirname "$0")/lib.sh"

export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=4"
printf 'security\n    max_per_source = 16\n' > "$T/broker.cfg"
start_broker broker --config "$T/broker.cfg"
start_node phone "$DEVICES/galaxy-s21.json"
af phone register ana > /dev/null || die "register failed"
af phone login ana > /dev/null || die "login failed"

# 60 connections from 127.0.0.2: at most 16 held, each at most ~1 MiB
"$RAW" "$NODES_EP" "$BROKER_CERT" greet 60 127.0.0.2 "$BROKER_PID" 32 12 > "$T/greet.out" 2>&1 &
greeter=$!
PIDS+=("$greeter")
sleep 2
check "a node from another address is served during the attack" \
    wait_eq 5 1 afj phone ".devices | length" devices --refresh
wait "$greeter"
grep '^#' "$T/greet.out" | sed 's/^/  /'
sed -n 's/^not ok/  # not ok/p' "$T/greet.out"
check "60 connections that never authenticate hold at most 32 MiB of the broker's memory" \
    grep -q "^ok - the broker's memory stays bounded" "$T/greet.out"
check "  ... for at most the handshake time" grep -q "^ok -   ... and it closes them" "$T/greet.out"
check "  ... and the broker says it refused the connections over the limit" \
    grep -q "refused a connection on nodes from 127.0.0.2: .*max_per_source" "$T/broker.log"

# 24 CURVE clients from 127.0.0.3: 16 are served, the others refused
"$RAW" "$NODES_EP" "$BROKER_CERT" sources 24 127.0.0.3 16 > "$T/sources.out" 2>&1
grep '^#' "$T/sources.out" | sed 's/^/  /'
sed -n 's/^not ok/  # not ok/p' "$T/sources.out"
check "one address is served for at most max_per_source connections at once" \
    grep -q "^ok - connections from one address beyond its limit" "$T/sources.out"
check "  ... and again once they closed" grep -q "^ok -   ... and once they closed" "$T/sources.out"
check "the phone is still served" wait_eq 5 1 afj phone ".devices | length" devices --refresh
finish
