/*
 * idem: the in-memory idempotency index. One entry per key (payer
 * participant, msg_id), found by key or by transfer id. While the transfer
 * is in flight the entry points at it (retries attach there); once it is
 * durable the entry keeps a compact copy of the outcome so a retry gets the
 * same answer without touching the database. Finished entries are evicted
 * oldest first past a count or an age; the database's unique key stays the
 * final word for anything evicted (see post_batch in schema/).
 *
 * Owns its entries (from a free list). Single-threaded.
 */
#ifndef SIKKA_IDEM_H
#define SIKKA_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "transfer.h"

struct idem_entry {
    struct hnode by_key;
    struct hnode by_id;
    struct idem_entry *older, *newer; /* finished entries, oldest first */
    char payer[5];
    char msg_id[TRANSFER_ID_MAX + 1];
    uint8_t fingerprint[TRANSFER_FP_LEN];
    uint64_t transfer_id;
    struct transfer *inflight; /* NULL once finished */
    /* outcome, once finished */
    enum transfer_kind kind;
    enum transfer_status status;
    char reason[TRANSFER_REASON_MAX + 1];
    char payee[5];
    char end_to_end_id[TRANSFER_ID_MAX + 1];
    int64_t amount;
    int64_t fee;       /* the fee the transfer carried (returns: refunded) */
    char fee_payer[5]; /* who bore it (returns: who got the refund), "" */
    uint64_t original_id;
    int64_t finished_ms; /* when the ledger recorded it (Unix ms) */
    char *reason_text;   /* the rejection's text; owned, NULL when empty */
};

int idem_init(size_t max_finished, int64_t max_age_ms) __attribute__((warn_unused_result));
void idem_set_limits(size_t max_finished, int64_t max_age_ms);
void idem_free_all(void);

struct idem_entry *idem_find(const char *payer, const char *msg_id);
struct idem_entry *idem_find_id(uint64_t transfer_id);

/* Indexes an in-flight transfer under its key and id. NULL on OOM. */
struct idem_entry *idem_add_inflight(struct transfer *t);

/* Records t's outcome in its entry and detaches the transfer. */
void idem_finish(struct idem_entry *e, const struct transfer *t);

/* Adds a finished entry (start-up preload, or a key the database knew);
 * outcome->reason_text is copied. */
struct idem_entry *idem_add_finished(const struct idem_entry *outcome);

/* Drops an entry that must not remain (e.g. its transfer never got a
 * durable outcome because the key belonged to an older transfer). */
void idem_remove(struct idem_entry *e);

/* Evicts finished entries beyond the limits; now_ms is the current time. */
void idem_evict(int64_t now_ms);

size_t idem_count(void);
size_t idem_finished_count(void);

#endif
