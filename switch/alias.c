#include "alias.h"

#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "clock.h"
#include "hmap.h"
#include "log.h"
#include "participant.h"
#include "session.h"
#include "sql.h"
#include "text.h"
#include "transfer.h"

/* ---------------------------------------------------------------- pure */

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

Sikka__V1__AliasType alias_type_of(const char *canonical)
{
    size_t n = strlen(canonical);
    return n == 12   ? SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE
           : n == 13 ? SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_CNIC
                     : SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_UNSPECIFIED;
}

const char *alias_type_name(Sikka__V1__AliasType type)
{
    switch (type) {
    case SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE:
        return "mobile";
    case SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_CNIC:
        return "cnic";
    default:
        return "";
    }
}

int alias_normalize(const char *text, Sikka__V1__AliasType want, char out[ALIAS_MAX + 1],
                    Sikka__V1__AliasType *type, char *err, size_t errlen)
{
    size_t n = strlen(text);
    const char *mobile = NULL; /* the 10 digits 3XXXXXXXXX */
    char cnic[14] = "";
    out[0] = '\0';
    if (n == 11 && text[0] == '0' && text[1] == '3' && all_digits(text, n))
        mobile = text + 1;
    else if (n == 13 && text[0] == '+' && text[1] == '9' && text[2] == '2' && text[3] == '3' &&
             all_digits(text + 1, n - 1))
        mobile = text + 3;
    else if (n == 12 && text[0] == '9' && text[1] == '2' && text[2] == '3' && all_digits(text, n))
        mobile = text + 2;
    else if (n == 13 && all_digits(text, n))
        memcpy(cnic, text, 14);
    else if (n == 15 && text[5] == '-' && text[13] == '-' && all_digits(text, 5) &&
             all_digits(text + 6, 7) && all_digits(text + 14, 1)) {
        memcpy(cnic, text, 5);
        memcpy(cnic + 5, text + 6, 7);
        cnic[12] = text[14];
        cnic[13] = '\0';
    }
    Sikka__V1__AliasType found = mobile != NULL    ? SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE
                                 : cnic[0] != '\0' ? SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_CNIC
                                                   : SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_UNSPECIFIED;
    if (found == SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_UNSPECIFIED) {
        snprintf(err, errlen,
                 "is not a Pakistani mobile number (03XXXXXXXXX, +923XXXXXXXXX or "
                 "923XXXXXXXXX) nor a 13-digit CNIC");
        return -1;
    }
    if (want != SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_UNSPECIFIED && want != found) {
        snprintf(err, errlen, "is a %s, not the %s its type says",
                 found == SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE ? "mobile number" : "CNIC",
                 want == SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE ? "mobile number"
                 : want == SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_CNIC ? "CNIC"
                                                                  : "known type");
        return -1;
    }
    if (mobile != NULL)
        snprintf(out, ALIAS_MAX + 1, "92%.10s", mobile);
    else
        memcpy(out, cnic, 14);
    *type = found;
    return 0;
}

void alias_mask_name(const char *name, char *out, size_t len)
{
    size_t used = 0, words = 0;
    const char *p = name;
    out[0] = '\0';
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        if (words == ALIAS_MASK_WORDS) {
            if (used + 4 < len) {
                memcpy(out + used, " ...", 5);
                used += 4;
            }
            break;
        }
        uint32_t cp;
        size_t clen = text_utf8_decode(p, strlen(p), &cp);
        if (clen == 0)
            clen = 1; /* not UTF-8: callers check first; never read past it */
        /* "X***" and a blank before every word but the first */
        size_t need = (words > 0 ? 1 : 0) + clen + 3;
        if (used + need >= len)
            break;
        if (words > 0)
            out[used++] = ' ';
        memcpy(out + used, p, clen);
        used += clen;
        memcpy(out + used, "***", 3);
        used += 3;
        out[used] = '\0';
        words++;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
    }
    out[used] = '\0';
}

const char *alias_mask(const char *canonical, char *buf, size_t len)
{
    return log_mask(canonical, buf, len);
}

int alias_check_name(const char *field, const char *name, char *err, size_t errlen)
{
    if (text_check(field, name, 1, ALIAS_NAME_MAX, TEXT_CHARS, err, errlen) != 0)
        return -1;
    if (name[strspn(name, " ")] == '\0') {
        snprintf(err, errlen, "%s is blank", field);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- the index */

/* A port waiting on an alias: to whom, until when. Owned by its entry;
 * linked in D.ports while it waits. */
struct alias_port {
    struct participant *to;
    int64_t expires_ms;
    struct alias_port *prev, *next;
};

/* One alias. Owned by the index (D.map); replaced whole when it changes.
 * data holds the account, a NUL, the masked name, a NUL. */
struct alias_entry {
    struct hnode node;
    struct participant *owner;
    struct alias_port *port; /* NULL: none waiting */
    uint8_t type;            /* Sikka__V1__AliasType */
    uint8_t account_len;
    char alias[ALIAS_MAX + 1];
    char data[];
};

static const char *entry_account(const struct alias_entry *e)
{
    return e->data;
}

static const char *entry_masked(const struct alias_entry *e)
{
    return e->data + e->account_len + 1;
}

/* A request waiting for the database. */
struct alias_call {
    uint64_t session;
    char caller[5];
    char request_id[ALIAS_REQUEST_MAX + 1];
    Sikka__V1__AliasOp op;
    Sikka__V1__AliasType type;
    char alias[ALIAS_MAX + 1];
};

/* An alias whose change may or may not have committed (the connection
 * was lost): read again from the database once it is back. */
struct alias_refresh {
    struct alias_refresh *next;
    char alias[ALIAS_MAX + 1];
};

/* The operators' list waiting for the database. */
struct alias_list_call {
    ops_done done;
    void *arg;
    int limit;
};

static struct {
    struct event_base *base;
    struct pgconn *db, *query;
    struct hmap map;
    bool map_ready;
    struct alias_options opts;
    struct bucket *buckets; /* lookups, by participant index */
    size_t nbuckets;
    struct alias_port *ports; /* waiting ports */
    size_t nports;
    struct event *tick;
    bool expiring;                 /* an alias_expire_ports() call is out */
    struct alias_refresh *refresh; /* to read again (alias_refresh) */
} D = {.opts = {1000, 2000, 86400}};

static bool eq_alias(const struct hnode *n, const void *key)
{
    return strcmp(hmap_entry(n, struct alias_entry, node)->alias, key) == 0;
}

static struct alias_entry *index_find(const char *alias)
{
    if (!D.map_ready)
        return NULL;
    struct hnode *n = hmap_find(&D.map, hmap_hash(alias, strlen(alias)), eq_alias, alias);
    return n != NULL ? hmap_entry(n, struct alias_entry, node) : NULL;
}

static void port_unlink(struct alias_entry *e)
{
    struct alias_port *p = e->port;
    if (p == NULL)
        return;
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        D.ports = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    D.nports--;
    free(p);
    e->port = NULL;
}

static void index_remove(const char *alias)
{
    struct alias_entry *e = index_find(alias);
    if (e == NULL)
        return;
    hmap_remove(&D.map, &e->node);
    port_unlink(e);
    free(e);
}

/* Puts (or replaces) an alias: holder, account, full name (masked here),
 * and the waiting port (port_to NULL or "": none). -1 only when out of
 * memory (logged), the old entry then gone. */
static int index_put(const char *alias, struct participant *owner, const char *account,
                     const char *name, struct participant *port_to, int64_t port_expires_ms)
{
    char masked[ALIAS_MASKED_MAX + 1];
    alias_mask_name(name, masked, sizeof(masked));
    size_t alen = strlen(account), mlen = strlen(masked);
    if (alen > ALIAS_ACCOUNT_MAX)
        alen = ALIAS_ACCOUNT_MAX; /* the database's check: cannot happen */
    index_remove(alias);
    struct alias_entry *e = malloc(sizeof(*e) + alen + 1 + mlen + 1);
    if (e == NULL) {
        char m[32];
        log_error("event=oom what=alias_entry alias=%s", alias_mask(alias, m, sizeof(m)));
        return -1;
    }
    e->owner = owner;
    e->port = NULL;
    e->type = (uint8_t)alias_type_of(alias);
    e->account_len = (uint8_t)alen;
    snprintf(e->alias, sizeof(e->alias), "%s", alias);
    memcpy(e->data, account, alen);
    e->data[alen] = '\0';
    memcpy(e->data + alen + 1, masked, mlen + 1);
    if (port_to != NULL) {
        struct alias_port *p = calloc(1, sizeof(*p));
        if (p != NULL) {
            p->to = port_to;
            p->expires_ms = port_expires_ms;
            p->next = D.ports;
            if (D.ports != NULL)
                D.ports->prev = p;
            D.ports = p;
            D.nports++;
            e->port = p;
        } else {
            log_error("event=oom what=alias_port why=\"the port is applied when it expires in "
                      "the database\"");
        }
    }
    if (hmap_insert(&D.map, &e->node, hmap_hash(e->alias, strlen(e->alias))) != 0) {
        port_unlink(e);
        free(e);
        return -1;
    }
    return 0;
}

static void index_clear(void)
{
    if (!D.map_ready)
        return;
    hmap_settle(&D.map);
    for (size_t i = 0; i <= D.map.mask; i++) {
        struct hnode *n = D.map.buckets[i];
        while (n != NULL) {
            struct hnode *next = n->next;
            struct alias_entry *e = hmap_entry(n, struct alias_entry, node);
            port_unlink(e);
            free(e);
            n = next;
        }
    }
    hmap_destroy(&D.map);
    D.map_ready = false;
}

size_t alias_count(void)
{
    return D.map_ready ? D.map.count : 0;
}

/* ---------------------------------------------------------------- loading */

/* COPY text format: backslash escapes (the database refuses control
 * characters in these columns, so only \\ is expected; the rest are
 * decoded all the same). In place; returns s. */
static char *copy_unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r != '\0'; r++) {
        if (*r != '\\' || r[1] == '\0') {
            *w++ = *r;
            continue;
        }
        r++;
        switch (*r) {
        case 't':
            *w++ = '\t';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        default:
            *w++ = *r;
            break;
        }
    }
    *w = '\0';
    return s;
}

/* One COPY line: alias, participant, account, name, port_to, port_expires_ms. */
static int load_line(char *line, size_t *count, char *err, size_t errlen)
{
    char *f[6];
    int nf = 0;
    f[nf++] = line;
    for (char *p = line; *p != '\0' && *p != '\n'; p++) {
        if (*p == '\t') {
            *p = '\0';
            if (nf == 6)
                break;
            f[nf++] = p + 1;
        }
    }
    char *nl = strchr(f[nf - 1], '\n');
    if (nl != NULL)
        *nl = '\0';
    if (nf != 6) {
        snprintf(err, errlen, "loading aliases: a row of %d columns", nf);
        return -1;
    }
    struct participant *owner = participant_find(f[1]);
    if (owner == NULL) {
        snprintf(err, errlen, "loading aliases: participant %s of an alias is not loaded", f[1]);
        return -1;
    }
    struct participant *to = f[4][0] != '\0' ? participant_find(f[4]) : NULL;
    if (index_put(f[0], owner, copy_unescape(f[2]), copy_unescape(f[3]), to,
                  strtoll(f[5], NULL, 10)) != 0) {
        snprintf(err, errlen, "loading aliases: out of memory after %zu", *count);
        return -1;
    }
    (*count)++;
    return 0;
}

int alias_load(const char *conninfo, size_t *count_out, int64_t *ms_out, char *err, size_t errlen)
{
    int64_t started = mono_us();
    size_t count = 0;
    int rc = -1;
    PGresult *res = NULL;
    index_clear();
    if (hmap_init(&D.map, 1024) != 0) {
        snprintf(err, errlen, "loading aliases: out of memory");
        return -1;
    }
    D.map_ready = true;
    PGconn *db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        snprintf(err, errlen, "loading aliases: cannot connect: %s", PQerrorMessage(db));
        goto done;
    }
    res = PQexec(db, sql_load_aliases);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        snprintf(err, errlen, "loading aliases: %s", PQresultErrorMessage(res));
        goto done;
    }
    PQclear(res);
    res = NULL;
    for (;;) {
        char *line = NULL;
        int n = PQgetCopyData(db, &line, 0);
        if (n == -1)
            break; /* the end; the result follows */
        if (n < 0) {
            snprintf(err, errlen, "loading aliases: %s", PQerrorMessage(db));
            goto done;
        }
        int bad = load_line(line, &count, err, errlen);
        PQfreemem(line);
        if (bad != 0)
            goto done;
    }
    res = PQgetResult(db);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        snprintf(err, errlen, "loading aliases: %s", PQresultErrorMessage(res));
        goto done;
    }
    hmap_settle(&D.map);
    rc = 0;
done:
    if (res != NULL)
        PQclear(res);
    /* a COPY cut short leaves results behind: PQfinish discards them */
    PQfinish(db);
    if (rc != 0) {
        size_t l = strlen(err);
        while (l > 0 && err[l - 1] == '\n')
            err[--l] = '\0';
        index_clear();
    }
    if (count_out != NULL)
        *count_out = count;
    if (ms_out != NULL)
        *ms_out = (mono_us() - started) / 1000;
    return rc;
}

/* ---------------------------------------------------------------- answers */

static Sikka__V1__AliasType wire_type(uint8_t t)
{
    return (Sikka__V1__AliasType)t;
}

/* What an answer says of an alias's state, as the receiver may see it. */
struct alias_view {
    const char *alias;
    Sikka__V1__AliasType type;
    const char *participant; /* "" none */
    const char *account;     /* the holder's: shown to the holder only */
    const char *masked_name;
    const char *port_to; /* "" none */
    int64_t port_expires_ms;
};

static void view_of_entry(const struct alias_entry *e, struct alias_view *v)
{
    memset(v, 0, sizeof(*v));
    v->alias = e->alias;
    v->type = wire_type(e->type);
    v->participant = e->owner->code;
    v->account = entry_account(e);
    v->masked_name = entry_masked(e);
    v->port_to = e->port != NULL ? e->port->to->code : "";
    v->port_expires_ms = e->port != NULL ? e->port->expires_ms : 0;
}

static void send_answer(struct session *s, const char *request_id, Sikka__V1__AliasOp op, bool ok,
                        const char *reason, const char *text, const struct alias_view *v)
{
    const char *me = s->participant->code;
    Sikka__V1__AliasResponse r = SIKKA__V1__ALIAS_RESPONSE__INIT;
    r.request_id = (char *)request_id;
    r.op = op;
    r.ok = ok;
    r.reason = (char *)(reason != NULL ? reason : "");
    /* our own words, and at most a checked peer string quoted: cut to the
     * limit of every text the switch writes */
    char cut[TRANSFER_TEXT_BYTES + 1];
    (void)text_copy_truncated(cut, sizeof(cut), text != NULL ? text : "");
    text_limit_chars(cut, TRANSFER_TEXT_MAX);
    r.text = cut;
    if (v != NULL) {
        bool holder = strcmp(v->participant, me) == 0;
        bool party = holder || (v->port_to[0] != '\0' && strcmp(v->port_to, me) == 0);
        r.alias = (char *)v->alias;
        r.type = v->type;
        r.participant = (char *)v->participant;
        r.masked_name = (char *)(v->masked_name != NULL ? v->masked_name : "");
        r.account = (char *)(holder && v->account != NULL ? v->account : "");
        r.port_pending = v->port_to[0] != '\0';
        /* whether a port waits is anyone's to know (a payer may wonder);
         * who asks for it only the two parties' */
        r.port_to = (char *)(party ? v->port_to : "");
        r.port_expires_at_ms = v->port_expires_ms;
    }
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_ALIAS_RESPONSE;
    env.alias_response = &r;
    (void)session_send(s, &env);
}

/* A refusal before anything is known of the alias. */
static void refuse(struct session *s, const Sikka__V1__AliasRequest *rq, const char *reason,
                   const char *text)
{
    char q[200], m[80];
    log_warn("event=alias_refused session=%s request=%s op=%d reason=%s text=%s", s->label,
             log_quote(rq->request_id, m, sizeof(m)), (int)rq->op, reason,
             log_quote(text, q, sizeof(q)));
    /* echo the request id only when it passed its check */
    char e[96];
    const char *id = text_check("request_id", rq->request_id, 1, ALIAS_REQUEST_MAX, TEXT_BYTES, e,
                                sizeof(e)) == 0
                         ? rq->request_id
                         : "";
    send_answer(s, id, rq->op, false, reason, text, NULL);
}

/* A notice to any session of p (nobody connected: nobody told now; a
 * lookup tells the state later). */
static void notify(struct participant *p, const char *text, const struct alias_view *v)
{
    struct session *s = p != NULL ? session_pick(p) : NULL;
    char m[32];
    if (s == NULL) {
        log_info("event=alias_notice_not_sent participant=%s alias=%s why=\"not connected\"",
                 p != NULL ? p->code : "-", alias_mask(v->alias, m, sizeof(m)));
        return;
    }
    send_answer(s, "", SIKKA__V1__ALIAS_OP__ALIAS_NOTICE, true, "", text, v);
}

/* ---------------------------------------------------------------- lookups */

static bool lookup_allowed(struct participant *p)
{
    if (p->index >= D.nbuckets) {
        size_t n = D.nbuckets ? D.nbuckets : 16;
        while (n <= p->index)
            n *= 2;
        struct bucket *b = realloc(D.buckets, n * sizeof(*b));
        if (b == NULL) {
            log_error("event=oom what=alias_buckets");
            return false;
        }
        memset(b + D.nbuckets, 0, (n - D.nbuckets) * sizeof(*b));
        D.buckets = b;
        D.nbuckets = n;
    }
    return bucket_take(&D.buckets[p->index], mono_us(), D.opts.lookup_rate, D.opts.lookup_burst);
}

static void handle_lookup(struct session *s, const Sikka__V1__AliasRequest *rq, const char *alias)
{
    struct participant *me = s->participant;
    char m[32], q[80];
    if (!lookup_allowed(me)) {
        char text[140];
        snprintf(text, sizeof(text),
                 "rate limit: %s may look up %" PRId64 " aliases a second (bursts of %" PRId64
                 "); send it again later",
                 me->code, D.opts.lookup_rate, D.opts.lookup_burst);
        /* logged by the session, at most so many a second (a flood of
         * lookups must not flood the log) */
        session_refuse(s, text, rq->request_id, 0);
        return;
    }
    struct alias_entry *e = index_find(alias);
    log_info("event=alias_lookup participant=%s request=%s alias=%s found=%s holder=%s", me->code,
             log_quote(rq->request_id, q, sizeof(q)), alias_mask(alias, m, sizeof(m)),
             e != NULL ? "yes" : "no", e != NULL ? e->owner->code : "-");
    if (e == NULL) {
        send_answer(s, rq->request_id, rq->op, false, "BE23",
                    "no account is registered for this alias", NULL);
        return;
    }
    struct alias_view v;
    view_of_entry(e, &v);
    send_answer(s, rq->request_id, rq->op, true, "", "", &v);
}

int alias_resolve(const char *caller, const char *field, const char *text, struct alias_target *out,
                  char reason[5], char *err, size_t errlen)
{
    Sikka__V1__AliasType type;
    char why[160], m[32];
    memset(out, 0, sizeof(*out));
    if (alias_normalize(text, SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_UNSPECIFIED, out->alias, &type, why,
                        sizeof(why)) != 0) {
        snprintf(reason, 5, "FF01");
        snprintf(err, errlen, "%s %s", field, why);
        return -1;
    }
    struct alias_entry *e = index_find(out->alias);
    log_debug("event=alias_resolved participant=%s alias=%s found=%s holder=%s", caller,
              alias_mask(out->alias, m, sizeof(m)), e != NULL ? "yes" : "no",
              e != NULL ? e->owner->code : "-");
    if (e == NULL) {
        snprintf(reason, 5, "BE23");
        snprintf(err, errlen, "no account is registered for this alias");
        return -1;
    }
    snprintf(out->participant, sizeof(out->participant), "%s", e->owner->code);
    snprintf(out->account, sizeof(out->account), "%s", entry_account(e));
    snprintf(out->masked_name, sizeof(out->masked_name), "%s", entry_masked(e));
    return 0;
}

/* ---------------------------------------------------------------- changes */

/* Applies an answer row of a 008 function (columns from `col`: outcome,
 * participant, account, holder_name, port_to, port_expires_ms, previous)
 * to the index. */
static void apply_row(const char *alias, PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col + 1)) {
        index_remove(alias);
        return;
    }
    struct participant *owner = participant_find(PQgetvalue(res, row, col + 1));
    struct participant *to =
        PQgetisnull(res, row, col + 4) ? NULL : participant_find(PQgetvalue(res, row, col + 4));
    if (owner == NULL) {
        char m[32];
        log_error("event=alias_owner_unknown alias=%s participant=%s",
                  alias_mask(alias, m, sizeof(m)), PQgetvalue(res, row, col + 1));
        index_remove(alias);
        return;
    }
    (void)index_put(alias, owner, PQgetvalue(res, row, col + 2), PQgetvalue(res, row, col + 3), to,
                    strtoll(PQgetvalue(res, row, col + 5), NULL, 10));
}

static const char *op_name(Sikka__V1__AliasOp op)
{
    switch (op) {
    case SIKKA__V1__ALIAS_OP__ALIAS_REGISTER:
        return "register";
    case SIKKA__V1__ALIAS_OP__ALIAS_UPDATE:
        return "update";
    case SIKKA__V1__ALIAS_OP__ALIAS_DEREGISTER:
        return "deregister";
    case SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP:
        return "lookup";
    case SIKKA__V1__ALIAS_OP__ALIAS_PORT:
        return "port";
    case SIKKA__V1__ALIAS_OP__ALIAS_RELEASE:
        return "release";
    default:
        return "?";
    }
}

/* A port completed: the new holder and the one before hear it. */
static void tell_moved(const char *alias, const char *previous, const char *why)
{
    struct alias_entry *e = index_find(alias);
    if (e == NULL)
        return;
    struct alias_view v;
    view_of_entry(e, &v);
    char m[32], text[140];
    log_info("event=alias_ported alias=%s from=%s to=%s why=%s", alias_mask(alias, m, sizeof(m)),
             previous, e->owner->code, why);
    snprintf(text, sizeof(text), "alias ported from %s to %s (%s)", previous, e->owner->code, why);
    notify(e->owner, text, &v);
    notify(participant_find(previous), text, &v);
}

static void refresh_later(const char *alias)
{
    struct alias_refresh *r = calloc(1, sizeof(*r));
    char m[32];
    if (r == NULL) {
        log_error("event=oom what=alias_refresh alias=%s why=\"the index may differ from the "
                  "database for it until the next start\"",
                  alias_mask(alias, m, sizeof(m)));
        return;
    }
    snprintf(r->alias, sizeof(r->alias), "%s", alias);
    r->next = D.refresh;
    D.refresh = r;
}

static void on_refreshed(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct alias_refresh *r = arg;
    if (D.db == NULL) {
        free(r);
        return;
    }
    if (flags != PGCONN_OK || PQntuples(res) != 1) {
        char m[32];
        log_warn("event=alias_refresh_failed alias=%s why=\"%s\" action=retry",
                 alias_mask(r->alias, m, sizeof(m)), flags != PGCONN_OK ? error : "no row");
        r->next = D.refresh;
        D.refresh = r;
        return;
    }
    apply_row(r->alias, res, 0, 0);
    free(r);
}

static void on_change(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct alias_call *c = arg;
    if (D.db == NULL) {
        free(c); /* alias_free ran: the switch is stopping */
        return;
    }
    struct session *s = session_find(c->session);
    char m[32], q[80];
    const char *masked = alias_mask(c->alias, m, sizeof(m));
    if (flags != PGCONN_OK || PQntuples(res) != 1) {
        /* nothing is known to have changed: the participant asks again (a
         * lost connection may have committed it; every op is idempotent
         * enough to be asked again: register and update of the same thing
         * answer ok, a repeated port renews itself) */
        log_error("event=alias_change_failed participant=%s request=%s op=%s alias=%s why=\"%s\"",
                  c->caller, log_quote(c->request_id, q, sizeof(q)), op_name(c->op), masked,
                  flags != PGCONN_OK ? error : "no answer row");
        if (s != NULL && flags == PGCONN_FAILED)
            /* the database's own checks refused the values: asking again
             * cannot help (its words stay in the log) */
            send_answer(s, c->request_id, c->op, false, "FF01",
                        "the alias directory refused these values", NULL);
        else if (s != NULL)
            session_refuse(s, "the alias directory cannot be written right now; send it again",
                           c->request_id, 0);
        if (flags == PGCONN_LOST)
            refresh_later(c->alias);
        free(c);
        return;
    }
    const char *outcome = PQgetvalue(res, 0, 0);
    bool ok = strcmp(outcome, "ok") == 0 || strcmp(outcome, "pending") == 0 ||
              strcmp(outcome, "moved") == 0;
    /* the database's state is the index's, whatever the outcome (another
     * switch before a takeover may have changed it) */
    apply_row(c->alias, res, 0, 0);
    const char *reason = "", *text = "";
    char buf[140];
    if (strcmp(outcome, "unknown") == 0) {
        reason = "BE23";
        text = "no account is registered for this alias";
    } else if (strcmp(outcome, "taken") == 0) {
        reason = "DUPL";
        text = "alias is registered with another participant: ask for a port (ALIAS_PORT)";
    } else if (strcmp(outcome, "mine") == 0) {
        reason = "DUPL";
        text = "alias is registered with you for another account or name: use ALIAS_UPDATE";
    } else if (strcmp(outcome, "not_owner") == 0) {
        reason = "AG01";
        text = "alias is held by another participant: only its holder may change it";
    } else if (strcmp(outcome, "own") == 0) {
        reason = "AG01";
        text = "alias is yours already: nothing to port";
    } else if (strcmp(outcome, "port_other") == 0) {
        reason = "AG01";
        text = "a port of this alias to another participant is waiting already";
    } else if (strcmp(outcome, "no_port") == 0) {
        reason = "AG01";
        text = "no port of this alias is waiting";
    } else if (strcmp(outcome, "pending") == 0) {
        snprintf(buf, sizeof(buf),
                 "port asked: it moves when the holder releases it or in %" PRId64 " s",
                 D.opts.port_expiry_s);
        text = buf;
    } else if (strcmp(outcome, "moved") == 0) {
        text = "alias moved to the participant that asked for it";
    } else if (!ok) {
        reason = "NARR";
        text = "unexpected answer from the directory";
    }
    log_info("event=alias_%s participant=%s request=%s alias=%s outcome=%s holder=%s",
             op_name(c->op), c->caller, log_quote(c->request_id, q, sizeof(q)), masked, outcome,
             PQgetisnull(res, 0, 1) ? "-" : PQgetvalue(res, 0, 1));
    struct alias_entry *e = index_find(c->alias);
    struct alias_view v, gone;
    if (e != NULL) {
        view_of_entry(e, &v);
    } else {
        memset(&gone, 0, sizeof(gone));
        gone.alias = c->alias;
        gone.type = c->type;
        gone.participant = "";
        gone.port_to = "";
    }
    if (s != NULL)
        send_answer(s, c->request_id, c->op, ok, reason, text, e != NULL ? &v : &gone);
    if (strcmp(outcome, "moved") == 0)
        tell_moved(c->alias, PQgetvalue(res, 0, 6), "released by its holder");
    else if (strcmp(outcome, "pending") == 0 && e != NULL) {
        char t[140];
        snprintf(t, sizeof(t), "%s asks for this alias: release it, or it moves in %" PRId64 " s",
                 c->caller, D.opts.port_expiry_s);
        notify(e->owner, t, &v);
    }
    free(c);
}

void alias_on_request(struct session *s, const Sikka__V1__AliasRequest *rq)
{
    char err[200], why[160];
    if (text_check("request_id", rq->request_id, 1, ALIAS_REQUEST_MAX, TEXT_BYTES, err,
                   sizeof(err)) != 0) {
        refuse(s, rq, "FF01", err);
        return;
    }
    Sikka__V1__AliasOp op = rq->op;
    if (op < SIKKA__V1__ALIAS_OP__ALIAS_REGISTER || op > SIKKA__V1__ALIAS_OP__ALIAS_RELEASE) {
        refuse(s, rq, "FF01",
               "op must be ALIAS_REGISTER, ALIAS_UPDATE, ALIAS_DEREGISTER, "
               "ALIAS_LOOKUP, ALIAS_PORT or ALIAS_RELEASE");
        return;
    }
    if (text_check("alias", rq->alias, 1, ALIAS_TEXT_MAX, TEXT_BYTES, err, sizeof(err)) != 0) {
        refuse(s, rq, "FF01", err);
        return;
    }
    if (rq->type != SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_UNSPECIFIED &&
        rq->type != SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE &&
        rq->type != SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_CNIC) {
        refuse(s, rq, "FF01", "type must be ALIAS_TYPE_MOBILE or ALIAS_TYPE_CNIC (or unset)");
        return;
    }
    char alias[ALIAS_MAX + 1];
    Sikka__V1__AliasType type;
    if (alias_normalize(rq->alias, rq->type, alias, &type, why, sizeof(why)) != 0) {
        snprintf(err, sizeof(err), "alias %s", why);
        refuse(s, rq, "FF01", err);
        return;
    }
    bool needs_account = op == SIKKA__V1__ALIAS_OP__ALIAS_REGISTER ||
                         op == SIKKA__V1__ALIAS_OP__ALIAS_UPDATE ||
                         op == SIKKA__V1__ALIAS_OP__ALIAS_PORT;
    if (needs_account) {
        if (text_check("account", rq->account, 1, ALIAS_ACCOUNT_MAX, TEXT_BYTES, err,
                       sizeof(err)) != 0 ||
            alias_check_name("name", rq->name, err, sizeof(err)) != 0) {
            refuse(s, rq, "FF01", err);
            return;
        }
    } else if (rq->account[0] != '\0' || rq->name[0] != '\0') {
        snprintf(err, sizeof(err),
                 "account and name are for register, update and port only, not %s", op_name(op));
        refuse(s, rq, "FF01", err);
        return;
    }
    if (op == SIKKA__V1__ALIAS_OP__ALIAS_LOOKUP) {
        handle_lookup(s, rq, alias);
        return;
    }
    struct alias_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_error("event=oom what=alias_call participant=%s", s->participant->code);
        session_refuse(s, "switch out of memory; send it again", rq->request_id, 0);
        return;
    }
    c->session = s->id;
    c->op = op;
    c->type = type;
    snprintf(c->caller, sizeof(c->caller), "%s", s->participant->code);
    snprintf(c->request_id, sizeof(c->request_id), "%s", rq->request_id);
    snprintf(c->alias, sizeof(c->alias), "%s", alias);
    char expiry[24];
    snprintf(expiry, sizeof(expiry), "%" PRId64, D.opts.port_expiry_s);
    const char *me = c->caller;
    int rc;
    switch (op) {
    case SIKKA__V1__ALIAS_OP__ALIAS_REGISTER: {
        const char *p[] = {alias, alias_type_name(type), me, rq->account, rq->name};
        rc = pgconn_exec(D.db, SQL_ALIAS_REGISTER, 5, p, on_change, c);
        break;
    }
    case SIKKA__V1__ALIAS_OP__ALIAS_UPDATE: {
        const char *p[] = {alias, me, rq->account, rq->name};
        rc = pgconn_exec(D.db, SQL_ALIAS_UPDATE, 4, p, on_change, c);
        break;
    }
    case SIKKA__V1__ALIAS_OP__ALIAS_DEREGISTER: {
        const char *p[] = {alias, me};
        rc = pgconn_exec(D.db, SQL_ALIAS_DEREGISTER, 2, p, on_change, c);
        break;
    }
    case SIKKA__V1__ALIAS_OP__ALIAS_PORT: {
        const char *p[] = {alias, me, rq->account, rq->name, expiry};
        rc = pgconn_exec(D.db, SQL_ALIAS_PORT, 5, p, on_change, c);
        break;
    }
    default: {
        const char *p[] = {alias, me};
        rc = pgconn_exec(D.db, SQL_ALIAS_RELEASE, 2, p, on_change, c);
        break;
    }
    }
    if (rc != 0)
        on_change(c, NULL, PGCONN_RETRY, "database not connected");
}

/* ---------------------------------------------------------------- expiry */

#define ALIAS_EXPIRE_BATCH 500

static void on_expired(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    (void)arg;
    D.expiring = false;
    if (D.db == NULL)
        return;
    if (flags != PGCONN_OK) {
        log_error("event=alias_expiry_failed why=\"%s\" action=retry_next_second", error);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *alias = PQgetvalue(res, i, 0);
        apply_row(alias, res, i, 1);
        tell_moved(alias, PQgetvalue(res, i, 7), "the port expired");
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    while (D.refresh != NULL && pgconn_is_ready(D.db)) {
        struct alias_refresh *r = D.refresh;
        D.refresh = r->next;
        const char *p[] = {r->alias};
        if (pgconn_exec(D.db, SQL_ALIAS_GET, 1, p, on_refreshed, r) != 0) {
            r->next = D.refresh;
            D.refresh = r;
            break;
        }
    }
    if (D.expiring || D.nports == 0)
        return;
    int64_t now = transfer_now_ms();
    bool due = false;
    for (struct alias_port *p = D.ports; p != NULL && !due; p = p->next)
        due = p->expires_ms <= now;
    if (!due)
        return;
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", ALIAS_EXPIRE_BATCH);
    const char *p[] = {lim};
    if (pgconn_exec(D.db, SQL_ALIAS_EXPIRE, 1, p, on_expired, NULL) == 0)
        D.expiring = true;
}

/* ---------------------------------------------------------------- life */

int alias_init(struct event_base *base, struct pgconn *db, struct pgconn *query)
{
    D.base = base;
    D.db = db;
    D.query = query;
    if (!D.map_ready) {
        if (hmap_init(&D.map, 1024) != 0)
            return -1;
        D.map_ready = true;
    }
    D.tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    if (D.tick == NULL) {
        log_error("event=oom what=alias_tick");
        return -1;
    }
    struct timeval second = {1, 0};
    event_add(D.tick, &second);
    return 0;
}

void alias_configure(const struct alias_options *opts)
{
    D.opts = *opts;
}

void alias_free(void)
{
    if (D.tick != NULL)
        event_free(D.tick);
    D.tick = NULL;
    D.db = NULL;
    while (D.refresh != NULL) {
        struct alias_refresh *r = D.refresh;
        D.refresh = r->next;
        free(r);
    }
    index_clear();
    free(D.buckets);
    D.buckets = NULL;
    D.nbuckets = 0;
}

/* ---------------------------------------------------------------- operators */

static void on_list(void *arg, PGresult *res, enum pgconn_flags flags, const char *error)
{
    struct alias_list_call *c = arg;
    if (flags != PGCONN_OK) {
        log_warn("event=alias_list_failed why=\"%s\"", error);
        c->done(c->arg, 503,
                json_pack("{s:s}", "error", "the database is not reachable right now"));
        free(c);
        return;
    }
    json_t *list = json_array();
    int n = PQntuples(res);
    int shown = n > c->limit ? c->limit : n;
    for (int i = 0; i < shown; i++) {
        char masked[ALIAS_MASKED_MAX + 1], acc[ALIAS_ACCOUNT_MAX + 1];
        alias_mask_name(PQgetvalue(res, i, 3), masked, sizeof(masked));
        json_t *row =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "alias", PQgetvalue(res, i, 0), "type",
                      PQgetvalue(res, i, 1), "participant", PQgetvalue(res, i, 2), "masked_name",
                      masked, "account", log_mask(PQgetvalue(res, i, 4), acc, sizeof(acc)),
                      "registered_at", PQgetvalue(res, i, 5), "updated_at", PQgetvalue(res, i, 6));
        if (row != NULL && !PQgetisnull(res, i, 7)) {
            json_object_set_new(row, "port_to", json_string(PQgetvalue(res, i, 7)));
            json_object_set_new(row, "port_expires_at", json_string(PQgetvalue(res, i, 8)));
        }
        if (row != NULL)
            json_array_append_new(list, row);
    }
    json_t *next =
        n > c->limit && shown > 0 ? json_string(PQgetvalue(res, shown - 1, 0)) : json_null();
    c->done(c->arg, 200,
            json_pack("{s:o, s:o, s:I}", "aliases", list, "next", next, "total",
                      (json_int_t)alias_count()));
    free(c);
}

void alias_admin_list(const char *participant, const char *after, int limit, ops_done done,
                      void *arg)
{
    struct alias_list_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_error("event=oom what=alias_list");
        done(arg, 503, json_pack("{s:s}", "error", "switch out of memory"));
        return;
    }
    c->done = done;
    c->arg = arg;
    c->limit = limit < 1 ? 1 : limit > 1000 ? 1000 : limit;
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", c->limit + 1);
    const char *p[] = {participant, after, lim};
    if (D.query == NULL || pgconn_exec(D.query, SQL_ALIAS_LIST, 3, p, on_list, c) != 0) {
        done(arg, 503, json_pack("{s:s}", "error", "the database is not reachable right now"));
        free(c);
    }
}
