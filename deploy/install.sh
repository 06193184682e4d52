#!/usr/bin/env bash
# deploy/install.sh - after `cmake --install build`, make this machine
# ready to run the appferry services from their systemd units:
#
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build
#   cmake --install build            # binaries, units, sysusers/tmpfiles files
#   deploy/install.sh                # as root; also PREFIX/share/appferry/install.sh
#   systemctl enable --now appferry-broker appferry-matcher
#
# What it does, each step only if not done yet (running it again changes
# nothing that is there, except that it refreshes the copies of the
# public keys):
#   1. the system user and group appferry (systemd-sysusers, from
#      PREFIX/lib/sysusers.d/appferry.conf);
#   2. the directories with their owners and modes (systemd-tmpfiles, from
#      PREFIX/lib/tmpfiles.d/appferry.conf): /etc/appferry (root's),
#      /var/lib/appferry, -catalog, -matcher (appferry's, 0700),
#      /var/lib/appferry-contacts (appferry-contacts', 0700),
#      /var/lib/appferry-payments (appferry-payments', 0700);
#   3. /etc/appferry/broker.cfg, payments.cfg and node.env from the samples (an existing
#      one is kept as it is);
#   4. the broker's keypair, by starting the broker once as appferry on
#      loopback ports the kernel picks, until its key file is there; its
#      public half is copied to /etc/appferry/broker.cert for the matcher
#      and nodes;
#   5. an empty catalog, if there is none (the matcher needs one to start;
#      fill it with appferry-catalog as appferry, see README);
#   6. the matcher's keypair, the same way, and its public half in the
#      broker's worker keys directory, so the broker admits the matcher;
#   7. the contacts service's keypair and OPRF key, the same way but as the
#      user appferry-contacts (the key must be out of the broker's reach),
#      and its public half in the broker's worker keys directory;
#   8. the payments service's keypair and ledger, as the user
#      appferry-payments, and its public half in the worker keys directory;
#   9. systemctl daemon-reload, when systemd runs.
#
# Options:
#   --prefix DIR  where `cmake --install` put appferry (default: the prefix
#                 this script is installed in, else /usr/local)
#   --root DIR    act on DIR as the root file system (for tests and images:
#                 no systemctl; binaries run from DIR/PREFIX/bin)
# Needs root, bash, systemd-sysusers and systemd-tmpfiles (package systemd),
# setpriv (util-linux).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# Installed as PREFIX/share/appferry/install.sh: that PREFIX is the default
HERE_PREFIX=""
case "$HERE" in */share/appferry) [ -x "$HERE/../../bin/appferry-broker" ] && HERE_PREFIX=$(cd "$HERE/../.." && pwd) ;; esac
PREFIX=""
ROOT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
        --root) ROOT=$(cd "${2:?--root needs a directory}" && pwd); shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$ROOT" = / ] && ROOT=""
if [ -z "$PREFIX" ]; then
    case "$HERE_PREFIX" in
        "") PREFIX=/usr/local ;;
        "$ROOT"/*) PREFIX=${HERE_PREFIX#"$ROOT"} ;;
        *) PREFIX=$HERE_PREFIX ;;
    esac
fi

say () { echo "install.sh: $*"; }
die () { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run me as root (I create a system user and directories)"
BIN="$ROOT$PREFIX/bin"
SHARE="$ROOT$PREFIX/share/appferry"
for f in "$BIN/appferry-broker" "$BIN/appferry-matcher" "$BIN/appferry-catalog" "$BIN/appferry-contacts" \
         "$BIN/appferry-payments" "$SHARE/appferry-payments.cfg" \
         "$ROOT$PREFIX/lib/sysusers.d/appferry.conf" "$ROOT$PREFIX/lib/tmpfiles.d/appferry.conf" \
         "$SHARE/appferry-broker.cfg" "$SHARE/node.env"; do
    [ -e "$f" ] || die "$f is missing: run 'cmake --install build' first (with --prefix $PREFIX)"
done
for tool in systemd-sysusers systemd-tmpfiles setpriv; do
    command -v "$tool" > /dev/null || die "$tool is missing (Debian: apt-get install systemd util-linux)"
done
ROOT_OPT=()
[ -n "$ROOT" ] && { ROOT_OPT=(--root="$ROOT"); mkdir -p "$ROOT/etc"; }

# 1. The user
systemd-sysusers "${ROOT_OPT[@]}" "$ROOT$PREFIX/lib/sysusers.d/appferry.conf"
IDS=$(awk -F: '$1 == "appferry" { print $3 ":" $4 }' "$ROOT/etc/passwd")
[ -n "$IDS" ] || die "no user appferry in $ROOT/etc/passwd after systemd-sysusers"
AF_UID=${IDS%:*} AF_GID=${IDS#*:}
say "user appferry is uid $AF_UID, gid $AF_GID"
AS_APPFERRY=(setpriv --reuid="$AF_UID" --regid="$AF_GID" --clear-groups --reset-env --)
IDS=$(awk -F: '$1 == "appferry-contacts" { print $3 ":" $4 }' "$ROOT/etc/passwd")
[ -n "$IDS" ] || die "no user appferry-contacts in $ROOT/etc/passwd after systemd-sysusers"
CONTACTS_UID=${IDS%:*} CONTACTS_GID=${IDS#*:}
IDS=$(awk -F: '$1 == "appferry-payments" { print $3 ":" $4 }' "$ROOT/etc/passwd")
[ -n "$IDS" ] || die "no user appferry-payments in $ROOT/etc/passwd after systemd-sysusers"
PAYMENTS_UID=${IDS%:*} PAYMENTS_GID=${IDS#*:}

# 2. The directories
systemd-tmpfiles "${ROOT_OPT[@]}" --create "$ROOT$PREFIX/lib/tmpfiles.d/appferry.conf"
ETC="$ROOT/etc/appferry"
DATA="$ROOT/var/lib/appferry"
CATALOG="$ROOT/var/lib/appferry-catalog"
MATCHER="$ROOT/var/lib/appferry-matcher"
CONTACTS="$ROOT/var/lib/appferry-contacts"
PAYMENTS="$ROOT/var/lib/appferry-payments"
for d in "$ETC" "$DATA/workers" "$CATALOG" "$MATCHER" "$CONTACTS" "$PAYMENTS"; do [ -d "$d" ] || die "systemd-tmpfiles did not make $d"; done

# 3. Configuration, from the samples when missing
for pair in appferry-broker.cfg:broker.cfg appferry-payments.cfg:payments.cfg node.env:node.env; do
    if [ ! -e "$ETC/${pair#*:}" ]; then
        install -m 0644 -o root -g root "$SHARE/${pair%%:*}" "$ETC/${pair#*:}"
        say "wrote $ETC/${pair#*:} (from the sample)"
    fi
done

# start_once FILE COMMAND...: run COMMAND as the user RUN_AS says (an
# array like AS_APPFERRY) until FILE exists (at most 10 s), then stop it
RUN_AS=("${AS_APPFERRY[@]}")
start_once () {
    local file=$1; shift
    "${RUN_AS[@]}" "$@" > "$TMP/start_once.log" 2>&1 &
    local pid=$! i
    for i in $(seq 100); do
        [ -s "$file" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [ -s "$file" ] || { cat "$TMP/start_once.log" >&2; die "$1 made no $file"; }
}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
chmod 0755 "$TMP"

# 4. The broker's keypair. The endpoints file is written once the broker
#    runs; by then the keypair and store exist.
if [ ! -s "$DATA/broker.cert_secret" ]; then
    rm -f "$DATA/endpoints"
    start_once "$DATA/endpoints" "$BIN/appferry-broker" --data "$DATA" \
        --nodes 'tcp://127.0.0.1:*' --workers 'tcp://127.0.0.1:*'
    rm -f "$DATA/endpoints"
    say "made the broker's keypair in $DATA"
fi
[ -s "$DATA/broker.cert" ] || die "$DATA/broker.cert is missing (the broker's public key)"
install -m 0644 -o root -g root "$DATA/broker.cert" "$ETC/broker.cert"

# 5. A catalog for the matcher to open
if [ ! -e "$CATALOG/data.mdb" ]; then
    printf '[]\n' > "$TMP/empty.json"
    chmod 0644 "$TMP/empty.json"
    "${AS_APPFERRY[@]}" "$BIN/appferry-catalog" --catalog "$CATALOG" import "$TMP/empty.json" > /dev/null \
        || die "cannot make an empty catalog in $CATALOG"
    say "made an empty catalog in $CATALOG"
fi

# 6. The matcher's keypair, allowed by the broker. The matcher saves it
#    before it opens the catalog or connects; port 9 (discard) has nobody.
if [ ! -s "$MATCHER/matcher.cert_secret" ]; then
    start_once "$MATCHER/matcher.cert_secret" "$BIN/appferry-matcher" --broker tcp://127.0.0.1:9 \
        --broker-key "$ETC/broker.cert" --catalog "$CATALOG" --cert "$MATCHER/matcher.cert"
    say "made the matcher's keypair in $MATCHER"
fi
install -m 0644 -o "$AF_UID" -g "$AF_GID" "$MATCHER/matcher.cert" "$DATA/workers/matcher.cert"
say "the broker admits the matcher ($DATA/workers/matcher.cert)"

# 7. The contacts service's keypair and OPRF key, made as its own user.
#    It makes both before it connects; the key is made last.
if [ ! -s "$CONTACTS/oprf.key" ]; then
    RUN_AS=(setpriv --reuid="$CONTACTS_UID" --regid="$CONTACTS_GID" --clear-groups --reset-env --)
    start_once "$CONTACTS/oprf.key" "$BIN/appferry-contacts" --broker tcp://127.0.0.1:9 \
        --broker-key "$ETC/broker.cert" --cert "$CONTACTS/contacts.cert" --key "$CONTACTS/oprf.key"
    RUN_AS=("${AS_APPFERRY[@]}")
    say "made the contacts service's keypair and OPRF key in $CONTACTS (back the key up)"
fi
install -m 0644 -o "$AF_UID" -g "$AF_GID" "$CONTACTS/contacts.cert" "$DATA/workers/contacts.cert"
say "the broker admits the contacts service ($DATA/workers/contacts.cert)"

# 8. The payments service's keypair and ledger, made as its own user. It
#    saves its keypair and opens its ledger before it connects.
if [ ! -s "$PAYMENTS/payments.cert_secret" ]; then
    RUN_AS=(setpriv --reuid="$PAYMENTS_UID" --regid="$PAYMENTS_GID" --clear-groups --reset-env --)
    start_once "$PAYMENTS/payments.cert_secret" "$BIN/appferry-payments" --broker tcp://127.0.0.1:9 \
        --broker-key "$ETC/broker.cert" --cert "$PAYMENTS/payments.cert" --ledger "$PAYMENTS/ledger"
    RUN_AS=("${AS_APPFERRY[@]}")
    say "made the payments service's keypair and ledger in $PAYMENTS (back the ledger up)"
fi
install -m 0644 -o "$AF_UID" -g "$AF_GID" "$PAYMENTS/payments.cert" "$DATA/workers/payments.cert"
say "the broker admits the payments service ($DATA/workers/payments.cert)"

# 9. systemd
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
say "done. Start the services with: systemctl enable --now appferry-broker appferry-matcher"
say "  (friends need appferry-contacts, paid apps appferry-payments: enable them too)"
say "fill the catalog with: runuser -u appferry -- $PREFIX/bin/appferry-catalog --catalog /var/lib/appferry-catalog import MANIFEST.json"
