/*  =========================================================================
    af_device - a device description: what a package must fit

    Parsing is strict about the fields it knows and silent about the rest,
    so a bundletool device spec (which carries more keys than we use) is
    accepted as is. Every string is copied into a fixed buffer after its
    length is checked; nothing here allocates except af_device_to_json.
    =========================================================================
*/
#include "af_device.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

static const char *s_platforms [AF_PLATFORM_COUNT] = {
    "", "android", "ios", "harmonyos", "windows", "macos", "linux", "tvos"
};
static const char *s_forms [AF_FORM_COUNT] = {
    "", "phone", "tablet", "tv", "pc", "watch"
};

af_platform_t
af_platform_from_name (const char *name)
{
    for (int i = 1; name && i < AF_PLATFORM_COUNT; i++)
        if (strcmp (name, s_platforms [i]) == 0)
            return (af_platform_t) i;
    return AF_PLATFORM_NONE;
}

const char *
af_platform_name (af_platform_t platform)
{
    return platform > 0 && platform < AF_PLATFORM_COUNT? s_platforms [platform]: "";
}

af_form_t
af_form_from_name (const char *name)
{
    for (int i = 1; name && i < AF_FORM_COUNT; i++)
        if (strcmp (name, s_forms [i]) == 0)
            return (af_form_t) i;
    return AF_FORM_NONE;
}

const char *
af_form_name (af_form_t form)
{
    return form > 0 && form < AF_FORM_COUNT? s_forms [form]: "";
}

int
af_version_parse (const char *text, uint32_t *value)
{
    static const uint32_t limits [3] = { 4095, 1023, 1023 };
    uint32_t parts [3] = { 0, 0, 0 };
    int count = 0;
    const char *p = text;
    if (!p || !*p)
        return -1;
    while (count < 3) {
        if (!isdigit ((unsigned char) *p))
            return -1;
        uint32_t n = 0;
        while (isdigit ((unsigned char) *p)) {
            n = n * 10 + (uint32_t) (*p++ - '0');
            if (n > limits [count])
                return -1;
        }
        parts [count++] = n;
        if (*p == 0)
            break;
        if (*p != '.' || count == 3)
            return -1;
        p++;
    }
    *value = parts [0] << 20 | parts [1] << 10 | parts [2];
    return 0;
}

char *
af_version_format (uint32_t value, char *buf, size_t size)
{
    uint32_t major = value >> 20, minor = (value >> 10) & 1023, patch = value & 1023;
    if (patch)
        snprintf (buf, size, "%u.%u.%u", major, minor, patch);
    else
    if (minor)
        snprintf (buf, size, "%u.%u", major, minor);
    else
        snprintf (buf, size, "%u", major);
    return buf;
}

const char *
af_android_release (uint32_t sdk)
{
    static const char *releases [] = {
        NULL, "1.0", "1.1", "1.5", "1.6", "2.0", "2.0.1", "2.1", "2.2", "2.3",
        "2.3.3", "3.0", "3.1", "3.2", "4.0", "4.0.3", "4.1", "4.2", "4.3", "4.4",
        "4.4W", "5.0", "5.1", "6", "7.0", "7.1", "8.0", "8.1", "9", "10",
        "11", "12", "12L", "13", "14", "15", "16"
    };
    if (sdk < sizeof (releases) / sizeof (releases [0]))
        return releases [sdk];
    return NULL;
}

//  --------------------------------------------------------------------------
//  JSON parsing helpers: each returns 0 or -1 with err set

static int
s_get_string (json_t *obj, const char *key, char *buf, size_t size,
              bool required, char *err, size_t errlen)
{
    json_t *value = json_object_get (obj, key);
    if (!value) {
        if (required) {
            snprintf (err, errlen, "field '%s' is missing", key);
            return -1;
        }
        return 0;
    }
    if (!json_is_string (value)) {
        snprintf (err, errlen, "field '%s': expected a string", key);
        return -1;
    }
    size_t len = json_string_length (value);
    if (len >= size) {
        snprintf (err, errlen, "field '%s': longer than %zu bytes", key, size - 1);
        return -1;
    }
    memcpy (buf, json_string_value (value), len);
    buf [len] = 0;
    return 0;
}

static int
s_get_uint (json_t *obj, const char *key, uint32_t *out, uint32_t max,
            bool required, char *err, size_t errlen)
{
    json_t *value = json_object_get (obj, key);
    if (!value) {
        if (required) {
            snprintf (err, errlen, "field '%s' is missing", key);
            return -1;
        }
        return 0;
    }
    if (!json_is_integer (value)
    ||  json_integer_value (value) < 0
    ||  json_integer_value (value) > (json_int_t) max) {
        snprintf (err, errlen, "field '%s': expected an integer 0..%u", key, max);
        return -1;
    }
    *out = (uint32_t) json_integer_value (value);
    return 0;
}

static int
s_get_strings (json_t *obj, const char *key, char *base, size_t stride,
               uint32_t max, uint32_t *count, char *err, size_t errlen)
{
    json_t *value = json_object_get (obj, key);
    *count = 0;
    if (!value)
        return 0;
    if (!json_is_array (value)) {
        snprintf (err, errlen, "field '%s': expected an array of strings", key);
        return -1;
    }
    if (json_array_size (value) > max) {
        snprintf (err, errlen, "field '%s': more than %u entries", key, max);
        return -1;
    }
    size_t index;
    json_t *item;
    json_array_foreach (value, index, item) {
        if (!json_is_string (item) || json_string_length (item) >= stride) {
            snprintf (err, errlen, "field '%s' entry %zu: expected a string of at most %zu bytes",
                      key, index, stride - 1);
            return -1;
        }
        memcpy (base + index * stride, json_string_value (item), json_string_length (item) + 1);
    }
    *count = (uint32_t) json_array_size (value);
    return 0;
}

int
af_device_from_json (af_device_t *self, const char *json_text, char *err, size_t errlen)
{
    assert (self);
    memset (self, 0, sizeof (*self));
    json_error_t jerr;
    json_t *root = json_loads (json_text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf (err, errlen, "invalid JSON at line %d: %s", jerr.line, jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object (root)) {
        snprintf (err, errlen, "expected a JSON object");
        goto done;
    }
    if (s_get_string (root, "name", self->name, sizeof self->name, false, err, errlen)
    ||  s_get_string (root, "platform", self->platform, sizeof self->platform, false, err, errlen)
    ||  s_get_string (root, "osVersion", self->os_version, sizeof self->os_version, false, err, errlen)
    ||  s_get_uint (root, "sdkVersion", &self->sdk, AF_MAX_SDK, false, err, errlen)
    ||  s_get_string (root, "model", self->model, sizeof self->model, true, err, errlen)
    ||  s_get_string (root, "manufacturer", self->manufacturer, sizeof self->manufacturer, false, err, errlen)
    ||  s_get_string (root, "formFactor", self->form_factor, sizeof self->form_factor, true, err, errlen)
    ||  s_get_uint (root, "screenWidth", &self->screen_w, AF_MAX_SCREEN, true, err, errlen)
    ||  s_get_uint (root, "screenHeight", &self->screen_h, AF_MAX_SCREEN, true, err, errlen)
    ||  s_get_uint (root, "screenDensity", &self->density, AF_MAX_DENSITY, false, err, errlen)
    ||  s_get_strings (root, "supportedAbis", &self->abis [0][0], sizeof self->abis [0],
                       AF_MAX_ABIS, &self->abi_count, err, errlen)
    ||  s_get_strings (root, "supportedLocales", &self->locales [0][0], sizeof self->locales [0],
                       AF_MAX_LOCALES, &self->locale_count, err, errlen))
        goto done;

    //  A bare bundletool spec is an Android device; its OS version follows
    //  from the API level; its name defaults to the model.
    if (!*self->platform && self->sdk)
        strcpy (self->platform, "android");
    if (!*self->os_version && self->sdk && af_android_release (self->sdk))
        snprintf (self->os_version, sizeof self->os_version, "%s", af_android_release (self->sdk));
    if (!*self->name)
        memcpy (self->name, self->model, sizeof self->name);
    rc = af_device_validate (self, err, errlen);
done:
    json_decref (root);
    return rc;
}

int
af_device_load (af_device_t *self, const char *path, char *err, size_t errlen)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        snprintf (err, errlen, "%s: %s", path, strerror (errno));
        return -1;
    }
    char buf [64 * 1024];
    size_t size = fread (buf, 1, sizeof buf - 1, file);
    bool too_big = !feof (file);
    fclose (file);
    if (too_big) {
        snprintf (err, errlen, "%s: larger than %zu bytes", path, sizeof buf - 1);
        return -1;
    }
    buf [size] = 0;
    char inner [200];
    if (af_device_from_json (self, buf, inner, sizeof inner)) {
        snprintf (err, errlen, "%s: %s", path, inner);
        return -1;
    }
    return 0;
}

char *
af_device_to_json (const af_device_t *self)
{
    json_t *root = (json_t *) af_device_to_jansson (self, false);
    if (!root)
        return NULL;
    char *text = json_dumps (root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (root);
    return text;
}

void *
af_device_to_jansson (const af_device_t *self, bool with_state)
{
    json_t *root = json_object ();
    json_t *abis = json_array ();
    json_t *locales = json_array ();
    if (!root || !abis || !locales) {
        json_decref (root); json_decref (abis); json_decref (locales);
        return NULL;
    }
    for (uint32_t i = 0; i < self->abi_count; i++)
        json_array_append_new (abis, json_string (self->abis [i]));
    for (uint32_t i = 0; i < self->locale_count; i++)
        json_array_append_new (locales, json_string (self->locales [i]));
    if (*self->id)
        json_object_set_new (root, "id", json_string (self->id));
    json_object_set_new (root, "name", json_string (self->name));
    json_object_set_new (root, "platform", json_string (self->platform));
    json_object_set_new (root, "osVersion", json_string (self->os_version));
    if (self->sdk)
        json_object_set_new (root, "sdkVersion", json_integer (self->sdk));
    json_object_set_new (root, "model", json_string (self->model));
    json_object_set_new (root, "manufacturer", json_string (self->manufacturer));
    json_object_set_new (root, "formFactor", json_string (self->form_factor));
    json_object_set_new (root, "screenWidth", json_integer (self->screen_w));
    json_object_set_new (root, "screenHeight", json_integer (self->screen_h));
    if (self->density)
        json_object_set_new (root, "screenDensity", json_integer (self->density));
    json_object_set_new (root, "supportedAbis", abis);
    json_object_set_new (root, "supportedLocales", locales);
    if (with_state) {
        json_object_set_new (root, "online", json_boolean (self->online));
        json_object_set_new (root, "lastSeen", json_integer ((json_int_t) self->last_seen));
    }
    return root;
}

//  True if text is non-empty and every byte is printable (UTF-8 allowed)
static bool
s_printable (const char *text)
{
    if (!*text)
        return false;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool
s_token (const char *text)
{
    if (!*text)
        return false;
    for (const char *p = text; *p; p++)
        if (!isalnum ((unsigned char) *p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

int
af_device_validate (const af_device_t *self, char *err, size_t errlen)
{
    uint32_t version;
    af_platform_t platform = af_platform_from_name (self->platform);
    if (platform == AF_PLATFORM_NONE) {
        snprintf (err, errlen, "field 'platform': '%s' is not one of android, ios, harmonyos, "
                  "windows, macos, linux, tvos", self->platform);
        return -1;
    }
    if (platform == AF_PLATFORM_ANDROID && (self->sdk < 1 || self->sdk > AF_MAX_SDK)) {
        snprintf (err, errlen, "field 'sdkVersion': Android devices need an API level 1..%d",
                  AF_MAX_SDK);
        return -1;
    }
    if (af_version_parse (self->os_version, &version)) {
        snprintf (err, errlen, "field 'osVersion': '%s' is not a version like 14 or 16.4.1",
                  self->os_version);
        return -1;
    }
    if (!s_printable (self->name)) {
        snprintf (err, errlen, "field 'name': must be printable text");
        return -1;
    }
    if (!s_printable (self->model)) {
        snprintf (err, errlen, "field 'model': must be printable text");
        return -1;
    }
    if (*self->manufacturer && !s_printable (self->manufacturer)) {
        snprintf (err, errlen, "field 'manufacturer': must be printable text");
        return -1;
    }
    if (af_form_from_name (self->form_factor) == AF_FORM_NONE) {
        snprintf (err, errlen, "field 'formFactor': '%s' is not one of phone, tablet, tv, pc, watch",
                  self->form_factor);
        return -1;
    }
    if (self->screen_w < 1 || self->screen_w > AF_MAX_SCREEN
    ||  self->screen_h < 1 || self->screen_h > AF_MAX_SCREEN) {
        snprintf (err, errlen, "field 'screenWidth'/'screenHeight': must be 1..%d pixels",
                  AF_MAX_SCREEN);
        return -1;
    }
    if (self->density > AF_MAX_DENSITY) {
        snprintf (err, errlen, "field 'screenDensity': must be 0..%d", AF_MAX_DENSITY);
        return -1;
    }
    if (self->abi_count > AF_MAX_ABIS || self->locale_count > AF_MAX_LOCALES) {
        snprintf (err, errlen, "too many ABIs or locales");
        return -1;
    }
    for (uint32_t i = 0; i < self->abi_count; i++)
        if (!s_token (self->abis [i])) {
            snprintf (err, errlen, "field 'supportedAbis' entry %u: not an ABI name", i);
            return -1;
        }
    for (uint32_t i = 0; i < self->locale_count; i++)
        if (!s_token (self->locales [i])) {
            snprintf (err, errlen, "field 'supportedLocales' entry %u: not a locale", i);
            return -1;
        }
    if (platform == AF_PLATFORM_ANDROID) {
        if (self->sdk < 1 || self->sdk > AF_MAX_SDK) {
            snprintf (err, errlen, "field 'sdkVersion': Android devices need an API level 1..%d",
                      AF_MAX_SDK);
            return -1;
        }
        if (self->density < 1) {
            snprintf (err, errlen, "field 'screenDensity': Android devices need a density in dpi");
            return -1;
        }
        if (self->abi_count < 1) {
            snprintf (err, errlen, "field 'supportedAbis': Android devices need at least one ABI");
            return -1;
        }
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Self test

void
af_device_test (bool verbose)
{
    if (verbose)
        printf (" * af_device: ");
    uint32_t v;
    char buf [32];
    assert (af_version_parse ("16.4.1", &v) == 0);
    assert (v == (16u << 20 | 4u << 10 | 1u));
    assert (strcmp (af_version_format (v, buf, sizeof buf), "16.4.1") == 0);
    assert (af_version_parse ("10", &v) == 0 && strcmp (af_version_format (v, buf, sizeof buf), "10") == 0);
    uint32_t a, b;
    assert (af_version_parse ("9.3", &a) == 0 && af_version_parse ("10.0", &b) == 0 && a < b);
    assert (af_version_parse ("", &v) == -1);
    assert (af_version_parse ("1..2", &v) == -1);
    assert (af_version_parse ("1.2.3.4", &v) == -1);
    assert (af_version_parse ("99999", &v) == -1);
    assert (af_version_parse ("10a", &v) == -1);
    assert (strcmp (af_android_release (29), "10") == 0);
    assert (af_android_release (0) == NULL);
    assert (af_platform_from_name ("tvos") == AF_PLATFORM_TVOS);
    assert (af_platform_from_name ("beos") == AF_PLATFORM_NONE);
    assert (af_form_from_name ("tv") == AF_FORM_TV);

    char err [200];
    af_device_t device;
    //  A bundletool spec plus our keys
    const char *phone =
        "{\"supportedAbis\":[\"arm64-v8a\",\"armeabi-v7a\"],\"supportedLocales\":[\"en-US\"],"
        "\"screenDensity\":420,\"sdkVersion\":30,\"glExtensions\":[\"x\"],"
        "\"model\":\"Pixel 5\",\"manufacturer\":\"Google\",\"formFactor\":\"phone\","
        "\"screenWidth\":1080,\"screenHeight\":2340}";
    assert (af_device_from_json (&device, phone, err, sizeof err) == 0);
    assert (strcmp (device.platform, "android") == 0);
    assert (strcmp (device.os_version, "11") == 0);
    assert (strcmp (device.name, "Pixel 5") == 0);
    assert (device.abi_count == 2 && strcmp (device.abis [1], "armeabi-v7a") == 0);

    //  Round trip through JSON
    char *text = af_device_to_json (&device);
    assert (text);
    af_device_t copy;
    assert (af_device_from_json (&copy, text, err, sizeof err) == 0);
    assert (memcmp (&copy, &device, sizeof copy) == 0);
    free (text);

    //  Errors name the field
    assert (af_device_from_json (&device, "{\"model\":\"x\"}", err, sizeof err) == -1);
    assert (strstr (err, "formFactor"));
    assert (af_device_from_json (&device,
        "{\"platform\":\"ios\",\"osVersion\":\"17.1\",\"model\":\"iPhone\",\"formFactor\":\"phone\","
        "\"screenWidth\":99999,\"screenHeight\":10}", err, sizeof err) == -1);
    assert (strstr (err, "screenWidth"));
    assert (af_device_from_json (&device,
        "{\"platform\":\"android\",\"osVersion\":\"10\",\"model\":\"x\",\"formFactor\":\"phone\","
        "\"screenWidth\":10,\"screenHeight\":10}", err, sizeof err) == -1);
    assert (strstr (err, "sdkVersion"));
    assert (af_device_from_json (&device, "[1,2", err, sizeof err) == -1);
    assert (strstr (err, "invalid JSON"));
    assert (af_device_from_json (&device, "{\"model\":\"x\",\"model\":\"y\"}", err, sizeof err) == -1);
    char longname [200];
    memset (longname, 'a', sizeof longname);
    longname [150] = 0;
    char doc [400];
    snprintf (doc, sizeof doc, "{\"model\":\"%s\",\"formFactor\":\"tv\",\"screenWidth\":1,\"screenHeight\":1}", longname);
    assert (af_device_from_json (&device, doc, err, sizeof err) == -1);
    assert (strstr (err, "model") && strstr (err, "longer"));
    if (verbose)
        printf ("OK\n");
}
