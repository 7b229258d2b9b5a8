#include "clock.h"
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include "alias.h"
#include "console.h"
#include "log.h"
#include "metrics.h"
#include "money.h"
#include "participant.h"
#include "ops.h"
#include "text.h"
#include "tls.h"
#include "transfer.h"

#define ADMIN_PREFIX "/api/v1/"
/* Every answer, API or console file: the console runs only its own scripts
 * and styles, talks only to its own origin, is never framed, and nothing is
 * sniffed or leaked in a Referer. */
#define ADMIN_CSP                                                                                  \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "                   \
    "frame-ancestors 'none'"
#define ADMIN_BODY_MAX      (64 * 1024)   /* JSON bodies we parse */
#define ADMIN_BODY_HARD_MAX (1024 * 1024) /* beyond this evhttp answers 413 itself */
#define ADMIN_HEADERS_MAX   (16 * 1024)
#define ADMIN_TIMEOUT_S     30 /* idle or stalled connections */
#define ADMIN_PATH_MAX      200
#define ADMIN_SEGMENTS_MAX  4
#define ADMIN_AUDIT_DEFAULT 50
#define ADMIN_AUDIT_MAX     1000
#define ADMIN_NAME_MAX      140 /* participants.name, schema/001 */
#define ADMIN_REASON_MAX    500 /* proposals.reason, schema/006 */
/* A cap beyond PKR 10 trillion is a typo; the bound also keeps headroom
 * arithmetic (posted + ndc) far from int64 overflow. */
#define ADMIN_NDC_MAX INT64_C(1000000000000000)
#define ADMIN_METHODS                                                                              \
    (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |     \
     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)

enum admin_route {
    ADMIN_ROUTE_PARTICIPANTS = 0,
    ADMIN_ROUTE_PARTICIPANT,
    ADMIN_ROUTE_SUSPEND,
    ADMIN_ROUTE_RESUME,
    ADMIN_ROUTE_NDC,
    ADMIN_ROUTE_POSITIONS,
    ADMIN_ROUTE_TRANSFER,
    ADMIN_ROUTE_TRANSFERS,
    ADMIN_ROUTE_WINDOWS,
    ADMIN_ROUTE_WINDOW_CLOSE,
    ADMIN_ROUTE_WINDOW_SETTLE,
    ADMIN_ROUTE_WINDOW_REPORT,
    ADMIN_ROUTE_RECONCILE,
    ADMIN_ROUTE_FEES,
    ADMIN_ROUTE_AUDIT,
    ADMIN_ROUTE_STATUS,
    ADMIN_ROUTE_HEALTH,
    ADMIN_ROUTE_ME,
    ADMIN_ROUTE_PROPOSALS,
    ADMIN_ROUTE_PROPOSAL,
    ADMIN_ROUTE_APPROVE,
    ADMIN_ROUTE_REJECT,
    ADMIN_ROUTE_WITHDRAW,
    ADMIN_ROUTE_STATS,
    ADMIN_ROUTE_METRICS,
    ADMIN_ROUTE_REQUESTS,
    ADMIN_ROUTE_ALIASES,
};

/* Shorthands for the least role of a method in admin_paths. */
#define VIEWER     OPS_ROLE_VIEWER
#define OPERATOR   OPS_ROLE_OPERATOR
#define SUPERVISOR OPS_ROLE_SUPERVISOR
#define NO_WRITES  OPS_ROLE_SUPERVISOR /* a route without POST or PUT */

/* The API: segments after /api/v1/, "{code}" a participant code, "{id}" a
 * positive integer id; the least role that may GET it, and that may POST
 * or PUT it. Approving and rejecting need more than `writes` when the
 * proposal's action does (ops checks that: ops_action_role). */
static const struct admin_path {
    const char *pattern;
    enum admin_route route;
    unsigned methods;  /* EVHTTP_REQ_* accepted */
    const char *allow; /* the Allow header of a 405 */
    enum ops_role reads, writes;
} admin_paths[] = {
    {"participants", ADMIN_ROUTE_PARTICIPANTS, EVHTTP_REQ_GET | EVHTTP_REQ_POST, "GET, POST",
     VIEWER, SUPERVISOR},
    {"participants/{code}", ADMIN_ROUTE_PARTICIPANT, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"participants/{code}/suspend", ADMIN_ROUTE_SUSPEND, EVHTTP_REQ_POST, "POST", VIEWER, OPERATOR},
    {"participants/{code}/resume", ADMIN_ROUTE_RESUME, EVHTTP_REQ_POST, "POST", VIEWER, OPERATOR},
    {"participants/{code}/ndc", ADMIN_ROUTE_NDC, EVHTTP_REQ_PUT, "PUT", VIEWER, SUPERVISOR},
    {"positions", ADMIN_ROUTE_POSITIONS, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"transfers/{id}", ADMIN_ROUTE_TRANSFER, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"transfers", ADMIN_ROUTE_TRANSFERS, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"windows", ADMIN_ROUTE_WINDOWS, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"windows/close", ADMIN_ROUTE_WINDOW_CLOSE, EVHTTP_REQ_POST, "POST", VIEWER, OPERATOR},
    {"windows/{id}/settle", ADMIN_ROUTE_WINDOW_SETTLE, EVHTTP_REQ_POST, "POST", VIEWER, SUPERVISOR},
    {"windows/{id}/report", ADMIN_ROUTE_WINDOW_REPORT, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"reconcile", ADMIN_ROUTE_RECONCILE, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"fees", ADMIN_ROUTE_FEES, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"audit", ADMIN_ROUTE_AUDIT, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"status", ADMIN_ROUTE_STATUS, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"health", ADMIN_ROUTE_HEALTH, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"me", ADMIN_ROUTE_ME, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"proposals", ADMIN_ROUTE_PROPOSALS, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"proposals/{id}", ADMIN_ROUTE_PROPOSAL, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"proposals/{id}/approve", ADMIN_ROUTE_APPROVE, EVHTTP_REQ_POST, "POST", VIEWER, OPERATOR},
    {"proposals/{id}/reject", ADMIN_ROUTE_REJECT, EVHTTP_REQ_POST, "POST", VIEWER, OPERATOR},
    {"proposals/{id}/withdraw", ADMIN_ROUTE_WITHDRAW, EVHTTP_REQ_POST, "POST", VIEWER, OPERATOR},
    {"stats", ADMIN_ROUTE_STATS, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"requests", ADMIN_ROUTE_REQUESTS, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
    {"aliases", ADMIN_ROUTE_ALIASES, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES},
};

/* What each role may do (GET /api/v1/me's "may"): the changes it may make or
 * propose, and deciding proposals (of those it may propose). */
static const struct {
    const char *name;
    enum ops_role role;
} admin_abilities[] = {
    {"suspend", OPERATOR}, {"resume", OPERATOR},   {"window_close", OPERATOR},
    {"ndc", SUPERVISOR},   {"settle", SUPERVISOR}, {"participant_add", SUPERVISOR},
    {"approve", OPERATOR}, {"reject", OPERATOR},   {"withdraw", OPERATOR},
};

/* Prometheus' conventional path, outside the API. */
static const struct admin_path admin_metrics_path = {
    "/metrics", ADMIN_ROUTE_METRICS, EVHTTP_REQ_GET, "GET", VIEWER, NO_WRITES};

/* One request between its arrival and its answer. Owned by this module and
 * listed in A.pending until answered; ops holds a pointer to it meanwhile
 * (as its `arg`), so it is freed only once ops has answered.
 *
 * `req` is libevent's: NULL once the connection went away with the request
 * attached (libevent freed it) or admin_free() ran. A request libevent has
 * detached from its failed connection stays valid and is still ours to
 * answer: evhttp_send_reply() frees it then. */
struct admin_req {
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    struct admin_req *prev, *next;
    const char *allow; /* for a 405 */
    bool csv;          /* answer a window report as CSV */
    bool quiet;        /* polled (metrics, stats): a success logs at debug */
    int64_t started_us;
    char operator_name[TLS_NAME_MAX];
    struct ops_actor who; /* the certificate's operator, once identified */
    char method[8];
    char path[ADMIN_PATH_MAX];
};

static struct {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    SSL_CTX *ctx;
    struct admin_req *pending;
    size_t npending;
    int port;
    char listen[128];
} A;

/* Copies text for an error message or a log line: printable ASCII only (the
 * rest becomes '?', so JSON strings stay valid UTF-8), truncated. */
static const char *admin_echo(const char *text, char *buf, size_t len)
{
    size_t i = 0;
    for (; text != NULL && text[i] != '\0' && i + 1 < len; i++)
        buf[i] = (text[i] >= ' ' && text[i] < 0x7f) ? text[i] : '?';
    buf[i] = '\0';
    if (text != NULL && text[i] != '\0' && len > 4)
        memcpy(buf + len - 4, "...", 4);
    return buf;
}

/* A value for a log line: as is when it is plain ([A-Za-z0-9._/:@-]), else
 * quoted by log_quote. */
static const char *admin_logval(const char *s, char *buf, size_t len)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/:@-");
    if (n > 0 && s[n] == '\0' && n < len) {
        memcpy(buf, s, n + 1);
        return buf;
    }
    return log_quote(s, buf, len);
}

static const char *admin_method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "OTHER";
    }
}

/* ---- the pending list ---- */

static void admin_link(struct admin_req *ar)
{
    ar->prev = NULL;
    ar->next = A.pending;
    if (A.pending != NULL)
        A.pending->prev = ar;
    A.pending = ar;
    A.npending++;
}

static void admin_unlink(struct admin_req *ar)
{
    if (ar->prev != NULL)
        ar->prev->next = ar->next;
    else
        A.pending = ar->next;
    if (ar->next != NULL)
        ar->next->prev = ar->prev;
    ar->prev = ar->next = NULL;
    A.npending--;
}

/* libevent is freeing a connection: the requests still attached to it go
 * with it, so their answers must go nowhere. */
static void admin_on_close(struct evhttp_connection *conn, void *arg)
{
    (void)arg;
    for (struct admin_req *ar = A.pending; ar != NULL; ar = ar->next) {
        if (ar->conn != conn)
            continue;
        if (ar->req != NULL && evhttp_request_get_connection(ar->req) == conn) {
            ar->req = NULL;
            log_debug("event=admin_client_gone operator=%s method=%s path=%s", ar->operator_name,
                      ar->method, ar->path);
        }
        ar->conn = NULL;
    }
}

/* ---- answering ---- */

/* The headers every answer carries (set when the request arrives, so that
 * every path to a reply has them). Returns 0, or -1 out of memory. */
static int admin_security_headers(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    return evhttp_add_header(h, "Content-Security-Policy", ADMIN_CSP) != 0 ||
                   evhttp_add_header(h, "X-Content-Type-Options", "nosniff") != 0 ||
                   evhttp_add_header(h, "Referrer-Policy", "no-referrer") != 0 ||
                   evhttp_add_header(h, "X-Frame-Options", "DENY") != 0 ||
                   evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin") != 0 ||
                   evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000") != 0
               ? -1
               : 0;
}

/* Logs the request's line and frees it. */
static void admin_done(struct admin_req *ar, int status, const char *why)
{
    int64_t us = mono_us() - ar->started_us;
    enum log_level level = status >= 500   ? LOG_LEVEL_ERROR
                           : status >= 400 ? LOG_LEVEL_WARN
                           : ar->quiet     ? LOG_LEVEL_DEBUG
                                           : LOG_LEVEL_INFO;
    char op[TLS_NAME_MAX + 8], path[ADMIN_PATH_MAX + 8], q[300];
    log_write(level,
              "event=admin_request operator=%s role=%s method=%s path=%s status=%d ms=%" PRId64
              ".%03d%s%s%s",
              admin_logval(ar->operator_name, op, sizeof(op)),
              ar->who.role != OPS_ROLE_NONE ? ops_role_name(ar->who.role) : "-", ar->method,
              admin_logval(ar->path, path, sizeof(path)), status, us / 1000, (int)(us % 1000),
              why != NULL && why[0] != '\0' ? " why=" : "",
              why != NULL && why[0] != '\0' ? log_quote(why, q, sizeof(q)) : "",
              ar->req == NULL ? " client=gone" : "");
    admin_unlink(ar);
    free(ar);
}

/* Sends status with buf's bytes (moved out of buf) when the client is still
 * there. Returns the status actually sent. */
static int admin_send(struct admin_req *ar, int status, const char *content_type,
                      struct evbuffer *buf)
{
    if (ar->req == NULL)
        return status;
    struct evkeyvalq *h = evhttp_request_get_output_headers(ar->req);
    if (evhttp_add_header(h, "Content-Type", content_type) != 0 ||
        evhttp_add_header(h, "Cache-Control", "no-store") != 0 ||
        (status == 405 && ar->allow != NULL && evhttp_add_header(h, "Allow", ar->allow) != 0)) {
        evhttp_send_error(ar->req, 500, NULL);
        return 500;
    }
    evhttp_send_reply(ar->req, status, NULL, buf);
    return status;
}

/* Answers with a JSON body (stolen; NULL answers 500) and frees ar. */
static void admin_finish(struct admin_req *ar, int status, json_t *body)
{
    char why[256] = "";
    if (status >= 400) {
        json_t *e = json_object_get(body, "error");
        admin_echo(json_is_string(e) ? json_string_value(e) : "no error text", why, sizeof(why));
    }
    /* reals (the stats' milliseconds) with 9 digits: 1.234, not 1.2339999999999999 */
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    struct evbuffer *buf = evbuffer_new();
    if (text == NULL || buf == NULL || evbuffer_add(buf, text, strlen(text)) != 0 ||
        evbuffer_add(buf, "\n", 1) != 0) {
        log_error("event=oom what=admin_answer");
        snprintf(why, sizeof(why), "cannot build the answer");
        status = 500;
        if (ar->req != NULL)
            evhttp_send_error(ar->req, 500, NULL);
    } else {
        status = admin_send(ar, status, "application/json; charset=utf-8", buf);
    }
    if (buf != NULL)
        evbuffer_free(buf);
    free(text);
    json_decref(body);
    admin_done(ar, status, why);
}

/* Answers {"error": "..."} and frees ar. */
static void admin_fail(struct admin_req *ar, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void admin_fail(struct admin_req *ar, int status, const char *fmt, ...)
{
    char msg[512], clean[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    admin_finish(ar, status, json_pack("{s:s}", "error", admin_echo(msg, clean, sizeof(clean))));
}

/* A CSV field: as is when plain, else quoted with quotes doubled. */
static int admin_csv_field(struct evbuffer *buf, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL)
        return evbuffer_add(buf, s, strlen(s));
    if (evbuffer_add(buf, "\"", 1) != 0)
        return -1;
    for (; *s != '\0'; s++)
        if ((*s == '"' && evbuffer_add(buf, "\"", 1) != 0) || evbuffer_add(buf, s, 1) != 0)
            return -1;
    return evbuffer_add(buf, "\"", 1);
}

/* The window report as CSV: participant,account_id,net,net_pkr,postings per
 * account (paisa, and rupees), then a total line whose postings column is
 * the window's posting count (each posting counted once). */
static int admin_report_csv(const json_t *report, struct evbuffer *buf, char *why, size_t whylen)
{
    json_t *positions = json_object_get(report, "positions");
    json_t *window = json_object_get(report, "window");
    if (!json_is_array(positions)) {
        snprintf(why, whylen, "the report has no positions");
        return -1;
    }
    if (evbuffer_add_printf(buf, "participant,account_id,net,net_pkr,postings\n") < 0)
        goto oom;
    int64_t total = 0;
    size_t i;
    json_t *p;
    char pkr[32];
    json_array_foreach(positions, i, p)
    {
        json_t *code = json_object_get(p, "participant");
        json_t *account = json_object_get(p, "account_id");
        json_t *net = json_object_get(p, "net");
        json_t *postings = json_object_get(p, "postings");
        if (!json_is_integer(account) || !json_is_integer(net) || !json_is_integer(postings) ||
            !(json_is_string(code) || json_is_null(code) || code == NULL)) {
            snprintf(why, whylen, "position %zu of the report is malformed", i);
            return -1;
        }
        int64_t n = json_integer_value(net);
        if (__builtin_add_overflow(total, n, &total)) {
            snprintf(why, whylen, "the report's total overflows");
            return -1;
        }
        if (admin_csv_field(buf, json_is_string(code) ? json_string_value(code) : "scheme_fee") !=
                0 ||
            evbuffer_add_printf(buf, ",%" PRId64 ",%" PRId64 ",%s,%" PRId64 "\n",
                                (int64_t)json_integer_value(account), n,
                                money_format(n, pkr, sizeof(pkr)),
                                (int64_t)json_integer_value(postings)) < 0)
            goto oom;
    }
    json_t *count = json_object_get(window, "postings");
    char postings[32] = "";
    if (json_is_integer(count))
        snprintf(postings, sizeof(postings), "%" PRId64, (int64_t)json_integer_value(count));
    if (evbuffer_add_printf(buf, "total,,%" PRId64 ",%s,%s\n", total,
                            money_format(total, pkr, sizeof(pkr)), postings) < 0)
        goto oom;
    return 0;
oom:
    snprintf(why, whylen, "out of memory");
    return -1;
}

/* Answers a window report as text/csv (report is stolen) and frees ar. */
static void admin_finish_csv(struct admin_req *ar, json_t *report)
{
    char why[256] = "";
    struct evbuffer *buf = evbuffer_new();
    if (buf == NULL || admin_report_csv(report, buf, why, sizeof(why)) != 0) {
        if (buf != NULL)
            evbuffer_free(buf);
        json_decref(report);
        admin_fail(ar, 500, "cannot write the report as CSV: %s",
                   why[0] != '\0' ? why : "out of memory");
        return;
    }
    int status = admin_send(ar, 200, "text/csv; charset=utf-8", buf);
    evbuffer_free(buf);
    json_decref(report);
    admin_done(ar, status, status == 200 ? "" : "cannot send the report");
}

/* Answers GET /metrics with the Prometheus text exposition and frees ar. */
static void admin_finish_metrics(struct admin_req *ar)
{
    struct evbuffer *buf = evbuffer_new();
    if (buf == NULL || metrics_write_prometheus(buf) != 0) {
        if (buf != NULL)
            evbuffer_free(buf);
        log_error("event=oom what=metrics_exposition");
        admin_fail(ar, 500, "cannot write the metrics: out of memory");
        return;
    }
    int status = admin_send(ar, 200, METRICS_CONTENT_TYPE, buf);
    evbuffer_free(buf);
    admin_done(ar, status, status == 200 ? "" : "cannot send the metrics");
}

/* ops_done: the answer to whatever ar asked. */
static void admin_on_ops(void *arg, int status, json_t *body)
{
    struct admin_req *ar = arg;
    if (status < 100 || status > 599) {
        log_error("event=admin_bad_status status=%d path=%s", status, ar->path);
        json_decref(body);
        admin_fail(ar, 500, "the switch answered with status %d", status);
        return;
    }
    if (body == NULL) {
        admin_fail(ar, status >= 400 ? status : 500, "the switch gave no answer body");
        return;
    }
    if (ar->csv && status == 200) {
        admin_finish_csv(ar, body);
        return;
    }
    admin_finish(ar, status, body);
}

/* ---- reading a request ---- */

/* Whether a Content-Type header is application/json (parameters such as
 * charset allowed). */
static bool admin_is_json_type(const char *type)
{
    static const char json[] = "application/json";
    if (type == NULL)
        return false;
    while (*type == ' ' || *type == '\t')
        type++;
    if (strncasecmp(type, json, sizeof(json) - 1) != 0)
        return false;
    char next = type[sizeof(json) - 1];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

int admin_check_origin(enum evhttp_cmd_type cmd, const char *host, const char *origin,
                       const char *fetch_site, char *why, size_t whylen)
{
    char e[80], e2[80];
    why[0] = '\0';
    if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
        return 0;
    if (origin != NULL) {
        char want[300];
        int n = snprintf(want, sizeof(want), "https://%s", host != NULL ? host : "");
        if (host == NULL || host[0] == '\0' || n < 0 || (size_t)n >= sizeof(want) ||
            strcmp(origin, want) != 0) {
            snprintf(why, whylen,
                     "cross-origin request refused: Origin \"%s\" is not this console "
                     "(https://%s)",
                     admin_echo(origin, e, sizeof(e)),
                     host != NULL ? admin_echo(host, e2, sizeof(e2)) : "?");
            return 403;
        }
    }
    if (fetch_site != NULL && strcmp(fetch_site, "same-origin") != 0 &&
        strcmp(fetch_site, "none") != 0) {
        snprintf(why, whylen, "cross-site request refused: Sec-Fetch-Site is \"%s\"",
                 admin_echo(fetch_site, e, sizeof(e)));
        return 403;
    }
    if (cmd == EVHTTP_REQ_OPTIONS) {
        snprintf(why, whylen,
                 "OPTIONS is not served: this console answers no cross-origin "
                 "(CORS) request");
        return 405;
    }
    return 0;
}

int admin_check_json(enum evhttp_cmd_type cmd, const char *content_type, char *why, size_t whylen)
{
    char e[80];
    why[0] = '\0';
    if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
        return 0;
    if (!admin_is_json_type(content_type)) {
        snprintf(why, whylen, "a %s must be sent as Content-Type: application/json%s%s%s",
                 admin_method_name(cmd), content_type != NULL ? ", not \"" : "",
                 content_type != NULL ? admin_echo(content_type, e, sizeof(e)) : "",
                 content_type != NULL ? "\"" : "");
        return 415;
    }
    return 0;
}

/* The verified peer must be an operator with a known role. Returns 0 with
 * its identity and who (name, role, certificate), or -1 with why. */
static int admin_identify(struct evhttp_request *req, struct tls_identity *id,
                          struct ops_actor *who, char *why, size_t whylen)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    if (ssl == NULL) {
        snprintf(why, whylen, "no TLS session");
        return -1;
    }
    if (tls_peer_identity(ssl, id) != 0) {
        snprintf(why, whylen, "no verified client certificate");
        return -1;
    }
    if (strcmp(id->role, "operator") != 0) {
        char role[TLS_NAME_MAX], name[TLS_NAME_MAX];
        snprintf(why, whylen, "an operator certificate is required; this one is for %s \"%s\"",
                 id->role[0] != '\0' ? admin_echo(id->role, role, sizeof(role)) : "no role",
                 admin_echo(id->name, name, sizeof(name)));
        return -1;
    }
    char name[TLS_NAME_MAX], title[TLS_NAME_MAX];
    if (id->title[0] == '\0') {
        snprintf(why, whylen,
                 "operator certificate \"%s\" carries no role: its subject's title must be "
                 "viewer, operator or supervisor",
                 admin_echo(id->name, name, sizeof(name)));
        return -1;
    }
    memset(who, 0, sizeof(*who));
    if (ops_role_parse(id->title, &who->role) != 0) {
        snprintf(why, whylen,
                 "operator certificate \"%s\" carries the unknown role \"%s\": its subject's "
                 "title must be viewer, operator or supervisor",
                 admin_echo(id->name, name, sizeof(name)),
                 admin_echo(id->title, title, sizeof(title)));
        return -1;
    }
    struct tls_cert_id cid;
    if (tls_peer_cert_id(ssl, &cid) != 0 || strlen(id->name) >= sizeof(who->name)) {
        snprintf(why, whylen, "cannot read the serial and fingerprint of certificate \"%s\"",
                 admin_echo(id->name, name, sizeof(name)));
        return -1;
    }
    snprintf(who->name, sizeof(who->name), "%s", id->name);
    snprintf(who->serial, sizeof(who->serial), "%s", cid.serial);
    snprintf(who->fingerprint, sizeof(who->fingerprint), "%s", cid.fingerprint);
    return 0;
}

/* Matches the path against admin_paths. Returns 0, or 404 / 400 with why. */
static int admin_match(const char *path, struct admin_call *call, char *why, size_t whylen)
{
    char copy[ADMIN_PATH_MAX], e[64];
    char *seg[ADMIN_SEGMENTS_MAX];
    size_t nseg = 0, plen = strlen(ADMIN_PREFIX);
    if (strcmp(path, admin_metrics_path.pattern) == 0) {
        call->path = &admin_metrics_path;
        return 0;
    }
    if (strncmp(path, ADMIN_PREFIX, plen) != 0 || strlen(path) >= sizeof(copy)) {
        snprintf(why, whylen, "no such path (the API is under %s)", ADMIN_PREFIX);
        return 404;
    }
    snprintf(copy, sizeof(copy), "%s", path + plen);
    for (char *s = copy;;) {
        char *slash = strchr(s, '/');
        if (slash != NULL)
            *slash = '\0';
        if (*s == '\0' || nseg == ADMIN_SEGMENTS_MAX) {
            snprintf(why, whylen, "no such path");
            return 404;
        }
        seg[nseg++] = s;
        if (slash == NULL)
            break;
        s = slash + 1;
    }
    for (size_t i = 0; i < sizeof(admin_paths) / sizeof(admin_paths[0]); i++) {
        char pattern[64], *save = NULL;
        char *pseg[ADMIN_SEGMENTS_MAX];
        size_t np = 0;
        snprintf(pattern, sizeof(pattern), "%s", admin_paths[i].pattern);
        for (char *s = strtok_r(pattern, "/", &save); s != NULL && np < ADMIN_SEGMENTS_MAX;
             s = strtok_r(NULL, "/", &save))
            pseg[np++] = s;
        if (np != nseg)
            continue;
        bool match = true;
        for (size_t k = 0; k < np && match; k++)
            match = pseg[k][0] == '{' || strcmp(pseg[k], seg[k]) == 0;
        if (!match)
            continue;
        call->path = &admin_paths[i];
        for (size_t k = 0; k < np; k++) {
            if (strcmp(pseg[k], "{code}") == 0) {
                if (!participant_code_valid(seg[k])) {
                    snprintf(why, whylen,
                             "participant code \"%s\" must be 4 uppercase letters (A-Z)",
                             admin_echo(seg[k], e, sizeof(e)));
                    return 400;
                }
                snprintf(call->code, sizeof(call->code), "%s", seg[k]);
            } else if (strcmp(pseg[k], "{id}") == 0 && money_parse_id(seg[k], &call->id) != 0) {
                snprintf(why, whylen, "id \"%s\" must be a positive integer",
                         admin_echo(seg[k], e, sizeof(e)));
                return 400;
            }
        }
        return 0;
    }
    snprintf(why, whylen, "no such path");
    return 404;
}

/* Two digits at s as a number, or -1. */
static int admin_2digits(const char *s)
{
    return s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' ? (s[0] - '0') * 10 + s[1] - '0'
                                                                    : -1;
}

/* An ISO 8601 time: YYYY-MM-DD, optionally followed by T (or a space) and
 * HH:MM[:SS[.fraction]], optionally followed by Z or +HH[:MM] / -HH[:MM]
 * (none: UTC). Writes it canonical, in UTC, to out ("2026-12-02T09:30:00.000000Z").
 * Returns 0, or -1 when it is no such time. */
static int admin_parse_time(const char *text, char *out, size_t outlen)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = text;
    int y = 0;
    for (int i = 0; i < 4; i++, p++) {
        if (*p < '0' || *p > '9')
            return -1;
        y = y * 10 + (*p - '0');
    }
    if (*p++ != '-')
        return -1;
    int mon = admin_2digits(p), day;
    p += 2;
    if (mon < 1 || mon > 12 || *p++ != '-' || (day = admin_2digits(p)) < 1)
        return -1;
    p += 2;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || day > mdays[mon - 1] || (mon == 2 && day == 29 && !leap))
        return -1;
    int hh = 0, mm = 0, ss = 0;
    long usec = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if ((hh = admin_2digits(p)) < 0 || hh > 23 || p[2] != ':' ||
            (mm = admin_2digits(p + 3)) < 0 || mm > 59)
            return -1;
        p += 5;
        if (*p == ':') {
            if ((ss = admin_2digits(p + 1)) < 0 || ss > 59)
                return -1;
            p += 3;
            if (*p == '.' || *p == ',') {
                p++;
                int digits = 0;
                for (; *p >= '0' && *p <= '9'; p++, digits++)
                    if (digits < 6)
                        usec = usec * 10 + (*p - '0');
                if (digits == 0 || digits > 9)
                    return -1;
                for (; digits < 6; digits++)
                    usec *= 10;
            }
        }
    }
    long offset = 0; /* seconds east of UTC */
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh = admin_2digits(p + 1), om = 0;
        if (oh < 0 || oh > 14)
            return -1;
        p += 3;
        if (*p == ':')
            p++;
        if (*p >= '0' && *p <= '9') {
            if ((om = admin_2digits(p)) < 0 || om > 59)
                return -1;
            p += 2;
        }
        offset = sign * (oh * 3600L + om * 60L);
    }
    if (*p != '\0')
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    time_t t = timegm(&tm) - offset;
    struct tm utc;
    if (gmtime_r(&t, &utc) == NULL)
        return -1;
    char base[32];
    if (strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &utc) == 0)
        return -1;
    int n = snprintf(out, outlen, "%s.%06ldZ", base, usec);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* One parameter of a transfer search. Returns 0, or 400 with why. */
static int admin_search_param(struct ops_transfer_query *q, const char *key, const char *value,
                              char *why, size_t whylen)
{
    char e[64];
    struct {
        const char *key;
        char *dst;
        size_t size;
    } texts[] = {{"msg_id", q->msg_id, sizeof(q->msg_id)},
                 {"end_to_end_id", q->end_to_end_id, sizeof(q->end_to_end_id)},
                 {"ref", q->ref, sizeof(q->ref)}};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (strcmp(key, texts[i].key) != 0)
            continue;
        if (text_check(key, value, 1, TRANSFER_ID_MAX, TEXT_BYTES, why, whylen) != 0)
            return 400;
        snprintf(texts[i].dst, texts[i].size, "%s", value);
        return 0;
    }
    if (strcmp(key, "participant") == 0) {
        if (!participant_code_valid(value)) {
            snprintf(why, whylen, "participant must be a code of 4 uppercase letters, not \"%s\"",
                     admin_echo(value, e, sizeof(e)));
            return 400;
        }
        snprintf(q->participant, sizeof(q->participant), "%s", value);
    } else if (strcmp(key, "status") == 0) {
        if (strcmp(value, "ACSC") != 0 && strcmp(value, "RJCT") != 0) {
            snprintf(why, whylen, "status must be ACSC or RJCT, not \"%s\"",
                     admin_echo(value, e, sizeof(e)));
            return 400;
        }
        snprintf(q->status, sizeof(q->status), "%s", value);
    } else if (strcmp(key, "purpose") == 0) {
        Sikka__V1__Purpose purpose;
        if (transfer_parse_purpose(value, &purpose) != 0) {
            snprintf(why, whylen,
                     "purpose must be BNPL_REPAYMENT, SUPPLIER_PAYMENT or P2P, not \"%s\"",
                     admin_echo(value, e, sizeof(e)));
            return 400;
        }
        snprintf(q->purpose, sizeof(q->purpose), "%s", value);
    } else if (strcmp(key, "from") == 0 || strcmp(key, "to") == 0) {
        char *dst = key[0] == 'f' ? q->from : q->to;
        if (admin_parse_time(value, dst, sizeof(q->from)) != 0) {
            snprintf(why, whylen,
                     "%s must be an ISO 8601 time such as 2026-12-02T09:30:00Z, not \"%s\"", key,
                     admin_echo(value, e, sizeof(e)));
            return 400;
        }
    } else if (strcmp(key, "limit") == 0) {
        int64_t v;
        if (money_parse_id(value, &v) != 0 || v > OPS_SEARCH_LIMIT_MAX) {
            snprintf(why, whylen, "limit must be an integer from 1 to %d, not \"%s\"",
                     OPS_SEARCH_LIMIT_MAX, admin_echo(value, e, sizeof(e)));
            return 400;
        }
        q->limit = (int)v;
    } else if (strcmp(key, "before") == 0) {
        if (money_parse_id(value, &q->before) != 0) {
            snprintf(why, whylen, "before must be a transfer id (a positive integer), not \"%s\"",
                     admin_echo(value, e, sizeof(e)));
            return 400;
        }
    } else {
        snprintf(why, whylen,
                 "unexpected query parameter \"%s\" (the search takes msg_id, end_to_end_id, "
                 "participant, status, purpose, ref, from, to, limit, before)",
                 admin_echo(key, e, sizeof(e)));
        return 400;
    }
    return 0;
}

/* GET aliases: ?participant=CODE, ?after=ALIAS (the "next" of the page
 * before), ?limit=1..1000. */
static int admin_alias_param(struct admin_call *call, const char *key, const char *value, char *why,
                             size_t whylen)
{
    char e[64];
    if (strcmp(key, "participant") == 0 && participant_code_valid(value)) {
        snprintf(call->code, sizeof(call->code), "%s", value);
    } else if (strcmp(key, "after") == 0 && strlen(value) <= ALIAS_MAX &&
               strspn(value, "0123456789") == strlen(value)) {
        snprintf(call->alias_after, sizeof(call->alias_after), "%s", value);
    } else if (strcmp(key, "limit") == 0) {
        int64_t v;
        if (money_parse_id(value, &v) != 0 || v > ADMIN_AUDIT_MAX) {
            snprintf(why, whylen, "limit must be an integer from 1 to %d, not \"%s\"",
                     ADMIN_AUDIT_MAX, admin_echo(value, e, sizeof(e)));
            return 400;
        }
        call->limit = (int)v;
    } else if (strcmp(key, "participant") == 0 || strcmp(key, "after") == 0) {
        snprintf(why, whylen, "%s \"%s\" is not a %s", key, admin_echo(value, e, sizeof(e)),
                 key[0] == 'p' ? "participant code (4 letters)" : "canonical alias (digits)");
        return 400;
    } else {
        snprintf(why, whylen,
                 "unexpected query parameter \"%s\" (aliases takes participant, "
                 "after, limit)",
                 admin_echo(key, e, sizeof(e)));
        return 400;
    }
    return 0;
}

/* One parameter of GET requests (requests to pay). Returns 0, or 400. */
static int admin_request_param(struct ops_request_query *q, const char *key, const char *value,
                               char *why, size_t whylen)
{
    static const char *const states[] = {"pending", "delivered", "accepted", "declined",
                                         "expired", "cancelled", "paid",     "rejected"};
    char e[64];
    if (strcmp(key, "participant") == 0) {
        if (!participant_code_valid(value)) {
            snprintf(why, whylen, "participant must be a code of 4 uppercase letters, not \"%s\"",
                     admin_echo(value, e, sizeof(e)));
            return 400;
        }
        snprintf(q->participant, sizeof(q->participant), "%s", value);
    } else if (strcmp(key, "loan_id") == 0) {
        if (text_check(key, value, 1, TRANSFER_ID_MAX, TEXT_BYTES, why, whylen) != 0)
            return 400;
        snprintf(q->loan_id, sizeof(q->loan_id), "%s", value);
    } else if (strcmp(key, "state") == 0) {
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
            if (strcmp(value, states[i]) == 0)
                snprintf(q->state, sizeof(q->state), "%s", value);
        if (q->state[0] == '\0') {
            snprintf(why, whylen,
                     "state must be pending, delivered, accepted, declined, expired, cancelled, "
                     "paid or rejected, not \"%s\"",
                     admin_echo(value, e, sizeof(e)));
            return 400;
        }
    } else if (strcmp(key, "limit") == 0 || strcmp(key, "before") == 0) {
        int64_t v;
        if (money_parse_id(value, &v) != 0 || (key[0] == 'l' && v > OPS_SEARCH_LIMIT_MAX)) {
            if (key[0] == 'l')
                snprintf(why, whylen, "limit must be an integer from 1 to %d, not \"%s\"",
                         OPS_SEARCH_LIMIT_MAX, admin_echo(value, e, sizeof(e)));
            else
                snprintf(why, whylen,
                         "before must be a request id (a positive integer), not \"%s\"",
                         admin_echo(value, e, sizeof(e)));
            return 400;
        }
        if (key[0] == 'l')
            q->limit = (int)v;
        else
            q->before = v;
    } else {
        snprintf(why, whylen,
                 "unexpected query parameter \"%s\" (requests take participant, loan_id, state, "
                 "limit, before)",
                 admin_echo(key, e, sizeof(e)));
        return 400;
    }
    return 0;
}

/* ?format= on a report, ?limit= on the audit trail, the search's
 * parameters; nothing else. */
static int admin_read_query(const char *query, struct admin_call *call, char *why, size_t whylen)
{
    char e[64];
    call->limit = ADMIN_AUDIT_DEFAULT;
    call->search.limit = OPS_SEARCH_LIMIT_DEFAULT;
    call->requests.limit = OPS_SEARCH_LIMIT_DEFAULT;
    if (query == NULL || query[0] == '\0')
        return 0;
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    if (evhttp_parse_query_str(query, &kv) != 0) {
        evhttp_clear_headers(&kv);
        snprintf(why, whylen, "malformed query string");
        return 400;
    }
    int status = 0;
    enum admin_route route = call->path->route;
    for (struct evkeyval *p = TAILQ_FIRST(&kv); p != NULL && status == 0; p = TAILQ_NEXT(p, next)) {
        if (route == ADMIN_ROUTE_TRANSFERS) {
            /* an empty field of a form is no filter; a repeated one is a mistake */
            for (struct evkeyval *o = TAILQ_FIRST(&kv); o != p && status == 0;
                 o = TAILQ_NEXT(o, next)) {
                if (strcmp(o->key, p->key) == 0) {
                    snprintf(why, whylen, "query parameter \"%s\" is given twice",
                             admin_echo(p->key, e, sizeof(e)));
                    status = 400;
                }
            }
            if (status == 0 && p->value[0] != '\0')
                status = admin_search_param(&call->search, p->key, p->value, why, whylen);
        } else if (route == ADMIN_ROUTE_REQUESTS) {
            if (p->value[0] != '\0')
                status = admin_request_param(&call->requests, p->key, p->value, why, whylen);
        } else if (route == ADMIN_ROUTE_WINDOW_REPORT && strcmp(p->key, "format") == 0) {
            if (strcmp(p->value, "csv") == 0 || strcmp(p->value, "json") == 0) {
                call->csv = p->value[0] == 'c';
            } else {
                snprintf(why, whylen, "format must be json or csv, not \"%s\"",
                         admin_echo(p->value, e, sizeof(e)));
                status = 400;
            }
        } else if (route == ADMIN_ROUTE_STATS && strcmp(p->key, "since") == 0) {
            if (metrics_parse_since(p->value, &call->since) != 0) {
                snprintf(why, whylen, "since must be a Unix time in seconds, not \"%s\"",
                         admin_echo(p->value, e, sizeof(e)));
                status = 400;
            }
        } else if (route == ADMIN_ROUTE_PROPOSALS && strcmp(p->key, "state") == 0) {
            if (strcmp(p->value, "pending") == 0 || strcmp(p->value, "approved") == 0 ||
                strcmp(p->value, "rejected") == 0 || strcmp(p->value, "expired") == 0 ||
                strcmp(p->value, "withdrawn") == 0) {
                snprintf(call->state, sizeof(call->state), "%s", p->value);
            } else {
                snprintf(why, whylen,
                         "state must be pending, approved, rejected, expired or withdrawn, "
                         "not \"%s\"",
                         admin_echo(p->value, e, sizeof(e)));
                status = 400;
            }
        } else if (route == ADMIN_ROUTE_ALIASES) {
            status = admin_alias_param(call, p->key, p->value, why, whylen);
        } else if (route == ADMIN_ROUTE_AUDIT && strcmp(p->key, "limit") == 0) {
            int64_t v;
            if (money_parse_id(p->value, &v) != 0 || v > ADMIN_AUDIT_MAX) {
                snprintf(why, whylen, "limit must be an integer from 1 to %d, not \"%s\"",
                         ADMIN_AUDIT_MAX, admin_echo(p->value, e, sizeof(e)));
                status = 400;
            } else {
                call->limit = (int)v;
            }
        } else {
            snprintf(why, whylen, "unexpected query parameter \"%s\"",
                     admin_echo(p->key, e, sizeof(e)));
            status = 400;
        }
    }
    evhttp_clear_headers(&kv);
    if (status == 0 && route == ADMIN_ROUTE_TRANSFERS && call->search.from[0] != '\0' &&
        call->search.to[0] != '\0' && strcmp(call->search.from, call->search.to) >= 0) {
        snprintf(why, whylen, "from must be earlier than to");
        status = 400;
    }
    return status;
}

/* The body as a JSON object into call->body (NULL when empty). Returns 0,
 * or 400 / 413 with why. */
static int admin_read_body(const char *data, size_t len, struct admin_call *call, char *why,
                           size_t whylen)
{
    call->body = NULL;
    if (len == 0)
        return 0;
    if (len > ADMIN_BODY_MAX) {
        snprintf(why, whylen, "the body is %zu bytes; at most %d are accepted", len,
                 ADMIN_BODY_MAX);
        return 413;
    }
    if (data == NULL) {
        snprintf(why, whylen, "cannot read the body");
        return 400;
    }
    json_error_t jerr;
    json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        snprintf(why, whylen, "the body is not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        return 400;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        snprintf(why, whylen, "the body must be a JSON object");
        return 400;
    }
    call->body = v;
    return 0;
}

/* Every field of the body must be one of `allowed` (NULL-terminated). */
static int admin_only_fields(const json_t *body, const char *const *allowed, char *why,
                             size_t whylen)
{
    const char *key;
    json_t *v;
    char e[64];
    json_object_foreach((json_t *)body, key, v)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known) {
            snprintf(why, whylen, "unknown field \"%s\"", admin_echo(key, e, sizeof(e)));
            return -1;
        }
    }
    return 0;
}

/* A net debit cap in paisa from field `ndc`: an integer 0..ADMIN_NDC_MAX. */
static int admin_ndc_field(const json_t *body, bool required, int64_t *ndc, char *why,
                           size_t whylen)
{
    json_t *v = json_object_get(body, "ndc");
    *ndc = 0;
    if (v == NULL && !required)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > ADMIN_NDC_MAX) {
        snprintf(why, whylen,
                 "ndc must be an integer number of paisa from 0 to %" PRId64
                 " (e.g. 150000 for PKR 1500.00)",
                 ADMIN_NDC_MAX);
        return -1;
    }
    *ndc = json_integer_value(v);
    return 0;
}

static int admin_participant_fields(const json_t *body, struct admin_new_participant *p, char *why,
                                    size_t whylen)
{
    static const char *const fields[] = {"code", "name", "kind", "ndc", NULL};
    char e[64];
    if (body == NULL) {
        snprintf(why, whylen, "a JSON body {\"code\", \"name\", \"kind\", \"ndc\"} is required");
        return -1;
    }
    if (admin_only_fields(body, fields, why, whylen) != 0)
        return -1;
    json_t *code = json_object_get(body, "code");
    json_t *name = json_object_get(body, "name");
    json_t *kind = json_object_get(body, "kind");
    if (!json_is_string(code) || !participant_code_valid(json_string_value(code))) {
        snprintf(why, whylen, "code must be 4 uppercase letters (A-Z)");
        return -1;
    }
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) > ADMIN_NAME_MAX ||
        strlen(json_string_value(name)) != json_string_length(name)) {
        snprintf(why, whylen, "name must be a string of 1 to %d bytes", ADMIN_NAME_MAX);
        return -1;
    }
    for (const char *s = json_string_value(name); *s != '\0'; s++) {
        if ((unsigned char)*s < ' ' || *s == 0x7f) {
            snprintf(why, whylen, "name must not contain control characters");
            return -1;
        }
    }
    const char *k = json_is_string(kind) ? json_string_value(kind) : NULL;
    if (k == NULL ||
        (strcmp(k, "wallet") != 0 && strcmp(k, "bank") != 0 && strcmp(k, "bnpl") != 0)) {
        snprintf(why, whylen, "kind must be wallet, bank or bnpl%s%s%s",
                 k != NULL ? ", not \"" : "", k != NULL ? admin_echo(k, e, sizeof(e)) : "",
                 k != NULL ? "\"" : "");
        return -1;
    }
    p->code = json_string_value(code);
    p->name = json_string_value(name);
    p->kind = k;
    return admin_ndc_field(body, false, &p->ndc, why, whylen);
}

/* A rejection's reason: absent, or text of 1 to ADMIN_REASON_MAX bytes
 * without control characters. */
static int admin_reason_field(const json_t *body, const char **reason, char *why, size_t whylen)
{
    json_t *v = json_object_get(body, "reason");
    *reason = NULL;
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > ADMIN_REASON_MAX ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(why, whylen, "reason must be a string of 1 to %d bytes", ADMIN_REASON_MAX);
        return -1;
    }
    for (const char *s = json_string_value(v); *s != '\0'; s++) {
        if ((unsigned char)*s < ' ' || *s == 0x7f) {
            snprintf(why, whylen, "reason must not contain control characters");
            return -1;
        }
    }
    *reason = json_string_value(v);
    return 0;
}

/* The body's fields as the route wants them. Returns 0, or 400 with why. */
static int admin_read_fields(struct admin_call *call, enum evhttp_cmd_type cmd, char *why,
                             size_t whylen)
{
    static const char *const no_fields[] = {NULL};
    static const char *const ndc_fields[] = {"ndc", NULL};
    static const char *const reject_fields[] = {"reason", NULL};
    switch (call->path->route) {
    case ADMIN_ROUTE_REJECT:
    case ADMIN_ROUTE_WITHDRAW:
        if (call->body != NULL && (admin_only_fields(call->body, reject_fields, why, whylen) != 0 ||
                                   admin_reason_field(call->body, &call->reason, why, whylen) != 0))
            return 400;
        return 0;
    case ADMIN_ROUTE_PARTICIPANTS:
        if (cmd == EVHTTP_REQ_POST &&
            admin_participant_fields(call->body, &call->participant, why, whylen) != 0)
            return 400;
        return 0;
    case ADMIN_ROUTE_PARTICIPANT:
        return 0;
    case ADMIN_ROUTE_NDC:
        if (call->body == NULL) {
            snprintf(why, whylen, "a JSON body {\"ndc\": paisa} is required");
            return 400;
        }
        if (admin_only_fields(call->body, ndc_fields, why, whylen) != 0 ||
            admin_ndc_field(call->body, true, &call->ndc, why, whylen) != 0)
            return 400;
        return 0;
    default:
        /* the rest take no body fields */
        if (call->body != NULL && admin_only_fields(call->body, no_fields, why, whylen) != 0)
            return 400;
        return 0;
    }
}

/* The first half of admin_parse_request: the route and the method, and
 * so the least role (call->need). Returns 0, or 404 / 400 / 405 with why. */
static int admin_parse_route(enum evhttp_cmd_type cmd, const char *path, struct admin_call *call,
                             char *why, size_t whylen)
{
    memset(call, 0, sizeof(*call));
    why[0] = '\0';
    int status = admin_match(path, call, why, whylen);
    if (status != 0)
        return status;
    if ((call->path->methods & (unsigned)cmd) == 0) {
        call->allow = call->path->allow;
        snprintf(why, whylen, "%s is not allowed here; use %s", admin_method_name(cmd),
                 call->path->allow);
        return 405;
    }
    call->need = cmd == EVHTTP_REQ_GET ? call->path->reads : call->path->writes;
    return 0;
}

/* The second half: query, body and fields. */
static int admin_parse_rest(enum evhttp_cmd_type cmd, const char *query, const char *body,
                            size_t len, struct admin_call *call, char *why, size_t whylen)
{
    int status = admin_read_query(query, call, why, whylen);
    if (status == 0)
        status = admin_read_body(body, len, call, why, whylen);
    if (status == 0 && cmd == EVHTTP_REQ_GET && call->body != NULL) {
        snprintf(why, whylen, "a GET request carries no body");
        status = 400;
    }
    if (status == 0)
        status = admin_read_fields(call, cmd, why, whylen);
    if (status != 0)
        admin_call_clear(call);
    return status;
}

int admin_parse_request(enum evhttp_cmd_type cmd, const char *path, const char *query,
                        const char *body, size_t len, struct admin_call *call, char *why,
                        size_t whylen)
{
    int status = admin_parse_route(cmd, path, call, why, whylen);
    if (status == 0)
        status = admin_parse_rest(cmd, query, body, len, call, why, whylen);
    return status;
}

void admin_call_clear(struct admin_call *call)
{
    json_decref(call->body);
    call->body = NULL;
}

/* GET /api/v1/me: who the certificate says the caller is. */
static json_t *admin_me(const struct ops_actor *who)
{
    json_t *may = json_array();
    for (size_t i = 0; i < sizeof(admin_abilities) / sizeof(admin_abilities[0]); i++)
        if (who->role >= admin_abilities[i].role)
            json_array_append_new(may, json_string(admin_abilities[i].name));
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "name", who->name, "role",
                     ops_role_name(who->role), "certificate", "serial", who->serial, "fingerprint",
                     who->fingerprint, "may", may);
}

/* Hands a validated call to ops. ar belongs to ops (then to admin_on_ops)
 * from here on and may be freed before this returns. */
static void admin_dispatch(struct admin_req *ar, struct admin_call *call, enum evhttp_cmd_type cmd)
{
    const struct ops_actor *who = &ar->who;
    char id[24];
    json_t *params;
    switch (call->path->route) {
    case ADMIN_ROUTE_PARTICIPANTS:
        if (cmd == EVHTTP_REQ_GET) {
            ops_participants(admin_on_ops, ar);
        } else {
            const struct admin_new_participant *p = &call->participant;
            params = json_pack("{s:s, s:s, s:I}", "name", p->name, "kind", p->kind, "ndc",
                               (json_int_t)p->ndc);
            if (params == NULL) {
                admin_fail(ar, 503, "switch out of memory");
                return;
            }
            ops_propose(who, OPS_ACTION_PARTICIPANT_ADD, p->code, params, admin_on_ops, ar);
            json_decref(params);
        }
        return;
    case ADMIN_ROUTE_PARTICIPANT:
        ops_participant(call->code, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_NDC:
        params = json_pack("{s:I}", "ndc", (json_int_t)call->ndc);
        if (params == NULL) {
            admin_fail(ar, 503, "switch out of memory");
            return;
        }
        ops_propose(who, OPS_ACTION_NDC, call->code, params, admin_on_ops, ar);
        json_decref(params);
        return;
    case ADMIN_ROUTE_SUSPEND:
        ops_participant_suspend(who, call->code, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_RESUME:
        ops_propose(who, OPS_ACTION_RESUME, call->code, NULL, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_POSITIONS:
        ops_positions(admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_TRANSFER:
        ops_transfer_show((uint64_t)call->id, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_TRANSFERS:
        ops_transfer_search(&call->search, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_REQUESTS:
        ops_requests(&call->requests, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_WINDOWS:
        ops_windows(admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_WINDOW_CLOSE:
        ops_window_close(who, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_WINDOW_SETTLE:
        snprintf(id, sizeof(id), "%" PRId64, call->id);
        ops_propose(who, OPS_ACTION_SETTLE, id, NULL, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_WINDOW_REPORT:
        ops_window_report(call->id, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_RECONCILE:
        ops_reconcile(admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_FEES:
        ops_fees(admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_AUDIT:
        ops_audit(call->limit, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_STATUS:
        ops_status(admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_HEALTH:
        ops_health(admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_ME:
        admin_on_ops(ar, 200, admin_me(who));
        return;
    case ADMIN_ROUTE_PROPOSALS:
        ops_proposals(call->state[0] != '\0' ? call->state : NULL, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_PROPOSAL:
        ops_proposal(call->id, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_APPROVE:
        ops_proposal_approve(who, call->id, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_REJECT:
        ops_proposal_reject(who, call->id, call->reason, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_WITHDRAW:
        ops_proposal_withdraw(who, call->id, call->reason, admin_on_ops, ar);
        return;
    case ADMIN_ROUTE_STATS:
        ar->quiet = true;
        admin_on_ops(ar, 200, metrics_stats_json(call->since));
        return;
    case ADMIN_ROUTE_METRICS:
        ar->quiet = true;
        admin_finish_metrics(ar);
        return;
    case ADMIN_ROUTE_ALIASES:
        alias_admin_list(call->code, call->alias_after, call->limit, admin_on_ops, ar);
        return;
    default:
        admin_fail(ar, 500, "route %d has no handler", (int)call->path->route);
        return;
    }
}

/* Whether a path belongs to the API (answered as JSON, 404 included) rather
 * than to the console's files. */
static bool admin_is_api_path(const char *path)
{
    return strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0 ||
           strcmp(path, "/metrics") == 0;
}

/* Serves one of the console's embedded files (GET, HEAD) and frees ar. */
static void admin_serve_asset(struct admin_req *ar, const char *path, enum evhttp_cmd_type cmd)
{
    const struct console_asset *a = console_find(path);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        ar->allow = "GET, HEAD";
        admin_fail(ar, 405, "%s is not allowed here; use GET, HEAD", admin_method_name(cmd));
        return;
    }
    if (a == NULL) {
        admin_fail(ar, 404, "no such page or file");
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(ar->req);
    const char *inm =
        evhttp_find_header(evhttp_request_get_input_headers(ar->req), "If-None-Match");
    bool fresh = console_etag_matches(inm, a->etag);
    if (evhttp_add_header(h, "ETag", a->etag) != 0 ||
        evhttp_add_header(h, "Cache-Control", "no-cache") != 0 ||
        (!fresh && evhttp_add_header(h, "Content-Type", a->content_type) != 0)) {
        log_error("event=oom what=admin_asset_headers");
        evhttp_send_error(ar->req, 500, NULL);
        admin_done(ar, 500, "cannot build the answer");
        return;
    }
    if (fresh) {
        evhttp_send_reply(ar->req, 304, "Not Modified", NULL);
        admin_done(ar, 304, "");
        return;
    }
    if (cmd == EVHTTP_REQ_HEAD) {
        /* libevent 2.1 would send the body of a HEAD answer: the length only */
        char len[24];
        snprintf(len, sizeof(len), "%zu", a->len);
        if (evhttp_add_header(h, "Content-Length", len) != 0) {
            evhttp_send_error(ar->req, 500, NULL);
            admin_done(ar, 500, "cannot build the answer");
            return;
        }
        evhttp_send_reply(ar->req, 200, "OK", NULL);
        admin_done(ar, 200, "");
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    if (buf == NULL || evbuffer_add_reference(buf, a->data, a->len, NULL, NULL) != 0) {
        if (buf != NULL)
            evbuffer_free(buf);
        log_error("event=oom what=admin_asset");
        evhttp_send_error(ar->req, 500, NULL);
        admin_done(ar, 500, "cannot build the answer");
        return;
    }
    evhttp_send_reply(ar->req, 200, "OK", buf);
    evbuffer_free(buf);
    admin_done(ar, 200, "");
}

static void admin_on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    char why[512] = "";
    struct admin_call call;
    struct admin_req *ar = calloc(1, sizeof(*ar));
    if (ar == NULL) {
        log_error("event=oom what=admin_request");
        evhttp_send_error(req, 503, NULL);
        return;
    }
    ar->req = req;
    ar->conn = evhttp_request_get_connection(req);
    ar->started_us = mono_us();
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    snprintf(ar->method, sizeof(ar->method), "%s", admin_method_name(cmd));
    snprintf(ar->operator_name, sizeof(ar->operator_name), "-");
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    admin_echo(path != NULL ? path : "", ar->path, sizeof(ar->path));
    admin_link(ar);
    if (ar->conn != NULL)
        evhttp_connection_set_closecb(ar->conn, admin_on_close, NULL);
    if (admin_security_headers(req) != 0) {
        log_error("event=oom what=admin_headers");
        evhttp_send_error(req, 503, NULL);
        admin_done(ar, 503, "out of memory");
        return;
    }

    struct tls_identity id;
    memset(&id, 0, sizeof(id));
    if (admin_identify(req, &id, &ar->who, why, sizeof(why)) != 0) {
        char peer[80] = "-";
        char *addr = NULL;
        ev_uint16_t port = 0;
        if (ar->conn != NULL) {
            evhttp_connection_get_peer(ar->conn, &addr, &port);
            if (addr != NULL)
                snprintf(peer, sizeof(peer), "%s:%u", addr, (unsigned)port);
        }
        char role[TLS_NAME_MAX + 8], name[TLS_NAME_MAX + 8], title[TLS_NAME_MAX + 8], q[600];
        log_warn("event=admin_refused peer=%s kind=%s name=%s title=%s why=%s", peer,
                 id.role[0] != '\0' ? admin_logval(id.role, role, sizeof(role)) : "-",
                 id.name[0] != '\0' ? admin_logval(id.name, name, sizeof(name)) : "-",
                 id.title[0] != '\0' ? admin_logval(id.title, title, sizeof(title)) : "-",
                 log_quote(why, q, sizeof(q)));
        memset(&ar->who, 0, sizeof(ar->who));
        admin_fail(ar, 403, "%s", why);
        return;
    }
    snprintf(ar->operator_name, sizeof(ar->operator_name), "%s", id.name);

    /* writes only from the console's own pages (or a client that is no
     * browser), and only as JSON: a cross-site form cannot send that
     * without a preflight, and preflights are refused */
    struct evkeyvalq *hin = evhttp_request_get_input_headers(req);
    int refused =
        admin_check_origin(cmd, evhttp_find_header(hin, "Host"), evhttp_find_header(hin, "Origin"),
                           evhttp_find_header(hin, "Sec-Fetch-Site"), why, sizeof(why));
    if (refused != 0) {
        if (refused == 405)
            ar->allow = "GET, HEAD, POST, PUT";
        admin_fail(ar, refused, "%s", why);
        return;
    }
    if (path == NULL || !admin_is_api_path(path)) {
        admin_serve_asset(ar, path != NULL ? path : "/", cmd);
        return;
    }

    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    /* a body over the limit is refused unread */
    const char *body = len > 0 && len <= ADMIN_BODY_MAX
                           ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len)
                           : NULL;
    int status = admin_parse_route(cmd, path != NULL ? path : "", &call, why, sizeof(why));
    if (status != 0) {
        ar->allow = call.allow;
        admin_fail(ar, status, "%s", why);
        return;
    }
    /* a write the API serves must be JSON (an unknown path or method got
     * its 404 or 405 above) */
    status = admin_check_json(cmd, evhttp_find_header(hin, "Content-Type"), why, sizeof(why));
    if (status != 0) {
        admin_fail(ar, status, "%s", why);
        return;
    }
    /* the role before the body: who may not ask learns nothing of the rest */
    if (ar->who.role < call.need) {
        admin_fail(ar, 403, "not permitted: %s %s needs the role %s; %s has the role %s",
                   ar->method, call.path->pattern, ops_role_name(call.need), ar->operator_name,
                   ops_role_name(ar->who.role));
        return;
    }
    status = admin_parse_rest(cmd, uri != NULL ? evhttp_uri_get_query(uri) : NULL, body, len, &call,
                              why, sizeof(why));
    if (status != 0) {
        ar->allow = call.allow;
        admin_fail(ar, status, "%s", why);
        return;
    }
    ar->csv = call.csv;
    /* ops copies what it keeps; the body may go once the call returned */
    admin_dispatch(ar, &call, cmd);
    admin_call_clear(&call);
}

/* ---- TLS ---- */

static void admin_peer_of(const SSL *ssl, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int fd = SSL_get_fd(ssl);
    snprintf(buf, len, "-");
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
    }
}

/* Logs fatal TLS alerts: a refused handshake (no certificate, wrong CA,
 * expired) never reaches a request handler. Alerts once the client's
 * certificate was verified come from a session that was accepted (a client
 * that vanished mid-exchange) and are only debug. (SSL_is_init_finished()
 * cannot tell: a fatal error resets the state machine first.) */
static void admin_tls_info(const SSL *ssl, int where, int ret)
{
    if ((where & SSL_CB_ALERT) == 0 || (ret >> 8) != SSL3_AL_FATAL)
        return;
    char peer[80], q[200];
    int code = ret & 0xff;
    /* OpenSSL 3.0 has no text for TLS 1.3's certificate_required */
    const char *desc = code == 116 ? "certificate required" : SSL_alert_desc_string_long(ret);
    const char *by = (where & SSL_CB_WRITE) ? "switch" : "client";
    long verify = SSL_get_verify_result(ssl);
    admin_peer_of(ssl, peer, sizeof(peer));
    if (verify == X509_V_OK && SSL_get0_peer_certificate(ssl) != NULL) {
        log_debug("event=admin_tls_alert peer=%s alert=%d desc=\"%s\" sent_by=%s", peer, code, desc,
                  by);
        return;
    }
    log_warn("event=admin_tls_refused peer=%s alert=%d desc=\"%s\" sent_by=%s verify=%s", peer,
             code, desc, by,
             verify == X509_V_OK ? "ok"
                                 : log_quote(X509_verify_cert_error_string(verify), q, sizeof(q)));
}

/* evhttp's factory for each accepted connection: a TLS server bufferevent.
 * Should this fail, evhttp falls back to a plain socket bufferevent, which
 * admin_identify() refuses (no TLS session). */
static struct bufferevent *admin_new_bev(struct event_base *base, void *arg)
{
    (void)arg;
    char e[256];
    SSL *ssl = SSL_new(A.ctx);
    if (ssl == NULL) {
        log_error("event=admin_tls_failed why=\"SSL_new: %s\"", tls_last_error(e, sizeof(e)));
        return NULL;
    }
    /* libevent may retry a blocked SSL_write from a moved buffer */
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_info_callback(ssl, admin_tls_info);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        /* whether libevent freed ssl on this path depends on its version:
         * leak it rather than risk a double free (only on out-of-memory) */
        log_error("event=admin_tls_failed why=\"cannot create a TLS bufferevent\"");
        return NULL;
    }
    /* a client closing without close_notify after its answer is normal */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

SSL_CTX *admin_tls_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
    const char *ca = cfg->admin_ca[0] != '\0' ? cfg->admin_ca : cfg->tls_ca;
    /* operators only, refused in the handshake: a participant's certificate
     * never gets to send a request */
    return tls_server_ctx_new(cfg->tls_cert, cfg->tls_key, ca, cfg->tls_crl, "operator", err,
                              errlen);
}

void admin_set_tls_ctx(SSL_CTX *ctx)
{
    if (A.http == NULL) {
        SSL_CTX_free(ctx);
        return;
    }
    SSL_CTX_free(A.ctx);
    A.ctx = ctx;
    log_info("event=admin_tls_reloaded listen=%s", A.listen);
}

/* ---- lifecycle ---- */

int admin_start(struct event_base *base, const struct config *cfg, char *err, size_t errlen)
{
    char host[128];
    int port;
    if (A.http != NULL) {
        snprintf(err, errlen, "the admin console is already running");
        return -1;
    }
    memset(&A, 0, sizeof(A));
    A.base = base;
    if (cfg->admin_listen[0] == '\0') {
        log_info("event=admin_disabled why=\"admin_listen is empty\"");
        return 0;
    }
    if (config_split_addr(cfg->admin_listen, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "admin_listen must be host:port, got \"%s\"", cfg->admin_listen);
        return -1;
    }
    size_t hlen = strlen(host);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    snprintf(A.listen, sizeof(A.listen), "%s", cfg->admin_listen);
    A.ctx = admin_tls_ctx_new(cfg, err, errlen);
    if (A.ctx == NULL)
        goto fail;
    A.http = evhttp_new(base);
    if (A.http == NULL) {
        snprintf(err, errlen, "cannot create the admin HTTP server");
        goto fail;
    }
    evhttp_set_bevcb(A.http, admin_new_bev, NULL);
    evhttp_set_gencb(A.http, admin_on_request, NULL);
    evhttp_set_allowed_methods(A.http, ADMIN_METHODS);
    evhttp_set_max_body_size(A.http, ADMIN_BODY_HARD_MAX);
    evhttp_set_max_headers_size(A.http, ADMIN_HEADERS_MAX);
    evhttp_set_timeout(A.http, ADMIN_TIMEOUT_S);
    errno = 0;
    A.bound = evhttp_bind_socket_with_handle(A.http, host, (ev_uint16_t)port);
    if (A.bound == NULL) {
        snprintf(err, errlen, "admin_listen %s: cannot listen: %s", cfg->admin_listen,
                 errno != 0 ? strerror(errno) : "bind failed");
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(A.bound), (struct sockaddr *)&ss, &sl) == 0)
        A.port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                : ((struct sockaddr_in *)&ss)->sin_port);
    log_info("event=admin_listening listen=%s port=%d ca=%s", A.listen, A.port,
             cfg->admin_ca[0] != '\0' ? cfg->admin_ca : cfg->tls_ca);
    return 0;
fail:
    if (A.http != NULL)
        evhttp_free(A.http);
    A.http = NULL;
    A.bound = NULL;
    if (A.ctx != NULL)
        SSL_CTX_free(A.ctx);
    A.ctx = NULL;
    return -1;
}

void admin_stop(void)
{
    if (A.http == NULL || A.bound == NULL)
        return;
    evhttp_del_accept_socket(A.http, A.bound);
    A.bound = NULL;
    A.port = 0;
    log_info("event=admin_stopped listen=%s pending=%zu", A.listen, A.npending);
}

void admin_free(void)
{
    if (A.http == NULL)
        return;
    admin_stop();
    /* requests libevent detached from a failed connection are ours to free;
     * the attached ones go with their connections in evhttp_free() */
    for (struct admin_req *ar = A.pending; ar != NULL; ar = ar->next) {
        if (ar->req != NULL && evhttp_request_get_connection(ar->req) == NULL)
            evhttp_request_free(ar->req);
        ar->req = NULL;
        ar->conn = NULL;
    }
    if (A.npending > 0)
        log_warn("event=admin_abandoned pending=%zu why=\"shutting down\"", A.npending);
    evhttp_free(A.http);
    A.http = NULL;
    SSL_CTX_free(A.ctx);
    A.ctx = NULL;
}

int admin_port(void)
{
    return A.port;
}
