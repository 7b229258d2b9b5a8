/*
 * clock: the monotonic clock, for timeouts, rates and durations (never for
 * timestamps anyone else reads; those are CLOCK_REALTIME, see log.c).
 */
#ifndef SIKKA_CLOCK_H
#define SIKKA_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t mono_ms(void)
{
    return mono_us() / 1000;
}

#endif
