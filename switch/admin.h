/*
 * admin: the operator console — an HTTPS listener (evhttp + OpenSSL) on
 * `admin_listen` serving JSON under /api/v1/ to operators, and only to them.
 *
 * Mutual TLS: the client must present a certificate from `admin_ca` (or
 * `tls_ca` when that is empty); no certificate fails the handshake. Each
 * request is served only when the certificate's OU is "operator"; its CN
 * is the operator's name, passed to ops_* for the audit trail. Any other
 * role gets 403.
 *
 *   GET  /api/v1/participants            POST /api/v1/participants
 *   GET  /api/v1/participants/{code}     POST /api/v1/participants/{code}/suspend
 *   POST /api/v1/participants/{code}/resume
 *   PUT  /api/v1/participants/{code}/ndc {"ndc": paisa}
 *   GET  /api/v1/positions               GET  /api/v1/transfers/{id}
 *   GET  /api/v1/windows                 POST /api/v1/windows/close
 *   POST /api/v1/windows/{id}/settle     GET  /api/v1/windows/{id}/report[?format=csv]
 *   GET  /api/v1/reconcile               GET  /api/v1/fees
 *   GET  /api/v1/audit[?limit=N]         GET  /api/v1/status
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
 * Errors are JSON {"error": "..."}: 400 bad input, 403 not an operator, 404
 * unknown path or object, 405 wrong method (with Allow), 409 conflict, 413
 * body over 64 KiB, 503 database down. One log line per request:
 * `event=admin_request operator=... method=... path=... status=... ms=...`
 * (warn with why=... for 4xx, error for 5xx).
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
    char code[8];                             /* {code} */
    int64_t id;                               /* {id} */
    int limit;                                /* audit ?limit= */
    bool csv;                                 /* window report ?format=csv */
    struct admin_new_participant participant; /* POST participants */
    int64_t ndc;                              /* PUT participants/{code}/ndc */
    struct ops_transfer_query search;         /* GET transfers?... */
    json_t *body;                             /* the JSON object sent, or NULL */
};

/* Reads a request as it arrived: its method, the path and query of its URI
 * (query NULL or "" when there is none) and its body of len bytes (data may
 * be NULL when len is 0 or over the 64 KiB limit, which is refused unread).
 * Returns 0 with call filled in, or the status to answer (400, 404, 405 with
 * call->allow, 413) with why said and nothing left to release in call. The
 * console's request handler calls it after checking the operator; so does
 * the fuzz target tests/fuzz/fuzz_admin.c. */
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
