#include "router.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idem.h"
#include "ledger.h"
#include "log.h"
#include "participant.h"
#include "session.h"
#include "transfer.h"

static struct {
    struct event_base *base;
    struct router_options opts;
    char currency[8];
    const struct timeval *payee_timeout; /* a libevent common timeout */
    uint64_t id_high;                    /* boot id << 32 */
    uint32_t id_low;
    struct transfer *free_list;
    size_t inflight;
    bool draining;
    struct router_stats stats;
} R;

static void on_ledger_done(struct transfer *t, enum ledger_result r,
                           const struct ledger_duplicate *dup);

int router_init(struct event_base *base, uint32_t boot_id)
{
    memset(&R, 0, sizeof(R));
    R.base = base;
    R.id_high = (uint64_t)boot_id << 32;
    struct router_options defaults = {5000, 100000000, "PKR"};
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

void router_free(void)
{
    while (R.free_list != NULL) {
        struct transfer *t = R.free_list;
        R.free_list = t->next;
        free(t);
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
    struct session *s = session_find(session_id);
    if (s == NULL)
        return; /* gone: the outcome waits in the index for a retry */
    Sikka__V1__StatusReport sr = SIKKA__V1__STATUS_REPORT__INIT;
    sr.transfer_id = o->transfer_id;
    sr.original_msg_id = (char *)o->msg_id;
    sr.original_end_to_end_id = (char *)o->end_to_end_id;
    sr.status = wire_status(o->status);
    sr.reason = (char *)(o->reason != NULL ? o->reason : "");
    sr.text = (char *)(o->text != NULL ? o->text : "");
    sr.amount = o->amount;
    sr.debtor_agent = (char *)o->debtor_agent;
    sr.creditor_agent = (char *)o->creditor_agent;
    sr.kind = SIKKA__V1__REPORT_KIND__REPORT_KIND_RESULT;
    sr.fee = to_payee ? o->fee : 0;
    sr.original_transfer_id = o->original_id;
    sr.settled_at_ms = o->settled_ms;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT;
    env.status_report = &sr;
    (void)session_send(s, &env);
}

static void outcome_of_transfer(const struct transfer *t, struct outcome *o)
{
    o->transfer_id = t->id;
    o->msg_id = t->msg_id;
    o->end_to_end_id = t->end_to_end_id;
    o->status = t->status;
    o->reason = t->reason;
    o->text = t->reason_text;
    o->amount = t->amount;
    o->fee = t->fee;
    o->debtor_agent = t->payer;
    o->creditor_agent = t->payee;
    o->original_id = t->original_id;
    o->settled_ms = t->settled_ms;
}

/* A rejection decided before any transfer id or record exists (format,
 * identity, duplicate key with another body): answered at once. */
static void reject_unrecorded(struct session *s, const char *msg_id, const char *e2e,
                              const char *reason, const char *text, int64_t amount,
                              const char *payee)
{
    char q[200];
    log_warn("event=transfer_rejected session=%s msg_id=%s reason=%s recorded=no text=%s",
             s->label, msg_id[0] ? msg_id : "-", reason, log_quote(text, q, sizeof(q)));
    struct outcome o = {0};
    o.msg_id = msg_id;
    o.end_to_end_id = e2e;
    o.status = TRANSFER_RJCT;
    o.reason = reason;
    o.text = text;
    o.amount = amount;
    o.debtor_agent = s->participant->code;
    o.creditor_agent = payee;
    send_report(s->id, &o, false);
    R.stats.rejected++;
}

/* Decides a rejection; it is recorded before anyone hears of it. */
static void reject(struct transfer *t, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reject(struct transfer *t, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->reason_text, sizeof(t->reason_text), fmt, ap);
    va_end(ap);
    snprintf(t->reason, sizeof(t->reason), "%s", reason);
    t->status = TRANSFER_RJCT;
    t->fee = 0;
    if (t->timer_armed) {
        evtimer_del(&t->timer);
        t->timer_armed = false;
    }
    char q[200];
    log_warn("event=transfer_rejected payer=%s msg_id=%s transfer=%" PRIu64
             " payee=%s amount=%" PRId64 " reason=%s text=%s",
             t->payer, t->msg_id, t->id, t->payee, t->amount, reason,
             log_quote(t->reason_text, q, sizeof(q)));
    t->state = TRANSFER_POSTING;
    ledger_submit(t);
}

static void send_stored(struct session *s, const struct idem_entry *e)
{
    struct outcome o = {0};
    o.transfer_id = e->transfer_id;
    o.msg_id = e->msg_id;
    o.end_to_end_id = e->end_to_end_id;
    o.status = e->status;
    o.reason = e->reason;
    o.text = e->status == TRANSFER_RJCT ? "rejected earlier; this is the stored outcome"
                                        : "settled earlier; this is the stored outcome";
    o.amount = e->amount;
    o.debtor_agent = e->payer;
    o.creditor_agent = e->payee;
    o.original_id = e->original_id;
    send_report(s->id, &o, false);
}

static void forward(struct transfer *t, struct session *payee)
{
    Sikka__V1__CreditTransfer ct = SIKKA__V1__CREDIT_TRANSFER__INIT;
    ct.msg_id = t->msg_id;
    ct.end_to_end_id = t->end_to_end_id;
    ct.debtor_agent = t->payer;
    ct.debtor_account = t->debtor_account;
    ct.debtor_name = t->debtor_name;
    ct.creditor_agent = t->payee;
    ct.creditor_account = t->creditor_account;
    ct.creditor_name = t->creditor_name;
    ct.amount = t->amount;
    ct.currency = t->currency;
    ct.purpose = t->purpose;
    ct.transfer_id = t->id;
    ct.created_at_ms = t->created_at_ms;
    Sikka__V1__Remittance rmt = SIKKA__V1__REMITTANCE__INIT;
    Sikka__V1__LoanInstalment loan = SIKKA__V1__LOAN_INSTALMENT__INIT;
    Sikka__V1__Invoice inv = SIKKA__V1__INVOICE__INIT;
    if (t->loan_id[0] != '\0') {
        loan.loan_id = t->loan_id;
        loan.instalment = t->instalment;
        rmt.kind_case = SIKKA__V1__REMITTANCE__KIND_LOAN;
        rmt.loan = &loan;
        ct.remittance = &rmt;
    } else if (t->invoice_number[0] != '\0') {
        inv.invoice_number = t->invoice_number;
        rmt.kind_case = SIKKA__V1__REMITTANCE__KIND_INVOICE;
        rmt.invoice = &inv;
        ct.remittance = &rmt;
    } else if (t->remittance_text[0] != '\0') {
        rmt.kind_case = SIKKA__V1__REMITTANCE__KIND_UNSTRUCTURED;
        rmt.unstructured = t->remittance_text;
        ct.remittance = &rmt;
    }
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER;
    env.credit_transfer = &ct;
    if (session_send(payee, &env) != 0) {
        reject(t, "AB08", "creditor agent %s could not be reached", t->payee);
        return;
    }
    t->forwarded = true;
    t->payee_session = payee->id;
    t->state = TRANSFER_AWAITING_PAYEE;
    evtimer_add(&t->timer, R.payee_timeout);
    t->timer_armed = true;
    log_debug("event=transfer_forwarded transfer=%" PRIu64 " payer=%s payee=%s session=%s",
              t->id, t->payer, t->payee, payee->label);
}

static void on_payee_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct transfer *t = arg;
    t->timer_armed = false;
    if (t->state != TRANSFER_AWAITING_PAYEE)
        return;
    reject(t, "AB05", "no decision from creditor agent %s within %" PRId64 " ms", t->payee,
           R.opts.payee_timeout_ms);
}

static void handle_credit_transfer(struct session *s, const Sikka__V1__CreditTransfer *ct)
{
    char reason[TRANSFER_REASON_MAX + 1], text[TRANSFER_TEXT_MAX + 1];
    if (R.draining) {
        session_reject(s, "NARR", "the switch is shutting down; retry the same msg_id shortly",
                       ct->msg_id, 0);
        return;
    }
    struct transfer *t = transfer_alloc();
    if (t == NULL) {
        session_reject(s, "NARR", "switch out of memory; retry", ct->msg_id, 0);
        return;
    }
    t->received_ms = transfer_now_ms();
    if (transfer_from_credit_transfer(t, ct, s->participant->code, reason, text, sizeof(text)) !=
        0) {
        if (t->msg_id[0] == '\0')
            session_reject(s, reason, text, NULL, 0);
        else
            reject_unrecorded(s, t->msg_id, ct->end_to_end_id, reason, text, ct->amount,
                              ct->creditor_agent);
        transfer_release(t);
        return;
    }
    transfer_fingerprint(t, t->fingerprint);

    struct idem_entry *e = idem_find(t->payer, t->msg_id);
    if (e != NULL) {
        if (memcmp(e->fingerprint, t->fingerprint, TRANSFER_FP_LEN) != 0) {
            reject_unrecorded(s, t->msg_id, t->end_to_end_id, "AM05",
                              "msg_id already used for a different transfer", t->amount, t->payee);
        } else if (e->inflight != NULL) {
            struct transfer *orig = e->inflight;
            if (orig->nwaiters < TRANSFER_WAITERS) {
                orig->waiters[orig->nwaiters++] = s->id;
                log_info("event=retry_attached session=%s msg_id=%s transfer=%" PRIu64, s->label,
                         t->msg_id, orig->id);
            } else {
                session_reject(s, "NARR", "too many retries of this msg_id in flight", t->msg_id,
                               orig->id);
            }
        } else {
            log_info("event=retry_answered session=%s msg_id=%s transfer=%" PRIu64 " status=%s",
                     s->label, t->msg_id, e->transfer_id, transfer_status_name(e->status));
            send_stored(s, e);
        }
        R.stats.duplicates++;
        transfer_release(t);
        return;
    }

    t->id = next_transfer_id();
    if (t->id == 0) {
        session_reject(s, "NARR", "switch cannot assign transfer ids; retry later", t->msg_id, 0);
        transfer_release(t);
        return;
    }
    t->idem = idem_add_inflight(t);
    if (t->idem == NULL) {
        session_reject(s, "NARR", "switch out of memory; retry", t->msg_id, 0);
        transfer_release(t);
        return;
    }
    t->payer_session = s->id;
    t->state = TRANSFER_NEW;
    R.inflight++;
    R.stats.received++;
    session_inflight_add(s, 1);

    struct participant *payer = s->participant;
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
    if (to == NULL) {
        reject(t, "AB08", "creditor agent %s is not connected", payee->code);
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
    if (position_reserve(&payer->pos, t->amount) != 0) {
        reject(t, "AM23", "net debit cap of %s exceeded: headroom %" PRId64 " paisa",
               payer->code, position_headroom(&payer->pos));
        return;
    }
    t->reserved = true;
    forward(t, to);
}

static void handle_decision(struct session *s, const Sikka__V1__PayeeDecision *d)
{
    char text[200];
    struct idem_entry *e = idem_find_id(d->transfer_id);
    if (e == NULL) {
        snprintf(text, sizeof(text), "transfer %" PRIu64 " is unknown", d->transfer_id);
        session_reject(s, "NARR", text, NULL, d->transfer_id);
        return;
    }
    struct transfer *t = e->inflight;
    const char *payee = t != NULL ? t->payee : e->payee;
    if (strcmp(payee, s->participant->code) != 0) {
        snprintf(text, sizeof(text), "%s is not the creditor agent of transfer %" PRIu64,
                 s->participant->code, d->transfer_id);
        session_reject(s, "RC01", text, NULL, d->transfer_id);
        return;
    }
    if (t == NULL || t->state != TRANSFER_AWAITING_PAYEE) {
        bool expired = t != NULL ? strcmp(t->reason, "AB05") == 0
                                 : (e->status == TRANSFER_RJCT && strcmp(e->reason, "AB05") == 0);
        if (expired)
            snprintf(text, sizeof(text), "transfer %" PRIu64 " expired: no decision within %" PRId64
                     " ms; it was rejected (AB05)", d->transfer_id, R.opts.payee_timeout_ms);
        else
            snprintf(text, sizeof(text), "transfer %" PRIu64 " is already decided",
                     d->transfer_id);
        session_reject(s, expired ? "AB05" : "NARR", text, NULL, d->transfer_id);
        return;
    }
    evtimer_del(&t->timer);
    t->timer_armed = false;
    if (!d->accept) {
        const char *code = transfer_reason_valid(d->reason) ? d->reason : "NARR";
        char q[TRANSFER_TEXT_MAX + 1];
        snprintf(q, sizeof(q), "%s", d->text);
        reject(t, code, "rejected by creditor agent %s%s%s", t->payee, q[0] ? ": " : "", q);
        return;
    }
    t->status = TRANSFER_ACSC;
    t->fee = 0;
    t->fee_payer[0] = '\0';
    t->state = TRANSFER_POSTING;
    ledger_submit(t);
}

static void finish(struct transfer *t)
{
    struct participant *payer = participant_find(t->payer);
    if (t->reserved && payer != NULL) {
        position_release(&payer->pos, t->amount);
        t->reserved = false;
    }
    struct session *ps = session_find(t->payer_session);
    if (ps != NULL)
        session_inflight_add(ps, -1);
    R.inflight--;
}

static void on_ledger_done(struct transfer *t, enum ledger_result r,
                           const struct ledger_duplicate *dup)
{
    struct outcome o;
    finish(t);
    if (r == LEDGER_WRITTEN) {
        t->state = TRANSFER_DONE;
        t->settled_ms = transfer_now_ms();
        outcome_of_transfer(t, &o);
        if (t->status == TRANSFER_ACSC) {
            R.stats.settled++;
            log_info("event=transfer_settled transfer=%" PRIu64 " payer=%s payee=%s msg_id=%s "
                     "amount=%" PRId64 " fee=%" PRId64 " purpose=%s",
                     t->id, t->payer, t->payee, t->msg_id, t->amount, t->fee,
                     transfer_purpose_name(t->purpose));
        } else {
            R.stats.rejected++;
        }
        send_report(t->payer_session, &o, false);
        for (unsigned i = 0; i < t->nwaiters; i++)
            send_report(t->waiters[i], &o, false);
        if (t->forwarded)
            send_report(t->payee_session, &o, true);
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
    if (r == LEDGER_DUPLICATE) {
        log_warn("event=duplicate_key payer=%s msg_id=%s transfer=%" PRIu64
                 " stored_transfer=%" PRIu64 " same_request=%d",
                 t->payer, t->msg_id, t->id, dup->stored_id, dup->same_request);
        o.reason = "AM05";
        o.text = "duplicate: this msg_id was already used";
        if (t->forwarded)
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
            stored.original_id = t->original_id;
            stored.finished_ms = transfer_now_ms();
            struct idem_entry *e = idem_add_finished(&stored);
            struct session *ps = session_find(t->payer_session);
            if (e != NULL && ps != NULL)
                send_stored(ps, e);
            for (unsigned i = 0; i < t->nwaiters; i++) {
                struct session *ws = session_find(t->waiters[i]);
                if (e != NULL && ws != NULL)
                    send_stored(ws, e);
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
                  t->payer, t->msg_id, t->id);
        o.reason = "NARR";
        o.text = "could not be recorded";
        if (t->forwarded)
            send_report(t->payee_session, &o, true);
        struct session *ps = session_find(t->payer_session);
        if (ps != NULL)
            session_reject(ps, "NARR", "the switch could not record this transfer; retry",
                           t->msg_id, t->id);
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
    default: {
        char text[120];
        snprintf(text, sizeof(text), "%s is not a message participants send",
                 codec_body_name(env));
        session_reject(s, "FF01", text, NULL, 0);
        break;
    }
    }
}

ledger_done_cb router_ledger_callback(void)
{
    return on_ledger_done;
}
