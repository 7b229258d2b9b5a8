#include "bulk.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "log.h"
#include "participant.h"
#include "router.h"
#include "session.h"
#include "sql.h"
#include "text.h"
#include "transfer.h"

#define BULK_FP_LEN       32 /* SHA-256 */
#define BULK_INDEX_BITS   10 /* reply id: BULK_REPLY_BIT | seq << 10 | item index */
#define BULK_RECHECK_US   10000
#define BULK_BATCH_ID_MAX TRANSFER_ID_MAX

_Static_assert(BULK_MAX_ITEMS <= (1 << BULK_INDEX_BITS), "an item index fits its bits");

enum bulk_state {
    BULK_REGISTERING = 0, /* bulk_register in the database */
    BULK_ROUTING,         /* items enter the router */
};

/* One item's answer: a deep copy of the report (protobuf-c's allocator). */
struct bulk_result {
    Sikka__V1__StatusReport *report; /* NULL: none (not answered, or no memory) */
    bool answered;
    bool retry;
};

/* One batch in flight. Owned by the module's list; freed once reported. */
struct bulk {
    struct bulk *next;
    uint64_t reply_base;
    enum bulk_state state;
    char payer[5];
    char batch_id[BULK_BATCH_ID_MAX + 1];
    unsigned char fp[BULK_FP_LEN];
    Sikka__V1__BulkCreditTransfer *msg; /* a copy, protobuf-c's allocator */
    size_t n, fed, answered;
    bool stopped; /* no session left: nothing more is routed */
    struct bulk_result *results;
    uint64_t listeners[BULK_MAX_LISTENERS]; /* [0] paces the items */
    unsigned nlisteners;
    struct event *ev; /* routes more items, or finishes */
    int64_t started_ms;
};

static struct {
    struct event_base *base;
    struct pgconn *db;
    struct bulk *list;
    size_t count;
    uint64_t seq;
} B;

int bulk_init(struct event_base *base, struct pgconn *db)
{
    memset(&B, 0, sizeof(B));
    B.base = base;
    B.db = db;
    return 0;
}

static void bulk_destroy(struct bulk *b)
{
    if (b->results != NULL) {
        for (size_t i = 0; i < b->n; i++)
            if (b->results[i].report != NULL)
                sikka__v1__status_report__free_unpacked(b->results[i].report, NULL);
        free(b->results);
    }
    if (b->msg != NULL)
        sikka__v1__bulk_credit_transfer__free_unpacked(b->msg, NULL);
    if (b->ev != NULL)
        event_free(b->ev);
    free(b);
}

static void bulk_unlink(struct bulk *b)
{
    for (struct bulk **pp = &B.list; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            B.count--;
            return;
        }
    }
}

void bulk_free(void)
{
    while (B.list != NULL) {
        struct bulk *b = B.list;
        B.list = b->next;
        bulk_destroy(b);
    }
    B.count = 0;
}

size_t bulk_inflight(void)
{
    return B.count;
}

/* ---- answers ---- */

/* A BulkReport that refuses the batch whole (nothing routed). */
static void refuse_batch(struct session *s, const char *batch_id, const char *reason,
                         const char *text, bool retry)
{
    char qb[96];
    log_warn("event=bulk_refused session=%s batch=%s reason=%s retry=%s text=\"%s\"", s->label,
             log_quote(batch_id, qb, sizeof(qb)), reason, retry ? "yes" : "no", text);
    Sikka__V1__BulkReport r = SIKKA__V1__BULK_REPORT__INIT;
    r.batch_id = (char *)batch_id;
    r.last = 1;
    r.reason = (char *)reason;
    r.text = (char *)text;
    r.retry = retry;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_BULK_REPORT;
    env.bulk_report = &r;
    (void)session_send(s, &env);
}

static void refuse_listeners(struct bulk *b, const char *reason, const char *text, bool retry)
{
    for (unsigned i = 0; i < b->nlisteners; i++) {
        struct session *s = session_find(b->listeners[i]);
        if (s != NULL)
            refuse_batch(s, b->batch_id, reason, text, retry);
    }
}

/* Sends the results, BULK_REPORT_CHUNK per frame, the summary on the last. */
static void report_to(struct session *s, struct bulk *b, const Sikka__V1__BulkReport *summary)
{
    Sikka__V1__BulkItemResult items[BULK_REPORT_CHUNK];
    Sikka__V1__BulkItemResult *ptrs[BULK_REPORT_CHUNK];
    for (size_t from = 0; from < b->n; from += BULK_REPORT_CHUNK) {
        size_t k = b->n - from < BULK_REPORT_CHUNK ? b->n - from : BULK_REPORT_CHUNK;
        Sikka__V1__BulkReport r = SIKKA__V1__BULK_REPORT__INIT;
        if (from + k == b->n)
            r = *summary;
        r.batch_id = b->batch_id;
        for (size_t i = 0; i < k; i++) {
            sikka__v1__bulk_item_result__init(&items[i]);
            items[i].index = (uint32_t)(from + i);
            items[i].report = b->results[from + i].report;
            items[i].retry = b->results[from + i].retry;
            ptrs[i] = &items[i];
        }
        r.results = ptrs;
        r.n_results = k;
        r.last = from + k == b->n;
        Envelope env = SIKKA__V1__ENVELOPE__INIT;
        env.body_case = SIKKA__V1__ENVELOPE__BODY_BULK_REPORT;
        env.bulk_report = &r;
        if (session_send(s, &env) != 0) {
            log_warn("event=bulk_report_not_sent session=%s batch=%s why=\"session closing or "
                     "over its output cap; a retry of the batch gets the answers\"",
                     s->label, b->batch_id);
            return;
        }
    }
}

/* Every item is answered (or, the sessions gone, no more will be routed). */
static void finish(struct bulk *b)
{
    Sikka__V1__BulkReport sum = SIKKA__V1__BULK_REPORT__INIT;
    sum.items = (uint32_t)b->n;
    for (size_t i = 0; i < b->n; i++) {
        struct bulk_result *r = &b->results[i];
        if (!r->answered) {
            /* never routed: its sessions went away */
            r->retry = true;
            Sikka__V1__StatusReport sr = SIKKA__V1__STATUS_REPORT__INIT;
            sr.status = SIKKA__V1__TX_STATUS__RJCT;
            sr.reason = "NARR";
            sr.text = "not processed: the batch's sessions closed; send the batch again";
            sr.debtor_agent = b->payer;
            bulk_item_answer(b->reply_base | i, &sr, NULL);
        }
        if (r->retry || r->report == NULL) {
            r->retry = true;
            sum.not_processed++;
        } else if (r->report->status == SIKKA__V1__TX_STATUS__ACSC) {
            sum.settled++;
            if (__builtin_add_overflow(sum.settled_amount, r->report->amount,
                                       &sum.settled_amount) ||
                __builtin_add_overflow(sum.fees, r->report->fee, &sum.fees)) {
                log_error("event=bulk_summary_overflow batch=%s payer=%s", b->batch_id, b->payer);
                sum.settled_amount = sum.fees = 0;
            }
        } else {
            sum.rejected++;
        }
    }
    log_info("event=bulk_done payer=%s batch=%s items=%zu settled=%u rejected=%u "
             "not_processed=%u settled_amount=%" PRId64 " ms=%" PRId64,
             b->payer, b->batch_id, b->n, sum.settled, sum.rejected, sum.not_processed,
             sum.settled_amount, transfer_now_ms() - b->started_ms);
    for (unsigned i = 0; i < b->nlisteners; i++) {
        struct session *s = session_find(b->listeners[i]);
        if (s != NULL)
            report_to(s, b, &sum);
    }
    bulk_unlink(b);
    bulk_destroy(b);
}

static struct bulk *find_by_reply(uint64_t reply)
{
    uint64_t base = reply & ~(uint64_t)((1u << BULK_INDEX_BITS) - 1);
    for (struct bulk *b = B.list; b != NULL; b = b->next)
        if (b->reply_base == base)
            return b;
    return NULL;
}

static Sikka__V1__StatusReport *copy_report(const Sikka__V1__StatusReport *sr)
{
    size_t len = sikka__v1__status_report__get_packed_size(sr);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return NULL;
    sikka__v1__status_report__pack(sr, buf);
    Sikka__V1__StatusReport *copy = sikka__v1__status_report__unpack(NULL, len, buf);
    free(buf);
    return copy;
}

void bulk_item_answer(uint64_t reply, const Sikka__V1__StatusReport *sr, const char *refused)
{
    struct bulk *b = find_by_reply(reply);
    size_t i = (size_t)(reply & ((1u << BULK_INDEX_BITS) - 1));
    if (b == NULL || i >= b->n || b->results[i].answered) {
        log_warn("event=bulk_answer_unexpected reply=%" PRIx64 " why=\"no such item waiting\"",
                 reply);
        return;
    }
    const Sikka__V1__CreditTransfer *ct = b->msg->items[i];
    Sikka__V1__StatusReport own = SIKKA__V1__STATUS_REPORT__INIT;
    char err[96];
    if (sr == NULL) {
        /* a retryable refusal: what a MessageReject with retry would say */
        own.status = SIKKA__V1__TX_STATUS__RJCT;
        own.reason = "NARR";
        own.text = (char *)refused;
        own.original_msg_id =
            text_check("msg_id", ct->msg_id, 1, TRANSFER_ID_MAX, TEXT_BYTES, err, sizeof(err)) == 0
                ? ct->msg_id
                : "";
        own.amount = ct->amount;
        own.debtor_agent = b->payer;
        sr = &own;
        b->results[i].retry = true;
    }
    b->results[i].answered = true;
    b->results[i].report = copy_report(sr);
    if (b->results[i].report == NULL) {
        /* reported as not processed; a retry of the batch gets its answer */
        log_error("event=oom what=bulk_result batch=%s item=%zu", b->batch_id, i);
        b->results[i].retry = true;
    }
    b->answered++;
    event_active(b->ev, EV_TIMEOUT, 0);
}

/* ---- routing the items ---- */

/* The session that paces the batch: the first listener still open. */
static struct session *pacer(struct bulk *b)
{
    while (b->nlisteners > 0) {
        struct session *s = session_find(b->listeners[0]);
        if (s != NULL && s->state == SESSION_ACTIVE)
            return s;
        memmove(b->listeners, b->listeners + 1, (b->nlisteners - 1) * sizeof(b->listeners[0]));
        b->nlisteners--;
    }
    return NULL;
}

/* What a batch may have in flight on a session whose cap is `cap`: three
 * quarters of it (at least one), so the session is never paused by its
 * batch alone and still reads its other frames: decisions as a payee,
 * queries, its own close. */
static int64_t bulk_share(int64_t cap)
{
    int64_t share = cap - cap / 4;
    return share > 0 ? share : 1;
}

static void feed(struct bulk *b)
{
    struct session *s = pacer(b);
    if (s == NULL && !b->stopped && b->fed < b->n) {
        log_warn("event=bulk_stopped payer=%s batch=%s routed=%zu items=%zu why=\"its sessions "
                 "closed; a retry of the batch routes the rest\"",
                 b->payer, b->batch_id, b->fed, b->n);
        b->stopped = true;
    }
    if (b->stopped)
        return;
    for (int pass = 0; b->fed < b->n; pass++) {
        if (pass == BULK_FEED_PER_PASS) {
            event_active(b->ev, EV_TIMEOUT, 0); /* others' turn first */
            return;
        }
        int64_t wait_us = s->inflight >= bulk_share(session_max_inflight())
                              ? BULK_RECHECK_US
                              : session_transfer_token(s);
        if (wait_us > 0) {
            /* an answer of ours wakes it sooner */
            struct timeval tv = {wait_us / 1000000, wait_us % 1000000};
            event_add(b->ev, &tv);
            return;
        }
        size_t i = b->fed++; /* first: its answer may come at once */
        router_bulk_item(s, b->reply_base | i, b->msg->items[i]);
    }
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bulk *b = arg;
    if (b->state != BULK_ROUTING)
        return;
    feed(b);
    if (b->answered == b->fed && (b->fed == b->n || b->stopped))
        finish(b);
}

/* ---- intake ---- */

static int fingerprint(Sikka__V1__BulkCreditTransfer *m, unsigned char *out)
{
    int rc = -1;
    uint8_t *buf = NULL;
    size_t cap = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto fail;
    uint64_t n = m->n_items;
    EVP_DigestUpdate(ctx, &n, sizeof(n));
    for (size_t i = 0; i < m->n_items; i++) {
        Sikka__V1__CreditTransfer *ct = m->items[i];
        int64_t created = ct->created_at_ms; /* informative: not part of the batch */
        ct->created_at_ms = 0;
        uint64_t len = sikka__v1__credit_transfer__get_packed_size(ct);
        if (len > cap) {
            uint8_t *nb = realloc(buf, len);
            if (nb == NULL) {
                ct->created_at_ms = created;
                goto fail;
            }
            buf = nb;
            cap = len;
        }
        sikka__v1__credit_transfer__pack(ct, buf);
        ct->created_at_ms = created;
        EVP_DigestUpdate(ctx, &len, sizeof(len));
        EVP_DigestUpdate(ctx, buf, len);
    }
    if (EVP_DigestFinal_ex(ctx, out, NULL) != 1)
        goto fail;
    rc = 0;
fail:
    free(buf);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* A copy of the batch that outlives the frame's arena. */
static Sikka__V1__BulkCreditTransfer *copy_batch(const Sikka__V1__BulkCreditTransfer *m)
{
    size_t len = sikka__v1__bulk_credit_transfer__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return NULL;
    sikka__v1__bulk_credit_transfer__pack(m, buf);
    Sikka__V1__BulkCreditTransfer *copy = sikka__v1__bulk_credit_transfer__unpack(NULL, len, buf);
    free(buf);
    return copy;
}

static void start_routing(struct bulk *b, const char *how)
{
    log_info("event=bulk_routing payer=%s batch=%s items=%zu registration=%s", b->payer,
             b->batch_id, b->n, how);
    b->state = BULK_ROUTING;
    event_active(b->ev, EV_TIMEOUT, 0);
}

static void drop(struct bulk *b)
{
    bulk_unlink(b);
    bulk_destroy(b);
}

static void on_registered(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct bulk *b = arg;
    if (flags != PGCONN_OK || PQntuples(res) != 1) {
        log_error("event=bulk_register_failed payer=%s batch=%s why=\"%s\"", b->payer, b->batch_id,
                  flags != PGCONN_OK ? error : "no answer row");
        refuse_listeners(b, "NARR", "the ledger cannot record the batch right now; send it again",
                         true);
        drop(b);
        return;
    }
    const char *state = PQgetvalue(res, 0, 0);
    if (strcmp(state, "other") == 0) {
        refuse_listeners(b, "AM05", "batch_id already used for a batch with other items", false);
        drop(b);
        return;
    }
    start_routing(b, state);
}

void bulk_on_frame(struct session *s, const Sikka__V1__BulkCreditTransfer *m)
{
    char err[160], text[200];
    const char *payer = s->participant->code;
    if (text_check("bulk_credit_transfer.batch_id", m->batch_id, 1, BULK_BATCH_ID_MAX, TEXT_BYTES,
                   err, sizeof(err)) != 0) {
        refuse_batch(s, "", "FF01", err, false);
        return;
    }
    if (m->n_items == 0 || m->n_items > BULK_MAX_ITEMS) {
        snprintf(text, sizeof(text), "a batch holds 1..%d items, not %zu", BULK_MAX_ITEMS,
                 m->n_items);
        refuse_batch(s, m->batch_id, "AM18", text, false);
        return;
    }
    if (router_draining() || !ledger_accepting()) {
        refuse_batch(s, m->batch_id, "NARR",
                     router_draining() ? "the switch is shutting down; send the batch again"
                                       : "the ledger is unavailable right now; send the batch "
                                         "again shortly",
                     true);
        return;
    }
    struct bulk *b = calloc(1, sizeof(*b));
    if (b == NULL || (b->msg = copy_batch(m)) == NULL || fingerprint(b->msg, b->fp) != 0) {
        log_error("event=oom what=bulk session=%s", s->label);
        refuse_batch(s, m->batch_id, "NARR", "switch out of memory; send the batch again", true);
        if (b != NULL)
            bulk_destroy(b);
        return;
    }
    size_t mine = 0;
    for (struct bulk *o = B.list; o != NULL; o = o->next) {
        if (strcmp(o->payer, payer) != 0)
            continue;
        mine++;
        if (strcmp(o->batch_id, m->batch_id) != 0)
            continue;
        /* the same batch_id in flight: attach, or refuse other items */
        if (memcmp(o->fp, b->fp, BULK_FP_LEN) != 0)
            refuse_batch(s, m->batch_id, "AM05",
                         "batch_id already used for a batch with other items", false);
        else if (o->nlisteners == BULK_MAX_LISTENERS)
            refuse_batch(s, m->batch_id, "NARR", "too many retries of this batch in flight", true);
        else {
            o->listeners[o->nlisteners++] = s->id;
            log_info("event=bulk_attached session=%s batch=%s", s->label, o->batch_id);
            if (o->stopped) {
                /* its sessions had gone: this one routes the rest */
                o->stopped = false;
                if (o->state == BULK_ROUTING)
                    event_active(o->ev, EV_TIMEOUT, 0);
            }
        }
        bulk_destroy(b);
        return;
    }
    if (mine >= BULK_MAX_PER_PARTICIPANT) {
        snprintf(text, sizeof(text),
                 "%s has %zu batches in flight, the most allowed; send it again later", payer,
                 mine);
        refuse_batch(s, m->batch_id, "NARR", text, true);
        bulk_destroy(b);
        return;
    }
    b->n = m->n_items;
    b->results = calloc(b->n, sizeof(*b->results));
    b->ev = event_new(B.base, -1, 0, on_event, b);
    if (b->results == NULL || b->ev == NULL) {
        log_error("event=oom what=bulk session=%s", s->label);
        refuse_batch(s, m->batch_id, "NARR", "switch out of memory; send the batch again", true);
        bulk_destroy(b);
        return;
    }
    snprintf(b->payer, sizeof(b->payer), "%s", payer);
    snprintf(b->batch_id, sizeof(b->batch_id), "%s", m->batch_id);
    b->reply_base = BULK_REPLY_BIT | (++B.seq << BULK_INDEX_BITS);
    b->listeners[b->nlisteners++] = s->id;
    b->started_ms = transfer_now_ms();
    b->next = B.list;
    B.list = b;
    B.count++;

    char fp_hex[BULK_FP_LEN * 2 + 1], items[16];
    for (size_t i = 0; i < BULK_FP_LEN; i++)
        snprintf(fp_hex + 2 * i, 3, "%02x", b->fp[i]);
    snprintf(items, sizeof(items), "%zu", b->n);
    log_info("event=bulk_received session=%s batch=%s items=%zu", s->label, b->batch_id, b->n);
    const char *params[] = {b->payer, b->batch_id, fp_hex, items};
    if (pgconn_exec(B.db, SQL_BULK_REGISTER, 4, params, on_registered, b) != 0)
        on_registered(b, NULL, PGCONN_FAILED, "database not connected");
}
