/*
 * bulkflow: `sikka-replay bulk`, the bulk supplier payments scenario. One
 * payer's participant (an SME's bank) sends `batches` batches of `items`
 * supplier payments each (BulkCreditTransfer), spread over the payees in
 * turn. The payees' sides run here too: each accepts the payments it is
 * forwarded, or rejects one in `reject_permille` of them (AC01), chosen by
 * the payment's number so that every run plans the same. Payments to the
 * `offline` participant (registered, but no session here) are refused by
 * the switch (AB08) while the rest of their batch settles.
 *
 * Every batch is then sent again with the same batch id, as a payer that
 * lost the answer would: each item must get its first answer again (same
 * status, reason and transfer id) and no payee may be forwarded a payment a
 * second time. It reports the items per second of the first sendings, each
 * batch's time from sending to its last report, and the first item that did
 * not end as planned.
 *
 * One event loop, one batch in flight: a scenario that checks bulk
 * payments end to end under some volume, not the peak load generator.
 * Plain data owned by the caller.
 */
#ifndef SIKKA_BULKFLOW_H
#define SIKKA_BULKFLOW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BULKFLOW_MAX_PAYEES 8

struct bulkflow_opts {
    char host[256];
    int port;
    const char *pki; /* <pki>/<CODE>.crt/.key and <pki>/ca.crt */
    const char *payer;
    const char *payees[BULKFLOW_MAX_PAYEES]; /* answered here */
    unsigned npayees;
    const char *offline; /* a participant left without a session, or NULL */
    const char *run_id;  /* in every batch id and msg_id: runs do not collide */
    unsigned batches;
    unsigned items;           /* per batch, 1..1000 */
    unsigned reject_permille; /* payments the payees reject (AC01) */
    int timeout_ms;           /* per sending of a batch */
};

struct bulkflow_result {
    uint64_t items;          /* planned, first sendings */
    uint64_t settled;        /* ACSC as planned */
    uint64_t rejected;       /* AC01 as planned (the payee's) */
    uint64_t offline;        /* AB08 as planned (no payee session) */
    uint64_t unexpected;     /* items that did not end as planned */
    uint64_t forwards;       /* payments the payees were forwarded */
    uint64_t forwards_again; /* ... while their batch was being sent again: must be 0 */
    uint64_t retried;        /* items of the second sendings */
    uint64_t retried_same;   /* ... answered exactly as the first time */
    double first_s;          /* the first sendings, summed: send to last report */
    double batch_ms_max;
    char first_failure[320];
};

void bulkflow_opts_defaults(struct bulkflow_opts *o);
/* Runs the scenario. -1 (err says why) when it could not run (a connection,
 * a batch that could not be built, a batch without its answer in time);
 * otherwise 0 with r filled (r->unexpected and the retries say how it
 * went). */
int bulkflow_run(const struct bulkflow_opts *o, struct bulkflow_result *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void bulkflow_print(FILE *out, const struct bulkflow_opts *o, const struct bulkflow_result *r);
/* Whether every item ended as planned, twice. */
bool bulkflow_ok(const struct bulkflow_result *r);

#endif
