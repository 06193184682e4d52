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
    Prints one line per check and "N passed, M failed"; exits 1 on any failure.
    =========================================================================
*/
#include <czmq.h>
#include <msgpack.h>
#include <sodium.h>
#include "af_msg.h"

static int s_passed, s_failed;
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

static zsock_t *
s_connect (void)
{
    zcert_t *cert = zcert_new ();
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    zcert_apply (cert, sock);
    zcert_destroy (&cert);
    zsock_set_curve_serverkey (sock, zcert_public_txt (s_broker_cert));
    zsock_set_linger (sock, 0);
    zsock_set_rcvtimeo (sock, 5000);
    zsock_connect (sock, "%s", s_endpoint);
    return sock;
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
    assert (rc == 0);
    return device;
}

static void
s_battery (void)
{
    packer_t p;
    uint8_t rid [AF_ID_SIZE];
    randombytes_buf (rid, sizeof rid);

    //  A valid REGISTER to cut and bend
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

    //  Wrong types, with a rid that must be echoed
    s_pk_init (&p);
    msgpack_pack_map (&p.pk, 5);
    s_pk_str (&p, "v"); msgpack_pack_uint8 (&p.pk, 1);
    s_pk_str (&p, "rid"); msgpack_pack_bin_with_body (&p.pk, rid, sizeof rid);
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
        s_pk_str (&p, "rid"); msgpack_pack_bin_with_body (&p.pk, rid, sizeof rid);
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

    //  Huge declared lengths: nothing may be allocated for them
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

    //  Unknown command, wrong version
    uint8_t unknown [] = { 0x82, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd', 0xa6, 'D', 'E', 'L', 'E', 'T', 'E' };
    s_expect_error ("unknown command DELETE", unknown, sizeof unknown, AF_E_UNKNOWN_COMMAND, NULL);
    uint8_t v2 [] = { 0x82, 0xa1, 'v', 0x02, 0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G' };
    s_expect_error ("protocol version 2 (versions listed)", v2, sizeof v2, AF_E_VERSION, NULL);
    uint8_t v0 [] = { 0x82, 0xa1, 'v', 0x00, 0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G' };
    s_expect_error ("protocol version 0", v0, sizeof v0, AF_E_VERSION, NULL);

    //  Oversize frame (above the protocol limit, below libzmq's cut-off)
    size_t big = AF_MAX_MSG + AF_MAX_MSG / 2;
    uint8_t *oversize = (uint8_t *) calloc (1, big);
    s_expect_error ("1.5 MiB frame", oversize, big, AF_E_TOO_BIG, NULL);
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

    //  Well-formed but not allowed here
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

    //  After all that: a normal register and login work on the same connection
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
}

//  A new key claims a device bound to another key: refused with or
//  without the right password.
static void
s_claim (const char *account, const char *password, const char *device_id)
{
    af_msg_t *msg = af_msg_new (AF_MSG_LOGIN);
    af_msg_set_rid_random (msg);
    snprintf (msg->account, sizeof msg->account, "%s", account);
    snprintf (msg->password, sizeof msg->password, "%s", password);
    snprintf (msg->device_id, sizeof msg->device_id, "%s", device_id);
    msg->device = s_device ("Impostor");
    msg->has_device = true;
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
    af_msg_t *msg = af_msg_new (AF_MSG_LOGIN);
    af_msg_set_rid_random (msg);
    snprintf (msg->account, sizeof msg->account, "%s", account);
    snprintf (msg->password, sizeof msg->password, "%s", password);
    msg->device = s_device ("Second key");
    msg->has_device = true;
    s_expect_msg ("LOGIN as a new device", msg, AF_MSG_LOGIN_OK, 0);
    snprintf (msg->account, sizeof msg->account, "%s", other);
    s_expect_msg ("LOGIN to another account on the same session", msg, AF_MSG_ERROR, AF_E_FORBIDDEN);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_NOTIFY);
    af_msg_set_rid_random (msg);
    strcpy (msg->device_id, "00000000000000000000000000000000");
    af_msg_set_body (msg, "hi", 2);
    s_expect_msg ("NOTIFY to a device of no account", msg, AF_MSG_ERROR, AF_E_NO_DEVICE);
    af_msg_destroy (&msg);
}

//  Hostile push traffic from a logged-in device: fetching what was not
//  offered, uploads that lie, outcomes and acks that name nothing
static void
s_push_battery (const char *account, const char *password)
{
    af_msg_t *msg = af_msg_new (AF_MSG_LOGIN);
    af_msg_set_rid_random (msg);
    snprintf (msg->account, sizeof msg->account, "%s", account);
    snprintf (msg->password, sizeof msg->password, "%s", password);
    msg->device = s_device ("Raw pusher");
    msg->has_device = true;
    s_expect_msg ("LOGIN as a new device", msg, AF_MSG_LOGIN_OK, 0);
    af_msg_destroy (&msg);
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
    msg->target_count = 1;
    strcpy (msg->targets [0], "all");
    strcpy (msg->data_hash, hex);
    msg->data_total = sizeof data;
    strcpy (msg->node_version, AF_VERSION);         //  meets it_push's policy
    msg->attest_count = 1;
    strcpy (msg->attest [0], "malware_scan=clean");
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
    af_msg_t *msg = af_msg_new (AF_MSG_LOGIN);
    af_msg_set_rid_random (msg);
    snprintf (msg->account, sizeof msg->account, "%s", account);
    snprintf (msg->password, sizeof msg->password, "%s", password);
    msg->device = s_device ("Raw reporter");
    msg->has_device = true;
    af_msg_send (msg, s_sock, NULL);
    af_msg_t *ok = s_recv (s_sock, true);
    char device_id [AF_ID_HEX + 1] = "";
    if (ok && ok->id == AF_MSG_LOGIN_OK)
        strcpy (device_id, ok->device_id);
    s_check (*device_id, "LOGIN as a new device", NULL);
    af_msg_destroy (&ok);
    af_msg_destroy (&msg);

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

int
main (int argc, char *argv [])
{
    if (argc < 4) {
        fprintf (stderr, "usage: af_rawclient ENDPOINT BROKER_CERT battery|claim|forbidden|push ...\n");
        return 2;
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
    if (streq (argv [3], "push") && argc == 6)
        s_push_battery (argv [4], argv [5]);
    else
    if (streq (argv [3], "report") && argc == 6)
        s_report_battery (argv [4], argv [5]);
    else {
        fprintf (stderr, "unknown mode or wrong arguments\n");
        return 2;
    }
    zsock_destroy (&s_sock);
    zcert_destroy (&s_broker_cert);
    printf ("%d passed, %d failed\n", s_passed, s_failed);
    return s_failed? 1: 0;
}
