/* The database enforces the ledger's invariants itself: an unbalanced
 * posting is refused, ledger entries and transfers are never updated or
 * deleted (the switch's role has no such grant and triggers stop even the
 * owner), and entries must belong to an ACSC transfer in the open window. */
#include "harness.h"

static void expect_error(const char *what, const char *err, const char *needle)
{
    CHECK(err[0] != '\0', "%s: the database accepted it", what);
    CHECK(strstr(err, needle) != NULL, "%s: error \"%s\" lacks \"%s\"", what, err, needle);
    fprintf(stderr, "   %s refused: %.*s\n", what, (int)strcspn(err, "\n"), err);
}

static const char *as_super(struct harness *h, const char *sql, char *err, size_t len)
{
    PGresult *r = PQexec(h->db, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        err[0] = '\0';
    else
        snprintf(err, len, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return err;
}

int main(void)
{
    struct harness h;
    char err[1024];
    h_init(&h, "database");
    int64_t jazz = h_sql_int(&h, "SELECT id FROM accounts WHERE participant='JAZZ' AND "
                                 "kind='position'");
    int64_t koko = h_sql_int(&h, "SELECT id FROM accounts WHERE participant='KOKO' AND "
                                 "kind='position'");
    char sql[2048];

    TEST_STEP("a balanced posting through post_batch is accepted");
    snprintf(
        sql, sizeof(sql),
        "SELECT * FROM post_batch(1, '{101}', '{transfer}', '{JAZZ}', '{M1}', "
        "ARRAY[repeat('ab', 32)], '{E1}', '{KOKO}', '{A}', '{B}', '{500}', '{0}', '{PKR}', "
        "'{P2P}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{ACSC}', '{NULL}', "
        "'{NULL}', '{0}', '{101,101}', '{%lld,%lld}', '{-500,500}', "
        "'{principal,principal}')",
        (long long)jazz, (long long)koko);
    CHECK(h_sql_as_switch(&h, sql, err, sizeof(err))[0] == '\0', "%s", err);
    CHECK_INT(h_sql_int(&h, "SELECT balance FROM accounts WHERE id = %lld", (long long)jazz), -500);

    TEST_STEP("an unbalanced posting is refused, as the switch and as the owner");
    snprintf(
        sql, sizeof(sql),
        "SELECT * FROM post_batch(1, '{102}', '{transfer}', '{JAZZ}', '{M2}', "
        "ARRAY[repeat('ab', 32)], '{E2}', '{KOKO}', '{A}', '{B}', '{500}', '{0}', '{PKR}', "
        "'{P2P}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{ACSC}', '{NULL}', "
        "'{NULL}', '{0}', '{102,102}', '{%lld,%lld}', '{-500,499}', "
        "'{principal,principal}')",
        (long long)jazz, (long long)koko);
    expect_error("unbalanced post_batch", h_sql_as_switch(&h, sql, err, sizeof(err)), "unbalanced");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE id = 102"), 0);
    snprintf(sql, sizeof(sql),
             "INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg) "
             "VALUES (101, 1, %lld, -7, 'principal')",
             (long long)jazz);
    expect_error("one-legged insert (owner)", as_super(&h, sql, err, sizeof(err)), "unbalanced");
    expect_error("one-legged insert (switch)", h_sql_as_switch(&h, sql, err, sizeof(err)),
                 "unbalanced");

    TEST_STEP("UPDATE and DELETE of ledger entries are refused");
    expect_error(
        "UPDATE as switch",
        h_sql_as_switch(&h, "UPDATE ledger_entries SET amount = amount * 2", err, sizeof(err)),
        "permission denied");
    expect_error("DELETE as switch",
                 h_sql_as_switch(&h, "DELETE FROM ledger_entries", err, sizeof(err)),
                 "permission denied");
    expect_error("UPDATE as owner",
                 as_super(&h, "UPDATE ledger_entries SET amount = amount * 2", err, sizeof(err)),
                 "append-only");
    expect_error("DELETE as owner", as_super(&h, "DELETE FROM ledger_entries", err, sizeof(err)),
                 "append-only");
    expect_error("TRUNCATE as owner", as_super(&h, "TRUNCATE ledger_entries", err, sizeof(err)),
                 "append-only");
    expect_error("UPDATE transfer as owner",
                 as_super(&h, "UPDATE transfers SET amount = 1", err, sizeof(err)), "append-only");
    expect_error("balance forged by the switch",
                 h_sql_as_switch(&h, "UPDATE accounts SET balance = 0", err, sizeof(err)),
                 "permission denied");
    CHECK_INT(h_sql_int(&h, "SELECT sum(amount) FROM ledger_entries"), 0);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM ledger_entries"), 2);

    TEST_STEP("entries of a transfer that is not ACSC, or outside the open window, are refused");
    snprintf(
        sql, sizeof(sql),
        "SELECT * FROM post_batch(1, '{103}', '{transfer}', '{JAZZ}', '{M3}', "
        "ARRAY[repeat('ab', 32)], '{E3}', '{KOKO}', '{A}', '{B}', '{500}', '{0}', '{PKR}', "
        "'{P2P}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{RJCT}', '{AC01}', "
        "'{x}', '{0}', '{103,103}', '{%lld,%lld}', '{-500,500}', "
        "'{principal,principal}')",
        (long long)jazz, (long long)koko);
    expect_error("entries for a rejection", h_sql_as_switch(&h, sql, err, sizeof(err)),
                 "settled (ACSC)");
    as_super(&h, "INSERT INTO settlement_windows (state, closed_at) VALUES ('closed', now())", err,
             sizeof(err));
    CHECK(err[0] == '\0', "%s", err);
    snprintf(
        sql, sizeof(sql),
        "SELECT * FROM post_batch(2, '{104}', '{transfer}', '{JAZZ}', '{M4}', "
        "ARRAY[repeat('ab', 32)], '{E4}', '{KOKO}', '{A}', '{B}', '{500}', '{0}', '{PKR}', "
        "'{P2P}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{ACSC}', '{NULL}', "
        "'{NULL}', '{0}', '{104,104}', '{%lld,%lld}', '{-500,500}', "
        "'{principal,principal}')",
        (long long)jazz, (long long)koko);
    expect_error("posting into a closed window", h_sql_as_switch(&h, sql, err, sizeof(err)),
                 "open window");

    TEST_STEP("a second open window is refused");
    expect_error("two open windows",
                 as_super(&h, "INSERT INTO settlement_windows DEFAULT VALUES", err, sizeof(err)),
                 "duplicate key");

    TEST_STEP("a debit past the net debit cap is refused by the database too");
    as_super(&h, "UPDATE participants SET ndc = 600 WHERE code = 'JAZZ'", err, sizeof(err));
    snprintf(
        sql, sizeof(sql),
        "SELECT * FROM post_batch(1, '{105}', '{transfer}', '{JAZZ}', '{M5}', "
        "ARRAY[repeat('ab', 32)], '{E5}', '{KOKO}', '{A}', '{B}', '{200}', '{0}', '{PKR}', "
        "'{P2P}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{ACSC}', '{NULL}', "
        "'{NULL}', '{0}', '{105,105}', '{%lld,%lld}', '{-200,200}', "
        "'{principal,principal}')",
        (long long)jazz, (long long)koko);
    expect_error("over the cap", h_sql_as_switch(&h, sql, err, sizeof(err)), "net debit cap");

    h_cleanup(&h);
    return 0;
}
