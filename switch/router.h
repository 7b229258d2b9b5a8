/*
 * router: the life of a transfer. Checks a received CreditTransfer in the
 * order DESIGN.md fixes (format FF01/FF03, identity RC01, idempotency,
 * participants AG10/RC04/AG11/AB08, amount AM02, currency AM03, net debit cap
 * AM23), reserves the amount on the payer's position, forwards the transfer
 * to a session of the payee, waits for its decision (AB05 after the payee
 * timeout), hands the decided transfer to the ledger and, once the ledger
 * says it is durable, sends the outcome to the payer (and every attached
 * retry) and to the payee.
 *
 * Returns (pacs.004) run the same course in the other direction once the
 * original is checked against the ledger; status queries (pacs.028) are
 * answered from the index or the database, only to a party of the transfer.
 * No oracle: a decision, return or query about a transfer the sender may not
 * see (another participant's, or an id above what the ledger holds) gets
 * exactly the answer one about an id that does not exist gets; only the log
 * says which it was. In-flight returns are counted per original in a hash
 * map (one lookup per return). Peer strings are quoted in log lines.
 *
 * Owns all in-flight transfers (a free list of struct transfer). Sessions
 * are referred to by id, never by pointer, so a session may close at any
 * time: its transfers still finish and their outcomes wait in the
 * idempotency index for a retry.
 */
#ifndef SIKKA_ROUTER_H
#define SIKKA_ROUTER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "ledger.h"
#include "pgconn.h"
#include "transfer.h"

struct session;
struct participant;

struct router_options {
    int64_t payee_timeout_ms;
    int64_t max_amount;
    const char *currency;
    int64_t ndc_warn_percent;
    /* after router_init (a start or a takeover): a payee with no session yet
     * gets its payers' transfers refused retryably, not AB08 */
    int64_t reconnect_grace_ms;
};

/* `db` is the query connection: status queries and returns look up
 * transfers the idempotency index no longer holds. */
int router_init(struct event_base *base, uint32_t boot_id, struct pgconn *db)
    __attribute__((warn_unused_result));
/* The fee rule of a purpose (fee_schedule: at start, then by sync). */
void router_set_fee(Sikka__V1__Purpose purpose, const struct fee_rule *rule);
void router_get_fee(Sikka__V1__Purpose purpose, struct fee_rule *out);
/* Checks a participant's position against its cap's warning threshold and
 * logs once when it is crossed (or falls back under). */
void router_check_cap(struct participant *p);
/* The warning threshold in use, percent of the cap. */
int64_t router_warn_percent(void);
/* The scheme's largest amount (AM02 above it), paisa. */
int64_t router_max_amount(void);
/* How long a payee has to decide (a suspended participant's sessions stay
 * that long for decisions on transfers they were sent). */
int64_t router_payee_timeout_ms(void);
void router_configure(const struct router_options *opts);
void router_free(void);

/* A decoded frame from a session whose participant is known and active. */
void router_on_frame(struct session *s, const Envelope *env);

/* One item of a bulk (bulk.c): handled exactly like a CreditTransfer from
 * s, counted against s's in-flight cap, but every answer to the payer
 * (report, rejection, refusal) goes to bulk_item_answer(reply, ...). */
void router_bulk_item(struct session *s, uint64_t reply, const Sikka__V1__CreditTransfer *ct);

/* Stop taking new transfers (SIGTERM); in-flight ones finish. */
void router_drain(void);
bool router_draining(void);

/* Transfers not yet answered (in flight or being posted). */
size_t router_inflight(void);

struct router_stats {
    uint64_t received;
    uint64_t settled;
    uint64_t rejected;
    uint64_t duplicates;          /* retries answered from the index */
    uint64_t refused_unavailable; /* turned away while the ledger was unavailable */
};
void router_get_stats(struct router_stats *out);

/* Sends the payee's settlement notice held in row `row` of an outbox query
 * (sql.c OUTBOX_COLUMNS) to s, as a StatusReport with to_payee. */
void router_send_notice(struct session *s, PGresult *res, int row);

/* The function the ledger calls when a transfer is durable (or refused). */
ledger_done_cb router_ledger_callback(void);

#endif
