#include "outbox.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "participant.h"
#include "pgarray.h"
#include "router.h"
#include "session.h"
#include "sql.h"

#define ACK_FLUSH_MS    50
#define ACK_FLUSH_AT    500
#define ACK_RETRY_MS    500     /* while the database cannot take them */
#define ACK_KEPT_MAX    1000000 /* ids kept meanwhile (8 MB); beyond, resending covers */
#define RESEND_LIMIT    "10000"
#define RESEND_RETRY_MS 1000 /* a session's resend while the database is away */
#define SWEEP_LIMIT     "10000"

/* Acknowledgements of one payee waiting to be applied. */
struct pending_acks {
    char payee[5];
    uint64_t *ids;
    size_t n, cap;
};

static struct {
    struct event_base *base;
    struct pgconn *db;
    struct event *flush_timer;
    struct event *sweep_timer;
    struct pending_acks *acks;  /* one per payee that acknowledged, grown as needed */
    struct pgarray payees, ids; /* a flush's parameters, reused */
    size_t nacks, acks_cap;
    size_t kept;       /* ids in acks[] */
    bool waiting_said; /* "waiting for the database" logged for this outage */
    bool sweeping;
    uint64_t resent, acked, dropped;
} O;

static void arm_flush(int ms)
{
    if (!evtimer_pending(O.flush_timer, NULL)) {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(O.flush_timer, &tv);
    }
}

/* Queues ids for payee; false when they had to be dropped (the notices are
 * then simply sent again and acknowledged again). */
static bool keep_acks(const char *payee, const uint64_t *ids, size_t n)
{
    if (O.kept + n > ACK_KEPT_MAX) {
        O.dropped += n;
        log_warn("event=outbox_acks_dropped payee=%s ids=%zu kept=%zu why=\"too many waiting for "
                 "the database\" action=resend_later",
                 payee, n, O.kept);
        return false;
    }
    struct pending_acks *a = NULL;
    for (size_t i = 0; i < O.nacks && a == NULL; i++)
        if (strcmp(O.acks[i].payee, payee) == 0)
            a = &O.acks[i];
    if (a == NULL) {
        if (O.nacks == O.acks_cap) {
            size_t cap = O.acks_cap ? 2 * O.acks_cap : 16;
            struct pending_acks *grown = realloc(O.acks, cap * sizeof(*grown));
            if (grown == NULL) {
                log_error("event=oom what=outbox_ack payee=%s action=resend_later", payee);
                return false;
            }
            O.acks = grown;
            O.acks_cap = cap;
        }
        a = &O.acks[O.nacks++];
        memset(a, 0, sizeof(*a));
        snprintf(a->payee, sizeof(a->payee), "%s", payee);
    }
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 64;
        while (cap < a->n + n)
            cap *= 2;
        uint64_t *grown = realloc(a->ids, cap * sizeof(*grown));
        if (grown == NULL) {
            log_error("event=oom what=outbox_ack payee=%s action=resend_later", payee);
            return false;
        }
        a->ids = grown;
        a->cap = cap;
    }
    memcpy(a->ids + a->n, ids, n * sizeof(*ids));
    a->n += n;
    O.kept += n;
    return true;
}

/* Callbacks of statements still queued when the switch stops run after
 * outbox_free (pgconn_free fails them): then they only free their own. */
static bool outbox_closed(void)
{
    return O.flush_timer == NULL;
}

/* One flush's acknowledgements in flight: every payee's ids (owned). */
struct ack_call {
    struct pending_acks *groups;
    size_t ngroups, nids;
};

static void on_acked(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct ack_call *call = arg;
    if (outbox_closed()) {
        /* the rows stay: sent again on the payee's next connection */
    } else if (flags == PGCONN_OK) {
        O.acked += strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    } else {
        /* in doubt or refused: applying them again is harmless */
        log_warn("event=outbox_ack_failed payees=%zu ids=%zu why=\"%s\" action=retry",
                 call->ngroups, call->nids, error);
        bool kept = false;
        for (size_t i = 0; i < call->ngroups; i++)
            kept |= keep_acks(call->groups[i].payee, call->groups[i].ids, call->groups[i].n);
        if (kept)
            arm_flush(ACK_RETRY_MS);
    }
    for (size_t i = 0; i < call->ngroups; i++)
        free(call->groups[i].ids);
    free(call->groups);
    free(call);
}

/* Sends every payee's waiting acknowledgements in one call (schema/016):
 * two arrays of the same length, {"JAZZ","JAZZ","KOKO"} and {1,2,3}; keeps
 * them while the database cannot take them. */
static void flush_acks(void)
{
    if (O.kept == 0)
        return;
    if (!pgconn_is_ready(O.db)) {
        if (!O.waiting_said)
            log_warn("event=outbox_acks_waiting ids=%zu why=\"database not ready\" "
                     "action=retry_every_%dms",
                     O.kept, ACK_RETRY_MS);
        O.waiting_said = true;
        arm_flush(ACK_RETRY_MS);
        return;
    }
    O.waiting_said = false;
    struct ack_call *call = malloc(sizeof(*call));
    struct pending_acks *groups = malloc(O.nacks * sizeof(*groups));
    int rc = call != NULL && groups != NULL ? 0 : -1;
    size_t ng = 0;
    pgarray_reset(&O.payees);
    pgarray_reset(&O.ids);
    for (size_t i = 0; i < O.nacks && rc == 0; i++) {
        struct pending_acks *a = &O.acks[i];
        for (size_t k = 0; k < a->n; k++) {
            /* an id beyond bigint names no transfer; sent, it would fail
             * the whole call, and every retry of it */
            if (a->ids[k] > INT64_MAX)
                continue;
            rc |= pgarray_text(&O.payees, a->payee) | pgarray_int(&O.ids, (int64_t)a->ids[k]);
        }
        if (a->n > 0)
            groups[ng++] = *a;
    }
    if (rc == 0)
        rc = pgarray_finish(&O.payees) | pgarray_finish(&O.ids);
    if (rc != 0) {
        log_error("event=oom what=outbox_ack ids=%zu action=retry", O.kept);
        free(groups);
        free(call);
        arm_flush(ACK_RETRY_MS);
        return;
    }
    *call = (struct ack_call){.groups = groups, .ngroups = ng, .nids = O.kept};
    const char *params[] = {O.payees.buf, O.ids.buf};
    if (pgconn_exec(O.db, SQL_OUTBOX_ACK, 2, params, on_acked, call) != 0) {
        /* pgconn said why; the ids stay where they were for the next try */
        free(groups);
        free(call);
        arm_flush(ACK_RETRY_MS);
        return;
    }
    /* the call took every payee's ids: each starts afresh */
    for (size_t i = 0; i < O.nacks; i++) {
        if (O.acks[i].n == 0)
            continue;
        O.acks[i].ids = NULL;
        O.acks[i].n = O.acks[i].cap = 0;
    }
    O.kept = 0;
}

static void on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    flush_acks();
}

void outbox_ack(const struct participant *p, const uint64_t *ids, size_t n)
{
    if (!keep_acks(p->code, ids, n))
        return;
    if (O.kept >= ACK_FLUSH_AT)
        flush_acks();
    else
        arm_flush(ACK_FLUSH_MS);
}

/* A session asked for its payee's notices: the session id, so that a
 * session gone meanwhile is simply skipped. */
struct resend {
    uint64_t session;
};

static void on_payee_notices(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct resend *r = arg;
    struct session *s = outbox_closed() ? NULL : session_find(r->session);
    free(r);
    if (outbox_closed())
        return;
    if (flags != PGCONN_OK) {
        log_warn("event=outbox_resend_failed session=%s why=\"%s\" action=next_sweep",
                 s != NULL ? s->label : "-", error);
        return;
    }
    if (s == NULL || PQntuples(res) == 0)
        return;
    for (int i = 0; i < PQntuples(res); i++)
        router_send_notice(s, res, i);
    O.resent += (uint64_t)PQntuples(res);
    log_info("event=outbox_resent session=%s notices=%d", s->label, PQntuples(res));
}

static void on_resend_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct resend *r = arg;
    struct session *s = session_find(r->session);
    free(r);
    if (s != NULL)
        outbox_resend(s);
}

void outbox_resend(struct session *s)
{
    struct resend *r = malloc(sizeof(*r));
    if (r == NULL) {
        log_error("event=oom what=outbox_resend session=%s action=next_sweep", s->label);
        return;
    }
    r->session = s->id;
    const char *params[] = {s->participant->code, RESEND_LIMIT};
    if (pgconn_exec(O.db, SQL_OUTBOX_PAYEE, 2, params, on_payee_notices, r) != 0) {
        log_warn("event=outbox_resend_deferred session=%s why=\"database not ready\" "
                 "action=retry_in_%dms",
                 s->label, RESEND_RETRY_MS);
        struct timeval tv = {RESEND_RETRY_MS / 1000, (RESEND_RETRY_MS % 1000) * 1000};
        if (event_base_once(O.base, -1, EV_TIMEOUT, on_resend_retry, r, &tv) != 0) {
            log_error("event=oom what=outbox_resend session=%s action=next_sweep", s->label);
            free(r);
        }
    }
}

static void arm_sweep(void)
{
    struct timeval tv = {OUTBOX_SWEEP_S, 0};
    evtimer_add(O.sweep_timer, &tv);
}

static void on_stale(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    if (outbox_closed())
        return;
    O.sweeping = false;
    arm_sweep();
    if (flags != PGCONN_OK) {
        log_warn("event=outbox_sweep_failed why=\"%s\"", error);
        return;
    }
    int sent = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        struct participant *p = participant_find(PQgetvalue(res, i, 5));
        struct session *s = p != NULL ? session_pick(p) : NULL;
        if (s != NULL) {
            router_send_notice(s, res, i);
            sent++;
        }
    }
    if (sent > 0) {
        O.resent += (uint64_t)sent;
        log_info("event=outbox_swept notices=%d unacknowledged=%d", sent, PQntuples(res));
    }
}

static void on_sweep_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (O.sweeping)
        return;
    char secs[16];
    snprintf(secs, sizeof(secs), "%d", OUTBOX_SWEEP_S);
    const char *params[] = {secs, SWEEP_LIMIT};
    if (pgconn_exec(O.db, SQL_OUTBOX_STALE, 2, params, on_stale, NULL) == 0)
        O.sweeping = true;
    else
        arm_sweep();
}

int outbox_init(struct event_base *base, struct pgconn *db)
{
    memset(&O, 0, sizeof(O));
    O.base = base;
    O.db = db;
    O.flush_timer = evtimer_new(base, on_flush_timer, NULL);
    O.sweep_timer = evtimer_new(base, on_sweep_timer, NULL);
    if (O.flush_timer == NULL || O.sweep_timer == NULL) {
        log_error("event=oom what=outbox_timers");
        return -1;
    }
    arm_sweep();
    return 0;
}

void outbox_get_stats(uint64_t *resent, uint64_t *acked)
{
    *resent = O.resent;
    *acked = O.acked;
}

void outbox_free(void)
{
    for (size_t i = 0; i < O.nacks; i++)
        free(O.acks[i].ids);
    free(O.acks);
    pgarray_free(&O.payees);
    pgarray_free(&O.ids);
    if (O.flush_timer != NULL)
        event_free(O.flush_timer);
    if (O.sweep_timer != NULL)
        event_free(O.sweep_timer);
    memset(&O, 0, sizeof(O));
}
