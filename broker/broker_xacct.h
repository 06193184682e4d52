/*  =========================================================================
    broker_xacct - the one way a request of one account reaches another

    Friends (issue 13) cross accounts: a pull reads another account's book,
    blocks and shares; a push writes into another account's outboxes; an
    own number is written to a directory bucket that is no account's. In a
    cluster those keys may live on another broker's shard, so no handler
    touches another account's keys itself: every cross-account read and
    write is one of the functions below, and each says, before it touches
    anything, whether every shard it needs is served here.

    Single broker: everything is served here, and each function is a
    direct call on the broker's own store (af_friends, af_lists,
    af_outbox) in the handler's transaction (a child of the group commit's
    batch), so a push's notice commits with nothing else or not at all.

    Cluster: the account the session speaks for is always served here (the
    command table REDIRECTs otherwise). When another shard it needs is
    owned by another broker, the function returns AF_E_UNAVAILABLE and
    writes nothing: FORWARD over the broker mesh (docs/ARCHITECTURE.md
    "Cluster", "Between shards") is not built yet. af_store would refuse
    such a write anyway (EACCES); this says so first, with a reason.
    =========================================================================
*/
#ifndef BROKER_XACCT_H_INCLUDED
#define BROKER_XACCT_H_INCLUDED

#include "broker_int.h"
#include "af_friends.h"

//  The reason an AF_E_UNAVAILABLE from these functions carries
#define XACCT_ELSEWHERE "the contact's account is on another broker of the cluster; " \
                        "friend requests between brokers are not built yet"

//  Who a contact token is, seen from account me: an account that claims
//  it as its own number (not me), preferring one that is me's friend.
//  *found false: nobody claims it (answer as for "not friends"). AF_OK,
//  AF_E_UNAVAILABLE, AF_E_INTERNAL.
int xacct_lookup (af_broker_t *self, const char *me, const uint8_t *token, char *other, bool *found,
                  bool *friends);

//  Whether two accounts are friends: their books share at least
//  friends/min_common tokens, and neither blocks the other. AF_OK,
//  AF_E_UNAVAILABLE, AF_E_INTERNAL.
int xacct_friends (af_broker_t *self, const char *me, const char *other, bool *friends);

//  The apps other shows a viewer: on one of its devices and shared at
//  least at min (AF_SHARE_PRIVATE: every app it has); into list's apps (program, versionName, share), or only
//  the one named program (NULL: all). AF_OK, AF_E_UNAVAILABLE,
//  AF_E_INTERNAL.
int xacct_shared_apps (af_broker_t *self, const char *other, af_share_t min, const char *program,
                       af_msg_t *list);

//  Account's own numbers change from old to new: the directory buckets
//  updated in the caller's transaction. AF_OK, AF_E_UNAVAILABLE,
//  AF_E_INTERNAL.
int xacct_directory (af_broker_t *self, MDB_txn *txn, const char *account, const af_token_t *old, size_t nold,
                     const af_token_t *new_tokens, size_t nnew);

//  Queue a RECOMMENDATION (encoded in frame) in every device's outbox of
//  account to, in one transaction, unless to refuses recommendations from
//  every sender or from one of from's own numbers (*refused, nothing
//  written). Online devices get it at once. AF_OK, AF_E_QUOTA (a queue is
//  full: nothing queued), AF_E_UNAVAILABLE, AF_E_INTERNAL.
int xacct_recommend (af_broker_t *self, const char *from, const char *to, zframe_t *frame, bool *refused);

#endif
