/*  =========================================================================
    af_rawclient - a raw ZeroMQ CURVE client that speaks to the broker
    byte by byte, for tests that need to send what no well-behaved node
    would: truncated msgpack, wrong types, lying lengths, unknown commands,
    wrong versions, oversize and multi-frame messages, and claims on
    devices bound to other keys.

    Usage:
      af_rawclient ENDPOINT BROKER_CERT battery
      af_rawclient ENDPOINT BROKER_CERT claim ACCOUNT PASSWORD DEVICE_ID
      af_rawclient ENDPOINT BROKER_CERT forbidden ACCOUNT PASSWORD OTHER_ACCOUNT
      af_rawclient ENDPOINT BROKER_CERT push ACCOUNT PASSWORD
      af_rawclient ENDPOINT BROKER_CERT report ACCOUNT PASSWORD
      af_rawclient ENDPOINT BROKER_CERT fill ACCOUNT PASSWORD
      af_rawclient ENDPOINT BROKER_CERT storm COUNT
      af_rawclient ENDPOINT BROKER_CERT guess ACCOUNT COUNT SOURCE-ADDRESS
      af_rawclient ENDPOINT BROKER_CERT hurry ACCOUNT
      af_rawclient ENDPOINT BROKER_CERT steal ACCOUNT PASSWORD HASH SIZE
      af_rawclient ENDPOINT BROKER_CERT quota ACCOUNT PASSWORD COUNT
      af_rawclient ENDPOINT BROKER_CERT upload ACCOUNT PASSWORD SIZE
      af_rawclient ENDPOINT BROKER_CERT blob ACCOUNT PASSWORD SIZE (register, then upload)
      af_rawclient ENDPOINT BROKER_CERT whole ACCOUNT PASSWORD HASH SIZE
      af_rawclient ENDPOINT BROKER_CERT remove ACCOUNT PASSWORD DEVICE_ID
      af_rawclient ENDPOINT BROKER_CERT login ACCOUNT PASSWORD REDIRECT|LOGIN_OK|CODE
      af_rawclient shard ACCOUNT SHARDS (prints the account's shard)
      af_rawclient wanted SHARDS ID... (prints each shard's wanted owner and follower)
      af_rawclient ENDPOINT BROKER_CERT noread ACCOUNT PASSWORD COUNT BROKER_PID MAX_MIB
      af_rawclient ENDPOINT BROKER_CERT burst ACCOUNT PASSWORD COUNT
      af_rawclient ENDPOINT BROKER_CERT greet COUNT SOURCE BROKER_PID MAX_MIB MAX_SECONDS
      af_rawclient ENDPOINT BROKER_CERT sources COUNT SOURCE LIMIT
      af_rawclient ENDPOINT BROKER_CERT dealer NULL|PLAIN|CURVE|CURVE-BAD SOURCE
      af_rawclient ENDPOINT BROKER_CERT zmtp NULL|PLAIN|CURVE-BAD SOURCE COUNT
      af_rawclient ENDPOINT BROKER_CERT pay ACCOUNT PASSWORD VICTIM INTENT
      af_rawclient ENDPOINT BROKER_CERT payconfirm ACCOUNT PASSWORD INTENT COUNT [CODE]
      af_rawclient ENDPOINT BROKER_CERT friends ACCOUNT PASSWORD TOKEN_HEX EVAL_LIMIT
      af_rawclient ENDPOINT BROKER_CERT backups ACCOUNT PASSWORD PROGRAM (another account's backups)
      af_rawclient ENDPOINT BROKER_CERT record ACCOUNT DEVICE_ID SECRET_CERT PROGRAM hostile|late|ok
      af_rawclient ENDPOINT BROKER_CERT getdata source ACCOUNT DEVICE_ID SECRET_CERT PROGRAM FILE
      af_rawclient ENDPOINT BROKER_CERT getdata closed ACCOUNT DEVICE_ID SECRET_CERT PROGRAM ASK ASKER
      af_rawclient ENDPOINT BROKER_CERT getdata friend ACCOUNT PASSWORD PROGRAM
      af_rawclient ENDPOINT BROKER_CERT getdata get ACCOUNT DEVICE_ID SECRET_CERT PROGRAM SOURCE
    Prints one line per check and "N passed, M failed"; exits 1 on any failure.
    =========================================================================
*/
#include <czmq.h>
#include <msgpack.h>
#include <sodium.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include "af_msg.h"
#include "af_shard.h"

static int s_passed, s_failed;

//  The wanted placement of a cluster of these brokers, as ARCHITECTURE
//  "Placement" says every broker computes it (broker_cluster.c s_rank: the
//  first 8 bytes of BLAKE2b of the shard as 4 bytes LE and the broker ID,
//  highest first): "SHARD OWNER FOLLOWER" a line, for a test to wait until
//  the hand-offs after the first claims are over
static uint64_t
s_rank (uint32_t shard, const char *id)
{
    uint8_t input [4 + 64], hash [8];
    size_t len = strlen (id) < 64? strlen (id): 64;
    memcpy (input, &shard, 4);
    memcpy (input + 4, id, len);
    crypto_generichash (hash, sizeof hash, input, 4 + len, NULL, 0);
    uint64_t rank;
    memcpy (&rank, hash, sizeof rank);
    return rank;
}

static void
s_wanted (uint32_t shards, char **ids, size_t count)
{
    for (uint32_t shard = 0; shard < shards; shard++) {
        size_t first = 0, second = count > 1? 1: 0;
        for (size_t i = 0; i < count; i++)
            if (s_rank (shard, ids [i]) > s_rank (shard, ids [first]))
                first = i;
        if (second == first)
            second = first == 0 && count > 1? 1: 0;
        for (size_t i = 0; i < count; i++)
            if (i != first && s_rank (shard, ids [i]) > s_rank (shard, ids [second]))
                second = i;
        printf ("%u %s %s\n", shard, ids [first], count > 1? ids [second]: "-");
    }
}
static zsock_t *s_sock;
static const char *s_endpoint;
static zcert_t *s_broker_cert;

static void
s_check (bool ok, const char *name, const char *detail)
{
    if (ok)
        s_passed++;
    else
        s_failed++;
    printf ("%s - %s%s%s\n", ok? "ok": "not ok", name, detail && *detail? ": ": "", detail? detail: "");
}

//  A new CURVE connection with a key of its own; from source (an address
//  of this host, e.g. 127.0.0.2), or NULL for the default
static zsock_t *
s_connect_from (const char *source)
{
    zcert_t *cert = zcert_new ();
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    zcert_apply (cert, sock);
    zcert_destroy (&cert);
    zsock_set_curve_serverkey (sock, zcert_public_txt (s_broker_cert));
    zsock_set_linger (sock, 0);
    zsock_set_rcvtimeo (sock, 5000);
    if (source && strncmp (s_endpoint, "tcp://", 6) == 0)
        zsock_connect (sock, "tcp://%s:0;%s", source, s_endpoint + 6);
    else
        zsock_connect (sock, "%s", s_endpoint);
    return sock;
}

static zsock_t *
s_connect (void)
{
    return s_connect_from (NULL);
}

//  Receive the next message that is not a PONG or pushed DEVICE_LIST
static af_msg_t *
s_recv (zsock_t *sock, bool skip_pushes)
{
    while (true) {
        zframe_t *frame = zframe_recv (sock);
        if (!frame)
            return NULL;
        af_msg_t *msg = NULL;
        char err [256];
        int code = af_msg_decode (zframe_data (frame), zframe_size (frame), &msg, err, sizeof err, NULL, NULL);
        zframe_destroy (&frame);
        if (code != AF_OK) {
            printf ("# undecodable reply: %s\n", err);
            return NULL;
        }
        if (skip_pushes && (msg->id == AF_MSG_PONG || (msg->id == AF_MSG_DEVICE_LIST && !msg->has_rid))) {
            af_msg_destroy (&msg);
            continue;
        }
        return msg;
    }
}

//  Send raw bytes; expect an ERROR with code (and rid echoed if given)
static void
s_expect_error (const char *name, const void *data, size_t size, int code, const uint8_t *rid)
{
    zframe_t *frame = zframe_new (data, size);
    zframe_send (&frame, s_sock, 0);
    af_msg_t *reply = s_recv (s_sock, true);
    char detail [400] = "";
    bool ok = reply && reply->id == AF_MSG_ERROR && (int) reply->code == code;
    if (ok && rid)
        ok = reply->has_rid && memcmp (reply->rid, rid, AF_ID_SIZE) == 0;
    if (reply)
        snprintf (detail, sizeof detail, "got %s %u (%s) %s", af_msg_command_name (reply->id), reply->code,
                  af_code_name ((int) reply->code), reply->reason);
    else
        snprintf (detail, sizeof detail, "no reply");
    if (ok && code == AF_E_VERSION)
        ok = reply->version_count >= 1 && reply->versions [0] == AF_PROTO_VERSION;
    s_check (ok, name, detail);
    af_msg_destroy (&reply);
}

//  The same, and the reason must name what was wrong
static void
s_expect_error_naming (const char *name, const void *data, size_t size, int code, const uint8_t *rid,
                       const char *text)
{
    zframe_t *frame = zframe_new (data, size);
    zframe_send (&frame, s_sock, 0);
    af_msg_t *reply = s_recv (s_sock, true);
    bool ok = reply && reply->id == AF_MSG_ERROR && (int) reply->code == code && strstr (reply->reason, text)
           && (!rid || (reply->has_rid && memcmp (reply->rid, rid, AF_ID_SIZE) == 0));
    char detail [400];
    snprintf (detail, sizeof detail, "got %s %u %s", reply? af_msg_command_name (reply->id): "nothing",
              reply? reply->code: 0, reply? reply->reason: "");
    s_check (ok, name, detail);
    af_msg_destroy (&reply);
}

static void
s_expect_msg (const char *name, af_msg_t *request, af_msg_id_t expected, int code)
{
    af_msg_send (request, s_sock, NULL);
    af_msg_t *reply = s_recv (s_sock, true);
    char detail [400];
    snprintf (detail, sizeof detail, "got %s %u %s", reply? af_msg_command_name (reply->id): "nothing",
              reply? reply->code: 0, reply? reply->reason: "");
    s_check (reply && reply->id == expected && (expected != AF_MSG_ERROR || (int) reply->code == code),
             name, detail);
    af_msg_destroy (&reply);
}

//  A tiny packer for hand-made messages
typedef struct { msgpack_sbuffer buf; msgpack_packer pk; } packer_t;

static void
s_pk_init (packer_t *p)
{
    msgpack_sbuffer_init (&p->buf);
    msgpack_packer_init (&p->pk, &p->buf, msgpack_sbuffer_write);
}

static void
s_pk_str (packer_t *p, const char *s)
{
    msgpack_pack_str_with_body (&p->pk, s, strlen (s));
}

static af_device_t
s_device (const char *model)
{
    af_device_t device;
    char err [256];
    char json [512];
    snprintf (json, sizeof json,
        "{\"platform\":\"android\",\"sdkVersion\":33,\"model\":\"%s\",\"formFactor\":\"phone\","
        "\"screenWidth\":1080,\"screenHeight\":2400,\"screenDensity\":420,\"supportedAbis\":[\"arm64-v8a\"]}",
        model);
    int rc = af_device_from_json (&device, json, err, sizeof err);
    assert (rc == AF_OK);
    return device;
}

//  A LOGIN of account as the device model: by password, with device_id
//  too if not NULL (a claim), or by key as device_id when password is NULL;
//  a rid. The caller destroys it.
static af_msg_t *
s_login_msg (const char *account, const char *password, const char *device_id, const char *model)
{
    af_msg_t *msg = af_msg_new (AF_MSG_LOGIN);
    af_msg_set_rid_random (msg);
    snprintf (msg->account, sizeof msg->account, "%s", account);
    if (password)
        snprintf (msg->password, sizeof msg->password, "%s", password);
    if (device_id)
        snprintf (msg->device_id, sizeof msg->device_id, "%s", device_id);
    msg->device = s_device (model);
    msg->has_device = true;
    return msg;
}

//  A password LOGIN of account on sock as a new device model, and its
//  answer: AF_OK for LOGIN_OK (device_id, if not NULL, gets the new
//  device's ID), an ERROR's code, 0 for no answer, -1 for anything else
static int
s_login (zsock_t *sock, const char *account, const char *password, const char *model, char *device_id)
{
    af_msg_t *msg = s_login_msg (account, password, NULL, model);
    af_msg_send (msg, sock, NULL);
    af_msg_destroy (&msg);
    af_msg_t *reply = s_recv (sock, true);
    int code = !reply? 0: reply->id == AF_MSG_LOGIN_OK? AF_OK: reply->id == AF_MSG_ERROR? (int) reply->code: -1;
    if (code == AF_OK && device_id)
        snprintf (device_id, AF_ID_HEX + 1, "%s", reply->device_id);
    af_msg_destroy (&reply);
    return code;
}

//  A valid REGISTER, cut at every seventh byte
static void
s_battery_truncated (void)
{
    packer_t p;
    s_pk_init (&p);
    msgpack_pack_map (&p.pk, 4);
    s_pk_str (&p, "v"); msgpack_pack_uint8 (&p.pk, 1);
    s_pk_str (&p, "cmd"); s_pk_str (&p, "REGISTER");
    s_pk_str (&p, "account"); s_pk_str (&p, "truncated");
    s_pk_str (&p, "password"); s_pk_str (&p, "long enough password");
    for (size_t cut = 1; cut < p.buf.size; cut += 7) {
        char name [96];
        snprintf (name, sizeof name, "truncated msgpack (%zu of %zu bytes)", cut, p.buf.size);
        s_expect_error (name, p.buf.data, cut, AF_E_MALFORMED, NULL);
    }
    msgpack_sbuffer_destroy (&p.buf);
}

//  Wrong types (with a rid that must be echoed), paths as program IDs,
//  an array for a map
static void
s_battery_wrong_types (const uint8_t *rid)
{
    packer_t p;
    s_pk_init (&p);
    msgpack_pack_map (&p.pk, 5);
    s_pk_str (&p, "v"); msgpack_pack_uint8 (&p.pk, 1);
    s_pk_str (&p, "rid"); msgpack_pack_bin_with_body (&p.pk, rid, AF_ID_SIZE);
    s_pk_str (&p, "cmd"); s_pk_str (&p, "REGISTER");
    s_pk_str (&p, "account"); msgpack_pack_int (&p.pk, 42);
    s_pk_str (&p, "password"); s_pk_str (&p, "long enough password");
    s_expect_error ("account as an integer (rid echoed)", p.buf.data, p.buf.size, AF_E_MALFORMED, rid);
    msgpack_sbuffer_destroy (&p.buf);

    s_pk_init (&p);
    msgpack_pack_map (&p.pk, 2);
    s_pk_str (&p, "v"); s_pk_str (&p, "1");
    s_pk_str (&p, "cmd"); s_pk_str (&p, "PING");
    s_expect_error ("version as a string", p.buf.data, p.buf.size, AF_E_MALFORMED, NULL);
    msgpack_sbuffer_destroy (&p.buf);

    s_pk_init (&p);
    msgpack_pack_map (&p.pk, 3);
    s_pk_str (&p, "v"); msgpack_pack_uint8 (&p.pk, 1);
    s_pk_str (&p, "cmd"); s_pk_str (&p, "RESOLVE");
    s_pk_str (&p, "program"); msgpack_pack_array (&p.pk, 0);
    s_expect_error ("program as an array", p.buf.data, p.buf.size, AF_E_MALFORMED, NULL);
    msgpack_sbuffer_destroy (&p.buf);

    //  Program IDs become file names on nodes: a path is not one
    const char *paths [] = { "../../etc", "a/b", "..", ".hidden" };
    for (int i = 0; i < 4; i++) {
        s_pk_init (&p);
        msgpack_pack_map (&p.pk, 4);
        s_pk_str (&p, "v"); msgpack_pack_uint8 (&p.pk, 1);
        s_pk_str (&p, "rid"); msgpack_pack_bin_with_body (&p.pk, rid, AF_ID_SIZE);
        s_pk_str (&p, "cmd"); s_pk_str (&p, i % 2? "CONFIG_GET": "RESOLVE");
        s_pk_str (&p, "program"); s_pk_str (&p, paths [i]);
        char name [96];
        snprintf (name, sizeof name, "program '%s' (E_MALFORMED naming the field, rid echoed)", paths [i]);
        s_expect_error_naming (name, p.buf.data, p.buf.size, AF_E_MALFORMED, rid, "field 'program'");
        msgpack_sbuffer_destroy (&p.buf);
    }

    s_pk_init (&p);
    msgpack_pack_array (&p.pk, 2);
    s_pk_str (&p, "v"); s_pk_str (&p, "PING");
    s_expect_error ("message is an array, not a map", p.buf.data, p.buf.size, AF_E_MALFORMED, NULL);
    msgpack_sbuffer_destroy (&p.buf);
}

//  Huge declared lengths: nothing may be allocated for them
static void
s_battery_huge_lengths (void)
{
    uint8_t huge_array [] = { 0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01 };
    s_expect_error ("array32 declaring 4294967295 entries", huge_array, sizeof huge_array, AF_E_MALFORMED, NULL);
    uint8_t huge_map [] = { 0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 'v' };
    s_expect_error ("map32 declaring 2147483647 pairs", huge_map, sizeof huge_map, AF_E_MALFORMED, NULL);
    uint8_t huge_str [] = { 0x82, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd', 0xdb, 0xff, 0xff, 0xff, 0xf0, 'P' };
    s_expect_error ("str32 declaring 4 GiB", huge_str, sizeof huge_str, AF_E_MALFORMED, NULL);
    uint8_t huge_bin [] = { 0x81, 0xa3, 'r', 'i', 'd', 0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00 };
    s_expect_error ("bin32 declaring 2 GiB", huge_bin, sizeof huge_bin, AF_E_MALFORMED, NULL);
    uint8_t deep [] = { 0x81, 0xa1, 'x', 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0xc0 };
    s_expect_error ("nesting 9 deep", deep, sizeof deep, AF_E_MALFORMED, NULL);
    uint8_t reserved [] = { 0x81, 0xa1, 'v', 0xc1 };
    s_expect_error ("reserved byte 0xc1", reserved, sizeof reserved, AF_E_MALFORMED, NULL);
    uint8_t trailing [] = { 0x82, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G', 0xc0 };
    s_expect_error ("bytes after the message", trailing, sizeof trailing, AF_E_MALFORMED, NULL);
    s_expect_error ("empty frame", "", 0, AF_E_MALFORMED, NULL);
    uint8_t garbage [64];
    randombytes_buf (garbage, sizeof garbage);
    garbage [0] = 0xc1;
    s_expect_error ("random garbage", garbage, sizeof garbage, AF_E_MALFORMED, NULL);
}

//  Unknown command, wrong versions, an oversize frame, two frames
static void
s_battery_frames (void)
{
    uint8_t unknown [] = { 0x82, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd', 0xa6, 'D', 'E', 'L', 'E', 'T', 'E' };
    s_expect_error ("unknown command DELETE", unknown, sizeof unknown, AF_E_UNKNOWN_COMMAND, NULL);
    uint8_t v2 [] = { 0x82, 0xa1, 'v', 0x02, 0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G' };
    s_expect_error ("protocol version 2 (versions listed)", v2, sizeof v2, AF_E_VERSION, NULL);
    uint8_t v0 [] = { 0x82, 0xa1, 'v', 0x00, 0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G' };
    s_expect_error ("protocol version 0", v0, sizeof v0, AF_E_VERSION, NULL);

    //  Oversize frame (above the protocol limit, below libzmq's cut-off)
    size_t big = AF_MAX_MSG + 1024;
    uint8_t *oversize = (uint8_t *) calloc (1, big);
    s_expect_error ("a frame 1 KiB over the limit", oversize, big, AF_E_TOO_BIG, NULL);
    free (oversize);

    //  Two frames
    zmsg_t *two = zmsg_new ();
    zmsg_addmem (two, v2, sizeof v2);
    zmsg_addmem (two, v2, sizeof v2);
    zmsg_send (&two, s_sock);
    af_msg_t *reply = s_recv (s_sock, true);
    s_check (reply && reply->id == AF_MSG_ERROR && reply->code == AF_E_MALFORMED, "two-frame message",
             reply? reply->reason: "no reply");
    af_msg_destroy (&reply);
}

//  Well-formed but not allowed here
static void
s_battery_not_allowed (void)
{
    af_msg_t *msg = af_msg_new (AF_MSG_DEVICES);
    af_msg_set_rid_random (msg);
    s_expect_msg ("DEVICES before LOGIN", msg, AF_MSG_ERROR, AF_E_NOT_LOGGED_IN);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_LOGIN_OK);
    strcpy (msg->account, "x"); strcpy (msg->device_id, "y");
    s_expect_msg ("LOGIN_OK sent by a node", msg, AF_MSG_ERROR, AF_E_UNKNOWN_COMMAND);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_REGISTER);
    strcpy (msg->account, "NO SPACES");
    strcpy (msg->password, "long enough password");
    s_expect_msg ("REGISTER with a bad account name", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    strcpy (msg->account, "shortpass");
    strcpy (msg->password, "short");
    s_expect_msg ("REGISTER with a 5-byte password", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    af_msg_destroy (&msg);
}

//  After all that: a normal register and login work on the same connection
static void
s_battery_then_login (void)
{
    af_msg_t *msg;
    char account [32];
    snprintf (account, sizeof account, "raw%u", randombytes_uniform (1000000));
    msg = af_msg_new (AF_MSG_REGISTER);
    af_msg_set_rid_random (msg);
    strcpy (msg->account, account);
    strcpy (msg->password, "long enough password");
    s_expect_msg ("REGISTER after the battery", msg, AF_MSG_OK, 0);
    af_msg_destroy (&msg);

    msg = af_msg_new (AF_MSG_LOGIN);
    af_msg_set_rid_random (msg);
    strcpy (msg->account, account);
    strcpy (msg->password, "long enough password");
    msg->device = s_device ("Raw");
    msg->device.screen_w = 0;           //  out of range
    msg->has_device = true;
    s_expect_msg ("LOGIN with screenWidth 0", msg, AF_MSG_ERROR, AF_E_BAD_DEVICE);
    msg->device = s_device ("Raw");
    msg->device.model [0] = 0;          //  missing model
    s_expect_msg ("LOGIN with no model", msg, AF_MSG_ERROR, AF_E_BAD_DEVICE);
    msg->device = s_device ("Raw");
    strcpy (msg->device.platform, "beos");
    s_expect_msg ("LOGIN with platform beos", msg, AF_MSG_ERROR, AF_E_BAD_DEVICE);
    msg->device = s_device ("Raw");
    s_expect_msg ("LOGIN after the battery", msg, AF_MSG_LOGIN_OK, 0);
    af_msg_destroy (&msg);

    msg = af_msg_new (AF_MSG_DEVICES);
    af_msg_set_rid_random (msg);
    s_expect_msg ("DEVICES after LOGIN", msg, AF_MSG_DEVICE_LIST, 0);
    af_msg_destroy (&msg);

    //  Above ZMQ_MAXMSGSIZE libzmq drops the connection, before the
    //  broker sees anything (its own connection: the DEALER reconnects)
    zsock_t *sock = s_connect ();
    zsock_set_rcvtimeo (sock, 1000);
    size_t big = AF_MAX_ZMQ_MSG + 1;
    uint8_t *oversize = (uint8_t *) calloc (1, big);
    zframe_t *frame = zframe_new (oversize, big);
    free (oversize);
    zframe_send (&frame, sock, 0);
    frame = zframe_recv (sock);
    s_check (!frame, "a frame above ZMQ_MAXMSGSIZE gets no answer (the connection is dropped)", NULL);
    zframe_destroy (&frame);
    zsock_destroy (&sock);
}

static void
s_battery (void)
{
    uint8_t rid [AF_ID_SIZE];
    randombytes_buf (rid, sizeof rid);
    s_battery_truncated ();
    s_battery_wrong_types (rid);
    s_battery_huge_lengths ();
    s_battery_frames ();
    s_battery_not_allowed ();
    s_battery_then_login ();
}

//  A new key claims a device bound to another key: refused with or
//  without the right password.
static void
s_claim (const char *account, const char *password, const char *device_id)
{
    af_msg_t *msg = s_login_msg (account, password, device_id, "Impostor");
    s_expect_msg ("claim with the right password", msg, AF_MSG_ERROR, AF_E_KEY_MISMATCH);
    msg->password [0] = 0;
    s_expect_msg ("claim with no password", msg, AF_MSG_ERROR, AF_E_KEY_MISMATCH);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_NOTIFY);
    af_msg_set_rid_random (msg);
    snprintf (msg->device_id, sizeof msg->device_id, "%s", device_id);
    af_msg_set_body (msg, "hi", 2);
    s_expect_msg ("NOTIFY without a session", msg, AF_MSG_ERROR, AF_E_NOT_LOGGED_IN);
    af_msg_destroy (&msg);
}

//  A logged-in session may not speak for another account
static void
s_forbidden (const char *account, const char *password, const char *other)
{
    af_msg_t *msg = s_login_msg (account, password, NULL, "Second key");
    s_expect_msg ("LOGIN as a new device", msg, AF_MSG_LOGIN_OK, 0);
    snprintf (msg->account, sizeof msg->account, "%s", other);
    s_expect_msg ("LOGIN to another account on the same session", msg, AF_MSG_ERROR, AF_E_FORBIDDEN);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_NOTIFY);
    af_msg_set_rid_random (msg);
    strcpy (msg->device_id, "00000000000000000000000000000000");
    af_msg_set_body (msg, "hi", 2);
    s_expect_msg ("NOTIFY to a device of no account", msg, AF_MSG_ERROR, AF_E_NO_DEVICE);
    strcpy (msg->device_id, "abc");
    s_expect_msg ("NOTIFY to a deviceId that is not 32 hex digits: 400", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    strcpy (msg->device_id, "0000000000000000000000000000000A");
    s_expect_msg ("NOTIFY to a deviceId in upper case: 400", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    af_msg_destroy (&msg);
}

//  Hostile payment traffic from a device of account: confirming another
//  account's intent (naming that account too), malformed intents, the
//  worker's own commands, a GET naming a device of no account
static void
s_pay_hostile (const char *account, const char *password, const char *victim, const char *intent)
{
    af_msg_t *msg = s_login_msg (account, password, NULL, "Payer");
    s_expect_msg ("LOGIN as a new device", msg, AF_MSG_LOGIN_OK, 0);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_PAY_CONFIRM);
    af_msg_set_rid_random (msg);
    snprintf (msg->intent, sizeof msg->intent, "%s", intent);
    strcpy (msg->token, "tok_approve");
    snprintf (msg->account, sizeof msg->account, "%s", victim);
    s_expect_msg ("PAY_CONFIRM of another account's intent, naming that account", msg, AF_MSG_ERROR,
                  AF_E_NO_INTENT);
    msg->account [0] = 0;
    s_expect_msg ("PAY_CONFIRM of another account's intent", msg, AF_MSG_ERROR, AF_E_NO_INTENT);
    strcpy (msg->intent, "not-an-intent");
    s_expect_msg ("PAY_CONFIRM with a malformed intent", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_PAY_INTENT);
    af_msg_set_rid_random (msg);
    snprintf (msg->account, sizeof msg->account, "%s", victim);
    strcpy (msg->program, "chess");
    strcpy (msg->currency, "EUR");
    msg->price = 1;
    s_expect_msg ("PAY_INTENT from a node (a worker's command)", msg, AF_MSG_ERROR, AF_E_UNKNOWN_COMMAND);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_GET);
    af_msg_set_rid_random (msg);
    strcpy (msg->program, "chess");
    strcpy (msg->device_id, "00000000000000000000000000000000");
    s_expect_msg ("GET from a device of no account", msg, AF_MSG_ERROR, AF_E_NO_DEVICE);
    af_msg_destroy (&msg);
}

//  The same confirmation (intent, tok_approve) count times at once from a
//  new device of account, as a node resending after a reconnect would:
//  every one is answered with the transfer (PUSH_ACCEPTED), or with ERROR
//  code when code is not 0
static void
s_pay_repeat (const char *account, const char *password, const char *intent, int count, int code)
{
    af_msg_t *msg = s_login_msg (account, password, NULL, "Repeater");
    s_expect_msg ("LOGIN as a new device", msg, AF_MSG_LOGIN_OK, 0);
    af_msg_destroy (&msg);
    for (int i = 0; i < count; i++) {
        msg = af_msg_new (AF_MSG_PAY_CONFIRM);
        af_msg_set_rid_random (msg);
        snprintf (msg->intent, sizeof msg->intent, "%s", intent);
        strcpy (msg->token, "tok_approve");
        af_msg_send (msg, s_sock, NULL);
        af_msg_destroy (&msg);
    }
    int accepted = 0, answers = 0;
    while (answers < count) {
        af_msg_t *reply = s_recv (s_sock, true);
        if (!reply)
            break;
        if (reply->has_rid) {
            answers++;
            accepted += code? reply->id == AF_MSG_ERROR && (int) reply->code == code:
                              reply->id == AF_MSG_PUSH_ACCEPTED;
            if (reply->id == AF_MSG_ERROR)
                printf ("# ERROR %u %s\n", reply->code, reply->reason);
        }
        af_msg_destroy (&reply);
    }
    char detail [64];
    snprintf (detail, sizeof detail, "%d of %d", accepted, count);
    s_check (accepted == count, code? "every confirmation answered with the error": "every confirmation "
             "answered with the transfer", detail);
}

//  Another account's backups: a session of account sees only its own, by
//  any means the protocol has (a list, a get, a restore that would
//  read one): none names an account, so none reaches another's
static void
s_backups (const char *account, const char *password, const char *program)
{
    af_msg_t *msg = s_login_msg (account, password, NULL, "Backup reader");
    s_expect_msg ("LOGIN", msg, AF_MSG_LOGIN_OK, 0);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_BACKUPS);
    af_msg_set_rid_random (msg);
    af_msg_send (msg, s_sock, NULL);
    af_msg_t *reply = s_recv (s_sock, true);
    s_check (reply && reply->id == AF_MSG_BACKUP_LIST && reply->backup_count == 0,
             "BACKUPS lists none of another account's backups", reply? af_msg_command_name (reply->id): "no answer");
    af_msg_destroy (&reply);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_BACKUP_GET);
    af_msg_set_rid_random (msg);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    s_expect_msg ("BACKUP_GET of another account's program: no backup", msg, AF_MSG_ERROR, AF_E_NO_BACKUP);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_RESTORE);
    af_msg_set_rid_random (msg);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    s_expect_msg ("RESTORE of another account's program: no backup", msg, AF_MSG_ERROR, AF_E_NO_BACKUP);
    af_msg_destroy (&msg);
}

//  Hostile push traffic from a logged-in device: fetching what was not
//  offered, uploads that lie, outcomes and acks that name nothing
//  The next ITEM whose body is the given command; NULL after 5 s
static af_msg_t *
s_next_item (af_msg_id_t command, char *item_out)
{
    while (true) {
        af_msg_t *msg = s_recv (s_sock, true);
        if (!msg)
            return NULL;
        af_msg_t *inner = NULL;
        char err [256];
        if (msg->id == AF_MSG_ITEM
        &&  af_msg_decode (msg->body, msg->body_size, &inner, err, sizeof err, NULL, NULL) == AF_OK
        &&  inner->id == command) {
            strcpy (item_out, msg->item);
            af_msg_destroy (&msg);
            return inner;
        }
        af_msg_destroy (&inner);
        af_msg_destroy (&msg);
    }
}

//  A node must not ACK an OFFER (it ends with DONE): the broker refuses
//  such an ACK, keeps the offer for the next login, and the push still
//  gets its result
static void
s_ack_offer (const char *account, const char *device_id)
{
    af_msg_t *msg = af_msg_new (AF_MSG_PUSH);
    af_msg_set_rid_random (msg);
    strcpy (msg->program, "weixin");
    af_msg_add_target (msg, "self");
    s_expect_msg ("PUSH to self (a sync pick)", msg, AF_MSG_PUSH_ACCEPTED, 0);
    af_msg_destroy (&msg);
    char item [AF_ID_HEX + 1] = "";
    af_msg_t *offer = s_next_item (AF_MSG_OFFER, item);
    s_check (offer != NULL, "  ... its OFFER arrives in an ITEM", NULL);
    if (!offer)
        return;
    msg = af_msg_new (AF_MSG_ACK);
    af_msg_set_rid_random (msg);
    strcpy (msg->item, item);
    s_expect_msg ("ACK of an OFFER is refused", msg, AF_MSG_ERROR, AF_E_FORBIDDEN);
    af_msg_destroy (&msg);
    //  A login again, by key, on this connection: the outbox starts over
    msg = s_login_msg (account, NULL, device_id, "Raw pusher");
    s_expect_msg ("LOGIN again by key", msg, AF_MSG_LOGIN_OK, 0);
    af_msg_destroy (&msg);
    char again [AF_ID_HEX + 1] = "";
    af_msg_t *offer2 = s_next_item (AF_MSG_OFFER, again);
    s_check (offer2 && streq (again, item) && streq (offer2->push_id, offer->push_id),
             "  ... the OFFER is still queued and comes again", NULL);
    af_msg_destroy (&offer2);
    msg = af_msg_new (AF_MSG_DONE);
    af_msg_set_rid_random (msg);
    strcpy (msg->push_id, offer->push_id);
    strcpy (msg->state, "failed");
    strcpy (msg->reason, "a raw client installs nothing");
    af_msg_send (msg, s_sock, NULL);
    af_msg_destroy (&msg);
    //  The OK and the RESULT for the initiator (this device too), in any order
    bool ok = false;
    af_msg_t *result = NULL;
    for (int i = 0; i < 8 && !(ok && result); i++) {
        af_msg_t *reply = s_recv (s_sock, true);
        if (!reply)
            break;
        af_msg_t *inner = NULL;
        char err [256];
        if (reply->id == AF_MSG_OK)
            ok = true;
        else
        if (reply->id == AF_MSG_ITEM && !result
        &&  af_msg_decode (reply->body, reply->body_size, &inner, err, sizeof err, NULL, NULL) == AF_OK
        &&  inner->id == AF_MSG_RESULT) {
            result = inner;
            inner = NULL;
        }
        af_msg_destroy (&inner);
        af_msg_destroy (&reply);
    }
    s_check (ok, "DONE for the offer", NULL);
    s_check (result && streq (result->push_id, offer->push_id) && streq (result->state, "failed"),
             "  ... and the push gets its RESULT", NULL);
    af_msg_destroy (&result);
    af_msg_destroy (&offer);
}

static void
s_push_battery (const char *account, const char *password)
{
    char device_id [AF_ID_HEX + 1] = "";
    s_check (s_login (s_sock, account, password, "Raw pusher", device_id) == AF_OK, "LOGIN as a new device", NULL);
    af_msg_t *msg = NULL;
    const char *nothing = "0000000000000000000000000000000000000000000000000000000000000000";

    msg = af_msg_new (AF_MSG_FETCH);
    af_msg_set_rid_random (msg);
    strcpy (msg->hash, nothing);
    msg->credit = 4;
    s_expect_msg ("FETCH of a package no offer names", msg, AF_MSG_ERROR, AF_E_FORBIDDEN);
    af_msg_destroy (&msg);

    msg = af_msg_new (AF_MSG_CHUNK);
    strcpy (msg->hash, nothing);
    msg->total = msg->size = 4;
    msg->data = (uint8_t *) strdup ("abcd");
    msg->data_size = 4;
    s_expect_msg ("CHUNK for no transfer", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    af_msg_destroy (&msg);

    msg = af_msg_new (AF_MSG_UPLOAD);
    af_msg_set_rid_random (msg);
    strcpy (msg->hash, nothing);
    msg->total = (uint64_t) AF_MAX_DATA + 1;
    s_expect_msg ("UPLOAD over the size limit", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    af_msg_destroy (&msg);

    //  An upload whose chunks come out of order, then one whose bytes lie
    uint8_t data [1000], hash [AF_HASH_SIZE];
    randombytes_buf (data, sizeof data);
    crypto_generichash (hash, sizeof hash, data, sizeof data, NULL, 0);
    char hex [AF_HASH_HEX + 1];
    sodium_bin2hex (hex, sizeof hex, hash, sizeof hash);
    for (int round = 0; round < 2; round++) {
        msg = af_msg_new (AF_MSG_UPLOAD);
        af_msg_set_rid_random (msg);
        strcpy (msg->hash, hex);
        msg->total = sizeof data;
        s_expect_msg (round? "UPLOAD again: credit": "UPLOAD: credit", msg, AF_MSG_CREDIT, 0);
        af_msg_destroy (&msg);
        msg = af_msg_new (AF_MSG_CHUNK);
        strcpy (msg->hash, hex);
        msg->total = sizeof data;
        msg->offset = round? 0: 500;
        msg->size = round? sizeof data: 500;
        msg->data = (uint8_t *) malloc (sizeof data);
        memcpy (msg->data, data, sizeof data);
        msg->data [10] ^= (uint8_t) round;      //  round 1: one byte changed
        msg->data_size = msg->size;
        s_expect_msg (round? "a CHUNK whose bytes do not match the hash": "a CHUNK out of order",
                      msg, AF_MSG_ERROR, AF_E_MALFORMED);
        af_msg_destroy (&msg);
    }
    msg = af_msg_new (AF_MSG_PUSH);
    af_msg_set_rid_random (msg);
    strcpy (msg->program, "weixin");
    af_msg_add_target (msg, "all");
    strcpy (msg->data_hash, hex);
    msg->data_total = sizeof data;
    strcpy (msg->node_version, AF_VERSION);         //  meets it_push's policy
    af_msg_add_attest (msg, "malware_scan=clean");
    msg->attest_time = (uint64_t) zclock_time ();
    s_expect_msg ("PUSH naming data the broker does not have", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    af_msg_destroy (&msg);

    msg = af_msg_new (AF_MSG_DONE);
    af_msg_set_rid_random (msg);
    strcpy (msg->push_id, "0123456789abcdef0123456789abcdef");
    strcpy (msg->state, "hacked");
    s_expect_msg ("DONE with an unknown state", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    strcpy (msg->state, "installed");
    s_expect_msg ("DONE for no pending offer changes nothing", msg, AF_MSG_OK, 0);
    af_msg_destroy (&msg);

    msg = af_msg_new (AF_MSG_ACK);
    strcpy (msg->item, "not-an-item");
    s_expect_msg ("ACK of a malformed item ID", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    af_msg_destroy (&msg);

    msg = af_msg_new (AF_MSG_ITEM);
    af_msg_set_rid_random (msg);
    strcpy (msg->item, "0123456789abcdef0123456789abcdef");
    af_msg_set_body (msg, "x", 1);
    s_expect_msg ("ITEM sent by a node", msg, AF_MSG_ERROR, AF_E_UNKNOWN_COMMAND);
    af_msg_destroy (&msg);
    s_ack_offer (account, device_id);
}

//  Reports are applied once, in seq order: a resend or a stale one is
//  answered OK and changes nothing
static bool
s_has_app (const char *device_id, const char *program)
{
    af_msg_t *msg = af_msg_new (AF_MSG_APPS);
    af_msg_set_rid_random (msg);
    strcpy (msg->device_id, device_id);
    af_msg_send (msg, s_sock, NULL);
    af_msg_destroy (&msg);
    af_msg_t *reply = s_recv (s_sock, true);
    bool has = false;
    for (uint32_t i = 0; reply && reply->id == AF_MSG_APP_LIST && i < reply->app_count; i++)
        has |= streq (reply->apps [i].program, program);
    af_msg_destroy (&reply);
    return has;
}

static void
s_report_battery (const char *account, const char *password)
{
    char device_id [AF_ID_HEX + 1] = "";
    s_check (s_login (s_sock, account, password, "Raw reporter", device_id) == AF_OK, "LOGIN as a new device", NULL);
    af_msg_t *msg = NULL;

    msg = af_msg_new (AF_MSG_REPORT);
    af_msg_set_rid_random (msg);
    msg->seq = 5;
    strcpy (msg->op, "install");
    strcpy (msg->program, "rawapp");
    s_expect_msg ("REPORT install, seq 5", msg, AF_MSG_OK, 0);
    s_expect_msg ("the same REPORT again", msg, AF_MSG_OK, 0);
    strcpy (msg->op, "uninstall");
    s_expect_msg ("an uninstall reusing seq 5", msg, AF_MSG_OK, 0);
    s_check (s_has_app (device_id, "rawapp"), "  ... changed nothing", NULL);
    msg->seq = 4;
    s_expect_msg ("a stale uninstall, seq 4", msg, AF_MSG_OK, 0);
    s_check (s_has_app (device_id, "rawapp"), "  ... changed nothing", NULL);
    strcpy (msg->op, "reinstall");
    msg->seq = 6;
    s_expect_msg ("a REPORT with an unknown op", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    strcpy (msg->op, "uninstall");
    msg->seq = 0;
    s_expect_msg ("a REPORT with seq 0: 400 (seqs count from 1)", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    s_check (s_has_app (device_id, "rawapp"), "  ... changed nothing", NULL);
    msg->seq = 6;
    strcpy (msg->op, "uninstall");
    s_expect_msg ("the uninstall, seq 6", msg, AF_MSG_OK, 0);
    s_check (!s_has_app (device_id, "rawapp"), "  ... removed it", NULL);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_APPS);
    af_msg_set_rid_random (msg);
    strcpy (msg->device_id, "0123456789abcdef0123456789abcdef");
    s_expect_msg ("APPS of a device of no account", msg, AF_MSG_ERROR, AF_E_NO_DEVICE);
    af_msg_destroy (&msg);

    //  Configurations: over the size limit, dated ahead, or asked for in vain
    msg = af_msg_new (AF_MSG_CONFIG_PUT);
    af_msg_set_rid_random (msg);
    strcpy (msg->program, "rawapp");
    msg->at = (uint64_t) zclock_time ();
    msg->data_size = AF_MAX_CONFIG + 1;
    msg->data = (uint8_t *) calloc (1, msg->data_size);
    s_expect_msg ("CONFIG_PUT over the size limit", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    msg->data_size = 16;
    msg->at += 3600 * 1000;
    s_expect_msg ("CONFIG_PUT dated an hour ahead", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    msg->at -= 3600 * 1000;
    s_expect_msg ("CONFIG_PUT of 16 opaque bytes", msg, AF_MSG_OK, 0);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_CONFIG_GET);
    af_msg_set_rid_random (msg);
    strcpy (msg->program, "no-such-app");
    s_expect_msg ("CONFIG_GET of nothing stored", msg, AF_MSG_ERROR, AF_E_NO_CONFIG);
    af_msg_destroy (&msg);
}

//  Fill the broker's store with configurations, big ones then smaller,
//  until it refuses even a small one; every one answered OK must read back.
static void
s_fill (const char *account, const char *password)
{
    s_check (s_login (s_sock, account, password, "Raw filler", NULL) == AF_OK, "LOGIN as a new device", NULL);
    af_msg_t *msg, *reply;
    static const uint32_t sizes [] = { 200000, 16000, 1000, 100 };
    uint32_t stored = 0, refused = 0;
    size_t bytes = 0;
    bool all_read = true;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes [0]; k++) {
        for (int n = 0; n < 10000; n++) {
            msg = af_msg_new (AF_MSG_CONFIG_PUT);
            af_msg_set_rid_random (msg);
            snprintf (msg->program, sizeof msg->program, "fill-%u-%d", sizes [k], n);
            msg->at = (uint64_t) zclock_time ();
            msg->data_size = sizes [k];
            msg->data = (uint8_t *) malloc (msg->data_size);
            randombytes_buf (msg->data, msg->data_size);
            af_msg_send (msg, s_sock, NULL);
            reply = s_recv (s_sock, true);
            bool ok = reply && reply->id == AF_MSG_OK;
            bool full = reply && reply->id == AF_MSG_ERROR && reply->code == AF_E_INTERNAL;
            af_msg_destroy (&reply);
            if (ok) {
                stored++;
                bytes += sizes [k];
                //  Acknowledged means stored: it reads back
                af_msg_t *get = af_msg_new (AF_MSG_CONFIG_GET);
                af_msg_set_rid_random (get);
                snprintf (get->program, sizeof get->program, "%s", msg->program);
                af_msg_send (get, s_sock, NULL);
                reply = s_recv (s_sock, true);
                all_read &= reply && reply->id == AF_MSG_CONFIG && reply->data_size == msg->data_size
                         && memcmp (reply->data, msg->data, msg->data_size) == 0;
                af_msg_destroy (&reply);
                af_msg_destroy (&get);
            }
            af_msg_destroy (&msg);
            if (full) {
                refused++;
                break;                  //  try smaller ones
            }
            if (!ok) {
                s_check (false, "CONFIG_PUT answered OK or E_INTERNAL", NULL);
                return;
            }
        }
    }
    char detail [128];
    snprintf (detail, sizeof detail, "%u stored (%zu bytes), %u refused", stored, bytes, refused);
    s_check (refused == sizeof sizes / sizeof sizes [0], "the store filled up: each size refused at last", detail);
    s_check (all_read, "every configuration answered OK reads back", NULL);
}

//  count REGISTERs at once, each on its own connection, while another
//  connection PINGs every 20 ms: the broker must keep answering PINGs
//  while it hashes (Argon2id runs off its reactor thread)
static void
s_storm (int count)
{
    zsock_t **socks = (zsock_t **) calloc ((size_t) count, sizeof (zsock_t *));
    assert (socks);
    zsock_t *pinger = s_connect ();
    //  A PONG first, so the pinger's handshake is not part of the measure
    af_msg_t *ping = af_msg_new (AF_MSG_PING);
    af_msg_send (ping, pinger, NULL);
    af_msg_t *pong = s_recv (pinger, false);
    s_check (pong && pong->id == AF_MSG_PONG, "the broker answers PING", NULL);
    af_msg_destroy (&pong);
    zpoller_t *poller = zpoller_new (pinger, NULL);
    for (int i = 0; i < count; i++) {
        socks [i] = s_connect ();
        zpoller_add (poller, socks [i]);
        af_msg_t *msg = af_msg_new (AF_MSG_REGISTER);
        af_msg_set_rid_random (msg);
        snprintf (msg->account, sizeof msg->account, "storm%d-%u", i, randombytes_random () % 100000);
        snprintf (msg->password, sizeof msg->password, "storm password %d", i);
        af_msg_send (msg, socks [i], NULL);
        af_msg_destroy (&msg);
    }
    int64_t start = zclock_mono (), sent_at = 0, worst = 0, beat = start;
    int answered = 0, ok = 0;
    bool waiting_pong = false;
    while (answered < count && zclock_mono () - start < 60000) {
        //  Each connection keeps its session alive, as a node does
        if (zclock_mono () - beat > 100) {
            for (int i = 0; i < count; i++)
                af_msg_send (ping, socks [i], NULL);
            beat = zclock_mono ();
        }
        if (!waiting_pong) {
            af_msg_send (ping, pinger, NULL);
            sent_at = zclock_mono ();
            waiting_pong = true;
        }
        zsock_t *which = (zsock_t *) zpoller_wait (poller, 20);
        if (waiting_pong && zclock_mono () - sent_at > worst)
            worst = zclock_mono () - sent_at;
        if (!which)
            continue;
        af_msg_t *reply = s_recv (which, false);
        if (which == pinger) {
            if (reply && reply->id == AF_MSG_PONG) {
                waiting_pong = false;
                zclock_sleep (20);
            }
        }
        else
        if (reply && reply->id != AF_MSG_PONG) {
            answered++;
            ok += reply->id == AF_MSG_OK;
        }
        af_msg_destroy (&reply);
    }
    int64_t took = zclock_mono () - start;
    char detail [128];
    snprintf (detail, sizeof detail, "%d of %d registered in %lld ms", ok, count, (long long) took);
    s_check (ok == count, "every REGISTER of the storm is answered OK", detail);
    snprintf (detail, sizeof detail, "slowest PONG %lld ms while hashing for %lld ms", (long long) worst,
              (long long) took);
    s_check (worst < 500, "PINGs are answered at once while passwords are hashed", detail);
    printf ("# %s\n", detail);
    af_msg_destroy (&ping);
    zpoller_destroy (&poller);
    for (int i = 0; i < count; i++)
        zsock_destroy (&socks [i]);
    zsock_destroy (&pinger);
    free (socks);
}

//  A password LOGIN on sock; the reply's code (AF_OK for LOGIN_OK, 0 for none)
static int
s_password_login (zsock_t *sock, const char *account, const char *password)
{
    return s_login (sock, account, password, "Raw guesser", NULL);
}

//  A password LOGIN, and what it must be answered: REDIRECT, LOGIN_OK, or
//  an ERROR code (a cluster's brokers: who serves an account, and when)
//  an ERROR code (a cluster's brokers: who serves an account, and when),
//  or several of them with '|' ("REDIRECT|LOGIN_OK"). A broker may hold a
//  LOGIN for up to AF_CLUSTER_PARK_MS (SPEC 5.36): waited for that long
//  and more; how long it took is said with the answer
static bool
s_one_of (const char *expect, const char *got)
{
    size_t len = strlen (got);
    for (const char *at = expect; *at; at += *at == '|') {
        size_t one = strcspn (at, "|");
        if (one == len && memcmp (at, got, len) == 0)
            return true;
        at += one;
    }
    return false;
}

static void
s_login_expect (const char *account, const char *password, const char *expect)
{
    af_msg_t *msg = s_login_msg (account, password, NULL, "Raw");
    int64_t sent = zclock_mono ();
    af_msg_send (msg, s_sock, NULL);
    af_msg_destroy (&msg);
    zsock_set_rcvtimeo (s_sock, AF_CLUSTER_PARK_MS + 5000);
    af_msg_t *reply = s_recv (s_sock, true);
    zsock_set_rcvtimeo (s_sock, 5000);
    char got [384];
    bool login_ok = reply && reply->id == AF_MSG_LOGIN_OK;
    snprintf (got, sizeof got, "%s %u %s%s (after %" PRId64 " ms)", reply? af_msg_command_name (reply->id): "nothing",
              reply? reply->code: 0, login_ok? "standby ": "",
              reply && (reply->id == AF_MSG_REDIRECT || login_ok)? reply->endpoint: reply? reply->reason: "",
              zclock_mono () - sent);
    char code [16];
    snprintf (code, sizeof code, "%u", reply? reply->code: 0);
    bool ok = reply && (s_one_of (expect, af_msg_command_name (reply->id))
                     || (reply->id == AF_MSG_ERROR && s_one_of (expect, code)));
    char name [128];
    snprintf (name, sizeof name, "LOGIN to '%s' is answered %s", account, expect);
    s_check (ok, name, got);
    af_msg_destroy (&reply);
}

//  Guess count wrong passwords for account from source, each on a new
//  connection; then the next try, with any password, must be refused
static void
s_guess (const char *account, int count, const char *source)
{
    int wrong = 0;
    for (int i = 0; i < count; i++) {
        zsock_t *sock = s_connect_from (source);
        char guess [64];
        snprintf (guess, sizeof guess, "guess number %d", i);
        wrong += s_password_login (sock, account, guess) == AF_E_BAD_PASSWORD;
        zsock_destroy (&sock);
    }
    char detail [64];
    snprintf (detail, sizeof detail, "%d of %d", wrong, count);
    s_check (wrong == count, "each guess is a wrong password (E_BAD_PASSWORD)", detail);
    zsock_t *sock = s_connect_from (source);
    int code = s_password_login (sock, account, "one more guess");
    zsock_destroy (&sock);
    snprintf (detail, sizeof detail, "got %d", code);
    s_check (code == AF_E_RATE_LIMITED, "then this source is refused (E_RATE_LIMITED)", detail);
}

//  One password job at a time per connection
static void
s_one_at_a_time (const char *account)
{
    af_msg_t *msg = af_msg_new (AF_MSG_LOGIN);
    snprintf (msg->account, sizeof msg->account, "%s", account);
    snprintf (msg->password, sizeof msg->password, "a wrong password");
    msg->device = s_device ("Raw hurrier");
    msg->has_device = true;
    uint8_t first [AF_ID_SIZE];
    af_msg_set_rid_random (msg);
    memcpy (first, msg->rid, AF_ID_SIZE);
    af_msg_send (msg, s_sock, NULL);
    af_msg_set_rid_random (msg);
    af_msg_send (msg, s_sock, NULL);
    af_msg_destroy (&msg);
    int codes [2] = { 0, 0 };
    for (int i = 0; i < 2; i++) {
        af_msg_t *reply = s_recv (s_sock, true);
        if (reply && reply->id == AF_MSG_ERROR)
            codes [memcmp (reply->rid, first, AF_ID_SIZE) == 0? 0: 1] = (int) reply->code;
        af_msg_destroy (&reply);
    }
    char got [64];
    snprintf (got, sizeof got, "first answered %d, second %d (0: nothing within 5 s)", codes [0], codes [1]);
    s_check (codes [1] == AF_E_RATE_LIMITED, "a second password LOGIN while the first is checked is refused", got);
    s_check (codes [0] == AF_E_BAD_PASSWORD, "  ... and the first is answered", got);
}

//  Another account tries to push, and to fetch, a blob of user data that
//  one account uploaded, knowing its hash and size
static void
s_steal (const char *account, const char *password, const char *hash, uint64_t size)
{
    af_msg_t *msg = af_msg_new (AF_MSG_REGISTER);
    af_msg_set_rid_random (msg);
    snprintf (msg->account, sizeof msg->account, "%s", account);
    snprintf (msg->password, sizeof msg->password, "%s", password);
    s_expect_msg ("REGISTER another account", msg, AF_MSG_OK, 0);
    af_msg_destroy (&msg);
    int code = s_password_login (s_sock, account, password);
    s_check (code == AF_OK, "  ... and log in to it", NULL);
    msg = af_msg_new (AF_MSG_PUSH);
    af_msg_set_rid_random (msg);
    strcpy (msg->program, "weixin");
    af_msg_add_target (msg, "all");
    snprintf (msg->data_hash, sizeof msg->data_hash, "%s", hash);
    msg->data_total = size;
    s_expect_msg ("a PUSH naming another account's user data is refused", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_FETCH);
    af_msg_set_rid_random (msg);
    snprintf (msg->hash, sizeof msg->hash, "%s", hash);
    msg->credit = 4;
    s_expect_msg ("a FETCH of it is refused", msg, AF_MSG_ERROR, AF_E_FORBIDDEN);
    af_msg_destroy (&msg);
}

//  Configurations up to the account's quota of programs: count stored,
//  the next refused with E_QUOTA, an update of a stored one still fine
static void
s_quota (const char *account, const char *password, int count)
{
    s_check (s_password_login (s_sock, account, password) == AF_OK, "LOGIN as a new device", NULL);
    af_msg_t *msg = af_msg_new (AF_MSG_CONFIG_PUT);
    msg->data_size = 16;
    msg->data = (uint8_t *) calloc (1, msg->data_size);
    int stored = 0;
    for (int i = 0; i <= count; i++) {
        af_msg_set_rid_random (msg);
        snprintf (msg->program, sizeof msg->program, "quota%d", i);
        msg->at = (uint64_t) zclock_time ();
        af_msg_send (msg, s_sock, NULL);
        af_msg_t *reply = s_recv (s_sock, true);
        if (reply && reply->id == AF_MSG_OK)
            stored++;
        else
        if (i == count) {
            char detail [400];
            snprintf (detail, sizeof detail, "got %s %u %s", reply? af_msg_command_name (reply->id): "nothing",
                      reply? reply->code: 0, reply? reply->reason: "");
            s_check (reply && reply->id == AF_MSG_ERROR && reply->code == AF_E_QUOTA
                     && strstr (reply->reason, "limit"), "one more program is refused with E_QUOTA", detail);
        }
        af_msg_destroy (&reply);
    }
    char detail [64];
    snprintf (detail, sizeof detail, "%d stored", stored);
    s_check (stored == count, "configurations are stored up to the quota", detail);
    snprintf (msg->program, sizeof msg->program, "quota0");
    msg->at = (uint64_t) zclock_time () + 1;
    af_msg_set_rid_random (msg);
    s_expect_msg ("a newer version of a stored one is still taken", msg, AF_MSG_OK, 0);
    af_msg_destroy (&msg);
}

//  UPLOAD size bytes (up to AF_MAX_CREDIT / 2 chunks: the first credit)
//  as user data; its hash into hex
static bool
s_upload_bytes (uint8_t *data, uint32_t size, char hex [AF_HASH_HEX + 1])
{
    uint32_t chunks = (size + AF_MAX_CHUNK - 1) / AF_MAX_CHUNK;
    assert (chunks <= AF_MAX_CREDIT / 2);
    uint8_t hash [AF_HASH_SIZE];
    crypto_generichash (hash, sizeof hash, data, size, NULL, 0);
    sodium_bin2hex (hex, AF_HASH_HEX + 1, hash, sizeof hash);
    af_msg_t *msg = af_msg_new (AF_MSG_UPLOAD);
    af_msg_set_rid_random (msg);
    strcpy (msg->hash, hex);
    msg->total = size;
    s_expect_msg ("UPLOAD: credit", msg, AF_MSG_CREDIT, 0);
    af_msg_destroy (&msg);
    for (uint32_t offset = 0; offset < size; offset += AF_MAX_CHUNK) {
        msg = af_msg_new (AF_MSG_CHUNK);
        strcpy (msg->hash, hex);
        msg->total = size;
        msg->offset = offset;
        msg->size = msg->data_size = size - offset < AF_MAX_CHUNK? size - offset: AF_MAX_CHUNK;
        msg->data = data + offset;
        af_msg_send (msg, s_sock, NULL);
        msg->data = NULL;
        af_msg_destroy (&msg);
    }
    bool ok = false;                    //  (a CREDIT after each chunk but the last)
    for (uint32_t i = 0; i < chunks + 3 && !ok; i++) {
        af_msg_t *reply = s_recv (s_sock, true);
        ok = reply && reply->id == AF_MSG_OK;
        af_msg_destroy (&reply);
    }
    return ok;
}

//  Upload size random bytes as user data and push nothing: the broker
//  keeps the blob only for its grace period. Prints the blob's hash.
static void
s_upload_only (const char *account, const char *password, uint32_t size)
{
    s_check (s_password_login (s_sock, account, password) == AF_OK, "LOGIN as a new device", NULL);
    uint8_t *data = (uint8_t *) malloc (size);
    assert (data);
    randombytes_buf (data, size);
    char hex [AF_HASH_HEX + 1];
    s_check (s_upload_bytes (data, size, hex), "the upload is stored", hex);
    free (data);
}

//  Remove another device of the account, as its owner would from a device
//  of their own: refused with a wrong password and for itself, then done
static void
s_remove (const char *account, const char *password, const char *device_id)
{
    s_check (s_password_login (s_sock, account, password) == AF_OK, "LOGIN as a new device", NULL);
    af_msg_t *msg = af_msg_new (AF_MSG_DEVICE_REMOVE);
    af_msg_set_rid_random (msg);
    snprintf (msg->device_id, sizeof msg->device_id, "%s", device_id);
    snprintf (msg->password, sizeof msg->password, "not the password");
    s_expect_msg ("DEVICE_REMOVE with a wrong password is refused", msg, AF_MSG_ERROR, AF_E_BAD_PASSWORD);
    snprintf (msg->password, sizeof msg->password, "%s", password);
    snprintf (msg->device_id, sizeof msg->device_id, "0123456789abcdef0123456789abcdef");
    s_expect_msg ("DEVICE_REMOVE of a device of no account", msg, AF_MSG_ERROR, AF_E_NO_DEVICE);
    snprintf (msg->device_id, sizeof msg->device_id, "%s", device_id);
    s_expect_msg ("DEVICE_REMOVE with the password", msg, AF_MSG_OK, 0);
    s_expect_msg ("  ... a second time: no such device now", msg, AF_MSG_ERROR, AF_E_NO_DEVICE);
    af_msg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  Friends (issue 13): what an account may not learn or do through the
//  friends' commands, whatever it sends. TOKEN_HEX is another account's
//  own number's token (as if it had evaluated that number itself).

static af_msg_t *
s_friends_request (af_msg_id_t id, const char *op, const uint8_t *token, const char *program)
{
    af_msg_t *msg = af_msg_new (id);
    af_msg_set_rid_random (msg);
    if (op)
        snprintf (msg->op, sizeof msg->op, "%s", op);
    if (program)
        snprintf (msg->program, sizeof msg->program, "%s", program);
    if (token) {
        af_msg_set_element_count (msg, 1);
        memcpy (msg->elements [0], token, AF_CONTACT_TOKEN_SIZE);
    }
    return msg;
}

//  CONTACTS_EVAL of 100 valid elements at a time (a tenth of the most: a
//  worker busy for long on a loaded machine would miss its heartbeats)
//  until the allowance is used up
#define EVAL_CHUNK 100
static void
s_friends_allowance (int limit)
{
    af_msg_t *msg = af_msg_new (AF_MSG_CONTACTS_EVAL);
    af_msg_set_element_count (msg, EVAL_CHUNK);
    for (uint32_t i = 0; i < EVAL_CHUNK; i++)
        crypto_core_ristretto255_random (msg->elements [i]);
    int sent = 0, evaluated = 0;
    af_msg_t *reply = NULL;
    while (sent < limit + EVAL_CHUNK) {
        af_msg_set_rid_random (msg);
        af_msg_send (msg, s_sock, NULL);
        sent += EVAL_CHUNK;
        af_msg_destroy (&reply);
        reply = s_recv (s_sock, true);
        if (!reply || reply->id != AF_MSG_CONTACTS_EVALUATED)
            break;
        evaluated += (int) reply->element_count;
    }
    char detail [400];
    snprintf (detail, sizeof detail, "%d evaluated, then %s %u %s", evaluated,
              reply? af_msg_command_name (reply->id): "nothing", reply? reply->code: 0, reply? reply->reason: "");
    s_check (evaluated == limit / EVAL_CHUNK * EVAL_CHUNK, "CONTACTS_EVAL is evaluated up to "
             "the account's allowance", detail);
    s_check (reply && reply->id == AF_MSG_ERROR && reply->code == AF_E_EVAL_LIMIT
             && strstr (reply->reason, "contact numbers evaluated") && strstr (reply->reason, "free again in"),
             "  ... then refused with E_EVAL_LIMIT naming the limit and when it frees up", detail);
    af_msg_destroy (&reply);
    af_msg_destroy (&msg);
}

static void
s_friends (const char *account, const char *password, const char *token_hex, int limit)
{
    uint8_t token [AF_CONTACT_TOKEN_SIZE], nobody [AF_CONTACT_TOKEN_SIZE];
    size_t len;
    if (sodium_hex2bin (token, sizeof token, token_hex, strlen (token_hex), NULL, &len, NULL) || len != sizeof token) {
        s_check (false, "a token of 64 hex digits given", token_hex);
        return;
    }
    randombytes_buf (nobody, sizeof nobody);
    s_check (s_password_login (s_sock, account, password) == AF_OK, "LOGIN", NULL);
    af_msg_t *msg = s_friends_request (AF_MSG_FRIENDS, NULL, NULL, NULL);
    af_msg_send (msg, s_sock, NULL);
    af_msg_destroy (&msg);
    af_msg_t *reply = s_recv (s_sock, true);
    char detail [400];
    snprintf (detail, sizeof detail, "got %s %u %s", reply? af_msg_command_name (reply->id): "nothing",
              reply? reply->code: 0, reply? reply->reason: "");
    s_check (reply && reply->id == AF_MSG_FRIEND_LIST && reply->element_count == 0,
             "FRIENDS of an account with no book lists nobody: no command reads another account's tokens", detail);
    af_msg_destroy (&reply);
    //  The same refusal for an account with no friendship and for no account
    msg = s_friends_request (AF_MSG_FRIEND_APPS, NULL, token, NULL);
    s_expect_msg ("FRIEND_APPS of another account's number, not a friend: E_NOT_FRIENDS", msg, AF_MSG_ERROR,
                  AF_E_NOT_FRIENDS);
    af_msg_destroy (&msg);
    msg = s_friends_request (AF_MSG_FRIEND_APPS, NULL, nobody, NULL);
    s_expect_msg ("FRIEND_APPS of a number nobody has: the same E_NOT_FRIENDS", msg, AF_MSG_ERROR, AF_E_NOT_FRIENDS);
    af_msg_destroy (&msg);
    msg = s_friends_request (AF_MSG_RECOMMEND, NULL, token, "weixin");
    s_expect_msg ("RECOMMEND of an app it does not have: E_NOT_SHARED, before the contact is looked at", msg,
                  AF_MSG_ERROR, AF_E_NOT_SHARED);
    af_msg_destroy (&msg);
    //  With the app on its device: a push to a non-friend, refused
    msg = af_msg_new (AF_MSG_REPORT);
    af_msg_set_rid_random (msg);
    msg->seq = 1;
    strcpy (msg->op, "install");
    strcpy (msg->program, "weixin");
    s_expect_msg ("REPORT install of weixin", msg, AF_MSG_OK, 0);
    af_msg_destroy (&msg);
    msg = s_friends_request (AF_MSG_RECOMMEND, NULL, token, "weixin");
    s_expect_msg ("RECOMMEND of its app to a non-friend: E_NOT_FRIENDS, nothing queued", msg, AF_MSG_ERROR,
                  AF_E_NOT_FRIENDS);
    af_msg_destroy (&msg);
    msg = s_friends_request (AF_MSG_FRIEND_INSTALL, NULL, token, "weixin");
    s_expect_msg ("FRIEND_INSTALL from a non-friend: E_NOT_FRIENDS", msg, AF_MSG_ERROR, AF_E_NOT_FRIENDS);
    af_msg_destroy (&msg);
    msg = s_friends_request (AF_MSG_CONTACTS_PUT, "steal", token, NULL);
    s_expect_msg ("CONTACTS_PUT with an unknown op: 400", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    af_msg_destroy (&msg);
    msg = s_friends_request (AF_MSG_REFUSE, "contact", NULL, NULL);
    s_expect_msg ("REFUSE contact without a token: 400", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    af_msg_destroy (&msg);
    s_friends_allowance (limit);
}

//  --------------------------------------------------------------------------
//  Hostile load (issue 9, section 4): peers that do not read, connections
//  that never finish their handshake, many connections from one address,
//  and mechanisms the broker refuses

//  A field of /proc/PID/status in KiB ("VmRSS:"), or -1
static long
s_status_kib (int pid, const char *field)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/status", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    char line [256];
    long value = -1;
    size_t len = strlen (field);
    while (fgets (line, sizeof line, file))
        if (strncmp (line, field, len) == 0) {
            value = atol (line + len);
            break;
        }
    fclose (file);
    return value;
}

//  Register account (it may exist already)
static void
s_register (const char *account, const char *password)
{
    af_msg_t *msg = af_msg_new (AF_MSG_REGISTER);
    af_msg_set_rid_random (msg);
    snprintf (msg->account, sizeof msg->account, "%s", account);
    snprintf (msg->password, sizeof msg->password, "%s", password);
    af_msg_send (msg, s_sock, NULL);
    af_msg_destroy (&msg);
    af_msg_t *reply = s_recv (s_sock, true);
    s_check (reply && (reply->id == AF_MSG_OK || (reply->id == AF_MSG_ERROR && reply->code == AF_E_ACCOUNT_EXISTS)),
             "the account is registered", NULL);
    af_msg_destroy (&reply);
}

//  Register account (on its shard's owner, in a cluster) and upload size
//  random bytes as its user data, as s_upload_only
static void
s_blob (const char *account, const char *password, uint32_t size)
{
    s_register (account, password);
    s_upload_only (account, password, size);
}

//  The broker has account's blob hash of size bytes whole: an UPLOAD of
//  it is answered OK at once, not CREDIT (handle_upload.c)
static void
s_whole (const char *account, const char *password, const char *hash, uint64_t size)
{
    s_check (s_password_login (s_sock, account, password) == AF_OK, "LOGIN as a new device", NULL);
    af_msg_t *msg = af_msg_new (AF_MSG_UPLOAD);
    af_msg_set_rid_random (msg);
    snprintf (msg->hash, sizeof msg->hash, "%s", hash);
    msg->total = size;
    s_expect_msg ("an UPLOAD of the blob is answered OK at once (the broker has it whole), not CREDIT",
                  msg, AF_MSG_OK, 0);
    af_msg_destroy (&msg);
}

//  A CURVE connection with the given keypair
static zsock_t *
s_connect_cert (zcert_t *cert)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    zcert_apply (cert, sock);
    zsock_set_curve_serverkey (sock, zcert_public_txt (s_broker_cert));
    zsock_set_linger (sock, 0);
    zsock_set_rcvtimeo (sock, 5000);
    zsock_connect (sock, "%s", s_endpoint);
    return sock;
}

//  A PING on sock; the time until its PONG in ms, or -1 if none came
static int64_t
s_ping (zsock_t *sock)
{
    int64_t start = zclock_mono ();
    af_msg_t *ping = af_msg_new (AF_MSG_PING);
    af_msg_send (ping, sock, NULL);
    af_msg_destroy (&ping);
    while (true) {
        af_msg_t *reply = s_recv (sock, false);
        if (!reply)
            return -1;
        bool pong = reply->id == AF_MSG_PONG;
        af_msg_destroy (&reply);
        if (pong)
            return zclock_mono () - start;
    }
}

//  A device asks for a 256 KiB configuration count times and never reads
//  the answers, while another device of the account is served; the
//  broker's resident memory is watched meanwhile
static void
s_noread (const char *account, const char *password, int count, int pid, long max_mib)
{
    s_register (account, password);
    s_check (s_password_login (s_sock, account, password) == AF_OK, "the watching device logs in", NULL);
    af_msg_t *reply;
    af_msg_t *msg = af_msg_new (AF_MSG_CONFIG_PUT);
    af_msg_set_rid_random (msg);
    strcpy (msg->program, "big-config");
    msg->at = (uint64_t) zclock_time ();
    msg->data_size = AF_MAX_CONFIG;
    msg->data = (uint8_t *) malloc (msg->data_size);
    randombytes_buf (msg->data, msg->data_size);
    s_expect_msg ("a configuration of 256 KiB is stored", msg, AF_MSG_OK, 0);
    af_msg_destroy (&msg);

    //  The sink keeps its own queues as small as libzmq allows, so what
    //  it does not read stays with the broker
    zcert_t *cert = zcert_new ();
    zsock_t *sink = zsock_new (ZMQ_DEALER);
    zcert_apply (cert, sink);
    zcert_destroy (&cert);
    zsock_set_curve_serverkey (sink, zcert_public_txt (s_broker_cert));
    zsock_set_linger (sink, 0);
    zsock_set_rcvtimeo (sink, 5000);
    zsock_set_sndtimeo (sink, 5000);
    zsock_set_rcvhwm (sink, 1);
    zsock_set_rcvbuf (sink, 4096);
    zsock_connect (sink, "%s", s_endpoint);
    s_check (s_password_login (sink, account, password) == AF_OK, "the sink logs in", NULL);
    zclock_sleep (300);
    zsock_set_rcvtimeo (sink, 0);
    while ((reply = s_recv (sink, false)))     //  the device lists of the logins
        af_msg_destroy (&reply);

    long before = s_status_kib (pid, "VmRSS:"), peak = before;
    msg = af_msg_new (AF_MSG_CONFIG_GET);
    strcpy (msg->program, "big-config");
    int sent = 0, pongs = 0, checks = 0;
    int64_t worst = 0;
    //  The sink never blocks: once the broker drops it, its own queue
    //  (1,000 messages) may fill, as libzmq does not notice a closed
    //  connection on a socket that does not read
    zsock_set_sndtimeo (sink, 0);
    for (int i = 0; i < count; i++) {
        af_msg_set_rid_random (msg);
        if (af_msg_send (msg, sink, NULL) == 0)
            sent++;
        if (i % 50 == 49) {
            checks++;
            int64_t took = s_ping (s_sock);
            if (took >= 0)
                pongs++;
            worst = took < 0 || took > worst? (took < 0? 99999: took): worst;
            long rss = s_status_kib (pid, "VmRSS:");
            peak = rss > peak? rss: peak;
        }
    }
    af_msg_destroy (&msg);
    //  The broker works through what it was sent; the watcher keeps its
    //  session alive as a node does
    for (int i = 0; i < 60; i++) {
        zclock_sleep (50);
        checks++;
        int64_t took = s_ping (s_sock);
        if (took >= 0)
            pongs++;
        worst = took < 0 || took > worst? (took < 0? 99999: took): worst;
        long rss = s_status_kib (pid, "VmRSS:");
        peak = rss > peak? rss: peak;
    }
    msg = af_msg_new (AF_MSG_CONFIG_GET);
    af_msg_set_rid_random (msg);
    strcpy (msg->program, "big-config");
    af_msg_send (msg, s_sock, NULL);
    af_msg_destroy (&msg);
    reply = s_recv (s_sock, true);
    bool served = reply && reply->id == AF_MSG_CONFIG && reply->data_size == AF_MAX_CONFIG;
    if (!served)
        printf ("# the configuration: got %s %u %s\n", reply? af_msg_command_name (reply->id): "nothing",
                reply? reply->code: 0, reply? reply->reason: "");
    af_msg_destroy (&reply);
    long after = s_status_kib (pid, "VmRSS:");

    char detail [256];
    snprintf (detail, sizeof detail, "%d CONFIG_GETs of 256 KiB not read: broker RSS %ld KiB before, peak %ld (+%ld MiB), %ld after",
              sent, before, peak, (peak - before) / 1024, after);
    printf ("# %s\n", detail);
    snprintf (detail, sizeof detail, "%d of %d", sent, count);
    s_check (sent >= count / 2, "the sink sent most of its requests", detail);
    s_check (peak - before < max_mib * 1024, "the broker's memory stays bounded while a peer does not read", detail);
    snprintf (detail, sizeof detail, "%d of %d PINGs answered, slowest %lld ms", pongs, checks, (long long) worst);
    printf ("# %s\n", detail);
    s_check (pongs == checks && worst < 1000, "another device of the account is served meanwhile", detail);
    s_check (served, "  ... and then gets its configuration", NULL);
    zsock_destroy (&sink);
}

//  A login with a burst behind it: count offers queued for an absent
//  device arrive, in order, when it comes back and reads them
static void
s_burst (const char *account, const char *password, int count)
{
    s_register (account, password);
    s_check (s_password_login (s_sock, account, password) == AF_OK, "the pushing device logs in", NULL);
    zcert_t *cert = zcert_new ();
    zsock_t *target = s_connect_cert (cert);
    char device_id [AF_ID_HEX + 1] = "";
    s_check (s_login (target, account, password, "Raw burst", device_id) == AF_OK, "the target logs in once", NULL);
    af_msg_t *msg, *reply;
    zsock_destroy (&target);

    char (*pushes) [AF_ID_HEX + 1] = calloc ((size_t) count, AF_ID_HEX + 1);
    assert (pushes);
    int accepted = 0;
    af_msg_t *push = af_msg_new (AF_MSG_PUSH);
    strcpy (push->program, "weixin");
    af_msg_add_target (push, device_id);
    for (int i = 0; i < count; i++) {
        af_msg_set_rid_random (push);
        af_msg_send (push, s_sock, NULL);
        reply = s_recv (s_sock, true);
        if (reply && reply->id == AF_MSG_PUSH_ACCEPTED)
            strcpy (pushes [accepted++], reply->push_id);
        af_msg_destroy (&reply);
    }
    af_msg_destroy (&push);
    char detail [128];
    snprintf (detail, sizeof detail, "%d of %d", accepted, count);
    s_check (accepted == count, "pushes to the absent device are accepted", detail);

    //  It comes back by key; LOGIN_OK, the device lists and a window of
    //  items come at once, the rest as it finishes each offer
    target = s_connect_cert (cert);
    msg = s_login_msg (account, NULL, device_id, "Raw burst");
    af_msg_send (msg, target, NULL);
    af_msg_destroy (&msg);
    reply = s_recv (target, true);
    s_check (reply && reply->id == AF_MSG_LOGIN_OK, "the target logs in again by key", NULL);
    af_msg_destroy (&reply);
    int got = 0;
    bool in_order = true;
    int64_t start = zclock_mono ();
    while (got < accepted && zclock_mono () - start < 30000) {
        reply = s_recv (target, true);
        if (!reply)
            break;
        af_msg_t *inner = NULL;
        char err [256];
        if (reply->id == AF_MSG_ITEM
        &&  af_msg_decode (reply->body, reply->body_size, &inner, err, sizeof err, NULL, NULL) == AF_OK
        &&  inner->id == AF_MSG_OFFER) {
            in_order &= streq (inner->push_id, pushes [got]);
            got++;
            af_msg_t *done = af_msg_new (AF_MSG_DONE);
            strcpy (done->push_id, inner->push_id);
            strcpy (done->state, "failed");
            strcpy (done->reason, "a raw client installs nothing");
            af_msg_send (done, target, NULL);
            af_msg_destroy (&done);
        }
        af_msg_destroy (&inner);
        af_msg_destroy (&reply);
    }
    snprintf (detail, sizeof detail, "%d of %d offers in %lld ms", got, accepted, (long long) (zclock_mono () - start));
    printf ("# %s\n", detail);
    s_check (got == accepted, "every offer arrives after the login", detail);
    s_check (in_order, "  ... in the order of the pushes", NULL);
    zsock_set_rcvtimeo (target, 3000);
    msg = af_msg_new (AF_MSG_PING);
    af_msg_send (msg, target, NULL);
    af_msg_destroy (&msg);
    bool logged_in = false;
    while ((reply = s_recv (target, false))) {
        bool pong = reply->id == AF_MSG_PONG;
        logged_in = pong && reply->logged_in;
        af_msg_destroy (&reply);
        if (pong)
            break;
    }
    s_check (logged_in, "  ... and its session is still there", NULL);
    zsock_destroy (&target);
    zcert_destroy (&cert);
    free (pushes);
}

//  host and port of a tcp:// endpoint; 0, or -1 if it is not one
static int
s_tcp_endpoint (char *host, size_t size, int *port)
{
    if (strncmp (s_endpoint, "tcp://", 6))
        return -1;
    const char *colon = strrchr (s_endpoint + 6, ':');
    if (!colon || (size_t) (colon - s_endpoint - 6) >= size)
        return -1;
    memcpy (host, s_endpoint + 6, (size_t) (colon - s_endpoint - 6));
    host [colon - s_endpoint - 6] = 0;
    *port = atoi (colon + 1);
    return 0;
}

//  A plain TCP connection from source (an address of this host) to host:port
static int
s_tcp_from (const char *source, const char *host, int port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in from = { .sin_family = AF_INET };
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    if (inet_pton (AF_INET, source, &from.sin_addr) != 1 || inet_pton (AF_INET, host, &to.sin_addr) != 1
    ||  bind (fd, (struct sockaddr *) &from, sizeof from)
    ||  connect (fd, (struct sockaddr *) &to, sizeof to)) {
        close (fd);
        return -1;
    }
    return fd;
}

//  A ZMTP 3.0 greeting (signature, version 3.0, mechanism, as-server 0,
//  filler), as a client
static void
s_greeting (uint8_t *greeting, const char *mechanism)
{
    memset (greeting, 0, 64);
    greeting [0] = 0xff;
    greeting [9] = 0x7f;
    greeting [10] = 3;
    memcpy (greeting + 12, mechanism, strlen (mechanism));
}

//  count TCP connections from source greet the broker as CURVE clients,
//  announce a handshake command as large as this build lets a frame be,
//  send all of it but its last byte and wait: memory the broker holds for
//  connections that never authenticate, and how long it holds it
static void
s_greet (int count, const char *source, int pid, long max_mib, int max_seconds)
{
    char host [64];
    int port;
    if (s_tcp_endpoint (host, sizeof host, &port)) {
        s_check (false, "the endpoint is tcp://HOST:PORT", s_endpoint);
        return;
    }
    int *fds = (int *) calloc ((size_t) count, sizeof (int));
    assert (fds);
    uint8_t greeting [64], head [9];
    s_greeting (greeting, "CURVE");
    uint64_t frame = AF_MAX_ZMQ_MSG;
    head [0] = 0x06;                            //  a command, with an 8-byte size
    for (int i = 0; i < 8; i++)
        head [1 + i] = (uint8_t) (frame >> (56 - 8 * i));
    long before = s_status_kib (pid, "VmRSS:");
    int64_t start = zclock_mono ();
    for (int i = 0; i < count; i++) {
        fds [i] = s_tcp_from (source, host, port);
        if (fds [i] >= 0
        &&  (send (fds [i], greeting, sizeof greeting, MSG_NOSIGNAL) != (ssize_t) sizeof greeting
        ||   send (fds [i], head, sizeof head, MSG_NOSIGNAL) != (ssize_t) sizeof head)) {
            close (fds [i]);
            fds [i] = -1;
        }
    }
    //  All but the last byte, 64 KiB at a time on each connection in turn
    static uint8_t piece [65536];
    for (uint64_t done = 0; done < frame - 1; ) {
        size_t n = frame - 1 - done < sizeof piece? (size_t) (frame - 1 - done): sizeof piece;
        for (int i = 0; i < count; i++)
            if (fds [i] >= 0 && send (fds [i], piece, n, MSG_NOSIGNAL) != (ssize_t) n) {
                close (fds [i]);
                fds [i] = -1;
            }
        done += n;
    }
    //  Those the broker closes; the first check tells the ones it
    //  refused at once from those it holds
    int still = 0, held = 0;
    for (int i = 0; i < count; i++)
        still += fds [i] >= 0;
    long peak = before;
    int64_t last = 0;
    for (int round = 0; still && zclock_mono () - start < (max_seconds + 10) * 1000LL; round++) {
        if (round < 10) {
            long rss = s_status_kib (pid, "VmRSS:");
            peak = rss > peak? rss: peak;
        }
        for (int i = 0; i < count; i++) {
            if (fds [i] < 0)
                continue;
            struct pollfd item = { fds [i], POLLIN, 0 };
            uint8_t buf [256];
            if (poll (&item, 1, 0) == 1 && recv (fds [i], buf, sizeof buf, MSG_DONTWAIT) <= 0) {
                close (fds [i]);
                fds [i] = -1;
                still--;
                last = zclock_mono () - start;
            }
        }
        if (round == 10)
            held = still;
        zclock_sleep (50);
    }
    for (int i = 0; i < count; i++)
        if (fds [i] >= 0)
            close (fds [i]);
    free (fds);
    char detail [256];
    snprintf (detail, sizeof detail, "%d connections from %s announcing %llu-byte frames: %d held, %d closed at once; "
              "broker RSS %ld KiB, peak %ld (+%ld MiB)", count, source, (unsigned long long) frame, held, count - held,
              before, peak, (peak - before) / 1024);
    printf ("# %s\n", detail);
    s_check (peak - before < max_mib * 1024, "the broker's memory stays bounded under connections that never authenticate", detail);
    snprintf (detail, sizeof detail, "%d still open; the last closed after %lld ms", still, (long long) last);
    printf ("# %s\n", detail);
    s_check (still == 0 && last < max_seconds * 1000LL, "  ... and it closes them when their handshake time is up", detail);
}

//  count CURVE connections from one source each send a PING: only limit
//  of them are served; when they close, the source may connect again
static void
s_sources (int count, const char *source, int limit)
{
    zsock_t **socks = (zsock_t **) calloc ((size_t) count, sizeof (zsock_t *));
    bool *answered = (bool *) calloc ((size_t) count, sizeof (bool));
    assert (socks && answered);
    zpoller_t *poller = zpoller_new (NULL);
    af_msg_t *ping = af_msg_new (AF_MSG_PING);
    for (int i = 0; i < count; i++) {
        socks [i] = s_connect_from (source);
        zpoller_add (poller, socks [i]);
        af_msg_send (ping, socks [i], NULL);
    }
    int served = 0;
    int64_t start = zclock_mono ();
    while (zclock_mono () - start < 3000) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, 100);
        if (!which)
            continue;
        af_msg_t *reply = s_recv (which, false);
        for (int i = 0; i < count; i++)
            if (socks [i] == which && reply && reply->id == AF_MSG_PONG && !answered [i]) {
                answered [i] = true;
                served++;
            }
        af_msg_destroy (&reply);
    }
    int expected = count < limit? count: limit;
    char detail [128];
    snprintf (detail, sizeof detail, "%d of %d connections from %s served, limit %d", served, count, source, limit);
    printf ("# %s\n", detail);
    s_check (served == expected, "connections from one address beyond its limit are refused", detail);
    zpoller_destroy (&poller);
    for (int i = 0; i < count; i++)
        zsock_destroy (&socks [i]);
    zclock_sleep (500);
    zsock_t *again = s_connect_from (source);
    af_msg_send (ping, again, NULL);
    af_msg_t *reply = s_recv (again, false);
    s_check (reply && reply->id == AF_MSG_PONG, "  ... and once they closed, that address is served again", NULL);
    af_msg_destroy (&reply);
    zsock_destroy (&again);
    af_msg_destroy (&ping);
    free (socks);
    free (answered);
}

//  A DEALER of mechanism NULL, PLAIN or CURVE (its own key; a wrong
//  broker key with CURVE-BAD) connects from source and sends a PING: it
//  gets no answer (the broker logs the refusal; the script checks)
static void
s_dealer (const char *mechanism, const char *source)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (streq (mechanism, "PLAIN")) {
        zsock_set_plain_username (sock, "ana");
        zsock_set_plain_password (sock, "a password");
    }
    else
    if (strncmp (mechanism, "CURVE", 5) == 0) {
        zcert_t *cert = zcert_new ();
        zcert_t *other = zcert_new ();
        zcert_apply (cert, sock);
        zsock_set_curve_serverkey (sock, zcert_public_txt (streq (mechanism, "CURVE-BAD")? other: s_broker_cert));
        zcert_destroy (&cert);
        zcert_destroy (&other);
    }
    zsock_set_linger (sock, 0);
    zsock_set_rcvtimeo (sock, 1000);
    zsock_connect (sock, "tcp://%s:0;%s", source, s_endpoint + 6);
    af_msg_t *ping = af_msg_new (AF_MSG_PING);
    af_msg_send (ping, sock, NULL);
    af_msg_destroy (&ping);
    zframe_t *frame = zframe_recv (sock);
    char name [96];
    snprintf (name, sizeof name, "a %s client gets no answer", mechanism);
    s_check (!frame, name, NULL);
    zframe_destroy (&frame);
    zsock_destroy (&sock);
}

//  count raw TCP connections from source greet the broker as a peer
//  across a network would, the second half of the greeting 50 ms after
//  the first: as a NULL or PLAIN client, or as a CURVE client whose
//  HELLO does not decrypt (CURVE-BAD). The broker answers with its own
//  greeting (mechanism CURVE) and closes each connection.
static void
s_zmtp (const char *kind, const char *source, int count)
{
    char host [64];
    int port;
    if (s_tcp_endpoint (host, sizeof host, &port)) {
        s_check (false, "the endpoint is tcp://HOST:PORT", s_endpoint);
        return;
    }
    bool bad_curve = streq (kind, "CURVE-BAD");
    uint8_t greeting [64];
    s_greeting (greeting, bad_curve? "CURVE": kind);
    int *fds = (int *) calloc ((size_t) count, sizeof (int));
    assert (fds);
    for (int i = 0; i < count; i++) {
        fds [i] = s_tcp_from (source, host, port);
        if (fds [i] >= 0 && send (fds [i], greeting, 11, MSG_NOSIGNAL) != 11) {
            close (fds [i]);
            fds [i] = -1;
        }
    }
    zclock_sleep (50);
    //  The rest of the greeting; a bad CURVE client sends a HELLO of 200
    //  bytes whose keys and box are noise
    uint8_t hello [202] = { 0x04, 200, 5, 'H', 'E', 'L', 'L', 'O', 1, 0 };
    randombytes_buf (hello + 82, sizeof hello - 82);
    for (int i = 0; i < count; i++)
        if (fds [i] >= 0
        &&  (send (fds [i], greeting + 11, sizeof greeting - 11, MSG_NOSIGNAL) != (ssize_t) sizeof greeting - 11
        ||   (bad_curve && send (fds [i], hello, sizeof hello, MSG_NOSIGNAL) != (ssize_t) sizeof hello))) {
            close (fds [i]);
            fds [i] = -1;
        }
    //  Each gets the broker's greeting, then its end
    int closed = 0, curve = 0;
    for (int i = 0; i < count; i++) {
        if (fds [i] < 0)
            continue;
        uint8_t got [64];
        size_t have = 0;
        int64_t start = zclock_mono ();
        while (zclock_mono () - start < 3000) {
            struct pollfd item = { fds [i], POLLIN, 0 };
            if (poll (&item, 1, 100) != 1)
                continue;
            uint8_t buf [256];
            ssize_t n = recv (fds [i], buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0) {
                closed++;
                break;
            }
            for (ssize_t k = 0; k < n && have < sizeof got; k++)
                got [have++] = buf [k];
        }
        curve += have >= 17 && memcmp (got + 12, "CURVE", 5) == 0;
        close (fds [i]);
    }
    free (fds);
    char detail [128];
    snprintf (detail, sizeof detail, "%d of %d closed, %d heard the broker ask for CURVE", closed, count, curve);
    printf ("# %s\n", detail);
    s_check (closed == count && curve == count, "the broker answers with its greeting (CURVE) and closes", detail);
}

//  --------------------------------------------------------------------------
//  record: RECORD_PUT (SPEC 5.47a) as the source device itself (its own
//  key, from its home), for the ask of its notice for program; then what
//  step says: "hostile" (every refusal, then one answer and a repeat),
//  "late" (the ask expired: 475), "ok" (one answer, for a kill after it)

static zsock_t *
s_connect_as (const char *secret)
{
    zcert_t *cert = zcert_load (secret);
    if (!cert)
        return NULL;
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    zcert_apply (cert, sock);
    zcert_destroy (&cert);
    zsock_set_curve_serverkey (sock, zcert_public_txt (s_broker_cert));
    zsock_set_linger (sock, 0);
    zsock_set_rcvtimeo (sock, 5000);
    zsock_connect (sock, "%s", s_endpoint);
    return sock;
}

//  A RECORD_PUT; record NULL: with code 404 instead
static af_msg_t *
s_record_put (const char *ask, const char *program, const char *asker, const char *record)
{
    af_msg_t *msg = af_msg_new (AF_MSG_RECORD_PUT);
    af_msg_set_rid_random (msg);
    snprintf (msg->ask, sizeof msg->ask, "%s", ask);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    snprintf (msg->device_id, sizeof msg->device_id, "%s", asker);
    if (record) {
        msg->data = (uint8_t *) strdup (record);
        msg->data_size = (uint32_t) strlen (record);
    }
    else {
        msg->code = 404;
        strcpy (msg->reason, "gone");
    }
    return msg;
}

static void
s_record_expect (const char *name, af_msg_t **msg_p, af_msg_id_t expected, int code)
{
    s_expect_msg (name, *msg_p, expected, code);
    af_msg_destroy (msg_p);
}

//  Log in by key as the source device (its own key, from its home)
static bool
s_login_as (const char *account, const char *device_id, const char *secret)
{
    zsock_destroy (&s_sock);
    s_sock = s_connect_as (secret);
    if (!s_sock) {
        s_check (false, "the source device's key loads", secret);
        return false;
    }
    af_msg_t *msg = s_login_msg (account, NULL, device_id, "Source");
    s_expect_msg ("LOGIN by key as the source device", msg, AF_MSG_LOGIN_OK, 0);
    af_msg_destroy (&msg);
    return true;
}

//  The source's notice for program from its outbox: its ask and asker,
//  and whether it asks for the user data (not acknowledged: the real node
//  gets it again)
static bool
s_notice_for (const char *program, char ask [AF_ID_HEX + 1], char asker [AF_ID_HEX + 1], bool *with_data)
{
    *ask = *asker = 0;
    int64_t until = zclock_mono () + 5000;
    while (!*ask && zclock_mono () < until) {
        af_msg_t *item = s_recv (s_sock, true);
        if (!item)
            break;
        af_msg_t *inner = NULL;
        char err [256];
        if (item->id == AF_MSG_ITEM
        &&  af_msg_decode (item->body, item->body_size, &inner, err, sizeof err, NULL, NULL) == AF_OK
        &&  inner->id == AF_MSG_NOTIFY && *inner->ask && inner->body_size > strlen (program)
        &&  memcmp (inner->body, program, strlen (program)) == 0 && inner->body [strlen (program)] == ' ') {
            snprintf (ask, AF_ID_HEX + 1, "%s", inner->ask);
            snprintf (asker, AF_ID_HEX + 1, "%s", inner->device_id);
            *with_data = inner->with_data;
        }
        af_msg_destroy (&inner);
        af_msg_destroy (&item);
    }
    s_check (*ask != 0, "the source's notice carries an ask", ask);
    return *ask != 0;
}

static void
s_record (const char *account, const char *device_id, const char *secret, const char *program, const char *step)
{
    char ask [AF_ID_HEX + 1], asker [AF_ID_HEX + 1];
    bool with_data;
    af_msg_t *msg;
    if (!s_login_as (account, device_id, secret) || !s_notice_for (program, ask, asker, &with_data))
        return;
    char record [512];
    snprintf (record, sizeof record, "{\"program\":\"%s\",\"versionName\":\"1.0\",\"versionCode\":1,"
              "\"settings\":{\"theme\":\"raw\"},\"startup\":[\"daily\"]}", program);
    if (streq (step, "late")) {
        msg = s_record_put (ask, program, asker, record);
        s_record_expect ("a RECORD_PUT after the wait is refused with E_ASK_EXPIRED", &msg, AF_MSG_ERROR,
                         AF_E_ASK_EXPIRED);
        return;
    }
    if (streq (step, "hostile")) {
        char other [AF_ID_HEX + 1];
        uint8_t id [AF_ID_SIZE];
        randombytes_buf (id, sizeof id);
        sodium_bin2hex (other, sizeof other, id, sizeof id);
        msg = s_record_put (other, program, asker, record);
        s_record_expect ("RECORD_PUT of an unknown ask: E_NO_ASK", &msg, AF_MSG_ERROR, AF_E_NO_ASK);
        char chess [256];
        snprintf (chess, sizeof chess, "{\"program\":\"chess\",\"versionName\":\"1\",\"versionCode\":1,"
                  "\"settings\":{},\"startup\":[]}");
        msg = s_record_put (ask, "chess", asker, chess);
        s_record_expect ("RECORD_PUT of the ask for another program: E_NO_ASK", &msg, AF_MSG_ERROR, AF_E_NO_ASK);
        msg = s_record_put (ask, program, other, record);
        s_record_expect ("RECORD_PUT of the ask naming another asker: E_NO_ASK", &msg, AF_MSG_ERROR, AF_E_NO_ASK);
        msg = s_record_put ("not-hex", program, asker, record);
        s_record_expect ("RECORD_PUT with a malformed ask: E_MALFORMED", &msg, AF_MSG_ERROR, AF_E_MALFORMED);
        msg = s_record_put (ask, program, asker, "[1, 2]");
        s_record_expect ("RECORD_PUT of a record that is no JSON object: E_MALFORMED", &msg, AF_MSG_ERROR,
                         AF_E_MALFORMED);
        msg = s_record_put (ask, program, asker, "{\"program\":\"chess\",\"versionName\":\"1\",\"versionCode\":1,"
                            "\"settings\":{},\"startup\":[]}");
        s_record_expect ("RECORD_PUT of another program's record: E_MALFORMED", &msg, AF_MSG_ERROR, AF_E_MALFORMED);
        char shape [256];
        snprintf (shape, sizeof shape, "{\"program\":\"%s\",\"versionName\":\"1\",\"versionCode\":1,"
                  "\"settings\":{\"../x\":\"y\"},\"startup\":[\"../../.profile\"]}", program);
        msg = s_record_put (ask, program, asker, shape);
        s_record_expect ("RECORD_PUT of a record that breaks its rules: E_MALFORMED", &msg, AF_MSG_ERROR,
                         AF_E_MALFORMED);
        msg = s_record_put (ask, program, asker, record);
        msg->code = 404;
        s_record_expect ("RECORD_PUT with both a record and a code: E_MALFORMED", &msg, AF_MSG_ERROR,
                         AF_E_MALFORMED);
        //  A record over AF_MAX_RECORD_MSG, packed by hand: the codec refuses it
        size_t big = AF_MAX_RECORD_MSG + 1;
        char *blob = (char *) malloc (big);
        assert (blob);
        memset (blob, ' ', big);
        blob [0] = '{';
        blob [big - 1] = '}';
        packer_t p;
        s_pk_init (&p);
        msgpack_pack_map (&p.pk, 7);
        s_pk_str (&p, "v"); msgpack_pack_uint8 (&p.pk, 1);
        s_pk_str (&p, "cmd"); s_pk_str (&p, "RECORD_PUT");
        s_pk_str (&p, "rid"); msgpack_pack_bin_with_body (&p.pk, id, sizeof id);
        s_pk_str (&p, "ask"); s_pk_str (&p, ask);
        s_pk_str (&p, "program"); s_pk_str (&p, program);
        s_pk_str (&p, "deviceId"); s_pk_str (&p, asker);
        s_pk_str (&p, "record"); msgpack_pack_bin_with_body (&p.pk, blob, big);
        s_expect_error ("RECORD_PUT of a record over AF_MAX_RECORD_MSG: E_MALFORMED", p.buf.data, p.buf.size,
                        AF_E_MALFORMED, id);
        msgpack_sbuffer_destroy (&p.buf);
        free (blob);
    }
    msg = s_record_put (ask, program, asker, record);
    s_record_expect ("the source's RECORD_PUT is taken", &msg, AF_MSG_OK, 0);
    printf ("# acked %s\n", ask);
    fflush (stdout);
    if (!streq (step, "hostile"))
        return;
    msg = s_record_put (ask, program, asker, record);
    s_record_expect ("  ... and the same again: E_ANSWERED", &msg, AF_MSG_ERROR, AF_E_ANSWERED);
    msg = s_record_put (ask, program, asker, NULL);
    s_record_expect ("  ... and a refusal after it: E_ANSWERED", &msg, AF_MSG_ERROR, AF_E_ANSWERED);
    //  Another device of the account, and another account: never theirs
    zsock_destroy (&s_sock);
    s_sock = s_connect ();
    msg = s_login_msg (account, getenv ("APPFERRY_PASSWORD")? getenv ("APPFERRY_PASSWORD"): "", NULL, "Other");
    s_expect_msg ("LOGIN as another device of the account", msg, AF_MSG_LOGIN_OK, 0);
    af_msg_destroy (&msg);
    msg = s_record_put (ask, program, asker, record);
    s_record_expect ("RECORD_PUT of another device's ask: E_NO_ASK", &msg, AF_MSG_ERROR, AF_E_NO_ASK);
    zsock_destroy (&s_sock);
    s_sock = s_connect ();
    msg = af_msg_new (AF_MSG_REGISTER);
    af_msg_set_rid_random (msg);
    strcpy (msg->account, "mallory");
    strcpy (msg->password, "long enough password");
    af_msg_send (msg, s_sock, NULL);
    af_msg_destroy (&msg);
    af_msg_t *reply = s_recv (s_sock, true);
    af_msg_destroy (&reply);
    msg = s_login_msg ("mallory", "long enough password", NULL, "Mallory");
    s_expect_msg ("LOGIN as another account", msg, AF_MSG_LOGIN_OK, 0);
    af_msg_destroy (&msg);
    msg = s_record_put (ask, program, asker, record);
    s_record_expect ("RECORD_PUT of another account's ask: E_NO_ASK", &msg, AF_MSG_ERROR, AF_E_NO_ASK);
}

//  --------------------------------------------------------------------------
//  getdata: a GET that asks for the user data (SPEC 5.47), from both ends.
//  "source ACCOUNT DEVICE_ID SECRET PROGRAM FILE": as the source device (its
//  key), its notice carries withData and an ask; pushes for the ask that
//  break a rule are refused (another target, another program, no data, a
//  malformed ask); one with FILE as the data is taken (its push ID
//  printed), and the notice is left unacknowledged, as by a source killed
//  after its push and before its record. "closed ... PROGRAM ASK ASKER": a
//  push for an ask that is closed is refused (469). "friend ACCOUNT
//  PASSWORD PROGRAM": a GET with withData from a contact is refused (403),
//  the same GET without it is not refused for that. "get ACCOUNT
//  DEVICE_ID SECRET PROGRAM SOURCE": as the asking device (its key), a GET
//  withData from SOURCE, accepted; its offer is left for the real node.

//  A PUSH of program to target with the data hash (size bytes) for ask
static af_msg_t *
s_data_push (const char *program, const char *target, const char *hash, uint64_t size, const char *ask)
{
    af_msg_t *msg = af_msg_new (AF_MSG_PUSH);
    af_msg_set_rid_random (msg);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    af_msg_add_target (msg, target);
    snprintf (msg->data_hash, sizeof msg->data_hash, "%s", hash);
    msg->data_total = size;
    msg->with_data = true;
    snprintf (msg->ask, sizeof msg->ask, "%s", ask);
    return msg;
}

static void
s_getdata_source (const char *account, const char *device_id, const char *secret, const char *program,
                  const char *file)
{
    char ask [AF_ID_HEX + 1], asker [AF_ID_HEX + 1], hash [AF_HASH_HEX + 1];
    bool with_data = false;
    if (!s_login_as (account, device_id, secret) || !s_notice_for (program, ask, asker, &with_data))
        return;
    s_check (with_data, "  ... and asks for the user data (withData)", NULL);
    zchunk_t *data = zchunk_slurp (file, AF_MAX_CHUNK);
    s_check (data && zchunk_size (data) > 0, "the data to send is read", file);
    if (!data)
        return;
    uint32_t size = (uint32_t) zchunk_size (data);
    s_check (s_upload_bytes (zchunk_data (data), size, hash), "the source's data is uploaded", hash);
    zchunk_destroy (&data);
    af_msg_t *msg = s_data_push (program, device_id, hash, size, ask);
    s_expect_msg ("a push for the ask to another device (itself) is refused: E_NO_ASK", msg, AF_MSG_ERROR,
                  AF_E_NO_ASK);
    af_msg_destroy (&msg);
    msg = s_data_push ("chess", asker, hash, size, ask);
    s_expect_msg ("a push for the ask of another program is refused: E_NO_ASK", msg, AF_MSG_ERROR, AF_E_NO_ASK);
    af_msg_destroy (&msg);
    msg = s_data_push (program, asker, "", 0, ask);
    s_expect_msg ("a push for the ask without user data is refused: E_MALFORMED", msg, AF_MSG_ERROR,
                  AF_E_MALFORMED);
    af_msg_destroy (&msg);
    msg = s_data_push (program, asker, hash, size, "not an ask");
    s_expect_msg ("a push for a malformed ask is refused: E_MALFORMED", msg, AF_MSG_ERROR, AF_E_MALFORMED);
    af_msg_destroy (&msg);
    msg = s_data_push (program, asker, hash, size, "00112233445566778899aabbccddeeff");
    s_expect_msg ("a push for an unknown ask is refused: E_NO_ASK", msg, AF_MSG_ERROR, AF_E_NO_ASK);
    af_msg_destroy (&msg);
    msg = s_data_push (program, asker, hash, size, ask);
    af_msg_send (msg, s_sock, NULL);
    af_msg_destroy (&msg);
    af_msg_t *reply = s_recv (s_sock, true);
    bool ok = reply && reply->id == AF_MSG_PUSH_ACCEPTED && reply->result_count == 1
           && streq (reply->results [0].state, "offered");
    s_check (ok, "the push of the data for the ask is accepted, offered to the asker",
             reply? af_msg_command_name (reply->id): "no reply");
    if (ok)
        printf ("# push %s\n", reply->push_id);
    af_msg_destroy (&reply);
}

static void
s_getdata_closed (const char *account, const char *device_id, const char *secret, const char *program,
                  const char *ask, const char *asker)
{
    if (!s_login_as (account, device_id, secret))
        return;
    uint8_t data [64];
    randombytes_buf (data, sizeof data);
    char hash [AF_HASH_HEX + 1];
    s_check (s_upload_bytes (data, sizeof data, hash), "some data is uploaded", hash);
    af_msg_t *msg = s_data_push (program, asker, hash, sizeof data, ask);
    s_expect_msg ("a push for an answered ask is refused: E_ANSWERED", msg, AF_MSG_ERROR, AF_E_ANSWERED);
    af_msg_destroy (&msg);
}

static void
s_getdata_get (const char *account, const char *device_id, const char *secret, const char *program,
               const char *source)
{
    if (!s_login_as (account, device_id, secret))
        return;
    af_msg_t *msg = af_msg_new (AF_MSG_GET);
    af_msg_set_rid_random (msg);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    snprintf (msg->device_id, sizeof msg->device_id, "%s", source);
    msg->with_data = true;
    af_msg_send (msg, s_sock, NULL);
    af_msg_destroy (&msg);
    af_msg_t *reply = NULL;
    do {                                //  past the items of its outbox
        af_msg_destroy (&reply);
        reply = s_recv (s_sock, true);
    } while (reply && reply->id == AF_MSG_ITEM);
    s_check (reply && reply->id == AF_MSG_PUSH_ACCEPTED, "GET withData from a device of the account is accepted",
             reply? af_msg_command_name (reply->id): "no reply");
    af_msg_destroy (&reply);
}

static void
s_getdata_friend (const char *account, const char *password, const char *program)
{
    s_check (s_password_login (s_sock, account, password) == AF_OK, "LOGIN as a new device", NULL);
    af_msg_t *msg = af_msg_new (AF_MSG_GET);
    af_msg_set_rid_random (msg);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    af_msg_set_element_count (msg, 1);
    randombytes_buf (msg->elements [0], AF_CONTACT_TOKEN_SIZE);
    msg->with_data = true;
    s_expect_msg ("GET withData from a contact (tokens) is refused: E_FORBIDDEN", msg, AF_MSG_ERROR,
                  AF_E_FORBIDDEN);
    af_msg_set_rid_random (msg);
    msg->with_data = false;
    af_msg_send (msg, s_sock, NULL);
    af_msg_t *reply = s_recv (s_sock, true);
    s_check (reply && !(reply->id == AF_MSG_ERROR && reply->code == AF_E_FORBIDDEN),
             "  ... the same GET without withData is not refused for that",
             reply? af_code_name ((int) reply->code): "no reply");
    af_msg_destroy (&reply);
    af_msg_destroy (&msg);
}

int
main (int argc, char *argv [])
{
    if (argc < 4) {
        fprintf (stderr, "usage: af_rawclient ENDPOINT BROKER_CERT battery|claim|forbidden|push ...\n");
        return 2;
    }
    //  Which shard an account is in (no broker needed): the cluster's tests
    if (streq (argv [1], "shard") && argc == 4) {
        printf ("%u\n", af_shard_of (argv [2], strlen (argv [2]), (uint32_t) atoi (argv [3])));
        return 0;
    }
    if (streq (argv [1], "wanted") && argc >= 4) {
        s_wanted ((uint32_t) atoi (argv [2]), argv + 3, (size_t) (argc - 3));
        return 0;
    }
    zsys_init ();
    zsys_set_logstream (stderr);
    s_endpoint = argv [1];
    s_broker_cert = zcert_load (argv [2]);
    if (!s_broker_cert) {
        fprintf (stderr, "cannot load %s\n", argv [2]);
        return 2;
    }
    s_sock = s_connect ();
    if (streq (argv [3], "battery"))
        s_battery ();
    else
    if (streq (argv [3], "claim") && argc == 7)
        s_claim (argv [4], argv [5], argv [6]);
    else
    if (streq (argv [3], "forbidden") && argc == 7)
        s_forbidden (argv [4], argv [5], argv [6]);
    else
    if (streq (argv [3], "backups") && argc == 7)
        s_backups (argv [4], argv [5], argv [6]);
    else
    if (streq (argv [3], "push") && argc == 6)
        s_push_battery (argv [4], argv [5]);
    else
    if (streq (argv [3], "report") && argc == 6)
        s_report_battery (argv [4], argv [5]);
    else
    if (streq (argv [3], "fill") && argc == 6)
        s_fill (argv [4], argv [5]);
    else
    if (streq (argv [3], "storm") && argc == 5)
        s_storm (atoi (argv [4]));
    else
    if (streq (argv [3], "guess") && argc == 7)
        s_guess (argv [4], atoi (argv [5]), argv [6]);
    else
    if (streq (argv [3], "hurry") && argc == 5)
        s_one_at_a_time (argv [4]);
    else
    if (streq (argv [3], "login") && argc == 7)
        s_login_expect (argv [4], argv [5], argv [6]);
    else
    if (streq (argv [3], "remove") && argc == 7)
        s_remove (argv [4], argv [5], argv [6]);
    else
    if (streq (argv [3], "upload") && argc == 7)
        s_upload_only (argv [4], argv [5], (uint32_t) atoi (argv [6]));
    else
    if (streq (argv [3], "blob") && argc == 7)
        s_blob (argv [4], argv [5], (uint32_t) atoi (argv [6]));
    else
    if (streq (argv [3], "whole") && argc == 8)
        s_whole (argv [4], argv [5], argv [6], strtoull (argv [7], NULL, 10));
    else
    if (streq (argv [3], "quota") && argc == 7)
        s_quota (argv [4], argv [5], atoi (argv [6]));
    else
    if (streq (argv [3], "steal") && argc == 8)
        s_steal (argv [4], argv [5], argv [6], strtoull (argv [7], NULL, 10));
    else
    if (streq (argv [3], "noread") && argc == 9)
        s_noread (argv [4], argv [5], atoi (argv [6]), atoi (argv [7]), atol (argv [8]));
    else
    if (streq (argv [3], "burst") && argc == 7)
        s_burst (argv [4], argv [5], atoi (argv [6]));
    else
    if (streq (argv [3], "greet") && argc == 9)
        s_greet (atoi (argv [4]), argv [5], atoi (argv [6]), atol (argv [7]), atoi (argv [8]));
    else
    if (streq (argv [3], "sources") && argc == 7)
        s_sources (atoi (argv [4]), argv [5], atoi (argv [6]));
    else
    if (streq (argv [3], "dealer") && argc == 6)
        s_dealer (argv [4], argv [5]);
    else
    if (streq (argv [3], "friends") && argc == 8)
        s_friends (argv [4], argv [5], argv [6], atoi (argv [7]));
    else
    if (streq (argv [3], "zmtp") && argc == 7)
        s_zmtp (argv [4], argv [5], atoi (argv [6]));
    else
    if (streq (argv [3], "pay") && argc == 8)
        s_pay_hostile (argv [4], argv [5], argv [6], argv [7]);
    else
    if (streq (argv [3], "record") && argc == 9)
        s_record (argv [4], argv [5], argv [6], argv [7], argv [8]);
    else
    if (streq (argv [3], "getdata") && argc == 10 && streq (argv [4], "source"))
        s_getdata_source (argv [5], argv [6], argv [7], argv [8], argv [9]);
    else
    if (streq (argv [3], "getdata") && argc == 11 && streq (argv [4], "closed"))
        s_getdata_closed (argv [5], argv [6], argv [7], argv [8], argv [9], argv [10]);
    else
    if (streq (argv [3], "getdata") && argc == 8 && streq (argv [4], "friend"))
        s_getdata_friend (argv [5], argv [6], argv [7]);
    else
    if (streq (argv [3], "getdata") && argc == 10 && streq (argv [4], "get"))
        s_getdata_get (argv [5], argv [6], argv [7], argv [8], argv [9]);
    else
    if (streq (argv [3], "payconfirm") && (argc == 8 || argc == 9))
        s_pay_repeat (argv [4], argv [5], argv [6], atoi (argv [7]), argc == 9? atoi (argv [8]): 0);
    else {
        fprintf (stderr, "unknown mode or wrong arguments\n");
        return 2;
    }
    zsock_destroy (&s_sock);
    zcert_destroy (&s_broker_cert);
    printf ("%d passed, %d failed\n", s_passed, s_failed);
    return s_failed? 1: 0;
}
