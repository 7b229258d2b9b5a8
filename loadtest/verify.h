/*
 * verify: after a run, compares the ledger with what sikka-replay saw
 * (its --results file: one line per finished message, "payer, msg_id,
 * status, reason, transfer_id, amount" in PostgreSQL COPY text format).
 *
 * The results travel to the server as six arrays in ONE query (no
 * temporary table, so the read-only role sikka_reader is enough) and every
 * check is a set-based aggregate over them and the ledger:
 *   - every key answered ACSC is a transfers row with status ACSC, the same
 *     transfer id and amount, posted exactly once: 2 principal entries
 *     (-amount, +amount), plus 2 fee entries summing to zero when its fee is
 *     above 0, nothing else;
 *   - no key answered RJCT has entries (nor settled some other way);
 *   - every posting in the ledger balances (transfers and settlements), and
 *     no entry belongs to a transfer that is missing or not ACSC.
 * ACSC transfers in the database the tool never saw settle are counted as
 * information (another client, or an answer lost with a connection).
 */
#ifndef SIKKA_VERIFY_H
#define SIKKA_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define VERIFY_EXAMPLES_MAX 2048

struct verify_report {
    /* from the results file */
    uint64_t lines;
    uint64_t acsc_keys;   /* distinct (payer, msg_id) answered ACSC */
    uint64_t rjct_keys;   /* distinct (payer, msg_id, transfer id, reason) answered RJCT */
    uint64_t other_lines; /* MSGREJ and NONE: nothing to check in the ledger */
    uint64_t settled_ok;  /* ACSC keys found exactly as answered */
    /* failures (each ACSC key counts under its first problem only) */
    uint64_t inconsistent;           /* one key answered ACSC with two ids or amounts */
    uint64_t missing;                /* ACSC key with no transfers row */
    uint64_t mismatched;             /* row not ACSC, or another id or amount */
    uint64_t not_posted;             /* ACSC row without entries */
    uint64_t posted_twice;           /* more than one posting */
    uint64_t bad_posting;            /* entries not the expected legs and amounts */
    uint64_t rjct_posted;            /* a rejection with entries (or settled anyway) */
    uint64_t unbalanced;             /* postings (per transfer) not summing to zero */
    uint64_t unbalanced_settlements; /* settlement postings (per window) */
    uint64_t orphan_postings;        /* entries of a transfer missing or not ACSC */
    /* information */
    uint64_t unseen_acsc; /* ACSC transfers in the ledger the tool did not see settle */
    bool ok;
    char examples[VERIFY_EXAMPLES_MAX]; /* a few offenders, one per line */
};

/* Reads results_path, queries the database at uri and fills v. Returns -1
 * (why in err) when the comparison could not be made at all. */
int verify_run(const char *results_path, const char *uri, struct verify_report *v, char *err,
               size_t errlen) __attribute__((warn_unused_result));

void verify_print(FILE *out, const struct verify_report *v);
/* The same counts and the verdict as a JSON object in path. */
int verify_write_json(const char *path, const struct verify_report *v, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
