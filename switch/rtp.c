#include "rtp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alias.h"
#include "hmap.h"
#include "log.h"
#include "participant.h"
#include "router.h"
#include "session.h"
#include "sql.h"
#include "text.h"
#include "transfer.h"

#define DAY_MS          (86400 * INT64_C(1000))
#define REDELIVER_MS    2000 /* a due request whose debtor agent is not connected */
#define PAYING_RETRY_MS 1000 /* an expiry that found a payment in flight */

/* ---------------------------------------------------------------- pure logic */

static int64_t second_of_day_pkt(int64_t ms)
{
    int64_t s = ms / 1000 + RTP_PKT_OFFSET_S;
    int64_t r = s % 86400;
    return r < 0 ? r + 86400 : r;
}

bool rtp_in_quiet_hours(const struct rtp_rule *r, int64_t now_ms)
{
    if (r->quiet_start_s == r->quiet_end_s)
        return false;
    int64_t sec = second_of_day_pkt(now_ms);
    if (r->quiet_start_s < r->quiet_end_s)
        return sec >= r->quiet_start_s && sec < r->quiet_end_s;
    return sec >= r->quiet_start_s || sec < r->quiet_end_s; /* wraps past midnight */
}

int64_t rtp_after_quiet_hours(const struct rtp_rule *r, int64_t t_ms)
{
    if (!rtp_in_quiet_hours(r, t_ms))
        return t_ms;
    int64_t sec = second_of_day_pkt(t_ms);
    int64_t wait_s = (r->quiet_end_s - sec + 86400) % 86400;
    return (t_ms - t_ms % 1000) + wait_s * 1000;
}

/* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant) */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int rtp_parse_due_date(const char *s, int64_t *midnight_ms)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int64_t y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int64_t m = (s[5] - '0') * 10 + (s[6] - '0');
    int64_t d = (s[8] - '0') * 10 + (s[9] - '0');
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || m < 1 || m > 12 || d < 1)
        return -1;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return -1;
    *midnight_ms = days_from_civil(y, m, d) * DAY_MS - RTP_PKT_OFFSET_S * INT64_C(1000);
    return 0;
}

int64_t rtp_later_deliver_ms(const struct rtp_rule *r, int64_t midnight_ms, int64_t now_ms)
{
    return rtp_after_quiet_hours(r, midnight_ms > now_ms ? midnight_ms : now_ms);
}

int rtp_resolve_debtor(const char *caller, const char *debtor, char agent[5], char account[35],
                       char reason[5], char *text, size_t textlen)
{
    const char *at = strrchr(debtor, '@');
    if (at == NULL) {
        /* an alias (Raast ID): the directory names the debtor's participant
         * and account; the account goes to that participant only (the
         * delivered request), never back to the creditor */
        struct alias_target t;
        if (alias_resolve(caller, "request_to_pay.debtor", debtor, &t, reason, text, textlen) != 0)
            return -1;
        snprintf(agent, 5, "%s", t.participant);
        snprintf(account, 35, "%s", t.account);
        return 0;
    }
    size_t alen = (size_t)(at - debtor);
    if (alen < 1 || alen > TRANSFER_ACCOUNT_MAX || !participant_code_valid(at + 1)) {
        snprintf(reason, 5, "FF01");
        snprintf(text, textlen,
                 "request_to_pay.debtor must be ACCOUNT@CODE: an account of 1..%d bytes and a "
                 "participant code of 4 uppercase letters",
                 TRANSFER_ACCOUNT_MAX);
        return -1;
    }
    memcpy(account, debtor, alen);
    account[alen] = '\0';
    snprintf(agent, 5, "%s", at + 1);
    return 0;
}

#define CHECK_FIELD(name, s, min, max, unit)                                                       \
    do {                                                                                           \
        if (text_check("request_to_pay." name, (s), (min), (max), (unit), text, textlen) != 0) {   \
            snprintf(reason, 5, "FF01");                                                           \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

int rtp_check_request(const Sikka__V1__RequestToPay *m, char reason[5], char *text, size_t textlen)
{
    CHECK_FIELD("msg_id", m->msg_id, 1, TRANSFER_ID_MAX, TEXT_BYTES);
    CHECK_FIELD("creditor_agent", m->creditor_agent, 4, 4, TEXT_BYTES);
    CHECK_FIELD("creditor_account", m->creditor_account, 1, TRANSFER_ACCOUNT_MAX, TEXT_BYTES);
    CHECK_FIELD("creditor_name", m->creditor_name, 0, TRANSFER_TEXT_MAX, TEXT_CHARS);
    CHECK_FIELD("debtor", m->debtor, 1, RTP_DEBTOR_MAX, TEXT_BYTES);
    CHECK_FIELD("due_date", m->due_date, 0, 10, TEXT_BYTES);
    /* the switch's own fields: never from the creditor */
    if (m->request_id != 0 || m->debtor_agent[0] != '\0' || m->debtor_account[0] != '\0' ||
        m->expires_at_ms != 0) {
        snprintf(reason, 5, "FF01");
        snprintf(text, textlen,
                 "request_to_pay.request_id, debtor_agent, debtor_account and "
                 "expires_at_ms are set by the switch only");
        return -1;
    }
    if (m->purpose != SIKKA__V1__PURPOSE__BNPL_REPAYMENT &&
        m->purpose != SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT &&
        m->purpose != SIKKA__V1__PURPOSE__P2P) {
        snprintf(reason, 5, "FF03");
        snprintf(text, textlen, "request_to_pay.purpose is not a known purpose");
        return -1;
    }
    const Sikka__V1__Remittance *rm = m->remittance;
    int kind = rm != NULL ? (int)rm->kind_case : 0;
    if (kind == SIKKA__V1__REMITTANCE__KIND_LOAN) {
        if (rm->loan == NULL)
            goto no_loan;
        CHECK_FIELD("remittance.loan.loan_id", rm->loan->loan_id, 1, TRANSFER_ID_MAX, TEXT_BYTES);
        if (rm->loan->instalment < 1 || rm->loan->instalment > TRANSFER_INSTALMENT_MAX) {
            snprintf(reason, 5, "FF01");
            snprintf(text, textlen,
                     "request_to_pay.remittance.loan.instalment must be 1..2147483647");
            return -1;
        }
    } else if (kind == SIKKA__V1__REMITTANCE__KIND_INVOICE) {
        if (rm->invoice == NULL)
            goto no_invoice;
        CHECK_FIELD("remittance.invoice.invoice_number", rm->invoice->invoice_number, 1,
                    TRANSFER_ID_MAX, TEXT_BYTES);
    } else if (kind == SIKKA__V1__REMITTANCE__KIND_UNSTRUCTURED) {
        CHECK_FIELD("remittance.unstructured", rm->unstructured, 0, TRANSFER_TEXT_MAX, TEXT_CHARS);
    }
    if (m->purpose == SIKKA__V1__PURPOSE__BNPL_REPAYMENT &&
        kind != SIKKA__V1__REMITTANCE__KIND_LOAN)
        goto no_loan;
    if (m->purpose == SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT &&
        kind != SIKKA__V1__REMITTANCE__KIND_INVOICE)
        goto no_invoice;
    if (m->expires_in_s < 0) {
        snprintf(reason, 5, "FF01");
        snprintf(text, textlen, "request_to_pay.expires_in_s must not be negative");
        return -1;
    }
    return 0;
no_loan:
    snprintf(reason, 5, "FF01");
    snprintf(text, textlen,
             "request_to_pay.remittance.loan: a BNPL_REPAYMENT request names its loan and "
             "instalment");
    return -1;
no_invoice:
    snprintf(reason, 5, "FF01");
    snprintf(text, textlen,
             "request_to_pay.remittance.invoice: a SUPPLIER_PAYMENT request names its invoice");
    return -1;
}

const char *rtp_state_name(Sikka__V1__RequestState s)
{
    switch (s) {
    case SIKKA__V1__REQUEST_STATE__REQUEST_PENDING:
        return "pending";
    case SIKKA__V1__REQUEST_STATE__REQUEST_DELIVERED:
        return "delivered";
    case SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED:
        return "accepted";
    case SIKKA__V1__REQUEST_STATE__REQUEST_DECLINED:
        return "declined";
    case SIKKA__V1__REQUEST_STATE__REQUEST_EXPIRED:
        return "expired";
    case SIKKA__V1__REQUEST_STATE__REQUEST_CANCELLED:
        return "cancelled";
    case SIKKA__V1__REQUEST_STATE__REQUEST_PAID:
        return "paid";
    case SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED:
        return "rejected";
    default:
        return "unspecified";
    }
}

static Sikka__V1__RequestState state_parse(const char *s)
{
    for (int i = 1; i <= SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED; i++)
        if (strcmp(s, rtp_state_name((Sikka__V1__RequestState)i)) == 0)
            return (Sikka__V1__RequestState)i;
    return SIKKA__V1__REQUEST_STATE__REQUEST_STATE_UNSPECIFIED;
}

/* ---------------------------------------------------------------- the service */

/* One request the switch knows: open ones live in the map until they
 * finish; a request being created lives in its struct create_op. */
struct rtp_req {
    struct hnode node;
    struct rtp_req *prev, *next; /* RT.all */
    uint64_t id;
    Sikka__V1__RequestState state;
    char creditor[5];
    char debtor[5];
    char msg_id[TRANSFER_ID_MAX + 1];
    char creditor_account[TRANSFER_ACCOUNT_MAX + 1];
    char debtor_account[TRANSFER_ACCOUNT_MAX + 1];
    char creditor_name[TRANSFER_TEXT_BYTES + 1];
    int64_t amount;
    Sikka__V1__Purpose purpose;
    char loan_id[TRANSFER_ID_MAX + 1];
    uint32_t instalment;
    char invoice[TRANSFER_ID_MAX + 1];
    char due_date[11];
    int64_t deliver_ms;
    int64_t expires_ms;
    bool paying; /* a payment is bound and in flight */
    char pay_msg_id[TRANSFER_ID_MAX + 1];
    struct event timer;
    bool timer_armed;
};

#define PURPOSES 4

static struct {
    struct event_base *base;
    struct pgconn *db;
    uint32_t boot_id;
    struct hmap map;
    struct rtp_req *all;
    struct rtp_rule rules[PURPOSES];
    bool rules_loaded, open_loaded, alive;
    int loading; /* load statements in flight */
} RT;

static bool eq_id(const struct hnode *n, const void *key)
{
    return hmap_entry(n, struct rtp_req, node)->id == *(const uint64_t *)key;
}

static struct rtp_req *req_find(uint64_t id)
{
    struct hnode *n = hmap_find(&RT.map, hmap_hash_u64(id), eq_id, &id);
    return n != NULL ? hmap_entry(n, struct rtp_req, node) : NULL;
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

static int req_insert(struct rtp_req *q)
{
    if (hmap_insert(&RT.map, &q->node, hmap_hash_u64(q->id)) != 0)
        return -1;
    q->prev = NULL;
    q->next = RT.all;
    if (RT.all != NULL)
        RT.all->prev = q;
    RT.all = q;
    evtimer_assign(&q->timer, RT.base, on_timer, q);
    return 0;
}

static void req_remove(struct rtp_req *q)
{
    if (q->timer_armed)
        evtimer_del(&q->timer);
    hmap_remove(&RT.map, &q->node);
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        RT.all = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    free(q);
}

/* The next thing to do for an open request: deliver it, or expire it. */
static void req_arm(struct rtp_req *q, int64_t at_ms)
{
    if (q->timer_armed)
        evtimer_del(&q->timer);
    int64_t wait = at_ms - transfer_now_ms();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)((wait % 1000) * 1000)};
    evtimer_add(&q->timer, &tv);
    q->timer_armed = true;
}

static void req_schedule(struct rtp_req *q)
{
    if (q->state == SIKKA__V1__REQUEST_STATE__REQUEST_PENDING && q->deliver_ms < q->expires_ms)
        req_arm(q, q->deliver_ms);
    else
        req_arm(q, q->expires_ms);
}

static void ref_of(const struct rtp_req *q, char *buf, size_t len)
{
    if (q->loan_id[0] != '\0')
        snprintf(buf, len, "%s/%" PRIu32, q->loan_id, q->instalment);
    else
        snprintf(buf, len, "%s", q->invoice);
}

static void fill_status(Sikka__V1__RequestStatus *st, const struct rtp_req *q, char *ref,
                        size_t reflen)
{
    ref_of(q, ref, reflen);
    st->request_id = q->id;
    st->original_msg_id = (char *)q->msg_id;
    st->state = q->state;
    st->creditor_agent = (char *)q->creditor;
    st->debtor_agent = (char *)q->debtor;
    st->amount = q->amount;
    st->purpose = q->purpose;
    st->due_date = (char *)q->due_date;
    st->deliver_at_ms = q->deliver_ms;
    st->expires_at_ms = q->expires_ms;
    st->ref = ref;
}

static void send_status_to(struct session *s, const struct rtp_req *q, const char *reason,
                           const char *text, uint64_t transfer_id)
{
    if (s == NULL)
        return;
    char ref[64];
    Sikka__V1__RequestStatus st = SIKKA__V1__REQUEST_STATUS__INIT;
    fill_status(&st, q, ref, sizeof(ref));
    st.reason = (char *)(reason != NULL ? reason : "");
    char cut[TRANSFER_TEXT_BYTES + 1];
    (void)text_copy_truncated(cut, sizeof(cut), text != NULL ? text : "");
    text_limit_chars(cut, TRANSFER_TEXT_MAX);
    st.text = cut;
    st.transfer_id = transfer_id;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_STATUS;
    env.request_status = &st;
    (void)session_send(s, &env);
}

/* A participant's session, if it has one (a report to a participant that
 * is not connected is not kept: it lists its open requests on return). */
static struct session *session_of(const char *code)
{
    struct participant *p = participant_find(code);
    return p != NULL ? session_pick(p) : NULL;
}

/* Tells both sides (the debtor's only once it has been delivered). The
 * participant that acted hears it on the session it acted from (actor, if
 * still open); the other side on any of its sessions. */
static void notify_both(const struct rtp_req *q, bool debtor_knows, const char *reason,
                        const char *text, uint64_t transfer_id, struct session *actor)
{
    const char *who = actor != NULL ? actor->participant->code : "";
    send_status_to(strcmp(who, q->creditor) == 0 ? actor : session_of(q->creditor), q, reason, text,
                   transfer_id);
    if (debtor_knows)
        send_status_to(strcmp(who, q->debtor) == 0 ? actor : session_of(q->debtor), q, reason, text,
                       transfer_id);
}

static int deliver_to(struct session *s, const struct rtp_req *q)
{
    if (s == NULL)
        return -1;
    Sikka__V1__RequestToPay m = SIKKA__V1__REQUEST_TO_PAY__INIT;
    Sikka__V1__Remittance rm = SIKKA__V1__REMITTANCE__INIT;
    Sikka__V1__LoanInstalment loan = SIKKA__V1__LOAN_INSTALMENT__INIT;
    Sikka__V1__Invoice inv = SIKKA__V1__INVOICE__INIT;
    char debtor[TRANSFER_ACCOUNT_MAX + 6];
    snprintf(debtor, sizeof(debtor), "%s@%s", q->debtor_account, q->debtor);
    m.msg_id = (char *)q->msg_id;
    m.creditor_agent = (char *)q->creditor;
    m.creditor_account = (char *)q->creditor_account;
    m.creditor_name = (char *)q->creditor_name;
    m.debtor = debtor;
    m.amount = q->amount;
    m.purpose = q->purpose;
    if (q->loan_id[0] != '\0') {
        loan.loan_id = (char *)q->loan_id;
        loan.instalment = q->instalment;
        rm.kind_case = SIKKA__V1__REMITTANCE__KIND_LOAN;
        rm.loan = &loan;
        m.remittance = &rm;
    } else if (q->invoice[0] != '\0') {
        inv.invoice_number = (char *)q->invoice;
        rm.kind_case = SIKKA__V1__REMITTANCE__KIND_INVOICE;
        rm.invoice = &inv;
        m.remittance = &rm;
    }
    m.due_date = (char *)q->due_date;
    m.request_id = q->id;
    m.debtor_agent = (char *)q->debtor;
    m.debtor_account = (char *)q->debtor_account;
    m.expires_at_ms = q->expires_ms;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY;
    env.request_to_pay = &m;
    return session_send(s, &env);
}

static int deliver(const struct rtp_req *q)
{
    return deliver_to(session_of(q->debtor), q);
}

void rtp_session_open(struct session *s)
{
    if (!RT.alive)
        return;
    size_t n = 0;
    for (struct rtp_req *q = RT.all; q != NULL; q = q->next) {
        if (q->state == SIKKA__V1__REQUEST_STATE__REQUEST_DELIVERED &&
            strcmp(q->debtor, s->participant->code) == 0 && deliver_to(s, q) == 0)
            n++;
    }
    if (n > 0)
        log_info("event=requests_redelivered session=%s count=%zu", s->label, n);
}

static void log_req(const char *event, const struct rtp_req *q, const char *extra)
{
    char acc[48], qm[96];
    log_info("event=%s request=%" PRIu64 " creditor=%s msg_id=%s debtor=%s account=%s "
             "amount=%" PRId64 " state=%s%s%s",
             event, q->id, q->creditor, log_quote(q->msg_id, qm, sizeof(qm)), q->debtor,
             log_mask(q->debtor_account, acc, sizeof(acc)), q->amount, rtp_state_name(q->state),
             extra != NULL ? " " : "", extra != NULL ? extra : "");
}

/* ---- moves (request_move): one op per call, self-contained ---- */

struct move_op {
    uint64_t id;
    Sikka__V1__RequestState to;
    uint64_t session; /* who asked (0: the timer) */
    char by[5];
    char reason[5];
    char text[TRANSFER_TEXT_BYTES + 1];
};

static void on_moved(void *arg, PGresult *res, enum pgconn_flags flags, const char *error);

static void move(uint64_t id, Sikka__V1__RequestState to, struct session *s, const char *reason,
                 const char *text)
{
    struct move_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        log_error("event=oom what=request_move request=%" PRIu64, id);
        if (s != NULL)
            session_refuse(s, "switch out of memory; retry", NULL, id);
        return;
    }
    op->id = id;
    op->to = to;
    op->session = s != NULL ? s->id : 0;
    snprintf(op->by, sizeof(op->by), "%s", s != NULL ? s->participant->code : "");
    snprintf(op->reason, sizeof(op->reason), "%s", reason != NULL ? reason : "");
    (void)text_copy_truncated(op->text, sizeof(op->text), text != NULL ? text : "");
    char ids[24];
    snprintf(ids, sizeof(ids), "%" PRIu64, id);
    const char *params[] = {ids, rtp_state_name(to), op->by, op->reason, op->text};
    if (pgconn_exec(RT.db, SQL_REQUEST_MOVE, 5, params, on_moved, op) != 0)
        on_moved(op, NULL, PGCONN_FAILED, "database not connected");
}

static void on_moved(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct move_op *op = arg;
    struct session *s = op->session != 0 ? session_find(op->session) : NULL;
    struct rtp_req *q = RT.alive ? req_find(op->id) : NULL;
    if (!RT.alive)
        goto done;
    if (flags != PGCONN_OK) {
        log_error("event=request_move_failed request=%" PRIu64 " to=%s why=\"%s\"", op->id,
                  rtp_state_name(op->to), error);
        if (s != NULL)
            session_refuse(s, "the switch cannot record this right now; retry", NULL, op->id);
        else if (q != NULL)
            req_arm(q, transfer_now_ms() + REDELIVER_MS); /* the timer tries again */
        goto done;
    }
    if (q == NULL)
        goto done; /* finished meanwhile (e.g. paid): its reports went out then */
    if (PQntuples(res) == 0) {
        /* not the sender's to move: answered like an unknown id */
        if (s != NULL) {
            char text[80];
            snprintf(text, sizeof(text), "request %" PRIu64 " is unknown", op->id);
            session_reject(s, "NARR", text, NULL, op->id);
        }
        goto done;
    }
    Sikka__V1__RequestState now = state_parse(PQgetvalue(res, 0, 0));
    bool moved = PQgetvalue(res, 0, 1)[0] == 't';
    if (!moved) {
        log_info("event=request_move_refused request=%" PRIu64 " to=%s state=%s", op->id,
                 rtp_state_name(op->to), rtp_state_name(now));
        if (s != NULL) {
            char text[120];
            snprintf(text, sizeof(text), "request %" PRIu64 " is %s%s: it cannot be %s", op->id,
                     rtp_state_name(now), q->paying ? " and being paid" : "",
                     rtp_state_name(op->to));
            session_reject(s, "NARR", text, NULL, op->id);
        } else if (op->to == SIKKA__V1__REQUEST_STATE__REQUEST_EXPIRED) {
            req_arm(q, transfer_now_ms() + PAYING_RETRY_MS); /* a payment holds it */
        }
        goto done;
    }
    bool debtor_knows = q->state != SIKKA__V1__REQUEST_STATE__REQUEST_PENDING ||
                        op->to == SIKKA__V1__REQUEST_STATE__REQUEST_DELIVERED;
    q->state = op->to;
    char extra[64];
    snprintf(extra, sizeof(extra), "reason=%s", op->reason[0] ? op->reason : "-");
    log_req("request_moved", q, extra);
    switch (op->to) {
    case SIKKA__V1__REQUEST_STATE__REQUEST_DELIVERED:
        if (deliver(q) != 0)
            log_warn("event=request_delivery_failed request=%" PRIu64 " debtor=%s why=\"not "
                     "reachable; it is listed for the debtor agent\"",
                     q->id, q->debtor);
        notify_both(q, false, NULL, NULL, 0, NULL);
        req_schedule(q);
        break;
    case SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED:
        notify_both(q, true, NULL, NULL, 0, s);
        break;
    default: /* declined, cancelled, expired: finished */
        notify_both(q, debtor_knows, op->reason, op->text, 0, s);
        req_remove(q);
        break;
    }
done:
    free(op);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rtp_req *q = arg;
    q->timer_armed = false;
    int64_t now = transfer_now_ms();
    if (now >= q->expires_ms) {
        move(q->id, SIKKA__V1__REQUEST_STATE__REQUEST_EXPIRED, NULL, NULL,
             "not paid before its expiry");
        return;
    }
    if (q->state == SIKKA__V1__REQUEST_STATE__REQUEST_PENDING && now >= q->deliver_ms) {
        if (session_of(q->debtor) == NULL) {
            log_warn("event=request_delivery_waiting request=%" PRIu64 " debtor=%s why=\"debtor "
                     "agent not connected; trying again\"",
                     q->id, q->debtor);
            req_arm(q, now + REDELIVER_MS);
            return;
        }
        move(q->id, SIKKA__V1__REQUEST_STATE__REQUEST_DELIVERED, NULL, NULL, NULL);
        return;
    }
    req_schedule(q);
}

/* ---- a new request ---- */

struct create_op {
    uint64_t session;
    struct rtp_req *q; /* owned until it joins the map */
};

static void reject_request(struct session *s, const char *msg_id, const char *reason,
                           const char *text)
{
    char qm[96], qt[200];
    log_warn("event=request_rejected session=%s msg_id=%s reason=%s recorded=no text=%s", s->label,
             log_quote(msg_id != NULL ? msg_id : "", qm, sizeof(qm)), reason,
             log_quote(text, qt, sizeof(qt)));
    Sikka__V1__RequestStatus st = SIKKA__V1__REQUEST_STATUS__INIT;
    st.original_msg_id = (char *)(msg_id != NULL ? msg_id : "");
    st.state = SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED;
    st.reason = (char *)reason;
    st.text = (char *)text;
    st.creditor_agent = s->participant->code;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_STATUS;
    env.request_status = &st;
    (void)session_send(s, &env);
}

static void on_created(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct create_op *op = arg;
    struct rtp_req *q = op->q;
    struct session *s = session_find(op->session);
    char qm[96];
    if (!RT.alive)
        goto done;
    if (flags != PGCONN_OK) {
        log_error("event=request_create_failed creditor=%s msg_id=%s why=\"%s\"", q->creditor,
                  log_quote(q->msg_id, qm, sizeof(qm)), error);
        if (s != NULL)
            session_refuse(s, "the switch cannot record this request right now; retry", q->msg_id,
                           0);
        goto done;
    }
    q->id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    q->state = state_parse(PQgetvalue(res, 0, 1));
    const char *reason = PQgetvalue(res, 0, 2), *text = PQgetvalue(res, 0, 3);
    bool existed = PQgetvalue(res, 0, 4)[0] == 't', same = PQgetvalue(res, 0, 5)[0] == 't';
    q->deliver_ms = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    q->expires_ms = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
    if (existed) {
        if (!same) {
            if (s != NULL)
                reject_request(s, q->msg_id, "AM05", "msg_id already used for a different request");
            goto done;
        }
        /* a retry: the request as it stands */
        struct rtp_req *known = req_find(q->id);
        log_info("event=request_retry_answered creditor=%s msg_id=%s request=%" PRIu64 " state=%s",
                 q->creditor, log_quote(q->msg_id, qm, sizeof(qm)), q->id,
                 rtp_state_name(q->state));
        send_status_to(s, known != NULL ? known : q, reason, text, 0);
        goto done;
    }
    if (q->state == SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED) {
        char qt[200];
        log_warn("event=request_refused request=%" PRIu64 " creditor=%s msg_id=%s debtor=%s "
                 "reason=%s recorded=yes text=%s",
                 q->id, q->creditor, log_quote(q->msg_id, qm, sizeof(qm)), q->debtor, reason,
                 log_quote(text, qt, sizeof(qt)));
        send_status_to(s, q, reason, text, 0);
        goto done;
    }
    if (req_insert(q) != 0) {
        /* recorded; the next start loads it */
        log_error("event=oom what=request request=%" PRIu64, q->id);
        goto done;
    }
    op->q = NULL;
    log_req("request_created", q, NULL);
    if (q->state == SIKKA__V1__REQUEST_STATE__REQUEST_DELIVERED && deliver(q) != 0)
        log_warn("event=request_delivery_failed request=%" PRIu64 " debtor=%s why=\"not "
                 "reachable; it is listed for the debtor agent\"",
                 q->id, q->debtor);
    send_status_to(s, q, NULL, NULL, 0);
    req_schedule(q);
done:
    free(op->q);
    free(op);
}

static void handle_request(struct session *s, const Sikka__V1__RequestToPay *m)
{
    char reason[5] = "", text[256];
    const char *me = s->participant->code;
    const char *msg_id =
        text_check("msg_id", m->msg_id, 1, TRANSFER_ID_MAX, TEXT_BYTES, text, sizeof(text)) == 0
            ? m->msg_id
            : NULL;
    if (!RT.rules_loaded || !RT.open_loaded) {
        if (RT.loading == 0)
            rtp_load(); /* the first try found the database away */
        session_refuse(s, "the request service is starting; send the same msg_id again shortly",
                       msg_id, 0);
        return;
    }
    if (rtp_check_request(m, reason, text, sizeof(text)) != 0) {
        session_reject(s, reason, text, msg_id, 0);
        return;
    }
    if (strcmp(m->creditor_agent, me) != 0) {
        reject_request(s, m->msg_id, "RC01", "creditor_agent must be the sender's participant");
        return;
    }
    struct rtp_req *q = calloc(1, sizeof(*q));
    struct create_op *op = calloc(1, sizeof(*op));
    if (q == NULL || op == NULL) {
        free(q);
        free(op);
        log_error("event=oom what=request session=%s", s->label);
        session_refuse(s, "switch out of memory; retry", m->msg_id, 0);
        return;
    }
    op->session = s->id;
    op->q = q;
    snprintf(q->creditor, sizeof(q->creditor), "%s", me);
    snprintf(q->msg_id, sizeof(q->msg_id), "%s", m->msg_id);
    snprintf(q->creditor_account, sizeof(q->creditor_account), "%s", m->creditor_account);
    snprintf(q->creditor_name, sizeof(q->creditor_name), "%s", m->creditor_name);
    q->amount = m->amount;
    q->purpose = m->purpose;
    if (m->remittance != NULL && m->remittance->kind_case == SIKKA__V1__REMITTANCE__KIND_LOAN) {
        snprintf(q->loan_id, sizeof(q->loan_id), "%s", m->remittance->loan->loan_id);
        q->instalment = m->remittance->loan->instalment;
    } else if (m->remittance != NULL &&
               m->remittance->kind_case == SIKKA__V1__REMITTANCE__KIND_INVOICE) {
        snprintf(q->invoice, sizeof(q->invoice), "%s", m->remittance->invoice->invoice_number);
    }
    snprintf(q->due_date, sizeof(q->due_date), "%s", m->due_date);

    if (rtp_resolve_debtor(me, m->debtor, q->debtor, q->debtor_account, reason, text,
                           sizeof(text)) != 0)
        goto refuse;
    struct participant *creditor = s->participant, *debtor = participant_find(q->debtor);
    if (creditor->status != PARTICIPANT_ACTIVE) {
        snprintf(reason, sizeof(reason), "AG10");
        snprintf(text, sizeof(text), "creditor agent %s is suspended", me);
        goto refuse;
    }
    if (debtor == NULL) {
        snprintf(reason, sizeof(reason), "RC04");
        snprintf(text, sizeof(text), "debtor agent %s is not a participant", q->debtor);
        goto refuse;
    }
    if (debtor->status != PARTICIPANT_ACTIVE) {
        snprintf(reason, sizeof(reason), "AG11");
        snprintf(text, sizeof(text), "debtor agent %s is suspended", q->debtor);
        goto refuse;
    }
    if (m->amount <= 0 || m->amount > router_max_amount()) {
        snprintf(reason, sizeof(reason), "AM02");
        snprintf(text, sizeof(text), "amount %" PRId64 " paisa is outside 1..%" PRId64, m->amount,
                 router_max_amount());
        goto refuse;
    }
    const struct rtp_rule *rule = &RT.rules[q->purpose];
    if (!rule->loaded) {
        snprintf(reason, sizeof(reason), "FF03");
        snprintf(text, sizeof(text), "no request rules for purpose %s",
                 transfer_purpose_name(q->purpose));
        goto refuse;
    }
    int64_t expires_s = m->expires_in_s != 0 ? m->expires_in_s : rule->default_expiry_s;
    if (expires_s > rule->max_expiry_s) {
        snprintf(reason, sizeof(reason), "FF01");
        snprintf(text, sizeof(text),
                 "request_to_pay.expires_in_s: at most %" PRId64 " seconds for %s",
                 rule->max_expiry_s, transfer_purpose_name(q->purpose));
        goto refuse;
    }
    int64_t now = transfer_now_ms();
    const char *state = "delivered", *refuse = "";
    char refuse_text[160] = "";
    if (q->due_date[0] != '\0') {
        int64_t midnight;
        if (rtp_parse_due_date(q->due_date, &midnight) != 0) {
            snprintf(reason, sizeof(reason), "DT01");
            snprintf(text, sizeof(text), "due_date must be a date YYYY-MM-DD");
            goto refuse;
        }
        if (midnight + DAY_MS <= now || midnight > now + RTP_LATER_MAX_DAYS * DAY_MS) {
            snprintf(reason, sizeof(reason), "DT01");
            snprintf(text, sizeof(text),
                     "due_date %s is not between today and %d days ahead (Pakistan time)",
                     q->due_date, RTP_LATER_MAX_DAYS);
            goto refuse;
        }
        q->deliver_ms = rtp_later_deliver_ms(rule, midnight, now);
        if (q->deliver_ms > now)
            state = "pending";
    } else {
        q->deliver_ms = now;
        if (rtp_in_quiet_hours(rule, now)) {
            refuse = "RQ03";
            snprintf(refuse_text, sizeof(refuse_text),
                     "quiet hours %02" PRId64 ":%02" PRId64 "-%02" PRId64 ":%02" PRId64
                     " Pakistan time: no requests are delivered; send it later or as RTP Later",
                     rule->quiet_start_s / 3600, rule->quiet_start_s / 60 % 60,
                     rule->quiet_end_s / 3600, rule->quiet_end_s / 60 % 60);
        } else if (session_of(q->debtor) == NULL) {
            snprintf(reason, sizeof(reason), "AB08");
            snprintf(text, sizeof(text), "debtor agent %s is not connected", q->debtor);
            goto refuse;
        }
    }
    q->expires_ms = q->deliver_ms + expires_s * 1000;

    char amount[24], instalment[16], deliver_ms[24], expires_ms[24];
    snprintf(amount, sizeof(amount), "%" PRId64, q->amount);
    snprintf(instalment, sizeof(instalment), "%" PRIu32, q->instalment);
    snprintf(deliver_ms, sizeof(deliver_ms), "%" PRId64, q->deliver_ms);
    snprintf(expires_ms, sizeof(expires_ms), "%" PRId64, q->expires_ms);
    const char *params[] = {q->creditor,
                            q->msg_id,
                            q->creditor_account,
                            q->creditor_name,
                            q->debtor,
                            q->debtor_account,
                            amount,
                            transfer_purpose_name(q->purpose),
                            q->loan_id[0] ? q->loan_id : NULL,
                            q->loan_id[0] ? instalment : NULL,
                            q->invoice[0] ? q->invoice : NULL,
                            q->due_date[0] ? q->due_date : NULL,
                            deliver_ms,
                            expires_ms,
                            state,
                            refuse,
                            refuse_text};
    if (pgconn_exec(RT.db, SQL_REQUEST_CREATE, 17, params, on_created, op) != 0)
        on_created(op, NULL, PGCONN_FAILED, "database not connected");
    return;
refuse:
    reject_request(s, m->msg_id, reason, text);
    free(q);
    free(op);
}

/* ---- decisions, cancellations, housekeeping ---- */

static void unknown_request(struct session *s, uint64_t id)
{
    char text[80];
    snprintf(text, sizeof(text), "request %" PRIu64 " is unknown", id);
    session_reject(s, "NARR", text, NULL, id);
}

static void handle_decision(struct session *s, const Sikka__V1__RequestDecision *d)
{
    char text[200];
    if (d->reason[0] != '\0' && !transfer_reason_valid(d->reason)) {
        session_reject(s, "FF01",
                       "request_decision.reason must be a reason code (4 uppercase letters or "
                       "digits)",
                       NULL, d->request_id);
        return;
    }
    if (text_check("request_decision.text", d->text, 0, TRANSFER_TEXT_MAX, TEXT_CHARS, text,
                   sizeof(text)) != 0) {
        session_reject(s, "FF01", text, NULL, d->request_id);
        return;
    }
    struct rtp_req *q = req_find(d->request_id);
    if (q == NULL || strcmp(q->debtor, s->participant->code) != 0 ||
        q->state == SIKKA__V1__REQUEST_STATE__REQUEST_PENDING) {
        unknown_request(s, d->request_id);
        return;
    }
    if (q->state != SIKKA__V1__REQUEST_STATE__REQUEST_DELIVERED) {
        snprintf(text, sizeof(text), "request %" PRIu64 " is already %s", q->id,
                 rtp_state_name(q->state));
        session_reject(s, "NARR", text, NULL, q->id);
        return;
    }
    if (d->accept)
        move(q->id, SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED, s, NULL, NULL);
    else
        move(q->id, SIKKA__V1__REQUEST_STATE__REQUEST_DECLINED, s,
             d->reason[0] != '\0' ? d->reason : "NARR", d->text);
}

static void handle_cancel(struct session *s, const Sikka__V1__RequestCancel *c)
{
    if (c->reason[0] != '\0' && !transfer_reason_valid(c->reason)) {
        session_reject(s, "FF01",
                       "request_cancel.reason must be a reason code (4 uppercase letters or "
                       "digits)",
                       NULL, c->request_id);
        return;
    }
    struct rtp_req *q = req_find(c->request_id);
    if (q == NULL || strcmp(q->creditor, s->participant->code) != 0) {
        unknown_request(s, c->request_id);
        return;
    }
    if (q->paying) {
        char text[120];
        snprintf(text, sizeof(text), "request %" PRIu64 " is being paid: it cannot be cancelled",
                 q->id);
        session_reject(s, "NARR", text, NULL, q->id);
        return;
    }
    move(q->id, SIKKA__V1__REQUEST_STATE__REQUEST_CANCELLED, s,
         c->reason[0] != '\0' ? c->reason : "", "cancelled by the creditor agent");
}

struct block_op {
    uint64_t session;
    char query_id[TRANSFER_ID_MAX + 1];
    Sikka__V1__RequestControl__Op op;
    char creditor[5], debtor[5];
    char account[TRANSFER_ACCOUNT_MAX + 1];
};

static void send_control(struct session *s, const char *query_id, Sikka__V1__RequestControl__Op o,
                         Sikka__V1__RequestStatus **items, size_t n, bool done)
{
    Sikka__V1__RequestControl rc = SIKKA__V1__REQUEST_CONTROL__INIT;
    rc.query_id = (char *)query_id;
    rc.op = o;
    rc.requests = items;
    rc.n_requests = n;
    rc.done = done;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_CONTROL;
    env.request_control = &rc;
    (void)session_send(s, &env);
}

static void on_blocked(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)res;
    struct block_op *op = arg;
    struct session *s = session_find(op->session);
    char acc[48];
    if (flags != PGCONN_OK) {
        log_error("event=request_block_failed debtor=%s account=%s creditor=%s why=\"%s\"",
                  op->debtor, log_mask(op->account, acc, sizeof(acc)), op->creditor, error);
        if (s != NULL)
            session_refuse(s, "the switch cannot record this right now; retry", NULL, 0);
    } else {
        log_info("event=%s debtor=%s account=%s creditor=%s",
                 op->op == SIKKA__V1__REQUEST_CONTROL__OP__BLOCK ? "request_block"
                                                                 : "request_unblock",
                 op->debtor, log_mask(op->account, acc, sizeof(acc)), op->creditor);
        if (s != NULL)
            send_control(s, op->query_id, op->op, NULL, 0, true);
    }
    free(op);
}

static void handle_control(struct session *s, const Sikka__V1__RequestControl *c)
{
    char text[200];
    const char *me = s->participant->code;
    if (text_check("request_control.query_id", c->query_id, 0, TRANSFER_ID_MAX, TEXT_BYTES, text,
                   sizeof(text)) != 0) {
        session_reject(s, "FF01", text, NULL, 0);
        return;
    }
    if (c->n_requests != 0 || c->done) {
        session_reject(s, "FF01", "request_control.requests and done are set by the switch only",
                       NULL, 0);
        return;
    }
    if (c->op == SIKKA__V1__REQUEST_CONTROL__OP__LIST) {
        static Sikka__V1__RequestStatus items[RTP_LIST_MAX];
        static Sikka__V1__RequestStatus *ptrs[RTP_LIST_MAX];
        static char refs[RTP_LIST_MAX][64];
        size_t n = 0;
        for (struct rtp_req *q = RT.all; q != NULL && n < RTP_LIST_MAX; q = q->next) {
            bool mine = strcmp(q->creditor, me) == 0 ||
                        (strcmp(q->debtor, me) == 0 &&
                         q->state != SIKKA__V1__REQUEST_STATE__REQUEST_PENDING);
            if (!mine)
                continue;
            sikka__v1__request_status__init(&items[n]);
            fill_status(&items[n], q, refs[n], sizeof(refs[n]));
            items[n].reason = (char *)"";
            items[n].text = (char *)"";
            ptrs[n] = &items[n];
            n++;
        }
        send_control(s, c->query_id, c->op, ptrs, n, false);
        return;
    }
    if (c->op != SIKKA__V1__REQUEST_CONTROL__OP__BLOCK &&
        c->op != SIKKA__V1__REQUEST_CONTROL__OP__UNBLOCK) {
        session_reject(s, "FF01", "request_control.op is not LIST, BLOCK or UNBLOCK", NULL, 0);
        return;
    }
    if (!participant_code_valid(c->creditor_agent)) {
        session_reject(s, "FF01", "request_control.creditor_agent must be a participant code", NULL,
                       0);
        return;
    }
    if (text_check("request_control.debtor_account", c->debtor_account, 1, TRANSFER_ACCOUNT_MAX,
                   TEXT_BYTES, text, sizeof(text)) != 0) {
        session_reject(s, "FF01", text, NULL, 0);
        return;
    }
    if (participant_find(c->creditor_agent) == NULL) {
        session_reject(s, "RC04", "request_control.creditor_agent is not a participant", NULL, 0);
        return;
    }
    struct block_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        log_error("event=oom what=request_block session=%s", s->label);
        session_refuse(s, "switch out of memory; retry", NULL, 0);
        return;
    }
    op->session = s->id;
    op->op = c->op;
    snprintf(op->query_id, sizeof(op->query_id), "%s", c->query_id);
    snprintf(op->creditor, sizeof(op->creditor), "%s", c->creditor_agent);
    snprintf(op->debtor, sizeof(op->debtor), "%s", me);
    snprintf(op->account, sizeof(op->account), "%s", c->debtor_account);
    const char *params[] = {me, op->account, op->creditor,
                            c->op == SIKKA__V1__REQUEST_CONTROL__OP__BLOCK ? "true" : "false"};
    if (pgconn_exec(RT.db, SQL_REQUEST_BLOCK, 4, params, on_blocked, op) != 0)
        on_blocked(op, NULL, PGCONN_FAILED, "database not connected");
}

void rtp_on_frame(struct session *s, const Envelope *env)
{
    switch (env->body_case) {
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY:
        handle_request(s, env->request_to_pay);
        break;
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_DECISION:
        handle_decision(s, env->request_decision);
        break;
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_CANCEL:
        handle_cancel(s, env->request_cancel);
        break;
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_CONTROL:
        handle_control(s, env->request_control);
        break;
    default:
        session_reject(s, "FF01", "request_status is not a message participants send", NULL, 0);
        break;
    }
}

/* ---- payments ---- */

struct bind_op {
    struct transfer *t;
    rtp_bound_cb done;
};

static void on_bound(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct bind_op *op = arg;
    struct transfer *t = op->t;
    rtp_bound_cb done = op->done;
    free(op);
    char qm[96];
    if (flags != PGCONN_OK) {
        log_error("event=request_bind_failed request=%" PRIu64 " payer=%s msg_id=%s why=\"%s\"",
                  t->request_id, t->payer, log_quote(t->msg_id, qm, sizeof(qm)), error);
        done(t, "NARR", "the request cannot be checked right now; retry with a new msg_id");
        return;
    }
    const char *reason = PQgetvalue(res, 0, 0);
    if (reason[0] != '\0') {
        log_warn("event=request_payment_refused request=%" PRIu64 " payer=%s msg_id=%s reason=%s",
                 t->request_id, t->payer, log_quote(t->msg_id, qm, sizeof(qm)), reason);
        done(t, reason, PQgetvalue(res, 0, 1));
        return;
    }
    struct rtp_req *q = RT.alive ? req_find(t->request_id) : NULL;
    if (q != NULL) {
        q->paying = true;
        snprintf(q->pay_msg_id, sizeof(q->pay_msg_id), "%s", t->msg_id);
    }
    log_info("event=request_payment_bound request=%" PRIu64 " payer=%s msg_id=%s transfer=%" PRIu64,
             t->request_id, t->payer, log_quote(t->msg_id, qm, sizeof(qm)), t->id);
    done(t, NULL, NULL);
}

void rtp_bind_payment(struct transfer *t, rtp_bound_cb done)
{
    struct rtp_req *q = req_find(t->request_id);
    if (q != NULL && q->paying && strcmp(q->pay_msg_id, t->msg_id) != 0) {
        char text[120];
        snprintf(text, sizeof(text), "request %" PRIu64 " is being paid by another transfer",
                 q->id);
        done(t, "DUPL", text);
        return;
    }
    if (t->request_id > TRANSFER_LEDGER_ID_MAX) {
        char text[80];
        snprintf(text, sizeof(text), "request %" PRIu64 " is not open for payment by %s",
                 t->request_id, t->payer);
        done(t, "RQ05", text);
        return;
    }
    struct bind_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        log_error("event=oom what=request_bind transfer=%" PRIu64, t->id);
        done(t, "NARR", "switch out of memory; retry with a new msg_id");
        return;
    }
    op->t = t;
    op->done = done;
    char id[24], boot[16], amount[24], instalment[16];
    snprintf(id, sizeof(id), "%" PRIu64, t->request_id);
    snprintf(boot, sizeof(boot), "%" PRIu32, RT.boot_id);
    snprintf(amount, sizeof(amount), "%" PRId64, t->amount);
    snprintf(instalment, sizeof(instalment), "%" PRIu32, t->instalment);
    const char *params[] = {id,
                            boot,
                            t->payer,
                            t->msg_id,
                            t->payee,
                            t->creditor_account,
                            amount,
                            transfer_purpose_name(t->purpose),
                            t->loan_id[0] ? t->loan_id : NULL,
                            t->loan_id[0] ? instalment : NULL,
                            t->invoice_number[0] ? t->invoice_number : NULL};
    if (pgconn_exec(RT.db, SQL_REQUEST_BIND, 11, params, on_bound, op) != 0)
        on_bound(op, NULL, PGCONN_FAILED, "database not connected");
}

void rtp_payment_done(const struct transfer *t, bool settled)
{
    struct rtp_req *q = RT.alive ? req_find(t->request_id) : NULL;
    if (q == NULL || strcmp(q->pay_msg_id, t->msg_id) != 0)
        return;
    if (!settled) {
        q->paying = false;
        q->pay_msg_id[0] = '\0';
        log_req("request_payment_failed", q, NULL);
        return;
    }
    /* the posting marked it paid (schema/009 transfers_pay_requests) */
    q->state = SIKKA__V1__REQUEST_STATE__REQUEST_PAID;
    char extra[48];
    snprintf(extra, sizeof(extra), "transfer=%" PRIu64, t->id);
    log_req("request_paid", q, extra);
    notify_both(q, true, NULL, NULL, t->id, session_find(t->payer_session));
    req_remove(q);
}

/* ---- start ---- */

static void on_rules(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    RT.loading--;
    if (!RT.alive)
        return;
    if (flags != PGCONN_OK) {
        log_error("event=request_rules_load_failed why=\"%s\"", error);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        Sikka__V1__Purpose p;
        if (transfer_parse_purpose(PQgetvalue(res, i, 0), &p) != 0 || (unsigned)p >= PURPOSES)
            continue;
        struct rtp_rule *r = &RT.rules[p];
        r->max_open_per_pair = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        r->max_per_reference = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        r->quiet_start_s = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        r->quiet_end_s = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        r->default_expiry_s = strtoll(PQgetvalue(res, i, 5), NULL, 10);
        r->max_expiry_s = strtoll(PQgetvalue(res, i, 6), NULL, 10);
        r->loaded = true;
        log_info("event=request_rules purpose=%s max_open_per_pair=%" PRId64
                 " max_per_reference=%" PRId64 " quiet_start_s=%" PRId64 " quiet_end_s=%" PRId64
                 " default_expiry_s=%" PRId64 " max_expiry_s=%" PRId64,
                 PQgetvalue(res, i, 0), r->max_open_per_pair, r->max_per_reference,
                 r->quiet_start_s, r->quiet_end_s, r->default_expiry_s, r->max_expiry_s);
    }
    RT.rules_loaded = true;
}

static void on_open(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    RT.loading--;
    if (!RT.alive)
        return;
    if (flags != PGCONN_OK) {
        log_error("event=requests_load_failed why=\"%s\"", error);
        return;
    }
    /* sql.c SQL_REQUESTS_OPEN's columns */
    size_t n = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        uint64_t id = strtoull(PQgetvalue(res, i, 0), NULL, 10);
        if (req_find(id) != NULL)
            continue;
        struct rtp_req *q = calloc(1, sizeof(*q));
        if (q == NULL) {
            log_error("event=oom what=request request=%" PRIu64, id);
            return;
        }
        q->id = id;
        q->state = state_parse(PQgetvalue(res, i, 1));
        (void)text_copy_truncated(q->creditor, sizeof(q->creditor), PQgetvalue(res, i, 2));
        (void)text_copy_truncated(q->msg_id, sizeof(q->msg_id), PQgetvalue(res, i, 3));
        (void)text_copy_truncated(q->creditor_account, sizeof(q->creditor_account),
                                  PQgetvalue(res, i, 4));
        (void)text_copy_truncated(q->creditor_name, sizeof(q->creditor_name),
                                  PQgetvalue(res, i, 5));
        (void)text_copy_truncated(q->debtor, sizeof(q->debtor), PQgetvalue(res, i, 6));
        (void)text_copy_truncated(q->debtor_account, sizeof(q->debtor_account),
                                  PQgetvalue(res, i, 7));
        q->amount = strtoll(PQgetvalue(res, i, 8), NULL, 10);
        if (transfer_parse_purpose(PQgetvalue(res, i, 9), &q->purpose) != 0)
            q->purpose = SIKKA__V1__PURPOSE__P2P;
        (void)text_copy_truncated(q->loan_id, sizeof(q->loan_id), PQgetvalue(res, i, 10));
        q->instalment = (uint32_t)strtoul(PQgetvalue(res, i, 11), NULL, 10);
        (void)text_copy_truncated(q->invoice, sizeof(q->invoice), PQgetvalue(res, i, 12));
        (void)text_copy_truncated(q->due_date, sizeof(q->due_date), PQgetvalue(res, i, 13));
        q->deliver_ms = strtoll(PQgetvalue(res, i, 14), NULL, 10);
        q->expires_ms = strtoll(PQgetvalue(res, i, 15), NULL, 10);
        /* a binding of an earlier boot is void: that payment died with it */
        if (req_insert(q) != 0) {
            free(q);
            return;
        }
        req_schedule(q);
        n++;
    }
    RT.open_loaded = true;
    log_info("event=requests_loaded open=%zu", n);
}

int rtp_init(struct event_base *base, uint32_t boot_id, struct pgconn *db)
{
    memset(&RT, 0, sizeof(RT));
    RT.base = base;
    RT.db = db;
    RT.boot_id = boot_id;
    if (hmap_init(&RT.map, 64) != 0)
        return -1;
    RT.alive = true;
    return 0;
}

void rtp_load(void)
{
    if (!RT.rules_loaded) {
        if (pgconn_exec(RT.db, SQL_REQUEST_RULES, 0, NULL, on_rules, NULL) != 0)
            goto fail;
        RT.loading++;
    }
    if (!RT.open_loaded) {
        if (pgconn_exec(RT.db, SQL_REQUESTS_OPEN, 0, NULL, on_open, NULL) != 0)
            goto fail;
        RT.loading++;
    }
    return;
fail:
    log_error("event=requests_load_failed why=\"database not connected; tried again at the next "
              "request\"");
}

void rtp_free(void)
{
    if (!RT.alive)
        return;
    while (RT.all != NULL)
        req_remove(RT.all);
    hmap_destroy(&RT.map);
    RT.alive = false;
}
