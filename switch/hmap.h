/*
 * hmap: an intrusive chained hash map. Objects embed a struct hnode and are
 * owned by whoever put them in; the map never allocates per entry (only its
 * bucket array, which doubles as it fills). Keys are compared by the caller's
 * function; hashes come from hmap_hash(), SipHash-1-3 keyed once per process
 * with random bytes, so participants cannot choose colliding msg_ids.
 */
#ifndef SIKKA_HMAP_H
#define SIKKA_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hnode {
    struct hnode *next;
    uint64_t hash;
};

struct hmap {
    struct hnode **buckets;
    size_t mask; /* bucket count - 1 */
    size_t count;
    struct hnode **old; /* the array being drained while growing, else NULL */
    size_t old_mask;
    size_t old_pos;     /* buckets of `old` below this are already moved */
};

/* eq(node, key) -> true when node holds key */
typedef bool (*hmap_eq_fn)(const struct hnode *node, const void *key);

int hmap_init(struct hmap *m, size_t initial) __attribute__((warn_unused_result));
void hmap_destroy(struct hmap *m);
/* Inserts n with hash h (duplicates are the caller's business). */
int hmap_insert(struct hmap *m, struct hnode *n, uint64_t h) __attribute__((warn_unused_result));
struct hnode *hmap_find(const struct hmap *m, uint64_t h, hmap_eq_fn eq, const void *key);
void hmap_remove(struct hmap *m, struct hnode *n);
/* Finishes a rehash in progress; call before walking m->buckets directly. */
void hmap_settle(struct hmap *m);

/* Seeds the keyed hash; call once at start (tests may pass a fixed key). */
void hmap_seed(const uint8_t key[16]);
void hmap_seed_random(void);
uint64_t hmap_hash(const void *data, size_t len);
uint64_t hmap_hash_u64(uint64_t v);

#define hmap_entry(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
