/*
 * recovery: rebuilds the switch's state from the database at start, before
 * the event loop runs (the only blocking database access in the process):
 * participants with their accounts and positions (positions = the balances
 * the database derived from the entries), the open settlement window, the
 * scheme's accounts, the fee schedule, the recent idempotency keys, and a
 * new boot id.
 *
 * Whatever the switch held in memory when it died is either in these tables
 * (committed) or was never acknowledged to anyone.
 */
#ifndef SIKKA_RECOVERY_H
#define SIKKA_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "transfer.h"

struct recovery_result {
    uint32_t boot_id;
    int64_t window_id;
    int64_t fee_account;
    int64_t scheme_settlement_account;
    size_t participants;
    size_t keys;
    struct fee_rule fees[4]; /* by Sikka__V1__Purpose */
};

int recovery_load(const char *conninfo, int64_t key_seconds, int64_t key_max,
                  struct recovery_result *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
