/*  af_limits.c - names for error codes, IDs from text, UTF-8 checks */
#include "af_limits.h"
#include <stdio.h>
#include <string.h>
#include <sodium.h>

const char *
af_code_name (int code)
{
    switch (code) {
        case AF_OK:                 return "OK";
        case AF_E_MALFORMED:        return "E_MALFORMED";
        case AF_E_BAD_PASSWORD:     return "E_BAD_PASSWORD";
        case AF_E_FORBIDDEN:        return "E_FORBIDDEN";
        case AF_E_NO_ACCOUNT:       return "E_NO_ACCOUNT";
        case AF_E_UNKNOWN_COMMAND:  return "E_UNKNOWN_COMMAND";
        case AF_E_NO_DEVICE:        return "E_NO_DEVICE";
        case AF_E_ACCOUNT_EXISTS:   return "E_ACCOUNT_EXISTS";
        case AF_E_REMOVED:          return "E_REMOVED";
        case AF_E_TOO_BIG:          return "E_TOO_BIG";
        case AF_E_BAD_DEVICE:       return "E_BAD_DEVICE";
        case AF_E_RATE_LIMITED:     return "E_RATE_LIMITED";
        case AF_E_VERSION:          return "E_VERSION";
        case AF_E_KEY_MISMATCH:     return "E_KEY_MISMATCH";
        case AF_E_NOT_LOGGED_IN:    return "E_NOT_LOGGED_IN";
        case AF_E_TOO_MANY:         return "E_TOO_MANY";
        case AF_E_UNKNOWN_PROGRAM:  return "E_UNKNOWN_PROGRAM";
        case AF_E_NO_FIT:           return "E_NO_FIT";
        case AF_E_POLICY:           return "E_POLICY";
        case AF_E_QUOTA:            return "E_QUOTA";
        case AF_E_PAYMENT_REQUIRED: return "E_PAYMENT_REQUIRED";
        case AF_E_EVAL_LIMIT:       return "E_EVAL_LIMIT";
        case AF_E_NOT_FRIENDS:      return "E_NOT_FRIENDS";
        case AF_E_NOT_SHARED:       return "E_NOT_SHARED";
        case AF_E_REFUSED:          return "E_REFUSED";
        case AF_E_NO_BLOB:          return "E_NO_BLOB";
        case AF_E_NO_CONFIG:        return "E_NO_CONFIG";
        case AF_E_NO_INTENT:        return "E_NO_INTENT";
        case AF_E_NOT_THERE:        return "E_NOT_THERE";
        case AF_E_NO_ASK:           return "E_NO_ASK";
        case AF_E_ANSWERED:         return "E_ANSWERED";
        case AF_E_ASK_EXPIRED:      return "E_ASK_EXPIRED";
        case AF_E_NO_BACKUP:        return "E_NO_BACKUP";
        case AF_E_NO_VERSION:       return "E_NO_VERSION";
        case AF_E_INTERNAL:         return "E_INTERNAL";
        case AF_E_UNAVAILABLE:      return "E_UNAVAILABLE";
        default:                    return "E_UNKNOWN";
    }
}

//  size bytes from exactly 2 x size lowercase hex digits
static int
s_from_hex (const char *hex, unsigned char *out, size_t size)
{
    size_t bin_len = 0;
    for (const char *p = hex; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return AF_E_MALFORMED;
    if (strlen (hex) != 2 * size
    ||  sodium_hex2bin (out, size, hex, 2 * size, NULL, &bin_len, NULL) || bin_len != size)
        return AF_E_MALFORMED;
    return AF_OK;
}

int
af_id_from_hex (const char *hex, unsigned char *id)
{
    return s_from_hex (hex, id, AF_ID_SIZE);
}

int
af_hash_from_hex (const char *hex, unsigned char *hash)
{
    unsigned char scratch [AF_HASH_SIZE];
    return s_from_hex (hex, hash? hash: scratch, AF_HASH_SIZE);
}

bool
af_utf8_valid (const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = p [i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; }
        else return false;
        if (i + n >= len)
            return false;           //  sequence runs past the end
        for (size_t k = 1; k <= n; k++) {
            if ((p [i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p [i + k] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
        ||  cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

//  (SPEC.md 4.1 says the same)
_Static_assert (AF_MAX_PROGRAM == 64, "the reason text below names the limit");

int
af_program_check (const char *program, char *err, size_t errlen)
{
    const char *why = NULL;
    size_t len = program? strlen (program): 0;
    if (len == 0)
        why = "it is empty";
    else
    if (len > AF_MAX_PROGRAM)
        why = "it is longer than 64 bytes";
    else
    if (!(*program >= 'a' && *program <= 'z') && !(*program >= '0' && *program <= '9'))
        why = "it must start with a-z or 0-9";
    else
    if (strstr (program, ".."))
        why = "it must not contain '..'";
    else
        for (const char *c = program; *c && !why; c++)
            if (!(*c >= 'a' && *c <= 'z') && !(*c >= '0' && *c <= '9') && !strchr ("._-", *c))
                why = "it may hold only a-z 0-9 . _ -";
    if (why && err && errlen)
        snprintf (err, errlen, "not a program ID: %s", why);
    return why? AF_E_MALFORMED: AF_OK;
}

int
af_currency_check (const char *currency, char *err, size_t errlen)
{
    size_t len = strnlen (currency, AF_CURRENCY + 1);
    bool ok = len == AF_CURRENCY;
    for (size_t i = 0; ok && i < len; i++)
        ok = currency [i] >= 'A' && currency [i] <= 'Z';
    if (!ok && err)
        snprintf (err, errlen, "not an ISO 4217 currency code (three letters A-Z): '%.8s'", currency);
    return ok? AF_OK: AF_E_MALFORMED;
}
