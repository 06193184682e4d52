#!/usr/bin/env bash
# Deployment (issue 9): what `cmake --install` and deploy/install.sh make
# is a system whose units are valid and hardened and whose services work
# as the units start them.
#
# Into a temporary root (DESTDIR, then install.sh --root): every unit
# passes `systemd-analyze verify` without a word and scores below 4 in
# `systemd-analyze security --offline`; install.sh makes the appferry
# user, the directories with their owners and modes, the configuration,
# both keypairs and the matcher's place in the broker's worker keys, and a
# second run keeps all of it; then the broker, the matcher and two nodes
# run as appferry with their units' own ExecStart lines (paths moved into
# the root, ports picked by the kernel), the matcher is admitted with the
# key install.sh set up, and a push streams a package from the catalog the
# units name. No systemd runs here; `tests/fresh-debian12.sh --boot`
# starts the units under a real one. The install.sh half needs root (it
# creates a user and runs the services as it); as another user it is
# reported skipped.
. "$(dirname "$0")/lib.sh"

command -v systemd-analyze > /dev/null || die "systemd-analyze is missing (./run installs the systemd package)"
chmod 0755 "$T"
R="$T/root"
PREFIX=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$AF_BIN/CMakeCache.txt")
UNITS="$R$PREFIX/lib/systemd/system"
DESTDIR="$R" cmake --install "$AF_BIN" > "$T/install.log" 2>&1 || { cat "$T/install.log"; die "cmake --install failed"; }
check "cmake --install puts the five units, the sysusers and tmpfiles files and install.sh in the prefix" \
    test -f "$UNITS/appferry-broker.service" -a -f "$UNITS/appferry-matcher.service" \
         -a -f "$UNITS/appferry-contacts.service" -a -f "$UNITS/appferry-payments.service" \
         -a -f "$UNITS/appferry-node@.service" -a -f "$R$PREFIX/lib/sysusers.d/appferry.conf" \
         -a -f "$R$PREFIX/lib/tmpfiles.d/appferry.conf" -a -x "$R$PREFIX/share/appferry/install.sh"

# --- the units: valid, hardened. verify --root reads every unit below the
#     root, so the system's own (sysinit.target, network-online.target)
#     are copied in beside ours.
mkdir -p "$R/usr/lib/systemd"
for dir in /usr/lib/systemd/system /lib/systemd/system; do
    [ -d "$dir" ] && { cp -r "$dir" "$R/usr/lib/systemd/"; break; }
done
THRESHOLD=39                # systemd-analyze's scale is 0-100: below 4.0
for unit in appferry-broker.service appferry-matcher.service appferry-contacts.service appferry-payments.service \
            appferry-node@.service; do
    out=$(systemd-analyze verify --root="$R" "$UNITS/$unit" 2>&1); rc=$?
    check "systemd-analyze verify $unit: clean" test $rc -eq 0 -a -z "$out"
    [ -z "$out" ] || echo "$out" | sed 's/^/  # /'
    out=$(systemd-analyze security --offline=true --root="$R" --threshold=$THRESHOLD "$UNITS/$unit" 2>&1); rc=$?
    level=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    check "systemd-analyze security $unit: exposure ${level:-?}, below 4" test $rc -eq 0 -a -n "$level"
done

# The drop-in for system-wide install commands is valid too
mkdir -p "$R/etc/systemd/system/appferry-node@.service.d"
cp "$R$PREFIX/share/appferry/appferry-node-system-installer.conf" "$R/etc/systemd/system/appferry-node@.service.d/"
out=$(systemd-analyze verify --root="$R" appferry-node@pc.service 2>&1); rc=$?
check "the node's drop-in for system-wide install commands: verify clean" test $rc -eq 0 -a -z "$out"
[ -z "$out" ] || echo "$out" | sed 's/^/  # /'
rm -r "$R/etc/systemd"

# --- install.sh into the root
if [ "$(id -u)" -ne 0 ]; then
    echo "  # skipped: install.sh and the services as appferry need root"
    finish
    exit
fi
out=$(bash "$R$PREFIX/share/appferry/install.sh" --root "$R" 2>&1); rc=$?
echo "$out" | tail -n 3 | sed 's/^/  # /'
check "install.sh succeeds" test $rc -eq 0
[ $rc -eq 0 ] || { echo "$out" | sed 's/^/  # /'; die "install.sh failed"; }
IDS=$(awk -F: '$1 == "appferry" { print $3 ":" $4 }' "$R/etc/passwd")
AF_UID=${IDS%:*} AF_GID=${IDS#*:}
check "  ... it made the system user appferry, without a login shell" \
    bash -c "grep -q '^appferry:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin$' '$R/etc/passwd' && grep -q '^appferry:x:' '$R/etc/group'"
mode_owner () { stat -c '%a %u' "$1"; }
check "  ... /var/lib/appferry, -catalog, -matcher and workers/ are appferry's, 0700" \
    test "$(mode_owner "$R/var/lib/appferry")" = "700 $AF_UID" \
         -a "$(mode_owner "$R/var/lib/appferry/workers")" = "700 $AF_UID" \
         -a "$(mode_owner "$R/var/lib/appferry-catalog")" = "700 $AF_UID" \
         -a "$(mode_owner "$R/var/lib/appferry-matcher")" = "700 $AF_UID"
check "  ... /etc/appferry is root's, with broker.cfg and node.env from the samples" \
    test "$(mode_owner "$R/etc/appferry")" = "755 0" \
         -a "$(cat "$R/etc/appferry/broker.cfg")" = "$(cat "$AF_SRC/deploy/appferry-broker.cfg")" \
         -a -f "$R/etc/appferry/node.env"
check "  ... the broker's keypair is appferry's, its public key copied to /etc/appferry" \
    test "$(stat -c '%a %u' "$R/var/lib/appferry/broker.cert_secret")" = "600 $AF_UID" \
         -a "$(cat "$R/etc/appferry/broker.cert")" = "$(cat "$R/var/lib/appferry/broker.cert")"
check "  ... the matcher's public key is in the broker's worker keys" \
    test "$(stat -c '%a %u' "$R/var/lib/appferry-matcher/matcher.cert_secret")" = "600 $AF_UID" \
         -a "$(cat "$R/var/lib/appferry/workers/matcher.cert")" = "$(cat "$R/var/lib/appferry-matcher/matcher.cert")"
check "  ... and an empty catalog for the matcher to open" test -f "$R/var/lib/appferry-catalog/data.mdb"
IDS=$(awk -F: '$1 == "appferry-contacts" { print $3 ":" $4 }' "$R/etc/passwd")
CONTACTS_UID=${IDS%:*} CONTACTS_GID=${IDS#*:}
check "  ... the contacts service has a user of its own, and /var/lib/appferry-contacts is its, 0700" \
    test -n "$IDS" -a "$CONTACTS_UID" != "$AF_UID" \
         -a "$(mode_owner "$R/var/lib/appferry-contacts")" = "700 $CONTACTS_UID"
check "  ... its OPRF key and keypair are its own, 0600, its public key in the broker's worker keys" \
    test "$(mode_owner "$R/var/lib/appferry-contacts/oprf.key")" = "600 $CONTACTS_UID" \
         -a "$(mode_owner "$R/var/lib/appferry-contacts/contacts.cert_secret")" = "600 $CONTACTS_UID" \
         -a "$(cat "$R/var/lib/appferry/workers/contacts.cert")" = "$(cat "$R/var/lib/appferry-contacts/contacts.cert")"
check "  ... and the broker's user cannot read the key" \
    bash -c "! setpriv --reuid=$AF_UID --regid=$AF_GID --clear-groups -- cat '$R/var/lib/appferry-contacts/oprf.key' 2>/dev/null"
IDS=$(awk -F: '$1 == "appferry-payments" { print $3 ":" $4 }' "$R/etc/passwd")
PAYMENTS_UID=${IDS%:*} PAYMENTS_GID=${IDS#*:}
check "  ... the payments service has a user of its own; its keypair and ledger are its, its public key in the worker keys" \
    test -n "$IDS" -a "$PAYMENTS_UID" != "$AF_UID" -a "$PAYMENTS_UID" != "$CONTACTS_UID" \
         -a "$(mode_owner "$R/var/lib/appferry-payments")" = "700 $PAYMENTS_UID" \
         -a "$(mode_owner "$R/var/lib/appferry-payments/payments.cert_secret")" = "600 $PAYMENTS_UID" \
         -a -f "$R/var/lib/appferry-payments/ledger/data.mdb" -a -f "$R/etc/appferry/payments.cfg" \
         -a "$(cat "$R/var/lib/appferry/workers/payments.cert")" = "$(cat "$R/var/lib/appferry-payments/payments.cert")"
# nothing_runs_from_root: no process runs a binary of the root
nothing_runs_from_root () {
    local f
    for f in /proc/[0-9]*/cmdline; do
        tr '\0' ' ' 2>/dev/null < "$f" | grep -q "^$R" && { echo "  # running: $(tr '\0' ' ' < "$f")"; return 1; }
    done
    return 0
}
check "  ... and the broker, matcher and contacts service it started once are stopped" nothing_runs_from_root

KEYS=("$R/var/lib/appferry/broker.cert_secret" "$R/var/lib/appferry-matcher/matcher.cert_secret"
      "$R/var/lib/appferry-contacts/contacts.cert_secret" "$R/var/lib/appferry-contacts/oprf.key"
      "$R/var/lib/appferry-payments/payments.cert_secret")
keys=$(cat "${KEYS[@]}" | b2sum)
echo "    verbose = 0" >> "$R/etc/appferry/broker.cfg"
edited=$(b2sum < "$R/etc/appferry/broker.cfg")
out=$(bash "$R$PREFIX/share/appferry/install.sh" --root "$R" 2>&1); rc=$?
check "install.sh again succeeds and keeps the keypairs and an edited broker.cfg" \
    test $rc -eq 0 -a "$(cat "${KEYS[@]}" | b2sum)" = "$keys" \
         -a "$(b2sum < "$R/etc/appferry/broker.cfg")" = "$edited"
sed -i '$d' "$R/etc/appferry/broker.cfg"

# --- the services as their units start them, as appferry
# exec_start UNIT [INSTANCE]: the unit's ExecStart, its lines joined, %i
# and node.env's variables put in, its paths moved into the root
exec_start () {
    local cmd
    cmd=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$UNITS/$1" | sed 's/\\$//; s/^ExecStart=//' | tr '\n' ' ')
    cmd=${cmd//%i/${2:-}}
    cmd=${cmd//\$\{APPFERRY_BROKER\}/${APPFERRY_BROKER:-}}
    cmd=${cmd//\$APPFERRY_NODE_OPTIONS/${APPFERRY_NODE_OPTIONS:-}}
    echo "$cmd" | sed "s#^ *$PREFIX/bin/#$R$PREFIX/bin/#; s# /etc/appferry/# $R/etc/appferry/#g; s# /var/lib/# $R/var/lib/#g"
}
# An array, not a function: "f &" would fork a shell, and $! be its PID
AS_APPFERRY=(setpriv --reuid="$AF_UID" --regid="$AF_GID" --clear-groups --)
mkdir -p "$T/src" && cp -r "$AF_SRC/data/catalog" "$T/src/" && chmod -R a+rX "$T/src"

read -ra argv <<< "$(exec_start appferry-broker.service)"
"${AS_APPFERRY[@]}" "${argv[@]}" --nodes 'tcp://127.0.0.1:*' --workers 'tcp://127.0.0.1:*' --pwhash min \
    --heartbeat $HB > "$T/broker.log" 2>&1 &
BROKER_PID=$!; PIDS+=("$BROKER_PID")
wait_until 10 test -s "$R/var/lib/appferry/endpoints" || die "the broker did not start from its unit's ExecStart"
NODES_EP=$(sed -n 's/^nodes=//p' "$R/var/lib/appferry/endpoints")
WORKERS_EP=$(sed -n 's/^workers=//p' "$R/var/lib/appferry/endpoints")
check "the broker runs from its unit's ExecStart, as appferry" \
    test "$(stat -c %u "$R/var/lib/appferry/endpoints")" = "$AF_UID"

read -ra argv <<< "$(exec_start appferry-matcher.service)"
"${AS_APPFERRY[@]}" "${argv[@]}" --broker "$WORKERS_EP" --heartbeat $HB > "$T/matcher.log" 2>&1 &
PIDS+=($!)
check "the matcher from its unit's ExecStart is admitted with the key install.sh put in place" \
    wait_until 10 grep -q "worker .* ready" "$T/broker.log"
# The contacts service, as its own user: the broker admits its key and
# takes it for its service
read -ra argv <<< "$(exec_start appferry-contacts.service)"
setpriv --reuid="$CONTACTS_UID" --regid="$CONTACTS_GID" --clear-groups -- "${argv[@]}" --broker "$WORKERS_EP" \
    --heartbeat $HB > "$T/contacts.log" 2>&1 &
PIDS+=($!)
check "the contacts service from its unit's ExecStart, as appferry-contacts, is admitted with the key install.sh put in place" \
    wait_until 10 grep -q "ready for 'contacts'" "$T/broker.log"
check "  ... using the key install.sh made" grep -q "contacts: using key [0-9a-f]* from $R/var/lib/appferry-contacts/oprf.key" "$T/contacts.log"
read -ra argv <<< "$(exec_start appferry-payments.service)"
setpriv --reuid="$PAYMENTS_UID" --regid="$PAYMENTS_GID" --clear-groups -- "${argv[@]}" --broker "$WORKERS_EP" \
    --heartbeat $HB > "$T/payments.log" 2>&1 &
PIDS+=($!)
check "the payments service from its unit's ExecStart, as appferry-payments, is admitted with the key install.sh put in place" \
    wait_until 10 grep -q "ready for 'payments'" "$T/broker.log"
out=$("${AS_APPFERRY[@]}" "$R$PREFIX/bin/appferry-catalog" --catalog "$R/var/lib/appferry-catalog" \
      import --insecure-unsigned "$T/src/catalog/manifest.json" 2>&1); rc=$?
check "appferry-catalog as appferry imports into the catalog the units name, the matcher running" \
    test $rc -eq 0

# Two nodes from the template, their homes where StateDirectory= puts them
set -a; . "$R/etc/appferry/node.env"; set +a
APPFERRY_BROKER=$NODES_EP
# This test is about the units, not the signed store (it_signed): its
# catalog is unsigned, so its nodes take unsigned packages
unset AF_ROOT_KEY
APPFERRY_NODE_OPTIONS="${APPFERRY_NODE_OPTIONS:-} --insecure-unsigned"
for name in phone:galaxy-s21 tablet:galaxy-tab-s7; do
    dev=${name#*:} name=${name%%:*}
    cp "$DEVICES/$dev.json" "$R/etc/appferry/devices/$name.json"
    install -d -m 0700 -o "$AF_UID" -g "$AF_GID" "$R/var/lib/appferry-node/$name"
    read -ra argv <<< "$(exec_start appferry-node@.service "$name")"
    "${AS_APPFERRY[@]}" "${argv[@]}" --heartbeat $HB > "$T/$name.log" 2>&1 &
    PIDS+=($!)
    wait_until 10 test -S "$R/var/lib/appferry-node/$name/node.sock" || die "node $name did not start from the template"
done
afu () { local name=$1; shift; "${AS_APPFERRY[@]}" "$CLI" --home "$R/var/lib/appferry-node/$name" "$@"; }
wait_until 10 bash -c "${AS_APPFERRY[*]} '$CLI' --home '$R/var/lib/appferry-node/tablet' --json status | jq -e .connected" \
    || die "the tablet did not connect"
afu phone register ana > /dev/null && afu phone login ana > /dev/null && afu tablet login ana > /dev/null \
    || die "register or login failed"
TABLET=$(afu tablet --json status | jq -r .deviceId)
out=$(afu phone push weixin --to "$TABLET" 2>&1); rc=$?
echo "$out" | tail -n 1 | sed 's/^/  # /'
check "a push from the phone streams the tablet its package from the broker's --catalog" \
    test $rc -eq 0 -a -f "$R/var/lib/appferry-node/tablet/installed/weixin.json"
check "  ... into the node home the unit names, owned by appferry" \
    test "$(stat -c %u "$R/var/lib/appferry-node/tablet/installed/weixin.json")" = "$AF_UID"

# --- the matcher makes a missing --cert directory (mode 0700), and says
#     clearly when it cannot
"$MATCHER" -b "$WORKERS_EP" -k "$R/etc/appferry/broker.cert" -C "$R/var/lib/appferry-catalog" \
    -c "$T/keys/matcher/m.cert" --heartbeat $HB > "$T/matcher2.log" 2>&1 &
PIDS+=($!)
check "the matcher creates a missing --cert directory" wait_until 10 test -s "$T/keys/matcher/m.cert"
check "  ... mode 0700, and its parent too" \
    test "$(stat -c %a "$T/keys")" = 700 -a "$(stat -c %a "$T/keys/matcher")" = 700
touch "$T/plainfile"
out=$("$MATCHER" -b "$WORKERS_EP" -k "$R/etc/appferry/broker.cert" -C "$R/var/lib/appferry-catalog" \
      -c "$T/plainfile/m.cert" 2>&1); rc=$?
said="appferry-matcher: cannot save keypair to $T/plainfile/m.cert: $T/plainfile is not a directory"
check "a --cert directory that cannot be made is a clear error" test $rc -eq 1 -a "$out" = "$said"
[ $rc -eq 1 ] && [ "$out" = "$said" ] || echo "  # exit status $rc, said: $out"

finish
