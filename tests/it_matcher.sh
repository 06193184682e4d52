#!/usr/bin/env bash
# The matcher behind the broker: resolution through the real broker for
# different devices, store links, no-fit reasons, unknown programs; a
# request whose matcher hangs is handed to another; with no matcher the
# node gets E_UNAVAILABLE; a matcher whose key is not allowed is refused;
# nodes started with bundletool device specs log in and resolve.
. "$(dirname "$0")/lib.sh"

cat > "$T/broker.cfg" <<CFG
broker
    request_timeout = 2500
CFG
start_broker broker -c "$T/broker.cfg"
check "import the sample catalog" "$CATALOG" --catalog "$T/catalog" import "$AF_SRC/data/catalog/manifest.json"
start_matcher m1 "$T/catalog"
start_node phone "$DEVICES/galaxy-s21.json"
start_node tv "$DEVICES/chromecast-google-tv.json"
start_node iphone "$DEVICES/iphone-13.json"
start_node old "$DEVICES/galaxy-a10.json"
check "register" af phone register ana
for n in phone tv iphone old; do check "log in $n" af $n login ana; done

file_hash () { b2sum -l 256 "$AF_SRC/data/catalog/packages/$1" | cut -d' ' -f1; }
out=$(afj phone '.fit + " " + .package.versionName + " " + .package.abi + " " + .package.hash' resolve weixin)
check "phone (arm64, Android 13) gets the arm64 8.0.48 build" \
    test "$out" = "package 8.0.48 arm64-v8a $(file_hash weixin-8.0.48-arm64.tar)"
out=$(afj tv '.fit + " " + .package.versionName + " " + .package.abi + " " + .package.hash' resolve weixin)
check "TV (armeabi-v7a, tv) gets the TV build" \
    test "$out" = "package 1.2.0-tv armeabi-v7a $(file_hash weixin-tv-1.2.0.tar)"
out=$(afj old '.fit + " " + .package.versionName' resolve weixin)
check "old phone (armeabi-v7a, Android 9) gets the 32-bit 8.0.48 build" test "$out" = "package 8.0.48"
out=$(afj iphone '.fit + " " + .package.storeLink' resolve weixin)
check "iPhone gets the App Store link" test "$out" = "store-link https://apps.apple.com/app/wechat/id414478124"
out=$(af iphone resolve notes 2>&1); rc=$?
check "iPhone 17.1 and a package for iOS 18: no fit, with the reason, exit 1" \
    has "$rc:$out" "1:" "needs iOS 18" "device runs iOS 17.1"
out=$(af old resolve chess 2>&1); rc=$?
check "Android 9 and a package for Android 10+: the reason names both" \
    has "$rc:$out" "1:" "needs Android 10 or later; device runs Android 9"
out=$(af phone resolve nosuch 2>&1); rc=$?
check "unknown program: clear answer, exit 1" has "$rc:$out" "1:" "unknown program 'nosuch'"
check "the broker's answer equals the offline resolver's" \
    test "$(afj tv .package.packageId resolve weixin)" = \
         "$("$CATALOG" --catalog "$T/catalog" resolve weixin "$DEVICES/chromecast-google-tv.json" --json | jq -r .package.packageId)"

# bundletool device specs as `bundletool get-device-spec` writes them, in
# both proto-JSON spellings: the nodes start with them, log in (the broker
# accepts a description without a screen size) and resolve
BT="$AF_SRC/tests/data/devices"
start_node pixel2 "$BT/bundletool-pixel2-snake.json"
start_node pixel2c "$BT/bundletool-pixel2-camel.json"
start_node btv "$BT/bundletool-google-tv.json"
start_node watch "$BT/bundletool-watch.json"
for n in pixel2 pixel2c btv watch; do check "log in $n (a bundletool spec)" af $n login ana; done
out=$(afj pixel2 '.fit + " " + .package.versionName + " " + .package.abi' resolve weixin)
check "snake_case Pixel 2 spec (arm64, API 26) gets the arm64 8.0.48 build" test "$out" = "package 8.0.48 arm64-v8a"
out=$(afj pixel2c '.fit + " " + .package.versionName + " " + .package.abi' resolve weixin)
check "camelCase Pixel 2 spec gets the same build" test "$out" = "package 8.0.48 arm64-v8a"
PIXEL2C_ID=$(device_id pixel2c)
BTV_ID=$(device_id btv)
WATCH_ID=$(device_id watch)
check "the account sees the camelCase spec as a google walleye phone on Android 8.0" \
    wait_eq 5 "google walleye/phone/8.0" \
    afj phone ".devices[] | select(.id == \"$PIXEL2C_ID\") | .model + \"/\" + .formFactor + \"/\" + .osVersion" devices
check "the TV spec is a tv (deviceFeatures), the watch spec a watch" \
    wait_eq 5 "tv watch" bash -c "'$CLI' --home '$T/phone' --json devices | jq -r '[(.devices[] | select(.id == \"$BTV_ID\") | .formFactor), (.devices[] | select(.id == \"$WATCH_ID\") | .formFactor)] | join(\" \")'"
out=$(af btv resolve weixin 2>&1); rc=$?
check "a TV without a screen size does not fit the TV build, and the reason says the resolution is unknown" \
    has "$rc:$out" "1:" "needs a screen of at least 1280x720; the device's resolution is unknown"
out=$(af watch resolve weixin 2>&1); rc=$?
check "the watch gets no phone build" has "$rc:$out" "1:" "device is a watch"

# A device described by adb (recorded output behind a stand-in adb): the
# node writes HOME/device.json, logs in, and the TV, whose screen adb
# reports, gets the TV build the bundletool spec could not
export AF_ADB="$BT/adb"
out=$("$NODE" --device-from-adb phone --print-device | jq -r '[.model, .manufacturer, .formFactor, .osVersion, .screenWidth, .screenHeight, .screenDensity, .supportedAbis[0], .supportedLocales[0]] | join(" ")')
check "--device-from-adb --print-device describes the recorded phone" \
    test "$out" = "SM-G991B samsung phone 13 1080 2400 480 arm64-v8a en-GB"
out=$("$NODE" -b "$NODES_EP" -k "$BROKER_CERT" -H "$T/adbnone" --device-from-adb 2>&1); rc=$?
check "without a serial, adb's own refusal is shown and the node does not start" \
    has "$rc:$out" "1:" "more than one device/emulator"
"$NODE" -b "$NODES_EP" -k "$BROKER_CERT" -H "$T/adbtv" --device-from-adb tv --heartbeat $HB >> "$T/adbtv.log" 2>&1 &
PIDS+=($!)
wait_until 10 test -S "$T/adbtv/node.sock" || die "node adbtv did not start"
wait_until 10 bash -c "'$CLI' --home '$T/adbtv' --json status | jq -e .connected" \
    || die "node adbtv did not connect to the broker"
check "log in the TV described by adb" af adbtv login ana
check "HOME/device.json holds the description from adb" \
    test "$(jq -r '.model + " " + .formFactor + " " + (.screenWidth|tostring)' "$T/adbtv/device.json")" = "Chromecast tv 1920"
out=$(afj adbtv '.fit + " " + .package.versionName + " " + .package.abi' resolve weixin)
check "the TV from adb (1920x1080) gets the TV build" test "$out" = "package 1.2.0-tv armeabi-v7a"
unset AF_ADB

# A matcher that hangs: its request goes to another matcher
kill -STOP "$MATCHER_PID_m1"
(afj phone '.fit + " " + .package.versionName' resolve weixin > "$T/handover.out" 2>&1) &
sleep 0.3
start_matcher m2 "$T/catalog"
check "the hung matcher's request is answered by the other" wait_eq 10 "package 8.0.48" cat "$T/handover.out"
check "the broker removed the hung matcher" grep -q "removed: heartbeat expired" "$T/broker.log"
kill -CONT "$MATCHER_PID_m1"
# Revived, it either notices the silence and reconnects or is told by the
# broker to send READY again; either way it is back as a worker
check "the revived matcher announces itself again" wait_until 5 bash -c "test \$(grep -c 'worker .* ready' '$T/broker.log') -ge 3"

# No matcher at all
kill -9 "$MATCHER_PID_m1" "$MATCHER_PID_m2"
sleep 1
out=$(af phone resolve weixin 2>&1); rc=$?
check "with no matcher the node gets E_UNAVAILABLE" has "$rc:$out" "1:" "E_UNAVAILABLE" "no matcher answered"

# A matcher whose key the broker does not list cannot connect
"$MATCHER" -b "$WORKERS_EP" -k "$BROKER_CERT" -C "$T/catalog" -c "$T/rogue.cert" --heartbeat $HB > "$T/rogue.log" 2>&1 &
PIDS+=($!)
check "a matcher with an unlisted key is refused" wait_until 5 grep -q "refused worker key" "$T/broker.log"
out=$(af phone resolve weixin 2>&1)
check "and gets no requests" has "$out" E_UNAVAILABLE
finish
