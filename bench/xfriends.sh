#!/usr/bin/env bash
# bench/xfriends.sh - bench_xfriends with an etcd of its own (bench/README.md
# "Friends across brokers"): FRIENDS of a book of 500 contacts on one broker
# and on a cluster of three, in the same run.
#
#   AF_BIN=$PWD/build AF_SRC=$PWD bash bench/xfriends.sh [bench_xfriends options]
. "$AF_SRC/tests/lib.sh"
. "$AF_SRC/tests/etcd.sh"
start_etcd e1
echo "  # load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$AF_BIN/bench/bench_xfriends" --etcd "$ETCD_ENDPOINT" "$@" | sed 's/^/  # /'
rc=${PIPESTATUS[0]}
echo "  # load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$rc" -eq 0 ] && ok "bench_xfriends" || not_ok "bench_xfriends"
finish
