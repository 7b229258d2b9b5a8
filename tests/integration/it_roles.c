/*
 * Least privilege (schema/004), proved against the catalog. The matrix below
 * says, for every table and every function of schema public, what each role
 * may do with it; the database must grant exactly that, no more and no less.
 * A table or function a later migration adds without its line here fails
 * this test, by name.
 *
 * First half, the catalog: has_*_privilege() for every object, role and
 * privilege; ownership; the search_path of SECURITY DEFINER functions; the
 * schema's and the database's rights; the roles' own attributes. Second
 * half, real attempts: each role writes to every table and calls every
 * function (NULL arguments), each inside BEGIN ... ROLLBACK. What the
 * privilege system refuses must be exactly what the matrix forbids; an
 * attempt that fails later (a NOT NULL, a RAISE of the body) was allowed.
 *
 * Roles: sikka_switch and sikka_reader log in with their passwords; a
 * throwaway login created here, with CONNECT on the test database and
 * nothing else, stands for any other login: what PUBLIC may do.
 */
#include "harness.h"

#include <openssl/rand.h>
#include <stdarg.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Table privileges as has_table_privilege() names them: bit i of a mask is
 * table_privs[i]. */
static const char *const table_privs[] = {"SELECT",   "INSERT",     "UPDATE", "DELETE",
                                          "TRUNCATE", "REFERENCES", "TRIGGER"};
#define N_TABLE_PRIVS N_OF(table_privs)
enum {
    P_SELECT = 1 << 0,
    P_INSERT = 1 << 1,
    P_UPDATE = 1 << 2,
    P_DELETE = 1 << 3,
    P_TRUNCATE = 1 << 4,
    P_REFERENCES = 1 << 5,
    P_TRIGGER = 1 << 6,
};

enum role { ROLE_SWITCH = 0, ROLE_READER, ROLE_ANYONE, ROLE_COUNT };

/* ---------------------------------------------------------------- the matrix
 * A migration that adds a table or a function grants its rights and adds its
 * line here, in the same change. */

/* USAGE on schema public: without it a role reaches no object at all. */
static const bool schema_usage[ROLE_COUNT] = {true, true, false};

struct table_line {
    const char *name;
    unsigned privs[ROLE_COUNT]; /* sikka_switch, sikka_reader, any other login */
};

/* Every table: read by the switch and the reader; written by nobody but its
 * owner, i.e. only through the SECURITY DEFINER functions below. */
static const struct table_line tables[] = {
    {"accounts", {P_SELECT, P_SELECT, 0}},
    {"alias_audit", {P_SELECT, P_SELECT, 0}}, /* 008: every change of the alias directory */
    {"aliases", {P_SELECT, P_SELECT, 0}},     /* 008: the alias directory (Raast ID) */
    {"audit_log", {P_SELECT, P_SELECT, 0}},
    {"bulk_batches", {P_SELECT, P_SELECT, 0}}, /* 010: bulk payments' batch ids */
    {"fee_schedule", {P_SELECT, P_SELECT, 0}},
    {"ledger_entries", {P_SELECT, P_SELECT, 0}},
    {"participants", {P_SELECT, P_SELECT, 0}},
    {"payee_outbox", {P_SELECT, P_SELECT, 0}}, /* 005: the payees' unacknowledged notices */
    {"posting_key", {0, 0, 0}}, /* 015: post_batch's mark for the entries trigger, a secret */
    {"proposals", {P_SELECT, P_SELECT, 0}},         /* 006: four-eyes proposals */
    {"request_blocks", {P_SELECT, P_SELECT, 0}},    /* 009: consumers' opt-outs */
    {"request_rules", {P_SELECT, P_SELECT, 0}},     /* 009: consumer guards per purpose */
    {"requests", {P_SELECT, P_SELECT, 0}},          /* 009: requests to pay */
    {"schema_migrations", {P_SELECT, P_SELECT, 0}}, /* deploy/migrate.sh's bookkeeping */
    {"settlement_windows", {P_SELECT, P_SELECT, 0}},
    {"switch_boots", {P_SELECT, P_SELECT, 0}},
    {"switch_fence", {P_SELECT, P_SELECT, 0}}, /* 005: the active switch's epoch */
    {"transfers", {P_SELECT, P_SELECT, 0}},
    {"window_positions", {P_SELECT, P_SELECT, 0}},
};

struct function_line {
    const char *signature; /* name(argument types) as oidvectortypes() spells them */
    bool execute[ROLE_COUNT];
};

static const struct function_line functions[] = {
    /* the switch's writes: postings only through the fenced post_batch (005,
     * with the timeline's times since 013, one function since 015) */
    {"post_batch(bigint, boolean[], bigint[], text[], text[], text[], text[], text[], text[], "
     "text[], text[], bigint[], bigint[], text[], text[], text[], text[], integer[], text[], "
     "text[], bigint[], text[], text[], text[], text[], bigint[], bigint[], bigint[])",
     {true, false, false}},
    {"fence_acquire(bigint, text)", {true, false, false}},
    {"payee_outbox_ack(text, bigint[])", {true, false, false}},       /* a switch of before 016 */
    {"payee_outbox_ack_all(text[], bigint[])", {true, false, false}}, /* 016 */
    {"bulk_register(text, text, bytea, integer)", {true, false, false}}, /* 010 */
    {"switch_boot_register(text, integer)", {true, false, false}},
    {"participant_end_ndc_grace(text, bigint)", {true, false, false}},
    /* operator actions, audited with the operator's role and certificate
     * (006). Immediate ones the switch runs for one operator: */
    {"participant_suspend(text, text, text, text, text)", {true, false, false}},
    {"close_window(text, text, text, text)", {true, false, false}},
    /* four-eyes: proposed, then approved (or rejected) by another operator;
     * an approval makes the change in its own transaction */
    {"proposal_create(text, text, text, text, text, text, jsonb, integer)", {true, false, false}},
    {"proposal_reject(bigint, text, text, text, text, text)", {true, false, false}},
    /* 012: the proposer takes a proposal back; the switch's expiry sweep */
    {"proposal_withdraw(bigint, text, text, text, text, text)", {true, false, false}},
    {"proposal_expire_due()", {true, false, false}},
    {"proposal_approve_ndc(bigint, text, text, text, text)", {true, false, false}},
    {"proposal_approve_resume(bigint, text, text, text, text)", {true, false, false}},
    {"proposal_approve_participant_add(bigint, text, text, text, text)", {true, false, false}},
    {"proposal_approve_settle(bigint, text, text, text, text)", {true, false, false}},
    /* the changes that need four eyes: the owner's alone, reached through
     * the approvals above (a superuser may still call them by hand) */
    {"participant_add(text, text, text, text, text, text, text, bigint, bigint)",
     {false, false, false}},
    {"participant_set_status(text, text, text, text, text, text, bigint)", {false, false, false}},
    {"participant_set_ndc(text, text, text, text, text, bigint, bigint)", {false, false, false}},
    {"settle_window(text, text, text, text, bigint, bigint)", {false, false, false}},
    /* their building blocks: the owner's alone */
    {"proposal_decide(bigint, text, text, text, text, text, boolean, text)", {false, false, false}},
    {"audit_write(text, text, text, text, text, text, jsonb, jsonb, bigint)",
     {false, false, false}},
    {"operator_check(text, text, text, text, text)", {false, false, false}},
    {"operator_role_rank(text)", {false, false, false}},
    /* the alias directory (008): the switch changes it for participants,
     * each function checking who may; its building blocks are the owner's */
    {"alias_register(text, text, text, text, text)", {true, false, false}},
    {"alias_update(text, text, text, text)", {true, false, false}},
    {"alias_deregister(text, text)", {true, false, false}},
    {"alias_port(text, text, text, text, integer)", {true, false, false}},
    {"alias_release(text, text)", {true, false, false}},
    {"alias_expire_ports(integer)", {true, false, false}},
    {"alias_answer(text, text, text)", {false, false, false}},
    {"alias_move(text, text, text)", {false, false, false}},
    /* pure reads of a proposal, for whoever reads the proposals table */
    {"proposal_json(proposals)", {true, true, false}},
    {"proposal_role_needed(text)", {true, true, false}},
    /* reads only, with the caller's rights */
    {"reconcile()", {true, true, false}},
    /* trigger functions: the owner's alone */
    {"ledger_entries_apply()", {false, false, false}},
    {"posting_checks_needed()", {false, false, false}}, /* 015, 017: the triggers' WHEN */
    {"transfers_check()", {false, false, false}},
    /* 017: the transfers' checks and effects, called by post_batch and by
     * the transfers' triggers */
    {"transfers_check_returns(bigint[])", {false, false, false}},
    {"requests_pay(bigint[])", {false, false, false}},
    {"refuse_change()", {false, false, false}},
    {"participants_open_accounts()", {false, false, false}},
    {"settlement_windows_forward_only()", {false, false, false}},
    {"participants_ndc_change()", {false, false, false}},
    {"notify_state_change()", {false, false, false}},
    {"proposals_transition()", {false, false, false}},
    {"proposals_audit_expiry()", {false, false, false}},
    /* 009: requests to pay, written by the switch through these only */
    {"request_create(text, text, text, text, text, text, bigint, text, text, integer, text, date, "
     "bigint, bigint, text, text, text)",
     {true, false, false}},
    {"request_move(bigint, text, text, text, text)", {true, false, false}},
    {"request_bind_payment(bigint, bigint, text, text, text, text, bigint, text, text, integer, "
     "text)",
     {true, false, false}},
    {"request_block(text, text, text, boolean)", {true, false, false}},
    {"requests_transition()", {false, false, false}},
    {"transfers_pay_requests()", {false, false, false}},
};

/* PostgreSQL's own functions that would let a login fill the disk (large
 * objects) or hold the switch's locks (advisory locks); 004 revokes them from
 * PUBLIC. Neither the reader nor any other login may call them. */
static const char *const builtins_refused[] = {
    "lo_create(oid)",
    "lo_import(text)",
    "lo_from_bytea(oid, bytea)",
    "pg_advisory_lock(bigint)",
    "pg_try_advisory_lock(bigint)",
    "pg_advisory_xact_lock(bigint)",
};

/* ---------------------------------------------------------------- helpers */

struct login {
    char name[128];
    char password[64];
    PGconn *db;
    int refused, allowed;
};

static struct login logins[ROLE_COUNT];
static int problems;

/* A difference between the matrix and the database: listed, and the test
 * fails once every check has run, so one run names every difference. */
static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "   PROBLEM: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    problems++;
}

/* ARRAY['a', 'b', ...] of the names (plain identifiers: no quoting needed). */
static void sql_array(const char *const *items, size_t n, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "ARRAY[");
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s'%s'", i ? ", " : "", items[i]);
    CHECK(used + 2 <= len, "array of %zu names does not fit %zu bytes", n, len);
    snprintf(buf + used, len - used, "]");
}

static void role_array(char *buf, size_t len)
{
    const char *names[ROLE_COUNT];
    for (int i = 0; i < ROLE_COUNT; i++)
        names[i] = logins[i].name;
    sql_array(names, ROLE_COUNT, buf, len);
}

static const char *privs_text(unsigned mask, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_TABLE_PRIVS && used < len; i++)
        if (mask & (1u << i))
            used +=
                (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", table_privs[i]);
    if (used == 0)
        snprintf(buf, len, "nothing");
    return buf;
}

static int find_table(const char *name)
{
    for (size_t i = 0; i < N_OF(tables); i++)
        if (strcmp(tables[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int find_function(const char *signature)
{
    for (size_t i = 0; i < N_OF(functions); i++)
        if (strcmp(functions[i].signature, signature) == 0)
            return (int)i;
    return -1;
}

static bool is_true(PGresult *r, int row, int col)
{
    return strcmp(PQgetvalue(r, row, col), "t") == 0;
}

/* Creates the stand-in for "any other login": LOGIN with a random password,
 * CONNECT on the test database (what PUBLIC may not do there), nothing else.
 * Roles are cluster-wide: the name carries the test database's. */
static void create_anyone(struct harness *h, struct login *l)
{
    unsigned char raw[16];
    CHECK(RAND_bytes(raw, sizeof(raw)) == 1, "no random bytes for a password");
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(l->password + 2 * i, 3, "%02x", raw[i]);
    snprintf(l->name, sizeof(l->name), "%s_anyone", h->dbname);
    PQclear(h_sql(h, "DROP ROLE IF EXISTS %s", l->name));
    PQclear(h_sql(h, "CREATE ROLE %s LOGIN PASSWORD '%s'", l->name, l->password));
    PQclear(h_sql(h, "GRANT CONNECT ON DATABASE %s TO %s", h->dbname, l->name));
}

/* DROP OWNED revokes its CONNECT (a grant on a shared object) too. */
static void drop_anyone(struct harness *h, struct login *l)
{
    PQclear(h_sql(h, "DROP OWNED BY %s", l->name));
    PQclear(h_sql(h, "DROP ROLE %s", l->name));
}

/* ---------------------------------------------------------------- the catalog */

static void check_tables(struct harness *h)
{
    char privs[256], roles[512], have[128], want[128];
    bool seen[N_OF(tables)] = {false};
    sql_array(table_privs, N_TABLE_PRIVS, privs, sizeof(privs));
    role_array(roles, sizeof(roles));
    /* has_any_column_privilege: a grant on some columns counts too */
    PGresult *r = h_sql(
        h,
        "SELECT c.relname, r.i - 1, "
        "       (SELECT coalesce(sum(1 << (p.i - 1)::integer), 0) "
        "          FROM unnest(%s) WITH ORDINALITY p(name, i) "
        "         WHERE CASE WHEN p.name IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') "
        "                    THEN has_any_column_privilege(r.name, c.oid, p.name) "
        "                    ELSE has_table_privilege(r.name, c.oid, p.name) END) "
        "  FROM pg_class c, unnest(%s) WITH ORDINALITY r(name, i) "
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') "
        " ORDER BY 1, 2",
        privs, roles);
    for (int row = 0; row < PQntuples(r); row++) {
        const char *name = PQgetvalue(r, row, 0);
        int role = atoi(PQgetvalue(r, row, 1));
        unsigned held = (unsigned)atoi(PQgetvalue(r, row, 2));
        int t = find_table(name);
        if (t < 0) {
            if (role == 0)
                problem("table %s is in schema public but not in the matrix of "
                        "tests/integration/it_roles.c: grant its rights in a migration and add "
                        "its line to tables[]",
                        name);
            continue;
        }
        seen[t] = true;
        if (held != tables[t].privs[role])
            problem("table %s: %s may %s; the matrix says %s", name, logins[role].name,
                    privs_text(held, have, sizeof(have)),
                    privs_text(tables[t].privs[role], want, sizeof(want)));
    }
    for (size_t t = 0; t < N_OF(tables); t++)
        if (!seen[t])
            problem("table %s is in the matrix but not in schema public: drop its line",
                    tables[t].name);
    fprintf(stderr, "   %d tables x %d roles x %zu privileges\n", PQntuples(r) / ROLE_COUNT,
            ROLE_COUNT, N_TABLE_PRIVS);
    PQclear(r);
}

static void check_functions(struct harness *h)
{
    char roles[512];
    bool seen[N_OF(functions)] = {false};
    role_array(roles, sizeof(roles));
    PGresult *r = h_sql(h,
                        "SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')', "
                        "       r.i - 1, has_function_privilege(r.name, p.oid, 'EXECUTE') "
                        "  FROM pg_proc p, unnest(%s) WITH ORDINALITY r(name, i) "
                        " WHERE p.pronamespace = 'public'::regnamespace "
                        " ORDER BY 1, 2",
                        roles);
    for (int row = 0; row < PQntuples(r); row++) {
        const char *sig = PQgetvalue(r, row, 0);
        int role = atoi(PQgetvalue(r, row, 1));
        bool held = is_true(r, row, 2);
        int f = find_function(sig);
        if (f < 0) {
            if (role == 0)
                problem("function %s is in schema public but not in the matrix of "
                        "tests/integration/it_roles.c: grant (or revoke) its EXECUTE in a "
                        "migration and add its line to functions[]",
                        sig);
            continue;
        }
        seen[f] = true;
        if (held != functions[f].execute[role])
            problem("function %s: %s %s execute it; the matrix says it %s", sig, logins[role].name,
                    held ? "may" : "may not", functions[f].execute[role] ? "may" : "may not");
    }
    for (size_t f = 0; f < N_OF(functions); f++)
        if (!seen[f])
            problem("function %s is in the matrix but not in schema public: drop its line",
                    functions[f].signature);
    fprintf(stderr, "   %d functions x %d roles\n", PQntuples(r) / ROLE_COUNT, ROLE_COUNT);
    PQclear(r);
}

/* Sequences have no line: they belong to identity columns, which fill
 * themselves without any right on them, so nobody holds one. */
static void check_sequences(struct harness *h)
{
    char roles[512];
    role_array(roles, sizeof(roles));
    PGresult *r = h_sql(h,
                        "SELECT c.relname, r.name, string_agg(p.name, ', ' ORDER BY p.name) "
                        "  FROM pg_class c, unnest(%s) r(name), "
                        "       unnest(ARRAY['SELECT', 'UPDATE', 'USAGE']) p(name) "
                        " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S' "
                        "   AND has_sequence_privilege(r.name, c.oid, p.name) "
                        " GROUP BY 1, 2 ORDER BY 1, 2",
                        roles);
    for (int row = 0; row < PQntuples(r); row++)
        problem("sequence %s: %s may %s; nobody but its owner may use it", PQgetvalue(r, row, 0),
                PQgetvalue(r, row, 1), PQgetvalue(r, row, 2));
    PQclear(r);
}

/* Everything belongs to sikka_owner: SECURITY DEFINER functions then run with
 * its rights, and no other role can change an object by owning it. */
static void check_owners(struct harness *h)
{
    PGresult *r =
        h_sql(h, "SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' ELSE 'table ' END || c.relname, "
                 "       pg_get_userbyid(c.relowner) "
                 "  FROM pg_class c "
                 " WHERE c.relnamespace = 'public'::regnamespace "
                 "   AND c.relkind IN ('r', 'p', 'v', 'm', 'S') "
                 "   AND c.relowner <> 'sikka_owner'::regrole "
                 "UNION ALL "
                 "SELECT 'function ' || p.proname || '(' || oidvectortypes(p.proargtypes) || ')', "
                 "       pg_get_userbyid(p.proowner) "
                 "  FROM pg_proc p "
                 " WHERE p.pronamespace = 'public'::regnamespace "
                 "   AND p.proowner <> 'sikka_owner'::regrole");
    for (int row = 0; row < PQntuples(r); row++)
        problem("%s is owned by %s, not sikka_owner: its migration must ALTER ... OWNER TO "
                "sikka_owner (or run as sikka_owner)",
                PQgetvalue(r, row, 0), PQgetvalue(r, row, 1));
    PQclear(r);
}

/* A SECURITY DEFINER function resolves names with the caller's search_path
 * unless it fixes its own; pg_temp must come last, or the caller's temporary
 * objects would be found first. */
static void check_security_definer(struct harness *h)
{
    PGresult *r = h_sql(h, "SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')', "
                           "       coalesce(array_to_string(p.proconfig, '; '), 'none'), "
                           "       EXISTS (SELECT FROM unnest(p.proconfig) s "
                           "                WHERE s LIKE 'search_path=%%pg_temp') "
                           "  FROM pg_proc p "
                           " WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef "
                           " ORDER BY 1");
    for (int row = 0; row < PQntuples(r); row++)
        if (!is_true(r, row, 2))
            problem("SECURITY DEFINER function %s has no fixed search_path ending in pg_temp "
                    "(its settings: %s): add SET search_path = public, pg_temp",
                    PQgetvalue(r, row, 0), PQgetvalue(r, row, 1));
    fprintf(stderr, "   %d SECURITY DEFINER functions\n", PQntuples(r));
    PQclear(r);
}

static void check_schema_and_database(struct harness *h)
{
    for (int i = 0; i < ROLE_COUNT; i++) {
        const char *n = logins[i].name;
        PGresult *r = h_sql(h,
                            "SELECT has_schema_privilege('%s', 'public', 'USAGE'), "
                            "       has_schema_privilege('%s', 'public', 'CREATE'), "
                            "       has_database_privilege('%s', current_database(), 'TEMP'), "
                            "       has_database_privilege('%s', current_database(), 'CREATE')",
                            n, n, n, n);
        if (is_true(r, 0, 0) != schema_usage[i])
            problem("schema public: %s %s USAGE; the matrix says it %s", n,
                    is_true(r, 0, 0) ? "has" : "lacks", schema_usage[i] ? "has" : "lacks");
        if (is_true(r, 0, 1))
            problem("schema public: %s may CREATE objects in it", n);
        if (is_true(r, 0, 2))
            problem("database: %s may create temporary tables (TEMP)", n);
        if (is_true(r, 0, 3))
            problem("database: %s may create schemas (CREATE)", n);
        PQclear(r);
    }
    /* PUBLIC itself: its rights are every login's, present and future */
    PGresult *r = h_sql(h, "SELECT (SELECT string_agg(a.privilege_type, ', ') "
                           "          FROM pg_namespace n, "
                           "               aclexplode(coalesce(n.nspacl, "
                           "                                   acldefault('n', n.nspowner))) a "
                           "         WHERE n.nspname = 'public' AND a.grantee = 0), "
                           "       (SELECT string_agg(a.privilege_type, ', ') "
                           "          FROM pg_database d, "
                           "               aclexplode(coalesce(d.datacl, "
                           "                                   acldefault('d', d.datdba))) a "
                           "         WHERE d.datname = current_database() AND a.grantee = 0)");
    if (!PQgetisnull(r, 0, 0))
        problem("schema public: PUBLIC holds %s", PQgetvalue(r, 0, 0));
    if (!PQgetisnull(r, 0, 1))
        problem("database: PUBLIC holds %s", PQgetvalue(r, 0, 1));
    PQclear(r);
}

/* The advisory locks the switch's fence and posting connections take
 * (schema/005), granted to the switch alone; the transaction-scoped ones it
 * does not use stay refused. */
static const struct {
    const char *signature;
    bool execute;
} builtins_switch[] = {
    {"pg_try_advisory_lock(bigint)", true},
    {"pg_advisory_lock(bigint)", true},
    {"pg_advisory_unlock(bigint)", true},
    {"pg_advisory_lock_shared(bigint)", true},
    {"pg_advisory_unlock_shared(bigint)", true},
    {"pg_advisory_xact_lock(bigint)", false},
    {"lo_create(oid)", false},
};

static void check_builtins(struct harness *h)
{
    for (size_t f = 0; f < N_OF(builtins_switch); f++) {
        const char *n = logins[ROLE_SWITCH].name;
        bool may = h_sql_int(h, "SELECT has_function_privilege('%s', '%s', 'EXECUTE')::integer", n,
                             builtins_switch[f].signature) != 0;
        if (may != builtins_switch[f].execute)
            problem("%s %s execute %s; the matrix says %s", n, may ? "may" : "may not",
                    builtins_switch[f].signature, builtins_switch[f].execute ? "yes" : "no");
    }
    static const enum role refused_to[] = {ROLE_READER, ROLE_ANYONE};
    for (size_t f = 0; f < N_OF(builtins_refused); f++)
        for (size_t i = 0; i < N_OF(refused_to); i++) {
            const char *n = logins[refused_to[i]].name;
            if (h_sql_int(h, "SELECT has_function_privilege('%s', '%s', 'EXECUTE')::integer", n,
                          builtins_refused[f]) != 0)
                problem("%s may execute %s", n, builtins_refused[f]);
        }
}

/* The roles themselves: no attribute that bypasses privileges, and no
 * membership of the owner (that would be every right at once). */
static void check_role_attributes(struct harness *h)
{
    for (int i = 0; i < ROLE_COUNT; i++) {
        const char *n = logins[i].name;
        PGresult *r = h_sql(h,
                            "SELECT rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb "
                            "       OR rolreplication, pg_has_role('%s', 'sikka_owner', 'MEMBER') "
                            "  FROM pg_roles WHERE rolname = '%s'",
                            n, n);
        CHECK(PQntuples(r) == 1, "role %s exists", n);
        if (is_true(r, 0, 0))
            problem("role %s is a superuser or may bypass RLS, create roles or databases, or "
                    "replicate",
                    n);
        if (is_true(r, 0, 1))
            problem("role %s is a member of sikka_owner", n);
        PQclear(r);
    }
    PGresult *r = h_sql(h, "SELECT rolcanlogin, rolsuper OR rolbypassrls "
                           "  FROM pg_roles WHERE rolname = 'sikka_owner'");
    CHECK(PQntuples(r) == 1, "role sikka_owner exists");
    if (is_true(r, 0, 0))
        problem("sikka_owner may log in (it must be NOLOGIN)");
    if (is_true(r, 0, 1))
        problem("sikka_owner is a superuser or bypasses RLS: SECURITY DEFINER functions "
                "would run with that");
    PQclear(r);
}

/* ---------------------------------------------------------------- real attempts */

/* Runs sql as l and compares the outcome with the intended one. Refused means
 * the privilege system said no: SQLSTATE 42501 with PostgreSQL's "permission
 * denied" (refuse_change() raises 42501 as well, but from a trigger that runs
 * only once the privilege check has passed). */
static void attempt(struct login *l, const char *sql, bool intended)
{
    char state[6], err[512];
    bool allowed = h_sql_attempt(l->db, sql, state, err, sizeof(err)) == 0 ||
                   strcmp(state, "42501") != 0 || strncmp(err, "permission denied", 17) != 0;
    if (allowed)
        l->allowed++;
    else
        l->refused++;
    if (allowed != intended)
        problem("%s: \"%s\" was %s (%s); the matrix says %s", l->name, sql,
                allowed ? "allowed" : "refused", err[0] != '\0' ? err : "it succeeded",
                intended ? "allowed" : "refused");
}

/* The statement that needs privilege `priv` on table t (first column col)
 * and touches no row; nothing for the privileges not tried here. */
static bool table_statement(unsigned priv, const char *t, const char *col, char *sql, size_t len)
{
    switch (priv) {
    case P_SELECT:
        snprintf(sql, len, "SELECT FROM public.%s LIMIT 0", t);
        return true;
    case P_INSERT:
        /* the privilege check comes before any constraint */
        snprintf(sql, len, "INSERT INTO public.%s DEFAULT VALUES", t);
        return true;
    case P_UPDATE:
        /* = DEFAULT: an identity column refuses any other value, and before
         * the privilege check */
        snprintf(sql, len, "UPDATE public.%s SET %s = DEFAULT WHERE false", t, col);
        return true;
    case P_DELETE:
        snprintf(sql, len, "DELETE FROM public.%s WHERE false", t);
        return true;
    case P_TRUNCATE:
        snprintf(sql, len, "TRUNCATE public.%s", t);
        return true;
    default:
        return false; /* REFERENCES, TRIGGER: the catalog half covers them */
    }
}

static void attempt_tables(struct harness *h, enum role role)
{
    struct login *l = &logins[role];
    PGresult *r = h_sql(h, "SELECT c.relname, quote_ident(c.relname), "
                           "       (SELECT quote_ident(a.attname) FROM pg_attribute a "
                           "         WHERE a.attrelid = c.oid AND a.attnum > 0 "
                           "           AND NOT a.attisdropped ORDER BY a.attnum LIMIT 1) "
                           "  FROM pg_class c "
                           " WHERE c.relnamespace = 'public'::regnamespace "
                           "   AND c.relkind IN ('r', 'p') "
                           " ORDER BY 1");
    for (int row = 0; row < PQntuples(r); row++) {
        int t = find_table(PQgetvalue(r, row, 0));
        if (t < 0)
            continue; /* reported by the catalog half */
        for (size_t p = 0; p < N_TABLE_PRIVS; p++) {
            char sql[512];
            unsigned priv = 1u << p;
            if (table_statement(priv, PQgetvalue(r, row, 1), PQgetvalue(r, row, 2), sql,
                                sizeof(sql)))
                attempt(l, sql, schema_usage[role] && (tables[t].privs[role] & priv));
        }
    }
    PQclear(r);
}

/* Each function but the triggers', called with NULL arguments. A scalar
 * subquery, not a NULL constant: the planner replaces a STRICT function
 * called with a constant NULL by NULL without checking EXECUTE. Argument
 * types of schema public (a table's row type) are named with the schema, so
 * that a role without USAGE on it is refused for that, not told the type
 * does not exist. */
static void attempt_functions(struct harness *h, enum role role)
{
    struct login *l = &logins[role];
    PGresult *r = h_sql(
        h, "SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')', "
           "       CASE p.prokind WHEN 'p' THEN 'CALL ' ELSE 'SELECT ' END "
           "       || 'public.' || quote_ident(p.proname) || '(' "
           "       || coalesce((SELECT string_agg(format(CASE p.prokind WHEN 'p' THEN 'NULL::%%s' "
           "                                                ELSE '(SELECT NULL::%%s)' END, "
           "                                             CASE WHEN ty.typnamespace = "
           "                                                       'public'::regnamespace "
           "                                                  THEN 'public.' "
           "                                                       || quote_ident(ty.typname) "
           "                                                  ELSE format_type(a.t, NULL) END), "
           "                                      ', ' ORDER BY a.i) "
           "                      FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i) "
           "                      JOIN pg_type ty ON ty.oid = a.t), '') "
           "       || ')' || CASE p.prokind WHEN 'w' THEN ' OVER ()' ELSE '' END "
           "  FROM pg_proc p "
           " WHERE p.pronamespace = 'public'::regnamespace "
           "   AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype) "
           " ORDER BY 1");
    for (int row = 0; row < PQntuples(r); row++) {
        int f = find_function(PQgetvalue(r, row, 0));
        if (f < 0)
            continue; /* reported by the catalog half */
        attempt(l, PQgetvalue(r, row, 1), schema_usage[role] && functions[f].execute[role]);
    }
    PQclear(r);
}

static void attempt_creates(enum role role)
{
    attempt(&logins[role], "CREATE TABLE public.it_roles_probe (i integer)", false);
    attempt(&logins[role], "CREATE TEMP TABLE it_roles_probe (i integer)", false);
}

static void attempt_builtins(enum role role)
{
    attempt(&logins[role], "SELECT lo_create(0)", false);
    attempt(&logins[role], "SELECT pg_advisory_lock(1)", false);
}

int main(void)
{
    struct harness h;
    h_init(&h, "roles");
    snprintf(logins[ROLE_SWITCH].name, sizeof(logins[0].name), "sikka_switch");
    snprintf(logins[ROLE_SWITCH].password, sizeof(logins[0].password), "%s",
             h_env("SIKKA_TEST_SWITCH_PASSWORD"));
    snprintf(logins[ROLE_READER].name, sizeof(logins[0].name), "sikka_reader");
    snprintf(logins[ROLE_READER].password, sizeof(logins[0].password), "%s",
             h_env("SIKKA_TEST_READER_PASSWORD"));
    create_anyone(&h, &logins[ROLE_ANYONE]);

    TEST_STEP("catalog: every table of schema public has its line and exactly its privileges");
    check_tables(&h);
    TEST_STEP("catalog: every function of schema public has its line and exactly its EXECUTE");
    check_functions(&h);
    TEST_STEP("catalog: no role may use a sequence");
    check_sequences(&h);
    TEST_STEP("catalog: sikka_owner owns every table, sequence and function");
    check_owners(&h);
    TEST_STEP("catalog: SECURITY DEFINER functions fix their search_path");
    check_security_definer(&h);
    TEST_STEP("catalog: schema public and the database: no CREATE, no TEMP, USAGE as intended");
    check_schema_and_database(&h);
    TEST_STEP("catalog: large objects and advisory locks: not for the reader or anyone else");
    check_builtins(&h);
    TEST_STEP("catalog: no role bypasses privileges or is a member of sikka_owner");
    check_role_attributes(&h);
    int catalog_problems = problems;

    TEST_STEP("attempts: every table write and function call, as each role");
    for (int i = 0; i < ROLE_COUNT; i++) {
        struct login *l = &logins[i];
        l->db = h_connect_as(&h, l->name, l->password);
        attempt_tables(&h, (enum role)i);
        attempt_functions(&h, (enum role)i);
        attempt_creates((enum role)i);
        if (i != ROLE_SWITCH)
            attempt_builtins((enum role)i);
        fprintf(stderr, "   %s: %d attempts, %d refused, %d allowed\n", l->name,
                l->refused + l->allowed, l->refused, l->allowed);
        PQfinish(l->db);
        l->db = NULL;
    }

    drop_anyone(&h, &logins[ROLE_ANYONE]);
    CHECK(problems == 0,
          "%d privilege problem(s) listed above (%d in the catalog, %d in real attempts)", problems,
          catalog_problems, problems - catalog_problems);
    h_cleanup(&h);
    return 0;
}
