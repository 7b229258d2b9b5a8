/*
 * gen: turns a scenario into capture records (proto/capture.proto), one at
 * a time, deterministically: the same scenario and seed give the same
 * records byte for byte (the PRNG is xoshiro256** seeded by splitmix64, and
 * no clock is read).
 *
 * Every transfer gets a unique msg_id "<seed in base 36>-<record number>"
 * (at most 23 bytes, leaving room for the suffixes sikka-replay run adds
 * when it loops); a retry resends one of the last GEN_RETRY_WINDOW transfers
 * byte for byte with retry=true. A malformed record holds bytes that are
 * not a valid Envelope (an invalid wire type up front) and no msg_id.
 *
 * A struct gen is owned by its creator; the record gen_next() returns and
 * everything it points at belong to the gen and stay valid until the next
 * call.
 */
#ifndef SIKKA_GEN_H
#define SIKKA_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "capture.h"
#include "scenario.h"

#define GEN_RETRY_WINDOW 256

struct gen;

/* Validates s (copied) and prepares the generator. */
struct gen *gen_new(const struct scenario *s, char *err, size_t errlen);
void gen_free(struct gen *g);

/* The capture header for this scenario (owned by the gen). */
const CaptureHeader *gen_header(struct gen *g);

/* The next record, or NULL once s->count records were made (or on an
 * internal failure, then logged). */
const CaptureRecord *gen_next(struct gen *g);

/* Writes the whole capture to path. */
int gen_write_file(const struct scenario *s, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
