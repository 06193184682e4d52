/*  =========================================================================
    af_device - a device description: what a package must fit

    Parsing is strict about the fields it knows and silent about the rest,
    so a bundletool device spec (which carries more keys than we use) is
    accepted as is: in either proto-JSON spelling (snake_case or
    lowerCamelCase), with platform, OS version, model, form factor and name
    derived from what it has (af_device_complete), and without a screen
    size, which bundletool does not record. Every string is copied into a
    fixed buffer after its length is checked; nothing here allocates except
    af_device_to_json and the file buffer of af_device_load.
    =========================================================================
*/
#include "af_device.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
        return AF_E_MALFORMED;
    while (count < 3) {
        if (!isdigit ((unsigned char) *p))
            return AF_E_MALFORMED;
        uint32_t n = 0;
        while (isdigit ((unsigned char) *p)) {
            n = n * 10 + (uint32_t) (*p++ - '0');
            if (n > limits [count])
                return AF_E_MALFORMED;
        }
        parts [count++] = n;
        if (*p == 0)
            break;
        if (*p != '.' || count == 3)
            return AF_E_MALFORMED;
        p++;
    }
    *value = parts [0] << 20 | parts [1] << 10 | parts [2];
    return AF_OK;
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
//  Defaults shared by every source of a description (the JSON file, adb)

af_form_t
af_form_from_screen (uint32_t width, uint32_t height, uint32_t density)
{
    uint32_t smallest = width < height? width: height;
    if (smallest && density && (uint64_t) smallest * 160 / density >= AF_TABLET_MIN_DP)
        return AF_FORM_TABLET;
    return AF_FORM_PHONE;
}

//  The version part of an Android release name: "12L" -> "12", "4.4W" ->
//  "4.4" (the table names a few releases with a letter; osVersion is a
//  plain dotted version)
static void
s_release_version (const char *release, char *buf, size_t size)
{
    size_t len = 0;
    while (len + 1 < size && (isdigit ((unsigned char) release [len]) || release [len] == '.'))
        len++;
    while (len && release [len - 1] == '.')
        len--;
    memcpy (buf, release, len);
    buf [len] = 0;
}

int
af_device_complete (af_device_t *self, const char *brand, const char *build_device,
                    char *err, size_t errlen)
{
    assert (self);
    if (!*self->platform) {
        if (!self->sdk) {
            snprintf (err, errlen, "field 'platform' is missing (it may be left out only for an "
                      "Android device, which gives 'sdkVersion')");
            return AF_E_BAD_DEVICE;
        }
        strcpy (self->platform, "android");
    }
    bool android = af_platform_from_name (self->platform) == AF_PLATFORM_ANDROID;
    if (android && !*self->os_version && self->sdk) {
        const char *release = af_android_release (self->sdk);
        if (!release) {
            snprintf (err, errlen, "field 'osVersion' is missing and API level %u is newer than "
                      "this build knows: give osVersion", self->sdk);
            return AF_E_BAD_DEVICE;
        }
        s_release_version (release, self->os_version, sizeof self->os_version);
    }
    if (android && !*self->model) {
        brand = brand? brand: "";
        build_device = build_device? build_device: "";
        if (*brand && *build_device && strlen (brand) + 1 + strlen (build_device) < sizeof self->model)
            snprintf (self->model, sizeof self->model, "%s %s", brand, build_device);
        else
        if (*build_device && strlen (build_device) < sizeof self->model)
            strcpy (self->model, build_device);
        else
        if (*brand && strlen (brand) < sizeof self->model)
            strcpy (self->model, brand);
        else
            strcpy (self->model, "Android device");
    }
    if (android && !*self->form_factor)
        strcpy (self->form_factor,
                af_form_name (af_form_from_screen (self->screen_w, self->screen_h, self->density)));
    if (!*self->name)
        memcpy (self->name, self->model, sizeof self->name);
    return af_device_validate (self, err, errlen);
}

//  --------------------------------------------------------------------------
//  JSON parsing. bundletool writes its device spec as proto-JSON, whose
//  parsers accept each field in lowerCamelCase and in snake_case; so does
//  this one, for every key (ours too), and refuses a key given both ways.
//  Each helper returns 0 or -1 with err set.

//  The value of key (given in camelCase) or of its snake_case spelling, or
//  NULL; name gets the spelling found, for messages. -1 when both are given.
static int
s_lookup (json_t *obj, const char *key, json_t **value, char *name, size_t size,
          char *err, size_t errlen)
{
    char snake [64];
    size_t len = 0;
    for (const char *p = key; *p && len + 2 < sizeof snake; p++) {
        if (isupper ((unsigned char) *p)) {
            snake [len++] = '_';
            snake [len++] = (char) tolower ((unsigned char) *p);
        }
        else
            snake [len++] = *p;
    }
    snake [len] = 0;
    json_t *camel_value = json_object_get (obj, key);
    json_t *snake_value = strcmp (snake, key)? json_object_get (obj, snake): NULL;
    if (camel_value && snake_value) {
        snprintf (err, errlen, "field '%s' is given twice, as '%s' and as '%s'", key, key, snake);
        return -1;
    }
    *value = camel_value? camel_value: snake_value;
    snprintf (name, size, "%s", camel_value? key: snake);
    return 0;
}

static int
s_get_string (json_t *obj, const char *key, char *buf, size_t size,
              bool required, char *err, size_t errlen)
{
    json_t *value;
    char name [64];
    if (s_lookup (obj, key, &value, name, sizeof name, err, errlen))
        return -1;
    if (!value) {
        if (required) {
            snprintf (err, errlen, "field '%s' is missing", key);
            return -1;
        }
        return 0;
    }
    if (!json_is_string (value)) {
        snprintf (err, errlen, "field '%s': expected a string", name);
        return -1;
    }
    size_t len = json_string_length (value);
    if (len >= size) {
        snprintf (err, errlen, "field '%s': longer than %zu bytes", name, size - 1);
        return -1;
    }
    memcpy (buf, json_string_value (value), len);
    buf [len] = 0;
    return 0;
}

static int
s_get_uint (json_t *obj, const char *key, uint32_t *out, uint32_t max,
            char *err, size_t errlen)
{
    json_t *value;
    char name [64];
    if (s_lookup (obj, key, &value, name, sizeof name, err, errlen))
        return -1;
    if (!value)
        return 0;
    if (!json_is_integer (value)
    ||  json_integer_value (value) < 0
    ||  json_integer_value (value) > (json_int_t) max) {
        snprintf (err, errlen, "field '%s': expected an integer 0..%u", name, max);
        return -1;
    }
    *out = (uint32_t) json_integer_value (value);
    return 0;
}

static int
s_get_strings (json_t *obj, const char *key, char *base, size_t stride,
               uint32_t max, uint32_t *count, char *err, size_t errlen)
{
    json_t *value;
    char name [64];
    *count = 0;
    if (s_lookup (obj, key, &value, name, sizeof name, err, errlen))
        return -1;
    if (!value)
        return 0;
    if (!json_is_array (value)) {
        snprintf (err, errlen, "field '%s': expected an array of strings", name);
        return -1;
    }
    if (json_array_size (value) > max) {
        snprintf (err, errlen, "field '%s': more than %u entries", name, max);
        return -1;
    }
    size_t index;
    json_t *item;
    json_array_foreach (value, index, item) {
        if (!json_is_string (item) || json_string_length (item) >= stride) {
            snprintf (err, errlen, "field '%s' entry %zu: expected a string of at most %zu bytes",
                      name, index, stride - 1);
            return -1;
        }
        memcpy (base + index * stride, json_string_value (item), json_string_length (item) + 1);
    }
    *count = (uint32_t) json_array_size (value);
    return 0;
}

//  The form factor that bundletool's deviceFeatures (the output of `pm list
//  features`, each "feature:NAME" or "feature:NAME=VALUE") imply, or
//  AF_FORM_NONE when they imply none (then the screen decides)
static int
s_form_from_features (json_t *obj, af_form_t *form, char *err, size_t errlen)
{
    static const struct { const char *feature; af_form_t form; } implied [] = {
        { "android.hardware.type.television", AF_FORM_TV },
        { "android.software.leanback", AF_FORM_TV },
        { "android.hardware.type.watch", AF_FORM_WATCH },
        { "android.hardware.type.pc", AF_FORM_PC }
    };
    json_t *value;
    char name [64];
    *form = AF_FORM_NONE;
    if (s_lookup (obj, "deviceFeatures", &value, name, sizeof name, err, errlen))
        return -1;
    if (!value)
        return 0;
    if (!json_is_array (value)) {
        snprintf (err, errlen, "field '%s': expected an array of strings", name);
        return -1;
    }
    size_t index, best = sizeof implied / sizeof implied [0];
    json_t *item;
    json_array_foreach (value, index, item) {
        if (!json_is_string (item)) {
            snprintf (err, errlen, "field '%s' entry %zu: expected a string", name, index);
            return -1;
        }
        const char *feature = json_string_value (item);
        size_t len = json_string_length (item);
        if (len > 8 && memcmp (feature, "feature:", 8) == 0) {
            feature += 8;
            len -= 8;
        }
        const char *equals = memchr (feature, '=', len);
        if (equals)
            len = (size_t) (equals - feature);
        for (size_t i = 0; i < best; i++)
            if (strlen (implied [i].feature) == len && memcmp (implied [i].feature, feature, len) == 0)
                best = i;               //  the earliest in the table wins
    }
    if (best < sizeof implied / sizeof implied [0])
        *form = implied [best].form;
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
        return AF_E_MALFORMED;
    }
    int code = AF_E_MALFORMED;
    if (!json_is_object (root)) {
        snprintf (err, errlen, "expected a JSON object");
        goto done;
    }
    char brand [AF_MAX_NAME + 1] = "", build_device [AF_MAX_NAME + 1] = "";
    af_form_t implied = AF_FORM_NONE;
    if (s_get_string (root, "name", self->name, sizeof self->name, false, err, errlen)
    ||  s_get_string (root, "platform", self->platform, sizeof self->platform, false, err, errlen)
    ||  s_get_string (root, "osVersion", self->os_version, sizeof self->os_version, false, err, errlen)
    ||  s_get_uint (root, "sdkVersion", &self->sdk, AF_MAX_SDK, err, errlen)
    ||  s_get_string (root, "model", self->model, sizeof self->model, false, err, errlen)
    ||  s_get_string (root, "manufacturer", self->manufacturer, sizeof self->manufacturer, false, err, errlen)
    ||  s_get_string (root, "formFactor", self->form_factor, sizeof self->form_factor, false, err, errlen)
    ||  s_get_uint (root, "screenWidth", &self->screen_w, AF_MAX_SCREEN, err, errlen)
    ||  s_get_uint (root, "screenHeight", &self->screen_h, AF_MAX_SCREEN, err, errlen)
    ||  s_get_uint (root, "screenDensity", &self->density, AF_MAX_DENSITY, err, errlen)
    ||  s_get_strings (root, "supportedAbis", &self->abis [0][0], sizeof self->abis [0],
                       AF_MAX_ABIS, &self->abi_count, err, errlen)
    ||  s_get_strings (root, "supportedLocales", &self->locales [0][0], sizeof self->locales [0],
                       AF_MAX_LOCALES, &self->locale_count, err, errlen)
    ||  s_get_string (root, "buildBrand", brand, sizeof brand, false, err, errlen)
    ||  s_get_string (root, "buildDevice", build_device, sizeof build_device, false, err, errlen)
    ||  s_form_from_features (root, &implied, err, errlen))
        goto done;

    //  What a bundletool spec leaves out: see af_device_complete
    bool android = !*self->platform
                || af_platform_from_name (self->platform) == AF_PLATFORM_ANDROID;
    if (!*self->form_factor && android && implied != AF_FORM_NONE)
        strcpy (self->form_factor, af_form_name (implied));
    code = AF_E_BAD_DEVICE;
    if (!android) {
        if (!*self->model) {
            snprintf (err, errlen, "field 'model' is missing");
            goto done;
        }
        if (!*self->form_factor) {
            snprintf (err, errlen, "field 'formFactor' is missing");
            goto done;
        }
    }
    code = af_device_complete (self, brand, build_device, err, errlen);
done:
    json_decref (root);
    return code;
}

int
af_device_load (af_device_t *self, const char *path, char *err, size_t errlen)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        snprintf (err, errlen, "%s: %s", path, strerror (errno));
        return AF_E_INTERNAL;
    }
    char *buf = (char *) malloc (AF_MAX_DEVICE_FILE + 1);
    if (!buf) {
        fclose (file);
        snprintf (err, errlen, "%s: out of memory", path);
        return AF_E_INTERNAL;
    }
    size_t size = fread (buf, 1, AF_MAX_DEVICE_FILE + 1, file);
    bool failed = ferror (file);
    fclose (file);
    if (failed || size > AF_MAX_DEVICE_FILE) {
        snprintf (err, errlen, failed? "%s: cannot read": "%s: larger than %d bytes",
                  path, AF_MAX_DEVICE_FILE);
        free (buf);
        return failed? AF_E_INTERNAL: AF_E_TOO_BIG;
    }
    buf [size] = 0;
    char inner [200];
    int code = AF_OK;
    if (strlen (buf) != size) {
        snprintf (err, errlen, "%s: contains a NUL byte", path);
        code = AF_E_MALFORMED;
    }
    else
    if ((code = af_device_from_json (self, buf, inner, sizeof inner)) != AF_OK)
        snprintf (err, errlen, "%s: %s", path, inner);
    free (buf);
    return code;
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
    if (self->screen_w || self->screen_h) {
        json_object_set_new (root, "screenWidth", json_integer (self->screen_w));
        json_object_set_new (root, "screenHeight", json_integer (self->screen_h));
    }
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

//  True if text is non-empty, valid UTF-8 (as every string on the wire
//  must be, so a description from adb cannot pass here and fail there)
//  and has no control character
static bool
s_printable (const char *text)
{
    if (!*text || !af_utf8_valid ((const uint8_t *) text, strlen (text)))
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
        return AF_E_BAD_DEVICE;
    }
    if (platform == AF_PLATFORM_ANDROID && (self->sdk < 1 || self->sdk > AF_MAX_SDK)) {
        snprintf (err, errlen, "field 'sdkVersion': Android devices need an API level 1..%d",
                  AF_MAX_SDK);
        return AF_E_BAD_DEVICE;
    }
    if (af_version_parse (self->os_version, &version) != AF_OK) {
        snprintf (err, errlen, "field 'osVersion': '%s' is not a version like 14 or 16.4.1",
                  self->os_version);
        return AF_E_BAD_DEVICE;
    }
    if (!s_printable (self->name)) {
        snprintf (err, errlen, "field 'name': must be printable UTF-8 text");
        return AF_E_BAD_DEVICE;
    }
    if (!s_printable (self->model)) {
        snprintf (err, errlen, "field 'model': must be printable UTF-8 text");
        return AF_E_BAD_DEVICE;
    }
    if (*self->manufacturer && !s_printable (self->manufacturer)) {
        snprintf (err, errlen, "field 'manufacturer': must be printable UTF-8 text");
        return AF_E_BAD_DEVICE;
    }
    if (af_form_from_name (self->form_factor) == AF_FORM_NONE) {
        snprintf (err, errlen, "field 'formFactor': '%s' is not one of phone, tablet, tv, pc, watch",
                  self->form_factor);
        return AF_E_BAD_DEVICE;
    }
    //  Both 0: the resolution is unknown (a package that needs a minimum
    //  one then does not fit)
    if ((self->screen_w || self->screen_h)
    &&  (self->screen_w < 1 || self->screen_w > AF_MAX_SCREEN
    ||   self->screen_h < 1 || self->screen_h > AF_MAX_SCREEN)) {
        snprintf (err, errlen, "field 'screenWidth'/'screenHeight': must both be 1..%d pixels, "
                  "or both be left out (unknown)", AF_MAX_SCREEN);
        return AF_E_BAD_DEVICE;
    }
    if (self->density > AF_MAX_DENSITY) {
        snprintf (err, errlen, "field 'screenDensity': must be 0..%d", AF_MAX_DENSITY);
        return AF_E_BAD_DEVICE;
    }
    if (self->abi_count > AF_MAX_ABIS || self->locale_count > AF_MAX_LOCALES) {
        snprintf (err, errlen, "too many ABIs or locales");
        return AF_E_BAD_DEVICE;
    }
    for (uint32_t i = 0; i < self->abi_count; i++)
        if (!s_token (self->abis [i])) {
            snprintf (err, errlen, "field 'supportedAbis' entry %u: not an ABI name", i);
            return AF_E_BAD_DEVICE;
        }
    for (uint32_t i = 0; i < self->locale_count; i++)
        if (!s_token (self->locales [i])) {
            snprintf (err, errlen, "field 'supportedLocales' entry %u: not a locale", i);
            return AF_E_BAD_DEVICE;
        }
    if (platform == AF_PLATFORM_ANDROID) {
        if (self->sdk < 1 || self->sdk > AF_MAX_SDK) {
            snprintf (err, errlen, "field 'sdkVersion': Android devices need an API level 1..%d",
                      AF_MAX_SDK);
            return AF_E_BAD_DEVICE;
        }
        if (self->density < 1) {
            snprintf (err, errlen, "field 'screenDensity': Android devices need a density in dpi");
            return AF_E_BAD_DEVICE;
        }
        if (self->abi_count < 1) {
            snprintf (err, errlen, "field 'supportedAbis': Android devices need at least one ABI");
            return AF_E_BAD_DEVICE;
        }
    }
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Self test

#define streq(s1,s2)    (strcmp ((s1), (s2)) == 0)

//  Versions pack into one comparable integer; names map to enums
static void
s_test_versions (void)
{
    uint32_t v;
    char buf [32];
    assert (af_version_parse ("16.4.1", &v) == AF_OK);
    assert (v == (16u << 20 | 4u << 10 | 1u));
    assert (strcmp (af_version_format (v, buf, sizeof buf), "16.4.1") == 0);
    assert (af_version_parse ("10", &v) == AF_OK && strcmp (af_version_format (v, buf, sizeof buf), "10") == 0);
    uint32_t a, b;
    assert (af_version_parse ("9.3", &a) == AF_OK && af_version_parse ("10.0", &b) == AF_OK && a < b);
    assert (af_version_parse ("", &v) == AF_E_MALFORMED);
    assert (af_version_parse ("1..2", &v) == AF_E_MALFORMED);
    assert (af_version_parse ("1.2.3.4", &v) == AF_E_MALFORMED);
    assert (af_version_parse ("99999", &v) == AF_E_MALFORMED);
    assert (af_version_parse ("10a", &v) == AF_E_MALFORMED);
    assert (strcmp (af_android_release (29), "10") == 0);
    assert (af_android_release (0) == NULL);
    assert (af_platform_from_name ("tvos") == AF_PLATFORM_TVOS);
    assert (af_platform_from_name ("beos") == AF_PLATFORM_NONE);
    assert (af_form_from_name ("tv") == AF_FORM_TV);
}

//  A device description from JSON, back to JSON, and its errors
static void
s_test_json (void)
{
    char err [200];
    af_device_t device;
    //  A bundletool spec plus our keys
    const char *phone =
        "{\"supportedAbis\":[\"arm64-v8a\",\"armeabi-v7a\"],\"supportedLocales\":[\"en-US\"],"
        "\"screenDensity\":420,\"sdkVersion\":30,\"glExtensions\":[\"x\"],"
        "\"model\":\"Pixel 5\",\"manufacturer\":\"Google\",\"formFactor\":\"phone\","
        "\"screenWidth\":1080,\"screenHeight\":2340}";
    assert (af_device_from_json (&device, phone, err, sizeof err) == AF_OK);
    assert (strcmp (device.platform, "android") == 0);
    assert (strcmp (device.os_version, "11") == 0);
    assert (strcmp (device.name, "Pixel 5") == 0);
    assert (device.abi_count == 2 && strcmp (device.abis [1], "armeabi-v7a") == 0);

    //  Round trip through JSON
    char *text = af_device_to_json (&device);
    assert (text);
    af_device_t copy;
    assert (af_device_from_json (&copy, text, err, sizeof err) == AF_OK);
    assert (memcmp (&copy, &device, sizeof copy) == 0);
    free (text);

    //  Errors name the field
    assert (af_device_from_json (&device, "{\"model\":\"x\"}", err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "'platform' is missing"));
    assert (af_device_from_json (&device, "{\"platform\":\"ios\",\"osVersion\":\"17\","
        "\"formFactor\":\"phone\"}", err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "'model' is missing"));
    assert (af_device_from_json (&device, "{\"platform\":\"ios\",\"osVersion\":\"17\","
        "\"model\":\"iPhone\"}", err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "'formFactor' is missing"));
    assert (af_device_from_json (&device,
        "{\"platform\":\"ios\",\"osVersion\":\"17.1\",\"model\":\"iPhone\",\"formFactor\":\"phone\","
        "\"screenWidth\":99999,\"screenHeight\":10}", err, sizeof err) == AF_E_MALFORMED);
    assert (strstr (err, "screenWidth"));
    assert (af_device_from_json (&device,
        "{\"platform\":\"android\",\"osVersion\":\"10\",\"model\":\"x\",\"formFactor\":\"phone\","
        "\"screenWidth\":10,\"screenHeight\":10}", err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "sdkVersion"));
    assert (af_device_from_json (&device, "[1,2", err, sizeof err) == AF_E_MALFORMED);
    assert (strstr (err, "invalid JSON"));
    assert (af_device_from_json (&device, "{\"model\":\"x\",\"model\":\"y\"}", err, sizeof err) == AF_E_MALFORMED);
    char longname [200];
    memset (longname, 'a', sizeof longname);
    longname [150] = 0;
    char doc [400];
    snprintf (doc, sizeof doc, "{\"model\":\"%s\",\"formFactor\":\"tv\",\"screenWidth\":1,\"screenHeight\":1}", longname);
    assert (af_device_from_json (&device, doc, err, sizeof err) == AF_E_MALFORMED);
    assert (strstr (err, "model") && strstr (err, "longer"));
}

//  A bundletool spec as `bundletool get-device-spec` writes it, in
//  snake_case (bundletool's own pixel2_spec.json): Android, 8.0 from API
//  26, a phone (no screen size, so the screen cannot make it a tablet),
//  model and name "Android device", resolution unknown
static void
s_test_bundletool_spec (void)
{
    char err [200];
    af_device_t device;
    af_device_t copy;
    char *text;
    const char *pixel2_snake =
        "{\"supported_abis\":[\"arm64-v8a\",\"armeabi-v7a\",\"armeabi\"],"
        "\"supported_locales\":[\"en-GB\"],"
        "\"device_features\":[\"feature:reqGlEsVersion=0x30002\",\"feature:android.hardware.camera\"],"
        "\"gl_extensions\":[\"GL_OES_EGL_image\"],\"screen_density\":560,\"sdk_version\":26}";
    assert (af_device_from_json (&device, pixel2_snake, err, sizeof err) == AF_OK);
    assert (streq (device.platform, "android") && streq (device.os_version, "8.0"));
    assert (device.sdk == 26 && device.density == 560 && device.abi_count == 3);
    assert (streq (device.locales [0], "en-GB") && device.locale_count == 1);
    assert (streq (device.form_factor, "phone"));
    assert (streq (device.model, "Android device") && streq (device.name, "Android device"));
    assert (device.screen_w == 0 && device.screen_h == 0);
    //  The same in lowerCamelCase, with bundletool's newer build fields:
    //  the model is "BRAND DEVICE"
    const char *pixel2_camel =
        "{\"supportedAbis\":[\"arm64-v8a\",\"armeabi-v7a\",\"armeabi\"],"
        "\"supportedLocales\":[\"en-GB\"],\"deviceFeatures\":[\"feature:android.hardware.camera\"],"
        "\"screenDensity\":560,\"sdkVersion\":26,\"ramBytes\":\"3929440256\","
        "\"buildBrand\":\"google\",\"buildDevice\":\"walleye\",\"sdkRuntime\":{\"supported\":false}}";
    af_device_t camel;
    assert (af_device_from_json (&camel, pixel2_camel, err, sizeof err) == AF_OK);
    assert (streq (camel.model, "google walleye") && streq (camel.name, "google walleye"));
    strcpy (camel.model, device.model);
    strcpy (camel.name, device.name);
    assert (memcmp (&camel, &device, sizeof camel) == 0);
    //  With an unknown screen it round-trips, the screen left out
    text = af_device_to_json (&device);
    assert (text && !strstr (text, "screenWidth"));
    assert (af_device_from_json (&copy, text, err, sizeof err) == AF_OK);
    assert (memcmp (&copy, &device, sizeof copy) == 0);
    free (text);
    //  One key in both spellings is refused, naming both
    assert (af_device_from_json (&device, "{\"sdkVersion\":26,\"sdk_version\":27,"
        "\"screenDensity\":1,\"supportedAbis\":[\"x86\"]}", err, sizeof err) == AF_E_MALFORMED);
    assert (strstr (err, "'sdkVersion'") && strstr (err, "'sdk_version'") && strstr (err, "twice"));
    //  Errors name the spelling used
    assert (af_device_from_json (&device, "{\"screen_density\":\"560\"}", err, sizeof err) == AF_E_MALFORMED);
    assert (strstr (err, "'screen_density'"));
}

//  Form factors from deviceFeatures, with or without bundletool's
//  "feature:" prefix; television before watch before pc; an explicit
//  formFactor wins
static void
s_test_form_factors (void)
{
    char err [200];
    af_device_t device;
    char doc [400];
    static const struct { const char *features; const char *form; } features [] = {
        { "\"feature:android.hardware.type.television\"", "tv" },
        { "\"feature:android.software.leanback\"", "tv" },
        { "\"android.software.leanback\"", "tv" },
        { "\"feature:android.software.leanback_only\"", "phone" },
        { "\"feature:android.hardware.type.watch\"", "watch" },
        { "\"feature:android.hardware.type.pc\"", "pc" },
        { "\"feature:android.hardware.type.pc\",\"feature:android.hardware.type.watch\","
          "\"feature:android.hardware.type.television\"", "tv" },
        { "\"feature:android.hardware.type.automotive\"", "phone" },
        { "", "phone" }
    };
    for (size_t i = 0; i < sizeof features / sizeof features [0]; i++) {
        snprintf (doc, sizeof doc, "{\"sdkVersion\":30,\"screenDensity\":320,"
                  "\"supportedAbis\":[\"x86\"],\"deviceFeatures\":[%s]}", features [i].features);
        assert (af_device_from_json (&device, doc, err, sizeof err) == AF_OK);
        assert (streq (device.form_factor, features [i].form));
    }
    assert (af_device_from_json (&device, "{\"sdkVersion\":30,\"screenDensity\":320,"
        "\"supportedAbis\":[\"x86\"],\"formFactor\":\"tablet\","
        "\"device_features\":[\"feature:android.hardware.type.watch\"]}", err, sizeof err) == AF_OK);
    assert (streq (device.form_factor, "tablet"));
    assert (af_device_from_json (&device, "{\"sdkVersion\":30,\"deviceFeatures\":[1]}",
                                 err, sizeof err) == AF_E_MALFORMED && strstr (err, "deviceFeatures"));
    //  Phone or tablet: smallest width >= 600 dp is a tablet
    assert (af_form_from_screen (1600, 2560, 274) == AF_FORM_TABLET);     //  934 dp
    assert (af_form_from_screen (2560, 1600, 274) == AF_FORM_TABLET);
    assert (af_form_from_screen (1080, 2400, 420) == AF_FORM_PHONE);      //  411 dp
    assert (af_form_from_screen (1200, 1920, 320) == AF_FORM_TABLET);     //  600 dp exactly
    assert (af_form_from_screen (1199, 1920, 320) == AF_FORM_PHONE);
    assert (af_form_from_screen (0, 0, 320) == AF_FORM_PHONE);
    assert (af_form_from_screen (1600, 2560, 0) == AF_FORM_PHONE);
    assert (af_device_from_json (&device, "{\"sdk_version\":31,\"screen_density\":274,"
        "\"supported_abis\":[\"arm64-v8a\"],\"screen_width\":1600,\"screen_height\":2560}",
        err, sizeof err) == AF_OK);
    assert (streq (device.form_factor, "tablet") && device.screen_w == 1600);
}

//  What af_device_validate refuses: half a screen, text that is not UTF-8
static void
s_test_validate (void)
{
    char err [200];
    af_device_t device;
    //  Screen: both sides or neither
    assert (af_device_from_json (&device, "{\"sdkVersion\":31,\"screenDensity\":274,"
        "\"supportedAbis\":[\"arm64-v8a\"],\"screenWidth\":1600}", err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "screenWidth"));
    memset (&device, 0, sizeof device);
    strcpy (device.platform, "ios"); strcpy (device.os_version, "17"); strcpy (device.name, "x");
    strcpy (device.model, "x"); strcpy (device.form_factor, "phone");
    assert (af_device_validate (&device, err, sizeof err) == AF_OK);
    device.screen_h = 10;
    assert (af_device_validate (&device, err, sizeof err) == AF_E_BAD_DEVICE && strstr (err, "screenWidth"));
    device.screen_h = 0;
    //  Text is UTF-8, as on the wire (a description from adb is bytes)
    strcpy (device.model, "Caf\xc3\xa9");
    assert (af_device_validate (&device, err, sizeof err) == AF_OK);
    strcpy (device.model, "Caf\xe9");
    assert (af_device_validate (&device, err, sizeof err) == AF_E_BAD_DEVICE && strstr (err, "'model'"));
    strcpy (device.model, "x");
    strcpy (device.manufacturer, "\xc0\xaf");
    assert (af_device_validate (&device, err, sizeof err) == AF_E_BAD_DEVICE && strstr (err, "'manufacturer'"));
}

//  What a bundletool spec leaves out, filled in
static void
s_test_derived_fields (void)
{
    char err [200];
    af_device_t device;
    //  osVersion from the API level: the release's number ("12L" is 12),
    //  and an API level newer than the table needs an explicit osVersion
    assert (af_device_from_json (&device, "{\"sdkVersion\":32,\"screenDensity\":1,"
        "\"supportedAbis\":[\"x86\"]}", err, sizeof err) == AF_OK && streq (device.os_version, "12"));
    assert (af_device_from_json (&device, "{\"sdkVersion\":20,\"screenDensity\":1,"
        "\"supportedAbis\":[\"x86\"]}", err, sizeof err) == AF_OK && streq (device.os_version, "4.4"));
    assert (af_device_from_json (&device, "{\"sdkVersion\":99,\"screenDensity\":1,"
        "\"supportedAbis\":[\"x86\"]}", err, sizeof err) == AF_E_BAD_DEVICE && strstr (err, "osVersion"));
    assert (af_device_from_json (&device, "{\"sdkVersion\":99,\"osVersion\":\"30\",\"screenDensity\":1,"
        "\"supportedAbis\":[\"x86\"]}", err, sizeof err) == AF_OK);
    //  Model from whichever build field is there
    assert (af_device_from_json (&device, "{\"sdkVersion\":30,\"screenDensity\":1,"
        "\"supportedAbis\":[\"x86\"],\"build_device\":\"sabrina\"}", err, sizeof err) == AF_OK);
    assert (streq (device.model, "sabrina"));
}

//  Files: what is refused, each with its code
static void
s_test_load (void)
{
    char err [300], path [64];
    af_device_t device;
    char dir [] = "/tmp/af_device_test.XXXXXX";
    assert (mkdtemp (dir));
    snprintf (path, sizeof path, "%s/device.json", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs ("{\"sdkVersion\":30,\"screenDensity\":320,\"supportedAbis\":[\"x86\"]}", file);
    fclose (file);
    assert (af_device_load (&device, path, err, sizeof err) == AF_OK && device.sdk == 30);
    //  Not a description: a JSON array; a NUL byte; no platform
    static const struct { const char *text; size_t size; int code; const char *why; } bad [] = {
        { "[1]", 3, AF_E_MALFORMED, "expected a JSON object" },
        { "{\"sdkVersion\":30}\0x", 19, AF_E_MALFORMED, "NUL" },
        { "{\"model\":\"x\"}", 13, AF_E_BAD_DEVICE, "'platform' is missing" }
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        file = fopen (path, "w");
        assert (file && fwrite (bad [i].text, 1, bad [i].size, file) == bad [i].size);
        fclose (file);
        assert (af_device_load (&device, path, err, sizeof err) == bad [i].code && strstr (err, bad [i].why));
        assert (strncmp (err, path, strlen (path)) == 0);          //  the message names the file
    }
    //  Too large, then not there at all
    file = fopen (path, "w");
    assert (file);
    for (int i = 0; i <= AF_MAX_DEVICE_FILE; i++)
        fputc (' ', file);
    fclose (file);
    assert (af_device_load (&device, path, err, sizeof err) == AF_E_TOO_BIG && strstr (err, "larger"));
    assert (unlink (path) == 0);
    assert (af_device_load (&device, path, err, sizeof err) == AF_E_INTERNAL && strstr (err, "No such file"));
    assert (rmdir (dir) == 0);
}

void
af_device_test (bool verbose)
{
    if (verbose)
        printf (" * af_device: ");
    s_test_versions ();
    s_test_json ();
    s_test_bundletool_spec ();
    s_test_form_factors ();
    s_test_validate ();
    s_test_derived_fields ();
    s_test_load ();
    if (verbose)
        printf ("OK\n");
}
