/*  =========================================================================
    broker_xacct - the one way a request of one account reaches another

    See broker_xacct.h for the rule; docs/ARCHITECTURE.md "Friends" for
    how it is meant to work across brokers.
    =========================================================================
*/
#include "broker_xacct.h"

#define MAX_CLAIMS  8                   //  accounts claiming one number we look at

//  Whether the keys of account (or of a directory bucket) are ours
static bool
s_here (af_broker_t *self, const char *account)
{
    uint32_t shard;
    return broker_cluster_serves (self, account, &shard);
}

static bool
s_bucket_here (af_broker_t *self, const uint8_t *token)
{
    char bucket [10];
    af_friends_dir_bucket (token, bucket);
    return s_here (self, bucket);
}

static af_store_t *
s_store (af_broker_t *self)
{
    return af_registry_store (self->registry);
}

//  Friendship in an open transaction
static int
s_friends_txn (af_broker_t *self, MDB_txn *txn, const char *me, const char *other, bool *friends)
{
    *friends = false;
    if (streq (me, other))
        return AF_OK;
    size_t want = (size_t) self->config.friend_min_common, common;
    int code = af_friends_common (self->friends, txn, me, other, want, &common);
    bool blocked = false;
    if (code == AF_OK && common >= want)
        code = af_friends_blocked (self->friends, txn, me, other, &blocked);
    *friends = code == AF_OK && common >= want && !blocked;
    return code;
}

int
xacct_friends (af_broker_t *self, const char *me, const char *other, bool *friends)
{
    *friends = false;
    if (!s_here (self, other))
        return AF_E_UNAVAILABLE;
    MDB_txn *txn = NULL;
    if (af_store_begin (s_store (self), false, &txn))
        return AF_E_INTERNAL;
    int code = s_friends_txn (self, txn, me, other, friends);
    af_store_abort (s_store (self), &txn);
    return code;
}

int
xacct_lookup (af_broker_t *self, const char *me, const uint8_t *token, char *other, bool *found, bool *friends)
{
    *found = *friends = false;
    *other = 0;
    if (!s_bucket_here (self, token))
        return AF_E_UNAVAILABLE;
    MDB_txn *txn = NULL;
    if (af_store_begin (s_store (self), false, &txn))
        return AF_E_INTERNAL;
    char accounts [MAX_CLAIMS][AF_MAX_ACCOUNT + 1];
    size_t count;
    int code = af_friends_dir_find (self->friends, txn, token, accounts, MAX_CLAIMS, &count);
    for (size_t i = 0; code == AF_OK && i < count && !*friends; i++) {
        if (streq (accounts [i], me))
            continue;
        if (!s_here (self, accounts [i])) {
            code = AF_E_UNAVAILABLE;
            break;
        }
        bool is_friend;
        code = s_friends_txn (self, txn, me, accounts [i], &is_friend);
        if (code == AF_OK && (!*found || is_friend)) {
            snprintf (other, AF_MAX_ACCOUNT + 1, "%s", accounts [i]);
            *found = true;
            *friends = is_friend;
        }
    }
    af_store_abort (s_store (self), &txn);
    return code;
}

//  --------------------------------------------------------------------------
//  Shared apps

typedef struct {
    af_broker_t *broker;
    MDB_txn *txn;
    const char *account;
    af_share_t min;
    const char *program;
    af_msg_t *list;
    int code;
} shared_t;

//  One installed app of the account: listed once, if shared enough
static int
s_shared_app (const char *device_id, const af_msg_t *app, void *arg)
{
    (void) device_id;
    shared_t *shared = (shared_t *) arg;
    af_msg_t *list = shared->list;
    if (shared->program && !streq (app->program, shared->program))
        return 0;
    for (uint32_t i = 0; i < list->app_count; i++)
        if (streq (list->apps [i].program, app->program))
            return 0;
    af_share_t share;
    shared->code = af_friends_share_get (shared->broker->friends, shared->txn, shared->account, app->program, &share);
    if (shared->code != AF_OK)
        return -1;
    if (share < shared->min || list->app_count >= AF_MAX_SHARES)
        return 0;
    af_app_t *entry = &list->apps [list->app_count++];
    memset (entry, 0, sizeof *entry);
    snprintf (entry->program, sizeof entry->program, "%s", app->program);
    snprintf (entry->version_name, sizeof entry->version_name, "%s", app->version_name);
    entry->version_code = app->version_code;
    snprintf (entry->share, sizeof entry->share, "%s", af_share_name (share));
    return 0;
}

int
xacct_shared_apps (af_broker_t *self, const char *other, af_share_t min, const char *program, af_msg_t *list)
{
    if (!s_here (self, other))
        return AF_E_UNAVAILABLE;
    af_msg_set_app_count (list, AF_MAX_SHARES);
    list->app_count = 0;
    MDB_txn *txn = NULL;
    if (af_store_begin (s_store (self), false, &txn))
        return AF_E_INTERNAL;
    shared_t shared = { self, txn, other, min, program, list, AF_OK };
    int code = af_lists_each (self->lists, other, NULL, s_shared_app, &shared);
    af_store_abort (s_store (self), &txn);
    return code != AF_OK? code: shared.code;
}

//  --------------------------------------------------------------------------
//  Writes

int
xacct_directory (af_broker_t *self, MDB_txn *txn, const char *account, const af_token_t *old, size_t nold,
                 const af_token_t *new_tokens, size_t nnew)
{
    for (size_t i = 0; i < nold; i++)
        if (!s_bucket_here (self, old [i]))
            return AF_E_UNAVAILABLE;
    for (size_t i = 0; i < nnew; i++)
        if (!s_bucket_here (self, new_tokens [i]))
            return AF_E_UNAVAILABLE;
    int code = AF_OK;
    for (size_t i = 0; i < nold && code == AF_OK; i++)
        if (!af_tokens_has (new_tokens, nnew, old [i]))
            code = af_friends_dir_set (self->friends, txn, old [i], account, false);
    for (size_t i = 0; i < nnew && code == AF_OK; i++)
        code = af_friends_dir_set (self->friends, txn, new_tokens [i], account, true);
    return code;
}

//  Does to refuse recommendations from from?
static int
s_refuses (af_broker_t *self, MDB_txn *txn, const char *from, const char *to, bool *refused)
{
    bool all;
    int code = af_friends_refuse_all (self->friends, txn, to, &all);
    const af_token_t *refusals = NULL, *own = NULL;
    size_t nrefusals = 0, nown = 0;
    if (code == AF_OK && !all)
        code = af_friends_set_get (self->friends, txn, to, AF_SET_REFUSED, &refusals, &nrefusals);
    if (code == AF_OK && !all && nrefusals)
        code = af_friends_set_get (self->friends, txn, from, AF_SET_OWN, &own, &nown);
    *refused = code == AF_OK && (all || af_tokens_common (refusals, nrefusals, own, nown, 1) > 0);
    return code;
}

int
xacct_recommend (af_broker_t *self, const char *from, const char *to, zframe_t *frame, bool *refused)
{
    *refused = false;
    if (!s_here (self, to))
        return AF_E_UNAVAILABLE;
    af_device_t *devices = NULL;
    uint32_t count = 0;
    if (af_registry_devices (self->registry, to, &devices, &count) != AF_OK)
        return AF_E_INTERNAL;
    MDB_txn *txn = NULL;
    int code = af_store_begin (s_store (self), true, &txn)? AF_E_INTERNAL: AF_OK;
    if (code == AF_OK)
        code = s_refuses (self, txn, from, to, refused);
    for (uint32_t i = 0; code == AF_OK && !*refused && i < count; i++)
        code = af_outbox_put_txn (self->outbox, txn, to, devices [i].id, zframe_data (frame),
                                  zframe_size (frame), NULL);
    if (code == AF_OK && !*refused && af_store_commit (s_store (self), &txn))
        code = AF_E_INTERNAL;
    af_store_abort (s_store (self), &txn);
    for (uint32_t i = 0; code == AF_OK && !*refused && i < count; i++)
        broker_deliver (self, broker_online (self, to, devices [i].id));
    free (devices);
    return code;
}
