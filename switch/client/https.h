/*
 * https: a small blocking HTTPS/1.1 client for sikka-ctl and the tests — one
 * request per connection (`Connection: close`), mutual TLS with the caller's
 * SSL_CTX, the server's certificate checked against the CA and against the
 * host name or IP address we dialled (tls_client_prepare), and one deadline
 * for the whole exchange (connect, handshake, request, response).
 *
 * It does not touch an event loop and keeps no state between calls. Responses
 * must carry a Content-Length or end with the connection; chunked responses
 * are refused. Bodies above HTTPS_BODY_MAX are refused.
 *
 * Writing to a socket the peer has closed raises SIGPIPE: callers ignore it.
 */
#ifndef SIKKA_HTTPS_H
#define SIKKA_HTTPS_H

#include <openssl/ssl.h>
#include <stddef.h>

#define HTTPS_BODY_MAX (64u << 20)

struct https_response {
    int status;             /* HTTP status code */
    char content_type[128]; /* "" when the server sent none */
    char *body;             /* NUL-terminated (the body may hold NULs too); owned */
    size_t body_len;
};

/* Sends `method path` to host:port with `body` (NULL: none; sent as
 * application/json) and reads the answer into resp. Returns 0 when an HTTP
 * response arrived (whatever its status), -1 when none did (connection
 * refused, handshake refused, timeout, malformed answer): then err says why
 * and resp holds nothing. ctx is the caller's (a client context; it may
 * carry no certificate). */
int https_request(SSL_CTX *ctx, const char *host, int port, const char *method, const char *path,
                  const char *body, size_t body_len, int timeout_ms, struct https_response *resp,
                  char *err, size_t errlen) __attribute__((warn_unused_result));

void https_response_free(struct https_response *resp);

#endif
