/*
 * position: a participant's position against the scheme, in paisa.
 *
 *   posted    the committed balance of its position account (credits minus
 *             debits since the last settlement), equal to the database's
 *   reserved  debits routed but not yet posted (>= 0)
 *   ndc       net debit cap: posted - reserved may never go below -ndc
 *
 * Pure arithmetic, every step overflow-checked. Owned by its participant.
 */
#ifndef SIKKA_POSITION_H
#define SIKKA_POSITION_H

#include <stdbool.h>
#include <stdint.h>

struct position {
    int64_t posted;
    int64_t reserved;
    int64_t ndc;
};

/* Reserves `amount` (> 0) when posted - reserved - amount >= -ndc.
 * Returns 0, or -1 (nothing changed) when it would cross the cap or overflow. */
int position_reserve(struct position *p, int64_t amount) __attribute__((warn_unused_result));

/* Gives back a reservation that will not be posted. */
void position_release(struct position *p, int64_t amount);

/* Adds a committed delta to posted (negative for debits). -1 on overflow. */
int position_post(struct position *p, int64_t delta) __attribute__((warn_unused_result));

/* Room left under the cap: posted - reserved + ndc (saturating). */
int64_t position_headroom(const struct position *p);

/* Share of the cap in use, 0..100+ (posted - reserved below zero, over ndc);
 * 0 when ndc is 0 and nothing is used, 100 when ndc is 0 and something is. */
int position_used_percent(const struct position *p);

#endif
