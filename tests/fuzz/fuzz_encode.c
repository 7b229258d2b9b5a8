/* Fuzz target: what the switch sends back. The input is one frame body,
 * decoded as the switch decodes a participant's frame (codec_unpack, strict
 * UTF-8 included); for whatever the switch accepts, this builds what the
 * switch would send in answer the way the router builds it — the transfer
 * forwarded to the payee (transfer_to_wire), the forwarded return, status
 * reports echoing the peer's msg_id, end_to_end_id and query_id with a text
 * quoting the peer's narrative (transfer_set_reason), message rejects — and
 * asserts that each passes codec_check_strict, holds texts within their
 * limits, and decodes again (codec_unpack) to the strings that went in.
 * Any failure aborts. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "text.h"
#include "transfer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_encode: %s failed: ", #cond);                                    \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct arena out_arena;

/* What the switch would write: strict, and the same after a round trip. */
static const Envelope *sent(const Envelope *env)
{
    char err[300];
    FUZZ_ASSERT(codec_check_strict(&env->base, err, sizeof(err)) == 0, "%s: %s",
                codec_body_name(env), err);
    size_t len = 0;
    uint8_t *frame = codec_pack_alloc(env, &len);
    FUZZ_ASSERT(frame != NULL && len >= CODEC_HEADER_BYTES, "packing failed");
    arena_reset(&out_arena);
    Envelope *again = codec_unpack(&out_arena, frame + CODEC_HEADER_BYTES, len - CODEC_HEADER_BYTES,
                                   err, sizeof(err));
    FUZZ_ASSERT(again != NULL, "a %s the switch sends does not decode: %s", codec_body_name(env),
                err);
    FUZZ_ASSERT(again->body_case == env->body_case, "body changed");
    free(frame);
    return again;
}

static void report(const struct transfer *t, const char *query_id)
{
    FUZZ_ASSERT(text_chars(t->reason_text) <= TRANSFER_TEXT_MAX, "a text of %zu characters",
                text_chars(t->reason_text));
    Sikka__V1__StatusReport sr = SIKKA__V1__STATUS_REPORT__INIT;
    sr.transfer_id = t->id;
    sr.original_msg_id = (char *)t->msg_id;
    sr.original_end_to_end_id = (char *)t->end_to_end_id;
    sr.status = SIKKA__V1__TX_STATUS__RJCT;
    sr.reason = (char *)t->reason;
    sr.text = (char *)t->reason_text;
    sr.amount = t->amount;
    sr.debtor_agent = (char *)t->payer;
    sr.creditor_agent = (char *)t->payee;
    sr.query_id = (char *)(query_id != NULL ? query_id : "");
    sr.original_transfer_id = t->original_id;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT;
    env.status_report = &sr;
    const Envelope *again = sent(&env);
    FUZZ_ASSERT(strcmp(again->status_report->original_msg_id, t->msg_id) == 0, "msg_id changed");
    FUZZ_ASSERT(strcmp(again->status_report->text, t->reason_text) == 0, "text changed");
    FUZZ_ASSERT(strcmp(again->status_report->query_id, sr.query_id) == 0, "query_id changed");
}

static void message_reject(const char *reason, const char *text, const char *ref_msg_id,
                           uint64_t ref_id)
{
    Sikka__V1__MessageReject mr = SIKKA__V1__MESSAGE_REJECT__INIT;
    mr.reason = (char *)reason;
    mr.text = (char *)text;
    mr.ref_msg_id = (char *)(ref_msg_id != NULL ? ref_msg_id : "");
    mr.ref_transfer_id = ref_id;
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT;
    env.message_reject = &mr;
    sent(&env);
}

static void credit_transfer(const Sikka__V1__CreditTransfer *ct)
{
    static struct transfer t;
    memset(&t, 0, sizeof(t));
    char reason[TRANSFER_REASON_MAX + 1], text[TRANSFER_TEXT_MAX + 1];
    if (transfer_from_credit_transfer(&t, ct, "JAZZ", reason, text, sizeof(text)) != 0) {
        /* answered with only what passed its check */
        message_reject(reason, text, t.msg_id[0] ? t.msg_id : NULL, 0);
        transfer_set_reason(&t, reason, "%s", text);
        report(&t, NULL);
        return;
    }
    transfer_fingerprint(&t, t.fingerprint);
    t.id = 0x100000001ULL;
    struct transfer_wire w;
    transfer_to_wire(&t, t.id, &w); /* forwarded to the payee */
    const Envelope *fwd = sent(&w.env);
    const Sikka__V1__CreditTransfer *got = fwd->credit_transfer;
    FUZZ_ASSERT(strcmp(got->msg_id, ct->msg_id) == 0, "msg_id not forwarded intact");
    FUZZ_ASSERT(strcmp(got->debtor_name, ct->debtor_name) == 0, "debtor_name not intact");
    FUZZ_ASSERT(strcmp(got->creditor_name, ct->creditor_name) == 0, "creditor_name not intact");
    FUZZ_ASSERT(got->transfer_id == t.id, "transfer_id");
    transfer_to_wire(&t, 0, &w); /* the payer's view */
    sent(&w.env);
    /* rejected by the payee with the longest text it may send */
    transfer_set_reason(&t, "AC01", "rejected by creditor agent %s: %s%s", t.payee, t.creditor_name,
                        t.debtor_name);
    report(&t, NULL);
    transfer_set_reason(&t, "AM03", "currency must be %s", t.currency[0] ? t.currency : "PKR");
    report(&t, NULL);
}

static void decision(const Sikka__V1__PayeeDecision *d)
{
    char text[200];
    if (transfer_check_decision(d, text, sizeof(text)) != 0) {
        message_reject("FF01", text, NULL, d->transfer_id);
        return;
    }
    static struct transfer t;
    memset(&t, 0, sizeof(t));
    snprintf(t.msg_id, sizeof(t.msg_id), "M-1");
    snprintf(t.payer, sizeof(t.payer), "JAZZ");
    snprintf(t.payee, sizeof(t.payee), "KOKO");
    t.id = d->transfer_id;
    transfer_set_reason(&t, d->reason[0] ? d->reason : "NARR", "rejected by creditor agent %s%s%s",
                        t.payee, d->text[0] ? ": " : "", d->text);
    report(&t, NULL);
}

static void payment_return(const Sikka__V1__PaymentReturn *pr)
{
    static struct transfer t;
    memset(&t, 0, sizeof(t));
    char reason[TRANSFER_REASON_MAX + 1], text[TRANSFER_TEXT_MAX + 1];
    if (transfer_from_return(&t, pr, "KOKO", reason, text, sizeof(text)) != 0) {
        message_reject(reason, text, t.msg_id[0] ? t.msg_id : NULL, 0);
        return;
    }
    transfer_fingerprint(&t, t.fingerprint);
    t.id = 0x100000002ULL;
    Sikka__V1__PaymentReturn fwd = SIKKA__V1__PAYMENT_RETURN__INIT;
    fwd.msg_id = t.msg_id;
    fwd.original_transfer_id = t.original_id;
    fwd.amount = t.amount;
    fwd.reason = t.return_reason;
    fwd.text = t.remittance_text;
    fwd.transfer_id = t.id;
    fwd.original_msg_id = (char *)"ORIG-1";
    Envelope env = SIKKA__V1__ENVELOPE__INIT;
    env.body_case = SIKKA__V1__ENVELOPE__BODY_PAYMENT_RETURN;
    env.payment_return = &fwd;
    const Envelope *again = sent(&env);
    FUZZ_ASSERT(strcmp(again->payment_return->text, pr->text) == 0, "return text not intact");
    transfer_set_reason(&t, "AG01", "no transfer %" PRIu64 " to return", t.original_id);
    report(&t, NULL);
}

static void status_query(const Sikka__V1__StatusQuery *sq)
{
    char text[160];
    if (transfer_check_query(sq, text, sizeof(text)) != 0) {
        message_reject("FF01", text, NULL, 0);
        return;
    }
    static struct transfer t;
    memset(&t, 0, sizeof(t));
    (void)text_copy_truncated(t.msg_id, sizeof(t.msg_id), sq->msg_id);
    t.id = sq->transfer_id;
    transfer_set_reason(&t, "NARR", "no transfer with msg_id %s from %s is known", sq->msg_id,
                        "JAZZ");
    report(&t, sq->query_id);
    message_reject("NARR", t.reason_text, sq->msg_id, sq->transfer_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char mem[16384], out_mem[16384];
    struct arena a;
    arena_init(&a, mem, sizeof(mem), 1 << 20);
    arena_init(&out_arena, out_mem, sizeof(out_mem), 1 << 20);
    char err[256];
    Envelope *env = codec_unpack(&a, data, size, err, sizeof(err));
    if (env == NULL) {
        /* refused: the switch answers FF01 with the codec's words */
        message_reject("FF01", err, NULL, 0);
    } else {
        switch (env->body_case) {
        case SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER:
            credit_transfer(env->credit_transfer);
            break;
        case SIKKA__V1__ENVELOPE__BODY_DECISION:
            decision(env->decision);
            break;
        case SIKKA__V1__ENVELOPE__BODY_PAYMENT_RETURN:
            payment_return(env->payment_return);
            break;
        case SIKKA__V1__ENVELOPE__BODY_STATUS_QUERY:
            status_query(env->status_query);
            break;
        default:
            break;
        }
    }
    arena_reset(&a);
    arena_reset(&out_arena);
    return 0;
}
