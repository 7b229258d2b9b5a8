/* codec: frame boundaries, limits, unknown fields, round trips. */
#include <event2/buffer.h>

#include "check.h"
#include "codec.h"

static Envelope *roundtrip(struct arena *a, const Envelope *in)
{
    struct evbuffer *buf = evbuffer_new();
    CHECK(codec_write(buf, in) > 0);
    size_t len = 0;
    CHECK_INT(codec_peek(buf, CODEC_DEFAULT_MAX_FRAME, &len), CODEC_FRAME);
    char err[256];
    Envelope *out = codec_take(buf, len, a, err, sizeof(err));
    CHECK(out != NULL, "%s", err);
    CHECK_INT(evbuffer_get_length(buf), 0);
    evbuffer_free(buf);
    return out;
}

int main(void)
{
    static unsigned char mem[16384];
    struct arena a;
    arena_init(&a, mem, sizeof(mem), 1 << 20);
    char err[256];

    TEST_STEP("credit transfer round trip");
    Sikka__V1__CreditTransfer ct = SIKKA__V1__CREDIT_TRANSFER__INIT;
    ct.msg_id = "MSG-1";
    ct.end_to_end_id = "E2E-1";
    ct.debtor_agent = "JAZZ";
    ct.amount = 150000;
    ct.currency = "PKR";
    ct.purpose = SIKKA__V1__PURPOSE__BNPL_REPAYMENT;
    Sikka__V1__LoanInstalment loan = SIKKA__V1__LOAN_INSTALMENT__INIT;
    loan.loan_id = "LOAN-7";
    loan.instalment = 3;
    Sikka__V1__Remittance rmt = SIKKA__V1__REMITTANCE__INIT;
    rmt.kind_case = SIKKA__V1__REMITTANCE__KIND_LOAN;
    rmt.loan = &loan;
    ct.remittance = &rmt;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER;
    env.credit_transfer = &ct;
    Envelope *out = roundtrip(&a, &env);
    CHECK_INT(out->body_case, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER);
    CHECK_STR(out->credit_transfer->msg_id, "MSG-1");
    CHECK_INT(out->credit_transfer->amount, 150000);
    CHECK_STR(out->credit_transfer->remittance->loan->loan_id, "LOAN-7");
    CHECK_INT(out->credit_transfer->remittance->loan->instalment, 3);
    arena_reset(&a);

    TEST_STEP("partial header and partial body wait for more");
    struct evbuffer *buf = evbuffer_new();
    size_t len;
    evbuffer_add(buf, "\0\0", 2);
    CHECK_INT(codec_peek(buf, 100, &len), CODEC_AGAIN);
    evbuffer_add(buf, "\0\x05", 2);
    CHECK_INT(codec_peek(buf, 100, &len), CODEC_AGAIN);
    CHECK_INT(len, 5);
    evbuffer_drain(buf, evbuffer_get_length(buf));

    TEST_STEP("over-long length is refused before buffering");
    evbuffer_add(buf, "\x7f\xff\xff\xff", 4);
    CHECK_INT(codec_peek(buf, CODEC_DEFAULT_MAX_FRAME, &len), CODEC_TOO_LARGE);
    evbuffer_drain(buf, evbuffer_get_length(buf));

    TEST_STEP("garbage is not an envelope");
    const unsigned char junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    CHECK(codec_unpack(&a, junk, sizeof(junk), err, sizeof(err)) == NULL);
    arena_reset(&a);

    TEST_STEP("empty envelope has no body");
    CHECK(codec_unpack(&a, (const uint8_t *)"", 0, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "no body") != NULL, "%s", err);

    TEST_STEP("unknown field inside a known message is refused");
    /* heartbeat {nonce=1} plus field 9 (varint 1) inside it */
    const unsigned char unknown[] = {0x2a, 0x04, 0x08, 0x01, 0x48, 0x01};
    CHECK(codec_unpack(&a, unknown, sizeof(unknown), err, sizeof(err)) == NULL);
    CHECK(strstr(err, "unknown") != NULL, "%s", err);
    arena_reset(&a);
    const unsigned char known[] = {0x2a, 0x02, 0x08, 0x01};
    Envelope *hb = codec_unpack(&a, known, sizeof(known), err, sizeof(err));
    CHECK(hb != NULL, "%s", err);
    CHECK_INT(hb->heartbeat->nonce, 1);
    arena_reset(&a);

    TEST_STEP("strict check: every string in every nested message is UTF-8, named by path");
    ct.msg_id = "MSG-1";
    loan.loan_id = "LN-\xed\xa0\x80"; /* a surrogate */
    CHECK(codec_check_strict(&env.base, err, sizeof(err)) != 0);
    CHECK_STR(err, "credit_transfer.remittance.loan.loan_id is not valid UTF-8");
    loan.loan_id = "LN-\xd9\xbe"; /* Urdu is fine */
    CHECK(codec_check_strict(&env.base, err, sizeof(err)) == 0, "%s", err);
    ct.debtor_name = "\xc0\xaf";
    CHECK(codec_check_strict(&env.base, err, sizeof(err)) != 0);
    CHECK_STR(err, "credit_transfer.debtor_name is not valid UTF-8");
    ct.debtor_name = "";
    /* only the oneof member that is set is read (the others share its memory) */
    Sikka__V1__Remittance text_rmt = SIKKA__V1__REMITTANCE__INIT;
    text_rmt.kind_case = SIKKA__V1__REMITTANCE__KIND_UNSTRUCTURED;
    text_rmt.unstructured = "\xf0\x9f\x98\x80 ok";
    ct.remittance = &text_rmt;
    CHECK(codec_check_strict(&env.base, err, sizeof(err)) == 0, "%s", err);
    text_rmt.unstructured = "cut \xf0\x9f\x98";
    CHECK(codec_check_strict(&env.base, err, sizeof(err)) != 0);
    CHECK_STR(err, "credit_transfer.remittance.unstructured is not valid UTF-8");
    Sikka__V1__StatusReport bad_sr = SIKKA__V1__STATUS_REPORT__INIT;
    bad_sr.text = "rejected: \xda"; /* half a character: what a byte cut leaves */
    Envelope report = SIKKA__V1__ENVELOPE__INIT;
    report.body_case = SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT;
    report.status_report = &bad_sr;
    CHECK(codec_check_strict(&report.base, err, sizeof(err)) != 0);
    CHECK_STR(err, "status_report.text is not valid UTF-8");

    TEST_STEP("codec_unpack refuses what a strict decoder refuses, naming the field");
    text_rmt.unstructured = "ok";
    ct.msg_id = "M\xff"; /* protobuf-c packs it as it is */
    struct evbuffer *raw = evbuffer_new();
    CHECK(codec_write(raw, &env) > 0);
    size_t rawlen = evbuffer_get_length(raw) - CODEC_HEADER_BYTES;
    unsigned char *rawp = evbuffer_pullup(raw, -1) + CODEC_HEADER_BYTES;
    CHECK(codec_unpack(&a, rawp, rawlen, err, sizeof(err)) == NULL);
    CHECK_STR(err, "credit_transfer.msg_id is not valid UTF-8");
    arena_reset(&a);
    evbuffer_free(raw);
    ct.msg_id = "MSG-1";
    /* credit_transfer { msg_id: "A\0B" }: C would see "A" */
    const unsigned char nul[] = {0x0a, 0x05, 0x0a, 0x03, 'A', 0x00, 'B'};
    CHECK(codec_unpack(&a, nul, sizeof(nul), err, sizeof(err)) == NULL);
    CHECK_STR(err, "credit_transfer.msg_id contains a NUL byte");
    arena_reset(&a);
    /* decision { text: "\xc0\x80" } (an overlong NUL) */
    const unsigned char overlong[] = {0x12, 0x04, 0x22, 0x02, 0xc0, 0x80};
    CHECK(codec_unpack(&a, overlong, sizeof(overlong), err, sizeof(err)) == NULL);
    CHECK_STR(err, "decision.text is not valid UTF-8");
    arena_reset(&a);
    /* decision { text: "\xd9\xbe" }: fine */
    const unsigned char fine[] = {0x12, 0x04, 0x22, 0x02, 0xd9, 0xbe};
    Envelope *ok = codec_unpack(&a, fine, sizeof(fine), err, sizeof(err));
    CHECK(ok != NULL, "%s", err);
    CHECK_STR(ok->decision->text, "\xd9\xbe");
    arena_reset(&a);

    TEST_STEP("the request-to-pay messages: FF01 naming the field");
    /* request_to_pay { debtor: "\xff" } */
    const unsigned char rtp_debtor[] = {0x6a, 0x03, 0x2a, 0x01, 0xff};
    CHECK(codec_unpack(&a, rtp_debtor, sizeof(rtp_debtor), err, sizeof(err)) == NULL);
    CHECK_STR(err, "request_to_pay.debtor is not valid UTF-8");
    arena_reset(&a);
    /* request_decision { text: "A\0B" } */
    const unsigned char rtp_text[] = {0x72, 0x05, 0x22, 0x03, 'A', 0x00, 'B'};
    CHECK(codec_unpack(&a, rtp_text, sizeof(rtp_text), err, sizeof(err)) == NULL);
    CHECK_STR(err, "request_decision.text contains a NUL byte");
    arena_reset(&a);
    /* request_cancel { reason: a surrogate } */
    const unsigned char rtp_cancel[] = {0x7a, 0x05, 0x12, 0x03, 0xed, 0xa0, 0x80};
    CHECK(codec_unpack(&a, rtp_cancel, sizeof(rtp_cancel), err, sizeof(err)) == NULL);
    CHECK_STR(err, "request_cancel.reason is not valid UTF-8");
    arena_reset(&a);
    /* request_control { debtor_account: an overlong NUL } (field 17: a two-byte tag) */
    const unsigned char rtp_control[] = {0x8a, 0x01, 0x04, 0x22, 0x02, 0xc0, 0x80};
    CHECK(codec_unpack(&a, rtp_control, sizeof(rtp_control), err, sizeof(err)) == NULL);
    CHECK_STR(err, "request_control.debtor_account is not valid UTF-8");
    arena_reset(&a);
    /* request_status { text: "ok" }: well formed */
    const unsigned char rtp_status[] = {0x82, 0x01, 0x04, 0x2a, 0x02, 'o', 'k'};
    Envelope *st_ok = codec_unpack(&a, rtp_status, sizeof(rtp_status), err, sizeof(err));
    CHECK(st_ok != NULL, "%s", err);
    CHECK_STR(st_ok->request_status->text, "ok");
    CHECK_STR(codec_body_name(st_ok), "request_status");
    arena_reset(&a);
    /* what the switch sends: a list answer with a bad item is named by its path */
    Sikka__V1__RequestStatus item = SIKKA__V1__REQUEST_STATUS__INIT;
    item.ref = "LN-1/\xc3";
    Sikka__V1__RequestStatus *items[] = {&item};
    Sikka__V1__RequestControl list = SIKKA__V1__REQUEST_CONTROL__INIT;
    list.requests = items;
    list.n_requests = 1;
    Envelope listing = SIKKA__V1__ENVELOPE__INIT;
    listing.body_case = SIKKA__V1__ENVELOPE__BODY_REQUEST_CONTROL;
    listing.request_control = &list;
    CHECK(codec_check_strict(&listing.base, err, sizeof(err)) != 0);
    CHECK(strstr(err, "request_control.requests") != NULL && strstr(err, "ref") != NULL, "%s", err);
    TEST_STEP("alias messages (issue 11): the same strictness, named by path");
    /* alias_request { name: "\xc3\x28" } (a cut two-byte sequence) */
    const unsigned char alias_bad_name[] = {0x4a, 0x04, 0x32, 0x02, 0xc3, 0x28};
    CHECK(codec_unpack(&a, alias_bad_name, sizeof(alias_bad_name), err, sizeof(err)) == NULL);
    CHECK_STR(err, "alias_request.name is not valid UTF-8");
    arena_reset(&a);
    /* alias_request { alias: "0\03" } */
    const unsigned char alias_nul[] = {0x4a, 0x05, 0x1a, 0x03, '0', 0x00, '3'};
    CHECK(codec_unpack(&a, alias_nul, sizeof(alias_nul), err, sizeof(err)) == NULL);
    CHECK_STR(err, "alias_request.alias contains a NUL byte");
    arena_reset(&a);
    /* alias_request { field 9: 1 }: unknown */
    const unsigned char alias_unknown[] = {0x4a, 0x02, 0x48, 0x01};
    CHECK(codec_unpack(&a, alias_unknown, sizeof(alias_unknown), err, sizeof(err)) == NULL);
    CHECK(strstr(err, "unknown") != NULL, "%s", err);
    arena_reset(&a);
    /* alias_request { alias: "03001234567", op: ALIAS_LOOKUP }: fine */
    const unsigned char alias_ok[] = {0x4a, 0x0f, 0x10, 0x04, 0x1a, 0x0b, '0', '3', '0',
                                      '0',  '1',  '2',  '3',  '4',  '5',  '6', '7'};
    Envelope *al = codec_unpack(&a, alias_ok, sizeof(alias_ok), err, sizeof(err));
    CHECK(al != NULL, "%s", err);
    CHECK_INT(al->body_case, SIKKA__V1__ENVELOPE__BODY_ALIAS_REQUEST);
    CHECK_INT(al->alias_request->op, SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP);
    CHECK_STR(al->alias_request->alias, "03001234567");
    CHECK_STR(codec_body_name(al), "alias_request");
    arena_reset(&a);
    /* credit_transfer { creditor_alias (15): "\xc0\xaf" } */
    const unsigned char ct_alias_bad[] = {0x0a, 0x04, 0x7a, 0x02, 0xc0, 0xaf};
    CHECK(codec_unpack(&a, ct_alias_bad, sizeof(ct_alias_bad), err, sizeof(err)) == NULL);
    CHECK_STR(err, "credit_transfer.creditor_alias is not valid UTF-8");
    arena_reset(&a);
    /* what the switch sends: the masked name and an alias response's text */
    bad_sr.text = "ok";
    bad_sr.creditor_masked_name = "M*** \xda";
    CHECK(codec_check_strict(&report.base, err, sizeof(err)) != 0);
    CHECK_STR(err, "status_report.creditor_masked_name is not valid UTF-8");
    Sikka__V1__AliasResponse bad_ar = SIKKA__V1__ALIAS_RESPONSE__INIT;
    bad_ar.masked_name = "\xd8\xb9*** \xd8";
    Envelope answer = SIKKA__V1__ENVELOPE__INIT;
    answer.body_case = SIKKA__V1__ENVELOPE__BODY_ALIAS_RESPONSE;
    answer.alias_response = &bad_ar;
    CHECK(codec_check_strict(&answer.base, err, sizeof(err)) != 0);
    CHECK_STR(err, "alias_response.masked_name is not valid UTF-8");
    CHECK_STR(codec_body_name(&answer), "alias_response");

    TEST_STEP("arena limit bounds what a frame can allocate");
    struct arena tiny;
    unsigned char small[64];
    arena_init(&tiny, small, sizeof(small), 128);
    CHECK(arena_alloc(&tiny, 48) != NULL);
    CHECK(arena_alloc(&tiny, 48) != NULL);
    CHECK(arena_alloc(&tiny, 4096) == NULL);
    arena_reset(&tiny);

    evbuffer_free(buf);
    return 0;
}
