#include "recorder.h"

#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "codec.h"
#include "log.h"

static struct {
    struct capture_writer *w;
    int64_t started_ms;
    uint8_t *buf;
    size_t cap;
} C;

int recorder_open(const char *path)
{
    CaptureHeader h = SIKKA__CAPTURE__V1__CAPTURE_HEADER__INIT;
    C.started_ms = transfer_now_ms();
    h.version = CAPTURE_VERSION;
    h.started_at_ms = C.started_ms;
    h.source = "sikka-switch";
    h.scenario = "";
    char err[512];
    C.w = capture_create(path, &h, err, sizeof(err));
    if (C.w == NULL) {
        log_error("event=capture_open_failed path=%s why=\"%s\"", path, err);
        return -1;
    }
    log_info("event=capture_recording path=%s", path);
    return 0;
}

static void write_record(CaptureRecord *rec)
{
    if (capture_write(C.w, rec) != 0) {
        log_error("event=capture_stopped why=\"write failed\"");
        (void)capture_close(C.w);
        C.w = NULL;
    }
}

void recorder_transfer(const struct transfer *t, int action, const char *reason, bool retry)
{
    if (C.w == NULL || t->kind != TRANSFER_KIND_TRANSFER)
        return;
    struct transfer_wire w;
    transfer_to_wire(t, 0, &w);
    size_t n = sikka__v1__envelope__get_packed_size(&w.env);
    if (n > C.cap) {
        uint8_t *nb = realloc(C.buf, n);
        if (nb == NULL) {
            log_error("event=oom what=capture_record bytes=%zu", n);
            return;
        }
        C.buf = nb;
        C.cap = n;
    }
    sikka__v1__envelope__pack(&w.env, C.buf);
    CaptureRecord rec = SIKKA__CAPTURE__V1__CAPTURE_RECORD__INIT;
    rec.offset_us = (t->received_ms - C.started_ms) * 1000;
    rec.participant = (char *)t->payer;
    rec.frame.data = C.buf;
    rec.frame.len = n;
    rec.payee_action = action == 1   ? SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_REJECT
                       : action == 2 ? SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_IGNORE
                                     : SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_ACCEPT;
    rec.reject_reason = (char *)(action == 1 && reason != NULL ? reason : "");
    rec.retry = retry;
    rec.msg_id = (char *)t->msg_id;
    rec.payee = (char *)t->payee;
    rec.amount = t->amount;
    write_record(&rec);
}

void recorder_malformed(const char *participant, const void *frame, size_t len)
{
    if (C.w == NULL)
        return;
    CaptureRecord rec = SIKKA__CAPTURE__V1__CAPTURE_RECORD__INIT;
    rec.offset_us = (transfer_now_ms() - C.started_ms) * 1000;
    rec.participant = (char *)participant;
    rec.frame.data = (uint8_t *)frame;
    rec.frame.len = len;
    rec.malformed = true;
    rec.msg_id = "";
    rec.payee = "";
    rec.reject_reason = "";
    write_record(&rec);
}

void recorder_flush(void)
{
    if (C.w != NULL && capture_flush(C.w) != 0)
        log_warn("event=capture_flush_failed");
}

void recorder_close(void)
{
    if (C.w == NULL)
        return;
    uint64_t n = capture_records_written(C.w);
    if (capture_close(C.w) != 0)
        log_error("event=capture_close_failed records=%llu", (unsigned long long)n);
    else
        log_info("event=capture_closed records=%llu", (unsigned long long)n);
    C.w = NULL;
    free(C.buf);
    C.buf = NULL;
    C.cap = 0;
}
