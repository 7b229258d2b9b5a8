#include "hmap.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static uint64_t sip_k0 = 0x0706050403020100ULL, sip_k1 = 0x0f0e0d0c0b0a0908ULL;

#define REHASH_STEP 64 /* old buckets moved per insert or remove */

int hmap_init(struct hmap *m, size_t initial)
{
    size_t n = 16;
    while (n < initial)
        n <<= 1;
    memset(m, 0, sizeof(*m));
    m->buckets = calloc(n, sizeof(*m->buckets));
    if (m->buckets == NULL) {
        log_error("event=oom what=hmap buckets=%zu", n);
        return -1;
    }
    m->mask = n - 1;
    return 0;
}

void hmap_destroy(struct hmap *m)
{
    free(m->buckets);
    free(m->old);
    memset(m, 0, sizeof(*m));
}

/* Moves up to `steps` buckets of the old array into the new one. */
static void rehash_step(struct hmap *m, size_t steps)
{
    while (m->old != NULL && steps-- > 0) {
        struct hnode *e = m->old[m->old_pos];
        while (e != NULL) {
            struct hnode *next = e->next;
            size_t j = e->hash & m->mask;
            e->next = m->buckets[j];
            m->buckets[j] = e;
            e = next;
        }
        m->old[m->old_pos] = NULL;
        if (m->old_pos++ == m->old_mask) {
            free(m->old);
            m->old = NULL;
        }
    }
}

void hmap_settle(struct hmap *m)
{
    rehash_step(m, SIZE_MAX);
}

static void start_growing(struct hmap *m)
{
    size_t n = (m->mask + 1) * 2;
    struct hnode **b = calloc(n, sizeof(*b));
    if (b == NULL) {
        /* best effort: a full table is slower, never wrong */
        log_error("event=oom what=hmap_grow buckets=%zu", n);
        return;
    }
    m->old = m->buckets;
    m->old_mask = m->mask;
    m->old_pos = 0;
    m->buckets = b;
    m->mask = n - 1;
}

int hmap_insert(struct hmap *m, struct hnode *n, uint64_t h)
{
    if (m->old == NULL && m->count >= m->mask + 1)
        start_growing(m);
    rehash_step(m, REHASH_STEP);
    n->hash = h;
    size_t i = h & m->mask;
    n->next = m->buckets[i];
    m->buckets[i] = n;
    m->count++;
    return 0;
}

static struct hnode *find_in(struct hnode *e, uint64_t h, hmap_eq_fn eq, const void *key)
{
    for (; e != NULL; e = e->next)
        if (e->hash == h && eq(e, key))
            return e;
    return NULL;
}

struct hnode *hmap_find(const struct hmap *m, uint64_t h, hmap_eq_fn eq, const void *key)
{
    struct hnode *e = find_in(m->buckets[h & m->mask], h, eq, key);
    if (e == NULL && m->old != NULL && (h & m->old_mask) >= m->old_pos)
        e = find_in(m->old[h & m->old_mask], h, eq, key);
    return e;
}

static bool unlink_from(struct hnode **pp, struct hnode *n)
{
    for (; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            n->next = NULL;
            return true;
        }
    }
    return false;
}

void hmap_remove(struct hmap *m, struct hnode *n)
{
    bool found = unlink_from(&m->buckets[n->hash & m->mask], n);
    if (!found && m->old != NULL && (n->hash & m->old_mask) >= m->old_pos)
        found = unlink_from(&m->old[n->hash & m->old_mask], n);
    if (found)
        m->count--;
    rehash_step(m, REHASH_STEP);
}

void hmap_seed(const uint8_t key[16])
{
    memcpy(&sip_k0, key, 8);
    memcpy(&sip_k1, key + 8, 8);
}

void hmap_seed_random(void)
{
    uint8_t key[16];
    if (RAND_bytes(key, sizeof(key)) != 1) {
        /* keep the fixed key: still correct, only predictable */
        log_warn("event=hmap_seed_failed what=\"RAND_bytes failed; hash key is not random\"");
        return;
    }
    hmap_seed(key);
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/* SipHash-1-3 (one compression round, three finalisation rounds). */
uint64_t hmap_hash(const void *data, size_t len)
{
    const unsigned char *in = data;
    uint64_t v0 = 0x736f6d6570736575ULL ^ sip_k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ sip_k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ sip_k0;
    uint64_t v3 = 0x7465646279746573ULL ^ sip_k1;
    uint64_t b = (uint64_t)len << 56;
    size_t full = len & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m;
        memcpy(&m, in + i, 8); /* little-endian hosts only (x86_64, arm64) */
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < (len & 7); i++)
        t |= (uint64_t)in[full + i] << (8 * i);
    b |= t;
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t hmap_hash_u64(uint64_t v)
{
    return hmap_hash(&v, sizeof(v));
}
