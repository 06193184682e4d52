#!/usr/bin/env bash
# Install reports are never lost (issue 9, section 3): an unreadable report
# in the queue does not stop the ones after it; a node stopped between its
# install record and its report reports the install when the offer comes
# again; an uninstall whose report cannot be queued keeps its record (and
# one asked from another device reports its failure there). Each
# time the broker ends up knowing what the device has.
. "$(dirname "$0")/lib.sh"

"$CATALOG" --catalog "$T/catalog" import "$(free_demo_manifest)" > "$T/import.log" 2>&1 \
    || die "catalog import failed"
start_broker broker --catalog "$T/catalog" --verbose
start_matcher matcher "$T/catalog"
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet; do af $n login ana > /dev/null || die "$n login failed"; done
TABLET=$(device_id tablet)
af phone push chess --to "$TABLET" > /dev/null || die "push chess failed"
tablet_apps () { afj phone '[.apps[].program] | sort | join(" ")' apps --device "$TABLET"; }
wait_eq 10 chess tablet_apps || die "the broker does not have the tablet's chess"

# A node started with a dead broker endpoint: offline, but its CLI works
start_offline () {
    "$NODE" -b tcp://127.0.0.1:9 -k "$BROKER_CERT" -H "$T/$1" -D "$2" --heartbeat $HB >> "$T/$1.log" 2>&1 &
    PIDS+=($!); eval "NODE_PID_$1=$!"
    wait_until 10 test -S "$T/$1/node.sock" || die "offline $1 did not start"
}

# --- a report left empty (a full disk, an older node writing in place),
#     then a real one: the uninstall of chess the tablet makes offline
stop_node tablet
next=$(sed -n 's/^next_seq=//p' "$T/tablet/node.state")
: > "$T/tablet/reports/$(printf %020d "$next").json"
sed -i "s/^next_seq=.*/next_seq=$((next + 1))/" "$T/tablet/node.state"
start_offline tablet "$DEVICES/galaxy-tab-s7.json"
af tablet uninstall chess > /dev/null || die "the offline uninstall failed"
stop_node tablet
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "an unreadable report does not stop the later ones: the broker hears of the uninstall" \
    wait_until 10 grep -q "reports uninstall chess (seq $((next + 1)))" "$T/broker.log"
check "  ... the broker's list of the tablet is right" wait_eq 10 "" tablet_apps
check "  ... the unreadable one is set aside and logged" \
    test -f "$T/tablet/reports/$(printf %020d "$next").json.bad" -a -z "$(ls "$T/tablet/reports" | grep -v '\.bad$')"
check "  ... and the whole list was sent to mend what it said" \
    grep -q "sending the whole install list (an unreadable report was skipped)" "$T/tablet.log"

# --- the tablet stopped after writing an install record and before
#     queueing its report: the state it left, made by hand (the record of
#     the offered package, no report, the offer not done with)
stop_node tablet
push=$(afj phone .pushId push notes --to "$TABLET" --no-wait)
package=$("$CATALOG" --catalog "$T/catalog" --json resolve notes "$DEVICES/galaxy-tab-s7.json" | jq -c .package)
jq -n --argjson p "$package" --arg push "$push" \
    '{program: "notes", versionName: $p.versionName, versionCode: $p.versionCode, hash: $p.hash,
      pushId: $push, installedAt: 1700000000000, method: "builtin", files: []}' \
    > "$T/tablet/installed/notes.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "an install recorded but not reported is reported when the offer comes again" \
    wait_eq 10 notes tablet_apps
check "  ... without installing it again" bash -c "! grep -q 'receiving notes' '$T/tablet.log'"
check "  ... and the push is done" wait_eq 10 installed \
    afj phone ".pushes[] | select(.pushId == \"$push\") | .targets[0].state" status

# --- an uninstall whose report cannot be queued (the queue unusable: a
#     file where its directory was) changes nothing: the record stays
mv "$T/tablet/reports" "$T/tablet/reports.away"; : > "$T/tablet/reports"
out=$(af tablet uninstall notes 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "an uninstall whose report cannot be queued fails and says why" has "$rc:$out" "1:" "report"
check "  ... the record stays" test -f "$T/tablet/installed/notes.json"
out=$(af phone uninstall notes --on "$TABLET" 2>&1)
echo "$out" | sed 's/^/  # /'
remote () { afj phone "[.pushes[] | select(.kind == \"uninstall\") | .targets[0].$1] | join(\" \")" status; }
check "a remote uninstall that fails on its target reaches the initiator as failed" wait_eq 10 failed remote state
check "  ... with the target's reason" has "$(remote reason)" "report"
check "  ... and the target keeps its record" test -f "$T/tablet/installed/notes.json"
rm "$T/tablet/reports"; mv "$T/tablet/reports.away" "$T/tablet/reports"
check "  ... once the queue works, the uninstall goes through" af tablet uninstall notes
check "  ... and the broker hears of it" wait_eq 10 "" tablet_apps

finish
