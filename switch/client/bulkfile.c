#include "bulkfile.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "money.h"
#include "text.h"

#define BULKFILE_COLUMNS 5
static const char *const columns[BULKFILE_COLUMNS] = {"to", "amount", "purpose", "ref", "msg_id"};

/* ---- the CSV reader ---- */

struct csv {
    const char *p;
    size_t len, pos;
    unsigned line;
};

struct csv_record {
    unsigned line;
    size_t n;
    char field[BULKFILE_COLUMNS][BULKFILE_FIELD_MAX + 1];
};

static int put(struct csv_record *rec, size_t *used, char c, unsigned line, char *err,
               size_t errlen)
{
    if (rec->n < BULKFILE_COLUMNS) {
        if (*used >= BULKFILE_FIELD_MAX) {
            snprintf(err, errlen, "line %u: column %s is longer than %d bytes", line,
                     columns[rec->n], BULKFILE_FIELD_MAX);
            return -1;
        }
        rec->field[rec->n][(*used)++] = c;
    }
    return 0;
}

/* One record. 1: read one; 0: end of input; -1: error (err says where). */
static int csv_record(struct csv *c, struct csv_record *rec, char *err, size_t errlen)
{
    if (c->pos >= c->len)
        return 0;
    memset(rec, 0, sizeof(*rec));
    rec->line = c->line;
    for (;;) {
        size_t used = 0;
        if (c->pos < c->len && c->p[c->pos] == '"') {
            unsigned opened = c->line;
            c->pos++;
            for (;;) {
                if (c->pos >= c->len) {
                    snprintf(err, errlen, "line %u: quoted field opened on line %u is not closed",
                             c->line, opened);
                    return -1;
                }
                char ch = c->p[c->pos];
                if (ch == '"') {
                    if (c->pos + 1 < c->len && c->p[c->pos + 1] == '"') {
                        if (put(rec, &used, '"', c->line, err, errlen) != 0)
                            return -1;
                        c->pos += 2;
                        continue;
                    }
                    c->pos++;
                    break;
                }
                if (ch == '\n')
                    c->line++;
                if (put(rec, &used, ch, c->line, err, errlen) != 0)
                    return -1;
                c->pos++;
            }
            if (c->pos < c->len && c->p[c->pos] != ',' && c->p[c->pos] != '\n' &&
                !(c->p[c->pos] == '\r' && c->pos + 1 < c->len && c->p[c->pos + 1] == '\n')) {
                snprintf(err, errlen, "line %u: text after a closing quote", c->line);
                return -1;
            }
        } else {
            while (c->pos < c->len) {
                char ch = c->p[c->pos];
                if (ch == ',' || ch == '\n' || ch == '\r')
                    break;
                if (ch == '"') {
                    snprintf(err, errlen,
                             "line %u: a quote inside an unquoted field (quote the whole field "
                             "and double the quote)",
                             c->line);
                    return -1;
                }
                if (put(rec, &used, ch, c->line, err, errlen) != 0)
                    return -1;
                c->pos++;
            }
        }
        if (memchr(rec->n < BULKFILE_COLUMNS ? rec->field[rec->n] : "", '\0', used) != NULL) {
            snprintf(err, errlen, "line %u: column %s holds a NUL byte", rec->line,
                     columns[rec->n]);
            return -1;
        }
        rec->n++;
        if (c->pos >= c->len)
            return 1;
        char ch = c->p[c->pos];
        if (ch == ',') {
            c->pos++;
            continue;
        }
        if (ch == '\r') {
            if (c->pos + 1 >= c->len || c->p[c->pos + 1] != '\n') {
                snprintf(err, errlen, "line %u: a carriage return not followed by a line feed",
                         c->line);
                return -1;
            }
            c->pos++;
        }
        c->pos++; /* '\n' */
        c->line++;
        return 1;
    }
}

static bool record_empty(const struct csv_record *rec)
{
    return rec->n == 1 && rec->field[0][0] == '\0';
}

/* ---- checking a record ---- */

int bulkfile_payee(const char *to, struct bulkfile_row *row, char *err, size_t errlen)
{
    if (strchr(to, '@') == NULL) {
        /* an alias: a mobile number or CNIC, digits with an optional '+';
         * its exact form is the switch's to judge, item by item */
        size_t n = strlen(to), plus = to[0] == '+';
        if (n <= plus || n > MSG_ALIAS_MAX || strspn(to + plus, "0123456789") != n - plus) {
            snprintf(err, errlen, "\"%.64s\" must be ACCOUNT@CODE or an alias (a mobile number)",
                     to);
            return -1;
        }
        memcpy(row->creditor_alias, to, n + 1);
        return 0;
    }
    return msg_parse_party(to, row->creditor_account, sizeof(row->creditor_account),
                           row->creditor_agent, sizeof(row->creditor_agent), err, errlen);
}

static int check_record(const struct csv_record *rec, struct bulkfile_row *row, char *err,
                        size_t errlen)
{
    char why[400];
    memset(row, 0, sizeof(*row));
    row->line = rec->line;
    if (rec->n != BULKFILE_COLUMNS) {
        snprintf(err, errlen, "line %u: %zu fields, expected %d (to,amount,purpose,ref,msg_id)",
                 rec->line, rec->n, BULKFILE_COLUMNS);
        return -1;
    }
    for (int i = 0; i < BULKFILE_COLUMNS; i++) {
        if (text_check(columns[i], rec->field[i], 0, BULKFILE_FIELD_MAX, TEXT_BYTES, why,
                       sizeof(why)) != 0) {
            snprintf(err, errlen, "line %u: %s", rec->line, why);
            return -1;
        }
    }
    if (bulkfile_payee(rec->field[0], row, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "line %u: to: %s", rec->line, why);
        return -1;
    }
    if (money_parse(rec->field[1], &row->amount, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "line %u: %s", rec->line, why); /* "amount ..." */
        return -1;
    }
    if (row->amount <= 0) {
        snprintf(err, errlen, "line %u: amount: must be more than 0", rec->line);
        return -1;
    }
    if (msg_parse_purpose(rec->field[2], &row->purpose) != 0) {
        snprintf(err, errlen,
                 "line %u: purpose: \"%s\" must be BNPL_REPAYMENT, SUPPLIER_PAYMENT or P2P",
                 rec->line, rec->field[2]);
        return -1;
    }
    if (rec->field[3][0] != '\0') {
        struct msg_remittance rem;
        if (msg_remittance_init(&rem, row->purpose, rec->field[3], why, sizeof(why)) != 0) {
            snprintf(err, errlen, "line %u: ref: %s", rec->line, why);
            return -1;
        }
        if (strlen(rec->field[3]) >= sizeof(row->ref)) {
            snprintf(err, errlen, "line %u: ref: at most %d bytes", rec->line, MSG_TEXT_MAX);
            return -1;
        }
        memcpy(row->ref, rec->field[3], strlen(rec->field[3]) + 1);
    }
    if (rec->field[4][0] != '\0') {
        if (text_check("msg_id", rec->field[4], 1, MSG_ID_MAX, TEXT_BYTES, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "line %u: %s", rec->line, why);
            return -1;
        }
        memcpy(row->msg_id, rec->field[4], strlen(rec->field[4]) + 1); /* checked: it fits */
    }
    return 0;
}

int bulkfile_parse(const char *data, size_t len, struct bulkfile *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct csv c = {data, len, 0, 1};
    struct csv_record *rec = malloc(sizeof(*rec));
    size_t cap = 0;
    if (rec == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        c.pos = 3; /* a byte order mark */
    int r = csv_record(&c, rec, err, errlen);
    if (r < 0)
        goto fail;
    if (r == 0) {
        snprintf(err, errlen,
                 "the file is empty: it needs the header to,amount,purpose,ref,msg_id");
        goto fail;
    }
    bool header = rec->n == BULKFILE_COLUMNS;
    for (int i = 0; header && i < BULKFILE_COLUMNS; i++)
        header = strcmp(rec->field[i], columns[i]) == 0;
    if (!header) {
        snprintf(err, errlen, "line 1: the header must be to,amount,purpose,ref,msg_id");
        goto fail;
    }
    while ((r = csv_record(&c, rec, err, errlen)) > 0) {
        if (record_empty(rec))
            continue;
        if (out->n == BULKFILE_MAX_ITEMS) {
            snprintf(err, errlen, "line %u: more than %d payments in one batch", rec->line,
                     BULKFILE_MAX_ITEMS);
            goto fail;
        }
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct bulkfile_row *nr = realloc(out->rows, ncap * sizeof(*nr));
            if (nr == NULL) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            out->rows = nr;
            cap = ncap;
        }
        struct bulkfile_row *row = &out->rows[out->n];
        if (check_record(rec, row, err, errlen) != 0)
            goto fail;
        for (size_t i = 0; row->msg_id[0] != '\0' && i < out->n; i++) {
            if (strcmp(out->rows[i].msg_id, row->msg_id) == 0) {
                snprintf(err, errlen, "line %u: msg_id \"%s\" is already used on line %u",
                         row->line, row->msg_id, out->rows[i].line);
                goto fail;
            }
        }
        out->n++;
    }
    if (r < 0)
        goto fail;
    if (out->n == 0) {
        snprintf(err, errlen, "no payments after the header");
        goto fail;
    }
    free(rec);
    return 0;
fail:
    free(rec);
    bulkfile_free(out);
    return -1;
}

int bulkfile_read(const char *path, struct bulkfile *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(BULKFILE_MAX_BYTES + 1);
    size_t n = buf != NULL ? fread(buf, 1, BULKFILE_MAX_BYTES + 1, fp) : 0;
    int rc = -1;
    if (buf == NULL)
        snprintf(err, errlen, "out of memory");
    else if (ferror(fp))
        snprintf(err, errlen, "cannot read %s", path);
    else if (n > BULKFILE_MAX_BYTES)
        snprintf(err, errlen, "%s is larger than %d bytes", path, BULKFILE_MAX_BYTES);
    else
        rc = bulkfile_parse(buf, n, out, err, errlen);
    free(buf);
    fclose(fp);
    return rc;
}

void bulkfile_free(struct bulkfile *f)
{
    free(f->rows);
    f->rows = NULL;
    f->n = 0;
}

/* ---- the batch ---- */

static int derive_batch_id(const struct bulkfile *f, const char *payer, const char *from, char *out,
                           size_t len)
{
    unsigned char md[32];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return -1;
    }
    EVP_DigestUpdate(ctx, payer, strlen(payer) + 1);
    EVP_DigestUpdate(ctx, from, strlen(from) + 1);
    for (size_t i = 0; i < f->n; i++) {
        const struct bulkfile_row *r = &f->rows[i];
        char line[MSG_ACCOUNT_MAX + MSG_ALIAS_MAX + MSG_TEXT_MAX + MSG_ID_MAX + 64];
        int k = snprintf(line, sizeof(line), "%s@%s%s|%" PRId64 "|%d|%s|%s", r->creditor_account,
                         r->creditor_agent, r->creditor_alias, r->amount, (int)r->purpose, r->ref,
                         r->msg_id);
        EVP_DigestUpdate(ctx, line, (size_t)k + 1);
    }
    unsigned int mdlen = 0;
    int ok = EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (ok != 1 || len < BULKFILE_BATCH_ID_LEN + 1)
        return -1;
    out[0] = 'B';
    for (int i = 0; i < (BULKFILE_BATCH_ID_LEN - 1) / 2; i++)
        snprintf(out + 1 + 2 * i, 3, "%02X", md[i]);
    out[BULKFILE_BATCH_ID_LEN] = '\0';
    return 0;
}

int bulkfile_batch(struct bulkfile_batch *b, struct bulkfile *f, const char *payer,
                   const char *from, const char *batch_id, char *err, size_t errlen)
{
    memset(b, 0, sizeof(*b));
    if (batch_id != NULL) {
        if (text_check("batch id", batch_id, 1, MSG_ID_MAX, TEXT_BYTES, err, errlen) != 0)
            return -1;
        snprintf(b->batch_id, sizeof(b->batch_id), "%s", batch_id);
    } else if (derive_batch_id(f, payer, from, b->batch_id, sizeof(b->batch_id)) != 0) {
        snprintf(err, errlen, "cannot make a batch id");
        return -1;
    }
    b->items = calloc(f->n, sizeof(*b->items));
    b->ptrs = calloc(f->n, sizeof(*b->ptrs));
    if (b->items == NULL || b->ptrs == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < f->n; i++) {
        struct bulkfile_row *r = &f->rows[i];
        if (r->msg_id[0] == '\0' && (size_t)snprintf(r->msg_id, sizeof(r->msg_id), "%.27s-%zu",
                                                     b->batch_id, i + 1) >= sizeof(r->msg_id)) {
            snprintf(err, errlen,
                     "line %u: the batch id is too long to make msg_ids from; give "
                     "every msg_id or a shorter batch id",
                     r->line);
            goto fail;
        }
        struct msg_transfer_fields fields = {
            .msg_id = r->msg_id,
            .debtor_agent = payer,
            .debtor_account = from,
            .creditor_agent = r->creditor_agent,
            .creditor_account = r->creditor_account,
            .creditor_alias = r->creditor_alias[0] != '\0' ? r->creditor_alias : NULL,
            .amount = r->amount,
            .purpose = r->purpose,
            .ref = r->ref,
        };
        char why[400];
        if (msg_transfer_init(&b->items[i], &fields, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "line %u: %s", r->line, why);
            goto fail;
        }
        b->ptrs[i] = &b->items[i].ct;
    }
    b->n = f->n;
    sikka__v1__bulk_credit_transfer__init(&b->bulk);
    b->bulk.batch_id = b->batch_id;
    b->bulk.items = b->ptrs;
    b->bulk.n_items = f->n;
    sikka__v1__envelope__init(&b->env);
    b->env.body_case = SIKKA__V1__ENVELOPE__BODY_BULK_CREDIT_TRANSFER;
    b->env.bulk_credit_transfer = &b->bulk;
    return 0;
fail:
    bulkfile_batch_free(b);
    return -1;
}

void bulkfile_batch_free(struct bulkfile_batch *b)
{
    free(b->items);
    free(b->ptrs);
    b->items = NULL;
    b->ptrs = NULL;
    b->n = 0;
}

/* ---- the answers ---- */

int bulkfile_run_init(struct bulkfile_run *r, const char *batch_id, size_t n)
{
    memset(r, 0, sizeof(*r));
    r->batch_id = batch_id;
    r->n = n;
    r->results = calloc(n ? n : 1, sizeof(*r->results));
    return r->results != NULL ? 0 : -1;
}

void bulkfile_run_free(struct bulkfile_run *r)
{
    free(r->results);
    r->results = NULL;
}

static bool all_answered(const struct bulkfile_run *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (!r->results[i].have)
            return false;
    return true;
}

enum bulkfile_take bulkfile_take(struct bulkfile_run *r, const Envelope *env)
{
    if (env->body_case == SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT) {
        const Sikka__V1__MessageReject *mr = env->message_reject;
        /* an empty ref: the switch could not read the frame at all */
        if (mr->ref_msg_id[0] != '\0' && strcmp(mr->ref_msg_id, r->batch_id) != 0)
            return BULKFILE_NOT_OURS;
        if (mr->ref_transfer_id != 0)
            return BULKFILE_NOT_OURS;
        r->refused = true;
        r->retry = mr->retry;
        snprintf(r->reason, sizeof(r->reason), "%s", mr->reason[0] ? mr->reason : "NARR");
        cli_one_line(mr->text, r->text, sizeof(r->text));
        return BULKFILE_DONE;
    }
    if (env->body_case != SIKKA__V1__ENVELOPE__BODY_BULK_REPORT)
        return BULKFILE_NOT_OURS;
    const Sikka__V1__BulkReport *br = env->bulk_report;
    if (br->reason[0] != '\0') {
        /* the whole batch refused; an FF01 batch_id is not echoed */
        if (br->batch_id[0] != '\0' && strcmp(br->batch_id, r->batch_id) != 0)
            return BULKFILE_NOT_OURS;
        r->refused = true;
        r->retry = br->retry;
        snprintf(r->reason, sizeof(r->reason), "%s", br->reason);
        cli_one_line(br->text, r->text, sizeof(r->text));
        return BULKFILE_DONE;
    }
    if (strcmp(br->batch_id, r->batch_id) != 0)
        return BULKFILE_NOT_OURS;
    for (size_t k = 0; k < br->n_results; k++) {
        const Sikka__V1__BulkItemResult *it = br->results[k];
        if (it->index >= r->n)
            continue;
        struct bulkfile_result *res = &r->results[it->index];
        memset(res, 0, sizeof(*res));
        res->have = true;
        res->retry = it->retry;
        const Sikka__V1__StatusReport *sr = it->report;
        if (sr == NULL) {
            res->retry = true;
            snprintf(res->reason, sizeof(res->reason), "NARR");
            snprintf(res->text, sizeof(res->text), "no answer for this item; send the batch again");
            continue;
        }
        res->acsc = sr->status == SIKKA__V1__TX_STATUS__ACSC && !it->retry;
        res->transfer_id = sr->transfer_id;
        res->amount = sr->amount;
        res->fee = sr->fee;
        snprintf(res->reason, sizeof(res->reason), "%s", sr->reason[0] ? sr->reason : "NARR");
        const char *why = sr->text[0] ? sr->text : msg_reason_text(res->reason);
        cli_one_line(why, res->text, sizeof(res->text));
    }
    return br->last || all_answered(r) ? BULKFILE_DONE : BULKFILE_MORE;
}

size_t bulkfile_retryable(const struct bulkfile_run *r)
{
    if (r->refused)
        return r->retry ? r->n : 0;
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        k += r->results[i].retry || !r->results[i].have;
    return k;
}

int bulkfile_print(FILE *out, const struct bulkfile *f, const struct bulkfile_run *r)
{
    size_t acsc = 0, rjct = 0, later = 0;
    int64_t settled = 0, fees = 0;
    for (size_t i = 0; i < f->n && i < r->n; i++) {
        const struct bulkfile_result *res = &r->results[i];
        unsigned line = f->rows[i].line;
        if (r->refused) {
            fprintf(out, "%u RJCT %s%s%s\n", line, r->reason, r->text[0] ? " " : "", r->text);
            if (r->retry)
                later++;
            else
                rjct++;
        } else if (!res->have) {
            fprintf(out, "%u RJCT NARR no answer from the switch; run the same file again\n", line);
            later++;
        } else if (res->acsc) {
            fprintf(out, "%u ACSC %" PRIu64 "\n", line, res->transfer_id);
            acsc++;
            if (__builtin_add_overflow(settled, res->amount, &settled) ||
                __builtin_add_overflow(fees, res->fee, &fees))
                settled = fees = 0; /* cannot happen within 1000 scheme-limited items */
        } else {
            fprintf(out, "%u RJCT %s%s%s\n", line, res->reason, res->text[0] ? " " : "", res->text);
            if (res->retry)
                later++;
            else
                rjct++;
        }
    }
    char a[MSG_AMOUNT_MAX], b[MSG_AMOUNT_MAX];
    fprintf(out,
            "SUMMARY items=%zu acsc=%zu rjct=%zu not_processed=%zu settled=%s fees=%s batch=%s\n",
            f->n, acsc, rjct, later, money_format(settled, a, sizeof(a)),
            money_format(fees, b, sizeof(b)), r->batch_id);
    fflush(out);
    return acsc == f->n ? 0 : 1;
}
