/* Idempotency as DESIGN.md defines it: the key is (payer, msg_id); a retry
 * with the same body gets the first outcome (finished, in flight, from two
 * connections at once, after a restart, and after the key left the switch's
 * memory) and nothing is posted twice; another body under the key is AM05. */
#include "harness.h"

static struct h_transfer base_transfer(const char *msg_id, int64_t amount)
{
    struct h_transfer t = {.msg_id = msg_id,
                           .debtor_agent = "JAZZ",
                           .creditor_agent = "KOKO",
                           .amount = amount,
                           .purpose = SIKKA__V1__PURPOSE__BNPL_REPAYMENT,
                           .loan_id = "LN-1",
                           .instalment = 1};
    return t;
}

static void expect_status(struct client *c, const char *msg_id, Sikka__V1__TxStatus st,
                          const char *reason, uint64_t id)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    Sikka__V1__StatusReport *r = e->status_report;
    CHECK_STR(r->original_msg_id, msg_id);
    CHECK(r->status == st, "%s: status %d, want %d (%s %s)", msg_id, r->status, st, r->reason,
          r->text);
    if (reason != NULL)
        CHECK_STR(r->reason, reason);
    if (id != 0)
        CHECK_INT(r->transfer_id, id);
    client_envelope_free(e);
}

static int64_t postings(struct harness *h, const char *msg_id)
{
    return h_sql_int(h,
                     "SELECT count(*) FROM ledger_entries e JOIN transfers t ON t.id = "
                     "e.transfer_id WHERE t.payer = 'JAZZ' AND t.msg_id = '%s'",
                     msg_id);
}

int main(void)
{
    struct harness h;
    h_init(&h, "idempotency");
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *jazz2 = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");

    TEST_STEP("retry after the transfer finished: the stored outcome, no second posting");
    struct h_transfer t1 = base_transfer("IDEM-1", 5000);
    h_send_transfer(jazz, &t1);
    uint64_t id1 = h_payee_decide(koko, true, NULL);
    expect_status(jazz, "IDEM-1", SIKKA__V1__TX_STATUS__ACSC, NULL, id1);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    h_send_transfer(jazz, &t1);
    expect_status(jazz, "IDEM-1", SIKKA__V1__TX_STATUS__ACSC, NULL, id1);
    CHECK(h_silent(koko, 300), "the payee must not see a retry");
    CHECK_INT(postings(&h, "IDEM-1"), 2);

    TEST_STEP("retry while in flight: attaches, one outcome each, one posting");
    struct h_transfer t2 = base_transfer("IDEM-2", 7000);
    h_send_transfer(jazz, &t2);
    Envelope *fwd = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t id2 = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    h_send_transfer(jazz, &t2);
    CHECK(h_silent(jazz, 200), "no answer before the payee decides");
    h_send_decision(koko, id2, true, NULL);
    expect_status(jazz, "IDEM-2", SIKKA__V1__TX_STATUS__ACSC, NULL, id2);
    expect_status(jazz, "IDEM-2", SIKKA__V1__TX_STATUS__ACSC, NULL, id2);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    CHECK(h_silent(koko, 200), "only one forward");
    CHECK_INT(postings(&h, "IDEM-2"), 2);

    TEST_STEP("the same message from two connections at once");
    struct h_transfer t3 = base_transfer("IDEM-3", 9000);
    h_send_transfer(jazz, &t3);
    h_send_transfer(jazz2, &t3);
    uint64_t id3 = h_payee_decide(koko, true, NULL);
    expect_status(jazz, "IDEM-3", SIKKA__V1__TX_STATUS__ACSC, NULL, id3);
    expect_status(jazz2, "IDEM-3", SIKKA__V1__TX_STATUS__ACSC, NULL, id3);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    CHECK(h_silent(koko, 200), "only one forward");
    CHECK_INT(postings(&h, "IDEM-3"), 2);

    TEST_STEP("same key, other amount: AM05, the original untouched");
    struct h_transfer t1b = base_transfer("IDEM-1", 5001);
    h_send_transfer(jazz, &t1b);
    expect_status(jazz, "IDEM-1", SIKKA__V1__TX_STATUS__RJCT, "AM05", 0);
    CHECK(h_silent(koko, 200));
    CHECK_INT(h_sql_int(&h, "SELECT amount FROM transfers WHERE payer = 'JAZZ' AND msg_id = "
                            "'IDEM-1' AND status = 'ACSC'"),
              5000);
    CHECK_INT(postings(&h, "IDEM-1"), 2);

    TEST_STEP("same key, other amount while the first is in flight: AM05");
    struct h_transfer t4 = base_transfer("IDEM-4", 100);
    h_send_transfer(jazz, &t4);
    fwd = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t id4 = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    struct h_transfer t4b = base_transfer("IDEM-4", 200);
    h_send_transfer(jazz2, &t4b);
    expect_status(jazz2, "IDEM-4", SIKKA__V1__TX_STATUS__RJCT, "AM05", 0);
    h_send_decision(koko, id4, false, "AC04");
    expect_status(jazz, "IDEM-4", SIKKA__V1__TX_STATUS__RJCT, "AC04", id4);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));

    TEST_STEP("a retried rejected message gets the same rejection");
    h_send_transfer(jazz, &t4);
    expect_status(jazz, "IDEM-4", SIKKA__V1__TX_STATUS__RJCT, "AC04", id4);
    CHECK(h_silent(koko, 200));
    CHECK_INT(postings(&h, "IDEM-4"), 0);

    TEST_STEP("after a restart the old keys still return their outcomes");
    client_free(jazz);
    client_free(jazz2);
    client_free(koko);
    CHECK_INT(h_stop(&h), 0);
    h_start(&h);
    jazz = h_connect(&h, "JAZZ");
    koko = h_connect(&h, "KOKO");
    h_send_transfer(jazz, &t1);
    expect_status(jazz, "IDEM-1", SIKKA__V1__TX_STATUS__ACSC, NULL, id1);
    h_send_transfer(jazz, &t4);
    expect_status(jazz, "IDEM-4", SIKKA__V1__TX_STATUS__RJCT, "AC04", id4);
    h_send_transfer(jazz, &t1b);
    expect_status(jazz, "IDEM-1", SIKKA__V1__TX_STATUS__RJCT, "AM05", 0);
    CHECK(h_silent(koko, 300), "nothing forwarded after the restart");
    CHECK_INT(postings(&h, "IDEM-1"), 2);

    TEST_STEP("key no longer in memory: the database's unique key is the final word");
    client_free(jazz);
    client_free(koko);
    CHECK_INT(h_stop(&h), 0);
    h_config(&h, "idempotency_cache_seconds = 0\n");
    h_start(&h);
    jazz = h_connect(&h, "JAZZ");
    koko = h_connect(&h, "KOKO");
    h_send_transfer(jazz, &t2);
    uint64_t again = h_payee_decide(koko, true, NULL);
    CHECK(again != id2, "a new attempt gets a new id");
    expect_status(jazz, "IDEM-2", SIKKA__V1__TX_STATUS__ACSC, NULL, id2);
    Envelope *pr = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(pr->status_report->transfer_id, again);
    CHECK_STR(pr->status_report->reason, "AM05");
    client_envelope_free(pr);
    CHECK_INT(postings(&h, "IDEM-2"), 2);
    CHECK_INT(
        h_sql_int(&h, "SELECT count(*) FROM transfers WHERE id = %llu", (unsigned long long)again),
        0);
    /* the key is back in memory now: another body is refused at once */
    struct h_transfer t2b = base_transfer("IDEM-2", 1);
    h_send_transfer(jazz, &t2b);
    expect_status(jazz, "IDEM-2", SIKKA__V1__TX_STATUS__RJCT, "AM05", 0);
    CHECK(h_silent(koko, 200));
    /* a key still only in the database, with another body: AM05 from there */
    struct h_transfer t3b = base_transfer("IDEM-3", 1);
    h_send_transfer(jazz, &t3b);
    h_payee_decide(koko, true, NULL);
    expect_status(jazz, "IDEM-3", SIKKA__V1__TX_STATUS__RJCT, "AM05", 0);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    CHECK_INT(h_sql_int(&h, "SELECT sum(abs(amount)) FROM ledger_entries"),
              2 * (5000 + 7000 + 9000));

    client_free(jazz);
    client_free(koko);
    h_cleanup(&h);
    return 0;
}
