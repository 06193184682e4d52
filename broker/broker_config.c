/*  =========================================================================
    broker_config - the broker's settings, as one table (like Redis config.c)

    Each setting is a row: its ZPL path, its type and bounds, and where it
    goes in af_broker_config_t. Loading walks the file once, refusing any
    key that has no row (a typo must not silently mean a default), then
    reads each row. deploy/appferry-broker.cfg documents every row; the
    two are kept in the same order.
    =========================================================================
*/
#include "af_broker.h"
#include "af_msg.h"

#include <errno.h>
#include <stddef.h>
#include <sodium.h>

void
af_broker_config_defaults (af_broker_config_t *config)
{
    memset (config, 0, sizeof *config);
    snprintf (config->data_dir, sizeof config->data_dir, "/var/lib/appferry");
    snprintf (config->nodes, sizeof config->nodes, "tcp://*:5670");
    snprintf (config->workers, sizeof config->workers, "tcp://127.0.0.1:5671");
    config->heartbeat_ms = AF_HEARTBEAT_MS;
    config->liveness = AF_HEARTBEAT_LIVENESS;
    config->request_timeout_ms = AF_REQUEST_TIMEOUT_MS;
    config->pwcost.opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    config->pwcost.memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    config->max_sessions = AF_MAX_SESSIONS;
    config->max_queue = AF_MAX_QUEUE;
    config->max_age_s = 86400;
    config->list_every_s = 86400;
    config->map_mib = 4096;
    config->pw_threads = AF_PW_THREADS;
    config->pw_per_source = AF_PW_PER_SOURCE;
    config->quota_configs = AF_QUOTA_CONFIGS;
    config->quota_config_mib = AF_QUOTA_CONFIG_MIB;
    config->quota_data_blobs = AF_QUOTA_DATA_BLOBS;
    config->quota_data_mib = AF_QUOTA_DATA_MIB;
    config->quota_backups = AF_QUOTA_BACKUPS;
    config->notice_keep_s = AF_PAYNOTES_KEEP_S;
    config->quota_backup_mib = AF_QUOTA_BACKUP_MIB;
    config->data_grace_s = AF_DATA_GRACE_MS / 1000;
    snprintf (config->cluster_peers, sizeof config->cluster_peers, "tcp://127.0.0.1:*");
    config->cluster_shards = 256;
    config->cluster_replicas = AF_CLUSTER_REPLICAS;
    config->cluster_lease_s = AF_CLUSTER_LEASE_S;
    config->cluster_repl_ms = AF_CLUSTER_REPL_MS;
    config->cluster_log_keep = AF_CLUSTER_LOG_KEEP;
    config->max_per_source = AF_MAX_PER_SOURCE;
    config->eval_limit = AF_EVAL_LIMIT;
    config->eval_window_s = AF_EVAL_WINDOW_S;
    config->friend_min_common = AF_FRIEND_MIN_COMMON;
    config->record_wait_s = AF_RECORD_WAIT_S;
}

typedef enum { T_STR, T_INT, T_SIZE, T_BOOL, T_VERSION, T_PWCOST } type_t;

typedef struct {
    const char *path;           //  section/name in the ZPL file
    type_t type;
    size_t offset;              //  in af_broker_config_t
    size_t size;                //  T_STR: the buffer's size
    long min, max;              //  T_INT, T_SIZE
    const char *why;            //  ... why not more, said when a value is refused (or NULL)
} setting_t;

#define STR(path, field) { path, T_STR, offsetof (af_broker_config_t, field), \
                           sizeof ((af_broker_config_t *) 0)->field, 0, 0, NULL }
#define NUM(path, type, field, min, max) { path, type, offsetof (af_broker_config_t, field), 0, min, max, NULL }

static const setting_t s_settings [] = {
    STR ("broker/data_dir", data_dir),
    STR ("broker/nodes", nodes),
    STR ("broker/workers", workers),
    NUM ("broker/heartbeat", T_INT, heartbeat_ms, 50, 600000),
    NUM ("broker/liveness", T_INT, liveness, 1, 100),
    NUM ("broker/request_timeout", T_INT, request_timeout_ms, 100, 3600000),
    NUM ("broker/max_sessions", T_SIZE, max_sessions, 1, 10000000),
    NUM ("broker/max_queue", T_SIZE, max_queue, 1, 10000000),
    NUM ("broker/verbose", T_BOOL, verbose, 0, 1),
    STR ("broker/catalog", catalog),
    NUM ("broker/list_every", T_INT, list_every_s, 0, 365 * 86400),
    NUM ("broker/map_size", T_INT, map_mib, 1, 1024 * 1024),
    STR ("broker/metrics", metrics),
    NUM ("security/pw_threads", T_INT, pw_threads, 1, 16),
    NUM ("security/pw_per_source", T_INT, pw_per_source, 1, 1000000),
    NUM ("security/max_per_source", T_SIZE, max_per_source, 1, 10000000),
    { "security/pwhash", T_PWCOST, offsetof (af_broker_config_t, pwcost), 0, 0, 0, NULL },
    STR ("security/worker_keys", worker_keys),
    { "policy/min_node_version", T_VERSION, offsetof (af_broker_config_t, min_node_version),
      sizeof ((af_broker_config_t *) 0)->min_node_version, 0, 0, NULL },
    STR ("policy/require", require),
    NUM ("quota/configs", T_INT, quota_configs, 1, 1000000),
    NUM ("quota/config_bytes", T_INT, quota_config_mib, 1, 1024 * 1024),
    NUM ("quota/data_blobs", T_INT, quota_data_blobs, 1, 1000000),
    NUM ("quota/data_bytes", T_INT, quota_data_mib, 1, 1024 * 1024),
    NUM ("quota/data_grace", T_INT, data_grace_s, 1, 365 * 86400),
    NUM ("quota/backups", T_INT, quota_backups, 1, 1000000),
    NUM ("quota/backup_bytes", T_INT, quota_backup_mib, 1, 1024 * 1024),
    NUM ("quota/notice_keep", T_INT, notice_keep_s, AF_PAYNOTES_KEEP_MIN_S, 3650 * 86400),
    NUM ("policy/max_age", T_INT, max_age_s, 1, 365 * 86400),
    STR ("cluster/etcd", etcd),
    STR ("cluster/id", cluster_id),
    STR ("cluster/peers", cluster_peers),
    STR ("cluster/advertise", cluster_advertise),
    NUM ("cluster/shards", T_INT, cluster_shards, 1, 4096),
    { "cluster/replicas", T_INT, offsetof (af_broker_config_t, cluster_replicas), 0, 0, AF_CLUSTER_REPLICAS_MAX,
      "more followers per shard are not supported" },
    NUM ("cluster/lease_ttl", T_INT, cluster_lease_s, 2, 60),
    NUM ("cluster/repl_timeout", T_INT, cluster_repl_ms, 100, 60000),
    NUM ("cluster/log_keep", T_INT, cluster_log_keep, AF_CLUSTER_LOG_KEEP_MIN, 100000000),
    NUM ("contacts/eval_limit", T_INT, eval_limit, 1, 100000000),
    NUM ("contacts/eval_window", T_INT, eval_window_s, 1, 365 * 86400),
    NUM ("friends/min_common", T_INT, friend_min_common, 1, 1000),
    NUM ("get/record_wait", T_INT, record_wait_s, 1, 365 * 86400),
};
#define SETTINGS (sizeof s_settings / sizeof s_settings [0])

int
af_broker_pwcost_parse (const char *text, af_pwcost_t *cost)
{
    if (streq (text, "interactive")) {
        cost->opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        cost->memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    }
    else
    if (streq (text, "moderate")) {
        cost->opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
        cost->memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
    }
    else
    if (streq (text, "min")) {
        cost->opslimit = crypto_pwhash_OPSLIMIT_MIN;
        cost->memlimit = crypto_pwhash_MEMLIMIT_MIN;
    }
    else
        return -1;
    return 0;
}

//  Read one setting's text into the config; -1 with err on a bad value
static int
s_apply (const setting_t *setting, const char *text, af_broker_config_t *config, char *err, size_t errlen)
{
    char *field = (char *) config + setting->offset;
    switch (setting->type) {
        case T_STR:
        case T_VERSION: {
            if (!*text || strlen (text) >= setting->size) {
                snprintf (err, errlen, "%s: must be 1..%zu characters", setting->path, setting->size - 1);
                return -1;
            }
            uint32_t parsed;
            if (setting->type == T_VERSION && af_version_parse (text, &parsed) != AF_OK) {
                snprintf (err, errlen, "%s: '%s' is not a dotted version", setting->path, text);
                return -1;
            }
            memcpy (field, text, strlen (text) + 1);
            return 0;
        }
        case T_INT:
        case T_SIZE:
        case T_BOOL: {
            char *end;
            errno = 0;
            long n = strtol (text, &end, 10);
            if (errno || *end || end == text || n < setting->min || n > setting->max) {
                snprintf (err, errlen, "%s: expected a number %ld..%ld, got '%s'%s%s",
                          setting->path, setting->min, setting->max, text, setting->why? ": ": "",
                          setting->why? setting->why: "");
                return -1;
            }
            if (setting->type == T_INT)
                *(int *) field = (int) n;
            else
            if (setting->type == T_SIZE)
                *(size_t *) field = (size_t) n;
            else
                *(bool *) field = n != 0;
            return 0;
        }
        case T_PWCOST:
            if (af_broker_pwcost_parse (text, (af_pwcost_t *) field)) {
                snprintf (err, errlen, "%s: expected interactive, moderate or min, got '%s'",
                          setting->path, text);
                return -1;
            }
            return 0;
    }
    return -1;
}

int
af_broker_config_load (af_broker_config_t *config, const char *path, char *err, size_t errlen)
{
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        snprintf (err, errlen, "%s: cannot read or parse (ZPL format, see deploy/appferry-broker.cfg)", path);
        return -1;
    }
    int rc = 0;
    //  Every key must be known: a typo should not silently mean a default
    for (zconfig_t *section = zconfig_child (root); section && rc == 0; section = zconfig_next (section))
        for (zconfig_t *item = zconfig_child (section); item && rc == 0; item = zconfig_next (item)) {
            char full [256];
            snprintf (full, sizeof full, "%s/%s", zconfig_name (section), zconfig_name (item));
            bool found = false;
            for (size_t i = 0; i < SETTINGS && !found; i++)
                found = streq (s_settings [i].path, full);
            if (!found) {
                snprintf (err, errlen, "%s: unknown setting '%s'", path, full);
                rc = -1;
            }
        }
    for (size_t i = 0; i < SETTINGS && rc == 0; i++) {
        char *text = zconfig_get (root, s_settings [i].path, NULL);
        if (text)
            rc = s_apply (&s_settings [i], text, config, err, errlen);
    }
    zconfig_destroy (&root);
    return rc;
}
