/*
 * test_oplog.c — the registry replication core, driven by simulated nodes
 * that exchange records and vectors in memory.
 *
 * Every node records its events and keeps a mirror of the view built from
 * them alone; the mirror must match the oplog's own view (an added for a
 * label already visible, or a removed for one that is not, fails the test).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>

#include "common.h"
#include "crypto.h"
#include "oplog.h"

/* ---- simulated node ------------------------------------------------------ */

struct tev {
    int kind;
    char label[64];
    uint8_t origin;
    int reason;
    char key[32];
};

struct tvis {
    char label[64];
    uint8_t origin;
};

struct tnode {
    mm__oplog *o;
    uint8_t id[MM_NODE_ID_LEN];
    struct tev *ev;
    size_t nev, capev;
    struct tvis *vis;
    size_t nvis, capvis;
    size_t napplied; /* applied callbacks (local + remote) */
    size_t nremote;  /* applied callbacks for remote records */
};

static void
make_id(uint8_t *id, uint8_t n)
{
    memset(id, 0xa0, MM_NODE_ID_LEN);
    id[0] = n;
}

static long
vis_find(struct tnode *t, const char *label)
{
    for (size_t i = 0; i < t->nvis; i++)
        if (strcmp(t->vis[i].label, label) == 0) return (long)i;
    return -1;
}

static void
node_event_cb(void *data, const struct mm__oplog_event *ev)
{
    struct tnode *t = data;
    if (t->nev == t->capev) {
        t->capev = t->capev ? t->capev * 2 : 64;
        t->ev = realloc(t->ev, t->capev * sizeof(*t->ev));
        assert_non_null(t->ev);
    }
    struct tev *r = &t->ev[t->nev++];
    memset(r, 0, sizeof(*r));
    r->kind = ev->kind;
    snprintf(r->label, sizeof(r->label), "%s", ev->entry->label);
    r->origin = ev->entry->origin[0];
    r->reason = ev->reason;
    if (ev->key) snprintf(r->key, sizeof(r->key), "%s", ev->key);

    long i = vis_find(t, ev->entry->label);
    switch (ev->kind) {
    case MM_OPLOG_ADDED:
        assert_int_equal(i, -1); /* no duplicate added */
        if (t->nvis == t->capvis) {
            t->capvis = t->capvis ? t->capvis * 2 : 64;
            t->vis = realloc(t->vis, t->capvis * sizeof(*t->vis));
            assert_non_null(t->vis);
        }
        snprintf(t->vis[t->nvis].label, sizeof(t->vis[0].label), "%s",
                 ev->entry->label);
        t->vis[t->nvis++].origin = ev->entry->origin[0];
        break;
    case MM_OPLOG_REMOVED:
        assert_true(i >= 0); /* removed follows an added */
        assert_int_equal(t->vis[i].origin, ev->entry->origin[0]);
        t->vis[i] = t->vis[--t->nvis];
        break;
    case MM_OPLOG_KEY_ADDED:
        assert_true(i >= 0);
        assert_non_null(ev->key);
        break;
    default:
        fail();
    }
}

static void
node_applied_cb(void *data, const uint8_t *rec, size_t len, int local)
{
    struct tnode *t = data;
    struct mm__oplog_op op;
    assert_int_equal(mm__oplog_op_decode(&op, rec, len), 0);
    t->napplied++;
    if (!local) t->nremote++;
}

static void
node_init(struct tnode *t, uint8_t n, uint64_t gen)
{
    memset(t, 0, sizeof(*t));
    make_id(t->id, n);
    struct mm__oplog_cbs cbs = {node_event_cb, node_applied_cb, t};
    assert_int_equal(mm__oplog_new(&t->o, t->id, gen, &cbs), 0);
}

static void
node_free(struct tnode *t)
{
    mm__oplog_free(t->o);
    free(t->ev);
    free(t->vis);
    memset(t, 0, sizeof(*t));
}

static int
check_cb(void *data, const struct mm__oplog_entry *e, int winner)
{
    struct tnode *t = data;
    long i = vis_find(t, e->label);
    assert_true(i >= 0);
    assert_int_equal(t->vis[i].origin, e->origin[0]);
    assert_true(winner);
    return 0;
}

/* The mirror built from events equals the oplog's view. */
static void
node_check(struct tnode *t)
{
    long n = mm__oplog_foreach(t->o, NULL, NULL, check_cb, t);
    assert_int_equal(n, (long)t->nvis);
    assert_int_equal(mm__oplog_size(t->o), t->nvis);
}

static void
node_reg(struct tnode *t, const char *label, uint64_t hlc)
{
    assert_int_equal(mm__oplog_register(t->o, label, "echo", MM_VIS_INTERNAL,
                                        hlc, NULL, 0, hlc, NULL),
                     0);
}

/* |a| pulls what it lacks from |b|; returns the records newly applied. */
static size_t
pull(struct tnode *a, struct tnode *b)
{
    size_t vl = mm__oplog_vector_size(a->o);
    uint8_t *vec = malloc(vl);
    assert_int_equal(mm__oplog_vector_encode(a->o, vec, vl), (long)vl);
    struct mm__oplog_batch batch;
    mm__oplog_batch_init(&batch);
    long n = mm__oplog_missing(b->o, vec, vl, mm__oplog_batch_add_cb, &batch);
    assert_true(n >= 0);
    assert_int_equal((uint32_t)n, batch.count);
    assert_int_equal(mm__oplog_batch_finish(&batch), 0);
    size_t applied = 0;
    assert_int_equal(
        mm__oplog_apply_batch(a->o, batch.buf, batch.len, &applied), 0);
    mm__oplog_batch_release(&batch);
    free(vec);
    return applied;
}

/* Pairwise anti-entropy until a full round changes nothing. */
static void
converge(struct tnode *nodes, size_t n)
{
    for (int round = 0; round < 10; round++) {
        size_t changed = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                if (i != j) changed += pull(&nodes[i], &nodes[j]);
        if (changed == 0) return;
    }
    fail_msg("no convergence in 10 rounds");
}

/* Copies the records of |t|'s own log from seq |from|. */
struct recs {
    uint8_t *p[2048];
    size_t len[2048];
    size_t n;
};

static int
recs_add_cb(void *data, const uint8_t *rec, size_t len)
{
    struct recs *r = data;
    assert_true(r->n < MM_ARRAY_SIZE(r->p));
    r->p[r->n] = malloc(len);
    memcpy(r->p[r->n], rec, len);
    r->len[r->n++] = len;
    return 0;
}

static void
recs_free(struct recs *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->p[i]);
    r->n = 0;
}

static void
own_records(struct tnode *t, uint64_t from, struct recs *r)
{
    assert_int_equal(mm__oplog_ops_from(t->o, t->id, from, recs_add_cb, r), 0);
}

static size_t
apply1(struct tnode *t, const uint8_t *rec, size_t len)
{
    size_t n = 99;
    assert_int_equal(mm__oplog_apply_record(t->o, rec, len, &n), 0);
    return n;
}

static size_t
count_events(struct tnode *t, int kind, const char *label, int reason)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nev; i++)
        if (t->ev[i].kind == kind &&
            (label == NULL || strcmp(t->ev[i].label, label) == 0) &&
            (reason < 0 || t->ev[i].reason == reason))
            n++;
    return n;
}

/* A raw remove record, as a misbehaving or foreign origin would send it. */
static size_t
raw_remove(uint8_t *out, const uint8_t *origin, uint64_t gen, uint64_t seq,
           const char *label)
{
    size_t ll = strlen(label);
    out[0] = MM_OPLOG_REMOVE;
    memcpy(out + 1, origin, MM_NODE_ID_LEN);
    mm__put_u64(out + 17, gen);
    mm__put_u64(out + 25, seq);
    mm__put_u16(out + 33, (uint16_t)ll);
    memcpy(out + 35, label, ll);
    out[35 + ll] = MM_REASON_STOPPED;
    return 36 + ll;
}

/* ---- tests --------------------------------------------------------------- */

static void
test_oplog_seqs_start_at_one_gap_free(void **state)
{
    (void)state;
    struct tnode a;
    node_init(&a, 1, 1);
    uint64_t s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    const char *keys[] = {"cache"};
    assert_int_equal(mm__oplog_register(a.o, "cache/user", "kv", MM_VIS_PUBLIC,
                                        7, keys, 1, 100, &s1),
                     0);
    assert_int_equal(mm__oplog_check_in(a.o, "cache/user", "hot", &s2), 0);
    assert_int_equal(mm__oplog_register(a.o, "worker/0", "echo",
                                        MM_VIS_INTERNAL, 8, NULL, 0, 101, &s3),
                     0);
    assert_int_equal(mm__oplog_remove(a.o, "worker/0", MM_REASON_NORMAL, &s4),
                     0);
    assert_int_equal(s1, 1);
    assert_int_equal(s2, 2);
    assert_int_equal(s3, 3);
    assert_int_equal(s4, 4);
    /* Refusals take no seq. */
    assert_int_equal(mm__oplog_register(a.o, "cache/user", "kv", MM_VIS_PUBLIC,
                                        9, NULL, 0, 1, NULL),
                     MM_EEXISTS);
    assert_int_equal(mm__oplog_remove(a.o, "nosuch", 0, NULL), MM_ENOTFOUND);
    assert_int_equal(mm__oplog_check_in(a.o, "nosuch", "k", NULL),
                     MM_ENOTFOUND);
    assert_int_equal(mm__oplog_check_in(a.o, "cache/user", "hot", NULL),
                     MM_EEXISTS);
    struct recs r = {0};
    own_records(&a, 1, &r);
    assert_int_equal(r.n, 4);
    for (size_t i = 0; i < r.n; i++) {
        struct mm__oplog_op op;
        assert_int_equal(mm__oplog_op_decode(&op, r.p[i], r.len[i]), 0);
        assert_int_equal(op.seq, i + 1);
        assert_int_equal(op.generation, 1);
        assert_memory_equal(op.origin, a.id, MM_NODE_ID_LEN);
    }
    recs_free(&r);
    const struct mm__oplog_entry *e = mm__oplog_lookup(a.o, "cache/user");
    assert_non_null(e);
    assert_int_equal(e->nkeys, 2);
    assert_string_equal(e->keys[1], "hot");
    assert_null(mm__oplog_lookup(a.o, "worker/0"));
    assert_int_equal(a.napplied, 4);
    node_check(&a);
    node_free(&a);
}

static void
test_oplog_private_never_takes_a_seq(void **state)
{
    (void)state;
    struct tnode a, b;
    node_init(&a, 1, 1);
    node_init(&b, 2, 1);
    uint64_t s = 0;
    assert_int_equal(mm__oplog_register(a.o, "x/1", "echo", MM_VIS_INTERNAL, 1,
                                        NULL, 0, 1, &s),
                     0);
    assert_int_equal(s, 1);
    s = 0;
    assert_int_equal(mm__oplog_register(a.o, "x/2", "echo", MM_VIS_PRIVATE, 2,
                                        NULL, 0, 2, &s),
                     MM_EINVAL);
    assert_int_equal(s, 0);
    assert_int_equal(mm__oplog_register(a.o, "x/3", "echo", MM_VIS_INTERNAL, 3,
                                        NULL, 0, 3, &s),
                     0);
    assert_int_equal(s, 2);
    /* The peer applies both without waiting for a missing seq. */
    struct recs r = {0};
    own_records(&a, 1, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(apply1(&b, r.p[0], r.len[0]), 1);
    assert_int_equal(apply1(&b, r.p[1], r.len[1]), 1);
    assert_int_equal(mm__oplog_pending(b.o), 0);
    assert_non_null(mm__oplog_lookup(b.o, "x/3"));
    assert_null(mm__oplog_lookup(b.o, "x/2"));
    assert_int_equal(mm__oplog_registry_hash(a.o),
                     mm__oplog_registry_hash(b.o));
    recs_free(&r);
    node_free(&a);
    node_free(&b);
}

static void
test_oplog_apply_exactly_once(void **state)
{
    (void)state;
    struct tnode a, b;
    node_init(&a, 1, 1);
    node_init(&b, 2, 1);
    const char *keys[] = {"k"};
    assert_int_equal(mm__oplog_register(a.o, "svc", "echo", MM_VIS_INTERNAL, 1,
                                        keys, 1, 5, NULL),
                     0);
    assert_int_equal(mm__oplog_check_in(a.o, "svc", "k2", NULL), 0);
    struct recs r = {0};
    own_records(&a, 1, &r);
    assert_int_equal(apply1(&b, r.p[0], r.len[0]), 1);
    assert_int_equal(apply1(&b, r.p[0], r.len[0]), 0);
    assert_int_equal(apply1(&b, r.p[1], r.len[1]), 1);
    assert_int_equal(apply1(&b, r.p[1], r.len[1]), 0);
    assert_int_equal(apply1(&b, r.p[0], r.len[0]), 0);
    assert_int_equal(count_events(&b, MM_OPLOG_ADDED, "svc", -1), 1);
    assert_int_equal(count_events(&b, MM_OPLOG_KEY_ADDED, "svc", -1), 1);
    assert_int_equal(b.nremote, 2);
    /* A batch of duplicates applies nothing. */
    assert_int_equal(pull(&b, &a), 0);
    const struct mm__oplog_entry *e = mm__oplog_lookup(b.o, "svc");
    assert_non_null(e);
    assert_int_equal(e->nkeys, 2);
    /* Our own records echoed back by a peer change nothing. */
    assert_int_equal(apply1(&a, r.p[0], r.len[0]), 0);
    recs_free(&r);
    node_check(&b);
    node_free(&a);
    node_free(&b);
}

static void
test_oplog_out_of_order_buffered(void **state)
{
    (void)state;
    struct tnode a, b;
    node_init(&a, 1, 1);
    node_init(&b, 2, 1);
    node_reg(&a, "l/1", 1);
    node_reg(&a, "l/2", 2);
    assert_int_equal(mm__oplog_remove(a.o, "l/1", MM_REASON_CRASH, NULL), 0);
    struct recs r = {0};
    own_records(&a, 1, &r);
    assert_int_equal(apply1(&b, r.p[2], r.len[2]), 0);
    assert_int_equal(apply1(&b, r.p[1], r.len[1]), 0);
    assert_int_equal(apply1(&b, r.p[2], r.len[2]), 0); /* duplicate early */
    assert_int_equal(mm__oplog_pending(b.o), 2);
    assert_int_equal(mm__oplog_size(b.o), 0);
    assert_int_equal(b.nev, 0);
    assert_int_equal(apply1(&b, r.p[0], r.len[0]), 3);
    assert_int_equal(mm__oplog_pending(b.o), 0);
    /* Events in origin order: added l/1, added l/2, removed l/1 (crash). */
    assert_int_equal(b.nev, 3);
    assert_int_equal(b.ev[0].kind, MM_OPLOG_ADDED);
    assert_string_equal(b.ev[0].label, "l/1");
    assert_int_equal(b.ev[1].kind, MM_OPLOG_ADDED);
    assert_string_equal(b.ev[1].label, "l/2");
    assert_int_equal(b.ev[2].kind, MM_OPLOG_REMOVED);
    assert_string_equal(b.ev[2].label, "l/1");
    assert_int_equal(b.ev[2].reason, MM_REASON_CRASH);
    assert_int_equal(b.nremote, 3);
    recs_free(&r);
    node_check(&b);
    node_free(&a);
    node_free(&b);
}

static void
test_oplog_pending_is_bounded(void **state)
{
    (void)state;
    struct tnode a, b;
    node_init(&a, 1, 1);
    node_init(&b, 2, 1);
    char label[32];
    size_t total = MM_OPLOG_PENDING_MAX + 50;
    for (size_t i = 0; i < total; i++) {
        snprintf(label, sizeof(label), "l/%zu", i);
        node_reg(&a, label, i + 1);
    }
    struct recs r = {0};
    own_records(&a, 1, &r);
    for (size_t i = r.n; i-- > 1;)
        apply1(&b, r.p[i], r.len[i]);
    assert_int_equal(mm__oplog_pending(b.o), MM_OPLOG_PENDING_MAX);
    /* The first one unblocks the buffered run; the rest comes by anti-entropy.
     */
    assert_int_equal(apply1(&b, r.p[0], r.len[0]), MM_OPLOG_PENDING_MAX + 1);
    assert_int_equal(mm__oplog_pending(b.o), 0);
    assert_int_equal(pull(&b, &a), total - MM_OPLOG_PENDING_MAX - 1);
    assert_int_equal(mm__oplog_size(b.o), total);
    assert_int_equal(mm__oplog_registry_hash(a.o),
                     mm__oplog_registry_hash(b.o));
    recs_free(&r);
    node_check(&b);
    node_free(&a);
    node_free(&b);
}

static void
test_oplog_older_generation_discarded(void **state)
{
    (void)state;
    struct tnode a1, a2, b;
    node_init(&a1, 1, 1);
    node_init(&a2, 1, 2); /* the same node, restarted */
    node_init(&b, 2, 1);
    node_reg(&a1, "old", 1);
    node_reg(&a2, "new", 2);
    assert_int_equal(pull(&b, &a2), 1);
    struct recs r = {0};
    own_records(&a1, 1, &r);
    assert_int_equal(apply1(&b, r.p[0], r.len[0]), 0);
    assert_null(mm__oplog_lookup(b.o, "old"));
    assert_non_null(mm__oplog_lookup(b.o, "new"));
    struct mm__oplog_origin_info info;
    assert_int_equal(mm__oplog_origin_info(b.o, a2.id, &info), 0);
    assert_int_equal(info.generation, 2);
    assert_int_equal(info.seq, 1);
    /* Membership news about the old generation is stale too. */
    assert_int_equal(mm__oplog_set_origin_state(b.o, a1.id, 1, MM_OPLOG_FAILED),
                     0);
    assert_non_null(mm__oplog_lookup(b.o, "new"));
    recs_free(&r);
    node_check(&b);
    node_free(&a1);
    node_free(&a2);
    node_free(&b);
}

static void
test_oplog_newer_generation_replaces(void **state)
{
    (void)state;
    struct tnode a1, a2, b;
    node_init(&a1, 1, 1);
    node_init(&a2, 1, 2);
    node_init(&b, 2, 1);
    node_reg(&a1, "x", 1);
    node_reg(&a1, "y", 2);
    node_reg(&a2, "z", 3);
    node_reg(&a2, "w", 4);
    assert_int_equal(pull(&b, &a1), 2);
    assert_int_equal(mm__oplog_size(b.o), 2);
    /* Seq 2 of generation 2 arrives first: the old generation goes at once. */
    struct recs r = {0};
    own_records(&a2, 1, &r);
    assert_int_equal(apply1(&b, r.p[1], r.len[1]), 0);
    assert_int_equal(
        count_events(&b, MM_OPLOG_REMOVED, NULL, MM_OPLOG_REASON_GENERATION),
        2);
    assert_int_equal(mm__oplog_size(b.o), 0);
    assert_int_equal(apply1(&b, r.p[0], r.len[0]), 2);
    assert_non_null(mm__oplog_lookup(b.o, "z"));
    assert_non_null(mm__oplog_lookup(b.o, "w"));
    assert_null(mm__oplog_lookup(b.o, "x"));
    /* A peer still holding generation 1 is sent nothing of it. */
    assert_int_equal(pull(&a1, &b), 0);
    recs_free(&r);
    node_check(&b);
    node_free(&a1);
    node_free(&a2);
    node_free(&b);
}

static void
test_oplog_remove_is_owner_scoped(void **state)
{
    (void)state;
    struct tnode a, b;
    node_init(&a, 1, 1);
    node_init(&b, 2, 1);
    node_reg(&a, "svc", 1);
    assert_int_equal(pull(&b, &a), 1);
    uint8_t c[MM_NODE_ID_LEN], rec[64];
    make_id(c, 3);
    size_t n = raw_remove(rec, c, 1, 1, "svc");
    assert_int_equal(apply1(&b, rec, n), 1); /* applied to C's log ... */
    const struct mm__oplog_entry *e = mm__oplog_lookup(b.o, "svc");
    assert_non_null(e); /* ... but A's entry stays */
    assert_int_equal(e->origin[0], 1);
    assert_int_equal(count_events(&b, MM_OPLOG_REMOVED, NULL, -1), 0);
    /* A remove claiming to come from B itself is ignored by B. */
    n = raw_remove(rec, b.id, 1, 1, "svc");
    assert_int_equal(apply1(&b, rec, n), 0);
    /* The owner's remove works. */
    assert_int_equal(mm__oplog_remove(a.o, "svc", MM_REASON_STOPPED, NULL), 0);
    assert_int_equal(pull(&b, &a), 1);
    assert_null(mm__oplog_lookup(b.o, "svc"));
    assert_int_equal(
        count_events(&b, MM_OPLOG_REMOVED, "svc", MM_REASON_STOPPED), 1);
    node_check(&b);
    node_free(&a);
    node_free(&b);
}

static void
test_oplog_failed_origin_hidden_then_restored(void **state)
{
    (void)state;
    struct tnode a, b;
    node_init(&a, 1, 1);
    node_init(&b, 2, 1);
    node_reg(&a, "a/1", 1);
    node_reg(&a, "a/2", 2);
    node_reg(&b, "b/1", 3);
    assert_int_equal(pull(&b, &a), 2);
    size_t remote_before = b.nremote;
    uint64_t digest = mm__oplog_digest(b.o);

    assert_int_equal(mm__oplog_set_origin_state(b.o, a.id, 1, MM_OPLOG_SUSPECT),
                     0);
    assert_int_equal(mm__oplog_size(b.o), 3); /* suspect stays in view */
    assert_int_equal(mm__oplog_set_origin_state(b.o, a.id, 1, MM_OPLOG_FAILED),
                     0);
    assert_int_equal(
        count_events(&b, MM_OPLOG_REMOVED, NULL, MM_REASON_NODE_DOWN), 2);
    assert_null(mm__oplog_lookup(b.o, "a/1"));
    assert_int_equal(mm__oplog_claimants(b.o, "a/1", NULL, NULL), 0);
    assert_int_equal(mm__oplog_size(b.o), 1);
    /* Log and vector entry kept. */
    struct mm__oplog_origin_info info;
    assert_int_equal(mm__oplog_origin_info(b.o, a.id, &info), 0);
    assert_int_equal(info.seq, 2);
    assert_int_equal(info.state, MM_OPLOG_FAILED);
    assert_int_equal(mm__oplog_digest(b.o), digest);
    /* failed -> left changes nothing visible. */
    size_t nev = b.nev;
    assert_int_equal(mm__oplog_set_origin_state(b.o, a.id, 1, MM_OPLOG_LEFT),
                     0);
    assert_int_equal(b.nev, nev);
    /* Back alive: entries return with added events, nothing resent. */
    assert_int_equal(mm__oplog_set_origin_state(b.o, a.id, 1, MM_OPLOG_ALIVE),
                     0);
    assert_int_equal(count_events(&b, MM_OPLOG_ADDED, "a/1", -1), 2);
    assert_int_equal(count_events(&b, MM_OPLOG_ADDED, "a/2", -1), 2);
    assert_non_null(mm__oplog_lookup(b.o, "a/1"));
    assert_int_equal(b.nremote, remote_before);
    assert_int_equal(pull(&b, &a), 0);
    /* Records that arrive while failed are applied silently, then shown. */
    assert_int_equal(mm__oplog_set_origin_state(b.o, a.id, 1, MM_OPLOG_FAILED),
                     0);
    node_reg(&a, "a/3", 4);
    assert_int_equal(mm__oplog_remove(a.o, "a/1", MM_REASON_NORMAL, NULL), 0);
    nev = b.nev;
    assert_int_equal(pull(&b, &a), 2);
    assert_int_equal(b.nev, nev);
    assert_int_equal(mm__oplog_set_origin_state(b.o, a.id, 1, MM_OPLOG_ALIVE),
                     0);
    assert_null(mm__oplog_lookup(b.o, "a/1"));
    assert_non_null(mm__oplog_lookup(b.o, "a/3"));
    assert_int_equal(pull(&a, &b), 1);
    assert_int_equal(mm__oplog_registry_hash(a.o),
                     mm__oplog_registry_hash(b.o));
    /* The local node itself cannot be failed. */
    assert_int_equal(mm__oplog_set_origin_state(b.o, b.id, 1, MM_OPLOG_FAILED),
                     0);
    assert_non_null(mm__oplog_lookup(b.o, "b/1"));
    node_check(&b);
    node_free(&a);
    node_free(&b);
}

static void
test_oplog_reaped_origin_dropped(void **state)
{
    (void)state;
    struct tnode a, b;
    node_init(&a, 1, 1);
    node_init(&b, 2, 1);
    node_reg(&a, "a/1", 1);
    assert_int_equal(pull(&b, &a), 1);
    assert_int_equal(mm__oplog_set_origin_state(b.o, a.id, 1, MM_OPLOG_FAILED),
                     0);
    assert_int_equal(mm__oplog_set_origin_state(b.o, a.id, 1, MM_OPLOG_REAPED),
                     0);
    struct mm__oplog_origin_info info;
    assert_int_equal(mm__oplog_origin_info(b.o, a.id, &info), MM_ENOTFOUND);
    assert_int_equal(mm__oplog_vector_size(b.o), 5 + 0);
    /* Late copies of the reaped generation are discarded. */
    assert_int_equal(pull(&b, &a), 0);
    assert_null(mm__oplog_lookup(b.o, "a/1"));
    /* Reaping an origin in view emits removed (reaped). */
    struct tnode c;
    node_init(&c, 3, 1);
    node_reg(&c, "c/1", 1);
    assert_int_equal(pull(&b, &c), 1);
    assert_int_equal(mm__oplog_set_origin_state(b.o, c.id, 1, MM_OPLOG_REAPED),
                     0);
    assert_int_equal(
        count_events(&b, MM_OPLOG_REMOVED, "c/1", MM_OPLOG_REASON_REAPED), 1);
    /* A new generation of a reaped node is welcome. */
    struct tnode a2;
    node_init(&a2, 1, 2);
    node_reg(&a2, "a/again", 9);
    assert_int_equal(pull(&b, &a2), 1);
    assert_non_null(mm__oplog_lookup(b.o, "a/again"));
    node_check(&b);
    node_free(&a);
    node_free(&a2);
    node_free(&b);
    node_free(&c);
}

/* Four claimants of "svc" (two with equal HLC) and one plain label. */
static void
conflict_records(struct recs *r)
{
    struct tnode n[4];
    static const uint64_t hlc[4] = {50, 30, 30, 70};
    static const uint8_t ids[4] = {9, 7, 4, 2};
    for (int i = 0; i < 4; i++) {
        node_init(&n[i], ids[i], 1);
        node_reg(&n[i], "svc", hlc[i]);
        if (i == 3) node_reg(&n[i], "other", 1);
        own_records(&n[i], 1, r);
        node_free(&n[i]);
    }
}

static int
claim_order_cb(void *data, const struct mm__oplog_entry *e, int winner)
{
    uint8_t *out = data;
    size_t i = 0;
    while (out[i])
        i++;
    out[i] = e->origin[0];
    return 0;
}

/* Applies |r| in the order |perm| to a fresh observer; returns its hash. */
static uint64_t
conflict_check(struct recs *r, const size_t *perm)
{
    struct tnode obs;
    node_init(&obs, 0x50, 1);
    size_t applied = 0;
    for (size_t k = 0; k < r->n; k++)
        applied += apply1(&obs, r->p[perm[k]], r->len[perm[k]]);
    assert_int_equal(applied, r->n);
    const struct mm__oplog_entry *w = mm__oplog_lookup(obs.o, "svc");
    assert_non_null(w);
    /* hlc 30 twice: the lower node id (4) wins. */
    assert_int_equal(w->origin[0], 4);
    uint8_t order[8] = {0};
    assert_int_equal(mm__oplog_claimants(obs.o, "svc", claim_order_cb, order),
                     4);
    assert_memory_equal(order, ((uint8_t[]){4, 7, 9, 2}), 4);
    assert_non_null(mm__oplog_lookup(obs.o, "other"));
    uint64_t h = mm__oplog_registry_hash(obs.o);
    node_check(&obs);
    node_free(&obs);
    return h;
}

static void
test_oplog_conflict_same_winner_in_every_order(void **state)
{
    (void)state;
    struct recs r = {0};
    conflict_records(&r);
    assert_int_equal(r.n, 5);
    size_t perm[5] = {0, 1, 2, 3, 4}, c[5] = {0};
    uint64_t hash0 = conflict_check(&r, perm);
    size_t count = 1;
    /* Heap's algorithm over all 120 orders. */
    for (size_t i = 1; i < 5;) {
        if (c[i] < i) {
            size_t j = (i % 2) ? c[i] : 0, t = perm[j];
            perm[j] = perm[i];
            perm[i] = t;
            assert_int_equal(conflict_check(&r, perm), hash0);
            count++;
            c[i]++;
            i = 1;
        } else {
            c[i] = 0;
            i++;
        }
    }
    assert_int_equal(count, 120);
    recs_free(&r);
}

static void
test_oplog_shadowed_promoted(void **state)
{
    (void)state;
    struct tnode a, b, obs;
    node_init(&a, 1, 1);
    node_init(&b, 2, 1);
    node_init(&obs, 3, 1);
    node_reg(&b, "svc", 20);
    assert_int_equal(pull(&obs, &b), 1);
    assert_int_equal(mm__oplog_lookup(obs.o, "svc")->origin[0], 2);
    /* An earlier claim arrives: B is shadowed (removed), A added. */
    node_reg(&a, "svc", 10);
    assert_int_equal(pull(&obs, &a), 1);
    assert_int_equal(obs.nev, 3);
    assert_int_equal(obs.ev[1].kind, MM_OPLOG_REMOVED);
    assert_int_equal(obs.ev[1].origin, 2);
    assert_int_equal(obs.ev[1].reason, MM_OPLOG_REASON_SHADOWED);
    assert_int_equal(obs.ev[2].kind, MM_OPLOG_ADDED);
    assert_int_equal(obs.ev[2].origin, 1);
    /* A check-in on the shadowed claim is silent. */
    assert_int_equal(mm__oplog_check_in(b.o, "svc", "k", NULL), 0);
    assert_int_equal(pull(&obs, &b), 1);
    assert_int_equal(obs.nev, 3);
    /* The winner's origin fails: B promoted with an added. */
    assert_int_equal(
        mm__oplog_set_origin_state(obs.o, a.id, 1, MM_OPLOG_FAILED), 0);
    assert_int_equal(obs.nev, 5);
    assert_int_equal(obs.ev[3].kind, MM_OPLOG_REMOVED);
    assert_int_equal(obs.ev[3].reason, MM_REASON_NODE_DOWN);
    assert_int_equal(obs.ev[4].kind, MM_OPLOG_ADDED);
    assert_int_equal(obs.ev[4].origin, 2);
    /* A returns and wins again. */
    assert_int_equal(mm__oplog_set_origin_state(obs.o, a.id, 1, MM_OPLOG_ALIVE),
                     0);
    assert_int_equal(mm__oplog_lookup(obs.o, "svc")->origin[0], 1);
    assert_int_equal(obs.ev[5].reason, MM_OPLOG_REASON_SHADOWED);
    /* The winner is removed: B promoted again. */
    assert_int_equal(mm__oplog_remove(a.o, "svc", MM_REASON_STOPPED, NULL), 0);
    assert_int_equal(pull(&obs, &a), 1);
    const struct mm__oplog_entry *w = mm__oplog_lookup(obs.o, "svc");
    assert_int_equal(w->origin[0], 2);
    assert_int_equal(obs.ev[obs.nev - 2].kind, MM_OPLOG_REMOVED);
    assert_int_equal(obs.ev[obs.nev - 2].reason, MM_REASON_STOPPED);
    assert_int_equal(obs.ev[obs.nev - 1].kind, MM_OPLOG_ADDED);
    /* The key checked in while shadowed is there after promotion. */
    long n = mm__oplog_foreach(obs.o, NULL, "k", NULL, NULL);
    assert_int_equal(n, 1);
    node_check(&obs);
    node_free(&a);
    node_free(&b);
    node_free(&obs);
}

static void
test_oplog_key_events_and_listing_filters(void **state)
{
    (void)state;
    struct tnode a, b;
    node_init(&a, 1, 1);
    node_init(&b, 2, 1);
    const char *pool[] = {"pool"};
    assert_int_equal(mm__oplog_register(a.o, "w/2", "echo", MM_VIS_INTERNAL, 1,
                                        pool, 1, 1, NULL),
                     0);
    node_reg(&a, "w/1", 2);
    node_reg(&a, "w", 3);
    node_reg(&a, "v/1", 4);
    node_reg(&a, "x/1", 5);
    assert_int_equal(mm__oplog_check_in(a.o, "w/1", "pool", NULL), 0);
    assert_int_equal(pull(&b, &a), 6);
    assert_int_equal(count_events(&b, MM_OPLOG_KEY_ADDED, "w/1", -1), 1);
    assert_string_equal(b.ev[b.nev - 1].key, "pool");

    const char *all[] = {"v/1", "w", "w/1", "w/2", "x/1"};
    assert_int_equal(mm__oplog_foreach(b.o, NULL, NULL, NULL, NULL), 5);
    /* Prefix "w/" in order, then key "pool", then both. */
    struct {
        const char *prefix, *key;
        long n;
    } cases[] = {{"w/", NULL, 2},   {"w", NULL, 3},   {NULL, "pool", 2},
                 {"w/", "pool", 2}, {"v", "pool", 0}, {"zz", NULL, 0},
                 {"", NULL, 5}};
    for (size_t i = 0; i < MM_ARRAY_SIZE(cases); i++)
        assert_int_equal(
            mm__oplog_foreach(b.o, cases[i].prefix, cases[i].key, NULL, NULL),
            cases[i].n);
    for (size_t k = 0; k < MM_ARRAY_SIZE(all); k++)
        assert_non_null(mm__oplog_lookup(b.o, all[k]));
    node_check(&b);
    node_free(&a);
    node_free(&b);
}

struct order_ctx {
    char prev[64];
    int n;
};

static int
order_cb(void *data, const struct mm__oplog_entry *e, int winner)
{
    struct order_ctx *c = data;
    if (c->n) assert_true(strcmp(c->prev, e->label) < 0);
    snprintf(c->prev, sizeof(c->prev), "%s", e->label);
    c->n++;
    return 0;
}

static void
test_oplog_foreach_in_label_order(void **state)
{
    (void)state;
    struct tnode a;
    node_init(&a, 1, 1);
    char label[32];
    for (int i = 0; i < 200; i++) {
        snprintf(label, sizeof(label), "n/%d", (i * 37) % 200);
        node_reg(&a, label, (uint64_t)i + 1);
    }
    struct order_ctx c = {{0}, 0};
    assert_int_equal(mm__oplog_foreach(a.o, NULL, NULL, order_cb, &c), 200);
    assert_int_equal(c.n, 200);
    memset(&c, 0, sizeof(c));
    assert_int_equal(mm__oplog_foreach(a.o, "n/1", NULL, order_cb, &c), 111);
    assert_string_equal(c.prev, "n/199");
    node_free(&a);
}

static void
test_oplog_three_nodes_partition_converge(void **state)
{
    (void)state;
    struct tnode n[3];
    for (int i = 0; i < 3; i++)
        node_init(&n[i], (uint8_t)(i + 1), 1);
    node_reg(&n[0], "n1/a", 1);
    node_reg(&n[0], "n1/b", 2);
    node_reg(&n[1], "n2/a", 3);
    node_reg(&n[2], "n3/a", 4);
    converge(n, 3);
    /* Partition {n1} | {n2, n3}. */
    for (int i = 1; i < 3; i++) {
        assert_int_equal(
            mm__oplog_set_origin_state(n[0].o, n[i].id, 1, MM_OPLOG_FAILED), 0);
        assert_int_equal(
            mm__oplog_set_origin_state(n[i].o, n[0].id, 1, MM_OPLOG_FAILED), 0);
    }
    node_reg(&n[0], "shared", 100);
    assert_int_equal(mm__oplog_remove(n[0].o, "n1/a", MM_REASON_NORMAL, NULL),
                     0);
    node_reg(&n[0], "n1/c", 101);
    node_reg(&n[1], "shared", 90); /* earlier: wins after the heal */
    assert_int_equal(mm__oplog_remove(n[1].o, "n2/a", MM_REASON_NORMAL, NULL),
                     0);
    node_reg(&n[2], "n3/b", 102);
    assert_int_equal(mm__oplog_check_in(n[2].o, "n3/a", "k", NULL), 0);
    /* Traffic inside the minority/majority sides only. */
    pull(&n[1], &n[2]);
    pull(&n[2], &n[1]);
    assert_int_equal(mm__oplog_lookup(n[0].o, "shared")->origin[0], 1);
    assert_int_equal(mm__oplog_lookup(n[2].o, "shared")->origin[0], 2);
    assert_null(mm__oplog_lookup(n[1].o, "n1/b"));
    /* Heal. */
    for (int i = 1; i < 3; i++) {
        mm__oplog_set_origin_state(n[0].o, n[i].id, 1, MM_OPLOG_ALIVE);
        mm__oplog_set_origin_state(n[i].o, n[0].id, 1, MM_OPLOG_ALIVE);
    }
    converge(n, 3);
    uint64_t h = mm__oplog_registry_hash(n[0].o);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mm__oplog_registry_hash(n[i].o), h);
        assert_int_equal(mm__oplog_digest(n[i].o), mm__oplog_digest(n[0].o));
        assert_int_equal(mm__oplog_lookup(n[i].o, "shared")->origin[0], 2);
        assert_null(mm__oplog_lookup(n[i].o, "n1/a"));
        assert_null(mm__oplog_lookup(n[i].o, "n2/a"));
        assert_non_null(mm__oplog_lookup(n[i].o, "n1/b"));
        assert_non_null(mm__oplog_lookup(n[i].o, "n1/c"));
        assert_non_null(mm__oplog_lookup(n[i].o, "n3/b"));
        assert_int_equal(mm__oplog_size(n[i].o), 5);
        assert_int_equal(mm__oplog_claimants(n[i].o, "shared", NULL, NULL), 2);
        node_check(&n[i]);
    }
    /* Up-to-date peers: a repeated exchange sends nothing. */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            if (i == j) continue;
            size_t vl = mm__oplog_vector_size(n[i].o);
            uint8_t vec[256];
            assert_true(vl <= sizeof(vec));
            mm__oplog_vector_encode(n[i].o, vec, sizeof(vec));
            struct recs r = {0};
            assert_int_equal(
                mm__oplog_missing(n[j].o, vec, vl, recs_add_cb, &r), 0);
            assert_int_equal(r.n, 0);
        }
    for (int i = 0; i < 3; i++)
        node_free(&n[i]);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void
test_oplog_thousand_registrations_five_origins(void **state)
{
    (void)state;
    enum { N = 5, TOTAL = 1000 };
    static struct tnode n[N];
    for (int i = 0; i < N; i++)
        node_init(&n[i], (uint8_t)(i + 1), 1);
    static struct recs all;
    memset(&all, 0, sizeof(all));
    char label[32];
    int count[N] = {0};
    for (int k = 0; k < TOTAL; k++) {
        int i = (int)(rng() % N);
        snprintf(label, sizeof(label), "o%d/%d", i, count[i]++);
        node_reg(&n[i], label, (uint64_t)k + 1);
        struct mm__oplog_origin_info info;
        assert_int_equal(mm__oplog_origin_info(n[i].o, n[i].id, &info), 0);
        own_records(&n[i], info.seq, &all);
        /* Occasional anti-entropy along the way. */
        if (rng() % 50 == 0) pull(&n[rng() % N], &n[rng() % N]);
    }
    assert_int_equal(all.n, TOTAL);
    /* Push every record to every other node in a shuffled order, losing 10%. */
    for (int t = 0; t < N; t++) {
        size_t order[TOTAL];
        for (size_t k = 0; k < TOTAL; k++)
            order[k] = k;
        for (size_t k = TOTAL - 1; k > 0; k--) {
            size_t j = rng() % (k + 1);
            size_t x = order[k];
            order[k] = order[j];
            order[j] = x;
        }
        for (size_t k = 0; k < TOTAL; k++)
            if (rng() % 10) apply1(&n[t], all.p[order[k]], all.len[order[k]]);
    }
    converge(n, N);
    uint64_t h = mm__oplog_registry_hash(n[0].o);
    for (int i = 0; i < N; i++) {
        assert_int_equal(mm__oplog_size(n[i].o), TOTAL);
        assert_int_equal(mm__oplog_registry_hash(n[i].o), h);
        assert_int_equal(mm__oplog_pending(n[i].o), 0);
        node_check(&n[i]);
    }
    recs_free(&all);
    for (int i = 0; i < N; i++)
        node_free(&n[i]);
}

static void
test_oplog_compaction_snapshot_then_tail(void **state)
{
    (void)state;
    struct tnode a, behind, fresh;
    node_init(&a, 1, 1);
    node_init(&behind, 2, 1);
    node_init(&fresh, 3, 1);
    char label[32];
    for (int i = 0; i < 10; i++) {
        snprintf(label, sizeof(label), "c/%d", i);
        node_reg(&a, label, (uint64_t)i + 1);
    }
    assert_int_equal(pull(&behind, &a), 10); /* behind has seq 10 */
    for (int i = 0; i < 3; i++) {
        snprintf(label, sizeof(label), "c/%d", i);
        assert_int_equal(mm__oplog_remove(a.o, label, MM_REASON_NORMAL, NULL),
                         0);
    }
    assert_int_equal(mm__oplog_check_in(a.o, "c/5", "k", NULL), 0);
    /* Re-registration of c/9 with another actor. */
    assert_int_equal(mm__oplog_remove(a.o, "c/9", MM_REASON_NORMAL, NULL), 0);
    assert_int_equal(mm__oplog_register(a.o, "c/9", "kv", MM_VIS_PUBLIC, 99,
                                        NULL, 0, 50, NULL),
                     0);
    assert_int_equal(mm__oplog_compact(a.o, a.id), 0); /* S = 16 */
    node_reg(&a, "c/new1", 60);
    node_reg(&a, "c/new2", 61);
    struct mm__oplog_origin_info info;
    assert_int_equal(mm__oplog_origin_info(a.o, a.id, &info), 0);
    assert_int_equal(info.snap_seq, 16);
    assert_int_equal(info.seq, 18);
    assert_int_equal(info.nlog, 2);

    /* The oplog query: snapshot at S, then the tail. */
    struct recs r = {0};
    own_records(&a, 1, &r);
    assert_int_equal(r.n, 3);
    struct mm__oplog_op op;
    assert_int_equal(mm__oplog_op_decode(&op, r.p[0], r.len[0]), 0);
    assert_int_equal(op.kind, MM_OPLOG_SNAPSHOT);
    assert_int_equal(op.seq, 16);
    assert_int_equal(op.nentries, 7);
    size_t pos = 0, ne = 0;
    struct mm__oplog_op se;
    while (mm__oplog_snap_next(&op, &pos, &se))
        ne++;
    assert_int_equal(ne, 7);
    assert_int_equal(mm__oplog_op_decode(&op, r.p[1], r.len[1]), 0);
    assert_int_equal(op.seq, 17);
    recs_free(&r);
    own_records(&a, 17, &r);
    assert_int_equal(r.n, 2); /* from past S: tail only */
    recs_free(&r);

    /* A fresh peer and one behind S both get snapshot + tail. */
    assert_int_equal(pull(&fresh, &a), 3);
    assert_int_equal(pull(&behind, &a), 3);
    uint64_t h = mm__oplog_registry_hash(a.o);
    assert_int_equal(mm__oplog_registry_hash(fresh.o), h);
    assert_int_equal(mm__oplog_registry_hash(behind.o), h);
    assert_int_equal(mm__oplog_size(behind.o), 9);
    assert_int_equal(count_events(&behind, MM_OPLOG_REMOVED, NULL,
                                  MM_OPLOG_REASON_COMPACTED),
                     3);
    assert_int_equal(count_events(&behind, MM_OPLOG_REMOVED, "c/9",
                                  MM_OPLOG_REASON_REPLACED),
                     1);
    const struct mm__oplog_entry *e = mm__oplog_lookup(behind.o, "c/5");
    assert_int_equal(e->nkeys, 1);
    assert_int_equal(mm__oplog_lookup(behind.o, "c/9")->actor, 99);
    /* The snapshot travels on: a third peer learns it from |behind|. */
    struct tnode third;
    node_init(&third, 4, 1);
    assert_int_equal(pull(&third, &behind), 3);
    assert_int_equal(mm__oplog_registry_hash(third.o), h);
    assert_int_equal(pull(&third, &behind), 0);
    assert_int_equal(pull(&behind, &a), 0);
    node_check(&behind);
    node_check(&fresh);
    node_check(&third);
    node_free(&a);
    node_free(&behind);
    node_free(&fresh);
    node_free(&third);
}

static void
test_oplog_batch_truncations_rejected(void **state)
{
    (void)state;
    struct tnode a, b;
    node_init(&a, 1, 1);
    node_init(&b, 2, 1);
    const char *keys[] = {"k1", "k2"};
    assert_int_equal(mm__oplog_register(a.o, "t/1", "kv", MM_VIS_PUBLIC, 1,
                                        keys, 2, 1, NULL),
                     0);
    node_reg(&a, "t/2", 2);
    assert_int_equal(mm__oplog_compact(a.o, a.id), 0);
    assert_int_equal(mm__oplog_check_in(a.o, "t/2", "k3", NULL), 0);
    assert_int_equal(mm__oplog_remove(a.o, "t/1", MM_REASON_NORMAL, NULL), 0);
    struct mm__oplog_batch batch;
    mm__oplog_batch_init(&batch);
    assert_int_equal(
        mm__oplog_ops_from(a.o, a.id, 1, mm__oplog_batch_add_cb, &batch), 0);
    assert_int_equal(batch.count, 3);
    assert_int_equal(mm__oplog_batch_finish(&batch), 0);
    for (size_t cut = 0; cut < batch.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, batch.buf, cut);
        size_t applied = 7;
        assert_int_equal(mm__oplog_apply_batch(b.o, copy, cut, &applied),
                         MM_EDECODE);
        assert_int_equal(applied, 0);
        free(copy);
    }
    /* Trailing garbage is rejected too. */
    uint8_t *longer = malloc(batch.len + 1);
    memcpy(longer, batch.buf, batch.len);
    longer[batch.len] = 0;
    assert_int_equal(mm__oplog_apply_batch(b.o, longer, batch.len + 1, NULL),
                     MM_EDECODE);
    free(longer);
    assert_int_equal(b.nev, 0);
    assert_int_equal(mm__oplog_vector_size(b.o), 5);
    /* Single bit flips never crash and never half-apply a bad batch. */
    for (size_t i = 0; i < batch.len; i++) {
        struct tnode c;
        node_init(&c, 3, 1);
        uint8_t *flip = malloc(batch.len);
        memcpy(flip, batch.buf, batch.len);
        flip[i] ^= (uint8_t)(1u << (i % 8));
        int rc = mm__oplog_apply_batch(c.o, flip, batch.len, NULL);
        assert_true(rc == 0 || rc == MM_EDECODE);
        if (rc == MM_EDECODE) assert_int_equal(c.nev, 0);
        node_check(&c);
        free(flip);
        node_free(&c);
    }
    /* The whole batch applies. */
    size_t applied = 0;
    assert_int_equal(mm__oplog_apply_batch(b.o, batch.buf, batch.len, &applied),
                     0);
    assert_int_equal(applied, 3);
    assert_int_equal(mm__oplog_registry_hash(a.o),
                     mm__oplog_registry_hash(b.o));
    /* An empty batch is fine. */
    struct mm__oplog_batch empty;
    mm__oplog_batch_init(&empty);
    assert_int_equal(mm__oplog_batch_finish(&empty), 0);
    assert_int_equal(empty.len, 7); /* version 2, no heads, no records */
    assert_int_equal(mm__oplog_apply_batch(b.o, empty.buf, empty.len, NULL), 0);
    mm__oplog_batch_release(&empty);
    mm__oplog_batch_release(&batch);
    node_free(&a);
    node_free(&b);
}

/* The batch iterator hands back exactly the records that went in. */
static void
test_oplog_batch_iter(void **state)
{
    (void)state;
    static const uint8_t r1[] = {1, 2, 3}, r2[] = {4};
    struct mm__oplog_batch batch;
    mm__oplog_batch_init(&batch);
    assert_int_equal(mm__oplog_batch_add(&batch, r1, sizeof(r1)), 0);
    assert_int_equal(mm__oplog_batch_add(&batch, r2, sizeof(r2)), 0);
    assert_int_equal(mm__oplog_batch_finish(&batch), 0);
    struct mm__oplog_batch_iter it;
    const uint8_t *rec;
    size_t len;
    /* Records shorter than a record header: the count check refuses. */
    assert_int_equal(mm__oplog_batch_iter_init(&it, batch.buf, batch.len),
                     MM_EDECODE);
    mm__oplog_batch_release(&batch);
    uint8_t big1[64], big2[80];
    memset(big1, 0xa1, sizeof(big1));
    memset(big2, 0xb2, sizeof(big2));
    mm__oplog_batch_init(&batch);
    assert_int_equal(mm__oplog_batch_add(&batch, big1, sizeof(big1)), 0);
    assert_int_equal(mm__oplog_batch_add(&batch, big2, sizeof(big2)), 0);
    assert_int_equal(mm__oplog_batch_finish(&batch), 0);
    assert_int_equal(mm__oplog_batch_iter_init(&it, batch.buf, batch.len), 0);
    assert_int_equal(mm__oplog_batch_iter_next(&it, &rec, &len), 1);
    assert_int_equal(len, sizeof(big1));
    assert_memory_equal(rec, big1, len);
    assert_int_equal(mm__oplog_batch_iter_next(&it, &rec, &len), 1);
    assert_int_equal(len, sizeof(big2));
    assert_memory_equal(rec, big2, len);
    assert_int_equal(mm__oplog_batch_iter_next(&it, &rec, &len), 0);
    /* Truncated: the last record is cut short. */
    assert_int_equal(mm__oplog_batch_iter_init(&it, batch.buf, batch.len - 1),
                     0);
    assert_int_equal(mm__oplog_batch_iter_next(&it, &rec, &len), 1);
    assert_int_equal(mm__oplog_batch_iter_next(&it, &rec, &len), MM_EDECODE);
    /* Bad version. */
    batch.buf[0] ^= 0xff;
    assert_int_equal(mm__oplog_batch_iter_init(&it, batch.buf, batch.len),
                     MM_EDECODE);
    assert_int_equal(mm__oplog_batch_iter_init(&it, NULL, 0), MM_EDECODE);
    mm__oplog_batch_release(&batch);
}

static void
test_oplog_record_golden_and_limits(void **state)
{
    (void)state;
    uint8_t id[MM_NODE_ID_LEN];
    memset(id, 0x11, sizeof(id));
    mm__oplog *o;
    assert_int_equal(mm__oplog_new(&o, id, 2, NULL), 0);
    const char *keys[] = {"k"};
    assert_int_equal(mm__oplog_register(o, "a", "t", MM_VIS_INTERNAL, 7, keys,
                                        1, 0x10000, NULL),
                     0);
    struct recs r = {0};
    assert_int_equal(mm__oplog_ops_from(o, id, 1, recs_add_cb, &r), 0);
    assert_int_equal(r.n, 1);
    char hex[256];
    mm__hex(hex, r.p[0], r.len[0]);
    assert_string_equal(hex, "01"
                             "11111111111111111111111111111111"
                             "0200000000000000"
                             "0100000000000000"
                             "0000010000000000"
                             "0700000000000000"
                             "00"
                             "010061"
                             "010074"
                             "0100"
                             "01006b");
    struct mm__oplog_op op;
    assert_int_equal(mm__oplog_op_decode(&op, r.p[0], r.len[0]), 0);
    /* Private visibility on the wire is refused. */
    r.p[0][49] = MM_VIS_PRIVATE;
    assert_int_equal(mm__oplog_op_decode(&op, r.p[0], r.len[0]), MM_EDECODE);
    r.p[0][49] = MM_VIS_INTERNAL;
    /* A NUL inside the label is refused. */
    r.p[0][52] = 0;
    assert_int_equal(mm__oplog_op_decode(&op, r.p[0], r.len[0]), MM_EDECODE);
    r.p[0][52] = 'a';
    /* seq 0 is refused. */
    r.p[0][25] = 0;
    assert_int_equal(mm__oplog_op_decode(&op, r.p[0], r.len[0]), MM_EDECODE);
    recs_free(&r);
    /* Local limits. */
    char big[MM_OPLOG_LABEL_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(
        mm__oplog_register(o, big, "t", MM_VIS_INTERNAL, 1, NULL, 0, 1, NULL),
        MM_EINVAL);
    assert_int_equal(
        mm__oplog_register(o, "", "t", MM_VIS_INTERNAL, 1, NULL, 0, 1, NULL),
        MM_EINVAL);
    mm__oplog_free(o);
}

static void
test_oplog_vector_roundtrip_and_rejects(void **state)
{
    (void)state;
    struct tnode n[3];
    for (int i = 0; i < 3; i++) {
        node_init(&n[i], (uint8_t)(3 - i), (uint64_t)i + 5);
        node_reg(&n[i], i == 0 ? "a" : i == 1 ? "b" : "c", 1);
    }
    converge(n, 3);
    uint8_t vec[5 + 3 * 32];
    assert_int_equal(mm__oplog_vector_size(n[0].o), sizeof(vec));
    assert_int_equal(mm__oplog_vector_encode(n[0].o, vec, sizeof(vec) - 1),
                     MM_EINVAL);
    assert_int_equal(mm__oplog_vector_encode(n[0].o, vec, sizeof(vec)),
                     (long)sizeof(vec));
    struct mm__oplog_vec v;
    assert_int_equal(mm__oplog_vec_decode(&v, vec, sizeof(vec)), 0);
    assert_int_equal(v.count, 3);
    for (int i = 0; i < 3; i++) {
        uint64_t g, s;
        assert_int_equal(mm__oplog_vec_get(&v, n[i].id, &g, &s), 0);
        assert_int_equal(g, (uint64_t)i + 5);
        assert_int_equal(s, 1);
    }
    uint8_t other[MM_NODE_ID_LEN];
    make_id(other, 9);
    uint64_t g, s;
    assert_int_equal(mm__oplog_vec_get(&v, other, &g, &s), MM_ENOTFOUND);
    for (size_t cut = 0; cut < sizeof(vec); cut++)
        assert_int_equal(mm__oplog_vec_decode(&v, vec, cut), MM_EDECODE);
    /* Unsorted ids are refused (and so are duplicates). */
    uint8_t bad[sizeof(vec)];
    memcpy(bad, vec, sizeof(vec));
    memcpy(bad + 5, vec + 5 + 32, 32);
    memcpy(bad + 5 + 32, vec + 5, 32);
    assert_int_equal(mm__oplog_vec_decode(&v, bad, sizeof(bad)), MM_EDECODE);
    memcpy(bad + 5, bad + 5 + 32, 32);
    assert_int_equal(mm__oplog_vec_decode(&v, bad, sizeof(bad)), MM_EDECODE);
    bad[0] = 2;
    assert_int_equal(mm__oplog_vec_decode(&v, bad, sizeof(bad)), MM_EDECODE);
    assert_int_equal(
        mm__oplog_missing(n[0].o, bad, sizeof(bad), recs_add_cb, NULL),
        MM_EDECODE);
    /* Digests agree once converged and differ after a change. */
    assert_int_equal(mm__oplog_digest(n[0].o), mm__oplog_digest(n[1].o));
    node_reg(&n[1], "more", 2);
    assert_true(mm__oplog_digest(n[0].o) != mm__oplog_digest(n[1].o));
    for (int i = 0; i < 3; i++)
        node_free(&n[i]);
}

/* ---- bounded batches ------------------------------------------------------
 */

static uint8_t *
vector_of(struct tnode *t, size_t *len)
{
    *len = mm__oplog_vector_size(t->o);
    uint8_t *v = malloc(*len);
    assert_non_null(v);
    assert_int_equal(mm__oplog_vector_encode(t->o, v, *len), (long)*len);
    return v;
}

/* Appends the records of the finished batch |buf| to |r|. */
static void
recs_of_batch(const uint8_t *buf, size_t len, struct recs *r)
{
    struct mm__oplog_batch_iter it;
    const uint8_t *rec;
    size_t rl;
    int rc;
    assert_int_equal(mm__oplog_batch_iter_init(&it, buf, len), 0);
    while ((rc = mm__oplog_batch_iter_next(&it, &rec, &rl)) == 1)
        recs_add_cb(r, rec, rl);
    assert_int_equal(rc, 0);
}

/*
 * Sends |to| what it lacks from |from| in batches of at most |max| bytes,
 * each built from the vector advanced past the previous ones (|to|
 * applies them as they come when |apply|).  Checks the bound on every
 * batch, and that the records sent are exactly those of one unbounded
 * answer, once each and in the same order.  Returns the batch count.
 */
static size_t
send_bounded(struct tnode *to, struct tnode *from, size_t max, int apply)
{
    size_t vl;
    uint8_t *vec = vector_of(to, &vl);
    struct recs *all = calloc(1, sizeof(*all)), *got = calloc(1, sizeof(*got));
    assert_true(all && got);
    long total = mm__oplog_missing(from->o, vec, vl, recs_add_cb, all);
    assert_int_equal((size_t)total, all->n);
    size_t batches = 0;
    for (;;) {
        struct mm__oplog_batch b;
        mm__oplog_batch_init(&b);
        long n = mm__oplog_missing_batch(from->o, vec, vl, max, &b);
        assert_true(n >= 0);
        if (n == 0) {
            assert_int_equal(b.count, 0);
            mm__oplog_batch_release(&b);
            break;
        }
        assert_int_equal((uint32_t)n, b.count);
        assert_int_equal(mm__oplog_batch_finish(&b), 0);
        /* Within the bound, or one record alone above it. */
        assert_true(b.len <= max || b.count == 1);
        size_t before = got->n;
        recs_of_batch(b.buf, b.len, got);
        assert_int_equal(got->n - before, (size_t)n);
        if (apply)
            assert_int_equal(mm__oplog_apply_batch(to->o, b.buf, b.len, NULL),
                             0);
        uint8_t *next;
        size_t nl;
        assert_int_equal(
            mm__oplog_vec_advance(vec, vl, b.buf, b.len, &next, &nl), 0);
        if (apply) {
            /* The advanced vector is the one the peer now reports. */
            size_t tl;
            uint8_t *tv = vector_of(to, &tl);
            assert_int_equal(tl, nl);
            assert_memory_equal(tv, next, nl);
            free(tv);
        }
        mm__free(vec);
        vec = next;
        vl = nl;
        mm__oplog_batch_release(&b);
        batches++;
        assert_true(batches <= all->n); /* progress on every batch */
    }
    assert_int_equal(got->n, all->n);
    for (size_t i = 0; i < all->n; i++) {
        assert_int_equal(got->len[i], all->len[i]);
        assert_memory_equal(got->p[i], all->p[i], all->len[i]);
    }
    recs_free(all);
    recs_free(got);
    free(all);
    free(got);
    if (vec != NULL && batches == 0)
        free(vec); /* still the malloc'd copy from vector_of */
    else
        mm__free(vec);
    return batches;
}

/* Several origins (one compacted: snapshot + tail), labels of many sizes:
 * a fresh peer and one behind get everything in bounded batches, exactly
 * once, and end with the source's view and the vector the batches predict.
 * A bound below any record makes one record per batch. */
static void
test_oplog_missing_batch_bounded_and_resumable(void **state)
{
    (void)state;
    struct tnode src, o2, o3, fresh, behind, tiny;
    node_init(&src, 1, 1);
    node_init(&o2, 2, 7);
    node_init(&o3, 3, 1);
    node_init(&fresh, 4, 1);
    node_init(&behind, 5, 1);
    node_init(&tiny, 6, 1);
    char label[64];
    for (int i = 0; i < 300; i++) {
        snprintf(label, sizeof(label), "s/%d/%.*s", i, i % 50,
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        node_reg(&src, label, (uint64_t)i + 1);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(label, sizeof(label), "o2/%d", i);
        node_reg(&o2, label, (uint64_t)i + 1);
    }
    for (int i = 0; i < 40; i++) {
        snprintf(label, sizeof(label), "o3/%d", i);
        node_reg(&o3, label, (uint64_t)i + 1);
    }
    assert_int_equal(mm__oplog_compact(o3.o, o3.id), 0);
    for (int i = 40; i < 45; i++) {
        snprintf(label, sizeof(label), "o3/%d", i);
        node_reg(&o3, label, (uint64_t)i + 1);
    }
    pull(&src, &o2);
    pull(&src, &o3);
    pull(&behind, &src); /* everything so far */
    for (int i = 300; i < 340; i++) {
        snprintf(label, sizeof(label), "s/%d", i);
        node_reg(&src, label, (uint64_t)i + 1);
    }
    uint64_t h = mm__oplog_registry_hash(src.o);

    size_t nb = send_bounded(&fresh, &src, 4096, 1);
    assert_true(nb > 5); /* ~30 KiB of records */
    assert_int_equal(mm__oplog_registry_hash(fresh.o), h);
    node_check(&fresh);
    assert_int_equal(send_bounded(&fresh, &src, 4096, 1), 0);

    /* Behind: only the 40 newer records, resumed from its own vector. */
    size_t napplied = behind.nremote;
    assert_true(send_bounded(&behind, &src, 1024, 1) >= 2);
    assert_int_equal(behind.nremote - napplied, 40);
    assert_int_equal(mm__oplog_registry_hash(behind.o), h);

    /* Without applying: the advanced vector alone resumes correctly. */
    send_bounded(&tiny, &src, 100000, 0);
    /* A bound below every record: one record per batch (the snapshot of
     * o3 among them), 300 + 40 + 200 + 1 + 5 of them. */
    assert_int_equal(send_bounded(&tiny, &src, 16, 1), 546);
    assert_int_equal(mm__oplog_registry_hash(tiny.o), h);

    /* Bad input. */
    struct mm__oplog_batch b;
    mm__oplog_batch_init(&b);
    uint8_t bad[5] = {2, 0, 0, 0, 0};
    assert_int_equal(mm__oplog_missing_batch(src.o, bad, sizeof(bad), 4096, &b),
                     MM_EDECODE);
    assert_int_equal(b.count, 0);
    mm__oplog_batch_release(&b);
    uint8_t empty[5] = {1, 0, 0, 0, 0}; /* a vector; as a batch: version 1 */
    uint8_t emptyb[7] = {2, 0, 0, 0, 0, 0, 0};
    uint8_t *out = (uint8_t *)1;
    size_t ol = 1;
    assert_int_equal(mm__oplog_vec_advance(bad, sizeof(bad), empty,
                                           sizeof(empty), &out, &ol),
                     MM_EDECODE);
    assert_null(out);
    assert_int_equal(mm__oplog_vec_advance(empty, sizeof(empty), bad,
                                           sizeof(bad), &out, &ol),
                     MM_EDECODE);
    /* An empty batch leaves the vector as it was. */
    assert_int_equal(mm__oplog_vec_advance(empty, sizeof(empty), empty,
                                           sizeof(empty), &out, &ol),
                     MM_EDECODE); /* a batch of version 1 */
    assert_int_equal(mm__oplog_vec_advance(empty, sizeof(empty), emptyb,
                                           sizeof(emptyb), &out, &ol),
                     0);
    assert_int_equal(ol, sizeof(empty));
    assert_memory_equal(out, empty, sizeof(empty));
    mm__free(out);

    node_free(&src);
    node_free(&o2);
    node_free(&o3);
    node_free(&fresh);
    node_free(&behind);
    node_free(&tiny);
}

/* The union of two vectors keeps, per origin, the newer (generation, seq). */
static void
test_oplog_vec_merge(void **state)
{
    (void)state;
    struct tnode n[4];
    for (int i = 0; i < 4; i++)
        node_init(&n[i], (uint8_t)(i + 1), 1);
    node_reg(&n[0], "a/1", 1);
    node_reg(&n[1], "b/1", 1);
    node_reg(&n[1], "b/2", 2);
    node_reg(&n[2], "c/1", 1);
    /* x knows a:1, b:2; y knows b:1, c:1 (and its own d:1). */
    struct tnode x, y;
    node_init(&x, 9, 1);
    node_init(&y, 8, 1);
    pull(&x, &n[0]);
    pull(&x, &n[1]);
    struct recs r = {0};
    own_records(&n[1], 1, &r);
    apply1(&y, r.p[0], r.len[0]);
    recs_free(&r);
    pull(&y, &n[2]);
    node_reg(&y, "y/1", 1);
    size_t xl, yl, ml;
    uint8_t *xv = vector_of(&x, &xl), *yv = vector_of(&y, &yl), *m;
    assert_int_equal(mm__oplog_vec_merge(xv, xl, yv, yl, &m, &ml), 0);
    struct mm__oplog_vec v;
    assert_int_equal(mm__oplog_vec_decode(&v, m, ml), 0);
    assert_int_equal(v.count, 4); /* a, b, c, y */
    uint64_t g, s;
    assert_int_equal(mm__oplog_vec_get(&v, n[0].id, &g, &s), 0);
    assert_int_equal(s, 1);
    assert_int_equal(mm__oplog_vec_get(&v, n[1].id, &g, &s), 0);
    assert_int_equal(s, 2);
    assert_int_equal(mm__oplog_vec_get(&v, n[2].id, &g, &s), 0);
    assert_int_equal(s, 1);
    assert_int_equal(mm__oplog_vec_get(&v, y.id, &g, &s), 0);
    assert_int_equal(s, 1);
    /* Symmetric, and a newer generation wins over a higher seq. */
    uint8_t *m2;
    size_t ml2;
    assert_int_equal(mm__oplog_vec_merge(yv, yl, xv, xl, &m2, &ml2), 0);
    assert_int_equal(ml2, ml);
    assert_memory_equal(m2, m, ml);
    mm__free(m2);
    uint8_t g1[5 + 32], g2[5 + 32];
    memcpy(g1, m, 5 + 32);
    mm__put_u32(g1 + 1, 1);
    memcpy(g2, g1, sizeof(g2));
    mm__put_u64(g1 + 5 + 16, 3); /* generation 3, seq 1 */
    mm__put_u64(g1 + 5 + 24, 1);
    mm__put_u64(g2 + 5 + 16, 2); /* generation 2, seq 50 */
    mm__put_u64(g2 + 5 + 24, 50);
    assert_int_equal(
        mm__oplog_vec_merge(g2, sizeof(g2), g1, sizeof(g1), &m2, &ml2), 0);
    assert_int_equal(ml2, sizeof(g1));
    assert_memory_equal(m2, g1, sizeof(g1));
    mm__free(m2);
    assert_int_equal(
        mm__oplog_vec_merge(g1, sizeof(g1) - 1, g2, sizeof(g2), &m2, &ml2),
        MM_EDECODE);
    assert_null(m2);
    mm__free(m);
    free(xv);
    free(yv);
    node_free(&x);
    node_free(&y);
    for (int i = 0; i < 4; i++)
        node_free(&n[i]);
}

/* ---- origins that hold nothing ------------------------------------------- */

/* A stand-in for membership: what set_origin_state was told, as the
 * member lookup reports it (reaped members are forgotten, like SWIM). */
struct tmembers {
    uint8_t id[64][MM_NODE_ID_LEN];
    uint64_t gen[64];
    int state[64];
    size_t n;
};

static int
tmembers_lookup(void *data, const uint8_t id[MM_NODE_ID_LEN], uint64_t *gen,
                int *state)
{
    struct tmembers *m = data;
    for (size_t i = 0; i < m->n; i++)
        if (memcmp(m->id[i], id, MM_NODE_ID_LEN) == 0) {
            if (m->state[i] == MM_OPLOG_REAPED) return -1;
            *gen = m->gen[i];
            *state = m->state[i];
            return 0;
        }
    return -1;
}

/* Membership news: into the stand-in (when |m|), then to the oplog. */
static void
tell(struct tnode *t, struct tmembers *m, const uint8_t *id, uint64_t gen,
     int state)
{
    if (m) {
        size_t i = 0;
        while (i < m->n && memcmp(m->id[i], id, MM_NODE_ID_LEN) != 0)
            i++;
        if (i == m->n) {
            assert_true(m->n < MM_ARRAY_SIZE(m->id));
            memcpy(m->id[m->n++], id, MM_NODE_ID_LEN);
            m->gen[i] = 0;
        }
        if (gen >= m->gen[i]) { /* older news is stale */
            m->gen[i] = gen;
            m->state[i] = state;
        }
    }
    assert_int_equal(mm__oplog_set_origin_state(t->o, id, gen, state), 0);
}

struct origins_walk {
    size_t n;
    uint8_t last[MM_NODE_ID_LEN];
};

static int
origins_walk_cb(void *data, const struct mm__oplog_origin_info *info)
{
    struct origins_walk *w = data;
    if (w->n) assert_true(memcmp(w->last, info->id, MM_NODE_ID_LEN) < 0);
    memcpy(w->last, info->id, MM_NODE_ID_LEN);
    w->n++;
    return 0;
}

/*
 * Members that never wrote a record cost no whole origin (a small record
 * each, or nothing with a member lookup), and the first records of such a
 * member still meet what membership said: failed hides them, reaped
 * discards them, a newer generation discards older ones.
 */
static void
recordless_origins(int with_lookup)
{
    struct tmembers tm = {0};
    struct tmembers *m = with_lookup ? &tm : NULL;
    struct tnode a1, a2, b, c, d;
    node_init(&a1, 1, 1);
    node_init(&a2, 1, 2); /* a1 restarted */
    node_init(&b, 2, 1);
    node_init(&c, 3, 1);
    node_init(&d, 4, 1);
    if (with_lookup) mm__oplog_set_member_lookup(b.o, tmembers_lookup, &tm);
    size_t facts = 99;
    enum { NQUIET = 500 };
    uint8_t id[MM_NODE_ID_LEN];
    for (unsigned k = 0; k < NQUIET; k++) {
        make_id(id, (uint8_t)(0x40 + k / 256));
        id[1] = (uint8_t)k;
        /* Beyond the stand-in's room: told to the oplog alone. */
        assert_int_equal(mm__oplog_set_origin_state(b.o, id, 1, (int)(k % 4)),
                         0);
    }
    assert_int_equal(mm__oplog_origins_held(b.o, &facts), 1); /* b itself */
    assert_int_equal(facts, with_lookup ? 0 : NQUIET);
    struct mm__oplog_origin_info info;
    if (!with_lookup) {
        assert_int_equal(mm__oplog_origin_info(b.o, id, &info), 0);
        assert_int_equal(info.generation, 1);
        assert_int_equal(info.state, (NQUIET - 1) % 4);
        assert_int_equal(info.seq, 0);
    }
    struct origins_walk w = {0};
    mm__oplog_origins(b.o, origins_walk_cb, &w);
    assert_int_equal(w.n, with_lookup ? 1 : 1 + NQUIET);
    assert_int_equal(mm__oplog_vector_size(b.o), 5 + 0);

    /* Failed before its first record: its records are applied, hidden. */
    tell(&b, m, c.id, 1, MM_OPLOG_FAILED);
    node_reg(&c, "c/1", 1);
    assert_int_equal(pull(&b, &c), 1);
    assert_null(mm__oplog_lookup(b.o, "c/1"));
    assert_int_equal(mm__oplog_claimants(b.o, "c/1", NULL, NULL), 0);
    assert_int_equal(mm__oplog_origin_info(b.o, c.id, &info), 0);
    assert_int_equal(info.state, MM_OPLOG_FAILED);
    assert_int_equal(mm__oplog_origins_held(b.o, NULL), 2);
    tell(&b, m, c.id, 1, MM_OPLOG_ALIVE);
    assert_non_null(mm__oplog_lookup(b.o, "c/1"));

    /* Reaped before its first record: its records are discarded. */
    tell(&b, m, a1.id, 1, MM_OPLOG_FAILED);
    tell(&b, m, a1.id, 1, MM_OPLOG_REAPED);
    node_reg(&a1, "a/old", 1);
    assert_int_equal(pull(&b, &a1), 0);
    assert_null(mm__oplog_lookup(b.o, "a/old"));
    assert_int_equal(mm__oplog_origin_info(b.o, a1.id, &info), MM_ENOTFOUND);
    assert_int_equal(mm__oplog_origins_held(b.o, &facts), 2);
    assert_int_equal(facts, with_lookup ? 1 : NQUIET + 1); /* a tombstone */
    /* Stale news of the reaped generation does not bring it back. */
    tell(&b, m, a1.id, 1, MM_OPLOG_ALIVE);
    assert_int_equal(pull(&b, &a1), 0);

    /* Its next generation, suspect before its first record. */
    tell(&b, m, a2.id, 2, MM_OPLOG_SUSPECT);
    node_reg(&a2, "a/new", 2);
    assert_int_equal(pull(&b, &a2), 1);
    assert_non_null(mm__oplog_lookup(b.o, "a/new"));
    assert_int_equal(mm__oplog_origin_info(b.o, a2.id, &info), 0);
    assert_int_equal(info.generation, 2);
    assert_int_equal(info.state, MM_OPLOG_SUSPECT);
    assert_int_equal(mm__oplog_origins_held(b.o, NULL), 3);

    /* A newer generation known before any record: older ones discarded. */
    tell(&b, m, d.id, 2, MM_OPLOG_ALIVE);
    node_reg(&d, "d/1", 1);
    assert_int_equal(pull(&b, &d), 0);
    assert_null(mm__oplog_lookup(b.o, "d/1"));
    assert_int_equal(mm__oplog_origins_held(b.o, NULL), 3);

    /* Reaping an origin that held records gives its room back. */
    tell(&b, m, c.id, 1, MM_OPLOG_REAPED);
    assert_int_equal(
        count_events(&b, MM_OPLOG_REMOVED, "c/1", MM_OPLOG_REASON_REAPED), 1);
    assert_int_equal(mm__oplog_origins_held(b.o, &facts), 2);
    assert_int_equal(facts, with_lookup ? 1 : NQUIET + 2); /* c tombstone, d */
    assert_int_equal(pull(&b, &c), 0); /* and late copies stay out */
    assert_null(mm__oplog_lookup(b.o, "c/1"));
    /* So does a new generation that has sent nothing yet. */
    tell(&b, m, a2.id, 3, MM_OPLOG_ALIVE);
    assert_null(mm__oplog_lookup(b.o, "a/new"));
    assert_int_equal(mm__oplog_origins_held(b.o, NULL), 1);
    assert_int_equal(pull(&b, &a2), 0);
    node_check(&b);
    node_free(&a1);
    node_free(&a2);
    node_free(&b);
    node_free(&c);
    node_free(&d);
}

static void
test_oplog_recordless_origins_kept_small(void **state)
{
    (void)state;
    recordless_origins(0);
}

static void
test_oplog_recordless_origins_member_lookup(void **state)
{
    (void)state;
    recordless_origins(1);
}

/* A REGISTER record of |origin| built by hand. */
static size_t
raw_register(uint8_t *out, const uint8_t *origin, uint64_t gen, uint64_t seq,
             const char *label)
{
    size_t ll = strlen(label), n = 33;
    out[0] = MM_OPLOG_REGISTER;
    memcpy(out + 1, origin, MM_NODE_ID_LEN);
    mm__put_u64(out + 17, gen);
    mm__put_u64(out + 25, seq);
    mm__put_u64(out + n, 1);     /* hlc */
    mm__put_u64(out + n + 8, 1); /* actor */
    out[n + 16] = MM_VIS_PUBLIC;
    n += 17;
    mm__put_u16(out + n, (uint16_t)ll);
    memcpy(out + n + 2, label, ll);
    n += 2 + ll;
    mm__put_u16(out + n, 0);     /* type */
    mm__put_u16(out + n + 2, 0); /* keys */
    return n + 4;
}

/*
 * Many origins with records, learnt in scrambled order and some reaped in
 * between: the vector stays in id order (vec_decode insists), the digest
 * matches it, and each origin is found again.
 */
static void
test_oplog_many_origins_stay_ordered(void **state)
{
    (void)state;
    struct tnode b;
    node_init(&b, 2, 1);
    enum { N = 600 };
    uint8_t rec[128], id[MM_NODE_ID_LEN];
    size_t live = 0, facts;
    for (unsigned x = 0; x < N; x++) { /* members first, as facts */
        make_id(id, (uint8_t)(0x40 + x / 256));
        id[1] = (uint8_t)x;
        assert_int_equal(mm__oplog_set_origin_state(b.o, id, 1, MM_OPLOG_ALIVE),
                         0);
    }
    assert_int_equal(mm__oplog_origins_held(b.o, &facts), 1);
    assert_int_equal(facts, N);
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned k = 0; k < N; k++) {
            unsigned x = (k * 389u + round * 7u) % N; /* scrambled */
            make_id(id, (uint8_t)(0x40 + x / 256));
            id[1] = (uint8_t)x;
            char label[32];
            snprintf(label, sizeof(label), "m/%u", x);
            if (round == 1 && x % 3 == 0) {
                assert_int_equal(
                    mm__oplog_set_origin_state(b.o, id, 1, MM_OPLOG_REAPED), 0);
                continue;
            }
            size_t n = raw_register(rec, id, round == 2 && x % 3 == 0 ? 2 : 1,
                                    1, label);
            mm__oplog_apply_record(b.o, rec, n, NULL);
        }
        live = round == 1 ? N - (N + 2) / 3 : N; /* x % 3 == 0 reaped */
        assert_int_equal(mm__oplog_origins_held(b.o, NULL), live + 1);
        size_t vl = mm__oplog_vector_size(b.o);
        uint8_t *vec = malloc(vl);
        assert_int_equal(mm__oplog_vector_encode(b.o, vec, vl), (long)vl);
        struct mm__oplog_vec v;
        assert_int_equal(mm__oplog_vec_decode(&v, vec, vl), 0);
        assert_int_equal(v.count, live); /* b wrote nothing */
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < vl; i++)
            h = (h ^ vec[i]) * 1099511628211ULL;
        assert_int_equal(mm__oplog_digest(b.o), h);
        free(vec);
    }
    assert_int_equal(live, N); /* round 2 brought the reaped back, gen 2 */
    assert_int_equal(mm__oplog_size(b.o), N);
    for (unsigned x = 0; x < N; x++) {
        struct mm__oplog_origin_info info;
        make_id(id, (uint8_t)(0x40 + x / 256));
        id[1] = (uint8_t)x;
        assert_int_equal(mm__oplog_origin_info(b.o, id, &info), 0);
        assert_int_equal(info.generation, x % 3 == 0 ? 2 : 1);
        assert_int_equal(info.seq, 1);
    }
    assert_int_equal(mm__oplog_origins_held(b.o, &facts), N + 1);
    assert_int_equal(facts, 0);
    /* All reaped: nothing whole is left, only tombstones. */
    for (unsigned x = 0; x < N; x++) {
        make_id(id, (uint8_t)(0x40 + x / 256));
        id[1] = (uint8_t)x;
        assert_int_equal(mm__oplog_set_origin_state(b.o, id, x % 3 == 0 ? 2 : 1,
                                                    MM_OPLOG_REAPED),
                         0);
        if (x == N / 2) {
            struct mm__oplog_origin_info info;
            make_id(id, 0x40);
            id[1] = 1;
            assert_int_equal(mm__oplog_origin_info(b.o, id, &info),
                             MM_ENOTFOUND);
            id[0] = (uint8_t)(0x40 + (N / 2 + 1) / 256);
            id[1] = (uint8_t)(N / 2 + 1);
            assert_int_equal(mm__oplog_origin_info(b.o, id, &info), 0);
        }
    }
    assert_int_equal(mm__oplog_origins_held(b.o, &facts), 1);
    assert_int_equal(facts, N);
    assert_int_equal(mm__oplog_size(b.o), 0);
    assert_int_equal(mm__oplog_vector_size(b.o), 5);
    node_check(&b);
    node_free(&b);
}

static void
test_oplog_alloc_failures_leave_consistent_state(void **state)
{
    (void)state;
    /* Fail each allocation in turn while a peer pulls a mixed batch. */
    struct tnode a;
    node_init(&a, 1, 1);
    const char *keys[] = {"k"};
    for (int i = 0; i < 5; i++) {
        char label[16];
        snprintf(label, sizeof(label), "f/%d", i);
        assert_int_equal(mm__oplog_register(a.o, label, "kv", MM_VIS_PUBLIC,
                                            (uint64_t)i, keys, 1,
                                            (uint64_t)i + 1, NULL),
                         0);
    }
    assert_int_equal(mm__oplog_compact(a.o, a.id), 0);
    assert_int_equal(mm__oplog_check_in(a.o, "f/1", "k2", NULL), 0);
    assert_int_equal(mm__oplog_remove(a.o, "f/2", MM_REASON_NORMAL, NULL), 0);
    struct mm__oplog_batch batch;
    mm__oplog_batch_init(&batch);
    mm__oplog_ops_from(a.o, a.id, 1, mm__oplog_batch_add_cb, &batch);
    mm__oplog_batch_finish(&batch);
    int nfail = 0;
    for (unsigned long k = 1; k < 60; k++) {
        struct tnode b;
        node_init(&b, 2, 1);
        mm__alloc_fail_after(k);
        int rc = mm__oplog_apply_batch(b.o, batch.buf, batch.len, NULL);
        mm__alloc_fail_after(0);
        assert_true(rc == 0 || rc == -ENOMEM);
        nfail += rc == -ENOMEM;
        node_check(&b);
        /* A retry completes the job. */
        assert_int_equal(mm__oplog_apply_batch(b.o, batch.buf, batch.len, NULL),
                         0);
        assert_int_equal(mm__oplog_registry_hash(b.o),
                         mm__oplog_registry_hash(a.o));
        node_check(&b);
        node_free(&b);
    }
    assert_true(nfail > 10);
    mm__oplog_batch_release(&batch);
    node_free(&a);
}

/* The records |dst| lacks from |src|, as one finished batch (caller
 * releases). */
static void
batch_for(struct tnode *dst, struct tnode *src, struct mm__oplog_batch *b)
{
    size_t vl;
    uint8_t *vec = vector_of(dst, &vl);
    mm__oplog_batch_init(b);
    assert_true(mm__oplog_missing(src->o, vec, vl, mm__oplog_batch_add_cb, b) >
                0);
    assert_int_equal(mm__oplog_batch_finish(b), 0);
    free(vec);
}

/*
 * A batch applied in steps of a few records (validated whole first, as the
 * registry does when it spreads a large batch over loop turns) leaves the
 * log exactly as applying it at once: same view, events in the same
 * order, same vector, digest and hash, same records reported applied.  A
 * bad record at the very end is found by the validation pass before
 * anything is applied.
 */
static void
test_oplog_apply_in_steps_same_as_at_once(void **state)
{
    (void)state;
    struct tnode a, c, src, once, steps, bad;
    node_init(&a, 1, 1);
    node_init(&c, 3, 1);
    node_init(&src, 5, 1);
    node_init(&once, 7, 1);
    node_init(&steps, 8, 1);
    node_init(&bad, 9, 1);
    char label[64];
    for (int i = 0; i < 300; i++) {
        snprintf(label, sizeof(label), "s/%03d", i);
        node_reg(&a, label, 1000 + (uint64_t)i);
        if (i % 3 == 0) node_reg(&c, label, 900 + (uint64_t)i); /* rivals */
    }
    for (int i = 0; i < 300; i += 7) {
        snprintf(label, sizeof(label), "s/%03d", i);
        assert_int_equal(mm__oplog_remove(a.o, label, MM_REASON_STOPPED, NULL),
                         0);
    }
    pull(&src, &a);
    pull(&src, &c);
    struct mm__oplog_batch b;
    batch_for(&once, &src, &b);
    assert_true(b.count > 400);

    size_t applied_once = 0;
    assert_int_equal(mm__oplog_apply_batch(once.o, b.buf, b.len, &applied_once),
                     0);

    const size_t step = 7;
    struct mm__oplog_batch_iter chk, app;
    assert_int_equal(mm__oplog_batch_iter_init(&chk, b.buf, b.len), 0);
    app = chk;
    size_t done, total = 0, calls = 0, applied_steps = 0;
    int rc;
    while ((rc = mm__oplog_check_some(&chk, step, &done)) == 1) {
        assert_int_equal(done, step);
        total += done;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(total + done, b.count);
    assert_int_equal(mm__oplog_size(steps.o), 0); /* checking applies nothing */
    total = 0;
    do {
        rc = mm__oplog_apply_some(steps.o, &app, step, &done, &applied_steps);
        assert_true(rc == 0 || rc == 1);
        assert_true(done <= step);
        total += done;
        calls++;
        /* Part-way, the records so far are in: a prefix of the batch. */
        if (calls == 3) assert_true(mm__oplog_size(steps.o) > 0);
    } while (rc == 1);
    assert_int_equal(total, b.count);
    assert_int_equal(calls, (b.count + step - 1) / step);

    assert_int_equal(applied_steps, applied_once);
    assert_int_equal(steps.napplied, once.napplied);
    assert_int_equal(mm__oplog_size(steps.o), mm__oplog_size(once.o));
    assert_int_equal(mm__oplog_registry_hash(steps.o),
                     mm__oplog_registry_hash(once.o));
    assert_int_equal(mm__oplog_registry_hash(steps.o),
                     mm__oplog_registry_hash(src.o));
    assert_int_equal(mm__oplog_digest(steps.o), mm__oplog_digest(once.o));
    size_t l1, l2;
    uint8_t *v1 = vector_of(&once, &l1), *v2 = vector_of(&steps, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(v1, v2, l1);
    free(v1);
    free(v2);
    assert_int_equal(steps.nev, once.nev);
    for (size_t i = 0; i < once.nev; i++) {
        assert_int_equal(steps.ev[i].kind, once.ev[i].kind);
        assert_string_equal(steps.ev[i].label, once.ev[i].label);
        assert_int_equal(steps.ev[i].origin, once.ev[i].origin);
    }
    node_check(&steps);

    /* The last record cut short: the validation pass says so at its end,
     * before anything was applied. */
    uint8_t *cut = malloc(b.len);
    memcpy(cut, b.buf, b.len);
    assert_int_equal(mm__oplog_batch_iter_init(&chk, cut, b.len - 1), 0);
    total = 0;
    while ((rc = mm__oplog_check_some(&chk, step, &done)) == 1)
        total += done;
    assert_int_equal(rc, MM_EDECODE);
    assert_true(total + done >= b.count - 1);
    assert_int_equal(mm__oplog_size(bad.o), 0);
    free(cut);

    mm__oplog_batch_release(&b);
    node_free(&a);
    node_free(&c);
    node_free(&src);
    node_free(&once);
    node_free(&steps);
    node_free(&bad);
}

/* ---- signed heads -------------------------------------------------------- */

/* A node whose id is the hash of an Ed25519 key from seed byte |n|, signing
 * its heads with it (|*k| freed by the caller after the oplog). */
static void
snode_init(struct tnode *t, struct mm_sign_key **k, uint8_t n, uint64_t gen)
{
    uint8_t seed[32], pub[32], h[32];
    memset(seed, n, sizeof(seed));
    assert_int_equal(mm__sign_key_from_seed(k, seed), 0);
    assert_int_equal(mm__sign_key_public(*k, pub), 0);
    mm__sha256(h, pub, sizeof(pub));
    memset(t, 0, sizeof(*t));
    memcpy(t->id, h, MM_NODE_ID_LEN);
    struct mm__oplog_cbs cbs = {node_event_cb, node_applied_cb, t};
    assert_int_equal(mm__oplog_new(&t->o, t->id, gen, &cbs), 0);
    mm__oplog_set_signer(t->o, *k, pub);
}

/* What |from| sends |to| for its vector, bounded by |max|, sealed. */
static long
signed_batch(struct tnode *to, struct tnode *from, size_t max,
             struct mm__oplog_batch *b)
{
    size_t vl;
    uint8_t *vec = vector_of(to, &vl);
    mm__oplog_batch_init(b);
    long n = mm__oplog_missing_batch(from->o, vec, vl, max, b);
    free(vec);
    assert_true(n >= 0);
    assert_int_equal(mm__oplog_batch_finish(b), 0); /* sealed: unchanged */
    return n;
}

/* Catch-up of |to| from |from| in sealed batches of |max| bytes, each
 * verified before it is applied; the number of batches. */
static size_t
signed_catchup(struct tnode *to, struct tnode *from, size_t max, size_t *sigs)
{
    size_t batches = 0;
    for (;;) {
        struct mm__oplog_batch b;
        if (signed_batch(to, from, max, &b) == 0) {
            mm__oplog_batch_release(&b);
            return batches;
        }
        size_t ns = 0;
        assert_int_equal(mm__oplog_batch_verify(NULL, b.buf, b.len, &ns), 0);
        *sigs += ns;
        assert_int_equal(mm__oplog_apply_batch(to->o, b.buf, b.len, NULL), 0);
        mm__oplog_batch_release(&b);
        assert_true(++batches < 100000);
    }
}

/*
 * a's log is a chain whose heads a signs: a's batch verifies with one
 * signature and applies on b; b relays a's records to c in a batch that
 * still carries a's head and a's signature (b signs only its own); every
 * single-bit change of that batch fails verification; records of a
 * sealed by another key (d claiming a's id), an unsigned batch, and a
 * batch that stops short of its head are refused.
 */
static void
test_oplog_signed_heads_relay_and_tamper(void **state)
{
    (void)state;
    struct mm_sign_key *ka, *kb, *kc, *kd;
    struct tnode a, b, c, d;
    snode_init(&a, &ka, 1, 1);
    snode_init(&b, &kb, 2, 1);
    snode_init(&c, &kc, 3, 1);
    for (int i = 0; i < 5; i++) {
        char label[16];
        snprintf(label, sizeof(label), "s/%d", i);
        node_reg(&a, label, (uint64_t)i + 1);
    }
    assert_int_equal(mm__oplog_check_in(a.o, "s/1", "k", NULL), 0);
    assert_int_equal(mm__oplog_remove(a.o, "s/2", MM_REASON_NORMAL, NULL), 0);
    node_reg(&b, "b/1", 9);

    struct mm__oplog_batch ab, bc;
    assert_int_equal(signed_batch(&b, &a, 1u << 20, &ab), 7);
    size_t ns = 0;
    assert_int_equal(mm__oplog_batch_verify(NULL, ab.buf, ab.len, &ns), 0);
    assert_int_equal(ns, 1);
    assert_int_equal(mm__oplog_apply_batch(b.o, ab.buf, ab.len, NULL), 0);
    assert_int_equal(mm__oplog_registry_hash(b.o) != 0, 1);

    /* b relays a's records (and its own) to c. */
    assert_int_equal(signed_batch(&c, &b, 1u << 20, &bc), 8);
    assert_int_equal(mm__oplog_batch_verify(NULL, bc.buf, bc.len, &ns), 0);
    assert_int_equal(ns, 2);
    struct mm__oplog_batch_iter it;
    assert_int_equal(mm__oplog_batch_iter_init(&it, bc.buf, bc.len), 0);
    const uint8_t *ha = mm__oplog_batch_head(&it, a.id);
    const uint8_t *hab = NULL;
    assert_non_null(ha);
    assert_int_equal(mm__oplog_batch_iter_init(&it, ab.buf, ab.len), 0);
    hab = mm__oplog_batch_head(&it, a.id);
    assert_memory_equal(ha, hab, MM_OPLOG_HEAD_LEN); /* a's own head */
    assert_int_equal(mm__oplog_apply_batch(c.o, bc.buf, bc.len, NULL), 0);
    assert_int_equal(mm__oplog_registry_hash(c.o),
                     mm__oplog_registry_hash(b.o));
    assert_int_equal(c.nremote, 8);

    /* Applied a record at a time, a's records are handed over (forwarded)
     * only once the one its signature covers is in: a relay never holds
     * records to forward that it cannot seal. */
    struct tnode f;
    struct mm_sign_key *kf;
    snode_init(&f, &kf, 5, 1);
    struct mm__oplog_batch_iter sit;
    assert_int_equal(mm__oplog_batch_iter_init(&sit, ab.buf, ab.len), 0);
    for (size_t step = 1; step <= 7; step++) {
        size_t done = 0, napplied = 0;
        int src = mm__oplog_apply_some(f.o, &sit, 1, &done, &napplied);
        assert_int_equal(src, step < 7 ? 1 : 0);
        assert_int_equal(napplied, 1);
        assert_int_equal(f.nremote, step < 7 ? 0 : 7);
    }
    node_free(&f);
    mm__sign_key_free(kf);

    /* Every single-bit change is caught. */
    for (size_t i = 0; i < bc.len; i++) {
        uint8_t *flip = malloc(bc.len);
        memcpy(flip, bc.buf, bc.len);
        flip[i] ^= (uint8_t)(1u << (i % 8));
        assert_int_not_equal(mm__oplog_batch_verify(NULL, flip, bc.len, NULL),
                             0);
        free(flip);
    }

    /* Against an oplog that holds every record of it, a batch is checked
     * for layout only (its records change nothing there). */
    uint8_t *dup = malloc(ab.len);
    memcpy(dup, ab.buf, ab.len);
    dup[3 + MM_OPLOG_HEAD_LEN - 1] ^= 1; /* a's signature */
    assert_int_equal(mm__oplog_batch_verify(NULL, dup, ab.len, NULL),
                     MM_EUNAUTHORIZED);
    assert_int_equal(mm__oplog_batch_verify(c.o, dup, ab.len, &ns), 0);
    assert_int_equal(ns, 0);
    assert_int_equal(mm__oplog_batch_verify(a.o, dup, ab.len, NULL), 0);
    size_t napp = 9;
    assert_int_equal(mm__oplog_apply_batch(c.o, dup, ab.len, &napp), 0);
    assert_int_equal(napp, 0);
    free(dup);

    /* d holds a's id but not a's key: its seal does not verify. */
    uint8_t seed[32], pub[32];
    memset(seed, 4, sizeof(seed));
    assert_int_equal(mm__sign_key_from_seed(&kd, seed), 0);
    assert_int_equal(mm__sign_key_public(kd, pub), 0);
    memset(&d, 0, sizeof(d));
    memcpy(d.id, a.id, MM_NODE_ID_LEN);
    struct mm__oplog_cbs cbs = {node_event_cb, node_applied_cb, &d};
    assert_int_equal(mm__oplog_new(&d.o, a.id, 1, &cbs), 0);
    mm__oplog_set_signer(d.o, kd, pub);
    for (int i = 0; i < 8; i++) { /* takes a's next seq, 8 */
        char label[16];
        snprintf(label, sizeof(label), "x/%d", i);
        node_reg(&d, i == 7 ? "s/0" : label, 1);
    }
    struct mm__oplog_batch db;
    struct tnode e;
    node_init(&e, 9, 1);
    assert_true(signed_batch(&e, &d, 1u << 20, &db) > 0);
    assert_int_equal(mm__oplog_batch_verify(NULL, db.buf, db.len, NULL),
                     MM_EUNAUTHORIZED);
    mm__oplog_batch_release(&db);
    /* An unsigned batch of records is refused; an empty one is fine. */
    mm__oplog_batch_init(&db);
    assert_int_equal(
        mm__oplog_ops_from(a.o, a.id, 1, mm__oplog_batch_add_cb, &db), 0);
    assert_int_equal(mm__oplog_batch_finish(&db), 0);
    assert_int_equal(mm__oplog_batch_verify(NULL, db.buf, db.len, NULL),
                     MM_EUNAUTHORIZED);
    mm__oplog_batch_release(&db);
    mm__oplog_batch_init(&db);
    assert_int_equal(mm__oplog_batch_finish(&db), 0);
    assert_int_equal(mm__oplog_batch_verify(NULL, db.buf, db.len, NULL), 0);
    mm__oplog_batch_release(&db);
    /* a's batch without its last record stops short of the head. */
    mm__oplog_batch_init(&db);
    assert_int_equal(mm__oplog_batch_iter_init(&it, ab.buf, ab.len), 0);
    const uint8_t *rec;
    size_t rl;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(mm__oplog_batch_iter_next(&it, &rec, &rl), 1);
        assert_int_equal(mm__oplog_batch_add(&db, rec, rl), 0);
    }
    assert_int_equal(mm__oplog_batch_finish(&db), 0);
    uint8_t *shortb = malloc(db.len + MM_OPLOG_HEAD_LEN);
    memcpy(shortb, db.buf, 3);
    memcpy(shortb + 3, hab, MM_OPLOG_HEAD_LEN);
    memcpy(shortb + 3 + MM_OPLOG_HEAD_LEN, db.buf + 3, db.len - 3);
    shortb[1] = 1;
    assert_int_equal(
        mm__oplog_batch_verify(NULL, shortb, db.len + MM_OPLOG_HEAD_LEN, NULL),
        MM_EUNAUTHORIZED);
    free(shortb);
    mm__oplog_batch_release(&db);

    mm__oplog_batch_release(&ab);
    mm__oplog_batch_release(&bc);
    node_free(&a);
    node_free(&b);
    node_free(&c);
    node_free(&d);
    node_free(&e);
    mm__sign_key_free(ka);
    mm__sign_key_free(kb);
    mm__sign_key_free(kc);
    mm__sign_key_free(kd);
}

/*
 * Catch-up in sealed, bounded batches: 3000 ops of a reach b in batches
 * of 4 KiB, one signature per origin per batch; b, which holds a's
 * signatures only where a's batches ended, serves c with a smaller bound
 * (a run of a's then ends at one of them, past the bound if need be) and
 * with a larger one; all end with a's view.
 */
static void
test_oplog_signed_catchup_in_bounded_batches(void **state)
{
    (void)state;
    struct mm_sign_key *ka, *kb, *kc, *kd;
    struct tnode a, b, c, d;
    snode_init(&a, &ka, 1, 1);
    snode_init(&b, &kb, 2, 1);
    snode_init(&c, &kc, 3, 1);
    snode_init(&d, &kd, 4, 1);
    for (int i = 0; i < 3000; i++) {
        char label[32];
        snprintf(label, sizeof(label), "bulk/%05d", i);
        node_reg(&a, label, (uint64_t)i + 1);
    }
    size_t sigs = 0;
    size_t nb = signed_catchup(&b, &a, 4096, &sigs);
    assert_true(nb > 10);
    assert_int_equal(sigs, nb);
    uint64_t h = mm__oplog_registry_hash(a.o);
    assert_int_equal(mm__oplog_registry_hash(b.o), h);
    sigs = 0;
    size_t nc = signed_catchup(&c, &b, 1000, &sigs);
    assert_true(nc >= nb && nc < 2 * nb);
    assert_int_equal(mm__oplog_registry_hash(c.o), h);
    sigs = 0;
    size_t ndd = signed_catchup(&d, &b, 1u << 20, &sigs);
    assert_int_equal(ndd, 1);
    assert_int_equal(sigs, 1);
    assert_int_equal(mm__oplog_registry_hash(d.o), h);
    fprintf(stderr, "# signed catch-up: %zu batches a->b, %zu b->c\n", nb, nc);
    node_free(&a);
    node_free(&b);
    node_free(&c);
    node_free(&d);
    mm__sign_key_free(ka);
    mm__sign_key_free(kb);
    mm__sign_key_free(kc);
    mm__sign_key_free(kd);
}

/* The golden vector of docs/wire.md (Member frames): key seed 00..1f, one
 * register at generation 1, its sealed batch byte for byte (Ed25519 signatures
 * are deterministic). */
static void
test_oplog_signed_batch_golden(void **state)
{
    (void)state;
    static const char want[] =
        "02010056475aa75463474c0285df5dbf2bcab7010000000000000001000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000"
        "4602863ec7d01b837fab34ed6a59e98973ab3f55df3e98070892e364e4306eb903"
        "a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b84e25"
        "03db24aad82bc007800df2f88f8aeaed882852d68256297f226c5bcfbabf75863e"
        "9df2b6a1983d1b17d8b4a30688212dd346718d0de2d34e3da02349390501000000"
        "430000000156475aa75463474c0285df5dbf2bcab7010000000000000001000000"
        "00000000000001000000000001000000000000000107006563686f2f6e31040065"
        "63686f0000";
    uint8_t seed[32], pub[32], id[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)i;
    struct mm_sign_key *k;
    assert_int_equal(mm__sign_key_from_seed(&k, seed), 0);
    assert_int_equal(mm__sign_key_public(k, pub), 0);
    mm__sha256(id, pub, sizeof(pub));
    mm__oplog *o;
    assert_int_equal(mm__oplog_new(&o, id, 1, NULL), 0);
    mm__oplog_set_signer(o, k, pub);
    assert_int_equal(mm__oplog_register(o, "echo/n1", "echo", MM_VIS_PUBLIC, 1,
                                        NULL, 0, 0x10000, NULL),
                     0);
    uint8_t vec[5] = {1, 0, 0, 0, 0};
    struct mm__oplog_batch b;
    mm__oplog_batch_init(&b);
    assert_int_equal(mm__oplog_missing_batch(o, vec, sizeof(vec), 1u << 20, &b),
                     1);
    char hex[2 * 270 + 1];
    assert_int_equal(b.len, 270);
    for (size_t i = 0; i < b.len; i++)
        snprintf(hex + 2 * i, 3, "%02x", b.buf[i]);
    assert_string_equal(hex, want);
    assert_int_equal(mm__oplog_batch_verify(NULL, b.buf, b.len, NULL), 0);
    mm__oplog_batch_release(&b);
    mm__oplog_free(o);
    mm__sign_key_free(k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oplog_seqs_start_at_one_gap_free),
        cmocka_unit_test(test_oplog_private_never_takes_a_seq),
        cmocka_unit_test(test_oplog_apply_exactly_once),
        cmocka_unit_test(test_oplog_out_of_order_buffered),
        cmocka_unit_test(test_oplog_pending_is_bounded),
        cmocka_unit_test(test_oplog_older_generation_discarded),
        cmocka_unit_test(test_oplog_newer_generation_replaces),
        cmocka_unit_test(test_oplog_remove_is_owner_scoped),
        cmocka_unit_test(test_oplog_failed_origin_hidden_then_restored),
        cmocka_unit_test(test_oplog_reaped_origin_dropped),
        cmocka_unit_test(test_oplog_conflict_same_winner_in_every_order),
        cmocka_unit_test(test_oplog_shadowed_promoted),
        cmocka_unit_test(test_oplog_key_events_and_listing_filters),
        cmocka_unit_test(test_oplog_foreach_in_label_order),
        cmocka_unit_test(test_oplog_three_nodes_partition_converge),
        cmocka_unit_test(test_oplog_thousand_registrations_five_origins),
        cmocka_unit_test(test_oplog_compaction_snapshot_then_tail),
        cmocka_unit_test(test_oplog_batch_truncations_rejected),
        cmocka_unit_test(test_oplog_batch_iter),
        cmocka_unit_test(test_oplog_record_golden_and_limits),
        cmocka_unit_test(test_oplog_vector_roundtrip_and_rejects),
        cmocka_unit_test(test_oplog_missing_batch_bounded_and_resumable),
        cmocka_unit_test(test_oplog_vec_merge),
        cmocka_unit_test(test_oplog_alloc_failures_leave_consistent_state),
        cmocka_unit_test(test_oplog_apply_in_steps_same_as_at_once),
        cmocka_unit_test(test_oplog_signed_heads_relay_and_tamper),
        cmocka_unit_test(test_oplog_signed_catchup_in_bounded_batches),
        cmocka_unit_test(test_oplog_signed_batch_golden),
        cmocka_unit_test(test_oplog_recordless_origins_kept_small),
        cmocka_unit_test(test_oplog_recordless_origins_member_lookup),
        cmocka_unit_test(test_oplog_many_origins_stay_ordered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
