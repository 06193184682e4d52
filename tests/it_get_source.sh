#!/usr/bin/env bash
# The source device's part of a GET (issue 14 "What moves", S0.1, S0.5;
# SPEC 5.47a): the asker installs from the server's store at once, and the
# source's install record (its settings and start-up entries, as the user
# has them there) follows and is applied on the asker: with the source
# online; offline, then online (after its login); offline past the
# broker's get/record_wait (the asker is told, keeps its defaults, and the
# source's late answer is refused); hostile RECORD_PUTs from a raw client
# with the source's own key (unknown ask, another program, another asker,
# oversized, malformed, answered twice, another device, another account),
# each refused with its code and nothing changed; a broker killed with
# SIGKILL after it acknowledged the source's record delivers it once.
# (get --with-data, the user data too: tests/it_get_data.sh.)
. "$(dirname "$0")/lib.sh"

WAIT=6                      # get/record_wait, seconds
P="$T/pkg"
mkdir -p "$P"
echo '[' > "$P/all.json"
for p in tips memo diary journal album; do
    d="$P/$p"; mkdir -p "$d/app"; echo "$p 1" > "$d/app/VERSION"
    printf '%s\n' '{"settings": {"theme": "dark", "font.size": "12"}, "startup": ["daily", "sync"]}' > "$d/appferry.json"
    tar -C "$d" -cf "$P/$p.tar" app appferry.json || die "cannot make $p.tar"
    [ $p = tips ] || echo ',' >> "$P/all.json"
    printf '{ "program": "%s", "platform": "android", "versionCode": 1, "versionName": "1.0", "minSdk": 21, "file": "%s.tar" }\n' \
        $p $p >> "$P/all.json"
done
echo ']' >> "$P/all.json"
"$CATALOG" --catalog "$T/catalog" import "$P/all.json" > "$T/import.log" 2>&1 || die "catalog import failed"
printf 'get\n    record_wait = %d\n' $WAIT > "$T/broker.cfg"
start_broker broker --catalog "$T/catalog" --config "$T/broker.cfg"
start_matcher matcher "$T/catalog"
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet; do af $n login ana > /dev/null || die "$n login failed"; done
PHONE=$(device_id phone); TABLET=$(device_id tablet)

# The tablet has every program, and its user changed them there: theme
# light (font.size as installed), and the "sync" start-up entry removed
for p in tips memo diary journal album; do
    af phone push $p --to "$TABLET" > /dev/null 2>&1 || die "the tablet could not get $p"
    jq '.theme = "light"' "$T/tablet/settings/$p.json" > "$T/s.json" && mv "$T/s.json" "$T/tablet/settings/$p.json"
    rm -f "$T/tablet/startup/$p@sync"
done
check "the broker has the tablet's list" wait_eq 10 "album diary journal memo tips" \
    afj phone '[.apps[].program] | sort | join(" ")' apps --device "$TABLET"

setting () { jq -r --arg k "$2" '.[$k] // "(none)"' "$T/phone/settings/$1.json" 2>/dev/null || echo "(no file)"; }
state () { jq -r .state "$T/phone/records/$1.json" 2>/dev/null || echo "(none)"; }
startup () { ls -A "$T/phone/startup" 2>/dev/null | grep "^$1@" | tr '\n' ' '; }
told () { afj phone "[.notifications[] | select(.kind == \"record\" and (.text | startswith(\"$1:\")))] | length" notifications; }

# --- the source online: installed at once, its record applied after
check "get from the online tablet installs tips" af phone get tips --from "$TABLET"
check "  ... the tablet's record is applied on the phone" wait_eq 10 applied state tips
check "  ... the tablet's theme (light), the package's font.size (12)" \
    test "$(setting tips theme) $(setting tips font.size)" = "light 12"
check "  ... and its start-up entries (daily only: the tablet removed sync)" test "$(startup tips)" = "tips@daily "
check "  ... shown once in the notifications" wait_eq 5 1 told tips
check "  ... and the install record says whence" test "$(jq -r '.appliedFrom.versionName' "$T/phone/installed/tips.json")" = 1.0

# --- the source offline, then online: the record after its login, once
stop_node tablet
check "get from the offline tablet does not wait for it" af phone get memo --from "$TABLET"
check "  ... memo is installed with its defaults" test "$(setting memo theme)" = dark
check "  ... no record yet" test "$(state memo)" = "(none)"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "after the tablet logs in, its record is applied" wait_eq 10 applied state memo
check "  ... theme light" test "$(setting memo theme)" = light
check "  ... shown once" wait_eq 5 1 told memo

# --- past the limit: the asker told, defaults kept; the late answer refused
stop_node tablet
check "get of diary with the tablet offline" af phone get diary --from "$TABLET"
check "  ... past get/record_wait the phone is told" wait_eq $((WAIT + 10)) told state diary
out=$(afj phone '.notifications[] | select(.kind == "record" and (.text | startswith("diary:"))) | .text' notifications)
check "  ... that the tablet was not online in time and diary keeps its defaults" \
    has "$out" "was not online within $WAIT s" "installed with its defaults"
check "  ... and diary has them" test "$(setting diary theme)" = dark
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" record ana "$TABLET" "$T/tablet/node.cert_secret" diary late 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "a late RECORD_PUT from the tablet's key is refused (E_ASK_EXPIRED)" test $rc -eq 0
check "  ... and changes nothing" test "$(state diary) $(setting diary theme)" = "told dark"

# --- hostile RECORD_PUTs (the tablet's own key; the real tablet stopped)
check "get of journal with the tablet offline" af phone get journal --from "$TABLET"
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" record ana "$TABLET" "$T/tablet/node.cert_secret" journal hostile 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "hostile RECORD_PUTs are refused, each with its code; one answer taken" test $rc -eq 0
check "  ... the one taken is applied on the phone (theme raw)" wait_eq 10 "applied raw" \
    bash -c "echo \$(jq -r .state '$T/phone/records/journal.json') \$(jq -r .theme '$T/phone/settings/journal.json')"
check "  ... once" wait_eq 5 1 told journal

# --- the broker killed after it acknowledged the record: delivered once
check "get of album with the tablet offline" af phone get album --from "$TABLET"
stop_node phone
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" record ana "$TABLET" "$T/tablet/node.cert_secret" album ok 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "the source's record of album is acknowledged" test $rc -eq 0
kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
start_broker broker --catalog "$T/catalog" --config "$T/broker.cfg"
start_node phone "$DEVICES/galaxy-s21.json"
check "after a SIGKILL of the broker the phone gets the record" wait_eq 15 applied state album
check "  ... once" wait_eq 5 1 told album
sleep 1
check "  ... and still once" test "$(told album)" = 1

# --- the tablet back: its notices answered (469/475) and acknowledged
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "the tablet's answers to the closed asks change nothing on the phone" wait_until 10 \
    grep -q "ask for the install record of diary is closed" "$T/tablet.log"
check "  ... diary still has its defaults" test "$(setting diary theme)" = dark
check "  ... and journal keeps the one record applied" test "$(state journal) $(setting journal theme)" = "applied raw"
finish
