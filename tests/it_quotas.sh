#!/usr/bin/env bash
# One account cannot fill the broker's disk for everyone (issue 9, section
# 6): configurations and user data are limited per account (E_QUOTA, with a
# reason naming the limit), and user data no push needs any more is
# removed: when its last target is done, or after a grace period when no
# push ever named it.
. "$(dirname "$0")/lib.sh"

"$CATALOG" --catalog "$T/catalog" import "$AF_SRC/data/catalog/manifest.json" > "$T/import.log" 2>&1 \
    || die "catalog import failed"
cat > "$T/broker.cfg" <<'CFG'
quota
    configs = 3
    data_blobs = 2
    data_grace = 2
CFG
start_broker broker --config "$T/broker.cfg" --catalog "$T/catalog"
start_matcher matcher "$T/catalog"
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet; do af $n login ana > /dev/null || die "$n login failed"; done
TABLET=$(device_id tablet)

# Configurations: three programs, then the limit
"$RAW" "$NODES_EP" "$BROKER_CERT" quota ana "$APPFERRY_PASSWORD" 3 > "$T/quota.out" 2>&1
sed -n 's/^not ok/  # not ok/p' "$T/quota.out"
check "configurations up to the quota, then E_QUOTA naming the limit" grep -q "0 failed" "$T/quota.out"

# User data: pushes to a target that is offline keep their blobs
stop_node tablet
blobs () { broker_value "$BROKER_DIR" appferry_userdata_blobs; }
mkdir -p "$T/phone/data/weixin"
for round in 1 2 3; do
    echo "history of round $round" > "$T/phone/data/weixin/history.log"
    out=$(af phone push weixin --to "$TABLET" --with-data --no-wait 2>&1); rc=$?
    [ $round -lt 3 ] && { [ $rc -eq 0 ] || echo "  # push $round: $out"; }
done
check "two pushes with data wait for the offline tablet: two blobs kept" wait_eq 5 2 blobs
check "a third is refused with E_QUOTA" has "$out" "E_QUOTA" "at most 2 blobs"

# The tablet comes back and installs: nothing needs the blobs any more
start_node tablet "$DEVICES/galaxy-tab-s7.json"
check "when the last target is done with a blob, it is removed" wait_eq 20 0 blobs
echo "history of round 4" > "$T/phone/data/weixin/history.log"
out=$(af phone push weixin --to "$TABLET" --with-data 2>&1); rc=$?
check "  ... and the account may upload again" test $rc -eq 0
check "  ... that one too is removed once the tablet has it" wait_eq 10 0 blobs

# A blob no push ever names is removed after the grace period
"$RAW" "$NODES_EP" "$BROKER_CERT" upload ana "$APPFERRY_PASSWORD" 1000 > "$T/upload.out" 2>&1
check "an upload no push names is stored" grep -q "^ok - the upload is stored" "$T/upload.out"
check "  ... and removed after the grace period" wait_eq 10 0 blobs
check "  ... saying why" grep -q "was never pushed; removing it" "$T/broker.log"

# A broker from before user data lived in its store left a blob as a file
# (DATA/data/blobs/ACCOUNT/ab/HASH): at its next start it is moved into
# the store, whole, and the file goes; a file that is not what its name
# says stays, and the broker says so
kill -TERM "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
head -c 300000 /dev/urandom > "$T/old.tar"
hash=$(b2sum -l 256 "$T/old.tar" | cut -d' ' -f1)
mkdir -p "$BROKER_DIR/data/blobs/ana/${hash:0:2}" "$BROKER_DIR/data/blobs/ana/00"
cp "$T/old.tar" "$BROKER_DIR/data/blobs/ana/${hash:0:2}/$hash"
bad=00$(printf '%062d' 0)
echo "not those bytes" > "$BROKER_DIR/data/blobs/ana/00/$bad"
start_broker broker --config "$T/broker.cfg" --catalog "$T/catalog"
check "a blob a broker from before left in a file is moved into the store at start" wait_eq 5 1 blobs
check "  ... whole (two chunks)" wait_eq 5 2 broker_value "$BROKER_DIR" appferry_userdata_chunks
check "  ... and its file is gone" test ! -e "$BROKER_DIR/data/blobs/ana/${hash:0:2}/$hash"
check "  ... one whose bytes are not its name stays, and the broker says so" \
    bash -c "test -e '$BROKER_DIR/data/blobs/ana/00/$bad' && grep -q '1 blobs of user data are still in' '$T/broker.log'"

finish
