#!/usr/bin/env bash
# Streamed transfer and install (S2.6, issue 4 "bad input"): a 64 MiB
# package to a deliberately slow receiver while the broker's memory stays
# bounded; a package altered in the store is detected by its hash and not
# installed; an archive that writes outside its directory is refused and
# leaves the installed version intact; an operator's install command
# decides success, and one that fails or hangs is reported.
. "$(dirname "$0")/lib.sh"

# Packages made for this test: a big one, one to tamper with, a hostile one
MKPKG="$AF_BIN/tests/af_mkpkg"
mkdir -p "$T/pkg"
"$MKPKG" "$T/pkg/big.tar" d:big/ r:big/blob=64M \
    && "$MKPKG" "$T/pkg/tamper.tar" d:t/ r:t/data=600K \
    && "$MKPKG" "$T/pkg/diary.tar" d:app/ f:app/README=$'diary\n' \
           d:defaults/ f:defaults/settings.conf=$'theme=light\n' f:defaults/cache.db=$'empty\n' \
    && "$MKPKG" "$T/pkg/evil.tar" d:app/ f:app/README=$'looks fine\n' f:../evil=$'escaped\n' \
    || die "cannot make test packages"
cat > "$T/pkg/manifest.json" <<'JSON'
[ { "program": "bigapp", "platform": "android", "versionCode": 1, "versionName": "1.0",
    "minSdk": 21, "file": "big.tar" },
  { "program": "tamperapp", "platform": "android", "versionCode": 1, "versionName": "1.0",
    "minSdk": 21, "file": "tamper.tar" },
  { "program": "diary", "platform": "android", "versionCode": 3, "versionName": "3.0",
    "minSdk": 21, "file": "diary.tar" } ]
JSON
cat > "$T/pkg/evil.json" <<'JSON'
[ { "program": "notes", "platform": "android", "versionCode": 999, "versionName": "9.9.9",
    "minSdk": 21, "file": "evil.tar" } ]
JSON
"$CATALOG" --catalog "$T/catalog" import "$AF_SRC/data/catalog/manifest.json" > "$T/import.log" 2>&1 \
    && "$CATALOG" --catalog "$T/catalog" import "$T/pkg/manifest.json" >> "$T/import.log" 2>&1 \
    || die "catalog import failed"
blob () { "$CATALOG" --catalog "$T/catalog" --json resolve "$1" "$DEVICES/galaxy-tab-s7.json" | jq -r .package.hash; }

# Under AddressSanitizer, freed memory sits in a quarantine (256 MiB by
# default) and would count as the broker's; keep it small for this test
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=4"
start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"
start_node phone "$DEVICES/galaxy-s21.json"
# The slow receiver: 8 MiB/s, so 64 MiB take about 8 s
start_node tablet "$DEVICES/galaxy-tab-s7.json" --rate-limit 8192
start_node pc "$DEVICES/windows-pc.json" --install-cmd "cp \"\$1\" '$T/pc-got.tar'"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet pc; do af $n login ana > /dev/null || die "$n login failed"; done
TABLET=$(device_id tablet); PC=$(device_id pc)

# --- 64 MiB to a slow receiver: the broker's memory stays bounded
rss () { awk '/^VmRSS/ { print $2 }' "/proc/$BROKER_PID/status"; }
hwm () { awk '/^VmHWM/ { print $2 }' "/proc/$BROKER_PID/status"; }
before=$(rss)
start=$SECONDS
out=$(af phone push bigapp --to "$TABLET" --wait 120 2>&1); rc=$?
took=$((SECONDS - start))
peak=$(hwm)
echo "$out" | tail -n 3 | sed 's/^/  # /'
growth=$(( (peak - before) / 1024 ))
BOUND=24
echo "  # broker RSS before ${before} KiB, peak ${peak} KiB (+${growth} MiB); took ${took} s"
check "64 MiB package installed on the slow receiver" test $rc -eq 0 -a -f "$T/tablet/apps/bigapp/big/blob"
check "  ... its bytes are the package's" test "$(jq -r .hash "$T/tablet/installed/bigapp.json")" = "$(blob bigapp)"
check "  ... the receiver's rate limit held (took ${took} s, at least 6)" test "$took" -ge 6
check "  ... broker memory grew by ${growth} MiB, under the ${BOUND} MiB bound" test "$growth" -lt $BOUND
check "  ... the initiator saw progress" has "$out" "MiB ("
check "  ... nothing left in incoming/" test -z "$(ls "$T/tablet/incoming")"

# --- a device that cannot store the package (a 2 MiB file size limit
#     stands in for a full disk): a clear error, nothing left behind
NODE_PREFIX="prlimit --fsize=2097152 --" start_node small "$DEVICES/galaxy-a10.json"
af small login ana > /dev/null || die "small login failed"
out=$(af phone push bigapp --to "$(device_id small)" 2>&1); rc=$?
echo "$out" | tail -n 1 | sed 's/^/  # /'
check "a target that cannot write the package reports why" has "$out" "failed" "cannot write the file"
check "  ... exit 1, no partial file, nothing installed" \
    test $rc -eq 1 -a -z "$(ls "$T/small/incoming")" -a ! -e "$T/small/apps/bigapp"
stop_node small

# --- a package altered in the store: the hash check refuses it
f="$T/catalog/blobs/$(blob tamperapp | cut -c1-2)/$(blob tamperapp)"
# One byte inverted in the middle; od and dd are coreutils
byte=$(od -An -tu1 -j 300000 -N 1 "$f" | tr -d ' ')
[ -n "$byte" ] || die "the tamper package has no byte 300000"
printf "$(printf '\\%03o' $((byte ^ 0xff)))" | dd of="$f" bs=1 seek=300000 conv=notrunc status=none \
    || die "cannot alter the tamper package"
[ "$(b2sum -l 256 "$f" | cut -d' ' -f1)" != "$(blob tamperapp)" ] || die "the tamper package is unaltered"
out=$(af phone push tamperapp --to "$TABLET" 2>&1); rc=$?
check "a tampered package is detected and not installed" has "$out" "failed" "hash does not match"
check "  ... exit 1" test $rc -eq 1
check "  ... nothing unpacked, no record, no partial file" \
    test ! -e "$T/tablet/apps/tamperapp" -a ! -e "$T/tablet/installed/tamperapp.json" -a -z "$(ls "$T/tablet/incoming")"

# --- a path-traversal archive: refused, the installed version untouched
out=$(af phone push notes --to "$TABLET" 2>&1)
check "notes 2.1.0 installed first" test -f "$T/tablet/apps/notes/app/README"
good=$(jq -r .hash "$T/tablet/installed/notes.json")
"$CATALOG" --catalog "$T/catalog" import "$T/pkg/evil.json" >> "$T/import.log" 2>&1 || die "evil import failed"
out=$(af phone push notes --to "$TABLET" 2>&1); rc=$?
echo "$out" | tail -n 1 | sed 's/^/  # /'
check "an archive writing outside its directory is refused" has "$out" "failed" "../evil"
check "  ... exit 1" test $rc -eq 1
check "  ... nothing written outside" test -z "$(find "$T/tablet" -name evil)"
check "  ... the installed version is intact" \
    test -f "$T/tablet/apps/notes/app/README" -a "$(jq -r .hash "$T/tablet/installed/notes.json")" = "$good"

# --- user data (S2.8): sent with the push, replaces the installed defaults
out=$(af phone push diary --to "$TABLET" --with-data 2>&1); rc=$?
check "--with-data without a data directory is refused" has "$out" "no data to send"
mkdir -p "$T/phone/data/diary/notes"
printf 'theme=dark\n' > "$T/phone/data/diary/settings.conf"
printf 'day 1: pushed my diary\n' > "$T/phone/data/diary/notes/history.log"
af tablet status > /dev/null
out=$(af phone push diary --to "$TABLET" --with-data 2>&1); rc=$?
echo "$out" | tail -n 1 | sed 's/^/  # /'
check "a push with the app's data installs" test $rc -eq 0 -a -f "$T/tablet/apps/diary/app/README"
check "  ... the user's settings replaced the defaults" \
    test "$(cat "$T/tablet/data/diary/settings.conf" 2>/dev/null)" = "theme=dark"
check "  ... the user's history arrived" test -f "$T/tablet/data/diary/notes/history.log"
check "  ... nothing of the defaults is left" test ! -e "$T/tablet/data/diary/cache.db"
check "  ... the result says so" has "$out" "with the user data"
# A blob of ana's user data, waiting for a push (the one above is gone:
# its last target had it)
"$RAW" "$NODES_EP" "$BROKER_CERT" upload ana "$APPFERRY_PASSWORD" 5000 > "$T/upload.out" 2>&1
hash=$(sed -n 's/^ok - the upload is stored: //p' "$T/upload.out")
check "the broker keeps the upload in its store" wait_eq 5 1 broker_value "$BROKER_DIR" appferry_userdata_blobs
"$RAW" "$NODES_EP" "$BROKER_CERT" steal mallory "mallory's password" "$hash" 5000 > "$T/steal.out" 2>&1
sed -n 's/^not ok/  # not ok/p' "$T/steal.out"
check "another account can neither push nor fetch it, knowing its hash" grep -q "0 failed" "$T/steal.out"

# --- the operator's install command
out=$(af phone push weixin --to "$PC" 2>&1); rc=$?
check "an install command that succeeds installs" test $rc -eq 0 -a "$(jq -r .method "$T/pc/installed/weixin.json")" = command
check "  ... it got the verified package file" \
    test "$(b2sum -l 256 "$T/pc-got.tar" | cut -d' ' -f1)" = "$(jq -r .hash "$T/pc/installed/weixin.json")"
stamp=$(jq -r .installedAt "$T/pc/installed/weixin.json"); copied=$(stat -c %y "$T/pc-got.tar")
out=$(af phone push weixin --to "$PC" 2>&1); rc=$?
check "the same package again is reported installed and not installed twice" \
    test $rc -eq 0 -a "$(jq -r .installedAt "$T/pc/installed/weixin.json")" = "$stamp" \
         -a "$(stat -c %y "$T/pc-got.tar")" = "$copied"
stop_node pc
start_node pc "$DEVICES/windows-pc.json" --install-cmd "exit 3"
rm -f "$T/pc/installed/weixin.json"
out=$(af phone push weixin --to "$PC" 2>&1)
check "an install command that fails is reported with its status" has "$out" "failed" "status 3"
stop_node pc
# A duration of its own, so no other test run on this machine is mistaken for it
NAP="59.$$"
start_node pc "$DEVICES/windows-pc.json" --install-cmd "sleep $NAP" --install-timeout 1
out=$(af phone push weixin --to "$PC" 2>&1)
check "an install command that hangs is killed and reported" has "$out" "failed" "timed out"
# No process's command line is the hanging command's (pgrep -f, without
# procps, which a minimal Debian lacks)
no_process () {
    local f
    for f in /proc/[0-9]*/cmdline; do
        tr '\0' ' ' 2>/dev/null < "$f" | grep -qE "$1" && return 1
    done
    return 0
}
check "  ... the command is gone" wait_until 5 no_process "^(sh -c )?sleep $NAP( |\$)"

finish
