#include "clock.h"
#include "https.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tls.h"

#define HTTPS_HEADER_MAX         (64u << 10)
#define HTTPS_DEFAULT_TIMEOUT_MS 30000

/* One exchange: the socket, its TLS session and the deadline for all of it. */
struct https_conn {
    int fd;
    SSL *ssl;
    int64_t deadline_ms;
};

/* Waits until fd is ready for `events` (or in error) or the deadline passes. */
static int https_wait(int fd, short events, int64_t deadline_ms, char *err, size_t errlen)
{
    for (;;) {
        int64_t left = deadline_ms - mono_ms();
        if (left <= 0) {
            snprintf(err, errlen, "timed out");
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events, .revents = 0};
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0)
            return 0; /* POLLERR/POLLHUP too: the next call says what happened */
        if (n == -1 && errno != EINTR) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

/* A connected non-blocking socket to host:port, or -1 with err set. */
static int https_dial(const char *host, int port, int64_t deadline_ms, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    char why[256] = "no address";
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd == -1) {
            snprintf(why, sizeof(why), "socket: %s", strerror(errno));
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            if (https_wait(fd, POLLOUT, deadline_ms, why, sizeof(why)) == 0) {
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
                    soerr = errno;
                if (soerr == 0)
                    break;
                snprintf(why, sizeof(why), "%s", strerror(soerr));
            }
        } else {
            snprintf(why, sizeof(why), "%s", strerror(errno));
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd == -1)
        snprintf(err, errlen, "cannot connect to %s port %d: %s", host, port, why);
    return fd;
}

/* After an SSL call returned ret <= 0: waits for the socket when OpenSSL
 * asks to and returns 1 (call again), 0 on a clean end of the stream, -1 on
 * a failure with err saying `what` failed and why. */
static int https_ssl_step(struct https_conn *c, int ret, const char *what, char *err, size_t errlen)
{
    char why[256];
    int e = SSL_get_error(c->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        if (https_wait(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, c->deadline_ms, why,
                       sizeof(why)) == 0)
            return 1;
        snprintf(err, errlen, "%s: %s", what, why);
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            snprintf(err, errlen, "%s: %s", what,
                     errno != 0 ? strerror(errno) : "the connection was closed");
            return -1;
        }
        break;
    default:
        break;
    }
    long verify = SSL_get_verify_result(c->ssl);
    if (verify != X509_V_OK)
        snprintf(err, errlen, "%s: the server's certificate is not acceptable: %s", what,
                 X509_verify_cert_error_string(verify));
    else
        snprintf(err, errlen, "%s: %s", what, tls_last_error(why, sizeof(why)));
    return -1;
}

/* TLS 1.3 finishes the client's handshake before the server has judged
 * our certificate, so a refusal may first show as a failed write. The
 * server's alert usually sits in our receive buffer: read it (briefly) so
 * that err says what the server said. */
static void https_alert(struct https_conn *c, const char *host, int port, char *err, size_t errlen)
{
    char buf[256], what[300], why[512];
    int64_t deadline = c->deadline_ms;
    int64_t soon = mono_ms() + 200;
    if (soon < c->deadline_ms)
        c->deadline_ms = soon;
    snprintf(what, sizeof(what), "the TLS session with %s port %d", host, port);
    ERR_clear_error();
    for (;;) {
        int r = SSL_read(c->ssl, buf, sizeof(buf));
        if (r > 0)
            continue;
        int s = https_ssl_step(c, r, what, why, sizeof(why));
        if (s < 0 && strstr(why, "alert") != NULL)
            snprintf(err, errlen, "%s", why);
        if (s <= 0)
            break;
    }
    c->deadline_ms = deadline;
}

/* Where the header block ends (just past CRLFCRLF), or 0 when not yet. */
static size_t https_header_end(const char *buf, size_t len)
{
    const char *p = memmem(buf, len, "\r\n\r\n", 4);
    return p != NULL ? (size_t)(p - buf) + 4 : 0;
}

/* Parses the status line and the headers we care about. content_length is
 * -1 when absent. */
static int https_parse_head(const char *buf, size_t head_len, struct https_response *resp,
                            long long *content_length, char *err, size_t errlen)
{
    *content_length = -1;
    if (head_len < 16 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' || buf[9] < '1' ||
        buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9' ||
        (buf[12] != ' ' && buf[12] != '\r')) {
        snprintf(err, errlen, "the answer is not HTTP/1.x");
        return -1;
    }
    resp->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    const char *line = memchr(buf, '\n', head_len);
    const char *end = buf + head_len;
    while (line != NULL && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            break;
        size_t n = (size_t)(eol - line);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        const char *colon = memchr(line, ':', n);
        if (colon != NULL) {
            size_t name_len = (size_t)(colon - line);
            const char *v = colon + 1;
            size_t vlen = n - name_len - 1;
            while (vlen > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vlen--;
            }
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (name_len == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
                long long cl = 0;
                if (vlen == 0 || vlen > 12) {
                    snprintf(err, errlen, "bad Content-Length in the answer");
                    return -1;
                }
                for (size_t i = 0; i < vlen; i++) {
                    if (v[i] < '0' || v[i] > '9') {
                        snprintf(err, errlen, "bad Content-Length in the answer");
                        return -1;
                    }
                    cl = cl * 10 + (v[i] - '0');
                }
                *content_length = cl;
            } else if (name_len == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
                size_t m =
                    vlen < sizeof(resp->content_type) - 1 ? vlen : sizeof(resp->content_type) - 1;
                memcpy(resp->content_type, v, m);
                resp->content_type[m] = '\0';
            } else if (name_len == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0 &&
                       !(vlen == 8 && strncasecmp(v, "identity", 8) == 0)) {
                snprintf(err, errlen, "the answer uses a transfer encoding this client lacks");
                return -1;
            }
        }
        line = eol;
    }
    if (*content_length > (long long)HTTPS_BODY_MAX) {
        snprintf(err, errlen, "the answer is larger than %u bytes", HTTPS_BODY_MAX);
        return -1;
    }
    return 0;
}

int https_request(SSL_CTX *ctx, const char *host, int port, const char *method, const char *path,
                  const char *body, size_t body_len, int timeout_ms, struct https_response *resp,
                  char *err, size_t errlen)
{
    struct https_conn c = {.fd = -1, .ssl = NULL, .deadline_ms = 0};
    char *out = NULL, *in = NULL;
    size_t in_len = 0, in_cap = 0, head_len = 0;
    long long content_length = -1;
    char what[300];
    memset(resp, 0, sizeof(*resp));
    c.deadline_ms = mono_ms() + (timeout_ms > 0 ? timeout_ms : HTTPS_DEFAULT_TIMEOUT_MS);
    ERR_clear_error();

    c.fd = https_dial(host, port, c.deadline_ms, err, errlen);
    if (c.fd == -1)
        goto fail;
    c.ssl = SSL_new(ctx);
    if (c.ssl == NULL) {
        snprintf(err, errlen, "SSL_new: %s", tls_last_error(what, sizeof(what)));
        goto fail;
    }
    /* a server that closes without close_notify has still said everything
     * its Content-Length promised; the length check below catches the rest */
    SSL_set_options(c.ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (tls_client_prepare(c.ssl, host) != 0 || SSL_set_fd(c.ssl, c.fd) != 1) {
        snprintf(err, errlen, "cannot set up TLS for %s", host);
        goto fail;
    }
    snprintf(what, sizeof(what), "TLS handshake with %s port %d", host, port);
    for (;;) {
        int r = SSL_connect(c.ssl);
        if (r == 1)
            break;
        int s = https_ssl_step(&c, r, what, err, errlen);
        if (s == 0)
            snprintf(err, errlen, "%s: the server closed the connection", what);
        if (s <= 0)
            goto fail;
    }

    bool has_body = body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
    char length_header[96] = "";
    if (has_body)
        snprintf(length_header, sizeof(length_header),
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    int head = asprintf(&out,
                        "%s %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUser-Agent: sikka\r\n"
                        "Accept: application/json, text/csv\r\nConnection: close\r\n%s\r\n",
                        method, path, strchr(host, ':') != NULL ? "[" : "", host,
                        strchr(host, ':') != NULL ? "]" : "", port, length_header);
    if (head < 0) {
        out = NULL;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    size_t out_len = (size_t)head + (body != NULL ? body_len : 0);
    if (body != NULL && body_len > 0) {
        char *grown = realloc(out, out_len);
        if (grown == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        out = grown;
        memcpy(out + head, body, body_len);
    }
    if (out_len > INT_MAX) {
        snprintf(err, errlen, "the request is too large");
        goto fail;
    }
    snprintf(what, sizeof(what), "sending the request to %s port %d", host, port);
    for (;;) {
        int r = SSL_write(c.ssl, out, (int)out_len);
        if (r > 0)
            break;
        int s = https_ssl_step(&c, r, what, err, errlen);
        if (s == 0)
            snprintf(err, errlen, "%s: the server closed the connection", what);
        if (s <= 0) {
            https_alert(&c, host, port, err, errlen);
            goto fail;
        }
    }

    snprintf(what, sizeof(what), "reading the answer from %s port %d", host, port);
    for (;;) {
        if (in_cap - in_len < 4096) {
            size_t cap = in_cap == 0 ? 16384 : in_cap * 2;
            if (cap > HTTPS_BODY_MAX + HTTPS_HEADER_MAX + 1)
                cap = HTTPS_BODY_MAX + HTTPS_HEADER_MAX + 1;
            if (cap - in_len < 2) {
                snprintf(err, errlen, "%s: the answer is larger than %u bytes", what,
                         HTTPS_BODY_MAX);
                goto fail;
            }
            char *grown = realloc(in, cap);
            if (grown == NULL) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            in = grown;
            in_cap = cap;
        }
        size_t room = in_cap - in_len - 1;
        int r = SSL_read(c.ssl, in + in_len, room > INT_MAX ? INT_MAX : (int)room);
        if (r > 0) {
            in_len += (size_t)r;
            if (head_len == 0) {
                head_len = https_header_end(in, in_len);
                if (head_len == 0 && in_len > HTTPS_HEADER_MAX) {
                    snprintf(err, errlen, "%s: the header block is too large", what);
                    goto fail;
                }
                if (head_len > 0 &&
                    https_parse_head(in, head_len, resp, &content_length, err, errlen) != 0)
                    goto fail;
            }
            if (head_len > 0 && content_length >= 0 && in_len - head_len >= (size_t)content_length)
                break;
            continue;
        }
        int s = https_ssl_step(&c, r, what, err, errlen);
        if (s == 0)
            break;
        if (s < 0)
            goto fail;
    }
    if (head_len == 0) {
        snprintf(err, errlen, "%s: the connection closed before an HTTP answer", what);
        goto fail;
    }
    size_t got = in_len - head_len;
    if (content_length >= 0) {
        if (got < (size_t)content_length) {
            snprintf(err, errlen, "%s: the answer was cut short (%zu of %lld bytes)", what, got,
                     content_length);
            goto fail;
        }
        got = (size_t)content_length;
    }
    resp->body = malloc(got + 1);
    if (resp->body == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memcpy(resp->body, in + head_len, got);
    resp->body[got] = '\0';
    resp->body_len = got;
    /* say goodbye politely; the answer is complete whatever this returns */
    (void)SSL_shutdown(c.ssl);
    SSL_free(c.ssl);
    close(c.fd);
    free(out);
    free(in);
    return 0;
fail:
    if (c.ssl != NULL)
        SSL_free(c.ssl);
    if (c.fd != -1)
        close(c.fd);
    free(out);
    free(in);
    https_response_free(resp);
    return -1;
}

void https_response_free(struct https_response *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}
