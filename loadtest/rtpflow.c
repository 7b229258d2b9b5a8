#include "rtpflow.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "clock.h"
#include "log.h"
#include "msg.h"

static const char *const kind_names[RTPFLOW_KINDS] = {"accept", "decline", "cancel", "expire"};

void rtpflow_opts_defaults(struct rtpflow_opts *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->port = 7443;
    o->creditor = "KOKO";
    o->debtor = "JAZZ";
    o->run_id = "1";
    o->count = 20;
    o->mix[RTPFLOW_ACCEPT] = 70;
    o->mix[RTPFLOW_DECLINE] = 10;
    o->mix[RTPFLOW_CANCEL] = 10;
    o->mix[RTPFLOW_EXPIRE] = 10;
    o->amount = 150000;
    o->timeout_ms = 5000;
}

int rtpflow_parse_mix(struct rtpflow_opts *o, const char *text, char *err, size_t errlen)
{
    unsigned mix[RTPFLOW_KINDS] = {0};
    const char *p = text;
    while (*p != '\0') {
        size_t k;
        for (k = 0; k < RTPFLOW_KINDS; k++) {
            size_t n = strlen(kind_names[k]);
            if (strncmp(p, kind_names[k], n) == 0 && p[n] == '=') {
                p += n + 1;
                break;
            }
        }
        char *end;
        unsigned long v = k < RTPFLOW_KINDS ? strtoul(p, &end, 10) : 0;
        if (k == RTPFLOW_KINDS || end == p || v > 1000000 || (*end != ',' && *end != '\0')) {
            snprintf(err, errlen, "--mix wants accept=N,decline=N,cancel=N,expire=N, not \"%s\"",
                     text);
            return -1;
        }
        mix[k] = (unsigned)v;
        p = *end == ',' ? end + 1 : end;
    }
    unsigned sum = 0;
    for (size_t k = 0; k < RTPFLOW_KINDS; k++)
        sum += mix[k];
    if (sum == 0) {
        snprintf(err, errlen, "--mix: at least one weight must be above 0");
        return -1;
    }
    memcpy(o->mix, mix, sizeof(mix));
    return 0;
}

/* The kind of request i: the mix spread evenly (smooth weighted round robin,
 * deterministic). */
static enum rtpflow_kind kind_of(const struct rtpflow_opts *o, int64_t credit[RTPFLOW_KINDS])
{
    int64_t total = 0;
    size_t best = 0;
    for (size_t k = 0; k < RTPFLOW_KINDS; k++) {
        credit[k] += o->mix[k];
        total += o->mix[k];
        if (credit[k] > credit[best])
            best = k;
    }
    credit[best] -= total;
    return (enum rtpflow_kind)best;
}

struct flow {
    const struct rtpflow_opts *o;
    struct rtpflow_result *r;
    struct client *cred, *debt;
    char why[320];
};

static void fail(struct flow *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct flow *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->why, sizeof(f->why), fmt, ap);
    va_end(ap);
}

/* The next frame on c that is not a heartbeat, if it is of this body. */
static Envelope *next(struct flow *f, struct client *c, const char *side, int body)
{
    int64_t deadline = mono_ms() + f->o->timeout_ms;
    for (;;) {
        int64_t left = deadline - mono_ms();
        Envelope *e = left > 0 ? client_recv(c, (int)left) : NULL;
        if (e == NULL) {
            fail(f, "%s: no frame within %d ms%s%s", side, f->o->timeout_ms,
                 client_is_closed(c) ? ": " : "",
                 client_is_closed(c) ? client_close_reason(c) : "");
            return NULL;
        }
        if (e->body_case == SIKKA__V1__ENVELOPE__BODY_HEARTBEAT) {
            client_envelope_free(e);
            continue;
        }
        if ((int)e->body_case == body)
            return e;
        if (e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT)
            fail(f, "%s: rejected %s %s", side, e->message_reject->reason, e->message_reject->text);
        else
            fail(f, "%s: expected body %d, got %s", side, body, codec_body_name(e));
        client_envelope_free(e);
        return NULL;
    }
}

/* The next frame on c is a RequestStatus of request id in state s. */
static bool status(struct flow *f, struct client *c, const char *side, uint64_t id,
                   Sikka__V1__RequestState s)
{
    Envelope *e = next(f, c, side, SIKKA__V1__ENVELOPE__BODY_REQUEST_STATUS);
    if (e == NULL)
        return false;
    bool ok = e->request_status->request_id == id && e->request_status->state == s;
    if (!ok)
        fail(f, "%s: request %" PRIu64 " state %d, expected request %" PRIu64 " state %d", side,
             e->request_status->request_id, (int)e->request_status->state, id, (int)s);
    client_envelope_free(e);
    return ok;
}

/* The next frame on c is the StatusReport of msg_id with this status and
 * reason; its transfer id in *tid. */
static bool report(struct flow *f, struct client *c, const char *side, const char *msg_id,
                   Sikka__V1__TxStatus st, const char *reason, uint64_t *tid)
{
    Envelope *e = next(f, c, side, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT);
    if (e == NULL)
        return false;
    const Sikka__V1__StatusReport *sr = e->status_report;
    bool ok = strcmp(sr->original_msg_id, msg_id) == 0 && sr->status == st &&
              strcmp(sr->reason, reason) == 0;
    if (!ok)
        fail(f, "%s: report for %s: status %d %s, expected %d %s", side, sr->original_msg_id,
             (int)sr->status, sr->reason, (int)st, reason);
    if (tid != NULL)
        *tid = sr->transfer_id;
    client_envelope_free(e);
    return ok;
}

static bool send_env(struct flow *f, struct client *c, const Envelope *env)
{
    if (client_send(c, env) == 0)
        return true;
    fail(f, "cannot send: %s", client_is_closed(c) ? client_close_reason(c) : "send failed");
    return false;
}

static bool pay(struct flow *f, const char *msg_id, uint64_t id, const char *account,
                const char *ref)
{
    struct msg_transfer t;
    char err[256];
    struct msg_transfer_fields tf = {
        .msg_id = msg_id,
        .debtor_agent = f->o->debtor,
        .debtor_account = account,
        .creditor_agent = f->o->creditor,
        .creditor_account = "LENDER-1",
        .amount = f->o->amount,
        .purpose = SIKKA__V1__PURPOSE__BNPL_REPAYMENT,
        .ref = ref,
    };
    if (msg_transfer_init(&t, &tf, err, sizeof(err)) != 0) {
        fail(f, "payment: %s", err);
        return false;
    }
    t.ct.request_id = id;
    return send_env(f, f->debt, &t.env);
}

/* One request, start to end. Returns true when it ended as planned. */
static bool one(struct flow *f, uint64_t i, enum rtpflow_kind kind)
{
    const struct rtpflow_opts *o = f->o;
    char msg_id[MSG_ID_MAX + 1], loan[MSG_ID_MAX + 1], account[MSG_ACCOUNT_MAX + 1],
        debtor[MSG_ACCOUNT_MAX + 8], ref[MSG_ID_MAX + 8];
    snprintf(msg_id, sizeof(msg_id), "RQF-%s-%" PRIu64, o->run_id, i);
    snprintf(loan, sizeof(loan), "RQF-%s-%" PRIu64, o->run_id, i);
    snprintf(account, sizeof(account), "C%s-%" PRIu64, o->run_id, i);
    snprintf(debtor, sizeof(debtor), "%s@%s", account, o->debtor);
    snprintf(ref, sizeof(ref), "%s/1", loan);
    int64_t t0 = mono_us();

    Sikka__V1__RequestToPay m = SIKKA__V1__REQUEST_TO_PAY__INIT;
    Sikka__V1__Remittance rm = SIKKA__V1__REMITTANCE__INIT;
    Sikka__V1__LoanInstalment li = SIKKA__V1__LOAN_INSTALMENT__INIT;
    li.loan_id = loan;
    li.instalment = 1;
    rm.kind_case = SIKKA__V1__REMITTANCE__KIND_LOAN;
    rm.loan = &li;
    m.msg_id = msg_id;
    m.creditor_agent = (char *)o->creditor;
    m.creditor_account = (char *)"LENDER-1";
    m.debtor = debtor;
    m.amount = o->amount;
    m.purpose = SIKKA__V1__PURPOSE__BNPL_REPAYMENT;
    m.remittance = &rm;
    m.expires_in_s = kind == RTPFLOW_EXPIRE ? 1 : 600;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY;
    env.request_to_pay = &m;
    if (!send_env(f, f->cred, &env))
        return false;
    Envelope *e = next(f, f->cred, "creditor", SIKKA__V1__ENVELOPE__BODY_REQUEST_STATUS);
    if (e == NULL)
        return false;
    uint64_t id = e->request_status->request_id;
    if (e->request_status->state == SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED) {
        if (f->r->refused++ == 0)
            snprintf(f->r->first_refusal, sizeof(f->r->first_refusal), "%s %s",
                     e->request_status->reason, e->request_status->text);
        client_envelope_free(e);
        return true; /* the switch's answer; counted, not a failure of the flow */
    }
    bool delivered = e->request_status->state == SIKKA__V1__REQUEST_STATE__REQUEST_DELIVERED;
    client_envelope_free(e);
    if (!delivered) {
        fail(f, "request %s: not delivered at once", msg_id);
        return false;
    }
    e = next(f, f->debt, "debtor", SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY);
    if (e == NULL)
        return false;
    bool same = e->request_to_pay->request_id == id;
    client_envelope_free(e);
    if (!same) {
        fail(f, "debtor: delivery of another request than %" PRIu64, id);
        return false;
    }

    Sikka__V1__RequestDecision d = SIKKA__V1__REQUEST_DECISION__INIT;
    Sikka__V1__RequestCancel rc = SIKKA__V1__REQUEST_CANCEL__INIT;
    d.request_id = id;
    rc.request_id = id;
    Envelope out = SIKKA__V1__ENVELOPE__INIT;
    switch (kind) {
    case RTPFLOW_DECLINE:
        d.accept = false;
        d.reason = (char *)"MS02";
        out.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_DECISION;
        out.request_decision = &d;
        return send_env(f, f->debt, &out) &&
               status(f, f->debt, "debtor", id, SIKKA__V1__REQUEST_STATE__REQUEST_DECLINED) &&
               status(f, f->cred, "creditor", id, SIKKA__V1__REQUEST_STATE__REQUEST_DECLINED);
    case RTPFLOW_CANCEL:
        out.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_CANCEL;
        out.request_cancel = &rc;
        return send_env(f, f->cred, &out) &&
               status(f, f->cred, "creditor", id, SIKKA__V1__REQUEST_STATE__REQUEST_CANCELLED) &&
               status(f, f->debt, "debtor", id, SIKKA__V1__REQUEST_STATE__REQUEST_CANCELLED);
    case RTPFLOW_EXPIRE:
        return status(f, f->cred, "creditor", id, SIKKA__V1__REQUEST_STATE__REQUEST_EXPIRED) &&
               status(f, f->debt, "debtor", id, SIKKA__V1__REQUEST_STATE__REQUEST_EXPIRED);
    default:
        break;
    }
    d.accept = true;
    out.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_DECISION;
    out.request_decision = &d;
    if (!send_env(f, f->debt, &out) ||
        !status(f, f->debt, "debtor", id, SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED) ||
        !status(f, f->cred, "creditor", id, SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED))
        return false;
    char pay_id[MSG_ID_MAX + 1], pay2[MSG_ID_MAX + 1];
    snprintf(pay_id, sizeof(pay_id), "RQF-P-%s-%" PRIu64, o->run_id, i);
    snprintf(pay2, sizeof(pay2), "RQF-Q-%s-%" PRIu64, o->run_id, i);
    if (!pay(f, pay_id, id, account, ref))
        return false;
    /* the creditor's participant, as the payee, accepts the linked transfer */
    e = next(f, f->cred, "creditor", SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER);
    if (e == NULL)
        return false;
    uint64_t tid = e->credit_transfer->transfer_id;
    bool linked = e->credit_transfer->request_id == id;
    client_envelope_free(e);
    if (!linked) {
        fail(f, "creditor: transfer %" PRIu64 " does not name request %" PRIu64, tid, id);
        return false;
    }
    struct msg_decision pd;
    char err[128];
    if (msg_decision_init(&pd, tid, true, NULL, NULL, err, sizeof(err)) != 0 ||
        !send_env(f, f->cred, &pd.env))
        return false;
    uint64_t settled = 0, again = 0;
    if (!status(f, f->cred, "creditor", id, SIKKA__V1__REQUEST_STATE__REQUEST_PAID))
        return false;
    double ms = (double)(mono_us() - t0) / 1000.0;
    f->r->paid_ms_sum += ms;
    if (ms > f->r->paid_ms_max)
        f->r->paid_ms_max = ms;
    if (!report(f, f->cred, "creditor", pay_id, SIKKA__V1__TX_STATUS__ACSC, "", NULL) ||
        !status(f, f->debt, "debtor", id, SIKKA__V1__REQUEST_STATE__REQUEST_PAID) ||
        !report(f, f->debt, "debtor", pay_id, SIKKA__V1__TX_STATUS__ACSC, "", &settled))
        return false;
    /* paid once: the same payment again is a retry, another one is DUPL */
    if (!pay(f, pay_id, id, account, ref) ||
        !report(f, f->debt, "debtor", pay_id, SIKKA__V1__TX_STATUS__ACSC, "", &again))
        return false;
    if (again != settled) {
        fail(f, "retry of %s answered with transfer %" PRIu64 ", not %" PRIu64, pay_id, again,
             settled);
        return false;
    }
    if (!pay(f, pay2, id, account, ref) ||
        !report(f, f->debt, "debtor", pay2, SIKKA__V1__TX_STATUS__RJCT, "DUPL", NULL))
        return false;
    f->r->paid_once++;
    return true;
}

int rtpflow_run(const struct rtpflow_opts *o, struct rtpflow_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    struct flow f = {.o = o, .r = r};
    char cert[2][PATH_MAX], key[2][PATH_MAX], ca[PATH_MAX];
    snprintf(ca, sizeof(ca), "%s/ca.crt", o->pki);
    struct event_base *base = event_base_new();
    SSL_CTX *ctx[2] = {NULL, NULL};
    struct client *c[2] = {NULL, NULL};
    const char *codes[2] = {o->creditor, o->debtor};
    int rc = -1;
    if (base == NULL) {
        snprintf(err, errlen, "cannot create an event loop");
        goto done;
    }
    for (int k = 0; k < 2; k++) {
        snprintf(cert[k], sizeof(cert[k]), "%s/%s.crt", o->pki, codes[k]);
        snprintf(key[k], sizeof(key[k]), "%s/%s.key", o->pki, codes[k]);
        struct client_opts co = {.host = o->host,
                                 .port = o->port,
                                 .cert = cert[k],
                                 .key = key[k],
                                 .ca = ca,
                                 .await_ready = true};
        ctx[k] = client_ssl_ctx(&co, err, errlen);
        if (ctx[k] == NULL)
            goto done;
        c[k] = client_connect_sync(base, ctx[k], &co, 10000, err, errlen);
        if (c[k] == NULL)
            goto done;
    }
    f.cred = c[0];
    f.debt = c[1];
    int64_t credit[RTPFLOW_KINDS] = {0};
    for (uint64_t i = 0; i < o->count; i++) {
        enum rtpflow_kind kind = kind_of(o, credit);
        r->planned[kind]++;
        f.why[0] = '\0';
        uint64_t refused = r->refused;
        if (one(&f, i, kind)) {
            if (r->refused == refused)
                r->ended[kind]++;
            continue;
        }
        if (r->failures++ == 0)
            snprintf(r->first_failure, sizeof(r->first_failure), "request %" PRIu64 " (%s): %.256s",
                     i, kind_names[kind], f.why);
        log_error("event=rtpflow_failed request=%" PRIu64 " kind=%s why=\"%s\"", i,
                  kind_names[kind], f.why);
        if (client_is_closed(f.cred) || client_is_closed(f.debt))
            break;
        /* what is left of that flow would be read as the next one's */
        Envelope *e;
        while ((e = client_recv(f.cred, 200)) != NULL)
            client_envelope_free(e);
        while ((e = client_recv(f.debt, 200)) != NULL)
            client_envelope_free(e);
    }
    rc = 0;
done:
    for (int k = 0; k < 2; k++) {
        client_free(c[k]);
        if (ctx[k] != NULL)
            SSL_CTX_free(ctx[k]);
    }
    if (base != NULL)
        event_base_free(base);
    return rc;
}

void rtpflow_print(FILE *out, const struct rtpflow_opts *o, const struct rtpflow_result *r)
{
    uint64_t total = 0, ended = 0;
    for (size_t k = 0; k < RTPFLOW_KINDS; k++) {
        total += r->planned[k];
        ended += r->ended[k];
    }
    fprintf(out, "requests %" PRIu64 " from %s to %s: ended as planned %" PRIu64 "\n", total,
            o->creditor, o->debtor, ended);
    for (size_t k = 0; k < RTPFLOW_KINDS; k++)
        fprintf(out, "  %-8s planned %" PRIu64 " ended %" PRIu64 "\n", kind_names[k], r->planned[k],
                r->ended[k]);
    fprintf(out,
            "paid once (retry answered with the first transfer, second payment DUPL): %" PRIu64
            " of %" PRIu64 " paid\n",
            r->paid_once, r->ended[RTPFLOW_ACCEPT]);
    if (r->ended[RTPFLOW_ACCEPT] > 0)
        fprintf(out, "request to PAID: mean %.1f ms, max %.1f ms\n",
                r->paid_ms_sum / (double)r->ended[RTPFLOW_ACCEPT], r->paid_ms_max);
    fprintf(out, "refused by the switch %" PRIu64 "%s%s\n", r->refused,
            r->refused > 0 ? ", first: " : "", r->first_refusal);
    fprintf(out, "failures %" PRIu64 "%s%s\n", r->failures, r->failures > 0 ? ", first: " : "",
            r->first_failure);
}
