#include "bucket.h"

#define UNIT 1000000

static int64_t capacity(int64_t burst)
{
    return burst > INT64_MAX / UNIT ? INT64_MAX : burst * UNIT;
}

bool bucket_take(struct bucket *b, int64_t now_us, int64_t rate, int64_t burst)
{
    int64_t cap = capacity(burst);
    if (b->at_us == 0) {
        b->tokens = cap;
    } else if (now_us > b->at_us) {
        int64_t elapsed = now_us - b->at_us, filled;
        if (elapsed > INT64_MAX / rate ||
            __builtin_add_overflow(b->tokens, elapsed * rate, &filled))
            filled = cap;
        b->tokens = filled > cap ? cap : filled;
    }
    b->at_us = now_us;
    if (b->tokens < UNIT)
        return false;
    b->tokens -= UNIT;
    return true;
}

int64_t bucket_wait_us(const struct bucket *b, int64_t rate, int64_t burst, int64_t n)
{
    int64_t cap = capacity(burst);
    int64_t want = n > INT64_MAX / UNIT ? cap : n * UNIT;
    if (want > cap)
        want = cap;
    if (b->tokens >= want)
        return 0;
    return (want - b->tokens + rate - 1) / rate;
}
