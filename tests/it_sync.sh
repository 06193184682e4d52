#!/usr/bin/env bash
# Install lists and sync (S0.1, S0.2, S1.2, S1.3, S1.5, S1.8): installs are
# reported to the broker; `sync` shows what the other devices have that this
# one lacks, with whether a package fits here and why not, and what the
# account had that no device has now; a device's own changes made while it
# was offline reach the broker first when it returns.
. "$(dirname "$0")/lib.sh"

"$CATALOG" --catalog "$T/catalog" import "$AF_SRC/data/catalog/manifest.json" > "$T/import.log" 2>&1 \
    || die "catalog import failed"
start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
start_node tv "$DEVICES/chromecast-google-tv.json"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet tv; do af $n login ana > /dev/null || die "$n login failed"; done
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

# --- a report sent twice changes nothing; a stale one is ignored
check "a repeated or stale REPORT changes nothing" \
    "$RAW" "$NODES_EP" "$BROKER_CERT" report ana "$APPFERRY_PASSWORD"

# --- the broker lost its store: the tablet, registered again as a new
#     device, sends its whole list on first contact
stop_node tablet
kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
mv "$T/broker/store" "$T/store.lost"
start_broker broker --catalog "$T/catalog"
rm -f "$T/tablet/node.state"            # it knows the broker forgot it
start_node tablet "$DEVICES/galaxy-tab-s7.json"
af tablet register ana > /dev/null && af tablet login ana > /dev/null || die "re-register failed"
check "after a store loss the node's whole list is back on the broker" wait_eq 10 "notes weixin" \
    afj tablet '[.apps[].program] | sort | join(" ")' apps --device "$(device_id tablet)"

finish
