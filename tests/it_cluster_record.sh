#!/usr/bin/env bash
# A friend's install record when the friend's account lives on another
# broker of a cluster (issue 14, S0.5 with S3; SPEC 5.47a "From a
# contact", diagram 10.17): two brokers and an etcd, ana's account on one,
# bob's on the other. bob gets apps ana shares; ana's broker opens the ask
# with the forwarded notice, ana's tablet answers it there, and the RECORD
# comes back to bob's broker as an intent (FORWARD record), queued once in
# bob's phone's outbox. Checked: ana online (her settings and start-up
# entries applied on bob's phone); ana offline past get/record_wait (bob is
# told 475, his install keeps its defaults); ana's broker killed with -9
# after it acknowledged her record, with bob's broker stalled so the
# FORWARD had no answer (ana's broker, started again on its store, sends
# it again; bob's phone applies the record once); ana's late answers
# change nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd.sh"
. "$(dirname "$0")/cluster.sh"

WAIT=8                      # get/record_wait on every broker, seconds
P="$T/pkg"
mkdir -p "$P"
echo '[' > "$P/all.json"
for p in tips diary album; do
    d="$P/$p"; mkdir -p "$d/app"; echo "$p 1" > "$d/app/VERSION"
    printf '%s\n' '{"settings": {"theme": "dark", "font.size": "12"}, "startup": ["daily", "sync"]}' > "$d/appferry.json"
    tar -C "$d" -cf "$P/$p.tar" app appferry.json || die "cannot make $p.tar"
    [ $p = tips ] || echo ',' >> "$P/all.json"
    printf '{ "program": "%s", "platform": "android", "versionCode": 1, "versionName": "1.0", "minSdk": 21, "file": "%s.tar" }\n' \
        $p $p >> "$P/all.json"
done
echo ']' >> "$P/all.json"
"$CATALOG" --catalog "$T/catalog" import "$P/all.json" > "$T/import.log" 2>&1 || die "catalog import failed"

SHARDS=16 TTL=3 MEMBER_OPTS=(--catalog "$T/catalog") CLUSTER_CFG=$'get\n    record_wait = '$WAIT$'\n'
cluster_start 2
settled () { all_owned && spread; }
check "every shard gets an owner, spread over the two brokers" wait_until 30 settled

# A contacts worker at every broker, one OPRF key
cluster_contacts

# ana on broker 1, bob on broker 2
ANA=$(account_on ana 1); BOB=$(account_on bob 2)
[ -n "$ANA" ] && [ -n "$BOB" ] || die "no account names for the two brokers"
start_matcher_at 2 matcher "$T/catalog"

# ana's tablet has the apps as its user changed them: theme light (font.size
# as installed), and the "sync" start-up entry removed
for p in tips diary album; do
    mkdir -p "$T/a/installed" "$T/a/settings" "$T/a/startup"
    jq -n --arg p $p '{program: $p, versionName: "1.0", versionCode: 1, installedAt: 1700000000000,
                       method: "builtin", files: [], settings: {theme: "dark", "font.size": "12"},
                       startup: ["daily", "sync"]}' > "$T/a/installed/$p.json"
    echo '{"theme": "light", "font.size": "12"}' > "$T/a/settings/$p.json"
    touch "$T/a/startup/$p@daily"
done
friends_across tips diary album

setting () { jq -r --arg k "$2" '.[$k] // "(none)"' "$T/b/settings/$1.json" 2>/dev/null || echo "(no file)"; }
state () { jq -r .state "$T/b/records/$1.json" 2>/dev/null || echo "(none)"; }
startup () { ls -A "$T/b/startup" 2>/dev/null | grep "^$1@" | tr '\n' ' '; }
told () { afj b "[.notifications[] | select(.kind == \"record\" and (.text | startswith(\"$1:\")))] | length" notifications; }

# --- ana online: bob's install at once, her record applied after it
check "bob gets tips from ana, whose account is on the other broker" af b get tips --from "Ana Alpha"
check "  ... ana's tablet sends its record to her broker, which sends it to bob's" wait_until 10 \
    grep -q "the install record of '$ANA' for '$BOB' about tips: queued" "$T/b1.log"
check "  ... and it is applied on bob's phone" wait_eq 10 applied state tips
check "  ... ana's theme (light), the package's font.size (12)" \
    test "$(setting tips theme) $(setting tips font.size)" = "light 12"
check "  ... and her start-up entries (daily only: she removed sync)" test "$(startup tips)" = "tips@daily "
check "  ... shown once in bob's notifications" wait_eq 5 1 told tips

# --- ana offline past get/record_wait: her broker tells bob's, he keeps the defaults
stop_node a
check "bob gets diary with ana's tablet offline" af b get diary --from "Ana Alpha"
check "  ... past get/record_wait bob is told" wait_eq $((WAIT + 15)) told state diary
out=$(afj b '.notifications[] | select(.kind == "record" and (.text | startswith("diary:"))) | .text' notifications)
check "  ... that ana's tablet was not online in time and diary keeps its defaults" \
    has "$out" "was not online within $WAIT s" "installed with its defaults"
check "  ... and diary has them" test "$(setting diary theme)" = dark

# --- ana's broker killed with -9 after it acknowledged her record, before
# bob's broker answered its FORWARD (bob's broker stalled meanwhile)
check "bob gets album with ana's tablet offline" af b get album --from "Ana Alpha"
check "  ... ana's broker opened the ask with the notice" wait_until 10 \
    grep -q "for the record of album from $TABLET of '$ANA'" "$T/b1.log"
kill -STOP "${PID[2]}"
out=$("$RAW" "${EP[1]}" "$BROKER_CERT" record "$ANA" "$TABLET" "$T/a/node.cert_secret" album ok 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
kill -9 "${PID[1]}"; wait "${PID[1]}" 2>/dev/null
kill -CONT "${PID[2]}"
check "with bob's broker stalled, ana's broker acknowledged her record of album" test $rc -eq 0
start_member 1
check "  ... ana's broker, killed and started again, sends it again from its store" wait_until 30 \
    grep -q "the install record of '$ANA' to '$BOB' sent again was answered" "$T/b1.log" "$T/b2.log"
check "  ... bob's phone applies it" wait_eq 20 "applied raw" \
    bash -c "echo \$(jq -r .state '$T/b/records/album.json' 2>/dev/null) \$(jq -r .theme '$T/b/settings/album.json')"
check "  ... once" wait_eq 5 1 told album
sleep 1                                         # what would come twice, has come
check "  ... and still once" test "$(told album)" = 1

# --- ana's tablet back: her answers to the closed asks change nothing
NODES_EP=$ALL
start_node a "$DEVICES/galaxy-tab-s7.json"
check "ana's late answers are refused (the asks are closed)" wait_until 15 \
    grep -q "ask for the install record of diary is closed" "$T/a.log"
check "  ... diary keeps its defaults on bob's phone, album its one record" \
    test "$(state diary) $(setting diary theme) $(told album)" = "told dark 1"
finish
