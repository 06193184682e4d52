#!/usr/bin/env bash
# An owner sends a batch's entries to its followers before its own commit
# (so both commits run side by side, issue 12's replication cost); when
# that commit fails, a follower may hold entries the owner does not, and
# the owner's next batch writes others at the same seqs under the same
# epoch, which no prevEpoch check can tell apart. The owner must count
# that follower for nothing until a copy of the shard has replaced what
# it holds. Two brokers, A and B; a shard S that A owns and B follows:
#   - ONE registers (both have it); B is stopped (SIGSTOP);
#   - A's commits fail (AF_STORE_FAIL_COMMIT): BAD's REGISTER is
#     answered E_INTERNAL, its entries already on their way to B;
#   - the disk is well again: NEW1 and NEW2 register on A, their entries
#     at the seqs BAD's had, and wait for B;
#   - B continues: it applies BAD's entries and acks them.
# Then A must take B out of S's in-sync set, answer NEW1 and NEW2 without
# it, send it a copy of S, and only then have it back in the set; B, made
# S's owner by A's kill -9, must serve NEW1 and NEW2 and not BAD.
# Without the copy, A took B's ack of BAD's seqs as an ack of NEW1's,
# and NEW1 was lost with A.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd.sh"
. "$(dirname "$0")/cluster.sh"

# B is stopped well within its lease (6 s) and repl_timeout (6 s): A keeps
# it in S's in-sync set meanwhile, and waits for it
SHARDS=8 TTL=3 REPL_MS=6000
FAIL="$T/fail-commits"
MEMBERS=0
start_etcd e1
E=$ETCD_ENDPOINT
AF_STORE_FAIL_COMMIT=$FAIL start_member 1
MEMBERS=2
mkdir -p "$T/b2" && cp "$T/b1/broker.cert" "$T/b1/broker.cert_secret" "$T/b2/"
TTL=6 start_member 2
BROKER_CERT="$T/b1/broker.cert"
A=$(cat "$T/b1/broker.id") B=$(cat "$T/b2/broker.id")
want_placement "$A" "$B"
check "every shard is owned by its wanted owner and has an in-sync follower" wait_until 30 placed
wanted_shard_accounts "$A" 4
ONE=${NAMES[0]} BAD=${NAMES[1]} NEW1=${NAMES[2]} NEW2=${NAMES[3]}
echo "  # shard $S: owner A ($A), follower B ($B); $ONE, then BAD $BAD, NEW1 $NEW1, NEW2 $NEW2"

NODES_EP=${EP[1]} start_node o "$DEVICES/galaxy-s21.json"
check "A and B acknowledge $ONE's REGISTER" bash -c "'$CLI' --home '$T/o' register $ONE > /dev/null"

kill -STOP "${PID[2]}"
touch "$FAIL"
out=$(timeout 5 "$CLI" --home "$T/o" register "$BAD" 2>&1)
check "A's commit fails: BAD's REGISTER is answered E_INTERNAL" has "$out" "E_INTERNAL"
rm -f "$FAIL"
check "  ... and A says B had its entries sent before the commit" \
    grep -q "$B was sent entries of shard $S whose commit failed" "$T/b1.log"
timeout 20 "$CLI" --home "$T/o" register "$NEW1" > "$T/new1.out" 2>&1 &
R1=$!
sleep 0.5
timeout 20 "$CLI" --home "$T/o" register "$NEW2" > "$T/new2.out" 2>&1 &
R2=$!
sleep 1
check "NEW1 and NEW2 wait for B, which is in S's in-sync set" bash -c "! grep -q . '$T/new1.out' '$T/new2.out'"
kill -CONT "${PID[2]}"
wait "$R1"; rc1=$?
wait "$R2"; rc2=$?
check "once B continues, A takes it out of S's in-sync set and acknowledges NEW1 and NEW2" \
    test "$rc1" -eq 0 -a "$rc2" -eq 0
check "  ... B gets a copy of S" wait_until 15 grep -q "sending $B a copy of shard $S " "$T/b1.log"
check "  ... and is in sync again" wait_until 20 all_in_sync

# A dies: B takes S over with what it has
stop_node o
kill -9 "${PID[1]}"; wait "${PID[1]}" 2>/dev/null
check "B takes S over" wait_until 15 bash -c "test \"\$(ETCDCTL_API=3 '$ETCDCTL' --endpoints='$E' get \
    --print-value-only /appferry/shards/$(printf %04d "$S")/owner)\" = '$B'"
role_of () { jq -r --argjson s "$S" '.map[] | select (.shard == $s) | .role' "$T/b$1/cluster.json" 2>/dev/null; }
owns () { test "$(role_of 2)" = owner; }
wait_until 5 owns || echo "  # B's reactor does not own S yet"
for account in "$ONE" "$NEW1" "$NEW2"; do
    "$RAW" "${EP[2]}" "$BROKER_CERT" login "$account" "$APPFERRY_PASSWORD" LOGIN_OK > "$T/login.out" 2>&1
    check "$account (acknowledged) logs in on B" grep -q "0 failed" "$T/login.out"
done
"$RAW" "${EP[2]}" "$BROKER_CERT" login "$BAD" "$APPFERRY_PASSWORD" 404 > "$T/login.out" 2>&1
check "$BAD (its commit failed on A) does not exist on B" grep -q "0 failed" "$T/login.out"
finish
