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
        /* our schema has no repeated messages; a oneof member is set only
         * when the case field names it */
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            continue;
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

static int strict_walk(const ProtobufCMessage *m, char *path, size_t cap, size_t used, int depth,
                       char *err, size_t errlen)
{
    if (m == NULL)
        return 0;
    if (depth > CODEC_MAX_DEPTH) {
        snprintf(err, errlen, "%s is nested too deeply", used ? path : "message");
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
            size_t at = path_push(path, cap, used, f, repeated ? (long)k : -1);
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                const char *str = value;
                if (str != NULL && !text_valid_utf8(str, strlen(str))) {
                    snprintf(err, errlen, "%s is not valid UTF-8", path);
                    path[used] = '\0';
                    return -1;
                }
            } else if (strict_walk(value, path, cap, at, depth + 1, err, errlen) != 0) {
                path[used] = '\0';
                return -1;
            }
            path[used] = '\0';
        }
    }
    return 0;
}

int codec_check_strict(const ProtobufCMessage *m, char *err, size_t len)
{
    char path[256] = "";
    return strict_walk(m, path, sizeof(path), 0, 0, err, len);
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
static int wire_walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, char *path,
                     size_t cap, size_t used, int depth, char *err, size_t errlen)
{
    if (depth > CODEC_MAX_DEPTH) {
        snprintf(err, errlen, "%s is nested too deeply", used ? path : "message");
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
            if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING && memchr(p + i, 0, v) != NULL) {
                path_push(path, cap, used, f, -1);
                snprintf(err, errlen, "%s contains a NUL byte", path);
                path[used] = '\0';
                return -1;
            }
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                size_t at = path_push(path, cap, used, f, -1);
                int rc = wire_walk(f->descriptor, p + i, v, path, cap, at, depth + 1, err, errlen);
                path[used] = '\0';
                if (rc != 0)
                    return -1;
            }
            i += v;
            break;
        }
        default: /* groups: not proto3 */
            goto malformed;
        }
    }
    return 0;
malformed:
    snprintf(err, errlen, "%s is not valid protobuf", used ? path : "frame");
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
    char path[256] = "";
    if (codec_check_strict(&env->base, err, errlen) != 0 ||
        wire_walk(env->base.descriptor, data, len, path, sizeof(path), 0, 0, err, errlen) != 0)
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
    case SIKKA__V1__ENVELOPE__BODY_ALIAS_REQUEST:
        return "alias_request";
    case SIKKA__V1__ENVELOPE__BODY_ALIAS_RESPONSE:
        return "alias_response";
    default:
        return "none";
    }
}
