# tests/fleet_catalog.sh - the catalog the fleet tests push from.
#
# Sourced after tests/lib.sh. fleet_catalog DIR: a catalog in DIR of three
# small Android packages (2 KiB, 40 KiB, 300 KiB) and store links for
# Apple devices of the same programs; sets PUSH to the programs, for the
# fleet's --push.
fleet_catalog () {
    local catalog=$1
    mkdir -p "$T/pkg"
    "$AF_BIN/tests/af_mkpkg" "$T/pkg/notes.tar" d:notes/ r:notes/blob=2K \
        && "$AF_BIN/tests/af_mkpkg" "$T/pkg/maps.tar" d:maps/ r:maps/blob=40K \
        && "$AF_BIN/tests/af_mkpkg" "$T/pkg/game.tar" d:game/ r:game/blob=300K \
        || die "cannot make test packages"
    cat > "$T/pkg/manifest.json" <<'JSON'
[ { "program": "fleet.notes", "platform": "android", "versionCode": 3, "versionName": "3.0", "minSdk": 21, "file": "notes.tar" },
  { "program": "fleet.maps", "platform": "android", "versionCode": 7, "versionName": "7.1", "minSdk": 21, "file": "maps.tar" },
  { "program": "fleet.game", "platform": "android", "versionCode": 2, "versionName": "2.0", "minSdk": 24, "file": "game.tar" },
  { "program": "fleet.notes", "platform": "ios", "versionCode": 3, "versionName": "3.0", "storeLink": "https://apps.apple.com/app/notes/id1" },
  { "program": "fleet.maps", "platform": "ios", "versionCode": 7, "versionName": "7.1", "minOs": "12.0", "storeLink": "https://apps.apple.com/app/maps/id2" },
  { "program": "fleet.maps", "platform": "tvos", "versionCode": 7, "versionName": "7.1", "storeLink": "https://apps.apple.com/app/maps-tv/id3" } ]
JSON
    "$CATALOG" --catalog "$catalog" import "$T/pkg/manifest.json" > "$T/import.log" 2>&1 \
        || die "catalog import failed"
    PUSH=fleet.notes,fleet.maps,fleet.game
}
