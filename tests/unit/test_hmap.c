/* hmap: every key stays findable and removable while the table grows
 * incrementally (lookups span the old and the new bucket arrays). */
#include <stdlib.h>

#include "check.h"
#include "hmap.h"

struct item {
    struct hnode node;
    uint64_t key;
};

static bool eq(const struct hnode *n, const void *key)
{
    return hmap_entry(n, struct item, node)->key == *(const uint64_t *)key;
}

static struct item *find(struct hmap *m, uint64_t k)
{
    struct hnode *n = hmap_find(m, hmap_hash_u64(k), eq, &k);
    return n ? hmap_entry(n, struct item, node) : NULL;
}

int main(void)
{
    enum { N = 200000 };
    struct item *items = calloc(N, sizeof(*items));
    struct hmap m;
    CHECK(hmap_init(&m, 16) == 0);

    TEST_STEP("inserts through many incremental doublings; all found at every step");
    for (uint64_t i = 0; i < N; i++) {
        items[i].key = i * 7919 + 1;
        CHECK(hmap_insert(&m, &items[i].node, hmap_hash_u64(items[i].key)) == 0);
        /* spot-check older keys while a rehash is likely under way */
        uint64_t j = (i * 2654435761u) % (i + 1);
        CHECK(find(&m, items[j].key) == &items[j], "key %llu lost after %llu inserts",
              (unsigned long long)j, (unsigned long long)i);
    }
    CHECK_INT(m.count, N);
    for (uint64_t i = 0; i < N; i++)
        CHECK(find(&m, items[i].key) == &items[i]);
    CHECK(find(&m, 2) == NULL);

    TEST_STEP("removing half, the rest still found; the table settles");
    for (uint64_t i = 0; i < N; i += 2)
        hmap_remove(&m, &items[i].node);
    CHECK_INT(m.count, N / 2);
    for (uint64_t i = 0; i < N; i++)
        CHECK((find(&m, items[i].key) != NULL) == (i % 2 == 1), "key %llu", (unsigned long long)i);
    hmap_settle(&m);
    CHECK(m.old == NULL);
    size_t walked = 0;
    for (size_t b = 0; b <= m.mask; b++)
        for (struct hnode *n = m.buckets[b]; n != NULL; n = n->next)
            walked++;
    CHECK_INT(walked, N / 2);

    hmap_destroy(&m);
    free(items);
    return 0;
}
