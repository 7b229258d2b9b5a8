/*
 * capture: reading and writing Sikka capture files (proto/capture.proto):
 * the format sikka-replay generates and replays and sikka-switch records.
 *
 * The writer buffers through stdio; the switch uses it on its loop only
 * when recording is switched on (a capture is a debugging and load-testing
 * aid, not part of the payment path). The reader streams records one at a
 * time with bounded memory. Each struct capture_* is owned by its opener.
 */
#ifndef SIKKA_CAPTURE_H
#define SIKKA_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "capture.pb-c.h"

#define CAPTURE_MAGIC      "SKCAPv1\n"
#define CAPTURE_VERSION    1
#define CAPTURE_MAX_RECORD (1 << 20)

typedef Sikka__Capture__V1__CaptureHeader CaptureHeader;
typedef Sikka__Capture__V1__CaptureRecord CaptureRecord;

struct capture_writer;
struct capture_reader;

/* Creates (truncates) path and writes the magic and the header. */
struct capture_writer *capture_create(const char *path, const CaptureHeader *header, char *err,
                                      size_t errlen);
int capture_write(struct capture_writer *w, const CaptureRecord *rec)
    __attribute__((warn_unused_result));
int capture_flush(struct capture_writer *w) __attribute__((warn_unused_result));
/* Flushes and closes; returns -1 if anything failed to reach the file. */
int capture_close(struct capture_writer *w);
uint64_t capture_records_written(const struct capture_writer *w);

/* Opens path and reads the header (returned, owned by the reader). */
struct capture_reader *capture_open(const char *path, char *err, size_t errlen);
/* The same from a stream open for reading (a file, fmemopen), named path
 * in messages. The reader owns f from here on, even when this fails. */
struct capture_reader *capture_open_stream(FILE *f, const char *path, char *err, size_t errlen);
const CaptureHeader *capture_header(const struct capture_reader *r);
/* The next record (valid until the next call), NULL at the end; *err set
 * when the file is damaged rather than finished. */
const CaptureRecord *capture_next(struct capture_reader *r, char *err, size_t errlen);
void capture_close_reader(struct capture_reader *r);

#endif
