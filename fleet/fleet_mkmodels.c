/*  =========================================================================
    fleet_mkmodels - builds the fleet's table of real device models from
    the device lists in data/ (run at build time)

    Usage: fleet_mkmodels DATA_DIR OUT.c

    The lists (data/android-devices/devices.json, the Google Play
    supported devices; data/ios-devices/, Apple's models; both MIT
    licensed, see their LICENSE files) hold names and model codes, not
    specifications. This tool picks a few hundred of them once, so the
    fleet binary carries a compact table and reads no file at run time:

    * Android: entries of well-known brands whose retail name and model
      code are printable ASCII and fit the device map's 64-byte model
      ("Galaxy S21 5G (SM-G9910)"), one per brand and name, then
      FLEET_ANDROID_MODELS of them evenly spaced. The form factor comes
      from the name (TV, box, stick: tv; watch; tab, pad: tablet;
      Chromebook: pc; else phone).
    * Apple: every distinct (generation, identifier) of iphone.json (ios
      phones), ipad*.json (ios tablets) and apple_tv.json (tvos), with the
      identifier's major number, which the fleet uses to give the model an
      OS version and a screen of its era.

    The output is C: a const array of fleet_model_t (fleet_models.h).
    Exit status: 0 written, 1 a list could not be read or the output
    written.
    =========================================================================
*/
#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Android models kept (of about 39,000 entries, 10,000 of those brands)
#define FLEET_ANDROID_MODELS    300
//  Bytes of a model string (AF_MAX_NAME; this tool does not include the
//  protocol headers, so the value is repeated and checked by the fleet's
//  self-test, which validates every description the table yields)
#define MODEL_MAX               64

static const char *s_brands [] = {
    "Samsung", "Google", "Xiaomi", "Redmi", "OnePlus", "Huawei", "LGE", "Motorola", "Oppo", "Vivo",
    "Sony", "Nokia", "realme", "Lenovo", "Asus", "ZTE", "HTC", "TCT (Alcatel)", "TCL", "Sharp",
    "Hisense", "Amazon", "Nvidia", "Honor", "Tecno", "Infinix", NULL
};

typedef struct {
    const char *platform;       //  an af_platform_t enumerator name
    const char *form;           //  an af_form_t enumerator name
    int generation;
    char manufacturer [MODEL_MAX + 1];
    char model [MODEL_MAX + 1];
} model_t;

static bool
s_printable (const char *text)
{
    if (!*text)
        return false;
    for (const char *p = text; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return false;
    return true;
}

static bool
s_known_brand (const char *brand)
{
    for (int i = 0; s_brands [i]; i++)
        if (strcmp (brand, s_brands [i]) == 0)
            return true;
    return false;
}

//  The form factor an Android retail name suggests, by its words
static const char *
s_android_form (const char *name, const char *device)
{
    char text [512];
    snprintf (text, sizeof text, "%s %s", name, device);
    const char *form = "AF_FORM_PHONE";
    char *save = NULL;
    for (char *p = text; *p; p++)
        *p = (char) tolower ((unsigned char) *p);
    for (char *word = strtok_r (text, " -_/()+,.", &save); word; word = strtok_r (NULL, " -_/()+,.", &save)) {
        size_t len = strlen (word);
        if (!strcmp (word, "tv") || !strcmp (word, "box") || !strcmp (word, "stick")
        ||  !strcmp (word, "chromecast") || !strcmp (word, "shield")
        ||  (len >= 4 && !strcmp (word + len - 2, "tv")))        //  MiTV, IdeaTV
            return "AF_FORM_TV";
        if (!strcmp (word, "watch"))
            return "AF_FORM_WATCH";
        if (!strncmp (word, "chromebook", 10))
            return "AF_FORM_PC";
        if (!strncmp (word, "tab", 3) || (len >= 3 && !strcmp (word + len - 3, "pad")))
            form = "AF_FORM_TABLET";
    }
    return form;
}

static json_t *
s_load (const char *dir, const char *name)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    json_error_t error;
    json_t *doc = json_load_file (path, 0, &error);
    if (!doc || !json_is_array (doc)) {
        fprintf (stderr, "fleet_mkmodels: %s: %s\n", path, doc? "not a JSON array": error.text);
        json_decref (doc);
        return NULL;
    }
    return doc;
}

static const char *
s_string (json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    return value? value: "";
}

//  Android: candidates, then every n-th
static int
s_android (const char *dir, model_t *out, size_t *count, size_t room)
{
    json_t *doc = s_load (dir, "android-devices/devices.json");
    if (!doc)
        return -1;
    json_t *seen = json_object ();
    model_t *candidates = (model_t *) calloc (json_array_size (doc), sizeof (model_t));
    if (!seen || !candidates) {
        json_decref (doc);
        json_decref (seen);
        free (candidates);
        return -1;
    }
    size_t found = 0, index;
    json_t *entry;
    json_array_foreach (doc, index, entry) {
        const char *brand = s_string (entry, "brand"), *name = s_string (entry, "name");
        const char *code = s_string (entry, "model"), *device = s_string (entry, "device");
        if (!s_known_brand (brand) || !s_printable (name) || !s_printable (code)
        ||  strlen (name) > MODEL_MAX || strlen (brand) > MODEL_MAX)
            continue;
        char key [300];
        snprintf (key, sizeof key, "%s/%s", brand, name);
        if (json_object_get (seen, key))
            continue;
        json_object_set_new (seen, key, json_true ());
        model_t *model = &candidates [found++];
        model->platform = "AF_PLATFORM_ANDROID";
        model->form = s_android_form (name, device);
        snprintf (model->manufacturer, sizeof model->manufacturer, "%s", brand);
        if (strcmp (name, code) && strlen (name) + strlen (code) + 3 <= MODEL_MAX)
            snprintf (model->model, sizeof model->model, "%s (%s)", name, code);
        else
            snprintf (model->model, sizeof model->model, "%s", name);
    }
    size_t keep = found < FLEET_ANDROID_MODELS? found: FLEET_ANDROID_MODELS;
    for (size_t i = 0; i < keep && *count < room; i++)
        out [(*count)++] = candidates [i * found / keep];
    json_decref (seen);
    json_decref (doc);
    free (candidates);
    return keep? 0: -1;
}

//  Apple: every distinct generation and identifier of one list
static int
s_apple (const char *dir, const char *file, const char *platform, const char *form,
         model_t *out, size_t *count, size_t room)
{
    json_t *doc = s_load (dir, file);
    if (!doc)
        return -1;
    size_t index, first = *count;
    json_t *entry;
    json_array_foreach (doc, index, entry) {
        const char *generation = s_string (entry, "Generation"), *identifier = s_string (entry, "Identifier");
        if (!s_printable (generation) || !s_printable (identifier)
        ||  strlen (generation) + strlen (identifier) + 3 > MODEL_MAX || *count >= room)
            continue;
        char text [MODEL_MAX + 1];
        snprintf (text, sizeof text, "%s (%s)", generation, identifier);
        bool repeat = false;
        for (size_t i = first; i < *count && !repeat; i++)
            repeat = strcmp (out [i].model, text) == 0;
        if (repeat)
            continue;
        model_t *model = &out [(*count)++];
        model->platform = platform;
        model->form = form;
        const char *digits = identifier;
        while (*digits && !isdigit ((unsigned char) *digits))
            digits++;
        model->generation = atoi (digits);
        snprintf (model->manufacturer, sizeof model->manufacturer, "Apple");
        snprintf (model->model, sizeof model->model, "%s", text);
    }
    json_decref (doc);
    return 0;
}

//  A C string literal of printable ASCII: only " and \ need escapes
static void
s_literal (FILE *file, const char *text)
{
    fputc ('"', file);
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc ('\\', file);
        fputc (*p, file);
    }
    fputc ('"', file);
}

int
main (int argc, char *argv [])
{
    if (argc != 3) {
        fprintf (stderr, "Usage: fleet_mkmodels DATA_DIR OUT.c\n");
        return 1;
    }
    size_t room = FLEET_ANDROID_MODELS + 1000, count = 0;
    model_t *models = (model_t *) calloc (room, sizeof (model_t));
    if (!models)
        return 1;
    const char *dir = argv [1];
    if (s_android (dir, models, &count, room)
    ||  s_apple (dir, "ios-devices/iphone.json", "AF_PLATFORM_IOS", "AF_FORM_PHONE", models, &count, room)
    ||  s_apple (dir, "ios-devices/ipad.json", "AF_PLATFORM_IOS", "AF_FORM_TABLET", models, &count, room)
    ||  s_apple (dir, "ios-devices/ipad_air.json", "AF_PLATFORM_IOS", "AF_FORM_TABLET", models, &count, room)
    ||  s_apple (dir, "ios-devices/ipad_mini.json", "AF_PLATFORM_IOS", "AF_FORM_TABLET", models, &count, room)
    ||  s_apple (dir, "ios-devices/ipad_pro.json", "AF_PLATFORM_IOS", "AF_FORM_TABLET", models, &count, room)
    ||  s_apple (dir, "ios-devices/apple_tv.json", "AF_PLATFORM_TVOS", "AF_FORM_TV", models, &count, room)) {
        free (models);
        return 1;
    }
    FILE *file = fopen (argv [2], "w");
    if (!file) {
        perror (argv [2]);
        free (models);
        return 1;
    }
    fprintf (file, "/*  Generated by fleet_mkmodels from data/android-devices and data/ios-devices\n"
                   "    (MIT licensed, see their LICENSE files). Do not edit.  */\n"
                   "#include \"fleet_models.h\"\n\n"
                   "const fleet_model_t fleet_models [] = {\n");
    for (size_t i = 0; i < count; i++) {
        fprintf (file, "    { %s, %s, %d, ", models [i].platform, models [i].form, models [i].generation);
        s_literal (file, models [i].manufacturer);
        fputs (", ", file);
        s_literal (file, models [i].model);
        fputs (" },\n", file);
    }
    fprintf (file, "};\nconst size_t fleet_model_count = %zu;\n", count);
    free (models);
    if (fclose (file)) {
        perror (argv [2]);
        return 1;
    }
    return 0;
}
