/* The fee policy (README "Fees"): supplier payments cost the payee 0.20 %,
 * at least PKR 10.00 and at most PKR 500.00; a payment whose fee would be as
 * large as its amount is refused (AM06) and posts nothing; a return refunds
 * the original's fee pro rata to whoever paid it, the last return of the
 * whole amount settling the rounding, so a full return leaves the supplier
 * exactly where it was. Every expected figure below is worked out by hand
 * from that rule. */
#include "harness.h"

#define SUPPLIER SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT

static int64_t fee_account(struct harness *h)
{
    return h_sql_int(h, "SELECT balance FROM accounts WHERE kind = 'fee'");
}

static void send_payment(struct client *c, const char *msg_id, const char *from, const char *to,
                         int64_t amount, Sikka__V1__Purpose purpose)
{
    struct h_transfer t = {.msg_id = msg_id,
                           .debtor_agent = from,
                           .creditor_agent = to,
                           .amount = amount,
                           .purpose = purpose};
    if (purpose == SUPPLIER)
        t.invoice = "INV-2024-001";
    h_send_transfer(c, &t);
}

/* The next status report on c: for msg_id, with this status, reason and fee
 * field (the fee this party bears; negative: a refund to it). */
static uint64_t expect_report(struct client *c, const char *msg_id, Sikka__V1__TxStatus status,
                              const char *reason, int64_t fee)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    Sikka__V1__StatusReport *r = e->status_report;
    CHECK_STR(r->original_msg_id, msg_id);
    CHECK(r->status == status, "%s: status %d (%s %s), want %d", msg_id, r->status, r->reason,
          r->text, status);
    CHECK_STR(r->reason, reason);
    CHECK(r->fee == fee, "%s: report fee %lld, want %lld", msg_id, (long long)r->fee,
          (long long)fee);
    if (reason[0] != '\0')
        fprintf(stderr, "   %s: %s %s\n", msg_id, r->reason, r->text);
    uint64_t id = r->transfer_id;
    client_envelope_free(e);
    return id;
}

/* A payment the payee accepts; the fee each side's report carries. Returns
 * the transfer id. */
static uint64_t settle(struct client *payer, struct client *payee, const char *msg_id,
                       const char *from, const char *to, int64_t amount, Sikka__V1__Purpose purpose,
                       int64_t payer_fee, int64_t payee_fee)
{
    send_payment(payer, msg_id, from, to, amount, purpose);
    uint64_t id = h_payee_decide(payee, true, NULL);
    CHECK_INT(expect_report(payer, msg_id, SIKKA__V1__TX_STATUS__ACSC, "", payer_fee), id);
    CHECK_INT(expect_report(payee, msg_id, SIKKA__V1__TX_STATUS__ACSC, "", payee_fee), id);
    return id;
}

/* A return the original's payer accepts; the fee fields of both reports
 * (returner first). Returns the return's transfer id. */
static uint64_t settle_return(struct client *returner, struct client *original_payer,
                              const char *msg_id, uint64_t original, int64_t amount,
                              int64_t returner_fee, int64_t original_payer_fee)
{
    h_send_return(returner, msg_id, original, amount, "AC04", "goods sent back");
    Envelope *e = h_expect(original_payer, SIKKA__V1__ENVELOPE__BODY_PAYMENT_RETURN, 5000);
    CHECK_INT(e->payment_return->original_transfer_id, original);
    CHECK_INT(e->payment_return->amount, amount);
    uint64_t id = e->payment_return->transfer_id;
    CHECK(id != 0);
    client_envelope_free(e);
    h_send_decision(original_payer, id, true, NULL);
    CHECK_INT(expect_report(returner, msg_id, SIKKA__V1__TX_STATUS__ACSC, "", returner_fee), id);
    CHECK_INT(
        expect_report(original_payer, msg_id, SIKKA__V1__TX_STATUS__ACSC, "", original_payer_fee),
        id);
    return id;
}

int main(void)
{
    struct harness h;
    h_init(&h, "fees");
    h_admin(&h);
    h_start(&h);
    struct client *mezn = h_connect(&h, "MEZN");
    struct client *easy = h_connect(&h, "EASY");

    TEST_STEP("PKR 10.00 supplier payment: its fee would take all of it, AM06");
    /* fee = max(PKR 10.00, 0.20 % of 1000 = 2) = 1000 = the amount */
    send_payment(mezn, "FEE-EQUAL", "MEZN", "EASY", 1000, SUPPLIER);
    Envelope *e = h_expect(mezn, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_STR(e->status_report->original_msg_id, "FEE-EQUAL");
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__RJCT);
    CHECK_STR(e->status_report->reason, "AM06");
    CHECK(strstr(e->status_report->text, "fee") != NULL, "text: %s", e->status_report->text);
    CHECK_INT(e->status_report->fee, 0);
    fprintf(stderr, "   FEE-EQUAL: AM06 %s\n", e->status_report->text);
    client_envelope_free(e);
    CHECK(h_silent(easy, 200), "a refused payment was forwarded");
    /* the rejection is recorded (before the payer heard of it), nothing posted */
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE payer = 'MEZN' AND msg_id = "
                            "'FEE-EQUAL' AND status = 'RJCT' AND reason = 'AM06' AND fee = 0 "
                            "AND fee_payer IS NULL"),
              1);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM ledger_entries"), 0);
    CHECK_INT(h_position_balance(&h, "EASY"), 0);
    CHECK_INT(fee_account(&h), 0);

    TEST_STEP("PKR 10.01: fee 1000 < 1001, ACSC; the payee bears it and keeps one paisa");
    /* fee = max(1000, floor(1001 * 20 / 10000) = 2) = 1000, below the amount;
     * the payer's report: 0 (the payee pays), the payee's: 1000 */
    uint64_t tiny = settle(mezn, easy, "FEE-TINY", "MEZN", "EASY", 1001, SUPPLIER, 0, 1000);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM transfers WHERE id = %llu AND status = 'ACSC' AND "
                        "fee = 1000 AND fee_payer = 'EASY'",
                        (unsigned long long)tiny),
              1);
    CHECK_INT(h_position_balance(&h, "EASY"), 1);     /* +1001 - 1000 */
    CHECK_INT(h_position_balance(&h, "MEZN"), -1001); /* the payer pays the amount only */
    CHECK_INT(fee_account(&h), 1000);

    TEST_STEP("PKR 3,333.33 supplier payment: fee PKR 10.00");
    int64_t easy0 = h_position_balance(&h, "EASY"), mezn0 = h_position_balance(&h, "MEZN"),
            fee0 = fee_account(&h);
    /* fee = max(1000, floor(333333 * 20 / 10000) = 666) = 1000 */
    uint64_t orig = settle(mezn, easy, "FEE-ORIG", "MEZN", "EASY", 333333, SUPPLIER, 0, 1000);
    CHECK_INT(h_position_balance(&h, "EASY") - easy0, 333333 - 1000);
    CHECK_INT(h_position_balance(&h, "MEZN") - mezn0, -333333);
    CHECK_INT(fee_account(&h) - fee0, 1000);

    TEST_STEP("three returns of PKR 1,111.11 refund EASY 333, 333, 334 of the fee");
    /* refund of return k = floor(1000 * returned_after / 333333)
     *                     - floor(1000 * returned_before / 333333):
     *   1: floor(1000 * 111111 / 333333) =  333, less   0 = 333
     *   2: floor(1000 * 222222 / 333333) =  666, less 333 = 333
     *   3: floor(1000 * 333333 / 333333) = 1000, less 666 = 334 (the rounding)
     * to EASY, which paid the fee (and is each return's payer): its report
     * carries the refund negative; MEZN's (the return's payee) 0 */
    const int64_t refunds[3] = {333, 333, 334};
    const char *const ids[3] = {"RET-1", "RET-2", "RET-3"};
    int64_t refunded = 0;
    for (int i = 0; i < 3; i++) {
        int64_t easy_before = h_position_balance(&h, "EASY"), fee_before = fee_account(&h);
        uint64_t r = settle_return(easy, mezn, ids[i], orig, 111111, -refunds[i], 0);
        CHECK_INT(h_sql_int(&h,
                            "SELECT count(*) FROM transfers WHERE id = %llu AND kind = 'return' "
                            "AND original_id = %llu AND status = 'ACSC' AND amount = 111111 AND "
                            "fee = %lld AND fee_payer = 'EASY'",
                            (unsigned long long)r, (unsigned long long)orig, (long long)refunds[i]),
                  1);
        /* EASY: -111111 returned, +refund; the fee account: -refund */
        CHECK_INT(h_position_balance(&h, "EASY") - easy_before, -111111 + refunds[i]);
        CHECK_INT(fee_account(&h) - fee_before, -refunds[i]);
        refunded += refunds[i];
    }
    CHECK_INT(refunded, 1000);
    CHECK_INT(h_sql_int(&h,
                        "SELECT sum(fee) FROM transfers WHERE original_id = %llu AND "
                        "status = 'ACSC'",
                        (unsigned long long)orig),
              1000);

    TEST_STEP("the full return leaves everyone where they were");
    /* EASY: +333333 - 1000 - 3 * 111111 + 1000 = 0; MEZN: -333333 + 333333;
     * the fee account: +1000 - 1000 */
    CHECK_INT(h_position_balance(&h, "EASY") - easy0, 0);
    CHECK_INT(h_position_balance(&h, "MEZN") - mezn0, 0);
    CHECK_INT(fee_account(&h) - fee0, 0);

    TEST_STEP("a further return: nothing left to return, AM02");
    h_send_return(easy, "RET-4", orig, 1, "AC04", "goods sent back");
    expect_report(easy, "RET-4", SIKKA__V1__TX_STATUS__RJCT, "AM02", 0);
    CHECK(h_silent(mezn, 200), "a refused return was forwarded");

    TEST_STEP("a P2P payment carries no fee; its return refunds 0");
    easy0 = h_position_balance(&h, "EASY");
    mezn0 = h_position_balance(&h, "MEZN");
    fee0 = fee_account(&h);
    uint64_t p2p =
        settle(mezn, easy, "P2P-1", "MEZN", "EASY", 500000, SIKKA__V1__PURPOSE__P2P, 0, 0);
    uint64_t p2p_ret = settle_return(easy, mezn, "RET-P2P", p2p, 500000, 0, 0);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM transfers WHERE id IN (%llu, %llu) AND "
                        "status = 'ACSC' AND fee = 0 AND fee_payer IS NULL",
                        (unsigned long long)p2p, (unsigned long long)p2p_ret),
              2);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM ledger_entries WHERE transfer_id IN (%llu, %llu) "
                        "AND leg = 'fee'",
                        (unsigned long long)p2p, (unsigned long long)p2p_ret),
              0);
    CHECK_INT(h_position_balance(&h, "EASY") - easy0, 0);
    CHECK_INT(h_position_balance(&h, "MEZN") - mezn0, 0);
    CHECK_INT(fee_account(&h) - fee0, 0);

    TEST_STEP("the switch's fees were the database's; reconcile: every invariant holds");
    /* the switch prices each transfer and refund itself and post_batch derives
     * them again (schema/004): a difference would have been logged */
    CHECK(!h_log_has(&h, "event=fee_decided_by_ledger"), "the switch and the ledger disagreed");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM reconcile() WHERE status <> 'ok'"), 0);
    CHECK_INT(H_CTL(&h, "reconcile"), 0);

    client_free(mezn);
    client_free(easy);
    h_cleanup(&h);
    return 0;
}
