/*  =========================================================================
    af_curvepool - reused guarded pages for libzmq's CURVE handshakes

    libzmq 4.3 (built with libsodium) puts each plaintext of a CURVE
    handshake in a std::vector with a "secure" allocator: every HELLO,
    COOKIE, WELCOME, INITIATE, VOUCH and READY plaintext is a
    sodium_allocarray and a sodium_free, and each of those is an mmap of
    guard pages, two mprotects, an mlock, then an munlock, an mprotect
    and an munmap, whose TLB shootdown interrupts every other thread of
    the process. A broker taking a storm of 10,000 reconnecting devices
    spent a quarter of its I/O thread's time there (perf, 2026-12-02),
    more than in the handshake's cryptography, while the kernel dropped
    the connections its full listen backlog could not take.

    This file, linked into the programs that take or make many CURVE
    connections (appferry-broker, appferry-fleet) and exported from them
    (-Wl,--export-dynamic-symbol), defines sodium_allocarray and
    sodium_free, which libzmq's calls bind to before libsodium's. A
    request of up to AF_CURVEPOOL_BLOCK bytes is served from a pool of
    blocks that libsodium's own sodium_allocarray made (guard pages,
    canary and mlock as before); a freed block is wiped with
    sodium_memzero and kept for the next handshake, not unmapped. Larger
    requests, a full pool, and every pointer not from the pool go to
    libsodium as before. The only difference a caller can see: a block
    is larger than asked for, so the guard page sits up to a page past
    the end of a small plaintext instead of right after it.

    Our own code does not call sodium_allocarray (af_oprf and the
    contacts worker use sodium_malloc, which stays libsodium's, and may
    sodium_mprotect_readonly what they get: a pooled block could not be
    wiped then). sodium_free of their pointers is not the pool's and goes
    to libsodium.
    =========================================================================
*/
#include <sodium.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define AF_CURVEPOOL_BLOCK  4000    //  with libsodium's 16-byte canary: one data page
#define AF_CURVEPOOL_SLOTS  64      //  handshakes in progress at once, times 2, is plenty

typedef struct {
    void *block;
    size_t used;                    //  0: free; else the bytes asked for
} slot_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static slot_t s_slots [AF_CURVEPOOL_SLOTS];
static size_t s_count;
static void *(*s_real_allocarray) (size_t, size_t);
static void (*s_real_free) (void *);

static void
s_resolve (void)
{
    //  The definitions after ours in the lookup order: libsodium's
    *(void **) &s_real_allocarray = dlsym (RTLD_NEXT, "sodium_allocarray");
    *(void **) &s_real_free = dlsym (RTLD_NEXT, "sodium_free");
    if (!s_real_allocarray || !s_real_free) {
        fprintf (stderr, "af_curvepool: libsodium's sodium_allocarray/sodium_free not found: %s\n", dlerror ());
        abort ();
    }
}

void *
sodium_allocarray (size_t count, size_t size)
{
    pthread_once (&s_once, s_resolve);
    if (size && count > SIZE_MAX / size)
        return NULL;                    //  as libsodium: ENOMEM
    size_t bytes = count * size;
    if (bytes == 0 || bytes > AF_CURVEPOOL_BLOCK)
        return s_real_allocarray (count, size);
    void *found = NULL;
    pthread_mutex_lock (&s_lock);
    for (size_t i = 0; i < s_count && !found; i++)
        if (!s_slots [i].used) {
            s_slots [i].used = bytes;
            found = s_slots [i].block;
        }
    if (!found && s_count < AF_CURVEPOOL_SLOTS) {
        void *block = s_real_allocarray (1, AF_CURVEPOOL_BLOCK);
        if (block) {
            s_slots [s_count].block = block;
            s_slots [s_count++].used = bytes;
            found = block;
        }
    }
    pthread_mutex_unlock (&s_lock);
    //  A full pool: libsodium's, as before (freed to it too: not a slot)
    return found? found: s_real_allocarray (count, size);
}

void
sodium_free (void *ptr)
{
    pthread_once (&s_once, s_resolve);
    if (!ptr)
        return;
    bool pooled = false;
    pthread_mutex_lock (&s_lock);
    for (size_t i = 0; i < s_count && !pooled; i++)
        if (s_slots [i].block == ptr) {
            if (!s_slots [i].used) {
                fprintf (stderr, "af_curvepool: sodium_free of a block freed already\n");
                abort ();               //  as libsodium would, not a second owner later
            }
            sodium_memzero (ptr, s_slots [i].used);
            s_slots [i].used = 0;
            pooled = true;
        }
    pthread_mutex_unlock (&s_lock);
    if (!pooled)
        s_real_free (ptr);
}
