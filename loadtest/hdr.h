/*
 * hdr: an HDR-style latency histogram (after Gil Tene's HdrHistogram) with
 * log-linear buckets: values from 1 to HDR_MAX_VALUE (2^32 - 1, about 71
 * minutes when the unit is the microsecond) are kept to 3 significant
 * digits, i.e. any value read back (percentile, bucket edge) is within
 * 1/1024 < 0.1 % of a value that was recorded. Larger values are clamped
 * to HDR_MAX_VALUE and counted as saturated; 0 is kept exactly.
 *
 * Memory is fixed whatever is recorded: HDR_COUNTS_LEN 64-bit counters
 * (about 184 KiB) plus a few totals. Recording is a handful of integer
 * operations and never allocates. The exact minimum, maximum and sum are
 * kept beside the buckets, so max and mean are exact.
 *
 * Every histogram has the same layout, so merging is adding counters. A
 * struct hdr is owned by whoever called hdr_new(); single-threaded.
 */
#ifndef SIKKA_HDR_H
#define SIKKA_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HDR_SUB_BUCKET_BITS  11 /* 2048 sub-buckets per power of two: 3 digits */
#define HDR_SUB_BUCKET_COUNT (1 << HDR_SUB_BUCKET_BITS)
#define HDR_SUB_BUCKET_HALF  (HDR_SUB_BUCKET_COUNT / 2)
#define HDR_BUCKET_COUNT     22 /* enough for values below 2^32 */
#define HDR_COUNTS_LEN       ((HDR_BUCKET_COUNT + 1) * HDR_SUB_BUCKET_HALF)
#define HDR_MAX_VALUE        UINT32_MAX

struct hdr {
    uint64_t total;     /* values recorded */
    uint64_t saturated; /* values above HDR_MAX_VALUE, recorded as it */
    uint64_t sum;       /* of the (clamped) values, for the mean */
    uint64_t min;       /* exact; UINT64_MAX while empty */
    uint64_t max;       /* exact; 0 while empty */
    int lo_index;       /* lowest and highest non-empty counter, for */
    int hi_index;       /* fast reset and iteration; -1 while empty */
    uint64_t counts[HDR_COUNTS_LEN];
};

/* One non-empty bucket, as hdr_iter_next() walks them in value order. */
struct hdr_iter {
    int index;           /* internal; start with hdr_iter_init() */
    uint64_t lo, hi;     /* the bucket holds values lo..hi inclusive */
    uint64_t count;      /* values in it */
    uint64_t cumulative; /* values in it and every bucket below */
};

/* A new empty histogram, or NULL when out of memory (logged). */
struct hdr *hdr_new(void);
void hdr_free(struct hdr *h);
void hdr_reset(struct hdr *h);

/* Records one value / n equal values. */
void hdr_record(struct hdr *h, uint64_t value);
void hdr_record_n(struct hdr *h, uint64_t value, uint64_t n);

/* Adds every value of src to dst. */
void hdr_merge(struct hdr *dst, const struct hdr *src);

uint64_t hdr_count(const struct hdr *h);
uint64_t hdr_min(const struct hdr *h); /* 0 when empty */
uint64_t hdr_max(const struct hdr *h); /* 0 when empty */
/* The exact mean of the recorded values, rounded down; 0 when empty. */
uint64_t hdr_mean(const struct hdr *h);

/* The value below or at which `percentile` percent (0..100) of the
 * recorded values lie: the upper edge of the bucket holding the value of
 * that rank, never above the exact maximum. 0 when empty. */
uint64_t hdr_percentile(const struct hdr *h, double percentile);

/* The range of values that share value's bucket ("equivalent" values). */
uint64_t hdr_lowest_equivalent(uint64_t value);
uint64_t hdr_highest_equivalent(uint64_t value);

/* Bytes one histogram takes, whatever it holds. */
size_t hdr_memory_bytes(void);

void hdr_iter_init(struct hdr_iter *it);
/* Fills it with the next non-empty bucket; false after the last one. */
bool hdr_iter_next(const struct hdr *h, struct hdr_iter *it);

#endif
