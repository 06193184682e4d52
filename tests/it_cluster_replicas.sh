#!/usr/bin/env bash
# Two followers per shard (issue 12, cluster/replicas = 2): three brokers,
# so every shard has its owner and both others in its in-sync set, and a
# batch is acknowledged once both have it. A drain is refused (two others
# would stay, and every shard needs three). Under a fleet's reports one
# owner is killed with -9: each of its shards is taken over by one of its
# two in-sync followers, whose log may be behind or ahead of the other's
# (what the dead owner had sent each of them when it died); the other
# follows the new owner, from the log when its log agrees (REPL
# prevEpoch), from a copy of the shard when it has entries the new owner
# does not. Nothing acknowledged is lost: every acked report is
# delivered, and every device's install list on the brokers is the
# device's own. The killed broker comes back, and every shard has two
# in-sync followers again. Before replicas 2 was built, a broker
# configured so refused to start.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd.sh"
. "$(dirname "$0")/cluster.sh"
FLEET="$AF_BIN/fleet/appferry-fleet"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=16"

MEMBER_OPTS=(--heartbeat 1000 --pw-per-source 1000000 --max-per-source 1000000)
SHARDS=16 TTL=3 CLUSTER_CFG=$'    replicas = 2\n'
cluster_start 3
# in_sync_by N: every shard's in-sync set holds N brokers besides its owner
in_sync_by () {
    test "$(etcdctl_at "$E" get --prefix /appferry/shards/ | paste - - | awk -F'\t' -v n="$1" '
        { split ($1, k, "/"); s = k [4] }
        k [5] == "owner" { owner [s] = $2 }
        k [5] == "isr" { isr [s] = isr [s] " " k [6] }
        END { for (s in owner) { c = 0; m = split (isr [s], ids, " ")
                  for (i = 1; i <= m; i++) c += ids [i] != owner [s]
                  ok += c >= n }
              print ok + 0 }')" -eq "$SHARDS"
}
check "every shard has an owner and two in-sync followers" wait_until 25 in_sync_by 2

out=$("$BROKER" --drain -d "$T/b3" 2>&1); rc=$?
check "a drain is refused: two brokers would stay, and every shard needs an owner and two followers" \
    has "$rc:$out" "1:" "2 other brokers would stay, and every shard needs 3"

if "$FLEET" --version | grep -q AddressSanitizer; then N=${AF_FLEET_DEVICES:-100}; else N=${AF_FLEET_DEVICES:-200}; fi
"$FLEET" -b "$ALL" -k "$BROKER_CERT" -n "$N" --apps 10 --programs 100 --mix report=1 \
    --duration 14 --rate 100 --heartbeat 1000 --jitter 1000 --report-every 2000 --drain 30 > "$T/fleet.log" 2>&1 &
FLEET_PID=$!
PIDS+=("$FLEET_PID")
wait_until 40 grep -q "^fleet: run:" "$T/fleet.log" || die "the fleet did not log in within 40 s"
echo "  # $(fleet_line "$T/fleet.log" '^fleet: setup:')"
sleep 3

# kill -9 of the broker that owns the most shards, under the reports
V=$(for i in 1 2 3; do echo "$(owned_by "$(cat "$T/b$i/broker.id")" | wc -l) $i"; done | sort -rn | head -1 | cut -d' ' -f2)
VID=$(cat "$T/b$V/broker.id")
LOST=$(owned_by "$VID" | paste -sd' ')
kill -9 "${PID[$V]}"; kill -USR2 "$FLEET_PID"
wait "${PID[$V]}" 2>/dev/null
echo "  # killed broker $V ($VID), owner of shards $LOST"
none_by_dead () { all_owned && test -z "$(owned_by "$VID")"; }
check "its shards are taken over by their in-sync followers" wait_until $((TTL + 6)) none_by_dead
check "  ... and each has the third broker in its in-sync set" wait_until 10 in_sync_by 1

wait "$FLEET_PID"; rc=$?
sed -n -E '/^fleet: (cluster|moved|unexpected|lost|duplicated|FAILED|online|install)/p; /^[0-9]+ acked/p' \
    "$T/fleet.log" | head -n 20 | sed 's/^/  # /'
check "the fleet passed (exit status $rc)" test "$rc" -eq 0
fleet_checks "$T/fleet.log" "$N" $((N * 3))

start_member "$V"
check "the killed broker back, every shard has two in-sync followers again" wait_until 20 in_sync_by 2
echo "  # $(cat "$T"/b*.log | grep -c 'sending .* a copy of shard') copies sent, $(cat "$T"/b*.log \
    | grep -c 'has other entries than ours') of them for a log that diverged"
finish
