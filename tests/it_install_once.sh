#!/usr/bin/env bash
# An install command never runs twice at once (issue 9, section 3): with
# --install-cmd, a SIGKILL of the node takes the running command down with
# it; the node started again gets the offer again and runs the command
# again, once, after the first is gone; an install interrupted twice is
# reported failed rather than run a third time.
. "$(dirname "$0")/lib.sh"

"$CATALOG" --catalog "$T/catalog" import "$(free_demo_manifest)" > "$T/import.log" 2>&1 \
    || die "catalog import failed"
start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"
start_node phone "$DEVICES/galaxy-s21.json"
# Each run notes its start, its pid and its end; chess hangs, the rest take 4 s
CMD="case \"\$AF_PROGRAM\" in chess) d=590;; *) d=4;; esac
echo \"start \$\$ \$AF_PROGRAM\" >> '$T/runs'; echo \$\$ > '$T/cmd.pid'
sleep \$d; echo \"end \$\$ \$AF_PROGRAM\" >> '$T/runs'"
start_node tablet "$DEVICES/galaxy-tab-s7.json" --install-cmd "$CMD"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet; do af $n login ana > /dev/null || die "$n login failed"; done
TABLET=$(device_id tablet)
: > "$T/runs"

running () {        # running PID: alive and not a zombie
    local state; state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case "$state" in Z*) return 1;; esac
}
starts () { grep -c "^start .* $1\$" "$T/runs"; }
kill_tablet () { kill -9 "$(node_pid tablet)"; wait "$(node_pid tablet)" 2>/dev/null; }
restart_tablet () { start_node tablet "$DEVICES/galaxy-tab-s7.json" --install-cmd "$CMD"; }

# --- the node dies while weixin's command runs
push=$(afj phone .pushId push weixin --to "$TABLET" --no-wait)
wait_until 20 grep -q "^start .* weixin" "$T/runs" || die "the install command did not start"
first=$(cat "$T/cmd.pid")
check "the attempt is recorded before the command runs" test -s "$T/tablet/install.intent"
kill_tablet
check "the install command dies with the node" wait_until 2 bash -c "! ps -o stat= -p $first | grep -qv Z"
restart_tablet
check "the node started again installs it" wait_until 30 test -f "$T/tablet/installed/weixin.json"
second=$(cat "$T/cmd.pid")
check "  ... running the command once more, after the first was gone" \
    test "$(starts weixin)" -eq 2 -a "$second" != "$first"
check "  ... and only that run finished" \
    test "$(grep -c '^end ' "$T/runs")" -eq 1 -a "$(grep '^end ' "$T/runs")" = "end $second weixin"
check "  ... the push is done" wait_eq 10 installed \
    afj phone ".pushes[] | select(.pushId == \"$push\") | .targets[0].state" status
check "  ... and the attempt is no longer recorded" test ! -e "$T/tablet/install.intent"

# --- interrupted twice: not run a third time, reported failed
push=$(afj phone .pushId push chess --to "$TABLET" --no-wait)
started () { test "$(starts chess)" -eq "$1"; }     # counted at each try, not once
for attempt in 1 2; do
    wait_until 20 started $attempt || die "chess's command did not start (attempt $attempt)"
    pid=$(cat "$T/cmd.pid")
    kill_tablet
    wait_until 2 bash -c "! ps -o stat= -p $pid | grep -qv Z" || not_ok "chess's command $attempt outlived the node"
    restart_tablet
done
check "an install interrupted twice is reported failed" wait_eq 20 failed \
    afj phone ".pushes[] | select(.pushId == \"$push\") | .targets[0].state" status
check "  ... saying why" has "$(afj phone ".pushes[] | select(.pushId == \"$push\") | .targets[0].reason" status)" \
    "interrupted 2 times"
check "  ... and its command did not run a third time" test "$(starts chess)" -eq 2

finish
