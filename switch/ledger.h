/*
 * ledger: group commit of finished transfers into the PostgreSQL ledger.
 *
 * The router hands over every transfer whose outcome is decided (ACSC with
 * its entries, RJCT without). They queue; whenever a posting connection has
 * no batch in flight the queue (up to batch_max_transfers) goes out as ONE
 * post_batch() call: one round trip, one transaction, multi-row inserts from
 * arrays, one balance update per account. Under load batches grow by
 * themselves while earlier commits are in progress. With several posting
 * connections, one batch executes while another waits for its WAL flush;
 * accounts are locked in id order, so concurrent batches never deadlock.
 *
 * Only after the batch's transaction committed does the callback run for
 * each transfer, and the committed deltas are applied to the in-memory
 * positions. A batch lost with its connection is re-sent after reconnecting;
 * the database's unique key turns anything that did commit into a duplicate
 * with its own id, so nothing is posted twice. A batch the database refuses
 * is retried one transfer at a time to isolate the transfer at fault, which
 * is then rejected.
 *
 * The ledger never owns transfers: it holds the router's pointers until the
 * callback. Single-threaded, on the loop.
 */
#ifndef SIKKA_LEDGER_H
#define SIKKA_LEDGER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgconn.h"
#include "transfer.h"

enum ledger_result {
    LEDGER_WRITTEN = 0, /* committed now (or by an earlier attempt of this batch) */
    LEDGER_DUPLICATE,   /* the key belonged to an earlier transfer: see dup */
    LEDGER_ABANDONED,   /* could not be recorded at all; nothing was written */
};

struct ledger_duplicate {
    uint64_t stored_id;
    enum transfer_status stored_status;
    char stored_reason[TRANSFER_REASON_MAX + 1];
    bool same_request; /* same fingerprint as the stored one */
};

typedef void (*ledger_done_cb)(struct transfer *t, enum ledger_result r,
                               const struct ledger_duplicate *dup);

struct ledger_options {
    int64_t batch_max; /* transfers per transaction */
    int64_t window_us; /* extra wait to fill a batch when idle */
};

#define LEDGER_MAX_CONNECTIONS 8

/* conns: the posting connections (1..LEDGER_MAX_CONNECTIONS); batches go
 * to whichever is idle, operations to the first when all are idle. */
int ledger_init(struct event_base *base, struct pgconn *const *conns, size_t nconns,
                ledger_done_cb done) __attribute__((warn_unused_result));
void ledger_configure(const struct ledger_options *opts);
void ledger_free(void);

/* The open settlement window every posting goes to, and the scheme's fee
 * account. */
void ledger_set_window(int64_t window_id);
int64_t ledger_window(void);
void ledger_set_fee_account(int64_t account_id);

/* Queues a transfer with a decided status. */
void ledger_submit(struct transfer *t);

/* An operation that must be ordered with the postings (closing or settling
 * a settlement window): it runs on the posting connection between batches,
 * before any transfer submitted after it. The parameters are copied. The
 * callback gets the statement's result (NULL and a message on failure). */
typedef void (*ledger_op_cb)(void *arg, PGresult *res, const char *error);
int ledger_run_op(const char *stmt, int nparams, const char *const *values, ledger_op_cb cb,
                  void *arg) __attribute__((warn_unused_result));

/* Nothing queued and nothing in flight. */
bool ledger_idle(void);
size_t ledger_queued(void);

struct ledger_stats {
    uint64_t batches;
    uint64_t transfers;
    uint64_t max_batch;
    uint64_t failures;
    uint64_t commit_us; /* total time from sending a batch to its commit */
};
void ledger_get_stats(struct ledger_stats *out);

#endif
