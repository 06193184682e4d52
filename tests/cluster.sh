# tests/cluster.sh - a cluster of brokers for the integration tests (issue 12).
#
# Sourced after tests/lib.sh and tests/etcd.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/etcd.sh"
#   . "$(dirname "$0")/cluster.sh"
#   SHARDS=16 TTL=3 MEMBER_OPTS=(--heartbeat 1000)   # before cluster_start
#   cluster_start 3        # etcd e1 and brokers b1..b3, one cluster keypair
#
# cluster_start N: starts etcd (E is its endpoint) and N brokers b1..bN in
# $T/bI with $T/bI.cfg (etcd E, SHARDS shards, a lease of TTL seconds, a
# repl_timeout of 500 ms, and CLUSTER_CFG's lines if set, e.g.
# $'    log_keep = 10\n') and MEMBER_OPTS, every one with b1's keypair
# and an ID with which the placement gives each a shard to own (spread_ids);
# EP[I], WK[I], PID[I] are each one's nodes and workers endpoints and pid,
# ALL every nodes endpoint comma-separated, BROKER_CERT the cluster's
# public key. start_member I starts (or restarts, on the same store and
# endpoints) broker I. Then:
#
#   owner SHARD        the broker ID that owns it now ("" if none)
#   shard ACCOUNT      the account's shard, as every broker computes it
#   broker_of ID       the member (1..N) with that broker ID
#   all_owned          every shard has an owner
#   spread             the owners are all N brokers
#   all_in_sync        every shard has an in-sync follower (a kill -9 of
#                      any owner can be taken over)
#   owners             "SHARD ID" of every owned shard, one etcdctl call
#   owned_by ID        the shards ID owns, one a line
#   start_matcher_at I NAME CATALOG [opts]: a matcher for broker I
#   want_placement ID...  writes $T/wanted, "SHARD OWNER" of every shard as
#                      the brokers ID... would place it
#   placed             the owners are those of $T/wanted and all_in_sync
#   wanted_of ID       the first shard $T/wanted gives broker ID to own
#   wanted_owner S     the broker ID $T/wanted gives shard S to
#   accounts_of S N    N account names user1, user2, ... of shard S
SHARDS=${SHARDS:-16} TTL=${TTL:-3} REPL_MS=${REPL_MS:-500}
MEMBERS=0
declare -a EP WK PID
[ -n "${MEMBER_OPTS+set}" ] || MEMBER_OPTS=()

owner () { etcdctl_at "$E" get --print-value-only "/appferry/shards/$(printf %04d "$1")/owner"; }
shard () { "$RAW" shard "$1" "$SHARDS"; }
broker_of () {
    local i
    for i in $(seq 1 "$MEMBERS"); do grep -qx "$1" "$T/b$i/broker.id" 2>/dev/null && echo "$i"; done
}
# owners: "SHARD ID" for every owned shard, from one etcdctl call (one
# call per shard is seconds for 256 on a busy machine)
owners () {
    etcdctl_at "$E" get --prefix /appferry/shards/ | paste - - \
        | sed -nE 's|^/appferry/shards/0*([0-9]+)/owner\t(.*)$|\1 \2|p'
}
want_placement () { "$RAW" wanted "$SHARDS" "$@" | cut -d' ' -f1,2 | sort > "$T/wanted"; }
placed () { owners | sort | cmp -s - "$T/wanted" && all_in_sync; }
wanted_of () { awk -v id="$1" '$2 == id { print $1; exit }' "$T/wanted"; }
wanted_owner () { awk -v s="$1" '$1 == s { print $2; exit }' "$T/wanted"; }
accounts_of () {
    local s=$1 n=$2 i found=0
    for i in $(seq 1 5000); do
        [ "$(shard "user$i")" = "$s" ] || continue
        echo "user$i"
        found=$((found + 1))
        [ "$found" -eq "$n" ] && return 0
    done
    return 1
}
# S, a shard broker 1 (ID $1) is the wanted owner of, and NAMES, $2
# accounts of it (after want_placement; the test dies without them)
wanted_shard_accounts () {
    S=$(wanted_of "$1")
    [ -n "$S" ] || die "broker 1 is the wanted owner of no shard"
    mapfile -t NAMES < <(accounts_of "$S" "$2")
    [ "${#NAMES[@]}" -eq "$2" ] || die "fewer than $2 accounts of shard $S"
}
owned_by () { owners | awk -v id="$1" '$2 == id { print $1 }'; }
all_owned () { test "$(owners | wc -l)" -eq "$SHARDS"; }
spread () { test "$(owners | cut -d' ' -f2 | sort -u | wc -l)" -eq "$MEMBERS"; }
# (an owner is in its shard's in-sync set too: a follower is another ID)
all_in_sync () {
    test "$(etcdctl_at "$E" get --prefix /appferry/shards/ | paste - - | awk -F'\t' '
        { split ($1, k, "/"); s = k [4] }
        k [5] == "owner" { owner [s] = $2 }
        k [5] == "isr" { isr [s] = isr [s] " " k [6] }
        END { for (s in isr) { n = split (isr [s], ids, " "); for (i = 1; i <= n; i++)
                  if (ids [i] != owner [s]) { synced++; break } }
              print synced + 0 }')" -eq "$SHARDS"
}

start_member () {
    local i=$1
    printf 'cluster\n    etcd = %s\n    shards = %d\n    lease_ttl = %d\n    repl_timeout = %d\n%s' \
        "$E" "$SHARDS" "$TTL" "$REPL_MS" "${CLUSTER_CFG:-}" > "$T/b$i.cfg"
    unset NODES_EP WORKERS_EP
    [ -z "${EP[$i]:-}" ] || NODES_EP=${EP[$i]} WORKERS_EP=${WK[$i]}     # a restart: the same endpoints
    start_broker "b$i" --config "$T/b$i.cfg" "${MEMBER_OPTS[@]}"
    EP[$i]=$NODES_EP; WK[$i]=$WORKERS_EP; PID[$i]=$BROKER_PID
}

# spread_ids N: writes $T/b1..bN/broker.id, IDs with which the placement
# gives every one of the N brokers at least one shard to own. The
# placement is a rendezvous hash of shard and broker ID: with the tests'
# 16 shards, 3 brokers of random IDs leave one without a shard to own in
# about 1 run of 200 (3 x (2/3)^16), and a test of devices on every
# broker would fail on that; with the default 256 shards the chance is
# nil (docs/ARCHITECTURE.md "Placement"). A test that wrote IDs of its
# own keeps them.
spread_ids () {
    local n=$1 i try ids
    for i in $(seq 1 "$n"); do [ ! -e "$T/b$i/broker.id" ] || return 0; done  # the test chose them
    for try in $(seq 1 100); do
        ids=()
        for i in $(seq 1 "$n"); do ids+=("$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"); done
        [ "$("$RAW" wanted "$SHARDS" "${ids[@]}" | cut -d' ' -f2 | sort -u | wc -l)" -eq "$n" ] || continue
        for i in $(seq 1 "$n"); do mkdir -p "$T/b$i"; echo "${ids[$((i - 1))]}" > "$T/b$i/broker.id"; done
        return 0
    done
    die "no $n broker IDs in 100 tries give each a shard of $SHARDS to own"
}

cluster_start () {
    local n=$1 i
    MEMBERS=$n
    start_etcd e1
    E=$ETCD_ENDPOINT
    spread_ids "$n"
    start_member 1
    for i in $(seq 2 "$n"); do
        mkdir -p "$T/b$i"
        cp "$T/b1/broker.cert" "$T/b1/broker.cert_secret" "$T/b$i/"
        start_member "$i"
    done
    BROKER_CERT="$T/b1/broker.cert"
    ALL=$(for i in $(seq 1 "$n"); do echo "${EP[$i]}"; done | paste -sd,)
}

start_matcher_at () {
    local i=$1; shift
    WORKERS_EP=${WK[$i]} BROKER_DIR="$T/b$i" BROKER_CERT="$T/b1/broker.cert" start_matcher "$@"
}

# cluster_contacts: a contacts worker ($CONTACTS) at every member, all with
# one OPRF key (a number's token is the same whichever broker a device
# asks), each member's broker ready for it
cluster_contacts () {
    local i
    for i in $(seq 1 "$MEMBERS"); do
        "$CONTACTS" -b "${WK[$i]}" -k "$BROKER_CERT" -c "$T/contacts.cert" -K "$T/contacts-key/oprf.key" \
            --heartbeat $HB >> "$T/contacts$i.log" 2>&1 &
        PIDS+=($!)
        if [ "$i" -eq 1 ]; then
            wait_until 10 test -s "$T/contacts.cert" || die "the contacts worker made no certificate"
            local j
            for j in $(seq 1 "$MEMBERS"); do cp "$T/contacts.cert" "$T/b$j/workers/contacts.cert"; done
        fi
    done
    for i in $(seq 1 "$MEMBERS"); do
        wait_until 10 grep -q "ready for 'contacts'" "$T/b$i.log" || die "broker $i has no contacts worker"
    done
}

# account_on PREFIX MEMBER: an account name PREFIX1..PREFIX200 whose shard
# member MEMBER owns now (by the owners etcd holds), or nothing
account_on () {
    local i id owned; id=$(cat "$T/b$2/broker.id"); owned=$(owners)
    for i in $(seq 1 200); do
        grep -qx "$(shard "$1$i") $id" <<< "$owned" && { echo "$1$i"; return; }
    done
}

# friends_across PROGRAM...: ana ($ANA, node a: a Galaxy Tab S7) and bob
# ($BOB, node b: a Galaxy S21) log in through all the brokers ($ALL), import
# the address books of tests/friends and become friends across them
# (checked); ana's list holds exactly the PROGRAMs (preinstalled before),
# and she shares each with her friends. TABLET is ana's device ID.
friends_across () {
    local pair n account p F="$AF_SRC/tests/friends"
    NODES_EP=$ALL
    start_node a "$DEVICES/galaxy-tab-s7.json"
    start_node b "$DEVICES/galaxy-s21.json"
    for pair in a:$ANA b:$BOB; do
        n=${pair%%:*} account=${pair#*:}
        af $n register $account > /dev/null && af $n login $account > /dev/null || die "$account: no login"
    done
    af a contacts import "$F/ana.vcf" --country DE > /dev/null \
        && af a contacts me "0151 10000001" --country DE > /dev/null \
        && af b contacts import "$F/bob.vcf" --country DE > /dev/null \
        && af b contacts me "+49 151 10000002" > /dev/null \
        || die "contacts import failed"
    check "ana ($ANA, broker 1) and bob ($BOB, broker 2) are friends over the brokers" \
        test "$(afj b '[.friends[].name] | join(",")' friends)" = "Ana Alpha"
    wait_until 10 bash -c "'$CLI' --home '$T/a' --json apps | jq -e '.apps | length == $#'" || die "ana's list"
    for p in "$@"; do af a share $p --friends > /dev/null || die "share failed"; done
    TABLET=$(device_id a)
}
