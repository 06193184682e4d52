#!/usr/bin/env bash
# Every binary answers --help; bad options and config files get clear errors.
. "$(dirname "$0")/lib.sh"

for bin in "$BROKER" "$NODE" "$CLI" "$MATCHER" "$CATALOG_BIN" "$PAYMENTS" "$CONTACTS" \
           "$AF_BIN/fleet/appferry-fleet" "$AF_BIN/nodes/appferry-install-guard"; do
    out=$("$bin" --help 2>&1); rc=$?
    check "$(basename "$bin") --help exits 0 with usage" has "$rc:$out" "0:" "Usage:"
done
out=$("$BROKER" --bogus 2>&1); rc=$?
check "unknown broker option is a usage error" has "$rc:$out" "2:" "Usage:"
out=$("$NODE" --home "$T/x" 2>&1); rc=$?
check "node without --broker says what is required" has "$rc:$out" "2:" "--broker, --broker-key, --home and --device are required"

cat > "$T/bad.cfg" <<'CFG'
broker
    data_dir = /tmp/never-used
    heartbeet = 100
CFG
out=$("$BROKER" -c "$T/bad.cfg" 2>&1); rc=$?
check "a misspelt config key is refused, named" has "$rc:$out" "2:" "unknown setting 'broker/heartbeet'"
cat > "$T/bad2.cfg" <<'CFG'
broker
    liveness = zero
CFG
out=$("$BROKER" -c "$T/bad2.cfg" 2>&1); rc=$?
check "a bad number in the config is refused" has "$rc:$out" "2:" "broker/liveness: expected a number"
printf 'cluster\n    replicas = 3\n' > "$T/bad3.cfg"
out=$("$BROKER" -c "$T/bad3.cfg" 2>&1); rc=$?
check "cluster/replicas above 2 is refused, saying why" has "$rc:$out" "2:" \
    "cluster/replicas: expected a number 0..2, got '3': more followers per shard are not supported"
check "the sample config in deploy/ is valid" bash -c \
    "sed 's#/var/lib/appferry#$T/sample#' '$AF_SRC/deploy/appferry-broker.cfg' > '$T/sample.cfg' && \
     timeout 3 '$BROKER' -c '$T/sample.cfg' --nodes tcp://127.0.0.1:* --workers tcp://127.0.0.1:* > '$T/sample.log' 2>&1; \
     grep -q 'serving nodes' '$T/sample.log'"

out=$("$CLI" --home "$T/nothing" status 2>&1); rc=$?
check "CLI without a node says so, exit 3" has "$rc:$out" "3:" "no node is running"
start_broker broker
start_node phone "$DEVICES/galaxy-s21.json"
out=$(af phone devices 2>&1); rc=$?
check "devices before login: not logged in, exit 1" has "$rc:$out" "1:" "not logged in"
out=$(af phone frobnicate 2>&1); rc=$?
check "unknown CLI command, exit 2" has "$rc:$out" "2:" "unknown command"
check "the CLI socket is private (0600)" test "$(stat -c %a "$T/phone/node.sock")" = 600
check "the node's secret key is private (0600)" test "$(stat -c %a "$T/phone/node.cert_secret")" = 600
check "the broker's secret key is private (0600)" test "$(stat -c %a "$T/broker/broker.cert_secret")" = 600
kill "$BROKER_PID"
out=$(af phone register zed 2>&1); rc=$?
check "with the broker down, a request fails clearly" has "$rc:$out" "1:" "not connected to the broker"
finish
