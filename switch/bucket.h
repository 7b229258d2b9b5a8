/*
 * bucket: a token bucket for rate limits, in integer millionths of a token
 * (no floating point): `rate` tokens a second refill, up to `burst` whole
 * tokens. Used for a participant's transfers and frames and a session's
 * frames. Pure arithmetic, overflow-checked; the caller owns the struct and
 * passes a monotonic time in microseconds.
 */
#ifndef SIKKA_BUCKET_H
#define SIKKA_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct bucket {
    int64_t tokens; /* millionths; a fresh (zeroed) bucket starts full */
    int64_t at_us;  /* when it was last refilled; 0: never */
};

/* Refills for the time since the last call, then takes one token: false
 * (nothing taken) when less than one is there. */
bool bucket_take(struct bucket *b, int64_t now_us, int64_t rate, int64_t burst);

/* Microseconds until `n` whole tokens are there (at most the burst). */
int64_t bucket_wait_us(const struct bucket *b, int64_t rate, int64_t burst, int64_t n);

#endif
