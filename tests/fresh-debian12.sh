#!/usr/bin/env bash
# tests/fresh-debian12.sh - does `./run test` pass on a fresh Debian 12?
#
#   sudo tests/fresh-debian12.sh [--boot] [--keep] [--head] [--dir DIR] [--mirror URL]
#
# Makes a minimal Debian 12 root (debootstrap --variant=minbase bookworm:
# no compiler, no python3, no procps, no systemd, no sudo), copies the
# source tree in, and runs `./run test` inside it as root, with a clean
# environment and nothing installed beforehand: `./run` must install all
# that the build and both test passes need. Prints how long each step took.
#
# With --boot, after the tests pass, it goes on as an operator would:
# `cmake --install build`, `deploy/install.sh`, then boots the root with
# systemd (systemd-nspawn, its own loopback-only network), runs
# `systemctl start appferry-broker appferry-matcher`, imports the sample
# catalog, starts four nodes from the template unit, reaching the broker by
# name (one with an install command through devices/NAME.env, one with the
# drop-in for system-wide install commands), pushes a package from one to
# the others and checks each installed it: by the built-in installer and
# by the command inside the sandbox, and by the command as root.
#
# Options:
#   --boot        the deployment check above (needs systemd-nspawn: it
#                 installs the Debian package systemd-container if missing)
#   --keep        keep the root afterwards (default: remove it)
#   --head        copy the committed HEAD (git archive) instead of the work
#                 tree (tracked and untracked files, without ignored ones
#                 such as build*/)
#   --dir DIR     make the root in DIR (default: a new /var/tmp/appferry-fresh.*)
#   --mirror URL  the Debian mirror (default http://deb.debian.org/debian)
#
# Needs root, network access to the Debian mirror, about 2 GiB of disk,
# and debootstrap (installed with apt-get if missing). On the 2-core
# development machine it took 10 min 47 s and 10 min 50 s on 2026-12-01
# (debootstrap, the packages, three builds, two ctest passes of about
# 4 min each with 41 tests, the fuzz pass; --boot adds 10 s), longer with
# a slow mirror or a busy machine. It is not part of ./run test or CI: it needs
# root, the mirror, and mounts.
#
# Exit status: 0 passed, 1 failed, 2 usage.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BOOT=0 KEEP=0 HEAD=0 DIR="" MIRROR=http://deb.debian.org/debian
while [ $# -gt 0 ]; do
    case "$1" in
        --boot) BOOT=1; shift ;;
        --keep) KEEP=1; shift ;;
        --head) HEAD=1; shift ;;
        --dir) DIR=${2:?--dir needs a directory}; shift 2 ;;
        --mirror) MIRROR=${2:?--mirror needs a URL}; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "fresh-debian12.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "fresh-debian12.sh: run me as root (debootstrap, chroot, mounts)" >&2; exit 2; }

START=$SECONDS
STEP_START=$SECONDS
step () {
    local now=$SECONDS
    [ "$STEP_START" -lt "$now" ] && echo "    ($((now - STEP_START)) s)"
    STEP_START=$now
    echo "==> $*"
}
elapsed () { local s=$((SECONDS - START)); printf '%d min %02d s' $((s / 60)) $((s % 60)); }

if [ -z "$DIR" ]; then
    DIR=$(mktemp -d /var/tmp/appferry-fresh.XXXXXX)
else
    mkdir -p "$DIR"
    [ -z "$(ls -A "$DIR")" ] || { echo "fresh-debian12.sh: $DIR is not empty" >&2; exit 2; }
    DIR=$(cd "$DIR" && pwd)
fi
[ "$DIR" != / ] || exit 2
chmod 0755 "$DIR"           # as / is: services run as other users than root

NSPAWN_PID=""
MOUNTS=()
# Processes left in the chroot (this script started them all)
kill_in_root () {
    local link pid
    for link in /proc/[0-9]*/root; do
        [ "$(readlink "$link" 2>/dev/null)" = "$DIR" ] || continue
        pid=${link#/proc/}; pid=${pid%/root}
        kill -KILL "$pid" 2>/dev/null || true
    done
    sleep 0.2
}
# Every mount is undone on exit, whatever happened; processes still
# running inside the root (started by this script) are stopped first.
# The root is removed only once nothing is mounted below it.
cleanup () {
    local rc=$? i
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$NSPAWN_PID" 2>/dev/null || true
    fi
    kill_in_root
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null \
            || echo "fresh-debian12.sh: cannot unmount ${MOUNTS[i]}" >&2
    done
    if [ "$KEEP" -eq 1 ]; then
        echo "kept the root in $DIR"
    elif grep -q " $DIR/" /proc/mounts; then
        echo "fresh-debian12.sh: something is still mounted below $DIR; not removing it" >&2
    else
        rm -rf --one-file-system "$DIR"
    fi
    echo "total: $(elapsed)"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_in () {           # mount_in TARGET mount-args...
    local target="$DIR$1"; shift
    mkdir -p "$target"
    mount "$@" "$target"
    MOUNTS+=("$target")
}

# --- 1. the root
step "debootstrap --variant=minbase bookworm into $DIR"
if ! command -v debootstrap > /dev/null; then
    env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap > /dev/null
fi
debootstrap --variant=minbase bookworm "$DIR" "$MIRROR" > "$DIR.debootstrap.log" 2>&1 \
    || { tail -n 20 "$DIR.debootstrap.log"; exit 1; }
rm -f "$DIR.debootstrap.log"
# As a fresh installation has it: updates and security too
cat > "$DIR/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$DIR/etc/resolv.conf"
echo "    packages in the root: $(chroot "$DIR" dpkg-query -W -f='.\n' | wc -l);" \
     "python3: $(chroot "$DIR" sh -c 'command -v python3 || echo none'), gcc: $(chroot "$DIR" sh -c 'command -v gcc || echo none')"

# --- 2. the source
if [ "$HEAD" -eq 1 ]; then
    step "copying the source: git archive HEAD ($(git -C "$SRC" rev-parse --short HEAD))"
    mkdir -p "$DIR/appferry"
    git -C "$SRC" archive HEAD | tar -x -C "$DIR/appferry"
elif git -C "$SRC" rev-parse --git-dir > /dev/null 2>&1; then
    step "copying the source: the work tree ($(git -C "$SRC" describe --always --dirty), without ignored files)"
    mkdir -p "$DIR/appferry"
    (cd "$SRC" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | tar -x -C "$DIR/appferry"
else
    step "copying the source tree (without build*/)"
    mkdir -p "$DIR/appferry"
    tar -C "$SRC" --exclude='./build*' -cf - . | tar -x -C "$DIR/appferry"
fi

# --- 3. ./run test inside, as root, environment cleared
mount_in /proc -t proc proc
mount_in /dev --bind /dev
mount_in /dev/pts --bind /dev/pts
mount_in /dev/shm -t tmpfs -o mode=1777,nosuid,nodev tmpfs
in_root () {
    chroot "$DIR" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
}
step "./run test in the fresh root"
if ! in_root bash -c 'cd /appferry && ./run test' 2>&1 | tee "$DIR/run-test.log"; then
    step "FAILED: ./run test in a fresh Debian 12 root (after $(elapsed))"
    exit 1
fi
echo "    $(grep -cE '^ *[0-9]+/[0-9]+ Test' "$DIR/run-test.log") test results; the two ctest summaries:"
grep -E "tests passed|tests failed" "$DIR/run-test.log" | sed 's/^/      /'
step "./run test passed in a fresh Debian 12 root (after $(elapsed))"

[ "$BOOT" -eq 1 ] || exit 0

# --- 4. as an operator: install, then systemd
step "cmake --install build; deploy/install.sh"
in_root bash -c 'cd /appferry && cmake --install build > /root/install.log && deploy/install.sh'
ETC="$DIR/etc/appferry"
[ -d "$ETC/devices" ] || { echo "install.sh made no $ETC/devices" >&2; exit 1; }
# Nodes reach the broker by name, as on a real network
printf '127.0.0.1\tlocalhost\n127.0.0.1\tbroker.example\n' > "$DIR/etc/hosts"
sed -i 's|^APPFERRY_BROKER=.*|APPFERRY_BROKER=tcp://broker.example:5670|' "$ETC/node.env"
cp "$DIR/appferry/data/devices/galaxy-s21.json" "$ETC/devices/phone.json"
cp "$DIR/appferry/data/devices/galaxy-tab-s7.json" "$ETC/devices/tablet.json"
cp "$DIR/appferry/data/devices/windows-pc.json" "$ETC/devices/pc.json"
cp "$DIR/appferry/data/devices/windows-pc.json" "$ETC/devices/rootpc.json"
# The pc installs with a command, named in its own env file: it copies the
# verified package into the home, which is all the sandbox lets it write.
# The rootpc has the drop-in for system-wide installers: its command runs
# as root and writes /opt.
printf '#!/bin/sh\ncp "$AF_PACKAGE" /var/lib/appferry-node/pc/by-command.tar\n' > "$ETC/devices/pc-install"
printf '#!/bin/sh\nid -u > /var/lib/appferry-node/rootpc/command-uid\nmkdir -p /opt/appferry-test && cp "$AF_PACKAGE" /opt/appferry-test/by-root.tar\n' \
    > "$ETC/devices/rootpc-install"
chmod 0755 "$ETC/devices/pc-install" "$ETC/devices/rootpc-install"
for name in pc rootpc; do
    echo "APPFERRY_NODE_OPTIONS=--install-cmd=/etc/appferry/devices/$name-install" > "$ETC/devices/$name.env"
done
mkdir -p "$DIR/etc/systemd/system/appferry-node@rootpc.service.d"
cp "$DIR/usr/local/share/appferry/appferry-node-system-installer.conf" "$DIR/etc/systemd/system/appferry-node@rootpc.service.d/"

step "booting the root with systemd (systemd-nspawn)"
if ! command -v systemd-nspawn > /dev/null; then
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd-container > /dev/null
fi
# nspawn mounts /proc, /dev and the rest itself
kill_in_root
for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount "${MOUNTS[i]}"; done
MOUNTS=()
systemd-nspawn -D "$DIR" --register=no --keep-unit --private-network -b --console=pipe \
    > "$DIR.boot.log" 2>&1 &
NSPAWN_PID=$!
LEADER=""
for i in $(seq 100); do
    LEADER=$(cat "/proc/$NSPAWN_PID/task/$NSPAWN_PID/children" 2>/dev/null | awk '{ print $1 }')
    [ -n "$LEADER" ] && break
    sleep 0.1
done
[ -n "$LEADER" ] || { cat "$DIR.boot.log"; echo "systemd-nspawn did not start" >&2; exit 1; }
in_boot () { nsenter --target "$LEADER" --all /usr/bin/env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
state=""
for i in $(seq 120); do
    state=$(in_boot systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 0.5
done
echo "    systemd in the root: $state"

FAILED=0
check () {
    local name=$1; shift
    if "$@"; then echo "ok - $name"; else echo "not ok - $name"; FAILED=$((FAILED + 1)); fi
}
wait_until () {
    local limit=$1; shift
    local end=$((SECONDS + limit))
    while [ $SECONDS -le $end ]; do "$@" > /dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}
step "systemctl start appferry-broker appferry-matcher"
check "systemctl start appferry-broker appferry-matcher" in_boot systemctl start appferry-broker appferry-matcher
check "  ... both active" wait_until 5 in_boot systemctl is-active --quiet appferry-broker appferry-matcher
check "  ... the broker admits the matcher" \
    wait_until 15 in_boot sh -c 'journalctl -u appferry-broker | grep -q "worker .* ready"'
# The signed store, as its operator sets it up: a root key (offline; here
# in /root), the store's online key, the demo publisher trusted; the root
# public key to every node (AF_ROOT_KEY in node.env)
in_boot sh -c 'appferry-catalog keygen --root /root/store-root \
    && runuser -u appferry -- appferry-catalog --catalog /var/lib/appferry-catalog keygen --store \
    && printf "[{\"name\": \"appferry demo\", \"key\": \"/appferry/data/catalog/keys/demo-publisher.pub\", \"programs\": [\"*\"]}]\n" > /root/publishers.json \
    && appferry-catalog root-sign --key /root/store-root.key --store-key /var/lib/appferry-catalog/keys/store.pub \
         --publishers /root/publishers.json /root/root-docs \
    && cp -r /root/root-docs /tmp/root-docs && cp /root/store-root.pub /tmp/ && chmod -R a+rX /tmp/root-docs /tmp/store-root.pub \
    && runuser -u appferry -- appferry-catalog --catalog /var/lib/appferry-catalog trust /tmp/store-root.pub /tmp/root-docs \
    && cp /root/store-root.pub /etc/appferry/store-root.pub \
    && sed -i "s|^#AF_ROOT_KEY=.*|AF_ROOT_KEY=/etc/appferry/store-root.pub|" /etc/appferry/node.env' \
    || echo "    # the signed store's set-up failed"
in_boot runuser -u appferry -- appferry-catalog --catalog /var/lib/appferry-catalog \
    import /appferry/data/catalog/manifest.json | sed 's/^/    /'
NODES="phone tablet pc rootpc"
check "four nodes start from appferry-node@.service" \
    in_boot systemctl start appferry-node@phone appferry-node@tablet appferry-node@pc appferry-node@rootpc
# The CLI as the node's user: appferry, or root for the rootpc (the
# drop-in runs it as root, and StateDirectory= gives root its home)
cli () {
    local name=$1; shift
    local as=appferry; [ "$name" = rootpc ] && as=root
    in_boot APPFERRY_PASSWORD="fresh debian 12" runuser -u "$as" -- appferry --home "/var/lib/appferry-node/$name" "$@"
}
connected () { cli "$1" --json status 2>/dev/null | grep -q '"connected": *true'; }
for name in $NODES; do
    check "  ... $name connects to the broker by name" wait_until 15 connected "$name"
done
cli phone register ana > /dev/null || echo "    # register failed"
for name in $NODES; do cli "$name" login ana > /dev/null || echo "    # $name login failed"; done
out=$(cli phone push weixin --to all --wait 60 2>&1) || true
echo "$out" | grep -E "installed|failed" | sed 's/^/    # /'
check "a push reaches the tablet: installed by the built-in installer in its sandbox" \
    test -f "$DIR/var/lib/appferry-node/tablet/installed/weixin.json"
check "  ... and the pc: installed by its install command inside the sandbox" \
    test -f "$DIR/var/lib/appferry-node/pc/by-command.tar" -a -f "$DIR/var/lib/appferry-node/pc/installed/weixin.json"
check "  ... and the rootpc: its command ran as root and wrote /opt (the drop-in)" \
    test "$(cat "$DIR/var/lib/appferry-node/rootpc/command-uid" 2>/dev/null)" = 0 \
         -a -f "$DIR/opt/appferry-test/by-root.tar" -a -f "$DIR/var/lib/appferry-node/rootpc/installed/weixin.json"
echo "    systemd-analyze security --offline, in the booted system:"
in_boot systemd-analyze security --offline=true appferry-broker.service appferry-matcher.service \
    appferry-node@pc.service appferry-node@rootpc.service 2>&1 | grep "Overall" | sed 's/^/      /'
if [ "$FAILED" -gt 0 ]; then
    echo "    the services' journal:"
    in_boot journalctl -u 'appferry-*' --no-pager | tail -n 40 | sed 's/^/      /'
fi
in_boot systemctl poweroff 2>/dev/null || true
for i in $(seq 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
rm -f "$DIR.boot.log"
step "deployment check: $FAILED failed (after $(elapsed))"
[ "$FAILED" -eq 0 ]
