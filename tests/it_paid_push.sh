#!/usr/bin/env bash
# A paid program is never offered free (S0.4, S0.6; SPEC 5.16, 5.31, 5.47):
# a push of it to another device of the account, an install on the device
# itself (a push to "self", as `sync --install` sends) and an automatic
# sync pick are refused with 402 (price, currency, how to buy) until the
# account has bought it, and nothing is offered; with the payments service
# stopped they fail with 503 and nothing installs; once bought (get
# --confirm-payment), a push of it to a third device installs without a
# second charge, and the automatic device installs it at its next sync.
# Free programs are untouched. Real broker, matcher, payments worker, nodes.
. "$(dirname "$0")/lib.sh"

UNIVERSAL="$AF_SRC/data/catalog/packages/notes-2.1.0-universal.tar"
cat > "$T/paid.json" <<JSON
[ { "program": "game1", "platform": "android", "versionCode": 1, "versionName": "1.1", "minSdk": 21,
    "price": 499, "currency": "EUR", "file": "$UNIVERSAL" },
  { "program": "game2", "platform": "android", "versionCode": 1, "versionName": "1.2", "minSdk": 21,
    "price": 150, "currency": "USD", "file": "$UNIVERSAL" },
  { "program": "free1", "platform": "android", "versionCode": 1, "versionName": "1.0", "minSdk": 21,
    "file": "$UNIVERSAL" } ]
JSON
"$CATALOG" --catalog "$T/catalog" import "$AF_SRC/data/catalog/manifest.json" > "$T/import.log" 2>&1 \
    && "$CATALOG" --catalog "$T/catalog" import "$T/paid.json" >> "$T/import.log" 2>&1 \
    || die "catalog import failed"
# Worker requests time out after 2 s (not 10), for the payments-stopped case
printf 'broker\n    request_timeout = 2000\n' > "$T/broker.cfg"
start_broker broker -c "$T/broker.cfg" --catalog "$T/catalog"
start_matcher matcher "$T/catalog"

start_payments

start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
start_node old "$DEVICES/galaxy-a10.json"
# The tablet has game1 and game2 from before appferry (bought in its
# platform's store): install records its node sends at its first login
preinstalled tablet game1 1.1 && preinstalled tablet game2 1.2
af phone register ana > /dev/null || die "register failed"
for n in phone tablet old; do af $n login ana > /dev/null || die "$n login failed"; done
PHONE=$(device_id phone); TABLET=$(device_id tablet); OLD=$(device_id old)
af tablet push free1 --to "$PHONE" > /dev/null || die "push free1 failed"
check "the broker has the tablet's list, paid apps included" wait_eq 10 "game1 game2" \
    afj phone '[.apps[].program] | sort | join(" ")' apps --device "$TABLET"

# --- a push of a paid program to another device, before any purchase
out=$(af tablet push game1 --to "$PHONE" 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "a push of a paid program the account has not bought is refused" \
    has "$rc:$out" "1:" "refused" "payment required" "game1 costs 4.99 EUR" "appferry get game1 --from $TABLET"
doc=$(af tablet --json push game1 --to "$PHONE" --no-wait)
check "  ... per target: state refused, code 402, no version offered" \
    test "$(jq -r '.targets[0] | "\(.state) \(.code) \(.versionName)"' <<< "$doc")" = "refused 402 "
af tablet push notes --to "$PHONE" > /dev/null || die "push notes failed"
check "  ... nothing was offered: the phone gets a later free push, never game1" \
    bash -c "test -f '$T/phone/installed/notes.json' -a ! -e '$T/phone/installed/game1.json' \
             && ! grep -q 'receiving game1' '$T/phone.log'"
check "  ... nothing charged, no payment notice made" \
    test "$(totals)" = "intents=0 charges=0 entitlements=0 provider_charges=0"
check "  ... the broker logs why" grep -q "game1 not offered to $PHONE: 402 not bought" "$BROKER_DIR.log"

# --- on the device itself (a push to "self", as install and sync picks)
out=$(af phone sync --install game1 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "an install of a paid program on the device itself is refused" \
    has "$rc:$out" "1:" "refused" "game1 costs 4.99 EUR"
check "  ... not installed" test ! -e "$T/phone/installed/game1.json"
out=$(af old sync --install-all 2>&1)
check "sync --install-all installs the free pick, refuses the paid ones" \
    bash -c "test -f '$T/old/installed/free1.json' -a ! -e '$T/old/installed/game1.json' -a ! -e '$T/old/installed/game2.json'"
check "  ... naming each price" has "$out" "game1 costs 4.99 EUR" "game2 costs 1.50 USD"

# --- an automatic device is not given what the account did not buy
start_node auto "$DEVICES/galaxy-a10.json" --sync-mode auto
af auto login ana > /dev/null || die "auto login failed"
AUTO=$(device_id auto)
check "automatic mode installs the free apps the others have" \
    wait_until 20 test -f "$T/auto/installed/free1.json" -a -f "$T/auto/installed/notes.json"
check "  ... but not the paid ones (402 for each)" \
    wait_until 10 bash -c "grep -q 'game1 not offered to $AUTO: 402' '$BROKER_DIR.log' \
                        && grep -q 'game2 not offered to $AUTO: 402' '$BROKER_DIR.log'"
check "  ... nothing of them installed" test ! -e "$T/auto/installed/game1.json" -a ! -e "$T/auto/installed/game2.json"

# --- the payments service stopped: 503, never a free install
kill "$PAYMENTS_PID"; wait "$PAYMENTS_PID" 2>/dev/null
doc=$(af tablet --json push game1 --to "$PHONE" --no-wait 2>&1)
check "with the payments service stopped, the target fails with 503" \
    test "$(jq -r '.targets[0] | "\(.state) \(.code)"' <<< "$doc")" = "failed 503"
check "  ... saying to try again later" has "$(jq -r '.targets[0].reason' <<< "$doc")" "try again later"
check "  ... a free push still works" af tablet push notes --to "$OLD"
check "  ... game1 not installed" test ! -e "$T/phone/installed/game1.json"
start_payments

# --- bought on the phone: the GET flow charges once and transfers
check "get --confirm-payment buys game1 and installs it on the phone" \
    af phone get game1 --from "$TABLET" --confirm-payment tok_approve
check "  ... installed" wait_until 10 test -f "$T/phone/installed/game1.json"
check "  ... one charge" test "$(totals)" = "intents=1 charges=1 entitlements=1 provider_charges=1"

# --- entitled: a push to a third device installs, with no second charge
out=$(af tablet push game1 --to "$OLD" 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "a push of the bought program to a third device installs it" \
    test $rc -eq 0 -a -f "$T/old/installed/game1.json"
check "  ... no second charge, no new intent" \
    test "$(totals)" = "intents=1 charges=1 entitlements=1 provider_charges=1"
check "  ... purchases lists it once" test "$(afj old '[.purchases[].program] | join(" ")' purchases)" = game1
check "the automatic device installs it now (the phone's install was announced)" \
    wait_until 20 test -f "$T/auto/installed/game1.json"
check "  ... but still not game2, which nobody bought" test ! -e "$T/auto/installed/game2.json"
out=$(af phone push game2 --to "$OLD" 2>&1)
check "and game2 is still refused" has "$out" "game2 costs 1.50 USD"
check "  ... still one charge in all" test "$(totals)" = "intents=1 charges=1 entitlements=1 provider_charges=1"

finish
