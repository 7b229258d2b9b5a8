/*
 * admin: the operator console — an HTTPS listener (evhttp + OpenSSL) on
 * `admin_listen` serving JSON under /api/v1/ to operators, and only to them.
 *
 * Mutual TLS: the client must present a certificate from `admin_ca` (or
 * `tls_ca` when that is empty); no certificate, or one whose OU is not
 * "operator", fails the handshake. The certificate is read again for each
 * request: its CN is the operator's name, its subject's title attribute
 * the operator's role (viewer < operator < supervisor; a missing or
 * unknown title gets 403 and a warn line), its serial and SHA-256
 * fingerprint go with the name and role to ops_* for the audit trail.
 *
 * Every route names the least role per method (admin.c's admin_paths); a
 * lower role gets 403 saying which role is needed, before the body is read.
 * All reads: viewer. Changes:
 *
 *   POST /api/v1/participants/{code}/suspend   operator    at once
 *   POST /api/v1/windows/close                 operator    at once
 *   POST /api/v1/participants/{code}/resume    operator    202 {"proposal": P}
 *   PUT  /api/v1/participants/{code}/ndc       supervisor  202, body {"ndc": paisa}
 *   POST /api/v1/windows/{id}/settle           supervisor  202
 *   POST /api/v1/participants                  supervisor  202, body {"code", "name",
 *                                                          "kind", "ndc"}
 *   POST /api/v1/proposals/{id}/approve        the role that may propose the
 *   POST /api/v1/proposals/{id}/reject         proposal's action, never its
 *                                              proposer (name or certificate);
 *                                              reject takes {"reason": text}
 * Reads:
 *   GET  /api/v1/participants            GET  /api/v1/participants/{code}
 *   GET  /api/v1/positions               GET  /api/v1/transfers/{id}
 *   GET  /api/v1/windows                 GET  /api/v1/windows/{id}/report[?format=csv]
 *   GET  /api/v1/reconcile               GET  /api/v1/fees
 *   GET  /api/v1/audit[?limit=N]         GET  /api/v1/status
 *   GET  /api/v1/health                  GET  /api/v1/proposals/{id}
 *   GET  /api/v1/proposals[?state=pending|approved|rejected|expired]
 *   GET  /api/v1/me  {"name", "role", "certificate": {"serial", "fingerprint"},
 *                     "may": [what the role may do or propose: "suspend",
 *                     "resume", "window_close", "ndc", "settle",
 *                     "participant_add", and "approve", "reject" (proposals of
 *                     the actions it may propose)]}
 * ops.h gives the answers' shapes (P, the audit trail, ...).
 *   GET  /api/v1/stats[?since=UNIX_SECONDS]
 *   GET  /metrics                        (outside /api/v1/: Prometheus' path)
 *
 * /metrics is the Prometheus text exposition (format 0.0.4, Content-Type
 * METRICS_CONTENT_TYPE): sikka_* counters, gauges and histograms
 * (metrics.c writes them; README lists them) plus process_*. /api/v1/stats
 * is the console dashboard's live view, from memory:
 *   {"now": unix_s, "series": [{"t": unix_s, "settled": n, "rejected": n,
 *    "p50_ms", "p99_ms", "commit_p50_ms", "commit_p99_ms", "batch_avg"}],
 *    "rejections": {"AM23": n, ...}, "sessions": {"JAZZ": n, ...},
 *    "window": id, "window_gross": paisa, "window_postings": n}
 * one row per whole second of the last 900 with t > since (oldest first;
 * end-to-end and commit latencies in ms, 0 in a second without any;
 * batch_avg transfers per committed batch), rejections by reason since
 * start, sessions of every participant, the open window's gross and
 * postings (null for a moment after start, until the earlier boots' part
 * is read). since must be decimal digits (else 400). Both are read with the
 * same certificate check as the API, and a successful one logs at debug
 * (they are polled).
 *
 *
 * Every other path (not /api/ nor /metrics) is the web console: the files of
 * switch/console/ embedded at build time (console.h), GET and HEAD, "/" for
 * index.html, with an ETag (If-None-Match answers 304) and Cache-Control
 * no-cache; API answers are no-store. Every answer carries the security
 * headers: a strict Content-Security-Policy (only the console's own scripts,
 * styles and origin; no inline code; never framed), X-Content-Type-Options
 * nosniff, Referrer-Policy no-referrer, X-Frame-Options DENY and
 * Strict-Transport-Security. No CORS header is ever sent.
 *
 * Writes (any method but GET and HEAD) are refused with 403 when an Origin
 * header is not exactly "https://" + Host or Sec-Fetch-Site is neither
 * "same-origin" nor "none"; OPTIONS with 405 (admin_check_origin); a write
 * the API would serve that is not sent as Content-Type: application/json
 * with 415 (admin_check_json).
 *
 *   GET  /api/v1/transfers?msg_id=&end_to_end_id=&participant=&status=&purpose=
 *        &ref=&from=&to=&limit=&before=   the transfer search (ops.h)
 *
 * Errors are JSON {"error": "..."}: 400 bad input, 403 not permitted (role,
 * four-eyes: "four-eyes: ..."), 404 unknown path or object, 405 wrong
 * method (with Allow), 409 conflict (e.g. a proposal decided or expired),
 * 413 body over 64 KiB, 503 database down. One log line per request:
 * `event=admin_request operator=... role=... method=... path=... status=...
 * ms=...` (warn with why=... for 4xx, error for 5xx).
 *
 * Ownership: the module owns its evhttp, its SSL_CTX and one small record
 * per request in flight. ops answers (ops_done) may come at once or later
 * from the loop; a client that disconnects meanwhile only marks its record,
 * and the late answer is logged and dropped. Single-threaded, on the
 * switch's event loop.
 */
#ifndef SIKKA_ADMIN_H
#define SIKKA_ADMIN_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ops.h"

/* Starts listening on cfg->admin_listen. Returns 0 when listening, and also
 * when admin_listen is "" (console disabled); -1 with err set when the TLS
 * material or the address is unusable. */
int admin_start(struct event_base *base, const struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The console's TLS context for cfg: tls_cert/tls_key, client certificates
 * required from admin_ca (tls_ca when empty). For SIGHUP: build it first,
 * hand it over with admin_set_tls_ctx once the whole reload validated. */
SSL_CTX *admin_tls_ctx_new(const struct config *cfg, char *err, size_t errlen);

/* Takes ownership of ctx: new connections use it, open ones keep theirs.
 * Frees it when the console is not running. */
void admin_set_tls_ctx(SSL_CTX *ctx);

/* Stops accepting connections (drain); open connections are still served. */
void admin_stop(void);

/* Closes every connection and frees the listener and the TLS context.
 * Requests still waiting for ops are abandoned: their answers, when ops
 * gives them, are dropped. Call before ops_free(). */
void admin_free(void);

/* The bound port (useful when admin_listen asked for port 0); 0 when not
 * listening. */
int admin_port(void);

/* ---- reading a request: no TLS, no identity, no database ---- */

struct admin_path; /* one route of the API (admin.c's table) */

/* A participant to add (POST participants); the strings point into the
 * call's body. */
struct admin_new_participant {
    const char *code, *name, *kind;
    int64_t ndc;
};

/* What a request asks for once its path, query and body validated. The
 * body belongs to the call: admin_call_clear() releases it. */
struct admin_call {
    const struct admin_path *path;            /* the route */
    const char *allow;                        /* the Allow header of a 405 */
    enum ops_role need;                       /* the least role for this method */
    char code[8];                             /* {code} */
    int64_t id;                               /* {id} */
    int limit;                                /* audit ?limit= */
    int64_t since;                            /* stats ?since= (Unix seconds) */
    bool csv;                                 /* window report ?format=csv */
    char state[16];                           /* proposals ?state=, "" for all */
    struct admin_new_participant participant; /* POST participants */
    int64_t ndc;                              /* PUT participants/{code}/ndc */
    const char *reason;                       /* reject {"reason"}, in body; or NULL */
    struct ops_transfer_query search;         /* GET transfers?... */
    struct ops_request_query requests;        /* GET requests?... */
    char alias_after[16];                     /* GET aliases?after= ("" from the start) */
    json_t *body;                             /* the JSON object sent, or NULL */
};

/* Reads a request as it arrived: its method, the path and query of its URI
 * (query NULL or "" when there is none) and its body of len bytes (data may
 * be NULL when len is 0 or over the 64 KiB limit, which is refused unread).
 * Returns 0 with call filled in (call->need: the least role the route takes
 * for this method), or the status to answer (400, 404, 405 with
 * call->allow, 413) with why said and nothing left to release in call. The
 * console's request handler does the same in two halves, checking the
 * operator's role in between; the fuzz target tests/fuzz/fuzz_admin.c
 * calls this. */
int admin_parse_request(enum evhttp_cmd_type cmd, const char *path, const char *query,
                        const char *body, size_t len, struct admin_call *call, char *why,
                        size_t whylen) __attribute__((warn_unused_result));
void admin_call_clear(struct admin_call *call);

/* The cross-site checks of a request, from its method and headers (each NULL
 * when absent). Returns 0 for a GET or HEAD, or a write from this console's
 * own origin (or from no browser: no Origin, no Sec-Fetch-Site); else 403
 * (foreign Origin or Sec-Fetch-Site) or 405 (OPTIONS) with why said. */
int admin_check_origin(enum evhttp_cmd_type cmd, const char *host, const char *origin,
                       const char *fetch_site, char *why, size_t whylen)
    __attribute__((warn_unused_result));
/* A write the API serves must be sent as Content-Type: application/json
 * (parameters allowed): 0, or 415 with why. */
int admin_check_json(enum evhttp_cmd_type cmd, const char *content_type, char *why, size_t whylen)
    __attribute__((warn_unused_result));

#endif
