/* Fuzz target: the capture file reader (sikka-replay reads captures that
 * sikka-replay gen or a recording switch wrote, or that someone handed
 * over). Bytes are a capture file, read through capture_open_stream from
 * memory; every record's frame is unpacked as sikka-replay does before it
 * replays it, and a transfer is packed again to compare. The reader either
 * yields records or says what is damaged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen wants a buffer; an empty file fails on the magic */
    FILE *f = fmemopen((void *)(uintptr_t)data, size, "rb");
    if (f == NULL)
        return 0;
    char err[256] = "";
    struct capture_reader *r = capture_open_stream(f, "fuzz", err, sizeof(err));
    if (r == NULL) {
        if (err[0] == '\0')
            abort(); /* a refusal always says why */
        return 0;
    }
    const CaptureHeader *h = capture_header(r);
    size_t names = 0;
    for (size_t i = 0; i < h->n_participants; i++)
        names += strlen(h->participants[i]);
    (void)names;
    static uint8_t again[65536];
    const CaptureRecord *rec;
    while ((rec = capture_next(r, err, sizeof(err))) != NULL) {
        if (rec->malformed)
            continue; /* replayed as is, never unpacked */
        Envelope *env = sikka__v1__envelope__unpack(NULL, rec->frame.len, rec->frame.data);
        if (env == NULL)
            continue;
        if (env->body_case == SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER) {
            size_t n = protobuf_c_message_get_packed_size(&env->credit_transfer->base);
            if (n <= sizeof(again) &&
                protobuf_c_message_pack(&env->credit_transfer->base, again) != n)
                abort();
        }
        sikka__v1__envelope__free_unpacked(env, NULL);
    }
    capture_close_reader(r);
    return 0;
}
