/* capture + gen: the capture file format round trip (every field written by
 * `sikka-replay gen` reads back the same), the generator's promises (same
 * seed, same bytes; unique msg_ids unless a retry; retries resend an earlier
 * transfer byte for byte; malformed records do not decode; BNPL goes to the
 * lender with a loan reference; amounts within their ranges; offsets spaced
 * for the rate) and the reader refusing what is not a capture (bad magic,
 * unknown version, truncation). */
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture.h"
#include "check.h"
#include "codec.h"
#include "gen.h"
#include "scenario.h"

static char dir[64];

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static void cleanup(void)
{
    static const char *const names[] = {"a.cap",   "b.cap",  "c.cap",
                                        "bad.cap", "v2.cap", "trunc.cap"};
    char p[128];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        path_in(p, sizeof(p), names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "%s", path);
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    CHECK(n > 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n);
    CHECK(buf != NULL);
    CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "%s", path);
    CHECK(fwrite(data, 1, len, f) == len);
    CHECK(fclose(f) == 0);
}

static struct scenario busy_scenario(void)
{
    struct scenario s;
    scenario_defaults(&s);
    char err[256];
    s.count = 3000;
    s.seed = 20260101;
    s.retry_rate = 0.05;
    s.reject_rate = 0.05;
    s.ignore_rate = 0.02;
    s.malformed_rate = 0.02;
    s.rate = 250;
    CHECK(scenario_set_mix(&s, "bnpl=60,supplier=25,p2p=15", err, sizeof(err)) == 0, "%s", err);
    return s;
}

static bool bytes_equal(ProtobufCBinaryData a, ProtobufCBinaryData b)
{
    return a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
}

/* An earlier transfer, remembered to check retries against. */
struct seen {
    char msg_id[40];
    uint8_t frame[1024];
    size_t len;
};

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sikka-test-capture.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    atexit(cleanup);
    char a[128], b[128], c[128], err[512];
    path_in(a, sizeof(a), "a.cap");
    path_in(b, sizeof(b), "b.cap");
    path_in(c, sizeof(c), "c.cap");
    struct scenario s = busy_scenario();

    TEST_STEP("gen writes a capture; every field reads back as generated");
    CHECK(gen_write_file(&s, a, err, sizeof(err)) == 0, "%s", err);
    struct gen *g = gen_new(&s, err, sizeof(err));
    CHECK(g != NULL, "%s", err);
    struct capture_reader *r = capture_open(a, err, sizeof(err));
    CHECK(r != NULL, "%s", err);
    const CaptureHeader *h = capture_header(r);
    const CaptureHeader *gh = gen_header(g);
    CHECK_INT(h->version, CAPTURE_VERSION);
    CHECK_INT(h->started_at_ms, s.start_ms);
    CHECK_STR(h->source, "sikka-replay gen");
    CHECK_STR(h->scenario, gh->scenario);
    CHECK(strstr(h->scenario, "\"seed\":20260101") != NULL, "scenario %s", h->scenario);
    CHECK_INT(h->n_participants, 6);
    static const char *const codes[] = {"JAZZ", "EASY", "SADA", "NAYA", "KOKO", "MEZN"};
    for (size_t i = 0; i < 6; i++)
        CHECK_STR(h->participants[i], codes[i]);

    size_t n = 0, retries = 0, malformed = 0, rejects = 0, ignores = 0, bnpl = 0, supplier = 0;
    size_t p2p = 0, mezn_supplier = 0;
    static struct seen seen[4000];
    size_t nseen = 0;
    const CaptureRecord *rec;
    int64_t last_offset = -1;
    while ((rec = capture_next(r, err, sizeof(err))) != NULL) {
        const CaptureRecord *want = gen_next(g);
        CHECK(want != NULL, "more records in the file than generated");
        CHECK_INT(rec->offset_us, want->offset_us);
        CHECK_STR(rec->participant, want->participant);
        CHECK(bytes_equal(rec->frame, want->frame), "record %zu: frame differs", n);
        CHECK_INT(rec->payee_action, want->payee_action);
        CHECK_STR(rec->reject_reason, want->reject_reason);
        CHECK_INT(rec->retry, want->retry);
        CHECK_INT(rec->malformed, want->malformed);
        CHECK_STR(rec->msg_id, want->msg_id);
        CHECK_STR(rec->payee, want->payee);
        CHECK_INT(rec->amount, want->amount);

        /* offsets: spaced for --rate 250, i.e. 4 ms apart */
        CHECK_INT(rec->offset_us, (int64_t)n * 4000);
        CHECK(rec->offset_us > last_offset);
        last_offset = rec->offset_us;

        if (rec->malformed) {
            malformed++;
            char why[256];
            struct arena ar;
            static max_align_t mem[1024];
            arena_init(&ar, mem, sizeof(mem), 1 << 20);
            CHECK(codec_unpack(&ar, rec->frame.data, rec->frame.len, why, sizeof(why)) == NULL,
                  "a malformed record decodes");
            arena_reset(&ar);
            CHECK_STR(rec->msg_id, "");
            n++;
            continue;
        }
        Envelope *env = sikka__v1__envelope__unpack(NULL, rec->frame.len, rec->frame.data);
        CHECK(env != NULL && env->body_case == SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER,
              "record %zu is not a credit transfer", n);
        const Sikka__V1__CreditTransfer *ct = env->credit_transfer;
        CHECK_STR(ct->msg_id, rec->msg_id);
        CHECK_STR(ct->debtor_agent, rec->participant);
        CHECK_STR(ct->creditor_agent, rec->payee);
        CHECK(strcmp(ct->debtor_agent, ct->creditor_agent) != 0, "pays itself");
        CHECK_INT(ct->amount, rec->amount);
        CHECK(ct->amount % 100 == 0, "whole rupees");
        CHECK_STR(ct->currency, "PKR");
        CHECK(strlen(ct->msg_id) <= 23, "room for run-id and loop suffixes");
        if (rec->retry) {
            retries++;
            bool found = false;
            for (size_t i = 0; i < nseen && !found; i++)
                found = strcmp(seen[i].msg_id, rec->msg_id) == 0 && seen[i].len == rec->frame.len &&
                        memcmp(seen[i].frame, rec->frame.data, rec->frame.len) == 0;
            CHECK(found, "retry %s resends no earlier transfer byte for byte", rec->msg_id);
        } else {
            for (size_t i = 0; i < nseen; i++)
                CHECK(strcmp(seen[i].msg_id, rec->msg_id) != 0, "msg_id %s used twice",
                      rec->msg_id);
            CHECK(nseen < sizeof(seen) / sizeof(seen[0]));
            snprintf(seen[nseen].msg_id, sizeof(seen[nseen].msg_id), "%s", rec->msg_id);
            CHECK(rec->frame.len <= sizeof(seen[nseen].frame));
            memcpy(seen[nseen].frame, rec->frame.data, rec->frame.len);
            seen[nseen].len = rec->frame.len;
            nseen++;
        }
        switch (rec->payee_action) {
        case SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_REJECT:
            rejects++;
            CHECK(strcmp(rec->reject_reason, "AC01") == 0 ||
                      strcmp(rec->reject_reason, "AC04") == 0,
                  "reason %s", rec->reject_reason);
            break;
        case SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_IGNORE:
            ignores++;
            CHECK_STR(rec->reject_reason, "");
            break;
        default:
            CHECK_STR(rec->reject_reason, "");
        }
        switch (ct->purpose) {
        case SIKKA__V1__PURPOSE__BNPL_REPAYMENT:
            bnpl++;
            CHECK_STR(ct->creditor_agent, "KOKO");
            CHECK(ct->remittance != NULL &&
                  ct->remittance->kind_case == SIKKA__V1__REMITTANCE__KIND_LOAN);
            CHECK(strncmp(ct->remittance->loan->loan_id, "KOKO-LN-", 8) == 0);
            CHECK(ct->remittance->loan->instalment >= 1 && ct->remittance->loan->instalment <= 12);
            CHECK(ct->amount >= 50000 && ct->amount <= 500000, "instalment %lld",
                  (long long)ct->amount);
            break;
        case SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT:
            supplier++;
            mezn_supplier += strcmp(ct->debtor_agent, "MEZN") == 0;
            CHECK(ct->remittance != NULL &&
                  ct->remittance->kind_case == SIKKA__V1__REMITTANCE__KIND_INVOICE);
            CHECK(strncmp(ct->remittance->invoice->invoice_number, "INV-", 4) == 0);
            CHECK(ct->amount >= 1000000 && ct->amount <= 200000000);
            CHECK(strcmp(ct->creditor_agent, "KOKO") != 0, "supplier paid at the lender");
            break;
        case SIKKA__V1__PURPOSE__P2P:
            p2p++;
            CHECK(ct->amount >= 10000 && ct->amount <= 5000000);
            CHECK(strcmp(ct->creditor_agent, "KOKO") != 0 && strcmp(ct->debtor_agent, "KOKO") != 0);
            break;
        default:
            CHECK(false, "purpose %d", ct->purpose);
        }
        sikka__v1__envelope__free_unpacked(env, NULL);
        n++;
    }
    CHECK(err[0] == '\0', "reading: %s", err);
    CHECK(gen_next(g) == NULL, "fewer records in the file than generated");
    CHECK_INT(n, s.count);
    capture_close_reader(r);
    gen_free(g);
    fprintf(stderr,
            "   %zu records: %zu retries, %zu malformed, %zu rejects, %zu ignored; "
            "bnpl %zu, supplier %zu (%zu from MEZN), p2p %zu\n",
            n, retries, malformed, rejects, ignores, bnpl, supplier, mezn_supplier, p2p);
    /* the shares are random but not wildly off on 3000 records */
    CHECK(retries > 75 && retries < 240, "retries %zu", retries);
    CHECK(malformed > 25 && malformed < 110, "malformed %zu", malformed);
    CHECK(rejects > 70 && rejects < 230, "rejects %zu", rejects);
    CHECK(ignores > 20 && ignores < 110, "ignores %zu", ignores);
    size_t transfers = bnpl + supplier + p2p;
    CHECK(bnpl * 100 > transfers * 55 && bnpl * 100 < transfers * 65, "bnpl %zu", bnpl);
    CHECK(supplier * 100 > transfers * 20 && supplier * 100 < transfers * 30);
    CHECK(mezn_supplier * 100 > supplier * 60, "MEZN pays most supplier invoices");

    TEST_STEP("deterministic: same seed, same bytes; another seed, other bytes and ids");
    CHECK(gen_write_file(&s, b, err, sizeof(err)) == 0, "%s", err);
    size_t alen, blen, clen;
    uint8_t *abytes = slurp(a, &alen), *bbytes = slurp(b, &blen);
    CHECK(alen == blen && memcmp(abytes, bbytes, alen) == 0, "same seed, different files");
    s.seed = 20260102;
    CHECK(gen_write_file(&s, c, err, sizeof(err)) == 0, "%s", err);
    uint8_t *cbytes = slurp(c, &clen);
    CHECK(clen != alen || memcmp(abytes, cbytes, alen) != 0, "another seed, same file");
    r = capture_open(c, err, sizeof(err));
    CHECK(r != NULL, "%s", err);
    rec = capture_next(r, err, sizeof(err));
    CHECK(rec != NULL);
    for (size_t i = 0; i < 5; i++)
        CHECK(strcmp(rec->msg_id, seen[i].msg_id) != 0, "ids of two seeds collide");
    capture_close_reader(r);

    TEST_STEP("bad magic, unknown version and truncation are refused");
    char bad[128];
    path_in(bad, sizeof(bad), "bad.cap");
    uint8_t *copy = malloc(alen);
    CHECK(copy != NULL);
    memcpy(copy, abytes, alen);
    copy[6] = '9'; /* "SKCAPv9\n" */
    spit(bad, copy, alen);
    CHECK(capture_open(bad, err, sizeof(err)) == NULL, "bad magic accepted");
    CHECK(strstr(err, "bad magic") != NULL, "%s", err);
    spit(bad, (const uint8_t *)"hello", 5);
    CHECK(capture_open(bad, err, sizeof(err)) == NULL, "a 5-byte file accepted");

    /* a header claiming version 2 */
    char v2[128];
    path_in(v2, sizeof(v2), "v2.cap");
    CaptureHeader hv2 = SIKKA__CAPTURE__V1__CAPTURE_HEADER__INIT;
    hv2.version = 2;
    hv2.source = "test";
    struct capture_writer *w = capture_create(v2, &hv2, err, sizeof(err));
    CHECK(w != NULL, "%s", err);
    CHECK(capture_close(w) == 0);
    CHECK(capture_open(v2, err, sizeof(err)) == NULL, "version 2 accepted");
    CHECK(strstr(err, "version 2") != NULL, "%s", err);

    /* cut in the middle of the last record: every record before it reads,
     * then the reader reports the damage instead of a clean end */
    char trunc[128];
    path_in(trunc, sizeof(trunc), "trunc.cap");
    spit(trunc, abytes, alen - 7);
    r = capture_open(trunc, err, sizeof(err));
    CHECK(r != NULL, "%s", err);
    size_t got = 0;
    while (capture_next(r, err, sizeof(err)) != NULL)
        got++;
    CHECK_INT(got, s.count - 1);
    CHECK(strstr(err, "truncated") != NULL, "truncation not reported: \"%s\"", err);
    capture_close_reader(r);
    /* cut inside a record header */
    spit(trunc, abytes, 8 + 2);
    r = capture_open(trunc, err, sizeof(err));
    CHECK(r == NULL, "a file cut inside its header frame opened");

    free(copy);
    free(abytes);
    free(bbytes);
    free(cbytes);

    TEST_STEP("scenario options are validated");
    struct scenario bad_s;
    scenario_defaults(&bad_s);
    CHECK(scenario_set_participants(&bad_s, "JAZZ,jazz", err, sizeof(err)) != 0);
    CHECK(strstr(err, "jazz") != NULL, "%s", err);
    CHECK(scenario_set_participants(&bad_s, "JAZZ,JAZZ", err, sizeof(err)) != 0);
    CHECK(scenario_set_participants(&bad_s, "JAZZ,EASY", err, sizeof(err)) == 0, "%s", err);
    CHECK(scenario_validate(&bad_s, err, sizeof(err)) != 0, "BNPL without a lender passed");
    CHECK(strstr(err, "lender") != NULL, "%s", err);
    CHECK(scenario_set_mix(&bad_s, "p2p=1", err, sizeof(err)) == 0, "%s", err);
    CHECK(scenario_validate(&bad_s, err, sizeof(err)) == 0, "%s", err);
    CHECK(scenario_set_mix(&bad_s, "bnpl=1,cash=2", err, sizeof(err)) != 0);
    CHECK(strstr(err, "cash") != NULL, "%s", err);
    struct scenario_range rg;
    CHECK(scenario_parse_range("500:5000", &rg, err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(rg.min, 50000);
    CHECK_INT(rg.max, 500000);
    CHECK(scenario_parse_range("5000:500", &rg, err, sizeof(err)) != 0);
    CHECK(scenario_parse_range("1.5:2", &rg, err, sizeof(err)) == 0 && rg.min == 150);
    CHECK(scenario_parse_range("1e3:2", &rg, err, sizeof(err)) != 0, "no floating point input");
    double p;
    CHECK(scenario_parse_rate("0.02", &p, err, sizeof(err)) == 0 && p == 0.02);
    CHECK(scenario_parse_rate("1.5", &p, err, sizeof(err)) != 0);

    fprintf(stderr, "test_capture: ok\n");
    return 0;
}
