#!/bin/bash
# tests/catalog_signed.sh - appferry-catalog as the tests' store operator runs it.
#
# lib.sh points $CATALOG here, so every test's catalog is a signed store and
# every node checks what it installs (B1): an `import` into a catalog that
# has no trust yet first gives it the tests' store key and installs the
# root's documents that lib.sh made in $AF_TRUST (they trust the tests'
# publisher key and the demo publisher of data/catalog/keys for every
# program), then signs, with the tests' publisher key, each package file of
# the manifest that lies under the test's directory $T and has no
# signature yet (the sample packages of data/catalog carry the demo
# publisher's). Everything else goes to the real binary as it is; tests of
# the signing itself call $CATALOG_BIN.
set -u
: "${CATALOG_BIN:?}" "${AF_TRUST:?}" "${T:?}"
dir="" manifest="" command="" prev=""
for arg in "$@"; do
    case "$prev" in -C|--catalog) dir=$arg;; esac
    case "$arg" in --catalog=*) dir=${arg#--catalog=};; esac
    [ "$arg" = import ] && command=import
    prev=$arg
done
if [ "$command" = import ] && [ -n "$dir" ]; then
    manifest=${!#}
    if [ ! -f "$dir/meta/root.pub" ]; then
        mkdir -p "$dir/keys" || exit 1
        cp "$AF_TRUST/store.key" "$AF_TRUST/store.pub" "$dir/keys/" && chmod 600 "$dir/keys/store.key" \
            && "$CATALOG_BIN" --catalog "$dir" trust "$AF_TRUST/root.pub" "$AF_TRUST/docs" > /dev/null || exit 1
    fi
    base=$(dirname "$manifest")
    jq -r '.[] | .file // empty' "$manifest" 2>/dev/null | while read -r file; do
        case "$file" in /*) ;; *) file="$base/$file";; esac
        case "$(realpath -m "$file")" in "$(realpath "$T")"/*) ;; *) continue;; esac
        [ -f "$file" ] && [ ! -f "$file.minisig" ] \
            && "$CATALOG_BIN" sign --key "$AF_TRUST/publisher.key" "$file"
    done
fi
exec "$CATALOG_BIN" "$@"
