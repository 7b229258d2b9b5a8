#include "participant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static struct hmap registry;
static struct participant **sorted;
static size_t nsorted, capsorted;

int participant_registry_init(void)
{
    return hmap_init(&registry, 64);
}

void participant_registry_free(void)
{
    for (size_t i = 0; i < nsorted; i++)
        free(sorted[i]);
    free(sorted);
    sorted = NULL;
    nsorted = capsorted = 0;
    hmap_destroy(&registry);
}

bool participant_code_valid(const char *code)
{
    if (code == NULL || strlen(code) != PARTICIPANT_CODE_LEN)
        return false;
    for (int i = 0; i < PARTICIPANT_CODE_LEN; i++)
        if (code[i] < 'A' || code[i] > 'Z')
            return false;
    return true;
}

static bool eq_code(const struct hnode *n, const void *key)
{
    return strcmp(hmap_entry(n, struct participant, node)->code, key) == 0;
}

struct participant *participant_find(const char *code)
{
    if (!participant_code_valid(code))
        return NULL;
    struct hnode *n = hmap_find(&registry, hmap_hash(code, PARTICIPANT_CODE_LEN), eq_code, code);
    return n != NULL ? hmap_entry(n, struct participant, node) : NULL;
}

static int cmp_code(const void *a, const void *b)
{
    return strcmp((*(struct participant *const *)a)->code, (*(struct participant *const *)b)->code);
}

struct participant *participant_add(const char *code, const char *name, const char *kind)
{
    if (!participant_code_valid(code)) {
        log_error("event=participant_add_failed code=%s why=\"not a 4-letter code\"", code);
        return NULL;
    }
    struct participant *p = participant_find(code);
    if (p != NULL)
        return p;
    if (nsorted == capsorted) {
        size_t ncap = capsorted ? capsorted * 2 : 16;
        struct participant **ns = realloc(sorted, ncap * sizeof(*ns));
        if (ns == NULL) {
            log_error("event=oom what=participant_registry code=%s", code);
            return NULL;
        }
        sorted = ns;
        capsorted = ncap;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        log_error("event=oom what=participant code=%s", code);
        return NULL;
    }
    memcpy(p->code, code, PARTICIPANT_CODE_LEN + 1);
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->kind, sizeof(p->kind), "%s", kind);
    p->status = PARTICIPANT_ACTIVE;
    p->ndc_grace = -1;
    p->index = (unsigned)nsorted;
    if (hmap_insert(&registry, &p->node, hmap_hash(code, PARTICIPANT_CODE_LEN)) != 0) {
        free(p);
        return NULL;
    }
    sorted[nsorted++] = p;
    qsort(sorted, nsorted, sizeof(*sorted), cmp_code);
    return p;
}

struct participant *const *participant_all(size_t *count)
{
    *count = nsorted;
    return sorted;
}

const char *participant_status_name(enum participant_status s)
{
    return s == PARTICIPANT_ACTIVE ? "active" : "suspended";
}

int participant_parse_status(const char *s, enum participant_status *out)
{
    if (strcmp(s, "active") == 0)
        *out = PARTICIPANT_ACTIVE;
    else if (strcmp(s, "suspended") == 0)
        *out = PARTICIPANT_SUSPENDED;
    else
        return -1;
    return 0;
}

bool participant_set_ndc(struct participant *p, int64_t ndc)
{
    bool lowered = ndc < p->pos.ndc;
    p->pos.ndc = ndc;
    if (lowered) {
        p->cap_epoch++;
        p->old_reservations = p->reservations;
        p->grace_shrunk = false;
    }
    return lowered;
}

int participant_reserve(struct participant *p, int64_t amount, uint32_t *epoch)
{
    if (position_reserve(&p->pos, amount) != 0)
        return -1;
    p->reservations++;
    *epoch = p->cap_epoch;
    return 0;
}

void participant_release(struct participant *p, int64_t amount, uint32_t epoch)
{
    position_release(&p->pos, amount);
    if (p->reservations > 0)
        p->reservations--;
    if (epoch != p->cap_epoch && p->old_reservations > 0)
        p->old_reservations--;
}

bool participant_grace_due(const struct participant *p)
{
    return p->ndc_grace >= 0 && !p->grace_call_inflight && p->old_reservations == 0 &&
           (!p->grace_shrunk || p->pos.posted >= -p->pos.ndc);
}
