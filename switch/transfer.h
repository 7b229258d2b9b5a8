/*
 * transfer: one credit transfer (or return) in flight through the switch,
 * and the pure logic on it: copying and checking a received message, the
 * request fingerprint, reason codes. The router owns every struct transfer
 * from the message that created it until its outcome has been sent; they
 * come from a free list, so routing allocates nothing per message.
 */
#ifndef SIKKA_TRANSFER_H
#define SIKKA_TRANSFER_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sikka.pb-c.h"
#include "text.h"

/* What a peer may send (proto/sikka.proto says the same). Every string is
 * valid UTF-8 without control characters (text.h). Identifiers and accounts
 * count bytes, so their buffers and the ledger's key columns hold them as
 * they are; names and narratives count characters (ISO 20022 Max140Text),
 * up to TEXT_MAX_CHAR_BYTES bytes each, and their buffers hold the bytes. */
#define TRANSFER_ID_MAX         35  /* bytes: msg_id, end_to_end_id, loan_id, ... */
#define TRANSFER_ACCOUNT_MAX    34  /* bytes: debtor_account, creditor_account */
#define TRANSFER_TEXT_MAX       140 /* characters: names, remittance and decision/return text */
#define TRANSFER_TEXT_BYTES     (TRANSFER_TEXT_MAX * TEXT_MAX_CHAR_BYTES)
#define TRANSFER_REASON_MAX     4
#define TRANSFER_CURRENCY_LEN   3         /* ISO 4217: three uppercase letters */
#define TRANSFER_INSTALMENT_MAX INT32_MAX /* the ledger's integer column */
#define TRANSFER_LEDGER_ID_MAX  INT64_MAX /* the ledger's bigint ids */
#define TRANSFER_FP_LEN         32
#define TRANSFER_WAITERS        8 /* retries that may attach to one transfer */

/* pay by alias: a canonical alias and a masked name (alias.h ALIAS_MAX and
 * ALIAS_MASKED_MAX, which must not exceed these) */
#define TRANSFER_ALIAS_MAX  13
#define TRANSFER_MASKED_MAX 64

enum transfer_kind {
    TRANSFER_KIND_TRANSFER = 0,
    TRANSFER_KIND_RETURN,
};

enum transfer_state {
    TRANSFER_NEW = 0,        /* received, being checked */
    TRANSFER_AWAITING_PAYEE, /* forwarded, payee's decision pending */
    TRANSFER_POSTING,        /* outcome decided, in a ledger batch */
    TRANSFER_DONE,           /* durable; outcome sent */
};

enum transfer_status {
    TRANSFER_PENDING = 0,
    TRANSFER_ACSC,
    TRANSFER_RJCT,
};

struct idem_entry;

struct transfer {
    uint64_t id;
    enum transfer_kind kind;
    enum transfer_state state;
    enum transfer_status status;
    char payer[5];
    char payee[5];
    char msg_id[TRANSFER_ID_MAX + 1];
    char end_to_end_id[TRANSFER_ID_MAX + 1];
    char debtor_account[TRANSFER_ACCOUNT_MAX + 1];
    char creditor_account[TRANSFER_ACCOUNT_MAX + 1];
    char debtor_name[TRANSFER_TEXT_BYTES + 1];
    char creditor_name[TRANSFER_TEXT_BYTES + 1];
    /* pay by alias: the canonical alias the payer named ("" otherwise);
     * payee and creditor_account are filled from the directory by the
     * router, and creditor_masked with the holder's masked name */
    char creditor_alias[TRANSFER_ALIAS_MAX + 1];
    char creditor_masked[TRANSFER_MASKED_MAX + 1];
    char currency[TRANSFER_CURRENCY_LEN + 1]; /* as received if 3 letters, else "": AM03 */
    Sikka__V1__Purpose purpose;
    int64_t amount;
    int64_t fee;       /* charged to fee_payer, posted with the transfer */
    char fee_payer[5]; /* participant paying the fee, "" when none */
    char loan_id[TRANSFER_ID_MAX + 1];
    uint32_t instalment;
    char invoice_number[TRANSFER_ID_MAX + 1];
    char remittance_text[TRANSFER_TEXT_BYTES + 1];
    uint64_t original_id; /* returns: the transfer returned */
    char original_msg_id[TRANSFER_ID_MAX + 1];
    char return_reason[TRANSFER_REASON_MAX + 1]; /* returns only */
    uint64_t request_id;                         /* the request to pay it pays, or 0 */
    int64_t reserved_amount; /* held on the payer's position (amount + fee it pays) */
    uint32_t cap_epoch;      /* the payer's cap epoch when it was reserved */
    uint8_t fingerprint[TRANSFER_FP_LEN];
    int64_t received_ms;
    int64_t forwarded_ms; /* Unix ms: sent to its payee; 0 while the payee has not seen it */
    int64_t decided_ms;   /* Unix ms: its outcome decided, handed to the ledger */
    int64_t received_us;  /* monotonic: its frame was taken (metrics' end to end) */
    unsigned payer_index; /* the payer's participant index (metrics) */
    int64_t created_at_ms;
    int64_t settled_ms;
    char reason[TRANSFER_REASON_MAX + 1];
    /* at most TRANSFER_TEXT_MAX characters (transfer_set_reason) */
    char reason_text[TRANSFER_TEXT_BYTES + 1];
    bool reserved;            /* amount held on the payer's position */
    bool return_counted;      /* a return counted against its original (router) */
    uint64_t payer_session;   /* session ids (0: none); a bulk item's reply id (bulk.h) */
    uint64_t counted_session; /* the session whose in-flight count holds it */
    uint64_t payee_session;
    uint64_t waiters[TRANSFER_WAITERS]; /* sessions whose retries attached */
    unsigned nwaiters;
    struct idem_entry *idem;
    struct event timer; /* payee timeout */
    bool timer_armed;
    int64_t queued_us;     /* when it joined the ledger queue (monotonic us) */
    struct transfer *next; /* ledger batch / free list link */
};

/* Copies a received CreditTransfer into t and checks the parts that need no
 * state: every string valid UTF-8 without control characters and within its
 * limit, instalment within the ledger's integer (FF01, text naming the
 * field), purpose (FF03), and that the debtor agent is the sender (RC01).
 * A currency that is not three uppercase letters is left "" for the router
 * to refuse (AM03, in DESIGN.md's order). A creditor_alias is checked and
 * normalised into t->creditor_alias (creditor_agent and creditor_account
 * must then be empty: FF01); the router resolves it. `sender` is the certificate's
 * code. Returns 0, or -1 with reason/text set. t->msg_id, t->end_to_end_id
 * and t->payee are set whenever the message had a usable one (even on
 * failure), so a rejection echoes only checked strings. */
int transfer_from_credit_transfer(struct transfer *t, const Sikka__V1__CreditTransfer *ct,
                                  const char *sender, char *reason, char *text, size_t textlen)
    __attribute__((warn_unused_result));

/* A purpose's fee rule (schema: fee_schedule). */
struct fee_rule {
    int32_t bps;     /* basis points of the amount */
    int64_t min_fee; /* paisa */
    int64_t max_fee; /* paisa */
    bool payee_pays; /* charged to the payee's participant, else the payer's */
};

/* amount * bps / 10000 rounded down, clamped to [min_fee, max_fee] and to
 * the amount itself; 0 for a rule of zeros. Integer arithmetic only. */
int64_t transfer_fee(int64_t amount, const struct fee_rule *rule);

/* Copies a received PaymentReturn (pacs.004) into t: FF01 checks only (the
 * same rules as a transfer's); the original transfer is checked against the
 * ledger by the router. */
int transfer_from_return(struct transfer *t, const Sikka__V1__PaymentReturn *pr, const char *sender,
                         char *reason, char *text, size_t textlen)
    __attribute__((warn_unused_result));

/* A CreditTransfer envelope built from t, every part held in the struct so
 * the message lives exactly as long as it does (nothing is allocated). */
struct transfer_wire {
    Sikka__V1__Envelope env;
    Sikka__V1__CreditTransfer ct;
    Sikka__V1__Remittance rmt;
    Sikka__V1__LoanInstalment loan;
    Sikka__V1__Invoice invoice;
};

/* Fills w from t; `transfer_id` is 0 for the payer's view, t->id when
 * forwarding to the payee. w must not be moved afterwards. */
void transfer_to_wire(const struct transfer *t, uint64_t transfer_id, struct transfer_wire *w);

/* SHA-256 over the business fields (not names, not timestamps). */
void transfer_fingerprint(const struct transfer *t, uint8_t out[TRANSFER_FP_LEN]);

const char *transfer_purpose_name(Sikka__V1__Purpose p);
int transfer_parse_purpose(const char *name, Sikka__V1__Purpose *out)
    __attribute__((warn_unused_result));
const char *transfer_status_name(enum transfer_status s);
const char *transfer_state_name(enum transfer_state s);

/* Sets t's reason code and its text, formatted from fmt and cut to
 * TRANSFER_TEXT_MAX characters on a character boundary: the text may quote
 * a peer's (a payee's narrative behind the switch's own words), and what the
 * switch sends must stay valid UTF-8 within the limit. */
void transfer_set_reason(struct transfer *t, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void transfer_vset_reason(struct transfer *t, const char *reason, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* A reason code as the payee may send it: 4 uppercase letters/digits. */
bool transfer_reason_valid(const char *code);

/* Checks a PayeeDecision's strings: reason "" or a reason code, text within
 * TRANSFER_TEXT_MAX characters (FF01). Returns 0, or -1 with text set. */
int transfer_check_decision(const Sikka__V1__PayeeDecision *d, char *text, size_t textlen)
    __attribute__((warn_unused_result));

/* Checks a StatusQuery's strings: query_id 0..TRANSFER_ID_MAX bytes, msg_id
 * the same, and exactly one of msg_id or transfer_id (FF01). Returns 0, or -1
 * with text set. */
int transfer_check_query(const Sikka__V1__StatusQuery *q, char *text, size_t textlen)
    __attribute__((warn_unused_result));

/* Milliseconds since the Unix epoch. */
int64_t transfer_now_ms(void);

#endif
