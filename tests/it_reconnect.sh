#!/usr/bin/env bash
# Requests held for the install reports (issue 10): a device comes back
# with many changes made offline and sends their reports first (S1.8);
# meanwhile the user asks for an install list, which waits for them, and
# the broker dies and restarts. After the reconnect the held request goes
# out after the new LOGIN and after the reports, and is answered.
. "$(dirname "$0")/lib.sh"

start_broker broker
start_node phone "$DEVICES/galaxy-s21.json"
af phone register ana > /dev/null || die "register failed"
af phone login ana > /dev/null || die "login failed"
PHONE=$(device_id phone)
stop_node phone

# While offline the phone made N changes: N reports in its queue, as the
# node writes them (HOME/reports/SEQ.json), the last an install
N=1500         # one REPORT per round trip (each a durable commit): enough to be mid-stream at the kill
mkdir -p "$T/phone/reports"
next=$(sed -n 's/^next_seq=//p' "$T/phone/node.state")
for i in $(seq 0 $((N - 1))); do
    s=$((next + i)); op=uninstall; program="gone$i"
    [ "$i" -eq $((N - 1)) ] && { op=install; program=lastapp; }
    printf '{"seq":%d,"op":"%s","program":"%s","versionName":"1.0","versionCode":1,"hash":"%064d","at":1700000000000}' \
        "$s" "$op" "$program" 0 > "$T/phone/reports/$(printf %020d "$s").json"
done
sed -i "s/^next_seq=.*/next_seq=$((next + N))/" "$T/phone/node.state"

start_node phone "$DEVICES/galaxy-s21.json"
wait_until 10 bash -c "'$CLI' --home '$T/phone' --json status | jq -e .loggedIn" || die "the phone did not log in"
# Held: the phone is still sending its reports
af phone --json apps --device "$PHONE" > "$T/apps.out" 2>&1 &
APPS=$!
sleep 0.3
left=$(ls "$T/phone/reports" | wc -l)
kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
check "the broker died while the phone was sending its reports ($left of $N left)" test "$left" -gt 0
start_broker broker
wait "$APPS"; rc=$?
sed 's/^/  # /' "$T/apps.out" | cut -c1-200
check "the held request is answered after the reconnect" test "$rc" -eq 0
check "  ... after every queued report (the last one is in the list)" \
    test "$(jq -r '[.apps[].program] | join(" ")' "$T/apps.out" 2>/dev/null)" = lastapp
check "  ... and nothing went before the LOGIN (no request was refused for want of one)" \
    bash -c "! grep -q E_NOT_LOGGED_IN '$T/phone.log' '$T/apps.out'"
reports_sent () { test -z "$(ls "$T/phone/reports")"; }     # looked at each try
check "every report reached the broker" wait_until 20 reports_sent

finish
