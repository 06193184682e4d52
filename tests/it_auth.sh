#!/usr/bin/env bash
# Accounts and credentials: wrong password, unknown account, name taken,
# password rules, bad device files, key binding, sessions that claim
# another account.
. "$(dirname "$0")/lib.sh"

start_broker broker
start_node phone "$DEVICES/galaxy-s21.json"
start_node tablet "$DEVICES/galaxy-tab-s7.json"

check "register ana" af phone register ana
out=$(af tablet register ana 2>&1); rc=$?
check "a taken name is refused with E_ACCOUNT_EXISTS and exit 1" has "$rc:$out" "1:" "E_ACCOUNT_EXISTS"
out=$(APPFERRY_PASSWORD=short af tablet register bob 2>&1)
check "a 5-byte password is refused" has "$out" "passwords are 8..256 bytes"
out=$(af tablet register 'Bob Smith' 2>&1)
check "an account name with a space is refused" has "$out" "account names are"

out=$(APPFERRY_PASSWORD="wrong password" af tablet login ana 2>&1)
check "wrong password refused (E_BAD_PASSWORD)" has "$out" E_BAD_PASSWORD
check "after a wrong password the tablet is not logged in" test "$(afj tablet .loggedIn status)" = false
out=$(af tablet login nobody 2>&1)
check "unknown account refused (E_NO_ACCOUNT)" has "$out" E_NO_ACCOUNT
check "the broker logs the refusal and why" grep -q "refused LOGIN to 'ana'.*wrong password" "$T/broker.log"

# Password sources: file, environment; never the command line
echo "correct horse battery" > "$T/pw"
check "login with --password-file" env -u APPFERRY_PASSWORD "$CLI" --home "$T/tablet" --password-file "$T/pw" login ana
check "no password source and no terminal is a usage error" \
    bash -c "env -u APPFERRY_PASSWORD '$CLI' --home '$T/phone' login ana < /dev/null; test \$? -eq 2"
check "a password on the command line is not accepted" \
    bash -c "'$CLI' --home '$T/phone' login ana 'correct horse battery' 2>/dev/null; test \$? -eq 2"
check "phone logs in" af phone login ana

# Device descriptions are checked before anything is sent
echo '{"platform":"android","model":"X","formFactor":"phone","screenWidth":10,"screenHeight":10}' > "$T/bad.json"
out=$("$NODE" -b "$NODES_EP" -k "$BROKER_CERT" -H "$T/bad" -D "$T/bad.json" 2>&1)
check "a device file without sdkVersion is refused, naming the field" has "$out" sdkVersion
echo '{"model":"X","formFactor":"fridge","screenWidth":10,"screenHeight":10,"platform":"linux","osVersion":"6"}' > "$T/bad2.json"
out=$("$NODE" -b "$NODES_EP" -k "$BROKER_CERT" -H "$T/bad" -D "$T/bad2.json" 2>&1)
check "a form factor 'fridge' is refused" has "$out" formFactor

# Key binding: another key cannot claim the phone's device, even with the password
PHONE_ID=$(afj phone .deviceId status)
check "another key cannot claim the phone (E_KEY_MISMATCH)" \
    "$RAW" "$NODES_EP" "$BROKER_CERT" claim ana "correct horse battery" "$PHONE_ID"
check "the broker logs the claim" grep -q "bound to another key" "$T/broker.log"
check "a session cannot switch to another account" \
    "$RAW" "$NODES_EP" "$BROKER_CERT" forbidden ana "correct horse battery" bob
check "the phone is still logged in and served" test "$(afj phone .loggedIn status)" = true
check "the phone's device list is intact" wait_eq 5 3 afj phone ".devices | length" devices --refresh

# Password guessing: after 10 wrong passwords the account refuses password
# logins for a minute, even the right password; other accounts are unaffected
APPFERRY_PASSWORD="carol's password" af phone register carol >/dev/null
for i in $(seq 10); do APPFERRY_PASSWORD="guess $i guess" af tablet login carol >/dev/null 2>&1; done
out=$(APPFERRY_PASSWORD="carol's password" af tablet login carol 2>&1); rc=$?
check "after 10 wrong passwords even the right one waits (E_RATE_LIMITED)" has "$rc:$out" "1:" E_RATE_LIMITED "try again in"
check "other accounts still log in" af tablet login ana

# Passwords are stored only as Argon2id hashes
check "the store holds an argon2id hash" grep -aq '\$argon2id\$' "$T/broker/store/data.mdb"
check "the store does not hold the password" bash -c "! grep -aq 'correct horse battery' '$T/broker/store/data.mdb'"
finish
