#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

struct arena_chunk {
    struct arena_chunk *next;
    max_align_t data[];
};

#define ARENA_ALIGN (sizeof(max_align_t))

static void *pb_alloc(void *data, size_t size)
{
    return arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

void arena_init(struct arena *a, void *buffer, size_t cap, size_t limit)
{
    a->base = buffer;
    a->cap = cap;
    a->used = 0;
    a->limit = limit;
    a->overflow_bytes = 0;
    a->chunks = NULL;
    a->allocator.alloc = pb_alloc;
    a->allocator.free = pb_free;
    a->allocator.allocator_data = a;
}

void *arena_alloc(struct arena *a, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    size_t rounded = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (rounded <= a->cap - a->used) {
        void *p = a->base + a->used;
        a->used += rounded;
        return p;
    }
    if (a->cap + a->overflow_bytes + rounded > a->limit)
        return NULL;
    struct arena_chunk *c = malloc(sizeof(*c) + rounded);
    if (c == NULL)
        return NULL;
    c->next = a->chunks;
    a->chunks = c;
    a->overflow_bytes += rounded;
    return c->data;
}

void arena_reset(struct arena *a)
{
    while (a->chunks != NULL) {
        struct arena_chunk *c = a->chunks;
        a->chunks = c->next;
        free(c);
    }
    a->overflow_bytes = 0;
    a->used = 0;
}

ProtobufCAllocator *arena_allocator(struct arena *a)
{
    return &a->allocator;
}
