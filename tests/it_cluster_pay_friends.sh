#!/usr/bin/env bash
# A friend's app when the friend's account lives on another broker of a
# cluster (issue 14; SPEC 5.47 "From a contact"): two brokers and an etcd,
# ana's account on one, bob's on the other. bob browses what ana shares
# and gets it, free and paid (his account pays, at his broker's payments
# worker), through FORWARD; the notice to ana's devices would be a write
# into another broker's shard, which is not built: the GET succeeds all the
# same, ana is not told, and bob's broker logs why.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd.sh"
. "$(dirname "$0")/cluster.sh"
CONTACTS="$AF_BIN/contacts/appferry-contacts"
F="$AF_SRC/tests/friends"

UNIVERSAL="$AF_SRC/data/catalog/packages/notes-2.1.0-universal.tar"
cat > "$T/paid.json" <<EOF
[ { "program": "game1", "platform": "android", "versionCode": 1, "versionName": "1.1", "minSdk": 21,
    "price": 499, "currency": "EUR", "file": "$UNIVERSAL" },
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

# A contacts worker at both brokers, one OPRF key
start_contacts () {
    WORKERS_EP=${WK[$1]}
    "$CONTACTS" -b "$WORKERS_EP" -k "$BROKER_CERT" -c "$T/contacts.cert" -K "$T/contacts-key/oprf.key" \
        --heartbeat $HB >> "$T/contacts$1.log" 2>&1 &
    PIDS+=($!)
}
start_contacts 1
wait_until 10 test -s "$T/contacts.cert" || die "the contacts worker made no certificate"
for i in 1 2; do cp "$T/contacts.cert" "$T/b$i/workers/contacts.cert"; done
start_contacts 2
for i in 1 2; do
    wait_until 10 grep -q "ready for 'contacts'" "$T/b$i.log" || die "broker $i has no contacts worker"
done

# ana on broker 1, bob on broker 2
owners > "$T/owners"
account_on () {   # an account name with prefix $1 whose shard broker $2 owns
    local i id; id=$(cat "$T/b$2/broker.id")
    for i in $(seq 1 200); do
        grep -qx "$(shard "$1$i") $id" "$T/owners" && { echo "$1$i"; return; }
    done
}
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

NODES_EP=$ALL
preinstalled a game1 1.1
preinstalled a free1 1.0
start_node a "$DEVICES/galaxy-tab-s7.json"
start_node b "$DEVICES/galaxy-s21.json"
for pair in a:$ANA b:$BOB; do
    n=${pair%%:*} account=${pair#*:}
    af $n register $account > /dev/null && af $n login $account > /dev/null || die "$account: no login"
done
af a contacts import "$F/ana.vcf" --country DE > /dev/null && af a contacts me "0151 10000001" --country DE > /dev/null \
    && af b contacts import "$F/bob.vcf" --country DE > /dev/null && af b contacts me "+49 151 10000002" > /dev/null \
    || die "contacts import failed"
check "ana ($ANA, broker 1) and bob ($BOB, broker 2) are friends over the brokers" \
    test "$(afj b '[.friends[].name] | join(",")' friends)" = "Ana Alpha"
wait_until 10 bash -c "'$CLI' --home '$T/a' --json apps | jq -e '.apps | length == 2'" || die "ana's list"
af a share game1 --friends > /dev/null && af a share free1 --friends > /dev/null || die "share failed"

check "bob browses what ana shares, with price and fit for his phone" \
    test "$(afj b '[.apps[] | "\(.program):\(.price):\(.fit)"] | sort | join(",")' browse --friend "Ana Alpha")" \
       = "free1:0:package,game1:499:package"
check "bob gets ana's free app across the brokers" af b get free1 --from "Ana Alpha"
check "  ... installed" wait_until 10 test -f "$T/b/installed/free1.json"
notice=$(af b --json get game1 --from "Ana Alpha")
check "a paid one: the notice names ana's account as the source (her device is not known here)" \
    test "$(jq -r '.paymentRequired | "\(.sourceAccount) \(.deviceId) \(.price)"' <<< "$notice")" = "$ANA  499"
check "  ... confirmed, installed" af b get game1 --from "Ana Alpha" --confirm-payment tok_approve
check "  ... one charge, on bob's account" \
    test "$(totals)" = "intents=1 charges=1 entitlements=1 provider_charges=1" \
         -a "$(afj b '[.purchases[].program] | join(",")' purchases)" = game1
check "  ... the purchase did not wait for the notice: bob's broker says ana is not told, and why" \
    grep -q "from '$ANA': its devices are not told (its account is on another broker" "$T/b2.log"
sleep 1
check "  ... and ana's device was told nothing (not built across brokers)" \
    test "$(afj a '[.notifications[] | select(.kind | startswith("friend-"))] | length' notifications)" = 0
finish
