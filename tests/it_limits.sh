#!/usr/bin/env bash
# A storm larger than the broker can hold (issue 11): connections past
# broker/max_sessions are closed as they are accepted, with a log line,
# while the admitted ones are served; the broker never spins. A
# descriptor limit too low for max_sessions lowers it at start, so that
# accepting never fails for want of a descriptor.
. "$(dirname "$0")/lib.sh"

# cpu_ticks PID: user + system clock ticks the process has used
cpu_ticks () { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

printf 'broker\n    max_sessions = 20\n' > "$T/broker.cfg"
start_broker broker --config "$T/broker.cfg"
# (the raw client holds one connection of its own: 19 are left for its storm)
before=$(cpu_ticks "$BROKER_PID")
"$RAW" "$NODES_EP" "$BROKER_CERT" sources 40 127.0.0.9 19 > "$T/storm.out" 2>&1
after=$(cpu_ticks "$BROKER_PID")
grep '^#' "$T/storm.out" | sed 's/^/  /'
check "40 connections, max_sessions 20: 20 are served (19 of the storm)" grep -q "^ok - connections from one address beyond" "$T/storm.out"
check "  ... and once they closed, new ones are served again" grep -q "^ok -   ... and once they closed" "$T/storm.out"
check "  ... each refused one is logged, naming the limit" \
    grep -q "refused a connection on nodes from 127.0.0.9: the broker has 20 connections, its limit (broker/max_sessions)" "$T/broker.log"
ticks=$((after - before)); hz=$(getconf CLK_TCK)
echo "  # the broker used $ticks ticks (of $hz a second) in about 4 s"
check "  ... and the broker did not spin meanwhile (under half a core)" test "$ticks" -lt $((2 * hz))
kill -TERM "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null

# 1,400 descriptors cannot hold 100,000 sessions, nor 20 with what the
# broker keeps for itself: it lowers max_sessions to what they can
BROKER_PREFIX="prlimit --nofile=1552" start_broker broker
check "a descriptor limit below max_sessions lowers it at start, and says so" \
    grep -q "max_sessions lowered from 100000 to 16: the descriptor limit is 1552" "$T/broker.log"
before=$(cpu_ticks "$BROKER_PID")
"$RAW" "$NODES_EP" "$BROKER_CERT" sources 40 127.0.0.10 15 > "$T/storm2.out" 2>&1
after=$(cpu_ticks "$BROKER_PID")
grep '^#' "$T/storm2.out" | sed 's/^/  /'
check "  ... then 40 connections: 16 are served (15 of the storm)" grep -q "^ok - connections from one address beyond" "$T/storm2.out"
check "  ... the broker did not spin" test $((after - before)) -lt $((2 * hz))
start_node phone "$DEVICES/galaxy-s21.json"
check "  ... and a real node is served afterwards" has "$(af phone status)" "connected"

finish
