/*
 * fence: at most one switch posts to a ledger. Two (or more) sikka-switch
 * processes may run on one database, an active one and standbys.
 *
 * A switch first takes PostgreSQL's session advisory lock FENCE_KEY on a
 * connection of its own (a standby waits here, trying every 250 ms), then
 * bumps the fence epoch (fence_acquire(), schema/005). Every posting batch
 * carries the epoch; the database refuses one carrying an older epoch
 * (SQLSTATE SKF01), so a switch that lost the fence cannot post, whatever
 * its other connections still do. On its first acquisition it also waits
 * until the posting connections of the switch before it are gone (they hold
 * POSTING_KEY shared; it takes it exclusively once): no batch of a dead or
 * deposed switch can commit after the new one has read the ledger.
 *
 * The fence connection is pinged every 500 ms. When it is lost (the
 * database restarted or failed over), postings pause and the switch takes
 * the fence again on a new connection: the next epoch means nobody else held
 * it meanwhile and postings resume; a later epoch, or the lock held by
 * another switch for longer than fence_takeover_ms, means this switch was
 * deposed: it exits (status 75) so that a supervisor starts it again as a
 * standby. The posting connections take POSTING_KEY shared on connect
 * (fence_posting_init_sql).
 *
 * Single-threaded, on the loop. Owns its pgconn.
 */
#ifndef SIKKA_FENCE_H
#define SIKKA_FENCE_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#define FENCE_KEY   INT64_C(5353235353000001)
#define POSTING_KEY INT64_C(5353235353000002)

enum fence_state {
    FENCE_WAITING = 0, /* not held yet: a standby, or starting */
    FENCE_HELD,        /* this switch is the active one */
    FENCE_LOST,        /* the fence connection dropped: postings pause */
};

/* Starts taking the fence for `holder` ("host:pid"). `on_held` runs once,
 * when it is first held (main then loads the ledger and serves); a fence
 * lost and taken again does not call it again. `on_deposed` runs when
 * another switch took over: this one must stop at once. */
int fence_init(struct event_base *base, const char *conninfo, const char *holder,
               int64_t takeover_ms, void (*on_held)(void), void (*on_deposed)(void))
    __attribute__((warn_unused_result));
void fence_free(void);

enum fence_state fence_state(void);
const char *fence_state_name(enum fence_state s);
/* The epoch postings carry; 0 before the fence was first held. */
int64_t fence_epoch(void);
/* Seconds the switch has been waiting for the fence (0 when held). */
int64_t fence_waiting_ms(void);

/* A batch carrying `epoch` was refused as fenced (SKF01): with the current
 * epoch that means another switch took over; with an older one (sent before
 * the fence was retaken) the batch is simply sent again. */
void fence_refused(int64_t epoch);

/* What a posting connection runs on connect (pgconn_set_init). */
extern const char fence_posting_init_sql[];

#endif
