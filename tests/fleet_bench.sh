# tests/fleet_bench.sh - the fleet benchmark (bench/README.md "The fleet"),
# sourced by it_fleet.sh when AF_FLEET_BENCH is set:
#
#   AF_FLEET_BENCH=1 AF_BIN=$PWD/build AF_SRC=$PWD bash tests/it_fleet.sh
#
# AF_FLEET_DEVICES devices (10,000) on one broker, twice, each time on a
# fresh store: first with empty install lists, then with 300 apps each
# (of 400 programs) that a SYNC at login puts in the broker's sync index.
# Each time: how long until every device has logged in with its password
# and sent its list (logins/s), the broker's resident memory per device
# then (/proc/PID/status, VmRSS, against the broker's before any device),
# and after a kill -9 and a restart how long until every device logged in
# again by key. AF_FLEET_HEARTBEAT (1000 ms, the broker's default) is the
# broker's and the devices' heartbeat; AF_FLEET_OPTS adds fleet options
# (e.g. --connect-timeout 1000); AF_FLEET_ROUNDS ("idle lists") picks the
# rounds.
#
# A fleet process holds two descriptors per device; when the hard limit
# does not allow them all in one process, the devices are split over
# several fleets (each its own --prefix), started together.
NB=${AF_FLEET_DEVICES:-10000}
HBB=${AF_FLEET_HEARTBEAT:-1000}
hard=$(ulimit -Hn)
per=$(( (hard - 64) / 2 ))
FLEETS=$(( (NB + per - 1) / per ))
EACH=$(( (NB + FLEETS - 1) / FLEETS ))
BROKER_OPTS=(--catalog "$T/catalog" --heartbeat "$HBB" --pw-per-source 1000000 --max-per-source 1000000)
ulimit -n "$hard"
echo "  # benchmark: $NB devices on one broker, as $FLEETS fleet process(es) of up to $EACH" \
     "(the descriptor limit, $hard, allows $per per process); heartbeat $HBB ms; $(nproc) cores"
echo "  # load before: $(cut -d' ' -f1-3 /proc/loadavg); busiest other processes:"
ps -eo pcpu,comm --sort=-pcpu | sed -n '2,6p' | sed 's/^/  #     /'

# The kernel's count of connections dropped because a listen backlog was
# full (all sockets of the machine: compare before and after)
overflows () { awk '/^TcpExt:/ { if (!n) { for (i = 1; i <= NF; i++) if ($i == "ListenOverflows") c = i; n = 1 } else print $c }' /proc/net/netstat; }

# CPU seconds the broker has used (user + system, /proc/PID/stat)
broker_cpu () { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$BROKER_PID/stat"; }

# bench_round NAME FLEET-OPTIONS...: one broker, the fleets, the figures
bench_round () {
    local name=$1; shift
    rm -rf "${T:?}/$name"
    unset NODES_EP WORKERS_EP
    start_broker "$name" "${BROKER_OPTS[@]}"
    # The matcher beats as the broker does: at the tests' 200 ms a broker
    # busy with a storm judges it dead
    start_matcher "matcher-$name" "$T/catalog" --heartbeat "$HBB"
    sleep 1
    local base; base=$(rss_kib "$BROKER_PID")
    local anon0 file0; anon0=$(status_kib "$BROKER_PID" RssAnon); file0=$(status_kib "$BROKER_PID" RssFile)
    local pids=() logs=() i start=$SECONDS over0; over0=$(overflows)
    for i in $(seq 1 "$FLEETS"); do
        local n=$EACH
        [ $((i * EACH)) -gt "$NB" ] && n=$((NB - (i - 1) * EACH))
        "$FLEET" -b "$NODES_EP" -k "$BROKER_CERT" -n "$n" --prefix "bench-$name-$i" --heartbeat "$HBB" \
            --jitter 2000 --duration 0 --hold 3600 --drain 120 --setup 900 --report-every 10000 "$@" \
            > "$T/fleet-$name-$i.log" 2>&1 &
        pids+=($!); logs+=("$T/fleet-$name-$i.log")
        PIDS+=($!)
    done
    # Every fleet logged its devices in
    local log
    for log in "${logs[@]}"; do
        wait_until 600 grep -q "^fleet: setup:" "$log" || { not_ok "$name: the fleet did not log in: $log"; return 1; }
    done
    local took; took=$(for log in "${logs[@]}"; do fleet_line "$log" '^fleet: setup:'; done \
        | sed -E 's/.* in ([0-9.]+) s .*/\1/' | sort -n | tail -1)
    local in; in=$(for log in "${logs[@]}"; do fleet_line "$log" '^fleet: setup:'; done \
        | awk '{ s += $3 } END { print s }')
    # With --auto-sync: also until every device had its first diff
    local diffs=""
    if [[ " $* " == *" --auto-sync "* ]]; then
        for log in "${logs[@]}"; do
            wait_until 400 grep -q "^fleet: first diffs:" "$log" \
                || not_ok "$name: not every device had its first diff within 400 s ($log)"
        done
        diffs=$(for log in "${logs[@]}"; do fleet_line "$log" '^fleet: first diffs:'; done \
            | sed -E 's/.*SYNC_DIFF ([0-9.]+) s .*/\1/' | sort -n | tail -1)
    fi
    sleep 2
    local rss; rss=$(rss_kib "$BROKER_PID")
    echo "  # $name: $in of $NB devices logged in with the password and sent their lists in $took s" \
         "($(awk -v n="$in" -v t="$took" 'BEGIN { printf "%.0f", n / t }') logins/s; the broker used $(broker_cpu) s of CPU)"
    [ -n "$diffs" ] && echo "  # $name: every device had its first SYNC_DIFF $diffs s after the start"
    echo "  # $name: broker RSS $((base / 1024)) MiB before, $((rss / 1024)) MiB with $in devices online:" \
         "$(awk -v r="$rss" -v b="$base" -v n="$in" 'BEGIN { printf "%.1f", (r - b) / n }') KiB per device"
    # Of which the heap's (RssAnon) and the store's mapped pages (RssFile:
    # LMDB's map, page cache the kernel may take back)
    local anon file; anon=$(status_kib "$BROKER_PID" RssAnon); file=$(status_kib "$BROKER_PID" RssFile)
    echo "  # $name: of which RssAnon $(awk -v r="$anon" -v b="$anon0" -v n="$in" 'BEGIN { printf "%.1f", (r - b) / n }')" \
         "KiB per device, RssFile $(awk -v r="$file" -v b="$file0" -v n="$in" 'BEGIN { printf "%.1f", (r - b) / n }') KiB"
    local over1; over1=$(overflows)
    echo "  # $name: $((over1 - over0)) connections dropped by full listen backlogs during the logins"
    # kill -9 and restart; each fleet measures from its mark
    restart_broker "$name" "${pids[@]}"
    local back=""
    for log in "${logs[@]}"; do
        wait_until 300 grep -q "^fleet: back online:" "$log" || { not_ok "$name: not back online: $log"; break; }
    done
    back=$(for log in "${logs[@]}"; do fleet_line "$log" '^fleet: back online:'; done \
        | sed -E 's/.* again ([0-9.]+) s .*/\1/' | sort -n | tail -1)
    echo "  # $name: after kill -9 and a restart, every device logged in again by key within ${back:-?} s" \
         "($(( $(overflows) - over1 )) connections dropped by full listen backlogs meanwhile)"
    # Held until now: SIGINT ends the hold, the fleets drain and check
    local rc=0
    for i in "${!pids[@]}"; do kill -INT "${pids[$i]}"; done
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || rc=1; done
    for log in "${logs[@]}"; do
        echo "  # $name: $(fleet_line "$log" '^[0-9]+ acked'); $(fleet_line "$log" '^fleet: own cost:' | cut -d' ' -f2-)"
    done
    check "$name: every fleet passed (0 lost, 0 duplicated, every device back)" test "$rc" -eq 0
    echo "  # $name: $(( SECONDS - start )) s in all; the restarted broker used $(broker_cpu) s of CPU;" \
         "load $(cut -d' ' -f1-3 /proc/loadavg)"
    local matcher="MATCHER_PID_matcher_$name"
    kill -TERM "${!matcher}" 2>/dev/null
    kill -TERM "$BROKER_PID" 2>/dev/null; wait "$BROKER_PID" 2>/dev/null
}

ROUNDS=" ${AF_FLEET_ROUNDS:-idle lists} "
# shellcheck disable=SC2086
if [[ $ROUNDS == *" idle "* ]]; then bench_round idle --apps 0 ${AF_FLEET_OPTS:-}; fi
# A SYNC of 300 apps in a storm of them waits its turn (64 diffs at once,
# each resolved program by program): no deadline, to see when all are in
# shellcheck disable=SC2086
if [[ $ROUNDS == *" lists "* ]]; then
    bench_round lists --apps 300 --programs 400 --auto-sync --timeout 3600000 ${AF_FLEET_OPTS:-}
fi
finish
