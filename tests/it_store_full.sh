#!/usr/bin/env bash
# A broker whose store is full (a 2 MiB map, filled for real) answers a
# REPORT it cannot commit with E_INTERNAL, never OK; the node keeps the
# report and sends it again once the broker has room, so the install list
# ends up right. An upload the broker cannot write is its own failure too. (Issue 10: LMDB's codes are negative, and a failed commit
# used to be answered OK, so the node dropped its report for good.)
. "$(dirname "$0")/lib.sh"
PIN="$AF_BIN/tests/af_pin"

"$CATALOG" --catalog "$T/catalog" import "$AF_SRC/data/catalog/manifest.json" > "$T/import.log" 2>&1 \
    || die "catalog import failed"
start_broker broker --catalog "$T/catalog" --map-size 2
start_matcher matcher "$T/catalog"
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet; do af $n login ana > /dev/null || die "$n login failed"; done
TABLET=$(device_id tablet)
af phone push weixin --to "$TABLET" > /dev/null || die "push weixin failed"
check "the tablet's install of weixin reached the broker" wait_eq 10 weixin \
    afj phone '[.apps[].program] | join(" ")' apps --device "$TABLET"

# A reader held open keeps LMDB from reusing freed pages: once the map's
# fresh pages are used up, every write transaction fails
"$PIN" "$BROKER_DIR/store" > "$T/pin.out" 2> "$T/pin.log" &
PIN_PID=$!
PIDS+=("$PIN_PID")
wait_until 10 grep -q pinned "$T/pin.out" || die "could not pin the store"
"$RAW" "$NODES_EP" "$BROKER_CERT" fill ana "$APPFERRY_PASSWORD" > "$T/fill.out" 2>&1
check "the store fills up, and every put acknowledged reads back" grep -q "0 failed" "$T/fill.out"

# The tablet uninstalls weixin: its report cannot be stored
af tablet uninstall weixin > /dev/null 2>&1
check "the broker refuses the report it cannot store with E_INTERNAL" \
    wait_until 10 grep -q "cannot store a report of $TABLET" "$T/broker.log"
check "  ... the tablet keeps it" test -n "$(ls "$T/tablet/reports/" 2>/dev/null)"
check "  ... and the broker still lists weixin on the tablet" \
    test "$(afj phone '[.apps[].program] | join(" ")' apps --device "$TABLET")" = weixin

# Room again: the broker restarts with a bigger map, the tablet sends the report again
kill -9 "$PIN_PID"; wait "$PIN_PID" 2>/dev/null
kill -TERM "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
BEFORE=$(wc -l < "$T/broker.log")
start_broker broker --catalog "$T/catalog" --map-size 64
check "after the restart the report arrives: weixin is gone from the tablet's list" wait_eq 20 "" \
    afj phone '[.apps[].program] | join(" ")' apps --device "$TABLET"
reports_empty () { test -z "$(ls "$T/tablet/reports/")"; }
check "  ... and the tablet's queue is empty" wait_until 10 reports_empty
check "  ... it came as the report itself, not as a whole list mending a lost one" \
    test -z "$(tail -n +"$BEFORE" "$T/broker.log" | grep "$TABLET of 'ana' sent its whole list")"

# The broker's disk is full (a file size limit stands in for it): an
# upload it cannot store is its failure (E_INTERNAL, retry later), not the
# node's bad message (E_MALFORMED, do not retry)
kill -TERM "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
BEFORE=$(wc -l < "$T/broker.log")
limit=$(( $(stat -c %s "$BROKER_DIR/store/data.mdb") + 1024 * 1024 ))
BROKER_PREFIX="prlimit --fsize=$limit" start_broker broker --catalog "$T/catalog" --map-size 64
mkdir -p "$T/phone/data/weixin"
head -c $((3 * 1024 * 1024)) /dev/urandom > "$T/phone/data/weixin/history.db"
PHONE=$(device_id phone)
phone_back () { tail -n +"$BEFORE" "$T/broker.log" | grep -q "device $PHONE .* logged in"; }
wait_until 10 phone_back || die "the phone did not log in again"
out=$(af phone push weixin --to "$TABLET" --with-data 2>&1); rc=$?
echo "$out" | tail -n 1 | sed 's/^/  # /'
check "an upload the broker cannot store fails with E_INTERNAL" test $rc -eq 1
check "  ... named so" has "$out" "E_INTERNAL"
half_stored () { echo "$(broker_value "$BROKER_DIR" appferry_userdata_unfinished)" \
                      "$(broker_value "$BROKER_DIR" appferry_userdata_chunks)"; }
check "  ... nothing half-stored is left (no upload, no chunk in the store)" wait_eq 10 "0 0" half_stored
check "  ... and the broker still serves" wait_eq 10 "" \
    afj phone '[.apps[].program] | join(" ")' apps --device "$TABLET"

finish
