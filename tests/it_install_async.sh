#!/usr/bin/env bash
# The built-in installer runs off the node's reactor (MISSION: expensive
# work off the reactor): while a package of 40,000 files unpacks, the node
# answers its CLI (its status shows the install and how far it is), keeps
# its session (no heartbeat missed, no new login), refuses an uninstall of
# that program here with a clear reason, and runs an uninstall another
# device asks for meanwhile after the install, once. A node stopped in the
# middle of such an install stops at once, changes nothing installed, and
# installs the package whole after its restart.
. "$(dirname "$0")/lib.sh"

MKPKG="$AF_BIN/tests/af_mkpkg"
N=40000
mkdir -p "$T/pkg"
# bulky 1.0 and 2.0: N one-byte files each (the version in a file of its own)
for v in 1 2; do
    "$MKPKG" "$T/pkg/bulky$v.tar" d:app/ f:app/VERSION=$v $(seq -f 'f:app/f%05g=x' 1 $N) \
        || die "cannot make bulky$v.tar"
done
cat > "$T/pkg/manifest.json" <<'JSON'
[ { "program": "bulky", "platform": "android", "versionCode": 1, "versionName": "1.0",
    "minSdk": 21, "file": "bulky1.tar" } ]
JSON
cat > "$T/pkg/manifest2.json" <<'JSON'
[ { "program": "bulky", "platform": "android", "versionCode": 2, "versionName": "2.0",
    "minSdk": 21, "file": "bulky2.tar" } ]
JSON
family "$T/pkg/manifest.json"
logins () { grep -c "logged in to 'ana'" "$T/tablet.log"; }
state () { afj tablet '.receiving[0].state // "none"' status; }
installing () { [ "$(state)" = installing ]; }

# --- the node serves while it installs
out=$(af phone push bulky --to "$TABLET" --no-wait 2>&1) || die "push failed: $out"
check "the tablet's status answers during the install, and shows it" wait_until 60 installing
entries=$(afj tablet ".receiving[0].entries // 0" status)
echo "  # $(af tablet status | grep -A1 '^Receiving' | tail -n 1 | sed 's/^ *//')"
check "  ... with how far it is (archive entries read: $entries)" test "${entries:-0}" -gt 0
out=$(af tablet uninstall bulky 2>&1); rc=$?
check "an uninstall of the program here meanwhile is refused, saying why" \
    exits 1 $rc has "$out" "bulky is being installed" "once that is done"
installing || die "the install ended before the phone's uninstall: make N larger"
out=$(af phone uninstall bulky --on "$TABLET" 2>&1); rc=$?
check "the phone asks the tablet to uninstall it meanwhile" exits 0 $rc has "$out" "offered"
check "  ... which waits for the install" \
    wait_until 10 grep -q "asked to uninstall bulky, which is being installed" "$T/tablet.log"
check "the install finished, then the uninstall ran" wait_until 60 grep -q "node: uninstalled bulky" "$T/tablet.log"
check "  ... nothing of bulky is left" test ! -e "$T/tablet/installed/bulky.json" -a ! -e "$T/tablet/apps/bulky"
check "  ... the install came first: it was recorded and reported" \
    grep -q "push .*: bulky 1.0 installed" "$T/tablet.log"
check "  ... then the uninstall, once" test "$(grep -c "node: uninstalled bulky" "$T/tablet.log")" -eq 1
apps () { ls -A "$T/tablet/apps" | tr '\n' ' '; }
check "  ... its files are removed off the reactor too: nothing left behind" wait_eq 20 "" apps
check "the tablet kept its session throughout (1 login, never silent)" \
    test "$(logins)" -eq 1 -a -z "$(grep "broker silent" "$T/tablet.log")"

# --- stopped in the middle of an install: stops at once, nothing changed
af phone push bulky --to "$TABLET" > /dev/null 2>&1 || die "bulky 1.0 not installed again"
"$CATALOG" --catalog "$T/catalog" import "$T/pkg/manifest2.json" >> "$T/import.log" 2>&1 \
    || die "catalog import of 2.0 failed"
out=$(af phone push bulky --to "$TABLET" --no-wait 2>&1) || die "push of 2.0 failed: $out"
wait_until 60 installing || die "the tablet never installed bulky 2.0"
pid=$(node_pid tablet)
start=$(date +%s%N)
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
took=$(( ($(date +%s%N) - start) / 1000000 ))
check "a node stopped in the middle of an install is gone within 5 s (took $took ms)" \
    test "$took" -lt 5000 -a -n "$(kill -0 "$pid" 2>&1)"
check "  ... the installed version is whole and recorded (1.0)" \
    test "$(jq -r .versionName "$T/tablet/installed/bulky.json")" = 1.0 \
         -a "$(cat "$T/tablet/apps/bulky/app/VERSION")" = 1
check "  ... its log says the install was stopped" grep -q "stopping the install of bulky" "$T/tablet.log"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
version () { jq -r .versionName "$T/tablet/installed/bulky.json" 2>/dev/null; }
check "after the restart the offer installs 2.0, whole" wait_eq 60 2.0 version
check "  ... all its files" test "$(cat "$T/tablet/apps/bulky/app/VERSION")" = 2 \
    -a "$(ls "$T/tablet/apps/bulky/app" | wc -l)" -eq $((N + 1))
check "  ... and no staging of the stopped one, nor 1.0's tree" wait_eq 20 "bulky " apps

finish
