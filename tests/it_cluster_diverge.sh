#!/usr/bin/env bash
# An old owner back after a failover, with entries nobody acked at the
# seqs its successor wrote others at (issue 12, SPEC 5.37 REPL prevEpoch,
# 10.19). Two brokers, A and B; a shard S that A owns and B follows:
#   - B is killed (-9); A takes a REGISTER of OLD for S: committed to A's
#     log, acknowledged to nobody, for B is still in S's in-sync set and a
#     long repl_timeout keeps it there; then A is killed (-9);
#   - B comes back, takes S over (it was in sync) and takes REGISTERs of
#     NEW1 and NEW2 for S, acknowledged: the seqs of its entries cover
#     OLD's in A's log, and go past them;
#   - A comes back and follows S. Its log has OLD's entries where B's has
#     NEW1's: applying B's entries after its own head would mix both. A
#     REPL's prevEpoch, the epoch of the owner's entry before its first,
#     tells A it diverged; B sends it a copy of S, A joins S's in-sync set
#     and takes S back by hand-off (it is S's wanted owner).
# Then A must serve B's data, not its own unacknowledged entry: NEW1 and
# NEW2 log in on A, OLD does not exist. Before prevEpoch, A applied B's
# entries after its own head: it kept OLD and lost NEW1 ("OLD does not
# exist on A" and "NEW1 logs in on A" failed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd.sh"
. "$(dirname "$0")/cluster.sh"

# A must not take B out of S's in-sync set while it holds OLD's REGISTER:
# it would at B's lease end, or for B's silence past repl_timeout. So a
# repl_timeout of 6 s, and B starts with a lease of 6 s (it comes back
# with the others' 3 s, once that lease has ended): A is killed well
# within both
SHARDS=8 TTL=3 REPL_MS=6000
cluster_start 1
MEMBERS=2
mkdir -p "$T/b2" && cp "$T/b1/broker.cert" "$T/b1/broker.cert_secret" "$T/b2/"
TTL=6 start_member 2
BROKER_CERT="$T/b1/broker.cert"
A=$(cat "$T/b1/broker.id") B=$(cat "$T/b2/broker.id")
check "every shard has an owner and an in-sync follower" wait_until 20 all_in_sync
# ... and each is owned by its wanted owner (the hand-offs from A, which
# took every shard first, are over): S is one of A's, which it takes back
# by hand-off when it is in sync again
want_placement "$A" "$B"
check "  ... its wanted owner" wait_until 30 placed
wanted_shard_accounts "$A" 4
ONE=${NAMES[0]} OLD=${NAMES[1]} NEW1=${NAMES[2]} NEW2=${NAMES[3]}
echo "  # shard $S: owner A ($A), follower B ($B); accounts $ONE, then OLD $OLD, NEW1 $NEW1, NEW2 $NEW2"
head_of () { jq -r --argjson s "$S" '.map[] | select (.shard == $s) | .head' "$T/b$1/cluster.json" 2>/dev/null; }
role_of () { jq -r --argjson s "$S" '.map[] | select (.shard == $s) | .role' "$T/b$1/cluster.json" 2>/dev/null; }

# A takes a write both have, then one nobody acknowledges
NODES_EP=${EP[1]} start_node o "$DEVICES/galaxy-s21.json"
check "A and B acknowledge $ONE's REGISTER" bash -c "'$CLI' --home '$T/o' register $ONE > /dev/null"
wait_until 3 bash -c "[ \"\$(jq -r --argjson s $S '.map[] | select (.shard == \$s) | .head' '$T/b1/cluster.json')\" \
    -gt 0 ]"
H0=$(head_of 1)
kill -9 "${PID[2]}"; wait "${PID[2]}" 2>/dev/null
timeout 3 "$CLI" --home "$T/o" register "$OLD" > "$T/old.out" 2>&1 &
REG=$!
check "A commits OLD's REGISTER to its log (head past $H0)" wait_until 3 bash -c "[ \"\$(jq -r --argjson s $S \
    '.map[] | select (.shard == \$s) | .head' '$T/b1/cluster.json')\" -gt $H0 ]"
HA=$(head_of 1)
check "  ... and does not acknowledge it: its follower B is away, and in S's in-sync set" \
    bash -c "! grep -q . '$T/old.out'"
kill -9 "${PID[1]}" "$(node_pid o)"; wait "${PID[1]}" 2>/dev/null
wait "$REG" 2>/dev/null

# B comes back (once its first lease has ended: etcd no longer lists it),
# takes S over and takes other writes at the same seqs
gone () { test -z "$(etcdctl_at "$E" get --keys-only "/appferry/brokers/$1")"; }
wait_until 10 gone "$B" || die "B's first lease did not end"
start_member 2
check "B takes S over" wait_until 15 bash -c "test \"\$(ETCDCTL_API=3 '$ETCDCTL' --endpoints='$E' get \
    --print-value-only /appferry/shards/$(printf %04d "$S")/owner)\" = '$B'"
NODES_EP=${EP[2]} start_node n "$DEVICES/galaxy-s21.json"
check "B acknowledges NEW1's and NEW2's REGISTERs" \
    bash -c "'$CLI' --home '$T/n' register $NEW1 > /dev/null && '$CLI' --home '$T/n' register $NEW2 > /dev/null"
stop_node n
wait_until 3 bash -c "[ \"\$(jq -r --argjson s $S '.map[] | select (.shard == \$s) | .head' '$T/b2/cluster.json')\" \
    -ge $HA ]"
HB2=$(head_of 2)
echo "  # S's log: $H0 entries in common; A's head $HA (OLD, unacknowledged), B's $HB2 (NEW1, NEW2)"
check "  ... at seqs that cover A's unacknowledged ones ($H0 < $HA <= $HB2)" \
    test "$H0" -lt "$HA" -a "$HA" -le "${HB2:-0}"

# A comes back: it must end with B's log, not its own
start_member 1
check "A takes S back by hand-off, once in its in-sync set" wait_until 25 bash -c "test \"\$(ETCDCTL_API=3 \
    '$ETCDCTL' --endpoints='$E' get --print-value-only /appferry/shards/$(printf %04d "$S")/owner)\" = '$A'"
check "  ... after B found A's log diverged and sent it a copy of S" \
    grep -q "sending $A a copy of shard $S " "$T/b2.log"
# (etcd names A first; its reactor serves S once its coordinator told it)
owns () { test "$(role_of 1)" = owner; }
wait_until 5 owns || echo "  # A's reactor does not own S yet"
for account in "$ONE" "$NEW1" "$NEW2"; do
    "$RAW" "${EP[1]}" "$BROKER_CERT" login "$account" "$APPFERRY_PASSWORD" LOGIN_OK > "$T/login.out" 2>&1
    check "$account (acknowledged) logs in on A" grep -q "0 failed" "$T/login.out"
done
"$RAW" "${EP[1]}" "$BROKER_CERT" login "$OLD" "$APPFERRY_PASSWORD" 404 > "$T/login.out" 2>&1
check "$OLD (A's own entry, acknowledged to nobody) does not exist on A" grep -q "0 failed" "$T/login.out"
sed -n 's/^\(not \)*ok - /  # /p' "$T/login.out"
finish
