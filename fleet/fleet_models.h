/*  =========================================================================
    fleet_models - real device models, and complete descriptions of them

    The table is made at build time by fleet_mkmodels from the device
    lists in data/ (a few hundred Android models of well-known brands,
    every iPhone, iPad and Apple TV). The lists name models; they do not
    give specifications, so fleet_describe completes each into a device
    map the broker accepts (SPEC 4.2) with values plausible for its kind
    and era: an Android API level from a spread of the releases in use,
    its release as osVersion, ABIs and a density of that kind; an Apple
    model an iOS (tvOS) version its identifier's generation runs; a screen
    from the common resolutions of its form factor; a locale. The same
    seed gives the same description, so a run can be repeated.
    =========================================================================
*/
#ifndef FLEET_MODELS_H_INCLUDED
#define FLEET_MODELS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_device.h"

typedef struct {
    af_platform_t platform;
    af_form_t form;
    int generation;             //  Apple: the identifier's major ("iPhone14,5": 14); else 0
    const char *manufacturer;
    const char *model;          //  "Galaxy S21 5G (SM-G9910)", "iPhone 13 (iPhone14,5)"
} fleet_model_t;

extern const fleet_model_t fleet_models [];
extern const size_t fleet_model_count;

//  Fill *device with a complete description of model, drawn from seed;
//  name is what the user calls it (copied, truncated to AF_MAX_NAME).
//  The result passes af_device_validate (the self-test checks every
//  model with many seeds).
void fleet_describe (const fleet_model_t *model, uint64_t seed, const char *name, af_device_t *device);

//  How many models of a platform the table holds
size_t fleet_models_of (af_platform_t platform);

//  Self test
void fleet_models_test (bool verbose);

#endif
