#include "ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "participant.h"
#include "sql.h"

/* One text-format PostgreSQL array literal being built. */
struct pgarray {
    char *buf;
    size_t len, cap;
    size_t n;
};

enum col {
    COL_T_ID = 0,
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
    COL_E_TRANSFER,
    COL_E_ACCOUNT,
    COL_E_AMOUNT,
    COL_E_LEG,
    COL_COUNT
};

#define OP_MAX_PARAMS 4

struct ledger_op {
    struct ledger_op *next;
    char stmt[32];
    int nparams;
    char *values[OP_MAX_PARAMS];
    ledger_op_cb cb;
    void *arg;
};

static int64_t now_us(void);

/* One posting connection and the batch it is committing. */
struct poster {
    struct pgconn *conn;
    struct transfer *inflight;
    size_t inflight_n;
    int64_t since_us;
};

static struct {
    struct event_base *base;
    struct poster posters[LEDGER_MAX_CONNECTIONS];
    size_t nposters;
    ledger_done_cb done;
    struct ledger_options opts;
    int64_t window_id;
    int64_t fee_account;
    struct transfer *queue_head, *queue_tail;
    size_t queued;
    struct ledger_op *ops_head, *ops_tail; /* operations waiting their turn */
    struct ledger_op *op_inflight;
    bool resync_needed; /* an operation's outcome is unknown */
    bool resync_inflight;
    size_t inflight_n;       /* transfers in batches being committed */
    size_t inflight_batches; /* batches being committed */
    bool solo;               /* isolating a refused batch: one at a time */
    size_t solo_left;        /* transfers still to post alone */
    struct event *kick;      /* deferred flush */
    struct event *window_timer;
    bool window_waiting;
    struct pgarray cols[COL_COUNT];
    char window_param[24];
    struct ledger_stats stats;
} L;

static int arr_reserve(struct pgarray *a, size_t more)
{
    if (a->len + more + 2 <= a->cap)
        return 0;
    size_t ncap = a->cap ? a->cap : 4096;
    while (ncap < a->len + more + 2)
        ncap *= 2;
    char *nb = realloc(a->buf, ncap);
    if (nb == NULL) {
        log_error("event=oom what=ledger_array bytes=%zu", ncap);
        return -1;
    }
    a->buf = nb;
    a->cap = ncap;
    return 0;
}

static void arr_reset(struct pgarray *a)
{
    a->len = 0;
    a->n = 0;
    if (arr_reserve(a, 1) == 0)
        a->buf[a->len++] = '{';
}

static int arr_sep(struct pgarray *a)
{
    if (a->n++ > 0) {
        if (arr_reserve(a, 1) != 0)
            return -1;
        a->buf[a->len++] = ',';
    }
    return 0;
}

static int arr_null(struct pgarray *a)
{
    if (arr_sep(a) != 0 || arr_reserve(a, 4) != 0)
        return -1;
    memcpy(a->buf + a->len, "NULL", 4);
    a->len += 4;
    return 0;
}

/* Always quoted: "" and backslashes escaped, so any text is safe. */
static int arr_text(struct pgarray *a, const char *s)
{
    size_t n = strlen(s);
    if (arr_sep(a) != 0 || arr_reserve(a, 2 * n + 2) != 0)
        return -1;
    a->buf[a->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            a->buf[a->len++] = '\\';
        a->buf[a->len++] = s[i];
    }
    a->buf[a->len++] = '"';
    return 0;
}

static int arr_text_or_null(struct pgarray *a, const char *s)
{
    return s[0] != '\0' ? arr_text(a, s) : arr_null(a);
}

static int arr_int(struct pgarray *a, int64_t v)
{
    if (arr_sep(a) != 0 || arr_reserve(a, 24) != 0)
        return -1;
    a->len += (size_t)snprintf(a->buf + a->len, 24, "%" PRId64, v);
    return 0;
}

static int arr_finish(struct pgarray *a)
{
    if (arr_reserve(a, 1) != 0)
        return -1;
    a->buf[a->len++] = '}';
    a->buf[a->len] = '\0';
    return 0;
}

static void op_free(struct ledger_op *op)
{
    for (int i = 0; i < op->nparams; i++)
        free(op->values[i]);
    free(op);
}

static void on_kick(evutil_socket_t fd, short what, void *arg);

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
static void on_window(evutil_socket_t fd, short what, void *arg);

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
    L.kick = event_new(base, -1, 0, on_kick, NULL);
    L.window_timer = evtimer_new(base, on_window, NULL);
    if (L.kick == NULL || L.window_timer == NULL) {
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

void ledger_free(void)
{
    while (L.ops_head != NULL) {
        struct ledger_op *op = L.ops_head;
        L.ops_head = op->next;
        op_free(op);
    }
    if (L.op_inflight != NULL)
        op_free(L.op_inflight);
    if (L.kick != NULL)
        event_free(L.kick);
    if (L.window_timer != NULL)
        event_free(L.window_timer);
    for (int i = 0; i < COL_COUNT; i++)
        free(L.cols[i].buf);
    memset(&L, 0, sizeof(L));
}

void ledger_set_window(int64_t window_id)
{
    L.window_id = window_id;
}

int64_t ledger_window(void)
{
    return L.window_id;
}

void ledger_set_fee_account(int64_t account_id)
{
    L.fee_account = account_id;
}

bool ledger_idle(void)
{
    return L.queued == 0 && L.inflight_batches == 0 && L.ops_head == NULL && L.op_inflight == NULL;
}

size_t ledger_queued(void)
{
    return L.queued + L.inflight_n;
}

void ledger_get_stats(struct ledger_stats *out)
{
    *out = L.stats;
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

void ledger_submit(struct transfer *t)
{
    t->next = NULL;
    t->queued_us = now_us();
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

static void on_op_done(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
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
    if (PQntuples(res) > 0) {
        int64_t w = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (w != L.window_id)
            log_warn("event=window_resynced memory=%" PRId64 " database=%" PRId64, L.window_id, w);
        L.window_id = w;
    }
    L.resync_needed = false;
    log_info("event=ledger_resynced window=%" PRId64, L.window_id);
    event_active(L.kick, 0, 0);
}

/* Sends the next operation when nothing else is in flight (a resync after
 * an operation in doubt comes first of all). */
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
        return false;
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

static int add_entry(int64_t transfer_id, int64_t account, int64_t amount, const char *leg)
{
    if (arr_int(&L.cols[COL_E_TRANSFER], transfer_id) != 0 ||
        arr_int(&L.cols[COL_E_ACCOUNT], account) != 0 ||
        arr_int(&L.cols[COL_E_AMOUNT], amount) != 0 || arr_text(&L.cols[COL_E_LEG], leg) != 0)
        return -1;
    return 0;
}

/* Appends one transfer (and, for ACSC, its entries) to the arrays. */
static int add_transfer(const struct transfer *t)
{
    static const char hex[] = "0123456789abcdef";
    char fp[2 * TRANSFER_FP_LEN + 1];
    for (int i = 0; i < TRANSFER_FP_LEN; i++) {
        fp[2 * i] = hex[t->fingerprint[i] >> 4];
        fp[2 * i + 1] = hex[t->fingerprint[i] & 15];
    }
    fp[2 * TRANSFER_FP_LEN] = '\0';
    struct pgarray *c = L.cols;
    int rc = 0;
    rc |= arr_int(&c[COL_T_ID], (int64_t)t->id);
    rc |= arr_text(&c[COL_T_KIND], kind_name(t->kind));
    rc |= arr_text(&c[COL_T_PAYER], t->payer);
    rc |= arr_text(&c[COL_T_MSG_ID], t->msg_id);
    rc |= arr_text(&c[COL_T_FP], fp);
    rc |= arr_text(&c[COL_T_E2E], t->end_to_end_id);
    rc |= arr_text(&c[COL_T_PAYEE], t->payee);
    rc |= arr_text(&c[COL_T_DACC], t->debtor_account);
    rc |= arr_text(&c[COL_T_CACC], t->creditor_account);
    rc |= arr_int(&c[COL_T_AMOUNT], t->amount);
    rc |= arr_int(&c[COL_T_FEE], t->status == TRANSFER_ACSC ? t->fee : 0);
    rc |= arr_text(&c[COL_T_CURRENCY], t->currency);
    rc |= arr_text(&c[COL_T_PURPOSE], transfer_purpose_name(t->purpose));
    rc |= arr_text_or_null(&c[COL_T_LOAN_ID], t->loan_id);
    rc |= t->instalment > 0 ? arr_int(&c[COL_T_INSTALMENT], t->instalment)
                            : arr_null(&c[COL_T_INSTALMENT]);
    rc |= arr_text_or_null(&c[COL_T_INVOICE], t->invoice_number);
    rc |= arr_text_or_null(&c[COL_T_RMT], t->remittance_text);
    rc |= t->original_id != 0 ? arr_int(&c[COL_T_ORIGINAL], (int64_t)t->original_id)
                              : arr_null(&c[COL_T_ORIGINAL]);
    rc |= arr_text_or_null(&c[COL_T_RETURN_REASON], t->return_reason);
    rc |= arr_text(&c[COL_T_STATUS], transfer_status_name(t->status));
    if (t->status == TRANSFER_RJCT) {
        rc |= arr_text(&c[COL_T_REASON], t->reason);
        rc |= arr_text(&c[COL_T_REASON_TEXT], t->reason_text);
    } else {
        rc |= arr_null(&c[COL_T_REASON]);
        rc |= arr_null(&c[COL_T_REASON_TEXT]);
    }
    rc |= arr_int(&c[COL_T_RECEIVED], t->received_ms);
    if (rc != 0)
        return -1;
    if (t->status != TRANSFER_ACSC)
        return 0;

    struct participant *payer = participant_find(t->payer);
    struct participant *payee = participant_find(t->payee);
    if (payer == NULL || payee == NULL) {
        log_error("event=ledger_bug transfer=%" PRIu64 " why=\"participant vanished\"", t->id);
        return -1;
    }
    if (add_entry((int64_t)t->id, payer->position_account, -t->amount, "principal") != 0 ||
        add_entry((int64_t)t->id, payee->position_account, t->amount, "principal") != 0)
        return -1;
    if (t->fee > 0) {
        struct participant *fp_payer = participant_find(t->fee_payer);
        if (fp_payer == NULL) {
            log_error("event=ledger_bug transfer=%" PRIu64 " why=\"no fee payer\"", t->id);
            return -1;
        }
        if (add_entry((int64_t)t->id, fp_payer->position_account, -t->fee, "fee") != 0 ||
            add_entry((int64_t)t->id, L.fee_account, t->fee, "fee") != 0)
            return -1;
    }
    return 0;
}

/* The committed deltas, applied to the positions held in memory. */
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
        struct participant *fp = participant_find(t->fee_payer);
        if (fp == NULL || position_post(&fp->pos, -t->fee) != 0)
            log_error("event=position_apply_failed transfer=%" PRIu64 " leg=fee", t->id);
    }
}

static void on_batch_done(void *arg, PGresult *res, enum pgconn_flags flags, const char *error);

/* Sends one batch from the queue on `p`. Returns false when nothing was
 * sent (queue empty or the send failed). */
static bool send_batch(struct poster *p)
{
    if (L.queue_head == NULL)
        return false;
    size_t max = L.solo ? 1 : (size_t)L.opts.batch_max;
    for (int i = 0; i < COL_COUNT; i++)
        arr_reset(&L.cols[i]);

    struct transfer *batch = NULL, *tail = NULL;
    size_t n = 0;
    while (L.queue_head != NULL && n < max) {
        struct transfer *t = L.queue_head;
        L.queue_head = t->next;
        if (L.queue_head == NULL)
            L.queue_tail = NULL;
        L.queued--;
        t->next = NULL;
        if (tail != NULL)
            tail->next = t;
        else
            batch = t;
        tail = t;
        n++;
        if (add_transfer(t) != 0) {
            /* out of memory building arrays: give the batch back, retry later */
            queue_push_front_list(batch, n);
            log_error("event=ledger_build_failed transfers=%zu", n);
            struct timeval tv = {0, 100000};
            evtimer_add(L.window_timer, &tv);
            L.window_waiting = true;
            return false;
        }
    }
    for (int i = 0; i < COL_COUNT; i++)
        arr_finish(&L.cols[i]);

    const char *params[1 + COL_COUNT];
    snprintf(L.window_param, sizeof(L.window_param), "%" PRId64, L.window_id);
    params[0] = L.window_param;
    for (int i = 0; i < COL_COUNT; i++)
        params[1 + i] = L.cols[i].buf;
    if (pgconn_exec(p->conn, SQL_POST_BATCH, 1 + COL_COUNT, params, on_batch_done, p) != 0) {
        queue_push_front_list(batch, n);
        log_warn("event=ledger_send_deferred transfers=%zu conn=%s why=\"database not ready\"", n,
                 pgconn_name(p->conn));
        return false;
    }
    p->inflight = batch;
    p->inflight_n = n;
    p->since_us = now_us();
    L.inflight_n += n;
    L.inflight_batches++;
    return true;
}

/* Group commit: a batch goes out when it is full or when its oldest
 * transfer has waited batch_window_us; until then the window timer is armed
 * for the rest of the wait. Under load batches fill up long before that. */
static bool batch_due(void)
{
    if (L.solo || L.opts.window_us == 0 || L.queued >= (size_t)L.opts.batch_max)
        return true;
    int64_t waited = now_us() - L.queue_head->queued_us;
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

/* Fills every idle connection with a batch that is due (one at a time while
 * a refused batch is being isolated). */
static void flush(void)
{
    if (flush_op())
        return;
    if (L.op_inflight != NULL)
        return;
    struct poster *p;
    while (L.queue_head != NULL && (!L.solo || L.inflight_batches == 0) &&
           (p = idle_poster()) != NULL && batch_due()) {
        if (!send_batch(p))
            return;
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

static enum transfer_status parse_status(const char *s)
{
    if (strcmp(s, "ACSC") == 0)
        return TRANSFER_ACSC;
    if (strcmp(s, "RJCT") == 0)
        return TRANSFER_RJCT;
    return TRANSFER_PENDING;
}

/* Finds the result row for transfer id, or -1. Rows are few (duplicates). */
static int find_row(PGresult *res, uint64_t id)
{
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++)
        if (strtoull(PQgetvalue(res, i, 0), NULL, 10) == id)
            return i;
    return -1;
}

static void deliver(struct transfer *batch, PGresult *res)
{
    struct transfer *t = batch;
    while (t != NULL) {
        struct transfer *next = t->next;
        t->next = NULL;
        int row = res != NULL ? find_row(res, t->id) : -1;
        if (row < 0) {
            apply_positions(t);
            L.done(t, LEDGER_WRITTEN, NULL);
        } else {
            struct ledger_duplicate dup;
            memset(&dup, 0, sizeof(dup));
            dup.stored_id = strtoull(PQgetvalue(res, row, 1), NULL, 10);
            dup.stored_status = parse_status(PQgetvalue(res, row, 2));
            snprintf(dup.stored_reason, sizeof(dup.stored_reason), "%s", PQgetvalue(res, row, 3));
            dup.same_request = strcmp(PQgetvalue(res, row, 5), "t") == 0;
            if (dup.stored_id == t->id) {
                /* our own earlier attempt committed before its connection died */
                apply_positions(t);
                L.done(t, LEDGER_WRITTEN, NULL);
            } else {
                L.done(t, LEDGER_DUPLICATE, &dup);
            }
        }
        t = next;
    }
}

/* The database refused the posting of this one transfer: reject it instead
 * (recorded without entries), or give up when even that was refused. */
static void refuse_one(struct transfer *t, const char *error)
{
    if (t->status == TRANSFER_ACSC) {
        t->status = TRANSFER_RJCT;
        if (strstr(error, "net debit cap") != NULL) {
            snprintf(t->reason, sizeof(t->reason), "AM23");
            snprintf(t->reason_text, sizeof(t->reason_text),
                     "the ledger refused the posting: net debit cap exceeded");
        } else {
            snprintf(t->reason, sizeof(t->reason), "NARR");
            snprintf(t->reason_text, sizeof(t->reason_text), "the ledger refused the posting: %s",
                     error);
        }
        log_error("event=posting_refused transfer=%" PRIu64 " payer=%s msg_id=%s reason=%s "
                  "why=\"%s\"",
                  t->id, t->payer, t->msg_id, t->reason, error);
        t->next = NULL;
        queue_push_front_list(t, 1);
        L.solo_left++;
        return;
    }
    log_error("event=record_refused transfer=%" PRIu64 " payer=%s msg_id=%s why=\"%s\"", t->id,
              t->payer, t->msg_id, error);
    L.done(t, LEDGER_ABANDONED, NULL);
}

static void on_batch_done(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct poster *p = arg;
    struct transfer *batch = p->inflight;
    size_t n = p->inflight_n;
    p->inflight = NULL;
    p->inflight_n = 0;
    L.inflight_n -= n;
    L.inflight_batches--;

    if (flags == PGCONN_OK) {
        L.stats.batches++;
        L.stats.transfers += n;
        int64_t took = now_us() - p->since_us;
        L.stats.commit_us += (uint64_t)took;
        if (took > 100000)
            log_warn("event=slow_commit conn=%s transfers=%zu ms=%" PRId64, pgconn_name(p->conn),
                     n, took / 1000);
        if (n > L.stats.max_batch)
            L.stats.max_batch = n;
        log_debug("event=batch_committed transfers=%zu duplicates=%d window=%" PRId64, n,
                  PQntuples(res), L.window_id);
        if (L.solo && L.solo_left > 0 && --L.solo_left == 0)
            L.solo = false;
        deliver(batch, res);
    } else if (flags == PGCONN_LOST) {
        L.stats.failures++;
        log_warn("event=batch_in_doubt transfers=%zu why=\"%s\" action=resend_after_reconnect", n,
                 error);
        queue_push_front_list(batch, n);
    } else {
        L.stats.failures++;
        if (n == 1) {
            if (L.solo && L.solo_left > 0)
                L.solo_left--;
            refuse_one(batch, error);
            if (L.solo_left == 0)
                L.solo = false;
        } else {
            log_error("event=batch_refused transfers=%zu why=\"%s\" action=post_one_by_one", n,
                      error);
            queue_push_front_list(batch, n);
            L.solo = true;
            L.solo_left = n;
        }
    }
    if (L.queue_head != NULL || L.ops_head != NULL || L.resync_needed)
        event_active(L.kick, 0, 0);
}
