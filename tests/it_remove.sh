#!/usr/bin/env bash
# A lost phone (issue 9, section 6): another device of the account removes
# it with the password; its key is revoked, what was queued for it is
# dropped (a push waiting for it ends "failed" for its initiator), the
# others' device lists no longer show it, and its next login is refused
# with a clear error (E_REMOVED).
. "$(dirname "$0")/lib.sh"

family "$AF_SRC/data/catalog/manifest.json"

# The tv is offline with a push waiting for it; the tablet is online
stop_node tv
af phone push weixin --to "$TV" --no-wait > /dev/null 2>&1

out=$(APPFERRY_PASSWORD="not the password" af phone devices remove "Ana's tablet" 2>&1); rc=$?
check "removing a device needs the password" has "$rc:$out" "1:" "E_BAD_PASSWORD"
out=$(af phone devices remove "$(afj phone .deviceId status)" 2>&1); rc=$?
check "  ... and another device: not the one asking" has "$rc:$out" "1:" "E_FORBIDDEN"
out=$(af phone devices remove "Ana's tablet" 2>&1); rc=$?
check "the phone removes the tablet, named as devices shows it" has "$rc:$out" "0:" "Removed device $TABLET"
check "the online tablet is told why its session ended" \
    wait_until 10 grep -q "removed from account 'ana'" "$T/tablet.log"
check "the others' device lists no longer show it" wait_eq 10 false \
    afj phone "[.devices[].id] | index(\"$TABLET\") != null" devices --refresh

"$RAW" "$NODES_EP" "$BROKER_CERT" remove ana "$APPFERRY_PASSWORD" "$TV" > "$T/remove2.out" 2>&1
sed -n 's/^not ok/  # not ok/p' "$T/remove2.out"
check "the offline tv is removed too (by a raw client of the account: the wire as SPEC 5.34 says)" \
    grep -q "0 failed" "$T/remove2.out"
check "  ... the push that waited for it ends failed, saying why" \
    wait_eq 20 "failed the device was removed from the account" \
    afj phone "[.pushes[0].targets[] | .state + \" \" + .reason] | join(\",\")" status

# The removed devices come back: their key no longer logs them in
stop_node tablet
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "the removed tablet's login by key is refused with E_REMOVED" \
    wait_until 10 grep -q "E_REMOVED" "$T/tablet.log"
check "  ... saying by whom and how to come back" \
    grep -q "was removed from account 'ana' by device .* log in with the password" "$T/broker.log"
start_node tv "$DEVICES/chromecast-google-tv.json"
check "the removed tv is refused too" wait_until 10 grep -q "E_REMOVED" "$T/tv.log"
check "  ... and gets nothing of what was queued for it" test ! -e "$T/tv/installed/weixin.json"
check "the removed tablet has forgotten its device ID" test -z "$(afj tablet .deviceId status)"
check "  ... its status says why it is not logged in" has "$(af tablet status 2>&1)" "removed from account 'ana'"
af tablet login ana > /dev/null 2>&1
NEW=$(device_id tablet)
check "with the password it joins again, as a new device" test -n "$NEW" -a "$NEW" != "$TABLET"

finish
