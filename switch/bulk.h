/*
 * bulk: bulk supplier payments (pain.001 / pacs.008 with several
 * transactions). A BulkCreditTransfer carries up to BULK_MAX_ITEMS credit
 * transfers of one payer; each item goes through the router as an ordinary
 * transfer (router_bulk_item): its own msg_id and idempotency, fee, checks
 * in DESIGN.md's order, reservation, payee, posting and payee notice. An
 * item whose payee is offline or rejects gets its own answer (AB08, AB05,
 * AC01, ...) while the others settle. The batch is answered with BulkReport
 * frames: the items' results in item order, BULK_REPORT_CHUNK per frame, the
 * last one with the summary.
 *
 * Idempotency of the batch: (payer, batch_id) and a SHA-256 fingerprint of
 * the items' business fields (created_at_ms left out) are registered in the
 * database (schema/010, bulk_register) before any item is routed. The same
 * batch again gets the same answers (its items' own idempotency); the same
 * batch_id with other items is refused whole with AM05; the same batch while
 * the first is still in flight attaches and gets the report too.
 *
 * Pacing: items enter the router from a deferred event, at most
 * BULK_FEED_PER_PASS per pass of the loop, only while the sending session has
 * fewer than three quarters of session_max_inflight in flight and the
 * participant's transfer rate has a token: a batch loads the switch no more
 * than as many single transfers from that session would, other sessions are
 * served between passes, and the session itself is never paused by its
 * batch (it still reads decisions as a payee, queries and its own close).
 * At most BULK_MAX_PER_PARTICIPANT batches of one participant are in flight.
 *
 * Answers: the router sends every payer-side answer of an item (report,
 * rejection, retryable refusal) to the item's reply id, a uint64 with the
 * top bit set that no session id has: bulk_item_answer() collects it.
 *
 * Owns the batches in flight (a list; a handful at a time). A batch whose
 * sessions all closed stops routing new items, lets those in flight finish,
 * and is dropped: a retry of the batch routes the rest (sent while those
 * still finish, it attaches and routes the rest from its session).
 */
#ifndef SIKKA_BULK_H
#define SIKKA_BULK_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "codec.h"
#include "pgconn.h"

#define BULK_MAX_ITEMS           1000
#define BULK_REPORT_CHUNK        50 /* results per BulkReport frame */
#define BULK_FEED_PER_PASS       64
#define BULK_MAX_PER_PARTICIPANT 4
#define BULK_MAX_LISTENERS       8 /* sessions one batch reports to (attached retries) */
#define BULK_REPLY_BIT           (UINT64_C(1) << 63)

struct session;

/* `db` is the query connection: bulk_register runs there. */
int bulk_init(struct event_base *base, struct pgconn *db) __attribute__((warn_unused_result));
void bulk_free(void);

/* A BulkCreditTransfer from s (the router's dispatch). */
void bulk_on_frame(struct session *s, const Sikka__V1__BulkCreditTransfer *b);

/* Whether id is a bulk item's reply id rather than a session's. */
static inline bool bulk_is_reply(uint64_t id)
{
    return (id & BULK_REPLY_BIT) != 0;
}

/* An item's answer, from the router: its report (sr, strings copied), or,
 * sr NULL, a retryable refusal with its text (nothing recorded). */
void bulk_item_answer(uint64_t reply, const Sikka__V1__StatusReport *sr, const char *refused);

/* Batches in flight. */
size_t bulk_inflight(void);

#endif
