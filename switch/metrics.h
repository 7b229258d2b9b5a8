/*
 * metrics: what the switch counts about itself, for Prometheus (GET /metrics)
 * and for the console's live dashboard (GET /api/v1/stats).
 *
 * Owns fixed arrays of integer counters, indexed by small integers the hot
 * path already has: the purpose (a transfer's, or RETURN), the payer's
 * participant index (participant.h), the index of a reason code in a fixed
 * table of the codes the switch sends or payees commonly use (any other code
 * counts as OTHER). Histograms are fixed arrays of bucket counts in integer
 * microseconds (or transfers). Counting a transfer costs a few additions
 * (and a clock read for every METRICS_CLOCK_REUSE settled; its start is the
 * session's own read of the clock): no allocation, no lock (one event
 * loop), no string lookup, no floating point. Seconds and labels are formatted only when a
 * scrape or a stats request reads them.
 *
 * What it promises:
 *   - counters only grow, from 0 at process start (Prometheus' rate() and
 *     increase() handle the reset of a restart);
 *   - the transfers counted are the router's: received = admitted (given a
 *     transfer id; retries answered from the index are duplicates),
 *     settled = ACSC sent after COMMIT, rejected = every RJCT the switch
 *     decided (recorded ones and those refused before any record, e.g.
 *     FF01); end-to-end duration = from the session taking the
 *     CreditTransfer's frame to sending its ACSC;
 *   - the per-second series holds the last METRICS_SECONDS whole seconds
 *     (wall clock, rolled by a libevent timer just after each second
 *     boundary); p50/p99 of a second come from a log-linear histogram of
 *     that second (8 sub-buckets per power of two: within 6.25 %), never
 *     from stored samples;
 *   - the open window's gross and posting count are exact: postings of
 *     earlier boots are read once from the database (ledger_entries, the
 *     same sums close_window() writes), this boot's are counted as their
 *     batches commit, and a new window starts from zero (a batch resent
 *     after its COMMIT was lost counts in the window the resend reports);
 *   - the payee outbox's size is a count(*) read every METRICS_REFRESH_S
 *     seconds on the query connection (absent until the first answer).
 *
 * Single-threaded, on the switch's event loop. Hooks may be called before
 * metrics_start (they count; nothing rolls or queries until then).
 */
#ifndef SIKKA_METRICS_H
#define SIKKA_METRICS_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgconn.h"
#include "transfer.h"

#define METRICS_SECONDS          900  /* the per-second series kept */
#define METRICS_PARTICIPANTS_MAX 1024 /* beyond: counted as participant "_other" */
#define METRICS_REFRESH_S        5    /* outbox count, window seed retries */

/* Content-Type of metrics_write_prometheus's text (exposition format 0.0.4). */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* At process start (sikka_process_start_time_seconds); counters zeroed. */
void metrics_init(void);

/* Once active: `db` (the query connection) for the window seed and the
 * outbox count; transfer ids of this boot are >= boot_id << 32; the window
 * open at recovery. Starts the per-second timer. Returns 0, -1 when the
 * timer cannot be created (logged). */
int metrics_start(struct event_base *base, struct pgconn *db, uint32_t boot_id, int64_t window_id)
    __attribute__((warn_unused_result));
/* Stops the timer; late database answers are ignored. */
void metrics_free(void);

/* ---- the hot path ---- */

/* A transfer or return was admitted (router). */
void metrics_transfer_received(const struct transfer *t);
/* Its ACSC is being sent: t is durable (router, after COMMIT, while its
 * batch is delivered). The end of its duration is read from the clock once
 * every METRICS_CLOCK_REUSE transfers of a batch (a few microseconds of
 * work apart), not for each one. */
#define METRICS_CLOCK_REUSE 32
void metrics_transfer_settled(const struct transfer *t);
/* A rejection decided by the switch, for participant `payer_index`. */
void metrics_transfer_rejected(const char *reason, unsigned payer_index);
/* A posting batch of n transfers committed, took_us after it was sent;
 * now_us (monotonic) is when its COMMIT returned: its transfers' ACSCs go
 * out from here. */
void metrics_batch_committed(size_t n, int64_t took_us, int64_t now_us);
/* The window the batch being delivered was posted to (ledger, before its
 * transfers' callbacks). */
void metrics_batch_window(int64_t window_id);
/* The switch learned of the open window (a close, a sync, a resync). */
void metrics_window_opened(int64_t window_id);
/* A session of this participant registered. */
void metrics_session_opened(unsigned participant_index);
/* A MessageReject was sent (retry: a refusal that recorded nothing). */
void metrics_message_rejected(const char *reason, bool retry);

/* ---- reading ---- */

/* Appends the whole exposition to out. -1 when out of memory. */
int metrics_write_prometheus(struct evbuffer *out) __attribute__((warn_unused_result));

/* GET /api/v1/stats: {"now", "series": [{"t", "settled", "rejected",
 * "p50_ms", "p99_ms", "commit_p50_ms", "commit_p99_ms", "batch_avg"}] (whole
 * seconds with t > since, oldest first; latencies 0 in a second without
 * any), "rejections": {code: n} since start, "sessions": {code: n} (every
 * participant), "window": id, "window_gross": paisa (null until known),
 * "window_postings": n (null until known)}. NULL when out of memory. */
json_t *metrics_stats_json(int64_t since);

/* ---- pure parts (exported for the unit tests) ---- */

/* `since`: a Unix time in seconds, decimal digits only (at most 18).
 * Returns 0, or -1 when it is anything else. */
int metrics_parse_since(const char *text, int64_t *out) __attribute__((warn_unused_result));

/* A label value escaped per the exposition format (\ " and newline),
 * NUL-terminated. Returns its length, or -1 when it does not fit. */
int metrics_label_escape(const char *in, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* The per-second histogram: log-linear buckets over microseconds, exact
 * below 8 us, then 8 per power of two up to 2^28 us (larger values land in
 * the last bucket). */
#define METRICS_FINE_SUB     8
#define METRICS_FINE_MAX_EXP 27
#define METRICS_FINE_BUCKETS (METRICS_FINE_SUB + (METRICS_FINE_MAX_EXP - 2) * METRICS_FINE_SUB)

struct metrics_fine {
    uint32_t n;
    uint32_t counts[METRICS_FINE_BUCKETS];
};

unsigned metrics_fine_index(uint64_t us);
void metrics_fine_add(struct metrics_fine *h, uint64_t us);
/* The value at quantile permille/1000 (the bucket's middle); 0 when empty. */
uint64_t metrics_fine_quantile(const struct metrics_fine *h, unsigned permille);

/* The timer's work, for a given wall-clock second: closes the current
 * second (and fills seconds skipped with empty ones) when now_s is past it. */
void metrics_tick(int64_t now_s);

#endif
