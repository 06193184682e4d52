/*  af_package - JSON views of packages and resolutions, for CLIs */
#include "af_package.h"
#include <jansson.h>

const char *
af_fit_name (af_fit_t fit)
{
    switch (fit) {
        case AF_FIT_PACKAGE:         return "package";
        case AF_FIT_STORE_LINK:      return "store-link";
        case AF_FIT_NONE:            return "no-fit";
        case AF_FIT_UNKNOWN_PROGRAM: return "unknown-program";
    }
    return "?";
}

void *
af_package_to_jansson (const af_package_t *self)
{
    json_t *root = json_object ();
    if (!root)
        return NULL;
    json_object_set_new (root, "program", json_string (self->program));
    json_object_set_new (root, "name", json_string (self->display));
    json_object_set_new (root, "publisher", json_string (self->publisher));
    json_object_set_new (root, "category", json_string (self->category));
    json_object_set_new (root, "platform", json_string (self->platform));
    json_object_set_new (root, "versionCode", json_integer ((json_int_t) self->version_code));
    json_object_set_new (root, "versionName", json_string (self->version_name));
    json_object_set_new (root, "packageId", json_string (self->package_id));
    json_object_set_new (root, "hash", json_string (self->hash));
    json_object_set_new (root, "size", json_integer ((json_int_t) self->size));
    json_object_set_new (root, "abi", json_string (self->abi));
    json_object_set_new (root, "storeLink", json_string (self->store_link));
    json_object_set_new (root, "price", json_integer (self->price_cents));
    if (*self->currency)
        json_object_set_new (root, "currency", json_string (self->currency));
    json_object_set_new (root, "votes", json_integer (self->votes));
    return root;
}

void *
af_resolution_to_jansson (const char *program, const af_resolution_t *self)
{
    json_t *root = json_object ();
    if (!root)
        return NULL;
    json_object_set_new (root, "program", json_string (program));
    json_object_set_new (root, "fit", json_string (af_fit_name (self->fit)));
    if (self->fit != AF_FIT_UNKNOWN_PROGRAM)
        json_object_set_new (root, "package", (json_t *) af_package_to_jansson (&self->package));
    if (*self->reason)
        json_object_set_new (root, "reason", json_string (self->reason));
    return root;
}
