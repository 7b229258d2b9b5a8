/*
 * rtp: requests to pay (ISO 20022 pain.013 / pain.014), RTP Now and RTP
 * Later, and the scheme's consumer guards.
 *
 * A creditor's participant sends RequestToPay; the switch checks it, lets the
 * database decide the counting guards and record it (schema/009,
 * request_create), and delivers it to the debtor's participant at once (Now)
 * or on its due date outside the quiet hours (Later). The debtor's
 * participant accepts or declines (RequestDecision); the creditor's may
 * cancel (RequestCancel); a timer expires it. Every change is written first
 * and then reported to both sides (RequestStatus). An accepted request is paid
 * by a CreditTransfer naming it: the router hands such a transfer to
 * rtp_bind_payment before routing it, and its outcome to rtp_payment_done.
 *
 * The database is the final word on every move (a move it refuses is not
 * made here either); this module holds the open requests (pending,
 * delivered, accepted) in memory with one timer each, reloaded at start, so
 * RTP Later and expiry survive a restart.
 *
 * Owns every struct rtp_req (a hash map by id plus a list). Sessions are
 * referred to by participant code, never by pointer. Loop thread only.
 */
#ifndef SIKKA_RTP_H
#define SIKKA_RTP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "pgconn.h"

struct session;
struct transfer;

#define RTP_PKT_OFFSET_S   (5 * 3600) /* Pakistan time: UTC+5, no daylight saving */
#define RTP_DEBTOR_MAX     64         /* bytes of RequestToPay.debtor */
#define RTP_LIST_MAX       100        /* requests in one RequestControl LIST answer */
#define RTP_LATER_MAX_DAYS 366        /* how far ahead a due date may be */

/* The guards of one purpose (schema/009 request_rules). */
struct rtp_rule {
    bool loaded;
    int64_t max_open_per_pair;
    int64_t max_per_reference;
    int64_t quiet_start_s; /* seconds after midnight, Pakistan time */
    int64_t quiet_end_s;   /* == quiet_start_s: no quiet hours */
    int64_t default_expiry_s;
    int64_t max_expiry_s;
};

/* ---- pure logic (tests/unit/test_rtp.c) ---- */

/* true when now_ms (Unix ms) falls in the rule's quiet hours. */
bool rtp_in_quiet_hours(const struct rtp_rule *r, int64_t now_ms);
/* The first moment at or after t_ms outside the quiet hours. */
int64_t rtp_after_quiet_hours(const struct rtp_rule *r, int64_t t_ms);
/* "YYYY-MM-DD" (a real calendar date) -> the Unix ms of its midnight in
 * Pakistan time. Returns 0, or -1 when it is not such a date. */
int rtp_parse_due_date(const char *s, int64_t *midnight_ms) __attribute__((warn_unused_result));
/* When an RTP Later for the day starting at midnight_ms is delivered: that
 * midnight or now, whichever is later, moved past the quiet hours. */
int64_t rtp_later_deliver_ms(const struct rtp_rule *r, int64_t midnight_ms, int64_t now_ms);
/* The debtor as a request names it, resolved to a participant code and an
 * account: "ACCOUNT@CODE", or an alias (Raast ID: a mobile number or CNIC)
 * looked up in the directory (alias.h) for `caller`, the creditor agent.
 * Returns 0, or -1 with a reason code and text (FF01 malformed, BE23 an
 * alias nobody registered). */
int rtp_resolve_debtor(const char *caller, const char *debtor, char agent[5], char account[35],
                       char reason[5], char *text, size_t textlen)
    __attribute__((warn_unused_result));
/* Checks a RequestToPay's strings and the parts that need no state (FF01 /
 * FF03 with text naming the field). Returns 0, or -1 with reason and text. */
int rtp_check_request(const Sikka__V1__RequestToPay *m, char reason[5], char *text, size_t textlen)
    __attribute__((warn_unused_result));
const char *rtp_state_name(Sikka__V1__RequestState s);

/* ---- the service ---- */

/* `db` runs the requests' statements (sql.c); boot_id binds payments to
 * this process (request_bind_payment). */
int rtp_init(struct event_base *base, uint32_t boot_id, struct pgconn *db)
    __attribute__((warn_unused_result));
/* Reads the rules and the open requests (once the database is ready); until
 * it has, requests are turned away retryably. */
void rtp_load(void);
void rtp_free(void);

/* A participant's session opened: the requests delivered to it and not
 * answered yet are delivered again on it (the participant deduplicates by
 * request_id), so a debtor agent that was away when one was delivered
 * still gets it. */
void rtp_session_open(struct session *s);

/* Frames of the request service from an active participant's session. */
void rtp_on_frame(struct session *s, const Envelope *env);

/* The router's hook for a CreditTransfer with request_id: binds it to the
 * request and then calls done(t, NULL, NULL) to route it, or done(t, reason,
 * text) to reject it. */
typedef void (*rtp_bound_cb)(struct transfer *t, const char *reason, const char *text);
void rtp_bind_payment(struct transfer *t, rtp_bound_cb done);
/* A transfer with request_id is finished: settled (the request is paid,
 * which the posting recorded) or not (it may be paid again). */
void rtp_payment_done(const struct transfer *t, bool settled);

#endif
