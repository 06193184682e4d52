#!/usr/bin/env bash
# Push (S2.3-S2.7): one program to devices of four platforms, each gets
# the package the catalog picks for it; refusals; an offline target gets
# it when it connects, once, even across a broker killed with SIGKILL;
# the initiator learns every result, even after being offline itself; a
# device that fails the broker's security policy is refused.
. "$(dirname "$0")/lib.sh"

"$CATALOG" --catalog "$T/catalog" import "$AF_SRC/data/catalog/manifest.json" > "$T/import.log" 2>&1 \
    || die "catalog import failed"
# Policy: nodes must be 0.2.0 or later and report a fresh clean scan
cat > "$T/broker.cfg" <<CFG
policy
    min_node_version = 0.2.0
    require = malware_scan=clean
    max_age = 3600
CFG
printf 'malware_scan=clean\nscanner=test 1.0\n' > "$T/attest.clean"
printf 'malware_scan=infected\n' > "$T/attest.bad"

start_broker broker -c "$T/broker.cfg" --catalog "$T/catalog"
start_matcher matcher "$T/catalog"
start_node phone "$DEVICES/galaxy-s21.json" --attest "$T/attest.clean"
start_node tv "$DEVICES/chromecast-google-tv.json"
start_node a10 "$DEVICES/galaxy-a10.json"
start_node pc "$DEVICES/windows-pc.json"
start_node iphone "$DEVICES/iphone-13.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json" --attest "$T/attest.bad"
af phone register ana > /dev/null || die "register failed"
for n in phone tv a10 pc iphone tablet; do af $n login ana > /dev/null || die "$n login failed"; done
A10=$(device_id a10); TV=$(device_id tv); PC=$(device_id pc); IPHONE=$(device_id iphone); TABLET=$(device_id tablet)
PHONE=$(device_id phone)

# expected_hash DEVICE-FILE PROGRAM: what the catalog itself picks
expected () { "$CATALOG" --catalog "$T/catalog" --json resolve "$2" "$DEVICES/$1.json" | jq -r "$3"; }

# --- one program to an Android phone, an Android TV, a Windows PC and an iPhone
out=$(af phone push weixin --to "$A10,$TV,$PC,$IPHONE" 2>&1); rc=$?
echo "$out" | sed 's/^/  # /'
check "push to an Android phone, a TV, a PC and an iPhone exits 0" test $rc -eq 0
for pair in a10:galaxy-a10 tv:chromecast-google-tv pc:windows-pc; do
    n=${pair%%:*} dev=${pair#*:}
    want=$(expected "$dev" weixin .package.hash)
    got=$(afj $n '.installed[] | select(.program == "weixin") | .hash' installed)
    check "$n installed the package the catalog picks for it (${want:0:12})" \
        test -n "$want" -a "$got" = "$want"
    check "$n unpacked it under apps/weixin" test -f "$T/$n/apps/weixin/app/README"
done
check "the phone, the tv and the pc got three different packages" \
    test "$( (expected galaxy-a10 weixin .package.hash; expected chromecast-google-tv weixin .package.hash
              expected windows-pc weixin .package.hash) | sort -u | wc -l)" -eq 3
link=$(expected iphone-13 weixin .package.storeLink)
check "the iPhone recorded the store link" \
    test "$(afj iphone '.storeLinks[0].storeLink' installed)" = "$link"
check "the iPhone installed nothing" test ! -e "$T/iphone/apps/weixin"
PUSH=$(afj phone '.pushes[-1].pushId' status)
check "the phone's status shows each target's final state" wait_eq 5 "installed installed installed store-link" \
    afj phone "[.pushes[-1].targets[] | .state] | join(\" \")" status
check "the push output named each result" has "$out" "installed" "version 1.2.0" "store-link" "$link"

# --- no package fits; refusals
out=$(af phone push chess --to "$TV" 2>&1); rc=$?
check "no fitting package: exit 1 with the matcher's reason" \
    bash -c "[ $rc -eq 1 ] && grep -q 'no-fit' <<< '$out' && grep -q 'made for phone, tablet' <<< '$out'"
out=$(af phone push weixin --to "$PHONE,0123456789abcdef0123456789abcdef" 2>&1); rc=$?
check "self and unknown targets are refused" has "$out" "cannot push to itself" "not a device of this account"
check "  ... and the push exits 1" test $rc -eq 1
out=$(af phone push no-such-program --to "$PC" 2>&1)
check "an unknown program is named in the result" has "$out" "unknown program 'no-such-program'"
# Another account's device is not a target
start_node other "$DEVICES/galaxy-a10.json"
af other register bob > /dev/null && af other login bob > /dev/null || die "bob's login failed"
OTHER=$(device_id other)
out=$(af phone push weixin --to "$OTHER" 2>&1)
check "a device of another account is refused" has "$out" "refused" "not a device of this account"
check "  ... and received nothing" test ! -e "$T/other/apps/weixin" -a ! -e "$T/other/links/weixin.json"

# --- hostile push traffic from a raw client of the account
check "hostile FETCH, UPLOAD, CHUNK, DONE and ACK get the documented errors" \
    "$RAW" "$NODES_EP" "$BROKER_CERT" push ana "$APPFERRY_PASSWORD"
check "  ... and the broker serves the others as before" wait_eq 5 installed \
    afj phone '.pushes[0].targets[0].state' status

# --- security policy (S2.3)
out=$(af tablet push weixin --to "$TV" 2>&1); rc=$?
check "a device reporting malware_scan=infected is refused by policy" \
    bash -c "[ $rc -eq 1 ] && grep -q 'E_POLICY' <<< '$out' && grep -q 'malware_scan=clean required' <<< '$out'"
out=$(af tv push weixin --to "$PC" 2>&1)
check "a device with no attestations is refused by policy" has "$out" "E_POLICY" "reported none"
touch -d '2 hours ago' "$T/attest.stale"
printf 'malware_scan=clean\n' > "$T/attest.stale"; touch -d '2 hours ago' "$T/attest.stale"
stop_node tv; start_node tv "$DEVICES/chromecast-google-tv.json" --attest "$T/attest.stale"
logged_in tv || die "the tv did not log in again by key"
out=$(af tv push weixin --to "$PC" 2>&1)
check "stale attestations are refused by policy" has "$out" "E_POLICY" "too old"
check "the broker logged the refusals" grep -q "refused PUSH .*policy" "$T/broker.log"

# --- offline target: queued, delivered on connect, once; initiator offline meanwhile
stop_node tablet
out=$(af phone push notes --to "$TABLET" 2>&1); rc=$?
check "a push to an offline device is accepted as queued" has "$out" "queued" "offline"
check "  ... exit 0" test $rc -eq 0
NOTES_PUSH=$(afj phone '.pushes[-1].pushId' status)
stop_node phone
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "the tablet installs notes when it connects" wait_until 15 test -f "$T/tablet/installed/notes.json"
check "  ... the package the catalog picks for it" test "$(jq -r .hash "$T/tablet/installed/notes.json")" \
    = "$(expected galaxy-tab-s7 notes .package.hash)"
start_node phone "$DEVICES/galaxy-s21.json" --attest "$T/attest.clean"
check "the initiator, offline meanwhile, learns the result" wait_eq 15 installed \
    afj phone "(.pushes[] | select(.pushId == \"$NOTES_PUSH\") | .targets[0].state)" status
stop_node tablet; start_node tablet "$DEVICES/galaxy-tab-s7.json"
sleep 1
check "a restart of the target installs nothing again" test "$(grep -c 'notes .* installed' "$T/tablet.log")" -eq 1

# --- SIGKILL of the broker after it accepted a push to an offline target
stop_node tv
out=$(af phone push weixin --to "$TV" 2>&1)
check "push to the offline tv queued" has "$out" "queued"
kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
rm -rf "$T/tv/apps/weixin" "$T/tv/installed/weixin.json"      # so the tv really installs again
start_broker broker -c "$T/broker.cfg" --catalog "$T/catalog"
start_node tv "$DEVICES/chromecast-google-tv.json"
check "after the broker's SIGKILL and restart, the tv still gets it" \
    wait_until 20 test -f "$T/tv/installed/weixin.json"
check "the phone learns it" wait_eq 20 installed afj phone '.pushes[-1].targets[0].state' status
sleep 1
n=$(grep -c "push .*: weixin .* installed" "$T/tv.log")
check "  ... installed exactly once since the restart (log lines: $n)" test "$n" -eq 2

finish
