#!/usr/bin/env bash
# An app from a friend's device, free or paid (issue 14 with issue 13;
# S0.3-S0.7 between people; SPEC 5.47): ana and bob are friends (two common
# contacts, tests/friends), cy is nobody's. browse --friend shows what a
# contact shares with the asker (friends-only to a friend, public to anyone),
# each with its price and fit for the asker's device; get --from CONTACT
# installs a free app from the server's store and needs a payment for a
# paid one, charged once to the asker's account (whose other devices then
# never pay again), with the friend's device told once; what is private, or
# not shared with a non-friend, is refused with friend-apps' refusals; the
# app's user data never moves between people.
. "$(dirname "$0")/lib.sh"
F="$AF_SRC/tests/friends"

paid_catalog 2
start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"
"$CONTACTS" -b "$WORKERS_EP" -k "$BROKER_CERT" -c "$T/contacts.cert" -K "$T/contacts-key/oprf.key" \
    --heartbeat $HB >> "$T/contacts.log" 2>&1 &
PIDS+=($!)
wait_until 10 test -s "$T/contacts.cert" || die "the contacts worker made no certificate"
cp "$T/contacts.cert" "$BROKER_DIR/workers/contacts.cert"
wait_until 10 grep -q "ready for 'contacts'" "$BROKER_DIR.log" || die "contacts not ready"
"$PAYMENTS" -b "$WORKERS_EP" -k "$BROKER_CERT" -c "$T/payments.cert" -l "$T/ledger" --heartbeat $HB \
    >> "$T/payments.log" 2>&1 &
PIDS+=($!)
wait_until 10 test -s "$T/payments.cert" || die "payments made no certificate"
cp "$T/payments.cert" "$BROKER_DIR/workers/payments.cert"
wait_until 10 grep -q "ready for 'payments'" "$BROKER_DIR.log" || die "payments not ready"

# ana's phone has the apps (from its platform's store); bob asks from his
# phone and then his tablet; cy is a friend of nobody
start_node a "$DEVICES/galaxy-tab-s7.json"
for g in 1 2; do preinstalled a game$g 1.$g; done
preinstalled a free1 1.0
preinstalled a notes 2.1.0
start_node b "$DEVICES/galaxy-s21.json"
start_node b2 "$DEVICES/galaxy-a10.json"
start_node c "$DEVICES/galaxy-s21.json"
for pair in a:ana b:bob b2:bob c:cyd; do
    n=${pair%%:*} account=${pair#*:}
    { af $n register $account || true; } > /dev/null 2>&1
    af $n login $account > /dev/null || die "$account: no login on $n"
done
af a contacts import "$F/ana.vcf" --country DE > /dev/null && af a contacts me "0151 10000001" --country DE > /dev/null \
    && af b contacts import "$F/bob.vcf" --country DE > /dev/null && af b contacts me "+49 151 10000002" > /dev/null \
    && af b2 contacts import "$F/bob.vcf" --country DE > /dev/null \
    && af c contacts import "$F/cy.csv" --country DE > /dev/null && af c contacts me "015110000003" --country DE > /dev/null \
    || die "contacts import failed"
check "ana and bob are friends, cy is not" \
    test "$(afj b '[.friends[].name] | join(",")' friends) $(afj c '.friends | length' friends)" = "Ana Alpha 0"
wait_until 10 bash -c "'$CLI' --home '$T/a' --json apps | jq -e '.apps | length == 4'" || die "ana's list"
af a share game1 --friends > /dev/null && af a share free1 --friends > /dev/null && af a share notes --public > /dev/null \
    || die "share failed"                       # game2 stays private
ANA=$(device_id a); BOB=$(device_id b)

# --- browse --friend
doc=$(af b --json browse --friend "Ana Alpha")
check "a friend browses what ana shares with friends and publicly, not the private app" \
    test "$(jq -r '[.apps[].program] | sort | join(",")' <<< "$doc")" = "free1,game1,notes"
check "  ... a paid one with its price and currency, and that it fits bob's phone" \
    test "$(jq -r '.apps[] | select(.program == "game1") | "\(.price) \(.currency) \(.fit) \(.share)"' <<< "$doc")" \
       = "499 EUR package friends"
check "  ... a free one as free" test "$(jq -r '.apps[] | select(.program == "free1") | .price' <<< "$doc")" = 0
out=$(af b browse --friend "Ana Alpha")
check "  ... in the text form too" has "$out" "Ana Alpha shares with you" "game1" "4.99 EUR; fits here: 1.1" "free1"
check "a non-friend browses only the public app" test "$(afj c '[.apps[].program] | join(",")' browse --friend Ana)" = notes
af a share notes --private > /dev/null
out=$(af c browse --friend Ana 2>&1); rc=$?
check "  ... nothing public: E_NOT_FRIENDS" exits 1 $rc has "$out" "E_NOT_FRIENDS"
check "  ... word for word the answer for a number no account has" test "$out" = "$(af c browse --friend Nobody 2>&1)"
out=$(af a browse --friend "Xavier One" 2>&1); rc=$?
check "a contact with no account: E_NOT_FRIENDS" exits 1 $rc has "$out" "E_NOT_FRIENDS"
out=$(af b browse --friend "Nobody Known" 2>&1); rc=$?
check "a name not in the book is refused on the device" exits 1 $rc has "$out" "not in this device's address book"

# --- refusals of get --from CONTACT
out=$(af b get game2 --from "Ana Alpha" 2>&1); rc=$?
check "a friend's private app is refused: E_NOT_SHARED" exits 1 $rc has "$out" "E_NOT_SHARED" "does not share game2"
out=$(af c get game1 --from Ana 2>&1); rc=$?
check "a non-friend's friends-only app is refused: E_NOT_FRIENDS" exits 1 $rc has "$out" "E_NOT_FRIENDS"
out=$(af b get game1 --from "Ana Alpha" --with-data 2>&1); rc=$?
check "--with-data from a contact is refused: user data never moves between people" \
    exits 1 $rc has "$out" "never moves between people"
check "  ... nothing asked, nothing charged" test "$(totals)" = "intents=0 charges=0 entitlements=0 provider_charges=0"

# --- free from a friend: the server's package, ana's phone told once
mkdir -p "$T/a/data/free1" && echo "ana's" > "$T/a/data/free1/from-ana"     # her user data: it stays hers
check "bob gets ana's free app" af b get free1 --from "Ana Alpha"
check "  ... installed on bob's phone: the package that fits it, from the server's store" \
    test "$(afj b '.installed[] | select(.program == "free1") | .hash' installed)" \
       = "$("$CATALOG" --catalog "$T/catalog" --json resolve free1 "$DEVICES/galaxy-s21.json" | jq -r .package.hash)"
check "  ... ana's phone is told a friend installed it" wait_until 5 bash -c \
    "'$CLI' --home '$T/a' --json notifications | jq -e '.notifications[] | select(.kind == \"friend-requested\" and .text == \"free1 $BOB bob\")'"
check "  ... nothing charged" test "$(totals)" = "intents=0 charges=0 entitlements=0 provider_charges=0"
check "  ... ana's phone sends its install record, applied on bob's (SPEC 5.47a)" wait_eq 10 applied \
    bash -c "jq -r .state '$T/b/records/free1.json' 2>/dev/null"
check "  ... settings and start-up entries only, never user data: bob's has none of ana's" \
    test ! -e "$T/b/data/free1/from-ana"

# --- paid from a friend: bob's account pays, once
out=$(af b get game1 --from "Ana Alpha" < /dev/null 2>&1); rc=$?
check "a friend's paid app without a token: the payment notice, from a friend" \
    exits 1 $rc has "$out" "game1 costs 4.99 EUR" "your account pays, from a friend: ana" "--confirm-payment"
notice=$(af b --json get game1 --from "Ana Alpha")
INTENT=$(jq -r .paymentRequired.intent <<< "$notice")
check "  ... the intent records the source: ana's account and her phone" \
    test "$(jq -r '.paymentRequired | "\(.sourceAccount) \(.deviceId) \(.price)"' <<< "$notice")" = "ana $ANA 499"
check "bob confirms: installed" af b get game1 --from "Ana Alpha" --confirm-payment tok_approve
check "  ... installed on bob's phone" test -f "$T/b/installed/game1.json"
check "  ... one charge, on bob's account, under the notice's intent" \
    test "$(totals)" = "intents=1 charges=1 entitlements=1 provider_charges=1" \
         -a "$(afj b '.purchases[] | "\(.program) \(.intent)"' purchases)" = "game1 $INTENT" \
         -a "$(afj a '.purchases | length' purchases)" = 0
check "  ... ana's phone is told a friend paid for it" wait_until 5 bash -c \
    "'$CLI' --home '$T/a' --json notifications | jq -e '.notifications[] | select(.kind == \"friend-paid\" and .text == \"game1 $BOB bob\")'"
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" payconfirm bob "$APPFERRY_PASSWORD" "$INTENT" 2 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "the same confirmation twice more: each answered with the transfer" test $rc -eq 0
check "  ... no second charge" test "$(totals)" = "intents=1 charges=1 entitlements=1 provider_charges=1"

# --- the entitlement on bob's other device: no second charge; ana told
# once for that device too (its own notice and ask: it gets her record)
check "bob's tablet gets game1 from ana without paying (his account paid)" af b2 get game1 --from "Ana Alpha" < /dev/null
check "  ... installed" test -f "$T/b2/installed/game1.json"
check "  ... nothing charged" test "$(totals)" = "intents=1 charges=1 entitlements=1 provider_charges=1"
check "  ... browse shows it as paid" \
    test "$(afj b2 '.apps[] | select(.program == "game1") | .entitled' browse --friend "Ana Alpha")" = true
sleep 1                                         # what would come, has come
B2=$(device_id b2)
told=$(afj a '[.notifications[] | select(.kind | startswith("friend-")) | "\(.kind) \(.text)"] | sort' notifications)
check "ana's phone was told once about free1, and about game1 once per device of bob's that asked (by item)" \
    test "$(jq 'length == (unique | length)' <<< "$told")" = true -a \
         "$(jq --arg b "$BOB" --arg t "$B2" '[index("friend-requested free1 \($b) bob"), index("friend-paid game1 \($b) bob"),
              index("friend-entitled game1 \($t) bob")] | all(. != null)' <<< "$told")" = true
check "  ... and bob's tablet got her record of game1" wait_eq 10 applied bash -c "jq -r .state '$T/b2/records/game1.json' 2>/dev/null"

finish
