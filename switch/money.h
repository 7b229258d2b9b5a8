/*
 * money: amounts as people write them and as Sikka keeps them. Every amount
 * is int64 paisa (1 PKR = 100 paisa); text is rupees with at most two
 * decimals ("1500", "1500.5", "1500.00"). No floating point anywhere, every
 * step overflow-checked. Shared by the switch (CSV reports) and its tools.
 */
#ifndef SIKKA_MONEY_H
#define SIKKA_MONEY_H

#include <stddef.h>
#include <stdint.h>

/* "1500.00" -> 150000. Decimal digits, an optional '.' and at most two
 * more digits; no sign, exponent or spaces; refuses what does not fit. */
int money_parse(const char *text, int64_t *paisa, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* 150000 -> "1500.00" (negative amounts get a '-'). Returns buf. */
const char *money_format(int64_t paisa, char *buf, size_t len);

/* A positive decimal id (transfer, window) that fits int64, digits only. */
int money_parse_id(const char *text, int64_t *out) __attribute__((warn_unused_result));

#endif
