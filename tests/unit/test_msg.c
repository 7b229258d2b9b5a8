/* msg: amount parsing and formatting, parties, purposes, reason texts,
 * remittance references, builders and message ids. */
#include <stdlib.h>

#include "check.h"
#include "msg.h"

static int64_t amount_ok(const char *text)
{
    char err[256] = "";
    int64_t v = -1;
    int rc = money_parse(text, &v, err, sizeof(err));
    CHECK(rc == 0, "\"%s\" should parse: %s", text, err);
    return v;
}

static void amount_bad(const char *text, const char *why)
{
    char err[256] = "";
    int64_t v = 12345;
    int rc = money_parse(text, &v, err, sizeof(err));
    CHECK(rc == -1, "\"%s\" should be refused, got %" PRId64, text, v);
    CHECK(v == 12345, "\"%s\": output written on failure", text);
    CHECK(strstr(err, why) != NULL, "\"%s\": error \"%s\" should mention \"%s\"", text, err, why);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    char err[256];
    char buf[MSG_AMOUNT_MAX];

    TEST_STEP("amounts in rupees become paisa");
    CHECK_INT(amount_ok("0"), 0);
    CHECK_INT(amount_ok("0.00"), 0);
    CHECK_INT(amount_ok("0.01"), 1);
    CHECK_INT(amount_ok("1.1"), 110);
    CHECK_INT(amount_ok("1.10"), 110);
    CHECK_INT(amount_ok("1500"), 150000);
    CHECK_INT(amount_ok("1500.5"), 150050);
    CHECK_INT(amount_ok("1500.00"), 150000);
    CHECK_INT(amount_ok("007.07"), 707);
    CHECK_INT(amount_ok("92233720368547758.07"), INT64_MAX);
    CHECK_INT(amount_ok("92233720368547758"), INT64_MAX - 7);

    TEST_STEP("amounts that are not plain decimals are refused");
    amount_bad("", "empty");
    amount_bad("1.234", "two decimals");
    amount_bad("-1", "digit");
    amount_bad("+1", "digit");
    amount_bad("1e3", "'e'");
    amount_bad(".5", "digit");
    amount_bad("1.", "after the '.'");
    amount_bad(" 1", "digit");
    amount_bad("1 ", "' '");
    amount_bad("1,000", "','");
    amount_bad("1.2.3", "'.'");
    amount_bad("0x10", "'x'");
    amount_bad("NaN", "digit");
    amount_bad("1.5\n", "unexpected");

    TEST_STEP("amounts beyond INT64_MAX paisa are refused, never wrapped");
    amount_bad("92233720368547758.08", "exceeds");
    amount_bad("92233720368547759", "exceeds");
    amount_bad("99999999999999999999999999999", "exceeds");
    amount_bad("18446744073709551616", "exceeds");

    TEST_STEP("format and round trip");
    CHECK_STR(money_format(0, buf, sizeof(buf)), "0.00");
    CHECK_STR(money_format(1, buf, sizeof(buf)), "0.01");
    CHECK_STR(money_format(150000, buf, sizeof(buf)), "1500.00");
    CHECK_STR(money_format(150050, buf, sizeof(buf)), "1500.50");
    CHECK_STR(money_format(-5, buf, sizeof(buf)), "-0.05");
    CHECK_STR(money_format(-150000, buf, sizeof(buf)), "-1500.00");
    CHECK_STR(money_format(INT64_MAX, buf, sizeof(buf)), "92233720368547758.07");
    CHECK_STR(money_format(INT64_MIN, buf, sizeof(buf)), "-92233720368547758.08");
    const int64_t samples[] = {0, 1, 9, 10, 99, 100, 101, 123456789, INT64_MAX - 1, INT64_MAX};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        int64_t back = -1;
        money_format(samples[i], buf, sizeof(buf));
        CHECK(money_parse(buf, &back, err, sizeof(err)) == 0, "%s: %s", buf, err);
        CHECK_INT(back, samples[i]);
    }

    TEST_STEP("parties");
    char account[MSG_ACCOUNT_MAX + 1], agent[MSG_AGENT_LEN + 1];
    CHECK(msg_parse_party("03001234567@KOKO", account, sizeof(account), agent, sizeof(agent), err,
                          sizeof(err)) == 0,
          "%s", err);
    CHECK_STR(account, "03001234567");
    CHECK_STR(agent, "KOKO");
    /* the last '@' separates: an account may not contain one, so this fails */
    CHECK(msg_parse_party("a@b@MEZN", account, sizeof(account), agent, sizeof(agent), err,
                          sizeof(err)) == -1);
    CHECK(msg_parse_party("PK36SCBL0000001123456702@MEZN", account, sizeof(account), agent,
                          sizeof(agent), err, sizeof(err)) == 0,
          "%s", err);
    CHECK_STR(account, "PK36SCBL0000001123456702");
    const char *bad_parties[] = {
        "03001234567",                              /* no agent */
        "@KOKO",                                    /* no account */
        "0300@koko",                                /* lowercase code */
        "0300@KOK",                                 /* short code */
        "0300@KOKOX",                               /* long code */
        "0300@KOK1",                                /* digit in code */
        "0300 1@KOKO",                              /* space in account */
        "0300@",                                    /* empty code */
        "12345678901234567890123456789012345@KOKO", /* 35-char account */
    };
    for (size_t i = 0; i < sizeof(bad_parties) / sizeof(bad_parties[0]); i++) {
        err[0] = '\0';
        CHECK(msg_parse_party(bad_parties[i], account, sizeof(account), agent, sizeof(agent), err,
                              sizeof(err)) == -1,
              "\"%s\" should be refused", bad_parties[i]);
        CHECK(err[0] != '\0', "\"%s\": no error text", bad_parties[i]);
    }
    CHECK(msg_parse_party("1234567890123456789012345678901234@KOKO", account, sizeof(account),
                          agent, sizeof(agent), err, sizeof(err)) == 0,
          "34-char account: %s", err);
    CHECK(msg_valid_agent("JAZZ"));
    CHECK(!msg_valid_agent("Jazz"));
    CHECK(!msg_valid_agent(""));
    CHECK(!msg_valid_agent(NULL));

    TEST_STEP("purposes");
    Sikka__V1__Purpose p = SIKKA__V1__PURPOSE__PURPOSE_UNSPECIFIED;
    CHECK(msg_parse_purpose("BNPL_REPAYMENT", &p) == 0);
    CHECK_INT(p, SIKKA__V1__PURPOSE__BNPL_REPAYMENT);
    CHECK(msg_parse_purpose("SUPPLIER_PAYMENT", &p) == 0);
    CHECK_INT(p, SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT);
    CHECK(msg_parse_purpose("p2p", &p) == 0);
    CHECK_INT(p, SIKKA__V1__PURPOSE__P2P);
    CHECK(msg_parse_purpose("PURPOSE_UNSPECIFIED", &p) == -1);
    CHECK(msg_parse_purpose("SALARY", &p) == -1);
    CHECK(msg_parse_purpose("", &p) == -1);
    CHECK_STR(msg_purpose_name(SIKKA__V1__PURPOSE__BNPL_REPAYMENT), "BNPL_REPAYMENT");
    CHECK_STR(msg_purpose_name(SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT), "SUPPLIER_PAYMENT");
    CHECK_STR(msg_purpose_name(SIKKA__V1__PURPOSE__P2P), "P2P");
    CHECK_STR(msg_purpose_name((Sikka__V1__Purpose)99), "UNKNOWN");

    TEST_STEP("reason texts");
    CHECK_STR(msg_reason_text("AB05"), "timeout at creditor agent");
    CHECK_STR(msg_reason_text("AC01"), "incorrect account number");
    CHECK_STR(msg_reason_text("AM05"), "duplication");
    CHECK(strstr(msg_reason_text("AM23"), "net debit cap") != NULL);
    const char *codes[] = {"AB05", "AB08", "AC01", "AC04", "AC06", "AG10", "AG11",
                           "AG13", "AM02", "AM03", "AM05", "AM09", "AM23", "FF01",
                           "FF03", "RC01", "RC04", "RC07", "NARR", "MS03"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        CHECK(msg_reason_text(codes[i])[0] != '\0', "%s has no text", codes[i]);
        CHECK(msg_valid_reason(codes[i]), "%s", codes[i]);
    }
    CHECK_STR(msg_reason_text("ZZ99"), "");
    CHECK_STR(msg_reason_text(""), "");
    CHECK_STR(msg_reason_text(NULL), "");
    CHECK(!msg_valid_reason("ac01"));
    CHECK(!msg_valid_reason("AC011"));

    TEST_STEP("remittance references");
    struct msg_remittance r;
    CHECK(msg_remittance_init(&r, SIKKA__V1__PURPOSE__BNPL_REPAYMENT, "LOAN-7/3", err,
                              sizeof(err)) == 0,
          "%s", err);
    CHECK_INT(r.remittance.kind_case, SIKKA__V1__REMITTANCE__KIND_LOAN);
    CHECK_STR(r.remittance.loan->loan_id, "LOAN-7");
    CHECK_INT(r.remittance.loan->instalment, 3);
    CHECK(msg_remittance_init(&r, SIKKA__V1__PURPOSE__BNPL_REPAYMENT, "A/B/12", err, sizeof(err)) ==
              0,
          "%s", err);
    CHECK_STR(r.loan.loan_id, "A/B");
    CHECK_INT(r.loan.instalment, 12);
    const char *bad_loans[] = {
        "LOAN-7",   "LOAN-7/",           "/3",        "LOAN-7/0",
        "LOAN-7/x", "LOAN-7/4294967296", "LOAN-7/-1", "123456789012345678901234567890123456/1"};
    for (size_t i = 0; i < sizeof(bad_loans) / sizeof(bad_loans[0]); i++)
        CHECK(msg_remittance_init(&r, SIKKA__V1__PURPOSE__BNPL_REPAYMENT, bad_loans[i], err,
                                  sizeof(err)) == -1,
              "\"%s\" should be refused", bad_loans[i]);
    CHECK(msg_remittance_init(&r, SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT, "INV-2024-001", err,
                              sizeof(err)) == 0,
          "%s", err);
    CHECK_INT(r.remittance.kind_case, SIKKA__V1__REMITTANCE__KIND_INVOICE);
    CHECK_STR(r.remittance.invoice->invoice_number, "INV-2024-001");
    CHECK(msg_remittance_init(&r, SIKKA__V1__PURPOSE__P2P, "lunch money", err, sizeof(err)) == 0,
          "%s", err);
    CHECK_INT(r.remittance.kind_case, SIKKA__V1__REMITTANCE__KIND_UNSTRUCTURED);
    CHECK_STR(r.remittance.unstructured, "lunch money");
    char long_text[200];
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    CHECK(msg_remittance_init(&r, SIKKA__V1__PURPOSE__P2P, long_text, err, sizeof(err)) == -1);
    long_text[MSG_TEXT_MAX] = '\0';
    CHECK(msg_remittance_init(&r, SIKKA__V1__PURPOSE__P2P, long_text, err, sizeof(err)) == 0);

    TEST_STEP("transfer builder packs and unpacks");
    struct msg_transfer t;
    struct msg_transfer_fields f = {
        .msg_id = "MSG-1",
        .debtor_agent = "JAZZ",
        .debtor_account = "03001112222",
        .creditor_agent = "KOKO",
        .creditor_account = "LN-445",
        .amount = 150000,
        .purpose = SIKKA__V1__PURPOSE__BNPL_REPAYMENT,
        .ref = "LOAN-7/3",
    };
    CHECK(msg_transfer_init(&t, &f, err, sizeof(err)) == 0, "%s", err);
    size_t len = 0;
    uint8_t *wire = codec_pack_alloc(&t.env, &len);
    CHECK(wire != NULL);
    static unsigned char mem[8192];
    struct arena a;
    arena_init(&a, mem, sizeof(mem), 1 << 16);
    Envelope *back =
        codec_unpack(&a, wire + CODEC_HEADER_BYTES, len - CODEC_HEADER_BYTES, err, sizeof(err));
    CHECK(back != NULL, "%s", err);
    const Sikka__V1__CreditTransfer *ct = back->credit_transfer;
    CHECK_STR(ct->msg_id, "MSG-1");
    CHECK_STR(ct->end_to_end_id, "MSG-1"); /* defaults to the msg_id */
    CHECK_STR(ct->debtor_agent, "JAZZ");
    CHECK_STR(ct->creditor_account, "LN-445");
    CHECK_STR(ct->currency, "PKR");
    CHECK_INT(ct->amount, 150000);
    CHECK_INT(ct->transfer_id, 0);
    CHECK(ct->created_at_ms > 1600000000000LL);
    CHECK_STR(ct->remittance->loan->loan_id, "LOAN-7");
    free(wire);
    arena_reset(&a);
    f.msg_id = "123456789012345678901234567890123456"; /* 36 bytes */
    CHECK(msg_transfer_init(&t, &f, err, sizeof(err)) == -1);
    CHECK(strstr(err, "msg_id") != NULL, "%s", err);
    f.msg_id = "MSG-2";
    f.creditor_agent = "koko";
    CHECK(msg_transfer_init(&t, &f, err, sizeof(err)) == -1);
    f.creditor_agent = "KOKO";
    f.currency = "pkr";
    CHECK(msg_transfer_init(&t, &f, err, sizeof(err)) == -1);
    f.currency = "USD"; /* the switch answers AM03, not the builder */
    f.ref = NULL;
    CHECK(msg_transfer_init(&t, &f, err, sizeof(err)) == 0, "%s", err);
    CHECK(t.ct.remittance == NULL);

    TEST_STEP("decision and heartbeat builders");
    struct msg_decision d;
    CHECK(msg_decision_init(&d, 42, true, NULL, NULL, err, sizeof(err)) == 0, "%s", err);
    CHECK(d.decision.accept);
    CHECK_INT(d.decision.transfer_id, 42);
    CHECK(msg_decision_init(&d, 43, false, "AC04", NULL, err, sizeof(err)) == 0, "%s", err);
    CHECK(!d.decision.accept);
    CHECK_STR(d.decision.reason, "AC04");
    CHECK_STR(d.decision.text, "closed account");
    CHECK(msg_decision_init(&d, 44, false, "nope", NULL, err, sizeof(err)) == -1);
    CHECK(msg_decision_init(&d, 44, false, NULL, NULL, err, sizeof(err)) == -1);
    struct msg_heartbeat h;
    msg_heartbeat_init(&h, 7, true);
    CHECK_INT(h.env.body_case, SIKKA__V1__ENVELOPE__BODY_HEARTBEAT);
    CHECK_INT(h.env.heartbeat->nonce, 7);
    CHECK(h.env.heartbeat->reply);

    TEST_STEP("message ids are short, well formed and unique");
    enum { N = 10000 };
    char *ids[N];
    for (int i = 0; i < N; i++) {
        ids[i] = malloc(MSG_ID_LEN + 1);
        CHECK(msg_new_msg_id(ids[i], MSG_ID_LEN + 1) == 0);
        CHECK_INT(strlen(ids[i]), MSG_ID_LEN);
        CHECK(strlen(ids[i]) <= MSG_ID_MAX);
        CHECK(strspn(ids[i], "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == MSG_ID_LEN, "%s", ids[i]);
    }
    qsort(ids, N, sizeof(ids[0]), cmp_str);
    for (int i = 1; i < N; i++)
        CHECK(strcmp(ids[i - 1], ids[i]) != 0, "duplicate id %s", ids[i]);
    for (int i = 0; i < N; i++)
        free(ids[i]);
    char small[MSG_ID_LEN];
    CHECK(msg_new_msg_id(small, sizeof(small)) == -1);
    return 0;
}
