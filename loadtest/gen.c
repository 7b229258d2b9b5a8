#include "gen.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msg.h"

/* A packed transfer is a few hundred bytes at most: every field has a cap. */
#define GEN_FRAME_MAX 1024

/* A transfer kept for later retries: its exact bytes and what the record
 * said about it. */
struct gen_saved {
    uint8_t frame[GEN_FRAME_MAX];
    size_t len;
    char participant[SCENARIO_CODE_LEN + 1];
    char payee[SCENARIO_CODE_LEN + 1];
    char msg_id[MSG_ID_MAX + 1];
    char reason[MSG_REASON_MAX + 1];
    Sikka__Capture__V1__PayeeAction action;
    int64_t amount;
};

struct gen {
    struct scenario s;
    uint64_t rng[4];
    uint64_t made;
    unsigned mix_total;
    int lender;                                /* participant index or -1 */
    int bank;                                  /* participant index or -1 */
    int non_lender[SCENARIO_MAX_PARTICIPANTS]; /* everyone but the lender */
    size_t n_non_lender;
    int sme[SCENARIO_MAX_PARTICIPANTS]; /* everyone but lender and bank */
    size_t n_sme;
    double ln_min[SCENARIO_PURPOSES]; /* log-uniform amount shapes */
    double ln_max[SCENARIO_PURPOSES];
    char seed36[16];

    CaptureHeader header;
    char *scenario_json;
    char *codes[SCENARIO_MAX_PARTICIPANTS];

    CaptureRecord rec; /* what gen_next returns; points into the fields below */
    uint8_t frame[GEN_FRAME_MAX];
    char msg_id[MSG_ID_MAX + 1];
    char participant[SCENARIO_CODE_LEN + 1];
    char payee[SCENARIO_CODE_LEN + 1];
    char reason[MSG_REASON_MAX + 1];
    struct msg_transfer transfer; /* protobuf structs pointing into itself: never moved */

    struct gen_saved saved[GEN_RETRY_WINDOW];
    size_t nsaved;
    size_t saved_next;
};

/* ---- xoshiro256** (Blackman and Vigna), seeded with splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct gen *g)
{
    uint64_t *s = g->rng;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n) (Lemire's multiply; the bias is below 2^-32 for our n). */
static uint64_t rng_below(struct gen *g, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(g) * n) >> 64);
}

/* Uniform in [0, 1). */
static double rng_unit(struct gen *g)
{
    return (double)(rng_next(g) >> 11) * 0x1.0p-53;
}

static int find_code(const struct scenario *s, const char *code)
{
    for (size_t i = 0; i < s->nparticipants; i++)
        if (strcmp(s->participants[i], code) == 0)
            return (int)i;
    return -1;
}

struct gen *gen_new(const struct scenario *s, char *err, size_t errlen)
{
    if (scenario_validate(s, err, errlen) != 0)
        return NULL;
    struct gen *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->s = *s;
    uint64_t x = s->seed;
    for (int i = 0; i < 4; i++)
        g->rng[i] = splitmix64(&x);
    g->mix_total = s->mix[0] + s->mix[1] + s->mix[2];
    g->lender = s->lender[0] != '\0' ? find_code(s, s->lender) : -1;
    g->bank = s->bank[0] != '\0' ? find_code(s, s->bank) : -1;
    for (size_t i = 0; i < s->nparticipants; i++) {
        if ((int)i == g->lender)
            continue;
        g->non_lender[g->n_non_lender++] = (int)i;
        if ((int)i != g->bank)
            g->sme[g->n_sme++] = (int)i;
    }
    for (int p = 0; p < SCENARIO_PURPOSES; p++) {
        g->ln_min[p] = log((double)s->amount[p].min);
        g->ln_max[p] = log((double)s->amount[p].max);
    }
    /* the seed in base 36 starts every msg_id: files of different seeds
     * can be replayed against one database without key clashes */
    char tmp[16];
    size_t n = 0;
    uint64_t v = s->seed;
    do {
        tmp[n++] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[v % 36];
        v /= 36;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        g->seed36[i] = tmp[n - 1 - i];
    g->seed36[n] = '\0';

    g->scenario_json = scenario_to_json(s);
    if (g->scenario_json == NULL) {
        snprintf(err, errlen, "out of memory");
        gen_free(g);
        return NULL;
    }
    for (size_t i = 0; i < s->nparticipants; i++)
        g->codes[i] = g->s.participants[i];
    CaptureHeader h = SIKKA__CAPTURE__V1__CAPTURE_HEADER__INIT;
    h.version = CAPTURE_VERSION;
    h.started_at_ms = s->start_ms;
    h.source = "sikka-replay gen";
    h.scenario = g->scenario_json;
    h.n_participants = s->nparticipants;
    h.participants = g->codes;
    g->header = h;
    return g;
}

void gen_free(struct gen *g)
{
    if (g == NULL)
        return;
    free(g->scenario_json);
    free(g);
}

const CaptureHeader *gen_header(struct gen *g)
{
    return &g->header;
}

/* A customer account of participant p: IBAN-like at the bank, a mobile
 * wallet number elsewhere. */
static void account_of(const struct gen *g, int p, uint64_t a, char *buf, size_t len)
{
    if (p == g->bank)
        snprintf(buf, len, "PK36%s%016" PRIu64, g->s.participants[p], a);
    else
        snprintf(buf, len, "03%02d%07" PRIu64, p % 100, a % 10000000);
}

/* Log-uniform between the range's bounds, in whole rupees. Only the shape
 * of the distribution is drawn in floating point; the amount is int64
 * paisa from the moment it exists. */
static int64_t sample_amount(struct gen *g, enum scenario_purpose p)
{
    const struct scenario_range *r = &g->s.amount[p];
    if (r->min == r->max)
        return r->min;
    double v = exp(g->ln_min[p] + rng_unit(g) * (g->ln_max[p] - g->ln_min[p]));
    int64_t paisa = (int64_t)(v / 100.0) * 100;
    if (paisa < r->min)
        paisa = r->min;
    if (paisa > r->max)
        paisa = r->max;
    return paisa;
}

static enum scenario_purpose pick_purpose(struct gen *g)
{
    uint64_t w = rng_below(g, g->mix_total);
    if (w < g->s.mix[SCENARIO_BNPL])
        return SCENARIO_BNPL;
    if (w < g->s.mix[SCENARIO_BNPL] + g->s.mix[SCENARIO_SUPPLIER])
        return SCENARIO_SUPPLIER;
    return SCENARIO_P2P;
}

/* One of the n indices in list, other than `not`. */
static int pick_other(struct gen *g, const int *list, size_t n, int not )
{
    int idx;
    do {
        idx = list[rng_below(g, n)];
    } while (idx == not &&n > 1);
    return idx;
}

static void fill_record(struct gen *g, int64_t offset_us)
{
    CaptureRecord r = SIKKA__CAPTURE__V1__CAPTURE_RECORD__INIT;
    r.offset_us = offset_us;
    r.participant = g->participant;
    r.msg_id = g->msg_id;
    r.payee = g->payee;
    r.reject_reason = g->reason;
    g->rec = r;
}

static void make_malformed(struct gen *g, int64_t offset_us)
{
    int p = (int)rng_below(g, g->s.nparticipants);
    snprintf(g->participant, sizeof(g->participant), "%s", g->s.participants[p]);
    g->msg_id[0] = g->payee[0] = g->reason[0] = '\0';
    size_t len = 8 + (size_t)rng_below(g, 32);
    /* tag 0x0f: field 1 with wire type 7, which protobuf does not have */
    g->frame[0] = 0x0f;
    for (size_t i = 1; i < len; i++)
        g->frame[i] = (uint8_t)rng_next(g);
    fill_record(g, offset_us);
    g->rec.malformed = true;
    g->rec.frame.data = g->frame;
    g->rec.frame.len = len;
}

static void make_retry(struct gen *g, int64_t offset_us)
{
    const struct gen_saved *sv = &g->saved[rng_below(g, g->nsaved)];
    memcpy(g->frame, sv->frame, sv->len);
    snprintf(g->participant, sizeof(g->participant), "%s", sv->participant);
    snprintf(g->payee, sizeof(g->payee), "%s", sv->payee);
    snprintf(g->msg_id, sizeof(g->msg_id), "%s", sv->msg_id);
    snprintf(g->reason, sizeof(g->reason), "%s", sv->reason);
    fill_record(g, offset_us);
    g->rec.retry = true;
    g->rec.payee_action = sv->action;
    g->rec.amount = sv->amount;
    g->rec.frame.data = g->frame;
    g->rec.frame.len = sv->len;
}

static int make_transfer(struct gen *g, int64_t offset_us)
{
    enum scenario_purpose purpose = pick_purpose(g);
    int payer, payee;
    Sikka__V1__Purpose wire;
    char ref[64];
    const char *refp = NULL;
    uint64_t acct = rng_below(g, g->s.accounts);
    switch (purpose) {
    case SCENARIO_BNPL:
        payer = pick_other(g, g->non_lender, g->n_non_lender, -1);
        payee = g->lender;
        wire = SIKKA__V1__PURPOSE__BNPL_REPAYMENT;
        /* one loan per consumer account; instalments 1..12 */
        snprintf(ref, sizeof(ref), "%s-LN-%07" PRIu64 "/%u", g->s.lender,
                 (uint64_t)payer * g->s.accounts + acct, 1 + (unsigned)rng_below(g, 12));
        refp = ref;
        break;
    case SCENARIO_SUPPLIER:
        if (g->bank >= 0 && (g->n_sme == 0 || rng_below(g, 100) < g->s.bank_share))
            payer = g->bank;
        else
            payer = pick_other(g, g->sme, g->n_sme, -1);
        payee = pick_other(g, g->non_lender, g->n_non_lender, payer);
        wire = SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT;
        snprintf(ref, sizeof(ref), "INV-%s-%08" PRIu64, g->s.participants[payee],
                 rng_below(g, 100000000));
        refp = ref;
        break;
    default:
        payer = pick_other(g, g->non_lender, g->n_non_lender, -1);
        payee = pick_other(g, g->non_lender, g->n_non_lender, payer);
        wire = SIKKA__V1__PURPOSE__P2P;
        break;
    }
    int64_t amount = sample_amount(g, purpose);
    char debtor_account[MSG_ACCOUNT_MAX + 1], creditor_account[MSG_ACCOUNT_MAX + 1];
    char e2e[MSG_ID_MAX + 1], err[256];
    account_of(g, payer, acct, debtor_account, sizeof(debtor_account));
    account_of(g, payee, rng_below(g, g->s.accounts), creditor_account, sizeof(creditor_account));
    snprintf(g->msg_id, sizeof(g->msg_id), "%s-%09" PRIu64, g->seed36, g->made);
    snprintf(e2e, sizeof(e2e), "E%.34s", g->msg_id);
    snprintf(g->participant, sizeof(g->participant), "%s", g->s.participants[payer]);
    snprintf(g->payee, sizeof(g->payee), "%s", g->s.participants[payee]);

    Sikka__Capture__V1__PayeeAction action = SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_ACCEPT;
    g->reason[0] = '\0';
    double roll = rng_unit(g);
    if (roll < g->s.reject_rate) {
        action = SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_REJECT;
        snprintf(g->reason, sizeof(g->reason), "%s", rng_below(g, 2) == 0 ? "AC01" : "AC04");
    } else if (roll < g->s.reject_rate + g->s.ignore_rate) {
        action = SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_IGNORE;
    }

    struct msg_transfer_fields f = {
        .msg_id = g->msg_id,
        .end_to_end_id = e2e,
        .debtor_agent = g->participant,
        .debtor_account = debtor_account,
        .creditor_agent = g->payee,
        .creditor_account = creditor_account,
        .amount = amount,
        .purpose = wire,
        .ref = refp,
        .created_at_ms = g->s.start_ms + offset_us / 1000,
    };
    if (msg_transfer_init(&g->transfer, &f, err, sizeof(err)) != 0) {
        log_error("event=gen_failed record=%" PRIu64 " why=\"%s\"", g->made, err);
        return -1;
    }
    size_t len = protobuf_c_message_get_packed_size(&g->transfer.env.base);
    if (len > sizeof(g->frame)) {
        log_error("event=gen_failed record=%" PRIu64 " why=\"frame of %zu bytes\"", g->made, len);
        return -1;
    }
    protobuf_c_message_pack(&g->transfer.env.base, g->frame);
    fill_record(g, offset_us);
    g->rec.payee_action = action;
    g->rec.amount = amount;
    g->rec.frame.data = g->frame;
    g->rec.frame.len = len;

    struct gen_saved *sv = &g->saved[g->saved_next];
    g->saved_next = (g->saved_next + 1) % GEN_RETRY_WINDOW;
    if (g->nsaved < GEN_RETRY_WINDOW)
        g->nsaved++;
    memcpy(sv->frame, g->frame, len);
    sv->len = len;
    memcpy(sv->participant, g->participant, sizeof(sv->participant));
    memcpy(sv->payee, g->payee, sizeof(sv->payee));
    memcpy(sv->msg_id, g->msg_id, sizeof(sv->msg_id));
    memcpy(sv->reason, g->reason, sizeof(sv->reason));
    sv->action = action;
    sv->amount = amount;
    return 0;
}

const CaptureRecord *gen_next(struct gen *g)
{
    if (g->made >= g->s.count)
        return NULL;
    int64_t offset_us = (int64_t)((double)g->made * 1e6 / g->s.rate);
    double roll = rng_unit(g);
    if (roll < g->s.malformed_rate) {
        make_malformed(g, offset_us);
    } else if (roll < g->s.malformed_rate + g->s.retry_rate && g->nsaved > 0) {
        make_retry(g, offset_us);
    } else if (make_transfer(g, offset_us) != 0) {
        return NULL;
    }
    g->made++;
    return &g->rec;
}

int gen_write_file(const struct scenario *s, const char *path, char *err, size_t errlen)
{
    struct capture_writer *w = NULL;
    struct gen *g = gen_new(s, err, errlen);
    if (g == NULL)
        return -1;
    w = capture_create(path, gen_header(g), err, errlen);
    if (w == NULL)
        goto fail;
    const CaptureRecord *r;
    while ((r = gen_next(g)) != NULL) {
        if (capture_write(w, r) != 0) {
            snprintf(err, errlen, "%s: cannot write record %" PRIu64, path,
                     capture_records_written(w));
            goto fail;
        }
    }
    if (capture_records_written(w) != s->count) {
        snprintf(err, errlen, "generation stopped after %" PRIu64 " of %" PRIu64 " records",
                 capture_records_written(w), s->count);
        goto fail;
    }
    int rc = capture_close(w);
    w = NULL;
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot write the file", path);
        goto fail;
    }
    gen_free(g);
    return 0;
fail:
    if (w != NULL)
        (void)capture_close(w);
    gen_free(g);
    return -1;
}
