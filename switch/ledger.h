/*
 * ledger: group commit of finished transfers into the PostgreSQL ledger.
 *
 * The router hands over every transfer whose outcome is decided (ACSC or
 * RJCT). They queue; whenever a posting connection has no batch in flight
 * the queue (up to batch_max_transfers) goes out as ONE post_batch() call:
 * one round trip, one transaction, multi-row inserts from arrays, one
 * balance update per account. The database derives each posting's legs and
 * fee itself and picks the open window (schema/004); the ledger sends what
 * it expects the fee to be and adopts what the database decided. With
 * several posting connections, one batch executes while another waits for
 * its WAL flush; accounts are locked in id order, so batches never deadlock.
 *
 * Only after the batch's transaction committed does the callback run for
 * each transfer, and the committed deltas are applied to the in-memory
 * positions. Every transfer of a batch carries the batch's settlement time
 * as the database recorded it, so a later replay from the ledger is
 * identical to the first answer.
 *
 * Failures:
 *   lost connection  the batch is re-sent after reconnecting; the unique key
 *                    turns whatever did commit into a duplicate with its own
 *                    id, so nothing is posted twice;
 *   transient        (deadlock, serialization, timeout, shutdown, read-only
 *                    server, missing privilege: pgconn's PGCONN_RETRY) the
 *                    batch goes back to the queue and postings pause with an
 *                    exponential backoff; nothing is rejected for it;
 *   refused          (the data: a constraint or a check of the ledger) the
 *                    batch is split in halves, each posted on its own, the
 *                    refused halves split again, so the offending transfers
 *                    are found in log2(n) rounds while the rest commit; an
 *                    offending ACSC transfer is then recorded as rejected
 *                    (AM23 for the cap, MS03 otherwise) with a fixed text:
 *                    database messages go to the log, never to participants.
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

/* The stored outcome of a key that an earlier transfer holds. */
struct ledger_duplicate {
    uint64_t stored_id;
    enum transfer_status stored_status;
    char stored_reason[TRANSFER_REASON_MAX + 1];
    char stored_text[TRANSFER_TEXT_BYTES + 1];
    int64_t stored_fee;
    char stored_fee_payer[5];
    int64_t stored_ms; /* when it was recorded (Unix ms) */
    bool same_request; /* same fingerprint as the stored one */
};

typedef void (*ledger_done_cb)(struct transfer *t, enum ledger_result r,
                               const struct ledger_duplicate *dup);

struct ledger_options {
    int64_t batch_max; /* transfers per transaction */
    int64_t window_us; /* extra wait to fill a batch when idle */
};

#define LEDGER_MAX_CONNECTIONS 8

/* How a refused transfer is answered (never the database's own text). */
#define LEDGER_REFUSED_REASON "MS03"
#define LEDGER_REFUSED_TEXT   "the ledger refused to post this transfer"
#define LEDGER_CAP_TEXT       "net debit cap exceeded when posting"

/* conns: the posting connections (1..LEDGER_MAX_CONNECTIONS); batches go
 * to whichever is idle, operations to the first when all are idle. */
int ledger_init(struct event_base *base, struct pgconn *const *conns, size_t nconns,
                ledger_done_cb done) __attribute__((warn_unused_result));
void ledger_configure(const struct ledger_options *opts);
void ledger_free(void);

/* The open settlement window as last seen (the database picks the window of
 * each posting itself; every batch reports it back). */
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

/* Re-reads the position balances and the open window at a cut (no batch
 * in flight, new ones held for one round trip): after an operation whose
 * outcome was in doubt, or a change made outside the switch. */
void ledger_request_resync(void);

/* Called when the database refuses a batch for its data: the state the
 * switch holds about the scheme may be stale (main wires it to sync). */
void ledger_set_refusal_hook(void (*hook)(void));
/* Called after the balances were re-read at a cut (main wires it to sync:
 * a settlement made elsewhere may have brought positions back within caps). */
void ledger_set_resync_hook(void (*hook)(void));

/* The connection operations run on is up (an operation queued now will run
 * as soon as the batches in flight are through). */
bool ledger_connected(void);

/* Looks at the queue again now (the fence was retaken). */
void ledger_kick(void);

/* Transfers are posted promptly: a posting connection is up, the fence is
 * held and postings are not paused by a failing database. While not, the
 * router refuses new transfers with a retryable answer. */
bool ledger_accepting(void);

/* Nothing queued and nothing in flight. */
bool ledger_idle(void);
size_t ledger_queued(void);

struct ledger_stats {
    uint64_t batches;   /* committed */
    uint64_t transfers; /* in committed batches */
    uint64_t max_batch;
    uint64_t attempts;   /* post_batch calls sent */
    uint64_t refused;    /* batches the database refused for their data */
    uint64_t retried;    /* batches lost or failed transiently, sent again */
    uint64_t failures;   /* refused + retried */
    uint64_t commit_us;  /* total time from sending a batch to its commit */
    uint64_t queued;     /* now: transfers waiting for a batch (queue and pieces) */
    uint64_t committing; /* now: transfers in batches being committed */
};
void ledger_get_stats(struct ledger_stats *out);

#endif
