/* bulkfile: the CSV reader of `sikka-wallet bulk` (RFC 4180 quoting, strict
 * checks naming the line), the batch it makes, how BulkReports become one
 * line per item; and the codec of the bulk messages (round trips, unknown
 * fields and bad UTF-8 inside repeated items, the bulk frame limit). */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulkfile.h"
#include "check.h"
#include "codec.h"

static struct bulkfile f;
static char err[512];

static int parse(const char *text)
{
    bulkfile_free(&f);
    err[0] = '\0';
    return bulkfile_parse(text, strlen(text), &f, err, sizeof(err));
}

/* The text is refused and the error holds needle. */
static void refused(const char *text, const char *needle)
{
    CHECK(parse(text) != 0, "accepted: %s", text);
    CHECK(strstr(err, needle) != NULL, "error \"%s\" lacks \"%s\"", err, needle);
    CHECK(f.rows == NULL && f.n == 0, "nothing kept");
}

#define HDR "to,amount,purpose,ref,msg_id\n"

static void test_reader(void)
{
    TEST_STEP("a file with quoting, CRLF, a byte order mark and empty lines");
    const char *ok = "\xEF\xBB\xBFto,amount,purpose,ref,msg_id\r\n"
                     "03219876543@KOKO,1500.00,SUPPLIER_PAYMENT,INV-1,M-1\r\n"
                     "\r\n"
                     "\"0321@MEZN\",0.5,p2p,\"lunch, \"\"Friday\"\"\",\r\n"
                     "0333@SADA,1500,BNPL_REPAYMENT,LN-7/3,\"M-3\"";
    CHECK(parse(ok) == 0, "%s", err);
    CHECK_INT(f.n, 3);
    CHECK_INT(f.rows[0].line, 2);
    CHECK_STR(f.rows[0].creditor_account, "03219876543");
    CHECK_STR(f.rows[0].creditor_agent, "KOKO");
    CHECK_INT(f.rows[0].amount, 150000);
    CHECK_INT(f.rows[0].purpose, SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT);
    CHECK_STR(f.rows[0].ref, "INV-1");
    CHECK_STR(f.rows[0].msg_id, "M-1");
    CHECK_INT(f.rows[1].line, 4);
    CHECK_INT(f.rows[1].amount, 50);
    CHECK_STR(f.rows[1].ref, "lunch, \"Friday\"");
    CHECK_STR(f.rows[1].msg_id, "");
    CHECK_INT(f.rows[2].line, 5);
    CHECK_INT(f.rows[2].amount, 150000);
    CHECK_STR(f.rows[2].msg_id, "M-3");

    TEST_STEP("amounts: PKR with at most two decimals, parsed without floating point");
    CHECK(parse(HDR "1@KOKO,1500.05,P2P,,\n") == 0, "%s", err);
    CHECK_INT(f.rows[0].amount, 150005);
    CHECK(parse(HDR "1@KOKO,92233720368547758.07,P2P,,\n") == 0, "%s", err);
    CHECK_INT(f.rows[0].amount, INT64_MAX);
    refused(HDR "1@KOKO,92233720368547758.08,P2P,,\n", "line 2: amount");
    refused(HDR "1@KOKO,1.001,P2P,,\n", "line 2: amount");
    refused(HDR "1@KOKO,-1,P2P,,\n", "line 2: amount");
    refused(HDR "1@KOKO,1e3,P2P,,\n", "line 2: amount");
    refused(HDR "1@KOKO, 1,P2P,,\n", "line 2: amount");
    refused(HDR "1@KOKO,0.00,P2P,,\n", "line 2: amount: must be more than 0");

    TEST_STEP("a payee by alias: kept as written, for the switch to resolve");
    CHECK(parse(HDR "03001234567,10.00,P2P,,\n+923001234567,1,P2P,,\n1@KOKO,1,P2P,,\n") == 0, "%s",
          err);
    CHECK_INT(f.n, 3);
    CHECK_STR(f.rows[0].creditor_alias, "03001234567");
    CHECK_STR(f.rows[0].creditor_agent, "");
    CHECK_STR(f.rows[1].creditor_alias, "+923001234567");
    CHECK_STR(f.rows[2].creditor_alias, "");
    CHECK_STR(f.rows[2].creditor_agent, "KOKO");
    bulkfile_free(&f);
    refused(HDR "0300-1234567,1,P2P,,\n",
            "line 2: to: \"0300-1234567\" must be ACCOUNT@CODE or an alias");
    refused(HDR "+,1,P2P,,\n", "line 2: to:");

    TEST_STEP("every error names its line");
    refused("", "empty");
    refused(HDR, "no payments");
    refused("to,amount,purpose,ref\n1@KOKO,1,P2P,\n", "line 1: the header");
    refused("To,amount,purpose,ref,msg_id\n", "line 1: the header");
    refused(HDR "1@KOKO,1,P2P,\n", "line 2: 4 fields, expected 5");
    refused(HDR "1@KOKO,1,P2P,,,\n", "line 2: 6 fields");
    refused(HDR "1@KOKO,1,P2P,,\n1KOKO,1,P2P,,\n", "line 3: to: \"1KOKO\" must be ACCOUNT@CODE");
    refused(HDR "1@koko,1,P2P,,\n", "line 2: to:");
    refused(HDR "1@KOKO,1,GIFT,,\n", "line 2: purpose");
    refused(HDR "1@KOKO,1,BNPL_REPAYMENT,LN-7,\n", "line 2: ref");
    refused(HDR "1@KOKO,1,P2P,\"open\n\n\n", "line 5: quoted field opened on line 2 is not closed");
    refused(HDR "1@KOKO,1,P2P,\"a\"b,\n", "line 2: text after a closing quote");
    refused(HDR "1@KOKO,1,P2P,a\"b,\n", "line 2: a quote inside an unquoted field");
    refused(HDR "1@KOKO,1,P2P,\"two\nlines\",\n", "line 2: ref contains a control character");
    refused(HDR "1@KOKO,1,P2P,\"two\nlines\",\n2@KOKO,1,P2P,x,\n1@KOKO,x,P2P,,\n", "line 2: ref");
    refused(HDR "1@KOKO,1,P2P,,\n1@KOKO,1,P2P,caf\xc3\x28,\n", "line 3: ref is not valid UTF-8");
    refused(HDR "1@KOKO,1,P2P,,M-1\n1@KOKO,2,P2P,,M-1\n",
            "line 3: msg_id \"M-1\" is already used on line 2");
    refused(HDR "1@KOKO,1,P2P,,123456789012345678901234567890123456\n", "line 2: msg_id");
    refused(HDR "1@KOKO,1,P2P,,\r2@KOKO,1,P2P,,\n", "line 2: a carriage return");
    static const char nul[] = HDR "1@KOKO,1,P2P,a\0b,\n";
    bulkfile_free(&f);
    CHECK(bulkfile_parse(nul, sizeof(nul) - 1, &f, err, sizeof(err)) != 0);
    CHECK(strstr(err, "line 2: column ref holds a NUL byte") != NULL, "%s", err);
    char *big = malloc(BULKFILE_FIELD_MAX * 2 + 64);
    CHECK(big != NULL);
    strcpy(big, HDR "1@KOKO,1,P2P,");
    memset(big + strlen(big), 'x', BULKFILE_FIELD_MAX + 1);
    big[strlen(HDR "1@KOKO,1,P2P,") + BULKFILE_FIELD_MAX + 1] = '\0';
    refused(big, "line 2: column ref is longer than");
    free(big);

    TEST_STEP("1,000 payments are a batch; 1,001 are refused, naming the line");
    size_t cap = 64 + 1001 * 40;
    char *many = malloc(cap);
    CHECK(many != NULL);
    size_t used = (size_t)snprintf(many, cap, HDR);
    for (int i = 0; i < 1000; i++)
        used += (size_t)snprintf(many + used, cap - used, "1@KOKO,1,P2P,,M-%d\n", i);
    CHECK(parse(many) == 0, "%s", err);
    CHECK_INT(f.n, 1000);
    snprintf(many + used, cap - used, "1@KOKO,1,P2P,,M-1000\n");
    refused(many, "line 1002: more than 1000 payments");
    free(many);
}

static void test_batch(void)
{
    TEST_STEP("the batch: its id comes from the content; empty msg_ids from the batch id");
    struct bulkfile_batch b1, b2;
    CHECK(parse(HDR "1@KOKO,1,P2P,,\n2@MEZN,2,SUPPLIER_PAYMENT,INV-9,M-2\n") == 0, "%s", err);
    CHECK(bulkfile_batch(&b1, &f, "JAZZ", "0300", NULL, err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(strlen(b1.batch_id), BULKFILE_BATCH_ID_LEN);
    CHECK_INT(b1.batch_id[0], 'B');
    char expect[64];
    snprintf(expect, sizeof(expect), "%s-1", b1.batch_id);
    CHECK_STR(f.rows[0].msg_id, expect);
    CHECK_STR(f.rows[1].msg_id, "M-2");
    CHECK_INT(b1.env.body_case, SIKKA__V1__ENVELOPE__BODY_BULK_CREDIT_TRANSFER);
    CHECK_INT(b1.bulk.n_items, 2);
    CHECK_STR(b1.bulk.items[0]->msg_id, expect);
    CHECK_STR(b1.bulk.items[0]->debtor_agent, "JAZZ");
    CHECK_STR(b1.bulk.items[0]->debtor_account, "0300");
    CHECK_STR(b1.bulk.items[1]->creditor_agent, "MEZN");
    CHECK_INT(b1.bulk.items[1]->amount, 200);
    CHECK_STR(b1.bulk.items[1]->remittance->invoice->invoice_number, "INV-9");
    /* the same file again: the same batch */
    CHECK(parse(HDR "1@KOKO,1,P2P,,\n2@MEZN,2,SUPPLIER_PAYMENT,INV-9,M-2\n") == 0, "%s", err);
    CHECK(bulkfile_batch(&b2, &f, "JAZZ", "0300", NULL, err, sizeof(err)) == 0, "%s", err);
    CHECK_STR(b2.batch_id, b1.batch_id);
    bulkfile_batch_free(&b2);
    /* another amount, account or payer: another batch */
    CHECK(parse(HDR "1@KOKO,1.01,P2P,,\n2@MEZN,2,SUPPLIER_PAYMENT,INV-9,M-2\n") == 0, "%s", err);
    CHECK(bulkfile_batch(&b2, &f, "JAZZ", "0300", NULL, err, sizeof(err)) == 0, "%s", err);
    CHECK(strcmp(b2.batch_id, b1.batch_id) != 0);
    bulkfile_batch_free(&b2);
    CHECK(bulkfile_batch(&b2, &f, "JAZZ", "0301", NULL, err, sizeof(err)) == 0, "%s", err);
    CHECK(strcmp(b2.batch_id, b1.batch_id) != 0);
    bulkfile_batch_free(&b2);
    CHECK(bulkfile_batch(&b2, &f, "JAZZ", "0300", "MY-BATCH", err, sizeof(err)) == 0, "%s", err);
    CHECK_STR(b2.batch_id, "MY-BATCH");
    bulkfile_batch_free(&b2);
    CHECK(bulkfile_batch(&b2, &f, "JAZZ", "0300", "bad\x01id", err, sizeof(err)) != 0);

    TEST_STEP("reports: results in chunks become one line per item, then the summary");
    CHECK(parse(HDR "1@KOKO,1,P2P,,\n\n2@MEZN,2,P2P,,\n3@SADA,3,P2P,,\n") == 0, "%s", err);
    struct bulkfile_run run;
    CHECK(bulkfile_run_init(&run, "BATCH", 3) == 0);
    Sikka__V1__StatusReport sr[3];
    Sikka__V1__BulkItemResult it[3], *ptrs[3];
    for (int i = 0; i < 3; i++) {
        sikka__v1__status_report__init(&sr[i]);
        sikka__v1__bulk_item_result__init(&it[i]);
        it[i].index = (uint32_t)i;
        it[i].report = &sr[i];
        ptrs[i] = &it[i];
    }
    sr[0].status = SIKKA__V1__TX_STATUS__ACSC;
    sr[0].transfer_id = 77;
    sr[0].amount = 100;
    sr[0].fee = 3;
    sr[1].status = SIKKA__V1__TX_STATUS__RJCT;
    sr[1].reason = "AC01";
    sr[1].text = "rejected by\ncreditor agent MEZN";
    sr[2].status = SIKKA__V1__TX_STATUS__RJCT;
    sr[2].reason = "NARR";
    sr[2].text = "the ledger is unavailable right now";
    it[2].retry = 1;
    Sikka__V1__BulkReport br = SIKKA__V1__BULK_REPORT__INIT;
    br.batch_id = "OTHER";
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_BULK_REPORT;
    env.bulk_report = &br;
    CHECK_INT(bulkfile_take(&run, &env), BULKFILE_NOT_OURS);
    br.batch_id = "BATCH";
    br.results = ptrs;
    br.n_results = 2;
    CHECK_INT(bulkfile_take(&run, &env), BULKFILE_MORE);
    br.results = ptrs + 2;
    br.n_results = 1;
    br.last = 1;
    CHECK_INT(bulkfile_take(&run, &env), BULKFILE_DONE);
    CHECK_INT(bulkfile_retryable(&run), 1);
    char *text = NULL;
    size_t textlen = 0;
    FILE *out = open_memstream(&text, &textlen);
    CHECK(out != NULL);
    CHECK_INT(bulkfile_print(out, &f, &run), 1);
    fclose(out);
    CHECK_STR(text, "2 ACSC 77\n"
                    "4 RJCT AC01 rejected by creditor agent MEZN\n"
                    "5 RJCT NARR the ledger is unavailable right now\n"
                    "SUMMARY items=3 acsc=1 rjct=1 not_processed=1 settled=1.00 fees=0.03 "
                    "batch=BATCH\n");
    free(text);
    bulkfile_run_free(&run);

    TEST_STEP("a batch refused whole: every line says so");
    CHECK(bulkfile_run_init(&run, "BATCH", 3) == 0);
    Sikka__V1__BulkReport no = SIKKA__V1__BULK_REPORT__INIT;
    no.batch_id = "BATCH";
    no.reason = "AM05";
    no.text = "batch_id already used";
    no.last = 1;
    env.bulk_report = &no;
    CHECK_INT(bulkfile_take(&run, &env), BULKFILE_DONE);
    CHECK_INT(bulkfile_retryable(&run), 0);
    out = open_memstream(&text, &textlen);
    CHECK(out != NULL);
    CHECK_INT(bulkfile_print(out, &f, &run), 1);
    fclose(out);
    CHECK(strncmp(text, "2 RJCT AM05 batch_id already used\n4 RJCT AM05", 45) == 0, "%s", text);
    CHECK(strstr(text, "SUMMARY items=3 acsc=0 rjct=3 not_processed=0") != NULL, "%s", text);
    free(text);
    bulkfile_run_free(&run);
    /* a MessageReject about the frame (no ref) or the batch; not one about a transfer */
    CHECK(bulkfile_run_init(&run, "BATCH", 3) == 0);
    Sikka__V1__MessageReject mr = SIKKA__V1__MESSAGE_REJECT__INIT;
    mr.reason = "NARR";
    mr.ref_msg_id = "M-9";
    Envelope rej = SIKKA__V1__ENVELOPE__INIT;
    rej.body_case = SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT;
    rej.message_reject = &mr;
    CHECK_INT(bulkfile_take(&run, &rej), BULKFILE_NOT_OURS);
    mr.ref_msg_id = "";
    mr.reason = "FF01";
    mr.text = "frame too large";
    CHECK_INT(bulkfile_take(&run, &rej), BULKFILE_DONE);
    CHECK(run.refused && !run.retry);
    CHECK_STR(run.reason, "FF01");
    bulkfile_run_free(&run);
    bulkfile_batch_free(&b1);
}

/* ---- codec ---- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* An Envelope holding a bulk whose one item is `item` (raw bytes). */
static size_t wrap_item(uint8_t *out, const uint8_t *item, size_t ilen)
{
    uint8_t bulk[512];
    size_t b = 0;
    bulk[b++] = 0x0a; /* batch_id */
    bulk[b++] = 1;
    bulk[b++] = 'X';
    bulk[b++] = 0x12; /* items */
    b += put_varint(bulk + b, ilen);
    memcpy(bulk + b, item, ilen);
    b += ilen;
    size_t n = 0;
    out[n++] = 0x92; /* field 18 */
    out[n++] = 0x01;
    n += put_varint(out + n, b);
    memcpy(out + n, bulk, b);
    return n + b;
}

static void test_codec(void)
{
    static unsigned char mem[65536];
    struct arena a;
    arena_init(&a, mem, sizeof(mem), 4 << 20);
    char why[256];

    TEST_STEP("codec: a bulk of 1,000 items round-trips in a frame over 64 KiB");
    CHECK(parse(HDR "03219876543@KOKO,1,SUPPLIER_PAYMENT,INV-1,\n") == 0, "%s", err);
    struct bulkfile big = {calloc(1000, sizeof(struct bulkfile_row)), 1000};
    CHECK(big.rows != NULL);
    for (size_t i = 0; i < 1000; i++) {
        big.rows[i] = f.rows[0];
        big.rows[i].amount = (int64_t)i + 1;
    }
    struct bulkfile_batch bb;
    CHECK(bulkfile_batch(&bb, &big, "JAZZ", "03001234567", NULL, err, sizeof(err)) == 0, "%s", err);
    struct evbuffer *buf = evbuffer_new();
    CHECK(codec_write(buf, &bb.env) > 0);
    size_t len = 0;
    CHECK_INT(codec_peek(buf, CODEC_DEFAULT_MAX_FRAME, &len), CODEC_TOO_LARGE);
    CHECK(len > CODEC_DEFAULT_MAX_FRAME, "%zu bytes", len);
    CHECK(codec_is_bulk(buf));
    CHECK_INT(codec_peek_bulk(buf, CODEC_DEFAULT_MAX_FRAME, 1 << 20, &len), CODEC_FRAME);
    CHECK_INT(codec_peek_bulk(buf, CODEC_DEFAULT_MAX_FRAME, len - 1, &len), CODEC_TOO_LARGE);
    CHECK_INT(codec_peek_bulk(buf, CODEC_DEFAULT_MAX_FRAME, 1 << 20, &len), CODEC_FRAME);
    Envelope *e = codec_take(buf, len, &a, why, sizeof(why));
    CHECK(e != NULL, "%s", why);
    CHECK_INT(e->body_case, SIKKA__V1__ENVELOPE__BODY_BULK_CREDIT_TRANSFER);
    CHECK_STR(e->bulk_credit_transfer->batch_id, bb.batch_id);
    CHECK_INT(e->bulk_credit_transfer->n_items, 1000);
    CHECK_INT(e->bulk_credit_transfer->items[999]->amount, 1000);
    CHECK_STR(e->bulk_credit_transfer->items[999]->remittance->invoice->invoice_number, "INV-1");
    arena_reset(&a);
    bulkfile_batch_free(&bb);
    free(big.rows);

    TEST_STEP("codec: only a frame that begins with the bulk field may pass max_frame");
    static const uint8_t other[] = {0x00, 0x01, 0x11, 0x70, 0x0a, 0x05}; /* 70000 */
    static const uint8_t bulk[] = {0x00, 0x01, 0x11, 0x70, 0x92, 0x01};
    static const uint8_t huge[] = {0x00, 0x10, 0x00, 0x01}; /* 1 MiB + 1 */
    evbuffer_drain(buf, evbuffer_get_length(buf));
    evbuffer_add(buf, other, 4);
    CHECK_INT(codec_peek_bulk(buf, CODEC_DEFAULT_MAX_FRAME, 1 << 20, &len), CODEC_AGAIN);
    evbuffer_add(buf, other + 4, 2);
    CHECK_INT(codec_peek_bulk(buf, CODEC_DEFAULT_MAX_FRAME, 1 << 20, &len), CODEC_TOO_LARGE);
    evbuffer_drain(buf, evbuffer_get_length(buf));
    evbuffer_add(buf, bulk, sizeof(bulk));
    CHECK_INT(codec_peek_bulk(buf, CODEC_DEFAULT_MAX_FRAME, 1 << 20, &len), CODEC_AGAIN);
    CHECK_INT(codec_peek_bulk(buf, CODEC_DEFAULT_MAX_FRAME, CODEC_DEFAULT_MAX_FRAME, &len),
              CODEC_TOO_LARGE);
    evbuffer_drain(buf, evbuffer_get_length(buf));
    evbuffer_add(buf, huge, sizeof(huge));
    CHECK_INT(codec_peek_bulk(buf, CODEC_DEFAULT_MAX_FRAME, 1 << 20, &len), CODEC_TOO_LARGE);
    evbuffer_free(buf);

    TEST_STEP("codec: an unknown field or bad UTF-8 inside an item refuses the frame");
    uint8_t item[64], frame[600];
    size_t il = 0;
    item[il++] = 0x0a; /* msg_id "M" */
    item[il++] = 1;
    item[il++] = 'M';
    il += put_varint(item + il, (99 << 3) | 0); /* field 99: unknown */
    item[il++] = 1;
    size_t fl = wrap_item(frame, item, il);
    CHECK(codec_unpack(&a, frame, fl, why, sizeof(why)) == NULL);
    CHECK(strstr(why, "unknown") != NULL, "%s", why);
    arena_reset(&a);
    il = 0;
    item[il++] = 0x0a; /* msg_id "M" */
    item[il++] = 1;
    item[il++] = 'M';
    item[il++] = 0x42; /* creditor_name (8): "Caf\xc3(" */
    item[il++] = 5;
    memcpy(item + il, "Caf\xc3\x28", 5);
    il += 5;
    fl = wrap_item(frame, item, il);
    CHECK(codec_unpack(&a, frame, fl, why, sizeof(why)) == NULL);
    CHECK_STR(why, "bulk_credit_transfer.items[0].creditor_name is not valid UTF-8");
    arena_reset(&a);

    TEST_STEP("codec: a BulkReport round-trips with its results and summary");
    Sikka__V1__StatusReport sr = SIKKA__V1__STATUS_REPORT__INIT;
    sr.status = SIKKA__V1__TX_STATUS__RJCT;
    sr.reason = "AB08";
    sr.original_msg_id = "M-1";
    Sikka__V1__BulkItemResult r = SIKKA__V1__BULK_ITEM_RESULT__INIT, *rp = &r;
    r.index = 7;
    r.report = &sr;
    Sikka__V1__BulkReport br = SIKKA__V1__BULK_REPORT__INIT;
    br.batch_id = "B";
    br.results = &rp;
    br.n_results = 1;
    br.last = 1;
    br.items = 8;
    br.rejected = 1;
    br.settled = 7;
    br.settled_amount = 700;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_BULK_REPORT;
    env.bulk_report = &br;
    CHECK(codec_check_strict(&env.base, why, sizeof(why)) == 0, "%s", why);
    size_t plen = 0;
    uint8_t *packed = codec_pack_alloc(&env, &plen);
    CHECK(packed != NULL);
    e = codec_unpack(&a, packed + CODEC_HEADER_BYTES, plen - CODEC_HEADER_BYTES, why, sizeof(why));
    CHECK(e != NULL, "%s", why);
    CHECK_STR(codec_body_name(e), "bulk_report");
    CHECK_INT(e->bulk_report->n_results, 1);
    CHECK_INT(e->bulk_report->results[0]->index, 7);
    CHECK_STR(e->bulk_report->results[0]->report->reason, "AB08");
    CHECK_INT(e->bulk_report->settled_amount, 700);
    free(packed);
    arena_reset(&a);
}

int main(void)
{
    test_reader();
    test_batch();
    test_codec();
    bulkfile_free(&f);
    return 0;
}
