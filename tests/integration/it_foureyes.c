/* Roles from the certificate and four-eyes, against the real switch and
 * database (schema/006, switch/admin.c, switch/ops.c):
 *   - a viewer is refused (403, naming the role needed) on every route that
 *     changes something and served on every read; nothing changes;
 *   - an operator suspends and closes windows at once, proposes a resume,
 *     and is refused caps, settlements and new participants;
 *   - a change takes effect only when someone else approves it: the
 *     proposer (same name, or the same name on another certificate) is
 *     refused, through the API and directly in SQL as sikka_switch; an
 *     operator cannot approve what needs a supervisor; a decided proposal
 *     is decided for good (409); a rejected one never takes effect;
 *   - a proposal lives in the database: it survives a restart of the
 *     switch and is approved after it;
 *   - its proposer (only) withdraws a pending proposal: it never happens,
 *     and the audit trail says who withdrew it;
 *   - with a short proposal_ttl_s (4 s) a proposal expires: listed as expired,
 *     marked so by the switch's sweep and audited ("scheme"), approval
 *     refused, nothing changed;
 *   - every audit row carries the operator's name, role and certificate
 *     (the serial and SHA-256 fingerprint of the file the operator used);
 *   - a certificate without a role, or with an unknown one, gets 403 and a
 *     warn line, on reads too.
 * Certificates from the test PKI: viewer, operator, supervisor,
 * supervisor2, and (tests/run.sh) operator-norole (no title),
 * operator-auditor (title "auditor") and operator-supervisor (CN
 * supervisor again, another key: the same person). */
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "harness.h"
#include "https.h"
#include "tls.h"

static int admin_port;

struct answer {
    int status;
    json_t *body; /* the JSON answer, or NULL */
};

/* One request; CHECKs an answer came, and that it is JSON. */
static struct answer call(SSL_CTX *ctx, const char *method, const char *path, const char *body)
{
    struct https_response resp;
    char err[512];
    int rc = https_request(ctx, "127.0.0.1", admin_port, method, path, body,
                           body != NULL ? strlen(body) : 0, 5000, &resp, err, sizeof(err));
    CHECK(rc == 0, "%s %s: %s", method, path, err);
    fprintf(stderr, "   %s %s -> %d %.300s%s", method, path, resp.status, resp.body,
            resp.body_len > 300 ? "...\n" : "");
    struct answer a = {resp.status, json_loadb(resp.body, resp.body_len, 0, NULL)};
    CHECK(json_is_object(a.body), "%s %s: the answer is a JSON object", method, path);
    https_response_free(&resp);
    return a;
}

static const char *error_of(const struct answer *a)
{
    const char *e = json_string_value(json_object_get(a->body, "error"));
    return e != NULL ? e : "";
}

/* A request that must be refused with 403 and an error containing needle. */
static void refused(SSL_CTX *ctx, const char *method, const char *path, const char *body,
                    const char *needle)
{
    struct answer a = call(ctx, method, path, body);
    CHECK_INT(a.status, 403);
    CHECK(strstr(error_of(&a), needle) != NULL, "%s %s: \"%s\" lacks \"%s\"", method, path,
          error_of(&a), needle);
    json_decref(a.body);
}

/* A proposal made over the API: 202 {"proposal": {...}}; returns its id. */
static int64_t propose(SSL_CTX *ctx, const char *method, const char *path, const char *body,
                       const char *action, const char *target)
{
    struct answer a = call(ctx, method, path, body);
    CHECK_INT(a.status, 202);
    json_t *p = json_object_get(a.body, "proposal");
    CHECK_STR(json_string_value(json_object_get(p, "action")), action);
    CHECK_STR(json_string_value(json_object_get(p, "target")), target);
    CHECK_STR(json_string_value(json_object_get(p, "state")), "pending");
    int64_t id = json_integer_value(json_object_get(p, "id"));
    CHECK(id > 0, "a proposal id");
    json_decref(a.body);
    return id;
}

static struct answer decide(SSL_CTX *ctx, int64_t id, const char *verb, const char *body)
{
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/proposals/%lld/%s", (long long)id, verb);
    return call(ctx, "POST", path, body);
}

/* The SHA-256 fingerprint of <pki>/<base>.crt, as the switch must record it. */
static void fingerprint_of(struct harness *h, const char *base, struct tls_cert_id *out)
{
    char path[300], file[96];
    snprintf(file, sizeof(file), "%s.crt", base);
    FILE *f = fopen(h_pki(h, file, path, sizeof(path)), "r");
    CHECK(f != NULL, "%s", path);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    CHECK(x != NULL, "%s: not a PEM certificate", path);
    CHECK(tls_cert_id(x, out) == 0);
    X509_free(x);
}

static int64_t db_ndc(struct harness *h, const char *code)
{
    return h_sql_int(h, "SELECT ndc FROM participants WHERE code = '%s'", code);
}

static int64_t audit_rows(struct harness *h)
{
    return h_sql_int(h, "SELECT count(*) FROM audit_log");
}

/* Every route that changes something, with a body it would accept. */
static const struct {
    const char *method, *path, *body, *needs;
} writes[] = {
    {"POST", "/api/v1/participants",
     "{\"code\":\"NEWP\",\"name\":\"New\",\"kind\":\"wallet\",\"ndc\":100}", "supervisor"},
    {"POST", "/api/v1/participants/JAZZ/suspend", NULL, "operator"},
    {"POST", "/api/v1/participants/SUSP/resume", NULL, "operator"},
    {"PUT", "/api/v1/participants/JAZZ/ndc", "{\"ndc\":100}", "supervisor"},
    {"POST", "/api/v1/windows/close", NULL, "operator"},
    {"POST", "/api/v1/windows/1/settle", NULL, "supervisor"},
    {"POST", "/api/v1/proposals/1/approve", NULL, "operator"},
    {"POST", "/api/v1/proposals/1/reject", "{\"reason\":\"no\"}", "operator"},
    {"POST", "/api/v1/proposals/1/withdraw", "{\"reason\":\"no\"}", "operator"},
};

int main(void)
{
    struct harness h;
    h_init(&h, "foureyes");
    h_admin(&h);
    admin_port = h.admin_port;
    h_start(&h);
    SSL_CTX *viewer = h_tls_ctx(&h, "viewer"), *op = h_tls_ctx(&h, "operator"),
            *sup = h_tls_ctx(&h, "supervisor"), *sup2 = h_tls_ctx(&h, "supervisor2");
    struct answer a;

    TEST_STEP("who the certificate says: /me for each role");
    static const struct {
        const char *base, *role, *may_not;
        size_t may;
    } me[] = {
        {"viewer", "viewer", "suspend", 0},
        {"operator", "operator", "ndc", 6},
        {"supervisor", "supervisor", NULL, 9},
        {"supervisor2", "supervisor", NULL, 9},
    };
    for (size_t i = 0; i < sizeof(me) / sizeof(me[0]); i++) {
        SSL_CTX *ctx = h_tls_ctx(&h, me[i].base);
        struct tls_cert_id cid;
        fingerprint_of(&h, me[i].base, &cid);
        a = call(ctx, "GET", "/api/v1/me", NULL);
        CHECK_INT(a.status, 200);
        CHECK_STR(json_string_value(json_object_get(a.body, "name")), me[i].base);
        CHECK_STR(json_string_value(json_object_get(a.body, "role")), me[i].role);
        json_t *cert = json_object_get(a.body, "certificate");
        CHECK_STR(json_string_value(json_object_get(cert, "fingerprint")), cid.fingerprint);
        CHECK_STR(json_string_value(json_object_get(cert, "serial")), cid.serial);
        json_t *may = json_object_get(a.body, "may");
        CHECK_INT(json_array_size(may), me[i].may);
        for (size_t k = 0; k < json_array_size(may) && me[i].may_not != NULL; k++)
            CHECK(strcmp(json_string_value(json_array_get(may, k)), me[i].may_not) != 0,
                  "%s may %s", me[i].base, me[i].may_not);
        json_decref(a.body);
        SSL_CTX_free(ctx);
    }

    TEST_STEP("a certificate without a role, and one with an unknown role: 403 on reads too");
    static const struct {
        const char *base, *why, *log;
    } bad[] = {
        {"operator-norole", "carries no role", "name=norole title=-"},
        {"operator-auditor", "unknown role \"auditor\"", "name=auditor title=auditor"},
    };
    int64_t rows = audit_rows(&h);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        SSL_CTX *ctx = h_tls_ctx(&h, bad[i].base);
        refused(ctx, "GET", "/api/v1/status", NULL, bad[i].why);
        refused(ctx, "GET", "/api/v1/me", NULL, bad[i].why);
        refused(ctx, "POST", "/api/v1/windows/close", NULL, bad[i].why);
        H_WAIT_LOG(&h, 3, 5000, bad[i].log);
        CHECK(h_log_count(&h, "event=admin_refused") >= (int)(3 * (i + 1)),
              "each refusal has its warn line");
        SSL_CTX_free(ctx);
    }
    CHECK_INT(audit_rows(&h), rows);

    TEST_STEP("a viewer: refused on every route that changes something, with the role needed");
    int64_t windows = h_sql_int(&h, "SELECT count(*) FROM settlement_windows");
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "needs the role %s", writes[i].needs);
        refused(viewer, writes[i].method, writes[i].path, writes[i].body, needle);
    }
    /* the role is checked before the body: a malformed one is still 403 */
    refused(viewer, "PUT", "/api/v1/participants/JAZZ/ndc", "{", "needs the role supervisor");
    CHECK_INT(audit_rows(&h), rows);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM proposals"), 0);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM settlement_windows"), windows);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM participants WHERE status = 'active' "
                            "AND code = 'JAZZ'"),
              1);
    /* sikka-ctl as the viewer: refused too (exit 1) */
    CHECK_INT(H_CTL_AS(&h, "viewer", "participant", "suspend", "JAZZ"), 1);
    CHECK_INT(H_CTL_AS(&h, "viewer", "ndc", "set", "JAZZ", "1.00"), 1);

    TEST_STEP("an operator: suspends and closes a window at once; caps, settling, adding: 403");
    a = call(op, "POST", "/api/v1/participants/EASY/suspend", NULL);
    CHECK_INT(a.status, 200);
    json_decref(a.body);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM participants WHERE code = 'EASY' "
                            "AND status = 'suspended'"),
              1);
    CHECK_INT(H_CTL(&h, "window", "close"), 0);
    int64_t closed = strtoll(h_ctl_last_line(&h), NULL, 10);
    CHECK(closed > 0, "the closed window's id");
    char settle_path[64], report_path[64];
    snprintf(settle_path, sizeof(settle_path), "/api/v1/windows/%lld/settle", (long long)closed);
    snprintf(report_path, sizeof(report_path), "/api/v1/windows/%lld/report", (long long)closed);
    refused(op, "PUT", "/api/v1/participants/JAZZ/ndc", "{\"ndc\":100}",
            "needs the role supervisor");
    refused(op, "POST", settle_path, NULL, "needs the role supervisor");
    refused(op, "POST", "/api/v1/participants",
            "{\"code\":\"NEWP\",\"name\":\"New\",\"kind\":\"wallet\"}",
            "needs the role supervisor");
    CHECK_INT(H_CTL(&h, "ndc", "set", "JAZZ", "1.00"), 1);

    TEST_STEP("a viewer reads everything");
    static const char *const reads[] = {
        "/api/v1/participants", "/api/v1/participants/JAZZ",
        "/api/v1/positions",    "/api/v1/windows",
        "/api/v1/reconcile",    "/api/v1/fees",
        "/api/v1/audit",        "/api/v1/status",
        "/api/v1/health",       "/api/v1/me",
        "/api/v1/proposals",    "/api/v1/proposals?state=pending",
    };
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        a = call(viewer, "GET", reads[i], NULL);
        CHECK_INT(a.status, 200);
        json_decref(a.body);
    }
    a = call(viewer, "GET", report_path, NULL);
    CHECK_INT(a.status, 200);
    json_decref(a.body);
    CHECK_INT(H_CTL_AS(&h, "viewer", "positions"), 0);

    TEST_STEP("an operator proposes resuming EASY: nothing changes until it is approved");
    int64_t resume =
        propose(op, "POST", "/api/v1/participants/EASY/resume", NULL, "resume", "EASY");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM participants WHERE code = 'EASY' "
                            "AND status = 'suspended'"),
              1);
    a = call(viewer, "GET", "/api/v1/proposals?state=pending", NULL);
    CHECK_INT(json_array_size(json_object_get(a.body, "proposals")), 1);
    json_decref(a.body);
    /* a second proposal of the same change waits for the first */
    a = call(op, "POST", "/api/v1/participants/EASY/resume", NULL);
    CHECK_INT(a.status, 409);
    json_decref(a.body);

    TEST_STEP("the operator approves its own proposal: 403 four-eyes; a viewer: 403");
    a = decide(op, resume, "approve", NULL);
    CHECK_INT(a.status, 403);
    CHECK(strncmp(error_of(&a), "four-eyes:", 10) == 0, "%s", error_of(&a));
    json_decref(a.body);
    a = decide(op, resume, "reject", NULL);
    CHECK_INT(a.status, 403);
    json_decref(a.body);
    refused(viewer, "POST", "/api/v1/proposals/1/approve", NULL, "needs the role operator");
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", (long long)resume);
    CHECK_INT(H_CTL(&h, "approve", ids), 1);

    TEST_STEP("a supervisor approves it: EASY is active, in the database and the switch");
    a = decide(sup, resume, "approve", NULL);
    CHECK_INT(a.status, 200);
    json_t *p = json_object_get(a.body, "proposal");
    CHECK_STR(json_string_value(json_object_get(p, "state")), "approved");
    CHECK_STR(json_string_value(json_object_get(p, "decided_by")), "supervisor");
    CHECK_STR(json_string_value(json_object_get(p, "proposed_by")), "operator");
    json_t *r = json_object_get(json_object_get(a.body, "result"), "participant");
    CHECK_STR(json_string_value(json_object_get(r, "status")), "active");
    json_decref(a.body);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM participants WHERE code = 'EASY' "
                            "AND status = 'active'"),
              1);
    a = decide(sup2, resume, "approve", NULL);
    CHECK_INT(a.status, 409); /* decided for good */
    json_decref(a.body);
    a = decide(sup2, resume, "reject", NULL);
    CHECK_INT(a.status, 409);
    json_decref(a.body);

    TEST_STEP("a cap proposed by a supervisor: not by an operator, not by itself, not by the "
              "same name on another certificate");
    int64_t before = db_ndc(&h, "JAZZ");
    int64_t cap =
        propose(sup, "PUT", "/api/v1/participants/JAZZ/ndc", "{\"ndc\":777700}", "ndc", "JAZZ");
    CHECK_INT(db_ndc(&h, "JAZZ"), before);
    a = decide(op, cap, "approve", NULL);
    CHECK_INT(a.status, 403);
    CHECK(strstr(error_of(&a), "needs the role supervisor") != NULL, "%s", error_of(&a));
    json_decref(a.body);
    a = decide(sup, cap, "approve", NULL);
    CHECK_INT(a.status, 403);
    CHECK(strncmp(error_of(&a), "four-eyes:", 10) == 0, "%s", error_of(&a));
    json_decref(a.body);
    SSL_CTX *again = h_tls_ctx(&h, "operator-supervisor"); /* CN supervisor, another key */
    a = decide(again, cap, "approve", NULL);
    CHECK_INT(a.status, 403);
    CHECK(strncmp(error_of(&a), "four-eyes:", 10) == 0, "%s", error_of(&a));
    json_decref(a.body);
    SSL_CTX_free(again);
    CHECK_INT(db_ndc(&h, "JAZZ"), before);

    TEST_STEP("the database refuses a self-approval too, asked directly as sikka_switch");
    struct tls_cert_id sup_id, sup2_id;
    fingerprint_of(&h, "supervisor", &sup_id);
    fingerprint_of(&h, "supervisor2", &sup2_id);
    char sql[512], err[512];
    /* the proposer's name on another certificate */
    snprintf(sql, sizeof(sql),
             "SELECT * FROM proposal_approve_ndc(%lld, 'supervisor', 'supervisor', '%s', '%s')",
             (long long)cap, sup2_id.serial, sup2_id.fingerprint);
    h_sql_as_switch(&h, sql, err, sizeof(err));
    CHECK(strstr(err, "four-eyes") != NULL, "the database allowed it: \"%s\"", err);
    /* another name on the proposer's certificate */
    snprintf(sql, sizeof(sql),
             "SELECT * FROM proposal_approve_ndc(%lld, 'someone', 'supervisor', '%s', '%s')",
             (long long)cap, sup_id.serial, sup_id.fingerprint);
    h_sql_as_switch(&h, sql, err, sizeof(err));
    CHECK(strstr(err, "four-eyes") != NULL, "the database allowed it: \"%s\"", err);
    /* an operator's role */
    snprintf(sql, sizeof(sql),
             "SELECT * FROM proposal_approve_ndc(%lld, 'supervisor2', 'operator', '%s', '%s')",
             (long long)cap, sup2_id.serial, sup2_id.fingerprint);
    h_sql_as_switch(&h, sql, err, sizeof(err));
    CHECK(strstr(err, "not permitted") != NULL, "the database allowed it: \"%s\"", err);
    /* and the change itself is not the switch's to make */
    h_sql_as_switch(&h, "SELECT * FROM participant_set_ndc('x', NULL, NULL, NULL, 'JAZZ', 1, NULL)",
                    err, sizeof(err));
    CHECK(strstr(err, "permission denied") != NULL, "the switch may set a cap: \"%s\"", err);
    /* nor to decide a proposal behind its table's back */
    h_sql_as_switch(&h, "UPDATE proposals SET state = 'approved'", err, sizeof(err));
    CHECK(strstr(err, "permission denied") != NULL, "the switch may write proposals: \"%s\"", err);
    CHECK_INT(db_ndc(&h, "JAZZ"), before);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM proposals WHERE id = %lld AND state = 'pending'",
                        (long long)cap),
              1);

    TEST_STEP("supervisor2 approves the cap: in force in the database and the switch");
    a = decide(sup2, cap, "approve", NULL);
    CHECK_INT(a.status, 200);
    r = json_object_get(json_object_get(a.body, "result"), "participant");
    CHECK_INT(json_integer_value(json_object_get(r, "ndc")), 777700);
    json_decref(a.body);
    CHECK_INT(db_ndc(&h, "JAZZ"), 777700);
    a = call(viewer, "GET", "/api/v1/participants/JAZZ", NULL);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(a.body, "participant"), "ndc")),
              777700);
    json_decref(a.body);

    TEST_STEP("the audit trail: name, role and certificate of each step");
    static const struct {
        const char *action, *name, *role, *base;
    } steps[] = {
        {"proposal.create", "supervisor", "supervisor", "supervisor"},
        {"proposal.approve", "supervisor2", "supervisor", "supervisor2"},
        {"ndc.set", "supervisor2", "supervisor", "supervisor2"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct tls_cert_id cid;
        fingerprint_of(&h, steps[i].base, &cid);
        CHECK_INT(h_sql_int(&h,
                            "SELECT count(*) FROM audit_log WHERE proposal_id = %lld "
                            "AND action = '%s' AND operator = '%s' AND operator_role = '%s' "
                            "AND cert_serial = '%s' AND cert_fingerprint = '%s'",
                            (long long)cap, steps[i].action, steps[i].name, steps[i].role,
                            cid.serial, cid.fingerprint),
                  1);
    }
    /* the immediate ones: the operator's certificate, no proposal */
    struct tls_cert_id op_id;
    fingerprint_of(&h, "operator", &op_id);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM audit_log WHERE action IN ('participant.suspend', "
                        "'window.close') AND operator = 'operator' AND operator_role = 'operator' "
                        "AND cert_fingerprint = '%s' AND proposal_id IS NULL",
                        op_id.fingerprint),
              2);
    /* GET /api/v1/audit shows them, with before and after */
    a = call(viewer, "GET", "/api/v1/audit?limit=3", NULL);
    json_t *row = json_array_get(json_object_get(a.body, "audit"), 0);
    CHECK_STR(json_string_value(json_object_get(row, "action")), "ndc.set");
    CHECK_STR(json_string_value(json_object_get(row, "operator")), "supervisor2");
    CHECK_STR(json_string_value(json_object_get(row, "role")), "supervisor");
    CHECK_STR(
        json_string_value(json_object_get(json_object_get(row, "certificate"), "fingerprint")),
        sup2_id.fingerprint);
    CHECK_INT(json_integer_value(json_object_get(row, "proposal")), cap);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(row, "before"), "ndc")), before);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(row, "after"), "ndc")), 777700);
    json_decref(a.body);
    CHECK_INT(H_CTL_AS(&h, "viewer", "audit", "--limit", "5"), 0);
    h_ctl_expect(&h, "supervisor2");
    char prefix[17];
    snprintf(prefix, sizeof(prefix), "%.16s", sup2_id.fingerprint); /* what the table shows */
    h_ctl_expect(&h, prefix);

    TEST_STEP("a settlement proposed, then rejected with a reason: it never happens");
    char closed_s[24];
    snprintf(closed_s, sizeof(closed_s), "%lld", (long long)closed);
    CHECK_INT(H_CTL_AS(&h, "supervisor", "window", "settle", closed_s), 0);
    int64_t settle = h_ctl_proposed(&h);
    CHECK_INT(H_CTL_AS(&h, "viewer", "proposals"), 0);
    h_ctl_expect(&h, "settle window");
    snprintf(ids, sizeof(ids), "%lld", (long long)settle);
    CHECK_INT(H_CTL_AS(&h, "supervisor", "reject", ids, "--reason", "mine"), 1);
    CHECK_INT(H_CTL_AS(&h, "supervisor2", "reject", ids, "--reason", "report not checked yet"), 0);
    h_ctl_expect(&h, "rejected proposal");
    CHECK_INT(H_CTL_AS(&h, "supervisor2", "approve", ids), 1);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM settlement_windows WHERE id = %lld "
                        "AND state = 'closed'",
                        (long long)closed),
              1);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM proposals WHERE id = %lld AND state = 'rejected' "
                        "AND decided_by = 'supervisor2' AND reason = 'report not checked yet'",
                        (long long)settle),
              1);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM audit_log WHERE proposal_id = %lld AND action = "
                        "'proposal.reject' AND operator = 'supervisor2'",
                        (long long)settle),
              1);
    CHECK_INT(H_CTL_AS(&h, "viewer", "proposals", "--all"), 0);
    h_ctl_expect(&h, "rejected");

    TEST_STEP("its proposer withdraws a proposal; nobody else may, and it never happens");
    CHECK_INT(H_CTL_AS(&h, "supervisor", "window", "settle", closed_s), 0);
    settle = h_ctl_proposed(&h);
    snprintf(ids, sizeof(ids), "%lld", (long long)settle);
    CHECK_INT(H_CTL_AS(&h, "supervisor2", "withdraw", ids), 1);
    a = decide(op, settle, "withdraw", NULL);
    CHECK_INT(a.status, 403);
    CHECK(strstr(error_of(&a), "only supervisor who proposed it may withdraw") != NULL, "%s",
          error_of(&a));
    json_decref(a.body);
    CHECK_INT(H_CTL_AS(&h, "supervisor", "withdraw", ids, "--reason", "wrong window"), 0);
    h_ctl_expect(&h, "withdrawn proposal");
    CHECK_INT(H_CTL_AS(&h, "supervisor2", "approve", ids), 1);
    CHECK_INT(H_CTL_AS(&h, "supervisor", "withdraw", ids), 1);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM settlement_windows WHERE id = %lld "
                        "AND state = 'closed'",
                        (long long)closed),
              1);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM proposals WHERE id = %lld AND state = 'withdrawn' "
                        "AND decided_by IS NULL AND reason = 'wrong window'",
                        (long long)settle),
              1);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM audit_log WHERE proposal_id = %lld AND action = "
                        "'proposal.withdraw' AND operator = 'supervisor' "
                        "AND cert_fingerprint = '%s'",
                        (long long)settle, sup_id.fingerprint),
              1);
    CHECK_INT(H_CTL_AS(&h, "viewer", "proposals", "--all"), 0);
    h_ctl_expect(&h, "withdrawn");

    TEST_STEP("a proposal survives a restart of the switch and is approved after it");
    CHECK_INT(H_CTL_AS(&h, "supervisor2", "window", "settle", closed_s), 0);
    settle = h_ctl_proposed(&h);
    CHECK_INT(h_stop(&h), 0);
    h_config(&h, "proposal_ttl_s = 4\n");
    h_start(&h);
    snprintf(ids, sizeof(ids), "%lld", (long long)settle);
    CHECK_INT(H_CTL_AS(&h, "supervisor", "approve", ids), 0);
    h_ctl_expect(&h, "settled window");
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM settlement_windows WHERE id = %lld "
                        "AND state = 'settled'",
                        (long long)closed),
              1);
    CHECK_INT(H_CTL(&h, "reconcile"), 0);

    TEST_STEP("with proposal_ttl_s = 4 a proposal expires: listed as expired, approval refused");
    a = call(sup, "PUT", "/api/v1/participants/KOKO/ndc", "{\"ndc\":4200}");
    CHECK_INT(a.status, 202);
    int64_t late = json_integer_value(json_object_get(json_object_get(a.body, "proposal"), "id"));
    json_decref(a.body);
    int64_t koko = db_ndc(&h, "KOKO");
    int64_t deadline = h_now_ms() + 15000;
    for (;;) {
        a = call(viewer, "GET", "/api/v1/proposals?state=expired", NULL);
        json_t *list = json_object_get(a.body, "proposals");
        bool seen = false;
        for (size_t i = 0; i < json_array_size(list); i++)
            seen |= json_integer_value(json_object_get(json_array_get(list, i), "id")) == late;
        json_decref(a.body);
        if (seen)
            break;
        CHECK(h_now_ms() < deadline, "proposal %lld not expired 15 s after it was made",
              (long long)late);
        h_pump(&h, 200);
    }
    /* the switch's sweep marks it in the table too, and the audit trail says so,
     * without anyone making another proposal */
    h_wait_sql_int(&h, 1, 15000,
                   "SELECT count(*) FROM proposals WHERE id = %lld AND state = 'expired'",
                   (long long)late);
    CHECK_INT(h_sql_int(&h,
                        "SELECT count(*) FROM audit_log WHERE proposal_id = %lld AND action = "
                        "'proposal.expire' AND operator = 'scheme' AND operator_role IS NULL",
                        (long long)late),
              1);
    a = decide(sup2, late, "approve", NULL);
    CHECK_INT(a.status, 409);
    CHECK(strstr(error_of(&a), "expired") != NULL, "%s", error_of(&a));
    json_decref(a.body);
    CHECK_INT(db_ndc(&h, "KOKO"), koko);
    /* and in the database, whoever asks */
    snprintf(sql, sizeof(sql),
             "SELECT * FROM proposal_approve_ndc(%lld, 'supervisor2', 'supervisor', '%s', '%s')",
             (long long)late, sup2_id.serial, sup2_id.fingerprint);
    h_sql_as_switch(&h, sql, err, sizeof(err));
    CHECK(strstr(err, "expired") != NULL, "the database approved an expired proposal: \"%s\"", err);
    CHECK_INT(db_ndc(&h, "KOKO"), koko);
    /* a new proposal of the same change may be made: the expired one gave its place */
    CHECK_INT(H_CTL_AS(&h, "supervisor", "ndc", "set", "KOKO", "42.00"), 0);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM proposals WHERE id = %lld AND state = 'expired'",
                        (long long)late),
              1);

    TEST_STEP("a new participant, proposed and approved with sikka-ctl --as");
    CHECK_INT(H_FOUR_EYES(&h, "supervisor2", "supervisor", "participant", "add", "NEWP", "--name",
                          "New Wallet", "--kind", "wallet", "--ndc", "10.00"),
              0);
    h_ctl_expect(&h, "participant NEWP added");
    CHECK_INT(db_ndc(&h, "NEWP"), 1000);
    a = call(viewer, "GET", "/api/v1/participants/NEWP", NULL);
    CHECK_INT(a.status, 200);
    json_decref(a.body);
    CHECK_INT(H_CTL(&h, "reconcile"), 0);

    SSL_CTX_free(viewer);
    SSL_CTX_free(op);
    SSL_CTX_free(sup);
    SSL_CTX_free(sup2);
    h_cleanup(&h);
    return 0;
}
