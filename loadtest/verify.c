#include "verify.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define VERIFY_COLUMNS 6

/* A growing text buffer (an array literal being built). */
struct vbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void vb_put(struct vbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap * 2 : 1 << 16;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void vb_str(struct vbuf *b, const char *s)
{
    vb_put(b, s, strlen(s));
}

/* Appends one element of an array literal: NULL, a number, or a quoted
 * string with '"' and '\' escaped. */
static void vb_element(struct vbuf *b, const char *value, bool quoted, bool first)
{
    vb_put(b, first ? "{" : ",", 1);
    if (value == NULL) {
        vb_str(b, "NULL");
        return;
    }
    if (!quoted) {
        vb_str(b, value);
        return;
    }
    vb_put(b, "\"", 1);
    for (const char *s = value; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            vb_put(b, "\\", 1);
        vb_put(b, s, 1);
    }
    vb_put(b, "\"", 1);
}

/* Undoes COPY text escaping in place; returns NULL for "\N". */
static char *copy_unescape(char *s)
{
    if (strcmp(s, "\\N") == 0)
        return NULL;
    char *w = s;
    for (char *r = s; *r != '\0'; r++) {
        if (*r != '\\' || r[1] == '\0') {
            *w++ = *r;
            continue;
        }
        r++;
        *w++ = *r == 't' ? '\t' : *r == 'n' ? '\n' : *r == 'r' ? '\r' : *r;
    }
    *w = '\0';
    return s;
}

static bool all_digits(const char *s, bool sign)
{
    if (sign && *s == '-')
        s++;
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Reads the results file into six array literals. */
static int load_results(const char *path, struct vbuf cols[VERIFY_COLUMNS], uint64_t *lines,
                        char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t no = 0;
    int rc = -1;
    while ((n = getline(&line, &cap, f)) > 0) {
        no++;
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        char *field[VERIFY_COLUMNS];
        int nf = 0;
        char *p = line;
        for (; nf < VERIFY_COLUMNS; nf++) {
            field[nf] = p;
            char *tab = strchr(p, '\t');
            if (tab == NULL) {
                nf++;
                break;
            }
            *tab = '\0';
            p = tab + 1;
        }
        if (nf != VERIFY_COLUMNS || strchr(field[VERIFY_COLUMNS - 1], '\t') != NULL) {
            snprintf(err, errlen, "%s:%" PRIu64 ": expected 6 tab-separated fields", path, no);
            goto done;
        }
        for (int i = 0; i < 4; i++)
            field[i] = copy_unescape(field[i]);
        if (field[0] == NULL || field[1] == NULL || field[2] == NULL ||
            !all_digits(field[4], false) || !all_digits(field[5], true)) {
            snprintf(err, errlen,
                     "%s:%" PRIu64 ": expected payer, msg_id, status, reason, transfer_id, "
                     "amount",
                     path, no);
            goto done;
        }
        for (int i = 0; i < VERIFY_COLUMNS; i++)
            vb_element(&cols[i], field[i], i < 4, no == 1);
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto done;
    }
    for (int i = 0; i < VERIFY_COLUMNS; i++) {
        vb_str(&cols[i], no == 0 ? "{}" : "}");
        if (cols[i].failed) {
            snprintf(err, errlen, "out of memory reading %s", path);
            goto done;
        }
    }
    *lines = no;
    rc = 0;
done:
    free(line);
    fclose(f);
    return rc;
}

/* Every check in one statement; $1..$6 are the results' columns. */
static const char verify_sql[] =
    "WITH r AS ("
    "  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],"
    "                       $6::bigint[]) AS r(payer, msg_id, status, reason, transfer_id, amount)"
    "), ent AS ("
    "  SELECT transfer_id,"
    "         count(*) FILTER (WHERE leg = 'principal') AS pn,"
    "         coalesce(sum(amount) FILTER (WHERE leg = 'principal'), 0) AS psum,"
    "         min(amount) FILTER (WHERE leg = 'principal') AS pmin,"
    "         max(amount) FILTER (WHERE leg = 'principal') AS pmax,"
    "         count(*) FILTER (WHERE leg = 'fee') AS fn,"
    "         coalesce(sum(amount) FILTER (WHERE leg = 'fee'), 0) AS fsum,"
    "         count(*) FILTER (WHERE leg NOT IN ('principal', 'fee')) AS xn,"
    "         sum(amount) AS total"
    "    FROM ledger_entries WHERE transfer_id IS NOT NULL GROUP BY transfer_id"
    "), acsc AS ("
    "  SELECT payer, msg_id, min(transfer_id) AS tid, min(amount) AS amount,"
    "         count(DISTINCT transfer_id) AS nids, count(DISTINCT amount) AS namounts"
    "    FROM r WHERE status = 'ACSC' GROUP BY payer, msg_id"
    "), ca AS ("
    "  SELECT a.*, t.id AS t_id, t.status AS t_status, t.amount AS t_amount, t.fee AS t_fee,"
    "         coalesce(e.pn, 0) AS pn, e.psum, e.pmin, e.pmax, coalesce(e.fn, 0) AS fn,"
    "         coalesce(e.fsum, 0) AS fsum, coalesce(e.xn, 0) AS xn,"
    "         CASE"
    "           WHEN a.nids > 1 OR a.namounts > 1 THEN 'answered ACSC with different ids or "
    "amounts'"
    "           WHEN t.id IS NULL THEN 'settled (ACSC) but missing from the ledger'"
    "           WHEN t.status <> 'ACSC' THEN 'settled (ACSC) but stored as ' || t.status"
    "           WHEN t.id <> a.tid THEN 'settled as transfer ' || a.tid || ' but stored as ' ||"
    "                t.id"
    "           WHEN t.amount <> a.amount THEN 'settled for ' || a.amount || ' but stored for '"
    "                || t.amount"
    "           WHEN coalesce(e.pn, 0) = 0 AND coalesce(e.fn, 0) = 0 THEN 'stored ACSC without "
    "entries'"
    "           WHEN e.pn > 2 OR e.fn > 2 THEN 'posted more than once: ' || e.pn || "
    "' principal and ' || e.fn || ' fee entries'"
    "           WHEN NOT (e.pn = 2 AND e.psum = 0 AND e.pmin = -t.amount AND e.pmax = t.amount"
    "                     AND e.fn = CASE WHEN t.fee > 0 THEN 2 ELSE 0 END AND e.fsum = 0"
    "                     AND e.xn = 0) THEN 'posting is not its two legs of the amount "
    "(plus fees)'"
    "         END AS problem"
    "    FROM acsc a"
    "    LEFT JOIN transfers t ON t.payer = a.payer AND t.msg_id = a.msg_id"
    "    LEFT JOIN ent e ON e.transfer_id = t.id"
    "), rj AS ("
    "  SELECT DISTINCT payer, msg_id, transfer_id, reason FROM r WHERE status = 'RJCT'"
    "), rjc AS ("
    "  SELECT rj.*,"
    "         CASE WHEN e.transfer_id IS NOT NULL THEN 'rejected but has ledger entries'"
    "              WHEN t.status = 'ACSC' AND rj.reason IS DISTINCT FROM 'AM05'"
    "                   AND NOT EXISTS (SELECT 1 FROM acsc a WHERE a.payer = rj.payer"
    "                                   AND a.msg_id = rj.msg_id)"
    "                THEN 'rejected but stored ACSC as transfer ' || t.id"
    "         END AS problem"
    "    FROM rj"
    "    LEFT JOIN ent e ON rj.transfer_id > 0 AND e.transfer_id = rj.transfer_id"
    "    LEFT JOIN transfers t ON t.payer = rj.payer AND t.msg_id = rj.msg_id"
    "), orphans AS ("
    "  SELECT ent.transfer_id FROM ent LEFT JOIN transfers t ON t.id = ent.transfer_id"
    "   WHERE t.id IS NULL OR t.status <> 'ACSC'"
    ")"
    "SELECT"
    " (SELECT count(*) FROM ca),"
    " (SELECT count(*) FROM rjc),"
    " (SELECT count(*) FROM r WHERE status NOT IN ('ACSC', 'RJCT')),"
    " (SELECT count(*) FROM ca WHERE problem IS NULL),"
    " (SELECT count(*) FROM ca WHERE problem LIKE 'answered ACSC with%'),"
    " (SELECT count(*) FROM ca WHERE problem LIKE '% missing from the ledger'),"
    " (SELECT count(*) FROM ca WHERE problem LIKE 'settled % but stored %'"
    "                             OR problem LIKE 'settled as % but stored %'),"
    " (SELECT count(*) FROM ca WHERE problem = 'stored ACSC without entries'),"
    " (SELECT count(*) FROM ca WHERE problem LIKE 'posted more than once%'),"
    " (SELECT count(*) FROM ca WHERE problem LIKE 'posting is not%'),"
    " (SELECT count(*) FROM rjc WHERE problem IS NOT NULL),"
    " (SELECT count(*) FROM ent WHERE total <> 0),"
    " (SELECT count(*) FROM (SELECT window_id FROM ledger_entries WHERE transfer_id IS NULL"
    "                         GROUP BY window_id HAVING sum(amount) <> 0) w),"
    " (SELECT count(*) FROM orphans),"
    " (SELECT count(*) FROM transfers t WHERE t.status = 'ACSC' AND t.kind = 'transfer'"
    "     AND NOT EXISTS (SELECT 1 FROM acsc a WHERE a.payer = t.payer"
    "                     AND a.msg_id = t.msg_id)),"
    " array_to_string(ARRAY("
    "   (SELECT payer || ' ' || msg_id || ': ' || problem FROM ca WHERE problem IS NOT NULL"
    "     ORDER BY payer, msg_id LIMIT 8)"
    "   UNION ALL"
    "   (SELECT payer || ' ' || msg_id || ': ' || problem FROM rjc WHERE problem IS NOT NULL"
    "     ORDER BY payer, msg_id LIMIT 4)"
    "   UNION ALL"
    "   (SELECT 'transfer ' || transfer_id || ': entries sum to ' || total FROM ent"
    "     WHERE total <> 0 ORDER BY transfer_id LIMIT 4)"
    "   UNION ALL"
    "   (SELECT 'transfer ' || transfer_id || ': entries without a settled transfer'"
    "      FROM orphans ORDER BY transfer_id LIMIT 4)"
    " ), E'\\n')";

static uint64_t col_u64(const PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? 0 : strtoull(PQgetvalue(res, 0, col), NULL, 10);
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int verify_run(const char *results_path, const char *uri, struct verify_report *v, char *err,
               size_t errlen)
{
    memset(v, 0, sizeof(*v));
    struct vbuf cols[VERIFY_COLUMNS];
    memset(cols, 0, sizeof(cols));
    PGconn *db = NULL;
    PGresult *res = NULL;
    int rc = -1;
    if (load_results(results_path, cols, &v->lines, err, errlen) != 0)
        goto done;
    db = PQconnectdb(uri);
    if (PQstatus(db) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to the database: %s", PQerrorMessage(db));
        goto done;
    }
    PQsetNoticeProcessor(db, quiet_notice, NULL);
    /* unnest() of a parameter is estimated at 100 rows whatever it holds;
     * with nested loops allowed the planner then joins 100k results to
     * 100k transfers pair by pair. Hash joins are right for every size. */
    res = PQexec(db, "SET enable_nestloop = off");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        snprintf(err, errlen, "cannot prepare the session: %s", PQresultErrorMessage(res));
        goto done;
    }
    PQclear(res);
    const char *params[VERIFY_COLUMNS];
    for (int i = 0; i < VERIFY_COLUMNS; i++)
        params[i] = cols[i].p;
    res = PQexecParams(db, verify_sql, VERIFY_COLUMNS, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        snprintf(err, errlen, "the comparison query failed: %s", PQresultErrorMessage(res));
        goto done;
    }
    uint64_t *out[] = {&v->acsc_keys,
                       &v->rjct_keys,
                       &v->other_lines,
                       &v->settled_ok,
                       &v->inconsistent,
                       &v->missing,
                       &v->mismatched,
                       &v->not_posted,
                       &v->posted_twice,
                       &v->bad_posting,
                       &v->rjct_posted,
                       &v->unbalanced,
                       &v->unbalanced_settlements,
                       &v->orphan_postings,
                       &v->unseen_acsc};
    int nout = (int)(sizeof(out) / sizeof(out[0]));
    for (int i = 0; i < nout; i++)
        *out[i] = col_u64(res, i);
    snprintf(v->examples, sizeof(v->examples), "%s", PQgetvalue(res, 0, nout));
    v->ok = v->inconsistent == 0 && v->missing == 0 && v->mismatched == 0 && v->not_posted == 0 &&
            v->posted_twice == 0 && v->bad_posting == 0 && v->rjct_posted == 0 &&
            v->unbalanced == 0 && v->unbalanced_settlements == 0 && v->orphan_postings == 0;
    rc = 0;
done:
    PQclear(res);
    PQfinish(db);
    for (int i = 0; i < VERIFY_COLUMNS; i++)
        free(cols[i].p);
    return rc;
}

static void line(FILE *out, const char *what, uint64_t n, bool failure)
{
    fprintf(out, "  %-58s %10" PRIu64 "%s\n", what, n, failure && n > 0 ? "  <-- FAIL" : "");
}

void verify_print(FILE *out, const struct verify_report *v)
{
    fprintf(out,
            "sikka-replay verify: %" PRIu64 " result lines: %" PRIu64 " settled keys, %" PRIu64
            " rejections, %" PRIu64 " other (message rejects, no answer)\n",
            v->lines, v->acsc_keys, v->rjct_keys, v->other_lines);
    line(out, "settled keys in the ledger exactly once, as answered", v->settled_ok, false);
    line(out, "answered ACSC with different ids or amounts", v->inconsistent, true);
    line(out, "settled but missing from the ledger", v->missing, true);
    line(out, "settled but stored with another status, id or amount", v->mismatched, true);
    line(out, "settled but never posted", v->not_posted, true);
    line(out, "posted more than once", v->posted_twice, true);
    line(out, "posting not two legs of the amount (plus fee legs)", v->bad_posting, true);
    line(out, "rejected but posted", v->rjct_posted, true);
    line(out, "unbalanced transfer postings in the ledger", v->unbalanced, true);
    line(out, "unbalanced settlement postings in the ledger", v->unbalanced_settlements, true);
    line(out, "entries of transfers missing or not ACSC", v->orphan_postings, true);
    line(out, "settled in the ledger, not seen settled by the tool (info)", v->unseen_acsc, false);
    if (v->examples[0] != '\0') {
        fprintf(out, "  examples:\n");
        const char *p = v->examples;
        while (*p != '\0') {
            size_t n = strcspn(p, "\n");
            fprintf(out, "    %.*s\n", (int)n, p);
            p += n;
            if (*p == '\n')
                p++;
        }
    }
    fprintf(out, "verify: %s\n", v->ok ? "OK" : "FAILED");
}

int verify_write_json(const char *path, const struct verify_report *v, char *err, size_t errlen)
{
    json_t *o = json_pack(
        "{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s}", "tool",
        "sikka-replay verify", "ok", v->ok, "lines", (json_int_t)v->lines, "acsc_keys",
        (json_int_t)v->acsc_keys, "rjct_keys", (json_int_t)v->rjct_keys, "other_lines",
        (json_int_t)v->other_lines, "settled_ok", (json_int_t)v->settled_ok, "inconsistent",
        (json_int_t)v->inconsistent, "missing", (json_int_t)v->missing, "mismatched",
        (json_int_t)v->mismatched, "not_posted", (json_int_t)v->not_posted, "posted_twice",
        (json_int_t)v->posted_twice, "bad_posting", (json_int_t)v->bad_posting, "rjct_posted",
        (json_int_t)v->rjct_posted, "unbalanced", (json_int_t)v->unbalanced,
        "unbalanced_settlements", (json_int_t)v->unbalanced_settlements, "orphan_postings",
        (json_int_t)v->orphan_postings, "examples", v->examples);
    if (o == NULL) {
        snprintf(err, errlen, "out of memory building %s", path);
        return -1;
    }
    json_object_set_new(o, "unseen_acsc", json_integer((json_int_t)v->unseen_acsc));
    int rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (rc != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
