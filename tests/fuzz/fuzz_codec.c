/* Fuzz target: the participant-facing decoder. Bytes arrive as a stream of
 * frames (a bulk may be larger than the others); every frame the codec
 * accepts is validated the way the router does (transfer_from_credit_transfer,
 * fingerprint; a bulk's items one by one). Nothing may crash, leak or read
 * out of bounds, whatever the bytes. */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>

#include "codec.h"
#include "rtp.h"
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
        if (env != NULL && env->body_case == SIKKA__V1__ENVELOPE__BODY_REQUEST_TO_PAY) {
            char reason[8], text[256], agent[5], account[35];
            if (rtp_check_request(env->request_to_pay, reason, text, sizeof(text)) == 0 &&
                rtp_resolve_debtor("KOKO", env->request_to_pay->debtor, agent, account, reason,
                                   text, sizeof(text)) == 0) {
                int64_t midnight;
                struct rtp_rule rule = {.quiet_start_s = 75600, .quiet_end_s = 28800};
                if (rtp_parse_due_date(env->request_to_pay->due_date, &midnight) == 0)
                    (void)rtp_later_deliver_ms(&rule, midnight, 0);
            }
        }
        arena_reset(&a);
    }
    evbuffer_free(in);
    return 0;
}
