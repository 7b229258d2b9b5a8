/* The web console's server side, over raw HTTPS with the operator
 * certificate: the embedded files (types, ETag and 304, HEAD, 404, 405), the
 * security headers on every answer (files, API, errors) and no CORS header
 * ever; cross-site writes refused (a foreign or "null" Origin, an Origin for
 * another Host, Sec-Fetch-Site cross-site or same-site: 403; OPTIONS: 405;
 * a form-encoded, text/plain or untyped write: 415) with nothing changed;
 * the transfer search (each filter, paging with before/next, every
 * parameter validated) and its plans (the indexed searches read their
 * index); the transfer detail's timeline. */
#include <jansson.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "console.h"
#include "harness.h"
#include "sql.h"
#include "tls.h"

static int admin_port;
static SSL_CTX *op_ctx;

struct answer {
    int status;
    char head[8192];
    char *body; /* NUL-terminated, owned */
    size_t body_len;
};

static void answer_free(struct answer *a)
{
    free(a->body);
    a->body = NULL;
}

/* The value of header `name` in a's head ("" when absent). */
static const char *header(const struct answer *a, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    buf[0] = '\0';
    for (const char *line = strstr(a->head, "\r\n"); line != NULL;
         line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            l += n + 1;
            while (*l == ' ')
                l++;
            size_t m = strcspn(l, "\r");
            snprintf(buf, len, "%.*s", (int)(m < len ? m : len - 1), l);
            return buf;
        }
    }
    return buf;
}

/* Sends `request` (a whole HTTP/1.1 request, Connection: close) with the
 * operator certificate and reads the answer to the end. */
static void send_raw(const char *request, struct answer *a)
{
    memset(a, 0, sizeof(*a));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)admin_port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "connect");
    SSL *ssl = SSL_new(op_ctx);
    CHECK(ssl != NULL && tls_client_prepare(ssl, "127.0.0.1") == 0 && SSL_set_fd(ssl, fd) == 1);
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    CHECK(SSL_connect(ssl) == 1, "handshake");
    CHECK(SSL_write(ssl, request, (int)strlen(request)) == (int)strlen(request), "write");
    size_t cap = 1 << 16, len = 0;
    char *in = malloc(cap);
    CHECK(in != NULL);
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            in = realloc(in, cap);
            CHECK(in != NULL);
        }
        int r = SSL_read(ssl, in + len, (int)(cap - len - 1));
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    in[len] = '\0';
    SSL_free(ssl);
    close(fd);
    char *end = strstr(in, "\r\n\r\n");
    CHECK(end != NULL && len > 12 && strncmp(in, "HTTP/1.1 ", 9) == 0, "an HTTP answer: %s", in);
    a->status = atoi(in + 9);
    size_t hlen = (size_t)(end - in) + 2;
    CHECK(hlen < sizeof(a->head), "the head fits");
    memcpy(a->head, in, hlen);
    a->head[hlen] = '\0';
    a->body_len = len - (hlen + 2);
    a->body = malloc(a->body_len + 1);
    CHECK(a->body != NULL);
    memcpy(a->body, end + 4, a->body_len);
    a->body[a->body_len] = '\0';
    free(in);
}

/* method path, with extra header lines ("" for none) and a body (NULL: none). */
static int req(const char *method, const char *path, const char *headers, const char *body,
               struct answer *a)
{
    char *r = NULL;
    CHECK(asprintf(&r,
                   "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s"
                   "Content-Length: %zu\r\n\r\n%s",
                   method, path, admin_port, headers, body != NULL ? strlen(body) : 0,
                   body != NULL ? body : "") > 0);
    send_raw(r, a);
    free(r);
    fprintf(stderr, "   %s %s [%s] -> %d\n", method, path, headers[0] ? "headers" : "", a->status);
    return a->status;
}

/* The headers every answer must carry, and no CORS header. */
static void check_security_headers(const struct answer *a, const char *cache)
{
    char v[1024];
    CHECK_STR(header(a, "Content-Security-Policy", v, sizeof(v)),
              "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'");
    CHECK_STR(header(a, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
    CHECK_STR(header(a, "Referrer-Policy", v, sizeof(v)), "no-referrer");
    CHECK_STR(header(a, "X-Frame-Options", v, sizeof(v)), "DENY");
    CHECK(strncmp(header(a, "Strict-Transport-Security", v, sizeof(v)), "max-age=", 8) == 0,
          "HSTS: %s", v);
    CHECK_STR(header(a, "Cache-Control", v, sizeof(v)), cache);
    CHECK(strcasestr(a->head, "Access-Control-") == NULL, "no CORS header: %s", a->head);
}

/* A JSON answer with an "error" when status >= 400. Returns it (decref). */
static json_t *json_answer(const struct answer *a, int want)
{
    CHECK(a->status == want, "status %d, want %d: %s", a->status, want, a->body);
    json_t *j = json_loadb(a->body, a->body_len, 0, NULL);
    CHECK(json_is_object(j), "a JSON answer: %s", a->body);
    if (want >= 400) {
        CHECK(json_is_string(json_object_get(j, "error")), "an error: %s", a->body);
        fprintf(stderr, "      %s\n", json_string_value(json_object_get(j, "error")));
    }
    check_security_headers(a, "no-store");
    return j;
}

static json_t *get_json(const char *path, int want)
{
    struct answer a;
    req("GET", path, "", NULL, &a);
    json_t *j = json_answer(&a, want);
    answer_free(&a);
    return j;
}

/* GET /api/v1/transfers?query: the transfers' ids (newest first) and next. */
static size_t search(const char *query, int64_t *ids, size_t max, int64_t *next)
{
    char path[512];
    snprintf(path, sizeof(path), "/api/v1/transfers?%s", query);
    json_t *j = get_json(path, 200);
    json_t *list = json_object_get(j, "transfers");
    CHECK(json_is_array(list), "transfers: a list");
    size_t n = json_array_size(list);
    CHECK(n <= max, "%zu transfers, at most %zu expected", n, max);
    for (size_t i = 0; i < n; i++) {
        ids[i] = json_integer_value(json_object_get(json_array_get(list, i), "id"));
        if (i > 0)
            CHECK(ids[i] < ids[i - 1], "newest first");
    }
    json_t *nx = json_object_get(j, "next");
    CHECK(json_is_null(nx) || json_is_integer(nx), "next: id or null");
    *next = json_is_integer(nx) ? json_integer_value(nx) : 0;
    json_decref(j);
    return n;
}

static void expect_search_400(const char *query)
{
    char path[512];
    snprintf(path, sizeof(path), "/api/v1/transfers?%s", query);
    json_decref(get_json(path, 400));
}

/* A settled payment from JAZZ to payee (KOKO or MEZN), or one the payee
 * refuses with AC01. Returns its transfer id. */
static uint64_t pay(struct client *jazz, struct client *payee, const char *payee_code,
                    const char *msg_id, Sikka__V1__Purpose purpose, const char *loan,
                    const char *invoice, bool accept)
{
    struct h_transfer t = {.msg_id = msg_id,
                           .debtor_agent = "JAZZ",
                           .creditor_agent = payee_code,
                           .amount = 250000,
                           .purpose = purpose,
                           .loan_id = loan,
                           .instalment = loan != NULL ? 3 : 0,
                           .invoice = invoice};
    h_send_transfer(jazz, &t);
    h_payee_decide(payee, accept, accept ? NULL : "AC01");
    uint64_t id = h_expect_report(jazz, msg_id,
                                  accept ? SIKKA__V1__TX_STATUS__ACSC : SIKKA__V1__TX_STATUS__RJCT,
                                  accept ? "" : "AC01");
    client_envelope_free(h_expect(payee, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    return id;
}

/* The plan of a search statement (sql.c), generic, with sequential scans
 * priced out: CHECKs it reads `index`. */
static void expect_plan(struct harness *h, const char *stmt, const char *args, const char *index)
{
    const char *text = NULL;
    for (size_t i = 0; i < sql_query_nstmts; i++)
        if (strcmp(sql_query_stmts[i].name, stmt) == 0)
            text = sql_query_stmts[i].sql;
    CHECK(text != NULL, "statement %s", stmt);
    PQclear(h_sql(h, "SET plan_cache_mode = force_generic_plan"));
    PQclear(h_sql(h, "SET enable_seqscan = off"));
    PQclear(h_sql(h, "PREPARE s_%s AS %s", stmt, text));
    PGresult *r = h_sql(h, "EXPLAIN EXECUTE s_%s(%s)", stmt, args);
    char plan[8192] = "";
    for (int i = 0; i < PQntuples(r); i++) {
        size_t l = strlen(plan);
        snprintf(plan + l, sizeof(plan) - l, "%s\n", PQgetvalue(r, i, 0));
    }
    PQclear(r);
    PQclear(h_sql(h, "DEALLOCATE s_%s", stmt));
    PQclear(h_sql(h, "RESET plan_cache_mode"));
    PQclear(h_sql(h, "RESET enable_seqscan"));
    CHECK(strstr(plan, index) != NULL && strstr(plan, "Seq Scan on transfers") == NULL,
          "%s reads %s:\n%s", stmt, index, plan);
    fprintf(stderr, "   %s reads %s\n", stmt, index);
}

int main(void)
{
    struct harness h;
    h_init(&h, "console");
    h_admin(&h);
    admin_port = h.admin_port;
    h_start(&h);
    op_ctx = h_tls_ctx(&h, "operator");
    struct answer a;
    char v[512];

    TEST_STEP("the console's files: /, types, ETag, 304, HEAD, 404, 405");
    CHECK_INT(req("GET", "/", "", NULL, &a), 200);
    check_security_headers(&a, "no-cache");
    CHECK_STR(header(&a, "Content-Type", v, sizeof(v)), "text/html; charset=utf-8");
    CHECK(strstr(a.body, "<script type=\"module\" src=\"/app.js\">") != NULL, "index.html");
    CHECK(strstr(a.body, "style=") == NULL && strstr(a.body, "<style") == NULL &&
              strstr(a.body, "onclick") == NULL,
          "no inline style or handler in index.html");
    char etag[80];
    snprintf(etag, sizeof(etag), "%s", header(&a, "ETag", v, sizeof(v)));
    CHECK(etag[0] == '"' && strlen(etag) == 34, "ETag %s", etag);
    CHECK_STR(etag, console_find("/index.html")->etag);
    CHECK_INT(a.body_len, console_find("/index.html")->len);
    answer_free(&a);
    for (size_t i = 0; i < console_nassets; i++) {
        const struct console_asset *as = &console_assets[i];
        CHECK_INT(req("GET", as->path, "", NULL, &a), 200);
        check_security_headers(&a, "no-cache");
        CHECK_STR(header(&a, "Content-Type", v, sizeof(v)), as->content_type);
        CHECK_STR(header(&a, "ETag", v, sizeof(v)), as->etag);
        CHECK(a.body_len == as->len && memcmp(a.body, as->data, as->len) == 0, "%s as embedded",
              as->path);
        answer_free(&a);
    }
    CHECK(console_find("/app.js") != NULL && console_find("/console.css") != NULL,
          "the app and its style are embedded");
    char inm[160];
    snprintf(inm, sizeof(inm), "If-None-Match: %s\r\n", etag);
    CHECK_INT(req("GET", "/", inm, NULL, &a), 304);
    CHECK_INT(a.body_len, 0);
    CHECK_STR(header(&a, "ETag", v, sizeof(v)), etag);
    check_security_headers(&a, "no-cache");
    answer_free(&a);
    snprintf(inm, sizeof(inm), "If-None-Match: \"x\", W/%s\r\n", etag);
    CHECK_INT(req("GET", "/index.html", inm, NULL, &a), 304);
    answer_free(&a);
    CHECK_INT(req("GET", "/", "If-None-Match: \"0123\"\r\n", NULL, &a), 200);
    CHECK(a.body_len > 0, "a stale ETag gets the file");
    answer_free(&a);
    CHECK_INT(req("HEAD", "/app.js", "", NULL, &a), 200);
    CHECK_INT(a.body_len, 0);
    CHECK_INT(atoi(header(&a, "Content-Length", v, sizeof(v))), console_find("/app.js")->len);
    CHECK_STR(header(&a, "Content-Type", v, sizeof(v)), "text/javascript; charset=utf-8");
    check_security_headers(&a, "no-cache");
    answer_free(&a);
    static const char *const missing[] = {"/nothing.js", "/index.html/", "/../switch/admin.c",
                                          "/console/app.js", "/.git/config"};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        req("GET", missing[i], "", NULL, &a);
        json_decref(json_answer(&a, 404));
        answer_free(&a);
    }
    req("POST", "/", "Content-Type: application/json\r\n", "{}", &a);
    json_decref(json_answer(&a, 405));
    CHECK_STR(header(&a, "Allow", v, sizeof(v)), "GET, HEAD");
    answer_free(&a);

    TEST_STEP("the API's answers carry the same headers, no-store, and no CORS");
    json_decref(get_json("/api/v1/status", 200));
    json_decref(get_json("/api/v1/nothing", 404));
    json_decref(get_json("/metrics/../api/v1/status", 404));
    CHECK_INT(req("GET", "/api/v1/participants",
                  "Origin: https://evil.example\r\nSec-Fetch-Site: cross-site\r\n", NULL, &a),
              200);
    check_security_headers(&a, "no-store"); /* a read answers, but never to another origin */
    answer_free(&a);

    TEST_STEP("cross-site writes: refused, and nothing changes");
    struct {
        const char *headers;
        int status;
    } refused[] = {
        {"Origin: https://evil.example\r\nContent-Type: application/json\r\n", 403},
        {"Origin: null\r\nContent-Type: application/json\r\n", 403},
        {"Origin: http://127.0.0.1\r\nContent-Type: application/json\r\n", 403},
        {"Origin: https://127.0.0.1\r\nContent-Type: application/json\r\n", 403},
        {"Sec-Fetch-Site: cross-site\r\nContent-Type: application/json\r\n", 403},
        {"Sec-Fetch-Site: same-site\r\nContent-Type: application/json\r\n", 403},
        {"Content-Type: application/x-www-form-urlencoded\r\n", 415},
        {"Content-Type: text/plain\r\n", 415},
        {"Content-Type: multipart/form-data; boundary=x\r\n", 415},
        {"Content-Type: application/jsonx\r\n", 415},
        {"", 415},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        req("POST", "/api/v1/participants/NAYA/suspend", refused[i].headers, "{}", &a);
        json_decref(json_answer(&a, refused[i].status));
        answer_free(&a);
    }
    /* an Origin for another Host: the Host is what the browser dialled */
    char other[256];
    snprintf(other, sizeof(other),
             "POST /api/v1/windows/close HTTP/1.1\r\nHost: evil.example\r\n"
             "Origin: https://127.0.0.1:%d\r\nContent-Type: application/json"
             "\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
             admin_port);
    send_raw(other, &a);
    json_decref(json_answer(&a, 403));
    answer_free(&a);
    req("OPTIONS", "/api/v1/participants",
        "Origin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\n", NULL, &a);
    json_decref(json_answer(&a, 403));
    answer_free(&a);
    req("OPTIONS", "/api/v1/participants", "", NULL, &a);
    json_decref(json_answer(&a, 405));
    answer_free(&a);
    req("PUT", "/api/v1/participants/NAYA/ndc", "Content-Type: text/plain\r\n", "{\"ndc\":1}", &a);
    json_decref(json_answer(&a, 415));
    answer_free(&a);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM participants WHERE code = 'NAYA' AND "
                            "status = 'active' AND ndc <> 1"),
              1);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM settlement_windows"), 1);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM audit_log"), 0);

    TEST_STEP("writes from the console's own origin, or from no browser, as JSON: served");
    char own[200];
    snprintf(own, sizeof(own),
             "Origin: https://127.0.0.1:%d\r\nSec-Fetch-Site: same-origin\r\n"
             "Content-Type: application/json; charset=utf-8\r\n",
             admin_port);
    req("POST", "/api/v1/participants/NAYA/suspend", own, "{}", &a);
    json_decref(json_answer(&a, 200));
    answer_free(&a);
    /* a resume needs four eyes: the write is served as a proposal */
    req("POST", "/api/v1/participants/NAYA/resume", "Content-Type: application/json\r\n", NULL, &a);
    json_decref(json_answer(&a, 202));
    answer_free(&a);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM audit_log WHERE action LIKE 'participant.%%'"),
              1);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM audit_log WHERE action = 'proposal.create'"), 1);

    TEST_STEP("transfers to find: a BNPL repayment, a supplier payment, a refusal, P2P");
    struct client *jazz = h_connect(&h, "JAZZ");
    struct client *koko = h_connect(&h, "KOKO");
    struct client *mezn = h_connect(&h, "MEZN");
    uint64_t loan = pay(jazz, koko, "KOKO", "CON-LOAN", SIKKA__V1__PURPOSE__BNPL_REPAYMENT,
                        "KOKO-LN-42", NULL, true);
    uint64_t inv = pay(jazz, mezn, "MEZN", "CON-INV", SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT, NULL,
                       "INV-2026-9", true);
    uint64_t refusal =
        pay(jazz, koko, "KOKO", "CON-RJCT", SIKKA__V1__PURPOSE__P2P, NULL, NULL, false);
    uint64_t p2p[5];
    for (int i = 0; i < 5; i++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "CON-P2P-%d", i);
        p2p[i] = pay(jazz, koko, "KOKO", msg, SIKKA__V1__PURPOSE__P2P, NULL, NULL, true);
    }

    TEST_STEP("search: each filter finds what it should");
    int64_t ids[300], next;
    CHECK_INT(search("msg_id=CON-LOAN", ids, 300, &next), 1);
    CHECK_INT(ids[0], (int64_t)loan);
    CHECK_INT(next, 0);
    CHECK_INT(search("ref=KOKO-LN-42", ids, 300, &next), 1);
    CHECK_INT(ids[0], (int64_t)loan);
    CHECK_INT(search("ref=INV-2026-9", ids, 300, &next), 1);
    CHECK_INT(ids[0], (int64_t)inv);
    CHECK_INT(search("ref=INV-2026-9&participant=KOKO", ids, 300, &next), 0);
    CHECK_INT(search("status=RJCT", ids, 300, &next), 1);
    CHECK_INT(ids[0], (int64_t)refusal);
    CHECK_INT(search("participant=MEZN", ids, 300, &next), 1);
    CHECK_INT(search("participant=JAZZ&status=ACSC", ids, 300, &next), 7);
    CHECK_INT(search("purpose=SUPPLIER_PAYMENT", ids, 300, &next), 1);
    CHECK_INT(search("purpose=P2P&status=ACSC", ids, 300, &next), 5);
    CHECK_INT(ids[0], (int64_t)p2p[4]);
    CHECK_INT(search("end_to_end_id=CON-INV", ids, 300, &next), 1); /* e2e defaults to msg_id */
    CHECK_INT(search("msg_id=CON-LOAN&status=RJCT", ids, 300, &next), 0);
    CHECK_INT(search("msg_id=NOPE", ids, 300, &next), 0);
    CHECK_INT(search("from=2000-01-01&to=2999-01-01T00:00:00Z", ids, 300, &next), 8);
    CHECK_INT(search("from=2999-01-01", ids, 300, &next), 0);
    CHECK_INT(search("to=2000-01-01T00:00%2B05:00", ids, 300, &next), 0);
    CHECK_INT(search("msg_id=&ref=&participant=", ids, 300, &next), 8); /* empty: no filter */

    TEST_STEP("paging: limit and before/next walk every transfer once, newest first");
    int64_t all[300];
    size_t seen = 0;
    char query[64] = "limit=3";
    for (int page = 0; page < 10; page++) {
        size_t n = search(query, ids, 3, &next);
        for (size_t i = 0; i < n; i++) {
            CHECK(seen == 0 || ids[i] < all[seen - 1], "pages do not overlap");
            all[seen++] = ids[i];
        }
        if (next == 0)
            break;
        CHECK_INT(next, ids[n - 1]);
        snprintf(query, sizeof(query), "limit=3&before=%" PRId64, next);
    }
    CHECK_INT(seen, 8);
    CHECK_INT(all[0], (int64_t)p2p[4]);
    CHECK_INT(all[7], (int64_t)loan);
    CHECK_INT(search("limit=8", ids, 8, &next), 8);
    CHECK_INT(next, 0);
    CHECK_INT(search("status=ACSC&limit=2", ids, 2, &next), 2);
    CHECK(next != 0, "a next page");

    TEST_STEP("search parameters are validated");
    static const char *const bad[] = {"limit=0",
                                      "limit=201",
                                      "limit=abc",
                                      "limit=-1",
                                      "before=0",
                                      "before=x",
                                      "status=ACCP",
                                      "status=acsc",
                                      "participant=jazz",
                                      "participant=JAZZZ",
                                      "purpose=GIFT",
                                      "from=2026-13-01",
                                      "from=2026-02-30",
                                      "from=yesterday",
                                      "to=2026-01-01T25:00",
                                      "to=2026-01-01T10:00+99:00",
                                      "from=2026-01-02&to=2026-01-01",
                                      "from=2026-01-01&to=2026-01-01",
                                      "msg_id=0123456789012345678901234567890123456",
                                      "msg_id=a%01b",
                                      "ref=%FF",
                                      "msg_id=A&msg_id=B",
                                      "id=1",
                                      "format=csv"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_search_400(bad[i]);

    TEST_STEP("the indexed searches read their index (generic plans)");
    expect_plan(&h, SQL_SEARCH_MSG_ID,
                "9223372036854775807, 51, 'X', NULL, NULL, NULL, NULL, NULL, NULL, NULL",
                "transfers_payer_msg_id_key");
    expect_plan(&h, SQL_SEARCH_REF,
                "9223372036854775807, 51, NULL, NULL, NULL, NULL, NULL, 'X', NULL, NULL",
                "transfers_ref");
    expect_plan(&h, SQL_SEARCH_REJECTED,
                "9223372036854775807, 51, NULL, NULL, NULL, 'RJCT', NULL, NULL, NULL, NULL",
                "transfers_rejected");
    expect_plan(&h, SQL_SEARCH_SCAN,
                "9223372036854775807, 51, NULL, NULL, 'JAZZ', NULL, NULL, NULL, NULL, NULL",
                "transfers_pkey");

    TEST_STEP("the transfer's timeline: received, forwarded, decided, posted, reported; a "
              "refusal: forwarded, decided AC01, recorded");
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/transfers/%" PRIu64, loan);
    json_t *j = get_json(path, 200);
    json_t *tl = json_object_get(j, "timeline");
    CHECK(json_is_array(tl) && json_array_size(tl) >= 5, "a timeline");
    static const char *const settled_events[] = {"received", "forwarded", "decided", "posted",
                                                 "reported"};
    for (size_t i = 0; i < 5; i++) {
        json_t *ev = json_array_get(tl, i);
        CHECK_STR(json_string_value(json_object_get(ev, "event")), settled_events[i]);
        CHECK(json_is_string(json_object_get(ev, "at")), "%s at a time", settled_events[i]);
    }
    CHECK_STR(json_string_value(json_object_get(json_array_get(tl, 1), "payee")), "KOKO");
    CHECK_STR(json_string_value(json_object_get(json_array_get(tl, 2), "status")), "ACSC");
    /* in order: forwarded no earlier than received, decided no earlier than forwarded */
    for (size_t i = 1; i < 3; i++)
        CHECK(strcmp(json_string_value(json_object_get(json_array_get(tl, i - 1), "at")),
                     json_string_value(json_object_get(json_array_get(tl, i), "at"))) <= 0,
              "timeline event %zu before %zu", i, i - 1);
    const char *notice = json_string_value(json_object_get(j, "payee_notice"));
    CHECK(notice != NULL && (strcmp(notice, "pending") == 0 || strcmp(notice, "acknowledged") == 0),
          "payee_notice %s", notice != NULL ? notice : "(none)");
    json_decref(j);
    snprintf(path, sizeof(path), "/api/v1/transfers/%" PRIu64, refusal);
    j = get_json(path, 200);
    tl = json_object_get(j, "timeline");
    CHECK_STR(json_string_value(json_object_get(json_array_get(tl, 1), "event")), "forwarded");
    CHECK_STR(json_string_value(json_object_get(json_array_get(tl, 2), "event")), "decided");
    CHECK_STR(json_string_value(json_object_get(json_array_get(tl, 2), "reason")), "AC01");
    CHECK_STR(json_string_value(json_object_get(json_array_get(tl, 3), "event")), "recorded");
    json_decref(j);

    TEST_STEP("a transfer still waiting for its payee: its timeline from memory, received and "
              "forwarded with their times");
    struct h_transfer waiting = {.msg_id = "CON-WAIT",
                                 .debtor_agent = "JAZZ",
                                 .creditor_agent = "KOKO",
                                 .amount = 1000,
                                 .purpose = SIKKA__V1__PURPOSE__P2P};
    h_send_transfer(jazz, &waiting);
    Envelope *fwd = h_expect(koko, SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER, 5000);
    uint64_t waiting_id = fwd->credit_transfer->transfer_id;
    client_envelope_free(fwd);
    snprintf(path, sizeof(path), "/api/v1/transfers/%" PRIu64, waiting_id);
    j = get_json(path, 200);
    CHECK_STR(json_string_value(json_object_get(j, "state")), "awaiting_payee");
    tl = json_object_get(j, "timeline");
    CHECK_INT(json_array_size(tl), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(tl, 0), "event")), "received");
    CHECK_STR(json_string_value(json_object_get(json_array_get(tl, 1), "event")), "forwarded");
    CHECK_STR(json_string_value(json_object_get(json_array_get(tl, 1), "payee")), "KOKO");
    const char *fwd_at = json_string_value(json_object_get(json_array_get(tl, 1), "at"));
    CHECK(fwd_at != NULL && strlen(fwd_at) == 24 && fwd_at[23] == 'Z', "forwarded at %s",
          fwd_at != NULL ? fwd_at : "(none)");
    json_decref(j);
    h_send_decision(koko, waiting_id, true, NULL);
    h_expect_report(jazz, "CON-WAIT", SIKKA__V1__TX_STATUS__ACSC, "");
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));

    client_free(jazz);
    client_free(koko);
    client_free(mezn);
    SSL_CTX_free(op_ctx);
    h_cleanup(&h);
    return 0;
}
