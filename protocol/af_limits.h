/*  =========================================================================
    af_limits.h - every fixed limit and every error code of appferry

    One header holds every bound the system enforces, so a reviewer can see
    them in one place and a client author can copy them (the node's own
    tuning, which no peer sees, is in nodes/node_limits.h). Each limit is
    enforced where data enters: the codec (af_msg) for the network, the
    device parser (af_device) for JSON files, the manifest importer for the
    catalog. protocol/SPEC.md repeats these numbers; change both together.
    =========================================================================
*/
#ifndef AF_LIMITS_H_INCLUDED
#define AF_LIMITS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  appferry's own version (nodes report it; the push policy checks it)
#define AF_VERSION              "0.2.0"

//  Protocol versions this build speaks. A peer sending another version
//  gets AF_E_VERSION with the list of supported versions.
#define AF_PROTO_VERSION        1
#define AF_PROTO_VERSION_MIN    1
#define AF_PROTO_VERSION_MAX    1

//  Wire limits
#define AF_MAX_MSG              (1024 * 1024)   //  one encoded message, bytes
#define AF_MAX_ZMQ_MSG          (AF_MAX_MSG + 4096) //  ZMQ_MAXMSGSIZE: a frame on the
                                                //  wire (CURVE adds 33 bytes) above
                                                //  this makes libzmq drop the
                                                //  connection, even mid-handshake
#define AF_MAX_DEPTH            4       //  nesting of maps/arrays in a message
#define AF_MAX_ELEMENTS         65536   //  maps+arrays entries in one message
#define AF_MAX_KEY              32      //  bytes in a map key
#define AF_MAX_FRAMES           1       //  frames in one message (after routing)

//  Field limits (bytes, excluding the terminating NUL of the C buffers)
#define AF_MAX_ACCOUNT          64      //  account name
#define AF_MIN_ACCOUNT          3
#define AF_MAX_PASSWORD         256
#define AF_MIN_PASSWORD         8
#define AF_MAX_NAME             64      //  device name, model, manufacturer
#define AF_MAX_ENDPOINT         255     //  a ZeroMQ endpoint (REDIRECT)
#define AF_MAX_REPL             (AF_MAX_MSG - 4096) //  REPL: the entries of one message
#define AF_MAX_PLATFORM         15
#define AF_MAX_OSVERSION        31
#define AF_MAX_FORMFACTOR       7
#define AF_MAX_ABI              23
#define AF_MAX_ABIS             8
#define AF_MAX_LOCALE           15
#define AF_MAX_LOCALES          32
#define AF_MAX_REASON           255     //  human-readable error / no-fit reason
#define AF_MAX_PROGRAM          64      //  cross-platform program ID
#define AF_MAX_VERSION_NAME     31
#define AF_MAX_LINK             255     //  store link URL
#define AF_MAX_DISPLAY          127     //  display name, publisher
#define AF_MAX_DEVICES          64      //  devices per account
#define AF_MAX_OUTBOX           10000   //  undelivered items queued per device
#define AF_MAX_BODY             (64 * 1024) //  NOTIFY body bytes
#define AF_MAX_KIND             31      //  NOTIFY kind label
#define AF_MAX_TARGETS          64      //  devices named in one PUSH
#define AF_MAX_STATE            15      //  push target state ("installed")
#define AF_MAX_ATTEST           16      //  attestation values in one PUSH
#define AF_MAX_ATTEST_LEN       127     //  one "name=value" attestation
#define AF_MAX_CHUNK            (256 * 1024)    //  raw bytes in one CHUNK
#define AF_MAX_CREDIT           16      //  CHUNKs in flight per transfer
#define AF_MAX_ITEM             (64 * 1024) //  an outbox item (encoded message)
#define AF_MAX_RECORD_MSG       (56 * 1024) //  an install record as it travels (compact
                                        //  JSON in RECORD_PUT and in the RECORD item,
                                        //  inside an ITEM of AF_MAX_ITEM; SPEC 5.47a)
#define AF_RECORD_WAIT_S        86400   //  get/record_wait: an ask waits for its source
#define AF_ASK_KEEP_MS          (7LL * 86400 * 1000)    //  an answered or expired ask is kept
#define AF_ASKS_SWEEP           256     //  asks the broker's timer expires or removes per tick
#define AF_MAX_DATA             (256 * 1024 * 1024) //  a push's user data (tar), bytes
#define AF_MAX_APPS             1000    //  apps in one device's install list
#define AF_MAX_DIFF             2000    //  entries (programs, grouped) in one SYNC_DIFF
#define AF_MAX_HOLDERS          20000   //  devices having programs, in a grouped SYNC_DIFF
#define AF_MAX_OP               15      //  REPORT op ("install", "uninstall")
#define AF_MAX_CONFIG           (256 * 1024)    //  an encrypted app configuration
#define AF_CONFIG_FUTURE_MS     300000  //  how far ahead a config's time may be
#define AF_MAX_SCREEN           16384   //  pixels, each dimension
#define AF_MAX_DENSITY          1000    //  dpi
#define AF_MAX_SDK              99      //  Android API level
#define AF_ID_SIZE              16      //  random 128-bit IDs (device, request)
#define AF_ID_HEX               (2 * AF_ID_SIZE)
#define AF_HASH_SIZE            32      //  BLAKE2b-256 content hash
#define AF_HASH_HEX             (2 * AF_HASH_SIZE)
#define AF_KEY_Z85              40      //  CURVE public key in Z85

//  A package's manifest (a top-level appferry.json, protocol/SPEC.md 4.3)
//  and the install record a device exports (S0.1, S0.5): the settings an
//  install sets and the start-up entries it adds (protocol/af_record)
#define AF_MANIFEST_MAX         (64 * 1024) //  bytes of appferry.json
#define AF_MAX_SETTINGS         64      //  settings one package declares
#define AF_MAX_SETTING_KEY      64      //  bytes of a key, [A-Za-z0-9._-]
#define AF_MAX_SETTING_VALUE    256     //  bytes of a value (UTF-8, no control characters)
#define AF_MAX_STARTUP          16      //  start-up entries one package declares
#define AF_MAX_STARTUP_NAME     64      //  bytes of an entry's name, a file name
#define AF_RECORD_MAX           (48 * 1024)     //  an exported record as compact JSON:
                                        //  the largest the rules above allow (every
                                        //  value 256 quotes, each written \") is
                                        //  under 40 KiB, so a record fits one outbox
                                        //  item (AF_MAX_ITEM) with room for its envelope

//  Password guessing: after this many wrong passwords for one account
//  from one source address within the window, password logins to it from
//  there are refused until the window ends; after the second bound from
//  all sources together, from everywhere (broker/af_guesses).
#define AF_MAX_LOGIN_FAILURES   10
#define AF_MAX_ACCOUNT_FAILURES 100
#define AF_LOGIN_WINDOW_MS      60000

//  Password work (Argon2id) per connection and per source address: one at
//  a time per connection, at most this many started per minute
#define AF_PW_PER_CONNECTION    20
#define AF_PW_PER_SOURCE        60      //  (config) broker/pw_per_source
#define AF_PW_THREADS           2       //  (config) hashing threads
#define AF_PW_WAITING           64      //  hashes waiting for a thread, then 503

//  Timing (milliseconds) - defaults, the broker config may override
#define AF_HEARTBEAT_MS         1000    //  interval between heartbeats
#define AF_HEARTBEAT_LIVENESS   3       //  missed beats before a peer is dead
#define AF_REQUEST_TIMEOUT_MS   10000   //  a worker request with no answer

//  Broker tuning: how much work one step may do, how much one peer may
//  hold. Defaults the broker config may override are marked (config).
#define AF_MAX_ROUTING          15      //  bytes of a ZeroMQ routing ID we accept
#define AF_SOCKET_HWM           100000  //  ZMQ_SNDHWM / ZMQ_RCVHWM of the backend

//  What one node connection may make the broker hold (docs/ARCHITECTURE.md
//  "Bounded memory per connection"). libzmq bounds its queues in messages,
//  so they are kept short and the bytes beyond them are counted by us.
#define AF_PEER_HWM             32      //  ZMQ_SNDHWM / ZMQ_RCVHWM of the frontend:
                                        //  messages libzmq queues per connection
#define AF_MAX_PEER_QUEUE       (8 * 1024 * 1024)   //  bytes the broker queues for one
                                        //  connection beyond that; more means the
                                        //  peer is not reading: it is dropped
#define AF_PEER_BAN_MS          60000   //  then its messages are ignored this long
#define AF_DRAIN_MS             10      //  queued sends are retried this often
#define AF_HANDSHAKE_MS         10000   //  ZMQ_HANDSHAKE_IVL: a connection must finish
                                        //  its ZMTP and CURVE handshake within this
#define AF_MAX_PER_SOURCE       32      //  (config) connections from one address at once
#define AF_LOG_REFUSALS         10      //  refusals (or drops) logged a second, then a count
#define AF_BATCH                256     //  messages taken per socket wake-up
#define AF_SCHED_SLICE_NS       100000  //  the broker's threads ask the kernel for
                                        //  this scheduler slice (sched_setattr,
                                        //  Linux >= 6.12): woken by the disk after
                                        //  a commit's sync, a thread then preempts
                                        //  a CPU-bound neighbour at once instead of
                                        //  waiting out its slice (about 3 ms here)
#define AF_ITEM_WINDOW          64      //  outbox items in flight per connection
#define AF_DRAIN_BATCHES        64      //  batches read before the timer judges peers
#define AF_MAX_SESSIONS         100000  //  (config) connections with a session; also
                                        //  connections in all on the nodes' socket,
                                        //  and at most the descriptor limit less
                                        //  AF_FD_RESERVE (lowered at start if not)
#define AF_LISTEN_BACKLOG       65535   //  listen(2) backlog (capped by net.core.somaxconn)
#define AF_MAX_TRANSFERS        1024    //  package files being sent at once ...
#define AF_MAX_SESSION_TRANSFERS 4      //  ... and to one connection
#define AF_FD_RESERVE           (AF_MAX_TRANSFERS + 512)    //  descriptors not for
                                        //  connections: files being sent, workers,
                                        //  the store, pipes, the figures' listener
#define AF_MAX_QUEUE            100000  //  (config) requests waiting for a worker
#define AF_ATTEST_SKEW_MS       300000  //  attestations dated this far ahead pass
#define AF_RESOLVE_CACHE_MS     10000   //  how long a sync reuses a matcher answer
#define AF_RESOLVE_CACHE_MAX    100000  //  answers kept; beyond, all are dropped
#define AF_INDEX_CACHE_MAX      1024    //  accounts whose lists are kept in memory
#define AF_MAX_SYNC_JOBS        64      //  diffs being resolved at once; later
                                        //  SYNCs wait their turn

//  Per-account storage limits: defaults the broker config may change
//  (section quota); past one, a request is refused with AF_E_QUOTA
#define AF_QUOTA_CONFIGS        1000    //  programs with a stored configuration
#define AF_QUOTA_CONFIG_MIB     64      //  MiB of configurations, both versions
#define AF_QUOTA_DATA_BLOBS     32      //  user-data blobs waiting for pushes
#define AF_QUOTA_DATA_MIB       1024    //  MiB of them
#define AF_DATA_SWEEP           64      //  user-data blobs and uploads the broker's sweep removes a tick
#define AF_DATA_GRACE_MS        3600000 //  a blob no push names is removed after this
#define AF_QUOTA_BACKUPS        1000    //  backups kept (every version of every program)
#define AF_QUOTA_BACKUP_MIB     64      //  MiB of them, configurations included

//  Backups (S4, SPEC 5.48-5.50)
#define AF_KEY_ID_HEX           16      //  a publisher key's ID (minisign), in hex
#define AF_MAX_BACKUP_VERSIONS  8       //  versions kept per program; a ninth
                                        //  replaces the oldest
#define AF_MAX_BACKUPS          1000    //  entries in one BACKUP_LIST
#define AF_RESTORE_PENDING_MS   3600000 //  a node's pending restore allows its
                                        //  older version this long
#define AF_RECOMMEND_TRIES      64      //  programs of a category a no-fit tries

//  The broker's figures (af_metrics): published this often, to a file in
//  its data directory and, if configured, an HTTP listener
#define AF_METRICS_MS           1000    //  a snapshot a second
#define AF_TRIM_MS              30000   //  the broker gives freed heap pages back
#define AF_METRICS_CLIENTS      8       //  scrapers served at once
#define AF_METRICS_TIMEOUT_S    10      //  a scraper's connection at most
#define AF_CODE_FIRST           400     //  error codes counted per code,
#define AF_CODE_LAST            599     //  from first to last
#define AF_COMMIT_BUCKETS       12      //  histogram of changes per group commit

//  The cluster (docs/ARCHITECTURE.md "Cluster")
#define AF_CLUSTER_ID           32      //  a broker's ID: 32 hex digits
#define AF_CLUSTER_MAX_REPLICAS 4       //  followers an owner tracks per shard
#define AF_CLUSTER_REPLICAS     1       //  (config) followers wanted per shard
#define AF_CLUSTER_REPLICAS_MAX 2       //  (config) ... at most
//  An owner tracks its wanted followers and, while the placement moves,
//  the next owner it hands the shard to and a follower on its way out of
//  the in-sync set: two more than cluster/replicas
_Static_assert (AF_CLUSTER_REPLICAS_MAX <= AF_CLUSTER_MAX_REPLICAS - 2,
                "an owner tracks its followers, its next owner and one leaving");
#define AF_CLUSTER_LEASE_S      5       //  (config) the brokers' etcd lease
#define AF_CLUSTER_REPL_MS      3000    //  (config) a follower this slow leaves the in-sync set
#define AF_CLUSTER_LOG_KEEP     100000  //  (config) log entries kept per shard beyond the acked
#define AF_CLUSTER_UNIT_SHARDS  16      //  shards a batch's hold lists; more: all owned
#define AF_CLUSTER_REPL_ENTRIES 4096    //  entries in one REPL at most
#define AF_CLUSTER_REPL_WINDOW  4       //  REPLs in flight per follower and shard at most
                                        //  (together at most AF_MAX_REPL bytes of entries)
#define AF_CLUSTER_SNAPSHOT_CHUNK (256 << 10) //  SNAPSHOT: a part's records (bytes), unless one alone is more
#define AF_CLUSTER_SNAPSHOT_SCAN 65536  //  SNAPSHOT: store keys read for one part at most
#define AF_CLUSTER_SNAPSHOT_IDLE_MS 30000   //  a copy its follower has not answered this long is dropped
#define AF_CLUSTER_SNAPSHOTS    8       //  copies a broker sends at once (each a read transaction)
#define AF_CLUSTER_LOG_KEEP_MIN 10      //  cluster/log_keep at least (small ones: copies more often)
#define AF_CLUSTER_LEASE_MARGIN_MS 1000 //  we stop acking this long before the lease ends
#define AF_CLUSTER_KEEPALIVE_MS 1000    //  the lease is kept alive this often
#define AF_CLUSTER_TICK_MS      100     //  the coordinator's loop
#define AF_CLUSTER_CLAIM_GRACE_MS 3000 //  a shard's claim waits this long for the first in rank order
#define AF_CLUSTER_PARK_MS      6000    //  a LOGIN for a shard with no reachable owner
                                        //  waits at most this for one (SPEC 5.36)
#define AF_CLUSTER_ETCD_TIMEOUT_MS 2000 //  one etcd call at most
#define AF_CLUSTER_DRAIN_LOG_MS 5000    //  a drain logs what keeps it waiting this often
#define AF_CLUSTER_DRAIN_LOG_SHARDS 4   //  ... for this many shards at most (then how many more)
#define AF_CLUSTER_STATUS_DIRS  64      //  --cluster-status: data directories read at most
//  FORWARD between brokers (SPEC 10 "FORWARD"): a cross-shard friend request
#define AF_CLUSTER_FORWARDS     64      //  FORWARDs in flight to one broker at most
#define AF_CLUSTER_FORWARD_MS   2000    //  an owner that has not answered by then: 503
#define AF_CLUSTER_FORWARD_TRIES 3      //  sends of one FORWARD (a moved shard: to its new owner)
#define AF_MAX_FORWARD_BODY     (AF_MAX_MSG - 64 * 1024)    //  a FORWARD's body: an asker's book
                                        //  (AF_MAX_BOOK + AF_MAX_OWN_NUMBERS + AF_MAX_BLOCKS tokens)
#define AF_FORWARD_NOT_OWNER    421     //  FORWARD_REPLY code: not the shard's owner (look again)
#define AF_FORWARD_CLAIMS       8       //  accounts claiming one number a directory answer names
#define AF_FORWARD_BATCH        500     //  tokens (dir_find) or accounts (friends) one FORWARD asks about
#define AF_FORWARD_ELSEWHERE    0xFF    //  a batched answer's item: not served by the broker that answers
#define AF_INTENT_KEEP_MS       3600000 //  an owner remembers an applied intent this long
#define AF_INTENT_RESEND_MS     5000    //  an unresolved intent of ours is sent again this often
#define AF_NOTICE_TRY_MS        86400000    //  a friend's notice to another broker is tried this
                                        //  long, then given up (logged)

//  Catalog limits
#define AF_MAX_MANIFEST         (64 * 1024 * 1024)  //  manifest file bytes
#define AF_MAX_PACKAGES_PER_PROGRAM 256

//  The signed store (protocol/af_trust, SPEC 11 "The signed store")
#define AF_MAX_META             (56 * 1024) //  an OFFER's metadata bundle (inside
                                        //  an ITEM of AF_MAX_ITEM)
#define AF_MAX_META_DOC         (16 * 1024 * 1024)  //  one signed document file
#define AF_MAX_SIGNATURE        4096    //  a minisign signature file
#define AF_MAX_STORE_KEYS       8       //  online keys one root document lists
#define AF_MAX_PUBLISHERS       10000   //  publishers in publishers.json
#define AF_MAX_PUBLISHER_PROGRAMS 16    //  program names or prefixes per publisher
#define AF_TRUST_ROOT_DAYS      365     //  default expiry of the root documents
#define AF_TRUST_TARGETS_DAYS   30      //  default expiry of a targets document
#define AF_TRUST_CACHE_DOCS     16      //  targets documents a device remembers it verified
#define AF_MAX_META_DEPTH       16      //  nesting of JSON values in a targets document

//  Device descriptions read by the node (a JSON file, or `adb` output)
#define AF_MAX_DEVICE_FILE      (256 * 1024)    //  a description file, bytes
#define AF_TABLET_MIN_DP        600     //  smallest screen width, dp, of an
                                        //  Android tablet (sw600dp)
#define AF_MAX_ADB_OUTPUT       (1024 * 1024)   //  bytes read from one adb command
#define AF_ADB_TIMEOUT_MS       30000   //  time limit of one adb command

//  Contacts (issue 13, S3.1/B4): the OPRF suite's sizes (RFC 9497,
//  ristretto255-SHA512), what one evaluation request may carry, and the
//  bounds of an address book the node reads (nodes/af_contacts)
#define AF_OPRF_SCALAR_SIZE     32      //  a key or a blind (Ns)
#define AF_OPRF_ELEMENT_SIZE    32      //  a group element on the wire (Ne)
#define AF_OPRF_OUTPUT_SIZE     64      //  an OPRF output, SHA-512 (Nh)
#define AF_OPRF_MAX_INPUT       65535   //  input bytes (its length is 2 bytes)
#define AF_OPRF_KEY_ID_HEX      16      //  a key's public fingerprint, hex
#define AF_MAX_CONTACTS_EVAL    1000    //  elements in one CONTACTS_EVAL
#define AF_MAX_CONTACTS_FILE    (64 * 1024 * 1024)  //  an address book file, bytes
                                        //  (vCards carry photos)
#define AF_MAX_CONTACTS         20000   //  cards (or CSV rows) in one file
#define AF_MAX_CONTACT_NUMBERS  16      //  phone numbers kept per contact
#define AF_MAX_CONTACT_LINE     4096    //  a property we read (unfolded), a CSV row
#define AF_MAX_CONTACT_NAME     127     //  a display name, bytes (longer: cut)
#define AF_MAX_CONTACT_REJECTS  200     //  refusals reported one by one; then counted
#define AF_E164_MIN_DIGITS      8       //  digits of a number, country code included
#define AF_E164_MAX_DIGITS      15      //  (ITU-T E.164)
#define AF_E164_SIZE            (AF_E164_MAX_DIGITS + 2)    //  "+", digits, NUL

//  Payments (issue 14, S0.4-S0.7): the payments worker's ledger and what
//  its messages carry (payments/af_ledger, SPEC 5.46, 5.47)
#define AF_CURRENCY             3       //  an ISO 4217 code: three letters A-Z
#define AF_MAX_PAY_TOKEN        64      //  a payment token (the provider's; printable ASCII)
#define AF_MAX_PAY_REF          64      //  the provider's charge reference
#define AF_MAX_PRICE            100000000   //  the largest price a catalog entry may
                                        //  have: 1,000,000.00 in minor units
#define AF_MAX_PURCHASES        1000    //  entries in one PURCHASE_LIST
#define AF_PAY_INTENT_MS        600000  //  (config) a payment notice not confirmed
                                        //  within this is refused (S0.7)
#define AF_PAYNOTES_KEEP_S      604800  //  (config quota/notice_keep) a GET's notice key is
                                        //  kept this long: told once within it (af_paynotes)
#define AF_PAYNOTES_KEEP_MIN_S  90000   //  ... at least: a node's retries (an hour) and a
                                        //  notice's resends to another broker (AF_NOTICE_TRY_MS)
#define AF_MAX_PAYNOTES         10000   //  notice keys one account keeps at most (the oldest go)
#define AF_PAYNOTES_SWEEP       1000    //  keys one sweep (a put's, the timer's) looks at
//  Friends (issue 13, S3.2-S3.7): a contact token is the OPRF output of a
//  number cut to its first 32 bytes (2^-128 collisions: enough to match
//  address books); the rest are the defaults of section contacts and
//  friends of the broker's config, and the bounds of what one message
//  or one account holds
#define AF_CONTACT_TOKEN_SIZE   32      //  bytes of a token on the wire and in the store
#define AF_MAX_OWN_NUMBERS      4       //  an account's own numbers (`contacts me`)
#define AF_MAX_BOOK             20000   //  tokens of an account's address book
#define AF_MAX_BLOCKS           1000    //  contacts an account blocks, or refuses
#define AF_MAX_SHARES           1000    //  apps in SHARE_LIST and FRIEND_APP_LIST
#define AF_EVAL_LIMIT           20000   //  contacts/eval_limit: evaluations per window
#define AF_EVAL_WINDOW_S        864000  //  contacts/eval_window: 10 days
#define AF_FRIEND_MIN_COMMON    2       //  friends/min_common: contacts two books share

//  The cluster's etcd client (cluster/af_etcd, issue 12): what one call
//  may send and read. Not part of the wire protocol: no peer sees them.
//  A full range of the largest keys and values fits in one answer
//  (asserted in af_etcd.c); etcd's own defaults are 1.5 MiB a request
//  (--max-request-bytes) and 128 operations a transaction (--max-txn-ops).
#define AF_ETCD_MAX_ENDPOINTS   16      //  members in one endpoint list
#define AF_ETCD_MAX_ENDPOINT    255     //  bytes of one ("http://HOST:PORT")
#define AF_ETCD_MAX_KEY         512     //  bytes of a key
#define AF_ETCD_MAX_VALUE       4096    //  bytes of a value (coordination
                                        //  records are small; data is not kept there)
#define AF_ETCD_MAX_RANGE       1024    //  keys one range returns
#define AF_ETCD_MAX_TXN_OPS     64      //  compares, or operations of one branch
#define AF_ETCD_MAX_TTL_S       86400   //  a lease's TTL, seconds
#define AF_ETCD_MAX_ANSWER      (8 * 1024 * 1024)   //  bytes of one answer, or of one
                                        //  message of the watch stream
#define AF_ETCD_WATCH_QUEUE     4096    //  events a watch holds for a caller that
                                        //  does not read; then it pauses the stream
#define AF_ETCD_KEEPALIVE_S     2       //  TCP keepalive of etcd connections: idle
                                        //  and interval, 3 probes (a silent peer is
                                        //  given up after about 4x this)

//  Error codes: numeric, HTTP-flavoured like the ZeroMQ RFCs. Every ERROR
//  message carries one of these plus a reason text. protocol/SPEC.md says
//  what a peer does on each.
typedef enum {
    AF_OK               = 200,
    AF_E_MALFORMED      = 400,  //  message could not be decoded or is invalid
    AF_E_BAD_PASSWORD   = 401,  //  password does not match
    AF_E_FORBIDDEN      = 403,  //  claims another device/account, or not allowed
    AF_E_NO_ACCOUNT     = 404,  //  account does not exist
    AF_E_UNKNOWN_COMMAND= 405,  //  command name not known in this version
    AF_E_NO_DEVICE      = 406,  //  device ID unknown for this account
    AF_E_ACCOUNT_EXISTS = 409,  //  register: name taken
    AF_E_REMOVED        = 410,  //  login: the device was removed from the account
    AF_E_TOO_BIG        = 413,  //  message larger than AF_MAX_MSG
    AF_E_BAD_DEVICE     = 422,  //  device description missing a field / out of range
    AF_E_RATE_LIMITED   = 429,  //  too many wrong passwords for the account; wait
    AF_E_VERSION        = 426,  //  protocol version not supported
    AF_E_KEY_MISMATCH   = 430,  //  device is bound to another CURVE key
    AF_E_NOT_LOGGED_IN  = 440,  //  command needs a session
    AF_E_TOO_MANY       = 441,  //  account has AF_MAX_DEVICES devices
    AF_E_UNKNOWN_PROGRAM= 460,  //  program ID not in the catalog
    AF_E_NO_FIT         = 461,  //  no package fits the device (reason says why)
    AF_E_NO_BLOB        = 462,  //  FETCH: the package file is not in the store
    AF_E_NO_CONFIG      = 463,  //  CONFIG_GET: no configuration stored for the program
    AF_E_NO_INTENT      = 464,  //  PAY_CONFIRM: no such payment notice for this account
    AF_E_NOT_THERE      = 465,  //  GET: the source device does not have the program
    AF_E_NO_ASK         = 468,  //  RECORD_PUT: no such ask for this device, program and asker
    AF_E_ANSWERED       = 469,  //  RECORD_PUT: the ask was answered before
    AF_E_NO_BACKUP      = 466,  //  BACKUP_GET, RESTORE: no backup of the program in the account
    AF_E_NO_VERSION     = 467,  //  BACKUP_GET, RESTORE: no backup of that version
    AF_E_POLICY         = 451,  //  the device does not meet the broker's push policy
    AF_E_QUOTA          = 470,  //  a storage limit of the account or a device's queue
    AF_E_PAYMENT_REQUIRED = 402,  //  a payment was refused, failed or expired (nothing charged);
                                  //  friend install: the program is paid (not built between accounts)
    AF_E_EVAL_LIMIT     = 471,  //  CONTACTS_EVAL: the account's evaluation allowance is used up
    AF_E_NOT_FRIENDS    = 472,  //  a contact is no friend (or no account: the same answer)
    AF_E_NOT_SHARED     = 473,  //  a friend does not share that (or anything) with friends
    AF_E_REFUSED        = 474,  //  RECOMMEND: the recipient refuses recommendations from you
    AF_E_ASK_EXPIRED    = 475,  //  RECORD_PUT: the ask's wait ran out (the asker was told)
    AF_E_INTERNAL       = 500,  //  server-side failure (store error, ...)
    AF_E_UNAVAILABLE    = 503,  //  no worker for the service / timed out
} af_code_t;

//  Name of an error code ("E_MALFORMED"), or "E_UNKNOWN" for others.
const char *af_code_name (int code);

//  An ID (device, item) from its text form: exactly AF_ID_HEX lowercase hex
//  digits, as IDs are compared as text elsewhere. AF_OK with AF_ID_SIZE
//  bytes written to id, or AF_E_MALFORMED if hex is not such an ID.
int af_id_from_hex (const char *hex, unsigned char *id);

//  A content hash (a blob's) from its text form: exactly AF_HASH_HEX
//  lowercase hex digits. AF_OK with AF_HASH_SIZE bytes written to hash
//  (may be NULL: only checked), or AF_E_MALFORMED.
int af_hash_from_hex (const char *hex, unsigned char *hash);

//  True if the len bytes at p are valid UTF-8: shortest forms only, no
//  surrogates, nothing above U+10FFFF (what every wire string must be).
bool af_utf8_valid (const uint8_t *p, size_t len);

//  Is program a program ID? 1 to AF_MAX_PROGRAM bytes of a-z 0-9 . _ -,
//  the first a letter or a digit, without "..". Program IDs become file
//  names on a node (HOME/apps/PROGRAM, HOME/installed/PROGRAM.json, ...),
//  so this is the one definition every place that takes one from outside
//  uses (decoder, catalog import, installer, CLI): such an ID is never "."
//  or "..", never holds a '/', and never starts with '.' as the
//  installer's staging names do. AF_OK, or AF_E_MALFORMED with err saying
//  why not ("not a program ID: ..."; err may be NULL).
int af_program_check (const char *program, char *err, size_t errlen);

//  Is currency an ISO 4217 alphabetic code? Exactly AF_CURRENCY letters
//  A-Z ("EUR", "USD", "CNY"). The form only: which codes are in use is the
//  catalog operator's business, and amounts are always in the currency's
//  minor unit (cents). AF_OK, or AF_E_MALFORMED with err saying why not
//  (err may be NULL).
int af_currency_check (const char *currency, char *err, size_t errlen);

#endif
