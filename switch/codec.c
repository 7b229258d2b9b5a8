#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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
    default:
        return "none";
    }
}
