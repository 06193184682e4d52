#!/usr/bin/env bash
# Durability: the broker killed with SIGKILL and restarted keeps every
# account and device; nodes notice, log in again by key and see the same
# device IDs; the password still works.
. "$(dirname "$0")/lib.sh"

start_broker broker
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
start_node iphone "$DEVICES/iphone-13.json"
check "register ana" af phone register ana
APPFERRY_PASSWORD="bob's password" af tablet register bob >/dev/null || not_ok "register bob"
for n in phone tablet iphone; do check "log in $n" af $n login ana; done
before=$(afj phone '[.devices[].id] | sort | join(",")' devices --refresh)
check "three devices before the crash" test "$(echo "$before" | tr ',' '\n' | wc -l)" = 3

kill -9 "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null
check "nodes notice the broker is gone" wait_eq 5 false afj phone .connected status
start_broker broker          # same data directory, same endpoints

for n in phone tablet iphone; do
    check "$n logs in again by itself" wait_eq 10 true afj $n .loggedIn status
done
check "the same three devices after the restart" \
    wait_eq 5 "$before" afj phone '[.devices[].id] | sort | join(",")' devices --refresh
check "all three online again" wait_eq 5 3 afj iphone '[.devices[] | select(.online)] | length' devices
check "device descriptions survived" \
    test "$(afj phone '.devices[] | select(.platform == "ios") | .model' devices --refresh)" = "iPhone 13 (iPhone14,5)"
out=$(af phone register bob 2>&1)
check "account bob survived" has "$out" E_ACCOUNT_EXISTS
check "ana's password still works" af tablet login ana
out=$(APPFERRY_PASSWORD="wrong password" af tablet login ana 2>&1)
check "and a wrong one is still refused" has "$out" E_BAD_PASSWORD

# A second crash right after a write: the write is there
start_node tv "$DEVICES/chromecast-google-tv.json"
check "a fourth device logs in" af tv login ana
TV_ID=$(afj tv .deviceId status)
kill -9 "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null
start_broker broker
check "the fourth device survived a kill right after its login" \
    wait_eq 10 true afj phone "[.devices[].id] | index(\"$TV_ID\") != null" devices --refresh

# One broker per data directory: a second one on the same directory is
# refused at once, before it touches the store or the endpoints file
cp "$T/broker/endpoints" "$T/endpoints.first"
out=$(timeout 10 "$BROKER" -d "$T/broker" --nodes "tcp://127.0.0.1:*" --workers "tcp://127.0.0.1:*" 2>&1); rc=$?
check "a second broker on the same data directory is refused" test $rc -eq 1
check "  ... saying which broker holds it" has "$out" "another broker (pid $BROKER_PID) is running on $T/broker"
check "  ... the first one's endpoints file is untouched" cmp -s "$T/broker/endpoints" "$T/endpoints.first"
check "  ... and the first one still serves" af phone devices --refresh
finish
