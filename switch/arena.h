/*
 * arena: a bump allocator for per-message memory. protobuf-c unpacks each
 * received frame into the loop's arena; the arena is reset once the frame has
 * been handled, so no pointer into a message may outlive that frame.
 *
 * The first `cap` bytes come from a buffer the owner provides; past that the
 * arena takes chunks from malloc up to `limit` bytes in all, and frees them on
 * reset. Allocation beyond the limit fails (protobuf-c then fails the unpack),
 * which bounds what a hostile frame can make us allocate.
 */
#ifndef SIKKA_ARENA_H
#define SIKKA_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

struct arena_chunk;

struct arena {
    unsigned char *base;
    size_t cap;
    size_t used;
    size_t limit;          /* total bytes, buffer included */
    size_t overflow_bytes; /* bytes in chunks */
    struct arena_chunk *chunks;
    ProtobufCAllocator allocator;
};

void arena_init(struct arena *a, void *buffer, size_t cap, size_t limit);
void *arena_alloc(struct arena *a, size_t size);
void arena_reset(struct arena *a);
/* protobuf-c allocator that draws from the arena; frees are no-ops */
ProtobufCAllocator *arena_allocator(struct arena *a);

#endif
