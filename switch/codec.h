/*
 * codec: frames and protobuf. A frame is a 4-byte big-endian length and one
 * serialized sikka.v1.Envelope. Shared by the switch and the client library.
 *
 * Decoding never trusts the peer: the length is checked against the maximum
 * before anything is buffered or unpacked, unpacking allocates only from the
 * caller's arena, and messages carrying unknown fields are refused, as are
 * messages a strict proto3 decoder would refuse (a string that is not valid
 * UTF-8) and strings C cannot hold (a NUL byte inside). Both sides decode
 * with codec_unpack, so the switch refuses such frames from participants
 * (FF01 naming the field) and the client library refuses them from the
 * switch; codec_check_strict is the same check for what a program is about
 * to send.
 */
#ifndef SIKKA_CODEC_H
#define SIKKA_CODEC_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "sikka.pb-c.h"

#define CODEC_HEADER_BYTES      4
#define CODEC_DEFAULT_MAX_FRAME 65536

typedef Sikka__V1__Envelope Envelope;

enum codec_status {
    CODEC_FRAME = 0, /* a whole frame is buffered; *len is its body length */
    CODEC_AGAIN,     /* need more bytes */
    CODEC_TOO_LARGE, /* the header announces more than max; cannot resync */
};

/* Looks at the start of `in` without consuming anything. */
enum codec_status codec_peek(struct evbuffer *in, size_t max, size_t *len);

/* codec_peek for a participant's frames: a frame over max is allowed up to
 * bulk_max when its body begins with the bulk_credit_transfer field (said
 * by the frame's first two body bytes, before the frame is read). */
enum codec_status codec_peek_bulk(struct evbuffer *in, size_t max, size_t bulk_max, size_t *len);

/* Whether the frame at the start of `in` begins with the Envelope's
 * bulk_credit_transfer field (the only body allowed past max_frame_bytes);
 * false while fewer than its first bytes are there. */
bool codec_is_bulk(struct evbuffer *in);

/* Unpacks `len` bytes into an Envelope allocated from `a`. Returns NULL and
 * writes why into err when the bytes are not a valid Envelope, carry unknown
 * fields, have no body, or hold a string that is not valid UTF-8 or holds a
 * NUL byte (err names the field: "credit_transfer.msg_id is not valid
 * UTF-8"). */
Envelope *codec_unpack(struct arena *a, const uint8_t *data, size_t len, char *err, size_t errlen);

/* Convenience: takes one frame off `in` (which must hold it, see codec_peek),
 * unpacks it into `a` and drains it. */
Envelope *codec_take(struct evbuffer *in, size_t len, struct arena *a, char *err, size_t errlen);

/* Appends one frame holding env to `out`, packing straight into the buffer.
 * Returns the bytes appended, or -1. */
int codec_write(struct evbuffer *out, const Envelope *env) __attribute__((warn_unused_result));

/* Packs env with its 4-byte header into a newly malloc'd buffer (for tools). */
uint8_t *codec_pack_alloc(const Envelope *env, size_t *len);

/* true when m or any message inside it carries fields this build does not know */
int codec_has_unknown_fields(const ProtobufCMessage *m);

/* What a strict proto3 decoder demands of m: every string field, in m and
 * in every message inside it (oneof members that are set, repeated
 * elements), is valid UTF-8. Returns 0, or -1 with err naming the field's
 * path ("credit_transfer.remittance.loan.loan_id is not valid UTF-8"). */
int codec_check_strict(const ProtobufCMessage *m, char *err, size_t len)
    __attribute__((warn_unused_result));

/* Name of the Envelope body ("credit_transfer", ...) for logs. */
const char *codec_body_name(const Envelope *env);

#endif
