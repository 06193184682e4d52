#!/usr/bin/env bash
# get --with-data between two devices of one account (issue 14, S0.5 with
# S2.8; SPEC 5.47 "With the user data"): the asker installs from the
# server's store at once, and the source sends the app's user data (its
# HOME/data/PROGRAM/, as push --with-data would) and then its install
# record; the asker's data is replaced by the source's, once, and the
# record applied: with the source online; offline, then online; a source
# "killed" after its push and before its record (a raw client with its key
# pushes for the ask and acknowledges nothing), whose notice then comes
# again to the real node, which pushes again: the data imported once, the
# first push's; a push for the closed ask refused (469); a source without
# data for the program: the record alone, the asker told why; hostile
# pushes for an ask (another target, program, no data), refused; a raw
# GET withData naming a contact: 403.
. "$(dirname "$0")/lib.sh"

P="$T/pkg"
mkdir -p "$P"
echo '[' > "$P/all.json"
for p in notes diary memo album tips game1 game2; do
    d="$P/$p"; mkdir -p "$d/app" "$d/defaults"; echo "$p 1" > "$d/app/VERSION"
    echo "theme=default" > "$d/defaults/settings.conf"
    printf '%s\n' '{"settings": {"theme": "dark"}, "startup": ["daily"]}' > "$d/appferry.json"
    tar -C "$d" -cf "$P/$p.tar" app defaults appferry.json || die "cannot make $p.tar"
    [ $p = notes ] || echo ',' >> "$P/all.json"
    price=""; case $p in game*) price='"price": 499, "currency": "EUR",';; esac
    printf '{ "program": "%s", "platform": "android", "versionCode": 1, "versionName": "1.0", "minSdk": 21, %s "file": "%s.tar" }\n' \
        $p "$price" $p >> "$P/all.json"
done
echo ']' >> "$P/all.json"
"$CATALOG" --catalog "$T/catalog" import "$P/all.json" > "$T/import.log" 2>&1 || die "catalog import failed"
start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"
start_payments
start_node phone "$DEVICES/galaxy-s21.json"
# The paid apps the tablet had before appferry: in its first list
for p in game1 game2; do preinstalled tablet $p 1.0; done
start_node tablet "$DEVICES/galaxy-tab-s7.json"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet; do af $n login ana > /dev/null || die "$n login failed"; done
PHONE=$(device_id phone); TABLET=$(device_id tablet)

# The tablet has every program (the free ones pushed to it), and its user
# used them there: their data is the tablet's own (the defaults gone),
# their theme light
for p in notes diary memo album tips game1 game2; do
    case $p in game*) mkdir -p "$T/tablet/settings"; echo '{"theme": "dark"}' > "$T/tablet/settings/$p.json";;
        *) af phone push $p --to "$TABLET" > /dev/null 2>&1 || die "the tablet could not get $p";; esac
    rm -rf "$T/tablet/data/$p"; mkdir -p "$T/tablet/data/$p/notes"
    echo "theme=tablet" > "$T/tablet/data/$p/settings.conf"
    echo "$p: written on the tablet" > "$T/tablet/data/$p/notes/history.log"
    jq '.theme = "light"' "$T/tablet/settings/$p.json" > "$T/s.json" && mv "$T/s.json" "$T/tablet/settings/$p.json"
done
check "the broker has the tablet's list" wait_eq 10 "album diary game1 game2 memo notes tips" \
    afj phone '[.apps[].program] | sort | join(" ")' apps --device "$TABLET"

data () { cat "$T/phone/data/$1/${2:-settings.conf}" 2>/dev/null || echo "(none)"; }
record () { jq -r .state "$T/phone/records/$1.json" 2>/dev/null || echo "(none)"; }
imported () { jq -r '[.data[]? | .state] | join(" ")' "$T/phone/records/$1.json" 2>/dev/null || echo "(none)"; }
theme () { jq -r .theme "$T/phone/settings/$1.json" 2>/dev/null || echo "(none)"; }
told () { afj phone "[.notifications[] | select(.kind == \"$2\" and (.text | startswith(\"$1:\")))] | length" \
              notifications; }
both () { echo "$(told "$1" data) $(told "$1" record)"; }
applied () { echo "$(record "$1") $(theme "$1")"; }

# --- the source online: the package at once, then the tablet's data and record
out=$(af phone get notes --from "$TABLET" --with-data 2>&1); rc=$?
check "get --with-data from the online tablet installs notes" exits 0 $rc true
check "  ... the tablet's data replaces the phone's" wait_eq 10 "theme=tablet" data notes
check "  ... all of it (its history), none of the defaults left" \
    test "$(data notes notes/history.log)" = "notes: written on the tablet"
check "  ... imported once" wait_eq 5 imported imported notes
check "  ... the tablet's install record is applied too (theme light)" wait_eq 10 "applied light" applied notes
check "  ... each shown once in the notifications (data, record)" wait_eq 5 "1 1" both notes
check "  ... the tablet pushed the data to the phone" grep -q "user data of notes goes to device ${PHONE:0:8}" \
    "$T/tablet.log"

# --- the source offline, then online: the data and the record after its login
stop_node tablet
check "get --with-data from the offline tablet does not wait for it" af phone get diary --from "$TABLET" --with-data
check "  ... diary is installed with its defaults" test "$(data diary) $(record diary)" = "theme=default (none)"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "after the tablet logs in, its data replaces the defaults" wait_eq 15 "theme=tablet" data diary
check "  ... imported once, its record applied" wait_eq 10 "imported applied light" \
    bash -c "echo \$(jq -r '[.data[].state] | join(\" \")' '$T/phone/records/diary.json') \
             \$(jq -r .state '$T/phone/records/diary.json') \$(jq -r .theme '$T/phone/settings/diary.json')"
check "  ... shown once" wait_eq 5 "1 1" both diary

# --- a source that pushed and died before its record: its notice comes
# again, and the data is imported once (the first push's)
stop_node tablet
check "get --with-data of memo with the tablet offline" af phone get memo --from "$TABLET" --with-data
mkdir -p "$T/raw/notes"; echo "theme=first" > "$T/raw/settings.conf"; echo "the first push" > "$T/raw/notes/history.log"
tar -C "$T/raw" -cf "$T/raw.tar" settings.conf notes || die "cannot make raw.tar"
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" getdata source ana "$TABLET" "$T/tablet/node.cert_secret" memo "$T/raw.tar" 2>&1)
rc=$?
echo "$out" | sed 's/^/  # /'
check "the source's notice asks for the data; pushes breaking a rule are refused; one is taken" test $rc -eq 0
first=$(echo "$out" | sed -n 's/^# push //p')
check "  ... the phone imports the first push's data" wait_eq 10 "theme=first" data memo
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "the real tablet gets the notice again, sends its data and its record" wait_until 15 \
    grep -q "install record of memo sent" "$T/tablet.log"
check "  ... the phone applies the record" wait_eq 10 "applied light" applied memo
check "  ... and keeps the first push's data: imported once" \
    test "$(data memo) $(imported memo)" = "theme=first imported"
check "  ... by the first push" test -n "$first" -a "$(jq -r '.data[0].push' "$T/phone/records/memo.json")" = "$first"
check "  ... shown once" test "$(told memo data)" = 1
check "  ... the second push's result says why it brought nothing" wait_until 10 \
    grep -q "user data of this get (ask .*) came with push ${first:0:8} already; not imported again" "$T/tablet.log"
check "  ... and logged one import" test "$(grep -c "memo: the user data of device .* was imported" "$T/phone.log")" = 1
ask=$(jq -r .ask "$T/phone/records/memo.json")
stop_node tablet
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" getdata closed ana "$TABLET" "$T/tablet/node.cert_secret" memo "$ask" "$PHONE" 2>&1)
rc=$?
echo "$out" | sed 's/^/  # /'
check "a push for the answered ask is refused (E_ANSWERED)" test $rc -eq 0
start_node tablet "$DEVICES/galaxy-tab-s7.json"

# --- the data and the record come before the GET's own install is done:
# both wait for it (the phone stopped; its GET sent with its key)
stop_node phone
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" getdata get ana "$PHONE" "$T/phone/node.cert_secret" tips "$TABLET" 2>&1)
rc=$?
echo "$out" | sed 's/^/  # /'
check "a GET withData of tips from the phone's key is accepted; the phone is stopped" test $rc -eq 0
check "  ... the tablet sends its data and its record meanwhile" wait_until 10 \
    grep -q "install record of tips sent" "$T/tablet.log"
start_node phone "$DEVICES/galaxy-s21.json"
check "the phone installs tips, then the tablet's data replaces the defaults" wait_eq 15 "theme=tablet" data tips
check "  ... imported once, the record applied" wait_eq 10 "imported applied light" \
    bash -c "echo \$(jq -r '[.data[].state] | join(\" \")' '$T/phone/records/tips.json') \
             \$(jq -r .state '$T/phone/records/tips.json') \$(jq -r .theme '$T/phone/settings/tips.json')"
line () { grep -n "$1" "$T/phone.log" | head -n 1 | cut -d: -f1; }
order=$(echo "$(line "tips 1.0 installed")" "$(line "tips: the user data of device")" "$(line "tips: the install record of")")
check "  ... in that order: the package, the data, the record ($order)" \
    bash -c "set -- $order; [ \$# -eq 3 ] && [ \$1 -lt \$2 ] && [ \$2 -lt \$3 ]"

# --- the source has no data for the program: the record alone, and why
rm -rf "$T/tablet/data/album"
check "get --with-data of album, which has no data on the tablet" af phone get album --from "$TABLET" --with-data
check "  ... the record is applied" wait_eq 10 "applied light" applied album
check "  ... the phone is told no data came, and why" wait_eq 5 1 told album data
out=$(afj phone '.notifications[] | select(.kind == "data" and (.text | startswith("album:"))) | .text' notifications)
check "  ... (the tablet has none)" has "$out" "no user data came from device ${TABLET:0:8}" "not a directory"
check "  ... and album keeps its defaults" test "$(data album) $(imported album)" = "theme=default none"

# --- a paid app: confirmed with the data asked for, the data comes; one
# bought and got without it, then got with it: its data comes then
out=$(af phone get game1 --from "$TABLET" --with-data --confirm-payment tok_approve 2>&1); rc=$?
check "a paid get --with-data, confirmed, installs game1" exits 0 $rc true
check "  ... and the tablet's data follows (PAY_CONFIRM withData)" wait_eq 10 "theme=tablet imported" \
    bash -c "echo \$(cat '$T/phone/data/game1/settings.conf') \$(jq -r '[.data[].state] | join(\" \")' '$T/phone/records/game1.json')"
check "get of game2, paid, without the data" af phone get game2 --from "$TABLET" --confirm-payment tok_approve
check "  ... its record applied, its data the defaults" wait_eq 10 "applied theme=default" \
    bash -c "echo \$(jq -r .state '$T/phone/records/game2.json') \$(cat '$T/phone/data/game2/settings.conf')"
check "get of game2 again, now with the data (the account is entitled)" \
    af phone get game2 --from "$TABLET" --with-data
check "  ... the tablet's data comes: another notice and ask" wait_eq 10 "theme=tablet imported" \
    bash -c "echo \$(cat '$T/phone/data/game2/settings.conf') \$(jq -r '[.data[].state] | join(\" \")' '$T/phone/records/game2.json')"
check "  ... charged once in all for each" test "$(totals | sed 's/ provider.*//')" = "intents=2 charges=2 entitlements=2"

# --- never between people: GET withData naming a contact is refused (403)
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" getdata friend ana "$APPFERRY_PASSWORD" notes 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "a raw GET withData with tokens is refused (E_FORBIDDEN)" test $rc -eq 0
finish
