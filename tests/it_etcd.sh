#!/usr/bin/env bash
# it_etcd: tests/etcd.sh, the etcd the cluster tests will stand on, does
# what it says: two members start side by side on their own loopback
# ports, each holds its own keys, and stop_etcd stops one and removes
# its data while the other goes on.
. "$AF_SRC/tests/lib.sh"
. "$AF_SRC/tests/etcd.sh"

quiet () { "$@" > /dev/null 2>&1; }

start_etcd e1
start_etcd e2
one=$ETCD_ENDPOINT_e1 two=$ETCD_ENDPOINT_e2
check "start_etcd exports the last one's endpoint" test "$ETCD_ENDPOINT" = "$two"
check "two etcds on two endpoints" test "$one" != "$two"
check "etcdctl puts a key on e1" quiet etcdctl_at "$one" put /t/k v1
check "  ... and reads it back" wait_eq 5 v1 etcdctl_at "$one" get --print-value-only /t/k
check "  ... e2 does not have it" test -z "$(etcdctl_at "$two" get --print-value-only /t/k)"

pid=$ETCD_PID_e1
stop_etcd e1
check "stop_etcd stops e1" bash -c "! kill -0 $pid 2>/dev/null"
check "  ... and removes its data" test ! -e "$T/e1.etcd"
check "  ... calls to it fail" bash -c "! etcdctl --endpoints=$one --dial-timeout=1s --command-timeout=1s get /t/k > /dev/null 2>&1"
check "  ... e2 goes on" quiet etcdctl_at "$two" put /t/k v2
stop_etcd e2
finish
