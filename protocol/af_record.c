/*  =========================================================================
    af_record - the shape of what an install changes beyond its files

    The rules are in af_record.h. Why a class of its own in protocol/ and
    not part of nodes/af_install: the broker bounds a record it relays
    (S0.5) with the same rules the node applies it by, and the broker does
    not link the node's installer.
    =========================================================================
*/
#include "af_record.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_refuse (char *err, size_t errlen, const char *format, ...)
{
    if (err && errlen) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, errlen, format, args);
        va_end (args);
    }
    return AF_E_MALFORMED;
}

//  1 to max bytes of A-Z a-z 0-9 . _ -
static bool
s_name_valid (const char *name, size_t max)
{
    size_t len = name? strlen (name): 0;
    if (len == 0 || len > max)
        return false;
    for (const char *c = name; *c; c++)
        if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') && !(*c >= '0' && *c <= '9')
        &&  !strchr ("._-", *c))
            return false;
    return true;
}

bool
af_record_startup_name_valid (const char *name)
{
    return s_name_valid (name, AF_MAX_STARTUP_NAME) && *name != '.';
}

int
af_record_settings_check (const json_t *settings, char *err, size_t errlen)
{
    if (!json_is_object (settings))
        return s_refuse (err, errlen, "settings must be an object of strings");
    if (json_object_size (settings) > AF_MAX_SETTINGS)
        return s_refuse (err, errlen, "more than %d settings", AF_MAX_SETTINGS);
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) settings, key, value) {
        if (!s_name_valid (key, AF_MAX_SETTING_KEY))
            return s_refuse (err, errlen, "setting '%.80s' is not a key (1 to %d of A-Z a-z 0-9 . _ -)",
                             key, AF_MAX_SETTING_KEY);
        if (!json_is_string (value))
            return s_refuse (err, errlen, "setting '%s' is not a string", key);
        const char *text = json_string_value (value);
        size_t len = json_string_length (value);
        if (len > AF_MAX_SETTING_VALUE)
            return s_refuse (err, errlen, "setting '%s' is longer than %d bytes", key, AF_MAX_SETTING_VALUE);
        if (strlen (text) != len || !af_utf8_valid ((const uint8_t *) text, len))
            return s_refuse (err, errlen, "setting '%s' is not UTF-8 text without NUL", key);
    }
    return AF_OK;
}

int
af_record_startup_check (const json_t *startup, char *err, size_t errlen)
{
    if (!json_is_array (startup))
        return s_refuse (err, errlen, "startup must be an array of names");
    if (json_array_size (startup) > AF_MAX_STARTUP)
        return s_refuse (err, errlen, "more than %d start-up entries", AF_MAX_STARTUP);
    size_t index;
    json_t *name;
    json_array_foreach (startup, index, name) {
        const char *text = json_string_value (name);
        if (!text || strlen (text) != json_string_length (name) || !af_record_startup_name_valid (text))
            return s_refuse (err, errlen, "start-up entry %zu is not a name (1 to %d of A-Z a-z 0-9 . _ -, "
                             "not starting with '.')", index, AF_MAX_STARTUP_NAME);
        for (size_t i = 0; i < index; i++)
            if (strcmp (json_string_value (json_array_get (startup, i)), text) == 0)
                return s_refuse (err, errlen, "start-up entry '%s' is given twice", text);
    }
    return AF_OK;
}

int
af_record_manifest_parse (const char *text, size_t len, json_t **manifest, char *err, size_t errlen)
{
    assert (manifest);
    *manifest = NULL;
    if (len > AF_MANIFEST_MAX)
        return s_refuse (err, errlen, AF_MANIFEST_NAME ": larger than %d bytes", AF_MANIFEST_MAX);
    json_error_t jerr;
    json_t *doc = json_loadb (text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object (doc)) {
        s_refuse (err, errlen, AF_MANIFEST_NAME ": %s", doc? "not a JSON object": jerr.text);
        json_decref (doc);
        return AF_E_MALFORMED;
    }
    int code = AF_OK;
    char why [200] = "";
    const char *key;
    json_t *value;
    json_object_foreach (doc, key, value)
        if (strcmp (key, "settings") && strcmp (key, "startup")) {
            snprintf (why, sizeof why, "unknown key '%.60s' (only settings and startup)", key);
            code = AF_E_MALFORMED;
            break;
        }
    json_t *settings = json_object_get (doc, "settings");
    json_t *startup = json_object_get (doc, "startup");
    if (code == AF_OK && settings)
        code = af_record_settings_check (settings, why, sizeof why);
    if (code == AF_OK && startup)
        code = af_record_startup_check (startup, why, sizeof why);
    if (code == AF_OK) {
        *manifest = json_object ();
        json_object_set_new (*manifest, "settings", settings? json_deep_copy (settings): json_object ());
        json_object_set_new (*manifest, "startup", startup? json_deep_copy (startup): json_array ());
    }
    json_decref (doc);
    if (code != AF_OK)
        return s_refuse (err, errlen, AF_MANIFEST_NAME ": %s", why);
    assert (*manifest);
    return AF_OK;
}

int
af_install_record_check (const json_t *record, char *err, size_t errlen)
{
    if (!json_is_object (record))
        return s_refuse (err, errlen, "the install record is not an object");
    size_t size = json_dumpb (record, NULL, 0, JSON_COMPACT);
    if (size == 0 || size > AF_RECORD_MAX)
        return s_refuse (err, errlen, "the install record is larger than %d bytes", AF_RECORD_MAX);
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) record, key, value)
        if (strcmp (key, "program") && strcmp (key, "versionName") && strcmp (key, "versionCode")
        &&  strcmp (key, "settings") && strcmp (key, "startup"))
            return s_refuse (err, errlen, "the install record has an unknown key '%.60s'", key);
    char why [200];
    const char *program = json_string_value (json_object_get (record, "program"));
    const char *name = json_string_value (json_object_get (record, "versionName"));
    json_t *code = json_object_get (record, "versionCode");
    if (!program || af_program_check (program, why, sizeof why) != AF_OK)
        return s_refuse (err, errlen, "the install record's program: %s", program? why: "missing");
    if (!name || strlen (name) > AF_MAX_VERSION_NAME || strlen (name) != json_string_length (
            json_object_get (record, "versionName")))
        return s_refuse (err, errlen, "the install record's versionName is missing or longer than %d bytes",
                         AF_MAX_VERSION_NAME);
    if (!json_is_integer (code) || json_integer_value (code) < 0)
        return s_refuse (err, errlen, "the install record's versionCode is not an integer >= 0");
    if (!json_object_get (record, "settings") || !json_object_get (record, "startup"))
        return s_refuse (err, errlen, "the install record has no settings or no startup");
    if (af_record_settings_check (json_object_get (record, "settings"), why, sizeof why) != AF_OK
    ||  af_record_startup_check (json_object_get (record, "startup"), why, sizeof why) != AF_OK)
        return s_refuse (err, errlen, "the install record's %s", why);
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Self test

static int
s_manifest (const char *text, char *err, size_t errlen)
{
    json_t *manifest;
    int code = af_record_manifest_parse (text, strlen (text), &manifest, err, errlen);
    assert ((code == AF_OK) == (manifest != NULL));
    json_decref (manifest);
    return code;
}

void
af_record_test (bool verbose)
{
    if (verbose)
        printf (" * af_record: ");
    char err [256];
    json_t *manifest;

    //  A full manifest, and the two parts left out: empty ones
    const char *full = "{\"settings\": {\"theme\": \"dark\", \"Sound.volume-2_x\": \"7\"}, \"startup\": [\"tips\", \"sync.d\"]}";
    assert (af_record_manifest_parse (full, strlen (full), &manifest, err, sizeof err) == AF_OK);
    assert (json_object_size (json_object_get (manifest, "settings")) == 2);
    assert (json_array_size (json_object_get (manifest, "startup")) == 2);
    json_decref (manifest);
    assert (af_record_manifest_parse ("{}", 2, &manifest, err, sizeof err) == AF_OK);
    assert (json_is_object (json_object_get (manifest, "settings")) && json_object_size (json_object_get (manifest, "settings")) == 0);
    assert (json_is_array (json_object_get (manifest, "startup")) && json_array_size (json_object_get (manifest, "startup")) == 0);
    json_decref (manifest);

    //  Each rule refuses, naming what
    struct { const char *text, *says; } bad [] = {
        { "[1]", "not a JSON object" },
        { "{\"settings\": {}", "appferry.json" },
        { "{\"settings\": {}, \"settings\": {}}", "duplicate" },
        { "{\"run\": \"rm -rf /\"}", "unknown key 'run'" },
        { "{\"settings\": []}", "settings must be an object" },
        { "{\"settings\": {\"a\": 1}}", "'a' is not a string" },
        { "{\"settings\": {\"a/b\": \"x\"}}", "'a/b' is not a key" },
        { "{\"settings\": {\"\": \"x\"}}", "is not a key" },
        { "{\"settings\": {\"\\u00e9\": \"x\"}}", "is not a key" },
        { "{\"startup\": {}}", "startup must be an array" },
        { "{\"startup\": [\"../x\"]}", "entry 0 is not a name" },
        { "{\"startup\": [\"ok\", \".hidden\"]}", "entry 1 is not a name" },
        { "{\"startup\": [\"a/b\"]}", "not a name" },
        { "{\"startup\": [\"\"]}", "not a name" },
        { "{\"startup\": [7]}", "not a name" },
        { "{\"startup\": [\"x\", \"x\"]}", "'x' is given twice" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        err [0] = 0;
        assert (s_manifest (bad [i].text, err, sizeof err) == AF_E_MALFORMED);
        assert (strstr (err, bad [i].says));
    }
    //  The limits, at and one past each
    char *text = (char *) malloc (AF_MANIFEST_MAX + 64);
    assert (text);
    char key [AF_MAX_SETTING_KEY + 2];
    memset (key, 'k', sizeof key);
    key [AF_MAX_SETTING_KEY] = 0;
    snprintf (text, AF_MANIFEST_MAX, "{\"settings\": {\"%s\": \"v\"}}", key);
    assert (s_manifest (text, err, sizeof err) == AF_OK);
    key [AF_MAX_SETTING_KEY] = 'k', key [AF_MAX_SETTING_KEY + 1] = 0;
    snprintf (text, AF_MANIFEST_MAX, "{\"settings\": {\"%s\": \"v\"}}", key);
    assert (s_manifest (text, err, sizeof err) == AF_E_MALFORMED && strstr (err, "is not a key"));
    char value [AF_MAX_SETTING_VALUE + 2];
    memset (value, 'v', sizeof value);
    value [AF_MAX_SETTING_VALUE] = 0;
    snprintf (text, AF_MANIFEST_MAX, "{\"settings\": {\"k\": \"%s\"}}", value);
    assert (s_manifest (text, err, sizeof err) == AF_OK);
    value [AF_MAX_SETTING_VALUE] = 'v', value [AF_MAX_SETTING_VALUE + 1] = 0;
    snprintf (text, AF_MANIFEST_MAX, "{\"settings\": {\"k\": \"%s\"}}", value);
    assert (s_manifest (text, err, sizeof err) == AF_E_MALFORMED && strstr (err, "longer than 1024"));
    //  NUL inside a value: jansson refuses \u0000 unless asked, and a value
    //  made with one is refused here
    assert (s_manifest ("{\"settings\": {\"k\": \"a\\u0000b\"}}", err, sizeof err) == AF_E_MALFORMED);
    json_t *settings = json_object ();
    json_object_set_new (settings, "k", json_stringn ("a\0b", 3));
    assert (af_record_settings_check (settings, err, sizeof err) == AF_E_MALFORMED && strstr (err, "without NUL"));
    json_decref (settings);
    for (int count = AF_MAX_SETTINGS; count <= AF_MAX_SETTINGS + 1; count++) {
        size_t used = (size_t) snprintf (text, AF_MANIFEST_MAX, "{\"settings\": {");
        for (int i = 0; i < count; i++)
            used += (size_t) snprintf (text + used, AF_MANIFEST_MAX - used, "%s\"k%d\": \"v\"", i? ", ": "", i);
        snprintf (text + used, AF_MANIFEST_MAX - used, "}}");
        int code = s_manifest (text, err, sizeof err);
        assert (count == AF_MAX_SETTINGS? code == AF_OK: code == AF_E_MALFORMED && strstr (err, "more than 64 settings"));
    }
    for (int count = AF_MAX_STARTUP; count <= AF_MAX_STARTUP + 1; count++) {
        size_t used = (size_t) snprintf (text, AF_MANIFEST_MAX, "{\"startup\": [");
        for (int i = 0; i < count; i++)
            used += (size_t) snprintf (text + used, AF_MANIFEST_MAX - used, "%s\"s%d\"", i? ", ": "", i);
        snprintf (text + used, AF_MANIFEST_MAX - used, "]}");
        int code = s_manifest (text, err, sizeof err);
        assert (count == AF_MAX_STARTUP? code == AF_OK: code == AF_E_MALFORMED && strstr (err, "more than 16 start-up"));
    }
    char name [AF_MAX_STARTUP_NAME + 2];
    memset (name, 'n', sizeof name);
    name [AF_MAX_STARTUP_NAME] = 0;
    assert (af_record_startup_name_valid (name));
    name [AF_MAX_STARTUP_NAME] = 'n', name [AF_MAX_STARTUP_NAME + 1] = 0;
    assert (!af_record_startup_name_valid (name));
    //  Whitespace makes a manifest over AF_MANIFEST_MAX, whatever it holds
    memset (text, ' ', AF_MANIFEST_MAX + 1);
    text [0] = '{', text [AF_MANIFEST_MAX] = '}';
    assert (af_record_manifest_parse (text, AF_MANIFEST_MAX + 1, &manifest, err, sizeof err) == AF_E_MALFORMED
            && strstr (err, "larger than") && !manifest);
    assert (af_record_manifest_parse (text + 1, AF_MANIFEST_MAX, &manifest, err, sizeof err) == AF_E_MALFORMED);
    text [1] = '{';
    assert (af_record_manifest_parse (text + 1, AF_MANIFEST_MAX, &manifest, err, sizeof err) == AF_OK);
    json_decref (manifest);
    free (text);

    //  Exported records: exactly the five keys, each checked, and a size
    json_t *record = json_pack ("{s:s, s:s, s:i, s:{s:s}, s:[s]}", "program", "chess", "versionName", "1.0",
                                "versionCode", 3, "settings", "theme", "dark", "startup", "tips");
    assert (af_install_record_check (record, err, sizeof err) == AF_OK);
    assert (af_install_record_check (record, NULL, 0) == AF_OK);
    json_t *copy = json_deep_copy (record);
    json_object_set_new (copy, "files", json_array ());
    assert (af_install_record_check (copy, err, sizeof err) == AF_E_MALFORMED && strstr (err, "unknown key 'files'"));
    json_decref (copy);
    struct { const char *key; json_t *value; const char *says; } broken [] = {
        { "program", json_string ("../etc"), "program" },
        { "program", json_integer (1), "program: missing" },
        { "versionName", json_string ("12345678901234567890123456789012"), "versionName" },
        { "versionCode", json_integer (-1), "versionCode" },
        { "versionCode", json_string ("1"), "versionCode" },
        { "settings", json_pack ("{s:i}", "theme", 1), "setting 'theme' is not a string" },
        { "startup", json_pack ("[s]", ".x"), "not a name" },
        { "startup", json_object (), "must be an array" },
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken [0]; i++) {
        copy = json_deep_copy (record);
        json_object_set_new (copy, broken [i].key, broken [i].value);
        assert (af_install_record_check (copy, err, sizeof err) == AF_E_MALFORMED && strstr (err, broken [i].says));
        json_decref (copy);
    }
    copy = json_deep_copy (record);
    json_object_del (copy, "startup");
    assert (af_install_record_check (copy, err, sizeof err) == AF_E_MALFORMED && strstr (err, "no settings or no startup"));
    json_decref (copy);
    assert (af_install_record_check (json_object_get (record, "startup"), err, sizeof err) == AF_E_MALFORMED);
    assert (af_install_record_check (NULL, err, sizeof err) == AF_E_MALFORMED);
    //  The largest record the rules allow fits AF_RECORD_MAX: every value
    //  all control characters, each written as \u0001 (six bytes)
    copy = json_deep_copy (record);
    json_object_set_new (copy, "versionName", json_string ("\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"
                         "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"));
    json_object_set_new (copy, "versionCode", json_integer (INT64_MAX));
    settings = json_object ();
    memset (value, 1, sizeof value);
    value [AF_MAX_SETTING_VALUE] = 0;
    for (int i = 0; i < AF_MAX_SETTINGS; i++) {
        memset (key, 'k', sizeof key);
        snprintf (key + AF_MAX_SETTING_KEY - 4, 5, "%04d", i);
        json_object_set_new (settings, key, json_string (value));
    }
    json_object_set_new (copy, "settings", settings);
    json_t *startup = json_array ();
    for (int i = 0; i < AF_MAX_STARTUP; i++) {
        memset (name, 'n', sizeof name);
        snprintf (name + AF_MAX_STARTUP_NAME - 4, 5, "%04d", i);
        json_array_append_new (startup, json_string (name));
    }
    json_object_set_new (copy, "startup", startup);
    assert (json_dumpb (copy, NULL, 0, JSON_COMPACT) > 380 * 1024);
    assert (af_install_record_check (copy, err, sizeof err) == AF_OK);
    json_decref (copy);
    json_decref (record);
    if (verbose)
        printf ("OK\n");
}
