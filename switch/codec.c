#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "text.h"

/* Our schema nests four deep (envelope, transfer, remittance, loan); a
 * message nested deeper than this is not one of ours. */
#define CODEC_MAX_DEPTH 8

enum codec_status codec_peek(struct evbuffer *in, size_t max, size_t *len)
{
    size_t have = evbuffer_get_length(in);
    if (have < CODEC_HEADER_BYTES)
        return CODEC_AGAIN;
    unsigned char hdr[CODEC_HEADER_BYTES];
    if (evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr))
        return CODEC_AGAIN;
    uint32_t n = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) |
                 (uint32_t)hdr[3];
    *len = n;
    if (n > max)
        return CODEC_TOO_LARGE;
    if (have - CODEC_HEADER_BYTES < n)
        return CODEC_AGAIN;
    return CODEC_FRAME;
}

enum codec_status codec_peek_bulk(struct evbuffer *in, size_t max, size_t bulk_max, size_t *len)
{
    enum codec_status st = codec_peek(in, max, len);
    if (st != CODEC_TOO_LARGE || bulk_max <= max || *len > bulk_max)
        return st;
    if (evbuffer_get_length(in) < CODEC_HEADER_BYTES + 2)
        return CODEC_AGAIN; /* the body's first field decides */
    if (!codec_is_bulk(in))
        return CODEC_TOO_LARGE;
    return codec_peek(in, bulk_max, len);
}

bool codec_is_bulk(struct evbuffer *in)
{
    /* field 18, length-delimited: key (18 << 3) | 2 = 146, varint 0x92 0x01 */
    unsigned char b[CODEC_HEADER_BYTES + 2];
    if (evbuffer_copyout(in, b, sizeof(b)) != (ev_ssize_t)sizeof(b))
        return false;
    return b[CODEC_HEADER_BYTES] == 0x92 && b[CODEC_HEADER_BYTES + 1] == 0x01;
}

int codec_has_unknown_fields(const ProtobufCMessage *m)
{
    if (m == NULL)
        return 0;
    if (m->n_unknown_fields > 0)
        return 1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            /* a count and an array of messages (bulk items, results) */
            size_t count;
            ProtobufCMessage **array;
            memcpy(&count, (const char *)m + f->quantifier_offset, sizeof(count));
            memcpy(&array, (const char *)m + f->offset, sizeof(array));
            for (size_t k = 0; k < count; k++)
                if (codec_has_unknown_fields(array[k]))
                    return 1;
            continue;
        }
        /* a oneof member is set only when the case field names it */
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which;
            memcpy(&which, (const char *)m + f->quantifier_offset, sizeof(which));
            if (which != f->id)
                continue;
        }
        const ProtobufCMessage *sub;
        memcpy(&sub, (const char *)m + f->offset, sizeof(sub));
        if (codec_has_unknown_fields(sub))
            return 1;
    }
    return 0;
}

/* A field's path for messages: "credit_transfer.remittance.loan.loan_id".
 * path holds `used` bytes; appends f's name (and "[i]" for a repeated
 * field's element) and returns the new length. */
static size_t path_push(char *path, size_t cap, size_t used, const ProtobufCFieldDescriptor *f,
                        long index)
{
    int n = index < 0
                ? snprintf(path + used, cap - used, "%s%s", used ? "." : "", f->name)
                : snprintf(path + used, cap - used, "%s%s[%ld]", used ? "." : "", f->name, index);
    if (n < 0)
        return used;
    return used + (size_t)n < cap ? used + (size_t)n : cap - 1;
}

/* Where the walk is: the field and, for a repeated field's element, its
 * index (-1 otherwise), under the step above. The path's text is only built
 * for a message that is refused: every valid frame of every session passes
 * through here, and formatting each field's path cost more than the check. */
struct path_step {
    const struct path_step *up;
    const ProtobufCFieldDescriptor *field;
    long index;
};

static const char *path_text(const struct path_step *at, char *out, size_t cap)
{
    const struct path_step *steps[CODEC_MAX_DEPTH + 2];
    size_t n = 0;
    for (; at != NULL && n < sizeof(steps) / sizeof(steps[0]); at = at->up)
        steps[n++] = at;
    size_t used = 0;
    out[0] = '\0';
    while (n > 0) {
        n--;
        used = path_push(out, cap, used, steps[n]->field, steps[n]->index);
    }
    return out;
}

/* Whether field f of m holds a value to look at: a oneof member only when
 * the case field names it. */
static bool field_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return true;
    uint32_t which;
    memcpy(&which, (const char *)m + f->quantifier_offset, sizeof(which));
    return which == f->id;
}

static int strict_walk(const ProtobufCMessage *m, const struct path_step *at, int depth, char *err,
                       size_t errlen)
{
    char path[256];
    if (m == NULL)
        return 0;
    if (depth > CODEC_MAX_DEPTH) {
        snprintf(err, errlen, "%s is nested too deeply",
                 at != NULL ? path_text(at, path, sizeof(path)) : "message");
        return -1;
    }
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if ((f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) ||
            !field_set(m, f))
            continue;
        const char *member = (const char *)m + f->offset;
        size_t count = 1;
        bool repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
        if (repeated) {
            /* a repeated field is a count and an array of values */
            memcpy(&count, (const char *)m + f->quantifier_offset, sizeof(count));
            void *array;
            memcpy(&array, member, sizeof(array));
            member = array;
        }
        for (size_t k = 0; k < count; k++) {
            void *value; /* char * or ProtobufCMessage *, both pointers */
            memcpy(&value, member + k * sizeof(void *), sizeof(value));
            struct path_step here = {at, f, repeated ? (long)k : -1};
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                const char *str = value;
                if (str != NULL && !text_valid_utf8(str, strlen(str))) {
                    snprintf(err, errlen, "%s is not valid UTF-8",
                             path_text(&here, path, sizeof(path)));
                    return -1;
                }
            } else if (strict_walk(value, &here, depth + 1, err, errlen) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

int codec_check_strict(const ProtobufCMessage *m, char *err, size_t len)
{
    return strict_walk(m, NULL, 0, err, len);
}

static bool wire_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *i < n; shift += 7) {
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* The one thing the unpacked message cannot show: protobuf-c hands strings
 * over NUL-terminated, so "A\0B" would silently become "A". Walks the
 * wire bytes (already accepted by protobuf-c) with d and refuses a string
 * field whose bytes hold a NUL. */
static int wire_walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                     const struct path_step *at, int depth, char *err, size_t errlen)
{
    char path[256];
    if (depth > CODEC_MAX_DEPTH) {
        snprintf(err, errlen, "%s is nested too deeply",
                 at != NULL ? path_text(at, path, sizeof(path)) : "message");
        return -1;
    }
    size_t i = 0;
    while (i < n) {
        uint64_t key, v;
        if (!wire_varint(p, n, &i, &key))
            goto malformed;
        switch (key & 7) {
        case 0: /* varint */
            if (!wire_varint(p, n, &i, &v))
                goto malformed;
            break;
        case 1: /* 64-bit */
            if (n - i < 8)
                goto malformed;
            i += 8;
            break;
        case 5: /* 32-bit */
            if (n - i < 4)
                goto malformed;
            i += 4;
            break;
        case 2: { /* length-delimited */
            if (!wire_varint(p, n, &i, &v) || v > n - i)
                goto malformed;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3))
                    : NULL;
            struct path_step here = {at, f, -1};
            if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING && memchr(p + i, 0, v) != NULL) {
                snprintf(err, errlen, "%s contains a NUL byte",
                         path_text(&here, path, sizeof(path)));
                return -1;
            }
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                wire_walk(f->descriptor, p + i, v, &here, depth + 1, err, errlen) != 0)
                return -1;
            i += v;
            break;
        }
        default: /* groups: not proto3 */
            goto malformed;
        }
    }
    return 0;
malformed:
    snprintf(err, errlen, "%s is not valid protobuf",
             at != NULL ? path_text(at, path, sizeof(path)) : "frame");
    return -1;
}

Envelope *codec_unpack(struct arena *a, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    Envelope *env = sikka__v1__envelope__unpack(arena_allocator(a), len, data);
    if (env == NULL) {
        snprintf(err, errlen, "frame of %zu bytes is not a valid sikka.v1.Envelope", len);
        return NULL;
    }
    if (codec_has_unknown_fields(&env->base)) {
        snprintf(err, errlen, "message carries fields unknown to sikka.v1");
        return NULL;
    }
    if (env->body_case == SIKKA__V1__ENVELOPE__BODY__NOT_SET) {
        snprintf(err, errlen, "envelope has no body");
        return NULL;
    }
    if (codec_check_strict(&env->base, err, errlen) != 0 ||
        wire_walk(env->base.descriptor, data, len, NULL, 0, err, errlen) != 0)
        return NULL;
    return env;
}

Envelope *codec_take(struct evbuffer *in, size_t len, struct arena *a, char *err, size_t errlen)
{
    unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)(CODEC_HEADER_BYTES + len));
    Envelope *env = NULL;
    if (p == NULL)
        snprintf(err, errlen, "out of memory reading a frame of %zu bytes", len);
    else
        env = codec_unpack(a, p + CODEC_HEADER_BYTES, len, err, errlen);
    evbuffer_drain(in, CODEC_HEADER_BYTES + len);
    return env;
}

int codec_write(struct evbuffer *out, const Envelope *env)
{
    size_t n = sikka__v1__envelope__get_packed_size(env);
    if (n > UINT32_MAX) {
        log_error("event=codec_write_failed why=\"message of %zu bytes too large\"", n);
        return -1;
    }
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)(n + CODEC_HEADER_BYTES), &v, 1) < 1) {
        log_error("event=codec_write_failed why=\"cannot reserve %zu bytes\"", n);
        return -1;
    }
    unsigned char *p = v.iov_base;
    p[0] = (unsigned char)(n >> 24);
    p[1] = (unsigned char)(n >> 16);
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
    size_t packed = sikka__v1__envelope__pack(env, p + CODEC_HEADER_BYTES);
    if (packed != n) {
        log_error("event=codec_write_failed why=\"packed %zu of %zu bytes\"", packed, n);
        return -1;
    }
    v.iov_len = n + CODEC_HEADER_BYTES;
    if (evbuffer_commit_space(out, &v, 1) != 0) {
        log_error("event=codec_write_failed why=\"commit of %zu bytes failed\"", n);
        return -1;
    }
    return (int)(n + CODEC_HEADER_BYTES);
}

uint8_t *codec_pack_alloc(const Envelope *env, size_t *len)
{
    size_t n = sikka__v1__envelope__get_packed_size(env);
    uint8_t *buf = malloc(n + CODEC_HEADER_BYTES);
    if (buf == NULL) {
        log_error("event=oom what=codec_pack bytes=%zu", n);
        return NULL;
    }
    buf[0] = (uint8_t)(n >> 24);
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    sikka__v1__envelope__pack(env, buf + CODEC_HEADER_BYTES);
    *len = n + CODEC_HEADER_BYTES;
    return buf;
}

const char *codec_body_name(const Envelope *env)
{
    switch (env->body_case) {
    case SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER:
        return "credit_transfer";
    case SIKKA__V1__ENVELOPE__BODY_DECISION:
        return "decision";
    case SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT:
        return "status_report";
    case SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT:
        return "message_reject";
    case SIKKA__V1__ENVELOPE__BODY_HEARTBEAT:
        return "heartbeat";
    case SIKKA__V1__ENVELOPE__BODY_PAYMENT_RETURN:
        return "payment_return";
    case SIKKA__V1__ENVELOPE__BODY_STATUS_QUERY:
        return "status_query";
    case SIKKA__V1__ENVELOPE__BODY_REPORT_ACK:
        return "report_ack";
    case SIKKA__V1__ENVELOPE__BODY_BULK_CREDIT_TRANSFER:
        return "bulk_credit_transfer";
    case SIKKA__V1__ENVELOPE__BODY_BULK_REPORT:
        return "bulk_report";
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY:
        return "request_to_pay";
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_DECISION:
        return "request_decision";
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_CANCEL:
        return "request_cancel";
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_STATUS:
        return "request_status";
    case SIKKA__V1__ENVELOPE__BODY_REQUEST_CONTROL:
        return "request_control";
    case SIKKA__V1__ENVELOPE__BODY_ALIAS_REQUEST:
        return "alias_request";
    case SIKKA__V1__ENVELOPE__BODY_ALIAS_RESPONSE:
        return "alias_response";
    default:
        return "none";
    }
}
