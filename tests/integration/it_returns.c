/* Returns (pacs.004): the payee's participant returns a settled transfer in
 * full or in part; the switch routes it to the original payer's participant
 * and posts it linked to the original. Over-returns, returns of returns and
 * returns by anyone but the original payee are refused, the last exactly
 * like returns of originals that do not exist (no oracle); a return is
 * idempotent like any transfer. */
#include "harness.h"

/* The reason and narrative every return in this test carries. */
#define RETURN_REASON "AC04"
#define RETURN_TEXT   "customer account closed"

static Sikka__V1__StatusReport *report(struct client *c, Envelope **keep)
{
    *keep = h_expect(c, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    return (*keep)->status_report;
}

/* The original payer's participant accepts the forwarded return. */
static uint64_t accept_return(struct client *payer_side, uint64_t original)
{
    Envelope *e = h_expect(payer_side, SIKKA__V1__ENVELOPE__BODY_PAYMENT_RETURN, 5000);
    CHECK_INT(e->payment_return->original_transfer_id, original);
    CHECK_STR(e->payment_return->reason, RETURN_REASON);
    uint64_t id = e->payment_return->transfer_id;
    CHECK(id != 0);
    client_envelope_free(e);
    h_send_decision(payer_side, id, true, NULL);
    return id;
}

int main(void)
{
    struct harness h;
    h_init(&h, "returns");
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");
    struct client *easy = h_connect(&h, "EASY");
    Envelope *e1, *e2;

    TEST_STEP("a settled transfer JAZZ -> KOKO of PKR 100.00");
    struct h_transfer t = {.msg_id = "ORIG-1",
                           .debtor_agent = "JAZZ",
                           .creditor_agent = "KOKO",
                           .amount = 10000,
                           .purpose = SIKKA__V1__PURPOSE__BNPL_REPAYMENT,
                           .loan_id = "LN-9",
                           .instalment = 2};
    h_send_transfer(jazz, &t);
    uint64_t orig = h_payee_decide(koko, true, NULL);
    client_envelope_free(h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));

    TEST_STEP("partial return of PKR 40.00, routed to JAZZ and posted linked to the original");
    h_send_return(koko, "RET-1", orig, 4000, RETURN_REASON, RETURN_TEXT);
    uint64_t ret1 = accept_return(jazz, orig);
    Sikka__V1__StatusReport *r1 = report(koko, &e1);
    CHECK_INT(r1->status, SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(r1->transfer_id, ret1);
    CHECK_INT(r1->original_transfer_id, orig);
    client_envelope_free(e1);
    Sikka__V1__StatusReport *r2 = report(jazz, &e2);
    CHECK_INT(r2->status, SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(r2->transfer_id, ret1);
    client_envelope_free(e2);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM transfers WHERE id = %llu AND kind = 'return' "
                        "AND original_id = %llu AND amount = 4000 AND payer = 'KOKO' AND "
                        "payee = 'JAZZ' AND return_reason = 'AC04'",
                        (unsigned long long)ret1, (unsigned long long)orig),
              1);
    CHECK_INT(h_sql_int(&h,
                        "SELECT e.amount FROM ledger_entries e JOIN accounts a ON a.id = "
                        "e.account_id WHERE e.transfer_id = %llu AND a.participant = 'JAZZ'",
                        (unsigned long long)ret1),
              4000);

    TEST_STEP("the same return again: the stored outcome, nothing forwarded or posted");
    h_send_return(koko, "RET-1", orig, 4000, RETURN_REASON, RETURN_TEXT);
    r1 = report(koko, &e1);
    CHECK_INT(r1->status, SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(r1->transfer_id, ret1);
    client_envelope_free(e1);
    CHECK(h_silent(jazz, 200));

    TEST_STEP("over-return: AM02, only PKR 60.00 is left");
    h_send_return(koko, "RET-2", orig, 6001, RETURN_REASON, RETURN_TEXT);
    h_expect_report(koko, "RET-2", SIKKA__V1__TX_STATUS__RJCT, "AM02");
    CHECK(h_silent(jazz, 200));

    TEST_STEP("returning the rest in full");
    h_send_return(koko, "RET-3", orig, 6000, RETURN_REASON, RETURN_TEXT);
    uint64_t ret3 = accept_return(jazz, orig);
    r1 = report(koko, &e1);
    CHECK_INT(r1->status, SIKKA__V1__TX_STATUS__ACSC);
    client_envelope_free(e1);
    client_envelope_free(h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    h_send_return(koko, "RET-4", orig, 1, RETURN_REASON, RETURN_TEXT);
    h_expect_report(koko, "RET-4", SIKKA__V1__TX_STATUS__RJCT, "AM02");

    TEST_STEP("a return of a return is refused (AG01)");
    h_send_return(jazz, "RET-OF-RET", ret3, 100, RETURN_REASON, RETURN_TEXT);
    h_expect_report(jazz, "RET-OF-RET", SIKKA__V1__TX_STATUS__RJCT, "AG01");

    TEST_STEP("a return by anyone but the original creditor agent: exactly the answer to an "
              "unknown original (AG01), byte for byte; the log says why");
    h_send_return(easy, "RET-EASY", orig, 1, RETURN_REASON, RETURN_TEXT);
    Sikka__V1__StatusReport *foreign = report(easy, &e1);
    CHECK_INT(foreign->status, SIKKA__V1__TX_STATUS__RJCT);
    CHECK_STR(foreign->reason, "AG01");
    h_send_return(easy, "RET-EASY-NONE", 999999, 1, RETURN_REASON, RETURN_TEXT);
    Sikka__V1__StatusReport *none = report(easy, &e2);
    CHECK_STR(none->reason, "AG01");
    fprintf(stderr, "   %s / %s\n", foreign->text, none->text);
    h_check_same_answer(e1, orig, e2, 999999);
    client_envelope_free(e2);
    /* a return of someone else's return: the same again */
    h_send_return(easy, "RET-EASY-RET", ret3, 1, RETURN_REASON, RETURN_TEXT);
    report(easy, &e2);
    h_check_same_answer(e1, orig, e2, ret3);
    client_envelope_free(e2);
    /* an id the ledger cannot hold (above INT64_MAX): the same, never a database error */
    h_send_return(easy, "RET-EASY-HUGE", UINT64_MAX, 1, RETURN_REASON, RETURN_TEXT);
    report(easy, &e2);
    h_check_same_answer(e1, orig, e2, UINT64_MAX);
    client_envelope_free(e2);
    client_envelope_free(e1);
    CHECK(h_log_has(&h, "event=return_not_creditor"), "the log says the truth");
    CHECK(h_silent(jazz, 200));
    h_send_return(koko, "RET-NONE", 999999, 1, RETURN_REASON, RETURN_TEXT);
    h_expect_report(koko, "RET-NONE", SIKKA__V1__TX_STATUS__RJCT, "AG01");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id LIKE 'RET-EASY%%' AND "
                            "status = 'RJCT' AND reason = 'AG01' AND original_id >= 0"),
              4);

    TEST_STEP("a rejected transfer cannot be returned (AG01)");
    h_send_payment(jazz, "ORIG-RJ", "JAZZ", "KOKO", 500);
    uint64_t rjid = h_payee_decide(koko, false, "AC01");
    client_envelope_free(h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    h_send_return(koko, "RET-RJ", rjid, 500, RETURN_REASON, RETURN_TEXT);
    h_expect_report(koko, "RET-RJ", SIKKA__V1__TX_STATUS__RJCT, "AG01");

    TEST_STEP("the original payer may refuse a return like any transfer");
    h_send_payment(jazz, "ORIG-2", "JAZZ", "KOKO", 700);
    uint64_t orig2 = h_payee_decide(koko, true, NULL);
    client_envelope_free(h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    h_send_return(koko, "RET-5", orig2, 700, RETURN_REASON, RETURN_TEXT);
    Envelope *fwd = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_PAYMENT_RETURN, 5000);
    h_send_decision(jazz, fwd->payment_return->transfer_id, false, "AC01");
    client_envelope_free(fwd);
    h_expect_report(koko, "RET-5", SIKKA__V1__TX_STATUS__RJCT, "AC01");
    client_envelope_free(h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));

    TEST_STEP("the ledger: returns within their originals, every invariant holds");
    CHECK_INT(h_sql_int(&h,
                        "SELECT sum(amount) FROM transfers WHERE original_id = %llu AND "
                        "status = 'ACSC'",
                        (unsigned long long)orig),
              10000);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM reconcile() WHERE status <> 'ok'"), 0);
    CHECK_INT(h_position_balance(&h, "JAZZ"), -700);

    client_free(jazz);
    client_free(koko);
    client_free(easy);
    h_cleanup(&h);
    return 0;
}
