/*  fuzz_trust - the device's one-pass reader of a targets document
    (af_trust_targets_check), as af_trust_check runs it once the
    document's signature verified.

    Property: it answers one of its documented codes, with a reason when
    it refuses; and whatever it accepts is JSON that jansson reads to the
    same program, version and first target of the offered hash (the
    reader builds no tree, so it must not see another document than a
    reader that does).
*/
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "af_trust.h"

#define HASH "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > AF_MAX_META)
        return 0;
    char err [300];
    af_trust_want_t want = { "weixin", HASH, 100, 7, 1000, NULL };
    af_trust_seen_t seen = { 0, 0, "" };
    *err = 0;
    int code = af_trust_targets_check ((const char *) data, size, &want, &seen, err, sizeof err);
    assert (code == AF_OK || ((code == AF_E_FORBIDDEN || code == AF_E_MALFORMED) && *err));
    if (code != AF_OK)
        return 0;
    //  Accepted: jansson reads the same document (it may refuse what the
    //  reader skips, a real number too big for a double in a member the
    //  reader does not know: then there is nothing to compare)
    json_error_t jerr;
    json_t *doc = json_loadb ((const char *) data, size, JSON_DECODE_ANY, &jerr);
    if (doc) {
        assert (json_is_object (doc));
        assert (strcmp (json_string_value (json_object_get (doc, "program")), "weixin") == 0);
        assert ((uint64_t) json_integer_value (json_object_get (doc, "version")) == seen.targets);
        json_t *list = json_object_get (doc, "targets"), *found = NULL;
        for (size_t i = 0; !found && i < json_array_size (list); i++) {
            json_t *hash = json_object_get (json_array_get (list, i), "hash");
            if (json_is_string (hash) && strcmp (json_string_value (hash), HASH) == 0)
                found = json_array_get (list, i);
        }
        assert (found);
        assert (json_integer_value (json_object_get (found, "size")) == 100);
        assert (json_integer_value (json_object_get (found, "versionCode")) == 7);
        json_t *publisher = json_object_get (found, "publisher");
        assert (strcmp (json_is_string (publisher)? json_string_value (publisher): "", seen.key_id) == 0);
        json_decref (doc);
    }
    return 0;
}
