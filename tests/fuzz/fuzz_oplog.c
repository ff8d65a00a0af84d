/* FUZZ_SOURCES: lib/oplog.c lib/hlc.c lib/crypto.c lib/util.c lib/err.c */
/*
 * fuzz_oplog.c — libFuzzer target for the oplog decoders and merge.
 *
 * The first input byte picks what the rest is: a batch, a single record or a
 * version vector.  Batches and records are applied to an oplog that already
 * holds local entries and a remote origin; afterwards the invariants that
 * must hold for any input are checked: a second application of the same
 * bytes applies nothing, a peer with our own vector lacks nothing, the
 * vector round-trips, what we hold replays the same whole or in bounded
 * batches, and queries and compaction do not crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "oplog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
count_cb(void *d, const uint8_t *rec, size_t len)
{
    struct mm__oplog_op op;
    if (mm__oplog_op_decode(&op, rec, len) != 0)
        abort(); /* we only ever hand out records we accepted */
    (*(size_t *)d)++;
    return 0;
}

static int
entry_cb(void *d, const struct mm__oplog_entry *e, int winner)
{
    (*(size_t *)d) += strlen(e->label) + e->nkeys + (size_t)winner;
    return 0;
}

/* |a| and |b| hold the same (generation, seq) for every origin but |skip|
 * (|b|'s own id: a node never takes its own records from a peer). */
static void
vec_same_but(const mm__oplog *a, const mm__oplog *b, const uint8_t *skip)
{
    size_t la = mm__oplog_vector_size(a), lb = mm__oplog_vector_size(b);
    uint8_t *va = malloc(la), *vb = malloc(lb);
    struct mm__oplog_vec x, y;
    if (!va || !vb || mm__oplog_vector_encode(a, va, la) != (long)la ||
        mm__oplog_vector_encode(b, vb, lb) != (long)lb ||
        mm__oplog_vec_decode(&x, va, la) || mm__oplog_vec_decode(&y, vb, lb))
        abort();
    uint32_t n = 0;
    for (uint32_t i = 0; i < x.count; i++) {
        const uint8_t *id = x.p + (size_t)i * 32;
        uint64_t g1, s1, g2, s2;
        if (memcmp(id, skip, MM_NODE_ID_LEN) == 0) continue;
        n++;
        mm__oplog_vec_get(&x, id, &g1, &s1);
        if (mm__oplog_vec_get(&y, id, &g2, &s2) || g1 != g2 || s1 != s2)
            abort();
    }
    if (n != y.count) abort();
    free(va);
    free(vb);
}

static void
setup(mm__oplog **o)
{
    uint8_t self[MM_NODE_ID_LEN], peer[MM_NODE_ID_LEN];
    memset(self, 0x33, sizeof(self));
    memset(peer, 0x11, sizeof(peer));
    if (mm__oplog_new(o, self, 1, NULL)) abort();
    const char *keys[] = {"k"};
    mm__oplog_register(*o, "a", "echo", MM_VIS_INTERNAL, 1, keys, 1, 5, NULL);
    mm__oplog_register(*o, "b", "echo", MM_VIS_PUBLIC, 2, NULL, 0, 6, NULL);
    mm__oplog_set_origin_state(*o, peer, 1, MM_OPLOG_SUSPECT);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0] % 3;
    data++;
    size--;

    mm__oplog *o;
    setup(&o);
    size_t n1 = 0, n2 = 0;
    int rc;
    switch (mode) {
    case 0:
        rc = mm__oplog_apply_batch(o, data, size, &n1);
        if (rc == 0) {
            mm__oplog_apply_batch(o, data, size, &n2);
            if (n2 != 0) abort(); /* exactly once */
        } else if (rc == MM_EDECODE && n1 != 0) {
            abort(); /* validated before applying */
        }
        break;
    case 1:
        rc = mm__oplog_apply_record(o, data, size, &n1);
        if (rc == 0) {
            mm__oplog_apply_record(o, data, size, &n2);
            if (n2 != 0) abort();
        }
        break;
    default: {
        size_t cnt = 0;
        long n = mm__oplog_missing(o, data, size, count_cb, &cnt);
        if (n >= 0 && (size_t)n != cnt) abort();
        /* The first bounded piece of the same answer, within its bound. */
        struct mm__oplog_batch b;
        mm__oplog_batch_init(&b);
        long k = mm__oplog_missing_batch(o, data, size, 256, &b);
        if ((k < 0) != (n < 0) || k > n) abort();
        if (k > 0 &&
            (mm__oplog_batch_finish(&b) || (b.len > 256 && b.count != 1)))
            abort();
        mm__oplog_batch_release(&b);
        break;
    }
    }

    /* A peer holding exactly our vector lacks nothing. */
    size_t vl = mm__oplog_vector_size(o);
    uint8_t *vec = malloc(vl);
    if (vec == NULL || mm__oplog_vector_encode(o, vec, vl) != (long)vl) abort();
    struct mm__oplog_vec v;
    if (mm__oplog_vec_decode(&v, vec, vl) != 0) abort();
    size_t cnt = 0;
    if (mm__oplog_missing(o, vec, vl, count_cb, &cnt) != 0 || cnt != 0) abort();
    free(vec);

    size_t acc = 0;
    mm__oplog_foreach(o, NULL, NULL, entry_cb, &acc);
    mm__oplog_foreach(o, "a", "k", entry_cb, &acc);
    mm__oplog_claimants(o, "a", entry_cb, &acc);
    (void)mm__oplog_registry_hash(o);
    (void)mm__oplog_digest(o);

    /* Everything we hold, replayed into a fresh node, gives it our vector. */
    struct mm__oplog_batch all;
    mm__oplog_batch_init(&all);
    uint8_t zero[5] = {1, 0, 0, 0, 0};
    mm__oplog_missing(o, zero, sizeof(zero), mm__oplog_batch_add_cb, &all);
    mm__oplog_batch_finish(&all);
    mm__oplog *p;
    uint8_t other[MM_NODE_ID_LEN];
    memset(other, 0x77, sizeof(other));
    if (mm__oplog_new(&p, other, 1, NULL)) abort();
    if (mm__oplog_apply_batch(p, all.buf, all.len, NULL) != 0) abort();
    mm__oplog_batch_release(&all);
    vec_same_but(o, p, other);

    /* The same in bounded pieces, each from the vector advanced past the
     * ones before, gives a second fresh node the same vector. */
    mm__oplog *q;
    if (mm__oplog_new(&q, other, 1, NULL)) abort();
    uint8_t *cur = malloc(sizeof(zero));
    size_t cl = sizeof(zero);
    if (cur == NULL) abort();
    memcpy(cur, zero, sizeof(zero));
    for (int guard = 0;; guard++) {
        struct mm__oplog_batch b;
        mm__oplog_batch_init(&b);
        long k = mm__oplog_missing_batch(o, cur, cl, 512, &b);
        if (k < 0 || guard > 100000) abort();
        if (k == 0) {
            mm__oplog_batch_release(&b);
            break;
        }
        uint8_t *next;
        size_t nl;
        if (mm__oplog_batch_finish(&b) || (b.len > 512 && b.count != 1) ||
            mm__oplog_apply_batch(q, b.buf, b.len, NULL) ||
            mm__oplog_vec_advance(cur, cl, b.buf, b.len, &next, &nl))
            abort();
        free(cur);
        cur = malloc(nl);
        if (cur == NULL) abort();
        memcpy(cur, next, nl);
        cl = nl;
        mm__free(next);
        mm__oplog_batch_release(&b);
    }
    free(cur);
    vec_same_but(o, q, other);
    mm__oplog_free(q);

    /* Compaction of every origin keeps the view and the vector. */
    uint64_t h = mm__oplog_registry_hash(p), d = mm__oplog_digest(p);
    struct mm__oplog_vec pv;
    size_t pl = mm__oplog_vector_size(p);
    uint8_t *pvec = malloc(pl);
    if (pvec == NULL || mm__oplog_vector_encode(p, pvec, pl) != (long)pl ||
        mm__oplog_vec_decode(&pv, pvec, pl))
        abort();
    for (uint32_t i = 0; i < pv.count; i++)
        if (mm__oplog_compact(p, pv.p + (size_t)i * 32) != 0) abort();
    if (mm__oplog_registry_hash(p) != h || mm__oplog_digest(p) != d) abort();
    free(pvec);
    mm__oplog_free(p);

    mm__oplog_free(o);
    return 0;
}
