/* Settlement: net debit caps (AM23, a warning past the threshold, room
 * restored by settling), fee legs exact to the paisa, a window closed under
 * concurrent traffic whose net report sums to zero and covers every posting
 * once, settlement, and reconcile — which passes, then catches the switch's
 * memory differing from the ledger, says "not checked" of what it could not
 * check, and catches a planted double posting. Operator actions go through
 * sikka-ctl. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static int pay(struct harness *h, struct client *payer, struct client *payee, const char *from,
               const char *to, const char *msg_id, int64_t amount, Sikka__V1__Purpose purpose,
               char *reason)
{
    struct h_transfer t = {.msg_id = msg_id,
                           .debtor_agent = from,
                           .creditor_agent = to,
                           .amount = amount,
                           .purpose = purpose};
    if (purpose == SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT)
        t.invoice = "INV-77";
    h_send_transfer(payer, &t);
    /* refused at once (the payer hears) or forwarded (the payee hears, and
     * accepts): whichever comes first */
    int64_t deadline = h_now_ms() + 5000;
    Envelope *e;
    while ((e = client_recv(payer, 10)) == NULL) {
        CHECK(!client_is_closed(payer), "%s: %s", msg_id, client_close_reason(payer));
        Envelope *fwd = client_recv(payee, 0);
        if (fwd != NULL) {
            CHECK(fwd->body_case == SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, "%s: payee got %s",
                  msg_id, codec_body_name(fwd));
            CHECK(fwd->credit_transfer->transfer_id != 0, "forwarded transfer carries its id");
            h_send_decision(payee, fwd->credit_transfer->transfer_id, true, NULL);
            client_envelope_free(fwd);
            e = h_expect(payer, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
            client_envelope_free(h_expect(payee, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
            break;
        }
        CHECK(h_now_ms() < deadline, "%s: neither answered nor forwarded within 5 s", msg_id);
    }
    CHECK(e->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, "%s", codec_body_name(e));
    int st = e->status_report->status;
    snprintf(reason, 8, "%s", e->status_report->reason);
    client_envelope_free(e);
    (void)h;
    return st;
}

/* ---- a stream of transfers driven by callbacks, for the window test ---- */

#define STREAM 1200
static struct client *sp[3], *sq[2];
static const char *const spc[3] = {"SADA", "NAYA", "MEZN"};
static const char *const sqc[2] = {"KOKO", "EASY"};
static int s_sent, s_answered, s_acsc, s_inflight;

static void on_payee(struct client *c, const Envelope *env, void *arg)
{
    (void)arg;
    if (env->body_case != SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER)
        return;
    Sikka__V1__PayeeDecision d = SIKKA__V1__PAYEE_DECISION__INIT;
    d.transfer_id = env->credit_transfer->transfer_id;
    d.accept = 1;
    Envelope out = SIKKA__V1__ENVELOPE__INIT;
    out.body_case = SIKKA__V1__ENVELOPE__BODY_DECISION;
    out.decision = &d;
    CHECK(client_send(c, &out) == 0);
}

static void on_payer(struct client *c, const Envelope *env, void *arg)
{
    (void)c;
    (void)arg;
    if (env->body_case != SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT)
        return;
    s_answered++;
    s_inflight--;
    if (env->status_report->status == SIKKA__V1__TX_STATUS__ACSC)
        s_acsc++;
}

static void stream_top_up(void)
{
    while (s_inflight < 24 && s_sent < STREAM) {
        char id[32];
        snprintf(id, sizeof(id), "ST-%d", s_sent);
        int p = s_sent % 3, q = s_sent % 2;
        struct h_transfer t = {.msg_id = id,
                               .debtor_agent = spc[p],
                               .creditor_agent = sqc[q],
                               .amount = 1000 + s_sent * 37 % 90000,
                               .purpose = q ? SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT
                                            : SIKKA__V1__PURPOSE__P2P};
        if (q)
            t.invoice = "INV-S";
        h_send_transfer(sp[p], &t);
        s_sent++;
        s_inflight++;
    }
}

static void pump(struct harness *h, int ms)
{
    stream_top_up();
    h_pump(h, ms);
}

int main(void)
{
    struct harness h;
    char reason[8];
    h_init(&h, "settlement");
    h_admin(&h);
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");
    struct client *mezn = h_connect(&h, "MEZN");
    struct client *easy = h_connect(&h, "EASY");

    TEST_STEP("a cap of PKR 100.00 takes effect at once; 85 % used shows a warning");
    CHECK_INT(H_FOUR_EYES(&h, "supervisor", "supervisor2", "ndc", "set", "JAZZ", "100.00"), 0);
    CHECK_INT(pay(&h, jazz, koko, "JAZZ", "KOKO", "CAP-1", 8500, SIKKA__V1__PURPOSE__P2P, reason),
              SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(H_CTL(&h, "positions"), 0);
    h_ctl_expect(&h, "WARN");
    h_ctl_expect(&h, "1 participant is over the warning threshold");

    TEST_STEP("at the cap: AM23, nothing forwarded");
    CHECK_INT(pay(&h, jazz, koko, "JAZZ", "KOKO", "CAP-2", 2000, SIKKA__V1__PURPOSE__P2P, reason),
              SIKKA__V1__TX_STATUS__RJCT);
    CHECK_STR(reason, "AM23");

    TEST_STEP("fees: supplier payments charge the payee 0.20 %, within PKR 10..500");
    /* PKR 10,000 -> 20.00; PKR 1,000 -> 2.00, raised to the minimum 10.00;
     * PKR 500,000 -> 1,000.00, capped at 500.00 */
    const int64_t amounts[] = {1000000, 100000, 50000000};
    const int64_t fees[] = {2000, 1000, 50000};
    int64_t fee_total = 0, principal = 0;
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "FEE-%d", i);
        CHECK_INT(pay(&h, mezn, easy, "MEZN", "EASY", id, amounts[i],
                      SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT, reason),
                  SIKKA__V1__TX_STATUS__ACSC);
        CHECK_INT(h_sql_int(&h, "SELECT fee FROM transfers WHERE msg_id = '%s'", id), fees[i]);
        fee_total += fees[i];
        principal += amounts[i];
    }
    CHECK_INT(h_sql_int(&h, "SELECT balance FROM accounts WHERE kind = 'fee'"), fee_total);
    CHECK_INT(h_sql_int(&h, "SELECT balance FROM accounts WHERE participant = 'EASY' AND kind = "
                            "'position'"),
              principal - fee_total);
    CHECK_INT(h_sql_int(&h, "SELECT balance FROM accounts WHERE participant = 'MEZN' AND kind = "
                            "'position'"),
              -principal);

    TEST_STEP("close the window: the report nets every participant to zero in all");
    CHECK_INT(H_CTL(&h, "window", "close"), 0);
    int64_t w1 = strtoll(h_ctl_last_line(&h), NULL, 10);
    CHECK(w1 > 0);
    char w1s[24];
    snprintf(w1s, sizeof(w1s), "%lld", (long long)w1);
    CHECK_INT(H_CTL(&h, "window", "report", w1s), 0);
    h_ctl_expect(&h, "JAZZ");
    CHECK_INT(h_sql_int(&h, "SELECT sum(net) FROM window_positions WHERE window_id = %lld",
                        (long long)w1),
              0);
    CHECK_INT(h_sql_int(&h,
                        "SELECT net FROM window_positions WHERE window_id = %lld AND "
                        "participant IS NULL",
                        (long long)w1),
              fee_total);
    CHECK_INT(h_sql_int(&h,
                        "SELECT net FROM window_positions WHERE window_id = %lld AND "
                        "participant = 'JAZZ'",
                        (long long)w1),
              -8500);

    TEST_STEP("settling it restores the room under the cap: the refused payment now passes");
    CHECK_INT(H_FOUR_EYES(&h, "supervisor", "supervisor2", "window", "settle", w1s), 0);
    CHECK_INT(h_sql_int(&h, "SELECT balance FROM accounts WHERE participant = 'JAZZ' AND kind = "
                            "'position'"),
              0);
    CHECK_INT(h_sql_int(&h, "SELECT balance FROM accounts WHERE participant = 'JAZZ' AND kind = "
                            "'settlement'"),
              -8500);
    CHECK_INT(h_sql_int(&h, "SELECT balance FROM accounts WHERE kind = 'scheme_settlement'"),
              fee_total);
    CHECK_INT(pay(&h, jazz, koko, "JAZZ", "KOKO", "CAP-3", 2000, SIKKA__V1__PURPOSE__P2P, reason),
              SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(H_CTL_AS(&h, "supervisor", "window", "settle", w1s), 1); /* once only */

    TEST_STEP("close a window while transfers stream from three payers");
    for (int i = 0; i < 3; i++) {
        sp[i] = h_connect(&h, spc[i]);
        client_set_callbacks(sp[i], on_payer, NULL, NULL);
    }
    client_free(koko);
    client_free(easy);
    for (int i = 0; i < 2; i++) {
        sq[i] = h_connect(&h, sqc[i]);
        client_set_callbacks(sq[i], on_payee, NULL, NULL);
    }
    int64_t deadline = h_now_ms() + 30000;
    while (s_answered < STREAM / 3) {
        pump(&h, 5);
        CHECK(h_now_ms() < deadline, "stream stalled");
    }
    /* sikka-ctl in the background while the stream keeps flowing */
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        int rc = H_CTL(&h, "window", "close");
        fputs(h.ctl_out, stdout);
        fflush(stdout);
        _exit(rc); /* not exit(): the harness's atexit hook belongs to the parent */
    }
    close(fds[1]);
    int st, answered_during = s_answered;
    int64_t ctl_deadline = h_now_ms() + 30000;
    pid_t done;
    while ((done = waitpid(pid, &st, WNOHANG)) == 0) {
        if (h_now_ms() >= ctl_deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            CHECK(false, "sikka-ctl window close did not finish within 30 s");
        }
        pump(&h, 5);
    }
    CHECK(done == pid, "waitpid: %s", strerror(errno));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "window close under traffic");
    char buf[256] = "";
    ssize_t got = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    CHECK(got > 0);
    buf[got] = '\0';
    int64_t w2 = 0;
    for (char *line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n"))
        w2 = strtoll(line, NULL, 10);
    CHECK(w2 == w1 + 1, "the closed window is %lld", (long long)w2);
    fprintf(stderr, "   window %lld closed with the stream at %d..%d answered\n", (long long)w2,
            answered_during, s_answered);
    while (s_answered < STREAM) {
        pump(&h, 5);
        CHECK(h_now_ms() < deadline, "stream stalled");
    }
    CHECK_INT(H_CTL(&h, "window", "close"), 0);
    int64_t w3 = strtoll(h_ctl_last_line(&h), NULL, 10);

    TEST_STEP("each report sums to zero and covers its postings exactly once");
    CHECK(h_sql_int(&h,
                    "SELECT count(*) FROM transfers WHERE msg_id LIKE 'ST-%%' AND window_id "
                    "= %lld",
                    (long long)w2) > 0,
          "the stream posted before the close");
    CHECK(h_sql_int(&h,
                    "SELECT count(*) FROM transfers WHERE msg_id LIKE 'ST-%%' AND window_id "
                    "= %lld",
                    (long long)w3) > 0,
          "and after it");
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM transfers WHERE msg_id LIKE 'ST-%%' AND status "
                        "= 'ACSC' AND window_id IN (%lld, %lld)",
                        (long long)w2, (long long)w3),
              s_acsc);
    for (int64_t w = w2; w <= w3; w++) {
        CHECK_INT(h_sql_int(&h, "SELECT sum(net) FROM window_positions WHERE window_id = %lld",
                            (long long)w),
                  0);
        CHECK_INT(
            h_sql_int(&h, "SELECT postings FROM settlement_windows WHERE id = %lld", (long long)w),
            h_sql_int(&h,
                      "SELECT count(*) FROM transfers WHERE status = 'ACSC' AND "
                      "window_id = %lld",
                      (long long)w));
    }

    TEST_STEP("settle both; reconcile holds");
    PGresult *r;
    char ws[24];
    snprintf(ws, sizeof(ws), "%lld", (long long)w2);
    CHECK_INT(H_FOUR_EYES(&h, "supervisor2", "supervisor", "window", "settle", ws), 0);
    snprintf(ws, sizeof(ws), "%lld", (long long)w3);
    CHECK_INT(H_FOUR_EYES(&h, "supervisor2", "supervisor", "window", "settle", ws), 0);
    CHECK_INT(H_CTL(&h, "reconcile"), 0);
    h_ctl_expect(&h, "all 11 checks hold");
    CHECK_INT(H_CTL(&h, "window", "report", ws, "--csv"), 0);
    h_ctl_expect(&h, "participant,account_id,net");

    TEST_STEP("reconcile compares the switch's memory with the ledger at a cut");
    /* a settled transfer and its posting written past the switch (and past
     * the triggers, as only a superuser can), balances kept consistent: every
     * SQL check holds, only the switch's positions now differ */
    r = h_sql(&h,
              "BEGIN; SET LOCAL session_replication_role = replica; "
              "INSERT INTO transfers (id, payer, msg_id, fingerprint, payee, amount, status, "
              "window_id, received_at) SELECT 77, 'JAZZ', 'PLANT-MEM', "
              "decode(repeat('ab', 32), 'hex'), 'KOKO', 123, 'ACSC', id, now() "
              "FROM settlement_windows WHERE state = 'open'; "
              "INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg) "
              "SELECT 77, (SELECT id FROM settlement_windows WHERE state = 'open'), a.id, "
              "CASE a.participant WHEN 'JAZZ' THEN -123 ELSE 123 END, 'principal' "
              "FROM accounts a WHERE a.kind = 'position' AND a.participant IN ('JAZZ', 'KOKO'); "
              "UPDATE accounts SET balance = balance + CASE participant WHEN 'JAZZ' THEN -123 "
              "ELSE 123 END WHERE kind = 'position' AND participant IN ('JAZZ', 'KOKO'); "
              "COMMIT");
    PQclear(r);
    CHECK_INT(H_CTL(&h, "reconcile"), 1);
    h_ctl_expect(&h, "FAIL  switch positions equal the ledger: ");
    h_ctl_expect(&h, "1 of 11 checks FAILED, 0 not checked");

    TEST_STEP("a check that cannot run is not checked, and fails the command");
    PQclear(h_sql(&h, "REVOKE SELECT ON window_positions FROM sikka_switch"));
    CHECK_INT(H_CTL(&h, "reconcile"), 1);
    h_ctl_expect(&h, "SKIP  window reports sum to zero: the check could not run");
    h_ctl_expect(&h, "3 not checked");
    PQclear(h_sql(&h, "GRANT SELECT ON window_positions TO sikka_switch"));

    TEST_STEP("the database refuses a second posting; reconcile catches one planted past it");
    CHECK_INT(pay(&h, jazz, sq[0], "JAZZ", "KOKO", "PLANT-1", 700, SIKKA__V1__PURPOSE__P2P, reason),
              SIKKA__V1__TX_STATUS__ACSC);
    static const char double_posting[] =
        "INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg) "
        "SELECT transfer_id, window_id, account_id, amount, leg FROM ledger_entries "
        "WHERE transfer_id = (SELECT id FROM transfers WHERE msg_id = 'PLANT-1')";
    r = PQexec(h.db, double_posting);
    CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR &&
              strstr(PQresultErrorMessage(r), "already posted") != NULL,
          "a second posting by the superuser was not refused: %s", PQresultErrorMessage(r));
    PQclear(r);
    /* past the triggers, as only a superuser can */
    r = h_sql(&h, "BEGIN; SET LOCAL session_replication_role = replica; %s; COMMIT",
              double_posting);
    PQclear(r);
    CHECK_INT(H_CTL(&h, "reconcile"), 1);
    h_ctl_expect(&h, "FAIL  postings match their transfers: ");

    for (int i = 0; i < 3; i++)
        client_free(sp[i]);
    for (int i = 0; i < 2; i++)
        client_free(sq[i]);
    client_free(jazz);
    client_free(mezn);
    h_cleanup(&h);
    return 0;
}
