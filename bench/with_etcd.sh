#!/usr/bin/env bash
# bench/with_etcd.sh - run a cluster benchmark (bench_xfriends, bench_xnotify,
# bench_repl) on an etcd of its own, started under a temporary directory on a
# loopback port by tests/etcd.sh and stopped afterwards; the load average
# before and after is printed beside the figures (bench/README.md).
#
#   AF_BIN=$PWD/build AF_SRC=$PWD bash bench/with_etcd.sh BENCH [its options]
. "$AF_SRC/tests/lib.sh"
. "$AF_SRC/tests/etcd.sh"
bench=${1:?usage: with_etcd.sh BENCH [options]}
shift
start_etcd e1
echo "  # load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$AF_BIN/bench/$bench" --etcd "$ETCD_ENDPOINT" "$@" | sed 's/^/  # /'
rc=${PIPESTATUS[0]}
echo "  # load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$rc" -eq 0 ] && ok "$bench" || not_ok "$bench"
finish
