#!/usr/bin/env bash
# S2.1, S2.2: three devices of one account register and log in; each
# receives the account's device list; online state follows nodes that stop
# cleanly or are killed; a restarted node keeps its device ID.
. "$(dirname "$0")/lib.sh"

start_broker broker
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
start_node iphone "$DEVICES/iphone-13.json"

check "register an account" af phone register ana
for n in phone tablet iphone; do
    check "log in $n" af $n login ana
done
PHONE_ID=$(afj phone .deviceId status)
TABLET_ID=$(afj tablet .deviceId status)
IPHONE_ID=$(afj iphone .deviceId status)
check "device IDs are 32 hex digits and distinct" \
    bash -c "[[ '$PHONE_ID' =~ ^[0-9a-f]{32}$ && '$PHONE_ID' != '$TABLET_ID' && '$TABLET_ID' != '$IPHONE_ID' ]]"

# Each device's pushed list names all three, all online, itself marked
online_count () { afj "$1" '[.devices[] | select(.online)] | length' devices; }
for n in phone tablet iphone; do
    check "$n received a list of 3 online devices" wait_eq 5 3 online_count $n
done
check "phone's list marks itself" \
    test "$(afj phone '.devices[] | select(.self) | .id' devices)" = "$PHONE_ID"
check "tablet sees the iPhone's model and platform" \
    test "$(afj tablet ".devices[] | select(.id == \"$IPHONE_ID\") | .model + \"/\" + .platform + \"/\" + .osVersion" devices)" \
         = "iPhone 13 (iPhone14,5)/ios/17.1"
check "the list came from a broker push" test "$(afj iphone .source devices)" = pushed
check "human-readable device list names all three" \
    bash -c "'$CLI' --home '$T/phone' devices | grep -c online | grep -qx 3"

# Clean stop: the node logs out; the others see it offline at once
check "stop the tablet" af tablet stop
wait_until 5 bash -c "! kill -0 $(node_pid tablet) 2>/dev/null"
state_of () { afj "$1" ".devices[] | select(.id == \"$2\") | .online" devices; }
check "phone sees the tablet offline" wait_eq 5 false state_of phone "$TABLET_ID"
check "iPhone sees the tablet offline" wait_eq 5 false state_of iphone "$TABLET_ID"

# Killed: the broker notices by heartbeat
kill -9 "$(node_pid iphone)"
check "phone sees the killed iPhone offline" wait_eq 5 false state_of phone "$IPHONE_ID"
check "the offline iPhone is still listed" test "$(afj phone '.devices | length' devices)" = 3

# Restarted nodes log in again by key, with the same device IDs
start_node tablet "$DEVICES/galaxy-tab-s7.json"
start_node iphone "$DEVICES/iphone-13.json"
check "restarted tablet logs in by itself" wait_eq 5 true afj tablet .loggedIn status
check "restarted tablet keeps its device ID" test "$(afj tablet .deviceId status)" = "$TABLET_ID"
check "restarted iPhone keeps its device ID" wait_eq 5 "$IPHONE_ID" afj iphone .deviceId status
check "phone sees both back online" wait_eq 5 3 online_count phone
check "still three devices, no duplicates" test "$(afj phone '.devices | length' devices --refresh)" = 3

# Notifications are routed to the named device only
check "phone notifies the tablet" af phone notify "$TABLET_ID" "hello tablet"
check "tablet got it, from the phone" \
    wait_eq 5 "$PHONE_ID:hello tablet" afj tablet '.notifications[0].from + ":" + .notifications[0].text' notifications
check "iPhone got nothing" test "$(afj iphone '.notifications | length' notifications)" = 0

# Logout: no automatic login any more
check "logout the iPhone" af iphone logout
check "phone sees the iPhone offline after logout" wait_eq 5 false state_of phone "$IPHONE_ID"
check "iPhone status says not logged in" test "$(afj iphone .loggedIn status)" = false
finish
