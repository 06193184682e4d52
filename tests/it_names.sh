#!/usr/bin/env bash
# The command line as a person uses it (issue 9, section 10): devices are
# named as `devices` shows them (their name, a prefix of their ID of at
# least 4 hex digits, or the whole ID) wherever a device is named; a name
# that fits two devices is refused with both listed; `installed` and
# `resolve` label the file hash and the catalog package ID for what each is.
. "$(dirname "$0")/lib.sh"

family "$(free_demo_manifest)"
TV6=${TV:0:6}

out=$(af phone push chess --to "Ana's tablet" 2>&1); rc=$?
check "push --to a device's name" test $rc -eq 0 -a -f "$T/tablet/installed/chess.json"
out=$(af phone push notes --to "$TV6" 2>&1); rc=$?
check "push --to a prefix of its ID" test $rc -eq 0 -a -f "$T/tv/installed/notes.json"
out=$(af phone push weixin --to "ana's TABLET,$TV6" 2>&1); rc=$?
check "push --to several, a name in another case among them" \
    test $rc -eq 0 -a -f "$T/tablet/installed/weixin.json" -a -f "$T/tv/installed/weixin.json"
out=$(af phone notify "Living room TV" "dinner is ready" 2>&1); rc=$?
check "notify a device by its name" test $rc -eq 0
check "  ... it arrives" wait_eq 5 "dinner is ready" afj tv '.notifications[-1].text' notifications
check "apps --device a name" wait_eq 10 "chess weixin" \
    afj phone '[.apps[].program] | sort | join(" ")' apps --device "Ana's tablet"
out=$(af phone uninstall chess --on "Ana's tablet" 2>&1); rc=$?
check "uninstall --on a name" has "$rc:$out" "0:" "Ana's tablet"
check "  ... it is uninstalled there" wait_until 10 test ! -e "$T/tablet/installed/chess.json"
check "the whole ID still works" af phone notify "$TABLET" "by ID"
check "  ... and all still means every other device" \
    has "$(af phone push notes --to all 2>&1)" "Ana's tablet" "Living room TV"

# A second device with the same name: the name alone is refused
start_node tablet2 "$DEVICES/galaxy-tab-s7.json"
af tablet2 login ana > /dev/null || die "tablet2 login failed"
TABLET2=$(device_id tablet2)
wait_eq 5 4 afj phone '.devices | length' devices > /dev/null
out=$(af phone notify "Ana's tablet" hello 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "a name two devices share is refused, both listed" \
    has "$rc:$out" "1:" "could be 2 devices" "${TABLET:0:12}" "${TABLET2:0:12}"
out=$(af phone notify "${TABLET:0:3}" hello 2>&1); rc=$?
check "a prefix shorter than 4 hex digits is refused" has "$rc:$out" "1:" "at least 4 hex digits"
out=$(af phone notify "Nobody's watch" hello 2>&1); rc=$?
check "a name no device has is refused" has "$rc:$out" "1:" "not a device of this account"

# Two hex values, each labelled for what it is
hash=$(jq -r .hash "$T/tablet/installed/weixin.json")
check "installed labels the package file's hash" has "$(af tablet installed)" "file hash ${hash:0:16}"
resolved=$(af tablet --json resolve weixin)
check "resolve labels the file hash and the catalog package ID" \
    has "$(af tablet resolve weixin)" "file hash $(jq -r .package.hash <<< "$resolved" | cut -c1-16)" \
        "catalog package ID $(jq -r .package.packageId <<< "$resolved")"
check "  ... the same file hash as installed shows for it" \
    test "$(jq -r .package.hash <<< "$resolved")" = "$hash"

finish
