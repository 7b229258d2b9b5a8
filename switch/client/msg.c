#include "msg.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "transfer.h"

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

int msg_parse_purpose(const char *name, Sikka__V1__Purpose *out)
{
    const ProtobufCEnumDescriptor *d = &sikka__v1__purpose__descriptor;
    if (name == NULL)
        return -1;
    for (unsigned i = 0; i < d->n_values; i++) {
        if (d->values[i].value == SIKKA__V1__PURPOSE__PURPOSE_UNSPECIFIED)
            continue;
        if (strcasecmp(d->values[i].name, name) == 0) {
            *out = (Sikka__V1__Purpose)d->values[i].value;
            return 0;
        }
    }
    return -1;
}

const char *msg_purpose_name(Sikka__V1__Purpose purpose)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&sikka__v1__purpose__descriptor, (int)purpose);
    return v != NULL ? v->name : "UNKNOWN";
}

bool msg_valid_account(const char *account)
{
    size_t n = account != NULL ? strlen(account) : 0;
    if (n == 0 || n > MSG_ACCOUNT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)account[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '@')
            return false;
    }
    return true;
}

bool msg_valid_agent(const char *code)
{
    if (code == NULL || strlen(code) != MSG_AGENT_LEN)
        return false;
    for (size_t i = 0; i < MSG_AGENT_LEN; i++) {
        if (code[i] < 'A' || code[i] > 'Z')
            return false;
    }
    return true;
}

bool msg_valid_reason(const char *code)
{
    return transfer_reason_valid(code); /* the switch's own rule */
}

int msg_parse_party(const char *text, char *account, size_t account_len, char *agent,
                    size_t agent_len, char *err, size_t errlen)
{
    const char *at = text != NULL ? strrchr(text, '@') : NULL;
    if (at == NULL) {
        snprintf(err, errlen, "party \"%s\" must be ACCOUNT@CODE (e.g. 03001234567@KOKO)",
                 text != NULL ? text : "");
        return -1;
    }
    size_t alen = (size_t)(at - text);
    if (alen == 0 || alen > MSG_ACCOUNT_MAX || alen >= account_len) {
        snprintf(err, errlen, "party \"%s\": account must be 1..%d characters", text,
                 MSG_ACCOUNT_MAX);
        return -1;
    }
    if (!msg_valid_agent(at + 1) || agent_len <= MSG_AGENT_LEN) {
        snprintf(err, errlen, "party \"%s\": participant code \"%s\" must be %d uppercase letters",
                 text, at + 1, MSG_AGENT_LEN);
        return -1;
    }
    memcpy(account, text, alen);
    account[alen] = '\0';
    if (!msg_valid_account(account)) {
        snprintf(err, errlen,
                 "party \"%s\": account may hold only printable characters without spaces", text);
        return -1;
    }
    memcpy(agent, at + 1, MSG_AGENT_LEN + 1);
    return 0;
}

struct reason_entry {
    const char *code;
    const char *text;
};

static const struct reason_entry reason_table[] = {
    {"AB05", "timeout at creditor agent"},
    {"AB08", "creditor agent offline"},
    {"AC01", "incorrect account number"},
    {"AC04", "closed account"},
    {"AC06", "blocked account"},
    {"AG01", "transaction forbidden"},
    {"AG10", "debtor agent suspended"},
    {"AG11", "creditor agent suspended"},
    {"AG13", "return not allowed"},
    {"AM02", "amount not allowed"},
    {"AM03", "currency not allowed"},
    {"AM05", "duplication"},
    {"AM09", "wrong amount"},
    {"AM23", "amount exceeds settlement limit (net debit cap)"},
    {"BE23", "account proxy invalid (no account registered for the alias)"},
    {"DUPL", "duplicate (alias registered already)"},
    {"FF01", "invalid format"},
    {"FF03", "invalid payment type or purpose"},
    {"RC01", "bank identifier incorrect (debtor agent is not the certificate's participant)"},
    {"RC04", "creditor bank identifier incorrect (not a participant)"},
    {"RC07", "creditor agent unknown"},
    {"NARR", "see text"},
    {"MS03", "reason not specified"},
};

const char *msg_reason_text(const char *code)
{
    if (code == NULL)
        return "";
    for (size_t i = 0; i < sizeof(reason_table) / sizeof(reason_table[0]); i++) {
        if (strcmp(reason_table[i].code, code) == 0)
            return reason_table[i].text;
    }
    return "";
}

int64_t msg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int msg_new_msg_id(char *buf, size_t len)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; /* Crockford */
    if (len < MSG_ID_LEN + 1) {
        log_error("event=msg_id_failed why=\"buffer of %zu bytes, need %d\"", len, MSG_ID_LEN + 1);
        return -1;
    }
    unsigned char rnd[10];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        log_error("event=msg_id_failed why=\"RAND_bytes failed\"");
        return -1;
    }
    uint64_t ms = (uint64_t)msg_now_ms() & ((UINT64_C(1) << 48) - 1);
    /* 10 characters of time (50 bits, the top two zero) ... */
    for (int i = 9; i >= 0; i--) {
        buf[i] = alphabet[ms & 31];
        ms >>= 5;
    }
    /* ... then the 80 random bits, five at a time */
    for (int i = 0; i < 16; i++) {
        int bit = i * 5;
        unsigned v = ((unsigned)rnd[bit / 8] << 8) | (bit / 8 + 1 < 10 ? rnd[bit / 8 + 1] : 0);
        buf[10 + i] = alphabet[(v >> (11 - bit % 8)) & 31];
    }
    buf[MSG_ID_LEN] = '\0';
    return 0;
}

/* Copies src (1..max bytes, no control characters) into dst of max+1 bytes. */
static int copy_text(char *dst, const char *src, size_t max, const char *what, char *err,
                     size_t errlen)
{
    size_t n = src != NULL ? strlen(src) : 0;
    if (n == 0 || n > max) {
        snprintf(err, errlen, "%s must be 1..%zu bytes (got %zu)", what, max, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)src[i] < ' ' || src[i] == 0x7f) {
            snprintf(err, errlen, "%s must not contain control characters", what);
            return -1;
        }
    }
    memcpy(dst, src, n + 1);
    return 0;
}

static int parse_instalment(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (!is_digit(*s))
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return -1;
    }
    if (v == 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int msg_remittance_init(struct msg_remittance *r, Sikka__V1__Purpose purpose, const char *ref,
                        char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    sikka__v1__remittance__init(&r->remittance);
    sikka__v1__loan_instalment__init(&r->loan);
    sikka__v1__invoice__init(&r->invoice);
    switch (purpose) {
    case SIKKA__V1__PURPOSE__BNPL_REPAYMENT: {
        const char *slash = ref != NULL ? strrchr(ref, '/') : NULL;
        uint32_t n = 0;
        if (slash == NULL || parse_instalment(slash + 1, &n) != 0) {
            snprintf(err, errlen,
                     "BNPL_REPAYMENT reference \"%s\" must be LOANID/N with instalment N >= 1",
                     ref != NULL ? ref : "");
            return -1;
        }
        size_t idlen = (size_t)(slash - ref);
        if (idlen == 0 || idlen > MSG_ID_MAX) {
            snprintf(err, errlen, "loan id in \"%s\" must be 1..%d bytes", ref, MSG_ID_MAX);
            return -1;
        }
        char id[MSG_ID_MAX + 1];
        memcpy(id, ref, idlen);
        id[idlen] = '\0';
        if (copy_text(r->text, id, MSG_ID_MAX, "loan id", err, errlen) != 0)
            return -1;
        r->loan.loan_id = r->text;
        r->loan.instalment = n;
        r->remittance.kind_case = SIKKA__V1__REMITTANCE__KIND_LOAN;
        r->remittance.loan = &r->loan;
        return 0;
    }
    case SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT:
        if (copy_text(r->text, ref, MSG_ID_MAX, "invoice number", err, errlen) != 0)
            return -1;
        r->invoice.invoice_number = r->text;
        r->remittance.kind_case = SIKKA__V1__REMITTANCE__KIND_INVOICE;
        r->remittance.invoice = &r->invoice;
        return 0;
    default:
        if (copy_text(r->text, ref, MSG_TEXT_MAX, "remittance text", err, errlen) != 0)
            return -1;
        r->remittance.kind_case = SIKKA__V1__REMITTANCE__KIND_UNSTRUCTURED;
        r->remittance.unstructured = r->text;
        return 0;
    }
}

static bool is_empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

int msg_transfer_init(struct msg_transfer *t, const struct msg_transfer_fields *f, char *err,
                      size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (copy_text(t->msg_id, f->msg_id, MSG_ID_MAX, "msg_id", err, errlen) != 0)
        return -1;
    const char *e2e = is_empty(f->end_to_end_id) ? f->msg_id : f->end_to_end_id;
    if (copy_text(t->end_to_end_id, e2e, MSG_ID_MAX, "end_to_end_id", err, errlen) != 0)
        return -1;
    if (!msg_valid_agent(f->debtor_agent)) {
        snprintf(err, errlen, "debtor agent \"%s\" must be %d uppercase letters",
                 f->debtor_agent != NULL ? f->debtor_agent : "", MSG_AGENT_LEN);
        return -1;
    }
    bool by_alias = !is_empty(f->creditor_alias);
    if (by_alias && (!is_empty(f->creditor_agent) || !is_empty(f->creditor_account))) {
        snprintf(err, errlen, "a creditor alias replaces the creditor agent and account");
        return -1;
    }
    if (by_alias && copy_text(t->creditor_alias, f->creditor_alias, MSG_ALIAS_MAX, "creditor alias",
                              err, errlen) != 0)
        return -1;
    if (!by_alias && !msg_valid_agent(f->creditor_agent)) {
        snprintf(err, errlen, "creditor agent \"%s\" must be %d uppercase letters",
                 f->creditor_agent != NULL ? f->creditor_agent : "", MSG_AGENT_LEN);
        return -1;
    }
    if (!msg_valid_account(f->debtor_account)) {
        snprintf(err, errlen, "debtor account must be 1..%d printable characters without spaces",
                 MSG_ACCOUNT_MAX);
        return -1;
    }
    if (!by_alias && !msg_valid_account(f->creditor_account)) {
        snprintf(err, errlen, "creditor account must be 1..%d printable characters without spaces",
                 MSG_ACCOUNT_MAX);
        return -1;
    }
    const char *currency = is_empty(f->currency) ? "PKR" : f->currency;
    if (strlen(currency) != 3 || strspn(currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3) {
        snprintf(err, errlen, "currency \"%s\" must be an ISO 4217 code like PKR", currency);
        return -1;
    }
    memcpy(t->debtor_agent, f->debtor_agent, MSG_AGENT_LEN + 1);
    if (!by_alias) {
        memcpy(t->creditor_agent, f->creditor_agent, MSG_AGENT_LEN + 1);
        memcpy(t->creditor_account, f->creditor_account, strlen(f->creditor_account) + 1);
    }
    memcpy(t->debtor_account, f->debtor_account, strlen(f->debtor_account) + 1);
    memcpy(t->currency, currency, 4);

    sikka__v1__credit_transfer__init(&t->ct);
    t->ct.msg_id = t->msg_id;
    t->ct.end_to_end_id = t->end_to_end_id;
    t->ct.debtor_agent = t->debtor_agent;
    t->ct.debtor_account = t->debtor_account;
    t->ct.creditor_agent = t->creditor_agent;
    t->ct.creditor_account = t->creditor_account;
    t->ct.creditor_alias = t->creditor_alias;
    t->ct.amount = f->amount;
    t->ct.currency = t->currency;
    t->ct.purpose = f->purpose;
    t->ct.created_at_ms = f->created_at_ms != 0 ? f->created_at_ms : msg_now_ms();
    if (!is_empty(f->ref)) {
        if (msg_remittance_init(&t->remittance, f->purpose, f->ref, err, errlen) != 0)
            return -1;
        t->ct.remittance = &t->remittance.remittance;
    }
    sikka__v1__envelope__init(&t->env);
    t->env.body_case = SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER;
    t->env.credit_transfer = &t->ct;
    return 0;
}

int msg_decision_init(struct msg_decision *d, uint64_t transfer_id, bool accept, const char *reason,
                      const char *text, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    sikka__v1__payee_decision__init(&d->decision);
    d->decision.transfer_id = transfer_id;
    d->decision.accept = accept;
    if (!accept) {
        if (!msg_valid_reason(reason)) {
            snprintf(err, errlen, "reject reason \"%s\" must be an ISO 20022 code like AC01",
                     reason != NULL ? reason : "");
            return -1;
        }
        memcpy(d->reason, reason, MSG_REASON_MAX + 1);
        d->decision.reason = d->reason;
        const char *narrative = text != NULL ? text : msg_reason_text(reason);
        if (narrative[0] != '\0') {
            if (copy_text(d->text, narrative, MSG_TEXT_MAX, "decision text", err, errlen) != 0)
                return -1;
            d->decision.text = d->text;
        }
    }
    sikka__v1__envelope__init(&d->env);
    d->env.body_case = SIKKA__V1__ENVELOPE__BODY_DECISION;
    d->env.decision = &d->decision;
    return 0;
}

void msg_heartbeat_init(struct msg_heartbeat *h, uint64_t nonce, bool reply)
{
    sikka__v1__heartbeat__init(&h->heartbeat);
    h->heartbeat.nonce = nonce;
    h->heartbeat.reply = reply;
    sikka__v1__envelope__init(&h->env);
    h->env.body_case = SIKKA__V1__ENVELOPE__BODY_HEARTBEAT;
    h->env.heartbeat = &h->heartbeat;
}

int msg_alias_init(struct msg_alias *a, const char *request_id, Sikka__V1__AliasOp op,
                   const char *alias, const char *account, const char *name, char *err,
                   size_t errlen)
{
    memset(a, 0, sizeof(*a));
    if (copy_text(a->request_id, request_id, MSG_ID_MAX, "request id", err, errlen) != 0 ||
        copy_text(a->alias, alias, MSG_ALIAS_MAX, "alias", err, errlen) != 0)
        return -1;
    if (!is_empty(account) &&
        copy_text(a->account, account, MSG_ACCOUNT_MAX, "account", err, errlen) != 0)
        return -1;
    /* a name is counted in characters by the switch; here only its bytes
     * are bounded, so that an over-long name reaches the switch's check */
    if (!is_empty(name) && copy_text(a->name, name, sizeof(a->name) - 1, "name", err, errlen) != 0)
        return -1;
    sikka__v1__alias_request__init(&a->request);
    a->request.request_id = a->request_id;
    a->request.op = op;
    a->request.alias = a->alias;
    a->request.account = a->account;
    a->request.name = a->name;
    sikka__v1__envelope__init(&a->env);
    a->env.body_case = SIKKA__V1__ENVELOPE__BODY_ALIAS_REQUEST;
    a->env.alias_request = &a->request;
    return 0;
}
