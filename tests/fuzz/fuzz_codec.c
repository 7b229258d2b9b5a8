/* Fuzz target: the participant-facing decoder. Bytes arrive as a stream of
 * frames (a bulk may be larger than the others); every frame the codec
 * accepts is validated the way the router does (transfer_from_credit_transfer,
 * fingerprint; a bulk's items one by one). Nothing may crash, leak or read
 * out of bounds, whatever the bytes. */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>

#include "codec.h"
#include "transfer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char mem[16384];
    struct arena a;
    arena_init(&a, mem, sizeof(mem), 1 << 20);
    struct evbuffer *in = evbuffer_new();
    evbuffer_add(in, data, size);
    char err[256];
    for (;;) {
        size_t len = 0;
        enum codec_status st = codec_peek_bulk(in, 2048, 4096, &len);
        if (st != CODEC_FRAME)
            break;
        Envelope *env = codec_take(in, len, &a, err, sizeof(err));
        if (env != NULL && env->body_case == SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER) {
            struct transfer t = {0};
            char reason[8], text[200];
            if (transfer_from_credit_transfer(&t, env->credit_transfer, "JAZZ", reason, text,
                                              sizeof(text)) == 0)
                transfer_fingerprint(&t, t.fingerprint);
        }
        /* a bulk's items are checked one by one, as the router does */
        for (size_t i = 0;
             env != NULL && env->body_case == SIKKA__V1__ENVELOPE__BODY_BULK_CREDIT_TRANSFER &&
             i < env->bulk_credit_transfer->n_items;
             i++) {
            struct transfer t = {0};
            char reason[8], text[200];
            if (transfer_from_credit_transfer(&t, env->bulk_credit_transfer->items[i], "JAZZ",
                                              reason, text, sizeof(text)) == 0)
                transfer_fingerprint(&t, t.fingerprint);
        }
        arena_reset(&a);
    }
    evbuffer_free(in);
    return 0;
}
