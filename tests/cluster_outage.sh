#!/usr/bin/env bash
# How a cluster settles after an etcd outage (issue 12), measured, not a
# test: three brokers and an etcd as tests/it_cluster.sh has them (16
# shards, 3 s leases); once the shards stay where they are, etcd is
# frozen (SIGSTOP) past the leases and continued. Every lease ended with
# it, so every shard is claimed anew; the script counts the changes of
# owner keys etcd makes from then on (claims and releases) and the time
# until the last one, and says whether every shard ends on its wanted
# owner with an in-sync follower.
#
#   AF_BIN=$PWD/build AF_SRC=$PWD bash tests/cluster_outage.sh [ROUNDS]
#
# ROUNDS (default 1) outages one after the other; one line per round:
#   outage N: M owner changes (C claims, R releases), settled after S s
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd.sh"
. "$(dirname "$0")/cluster.sh"

ROUNDS=${1:-1} QUIET=${AF_OUTAGE_QUIET:-6}
SHARDS=${SHARDS:-16} TTL=${TTL:-3}
cluster_start 3
wait_until 20 all_owned || die "not every shard got an owner"
settled () { owners > "$T/o.1"; sleep 3; owners > "$T/o.2"; cmp -s "$T/o.1" "$T/o.2" && all_in_sync; }
wait_until 60 settled || die "the shards did not settle before the outage"

# Every event on the shards' keys, each line stamped with the time (ms)
ETCDCTL_API=3 "$ETCDCTL" --endpoints="$E" watch --prefix /appferry/shards/ 2>/dev/null \
    | while IFS= read -r line; do echo "$(date +%s%3N) $line"; done > "$T/watch.log" &
PIDS+=($!)
sleep 0.5

for round in $(seq 1 "$ROUNDS"); do
    owners > "$T/before.$round"
    kill -STOP "$ETCD_PID_e1"
    sleep $((TTL + 1))
    : > "$T/watch.log"
    kill -CONT "$ETCD_PID_e1"
    t0=$(date +%s%3N)
    # Settled: no owner key changed for QUIET s, every shard owned
    quiet () {
        local last; last=$(grep -a -E '^[0-9]+ /appferry/shards/[0-9]+/owner$' "$T/watch.log" | tail -1 | cut -d' ' -f1)
        [ -n "$last" ] && [ $(( $(date +%s%3N) - last )) -ge $((QUIET * 1000)) ] && all_owned
    }
    wait_until 120 quiet || echo "  # round $round: not settled within 120 s"
    # A PUT line, then the key; a DELETE line, then the key
    puts=$(grep -a -B1 -E '^[0-9]+ /appferry/shards/[0-9]+/owner$' "$T/watch.log" | grep -ac ' PUT$')
    dels=$(grep -a -B1 -E '^[0-9]+ /appferry/shards/[0-9]+/owner$' "$T/watch.log" | grep -ac ' DELETE$')
    last=$(grep -a -E '^[0-9]+ /appferry/shards/[0-9]+/owner$' "$T/watch.log" | tail -1 | cut -d' ' -f1)
    most=$(grep -a -B1 -E '^[0-9]+ /appferry/shards/[0-9]+/owner$' "$T/watch.log" | grep -a -A1 ' PUT$' \
        | sed -nE 's|^[0-9]+ /appferry/shards/([0-9]+)/owner$|\1|p' | sort | uniq -c | sort -rn | head -1 | awk '{print $1}')
    printf 'outage %d: %d owner changes (%d claims, %d deletes; at most %s claims of one shard), settled after %d.%01d s%s\n' \
        "$round" $((puts + dels)) "$puts" "$dels" "${most:-0}" $(( (last - t0) / 1000 )) $(( (last - t0) % 1000 / 100 )) \
        "$(all_in_sync && echo ", every shard in sync" || echo ", NOT every shard in sync")"
    all_in_sync || "$BROKER" --cluster-status -d "$T/b1" "$T/b2" "$T/b3" | sed 's/^/  # /'
    wait_until 30 settled
done
finish
