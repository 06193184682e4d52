/*  =========================================================================
    fleet_heap - an indexed min-heap of deadlines, one per item

    The fleet's schedule: every simulated device has one entry, its next
    wake-up (a heartbeat due, an action, a reconnect, a request's
    deadline), so the main loop finds what is due in O(1) and moves one
    device's wake-up in O(log N), never scanning all devices. Items are
    the integers 0..capacity-1 (device indexes); each is in the heap at
    most once, and its position is kept so it can be moved or removed.
    =========================================================================
*/
#ifndef FLEET_HEAP_H_INCLUDED
#define FLEET_HEAP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _fleet_heap_t fleet_heap_t;

//  A heap for items 0..capacity-1. NULL on OOM.
fleet_heap_t *fleet_heap_new (uint32_t capacity);

//  Destroy; sets *self_p to NULL.
void fleet_heap_destroy (fleet_heap_t **self_p);

//  Put item in the heap with deadline when, or move it there if it is in.
void fleet_heap_set (fleet_heap_t *self, uint32_t item, int64_t when);

//  Take item out of the heap (nothing if it is not in).
void fleet_heap_remove (fleet_heap_t *self, uint32_t item);

//  The item with the earliest deadline: true and *item, *when; false if
//  the heap is empty. The item stays in.
bool fleet_heap_first (fleet_heap_t *self, uint32_t *item, int64_t *when);

//  Items in the heap
uint32_t fleet_heap_size (fleet_heap_t *self);

//  Self test
void fleet_heap_test (bool verbose);

#endif
