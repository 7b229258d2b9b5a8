/*
 * report: a run's results for people and machines — a text table (the end
 * of `sikka-replay run`), JSON (--json, through jansson) and one
 * self-contained HTML page (--html: inline CSS and SVG, no script, no
 * external URL) with latency over time and the percentile distribution
 * drawn as charts.
 *
 * Latency is kept in microseconds and shown in milliseconds. Reports only
 * read the result; they own nothing beyond the files they write.
 */
#ifndef SIKKA_REPORT_H
#define SIKKA_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "replay.h"

/* One evaluated --threshold. */
struct report_check {
    char why[256]; /* "p99<20ms: p99 = 3.210 ms" */
    bool ok;
};

/* The thresholds and the verdict a report shows beside the numbers. */
struct report_verdict {
    const struct report_check *checks;
    size_t nchecks;
    bool passed; /* every threshold held and no connection failed */
    const char *capture;
    const char *target; /* HOST:PORT */
};

void report_text(FILE *out, const struct replay_result *r, const struct report_verdict *v);

int report_json(const char *path, const struct replay_result *r, const struct report_verdict *v,
                char *err, size_t errlen) __attribute__((warn_unused_result));

int report_html(const char *path, const struct replay_result *r, const struct report_verdict *v,
                char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
