#!/usr/bin/env bash
# A push's user data across a failover (S2.8 in a cluster, issue 12):
# three brokers and an etcd on loopback, one account with a phone and a
# tablet given every broker's endpoint. The tablet is stopped, the phone
# pushes diary --with-data to it (its HOME/data/diary/: a few files, one
# of 600 KiB of random bytes, so the upload spans three 256 KiB chunks);
# once the push is accepted (the UPLOAD acknowledged, the PUSH answered:
# the offer waits for the tablet), the owner of the account's shard is
# killed with -9. A follower takes the shard over, and the tablet, started
# again, installs diary and gets the user data from it, byte for byte the
# phone's. Then a second push (memo --with-data) while the killed broker
# is down; it comes back on its store, catches up, takes its shard back by
# hand-off (it is the shard's wanted owner), and the broker the second
# upload went to is killed with -9 too: the tablet gets memo's user data
# from the broker that came back.
# Before a blob was replicated with the shard (it was a file in the owner's
# DATA/data/blobs/ACCOUNT/), the new owner had the offer but not the data:
# its FETCH failed ("package ... is not in the store"), the tablet
# installed diary without the data and reported the push failed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd.sh"
. "$(dirname "$0")/cluster.sh"

# Two programs, each a package with defaults the user data replaces
P="$T/pkg"
mkdir -p "$P"
echo '[' > "$P/all.json"
for p in diary memo; do
    d="$P/$p"; mkdir -p "$d/app" "$d/defaults"; echo "$p 1" > "$d/app/VERSION"
    echo "theme=default" > "$d/defaults/settings.conf"
    echo "empty" > "$d/defaults/cache.db"
    tar -C "$d" -cf "$P/$p.tar" app defaults || die "cannot make $p.tar"
    [ $p = diary ] || echo ',' >> "$P/all.json"
    printf '{ "program": "%s", "platform": "android", "versionCode": 1, "versionName": "1.0", "minSdk": 21, "file": "%s.tar" }\n' \
        $p $p >> "$P/all.json"
done
echo ']' >> "$P/all.json"
"$CATALOG" --catalog "$T/catalog" import "$P/all.json" > "$T/import.log" 2>&1 || die "catalog import failed"

SHARDS=16 TTL=3 MEMBER_OPTS=(--catalog "$T/catalog")
cluster_start 3
for i in 1 2 3; do start_matcher_at $i m$i "$T/catalog"; done
check "every shard has an owner and an in-sync follower" wait_until 30 all_in_sync
# ... and is at its wanted owner (the hand-offs to the brokers started
# after the first, which took every shard, are over): the killed owner
# below, started again, is the wanted owner of its shard and takes it back
"$RAW" wanted "$SHARDS" "$(cat "$T/b1/broker.id")" "$(cat "$T/b2/broker.id")" "$(cat "$T/b3/broker.id")" \
    | awk '{ print $1, $2 }' | sort > "$T/wanted" || die "no wanted placement"
settled () { owners | sort > "$T/owners" && cmp -s "$T/wanted" "$T/owners" && all_in_sync; }
check "  ... every one at its wanted owner (the hand-offs are over)" wait_until 40 settled

# ana's phone (the sender) and tablet (the target), given every broker
NODES_EP=$ALL
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
af phone register ana > /dev/null || die "register failed"
for n in phone tablet; do af $n login ana > /dev/null || die "$n login failed"; done
TABLET=$(device_id tablet)
S=$(shard ana); OLD=$(owner $S); V=$(broker_of "$OLD")
[ -n "$V" ] || die "ana's shard $S has no owner"
echo "  # ana's shard $S is owned by broker $V ($OLD)"

# The phone's user data of a program: a few files, one of random bytes
user_data () {
    local d="$T/phone/data/$1"
    mkdir -p "$d/notes" "$d/media"
    printf 'theme=dark\nfont=12\n' > "$d/settings.conf"
    printf 'day 1: %s on the phone\n' "$1" > "$d/notes/history.log"
    head -c 600K /dev/urandom > "$d/media/blob.bin" || die "cannot write $1's random data"
}
# push_queued PROGRAM: push --with-data to the stopped tablet, accepted
push_queued () {
    local out rc
    out=$(af phone push "$1" --to "$TABLET" --with-data 2>&1); rc=$?
    echo "$out" | tail -n 2 | sed 's/^/  # /'
    check "the push of $1 with its user data to the stopped tablet is accepted, the offer waiting" \
        exits 0 $rc has "$out" "1 device is offline: the push waits for it"
}
# ended PROGRAM: the tablet's push of PROGRAM ended (installed or failed)
ended () { grep -qE "node: push [0-9a-f]+( of $1 failed|: $1 1\.0 installed)" "$T/tablet.log"; }
# got_data PROGRAM WHERE: what the tablet must have of PROGRAM, checked
got_data () {
    check "  ... the tablet's push of $1 ends" wait_until 30 ended "$1"
    grep -E "node: push [0-9a-f]+( of $1 failed|: $1 1\.0 installed)" "$T/tablet.log" | sed 's/^/  # /'
    check "  ... the tablet installs $1" test -f "$T/tablet/apps/$1/app/VERSION"
    check "  ... and gets its user data from $2, identical to the phone's (diff -r)" same_data "$1"
    check "  ... and reports the push installed, not failed" \
        bash -c "grep -qE 'node: push [0-9a-f]+: $1 1\\.0 installed' '$T/tablet.log' \
                 && ! grep -qE 'node: push [0-9a-f]+ of $1 failed' '$T/tablet.log'"
    check "  ... and the phone hears it installed with its user data" wait_until 10 \
        grep -qE "node: push [0-9a-f]+ of $1: device $TABLET installed: with the user data" "$T/phone.log"
}
# same_data PROGRAM: the tablet's data directory of PROGRAM is the phone's
# (what differs shown, a few lines)
same_data () {
    diff -r "$T/phone/data/$1" "$T/tablet/data/$1" > "$T/diff.$1" 2>&1 && return 0
    head -n 6 "$T/diff.$1" | sed 's/^/  # /'
    return 1
}

# --- the owner killed with -9 after it accepted the push
user_data diary
stop_node tablet
push_queued diary
kill -9 "${PID[$V]}"; wait "${PID[$V]}" 2>/dev/null
moved () { local o; o=$(owner $S); [ -n "$o" ] && [ "$o" != "$OLD" ]; }
check "with its owner killed, a follower takes ana's shard within the lease ($TTL s) and 5 s" \
    wait_until $((TTL + 5)) moved
NEW=$(owner $S); W=$(broker_of "$NEW")
echo "  # broker $W ($NEW) took shard $S over"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
got_data diary "the new owner"

# --- a second push while the killed broker is down; it comes back,
# catches up, takes its shard back, and the broker the upload went to dies
user_data memo
stop_node tablet
push_queued memo
start_member "$V"
NODES_EP=$ALL               # (start_member set it to broker V's alone)
isr_has () { etcdctl_at "$E" get --keys-only "/appferry/shards/$(printf %04d "$S")/isr/$OLD" | grep -q .; }
check "the killed broker, started again on its store, is in ana's shard's in-sync set again" wait_until 30 isr_has
back () { [ "$(owner $S)" = "$OLD" ]; }
check "  ... and takes the shard back by hand-off (its wanted owner)" wait_until 30 back
kill -9 "${PID[$W]}"; wait "${PID[$W]}" 2>/dev/null
echo "  # broker $W, which took memo's upload, killed"
start_node tablet "$DEVICES/galaxy-tab-s7.json"
got_data memo "the broker that came back"

finish
