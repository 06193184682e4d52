#!/usr/bin/env bash
# Exactly one charge per paid request, whatever is SIGKILLed when (issue
# 14, SPEC 8.9). The payments worker dies (a) after the intent is recorded
# as being charged, before the processor is asked, (b) after the processor
# charged, before the ledger records it, (c) after the ledger recorded the
# charge, before the answer (its --crash-at: a deterministic point in the
# first batch that charges); the broker dies (d) after it forwarded the
# confirmation, while the processor charges (tok_slow takes a second),
# (e) after the worker answered, before the node got it (the broker is
# stopped while the processor charges, so the answer waits unread, then
# killed); (f) the payments worker is down, so the broker answers the GET
# 503 until it is back; (g) the source device is offline when the app is
# paid for, and the broker is killed after the asker was answered: the
# notice waits in its outbox and it is told once when it comes back.
# After each: everything restarts, and the one CLI invocation
# that asked ends paid: the node itself sends the GET or the confirmation
# again (a 5xx, no answer, a new session: with back-off, under the same
# intent), and the ledger holds exactly one charge for the intent, under
# the intent's ID, with its entitlement; the phone has the app; the source
# device was told once.
. "$(dirname "$0")/lib.sh"

UNIVERSAL="$AF_SRC/data/catalog/packages/notes-2.1.0-universal.tar"
jq -n --arg f "$UNIVERSAL" '[range(1; 8) | { program: "game\(.)", platform: "android", versionCode: 1,
    versionName: "1.\(.)", minSdk: 21, price: 499, currency: "EUR", file: $f }]' > "$T/paid.json"
"$CATALOG" --catalog "$T/catalog" import "$T/paid.json" > "$T/import.log" 2>&1 || die "catalog import failed"
start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"

# restart_broker [options]: the same data directory and endpoints; the
# workers come back
restart_broker () {
    start_broker broker --catalog "$T/catalog" "$@"
    wait_until 10 bash -c "[ \$(grep -c \"ready for 'payments'\" '$BROKER_DIR.log') -gt $READY ]" \
        || die "payments not ready again"
    READY=$(grep -c "ready for 'payments'" "$BROKER_DIR.log")
}
start_payments

start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
for g in 1 2 3 4 5 6 7; do preinstalled tablet game$g 1.$g; done
af phone register ana > /dev/null || die "register failed"
for n in phone tablet; do af $n login ana > /dev/null || die "$n login failed"; done
PHONE=$(device_id phone); TABLET=$(device_id tablet)
wait_eq 10 "game1 game2 game3 game4 game5 game6 game7" afj phone '[.apps[].program] | sort | join(" ")' apps --device "$TABLET" \
    > /dev/null || die "the broker does not have the tablet's list"

# notice N: the payment notice's intent for gameN (nothing charged yet)
notice () { af phone --json get "game$1" --from "$TABLET" < /dev/null | jq -r .paymentRequired.intent; }
# buy N TOKEN: the phone asks for gameN and confirms its notice, in the
# background (BUY_PID); one invocation, whatever dies meanwhile
buy () {
    af phone --timeout 60 get "game$1" --from "$TABLET" --confirm-payment "$2" > "$T/buy.out" 2>&1 < /dev/null &
    BUY_PID=$!
}
# settle: that one invocation's answer: the node retried until it was paid
settle () {
    wait "$BUY_PID" && return 0
    sed 's/^/  # /' "$T/buy.out"
    return 1
}
# retried: the CLI showed that the node asked again, and why
retried () { grep -q "trying again" "$T/buy.out" || { sed 's/^/  # /' "$T/buy.out"; return 1; }; }
# told N: how many times the tablet was told gameN was paid for ("paid",
# or "entitled" when the phone's retry found it paid already)
told () {
    afj tablet "[.notifications[] | select((.kind == \"paid\" or .kind == \"entitled\") and .text == \"game$1 $PHONE\")] | length" notifications
}
# paid_once N INTENT CHARGES: after the step, exactly one charge for the
# intent (the ledger's and the processor's totals are CHARGES), its
# entitlement under that intent, the app installed, the source told once
paid_once () {
    local n=$1 intent=$2 charges=$3
    check "  ... the one get asks until it is answered" settle
    check "  ... one charge for the intent: the ledger and the processor agree" \
        wait_eq 10 "intents=$n charges=$charges entitlements=$charges provider_charges=$charges" totals
    check "  ... the entitlement is the intent's" \
        test "$(afj phone ".purchases[] | select(.program == \"game$n\") | .intent" purchases)" = "$intent"
    check "  ... installed" wait_until 10 test -f "$T/phone/installed/game$n.json"
    check "  ... the tablet was told it was paid for" wait_eq 5 1 told "$n"
    sleep 0.5
    check "  ... once" test "$(told "$n")" = 1
}

# --- (a) the worker dies after the intent is recorded, before the charge
INTENT=$(notice 1)
kill "$PAYMENTS_PID"; wait "$PAYMENTS_PID" 2>/dev/null
start_payments --crash-at intent
buy 1 tok_approve
check "(a) the worker dies after recording the intent, before asking the processor" \
    wait_until 10 bash -c "! kill -0 $PAYMENTS_PID 2>/dev/null"
check "  ... nothing charged" test "$(totals)" = "intents=1 charges=0 entitlements=0 provider_charges=0"
start_payments
check "  ... restarted, it finds the intent uncharged (open again)" \
    grep -q "1 unrecorded charges resolved" "$T/payments.log"
paid_once 1 "$INTENT" 1

# --- (b) the worker dies after the processor charged, before recording it
INTENT=$(notice 2)
kill "$PAYMENTS_PID"; wait "$PAYMENTS_PID" 2>/dev/null
start_payments --crash-at charge
buy 2 tok_approve
check "(b) the worker dies after the processor charged, before the ledger recorded it" \
    wait_until 10 bash -c "! kill -0 $PAYMENTS_PID 2>/dev/null"
check "  ... the processor charged, the ledger has not recorded it" \
    test "$(totals)" = "intents=2 charges=1 entitlements=1 provider_charges=2"
start_payments
check "  ... restarted, it resolves the charge by the intent's ID" \
    wait_eq 10 "intents=2 charges=2 entitlements=2 provider_charges=2" totals
paid_once 2 "$INTENT" 2

# --- (c) the worker dies after recording the charge, before the answer
INTENT=$(notice 3)
kill "$PAYMENTS_PID"; wait "$PAYMENTS_PID" 2>/dev/null
start_payments --crash-at record
buy 3 tok_approve
check "(c) the worker dies after the ledger recorded the charge, before answering" \
    wait_until 10 bash -c "! kill -0 $PAYMENTS_PID 2>/dev/null"
check "  ... charged and recorded once, no one told yet" \
    test "$(totals)" = "intents=3 charges=3 entitlements=3 provider_charges=3" -a "$(told 3)" = 0
start_payments
paid_once 3 "$INTENT" 3

# --- (d) the broker dies after forwarding the confirmation
INTENT=$(notice 4)
buy 4 tok_slow
wait_until 10 grep -q "confirming intent $INTENT" "$T/payments.log" || die "the confirmation did not reach the worker"
kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
check "(d) the broker killed after forwarding the confirmation: the worker records the charge" \
    wait_eq 10 "intents=4 charges=4 entitlements=4 provider_charges=4" totals
restart_broker
paid_once 4 "$INTENT" 4
check "  ... the CLI showed the node sending it again on the new session" retried

# --- (e) the broker dies after the worker answered, before the node got it
INTENT=$(notice 5)
buy 5 tok_slow
wait_until 10 grep -q "confirming intent $INTENT" "$T/payments.log" || die "the confirmation did not reach the worker"
kill -STOP "$BROKER_PID"
wait_until 10 grep -q "intent $INTENT paid" "$T/payments.log"
check "(e) the worker answered a stopped broker: paid and recorded" \
    test "$(totals)" = "intents=5 charges=5 entitlements=5 provider_charges=5"
kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
check "  ... the broker killed before reading the answer: the phone has not got it" \
    test ! -f "$T/phone/installed/game5.json" -a "$(told 5)" = 0
restart_broker
paid_once 5 "$INTENT" 5
check "  ... the CLI showed the node sending it again on the new session" retried

# --- (f) the payments worker is down: the GET is answered 503 (after the
# broker's request_timeout, 1 s here) until it is back
printf 'broker\n    request_timeout = 1000\n' > "$T/broker.cfg"
kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
restart_broker -c "$T/broker.cfg"
kill "$PAYMENTS_PID"; wait "$PAYMENTS_PID" 2>/dev/null
# (asked at once: the phone may not be logged in again yet; get waits for
# its session, up to its deadline)
buy 6 tok_approve
check "(f) the payments worker down: the CLI shows the broker's 503 and that the node tries again" \
    wait_until 15 grep -q "GET: E_UNAVAILABLE.*trying again in" "$T/buy.out"
check "  ... more than once, with back-off" wait_until 15 grep -q "(attempt 3)" "$T/buy.out"
check "  ... nothing charged meanwhile" test "$(totals)" = "intents=5 charges=5 entitlements=5 provider_charges=5"
start_payments
check "  ... the worker back, the same get ends paid" settle
check "  ... one charge" wait_eq 10 "intents=6 charges=6 entitlements=6 provider_charges=6" totals
check "  ... installed" wait_until 10 test -f "$T/phone/installed/game6.json"
check "  ... the tablet was told it was paid for, once" wait_eq 5 1 told 6

# --- (g) the source offline: told through its outbox, after a broker kill
stop_node tablet
buy 7 tok_approve
check "(g) with the tablet offline, the phone buys game7" settle
check "  ... installed" wait_until 10 test -f "$T/phone/installed/game7.json"
kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
restart_broker
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "  ... the broker killed after the answer, the tablet back: it is told it was paid for" wait_eq 10 1 told 7
sleep 1
check "  ... once" test "$(told 7)" = 1

finish
