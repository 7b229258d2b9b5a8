/* A payment end to end through the real daemon: BNPL repayment and supplier
 * payment settle with one balanced posting each; payee reject, payee
 * offline and payee timeout reject with nothing posted. */
#include "harness.h"

static Sikka__V1__StatusReport *expect_report(struct client *c, Envelope **keep)
{
    *keep = h_expect(c, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    return (*keep)->status_report;
}

/* One balanced posting: principal legs, plus fee legs when fee > 0 (the
 * payee's participant pays supplier-payment fees to the scheme). */
static void check_posting(struct harness *h, uint64_t id, int64_t amount, const char *payer,
                          const char *payee, int64_t fee)
{
    CHECK_INT(h_sql_int(h, "SELECT count(*) FROM transfers WHERE id = %llu AND status = 'ACSC'",
                        (unsigned long long)id),
              1);
    CHECK_INT(h_sql_int(h, "SELECT count(*) FROM ledger_entries WHERE transfer_id = %llu",
                        (unsigned long long)id),
              fee > 0 ? 4 : 2);
    CHECK_INT(h_sql_int(h, "SELECT sum(amount) FROM ledger_entries WHERE transfer_id = %llu",
                        (unsigned long long)id),
              0);
    CHECK_INT(h_sql_int(h,
                        "SELECT e.amount FROM ledger_entries e JOIN accounts a ON a.id = "
                        "e.account_id WHERE e.transfer_id = %llu AND a.participant = '%s' AND "
                        "a.kind = 'position' AND e.leg = 'principal'",
                        (unsigned long long)id, payer),
              -amount);
    CHECK_INT(h_sql_int(h,
                        "SELECT e.amount FROM ledger_entries e JOIN accounts a ON a.id = "
                        "e.account_id WHERE e.transfer_id = %llu AND a.participant = '%s' AND "
                        "a.kind = 'position' AND e.leg = 'principal'",
                        (unsigned long long)id, payee),
              amount);
    CHECK_INT(h_sql_int(h,
                        "SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e JOIN accounts a "
                        "ON a.id = e.account_id WHERE e.transfer_id = %llu AND a.kind = 'fee' "
                        "AND e.leg = 'fee'",
                        (unsigned long long)id),
              fee);
}

int main(void)
{
    struct harness h;
    h_init(&h, "payment");
    h_start(&h);
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");
    struct client *mezn = h_connect(&h, "MEZN");
    struct client *easy = h_connect(&h, "EASY");
    Envelope *e1, *e2;

    TEST_STEP("BNPL repayment JAZZ -> KOKO with loan id and instalment");
    struct h_transfer bnpl = {.msg_id = "BNPL-0001",
                              .debtor_agent = "JAZZ",
                              .creditor_agent = "KOKO",
                              .creditor_account = "LOAN-ACC-77",
                              .amount = 250000,
                              .purpose = SIKKA__V1__PURPOSE__BNPL_REPAYMENT,
                              .loan_id = "KOKO-LN-42",
                              .instalment = 3};
    h_send_transfer(jazz, &bnpl);
    Envelope *fwd = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    Sikka__V1__CreditTransfer *ct = fwd->credit_transfer;
    CHECK_STR(ct->debtor_agent, "JAZZ");
    CHECK_INT(ct->amount, 250000);
    CHECK(ct->remittance != NULL && ct->remittance->kind_case == SIKKA__V1__REMITTANCE__KIND_LOAN);
    CHECK_STR(ct->remittance->loan->loan_id, "KOKO-LN-42");
    CHECK_INT(ct->remittance->loan->instalment, 3);
    uint64_t id = ct->transfer_id;
    CHECK(id != 0);
    client_envelope_free(fwd);
    /* the payee must not be told ACSC before it accepts */
    CHECK(h_silent(koko, 200));
    h_send_decision(koko, id, true, NULL);
    Sikka__V1__StatusReport *r1 = expect_report(jazz, &e1);
    Sikka__V1__StatusReport *r2 = expect_report(koko, &e2);
    CHECK_INT(r1->status, SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(r2->status, SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(r1->transfer_id, id);
    CHECK_INT(r2->transfer_id, id);
    CHECK_STR(r1->original_msg_id, "BNPL-0001");
    client_envelope_free(e1);
    client_envelope_free(e2);
    check_posting(&h, id, 250000, "JAZZ", "KOKO", 0);
    CHECK_INT(h_sql_int(&h,
                        "SELECT instalment FROM transfers WHERE id = %llu AND loan_id = "
                        "'KOKO-LN-42' AND purpose = 'BNPL_REPAYMENT'",
                        (unsigned long long)id),
              3);

    TEST_STEP("supplier payment MEZN -> EASY with an invoice number");
    struct h_transfer sup = {.msg_id = "SUP-0001",
                             .debtor_agent = "MEZN",
                             .creditor_agent = "EASY",
                             .amount = 12345678,
                             .purpose = SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT,
                             .invoice = "INV-2026-0099"};
    h_send_transfer(mezn, &sup);
    id = h_payee_decide(easy, true, NULL);
    r1 = expect_report(mezn, &e1);
    r2 = expect_report(easy, &e2);
    CHECK_INT(r1->status, SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(r2->status, SIKKA__V1__TX_STATUS__ACSC);
    CHECK_INT(r1->transfer_id, id);
    CHECK_INT(r2->transfer_id, id);
    CHECK_INT(r2->fee, 24691); /* the payee's participant pays it */
    CHECK_INT(r1->fee, 0);
    client_envelope_free(e1);
    client_envelope_free(e2);
    /* 0.20 % of PKR 123,456.78, within PKR 10..500 */
    check_posting(&h, id, 12345678, "MEZN", "EASY", 24691);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM transfers WHERE id = %llu AND invoice_number = "
                        "'INV-2026-0099'",
                        (unsigned long long)id),
              1);

    TEST_STEP("payee rejects with AC01: RJCT AC01, nothing posted");
    struct h_transfer rj = {.msg_id = "RJ-0001",
                            .debtor_agent = "JAZZ",
                            .creditor_agent = "KOKO",
                            .amount = 1000,
                            .purpose = SIKKA__V1__PURPOSE__P2P};
    h_send_transfer(jazz, &rj);
    id = h_payee_decide(koko, false, "AC01");
    r1 = expect_report(jazz, &e1);
    CHECK_INT(r1->status, SIKKA__V1__TX_STATUS__RJCT);
    CHECK_STR(r1->reason, "AC01");
    CHECK_INT(r1->transfer_id, id);
    client_envelope_free(e1);
    r2 = expect_report(koko, &e2);
    CHECK_INT(r2->status, SIKKA__V1__TX_STATUS__RJCT);
    client_envelope_free(e2);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM ledger_entries WHERE transfer_id = %llu",
                        (unsigned long long)id),
              0);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM transfers WHERE id = %llu AND status = 'RJCT' "
                        "AND reason = 'AC01'",
                        (unsigned long long)id),
              1);

    TEST_STEP("payee offline: AB08");
    struct h_transfer off = {
        .msg_id = "OFF-0001", .debtor_agent = "JAZZ", .creditor_agent = "NAYA", .amount = 1000};
    h_send_transfer(jazz, &off);
    r1 = expect_report(jazz, &e1);
    CHECK_INT(r1->status, SIKKA__V1__TX_STATUS__RJCT);
    CHECK_STR(r1->reason, "AB08");
    client_envelope_free(e1);

    TEST_STEP("payee silent past the timeout: AB05; its late accept is refused");
    struct h_transfer slow = {
        .msg_id = "SLOW-0001", .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = 1000};
    h_send_transfer(jazz, &slow);
    fwd = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    id = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    r1 = expect_report(jazz, &e1); /* payee_timeout_ms = 1500 in tests */
    CHECK_INT(r1->status, SIKKA__V1__TX_STATUS__RJCT);
    CHECK_STR(r1->reason, "AB05");
    client_envelope_free(e1);
    r2 = expect_report(koko, &e2);
    CHECK_STR(r2->reason, "AB05");
    client_envelope_free(e2);
    h_send_decision(koko, id, true, NULL);
    Envelope *late = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    CHECK_STR(late->message_reject->reason, "AB05");
    CHECK(strstr(late->message_reject->text, "expired") != NULL, "%s", late->message_reject->text);
    client_envelope_free(late);
    CHECK(h_silent(jazz, 300));
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM ledger_entries WHERE transfer_id = %llu",
                        (unsigned long long)id),
              0);

    TEST_STEP("the ledger holds exactly the two settled postings");
    CHECK_INT(h_sql_int(&h, "SELECT count(DISTINCT transfer_id) FROM ledger_entries"), 2);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM (SELECT transfer_id FROM ledger_entries GROUP "
                            "BY transfer_id HAVING sum(amount) <> 0) x"),
              0);
    CHECK_INT(h_sql_int(&h, "SELECT balance FROM accounts WHERE participant = 'JAZZ' AND kind = "
                            "'position'"),
              -250000);

    client_free(jazz);
    client_free(koko);
    client_free(mezn);
    client_free(easy);
    h_cleanup(&h);
    return 0;
}
