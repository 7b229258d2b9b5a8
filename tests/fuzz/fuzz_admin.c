/* Fuzz target: the admin console's request reading. An input is what an
 * operator's client sends after the TLS handshake, reduced to what the
 * console reads: "METHOD URI\n" then the body. The URI goes through
 * libevent's parser as evhttp's server parses a request line, then the
 * path, query and body through admin_parse_request, exactly as
 * admin_on_request hands them over. Any input is either a validated call
 * (with the least role its method needs: viewer for reads, operator or
 * more for changes; a transfer search that validated keeps its
 * limits) or an answer of 400, 404, 405 or 413 that says why. */
#include <event2/http.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    const char *name;
    enum evhttp_cmd_type cmd;
} methods[] = {
    {"GET", EVHTTP_REQ_GET},     {"POST", EVHTTP_REQ_POST},       {"HEAD", EVHTTP_REQ_HEAD},
    {"PUT", EVHTTP_REQ_PUT},     {"DELETE", EVHTTP_REQ_DELETE},   {"OPTIONS", EVHTTP_REQ_OPTIONS},
    {"TRACE", EVHTTP_REQ_TRACE}, {"CONNECT", EVHTTP_REQ_CONNECT}, {"PATCH", EVHTTP_REQ_PATCH},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *sp = memchr(data, ' ', size);
    if (sp == NULL)
        return 0;
    size_t mlen = (size_t)(sp - data);
    enum evhttp_cmd_type cmd = 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]) && cmd == 0; i++)
        if (strlen(methods[i].name) == mlen && memcmp(methods[i].name, data, mlen) == 0)
            cmd = methods[i].cmd;
    if (cmd == 0)
        return 0; /* evhttp refuses other methods before the console sees them */
    const uint8_t *line = sp + 1, *end = data + size;
    const uint8_t *nl = memchr(line, '\n', (size_t)(end - line));
    size_t ulen = (size_t)((nl != NULL ? nl : end) - line);
    /* the request line as a C string, as evhttp holds it (a NUL ends it) */
    char *uri_text = malloc(ulen + 1);
    if (uri_text == NULL)
        return 0;
    memcpy(uri_text, line, ulen);
    uri_text[ulen] = '\0';
    /* the body in a buffer of its own exact size, so any read past it shows */
    size_t blen = nl != NULL ? (size_t)(end - nl - 1) : 0;
    char *body = blen > 0 ? malloc(blen) : NULL;
    if (blen > 0 && body == NULL) {
        free(uri_text);
        return 0;
    }
    if (blen > 0)
        memcpy(body, nl + 1, blen);

    struct evhttp_uri *uri = evhttp_uri_parse_with_flags(uri_text, EVHTTP_URI_NONCONFORMANT);
    if (uri != NULL) {
        const char *path = evhttp_uri_get_path(uri);
        struct admin_call call;
        char why[512];
        int status = admin_parse_request(cmd, path != NULL ? path : "", evhttp_uri_get_query(uri),
                                         body, blen, &call, why, sizeof(why));
        if (status == 0) {
            if (call.path == NULL || (call.body != NULL && !json_is_object(call.body)))
                abort();
            /* a search that validated is within its limits, its times canonical */
            const struct ops_transfer_query *q = &call.search;
            if (q->limit < 1 || q->limit > OPS_SEARCH_LIMIT_MAX || q->before < 0 ||
                (q->from[0] != '\0' && (strlen(q->from) != 27 || q->from[26] != 'Z')) ||
                (q->to[0] != '\0' && (strlen(q->to) != 27 || q->to[26] != 'Z')) ||
                (q->from[0] != '\0' && q->to[0] != '\0' && strcmp(q->from, q->to) >= 0))
                abort();
            /* every route names the least role for each of its methods */
            if (call.need < OPS_ROLE_VIEWER || call.need > OPS_ROLE_SUPERVISOR ||
                (cmd == EVHTTP_REQ_GET && call.need != OPS_ROLE_VIEWER) ||
                (cmd != EVHTTP_REQ_GET && call.need < OPS_ROLE_OPERATOR))
                abort();
            admin_call_clear(&call);
        } else {
            if (why[0] == '\0' || call.body != NULL)
                abort(); /* a refusal says why and keeps nothing */
            if (status != 400 && status != 404 && status != 413 &&
                !(status == 405 && call.allow != NULL))
                abort();
        }
        evhttp_uri_free(uri);
    }
    free(body);
    free(uri_text);
    return 0;
}
