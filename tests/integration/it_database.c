/* The database enforces the ledger's invariants itself, whoever asks: the
 * switch's role writes only through post_batch(), which derives each
 * posting's legs and fee from the transfer row and the fee schedule; an
 * unbalanced posting, a second posting of a transfer, entries of a transfer
 * that is not settled or outside the open window are refused even to the
 * owner; ledger entries and transfers are never updated or deleted; the net
 * debit cap applies to positions that fall (not to a payee netting a credit
 * after its fee), and a lowered cap keeps the old one as a grace. */
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

/* One transfer for post_batch, as the switch would send it. */
struct row {
    int id;
    const char *payer, *payee, *msg_id, *purpose, *status;
    long long amount, fee; /* fee: what the caller expects */
    const char *fee_payer; /* "NULL" for none */
};

/* SELECT kind, id, fee, fee_payer FROM post_batch(<one transfer>), under the
 * fence's current epoch, no payee notice */
static void post_batch_sql(char *sql, size_t len, const struct row *r)
{
    snprintf(sql, len,
             "SELECT kind, id, fee, fee_payer FROM post_batch((SELECT epoch FROM switch_fence), "
             "'{f}', '{%d}', '{transfer}', '{%s}', "
             "'{%s}', ARRAY[repeat('ab', 32)], '{E%d}', '{%s}', '{A}', '{B}', '{%lld}', "
             "'{%lld}', '{%s}', '{PKR}', '{%s}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', "
             "'{NULL}', '{NULL}', '{%s}', '{%s}', '{%s}', '{0}', '{NULL}', '{NULL}')",
             r->id, r->payer, r->msg_id, r->id, r->payee, r->amount, r->fee, r->fee_payer,
             r->purpose, r->status, strcmp(r->status, "RJCT") == 0 ? "AC01" : "NULL",
             strcmp(r->status, "RJCT") == 0 ? "x" : "NULL");
}

/* SELECT kind, id FROM post_batch(<one settled return of `original`>), as
 * the switch would send it */
static void post_return_sql(char *sql, size_t len, int id, const char *payer, const char *payee,
                            long long amount, int original)
{
    snprintf(sql, len,
             "SELECT kind, id FROM post_batch((SELECT epoch FROM switch_fence), '{f}', '{%d}', "
             "'{return}', '{%s}', '{R%d}', ARRAY[repeat('ab', 32)], '{E%d}', '{%s}', '{A}', "
             "'{B}', '{%lld}', '{0}', '{NULL}', '{PKR}', '{SUPPLIER_PAYMENT}', '{NULL}', "
             "'{NULL}', '{NULL}', '{NULL}', '{%d}', '{AC04}', '{ACSC}', '{NULL}', '{NULL}', "
             "'{0}', '{NULL}', '{NULL}')",
             id, payer, id, id, payee, amount, original);
}

/* INSERT of one settled return of `original` into the open window, as only
 * the owner may write one (past post_batch) */
static void insert_return_sql(char *sql, size_t len, int id, const char *payer, const char *payee,
                              long long amount, int original)
{
    snprintf(sql, len,
             "INSERT INTO transfers (id, kind, payer, msg_id, fingerprint, payee, amount, status, "
             "original_id, return_reason, window_id, received_at) VALUES (%d, 'return', '%s', "
             "'R%d', decode(repeat('ab', 32), 'hex'), '%s', %lld, 'ACSC', %d, 'AC04', "
             "(SELECT id FROM settlement_windows WHERE state = 'open'), now())",
             id, payer, id, payee, amount, original);
}

static const char *post(struct harness *h, const struct row *r, char *err, size_t len)
{
    char sql[2048];
    post_batch_sql(sql, sizeof(sql), r);
    return h_sql_as_switch(h, sql, err, len);
}

int main(void)
{
    struct harness h;
    char err[1024], sql[2048];
    h_init(&h, "database");
    int64_t jazz = h_sql_int(&h, "SELECT id FROM accounts WHERE participant='JAZZ' AND "
                                 "kind='position'");

    TEST_STEP("post_batch derives a posting's legs: the caller names no account and no amount");
    struct row p2p = {101, "JAZZ", "KOKO", "M1", "P2P", "ACSC", 500, 0, "NULL"};
    CHECK(post(&h, &p2p, err, sizeof(err))[0] == '\0', "%s", err);
    CHECK_INT(h_position_balance(&h, "JAZZ"), -500);
    CHECK_INT(h_position_balance(&h, "KOKO"), 500);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM ledger_entries WHERE transfer_id = 101"), 2);
    CHECK_INT(h_sql_int(&h, "SELECT window_id FROM transfers WHERE id = 101"),
              h_sql_int(&h, "SELECT id FROM settlement_windows WHERE state = 'open'"));

    TEST_STEP("the fee comes from the schedule, whatever the caller expected");
    /* a supplier payment of PKR 10,000: 0.20 % = PKR 20, charged to the payee */
    struct row supplier = {102,    "MEZN",  "EASY", "M2",  "SUPPLIER_PAYMENT",
                           "ACSC", 1000000, 5,      "MEZN"};
    post_batch_sql(sql, sizeof(sql), &supplier);
    PGresult *r = h_sql(&h, "%s", sql);
    PQclear(r);
    CHECK_INT(h_sql_int(&h, "SELECT fee FROM transfers WHERE id = 102"), 2000);
    CHECK(strcmp(PQgetvalue(r = h_sql(&h, "SELECT fee_payer FROM transfers WHERE id = 102"), 0, 0),
                 "EASY") == 0,
          "the fee payer is the payee");
    PQclear(r);
    CHECK_INT(h_position_balance(&h, "EASY"), 998000);
    CHECK_INT(h_sql_int(&h, "SELECT balance FROM accounts WHERE kind = 'fee'"), 2000);
    /* what the caller is told: the fee written differs from its expectation */
    supplier.id = 103;
    supplier.msg_id = "M3";
    post_batch_sql(sql, sizeof(sql), &supplier);
    r = h_sql(&h, "%s", sql);
    bool told = false;
    for (int i = 0; i < PQntuples(r); i++)
        told |= strcmp(PQgetvalue(r, i, 0), "fee") == 0 &&
                strcmp(PQgetvalue(r, i, 2), "2000") == 0 &&
                strcmp(PQgetvalue(r, i, 3), "EASY") == 0;
    PQclear(r);
    CHECK(told, "post_batch reports the fee it decided when the caller expected another");

    TEST_STEP("a payment whose fee would take its whole amount is refused");
    struct row tiny = {104, "MEZN", "EASY", "M4", "SUPPLIER_PAYMENT", "ACSC", 1000, 1000, "EASY"};
    expect_error("PKR 10 supplier payment", post(&h, &tiny, err, sizeof(err)),
                 "transfers_fee_below_amount");

    TEST_STEP("the switch's role writes no table directly");
    snprintf(sql, sizeof(sql),
             "INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg) "
             "VALUES (101, 1, %lld, -7, 'principal')",
             (long long)jazz);
    expect_error("entry insert (switch)", h_sql_as_switch(&h, sql, err, sizeof(err)),
                 "permission denied");
    expect_error("transfer insert (switch)",
                 h_sql_as_switch(&h,
                                 "INSERT INTO transfers (id, payer, msg_id, fingerprint, amount, "
                                 "status, reason, received_at) VALUES (9, 'JAZZ', 'X', "
                                 "decode(repeat('ab', 32), 'hex'), 1, 'RJCT', 'X', now())",
                                 err, sizeof(err)),
                 "permission denied");
    expect_error(
        "UPDATE as switch",
        h_sql_as_switch(&h, "UPDATE ledger_entries SET amount = amount * 2", err, sizeof(err)),
        "permission denied");
    expect_error("DELETE as switch",
                 h_sql_as_switch(&h, "DELETE FROM ledger_entries", err, sizeof(err)),
                 "permission denied");
    expect_error("balance forged by the switch",
                 h_sql_as_switch(&h, "UPDATE accounts SET balance = 0", err, sizeof(err)),
                 "permission denied");
    expect_error(
        "window closed by hand (switch)",
        h_sql_as_switch(&h, "UPDATE settlement_windows SET state = 'closed'", err, sizeof(err)),
        "permission denied");

    TEST_STEP("even the owner cannot unbalance, double-post, update or delete");
    expect_error("one-legged insert (owner)", as_super(&h, sql, err, sizeof(err)), "unbalanced");
    /* post_batch's entries skip the trigger (it checks and applies them
     * itself) under a mark that only it can set: a session that sets the
     * mark's name itself, or writes entries after a post_batch in the same
     * transaction, is checked as ever */
    char forged[2560], then[4608];
    snprintf(forged, sizeof(forged), "SET LOCAL sikka.posting = 'post_batch'; %s", sql);
    expect_error("one-legged insert under a forged mark (owner)",
                 as_super(&h, forged, err, sizeof(err)), "unbalanced");
    struct row later = {120, "JAZZ", "KOKO", "M20", "P2P", "ACSC", 700, 0, "NULL"};
    post_batch_sql(then, sizeof(then), &later);
    snprintf(then + strlen(then), sizeof(then) - strlen(then), "; %s", sql);
    expect_error("one-legged insert after a post_batch (owner)",
                 as_super(&h, then, err, sizeof(err)), "unbalanced");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE id = 120"), 0);
    expect_error("second posting (owner)",
                 as_super(&h,
                          "INSERT INTO ledger_entries (transfer_id, window_id, account_id, "
                          "amount, leg) SELECT transfer_id, window_id, account_id, amount, leg "
                          "FROM ledger_entries WHERE transfer_id = 101",
                          err, sizeof(err)),
                 "already posted");
    expect_error("UPDATE as owner",
                 as_super(&h, "UPDATE ledger_entries SET amount = amount * 2", err, sizeof(err)),
                 "append-only");
    expect_error("DELETE as owner", as_super(&h, "DELETE FROM ledger_entries", err, sizeof(err)),
                 "append-only");
    expect_error("TRUNCATE as owner", as_super(&h, "TRUNCATE ledger_entries", err, sizeof(err)),
                 "append-only");
    expect_error("UPDATE transfer as owner",
                 as_super(&h, "UPDATE transfers SET amount = 1", err, sizeof(err)), "append-only");
    CHECK_INT(h_sql_int(&h, "SELECT sum(amount) FROM ledger_entries"), 0);

    TEST_STEP("entries of a rejected transfer, or outside the open window, are refused");
    struct row rjct = {105, "JAZZ", "KOKO", "M5", "P2P", "RJCT", 500, 0, "NULL"};
    CHECK(post(&h, &rjct, err, sizeof(err))[0] == '\0', "%s", err);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM ledger_entries WHERE transfer_id = 105"), 0);
    snprintf(sql, sizeof(sql),
             "INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg) "
             "SELECT 105, 1, id, CASE participant WHEN 'JAZZ' THEN -500 ELSE 500 END, "
             "'principal' FROM accounts WHERE kind = 'position' AND participant IN "
             "('JAZZ', 'KOKO')");
    expect_error("entries for a rejection (owner)", as_super(&h, sql, err, sizeof(err)),
                 "settled (ACSC)");

    TEST_STEP("a window closed behind the switch: the next posting goes to the new window");
    as_super(&h, "SELECT * FROM close_window('someone', NULL, NULL, NULL)", err, sizeof(err));
    CHECK(err[0] == '\0', "%s", err);
    struct row after = {106, "JAZZ", "KOKO", "M6", "P2P", "ACSC", 300, 0, "NULL"};
    CHECK(post(&h, &after, err, sizeof(err))[0] == '\0', "%s", err);
    CHECK_INT(h_sql_int(&h, "SELECT window_id FROM transfers WHERE id = 106"), 2);
    /* a transfer of the closed window and its legs, in one transaction */
    expect_error("entries into the closed window (owner)",
                 as_super(&h,
                          "BEGIN; INSERT INTO transfers (id, payer, msg_id, fingerprint, payee, "
                          "amount, status, window_id, received_at) VALUES (120, 'JAZZ', 'M20', "
                          "decode(repeat('ab', 32), 'hex'), 'KOKO', 10, 'ACSC', 1, now()); "
                          "INSERT INTO ledger_entries (transfer_id, window_id, account_id, "
                          "amount, leg) SELECT 120, 1, id, CASE participant WHEN 'JAZZ' THEN -10 "
                          "ELSE 10 END, 'principal' FROM accounts WHERE kind = 'position' AND "
                          "participant IN ('JAZZ', 'KOKO'); COMMIT",
                          err, sizeof(err)),
                 "open window");
    PQclear(PQexec(h.db, "ROLLBACK"));

    TEST_STEP("a second open window is refused");
    expect_error("two open windows",
                 as_super(&h, "INSERT INTO settlement_windows DEFAULT VALUES", err, sizeof(err)),
                 "duplicate key");

    TEST_STEP("a debit past the net debit cap is refused by the database too");
    /* the lowering keeps the old cap as a grace; this test ends it by hand */
    as_super(&h,
             "UPDATE participants SET ndc = 600 WHERE code = 'JAZZ'; "
             "UPDATE participants SET ndc_grace = NULL WHERE code = 'JAZZ'",
             err, sizeof(err));
    CHECK(err[0] == '\0', "%s", err);
    struct row over = {107, "JAZZ", "KOKO", "M7", "P2P", "ACSC", 200, 0, "NULL"};
    expect_error("over the cap", post(&h, &over, err, sizeof(err)), "net debit cap");

    TEST_STEP("a lowered cap keeps the old one as a grace until the switch ends it");
    CHECK_INT(h_position_balance(&h, "JAZZ"), -800);
    as_super(&h, "UPDATE participants SET ndc = 100 WHERE code = 'JAZZ'", err, sizeof(err));
    CHECK_INT(h_sql_int(&h, "SELECT ndc_grace FROM participants WHERE code = 'JAZZ'"), 600);
    over.id = 108;
    over.msg_id = "M8";
    expect_error("beyond the grace too", post(&h, &over, err, sizeof(err)), "net debit cap");
    as_super(&h, "UPDATE participants SET ndc = 2000 WHERE code = 'JAZZ'", err, sizeof(err));
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM participants WHERE code = 'JAZZ' AND "
                            "ndc_grace IS NULL"),
              1); /* raised: no grace */
    as_super(&h, "UPDATE participants SET ndc = 0 WHERE code = 'JAZZ'", err, sizeof(err));
    CHECK_INT(h_sql_int(&h, "SELECT ndc_grace FROM participants WHERE code = 'JAZZ'"), 2000);
    over.id = 109;
    over.msg_id = "M9";
    CHECK(post(&h, &over, err, sizeof(err))[0] == '\0', "a payment reserved under the old cap: %s",
          err);
    CHECK_INT(h_position_balance(&h, "JAZZ"), -1000);
    /* asked under a cap the row no longer has (a lowering the caller has not
     * applied): nothing ends */
    CHECK_INT(h_sql_int(&h, "SELECT participant_end_ndc_grace('JAZZ', 2000)"), 2000);
    /* ended: a position still beyond the new cap keeps a grace of its exposure */
    CHECK_INT(h_sql_int(&h, "SELECT participant_end_ndc_grace('JAZZ', 0)"), 1000);
    over.id = 110;
    over.msg_id = "M10";
    over.amount = 1;
    expect_error("one paisa past the exposure", post(&h, &over, err, sizeof(err)), "net debit cap");

    TEST_STEP("a payee netting a credit after its fee is not held to its cap");
    /* EASY below its cap (planted past the triggers), then paid a supplier
     * payment: its fee leg is a debit, but its position rises */
    as_super(
        &h,
        "BEGIN; SET LOCAL session_replication_role = replica; "
        "UPDATE participants SET ndc = 0, ndc_grace = NULL WHERE code = 'EASY'; "
        "UPDATE accounts SET balance = -1000 WHERE participant = 'EASY' AND kind = 'position'; "
        "COMMIT",
        err, sizeof(err));
    CHECK(err[0] == '\0', "%s", err);
    struct row easy_pays = {111, "EASY", "KOKO", "M11", "P2P", "ACSC", 1, 0, "NULL"};
    expect_error("EASY paying past its cap", post(&h, &easy_pays, err, sizeof(err)),
                 "net debit cap");
    struct row paid = {112,    "MEZN",  "EASY", "M12", "SUPPLIER_PAYMENT",
                       "ACSC", 1000000, 2000,   "EASY"};
    CHECK(post(&h, &paid, err, sizeof(err))[0] == '\0', "payee netting a credit: %s", err);
    CHECK_INT(h_position_balance(&h, "EASY"), -1000 + 1000000 - 2000);

    TEST_STEP("a return reverses a settled transfer within its amount, through post_batch or not");
    /* post_batch checks its own returns (the transfers' triggers stand
     * aside for it, 017); every other writer meets the triggers. The
     * original: 102, MEZN -> EASY, PKR 10,000. */
    post_return_sql(sql, sizeof(sql), 130, "MEZN", "EASY", 100, 102);
    expect_error("a return by the original's payer (post_batch)",
                 h_sql_as_switch(&h, sql, err, sizeof(err)), "does not reverse");
    post_return_sql(sql, sizeof(sql), 131, "EASY", "MEZN", 1000001, 102);
    expect_error("a return of more than the original (post_batch)",
                 h_sql_as_switch(&h, sql, err, sizeof(err)), "beyond its amount");
    post_return_sql(sql, sizeof(sql), 132, "EASY", "MEZN", 1000, 102);
    CHECK(h_sql_as_switch(&h, sql, err, sizeof(err))[0] == '\0', "a valid return: %s", err);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE id = 132 AND status = 'ACSC'"),
              1);
    insert_return_sql(sql, sizeof(sql), 133, "EASY", "MEZN", 999500, 102);
    expect_error("returns past the original's amount (owner, no post_batch)",
                 as_super(&h, sql, err, sizeof(err)), "beyond its amount");
    insert_return_sql(sql, sizeof(sql), 134, "MEZN", "EASY", 100, 102);
    expect_error("a return by the original's payer (owner, no post_batch)",
                 as_super(&h, sql, err, sizeof(err)), "does not reverse");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE id IN (130, 131, 133, 134)"), 0);

    h_cleanup(&h);
    return 0;
}
