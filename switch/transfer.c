#include "transfer.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alias.h"
#include "log.h"
#include "participant.h"

int64_t transfer_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        snprintf(reason, TRANSFER_REASON_MAX + 1, "%s", code);                                     \
        snprintf(text, textlen, __VA_ARGS__);                                                      \
        return -1;                                                                                 \
    } while (0)

/* A peer's string against its rule (text_check), FF01 naming the field. */
#define CHECK_TEXT(field, s, min, max, unit)                                                       \
    do {                                                                                           \
        if (text_check(field, s, min, max, unit, text, textlen) != 0) {                            \
            snprintf(reason, TRANSFER_REASON_MAX + 1, "FF01");                                     \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

/* Checked strings only: they fit their buffers, so nothing is cut. */
#define COPY(dst, src) (void)text_copy_truncated(dst, sizeof(dst), src)

static bool currency_code(const char *s)
{
    if (strlen(s) != TRANSFER_CURRENCY_LEN)
        return false;
    for (int i = 0; i < TRANSFER_CURRENCY_LEN; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return false;
    return true;
}

int transfer_from_credit_transfer(struct transfer *t, const Sikka__V1__CreditTransfer *ct,
                                  const char *sender, char *reason, char *text, size_t textlen)
{
    t->kind = TRANSFER_KIND_TRANSFER;
    CHECK_TEXT("msg_id", ct->msg_id, 1, TRANSFER_ID_MAX, TEXT_BYTES);
    COPY(t->msg_id, ct->msg_id);
    CHECK_TEXT("end_to_end_id", ct->end_to_end_id, 1, TRANSFER_ID_MAX, TEXT_BYTES);
    COPY(t->end_to_end_id, ct->end_to_end_id);
    bool by_alias = ct->creditor_alias[0] != '\0';
    if (!by_alias && participant_code_valid(ct->creditor_agent))
        COPY(t->payee, ct->creditor_agent);
    CHECK_TEXT("debtor_account", ct->debtor_account, 1, TRANSFER_ACCOUNT_MAX, TEXT_BYTES);
    if (by_alias) {
        char canonical[ALIAS_MAX + 1], why[160];
        Sikka__V1__AliasType type;
        CHECK_TEXT("creditor_alias", ct->creditor_alias, 1, ALIAS_TEXT_MAX, TEXT_BYTES);
        if (ct->creditor_agent[0] != '\0' || ct->creditor_account[0] != '\0')
            FAIL("FF01", "creditor_alias replaces creditor_agent and creditor_account: leave "
                         "both empty");
        if (alias_normalize(ct->creditor_alias, SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_UNSPECIFIED,
                            canonical, &type, why, sizeof(why)) != 0)
            FAIL("FF01", "creditor_alias %s", why);
        COPY(t->creditor_alias, canonical);
    } else {
        CHECK_TEXT("creditor_account", ct->creditor_account, 1, TRANSFER_ACCOUNT_MAX, TEXT_BYTES);
    }
    CHECK_TEXT("debtor_name", ct->debtor_name, 0, TRANSFER_TEXT_MAX, TEXT_CHARS);
    CHECK_TEXT("creditor_name", ct->creditor_name, 0, TRANSFER_TEXT_MAX, TEXT_CHARS);
    if (ct->debtor_agent[0] == '\0')
        FAIL("FF01", "debtor_agent is missing");
    if (!participant_code_valid(ct->debtor_agent))
        FAIL("FF01", "debtor_agent must be a 4-letter participant code");
    if (!by_alias && !participant_code_valid(ct->creditor_agent))
        FAIL("FF01", "creditor_agent must be a 4-letter participant code");
    if (ct->transfer_id != 0)
        FAIL("FF01", "transfer_id is assigned by the switch and must be 0");
    COPY(t->debtor_account, ct->debtor_account);
    if (!by_alias)
        COPY(t->creditor_account, ct->creditor_account);
    COPY(t->debtor_name, ct->debtor_name);
    COPY(t->creditor_name, ct->creditor_name);
    /* anything but three letters cannot be the scheme's currency: AM03 later */
    if (currency_code(ct->currency))
        COPY(t->currency, ct->currency);
    t->amount = ct->amount;
    t->created_at_ms = ct->created_at_ms;
    t->request_id = ct->request_id; /* checked against the request by rtp.c */

    if (ct->remittance != NULL) {
        const Sikka__V1__Remittance *r = ct->remittance;
        switch (r->kind_case) {
        case SIKKA__V1__REMITTANCE__KIND_LOAN:
            CHECK_TEXT("loan_id", r->loan->loan_id, 1, TRANSFER_ID_MAX, TEXT_BYTES);
            if (r->loan->instalment == 0 || r->loan->instalment > TRANSFER_INSTALMENT_MAX)
                FAIL("FF01", "instalment must be 1..%d", TRANSFER_INSTALMENT_MAX);
            COPY(t->loan_id, r->loan->loan_id);
            t->instalment = r->loan->instalment;
            break;
        case SIKKA__V1__REMITTANCE__KIND_INVOICE:
            CHECK_TEXT("invoice_number", r->invoice->invoice_number, 1, TRANSFER_ID_MAX,
                       TEXT_BYTES);
            COPY(t->invoice_number, r->invoice->invoice_number);
            break;
        case SIKKA__V1__REMITTANCE__KIND_UNSTRUCTURED:
            CHECK_TEXT("unstructured", r->unstructured, 0, TRANSFER_TEXT_MAX, TEXT_CHARS);
            COPY(t->remittance_text, r->unstructured);
            break;
        default:
            break;
        }
    }
    switch (ct->purpose) {
    case SIKKA__V1__PURPOSE__BNPL_REPAYMENT:
    case SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT:
    case SIKKA__V1__PURPOSE__P2P:
        t->purpose = ct->purpose;
        break;
    default:
        FAIL("FF03", "purpose %d is not BNPL_REPAYMENT, SUPPLIER_PAYMENT or P2P", (int)ct->purpose);
    }
    if (strcmp(ct->debtor_agent, sender) != 0)
        FAIL("RC01", "debtor_agent %s is not this connection's participant %s", ct->debtor_agent,
             sender);
    COPY(t->payer, sender);
    return 0;
}

int64_t transfer_fee(int64_t amount, const struct fee_rule *rule)
{
    if (amount <= 0)
        return 0;
    __int128 f = (__int128)amount * rule->bps / 10000;
    if (f < rule->min_fee)
        f = rule->min_fee;
    if (f > rule->max_fee)
        f = rule->max_fee;
    if (f > amount)
        f = amount;
    return (int64_t)f;
}

int transfer_from_return(struct transfer *t, const Sikka__V1__PaymentReturn *pr, const char *sender,
                         char *reason, char *text, size_t textlen)
{
    t->kind = TRANSFER_KIND_RETURN;
    CHECK_TEXT("msg_id", pr->msg_id, 1, TRANSFER_ID_MAX, TEXT_BYTES);
    COPY(t->msg_id, pr->msg_id);
    if (pr->original_transfer_id == 0)
        FAIL("FF01", "original_transfer_id is missing");
    if (pr->transfer_id != 0 || pr->original_msg_id[0] != '\0')
        FAIL("FF01", "transfer_id and original_msg_id are set by the switch only");
    if (!transfer_reason_valid(pr->reason))
        FAIL("FF01", "reason: a return needs an ISO 20022 reason code (4 letters or digits)");
    CHECK_TEXT("text", pr->text, 0, TRANSFER_TEXT_MAX, TEXT_CHARS);
    /* any uint64: one the ledger cannot hold is answered like an unknown
     * original by the router, never sent to SQL */
    t->original_id = pr->original_transfer_id;
    t->amount = pr->amount;
    COPY(t->return_reason, pr->reason);
    COPY(t->remittance_text, pr->text);
    COPY(t->payer, sender);
    return 0;
}

void transfer_to_wire(const struct transfer *t, uint64_t transfer_id, struct transfer_wire *w)
{
    sikka__v1__envelope__init(&w->env);
    sikka__v1__credit_transfer__init(&w->ct);
    sikka__v1__remittance__init(&w->rmt);
    sikka__v1__loan_instalment__init(&w->loan);
    sikka__v1__invoice__init(&w->invoice);
    Sikka__V1__CreditTransfer *ct = &w->ct;
    /* protobuf-c's char * fields are not const; nothing writes through them */
    ct->msg_id = (char *)t->msg_id;
    ct->end_to_end_id = (char *)t->end_to_end_id;
    ct->debtor_agent = (char *)t->payer;
    ct->debtor_account = (char *)t->debtor_account;
    ct->debtor_name = (char *)t->debtor_name;
    ct->creditor_agent = (char *)t->payee;
    ct->creditor_account = (char *)t->creditor_account;
    ct->creditor_name = (char *)t->creditor_name;
    ct->amount = t->amount;
    ct->currency = (char *)t->currency;
    ct->purpose = t->purpose;
    ct->transfer_id = transfer_id;
    ct->created_at_ms = t->created_at_ms;
    ct->request_id = t->request_id;
    if (t->loan_id[0] != '\0') {
        w->loan.loan_id = (char *)t->loan_id;
        w->loan.instalment = t->instalment;
        w->rmt.kind_case = SIKKA__V1__REMITTANCE__KIND_LOAN;
        w->rmt.loan = &w->loan;
        ct->remittance = &w->rmt;
    } else if (t->invoice_number[0] != '\0') {
        w->invoice.invoice_number = (char *)t->invoice_number;
        w->rmt.kind_case = SIKKA__V1__REMITTANCE__KIND_INVOICE;
        w->rmt.invoice = &w->invoice;
        ct->remittance = &w->rmt;
    } else if (t->remittance_text[0] != '\0') {
        w->rmt.kind_case = SIKKA__V1__REMITTANCE__KIND_UNSTRUCTURED;
        w->rmt.unstructured = (char *)t->remittance_text;
        ct->remittance = &w->rmt;
    }
    w->env.body_case = SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER;
    w->env.credit_transfer = ct;
}

static EVP_MD *sha256;

static void put_bytes(EVP_MD_CTX *ctx, const void *p, size_t n)
{
    unsigned char len[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    EVP_DigestUpdate(ctx, len, sizeof(len));
    EVP_DigestUpdate(ctx, p, n);
}

static void put_str(EVP_MD_CTX *ctx, const char *s)
{
    put_bytes(ctx, s, strlen(s));
}

static void put_i64(EVP_MD_CTX *ctx, int64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
    put_bytes(ctx, b, sizeof(b));
}

void transfer_fingerprint(const struct transfer *t, uint8_t out[TRANSFER_FP_LEN])
{
    static EVP_MD_CTX *ctx;
    if (sha256 == NULL)
        sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (ctx == NULL)
        ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    if (sha256 == NULL || ctx == NULL || EVP_DigestInit_ex(ctx, sha256, NULL) != 1) {
        /* cannot happen with a working libcrypto; fail closed: a fingerprint
         * of zeros never matches a real one */
        char qm[96];
        log_error("event=fingerprint_failed msg_id=%s", log_quote(t->msg_id, qm, sizeof(qm)));
        memset(out, 0, TRANSFER_FP_LEN);
        return;
    }
    put_str(ctx, "sikka.v1.fp1");
    put_i64(ctx, t->kind);
    put_str(ctx, t->end_to_end_id);
    put_str(ctx, t->payer);
    put_str(ctx, t->debtor_account);
    put_str(ctx, t->payee);
    put_str(ctx, t->creditor_account);
    put_i64(ctx, t->amount);
    put_str(ctx, t->currency);
    put_i64(ctx, t->purpose);
    put_str(ctx, t->loan_id);
    put_i64(ctx, t->instalment);
    put_str(ctx, t->invoice_number);
    put_str(ctx, t->remittance_text);
    put_i64(ctx, (int64_t)t->original_id);
    put_str(ctx, t->return_reason);
    /* only when set: a transfer without an alias keeps the fingerprint it
     * had before aliases existed (keys stored earlier still match) */
    if (t->creditor_alias[0] != '\0') {
        put_str(ctx, "creditor_alias");
        put_str(ctx, t->creditor_alias);
    }
    if (t->request_id != 0) /* only then: older fingerprints stay as they were */
        put_i64(ctx, (int64_t)t->request_id);
    EVP_DigestFinal_ex(ctx, out, &n);
}

const char *transfer_purpose_name(Sikka__V1__Purpose p)
{
    switch (p) {
    case SIKKA__V1__PURPOSE__BNPL_REPAYMENT:
        return "BNPL_REPAYMENT";
    case SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT:
        return "SUPPLIER_PAYMENT";
    case SIKKA__V1__PURPOSE__P2P:
        return "P2P";
    default:
        return "";
    }
}

int transfer_parse_purpose(const char *name, Sikka__V1__Purpose *out)
{
    static const Sikka__V1__Purpose all[] = {SIKKA__V1__PURPOSE__BNPL_REPAYMENT,
                                             SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT,
                                             SIKKA__V1__PURPOSE__P2P};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(name, transfer_purpose_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

const char *transfer_status_name(enum transfer_status s)
{
    switch (s) {
    case TRANSFER_ACSC:
        return "ACSC";
    case TRANSFER_RJCT:
        return "RJCT";
    default:
        return "PDNG";
    }
}

const char *transfer_state_name(enum transfer_state s)
{
    static const char *const names[] = {"new", "awaiting_payee", "posting", "done"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

void transfer_vset_reason(struct transfer *t, const char *reason, const char *fmt, va_list ap)
{
    char buf[TRANSFER_TEXT_BYTES + 128];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    /* a cut by vsnprintf may end in half a character: the copy drops it */
    (void)text_copy_truncated(t->reason_text, sizeof(t->reason_text), buf);
    text_limit_chars(t->reason_text, TRANSFER_TEXT_MAX);
    (void)text_copy_truncated(t->reason, sizeof(t->reason), reason);
}

void transfer_set_reason(struct transfer *t, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    transfer_vset_reason(t, reason, fmt, ap);
    va_end(ap);
}

bool transfer_reason_valid(const char *code)
{
    if (code == NULL || strlen(code) != 4)
        return false;
    for (int i = 0; i < 4; i++)
        if (!((code[i] >= 'A' && code[i] <= 'Z') || (code[i] >= '0' && code[i] <= '9')))
            return false;
    return true;
}

int transfer_check_decision(const Sikka__V1__PayeeDecision *d, char *text, size_t textlen)
{
    if (d->reason[0] != '\0' && !transfer_reason_valid(d->reason)) {
        snprintf(text, textlen, "reason must be an ISO 20022 reason code (4 letters or digits)");
        return -1;
    }
    return text_check("text", d->text, 0, TRANSFER_TEXT_MAX, TEXT_CHARS, text, textlen);
}

int transfer_check_query(const Sikka__V1__StatusQuery *q, char *text, size_t textlen)
{
    if (text_check("query_id", q->query_id, 0, TRANSFER_ID_MAX, TEXT_BYTES, text, textlen) != 0 ||
        text_check("msg_id", q->msg_id, 0, TRANSFER_ID_MAX, TEXT_BYTES, text, textlen) != 0)
        return -1;
    if ((q->msg_id[0] == '\0') == (q->transfer_id == 0)) {
        snprintf(text, textlen, "a status query names exactly one of msg_id or transfer_id");
        return -1;
    }
    return 0;
}
