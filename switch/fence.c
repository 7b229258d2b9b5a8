#include "clock.h"
#include "fence.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger.h"
#include "log.h"
#include "pgconn.h"

#define TRY_EVERY_MS  250
#define PING_EVERY_MS 500

/* bigint literals of the keys, for the statements */
#define FENCE_KEY_SQL   "5353235353000001"
#define POSTING_KEY_SQL "5353235353000002"

const char fence_posting_init_sql[] = "SELECT pg_advisory_lock_shared(" POSTING_KEY_SQL ")";

static const struct pgconn_stmt fence_stmts[] = {
    {"fence_try", "SELECT pg_try_advisory_lock(" FENCE_KEY_SQL ")"},
    /* $1 holder */
    {"fence_acquire", "SELECT fence_acquire(0, $1)"},
    {"fence_holder", "SELECT coalesce(holder, '-'), epoch FROM switch_fence WHERE id = 1"},
    {"fence_orphans", "SELECT pg_advisory_lock(" POSTING_KEY_SQL ")"},
    {"fence_orphans_done", "SELECT pg_advisory_unlock(" POSTING_KEY_SQL ")"},
    {"fence_ping", "SELECT 1"},
};

static struct {
    struct event_base *base;
    struct pgconn *conn;
    struct event *timer;
    char holder[128];
    int64_t takeover_ms;
    void (*on_held)(void);
    void (*on_deposed)(void);
    enum fence_state state;
    int64_t epoch;
    bool held_once;
    bool busy;         /* a step of the sequence is in flight */
    bool waiting_said; /* the standby's wait was logged */
    int64_t since_ms;  /* when it started waiting for the fence (monotonic) */
} F;

static const char *const state_names[] = {"waiting", "held", "lost"};

const char *fence_state_name(enum fence_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

enum fence_state fence_state(void)
{
    return F.state;
}

int64_t fence_epoch(void)
{
    return F.epoch;
}

int64_t fence_waiting_ms(void)
{
    return F.state == FENCE_HELD ? 0 : mono_ms() - F.since_ms;
}

static void arm(int64_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(F.timer, &tv);
}

static void deposed(const char *why)
{
    log_error("event=fenced epoch=%" PRId64 " why=\"%s\" action=exit", F.epoch, why);
    F.state = FENCE_LOST;
    evtimer_del(F.timer);
    F.on_deposed();
}

static void try_lock(void);

static void held(void)
{
    F.state = FENCE_HELD;
    F.waiting_said = false;
    log_info("event=fence_held epoch=%" PRId64 " holder=%s", F.epoch, F.holder);
    arm(PING_EVERY_MS);
    if (!F.held_once) {
        F.held_once = true;
        F.on_held();
    } else {
        ledger_kick();
    }
}

static void on_orphans_done(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    (void)res;
    F.busy = false;
    if (flags != PGCONN_OK) {
        log_warn("event=fence_orphan_wait_failed why=\"%s\" action=retry", error);
        arm(TRY_EVERY_MS);
        return;
    }
    held();
}

static void on_orphans(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    (void)res;
    if (flags != PGCONN_OK ||
        pgconn_exec(F.conn, "fence_orphans_done", 0, NULL, on_orphans_done, NULL) != 0) {
        F.busy = false;
        log_warn("event=fence_orphan_wait_failed why=\"%s\" action=retry",
                 error != NULL ? error : "cannot send");
        arm(TRY_EVERY_MS);
        return;
    }
    log_info("event=fence_orphans_gone why=\"no posting connection of an earlier switch is "
             "left\"");
}

static void on_acquired(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    if (flags != PGCONN_OK) {
        F.busy = false;
        log_warn("event=fence_acquire_failed why=\"%s\" action=retry", error);
        arm(TRY_EVERY_MS);
        return;
    }
    int64_t epoch = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    if (F.held_once) {
        F.busy = false;
        if (epoch != F.epoch + 1) {
            char why[160];
            snprintf(why, sizeof(why),
                     "the fence moved from epoch %" PRId64 " to %" PRId64
                     ": another switch was active meanwhile",
                     F.epoch, epoch);
            F.epoch = epoch;
            deposed(why);
            return;
        }
        F.epoch = epoch;
        log_warn("event=fence_retaken epoch=%" PRId64 " lost_ms=%" PRId64, epoch,
                 mono_ms() - F.since_ms);
        held();
        return;
    }
    F.epoch = epoch;
    /* first time: wait out the posting connections of whoever was before */
    if (pgconn_exec(F.conn, "fence_orphans", 0, NULL, on_orphans, NULL) != 0) {
        F.busy = false;
        arm(TRY_EVERY_MS);
    }
}

static void on_holder(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    (void)error;
    F.busy = false;
    if (flags == PGCONN_OK && PQntuples(res) == 1 && !F.waiting_said) {
        F.waiting_said = true;
        log_info("event=fence_waiting state=%s holder=%s epoch=%s why=\"another switch is "
                 "active\"",
                 fence_state_name(F.state), PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    }
    arm(TRY_EVERY_MS);
}

static void on_try(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    if (flags != PGCONN_OK) {
        F.busy = false;
        log_warn("event=fence_try_failed why=\"%s\" action=retry", error);
        arm(TRY_EVERY_MS);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        const char *params[] = {F.holder};
        if (pgconn_exec(F.conn, "fence_acquire", 1, params, on_acquired, NULL) != 0) {
            F.busy = false;
            arm(TRY_EVERY_MS);
        }
        return;
    }
    if (F.held_once && mono_ms() - F.since_ms > F.takeover_ms) {
        F.busy = false;
        deposed("another switch holds the fence");
        return;
    }
    if (F.waiting_said || pgconn_exec(F.conn, "fence_holder", 0, NULL, on_holder, NULL) != 0) {
        F.busy = false;
        arm(TRY_EVERY_MS);
    }
}

static void try_lock(void)
{
    if (F.busy || F.state == FENCE_HELD || !pgconn_is_ready(F.conn))
        return;
    if (pgconn_exec(F.conn, "fence_try", 0, NULL, on_try, NULL) == 0)
        F.busy = true;
    else
        arm(TRY_EVERY_MS);
}

static void lost(const char *why)
{
    if (F.state != FENCE_HELD)
        return;
    F.state = FENCE_LOST;
    F.since_ms = mono_ms();
    log_error("event=fence_lost epoch=%" PRId64 " why=\"%s\" action=pause_postings_and_retake",
              F.epoch, why);
    arm(TRY_EVERY_MS);
}

static void on_ping(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    (void)res;
    F.busy = false;
    if (flags == PGCONN_LOST)
        lost(error);
    else if (flags != PGCONN_OK)
        log_warn("event=fence_ping_failed why=\"%s\"", error);
    if (F.state == FENCE_HELD)
        arm(PING_EVERY_MS);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (F.busy)
        return;
    if (F.state != FENCE_HELD) {
        try_lock();
        return;
    }
    if (!pgconn_is_ready(F.conn)) {
        lost("the fence connection is down");
        return;
    }
    if (pgconn_exec(F.conn, "fence_ping", 0, NULL, on_ping, NULL) == 0)
        F.busy = true;
    else
        lost("cannot ping on the fence connection");
}

static void on_ready(void *arg)
{
    (void)arg;
    /* a (re)connected fence connection holds no lock */
    if (F.state == FENCE_HELD)
        lost("the fence connection was re-established");
    F.busy = false;
    try_lock();
}

void fence_refused(int64_t epoch)
{
    if (F.state == FENCE_HELD && epoch == F.epoch)
        deposed("the database refused a posting that carried this switch's epoch");
}

int fence_init(struct event_base *base, const char *conninfo, const char *holder,
               int64_t takeover_ms, void (*on_held)(void), void (*on_deposed)(void))
{
    memset(&F, 0, sizeof(F));
    F.base = base;
    F.takeover_ms = takeover_ms;
    F.on_held = on_held;
    F.on_deposed = on_deposed;
    F.since_ms = mono_ms();
    snprintf(F.holder, sizeof(F.holder), "%s", holder);
    F.timer = evtimer_new(base, on_timer, NULL);
    F.conn = pgconn_new(base, "fence", conninfo, fence_stmts,
                        sizeof(fence_stmts) / sizeof(fence_stmts[0]));
    if (F.timer == NULL || F.conn == NULL) {
        log_error("event=fence_init_failed why=\"out of memory\"");
        return -1;
    }
    pgconn_set_ready_cb(F.conn, on_ready, NULL);
    return pgconn_start(F.conn);
}

void fence_free(void)
{
    /* the connection first: its queued statements fail into callbacks
     * that may still arm the timer */
    pgconn_free(F.conn);
    if (F.timer != NULL)
        event_free(F.timer);
    memset(&F, 0, sizeof(F));
}
