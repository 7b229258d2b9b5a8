#include "hdr.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The layout is HdrHistogram's with a unit of 1: bucket b holds values of
 * magnitude 2^(b + 10) .. 2^(b + 11) - 1 in 1024 linear steps of 2^b
 * (bucket 0 holds 0 .. 2047 in steps of 1). Counter index = (b + 1) * 1024 +
 * (sub-bucket - 1024), so the lower half of every bucket but the first,
 * which bucket b - 1 already covers at a finer step, takes no room. */

static int bucket_of(uint64_t v)
{
    /* v | mask keeps every value below 2048 in bucket 0 */
    return 64 - __builtin_clzll(v | (uint64_t)(HDR_SUB_BUCKET_COUNT - 1)) - HDR_SUB_BUCKET_BITS;
}

static int index_of(uint64_t v)
{
    int b = bucket_of(v);
    int sub = (int)(v >> b);
    return ((b + 1) << (HDR_SUB_BUCKET_BITS - 1)) + sub - HDR_SUB_BUCKET_HALF;
}

static uint64_t value_of(int index)
{
    int b = (index >> (HDR_SUB_BUCKET_BITS - 1)) - 1;
    int sub = (index & (HDR_SUB_BUCKET_HALF - 1)) + HDR_SUB_BUCKET_HALF;
    if (b < 0) {
        sub -= HDR_SUB_BUCKET_HALF;
        b = 0;
    }
    return (uint64_t)sub << b;
}

uint64_t hdr_lowest_equivalent(uint64_t value)
{
    if (value > HDR_MAX_VALUE)
        value = HDR_MAX_VALUE;
    return value_of(index_of(value));
}

uint64_t hdr_highest_equivalent(uint64_t value)
{
    if (value > HDR_MAX_VALUE)
        value = HDR_MAX_VALUE;
    return value_of(index_of(value)) + ((uint64_t)1 << bucket_of(value)) - 1;
}

struct hdr *hdr_new(void)
{
    struct hdr *h = malloc(sizeof(*h));
    if (h == NULL) {
        log_error("event=oom what=histogram bytes=%zu", sizeof(*h));
        return NULL;
    }
    h->lo_index = -1;
    memset(h->counts, 0, sizeof(h->counts));
    hdr_reset(h);
    return h;
}

void hdr_free(struct hdr *h)
{
    free(h);
}

void hdr_reset(struct hdr *h)
{
    if (h->lo_index >= 0)
        memset(&h->counts[h->lo_index], 0,
               (size_t)(h->hi_index - h->lo_index + 1) * sizeof(h->counts[0]));
    h->total = 0;
    h->saturated = 0;
    h->sum = 0;
    h->min = UINT64_MAX;
    h->max = 0;
    h->lo_index = -1;
    h->hi_index = -1;
}

void hdr_record_n(struct hdr *h, uint64_t value, uint64_t n)
{
    if (n == 0)
        return;
    if (value > HDR_MAX_VALUE) {
        value = HDR_MAX_VALUE;
        h->saturated += n;
    }
    int i = index_of(value);
    h->counts[i] += n;
    h->total += n;
    h->sum += value * n;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
    if (h->lo_index < 0 || i < h->lo_index)
        h->lo_index = i;
    if (i > h->hi_index)
        h->hi_index = i;
}

void hdr_record(struct hdr *h, uint64_t value)
{
    hdr_record_n(h, value, 1);
}

void hdr_merge(struct hdr *dst, const struct hdr *src)
{
    if (src->total == 0)
        return;
    for (int i = src->lo_index; i <= src->hi_index; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->saturated += src->saturated;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    if (dst->lo_index < 0 || src->lo_index < dst->lo_index)
        dst->lo_index = src->lo_index;
    if (src->hi_index > dst->hi_index)
        dst->hi_index = src->hi_index;
}

uint64_t hdr_count(const struct hdr *h)
{
    return h->total;
}

uint64_t hdr_min(const struct hdr *h)
{
    return h->total != 0 ? h->min : 0;
}

uint64_t hdr_max(const struct hdr *h)
{
    return h->max;
}

uint64_t hdr_mean(const struct hdr *h)
{
    return h->total != 0 ? h->sum / h->total : 0;
}

uint64_t hdr_percentile(const struct hdr *h, double percentile)
{
    if (h->total == 0)
        return 0;
    if (percentile < 0)
        percentile = 0;
    if (percentile >= 100)
        return h->max;
    /* the rank of the value asked for, 1-based: ceil(p% of total), >= 1 */
    double want = percentile / 100.0 * (double)h->total;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (int i = h->lo_index; i <= h->hi_index; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hdr_highest_equivalent(value_of(i));
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

size_t hdr_memory_bytes(void)
{
    return sizeof(struct hdr);
}

void hdr_iter_init(struct hdr_iter *it)
{
    memset(it, 0, sizeof(*it));
    it->index = -1;
}

bool hdr_iter_next(const struct hdr *h, struct hdr_iter *it)
{
    if (h->total == 0)
        return false;
    int i = it->index < h->lo_index ? h->lo_index : it->index + 1;
    for (; i <= h->hi_index; i++) {
        if (h->counts[i] == 0)
            continue;
        it->index = i;
        it->lo = value_of(i);
        it->hi = hdr_highest_equivalent(it->lo);
        it->count = h->counts[i];
        it->cumulative += it->count;
        return true;
    }
    it->index = h->hi_index;
    return false;
}
