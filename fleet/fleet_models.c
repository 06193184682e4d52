/*  =========================================================================
    fleet_models - complete device descriptions for real models

    The table (fleet_models [], generated from data/ by fleet_mkmodels)
    names models; this file gives each one the rest of a device map. The
    values are drawn, by a small seeded generator, from short tables of
    what devices of that kind commonly have: it is a simulation, so what
    matters is that the broker and the matcher see the spread of
    platforms, OS versions, screens and ABIs a real fleet shows, with
    every description valid.
    =========================================================================
*/
#include "fleet_models.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

//  splitmix64: a tiny generator, enough to draw from tables
static uint64_t
s_next (uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t
s_pick (uint64_t *state, uint32_t count)
{
    return (uint32_t) (s_next (state) % count);
}

typedef struct { uint32_t w, h; } screen_t;

//  Android API levels in use, weighted by how many devices run them
static const struct { uint32_t sdk; uint32_t weight; } s_android_sdks [] = {
    { 23, 2 }, { 24, 2 }, { 26, 3 }, { 27, 3 }, { 28, 7 }, { 29, 10 },
    { 30, 14 }, { 31, 12 }, { 32, 3 }, { 33, 18 }, { 34, 16 }, { 35, 6 }
};

static const screen_t s_phone_screens [] = {
    { 720, 1280 }, { 720, 1600 }, { 1080, 1920 }, { 1080, 2340 }, { 1080, 2400 }, { 1440, 3200 }, { 1440, 3120 }
};
static const screen_t s_tablet_screens [] = {
    { 800, 1280 }, { 1200, 1920 }, { 1200, 2000 }, { 1600, 2560 }, { 1800, 2880 }
};
static const screen_t s_tv_screens [] = { { 1280, 720 }, { 1920, 1080 }, { 3840, 2160 } };
static const screen_t s_watch_screens [] = { { 384, 384 }, { 396, 396 }, { 450, 450 }, { 454, 454 } };
static const screen_t s_pc_screens [] = { { 1366, 768 }, { 1920, 1080 }, { 2256, 1504 } };

static const uint32_t s_phone_dpi [] = { 320, 400, 420, 440, 480, 560 };
static const uint32_t s_tablet_dpi [] = { 160, 213, 240, 280, 320 };

static const char *s_locales [] = {
    "en-US", "en-GB", "zh-CN", "zh-TW", "es-ES", "es-MX", "pt-BR", "fr-FR", "de-DE", "hi-IN",
    "ja-JP", "ko-KR", "ru-RU", "it-IT", "tr-TR", "id-ID", "vi-VN", "ar-EG", "pl-PL", "nl-NL"
};

#define COUNT(array) ((uint32_t) (sizeof (array) / sizeof ((array) [0])))

static void
s_set_abis (af_device_t *device, const char *const *abis)
{
    device->abi_count = 0;
    for (int i = 0; abis [i] && device->abi_count < AF_MAX_ABIS; i++)
        snprintf (device->abis [device->abi_count++], sizeof device->abis [0], "%s", abis [i]);
}

static void
s_android (const fleet_model_t *model, uint64_t *rng, af_device_t *device)
{
    uint32_t total = 0;
    for (uint32_t i = 0; i < COUNT (s_android_sdks); i++)
        total += s_android_sdks [i].weight;
    uint32_t draw = s_pick (rng, total);
    device->sdk = s_android_sdks [0].sdk;
    for (uint32_t i = 0; i < COUNT (s_android_sdks); i++) {
        if (draw < s_android_sdks [i].weight) {
            device->sdk = s_android_sdks [i].sdk;
            break;
        }
        draw -= s_android_sdks [i].weight;
    }
    //  The table ends at an API level af_android_release knows; its names
    //  may end in a letter ("12L") that a version does not have (SPEC 4.2)
    const char *release = af_android_release (device->sdk);
    snprintf (device->os_version, sizeof device->os_version, "%s", release? release: "13");
    device->os_version [strspn (device->os_version, "0123456789.")] = 0;
    const screen_t *screen;
    static const char *const arm64 [] = { "arm64-v8a", "armeabi-v7a", "armeabi", NULL };
    static const char *const arm32 [] = { "armeabi-v7a", "armeabi", NULL };
    static const char *const x86 [] = { "x86_64", "x86", "arm64-v8a", "armeabi-v7a", NULL };
    switch (model->form) {
        case AF_FORM_TABLET:
            screen = &s_tablet_screens [s_pick (rng, COUNT (s_tablet_screens))];
            device->density = s_tablet_dpi [s_pick (rng, COUNT (s_tablet_dpi))];
            break;
        case AF_FORM_TV:
            screen = &s_tv_screens [s_pick (rng, COUNT (s_tv_screens))];
            device->density = screen->h >= 2160? 320: 213;
            break;
        case AF_FORM_WATCH:
            screen = &s_watch_screens [s_pick (rng, COUNT (s_watch_screens))];
            device->density = 320;
            break;
        case AF_FORM_PC:
            screen = &s_pc_screens [s_pick (rng, COUNT (s_pc_screens))];
            device->density = 160;
            break;
        default:
            screen = &s_phone_screens [s_pick (rng, COUNT (s_phone_screens))];
            device->density = s_phone_dpi [s_pick (rng, COUNT (s_phone_dpi))];
            break;
    }
    device->screen_w = screen->w;
    device->screen_h = screen->h;
    if (model->form == AF_FORM_PC)
        s_set_abis (device, x86);
    else
    if (model->form == AF_FORM_TV || device->sdk < 26 || s_pick (rng, 10) < 2)
        s_set_abis (device, arm32);
    else
        s_set_abis (device, arm64);
}

//  The newest OS an Apple model's generation runs (the identifier's
//  major number: iPhone14 is the iPhone 13, iPad13 the 2021 iPad Pro)
static const char *
s_apple_os (const fleet_model_t *model)
{
    int g = model->generation;
    if (model->platform == AF_PLATFORM_TVOS)
        return g >= 5? "17.1": g >= 3? "8.4": "6.2";
    if (model->form == AF_FORM_TABLET)
        return g >= 8? "17.1": g >= 6? "16.7": g >= 5? "15.8": g >= 4? "12.5.7": g >= 2? "9.3.5": "5.1.1";
    return g >= 11? "17.1": g >= 10? "16.7": g >= 8? "15.8": g >= 6? "12.5.7": g >= 5? "10.3.4"
         : g >= 4? "9.3.6": g >= 3? "7.1.2": g >= 2? "6.1.6": "3.1.3";
}

static void
s_apple (const fleet_model_t *model, uint64_t *rng, af_device_t *device)
{
    snprintf (device->os_version, sizeof device->os_version, "%s", s_apple_os (model));
    int g = model->generation;
    screen_t screen;
    if (model->platform == AF_PLATFORM_TVOS)
        screen = g >= 6? (screen_t) { 3840, 2160 }: g >= 3? (screen_t) { 1920, 1080 }: (screen_t) { 1280, 720 };
    else
    if (model->form == AF_FORM_TABLET) {
        static const screen_t modern [] = { { 2048, 1536 }, { 2360, 1640 }, { 2388, 1668 }, { 2732, 2048 } };
        screen = g >= 8? modern [s_pick (rng, COUNT (modern))]: g >= 3? (screen_t) { 2048, 1536 }: (screen_t) { 1024, 768 };
    }
    else {
        static const screen_t modern [] = { { 1170, 2532 }, { 1284, 2778 }, { 1179, 2556 }, { 828, 1792 } };
        screen = g >= 12? modern [s_pick (rng, COUNT (modern))]: g >= 10? (screen_t) { 1125, 2436 }
               : g >= 7? (screen_t) { 750, 1334 }: g >= 5? (screen_t) { 640, 1136 }
               : g >= 3? (screen_t) { 640, 960 }: (screen_t) { 320, 480 };
    }
    device->screen_w = screen.w;
    device->screen_h = screen.h;
}

void
fleet_describe (const fleet_model_t *model, uint64_t seed, const char *name, af_device_t *device)
{
    assert (model);
    assert (device);
    memset (device, 0, sizeof *device);
    uint64_t rng = seed ^ 0x5deece66dULL;
    snprintf (device->platform, sizeof device->platform, "%s", af_platform_name (model->platform));
    snprintf (device->form_factor, sizeof device->form_factor, "%s", af_form_name (model->form));
    snprintf (device->model, sizeof device->model, "%s", model->model);
    snprintf (device->manufacturer, sizeof device->manufacturer, "%s", model->manufacturer);
    snprintf (device->name, sizeof device->name, "%s", name && *name? name: model->model);
    if (model->platform == AF_PLATFORM_ANDROID)
        s_android (model, &rng, device);
    else
        s_apple (model, &rng, device);
    uint32_t locales = 1 + s_pick (&rng, 2);
    for (uint32_t i = 0; i < locales; i++)
        snprintf (device->locales [device->locale_count++], sizeof device->locales [0], "%s",
                  s_locales [s_pick (&rng, COUNT (s_locales))]);
}

size_t
fleet_models_of (af_platform_t platform)
{
    size_t count = 0;
    for (size_t i = 0; i < fleet_model_count; i++)
        count += fleet_models [i].platform == platform;
    return count;
}

void
fleet_models_test (bool verbose)
{
    printf (" * fleet_models: ");
    //  A few hundred models of each kind, as the issue asks
    assert (fleet_model_count >= 300);
    assert (fleet_models_of (AF_PLATFORM_ANDROID) >= 200);
    assert (fleet_models_of (AF_PLATFORM_IOS) >= 50);
    assert (fleet_models_of (AF_PLATFORM_TVOS) >= 3);
    size_t forms [AF_FORM_COUNT] = { 0 };
    //  Every model gives a valid description, whatever the seed
    for (size_t i = 0; i < fleet_model_count; i++) {
        forms [fleet_models [i].form]++;
        for (uint64_t seed = 0; seed < 20; seed++) {
            af_device_t device;
            char err [256];
            fleet_describe (&fleet_models [i], seed * 7919 + i, "Fleet device 1", &device);
            if (af_device_validate (&device, err, sizeof err) != AF_OK) {
                printf ("model %zu (%s): %s\n", i, fleet_models [i].model, err);
                assert (false);
            }
        }
    }
    assert (forms [AF_FORM_PHONE] && forms [AF_FORM_TABLET] && forms [AF_FORM_TV]);
    //  The same seed, the same description
    af_device_t a, b;
    fleet_describe (&fleet_models [0], 42, "x", &a);
    fleet_describe (&fleet_models [0], 42, "x", &b);
    assert (memcmp (&a, &b, sizeof a) == 0);
    if (verbose)
        printf ("%zu models (%zu Android, %zu iOS, %zu tvOS; %zu phones, %zu tablets, %zu TVs, %zu watches, %zu PCs) ",
                fleet_model_count, fleet_models_of (AF_PLATFORM_ANDROID), fleet_models_of (AF_PLATFORM_IOS),
                fleet_models_of (AF_PLATFORM_TVOS), forms [AF_FORM_PHONE], forms [AF_FORM_TABLET],
                forms [AF_FORM_TV], forms [AF_FORM_WATCH], forms [AF_FORM_PC]);
    printf ("OK\n");
}
