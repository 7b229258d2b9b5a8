/*
 * bulkfile: bulk supplier payments from a CSV file, for `sikka-wallet bulk`
 * and the tests — reading the file, making the BulkCreditTransfer, and
 * collecting the switch's BulkReport frames into one result per item.
 *
 * The file (RFC 4180): a header line `to,amount,purpose,ref,msg_id`, then
 * one payment per record:
 *   to       ACCOUNT@CODE, the payee's account at its participant
 *   amount   PKR with at most two decimals ("1500", "1500.50"), parsed to
 *            int64 paisa without floating point (money_parse)
 *   purpose  BNPL_REPAYMENT, SUPPLIER_PAYMENT or P2P
 *   ref      the remittance reference as `pay --ref` takes it (invoice
 *            number, LOANID/N, or text); may be empty
 *   msg_id   the item's idempotency key, 1..35 bytes; empty: made from the
 *            batch id and the item's number, so the same file sent again
 *            gets the same keys
 * Fields may be quoted ("..."; "" inside is one quote; a quoted field may
 * span lines). Lines end in LF or CRLF; a UTF-8 byte order mark before the
 * header and empty lines are ignored. Everything is checked before anything
 * is sent: every error names its line ("line 7: amount: ...") and the file
 * is refused whole. At most BULKFILE_MAX_ITEMS payments, distinct msg_ids.
 *
 * The batch id is derived from the content (the payer, the debtor account
 * and every item), so running the same file again is a retry of the same
 * batch: the switch answers every item as it did the first time.
 *
 * Payee resolution of an item happens in one place, bulkfile_payee(); it
 * takes ACCOUNT@CODE only.
 */
#ifndef SIKKA_BULKFILE_H
#define SIKKA_BULKFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "codec.h"
#include "msg.h"

#define BULKFILE_MAX_ITEMS    1000
#define BULKFILE_MAX_BYTES    (4 * 1024 * 1024) /* the file */
#define BULKFILE_FIELD_MAX    1024              /* one field, bytes */
#define BULKFILE_BATCH_ID_LEN 27                /* "B" and 26 hex digits */

struct bulkfile_row {
    unsigned line; /* where its record starts, from 1 (the header is line 1) */
    char creditor_account[MSG_ACCOUNT_MAX + 1];
    char creditor_agent[MSG_AGENT_LEN + 1];
    /* or, when `to` has no '@', the payee's alias (Raast ID) as written: the
     * switch normalises and resolves it (FF01 / BE23 for that item alone) */
    char creditor_alias[MSG_ALIAS_MAX + 1];
    int64_t amount; /* paisa */
    Sikka__V1__Purpose purpose;
    char ref[MSG_TEXT_MAX + 1];
    char msg_id[MSG_ID_MAX + 1]; /* as given, or made by bulkfile_batch */
};

/* A parsed file. Owned by the caller; bulkfile_free releases it. */
struct bulkfile {
    struct bulkfile_row *rows;
    size_t n;
};

/* Parses and checks `len` bytes of CSV. 0, or -1 with err saying what and on
 * which line (nothing kept). */
int bulkfile_parse(const char *data, size_t len, struct bulkfile *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Reads and parses a file (at most BULKFILE_MAX_BYTES). */
int bulkfile_read(const char *path, struct bulkfile *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void bulkfile_free(struct bulkfile *f);

/* The payee of an item from its `to` field. */
int bulkfile_payee(const char *to, struct bulkfile_row *row, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The BulkCreditTransfer for f, from participant `payer`'s account `from`.
 * Fills empty msg_ids of f (batch id, '-', item number from 1). Owned by the
 * caller; bulkfile_batch_free releases it. */
struct bulkfile_batch {
    char batch_id[MSG_ID_MAX + 1];
    struct msg_transfer *items; /* n of them; never moved (they point into themselves) */
    Sikka__V1__CreditTransfer **ptrs;
    size_t n;
    Sikka__V1__BulkCreditTransfer bulk;
    Envelope env;
};
int bulkfile_batch(struct bulkfile_batch *b, struct bulkfile *f, const char *payer,
                   const char *from, const char *batch_id, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void bulkfile_batch_free(struct bulkfile_batch *b);

/* One item's answer. */
struct bulkfile_result {
    bool have;
    bool acsc;
    bool retry; /* nothing recorded: the batch may be sent again */
    uint64_t transfer_id;
    int64_t amount, fee;
    char reason[MSG_REASON_MAX + 1];
    char text[MSG_TEXT_MAX * 4 + 1];
};

/* The answers to one sending of a batch. */
struct bulkfile_run {
    const char *batch_id;
    size_t n;
    struct bulkfile_result *results; /* n */
    bool refused;                    /* the batch refused whole: reason, text */
    bool retry;                      /* ... not finally */
    char reason[MSG_REASON_MAX + 1];
    char text[MSG_TEXT_MAX * 4 + 1];
};

enum bulkfile_take {
    BULKFILE_NOT_OURS = 0, /* the frame is about something else */
    BULKFILE_MORE,         /* results taken; more reports follow */
    BULKFILE_DONE,         /* every item answered, or the batch refused */
};

int bulkfile_run_init(struct bulkfile_run *r, const char *batch_id, size_t n)
    __attribute__((warn_unused_result));
void bulkfile_run_free(struct bulkfile_run *r);
/* Takes a frame from the switch (BulkReport, or MessageReject about the
 * batch). */
enum bulkfile_take bulkfile_take(struct bulkfile_run *r, const Envelope *env);
/* Items answered "not processed" (retry), or the whole batch refused with retry. */
size_t bulkfile_retryable(const struct bulkfile_run *r);

/* Prints one line per item in file order, then the summary line:
 *   <line> ACSC <transfer-id>
 *   <line> RJCT <reason> <text>
 *   SUMMARY items=N acsc=A rjct=R not_processed=P settled=1500.00 fees=2.00 batch=ID
 * Returns the exit code: 0 every item settled, 1 any was rejected or not
 * processed. */
int bulkfile_print(FILE *out, const struct bulkfile *f, const struct bulkfile_run *r);

#endif
