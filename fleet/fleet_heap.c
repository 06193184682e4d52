/*  =========================================================================
    fleet_heap - an indexed binary min-heap

    Two arrays: the heap of (deadline, item) in the usual layout, and for
    each item its position in the heap (or NONE). Moving an item sifts it
    up or down from where it is.
    =========================================================================
*/
#include "fleet_heap.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#define NONE UINT32_MAX

typedef struct {
    int64_t when;
    uint32_t item;
} entry_t;

struct _fleet_heap_t {
    uint32_t capacity;
    uint32_t size;
    entry_t *entries;
    uint32_t *position;         //  per item: its index in entries, or NONE
};

fleet_heap_t *
fleet_heap_new (uint32_t capacity)
{
    fleet_heap_t *self = (fleet_heap_t *) calloc (1, sizeof (fleet_heap_t));
    if (!self)
        return NULL;
    self->capacity = capacity;
    self->entries = (entry_t *) calloc (capacity? capacity: 1, sizeof (entry_t));
    self->position = (uint32_t *) malloc ((capacity? capacity: 1) * sizeof (uint32_t));
    if (!self->entries || !self->position) {
        fleet_heap_destroy (&self);
        return NULL;
    }
    for (uint32_t i = 0; i < capacity; i++)
        self->position [i] = NONE;
    return self;
}

void
fleet_heap_destroy (fleet_heap_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->entries);
        free ((*self_p)->position);
        free (*self_p);
        *self_p = NULL;
    }
}

static void
s_place (fleet_heap_t *self, uint32_t at, entry_t entry)
{
    self->entries [at] = entry;
    self->position [entry.item] = at;
}

static void
s_sift_up (fleet_heap_t *self, uint32_t at)
{
    entry_t entry = self->entries [at];
    while (at > 0) {
        uint32_t parent = (at - 1) / 2;
        if (self->entries [parent].when <= entry.when)
            break;
        s_place (self, at, self->entries [parent]);
        at = parent;
    }
    s_place (self, at, entry);
}

static void
s_sift_down (fleet_heap_t *self, uint32_t at)
{
    entry_t entry = self->entries [at];
    while (true) {
        uint32_t child = 2 * at + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size && self->entries [child + 1].when < self->entries [child].when)
            child++;
        if (self->entries [child].when >= entry.when)
            break;
        s_place (self, at, self->entries [child]);
        at = child;
    }
    s_place (self, at, entry);
}

void
fleet_heap_set (fleet_heap_t *self, uint32_t item, int64_t when)
{
    assert (self);
    assert (item < self->capacity);
    uint32_t at = self->position [item];
    if (at == NONE) {
        at = self->size++;
        s_place (self, at, (entry_t) { when, item });
        s_sift_up (self, at);
        return;
    }
    int64_t before = self->entries [at].when;
    self->entries [at].when = when;
    if (when < before)
        s_sift_up (self, at);
    else
    if (when > before)
        s_sift_down (self, at);
}

void
fleet_heap_remove (fleet_heap_t *self, uint32_t item)
{
    assert (self);
    assert (item < self->capacity);
    uint32_t at = self->position [item];
    if (at == NONE)
        return;
    self->position [item] = NONE;
    uint32_t last = --self->size;
    if (at == last)
        return;
    int64_t removed = self->entries [at].when;
    s_place (self, at, self->entries [last]);
    if (self->entries [at].when < removed)
        s_sift_up (self, at);
    else
        s_sift_down (self, at);
}

bool
fleet_heap_first (fleet_heap_t *self, uint32_t *item, int64_t *when)
{
    assert (self);
    if (self->size == 0)
        return false;
    *item = self->entries [0].item;
    *when = self->entries [0].when;
    return true;
}

uint32_t
fleet_heap_size (fleet_heap_t *self)
{
    assert (self);
    return self->size;
}

void
fleet_heap_test (bool verbose)
{
    printf (" * fleet_heap: ");
    enum { N = 5000 };
    fleet_heap_t *heap = fleet_heap_new (N);
    assert (heap);
    uint32_t item;
    int64_t when;
    assert (!fleet_heap_first (heap, &item, &when));
    //  Deadlines set, moved both ways and removed: taken in order
    int64_t model [N];
    uint64_t rng = 12345;
    for (uint32_t i = 0; i < N; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        model [i] = (int64_t) (rng >> 40) % 100000;
        fleet_heap_set (heap, i, model [i]);
    }
    for (uint32_t i = 0; i < N; i += 3) {
        model [i] = model [i] / 2 + (i % 2? 70000: 0);
        fleet_heap_set (heap, i, model [i]);
    }
    for (uint32_t i = 1; i < N; i += 7) {
        fleet_heap_remove (heap, i);
        fleet_heap_remove (heap, i);        //  twice: nothing the second time
        model [i] = -1;
    }
    uint32_t expected = 0;
    for (uint32_t i = 0; i < N; i++)
        expected += model [i] >= 0;
    assert (fleet_heap_size (heap) == expected);
    int64_t last = -1;
    uint32_t taken = 0;
    while (fleet_heap_first (heap, &item, &when)) {
        assert (when >= last);
        assert (model [item] == when);
        last = when;
        fleet_heap_remove (heap, item);
        taken++;
    }
    assert (taken == expected);
    //  Set again after removal, and an equal deadline
    fleet_heap_set (heap, 7, 5);
    fleet_heap_set (heap, 9, 5);
    fleet_heap_set (heap, 7, 5);
    assert (fleet_heap_size (heap) == 2);
    assert (fleet_heap_first (heap, &item, &when) && when == 5);
    fleet_heap_destroy (&heap);
    assert (heap == NULL);
    if (verbose)
        printf ("%u deadlines in order ", taken);
    printf ("OK\n");
}
