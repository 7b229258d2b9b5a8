#include "clock.h"
#include "replay.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/event.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "capture.h"
#include "client.h"
#include "codec.h"
#include "log.h"
#include "msg.h"
#include "text.h"

#define RP_MAX_PARTICIPANTS    64
#define RP_NONE                UINT32_MAX
#define RP_TICK_MIN_US         200       /* the pacing timer never fires more often */
#define RP_TICK_MAX_US         50000     /* nor sleeps longer (so --duration ends on time) */
#define RP_SENDS_PER_TICK      2000      /* then let answers in before sending more */
#define RP_OUTPUT_CAP          (1 << 20) /* a session with this much unsent is backed up */
#define RP_SCRATCH             (CODEC_DEFAULT_MAX_FRAME + 64)
#define RP_DEFAULT_OUTSTANDING 200000
#define RP_RESEND_MIN_US       100000  /* a message sent again: after 100 ms, ... */
#define RP_RESEND_MAX_US       2000000 /* ... doubling per attempt up to 2 s */
#define RP_RESEND_TICK_US      20000   /* how often the resend queue is looked at */
#define RP_REOPEN_MIN_MS       100     /* a closed session: opened again after 100 ms, */
#define RP_REOPEN_MAX_MS       2000    /* doubling up to 2 s (jittered) */
#define RP_NOTICE_GRACE_S      5       /* all answered: wait this long for payee notices */
#define RP_NOTICED             1       /* notice table: the payee was notified ACSC */
#define RP_PAYER_ACSC          2       /* notice table: the payer saw ACSC */

enum rp_kind {
    RP_TRANSFER = 0,
    RP_MALFORMED,
};

/* One replayable record of the capture. The frames live in E.blob. */
struct rp_record {
    int64_t offset_us;
    int64_t amount;
    uint32_t seq;       /* position in the file: ties of offset_us keep it */
    uint32_t frame_off; /* the frame as recorded, 4-byte length included; kept */
    uint32_t frame_len; /* (len > 0) only when re-framing would not give it back */
    uint32_t rest_off;  /* transfers: the CreditTransfer packed without its msg_id */
    uint32_t rest_len;
    uint16_t payer; /* index into E.parts: the sending participant */
    uint8_t kind;   /* enum rp_kind */
    uint8_t action; /* Sikka__Capture__V1__PayeeAction */
    bool retry;
    char reason[MSG_REASON_MAX + 1];
    char msg_id[MSG_ID_MAX + 1];
};

/* One outstanding message. Owned by the table E.slots; free ones are chained
 * through `next`, as are those sharing a hash bucket and a session's
 * malformed frames awaiting their MessageReject. Messages waiting to be sent
 * (again) are also in the resend queue, doubly linked through rprev/rnext. */
struct rp_slot {
    int64_t due_us;
    int64_t sent_us;   /* the first send */
    int64_t resend_us; /* waiting: not before */
    uint32_t rec;
    uint32_t loop;
    uint32_t next;
    uint32_t session;
    uint32_t sess_epoch; /* the session's epoch when sent on it */
    uint32_t hash;
    uint32_t rprev, rnext;
    uint16_t attempts; /* times queued to be sent again */
    bool used;
    bool measured;
    bool waiting; /* in the resend queue, on no session */
    bool sent;    /* was written to a session at least once */
    char msg_id[MSG_ID_MAX + 1];
};

struct rp_participant {
    char code[MSG_AGENT_LEN + 1];
    SSL_CTX *ctx;
    struct client_notices *notices; /* shared by its sessions and their reconnections */
    char cert[4096], key[4096], ca[4096];
    uint32_t first_session;
    uint32_t nsessions;
    uint32_t rr;
};

/* One connection, opened again whenever it closes. Owns its client (NULL
 * between connections) and its reopen timer. */
struct rp_session {
    struct client *c;
    struct event *reopen;
    struct client_backoff backoff;
    uint16_t participant;
    uint16_t addr; /* index in E.addrs of the address it is (or was last) on */
    uint32_t index;
    uint32_t epoch;    /* connections opened so far: slots sent on an older one are orphans */
    bool connected;    /* TLS is up and the switch's welcome arrived */
    bool closed;       /* no connection, or one still connecting */
    bool was_ready;    /* some connection of it was ready once */
    uint32_t mal_head; /* FIFO of malformed frames awaiting their FF01 */
    uint32_t mal_tail;
};

enum rp_phase {
    RP_CONNECTING = 0,
    RP_RUNNING,
    RP_DRAINING,
    RP_DONE,
};

static struct {
    const struct replay_opts *o;
    struct replay_result *r;
    struct event_base *base;
    enum rp_phase phase;
    char abort_why[512];

    struct rp_participant parts[RP_MAX_PARTICIPANTS];
    size_t nparts;
    struct rp_session *sessions;
    size_t nsessions;
    size_t connected;

    struct rp_record *recs;
    size_t nrecs, recs_cap;
    uint8_t *blob;
    size_t blob_len, blob_cap;
    int64_t first_offset, span_us;

    struct client_addrs addrs; /* the switch addresses; current: the one that worked last */
    char last_close[1024];     /* why a session last closed */
    uint64_t rng;

    struct rp_slot *slots;
    uint32_t nslots;
    uint32_t free_head;
    uint32_t outstanding;
    uint32_t rq_head, rq_tail; /* the resend queue */

    /* transfer ids a payer saw settle and their payees were notified of */
    uint64_t *ntab_keys;
    uint8_t *ntab_flags;
    size_t ntab_cap, ntab_n;
    bool ntab_failed;
    uint64_t pending_notices; /* payer saw ACSC, payee not notified yet */
    uint64_t notice_repeats;  /* repeats past the client library's memory */
    bool notice_grace;        /* all answered; waiting for the last notices */
    int64_t last_acsc_us, last_acsc_wall_ms;
    uint32_t *buckets;
    uint32_t bucket_mask;

    char run_suffix[REPLAY_RUN_ID_MAX + 2];
    uint64_t next_k;
    uint64_t limit_k;
    int64_t t0_us, measure_us, stop_us;
    bool sending_done;
    int64_t first_send_us, last_send_us, last_answer_us;

    struct event *tick, *second, *deadline, *sigint, *sigterm, *resend, *sweep;
    struct hdr *interval;
    uint64_t sec_sent, sec_answered, sec_errors;
    size_t seconds_cap;
    FILE *results;
    uint8_t scratch[RP_SCRATCH];
} E;

const char *replay_mode_name(enum replay_mode m)
{
    switch (m) {
    case REPLAY_RATE:
        return "rate";
    case REPLAY_CLOSED:
        return "closed";
    default:
        return "speed";
    }
}

void replay_opts_defaults(struct replay_opts *o)
{
    memset(o, 0, sizeof(*o));
    char err[128];
    if (client_addrs_parse("127.0.0.1:7443", &o->addrs, err, sizeof(err)) != 0)
        log_error("event=defaults_failed why=\"%s\"", err); /* a constant: cannot happen */
    o->sessions = 1;
    o->mode = REPLAY_SPEED;
    o->speed = 1;
    o->drain_s = 10;
    o->connect_timeout_s = 15;
    o->run_id = "";
    o->live = true;
}

/* ---------------------------------------------------------------- loading */

static int participant_index(const char *code)
{
    for (size_t i = 0; i < E.nparts; i++)
        if (strcmp(E.parts[i].code, code) == 0)
            return (int)i;
    return -1;
}

static int participant_add(const char *code, char *err, size_t errlen)
{
    int i = participant_index(code);
    if (i >= 0)
        return i;
    if (!msg_valid_agent(code)) {
        snprintf(err, errlen, "capture names participant \"%s\", not a participant code", code);
        return -1;
    }
    if (E.nparts == RP_MAX_PARTICIPANTS) {
        snprintf(err, errlen, "capture names more than %d participants", RP_MAX_PARTICIPANTS);
        return -1;
    }
    memcpy(E.parts[E.nparts].code, code, MSG_AGENT_LEN + 1);
    return (int)E.nparts++;
}

/* Appends len bytes to the blob (load time only); returns their offset. */
static int blob_add(const void *data, size_t len, uint32_t *off, char *err, size_t errlen)
{
    if (E.blob_len + len > UINT32_MAX) {
        snprintf(err, errlen, "capture too large (over 4 GiB of frames)");
        return -1;
    }
    if (E.blob_len + len > E.blob_cap) {
        size_t cap = E.blob_cap != 0 ? E.blob_cap * 2 : 1 << 20;
        while (cap < E.blob_len + len)
            cap *= 2;
        uint8_t *nb = realloc(E.blob, cap);
        if (nb == NULL) {
            snprintf(err, errlen, "out of memory loading the capture");
            return -1;
        }
        E.blob = nb;
        E.blob_cap = cap;
    }
    *off = (uint32_t)E.blob_len;
    if (len > 0)
        memcpy(E.blob + E.blob_len, data, len);
    E.blob_len += len;
    return 0;
}

static int add_framed(const uint8_t *data, size_t len, uint32_t *off, char *err, size_t errlen)
{
    uint8_t hdr[CODEC_HEADER_BYTES] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                                       (uint8_t)(len >> 8), (uint8_t)len};
    uint32_t body;
    if (blob_add(hdr, sizeof(hdr), off, err, errlen) != 0 ||
        blob_add(data, len, &body, err, errlen) != 0)
        return -1;
    return 0;
}

static struct rp_record *record_new(char *err, size_t errlen)
{
    if (E.nrecs == E.recs_cap) {
        size_t cap = E.recs_cap != 0 ? E.recs_cap * 2 : 4096;
        if (cap > UINT32_MAX) {
            snprintf(err, errlen, "capture has too many records");
            return NULL;
        }
        struct rp_record *nr = realloc(E.recs, cap * sizeof(*nr));
        if (nr == NULL) {
            snprintf(err, errlen, "out of memory loading the capture");
            return NULL;
        }
        E.recs = nr;
        E.recs_cap = cap;
    }
    struct rp_record *rec = &E.recs[E.nrecs];
    memset(rec, 0, sizeof(*rec));
    return rec;
}

static const uint8_t *frame_build(const struct rp_record *rec, const char *msg_id, size_t *len);

void replay_alias_of(const char *account, char *out, size_t len)
{
    size_t n = strlen(account);
    out[0] = '\0';
    if (n == 11 && account[0] == '0' && account[1] == '3' && strspn(account, "0123456789") == n)
        snprintf(out, len, "%s", account);
    else if (n >= 7 && strspn(account + n - 7, "0123456789") == 7)
        snprintf(out, len, "0399%s", account + n - 7);
}

/* Adds one capture record: 1 added, 0 skipped, -1 failure. */
static int load_record(const CaptureRecord *cr, char *err, size_t errlen)
{
    int payer = participant_add(cr->participant, err, errlen);
    if (payer < 0)
        return -1;
    /* a payee that never pays must connect too, to answer (a recording
     * switch writes no participant list into the header) */
    if (cr->payee[0] != '\0' && msg_valid_agent(cr->payee) &&
        participant_add(cr->payee, err, errlen) < 0)
        return -1;
    if (cr->frame.len > RP_SCRATCH - 64) {
        E.r->skipped_records++;
        return 0;
    }
    struct rp_record *rec = record_new(err, errlen);
    if (rec == NULL)
        return -1;
    rec->offset_us = cr->offset_us;
    rec->seq = (uint32_t)E.nrecs;
    rec->payer = (uint16_t)payer;
    Envelope *env = NULL;
    if (!cr->malformed)
        env = sikka__v1__envelope__unpack(NULL, cr->frame.len, cr->frame.data);
    if (env == NULL) {
        /* malformed on purpose, or recorded as received: replayed as is */
        rec->kind = RP_MALFORMED;
        if (add_framed(cr->frame.data, cr->frame.len, &rec->frame_off, err, errlen) != 0)
            return -1;
        rec->frame_len = (uint32_t)(cr->frame.len + CODEC_HEADER_BYTES);
        E.nrecs++;
        return 1;
    }
    int rc = -1;
    Sikka__V1__CreditTransfer *ct = env->credit_transfer;
    size_t idlen =
        env->body_case == SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER ? strlen(ct->msg_id) : 0;
    if (idlen == 0 || idlen > MSG_ID_MAX) {
        /* decisions, queries and the like answer a past run: not replayed */
        E.r->skipped_records++;
        rc = 0;
        goto out;
    }
    char alias[MSG_ALIAS_MAX + 1] = "";
    char *saved_agent = ct->creditor_agent, *saved_account = ct->creditor_account;
    char *orig_alias = ct->creditor_alias;
    if (E.o->by_alias) {
        replay_alias_of(ct->creditor_account, alias, sizeof(alias));
        if (alias[0] != '\0') {
            ct->creditor_alias = alias;
            ct->creditor_agent = (char *)"";
            ct->creditor_account = (char *)"";
        }
    }
    rec->kind = RP_TRANSFER;
    rec->amount = ct->amount;
    rec->retry = cr->retry;
    rec->action = (uint8_t)cr->payee_action;
    snprintf(rec->reason, sizeof(rec->reason), "%.4s", cr->reject_reason);
    memcpy(rec->msg_id, ct->msg_id, idlen + 1);
    /* the transfer without its msg_id (an empty proto3 string is not
     * packed), so a new msg_id can be framed in front of it at send time */
    char *saved = ct->msg_id;
    ct->msg_id = (char *)"";
    size_t rest = protobuf_c_message_get_packed_size(&ct->base);
    int packed = -1;
    if (rest <= RP_SCRATCH - 64)
        packed = blob_add(E.scratch, protobuf_c_message_pack(&ct->base, E.scratch), &rec->rest_off,
                          err, errlen);
    ct->msg_id = saved;
    if (alias[0] != '\0') {
        /* protobuf-c's own strings again, for free_unpacked */
        ct->creditor_alias = orig_alias;
        ct->creditor_agent = saved_agent;
        ct->creditor_account = saved_account;
    }
    if (packed != 0)
        goto out;
    if (alias[0] != '\0') {
        /* the frame is not the recorded one: always built at send time */
        rec->rest_len = (uint32_t)rest;
        E.nrecs++;
        rc = 1;
        goto out;
    }
    rec->rest_len = (uint32_t)rest;
    /* protobuf-c packs fields in number order, msg_id (1) first, so framing
     * the remainder behind the msg_id normally gives the recorded bytes
     * back; a frame from another encoder is kept as it was recorded */
    size_t len;
    const uint8_t *again = frame_build(rec, rec->msg_id, &len);
    if (len != cr->frame.len + CODEC_HEADER_BYTES ||
        memcmp(again + CODEC_HEADER_BYTES, cr->frame.data, cr->frame.len) != 0) {
        if (add_framed(cr->frame.data, cr->frame.len, &rec->frame_off, err, errlen) != 0)
            goto out;
        rec->frame_len = (uint32_t)(cr->frame.len + CODEC_HEADER_BYTES);
    }
    E.nrecs++;
    rc = 1;
out:
    sikka__v1__envelope__free_unpacked(env, NULL);
    if (rc < 0 && err[0] == '\0')
        snprintf(err, errlen, "record %zu: cannot prepare its frame", E.nrecs);
    return rc;
}

static int record_cmp(const void *a, const void *b)
{
    const struct rp_record *x = a, *y = b;
    if (x->offset_us != y->offset_us)
        return x->offset_us < y->offset_us ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int load_capture(const char *path, char *err, size_t errlen)
{
    char why[256];
    struct capture_reader *cr = capture_open(path, err, errlen);
    if (cr == NULL)
        return -1;
    const CaptureHeader *h = capture_header(cr);
    for (size_t i = 0; i < h->n_participants; i++)
        if (participant_add(h->participants[i], err, errlen) < 0)
            goto fail;
    const CaptureRecord *rec;
    while ((rec = capture_next(cr, why, sizeof(why))) != NULL) {
        E.r->capture_records++;
        if (load_record(rec, err, errlen) < 0)
            goto fail;
    }
    if (why[0] != '\0') {
        snprintf(err, errlen, "%s: record %" PRIu64 ": %s", path, E.r->capture_records + 1, why);
        goto fail;
    }
    if (E.nrecs == 0) {
        snprintf(err, errlen, "%s: no transfers to replay", path);
        goto fail;
    }
    capture_close_reader(cr);
    /* a recording switch writes a transfer once its payee has answered, so
     * offsets may step back by up to the payee timeout: replay in time order */
    qsort(E.recs, E.nrecs, sizeof(E.recs[0]), record_cmp);
    E.first_offset = E.recs[0].offset_us;
    int64_t last = E.recs[E.nrecs - 1].offset_us - E.first_offset;
    /* a loop of the capture lasts its span plus one average gap */
    E.span_us = E.nrecs > 1 ? last + last / (int64_t)(E.nrecs - 1) : 1000;
    if (E.span_us <= 0)
        E.span_us = 1000;
    return 0;
fail:
    capture_close_reader(cr);
    return -1;
}

/* ---------------------------------------------------------------- slots */

static uint32_t key_hash(uint16_t payer, const char *msg_id)
{
    uint32_t h = 2166136261u ^ ((uint32_t)payer * 0x9e3779b1u);
    for (const char *p = msg_id; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

static int slots_init(uint32_t n, char *err, size_t errlen)
{
    E.slots = calloc(n, sizeof(*E.slots));
    uint32_t buckets = 1;
    while (buckets < 2 * n)
        buckets <<= 1;
    E.buckets = malloc(buckets * sizeof(*E.buckets));
    if (E.slots == NULL || E.buckets == NULL) {
        snprintf(err, errlen, "out of memory for %u outstanding messages", n);
        return -1;
    }
    memset(E.buckets, 0xff, buckets * sizeof(*E.buckets));
    E.bucket_mask = buckets - 1;
    E.nslots = n;
    for (uint32_t i = 0; i < n; i++)
        E.slots[i].next = i + 1 < n ? i + 1 : RP_NONE;
    E.free_head = 0;
    E.rq_head = E.rq_tail = RP_NONE;
    return 0;
}

/* The oldest outstanding transfer with this key (with on_wire, the oldest
 * that is on a connection, not waiting to be sent again), or RP_NONE. */
static uint32_t slot_find_as(uint16_t payer, const char *msg_id, bool on_wire)
{
    uint32_t h = key_hash(payer, msg_id);
    uint32_t found = RP_NONE;
    for (uint32_t i = E.buckets[h & E.bucket_mask]; i != RP_NONE; i = E.slots[i].next) {
        const struct rp_slot *s = &E.slots[i];
        if (s->hash == h && E.recs[s->rec].payer == payer && strcmp(s->msg_id, msg_id) == 0 &&
            (!on_wire || !s->waiting))
            found = i; /* inserted at the head: the last match is the oldest */
    }
    return found;
}

static uint32_t slot_find(uint16_t payer, const char *msg_id)
{
    return slot_find_as(payer, msg_id, false);
}

static void slot_unhash(uint32_t si)
{
    uint32_t *link = &E.buckets[E.slots[si].hash & E.bucket_mask];
    while (*link != RP_NONE && *link != si)
        link = &E.slots[*link].next;
    if (*link == si)
        *link = E.slots[si].next;
}

/* ---------------------------------------------------------------- sending again */

static void rq_remove(uint32_t si)
{
    struct rp_slot *s = &E.slots[si];
    if (s->rprev != RP_NONE)
        E.slots[s->rprev].rnext = s->rnext;
    else
        E.rq_head = s->rnext;
    if (s->rnext != RP_NONE)
        E.slots[s->rnext].rprev = s->rprev;
    else
        E.rq_tail = s->rprev;
    s->waiting = false;
}

static void arm_resend(int64_t delay_us)
{
    if (E.resend == NULL || evtimer_pending(E.resend, NULL))
        return;
    struct timeval tv = {(time_t)(delay_us / 1000000), (suseconds_t)(delay_us % 1000000)};
    if (evtimer_add(E.resend, &tv) != 0)
        log_error("event=replay_failed why=\"cannot arm the resend timer\"");
}

/* Queues message si to be sent (again) on any session of its payer, not
 * before delay_us from now. It keeps its key in the index meanwhile, so an
 * answer or a forward still finds it. */
static void rq_push(uint32_t si, int64_t delay_us)
{
    struct rp_slot *s = &E.slots[si];
    if (s->waiting)
        rq_remove(si);
    s->waiting = true;
    s->resend_us = mono_us() + delay_us;
    s->rnext = RP_NONE;
    s->rprev = E.rq_tail;
    if (E.rq_tail != RP_NONE)
        E.slots[E.rq_tail].rnext = si;
    else
        E.rq_head = si;
    E.rq_tail = si;
    arm_resend(delay_us < RP_RESEND_TICK_US ? delay_us : RP_RESEND_TICK_US);
}

/* Queues a message that went out and got no final answer: after 100 ms,
 * doubling with each attempt, up to 2 s. */
static void rq_retry(uint32_t si)
{
    struct rp_slot *s = &E.slots[si];
    int shift = s->attempts < 5 ? s->attempts : 5;
    int64_t delay = (int64_t)RP_RESEND_MIN_US << shift;
    if (delay > RP_RESEND_MAX_US)
        delay = RP_RESEND_MAX_US;
    if (s->attempts < UINT16_MAX)
        s->attempts++;
    rq_push(si, delay);
}

static void slot_release(uint32_t si)
{
    E.slots[si].used = false;
    E.slots[si].next = E.free_head;
    E.free_head = si;
    E.outstanding--;
}

/* ---------------------------------------------------------------- frames */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* The msg_id message k of record rec goes out with. */
static void msg_id_for(const struct rp_record *rec, uint32_t loop, char *out)
{
    char suffix[32];
    size_t n = strlen(E.run_suffix); /* at most REPLAY_RUN_ID_MAX + 1 */
    memcpy(suffix, E.run_suffix, n + 1);
    if (loop > 0) {
        char tmp[16];
        size_t m = 0;
        uint32_t v = loop;
        while (v != 0) {
            tmp[m++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
            v /= 36;
        }
        suffix[n++] = '~';
        while (m > 0)
            suffix[n++] = tmp[--m];
        suffix[n] = '\0';
    }
    size_t idlen = strlen(rec->msg_id);
    if (n == 0) {
        memcpy(out, rec->msg_id, idlen + 1);
    } else if (idlen + n <= MSG_ID_MAX) {
        memcpy(out, rec->msg_id, idlen);
        memcpy(out + idlen, suffix, n + 1);
    } else {
        /* no room: 60 bits of the id's hash stand for it */
        uint64_t h = 14695981039346656037ULL;
        for (size_t i = 0; i < idlen; i++)
            h = (h ^ (uint8_t)rec->msg_id[i]) * 1099511628211ULL;
        snprintf(out, MSG_ID_MAX + 1, "%015" PRIx64 "%.20s", h >> 4, suffix);
    }
}

/* Frames transfer rec with msg_id in E.scratch: the length, the Envelope's
 * credit_transfer tag and length, the msg_id field, then the remainder. */
static const uint8_t *frame_build(const struct rp_record *rec, const char *msg_id, size_t *len)
{
    size_t idlen = strlen(msg_id);
    size_t ct_len = 1 + varint_len(idlen) + idlen + rec->rest_len;
    size_t body = 1 + varint_len(ct_len) + ct_len;
    uint8_t *p = E.scratch;
    p[0] = (uint8_t)(body >> 24);
    p[1] = (uint8_t)(body >> 16);
    p[2] = (uint8_t)(body >> 8);
    p[3] = (uint8_t)body;
    size_t n = CODEC_HEADER_BYTES;
    p[n++] = 0x0a; /* Envelope.credit_transfer: field 1, length-delimited */
    n += put_varint(p + n, ct_len);
    p[n++] = 0x0a; /* CreditTransfer.msg_id: field 1, length-delimited */
    n += put_varint(p + n, idlen);
    memcpy(p + n, msg_id, idlen);
    n += idlen;
    memcpy(p + n, E.blob + rec->rest_off, rec->rest_len);
    n += rec->rest_len;
    *len = n;
    return p;
}

/* The bytes that send message (rec, msg_id): the frame as recorded when it
 * is kept and the msg_id unchanged, else the remainder framed behind msg_id. */
static const uint8_t *frame_for(const struct rp_record *rec, const char *msg_id, size_t *len)
{
    if (rec->kind != RP_TRANSFER || (rec->frame_len > 0 && strcmp(msg_id, rec->msg_id) == 0)) {
        *len = rec->frame_len;
        return E.blob + rec->frame_off;
    }
    return frame_build(rec, msg_id, len);
}

/* ---------------------------------------------------------------- outcomes */

static void outcome_add(const char *status, const char *reason, bool expected)
{
    struct replay_result *r = E.r;
    for (size_t i = 0; i < r->noutcomes; i++) {
        struct replay_outcome *o = &r->outcomes[i];
        if (strcmp(o->status, status) == 0 && strcmp(o->reason, reason) == 0 &&
            o->expected == expected) {
            o->count++;
            return;
        }
    }
    if (r->noutcomes == REPLAY_MAX_OUTCOMES)
        return; /* 64 distinct endings: the rest is noise; errors still counts them */
    struct replay_outcome *o = &r->outcomes[r->noutcomes++];
    snprintf(o->status, sizeof(o->status), "%s", status);
    snprintf(o->reason, sizeof(o->reason), "%.4s", reason);
    o->count = 1;
    o->expected = expected;
}

static bool outcome_expected(const struct rp_record *rec, const char *status, const char *reason)
{
    if (rec->kind == RP_MALFORMED)
        return strcmp(status, "MSGREJ") == 0 && strcmp(reason, "FF01") == 0;
    switch (rec->action) {
    case SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_REJECT:
        return strcmp(status, "RJCT") == 0 && strcmp(reason, rec->reason) == 0;
    case SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_IGNORE:
        return strcmp(status, "RJCT") == 0 && strcmp(reason, "AB05") == 0;
    default:
        return strcmp(status, "ACSC") == 0;
    }
}

/* Writes s as a value of COPY's text format. */
static void put_copy_text(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '\\':
            fputs("\\\\", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void results_line(const struct rp_slot *s, const struct rp_record *rec, const char *status,
                         const char *reason, uint64_t transfer_id)
{
    FILE *f = E.results;
    fputs(E.parts[rec->payer].code, f);
    fputc('\t', f);
    put_copy_text(f, s->msg_id);
    fputc('\t', f);
    fputs(status, f);
    fputc('\t', f);
    if (reason[0] != '\0')
        put_copy_text(f, reason);
    else
        fputs("\\N", f);
    /* digits by hand: a line per transfer at the peak, printf's parsing
     * showed in the generator's profile */
    char num[TEXT_U64_MAX];
    text_u64(transfer_id, num);
    fputc('\t', f);
    fputs(num, f);
    text_u64(rec->amount < 0 ? (uint64_t)0 - (uint64_t)rec->amount : (uint64_t)rec->amount, num);
    fputc('\t', f);
    fputs(rec->amount < 0 ? "-" : "", f);
    fputs(num, f);
    fputc('\n', f);
}

static void send_next_closed(void);
static void finish_sending(void);
static void run_end(void);

/* ---------------------------------------------------------------- notices */

static size_t ntab_slot(uint64_t id, size_t cap)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 17) & (cap - 1);
}

static int ntab_grow(void)
{
    size_t cap = E.ntab_cap != 0 ? E.ntab_cap * 2 : (size_t)1 << 16;
    uint64_t *keys = calloc(cap, sizeof(*keys));
    uint8_t *flags = calloc(cap, sizeof(*flags));
    if (keys == NULL || flags == NULL) {
        free(keys);
        free(flags);
        return -1;
    }
    for (size_t i = 0; i < E.ntab_cap; i++) {
        if (E.ntab_keys[i] == 0)
            continue;
        size_t j = ntab_slot(E.ntab_keys[i], cap);
        while (keys[j] != 0)
            j = (j + 1) & (cap - 1);
        keys[j] = E.ntab_keys[i];
        flags[j] = E.ntab_flags[i];
    }
    free(E.ntab_keys);
    free(E.ntab_flags);
    E.ntab_keys = keys;
    E.ntab_flags = flags;
    E.ntab_cap = cap;
    return 0;
}

/* Adds flag to what is known of transfer id; returns what was known before
 * (0: nothing), or -1 when the table cannot grow (said once; the notice
 * counts are then incomplete). */
static int ntab_mark(uint64_t id, uint8_t flag)
{
    if (E.ntab_failed)
        return -1;
    if (2 * (E.ntab_n + 1) > E.ntab_cap && ntab_grow() != 0) {
        E.ntab_failed = true;
        log_error("event=oom what=notice_table entries=%zu why=\"payee notice counts stop here\"",
                  E.ntab_n);
        return -1;
    }
    size_t j = ntab_slot(id, E.ntab_cap);
    while (E.ntab_keys[j] != 0 && E.ntab_keys[j] != id)
        j = (j + 1) & (E.ntab_cap - 1);
    if (E.ntab_keys[j] == 0) {
        E.ntab_keys[j] = id;
        E.ntab_n++;
    }
    int before = E.ntab_flags[j];
    E.ntab_flags[j] |= flag;
    return before;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A payer saw transfer id settle: its payee should hear it too; and the
 * stretch since the previous ACSC. */
static void payer_settled(uint64_t id, int64_t now_us)
{
    struct replay_result *r = E.r;
    int64_t wall = wall_ms();
    if (E.last_acsc_us != 0 && (uint64_t)(now_us - E.last_acsc_us) > r->max_acsc_gap_us) {
        r->max_acsc_gap_us = (uint64_t)(now_us - E.last_acsc_us);
        r->gap_from_ms = E.last_acsc_wall_ms;
        r->gap_to_ms = wall;
    }
    E.last_acsc_us = now_us;
    E.last_acsc_wall_ms = wall;
    if (id == 0)
        return;
    int before = ntab_mark(id, RP_PAYER_ACSC);
    if (before >= 0 && (before & (RP_PAYER_ACSC | RP_NOTICED)) == 0)
        E.pending_notices++;
}

/* Ends the run once everything is answered and every settlement the payers
 * saw has reached its payee, or waits RP_NOTICE_GRACE_S more for those
 * notices (the deadline then ends it, counting what is missing). */
static void maybe_end(void)
{
    if (!E.sending_done || E.outstanding != 0 || E.phase != RP_DRAINING)
        return;
    if (E.pending_notices == 0) {
        run_end();
        return;
    }
    if (E.notice_grace)
        return;
    E.notice_grace = true;
    evtimer_del(E.deadline);
    struct timeval tv = {RP_NOTICE_GRACE_S, 0};
    if (evtimer_add(E.deadline, &tv) != 0) {
        log_error("event=replay_failed why=\"cannot arm the notice deadline\"");
        run_end();
    }
}

/* Message si ended with status (ACSC, RJCT, MSGREJ or NONE) and reason. */
static void complete(uint32_t si, const char *status, const char *reason, uint64_t transfer_id)
{
    struct rp_slot *s = &E.slots[si];
    const struct rp_record *rec = &E.recs[s->rec];
    int64_t now = mono_us();
    if (s->waiting)
        rq_remove(si);
    if (rec->kind == RP_TRANSFER)
        slot_unhash(si);
    if (strcmp(status, "ACSC") == 0 && E.phase != RP_DONE)
        payer_settled(transfer_id, now);
    bool expected = outcome_expected(rec, status, reason);
    bool answered = strcmp(status, "NONE") != 0;
    if (s->measured) {
        struct replay_result *r = E.r;
        if (answered) {
            r->answered++;
            if (status[0] == 'A') /* ACSC */
                r->settled++;
            uint64_t corrected = (uint64_t)(now - s->due_us);
            hdr_record(r->corrected, corrected);
            hdr_record(r->uncorrected, (uint64_t)(now - s->sent_us));
            E.last_answer_us = now;
        } else {
            r->no_answer++;
        }
        if (!expected) {
            r->errors++;
            E.sec_errors++;
        }
        outcome_add(status, reason, expected);
    }
    if (answered) {
        E.r->total_answered++;
        E.sec_answered++;
        hdr_record(E.interval, (uint64_t)(now - s->due_us)); /* the chart shows the warmup too */
    }
    if (E.results != NULL && rec->kind == RP_TRANSFER)
        results_line(s, rec, status, reason, transfer_id);
    slot_release(si);
    /* a closed loop refills in refill(), after the callback: refilling here
     * could recurse through sends that fail at once */
    maybe_end();
}

/* ---------------------------------------------------------------- sending */

/* Picks a session of participant p that can take a frame: round robin,
 * skipping closed and backed-up ones. NULL with *any_open telling whether
 * it is worth trying again later. */
static struct rp_session *session_for(struct rp_participant *p, bool *any_open)
{
    *any_open = false;
    for (uint32_t i = 0; i < p->nsessions; i++) {
        struct rp_session *s = &E.sessions[p->first_session + (p->rr + i) % p->nsessions];
        if (s->closed || !s->connected)
            continue;
        *any_open = true;
        if (client_output_pending(s->c) >= RP_OUTPUT_CAP)
            continue;
        p->rr = (p->rr + i + 1) % p->nsessions;
        return s;
    }
    return NULL;
}

/* Writes message si to sess (its key is already in the index). */
static int slot_write(uint32_t si, struct rp_session *sess)
{
    struct rp_slot *s = &E.slots[si];
    const struct rp_record *rec = &E.recs[s->rec];
    size_t len;
    const uint8_t *frame = frame_for(rec, s->msg_id, &len);
    if (client_send_raw(sess->c, frame, len) != 0)
        return -1;
    s->session = sess->index;
    s->sess_epoch = sess->epoch;
    s->sent = true;
    if (rec->kind == RP_MALFORMED) {
        s->next = RP_NONE;
        if (sess->mal_tail != RP_NONE)
            E.slots[sess->mal_tail].next = si;
        else
            sess->mal_head = si;
        sess->mal_tail = si;
    }
    return 0;
}

/* Sends message k, due at due_us. 1: sent (or failed for good and
 * accounted), 0: must wait (no free slot, or the payer's sessions are all
 * backed up). */
static int send_message(uint64_t k, int64_t due_us)
{
    if (E.free_head == RP_NONE)
        return 0;
    const struct rp_record *rec = &E.recs[k % E.nrecs];
    bool any_open;
    struct rp_session *sess = session_for(&E.parts[rec->payer], &any_open);
    if (sess == NULL && any_open)
        return 0;

    uint32_t si = E.free_head;
    struct rp_slot *s = &E.slots[si];
    E.free_head = s->next;
    E.outstanding++;
    s->used = true;
    s->waiting = false;
    s->sent = false;
    s->attempts = 0;
    s->rec = (uint32_t)(k % E.nrecs);
    s->loop = (uint32_t)(k / E.nrecs);
    s->due_us = due_us;
    s->next = RP_NONE;
    s->hash = 0;
    if (rec->kind == RP_TRANSFER) {
        msg_id_for(rec, s->loop, s->msg_id);
        s->hash = key_hash(rec->payer, s->msg_id);
    } else {
        s->msg_id[0] = '\0';
    }

    int64_t now = mono_us();
    s->sent_us = now;
    s->measured = due_us >= E.measure_us;
    s->session = sess != NULL ? sess->index : RP_NONE;
    struct replay_result *r = E.r;
    r->total_sent++;
    E.sec_sent++;
    if (s->measured) {
        r->sent++;
        if (E.first_send_us == 0)
            E.first_send_us = now;
        E.last_send_us = now;
        if (rec->retry)
            r->retries++;
        if (rec->kind == RP_MALFORMED)
            r->malformed++;
        if (E.o->mode != REPLAY_CLOSED && now - due_us > REPLAY_LATE_US)
            r->late++;
        if (now > due_us && (uint64_t)(now - due_us) > r->max_late_us)
            r->max_late_us = (uint64_t)(now - due_us);
    } else {
        r->warmup_sent++;
    }

    if (rec->kind == RP_TRANSFER) {
        uint32_t *head = &E.buckets[s->hash & E.bucket_mask];
        s->next = *head;
        *head = si;
    }
    if (sess == NULL || slot_write(si, sess) != 0) {
        /* every session of this payer is being opened again: it goes out
         * as soon as one is back */
        rq_push(si, 0);
    }
    return 1;
}

/* Sends message si again (or for the first time, if it had to wait) on a
 * session of its payer. 0 sent; -1 none can take it now. */
static int slot_resend(uint32_t si)
{
    struct rp_slot *s = &E.slots[si];
    const struct rp_record *rec = &E.recs[s->rec];
    bool any_open;
    struct rp_session *sess = session_for(&E.parts[rec->payer], &any_open);
    if (sess == NULL)
        return -1;
    bool again = s->sent;
    rq_remove(si);
    if (slot_write(si, sess) != 0) {
        rq_push(si, RP_RESEND_TICK_US);
        return -1;
    }
    if (again)
        E.r->resent++;
    return 0;
}

static void on_resend(evutil_socket_t fd, short what, void *arg)
{
    if (E.phase != RP_RUNNING && E.phase != RP_DRAINING)
        return;
    int64_t now = mono_us();
    for (uint32_t si = E.rq_head, next; si != RP_NONE; si = next) {
        next = E.slots[si].rnext;
        if (E.slots[si].resend_us <= now)
            (void)slot_resend(si);
    }
    if (E.rq_head != RP_NONE)
        arm_resend(RP_RESEND_TICK_US);
}

/* A session is back: what waits for it goes now. */
static void kick_resend(void)
{
    if (E.rq_head != RP_NONE && E.resend != NULL) {
        evtimer_del(E.resend);
        arm_resend(0);
    }
}

static bool more_to_send(void)
{
    return !E.sending_done && E.next_k < E.limit_k;
}

static int64_t due_time(uint64_t k)
{
    if (E.o->mode == REPLAY_RATE)
        return E.t0_us + (int64_t)((double)k * 1e6 / E.o->rate);
    uint64_t loop = k / E.nrecs;
    int64_t off = (int64_t)loop * E.span_us + (E.recs[k % E.nrecs].offset_us - E.first_offset);
    return E.t0_us + (int64_t)((double)off / E.o->speed);
}

static void arm_tick(int64_t delay_us)
{
    if (delay_us < 0)
        delay_us = 0;
    struct timeval tv = {(time_t)(delay_us / 1000000), (suseconds_t)(delay_us % 1000000)};
    if (evtimer_add(E.tick, &tv) != 0) {
        log_error("event=replay_failed why=\"cannot arm the pacing timer\"");
        finish_sending();
    }
}

/* Open loop: sends everything that is due, then sleeps until the next
 * message is due (at least RP_TICK_MIN_US, so a fast rate is sent in
 * batches rather than one wake-up per message). */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = mono_us();
    int burst = 0;
    bool stalled = false;
    while (more_to_send()) {
        int64_t due = due_time(E.next_k);
        if (due >= E.stop_us) {
            E.limit_k = E.next_k;
            break;
        }
        if (due > now)
            break;
        if (burst == RP_SENDS_PER_TICK)
            break;
        if (send_message(E.next_k, due) == 0) {
            E.r->stalls++;
            stalled = true;
            break;
        }
        E.next_k++;
        if ((++burst & 63) == 0)
            now = mono_us();
    }
    if (!more_to_send()) {
        finish_sending();
        return;
    }
    int64_t wait = due_time(E.next_k) - mono_us();
    if (burst == RP_SENDS_PER_TICK)
        wait = 0; /* behind: go on right after the loop has read what came in */
    else if (stalled || wait < RP_TICK_MIN_US)
        wait = RP_TICK_MIN_US;
    else if (wait > RP_TICK_MAX_US)
        wait = RP_TICK_MAX_US;
    arm_tick(wait);
}

/* Closed loop: one more message for each one that ended. */
static void send_next_closed(void)
{
    while (more_to_send() && E.outstanding < E.o->closed) {
        int64_t now = mono_us();
        if (now >= E.stop_us) {
            E.limit_k = E.next_k;
            break;
        }
        if (send_message(E.next_k, now) == 0) {
            E.r->stalls++;
            /* try again shortly: a session's output is backed up */
            if (!evtimer_pending(E.tick, NULL))
                arm_tick(RP_TICK_MIN_US);
            return;
        }
        E.next_k++;
    }
    if (!more_to_send())
        finish_sending();
}

static void on_closed_retry(evutil_socket_t fd, short what, void *arg)
{
    if (E.phase == RP_RUNNING)
        send_next_closed();
}

/* ---------------------------------------------------------------- receiving */

/* A settlement notice to us as the payee (the client library acknowledged
 * it and dropped it if its memory held it already). */
static void on_payee_notice(const Sikka__V1__StatusReport *sr)
{
    if (sr->status != SIKKA__V1__TX_STATUS__ACSC || sr->transfer_id == 0)
        return;
    int before = ntab_mark(sr->transfer_id, RP_NOTICED);
    if (before < 0)
        return;
    if (before & RP_NOTICED) {
        E.notice_repeats++; /* seen before the library's memory turned over */
        return;
    }
    E.r->payee_notices++;
    if (before & RP_PAYER_ACSC) {
        E.pending_notices--;
        maybe_end();
    }
}

static void on_report(struct rp_session *sess, const Sikka__V1__StatusReport *sr)
{
    const struct rp_participant *p = &E.parts[sess->participant];
    if (sr->kind != SIKKA__V1__REPORT_KIND__REPORT_KIND_RESULT)
        return;
    if (sr->to_payee) {
        on_payee_notice(sr);
        return;
    }
    if (strcmp(sr->debtor_agent, p->code) != 0)
        return; /* the confirmation a payee gets: nothing of ours to end */
    uint32_t si = slot_find(sess->participant, sr->original_msg_id);
    if (si == RP_NONE) {
        E.r->unmatched++;
        return;
    }
    const char *status = sr->status == SIKKA__V1__TX_STATUS__ACSC   ? "ACSC"
                         : sr->status == SIKKA__V1__TX_STATUS__RJCT ? "RJCT"
                                                                    : "PDNG";
    complete(si, status, sr->reason, sr->transfer_id);
}

static void on_forward(struct rp_session *sess, const Sikka__V1__CreditTransfer *ct)
{
    struct replay_result *r = E.r;
    r->forwards++;
    bool accept = true;
    const char *reason = NULL;
    int payer = participant_index(ct->debtor_agent);
    uint32_t si = payer >= 0 ? slot_find((uint16_t)payer, ct->msg_id) : RP_NONE;
    if (si == RP_NONE) {
        r->unknown_forwards++;
    } else {
        const struct rp_record *rec = &E.recs[E.slots[si].rec];
        if (rec->action == SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_IGNORE) {
            r->ignores++;
            return;
        }
        if (rec->action == SIKKA__CAPTURE__V1__PAYEE_ACTION__PAYEE_ACTION_REJECT &&
            msg_valid_reason(rec->reason)) {
            accept = false;
            reason = rec->reason;
        }
    }
    struct msg_decision d;
    char err[128];
    if (msg_decision_init(&d, ct->transfer_id, accept, reason, NULL, err, sizeof(err)) != 0 ||
        client_send(sess->c, &d.env) != 0) {
        log_warn("event=decision_failed session=%s#%u transfer=%" PRIu64 " why=\"%s\"",
                 E.parts[sess->participant].code, sess->index, ct->transfer_id,
                 err[0] ? err : "connection closed");
        return;
    }
    if (accept)
        r->accepts++;
    else
        r->rejects++;
}

static void on_message_reject(struct rp_session *sess, const Sikka__V1__MessageReject *mr)
{
    uint32_t si = RP_NONE;
    if (mr->ref_msg_id[0] != '\0' && mr->retry) {
        /* nothing was recorded: the same message again, after a pause (the
         * one refused is on a connection; one waiting already goes again) */
        E.r->refused_retryably++;
        si = slot_find_as(sess->participant, mr->ref_msg_id, true);
        if (si != RP_NONE)
            rq_retry(si);
        else
            E.r->unmatched++;
        return;
    }
    if (mr->ref_msg_id[0] != '\0') {
        si = slot_find(sess->participant, mr->ref_msg_id);
    } else if (mr->ref_transfer_id == 0 && sess->mal_head != RP_NONE) {
        /* the switch answers frames in order: the oldest malformed one */
        si = sess->mal_head;
        sess->mal_head = E.slots[si].next;
        if (sess->mal_head == RP_NONE)
            sess->mal_tail = RP_NONE;
    }
    if (si == RP_NONE) {
        E.r->unmatched++; /* e.g. about a decision of ours that came too late */
        return;
    }
    complete(si, "MSGREJ", mr->reason, mr->ref_transfer_id);
}

/* Closed loop: replaces the messages that ended during a callback. */
static void refill(void)
{
    if (E.phase == RP_RUNNING && E.o->mode == REPLAY_CLOSED)
        send_next_closed();
}

static void start_run(void);

/* A session is ready once the switch's welcome (its first frame) arrived:
 * with TLS 1.3 our side of the handshake ends before the switch has
 * registered the session, and a transfer sent before that could find its
 * payee "not connected" (AB08). The run starts when every session is ready. */
static void session_ready(struct rp_session *sess)
{
    if (sess->connected)
        return;
    sess->connected = true;
    client_backoff_reset(&sess->backoff);
    /* the others reopen here first */
    E.addrs.current = sess->addr;
    if (sess->was_ready) {
        char name[300];
        E.r->reconnects++;
        log_warn("event=session_reopened participant=%s session=%u address=%s",
                 E.parts[sess->participant].code, sess->index,
                 client_addr_name(&E.addrs.addr[sess->addr], name, sizeof(name)));
        kick_resend();
        return;
    }
    sess->was_ready = true;
    if (E.phase == RP_CONNECTING && ++E.connected == E.nsessions)
        start_run();
    else
        kick_resend();
}

static void on_frame(struct client *c, const Envelope *env, void *arg)
{
    struct rp_session *sess = arg;
    if (E.phase == RP_DONE)
        return; /* holding, or past the drain: nothing is outstanding any more */
    if (E.phase == RP_CONNECTING)
        return;
    switch (env->body_case) {
    case SIKKA__V1__ENVELOPE__BODY_STATUS_REPORT:
        on_report(sess, env->status_report);
        break;
    case SIKKA__V1__ENVELOPE__BODY_CREDIT_TRANSFER:
        on_forward(sess, env->credit_transfer);
        break;
    case SIKKA__V1__ENVELOPE__BODY_MESSAGE_REJECT:
        on_message_reject(sess, env->message_reject);
        break;
    default:
        break;
    }
    refill();
}

static void abort_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void abort_run(const char *fmt, ...)
{
    if (E.abort_why[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(E.abort_why, sizeof(E.abort_why), fmt, ap);
        va_end(ap);
    }
    E.phase = RP_DONE;
    event_base_loopbreak(E.base);
}

/* Sends again what was in flight on sessions that closed: every message
 * written to a connection that is gone and not answered. One pass over the
 * table for all the sessions that closed since the last one (a takeover
 * closes them all at once). */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    if (E.phase != RP_RUNNING && E.phase != RP_DRAINING)
        return;
    for (uint32_t i = 0; i < E.nslots; i++) {
        struct rp_slot *s = &E.slots[i];
        if (!s->used || s->waiting || !s->sent || s->session == RP_NONE)
            continue;
        const struct rp_session *sess = &E.sessions[s->session];
        if (sess->closed || sess->epoch != s->sess_epoch)
            rq_retry(i);
    }
}

static int session_open(struct rp_session *sess, char *err, size_t errlen);

static void on_reopen(evutil_socket_t fd, short what, void *arg)
{
    struct rp_session *sess = arg;
    char why[512];
    if (E.phase == RP_DONE)
        return;
    if (session_open(sess, why, sizeof(why)) != 0) {
        log_error("event=session_reopen_failed participant=%s session=%u why=\"%s\"",
                  E.parts[sess->participant].code, sess->index, why);
        snprintf(E.last_close, sizeof(E.last_close), "%s", why);
        int ms = client_backoff_next(&sess->backoff);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        if (evtimer_add(sess->reopen, &tv) != 0)
            log_error("event=replay_failed why=\"cannot arm a reopen timer\"");
    }
}

/* Opens sess again after its backoff (jittered, so that sessions closed
 * together do not all come back in the same instant): on the address
 * another session found working, else on the next one. */
static void session_schedule_reopen(struct rp_session *sess)
{
    if (E.addrs.current != sess->addr)
        sess->addr = (uint16_t)E.addrs.current;
    else
        sess->addr = (uint16_t)((sess->addr + 1) % E.addrs.n);
    int ms = client_backoff_next(&sess->backoff);
    E.rng = E.rng * 6364136223846793005ULL + 1442695040888963407ULL;
    int half = ms / 2;
    ms = half + (int)((E.rng >> 33) % (uint64_t)(ms - half + 1));
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (sess->reopen == NULL) {
        sess->reopen = evtimer_new(E.base, on_reopen, sess);
        if (sess->reopen == NULL) {
            log_error("event=oom what=reopen_timer session=%u", sess->index);
            return;
        }
    }
    if (evtimer_add(sess->reopen, &tv) != 0)
        log_error("event=replay_failed why=\"cannot arm a reopen timer\"");
}

static void on_event(struct client *c, enum client_event ev, const char *why, void *arg)
{
    struct rp_session *sess = arg;
    const char *code = E.parts[sess->participant].code;
    if (ev == CLIENT_CONNECTED)
        return;
    if (ev == CLIENT_READY) {
        session_ready(sess);
        return;
    }
    bool was_connected = sess->connected;
    bool tls_failed = client_tls_failed(c);
    sess->closed = true;
    sess->connected = false;
    sess->mal_head = sess->mal_tail = RP_NONE;
    client_free(c); /* takes effect once this callback returns */
    sess->c = NULL;
    if (E.phase == RP_DONE)
        return;
    if (tls_failed && !sess->was_ready) {
        /* a certificate refused: trying again changes nothing */
        abort_run("%s session %u: %s", code, sess->index, why);
        return;
    }
    char name[300];
    client_addr_name(&E.addrs.addr[sess->addr], name, sizeof(name));
    snprintf(E.last_close, sizeof(E.last_close), "%s session %u, %s: %s", code, sess->index, name,
             why);
    if (was_connected && E.phase != RP_CONNECTING) {
        struct replay_result *r = E.r;
        if (r->connection_failures++ == 0)
            snprintf(r->first_failure, sizeof(r->first_failure), "%s session %u: %s", code,
                     sess->index, why);
        log_warn("event=session_lost participant=%s session=%u address=%s why=\"%s\"", code,
                 sess->index, name, why);
        /* what it had in flight goes again, on another session */
        struct timeval now = {0, 0};
        if (!evtimer_pending(E.sweep, NULL) && evtimer_add(E.sweep, &now) != 0)
            log_error("event=replay_failed why=\"cannot arm the sweep: what was in flight on "
                      "session %u is not sent again\"",
                      sess->index);
    }
    session_schedule_reopen(sess);
}

/* ---------------------------------------------------------------- the clock */

static void push_second(int64_t now)
{
    struct replay_result *r = E.r;
    if (r->nseconds == E.seconds_cap) {
        size_t cap = E.seconds_cap != 0 ? E.seconds_cap * 2 : 64;
        struct replay_second *ns = realloc(r->seconds, cap * sizeof(*ns));
        if (ns == NULL) {
            log_error("event=oom what=time_series seconds=%zu", cap);
            return;
        }
        r->seconds = ns;
        E.seconds_cap = cap;
    }
    struct replay_second *s = &r->seconds[r->nseconds++];
    s->t = (double)(now - E.t0_us) / 1e6;
    s->sent = E.sec_sent;
    s->answered = E.sec_answered;
    s->errors = E.sec_errors;
    s->p50 = hdr_percentile(E.interval, 50);
    s->p90 = hdr_percentile(E.interval, 90);
    s->p99 = hdr_percentile(E.interval, 99);
    s->max = hdr_max(E.interval);
    s->warmup = now <= E.measure_us;
    if (E.o->live)
        fprintf(stderr,
                "sikka-replay: %6.1fs sent %" PRIu64 " answered %" PRIu64 " rate %" PRIu64
                "/s p99 %.2fms errors %" PRIu64 " outstanding %u%s%s\n",
                s->t, r->total_sent, r->answered, E.sec_sent,
                (double)hdr_percentile(r->corrected, 99) / 1000.0, r->errors, E.outstanding,
                s->warmup ? " (warmup)" : "", E.rq_head != RP_NONE ? " (sending again)" : "");
    hdr_reset(E.interval);
    E.sec_sent = E.sec_answered = E.sec_errors = 0;
}

static void on_second(evutil_socket_t fd, short what, void *arg)
{
    push_second(mono_us());
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    if (E.phase == RP_CONNECTING) {
        abort_run("only %zu of %zu sessions connected within %.0f s%s%s", E.connected, E.nsessions,
                  E.o->connect_timeout_s, E.last_close[0] != '\0' ? "; last: " : "", E.last_close);
        return;
    }
    /* draining: whatever is still outstanding will not be answered in time */
    run_end();
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    if (E.phase == RP_RUNNING) {
        fprintf(stderr, "sikka-replay: interrupted: no more sends, waiting for answers "
                        "(again to stop now)\n");
        E.limit_k = E.next_k;
        finish_sending();
    } else {
        abort_run("interrupted");
    }
}

static void arm_deadline(double seconds)
{
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    if (evtimer_add(E.deadline, &tv) != 0)
        log_error("event=replay_failed why=\"cannot arm the deadline timer\"");
}

static void finish_sending(void)
{
    if (E.sending_done)
        return;
    E.sending_done = true;
    evtimer_del(E.tick);
    if (E.phase != RP_RUNNING)
        return;
    E.phase = RP_DRAINING;
    if (E.outstanding == 0) {
        maybe_end(); /* ends now, or waits a little for payee notices */
        return;
    }
    arm_deadline(E.o->drain_s);
}

static void run_end(void)
{
    if (E.phase == RP_DONE)
        return;
    E.phase = RP_DONE;
    push_second(mono_us());
    event_base_loopbreak(E.base);
}

static void start_run(void)
{
    const struct replay_opts *o = E.o;
    evtimer_del(E.deadline);
    E.phase = RP_RUNNING;
    E.t0_us = mono_us();
    E.measure_us = E.t0_us + (int64_t)(o->warmup_s * 1e6);
    E.stop_us = o->duration_s > 0 ? E.measure_us + (int64_t)(o->duration_s * 1e6) : INT64_MAX;
    E.limit_k = o->count > 0 ? o->count : (o->duration_s > 0 ? UINT64_MAX : E.nrecs);
    struct timeval one = {1, 0};
    if (evtimer_add(E.second, &one) != 0)
        log_error("event=replay_failed why=\"cannot arm the one-second timer\"");
    if (o->mode == REPLAY_CLOSED)
        send_next_closed();
    else
        on_tick(-1, 0, NULL);
}

/* ---------------------------------------------------------------- setup */

/* Opens a connection for sess on its address. */
static int session_open(struct rp_session *sess, char *err, size_t errlen)
{
    struct rp_participant *p = &E.parts[sess->participant];
    const struct client_addr *a = &E.addrs.addr[sess->addr];
    struct client_opts co = {.host = a->host,
                             .port = a->port,
                             .cert = p->cert,
                             .key = p->key,
                             .ca = p->ca,
                             .await_ready = true,
                             .notices = p->notices};
    sess->c = client_open(E.base, p->ctx, &co, err, errlen);
    if (sess->c == NULL)
        return -1;
    sess->epoch++;
    sess->closed = false;
    sess->connected = false;
    client_set_callbacks(sess->c, on_frame, on_event, sess);
    return 0;
}

static int open_sessions(char *err, size_t errlen)
{
    const struct replay_opts *o = E.o;
    E.nsessions = E.nparts * o->sessions;
    E.sessions = calloc(E.nsessions, sizeof(*E.sessions));
    if (E.sessions == NULL) {
        snprintf(err, errlen, "out of memory for %zu sessions", E.nsessions);
        return -1;
    }
    /* each session is one socket here (and one at the switch) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < E.nsessions + 64 &&
        rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warn("event=rlimit_failed why=\"%s\"", strerror(errno));
    }
    uint32_t n = 0;
    for (size_t i = 0; i < E.nparts; i++) {
        struct rp_participant *p = &E.parts[i];
        char code[MSG_AGENT_LEN + 1]; /* a copy: p->code and p->cert share E */
        memcpy(code, p->code, sizeof(code));
        snprintf(p->cert, sizeof(p->cert), "%s/%s.crt", o->pki, code);
        snprintf(p->key, sizeof(p->key), "%s/%s.key", o->pki, code);
        snprintf(p->ca, sizeof(p->ca), "%s/ca.crt", o->pki);
        struct client_opts co = {.cert = p->cert, .key = p->key, .ca = p->ca};
        char why[512];
        p->ctx = client_ssl_ctx(&co, why, sizeof(why));
        if (p->ctx == NULL) {
            snprintf(err, errlen, "participant %s: %s (see --pki)", p->code, why);
            return -1;
        }
        /* one memory of notices per participant, as one payee process
         * would keep: a notice sent again on another session or after a
         * reconnect is dropped as a repeat */
        p->notices = client_notices_new(0);
        if (p->notices == NULL) {
            snprintf(err, errlen, "out of memory for participant %s", p->code);
            return -1;
        }
        p->first_session = n;
        p->nsessions = o->sessions;
        for (unsigned j = 0; j < o->sessions; j++, n++) {
            struct rp_session *s = &E.sessions[n];
            s->participant = (uint16_t)i;
            s->index = n;
            s->addr = (uint16_t)E.addrs.current;
            s->mal_head = s->mal_tail = RP_NONE;
            client_backoff_init(&s->backoff, RP_REOPEN_MIN_MS, RP_REOPEN_MAX_MS);
            if (session_open(s, why, sizeof(why)) != 0) {
                snprintf(err, errlen, "participant %s: %s", p->code, why);
                return -1;
            }
        }
    }
    return 0;
}

static void teardown(void)
{
    for (size_t i = 0; i < E.nsessions; i++) {
        client_free(E.sessions[i].c);
        if (E.sessions[i].reopen != NULL)
            event_free(E.sessions[i].reopen);
    }
    for (size_t i = 0; i < E.nparts; i++) {
        if (E.parts[i].ctx != NULL)
            SSL_CTX_free(E.parts[i].ctx);
        client_notices_free(E.parts[i].notices);
    }
    free(E.ntab_keys);
    free(E.ntab_flags);
    struct event **evs[] = {&E.tick,    &E.second, &E.deadline, &E.sigint,
                            &E.sigterm, &E.resend, &E.sweep};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (*evs[i] != NULL)
            event_free(*evs[i]);
        *evs[i] = NULL;
    }
    if (E.base != NULL)
        event_base_free(E.base);
    hdr_free(E.interval);
    free(E.sessions);
    free(E.recs);
    free(E.blob);
    free(E.slots);
    free(E.buckets);
}

static void iso_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int check_run_id(const char *id, char *err, size_t errlen)
{
    size_t n = strlen(id);
    if (n > REPLAY_RUN_ID_MAX) {
        snprintf(err, errlen, "--run-id \"%s\": at most %d characters", id, REPLAY_RUN_ID_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))) {
            snprintf(err, errlen, "--run-id \"%s\": letters and digits only", id);
            return -1;
        }
    }
    return 0;
}

int replay_run(const struct replay_opts *o, struct replay_result *r, char *err, size_t errlen)
{
    memset(&E, 0, sizeof(E));
    memset(r, 0, sizeof(*r));
    E.o = o;
    E.r = r;
    E.phase = RP_CONNECTING;
    E.addrs = o->addrs;
    E.rng = (uint64_t)mono_us();
    err[0] = '\0';
    int rc = -1;
    r->mode = o->mode;
    r->speed = o->speed;
    r->closed = o->closed;
    iso_now(r->started_at, sizeof(r->started_at));

    if (check_run_id(o->run_id, err, errlen) != 0)
        goto done;
    if (o->run_id[0] != '\0')
        snprintf(E.run_suffix, sizeof(E.run_suffix), "-%s", o->run_id);
    r->corrected = hdr_new();
    r->uncorrected = hdr_new();
    E.interval = hdr_new();
    if (r->corrected == NULL || r->uncorrected == NULL || E.interval == NULL) {
        snprintf(err, errlen, "out of memory for histograms");
        goto done;
    }
    if (load_capture(o->capture, err, errlen) != 0)
        goto done;
    r->participants = (unsigned)E.nparts;
    if (o->mode == REPLAY_RATE)
        r->requested_rate = o->rate;
    else if (o->mode == REPLAY_SPEED)
        r->requested_rate = (double)E.nrecs * 1e6 / (double)E.span_us * o->speed;

    uint32_t slots = o->max_outstanding;
    if (slots == 0)
        slots = o->mode == REPLAY_CLOSED ? o->closed : RP_DEFAULT_OUTSTANDING;
    if (o->mode == REPLAY_CLOSED && slots < o->closed)
        slots = o->closed;
    if (slots_init(slots, err, errlen) != 0)
        goto done;

    if (o->results != NULL) {
        E.results = fopen(o->results, "w");
        if (E.results == NULL) {
            snprintf(err, errlen, "%s: %s", o->results, strerror(errno));
            goto done;
        }
        setvbuf(E.results, NULL, _IOFBF, 1 << 20);
    }

    struct event_config *cfg = event_config_new();
    if (cfg != NULL) {
        /* timerfd-backed timers: the pacing timer needs better than 1 ms */
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
        E.base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    if (E.base == NULL) {
        snprintf(err, errlen, "cannot create the event loop");
        goto done;
    }
    /* two priorities: when the pacing timer and socket events are ready in
     * the same iteration, the sends go first, so reading never makes them late */
    if (event_base_priority_init(E.base, 2) != 0) {
        snprintf(err, errlen, "cannot set up event priorities");
        goto done;
    }
    E.tick = evtimer_new(E.base, o->mode == REPLAY_CLOSED ? on_closed_retry : on_tick, NULL);
    E.second = event_new(E.base, -1, EV_PERSIST, on_second, NULL);
    E.deadline = evtimer_new(E.base, on_deadline, NULL);
    E.sigint = evsignal_new(E.base, SIGINT, on_signal, NULL);
    E.sigterm = evsignal_new(E.base, SIGTERM, on_signal, NULL);
    E.resend = evtimer_new(E.base, on_resend, NULL);
    E.sweep = evtimer_new(E.base, on_sweep, NULL);
    if (E.tick == NULL || E.second == NULL || E.deadline == NULL || E.sigint == NULL ||
        E.sigterm == NULL || E.resend == NULL || E.sweep == NULL ||
        evsignal_add(E.sigint, NULL) != 0 || evsignal_add(E.sigterm, NULL) != 0) {
        snprintf(err, errlen, "cannot create the loop's events");
        goto done;
    }
    if (event_priority_set(E.tick, 0) != 0) {
        snprintf(err, errlen, "cannot prioritise the pacing timer");
        goto done;
    }
    if (open_sessions(err, errlen) != 0)
        goto done;
    arm_deadline(o->connect_timeout_s);
    if (event_base_dispatch(E.base) < 0) {
        snprintf(err, errlen, "the event loop failed");
        goto done;
    }
    if (E.abort_why[0] != '\0' && E.t0_us == 0) {
        snprintf(err, errlen, "%s", E.abort_why);
        goto done;
    }
    r->sessions = (unsigned)E.nsessions;
    for (size_t i = 0; i < E.nsessions; i++)
        r->sessions_down += !E.sessions[i].connected;
    /* settled for the payer, never heard of by the payee */
    r->acsc_without_notice = E.pending_notices;
    r->payee_notice_repeats = E.notice_repeats;
    for (size_t i = 0; i < E.nparts; i++)
        r->payee_notice_repeats += client_notices_repeats(E.parts[i].notices);

    /* whatever is still outstanding got no answer within the drain time */
    for (size_t i = 0; i < E.nsessions; i++)
        E.sessions[i].mal_head = E.sessions[i].mal_tail = RP_NONE;
    for (uint32_t i = 0; i < E.nslots; i++)
        if (E.slots[i].used)
            complete(i, "NONE", "", 0);
    if (E.first_send_us != 0 && E.last_send_us > E.first_send_us && r->sent > 1) {
        r->elapsed_s = (double)(E.last_send_us - E.first_send_us) / 1e6;
        r->achieved_rate = (double)(r->sent - 1) / r->elapsed_s;
    }
    if (E.first_send_us != 0 && E.last_answer_us > E.first_send_us) {
        double window = (double)(E.last_answer_us - E.first_send_us) / 1e6;
        r->throughput = (double)r->answered / window;
        r->settled_rate = (double)r->settled / window;
    }

    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        r->cpu_user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
        r->cpu_system_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    } else {
        log_warn("event=getrusage_failed why=\"%s\"", strerror(errno));
    }

    if (o->hold_s > 0) {
        size_t open = 0;
        for (size_t i = 0; i < E.nsessions; i++)
            open += !E.sessions[i].closed;
        fprintf(stderr, "sikka-replay: holding %zu sessions for %.0f s\n", open, o->hold_s);
        E.phase = RP_DONE;
        struct timeval tv = {(time_t)o->hold_s,
                             (suseconds_t)((o->hold_s - (double)(time_t)o->hold_s) * 1e6)};
        if (event_base_loopexit(E.base, &tv) != 0 || event_base_dispatch(E.base) < 0)
            log_warn("event=hold_failed why=\"the event loop failed\"");
    }
    rc = 0;
done:
    if (E.results != NULL) {
        /* a write that failed on the way (disk full) shows here, or at the close */
        bool failed = ferror(E.results) != 0;
        if (fclose(E.results) != 0)
            failed = true;
        E.results = NULL;
        if (failed && rc == 0) {
            snprintf(err, errlen, "%s: cannot write the results: %s", o->results, strerror(errno));
            rc = -1;
        }
    }
    teardown();
    memset(&E, 0, sizeof(E));
    return rc;
}

void replay_result_free(struct replay_result *r)
{
    hdr_free(r->corrected);
    hdr_free(r->uncorrected);
    free(r->seconds);
    r->corrected = r->uncorrected = NULL;
    r->seconds = NULL;
}
