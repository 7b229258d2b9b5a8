/* sikka-replay end to end against the real daemon, real TLS and the real
 * ledger: a generated capture replayed open loop at 200/s achieves the rate
 * within 2 % with every transfer ending as the capture asks; `verify` agrees
 * with the ledger, then catches a planted double posting and a planted
 * missing transfer; thresholds decide the exit status. The tool is run as
 * the binary users run (SIKKA_REPLAY_BIN). */
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef SIKKA_REPLAY_BIN
#error "SIKKA_REPLAY_BIN must be defined by the build"
#endif

static struct harness h;
static char out_path[320];

/* Runs `sikka-replay <command line>`, the line formatted from fmt and split
 * at spaces (no argument here holds one), its stdout and stderr going to
 * out_path; returns its exit status. */
static int replay(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int replay(const char *fmt, ...)
{
    static char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    CHECK(len > 0 && (size_t)len < sizeof(line));
    fprintf(stderr, "   $ sikka-replay %s\n", line);
    char *argv[64] = {"sikka-replay"};
    size_t n = 1;
    for (char *tok = strtok(line, " "); tok != NULL; tok = strtok(NULL, " ")) {
        CHECK(n < sizeof(argv) / sizeof(argv[0]) - 1);
        argv[n++] = tok;
    }
    argv[n] = NULL;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(SIKKA_REPLAY_BIN, argv);
        _exit(127);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st), "sikka-replay died by signal %d", WTERMSIG(st));
    return WEXITSTATUS(st);
}

/* The output of the last replay(), NUL-terminated (static buffer). */
static const char *output(void)
{
    static char buf[65536];
    FILE *f = fopen(out_path, "r");
    CHECK(f != NULL);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void expect_output(const char *needle)
{
    const char *out = output();
    CHECK(strstr(out, needle) != NULL, "output lacks \"%s\":\n%s", needle, out);
}

static void show_output(void)
{
    fprintf(stderr, "%s", output());
}

static double json_num(json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *v = o;
    for (char *part = strtok(buf, "."); part != NULL; part = strtok(NULL, "."))
        v = json_object_get(v, part);
    CHECK(json_is_number(v), "JSON has no number at %s", path);
    return json_number_value(v);
}

int main(void)
{
    h_init(&h, "replay");
    /* room for a run's worth of supplier invoices; amounts up to 2M PKR */
    PQclear(h_sql(&h, "UPDATE participants SET ndc = 100000000000000 WHERE status = 'active'"));
    h_config(&h, "max_amount = 1000000000\n"
                 "log_level = info\n");
    h_start(&h);

    char cap[300], results[300], json[300], html[300];
    snprintf(cap, sizeof(cap), "%s/replay.cap", h.workdir);
    snprintf(results, sizeof(results), "%s/results.tsv", h.workdir);
    snprintf(json, sizeof(json), "%s/run.json", h.workdir);
    snprintf(html, sizeof(html), "%s/run.html", h.workdir);
    snprintf(out_path, sizeof(out_path), "%s/replay.out", h.workdir);
    char connect[64], reader[512];
    snprintf(connect, sizeof(connect), "127.0.0.1:%d", h.port);
    const char *rpw = getenv("SIKKA_TEST_READER_PASSWORD");
    CHECK(rpw != NULL && rpw[0] != '\0', "SIKKA_TEST_READER_PASSWORD: run through tests/run.sh");
    snprintf(reader, sizeof(reader),
             "host=127.0.0.1 port=%s user=sikka_reader password=%s dbname=%s",
             getenv("SIKKA_TEST_PGPORT"), rpw, h.dbname);

    TEST_STEP("gen: 600 records with retries, payee rejects and malformed frames");
    CHECK_INT(replay("gen -o %s --count 600 --seed 42 --retry-rate 0.03 --reject-rate 0.03 "
                     "--malformed-rate 0.005",
                     cap),
              0);

    TEST_STEP("run open loop at 200/s for 3 s: achieved within 2 %, every outcome expected");
    int rc = replay("run %s --connect %s --pki %s --rate 200 --sessions 2 --json %s --html %s "
                    "--results %s --threshold errors<1%% --quiet",
                    cap, connect, h.pki, json, html, results);
    show_output();
    CHECK_INT(rc, 0);
    json_error_t jerr;
    json_t *j = json_load_file(json, 0, &jerr);
    CHECK(j != NULL, "%s: %s", json, jerr.text);
    double requested = json_num(j, "requested_rate"), achieved = json_num(j, "achieved_rate");
    fprintf(stderr, "   requested %.2f/s, achieved %.2f/s, p99 %.3f ms, late %g\n", requested,
            achieved, json_num(j, "latency_ms.corrected.p99"), json_num(j, "late"));
    CHECK(requested == 200);
    CHECK(fabs(achieved - requested) <= 0.02 * requested, "achieved %.2f/s of %.2f/s", achieved,
          requested);
    CHECK(json_num(j, "sent") == 600);
    CHECK(json_num(j, "answered") == 600, "every message answered");
    CHECK(json_num(j, "errors") == 0, "unexpected outcomes");
    CHECK(json_num(j, "connection_failures") == 0);
    /* nothing lost: what went again answered a refusal marked retry (e.g.
     * a capture retry arriving while too many copies are in flight) */
    CHECK(json_num(j, "reconnects") == 0);
    CHECK(json_num(j, "resent") == json_num(j, "refused_retryably"));
    /* every transfer a payer saw settle was notified to its payee, once */
    CHECK(json_num(j, "acsc_without_notice") == 0);
    CHECK(json_num(j, "payee_notices") == json_num(j, "payee.accepted"),
          "%g notices for %g accepted", json_num(j, "payee_notices"),
          json_num(j, "payee.accepted"));
    CHECK(json_num(j, "max_acsc_gap_ms") > 0 &&
          json_num(j, "gap_to_ms") > json_num(j, "gap_from_ms"));
    CHECK(json_num(j, "retries") > 0 && json_num(j, "malformed") > 0);
    CHECK(json_num(j, "payee.rejected") > 0, "the payee side rejected as asked");
    CHECK(json_num(j, "latency_ms.corrected.p99") > 0);
    CHECK(json_num(j, "latency_ms.corrected.p99") >= json_num(j, "latency_ms.corrected.p50"));
    CHECK(json_array_size(json_object_get(j, "seconds")) >= 3, "a second-by-second series");
    CHECK(json_is_true(json_object_get(j, "passed")));
    json_decref(j);
    CHECK(h_sql_int(&h, "SELECT count(*) FROM transfers WHERE status = 'ACSC'") > 500);

    TEST_STEP("the HTML report is one self-contained page with both charts");
    FILE *f = fopen(html, "r");
    CHECK(f != NULL);
    static char page[1 << 20];
    size_t plen = fread(page, 1, sizeof(page) - 1, f);
    page[plen] = '\0';
    fclose(f);
    CHECK(strstr(page, "latency over time") != NULL && strstr(page, "latency by percentile"));
    CHECK(strstr(page, "<polyline") != NULL, "no curve drawn");
    CHECK(strstr(page, "http://") == NULL && strstr(page, "https://") == NULL &&
              strstr(page, "src=") == NULL,
          "the page loads something from elsewhere");

    TEST_STEP("verify (read-only role): the ledger matches what the tool saw");
    /* the URI through the environment: its password stays out of argv and logs */
    CHECK(setenv("SIKKA_DB_URI", reader, 1) == 0);
    rc = replay("verify --results %s", results);
    show_output();
    CHECK_INT(rc, 0);
    expect_output("verify: OK");

    TEST_STEP("thresholds set the exit status");
    CHECK_INT(replay("run %s --connect %s --pki %s --closed 20 --count 100 --run-id t1 "
                     "--threshold p99<1us --quiet",
                     cap, connect, h.pki),
              1);
    expect_output("threshold broken: p99<1us");
    rc = replay("run %s --connect %s --pki %s --closed 20 --count 100 --run-id t2 "
                "--threshold p99<10s --threshold errors<=0 --threshold rate>0 --quiet",
                cap, connect, h.pki);
    if (rc != 0)
        show_output();
    CHECK_INT(rc, 0);
    CHECK_INT(replay("run %s --threshold p99<soon", cap), 2);
    expect_output("p99<soon");

    TEST_STEP("verify catches a planted double posting");
    PGresult *res =
        h_sql(&h, "SELECT t.id, t.amount, t.window_id, pa.id, pb.id, t.msg_id"
                  "  FROM transfers t"
                  "  JOIN accounts pa ON pa.participant = t.payer AND pa.kind = 'position'"
                  "  JOIN accounts pb ON pb.participant = t.payee AND pb.kind = 'position'"
                  " WHERE t.status = 'ACSC' AND t.msg_id ~ '^[0-9A-Z]+-[0-9]+$'"
                  " ORDER BY t.id LIMIT 2");
    CHECK_INT(PQntuples(res), 2);
    /* a second balanced pair for an ACSC transfer, past the ledger's
     * triggers (which refuse a second posting), as only a superuser can */
    PQclear(h_sql(&h,
                  "BEGIN; SET LOCAL session_replication_role = replica; "
                  "INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg)"
                  " VALUES (%s, %s, %s, -%s, 'principal'), (%s, %s, %s, %s, 'principal'); COMMIT",
                  PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3),
                  PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2),
                  PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 1)));
    rc = replay("verify --results %s", results);
    show_output();
    CHECK_INT(rc, 1);
    expect_output("verify: FAILED");
    expect_output("posted more than once: 4 principal");
    expect_output(PQgetvalue(res, 0, 5));

    TEST_STEP("verify catches a planted missing transfer");
    /* as the owner, past the append-only triggers: the ledger "lost" it */
    PQclear(h_sql(&h,
                  "BEGIN; SET LOCAL session_replication_role = replica;"
                  " DELETE FROM ledger_entries WHERE transfer_id = %s;"
                  " DELETE FROM transfers WHERE id = %s; COMMIT",
                  PQgetvalue(res, 1, 0), PQgetvalue(res, 1, 0)));
    rc = replay("verify --results %s", results);
    show_output();
    CHECK_INT(rc, 1);
    expect_output("settled (ACSC) but missing from the ledger");
    PQclear(res);

    unlink(cap);
    unlink(results);
    unlink(json);
    unlink(html);
    unlink(out_path);
    h_cleanup(&h);
    fprintf(stderr, "it_replay: ok\n");
    return 0;
}
