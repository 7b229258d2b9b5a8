/* The switch stays in step with the database, and no database text reaches
 * the wire. The reporting role is refused every write and every operator
 * function while the switch keeps serving; a superuser closes the window,
 * suspends and resumes a participant and adds a new one behind the switch's
 * back, and the switch follows each change (the NOTIFY makes it quick); a
 * transient database failure (a statement timeout behind a lock) is retried
 * until the payment settles, never stored as a rejection. Every report and
 * reject a participant reads in this test is checked for database words. */
#include <jansson.h>

#include "harness.h"

/* ---- what participants read ---- */

/* Words of PostgreSQL's messages; none may reach a participant. */
static const char *const db_words[] = {"ERROR",    "SQLSTATE", "CONTEXT",
                                       "violates", "relation", "PL/pgSQL"};
static int texts_checked;

static void check_wire_text(const Envelope *e)
{
    const char *text;
    if (e->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT)
        text = e->status_report->text;
    else if (e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT)
        text = e->message_reject->text;
    else
        return;
    for (size_t i = 0; i < sizeof(db_words) / sizeof(db_words[0]); i++)
        CHECK(strstr(text, db_words[i]) == NULL, "a participant read database text (\"%s\"): %s",
              db_words[i], text);
    texts_checked++;
}

/* The next frame within timeout_ms, or NULL; its text checked. */
static Envelope *recv_checked(struct client *c, int timeout_ms)
{
    Envelope *e = client_recv(c, timeout_ms);
    if (e != NULL)
        check_wire_text(e);
    return e;
}

static Envelope *expect_checked(struct client *c, Sikka__V1__Envelope__BodyCase body,
                                int timeout_ms)
{
    Envelope *e = h_recv(c, timeout_ms);
    check_wire_text(e);
    CHECK((int)e->body_case == (int)body, "expected body %d, got %s", (int)body,
          codec_body_name(e));
    return e;
}

/* ---- payments ---- */

struct paid {
    int status;
    char reason[8];
    uint64_t transfer_id;
    bool forwarded;
};

/* Sends one P2P transfer; when the payee is asked, it accepts. Returns what
 * the payer was told (and drains the payee's report). */
static struct paid pay(struct client *payer, struct client *payee, const char *from, const char *to,
                       const char *msg_id, int64_t amount)
{
    h_send_payment(payer, msg_id, from, to, amount);
    struct paid out = {0};
    int64_t deadline = h_now_ms() + 5000;
    Envelope *report = NULL, *payee_report = NULL;
    while (report == NULL) {
        CHECK(h_now_ms() < deadline, "no answer to %s within 5 s", msg_id);
        Envelope *e = recv_checked(payer, 20);
        if (e != NULL) {
            CHECK(e->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, "%s: payer got %s",
                  msg_id, codec_body_name(e));
            CHECK_STR(e->status_report->original_msg_id, msg_id);
            report = e;
            continue;
        }
        e = payee_report == NULL ? recv_checked(payee, 20) : NULL;
        if (e != NULL && out.forwarded && e->body_case == SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT) {
            payee_report = e; /* read before the payer's, sent in the same turn */
        } else if (e != NULL) {
            CHECK(e->body_case == SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, "%s: payee got %s",
                  msg_id, codec_body_name(e));
            CHECK_STR(e->credit_transfer->msg_id, msg_id);
            h_send_decision(payee, e->credit_transfer->transfer_id, true, NULL);
            out.forwarded = true;
            client_envelope_free(e);
        }
    }
    out.status = report->status_report->status;
    out.transfer_id = report->status_report->transfer_id;
    snprintf(out.reason, sizeof(out.reason), "%s", report->status_report->reason);
    fprintf(stderr, "   %s %s -> %s: %s %s %s\n", msg_id, from, to,
            out.status == SIKKA__V1__TX_STATUS__ACSC ? "ACSC" : "RJCT", out.reason,
            report->status_report->text);
    client_envelope_free(report);
    if (out.forwarded) {
        if (payee_report == NULL)
            payee_report = expect_checked(payee, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
        CHECK_INT(payee_report->status_report->transfer_id, out.transfer_id);
        client_envelope_free(payee_report);
    }
    return out;
}

static void pay_acsc(struct client *payer, struct client *payee, const char *from, const char *to,
                     const char *msg_id, int64_t amount)
{
    struct paid p = pay(payer, payee, from, to, msg_id, amount);
    CHECK(p.status == SIKKA__V1__TX_STATUS__ACSC, "%s: RJCT %s", msg_id, p.reason);
    CHECK(p.forwarded, "%s settled without asking the payee", msg_id);
}

/* ---- the console ---- */

/* sikka-ctl --json status, parsed; the caller json_decref()s it. */
static json_t *status_json(struct harness *h)
{
    CHECK_INT(H_CTL(h, "--json", "status"), 0);
    json_t *j = json_loads(h->ctl_out, 0, NULL);
    CHECK(json_is_object(j), "status JSON: %s", h->ctl_out);
    return j;
}

static int64_t status_counter(json_t *status, const char *name)
{
    json_t *v = json_object_get(json_object_get(status, "counters"), name);
    CHECK(json_is_integer(v), "status counter %s", name);
    return (int64_t)json_integer_value(v);
}

/* ---- participants that connect ---- */

/* Connects as `code`: the client when the switch took it, NULL when it
 * refused it (why in `why`: the reject's code, or the handshake's error). */
static struct client *try_connect(struct harness *h, const char *code, char *why, size_t len)
{
    char cert[300], key[300], file[32];
    snprintf(file, sizeof(file), "%s.crt", code);
    h_pki(h, file, cert, sizeof(cert));
    snprintf(file, sizeof(file), "%s.key", code);
    h_pki(h, file, key, sizeof(key));
    struct client *c = h_connect_files(h, cert, key, why, len);
    if (c == NULL)
        return NULL;
    /* the switch's first frame is a heartbeat (taken by the client) or its
     * refusal, followed by the close */
    Envelope *e = recv_checked(c, 200);
    if (e == NULL && !client_is_closed(c))
        return c;
    if (e != NULL) {
        CHECK(e->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, "%s: first frame %s", code,
              codec_body_name(e));
        snprintf(why, len, "%s", e->message_reject->reason);
        client_envelope_free(e);
    } else {
        snprintf(why, len, "closed: %s", client_close_reason(c));
    }
    client_free(c);
    return NULL;
}

/* ---- the tests ---- */

static void reader_is_refused(struct harness *h)
{
    PGconn *reader = h_connect_as(h, "sikka_reader", h_env("SIKKA_TEST_READER_PASSWORD"));
    static const char *const attempts[] = {
        "SELECT * FROM close_window('x', NULL, NULL, NULL)",
        "SELECT * FROM settle_window('x', NULL, NULL, NULL, 1, NULL)",
        "SELECT * FROM participant_add('x', NULL, NULL, NULL, 'QQQQ', 'Q Bank', 'bank', 100, "
        "NULL)",
        "SELECT * FROM participant_set_status('x', NULL, NULL, NULL, 'JAZZ', 'suspended', NULL)",
        "SELECT * FROM participant_set_ndc('x', NULL, NULL, NULL, 'JAZZ', 1, NULL)",
        "SELECT * FROM participant_suspend('x', NULL, NULL, NULL, 'JAZZ')",
        "SELECT * FROM proposal_create('x', NULL, NULL, NULL, 'ndc', 'JAZZ', '{\"ndc\": 1}', 60)",
        "SELECT * FROM proposal_approve_ndc(1, 'x', NULL, NULL, NULL)",
        /* one statement over two lines (parenthesized: not two elements) */
        ("SELECT * FROM post_batch(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
         "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
         "NULL, NULL, NULL, NULL)"),
        "INSERT INTO ledger_entries DEFAULT VALUES",
        "UPDATE ledger_entries SET amount = amount",
        "DELETE FROM ledger_entries",
        "INSERT INTO transfers DEFAULT VALUES",
        "UPDATE transfers SET status = status",
        "DELETE FROM transfers",
        "INSERT INTO participants DEFAULT VALUES",
        "UPDATE participants SET status = 'suspended'",
        "DELETE FROM participants",
    };
    for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
        char state[6], err[512];
        int rc = h_sql_attempt(reader, attempts[i], state, err, sizeof(err));
        CHECK(rc != 0, "sikka_reader may run: %s", attempts[i]);
        CHECK(strcmp(state, "42501") == 0 && strstr(err, "permission denied") != NULL,
              "%s: refused for another reason: %s %s", attempts[i], state, err);
    }
    fprintf(stderr, "   %zu attempts refused: permission denied\n",
            sizeof(attempts) / sizeof(attempts[0]));
    PQfinish(reader);
}

/* Pays until JAZZ's payment gets `want` (ACSC, or RJCT with `reason`),
 * within a few seconds of the change in the database. */
static void pay_until(struct harness *h, struct client *jazz, struct client *koko,
                      const char *prefix, int want, const char *reason)
{
    int64_t deadline = h_now_ms() + 5000;
    for (int n = 1;; n++) {
        char id[32];
        snprintf(id, sizeof(id), "%s-%d", prefix, n);
        struct paid p = pay(jazz, koko, "JAZZ", "KOKO", id, 1000 + n);
        if (p.status == want && (reason == NULL || strcmp(p.reason, reason) == 0))
            return;
        CHECK(h_now_ms() < deadline, "%s: still %s %s after 5 s", prefix,
              p.status == SIKKA__V1__TX_STATUS__ACSC ? "ACSC" : "RJCT", p.reason);
        h_pump(h, 50);
    }
}

static void in_step(void)
{
    struct harness h;
    h_init(&h, "instep");
    h_admin(&h);
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");
    pay_acsc(jazz, koko, "JAZZ", "KOKO", "FIRST-1", 1000);
    int64_t w0 = h_sql_int(&h, "SELECT id FROM settlement_windows WHERE state = 'open'");

    TEST_STEP("the reporting role: every write and operator function refused; the switch serves");
    reader_is_refused(&h);
    pay_acsc(jazz, koko, "JAZZ", "KOKO", "READER-1", 1100);

    TEST_STEP("a superuser closes the window: payments post to the new one, none refused");
    PGresult *r = h_sql(&h, "SELECT closed_id, opened_id FROM close_window('someone', NULL, NULL, "
                            "NULL)");
    int64_t closed = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    int64_t opened = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    CHECK_INT(closed, w0);
    pay_acsc(jazz, koko, "JAZZ", "KOKO", "WINDOW-1", 1200);
    CHECK_INT(h_sql_int(&h, "SELECT window_id FROM transfers WHERE payer = 'JAZZ' AND msg_id = "
                            "'WINDOW-1'"),
              opened);
    /* whichever path saw it first: the batch's own window, the notified
     * re-read, or the ledger's re-read at a cut */
    H_WAIT_LOG(&h, 1, 5000, "event=window_changed", "event=window_synced", "event=window_resynced");
    char want[64];
    snprintf(want, sizeof(want), "Positions in window %lld ", (long long)opened);
    int64_t deadline = h_now_ms() + 5000;
    for (;;) {
        CHECK_INT(H_CTL(&h, "positions"), 0);
        if (strstr(h.ctl_out, want) != NULL)
            break;
        CHECK(h_now_ms() < deadline, "positions still show:\n%s", h.ctl_out);
        h_pump(&h, 100);
    }
    json_t *st = status_json(&h);
    CHECK_INT(json_integer_value(json_object_get(st, "window")), opened);
    CHECK_INT(status_counter(st, "batches_refused"), 0);
    json_decref(st);
    CHECK_INT(h_log_count(&h, "event=batch_refused") + h_log_count(&h, "event=posting_refused"), 0);

    TEST_STEP("a superuser suspends JAZZ: its payments get AG10; resumed, they settle");
    PQclear(h_sql(&h, "SELECT * FROM participant_set_status('dba', NULL, NULL, NULL, 'JAZZ', "
                      "'suspended', NULL)"));
    pay_until(&h, jazz, koko, "SUSP", SIKKA__V1__TX_STATUS__RJCT, "AG10");
    PQclear(h_sql(&h, "SELECT * FROM participant_set_status('dba', NULL, NULL, NULL, 'JAZZ', "
                      "'active', NULL)"));
    pay_until(&h, jazz, koko, "RESUMED", SIKKA__V1__TX_STATUS__ACSC, NULL);

    TEST_STEP("a superuser adds ZZZZ: it can connect and be paid");
    char why[512];
    struct client *zzzz = try_connect(&h, "ZZZZ", why, sizeof(why));
    CHECK(zzzz == NULL, "ZZZZ connected before it was added");
    CHECK_STR(why, "RC01");
    PQclear(h_sql(&h, "SELECT * FROM participant_add('dba', NULL, NULL, NULL, 'ZZZZ', 'Zed Bank', "
                      "'bank', 100000000, NULL)"));
    deadline = h_now_ms() + 5000;
    while ((zzzz = try_connect(&h, "ZZZZ", why, sizeof(why))) == NULL) {
        CHECK(h_now_ms() < deadline, "ZZZZ still refused 5 s after it was added: %s", why);
        h_pump(&h, 50);
    }
    pay_acsc(jazz, zzzz, "JAZZ", "ZZZZ", "ZED-1", 4200);
    CHECK_INT(h_position_balance(&h, "ZZZZ"), 4200);

    TEST_STEP("the switch's positions equal the ledger; reconcile holds");
    CHECK_INT(H_CTL(&h, "reconcile"), 0);
    st = status_json(&h);
    CHECK_INT(status_counter(st, "batches_refused"), 0);
    json_decref(st);

    client_free(zzzz);
    client_free(jazz);
    client_free(koko);
    h_cleanup(&h);
}

/* In a database of its own, so the role's setting goes with it. */
static void transient_failure_is_retried(void)
{
    struct harness h;
    h_init(&h, "instep_retry");
    PQclear(h_sql(&h, "ALTER ROLE sikka_switch IN DATABASE %s SET statement_timeout = '300ms'",
                  h.dbname));
    h_admin(&h);
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");

    TEST_STEP("a lock held on the open window: post_batch times out (57014) and is retried");
    PGconn *blocker = PQconnectdb(h.super_conninfo);
    CHECK(PQstatus(blocker) == CONNECTION_OK, "%s", PQerrorMessage(blocker));
    PGresult *r = PQexec(blocker, "BEGIN");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    r = PQexec(blocker, "SELECT 1 FROM settlement_windows WHERE state = 'open' FOR UPDATE");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s", PQresultErrorMessage(r));
    PQclear(r);
    h_send_payment(jazz, "BLOCKED-1", "JAZZ", "KOKO", 3300);
    Envelope *e = expect_checked(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t id = e->credit_transfer->transfer_id;
    client_envelope_free(e);
    h_send_decision(koko, id, true, NULL);
    H_WAIT_LOG(&h, 2, 10000, "event=batch_failed_transiently");
    CHECK(h_log_count(&h, "SQLSTATE 57014") > 0, "the timeout's SQLSTATE in the log");
    e = recv_checked(jazz, 50);
    CHECK(e == NULL, "the payer heard %s while the ledger was blocked", codec_body_name(e));
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id = 'BLOCKED-1'"), 0);

    TEST_STEP("the lock released: the payment settles ACSC, recorded once, no RJCT");
    r = PQexec(blocker, "ROLLBACK");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(blocker);
    e = expect_checked(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 15000);
    CHECK(e->status_report->status == SIKKA__V1__TX_STATUS__ACSC, "BLOCKED-1: %s %s",
          e->status_report->reason, e->status_report->text);
    CHECK_INT(e->status_report->transfer_id, id);
    client_envelope_free(e);
    e = expect_checked(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__ACSC);
    client_envelope_free(e);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM transfers WHERE payer = 'JAZZ' AND msg_id = "
                        "'BLOCKED-1' AND status = 'ACSC' AND id = %llu",
                        (unsigned long long)id),
              1);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE status = 'RJCT'"), 0);
    json_t *st = status_json(&h);
    CHECK_INT(status_counter(st, "batches_refused"), 0);
    CHECK(status_counter(st, "batches_retried") >= 2, "batches_retried");
    json_decref(st);
    pay_acsc(jazz, koko, "JAZZ", "KOKO", "AFTER-1", 3400);

    PQclear(h_sql(&h, "ALTER ROLE sikka_switch IN DATABASE %s RESET statement_timeout", h.dbname));
    client_free(jazz);
    client_free(koko);
    h_cleanup(&h);
}

int main(void)
{
    in_step();
    transient_failure_is_retried();
    CHECK(texts_checked > 0);
    fprintf(stderr, "   %d report and reject texts read, none with database words\n",
            texts_checked);
    return 0;
}
