#include "capture.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct capture_writer {
    FILE *f;
    char *path;
    uint8_t *buf;
    size_t cap;
    uint64_t records;
    bool failed;
};

struct capture_reader {
    FILE *f;
    CaptureHeader *header;
    CaptureRecord *record;
    uint8_t *buf;
    size_t cap;
};

static int put_frame(struct capture_writer *w, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > CAPTURE_MAX_RECORD) {
        log_error("event=capture_write_failed path=%s why=\"record of %zu bytes too large\"",
                  w->path, n);
        return -1;
    }
    if (n + 4 > w->cap) {
        uint8_t *nb = realloc(w->buf, n + 4);
        if (nb == NULL) {
            log_error("event=oom what=capture_buffer bytes=%zu", n);
            return -1;
        }
        w->buf = nb;
        w->cap = n + 4;
    }
    w->buf[0] = (uint8_t)(n >> 24);
    w->buf[1] = (uint8_t)(n >> 16);
    w->buf[2] = (uint8_t)(n >> 8);
    w->buf[3] = (uint8_t)n;
    protobuf_c_message_pack(m, w->buf + 4);
    if (fwrite(w->buf, 1, n + 4, w->f) != n + 4) {
        if (!w->failed)
            log_error("event=capture_write_failed path=%s why=\"%s\"", w->path, strerror(errno));
        w->failed = true;
        return -1;
    }
    return 0;
}

struct capture_writer *capture_create(const char *path, const CaptureHeader *header, char *err,
                                      size_t errlen)
{
    struct capture_writer *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->path = strdup(path);
    w->f = fopen(path, "wb");
    if (w->f == NULL || w->path == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (fwrite(CAPTURE_MAGIC, 1, 8, w->f) != 8 || put_frame(w, &header->base) != 0) {
        snprintf(err, errlen, "%s: cannot write the header: %s", path, strerror(errno));
        goto fail;
    }
    return w;
fail:
    if (w->f != NULL)
        fclose(w->f);
    free(w->path);
    free(w);
    return NULL;
}

int capture_write(struct capture_writer *w, const CaptureRecord *rec)
{
    if (put_frame(w, &rec->base) != 0)
        return -1;
    w->records++;
    return 0;
}

int capture_flush(struct capture_writer *w)
{
    if (fflush(w->f) != 0) {
        log_error("event=capture_flush_failed path=%s why=\"%s\"", w->path, strerror(errno));
        return -1;
    }
    return 0;
}

uint64_t capture_records_written(const struct capture_writer *w)
{
    return w->records;
}

int capture_close(struct capture_writer *w)
{
    if (w == NULL)
        return 0;
    int rc = w->failed ? -1 : 0;
    if (fclose(w->f) != 0) {
        log_error("event=capture_close_failed path=%s why=\"%s\"", w->path, strerror(errno));
        rc = -1;
    }
    free(w->buf);
    free(w->path);
    free(w);
    return rc;
}

/* Reads one length-prefixed frame into r->buf. 1: got one, 0: clean end,
 * -1: damaged. */
static int get_frame(struct capture_reader *r, size_t *len, char *err, size_t errlen)
{
    uint8_t hdr[4];
    size_t got = fread(hdr, 1, 4, r->f);
    if (got == 0 && feof(r->f))
        return 0;
    if (got != 4) {
        snprintf(err, errlen, "truncated record header");
        return -1;
    }
    size_t n = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
    if (n > CAPTURE_MAX_RECORD) {
        snprintf(err, errlen, "record of %zu bytes exceeds %d", n, CAPTURE_MAX_RECORD);
        return -1;
    }
    if (n > r->cap) {
        uint8_t *nb = realloc(r->buf, n ? n : 1);
        if (nb == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        r->buf = nb;
        r->cap = n;
    }
    if (fread(r->buf, 1, n, r->f) != n) {
        snprintf(err, errlen, "truncated record of %zu bytes", n);
        return -1;
    }
    *len = n;
    return 1;
}

struct capture_reader *capture_open(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    return capture_open_stream(f, path, err, errlen);
}

struct capture_reader *capture_open_stream(FILE *f, const char *path, char *err, size_t errlen)
{
    struct capture_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->f = f;
    char magic[8];
    if (fread(magic, 1, 8, r->f) != 8 || memcmp(magic, CAPTURE_MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s: not a Sikka capture file (bad magic)", path);
        goto fail;
    }
    size_t len;
    char why[128];
    if (get_frame(r, &len, why, sizeof(why)) != 1) {
        snprintf(err, errlen, "%s: no header", path);
        goto fail;
    }
    r->header = sikka__capture__v1__capture_header__unpack(NULL, len, r->buf);
    if (r->header == NULL) {
        snprintf(err, errlen, "%s: damaged header", path);
        goto fail;
    }
    if (r->header->version != CAPTURE_VERSION) {
        snprintf(err, errlen, "%s: capture version %u, this build reads %d", path,
                 r->header->version, CAPTURE_VERSION);
        goto fail;
    }
    return r;
fail:
    capture_close_reader(r);
    return NULL;
}

const CaptureHeader *capture_header(const struct capture_reader *r)
{
    return r->header;
}

const CaptureRecord *capture_next(struct capture_reader *r, char *err, size_t errlen)
{
    err[0] = '\0';
    if (r->record != NULL) {
        sikka__capture__v1__capture_record__free_unpacked(r->record, NULL);
        r->record = NULL;
    }
    size_t len;
    int rc = get_frame(r, &len, err, errlen);
    if (rc != 1)
        return NULL;
    r->record = sikka__capture__v1__capture_record__unpack(NULL, len, r->buf);
    if (r->record == NULL)
        snprintf(err, errlen, "damaged record of %zu bytes", len);
    return r->record;
}

void capture_close_reader(struct capture_reader *r)
{
    if (r == NULL)
        return;
    if (r->record != NULL)
        sikka__capture__v1__capture_record__free_unpacked(r->record, NULL);
    if (r->header != NULL)
        sikka__capture__v1__capture_header__free_unpacked(r->header, NULL);
    if (r->f != NULL)
        fclose(r->f);
    free(r->buf);
    free(r);
}
