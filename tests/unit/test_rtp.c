/* rtp's pure logic: quiet hours in Pakistan time (UTC+5, windows that wrap
 * past midnight, none), when an RTP Later is delivered, due dates, the
 * debtor's resolution (ACCOUNT@CODE; an alias is refused for now) and the
 * checks of a RequestToPay (FF01 naming the field, FF03). */
#include "check.h"
#include "rtp.h"

#define H(x) ((int64_t)(x)*3600)
/* Unix ms of 2026-12-03 hh:mm:ss Pakistan time */
#define PKT(hh, mm, ss) ((INT64_C(1796256000) - 5 * 3600 + H(hh) + (mm)*60 + (ss)) * 1000)

static Sikka__V1__RequestToPay good(Sikka__V1__Remittance *rm, Sikka__V1__LoanInstalment *loan)
{
    Sikka__V1__RequestToPay m = SIKKA__V1__REQUEST_TO_PAY__INIT;
    sikka__v1__remittance__init(rm);
    sikka__v1__loan_instalment__init(loan);
    loan->loan_id = (char *)"LN-1";
    loan->instalment = 3;
    rm->kind_case = SIKKA__V1__REMITTANCE__KIND_LOAN;
    rm->loan = loan;
    m.msg_id = (char *)"RTP-1";
    m.creditor_agent = (char *)"KOKO";
    m.creditor_account = (char *)"LENDER-1";
    m.creditor_name = (char *)"";
    m.debtor = (char *)"03001234567@JAZZ";
    m.amount = 100;
    m.purpose = SIKKA__V1__PURPOSE__BNPL_REPAYMENT;
    m.remittance = rm;
    m.due_date = (char *)"";
    m.debtor_agent = (char *)"";
    m.debtor_account = (char *)"";
    return m;
}

static void refused(const Sikka__V1__RequestToPay *m, const char *code, const char *needle)
{
    char reason[5], text[256];
    CHECK(rtp_check_request(m, reason, text, sizeof(text)) != 0, "expected %s", code);
    CHECK_STR(reason, code);
    CHECK(strstr(text, needle) != NULL, "\"%s\" in \"%s\"", needle, text);
}

int main(void)
{
    TEST_STEP("2026-12-03: PKT midnight is 19:00 UTC the day before");
    int64_t midnight;
    CHECK(rtp_parse_due_date("2026-12-03", &midnight) == 0);
    CHECK_INT(midnight, PKT(0, 0, 0));
    CHECK_INT(midnight, (INT64_C(1796256000) - 5 * 3600) * 1000);

    TEST_STEP("due dates: real calendar dates only");
    CHECK(rtp_parse_due_date("2028-02-29", &midnight) == 0); /* leap year */
    CHECK(rtp_parse_due_date("2026-02-29", &midnight) != 0);
    CHECK(rtp_parse_due_date("2026-02-30", &midnight) != 0);
    CHECK(rtp_parse_due_date("2026-13-01", &midnight) != 0);
    CHECK(rtp_parse_due_date("2026-00-10", &midnight) != 0);
    CHECK(rtp_parse_due_date("2026-1-10", &midnight) != 0);
    CHECK(rtp_parse_due_date("2026-01-1x", &midnight) != 0);
    CHECK(rtp_parse_due_date("", &midnight) != 0);
    CHECK(rtp_parse_due_date("1969-12-31", &midnight) != 0);
    CHECK(rtp_parse_due_date("2100-02-29", &midnight) != 0); /* not a leap year */
    CHECK(rtp_parse_due_date("2000-02-29", &midnight) == 0); /* a leap year */

    TEST_STEP("quiet hours 21:00-08:00 Pakistan time wrap past midnight");
    struct rtp_rule r = {.loaded = true, .quiet_start_s = H(21), .quiet_end_s = H(8)};
    CHECK(!rtp_in_quiet_hours(&r, PKT(20, 59, 59)));
    CHECK(rtp_in_quiet_hours(&r, PKT(21, 0, 0)));
    CHECK(rtp_in_quiet_hours(&r, PKT(23, 59, 59)));
    CHECK(rtp_in_quiet_hours(&r, PKT(0, 0, 0)));
    CHECK(rtp_in_quiet_hours(&r, PKT(7, 59, 59)));
    CHECK(!rtp_in_quiet_hours(&r, PKT(8, 0, 0)));
    CHECK(!rtp_in_quiet_hours(&r, PKT(12, 0, 0)));
    /* 02:00 UTC is 07:00 in Pakistan: quiet, though it is day in UTC terms */
    CHECK(rtp_in_quiet_hours(&r, (INT64_C(1796256000) + H(2)) * 1000));
    CHECK_INT(rtp_after_quiet_hours(&r, PKT(22, 30, 0)), PKT(8, 0, 0) + 86400000);
    CHECK_INT(rtp_after_quiet_hours(&r, PKT(3, 0, 0)), PKT(8, 0, 0));
    CHECK_INT(rtp_after_quiet_hours(&r, PKT(9, 15, 0) + 123), PKT(9, 15, 0) + 123);

    TEST_STEP("a window within one day, and none");
    struct rtp_rule day = {.quiet_start_s = H(13), .quiet_end_s = H(14)};
    CHECK(!rtp_in_quiet_hours(&day, PKT(12, 59, 59)));
    CHECK(rtp_in_quiet_hours(&day, PKT(13, 30, 0)));
    CHECK(!rtp_in_quiet_hours(&day, PKT(14, 0, 0)));
    CHECK(!rtp_in_quiet_hours(&day, PKT(23, 0, 0)));
    CHECK_INT(rtp_after_quiet_hours(&day, PKT(13, 30, 0) + 999), PKT(14, 0, 0));
    struct rtp_rule none = {.quiet_start_s = H(5), .quiet_end_s = H(5)};
    CHECK(!rtp_in_quiet_hours(&none, PKT(5, 0, 0)));

    TEST_STEP("RTP Later: delivered on its due date, after the quiet hours");
    CHECK(rtp_parse_due_date("2026-12-05", &midnight) == 0);
    /* due in two days: that day's 08:00, Pakistan time */
    CHECK_INT(rtp_later_deliver_ms(&r, midnight, PKT(10, 0, 0)), PKT(8, 0, 0) + 2 * 86400000);
    /* due today at 10:00 (past the quiet hours): now */
    CHECK(rtp_parse_due_date("2026-12-03", &midnight) == 0);
    CHECK_INT(rtp_later_deliver_ms(&r, midnight, PKT(10, 0, 0)), PKT(10, 0, 0));
    /* due today, asked at 06:00: at 08:00 */
    CHECK_INT(rtp_later_deliver_ms(&r, midnight, PKT(6, 0, 0)), PKT(8, 0, 0));
    /* no quiet hours: the due date's midnight */
    CHECK(rtp_parse_due_date("2026-12-04", &midnight) == 0);
    CHECK_INT(rtp_later_deliver_ms(&none, midnight, PKT(10, 0, 0)), PKT(0, 0, 0) + 86400000);

    TEST_STEP("the debtor: ACCOUNT@CODE, or an alias the directory resolves; malformed FF01");
    char agent[5], account[35], reason[5], text[200];
    CHECK(rtp_resolve_debtor("KOKO", "03001234567@JAZZ", agent, account, reason, text,
                             sizeof(text)) == 0);
    CHECK_STR(agent, "JAZZ");
    CHECK_STR(account, "03001234567");
    CHECK(rtp_resolve_debtor("KOKO", "a@b@KOKO", agent, account, reason, text, sizeof(text)) == 0);
    CHECK_STR(account, "a@b");
    /* an alias: the directory (empty here) answers; it_rtp pays one */
    CHECK(rtp_resolve_debtor("KOKO", "03001234567", agent, account, reason, text, sizeof(text)) !=
          0);
    CHECK_STR(reason, "BE23");
    CHECK(rtp_resolve_debtor("KOKO", "0300123", agent, account, reason, text, sizeof(text)) != 0);
    CHECK_STR(reason, "FF01");
    CHECK(rtp_resolve_debtor("KOKO", "@JAZZ", agent, account, reason, text, sizeof(text)) != 0);
    CHECK_STR(reason, "FF01");
    CHECK(rtp_resolve_debtor("KOKO", "1@jazz", agent, account, reason, text, sizeof(text)) != 0);
    CHECK_STR(reason, "FF01");
    CHECK(rtp_resolve_debtor("KOKO", "12345678901234567890123456789012345@JAZZ", agent, account,
                             reason, text, sizeof(text)) != 0);
    CHECK_STR(reason, "FF01");

    TEST_STEP("RequestToPay checks name the field");
    Sikka__V1__Remittance rm;
    Sikka__V1__LoanInstalment loan;
    Sikka__V1__RequestToPay m = good(&rm, &loan);
    CHECK(rtp_check_request(&m, reason, text, sizeof(text)) == 0, "%s", text);
    m.msg_id = (char *)"";
    refused(&m, "FF01", "request_to_pay.msg_id");
    m = good(&rm, &loan);
    m.msg_id = (char *)"0123456789012345678901234567890123456";
    refused(&m, "FF01", "request_to_pay.msg_id");
    m = good(&rm, &loan);
    m.creditor_name = (char *)"\xc3\x28";
    refused(&m, "FF01", "request_to_pay.creditor_name");
    m = good(&rm, &loan);
    m.creditor_account = (char *)"";
    refused(&m, "FF01", "request_to_pay.creditor_account");
    m = good(&rm, &loan);
    m.purpose = SIKKA__V1__PURPOSE__PURPOSE_UNSPECIFIED;
    refused(&m, "FF03", "purpose");
    m = good(&rm, &loan);
    m.remittance = NULL;
    refused(&m, "FF01", "request_to_pay.remittance.loan");
    m = good(&rm, &loan);
    loan.instalment = 0;
    refused(&m, "FF01", "instalment");
    m = good(&rm, &loan);
    loan.loan_id = (char *)"";
    refused(&m, "FF01", "request_to_pay.remittance.loan.loan_id");
    m = good(&rm, &loan);
    m.purpose = SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT;
    refused(&m, "FF01", "request_to_pay.remittance.invoice");
    m = good(&rm, &loan);
    m.request_id = 1;
    refused(&m, "FF01", "set by the switch");
    m = good(&rm, &loan);
    m.debtor_agent = (char *)"JAZZ";
    refused(&m, "FF01", "set by the switch");
    m = good(&rm, &loan);
    m.expires_in_s = -1;
    refused(&m, "FF01", "expires_in_s");
    m = good(&rm, &loan);
    m.due_date = (char *)"2026-12-031";
    refused(&m, "FF01", "request_to_pay.due_date");
    m = good(&rm, &loan);
    m.purpose = SIKKA__V1__PURPOSE__P2P;
    m.remittance = NULL;
    CHECK(rtp_check_request(&m, reason, text, sizeof(text)) == 0, "%s", text);

    TEST_STEP("state names");
    CHECK_STR(rtp_state_name(SIKKA__V1__REQUEST_STATE__REQUEST_PAID), "paid");
    CHECK_STR(rtp_state_name(SIKKA__V1__REQUEST_STATE__REQUEST_STATE_UNSPECIFIED), "unspecified");
    return 0;
}
