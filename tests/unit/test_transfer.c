/* transfer: the stateless checks of a received CreditTransfer, in
 * DESIGN.md's order, and the request fingerprint. */
#include "check.h"
#include "transfer.h"

static Sikka__V1__CreditTransfer good(void)
{
    Sikka__V1__CreditTransfer ct = SIKKA__V1__CREDIT_TRANSFER__INIT;
    ct.msg_id = "M-1";
    ct.end_to_end_id = "E-1";
    ct.debtor_agent = "JAZZ";
    ct.debtor_account = "03001234567";
    ct.creditor_agent = "KOKO";
    ct.creditor_account = "LN-7";
    ct.amount = 100;
    ct.currency = "PKR";
    ct.purpose = SIKKA__V1__PURPOSE__P2P;
    return ct;
}

static const char *check_one(Sikka__V1__CreditTransfer *ct, char *reason)
{
    static char text[200];
    struct transfer t = {0};
    if (transfer_from_credit_transfer(&t, ct, "JAZZ", reason, text, sizeof(text)) == 0)
        reason[0] = '\0';
    return text;
}

int main(void)
{
    char reason[8];
    Sikka__V1__CreditTransfer ct;

    TEST_STEP("a good message passes and is copied");
    ct = good();
    struct transfer t = {0};
    char text[200];
    CHECK(transfer_from_credit_transfer(&t, &ct, "JAZZ", reason, text, sizeof(text)) == 0, "%s",
          text);
    CHECK_STR(t.payer, "JAZZ");
    CHECK_STR(t.payee, "KOKO");
    CHECK_INT(t.amount, 100);

    TEST_STEP("format problems are FF01, purpose FF03, identity RC01 (in that order)");
    ct = good();
    ct.msg_id = "";
    check_one(&ct, reason);
    CHECK_STR(reason, "FF01");
    ct = good();
    ct.msg_id = "123456789012345678901234567890123456"; /* 36 */
    check_one(&ct, reason);
    CHECK_STR(reason, "FF01");
    ct = good();
    ct.msg_id = "bad\nid";
    check_one(&ct, reason);
    CHECK_STR(reason, "FF01");
    ct = good();
    ct.creditor_agent = "koko";
    check_one(&ct, reason);
    CHECK_STR(reason, "FF01");
    ct = good();
    ct.transfer_id = 9;
    check_one(&ct, reason);
    CHECK_STR(reason, "FF01");
    ct = good();
    ct.purpose = 0;
    check_one(&ct, reason);
    CHECK_STR(reason, "FF03");
    ct = good();
    ct.purpose = 99;
    ct.debtor_agent = "EASY";
    check_one(&ct, reason);
    CHECK_STR(reason, "FF03"); /* format before identity */
    ct = good();
    ct.debtor_agent = "EASY";
    check_one(&ct, reason);
    CHECK_STR(reason, "RC01");
    ct = good();
    Sikka__V1__Remittance rmt = SIKKA__V1__REMITTANCE__INIT;
    Sikka__V1__LoanInstalment loan = SIKKA__V1__LOAN_INSTALMENT__INIT;
    loan.loan_id = "LN";
    loan.instalment = 0;
    rmt.kind_case = SIKKA__V1__REMITTANCE__KIND_LOAN;
    rmt.loan = &loan;
    ct.remittance = &rmt;
    check_one(&ct, reason);
    CHECK_STR(reason, "FF01");

    TEST_STEP("amount and currency are left to the stateful checks (AM02, AM03)");
    ct = good();
    ct.amount = -5;
    ct.currency = "USDX";
    check_one(&ct, reason);
    CHECK_STR(reason, "");

    TEST_STEP("the fingerprint covers business fields, not names");
    struct transfer a = {0}, b = {0};
    ct = good();
    CHECK(transfer_from_credit_transfer(&a, &ct, "JAZZ", reason, text, sizeof(text)) == 0);
    ct.debtor_name = "Someone";
    CHECK(transfer_from_credit_transfer(&b, &ct, "JAZZ", reason, text, sizeof(text)) == 0);
    transfer_fingerprint(&a, a.fingerprint);
    transfer_fingerprint(&b, b.fingerprint);
    CHECK(memcmp(a.fingerprint, b.fingerprint, TRANSFER_FP_LEN) == 0);
    ct.amount = 101;
    CHECK(transfer_from_credit_transfer(&b, &ct, "JAZZ", reason, text, sizeof(text)) == 0);
    transfer_fingerprint(&b, b.fingerprint);
    CHECK(memcmp(a.fingerprint, b.fingerprint, TRANSFER_FP_LEN) != 0);
    /* field boundaries matter: "AB"+"C" differs from "A"+"BC" */
    struct transfer c = a, d = a;
    snprintf(c.debtor_account, sizeof(c.debtor_account), "AB");
    snprintf(c.payee, sizeof(c.payee), "CXYZ");
    snprintf(d.debtor_account, sizeof(d.debtor_account), "ABC");
    snprintf(d.payee, sizeof(d.payee), "XYZ");
    transfer_fingerprint(&c, c.fingerprint);
    transfer_fingerprint(&d, d.fingerprint);
    CHECK(memcmp(c.fingerprint, d.fingerprint, TRANSFER_FP_LEN) != 0);

    TEST_STEP("reason codes");
    CHECK(transfer_reason_valid("AC01"));
    CHECK(!transfer_reason_valid("ac01"));
    CHECK(!transfer_reason_valid("AC0"));
    CHECK(!transfer_reason_valid("AC011"));
    return 0;
}
