#include "clock.h"
#include "ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fence.h"
#include "log.h"
#include "metrics.h"
#include "participant.h"
#include "pgarray.h"
#include "sql.h"
#include "text.h"

enum col {
    COL_T_NOTIFY = 0, /* forwarded to its payee: an outbox row for the report */
    COL_T_ID,
    COL_T_KIND,
    COL_T_PAYER,
    COL_T_MSG_ID,
    COL_T_FP,
    COL_T_E2E,
    COL_T_PAYEE,
    COL_T_DACC,
    COL_T_CACC,
    COL_T_AMOUNT,
    COL_T_FEE,
    COL_T_FEE_PAYER,
    COL_T_CURRENCY,
    COL_T_PURPOSE,
    COL_T_LOAN_ID,
    COL_T_INSTALMENT,
    COL_T_INVOICE,
    COL_T_RMT,
    COL_T_ORIGINAL,
    COL_T_RETURN_REASON,
    COL_T_STATUS,
    COL_T_REASON,
    COL_T_REASON_TEXT,
    COL_T_RECEIVED,
    COL_T_FORWARDED, /* the timeline (schema/013): NULL when never forwarded */
    COL_T_DECIDED,
    COL_COUNT
};

/* post_batch's result columns (schema/004) */
enum res_col {
    RES_KIND = 0,
    RES_ID,
    RES_STORED_ID,
    RES_STATUS,
    RES_REASON,
    RES_REASON_TEXT,
    RES_SAME_REQUEST,
    RES_FEE,
    RES_FEE_PAYER,
    RES_AT_MS,
};

#define OP_MAX_PARAMS 8

struct ledger_op {
    struct ledger_op *next;
    char stmt[32];
    int nparams;
    char *values[OP_MAX_PARAMS];
    ledger_op_cb cb;
    void *arg;
};

/* Transfers posted on their own, apart from the queue: the parts of a
 * batch the database refused, until the offending ones are found. */
struct piece {
    struct piece *next;
    struct transfer *head;
    size_t n;
};

/* One posting connection and the batch it is committing. */
struct poster {
    struct pgconn *conn;
    struct transfer *inflight;
    size_t inflight_n;
    bool inflight_piece; /* the batch is a piece: refused, it splits further */
    int64_t epoch;       /* the fence epoch it carries */
    int64_t since_us;
};

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 5000

static struct {
    struct event_base *base;
    struct poster posters[LEDGER_MAX_CONNECTIONS];
    size_t nposters;
    ledger_done_cb done;
    void (*refusal_hook)(void);
    void (*resync_hook)(void);
    struct ledger_options opts;
    int64_t window_id;
    int64_t fee_account;
    struct transfer *queue_head, *queue_tail;
    size_t queued;
    struct piece *pieces, *pieces_tail;
    size_t pieces_n;                       /* transfers in pieces */
    struct ledger_op *ops_head, *ops_tail; /* operations waiting their turn */
    struct ledger_op *op_inflight;
    bool resync_needed; /* balances and window to be re-read at a cut */
    bool resync_inflight;
    size_t inflight_n;       /* transfers in batches being committed */
    size_t inflight_batches; /* batches being committed */
    bool holding;            /* postings paused after a transient failure */
    int backoff_ms;
    struct event *kick; /* deferred flush */
    struct event *window_timer;
    struct event *retry_timer;
    bool window_waiting;
    struct pgarray cols[COL_COUNT];
    char fence_param[24];
    int64_t holding_since_us; /* when postings began to pause, 0: not */
    struct ledger_stats stats;
} L;

static void op_free(struct ledger_op *op)
{
    for (int i = 0; i < op->nparams; i++)
        free(op->values[i]);
    free(op);
}

static void on_kick(evutil_socket_t fd, short what, void *arg);
static void on_window(evutil_socket_t fd, short what, void *arg);
static void on_retry(evutil_socket_t fd, short what, void *arg);

static void on_conn_ready(void *arg)
{
    (void)arg;
    event_active(L.kick, 0, 0);
}

/* A connection with nothing in flight, ready for a batch; NULL if none. */
static struct poster *idle_poster(void)
{
    for (size_t i = 0; i < L.nposters; i++)
        if (L.posters[i].inflight == NULL && pgconn_is_ready(L.posters[i].conn))
            return &L.posters[i];
    return NULL;
}

int ledger_init(struct event_base *base, struct pgconn *const *conns, size_t nconns,
                ledger_done_cb done)
{
    memset(&L, 0, sizeof(L));
    if (nconns < 1 || nconns > LEDGER_MAX_CONNECTIONS) {
        log_error("event=ledger_init_failed why=\"%zu posting connections; 1..%d allowed\"", nconns,
                  LEDGER_MAX_CONNECTIONS);
        return -1;
    }
    L.base = base;
    L.nposters = nconns;
    for (size_t i = 0; i < nconns; i++)
        L.posters[i].conn = conns[i];
    L.done = done;
    L.opts.batch_max = 2000;
    L.backoff_ms = BACKOFF_MIN_MS;
    L.kick = event_new(base, -1, 0, on_kick, NULL);
    L.window_timer = evtimer_new(base, on_window, NULL);
    L.retry_timer = evtimer_new(base, on_retry, NULL);
    if (L.kick == NULL || L.window_timer == NULL || L.retry_timer == NULL) {
        log_error("event=oom what=ledger_events");
        return -1;
    }
    for (size_t i = 0; i < nconns; i++)
        pgconn_set_ready_cb(conns[i], on_conn_ready, NULL);
    return 0;
}

void ledger_configure(const struct ledger_options *opts)
{
    L.opts = *opts;
    if (L.opts.batch_max < 1)
        L.opts.batch_max = 1;
}

void ledger_set_refusal_hook(void (*hook)(void))
{
    L.refusal_hook = hook;
}

void ledger_set_resync_hook(void (*hook)(void))
{
    L.resync_hook = hook;
}

void ledger_free(void)
{
    while (L.ops_head != NULL) {
        struct ledger_op *op = L.ops_head;
        L.ops_head = op->next;
        op_free(op);
    }
    if (L.op_inflight != NULL)
        op_free(L.op_inflight);
    while (L.pieces != NULL) {
        struct piece *pc = L.pieces;
        L.pieces = pc->next;
        free(pc);
    }
    if (L.kick != NULL)
        event_free(L.kick);
    if (L.window_timer != NULL)
        event_free(L.window_timer);
    if (L.retry_timer != NULL)
        event_free(L.retry_timer);
    for (int i = 0; i < COL_COUNT; i++)
        pgarray_free(&L.cols[i]);
    memset(&L, 0, sizeof(L));
}

void ledger_set_window(int64_t window_id)
{
    L.window_id = window_id;
    metrics_window_opened(window_id);
}

int64_t ledger_window(void)
{
    return L.window_id;
}

void ledger_set_fee_account(int64_t account_id)
{
    L.fee_account = account_id;
}

void ledger_kick(void)
{
    event_active(L.kick, 0, 0);
}

/* Postings have been failing for this long: new transfers are turned away. */
#define UNAVAILABLE_AFTER_US 500000

bool ledger_accepting(void)
{
    if (fence_state() != FENCE_HELD)
        return false;
    if (L.holding_since_us != 0 && mono_us() - L.holding_since_us > UNAVAILABLE_AFTER_US)
        return false;
    for (size_t i = 0; i < L.nposters; i++)
        if (pgconn_is_ready(L.posters[i].conn))
            return true;
    return false;
}

bool ledger_connected(void)
{
    return L.nposters > 0 && pgconn_is_ready(L.posters[0].conn);
}

bool ledger_idle(void)
{
    return L.queued == 0 && L.pieces == NULL && L.inflight_batches == 0 && L.ops_head == NULL &&
           L.op_inflight == NULL;
}

size_t ledger_queued(void)
{
    return L.queued + L.pieces_n + L.inflight_n;
}

void ledger_get_stats(struct ledger_stats *out)
{
    *out = L.stats;
    out->failures = L.stats.refused + L.stats.retried;
    out->queued = L.queued + L.pieces_n;
    out->committing = L.inflight_n;
}

void ledger_request_resync(void)
{
    if (!L.resync_needed)
        log_info("event=ledger_resync_requested");
    L.resync_needed = true;
    event_active(L.kick, 0, 0);
}

static void queue_push_front_list(struct transfer *list, size_t n)
{
    if (list == NULL)
        return;
    struct transfer *last = list;
    while (last->next != NULL)
        last = last->next;
    last->next = L.queue_head;
    L.queue_head = list;
    if (L.queue_tail == NULL)
        L.queue_tail = last;
    L.queued += n;
}

/* Puts a list of transfers at the front of the pieces; -1 on OOM. */
static int pieces_push_front(struct transfer *list, size_t n)
{
    struct piece *pc = malloc(sizeof(*pc));
    if (pc == NULL) {
        log_error("event=oom what=ledger_piece transfers=%zu", n);
        return -1;
    }
    pc->head = list;
    pc->n = n;
    pc->next = L.pieces;
    L.pieces = pc;
    if (L.pieces_tail == NULL)
        L.pieces_tail = pc;
    L.pieces_n += n;
    return 0;
}

/* Gives a batch back to be sent again: a piece stays a piece. */
static void give_back(struct transfer *list, size_t n, bool piece)
{
    if (piece && pieces_push_front(list, n) == 0)
        return;
    queue_push_front_list(list, n);
}

void ledger_submit(struct transfer *t)
{
    t->next = NULL;
    t->queued_us = mono_us();
    if (L.queue_tail != NULL)
        L.queue_tail->next = t;
    else
        L.queue_head = t;
    L.queue_tail = t;
    L.queued++;
    if (!L.window_waiting)
        event_active(L.kick, 0, 0);
    else if (L.queued >= (size_t)L.opts.batch_max)
        event_active(L.kick, 0, 0); /* full: no need to wait the window out */
}

int ledger_run_op(const char *stmt, int nparams, const char *const *values, ledger_op_cb cb,
                  void *arg)
{
    if (nparams > OP_MAX_PARAMS) {
        log_error("event=ledger_op_refused stmt=%s why=\"too many parameters\"", stmt);
        return -1;
    }
    struct ledger_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        log_error("event=oom what=ledger_op stmt=%s", stmt);
        return -1;
    }
    snprintf(op->stmt, sizeof(op->stmt), "%s", stmt);
    op->nparams = nparams;
    op->cb = cb;
    op->arg = arg;
    for (int i = 0; i < nparams; i++) {
        op->values[i] = strdup(values[i]);
        if (op->values[i] == NULL) {
            log_error("event=oom what=ledger_op stmt=%s", stmt);
            op_free(op);
            return -1;
        }
    }
    if (L.ops_tail != NULL)
        L.ops_tail->next = op;
    else
        L.ops_head = op;
    L.ops_tail = op;
    event_active(L.kick, 0, 0);
    return 0;
}

/* Statements still in flight when the switch stops (a deposed switch does
 * not drain) fail into their callbacks after ledger_free: they do nothing. */
static bool ledger_closed(void)
{
    return L.kick == NULL;
}

static void on_op_done(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    if (ledger_closed())
        return;
    struct ledger_op *op = L.op_inflight;
    L.op_inflight = NULL;
    if (flags == PGCONN_LOST) {
        /* It may or may not have committed. Nothing else was in flight, so
         * rereading the open window and the balances after reconnecting
         * brings memory back to the truth; the caller hears the doubt. */
        log_error("event=ledger_op_in_doubt stmt=%s why=\"%s\" action=resync_after_reconnect",
                  op->stmt, error);
        L.resync_needed = true;
        op->cb(op->arg, NULL, "database connection lost; outcome unknown (check and retry)");
        op_free(op);
        event_active(L.kick, 0, 0);
        return;
    }
    if (flags != PGCONN_OK)
        log_warn("event=ledger_op_failed stmt=%s why=\"%s\"", op->stmt, error);
    op->cb(op->arg, flags == PGCONN_OK ? res : NULL, flags == PGCONN_OK ? NULL : error);
    op_free(op);
    event_active(L.kick, 0, 0);
}

static void on_resync(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    if (ledger_closed())
        return;
    L.resync_inflight = false;
    if (flags != PGCONN_OK) {
        log_error("event=ledger_resync_failed why=\"%s\" action=retry", error);
        event_active(L.kick, 0, 0);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        struct participant *p = participant_find(PQgetvalue(res, i, 1));
        if (p == NULL)
            continue;
        int64_t balance = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        if (balance != p->pos.posted)
            log_warn("event=position_resynced participant=%s memory=%" PRId64 " database=%" PRId64,
                     p->code, p->pos.posted, balance);
        p->pos.posted = balance;
    }
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
        int64_t w = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (w != L.window_id)
            log_warn("event=window_resynced memory=%" PRId64 " database=%" PRId64, L.window_id, w);
        L.window_id = w;
        metrics_window_opened(w);
    }
    L.resync_needed = false;
    log_info("event=ledger_resynced window=%" PRId64, L.window_id);
    if (L.resync_hook != NULL)
        L.resync_hook();
    event_active(L.kick, 0, 0);
}

/* Sends the next operation when nothing else is in flight (a resync comes
 * first of all). Returns true while operations hold the postings back. */
static bool flush_op(void)
{
    struct pgconn *conn = L.posters[0].conn;
    if (L.resync_inflight)
        return true;
    if (L.resync_needed) {
        if (L.inflight_batches == 0 && L.op_inflight == NULL && pgconn_is_ready(conn) &&
            pgconn_exec(conn, SQL_RESYNC, 0, NULL, on_resync, NULL) == 0)
            L.resync_inflight = true;
        return true;
    }
    if (L.ops_head == NULL)
        return L.op_inflight != NULL;
    /* an operation waits for every batch in flight and holds back new ones,
     * so it sees exactly the postings sent before it */
    if (L.inflight_batches > 0 || L.op_inflight != NULL || !pgconn_is_ready(conn))
        return true;
    struct ledger_op *op = L.ops_head;
    if (pgconn_exec(conn, op->stmt, op->nparams, (const char *const *)op->values, on_op_done,
                    NULL) != 0)
        return true;
    L.ops_head = op->next;
    if (L.ops_head == NULL)
        L.ops_tail = NULL;
    op->next = NULL;
    L.op_inflight = op;
    return true;
}

static const char *kind_name(enum transfer_kind k)
{
    return k == TRANSFER_KIND_RETURN ? "return" : "transfer";
}

/* Appends one transfer to the arrays. Its legs are the database's to
 * derive; the fee is what the switch expects it to be. */
static int add_transfer(const struct transfer *t)
{
    static const char hex[] = "0123456789abcdef";
    char fp[2 * TRANSFER_FP_LEN + 1];
    for (int i = 0; i < TRANSFER_FP_LEN; i++) {
        fp[2 * i] = hex[t->fingerprint[i] >> 4];
        fp[2 * i + 1] = hex[t->fingerprint[i] & 15];
    }
    fp[2 * TRANSFER_FP_LEN] = '\0';
    bool acsc = t->status == TRANSFER_ACSC;
    struct pgarray *c = L.cols;
    int rc = 0;
    rc |= pgarray_text(&c[COL_T_NOTIFY], t->forwarded_ms != 0 ? "t" : "f");
    rc |= pgarray_int(&c[COL_T_ID], (int64_t)t->id);
    rc |= pgarray_text(&c[COL_T_KIND], kind_name(t->kind));
    rc |= pgarray_text(&c[COL_T_PAYER], t->payer);
    rc |= pgarray_text(&c[COL_T_MSG_ID], t->msg_id);
    rc |= pgarray_text(&c[COL_T_FP], fp);
    rc |= pgarray_text(&c[COL_T_E2E], t->end_to_end_id);
    rc |= pgarray_text(&c[COL_T_PAYEE], t->payee);
    rc |= pgarray_text(&c[COL_T_DACC], t->debtor_account);
    rc |= pgarray_text(&c[COL_T_CACC], t->creditor_account);
    rc |= pgarray_int(&c[COL_T_AMOUNT], t->amount);
    rc |= pgarray_int(&c[COL_T_FEE], acsc ? t->fee : 0);
    rc |= pgarray_text_or_null(&c[COL_T_FEE_PAYER], acsc && t->fee > 0 ? t->fee_payer : "");
    rc |= pgarray_text(&c[COL_T_CURRENCY], t->currency);
    rc |= pgarray_text(&c[COL_T_PURPOSE], transfer_purpose_name(t->purpose));
    rc |= pgarray_text_or_null(&c[COL_T_LOAN_ID], t->loan_id);
    rc |= t->instalment > 0 ? pgarray_int(&c[COL_T_INSTALMENT], t->instalment)
                            : pgarray_null(&c[COL_T_INSTALMENT]);
    rc |= pgarray_text_or_null(&c[COL_T_INVOICE], t->invoice_number);
    rc |= pgarray_text_or_null(&c[COL_T_RMT], t->remittance_text);
    /* a return of an id the ledger cannot hold (above INT64_MAX, refused
     * like an unknown original) records 0, an id no transfer has */
    rc |= t->original_id == 0 ? pgarray_null(&c[COL_T_ORIGINAL])
          : t->original_id <= TRANSFER_LEDGER_ID_MAX
              ? pgarray_int(&c[COL_T_ORIGINAL], (int64_t)t->original_id)
              : pgarray_int(&c[COL_T_ORIGINAL], 0);
    rc |= pgarray_text_or_null(&c[COL_T_RETURN_REASON], t->return_reason);
    rc |= pgarray_text(&c[COL_T_STATUS], transfer_status_name(t->status));
    if (t->status == TRANSFER_RJCT) {
        rc |= pgarray_text(&c[COL_T_REASON], t->reason);
        rc |= pgarray_text(&c[COL_T_REASON_TEXT], t->reason_text);
    } else {
        rc |= pgarray_null(&c[COL_T_REASON]);
        rc |= pgarray_null(&c[COL_T_REASON_TEXT]);
    }
    rc |= pgarray_int(&c[COL_T_RECEIVED], t->received_ms);
    rc |= t->forwarded_ms > 0 ? pgarray_int(&c[COL_T_FORWARDED], t->forwarded_ms)
                              : pgarray_null(&c[COL_T_FORWARDED]);
    rc |= t->decided_ms > 0 ? pgarray_int(&c[COL_T_DECIDED], t->decided_ms)
                            : pgarray_null(&c[COL_T_DECIDED]);
    return rc != 0 ? -1 : 0;
}

/* The committed deltas, applied to the positions held in memory: the legs
 * post_batch derived (schema/004), from the fee the database decided. */
static void apply_positions(const struct transfer *t)
{
    if (t->status != TRANSFER_ACSC)
        return;
    struct participant *payer = participant_find(t->payer);
    struct participant *payee = participant_find(t->payee);
    if (payer == NULL || payee == NULL || position_post(&payer->pos, -t->amount) != 0 ||
        position_post(&payee->pos, t->amount) != 0)
        log_error("event=position_apply_failed transfer=%" PRIu64 " why=\"overflow or missing\"",
                  t->id);
    if (t->fee > 0) {
        /* a transfer's fee is a debit; a return refunds the original's */
        int64_t delta = t->kind == TRANSFER_KIND_RETURN ? t->fee : -t->fee;
        struct participant *fp = participant_find(t->fee_payer);
        if (fp == NULL || position_post(&fp->pos, delta) != 0)
            log_error("event=position_apply_failed transfer=%" PRIu64 " leg=fee", t->id);
    }
}

static void on_batch_done(void *arg, PGresult *res, enum pgconn_flags flags, const char *error);

/* Sends `list` (n transfers, linked by next) as one post_batch on p.
 * Returns -1 (nothing sent, the list untouched) when the arrays cannot be
 * built or the connection refuses the send. */
static int send_list(struct poster *p, struct transfer *list, size_t n, bool piece)
{
    for (int i = 0; i < COL_COUNT; i++)
        pgarray_reset(&L.cols[i]);
    for (struct transfer *t = list; t != NULL; t = t->next) {
        if (add_transfer(t) != 0) {
            log_error("event=ledger_build_failed transfers=%zu why=\"out of memory\"", n);
            return -1;
        }
    }
    const char *params[1 + COL_COUNT];
    int64_t epoch = fence_epoch();
    snprintf(L.fence_param, sizeof(L.fence_param), "%" PRId64, epoch);
    params[0] = L.fence_param;
    for (int i = 0; i < COL_COUNT; i++) {
        if (pgarray_finish(&L.cols[i]) != 0) {
            log_error("event=ledger_build_failed transfers=%zu why=\"out of memory\"", n);
            return -1;
        }
        params[1 + i] = L.cols[i].buf;
    }
    if (pgconn_exec(p->conn, SQL_POST_BATCH, 1 + COL_COUNT, params, on_batch_done, p) != 0) {
        log_warn("event=ledger_send_deferred transfers=%zu conn=%s why=\"database not ready\"", n,
                 pgconn_name(p->conn));
        return -1;
    }
    p->inflight = list;
    p->inflight_n = n;
    p->inflight_piece = piece;
    p->epoch = epoch;
    p->since_us = mono_us();
    L.inflight_n += n;
    L.inflight_batches++;
    L.stats.attempts++;
    return 0;
}

/* Pauses postings for the backoff (after a transient failure or a build
 * failure); the retry timer resumes them. */
static void hold(const char *why)
{
    if (!L.holding) {
        L.holding = true;
        if (L.holding_since_us == 0)
            L.holding_since_us = mono_us();
        struct timeval tv = {L.backoff_ms / 1000, (L.backoff_ms % 1000) * 1000};
        evtimer_add(L.retry_timer, &tv);
        log_warn("event=ledger_holding ms=%d queued=%zu why=\"%s\"", L.backoff_ms,
                 L.queued + L.pieces_n, why);
        L.backoff_ms = L.backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : L.backoff_ms * 2;
    }
}

/* Sends the next piece of a refused batch on p; false when none was sent. */
static bool send_piece(struct poster *p)
{
    struct piece *pc = L.pieces;
    if (pc == NULL)
        return false;
    L.pieces = pc->next;
    if (L.pieces == NULL)
        L.pieces_tail = NULL;
    L.pieces_n -= pc->n;
    if (send_list(p, pc->head, pc->n, true) != 0) {
        /* back where it was */
        pc->next = L.pieces;
        L.pieces = pc;
        if (L.pieces_tail == NULL)
            L.pieces_tail = pc;
        L.pieces_n += pc->n;
        return false;
    }
    free(pc);
    return true;
}

/* Sends one batch from the queue on `p`. Returns false when nothing was
 * sent (queue empty or the send failed). */
static bool send_batch(struct poster *p)
{
    if (L.queue_head == NULL)
        return false;
    struct transfer *batch = L.queue_head, *last = batch;
    size_t n = 1, max = (size_t)L.opts.batch_max;
    while (n < max && last->next != NULL) {
        last = last->next;
        n++;
    }
    L.queue_head = last->next;
    if (L.queue_head == NULL)
        L.queue_tail = NULL;
    last->next = NULL;
    L.queued -= n;
    if (send_list(p, batch, n, false) != 0) {
        queue_push_front_list(batch, n);
        return false;
    }
    return true;
}

/* Group commit: a batch goes out when it is full or when its oldest
 * transfer has waited batch_window_us; until then the window timer is armed
 * for the rest of the wait. Under load batches fill up long before that. */
static bool batch_due(void)
{
    if (L.opts.window_us == 0 || L.queued >= (size_t)L.opts.batch_max)
        return true;
    int64_t waited = mono_us() - L.queue_head->queued_us;
    if (waited >= L.opts.window_us)
        return true;
    if (!L.window_waiting) {
        int64_t rest = L.opts.window_us - waited;
        struct timeval tv = {rest / 1000000, rest % 1000000};
        L.window_waiting = true;
        evtimer_add(L.window_timer, &tv);
    }
    return false;
}

/* Fills every idle connection: pieces of refused batches first, then
 * batches from the queue that are due. */
static void flush(void)
{
    if (fence_state() != FENCE_HELD)
        return; /* the fence (re)taken kicks the queue again */
    if (flush_op() || L.holding)
        return;
    struct poster *p;
    while (L.pieces != NULL && (p = idle_poster()) != NULL) {
        if (!send_piece(p)) {
            hold("cannot send a piece of a refused batch");
            return;
        }
    }
    while (L.queue_head != NULL && (p = idle_poster()) != NULL && batch_due()) {
        if (!send_batch(p)) {
            hold("cannot send a batch");
            return;
        }
    }
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    flush();
}

static void on_window(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    L.window_waiting = false;
    flush();
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    L.holding = false;
    log_info("event=ledger_resuming queued=%zu", L.queued + L.pieces_n);
    flush();
}

static enum transfer_status parse_status(const char *s)
{
    if (strcmp(s, "ACSC") == 0)
        return TRANSFER_ACSC;
    if (strcmp(s, "RJCT") == 0)
        return TRANSFER_RJCT;
    return TRANSFER_PENDING;
}

/* A result row about one transfer ('duplicate' or 'fee'), for lookup. */
struct row_ref {
    uint64_t id;
    int row;
};

static int row_ref_cmp(const void *a, const void *b)
{
    const struct row_ref *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* A stored text into a buffer, cut (if ever) on a character boundary. */
static void copy_field(char *dst, size_t len, PGresult *res, int row, int col)
{
    (void)text_copy_truncated(dst, len,
                              PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

/* The database's word on one transfer that was written: the fee it decided. */
static void adopt_fee(struct transfer *t, PGresult *res, int row)
{
    int64_t fee = strtoll(PQgetvalue(res, row, RES_FEE), NULL, 10);
    char payer[5];
    copy_field(payer, sizeof(payer), res, row, RES_FEE_PAYER);
    log_warn("event=fee_decided_by_ledger transfer=%" PRIu64 " expected=%" PRId64
             " fee_payer=%s posted=%" PRId64 " fee_payer=%s action=resync_fees",
             t->id, t->fee, t->fee_payer[0] ? t->fee_payer : "-", fee, payer[0] ? payer : "-");
    t->fee = fee;
    memcpy(t->fee_payer, payer, sizeof(t->fee_payer));
    if (L.refusal_hook != NULL)
        L.refusal_hook(); /* the fee schedule changed under the switch */
}

static void deliver(struct transfer *batch, PGresult *res)
{
    int rows = PQntuples(res);
    int64_t at_ms = 0;
    struct row_ref *refs = NULL;
    size_t nrefs = 0;
    if (rows > 1) {
        refs = malloc((size_t)rows * sizeof(*refs));
        if (refs == NULL)
            log_error("event=oom what=ledger_result rows=%d action=linear_search", rows);
    }
    for (int i = 0; i < rows; i++) {
        const char *kind = PQgetvalue(res, i, RES_KIND);
        if (strcmp(kind, "batch") == 0) {
            int64_t w = strtoll(PQgetvalue(res, i, RES_ID), NULL, 10);
            at_ms = strtoll(PQgetvalue(res, i, RES_AT_MS), NULL, 10);
            metrics_batch_window(w);
            if (w != L.window_id) {
                log_warn("event=window_changed memory=%" PRId64 " database=%" PRId64
                         " why=\"the open window changed outside this switch\"",
                         L.window_id, w);
                L.window_id = w;
            }
        } else if (refs != NULL) {
            refs[nrefs].id = strtoull(PQgetvalue(res, i, RES_ID), NULL, 10);
            refs[nrefs].row = i;
            nrefs++;
        }
    }
    if (refs != NULL)
        qsort(refs, nrefs, sizeof(*refs), row_ref_cmp);

    struct transfer *t = batch;
    while (t != NULL) {
        struct transfer *next = t->next;
        t->next = NULL;
        int row = -1;
        if (refs != NULL) {
            struct row_ref key = {t->id, 0};
            struct row_ref *hit = bsearch(&key, refs, nrefs, sizeof(*refs), row_ref_cmp);
            row = hit != NULL ? hit->row : -1;
        } else {
            for (int i = 0; i < rows && row < 0; i++)
                if (strcmp(PQgetvalue(res, i, RES_KIND), "batch") != 0 &&
                    strtoull(PQgetvalue(res, i, RES_ID), NULL, 10) == t->id)
                    row = i;
        }
        t->settled_ms = at_ms;
        if (row >= 0 && strcmp(PQgetvalue(res, row, RES_KIND), "duplicate") == 0) {
            struct ledger_duplicate dup;
            memset(&dup, 0, sizeof(dup));
            dup.stored_id = strtoull(PQgetvalue(res, row, RES_STORED_ID), NULL, 10);
            dup.stored_status = parse_status(PQgetvalue(res, row, RES_STATUS));
            copy_field(dup.stored_reason, sizeof(dup.stored_reason), res, row, RES_REASON);
            copy_field(dup.stored_text, sizeof(dup.stored_text), res, row, RES_REASON_TEXT);
            dup.stored_fee = strtoll(PQgetvalue(res, row, RES_FEE), NULL, 10);
            copy_field(dup.stored_fee_payer, sizeof(dup.stored_fee_payer), res, row, RES_FEE_PAYER);
            dup.stored_ms = strtoll(PQgetvalue(res, row, RES_AT_MS), NULL, 10);
            dup.same_request = strcmp(PQgetvalue(res, row, RES_SAME_REQUEST), "t") == 0;
            if (dup.stored_id == t->id) {
                /* our own earlier attempt committed before its connection
                 * died: what it recorded is the outcome */
                if (dup.stored_status != t->status)
                    log_error("event=ledger_outcome_differs transfer=%" PRIu64
                              " memory=%s stored=%s action=use_stored",
                              t->id, transfer_status_name(t->status),
                              transfer_status_name(dup.stored_status));
                t->status = dup.stored_status;
                memcpy(t->reason, dup.stored_reason, sizeof(t->reason));
                memcpy(t->reason_text, dup.stored_text, sizeof(t->reason_text));
                t->fee = dup.stored_fee;
                memcpy(t->fee_payer, dup.stored_fee_payer, sizeof(t->fee_payer));
                t->settled_ms = dup.stored_ms;
                apply_positions(t);
                L.done(t, LEDGER_WRITTEN, NULL);
            } else {
                L.done(t, LEDGER_DUPLICATE, &dup);
            }
        } else {
            if (row >= 0)
                adopt_fee(t, res, row);
            apply_positions(t);
            L.done(t, LEDGER_WRITTEN, NULL);
        }
        t = next;
    }
    free(refs);
}

/* The database refused the posting of this one transfer: reject it instead
 * (recorded without entries, on its own), or give up when even that was
 * refused. Participants get a fixed code and text; the log gets why. */
static void refuse_one(struct transfer *t, const char *error)
{
    t->next = NULL;
    if (t->status == TRANSFER_ACSC) {
        bool cap = strstr(error, "net debit cap") != NULL;
        t->status = TRANSFER_RJCT;
        t->fee = 0; /* a rejection carries no fee, in memory as in the ledger */
        t->fee_payer[0] = '\0';
        snprintf(t->reason, sizeof(t->reason), "%s", cap ? "AM23" : LEDGER_REFUSED_REASON);
        snprintf(t->reason_text, sizeof(t->reason_text), "%s",
                 cap ? LEDGER_CAP_TEXT : LEDGER_REFUSED_TEXT);
        char qm[96];
        log_error("event=posting_refused transfer=%" PRIu64 " payer=%s msg_id=%s reason=%s "
                  "why=\"%s\" action=record_rejection",
                  t->id, t->payer, log_quote(t->msg_id, qm, sizeof(qm)), t->reason, error);
        give_back(t, 1, true);
        return;
    }
    char qm[96];
    log_error("event=record_refused transfer=%" PRIu64 " payer=%s msg_id=%s why=\"%s\"", t->id,
              t->payer, log_quote(t->msg_id, qm, sizeof(qm)), error);
    L.done(t, LEDGER_ABANDONED, NULL);
}

/* A refused batch of n > 1: two pieces, each posted on its own. */
static void split(struct transfer *batch, size_t n)
{
    size_t half = n / 2;
    struct transfer *last = batch;
    for (size_t i = 1; i < half; i++)
        last = last->next;
    struct transfer *second = last->next;
    last->next = NULL;
    /* second pushed first, so the first half goes out first */
    if (pieces_push_front(second, n - half) != 0) {
        last->next = second;
        queue_push_front_list(batch, n);
        hold("out of memory splitting a refused batch");
        return;
    }
    if (pieces_push_front(batch, half) != 0) {
        queue_push_front_list(batch, half);
        hold("out of memory splitting a refused batch");
    }
}

static void on_batch_done(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    if (ledger_closed())
        return; /* in doubt; the next switch's retries find what committed */
    struct poster *p = arg;
    struct transfer *batch = p->inflight;
    size_t n = p->inflight_n;
    bool piece = p->inflight_piece;
    p->inflight = NULL;
    p->inflight_n = 0;
    p->inflight_piece = false;
    L.inflight_n -= n;
    L.inflight_batches--;

    switch (flags) {
    case PGCONN_OK: {
        L.holding_since_us = 0;
        L.stats.batches++;
        L.stats.transfers += n;
        L.backoff_ms = BACKOFF_MIN_MS;
        int64_t now = mono_us();
        int64_t took = now - p->since_us;
        L.stats.commit_us += (uint64_t)took;
        if (took > 100000)
            log_warn("event=slow_commit conn=%s transfers=%zu ms=%" PRId64, pgconn_name(p->conn), n,
                     took / 1000);
        if (n > L.stats.max_batch)
            L.stats.max_batch = n;
        metrics_batch_committed(n, took, now);
        log_debug("event=batch_committed transfers=%zu rows=%d piece=%d", n, PQntuples(res), piece);
        deliver(batch, res);
        break;
    }
    case PGCONN_LOST:
        L.stats.retried++;
        log_warn("event=batch_in_doubt transfers=%zu why=\"%s\" action=resend_after_reconnect", n,
                 error);
        give_back(batch, n, piece);
        hold("database connection lost");
        break;
    case PGCONN_RETRY:
        L.stats.retried++;
        if (strstr(error, "SKF01") != NULL)
            fence_refused(p->epoch);
        log_warn("event=batch_failed_transiently transfers=%zu why=\"%s\" action=retry", n, error);
        give_back(batch, n, piece);
        hold(error);
        break;
    case PGCONN_FAILED:
        L.stats.refused++;
        if (L.refusal_hook != NULL)
            L.refusal_hook();
        if (n == 1) {
            refuse_one(batch, error);
        } else {
            log_error("event=batch_refused transfers=%zu why=\"%s\" action=bisect", n, error);
            split(batch, n);
        }
        break;
    }
    if (L.queue_head != NULL || L.pieces != NULL || L.ops_head != NULL || L.resync_needed)
        event_active(L.kick, 0, 0);
}
