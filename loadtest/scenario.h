/*
 * scenario: what `sikka-replay gen` generates — who pays whom, how much,
 * for what, and how often something goes wrong on purpose. A plain value
 * filled with defaults and then adjusted option by option; it owns no
 * memory. gen turns it into a capture file.
 *
 * Amounts are int64 paisa; ranges are given in rupees on the command line
 * ("500:5000") and parsed with money_parse. Rates and the mix are
 * probabilities, not money.
 */
#ifndef SIKKA_SCENARIO_H
#define SIKKA_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCENARIO_MAX_PARTICIPANTS 32
#define SCENARIO_CODE_LEN         4

enum scenario_purpose {
    SCENARIO_BNPL = 0, /* consumer repays an instalment to the lender */
    SCENARIO_SUPPLIER, /* an SME (mostly the bank's customers) pays an invoice */
    SCENARIO_P2P,      /* person to person between wallets */
    SCENARIO_PURPOSES,
};

struct scenario_range {
    int64_t min; /* paisa */
    int64_t max; /* paisa, >= min */
};

struct scenario {
    uint64_t count; /* records, retries and malformed ones included */
    char participants[SCENARIO_MAX_PARTICIPANTS][SCENARIO_CODE_LEN + 1];
    size_t nparticipants;
    char lender[SCENARIO_CODE_LEN + 1]; /* payee of every BNPL repayment (hot) */
    char bank[SCENARIO_CODE_LEN + 1];   /* payer of most supplier payments; "" none */
    uint32_t accounts;                  /* customer accounts per participant */
    unsigned mix[SCENARIO_PURPOSES];    /* relative weights */
    struct scenario_range amount[SCENARIO_PURPOSES];
    unsigned bank_share;   /* percent of supplier payments paid by the bank */
    double retry_rate;     /* share of records that resend an earlier msg_id */
    double reject_rate;    /* share of transfers the payee rejects (AC01/AC04) */
    double ignore_rate;    /* share of transfers the payee never answers (AB05) */
    double malformed_rate; /* share of records that are not a valid Envelope */
    double rate;           /* records per second: spacing of offset_us */
    uint64_t seed;
    int64_t start_ms; /* the header's started_at_ms (Unix ms) */
};

/* The defaults: 10000 records; JAZZ,EASY,SADA,NAYA,KOKO,MEZN; lender KOKO,
 * bank MEZN; 1000 accounts; bnpl=60,supplier=25,p2p=15; BNPL 500..5000 PKR,
 * supplier 10000..2000000 PKR, P2P 100..50000 PKR; 70 % of supplier
 * payments from the bank; retry 0.02, reject 0.01, ignore 0, malformed
 * 0.001; 1000 records/s; seed 1; start 2026-01-01T00:00:00Z. */
void scenario_defaults(struct scenario *s);

/* "JAZZ,EASY,..." (4 uppercase letters each). Resets lender and bank to ""
 * unless they are still in the list. */
int scenario_set_participants(struct scenario *s, const char *list, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* "bnpl=60,supplier=25,p2p=15": weights; names left out become 0. */
int scenario_set_mix(struct scenario *s, const char *text, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* "MIN:MAX" in rupees ("500:5000", "0.50:10.00"). */
int scenario_parse_range(const char *text, struct scenario_range *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A probability "0.02" (0..1) for the *_rate fields. */
int scenario_parse_rate(const char *text, double *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Checks the whole scenario (roles present, ranges, shares summing below 1). */
int scenario_validate(const struct scenario *s, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The scenario as one line of JSON (for the capture header), malloc'd;
 * NULL when out of memory. */
char *scenario_to_json(const struct scenario *s);

#endif
