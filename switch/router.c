#include "router.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alias.h"
#include "bulk.h"
#include "idem.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "participant.h"
#include "recorder.h"
#include "rtp.h"
#include "session.h"
#include "sql.h"
#include "sync.h"
#include "text.h"
#include "transfer.h"

#define PURPOSES 4 /* indexed by Sikka__V1__Purpose */

static struct {
    struct event_base *base;
    struct pgconn *db;
    struct router_options opts;
    char currency[8];
    const struct timeval *payee_timeout; /* a libevent common timeout */
    uint64_t id_high;                    /* boot id << 32 */
    int64_t started_ms;                  /* router_init: a start or a takeover */
    uint32_t id_low;
    struct transfer *free_list;
    struct hmap returns; /* struct return_group by original id: in-flight returns */
    size_t inflight;
    bool draining;
    struct fee_rule fees[PURPOSES];
    struct router_stats stats;
} R;

static void on_ledger_done(struct transfer *t, enum ledger_result r,
                           const struct ledger_duplicate *dup);

int router_init(struct event_base *base, uint32_t boot_id, struct pgconn *db)
{
    memset(&R, 0, sizeof(R));
    R.base = base;
    R.db = db;
    R.id_high = (uint64_t)boot_id << 32;
    if (hmap_init(&R.returns, 64) != 0)
        return -1;
    R.started_ms = transfer_now_ms();
    struct router_options defaults = {5000, 100000000, "PKR", 80, 10000};
    router_configure(&defaults);
    return 0;
}

void router_configure(const struct router_options *opts)
{
    R.opts = *opts;
    snprintf(R.currency, sizeof(R.currency), "%s", opts->currency);
    R.opts.currency = R.currency;
    struct timeval tv = {opts->payee_timeout_ms / 1000, (opts->payee_timeout_ms % 1000) * 1000};
    R.payee_timeout = event_base_init_common_timeout(R.base, &tv);
}

void router_set_fee(Sikka__V1__Purpose purpose, const struct fee_rule *rule)
{
    if ((unsigned)purpose < PURPOSES)
        R.fees[purpose] = *rule;
}

void router_get_fee(Sikka__V1__Purpose purpose, struct fee_rule *out)
{
    memset(out, 0, sizeof(*out));
    if ((unsigned)purpose < PURPOSES)
        *out = R.fees[purpose];
}

int64_t router_warn_percent(void)
{
    return R.opts.ndc_warn_percent;
}

int64_t router_max_amount(void)
{
    return R.opts.max_amount;
}

int64_t router_payee_timeout_ms(void)
{
    return R.opts.payee_timeout_ms;
}

/* In-flight returns of one original, counted from the moment the original
 * has been checked (state AWAITING_PAYEE) until the payee's decision or the
 * rejection: what they would take from it on top of what the ledger says
 * is returned already. Owned by the router's `returns` map; freed when its
 * count drops to 0. One lookup per return, however many are in flight. */
struct return_group {
    struct hnode node;
    uint64_t original_id;
    int64_t pending; /* sum of the counted returns' amounts */
    size_t count;
};

static bool eq_original(const struct hnode *n, const void *key)
{
    return hmap_entry(n, struct return_group, node)->original_id == *(const uint64_t *)key;
}

static struct return_group *returns_group(uint64_t original_id)
{
    struct hnode *n = hmap_find(&R.returns, hmap_hash_u64(original_id), eq_original, &original_id);
    return n != NULL ? hmap_entry(n, struct return_group, node) : NULL;
}

void router_free(void)
{
    while (R.free_list != NULL) {
        struct transfer *t = R.free_list;
        R.free_list = t->next;
        free(t);
    }
    if (R.returns.buckets != NULL) {
        hmap_settle(&R.returns);
        for (size_t i = 0; i <= R.returns.mask; i++) {
            struct hnode *n = R.returns.buckets[i];
            while (n != NULL) {
                struct hnode *next = n->next;
                free(hmap_entry(n, struct return_group, node));
                n = next;
            }
        }
        hmap_destroy(&R.returns);
    }
}

void router_drain(void)
{
    R.draining = true;
}

bool router_draining(void)
{
    return R.draining;
}

size_t router_inflight(void)
{
    return R.inflight;
}

void router_get_stats(struct router_stats *out)
{
    *out = R.stats;
}

void router_check_cap(struct participant *p)
{
    int used = position_used_percent(&p->pos);
    bool over = p->pos.ndc > 0 && used >= R.opts.ndc_warn_percent;
    if (over && !p->cap_warned) {
        log_warn("event=ndc_warning participant=%s used_percent=%d threshold=%" PRId64
                 " posted=%" PRId64 " reserved=%" PRId64 " ndc=%" PRId64,
                 p->code, used, R.opts.ndc_warn_percent, p->pos.posted, p->pos.reserved,
                 p->pos.ndc);
        p->cap_warned = true;
    } else if (!over && p->cap_warned) {
        log_info("event=ndc_warning_cleared participant=%s used_percent=%d", p->code, used);
        p->cap_warned = false;
    }
}

static void on_payee_timeout(evutil_socket_t fd, short what, void *arg);

static struct transfer *transfer_alloc(void)
{
    struct transfer *t = R.free_list;
    if (t != NULL)
        R.free_list = t->next;
    else
        t = malloc(sizeof(*t));
    if (t == NULL) {
        log_error("event=oom what=transfer");
        return NULL;
    }
    memset(t, 0, sizeof(*t));
    evtimer_assign(&t->timer, R.base, on_payee_timeout, t);
    return t;
}

static void transfer_release(struct transfer *t)
{
    if (t->timer_armed) {
        evtimer_del(&t->timer);
        t->timer_armed = false;
    }
    t->next = R.free_list;
    R.free_list = t;
}

static uint64_t next_transfer_id(void)
{
    /* 2^32 ids per boot; a new boot id comes with every start */
    if (R.id_low == UINT32_MAX) {
        log_error("event=transfer_ids_exhausted why=\"restart the switch for a new boot id\"");
        return 0;
    }
    return R.id_high | ++R.id_low;
}

/* In-flight returns are counted against their original until they are
 * decided, so two returns of one original cannot together exceed it. */
static int returns_count(struct transfer *t)
{
    struct return_group *g = returns_group(t->original_id);
    if (g == NULL) {
        g = calloc(1, sizeof(*g));
        if (g == NULL) {
            log_error("event=oom what=return_group");
            return -1;
        }
        g->original_id = t->original_id;
        if (hmap_insert(&R.returns, &g->node, hmap_hash_u64(t->original_id)) != 0) {
            free(g);
            return -1;
        }
    }
    g->pending += t->amount;
    g->count++;
    t->return_counted = true;
    return 0;
}

/* Stops counting t (any time, any number of times). */
static void returns_unlink(struct transfer *t)
{
    if (!t->return_counted)
        return;
    t->return_counted = false;
    struct return_group *g = returns_group(t->original_id);
    if (g == NULL)
        return;
    g->pending -= t->amount;
    if (--g->count == 0) {
        hmap_remove(&R.returns, &g->node);
        free(g);
    }
}

static int64_t returns_pending(uint64_t original_id)
{
    const struct return_group *g = returns_group(original_id);
    return g != NULL ? g->pending : 0;
}

/* What a status report says, from a live transfer or a stored outcome. */
struct outcome {
    uint64_t transfer_id;
    const char *msg_id;
    const char *end_to_end_id;
    enum transfer_status status;
    const char *reason;
    const char *text;
    int64_t amount;
    int64_t fee;
    const char *debtor_agent;
    const char *creditor_agent;
    uint64_t original_id;
    int64_t settled_ms;
    const char *query_id; /* set: an answer to a status query */
    /* pay by alias: the payee's masked name, for the payer */
    const char *masked_name;
};

static Sikka__V1__TxStatus wire_status(enum transfer_status s)
{
    switch (s) {
    case TRANSFER_ACSC:
        return SIKKA__V1__TX_STATUS__ACSC;
    case TRANSFER_RJCT:
        return SIKKA__V1__TX_STATUS__RJCT;
    default:
        return SIKKA__V1__TX_STATUS__PDNG;
    }
}

static void send_report(uint64_t session_id, const struct outcome *o, bool to_payee)
{
    bool bulk = !to_payee && bulk_is_reply(session_id);
    struct session *s = bulk ? NULL : session_find(session_id);
    if (s == NULL && to_payee) {
        /* the payee's session is gone: another of its sessions hears it
         * (and if none, the outbox keeps it for the next one) */
        struct participant *p = participant_find(o->creditor_agent);
        s = p != NULL ? session_pick(p) : NULL;
    }
    if (s == NULL && !bulk)
        return; /* gone: the outcome waits in the index (or the outbox) */
    Sikka__V1__StatusReport sr = SIKKA__V1__STATUS_REPORT__INIT;
    sr.transfer_id = o->transfer_id;
    sr.original_msg_id = (char *)o->msg_id;
    sr.original_end_to_end_id = (char *)(o->end_to_end_id != NULL ? o->end_to_end_id : "");
    sr.status = wire_status(o->status);
    sr.reason = (char *)(o->reason != NULL ? o->reason : "");
    sr.text = (char *)(o->text != NULL ? o->text : "");
    sr.amount = o->amount;
    sr.debtor_agent = (char *)(o->debtor_agent != NULL ? o->debtor_agent : "");
    sr.creditor_agent = (char *)(o->creditor_agent != NULL ? o->creditor_agent : "");
    sr.kind = o->query_id != NULL ? SIKKA__V1__REPORT_KIND__REPORT_KIND_QUERY
                                  : SIKKA__V1__REPORT_KIND__REPORT_KIND_RESULT;
    sr.query_id = (char *)(o->query_id != NULL ? o->query_id : "");
    sr.fee = o->fee;
    sr.original_transfer_id = o->original_id;
    sr.settled_at_ms = o->settled_ms;
    sr.to_payee = to_payee && o->query_id == NULL;
    if (bulk) {
        bulk_item_answer(session_id, &sr, NULL);
        return;
    }
    sr.creditor_masked_name = (char *)(!to_payee && o->masked_name != NULL ? o->masked_name : "");
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT;
    env.status_report = &sr;
    (void)session_send(s, &env);
}

/* A retryable refusal (nothing recorded) to the sender of a message: a
 * session by id, or a bulk item's reply id. */
static void refuse_to(uint64_t reply, const char *text, const char *msg_id, uint64_t transfer_id)
{
    if (bulk_is_reply(reply)) {
        bulk_item_answer(reply, NULL, text);
        return;
    }
    struct session *s = session_find(reply);
    if (s != NULL)
        session_refuse(s, text, msg_id, transfer_id);
}

/* The fee a party bears, as its report says: a transfer's fee charged to
 * it, or (negative) the part of the original's fee a return refunds it. */
static int64_t party_fee(enum transfer_kind kind, int64_t fee, const char *fee_payer,
                         const char *party)
{
    if (fee <= 0 || strcmp(fee_payer, party) != 0)
        return 0;
    return kind == TRANSFER_KIND_RETURN ? -fee : fee;
}

static int64_t fee_for(const struct transfer *t, const char *party)
{
    return party_fee(t->kind, t->fee, t->fee_payer, party);
}

void router_send_notice(struct session *s, PGresult *res, int row)
{
    /* sql.c OUTBOX_COLUMNS */
    struct outcome o = {0};
    o.transfer_id = strtoull(PQgetvalue(res, row, 0), NULL, 10);
    enum transfer_kind kind = strcmp(PQgetvalue(res, row, 1), "return") == 0
                                  ? TRANSFER_KIND_RETURN
                                  : TRANSFER_KIND_TRANSFER;
    o.status = strcmp(PQgetvalue(res, row, 2), "ACSC") == 0 ? TRANSFER_ACSC : TRANSFER_RJCT;
    o.reason = PQgetvalue(res, row, 3);
    o.debtor_agent = PQgetvalue(res, row, 4);
    o.creditor_agent = PQgetvalue(res, row, 5);
    o.msg_id = PQgetvalue(res, row, 6);
    o.end_to_end_id = PQgetvalue(res, row, 7);
    o.amount = strtoll(PQgetvalue(res, row, 8), NULL, 10);
    o.fee = party_fee(kind, strtoll(PQgetvalue(res, row, 9), NULL, 10), PQgetvalue(res, row, 12),
                      o.creditor_agent);
    o.original_id = strtoull(PQgetvalue(res, row, 10), NULL, 10);
    o.settled_ms = strtoll(PQgetvalue(res, row, 11), NULL, 10);
    o.text = PQgetvalue(res, row, 13);
    send_report(s->id, &o, true);
}

static void handle_report_ack(struct session *s, const Sikka__V1__ReportAck *ack)
{
    if (ack->n_transfer_ids == 0 || ack->n_transfer_ids > 1000) {
        session_reject(s, "FF01", "a report_ack names 1..1000 transfer ids", NULL, 0);
        return;
    }
    outbox_ack(s->participant, ack->transfer_ids, ack->n_transfer_ids);
}

static void outcome_of_transfer(const struct transfer *t, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->transfer_id = t->id;
    o->msg_id = t->msg_id;
    o->end_to_end_id = t->end_to_end_id;
    o->status = t->status;
    o->reason = t->reason;
    o->text = t->reason_text;
    o->amount = t->amount;
    o->debtor_agent = t->payer;
    o->creditor_agent = t->payee;
    o->original_id = t->original_id;
    o->settled_ms = t->settled_ms;
    o->masked_name = t->creditor_masked;
}

/* A rejection decided before any transfer id or record exists (format,
 * identity, duplicate key with another body): answered at once. */
static void reject_unrecorded(struct session *s, uint64_t reply, const char *msg_id,
                              const char *e2e, const char *reason, const char *text, int64_t amount,
                              const char *payee)
{
    char q[200], qm[96];
    log_warn("event=transfer_rejected session=%s msg_id=%s reason=%s recorded=no text=%s", s->label,
             log_quote(msg_id, qm, sizeof(qm)), reason, log_quote(text, q, sizeof(q)));
    struct outcome o = {0};
    o.msg_id = msg_id;
    o.end_to_end_id = e2e;
    o.status = TRANSFER_RJCT;
    o.reason = reason;
    o.text = text;
    o.amount = amount;
    o.debtor_agent = s->participant->code;
    o.creditor_agent = payee;
    send_report(reply, &o, false);
    R.stats.rejected++;
    metrics_transfer_rejected(reason, s->participant->index);
}

/* Decides a rejection; it is recorded before anyone hears of it. */
static void reject(struct transfer *t, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reject(struct transfer *t, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* the text may carry a peer's (the payee's narrative behind our words):
     * cut to the limit of every text, on a character boundary */
    transfer_vset_reason(t, reason, fmt, ap);
    va_end(ap);
    t->status = TRANSFER_RJCT;
    t->fee = 0;
    t->fee_payer[0] = '\0';
    if (t->timer_armed) {
        evtimer_del(&t->timer);
        t->timer_armed = false;
    }
    if (t->kind == TRANSFER_KIND_RETURN)
        returns_unlink(t);
    if (t->forwarded_ms == 0)
        recorder_transfer(t, 0, NULL, false); /* decided before the payee saw it */
    char q[200], qm[96];
    log_warn("event=transfer_rejected payer=%s msg_id=%s transfer=%" PRIu64
             " payee=%s amount=%" PRId64 " reason=%s text=%s",
             t->payer, log_quote(t->msg_id, qm, sizeof(qm)), t->id, t->payee, t->amount, reason,
             log_quote(t->reason_text, q, sizeof(q)));
    t->state = TRANSFER_POSTING;
    t->decided_ms = transfer_now_ms();
    ledger_submit(t);
}

static void send_stored(uint64_t session_id, const struct idem_entry *e, const char *query_id)
{
    struct outcome o = {0};
    o.transfer_id = e->transfer_id;
    o.msg_id = e->msg_id;
    o.end_to_end_id = e->end_to_end_id;
    o.status = e->status;
    o.reason = e->reason;
    /* exactly the first answer: its text, its fee, its settlement time */
    o.text = e->reason_text != NULL ? e->reason_text : "";
    o.fee = party_fee(e->kind, e->fee, e->fee_payer, e->payer);
    o.amount = e->amount;
    o.debtor_agent = e->payer;
    o.creditor_agent = e->payee;
    o.original_id = e->original_id;
    o.settled_ms = e->finished_ms;
    o.query_id = query_id;
    send_report(session_id, &o, false);
}

static void arm_timeout(struct transfer *t, struct session *payee)
{
    t->forwarded_ms = transfer_now_ms();
    t->payee_session = payee->id;
    t->state = TRANSFER_AWAITING_PAYEE;
    evtimer_add(&t->timer, R.payee_timeout);
    t->timer_armed = true;
    log_debug("event=transfer_forwarded transfer=%" PRIu64 " kind=%s payer=%s payee=%s "
              "session=%s",
              t->id, t->kind == TRANSFER_KIND_RETURN ? "return" : "transfer", t->payer, t->payee,
              payee->label);
}

static void forward_transfer(struct transfer *t, struct session *payee)
{
    struct transfer_wire w;
    transfer_to_wire(t, t->id, &w);
    if (session_send(payee, &w.env) != 0) {
        reject(t, "AB08", "creditor agent %s could not be reached", t->payee);
        return;
    }
    arm_timeout(t, payee);
}

static void forward_return(struct transfer *t, struct session *payee)
{
    Sikka__V1__PaymentReturn pr = SIKKA__V1__PAYMENT_RETURN__INIT;
    pr.msg_id = t->msg_id;
    pr.original_transfer_id = t->original_id;
    pr.amount = t->amount;
    pr.reason = t->return_reason;
    pr.text = t->remittance_text;
    pr.transfer_id = t->id;
    pr.original_msg_id = t->original_msg_id;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_PAYMENT_RETURN;
    env.payment_return = &pr;
    if (session_send(payee, &env) != 0) {
        reject(t, "AB08", "creditor agent %s could not be reached", t->payee);
        return;
    }
    arm_timeout(t, payee);
}

static void on_payee_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct transfer *t = arg;
    t->timer_armed = false;
    if (t->state != TRANSFER_AWAITING_PAYEE)
        return;
    recorder_transfer(t, 2, NULL, false);
    reject(t, "AB05", "no decision from creditor agent %s within %" PRId64 " ms", t->payee,
           R.opts.payee_timeout_ms);
}

/* Fingerprints t and looks its key up (transfers and returns alike).
 * Returns true, with t released, when the index answered the message: a
 * retry of a known request or a reused key. */
static bool answered_by_index(struct session *s, uint64_t reply, struct transfer *t)
{
    transfer_fingerprint(t, t->fingerprint);
    struct idem_entry *e = idem_find(t->payer, t->msg_id);
    if (e == NULL)
        return false;
    if (memcmp(e->fingerprint, t->fingerprint, TRANSFER_FP_LEN) != 0) {
        reject_unrecorded(s, reply, t->msg_id, t->end_to_end_id, "AM05",
                          "msg_id already used for a different transfer", t->amount, t->payee);
    } else if (e->inflight != NULL) {
        struct transfer *orig = e->inflight;
        recorder_transfer(t, 0, NULL, true);
        if (orig->nwaiters < TRANSFER_WAITERS) {
            orig->waiters[orig->nwaiters++] = reply;
            char qm[96];
            log_info("event=retry_attached session=%s msg_id=%s transfer=%" PRIu64, s->label,
                     log_quote(t->msg_id, qm, sizeof(qm)), orig->id);
        } else {
            refuse_to(reply, "too many retries of this msg_id in flight", t->msg_id, orig->id);
        }
    } else {
        recorder_transfer(t, 0, NULL, true);
        char qm[96];
        log_info("event=retry_answered session=%s msg_id=%s transfer=%" PRIu64 " status=%s",
                 s->label, log_quote(t->msg_id, qm, sizeof(qm)), e->transfer_id,
                 transfer_status_name(e->status));
        send_stored(reply, e, NULL);
    }
    R.stats.duplicates++;
    transfer_release(t);
    return true;
}

/* Gives t an id and an index entry; false (answered, t released) on failure. */
static bool admit(struct session *s, uint64_t reply, struct transfer *t)
{
    t->id = next_transfer_id();
    if (t->id == 0) {
        refuse_to(reply, "switch cannot assign transfer ids; retry later", t->msg_id, 0);
        transfer_release(t);
        return false;
    }
    t->idem = idem_add_inflight(t);
    if (t->idem == NULL) {
        refuse_to(reply, "switch out of memory; retry", t->msg_id, 0);
        transfer_release(t);
        return false;
    }
    t->payer_session = reply;
    t->counted_session = s->id;
    t->payer_index = s->participant->index;
    t->state = TRANSFER_NEW;
    R.inflight++;
    R.stats.received++;
    metrics_transfer_received(t);
    session_inflight_add(s, 1);
    return true;
}

/* Turns an admitted transfer away retryably: nothing of it is recorded,
 * its payer (and any retry attached) may send the same msg_id again. */
static void refuse_admitted(struct transfer *t, const char *text)
{
    char qm[96];
    log_info("event=transfer_refused payer=%s msg_id=%s transfer=%" PRIu64
             " payee=%s why=\"%s\" retry=yes",
             t->payer, log_quote(t->msg_id, qm, sizeof(qm)), t->id, t->payee, text);
    if (t->kind == TRANSFER_KIND_RETURN)
        returns_unlink(t);
    refuse_to(t->payer_session, text, t->msg_id, 0);
    struct session *s = session_find(t->counted_session);
    if (s != NULL)
        session_inflight_add(s, -1);
    for (unsigned i = 0; i < t->nwaiters; i++)
        refuse_to(t->waiters[i], text, t->msg_id, 0);
    R.stats.refused_unavailable++;
    idem_remove(t->idem);
    t->idem = NULL;
    R.inflight--;
    transfer_release(t);
}

/* Participants, amount, currency, cap; then forward. Shared by transfers
 * and returns (whose payee is the original's payer). */
static void route(struct transfer *t, struct participant *payer)
{
    struct participant *payee = participant_find(t->payee);
    if (payer->status != PARTICIPANT_ACTIVE) {
        reject(t, "AG10", "debtor agent %s is suspended", payer->code);
        return;
    }
    if (payee == NULL) {
        reject(t, "RC04", "creditor agent %s is not a participant", t->payee);
        return;
    }
    if (payee->status != PARTICIPANT_ACTIVE) {
        reject(t, "AG11", "creditor agent %s is suspended", payee->code);
        return;
    }
    struct session *to = session_pick(payee);
    if (to == NULL && payee->nsessions == 0 &&
        transfer_now_ms() - R.started_ms < R.opts.reconnect_grace_ms) {
        /* just started or taken over: its participants are still coming back */
        refuse_admitted(t, "creditor agent has not reconnected since the switch started; send the "
                           "same msg_id again shortly");
        return;
    }
    if (to == NULL) {
        reject(t, "AB08", "creditor agent %s is not connected%s", payee->code,
               payee->nsessions > 0 ? " or not reading" : "");
        return;
    }
    if (t->amount <= 0 || t->amount > R.opts.max_amount) {
        reject(t, "AM02", "amount %" PRId64 " paisa is outside 1..%" PRId64, t->amount,
               R.opts.max_amount);
        return;
    }
    if (strcmp(t->currency, R.currency) != 0) {
        reject(t, "AM03", "currency must be %s", R.currency);
        return;
    }
    /* a payment must leave its payee something (README, "Fees") */
    if (t->kind == TRANSFER_KIND_TRANSFER && t->fee > 0 && t->fee >= t->amount) {
        reject(t, "AM06",
               "amount %" PRId64 " paisa is too low for %s: its fee of %" PRId64
               " paisa would take all of it",
               t->amount, transfer_purpose_name(t->purpose), t->fee);
        return;
    }
    /* the payer's position holds what it will be debited: the amount, and a
     * transfer's fee when the payer pays it (a return's refund is a credit) */
    int64_t hold = t->amount;
    if (t->kind == TRANSFER_KIND_TRANSFER && t->fee > 0 && strcmp(t->fee_payer, payer->code) == 0 &&
        __builtin_add_overflow(t->amount, t->fee, &hold)) {
        reject(t, "AM02", "amount and fee overflow");
        return;
    }
    if (participant_reserve(payer, hold, &t->cap_epoch) != 0) {
        reject(t, "AM23", "net debit cap of %s exceeded: headroom %" PRId64 " paisa", payer->code,
               position_headroom(&payer->pos));
        return;
    }
    t->reserved = true;
    t->reserved_amount = hold;
    router_check_cap(payer);
    if (t->kind == TRANSFER_KIND_RETURN)
        forward_return(t, to);
    else
        forward_transfer(t, to);
}

/* A peer's msg_id when it is one the switch may echo (it passes its
 * check), else NULL. */
static const char *echoable_id(const char *msg_id)
{
    char err[96];
    return text_check("msg_id", msg_id, 1, TRANSFER_ID_MAX, TEXT_BYTES, err, sizeof(err)) == 0
               ? msg_id
               : NULL;
}

/* A fresh struct transfer for a message from s, or NULL when the switch is
 * draining or out of memory (both answered with a retryable reject). */
static struct transfer *intake(struct session *s, uint64_t reply, const char *peer_msg_id)
{
    const char *msg_id = echoable_id(peer_msg_id);
    if (R.draining) {
        refuse_to(reply, "the switch is shutting down; retry the same msg_id shortly", msg_id, 0);
        return NULL;
    }
    if (!ledger_accepting()) {
        /* nothing is recorded: turned away at once rather than held past the
         * payer's own timeout while the database is gone */
        refuse_to(reply, "the ledger is unavailable right now; send the same msg_id again shortly",
                  msg_id, 0);
        R.stats.refused_unavailable++;
        return NULL;
    }
    struct transfer *t = transfer_alloc();
    if (t == NULL) {
        refuse_to(reply, "switch out of memory; retry", msg_id, 0);
        return NULL;
    }
    t->received_ms = transfer_now_ms();
    t->received_us = s->frame_us;
    return t;
}

/* Pay by alias: the directory names the payee and its account (forwarded
 * to the payee only); the payer hears the holder's masked name. False when
 * rejected (BE23, recorded like every rejection). */
static bool resolve_alias(struct transfer *t)
{
    struct alias_target at;
    char reason[5], text[200];
    if (alias_resolve(t->payer, "creditor_alias", t->creditor_alias, &at, reason, text,
                      sizeof(text)) != 0) {
        reject(t, reason, "%s", text);
        return false;
    }
    snprintf(t->payee, sizeof(t->payee), "%s", at.participant);
    snprintf(t->creditor_account, sizeof(t->creditor_account), "%s", at.account);
    snprintf(t->creditor_masked, sizeof(t->creditor_masked), "%s", at.masked_name);
    return true;
}

/* rtp.c checked a payment of a request to pay (and bound it to it). */
static void on_request_bound(struct transfer *t, const char *reason, const char *text)
{
    struct participant *payer = participant_find(t->payer);
    if (reason != NULL)
        reject(t, reason, "%s", text);
    else if (payer == NULL)
        reject(t, "AG10", "debtor agent %s is unknown", t->payer);
    else
        route(t, payer);
}

/* A credit transfer from s; its answers go to `reply`: s's own id, or a
 * bulk item's reply id (bulk.h), whose answer the bulk collects. Either way
 * the transfer counts against s's in-flight cap. */
static void credit_transfer_in(struct session *s, uint64_t reply,
                               const Sikka__V1__CreditTransfer *ct)
{
    char reason[TRANSFER_REASON_MAX + 1], text[TRANSFER_TEXT_MAX + 1];
    struct transfer *t = intake(s, reply, ct->msg_id);
    if (t == NULL)
        return;
    if (transfer_from_credit_transfer(t, ct, s->participant->code, reason, text, sizeof(text)) !=
        0) {
        /* echoes only what passed its check: t's copies */
        if (t->msg_id[0] != '\0' || bulk_is_reply(reply))
            reject_unrecorded(s, reply, t->msg_id, t->end_to_end_id, reason, text, ct->amount,
                              t->payee);
        else
            session_reject(s, reason, text, NULL, 0);
        transfer_release(t);
        return;
    }
    if (answered_by_index(s, reply, t))
        return;
    if (!admit(s, reply, t))
        return;
    if (t->creditor_alias[0] != '\0' && !resolve_alias(t))
        return;
    const struct fee_rule *rule = &R.fees[(unsigned)t->purpose < PURPOSES ? t->purpose : 0];
    t->fee = transfer_fee(t->amount, rule);
    if (t->fee > 0)
        memcpy(t->fee_payer, rule->payee_pays ? t->payee : t->payer, sizeof(t->fee_payer));
    if (t->request_id != 0) {
        rtp_bind_payment(t, on_request_bound); /* pays a request to pay: checked first */
        return;
    }
    route(t, s->participant);
}

static void handle_credit_transfer(struct session *s, const Sikka__V1__CreditTransfer *ct)
{
    credit_transfer_in(s, s->id, ct);
}

void router_bulk_item(struct session *s, uint64_t reply, const Sikka__V1__CreditTransfer *ct)
{
    credit_transfer_in(s, reply, ct);
}

/* The one answer to a return whose original the returner may not see:
 * none with that id, another participant's, or an id the ledger cannot
 * even hold (above INT64_MAX, never sent to SQL). */
static void return_not_found(struct transfer *t)
{
    reject(t, "AG01", "no transfer %" PRIu64 " to return", t->original_id);
}

/* A return's original, as the ledger knows it. */
static void on_return_original(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct transfer *t = arg;
    if (flags != PGCONN_OK) {
        /* nothing decided: the retry will look again */
        char qm[96];
        log_error("event=return_lookup_failed payer=%s msg_id=%s transfer=%" PRIu64 " why=\"%s\"",
                  t->payer, log_quote(t->msg_id, qm, sizeof(qm)), t->id, error);
        returns_unlink(t);
        struct session *s = session_find(t->payer_session);
        if (s != NULL) {
            session_refuse(s, "the ledger cannot be read right now; retry", t->msg_id, t->id);
            session_inflight_add(s, -1);
        }
        idem_remove(t->idem);
        R.inflight--;
        transfer_release(t);
        return;
    }
    struct participant *payer = participant_find(t->payer);
    if (PQntuples(res) == 0) {
        return_not_found(t);
        return;
    }
    const char *kind = PQgetvalue(res, 0, 1), *status = PQgetvalue(res, 0, 2);
    const char *orig_payer = PQgetvalue(res, 0, 4), *orig_payee = PQgetvalue(res, 0, 5);
    int64_t orig_amount = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
    int64_t returned = strtoll(PQgetvalue(res, 0, 13), NULL, 10);
    /* another participant's transfer is answered exactly like one that does
     * not exist (no oracle), before anything else is said about it; the log
     * says the truth */
    if (strcmp(orig_payee, t->payer) != 0) {
        char qm[96];
        log_warn("event=return_not_creditor payer=%s msg_id=%s transfer=%" PRIu64
                 " original=%" PRIu64 " original_payee=%s answer=unknown",
                 t->payer, log_quote(t->msg_id, qm, sizeof(qm)), t->id, t->original_id, orig_payee);
        return_not_found(t);
        return;
    }
    if (strcmp(kind, "return") == 0) {
        reject(t, "AG01", "transfer %" PRIu64 " is itself a return; a return cannot be returned",
               t->original_id);
        return;
    }
    if (strcmp(status, "ACSC") != 0) {
        reject(t, "AG01", "transfer %" PRIu64 " was not settled; nothing to return",
               t->original_id);
        return;
    }
    /* the ledger's copies of checked strings: they fit, but a cut would
     * still end on a character boundary */
    (void)text_copy_truncated(t->payee, sizeof(t->payee), orig_payer);
    (void)text_copy_truncated(t->original_msg_id, sizeof(t->original_msg_id),
                              PQgetvalue(res, 0, 6));
    (void)text_copy_truncated(t->end_to_end_id, sizeof(t->end_to_end_id), PQgetvalue(res, 0, 7));
    (void)text_copy_truncated(t->currency, sizeof(t->currency), PQgetvalue(res, 0, 12));
    t->purpose = SIKKA__V1__PURPOSE__PURPOSE_UNSPECIFIED;
    int64_t pending = returns_pending(t->original_id);
    int64_t left = orig_amount - returned - pending;
    if (t->amount <= 0 || t->amount > left) {
        reject(t, "AM02",
               "return of %" PRId64 " paisa: %" PRId64 " of transfer %" PRIu64 " is left to return",
               t->amount, left < 0 ? 0 : left, t->original_id);
        return;
    }
    /* The original's fee, refunded pro rata to whoever paid it: what the
     * returns up to and including this one earn, less what those before it
     * did (the database derives the same, schema/004). */
    int64_t orig_fee = strtoll(PQgetvalue(res, 0, 9), NULL, 10);
    if (orig_fee > 0 && orig_amount > 0) {
        __int128 before = (__int128)returned + pending;
        __int128 refund = (__int128)orig_fee * (before + t->amount) / orig_amount -
                          (__int128)orig_fee * before / orig_amount;
        t->fee = (int64_t)refund;
        snprintf(t->fee_payer, sizeof(t->fee_payer), "%s", PQgetvalue(res, 0, 14));
    }
    t->state = TRANSFER_AWAITING_PAYEE; /* counted as pending from here */
    if (returns_count(t) != 0) {
        reject(t, "NARR", "switch out of memory; retry with a new msg_id");
        return;
    }
    route(t, payer);
}

static void handle_return(struct session *s, const Sikka__V1__PaymentReturn *pr)
{
    char reason[TRANSFER_REASON_MAX + 1], text[TRANSFER_TEXT_MAX + 1];
    struct transfer *t = intake(s, s->id, pr->msg_id);
    if (t == NULL)
        return;
    if (transfer_from_return(t, pr, s->participant->code, reason, text, sizeof(text)) != 0) {
        session_reject(s, reason, text, t->msg_id[0] ? t->msg_id : NULL, 0);
        transfer_release(t);
        return;
    }
    if (answered_by_index(s, s->id, t))
        return;
    if (!admit(s, s->id, t))
        return;
    if (t->original_id > TRANSFER_LEDGER_ID_MAX) {
        return_not_found(t);
        return;
    }
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, t->original_id);
    const char *params[] = {id};
    if (pgconn_exec(R.db, SQL_RETURN_ORIGINAL, 1, params, on_return_original, t) != 0) {
        /* answered as if the lookup failed, from here */
        on_return_original(t, NULL, PGCONN_FAILED, "database not connected");
    }
}

/* The one answer to a decision for a transfer the sender may not see:
 * none with that id, or another participant's. */
static void decision_not_found(struct session *s, uint64_t transfer_id)
{
    char text[80];
    snprintf(text, sizeof(text), "transfer %" PRIu64 " is unknown", transfer_id);
    session_reject(s, "NARR", text, NULL, transfer_id);
}

static void handle_decision(struct session *s, const Sikka__V1__PayeeDecision *d)
{
    char text[200];
    /* format first: its answer says nothing about the transfer */
    if (transfer_check_decision(d, text, sizeof(text)) != 0) {
        session_reject(s, "FF01", text, NULL, d->transfer_id);
        return;
    }
    struct idem_entry *e = idem_find_id(d->transfer_id);
    if (e == NULL) {
        decision_not_found(s, d->transfer_id);
        return;
    }
    struct transfer *t = e->inflight;
    const char *payee = t != NULL ? t->payee : e->payee;
    if (strcmp(payee, s->participant->code) != 0) {
        /* exactly the answer to an unknown id (no oracle); the log says why */
        log_warn("event=decision_not_creditor session=%s transfer=%" PRIu64
                 " payee=%s answer=unknown",
                 s->label, d->transfer_id, payee);
        decision_not_found(s, d->transfer_id);
        return;
    }
    if (t == NULL || t->state != TRANSFER_AWAITING_PAYEE || t->forwarded_ms == 0) {
        bool expired = t != NULL ? strcmp(t->reason, "AB05") == 0
                                 : (e->status == TRANSFER_RJCT && strcmp(e->reason, "AB05") == 0);
        if (expired)
            snprintf(text, sizeof(text),
                     "transfer %" PRIu64 " expired: no decision within %" PRId64
                     " ms; it was rejected (AB05)",
                     d->transfer_id, R.opts.payee_timeout_ms);
        else
            snprintf(text, sizeof(text), "transfer %" PRIu64 " is already decided", d->transfer_id);
        session_reject(s, expired ? "AB05" : "NARR", text, NULL, d->transfer_id);
        return;
    }
    evtimer_del(&t->timer);
    t->timer_armed = false;
    if (!d->accept) {
        const char *code = d->reason[0] != '\0' ? d->reason : "NARR";
        recorder_transfer(t, 1, code, false);
        /* the payee's text is checked (at most TRANSFER_TEXT_MAX characters);
         * behind our words reject() cuts it on a character boundary */
        reject(t, code, "rejected by creditor agent %s%s%s", t->payee, d->text[0] ? ": " : "",
               d->text);
        return;
    }
    if (t->kind == TRANSFER_KIND_RETURN)
        returns_unlink(t);
    recorder_transfer(t, 0, NULL, false);
    t->status = TRANSFER_ACSC;
    t->state = TRANSFER_POSTING;
    t->decided_ms = transfer_now_ms();
    ledger_submit(t);
}

/* ---- status queries (pacs.028) ---- */

struct query {
    uint64_t session;
    char participant[5];
    char query_id[TRANSFER_ID_MAX + 1];
    char msg_id[TRANSFER_ID_MAX + 1];
    uint64_t transfer_id;
};

static void query_not_found(uint64_t session_id, const struct query *q)
{
    struct session *s = session_find(session_id);
    if (s == NULL)
        return;
    char text[160];
    if (q->msg_id[0] != '\0')
        snprintf(text, sizeof(text), "no transfer with msg_id %s from %s is known", q->msg_id,
                 q->participant);
    else
        snprintf(text, sizeof(text), "no transfer %" PRIu64 " of %s is known", q->transfer_id,
                 q->participant);
    session_reject(s, "NARR", text, q->msg_id, q->transfer_id);
}

static void on_query_result(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct query *q = arg;
    session_query_end(q->session);
    struct session *s = session_find(q->session);
    if (flags != PGCONN_OK) {
        log_error("event=status_query_failed participant=%s why=\"%s\"", q->participant, error);
        if (s != NULL)
            session_refuse(s, "the ledger cannot be read right now; retry", q->msg_id,
                           q->transfer_id);
        free(q);
        return;
    }
    /* a party of the transfer only: anything else looks exactly like unknown */
    if (PQntuples(res) == 0 || (strcmp(PQgetvalue(res, 0, 4), q->participant) != 0 &&
                                strcmp(PQgetvalue(res, 0, 5), q->participant) != 0)) {
        query_not_found(q->session, q);
        free(q);
        return;
    }
    struct outcome o = {0};
    o.transfer_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    o.status = strcmp(PQgetvalue(res, 0, 2), "ACSC") == 0 ? TRANSFER_ACSC : TRANSFER_RJCT;
    o.reason = PQgetvalue(res, 0, 3);
    o.debtor_agent = PQgetvalue(res, 0, 4);
    o.creditor_agent = PQgetvalue(res, 0, 5);
    o.msg_id = PQgetvalue(res, 0, 6);
    o.end_to_end_id = PQgetvalue(res, 0, 7);
    o.amount = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
    o.original_id = strtoull(PQgetvalue(res, 0, 10), NULL, 10);
    o.settled_ms = strtoll(PQgetvalue(res, 0, 11), NULL, 10);
    o.query_id = q->query_id;
    o.text = PQgetvalue(res, 0, 15);
    o.fee =
        party_fee(strcmp(PQgetvalue(res, 0, 1), "return") == 0 ? TRANSFER_KIND_RETURN
                                                               : TRANSFER_KIND_TRANSFER,
                  strtoll(PQgetvalue(res, 0, 9), NULL, 10), PQgetvalue(res, 0, 14), q->participant);
    send_report(q->session, &o, false);
    free(q);
}

static void handle_status_query(struct session *s, const Sikka__V1__StatusQuery *sq)
{
    const char *me = s->participant->code;
    char text[160];
    if (transfer_check_query(sq, text, sizeof(text)) != 0) {
        session_reject(s, "FF01", text, NULL, 0);
        return;
    }
    struct idem_entry *e =
        sq->msg_id[0] != '\0' ? idem_find(me, sq->msg_id) : idem_find_id(sq->transfer_id);
    if (e != NULL) {
        const char *payee = e->inflight != NULL ? e->inflight->payee : e->payee;
        if (strcmp(e->payer, me) != 0 && strcmp(payee, me) != 0)
            e = NULL; /* another participant's: not visible */
    }
    if (e != NULL && e->inflight != NULL) {
        const struct transfer *t = e->inflight;
        struct outcome o;
        outcome_of_transfer(t, &o);
        o.status = TRANSFER_PENDING;
        o.reason = "";
        o.text = transfer_state_name(t->state);
        o.query_id = sq->query_id;
        send_report(s->id, &o, false);
        return;
    }
    if (e != NULL) {
        send_stored(s->id, e, sq->query_id);
        return;
    }
    if (!session_query_begin(s)) {
        session_refuse(s, "too many status queries waiting for the ledger; send it again later",
                       sq->msg_id, sq->transfer_id);
        return;
    }
    struct query *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        session_query_end(s->id);
        session_refuse(s, "switch out of memory; retry", sq->msg_id, sq->transfer_id);
        return;
    }
    q->session = s->id;
    snprintf(q->participant, sizeof(q->participant), "%s", me);
    snprintf(q->query_id, sizeof(q->query_id), "%s", sq->query_id);
    snprintf(q->msg_id, sizeof(q->msg_id), "%s", sq->msg_id);
    q->transfer_id = sq->transfer_id;
    if (q->transfer_id > TRANSFER_LEDGER_ID_MAX) {
        /* no transfer has such an id; never sent to SQL (bigint) */
        query_not_found(q->session, q);
        free(q);
        return;
    }
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, sq->transfer_id);
    const char *by_msg[] = {me, sq->msg_id};
    const char *by_id[] = {id};
    int rc = sq->msg_id[0] != '\0'
                 ? pgconn_exec(R.db, SQL_STATUS_BY_MSG_ID, 2, by_msg, on_query_result, q)
                 : pgconn_exec(R.db, SQL_STATUS_BY_ID, 1, by_id, on_query_result, q);
    if (rc != 0)
        on_query_result(q, NULL, PGCONN_FAILED, "database not connected");
}

/* ---- outcomes ---- */

static void finish(struct transfer *t)
{
    struct participant *payer = participant_find(t->payer);
    if (t->reserved && payer != NULL) {
        participant_release(payer, t->reserved_amount, t->cap_epoch);
        t->reserved = false;
        router_check_cap(payer);
        sync_grace_check(payer);
    }
    struct session *ps = session_find(t->counted_session);
    if (ps != NULL)
        session_inflight_add(ps, -1);
    R.inflight--;
}

static void on_ledger_done(struct transfer *t, enum ledger_result r,
                           const struct ledger_duplicate *dup)
{
    struct outcome o;
    if (t->kind == TRANSFER_KIND_RETURN)
        returns_unlink(t);
    finish(t);
    if (t->request_id != 0 && t->kind == TRANSFER_KIND_TRANSFER)
        rtp_payment_done(t, r == LEDGER_WRITTEN && t->status == TRANSFER_ACSC);
    if (r == LEDGER_WRITTEN) {
        t->state = TRANSFER_DONE; /* settled_ms: the ledger's recorded time */
        outcome_of_transfer(t, &o);
        if (t->status == TRANSFER_ACSC) {
            R.stats.settled++;
            metrics_transfer_settled(t);
            char qm[96];
            log_debug("event=transfer_settled transfer=%" PRIu64 " kind=%s payer=%s payee=%s "
                      "msg_id=%s amount=%" PRId64 " fee=%" PRId64 " purpose=%s",
                      t->id, t->kind == TRANSFER_KIND_RETURN ? "return" : "transfer", t->payer,
                      t->payee, log_quote(t->msg_id, qm, sizeof(qm)), t->amount, t->fee,
                      transfer_purpose_name(t->purpose));
            struct participant *payee = participant_find(t->payee);
            if (payee != NULL) {
                router_check_cap(payee);
                sync_grace_check(payee); /* a credit may bring it back within its cap */
            }
        } else {
            R.stats.rejected++;
            metrics_transfer_rejected(t->reason, t->payer_index);
        }
        o.fee = fee_for(t, t->payer);
        send_report(t->payer_session, &o, false);
        for (unsigned i = 0; i < t->nwaiters; i++)
            send_report(t->waiters[i], &o, false);
        if (t->forwarded_ms != 0) {
            o.fee = fee_for(t, t->payee);
            send_report(t->payee_session, &o, true);
        }
        idem_finish(t->idem, t);
        transfer_release(t);
        return;
    }

    /* Nothing of this transfer was written. Tell the payee it will not
     * settle, and the payer what the database knows of its key. */
    idem_remove(t->idem);
    t->idem = NULL;
    t->status = TRANSFER_RJCT;
    outcome_of_transfer(t, &o);
    char qm[96];
    if (r == LEDGER_DUPLICATE) {
        log_warn("event=duplicate_key payer=%s msg_id=%s transfer=%" PRIu64
                 " stored_transfer=%" PRIu64 " same_request=%d",
                 t->payer, log_quote(t->msg_id, qm, sizeof(qm)), t->id, dup->stored_id,
                 dup->same_request);
        o.reason = "AM05";
        o.text = "duplicate: this msg_id was already used";
        if (t->forwarded_ms != 0)
            send_report(t->payee_session, &o, true);
        if (dup->same_request) {
            struct idem_entry stored;
            memset(&stored, 0, sizeof(stored));
            memcpy(stored.payer, t->payer, sizeof(stored.payer));
            memcpy(stored.msg_id, t->msg_id, sizeof(stored.msg_id));
            memcpy(stored.fingerprint, t->fingerprint, sizeof(stored.fingerprint));
            stored.transfer_id = dup->stored_id;
            stored.kind = t->kind;
            stored.status = dup->stored_status;
            memcpy(stored.reason, dup->stored_reason, sizeof(stored.reason));
            memcpy(stored.payee, t->payee, sizeof(stored.payee));
            memcpy(stored.end_to_end_id, t->end_to_end_id, sizeof(stored.end_to_end_id));
            stored.amount = t->amount;
            stored.fee = dup->stored_fee;
            memcpy(stored.fee_payer, dup->stored_fee_payer, sizeof(stored.fee_payer));
            stored.original_id = t->original_id;
            stored.finished_ms = dup->stored_ms;
            stored.reason_text = (char *)dup->stored_text; /* copied by the index */
            struct idem_entry *e = idem_add_finished(&stored);
            if (e != NULL) {
                send_stored(t->payer_session, e, NULL);
                for (unsigned i = 0; i < t->nwaiters; i++)
                    send_stored(t->waiters[i], e, NULL);
            }
        } else {
            o.transfer_id = 0;
            send_report(t->payer_session, &o, false);
            for (unsigned i = 0; i < t->nwaiters; i++)
                send_report(t->waiters[i], &o, false);
        }
        R.stats.duplicates++;
    } else {
        log_error("event=transfer_abandoned payer=%s msg_id=%s transfer=%" PRIu64
                  " why=\"could not be recorded; the payer may retry\"",
                  t->payer, log_quote(t->msg_id, qm, sizeof(qm)), t->id);
        o.reason = "NARR";
        o.text = "could not be recorded";
        if (t->forwarded_ms != 0)
            send_report(t->payee_session, &o, true);
        refuse_to(t->payer_session, "the switch could not record this transfer; retry", t->msg_id,
                  t->id);
        /* retries attached to it (a bulk's item among them) hear it too */
        for (unsigned i = 0; i < t->nwaiters; i++)
            refuse_to(t->waiters[i], "the switch could not record this transfer; retry", t->msg_id,
                      t->id);
    }
    transfer_release(t);
}

void router_on_frame(struct session *s, const Envelope *env)
{
    switch (env->body_case) {
    case SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER:
        handle_credit_transfer(s, env->credit_transfer);
        break;
    case SIKKA__V1__ENVELOPE__BODY_DECISION:
        handle_decision(s, env->decision);
        break;
    case SIKKA__V1__ENVELOPE__BODY_PAYMENT_RETURN:
        handle_return(s, env->payment_return);
        break;
    case SIKKA__V1__ENVELOPE__BODY_STATUS_QUERY:
        handle_status_query(s, env->status_query);
        break;
    case SIKKA__V1__ENVELOPE__BODY_REPORT_ACK:
        handle_report_ack(s, env->report_ack);
        break;
    case SIKKA__V1__ENVELOPE__BODY_BULK_CREDIT_TRANSFER:
        bulk_on_frame(s, env->bulk_credit_transfer);
        break;
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY:
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_DECISION:
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_CANCEL:
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_CONTROL:
        rtp_on_frame(s, env);
        break;
    case SIKKA__V1__ENVELOPE__BODY_ALIAS_REQUEST:
        alias_on_request(s, env->alias_request);
        break;
    default: {
        char text[120];
        snprintf(text, sizeof(text), "%s is not a message participants send", codec_body_name(env));
        session_reject(s, "FF01", text, NULL, 0);
        break;
    }
    }
}

ledger_done_cb router_ledger_callback(void)
{
    return on_ledger_done;
}
