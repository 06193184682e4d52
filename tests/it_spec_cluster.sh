#!/usr/bin/env bash
# The spec client (tests/spec_client/, written from protocol/SPEC.md alone)
# against a cluster: 3 brokers on etcd (16 shards, 3 s leases).
# tests/spec_client/cluster_checks.py checks, against SPEC.md 5.3, 5.36
# and 8.x: PING is answered by any broker; REGISTER and LOGIN sent to a
# broker that does not own the account's shard get REDIRECT (rid echoed,
# `shard` as the client computes it from the account name, `epoch`, the
# owner's `endpoint`), and sent again there succeed; an account is owned
# by each broker; a logged-in session's requests work on the owner;
# LOGIN_OK.standby names another broker. Then the owner of one account is
# killed (-9): the node sees silence, tries `standby` first and logs in
# again by key there, served with no REDIRECT, its REPORT and CONFIG_PUT
# of before the kill intact. This script cross-checks the client's shard
# and owner against etcd (cluster.sh's `shard` and `owner`) and does the
# kill when the client asks for it (a file in $T). Last, it restarts the
# killed broker: its shard moves back, and the session on the interim
# owner gets a REDIRECT without rid (5.36), follows it and logs in by key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd.sh"
. "$(dirname "$0")/cluster.sh"

PY=/usr/bin/python3         # Debian's, with python3-zmq and python3-msgpack
"$PY" -c 'import zmq, msgpack' 2> /dev/null || die "$PY lacks python3-zmq or python3-msgpack"
HB=1000                     # the spec's default (the client beats at 1 s before LOGIN_OK)
SHARDS=16 TTL=3
cluster_start 3
wait_until 25 all_owned || die "not every shard has an owner"
wait_until 25 all_in_sync || die "not every shard has an in-sync follower"

S=$AF_SRC/tests/spec_client
"$PY" "$S/cluster_checks.py" --shards "$SHARDS" --dir "$T" "$BROKER_CERT" "${EP[1]}" "${EP[2]}" "${EP[3]}" \
    > "$T/checks.log" 2>&1 &
CPID=$!
PIDS+=("$CPID")

# the client writes $T/accounts ("ACCOUNT SHARD ENDPOINT" of the owner as
# it learnt it) and $T/kill (the endpoint of the broker to kill)
# asked FILE: the client wrote $T/FILE, or it ended (no zombie counts)
asked () { test -s "$T/$1" || [ -z "$(ps -o stat= -p "$CPID" | grep -v Z)" ]; }
wait_until 40 asked kill && test -s "$T/kill" || { kill -9 "$CPID"; cat "$T/checks.log"; die "the client never asked for the kill"; }
victim=$(cat "$T/kill")
member=""
for i in 1 2 3; do [ "${EP[$i]}" = "$victim" ] && member=$i; done
bad=0
while read -r account s ep; do
    want=$(shard "$account"); id=$(owner "$want"); m=$(broker_of "$id")
    [ "$s" = "$want" ] || { echo "  # $account: the client's shard $s, the brokers' $want"; bad=1; }
    [ -n "$m" ] && [ "$ep" = "${EP[$m]}" ] || { echo "  # $account: the client's owner $ep, etcd's broker $m"; bad=1; }
done < "$T/accounts"
check "the client's shards and owners (REDIRECT) are etcd's ($(wc -l < "$T/accounts") accounts)" test "$bad" -eq 0
if [ -n "$member" ]; then
    kill -9 "${PID[$member]}"
    touch "$T/killed"
else
    not_ok "the endpoint to kill ($victim) is no broker's"
    kill -9 "$CPID"
fi
# then restarts that broker when the client asks (DIR/restart)
if [ -n "$member" ] && wait_until 40 asked restart && test -s "$T/restart"; then
    start_member "$member"
    touch "$T/restarted"
fi
wait "$CPID"
rc=$?
cat "$T/checks.log"
spec_results checks.log cluster_checks 60 "$rc"
for i in 1 2 3; do
    check "broker $i is still running" kill -0 "${PID[$i]}"
done
finish
