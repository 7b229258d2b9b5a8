/*
 * participant: the registry of scheme participants (wallets, banks, BNPL
 * lenders) as the running switch knows them: status, net debit cap, ledger
 * accounts, position, and the sessions currently connected for each.
 *
 * The registry owns every struct participant; they live until the process
 * exits (participants are suspended, never removed). Loaded from the
 * database at start; changed by the admin API after the database agreed.
 */
#ifndef SIKKA_PARTICIPANT_H
#define SIKKA_PARTICIPANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bucket.h"
#include "hmap.h"
#include "position.h"

#define PARTICIPANT_CODE_LEN 4

enum participant_status {
    PARTICIPANT_ACTIVE = 0,
    PARTICIPANT_SUSPENDED,
};

struct session;

struct participant {
    char code[PARTICIPANT_CODE_LEN + 1];
    char name[141];
    char kind[16];  /* wallet, bank, bnpl */
    unsigned index; /* order of registration from 0, for the life of the process
                     * (participants are never removed): metrics' arrays */
    enum participant_status status;
    struct position pos;
    int64_t position_account; /* ledger account ids */
    int64_t settlement_account;
    bool cap_warned; /* warning threshold crossed, logged once */
    /* A lowered cap applies to new reservations at once; payments reserved
     * under the old one still post: the database keeps the old cap as a
     * grace (schema/004) until the switch says the last of them is through. */
    uint32_t cap_epoch;        /* bumped by every lowering */
    uint32_t reservations;     /* reservations in flight */
    uint32_t old_reservations; /* of those, made before the latest lowering */
    int64_t ndc_grace;         /* the database's grace, -1 when none */
    bool grace_shrunk;         /* ended once; kept at the exposure until within the cap */
    bool grace_call_inflight;
    struct bucket messages;   /* credit transfers and returns it may send */
    struct bucket frames;     /* frames of any kind, all its sessions together */
    struct session *sessions; /* active sessions, linked by session */
    unsigned nsessions;
    unsigned rr; /* round robin over sessions */
    struct hnode node;
};

int participant_registry_init(void) __attribute__((warn_unused_result));
void participant_registry_free(void);

/* A 4-letter uppercase code? */
bool participant_code_valid(const char *code);

struct participant *participant_find(const char *code);

/* Adds (or returns the existing) participant; NULL on bad code or OOM. */
struct participant *participant_add(const char *code, const char *name, const char *kind);

/* All participants, sorted by code; valid until the next participant_add. */
struct participant *const *participant_all(size_t *count);

/* A new cap, in memory: a lower one for new reservations only (those in
 * flight become "old", posted under the grace). Returns true when lowered. */
bool participant_set_ndc(struct participant *p, int64_t ndc);

/* Reserves `amount` on the position under the cap (position_reserve) and
 * counts it, stamped with the cap epoch. -1: over the cap, nothing held. */
int participant_reserve(struct participant *p, int64_t amount, uint32_t *epoch)
    __attribute__((warn_unused_result));
/* Gives back a reservation made at `epoch` (posted or abandoned). */
void participant_release(struct participant *p, int64_t amount, uint32_t epoch);

/* The database's grace may end now: no old reservation in flight, and not
 * already shrunk to an exposure still beyond the cap. */
bool participant_grace_due(const struct participant *p);

const char *participant_status_name(enum participant_status s);
int participant_parse_status(const char *s, enum participant_status *out)
    __attribute__((warn_unused_result));

#endif
