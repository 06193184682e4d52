#!/usr/bin/env bash
# The cluster under a simulated fleet (issue 12): three brokers, one etcd
# and a matcher per broker on loopback; a fleet of a couple of thousand
# devices in accounts of 1-8, given all three endpoints, lands on its
# shards' owners by REDIRECT, reports, syncs, notifies and pushes; a
# follower stopped for a moment leaves in-sync sets and joins them again
# under the writes; one owner is killed with SIGKILL in the middle, its in-sync followers take
# its shards, and every device it had is back on a new owner; the killed
# broker restarts and joins the in-sync sets again (and takes its wanted
# shards back by hand-off, moving their devices once more). At the end
# every acknowledged report and offer is there: "0 lost, 0 duplicated".
#
# Size: AF_FLEET_DEVICES (default 2000; 600 under AddressSanitizer).
# AF_CLUSTER_BENCH=1 runs the benchmarks of bench/README.md "The cluster"
# instead (tests/cluster_bench.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd.sh"
. "$(dirname "$0")/cluster.sh"
. "$(dirname "$0")/fleet_catalog.sh"
FLEET="$AF_BIN/fleet/appferry-fleet"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=16"

fleet_catalog "$T/catalog"
# As a fleet needs them (README "The simulated fleet"): heartbeats of a
# second, password work from one address unlimited
MEMBER_OPTS=(--catalog "$T/catalog" --heartbeat 1000 --pw-per-source 1000000 --max-per-source 1000000)
SHARDS=${AF_CLUSTER_SHARDS:-32} TTL=${AF_CLUSTER_TTL:-3}

if [ -n "${AF_CLUSTER_BENCH:-}" ]; then
    . "$(dirname "$0")/cluster_bench.sh"
    exit $?
fi

cluster_start 3
for i in 1 2 3; do start_matcher_at $i m$i "$T/catalog" --heartbeat 1000; done
owned_spread () { all_owned && spread; }
check "every shard gets an owner, the three brokers own some" wait_until 20 owned_spread
check "  ... and an in-sync follower" wait_until 20 all_in_sync

if "$FLEET" --version | grep -q AddressSanitizer; then N=${AF_FLEET_DEVICES:-600}; else N=${AF_FLEET_DEVICES:-2000}; fi
RATE=$((N / 5))
"$FLEET" -b "$ALL" -k "$BROKER_CERT" -n "$N" --push "$PUSH" --apps 20 --programs 300 \
    --duration 18 --rate "$RATE" --heartbeat 1000 --jitter 1000 --auto-sync \
    --report-every 2000 --drain 40 > "$T/fleet.log" 2>&1 &
FLEET_PID=$!
PIDS+=("$FLEET_PID")
wait_until 60 grep -q "^fleet: run:" "$T/fleet.log" || die "the fleet did not log in within 60 s"
echo "  # $(fleet_line "$T/fleet.log" '^fleet: setup:')"

# Mid-run, a follower stopped past repl_timeout falls out of in-sync sets;
# continued, it joins them all again while the writes go on (a follower
# is never level with a busy owner's head when its ack comes: it joins
# by first being waited for)
V=$(for i in 1 2 3; do echo "$(owned_by "$(cat "$T/b$i/broker.id")" | wc -l) $i"; done | sort -rn | head -1 | cut -d' ' -f2)
F=$(( V % 3 + 1 )); FID=$(cat "$T/b$F/broker.id")
sleep 1
kill -STOP "${PID[$F]}"; sleep 1.5; kill -CONT "${PID[$F]}"
check "a follower stopped for 1.5 s leaves in-sync sets" \
    wait_until 5 grep -q "$FID has not acked shard .* removing it" "$T/b1.log" "$T/b2.log" "$T/b3.log"
check "  ... and joins every one again while the fleet writes" wait_until 10 all_in_sync
all_in_sync || "$BROKER" --cluster-status -d "$T/b1" "$T/b2" "$T/b3" | grep -v "in-sync$" | head -20

# Then kill -9 of the broker owning the most shards
OLD=$(cat "$T/b$V/broker.id")
LOST=$(owned_by "$OLD" | paste -sd' ')
kill -9 "${PID[$V]}"; kill -USR2 "$FLEET_PID"; t0=$SECONDS
wait "${PID[$V]}" 2>/dev/null
echo "  # killed broker $V ($OLD), owner of shards $LOST"
taken () { owners | awk -v lost=" $LOST " -v old="$OLD" 'index(lost, " " $1 " ") && $2 != old { n++ }
    END { exit !(n == split(lost, a, " ")) }'; }
check "its followers take its $(echo "$LOST" | wc -w) shards within the lease ($TTL s) and 3 s" \
    wait_until $((TTL + 3)) taken
echo "  # shards taken $((SECONDS - t0)) s after the kill"
check "every device it had is back, on the new owners" wait_until 30 grep -q "^fleet: moved back:" "$T/fleet.log"
echo "  # $(fleet_line "$T/fleet.log" '^fleet: moved back:')"

# The killed broker restarts on its store and joins the in-sync sets
start_member "$V"
start_matcher_at "$V" "m$V-again" "$T/catalog" --heartbeat 1000
joined () { etcdctl_at "$E" get --prefix --keys-only /appferry/shards/ | grep -q "isr/$OLD"; }
check "the restarted broker joins in-sync sets again" wait_until 20 joined

wait "$FLEET_PID"; rc=$?
sed -n -E '/^fleet: (cluster|moved|unexpected|lost|duplicated|FAILED|online)/p; /^[0-9]+ acked/p' "$T/fleet.log" \
    | head -n 30 | sed 's/^/  # /'
redirected=$(fleet_line "$T/fleet.log" '^fleet: cluster:' | sed -E 's/.*\(([0-9]+) followed.*/\1/')
check "the fleet passed (exit status $rc)" test "$rc" -eq 0
check "every one of the $N devices logged in and sent its list" \
    has "$(fleet_line "$T/fleet.log" '^fleet: setup:')" "$N of $N devices logged in"
check "devices landed on their shards' owners by REDIRECT (${redirected:-0} followed)" \
    test "${redirected:-0}" -ge $((N / 3))
check "every device is online at the end" grep -q "^fleet: online at the end: $N of $N devices (0 failed)" "$T/fleet.log"
fleet_checks "$T/fleet.log" "$N" $((N / 2))
pushes=$(fleet_line "$T/fleet.log" '^fleet: pushes:')
check "pushes installed packages on their targets" bash -c "[[ '$pushes' =~ \ ([1-9][0-9]*)\ installed ]]"
check "no answer was unexpected" grep -q "^  [0-9]* expected, 0 unexpected" "$T/fleet.log"
finish
