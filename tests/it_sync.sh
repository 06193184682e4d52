#!/usr/bin/env bash
# Install lists and sync (S0.1, S0.2, S1.2, S1.3, S1.5, S1.8): installs are
# reported to the broker; `sync` shows what the other devices have that this
# one lacks, with whether a package fits here and why not, and what the
# account had that no device has now; a device's own changes made while it
# was offline reach the broker first when it returns.
. "$(dirname "$0")/lib.sh"

cat > "$T/maps.json" <<JSON
[ { "program": "maps", "platform": "android", "versionCode": 7, "versionName": "7.0", "minSdk": 21,
    "file": "$AF_SRC/data/catalog/packages/notes-2.1.0-universal.tar" } ]
JSON
"$CATALOG" --catalog "$T/catalog" import "$T/maps.json" > "$T/import.log" 2>&1 || die "catalog import failed"
family "$(free_demo_manifest)"
PHONE=$(device_id phone); TABLET=$(device_id tablet); TV=$(device_id tv)

# Installs arrive by push; each node reports its own
af phone push weixin --to "$TABLET,$TV" > /dev/null || die "push weixin failed"
af phone push chess --to "$TABLET" > /dev/null || die "push chess failed"
af phone push notes --to "$TV" > /dev/null || die "push notes failed"
sorted () { tr ' ' '\n' | sort | tr '\n' ' '; }
check "the broker has the tablet's list" wait_eq 10 "chess weixin" \
    afj phone '[.apps[].program] | sort | join(" ")' apps --device "$TABLET"
check "and the tv's" wait_eq 10 "notes weixin" afj phone '[.apps[].program] | sort | join(" ")' apps --device "$TV"

# The phone lacks all three; each fits it
diff=$(af phone --json sync)
check "the phone's sync lists what the others have" test "$(jq -r '[.apps[] | .program + "@" + .deviceName] | sort | join(" ")' <<< "$diff")" \
    = "chess@Ana's tablet notes@Living room TV weixin@Ana's tablet weixin@Living room TV"
check "  ... each fits the phone, with the version it would get" \
    test "$(jq -r '[.apps[] | select(.program == "weixin") | .fit + " " + .fitVersion] | unique | join(",")' <<< "$diff")" = "package 8.0.48"
# The tv lacks chess, and no chess fits a tv
diff=$(af tv --json sync)
check "the tv's sync lists chess with why it does not fit" \
    test "$(jq -r '.apps[] | select(.program == "chess") | .fit + ": " + .reason' <<< "$diff")" \
    = "no-fit: made for phone, tablet; device is a tv"
check "  ... and not what it has itself" test "$(jq '[.apps[] | select(.program == "weixin")] | length' <<< "$diff")" -eq 0
out=$(af tv sync)
check "the text form says it too" has "$out" "chess" "no package fits: made for phone, tablet; device is a tv"

# --- the tv goes offline; meanwhile others change, and so does it
stop_node tv
af phone push notes --to "$TABLET" > /dev/null || die "push notes to tablet failed"
af phone sync --install weixin > /dev/null 2>&1 || die "the phone could not install weixin"
af tablet uninstall chess > /dev/null || die "tablet uninstall failed"
# The tv's own change while it cannot reach the broker (a dead endpoint)
NODES_EP_SAVED=$NODES_EP; NODES_EP="tcp://127.0.0.1:9"
"$NODE" -b "$NODES_EP" -k "$BROKER_CERT" -H "$T/tv" -D "$DEVICES/chromecast-google-tv.json" --heartbeat $HB \
    >> "$T/tv.log" 2>&1 &
PIDS+=($!); eval "NODE_PID_tv=$!"
wait_until 10 test -S "$T/tv/node.sock" || die "offline tv did not start"
check "the tv uninstalls notes while offline" af tv uninstall notes
check "  ... the report waits in its home" test "$(ls "$T/tv/reports" | wc -l)" -eq 1
stop_node tv
NODES_EP=$NODES_EP_SAVED
start_node tv "$DEVICES/chromecast-google-tv.json"
check "its offline change reached the broker" wait_eq 10 "weixin" \
    afj phone '[.apps[].program] | sort | join(" ")' apps --device "$TV"
check "  ... and left its queue" test "$(ls "$T/tv/reports" | wc -l)" -eq 0
diff=$(af tv --json sync)
check "back online, the tv sees the tablet's notes, and chess as gone (the account had it)" \
    test "$(jq -r '[.apps[] | .program + "@" + (if .gone then "gone" else .deviceName end)] | sort | join(" ")' <<< "$diff")" \
    = "chess@gone notes@Ana's tablet"

# --- installing the picks (S1.4): each from the server's store, for this device
out=$(af phone sync --install weixin 2>&1); rc=$?
echo "$out" | tail -n 1 | sed 's/^/  # /'
check "sync --install weixin installs the package that fits the phone" \
    test $rc -eq 0 -a "$(jq -r .hash "$T/phone/installed/weixin.json" 2>/dev/null)" \
         = "$("$CATALOG" --catalog "$T/catalog" --json resolve weixin "$DEVICES/galaxy-s21.json" | jq -r .package.hash)"
out=$(af phone sync --install-all 2>&1); rc=$?
check "sync --install-all installs every pick that fits (notes, and chess the account had)" \
    test $rc -eq 0 -a -f "$T/phone/installed/notes.json" -a -f "$T/phone/installed/chess.json"
check "  ... and the phone lacks nothing now" wait_eq 10 0 afj phone '.apps | length' sync

# --- automatic mode (S1.9): a device that installs what the others install
start_node auto "$DEVICES/galaxy-a10.json" --sync-mode auto
af auto login ana > /dev/null || die "auto login failed"
check "at login, automatic mode installs what the others have and fits" \
    wait_until 20 test -f "$T/auto/installed/weixin.json" -a -f "$T/auto/installed/notes.json"
check "  ... but not what does not fit (chess needs Android 10)" test ! -e "$T/auto/installed/chess.json"
af phone push maps --to "$TABLET" > /dev/null || die "push maps failed"
check "a new install on the tablet is installed on the automatic device as it appears" \
    wait_until 20 test -f "$T/auto/installed/maps.json"
check "the phone, in manual mode, only lists it" \
    bash -c "[ ! -e '$T/phone/installed/maps.json' ] && '$CLI' --home '$T/phone' sync | grep -q maps"

# --- uninstall everywhere: online devices at once, offline ones when they return
stop_node tablet
out=$(af phone uninstall weixin --on "$TV,$TABLET" 2>&1)
check "uninstall --on answers per device" has "$out" "offered" "queued"
check "the online tv uninstalls weixin" wait_until 10 test ! -e "$T/tv/installed/weixin.json" -a ! -e "$T/tv/apps/weixin"
check "  ... and its report updates its list" wait_eq 10 "" afj phone '[.apps[].program] | join(" ")' apps --device "$TV"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "the tablet, offline then, uninstalls it when it connects" wait_until 10 test ! -e "$T/tablet/installed/weixin.json"
check "  ... and its list says so" wait_eq 10 "maps notes" \
    afj phone '[.apps[].program] | sort | join(" ")' apps --device "$TABLET"
check "the phone learns each target's outcome (DONE uninstalled, as a RESULT)" wait_eq 10 "uninstalled uninstalled" \
    afj phone '[.pushes[] | select(.kind == "uninstall") | .targets[].state] | join(" ")' status

# --- a report sent twice changes nothing; a stale one is ignored
check "a repeated or stale REPORT changes nothing" \
    "$RAW" "$NODES_EP" "$BROKER_CERT" report ana "$APPFERRY_PASSWORD"

# --- the broker asks for whole lists as often as its config says
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
printf 'broker\n    list_every = 1\n' > "$T/list.cfg"
start_broker broker -c "$T/list.cfg" --catalog "$T/catalog"
before=$(grep -c "$TABLET of 'ana' sent its whole list" "$T/broker.log")
sleep 1.2
stop_node tablet; start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "with list_every = 1, a device logging in again sends its whole list" \
    wait_until 10 bash -c "[ \$(grep -c \"$TABLET of 'ana' sent its whole list\" '$T/broker.log') -gt $before ]"

# --- the broker lost its store: the tablet, registered again as a new
#     device, sends its whole list on first contact
stop_node tablet
kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
mv "$T/broker/store" "$T/store.lost"
start_broker broker --catalog "$T/catalog"
rm -f "$T/tablet/node.state"            # it knows the broker forgot it
start_node tablet "$DEVICES/galaxy-tab-s7.json"
af tablet register ana > /dev/null && af tablet login ana > /dev/null || die "re-register failed"
check "after a store loss the node's whole list is back on the broker" wait_eq 10 "maps notes" \
    afj tablet '[.apps[].program] | sort | join(" ")' apps --device "$(device_id tablet)"

finish
