# tests/cluster_bench.sh - the cluster's benchmarks (bench/README.md "The
# cluster"), sourced by it_cluster_fleet.sh when AF_CLUSTER_BENCH is set:
#
#   AF_CLUSTER_BENCH=1 AF_BIN=$PWD/build AF_SRC=$PWD bash tests/it_cluster_fleet.sh
#
# 1. Replication's cost: bench_repl (durable REPORTs/s through one broker
#    alone and through a cluster of two, one follower per shard,
#    alternating rounds) on an etcd of its own, with 16 and 64 devices
#    (AF_CLUSTER_REPL_DEVICES: other counts; empty: this part is skipped).
# 2. AF_CLUSTER_DEVICES devices (10,000) on three brokers (the defaults
#    of a real cluster: 256 shards, a 5 s lease, repl_timeout 3 s; set
#    AF_CLUSTER_SHARDS, AF_CLUSTER_TTL, AF_CLUSTER_REPL_MS): how long until every device has
#    logged in with its password at its shard's owner (REDIRECT) and sent
#    its list; the brokers' resident memory per idle device (VmRSS, all
#    three against theirs before any device); then reports and
#    notifications at AF_CLUSTER_RATE (200) a second, a kill -9 of the
#    owner of the most shards, and the failover: until its shards are
#    owned again (etcd), and until every device that lost its session is
#    back on a new owner (the fleets' "moved back", from a SIGUSR2 sent
#    with the kill); the restarted broker joins again; the fleets drain
#    and check: lost, duplicated. etcd's revision before and after counts
#    its writes.
#
# Every figure line starts with "  # "; the load average goes with them
# (other work on the machine's cores moves every figure).
NB=${AF_CLUSTER_DEVICES:-10000}
HBB=${AF_FLEET_HEARTBEAT:-1000}
SHARDS=${AF_CLUSTER_SHARDS:-256} TTL=${AF_CLUSTER_TTL:-5} REPL_MS=${AF_CLUSTER_REPL_MS:-3000}
RATE=${AF_CLUSTER_RATE:-200}
hard=$(ulimit -Hn)
ulimit -n "$hard"
per=$(( (hard - 64) / 2 ))
FLEETS=$(( (NB + per - 1) / per ))
EACH=$(( (NB + FLEETS - 1) / FLEETS ))
load () { cut -d' ' -f1-3 /proc/loadavg; }
rss_kib () { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
revision () { etcdctl_at "$E" get / -w json | jq -r .header.revision; }
echo "  # cluster benchmarks: $(nproc) cores, load $(load); busiest other processes:"
ps -eo pcpu,comm --sort=-pcpu | sed -n '2,6p' | sed 's/^/  #     /'

# --- 1. replication's cost, each run on a fresh etcd of its own (a new
# cluster cannot take shards an old one's in-sync sets still name)
for d in ${AF_CLUSTER_REPL_DEVICES-16 64}; do
    start_etcd repl
    "$AF_BIN/bench/bench_repl" --etcd "$ETCD_ENDPOINT" --devices $d --rounds 5 > "$T/repl-$d.log" 2>&1 \
        || not_ok "bench_repl --devices $d failed (see $T/repl-$d.log)"
    sed 's/^/  # repl: /' "$T/repl-$d.log" | tail -n 7
    echo "  # repl: load $(load)"
    stop_etcd repl
done

# --- 2. NB devices on three brokers; a kill -9 of an owner
cluster_start 3
check "every shard owned, with an in-sync follower" wait_until 60 all_in_sync
declare -a BASE
for i in 1 2 3; do BASE[$i]=$(rss_kib "${PID[$i]}"); done
rev0=$(revision)
echo "  # $NB devices on 3 brokers ($SHARDS shards, lease $TTL s) as $FLEETS fleet(s) of up to $EACH;" \
     "heartbeat $HBB ms; load $(load)"
pids=() logs=()
for f in $(seq 1 "$FLEETS"); do
    n=$EACH; [ $((f * EACH)) -gt "$NB" ] && n=$((NB - (f - 1) * EACH))
    "$FLEET" -b "$ALL" -k "$BROKER_CERT" -n "$n" --prefix "cb$f" --apps 0 --heartbeat "$HBB" --jitter 2000 \
        --hold 15 --duration 3600 --rate $((RATE / FLEETS)) --mix report=70,notify=30 --drain 120 --setup 900 \
        --report-every 10000 > "$T/fleet-$f.log" 2>&1 &
    pids+=($!); logs+=("$T/fleet-$f.log"); PIDS+=($!)
done
start=$SECONDS
for log in "${logs[@]}"; do
    wait_until 900 grep -q "^fleet: setup:" "$log" || die "the fleet did not log in: $log"
done
took=$(for log in "${logs[@]}"; do grep -m1 "^fleet: setup:" "$log"; done | sed -E 's/.* in ([0-9.]+) s .*/\1/' \
    | sort -n | tail -1)
in=$(for log in "${logs[@]}"; do grep -m1 "^fleet: setup:" "$log"; done | awk '{ s += $3 } END { print s }')
echo "  # logins: $in of $NB devices logged in with the password at their shards' owners and sent their lists" \
     "in $took s ($(awk -v n="$in" -v t="$took" 'BEGIN { printf "%.0f", n / t }') logins/s); load $(load)"
sleep 5                                     # idle: in the fleets' --hold
rss=0
for i in 1 2 3; do
    r=$(rss_kib "${PID[$i]}"); rss=$((rss + r - BASE[$i]))
    echo "  # memory: broker $i: $((BASE[$i] / 1024)) MiB before, $((r / 1024)) MiB with the devices" \
         "($(grep -c . <(owned_by "$(cat "$T/b$i/broker.id")")) shards)"
done
echo "  # memory: $(awk -v r="$rss" -v n="$in" 'BEGIN { printf "%.1f", r / n }') KiB per idle device" \
     "(the three brokers' growth over $in devices)"
for log in "${logs[@]}"; do wait_until 60 grep -q "^fleet: run:" "$log"; done
sleep 5                                     # reports and notifications flowing

V=$(for i in 1 2 3; do echo "$(owned_by "$(cat "$T/b$i/broker.id")" | wc -l) $i"; done | sort -rn | head -1 | cut -d' ' -f2)
OLD=$(cat "$T/b$V/broker.id"); LOST=$(owned_by "$OLD" | paste -sd' ')
kill -9 "${PID[$V]}"; for p in "${pids[@]}"; do kill -USR2 "$p"; done
t0=$(date +%s.%N)
wait "${PID[$V]}" 2>/dev/null
# every shard of LOST owned, by another: one etcdctl call a poll
taken () { owners | awk -v lost=" $LOST " -v old="$OLD" 'index(lost, " " $1 " ") && $2 != old { n++ }
    END { exit !(n == split(lost, a, " ")) }'; }
wait_until 60 taken || not_ok "the killed broker's shards were not all taken"
t1=$(date +%s.%N)
echo "  # failover: broker $V killed, owner of $(echo "$LOST" | wc -w) shards; all owned again" \
     "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s after the kill"
for log in "${logs[@]}"; do
    wait_until 120 grep -q "^fleet: moved back:" "$log" || not_ok "not every device came back: $log"
done
back=$(for log in "${logs[@]}"; do grep -m1 "^fleet: moved back:" "$log"; done | sed -E 's/.* again ([0-9.]+) s .*/\1/' \
    | sort -n | tail -1)
moved=$(for log in "${logs[@]}"; do grep -m1 "^fleet: moved back:" "$log"; done | awk '{ s += $4 } END { print s }')
for log in "${logs[@]}"; do
    echo "  # $(basename "$log" .log): $(grep -m1 "^fleet: moved back:" "$log" | sed 's/^fleet: moved back: //')"
done
echo "  # failover: $moved sessions lost; every device back on a new owner within ${back:-?} s of the kill" \
     "(target: lease $TTL s + 3 s); load $(load)"
check "every device is back within the lease and 3 s (${back:-?} s)" \
    awk -v b="${back:-999}" -v t=$((TTL + 3)) 'BEGIN { exit !(b <= t) }'
start_member "$V"
joined () { etcdctl_at "$E" get --prefix --keys-only /appferry/shards/ | grep -q "isr/$OLD"; }
check "the restarted broker joins in-sync sets again" wait_until 60 joined

sleep 5
rc=0
for p in "${pids[@]}"; do kill -INT "$p"; done
for p in "${pids[@]}"; do wait "$p" || rc=1; done
rev1=$(revision)
for log in "${logs[@]}"; do
    echo "  # $(basename "$log" .log): $(grep -m1 -E '^[0-9]+ acked' "$log"); $(grep -m1 '^fleet: cluster:' "$log" \
        | sed -E 's/^fleet: cluster: ([^;]*);.*/\1/')"
done
echo "  # etcd: $((rev1 - rev0)) writes (revisions) in $((SECONDS - start)) s with $NB devices" \
     "($(awk -v w=$((rev1 - rev0)) -v t=$((SECONDS - start)) 'BEGIN { printf "%.1f", w / t }')/s: claims, in-sync" \
     "changes, hand-offs, registrations; leases kept alive are not writes)"
check "every fleet passed: 0 lost, 0 duplicated, every device checked" test "$rc" -eq 0
echo "  # load at the end $(load)"
finish
