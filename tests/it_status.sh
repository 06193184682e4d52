#!/usr/bin/env bash
# The broker's figures (issue 11, "status"): what DATA/metrics.prom, the
# Prometheus listener and `appferry-broker --status` show follows what the
# fleet does: sessions, logins, refusals by code, durable changes.
. "$(dirname "$0")/lib.sh"

# status JQ-FILTER: one figure from --status --json
status () { "$BROKER" --status --json -d "$BROKER_DIR" | jq -r "$1"; }
value () { "$BROKER" --status --json -d "$BROKER_DIR" | jq -r --arg k "$1" '.values[$k] // 0 | floor'; }

start_broker broker --metrics 127.0.0.1:0
URL=$(sed -n 's/^metrics=//p' "$BROKER_DIR/endpoints")
check "the broker says where its listener is" has "$URL" "http://127.0.0.1:" "/metrics"
check "it writes its figures to DATA/metrics.prom" test -s "$BROKER_DIR/metrics.prom"

start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
APPFERRY_PASSWORD=secret-one af phone register alice > /dev/null || die "register failed"
APPFERRY_PASSWORD=secret-one af phone login alice > /dev/null || die "login failed"
APPFERRY_PASSWORD=secret-one af tablet login alice > /dev/null || die "login failed"
APPFERRY_PASSWORD=wrong af tablet login alice > /dev/null 2>&1

check "two devices online" wait_eq 5 2 value appferry_devices_online
check "  ... on two sessions" wait_eq 5 2 value appferry_sessions
check "one account registered" wait_eq 5 1 value appferry_registrations_total
check "two logins accepted" wait_eq 5 2 value appferry_logins_total
check "one refused" wait_eq 5 1 value appferry_login_failures_total
check "  ... counted under its code, 401" wait_eq 5 1 value 'appferry_errors_total{code="401",name="E_BAD_PASSWORD"}'
check "durable changes were committed" test "$(value appferry_store_writes_total)" -gt 0
check "the store's use is shown" test "$(value appferry_store_used_bytes)" -gt 0
check "rates come from two snapshots" test "$(status '.perSecond | has("logins")')" = true
check "the process' memory is shown" test "$(value appferry_resident_bytes)" -gt 1000000

# The same figures over HTTP, as Prometheus scrapes them
port=${URL#http://127.0.0.1:}; port=${port%%/*}
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n' >&3
scraped=$(cat <&3)
exec 3<&-
check "GET /metrics answers 200 in Prometheus' text format" has "$scraped" "200 OK" "text/plain; version=0.0.4"
check "  ... with the same figures" has "$scraped" "appferry_devices_online 2" "# TYPE appferry_logins_total counter"

text=$("$BROKER" --status -d "$BROKER_DIR")
check "--status prints a summary" has "$text" "running (pid $BROKER_PID)" "sessions        2 of at most" \
    "devices online 2" "E_BAD_PASSWORD 1"

# A stopped broker's last figures are still readable, marked as such
kill -TERM "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
text=$("$BROKER" --status -d "$BROKER_DIR")
check "after a stop --status says the broker is not running" has "$text" "not running; its last figures"
check "  ... and --json too" test "$(status .running)" = false
mkdir -p "$T/empty"
out=$("$BROKER" --status -d "$T/empty" 2>&1); rc=$?
check "a directory without figures: exit 1 and why" test "$rc" = 1
check "  ... saying why" has "$out" "no figures in $T/empty"
out=$("$BROKER" --json 2>&1); rc=$?
check "--json without --status is refused" test "$rc" = 2

# --cluster-status reads a member's DATA/cluster.json: a damaged one (fields
# missing, an entry that is no shard) is shown as far as it goes, with exit 1
mkdir -p "$T/member"
printf '%s' '{"id":"b1","map":[{"shard":0},{"shard":1,"owner":"b1","epoch":3,"isr":""},5]}' > "$T/member/cluster.json"
out=$("$BROKER" --cluster-status -d "$T/member" 2>&1); rc=$?
check "a damaged shard map: exit 1, not a crash" test "$rc" = 1
check "  ... the shards it can read are shown" has "$out" "(none)" " b1 "
check "  ... the entry that is no shard is named" has "$out" "entry 2 of the map is not a shard"
out=$("$BROKER" --cluster-status --json -d "$T/member" 2>/dev/null)
check "  ... and in --json, the missing fields are null" \
    test "$(jq -c '[.[] | .owner]' <<< "$out")" = '[null,"b1"]'

finish
