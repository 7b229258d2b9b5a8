/*
 * threshold: pass/fail conditions on a run's results, k6-style, written as
 * METRIC OP VALUE with no spaces needed:
 *
 *   p50<=5ms  p99<20ms  p99.9<50ms  max<1s  mean<2ms   latency (corrected):
 *                                                      units us, ms, s; a
 *                                                      bare number is ms
 *   errors<0.1%  errors<=3                             messages that did not
 *                                                      end as the capture
 *                                                      expects (% of sent,
 *                                                      or a count)
 *   late<1%  late==0                                   sends more than 1 ms
 *                                                      behind schedule
 *   rate>=1000  rate>=1000/s                           achieved send rate
 *
 * OP is one of < <= > >= ==. A struct threshold is a plain value; parsing
 * and evaluation allocate nothing.
 */
#ifndef SIKKA_THRESHOLD_H
#define SIKKA_THRESHOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hdr.h"

#define THRESHOLD_TEXT_MAX 63

enum threshold_metric {
    THRESHOLD_PERCENTILE = 0, /* pNN: latency at a percentile */
    THRESHOLD_MAX,            /* latency maximum */
    THRESHOLD_MEAN,           /* latency mean */
    THRESHOLD_ERRORS,         /* unexpected outcomes */
    THRESHOLD_LATE,           /* late sends */
    THRESHOLD_RATE,           /* achieved rate, messages per second */
};

enum threshold_op {
    THRESHOLD_LT = 0,
    THRESHOLD_LE,
    THRESHOLD_GT,
    THRESHOLD_GE,
    THRESHOLD_EQ,
};

struct threshold {
    char text[THRESHOLD_TEXT_MAX + 1]; /* as given, for messages */
    enum threshold_metric metric;
    double percentile; /* THRESHOLD_PERCENTILE: 0..100 */
    enum threshold_op op;
    bool percent; /* errors/late: limit is a percentage of messages sent */
    double limit; /* latency in us; a count; a percentage; a rate */
};

/* What thresholds are evaluated against. */
struct threshold_metrics {
    const struct hdr *latency; /* corrected latency, us */
    uint64_t sent;
    uint64_t errors;
    uint64_t late;
    double rate; /* achieved, messages per second */
};

/* Parses text into t; on failure writes why into err. */
int threshold_parse(const char *text, struct threshold *t, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* true when t holds for m; writes "p99<20ms: p99 = 31.20 ms" into why. */
bool threshold_holds(const struct threshold *t, const struct threshold_metrics *m, char *why,
                     size_t whylen);

#endif
