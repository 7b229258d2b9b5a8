/*
 * msg: the message helpers every participant-side tool shares — parsing what
 * a user types (amounts, parties, purposes, remittance references), naming
 * ISO 20022 reason codes, making message ids, and filling protobuf structs
 * ready for client_send().
 *
 * Amounts are int64 paisa end to end; nothing here touches floating point.
 *
 * The builders (struct msg_transfer, msg_decision, msg_heartbeat) hold their
 * strings and every protobuf struct they point at inside themselves, so they
 * can live on the stack and cost no malloc. The protobuf structs point into
 * the same object: a builder must not be copied or moved after its _init,
 * and its `env` is valid as long as the builder is.
 */
#ifndef SIKKA_MSG_H
#define SIKKA_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "money.h"

#define MSG_ID_MAX      35  /* ISO 20022 Max35Text: msg_id, end_to_end_id, loan id */
#define MSG_ACCOUNT_MAX 34  /* account identifiers */
#define MSG_TEXT_MAX    140 /* narrative text, names, unstructured remittance */
#define MSG_AGENT_LEN   4   /* participant codes: 4 uppercase letters */
#define MSG_REASON_MAX  4   /* ISO 20022 reason codes: AC01, NARR, ... */
#define MSG_AMOUNT_MAX  24  /* bytes money_format needs, NUL included */
#define MSG_ID_LEN      26  /* length of ids made by msg_new_msg_id */
#define MSG_ALIAS_MAX   40  /* bytes of an alias as written (the switch normalises it) */

/* Amounts: money_parse() and money_format() in money.h. */

/* "BNPL_REPAYMENT", "SUPPLIER_PAYMENT", "P2P" (case-insensitive) to the enum.
 * PURPOSE_UNSPECIFIED and unknown names are refused with -1. */
int msg_parse_purpose(const char *name, Sikka__V1__Purpose *out)
    __attribute__((warn_unused_result));

/* The enum's name as in the .proto ("P2P"); "UNKNOWN" for values this build
 * does not know. */
const char *msg_purpose_name(Sikka__V1__Purpose purpose);

/* true for 1..MSG_ACCOUNT_MAX printable ASCII characters without spaces or '@' */
bool msg_valid_account(const char *account);

/* true for exactly MSG_AGENT_LEN uppercase ASCII letters */
bool msg_valid_agent(const char *code);

/* true for a 4-character ISO 20022 reason code of uppercase letters and digits */
bool msg_valid_reason(const char *code);

/* Splits "ACCOUNT@CODE" (the last '@' separates them) into its account and
 * participant code, validating both. On failure writes why into err. */
int msg_parse_party(const char *text, char *account, size_t account_len, char *agent,
                    size_t agent_len, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Short English text for an ISO 20022 reason code Sikka uses; "" when the code
 * is unknown. Never NULL. */
const char *msg_reason_text(const char *code);

/* Writes a new message id into buf: MSG_ID_LEN characters, a ULID (48-bit
 * Unix time in ms, then 80 random bits from RAND_bytes, Crockford base32), so
 * ids sort by creation time and never repeat in practice. len must be at
 * least MSG_ID_LEN + 1. */
int msg_new_msg_id(char *buf, size_t len) __attribute__((warn_unused_result));

/* Unix time in milliseconds (CLOCK_REALTIME), for created_at_ms. */
int64_t msg_now_ms(void);

/* Structured remittance built from a --ref text. */
struct msg_remittance {
    char text[MSG_TEXT_MAX + 1];
    Sikka__V1__Remittance remittance;
    Sikka__V1__LoanInstalment loan;
    Sikka__V1__Invoice invoice;
};

/* Fills r from ref for the given purpose:
 *   BNPL_REPAYMENT   "LOANID/N": loan id (1..35 bytes) and instalment N >= 1;
 *   SUPPLIER_PAYMENT the invoice number (1..35 bytes);
 *   anything else    unstructured text (1..140 bytes).
 * On failure writes why into err. */
int msg_remittance_init(struct msg_remittance *r, Sikka__V1__Purpose purpose, const char *ref,
                        char *err, size_t errlen) __attribute__((warn_unused_result));

/* What a payer's CreditTransfer is made of. Strings are copied. */
struct msg_transfer_fields {
    const char *msg_id;           /* required, 1..35 bytes */
    const char *end_to_end_id;    /* NULL or "": the msg_id */
    const char *debtor_agent;     /* our participant code */
    const char *debtor_account;   /* 1..34 */
    const char *creditor_agent;   /* payee participant code */
    const char *creditor_account; /* 1..34 */
    const char *creditor_alias;   /* pay by alias (a mobile number): then agent and
                                   * account NULL or "" */
    int64_t amount;               /* paisa; not range-checked here (the switch says AM02) */
    const char *currency;         /* NULL or "": "PKR" */
    Sikka__V1__Purpose purpose;
    const char *ref;       /* NULL or "": no remittance (msg_remittance_init) */
    int64_t created_at_ms; /* 0: now */
};

/* A CreditTransfer inside an Envelope, ready to send. */
struct msg_transfer {
    char msg_id[MSG_ID_MAX + 1];
    char end_to_end_id[MSG_ID_MAX + 1];
    char debtor_agent[MSG_AGENT_LEN + 1];
    char debtor_account[MSG_ACCOUNT_MAX + 1];
    char creditor_agent[MSG_AGENT_LEN + 1];
    char creditor_account[MSG_ACCOUNT_MAX + 1];
    char creditor_alias[MSG_ALIAS_MAX + 1];
    char currency[4];
    struct msg_remittance remittance;
    Sikka__V1__CreditTransfer ct;
    Envelope env;
};

/* Validates f and fills t. On failure writes why into err (naming the field). */
int msg_transfer_init(struct msg_transfer *t, const struct msg_transfer_fields *f, char *err,
                      size_t errlen) __attribute__((warn_unused_result));

/* A payee's PayeeDecision inside an Envelope. */
struct msg_decision {
    char reason[MSG_REASON_MAX + 1];
    char text[MSG_TEXT_MAX + 1];
    Sikka__V1__PayeeDecision decision;
    Envelope env;
};

/* accept: reason and text are ignored. Reject: reason must be a valid code;
 * text may be NULL (then msg_reason_text(reason) is sent). */
int msg_decision_init(struct msg_decision *d, uint64_t transfer_id, bool accept, const char *reason,
                      const char *text, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A Heartbeat inside an Envelope. */
struct msg_heartbeat {
    Sikka__V1__Heartbeat heartbeat;
    Envelope env;
};

void msg_heartbeat_init(struct msg_heartbeat *h, uint64_t nonce, bool reply);

/* An AliasRequest inside an Envelope (the alias directory): account and
 * name NULL or "" for deregister, lookup and release. Only bounded here;
 * the switch checks and normalises (FF01 names the field). */
struct msg_alias {
    char request_id[MSG_ID_MAX + 1];
    char alias[MSG_ALIAS_MAX + 1];
    char account[MSG_ACCOUNT_MAX + 1];
    char name[4 * MSG_TEXT_MAX + 16]; /* 140 characters of up to 4 bytes, and a little
                                       * more so that too long reaches the switch */
    Sikka__V1__AliasRequest request;
    Envelope env;
};
int msg_alias_init(struct msg_alias *a, const char *request_id, Sikka__V1__AliasOp op,
                   const char *alias, const char *account, const char *name, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

#endif
