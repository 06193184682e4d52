#!/usr/bin/env bash
# Hostile input: a raw CURVE client sends a battery of malformed messages
# (truncated, wrong types, lying lengths, unknown command, wrong version,
# oversize, multi-frame) and gets the documented error for each; then a
# normal login works, and a real node connected meanwhile is still served
# with its data intact.
. "$(dirname "$0")/lib.sh"

start_broker broker
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "register" af phone register ana
check "phone logs in" af phone login ana
check "tablet logs in" af tablet login ana

check "the battery gets the documented errors, then logs in" "$RAW" "$NODES_EP" "$BROKER_CERT" battery
check "the broker is still running" kill -0 "$BROKER_PID"
check "it logged what it refused" grep -q "refused a message from .*E_MALFORMED" "$T/broker.log"

check "the phone is still served" wait_eq 5 2 afj phone ".devices | length" devices --refresh
check "the tablet's session is intact" test "$(afj tablet .loggedIn status)" = true
check "the account still has its two devices" test "$(afj tablet '[.devices[] | select(.online)] | length' devices --refresh)" = 2
check "a new account can still be registered" env APPFERRY_PASSWORD="another good one" "$CLI" --home "$T/tablet" register carol
finish
