#!/usr/bin/env bash
# A friend's app when the friend's account lives on another broker of a
# cluster (issue 14; SPEC 5.47 "From a contact"): two brokers and an etcd,
# ana's account on one, bob's on the other. bob browses what ana shares
# and gets it, free and paid (his account pays, at his broker's payments
# worker), through FORWARD; ana's device that has the app is told (SPEC
# 5.47 "The friend told"): a notice intent in bob's shard, committed with
# the transfer's push, delivered to ana's broker by FORWARD notice and
# queued there once by its key. Exactly once across a SIGKILL: of bob's
# broker after his PUSH_ACCEPTED, with ana's broker stalled so the notice
# had no answer (bob's broker, back on its store, sends it again; ana's
# applies it once), and of ana's broker in the same place (bob's broker
# takes ana's shard over and applies the pending intent itself).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd.sh"
. "$(dirname "$0")/cluster.sh"

UNIVERSAL="$AF_SRC/data/catalog/packages/notes-2.1.0-universal.tar"
game () { printf '  { "program": "%s", "platform": "android", "versionCode": 1, "versionName": "1.1", "minSdk": 21,
    "price": 499, "currency": "EUR", "file": "%s" },\n' "$1" "$UNIVERSAL"; }
cat > "$T/paid.json" <<EOF
[ $(game game1) $(game game2) $(game game3)
  { "program": "free1", "platform": "android", "versionCode": 1, "versionName": "1.0", "minSdk": 21,
    "file": "$UNIVERSAL" } ]
EOF
"$CATALOG" --catalog "$T/catalog" import "$AF_SRC/data/catalog/manifest.json" > "$T/import.log" 2>&1 \
    && "$CATALOG" --catalog "$T/catalog" import "$T/paid.json" >> "$T/import.log" 2>&1 \
    || die "catalog import failed"
SHARDS=16 TTL=3 MEMBER_OPTS=(--catalog "$T/catalog")
cluster_start 2
settled () { all_owned && spread; }
check "every shard gets an owner, spread over the two brokers" wait_until 30 settled

# A contacts worker at every broker, one OPRF key
cluster_contacts

# ana on broker 1, bob on broker 2
ANA=$(account_on ana 1); BOB=$(account_on bob 2)
[ -n "$ANA" ] && [ -n "$BOB" ] || die "no account names for the two brokers"

# bob's broker has the matcher and the payments worker (bob's account pays there)
start_matcher_at 2 matcher "$T/catalog"
"$PAYMENTS" -b "${WK[2]}" -k "$BROKER_CERT" -c "$T/payments.cert" -l "$T/ledger" --heartbeat $HB \
    >> "$T/payments.log" 2>&1 &
PIDS+=($!)
wait_until 10 test -s "$T/payments.cert" || die "payments made no certificate"
cp "$T/payments.cert" "$T/b2/workers/payments.cert"
wait_until 10 grep -q "ready for 'payments'" "$T/b2.log" || die "payments not ready"

for g in game1 game2 game3; do preinstalled a $g 1.1; done
preinstalled a free1 1.0
friends_across game1 game2 game3 free1

# ana's notices from friends: "KIND PROGRAM" each, sorted
told () { afj a '[.notifications[] | select(.kind | startswith("friend-")) | "\(.kind) \(.text | split(" ")[0])"]
                 | sort | join(",")' notifications; }
check "bob browses what ana shares, with price and fit for his phone" \
    test "$(afj b '[.apps[] | "\(.program):\(.price):\(.fit)"] | sort | join(",")' browse --friend "Ana Alpha")" \
       = "free1:0:package,game1:499:package,game2:499:package,game3:499:package"
check "bob gets ana's free app across the brokers" af b get free1 --from "Ana Alpha"
check "  ... installed" wait_until 10 test -f "$T/b/installed/free1.json"
check "  ... and ana's device, on the other broker, is told who asked (her broker found the device)" wait_until 10 \
    bash -c "'$CLI' --home '$T/a' --json notifications | jq -e '.notifications[] | select(.kind == \"friend-requested\"
             and .text == \"free1 $(device_id b) $BOB\")'"
notice=$(af b --json get game1 --from "Ana Alpha")
check "a paid one: the notice names ana's account as the source (her device is not known here)" \
    test "$(jq -r '.paymentRequired | "\(.sourceAccount) \(.deviceId) \(.price)"' <<< "$notice")" = "$ANA  499"
check "  ... confirmed, installed" af b get game1 --from "Ana Alpha" --confirm-payment tok_approve
check "  ... one charge, on bob's account" \
    test "$(totals)" = "intents=1 charges=1 entitlements=1 provider_charges=1" \
         -a "$(afj b '[.purchases[].program] | join(",")' purchases)" = game1
check "  ... ana is told it was paid for" wait_eq 10 "friend-paid game1,friend-requested free1" told
check "bob gets game1 again: entitled, the same intent's key" af b get game1 --from "Ana Alpha"
check "  ... ana's broker had the key: not told again" \
    wait_until 10 grep -q "the notice of '$BOB' for '$ANA' about game1: told before" "$T/b2.log"
# Two more payment notices, while both brokers run (a GET from a contact
# needs ana's broker for its lookups; a PAY_CONFIRM does not)
I2=$(af b --json get game2 --from "Ana Alpha" | jq -r .paymentRequired.intent)
I3=$(af b --json get game3 --from "Ana Alpha" | jq -r .paymentRequired.intent)
[ ${#I2} = 32 ] && [ ${#I3} = 32 ] || die "no payment notices for game2 and game3"

# --- bob's broker killed after his PUSH_ACCEPTED, the notice unanswered:
# ana's broker stalled while bob confirms (its FORWARD gets no answer),
# then bob's broker killed, ana's resumed, bob's started again on its store
kill -STOP "${PID[1]}"
out=$("$RAW" "${EP[2]}" "$BROKER_CERT" payconfirm $BOB "$APPFERRY_PASSWORD" "$I2" 1 2>&1); rc=$?
kill -9 "${PID[2]}"; wait "${PID[2]}" 2>/dev/null
kill -CONT "${PID[1]}"
check "with ana's broker stalled, bob's confirmation of game2 is answered with the transfer" test $rc -eq 0
start_member 2
check "  ... bob's broker, killed and started again, sends the notice again from its store" wait_until 20 \
    grep -q "an unresolved notice of '$BOB' to '$ANA' sent again" "$T/b2.log"
check "  ... ana is told, once" wait_eq 20 "friend-paid game1,friend-paid game2,friend-requested free1" told

# --- ana's broker killed with the notice unanswered: bob's broker takes
# ana's shard over and applies its pending intent there
check "  ... (both brokers follow each other's shards in sync again)" wait_until 30 all_in_sync
kill -STOP "${PID[1]}"
out=$("$RAW" "${EP[2]}" "$BROKER_CERT" payconfirm $BOB "$APPFERRY_PASSWORD" "$I3" 1 2>&1); rc=$?
kill -9 "${PID[1]}"; wait "${PID[1]}" 2>/dev/null
check "with ana's broker stalled, then killed, bob's confirmation of game3 is answered with the transfer" \
    test $rc -eq 0
ana_moved () { test "$(owner "$(shard $ANA)")" = "$(cat "$T/b2/broker.id")"; }
check "  ... bob's broker takes ana's shard over" wait_until $((TTL + 10)) ana_moved
check "  ... and tells ana's device (now on bob's broker) from the pending intent, once" \
    wait_eq 20 "friend-paid game1,friend-paid game2,friend-paid game3,friend-requested free1" told
check "  ... three charges in all, each once" test "$(totals)" = "intents=3 charges=3 entitlements=3 provider_charges=3"
sleep 1                                         # what would come twice, has come
check "ana was told each once" \
    test "$(told)" = "friend-paid game1,friend-paid game2,friend-paid game3,friend-requested free1"
finish
