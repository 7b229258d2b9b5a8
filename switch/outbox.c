#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "participant.h"
#include "router.h"
#include "session.h"
#include "sql.h"

#define ACK_FLUSH_MS  50
#define ACK_FLUSH_AT  500
#define RESEND_LIMIT  "10000"
#define SWEEP_LIMIT   "10000"
#define ACK_BATCH_MAX 64 /* payees with acknowledgements waiting */

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
    struct pending_acks acks[ACK_BATCH_MAX];
    size_t nacks;
    bool sweeping;
    uint64_t resent, acked;
} O;

static void on_acked(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct pending_acks *batch = arg;
    if (flags != PGCONN_OK)
        /* the rows stay: the notices are sent again, acknowledged again */
        log_warn("event=outbox_ack_failed payee=%s ids=%zu why=\"%s\"", batch->payee, batch->n,
                 error);
    else
        O.acked += strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    free(batch->ids);
    free(batch);
}

/* Sends every payee's waiting acknowledgements, one call per payee. */
static void flush_acks(void)
{
    for (size_t i = 0; i < O.nacks; i++) {
        struct pending_acks *a = &O.acks[i];
        if (a->n == 0)
            continue;
        /* the array literal: {1,2,3} */
        size_t len = a->n * 21 + 3;
        char *arr = malloc(len);
        struct pending_acks *batch = malloc(sizeof(*batch));
        if (arr == NULL || batch == NULL) {
            log_error("event=oom what=outbox_ack payee=%s ids=%zu action=resend_later", a->payee,
                      a->n);
            free(arr);
            free(batch);
            a->n = 0;
            continue;
        }
        size_t o = 0;
        arr[o++] = '{';
        for (size_t k = 0; k < a->n; k++)
            o += (size_t)snprintf(arr + o, len - o, "%s%" PRIu64, k ? "," : "", a->ids[k]);
        arr[o++] = '}';
        arr[o] = '\0';
        *batch = *a; /* the batch takes the ids; a starts afresh */
        a->ids = NULL;
        a->n = a->cap = 0;
        const char *params[] = {batch->payee, arr};
        if (pgconn_exec(O.db, SQL_OUTBOX_ACK, 2, params, on_acked, batch) != 0) {
            log_warn("event=outbox_ack_deferred payee=%s ids=%zu why=\"database not ready\" "
                     "action=resend_later",
                     batch->payee, batch->n);
            free(batch->ids);
            free(batch);
        }
        free(arr);
    }
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
    struct pending_acks *a = NULL;
    for (size_t i = 0; i < O.nacks && a == NULL; i++)
        if (strcmp(O.acks[i].payee, p->code) == 0)
            a = &O.acks[i];
    if (a == NULL) {
        if (O.nacks == ACK_BATCH_MAX)
            flush_acks(); /* every slot's ids go; the slots are reused */
        if (O.nacks == ACK_BATCH_MAX)
            O.nacks = 0;
        a = &O.acks[O.nacks++];
        memset(a, 0, sizeof(*a));
        snprintf(a->payee, sizeof(a->payee), "%s", p->code);
    }
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 64;
        while (cap < a->n + n)
            cap *= 2;
        uint64_t *grown = realloc(a->ids, cap * sizeof(*grown));
        if (grown == NULL) {
            log_error("event=oom what=outbox_ack payee=%s action=resend_later", p->code);
            return;
        }
        a->ids = grown;
        a->cap = cap;
    }
    memcpy(a->ids + a->n, ids, n * sizeof(*ids));
    a->n += n;
    if (a->n >= ACK_FLUSH_AT) {
        flush_acks();
    } else if (!evtimer_pending(O.flush_timer, NULL)) {
        struct timeval tv = {0, ACK_FLUSH_MS * 1000};
        evtimer_add(O.flush_timer, &tv);
    }
}

/* A session asked for its payee's notices: the session id, so that a
 * session gone meanwhile is simply skipped. */
struct resend {
    uint64_t session;
};

static void on_payee_notices(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct resend *r = arg;
    struct session *s = session_find(r->session);
    free(r);
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
                 "action=next_sweep",
                 s->label);
        free(r);
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
    if (O.flush_timer != NULL)
        event_free(O.flush_timer);
    if (O.sweep_timer != NULL)
        event_free(O.sweep_timer);
    memset(&O, 0, sizeof(O));
}
