# tests/etcd.sh - etcd for the cluster's integration tests (issue 12).
#
# Sourced after tests/lib.sh, which gives $T, PIDS, die and the cleanup:
#
#   . "$AF_SRC/tests/lib.sh"
#   . "$AF_SRC/tests/etcd.sh"
#   start_etcd e1          # etcd on two free loopback ports
#   ... "$ETCD_ENDPOINT" ...
#   stop_etcd e1
#
# start_etcd NAME: one etcd member (Debian's etcd-server; ./run installs
# it) with its client and peer URLs on 127.0.0.1, its data in
# $T/NAME.etcd and its log in $T/NAME.log, ready when this returns (it
# answers `etcdctl endpoint health`). Sets and exports ETCD_ENDPOINT
# (http://127.0.0.1:PORT, the last one started) and sets
# ETCD_ENDPOINT_<NAME> and ETCD_PID_<NAME> (dashes in NAME become
# underscores). Ports are picked at random below the kernel's ephemeral
# range and checked free; if etcd still fails to start (the port was
# taken meanwhile), it is tried again on others.
#
# stop_etcd NAME: stops it (TERM, then KILL after 5 s) and removes its
# data. lib.sh's cleanup kills whatever is still running on exit.
ETCD=${ETCD:-etcd}
ETCDCTL=${ETCDCTL:-etcdctl}

# A loopback port nothing listens on, from 20000-32767 (below Linux's
# ephemeral ports, so no outgoing connection holds it)
free_port () {
    local port
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 12768))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# etcdctl against endpoint: etcdctl_at ENDPOINT args...
etcdctl_at () {
    local endpoint=$1; shift
    ETCDCTL_API=3 "$ETCDCTL" --endpoints="$endpoint" --dial-timeout=1s --command-timeout=2s "$@"
}

start_etcd () {
    local name=$1 var=${1//-/_} client peer pid attempt
    command -v "$ETCD" > /dev/null \
        || die "no etcd binary: install the Debian package etcd-server (./run test installs it)"
    command -v "$ETCDCTL" > /dev/null \
        || die "no etcdctl: install the Debian package etcd-client (./run test installs it)"
    for attempt in 1 2 3; do
        client=$(free_port) && peer=$(free_port) || die "no free loopback port for etcd $name"
        [ "$client" != "$peer" ] || continue
        rm -rf "$T/$name.etcd"
        "$ETCD" --name "$name" --data-dir "$T/$name.etcd" \
            --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
            --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
            --initial-cluster "$name=http://127.0.0.1:$peer" \
            --logger zap --log-outputs stderr --log-level error >> "$T/$name.log" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        local end=$((SECONDS + 20))
        while [ $SECONDS -le $end ] && kill -0 "$pid" 2>/dev/null; do
            if etcdctl_at "http://127.0.0.1:$client" endpoint health > /dev/null 2>&1; then
                ETCD_ENDPOINT="http://127.0.0.1:$client"
                export ETCD_ENDPOINT
                eval "ETCD_ENDPOINT_$var=\$ETCD_ENDPOINT ETCD_PID_$var=$pid"
                return 0
            fi
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        echo "  # etcd $name did not start on ports $client/$peer (attempt $attempt)"
    done
    die "etcd $name does not start (see $T/$name.log)"
}

stop_etcd () {
    local var="ETCD_PID_${1//-/_}" pid
    pid=${!var:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -rf "$T/$1.etcd"
    eval "ETCD_PID_${1//-/_}="
}
