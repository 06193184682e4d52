#!/usr/bin/env bash
# kill -9 in the middle of a sync install (issue 5): of the broker, then of
# the node. Each time the install completes exactly once and its report
# reaches the broker; nothing is lost or done twice.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/pkg"
"$AF_BIN/tests/af_mkpkg" "$T/pkg/big1.tar" r:big1/blob=12M \
    && "$AF_BIN/tests/af_mkpkg" "$T/pkg/big2.tar" r:big2/blob=12M \
    || die "cannot make test packages"
cat > "$T/pkg/manifest.json" <<'JSON'
[ { "program": "big1", "platform": "android", "versionCode": 1, "versionName": "1.0", "minSdk": 21, "file": "big1.tar" },
  { "program": "big2", "platform": "android", "versionCode": 1, "versionName": "1.0", "minSdk": 21, "file": "big2.tar" } ]
JSON
"$CATALOG" --catalog "$T/catalog" import "$T/pkg/manifest.json" > "$T/import.log" 2>&1 || die "import failed"
start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
# The phone receives slowly (3 MiB/s): 12 MiB take about 4 s
start_node phone "$DEVICES/galaxy-s21.json" --rate-limit 3072
af tablet register ana > /dev/null || die "register failed"
for n in tablet phone; do af $n login ana > /dev/null || die "$n login failed"; done
PHONE=$(device_id phone)
af tablet sync --install big1,big2 > /dev/null || die "the tablet could not install the packages"

# --- the broker dies in the middle of the phone's install
af phone sync --install big1 --wait 60 > "$T/sync1.out" 2>&1 &
SYNC1=$!
wait_until 10 grep -q "receiving big1" "$T/phone.log" || die "the phone did not start receiving"
sleep 1
kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
start_broker broker --catalog "$T/catalog"
check "after the broker's SIGKILL mid-transfer, the phone still installs big1" \
    wait_until 40 test -f "$T/phone/installed/big1.json"
# The record is written before the node logs the install: wait for the line
wait_until 10 grep -q 'big1 1.0 installed' "$T/phone.log"
check "  ... once" test "$(grep -c 'big1 1.0 installed' "$T/phone.log")" -eq 1
check "  ... and its report reached the restarted broker" wait_eq 10 big1 \
    afj tablet '[.apps[].program] | join(" ")' apps --device "$PHONE"
wait "$SYNC1" 2>/dev/null

# --- the node dies in the middle of the next install
af phone sync --install big2 --no-wait > /dev/null 2>&1
wait_until 10 grep -q "receiving big2" "$T/phone.log" || die "the phone did not start receiving big2"
sleep 1
kill -9 "$(node_pid phone)"; wait "$(node_pid phone)" 2>/dev/null
start_node phone "$DEVICES/galaxy-s21.json" --rate-limit 3072
check "after the node's SIGKILL mid-transfer, it installs big2 when it comes back" \
    wait_until 40 test -f "$T/phone/installed/big2.json"
wait_until 10 grep -q 'big2 1.0 installed' "$T/phone.log"
check "  ... once, from a clean start (the partial file was dropped)" \
    test "$(grep -c 'big2 1.0 installed' "$T/phone.log")" -eq 1 -a -z "$(ls "$T/phone/incoming")"
check "  ... and the broker has both in the phone's list" wait_eq 10 "big1 big2" \
    afj tablet '[.apps[].program] | sort | join(" ")' apps --device "$PHONE"
stop_node phone; start_node phone "$DEVICES/galaxy-s21.json"
sleep 1
check "a later restart installs nothing again" \
    test "$(grep -c 'big[12] 1.0 installed' "$T/phone.log")" -eq 2

finish
