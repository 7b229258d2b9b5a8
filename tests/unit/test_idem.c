/* idem and hmap: keys found by (payer, msg_id) and by transfer id, outcomes
 * kept after the transfer finished, eviction oldest first by count and age. */
#include "check.h"
#include "idem.h"

int main(void)
{
    uint8_t key[16] = {1, 2, 3};
    hmap_seed(key);
    CHECK(idem_init(3, 1000) == 0);

    TEST_STEP("in flight, found by key and by id");
    struct transfer t = {0};
    snprintf(t.payer, sizeof(t.payer), "JAZZ");
    snprintf(t.msg_id, sizeof(t.msg_id), "M1");
    t.id = 42;
    t.amount = 500;
    struct idem_entry *e = idem_add_inflight(&t);
    CHECK(e != NULL);
    CHECK(idem_find("JAZZ", "M1") == e);
    CHECK(idem_find("EASY", "M1") == NULL, "the key includes the payer");
    CHECK(idem_find("JAZZ", "M2") == NULL);
    CHECK(idem_find_id(42) == e);
    CHECK(e->inflight == &t);

    TEST_STEP("finished: the outcome stays, the transfer is detached");
    t.status = TRANSFER_ACSC;
    t.settled_ms = transfer_now_ms(); /* the ledger's recorded time */
    idem_finish(e, &t);
    CHECK(e->inflight == NULL);
    CHECK_INT(e->status, TRANSFER_ACSC);
    CHECK_INT(e->amount, 500);
    CHECK_INT(e->finished_ms, t.settled_ms);
    CHECK(e->reason_text == NULL, "an acceptance keeps no text");

    TEST_STEP("a rejection keeps its text, for a replay identical to the first answer");
    struct transfer rj = {0};
    snprintf(rj.payer, sizeof(rj.payer), "JAZZ");
    snprintf(rj.msg_id, sizeof(rj.msg_id), "R1");
    rj.id = 43;
    rj.status = TRANSFER_RJCT;
    snprintf(rj.reason, sizeof(rj.reason), "AC01");
    snprintf(rj.reason_text, sizeof(rj.reason_text), "rejected by creditor agent KOKO");
    rj.settled_ms = transfer_now_ms();
    struct idem_entry *re = idem_add_inflight(&rj);
    CHECK(re != NULL);
    idem_finish(re, &rj);
    CHECK(re->reason_text != NULL && strcmp(re->reason_text, rj.reason_text) == 0);
    idem_remove(re);
    CHECK_INT(idem_finished_count(), 1);

    TEST_STEP("eviction by count, oldest first");
    for (int i = 2; i <= 4; i++) {
        struct transfer u = {0};
        snprintf(u.payer, sizeof(u.payer), "JAZZ");
        snprintf(u.msg_id, sizeof(u.msg_id), "M%d", i);
        u.id = (uint64_t)i;
        u.settled_ms = transfer_now_ms();
        struct idem_entry *f = idem_add_inflight(&u);
        CHECK(f != NULL);
        idem_finish(f, &u);
    }
    idem_evict(transfer_now_ms());
    CHECK_INT(idem_finished_count(), 3);
    CHECK(idem_find("JAZZ", "M1") == NULL, "the oldest went first");
    CHECK(idem_find("JAZZ", "M4") != NULL);

    TEST_STEP("eviction by age");
    idem_evict(transfer_now_ms() + 5000);
    CHECK_INT(idem_finished_count(), 0);
    CHECK_INT(idem_count(), 0);

    TEST_STEP("many keys: the tables grow and every key stays findable");
    idem_set_limits(1000000, 1000000);
    static struct transfer many[20000];
    for (int i = 0; i < 20000; i++) {
        snprintf(many[i].payer, sizeof(many[i].payer), "%s", i % 2 ? "JAZZ" : "EASY");
        snprintf(many[i].msg_id, sizeof(many[i].msg_id), "K-%d", i);
        many[i].id = 1000 + (uint64_t)i;
        CHECK(idem_add_inflight(&many[i]) != NULL);
    }
    for (int i = 0; i < 20000; i++) {
        struct idem_entry *f = idem_find(many[i].payer, many[i].msg_id);
        CHECK(f != NULL && f->transfer_id == many[i].id, "key %d", i);
        CHECK(idem_find_id(many[i].id) == f);
    }
    CHECK_INT(idem_count(), 20000);
    idem_free_all();
    return 0;
}
