#!/usr/bin/env bash
# Install records that carry settings and start-up entries (issue 14,
# "What moves"; MISSION S0.1): a signed package whose top-level
# appferry.json declares settings and start-up entries is pushed to a
# device; the device writes HOME/settings/PROGRAM.json and
# HOME/startup/PROGRAM@NAME and records both; an upgrade that declares
# less removes what it no longer declares; a package whose manifest
# breaks a rule is refused with the installed version intact; what a kill
# leaves aside goes at the next start; uninstall removes the settings and
# the entries. Packages are made with GNU tar and signed by the catalog
# import (tests/catalog_signed.sh).
. "$(dirname "$0")/lib.sh"

P="$T/pkg"
mkdir -p "$P"
# pkg VERSION MANIFEST-JSON|"": the tar of tips $VERSION, with that manifest
pkg () {
    local v=$1 manifest=$2 d="$P/tips$1"
    mkdir -p "$d/app"; echo "tips $v" > "$d/app/VERSION"
    if [ -n "$manifest" ]; then
        printf '%s\n' "$manifest" > "$d/appferry.json"
        tar -C "$d" -cf "$P/tips$v.tar" app appferry.json || die "cannot make tips$v.tar"
    else
        tar -C "$d" -cf "$P/tips$v.tar" app || die "cannot make tips$v.tar"
    fi
    printf '[ { "program": "tips", "platform": "android", "versionCode": %d, "versionName": "%d.0",\n    "minSdk": 21, "file": "tips%d.tar" } ]\n' "$v" "$v" "$v" > "$P/tips$v.json"
}
import () { "$CATALOG" --catalog "$T/catalog" import "$P/tips$1.json" >> "$T/import.log" 2>&1 || die "tips$1 import failed"; }
pkg 1 '{"settings": {"theme": "dark", "font.size": "12"}, "startup": ["daily", "sync"]}'
pkg 2 '{"settings": {"theme": "dark"}, "startup": ["daily"]}'
pkg 3 '{"settings": {"theme": "dark"}, "startup": ["daily", "../../.profile"]}'
pkg 4 ''
pkg 5 '{"settings": {"theme": "dark", "font.size": "12"}, "startup": ["daily", "sync"]}'
import 1

start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet; do af $n login ana > /dev/null || die "$n login failed"; done
TABLET=$(device_id tablet)
H="$T/tablet"
startup () { ls -A "$H/startup" 2>/dev/null | tr '\n' ' '; }
setting () { jq -r --arg k "$1" '.[$k] // "(none)"' "$H/settings/tips.json" 2>/dev/null || echo "(no file)"; }
record () { jq -c "$1" "$H/installed/tips.json"; }

# --- an install writes the settings and entries its manifest declares
out=$(af phone push tips --to "$TABLET" 2>&1)
check "tips 1.0 with a manifest installs" test "$(cat "$H/apps/tips/app/VERSION" 2>/dev/null)" = "tips 1"
check "  ... its settings are in HOME/settings/tips.json (theme=$(setting theme), font.size=$(setting font.size))" \
    test "$(setting theme)" = dark -a "$(setting font.size)" = 12
check "  ... its start-up entries are in HOME/startup (found: $(startup))" \
    test "$(startup)" = "tips@daily tips@sync " -a "$(cat "$H/startup/tips@daily" 2>/dev/null)" = daily
check "  ... the install record lists both ($(record '{settings, startup}'))" \
    test "$(record '{settings, startup}')" = '{"settings":{"theme":"dark","font.size":"12"},"startup":["daily","sync"]}'
out=$(af tablet installed 2>&1)
has "$out" 'set theme = "dark"' "start-up entry sync"; shown=$?
check "  ... and 'appferry installed' shows them" test $shown -eq 0
check "  ... as does its JSON" test "$(afj tablet '.installed[] | select(.program == "tips") | .startup | join(",")' installed)" = "daily,sync"

# --- an upgrade declaring less removes the rest
import 2
out=$(af phone push tips --to "$TABLET" 2>&1)
check "tips 2.0 replaced it" test "$(cat "$H/apps/tips/app/VERSION" 2>/dev/null)" = "tips 2"
check "  ... font.size, no longer declared, is gone (found: $(setting font.size))" test "$(setting font.size)" = "(none)"
check "  ... the sync entry, no longer declared, is gone (found: $(startup))" test "$(startup)" = "tips@daily "
check "  ... the record says so ($(record '{settings, startup}'))" \
    test "$(record '{settings, startup}')" = '{"settings":{"theme":"dark"},"startup":["daily"]}'

# --- a manifest that breaks a rule: refused, naming it; 2.0 intact
import 3
out=$(af phone push tips --to "$TABLET" 2>&1); rc=$?
echo "$out" | tail -n 1 | sed 's/^/  # /'
has "$out" "failed" "appferry.json" "not a name"; named=$?
check "a start-up entry named ../../.profile refuses the install, saying why" test $named -eq 0 -a $rc -eq 1
check "  ... tips 2.0 is still installed, its record, settings and entries as they were" \
    test "$(cat "$H/apps/tips/app/VERSION")" = "tips 2" -a "$(record .versionName)" = '"2.0"' \
         -a "$(setting theme)" = dark -a "$(startup)" = "tips@daily "
check "  ... nothing written outside the home" test ! -e "$H/../.profile" -a ! -e "$H/.profile"

# --- what a kill leaves aside goes at the next start
stop_node tablet
touch "$H/startup/.tips@sync.tmp" "$H/startup/.tips@daily.gone" "$H/settings/.tips.json.tmp"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "temporaries a kill left in settings/ and startup/ go at start (found: $(startup))" \
    test "$(startup)" = "tips@daily " -a ! -e "$H/settings/.tips.json.tmp"

# --- a version without a manifest: no settings, no entries
import 4
out=$(af phone push tips --to "$TABLET" 2>&1)
check "tips 4.0 without a manifest installs, and removes the settings and entries (found: $(startup))" \
    test "$(cat "$H/apps/tips/app/VERSION" 2>/dev/null)" = "tips 4" -a ! -e "$H/settings/tips.json" -a -z "$(startup)"
check "  ... its record has none ($(record '{settings, startup}'))" \
    test "$(record '{settings, startup}')" = '{"settings":{},"startup":[]}'

# --- uninstall removes the settings and the entries
import 5
out=$(af phone push tips --to "$TABLET" 2>&1)
check "tips 5.0, declaring what 1.0 did: settings and entries back (found: $(startup))" \
    test "$(setting font.size)" = 12 -a "$(startup)" = "tips@daily tips@sync "
af tablet uninstall tips > /dev/null; rc=$?
check "uninstall removes the app, its settings and its start-up entries (found: $(startup))" \
    test $rc -eq 0 -a ! -e "$H/apps/tips" -a ! -e "$H/settings/tips.json" -a -z "$(startup)"

finish
