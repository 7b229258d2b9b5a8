/* Bad input: oversized lengths, truncated frames, bytes that are not
 * protobuf, unknown fields, missing fields, bad amounts, unknown purposes and
 * currencies; strings that are not UTF-8 (cut, overlong, surrogates, NUL),
 * over their limits in bytes or characters, numbers the ledger cannot hold,
 * questions about other participants' transfers. Each gets a reason code
 * (FF01 naming the field) or closes that one connection; the switch never
 * crashes and keeps serving other participants; what it sends decodes under
 * a strict proto3 decoder (the harness checks every frame). */
#include <unistd.h>

#include "harness.h"
#include "text.h"

/* one Urdu letter (U+06A9 KEHEH, 2 bytes) and a zero-width non-joiner
 * (U+200C, 3 bytes, common in Urdu typing) */
#define KEHEH "\xda\xa9"
#define ZWNJ  "\xe2\x80\x8c"

static void expect_reject(struct client *c, const char *reason)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    CHECK_STR(e->message_reject->reason, reason);
    fprintf(stderr, "   %s: %s\n", reason, e->message_reject->text);
    client_envelope_free(e);
}

static void still_serving(struct harness *h, const char *tag)
{
    struct client *mezn = h_connect(h, "MEZN");
    struct client *easy = h_connect(h, "EASY");
    char msg_id[32];
    snprintf(msg_id, sizeof(msg_id), "ALIVE-%s", tag);
    struct h_transfer t = {.msg_id = msg_id,
                           .debtor_agent = "MEZN",
                           .creditor_agent = "EASY",
                           .amount = 100000,
                           .purpose = SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT,
                           .invoice = "INV-1"};
    h_send_transfer(mezn, &t);
    h_payee_decide(easy, true, NULL);
    Envelope *e = h_expect(mezn, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__ACSC);
    client_envelope_free(e);
    client_envelope_free(h_expect(easy, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    client_free(mezn);
    client_free(easy);
}

static void send_raw(struct client *c, const void *p, size_t n)
{
    CHECK(client_send_raw(c, p, n) == 0);
}

/* A credit transfer with every string chosen by the test (protobuf-c packs
 * whatever bytes it is given, as an independent client might). */
struct ct_spec {
    const char *msg_id, *end_to_end_id, *debtor_name, *creditor_name;
    const char *loan_id, *unstructured;
    uint32_t instalment;
};

static void build_ct(const struct ct_spec *sp, Sikka__V1__CreditTransfer *ct,
                     Sikka__V1__Remittance *rmt, Sikka__V1__LoanInstalment *loan, Envelope *env)
{
    sikka__v1__credit_transfer__init(ct);
    sikka__v1__remittance__init(rmt);
    sikka__v1__loan_instalment__init(loan);
    sikka__v1__envelope__init(env);
    ct->msg_id = (char *)sp->msg_id;
    ct->end_to_end_id = (char *)(sp->end_to_end_id ? sp->end_to_end_id : "E2E");
    ct->debtor_agent = "JAZZ";
    ct->debtor_account = "03001234567";
    ct->debtor_name = (char *)(sp->debtor_name ? sp->debtor_name : "");
    ct->creditor_agent = "KOKO";
    ct->creditor_account = "03219876543";
    ct->creditor_name = (char *)(sp->creditor_name ? sp->creditor_name : "");
    ct->amount = 2500;
    ct->currency = "PKR";
    ct->purpose = SIKKA__V1__PURPOSE__BNPL_REPAYMENT;
    if (sp->loan_id != NULL) {
        loan->loan_id = (char *)sp->loan_id;
        loan->instalment = sp->instalment ? sp->instalment : 1;
        rmt->kind_case = SIKKA__V1__REMITTANCE__KIND_LOAN;
        rmt->loan = loan;
        ct->remittance = rmt;
    } else if (sp->unstructured != NULL) {
        rmt->kind_case = SIKKA__V1__REMITTANCE__KIND_UNSTRUCTURED;
        rmt->unstructured = (char *)sp->unstructured;
        ct->remittance = rmt;
    }
    env->body_case = SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER;
    env->credit_transfer = ct;
}

static void send_ct(struct client *c, const struct ct_spec *sp)
{
    Sikka__V1__CreditTransfer ct;
    Sikka__V1__Remittance rmt;
    Sikka__V1__LoanInstalment loan;
    Envelope env;
    build_ct(sp, &ct, &rmt, &loan, &env);
    CHECK(client_send(c, &env) == 0);
}

/* unit n times into buf */
static const char *repeat(char *buf, size_t size, const char *unit, int n)
{
    size_t ul = strlen(unit);
    CHECK(ul * (size_t)n + 1 <= size);
    for (int i = 0; i < n; i++)
        memcpy(buf + ul * (size_t)i, unit, ul);
    buf[ul * (size_t)n] = '\0';
    return buf;
}

static void expect_reject_text(struct client *c, const char *reason, const char *text)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    CHECK_STR(e->message_reject->reason, reason);
    CHECK_STR(e->message_reject->text, text);
    fprintf(stderr, "   %s: %s\n", reason, e->message_reject->text);
    client_envelope_free(e);
}

static void expect_report_text(struct client *c, const char *msg_id, const char *reason,
                               const char *text)
{
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_STR(e->status_report->original_msg_id, msg_id);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__RJCT);
    CHECK_STR(e->status_report->reason, reason);
    CHECK_STR(e->status_report->text, text);
    fprintf(stderr, "   %s: %s %s\n", msg_id, reason, e->status_report->text);
    client_envelope_free(e);
}

/* Another participant's payment settles while a peer misbehaves. */
static void others_settle(struct client *mezn, struct client *easy, const char *tag)
{
    char msg_id[48];
    snprintf(msg_id, sizeof(msg_id), "OTHERS-%s", tag);
    h_send_payment(mezn, msg_id, "MEZN", "EASY", 700);
    h_payee_decide(easy, true, NULL);
    h_expect_report(mezn, msg_id, SIKKA__V1__TX_STATUS__ACSC, "");
    client_envelope_free(h_expect(easy, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
}

static void send_query(struct client *c, const char *qid, const char *msg_id, uint64_t id)
{
    Sikka__V1__StatusQuery q = SIKKA__V1__STATUS_QUERY__INIT;
    q.query_id = (char *)qid;
    q.msg_id = (char *)(msg_id ? msg_id : "");
    q.transfer_id = id;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_STATUS_QUERY;
    env.status_query = &q;
    CHECK(client_send(c, &env) == 0);
}

/* Issue 8: strings that are not UTF-8 or over their limits, numbers the
 * ledger cannot hold, and questions about others' transfers. */
static void strict_input(struct harness *h, struct client *koko)
{
    struct client *jazz = h_connect(h, "JAZZ");
    struct client *mezn = h_connect(h, "MEZN");
    struct client *easy = h_connect(h, "EASY");
    static char u140[1024], u141[1024], text300[1024], expected[1024], buf[1024];
    repeat(u140, sizeof(u140), KEHEH, 140);
    repeat(u141, sizeof(u141), KEHEH, 141);

    TEST_STEP("strings that are not UTF-8: FF01 naming the field, nothing forwarded");
    send_ct(jazz, &(struct ct_spec){.msg_id = "UTF-\xff\xfe"});
    expect_reject_text(jazz, "FF01", "credit_transfer.msg_id is not valid UTF-8");
    send_ct(jazz, &(struct ct_spec){.msg_id = "UTF-2", .debtor_name = "Ali \xe2\x82"});
    expect_reject_text(jazz, "FF01", "credit_transfer.debtor_name is not valid UTF-8");
    send_ct(jazz, &(struct ct_spec){.msg_id = "UTF-3", .loan_id = "LN-\x80\x80"});
    expect_reject_text(jazz, "FF01", "credit_transfer.remittance.loan.loan_id is not valid UTF-8");
    send_ct(jazz, &(struct ct_spec){.msg_id = "UTF-4", .creditor_name = "\xc0\xaf etc"});
    expect_reject_text(jazz, "FF01", "credit_transfer.creditor_name is not valid UTF-8");
    send_ct(jazz, &(struct ct_spec){.msg_id = "UTF-5", .end_to_end_id = "E\xed\xa0\x80"});
    expect_reject_text(jazz, "FF01", "credit_transfer.end_to_end_id is not valid UTF-8");
    send_ct(jazz, &(struct ct_spec){.msg_id = "UTF-6", .debtor_name = "\xf4\x90\x80\x80"});
    expect_reject_text(jazz, "FF01", "credit_transfer.debtor_name is not valid UTF-8");
    /* a NUL inside a string: C would silently see "NUL" */
    Sikka__V1__CreditTransfer ct;
    Sikka__V1__Remittance rmt;
    Sikka__V1__LoanInstalment loan;
    Envelope env;
    build_ct(&(struct ct_spec){.msg_id = "NUL#INSIDE"}, &ct, &rmt, &loan, &env);
    size_t len;
    uint8_t *frame = codec_pack_alloc(&env, &len);
    uint8_t *hash = memmem(frame, len, "NUL#", 4);
    CHECK(hash != NULL);
    hash[3] = '\0';
    send_raw(jazz, frame, len);
    free(frame);
    expect_reject_text(jazz, "FF01", "credit_transfer.msg_id contains a NUL byte");
    CHECK(h_silent(koko, 200), "nothing forwarded");
    CHECK_INT(h_sql_int(h, "SELECT count(*) FROM transfers WHERE msg_id LIKE 'UTF-%%' OR msg_id "
                           "LIKE 'NUL%%'"),
              0);
    others_settle(mezn, easy, "utf8");

    TEST_STEP("141 Urdu characters in a name: FF01 naming the field and the limit");
    send_ct(jazz, &(struct ct_spec){.msg_id = "URDU-141", .debtor_name = u141});
    expect_report_text(jazz, "URDU-141", "FF01", "debtor_name: at most 140 characters");
    /* identifiers count bytes: 18 Urdu letters are 36 */
    send_ct(jazz,
            &(struct ct_spec){.msg_id = "URDU-ID", .loan_id = repeat(buf, sizeof(buf), KEHEH, 18)});
    expect_report_text(jazz, "URDU-ID", "FF01", "loan_id: at most 35 bytes");
    send_ct(jazz, &(struct ct_spec){.msg_id = "C1",
                                    .creditor_name = "a\xc2\x85"
                                                     "b"});
    expect_report_text(jazz, "C1", "FF01", "creditor_name contains a control character");
    CHECK(h_silent(koko, 200), "nothing forwarded");
    others_settle(mezn, easy, "urdu141");

    TEST_STEP("140 Urdu characters (280 bytes) in both names, 17 in a loan id: forwarded intact");
    send_ct(jazz, &(struct ct_spec){.msg_id = "URDU-140",
                                    .debtor_name = u140,
                                    .creditor_name = u140,
                                    .loan_id = repeat(buf, sizeof(buf), KEHEH, 17),
                                    .instalment = 3});
    Envelope *fwd = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    CHECK_STR(fwd->credit_transfer->debtor_name, u140);
    CHECK_STR(fwd->credit_transfer->creditor_name, u140);
    CHECK_STR(fwd->credit_transfer->remittance->loan->loan_id, buf);
    uint64_t id = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    h_send_decision(koko, id, true, NULL);
    h_expect_report(jazz, "URDU-140", SIKKA__V1__TX_STATUS__ACSC, "");
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    CHECK_INT(h_sql_int(h,
                        "SELECT count(*) FROM transfers WHERE msg_id = 'URDU-140' AND "
                        "loan_id = '%s' AND status = 'ACSC'",
                        buf),
              1);
    others_settle(mezn, easy, "urdu140");

    TEST_STEP("a payee's 300-byte Urdu text: the payer's RJCT text is cut on a character "
              "boundary, at 140 characters");
    /* 20 times six letters and a ZWNJ: 140 characters, 300 bytes */
    text300[0] = '\0';
    for (int i = 0; i < 20; i++)
        strcat(text300, KEHEH KEHEH KEHEH KEHEH KEHEH KEHEH ZWNJ);
    CHECK_INT(strlen(text300), 300);
    CHECK_INT(text_chars(text300), 140);
    /* the switch's 33 characters, then the first 107 of the payee's */
    snprintf(expected, sizeof(expected), "rejected by creditor agent KOKO: ");
    for (int i = 0; i < 15; i++)
        strcat(expected, KEHEH KEHEH KEHEH KEHEH KEHEH KEHEH ZWNJ);
    strcat(expected, KEHEH KEHEH);
    send_ct(jazz, &(struct ct_spec){.msg_id = "URDU-REJ"});
    fwd = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    id = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    /* one character more than a text may have: FF01, the transfer still waits */
    h_send_decision_text(koko, id, false, "AC04", u141);
    expect_reject_text(koko, "FF01", "text: at most 140 characters");
    h_send_decision_text(koko, id, false, "AC0\xff", NULL);
    expect_reject_text(koko, "FF01", "decision.reason is not valid UTF-8");
    h_send_decision_text(koko, id, false, "AC04", text300);
    expect_report_text(jazz, "URDU-REJ", "AC04", expected);
    expect_report_text(koko, "URDU-REJ", "AC04", expected);
    CHECK_INT(h_sql_int(h,
                        "SELECT count(*) FROM transfers WHERE msg_id = 'URDU-REJ' AND "
                        "reason_text = '%s'",
                        expected),
              1);
    others_settle(mezn, easy, "urdurej");

    TEST_STEP("instalment 2^31: FF01 (the ledger's column is a 32-bit integer); 2^31 - 1 settles");
    send_ct(jazz,
            &(struct ct_spec){.msg_id = "INST-2P31", .loan_id = "LN-1", .instalment = 2147483648u});
    expect_report_text(jazz, "INST-2P31", "FF01", "instalment must be 1..2147483647");
    send_ct(jazz,
            &(struct ct_spec){.msg_id = "INST-MAX", .loan_id = "LN-1", .instalment = 2147483647});
    h_payee_decide(koko, true, NULL);
    h_expect_report(jazz, "INST-MAX", SIKKA__V1__TX_STATUS__ACSC, "");
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    CHECK_INT(h_sql_int(h, "SELECT instalment FROM transfers WHERE msg_id = 'INST-MAX'"),
              2147483647);
    others_settle(mezn, easy, "instalment");

    TEST_STEP("a msg_id with quotes, spaces and '=' is one quoted value in the log");
    send_ct(jazz, &(struct ct_spec){.msg_id = "X\" injected=1 y", .debtor_name = u141});
    expect_report_text(jazz, "X\" injected=1 y", "FF01", "debtor_name: at most 140 characters");
    CHECK(h_log_has(h, "msg_id=\"X\\\" injected=1 y\""), "the msg_id is quoted in the log");
    CHECK(!h_log_has(h, "msg_id=X"), "no unquoted msg_id");

    TEST_STEP("decision, return and query about another participant's transfer: the answer "
              "about an unknown one, byte for byte");
    send_ct(jazz, &(struct ct_spec){.msg_id = "THEIRS"});
    fwd = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t theirs = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    uint64_t unknown = theirs + 100000;
    /* in flight: EASY is not its creditor agent */
    h_send_decision(easy, theirs, false, "AC01");
    Envelope *a = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    h_send_decision(easy, unknown, false, "AC01");
    Envelope *b = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    fprintf(stderr, "   decision: %s / %s\n", a->message_reject->text, b->message_reject->text);
    h_check_same_answer(a, theirs, b, unknown);
    client_envelope_free(b);
    h_send_decision(easy, UINT64_MAX, false, "AC01");
    b = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    h_check_same_answer(a, theirs, b, UINT64_MAX);
    client_envelope_free(b);
    client_envelope_free(a);
    CHECK(h_log_has(h, "event=decision_not_creditor"), "the log says the truth");
    h_send_decision(koko, theirs, true, NULL);
    h_expect_report(jazz, "THEIRS", SIKKA__V1__TX_STATUS__ACSC, "");
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    /* settled: EASY may not return it ... */
    h_send_return(easy, "RET-THEIRS", theirs, 100, "AC04", NULL);
    a = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_STR(a->status_report->reason, "AG01");
    h_send_return(easy, "RET-UNKNOWN", unknown, 100, "AC04", NULL);
    b = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    fprintf(stderr, "   return: %s / %s\n", a->status_report->text, b->status_report->text);
    h_check_same_answer(a, theirs, b, unknown);
    client_envelope_free(b);
    h_send_return(easy, "RET-HUGE", UINT64_MAX, 100, "AC04", NULL);
    b = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    h_check_same_answer(a, theirs, b, UINT64_MAX);
    client_envelope_free(b);
    client_envelope_free(a);
    /* ... nor see it */
    send_query(easy, "Q-THEIRS", NULL, theirs);
    a = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    send_query(easy, "Q-UNKNOWN", NULL, unknown);
    b = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    fprintf(stderr, "   query: %s / %s\n", a->message_reject->text, b->message_reject->text);
    h_check_same_answer(a, theirs, b, unknown);
    client_envelope_free(b);
    send_query(easy, "Q-HUGE", NULL, (uint64_t)INT64_MAX + 1);
    b = h_expect(easy, SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT, 5000);
    h_check_same_answer(a, theirs, b, (uint64_t)INT64_MAX + 1);
    client_envelope_free(b);
    client_envelope_free(a);
    CHECK(h_silent(koko, 200) && h_silent(jazz, 200), "nothing reached the parties");
    others_settle(mezn, easy, "oracle");

    TEST_STEP("queries and returns: their strings follow the same rules");
    send_query(easy, "Q-\xff", "M-1", 0);
    expect_reject_text(easy, "FF01", "status_query.query_id is not valid UTF-8");
    send_query(easy, "Q\tTAB", "M-1", 0);
    expect_reject_text(easy, "FF01", "query_id contains a control character");
    send_query(easy, "Q-LONG", repeat(buf, sizeof(buf), "m", 36), 0);
    expect_reject_text(easy, "FF01", "msg_id: at most 35 bytes");
    h_send_return(koko, "RET-TEXT", theirs, 100, "AC04", u141);
    expect_reject_text(koko, "FF01", "text: at most 140 characters");
    h_send_return(koko, "RET-\xc3", theirs, 100, "AC04", NULL);
    expect_reject_text(koko, "FF01", "payment_return.msg_id is not valid UTF-8");
    others_settle(mezn, easy, "queries");

    client_free(jazz);
    client_free(mezn);
    client_free(easy);
}

int main(void)
{
    struct harness h;
    h_init(&h, "badinput");
    h_config(&h, "max_amount = 1000000000\n");
    h_start(&h);
    struct client *koko = h_connect(&h, "KOKO");

    TEST_STEP("a length over the maximum: FF01, that connection closed");
    struct client *c = h_connect(&h, "JAZZ");
    send_raw(c, "\x00\x10\x00\x01", 4); /* 1 MiB + 1 */
    expect_reject(c, "FF01");
    CHECK(client_recv(c, 3000) == NULL && client_is_closed(c), "closed after an oversized frame");
    client_free(c);
    still_serving(&h, "1");

    TEST_STEP("bytes that are not protobuf: FF01, the connection stays in sync");
    c = h_connect(&h, "JAZZ");
    send_raw(c, "\x00\x00\x00\x05\xff\xff\xff\xff\xff", 9);
    expect_reject(c, "FF01");
    send_raw(c, "\x00\x00\x00\x00", 4); /* an empty envelope: no body */
    expect_reject(c, "FF01");
    /* a known message with a field this version does not know */
    send_raw(c, "\x00\x00\x00\x06\x2a\x04\x08\x01\x48\x01", 10);
    expect_reject(c, "FF01");
    struct h_transfer ok = {
        .msg_id = "OK-1", .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = 100};
    h_send_transfer(c, &ok);
    h_payee_decide(koko, true, NULL);
    Envelope *e = h_expect(c, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000);
    CHECK_INT(e->status_report->status, SIKKA__V1__TX_STATUS__ACSC);
    client_envelope_free(e);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));

    TEST_STEP("zero, negative, over-limit and overflowing amounts: AM02, nothing posted");
    const int64_t bad[] = {0, -1, -9223372036854775807LL - 1, 1000000001, INT64_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char id[32];
        snprintf(id, sizeof(id), "AMT-%zu", i);
        struct h_transfer t = {
            .msg_id = id, .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = bad[i]};
        h_send_transfer(c, &t);
        h_expect_report(c, id, SIKKA__V1__TX_STATUS__RJCT, "AM02");
    }
    CHECK(h_silent(koko, 200), "nothing forwarded");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE msg_id LIKE 'AMT-%%' AND status "
                            "= 'RJCT' AND reason = 'AM02'"),
              5);

    TEST_STEP("unknown purpose: FF03; other currency: AM03");
    struct h_transfer np = {.msg_id = "PURPOSE-1",
                            .debtor_agent = "JAZZ",
                            .creditor_agent = "KOKO",
                            .amount = 100,
                            .purpose = (Sikka__V1__Purpose)42};
    h_send_transfer(c, &np);
    h_expect_report(c, "PURPOSE-1", SIKKA__V1__TX_STATUS__RJCT, "FF03");
    struct h_transfer usd = {.msg_id = "CCY-1",
                             .debtor_agent = "JAZZ",
                             .creditor_agent = "KOKO",
                             .amount = 100,
                             .currency = "USD"};
    h_send_transfer(c, &usd);
    h_expect_report(c, "CCY-1", SIKKA__V1__TX_STATUS__RJCT, "AM03");

    TEST_STEP("missing fields: FF01");
    struct h_transfer nomsg = {
        .msg_id = "", .debtor_agent = "JAZZ", .creditor_agent = "KOKO", .amount = 100};
    h_send_transfer(c, &nomsg);
    expect_reject(c, "FF01");
    struct h_transfer noacc = {.msg_id = "NOACC-1",
                               .debtor_agent = "JAZZ",
                               .creditor_agent = "KOKO",
                               .creditor_account = "",
                               .amount = 100};
    h_send_transfer(c, &noacc);
    h_expect_report(c, "NOACC-1", SIKKA__V1__TX_STATUS__RJCT, "FF01");
    struct h_transfer toolong = {.msg_id = "0123456789012345678901234567890123456789",
                                 .debtor_agent = "JAZZ",
                                 .creditor_agent = "KOKO",
                                 .amount = 100};
    h_send_transfer(c, &toolong);
    expect_reject(c, "FF01");
    struct h_transfer noagent = {
        .msg_id = "NOAGENT-1", .debtor_agent = "JAZZ", .creditor_agent = "", .amount = 100};
    h_send_transfer(c, &noagent);
    h_expect_report(c, "NOAGENT-1", SIKKA__V1__TX_STATUS__RJCT, "FF01");

    TEST_STEP("a message participants do not send: FF01");
    Sikka__V1__StatusReport sr = SIKKA__V1__STATUS_REPORT__INIT;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT;
    env.status_report = &sr;
    CHECK(client_send(c, &env) == 0);
    expect_reject(c, "FF01");
    client_free(c);
    still_serving(&h, "2");

    strict_input(&h, koko);
    still_serving(&h, "strict");

    TEST_STEP("a truncated frame, then the peer vanishes: only that connection goes");
    c = h_connect(&h, "JAZZ");
    send_raw(c, "\x00\x00\x00\x64\x0a\x05", 6);
    CHECK(client_flush(c, 2000) == 0);
    client_free(c);
    still_serving(&h, "3");

    TEST_STEP("a truncated frame, then silence: the switch closes it after the heartbeat");
    client_free(koko);
    CHECK_INT(h_stop(&h), 0);
    h_config(&h, "max_amount = 1000000000\nheartbeat_interval_ms = 300\n");
    h_start(&h);
    c = h_connect(&h, "JAZZ");
    send_raw(c, "\x00\x00\x00\x64\x0a\x05", 6);
    /* our client answers pings, but the half frame swallows its answers:
     * the switch sees garbage or silence and closes the connection */
    for (int i = 0; i < 40 && !client_is_closed(c); i++) {
        Envelope *x = client_recv(c, 100);
        if (x != NULL)
            client_envelope_free(x);
    }
    CHECK(client_is_closed(c), "a stalled half frame must not hold the connection forever");
    client_free(c);
    still_serving(&h, "4");

    TEST_STEP("a peer that stops answering heartbeats is found dead and closed");
    /* a client on a loop of its own that nobody runs: it reads nothing and
     * answers no ping, like a peer whose machine froze */
    struct event_base *frozen = event_base_new();
    char cert[300], key[300], ca[300], err[256];
    struct client_opts o = {.host = "127.0.0.1",
                            .port = h.port,
                            .cert = h_pki(&h, "NAYA.crt", cert, sizeof(cert)),
                            .key = h_pki(&h, "NAYA.key", key, sizeof(key)),
                            .ca = h_pki(&h, "ca.crt", ca, sizeof(ca)),
                            .await_ready = true};
    SSL_CTX *ctx = client_ssl_ctx(&o, err, sizeof(err));
    CHECK(ctx != NULL, "%s", err);
    struct client *dead = client_connect_sync(frozen, ctx, &o, 5000, err, sizeof(err));
    CHECK(dead != NULL, "%s", err);
    /* the switch pings, hears nothing back and closes it: wait for its log
     * line (a few heartbeat intervals of 300 ms), then let the client see */
    int unanswered = h_log_count(&h, "why=\"heartbeat not answered\"");
    H_WAIT_LOG(&h, 1, 10000, "event=session_closed session=NAYA#");
    CHECK(h_log_count(&h, "why=\"heartbeat not answered\"") > unanswered,
          "the frozen peer was closed for another reason");
    Envelope *x = client_recv(dead, 500);
    while (x != NULL) {
        client_envelope_free(x);
        x = client_recv(dead, 500);
    }
    CHECK(client_is_closed(dead), "the switch must close a peer that answers no heartbeat");
    fprintf(stderr, "   frozen peer: %s\n", client_close_reason(dead));
    client_free(dead);
    SSL_CTX_free(ctx);
    event_base_free(frozen);
    still_serving(&h, "5");
    CHECK(h_running(&h), "the switch is still running");

    h_cleanup(&h);
    return 0;
}
