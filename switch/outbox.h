/*
 * outbox: the payees' settlement notices are durable. A transfer forwarded
 * to its payee gets a payee_outbox row in the posting's own transaction
 * (schema/005); the switch sends the notice at once (StatusReport with
 * to_payee), and the payee acknowledges it (ReportAck), which deletes the
 * row. What is still in the outbox is sent again:
 *   - to every session of the payee that opens (a reconnect, a restart, the
 *     standby switch taking over);
 *   - every OUTBOX_SWEEP_S seconds, for notices older than that, to a
 *     connected session of their payee (a notice written to a session that
 *     then died, while another session of the payee lived on).
 * So a payee whose customer was paid always hears it, at least once; the
 * client library drops repeats by transfer id.
 *
 * Acknowledgements are batched (at most every 50 ms, or 500 at once) into
 * one payee_outbox_ack_all() for every payee (schema/016); while the
 * database cannot take them they are kept (up to a million ids) and tried
 * every 500 ms. Single-threaded, on the loop; uses the participants' query
 * connection.
 */
#ifndef SIKKA_OUTBOX_H
#define SIKKA_OUTBOX_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "pgconn.h"

struct participant;
struct session;

#define OUTBOX_SWEEP_S 10

int outbox_init(struct event_base *base, struct pgconn *db) __attribute__((warn_unused_result));
void outbox_free(void);

/* p acknowledged these notices (ids of other payees' transfers are ignored
 * by the database). */
void outbox_ack(const struct participant *p, const uint64_t *ids, size_t n);

/* A session of its participant opened: send it what waits in the outbox. */
void outbox_resend(struct session *s);

/* Notices re-sent so far, acknowledgements applied, for the console. */
void outbox_get_stats(uint64_t *resent, uint64_t *acked);

#endif
