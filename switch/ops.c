#include "ops.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fence.h"
#include "idem.h"
#include "ledger.h"
#include "log.h"
#include "outbox.h"
#include "participant.h"
#include "router.h"
#include "session.h"
#include "sql.h"
#include "sync.h"

#define OPS_PROPOSAL_TTL_DEFAULT 3600
#define OPS_REASON_MAX           500
#define OPS_EXPIRY_SWEEP_S       5

static struct {
    struct event_base *base;
    struct pgconn *db;
    struct event *schedule_ev;
    struct event *expiry_ev; /* the proposals' expiry sweep */
    char schedule[256];
    int64_t proposal_ttl_s;
} O;

/* One pending database round trip of an operator request. */
struct pending {
    ops_done done;
    void *arg;
    char code[8];
    int64_t value;
    struct ops_actor who; /* who asked, for the audit trail and the log */
    /* deciding a proposal: its id (0 for none), what it does, and in which
     * column of the change's result the database returns it (-1: none) */
    int64_t proposal;
    enum ops_action action;
    int proposal_col;
    bool approve;
    bool withdraw; /* not approve: a withdrawal by the proposer, not a rejection */
    char reason[OPS_REASON_MAX + 1];
    char what[48]; /* "transfer 42": what a 404 is about */
};

/* ---- roles and actions ---- */

static const char *const role_names[] = {
    [OPS_ROLE_NONE] = "",
    [OPS_ROLE_VIEWER] = "viewer",
    [OPS_ROLE_OPERATOR] = "operator",
    [OPS_ROLE_SUPERVISOR] = "supervisor",
};

static const struct {
    const char *name;
    enum ops_role role;
} actions[] = {
    [OPS_ACTION_NDC] = {"ndc", OPS_ROLE_SUPERVISOR},
    [OPS_ACTION_SETTLE] = {"settle", OPS_ROLE_SUPERVISOR},
    [OPS_ACTION_PARTICIPANT_ADD] = {"participant_add", OPS_ROLE_SUPERVISOR},
    [OPS_ACTION_RESUME] = {"resume", OPS_ROLE_OPERATOR},
};

const char *ops_role_name(enum ops_role role)
{
    return (unsigned)role < sizeof(role_names) / sizeof(role_names[0]) ? role_names[role] : "";
}

int ops_role_parse(const char *text, enum ops_role *role)
{
    for (size_t i = OPS_ROLE_VIEWER; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
        if (strcmp(text, role_names[i]) == 0) {
            *role = (enum ops_role)i;
            return 0;
        }
    }
    return -1;
}

const char *ops_action_name(enum ops_action action)
{
    return (unsigned)action < sizeof(actions) / sizeof(actions[0]) ? actions[action].name : "?";
}

int ops_action_parse(const char *text, enum ops_action *action)
{
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
        if (strcmp(text, actions[i].name) == 0) {
            *action = (enum ops_action)i;
            return 0;
        }
    }
    return -1;
}

enum ops_role ops_action_role(enum ops_action action)
{
    return (unsigned)action < sizeof(actions) / sizeof(actions[0]) ? actions[action].role
                                                                   : OPS_ROLE_SUPERVISOR;
}

/* ---- answering ---- */

static json_t *error_body(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *error_body(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return json_pack("{s:s}", "error", buf);
}

/* Database errors as the operator should read them: the message only. */
static void clean_error(const char *error, char *buf, size_t len)
{
    const char *e = error != NULL ? error : "unknown error";
    if (strncmp(e, "ERROR:  ", 8) == 0)
        e += 8;
    snprintf(buf, len, "%s", e);
    buf[strcspn(buf, "\n")] = '\0';
}

/* The answer's text of a refusal: the message without its " (SQLSTATE
 * xxxxx)", which the log keeps. */
static const char *operator_text(const char *msg, char *buf, size_t len)
{
    snprintf(buf, len, "%s", msg);
    char *tail = strstr(buf, " (SQLSTATE ");
    if (tail != NULL && strlen(tail) == strlen(" (SQLSTATE 00000)"))
        *tail = '\0';
    return buf;
}

/* The status of a refusal, from the database's message (schema/003, 006
 * word theirs so): `otherwise` when none fits. */
static int refusal_status(const char *msg, int otherwise)
{
    if (strncmp(msg, "four-eyes:", 10) == 0 || strncmp(msg, "not permitted:", 14) == 0)
        return 403;
    if (strstr(msg, "does not exist") != NULL)
        return 404;
    if (strstr(msg, "duplicate key") != NULL || strstr(msg, "already") != NULL ||
        strstr(msg, "only a closed") != NULL || strstr(msg, "expired at") != NULL ||
        strstr(msg, "no open") != NULL)
        return 409;
    if (strstr(msg, "violates check") != NULL || strstr(msg, "invalid input") != NULL ||
        strstr(msg, "(SQLSTATE 23514)") != NULL)
        return 400;
    return otherwise;
}

static struct pending *pending_new(ops_done done, void *arg)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        log_error("event=oom what=ops_request");
        done(arg, 503, error_body("switch out of memory"));
    } else {
        p->done = done;
        p->arg = arg;
        p->proposal_col = -1;
    }
    return p;
}

/* A pending operator change of participant `code` carrying `value`. */
static struct pending *pending_change(ops_done done, void *arg, const struct ops_actor *who,
                                      const char *code, int64_t value)
{
    struct pending *p = pending_new(done, arg);
    if (p != NULL) {
        snprintf(p->code, sizeof(p->code), "%s", code);
        p->who = *who;
        p->value = value;
    }
    return p;
}

/* The operator as the audited SQL functions take it: $1-$4 of every
 * operator action (sql.c). */
static void actor_params(const struct ops_actor *who, const char *out[4])
{
    out[0] = who->name;
    out[1] = ops_role_name(who->role);
    out[2] = who->serial;
    out[3] = who->fingerprint;
}

/* Sends a query; on a send failure answers 503 at once. */
static void query(const char *stmt, int n, const char *const *params, pgconn_cb cb,
                  struct pending *p)
{
    if (pgconn_exec(O.db, stmt, n, params, cb, p) != 0) {
        p->done(p->arg, 503, error_body("the database is not reachable right now"));
        free(p);
    }
}

static bool failed(struct pending *p, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)res;
    if (flags == PGCONN_OK)
        return false;
    char msg[400];
    clean_error(error, msg, sizeof(msg));
    int status = flags == PGCONN_LOST || flags == PGCONN_RETRY ? 503 : refusal_status(msg, 500);
    log_warn("event=ops_failed code=%s operator=%s proposal=%" PRId64 " status=%d why=\"%s\"",
             p->code[0] ? p->code : "-", p->who.name[0] ? p->who.name : "-", p->proposal, status,
             msg);
    char text[400];
    p->done(p->arg, status, error_body("%s", operator_text(msg, text, sizeof(text))));
    free(p);
    return true;
}

/* A JSON document from one cell of res, or NULL (logged). */
static json_t *json_cell(PGresult *res, int row, int col, const char *what)
{
    if (res == NULL || row >= PQntuples(res) || col < 0 || col >= PQnfields(res) ||
        PQgetisnull(res, row, col)) {
        log_error("event=ops_bad_answer what=%s why=\"no such column in the result\"", what);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loads(PQgetvalue(res, row, col), 0, &jerr);
    if (j == NULL)
        log_error("event=ops_bad_answer what=%s why=\"%s\"", what, jerr.text);
    return j;
}

/* Answers a change with its result (stolen). An approval's answer is
 * {"proposal": P, "result": result}, P from the result's proposal column. */
static void answer_change(struct pending *pd, PGresult *res, int status, json_t *result)
{
    if (pd->proposal == 0) {
        pd->done(pd->arg, status, result);
        return;
    }
    json_t *proposal = json_cell(res, 0, pd->proposal_col, "approved_proposal");
    log_info("event=proposal_approved proposal=%" PRId64 " action=%s target=%s operator=%s "
             "role=%s",
             pd->proposal, ops_action_name(pd->action), pd->code, pd->who.name,
             ops_role_name(pd->who.role));
    pd->done(pd->arg, 200,
             json_pack("{s:o, s:o}", "proposal", proposal != NULL ? proposal : json_null(),
                       "result", result));
}

/* ---- participants and positions (memory) ---- */

static json_t *participant_json(const struct participant *p)
{
    int used = position_used_percent(&p->pos);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:I, s:I, s:I, s:i, s:b}", "code", p->code,
                     "name", p->name, "kind", p->kind, "status", participant_status_name(p->status),
                     "ndc", (json_int_t)p->pos.ndc, "sessions", (int)p->nsessions, "posted",
                     (json_int_t)p->pos.posted, "reserved", (json_int_t)p->pos.reserved, "headroom",
                     (json_int_t)position_headroom(&p->pos), "used_percent", used, "warning",
                     p->pos.ndc > 0 && used >= router_warn_percent());
}

void ops_participants(ops_done done, void *arg)
{
    size_t n;
    struct participant *const *all = participant_all(&n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, participant_json(all[i]));
    done(arg, 200, json_pack("{s:o}", "participants", list));
}

void ops_participant(const char *code, ops_done done, void *arg)
{
    struct participant *p = participant_find(code);
    if (p == NULL) {
        done(arg, 404, error_body("participant %s does not exist", code));
        return;
    }
    done(arg, 200, json_pack("{s:o}", "participant", participant_json(p)));
}

void ops_positions(ops_done done, void *arg)
{
    size_t n;
    struct participant *const *all = participant_all(&n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct participant *p = all[i];
        int used = position_used_percent(&p->pos);
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:i, s:b}", "code", p->code, "status",
                            participant_status_name(p->status), "posted", (json_int_t)p->pos.posted,
                            "reserved", (json_int_t)p->pos.reserved, "ndc", (json_int_t)p->pos.ndc,
                            "headroom", (json_int_t)position_headroom(&p->pos), "used_percent",
                            used, "warning", p->pos.ndc > 0 && used >= router_warn_percent()));
    }
    done(arg, 200,
         json_pack("{s:I, s:I, s:o}", "window", (json_int_t)ledger_window(), "warn_percent",
                   (json_int_t)router_warn_percent(), "positions", list));
}

/* An approved participant_add: the database's row (sql.c SQL_APPROVE_ADD),
 * then the registry. */
static void on_participant_added(void *arg, PGresult *res, enum pgconn_flags flags,
                                 const char *error)
{
    struct pending *pd = arg;
    if (failed(pd, res, flags, error))
        return;
    struct participant *p =
        participant_add(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
    if (p == NULL) {
        pd->done(pd->arg, 500,
                 error_body("participant %s was added to the database but not "
                            "to the running switch; restart it",
                            pd->code));
        free(pd);
        return;
    }
    p->status =
        strcmp(PQgetvalue(res, 0, 3), "active") == 0 ? PARTICIPANT_ACTIVE : PARTICIPANT_SUSPENDED;
    p->pos.ndc = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    p->position_account = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    p->settlement_account = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    log_info("event=participant_added code=%s operator=%s proposal=%" PRId64 " ndc=%" PRId64,
             p->code, pd->who.name, pd->proposal, p->pos.ndc);
    answer_change(pd, res, 201, json_pack("{s:o}", "participant", participant_json(p)));
    free(pd);
}

/* A suspension, or an approved resume (value 1): database first, then
 * memory; a suspended participant's sessions finish what they have in
 * flight, then close. */
static void on_status_set(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct pending *pd = arg;
    if (failed(pd, res, flags, error))
        return;
    struct participant *p = participant_find(pd->code);
    if (p != NULL) {
        p->status = pd->value ? PARTICIPANT_ACTIVE : PARTICIPANT_SUSPENDED;
        if (!pd->value)
            session_retire_participant(p, router_payee_timeout_ms() + 500,
                                       "suspended by an operator");
        log_info("event=participant_%s code=%s operator=%s role=%s proposal=%" PRId64
                 " sessions=%u",
                 pd->value ? "resumed" : "suspended", p->code, pd->who.name,
                 ops_role_name(pd->who.role), pd->proposal, p->nsessions);
        answer_change(pd, res, 200, json_pack("{s:o}", "participant", participant_json(p)));
    } else {
        pd->done(pd->arg, 404, error_body("participant %s does not exist", pd->code));
    }
    free(pd);
}

void ops_participant_suspend(const struct ops_actor *who, const char *code, ops_done done,
                             void *arg)
{
    if (participant_find(code) == NULL) {
        done(arg, 404, error_body("participant %s does not exist", code));
        return;
    }
    struct pending *p = pending_change(done, arg, who, code, 0);
    if (p == NULL)
        return;
    const char *params[5];
    actor_params(who, params);
    params[4] = code;
    query(SQL_PARTICIPANT_SUSPEND, 5, params, on_status_set, p);
}

/* A cap change (an approved ndc proposal): a lower cap is applied in memory
 * before the database is asked (new reservations only from this instant;
 * payments already reserved post under the grace the database keeps,
 * schema/004), and put back if the database refuses; a higher one applies
 * once the database agreed. */
struct ndc_change {
    struct pending *pd;
    int64_t old_ndc;
    bool lowered;
};

static void on_ndc_set(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct ndc_change *ch = arg;
    struct pending *pd = ch->pd;
    struct participant *p = participant_find(pd->code);
    if (flags != PGCONN_OK && ch->lowered && p != NULL && p->pos.ndc == pd->value) {
        p->pos.ndc = ch->old_ndc; /* the database kept the old cap */
        log_warn("event=ndc_restored code=%s ndc=%" PRId64 " why=\"the database refused\"", p->code,
                 ch->old_ndc);
    }
    free(ch);
    if (failed(pd, res, flags, error))
        return;
    if (p == NULL) {
        pd->done(pd->arg, 404, error_body("participant %s does not exist", pd->code));
        free(pd);
        return;
    }
    int64_t old = p->pos.ndc;
    if (p->pos.ndc != pd->value)
        (void)participant_set_ndc(p, pd->value);
    p->ndc_grace = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    if (p->ndc_grace >= 0)
        p->grace_shrunk = false;
    log_info("event=ndc_set code=%s operator=%s proposal=%" PRId64 " old=%" PRId64 " new=%" PRId64
             " grace=%" PRId64 " in_flight=%u",
             p->code, pd->who.name, pd->proposal, old, p->pos.ndc, p->ndc_grace, p->reservations);
    router_check_cap(p);
    sync_grace_check(p);
    answer_change(pd, res, 200, json_pack("{s:o}", "participant", participant_json(p)));
    free(pd);
}

/* Approves proposal pd->proposal, a cap of pd->value for pd->code. */
static void approve_ndc(struct pending *pd, const char *const *params)
{
    struct participant *p = participant_find(pd->code);
    struct ndc_change *ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        log_error("event=oom what=ndc_change code=%s", pd->code);
        pd->done(pd->arg, 503, error_body("switch out of memory"));
        free(pd);
        return;
    }
    ch->pd = pd;
    if (p != NULL) {
        ch->old_ndc = p->pos.ndc;
        ch->lowered = pd->value < p->pos.ndc;
    }
    if (ch->lowered) {
        (void)participant_set_ndc(p, pd->value);
        log_info("event=ndc_lowering code=%s operator=%s proposal=%" PRId64 " old=%" PRId64
                 " new=%" PRId64 " in_flight=%u note=\"new reservations only\"",
                 pd->code, pd->who.name, pd->proposal, ch->old_ndc, pd->value, p->reservations);
    }
    if (pgconn_exec(O.db, SQL_APPROVE_NDC, 5, params, on_ndc_set, ch) != 0)
        on_ndc_set(ch, NULL, PGCONN_LOST, "the database is not reachable right now");
}

/* ---- queries answered by PostgreSQL as one JSON document ---- */

static void on_json(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct pending *pd = arg;
    if (failed(pd, res, flags, error))
        return;
    if (PQntuples(res) == 0) {
        pd->done(pd->arg, 404,
                 error_body("%s does not exist", pd->what[0] ? pd->what : "the object"));
        free(pd);
        return;
    }
    json_error_t jerr;
    json_t *body = json_loads(PQgetvalue(res, 0, PQnfields(res) - 1), 0, &jerr);
    if (body == NULL) {
        log_error("event=ops_bad_json why=\"%s\"", jerr.text);
        pd->done(pd->arg, 500, error_body("the database returned malformed JSON"));
    } else {
        pd->done(pd->arg, 200, body);
    }
    free(pd);
}

/* Unix ms as the API writes times: 2026-12-03T08:27:03.123Z */
static const char *iso_ms(int64_t ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
    return buf;
}

void ops_transfer_show(uint64_t id, ops_done done, void *arg)
{
    struct idem_entry *e = idem_find_id(id);
    if (e != NULL && e->inflight != NULL) {
        const struct transfer *t = e->inflight;
        json_t *tj =
            json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "id", (json_int_t)t->id,
                      "kind", t->kind == TRANSFER_KIND_RETURN ? "return" : "transfer", "payer",
                      t->payer, "payee", t->payee, "msg_id", t->msg_id, "amount",
                      (json_int_t)t->amount, "fee", (json_int_t)t->fee, "purpose",
                      transfer_purpose_name(t->purpose), "status", transfer_status_name(t->status));
        /* what memory knows: when it came, was forwarded and decided */
        char at[40];
        json_t *timeline = json_pack("[{s:s, s:s}]", "event", "received", "at",
                                     iso_ms(t->received_ms, at, sizeof(at)));
        if (t->forwarded_ms != 0)
            json_array_append_new(timeline, json_pack("{s:s, s:s, s:s}", "event", "forwarded", "at",
                                                      iso_ms(t->forwarded_ms, at, sizeof(at)),
                                                      "payee", t->payee));
        if (t->decided_ms != 0)
            json_array_append_new(timeline, json_pack("{s:s, s:s, s:s}", "event", "decided", "at",
                                                      iso_ms(t->decided_ms, at, sizeof(at)),
                                                      "status", transfer_status_name(t->status)));
        done(arg, 200,
             json_pack("{s:o, s:s, s:o}", "transfer", tj, "state", transfer_state_name(t->state),
                       "timeline", timeline));
        return;
    }
    struct pending *p = pending_new(done, arg);
    if (p == NULL)
        return;
    char ids[24];
    snprintf(ids, sizeof(ids), "%" PRIu64, id);
    snprintf(p->what, sizeof(p->what), "transfer %s", ids);
    const char *params[] = {ids};
    query(SQL_TRANSFER_SHOW, 1, params, on_json, p);
}

void ops_transfer_search(const struct ops_transfer_query *q, ops_done done, void *arg)
{
    struct pending *p = pending_new(done, arg);
    if (p == NULL)
        return;
    char before[24], limit[16];
    snprintf(before, sizeof(before), "%" PRId64, q->before > 0 ? q->before : INT64_MAX);
    snprintf(limit, sizeof(limit), "%d", q->limit + 1); /* one more: is there a next page? */
#define OR_NULL(s) ((s)[0] != '\0' ? (s) : NULL)
    const char *params[] = {before,
                            limit,
                            OR_NULL(q->msg_id),
                            OR_NULL(q->end_to_end_id),
                            OR_NULL(q->participant),
                            OR_NULL(q->status),
                            OR_NULL(q->purpose),
                            OR_NULL(q->ref),
                            OR_NULL(q->from),
                            OR_NULL(q->to)};
#undef OR_NULL
    /* the most selective filter that has an index drives the read */
    const char *stmt = q->msg_id[0] != '\0'             ? SQL_SEARCH_MSG_ID
                       : q->ref[0] != '\0'              ? SQL_SEARCH_REF
                       : strcmp(q->status, "RJCT") == 0 ? SQL_SEARCH_REJECTED
                                                        : SQL_SEARCH_SCAN;
    snprintf(p->what, sizeof(p->what), "the search");
    query(stmt, 10, params, on_json, p);
}

void ops_windows(ops_done done, void *arg)
{
    struct pending *p = pending_new(done, arg);
    if (p != NULL)
        query(SQL_WINDOWS, 0, NULL, on_json, p);
}

static void on_report(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct pending *pd = arg;
    if (flags == PGCONN_OK && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "open") == 0) {
        pd->done(
            pd->arg, 409,
            error_body("window %" PRId64 " is still open; close it to get its report", pd->value));
        free(pd);
        return;
    }
    if (flags == PGCONN_OK && PQntuples(res) == 0) {
        pd->done(pd->arg, 404,
                 error_body("settlement window %" PRId64 " does not exist", pd->value));
        free(pd);
        return;
    }
    on_json(arg, res, flags, error);
}

void ops_window_report(int64_t window_id, ops_done done, void *arg)
{
    struct pending *p = pending_new(done, arg);
    if (p == NULL)
        return;
    p->value = window_id;
    char ids[24];
    snprintf(ids, sizeof(ids), "%" PRId64, window_id);
    const char *params[] = {ids};
    query(SQL_WINDOW_REPORT, 1, params, on_report, p);
}

void ops_fees(ops_done done, void *arg)
{
    struct pending *p = pending_new(done, arg);
    if (p != NULL)
        query(SQL_FEES, 0, NULL, on_json, p);
}

void ops_audit(int limit, ops_done done, void *arg)
{
    struct pending *p = pending_new(done, arg);
    if (p == NULL)
        return;
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit < 1 ? 1 : limit > 1000 ? 1000 : limit);
    const char *params[] = {lim};
    query(SQL_AUDIT, 1, params, on_json, p);
}

/* ---- settlement windows (ordered with the postings) ---- */

static void on_window_closed(void *arg, PGresult *res, const char *error)
{
    struct pending *pd = arg;
    if (res == NULL) {
        char msg[400];
        clean_error(error, msg, sizeof(msg));
        log_error("event=window_close_failed operator=%s why=\"%s\"", pd->who.name, msg);
        char text[400];
        pd->done(pd->arg, refusal_status(msg, 503),
                 error_body("%s", operator_text(msg, text, sizeof(text))));
        free(pd);
        return;
    }
    int64_t closed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int64_t opened = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    int64_t postings = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    int64_t gross = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    /* every batch sent from now on goes to the new window */
    ledger_set_window(opened);
    log_info("event=window_closed window=%" PRId64 " opened=%" PRId64 " postings=%" PRId64
             " gross=%" PRId64 " operator=%s role=%s",
             closed, opened, postings, gross, pd->who.name,
             pd->who.role != OPS_ROLE_NONE ? ops_role_name(pd->who.role) : "-");
    pd->done(pd->arg, 200,
             json_pack("{s:I, s:I, s:I, s:I}", "closed", (json_int_t)closed, "opened",
                       (json_int_t)opened, "postings", (json_int_t)postings, "gross",
                       (json_int_t)gross));
    free(pd);
}

void ops_window_close(const struct ops_actor *who, ops_done done, void *arg)
{
    struct pending *p = pending_new(done, arg);
    if (p == NULL)
        return;
    p->who = *who;
    const char *params[4];
    actor_params(who, params);
    if (ledger_run_op(SQL_CLOSE_WINDOW, 4, params, on_window_closed, p) != 0) {
        done(arg, 503, error_body("cannot queue the window close"));
        free(p);
    }
}

/* An approved settlement (sql.c SQL_APPROVE_SETTLE): each participant's
 * room under its cap comes back as the database moved its net. */
static void on_window_settled(void *arg, PGresult *res, const char *error)
{
    struct pending *pd = arg;
    if (res == NULL) {
        char msg[400];
        clean_error(error, msg, sizeof(msg));
        log_error("event=window_settle_failed window=%" PRId64 " operator=%s proposal=%" PRId64
                  " why=\"%s\"",
                  pd->value, pd->who.name, pd->proposal, msg);
        char text[400];
        pd->done(pd->arg, refusal_status(msg, 503),
                 error_body("%s", operator_text(msg, text, sizeof(text))));
        free(pd);
        return;
    }
    json_t *list = json_array();
    int n = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, 1))
            continue; /* the row of a window with nothing to settle */
        n++;
        const char *code = PQgetvalue(res, i, 0);
        int64_t delta = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        json_array_append_new(list,
                              json_pack("{s:s, s:I}", "participant", code[0] ? code : "SCHEME-FEES",
                                        "delta", (json_int_t)delta));
        struct participant *p = participant_find(code);
        if (p == NULL)
            continue; /* the scheme's fee account */
        if (position_post(&p->pos, delta) != 0)
            log_error("event=position_apply_failed participant=%s delta=%" PRId64 " why=overflow",
                      p->code, delta);
        router_check_cap(p);
        sync_grace_check(p); /* back within a lowered cap: the grace may end */
    }
    log_info("event=window_settled window=%" PRId64 " positions=%d operator=%s proposal=%" PRId64,
             pd->value, n, pd->who.name, pd->proposal);
    answer_change(pd, res, 200,
                  json_pack("{s:I, s:o}", "settled", (json_int_t)pd->value, "positions", list));
    free(pd);
}

/* ---- four-eyes: proposals ---- */

static void on_proposed(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct pending *pd = arg;
    if (failed(pd, res, flags, error))
        return;
    json_t *proposal = json_cell(res, 0, 0, "proposal");
    if (proposal == NULL) {
        pd->done(pd->arg, 500, error_body("the database returned a malformed proposal"));
        free(pd);
        return;
    }
    json_t *id = json_object_get(proposal, "id");
    log_info("event=proposal_created proposal=%" PRId64 " action=%s target=%s operator=%s role=%s",
             json_is_integer(id) ? (int64_t)json_integer_value(id) : 0, ops_action_name(pd->action),
             pd->code, pd->who.name, ops_role_name(pd->who.role));
    pd->done(pd->arg, 202, json_pack("{s:o}", "proposal", proposal));
    free(pd);
}

void ops_propose(const struct ops_actor *who, enum ops_action action, const char *target,
                 const json_t *params, ops_done done, void *arg)
{
    /* what memory already says; the database checks it all again */
    struct participant *p = action != OPS_ACTION_SETTLE ? participant_find(target) : NULL;
    if ((action == OPS_ACTION_NDC || action == OPS_ACTION_RESUME) && p == NULL) {
        done(arg, 404, error_body("participant %s does not exist", target));
        return;
    }
    if (action == OPS_ACTION_RESUME && p->status == PARTICIPANT_ACTIVE) {
        done(arg, 409, error_body("participant %s is active already: nothing to resume", target));
        return;
    }
    if (action == OPS_ACTION_PARTICIPANT_ADD && p != NULL) {
        done(arg, 409, error_body("participant %s already exists", target));
        return;
    }
    json_t *empty = json_object();
    char *text = json_dumps(params != NULL ? params : empty, JSON_COMPACT);
    json_decref(empty);
    if (text == NULL) {
        log_error("event=oom what=proposal action=%s", ops_action_name(action));
        done(arg, 503, error_body("switch out of memory"));
        return;
    }
    struct pending *pd = pending_new(done, arg);
    if (pd != NULL) {
        pd->who = *who;
        pd->action = action;
        snprintf(pd->code, sizeof(pd->code), "%s", target);
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%" PRId64,
                 O.proposal_ttl_s > 0 ? O.proposal_ttl_s : OPS_PROPOSAL_TTL_DEFAULT);
        const char *values[8];
        actor_params(who, values);
        values[4] = ops_action_name(action);
        values[5] = target;
        values[6] = text;
        values[7] = ttl;
        query(SQL_PROPOSAL_CREATE, 8, values, on_proposed, pd);
    }
    free(text);
}

void ops_requests(const struct ops_request_query *q, ops_done done, void *arg)
{
    struct pending *p = pending_new(done, arg);
    if (p == NULL)
        return;
    char limit[16], before[24];
    snprintf(limit, sizeof(limit), "%d", q->limit);
    snprintf(before, sizeof(before), "%" PRId64, q->before);
    const char *params[] = {q->participant, q->loan_id, q->state, limit, before};
    query(SQL_REQUESTS_ADMIN, 5, params, on_json, p);
}

void ops_proposals(const char *state, ops_done done, void *arg)
{
    struct pending *p = pending_new(done, arg);
    if (p == NULL)
        return;
    const char *params[] = {state != NULL ? state : ""};
    query(SQL_PROPOSALS, 1, params, on_json, p);
}

void ops_proposal(int64_t id, ops_done done, void *arg)
{
    struct pending *p = pending_new(done, arg);
    if (p == NULL)
        return;
    char ids[24];
    snprintf(ids, sizeof(ids), "%" PRId64, id);
    snprintf(p->what, sizeof(p->what), "proposal %s", ids);
    const char *params[] = {ids};
    query(SQL_PROPOSAL_SHOW, 1, params, on_json, p);
}

/* A rejection, or a withdrawal: the proposal as it now is. */
static void on_rejected(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct pending *pd = arg;
    if (failed(pd, res, flags, error))
        return;
    json_t *proposal = json_cell(res, 0, 0, "rejected_proposal");
    if (proposal == NULL) {
        pd->done(pd->arg, 500, error_body("the database returned a malformed proposal"));
        free(pd);
        return;
    }
    log_info("event=%s proposal=%" PRId64 " action=%s target=%s operator=%s role=%s",
             pd->withdraw ? "proposal_withdrawn" : "proposal_rejected", pd->proposal,
             ops_action_name(pd->action), pd->code, pd->who.name, ops_role_name(pd->who.role));
    pd->done(pd->arg, 200, json_pack("{s:o}", "proposal", proposal));
    free(pd);
}

/* Refuses a decision the proposal's row already rules out; the database
 * checks the same again under its row lock. Returns true when it answered. */
static bool decision_refused(struct pending *pd, PGresult *res)
{
    const char *verb = pd->approve ? "approve" : pd->withdraw ? "withdraw" : "reject";
    const char *state = PQgetvalue(res, 0, 5);
    const char *proposed_by = PQgetvalue(res, 0, 3);
    const char *fingerprint = PQgetvalue(res, 0, 4);
    enum ops_role needs = ops_action_role(pd->action);
    int status = 0;
    json_t *body = NULL;
    if (strcmp(state, "expired") == 0) {
        status = 409;
        body = error_body("proposal %" PRId64 " has expired: it can no longer be %sd", pd->proposal,
                          verb);
    } else if (strcmp(state, "pending") != 0) {
        status = 409;
        body = error_body("proposal %" PRId64 " is %s already, not pending", pd->proposal, state);
    } else if (pd->withdraw) {
        /* only the proposer takes a proposal back; the others reject it */
        if (strcmp(proposed_by, pd->who.name) != 0) {
            status = 403;
            body = error_body("not permitted: only %s who proposed it may withdraw proposal "
                              "%" PRId64 " (others reject it)",
                              proposed_by, pd->proposal);
        }
    } else if (pd->who.role < needs) {
        status = 403;
        body = error_body("not permitted: proposal %" PRId64 " (%s) needs the role %s to %s it; "
                          "%s has the role %s",
                          pd->proposal, ops_action_name(pd->action), ops_role_name(needs), verb,
                          pd->who.name, ops_role_name(pd->who.role));
    } else if (strcmp(proposed_by, pd->who.name) == 0 ||
               strcmp(fingerprint, pd->who.fingerprint) == 0) {
        status = 403;
        body = error_body("four-eyes: proposal %" PRId64 " was made by %s%s; another operator "
                          "must %s it",
                          pd->proposal, proposed_by,
                          strcmp(proposed_by, pd->who.name) != 0 ? " with this certificate" : "",
                          verb);
    }
    if (status == 0)
        return false;
    json_t *e = json_object_get(body, "error");
    log_warn("event=proposal_refused proposal=%" PRId64 " action=%s operator=%s role=%s "
             "status=%d why=\"%s\"",
             pd->proposal, ops_action_name(pd->action), pd->who.name, ops_role_name(pd->who.role),
             status, json_is_string(e) ? json_string_value(e) : "?");
    pd->done(pd->arg, status, body);
    free(pd);
    return true;
}

/* The proposal as it stands: refused here, or decided in the database (an
 * approval together with its change). */
static void on_proposal_read(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct pending *pd = arg;
    if (failed(pd, res, flags, error))
        return;
    if (PQntuples(res) == 0) {
        pd->done(pd->arg, 404, error_body("proposal %" PRId64 " does not exist", pd->proposal));
        free(pd);
        return;
    }
    if (ops_action_parse(PQgetvalue(res, 0, 0), &pd->action) != 0) {
        log_error("event=ops_bad_answer what=proposal proposal=%" PRId64 " action=\"%s\"",
                  pd->proposal, PQgetvalue(res, 0, 0));
        pd->done(pd->arg, 500,
                 error_body("proposal %" PRId64 " has an unknown action", pd->proposal));
        free(pd);
        return;
    }
    snprintf(pd->code, sizeof(pd->code), "%s", PQgetvalue(res, 0, 1));
    if (decision_refused(pd, res))
        return;

    char ids[24];
    snprintf(ids, sizeof(ids), "%" PRId64, pd->proposal);
    const char *params[6];
    params[0] = ids;
    actor_params(&pd->who, params + 1);
    if (!pd->approve) {
        params[5] = pd->reason;
        query(pd->withdraw ? SQL_PROPOSAL_WITHDRAW : SQL_PROPOSAL_REJECT, 6, params, on_rejected,
              pd);
        return;
    }
    switch (pd->action) {
    case OPS_ACTION_NDC: {
        json_t *p = json_cell(res, 0, 2, "proposal_params");
        json_t *ndc = json_object_get(p, "ndc");
        bool ok = json_is_integer(ndc) && json_integer_value(ndc) >= 0;
        pd->value = ok ? json_integer_value(ndc) : 0;
        json_decref(p);
        if (!ok) {
            pd->done(pd->arg, 500,
                     error_body("proposal %" PRId64 " has no usable cap", pd->proposal));
            free(pd);
            return;
        }
        pd->proposal_col = 2;
        approve_ndc(pd, params);
        return;
    }
    case OPS_ACTION_RESUME:
        pd->value = 1;
        pd->proposal_col = 1;
        query(SQL_APPROVE_RESUME, 5, params, on_status_set, pd);
        return;
    case OPS_ACTION_PARTICIPANT_ADD:
        pd->proposal_col = 7;
        query(SQL_APPROVE_ADD, 5, params, on_participant_added, pd);
        return;
    case OPS_ACTION_SETTLE:
        /* in order with the postings, on the posting connection */
        pd->value = strtoll(pd->code, NULL, 10);
        pd->proposal_col = 3;
        if (ledger_run_op(SQL_APPROVE_SETTLE, 5, params, on_window_settled, pd) != 0) {
            pd->done(pd->arg, 503, error_body("cannot queue the settlement"));
            free(pd);
        }
        return;
    }
    pd->done(pd->arg, 500, error_body("proposal %" PRId64 " has an unknown action", pd->proposal));
    free(pd);
}

static void decide(const struct ops_actor *who, int64_t id, bool approve, bool withdraw,
                   const char *reason, ops_done done, void *arg)
{
    struct pending *p = pending_new(done, arg);
    if (p == NULL)
        return;
    p->who = *who;
    p->proposal = id;
    p->approve = approve;
    p->withdraw = withdraw;
    snprintf(p->reason, sizeof(p->reason), "%s", reason != NULL ? reason : "");
    char ids[24];
    snprintf(ids, sizeof(ids), "%" PRId64, id);
    const char *params[] = {ids};
    query(SQL_PROPOSAL_READ, 1, params, on_proposal_read, p);
}

void ops_proposal_approve(const struct ops_actor *who, int64_t id, ops_done done, void *arg)
{
    decide(who, id, true, false, NULL, done, arg);
}

void ops_proposal_reject(const struct ops_actor *who, int64_t id, const char *reason, ops_done done,
                         void *arg)
{
    decide(who, id, false, false, reason, done, arg);
}

void ops_proposal_withdraw(const struct ops_actor *who, int64_t id, const char *reason,
                           ops_done done, void *arg)
{
    decide(who, id, false, true, reason, done, arg);
}

/* ---- reconcile ---- */

struct reconcile {
    struct pending *pd;
    json_t *checks;
    bool ok;
};

/* status: "ok", "failed" or "not checked"; only "ok" counts as passed. */
static void add_check(struct reconcile *r, const char *name, const char *status, const char *detail)
{
    bool ok = strcmp(status, "ok") == 0;
    json_array_append_new(r->checks, json_pack("{s:s, s:b, s:s, s:s}", "name", name, "ok", ok,
                                               "status", status, "detail", detail));
    if (!ok)
        r->ok = false;
}

static void reconcile_done(struct reconcile *r)
{
    r->pd->done(r->pd->arg, 200, json_pack("{s:b, s:o}", "ok", r->ok, "checks", r->checks));
    free(r->pd);
    free(r);
}

#define MEMORY_CHECK "switch positions equal the ledger"

/* Runs at a cut (a ledger operation: no batch in flight, new ones held):
 * memory and the ledger must agree exactly. */
static void on_balances(void *arg, PGresult *res, const char *error)
{
    struct reconcile *r = arg;
    char detail[512];
    if (res == NULL) {
        char msg[400];
        clean_error(error, msg, sizeof(msg));
        snprintf(detail, sizeof(detail), "the check could not run: %s", msg);
        add_check(r, MEMORY_CHECK, "not checked", detail);
        reconcile_done(r);
        return;
    }
    int bad = 0;
    detail[0] = '\0';
    for (int i = 0; i < PQntuples(res); i++) {
        struct participant *p = participant_find(PQgetvalue(res, i, 0));
        int64_t balance = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        if (p == NULL || p->pos.posted != balance) {
            bad++;
            size_t l = strlen(detail);
            snprintf(detail + l, sizeof(detail) - l, "%s%s memory %" PRId64 " ledger %" PRId64,
                     l ? "; " : "", PQgetvalue(res, i, 0), p ? p->pos.posted : 0, balance);
        }
    }
    if (bad == 0)
        snprintf(detail, sizeof(detail), "%d positions agree at a cut of the postings",
                 PQntuples(res));
    add_check(r, MEMORY_CHECK, bad == 0 ? "ok" : "failed", detail);
    reconcile_done(r);
}

static void on_reconcile(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct reconcile *r = arg;
    if (flags != PGCONN_OK) {
        char msg[400], detail[512];
        clean_error(error, msg, sizeof(msg));
        snprintf(detail, sizeof(detail), "reconcile() could not run: %s", msg);
        add_check(r, "ledger invariants", "not checked", detail);
    } else {
        for (int i = 0; i < PQntuples(res); i++)
            add_check(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
    }
    if (!ledger_connected())
        on_balances(r, NULL, "the posting connection is down");
    else if (ledger_run_op(SQL_BALANCES, 0, NULL, on_balances, r) != 0)
        on_balances(r, NULL, "cannot queue the check behind the postings");
}

void ops_reconcile(ops_done done, void *arg)
{
    struct pending *p = pending_new(done, arg);
    if (p == NULL)
        return;
    struct reconcile *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        log_error("event=oom what=reconcile");
        done(arg, 503, error_body("switch out of memory"));
        free(p);
        return;
    }
    r->pd = p;
    r->ok = true;
    r->checks = json_array();
    if (pgconn_exec(O.db, SQL_RECONCILE, 0, NULL, on_reconcile, r) != 0)
        on_reconcile(r, NULL, PGCONN_LOST, "the database is not reachable right now");
}

/* What the switch can do right now, from the ledger's side: "ok" (posting),
 * "degraded" (postings paused by a failing database: transfers are turned
 * away retryably), "down" (no posting connection, or the fence not held). */
static const char *health(void)
{
    if (fence_state() != FENCE_HELD || !ledger_connected())
        return "down";
    return ledger_accepting() ? "ok" : "degraded";
}

static json_t *health_json(void)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:b, s:b, s:b, s:b}", "status", health(), "role",
                     fence_state() == FENCE_HELD ? "active" : "standby", "fence",
                     fence_state_name(fence_state()), "fence_epoch", (json_int_t)fence_epoch(),
                     "ledger_accepting", ledger_accepting(), "ledger_connected", ledger_connected(),
                     "query_connected", pgconn_is_ready(O.db), "draining", router_draining());
}

void ops_health(ops_done done, void *arg)
{
    done(arg, strcmp(health(), "ok") == 0 ? 200 : 503, health_json());
}

void ops_status(ops_done done, void *arg)
{
    struct router_stats rs;
    struct ledger_stats ls;
    uint64_t resent, acked;
    router_get_stats(&rs);
    ledger_get_stats(&ls);
    outbox_get_stats(&resent, &acked);
    json_t *counters = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "received",
        (json_int_t)rs.received, "settled", (json_int_t)rs.settled, "rejected",
        (json_int_t)rs.rejected, "duplicates", (json_int_t)rs.duplicates, "refused_unavailable",
        (json_int_t)rs.refused_unavailable, "batches", (json_int_t)ls.batches, "batched_transfers",
        (json_int_t)ls.transfers, "max_batch", (json_int_t)ls.max_batch, "batch_attempts",
        (json_int_t)ls.attempts, "batches_refused", (json_int_t)ls.refused, "batches_retried",
        (json_int_t)ls.retried, "state_syncs", (json_int_t)sync_count(), "idempotency_keys",
        (json_int_t)idem_count(), "notices_resent", (json_int_t)resent, "notices_acknowledged",
        (json_int_t)acked);
    done(arg, 200,
         json_pack("{s:b, s:b, s:I, s:I, s:I, s:I, s:o, s:o}", "ready", pgconn_is_ready(O.db),
                   "draining", router_draining(), "sessions", (json_int_t)session_count(),
                   "inflight", (json_int_t)router_inflight(), "ledger_queued",
                   (json_int_t)ledger_queued(), "window", (json_int_t)ledger_window(), "health",
                   health_json(), "counters", counters));
}

/* ---- scheduled window closes ---- */

static void on_scheduled_close(void *arg, int status, json_t *body)
{
    (void)arg;
    if (status != 200) {
        json_t *e = json_object_get(body, "error");
        log_error("event=scheduled_close_failed status=%d why=\"%s\"", status,
                  e != NULL ? json_string_value(e) : "?");
    }
    json_decref(body);
}

/* Seconds from now to the next "HH:MM" (UTC) in the schedule, or -1. */
static long next_close_in(const char *schedule)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    long now_s = tm.tm_hour * 3600L + tm.tm_min * 60L + tm.tm_sec;
    long best = -1;
    for (const char *p = schedule; *p != '\0';) {
        int hh, mm;
        if (sscanf(p, "%2d:%2d", &hh, &mm) != 2)
            break;
        long at = hh * 3600L + mm * 60L;
        long in = at > now_s ? at - now_s : at + 86400 - now_s;
        if (best < 0 || in < best)
            best = in;
        p = strchr(p, ',');
        if (p == NULL)
            break;
        p++;
    }
    return best;
}

static void arm_schedule(void);

/* Proposals past their time are marked expired (and audited: schema/012)
 * within OPS_EXPIRY_SWEEP_S, whether or not anyone looks at them. */
static void on_expired(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    if (flags != PGCONN_OK) {
        char msg[400];
        clean_error(error, msg, sizeof(msg));
        log_warn("event=proposal_expiry_failed why=\"%s\" action=retry_in_%ds", msg,
                 OPS_EXPIRY_SWEEP_S);
        return;
    }
    int n = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
    if (n > 0)
        log_info("event=proposals_expired count=%d", n);
}

static void on_expiry_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (pgconn_exec(O.db, SQL_PROPOSAL_EXPIRE, 0, NULL, on_expired, NULL) != 0)
        log_warn("event=proposal_expiry_failed why=\"the database is not reachable\" "
                 "action=retry_in_%ds",
                 OPS_EXPIRY_SWEEP_S);
}

static void on_schedule(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    log_info("event=scheduled_close schedule=\"%s\"", O.schedule);
    static const struct ops_actor scheduler = {.name = "scheduler", .role = OPS_ROLE_NONE};
    ops_window_close(&scheduler, on_scheduled_close, NULL);
    arm_schedule();
}

static void arm_schedule(void)
{
    if (O.schedule_ev == NULL)
        return;
    evtimer_del(O.schedule_ev);
    long in = next_close_in(O.schedule);
    if (in < 0)
        return;
    struct timeval tv = {in, 0};
    evtimer_add(O.schedule_ev, &tv);
    log_info("event=window_close_scheduled in_seconds=%ld schedule=\"%s\"", in, O.schedule);
}

int ops_init(struct event_base *base, struct pgconn *db)
{
    memset(&O, 0, sizeof(O));
    O.base = base;
    O.db = db;
    O.schedule_ev = evtimer_new(base, on_schedule, NULL);
    if (O.schedule_ev == NULL) {
        log_error("event=oom what=settlement_schedule_timer");
        return -1;
    }
    O.expiry_ev = event_new(base, -1, EV_PERSIST, on_expiry_sweep, NULL);
    struct timeval every = {OPS_EXPIRY_SWEEP_S, 0};
    if (O.expiry_ev == NULL || event_add(O.expiry_ev, &every) != 0) {
        log_error("event=oom what=proposal_expiry_timer");
        return -1;
    }
    return 0;
}

void ops_configure(const char *settlement_schedule, int64_t proposal_ttl_s)
{
    O.proposal_ttl_s = proposal_ttl_s;
    if (strcmp(O.schedule, settlement_schedule) == 0)
        return;
    snprintf(O.schedule, sizeof(O.schedule), "%s", settlement_schedule);
    arm_schedule();
}

void ops_free(void)
{
    if (O.schedule_ev != NULL)
        event_free(O.schedule_ev);
    O.schedule_ev = NULL;
    if (O.expiry_ev != NULL)
        event_free(O.expiry_ev);
    O.expiry_ev = NULL;
}
