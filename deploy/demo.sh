#!/usr/bin/env bash
# The appferry demo (run by `./run demo`): a broker, a matcher and four
# device nodes on loopback, in a fresh directory, driven with the CLI.
#
#   deploy/demo.sh BUILD-DIR [--keep]
set -euo pipefail
BUILD=$(cd "$1" && pwd); shift
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
SRC=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d /tmp/appferry-demo.XXXXXX)
BROKER="$BUILD/broker/appferry-broker"
MATCHER="$BUILD/matcher/appferry-matcher"
CATALOG="$BUILD/matcher/appferry-catalog"
PAYMENTS="$BUILD/payments/appferry-payments"
NODE="$BUILD/nodes/appferry-node"
CLI="$BUILD/nodes/appferry"
export APPFERRY_PASSWORD="demo password 2026"
PIDS=()

# Bold headings on a terminal only: a log file or a pipe gets plain text
if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD="" PLAIN=""; fi
step () { printf '\n%s--- %s%s\n' "$BOLD" "$*" "$PLAIN"; }
stop_all () {
    for home in "$D"/phone "$D"/tablet "$D"/tv "$D"/iphone "$D"/newphone; do
        [ -S "$home/node.sock" ] && "$CLI" --home "$home" stop >/dev/null 2>&1 || true
    done
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    # Daemonized nodes the CLI could not stop (as pkill -f would, but
    # procps is not on every machine)
    local f cmd pid
    for f in /proc/[0-9]*/cmdline; do
        cmd=$(tr '\0' ' ' 2>/dev/null < "$f") || continue
        pid=${f#/proc/}
        case "$cmd" in *appferry-node\ *"$D"*) kill "${pid%/cmdline}" 2>/dev/null || true;; esac
    done
    rm -rf "$D"
}
fail () {
    echo "demo failed: $*" >&2
    # What the phone's node holds, and what the broker answers it now
    [ -S "$D/phone/node.sock" ] && { "$CLI" --home "$D/phone" status; "$CLI" --home "$D/phone" devices --refresh; } >&2 2>&1
    tail -n 20 "$D"/*.log "$D"/*/node.log >&2 2>/dev/null || true
    stop_all
    exit 1
}
wait_for () { local i; for i in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
[ $KEEP -eq 1 ] || trap 'stop_all' EXIT

step "Broker: data in $D/broker (keypair made on first start, LMDB store)"
"$BROKER" --data "$D/broker" --nodes 'tcp://127.0.0.1:*' --workers 'tcp://127.0.0.1:*' \
    --catalog "$D/catalog" > "$D/broker.log" 2>&1 &
PIDS+=($!)
wait_for test -s "$D/broker/endpoints" || fail "the broker did not start"
NODES_EP=$(sed -n 's/^nodes=//p' "$D/broker/endpoints")
WORKERS_EP=$(sed -n 's/^workers=//p' "$D/broker/endpoints")
echo "nodes connect to $NODES_EP, workers to $WORKERS_EP"

step "The signed store: a root key (offline), the store's key, the demo publisher trusted"
"$CATALOG" keygen --root "$D/root" && "$CATALOG" --catalog "$D/catalog" keygen --store || fail "keygen failed"
printf '[{"name": "appferry demo", "key": "%s", "programs": ["*"]}]\n' \
    "$SRC/data/catalog/keys/demo-publisher.pub" > "$D/publishers.json"
"$CATALOG" root-sign --key "$D/root.key" --store-key "$D/catalog/keys/store.pub" \
    --publishers "$D/publishers.json" "$D/root-docs" \
    && "$CATALOG" --catalog "$D/catalog" trust "$D/root.pub" "$D/root-docs" || fail "the root's documents failed"

step "Catalog: import data/catalog/manifest.json (each package signed by the demo publisher)"
"$CATALOG" --catalog "$D/catalog" import "$SRC/data/catalog/manifest.json" || fail "import failed"

step "Matcher: its certificate goes into the broker's worker keys"
"$MATCHER" --broker "$WORKERS_EP" --broker-key "$D/broker/broker.cert" --catalog "$D/catalog" \
    --cert "$D/matcher.cert" > "$D/matcher.log" 2>&1 &
PIDS+=($!)
wait_for test -s "$D/matcher.cert" || fail "the matcher made no certificate"
cp "$D/matcher.cert" "$D/broker/workers/"
wait_for grep -q "worker .* ready" "$D/broker.log" || fail "the matcher did not join"
echo "matcher ready"

step "Payments: its ledger in $D/ledger, with the test processor (tokens decide: tok_approve, tok_decline, ...)"
"$PAYMENTS" --broker "$WORKERS_EP" --broker-key "$D/broker/broker.cert" --cert "$D/payments.cert" \
    --ledger "$D/ledger" > "$D/payments.log" 2>&1 &
PIDS+=($!)
wait_for test -s "$D/payments.cert" || fail "the payments service made no certificate"
cp "$D/payments.cert" "$D/broker/workers/"
wait_for grep -q "ready for 'payments'" "$D/broker.log" || fail "the payments service did not join"
echo "payments ready"

step "Four device nodes"
for pair in phone:galaxy-s21 tablet:galaxy-tab-s7 tv:chromecast-google-tv iphone:iphone-13; do
    name=${pair%%:*} device=${pair#*:}
    "$NODE" --broker "$NODES_EP" --broker-key "$D/broker/broker.cert" --root-key "$D/root.pub" --home "$D/$name" \
        --device "$SRC/data/devices/$device.json" --daemon
done

# The phone has chess (2.99 EUR) from before appferry, bought in its
# platform's store: its node lists it with its apps at its first login
mkdir -p "$D/phone/installed"
printf '{"program": "chess", "versionName": "5.0.1", "versionCode": 501, "installedAt": %s000, "method": "builtin", "files": []}\n' \
    "$(date +%s)" > "$D/phone/installed/chess.json"

step "Register the account 'ana' and log all four devices in"
"$CLI" --home "$D/phone" register ana
for name in phone tablet tv iphone; do "$CLI" --home "$D/$name" login ana; done

# Each node receives the account's device list from the broker (pushed)
for name in phone tablet tv iphone; do
    wait_for test "$("$CLI" --home "$D/$name" --json devices | jq '[.devices[] | select(.online)] | length')" = 4 \
        || fail "$name did not receive a list of four online devices"
done
for name in phone tablet tv iphone; do
    step "The device list the $name received"
    "$CLI" --home "$D/$name" devices
done

step "Which package of each program fits each device (asked through the broker to the matcher)"
for name in phone tablet tv iphone; do
    for program in weixin notes chess; do
        printf '%-7s ' "$name:"
        "$CLI" --home "$D/$name" resolve "$program" 2>&1 | sed 's/^appferry: //' || true
    done
done

step "A notification from the phone to the tablet"
TABLET_ID=$("$CLI" --home "$D/tablet" --json status | jq -r .deviceId)
"$CLI" --home "$D/phone" notify "$TABLET_ID" "Photos are ready"
wait_for test "$("$CLI" --home "$D/tablet" --json notifications | jq '.notifications | length')" = 1 \
    || fail "the tablet got no notification"
"$CLI" --home "$D/tablet" notifications

step "The phone pushes weixin to the tablet, the TV and the iPhone: each gets its own package"
TV_ID=$("$CLI" --home "$D/tv" --json status | jq -r .deviceId)
IPHONE_ID=$("$CLI" --home "$D/iphone" --json status | jq -r .deviceId)
"$CLI" --home "$D/phone" push weixin --to "$TABLET_ID,$TV_ID,$IPHONE_ID" || fail "the push failed"
for name in tablet tv iphone; do
    step "What the $name got"
    "$CLI" --home "$D/$name" installed
done
step "Why: what the matcher picks for each device's own description"
for name in tablet tv iphone; do
    printf '%-7s ' "$name:"
    "$CLI" --home "$D/$name" resolve weixin 2>&1 | sed 's/^appferry: //' || true
done
for name in tablet tv; do
    printf '%-7s unpacked under %s: ' "$name" "$D/$name/apps/weixin"
    (cd "$D/$name/apps/weixin" && find . -type f | sort | tr '\n' ' '); echo
done

step "A paid app: the phone has chess (2.99 EUR); its push to the tablet is refused until the account buys it"
"$CLI" --home "$D/phone" push chess --to "Ana's tablet" || true
step "The tablet browses the phone and buys chess"
wait_for test "$("$CLI" --home "$D/tablet" --json apps --device "Ana's phone" | jq '[.apps[] | select(.program == "chess")] | length')" = 1 \
    || fail "the broker does not list the phone's chess"
"$CLI" --home "$D/tablet" browse --device "Ana's phone"
"$CLI" --home "$D/tablet" get chess --from "Ana's phone" < /dev/null || true
"$CLI" --home "$D/tablet" get chess --from "Ana's phone" --confirm-payment tok_approve || fail "buying chess failed"
"$CLI" --home "$D/tablet" purchases
step "The iPhone gets chess too (its store link): the account paid, so nothing is charged again"
"$CLI" --home "$D/iphone" get chess --from "Ana's phone" < /dev/null || fail "the iPhone's get failed"
"$PAYMENTS" --status --ledger "$D/ledger"

step "The tablet shares weixin's settings, sealed with the account secret (the broker never sees them)"
export APPFERRY_SECRET="demo account secret 2026"
for name in phone tablet; do "$CLI" --home "$D/$name" config secret; done
mkdir -p "$D/tablet/config/weixin"
printf 'font=large\nchat_wallpaper=sunset\n' > "$D/tablet/config/weixin/settings.conf"
"$CLI" --home "$D/tablet" config share weixin
"$CLI" --home "$D/phone" sync --install notes > /dev/null || fail "the phone could not install notes"
echo "(the phone installed notes for itself)"

step "A new device logs in: what do the others have that it lacks?"
"$NODE" --broker "$NODES_EP" --broker-key "$D/broker/broker.cert" --root-key "$D/root.pub" --home "$D/newphone" \
    --device "$SRC/data/devices/galaxy-a10.json" --daemon
wait_for test -S "$D/newphone/node.sock" || fail "the new phone's node did not start"
wait_for "$CLI" --home "$D/newphone" status || fail "the new phone's node does not answer"
"$CLI" --home "$D/newphone" login ana
"$CLI" --home "$D/newphone" config secret
"$CLI" --home "$D/newphone" sync || fail "sync failed"

step "It installs all that fits, each the package for its own platform and OS, with the settings"
"$CLI" --home "$D/newphone" sync --install-all || fail "installing the picks failed"
"$CLI" --home "$D/newphone" installed
for i in $(seq 50); do
    [ -n "$("$CLI" --home "$D/newphone" --json status | jq -r '.configWaiting | join(",")')" ] && break
    sleep 0.1
done
"$CLI" --home "$D/newphone" config apply weixin || fail "applying weixin's settings failed"
echo "weixin settings on the new phone:"; sed 's/^/    /' "$D/newphone/config/weixin/settings.conf"
"$CLI" --home "$D/newphone" stop > /dev/null

step "The iPhone stops; the others see it offline"
"$CLI" --home "$D/iphone" stop
wait_for test "$("$CLI" --home "$D/phone" --json devices | jq '[.devices[] | select(.online)] | length')" = 3 \
    || fail "the phone did not see the iPhone go offline"
"$CLI" --home "$D/phone" devices

if [ $KEEP -eq 1 ]; then
    step "Left running (--keep)"
    cat <<MSG
Directory:  $D
Broker:     $NODES_EP (public key $D/broker/broker.cert), log $D/broker.log
Try:        export APPFERRY_PASSWORD='$APPFERRY_PASSWORD'
            $CLI --home $D/phone devices
            $CLI --home $D/tablet resolve weixin
            $NODE --broker $NODES_EP --broker-key $D/broker/broker.cert \\
                  --home $D/iphone --device $SRC/data/devices/iphone-13.json --daemon
Stop:       $CLI --home $D/phone stop; $CLI --home $D/tablet stop; $CLI --home $D/tv stop
            kill ${PIDS[*]}; rm -rf $D
MSG
else
    step "Done: stopping everything"
fi
