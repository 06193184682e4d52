#!/usr/bin/env bash
# Paid apps from another device of the account (S0.3-S0.7, SPEC 5.38,
# 5.39, 8.9): browse shows each app's price and fit; a free app installs
# from the server's store; a paid one needs a confirmed payment, charged at
# most once whatever is repeated or killed; a declined, transient or
# unconfirmed payment charges nothing; an account that paid never pays
# again on any of its devices; another account cannot confirm its intents;
# the confirmation prompt on a terminal pays only when answered.
. "$(dirname "$0")/lib.sh"

paid_catalog 7
start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"

start_payments

start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
start_node old "$DEVICES/galaxy-a10.json"
# The tablet has the paid apps from before appferry (its platform's store):
# their install records are in the list it sends at its first login
for g in 1 2 3 4 5 6 7; do preinstalled tablet game$g 1.$g; done
preinstalled tablet chess 5.0.1
af phone register ana > /dev/null || die "register failed"
for n in phone tablet old; do af $n login ana > /dev/null || die "$n login failed"; done
PHONE=$(device_id phone); TABLET=$(device_id tablet)

# ... and the free ones, pushed to it
for p in notes free1; do
    af phone push "$p" --to "$TABLET" > /dev/null 2>&1 || die "the tablet could not get $p"
done
check "the broker has the tablet's list" wait_eq 10 "chess free1 game1 game2 game3 game4 game5 game6 game7 notes" \
    afj phone '[.apps[].program] | sort | join(" ")' apps --device "$TABLET"

# --- browse: what the tablet has, for the phone
doc=$(af phone --json browse --device "$TABLET")
check "browse shows a paid app's price and currency" \
    test "$(jq -r '.apps[] | select(.program == "game1") | "\(.price) \(.currency) \(.fit)"' <<< "$doc")" = "499 EUR package"
check "  ... and a free one as free" test "$(jq -r '.apps[] | select(.program == "notes") | .price' <<< "$doc")" = 0
out=$(af phone browse --device "$TABLET")
check "  ... in the text form too" has "$out" "game1" "4.99 EUR; fits here: 1.1" "notes" "free; fits here"

# --- a free app: installed at once from the server's store, the source told
check "get of a free app installs it" af phone get free1 --from "$TABLET"
check "  ... the package that fits the phone is installed" test -f "$T/phone/installed/free1.json"
check "  ... and the tablet was told it was asked for" wait_until 5 bash -c \
    "'$CLI' --home '$T/tablet' --json notifications | jq -e '.notifications[] | select(.kind == \"requested\" and .text == \"free1 $PHONE\")'"
check "  ... nothing was charged" test "$(totals)" = "intents=0 charges=0 entitlements=0 provider_charges=0"

# --- a paid app without a confirmation: the notice, nothing installed
out=$(af phone get game1 --from "$TABLET" < /dev/null 2>&1); rc=$?
check "get of a paid app without a token is refused with the notice" \
    exits 1 $rc has "$out" "game1 costs 4.99 EUR" "--confirm-payment"
notice=$(af phone --json get game1 --from "$TABLET")
INTENT1=$(jq -r .paymentRequired.intent <<< "$notice")
check "  ... the notice carries program, price, currency and intent" \
    test "$(jq -r '.paymentRequired | "\(.program) \(.price) \(.currency)"' <<< "$notice")" = "game1 499 EUR" -a ${#INTENT1} -eq 32
check "  ... asked twice, it is one intent" test "$(jq -r .paymentRequired.intent <<< "$(af phone --json get game1 --from "$TABLET")")" = "$INTENT1"
check "  ... nothing installed" test ! -f "$T/phone/installed/game1.json"

# --- another account cannot confirm it (even naming ana's account)
af phone register eve > /dev/null 2>&1 || true
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" pay eve "$APPFERRY_PASSWORD" ana "$INTENT1" 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "a raw client of another account cannot confirm ana's intent" test $rc -eq 0
check "  ... nothing was charged" test "$(totals)" = "intents=1 charges=0 entitlements=0 provider_charges=0"

# --- paid, approved: charged once, installed, the source told it was paid
check "get --confirm-payment tok_approve installs the paid app" \
    af phone get game1 --from "$TABLET" --confirm-payment tok_approve
check "  ... installed" test -f "$T/phone/installed/game1.json"
check "  ... one charge, one entitlement, under the notice's intent" \
    test "$(totals)" = "intents=1 charges=1 entitlements=1 provider_charges=1"
check "  ... the tablet was told it was paid for" wait_until 5 bash -c \
    "'$CLI' --home '$T/tablet' --json notifications | jq -e '.notifications[] | select(.kind == \"paid\" and .text == \"game1 $PHONE\")'"
check "  ... purchases lists it" test "$(afj phone '.purchases[] | "\(.program) \(.price) \(.currency) \(.intent)"' purchases)" \
    = "game1 499 EUR $INTENT1"

# --- declined: refused with the reason, nothing charged
out=$(af phone get game2 --from "$TABLET" --confirm-payment tok_decline 2>&1); rc=$?
check "a declined payment is refused with the reason" \
    exits 1 $rc has "$out" "declined" "nothing was charged"
check "  ... nothing installed, nothing charged" \
    test ! -f "$T/phone/installed/game2.json" -a "$(totals)" = "intents=2 charges=1 entitlements=1 provider_charges=1"

# --- a transient failure, then success under the same intent
out=$(af phone get game3 --from "$TABLET" --confirm-payment tok_transient 2>&1); rc=$?
check "a transient failure is refused, saying to confirm again" \
    exits 1 $rc has "$out" "confirm again"
INTENT3=$(af phone --json get game3 --from "$TABLET" | jq -r .paymentRequired.intent)
check "  ... confirmed again, it is paid" af phone get game3 --from "$TABLET" --confirm-payment tok_transient
check "  ... under the same intent, charged once" \
    test "$(afj phone '.purchases[] | select(.program == "game3") | .intent' purchases)" = "$INTENT3" \
         -a "$(totals)" = "intents=3 charges=2 entitlements=2 provider_charges=2"

# --- a confirmation sent twice at once: one charge
INTENT4=$(af phone --json get game4 --from "$TABLET" | jq -r .paymentRequired.intent)
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" payconfirm ana "$APPFERRY_PASSWORD" "$INTENT4" 3 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "the same confirmation three times: each answered with the transfer" test $rc -eq 0
check "  ... one charge" test "$(totals)" = "intents=4 charges=3 entitlements=3 provider_charges=3"

# --- SIGKILL of the payments worker between the charge and its record
kill "$PAYMENTS_PID"; wait "$PAYMENTS_PID" 2>/dev/null
start_payments --crash-at charge
af phone --timeout 60 get game5 --from "$TABLET" --confirm-payment tok_approve > "$T/game5.out" 2>&1 &
GET_PID=$!
check "the worker dies after the processor charged" wait_until 10 bash -c "! kill -0 $PAYMENTS_PID 2>/dev/null"
check "  ... the processor charged, the ledger has not recorded it" \
    test "$(totals)" = "intents=5 charges=3 entitlements=3 provider_charges=4"
start_payments
check "  ... restarted, it resolves the charge by its intent (one charge, the entitlement)" \
    wait_eq 10 "intents=5 charges=4 entitlements=4 provider_charges=4" totals
check "  ... the log says so" grep -q "1 unrecorded charges resolved" "$T/payments.log"
check "  ... the one get, asking again by itself if need be, ends paid" wait "$GET_PID"
check "  ... and the phone installs it" wait_until 10 test -f "$T/phone/installed/game5.json"
check "  ... still one charge" test "$(totals)" = "intents=5 charges=4 entitlements=4 provider_charges=4"

# --- SIGKILL of the broker while the processor charges: the answer is lost
# with the broker; asked again, the account is entitled (no second charge)
INTENT_SLOW=$(af phone --json get chess --from "$TABLET" | jq -r .paymentRequired.intent)
af phone --timeout 60 get chess --from "$TABLET" --confirm-payment tok_slow > "$T/slow.out" 2>&1 &
GET_PID=$!
wait_until 10 grep -q "confirming intent $INTENT_SLOW" "$T/payments.log"
kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
start_broker broker --catalog "$T/catalog"       # same data directory, same endpoints
check "the broker killed while the processor charges: the charge is recorded once" wait_eq 10 \
    "intents=6 charges=5 entitlements=5 provider_charges=5" totals
check "  ... the phone's one get, sent again on the new session, gets chess without a second charge" \
    wait "$GET_PID"
check "  ... installed" wait_until 10 test -f "$T/phone/installed/chess.json"
check "  ... under the intent it confirmed, once" test "$(totals)" = "intents=6 charges=5 entitlements=5 provider_charges=5" \
    -a "$(afj phone '.purchases[] | select(.program == "chess") | .intent' purchases)" = "$INTENT_SLOW"

# --- the entitlement on another device of the account: no second charge
check "the old phone gets game1 without paying (the account paid)" af old get game1 --from "$TABLET" < /dev/null
check "  ... installed" test -f "$T/old/installed/game1.json"
check "  ... nothing charged" test "$(totals)" = "intents=6 charges=5 entitlements=5 provider_charges=5"
check "  ... browse shows it as paid" \
    test "$(afj old '.apps[] | select(.program == "game1") | .entitled' browse --device "$TABLET")" = true

# --- the processor does not answer: refused, nothing charged
out=$(af phone get game6 --from "$TABLET" --confirm-payment tok_timeout 2>&1); rc=$?
check "a processor timeout is refused, saying nothing was charged" \
    exits 1 $rc has "$out" "timed-out" "nothing was charged"
check "  ... nothing charged" test "$(totals)" = "intents=7 charges=5 entitlements=5 provider_charges=5"

# --- no confirmation within the notice's time limit (S0.7)
kill "$PAYMENTS_PID"; wait "$PAYMENTS_PID" 2>/dev/null
start_payments --intent-ttl 1
INTENT6=$(af phone --json get game7 --from "$TABLET" | jq -r .paymentRequired.intent)
sleep 1.5
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" payconfirm ana "$APPFERRY_PASSWORD" "$INTENT6" 1 402 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "a confirmation after the notice expired is refused" exits 0 $rc has "$out" "expired"
check "  ... nothing charged, nothing installed" \
    test "$(totals)" = "intents=8 charges=5 entitlements=5 provider_charges=5" -a ! -f "$T/phone/installed/game7.json"

# --- the confirmation prompt on a terminal (script gives the CLI a pty):
# an empty answer pays nothing, a token pays
kill "$PAYMENTS_PID"; wait "$PAYMENTS_PID" 2>/dev/null
start_payments
prompt () { printf '%s\n' "$1" | script -qec "'$CLI' --home '$T/phone' get game2 --from '$TABLET'" /dev/null; }
out=$(prompt ""); rc=$?
check "on a terminal, get asks for a token; no answer: not paid" \
    exits 1 $rc has "$out" "game2 costs 4.99 EUR" "Payment token (empty: cancel):" "Not paid; nothing was charged"
check "  ... nothing charged, nothing installed" \
    test "$(totals)" = "intents=9 charges=5 entitlements=5 provider_charges=5" -a ! -f "$T/phone/installed/game2.json"
out=$(prompt tok_approve); rc=$?
check "  ... answered with a token: paid and installed" exits 0 $rc has "$out" "Payment token" "installed"
check "  ... one charge, under the same notice" \
    test "$(totals)" = "intents=9 charges=6 entitlements=6 provider_charges=6" -a -f "$T/phone/installed/game2.json"

# --- a free app with the source offline: the package does not wait for it
stop_node tablet
check "with the tablet offline, the old phone still gets notes" af old get notes --from "$TABLET"
check "  ... installed" test -f "$T/old/installed/notes.json"

finish
