#include "idem.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

static struct hmap by_key, by_id;
static struct idem_entry *oldest, *newest; /* finished, by finish order */
static struct idem_entry *free_list;
static size_t nfinished;
static size_t limit_count;
static int64_t limit_age_ms;

struct key {
    const char *payer;
    const char *msg_id;
};

static uint64_t key_hash(const char *payer, const char *msg_id)
{
    char buf[5 + TRANSFER_ID_MAX + 1];
    size_t pl = strnlen(payer, 4), ml = strnlen(msg_id, TRANSFER_ID_MAX);
    memcpy(buf, payer, pl);
    buf[pl] = '/';
    memcpy(buf + pl + 1, msg_id, ml);
    return hmap_hash(buf, pl + 1 + ml);
}

static bool eq_key(const struct hnode *n, const void *k)
{
    const struct idem_entry *e = hmap_entry(n, struct idem_entry, by_key);
    const struct key *key = k;
    return strcmp(e->payer, key->payer) == 0 && strcmp(e->msg_id, key->msg_id) == 0;
}

static bool eq_id(const struct hnode *n, const void *k)
{
    return hmap_entry(n, struct idem_entry, by_id)->transfer_id == *(const uint64_t *)k;
}

int idem_init(size_t max_finished, int64_t max_age_ms)
{
    limit_count = max_finished;
    limit_age_ms = max_age_ms;
    if (hmap_init(&by_key, 1 << 16) != 0)
        return -1;
    if (hmap_init(&by_id, 1 << 16) != 0) {
        hmap_destroy(&by_key);
        return -1;
    }
    return 0;
}

void idem_set_limits(size_t max_finished, int64_t max_age_ms)
{
    limit_count = max_finished;
    limit_age_ms = max_age_ms;
}

static void free_chain(struct hmap *m)
{
    hmap_settle(m);
    for (size_t i = 0; i <= m->mask; i++) {
        struct hnode *n = m->buckets[i];
        while (n != NULL) {
            struct hnode *next = n->next;
            struct idem_entry *e = hmap_entry(n, struct idem_entry, by_key);
            free(e->reason_text);
            free(e);
            n = next;
        }
    }
}

/* A copy of a rejection's text, NULL for none (or when out of memory: the
 * outcome's code is kept either way). */
static char *text_dup(const char *text)
{
    if (text == NULL || text[0] == '\0')
        return NULL;
    char *copy = strdup(text);
    if (copy == NULL)
        log_error("event=oom what=idempotency_text");
    return copy;
}

void idem_free_all(void)
{
    if (by_key.buckets != NULL)
        free_chain(&by_key);
    hmap_destroy(&by_key);
    hmap_destroy(&by_id);
    while (free_list != NULL) {
        struct idem_entry *e = free_list;
        free_list = e->newer;
        free(e);
    }
    oldest = newest = NULL;
    nfinished = 0;
}

struct idem_entry *idem_find(const char *payer, const char *msg_id)
{
    struct key k = {payer, msg_id};
    struct hnode *n = hmap_find(&by_key, key_hash(payer, msg_id), eq_key, &k);
    return n != NULL ? hmap_entry(n, struct idem_entry, by_key) : NULL;
}

struct idem_entry *idem_find_id(uint64_t transfer_id)
{
    struct hnode *n = hmap_find(&by_id, hmap_hash_u64(transfer_id), eq_id, &transfer_id);
    return n != NULL ? hmap_entry(n, struct idem_entry, by_id) : NULL;
}

static struct idem_entry *entry_new(void)
{
    struct idem_entry *e = free_list;
    if (e != NULL)
        free_list = e->newer;
    else
        e = malloc(sizeof(*e));
    if (e == NULL) {
        log_error("event=oom what=idempotency_entry");
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    return e;
}

static int index_entry(struct idem_entry *e)
{
    if (hmap_insert(&by_key, &e->by_key, key_hash(e->payer, e->msg_id)) != 0)
        return -1;
    if (hmap_insert(&by_id, &e->by_id, hmap_hash_u64(e->transfer_id)) != 0) {
        hmap_remove(&by_key, &e->by_key);
        return -1;
    }
    return 0;
}

struct idem_entry *idem_add_inflight(struct transfer *t)
{
    struct idem_entry *e = entry_new();
    if (e == NULL)
        return NULL;
    memcpy(e->payer, t->payer, sizeof(e->payer));
    memcpy(e->msg_id, t->msg_id, sizeof(e->msg_id));
    memcpy(e->fingerprint, t->fingerprint, sizeof(e->fingerprint));
    e->transfer_id = t->id;
    e->inflight = t;
    if (index_entry(e) != 0) {
        e->newer = free_list;
        free_list = e;
        return NULL;
    }
    return e;
}

static void append_finished(struct idem_entry *e)
{
    e->newer = NULL;
    e->older = newest;
    if (newest != NULL)
        newest->newer = e;
    else
        oldest = e;
    newest = e;
    nfinished++;
}

void idem_finish(struct idem_entry *e, const struct transfer *t)
{
    e->inflight = NULL;
    e->kind = t->kind;
    e->status = t->status;
    memcpy(e->reason, t->reason, sizeof(e->reason));
    memcpy(e->payee, t->payee, sizeof(e->payee));
    memcpy(e->end_to_end_id, t->end_to_end_id, sizeof(e->end_to_end_id));
    e->amount = t->amount;
    e->fee = t->fee;
    memcpy(e->fee_payer, t->fee_payer, sizeof(e->fee_payer));
    e->original_id = t->original_id;
    e->finished_ms = t->settled_ms;
    e->reason_text = t->status == TRANSFER_RJCT ? text_dup(t->reason_text) : NULL;
    append_finished(e);
}

struct idem_entry *idem_add_finished(const struct idem_entry *outcome)
{
    if (idem_find(outcome->payer, outcome->msg_id) != NULL)
        return NULL;
    struct idem_entry *e = entry_new();
    if (e == NULL)
        return NULL;
    *e = *outcome;
    e->inflight = NULL;
    e->reason_text = text_dup(outcome->reason_text);
    if (index_entry(e) != 0) {
        free(e->reason_text);
        e->newer = free_list;
        free_list = e;
        return NULL;
    }
    append_finished(e);
    return e;
}

void idem_remove(struct idem_entry *e)
{
    hmap_remove(&by_key, &e->by_key);
    hmap_remove(&by_id, &e->by_id);
    if (e->inflight == NULL) {
        if (e->older != NULL)
            e->older->newer = e->newer;
        else
            oldest = e->newer;
        if (e->newer != NULL)
            e->newer->older = e->older;
        else
            newest = e->older;
        nfinished--;
    }
    free(e->reason_text);
    e->reason_text = NULL;
    e->newer = free_list;
    free_list = e;
}

void idem_evict(int64_t now_ms)
{
    while (oldest != NULL &&
           (nfinished > limit_count || now_ms - oldest->finished_ms > limit_age_ms))
        idem_remove(oldest);
}

size_t idem_count(void)
{
    return by_key.count;
}

size_t idem_finished_count(void)
{
    return nfinished;
}
