/* The web console in a real browser: the switch on its test database with
 * the console on, two payees answering (sikka-wallet listen for KOKO and
 * MEZN), then tests/browser/console.mjs — Debian's chromium driven by
 * playwright-core with the operator's client certificate — walks every page
 * (screenshots in build/console-screenshots/), sends payments with
 * sikka-wallet and watches the dashboard count them, finds a transfer by
 * msg_id and by loan reference, suspends a participant (its next payment:
 * AG10), adds one named with HTML (shown as text), changes a cap, closes a
 * window, downloads its CSV report and settles it. When the PKI has role
 * certificates (supervisor, supervisor2, viewer), a supervisor's page makes
 * the four-eyes changes and a second supervisor approves them on the
 * Proposals page, and a viewer is offered no control. A second run without
 * the dev CA must not load the console: the switch's certificate is checked.
 *
 * Needs node, tests/browser/node_modules (tests/run.sh runs npm ci) and
 * /usr/bin/chromium (deploy/install-deps.sh): missing, the test fails. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef SIKKA_WALLET_BIN
#error "SIKKA_WALLET_BIN must be defined by the build"
#endif
#ifndef SIKKA_REPLAY_BIN
#error "SIKKA_REPLAY_BIN must be defined by the build"
#endif
#ifndef SIKKA_SCREENSHOT_DIR
#error "SIKKA_SCREENSHOT_DIR must be defined by the build"
#endif

#define CHROMIUM "/usr/bin/chromium"

static struct harness h;
static pid_t listeners[2];

static void stop_listeners(void)
{
    for (size_t i = 0; i < sizeof(listeners) / sizeof(listeners[0]); i++) {
        if (listeners[i] > 0) {
            kill(listeners[i], SIGTERM);
            waitpid(listeners[i], NULL, 0);
            listeners[i] = 0;
        }
    }
}

/* sikka-wallet listen --accept-all as code, its output in the work dir. */
static pid_t listen_as(const char *code)
{
    char connect[64], cert[300], key[300], ca[300], file[32], out[400];
    snprintf(connect, sizeof(connect), "127.0.0.1:%d", h.port);
    snprintf(file, sizeof(file), "%s.crt", code);
    h_pki(&h, file, cert, sizeof(cert));
    snprintf(file, sizeof(file), "%s.key", code);
    h_pki(&h, file, key, sizeof(key));
    h_pki(&h, "ca.crt", ca, sizeof(ca));
    snprintf(out, sizeof(out), "%s/listen-%s.log", h.workdir, code);
    fprintf(stderr, "   $ sikka-wallet --participant %s listen --accept-all\n", code);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(SIKKA_WALLET_BIN, "sikka-wallet", "--connect", connect, "--participant", code,
              "--cert", cert, "--key", key, "--ca", ca, "listen", "--accept-all", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Runs node console.mjs [arg] with the environment it reads; returns its
 * exit status. with_ca: NODE_EXTRA_CA_CERTS is the dev CA. */
static int run_node(const char *node, const char *script, const char *arg, bool with_ca)
{
    char url[64], connect[64], cert[300], key[300], ca[300];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", h.admin_port);
    snprintf(connect, sizeof(connect), "127.0.0.1:%d", h.port);
    h_pki(&h, "operator.crt", cert, sizeof(cert));
    h_pki(&h, "operator.key", key, sizeof(key));
    h_pki(&h, "ca.crt", ca, sizeof(ca));
    fprintf(stderr, "   $ node %s %s (%s the dev CA)\n", script, arg != NULL ? arg : "",
            with_ca ? "trusting" : "without");
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setenv("SIKKA_CONSOLE_URL", url, 1);
        setenv("SIKKA_OPERATOR_CERT", cert, 1);
        setenv("SIKKA_OPERATOR_KEY", key, 1);
        setenv("SIKKA_PKI", h.pki, 1);
        setenv("SIKKA_CONNECT", connect, 1);
        setenv("SIKKA_WALLET_BIN", SIKKA_WALLET_BIN, 1);
        setenv("SIKKA_REPLAY_BIN", SIKKA_REPLAY_BIN, 1);
        setenv("SIKKA_CHROMIUM", CHROMIUM, 1);
        setenv("SIKKA_SCREENSHOTS", SIKKA_SCREENSHOT_DIR, 1);
        if (with_ca)
            setenv("NODE_EXTRA_CA_CERTS", ca, 1);
        else
            unsetenv("NODE_EXTRA_CA_CERTS");
        /* the browser and node are not ours to sanitize */
        unsetenv("LD_PRELOAD");
        dup2(2, 1);
        execl(node, "node", script, arg, (char *)NULL);
        _exit(127);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status), "node ended by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WEXITSTATUS(status);
}

/* The first executable `name` on PATH, or "" */
static const char *which(const char *name, char *buf, size_t len)
{
    const char *path = getenv("PATH");
    buf[0] = '\0';
    for (const char *p = path != NULL ? path : "/usr/bin:/bin"; *p != '\0';) {
        size_t n = strcspn(p, ":");
        snprintf(buf, len, "%.*s/%s", (int)n, p, name);
        if (access(buf, X_OK) == 0)
            return buf;
        p += n + (p[n] == ':');
    }
    buf[0] = '\0';
    return buf;
}

int main(void)
{
    TEST_STEP("what the browser test needs: node, chromium, playwright-core");
    char node[512], script[512], modules[512];
    CHECK(which("node", node, sizeof(node))[0] != '\0',
          "node is not installed (deploy/install-deps.sh installs nodejs)");
    CHECK(access(CHROMIUM, X_OK) == 0, "%s is missing (deploy/install-deps.sh installs chromium)",
          CHROMIUM);
    const char *src = h_env("SIKKA_SOURCE_DIR");
    snprintf(script, sizeof(script), "%s/tests/browser/console.mjs", src);
    snprintf(modules, sizeof(modules), "%s/tests/browser/node_modules/playwright-core/package.json",
             src);
    CHECK(access(script, R_OK) == 0, "%s is missing", script);
    CHECK(access(modules, R_OK) == 0,
          "playwright-core is not installed: tests/run.sh runs npm ci in tests/browser");

    h_init(&h, "browser");
    h_admin(&h);
    h_start(&h);
    atexit(stop_listeners);
    listeners[0] = listen_as("KOKO");
    listeners[1] = listen_as("MEZN");
    H_WAIT_LOG(&h, 2, 10000, "event=session_open session=KOKO", "event=session_open session=MEZN");

    TEST_STEP("the pages in chromium, trusting the switch through the dev CA");
    int64_t t0 = h_now_ms();
    CHECK_INT(run_node(node, script, NULL, true), 0);
    fprintf(stderr, "   the walk took %.1f s\n", (double)(h_now_ms() - t0) / 1000.0);

    TEST_STEP("what the browser did is in the database");
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM participants WHERE code = 'XSSX' AND "
                            "name LIKE '<script>%%' AND status = 'active'"),
              1);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM participants WHERE code = 'EASY' AND "
                            "status = 'active'"),
              1);
    CHECK_INT(h_sql_int(&h, "SELECT ndc FROM participants WHERE code = 'KOKO'"), 30000000);
    CHECK_INT(h_sql_int(&h, "SELECT count(*) FROM settlement_windows WHERE state = 'settled'"), 1);
    /* suspend, resume, add, cap, close, settle (with roles, their proposals too) */
    CHECK(h_sql_int(&h, "SELECT count(*) FROM audit_log") >= 6, "every change audited");

    TEST_STEP("without the dev CA the browser does not get the console");
    CHECK_INT(run_node(node, script, "--expect-untrusted", false), 0);

    stop_listeners();
    CHECK_INT(H_CTL(&h, "reconcile"), 0);
    h_cleanup(&h);
    return 0;
}
