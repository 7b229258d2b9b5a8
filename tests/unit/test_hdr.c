/* hdr: the latency histogram against distributions whose percentiles are
 * known exactly (constant, uniform, exponential, two-point), merge,
 * extreme values and its fixed memory. Every value read back must be within
 * HdrHistogram's 3-significant-digit bound: no more than 1/1024 above the
 * exact value and never below it. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "hdr.h"

/* Exact percentile of sorted values: the value of rank ceil(p% of n). */
static uint64_t exact(const uint64_t *sorted, size_t n, double p)
{
    double want = p / 100.0 * (double)n;
    size_t rank = (size_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    return sorted[rank - 1];
}

static void check_bound(const char *what, double p, uint64_t got, uint64_t want)
{
    /* the bucket holding `want` spans at most want/1024 (and 1 below 2048) */
    uint64_t slack = want / 1024 + 1;
    CHECK(got >= want && got <= want + slack, "%s p%g: got %llu, exact %llu (slack %llu)", what, p,
          (unsigned long long)got, (unsigned long long)want, (unsigned long long)slack);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    /* xorshift64*: deterministic, good enough for test data */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static const double pcts[] = {0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};
#define NPCTS (sizeof(pcts) / sizeof(pcts[0]))

/* Records values into a histogram and checks every percentile against the
 * sorted values. */
static void check_distribution(const char *what, uint64_t *values, size_t n)
{
    struct hdr *h = hdr_new();
    CHECK(h != NULL);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        hdr_record(h, values[i]);
        sum += values[i];
    }
    qsort(values, n, sizeof(values[0]), cmp_u64);
    CHECK_INT(hdr_count(h), n);
    CHECK_INT(hdr_min(h), values[0]);
    CHECK_INT(hdr_max(h), values[n - 1]);
    CHECK_INT(hdr_mean(h), sum / n);
    for (size_t i = 0; i < NPCTS; i++)
        check_bound(what, pcts[i], hdr_percentile(h, pcts[i]), exact(values, n, pcts[i]));
    hdr_free(h);
}

int main(void)
{
    TEST_STEP("fixed memory, whatever is recorded");
    CHECK(hdr_memory_bytes() < 256 * 1024, "%zu bytes", hdr_memory_bytes());
    CHECK(HDR_MAX_VALUE >= 3600ULL * 1000 * 1000, "an hour in microseconds must fit");

    TEST_STEP("empty");
    struct hdr *h = hdr_new();
    CHECK(h != NULL);
    CHECK_INT(hdr_count(h), 0);
    CHECK_INT(hdr_percentile(h, 99), 0);
    CHECK_INT(hdr_max(h), 0);
    CHECK_INT(hdr_min(h), 0);
    CHECK_INT(hdr_mean(h), 0);
    struct hdr_iter it;
    hdr_iter_init(&it);
    CHECK(!hdr_iter_next(h, &it));

    TEST_STEP("constant: every percentile is the value, max and mean exact");
    for (int i = 0; i < 1000; i++)
        hdr_record(h, 12345);
    for (size_t i = 0; i < NPCTS; i++)
        check_bound("constant", pcts[i], hdr_percentile(h, pcts[i]), 12345);
    CHECK_INT(hdr_max(h), 12345);
    CHECK_INT(hdr_min(h), 12345);
    CHECK_INT(hdr_mean(h), 12345);

    TEST_STEP("small values are exact (below 2048 every value has its own bucket)");
    hdr_reset(h);
    CHECK_INT(hdr_count(h), 0);
    for (uint64_t v = 0; v < 2048; v++)
        hdr_record(h, v);
    for (uint64_t v = 0; v < 2048; v++) {
        CHECK_INT(hdr_lowest_equivalent(v), v);
        CHECK_INT(hdr_highest_equivalent(v), v);
    }
    CHECK_INT(hdr_percentile(h, 50), 1023);

    TEST_STEP("uniform 1..1,000,000, each value once");
    {
        size_t n = 1000000;
        uint64_t *v = malloc(n * sizeof(*v));
        CHECK(v != NULL);
        for (size_t i = 0; i < n; i++)
            v[i] = n - i; /* descending: order of recording must not matter */
        check_distribution("uniform", v, n);
        free(v);
    }

    TEST_STEP("uniform random 1 us .. 10 s");
    {
        size_t n = 200000;
        uint64_t *v = malloc(n * sizeof(*v));
        CHECK(v != NULL);
        for (size_t i = 0; i < n; i++)
            v[i] = 1 + rng() % 10000000;
        check_distribution("uniform random", v, n);
        free(v);
    }

    TEST_STEP("exponential, mean 2 ms");
    {
        size_t n = 200000;
        uint64_t *v = malloc(n * sizeof(*v));
        CHECK(v != NULL);
        for (size_t i = 0; i < n; i++) {
            double u = ((double)(rng() >> 11) + 0.5) * 0x1.0p-53;
            v[i] = (uint64_t)(-2000.0 * log(u));
        }
        check_distribution("exponential", v, n);
        free(v);
    }

    TEST_STEP("two-point: 900 x 100 us and 100 x 1 s");
    hdr_reset(h);
    hdr_record_n(h, 100, 900);
    hdr_record_n(h, 1000000, 100);
    CHECK_INT(hdr_percentile(h, 50), 100);
    CHECK_INT(hdr_percentile(h, 90), 100);
    check_bound("two-point", 90.1, hdr_percentile(h, 90.1), 1000000);
    check_bound("two-point", 99, hdr_percentile(h, 99), 1000000);
    CHECK_INT(hdr_percentile(h, 100), 1000000);
    CHECK_INT(hdr_mean(h), (900 * 100 + 100 * 1000000) / 1000);

    TEST_STEP("merge: two halves equal the whole");
    {
        struct hdr *a = hdr_new(), *b = hdr_new(), *all = hdr_new();
        CHECK(a != NULL && b != NULL && all != NULL);
        for (int i = 0; i < 100000; i++) {
            uint64_t v = rng() % 5000000;
            hdr_record(i % 2 ? a : b, v);
            hdr_record(all, v);
        }
        hdr_merge(a, b);
        CHECK_INT(hdr_count(a), hdr_count(all));
        CHECK_INT(hdr_min(a), hdr_min(all));
        CHECK_INT(hdr_max(a), hdr_max(all));
        CHECK_INT(hdr_mean(a), hdr_mean(all));
        for (size_t i = 0; i < NPCTS; i++)
            CHECK_INT(hdr_percentile(a, pcts[i]), hdr_percentile(all, pcts[i]));
        struct hdr *empty = hdr_new();
        CHECK(empty != NULL);
        hdr_merge(empty, all); /* into an empty one */
        CHECK_INT(hdr_percentile(empty, 99), hdr_percentile(all, 99));
        hdr_merge(all, empty); /* merging keeps adding */
        CHECK_INT(hdr_count(all), 200000);
        hdr_free(a);
        hdr_free(b);
        hdr_free(all);
        hdr_free(empty);
    }

    TEST_STEP("extremes: 0, the largest trackable value, beyond it (saturated)");
    hdr_reset(h);
    hdr_record(h, 0);
    hdr_record(h, HDR_MAX_VALUE);
    hdr_record(h, UINT64_MAX);
    CHECK_INT(hdr_min(h), 0);
    CHECK_INT(hdr_max(h), HDR_MAX_VALUE);
    CHECK_INT(h->saturated, 1);
    CHECK_INT(hdr_percentile(h, 0), 0);
    CHECK_INT(hdr_percentile(h, 100), HDR_MAX_VALUE);
    CHECK_INT(hdr_percentile(h, 60), HDR_MAX_VALUE);
    CHECK_INT(hdr_highest_equivalent(HDR_MAX_VALUE), HDR_MAX_VALUE);

    TEST_STEP("bucket edges keep 3 significant digits");
    static const uint64_t edges[] = {2047, 2048, 2049, 4095, 4096, 1000000, 3600000000ULL};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        uint64_t v = edges[i], lo = hdr_lowest_equivalent(v), hi = hdr_highest_equivalent(v);
        CHECK(lo <= v && v <= hi, "%llu in [%llu, %llu]", (unsigned long long)v,
              (unsigned long long)lo, (unsigned long long)hi);
        CHECK((hi - lo + 1) * 1024 <= lo || lo < 2048, "bucket of %llu too wide",
              (unsigned long long)v);
    }

    TEST_STEP("iteration visits every value once, in order");
    hdr_reset(h);
    uint64_t total = 0;
    for (int i = 0; i < 50000; i++) {
        hdr_record(h, rng() % 100000000);
        total++;
    }
    hdr_iter_init(&it);
    uint64_t seen = 0, last_hi = 0;
    bool first = true;
    while (hdr_iter_next(h, &it)) {
        CHECK(it.count > 0);
        CHECK(it.lo <= it.hi);
        CHECK(first || it.lo > last_hi, "buckets overlap or go backwards");
        first = false;
        last_hi = it.hi;
        seen += it.count;
        CHECK_INT(it.cumulative, seen);
    }
    CHECK_INT(seen, total);
    CHECK(!hdr_iter_next(h, &it), "stays finished");

    hdr_free(h);
    fprintf(stderr, "test_hdr: ok\n");
    return 0;
}
