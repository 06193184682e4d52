# tests/lib.sh - shared helpers for the integration tests.
#
# Each test starts the real binaries on loopback in a fresh temporary
# directory and drives them with the `appferry` CLI as a user would.
# Everything started is killed on exit; the directory is removed unless
# the test failed (then its logs are printed).
set -u
: "${AF_BIN:?AF_BIN must point at the build directory}"
: "${AF_SRC:?AF_SRC must point at the source directory}"
BROKER="$AF_BIN/broker/appferry-broker"
NODE="$AF_BIN/nodes/appferry-node"
CLI="$AF_BIN/nodes/appferry"
MATCHER="$AF_BIN/matcher/appferry-matcher"
CATALOG_BIN="$AF_BIN/matcher/appferry-catalog"
CATALOG="$AF_SRC/tests/catalog_signed.sh"   # imports sign (see there)
PAYMENTS="$AF_BIN/payments/appferry-payments"
CONTACTS="$AF_BIN/contacts/appferry-contacts"
RAW="$AF_BIN/tests/af_rawclient"
DEVICES="$AF_SRC/data/devices"
T=$(mktemp -d "${TMPDIR:-/tmp}/appferry-test.XXXXXX")
PIDS=()
WRAPPERS=()                 # NODE_PREFIX wrappers (strace) of nodes in PIDS
FAILED=0
PASSED=0
HB=200                      # heartbeat for every process in tests (ms)
export APPFERRY_PASSWORD="correct horse battery"

# The tests' signed store (B1): a root key, a store key and a publisher key
# in $AF_TRUST, the root's documents trusting the tests' publisher and the
# demo publisher of data/catalog/keys for every program; every node is
# given the root public key ($AF_ROOT_KEY), so nothing installs unchecked.
export T CATALOG_BIN AF_TRUST="$T/trust" AF_ROOT_KEY="$T/trust/root.pub"
make_trust () {
    mkdir -p "$AF_TRUST" && cat > "$AF_TRUST/publishers-in.json" <<JSON
[{"name": "Tests", "key": "publisher.pub", "programs": ["*"]},
 {"name": "appferry demo", "key": "$AF_SRC/data/catalog/keys/demo-publisher.pub", "programs": ["*"]}]
JSON
    "$CATALOG_BIN" keygen --root "$AF_TRUST/root" && "$CATALOG_BIN" keygen "$AF_TRUST/store" \
        && "$CATALOG_BIN" keygen "$AF_TRUST/publisher" \
        && "$CATALOG_BIN" root-sign --key "$AF_TRUST/root.key" --store-key "$AF_TRUST/store.pub" \
               --publishers "$AF_TRUST/publishers-in.json" "$AF_TRUST/docs"
}
make_trust > "$T/trust.log" 2>&1 || { echo "not ok - the tests' trust could not be made"; cat "$T/trust.log"; exit 1; }

cleanup () {
    local pid
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
    wait 2>/dev/null
    # KEEP_T=1 keeps the directory (logs, homes, stores) for a look after
    [ -n "${KEEP_T:-}" ] && { echo "kept $T"; return; }
    if [ "$FAILED" -gt 0 ]; then
        for log in "$T"/*.log "$T"/*/node.log; do
            [ -f "$log" ] && { echo "---- $log"; tail -n 40 "$log"; }
        done
    fi
    rm -rf "$T"
}
trap cleanup EXIT

ok () { PASSED=$((PASSED + 1)); echo "ok - $*"; }
not_ok () { FAILED=$((FAILED + 1)); echo "not ok - $*"; }
# fleet_line LOG PATTERN: the first line of an appferry-fleet's output matching
fleet_line () { grep -m1 -E "$2" "$1"; }
# fleet_checks LOG N MIN: a fleet's own verdict on its N devices: the
# brokers' install list of each agrees with the device's, 0 lost, 0
# duplicated, every acked one delivered, and at least MIN acked (a load)
fleet_checks () {
    local log=$1 n=$2 min=$3 final acked
    final=$(fleet_line "$log" '^[0-9]+ acked, [0-9]+ delivered, [0-9]+ lost, [0-9]+ duplicated$')
    acked=$(echo "$final" | cut -d' ' -f1)
    check "the brokers' install list of every device agrees with the device's own" grep -q \
        "^fleet: install lists checked with APPS: $n devices, $n agree, 0 wrong entries lost, 0 duplicated, 0 devices not checked" "$log"
    check "0 lost, 0 duplicated, every acked one delivered ($final)" \
        test -n "$final" -a "$final" = "$acked acked, $acked delivered, 0 lost, 0 duplicated"
    check "  ... of a real load: at least $min acknowledged" test "${acked:-0}" -ge "$min"
}
check () {                  # check "name" command...
    local name=$1; shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}
finish () {
    # Stop everything gracefully, so sanitizers report at exit, then fail
    # on any sanitizer report in any process's log.
    local pid log
    for pid in "${WRAPPERS[@]}"; do
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    for log in "$T"/*.log "$T"/*/node.log; do
        [ -f "$log" ] || continue
        if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$log"; then
            not_ok "sanitizer report in $(basename "$(dirname "$log")")/$(basename "$log")"
            grep -E -A 15 "AddressSanitizer|LeakSanitizer|runtime error:" "$log" | head -40
        fi
    done
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}
# has TEXT SUBSTRING...: every substring occurs in TEXT
has () {
    local text=$1; shift
    local part
    for part in "$@"; do
        case "$text" in *"$part"*) ;; *) echo "  # expected '$part' in: $text"; return 1;; esac
    done
}

# exits WANT RC cmd...: the exit status RC was WANT ("non-zero": any
# failure), and cmd (has "$out" ...) succeeds. Not `test $rc -eq 1 -a -n
# "$(has ... && echo y)"`: has prints what it missed, so that is never empty.
exits () {
    local want=$1 rc=$2; shift 2
    if [ "$want" = non-zero ]; then [ "$rc" -ne 0 ]; else [ "$rc" -eq "$want" ]; fi \
        || { echo "  # exit status $rc, expected $want"; return 1; }
    "$@"
}
die () { not_ok "$*"; finish; exit 1; }

# wait_until SECONDS command... : poll every 0.1 s
wait_until () {
    local limit=$1; shift
    local end=$((SECONDS + limit))
    while [ $SECONDS -le $end ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

# wait_eq SECONDS EXPECTED command...: poll until the command prints EXPECTED
wait_eq () {
    local limit=$1 expected=$2; shift 2
    local end=$((SECONDS + limit)) got=""
    while [ $SECONDS -le $end ]; do
        got=$("$@" 2>/dev/null)
        [ "$got" = "$expected" ] && return 0
        sleep 0.1
    done
    echo "  # expected '$expected', got '$got'"
    return 1
}

# broker_value DIR NAME: one of the broker's figures (DIR/metrics.prom,
# rewritten every second) as an integer, 0 if it has none
broker_value () { "$BROKER" --status --json -d "$1" | jq -r --arg k "$2" '.values[$k] // 0 | floor'; }

# spec_results LOG WHAT MIN RC: the checks a script of tests/spec_client/
# printed to $T/LOG: more than MIN of them, every one passed (the failed
# ones are shown), and its exit status RC was 0
spec_results () {
    local log=$1 what=$2 min=$3 rc=$4 total failed
    total=$(grep -c '^ok - \|^not ok - ' "$T/$log")
    failed=$(grep '^not ok - ' "$T/$log")
    check "the spec's client ran its $what ($total checks)" test "$total" -gt "$min"
    check "  ... every one passed" test -z "$failed"
    [ -z "$failed" ] || echo "$failed" | head -20
    check "  ... and it exited 0" test "$rc" = 0
}

# start_broker NAME [extra options...]: data in $T/NAME, ephemeral ports
# unless NODES_EP / WORKERS_EP are set. Sets BROKER_PID, NODES_EP, WORKERS_EP.
# BROKER_PREFIX, if set, runs before the binary (prlimit).
start_broker () {
    local name=$1; shift
    rm -f "$T/$name/endpoints"
    ${BROKER_PREFIX:-} "$BROKER" -d "$T/$name" --nodes "${NODES_EP:-tcp://127.0.0.1:*}" \
        --workers "${WORKERS_EP:-tcp://127.0.0.1:*}" --pwhash min --heartbeat $HB "$@" \
        >> "$T/$name.log" 2>&1 &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    wait_until 10 test -s "$T/$name/endpoints" || die "broker $name did not start"
    NODES_EP=$(sed -n 's/^nodes=//p' "$T/$name/endpoints")
    WORKERS_EP=$(sed -n 's/^workers=//p' "$T/$name/endpoints")
    BROKER_CERT="$T/$name/broker.cert"
    BROKER_DIR="$T/$name"
}

# start_node NAME DEVICE-FILE [node options...]: home in $T/NAME. Sets
# NODE_PID_<NAME>. NODE_PREFIX, if set, runs before the binary (prlimit).
start_node () {
    local name=$1 device=$2; shift 2
    rm -f "$T/$name/node.sock"
    ${NODE_PREFIX:-} "$NODE" -b "$NODES_EP" -k "$BROKER_CERT" -H "$T/$name" -D "$device" --heartbeat $HB "$@" \
        >> "$T/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    eval "NODE_PID_${name//-/_}=$pid"
    wait_until 10 test -S "$T/$name/node.sock" || die "node $name did not start"
    # Under a NODE_PREFIX (strace) $! is the wrapper, which ignores a TERM
    # while its command runs, and whose SIGKILL only detaches it: finish
    # kills the wrapper first (a sanitizer cannot check leaks under ptrace),
    # then stops the node itself
    if [ -n "${NODE_PREFIX:-}" ]; then
        local child
        WRAPPERS+=("$pid")
        for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do PIDS+=("$child"); done
    fi
    # A node is started against a running broker: wait for the connection,
    # so a test's first command does not race the CURVE handshake
    wait_until 10 bash -c "'$CLI' --home '$T/$name' --json status | jq -e .connected" \
        || die "node $name did not connect to the broker"
}

# logged_in NAME: wait until node NAME has logged in again (by key, after a
# restart it does so on its own, shortly after it connects)
logged_in () { wait_until 10 bash -c "'$CLI' --home '$T/$1' --json status | jq -e .loggedIn" > /dev/null; }

node_pid () { local v="NODE_PID_${1//-/_}"; echo "${!v}"; }

# af NAME args...: the CLI against node NAME
af () { local name=$1; shift; "$CLI" --home "$T/$name" "$@"; }

# jq over the CLI's JSON answer: afj NAME FILTER args...
afj () { local name=$1 filter=$2; shift 2; "$CLI" --home "$T/$name" --json "$@" | jq -r "$filter"; }

# stop_node NAME: stop a node through its CLI and wait until it is gone
stop_node () {
    local pid; pid=$(node_pid "$1")
    af "$1" stop >/dev/null 2>&1
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
}

# device_id NAME: the device ID node NAME logged in as
device_id () { afj "$1" .deviceId status; }

# free_demo_manifest: the path of data/catalog's manifest with its prices
# taken out (chess costs 2.99 EUR there), for the tests of push, sync and
# reports that use chess as one app among others: a paid program is offered
# only to an account that bought it (it_paid_push.sh), which they do not test
free_demo_manifest () {
    jq --arg d "$AF_SRC/data/catalog" 'map(del(.price, .currency) | if .file then .file = ($d + "/" + .file) else . end)' \
        "$AF_SRC/data/catalog/manifest.json" > "$T/demo-free.json" && echo "$T/demo-free.json"
}

# family MANIFEST: a catalog imported from MANIFEST, a broker and a matcher
# on it, and ana's phone, tablet and tv (Galaxy S21, Galaxy Tab S7,
# Chromecast with Google TV) registered and logged in; TABLET and TV hold
# the tablet's and the tv's device IDs
family () {
    "$CATALOG" --catalog "$T/catalog" import "$1" >> "$T/import.log" 2>&1 || die "catalog import failed"
    start_broker broker --catalog "$T/catalog"
    start_matcher matcher "$T/catalog"
    start_node phone "$DEVICES/galaxy-s21.json"
    start_node tablet "$DEVICES/galaxy-tab-s7.json"
    start_node tv "$DEVICES/chromecast-google-tv.json"
    af phone register ana > /dev/null || die "register failed"
    local n
    for n in phone tablet tv; do af $n login ana > /dev/null || die "$n login failed"; done
    TABLET=$(device_id tablet); TV=$(device_id tv)
}

# paid_catalog N: the catalog in $T/catalog from data/catalog's manifest,
# plus game1..gameN at 4.99 EUR and free1 at no price (each the universal
# notes package, versionName 1.N), for the payment tests
paid_catalog () {
    jq -n --argjson n "$1" --arg f "$AF_SRC/data/catalog/packages/notes-2.1.0-universal.tar" \
        '[range(1; $n + 1) | { program: "game\(.)", platform: "android", versionCode: 1, versionName: "1.\(.)",
          minSdk: 21, price: 499, currency: "EUR", file: $f }]
         + [{ program: "free1", platform: "android", versionCode: 1, versionName: "1.0", minSdk: 21, file: $f }]' \
        > "$T/paid.json" || die "cannot write the paid catalog"
    "$CATALOG" --catalog "$T/catalog" import "$AF_SRC/data/catalog/manifest.json" >> "$T/import.log" 2>&1 \
        && "$CATALOG" --catalog "$T/catalog" import "$T/paid.json" >> "$T/import.log" 2>&1 \
        || die "catalog import failed"
}

# preinstalled NAME PROGRAM VERSION: an install record in node NAME's home,
# as an app installed outside appferry (from the platform's store) leaves
# it; written before the node's first login, it is in the list it sends
preinstalled () {
    mkdir -p "$T/$1/installed" && jq -n --arg p "$2" --arg v "$3" \
        '{program: $p, versionName: $v, versionCode: 1, installedAt: 1700000000000, method: "builtin", files: []}' \
        > "$T/$1/installed/$2.json"
}

# start_payments [options]: the payments worker ($PAYMENTS), its ledger in
# $T/ledger, its certificate allowed by the broker; each call waits for
# one more "ready for 'payments'" in the broker's log than the last
start_payments () {
    "$PAYMENTS" -b "$WORKERS_EP" -k "$BROKER_CERT" -c "$T/payments.cert" -l "$T/ledger" --heartbeat $HB "$@" \
        >> "$T/payments.log" 2>&1 &
    PAYMENTS_PID=$!
    PIDS+=("$PAYMENTS_PID")
    wait_until 10 test -s "$T/payments.cert" || die "payments made no certificate"
    cp "$T/payments.cert" "$BROKER_DIR/workers/payments.cert"
    wait_until 10 bash -c "[ \$(grep -c \"ready for 'payments'\" '$BROKER_DIR.log') -gt ${READY:-0} ]" \
        || die "payments not ready"
    READY=$(grep -c "ready for 'payments'" "$BROKER_DIR.log")
}
# totals: the ledger's and the test processor's counts, one line
totals () { "$PAYMENTS" --status -l "$T/ledger"; }

# start_matcher NAME CATALOG-DIR [options]: cert allowed by the broker
start_matcher () {
    local name=$1 catalog=$2; shift 2
    "$MATCHER" -b "$WORKERS_EP" -k "$BROKER_CERT" -C "$catalog" -c "$T/$name.cert" \
        --heartbeat $HB "$@" >> "$T/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    eval "MATCHER_PID_${name//-/_}=$pid"
    # The broker admits workers whose certificate is in its worker keys dir
    wait_until 10 test -s "$T/$name.cert" || die "matcher $name made no certificate"
    cp "$T/$name.cert" "$BROKER_DIR/workers/$name.cert"
    wait_until 10 grep -q "worker .* ready" "$BROKER_DIR.log" || die "matcher $name not ready"
}
