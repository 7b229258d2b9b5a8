#include "position.h"

#include "log.h"

int position_reserve(struct position *p, int64_t amount)
{
    int64_t reserved, exposure, floor_check;
    if (amount <= 0)
        return -1;
    if (__builtin_add_overflow(p->reserved, amount, &reserved))
        return -1;
    /* exposure = posted - reserved', must stay >= -ndc */
    if (__builtin_sub_overflow(p->posted, reserved, &exposure))
        return -1;
    if (__builtin_add_overflow(exposure, p->ndc, &floor_check))
        return -1;
    if (floor_check < 0)
        return -1;
    p->reserved = reserved;
    return 0;
}

void position_release(struct position *p, int64_t amount)
{
    if (amount < 0 || amount > p->reserved) {
        /* an invariant, not input: a release never exceeds what was reserved */
        log_error("event=position_release_mismatch reserved=%lld amount=%lld",
                  (long long)p->reserved, (long long)amount);
        p->reserved = 0;
        return;
    }
    p->reserved -= amount;
}

int position_post(struct position *p, int64_t delta)
{
    int64_t v;
    if (__builtin_add_overflow(p->posted, delta, &v))
        return -1;
    p->posted = v;
    return 0;
}

int64_t position_headroom(const struct position *p)
{
    int64_t e, h;
    if (__builtin_sub_overflow(p->posted, p->reserved, &e))
        return INT64_MIN;
    if (__builtin_add_overflow(e, p->ndc, &h))
        return e > 0 ? INT64_MAX : INT64_MIN;
    return h;
}

int position_used_percent(const struct position *p)
{
    int64_t e;
    if (__builtin_sub_overflow(p->posted, p->reserved, &e))
        return 100;
    if (e >= 0)
        return 0;
    if (p->ndc == 0)
        return 100;
    /* -e / ndc * 100 without overflow: both are positive int64 */
    __int128 used = -(__int128)e * 100 / p->ndc;
    return used > 1000 ? 1000 : (int)used;
}
