/* Request to pay (pain.013 / pain.014), RTP Now and RTP Later, against the
 * real daemon: KOKO (a BNPL lender) asks JAZZ (the consumer's wallet) to pay
 * an instalment. Accepted and paid with a linked credit transfer (paid once
 * under a retry, a second payment and concurrent payments, and after a
 * restart), declined, cancelled, expired; RTP Later held through the quiet
 * hours and delivered on its due date after a restart; every consumer guard
 * refusing with its code (RQ01 open requests, RQ02 per instalment, RQ03
 * quiet hours, RQ04 opt-out); bad input on every new message; the
 * operators' list per loan; and sikka-wallet's request commands and
 * `listen --accept-requests / --decline-requests`. */
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "https.h"
#include "msg.h"
#include "rtp.h"

#ifndef SIKKA_WALLET_BIN
#error "SIKKA_WALLET_BIN must be defined by the build"
#endif
#ifndef SIKKA_REPLAY_BIN
#error "SIKKA_REPLAY_BIN must be defined by the build"
#endif

#define DEBTOR "03001234567@JAZZ"

static struct harness h;

/* ---- frames ---- */

struct rtp {
    const char *msg_id;
    const char *debtor; /* default DEBTOR */
    int64_t amount;
    Sikka__V1__Purpose purpose; /* default BNPL_REPAYMENT */
    const char *loan_id;        /* default "LN-1" (BNPL) */
    uint32_t instalment;        /* default 1 */
    const char *invoice;
    const char *due_date;
    int64_t expires_in_s;
    const char *creditor_agent; /* default KOKO */
    const char *creditor_name;
    uint64_t request_id; /* must stay 0 */
};

static void send_rtp(struct client *c, const struct rtp *r)
{
    Sikka__V1__RequestToPay m = SIKKA__V1__REQUEST_TO_PAY__INIT;
    Sikka__V1__Remittance rm = SIKKA__V1__REMITTANCE__INIT;
    Sikka__V1__LoanInstalment loan = SIKKA__V1__LOAN_INSTALMENT__INIT;
    Sikka__V1__Invoice inv = SIKKA__V1__INVOICE__INIT;
    m.msg_id = (char *)r->msg_id;
    m.creditor_agent = (char *)(r->creditor_agent ? r->creditor_agent : "KOKO");
    m.creditor_account = (char *)"LENDER-1";
    m.creditor_name = (char *)(r->creditor_name ? r->creditor_name : "Koko BNPL");
    m.debtor = (char *)(r->debtor ? r->debtor : DEBTOR);
    m.amount = r->amount;
    m.purpose = r->purpose ? r->purpose : SIKKA__V1__PURPOSE__BNPL_REPAYMENT;
    if (r->invoice != NULL) {
        inv.invoice_number = (char *)r->invoice;
        rm.kind_case = SIKKA__V1__REMITTANCE__KIND_INVOICE;
        rm.invoice = &inv;
        m.remittance = &rm;
    } else if (m.purpose == SIKKA__V1__PURPOSE__BNPL_REPAYMENT) {
        loan.loan_id = (char *)(r->loan_id ? r->loan_id : "LN-1");
        loan.instalment = r->instalment ? r->instalment : 1;
        rm.kind_case = SIKKA__V1__REMITTANCE__KIND_LOAN;
        rm.loan = &loan;
        m.remittance = &rm;
    }
    m.due_date = (char *)(r->due_date ? r->due_date : "");
    m.expires_in_s = r->expires_in_s;
    m.request_id = r->request_id;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY;
    env.request_to_pay = &m;
    CHECK(client_send(c, &env) == 0, "send request %s", r->msg_id);
}

static void send_decision(struct client *c, uint64_t id, bool accept, const char *reason,
                          const char *text)
{
    Sikka__V1__RequestDecision d = SIKKA__V1__REQUEST_DECISION__INIT;
    d.request_id = id;
    d.accept = accept;
    d.reason = (char *)(reason ? reason : "");
    d.text = (char *)(text ? text : "");
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_DECISION;
    env.request_decision = &d;
    CHECK(client_send(c, &env) == 0);
}

static void send_cancel(struct client *c, uint64_t id, const char *reason)
{
    Sikka__V1__RequestCancel rc = SIKKA__V1__REQUEST_CANCEL__INIT;
    rc.request_id = id;
    rc.reason = (char *)(reason ? reason : "");
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_CANCEL;
    env.request_cancel = &rc;
    CHECK(client_send(c, &env) == 0);
}

static void send_control(struct client *c, Sikka__V1__RequestControl__Op op, const char *query_id,
                         const char *creditor, const char *account)
{
    Sikka__V1__RequestControl rc = SIKKA__V1__REQUEST_CONTROL__INIT;
    rc.op = op;
    rc.query_id = (char *)query_id;
    rc.creditor_agent = (char *)(creditor ? creditor : "");
    rc.debtor_account = (char *)(account ? account : "");
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_CONTROL;
    env.request_control = &rc;
    CHECK(client_send(c, &env) == 0);
}

/* The payment of a request: a BNPL credit transfer JAZZ -> KOKO naming it. */
static void send_payment(struct client *c, const char *msg_id, uint64_t request_id, int64_t amount,
                         const char *ref)
{
    struct msg_transfer t;
    char err[256];
    struct msg_transfer_fields f = {
        .msg_id = msg_id,
        .debtor_agent = "JAZZ",
        .debtor_account = "03001234567",
        .creditor_agent = "KOKO",
        .creditor_account = "LENDER-1",
        .amount = amount,
        .purpose = SIKKA__V1__PURPOSE__BNPL_REPAYMENT,
        .ref = ref,
    };
    CHECK(msg_transfer_init(&t, &f, err, sizeof(err)) == 0, "%s", err);
    t.ct.request_id = request_id;
    CHECK(client_send(c, &t.env) == 0);
}

/* The next frame is a RequestStatus in this state (reason "" for none, or
 * NULL: any); returns its request id. */
static uint64_t expect_state(struct client *c, Sikka__V1__RequestState state, const char *reason,
                             int timeout_ms)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_REQUEST_STATUS, timeout_ms);
    const Sikka__V1__RequestStatus *st = e->request_status;
    fprintf(stderr, "   request %" PRIu64 " %s %s %s\n", st->request_id, rtp_state_name(st->state),
            st->reason, st->text);
    CHECK_INT(st->state, state);
    if (reason != NULL)
        CHECK_STR(st->reason, reason);
    uint64_t id = st->request_id;
    client_envelope_free(e);
    return id;
}

/* The next frame is a MessageReject with this reason whose text holds `needle`. */
static void expect_reject(struct client *c, const char *reason, const char *needle)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    fprintf(stderr, "   reject %s: %s\n", e->message_reject->reason, e->message_reject->text);
    CHECK_STR(e->message_reject->reason, reason);
    CHECK(strstr(e->message_reject->text, needle) != NULL, "\"%s\" in \"%s\"", needle,
          e->message_reject->text);
    client_envelope_free(e);
}

/* The debtor's participant receives the delivered request. */
static uint64_t expect_delivery(struct client *c, uint64_t want, int timeout_ms)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY, timeout_ms);
    const Sikka__V1__RequestToPay *m = e->request_to_pay;
    if (want != 0)
        CHECK_INT(m->request_id, want);
    CHECK_STR(m->debtor_agent, "JAZZ");
    CHECK_STR(m->debtor_account, "03001234567");
    CHECK_STR(m->creditor_agent, "KOKO");
    CHECK(m->expires_at_ms > 0);
    uint64_t id = m->request_id;
    client_envelope_free(e);
    return id;
}

/* A new RTP Now from KOKO to JAZZ, delivered: returns its id. */
static uint64_t new_request(struct client *koko, struct client *jazz, const struct rtp *r)
{
    send_rtp(koko, r);
    uint64_t id = expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_DELIVERED, "", 5000);
    CHECK(id > 0);
    CHECK_INT(expect_delivery(jazz, id, 5000), id);
    return id;
}

static void expect_db_state(uint64_t id, const char *state)
{
    PGresult *r = h_sql(&h, "SELECT state FROM requests WHERE id = %llu", (unsigned long long)id);
    CHECK_INT(PQntuples(r), 1);
    CHECK_STR(PQgetvalue(r, 0, 0), state);
    PQclear(r);
}

static void cancel_request(struct client *koko, struct client *jazz, uint64_t id)
{
    send_cancel(koko, id, NULL);
    CHECK_INT(expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_CANCELLED, NULL, 5000), id);
    CHECK_INT(expect_state(jazz, SIKKA__V1__REQUEST_STATE__REQUEST_CANCELLED, NULL, 5000), id);
}

/* Seconds after midnight, Pakistan time, now. */
static int64_t pkt_second_now(void)
{
    return ((int64_t)time(NULL) + 5 * 3600) % 86400;
}

static void today_pkt(char *buf, size_t len, int days_ahead)
{
    time_t t = time(NULL) + 5 * 3600 + (time_t)days_ahead * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d", &tm);
}

static void restart(struct client **koko, struct client **jazz)
{
    int loaded = h_log_count(&h, "event=requests_loaded");
    client_free(*koko);
    client_free(*jazz);
    CHECK_INT(h_stop(&h), 0);
    h_start(&h);
    *koko = h_connect(&h, "KOKO");
    *jazz = h_connect(&h, "JAZZ");
    /* the request service has loaded its rules and open requests */
    H_WAIT_LOG(&h, loaded + 1, 10000, "event=requests_loaded");
}

/* ---- sikka-wallet ---- */

/* sikka-wallet as participant `code`: its stdout and stderr in
 * <workdir>/wallet-<name>.out and .err. With wait, its exit status in
 * *status; without, it runs on (the harness kills it if the test fails). */
static pid_t wallet_run(const char *name, const char *code, bool wait, int *status,
                        const char *const *args)
{
    char cert[300], key[300], ca[300], file[32], connect[32], out[400], errf[400];
    snprintf(file, sizeof(file), "%s.crt", code);
    h_pki(&h, file, cert, sizeof(cert));
    snprintf(file, sizeof(file), "%s.key", code);
    h_pki(&h, file, key, sizeof(key));
    h_pki(&h, "ca.crt", ca, sizeof(ca));
    snprintf(connect, sizeof(connect), "127.0.0.1:%d", h.port);
    snprintf(out, sizeof(out), "%s/wallet-%s.out", h.workdir, name);
    snprintf(errf, sizeof(errf), "%s/wallet-%s.err", h.workdir, name);
    const char *argv[40] = {SIKKA_WALLET_BIN,
                            "--connect",
                            connect,
                            "--participant",
                            code,
                            "--cert",
                            cert,
                            "--key",
                            key,
                            "--ca",
                            ca,
                            "--timeout-ms",
                            "10000"};
    size_t n = 13;
    for (size_t i = 0; args[i] != NULL && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = h_spawn(argv, out, errf);
    if (wait)
        *status = h_spawn_wait(&h, pid, 30000);
    return pid;
}
#define WALLET(name, code, status, ...)                                                            \
    wallet_run((name), (code), true, (status), (const char *const[]){__VA_ARGS__, NULL})
#define WALLET_BG(name, code, ...)                                                                 \
    wallet_run((name), (code), false, NULL, (const char *const[]){__VA_ARGS__, NULL})

static void wallet_output(const char *name, char *buf, size_t len)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/wallet-%s.out", h.workdir, name);
    fprintf(stderr, "   [%s] %s", name, h_read_file(path, buf, len));
}

/* Polls a wallet's output for needle (the listener prints as it goes). */
static void wait_output(const char *name, const char *needle, int timeout_ms)
{
    char buf[8192];
    int64_t deadline = h_now_ms() + timeout_ms;
    for (;;) {
        char path[400];
        snprintf(path, sizeof(path), "%s/wallet-%s.out", h.workdir, name);
        if (strstr(h_read_file(path, buf, sizeof(buf)), needle) != NULL)
            return;
        CHECK(h_now_ms() < deadline, "\"%s\" not in the output of %s within %d ms: %s", needle,
              name, timeout_ms, buf);
        h_pump(&h, 50);
    }
}

static void stop_wallet(pid_t pid)
{
    kill(pid, SIGTERM);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
}

int main(void)
{
    h_init(&h, "rtp");
    /* no quiet hours for the first part; tighter guards for BNPL */
    PQclear(h_sql(&h, "UPDATE request_rules SET quiet_start_s = 0, quiet_end_s = 0, "
                      "max_open_per_pair = 2, max_per_reference = 3"));
    h_admin(&h);
    h_start(&h);
    struct client *koko = h_connect(&h, "KOKO");
    struct client *jazz = h_connect(&h, "JAZZ");
    H_WAIT_LOG(&h, 1, 10000, "event=requests_loaded");
    int64_t koko_before = h_position_balance(&h, "KOKO");

    TEST_STEP("RTP Now: delivered to JAZZ, accepted, paid by a linked transfer, PAID to both");
    uint64_t r1 = new_request(koko, jazz, &(struct rtp){.msg_id = "RTP-1", .amount = 250000});
    send_decision(jazz, r1, true, NULL, NULL);
    CHECK_INT(expect_state(jazz, SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED, "", 5000), r1);
    CHECK_INT(expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED, "", 5000), r1);
    expect_db_state(r1, "accepted");
    send_payment(jazz, "PAY-1", r1, 250000, "LN-1/1");
    Envelope *fwd = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    CHECK_INT(fwd->credit_transfer->request_id, r1); /* the creditor sees the link */
    uint64_t t1 = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    h_send_decision(koko, t1, true, NULL);
    CHECK_INT(expect_state(jazz, SIKKA__V1__REQUEST_STATE__REQUEST_PAID, "", 5000), r1);
    CHECK_INT(h_expect_report(jazz, "PAY-1", SIKKA__V1__TX_STATUS__ACSC, ""), t1);
    CHECK_INT(expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_PAID, "", 5000), r1);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    expect_db_state(r1, "paid");
    CHECK_INT(h_sql_int(&h, "SELECT paid_transfer_id FROM requests WHERE id = %llu",
                        (unsigned long long)r1),
              t1);
    CHECK_INT(h_position_balance(&h, "KOKO") - koko_before, 250000);

    TEST_STEP("paid once: the same payment again is its retry (same transfer), a second payment "
              "is refused DUPL, nothing more is posted");
    send_payment(jazz, "PAY-1", r1, 250000, "LN-1/1");
    CHECK_INT(h_expect_report(jazz, "PAY-1", SIKKA__V1__TX_STATUS__ACSC, ""), t1);
    send_payment(jazz, "PAY-1B", r1, 250000, "LN-1/1");
    h_expect_report(jazz, "PAY-1B", SIKKA__V1__TX_STATUS__RJCT, "DUPL");
    CHECK(h_silent(koko, 300));
    CHECK_INT(h_position_balance(&h, "KOKO") - koko_before, 250000);

    TEST_STEP("concurrent payments of one accepted request: one is routed, the other DUPL");
    uint64_t r2 =
        new_request(koko, jazz, &(struct rtp){.msg_id = "RTP-2", .amount = 1000, .instalment = 2});
    send_decision(jazz, r2, true, NULL, NULL);
    expect_state(jazz, SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED, "", 5000);
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED, "", 5000);
    send_payment(jazz, "PAY-2A", r2, 1000, "LN-1/2");
    send_payment(jazz, "PAY-2B", r2, 1000, "LN-1/2");
    h_expect_report(jazz, "PAY-2B", SIKKA__V1__TX_STATUS__RJCT, "DUPL");
    uint64_t t2 = h_payee_decide(koko, true, NULL);
    expect_state(jazz, SIKKA__V1__REQUEST_STATE__REQUEST_PAID, "", 5000);
    CHECK_INT(h_expect_report(jazz, "PAY-2A", SIKKA__V1__TX_STATUS__ACSC, ""), t2);
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_PAID, "", 5000);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE status = 'ACSC' AND payee = "
                            "'KOKO'"),
              2);

    TEST_STEP("a payment that does not match its request (amount): RQ06; a payee's rejection "
              "frees the request for another payment");
    uint64_t r3 =
        new_request(koko, jazz, &(struct rtp){.msg_id = "RTP-3", .amount = 3000, .instalment = 3});
    send_payment(jazz, "PAY-3-EARLY", r3, 3000, "LN-1/3");
    h_expect_report(jazz, "PAY-3-EARLY", SIKKA__V1__TX_STATUS__RJCT, "RQ05"); /* not accepted */
    send_decision(jazz, r3, true, NULL, NULL);
    expect_state(jazz, SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED, "", 5000);
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED, "", 5000);
    send_payment(jazz, "PAY-3-WRONG", r3, 2999, "LN-1/3");
    h_expect_report(jazz, "PAY-3-WRONG", SIKKA__V1__TX_STATUS__RJCT, "RQ06");
    send_payment(jazz, "PAY-3-A", r3, 3000, "LN-1/3");
    h_payee_decide(koko, false, "AC04");
    h_expect_report(jazz, "PAY-3-A", SIKKA__V1__TX_STATUS__RJCT, "AC04");
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    expect_db_state(r3, "accepted");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM requests WHERE id = %llu AND pay_msg_id IS NULL",
                        (unsigned long long)r3),
              1);
    send_payment(jazz, "PAY-3-B", r3, 3000, "LN-1/3");
    uint64_t t3 = h_payee_decide(koko, true, NULL);
    expect_state(jazz, SIKKA__V1__REQUEST_STATE__REQUEST_PAID, "", 5000);
    CHECK_INT(h_expect_report(jazz, "PAY-3-B", SIKKA__V1__TX_STATUS__ACSC, ""), t3);
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_PAID, "", 5000);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));

    TEST_STEP("declined with a reason: DECLINED to both; a late decision is refused");
    uint64_t r4 =
        new_request(koko, jazz, &(struct rtp){.msg_id = "RTP-4", .amount = 4000, .instalment = 4});
    send_decision(jazz, r4, false, "MS02", "customer disputes the instalment");
    CHECK_INT(expect_state(jazz, SIKKA__V1__REQUEST_STATE__REQUEST_DECLINED, "MS02", 5000), r4);
    CHECK_INT(expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_DECLINED, "MS02", 5000), r4);
    expect_db_state(r4, "declined");
    send_decision(jazz, r4, true, NULL, NULL);
    expect_reject(jazz, "NARR", "unknown");
    send_payment(jazz, "PAY-4", r4, 4000, "LN-1/4");
    h_expect_report(jazz, "PAY-4", SIKKA__V1__TX_STATUS__RJCT, "RQ05");

    TEST_STEP("cancelled by the creditor: CANCELLED to both; only the creditor may cancel; an "
              "unanswered request is delivered again when the debtor agent reconnects");
    uint64_t r5 =
        new_request(koko, jazz, &(struct rtp){.msg_id = "RTP-5", .amount = 5000, .instalment = 5});
    /* JAZZ reconnects: an unanswered request is delivered again on its new session */
    int jazz_closed = h_log_count(&h, "event=session_closed session=JAZZ");
    client_free(jazz);
    H_WAIT_LOG(&h, jazz_closed + 1, 5000, "event=session_closed session=JAZZ");
    jazz = h_connect(&h, "JAZZ");
    CHECK_INT(expect_delivery(jazz, r5, 5000), r5);
    send_cancel(jazz, r5, NULL); /* the debtor's participant may not */
    expect_reject(jazz, "NARR", "unknown");
    cancel_request(koko, jazz, r5);
    expect_db_state(r5, "cancelled");
    send_decision(jazz, r5, true, NULL, NULL);
    expect_reject(jazz, "NARR", "unknown");

    TEST_STEP("expired: not answered within --expires-in 1 s, EXPIRED to both");
    uint64_t r6 = new_request(
        koko, jazz,
        &(struct rtp){.msg_id = "RTP-6", .amount = 6000, .instalment = 6, .expires_in_s = 1});
    CHECK_INT(expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_EXPIRED, NULL, 5000), r6);
    CHECK_INT(expect_state(jazz, SIKKA__V1__REQUEST_STATE__REQUEST_EXPIRED, NULL, 5000), r6);
    expect_db_state(r6, "expired");
    send_decision(jazz, r6, true, NULL, NULL);
    expect_reject(jazz, "NARR", "unknown");

    TEST_STEP("a retried request (same msg_id) is answered with the request as it stands; the "
              "same msg_id with another body is AM05");
    send_rtp(koko, &(struct rtp){.msg_id = "RTP-1", .amount = 250000});
    CHECK_INT(expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_PAID, "", 5000), r1);
    send_rtp(koko, &(struct rtp){.msg_id = "RTP-1", .amount = 1});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "AM05", 5000);
    CHECK(h_silent(jazz, 200));

    TEST_STEP("guard RQ01: at most 2 open BNPL requests from KOKO to this debtor");
    uint64_t o1 = new_request(koko, jazz,
                              &(struct rtp){.msg_id = "OPEN-1", .amount = 100, .loan_id = "LN-2"});
    uint64_t o2 = new_request(koko, jazz,
                              &(struct rtp){.msg_id = "OPEN-2", .amount = 100, .loan_id = "LN-3"});
    send_rtp(koko, &(struct rtp){.msg_id = "OPEN-3", .amount = 100, .loan_id = "LN-4"});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "RQ01", 5000);
    CHECK(h_silent(jazz, 200));
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM requests WHERE msg_id = 'OPEN-3' AND state = "
                            "'rejected' AND reason = 'RQ01'"),
              1);
    cancel_request(koko, jazz, o1);
    cancel_request(koko, jazz, o2);

    TEST_STEP("guard RQ02: at most 3 requests per instalment (LN-7/1), whatever became of them");
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "INST-%d", i);
        uint64_t r =
            new_request(koko, jazz, &(struct rtp){.msg_id = id, .amount = 700, .loan_id = "LN-7"});
        cancel_request(koko, jazz, r);
    }
    send_rtp(koko, &(struct rtp){.msg_id = "INST-3", .amount = 700, .loan_id = "LN-7"});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "RQ02", 5000);
    CHECK(h_silent(jazz, 200));
    /* another instalment of the same loan is not affected */
    uint64_t other = new_request(
        koko, jazz,
        &(struct rtp){.msg_id = "INST-OTHER", .amount = 700, .loan_id = "LN-7", .instalment = 2});
    cancel_request(koko, jazz, other);

    TEST_STEP("guard RQ04: JAZZ opts its customer out of KOKO's requests; unblocked again");
    send_control(jazz, SIKKA__V1__REQUEST_CONTROL__OP__BLOCK, "Q-BLOCK", "KOKO", "03001234567");
    Envelope *ans = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_REQUEST_CONTROL, 5000);
    CHECK(ans->request_control->done);
    CHECK_STR(ans->request_control->query_id, "Q-BLOCK");
    client_envelope_free(ans);
    send_rtp(koko, &(struct rtp){.msg_id = "BLOCKED-1", .amount = 100, .loan_id = "LN-8"});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "RQ04", 5000);
    CHECK(h_silent(jazz, 200));
    /* another account of JAZZ is still reachable */
    uint64_t r7 = 0;
    send_rtp(koko, &(struct rtp){.msg_id = "OTHER-ACC",
                                 .amount = 100,
                                 .loan_id = "LN-8",
                                 .debtor = "03009999999@JAZZ"});
    r7 = expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_DELIVERED, "", 5000);
    client_envelope_free(h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY, 5000));
    cancel_request(koko, jazz, r7);
    send_control(jazz, SIKKA__V1__REQUEST_CONTROL__OP__UNBLOCK, "Q-UNBLOCK", "KOKO", "03001234567");
    client_envelope_free(h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_REQUEST_CONTROL, 5000));
    uint64_t r8 = new_request(
        koko, jazz, &(struct rtp){.msg_id = "UNBLOCKED-1", .amount = 100, .loan_id = "LN-8"});

    TEST_STEP("request list: each side sees its open requests");
    send_control(koko, SIKKA__V1__REQUEST_CONTROL__OP__LIST, "Q-LIST", NULL, NULL);
    ans = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_REQUEST_CONTROL, 5000);
    CHECK_INT(ans->request_control->n_requests, 1);
    CHECK_INT(ans->request_control->requests[0]->request_id, r8);
    CHECK_STR(ans->request_control->requests[0]->ref, "LN-8/1");
    client_envelope_free(ans);
    struct client *easy = h_connect(&h, "EASY");
    send_control(easy, SIKKA__V1__REQUEST_CONTROL__OP__LIST, "Q-LIST", NULL, NULL);
    ans = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_REQUEST_CONTROL, 5000);
    CHECK_INT(ans->request_control->n_requests, 0); /* nobody else's */
    client_envelope_free(ans);
    /* nor may it decide or cancel them: the answer to an unknown id */
    send_decision(easy, r8, true, NULL, NULL);
    expect_reject(easy, "NARR", "unknown");
    send_cancel(easy, r8, NULL);
    expect_reject(easy, "NARR", "unknown");
    send_payment(jazz, "PAY-8-EARLY", r8, 100, "LN-8/1");
    h_expect_report(jazz, "PAY-8-EARLY", SIKKA__V1__TX_STATUS__RJCT, "RQ05");
    cancel_request(koko, jazz, r8);

    TEST_STEP("bad input on every new message: FF01 naming the field, or its reason code");
    send_rtp(koko, &(struct rtp){.msg_id = "BAD\x01", .amount = 100});
    expect_reject(koko, "FF01", "request_to_pay.msg_id");
    send_rtp(koko, &(struct rtp){.msg_id = "BAD-NAME", .amount = 100, .creditor_name = "name\x7f"});
    expect_reject(koko, "FF01", "request_to_pay.creditor_name");
    send_rtp(koko, &(struct rtp){.msg_id = "BAD-DEBTOR", .amount = 100, .debtor = "@JAZZ"});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "FF01", 5000);
    send_rtp(koko, &(struct rtp){.msg_id = "BAD-ID", .amount = 100, .request_id = 5});
    expect_reject(koko, "FF01", "request_id");
    send_rtp(koko, &(struct rtp){.msg_id = "BAD-LOAN",
                                 .amount = 100,
                                 .purpose = SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT});
    expect_reject(koko, "FF01", "request_to_pay.remittance.invoice");
    send_rtp(koko, &(struct rtp){.msg_id = "BAD-PURPOSE", .amount = 100, .purpose = 9});
    expect_reject(koko, "FF03", "purpose");
    /* an alias nobody registered (it_alias sends one to a registered alias) */
    send_rtp(koko,
             &(struct rtp){.msg_id = "UNKNOWN-ALIAS", .amount = 100, .debtor = "03001234567"});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "BE23", 5000);
    send_rtp(koko, &(struct rtp){.msg_id = "BAD-AGENT", .amount = 100, .debtor = "1@ZZZZ"});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "RC04", 5000);
    send_rtp(koko, &(struct rtp){.msg_id = "BAD-SENDER", .amount = 100, .creditor_agent = "EASY"});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "RC01", 5000);
    send_rtp(koko, &(struct rtp){.msg_id = "BAD-AMOUNT", .amount = 0});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "AM02", 5000);
    send_rtp(koko, &(struct rtp){.msg_id = "BAD-DUE", .amount = 100, .due_date = "2026-02-30"});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "DT01", 5000);
    send_rtp(koko, &(struct rtp){.msg_id = "PAST-DUE", .amount = 100, .due_date = "2020-01-01"});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "DT01", 5000);
    send_rtp(koko, &(struct rtp){.msg_id = "LONG-EXP", .amount = 100, .expires_in_s = 99999999});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "FF01", 5000);
    send_decision(jazz, 1, false, "bad!", NULL);
    expect_reject(jazz, "FF01", "request_decision.reason");
    send_decision(jazz, 1, false, "MS02", "text\x02");
    expect_reject(jazz, "FF01", "request_decision.text");
    send_cancel(koko, 1, "toolong");
    expect_reject(koko, "FF01", "request_cancel.reason");
    send_control(jazz, SIKKA__V1__REQUEST_CONTROL__OP__LIST,
                 "0123456789012345678901234567890123456789", NULL, NULL);
    expect_reject(jazz, "FF01", "request_control.query_id");
    send_control(jazz, SIKKA__V1__REQUEST_CONTROL__OP__BLOCK, "Q", "KOKO", "");
    expect_reject(jazz, "FF01", "request_control.debtor_account");
    send_control(jazz, SIKKA__V1__REQUEST_CONTROL__OP__BLOCK, "Q", "koko", "1");
    expect_reject(jazz, "FF01", "request_control.creditor_agent");
    {
        Sikka__V1__RequestStatus st = SIKKA__V1__REQUEST_STATUS__INIT;
        Envelope env = SIKKA__V1__ENVELOPE__INIT;
        env.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_STATUS;
        env.request_status = &st;
        CHECK(client_send(jazz, &env) == 0);
        expect_reject(jazz, "FF01", "request_status");
    }
    send_payment(jazz, "PAY-UNKNOWN", 987654321, 100, "LN-1/1");
    h_expect_report(jazz, "PAY-UNKNOWN", SIKKA__V1__TX_STATUS__RJCT, "RQ05");
    send_payment(jazz, "PAY-HUGE-ID", UINT64_MAX, 100, "LN-1/1");
    h_expect_report(jazz, "PAY-HUGE-ID", SIKKA__V1__TX_STATUS__RJCT, "RQ05");
    CHECK(h_running(&h));

    TEST_STEP("the operators' list: every collection attempt on loan LN-7, refused ones too "
              "(viewer role), accounts masked");
    {
        SSL_CTX *viewer = h_tls_ctx(&h, "viewer");
        struct https_response resp;
        char err[256];
        CHECK(https_request(viewer, "127.0.0.1", h.admin_port, "GET",
                            "/api/v1/requests?loan_id=LN-7&participant=KOKO", NULL, 0, 5000, &resp,
                            err, sizeof(err)) == 0,
              "%s", err);
        CHECK_INT(resp.status, 200);
        json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
        json_t *list = json_object_get(j, "requests");
        CHECK_INT(json_array_size(list), 5); /* 3 cancelled, 1 refused RQ02, 1 other instalment */
        CHECK_STR(json_string_value(json_object_get(json_array_get(list, 1), "reason")), "RQ02");
        CHECK(strstr(resp.body, "03001234567") == NULL, "the debtor's account is masked");
        json_decref(j);
        https_response_free(&resp);
        CHECK(https_request(viewer, "127.0.0.1", h.admin_port, "GET",
                            "/api/v1/requests?state=paid&limit=2", NULL, 0, 5000, &resp, err,
                            sizeof(err)) == 0,
              "%s", err);
        CHECK_INT(resp.status, 200);
        j = json_loadb(resp.body, resp.body_len, 0, NULL);
        CHECK_INT(json_array_size(json_object_get(j, "requests")), 2);
        CHECK(json_integer_value(json_object_get(j, "next_before")) > 0, "paged");
        json_decref(j);
        https_response_free(&resp);
        CHECK(https_request(viewer, "127.0.0.1", h.admin_port, "GET",
                            "/api/v1/requests?state=bogus", NULL, 0, 5000, &resp, err,
                            sizeof(err)) == 0,
              "%s", err);
        CHECK_INT(resp.status, 400);
        https_response_free(&resp);
        SSL_CTX_free(viewer);
        CHECK_INT(H_CTL_AS(&h, "viewer", "requests", "loan", "LN-7"), 0);
        fprintf(stderr, "%s", h.ctl_out);
        h_ctl_expect(&h, "RQ02");
        h_ctl_expect(&h, "cancelled");
    }

    TEST_STEP("paid once across a restart: a new payment of a paid request is still DUPL");
    client_free(easy);
    restart(&koko, &jazz);
    send_payment(jazz, "PAY-1C", r1, 250000, "LN-1/1");
    h_expect_report(jazz, "PAY-1C", SIKKA__V1__TX_STATUS__RJCT, "DUPL");
    CHECK(h_silent(koko, 300));

    TEST_STEP("guard RQ03: quiet hours (Pakistan time) refuse RTP Now; RTP Later for today is "
              "held until they end, survives a restart and is delivered on its due date");
    int64_t sec = pkt_second_now();
    if (sec > 86400 - 120 || sec < 60) {
        fprintf(stderr, "   (near midnight in Pakistan: waiting for the day to settle)\n");
        h_pump(&h, (int)((sec < 60 ? 60 - sec : 86400 - sec + 60) * 1000));
        sec = pkt_second_now();
    }
    /* quiet from a minute ago until 20 s from now */
    int64_t quiet_end = sec + 20;
    PQclear(h_sql(&h, "UPDATE request_rules SET quiet_start_s = %lld, quiet_end_s = %lld",
                  (long long)(sec - 60), (long long)quiet_end));
    restart(&koko, &jazz);
    send_rtp(koko, &(struct rtp){.msg_id = "QUIET-NOW", .amount = 100, .loan_id = "LN-9"});
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_REJECTED, "RQ03", 5000);
    CHECK(h_silent(jazz, 200));
    char today[16];
    today_pkt(today, sizeof(today), 0);
    send_rtp(koko, &(struct rtp){
                       .msg_id = "LATER-1", .amount = 900, .loan_id = "LN-9", .due_date = today});
    uint64_t later = expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_PENDING, "", 5000);
    expect_db_state(later, "pending");
    char tomorrow[16];
    today_pkt(tomorrow, sizeof(tomorrow), 1);
    send_rtp(koko, &(struct rtp){.msg_id = "LATER-2",
                                 .amount = 900,
                                 .loan_id = "LN-9",
                                 .instalment = 2,
                                 .due_date = tomorrow});
    uint64_t later2 = expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_PENDING, "", 5000);
    /* tomorrow's waits for tomorrow: Pakistan's midnight (outside these quiet hours) */
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM requests WHERE id = %llu AND deliver_at = "
                        "'%s'::date::timestamp AT TIME ZONE INTERVAL '+05:00'",
                        (unsigned long long)later2, tomorrow),
              1);
    restart(&koko, &jazz); /* the pending request is reloaded */
    CHECK(pkt_second_now() < quiet_end, "the restarts took too long for this test");
    CHECK(h_silent(jazz, 1000)); /* still quiet */
    CHECK_INT(expect_delivery(jazz, later, 30000), later);
    CHECK_INT(expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_DELIVERED, "", 5000), later);
    CHECK(pkt_second_now() >= quiet_end || pkt_second_now() < 60, "delivered after quiet hours");
    expect_db_state(later, "delivered");
    expect_db_state(later2, "pending");
    cancel_request(koko, jazz, later);
    send_cancel(koko, later2, NULL);
    expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_CANCELLED, NULL, 5000);
    CHECK(h_silent(jazz, 200)); /* never delivered: the debtor never hears of it */
    PQclear(h_sql(&h, "UPDATE request_rules SET quiet_start_s = 0, quiet_end_s = 0"));
    restart(&koko, &jazz);

    TEST_STEP("sikka-wallet: request send / list / cancel, and listen --accept-requests paying "
              "with a linked transfer");
    /* the wallet is JAZZ's only session: deliveries go to it */
    int closed = h_log_count(&h, "event=session_closed session=JAZZ");
    client_free(jazz);
    jazz = NULL;
    H_WAIT_LOG(&h, closed + 1, 5000, "event=session_closed session=JAZZ");
    int opened = h_log_count(&h, "event=session_open session=JAZZ");
    pid_t payer = WALLET_BG("jazz-listen", "JAZZ", "listen", "--accept-requests");
    H_WAIT_LOG(&h, opened + 1, 10000, "event=session_open session=JAZZ");
    char out[8192];
    int st = -1;
    /* KOKO (the test's connection) asks, and answers the payment as its payee */
    send_rtp(koko, &(struct rtp){.msg_id = "W-1", .amount = 1250, .loan_id = "LN-W"});
    uint64_t w1 = expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_DELIVERED, "", 5000);
    CHECK_INT(expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_ACCEPTED, "", 5000), w1);
    Envelope *wt = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    CHECK_INT(wt->credit_transfer->request_id, w1);
    CHECK_INT(wt->credit_transfer->amount, 1250);
    h_send_decision(koko, wt->credit_transfer->transfer_id, true, NULL);
    client_envelope_free(wt);
    CHECK_INT(expect_state(koko, SIKKA__V1__REQUEST_STATE__REQUEST_PAID, "", 5000), w1);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    char needle[64];
    snprintf(needle, sizeof(needle), "REQUEST_PAID %" PRIu64 " transfer", w1);
    wait_output("jazz-listen", needle, 10000);
    expect_db_state(w1, "paid");
    closed = h_log_count(&h, "event=session_closed session=JAZZ");
    stop_wallet(payer);
    H_WAIT_LOG(&h, closed + 1, 5000, "event=session_closed session=JAZZ");

    /* from here KOKO is sikka-wallet only */
    int koko_closed = h_log_count(&h, "event=session_closed session=KOKO");
    client_free(koko);
    koko = NULL;
    H_WAIT_LOG(&h, koko_closed + 1, 5000, "event=session_closed session=KOKO");
    opened = h_log_count(&h, "event=session_open session=JAZZ");
    payer = WALLET_BG("jazz-decline", "JAZZ", "listen", "--decline-requests", "MS02");
    H_WAIT_LOG(&h, opened + 1, 10000, "event=session_open session=JAZZ");
    WALLET("send-2", "KOKO", &st, "request", "send", "--to", DEBTOR, "--amount", "1.00",
           "--purpose", "BNPL_REPAYMENT", "--ref", "LN-W/2", "--from", "LENDER-1");
    wallet_output("send-2", out, sizeof(out));
    CHECK_INT(st, 0);
    uint64_t w2 = strtoull(out, NULL, 10);
    CHECK(w2 > w1);
    h_wait_sql_int(&h, 1, 10000,
                   "SELECT count(*) FROM requests WHERE id = %llu AND state = 'declined' AND "
                   "reason = 'MS02'",
                   (unsigned long long)w2);
    snprintf(needle, sizeof(needle), "REQUEST_DECLINED %" PRIu64 " MS02", w2);
    wait_output("jazz-decline", needle, 10000);
    closed = h_log_count(&h, "event=session_closed session=JAZZ");
    stop_wallet(payer);
    H_WAIT_LOG(&h, closed + 1, 5000, "event=session_closed session=JAZZ");

    /* a request nobody answers: listed, then cancelled, with the wallet */
    jazz = h_connect(&h, "JAZZ");
    WALLET("send-3", "KOKO", &st, "request", "send", "--to", DEBTOR, "--amount", "2.00",
           "--purpose", "P2P", "--due", tomorrow, "--expires-in", "600");
    wallet_output("send-3", out, sizeof(out));
    CHECK_INT(st, 0);
    uint64_t w3 = strtoull(out, NULL, 10);
    WALLET("list", "KOKO", &st, "request", "list");
    wallet_output("list", out, sizeof(out));
    CHECK_INT(st, 0);
    CHECK(strstr(out, "PENDING KOKO->JAZZ 2.00 P2P") != NULL);
    WALLET("cancel", "KOKO", &st, "request", "cancel", "12x");
    CHECK_INT(st, 2); /* not an id: a usage error, nothing sent */
    char idtext[24];
    snprintf(idtext, sizeof(idtext), "%" PRIu64, w3);
    WALLET("cancel", "KOKO", &st, "request", "cancel", idtext);
    wallet_output("cancel", out, sizeof(out));
    CHECK_INT(st, 0);
    CHECK(strstr(out, "CANCELLED") != NULL);
    expect_db_state(w3, "cancelled");
    WALLET("refused", "KOKO", &st, "request", "send", "--to", "123", "--amount", "2.00",
           "--purpose", "P2P");
    wallet_output("refused", out, sizeof(out));
    CHECK_INT(st, 1);
    CHECK(strncmp(out, "RJCT FF01 ", 10) == 0, "not an account nor an alias: %s", out);
    WALLET("decline-unknown", "JAZZ", &st, "request", "decline", idtext, "--reason", "MS02");
    wallet_output("decline-unknown", out, sizeof(out));
    CHECK_INT(st, 1);
    CHECK(strncmp(out, "RJCT NARR ", 10) == 0);

    TEST_STEP("sikka-replay requests: the request-flow scenario, 10 requests (7 paid once, 1 "
              "declined, 1 cancelled, 1 expired)");
    {
        jazz_closed = h_log_count(&h, "event=session_closed session=JAZZ");
        client_free(jazz);
        jazz = NULL;
        H_WAIT_LOG(&h, jazz_closed + 1, 5000, "event=session_closed session=JAZZ");
        char connect[32], outf[400];
        snprintf(connect, sizeof(connect), "127.0.0.1:%d", h.port);
        snprintf(outf, sizeof(outf), "%s/replay-requests.out", h.workdir);
        fprintf(stderr, "   $ sikka-replay requests --count 10 --run-id T1\n");
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            int o = open(outf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (o < 0)
                _exit(126);
            dup2(o, 1);
            execl(SIKKA_REPLAY_BIN, "sikka-replay", "requests", "--connect", connect, "--pki",
                  h.pki, "--count", "10", "--run-id", "T1", (char *)NULL);
            _exit(127);
        }
        int rst;
        CHECK(waitpid(pid, &rst, 0) == pid);
        FILE *f = fopen(outf, "r");
        size_t n = f != NULL ? fread(out, 1, sizeof(out) - 1, f) : 0;
        out[n] = '\0';
        if (f != NULL)
            fclose(f);
        fprintf(stderr, "%s", out);
        CHECK(WIFEXITED(rst) && WEXITSTATUS(rst) == 0, "sikka-replay requests failed");
        CHECK(strstr(out, "ended as planned 10") != NULL);
        CHECK(strstr(out, "7 of 7 paid") != NULL);
        CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM requests r JOIN transfers t ON t.id = "
                                "r.paid_transfer_id WHERE r.msg_id LIKE 'RQF-T1-%%' AND r.state = "
                                "'paid' AND t.status = 'ACSC'"),
                  7);
        CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM requests WHERE msg_id LIKE 'RQF-T1-%%' AND "
                                "state IN ('declined', 'cancelled', 'expired')"),
                  3);
        jazz = h_connect(&h, "JAZZ");
    }

    TEST_STEP("the database refuses illegal moves by itself");
    char err[512];
    const char *e1 = h_sql_as_switch(&h, "UPDATE requests SET state = 'pending'", err, sizeof(err));
    CHECK(e1[0] != '\0', "the switch role cannot write requests directly");
    PGresult *bad = PQexec(h.db, "UPDATE requests SET state = 'delivered' WHERE state = 'paid'");
    CHECK(PQresultStatus(bad) == PGRES_FATAL_ERROR, "paid is final");
    fprintf(stderr, "   %s", PQresultErrorMessage(bad));
    PQclear(bad);

    client_free(jazz);
    h_cleanup(&h);
    return 0;
}
