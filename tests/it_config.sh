#!/usr/bin/env bash
# Configuration that follows the app (S1.6, S1.7, S1.9): shared only with
# consent, sealed on the node with a key from the account secret (the
# broker's files never hold the plaintext), the newer edit wins on every
# device and the older is kept as the previous version, applied after an
# install (asking first in manual mode); a device with another secret
# cannot open it; a configuration dated in the future is refused.
. "$(dirname "$0")/lib.sh"

family "$AF_SRC/data/catalog/manifest.json"
af phone sync --install notes > /dev/null 2>&1; af phone push notes --to "$TABLET" > /dev/null \
    || die "installing notes failed"
test -f "$T/phone/installed/notes.json" || die "notes not installed on the phone"

export APPFERRY_SECRET="our family secret 2026"
check "no sharing without the account secret" bash -c "! '$CLI' --home '$T/phone' config share notes"
for n in phone tablet tv; do af $n config secret > /dev/null || die "$n config secret failed"; done
mkdir -p "$T/phone/config/notes"
echo "font=large MARKER-7f3a9" > "$T/phone/config/notes/settings.conf"
echo "bookmark=https://example.org/a" > "$T/phone/config/notes/bookmarks"
sleep 2
check "nothing is sent before the user consents" bash -c "! grep -q 'configuration of notes' '$T/broker.log'"
check "config share notes" af phone config share notes
check "the tablet, sharing too, gets the phone's configuration" bash -c "
    '$CLI' --home '$T/tablet' config share notes > /dev/null &&
    for i in \$(seq 100); do grep -qs MARKER-7f3a9 '$T/tablet/config/notes/settings.conf' && exit 0; sleep 0.1; done; exit 1"
check "  ... all of it" test -f "$T/tablet/config/notes/bookmarks"
check "the broker's store never holds the plaintext" bash -c "! grep -r -a -q MARKER-7f3a9 '$T/broker'"
check "  ... but it does hold the (sealed) configuration" grep -q "configuration of notes .* now current" "$T/broker.log"

# --- an edit on the tablet while it is offline, a newer one on the phone
stop_node tablet
sleep 1.1
echo "theme=dark OFFLINE-EDIT" > "$T/tablet/config/notes/settings.conf"
sleep 1.1
echo "font=huge NEWER-EDIT" > "$T/phone/config/notes/settings.conf"
PHONE=$(device_id phone)
check "the phone's newer edit is stored" \
    wait_until 10 bash -c "[ \$(grep -c 'configuration of notes from $PHONE .* now current' '$T/broker.log') -ge 2 ]"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "back online, the tablet sends its older edit, which loses" \
    wait_until 10 grep -q "configuration of notes from $TABLET .* older, kept as the previous version" "$T/broker.log"
check "  ... and takes the newer one: both devices have the phone's edit" \
    wait_until 10 grep -qs NEWER-EDIT "$T/tablet/config/notes/settings.conf"
check "  ... the phone still has its own" grep -q NEWER-EDIT "$T/phone/config/notes/settings.conf"
check "the older edit is kept as the previous version" has "$(af phone config show notes --previous)" "OFFLINE-EDIT"

# --- after an install, in manual mode, the configuration waits for a yes
af phone push notes --to "$TV" > /dev/null || die "push notes to the tv failed"
check "the tv (manual mode) holds the account's configuration back" \
    wait_eq 10 notes afj tv '.configWaiting | join(",")' status
check "  ... nothing applied yet" test ! -e "$T/tv/config/notes"
check "config apply notes applies it" af tv config apply notes
check "  ... the newer version" grep -q NEWER-EDIT "$T/tv/config/notes/settings.conf"

# --- another account secret cannot open it
start_node other "$DEVICES/galaxy-a10.json"
af other login ana > /dev/null || die "other login failed"
APPFERRY_SECRET="not the family secret" af other config secret > /dev/null || die "other secret failed"
out=$(af other config apply notes 2>&1)
check "a device with another secret cannot decrypt it" has "$out" "cannot decrypt"
check "  ... and nothing is written" test ! -e "$T/other/config/notes"

# --- a configuration dated in the future is refused, the stored one kept
touch -d "+2 hours" "$T/phone/config/notes/bookmarks"
check "a configuration dated hours ahead is refused" wait_until 10 grep -q "dated in the future" "$T/broker.log"
check "  ... the stored version is unchanged" has "$(af tablet config show notes)" "NEWER-EDIT"

finish
