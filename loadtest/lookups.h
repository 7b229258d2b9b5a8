/*
 * lookups: `sikka-replay lookups`, the alias directory's throughput. It
 * connects as one participant (`sessions` connections over mutual TLS,
 * event-driven on one loop) and keeps `outstanding` ALIAS_LOOKUP requests in
 * flight per session for `seconds`, each for a random alias of the range
 * [base, base + count) (loadtest/bench.sh seeds such a range with
 * generate_series), counting the answers: found, not found (BE23), refused
 * (a MessageReject: the rate limit) and anything else. Results are plain
 * numbers owned by the caller.
 */
#ifndef SIKKA_LOOKUPS_H
#define SIKKA_LOOKUPS_H

#include <stdint.h>
#include <stdio.h>

struct lookups_opts {
    char host[256];
    int port;
    const char *pki;         /* <pki>/<CODE>.crt/.key and <pki>/ca.crt */
    const char *participant; /* who looks up */
    unsigned sessions;
    unsigned outstanding; /* per session */
    double seconds;
    uint64_t base;  /* the first alias of the range, canonical digits */
    uint64_t count; /* aliases in the range */
    double connect_timeout_s;
};

struct lookups_result {
    double elapsed_s;
    uint64_t found, not_found, refused, other;
    double per_second; /* answers a second */
};

void lookups_opts_defaults(struct lookups_opts *o);

/* Connects, looks up, disconnects. -1 (err says why) when it could not
 * start or a session was lost. */
int lookups_run(const struct lookups_opts *o, struct lookups_result *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void lookups_report(FILE *out, const struct lookups_opts *o, const struct lookups_result *r);

#endif
