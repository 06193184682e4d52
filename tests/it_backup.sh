#!/usr/bin/env bash
# Backups and restores (issue 15, S4.1-S4.6): an Android phone backs up
# an app (its identity, version, and sealed configuration); the account's
# tablet restores it in its own package, the backed-up configuration
# replacing the one it had; an iPhone gets the store link; a restore
# with no preference gets the backed-up version, --version a pinned one
# (older than the installed: allowed because the user asked here),
# --latest the newest; no backup, no such version, no login each refused
# clearly; another account sees none of it; records the broker altered
# (version, program, configuration) are refused, as they do not verify
# with the account secret or are not what was asked; an older version the
# user did not ask for is still refused as a rollback; a restore that nothing fits
# recommends the best-voted program of its category that fits, or says
# nothing fits. AF_BACKUP_BENCH=N times N restores end to end.
. "$(dirname "$0")/lib.sh"
MKPKG="$AF_BIN/tests/af_mkpkg"
P="$T/pkg"; C="$T/catalog"
mkdir -p "$P"

mk () { "$MKPKG" "$P/$1.tar" d:app/ f:app/README="$1"$'\n' || die "cannot make $1"; }
# entry PROGRAM CODE NAME FILE FORM [CATEGORY VOTES [MINSDK]]
entry () {
    printf '{"program":"%s","name":"%s","publisher":"Acme","platform":"android","versionCode":%s,"versionName":"%s",
             "minSdk":%s,"formFactors":["%s"],"file":"%s.tar","category":"%s","votes":%s}' \
        "$1" "${1^}" "$2" "$3" "${8:-21}" "$5" "$4" "${6:-social}" "${7:-100}"
}
ios () { printf '{"program":"%s","name":"Weixin","publisher":"Acme","platform":"ios","versionCode":%s,"versionName":"%s","minOs":"12.0",
                  "storeLink":"https://apps.apple.com/app/%s-%s","category":"social","votes":100}' "$1" "$2" "$3" "$1" "$3"; }
for p in wx1p wx1t wx2p wx2t wx3p wx3t jot memo scribe quill dash; do mk $p; done
cat > "$P/v1.json" <<JSON
[$(entry weixin 100 1.0 wx1p phone), $(entry weixin 101 1.0 wx1t tablet), $(ios weixin 10000 1.0),
 $(entry jotter 1 1.0 jot phone notes 10), $(entry memo 1 1.0 memo tablet notes 50),
 $(entry scribe 1 1.0 scribe tablet notes 50), $(entry quill 1 1.0 quill tablet notes 90 99),
 $(entry dash 1 1.0 dash phone games 70)]
JSON
echo "[$(entry weixin 200 2.0 wx2p phone), $(entry weixin 201 2.0 wx2t tablet), $(ios weixin 20000 2.0)]" > "$P/v2.json"
echo "[$(entry weixin 300 3.0 wx3p phone), $(entry weixin 301 3.0 wx3t tablet), $(ios weixin 30000 3.0)]" > "$P/v3.json"
"$CATALOG" --catalog "$C" import "$P/v1.json" > /dev/null || die "import v1 failed"

start_broker broker --catalog "$C"
start_matcher matcher "$C"
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
start_node iphone "$DEVICES/iphone-13.json"
start_node stranger "$DEVICES/galaxy-a10.json"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet iphone; do
    af $n login ana > /dev/null || die "$n login failed"
    APPFERRY_SECRET="ana's account secret" af $n config secret > /dev/null || die "$n config secret failed"
done
installed () { jq -r "${2:-.versionName}" "$T/$1/installed/weixin.json" 2>/dev/null; }

# --- Backups: 1.0 with its configuration, then 2.0 without
af phone sync --install weixin --wait 30 > /dev/null 2>&1
check "the phone has weixin 1.0" test "$(installed phone)" = 1.0
mkdir -p "$T/phone/config/weixin" && echo "theme=dark" > "$T/phone/config/weixin/settings.ini"
out=$(af phone backup weixin --with-config 2>&1)
check "backup --with-config backs up the version and the sealed configuration" has "$out" "weixin 1.0" "configuration"
check "  ... the broker's store holds no configuration in clear" \
    test -z "$(grep -rl "theme=dark" "$BROKER_DIR/store" 2>/dev/null)"
"$CATALOG" --catalog "$C" import "$P/v2.json" > /dev/null || die "import v2 failed"
af phone sync --install weixin --wait 30 > /dev/null 2>&1
check "the phone has weixin 2.0" test "$(installed phone)" = 2.0
out=$(af phone backup weixin 2>&1)
check "a second version is backed up" has "$out" "weixin 2.0"
doc=$(af tablet --json backups); [ -n "${DEBUG:-}" ] && echo "$doc"
check "backups, from another device: both versions, the newest first" \
    test "$(echo "$doc" | jq -r '[.backups[].versionName] | join(",")')" = "2.0,1.0"
check "  ... with the app's identity: name, publisher, the signing key, platform, device" \
    test "$(echo "$doc" | jq -r '.backups[1] | [.name, .publisher, (.keyId | length), .platform, .config] | join(" ")')" \
         = "Weixin Acme 16 android true" -a "$(echo "$doc" | jq -r '.backups[0].deviceId')" = "$(device_id phone)"
check "  ... the certificate is the key that signed the package (the store's signed targets)" \
    test "$(echo "$doc" | jq -r '.backups[0].keyId')" = "$(jq -r '.targets[] | select(.versionName == "2.0" and .versionCode == 200) | .publisher' "$C/meta/targets/weixin.json")"
"$CATALOG" --catalog "$C" import "$P/v3.json" > /dev/null || die "import v3 failed"
check "appferry-catalog list shows every imported version" \
    test "$("$CATALOG_BIN" --catalog "$C" list --json | jq -r '[.. | objects | select(.program? == "weixin" and .platform? == "android") | .versionName] | unique | join(",")')" = "1.0,2.0,3.0"

# --- Restore on the tablet: pinned, none, latest; its own package; the configuration
mkdir -p "$T/tablet/config/weixin" && echo "generated" > "$T/tablet/config/weixin/generated.ini"
out=$(af tablet restore weixin --version 1.0 --wait 30 2>&1)
check "restore --version 1.0 on the tablet installs 1.0" has "$out" "installed"
check "  ... in the tablet's own package, not the phone's" \
    test "$(installed tablet .versionName)/$(installed tablet .versionCode)/$(installed tablet .hash)" = "1.0/101/$(b2sum -l 256 "$P/wx1t.tar" | cut -d' ' -f1)"
check "  ... and the backed-up configuration replaced the one the tablet had (S4.6)" \
    test "$(cat "$T/tablet/config/weixin/settings.ini" 2>/dev/null)" = "theme=dark" -a ! -e "$T/tablet/config/weixin/generated.ini"
out=$(af tablet restore weixin --wait 30 2>&1)
check "restore with no preference installs the version backed up last (2.0, not the newest 3.0)" \
    test "$(installed tablet)" = 2.0
out=$(af tablet restore weixin --version 1.0 --wait 30 2>&1)
check "restore --version 1.0 over 2.0: the older version installs, as the user asked here" \
    test "$(installed tablet)" = 1.0
out=$(af tablet restore weixin --latest --wait 30 2>&1)
check "restore --latest installs the newest package that fits (3.0)" test "$(installed tablet)/$(installed tablet .versionCode)" = 3.0/301
check "  ... and no restore stays pending" test "$(jq -r '.restores | length' "$T/tablet/backup.json")" = 0

# --- Restore on the iPhone: the store link of the backed-up version
out=$(af iphone restore weixin --version 1.0 --wait 30 2>&1)
check "an Android backup restored on an iPhone gives the App Store link of that version" \
    has "$out" "store-link"
check "  ... the link recorded is version 1.0's" \
    test "$(jq -r '.versionName + " " + .storeLink' "$T/iphone/links/weixin.json")" = "1.0 https://apps.apple.com/app/weixin-1.0"

# --- Refusals
out=$(af tablet restore telegram 2>&1); rc=$?
check "restore of a program never backed up: E_NO_BACKUP" exits 1 $rc has "$out" "no backup of telegram" "E_NO_BACKUP"
out=$(af tablet restore weixin --version 9.9 2>&1); rc=$?
check "restore of a version never backed up: E_NO_VERSION, naming those there are" \
    exits 1 $rc has "$out" "E_NO_VERSION" "backed up: 2.0, 1.0"
out=$(af stranger restore weixin 2>&1); rc=$?
check "restore from a device logged in to no account is refused" exits 1 $rc has "$out" "E_NOT_LOGGED_IN"
out=$(af stranger login nosuch 2>&1); rc=$?
check "  ... and an unknown account gets E_NO_ACCOUNT" exits 1 $rc has "$out" "E_NO_ACCOUNT"
af stranger register bob > /dev/null || die "register bob failed"
out=$("$RAW" "$NODES_EP" "$BROKER_CERT" backups bob "$APPFERRY_PASSWORD" weixin 2>&1); rc=$?
check "a raw client of another account reads none of ana's backups" test $rc -eq 0
[ $rc -eq 0 ] || echo "$out"
out=$(af tablet backup telegram 2>&1); rc=$?
check "backup of a program not installed here is refused" exits 1 $rc has "$out" "not installed"

# --- A compromised broker edits the records it keeps (af_tamper, on its
# store while it runs): each restore is refused, naming what failed, and
# nothing is installed or left pending
TAMPER="$AF_BIN/tests/af_tamper"
tamper () { "$TAMPER" "$BROKER_DIR/store" "$@" || die "af_tamper $* failed"; }
pending_none () { test "$(jq -r '.restores | length' "$T/tablet/backup.json")" = 0; }
doc=$(af tablet --json backups weixin)
check "backups shows each record's ID and that it verifies with the account secret" \
    test "$(echo "$doc" | jq -r '[.backups[] | (.backupId | length), .authentic] | join(",")')" = "32,true,32,true"
tamper set ana weixin 2.0 versionCode 100
out=$(af tablet restore weixin 2>&1); rc=$?
check "a record whose version code the broker changed is refused: it does not verify with the account secret" \
    exits 1 $rc has "$out" "refused" "does not verify with the account secret" "nothing was installed"
check "  ... nothing installed, no restore pending" test "$(installed tablet)" = 3.0 -a -n "$(pending_none && echo y)"
check "  ... and backups marks it" \
    test "$(af tablet --json backups weixin | jq -r '[.backups[].authentic] | join(",")')" = "false,true"
tamper set ana weixin 2.0 versionCode 200
check "  ... the record put back as it was verifies again" \
    test "$(af tablet --json backups weixin | jq -r '[.backups[].authentic] | join(",")')" = "true,true"
tamper copy ana weixin 2.0 weixin saved-2.0
tamper copy ana weixin 1.0 weixin saved-1.0
tamper copy ana weixin 1.0 weixin 2.0
out=$(af tablet restore weixin --version 2.0 2>&1); rc=$?
check "a genuine record of another version, served for the version asked, is refused" \
    exits 1 $rc has "$out" "refused" "version 1.0 of weixin, not 2.0 as asked"
tamper copy ana weixin saved-2.0 weixin 2.0
tamper copy ana weixin 1.0 telegram 1.0
out=$(af tablet restore telegram 2>&1); rc=$?
check "a genuine record of another program is refused" \
    exits 1 $rc has "$out" "refused" "a backup of weixin, not of telegram"
tamper config ana weixin 1.0 "another configuration"
out=$(af tablet restore weixin --version 1.0 2>&1); rc=$?
check "a record whose sealed configuration the broker replaced is refused" \
    exits 1 $rc has "$out" "refused" "configuration" "not the one backed up (altered)"
tamper config ana weixin 1.0 ""
out=$(af tablet restore weixin --version 1.0 2>&1); rc=$?
check "  ... and one whose configuration the broker withheld" \
    exits 1 $rc has "$out" "refused" "(withheld)"
check "  ... nothing installed, no restore pending" test "$(installed tablet)" = 3.0 -a -n "$(pending_none && echo y)"
tamper copy ana weixin saved-1.0 weixin 1.0
out=$(af tablet restore weixin --version 1.0 --wait 30 2>&1)
check "the genuine records put back restore again" test "$(installed tablet)" = 1.0
af tablet restore weixin --latest --wait 30 > /dev/null 2>&1
check "  ... (and back to 3.0)" test "$(installed tablet)" = 3.0

# --- An older version offered without a restore asked for: still a rollback.
# A matcher over a catalog of weixin 1.0 only (the same signed file) offers it.
"$CATALOG_BIN" --catalog "$T/old" import --insecure-unsigned "$P/v1.json" > /dev/null || die "old import failed"
kill "$(eval echo \$MATCHER_PID_matcher)"; wait "$(eval echo \$MATCHER_PID_matcher)" 2>/dev/null
start_matcher old "$T/old"
out=$(af phone push weixin --to "$(device_id tablet)" --wait 30 2>&1)
check "an OFFER of an older version with no restore pending is refused as a rollback" \
    has "$out" "failed" "rollback" "older than the installed 3.0"
check "  ... the installed version stays" test "$(installed tablet)" = 3.0
kill "$(eval echo \$MATCHER_PID_old)"; wait "$(eval echo \$MATCHER_PID_old)" 2>/dev/null
start_matcher matcher2 "$C"

# --- Recommendations: jotter and dash are phone-only; notes has memo and
# scribe (50 votes each, tablet) and quill (90 votes, needs API 99); games
# has nothing else
af phone sync --install jotter,dash --wait 30 > /dev/null 2>&1
af phone backup jotter > /dev/null && af phone backup dash > /dev/null || die "backups failed"
out=$(af tablet restore jotter --recommend 2>&1); rc=$?
check "a restore nothing fits says why" exits 1 $rc has "$out" "no package of jotter fits" "made for phone"
check "  ... and recommends the best-voted program of its category that fits (memo: quill does not fit, scribe ties and sorts after)" \
    has "$out" "recommended instead: memo" "notes" "50 votes"
out=$(af tablet restore jotter 2>&1)
check "  ... without --recommend, no recommendation" test -z "$(echo "$out" | grep recommended)"
out=$(af tablet restore dash --recommend 2>&1); rc=$?
check "with nothing similar that fits: no package fits" \
    exits 1 $rc has "$out" "no package of dash fits" "no package fits"
stop_node tablet
start_node tablet "$DEVICES/galaxy-tab-s7.json" --recommend
wait_until 10 bash -c "'$CLI' --home '$T/tablet' --json status | jq -e .loggedIn" > /dev/null
out=$(af tablet restore jotter 2>&1)
check "the device preference --recommend asks for the recommendation" has "$out" "recommended instead: memo"
out=$(af tablet --json restore jotter 2>&1)
check "  ... deterministic: the same answer again" test "$(echo "$out" | jq -r .recommended.program)" = memo

# --- Restore end to end (AF_BACKUP_BENCH=N): back and forth between 2.0 and 1.0
if [ -n "${AF_BACKUP_BENCH:-}" ]; then
    times=()
    for i in $(seq "$AF_BACKUP_BENCH"); do
        v=$([ $((i % 2)) = 1 ] && echo 2.0 || echo 1.0)
        start=$(date +%s%N)
        af tablet restore weixin --version $v --wait 30 > /dev/null 2>&1 || die "bench restore failed"
        times+=($(( ($(date +%s%N) - start) / 1000000 )))
    done
    sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
    echo "# restore end to end, $AF_BACKUP_BENCH restores (ms, sorted): $sorted"
fi
finish
