#!/usr/bin/env bash
# A peer that sends requests and never reads (issue 9, section 4): the
# broker queues only a bounded number of bytes for it, then drops it and
# logs why, and the account's other devices are served meanwhile. A
# device that does read loses nothing of a burst larger than the socket's
# queue: a login with more offers waiting than the delivery window.
. "$(dirname "$0")/lib.sh"

"$CATALOG" --catalog "$T/catalog" import "$AF_SRC/data/catalog/manifest.json" > "$T/import.log" 2>&1 \
    || die "catalog import failed"
# Under AddressSanitizer freed memory sits in a quarantine (256 MiB by
# default) and would count as the broker's; keep it small here
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=4"
start_broker broker --catalog "$T/catalog"
start_matcher matcher "$T/catalog"

# 1,000 requests for a 256 KiB configuration (250 MiB of answers) from a
# connection that reads none of them
"$RAW" "$NODES_EP" "$BROKER_CERT" noread sink "the sink's password" 1000 "$BROKER_PID" 24 \
    > "$T/noread.out" 2>&1
grep '^#' "$T/noread.out" | sed 's/^/  /'
sed -n 's/^not ok/  # not ok/p' "$T/noread.out"
check "a peer that does not read holds at most 24 MiB of the broker's memory" \
    grep -q "^ok - the broker's memory stays bounded" "$T/noread.out"
check "  ... another device of the account is served meanwhile" \
    grep -q "^ok - another device of the account is served meanwhile" "$T/noread.out"
check "  ... and gets its 256 KiB configuration" grep -q "^ok -   ... and then gets its configuration" "$T/noread.out"
check "the broker logs that it dropped the peer, and why" \
    grep -q "dropped the connection of device .* of 'sink' from 127.0.0.1: it is not reading" "$T/broker.log"
check "the broker is still running" kill -0 "$BROKER_PID"

# A login with 100 offers waiting: LOGIN_OK, the device lists and a
# window of 64 items at once, the rest as each offer is finished
"$RAW" "$NODES_EP" "$BROKER_CERT" burst burst "the burst's password" 100 > "$T/burst.out" 2>&1
grep '^#' "$T/burst.out" | sed 's/^/  /'
sed -n 's/^not ok/  # not ok/p' "$T/burst.out"
check "a device that reads gets all 100 offers waiting for it, in order, and keeps its session" \
    grep -q "0 failed" "$T/burst.out"
check "  ... and was not dropped" bash -c "! grep -q \"dropped the connection of .* of 'burst'\" '$T/broker.log'"
finish
