/*
 * sync: keeps the running switch in step with the scheme's state in the
 * database — participants (status, net debit cap and its grace, new ones),
 * the open settlement window and the fee schedule — whoever changed it: the
 * switch's own operators, another process with rights, a superuser.
 *
 * The database notifies channel `sikka_state` on every such change
 * (schema/004). The switch re-reads the state
 *   - on a notification;
 *   - whenever the query connection (re)connects: notifications sent while
 *     it was down are lost;
 *   - when the database refused or re-priced a posting (ledger's hook): the
 *     first sign that memory is stale;
 *   - every state_sync_seconds, as a backstop.
 * Re-reads are coalesced: at most one in flight and one more owed. A change
 * found is applied the way the switch's own operator requests apply it (a
 * lowered cap for new reservations only), logged, and the balances are
 * re-read at a cut by the ledger when windows or participants changed.
 *
 * It also ends a lowered cap's grace in the database once no payment
 * reserved under the old cap is in flight (sync_grace_check).
 *
 * Owns nothing but its timer; single-threaded, on the loop.
 */
#ifndef SIKKA_SYNC_H
#define SIKKA_SYNC_H

#include <event2/event.h>
#include <stdint.h>

#include "pgconn.h"

struct participant;

/* `db` is the query connection; sync LISTENs on it (call before it starts). */
int sync_init(struct event_base *base, struct pgconn *db) __attribute__((warn_unused_result));
void sync_configure(int64_t interval_seconds);
void sync_free(void);

/* Asks for a re-read (coalesced); `why` is logged. */
void sync_request(const char *why);

/* Ends p's cap grace in the database when participant_grace_due(p). */
void sync_grace_check(struct participant *p);
/* The same for every participant (after positions were re-read). */
void sync_grace_check_all(void);

/* Re-reads done, for tests and the console. */
uint64_t sync_count(void);

#endif
