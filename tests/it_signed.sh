#!/usr/bin/env bash
# The signed store (B1, S4.7): publisher signatures at import (good, bad,
# unknown publisher, a publisher signing another's program), made with the
# real minisign; the store's metadata checked by minisign; and devices that
# refuse what the store did not sign: a rogue matcher's forged hash (and
# the broker's side forging the metadata it sends and serving the forged
# bytes), a downgrade, expired metadata, rolled-back metadata, targets signed by a key
# the root no longer lists after a key rotation, and a device without a
# root key. Each refusal names what failed and leaves the installed version.
# The versions seen (the rollback guard) are on disk before an install:
# strace shows trust.json's temp file synced, renamed, the home synced.
. "$(dirname "$0")/lib.sh"
command -v minisign > /dev/null || die "minisign is not installed (./run installs it)"
command -v strace > /dev/null || die "strace is not installed (./run installs it)"
MKPKG="$AF_BIN/tests/af_mkpkg"
K="$T/keys"; P="$T/pkg"; C="$T/catalog"
mkdir -p "$K" "$P"

# --- The store's keys: root (offline), store (online), two publishers
"$CATALOG_BIN" keygen --root "$K/root" > /dev/null && "$CATALOG_BIN" --catalog "$C" keygen --store > /dev/null \
    || die "keygen failed"
minisign -G -W -p "$K/acme.pub" -s "$K/acme.key" > /dev/null 2>&1 || die "minisign -G failed"
minisign -G -W -p "$K/mallory.pub" -s "$K/mallory.key" > /dev/null 2>&1 || die "minisign -G failed"
cat > "$K/publishers.json" <<JSON
[{"name": "Acme", "key": "acme.pub", "programs": ["vault", "acme.*", "galaxy", "late"]},
 {"name": "appferry demo", "key": "$AF_SRC/data/catalog/keys/demo-publisher.pub", "programs": ["*"]}]
JSON
out=$("$CATALOG_BIN" root-sign --key "$K/root.key" --store-key "$C/keys/store.pub" --publishers "$K/publishers.json" \
      "$K/docs" 2>&1)
check "the root signs the store key and the publishers" has "$out" "version 1"
out=$("$CATALOG_BIN" --catalog "$C" import "$AF_SRC/data/catalog/manifest.json" 2>&1); rc=$?
check "a catalog without trust refuses to import unsigned packages" \
    exits non-zero $rc has "$out" "trusts no publisher"
"$CATALOG_BIN" --catalog "$C" trust "$K/root.pub" "$K/docs" > /dev/null || die "trust failed"

mk () { "$MKPKG" "$P/$1.tar" d:app/ f:app/README="$1"$'\n' || die "cannot make $1"; }
entry () { printf '{"program":"%s","platform":"android","versionCode":%s,"versionName":"%s","minSdk":21,"file":"%s.tar"}' "$@"; }
for p in vault1 vault2 vault0 galaxy1 evil other late1; do mk $p; done
echo "[$(entry vault 1 1.0 vault1)]" > "$P/vault1.json"
echo "[$(entry vault 2 2.0 vault2)]" > "$P/vault2.json"
echo "[$(entry galaxy 1 1.0 galaxy1)]" > "$P/galaxy.json"
echo "[$(entry telegram 1 1.0 other)]" > "$P/telegram.json"
echo "[$(entry late 1 1.0 late1)]" > "$P/late.json"

# --- Import: good, altered after signing, unknown publisher, wrong program, none
minisign -S -s "$K/acme.key" -m "$P/vault1.tar" > /dev/null 2>&1 || die "minisign -S failed"
out=$("$CATALOG_BIN" --catalog "$C" import "$P/vault1.json" 2>&1)
check "a package signed with minisign by its publisher is imported" has "$out" "imported 1 package"
check "  ... and its targets are signed: minisign verifies them with the store key" \
    minisign -Vq -p "$C/keys/store.pub" -m "$C/meta/targets/vault.json"
check "  ... and the root documents with the root key" minisign -Vq -p "$K/root.pub" -m "$C/meta/root.json"
cp "$P/vault2.tar" "$P/vault2.orig" && minisign -S -s "$K/acme.key" -m "$P/vault2.tar" > /dev/null 2>&1
printf 'x' >> "$P/vault2.tar"
out=$("$CATALOG_BIN" --catalog "$C" import "$P/vault2.json" 2>&1); rc=$?
check "a package altered after it was signed is refused" \
    exits non-zero $rc has "$out" "nothing imported" "vault2.tar" "does not match"
cp "$P/vault2.orig" "$P/vault2.tar"
minisign -S -s "$K/mallory.key" -m "$P/vault2.tar" > /dev/null 2>&1
out=$("$CATALOG_BIN" --catalog "$C" import "$P/vault2.json" 2>&1); rc=$?
check "a package signed by a key no publisher has is refused" \
    exits non-zero $rc has "$out" "no trusted publisher"
minisign -S -s "$K/acme.key" -m "$P/other.tar" > /dev/null 2>&1
out=$("$CATALOG_BIN" --catalog "$C" import "$P/telegram.json" 2>&1); rc=$?
check "a publisher's signature on another program is refused" \
    exits non-zero $rc has "$out" "'Acme'" "not trusted for program 'telegram'"
out=$("$CATALOG_BIN" --catalog "$C" import "$P/late.json" 2>&1); rc=$?
check "an unsigned package is refused, naming the missing signature" \
    exits non-zero $rc has "$out" "no publisher signature"
out=$("$CATALOG_BIN" --catalog "$C" import --insecure-unsigned "$P/late.json" 2>&1); rc=$?
check "  ... also with --insecure-unsigned, once the catalog has trust" test $rc -ne 0
minisign -S -s "$K/acme.key" -m "$P/galaxy1.tar" > /dev/null 2>&1
"$CATALOG_BIN" --catalog "$C" import "$AF_SRC/data/catalog/manifest.json" > /dev/null \
    && "$CATALOG_BIN" --catalog "$C" import "$P/galaxy.json" > /dev/null || die "imports failed"

# --- Devices
start_broker broker --catalog "$C"
start_matcher matcher "$C"
start_node phone "$DEVICES/galaxy-s21.json" --root-key "$K/root.pub"
NODE_PREFIX="strace -f -y -qq -e signal=none -e trace=fsync,fdatasync,rename,renameat,renameat2 -o $T/tablet.strace" \
    start_node tablet "$DEVICES/galaxy-tab-s7.json" --root-key "$K/root.pub"
AF_ROOT_KEY="" start_node bare "$DEVICES/galaxy-a10.json"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet bare; do af $n login ana > /dev/null || die "$n login failed"; done
TABLET=$(device_id tablet); BARE=$(device_id bare)
installed () { jq -r .versionName "$T/tablet/installed/$1.json" 2>/dev/null; }

out=$(af phone push vault --to "$TABLET" --wait 30 2>&1)
check "a signed package installs" has "$out" "installed"
check "  ... the device keeps the metadata version it saw" test "$(jq -r .targets.vault "$T/tablet/trust.json")" = 1
# durable LOG FILE: FILE.tmp fsynced, then renamed to FILE, then its directory fsynced
durable () {
    awk -v f="$2" -v d="$(dirname "$2")" '
        index($0, "fsync(") && index($0, "<" f ".tmp>") && / = 0$/ { synced = NR }
        synced && !moved && index($0, "(\"" f ".tmp\", \"" f "\")") && / = 0$/ { moved = NR }
        moved && index($0, "fsync(") && index($0, "<" d ">") && / = 0$/ { ok = 1 }
        END { exit !ok }' "$1"
}
check "  ... written durably: trust.json.tmp synced, renamed, the home synced" \
    durable "$T/tablet.strace" "$(realpath "$T/tablet")/trust.json"
check "  ... as the node's other state files are (backup.json)" \
    durable "$T/tablet.strace" "$(realpath "$T/tablet")/backup.json"
out=$(af phone push vault --to "$BARE" --wait 30 2>&1)
check "a device without a root key installs no package, and says why" has "$out" "failed" "no store root key"
check "  ... nothing was installed there" test ! -e "$T/bare/installed/vault.json"

# Rollback of the metadata: version 1 kept, version 2 published and seen,
# then version 1 served again
cp "$C/meta/targets/vault.json" "$T/vault-v1.json" && cp "$C/meta/targets/vault.json.minisig" "$T/vault-v1.json.minisig"
minisign -S -s "$K/acme.key" -m "$P/vault2.tar" > /dev/null 2>&1
"$CATALOG_BIN" --catalog "$C" import "$P/vault2.json" > /dev/null || die "vault2 import failed"
out=$(af phone push vault --to "$TABLET" --wait 30 2>&1)
check "version 2 installs with targets version 2" test "$(installed vault)" = 2.0 -a \
    "$(jq -r .targets.vault "$T/tablet/trust.json")" = 2
af tablet uninstall vault > /dev/null || die "uninstall failed"
cp "$T/vault-v1.json" "$C/meta/targets/vault.json" && cp "$T/vault-v1.json.minisig" "$C/meta/targets/vault.json.minisig"
out=$(af phone push vault --to "$TABLET" --wait 30 2>&1)
check "metadata rolled back to an older version is refused" has "$out" "failed" "rollback" "version 1" "version 2"
"$CATALOG_BIN" --catalog "$C" resign > /dev/null || die "resign failed"
af phone push vault --to "$TABLET" --wait 30 > /dev/null 2>&1
check "  ... and newer metadata installs again" test "$(installed vault)" = 2.0

# --- A rogue matcher (its own catalog, no trust) offers a forged hash, and
# an older version than the one installed
minisign -S -s "$K/acme.key" -m "$P/vault0.tar" > /dev/null 2>&1
echo "[$(entry galaxy 5 5.0 evil), $(entry vault 1 1.0 vault1)]" > "$P/rogue.json"
"$CATALOG_BIN" --catalog "$T/rogue" import --insecure-unsigned "$P/rogue.json" > /dev/null || die "rogue import failed"
kill "$(eval echo \$MATCHER_PID_matcher)"; wait "$(eval echo \$MATCHER_PID_matcher)" 2>/dev/null
start_matcher rogue "$T/rogue"
out=$(af phone push galaxy --to "$TABLET" --wait 30 2>&1)
check "a forged hash in an offer is refused before anything is fetched" \
    has "$out" "failed" "signature check" "no signed target of 'galaxy'"
check "  ... nothing of it was received or installed" test ! -e "$T/tablet/installed/galaxy.json"
out=$(af phone push vault --to "$TABLET" --wait 30 2>&1)
check "an older version than the installed one is refused (rollback)" has "$out" "failed" "rollback" "older than the installed 2.0"
check "  ... the installed version stays" test "$(installed vault)" = 2.0

# --- The broker's side forges it all: besides the rogue matcher's forged
# hash, whoever holds the broker's machine puts the forged package's bytes
# where the broker serves files from (so a FETCH would get them) and
# replaces the metadata the broker sends with the OFFER by documents of
# their own making: a whole store of their own (root key, store key,
# publisher), whose targets list the forged hash. The node sees exactly
# what a broker it cannot tell from the real one would send, and refuses
# each before anything is fetched.
F="$T/forged"; mkdir -p "$F"
"$CATALOG_BIN" keygen --root "$F/root" > /dev/null && "$CATALOG_BIN" --catalog "$F/cat" keygen --store > /dev/null \
    || die "forged keygen failed"
echo "[{\"name\": \"Mallory\", \"key\": \"$K/mallory.pub\", \"programs\": [\"*\"]}]" > "$F/publishers.json"
"$CATALOG_BIN" root-sign --key "$F/root.key" --store-key "$F/cat/keys/store.pub" --publishers "$F/publishers.json" \
    "$F/docs" > /dev/null && "$CATALOG_BIN" --catalog "$F/cat" trust "$F/root.pub" "$F/docs" > /dev/null \
    || die "forged store failed"
minisign -S -s "$K/mallory.key" -m "$P/evil.tar" > /dev/null 2>&1
echo "[$(entry galaxy 5 5.0 evil)]" > "$P/evil.json"
"$CATALOG_BIN" --catalog "$F/cat" import "$P/evil.json" > /dev/null || die "forged import failed"
evil=$(b2sum -l 256 "$P/evil.tar" | cut -d' ' -f1)
mkdir -p "$C/blobs/${evil:0:2}" && cp "$P/evil.tar" "$C/blobs/${evil:0:2}/$evil"
cp "$C/meta/targets/galaxy.json" "$T/galaxy-real.json" && cp "$C/meta/targets/galaxy.json.minisig" "$T/galaxy-real.json.minisig"
cp "$C/meta/root.json" "$T/root-real.json" && cp "$C/meta/root.json.minisig" "$T/root-real.json.minisig"
check "  (the forged targets name the forged hash, and the broker would serve its bytes)" \
    test "$(jq -r '.targets[0].hash' "$F/cat/meta/targets/galaxy.json")" = "$evil"
cp "$F/cat/meta/targets/galaxy.json" "$C/meta/targets/galaxy.json"
cp "$F/cat/meta/targets/galaxy.json.minisig" "$C/meta/targets/galaxy.json.minisig"
out=$(af phone push galaxy --to "$TABLET" --wait 30 2>&1)
check "the broker side's OFFER of the forged hash with targets of its own signing is refused" \
    has "$out" "failed" "signature check" "targets metadata" "not a key trusted"
cp "$F/cat/meta/root.json" "$C/meta/root.json" && cp "$F/cat/meta/root.json.minisig" "$C/meta/root.json.minisig"
out=$(af phone push galaxy --to "$TABLET" --wait 30 2>&1)
check "  ... and with a root of its own too" has "$out" "failed" "signature check" "root metadata" "not a key trusted"
cp "$C/meta/targets/vault.json" "$C/meta/targets/galaxy.json" && cp "$C/meta/targets/vault.json.minisig" "$C/meta/targets/galaxy.json.minisig"
cp "$T/root-real.json" "$C/meta/root.json" && cp "$T/root-real.json.minisig" "$C/meta/root.json.minisig"
out=$(af phone push galaxy --to "$TABLET" --wait 30 2>&1)
check "  ... and with the store's genuine targets of another program" has "$out" "failed" "for program 'vault'"
check "  ... nothing of it was received or installed" \
    test ! -e "$T/tablet/installed/galaxy.json" -a -z "$(grep "receiving galaxy 5.0" "$T/tablet.log")"
cp "$T/galaxy-real.json" "$C/meta/targets/galaxy.json" && cp "$T/galaxy-real.json.minisig" "$C/meta/targets/galaxy.json.minisig"
rm -f "$C/blobs/${evil:0:2}/$evil"
kill "$(eval echo \$MATCHER_PID_rogue)"; wait "$(eval echo \$MATCHER_PID_rogue)" 2>/dev/null
start_matcher matcher2 "$C"

# --- Expired metadata: targets signed for 2 s
minisign -S -s "$K/acme.key" -m "$P/late1.tar" > /dev/null 2>&1
"$CATALOG_BIN" --catalog "$C" import --expires 2 "$P/late.json" > /dev/null || die "late import failed"
sleep 3
out=$(af phone push late --to "$TABLET" --wait 30 2>&1)
check "expired targets metadata is refused" has "$out" "failed" "expired"

# --- Key rotation: the root signs a new store key (version 2), the catalog
# signs again with it; the old key's targets no longer count
cp "$C/meta/targets/galaxy.json" "$T/galaxy-old.json" && cp "$C/meta/targets/galaxy.json.minisig" "$T/galaxy-old.json.minisig"
cp -r "$K/docs" "$K/docs-v1"
mv "$C/keys/store.key" "$K/old-store.key" && mv "$C/keys/store.pub" "$K/old-store.pub"
"$CATALOG_BIN" --catalog "$C" keygen --store > /dev/null || die "new store key failed"
out=$("$CATALOG_BIN" root-sign --key "$K/root.key" --store-key "$C/keys/store.pub" --publishers "$K/publishers.json" \
      "$K/docs" 2>&1)
check "the root signs a new store key as version 2" has "$out" "version 2"
"$CATALOG_BIN" --catalog "$C" trust "$K/root.pub" "$K/docs" > /dev/null && "$CATALOG_BIN" --catalog "$C" resign > /dev/null \
    || die "rotation failed"
out=$(af phone push galaxy --to "$TABLET" --wait 30 2>&1)
check "after the rotation, packages signed under the new store key install" has "$out" "installed"
check "  ... the device saw root version 2" test "$(jq -r .root "$T/tablet/trust.json")" = 2
af tablet uninstall galaxy > /dev/null
# The old key's targets, given a higher version by its holder
sed -E 's/"version": ?[0-9]+/"version":99/' "$T/galaxy-old.json" > "$C/meta/targets/galaxy.json"
minisign -S -W -s "$K/old-store.key" -m "$C/meta/targets/galaxy.json" > /dev/null 2>&1 \
    || "$CATALOG_BIN" sign --key "$K/old-store.key" "$C/meta/targets/galaxy.json"
out=$(af phone push galaxy --to "$TABLET" --wait 30 2>&1)
check "targets signed by the rotated-out store key are refused" has "$out" "failed" "not a key trusted"
out=$("$CATALOG_BIN" --catalog "$C" trust "$K/root.pub" "$K/docs-v1" 2>&1); rc=$?
check "the catalog refuses to go back to root version 1" exits non-zero $rc has "$out" "newer"
finish
