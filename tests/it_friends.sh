#!/usr/bin/env bash
# Friends (issue 13, S3.1-S3.7, B4) with the real broker, matcher and
# contacts service: three accounts whose address books (tests/friends) make
# ana and bob friends (two common contacts) and cy nobody's (one); contacts
# uploaded as OPRF tokens; the friends each one sees; pull with every
# visibility; push accepted, refused, and queued while the target is
# offline; one-tap install onto an Android phone and an iPhone (store
# link), and a paid program refused; blocking; a raw client that tries to
# read another account's tokens, push to a non-friend and pass the
# evaluation allowance; and no number, in any form (text, hex, UTF-16,
# plain hashes), in the broker's store.
. "$(dirname "$0")/lib.sh"

F="$AF_SRC/tests/friends"
"$CATALOG" --catalog "$T/catalog" import "$AF_SRC/data/catalog/manifest.json" > "$T/import.log" 2>&1 \
    || die "catalog import failed"
printf 'contacts\n    eval_limit = 250\n' > "$T/broker.cfg"
start_broker broker -c "$T/broker.cfg" --catalog "$T/catalog"
start_matcher matcher "$T/catalog"
"$CONTACTS" -b "$WORKERS_EP" -k "$BROKER_CERT" -c "$T/contacts.cert" -K "$T/contacts-key/oprf.key" \
    --heartbeat $HB >> "$T/contacts.log" 2>&1 &
PIDS+=($!)
wait_until 10 test -s "$T/contacts.cert" || die "the contacts worker made no certificate"
cp "$T/contacts.cert" "$BROKER_DIR/workers/contacts.cert"
check "the broker takes the contacts worker for its service 'contacts'" \
    wait_until 10 grep -q "ready for 'contacts'" "$BROKER_DIR.log"

start_node a "$DEVICES/galaxy-s21.json"
preinstalled a chess 5.0.1      # paid (2.99 EUR): bought in the phone's store, not through appferry
start_node b "$DEVICES/galaxy-a10.json"
start_node c "$DEVICES/galaxy-s21.json"
for pair in a:ana b:bob c:cyd; do
    n=${pair%%:*} account=${pair#*:}
    af $n register $account > /dev/null && af $n login $account > /dev/null || die "$account: no login"
done

# --- contacts, privately
out=$(af a contacts import "$F/ana.vcf" --country DE 2>&1)
check "ana imports her vCards: 5 contacts, 5 numbers" has "$out" "Imported 5 contacts (5 numbers"
check "  ... and keeps the names and numbers on the device only" \
    test "$(jq -r '[.contacts[].name] | join(",")' "$T/a/contacts.json")" = "Bob Beta,Cy Gamma,Xavier One,Xenia Two,Xaver Three"
check "  ... each number in E.164 with its token" \
    test "$(jq -r '.contacts[0].numbers[0] + " " + (.contacts[0].tokens[0] | length | tostring)' "$T/a/contacts.json")" \
         = "+4915110000002 64"
af b contacts import "$F/bob.vcf" --country DE > /dev/null || die "bob's import failed"
out=$(af c contacts import "$F/cy.csv" --country DE 2>&1)
check "cy imports a CSV" has "$out" "Imported 3 contacts"
af a contacts me "0151 10000001" --country DE > /dev/null || die "ana's own number"
af b contacts me "+49 151 10000002" > /dev/null || die "bob's own number"
out=$(af c contacts me "015110000003" --country DE 2>&1)
check "cy registers her own number, as a token" has "$out" "+4915110000003 is registered"
check "the same number written differently gives the same token on every device" \
    test "$(jq -r '.me[0].token' "$T/a/contacts.json")" = "$(jq -r '.contacts[0].tokens[0]' "$T/b/contacts.json")"

# --- friendship: two common contacts
check "ana's friends: bob (two common contacts), not cy (one)" \
    test "$(afj a '[.friends[].name] | join(",")' friends)" = "Bob Beta"
check "bob's friends: ana, by the name bob gave her" test "$(afj b '[.friends[].name] | join(",")' friends)" = "Ana Alpha"
check "cy has no friends (one common contact with each)" test "$(afj c '.friends | length' friends)" = 0

# --- share permissions and pull
af a sync --install weixin,notes > "$T/a-install.out" 2>&1 || die "ana's installs failed"
wait_until 10 bash -c "'$CLI' --home '$T/a' --json apps | jq -e '.apps | length == 3'" || die "ana's list"
out=$(af b friend-apps "Ana Alpha" 2>&1); rc=$?
check "pull from a friend who shares nothing: E_NOT_SHARED" has "$out" "E_NOT_SHARED"
NOT_FRIENDS=$(af c friend-apps "Ana" 2>&1)
check "pull from a non-friend with nothing public: E_NOT_FRIENDS" has "$NOT_FRIENDS" "E_NOT_FRIENDS"
out=$(af c friend-apps "Nobody" 2>&1)
check "  ... and for a number no account has, word for word the same answer" test "$out" = "$NOT_FRIENDS"
af a share weixin --friends > /dev/null && af a share notes --public > /dev/null \
    && af a share chess --friends > /dev/null || die "share failed"
check "share --list: each app's visibility" \
    test "$(afj a '[.apps[] | .program + "=" + .share] | join(",")' share --list)" = "chess=friends,notes=public,weixin=friends"
check "a friend pulls the apps shared with friends and the public ones" \
    wait_eq 10 "chess=friends,notes=public,weixin=friends" afj b '[.apps[] | .program + "=" + .share] | join(",")' \
    friend-apps "Ana Alpha"
check "  ... with their versions" test "$(afj b '.apps[] | select(.program == "weixin") | .versionName' \
    friend-apps "Ana Alpha")" = "8.0.48"
check "  ... by her number too, written as bob's book has it" \
    test "$(afj b '[.apps[].program] | join(",")' friend-apps "0151 10000001")" = "chess,notes,weixin"
check "a non-friend pulls only the public ones" test "$(afj c '[.apps[].program] | join(",")' friend-apps Ana)" = notes
af a share notes --private > /dev/null
check "made private, the public app is gone for the non-friend: E_NOT_FRIENDS again" \
    test "$(af c friend-apps Ana 2>&1)" = "$NOT_FRIENDS"
check "  ... and for the friend" test "$(afj b '[.apps[].program] | join(",")' friend-apps "Ana Alpha")" = "chess,weixin"
out=$(af a friend-apps "Cy Gamma" 2>&1)
check "friendship goes both ways: ana cannot pull from cy either" has "$out" "E_NOT_FRIENDS"
# Visibility is the account's: set on one device, it shows an app that is
# on another of its devices
preinstalled a2 maps 3.1.0
start_node a2 "$DEVICES/galaxy-tab-s7.json"
af a2 login ana > /dev/null || die "ana's tablet: no login"
af a share maps --friends > /dev/null
check "shared from ana's phone, the app on her tablet is pulled by her friend" \
    wait_eq 10 "chess,maps,weixin" afj b '[.apps[].program] | sort | join(",")' friend-apps "Ana Alpha"
stop_node a2

# --- push: accepted, queued while offline, refused
out=$(af a recommend weixin --to "Bob Beta" 2>&1)
check "ana recommends weixin to bob" has "$out" "Done: recommended to Bob Beta"
check "  ... bob's inbox shows it, from the name in his own book" \
    wait_eq 10 "Ana Alpha weixin 8.0.48" afj b '.inbox[-1] | .from + " " + .program + " " + .versionName' inbox
out=$(af a recommend weixin --to "Cy Gamma" 2>&1)
check "a recommendation to a non-friend of an app not public: E_NOT_FRIENDS" has "$out" "E_NOT_FRIENDS"
af a share notes --public > /dev/null
check "to a non-friend, an app that is public: accepted" \
    has "$(af a recommend notes --to "Cy Gamma" 2>&1)" "Done: recommended to Cy Gamma"
check "  ... cy's inbox shows it" wait_eq 10 notes afj c '.inbox[-1].program' inbox
af a share notes --private > /dev/null
out=$(af a recommend atlas --to "Bob Beta" 2>&1)
check "an app on none of her devices cannot be recommended" has "$out" "atlas is on none of your devices"
stop_node b
out=$(af a recommend chess --to "Bob Beta" 2>&1)
check "a recommendation while bob's only device is offline is accepted" has "$out" "Done: recommended"
start_node b "$DEVICES/galaxy-a10.json"
check "  ... and queued: bob's device gets it when it connects" \
    wait_eq 10 "chess" afj b '.inbox[-1].program' inbox
check "  ... once, kept on disk" test "$(jq length "$T/b/inbox.json")" = 2
af b refuse "Ana Alpha" > /dev/null || die "refuse failed"
out=$(af a recommend weixin --to "Bob Beta" 2>&1)
check "refused by bob: the sender is told, with E_REFUSED" has "$out" "E_REFUSED" "does not accept recommendations"
check "  ... and nothing reaches bob" test "$(afj b '.inbox | length' inbox)" = 2
af b accept "Ana Alpha" > /dev/null && af b refuse --all > /dev/null || die "refuse --all failed"
out=$(af a recommend weixin --to "Bob Beta" 2>&1)
check "bob refuses everyone: refused too" has "$out" "E_REFUSED"
af b refuse --none > /dev/null
out=$(af a recommend weixin --to "Bob Beta" 2>&1)
check "refuse --none: accepted again" has "$out" "Done: recommended"

# --- one-tap install, on this device
out=$(af b friend-install "Ana Alpha" weixin 2>&1); rc=$?
check "bob installs ana's weixin on his Android phone through the push path" test $rc -eq 0
check "  ... the package the catalog picks for bob's phone, not ana's" \
    test "$(afj b '.installed[] | select(.program == "weixin") | .hash' installed)" \
       = "$("$CATALOG" --catalog "$T/catalog" --json resolve weixin "$DEVICES/galaxy-a10.json" | jq -r .package.hash)"
start_node b2 "$DEVICES/iphone-13.json"
af b2 login bob > /dev/null && cp "$T/b/contacts.json" "$T/b2/contacts.json"
out=$(af b2 friend-install "Ana Alpha" weixin 2>&1)
check "on bob's iPhone: the store link" has "$out" "store-link" "https://apps.apple.com/app/wechat/id414478124"
out=$(af b2 friend-install "Ana Alpha" chess 2>&1)
check "a paid program is refused: E_PAYMENT_REQUIRED" has "$out" "E_PAYMENT_REQUIRED" "costs 2.99"
# --- one-tap install from the inbox: the recommendation's sender, by the
# tokens of her numbers that came with it (bob's inbox, on his iPhone)
cp "$T/b/inbox.json" "$T/b2/inbox.json"
n=$(afj b2 '[.inbox[].program] | index("weixin") + 1' inbox)
out=$(af b2 inbox install "$n" 2>&1)
check "inbox install N: ana's weixin for bob's iPhone, its store link" \
    has "$out" "store-link" "https://apps.apple.com/app/wechat/id414478124"
n=$(afj b2 '[.inbox[].program] | index("chess") + 1' inbox)
out=$(af b2 inbox install "$n" 2>&1); rc=$?
check "  ... a paid one from the inbox: E_PAYMENT_REQUIRED" exits 1 $rc has "$out" "E_PAYMENT_REQUIRED"
out=$(af b2 inbox install 99 2>&1); rc=$?
check "  ... no such recommendation: refused, said so" exits 1 $rc has "$out" "there is no recommendation 99 in the inbox"
out=$(af b2 inbox install x 2>&1); rc=$?
check "  ... N not a number: usage" exits non-zero $rc has "$out" "inbox [install N]"
start_node b3 "$DEVICES/windows-pc.json"
af b3 login bob > /dev/null && cp "$T/b/contacts.json" "$T/b3/contacts.json"
af a share notes --friends > /dev/null
out=$(af b3 friend-install "Ana Alpha" notes 2>&1)
check "nothing of the program fits bob's PC: E_NO_FIT, with the matcher's reason" \
    has "$out" "E_NO_FIT" "no package of notes fits this device: "
af a share notes --private > /dev/null
stop_node b3
out=$(af c friend-install "Ana" weixin 2>&1)
check "a non-friend cannot install a friends-only app: E_NOT_FRIENDS" has "$out" "E_NOT_FRIENDS"
n=$(afj c '[.inbox[].program] | index("notes") + 1' inbox)
check "cy installs from her inbox ana's notes, public when recommended and private now: E_NOT_FRIENDS" \
    has "$(af c inbox install "$n" 2>&1)" "E_NOT_FRIENDS"

# --- blocking ends a friendship
af b block "Ana Alpha" > /dev/null || die "block failed"
check "bob blocks ana: no longer friends, on either side" \
    test "$(afj a '.friends | length' friends) $(afj b '.friends | length' friends)" = "0 0"
check "  ... and ana's pull is refused" has "$(af b friend-apps "Ana Alpha" 2>&1)" "E_NOT_FRIENDS"
af b unblock "Ana Alpha" > /dev/null
check "unblocked: friends again" test "$(afj a '[.friends[].name] | join(",")' friends)" = "Bob Beta"

# --- a raw client, as an account of its own
af c register mallory > /dev/null
ANA_TOKEN=$(jq -r '.me[0].token' "$T/a/contacts.json")
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" friends mallory "$APPFERRY_PASSWORD" "$ANA_TOKEN" 250 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "a raw client reads no tokens, pushes to no non-friend, stops at the evaluation allowance" test $rc -eq 0
check "  ... the refusal is logged" grep -q "refused CONTACTS_EVAL of 100 from 'mallory'" "$BROKER_DIR.log"
check "  ... and nothing reached ana from it" test "$(afj a '.inbox | length' inbox)" = 0

# --- nothing the store holds is a number or a name
af b stop > /dev/null 2>&1; kill -TERM "$BROKER_PID"; wait_until 10 bash -c "! kill -0 $BROKER_PID 2>/dev/null"
leaks=""
for n in 15110000001 15110000002 15110000003 15120000001 15120000002 15120000003 15129999999; do
    for form in "+49$n" "49$n" "0$n" "$n" "0${n:0:3} ${n:3}" "+49 ${n:0:3} ${n:3}"; do
        grep -qaF -- "$form" "$BROKER_DIR"/store/*.mdb "$BROKER_DIR.log" && leaks="$leaks $form"
    done
done
for name in "Ana Alpha" "Bob Beta" "Cy Gamma" "Xavier" "Xenia" "Nobody"; do
    grep -qaF -- "$name" "$BROKER_DIR"/store/*.mdb "$BROKER_DIR.log" && leaks="$leaks $name"
done
check "the broker's store and log hold none of the numbers (digits, E.164, with or without +) or names" \
    test -z "$leaks"
[ -n "$leaks" ] && echo "  # found:$leaks"
# ... nor their plain hashes (SHA-256, SHA-512, BLAKE2b-512 of the E.164
# text, the brute-forceable kind an OPRF replaces), nor the text in hex or
# UTF-16: searched in a hex dump of the store
od -An -v -tx1 "$BROKER_DIR"/store/*.mdb | tr -d ' \n' > "$T/store.hex"
hex () { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
utf16 () { printf '%s' "$1" | od -An -v -tx1 | tr -d '\n' | sed 's/ \([0-9a-f][0-9a-f]\)/\100/g; s/ //g'; }
hashed=""
for n in 15110000001 15110000002 15110000003 15120000001 15120000002 15120000003; do
    for form in "+49$n" "49$n"; do
        for digest in "$(printf '%s' "$form" | sha256sum)" "$(printf '%s' "$form" | sha512sum)" \
                      "$(printf '%s' "$form" | b2sum)" "$(hex "$form")" "$(utf16 "$form")"; do
            grep -q "${digest%% *}" "$T/store.hex" && hashed="$hashed $form"
        done
        grep -qaiF -- "$(hex "$form")" "$BROKER_DIR"/store/*.mdb && hashed="$hashed $form(hex text)"
    done
done
check "  ... nor their SHA-256, SHA-512 or BLAKE2b hashes, nor the numbers in hex or UTF-16" test -z "$hashed"
[ -n "$hashed" ] && echo "  # found:$hashed"
check "  ... (the hex search finds a token where there is one)" \
    grep -q "$(jq -r '.contacts[0].tokens[0]' "$T/a/contacts.json" | cut -c1-64)" "$T/store.hex"

# --- friends/min_common is the broker's: at 1, cy and ana (one contact in
# common) are friends, and cy's friends list names ana as cy's book does
printf 'contacts\n    eval_limit = 250\nfriends\n    min_common = 1\n' > "$T/broker.cfg"
start_broker broker -c "$T/broker.cfg" --catalog "$T/catalog"
check "with friends/min_common = 1, cy's one common contact with ana makes them friends" \
    wait_eq 15 "Ana" afj c '[.friends[].name] | join(",")' friends
check "  ... (the check finds a number where there is one)" grep -qaF "4915110000001" "$T/a/contacts.json"
finish
