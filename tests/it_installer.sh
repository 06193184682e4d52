#!/usr/bin/env bash
# The built-in installer against hostile and unlucky packages (issue 9,
# sections 2 and 3): links that reach outside the app directory through
# other links, a defaults/ link that lands outside the app's data, staging
# and old trees left behind by upgrades, uninstalls and data imports
# (dot-files and nested directories included), program IDs that would be
# paths, and an install record that cannot be written (the tree must not
# change without its record). Packages are made with GNU tar, nothing else.
. "$(dirname "$0")/lib.sh"

P="$T/pkg"
mkdir -p "$P"
# mk NAME.tar DIR ENTRY...: a tar of DIR's ENTRYs, names as given (no ./)
mk () { local out=$1 dir=$2; shift 2; tar -C "$dir" -cf "$P/$out" "$@" || die "cannot make $out"; }

# The issue's chain: y -> . and up1 -> y/.. each look inside by their text,
# but up1 is HOME/apps; every up(k+1) -> upk/.. climbs one more level, and
# passwd -> up12/etc/passwd is /etc/passwd
d="$P/chain"; mkdir -p "$d"
ln -s . "$d/y"; ln -s y/.. "$d/up1"
for k in $(seq 1 11); do ln -s "up$k/.." "$d/up$((k + 1))"; done
ln -s up12/etc/passwd "$d/passwd"
echo "looks harmless" > "$d/README"
mk chain.tar "$d" README y $(for k in $(seq 1 12); do echo "up$k"; done) passwd

# defaults/l -> .. stays inside the app, but lands as HOME/data/PROGRAM/l
d="$P/seedy"; mkdir -p "$d/app" "$d/defaults"
echo "seedy" > "$d/app/README"; echo "x=1" > "$d/defaults/settings"; ln -s .. "$d/defaults/l"
mk seedy.tar "$d" app defaults

# Two versions of an app with dot-files and nested directories
for v in 1 2; do
    d="$P/dots$v"; mkdir -p "$d/app/sub/deeper/deepest" "$d/app/.cache/x"
    echo "version $v" > "$d/app/VERSION"; echo "h" > "$d/app/.hidden"
    echo "c" > "$d/app/sub/.config"; echo "d" > "$d/app/sub/deeper/deepest/.d"
    echo "x" > "$d/app/.cache/x/.y"
    mk "dots$v.tar" "$d" app
done
cat > "$P/v1.json" <<'JSON'
[ { "program": "chain", "platform": "android", "versionCode": 1, "versionName": "1.0",
    "minSdk": 21, "file": "chain.tar" },
  { "program": "seedy", "platform": "android", "versionCode": 1, "versionName": "1.0",
    "minSdk": 21, "file": "seedy.tar" },
  { "program": "dots", "platform": "android", "versionCode": 1, "versionName": "1.0",
    "minSdk": 21, "file": "dots1.tar" } ]
JSON
cat > "$P/v2.json" <<'JSON'
[ { "program": "dots", "platform": "android", "versionCode": 2, "versionName": "2.0",
    "minSdk": 21, "file": "dots2.tar" } ]
JSON
"$CATALOG" --catalog "$T/catalog" import "$P/v1.json" > "$T/import.log" 2>&1 || die "catalog import failed"

start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet; do af $n login ana > /dev/null || die "$n login failed"; done
TABLET=$(device_id tablet)
# hidden NAME: every entry of $T/tablet/NAME, dot-files included
hidden () { ls -A "$T/tablet/$1" 2>/dev/null | tr '\n' ' '; }

# --- links through links
out=$(af phone push chain --to "$TABLET" 2>&1); rc=$?
echo "$out" | tail -n 1 | sed 's/^/  # /'
check "a link reaching /etc/passwd through a chain of links is refused" has "$out" "failed" "links out"
check "  ... exit 1, nothing installed" test $rc -eq 1 -a ! -e "$T/tablet/apps/chain" -a ! -L "$T/tablet/apps/chain"
check "  ... no link anywhere in the home resolves outside it" \
    test -z "$(find "$T/tablet" -type l -exec realpath -m {} \; | grep -v "^$T/tablet")"

# --- a defaults/ link is checked where it lands
out=$(af phone push seedy --to "$TABLET" 2>&1); rc=$?
echo "$out" | tail -n 1 | sed 's/^/  # /'
check "defaults/l -> .. (every app's data once copied) is refused" has "$out" "failed" "defaults/l"
check "  ... no data directory seeded, no link planted" \
    test $rc -eq 1 -a ! -e "$T/tablet/data/seedy" -a ! -L "$T/tablet/data/seedy/l"

# --- upgrades and uninstalls leave nothing behind, dot-files included
out=$(af phone push dots --to "$TABLET" 2>&1)
check "dots 1.0 installed, with its dot-files" test -f "$T/tablet/apps/dots/app/.cache/x/.y"
"$CATALOG" --catalog "$T/catalog" import "$P/v2.json" >> "$T/import.log" 2>&1 || die "v2 import failed"
out=$(af phone push dots --to "$TABLET" 2>&1)
check "dots 2.0 replaced it" test "$(cat "$T/tablet/apps/dots/app/VERSION")" = "version 2"
check "  ... no old tree or staging left in apps/ (found: $(hidden apps))" test "$(hidden apps)" = "dots "
af tablet uninstall dots > /dev/null; rc=$?
check "uninstall removes the app and leaves apps/ empty (found: $(hidden apps))" \
    test $rc -eq 0 -a -z "$(hidden apps)"
out=$(af phone push dots --to "$TABLET" 2>&1)
out=$(af tablet uninstall dots 2>&1); rc=$?
check "a second install and uninstall work too" test $rc -eq 0 -a -z "$(hidden apps)"
[ $rc -eq 0 ] || echo "  # $out"

# --- user data replaced twice: no old data trees left
mkdir -p "$T/phone/data/dots/notes/2024"
printf 'theme=dark\n' > "$T/phone/data/dots/.settings"
printf 'day 1\n' > "$T/phone/data/dots/notes/2024/.day1"
for round in 1 2; do out=$(af phone push dots --to "$TABLET" --with-data 2>&1); done
check "user data pushed twice arrived, dot-files included" \
    test "$(cat "$T/tablet/data/dots/.settings" 2>/dev/null)" = "theme=dark" -a -f "$T/tablet/data/dots/notes/2024/.day1"
check "  ... no old data tree left in data/ (found: $(hidden data))" test "$(hidden data)" = "dots "

# --- program IDs are names, never paths
out=$(af tablet resolve ../../etc 2>&1); rc=$?
has "$out" "E_MALFORMED" "program"; named=$?
check "a program ID with .. is refused as malformed (E_MALFORMED naming the program)" \
    test $named -eq 0 -a $rc -ne 0

# --- the install record cannot be written: the tree stays as it was
d="$P/rec"
for v in 1 2; do
    mkdir -p "$d$v/app"; echo "rec $v" > "$d$v/app/VERSION"; mk "rec$v.tar" "$d$v" app
    printf '[ { "program": "rec", "platform": "android", "versionCode": %d, "versionName": "%d.0",\n    "minSdk": 21, "file": "rec%d.tar" } ]\n' $v $v $v > "$P/rec$v.json"
done
"$CATALOG" --catalog "$T/catalog" import "$P/rec1.json" >> "$T/import.log" 2>&1 || die "rec1 import failed"
out=$(af phone push rec --to "$TABLET" 2>&1)
check "rec 1.0 installed" test "$(jq -r .versionName "$T/tablet/installed/rec.json")" = "1.0"
# The record's temporary file cannot be created (a directory is in its way,
# as a full disk would stop its write)
mkdir -p "$T/tablet/installed/rec.json.tmp/x"
"$CATALOG" --catalog "$T/catalog" import "$P/rec2.json" >> "$T/import.log" 2>&1 || die "rec2 import failed"
out=$(af phone push rec --to "$TABLET" 2>&1); rc=$?
echo "$out" | tail -n 1 | sed 's/^/  # /'
has "$out" "failed" "install record"; named=$?
check "an install whose record cannot be written fails, saying why" test $named -eq 0 -a $rc -eq 1
check "  ... the installed tree is still version 1" test "$(cat "$T/tablet/apps/rec/app/VERSION")" = "rec 1"
check "  ... its record is still version 1" test "$(jq -r .versionName "$T/tablet/installed/rec.json")" = "1.0"
check "  ... no staging left in apps/" test -z "$(hidden apps | tr ' ' '\n' | grep '^\.')"
rm -rf "$T/tablet/installed/rec.json.tmp"
out=$(af phone push rec --to "$TABLET" 2>&1)
check "  ... once it can be written, version 2 installs" \
    test "$(cat "$T/tablet/apps/rec/app/VERSION")" = "rec 2" -a "$(jq -r .versionName "$T/tablet/installed/rec.json")" = "2.0"

finish
