#!/usr/bin/env bash
# A follower that has been level with its owner, and so has had nothing to
# ack for longer than repl_timeout, must get repl_timeout from the next
# REPL on, not be taken out of the in-sync set at once. The owner counted
# a follower's silence from its last ack; a quiet shard's next write found
# that ack older than repl_timeout, and the first tick (100 ms) before the
# follower's ack was back took it out of the set: under load, often (the
# "live followers miss repl_timeout" of issue 12's notes), each time an
# etcd write and a batch held meanwhile. Two brokers, A and B; a shard S
# that A owns and B follows:
#   - ONE registers (both have it), then S is quiet for longer than
#     repl_timeout;
#   - B is stopped (SIGSTOP) well within repl_timeout, TWO registers, and
#     B continues.
# TWO must be acknowledged, and A must never have taken B out of S's set.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd.sh"
. "$(dirname "$0")/cluster.sh"

SHARDS=8 TTL=6 REPL_MS=1500
cluster_start 2
A=$(cat "$T/b1/broker.id") B=$(cat "$T/b2/broker.id")
want_placement "$A" "$B"
check "every shard is owned by its wanted owner and has an in-sync follower" wait_until 30 placed
wanted_shard_accounts "$A" 2
ONE=${NAMES[0]} TWO=${NAMES[1]}
echo "  # shard $S: owner A ($A), follower B ($B); $ONE, then $TWO"

NODES_EP=${EP[1]} start_node o "$DEVICES/galaxy-s21.json"
check "A and B acknowledge $ONE's REGISTER" bash -c "'$CLI' --home '$T/o' register $ONE > /dev/null"
sleep 2.5                               # S quiet for longer than repl_timeout
kill -STOP "${PID[2]}"
timeout 20 "$CLI" --home "$T/o" register "$TWO" > "$T/two.out" 2>&1 &
R=$!
sleep 0.7                               # several of A's ticks, within repl_timeout
kill -CONT "${PID[2]}"
wait "$R"; rc=$?
check "once B continues, A acknowledges $TWO's REGISTER" test "$rc" -eq 0
check "  ... and never took B out of shard $S's in-sync set" \
    bash -c "! grep -E '$B has not acked shard $S |$B left the in-sync set of shard $S\$' '$T/b1.log'"
stop_node o
finish
