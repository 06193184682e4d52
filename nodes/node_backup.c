/*  =========================================================================
    node_backup - back an app up, and get it back on any device (S4)

    `backup PROGRAM [config]` sends the broker what identifies an app
    installed here (program ID, name, publisher, and the ID of the
    publisher key that signed its package: its "certificate", as the
    store's signed targets named it when it installed), its version, and
    with `config` its configuration sealed with the account key exactly as
    a shared configuration is (af_config_seal). `backups` lists what the
    account has. `restore PROGRAM` first fetches the backup (BACKUP_GET:
    which version, and its configuration), records the restore here, and
    only then asks the broker to RESTORE it to this device; the package
    comes as any push does.

    Why the record comes first: the device refuses a package older than
    the one installed (node_trust.c), and a restore of an older version is
    the one exception. It must be the user's, not the broker's: so the
    exception is this device's own record of a restore its user asked for,
    of exactly that version name (which the signed target must carry too),
    for AF_RESTORE_PENDING_MS. A broker that offers an older version
    without one, or another version than the one asked, gets the rollback
    refusal as before.

    Why each record carries a MAC: the broker keeps the backups, so a
    compromised one could answer BACKUP_GET with a record of another
    program or version than the one asked, or one it edited (another
    version name to restore, another configuration), and the restore
    would follow it. The device that backs up authenticates the record
    with a key derived from the account secret (the one that seals
    configurations, which the broker never sees): keyed BLAKE2b-256 over
    its fields, the account, the hash of its sealed configuration, a
    random backup ID and the device's clock (SPEC 5.48). The restoring
    device checks it, and that the record is of the program and version
    asked, before it records anything or sends RESTORE. What it cannot
    stop: the broker withholding a backup, or answering "the newest" with
    an older genuine one (the answer says which version and when).

    HOME/backup.json: { identities: { PROGRAM: { name, publisher, keyId } },
    restores: { PROGRAM: { versionName ("" for the latest), at, config } } };
    HOME/restores/PROGRAM.sealed: a pending restore's sealed configuration,
    applied in place of the one the install made (S4.6), then removed.
    =========================================================================
*/
#include "node_int.h"
#include "af_config.h"

#include <msgpack.h>
#include <sodium.h>

#define STATE_FILE  "backup.json"

//  Restore options carried in pending->seq while the backup is fetched
#define RESTORE_LATEST      1
#define RESTORE_RECOMMEND   2

static json_t *
s_state (af_node_t *self, const char *section)
{
    json_t *doc = node_json_load (self, STATE_FILE);
    if (!json_is_object (doc)) {
        json_decref (doc);
        doc = json_object ();
    }
    if (!json_is_object (json_object_get (doc, section)))
        json_object_set_new (doc, section, json_object ());
    return doc;
}

static void
s_sealed_path (af_node_t *self, const char *program, char *path, size_t size)
{
    snprintf (path, size, "%s/restores/%s.sealed", self->config.home, program);
}

//  --------------------------------------------------------------------------
//  A backup record's authentication (SPEC 5.48)

//  BLAKE2b-256 of a sealed configuration, as hex, or "" for none
static void
s_config_hash (const uint8_t *config, size_t size, char *hex)
{
    *hex = 0;
    if (size) {
        uint8_t raw [AF_HASH_SIZE];
        crypto_generichash (raw, sizeof raw, config, size, NULL, 0);
        sodium_bin2hex (hex, AF_HASH_HEX + 1, raw, sizeof raw);
    }
}

//  The MAC of a record for an account, as hex: keyed BLAKE2b-256, with a
//  key derived from the account's configuration key (crypto_kdf, context
//  "afbackup", subkey 1), over the msgpack array [ "appferry-backup-1",
//  account, program, name, publisher, keyId, platform, versionName,
//  versionCode, hash, deviceId, backupId, created, configHash ]
static void
s_backup_mac (const uint8_t *account_key, const char *account, const af_backup_t *b, char *hex)
{
    uint8_t key [crypto_generichash_KEYBYTES], raw [AF_HASH_SIZE];
    crypto_kdf_derive_from_key (key, sizeof key, 1, "afbackup", account_key);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    const char *strings [] = { "appferry-backup-1", account, b->program, b->name, b->publisher, b->key_id,
                               b->platform, b->version_name };
    msgpack_pack_array (&pk, 14);
    for (size_t i = 0; i < sizeof strings / sizeof strings [0]; i++)
        msgpack_pack_str_with_body (&pk, strings [i], strlen (strings [i]));
    msgpack_pack_uint64 (&pk, b->version_code);
    msgpack_pack_str_with_body (&pk, b->hash, strlen (b->hash));
    msgpack_pack_str_with_body (&pk, b->device_id, strlen (b->device_id));
    msgpack_pack_str_with_body (&pk, b->backup_id, strlen (b->backup_id));
    msgpack_pack_uint64 (&pk, b->created);
    msgpack_pack_str_with_body (&pk, b->config_hash, strlen (b->config_hash));
    crypto_generichash (raw, sizeof raw, (const uint8_t *) buffer.data, buffer.size, key, sizeof key);
    msgpack_sbuffer_destroy (&buffer);
    sodium_memzero (key, sizeof key);
    sodium_bin2hex (hex, AF_HASH_HEX + 1, raw, sizeof raw);
}

//  Whether a record's MAC verifies under the account key
static bool
s_backup_authentic (const uint8_t *account_key, const char *account, const af_backup_t *b)
{
    char mac [AF_HASH_HEX + 1];
    s_backup_mac (account_key, account, b, mac);
    return strlen (b->mac) == AF_HASH_HEX && sodium_memcmp (mac, b->mac, AF_HASH_HEX) == 0;
}

//  A record BACKUP_GET returned, before anything is done with it: of the
//  program asked, of the version asked (if one was), authentic, and its
//  configuration the one backed up. 0, or -1 with err naming what failed.
static int
s_backup_check (af_node_t *self, const char *program, const char *version, const af_backup_t *b,
                const uint8_t *config, size_t size, char *err, size_t errlen)
{
    uint8_t key [AF_CONFIG_KEY_SIZE];
    char hash [AF_HASH_HEX + 1];
    if (!streq (b->program, program))
        return snprintf (err, errlen, "the broker answered with a backup of %s, not of %s", b->program, program), -1;
    if (*version && !streq (b->version_name, version))
        return snprintf (err, errlen, "the broker answered with version %s of %s, not %s as asked", b->version_name,
                         program, version), -1;
    if (!*b->mac)
        return snprintf (err, errlen, "the backup of %s %s carries no authentication (made before backups were "
                         "authenticated: back it up again)", program, b->version_name), -1;
    if (!node_config_key (self, key))
        return snprintf (err, errlen, "set the account secret to check the backup's authenticity: appferry config "
                         "secret"), -1;
    bool authentic = s_backup_authentic (key, self->account, b);
    sodium_memzero (key, sizeof key);
    if (!authentic)
        return snprintf (err, errlen, "the backup record of %s %s does not verify with the account secret: it was "
                         "altered where it is kept (or made under another secret)", program, b->version_name), -1;
    s_config_hash (config, size, hash);
    if (!streq (hash, b->config_hash))
        return snprintf (err, errlen, "the configuration that came with the backup of %s %s is not the one backed "
                         "up (%s)", program, b->version_name, size? "altered": "withheld"), -1;
    return 0;
}

//  --------------------------------------------------------------------------
//  After an install: the identity, and a restore's configuration

//  Apply a pending restore's sealed configuration; true if it was applied
static bool
s_restore_config (af_node_t *self, const char *program)
{
    char path [700], err [AF_MAX_REASON + 1];
    s_sealed_path (self, program, path, sizeof path);
    zchunk_t *blob = zsys_file_exists (path)? zchunk_slurp (path, AF_MAX_CONFIG): NULL;
    uint8_t key [AF_CONFIG_KEY_SIZE];
    bool applied = false;
    if (blob && !node_config_key (self, key))
        zsys_warning ("node: the backup's configuration of %s waits: set the account secret (appferry config "
                      "secret) and restore again", program);
    else
    if (blob) {
        applied = af_config_open (key, self->config.home, program, zchunk_data (blob), zchunk_size (blob),
                                  err, sizeof err) == AF_OK;
        sodium_memzero (key, sizeof key);
        if (applied)
            zsys_info ("node: restored the backed-up configuration of %s", program);
        else
            zsys_warning ("node: the backed-up configuration of %s was not applied: %s", program, err);
    }
    zchunk_destroy (&blob);
    unlink (path);
    return applied;
}

bool
node_backup_installed (af_node_t *self, const job_t *job, const char *outcome)
{
    json_t *doc = s_state (self, "identities");
    json_object_set_new (json_object_get (doc, "identities"), job->program,
                         json_pack ("{s:s, s:s, s:s}", "name", job->package.display, "publisher",
                                    job->package.publisher, "keyId", job->key_id));
    json_t *restores = json_object_get (doc, "restores");
    json_t *pending = json_object_get (restores, job->program);
    const char *version = json_string_value (json_object_get (pending, "versionName"));
    bool applied = false;
    if (version && (!*version || streq (version, job->package.version_name))) {
        if (streq (outcome, "installed"))
            applied = s_restore_config (self, job->program);
        json_object_del (restores, job->program);
    }
    node_json_save (self, STATE_FILE, doc);
    json_decref (doc);
    return applied;
}

bool
node_restore_allows (af_node_t *self, const job_t *job)
{
    json_t *doc = s_state (self, "restores");
    json_t *pending = json_object_get (json_object_get (doc, "restores"), job->program);
    const char *version = json_string_value (json_object_get (pending, "versionName"));
    uint64_t at = (uint64_t) json_integer_value (json_object_get (pending, "at"));
    bool allowed = version && *version && streq (version, job->package.version_name)
                && at + AF_RESTORE_PENDING_MS > (uint64_t) zclock_time ();
    json_decref (doc);
    if (allowed)
        zsys_info ("node: %s %s is older than the installed version: restored, as asked here", job->program,
                   job->package.version_name);
    return allowed;
}

//  --------------------------------------------------------------------------
//  backup PROGRAM [config]

static bool
s_put_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (!node_answer_failed (self, pending, answer) && pending->client)
        node_ctl_reply (self, pending->client, true, json_pack ("{s:s, s:s, s:b}", "program", pending->program,
                        "versionName", pending->device_name, "config", pending->seq != 0));
    return true;
}

//  The sealed configuration of program into msg; 0, or -1 with err
static int
s_seal (af_node_t *self, const char *program, af_msg_t *msg, char *err, size_t errlen)
{
    uint8_t key [AF_CONFIG_KEY_SIZE];
    char dir [600], tmp [700];
    snprintf (dir, sizeof dir, "%s/config/%s", self->config.home, program);
    if (!af_config_mtime (dir))
        return snprintf (err, errlen, "%s has no configuration here (%s)", program, dir), -1;
    if (!node_config_key (self, key))
        return snprintf (err, errlen, "set the account secret first: appferry config secret"), -1;
    snprintf (tmp, sizeof tmp, "%s/incoming/backup-%s.tar", self->config.home, program);
    uint8_t *blob = NULL;
    size_t size = 0;
    int rc = af_config_seal (key, dir, tmp, &blob, &size, err, errlen) == AF_OK? 0: -1;
    sodium_memzero (key, sizeof key);
    msg->data = blob;
    msg->data_size = (uint32_t) size;
    return rc;
}

void
node_backup (af_node_t *self, cli_t *cli)
{
    const char *program = cli->arg [0];
    bool with_config = cli->arg [1] && streq (cli->arg [1], "config");
    char err [AF_MAX_REASON + 1];
    af_install_info_t info;
    bool found = false;
    if (af_program_check (program, err, sizeof err) != AF_OK
    ||  af_install_record_read (self->config.home, program, &info, &found) != AF_OK || !found) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "%s is not installed on this device", program);
        return;
    }
    uint8_t key [AF_CONFIG_KEY_SIZE];
    if (!node_config_key (self, key)) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "set the account secret first: appferry config secret "
                        "(it authenticates the backup%s)", with_config? " and seals its configuration": "");
        return;
    }
    af_msg_t *msg = af_msg_new (AF_MSG_BACKUP_PUT);
    if (with_config && s_seal (self, program, msg, err, sizeof err)) {
        sodium_memzero (key, sizeof key);
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "%s", err);
        af_msg_destroy (&msg);
        return;
    }
    af_msg_set_backup_count (msg, 1);
    af_backup_t *entry = &msg->backups [0];
    json_t *doc = s_state (self, "identities");
    json_t *identity = json_object_get (json_object_get (doc, "identities"), program);
    const char *name = json_string_value (json_object_get (identity, "name"));
    snprintf (entry->program, sizeof entry->program, "%s", program);
    snprintf (entry->name, sizeof entry->name, "%s", name && *name? name: program);
    snprintf (entry->publisher, sizeof entry->publisher, "%s",
              json_is_string (json_object_get (identity, "publisher"))?
              json_string_value (json_object_get (identity, "publisher")): "");
    snprintf (entry->key_id, sizeof entry->key_id, "%s", json_is_string (json_object_get (identity, "keyId"))?
              json_string_value (json_object_get (identity, "keyId")): "");
    json_decref (doc);
    snprintf (entry->platform, sizeof entry->platform, "%s", self->device.platform);
    snprintf (entry->version_name, sizeof entry->version_name, "%s", info.version_name);
    entry->version_code = info.version_code;
    snprintf (entry->hash, sizeof entry->hash, "%s", info.hash);
    //  Authenticated with the account secret, so that a restore can tell
    //  this record from one the broker made or changed
    uint8_t id [AF_ID_SIZE];
    randombytes_buf (id, sizeof id);
    sodium_bin2hex (entry->backup_id, sizeof entry->backup_id, id, sizeof id);
    snprintf (entry->device_id, sizeof entry->device_id, "%s", self->device_id);
    entry->created = (uint64_t) zclock_time ();
    s_config_hash (msg->data, msg->data_size, entry->config_hash);
    s_backup_mac (key, self->account, entry, entry->mac);
    sodium_memzero (key, sizeof key);
    pending_t *pending = node_request (self, s_put_answer, REQ_SESSION, cli->client, msg);
    snprintf (pending->program, sizeof pending->program, "%s", program);
    snprintf (pending->device_name, sizeof pending->device_name, "%s", info.version_name);
    pending->seq = with_config;
}

//  --------------------------------------------------------------------------
//  backups [PROGRAM]

//  The list, each entry with whether its record verifies with the account
//  secret ("authentic": null without the secret)
static json_t *
s_backups_doc (af_node_t *self, af_msg_t *list)
{
    uint8_t key [AF_CONFIG_KEY_SIZE];
    bool has_key = node_config_key (self, key);
    json_t *backups = json_array ();
    for (uint32_t i = 0; i < list->backup_count; i++) {
        const af_backup_t *b = &list->backups [i];
        json_t *entry = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:b, s:s, s:I}",
            "program", b->program, "name", b->name, "publisher", b->publisher, "keyId", b->key_id,
            "platform", b->platform, "versionName", b->version_name, "versionCode", (json_int_t) b->version_code,
            "hash", b->hash, "at", (json_int_t) b->at, "deviceId", b->device_id, "config", b->config_size > 0,
            "backupId", b->backup_id, "created", (json_int_t) b->created);
        json_object_set_new (entry, "authentic", has_key? json_boolean (s_backup_authentic (key, self->account, b)):
                                                 json_null ());
        json_array_append_new (backups, entry);
    }
    sodium_memzero (key, sizeof key);
    return json_pack ("{s:o}", "backups", backups);
}

static bool
s_list_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (!node_answer_failed (self, pending, answer) && pending->client)
        node_ctl_reply (self, pending->client, answer->id == AF_MSG_BACKUP_LIST,
                        answer->id == AF_MSG_BACKUP_LIST? s_backups_doc (self, answer):
                        node_error_doc (AF_E_INTERNAL, "unexpected answer from the broker"));
    return true;
}

void
node_backups (af_node_t *self, cli_t *cli)
{
    char err [AF_MAX_REASON + 1];
    if (cli->arg [0] && af_program_check (cli->arg [0], err, sizeof err) != AF_OK) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "'%s': %s", cli->arg [0], err);
        return;
    }
    af_msg_t *msg = af_msg_new (AF_MSG_BACKUPS);
    if (cli->arg [0])
        snprintf (msg->program, sizeof msg->program, "%s", cli->arg [0]);
    node_request (self, s_list_answer, REQ_SESSION, cli->client, msg);
}

//  --------------------------------------------------------------------------
//  restore PROGRAM [version=V] [latest] [recommend]

//  The broker's answer to RESTORE: the push, or why nothing fits
static bool
s_restore_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    bool pushed = answer && answer->id == AF_MSG_PUSH_ACCEPTED;
    if (!pushed) {
        //  Nothing comes: the restore is no longer pending
        json_t *doc = s_state (self, "restores");
        json_object_del (json_object_get (doc, "restores"), pending->program);
        node_json_save (self, STATE_FILE, doc);
        json_decref (doc);
        char path [700];
        s_sealed_path (self, pending->program, path, sizeof path);
        unlink (path);
    }
    if (node_answer_failed (self, pending, answer) || !pending->client)
        return true;
    if (pushed)
        node_cli_push_answer (self, pending, answer);
    else
    if (answer->id == AF_MSG_RESOLVED) {
        json_t *doc = af_resolution_to_jansson (answer->program, &(af_resolution_t) {
                                                (af_fit_t) answer->fit, answer->package, "" });
        json_object_set_new (doc, "reason", json_string (answer->reason));
        if (answer->has_alternative)
            json_object_set_new (doc, "recommended", af_package_to_jansson (&answer->alternative));
        node_ctl_reply (self, pending->client, false, doc);
    }
    else
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected %s from the broker",
                        af_msg_command_name (answer->id));
    return true;
}

//  The backup to restore: record the restore here, then ask for it
static bool
s_backup_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (node_answer_failed (self, pending, answer))
        return true;
    if (answer->id != AF_MSG_BACKUP_LIST || answer->backup_count != 1) {
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected answer from the broker");
        return true;
    }
    const af_backup_t *backup = &answer->backups [0];
    bool latest = pending->seq & RESTORE_LATEST;
    char path [700], err [AF_MAX_REASON + 1];
    //  Nothing is recorded, kept or asked for on a record we cannot trust
    if (s_backup_check (self, pending->program, pending->device_name, backup, answer->data, answer->data_size,
                        err, sizeof err)) {
        zsys_warning ("node: restore of %s refused: %s", pending->program, err);
        node_ctl_error (self, pending->client, AF_E_FORBIDDEN, "refused: %s; nothing was installed", err);
        return true;
    }
    s_sealed_path (self, pending->program, path, sizeof path);
    bool config = answer->data_size > 0;
    if (config) {
        char err [AF_MAX_REASON + 1] = "cannot create the directory";
        if (zsys_dir_create ("%s/restores", self->config.home)
        ||  af_file_write (path, answer->data, answer->data_size, 0600, err, sizeof err) != AF_OK) {
            node_ctl_error (self, pending->client, AF_E_INTERNAL, "cannot keep the configuration in %s: %s", path, err);
            return true;
        }
    }
    json_t *doc = s_state (self, "restores");
    json_object_set_new (json_object_get (doc, "restores"), pending->program,
                         json_pack ("{s:s, s:I, s:b}", "versionName", latest? "": backup->version_name,
                                    "at", (json_int_t) zclock_time (), "config", config));
    int saved = node_json_save (self, STATE_FILE, doc);
    json_decref (doc);
    if (saved) {
        //  Without the record the offer would be refused as a rollback
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "cannot record the restore in %s/%s (see the log)",
                        self->config.home, STATE_FILE);
        unlink (path);
        return true;
    }
    af_msg_t *restore = af_msg_new (AF_MSG_RESTORE);
    snprintf (restore->program, sizeof restore->program, "%s", pending->program);
    if (!latest)
        snprintf (restore->version_name, sizeof restore->version_name, "%s", backup->version_name);
    restore->latest = latest;
    restore->recommend = (pending->seq & RESTORE_RECOMMEND) != 0;
    pending_t *next = node_request (self, s_restore_answer, REQ_SESSION, pending->client, restore);
    snprintf (next->program, sizeof next->program, "%s", pending->program);
    return true;
}

void
node_restore (af_node_t *self, cli_t *cli)
{
    const char *program = cli->arg [0];
    char err [AF_MAX_REASON + 1];
    if (af_program_check (program, err, sizeof err) != AF_OK) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "'%s': %s", program, err);
        return;
    }
    af_msg_t *get = af_msg_new (AF_MSG_BACKUP_GET);
    snprintf (get->program, sizeof get->program, "%s", program);
    uint64_t options = self->config.restore_recommend? RESTORE_RECOMMEND: 0;
    for (int i = 1; i < cli->args; i++)
        if (strncmp (cli->arg [i], "version=", 8) == 0)
            snprintf (get->version_name, sizeof get->version_name, "%s", cli->arg [i] + 8);
        else
        if (streq (cli->arg [i], "latest"))
            options |= RESTORE_LATEST;
        else
        if (streq (cli->arg [i], "recommend"))
            options |= RESTORE_RECOMMEND;
    pending_t *pending = node_request (self, s_backup_answer, REQ_SESSION, cli->client, get);
    snprintf (pending->program, sizeof pending->program, "%s", program);
    snprintf (pending->device_name, sizeof pending->device_name, "%s", get->version_name);    //  asked ("": newest)
    pending->seq = options;
}
