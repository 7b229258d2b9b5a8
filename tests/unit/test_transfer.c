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

    TEST_STEP("strings: UTF-8, no control characters, limits in bytes or characters (FF01)");
    /* one Urdu letter, two bytes */
#define KEHEH "\xda\xa9"
    char urdu141[2 * 141 + 1] = "", urdu18[2 * 18 + 1] = "";
    for (int i = 0; i < 141; i++)
        strcat(urdu141, KEHEH);
    for (int i = 0; i < 18; i++)
        strcat(urdu18, KEHEH);
    ct = good();
    ct.msg_id = "M\xff";
    CHECK_STR(check_one(&ct, reason), "msg_id is not valid UTF-8");
    CHECK_STR(reason, "FF01");
    ct = good();
    ct.debtor_name = "\xc0\xaf"; /* an overlong '/' */
    CHECK_STR(check_one(&ct, reason), "debtor_name is not valid UTF-8");
    ct = good();
    ct.creditor_name = "a\xed\xa0\x80"; /* a surrogate */
    CHECK_STR(check_one(&ct, reason), "creditor_name is not valid UTF-8");
    ct = good();
    ct.creditor_name = "x\xc2\x85y"; /* C1 NEL */
    CHECK_STR(check_one(&ct, reason), "creditor_name contains a control character");
    ct = good();
    ct.end_to_end_id = urdu18; /* 18 characters, 36 bytes: identifiers count bytes */
    CHECK_STR(check_one(&ct, reason), "end_to_end_id: at most 35 bytes");
    ct = good();
    ct.debtor_name = urdu141;
    CHECK_STR(check_one(&ct, reason), "debtor_name: at most 140 characters");
    urdu141[2 * 140] = '\0'; /* 140 characters, 280 bytes: accepted and kept whole */
    ct = good();
    ct.debtor_name = urdu141;
    ct.creditor_name = urdu141;
    memset(&t, 0, sizeof(t));
    CHECK(transfer_from_credit_transfer(&t, &ct, "JAZZ", reason, text, sizeof(text)) == 0, "%s",
          text);
    CHECK_STR(t.debtor_name, urdu141);
    CHECK_STR(t.creditor_name, urdu141);
    ct = good();
    ct.debtor_account = "0300 123";
    ct.msg_id = "id with = and \"quotes\""; /* printable: allowed, quoted in logs */
    check_one(&ct, reason);
    CHECK_STR(reason, "");

    TEST_STEP("a rejection echoes only checked strings");
    ct = good();
    ct.end_to_end_id = "E\x01";
    ct.creditor_agent = "KOKO";
    memset(&t, 0, sizeof(t));
    CHECK(transfer_from_credit_transfer(&t, &ct, "JAZZ", reason, text, sizeof(text)) != 0);
    CHECK_STR(text, "end_to_end_id contains a control character");
    CHECK_STR(t.msg_id, "M-1");
    CHECK_STR(t.end_to_end_id, "");
    ct = good();
    ct.creditor_agent = "K\xc3\xb6KO";
    memset(&t, 0, sizeof(t));
    CHECK(transfer_from_credit_transfer(&t, &ct, "JAZZ", reason, text, sizeof(text)) != 0);
    CHECK_STR(t.payee, "");
    ct = good();
    ct.debtor_agent = "JAZZJAZZ\xda\xa9";
    check_one(&ct, reason);
    CHECK_STR(reason, "FF01"); /* not a code: format, before identity */

    TEST_STEP("instalment within the ledger's integer column");
    ct = good();
    loan.loan_id = "LN-1";
    loan.instalment = 2147483648u; /* 2^31 */
    ct.remittance = &rmt;
    CHECK_STR(check_one(&ct, reason), "instalment must be 1..2147483647");
    CHECK_STR(reason, "FF01");
    loan.instalment = 4294967295u;
    check_one(&ct, reason);
    CHECK_STR(reason, "FF01");
    loan.instalment = 2147483647;
    check_one(&ct, reason);
    CHECK_STR(reason, "");
    loan.loan_id = "\xed\xa0\x80";
    loan.instalment = 1;
    CHECK_STR(check_one(&ct, reason), "loan_id is not valid UTF-8");

    TEST_STEP("currency: three uppercase letters or nothing (AM03 later)");
    ct = good();
    memset(&t, 0, sizeof(t));
    CHECK(transfer_from_credit_transfer(&t, &ct, "JAZZ", reason, text, sizeof(text)) == 0);
    CHECK_STR(t.currency, "PKR");
    const char *bad_ccy[] = {"pkr", "PKRX", "PK", "", "P\xc3\xa9R", "PK1"};
    for (size_t i = 0; i < sizeof(bad_ccy) / sizeof(bad_ccy[0]); i++) {
        ct.currency = (char *)bad_ccy[i];
        memset(&t, 0, sizeof(t));
        CHECK(transfer_from_credit_transfer(&t, &ct, "JAZZ", reason, text, sizeof(text)) == 0);
        CHECK_STR(t.currency, "");
    }

    TEST_STEP("returns, decisions and queries follow the same rules");
    Sikka__V1__PaymentReturn pr = SIKKA__V1__PAYMENT_RETURN__INIT;
    pr.msg_id = "R-1";
    pr.original_transfer_id = UINT64_MAX; /* any id: the router answers it */
    pr.amount = 5;
    pr.reason = "AC04";
    pr.text = urdu141;
    memset(&t, 0, sizeof(t));
    CHECK(transfer_from_return(&t, &pr, "KOKO", reason, text, sizeof(text)) == 0, "%s", text);
    CHECK_STR(t.remittance_text, urdu141);
    CHECK(t.original_id == UINT64_MAX);
    pr.text = "bad \xff";
    CHECK(transfer_from_return(&t, &pr, "KOKO", reason, text, sizeof(text)) != 0);
    CHECK_STR(text, "text is not valid UTF-8");
    pr.text = "";
    pr.msg_id = "R\x7f";
    CHECK(transfer_from_return(&t, &pr, "KOKO", reason, text, sizeof(text)) != 0);
    CHECK_STR(text, "msg_id contains a control character");
    Sikka__V1__PayeeDecision dec = SIKKA__V1__PAYEE_DECISION__INIT;
    dec.transfer_id = 1;
    dec.reason = "AC01";
    dec.text = urdu141;
    CHECK(transfer_check_decision(&dec, text, sizeof(text)) == 0, "%s", text);
    strcat(urdu141, KEHEH);
    CHECK(transfer_check_decision(&dec, text, sizeof(text)) != 0);
    CHECK_STR(text, "text: at most 140 characters");
    dec.text = "";
    dec.reason = "ac01";
    CHECK(transfer_check_decision(&dec, text, sizeof(text)) != 0);
    dec.reason = "";
    CHECK(transfer_check_decision(&dec, text, sizeof(text)) == 0);
    Sikka__V1__StatusQuery q = SIKKA__V1__STATUS_QUERY__INIT;
    q.query_id = "Q-1";
    q.msg_id = "M-1";
    CHECK(transfer_check_query(&q, text, sizeof(text)) == 0, "%s", text);
    q.query_id = "Q\n";
    CHECK(transfer_check_query(&q, text, sizeof(text)) != 0);
    CHECK_STR(text, "query_id contains a control character");
    q.query_id = "";
    q.msg_id = urdu18;
    CHECK(transfer_check_query(&q, text, sizeof(text)) != 0);
    CHECK_STR(text, "msg_id: at most 35 bytes");
    q.msg_id = "";
    CHECK(transfer_check_query(&q, text, sizeof(text)) != 0); /* neither msg_id nor id */
    q.transfer_id = UINT64_MAX;
    CHECK(transfer_check_query(&q, text, sizeof(text)) == 0);

    TEST_STEP("a reason text quoting a peer is cut to 140 characters on a boundary");
    memset(&t, 0, sizeof(t));
    urdu141[2 * 140] = '\0';
    transfer_set_reason(&t, "AC01", "rejected by creditor agent %s: %s", "KOKO", urdu141);
    CHECK_STR(t.reason, "AC01");
    CHECK_INT(text_chars(t.reason_text), 140);
    CHECK(text_valid_utf8(t.reason_text, strlen(t.reason_text)));
    CHECK(strncmp(t.reason_text, "rejected by creditor agent KOKO: " KEHEH, 35) == 0);
    transfer_set_reason(&t, "NARR", "short");
    CHECK_STR(t.reason_text, "short");

    TEST_STEP("reason codes");
    CHECK(transfer_reason_valid("AC01"));
    CHECK(!transfer_reason_valid("ac01"));
    CHECK(!transfer_reason_valid("AC0"));
    CHECK(!transfer_reason_valid("AC011"));
    return 0;
}
