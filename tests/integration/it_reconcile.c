/* reconcile(), check by check. A ledger built the way the switch builds it
 * (post_batch, close_window, a settlement proposed and approved as
 * sikka_switch: payments with
 * and without fees, a rejection, a partial and a full return, a settled
 * window and an open one) reconciles with every check 'ok'. Then, for each
 * check, the corruption it exists to find is planted in a superuser
 * transaction with the ledger's triggers off (session_replication_role =
 * replica) and rolled back: that check reports 'failed', and so do only the
 * checks the corruption cannot help tripping too, named with the plant.
 * A plant keeps everything else consistent (balances re-derived from the
 * entries, forged postings with the legs their rows imply), so the check
 * named is the one that proves it. Last, a check that cannot read what it
 * needs reports 'not checked', never 'ok'. SQL level only: no switch runs. */
#include <stdarg.h>
#include <stddef.h>

#include "harness.h"

#define N_CHECKS 10
static const char *const check_names[N_CHECKS] = {
    "postings balanced",
    "balances equal entries",
    "settled transfers in a window",
    "postings match their transfers",
    "window reports sum to zero",
    "window reports cover their postings",
    "settlements match their reports",
    "returns within their originals",
    "one open window",
    "positions within their caps",
};

/* A plant's forger keeps every balance equal to its entries, so that
 * 'balances equal entries' is never what catches it. */
#define RESYNC_BALANCES                                                                            \
    "UPDATE accounts a SET balance = coalesce((SELECT sum(e.amount) FROM ledger_entries e "        \
    "WHERE e.account_id = a.id), 0);"

/* Account ids of the participants the plants use, and the two windows. */
static struct {
    int64_t jazz_pos, easy_pos, koko_pos, mezn_pos, sada_pos, naya_pos;
    int64_t jazz_set, easy_set, naya_set;
    int64_t fee;
    int64_t w1, w2; /* settled, open */
} ids;

/* ------------------------------------------------------------ the ledger */

/* One transfer as the switch hands it to post_batch. fee and fee_payer are
 * what the switch expects the database to derive. */
struct tx {
    int64_t id;
    const char *kind; /* NULL: "transfer" */
    const char *payer, *payee, *msg_id;
    int64_t amount;
    int64_t fee;
    const char *fee_payer;
    const char *purpose;
    const char *loan_id;
    int instalment;
    const char *invoice;
    int64_t original_id; /* returns */
    const char *return_reason;
    const char *status; /* NULL: "ACSC" */
    const char *reason, *reason_text;
};

/* Appends to buf at *pos; CHECKs it fits. */
static void put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
    va_end(ap);
    CHECK(n >= 0 && (size_t)n < len - *pos, "SQL buffer too small");
    *pos += (size_t)n;
}

/* ARRAY[...]::text[] of one text field (at offset, from offsetof) of every
 * transfer; a NULL field is dflt, or SQL NULL when dflt is NULL too. */
static void put_text_array(char *buf, size_t len, size_t *pos, const struct tx *t, size_t n,
                           size_t offset, const char *dflt)
{
    put(buf, len, pos, "ARRAY[");
    for (size_t i = 0; i < n; i++) {
        const char *v = *(const char *const *)((const char *)&t[i] + offset);
        if (v == NULL)
            v = dflt;
        if (v == NULL)
            put(buf, len, pos, "%sNULL", i ? "," : "");
        else
            put(buf, len, pos, "%s'%s'", i ? "," : "", v);
    }
    put(buf, len, pos, "]::text[], ");
}

/* Posts one batch as sikka_switch; CHECKs that the database derived the
 * fees the switch expected (no 'fee' row) and wrote every transfer (no
 * 'duplicate' row). Returns the window posted to. */
static int64_t post(struct harness *h, const struct tx *t, size_t n)
{
    char sql[16384], err[1024];
    size_t pos = 0;
    const size_t len = sizeof(sql);
    /* the fence's current epoch; no payee notices */
    put(sql, len, &pos,
        "SELECT kind, id, fee, fee_payer FROM post_batch((SELECT epoch FROM switch_fence), "
        "array_fill(false, ARRAY[%zu]), ARRAY[",
        n);
    for (size_t i = 0; i < n; i++)
        put(sql, len, &pos, "%s%lld", i ? "," : "", (long long)t[i].id);
    put(sql, len, &pos, "]::bigint[], ");
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, kind), "transfer");
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, payer), NULL);
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, msg_id), NULL);
    put(sql, len, &pos, "array_fill(repeat('ab', 32), ARRAY[%zu]), ", n);    /* fingerprints */
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, msg_id), NULL); /* end to end */
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, payee), NULL);
    put(sql, len, &pos, "array_fill('03001234567'::text, ARRAY[%zu]), ", n);
    put(sql, len, &pos, "array_fill('03219876543'::text, ARRAY[%zu]), ", n);
    put(sql, len, &pos, "ARRAY[");
    for (size_t i = 0; i < n; i++)
        put(sql, len, &pos, "%s%lld", i ? "," : "", (long long)t[i].amount);
    put(sql, len, &pos, "]::bigint[], ARRAY[");
    for (size_t i = 0; i < n; i++)
        put(sql, len, &pos, "%s%lld", i ? "," : "", (long long)t[i].fee);
    put(sql, len, &pos, "]::bigint[], ");
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, fee_payer), NULL);
    put(sql, len, &pos, "array_fill('PKR'::text, ARRAY[%zu]), ", n);
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, purpose), NULL);
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, loan_id), NULL);
    put(sql, len, &pos, "ARRAY[");
    for (size_t i = 0; i < n; i++) {
        if (t[i].instalment > 0)
            put(sql, len, &pos, "%s%d", i ? "," : "", t[i].instalment);
        else
            put(sql, len, &pos, "%sNULL", i ? "," : "");
    }
    put(sql, len, &pos, "]::integer[], ");
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, invoice), NULL);
    put(sql, len, &pos, "array_fill(NULL::text, ARRAY[%zu]), ", n); /* remittance text */
    put(sql, len, &pos, "ARRAY[");
    for (size_t i = 0; i < n; i++) {
        if (t[i].original_id > 0)
            put(sql, len, &pos, "%s%lld", i ? "," : "", (long long)t[i].original_id);
        else
            put(sql, len, &pos, "%sNULL", i ? "," : "");
    }
    put(sql, len, &pos, "]::bigint[], ");
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, return_reason), NULL);
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, status), "ACSC");
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, reason), NULL);
    put_text_array(sql, len, &pos, t, n, offsetof(struct tx, reason_text), NULL);
    put(sql, len, &pos, "array_fill(1767225600000::bigint, ARRAY[%zu]), ", n); /* received */
    /* forwarded, decided (schema/013's timeline) */
    put(sql, len, &pos,
        "array_fill(NULL::bigint, ARRAY[%zu]), array_fill(NULL::bigint, ARRAY[%zu]))", n, n);

    PGresult *r = h_query_as_switch(h, sql, err, sizeof(err));
    CHECK(r != NULL, "post_batch: %s", err);
    int64_t window = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *kind = PQgetvalue(r, i, 0);
        if (strcmp(kind, "batch") == 0) {
            window = strtoll(PQgetvalue(r, i, 1), NULL, 10);
            continue;
        }
        CHECK(false, "post_batch: transfer %s came back as '%s' (fee %s, fee payer %s)",
              PQgetvalue(r, i, 1), kind, PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
    }
    PQclear(r);
    CHECK(window > 0, "post_batch returned no batch row");
    fprintf(stderr, "   posted %zu transfers into window %lld\n", n, (long long)window);
    return window;
}

static int64_t account(struct harness *h, const char *participant, const char *kind)
{
    return h_sql_int(h, "SELECT id FROM accounts WHERE participant = '%s' AND kind = '%s'",
                     participant, kind);
}

static void build_ledger(struct harness *h)
{
    char err[1024];
    TEST_STEP("window 1: payments with and without fees, a rejection");
    /* SUPPLIER_PAYMENT: 0.20 % charged to the payee, at least PKR 10 */
    const struct tx first[] = {
        {.id = 1001,
         .payer = "JAZZ",
         .payee = "EASY",
         .msg_id = "P2P-1",
         .amount = 250000,
         .purpose = "P2P"},
        {.id = 1002,
         .payer = "JAZZ",
         .payee = "KOKO",
         .msg_id = "BNPL-1",
         .amount = 150000,
         .purpose = "BNPL_REPAYMENT",
         .loan_id = "LN-42",
         .instalment = 3},
        {.id = 1003,
         .payer = "MEZN",
         .payee = "SADA",
         .msg_id = "SUP-1",
         .amount = 1000000,
         .fee = 2000,
         .fee_payer = "SADA",
         .purpose = "SUPPLIER_PAYMENT",
         .invoice = "INV-1003"},
        /* 0.20 % of PKR 3,000 is PKR 6: the minimum applies */
        {.id = 1004,
         .payer = "EASY",
         .payee = "NAYA",
         .msg_id = "SUP-2",
         .amount = 300000,
         .fee = 1000,
         .fee_payer = "NAYA",
         .purpose = "SUPPLIER_PAYMENT",
         .invoice = "INV-1004"},
        {.id = 1005,
         .payer = "JAZZ",
         .payee = "NAYA",
         .msg_id = "P2P-2",
         .amount = 90000,
         .purpose = "P2P",
         .status = "RJCT",
         .reason = "AC04",
         .reason_text = "account closed"},
    };
    ids.w1 = post(h, first, sizeof(first) / sizeof(first[0]));

    TEST_STEP("window 1: a partial return (fee refunded pro rata) and a full one");
    const struct tx returns[] = {
        {.id = 1006,
         .kind = "return",
         .payer = "SADA",
         .payee = "MEZN",
         .msg_id = "RET-1",
         .amount = 400000,
         .fee = 800,
         .fee_payer = "SADA",
         .purpose = "SUPPLIER_PAYMENT",
         .original_id = 1003,
         .return_reason = "AM09"},
        {.id = 1007,
         .kind = "return",
         .payer = "NAYA",
         .payee = "EASY",
         .msg_id = "RET-2",
         .amount = 300000,
         .fee = 1000,
         .fee_payer = "NAYA",
         .purpose = "SUPPLIER_PAYMENT",
         .original_id = 1004,
         .return_reason = "CUST"},
    };
    CHECK_INT(post(h, returns, 2), ids.w1);
    CHECK_INT(h_sql_int(h, "SELECT count(*) FROM ledger_entries WHERE transfer_id = 1005"), 0);

    TEST_STEP("close window 1 and settle it, as the switch (proposed by one supervisor, "
              "approved by another)");
    char sql[512];
    PGresult *r = h_query_as_switch(
        h, "SELECT closed_id, opened_id FROM close_window('op', 'operator', 'A1', repeat('a', 64))",
        err, sizeof(err));
    CHECK(r != NULL, "close_window: %s", err);
    CHECK_INT(strtoll(PQgetvalue(r, 0, 0), NULL, 10), ids.w1);
    ids.w2 = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    snprintf(sql, sizeof(sql),
             "SELECT id FROM proposal_create('sup1', 'supervisor', 'B1', repeat('b', 64), "
             "'settle', '%lld', '{}', 60)",
             (long long)ids.w1);
    r = h_query_as_switch(h, sql, err, sizeof(err));
    CHECK(r != NULL, "proposal_create: %s", err);
    long long proposal = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    snprintf(sql, sizeof(sql),
             "SELECT * FROM proposal_approve_settle(%lld, 'sup2', 'supervisor', 'C1', "
             "repeat('c', 64))",
             proposal);
    CHECK(h_sql_as_switch(h, sql, err, sizeof(err))[0] == '\0', "settle: %s", err);
    fprintf(stderr, "   window %lld settled, window %lld open\n", (long long)ids.w1,
            (long long)ids.w2);

    TEST_STEP("window 2: more payments, and the rest of the partly returned one");
    const struct tx second[] = {
        {.id = 1008,
         .payer = "EASY",
         .payee = "JAZZ",
         .msg_id = "P2P-3",
         .amount = 70000,
         .purpose = "P2P"},
        {.id = 1009,
         .payer = "JAZZ",
         .payee = "MEZN",
         .msg_id = "SUP-3",
         .amount = 2000000,
         .fee = 4000,
         .fee_payer = "MEZN",
         .purpose = "SUPPLIER_PAYMENT",
         .invoice = "INV-1009"},
        /* 1003's whole fee is refunded once its whole amount is: 2000 - 800 */
        {.id = 1010,
         .kind = "return",
         .payer = "SADA",
         .payee = "MEZN",
         .msg_id = "RET-3",
         .amount = 600000,
         .fee = 1200,
         .fee_payer = "SADA",
         .purpose = "SUPPLIER_PAYMENT",
         .original_id = 1003,
         .return_reason = "CUST"},
    };
    CHECK_INT(post(h, second, 3), ids.w2);
    CHECK_INT(h_sql_int(h, "SELECT sum(fee) FROM transfers WHERE original_id = 1003"), 2000);
    /* JAZZ ends the window in debt: the caps check has a position to judge */
    CHECK_INT(h_sql_int(h, "SELECT balance FROM accounts WHERE participant = 'JAZZ' AND "
                           "kind = 'position'"),
              70000 - 2000000);
}

/* ---------------------------------------------------------- reconcile() */

struct outcome {
    char status[N_CHECKS][16];
    char detail[N_CHECKS][512];
};

static int check_index(const char *name)
{
    for (int i = 0; i < N_CHECKS; i++) {
        if (strcmp(check_names[i], name) == 0)
            return i;
    }
    CHECK(false, "no check named '%s'", name);
    return -1;
}

/* Reads reconcile()'s rows: exactly the ten checks, in their order. */
static void read_outcome(PGresult *r, struct outcome *o)
{
    CHECK_INT(PQntuples(r), N_CHECKS);
    for (int i = 0; i < N_CHECKS; i++) {
        CHECK_STR(PQgetvalue(r, i, 0), check_names[i]);
        snprintf(o->status[i], sizeof(o->status[i]), "%s", PQgetvalue(r, i, 1));
        snprintf(o->detail[i], sizeof(o->detail[i]), "%s", PQgetvalue(r, i, 2));
    }
}

static const char reconcile_sql[] = "SELECT check_name, status, detail FROM reconcile()";

static void expect_all_ok(const struct outcome *o, const char *who)
{
    for (int i = 0; i < N_CHECKS; i++) {
        fprintf(stderr, "   %-36s %-6s %s\n", check_names[i], o->status[i], o->detail[i]);
        CHECK_STR(o->status[i], "ok");
    }
    fprintf(stderr, "   (as %s)\n", who);
}

/* One corruption and what reconcile() must say about it. */
struct plant {
    const char *what;        /* printed */
    const char *sql;         /* run with the triggers off, rolled back */
    const char *target;      /* the check that exists to find it; NULL: no corruption */
    const char *detail;      /* a part of target's detail, when it says how many of what */
    const char *const *also; /* NULL-terminated: the checks it cannot help tripping too */
};

#define ALSO(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Plants p->sql in a superuser transaction with the triggers off, runs
 * reconcile() in it and rolls back. CHECKs that the target failed (with
 * p->detail in its detail), that each check of p->also failed, and that
 * every other check is 'ok'. */
static void plant(struct harness *h, const struct plant *p)
{
    fprintf(stderr, "   planted: %s\n", p->what);
    PQclear(h_sql(h, "BEGIN; SET LOCAL session_replication_role = replica; %s", p->sql));
    struct outcome o;
    PGresult *r = h_sql(h, "%s", reconcile_sql);
    read_outcome(r, &o);
    PQclear(r);
    PQclear(h_sql(h, "ROLLBACK"));

    bool expected[N_CHECKS] = {false};
    if (p->target != NULL)
        expected[check_index(p->target)] = true;
    for (size_t i = 0; p->also != NULL && p->also[i] != NULL; i++)
        expected[check_index(p->also[i])] = true;
    for (int i = 0; i < N_CHECKS; i++) {
        if (strcmp(o.status[i], "ok") != 0 || expected[i])
            fprintf(stderr, "   -> %s: %s: %s\n", check_names[i], o.status[i], o.detail[i]);
        CHECK_STR(o.status[i], expected[i] ? "failed" : "ok");
    }
    if (p->target != NULL && p->detail != NULL) {
        const char *d = o.detail[check_index(p->target)];
        CHECK(strstr(d, p->detail) != NULL, "'%s' lacks \"%s\"", p->target, p->detail);
    }
}

/* Appends the INSERT of a forged pair of legs for transfer id in window:
 * amount moved on leg ('principal' or 'fee') from one account to the other,
 * -amount on from and +amount on to, so the pair balances. */
static void put_legs(char *sql, size_t len, size_t *pos, int64_t id, int64_t window,
                     const char *leg, int64_t from, int64_t to, int64_t amount)
{
    put(sql, len, pos,
        "INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg) "
        "VALUES (%lld, %lld, %lld, %lld, '%s'), (%lld, %lld, %lld, %lld, '%s');",
        (long long)id, (long long)window, (long long)from, -(long long)amount, leg, (long long)id,
        (long long)window, (long long)to, (long long)amount, leg);
}

static void plant_each(struct harness *h)
{
    char sql[4096];
    const size_t len = sizeof(sql);
    size_t pos;

    TEST_STEP("postings balanced");
    /* Any unbalanced transfer posting also differs from the legs its row
     * implies (those always balance): the two checks back each other up. */
    snprintf(sql, sizeof(sql),
             "INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg) "
             "VALUES (1008, %lld, %lld, 5, 'principal');" RESYNC_BALANCES,
             (long long)ids.w2, (long long)ids.easy_pos);
    plant(h, &(struct plant){.what = "a one-legged entry (+5 to EASY) for settled transfer 1008",
                             .sql = sql,
                             .target = "postings balanced",
                             .detail = "1 not summing to zero",
                             .also = ALSO("postings match their transfers")});

    TEST_STEP("balances equal entries");
    snprintf(sql, sizeof(sql), "UPDATE accounts SET balance = balance + 1 WHERE id = %lld;",
             (long long)ids.koko_pos);
    plant(h, &(struct plant){.what = "KOKO's position balance raised by 1 paisa",
                             .sql = sql,
                             .target = "balances equal entries",
                             .detail = "1 accounts"});

    TEST_STEP("settled transfers in a window");
    pos = 0;
    put(sql, len, &pos,
        "INSERT INTO transfers (id, payer, msg_id, fingerprint, payee, amount, currency, "
        "purpose, status, window_id, received_at) "
        "VALUES (1100, 'KOKO', 'FORGED-1', decode(repeat('ab', 32), 'hex'), 'EASY', 100, "
        "'PKR', 'P2P', 'ACSC', %lld, now());",
        (long long)ids.w2 + 1000);
    put_legs(sql, len, &pos, 1100, ids.w2 + 1000, "principal", ids.koko_pos, ids.easy_pos, 100);
    put(sql, len, &pos, RESYNC_BALANCES);
    plant(h, &(struct plant){.what = "ACSC transfer 1100, with its legs, in a window that does "
                                     "not exist",
                             .sql = sql,
                             .target = "settled transfers in a window",
                             .detail = "1 settled transfers"});

    TEST_STEP("postings match their transfers");
    snprintf(sql, sizeof(sql),
             "UPDATE ledger_entries SET account_id = %lld "
             "WHERE transfer_id = 1008 AND leg = 'principal' AND amount > 0;" RESYNC_BALANCES,
             (long long)ids.naya_pos);
    plant(h, &(struct plant){.what = "1008's credit leg re-pointed from JAZZ's position to "
                                     "NAYA's (balanced)",
                             .sql = sql,
                             .target = "postings match their transfers",
                             .detail = "1 transfers whose entries differ from the legs their row "
                                       "implies (accounts, amounts, fee, window; 0 with more"});
    plant(h, &(struct plant){.what = "transfer 1009 posted a second time (its four legs again)",
                             .sql = "INSERT INTO ledger_entries (transfer_id, window_id, "
                                    "account_id, amount, leg) "
                                    "SELECT transfer_id, window_id, account_id, amount, leg "
                                    "FROM ledger_entries WHERE transfer_id = 1009;" RESYNC_BALANCES,
                             .target = "postings match their transfers",
                             .detail = "1 transfers whose entries differ from the legs their row "
                                       "implies (accounts, amounts, fee, window; 1 with more"});
    plant(h, &(struct plant){.what = "1009's fee legs 4001 instead of 4000 (balanced)",
                             .sql = "UPDATE ledger_entries SET amount = amount + sign(amount) "
                                    "WHERE transfer_id = 1009 AND leg = 'fee';" RESYNC_BALANCES,
                             .target = "postings match their transfers",
                             .detail = "1 transfers whose entries differ from the legs their row "
                                       "implies (accounts, amounts, fee, window; 0 with more"});
    pos = 0;
    put_legs(sql, len, &pos, 1005, ids.w2, "principal", ids.jazz_pos, ids.naya_pos, 90000);
    put(sql, len, &pos, RESYNC_BALANCES);
    plant(h, &(struct plant){.what = "a balanced posting for rejected transfer 1005",
                             .sql = sql,
                             .target = "postings match their transfers",
                             .detail = "1 transfers whose entries differ from the legs their row "
                                       "implies (accounts, amounts, fee, window; 1 with more"});

    TEST_STEP("window reports sum to zero");
    /* Lines that each match the entries sum to the sum of balanced
     * postings, zero: a report that does not sum to zero has a line the
     * entries do not bear out. */
    snprintf(sql, sizeof(sql),
             "INSERT INTO window_positions (window_id, account_id, participant, net, postings) "
             "VALUES (%lld, %lld, 'JAZZ', 5, 0);",
             (long long)ids.w1, (long long)ids.jazz_set);
    plant(h, &(struct plant){.what = "a line (+5, JAZZ's settlement account) added to window 1's "
                                     "report",
                             .sql = sql,
                             .target = "window reports sum to zero",
                             .detail = "1 closed windows",
                             .also = ALSO("window reports cover their postings")});

    TEST_STEP("window reports cover their postings");
    pos = 0;
    put(sql, len, &pos,
        "INSERT INTO transfers (id, payer, msg_id, fingerprint, payee, amount, currency, "
        "purpose, status, window_id, received_at) "
        "VALUES (1101, 'KOKO', 'FORGED-2', decode(repeat('ab', 32), 'hex'), 'EASY', 100, "
        "'PKR', 'P2P', 'ACSC', %lld, now());",
        (long long)ids.w1);
    put_legs(sql, len, &pos, 1101, ids.w1, "principal", ids.koko_pos, ids.easy_pos, 100);
    put(sql, len, &pos, RESYNC_BALANCES);
    plant(h, &(struct plant){.what = "transfer 1101 and its balanced legs slipped into window 1 "
                                     "after its report",
                             .sql = sql,
                             .target = "window reports cover their postings",
                             .detail = "2 report lines that differ from the entries, 1 windows"});
    /* the report and its settlement agree with each other, not with the
     * postings: only this check ties the report to the entries */
    snprintf(sql, sizeof(sql),
             "UPDATE window_positions SET net = net + CASE account_id WHEN %lld THEN -1 ELSE 1 "
             "END WHERE window_id = %lld AND account_id IN (%lld, %lld);"
             "UPDATE ledger_entries SET amount = amount + CASE account_id WHEN %lld THEN 1 "
             "WHEN %lld THEN -1 WHEN %lld THEN -1 ELSE 1 END "
             "WHERE window_id = %lld AND leg = 'settlement' "
             "AND account_id IN (%lld, %lld, %lld, %lld);" RESYNC_BALANCES,
             (long long)ids.jazz_pos, (long long)ids.w1, (long long)ids.jazz_pos,
             (long long)ids.easy_pos, (long long)ids.jazz_pos, (long long)ids.jazz_set,
             (long long)ids.easy_pos, (long long)ids.w1, (long long)ids.jazz_pos,
             (long long)ids.jazz_set, (long long)ids.easy_pos, (long long)ids.easy_set);
    plant(h, &(struct plant){.what = "window 1's report moves 1 paisa from JAZZ's line to EASY's, "
                                     "and its settlement with it",
                             .sql = sql,
                             .target = "window reports cover their postings",
                             .detail = "2 report lines that differ from the entries, 0 windows"});

    TEST_STEP("settlements match their reports");
    snprintf(sql, sizeof(sql),
             "UPDATE ledger_entries SET account_id = %lld "
             "WHERE window_id = %lld AND leg = 'settlement' AND account_id = %lld;" RESYNC_BALANCES,
             (long long)ids.naya_set, (long long)ids.w1, (long long)ids.easy_set);
    plant(h, &(struct plant){.what = "window 1's settlement pays EASY's +net into NAYA's "
                                     "settlement account (position side intact)",
                             .sql = sql,
                             .target = "settlements match their reports",
                             .detail = "2 settlement lines"});

    TEST_STEP("returns within their originals");
    pos = 0;
    put(sql, len, &pos,
        "INSERT INTO transfers (id, kind, payer, msg_id, fingerprint, payee, amount, "
        "currency, purpose, original_id, return_reason, status, window_id, received_at) "
        "VALUES (1102, 'return', 'SADA', 'FORGED-3', decode(repeat('ab', 32), 'hex'), "
        "'MEZN', 1, 'PKR', 'SUPPLIER_PAYMENT', 1003, 'CUST', 'ACSC', %lld, now());",
        (long long)ids.w2);
    put_legs(sql, len, &pos, 1102, ids.w2, "principal", ids.sada_pos, ids.mezn_pos, 1);
    put(sql, len, &pos, RESYNC_BALANCES);
    plant(h, &(struct plant){.what = "return 1102 of 1 paisa more of 1003, returned in full "
                                     "already",
                             .sql = sql,
                             .target = "returns within their originals",
                             .detail = "1 originals"});
    pos = 0;
    put(sql, len, &pos,
        "INSERT INTO transfers (id, kind, payer, msg_id, fingerprint, payee, amount, fee, "
        "fee_payer, currency, purpose, original_id, return_reason, status, window_id, "
        "received_at) "
        "VALUES (1103, 'return', 'MEZN', 'FORGED-4', decode(repeat('ab', 32), 'hex'), "
        "'JAZZ', 1000000, 4001, 'MEZN', 'PKR', 'SUPPLIER_PAYMENT', 1009, 'CUST', 'ACSC', "
        "%lld, now());",
        (long long)ids.w2);
    put_legs(sql, len, &pos, 1103, ids.w2, "principal", ids.mezn_pos, ids.jazz_pos, 1000000);
    /* its refund of 4001, from the fee account to MEZN */
    put_legs(sql, len, &pos, 1103, ids.w2, "fee", ids.fee, ids.mezn_pos, 4001);
    put(sql, len, &pos, RESYNC_BALANCES);
    plant(h, &(struct plant){.what = "return 1103 of half of 1009 refunding 4001 of its 4000 fee",
                             .sql = sql,
                             .target = "returns within their originals",
                             .detail = "1 originals"});

    TEST_STEP("one open window");
    /* closed without its report, the window's postings are uncovered too */
    plant(h, &(struct plant){.what = "the open window closed directly, no successor opened",
                             .sql = "UPDATE settlement_windows SET state = 'closed', "
                                    "closed_at = now() WHERE state = 'open';",
                             .target = "one open window",
                             .detail = "0 open windows",
                             .also = ALSO("window reports cover their postings")});
    plant(h,
          &(struct plant){
              .what = "the open window closed with its report, as close_window would, no "
                      "successor opened",
              .sql = "UPDATE settlement_windows w SET state = 'closed', closed_at = now(), "
                     "postings = (SELECT count(*) FROM transfers t "
                     "WHERE t.window_id = w.id AND t.status = 'ACSC') WHERE state = 'open';"
                     "INSERT INTO window_positions (window_id, account_id, participant, net, "
                     "postings) "
                     "SELECT w.id, a.id, a.participant, "
                     "coalesce((SELECT sum(e.amount) FROM ledger_entries e "
                     "WHERE e.window_id = w.id AND e.account_id = a.id), 0), "
                     "(SELECT count(DISTINCT e.transfer_id) FROM ledger_entries e "
                     "WHERE e.window_id = w.id AND e.account_id = a.id) "
                     "FROM accounts a CROSS JOIN (SELECT max(id) AS id FROM settlement_windows) w "
                     "WHERE a.kind IN ('position', 'fee');",
              .target = "one open window",
              .detail = "0 open windows"});

    TEST_STEP("positions within their caps");
    plant(h, &(struct plant){.what = "JAZZ (position -1930000) given no cap and no grace",
                             .sql = "UPDATE participants SET ndc = 0, ndc_grace = NULL "
                                    "WHERE code = 'JAZZ';",
                             .target = "positions within their caps",
                             .detail = "JAZZ -1930000 below -0"});
    plant(h, &(struct plant){.what = "JAZZ's cap lowered to 0 with a grace of exactly its "
                                     "exposure (no corruption: every check 'ok')",
                             .sql = "UPDATE participants SET ndc = 0, ndc_grace = 1930000 "
                                    "WHERE code = 'JAZZ';"});
    plant(h, &(struct plant){.what = "JAZZ's cap lowered to 0 with a grace 1 paisa short of its "
                                     "exposure",
                             .sql = "UPDATE participants SET ndc = 0, ndc_grace = 1929999 "
                                    "WHERE code = 'JAZZ';",
                             .target = "positions within their caps",
                             .detail = "JAZZ -1930000 below -1929999"});
}

/* The checks that read window_positions, when the caller may not: never
 * 'ok', whatever the data. */
static void not_checked(struct harness *h)
{
    char err[1024];
    TEST_STEP("not checked: the switch may not read the window reports");
    PQclear(h_sql(h, "REVOKE SELECT ON window_positions FROM sikka_switch"));
    PGresult *r = h_query_as_switch(h, reconcile_sql, err, sizeof(err));
    CHECK(r != NULL, "reconcile as the switch: %s", err);
    struct outcome o;
    read_outcome(r, &o);
    PQclear(r);
    PQclear(h_sql(h, "GRANT SELECT ON window_positions TO sikka_switch"));
    static const char *const readers[] = {"window reports sum to zero",
                                          "window reports cover their postings",
                                          "settlements match their reports"};
    bool reads[N_CHECKS] = {false};
    for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++)
        reads[check_index(readers[i])] = true;
    for (int i = 0; i < N_CHECKS; i++) {
        fprintf(stderr, "   %-36s %-12s %s\n", check_names[i], o.status[i], o.detail[i]);
        CHECK_STR(o.status[i], reads[i] ? "not checked" : "ok");
    }
}

int main(void)
{
    struct harness h;
    h_init(&h, "reconcile");
    ids.jazz_pos = account(&h, "JAZZ", "position");
    ids.easy_pos = account(&h, "EASY", "position");
    ids.koko_pos = account(&h, "KOKO", "position");
    ids.mezn_pos = account(&h, "MEZN", "position");
    ids.sada_pos = account(&h, "SADA", "position");
    ids.naya_pos = account(&h, "NAYA", "position");
    ids.jazz_set = account(&h, "JAZZ", "settlement");
    ids.easy_set = account(&h, "EASY", "settlement");
    ids.naya_set = account(&h, "NAYA", "settlement");
    ids.fee = h_sql_int(&h, "SELECT id FROM accounts WHERE kind = 'fee'");

    build_ledger(&h);

    TEST_STEP("the ledger reconciles: every check 'ok'");
    struct outcome o;
    PGresult *r = h_sql(&h, "%s", reconcile_sql);
    read_outcome(r, &o);
    PQclear(r);
    expect_all_ok(&o, "superuser");
    char err[1024];
    r = h_query_as_switch(&h, reconcile_sql, err, sizeof(err));
    CHECK(r != NULL, "reconcile as the switch: %s", err);
    read_outcome(r, &o);
    PQclear(r);
    for (int i = 0; i < N_CHECKS; i++)
        CHECK_STR(o.status[i], "ok");
    fprintf(stderr, "   (and as sikka_switch)\n");

    plant_each(&h);
    not_checked(&h);

    TEST_STEP("every plant rolled back: the ledger still reconciles, as the switch");
    r = h_query_as_switch(&h, reconcile_sql, err, sizeof(err));
    CHECK(r != NULL, "reconcile as the switch: %s", err);
    read_outcome(r, &o);
    PQclear(r);
    for (int i = 0; i < N_CHECKS; i++)
        CHECK_STR(o.status[i], "ok");

    h_cleanup(&h);
    return 0;
}
