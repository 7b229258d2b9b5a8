/* Metrics: payments settled and rejected with known reasons, then GET
 * /metrics over real mutual TLS with the operator certificate: every
 * counter equals what was sent, sessions per participant, positions, caps
 * and the window as the ledger holds them, histogram counts equal the
 * settled transfers, and `promtool check metrics` accepts the text (a
 * missing promtool fails the test: tests/run.sh installs it). GET
 * /api/v1/stats: the settled seconds add up, `since` filters, a bad one is
 * 400. The Grafana dashboard asks only for metrics the switch exports;
 * `promtool check config` accepts deploy/prometheus/prometheus.yml pointed
 * at the test PKI. After a restart the open window's gross and postings
 * still include the earlier boot's postings; a window close starts them
 * from zero. */
#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "https.h"
#include "metrics.h"

static int admin_port;

static int get(SSL_CTX *ctx, const char *method, const char *path, struct https_response *resp)
{
    char err[512];
    int rc = https_request(ctx, "127.0.0.1", admin_port, method, path, NULL, 0, 5000, resp, err,
                           sizeof(err));
    CHECK(rc == 0, "%s %s: %s", method, path, err);
    return resp->status;
}

/* GET /metrics: 200 with the exposition's content type; the body, owned. */
static char *scrape(SSL_CTX *ctx)
{
    struct https_response resp;
    CHECK_INT(get(ctx, "GET", "/metrics", &resp), 200);
    CHECK_STR(resp.content_type, METRICS_CONTENT_TYPE);
    CHECK(strlen(resp.body) == resp.body_len, "no NUL in the exposition");
    char *text = resp.body;
    resp.body = NULL;
    https_response_free(&resp);
    return text;
}

/* The value of the sample `series` (name{labels} exactly as the switch
 * writes them); false when there is none. */
static bool sample(const char *text, const char *series, double *value)
{
    size_t n = strlen(series);
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        CHECK(end != NULL, "every line ends with a newline");
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            char *stop;
            *value = strtod(line + n + 1, &stop);
            CHECK(stop == end, "a single value: %.*s", (int)(end - line), line);
            return true;
        }
        line = end + 1;
    }
    return false;
}

static int64_t isample(const char *text, const char *series)
{
    double v;
    CHECK(sample(text, series, &v), "no sample %s in:\n%s", series, text);
    CHECK(v == (double)(int64_t)v, "%s is %f, not an integer", series, v);
    return (int64_t)v;
}

/* Samples whose line starts with prefix. */
static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    for (const char *line = text; *line != '\0';) {
        n += strncmp(line, prefix, strlen(prefix)) == 0;
        const char *end = strchr(line, '\n');
        line = end != NULL ? end + 1 : line + strlen(line);
    }
    return n;
}

static char *write_file(struct harness *h, const char *name, const char *text)
{
    static char path[400];
    snprintf(path, sizeof(path), "%s/%s", h->workdir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL && fputs(text, f) >= 0 && fclose(f) == 0, "writing %s", path);
    return path;
}

/* Runs a shell command; its exit status. */
static int run(const char *cmd)
{
    fprintf(stderr, "   $ %s\n", cmd);
    int rc = system(cmd);
    CHECK(rc != -1 && WIFEXITED(rc), "%s did not run", cmd);
    return WEXITSTATUS(rc);
}

static void need_promtool(void)
{
    CHECK(run("command -v promtool >/dev/null") == 0,
          "promtool is missing: tests/run.sh installs it (deploy/install-deps.sh, Debian's "
          "prometheus package)");
}

/* One payment answered as the test says, both sides' reports read;
 * returns its transfer id. */
static uint64_t pay(struct client *payer, const char *from, struct client *koko, const char *msg_id,
                    int64_t amount, Sikka__V1__Purpose purpose, const char *payee_reject)
{
    struct h_transfer t = {
        .msg_id = msg_id,
        .debtor_agent = from,
        .creditor_agent = "KOKO",
        .amount = amount,
        .purpose = purpose,
        .loan_id = purpose == SIKKA__V1__PURPOSE__BNPL_REPAYMENT ? "KOKO-LN-7" : NULL,
        .instalment = purpose == SIKKA__V1__PURPOSE__BNPL_REPAYMENT ? 2 : 0,
        .invoice = purpose == SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT ? "INV-9" : NULL};
    h_send_transfer(payer, &t);
    if (amount <= 0)
        return h_expect_report(payer, msg_id, SIKKA__V1__TX_STATUS__RJCT, "AM02");
    h_payee_decide(koko, payee_reject == NULL, payee_reject);
    uint64_t id = payee_reject == NULL
                      ? h_expect_report(payer, msg_id, SIKKA__V1__TX_STATUS__ACSC, "")
                      : h_expect_report(payer, msg_id, SIKKA__V1__TX_STATUS__RJCT, payee_reject);
    client_envelope_free(h_expect(koko, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
    return id;
}

/* KOKO returns amount of `original` (JAZZ's), JAZZ accepts. */
static void give_back(struct client *koko, struct client *jazz, uint64_t original, int64_t amount)
{
    h_send_return(koko, "M-RETURN", original, amount, "AC04", "account closed");
    Envelope *e = h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_PAYMENT_RETURN, 5000);
    uint64_t id = e->payment_return->transfer_id;
    client_envelope_free(e);
    h_send_decision(jazz, id, true, NULL);
    h_expect_report(koko, "M-RETURN", SIKKA__V1__TX_STATUS__ACSC, "");
    client_envelope_free(h_expect(jazz, SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT, 5000));
}

/* Scrapes until the window's figures are known (the seed is read from the
 * database after start); returns the text. */
static char *scrape_with_window(struct harness *h, SSL_CTX *op)
{
    int64_t deadline = h_now_ms() + 10000;
    for (;;) {
        char *text = scrape(op);
        double v;
        if (sample(text, "sikka_window_postings", &v))
            return text;
        free(text);
        CHECK(h_now_ms() < deadline, "sikka_window_postings never appeared");
        h_pump(h, 100);
    }
}

static void check_window(struct harness *h, const char *text, int64_t postings)
{
    int64_t window = h_sql_int(h, "SELECT id FROM settlement_windows WHERE state = 'open'");
    CHECK_INT(isample(text, "sikka_window_id"), window);
    CHECK_INT(isample(text, "sikka_window_postings"), postings);
    CHECK_INT(isample(text, "sikka_window_postings"),
              h_sql_int(h,
                        "SELECT count(DISTINCT transfer_id) FROM ledger_entries "
                        "WHERE window_id = %" PRId64 " AND leg <> 'settlement'",
                        window));
    CHECK_INT(isample(text, "sikka_window_gross_paisa"),
              h_sql_int(h,
                        "SELECT coalesce(sum(-amount), 0) FROM ledger_entries WHERE amount < 0 "
                        "AND window_id = %" PRId64 " AND leg <> 'settlement'",
                        window));
}

/* Every "expr" string anywhere in v. */
static void collect_exprs(json_t *v, json_t *out)
{
    if (json_is_object(v)) {
        const char *key;
        json_t *x;
        json_object_foreach(v, key, x)
        {
            if (strcmp(key, "expr") == 0 && json_is_string(x))
                json_array_append(out, x);
            else
                collect_exprs(x, out);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) collect_exprs(x, out);
    }
}

/* Is `name` a sample name the exposition declares (a histogram's family
 * declares name_bucket, name_sum and name_count)? */
static bool exported(const char *text, const char *name)
{
    char type_line[200];
    static const char *const types[] = {"counter", "gauge"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(type_line, sizeof(type_line), "# TYPE %s %s\n", name, types[i]);
        if (strstr(text, type_line) != NULL)
            return true;
    }
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(name), k = strlen(suffixes[i]);
        if (n > k && strcmp(name + n - k, suffixes[i]) == 0) {
            snprintf(type_line, sizeof(type_line), "# TYPE %.*s histogram\n", (int)(n - k), name);
            if (strstr(text, type_line) != NULL)
                return true;
        }
    }
    return false;
}

/* s with Grafana's variables given values PromQL can parse. */
static void expand_variables(const char *s, char *out, size_t len)
{
    static const char *const vars[][2] = {
        {"$__rate_interval", "1m"}, {"$__range", "1h"}, {"$job", "sikka-switch"}};
    size_t o = 0;
    while (*s != '\0' && o + 1 < len) {
        size_t i = 0;
        while (i < 3 && strncmp(s, vars[i][0], strlen(vars[i][0])) != 0)
            i++;
        if (i < 3) {
            size_t k = strlen(vars[i][1]);
            CHECK(o + k < len);
            memcpy(out + o, vars[i][1], k);
            o += k;
            s += strlen(vars[i][0]);
        } else {
            out[o++] = *s++;
        }
    }
    CHECK(*s == '\0', "expression too long");
    out[o] = '\0';
}

/* Every expression through PromQL's parser: as recording rules, which
 * `promtool check rules` parses. */
static void check_promql(struct harness *h, json_t *exprs)
{
    char path[400], expr[2048];
    snprintf(path, sizeof(path), "%s/dashboard-rules.yml", h->workdir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "groups:\n  - name: dashboard\n    rules:\n");
    size_t i;
    json_t *e;
    json_array_foreach(exprs, i, e)
    {
        expand_variables(json_string_value(e), expr, sizeof(expr));
        CHECK(strchr(expr, '\'') == NULL && strchr(expr, '$') == NULL, "%s", expr);
        fprintf(f, "      - record: dashboard:expr_%zu\n        expr: '%s'\n", i, expr);
    }
    CHECK(fclose(f) == 0);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "promtool check rules %s >&2", path);
    CHECK_INT(run(cmd), 0);
}

static void check_dashboard(struct harness *h, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/deploy/grafana/sikka-dashboard.json",
             h_env("SIKKA_SOURCE_DIR"));
    json_error_t jerr;
    json_t *dash = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    CHECK(dash != NULL, "%s: %s (line %d)", path, jerr.text, jerr.line);
    CHECK(json_is_array(json_object_get(dash, "panels")), "the dashboard has panels");
    json_t *exprs = json_array();
    collect_exprs(dash, exprs);
    CHECK(json_array_size(exprs) >= 20, "only %zu expressions", json_array_size(exprs));
    int names = 0;
    size_t i;
    json_t *e;
    json_array_foreach(exprs, i, e)
    {
        const char *s = json_string_value(e);
        for (const char *p = s; *p != '\0';) {
            bool start = p == s || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                                     (p[-1] >= '0' && p[-1] <= '9'));
            if (start && (strncmp(p, "sikka_", 6) == 0 || strncmp(p, "process_", 8) == 0)) {
                size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
                char name[128];
                CHECK(n < sizeof(name));
                memcpy(name, p, n);
                name[n] = '\0';
                CHECK(exported(text, name), "the dashboard asks for %s, not exported (in: %s)",
                      name, s);
                names++;
                p += n;
            } else {
                p++;
            }
        }
    }
    fprintf(stderr, "   dashboard: %zu expressions, %d metric names, all exported\n",
            json_array_size(exprs), names);
    CHECK(names >= 20);
    check_promql(h, exprs);
    json_decref(exprs);
    json_decref(dash);
}

/* deploy/prometheus/prometheus.yml with its dev PKI paths pointing at the
 * test PKI, through promtool. */
static void check_scrape_config(struct harness *h)
{
    char path[512], line[1024], pki[300];
    snprintf(path, sizeof(path), "%s/deploy/prometheus/prometheus.yml", h_env("SIKKA_SOURCE_DIR"));
    FILE *in = fopen(path, "r");
    CHECK(in != NULL, "%s", path);
    char out_path[400];
    snprintf(out_path, sizeof(out_path), "%s/prometheus.yml", h->workdir);
    FILE *out = fopen(out_path, "w");
    CHECK(out != NULL);
    h_pki(h, "", pki, sizeof(pki));
    int replaced = 0;
    static const char needle[] = "../../var/pki/";
    while (fgets(line, sizeof(line), in) != NULL) {
        char *at = strstr(line, needle);
        if (at != NULL) {
            fprintf(out, "%.*s%s%s", (int)(at - line), line, pki, at + strlen(needle));
            replaced++;
        } else {
            fputs(line, out);
        }
    }
    fclose(in);
    CHECK(fclose(out) == 0);
    CHECK_INT(replaced, 3); /* ca_file, cert_file, key_file */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "promtool check config %s >&2", out_path);
    CHECK_INT(run(cmd), 0);
    /* and it can fail: a key that is not there */
    snprintf(cmd, sizeof(cmd), "sed -i 's#viewer.key#no-such.key#' %s", out_path);
    CHECK_INT(run(cmd), 0);
    snprintf(cmd, sizeof(cmd), "promtool check config %s >/dev/null 2>&1", out_path);
    CHECK(run(cmd) != 0, "promtool accepted a missing key file");
}

static json_t *stats(SSL_CTX *op, const char *query)
{
    char path[128];
    struct https_response resp;
    snprintf(path, sizeof(path), "/api/v1/stats%s", query);
    CHECK_INT(get(op, "GET", path, &resp), 200);
    json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
    CHECK(json_is_object(j), "stats JSON: %s", resp.body);
    https_response_free(&resp);
    return j;
}

static int64_t jint(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    CHECK(json_is_integer(v), "\"%s\" is an integer", key);
    return json_integer_value(v);
}

static void sum_series(json_t *j, int64_t *settled, int64_t *rejected)
{
    json_t *series = json_object_get(j, "series");
    CHECK(json_is_array(series));
    *settled = *rejected = 0;
    size_t i;
    json_t *s;
    int64_t prev = 0;
    json_array_foreach(series, i, s)
    {
        int64_t t = jint(s, "t");
        CHECK(t > prev, "seconds in order");
        prev = t;
        *settled += jint(s, "settled");
        *rejected += jint(s, "rejected");
        static const char *const ms[] = {"p50_ms", "p99_ms", "commit_p50_ms", "commit_p99_ms",
                                         "batch_avg"};
        for (size_t k = 0; k < 5; k++)
            CHECK(json_is_number(json_object_get(s, ms[k])), "%s is a number", ms[k]);
        if (jint(s, "settled") > 0)
            CHECK(json_number_value(json_object_get(s, "p50_ms")) > 0, "p50 of a busy second");
    }
}

static void expect_error(SSL_CTX *op, const char *method, const char *path, int want)
{
    struct https_response resp;
    CHECK_INT(get(op, method, path, &resp), want);
    json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
    CHECK(json_is_string(json_object_get(j, "error")), "a JSON error: %s", resp.body);
    fprintf(stderr, "   %s %s -> %d %s", method, path, resp.status, resp.body);
    json_decref(j);
    https_response_free(&resp);
}

int main(void)
{
    struct harness h;
    h_init(&h, "metrics");
    h_admin(&h);
    admin_port = h.admin_port;
    h_start(&h);
    need_promtool();
    SSL_CTX *op = h_tls_ctx(&h, "viewer");

    TEST_STEP("payments: 5 P2P, 3 BNPL, a supplier payment (with its fee) and a part of it "
              "returned settled; 2 refused by the payee (AC01), 1 AM02");
    struct client *jazz1 = h_connect(&h, "JAZZ");
    struct client *easy = h_connect(&h, "EASY");
    struct client *koko = h_connect(&h, "KOKO");
    /* the return goes to a session of JAZZ: while it has one, jazz1 */
    uint64_t supplier =
        pay(jazz1, "JAZZ", koko, "M-SUP", 1000000, SIKKA__V1__PURPOSE__SUPPLIER_PAYMENT, NULL);
    give_back(koko, jazz1, supplier, 400000);
    struct client *jazz2 = h_connect(&h, "JAZZ");
    char msg[32];
    for (int i = 0; i < 5; i++) {
        snprintf(msg, sizeof(msg), "M-P2P-%d", i);
        pay(i % 2 ? jazz2 : jazz1, "JAZZ", koko, msg, 10000 + i, SIKKA__V1__PURPOSE__P2P, NULL);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(msg, sizeof(msg), "M-BNPL-%d", i);
        pay(easy, "EASY", koko, msg, 250000, SIKKA__V1__PURPOSE__BNPL_REPAYMENT, NULL);
    }
    pay(jazz2, "JAZZ", koko, "M-AC01-0", 700, SIKKA__V1__PURPOSE__P2P, "AC01");
    pay(jazz1, "JAZZ", koko, "M-AC01-1", 800, SIKKA__V1__PURPOSE__P2P, "AC01");
    pay(easy, "EASY", koko, "M-AM02", 0, SIKKA__V1__PURPOSE__BNPL_REPAYMENT, NULL);
    const int64_t p2p_paisa = 10000 * 5 + 0 + 1 + 2 + 3 + 4, bnpl_paisa = 3 * 250000;
    /* PKR 10,000 at 0.20 % (KOKO pays PKR 20.00); 40 % of it returned, with
     * 40 % of the fee */
    const int64_t fees = 2000 + 800;
    CHECK_INT(h_sql_int(&h, "SELECT sum(fee) FROM transfers WHERE status = 'ACSC'"), fees);
    const int64_t gross = p2p_paisa + bnpl_paisa + 1000000 + 400000 + fees;

    TEST_STEP("GET /metrics: the counters are what was sent");
    char *text = scrape_with_window(&h, op);
    CHECK_INT(isample(text, "sikka_up"), 1);
    CHECK_INT(isample(text, "sikka_ready"), 1);
    CHECK_INT(isample(text, "sikka_transfers_received_total{purpose=\"P2P\"}"), 7);
    CHECK_INT(isample(text, "sikka_transfers_received_total{purpose=\"BNPL_REPAYMENT\"}"), 4);
    CHECK_INT(isample(text, "sikka_transfers_received_total{purpose=\"RETURN\"}"), 1);
    CHECK_INT(isample(text, "sikka_transfers_received_total{purpose=\"SUPPLIER_PAYMENT\"}"), 1);
    CHECK_INT(isample(text, "sikka_transfers_settled_total{purpose=\"SUPPLIER_PAYMENT\","
                            "participant=\"JAZZ\"}"),
              1);
    CHECK_INT(
        isample(text, "sikka_transfers_settled_total{purpose=\"RETURN\",participant=\"KOKO\"}"), 1);
    CHECK_INT(isample(text, "sikka_transfers_settled_paisa_total{purpose=\"RETURN\","
                            "participant=\"KOKO\"}"),
              400000);
    CHECK_INT(isample(text, "sikka_transfers_settled_total{purpose=\"P2P\",participant=\"JAZZ\"}"),
              5);
    CHECK_INT(isample(text, "sikka_transfers_settled_total{purpose=\"BNPL_REPAYMENT\","
                            "participant=\"EASY\"}"),
              3);
    CHECK_INT(isample(text, "sikka_transfers_settled_total{purpose=\"P2P\",participant=\"EASY\"}"),
              0);
    CHECK_INT(isample(text, "sikka_transfers_settled_total{purpose=\"P2P\",participant=\"KOKO\"}"),
              0);
    CHECK_INT(
        isample(text, "sikka_transfers_settled_paisa_total{purpose=\"P2P\",participant=\"JAZZ\"}"),
        p2p_paisa);
    CHECK_INT(isample(text, "sikka_transfers_settled_paisa_total{purpose=\"BNPL_REPAYMENT\","
                            "participant=\"EASY\"}"),
              bnpl_paisa);
    CHECK_INT(isample(text, "sikka_transfers_rejected_total{reason=\"AC01\",participant=\"JAZZ\"}"),
              2);
    CHECK_INT(isample(text, "sikka_transfers_rejected_total{reason=\"AM02\",participant=\"EASY\"}"),
              1);
    CHECK_INT(count_lines(text, "sikka_transfers_rejected_total{"), 2);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE status = 'ACSC'"), 10);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE status = 'RJCT'"), 3);

    TEST_STEP("histograms: one duration per settled transfer, buckets cumulative");
    CHECK_INT(isample(text, "sikka_transfer_duration_seconds_count"), 10);
    CHECK_INT(isample(text, "sikka_transfer_duration_seconds_bucket{le=\"+Inf\"}"), 10);
    CHECK_INT(count_lines(text, "sikka_transfer_duration_seconds_bucket{"), 16);
    int64_t prev = 0;
    for (const char *p = strstr(text, "sikka_transfer_duration_seconds_bucket{"); p != NULL;
         p = strstr(p + 1, "sikka_transfer_duration_seconds_bucket{")) {
        int64_t v = strtoll(strchr(p, ' ') + 1, NULL, 10);
        CHECK(v >= prev, "cumulative buckets");
        prev = v;
    }
    double sum;
    CHECK(sample(text, "sikka_transfer_duration_seconds_sum", &sum) && sum > 0 && sum < 10 * 5.0);
    /* every admitted transfer is recorded once: 10 postings and 3 rejections */
    CHECK_INT(isample(text, "sikka_batch_size_sum"), 13);
    int64_t batches = isample(text, "sikka_batch_size_count");
    CHECK(batches >= 1 && batches <= 13, "%" PRId64 " batches", batches);
    CHECK_INT(isample(text, "sikka_db_commit_duration_seconds_count"), batches);
    CHECK_INT(isample(text, "sikka_inflight_transfers"), 0);
    CHECK_INT(isample(text, "sikka_posting_queue_depth"), 0);

    TEST_STEP("sessions, positions, caps, the open window");
    CHECK_INT(isample(text, "sikka_sessions{participant=\"JAZZ\"}"), 2);
    CHECK_INT(isample(text, "sikka_sessions{participant=\"EASY\"}"), 1);
    CHECK_INT(isample(text, "sikka_sessions{participant=\"KOKO\"}"), 1);
    CHECK_INT(isample(text, "sikka_sessions{participant=\"SADA\"}"), 0);
    CHECK_INT(isample(text, "sikka_session_opens_total{participant=\"JAZZ\"}"), 2);
    static const char *const codes[] = {"JAZZ", "EASY", "KOKO", "SADA", "SUSP"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        char series[128];
        snprintf(series, sizeof(series),
                 "sikka_participant_position_paisa{participant=\"%s\",kind=\"posted\"}", codes[i]);
        CHECK_INT(isample(text, series), h_position_balance(&h, codes[i]));
        snprintf(series, sizeof(series),
                 "sikka_participant_position_paisa{participant=\"%s\",kind=\"reserved\"}",
                 codes[i]);
        CHECK_INT(isample(text, series), 0);
        snprintf(series, sizeof(series), "sikka_participant_ndc_paisa{participant=\"%s\"}",
                 codes[i]);
        CHECK_INT(isample(text, series),
                  h_sql_int(&h, "SELECT ndc FROM participants WHERE code = '%s'", codes[i]));
    }
    CHECK_INT(isample(text, "sikka_participant_active{participant=\"SUSP\"}"), 0);
    CHECK_INT(isample(text, "sikka_participant_active{participant=\"JAZZ\"}"), 1);
    CHECK_INT(isample(text, "sikka_participant_headroom_paisa{participant=\"JAZZ\"}"),
              h_position_balance(&h, "JAZZ") +
                  h_sql_int(&h, "SELECT ndc FROM participants WHERE code = 'JAZZ'"));
    check_window(&h, text, 10);
    CHECK_INT(isample(text, "sikka_window_gross_paisa"), gross);

    TEST_STEP("promtool check metrics accepts the exposition");
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s >&2",
             write_file(&h, "metrics.txt", text));
    CHECK_INT(run(cmd), 0);
    /* and it can fail: a counter without _total */
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s >/dev/null 2>&1",
             write_file(&h, "bad.txt", "# HELP sikka_x x\n# TYPE sikka_x counter\nsikka_x 1\n"));
    CHECK(run(cmd) != 0, "promtool accepted a counter without _total");

    TEST_STEP("the Grafana dashboard asks only for exported metrics, in valid PromQL");
    check_dashboard(&h, text);
    TEST_STEP("promtool check config accepts the scrape config (on the test PKI)");
    check_scrape_config(&h);
    free(text);

    TEST_STEP("the payee outbox's size, as the database counts it");
    int64_t deadline = h_now_ms() + 15000;
    for (;;) {
        text = scrape(op);
        double v;
        bool ok = sample(text, "sikka_payee_outbox_pending", &v) &&
                  (int64_t)v == h_sql_int(&h, "SELECT count(*) FROM payee_outbox");
        free(text);
        if (ok)
            break;
        CHECK(h_now_ms() < deadline, "sikka_payee_outbox_pending never matched the outbox");
        h_pump(&h, 200);
    }

    TEST_STEP("GET /api/v1/stats: the seconds add up to what was sent");
    deadline = h_now_ms() + 5000;
    json_t *j;
    int64_t settled, rejected;
    for (;;) {
        j = stats(op, "");
        sum_series(j, &settled, &rejected);
        if (settled == 10 && rejected == 3)
            break;
        json_decref(j);
        CHECK(h_now_ms() < deadline, "the series holds %" PRId64 " settled, %" PRId64 " rejected",
              settled, rejected);
        h_pump(&h, 200);
    }
    json_t *rj = json_object_get(j, "rejections");
    CHECK_INT(json_object_size(rj), 2);
    CHECK_INT(jint(rj, "AC01"), 2);
    CHECK_INT(jint(rj, "AM02"), 1);
    json_t *sj = json_object_get(j, "sessions");
    CHECK_INT(jint(sj, "JAZZ"), 2);
    CHECK_INT(jint(sj, "KOKO"), 1);
    CHECK_INT(jint(sj, "NAYA"), 0);
    CHECK_INT(jint(j, "window"),
              h_sql_int(&h, "SELECT id FROM settlement_windows WHERE state = 'open'"));
    CHECK_INT(jint(j, "window_gross"), gross);
    CHECK_INT(jint(j, "window_postings"), 10);
    int64_t now = jint(j, "now");
    json_t *series = json_object_get(j, "series");
    size_t n = json_array_size(series);
    CHECK(n >= 1 && n <= METRICS_SECONDS);
    int64_t last = jint(json_array_get(series, n - 1), "t");
    CHECK(last < now && last >= now - 2, "last whole second %" PRId64 ", now %" PRId64, last, now);
    json_decref(j);

    TEST_STEP("?since= keeps the later seconds only");
    char q[64];
    snprintf(q, sizeof(q), "?since=%" PRId64, last - 1);
    j = stats(op, q);
    CHECK(json_array_size(json_object_get(j, "series")) >= 1);
    CHECK(jint(json_array_get(json_object_get(j, "series"), 0), "t") >= last);
    json_decref(j);
    snprintf(q, sizeof(q), "?since=%" PRId64, now + 3600);
    j = stats(op, q);
    CHECK_INT(json_array_size(json_object_get(j, "series")), 0);
    json_decref(j);

    TEST_STEP("bad requests: since not a Unix time, other parameters, other methods");
    expect_error(op, "GET", "/api/v1/stats?since=abc", 400);
    expect_error(op, "GET", "/api/v1/stats?since=-1", 400);
    expect_error(op, "GET", "/api/v1/stats?since=", 400);
    expect_error(op, "GET", "/api/v1/stats?since=1.5", 400);
    expect_error(op, "GET", "/api/v1/stats?since=99999999999999999999", 400);
    expect_error(op, "GET", "/api/v1/stats?until=1", 400);
    expect_error(op, "POST", "/api/v1/stats", 405);
    expect_error(op, "POST", "/metrics", 405);
    expect_error(op, "GET", "/metrics?x=1", 400);
    expect_error(op, "GET", "/metrics/", 404);

    TEST_STEP("a participant's certificate gets no metrics");
    SSL_CTX *participant = h_tls_ctx(&h, "JAZZ");
    struct https_response resp;
    char err[256];
    CHECK(https_request(participant, "127.0.0.1", admin_port, "GET", "/metrics", NULL, 0, 5000,
                        &resp, err, sizeof(err)) != 0,
          "a participant's certificate was served: HTTP %d", resp.status);
    SSL_CTX_free(participant);

    TEST_STEP("restart: the window still counts the earlier boot's postings");
    client_free(jazz1);
    client_free(jazz2);
    client_free(easy);
    client_free(koko);
    CHECK_INT(h_stop(&h), 0);
    h_start(&h);
    jazz1 = h_connect(&h, "JAZZ");
    koko = h_connect(&h, "KOKO");
    text = scrape_with_window(&h, op);
    check_window(&h, text, 10);
    CHECK_INT(isample(text, "sikka_transfers_settled_total{purpose=\"P2P\",participant=\"JAZZ\"}"),
              0);
    free(text);
    pay(jazz1, "JAZZ", koko, "M-AFTER", 12345, SIKKA__V1__PURPOSE__P2P, NULL);
    text = scrape(op);
    check_window(&h, text, 11);
    CHECK_INT(isample(text, "sikka_window_gross_paisa"), gross + 12345);
    CHECK_INT(isample(text, "sikka_transfers_settled_total{purpose=\"P2P\",participant=\"JAZZ\"}"),
              1);
    free(text);

    TEST_STEP("a window close: the new window starts from zero");
    CHECK_INT(H_CTL(&h, "window", "close"), 0);
    text = scrape(op);
    check_window(&h, text, 0);
    CHECK_INT(isample(text, "sikka_window_gross_paisa"), 0);
    free(text);
    pay(jazz1, "JAZZ", koko, "M-NEXT", 500, SIKKA__V1__PURPOSE__P2P, NULL);
    text = scrape(op);
    check_window(&h, text, 1);
    CHECK_INT(isample(text, "sikka_window_gross_paisa"), 500);
    free(text);

    SSL_CTX_free(op);
    client_free(jazz1);
    client_free(koko);
    h_cleanup(&h);
    return 0;
}
