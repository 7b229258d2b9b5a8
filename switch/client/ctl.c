/*
 * sikka-ctl: the operator's command line over the switch's admin API
 * (switch/admin.c, JSON over mutual TLS under /api/v1/).
 *
 *   sikka-ctl [options] COMMAND [arguments] [command options]
 *
 * Every command makes one HTTPS request with the operator certificate and
 * prints the answer for a person: tables, amounts in PKR with two decimals
 * (integer paisa underneath, never floating point). --json prints the
 * server's JSON as it came instead. `window close` prints the closed
 * window's id as its last line, for scripts.
 *
 * Four-eyes: what needs a second operator's approval (participant add,
 * participant resume, ndc set, window settle) is proposed; the command
 * prints `PROPOSED <id>` as its last line and exits 0. Another operator
 * (`--as NAME` picks <pki>/NAME.crt/.key) runs `approve ID` or `reject ID`;
 * its proposer may `withdraw ID` instead; `proposals` lists them. The certificate's role decides
 * what it may do.
 *
 * Exit status: 0 done (or proposed); 1 the switch refused or failed the
 * operation (its error is printed), or `reconcile` found a broken
 * invariant; 2 usage, certificate or connection trouble (no answer from
 * the switch).
 *
 * Defaults come from the local stack: the admin API on 127.0.0.1:8443
 * (SIKKA_ADMIN), certificates from the development PKI (see cli_pki_dir):
 * <pki>/operator.crt, operator.key and ca.crt.
 */
#include <errno.h>
#include <event2/http.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "https.h"
#include "log.h"
#include "msg.h"
#include "tls.h"

#define CTL_EXIT_OK      0
#define CTL_EXIT_REFUSED 1 /* the switch said no, or reconcile found a problem */
#define CTL_EXIT_USAGE   2 /* usage, certificates, connection: no answer */

#define CTL_DEFAULT_ADMIN      "127.0.0.1:8443"
#define CTL_DEFAULT_TIMEOUT_MS 30000
#define CTL_NAME_MAX           140
#define CTL_REASON_MAX         500
#define CTL_AUDIT_MAX          1000
#define CTL_CELL_MAX           200

/* command options: which ones a command takes */
#define CTL_O_NAME   (1u << 0)
#define CTL_O_KIND   (1u << 1)
#define CTL_O_NDC    (1u << 2)
#define CTL_O_CSV    (1u << 3)
#define CTL_O_LIMIT  (1u << 4)
#define CTL_O_ALL    (1u << 5)
#define CTL_O_REASON (1u << 6)

enum ctl_opt {
    OPT_ADMIN = 256,
    OPT_CERT,
    OPT_KEY,
    OPT_CA,
    OPT_JSON,
    OPT_TIMEOUT,
    OPT_VERBOSE,
    OPT_HELP,
    OPT_NAME,
    OPT_KIND,
    OPT_NDC,
    OPT_CSV,
    OPT_LIMIT,
    OPT_AS,
    OPT_ALL,
    OPT_REASON,
};

/* The invocation: where the API is, who we are, what was asked. */
struct ctl {
    const char *admin; /* HOST:PORT */
    const char *cert;  /* NULL: <pki>/operator.crt */
    const char *key;   /* NULL: <pki>/operator.key */
    const char *ca;    /* NULL: <pki>/ca.crt */
    const char *as;    /* NULL, or NAME: <pki>/NAME.crt and .key */
    bool json;
    bool verbose;
    bool help;
    int timeout_ms;
    unsigned given; /* CTL_O_* bits of the command options given */
    const char *name, *kind, *ndc, *reason;
    long limit;
    const char *command; /* "window close", for messages */
    char host[256];
    int port;
    char cert_path[PATH_MAX];
    char key_path[PATH_MAX];
    char ca_path[PATH_MAX];
    SSL_CTX *ctx; /* made on the first request */
};

struct ctl_command {
    const char *words[2]; /* words[1] NULL: a one-word command */
    const char *args;     /* what follows the words, for the usage line */
    int nargs;            /* positional arguments after the words */
    unsigned options;     /* CTL_O_* */
    int (*run)(struct ctl *c, char **args);
    const char *summary;
    const char *details;
};

static const char common_usage[] =
    "Options (anywhere on the line):\n"
    "  --admin HOST:PORT   the admin API (default $SIKKA_ADMIN, else " CTL_DEFAULT_ADMIN ")\n"
    "  --as NAME           act as operator NAME: <pki>/NAME.crt and NAME.key (e.g. viewer,\n"
    "                      operator, supervisor, supervisor2)\n"
    "  --cert F --key F    the operator certificate and key (default <pki>/operator.crt/.key)\n"
    "  --ca F              the scheme CA (default <pki>/ca.crt)\n"
    "  --json              print the switch's JSON answer as it came\n"
    "  --timeout-ms N      give up after N ms (default 30000)\n"
    "  --verbose           log TLS details to stderr\n"
    "  -h, --help          help (for a command: sikka-ctl COMMAND --help)\n"
    "  <pki> is $SIKKA_PKI, else var/pki beside the build tree, else ./var/pki.\n"
    "Four-eyes: participant add, participant resume, ndc set and window settle are\n"
    "proposed; they print PROPOSED <id> as their last line and take effect when\n"
    "another operator runs `approve <id>` (e.g. sikka-ctl --as supervisor2 approve 7).\n"
    "Exit status: 0 done (or proposed), 1 refused or failed by the switch (or\n"
    "reconcile found a problem), 2 usage, certificate or connection error.\n";

/* ---- small helpers ---- */

static void out_line(const char *text)
{
    fputs(text, stdout);
    fputc('\n', stdout);
}

static bool is_amount_key(const char *key)
{
    static const char *const keys[] = {"amount",   "fee",   "ndc",   "posted", "reserved",
                                       "headroom", "net",   "gross", "delta",  "min_fee",
                                       "max_fee",  "total", NULL};
    for (size_t i = 0; keys[i] != NULL; i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

/* A JSON value as one line of text: strings sanitized, integers as they
 * are, booleans yes/no, null or missing "-", the rest compact JSON. */
static const char *jtext(const json_t *v, char *buf, size_t len)
{
    if (v == NULL || json_is_null(v)) {
        snprintf(buf, len, "-");
    } else if (json_is_string(v)) {
        cli_one_line(json_string_value(v), buf, len);
    } else if (json_is_integer(v)) {
        snprintf(buf, len, "%" PRId64, (int64_t)json_integer_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
    } else if (json_is_real(v)) {
        snprintf(buf, len, "%g", json_real_value(v));
    } else {
        char *dump = json_dumps(v, JSON_COMPACT);
        cli_one_line(dump != NULL ? dump : "?", buf, len);
        free(dump);
    }
    return buf;
}

static const char *jget(const json_t *o, const char *key, char *buf, size_t len)
{
    return jtext(json_object_get(o, key), buf, len);
}

/* An amount field in PKR ("1500.00"); "-" when missing. */
static const char *jamount(const json_t *o, const char *key, char *buf, size_t len)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return jtext(v, buf, len);
    return money_format(json_integer_value(v), buf, len);
}

/* A PostgreSQL timestamp as "YYYY-MM-DD HH:MM:SS", seconds truncated, with
 * the server's UTC offset appended unless it is UTC. */
static const char *jtime(const json_t *o, const char *key, char *buf, size_t len)
{
    char raw[64];
    jget(o, key, raw, sizeof(raw));
    size_t n = strlen(raw);
    if (n < 19 || raw[10] != 'T') {
        snprintf(buf, len, "%s", raw);
        return buf;
    }
    raw[10] = ' ';
    const char *zone = raw + 19;
    while (*zone == '.' || (*zone >= '0' && *zone <= '9'))
        zone++;
    bool utc = *zone == '\0' || strcmp(zone, "Z") == 0 || strcmp(zone, "+00:00") == 0 ||
               strcmp(zone, "+00") == 0;
    snprintf(buf, len, "%.19s%.8s", raw, utc ? "" : zone);
    return buf;
}

static void print_fields(const json_t *o, const char *indent);

/* Prints one field as "  key: value", amounts in PKR. */
static void print_field(const char *key, const json_t *v, const char *indent)
{
    char k[64], buf[CTL_CELL_MAX * 2], amount[MSG_AMOUNT_MAX];
    cli_one_line(key, k, sizeof(k));
    if (json_is_object(v)) {
        printf("%s%s:\n", indent, k);
        char deeper[32];
        snprintf(deeper, sizeof(deeper), "%s  ", indent);
        print_fields(v, deeper);
    } else if (json_is_integer(v) && is_amount_key(key)) {
        printf("%s%s: %s PKR (%" PRId64 " paisa)\n", indent, k,
               money_format(json_integer_value(v), amount, sizeof(amount)),
               (int64_t)json_integer_value(v));
    } else {
        printf("%s%s: %s\n", indent, k, jtext(v, buf, sizeof(buf)));
    }
}

/* Prints an object's fields: those named in `first` (NULL-terminated, may
 * be NULL) in that order, then the rest as they come. */
static void print_fields_ordered(const json_t *o, const char *const *first, const char *indent)
{
    const char *key;
    json_t *v;
    for (size_t i = 0; first != NULL && first[i] != NULL; i++)
        if ((v = json_object_get(o, first[i])) != NULL)
            print_field(first[i], v, indent);
    json_object_foreach((json_t *)o, key, v)
    {
        bool done = false;
        for (size_t i = 0; first != NULL && first[i] != NULL && !done; i++)
            done = strcmp(key, first[i]) == 0;
        if (!done)
            print_field(key, v, indent);
    }
}

static void print_fields(const json_t *o, const char *indent)
{
    print_fields_ordered(o, NULL, indent);
}

/* ---- tables ---- */

/* Rows of text cells printed in aligned columns. A failed allocation is
 * remembered and reported by table_print. */
struct table {
    size_t ncols, nrows, cap;
    char **cells;   /* nrows * ncols, owned */
    unsigned right; /* bit i: column i is right-aligned (numbers) */
    bool failed;
};

static void table_row(struct table *t, const char *const *cells)
{
    if (t->failed)
        return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap == 0 ? 16 : t->cap * 2;
        char **grown = realloc(t->cells, cap * t->ncols * sizeof(char *));
        if (grown == NULL) {
            t->failed = true;
            return;
        }
        t->cells = grown;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        char clean[CTL_CELL_MAX];
        cli_one_line(cells[i] != NULL ? cells[i] : "", clean, sizeof(clean));
        char *copy = strdup(clean);
        if (copy == NULL) {
            for (size_t k = 0; k < i; k++)
                free(t->cells[t->nrows * t->ncols + k]);
            t->failed = true;
            return;
        }
        t->cells[t->nrows * t->ncols + i] = copy;
    }
    t->nrows++;
}

static void table_init(struct table *t, size_t ncols, unsigned right, const char *const *header)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    t->right = right;
    table_row(t, header);
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* Prints and frees the table. -1 when it could not be built. */
static int table_print(struct table *t)
{
    if (t->failed) {
        table_free(t);
        fprintf(stderr, "sikka-ctl: out of memory\n");
        return -1;
    }
    size_t width[16] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols && i < 16; i++) {
            size_t w = strlen(t->cells[r * t->ncols + i]);
            if (w > width[i])
                width[i] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t i = 0; i < t->ncols && i < 16; i++) {
            const char *cell = t->cells[r * t->ncols + i];
            bool last = i + 1 == t->ncols;
            if (t->right & (1u << i))
                printf("%*s%s", (int)width[i], cell, last ? "" : "  ");
            else if (last)
                printf("%s", cell);
            else
                printf("%-*s  ", (int)width[i], cell);
        }
        putchar('\n');
    }
    table_free(t);
    return 0;
}

/* ---- talking to the switch ---- */

static int ctl_tls(struct ctl *c)
{
    char err[512];
    const char *files[] = {c->cert, c->key, c->ca};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (access(files[i], R_OK) != 0) {
            fprintf(stderr,
                    "sikka-ctl: cannot read %s: %s (see --cert, --key, --ca or SIKKA_PKI)\n",
                    files[i], strerror(errno));
            return -1;
        }
    }
    c->ctx = tls_client_ctx_new(c->cert, c->key, c->ca, err, sizeof(err));
    if (c->ctx == NULL) {
        fprintf(stderr, "sikka-ctl: TLS setup failed: %s\n", err);
        return -1;
    }
    return 0;
}

/* One request. On a 2xx answer returns CTL_EXIT_OK with resp filled (free
 * it); otherwise prints why and returns CTL_EXIT_REFUSED (the switch said
 * no) or CTL_EXIT_USAGE (no usable answer), resp empty. With --json the
 * answer's body is printed as it came, whatever its status. */
static int ctl_request(struct ctl *c, const char *method, const char *path, const json_t *body,
                       struct https_response *resp)
{
    char err[1024];
    char *text = NULL;
    if (c->ctx == NULL && ctl_tls(c) != 0)
        return CTL_EXIT_USAGE;
    if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
        fprintf(stderr, "sikka-ctl: out of memory\n");
        return CTL_EXIT_USAGE;
    }
    int rc = https_request(c->ctx, c->host, c->port, method, path, text,
                           text != NULL ? strlen(text) : 0, c->timeout_ms, resp, err, sizeof(err));
    free(text);
    if (rc != 0) {
        fprintf(stderr, "sikka-ctl: %s: no answer from the admin API at %s: %s\n", c->command,
                c->admin, err);
        if (strstr(err, "alert") != NULL)
            fprintf(stderr,
                    "sikka-ctl: the switch refused our certificate %s (an operator "
                    "certificate from the scheme CA is needed)\n",
                    c->cert);
        return CTL_EXIT_USAGE;
    }
    if (c->json) {
        fwrite(resp->body, 1, resp->body_len, stdout);
        if (resp->body_len == 0 || resp->body[resp->body_len - 1] != '\n')
            putchar('\n');
    }
    if (resp->status >= 200 && resp->status < 300)
        return CTL_EXIT_OK;
    char why[512] = "";
    json_t *e = json_loadb(resp->body, resp->body_len, 0, NULL);
    json_t *msg = json_object_get(e, "error");
    if (json_is_string(msg))
        cli_one_line(json_string_value(msg), why, sizeof(why));
    else
        snprintf(why, sizeof(why), "the switch answered HTTP %d", resp->status);
    json_decref(e);
    fprintf(stderr, "sikka-ctl: %s: %s (HTTP %d)\n", c->command, why, resp->status);
    int status = resp->status;
    https_response_free(resp);
    return status >= 400 && status < 600 ? CTL_EXIT_REFUSED : CTL_EXIT_USAGE;
}

/* ctl_request and the answer as a JSON object in *out (the caller's). */
static int ctl_call(struct ctl *c, const char *method, const char *path, const json_t *body,
                    json_t **out)
{
    struct https_response resp;
    *out = NULL;
    int rc = ctl_request(c, method, path, body, &resp);
    if (rc != CTL_EXIT_OK)
        return rc;
    json_error_t jerr;
    *out = json_loadb(resp.body, resp.body_len, 0, &jerr);
    https_response_free(&resp);
    if (!json_is_object(*out)) {
        fprintf(stderr, "sikka-ctl: %s: the switch's answer is not a JSON object (%s)\n",
                c->command, *out == NULL ? jerr.text : "another JSON value");
        json_decref(*out);
        *out = NULL;
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

/* ---- participants ---- */

static void participant_row(struct table *t, const json_t *p)
{
    char code[16], name[CTL_CELL_MAX], kind[16], status[16], ndc[MSG_AMOUNT_MAX],
        posted[MSG_AMOUNT_MAX], reserved[MSG_AMOUNT_MAX], headroom[MSG_AMOUNT_MAX], used[32],
        sessions[16];
    json_t *u = json_object_get(p, "used_percent");
    if (json_is_integer(u))
        snprintf(used, sizeof(used), "%" PRId64 "%%", (int64_t)json_integer_value(u));
    else
        snprintf(used, sizeof(used), "-");
    const char *row[] = {jget(p, "code", code, sizeof(code)),
                         jget(p, "name", name, sizeof(name)),
                         jget(p, "kind", kind, sizeof(kind)),
                         jget(p, "status", status, sizeof(status)),
                         jamount(p, "ndc", ndc, sizeof(ndc)),
                         jamount(p, "posted", posted, sizeof(posted)),
                         jamount(p, "reserved", reserved, sizeof(reserved)),
                         jamount(p, "headroom", headroom, sizeof(headroom)),
                         used,
                         jget(p, "sessions", sessions, sizeof(sessions)),
                         json_is_true(json_object_get(p, "warning")) ? "WARN" : ""};
    table_row(t, row);
}

static int cmd_participants(struct ctl *c, char **args)
{
    (void)args;
    json_t *ans;
    int rc = ctl_call(c, "GET", "/api/v1/participants", NULL, &ans);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(ans);
        return rc;
    }
    json_t *list = json_object_get(ans, "participants");
    static const char *const head[] = {"CODE",     "NAME",     "KIND", "STATUS",   "NDC", "POSTED",
                                       "RESERVED", "HEADROOM", "USED", "SESSIONS", "FLAG"};
    struct table t;
    table_init(&t, 11, (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) | (1u << 8) | (1u << 9), head);
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p) participant_row(&t, p);
    json_decref(ans);
    printf("Participants (amounts in PKR; NDC = net debit cap):\n");
    return table_print(&t) == 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

static int cmd_participant_show(struct ctl *c, char **args)
{
    char path[64];
    if (!msg_valid_agent(args[0])) {
        fprintf(stderr, "sikka-ctl: participant code \"%s\" must be 4 uppercase letters\n",
                args[0]);
        return CTL_EXIT_USAGE;
    }
    snprintf(path, sizeof(path), "/api/v1/participants/%s", args[0]);
    json_t *ans;
    int rc = ctl_call(c, "GET", path, NULL, &ans);
    if (rc == CTL_EXIT_OK && !c->json) {
        printf("participant %s\n", args[0]);
        print_fields(json_object_get(ans, "participant"), "  ");
    }
    json_decref(ans);
    return rc;
}

/* Prints "participant CODE <what>: kind, status, net debit cap X PKR". */
static void participant_line(const json_t *ans, const char *what)
{
    const json_t *p = json_object_get(ans, "participant");
    char code[16], kind[16], status[16], ndc[MSG_AMOUNT_MAX], headroom[MSG_AMOUNT_MAX];
    printf("participant %s %s: %s, %s, net debit cap %s PKR, headroom %s PKR\n",
           jget(p, "code", code, sizeof(code)), what, jget(p, "kind", kind, sizeof(kind)),
           jget(p, "status", status, sizeof(status)), jamount(p, "ndc", ndc, sizeof(ndc)),
           jamount(p, "headroom", headroom, sizeof(headroom)));
}

/* A proposal's one-line description: "cap of JAZZ to 1500.00 PKR". */
static const char *proposal_what(const json_t *p, char *buf, size_t len)
{
    char action[32], target[32], name[CTL_CELL_MAX], kind[16], ndc[MSG_AMOUNT_MAX];
    const json_t *params = json_object_get(p, "params");
    jget(p, "action", action, sizeof(action));
    jget(p, "target", target, sizeof(target));
    if (strcmp(action, "ndc") == 0)
        snprintf(buf, len, "net debit cap of %s to %s PKR", target,
                 jamount(params, "ndc", ndc, sizeof(ndc)));
    else if (strcmp(action, "resume") == 0)
        snprintf(buf, len, "resume participant %s", target);
    else if (strcmp(action, "settle") == 0)
        snprintf(buf, len, "settle window %s", target);
    else if (strcmp(action, "participant_add") == 0)
        snprintf(buf, len, "add participant %s \"%s\" (%s, net debit cap %s PKR)", target,
                 jget(params, "name", name, sizeof(name)), jget(params, "kind", kind, sizeof(kind)),
                 jamount(params, "ndc", ndc, sizeof(ndc)));
    else
        snprintf(buf, len, "%s %s", action, target);
    return buf;
}

/* A change that needs a second operator was proposed (202): says so and
 * prints, as the last line, "PROPOSED <id>". */
static void print_proposed(const json_t *ans)
{
    const json_t *p = json_object_get(ans, "proposal");
    char id[32], what[CTL_CELL_MAX * 2], needs[32], expires[64];
    jget(p, "id", id, sizeof(id));
    printf("proposed %s (proposal %s); it takes effect when another operator with the role "
           "%s approves it (sikka-ctl approve %s) before %s\n",
           proposal_what(p, what, sizeof(what)), id, jget(p, "needs", needs, sizeof(needs)), id,
           jtime(p, "expires_at", expires, sizeof(expires)));
    printf("PROPOSED %s\n", id);
}

static int cmd_participant_add(struct ctl *c, char **args)
{
    const char *code = args[0];
    char err[256];
    int64_t ndc = 0;
    if (!msg_valid_agent(code)) {
        fprintf(stderr, "sikka-ctl: participant code \"%s\" must be 4 uppercase letters\n", code);
        return CTL_EXIT_USAGE;
    }
    if (c->name == NULL || c->kind == NULL) {
        fprintf(stderr, "sikka-ctl: participant add needs --name and --kind (see --help)\n");
        return CTL_EXIT_USAGE;
    }
    size_t nlen = strlen(c->name);
    if (nlen == 0 || nlen > CTL_NAME_MAX) {
        fprintf(stderr, "sikka-ctl: --name must be 1 to %d bytes\n", CTL_NAME_MAX);
        return CTL_EXIT_USAGE;
    }
    for (const char *s = c->name; *s != '\0'; s++) {
        if ((unsigned char)*s < ' ' || *s == 0x7f) {
            fprintf(stderr, "sikka-ctl: --name must not contain control characters\n");
            return CTL_EXIT_USAGE;
        }
    }
    if (strcmp(c->kind, "wallet") != 0 && strcmp(c->kind, "bank") != 0 &&
        strcmp(c->kind, "bnpl") != 0) {
        fprintf(stderr, "sikka-ctl: --kind \"%s\" must be wallet, bank or bnpl\n", c->kind);
        return CTL_EXIT_USAGE;
    }
    if (c->ndc != NULL && money_parse(c->ndc, &ndc, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-ctl: --ndc: %s\n", err);
        return CTL_EXIT_USAGE;
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:I}", "code", code, "name", c->name, "kind", c->kind,
                             "ndc", (json_int_t)ndc);
    if (body == NULL) {
        /* jansson refuses strings that are not UTF-8 */
        fprintf(stderr, "sikka-ctl: --name must be UTF-8 text\n");
        return CTL_EXIT_USAGE;
    }
    json_t *ans;
    int rc = ctl_call(c, "POST", "/api/v1/participants", body, &ans);
    json_decref(body);
    if (rc == CTL_EXIT_OK && !c->json)
        print_proposed(ans);
    json_decref(ans);
    return rc;
}

static int set_active(struct ctl *c, const char *code, bool active)
{
    char path[80];
    if (!msg_valid_agent(code)) {
        fprintf(stderr, "sikka-ctl: participant code \"%s\" must be 4 uppercase letters\n", code);
        return CTL_EXIT_USAGE;
    }
    snprintf(path, sizeof(path), "/api/v1/participants/%s/%s", code, active ? "resume" : "suspend");
    json_t *ans;
    int rc = ctl_call(c, "POST", path, NULL, &ans);
    if (rc == CTL_EXIT_OK && !c->json) {
        if (active) /* resuming needs a second operator */
            print_proposed(ans);
        else
            participant_line(ans, "suspended");
    }
    json_decref(ans);
    return rc;
}

static int cmd_participant_suspend(struct ctl *c, char **args)
{
    return set_active(c, args[0], false);
}

static int cmd_participant_resume(struct ctl *c, char **args)
{
    return set_active(c, args[0], true);
}

static int cmd_ndc_set(struct ctl *c, char **args)
{
    char path[80], err[256];
    int64_t ndc;
    if (!msg_valid_agent(args[0])) {
        fprintf(stderr, "sikka-ctl: participant code \"%s\" must be 4 uppercase letters\n",
                args[0]);
        return CTL_EXIT_USAGE;
    }
    if (money_parse(args[1], &ndc, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-ctl: AMOUNT: %s\n", err);
        return CTL_EXIT_USAGE;
    }
    snprintf(path, sizeof(path), "/api/v1/participants/%s/ndc", args[0]);
    json_t *body = json_pack("{s:I}", "ndc", (json_int_t)ndc);
    if (body == NULL) {
        fprintf(stderr, "sikka-ctl: out of memory\n");
        return CTL_EXIT_USAGE;
    }
    json_t *ans;
    int rc = ctl_call(c, "PUT", path, body, &ans);
    json_decref(body);
    if (rc == CTL_EXIT_OK && !c->json)
        print_proposed(ans);
    json_decref(ans);
    return rc;
}

/* ---- positions and transfers ---- */

static int cmd_positions(struct ctl *c, char **args)
{
    (void)args;
    json_t *ans;
    int rc = ctl_call(c, "GET", "/api/v1/positions", NULL, &ans);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(ans);
        return rc;
    }
    char window[32], warn[16];
    printf("Positions in window %s (amounts in PKR; WARN = over %s%% of the net debit cap "
           "used):\n",
           jget(ans, "window", window, sizeof(window)),
           jget(ans, "warn_percent", warn, sizeof(warn)));
    static const char *const head[] = {"CODE", "STATUS",   "POSTED", "RESERVED",
                                       "NDC",  "HEADROOM", "USED",   "FLAG"};
    struct table t;
    table_init(&t, 8, (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6), head);
    size_t i;
    json_t *p;
    size_t warnings = 0;
    json_array_foreach(json_object_get(ans, "positions"), i, p)
    {
        char code[16], status[16], posted[MSG_AMOUNT_MAX], reserved[MSG_AMOUNT_MAX],
            ndc[MSG_AMOUNT_MAX], headroom[MSG_AMOUNT_MAX], used[32];
        json_t *u = json_object_get(p, "used_percent");
        if (json_is_integer(u))
            snprintf(used, sizeof(used), "%" PRId64 "%%", (int64_t)json_integer_value(u));
        else
            snprintf(used, sizeof(used), "-");
        bool warning = json_is_true(json_object_get(p, "warning"));
        warnings += warning;
        const char *row[] = {jget(p, "code", code, sizeof(code)),
                             jget(p, "status", status, sizeof(status)),
                             jamount(p, "posted", posted, sizeof(posted)),
                             jamount(p, "reserved", reserved, sizeof(reserved)),
                             jamount(p, "ndc", ndc, sizeof(ndc)),
                             jamount(p, "headroom", headroom, sizeof(headroom)),
                             used,
                             warning ? "WARN" : ""};
        table_row(&t, row);
    }
    json_decref(ans);
    if (table_print(&t) != 0)
        return CTL_EXIT_USAGE;
    if (warnings > 0)
        printf("%zu participant%s over the warning threshold\n", warnings,
               warnings == 1 ? " is" : "s are");
    return CTL_EXIT_OK;
}

static int cmd_transfer_show(struct ctl *c, char **args)
{
    int64_t id;
    char path[80];
    if (money_parse_id(args[0], &id) != 0) {
        fprintf(stderr, "sikka-ctl: transfer id \"%s\" must be a positive integer\n", args[0]);
        return CTL_EXIT_USAGE;
    }
    snprintf(path, sizeof(path), "/api/v1/transfers/%" PRId64, id);
    json_t *ans;
    int rc = ctl_call(c, "GET", path, NULL, &ans);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(ans);
        return rc;
    }
    static const char *const order[] = {"id",
                                        "kind",
                                        "status",
                                        "reason",
                                        "reason_text",
                                        "payer",
                                        "payee",
                                        "amount",
                                        "fee",
                                        "currency",
                                        "purpose",
                                        "msg_id",
                                        "end_to_end_id",
                                        "debtor_account",
                                        "creditor_account",
                                        "loan_id",
                                        "instalment",
                                        "invoice_number",
                                        "remittance_text",
                                        "original_id",
                                        "return_reason",
                                        "window_id",
                                        "received_at",
                                        "finished_at",
                                        NULL};
    char state[32];
    printf("transfer %" PRId64 " (%s)\n", id, jget(ans, "state", state, sizeof(state)));
    print_fields_ordered(json_object_get(ans, "transfer"), order, "  ");
    json_t *entries = json_object_get(ans, "entries");
    if (json_array_size(entries) > 0) {
        printf("entries (debits negative, credits positive; PKR):\n");
        static const char *const head[] = {"  ACCOUNT", "PARTICIPANT", "KIND",
                                           "LEG",       "AMOUNT",      "WINDOW"};
        struct table t;
        table_init(&t, 6, (1u << 0) | (1u << 4) | (1u << 5), head);
        size_t i;
        json_t *e;
        json_array_foreach(entries, i, e)
        {
            char account[32], who[32], kind[32], leg[32], amount[MSG_AMOUNT_MAX], window[32];
            const char *row[] = {jget(e, "account_id", account, sizeof(account)),
                                 jget(e, "participant", who, sizeof(who)),
                                 jget(e, "account_kind", kind, sizeof(kind)),
                                 jget(e, "leg", leg, sizeof(leg)),
                                 jamount(e, "amount", amount, sizeof(amount)),
                                 jget(e, "window_id", window, sizeof(window))};
            table_row(&t, row);
        }
        if (table_print(&t) != 0) {
            json_decref(ans);
            return CTL_EXIT_USAGE;
        }
    }
    json_t *returns = json_object_get(ans, "returns");
    if (json_is_array(returns)) {
        char buf[CTL_CELL_MAX];
        printf("returns: %s\n",
               json_array_size(returns) == 0 ? "none" : jtext(returns, buf, sizeof(buf)));
    }
    json_decref(ans);
    return CTL_EXIT_OK;
}

/* ---- settlement windows ---- */

static int cmd_window_list(struct ctl *c, char **args)
{
    (void)args;
    json_t *ans;
    int rc = ctl_call(c, "GET", "/api/v1/windows", NULL, &ans);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(ans);
        return rc;
    }
    printf("Settlement windows, newest first (times UTC unless an offset is shown):\n");
    static const char *const head[] = {"ID",       "STATE",     "OPENED",    "CLOSED",    "SETTLED",
                                       "POSTINGS", "GROSS PKR", "CLOSED BY", "SETTLED BY"};
    struct table t;
    table_init(&t, 9, (1u << 0) | (1u << 5) | (1u << 6), head);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(ans, "windows"), i, w)
    {
        char id[32], state[16], opened[64], closed[64], settled[64], postings[32],
            gross[MSG_AMOUNT_MAX], closed_by[80], settled_by[80];
        const char *row[] = {jget(w, "id", id, sizeof(id)),
                             jget(w, "state", state, sizeof(state)),
                             jtime(w, "opened_at", opened, sizeof(opened)),
                             jtime(w, "closed_at", closed, sizeof(closed)),
                             jtime(w, "settled_at", settled, sizeof(settled)),
                             jget(w, "postings", postings, sizeof(postings)),
                             jamount(w, "gross", gross, sizeof(gross)),
                             jget(w, "closed_by", closed_by, sizeof(closed_by)),
                             jget(w, "settled_by", settled_by, sizeof(settled_by))};
        table_row(&t, row);
    }
    json_decref(ans);
    return table_print(&t) == 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

/* Requests to pay for one loan: every collection attempt, refused ones too. */
static int cmd_requests_loan(struct ctl *c, char **args)
{
    char *loan = evhttp_encode_uri(args[0]);
    if (loan == NULL)
        return CTL_EXIT_USAGE;
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/requests?limit=200&loan_id=%s", loan);
    free(loan);
    json_t *ans;
    int rc = ctl_call(c, "GET", path, NULL, &ans);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(ans);
        return rc;
    }
    printf("Requests to pay for loan %s, newest first (the latest 200):\n", args[0]);
    static const char *const head[] = {"ID",   "STATE",  "CREDITOR", "DEBTOR", "AMOUNT PKR",
                                       "INST", "REASON", "CREATED",  "PAID BY"};
    struct table t;
    table_init(&t, 9, (1u << 0) | (1u << 4) | (1u << 5), head);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(ans, "requests"), i, r)
    {
        char id[32], state[16], creditor[8], debtor[8], amount[MSG_AMOUNT_MAX], inst[16], reason[8],
            created[64], paid[32];
        const char *row[] = {jget(r, "id", id, sizeof(id)),
                             jget(r, "state", state, sizeof(state)),
                             jget(r, "creditor_agent", creditor, sizeof(creditor)),
                             jget(r, "debtor_agent", debtor, sizeof(debtor)),
                             jamount(r, "amount", amount, sizeof(amount)),
                             jget(r, "instalment", inst, sizeof(inst)),
                             jget(r, "reason", reason, sizeof(reason)),
                             jtime(r, "created_at", created, sizeof(created)),
                             jget(r, "paid_transfer_id", paid, sizeof(paid))};
        table_row(&t, row);
    }
    json_decref(ans);
    return table_print(&t) == 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

static int cmd_window_close(struct ctl *c, char **args)
{
    (void)args;
    json_t *ans;
    int rc = ctl_call(c, "POST", "/api/v1/windows/close", NULL, &ans);
    if (rc == CTL_EXIT_OK && !c->json) {
        char closed[32], opened[32], postings[32], gross[MSG_AMOUNT_MAX];
        printf("closed window %s: %s postings, gross %s PKR; window %s is open now\n",
               jget(ans, "closed", closed, sizeof(closed)),
               jget(ans, "postings", postings, sizeof(postings)),
               jamount(ans, "gross", gross, sizeof(gross)),
               jget(ans, "opened", opened, sizeof(opened)));
        /* the contract: the closed window's id is the last line */
        out_line(closed);
    }
    json_decref(ans);
    return rc;
}

static int cmd_window_settle(struct ctl *c, char **args)
{
    int64_t id;
    char path[80];
    if (money_parse_id(args[0], &id) != 0) {
        fprintf(stderr, "sikka-ctl: window id \"%s\" must be a positive integer\n", args[0]);
        return CTL_EXIT_USAGE;
    }
    snprintf(path, sizeof(path), "/api/v1/windows/%" PRId64 "/settle", id);
    json_t *ans;
    int rc = ctl_call(c, "POST", path, NULL, &ans);
    if (rc == CTL_EXIT_OK && !c->json)
        print_proposed(ans);
    json_decref(ans);
    return rc;
}

/* A settlement's answer ({"settled", "positions"}) as a table. */
static int print_settled(const json_t *ans)
{
    char id[32];
    printf("settled window %s; position changes (PKR):\n", jget(ans, "settled", id, sizeof(id)));
    static const char *const head[] = {"PARTICIPANT", "DELTA"};
    struct table t;
    table_init(&t, 2, 1u << 1, head);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(ans, "positions"), i, p)
    {
        char who[32], delta[MSG_AMOUNT_MAX];
        const char *row[] = {jget(p, "participant", who, sizeof(who)),
                             jamount(p, "delta", delta, sizeof(delta))};
        table_row(&t, row);
    }
    return table_print(&t) == 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

static int cmd_window_report(struct ctl *c, char **args)
{
    int64_t id;
    char path[96];
    if (money_parse_id(args[0], &id) != 0) {
        fprintf(stderr, "sikka-ctl: window id \"%s\" must be a positive integer\n", args[0]);
        return CTL_EXIT_USAGE;
    }
    if ((c->given & CTL_O_CSV) != 0) {
        if (c->json) {
            fprintf(stderr, "sikka-ctl: --csv and --json exclude each other\n");
            return CTL_EXIT_USAGE;
        }
        snprintf(path, sizeof(path), "/api/v1/windows/%" PRId64 "/report?format=csv", id);
        struct https_response resp;
        int rc = ctl_request(c, "GET", path, NULL, &resp);
        if (rc == CTL_EXIT_OK) {
            fwrite(resp.body, 1, resp.body_len, stdout);
            https_response_free(&resp);
        }
        return rc;
    }
    snprintf(path, sizeof(path), "/api/v1/windows/%" PRId64 "/report", id);
    json_t *ans;
    int rc = ctl_call(c, "GET", path, NULL, &ans);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(ans);
        return rc;
    }
    const json_t *w = json_object_get(ans, "window");
    char state[16], closed[64], postings[32], gross[MSG_AMOUNT_MAX], total[MSG_AMOUNT_MAX];
    printf(
        "Net settlement report of window %" PRId64 " (state %s, closed at %s): %s postings, "
        "gross %s PKR\n",
        id, jget(w, "state", state, sizeof(state)), jtime(w, "closed_at", closed, sizeof(closed)),
        jget(w, "postings", postings, sizeof(postings)), jamount(w, "gross", gross, sizeof(gross)));
    static const char *const head[] = {"PARTICIPANT", "ACCOUNT", "NET PKR", "NET PAISA",
                                       "POSTINGS"};
    struct table t;
    table_init(&t, 5, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4), head);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(ans, "positions"), i, p)
    {
        char who[32], account[32], net[MSG_AMOUNT_MAX], paisa[32], n[32];
        const char *row[] = {
            jget(p, "participant", who, sizeof(who)),
            jget(p, "account_id", account, sizeof(account)), jamount(p, "net", net, sizeof(net)),
            jget(p, "net", paisa, sizeof(paisa)), jget(p, "postings", n, sizeof(n))};
        table_row(&t, row);
    }
    if (table_print(&t) != 0) {
        json_decref(ans);
        return CTL_EXIT_USAGE;
    }
    printf("total: %s PKR (a complete report nets to 0.00)\n",
           jamount(ans, "total", total, sizeof(total)));
    json_decref(ans);
    return CTL_EXIT_OK;
}

/* ---- checks, fees, audit, status ---- */

/* One line per check: "ok", "FAIL" or "SKIP" (not checked: the check could
 * not run, which is never a pass). Exit 0 only when every check is ok. */
static int cmd_reconcile(struct ctl *c, char **args)
{
    (void)args;
    json_t *ans;
    int rc = ctl_call(c, "GET", "/api/v1/reconcile", NULL, &ans);
    if (rc != CTL_EXIT_OK)
        return rc;
    json_t *checks = json_object_get(ans, "checks");
    size_t i, failed = 0, unchecked = 0, total = json_array_size(checks);
    json_t *k;
    json_array_foreach(checks, i, k)
    {
        const char *status = json_string_value(json_object_get(k, "status"));
        bool ok = status != NULL && strcmp(status, "ok") == 0;
        bool not_checked = status != NULL && strcmp(status, "not checked") == 0;
        failed += !ok && !not_checked;
        unchecked += not_checked;
        if (!c->json) {
            char name[CTL_CELL_MAX], detail[CTL_CELL_MAX * 4];
            printf("%-4s  %s: %s\n",
                   ok            ? "ok"
                   : not_checked ? "SKIP"
                                 : "FAIL",
                   jget(k, "name", name, sizeof(name)), jget(k, "detail", detail, sizeof(detail)));
        }
    }
    bool ok =
        json_is_true(json_object_get(ans, "ok")) && failed == 0 && unchecked == 0 && total > 0;
    if (!c->json) {
        if (ok)
            printf("reconcile: all %zu checks hold\n", total);
        else if (total == 0)
            printf("reconcile: the switch ran no checks\n");
        else
            printf("reconcile: %zu of %zu checks FAILED, %zu not checked\n", failed, total,
                   unchecked);
    }
    json_decref(ans);
    return ok ? CTL_EXIT_OK : CTL_EXIT_REFUSED;
}

static int cmd_fees(struct ctl *c, char **args)
{
    (void)args;
    json_t *ans;
    int rc = ctl_call(c, "GET", "/api/v1/fees", NULL, &ans);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(ans);
        return rc;
    }
    printf("Fee schedule (per purpose; PKR):\n");
    static const char *const head[] = {"PURPOSE", "BPS", "RATE", "MIN", "MAX", "CHARGED TO"};
    struct table t;
    table_init(&t, 6, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4), head);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(ans, "fees"), i, f)
    {
        char purpose[32], bps[16], rate[32], min[MSG_AMOUNT_MAX], max[MSG_AMOUNT_MAX], who[16];
        json_t *b = json_object_get(f, "bps");
        if (json_is_integer(b) && json_integer_value(b) >= 0)
            snprintf(rate, sizeof(rate), "%" PRId64 ".%02d%%", (int64_t)json_integer_value(b) / 100,
                     (int)(json_integer_value(b) % 100));
        else
            snprintf(rate, sizeof(rate), "-");
        const char *row[] = {jget(f, "purpose", purpose, sizeof(purpose)),
                             jget(f, "bps", bps, sizeof(bps)),
                             rate,
                             jamount(f, "min_fee", min, sizeof(min)),
                             jamount(f, "max_fee", max, sizeof(max)),
                             jget(f, "charged_to", who, sizeof(who))};
        table_row(&t, row);
    }
    json_decref(ans);
    return table_print(&t) == 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

static int cmd_audit(struct ctl *c, char **args)
{
    (void)args;
    char path[64];
    if ((c->given & CTL_O_LIMIT) != 0)
        snprintf(path, sizeof(path), "/api/v1/audit?limit=%ld", c->limit);
    else
        snprintf(path, sizeof(path), "/api/v1/audit");
    json_t *ans;
    int rc = ctl_call(c, "GET", path, NULL, &ans);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(ans);
        return rc;
    }
    printf("Audit trail, newest first (CERTIFICATE: the first 16 hex digits of the SHA-256 "
           "fingerprint; --json has it whole, with the serial):\n");
    static const char *const head[] = {"ID",     "AT",     "OPERATOR", "ROLE",   "CERTIFICATE",
                                       "ACTION", "TARGET", "PROPOSAL", "BEFORE", "AFTER"};
    struct table t;
    table_init(&t, 10, (1u << 0) | (1u << 7), head);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(ans, "audit"), i, a)
    {
        char id[32], at[64], op[80], role[16], cert[80], action[64], target[64], proposal[32],
            before[CTL_CELL_MAX], after[CTL_CELL_MAX];
        jget(json_object_get(a, "certificate"), "fingerprint", cert, sizeof(cert));
        if (strlen(cert) > 16)
            cert[16] = '\0';
        const char *row[] = {jget(a, "id", id, sizeof(id)),
                             jtime(a, "at", at, sizeof(at)),
                             jget(a, "operator", op, sizeof(op)),
                             jget(a, "role", role, sizeof(role)),
                             cert,
                             jget(a, "action", action, sizeof(action)),
                             jget(a, "target", target, sizeof(target)),
                             jget(a, "proposal", proposal, sizeof(proposal)),
                             jget(a, "before", before, sizeof(before)),
                             jget(a, "after", after, sizeof(after))};
        table_row(&t, row);
    }
    json_decref(ans);
    return table_print(&t) == 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

/* GET /api/v1/aliases: `alias list` (every participant's) or `alias of CODE`. */
static int alias_table(struct ctl *c, const char *code)
{
    char path[128];
    int n = snprintf(path, sizeof(path), "/api/v1/aliases?limit=%ld",
                     (c->given & CTL_O_LIMIT) != 0 ? c->limit : 50L);
    if (code != NULL) {
        if (!msg_valid_agent(code)) {
            fprintf(stderr, "sikka-ctl: \"%s\" is not a participant code (4 capital letters)\n",
                    code);
            return CTL_EXIT_USAGE;
        }
        snprintf(path + n, sizeof(path) - (size_t)n, "&participant=%s", code);
    }
    json_t *ans;
    int rc = ctl_call(c, "GET", path, NULL, &ans);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(ans);
        return rc;
    }
    char total[32];
    printf("Alias directory%s%s (names and accounts masked; %s aliases in all):\n",
           code != NULL ? " of " : "", code != NULL ? code : "",
           jget(ans, "total", total, sizeof(total)));
    static const char *const head[] = {"ALIAS",   "TYPE",    "PARTICIPANT", "NAME",
                                       "ACCOUNT", "UPDATED", "PORT TO"};
    struct table t;
    table_init(&t, 7, 0, head);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(ans, "aliases"), i, a)
    {
        char alias[32], type[16], who[16], name[CTL_CELL_MAX], account[64], at[64], port[16];
        const char *row[] = {jget(a, "alias", alias, sizeof(alias)),
                             jget(a, "type", type, sizeof(type)),
                             jget(a, "participant", who, sizeof(who)),
                             jget(a, "masked_name", name, sizeof(name)),
                             jget(a, "account", account, sizeof(account)),
                             jtime(a, "updated_at", at, sizeof(at)),
                             jget(a, "port_to", port, sizeof(port))};
        table_row(&t, row);
    }
    const char *next = json_string_value(json_object_get(ans, "next"));
    rc = table_print(&t) == 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    if (next != NULL)
        printf("more: GET /api/v1/aliases?after=%s\n", next);
    json_decref(ans);
    return rc;
}

static int cmd_alias_list(struct ctl *c, char **args)
{
    (void)args;
    return alias_table(c, NULL);
}

static int cmd_alias_of(struct ctl *c, char **args)
{
    return alias_table(c, args[0]);
}

static int cmd_status(struct ctl *c, char **args)
{
    (void)args;
    json_t *ans;
    int rc = ctl_call(c, "GET", "/api/v1/status", NULL, &ans);
    if (rc == CTL_EXIT_OK && !c->json) {
        printf("switch at %s\n", c->admin);
        print_fields(ans, "  ");
    }
    json_decref(ans);
    return rc;
}

/* ---- four-eyes ---- */

static int cmd_proposals(struct ctl *c, char **args)
{
    (void)args;
    bool all = (c->given & CTL_O_ALL) != 0;
    json_t *ans;
    int rc = ctl_call(c, "GET", all ? "/api/v1/proposals" : "/api/v1/proposals?state=pending", NULL,
                      &ans);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(ans);
        return rc;
    }
    json_t *list = json_object_get(ans, "proposals");
    if (json_array_size(list) == 0) {
        printf("%s\n", all ? "no proposals" : "no pending proposals (--all: every one)");
        json_decref(ans);
        return CTL_EXIT_OK;
    }
    printf("%s, newest first (times UTC unless an offset is shown):\n",
           all ? "Proposals" : "Pending proposals");
    static const char *const head[] = {"ID",      "STATE", "WHAT",       "PROPOSED BY", "ROLE",
                                       "EXPIRES", "NEEDS", "DECIDED BY", "REASON"};
    struct table t;
    table_init(&t, 9, 1u << 0, head);
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
    {
        char id[32], state[16], what[CTL_CELL_MAX], by[80], role[16], expires[64], needs[16],
            decided[80], reason[CTL_CELL_MAX];
        const char *row[] = {jget(p, "id", id, sizeof(id)),
                             jget(p, "state", state, sizeof(state)),
                             proposal_what(p, what, sizeof(what)),
                             jget(p, "proposed_by", by, sizeof(by)),
                             jget(p, "proposed_role", role, sizeof(role)),
                             jtime(p, "expires_at", expires, sizeof(expires)),
                             jget(p, "needs", needs, sizeof(needs)),
                             jget(p, "decided_by", decided, sizeof(decided)),
                             jget(p, "reason", reason, sizeof(reason))};
        table_row(&t, row);
    }
    json_decref(ans);
    return table_print(&t) == 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

/* "proposal 7 (net debit cap of JAZZ to ..., proposed by supervisor)" */
static void decided_line(const json_t *ans, const char *verb)
{
    const json_t *p = json_object_get(ans, "proposal");
    char id[32], what[CTL_CELL_MAX * 2], by[80];
    printf("%s proposal %s: %s (proposed by %s)\n", verb, jget(p, "id", id, sizeof(id)),
           proposal_what(p, what, sizeof(what)), jget(p, "proposed_by", by, sizeof(by)));
}

static int proposal_path(const char *arg, const char *verb, char *path, size_t len)
{
    int64_t id;
    if (money_parse_id(arg, &id) != 0) {
        fprintf(stderr, "sikka-ctl: proposal id \"%s\" must be a positive integer\n", arg);
        return -1;
    }
    snprintf(path, len, "/api/v1/proposals/%" PRId64 "/%s", id, verb);
    return 0;
}

static int cmd_approve(struct ctl *c, char **args)
{
    char path[96];
    if (proposal_path(args[0], "approve", path, sizeof(path)) != 0)
        return CTL_EXIT_USAGE;
    json_t *ans;
    int rc = ctl_call(c, "POST", path, NULL, &ans);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(ans);
        return rc;
    }
    decided_line(ans, "approved");
    const json_t *result = json_object_get(ans, "result");
    const char *action =
        json_string_value(json_object_get(json_object_get(ans, "proposal"), "action"));
    if (action != NULL && strcmp(action, "settle") == 0)
        rc = print_settled(result);
    else if (action != NULL && strcmp(action, "ndc") == 0)
        participant_line(result, "updated");
    else if (action != NULL && strcmp(action, "resume") == 0)
        participant_line(result, "resumed");
    else if (action != NULL && strcmp(action, "participant_add") == 0)
        participant_line(result, "added");
    else
        print_fields(result, "  ");
    json_decref(ans);
    return rc;
}

/* reject ID or withdraw ID, with the optional --reason */
static int decide_with_reason(struct ctl *c, const char *id, const char *verb, const char *done)
{
    char path[96];
    if (proposal_path(id, verb, path, sizeof(path)) != 0)
        return CTL_EXIT_USAGE;
    json_t *body = NULL;
    if (c->reason != NULL) {
        size_t n = strlen(c->reason);
        bool control = false;
        for (const char *r = c->reason; *r != '\0'; r++)
            control |= (unsigned char)*r < ' ' || *r == 0x7f;
        if (n == 0 || n > CTL_REASON_MAX || control) {
            fprintf(stderr,
                    "sikka-ctl: --reason must be 1 to %d bytes without control characters\n",
                    CTL_REASON_MAX);
            return CTL_EXIT_USAGE;
        }
        body = json_pack("{s:s}", "reason", c->reason);
        if (body == NULL) {
            fprintf(stderr, "sikka-ctl: --reason must be UTF-8 text\n");
            return CTL_EXIT_USAGE;
        }
    }
    json_t *ans;
    int rc = ctl_call(c, "POST", path, body, &ans);
    json_decref(body);
    if (rc == CTL_EXIT_OK && !c->json)
        decided_line(ans, done);
    json_decref(ans);
    return rc;
}

static int cmd_reject(struct ctl *c, char **args)
{
    return decide_with_reason(c, args[0], "reject", "rejected");
}

static int cmd_withdraw(struct ctl *c, char **args)
{
    return decide_with_reason(c, args[0], "withdraw", "withdrawn");
}

static int cmd_me(struct ctl *c, char **args)
{
    (void)args;
    json_t *ans;
    int rc = ctl_call(c, "GET", "/api/v1/me", NULL, &ans);
    if (rc == CTL_EXIT_OK && !c->json) {
        char name[80], role[16], may[CTL_CELL_MAX];
        printf("operator %s, role %s; may: %s\n", jget(ans, "name", name, sizeof(name)),
               jget(ans, "role", role, sizeof(role)), jget(ans, "may", may, sizeof(may)));
        print_fields(json_object_get(ans, "certificate"), "  ");
    }
    json_decref(ans);
    return rc;
}

/* ---- the command table ---- */

static const struct ctl_command commands[] = {
    {.words = {"participants", NULL},
     .args = "",
     .nargs = 0,
     .options = 0,
     .run = cmd_participants,
     .summary = "list participants with their caps and positions",
     .details =
         "Lists every participant: kind, status, net debit cap (NDC), posted and reserved\n"
         "position, headroom under the cap, how much of the cap is used, open sessions, and\n"
         "WARN when the warning threshold is crossed.\n"},
    {.words = {"participant", "show"},
     .args = "CODE",
     .nargs = 1,
     .options = 0,
     .run = cmd_participant_show,
     .summary = "show one participant",
     .details = "Shows one participant's registry entry and position.\n"},
    {.words = {"participant", "add"},
     .args = "CODE --name NAME --kind wallet|bank|bnpl [--ndc AMOUNT]",
     .nargs = 1,
     .options = CTL_O_NAME | CTL_O_KIND | CTL_O_NDC,
     .run = cmd_participant_add,
     .summary = "propose a new participant (four-eyes)",
     .details =
         "Proposes registering a participant (supervisor; audited); it is added when another\n"
         "supervisor approves. Prints PROPOSED <id> as the last line. CODE is 4 uppercase\n"
         "letters, like a bank code.\n"
         "  --name NAME       its name (1 to 140 bytes)\n"
         "  --kind KIND       wallet, bank or bnpl\n"
         "  --ndc AMOUNT      net debit cap in PKR, e.g. 500000.00 (default 0: it can pay\n"
         "                    out only what it has received)\n"
         "Its certificate (CN=CODE) comes from the scheme CA separately.\n"},
    {.words = {"participant", "suspend"},
     .args = "CODE",
     .nargs = 1,
     .options = 0,
     .run = cmd_participant_suspend,
     .summary = "suspend a participant (at once)",
     .details =
         "Suspends a participant at once (operator; audited): its new transfers are refused\n"
         "(AG10 as payer, AG11 as payee) until it is resumed.\n"},
    {.words = {"participant", "resume"},
     .args = "CODE",
     .nargs = 1,
     .options = 0,
     .run = cmd_participant_resume,
     .summary = "propose resuming a suspended participant (four-eyes)",
     .details =
         "Proposes resuming a suspended participant (operator; audited); it is resumed when\n"
         "another operator approves. Prints PROPOSED <id> as the last line.\n"},
    {.words = {"ndc", "set"},
     .args = "CODE AMOUNT",
     .nargs = 2,
     .options = 0,
     .run = cmd_ndc_set,
     .summary = "propose a participant's net debit cap (four-eyes)",
     .details =
         "Proposes a net debit cap (supervisor; audited); when another supervisor approves, it\n"
         "takes effect for the next transfer. Prints PROPOSED <id> as the last line. AMOUNT\n"
         "is in PKR with at most two decimals, e.g. 1500.00.\n"},
    {.words = {"positions", NULL},
     .args = "",
     .nargs = 0,
     .options = 0,
     .run = cmd_positions,
     .summary = "positions against the net debit caps, with warnings",
     .details = "Shows each participant's posted and reserved position against its net debit cap,\n"
                "the headroom left, and WARN where the warning threshold of the cap is crossed.\n"},
    {.words = {"transfer", "show"},
     .args = "ID",
     .nargs = 1,
     .options = 0,
     .run = cmd_transfer_show,
     .summary = "show a transfer and its entries",
     .details = "Shows a transfer (or return) by its id: its fields, state, ledger entries and\n"
                "returns.\n"},
    {.words = {"requests", "loan"},
     .args = "LOAN_ID",
     .nargs = 1,
     .options = 0,
     .run = cmd_requests_loan,
     .summary = "collection attempts (requests to pay) for one loan",
     .details = "Lists the requests to pay naming the loan, newest first: their state, the\n"
                "instalment, the reason of a refusal or decline (RQ01..RQ04 are the consumer\n"
                "guards) and the transfer that paid it.\n"},
    {.words = {"window", "list"},
     .args = "",
     .nargs = 0,
     .options = 0,
     .run = cmd_window_list,
     .summary = "list settlement windows",
     .details = "Lists the settlement windows, newest first.\n"},
    {.words = {"window", "close"},
     .args = "",
     .nargs = 0,
     .options = 0,
     .run = cmd_window_close,
     .summary = "close the open window (prints its id last)",
     .details =
         "Closes the open settlement window at once (operator; audited) and opens the next;\n"
         "the net settlement report of the closed window is computed. Payments keep\n"
         "flowing. The closed window's id is printed as the last line.\n"},
    {.words = {"window", "settle"},
     .args = "ID",
     .nargs = 1,
     .options = 0,
     .run = cmd_window_settle,
     .summary = "propose settling a closed window (four-eyes)",
     .details = "Proposes settling a closed window (supervisor; audited). When another supervisor\n"
                "approves, the settlement entries are posted and the participants' room under\n"
                "their caps restored. Prints PROPOSED <id> as the last line.\n"},
    {.words = {"window", "report"},
     .args = "ID [--csv]",
     .nargs = 1,
     .options = CTL_O_CSV,
     .run = cmd_window_report,
     .summary = "a closed window's multilateral net settlement report",
     .details =
         "Prints the net settlement report of a closed window: each account's net (PKR and\n"
         "paisa) and postings; the total nets to zero.\n"
         "  --csv             CSV instead: participant,account_id,net,net_pkr,postings and a\n"
         "                    total line\n"},
    {.words = {"reconcile", NULL},
     .args = "",
     .nargs = 0,
     .options = 0,
     .run = cmd_reconcile,
     .summary = "check every ledger invariant",
     .details = "Recomputes everything from the ledger entries and checks every invariant; prints\n"
                "a verdict per check. Exit status 0 only when every check holds, 1 otherwise.\n"},
    {.words = {"fees", NULL},
     .args = "",
     .nargs = 0,
     .options = 0,
     .run = cmd_fees,
     .summary = "the fee schedule",
     .details = "Shows the fee schedule per purpose: basis points, minimum, maximum, who pays.\n"},
    {.words = {"audit", NULL},
     .args = "[--limit N]",
     .nargs = 0,
     .options = CTL_O_LIMIT,
     .run = cmd_audit,
     .summary = "the operator audit trail",
     .details = "Shows the latest operator actions, newest first: who, with which role and\n"
                "certificate, what, the proposal it belongs to, before and after.\n"
                "  --limit N         how many (1 to 1000, default 50)\n"},
    {.words = {"proposals", NULL},
     .args = "[--all]",
     .nargs = 0,
     .options = CTL_O_ALL,
     .run = cmd_proposals,
     .summary = "proposals waiting for a second operator",
     .details = "Lists the pending proposals (changes waiting for a second operator's approval):\n"
                "what, who proposed it, when it expires, the role that may approve it.\n"
                "  --all             every proposal: approved, rejected, expired and withdrawn\n"
                "                    ones too\n"},
    {.words = {"approve", NULL},
     .args = "ID",
     .nargs = 1,
     .options = 0,
     .run = cmd_approve,
     .summary = "approve a proposal: it takes effect",
     .details = "Approves proposal ID, which then takes effect at once (audited), and prints its\n"
                "result. Refused for its proposer (four-eyes: another name and another\n"
                "certificate), for a role below the one its action needs, and once it was\n"
                "decided or has expired.\n"},
    {.words = {"reject", NULL},
     .args = "ID [--reason TEXT]",
     .nargs = 1,
     .options = CTL_O_REASON,
     .run = cmd_reject,
     .summary = "reject a proposal",
     .details = "Rejects proposal ID (audited): it never takes effect. Like approving, not for\n"
                "its proposer (who withdraws it instead).\n"
                "  --reason TEXT     why (1 to 500 bytes), kept with the proposal\n"},
    {.words = {"withdraw", NULL},
     .args = "ID [--reason TEXT]",
     .nargs = 1,
     .options = CTL_O_REASON,
     .run = cmd_withdraw,
     .summary = "withdraw your own proposal",
     .details = "Takes back proposal ID while it is pending (audited): it never takes effect.\n"
                "Only for its proposer (the same operator name); the others reject it.\n"
                "  --reason TEXT     why (1 to 500 bytes), kept with the proposal\n"},
    {.words = {"me", NULL},
     .args = "",
     .nargs = 0,
     .options = 0,
     .run = cmd_me,
     .summary = "who the certificate says you are",
     .details = "Shows the operator name, role and certificate (serial, SHA-256 fingerprint) the\n"
                "switch reads from the certificate in use, and what that role may do.\n"},
    {.words = {"alias", "list"},
     .args = "[--limit N]",
     .nargs = 0,
     .options = CTL_O_LIMIT,
     .run = cmd_alias_list,
     .summary = "the alias directory (Raast ID), masked",
     .details = "Lists the alias directory in alias order: alias, type, the participant holding\n"
                "it, the holder's name and the account masked, a port waiting.\n"
                "  --limit N         how many (1 to 1000, default 50)\n"},
    {.words = {"alias", "of"},
     .args = "CODE [--limit N]",
     .nargs = 1,
     .options = CTL_O_LIMIT,
     .run = cmd_alias_of,
     .summary = "one participant's aliases, masked",
     .details = "Lists the aliases participant CODE holds, as `alias list` does.\n"
                "  --limit N         how many (1 to 1000, default 50)\n"},
    {.words = {"status", NULL},
     .args = "",
     .nargs = 0,
     .options = 0,
     .run = cmd_status,
     .summary = "the switch's state and counters",
     .details = "Shows whether the switch is ready or draining, sessions, transfers in flight,\n"
                "the open window and counters.\n"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage_main(FILE *out)
{
    fprintf(out, "usage: sikka-ctl [options] COMMAND [arguments]\n"
                 "\n"
                 "The operator's command line for the Sikka switch (its admin API).\n"
                 "\n"
                 "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char words[64];
        snprintf(words, sizeof(words), "%s%s%s", commands[i].words[0],
                 commands[i].words[1] != NULL ? " " : "",
                 commands[i].words[1] != NULL ? commands[i].words[1] : "");
        fprintf(out, "  %-21s %s\n", words, commands[i].summary);
    }
    fprintf(out, "Run `sikka-ctl COMMAND --help` for a command's arguments.\n\n%s", common_usage);
}

static void usage_command(FILE *out, const struct ctl_command *cmd)
{
    fprintf(out, "usage: sikka-ctl %s%s%s%s%s\n\n%s\n%s", cmd->words[0],
            cmd->words[1] != NULL ? " " : "", cmd->words[1] != NULL ? cmd->words[1] : "",
            cmd->args[0] != '\0' ? " " : "", cmd->args, cmd->details, common_usage);
}

/* The command named by the first one or two words; NULL when none. */
static const struct ctl_command *find_command(int n, char **words)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct ctl_command *cmd = &commands[i];
        if (n < 1 || strcmp(words[0], cmd->words[0]) != 0)
            continue;
        if (cmd->words[1] == NULL || (n >= 2 && strcmp(words[1], cmd->words[1]) == 0))
            return cmd;
    }
    return NULL;
}

/* Lists the commands that start with `word` (for "participant" alone). */
static bool usage_group(FILE *out, const char *word)
{
    bool any = false;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (commands[i].words[1] == NULL || strcmp(commands[i].words[0], word) != 0)
            continue;
        if (!any)
            fprintf(out, "usage:\n");
        any = true;
        fprintf(out, "  sikka-ctl %s %s %s\n", commands[i].words[0], commands[i].words[1],
                commands[i].args);
    }
    return any;
}

static const char *option_name(unsigned bit)
{
    switch (bit) {
    case CTL_O_NAME:
        return "--name";
    case CTL_O_KIND:
        return "--kind";
    case CTL_O_NDC:
        return "--ndc";
    case CTL_O_CSV:
        return "--csv";
    case CTL_O_ALL:
        return "--all";
    case CTL_O_REASON:
        return "--reason";
    default:
        return "--limit";
    }
}

/* Fills in the defaults and checks the address. */
static int ctl_resolve(struct ctl *c)
{
    char err[512], pki[PATH_MAX];
    if (c->admin == NULL)
        c->admin = getenv("SIKKA_ADMIN");
    if (c->admin == NULL || c->admin[0] == '\0')
        c->admin = CTL_DEFAULT_ADMIN;
    if (cli_parse_addr(c->admin, c->host, sizeof(c->host), &c->port, err, sizeof(err)) != 0) {
        fprintf(stderr, "sikka-ctl: --admin %s\n", err);
        return -1;
    }
    cli_pki_dir(pki, sizeof(pki));
    const char *who = "operator";
    if (c->as != NULL) {
        size_t n = strlen(c->as);
        if (n == 0 || n > 64 ||
            strspn(c->as, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
                n ||
            c->as[0] == '.') {
            fprintf(stderr,
                    "sikka-ctl: --as \"%s\" must be a certificate's name in the PKI "
                    "directory (letters, digits, _ . -)\n",
                    c->as);
            return -1;
        }
        if (c->cert != NULL || c->key != NULL) {
            fprintf(stderr, "sikka-ctl: --as and --cert/--key exclude each other\n");
            return -1;
        }
        who = c->as;
    }
    snprintf(c->cert_path, sizeof(c->cert_path), "%.*s/%s.crt", PATH_MAX - 80, pki, who);
    snprintf(c->key_path, sizeof(c->key_path), "%.*s/%s.key", PATH_MAX - 80, pki, who);
    snprintf(c->ca_path, sizeof(c->ca_path), "%.*s/ca.crt", PATH_MAX - 16, pki);
    if (c->cert == NULL)
        c->cert = c->cert_path;
    if (c->key == NULL)
        c->key = c->key_path;
    if (c->ca == NULL)
        c->ca = c->ca_path;
    if (c->timeout_ms <= 0)
        c->timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
    log_set_level(c->verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
    return 0;
}

static int ctl_parse(struct ctl *c, int argc, char **argv)
{
    static const struct option options[] = {
        {"admin", required_argument, NULL, OPT_ADMIN},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"ca", required_argument, NULL, OPT_CA},
        {"json", no_argument, NULL, OPT_JSON},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"help", no_argument, NULL, OPT_HELP},
        {"name", required_argument, NULL, OPT_NAME},
        {"kind", required_argument, NULL, OPT_KIND},
        {"ndc", required_argument, NULL, OPT_NDC},
        {"csv", no_argument, NULL, OPT_CSV},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"as", required_argument, NULL, OPT_AS},
        {"all", no_argument, NULL, OPT_ALL},
        {"reason", required_argument, NULL, OPT_REASON},
        {NULL, 0, NULL, 0},
    };
    int opt;
    long v;
    opterr = 0; /* our messages below */
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case OPT_ADMIN:
            c->admin = optarg;
            break;
        case OPT_CERT:
            c->cert = optarg;
            break;
        case OPT_KEY:
            c->key = optarg;
            break;
        case OPT_CA:
            c->ca = optarg;
            break;
        case OPT_JSON:
            c->json = true;
            break;
        case OPT_TIMEOUT:
            if (cli_parse_long(optarg, 1, INT_MAX, &v) != 0) {
                fprintf(stderr, "sikka-ctl: --timeout-ms \"%s\" must be a positive number\n",
                        optarg);
                return -1;
            }
            c->timeout_ms = (int)v;
            break;
        case OPT_VERBOSE:
            c->verbose = true;
            break;
        case 'h':
        case OPT_HELP:
            c->help = true;
            break;
        case OPT_NAME:
            c->name = optarg;
            c->given |= CTL_O_NAME;
            break;
        case OPT_KIND:
            c->kind = optarg;
            c->given |= CTL_O_KIND;
            break;
        case OPT_NDC:
            c->ndc = optarg;
            c->given |= CTL_O_NDC;
            break;
        case OPT_CSV:
            c->given |= CTL_O_CSV;
            break;
        case OPT_AS:
            c->as = optarg;
            break;
        case OPT_ALL:
            c->given |= CTL_O_ALL;
            break;
        case OPT_REASON:
            c->reason = optarg;
            c->given |= CTL_O_REASON;
            break;
        case OPT_LIMIT:
            if (cli_parse_long(optarg, 1, CTL_AUDIT_MAX, &c->limit) != 0) {
                fprintf(stderr, "sikka-ctl: --limit \"%s\" must be a number from 1 to %d\n", optarg,
                        CTL_AUDIT_MAX);
                return -1;
            }
            c->given |= CTL_O_LIMIT;
            break;
        case ':':
            fprintf(stderr, "sikka-ctl: %s needs a value (see sikka-ctl --help)\n",
                    argv[optind - 1]);
            return -1;
        default:
            if (optopt >= '0' && optopt <= '9')
                fprintf(stderr, "sikka-ctl: amounts and ids cannot be negative\n");
            else
                fprintf(stderr, "sikka-ctl: unknown option \"%s\" (see sikka-ctl --help)\n",
                        argv[optind - 1]);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct ctl c;
    memset(&c, 0, sizeof(c));
    /* a write to a connection the switch closed must fail with EPIPE, not
     * kill the process */
    signal(SIGPIPE, SIG_IGN);
    log_setup("sikka-ctl", LOG_LEVEL_ERROR);
    if (ctl_parse(&c, argc, argv) != 0)
        return CTL_EXIT_USAGE;
    int npos = argc - optind;
    char **pos = argv + optind;
    if (npos > 0 && strcmp(pos[0], "help") == 0) {
        c.help = true;
        npos--;
        pos++;
    }
    if (npos == 0) {
        usage_main(c.help ? stdout : stderr);
        return c.help ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    }
    const struct ctl_command *cmd = find_command(npos, pos);
    if (cmd == NULL) {
        FILE *out = c.help ? stdout : stderr;
        if (usage_group(out, pos[0]))
            return c.help && npos == 1 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
        fprintf(stderr, "sikka-ctl: unknown command \"%s\" (try sikka-ctl --help)\n", pos[0]);
        return CTL_EXIT_USAGE;
    }
    if (c.help) {
        usage_command(stdout, cmd);
        return CTL_EXIT_OK;
    }
    int nwords = cmd->words[1] != NULL ? 2 : 1;
    if (npos - nwords != cmd->nargs) {
        fprintf(stderr, "sikka-ctl: %s: usage: sikka-ctl %s%s%s%s%s\n",
                npos - nwords < cmd->nargs ? "missing argument" : "unexpected argument",
                cmd->words[0], nwords == 2 ? " " : "", nwords == 2 ? cmd->words[1] : "",
                cmd->args[0] != '\0' ? " " : "", cmd->args);
        return CTL_EXIT_USAGE;
    }
    unsigned stray = c.given & ~cmd->options;
    if (stray != 0) {
        fprintf(stderr, "sikka-ctl: %s is not an option of `%s%s%s`\n", option_name(stray & -stray),
                cmd->words[0], nwords == 2 ? " " : "", nwords == 2 ? cmd->words[1] : "");
        return CTL_EXIT_USAGE;
    }
    char command[64];
    snprintf(command, sizeof(command), "%s%s%s", cmd->words[0], nwords == 2 ? " " : "",
             nwords == 2 ? cmd->words[1] : "");
    c.command = command;
    if (ctl_resolve(&c) != 0)
        return CTL_EXIT_USAGE;
    int rc = cmd->run(&c, pos + nwords);
    if (c.ctx != NULL)
        SSL_CTX_free(c.ctx);
    if (fflush(stdout) != 0) {
        /* a reader that went away (| head) already has what it wanted */
        if (errno != EPIPE)
            fprintf(stderr, "sikka-ctl: cannot write the output: %s\n", strerror(errno));
        return CTL_EXIT_USAGE;
    }
    return rc;
}
