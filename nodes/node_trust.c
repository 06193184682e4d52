/*  =========================================================================
    node_trust - the store's signatures, checked before anything installs

    The device trusts one thing: the store's root public key it was given
    (--root-key, or $AF_ROOT_KEY). An offer's package is installed only if
    the metadata that came with it (SPEC 5.20 `meta`) chains to that key,
    is not expired, is not older than metadata this device saw already,
    and names the offer's very hash, size and version; the download then
    checks that the bytes hash to it (af_download). So a broker or a
    matcher that forges an offer, or a catalog file replaced behind the
    store's back, gets a refusal naming what failed, before a byte is
    fetched, and the installed version stays. A package older than the one
    installed is refused too (a downgrade is a rollback by other means),
    unless it is the very version of a restore the user asked for on this
    device (node_backup.c): the broker cannot ask for one in their name.

    The documents it verified are remembered in memory (af_trust_cache):
    an unchanged root is not verified again for each install, nor the
    same targets bytes.

    HOME/trust.json keeps the highest versions seen: { "root": N,
    "targets": { PROGRAM: N } }, saved whenever one rises, durably (temp
    file, fsync, rename, fsync of the home) before the install goes on:
    if it cannot be saved, the offer is refused.

    Without a root key the node installs no package (store links are still
    recorded), unless --insecure-unsigned says to install without checks:
    for tests and demos, never for a device people use.
    =========================================================================
*/
#include "node_int.h"

int
node_trust_setup (af_node_t *self, char *err, size_t errlen)
{
    const char *path = *self->config.root_key? self->config.root_key: getenv ("AF_ROOT_KEY");
    if (path && *path) {
        char inner [400];
        if (af_minisign_pub_load (path, &self->root_pub, inner, sizeof inner) != AF_OK) {
            snprintf (err, errlen, "the store's root key: %s", inner);
            return -1;
        }
        self->has_root = true;
        self->trust_cache = af_trust_cache_new ();
    }
    else
    if (!self->config.insecure_unsigned)
        zsys_warning ("node: no store root key (--root-key): this device will install no package");
    self->trust = node_json_load (self, "trust.json");
    if (!json_is_object (self->trust)) {
        json_decref (self->trust);
        self->trust = json_pack ("{s:i, s:{}}", "root", 0, "targets");
    }
    return 0;
}

//  A version kept in trust.json (0: none)
static uint64_t
s_seen (json_t *value)
{
    return json_is_integer (value) && json_integer_value (value) > 0? (uint64_t) json_integer_value (value): 0;
}

int
node_trust_check (af_node_t *self, job_t *job, char *err, size_t errlen)
{
    if (!self->has_root && self->config.insecure_unsigned)
        return 0;
    if (!self->has_root) {
        snprintf (err, errlen, "refused: this device has no store root key to check packages with (--root-key)");
        return -1;
    }
    json_t *targets = json_object_get (self->trust, "targets");
    if (!json_is_object (targets)) {
        targets = json_object ();
        json_object_set_new (self->trust, "targets", targets);
    }
    af_trust_seen_t seen = { s_seen (json_object_get (self->trust, "root")),
                             s_seen (json_object_get (targets, job->program)), "" };
    //  The version name too: a restore's permission below is given by it
    af_trust_want_t want = { job->program, job->package.hash, job->package.size, job->package.version_code,
                             (uint64_t) zclock_time (), job->package.version_name };
    char inner [AF_MAX_REASON + 1];
    if (af_trust_check (&self->root_pub, self->trust_cache, job->meta, job->meta_size, &want, &seen, inner, sizeof inner) != AF_OK) {
        snprintf (err, errlen, "refused: signature check: %s", inner);
        return -1;
    }
    af_install_info_t info;
    bool found;
    snprintf (job->key_id, sizeof job->key_id, "%s", seen.key_id);
    if (af_install_record_read (self->config.home, job->program, &info, &found) == AF_OK && found
    &&  info.version_code > job->package.version_code && !node_restore_allows (self, job)) {
        snprintf (err, errlen, "refused: rollback: version %s (%llu) is older than the installed %s (%llu)",
                  job->package.version_name, (unsigned long long) job->package.version_code, info.version_name,
                  (unsigned long long) info.version_code);
        return -1;
    }
    if (seen.root != s_seen (json_object_get (self->trust, "root"))
    ||  seen.targets != s_seen (json_object_get (targets, job->program))) {
        //  On disk before anything installs: a crash must not take the
        //  rollback guard back to versions older than one a device acted on
        json_object_set_new (self->trust, "root", json_integer ((json_int_t) seen.root));
        json_object_set_new (targets, job->program, json_integer ((json_int_t) seen.targets));
        if (node_json_save (self, "trust.json", self->trust)) {
            snprintf (err, errlen, "refused: cannot record the metadata versions seen in trust.json (see the log)");
            return -1;
        }
    }
    return 0;
}
