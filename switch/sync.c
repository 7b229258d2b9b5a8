#include "sync.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "log.h"
#include "participant.h"
#include "router.h"
#include "session.h"
#include "sql.h"

#define SYNC_CHANNEL "sikka_state"

static struct {
    struct event_base *base;
    struct pgconn *db;
    struct event *timer;
    int64_t interval_s;
    int pending; /* queries of the round in flight */
    bool owed;   /* asked again while a round was in flight */
    uint64_t rounds;
} S;

static void start_round(const char *why);

static void arm_timer(void)
{
    if (S.timer == NULL)
        return;
    struct timeval tv = {S.interval_s, 0};
    evtimer_add(S.timer, &tv);
}

static void round_step_done(void)
{
    if (--S.pending > 0)
        return;
    S.rounds++;
    log_debug("event=state_synced round=%" PRIu64, S.rounds);
    arm_timer();
    if (S.owed) {
        S.owed = false;
        start_round("asked again during a re-read");
    }
}

/* One participant row as the database has it (sql.c PARTICIPANTS_SQL). */
static void apply_participant(PGresult *res, int i)
{
    const char *code = PQgetvalue(res, i, 0);
    enum participant_status status;
    if (participant_parse_status(PQgetvalue(res, i, 3), &status) != 0)
        status = PARTICIPANT_SUSPENDED;
    int64_t ndc = strtoll(PQgetvalue(res, i, 4), NULL, 10);
    int64_t grace = strtoll(PQgetvalue(res, i, 8), NULL, 10);
    struct participant *p = participant_find(code);
    if (p == NULL) {
        p = participant_add(code, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
        if (p == NULL) {
            log_error("event=state_sync_failed participant=%s why=\"cannot register\"", code);
            return;
        }
        p->status = status;
        p->pos.ndc = ndc;
        p->position_account = strtoll(PQgetvalue(res, i, 5), NULL, 10);
        p->pos.posted = strtoll(PQgetvalue(res, i, 6), NULL, 10);
        p->settlement_account = strtoll(PQgetvalue(res, i, 7), NULL, 10);
        p->ndc_grace = grace;
        log_warn("event=participant_synced code=%s what=added status=%s ndc=%" PRId64
                 " why=\"added in the database outside this switch\"",
                 code, participant_status_name(status), ndc);
        return;
    }
    if (p->status != status) {
        log_warn("event=participant_synced code=%s what=status from=%s to=%s", code,
                 participant_status_name(p->status), participant_status_name(status));
        p->status = status;
        if (status != PARTICIPANT_ACTIVE)
            session_retire_participant(p, router_payee_timeout_ms() + 500,
                                       "suspended in the database");
    }
    if (p->pos.ndc != ndc) {
        int64_t old = p->pos.ndc;
        bool lowered = participant_set_ndc(p, ndc);
        log_warn("event=participant_synced code=%s what=ndc from=%" PRId64 " to=%" PRId64
                 " in_flight=%u%s",
                 code, old, ndc, p->reservations,
                 lowered ? " note=\"new reservations only; those in flight post under the grace\""
                         : "");
        router_check_cap(p);
    }
    if (p->ndc_grace != grace) {
        if (grace > p->ndc_grace)
            p->grace_shrunk = false; /* a new grace: a cap was lowered */
        p->ndc_grace = grace;
    }
    sync_grace_check(p);
}

static void on_participants(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    if (flags != PGCONN_OK)
        log_error("event=state_sync_failed what=participants why=\"%s\"", error);
    else
        for (int i = 0; i < PQntuples(res); i++)
            apply_participant(res, i);
    round_step_done();
}

static void on_window(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    if (flags != PGCONN_OK) {
        log_error("event=state_sync_failed what=window why=\"%s\"", error);
    } else if (PQntuples(res) != 1) {
        log_error("event=state_sync_failed what=window why=\"%d open windows in the database\"",
                  PQntuples(res));
    } else {
        int64_t w = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (w != ledger_window()) {
            log_warn("event=window_synced from=%" PRId64 " to=%" PRId64, ledger_window(), w);
            ledger_set_window(w);
        }
    }
    round_step_done();
}

static void on_fees(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    if (flags != PGCONN_OK) {
        log_error("event=state_sync_failed what=fees why=\"%s\"", error);
        round_step_done();
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        Sikka__V1__Purpose purpose;
        if (transfer_parse_purpose(PQgetvalue(res, i, 0), &purpose) != 0)
            continue;
        struct fee_rule r = {
            .bps = (int32_t)strtol(PQgetvalue(res, i, 1), NULL, 10),
            .min_fee = strtoll(PQgetvalue(res, i, 2), NULL, 10),
            .max_fee = strtoll(PQgetvalue(res, i, 3), NULL, 10),
            .payee_pays = strcmp(PQgetvalue(res, i, 4), "payee") == 0,
        };
        struct fee_rule old;
        router_get_fee(purpose, &old);
        if (old.bps != r.bps || old.min_fee != r.min_fee || old.max_fee != r.max_fee ||
            old.payee_pays != r.payee_pays) {
            log_warn("event=fee_synced purpose=%s bps=%d min=%" PRId64 " max=%" PRId64
                     " charged_to=%s",
                     PQgetvalue(res, i, 0), r.bps, r.min_fee, r.max_fee, PQgetvalue(res, i, 4));
            router_set_fee(purpose, &r);
        }
    }
    round_step_done();
}

static void start_round(const char *why)
{
    if (S.pending > 0) {
        S.owed = true;
        return;
    }
    if (!pgconn_is_ready(S.db)) {
        /* the ready callback starts one */
        log_debug("event=state_sync_deferred why=\"query connection not ready\"");
        return;
    }
    log_debug("event=state_sync why=\"%s\"", why);
    static const struct {
        const char *stmt;
        pgconn_cb cb;
    } steps[] = {
        {SQL_STATE_PARTICIPANTS, on_participants},
        {SQL_STATE_WINDOW, on_window},
        {SQL_STATE_FEES, on_fees},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (pgconn_exec(S.db, steps[i].stmt, 0, NULL, steps[i].cb, NULL) != 0) {
            log_error("event=state_sync_failed what=%s why=\"cannot send\"", steps[i].stmt);
            continue;
        }
        S.pending++;
    }
    if (S.pending == 0)
        arm_timer();
}

void sync_request(const char *why)
{
    start_round(why);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
    (void)arg;
    log_info("event=state_notified channel=%s what=%s", channel, payload);
    /* only a settlement moves balances outside the switch's own postings */
    if (strcmp(payload, "settlement_windows") == 0)
        ledger_request_resync();
    start_round("notified");
}

static void on_ready(void *arg)
{
    (void)arg;
    start_round("query connection ready");
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    start_round("periodic");
}

static void on_grace_ended(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct participant *p = arg; /* participants live as long as the process */
    p->grace_call_inflight = false;
    if (flags != PGCONN_OK) {
        log_error("event=ndc_grace_end_failed participant=%s why=\"%s\" action=retry_later",
                  p->code, error);
        return;
    }
    int64_t grace = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    log_info("event=ndc_grace_ended participant=%s ndc=%" PRId64 " grace_left=%" PRId64, p->code,
             p->pos.ndc, grace);
    p->ndc_grace = grace;
    p->grace_shrunk = grace >= 0;
}

void sync_grace_check(struct participant *p)
{
    if (!participant_grace_due(p) || S.db == NULL || !pgconn_is_ready(S.db))
        return;
    /* the cap our reservations were checked against: the database keeps the
     * grace when its own differs (lowered by someone we have not heard from) */
    char ndc[24];
    snprintf(ndc, sizeof(ndc), "%" PRId64, p->pos.ndc);
    const char *params[] = {p->code, ndc};
    if (pgconn_exec(S.db, SQL_END_GRACE, 2, params, on_grace_ended, p) != 0) {
        log_warn("event=ndc_grace_end_deferred participant=%s why=\"cannot send\"", p->code);
        return;
    }
    p->grace_call_inflight = true;
}

void sync_grace_check_all(void)
{
    size_t n;
    struct participant *const *all = participant_all(&n);
    for (size_t i = 0; i < n; i++)
        sync_grace_check(all[i]);
}

int sync_init(struct event_base *base, struct pgconn *db)
{
    memset(&S, 0, sizeof(S));
    S.base = base;
    S.db = db;
    S.interval_s = 30;
    S.timer = evtimer_new(base, on_timer, NULL);
    if (S.timer == NULL) {
        log_error("event=oom what=sync_timer");
        return -1;
    }
    pgconn_set_ready_cb(db, on_ready, NULL);
    return pgconn_listen(db, SYNC_CHANNEL, on_notify, NULL);
}

void sync_configure(int64_t interval_seconds)
{
    S.interval_s = interval_seconds;
}

void sync_free(void)
{
    if (S.timer != NULL)
        event_free(S.timer);
    memset(&S, 0, sizeof(S));
}

uint64_t sync_count(void)
{
    return S.rounds;
}
