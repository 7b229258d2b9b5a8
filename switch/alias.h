/*
 * alias: the alias directory (Raast ID). Who holds which alias — a Pakistani
 * mobile number or a 13-digit CNIC — for which of its accounts, under which
 * (masked) name; registration, update, deregistration and porting between
 * participants (AliasRequest / AliasResponse, proto/sikka.proto); lookups
 * for confirmation of payee; and the resolution of a payment's
 * creditor_alias into the real creditor agent and account.
 *
 * Pure part (any thread, no state): normalising an alias as a peer or a user
 * writes it (03001234567, +923001234567, 923001234567 -> 923001234567;
 * 12345-1234567-1 -> 1234512345671), masking a holder's name ("Muhammad Ali
 * Khan" -> "M*** A*** K***") and an alias for a log line.
 *
 * Directory part (the loop's thread): the module owns an in-memory index
 * (hmap by canonical alias; one malloc per alias holding its account and its
 * masked name — the full name stays in the database), loaded at start from
 * schema/008's `aliases` (alias_load, a COPY stream: a million aliases in a
 * few seconds and about a hundred MB) and changed only after a SECURITY
 * DEFINER function of 008 has answered (the database is the final word; the
 * answers come back in order on one connection, so the index follows the
 * database's order of changes). Lookups never touch the database.
 *
 * Privacy: an answer to a participant carries another participant's
 * customer's name masked and never its account; the account is in answers
 * to the holder only. Lookups are rate-limited per participant
 * (alias_lookup_rate, alias_lookup_burst: a MessageReject with retry beyond)
 * and each is logged with the alias masked. Every change is audited in the
 * database (alias_audit).
 *
 * Ports: a participant asks for another's alias (ALIAS_PORT); it moves when
 * the owner releases it (ALIAS_RELEASE or ALIAS_DEREGISTER) or once
 * alias_port_expiry_s have passed (the module calls alias_expire_ports()
 * when one is due). Both participants are told (ALIAS_NOTICE) when
 * connected; a lookup tells anyone the current state.
 */
#ifndef SIKKA_ALIAS_H
#define SIKKA_ALIAS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops.h"
#include "pgconn.h"
#include "sikka.pb-c.h"
#include "transfer.h"

#define ALIAS_TEXT_MAX    40  /* bytes: an alias as a peer or user may write it */
#define ALIAS_MAX         13  /* bytes: canonical, 12 digits (mobile) or 13 (CNIC) */
#define ALIAS_NAME_MAX    140 /* characters: the holder's name (ISO 20022 Max140Text) */
#define ALIAS_ACCOUNT_MAX 34  /* bytes, as a transfer's accounts */
#define ALIAS_MASKED_MAX  64  /* bytes of a masked name (its first words) */
#define ALIAS_MASK_WORDS  6   /* words of a name a mask shows */
#define ALIAS_REQUEST_MAX 35  /* bytes: AliasRequest.request_id */

struct session;

_Static_assert(ALIAS_MAX <= TRANSFER_ALIAS_MAX, "a canonical alias fits struct transfer");
_Static_assert(ALIAS_MASKED_MAX <= TRANSFER_MASKED_MAX, "a masked name fits struct transfer");

/* ---- pure ---- */

/* Normalises text (as written by a peer or a user) to its canonical form in
 * out: a mobile number 03XXXXXXXXX, +923XXXXXXXXX or 923XXXXXXXXX becomes
 * 923XXXXXXXXX; a CNIC of 13 digits, bare or as 12345-1234567-1, its 13
 * digits. `want` SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_UNSPECIFIED accepts
 * either; a given type must match the shape. *type gets the kind found.
 * Returns 0, or -1 with err saying what is accepted (nothing else is: no
 * blanks, no other separators, no other country). */
int alias_normalize(const char *text, Sikka__V1__AliasType want, char out[ALIAS_MAX + 1],
                    Sikka__V1__AliasType *type, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The type of a canonical alias (by its length). */
Sikka__V1__AliasType alias_type_of(const char *canonical);

/* "mobile" or "cnic" (the database's alias_type), "" for anything else. */
const char *alias_type_name(Sikka__V1__AliasType type);

/* Masks a holder's name for confirmation of payee: each of its first
 * ALIAS_MASK_WORDS words (separated by blanks) as its first character and
 * "***" ("Muhammad Ali Khan" -> "M*** A*** K***"; Urdu keeps its first
 * letter the same way), " ..." when more words follow. name must be valid
 * UTF-8; out gets at most ALIAS_MASKED_MAX bytes (len > ALIAS_MASKED_MAX). */
void alias_mask_name(const char *name, char *out, size_t len);

/* A canonical alias for a log line: every digit but the last four starred
 * ("********4567"). Returns buf. */
const char *alias_mask(const char *canonical, char *buf, size_t len);

/* Checks a holder's name from a peer: valid UTF-8, no control character,
 * 1..ALIAS_NAME_MAX characters and not only blanks. 0, or -1 with err
 * naming `field`. */
int alias_check_name(const char *field, const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* ---- the directory ---- */

struct alias_options {
    int64_t lookup_rate;  /* lookups a second per participant */
    int64_t lookup_burst; /* above the rate, at once */
    int64_t port_expiry_s;
};

/* Loads every alias from the database (blocking, before the loop serves;
 * a COPY stream, so memory stays flat). Replaces what was loaded before.
 * Participants must be registered (participant_add) first. Returns 0, or
 * -1 with err. *count and *ms (may be NULL) get what was loaded and how long
 * it took. */
int alias_load(const char *conninfo, size_t *count, int64_t *ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* `db` takes the changes (participants' requests); `query` the operators'
 * list. */
int alias_init(struct event_base *base, struct pgconn *db, struct pgconn *query)
    __attribute__((warn_unused_result));
void alias_configure(const struct alias_options *opts);
void alias_free(void);

/* Aliases in the index. */
size_t alias_count(void);

/* An AliasRequest from s (a session of an active participant): answered
 * with an AliasResponse (or a MessageReject with retry when s is over its
 * lookup rate or the directory cannot be written now). */
void alias_on_request(struct session *s, const Sikka__V1__AliasRequest *rq);

/* What an alias resolves to, for the switch's own use (a payment's
 * creditor). `account` is the holder's customer's account: forward it to
 * the holder, never show it to anyone else. */
struct alias_target {
    char alias[ALIAS_MAX + 1]; /* canonical */
    char participant[5];       /* the holder's code */
    char account[ALIAS_ACCOUNT_MAX + 1];
    char masked_name[ALIAS_MASKED_MAX + 1];
};

/* Resolves `text` (any accepted form) for participant `caller` (its code,
 * for the log line): 0 with out filled; -1 with reason "FF01" (not an
 * alias: text says why, naming `field`) or "BE23" (no account registered
 * for it). Not rate-limited: the caller's own limits apply (a payment is
 * counted as a payment). Logged at debug. */
int alias_resolve(const char *caller, const char *field, const char *text, struct alias_target *out,
                  char reason[5], char *err, size_t errlen) __attribute__((warn_unused_result));

/* GET /api/v1/aliases: the directory as the database holds it, ordered by
 * alias, `limit` (1..1000) rows after `after` ("" from the start), only
 * `participant`'s when not "". Names and accounts masked, aliases shown
 * with their last four digits; {"aliases": [...], "next": alias or null}. */
void alias_admin_list(const char *participant, const char *after, int limit, ops_done done,
                      void *arg);

#endif
