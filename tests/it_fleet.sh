#!/usr/bin/env bash
# The simulated fleet (issue 11): a few thousand devices, each with its own
# CURVE key and the description of a real model, in accounts of 1-8,
# register, log in, report installs and uninstalls, sync, notify and push
# small packages (and iOS store links) to each other through one broker,
# which is killed with SIGKILL and restarted in the middle. Every device
# is back online, every acknowledged report is in the broker's install
# lists, every accepted offer reached its target, nothing is applied
# twice (appferry-fleet checks it and says "N acked, N delivered, 0 lost,
# 0 duplicated").
#
# Size: AF_FLEET_DEVICES (default 2000; under AddressSanitizer, which makes
# broker and fleet several times slower, 600). AF_FLEET_BENCH=1 runs the
# benchmark of bench/README.md instead (10,000 devices by default).
. "$(dirname "$0")/lib.sh"
FLEET="$AF_BIN/fleet/appferry-fleet"

. "$(dirname "$0")/fleet_catalog.sh"
fleet_catalog "$T/catalog"

# The broker as a fleet needs it: heartbeats of a second (not the tests'
# 200 ms), and password work from one address unlimited (README)
BROKER_OPTS=(--catalog "$T/catalog" --heartbeat 1000 --pw-per-source 1000000 --max-per-source 1000000)
# Under AddressSanitizer a broker keeps freed memory in a quarantine; a
# small one keeps a long run's memory down
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=16"

rss_kib () { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
status_kib () { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }     # status_kib PID RssAnon

# restart_broker NAME FLEET-PID...: SIGKILL, mark the restart in every
# fleet, start again on the same store and endpoints (the matcher
# reconnects by itself)
restart_broker () {
    local name=$1 pid; shift
    kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
    for pid in "$@"; do kill -USR1 "$pid"; done
    start_broker "$name" "${BROKER_OPTS[@]}"
}

if [ -n "${AF_FLEET_BENCH:-}" ]; then
    . "$(dirname "$0")/fleet_bench.sh"
    exit $?
fi

# --- the run
if "$FLEET" --version | grep -q AddressSanitizer; then
    N=${AF_FLEET_DEVICES:-600}
    echo "  # AddressSanitizer build: $N devices (AF_FLEET_DEVICES sets it)"
else
    N=${AF_FLEET_DEVICES:-2000}
fi
RATE=$((N / 5))
start_broker broker "${BROKER_OPTS[@]}"
start_matcher matcher "$T/catalog" --heartbeat 1000
"$FLEET" -b "$NODES_EP" -k "$BROKER_CERT" -n "$N" --push "$PUSH" --apps 30 --programs 300 \
    --duration 20 --rate "$RATE" --heartbeat 1000 --jitter 1000 --auto-sync \
    --vanish 2 --vanish-for 3000 --report-every 2000 --drain 40 > "$T/fleet.log" 2>&1 &
FLEET_PID=$!
PIDS+=("$FLEET_PID")
wait_until 90 grep -q "^fleet: run:" "$T/fleet.log" || die "the fleet did not log in within 90 s"
echo "  # $(fleet_line "$T/fleet.log" '^fleet: setup:')"
# Mid-run: a kill -9 of the broker while reports, pushes and syncs flow
sleep 7
restart_broker broker "$FLEET_PID"
wait "$FLEET_PID"; rc=$?
sed -n -E '/^fleet: (back online|unexpected|lost|duplicated|FAILED)/p; /^[0-9]+ acked/p' "$T/fleet.log" \
    | head -n 30 | sed 's/^/  # /'
check "the fleet passed (exit status $rc)" test "$rc" -eq 0
check "every one of the $N devices logged in with the password and sent its list" \
    has "$(fleet_line "$T/fleet.log" '^fleet: setup:')" "$N of $N devices logged in"
check "every device logged in again by key after the broker's SIGKILL and restart" \
    grep -qE "^fleet: back online: [0-9]+ devices logged in again" "$T/fleet.log"
check "every device is online at the end" grep -q "^fleet: online at the end: $N of $N devices (0 failed)" "$T/fleet.log"
fleet_checks "$T/fleet.log" "$N" $((N / 2))
pushes=$(fleet_line "$T/fleet.log" '^fleet: pushes:')
check "pushes installed packages and store links on their targets" \
    bash -c "[[ '$pushes' =~ \ ([1-9][0-9]*)\ installed ]] && [[ '$pushes' =~ \ ([1-9][0-9]*)\ store\ links ]]"
check "no answer was unexpected" grep -q "^  [0-9]* expected, 0 unexpected" "$T/fleet.log"
finish
