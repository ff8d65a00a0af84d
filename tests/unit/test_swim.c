/*
 * test_swim.c — the SWIM + Lifeguard core with a fake clock.
 *
 * Two harnesses: a single instance whose packets the test reads and whose
 * peers the test plays by hand (crafting packets in the documented format),
 * and an in-memory network of many instances with latency, loss, kills and
 * partitions, driven by the earliest deadline.
 *
 * Every test node |i| has a real Ed25519 identity key made from a fixed
 * seed, and its id is that key's hash (identity.h), so records are signed
 * and verified as on a real node (crypto.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <time.h>

#include "common.h"
#include "crypto.h"
#include "identity.h"
#include "membership/idx.h"
#include "membership/seal.h"
#include "membership/swim.h"

enum {
    T_PING = 1,
    T_PING_REQ,
    T_ACK,
    T_NACK,
    T_ALIVE,
    T_SUSPECT,
    T_FAILED,
    T_LEFT,
    T_DIGEST
};

#define KEYS_MAX 64

static struct {
    struct mm_sign_key *key;
    uint8_t pub[32], id[16];
} keys[KEYS_MAX];

static void
key_ensure(int i)
{
    uint8_t seed[32];
    assert_true(i >= 0 && i < KEYS_MAX);
    if (keys[i].key) return;
    memset(seed, 0x5A, sizeof(seed));
    seed[0] = (uint8_t)i;
    assert_int_equal(mm__sign_key_from_seed(&keys[i].key, seed), 0);
    assert_int_equal(mm__sign_key_public(keys[i].key, keys[i].pub), 0);
    mm__identity_id_of(keys[i].id, keys[i].pub);
}

static void
id_of(uint8_t id[16], int i)
{
    key_ensure(i);
    memcpy(id, keys[i].id, 16);
}

/* The test node whose id is |id|, or -1. */
static int
idx_of_id(const uint8_t *id)
{
    for (int i = 0; i < KEYS_MAX; i++)
        if (keys[i].key && memcmp(keys[i].id, id, 16) == 0) return i;
    return -1;
}

/* The core's sign op: the record's id (after the 18-byte label) names
 * the node signing, and each node signs only its own record. */
static int
t_sign(void *data, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    (void)data;
    assert_true(len > 18 + 16);
    int i = idx_of_id(msg + 18);
    assert_true(i >= 0);
    return mm__ed25519_sign(keys[i].key, msg, len, sig);
}

static unsigned long t_verifies; /* verify calls, all instances */

/* The core's verify op, as membership.c does it. */
static int
t_verify(void *data, const uint8_t id[16], const uint8_t pub[32],
         const uint8_t *msg, size_t len, const uint8_t sig[64])
{
    uint8_t want[16];
    (void)data;
    t_verifies++;
    mm__identity_id_of(want, pub);
    if (memcmp(want, id, 16) != 0) return -1;
    return mm__ed25519_verify(pub, msg, len, sig);
}

static void
keys_free(void)
{
    for (int i = 0; i < KEYS_MAX; i++) {
        mm__sign_key_free(keys[i].key);
        keys[i].key = NULL;
    }
}

static struct mm_swim_addr
addr_of(int i)
{
    struct mm_swim_addr a;
    memset(&a, 0, sizeof(a));
    a.family = 4;
    a.ip[0] = 10;
    a.ip[3] = (uint8_t)(i + 1);
    a.port = (uint16_t)(7000 + i);
    return a;
}

static int
idx_of_addr(const struct mm_swim_addr *a)
{
    return (int)a->port - 7000;
}

static void
cfg_for(struct mm_swim_config *cfg, int i, char *name, uint64_t seed)
{
    mm__swim_config_init(cfg);
    snprintf(name, 32, "n%d", i);
    cfg->name = name;
    id_of(cfg->id, i);
    memcpy(cfg->pub, keys[i].pub, 32);
    cfg->addr = addr_of(i);
    cfg->generation = 1;
    cfg->seed = seed;
}

/* ---- test-side packet builder and reader -------------------------------- */

struct tb {
    uint8_t b[1400];
    size_t len;
    unsigned count;
};

static void
tb_begin(struct tb *t, int sender)
{
    t->b[0] = 2;
    id_of(t->b + 1, sender);
    t->b[17] = 0;
    t->len = 18;
    t->count = 0;
}

static uint8_t *
tb_msg(struct tb *t, uint8_t type, size_t blen)
{
    uint8_t *p = t->b + t->len;
    assert_true(t->len + 3 + blen <= sizeof(t->b));
    p[0] = type;
    mm__put_u16(p + 1, (uint16_t)blen);
    t->len += 3 + blen;
    t->b[17] = (uint8_t)++t->count;
    return p + 3;
}

static void
tb_seq(struct tb *t, uint8_t type, uint32_t seq)
{
    mm__put_u32(tb_msg(t, type, 4), seq);
}

static void
tb_ping(struct tb *t, uint32_t seq, int target)
{
    uint8_t *p = tb_msg(t, T_PING, 20);
    mm__put_u32(p, seq);
    id_of(p + 4, target);
}

/*
 * A record for node |i| in the documented format, signed by node
 * |signer|'s key (|i| for a genuine one); with |with_pub| it carries that
 * signer's public key.  |flags| bit 0: a leave.  Returns the body size.
 */
static size_t
rec_build(uint8_t *p, int i, uint64_t gen, uint64_t inc, uint8_t flags,
          const char *tags, struct mm_swim_addr a, int signer, int with_pub)
{
    char name[32];
    uint8_t tbs[18 + 512];
    snprintf(name, sizeof(name), "n%d", i);
    size_t nl = strlen(name), tl = strlen(tags), o;
    key_ensure(signer);
    id_of(p, i);
    mm__put_u64(p + 16, gen);
    mm__put_u64(p + 24, inc);
    p[32] = flags;
    p[33] = 0;
    p[34] = 4;
    memcpy(p + 35, a.ip, 4);
    mm__put_u16(p + 39, a.port);
    p[41] = (uint8_t)nl;
    memcpy(p + 42, name, nl);
    p[42 + nl] = (uint8_t)tl;
    memcpy(p + 43 + nl, tags, tl);
    o = 43 + nl + tl;
    memcpy(tbs, "murmer-swim-rec-v1", 18);
    memcpy(tbs + 18, p, o);
    assert_int_equal(mm__ed25519_sign(keys[signer].key, tbs, 18 + o,
                                      p + o + (with_pub ? 32 : 0)),
                     0);
    if (with_pub) {
        p[32] |= 2;
        memcpy(p + o, keys[signer].pub, 32);
        o += 32;
    }
    return o + 64;
}

static void
tb_rec(struct tb *t, int i, uint64_t gen, uint64_t inc, uint8_t flags,
       const char *tags, struct mm_swim_addr a, int signer)
{
    uint8_t body[600];
    size_t n = rec_build(body, i, gen, inc, flags, tags, a, signer, 1);
    memcpy(tb_msg(t, T_ALIVE, n), body, n);
}

static void
tb_alive(struct tb *t, int i, uint64_t gen, uint64_t inc, const char *tags,
         struct mm_swim_addr a)
{
    tb_rec(t, i, gen, inc, 0, tags, a, i);
}

static void
tb_verdict(struct tb *t, uint8_t type, int i, uint64_t gen, uint64_t inc,
           int from)
{
    uint8_t *p = tb_msg(t, type, type == T_LEFT ? 32 : 48);
    id_of(p, i);
    mm__put_u64(p + 16, gen);
    mm__put_u64(p + 24, inc);
    if (type != T_LEFT) id_of(p + 32, from);
}

static void
tb_digest(struct tb *t, uint64_t d)
{
    uint8_t *p = tb_msg(t, T_DIGEST, 12);
    mm__put_u64(p, d);
    mm__put_u32(p + 8, 0);
}

/* The |nth| message of |type| in a packet: its body, or NULL. */
static const uint8_t *
pk_find(const uint8_t *b, size_t len, uint8_t type, int nth, size_t *blen)
{
    size_t o = 18;
    unsigned count = b[17];
    for (unsigned i = 0; i < count && o + 3 <= len; i++) {
        size_t n = mm__get_u16(b + o + 1);
        if (b[o] == type && nth-- == 0) {
            if (blen) *blen = n;
            return b + o + 3;
        }
        o += 3 + n;
    }
    return NULL;
}

/* ---- single-instance harness -------------------------------------------- */

#define H_OUT 8192

struct cap {
    struct mm_swim_addr to;
    size_t len;
    uint64_t at;
    uint8_t buf[1400];
};

struct ev {
    uint8_t id[16];
    int state, was;
};

struct h {
    struct mm_swim *s;
    uint64_t now;
    struct cap out[H_OUT];
    size_t nout, acked_upto;
    int auto_ack;
    struct ev ev[512];
    size_t nev;
    int nsync;
    uint8_t sync_peer[16];
};

static void
h_send(void *data, const struct mm_swim_addr *to, const uint8_t *buf,
       size_t len)
{
    struct h *h = data;
    assert_true(len <= MM_SWIM_PACKET_MAX);
    if (h->nout == H_OUT) return;
    struct cap *c = &h->out[h->nout++];
    c->to = *to;
    c->len = len;
    c->at = h->now;
    memcpy(c->buf, buf, len);
}

static void
h_changed(void *data, const struct mm_swim_member *m, int was)
{
    struct h *h = data;
    if (h->nev < MM_ARRAY_SIZE(h->ev)) {
        memcpy(h->ev[h->nev].id, m->rec->id, 16);
        h->ev[h->nev].state = m->state;
        h->ev[h->nev].was = was;
        h->nev++;
    }
}

static void
h_want_sync(void *data, const struct mm_swim_member *peer)
{
    struct h *h = data;
    h->nsync++;
    memcpy(h->sync_peer, peer->rec->id, 16);
}

/* An instance whose digest pulls back off up to |sync_gap_max_ms| and
 * whose probe steps count as late from |late_ms|. */
static struct h *
h_new_cfg(uint64_t seed, uint32_t sync_gap_max_ms, uint32_t late_ms)
{
    struct h *h = calloc(1, sizeof(*h));
    struct mm_swim_config cfg;
    char name[32];
    struct mm_swim_ops ops = {h,           h_send, h_changed,
                              h_want_sync, t_sign, t_verify};
    assert_non_null(h);
    cfg_for(&cfg, 0, name, seed);
    cfg.sync_gap_max_ms = sync_gap_max_ms;
    cfg.late_ms = late_ms;
    h->now = 1000;
    assert_int_equal(mm__swim_new(&h->s, &cfg, &ops, h->now), 0);
    return h;
}

static struct h *
h_new(uint64_t seed)
{
    return h_new_cfg(seed, MM_SWIM_SYNC_GAP_MAX_MS, MM_SWIM_LATE_MS);
}

static void
h_free(struct h *h)
{
    mm__swim_free(h->s);
    free(h);
}

static void
h_recv(struct h *h, int from, struct tb *t)
{
    struct mm_swim_addr a = addr_of(from);
    assert_int_equal(mm__swim_recv(h->s, &a, t->b, t->len, h->now), 0);
    assert_int_equal(mm__swim_check(h->s), 0);
}

/* Teaches the instance members 1..n (alive, generation 1). */
static void
h_learn(struct h *h, int n)
{
    struct tb t;
    for (int i = 1; i <= n; i++) {
        if ((i - 1) % 8 == 0) tb_begin(&t, 1);
        tb_alive(&t, i, 1, 0, "", addr_of(i));
        if (i % 8 == 0 || i == n) h_recv(h, 1, &t);
    }
}

/* Plays every member: acks each ping the instance sent since last time. */
static void
h_auto_ack(struct h *h)
{
    while (h->acked_upto < h->nout) {
        struct cap *c = &h->out[h->acked_upto++];
        const uint8_t *p;
        for (int k = 0; (p = pk_find(c->buf, c->len, T_PING, k, NULL)); k++) {
            struct tb t;
            int who = idx_of_addr(&c->to);
            tb_begin(&t, who);
            tb_seq(&t, T_ACK, mm__get_u32(p));
            h_recv(h, who, &t);
        }
    }
}

static void
h_advance(struct h *h, uint64_t to)
{
    for (int guard = 0; guard < 1000000; guard++) {
        if (h->auto_ack) h_auto_ack(h);
        uint64_t d = mm__swim_deadline(h->s);
        if (d > to) break;
        assert_true(d >= h->now || guard == 0 || d == h->now);
        if (d > h->now) h->now = d;
        mm__swim_tick(h->s, h->now);
        assert_true(mm__swim_deadline(h->s) > h->now);
        assert_int_equal(mm__swim_check(h->s), 0);
    }
    h->now = to;
}

static int
h_state(struct h *h, int i)
{
    uint8_t id[16];
    id_of(id, i);
    const struct mm_swim_member *m = mm__swim_find(h->s, id);
    return m ? m->state : MM_SWIM_NONE;
}

/* The first ping sent at or after packet index |from|; its target index. */
static int
h_next_ping(struct h *h, size_t *from, uint32_t *seq)
{
    for (size_t i = *from; i < h->nout; i++) {
        const uint8_t *p =
            pk_find(h->out[i].buf, h->out[i].len, T_PING, 0, NULL);
        if (p && !pk_find(h->out[i].buf, h->out[i].len, T_FAILED, 0, NULL)) {
            *from = i + 1;
            if (seq) *seq = mm__get_u32(p);
            return idx_of_addr(&h->out[i].to);
        }
    }
    return -1;
}

/* ---- single-instance tests ---------------------------------------------- */

static int h_run_to_ping(struct h *h, uint32_t *seq, uint64_t *sent_at);

/* Index of the last packet holding a PING. */
static size_t
h_last_ping(struct h *h)
{
    for (size_t i = h->nout; i-- > 0;)
        if (pk_find(h->out[i].buf, h->out[i].len, T_PING, 0, NULL)) return i;
    fail();
    return 0;
}

static void
test_swim_probe_ack(void **state)
{
    (void)state;
    struct h *h = h_new(11);
    h_learn(h, 1);
    assert_int_equal(h_state(h, 1), MM_SWIM_ALIVE);
    assert_int_equal(h->nev, 1);
    assert_int_equal(h->ev[0].was, MM_SWIM_NONE);
    uint32_t seq;
    uint64_t sent;
    int target = h_run_to_ping(h, &seq, &sent);
    size_t from = h_last_ping(h) + 1;
    assert_int_equal(target, 1);
    /* The ping names its target. */
    const uint8_t *p =
        pk_find(h->out[from - 1].buf, h->out[from - 1].len, T_PING, 0, NULL);
    uint8_t id1[16];
    id_of(id1, 1);
    assert_memory_equal(p + 4, id1, 16);
    /* Every packet opens with the digest. */
    assert_int_equal(h->out[from - 1].buf[18], T_DIGEST);
    h->now = sent + 3;
    struct tb t;
    tb_begin(&t, 1);
    tb_seq(&t, T_ACK, seq);
    h_recv(h, 1, &t);
    const struct mm_swim_member *m = mm__swim_find(h->s, id1);
    assert_int_equal(m->rtt_ms, 3);
    assert_int_equal(m->last_ack, h->now);
    /* No indirect probes, no suspicion, awareness stays healthy. */
    size_t before = h->nout;
    h_advance(h, h->now + 990);
    for (size_t i = before; i < h->nout; i++)
        assert_null(pk_find(h->out[i].buf, h->out[i].len, T_PING_REQ, 0, NULL));
    assert_int_equal(h_state(h, 1), MM_SWIM_ALIVE);
    assert_int_equal(mm__swim_awareness(h->s), 0);
    assert_int_equal(mm__swim_stats(h->s)->probes, 1);
    h_free(h);
}

/* Runs until the instance pings someone; returns the target. */
static int
h_run_to_ping(struct h *h, uint32_t *seq, uint64_t *sent_at)
{
    size_t from = h->nout;
    for (int i = 0; i < 100; i++) {
        h_advance(h, mm__swim_deadline(h->s));
        int t = h_next_ping(h, &from, seq);
        if (t >= 0) {
            *sent_at = h->out[from - 1].at;
            return t;
        }
    }
    fail();
    return -1;
}

static void
test_swim_indirect_ack_keeps_alive(void **state)
{
    (void)state;
    struct h *h = h_new(12);
    h_learn(h, 4);
    uint32_t seq;
    uint64_t sent;
    int target = h_run_to_ping(h, &seq, &sent);
    assert_true(target >= 1 && target <= 4);
    /* Silence until the probe timeout: three ping-reqs go out. */
    size_t before = h->nout;
    h_advance(h, sent + 499);
    for (size_t i = before; i < h->nout; i++)
        assert_null(pk_find(h->out[i].buf, h->out[i].len, T_PING_REQ, 0, NULL));
    h_advance(h, sent + 500);
    int nreq = 0, via = -1;
    for (size_t i = before; i < h->nout; i++) {
        size_t blen;
        const uint8_t *p =
            pk_find(h->out[i].buf, h->out[i].len, T_PING_REQ, 0, &blen);
        if (!p) continue;
        nreq++;
        via = idx_of_addr(&h->out[i].to);
        assert_int_not_equal(via, target);
        assert_int_equal(mm__get_u32(p), seq);
        uint8_t tid[16];
        id_of(tid, target);
        assert_memory_equal(p + 4, tid, 16);
        assert_int_equal(p[blen - 1] & 1, 1); /* nack wanted */
    }
    assert_int_equal(nreq, 3);
    /* One intermediary relays the target's ack. */
    h->now = sent + 700;
    struct tb t;
    tb_begin(&t, via);
    tb_seq(&t, T_ACK, seq);
    h_recv(h, via, &t);
    h_advance(h, sent + 1000);
    assert_int_equal(h_state(h, target), MM_SWIM_ALIVE);
    assert_int_equal(mm__swim_awareness(h->s), 0);
    h_free(h);
}

static int
count_type_since(struct h *h, size_t from, uint8_t type)
{
    int n = 0;
    for (size_t i = from; i < h->nout; i++)
        n += pk_find(h->out[i].buf, h->out[i].len, type, 0, NULL) != NULL;
    return n;
}

static void
test_swim_nack_raises_awareness(void **state)
{
    (void)state;
    struct h *h = h_new(13);
    h_learn(h, 4);
    uint32_t seq, seq2, seq3;
    uint64_t t1, t2, t3, t4;
    /* Probe 1: the three intermediaries nack; the target is just down.
     * Our own network is fine: awareness does not move. */
    int target = h_run_to_ping(h, &seq, &t1);
    h_advance(h, t1 + 500);
    for (int i = 1; i <= 4; i++) {
        if (i == target) continue;
        struct tb t;
        tb_begin(&t, i);
        tb_seq(&t, T_NACK, seq);
        h_recv(h, i, &t);
    }
    h_advance(h, t1 + 999);
    assert_int_equal(h_state(h, target), MM_SWIM_ALIVE);
    /* Probe 1 ends (suspect) and probe 2 starts in the same tick. */
    h_run_to_ping(h, &seq2, &t2);
    assert_int_equal(t2, t1 + 1000);
    assert_int_equal(h_state(h, target), MM_SWIM_SUSPECT);
    assert_int_equal(mm__swim_awareness(h->s), 0);
    assert_int_equal(mm__swim_stats(h->s)->nacks_in, 3);
    /* The suspect refutes; probe 2 gets no answer and no nack at all. */
    struct tb r;
    tb_begin(&r, target);
    tb_alive(&r, target, 1, 1, "", addr_of(target));
    h_recv(h, target, &r);
    assert_int_equal(h_state(h, target), MM_SWIM_ALIVE);
    size_t before = h->nout;
    h_advance(h, t2 + 999);
    assert_int_equal(count_type_since(h, before, T_PING_REQ), 3);
    h_run_to_ping(h, &seq3, &t3);
    assert_int_equal(t3, t2 + 1000);
    /* +1 per missing nack. */
    assert_int_equal(mm__swim_awareness(h->s), 3);
    /* Lifeguard scales the probe timeout (and interval) by 4. */
    before = h->nout;
    h_advance(h, t3 + 1999);
    assert_int_equal(count_type_since(h, before, T_PING_REQ), 0);
    h_advance(h, t3 + 2000);
    assert_true(count_type_since(h, before, T_PING_REQ) >= 1);
    /* An ack (even late, via an intermediary) brings it down by one. */
    struct tb t;
    tb_begin(&t, 1);
    tb_seq(&t, T_ACK, seq3);
    h_recv(h, 1, &t);
    assert_int_equal(mm__swim_awareness(h->s), 2);
    h_run_to_ping(h, &seq, &t4);
    assert_int_equal(t4, t3 + 4000);
    char buf[2048];
    int n = mm__swim_timings_format(h->s, buf, sizeof(buf));
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    assert_non_null(strstr(buf, "probe_interval: 1000 ms (now 3000 ms"));
    assert_non_null(strstr(buf, "suspicion_mult: 4 (min now 4000 ms)"));
    h_free(h);
}

/*
 * A node that runs its probe steps late (a saturated CPU, a busy loop) is
 * behind, not its target: one step late past both the probe timeout and
 * the probe's end sends the ping-reqs and gives them their whole window
 * (before, it suspected the target in the same step), and raises its own
 * local health score.
 */
/*
 * A probe that gets no ack from a member that sent us a packet while it
 * ran is not a suspicion (the member is up and reaches us); a probe of a
 * member that stayed silent still is.
 */
static void
test_swim_heard_during_probe_not_suspected(void **state)
{
    (void)state;
    struct h *h = h_new_cfg(47, 0, 0);
    h_learn(h, 4);
    uint32_t seq;
    uint64_t sent;
    int target = h_run_to_ping(h, &seq, &sent);
    size_t from = h->nout;
    /* The target speaks (its digest, no ack) while the probe runs. */
    struct tb t;
    h->now = sent + 5;
    tb_begin(&t, target);
    tb_digest(&t, mm__swim_digest(h->s));
    h_recv(h, target, &t);
    h_advance(h, sent + 1000); /* past the probe's end */
    assert_int_equal(h_state(h, target), MM_SWIM_ALIVE);
    assert_int_equal(mm__swim_stats(h->s)->heard_not_acked, 1);
    assert_int_equal(mm__swim_stats(h->s)->suspicions, 0);
    /* The next member probed stays silent: suspected as before (the
     * missed ack raised the local health score: probes are slower). */
    int next = -1;
    while (next < 0 && h->now < sent + 10000) {
        next = h_next_ping(h, &from, NULL);
        if (next < 0) h_advance(h, mm__swim_deadline(h->s));
    }
    assert_true(next > 0 && next != target);
    uint64_t at = h->out[from - 1].at;
    while (h_state(h, next) == MM_SWIM_ALIVE && h->now < at + 20000)
        h_advance(h, mm__swim_deadline(h->s));
    assert_int_equal(h_state(h, next), MM_SWIM_SUSPECT);
    assert_int_equal(mm__swim_stats(h->s)->heard_not_acked, 1);
    h_free(h);
}

static void
test_swim_late_probe_step_not_a_suspicion(void **state)
{
    (void)state;
    struct h *h = h_new_cfg(41, 0, 100);
    h_learn(h, 4);
    uint32_t seq;
    uint64_t sent;
    int target = h_run_to_ping(h, &seq, &sent);
    size_t before = h->nout;
    /* Nothing ran between the ping and 1.6 s later. */
    h->now = sent + 1600;
    mm__swim_tick(h->s, h->now);
    assert_int_equal(mm__swim_check(h->s), 0);
    assert_int_equal(count_type_since(h, before, T_PING_REQ), 3);
    assert_int_equal(h_state(h, target), MM_SWIM_ALIVE);
    assert_int_equal(mm__swim_stats(h->s)->late_probes, 1);
    assert_int_equal(mm__swim_awareness(h->s), 1);
    /* The intermediaries have their window: an ack relayed by one of them
     * well after the probe's nominal end keeps the target alive. */
    h_advance(h, sent + 1600 + 400);
    assert_int_equal(h_state(h, target), MM_SWIM_ALIVE);
    struct tb t;
    int via = target == 1 ? 2 : 1;
    tb_begin(&t, via);
    tb_seq(&t, T_ACK, seq);
    h_recv(h, via, &t);
    h_advance(h, sent + 3000);
    assert_int_equal(h_state(h, target), MM_SWIM_ALIVE);
    assert_int_equal(mm__swim_stats(h->s)->suspicions, 0);
    h_free(h);
}

/*
 * The end of a probe handled late is put off once, by the lateness (at
 * most the probe timeout): an answer that came while we were not running
 * is read before we conclude.  Without any answer the target is suspected
 * at the deferred end.
 */
static void
test_swim_late_probe_end_reads_answers_first(void **state)
{
    (void)state;
    for (int answer = 0; answer < 2; answer++) {
        struct h *h = h_new_cfg(42, 0, 100);
        h_learn(h, 4);
        uint32_t seq;
        uint64_t sent;
        int target = h_run_to_ping(h, &seq, &sent);
        h_advance(h, sent + 500); /* ping-reqs on time */
        h->now = sent + 1000 + 300;
        mm__swim_tick(h->s, h->now);
        assert_int_equal(h_state(h, target), MM_SWIM_ALIVE);
        assert_int_equal(mm__swim_deadline(h->s), h->now + 300);
        assert_int_equal(mm__swim_stats(h->s)->late_probes, 1);
        if (answer) {
            struct tb t;
            tb_begin(&t, target);
            tb_seq(&t, T_ACK, seq);
            h_recv(h, target, &t);
        }
        h_advance(h, sent + 1000 + 300 + 300);
        assert_int_equal(h_state(h, target),
                         answer ? MM_SWIM_ALIVE : MM_SWIM_SUSPECT);
        h_free(h);
    }
}

static void
test_swim_suspicion_formula(void **state)
{
    (void)state;
    assert_int_equal(mm__swim_suspicion_timeout(4000, 24000, 2, 0), 24000);
    /* 24000 - 20000 * ln 2 / ln 3 = 11381.4 */
    assert_int_equal(mm__swim_suspicion_timeout(4000, 24000, 2, 1), 11382);
    assert_int_equal(mm__swim_suspicion_timeout(4000, 24000, 2, 2), 4000);
    assert_int_equal(mm__swim_suspicion_timeout(4000, 24000, 2, 7), 4000);
    assert_int_equal(mm__swim_suspicion_timeout(4000, 24000, 0, 0), 4000);
    /* k = 4: c = 1 -> 24000 - 20000 * ln2/ln5 = 15386.4 */
    assert_int_equal(mm__swim_suspicion_timeout(4000, 24000, 4, 1), 15387);

    struct h *h = h_new(14);
    uint64_t mn, mx;
    h_learn(h, 4); /* n = 5 */
    mm__swim_suspicion_bounds(h->s, &mn, &mx);
    assert_int_equal(mn, 4000);
    assert_int_equal(mx, 24000);
    assert_int_equal(mm__swim_retransmit_limit(h->s), 4);
    h_learn(h, 31); /* n = 32: 4 * log10(32) s */
    mm__swim_suspicion_bounds(h->s, &mn, &mx);
    assert_int_equal(mn, (uint64_t)(4.0 * log10(32.0) * 1000.0));
    assert_int_equal(mn, 6020);
    assert_int_equal(mx, 6 * 6020);
    assert_int_equal(mm__swim_retransmit_limit(h->s), 8);
    h_free(h);
}

static void
suspect_from(struct h *h, int who, int from)
{
    struct tb t;
    tb_begin(&t, from);
    tb_verdict(&t, T_SUSPECT, who, 1, 0, from);
    h_recv(h, from, &t);
}

static void
test_swim_suspicion_expiry_max(void **state)
{
    (void)state;
    struct h *h = h_new(15);
    h->auto_ack = 1; /* everyone answers: no confirmations of our own */
    h_learn(h, 4);
    h_advance(h, 5000);
    uint64_t t0 = h->now;
    suspect_from(h, 2, 3);
    assert_int_equal(h_state(h, 2), MM_SWIM_SUSPECT);
    h_advance(h, t0 + 23999);
    assert_int_equal(h_state(h, 2), MM_SWIM_SUSPECT);
    h_advance(h, t0 + 24000);
    assert_int_equal(h_state(h, 2), MM_SWIM_FAILED);
    assert_int_equal(h->ev[h->nev - 1].was, MM_SWIM_SUSPECT);
    assert_int_equal(h->ev[h->nev - 1].state, MM_SWIM_FAILED);
    /* Others unaffected. */
    assert_int_equal(h_state(h, 1), MM_SWIM_ALIVE);
    assert_int_equal(h_state(h, 3), MM_SWIM_ALIVE);
    h_free(h);
}

/* Out of memory for a suspicion's state: every allocation of the step
 * fails in turn.  The table stays whole, the member is either suspected in
 * full or left alive (and said so), and the suspicion, sent again once
 * memory is back, lands. */
static void
test_swim_suspicion_out_of_memory(void **state)
{
    (void)state;
    int kept_alive = 0, went = 0;
    for (unsigned long k = 1; k <= 12; k++) {
        struct h *h = h_new(17);
        h->auto_ack = 1;
        h_learn(h, 4);
        h_advance(h, 5000);
        struct tb t;
        struct mm_swim_addr from = addr_of(3);
        tb_begin(&t, 3);
        tb_verdict(&t, T_SUSPECT, 2, 1, 0, 3);
        mm__alloc_fail_after(k);
        (void)mm__swim_recv(h->s, &from, t.b, t.len, h->now);
        mm__alloc_fail_after(0);
        assert_int_equal(mm__swim_check(h->s), 0);
        uint8_t id[16];
        id_of(id, 2);
        const struct mm_swim_member *m = mm__swim_find(h->s, id);
        assert_non_null(m);
        if (m->state == MM_SWIM_ALIVE) {
            kept_alive++;
            assert_null(m->susp);
            h->now += 10;
            tb_begin(&t, 3);
            tb_verdict(&t, T_SUSPECT, 2, 1, 0, 3);
            h_recv(h, 3, &t);
        } else {
            went++;
        }
        assert_int_equal(h_state(h, 2), MM_SWIM_SUSPECT);
        assert_non_null(mm__swim_find(h->s, id)->susp);
        /* Time runs on: the suspicion ends, nothing breaks. */
        h_advance(h, h->now + 30000);
        assert_int_equal(mm__swim_check(h->s), 0);
        h_free(h);
    }
    /* Both outcomes were met: the sweep reached the allocation. */
    assert_true(kept_alive > 0);
    assert_true(went > 0);
}

static void
test_swim_suspicion_confirmations_shorten(void **state)
{
    (void)state;
    struct h *h = h_new(16);
    h->auto_ack = 1;
    h_learn(h, 4);
    h_advance(h, 5000);
    uint64_t t0 = h->now;
    suspect_from(h, 2, 3);
    /* The same source again is not independent. */
    h->now = t0 + 500;
    suspect_from(h, 2, 3);
    h_advance(h, t0 + 1000);
    suspect_from(h, 2, 4); /* c = 1: deadline t0 + 11382 */
    uint8_t id2[16];
    id_of(id2, 2);
    const struct mm_swim_member *m = mm__swim_find(h->s, id2);
    assert_int_equal(mm__swim_confirmations(m), 1);
    assert_int_equal(m->susp->suspect_deadline, t0 + 11382);
    h_advance(h, t0 + 11381);
    assert_int_equal(h_state(h, 2), MM_SWIM_SUSPECT);
    h_advance(h, t0 + 11382);
    assert_int_equal(h_state(h, 2), MM_SWIM_FAILED);

    /* Two confirmations: the minimum, 4 s after the first suspicion. */
    uint64_t t1 = h->now + 10;
    h_advance(h, t1);
    suspect_from(h, 3, 1);
    h_advance(h, t1 + 100);
    suspect_from(h, 3, 2);
    h_advance(h, t1 + 200);
    suspect_from(h, 3, 4);
    h_advance(h, t1 + 3999);
    assert_int_equal(h_state(h, 3), MM_SWIM_SUSPECT);
    h_advance(h, t1 + 4000);
    assert_int_equal(h_state(h, 3), MM_SWIM_FAILED);
    h_free(h);
}

static void
test_swim_buddy_refutation(void **state)
{
    (void)state;
    struct h *h = h_new(17);
    h_learn(h, 2);
    /* We are suspected: the ping that tells us so gets an ack that carries
     * our refutation (incarnation 1). */
    struct tb t;
    tb_begin(&t, 1);
    tb_verdict(&t, T_SUSPECT, 0, 1, 0, 2);
    tb_ping(&t, 77, 0);
    size_t before = h->nout;
    h_recv(h, 1, &t);
    assert_int_equal(h->nout, before + 1);
    struct cap *c = &h->out[before];
    assert_int_equal(idx_of_addr(&c->to), 1);
    const uint8_t *ack = pk_find(c->buf, c->len, T_ACK, 0, NULL);
    assert_non_null(ack);
    assert_int_equal(mm__get_u32(ack), 77);
    const uint8_t *alive = NULL;
    uint8_t self_id[16];
    id_of(self_id, 0);
    for (int k = 0; (alive = pk_find(c->buf, c->len, T_ALIVE, k, NULL)); k++)
        if (memcmp(alive, self_id, 16) == 0) break;
    assert_non_null(alive);
    assert_int_equal(mm__get_u64(alive + 24), 1);
    assert_int_equal(mm__swim_self(h->s)->rec->incarnation, 1);
    assert_int_equal(mm__swim_awareness(h->s), 1);
    assert_int_equal(mm__swim_stats(h->s)->refutations, 1);
    /* A stale suspicion (older incarnation) is ignored. */
    tb_begin(&t, 1);
    tb_verdict(&t, T_SUSPECT, 0, 1, 0, 2);
    h_recv(h, 1, &t);
    assert_int_equal(mm__swim_self(h->s)->rec->incarnation, 1);

    /* The prober's side: pinging a member we suspect carries the
     * suspicion (buddy system); its refutation clears it. */
    suspect_from(h, 1, 2);
    assert_int_equal(h_state(h, 1), MM_SWIM_SUSPECT);
    int found = 0;
    for (int i = 0; i < 6 && !found; i++) {
        uint32_t seq;
        uint64_t sent;
        int target = h_run_to_ping(h, &seq, &sent);
        if (target != 1) continue;
        struct cap *pc = &h->out[h->nout - 1];
        for (size_t j = h->nout; j-- > 0;)
            if (h->out[j].at == sent && idx_of_addr(&h->out[j].to) == 1 &&
                pk_find(h->out[j].buf, h->out[j].len, T_PING, 0, NULL)) {
                pc = &h->out[j];
                break;
            }
        const uint8_t *sus = pk_find(pc->buf, pc->len, T_SUSPECT, 0, NULL);
        assert_non_null(sus);
        uint8_t id1[16];
        id_of(id1, 1);
        assert_memory_equal(sus, id1, 16);
        tb_begin(&t, 1);
        tb_alive(&t, 1, 1, 1, "", addr_of(1));
        tb_seq(&t, T_ACK, seq);
        h_recv(h, 1, &t);
        found = 1;
    }
    assert_true(found);
    assert_int_equal(h_state(h, 1), MM_SWIM_ALIVE);
    h_free(h);
}

static void
test_swim_retransmit_limit(void **state)
{
    (void)state;
    struct h *h = h_new(18);
    h->auto_ack = 1;
    h_learn(h, 4);
    h_advance(h, 10000); /* drain the initial broadcasts */
    size_t before = h->nout;
    struct tb t;
    tb_begin(&t, 1);
    tb_alive(&t, 5, 1, 0, "role=x", addr_of(5));
    h_recv(h, 1, &t);
    assert_int_equal(h_state(h, 5), MM_SWIM_ALIVE);
    h_advance(h, 30000);
    uint8_t id5[16];
    id_of(id5, 5);
    int sends = 0;
    for (size_t i = before; i < h->nout; i++) {
        const uint8_t *p;
        for (int k = 0;
             (p = pk_find(h->out[i].buf, h->out[i].len, T_ALIVE, k, NULL)); k++)
            sends += memcmp(p, id5, 16) == 0;
    }
    /* n = 6: 4 * ceil(log10(7)) = 4 sends, no more, no fewer. */
    assert_int_equal(mm__swim_retransmit_limit(h->s), 4);
    assert_int_equal(sends, 4);
    h_free(h);
}

static void
test_swim_probe_order_covers_all(void **state)
{
    (void)state;
    struct h *h = h_new(19);
    h->auto_ack = 1;
    h_learn(h, 9);
    int seen[3][10], order[3][9];
    memset(seen, 0, sizeof(seen));
    size_t from = h->nout;
    for (int r = 0; r < 3; r++) {
        for (int p = 0; p < 9; p++) {
            uint32_t seq;
            uint64_t sent;
            int target = h_run_to_ping(h, &seq, &sent);
            (void)from;
            assert_true(target >= 1 && target <= 9);
            seen[r][target]++;
            order[r][p] = target;
        }
        /* Every member exactly once per round of N probe periods. */
        for (int i = 1; i <= 9; i++)
            assert_int_equal(seen[r][i], 1);
    }
    /* Reshuffled each round. */
    assert_true(memcmp(order[0], order[1], sizeof(order[0])) != 0 ||
                memcmp(order[1], order[2], sizeof(order[0])) != 0);
    h_free(h);
}

static void
test_swim_newer_generation_replaces(void **state)
{
    (void)state;
    struct h *h = h_new(20);
    h_learn(h, 3);
    struct tb t;
    /* Member 2 refutes twice (inc 5), then fails. */
    tb_begin(&t, 1);
    tb_alive(&t, 2, 1, 5, "a=1", addr_of(2));
    tb_verdict(&t, T_FAILED, 2, 1, 5, 1);
    h_recv(h, 1, &t);
    assert_int_equal(h_state(h, 2), MM_SWIM_FAILED);
    /* It restarts: generation 2, incarnation 0, another port and tags. */
    struct mm_swim_addr na = addr_of(2);
    na.port = 9999;
    size_t ev0 = h->nev;
    tb_begin(&t, 2);
    tb_alive(&t, 2, 2, 0, "b=2", na);
    h_recv(h, 2, &t);
    uint8_t id2[16];
    id_of(id2, 2);
    const struct mm_swim_member *m = mm__swim_find(h->s, id2);
    assert_int_equal(m->state, MM_SWIM_ALIVE);
    assert_int_equal(m->rec->generation, 2);
    assert_int_equal(m->rec->incarnation, 0);
    assert_int_equal(m->rec->addr.port, 9999);
    assert_string_equal(m->rec->tags, "b=2");
    assert_int_equal(h->nev, ev0 + 1);
    assert_int_equal(h->ev[ev0].was, MM_SWIM_FAILED);
    /* The old generation's news is stale now. */
    tb_begin(&t, 1);
    tb_alive(&t, 2, 1, 9, "a=1", addr_of(2));
    tb_verdict(&t, T_SUSPECT, 2, 1, 9, 1);
    tb_verdict(&t, T_LEFT, 2, 1, 9, 1);
    h_recv(h, 1, &t);
    assert_int_equal(m->state, MM_SWIM_ALIVE);
    assert_int_equal(m->rec->generation, 2);
    assert_string_equal(m->rec->tags, "b=2");
    /* A newer generation replaces even a live record. */
    tb_begin(&t, 2);
    tb_alive(&t, 2, 3, 0, "c=3", na);
    h_recv(h, 2, &t);
    assert_int_equal(m->rec->generation, 3);
    assert_int_equal(h->ev[h->nev - 1].was, MM_SWIM_ALIVE);
    assert_int_equal(h->ev[h->nev - 1].state, MM_SWIM_ALIVE);
    /* Same incarnation: nothing changes. */
    size_t ev1 = h->nev;
    h_recv(h, 2, &t);
    assert_int_equal(h->nev, ev1);
    h_free(h);
}

/* Member |i| as the instance holds it. */
static const struct mm_swim_member *
h_member(struct h *h, int i)
{
    uint8_t id[16];
    id_of(id, i);
    return mm__swim_find(h->s, id);
}

/*
 * A key holder who is not X (node 9, with the cluster key: it may send any
 * packet) tries to speak for X = member 2: a newer generation and another
 * address, signed by itself, carrying its own key, X's key, or no key.
 * None is believed; X's record and state stay as they were, each is
 * counted, and X's own newer record still gets in afterwards.
 */
static void
test_swim_forged_alive_rejected(void **state)
{
    (void)state;
    struct h *h = h_new(40);
    h_learn(h, 3);
    const struct mm_swim_member *x = h_member(h, 2);
    struct mm_swim_addr fake = addr_of(9);
    fake.port = 6666;
    uint64_t forged0 = mm__swim_stats(h->s)->forged;
    size_t ev0 = h->nev;
    struct tb t;
    uint8_t body[600];
    size_t n;

    /* Signed by 9 with 9's key: the key does not hash to X's id. */
    tb_begin(&t, 9);
    tb_rec(&t, 2, 1000, 0, 0, "evil=1", fake, 9);
    h_recv(h, 9, &t);
    /* Signed by 9 but carrying X's key: the signature does not verify. */
    tb_begin(&t, 9);
    n = rec_build(body, 2, 1000, 0, 0, "evil=1", fake, 9, 0);
    memmove(body + n - 64 + 32, body + n - 64, 64);
    memcpy(body + n - 64, keys[2].pub, 32);
    body[32] |= 2;
    memcpy(tb_msg(&t, T_ALIVE, n + 32), body, n + 32);
    h_recv(h, 9, &t);
    /* X's own signature over another record, re-labelled with a newer
     * generation and the fake address. */
    tb_begin(&t, 9);
    n = rec_build(body, 2, 1, 7, 0, "", addr_of(2), 2, 1);
    mm__put_u64(body + 16, 1000);
    memcpy(body + 35, fake.ip, 4);
    mm__put_u16(body + 39, fake.port);
    memcpy(tb_msg(&t, T_ALIVE, n), body, n);
    h_recv(h, 9, &t);
    /* No key at all (flags bit 1 clear), garbage signature. */
    tb_begin(&t, 9);
    n = rec_build(body, 2, 1000, 0, 0, "", fake, 9, 0);
    memcpy(tb_msg(&t, T_ALIVE, n), body, n);
    h_recv(h, 9, &t);
    /* The same through a push-pull payload. */
    uint8_t st[1 + 16 + 12 + 3 + 600];
    st[0] = 3;
    id_of(st + 1, 9);
    mm__put_u32(st + 17, 1);
    mm__put_u32(st + 21, UINT32_MAX); /* want */
    mm__put_u32(st + 25, UINT32_MAX); /* next */
    n = rec_build(st + 32, 2, 1000, 0, 0, "", fake, 9, 1);
    st[29] = MM_SWIM_ALIVE;
    mm__put_u16(st + 30, (uint16_t)n);
    assert_int_equal(mm__swim_state_merge(h->s, st, 32 + n, h->now), 0);

    assert_int_equal(mm__swim_stats(h->s)->forged, forged0 + 5);
    assert_int_equal(h->nev, ev0);
    assert_int_equal(x->rec->generation, 1);
    assert_int_equal(x->rec->incarnation, 0);
    assert_int_equal(x->rec->addr.port, addr_of(2).port);
    assert_string_equal(x->rec->tags, "");
    assert_int_equal(x->state, MM_SWIM_ALIVE);
    /* Nothing was queued for gossip about X either: the instance's next
     * packets carry no ALIVE for X with the fake address. */
    h->auto_ack = 1;
    size_t out0 = h->nout;
    h_advance(h, h->now + 3000);
    for (size_t i = out0; i < h->nout; i++) {
        const uint8_t *p;
        size_t bl;
        for (int k = 0;
             (p = pk_find(h->out[i].buf, h->out[i].len, T_ALIVE, k, &bl)); k++)
            assert_false(memcmp(p, x->rec->id, 16) == 0 &&
                         mm__get_u64(p + 16) == 1000);
    }
    /* After one record that does not verify, the packet's other records
     * are dropped unverified: one verification per forged packet. */
    unsigned long v0 = t_verifies;
    forged0 = mm__swim_stats(h->s)->forged;
    tb_begin(&t, 9);
    tb_rec(&t, 2, 1000, 0, 0, "", fake, 9);
    tb_alive(&t, 5, 1, 0, "", addr_of(5));
    tb_alive(&t, 6, 1, 0, "", addr_of(6));
    h_recv(h, 9, &t);
    assert_int_equal(t_verifies, v0 + 1);
    assert_int_equal(mm__swim_stats(h->s)->forged, forged0 + 3);
    assert_int_equal(h_state(h, 5), MM_SWIM_NONE);
    /* The next packet starts afresh. */
    tb_begin(&t, 1);
    tb_alive(&t, 5, 1, 0, "", addr_of(5));
    h_recv(h, 1, &t);
    assert_int_equal(h_state(h, 5), MM_SWIM_ALIVE);
    /* X itself restarting (generation 2, a new port) is believed. */
    struct mm_swim_addr na = addr_of(2);
    na.port = 7777;
    tb_begin(&t, 2);
    tb_alive(&t, 2, 2, 0, "", na);
    h_recv(h, 2, &t);
    assert_int_equal(x->rec->generation, 2);
    assert_int_equal(x->rec->addr.port, 7777);
    h_free(h);
}

/*
 * Opinions cannot move X's incarnation past what X signed: a suspicion of
 * X at incarnation 2^64-1 is taken at X's own; X refutes with a signed
 * record at its incarnation + 1, which every receiver believes.  The same
 * suspicion of the instance itself makes it refute at + 1 (no wrap), with
 * a record that verifies.
 */
static void
test_swim_signed_refutation(void **state)
{
    (void)state;
    struct h *h = h_new(41);
    h_learn(h, 3);
    const struct mm_swim_member *x = h_member(h, 2);
    struct tb t;
    tb_begin(&t, 9);
    tb_verdict(&t, T_SUSPECT, 2, 1, UINT64_MAX, 9);
    h_recv(h, 9, &t);
    assert_int_equal(x->state, MM_SWIM_SUSPECT);
    assert_int_equal(x->rec->incarnation, 0);
    /* A forged refutation does nothing; X's own does. */
    uint64_t forged0 = mm__swim_stats(h->s)->forged;
    tb_begin(&t, 9);
    tb_rec(&t, 2, 1, 1, 0, "", addr_of(2), 9);
    h_recv(h, 9, &t);
    assert_int_equal(x->state, MM_SWIM_SUSPECT);
    assert_int_equal(mm__swim_stats(h->s)->forged, forged0 + 1);
    tb_begin(&t, 2);
    tb_alive(&t, 2, 1, 1, "", addr_of(2));
    h_recv(h, 2, &t);
    assert_int_equal(x->state, MM_SWIM_ALIVE);
    assert_int_equal(x->rec->incarnation, 1);

    /* Now the instance is the one suspected. */
    const struct mm_swim_member *self = mm__swim_self(h->s);
    uint64_t inc0 = self->rec->incarnation;
    size_t out0 = h->nout;
    tb_begin(&t, 9);
    tb_verdict(&t, T_SUSPECT, 0, 1, UINT64_MAX, 9);
    h_recv(h, 9, &t);
    assert_int_equal(self->rec->incarnation, inc0 + 1);
    assert_int_equal(self->state, MM_SWIM_ALIVE);
    /* Its refutation goes out and is believed by a fresh instance. */
    h_advance(h, h->now + 1000);
    const uint8_t *p = NULL;
    size_t bl = 0;
    for (size_t i = out0; i < h->nout && !p; i++) {
        const uint8_t *q;
        for (int k = 0;
             !p && (q = pk_find(h->out[i].buf, h->out[i].len, T_ALIVE, k, &bl));
             k++)
            if (memcmp(q, self->rec->id, 16) == 0) p = q;
    }
    assert_non_null(p);
    assert_int_equal(mm__get_u64(p + 24), inc0 + 1);
    struct h *o = h_new(42);
    /* (h_new makes node 0 again: a peer of another index hears it.) */
    mm__swim_free(o->s);
    {
        struct mm_swim_config cfg;
        char name[32];
        struct mm_swim_ops ops = {o,           h_send, h_changed,
                                  h_want_sync, t_sign, t_verify};
        cfg_for(&cfg, 5, name, 43);
        assert_int_equal(mm__swim_new(&o->s, &cfg, &ops, o->now), 0);
    }
    tb_begin(&t, 1);
    memcpy(tb_msg(&t, T_ALIVE, bl), p, bl);
    h_recv(o, 1, &t);
    assert_int_equal(h_state(o, 0), MM_SWIM_ALIVE);
    assert_int_equal(mm__swim_stats(o->s)->forged, 0);
    assert_int_equal(h_member(o, 0)->rec->incarnation, inc0 + 1);
    h_free(o);
    h_free(h);
}

/*
 * A leave for X is believed only with X's signature: a leave record signed
 * by another is dropped and counted, a bare LEFT (a forced leave) of an
 * alive X is only a suspicion, and X's own signed leave is taken.
 */
/* The gossiped graceful leave of a member never known changes nothing and
 * costs no verification, signed (5's own) or not (forged by 9); the member
 * comes in later by its alive record as any new one. */
static void
test_swim_unknown_leave_ignored_unchecked(void **state)
{
    (void)state;
    struct h *h = h_new(45);
    h_learn(h, 3);
    uint8_t id5[16];
    id_of(id5, 5);
    unsigned long v0 = t_verifies;
    uint64_t forged0 = mm__swim_stats(h->s)->forged;
    struct tb t;
    tb_begin(&t, 1);
    tb_rec(&t, 5, 1, 1, MM_SWIM_REC_LEFT, "", addr_of(5), 5);
    tb_rec(&t, 6, 1, 1, MM_SWIM_REC_LEFT, "", addr_of(6), 9);
    h_recv(h, 1, &t);
    assert_int_equal(t_verifies, v0);
    assert_null(mm__swim_find(h->s, id5));
    assert_int_equal(mm__swim_stats(h->s)->unknown_leaves, 2);
    assert_int_equal(mm__swim_stats(h->s)->forged, forged0);
    assert_int_equal(mm__swim_count(h->s, MM_SWIM_NONE), 4);
    /* Its alive record (a new generation) is checked and taken. */
    tb_begin(&t, 1);
    tb_alive(&t, 5, 2, 0, "", addr_of(5));
    h_recv(h, 1, &t);
    assert_int_equal(t_verifies, v0 + 1);
    assert_int_equal(h_state(h, 5), MM_SWIM_ALIVE);
    h_free(h);
}

static void
test_swim_forged_leave_rejected(void **state)
{
    (void)state;
    struct h *h = h_new(44);
    h_learn(h, 3);
    const struct mm_swim_member *x = h_member(h, 2);
    uint64_t forged0 = mm__swim_stats(h->s)->forged;
    struct tb t;
    tb_begin(&t, 9);
    tb_rec(&t, 2, 1, 1, MM_SWIM_REC_LEFT, "", addr_of(2), 9);
    h_recv(h, 9, &t);
    assert_int_equal(x->state, MM_SWIM_ALIVE);
    assert_int_equal(mm__swim_stats(h->s)->forged, forged0 + 1);
    tb_begin(&t, 9);
    tb_verdict(&t, T_LEFT, 2, 1, 50, 9);
    h_recv(h, 9, &t);
    assert_int_equal(x->state, MM_SWIM_SUSPECT);
    assert_int_equal(x->rec->incarnation, 0);
    assert_int_equal(x->rec->generation, 1);
    /* X refutes, then leaves for real. */
    tb_begin(&t, 2);
    tb_alive(&t, 2, 1, 1, "", addr_of(2));
    h_recv(h, 2, &t);
    assert_int_equal(x->state, MM_SWIM_ALIVE);
    tb_begin(&t, 2);
    tb_rec(&t, 2, 1, 2, MM_SWIM_REC_LEFT, "", addr_of(2), 2);
    h_recv(h, 2, &t);
    assert_int_equal(x->state, MM_SWIM_LEFT);
    assert_int_equal(x->rec->incarnation, 2);
    /* An older alive of X (replayed) cannot undo its leave. */
    tb_begin(&t, 9);
    tb_alive(&t, 2, 1, 1, "", addr_of(2));
    h_recv(h, 9, &t);
    assert_int_equal(x->state, MM_SWIM_LEFT);
    h_free(h);
}

/*
 * Replays: X's genuine but older records (lower incarnation, lower
 * generation, other tags and address) roll nothing back, and neither they
 * nor a re-gossip of the current record cost a verification.
 */
static void
test_swim_replay_no_rollback(void **state)
{
    (void)state;
    struct h *h = h_new(45);
    h_learn(h, 3);
    const struct mm_swim_member *x = h_member(h, 2);
    struct mm_swim_addr old = addr_of(2), cur = addr_of(2);
    old.port = 5555;
    cur.port = 5556;
    struct tb t_old1, t_old2, t_cur;
    tb_begin(&t_old1, 2);
    tb_alive(&t_old1, 2, 1, 3, "old=1", old);
    tb_begin(&t_old2, 2);
    tb_alive(&t_old2, 2, 2, 1, "old=2", old);
    tb_begin(&t_cur, 2);
    tb_alive(&t_cur, 2, 2, 4, "cur=1", cur);
    h_recv(h, 2, &t_cur);
    assert_int_equal(x->rec->generation, 2);
    assert_int_equal(x->rec->incarnation, 4);
    unsigned long v0 = t_verifies;
    uint64_t ver0 = mm__swim_stats(h->s)->verified;
    size_t ev0 = h->nev;
    for (int k = 0; k < 3; k++) {
        h_recv(h, 1, &t_old1);
        h_recv(h, 1, &t_old2);
        h_recv(h, 1, &t_cur);
    }
    assert_int_equal(t_verifies, v0);
    assert_int_equal(mm__swim_stats(h->s)->verified, ver0);
    assert_int_equal(h->nev, ev0);
    assert_int_equal(x->rec->generation, 2);
    assert_int_equal(x->rec->incarnation, 4);
    assert_int_equal(x->rec->addr.port, 5556);
    assert_string_equal(x->rec->tags, "cur=1");
    assert_int_equal(x->state, MM_SWIM_ALIVE);
    h_free(h);
}

/*
 * The golden vector of docs/wire.md (Member frames): the key of seed 00 01 ..
 * 1f, its node id, and its signed record (generation 1, incarnation 0, role 0,
 * 127.0.0.1:7946, name "n1", tags "zone=a") as the core writes it.
 */
static void
test_swim_record_golden_vector(void **state)
{
    (void)state;
    uint8_t seed[32], pub[32], id[16];
    char hex[2 * 600 + 1];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)i;
    struct mm_sign_key *k = NULL;
    assert_int_equal(mm__sign_key_from_seed(&k, seed), 0);
    assert_int_equal(mm__sign_key_public(k, pub), 0);
    mm__identity_id_of(id, pub);
    /* Run a core with that identity and read its record back from a
     * push-pull payload (its only entry). */
    struct h *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    struct mm_swim_config cfg;
    mm__swim_config_init(&cfg);
    cfg.name = "n1";
    cfg.tags = "zone=a";
    memcpy(cfg.id, id, 16);
    memcpy(cfg.pub, pub, 32);
    cfg.addr.family = 4;
    cfg.addr.ip[0] = 127;
    cfg.addr.ip[3] = 1;
    cfg.addr.port = 7946;
    cfg.generation = 1;
    cfg.seed = 1;
    /* t_sign finds the key by id: lend it slot KEYS_MAX - 1. */
    keys[KEYS_MAX - 1].key = k;
    memcpy(keys[KEYS_MAX - 1].pub, pub, 32);
    memcpy(keys[KEYS_MAX - 1].id, id, 16);
    struct mm_swim_ops ops = {h,           h_send, h_changed,
                              h_want_sync, t_sign, t_verify};
    h->now = 1000;
    assert_int_equal(mm__swim_new(&h->s, &cfg, &ops, h->now), 0);
    uint8_t st[1024];
    size_t n = mm__swim_state_encode(h->s, st, sizeof(st));
    assert_true(n > 32 && n <= sizeof(st));
    assert_int_equal(st[0], 3);
    assert_int_equal(mm__get_u32(st + 21), UINT32_MAX); /* no pull: no want */
    assert_int_equal(mm__get_u32(st + 25), UINT32_MAX); /* all of it: no next */
    size_t rl = mm__get_u16(st + 30);
    assert_int_equal(32 + rl, n);
    mm__hex(hex, pub, 32);
    assert_string_equal(
        hex,
        "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
    mm__hex(hex, id, 16);
    assert_string_equal(hex, "56475aa75463474c0285df5dbf2bcab7");
    mm__hex(hex, st + 32, rl);
    assert_string_equal(
        hex, "56475aa75463474c0285df5dbf2bcab701000000000000000000000000000000"
             "0200047f0000010a1f026e31067a6f6e653d6103a107bff3ce10be1d70dd18e7"
             "4bc09967e4d6309ba50d5f1ddc8664125531b8a560ca5bbe4c8918cd0da774c8"
             "51f6d06ff5fc055209728a8317bbc5e0e34e3dbfb49d40142e7c96e60acca4c7"
             "2e2efe8b6187ef947c62fb897294861f7da508");
    h_free(h);
    keys[KEYS_MAX - 1].key = NULL;
    mm__sign_key_free(k);
}

/* Sizes and the cost of signing, printed (not asserted). */
static void
test_swim_signature_cost(void **state)
{
    (void)state;
    struct h *h = h_new(46);
    const struct mm_swim_member *self = mm__swim_self(h->s);
    uint8_t body[600];
    size_t signed_len =
        rec_build(body, 1, 1, 0, 0, "", addr_of(1), 1, 1); /* name "n1" */
    size_t nokey_len = rec_build(body, 1, 1, 0, 0, "", addr_of(1), 1, 0);
    size_t plain_len = signed_len - 32 - 64 - 1;
    printf("  ALIVE record, name of 2, no tags, IPv4: %zu bytes unsigned "
           "(format 1), %zu signed with the key, %zu without\n",
           plain_len, signed_len, nokey_len);
    enum { N = 2000 };
    uint8_t tbs[18 + 64], sig[64];
    memset(tbs, 7, sizeof(tbs));
    key_ensure(1);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < N; i++) {
        tbs[0] = (uint8_t)i;
        assert_int_equal(mm__ed25519_sign(keys[1].key, tbs, sizeof(tbs), sig),
                         0);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double sign_us = ((double)(b.tv_sec - a.tv_sec) * 1e9 +
                      (double)(b.tv_nsec - a.tv_nsec)) /
                     1e3 / N;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < N; i++)
        assert_int_equal(
            t_verify(NULL, keys[1].id, keys[1].pub, tbs, sizeof(tbs), sig), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double verify_us = ((double)(b.tv_sec - a.tv_sec) * 1e9 +
                        (double)(b.tv_nsec - a.tv_nsec)) /
                       1e3 / N;
    printf("  Ed25519: sign %.1f us, verify (with the id check) %.1f us\n",
           sign_us, verify_us);
    assert_non_null(self);
    h_free(h);
}

static void
test_swim_digest_mismatch_want_sync_once(void **state)
{
    (void)state;
    struct h *h = h_new(21);
    h->auto_ack = 1;
    h_learn(h, 3);
    uint64_t d = mm__swim_digest(h->s);
    struct tb t;
    /* A matching digest asks for nothing. */
    tb_begin(&t, 2);
    tb_digest(&t, d);
    h_recv(h, 2, &t);
    h_advance(h, h->now + 3000);
    assert_int_equal(h->nsync, 0);
    /* A mismatch: one pull, after a jitter of at most sync_jitter. */
    uint64_t t0 = h->now;
    tb_begin(&t, 2);
    tb_digest(&t, d ^ 1);
    h_recv(h, 2, &t);
    tb_begin(&t, 3);
    tb_digest(&t, d ^ 2);
    h_recv(h, 3, &t);
    assert_int_equal(h->nsync, 0);
    h_advance(h, t0 + 1000);
    assert_int_equal(h->nsync, 1);
    uint8_t id2[16];
    id_of(id2, 2);
    assert_memory_equal(h->sync_peer, id2, 16);
    assert_true(mm__swim_sync_in_flight(h->s));
    /* More mismatches while it is in flight: nothing. */
    for (int i = 0; i < 5; i++) {
        tb_begin(&t, 1 + i % 3);
        tb_digest(&t, d ^ 3);
        h_recv(h, 1 + i % 3, &t);
        h_advance(h, h->now + 500);
    }
    assert_int_equal(h->nsync, 1);
    /* The pull ends; the next mismatch asks again. */
    mm__swim_sync_done(h->s, h->now);
    assert_false(mm__swim_sync_in_flight(h->s));
    tb_begin(&t, 3);
    tb_digest(&t, d ^ 4);
    h_recv(h, 3, &t);
    h_advance(h, h->now + 1000);
    assert_int_equal(h->nsync, 2);
    mm__swim_sync_done(h->s, h->now);
    /* A pending pull is cancelled when the peer's digest matches. */
    tb_begin(&t, 1);
    tb_digest(&t, d ^ 5);
    h_recv(h, 1, &t);
    tb_begin(&t, 1);
    tb_digest(&t, d);
    h_recv(h, 1, &t);
    h_advance(h, h->now + 2000);
    assert_int_equal(h->nsync, 2);
    /* An in-flight pull that never reports is forgotten after a while. */
    tb_begin(&t, 1);
    tb_digest(&t, d ^ 6);
    h_recv(h, 1, &t);
    h_advance(h, h->now + 1000);
    assert_int_equal(h->nsync, 3);
    h_advance(h, h->now + MM_SWIM_SYNC_TIMEOUT_MS + 1);
    assert_false(mm__swim_sync_in_flight(h->s));
    h_free(h);
}

/* Pulls a stream of differing digests (one every 100 ms for 20 s, each
 * pull ending at once) brings; their instants in at[] (at most 32). */
static int
pulls_of_differing_digests(struct h *h, uint64_t at[32])
{
    uint64_t d = mm__swim_digest(h->s), t0 = h->now;
    int n = 0;
    struct tb t;
    for (int k = 0; k < 200; k++) {
        tb_begin(&t, 1 + k % 3);
        tb_digest(&t, d ^ (uint64_t)(k + 1));
        h_recv(h, 1 + k % 3, &t);
        int before = h->nsync;
        h_advance(h, t0 + 100 * (uint64_t)(k + 1));
        if (h->nsync != before) {
            assert_int_equal(h->nsync, before + 1);
            if (n < 32) at[n++] = h->now;
            mm__swim_sync_done(h->s, h->now);
        }
    }
    return n;
}

/*
 * With a cap on the gap (MURMER_SWIM_SYNC_GAP_MAX_MS), digests that keep
 * differing (a join burst) pull with a growing gap: each pull waits twice
 * as long after the previous one as that one did, from sync_jitter up to
 * the cap; a digest equal to ours clears it.  Without one (the default)
 * every differing digest pulls after the jitter.
 */
static void
test_swim_digest_pulls_back_off(void **state)
{
    (void)state;
    uint64_t at0[32];
    struct h *h0 = h_new(43);
    h0->auto_ack = 1;
    h_learn(h0, 3);
    assert_true(pulls_of_differing_digests(h0, at0) >= 18);
    h_free(h0);

    struct h *h = h_new_cfg(43, 4000, MM_SWIM_LATE_MS);
    h->auto_ack = 1;
    h_learn(h, 3);
    uint64_t d = mm__swim_digest(h->s), at[32];
    struct tb t;
    int n = pulls_of_differing_digests(h, at);
    /* Gaps of at least 1, 2, 4, 4, 4 s (at most 1.1 s of slack each). */
    assert_true(n >= 5 && n <= 7);
    uint64_t want[] = {MM_SWIM_SYNC_JITTER_MS, 2 * MM_SWIM_SYNC_JITTER_MS, 4000,
                       4000};
    for (int i = 0; i < 4; i++) {
        assert_true(at[i + 1] - at[i] >= want[i]);
        assert_true(at[i + 1] - at[i] <= want[i] + 1100);
    }
    /* A digest equal to ours: the next pull waits only the jitter. */
    tb_begin(&t, 2);
    tb_digest(&t, d);
    h_recv(h, 2, &t);
    int before = h->nsync;
    uint64_t t1 = h->now;
    tb_begin(&t, 2);
    tb_digest(&t, d ^ 99);
    h_recv(h, 2, &t);
    h_advance(h, t1 + MM_SWIM_SYNC_JITTER_MS);
    assert_int_equal(h->nsync, before + 1);
    h_free(h);
}

static void
test_swim_decode_rejects_truncation(void **state)
{
    (void)state;
    struct h *h = h_new(22);
    h_learn(h, 3);
    struct tb t;
    tb_begin(&t, 1);
    tb_digest(&t, 5);
    tb_alive(&t, 4, 1, 0, "k=v", addr_of(4));
    tb_verdict(&t, T_SUSPECT, 3, 1, 0, 1);
    tb_verdict(&t, T_LEFT, 2, 1, 0, 1);
    tb_ping(&t, 1, 0);
    tb_seq(&t, T_NACK, 9);
    size_t before = h->nev;
    for (size_t n = 0; n < t.len; n++)
        assert_int_equal(mm__swim_recv(h->s, NULL, t.b, n, h->now), MM_EDECODE);
    /* Nothing was applied from any of them. */
    assert_int_equal(h->nev, before);
    assert_int_equal(h_state(h, 4), MM_SWIM_NONE);
    assert_int_equal(mm__swim_stats(h->s)->decode_errors, t.len);
    /* Trailing garbage, a bad version, a count too high. */
    uint8_t big[1500];
    memcpy(big, t.b, t.len);
    big[t.len] = 0;
    assert_int_equal(mm__swim_recv(h->s, NULL, big, t.len + 1, h->now),
                     MM_EDECODE);
    big[0] = 1; /* the unsigned format */
    assert_int_equal(mm__swim_recv(h->s, NULL, big, t.len, h->now), MM_EDECODE);
    big[0] = 2;
    big[17]++;
    assert_int_equal(mm__swim_recv(h->s, NULL, big, t.len, h->now), MM_EDECODE);
    /* An alive with an empty name or a NUL in it. */
    struct tb b2;
    tb_begin(&b2, 1);
    tb_alive(&b2, 4, 1, 0, "", addr_of(4));
    b2.b[18 + 3 + 41] = 0;
    assert_int_equal(mm__swim_recv(h->s, NULL, b2.b, b2.len, h->now),
                     MM_EDECODE);
    tb_begin(&b2, 1);
    tb_alive(&b2, 4, 1, 0, "", addr_of(4));
    b2.b[18 + 3 + 42] = 0;
    assert_int_equal(mm__swim_recv(h->s, NULL, b2.b, b2.len, h->now),
                     MM_EDECODE);
    /* An unknown record flag. */
    tb_begin(&b2, 1);
    tb_alive(&b2, 4, 1, 0, "", addr_of(4));
    b2.b[18 + 3 + 32] |= 0x80;
    assert_int_equal(mm__swim_recv(h->s, NULL, b2.b, b2.len, h->now),
                     MM_EDECODE);
    /* Unknown message types are skipped. */
    tb_begin(&b2, 1);
    memset(tb_msg(&b2, 0x7f, 5), 0xEE, 5);
    tb_seq(&b2, T_ACK, 1);
    struct mm_swim_addr a1 = addr_of(1);
    assert_int_equal(mm__swim_recv(h->s, &a1, b2.b, b2.len, h->now), 0);
    uint8_t sid[16], want[16];
    id_of(want, 1);
    assert_int_equal(mm__swim_packet_sender(t.b, t.len, sid), 0);
    assert_memory_equal(sid, want, 16);
    assert_int_equal(mm__swim_packet_sender(t.b, 17, sid), MM_EDECODE);
    /* The full packet is fine. */
    struct mm_swim_addr a = addr_of(1);
    assert_int_equal(mm__swim_recv(h->s, &a, t.b, t.len, h->now), 0);
    assert_int_equal(h_state(h, 4), MM_SWIM_ALIVE);
    /* A forced leave of a member alive to us is only a suspicion. */
    assert_int_equal(h_state(h, 2), MM_SWIM_SUSPECT);
    /* Every truncation of a push-pull payload too. */
    size_t need = mm__swim_state_encode(h->s, NULL, 0);
    uint8_t *st = malloc(need);
    assert_int_equal(mm__swim_state_encode(h->s, st, need), need);
    for (size_t n = 0; n < need; n++)
        assert_int_equal(mm__swim_state_merge(h->s, st, n, h->now), MM_EDECODE);
    assert_int_equal(mm__swim_state_merge(h->s, st, need, h->now), 0);
    free(st);
    /* Random garbage never asserts. */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        uint8_t g[64];
        size_t n = 18 + (size_t)(i % 46);
        for (size_t j = 0; j < n; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            g[j] = (uint8_t)x;
        }
        g[0] = 2;
        g[17] = (uint8_t)(1 + i % 3);
        mm__swim_recv(h->s, &a, g, n, h->now);
    }
    h_free(h);
}

/* Tombstones go after reconnect_timeout + tombstone_ms, the table's last
 * slot and another one (the tick walks only the members something may be
 * due for; mm__swim_check verifies that set after every tick): then an
 * old record of theirs is news again. */
static void
test_swim_tombstones_freed(void **state)
{
    (void)state;
    struct h *h = h_new(29);
    h->auto_ack = 1;
    h_learn(h, 3);
    assert_int_equal(mm__swim_force_leave(h->s, NULL, "n3", h->now), 0);
    assert_int_equal(mm__swim_force_leave(h->s, NULL, "n2", h->now), 0);
    uint64_t left_at = h->now;
    h_advance(h, left_at + MM_SWIM_RECONNECT_TIMEOUT_MS + 1000);
    uint8_t id2[16], id3[16];
    id_of(id2, 2);
    id_of(id3, 3);
    assert_null(mm__swim_find(h->s, id2));
    /* Hidden, still held: stale gossip of that generation is dropped. */
    struct tb t;
    tb_begin(&t, 1);
    tb_alive(&t, 3, 1, 0, "", addr_of(3));
    h_recv(h, 1, &t);
    assert_null(mm__swim_find(h->s, id3));
    h_advance(h, left_at + MM_SWIM_RECONNECT_TIMEOUT_MS + MM_SWIM_TOMBSTONE_MS +
                     2000);
    assert_null(mm__swim_find(h->s, id3));
    tb_begin(&t, 1);
    tb_alive(&t, 3, 1, 0, "", addr_of(3));
    tb_alive(&t, 2, 1, 0, "", addr_of(2));
    h_recv(h, 1, &t);
    assert_int_equal(h_state(h, 3), MM_SWIM_ALIVE);
    assert_int_equal(h_state(h, 2), MM_SWIM_ALIVE);
    h_free(h);
}

static void
test_swim_force_leave_and_reap(void **state)
{
    (void)state;
    struct h *h = h_new(23);
    h->auto_ack = 1;
    h_learn(h, 3);
    uint8_t id3[16];
    id_of(id3, 3);
    assert_int_equal(mm__swim_force_leave(h->s, NULL, "nope", h->now),
                     MM_ENOTFOUND);
    assert_int_equal(mm__swim_force_leave(h->s, NULL, "n0", h->now), MM_EINVAL);
    size_t before = h->nout;
    assert_int_equal(mm__swim_force_leave(h->s, NULL, "n3", h->now), 0);
    assert_int_equal(h_state(h, 3), MM_SWIM_LEFT);
    h_advance(h, h->now + 2000);
    int gossiped = 0;
    for (size_t i = before; i < h->nout; i++) {
        const uint8_t *p =
            pk_find(h->out[i].buf, h->out[i].len, T_LEFT, 0, NULL);
        gossiped += p && memcmp(p, id3, 16) == 0;
    }
    assert_true(gossiped >= 1);
    /* Reaped after reconnect_timeout: hidden, reported, then gone. */
    assert_int_equal(mm__swim_count(h->s, MM_SWIM_NONE), 4);
    uint64_t left_at = mm__swim_find(h->s, id3)->state_since;
    h_advance(h, left_at + MM_SWIM_RECONNECT_TIMEOUT_MS);
    assert_null(mm__swim_find(h->s, id3));
    assert_int_equal(mm__swim_count(h->s, MM_SWIM_NONE), 3);
    assert_int_equal(h->ev[h->nev - 1].state, MM_SWIM_REAPED);
    assert_int_equal(h->ev[h->nev - 1].was, MM_SWIM_LEFT);
    /* The tombstone keeps stale news of that generation out. */
    struct tb t;
    tb_begin(&t, 1);
    tb_alive(&t, 3, 1, 0, "", addr_of(3));
    h_recv(h, 1, &t);
    assert_null(mm__swim_find(h->s, id3));
    /* A new generation is a new member. */
    tb_begin(&t, 3);
    tb_alive(&t, 3, 2, 0, "", addr_of(3));
    h_recv(h, 3, &t);
    assert_int_equal(h_state(h, 3), MM_SWIM_ALIVE);
    assert_int_equal(h->ev[h->nev - 1].was, MM_SWIM_NONE);
    h_free(h);
}

/* Push-pull states are paged: with more members than cfg.sync_page, a
 * state carries ourselves and the next sync_page members of a rotation
 * (sizing does not move it), successive states cover every member, and a
 * peer that merges them learns them all, pulling the next page at once
 * while a full page brings news.  A page of 0 is refused. */
static void
test_swim_state_paged(void **state)
{
    (void)state;
    struct h *a = calloc(1, sizeof(*a)), *b = h_new(44);
    struct mm_swim_config cfg;
    char name[32];
    struct mm_swim_ops ops = {a,           h_send, h_changed,
                              h_want_sync, t_sign, t_verify};
    cfg_for(&cfg, 0, name, 43);
    cfg.sync_page = 0;
    a->now = 1000;
    assert_int_equal(mm__swim_new(&a->s, &cfg, &ops, a->now), MM_EINVAL);
    cfg.sync_page = 3;
    assert_int_equal(mm__swim_new(&a->s, &cfg, &ops, a->now), 0);
    h_learn(a, 10);
    /* b is node 0 too in the tests' numbering: make it another id. */
    h_free(b);
    b = calloc(1, sizeof(*b));
    ops.data = b;
    cfg_for(&cfg, 20, name, 44);
    cfg.sync_page = 3; /* a full page: as many as ours */
    b->now = 1000;
    assert_int_equal(mm__swim_new(&b->s, &cfg, &ops, b->now), 0);

    int seen[11] = {0};
    for (int page = 0; page < 4; page++) {
        size_t n = mm__swim_state_encode(a->s, NULL, 0);
        assert_int_equal(mm__swim_state_encode(a->s, NULL, 0), n);
        uint8_t *st = malloc(n);
        assert_int_equal(mm__swim_state_encode(a->s, st, n), n);
        assert_int_equal(mm__get_u32(st + 17), 4); /* self + 3 */
        size_t o = 29;
        for (int e = 0; e < 4; e++) {
            size_t len = (size_t)(st[o + 1] | st[o + 2] << 8);
            int who = -1;
            for (int i = 0; i <= 10; i++) {
                uint8_t id[16];
                id_of(id, i);
                if (memcmp(st + o + 3, id, 16) == 0) who = i;
            }
            assert_true(who >= 0);
            if (e == 0) assert_int_equal(who, 0); /* ourselves first */
            if (e > 0) seen[who]++;
            o += 3 + len;
        }
        assert_int_equal(o, n);
        assert_int_equal(mm__swim_state_merge(b->s, st, n, b->now), 0);
        assert_int_equal(mm__swim_check(b->s), 0);
        if (page == 0) {
            /* A full page that brought news: the next is pulled from its
             * sender at once; the same page again brings none, and asks
             * for nothing more. */
            uint8_t id0[16];
            id_of(id0, 0);
            assert_true(mm__swim_deadline(b->s) <= b->now);
            mm__swim_tick(b->s, b->now);
            assert_int_equal(b->nsync, 1);
            assert_memory_equal(b->sync_peer, id0, 16);
            assert_int_equal(mm__swim_state_merge(b->s, st, n, b->now), 0);
            assert_true(mm__swim_deadline(b->s) > b->now);
            mm__swim_tick(b->s, b->now);
            assert_int_equal(b->nsync, 1);
        }
        free(st);
    }
    /* 4 pages of 3 over 10 members: each once, two of them twice. */
    int twice = 0;
    for (int i = 1; i <= 10; i++) {
        assert_true(seen[i] == 1 || seen[i] == 2);
        twice += seen[i] == 2;
    }
    assert_int_equal(twice, 2);
    assert_int_equal(mm__swim_count(b->s, MM_SWIM_NONE), 12);
    h_free(a);
    h_free(b);
}

static uint8_t *big_state(uint32_t n, uint64_t gen, int even_state,
                          size_t *len);
static int mix_verify(void *data, const uint8_t id[16], const uint8_t pub[32],
                      const uint8_t *msg, size_t len, const uint8_t sig[64]);

/* Two instances: a knows members 1..10 (pages of 3), or |big| members
 * signed by big_state's keyed hash; b knows only a, hears how many a lists
 * and starts a walk of a's table (its first pull is due). */
static void
walk_pair_big(struct h **pa, struct h **pb, uint32_t big)
{
    struct h *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct mm_swim_config cfg;
    char na[32], nb[32];
    uint32_t listed = big ? big + 1 : 11;
    assert_non_null(a);
    assert_non_null(b);
    struct mm_swim_ops ops = {a,           h_send, h_changed,
                              h_want_sync, t_sign, mix_verify};
    cfg_for(&cfg, 0, na, 45);
    cfg.sync_page = 3;
    a->now = 1000;
    assert_int_equal(mm__swim_new(&a->s, &cfg, &ops, a->now), 0);
    if (big) {
        size_t len;
        uint8_t *st = big_state(big, 1, MM_SWIM_ALIVE, &len);
        assert_int_equal(mm__swim_state_merge(a->s, st, len, a->now), 0);
        free(st);
    } else {
        h_learn(a, 10);
    }
    assert_int_equal(mm__swim_count(a->s, MM_SWIM_NONE), listed);
    ops.data = b;
    cfg_for(&cfg, 20, nb, 46);
    cfg.sync_page = 3;
    b->now = 1000;
    assert_int_equal(mm__swim_new(&b->s, &cfg, &ops, b->now), 0);
    /* b knows a (and itself) only; a's packet says a lists 11. */
    struct tb t;
    tb_begin(&t, 0);
    tb_digest(&t, mm__swim_digest(a->s));
    mm__put_u32(t.b + t.len - 4, listed);
    tb_alive(&t, 0, 1, 0, "", addr_of(0));
    h_recv(b, 0, &t);
    assert_int_equal(mm__swim_count(b->s, MM_SWIM_NONE), 2);
    while (b->nsync == 0 && b->now < 5000) {
        b->now = mm__swim_deadline(b->s);
        mm__swim_tick(b->s, b->now);
    }
    assert_int_equal(b->nsync, 1);
    uint8_t id0[16];
    id_of(id0, 0);
    assert_memory_equal(b->sync_peer, id0, 16);
    *pa = a;
    *pb = b;
}

static void
walk_pair(struct h **pa, struct h **pb)
{
    walk_pair_big(pa, pb, 0);
}

/* A pull from a peer that lists more members than we do walks its table
 * from its end back (the members learnt last, which we lack), a page a
 * round trip (the request says where the answer's page ends, the answer
 * where the next one does), until we list more than it did; then it asks
 * for nothing more. */
static void
test_swim_pull_walks_a_fuller_table(void **state)
{
    (void)state;
    struct h *a, *b;
    walk_pair(&a, &b);
    uint8_t id0[16];
    id_of(id0, 0);

    uint32_t want = 0xfffffffeu; /* backwards (bit 31) from the end */
    int pulls = 0;
    for (;;) {
        size_t n = mm__swim_state_encode(b->s, NULL, 0);
        uint8_t *req = malloc(n);
        assert_int_equal(mm__swim_state_encode(b->s, req, n), n);
        assert_int_equal(mm__get_u32(req + 21), want); /* which page */
        mm__swim_state_serve(a->s, req, n);
        size_t m = mm__swim_state_encode(a->s, NULL, 0);
        uint8_t *ans = malloc(m);
        assert_int_equal(mm__swim_state_encode(a->s, ans, m), m);
        free(req);
        /* a's slots: itself at 0, then members 1..10; a page of 3 from
         * the end back: 10 9 8, 7 6 5, 4 3 2, then 1 (the start). */
        uint32_t next = mm__get_u32(ans + 25);
        assert_int_equal(next,
                         pulls < 3 ? 8u - 3u * (unsigned)pulls : UINT32_MAX);
        int before = b->nsync;
        assert_int_equal(mm__swim_state_merge(b->s, ans, m, b->now), 0);
        free(ans);
        pulls++;
        mm__swim_tick(b->s, b->now);
        if (b->nsync == before) break; /* the walk ended */
        assert_int_equal(b->nsync, before + 1);
        assert_memory_equal(b->sync_peer, id0, 16);
        want = 0x80000000u | next;
        assert_true(pulls < 10);
    }
    /* Ten members in pages of three: four pulls, and b lists all. */
    assert_int_equal(pulls, 4);
    assert_int_equal(mm__swim_count(b->s, MM_SWIM_NONE), 12);
    assert_int_equal(mm__swim_check(b->s), 0);
    h_free(a);
    h_free(b);
}

/* A walk's pages must end lower each time: a peer that answers with the
 * same page again (its "next" not below the page asked for) ends the walk
 * instead of keeping us pulling from it at once. */
static void
test_swim_walk_ends_when_a_page_does_not_move(void **state)
{
    (void)state;
    struct h *a, *b;
    walk_pair(&a, &b);
    uint32_t want = 0xfffffffeu;
    for (int pull = 0; pull < 2; pull++) {
        size_t n = mm__swim_state_encode(b->s, NULL, 0);
        uint8_t *req = malloc(n);
        assert_int_equal(mm__swim_state_encode(b->s, req, n), n);
        assert_int_equal(mm__get_u32(req + 21), want);
        free(req);
        /* a's answer is always the page ending at its table's end, and
         * the second time it still says the next page ends at slot 8. */
        uint8_t top[4];
        mm__put_u32(top, 0xfffffffeu);
        uint8_t fake[29];
        memset(fake, 0, sizeof(fake));
        fake[0] = 3;
        memcpy(fake + 21, top, 4);
        mm__swim_state_serve(a->s, fake, sizeof(fake));
        size_t m = mm__swim_state_encode(a->s, NULL, 0);
        uint8_t *ans = malloc(m);
        assert_int_equal(mm__swim_state_encode(a->s, ans, m), m);
        assert_int_equal(mm__get_u32(ans + 25), 8);
        int before = b->nsync;
        assert_int_equal(mm__swim_state_merge(b->s, ans, m, b->now), 0);
        free(ans);
        mm__swim_tick(b->s, b->now);
        if (pull == 0) {
            assert_int_equal(b->nsync, before + 1); /* the walk goes on */
            want = 0x80000000u | 8;
        } else {
            assert_int_equal(b->nsync, before); /* it ended */
        }
    }
    h_free(a);
    h_free(b);
}

/* A push-pull state merged in steps: the budget is signature checks (news
 * already held is free), the gone members' records come last and are
 * flagged as such (2), and a step takes at most 256 entries. */
static void
test_swim_state_merge_steps_count_checks(void **state)
{
    (void)state;
    struct h *a = h_new(40), *b;
    {
        struct mm_swim_config cfg;
        char name[32];
        b = calloc(1, sizeof(*b));
        struct mm_swim_ops ops = {b,           h_send, h_changed,
                                  h_want_sync, t_sign, t_verify};
        cfg_for(&cfg, 9, name, 41);
        b->now = 1000;
        assert_int_equal(mm__swim_new(&b->s, &cfg, &ops, b->now), 0);
    }
    /* a: itself, 1..4 alive, 3 failed and 4 left: 3 live, 2 gone. */
    h_learn(a, 4);
    struct tb t;
    tb_begin(&t, 1);
    tb_verdict(&t, T_FAILED, 3, 1, 0, 1);
    tb_rec(&t, 4, 1, 1, MM_SWIM_REC_LEFT, "", addr_of(4), 4);
    h_recv(a, 1, &t);
    assert_int_equal(h_state(a, 3), MM_SWIM_FAILED);
    assert_int_equal(h_state(a, 4), MM_SWIM_LEFT);
    size_t n = mm__swim_state_encode(a->s, NULL, 0);
    uint8_t *st = malloc(n);
    assert_int_equal(mm__swim_state_encode(a->s, st, n), n);

    /* b knows none of them: one check a step, live ones first. */
    uint32_t next = 0;
    int rc, steps = 0, gone_steps = 0;
    do {
        unsigned long v0 = t_verifies;
        rc = mm__swim_state_merge_some(b->s, st, n, &next, 1, b->now);
        assert_true(rc >= 0 && rc <= 2);
        assert_int_equal(t_verifies - v0, 1);
        steps++;
        if (rc == 2) gone_steps++;
        if (rc == 1) assert_int_equal(gone_steps, 0); /* live, then gone */
    } while (rc != 0);
    assert_int_equal(steps, 5);      /* a, 1, 2, 3 (failed), 4 (left) */
    assert_int_equal(gone_steps, 2); /* before 3's and 4's records */
    assert_int_equal(mm__swim_count(b->s, MM_SWIM_NONE), 6);
    assert_int_equal(h_state(b, 4), MM_SWIM_LEFT);

    /* With room for 8 checks, the first step still ends where the live
     * members end (3 checks), and the gone ones follow in the next. */
    {
        struct mm_swim *c;
        struct mm_swim_config cfg;
        char name[32];
        struct mm_swim_ops ops = {b,           h_send, h_changed,
                                  h_want_sync, t_sign, t_verify};
        cfg_for(&cfg, 10, name, 42);
        assert_int_equal(mm__swim_new(&c, &cfg, &ops, b->now), 0);
        unsigned long c0 = t_verifies;
        next = 0;
        assert_int_equal(mm__swim_state_merge_some(c, st, n, &next, 8, b->now),
                         2);
        assert_int_equal(t_verifies - c0, 3);
        assert_int_equal(mm__swim_state_merge_some(c, st, n, &next, 8, b->now),
                         0);
        assert_int_equal(t_verifies - c0, 5);
        mm__swim_free(c);
    }

    /* Again: all of it is held, no check; a step for the live members
     * and one for the gone. */
    unsigned long v0 = t_verifies;
    next = 0;
    assert_int_equal(mm__swim_state_merge_some(b->s, st, n, &next, 1, b->now),
                     2);
    assert_int_equal(mm__swim_state_merge_some(b->s, st, n, &next, 1, b->now),
                     0);
    assert_int_equal(t_verifies - v0, 0);

    /* The entry bound: 300 copies of a's own (held) entry, free each, are
     * taken 256 in the first step and the 44 left in the second. */
    const size_t hdr = 1 + 16 + 12;
    size_t elen = 3 + (size_t)(st[hdr + 1] | st[hdr + 2] << 8);
    size_t bn = hdr + 300 * elen;
    uint8_t *big = malloc(bn);
    memcpy(big, st, hdr);
    big[17] = 300 & 0xff;
    big[18] = 300 >> 8;
    big[19] = big[20] = 0;
    for (size_t i = 0; i < 300; i++)
        memcpy(big + hdr + i * elen, st + hdr, elen);
    next = 0;
    assert_int_equal(mm__swim_state_merge_some(b->s, big, bn, &next, 8, b->now),
                     1);
    assert_int_equal(next, 256);
    assert_int_equal(mm__swim_state_merge_some(b->s, big, bn, &next, 8, b->now),
                     0);
    assert_int_equal(next, 300);
    assert_int_equal(t_verifies - v0, 0);
    free(big);
    free(st);
    h_free(a);
    h_free(b);
}

/* 1 when out[i] is a gossip packet (no ping, ack, nack) carrying the
 * ALIVE record of |id|. */
static int
h_gossips_alive_of(const struct h *h, size_t i, const uint8_t *id)
{
    const struct cap *c = &h->out[i];
    if (pk_find(c->buf, c->len, T_PING, 0, NULL) ||
        pk_find(c->buf, c->len, T_PING_REQ, 0, NULL) ||
        pk_find(c->buf, c->len, T_ACK, 0, NULL) ||
        pk_find(c->buf, c->len, T_NACK, 0, NULL))
        return 0;
    const uint8_t *p;
    for (int k = 0; (p = pk_find(c->buf, c->len, T_ALIVE, k, NULL)); k++)
        if (memcmp(p, id, 16) == 0) return 1;
    return 0;
}

/* A member learned just after a gossip round goes out in a round a
 * quarter interval after it (MM_SWIM_NEWS_GAP_DIV), not a whole one. */
static void
test_swim_news_gossiped_soon(void **state)
{
    (void)state;
    struct h *h = h_new(46);
    h->auto_ack = 1;
    h_learn(h, 12);
    uint8_t id1[16], id13[16];
    id_of(id1, 1);
    id_of(id13, 13);
    /* Run to a gossip round (a packet of broadcasts only). */
    uint64_t g = 0;
    for (int guard = 0; guard < 100000 && !g; guard++) {
        size_t before = h->nout;
        uint64_t d = mm__swim_deadline(h->s);
        if (d > h->now) h->now = d;
        mm__swim_tick(h->s, h->now);
        for (size_t i = before; i < h->nout; i++)
            if (h_gossips_alive_of(h, i, id1)) g = h->now;
    }
    assert_true(g > 0);
    /* Member 13 comes 1 ms later. */
    h->now = g + 1;
    struct tb t;
    tb_begin(&t, 2);
    tb_alive(&t, 13, 1, 0, "", addr_of(13));
    h_recv(h, 2, &t);
    size_t from = h->nout;
    const uint64_t gap = MM_SWIM_GOSSIP_MS / MM_SWIM_NEWS_GAP_DIV;
    h_advance(h, g + gap);
    int sent = 0;
    for (size_t i = from; i < h->nout; i++)
        sent += h_gossips_alive_of(h, i, id13) && h->out[i].at <= g + gap;
    assert_true(sent >= 1);
    h_free(h);
}

static void
test_swim_state_roundtrip_converges(void **state)
{
    (void)state;
    struct h *a = h_new(24), *b;
    {
        /* b is node 5 knowing 6 and 7. */
        struct mm_swim_config cfg;
        char name[32];
        b = calloc(1, sizeof(*b));
        struct mm_swim_ops ops = {b,           h_send, h_changed,
                                  h_want_sync, t_sign, t_verify};
        cfg_for(&cfg, 5, name, 25);
        cfg.tags = "zone=b";
        b->now = 1000;
        assert_int_equal(mm__swim_new(&b->s, &cfg, &ops, b->now), 0);
    }
    h_learn(a, 4);
    suspect_from(a, 2, 1);
    struct tb t;
    tb_begin(&t, 1);
    tb_verdict(&t, T_FAILED, 3, 1, 0, 1);
    tb_rec(&t, 4, 1, 1, MM_SWIM_REC_LEFT, "", addr_of(4), 4); /* its leave */
    h_recv(a, 1, &t);
    tb_begin(&t, 6);
    tb_alive(&t, 6, 1, 3, "x=1", addr_of(6));
    tb_alive(&t, 7, 4, 0, "", addr_of(7));
    h_recv(b, 6, &t);
    assert_int_not_equal(mm__swim_digest(a->s), mm__swim_digest(b->s));

    size_t na = mm__swim_state_encode(a->s, NULL, 0);
    size_t nb = mm__swim_state_encode(b->s, NULL, 0);
    uint8_t *pa = malloc(na), *pb = malloc(nb);
    /* Too small a buffer: nothing written, size returned. */
    assert_int_equal(mm__swim_state_encode(a->s, pa, na - 1), na);
    assert_int_equal(mm__swim_state_encode(a->s, pa, na), na);
    assert_int_equal(mm__swim_state_encode(b->s, pb, nb), nb);
    assert_int_equal(mm__swim_state_merge(b->s, pa, na, b->now), 0);
    assert_int_equal(mm__swim_state_merge(a->s, pb, nb, a->now), 0);
    assert_int_equal(mm__swim_count(a->s, MM_SWIM_NONE), 8);
    assert_int_equal(mm__swim_count(b->s, MM_SWIM_NONE), 8);
    assert_int_equal(mm__swim_digest(a->s), mm__swim_digest(b->s));
    /* Records travel whole. */
    uint8_t id5[16], id6[16];
    id_of(id5, 5);
    id_of(id6, 6);
    assert_string_equal(mm__swim_find(a->s, id5)->rec->tags, "zone=b");
    assert_int_equal(mm__swim_find(a->s, id6)->rec->incarnation, 3);
    assert_int_equal(h_state(b, 3), MM_SWIM_FAILED);
    assert_int_equal(h_state(b, 4), MM_SWIM_LEFT);
    assert_int_equal(h_state(b, 0), MM_SWIM_ALIVE);
    /* A second round changes nothing. */
    size_t evs = a->nev + b->nev;
    assert_int_equal(mm__swim_state_merge(b->s, pa, na, b->now), 0);
    assert_int_equal(mm__swim_state_merge(a->s, pb, nb, a->now), 0);
    assert_int_equal(a->nev + b->nev, evs);
    free(pa);
    free(pb);
    h_free(a);
    h_free(b);
}

/* ---- simulated network -------------------------------------------------- */

#define SIM_MAX 32

struct sim_pkt {
    uint64_t at;
    int from, to;
    size_t len;
    uint8_t buf[1400];
};

struct sim;

struct sim_node {
    struct sim *net;
    int idx, killed, started;
    struct mm_swim *s;
    uint64_t deadline;
    int failed_events;      /* changed() into FAILED */
    int failed_of[SIM_MAX]; /* the same, per member */
    uint64_t last_change;
};

struct sim_sync {
    uint64_t at;
    int a, b;
};

struct sim {
    int n;
    uint64_t now, rng;
    unsigned loss_pct;
    int part[SIM_MAX]; /* partition label; packets cross only if equal */
    struct sim_node nodes[SIM_MAX];
    struct sim_pkt *q;
    size_t nq, capq;
    struct sim_sync syncs[SIM_MAX * 4];
    size_t nsyncs;
    uint64_t delivered, dropped;
    uint64_t bytes, packets; /* sent, sealed size (as on the wire) */
};

static uint64_t
sim_rand(struct sim *net)
{
    uint64_t x = net->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    net->rng = x;
    return x;
}

static void
sim_send(void *data, const struct mm_swim_addr *to, const uint8_t *buf,
         size_t len)
{
    struct sim_node *nd = data;
    struct sim *net = nd->net;
    int dst = idx_of_addr(to);
    assert_true(len <= MM_SWIM_PACKET_MAX);
    net->bytes += len + MM_SEAL_OVERHEAD;
    net->packets++;
    if (dst < 0 || dst >= net->n) {
        net->dropped++;
        return;
    }
    if (net->loss_pct && sim_rand(net) % 100 < net->loss_pct) {
        net->dropped++;
        return;
    }
    if (net->nq == net->capq) {
        net->capq = net->capq ? net->capq * 2 : 256;
        net->q = realloc(net->q, net->capq * sizeof(*net->q));
        assert_non_null(net->q);
    }
    struct sim_pkt *p = &net->q[net->nq++];
    p->at = net->now + 1 + sim_rand(net) % 4;
    p->from = nd->idx;
    p->to = dst;
    p->len = len;
    memcpy(p->buf, buf, len);
}

static void
sim_changed(void *data, const struct mm_swim_member *m, int was)
{
    struct sim_node *nd = data;
    (void)was;
    if (m->state == MM_SWIM_FAILED && was != MM_SWIM_FAILED) {
        int who = idx_of_id(m->rec->id);
        nd->failed_events++;
        if (who >= 0 && who < SIM_MAX) nd->failed_of[who]++;
    }
    nd->last_change = nd->net->now;
}

static void
sim_want_sync(void *data, const struct mm_swim_member *peer)
{
    struct sim_node *nd = data;
    struct sim *net = nd->net;
    assert_true(net->nsyncs < MM_ARRAY_SIZE(net->syncs));
    net->syncs[net->nsyncs].at = net->now + 5;
    net->syncs[net->nsyncs].a = nd->idx;
    net->syncs[net->nsyncs].b = idx_of_addr(&peer->rec->addr);
    net->nsyncs++;
}

static void
sim_refresh(struct sim_node *nd)
{
    nd->deadline = nd->s ? mm__swim_deadline(nd->s) : UINT64_MAX;
    if (nd->s) assert_int_equal(mm__swim_check(nd->s), 0);
}

static struct sim *
sim_new(int n, uint64_t seed)
{
    struct sim *net = calloc(1, sizeof(*net));
    assert_non_null(net);
    assert_true(n <= SIM_MAX);
    net->n = n;
    net->rng = seed * 2654435761u + 1;
    net->now = 1000;
    return net;
}

static void
sim_start(struct sim *net, int i, int seed_idx)
{
    struct sim_node *nd = &net->nodes[i];
    struct mm_swim_config cfg;
    char name[32];
    struct mm_swim_ops ops = {nd,     sim_send, sim_changed, sim_want_sync,
                              t_sign, t_verify};
    cfg_for(&cfg, i, name, net->rng + (uint64_t)i * 7919 + 1);
    nd->net = net;
    nd->idx = i;
    nd->started = 1;
    assert_int_equal(mm__swim_new(&nd->s, &cfg, &ops, net->now), 0);
    if (seed_idx >= 0 && seed_idx != i) {
        struct mm_swim_addr a = addr_of(seed_idx);
        assert_int_equal(mm__swim_join(nd->s, &a, net->now), 0);
    }
    sim_refresh(nd);
}

static void
sim_free(struct sim *net)
{
    for (int i = 0; i < net->n; i++)
        mm__swim_free(net->nodes[i].s);
    free(net->q);
    free(net);
}

static int
sim_up(struct sim *net, int i)
{
    return net->nodes[i].s && !net->nodes[i].killed;
}

static void
sim_do_sync(struct sim *net, int a, int b)
{
    struct mm_swim *sa = net->nodes[a].s, *sb;
    if (!sim_up(net, a)) return;
    if (b < 0 || b >= net->n || !sim_up(net, b) ||
        net->part[a] != net->part[b]) {
        mm__swim_sync_done(sa, net->now);
        sim_refresh(&net->nodes[a]);
        return;
    }
    sb = net->nodes[b].s;
    size_t na = mm__swim_state_encode(sa, NULL, 0);
    uint8_t *pa = malloc(na);
    mm__swim_state_encode(sa, pa, na);
    assert_int_equal(mm__swim_state_merge(sb, pa, na, net->now), 0);
    size_t nb = mm__swim_state_encode(sb, NULL, 0);
    uint8_t *pb = malloc(nb);
    mm__swim_state_encode(sb, pb, nb);
    assert_int_equal(mm__swim_state_merge(sa, pb, nb, net->now), 0);
    free(pa);
    free(pb);
    sim_refresh(&net->nodes[a]);
    sim_refresh(&net->nodes[b]);
}

/* Runs the network until |until| (or |done| says so); returns the time. */
static uint64_t
sim_run(struct sim *net, uint64_t until, int (*done)(struct sim *, void *),
        void *arg)
{
    for (long guard = 0;; guard++) {
        assert_true(guard < 50000000L);
        uint64_t t = UINT64_MAX;
        for (size_t i = 0; i < net->nq; i++)
            t = MM_MIN(t, net->q[i].at);
        for (size_t i = 0; i < net->nsyncs; i++)
            t = MM_MIN(t, net->syncs[i].at);
        for (int i = 0; i < net->n; i++)
            if (sim_up(net, i)) t = MM_MIN(t, net->nodes[i].deadline);
        if (t > until) {
            net->now = until;
            return until;
        }
        if (t > net->now) net->now = t;
        for (size_t i = 0; i < net->nq;) {
            if (net->q[i].at > net->now) {
                i++;
                continue;
            }
            struct sim_pkt p = net->q[i];
            net->q[i] = net->q[--net->nq];
            if (!sim_up(net, p.to) || net->part[p.from] != net->part[p.to]) {
                net->dropped++;
                continue;
            }
            struct mm_swim_addr from = addr_of(p.from);
            assert_int_equal(mm__swim_recv(net->nodes[p.to].s, &from, p.buf,
                                           p.len, net->now),
                             0);
            net->delivered++;
            sim_refresh(&net->nodes[p.to]);
        }
        for (size_t i = 0; i < net->nsyncs;) {
            if (net->syncs[i].at > net->now) {
                i++;
                continue;
            }
            struct sim_sync sy = net->syncs[i];
            net->syncs[i] = net->syncs[--net->nsyncs];
            sim_do_sync(net, sy.a, sy.b);
        }
        for (int i = 0; i < net->n; i++) {
            struct sim_node *nd = &net->nodes[i];
            if (sim_up(net, i) && nd->deadline <= net->now) {
                mm__swim_tick(nd->s, net->now);
                sim_refresh(nd);
                assert_true(nd->deadline > net->now);
            }
        }
        if (done && done(net, arg)) return net->now;
    }
}

static int
sim_state(struct sim *net, int viewer, int who)
{
    uint8_t id[16];
    id_of(id, who);
    const struct mm_swim_member *m = mm__swim_find(net->nodes[viewer].s, id);
    return m ? m->state : MM_SWIM_NONE;
}

/* Every live node sees every live node alive (and the others not). */
static int
sim_converged(struct sim *net, void *arg)
{
    (void)arg;
    for (int v = 0; v < net->n; v++) {
        if (!sim_up(net, v)) continue;
        for (int w = 0; w < net->n; w++)
            if (sim_up(net, w) && sim_state(net, v, w) != MM_SWIM_ALIVE)
                return 0;
    }
    return 1;
}

static int
sim_all_see_failed(struct sim *net, void *arg)
{
    int victim = *(int *)arg;
    for (int v = 0; v < net->n; v++)
        if (sim_up(net, v) && sim_state(net, v, victim) != MM_SWIM_FAILED)
            return 0;
    return 1;
}

static int
sim_all_see_left(struct sim *net, void *arg)
{
    int who = *(int *)arg;
    for (int v = 0; v < net->n; v++)
        if (v != who && sim_up(net, v) &&
            sim_state(net, v, who) != MM_SWIM_LEFT)
            return 0;
    return 1;
}

/* Starts n nodes joining node 0, 20 ms apart, and waits for convergence. */
static uint64_t
sim_boot(struct sim *net)
{
    for (int i = 0; i < net->n; i++) {
        sim_start(net, i, i == 0 ? -1 : 0);
        sim_run(net, net->now + 20, NULL, NULL);
    }
    uint64_t t0 = net->now;
    uint64_t t = sim_run(net, t0 + 30000, sim_converged, NULL);
    assert_true(sim_converged(net, NULL));
    return t - t0;
}

static void
sim_kill_and_detect(int n, uint64_t seed, uint64_t bound_ms)
{
    struct sim *net = sim_new(n, seed);
    uint64_t conv = sim_boot(net);
    print_message("  n=%d: converged %llu ms after the last start\n", n,
                  (unsigned long long)conv);
    print_message("  n=%d: boot to convergence: %.1f sealed bytes per "
                  "packet, %.0f bytes per node\n",
                  n, (double)net->bytes / (double)net->packets,
                  (double)net->bytes / n);
    assert_true(conv < 5000);
    sim_run(net, net->now + 3000, NULL, NULL);
    /* Idle cost: a ping and an ack per node per second (Serf: 2.0). */
    uint64_t d0 = net->delivered + net->dropped, b0 = net->bytes;
    size_t syncs0 = 0, syncs1 = 0;
    for (int i = 0; i < n; i++)
        syncs0 += mm__swim_stats(net->nodes[i].s)->syncs;
    sim_run(net, net->now + 10000, NULL, NULL);
    for (int i = 0; i < n; i++)
        syncs1 += mm__swim_stats(net->nodes[i].s)->syncs;
    double pps = (double)(net->delivered + net->dropped - d0) / n / 10.0;
    double bps = (double)(net->bytes - b0) / n / 10.0;
    print_message("  n=%d: idle %.2f packets/s per node, %.0f sealed bytes/s "
                  "per node, %zu syncs\n",
                  n, pps, bps, syncs1 - syncs0);
    assert_true(pps <= 2.5);
    assert_true(bps <= 300.0);
    assert_int_equal(syncs1 - syncs0, 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(net->nodes[i].failed_events, 0);
    int victim = n / 2 + 1;
    net->nodes[victim].killed = 1;
    uint64_t t0 = net->now;
    uint64_t t = sim_run(net, t0 + bound_ms, sim_all_see_failed, &victim);
    assert_true(sim_all_see_failed(net, &victim));
    print_message("  n=%d: kill detected by all survivors in %llu ms\n", n,
                  (unsigned long long)(t - t0));
    /* Only the victim, on every survivor. */
    for (int v = 0; v < n; v++) {
        if (v == victim) continue;
        for (int w = 0; w < n; w++)
            if (w != victim)
                assert_int_equal(sim_state(net, v, w), MM_SWIM_ALIVE);
        assert_int_equal(mm__swim_count(net->nodes[v].s, MM_SWIM_FAILED), 1);
        assert_int_equal(net->nodes[v].failed_events, 1);
    }
    sim_free(net);
}

static void
test_swim_sim_5_converge_and_detect(void **state)
{
    (void)state;
    /* n = 5: suspicion 4..24 s; probe round 1 s; gossip. */
    sim_kill_and_detect(5, 1, 30000);
}

static void
test_swim_sim_32_converge_and_detect(void **state)
{
    (void)state;
    sim_kill_and_detect(32, 2, 40000);
}

static void
test_swim_sim_loss_no_false_failures(void **state)
{
    (void)state;
    struct sim *net = sim_new(32, 3);
    sim_boot(net);
    net->loss_pct = 10;
    sim_run(net, net->now + 60000, NULL, NULL);
    int failed = 0;
    for (int i = 0; i < net->n; i++) {
        failed += net->nodes[i].failed_events;
        assert_int_equal(mm__swim_count(net->nodes[i].s, MM_SWIM_FAILED), 0);
    }
    print_message("  10%% loss, 60 s: %llu delivered, %llu dropped, "
                  "%d failed verdicts\n",
                  (unsigned long long)net->delivered,
                  (unsigned long long)net->dropped, failed);
    assert_int_equal(failed, 0);
    assert_true(net->dropped > net->delivered / 20);
    sim_free(net);
}

static int
sim_leave_acked(struct sim *net, void *arg)
{
    return mm__swim_left_acked(net->nodes[*(int *)arg].s) == 1;
}

static void
test_swim_leave_seen_as_left(void **state)
{
    (void)state;
    struct sim *net = sim_new(5, 4);
    sim_boot(net);
    int who = 3;
    uint64_t t0 = net->now;
    assert_int_equal(mm__swim_leave(net->nodes[who].s, net->now), 0);
    assert_int_equal(mm__swim_leave(net->nodes[who].s, net->now), MM_EINVAL);
    sim_refresh(&net->nodes[who]);
    assert_int_equal(mm__swim_left_acked(net->nodes[who].s), 0);
    uint64_t t = sim_run(net, t0 + 5000, sim_all_see_left, &who);
    assert_true(sim_all_see_left(net, &who));
    print_message("  leave seen by all in %llu ms\n",
                  (unsigned long long)(t - t0));
    assert_true(t - t0 <= 600);
    /* Told directly, they may all list it left before an ack is back. */
    sim_run(net, net->now + 1000, sim_leave_acked, &who);
    assert_int_equal(mm__swim_left_acked(net->nodes[who].s), 1);
    /* The node goes away; nobody turns LEFT into FAILED. */
    net->nodes[who].killed = 1;
    sim_run(net, net->now + 60000, NULL, NULL);
    for (int v = 0; v < 5; v++) {
        if (v == who) continue;
        assert_int_equal(sim_state(net, v, who), MM_SWIM_LEFT);
        assert_int_equal(net->nodes[v].failed_events, 0);
    }
    sim_free(net);
}

/* A leave is told directly to MM_SWIM_LEAVE_TELL live members (here all
 * 7 others), not only to gossip_nodes: none is left to gossip alone. */
static void
test_swim_leave_told_to_many(void **state)
{
    (void)state;
    struct h *h = h_new(28);
    h_learn(h, 7);
    h_advance(h, 5000);
    size_t from = h->nout;
    assert_int_equal(mm__swim_leave(h->s, h->now), 0);
    int told[8] = {0};
    size_t k = from;
    uint32_t seq;
    int to, n = 0;
    while ((to = h_next_ping(h, &k, &seq)) >= 0) {
        assert_true(to >= 1 && to <= 7);
        n += !told[to];
        told[to] = 1;
    }
    assert_int_equal(n, 7);
    assert_int_equal(h->nout - from, 7); /* one packet each */
    h_free(h);
}

static void
test_swim_leave_times_out_alone_acks(void **state)
{
    (void)state;
    struct h *h = h_new(26);
    /* Nobody to tell: acknowledged at once. */
    assert_int_equal(mm__swim_leave(h->s, h->now), 0);
    assert_int_equal(mm__swim_left_acked(h->s), 1);
    h_free(h);
    /* Peers that never answer: bounded by leave_timeout. */
    h = h_new(27);
    h_learn(h, 2);
    assert_int_equal(mm__swim_leave(h->s, h->now), 0);
    h_advance(h, h->now + MM_SWIM_LEAVE_TIMEOUT_MS - 1);
    assert_int_equal(mm__swim_left_acked(h->s), 0);
    h_advance(h, h->now + 1);
    assert_int_equal(mm__swim_left_acked(h->s), MM_ETIMEOUT);
    h_free(h);
}

static void
test_swim_partition_heals(void **state)
{
    (void)state;
    struct sim *net = sim_new(6, 5);
    sim_boot(net);
    for (int i = 3; i < 6; i++)
        net->part[i] = 1;
    sim_run(net, net->now + 40000, NULL, NULL);
    for (int v = 0; v < 6; v++)
        for (int w = 0; w < 6; w++)
            assert_int_equal(sim_state(net, v, w), net->part[v] == net->part[w]
                                                       ? MM_SWIM_ALIVE
                                                       : MM_SWIM_FAILED);
    memset(net->part, 0, sizeof(net->part));
    uint64_t t0 = net->now;
    uint64_t t = sim_run(net, t0 + 120000, sim_converged, NULL);
    assert_true(sim_converged(net, NULL));
    print_message("  partition healed in %llu ms\n",
                  (unsigned long long)(t - t0));
    sim_free(net);
}

/*
 * A FAILED verdict about a member that spoke to us within the minimum
 * suspicion timeout becomes a suspicion running that timeout; one about a
 * member silent for at least that long is taken at once (a member that
 * really failed has been silent that long by the time a verdict exists).
 */
static void
test_swim_verdict_about_member_heard_lately(void **state)
{
    (void)state;
    struct h *h = h_new(31);
    struct tb t;
    uint64_t mn, mx;
    uint8_t id2[16];
    h_learn(h, 4); /* from member 1's packets: 2, 3 and 4 never spoke */
    mm__swim_suspicion_bounds(h->s, &mn, &mx);
    id_of(id2, 2);

    /* 4 never spoke to us: 3's verdict is taken. */
    tb_begin(&t, 3);
    tb_verdict(&t, T_FAILED, 4, 1, 0, 3);
    h_recv(h, 3, &t);
    assert_int_equal(h_state(h, 4), MM_SWIM_FAILED);
    assert_int_equal(mm__swim_stats(h->s)->stale_verdicts, 0);

    /* 2 speaks (an ack to nothing); mn - 1 ms later 3 says it failed. */
    tb_begin(&t, 2);
    tb_seq(&t, T_ACK, 4242);
    h_recv(h, 2, &t);
    h->now += mn - 1;
    tb_begin(&t, 3);
    tb_verdict(&t, T_FAILED, 2, 1, 0, 3);
    h_recv(h, 3, &t);
    assert_int_equal(h_state(h, 2), MM_SWIM_SUSPECT);
    assert_int_equal(mm__swim_stats(h->s)->stale_verdicts, 1);
    const struct mm_swim_member *m2 = mm__swim_find(h->s, id2);
    assert_int_equal(m2->susp->suspect_deadline, h->now + mn);
    /* It refutes: alive again, never failed. */
    tb_begin(&t, 2);
    tb_alive(&t, 2, 1, 1, "", addr_of(2));
    h_recv(h, 2, &t);
    assert_int_equal(h_state(h, 2), MM_SWIM_ALIVE);
    for (size_t i = 0; i < h->nev; i++)
        if (memcmp(h->ev[i].id, id2, 16) == 0)
            assert_int_not_equal(h->ev[i].state, MM_SWIM_FAILED);

    /* Silent for exactly mn since: the next verdict is taken at once. */
    h->now += mn;
    tb_begin(&t, 3);
    tb_verdict(&t, T_FAILED, 2, 1, 1, 3);
    h_recv(h, 3, &t);
    assert_int_equal(h_state(h, 2), MM_SWIM_FAILED);
    assert_int_equal(mm__swim_stats(h->s)->stale_verdicts, 1);
    h_free(h);
}

/* The isolated node |*arg| sees every other node failed. */
static int
sim_isolated_sees_all_failed(struct sim *net, void *arg)
{
    int c = *(int *)arg;
    for (int w = 0; w < net->n; w++)
        if (w != c && sim_state(net, c, w) != MM_SWIM_FAILED) return 0;
    return 1;
}

/*
 * One node is cut off just long enough to declare everyone else failed,
 * then comes back still gossiping those verdicts.  The others have heard
 * from each other all along, so they take the verdicts as suspicions and
 * never mark each other failed (before, a healthy member could leave a
 * peer's view for a moment and come back after refuting).
 */
static void
test_swim_stale_verdicts_after_heal_no_flap(void **state)
{
    (void)state;
    for (uint64_t seed = 11; seed < 15; seed++) {
        struct sim *net = sim_new(5, seed);
        int c = 4;
        sim_boot(net);
        net->part[c] = 1;
        sim_run(net, net->now + 60000, sim_isolated_sees_all_failed, &c);
        assert_true(sim_isolated_sees_all_failed(net, &c));
        int before[SIM_MAX][SIM_MAX];
        for (int v = 0; v < c; v++)
            for (int w = 0; w < c; w++)
                before[v][w] = net->nodes[v].failed_of[w];
        memset(net->part, 0, sizeof(net->part));
        sim_run(net, net->now + 120000, sim_converged, NULL);
        assert_true(sim_converged(net, NULL));
        uint64_t stale = 0;
        for (int v = 0; v < c; v++) {
            for (int w = 0; w < c; w++)
                assert_int_equal(net->nodes[v].failed_of[w], before[v][w]);
            stale += mm__swim_stats(net->nodes[v].s)->stale_verdicts;
        }
        /* The scenario did happen: verdicts arrived and were demoted. */
        assert_true(stale > 0);
        sim_free(net);
    }
}

static void
test_swim_seed_retry_backoff(void **state)
{
    (void)state;
    struct h *h = h_new(28);
    struct mm_swim_addr seed = addr_of(9);
    assert_int_equal(mm__swim_join(h->s, &seed, h->now), 0);
    assert_false(mm__swim_joined(h->s));
    uint64_t t0 = h->now;
    h_advance(h, t0 + 70000);
    uint64_t at[16];
    int n = 0;
    for (size_t i = 0; i < h->nout && n < 16; i++)
        if (idx_of_addr(&h->out[i].to) == 9) at[n++] = h->out[i].at - t0;
    /* 0, 1, 3, 7, 15, 31 s, then every 30 s. */
    assert_true(n >= 7);
    assert_int_equal(at[0], 0);
    assert_int_equal(at[1], 1000);
    assert_int_equal(at[2], 3000);
    assert_int_equal(at[3], 7000);
    assert_int_equal(at[4], 15000);
    assert_int_equal(at[5], 31000);
    assert_int_equal(at[6], 61000);
    /* The seed answers: joined, a sync is asked for, retries stop. */
    const uint8_t *p = pk_find(h->out[h->nout - 1].buf, h->out[h->nout - 1].len,
                               T_PING, 0, NULL);
    assert_non_null(p);
    struct tb t;
    tb_begin(&t, 9);
    tb_alive(&t, 9, 1, 0, "", addr_of(9));
    tb_seq(&t, T_ACK, mm__get_u32(p));
    h_recv(h, 9, &t);
    assert_true(mm__swim_joined(h->s));
    assert_int_equal(h->nsync, 1);
    h->auto_ack = 1;
    size_t before = h->nout;
    h_advance(h, h->now + 100000);
    for (size_t i = before; i < h->nout; i++) {
        const uint8_t *q =
            pk_find(h->out[i].buf, h->out[i].len, T_PING, 0, NULL);
        if (q) {
            uint8_t id9[16];
            id_of(id9, 9);
            assert_memory_equal(q + 4, id9, 16); /* probes, not joins */
        }
    }
    h_free(h);
}

/* ---- the id index (idx.h) and a table of thousands -------------------- */

struct idx_obj {
    int tag;
    uint8_t id[16];
};

static void
idx_id(uint8_t id[16], uint32_t k)
{
    uint64_t a = mm__hash_u64(k + 1), b = mm__hash_u64(a ^ k);
    memcpy(id, &a, 8);
    memcpy(id + 8, &b, 8);
}

/* Insert, find, remove and growth against a plain array, in a random
 * order of operations (removals shift entries back: a wrong shift loses
 * or misplaces them, which the finds catch). */
static void
test_swim_idx_model(void **state)
{
    (void)state;
    enum { N = 5000 };
    static struct idx_obj obj[N];
    static int in[N];
    struct mm_idx x;
    uint8_t id[16];
    uint64_t rng = 12345;
    size_t n = 0;
    mm__idx_init(&x, offsetof(struct idx_obj, id), 99);
    assert_null(mm__idx_find(&x, obj[0].id)); /* empty, nothing allocated */
    for (uint32_t k = 0; k < N; k++) {
        obj[k].tag = (int)k;
        idx_id(obj[k].id, k);
        in[k] = 0;
    }
    /* Growth from nothing to past 4096 entries. */
    for (uint32_t k = 0; k < N; k++) {
        assert_int_equal(mm__idx_insert(&x, &obj[k]), 0);
        in[k] = 1;
        n++;
    }
    assert_int_equal(x.n, N);
    assert_true(x.cap >= 2 * N);
    for (uint32_t k = 0; k < N; k++)
        assert_ptr_equal(mm__idx_find(&x, obj[k].id), &obj[k]);
    idx_id(id, N + 7);
    assert_null(mm__idx_find(&x, id));
    /* Churn: 200 000 random removals and inserts, every find checked
     * every 10 000. */
    for (int op = 0; op < 200000; op++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        uint32_t k = (uint32_t)(rng % N);
        if (in[k]) {
            assert_int_equal(mm__idx_remove(&x, &obj[k]), 0);
            assert_int_equal(mm__idx_remove(&x, &obj[k]), MM_ENOTFOUND);
            in[k] = 0;
            n--;
        } else {
            assert_int_equal(mm__idx_insert(&x, &obj[k]), 0);
            in[k] = 1;
            n++;
        }
        assert_int_equal(x.n, n);
        if (op % 10000 == 0 || op == 199999)
            for (uint32_t j = 0; j < N; j++)
                assert_ptr_equal(mm__idx_find(&x, obj[j].id),
                                 in[j] ? &obj[j] : NULL);
    }
    /* Another object with an indexed id is not the one indexed, and
     * cannot be added beside it. */
    struct idx_obj twin = obj[0];
    if (!in[0]) {
        assert_int_equal(mm__idx_insert(&x, &obj[0]), 0);
        in[0] = 1;
    }
    assert_int_equal(mm__idx_remove(&x, &twin), MM_ENOTFOUND);
    assert_int_equal(mm__idx_insert(&x, &twin), MM_EEXISTS);
    assert_ptr_equal(mm__idx_find(&x, twin.id), &obj[0]);
    /* Everything out: empty again, the slots kept. */
    for (uint32_t k = 0; k < N; k++)
        if (in[k]) assert_int_equal(mm__idx_remove(&x, &obj[k]), 0);
    assert_int_equal(x.n, 0);
    for (uint32_t k = 0; k < N; k++)
        assert_null(mm__idx_find(&x, obj[k].id));
    /* Out of memory while growing: refused, the index intact. */
    assert_int_equal(mm__idx_insert(&x, &obj[0]), 0);
    mm__idx_free(&x);
    mm__idx_init(&x, offsetof(struct idx_obj, id), 5);
    mm__alloc_fail_after(1);
    assert_int_equal(mm__idx_insert(&x, &obj[1]), -ENOMEM);
    mm__alloc_fail_after(0);
    assert_int_equal(x.n, 0);
    assert_int_equal(mm__idx_insert(&x, &obj[1]), 0);
    assert_ptr_equal(mm__idx_find(&x, obj[1].id), &obj[1]);
    mm__idx_free(&x);
}

/* Thousands of members: signatures modelled by a keyed hash (the id is
 * the key's first half), records built in the documented format. */
static void
f_sig(const uint8_t *msg, size_t len, uint8_t sig[64])
{
    uint64_t h = mm__hash_bytes(msg, len);
    for (int i = 0; i < 8; i++)
        mm__put_u64(sig + 8 * i, mm__hash_u64(h + (uint64_t)i));
}

static int
f_sign(void *data, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    (void)data;
    f_sig(msg, len, sig);
    return 0;
}

static int
f_verify(void *data, const uint8_t id[16], const uint8_t pub[32],
         const uint8_t *msg, size_t len, const uint8_t sig[64])
{
    uint8_t want[64];
    (void)data;
    if (memcmp(pub, id, 16) != 0) return -1;
    f_sig(msg, len, want);
    return memcmp(want, sig, 64) != 0;
}

/* Test keys' signatures (t_verify), or big_state's keyed hash for the
 * ids whose key starts with the id (f_verify). */
static int
mix_verify(void *data, const uint8_t id[16], const uint8_t pub[32],
           const uint8_t *msg, size_t len, const uint8_t sig[64])
{
    if (memcmp(pub, id, 16) == 0) return f_verify(data, id, pub, msg, len, sig);
    return t_verify(data, id, pub, msg, len, sig);
}

static void
big_send(void *data, const struct mm_swim_addr *to, const uint8_t *buf,
         size_t len)
{
    (void)to;
    (void)buf;
    assert_true(len <= MM_SWIM_PACKET_MAX);
    (*(unsigned long *)data)++;
}

static const char *
big_tags(uint32_t k)
{
    return k % 3 == 0 ? "zone=a" : k % 3 == 1 ? "zone=b,rack=7" : "";
}

/* A push-pull state with members 0..n-1 (generation |gen|), the even ones
 * in |even_state|, the odd ones alive; sent by member 0. */
static uint8_t *
big_state(uint32_t n, uint64_t gen, int even_state, size_t *len)
{
    uint8_t *b = malloc(29 + (size_t)n * 256), tbs[18 + 256];
    size_t o = 0;
    assert_non_null(b);
    b[o++] = 3;
    idx_id(b + o, 0);
    o += 16;
    mm__put_u32(b + o, n);
    mm__put_u32(b + o + 4, UINT32_MAX);
    mm__put_u32(b + o + 8, UINT32_MAX);
    o += 12;
    for (uint32_t k = 0; k < n; k++) {
        char name[32];
        const char *tags = big_tags(k);
        size_t nl, tl, r = o + 3, h;
        b[o] = (uint8_t)(k % 2 == 0 ? even_state : MM_SWIM_ALIVE);
        uint8_t *p = b + r;
        snprintf(name, sizeof(name), "m%u", (unsigned)k);
        nl = strlen(name);
        tl = strlen(tags);
        idx_id(p, k);
        mm__put_u64(p + 16, gen);
        mm__put_u64(p + 24, 0);
        p[32] = 0;
        p[33] = 0;
        p[34] = 4;
        p[35] = 10;
        p[36] = (uint8_t)(k >> 16);
        p[37] = (uint8_t)(k >> 8);
        p[38] = (uint8_t)k;
        mm__put_u16(p + 39, 7946);
        p[41] = (uint8_t)nl;
        memcpy(p + 42, name, nl);
        p[42 + nl] = (uint8_t)tl;
        memcpy(p + 43 + nl, tags, tl);
        h = 43 + nl + tl;
        memcpy(tbs, "murmer-swim-rec-v1", 18);
        memcpy(tbs + 18, p, h);
        p[32] = 2; /* the key follows */
        memcpy(p + h, p, 16);
        memset(p + h + 16, 0, 16);
        f_sig(tbs, 18 + h, p + h + 32);
        mm__put_u16(b + o + 1, (uint16_t)(h + 96));
        o = r + h + 96;
    }
    *len = o;
    return b;
}

/* An instance of node |i| keeping its records in |pool|. */
static struct h *
h_new_pool(int i, struct mm_swim_pool *pool)
{
    struct h *h = calloc(1, sizeof(*h));
    struct mm_swim_config cfg;
    char name[32];
    struct mm_swim_ops ops = {h,           h_send, h_changed,
                              h_want_sync, t_sign, t_verify};
    assert_non_null(h);
    cfg_for(&cfg, i, name, 100 + (uint64_t)i);
    cfg.pool = pool;
    h->now = 1000;
    assert_int_equal(mm__swim_new(&h->s, &cfg, &ops, h->now), 0);
    return h;
}

/*
 * Cores that share a record pool hold one copy of each signed record: a
 * second core that learns a record the pool holds, checked, byte for byte,
 * takes the pool's copy without verifying it again (still counted as
 * verified); a record that differs in any byte is checked; a record nobody
 * holds any more leaves the pool.
 */
static void
test_swim_pool_shared_records(void **state)
{
    (void)state;
    struct mm_swim_pool *pool;
    struct tb t;
    uint8_t id3[16];
    size_t bytes;
    /* The per-observer part stays small: the signed record is shared. */
    assert_true(sizeof(struct mm_swim_member) <= 64);
    assert_int_equal(mm__swim_pool_new(&pool), 0);
    struct h *a = h_new_pool(0, pool), *b = h_new_pool(20, pool);
    assert_int_equal(mm__swim_pool_count(pool, NULL), 2); /* the selves */
    unsigned long v0 = t_verifies;
    h_learn(a, 8);
    assert_int_equal(t_verifies - v0, 8);
    assert_int_equal(mm__swim_pool_count(pool, &bytes), 10);
    assert_true(bytes > 0);
    uint64_t verified0 = mm__swim_stats(b->s)->verified;
    v0 = t_verifies;
    h_learn(b, 8);
    assert_int_equal(t_verifies - v0, 0);
    assert_int_equal(mm__swim_stats(b->s)->verified - verified0, 8);
    assert_int_equal(mm__swim_pool_count(pool, NULL), 10);
    id_of(id3, 3);
    assert_ptr_equal(mm__swim_find(a->s, id3)->rec,
                     mm__swim_find(b->s, id3)->rec);
    assert_int_equal(mm__swim_check(b->s), 0);

    /* Signed by another key: not the pool's record, so it is checked
     * (and dropped). */
    v0 = t_verifies;
    uint64_t forged0 = mm__swim_stats(b->s)->forged;
    tb_begin(&t, 1);
    tb_rec(&t, 3, 1, 1, 0, "", addr_of(3), 9);
    h_recv(b, 1, &t);
    assert_int_equal(t_verifies - v0, 1);
    assert_int_equal(mm__swim_stats(b->s)->forged, forged0 + 1);
    assert_int_equal(mm__swim_find(b->s, id3)->rec->incarnation, 0);

    /* A new record of member 3: a second copy while only one core holds
     * it; when both do, the old one goes. */
    tb_begin(&t, 1);
    tb_alive(&t, 3, 1, 1, "k=v", addr_of(3));
    h_recv(a, 1, &t);
    assert_int_equal(mm__swim_pool_count(pool, NULL), 11);
    v0 = t_verifies;
    h_recv(b, 1, &t);
    assert_int_equal(t_verifies - v0, 0);
    assert_string_equal(mm__swim_find(b->s, id3)->rec->tags, "k=v");
    assert_ptr_equal(mm__swim_find(a->s, id3)->rec,
                     mm__swim_find(b->s, id3)->rec);
    /* The broadcast queues may still hold the old one: they drain. */
    h_advance(a, a->now + 60000);
    h_advance(b, b->now + 60000);
    assert_int_equal(mm__swim_pool_count(pool, NULL), 10);

    /* Our own new record (set_tags) is a new one in the pool. */
    assert_int_equal(mm__swim_set_tags(a->s, "x=1", a->now), 0);
    assert_string_equal(mm__swim_self(a->s)->rec->tags, "x=1");
    assert_int_equal(mm__swim_self(a->s)->rec->incarnation, 1);
    assert_int_equal(mm__swim_check(a->s), 0);

    h_free(a);
    assert_true(mm__swim_pool_count(pool, NULL) >= 9); /* b's still */
    h_free(b);
    assert_int_equal(mm__swim_pool_count(pool, NULL), 0);
    mm__swim_pool_free(pool);
}

/* A walk is bounded: from a peer listing 401 members in pages of 3 it
 * pulls 128 pages (SWIM_WALK_PAGES_MAX), each lower than the one before,
 * and then asks for nothing more at once although it still lists fewer
 * than the peer (the rest comes by the ordinary pulls). */
static void
test_swim_walk_stops_after_128_pages(void **state)
{
    (void)state;
    struct h *a, *b;
    walk_pair_big(&a, &b, 400);
    uint32_t last = UINT32_MAX;
    int pulls = 0;
    for (;;) {
        size_t n = mm__swim_state_encode(b->s, NULL, 0);
        uint8_t *req = malloc(n);
        assert_int_equal(mm__swim_state_encode(b->s, req, n), n);
        mm__swim_state_serve(a->s, req, n);
        free(req);
        size_t m = mm__swim_state_encode(a->s, NULL, 0);
        uint8_t *ans = malloc(m);
        assert_int_equal(mm__swim_state_encode(a->s, ans, m), m);
        uint32_t next = mm__get_u32(ans + 25);
        assert_true(next < last); /* a real peer's pages move down */
        last = next;
        int before = b->nsync;
        assert_int_equal(mm__swim_state_merge(b->s, ans, m, b->now), 0);
        free(ans);
        pulls++;
        mm__swim_tick(b->s, b->now);
        if (b->nsync == before) break;
        assert_true(pulls < 200);
    }
    assert_int_equal(pulls, 128);
    assert_true(last != UINT32_MAX); /* a's table had more pages */
    assert_int_equal(mm__swim_count(b->s, MM_SWIM_NONE), 2 + 128 * 3);
    assert_int_equal(mm__swim_check(b->s), 0);
    h_free(a);
    h_free(b);
}

/* An instance named |name| whose id is big_state's key |k|, signing and
 * checking with the keyed hash, counting what it sends in |sent|. */
static struct mm_swim *
big_new(const char *name, uint32_t k, uint64_t seed, unsigned long *sent,
        uint64_t now)
{
    struct mm_swim *s;
    struct mm_swim_config cfg;
    struct mm_swim_ops ops = {sent, big_send, NULL, NULL, f_sign, f_verify};
    mm__swim_config_init(&cfg);
    cfg.name = name;
    idx_id(cfg.id, k);
    memcpy(cfg.pub, cfg.id, 16);
    cfg.addr = addr_of(0);
    cfg.generation = 1;
    cfg.seed = seed;
    cfg.reconnect_timeout_ms = 2000;
    cfg.tombstone_ms = 2000;
    assert_int_equal(mm__swim_new(&s, &cfg, &ops, now), 0);
    return s;
}

/* The member table is bounded (MM_SWIM_MEMBERS_MAX, tombstones included):
 * a state naming more fills it and the rest is ignored, the table whole;
 * members it holds still take news. */
static void
test_swim_member_table_full(void **state)
{
    (void)state;
    const uint32_t N = MM_SWIM_MEMBERS_MAX + 8;
    unsigned long sent = 0;
    uint64_t now = 1000;
    size_t len;
    uint8_t id[16];
    struct mm_swim *s = big_new("full", N + 1, 78, &sent, now);
    uint8_t *st = big_state(N, 1, MM_SWIM_ALIVE, &len);
    assert_int_equal(mm__swim_state_merge(s, st, len, now), 0);
    assert_int_equal(mm__swim_count(s, MM_SWIM_NONE), MM_SWIM_MEMBERS_MAX);
    assert_int_equal(mm__swim_check(s), 0);
    /* In the state's order: ourselves and the first MAX-1 fit. */
    idx_id(id, 0);
    assert_non_null(mm__swim_find(s, id));
    idx_id(id, MM_SWIM_MEMBERS_MAX - 2);
    assert_non_null(mm__swim_find(s, id));
    for (uint32_t k = MM_SWIM_MEMBERS_MAX - 1; k < N; k++) {
        idx_id(id, k);
        assert_null(mm__swim_find(s, id));
    }
    /* Again: nothing more, nothing lost. */
    assert_int_equal(mm__swim_state_merge(s, st, len, now), 0);
    free(st);
    assert_int_equal(mm__swim_count(s, MM_SWIM_NONE), MM_SWIM_MEMBERS_MAX);
    /* The sender suspects the even ones: the members held take it. */
    st = big_state(N, 1, MM_SWIM_SUSPECT, &len);
    assert_int_equal(mm__swim_state_merge(s, st, len, now), 0);
    free(st);
    idx_id(id, 2);
    assert_int_equal(mm__swim_find(s, id)->state, MM_SWIM_SUSPECT);
    assert_int_equal(mm__swim_count(s, MM_SWIM_NONE), MM_SWIM_MEMBERS_MAX);
    assert_int_equal(mm__swim_check(s), 0);
    mm__swim_free(s);
}

/* Out of memory for a failed member's re-probe state, while a push-pull
 * state adds failed members: each allocation fails in turn.  The table
 * stays whole; failed members added without that state are failed all
 * the same (never re-probed) and are reaped like the others. */
static void
test_swim_failed_member_out_of_memory(void **state)
{
    (void)state;
    int whole = 0, anybare = 0;
    for (unsigned long k = 1; k <= 40; k++) {
        unsigned long sent = 0;
        uint64_t now = 1000;
        size_t len;
        uint8_t id[16];
        struct mm_swim *s = big_new("oom", 99, 79, &sent, now);
        uint8_t *st = big_state(8, 1, MM_SWIM_FAILED, &len);
        mm__alloc_fail_after(k);
        (void)mm__swim_state_merge(s, st, len, now);
        mm__alloc_fail_after(0);
        free(st);
        assert_int_equal(mm__swim_check(s), 0);
        int failed = 0, bare = 0;
        for (uint32_t j = 2; j < 8; j += 2) {
            idx_id(id, j);
            const struct mm_swim_member *m = mm__swim_find(s, id);
            if (!m) continue;
            assert_int_equal(m->state, MM_SWIM_FAILED);
            failed++;
            bare += m->susp == NULL;
        }
        if (failed == 3) whole++;
        /* Reaped after reconnect_timeout, re-probe state or not. */
        const uint64_t end = now + 10000;
        for (int guard = 0; mm__swim_deadline(s) <= end; guard++) {
            assert_true(guard < 100000);
            uint64_t d = mm__swim_deadline(s);
            if (d > now) now = d;
            mm__swim_tick(s, now);
            assert_int_equal(mm__swim_check(s), 0);
        }
        for (uint32_t j = 2; j < 8; j += 2) {
            idx_id(id, j);
            const struct mm_swim_member *m = mm__swim_find(s, id);
            assert_true(!m || m->tombstone);
        }
        anybare += bare > 0;
        mm__swim_free(s);
    }
    assert_true(whole > 0);
    assert_true(anybare > 0); /* the sweep reached it */
}

static void
test_swim_index_many_members(void **state)
{
    (void)state;
    enum { N = 5000 };
    unsigned long sent = 0;
    uint64_t now = 1000;
    size_t len;
    uint8_t id[16];
    struct mm_swim *s = big_new("big", N + 1, 77, &sent, now);

    uint8_t *st = big_state(N, 1, MM_SWIM_ALIVE, &len);
    assert_int_equal(mm__swim_state_merge(s, st, len, now), 0);
    free(st);
    assert_int_equal(mm__swim_count(s, MM_SWIM_NONE), N + 1);
    assert_int_equal(mm__swim_check(s), 0);
    for (uint32_t k = 0; k < N; k++) {
        char name[32];
        idx_id(id, k);
        const struct mm_swim_member *m = mm__swim_find(s, id);
        snprintf(name, sizeof(name), "m%u", (unsigned)k);
        assert_non_null(m);
        assert_string_equal(m->rec->name, name);
        assert_string_equal(m->rec->tags, big_tags(k));
        assert_null((m->susp ? m->susp->confirmers : NULL));
    }
    idx_id(id, N + 2);
    assert_null(mm__swim_find(s, id));

    /* The sender suspects the even ones: 2 500 suspicions, each with its
     * confirmer list. */
    st = big_state(N, 1, MM_SWIM_SUSPECT, &len);
    assert_int_equal(mm__swim_state_merge(s, st, len, now), 0);
    free(st);
    assert_true(mm__swim_count(s, MM_SWIM_SUSPECT) >= N / 2);
    idx_id(id, 2);
    assert_non_null(mm__swim_find(s, id)->susp->confirmers);
    assert_int_equal(mm__swim_check(s), 0);

    /* Nobody answers: the suspicions run out (at most the longest
     * timeout), the suspects fail, are reaped and then dropped from the
     * table for good; the deadline walks there in order and never lies. */
    uint64_t mn, mx;
    mm__swim_suspicion_bounds(s, &mn, &mx);
    uint64_t end = now + mx + 4000 + 1000;
    for (int guard = 0;; guard++) {
        assert_true(guard < 200000);
        uint64_t d = mm__swim_deadline(s);
        assert_true(d > now || guard == 0);
        if (d > end) break;
        if (d > now) now = d;
        mm__swim_tick(s, now);
        assert_int_equal(mm__swim_check(s), 0);
    }
    for (uint32_t k = 0; k < N; k += 2) {
        idx_id(id, k);
        assert_null(mm__swim_find(s, id));
    }
    assert_true(mm__swim_count(s, MM_SWIM_NONE) <= N / 2 + 1);
    assert_true(sent > 0);

    /* They come back (a new generation): found again, in a table whose
     * entries were removed and shifted thousands of times.  (Odd ones
     * our probes found silent may be gone too: not looked at.) */
    st = big_state(N, 2, MM_SWIM_ALIVE, &len);
    assert_int_equal(mm__swim_state_merge(s, st, len, now), 0);
    free(st);
    assert_int_equal(mm__swim_check(s), 0);
    for (uint32_t k = 0; k < N; k += 2) {
        idx_id(id, k);
        const struct mm_swim_member *m = mm__swim_find(s, id);
        assert_non_null(m);
        assert_int_equal(m->state, MM_SWIM_ALIVE);
        assert_string_equal(m->rec->tags, big_tags(k));
        assert_int_equal(m->rec->generation, 2);
    }
    /* Tags change and go, out of line. */
    assert_int_equal(mm__swim_set_tags(s, "a=1", now), 0);
    assert_string_equal(mm__swim_self(s)->rec->tags, "a=1");
    assert_int_equal(mm__swim_set_tags(s, NULL, now), 0);
    assert_string_equal(mm__swim_self(s)->rec->tags, "");
    mm__swim_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swim_idx_model),
        cmocka_unit_test(test_swim_pool_shared_records),
        cmocka_unit_test(test_swim_index_many_members),
        cmocka_unit_test(test_swim_walk_stops_after_128_pages),
        cmocka_unit_test(test_swim_member_table_full),
        cmocka_unit_test(test_swim_probe_ack),
        cmocka_unit_test(test_swim_indirect_ack_keeps_alive),
        cmocka_unit_test(test_swim_nack_raises_awareness),
        cmocka_unit_test(test_swim_heard_during_probe_not_suspected),
        cmocka_unit_test(test_swim_late_probe_step_not_a_suspicion),
        cmocka_unit_test(test_swim_late_probe_end_reads_answers_first),
        cmocka_unit_test(test_swim_suspicion_formula),
        cmocka_unit_test(test_swim_suspicion_expiry_max),
        cmocka_unit_test(test_swim_suspicion_out_of_memory),
        cmocka_unit_test(test_swim_failed_member_out_of_memory),
        cmocka_unit_test(test_swim_suspicion_confirmations_shorten),
        cmocka_unit_test(test_swim_buddy_refutation),
        cmocka_unit_test(test_swim_retransmit_limit),
        cmocka_unit_test(test_swim_probe_order_covers_all),
        cmocka_unit_test(test_swim_newer_generation_replaces),
        cmocka_unit_test(test_swim_forged_alive_rejected),
        cmocka_unit_test(test_swim_signed_refutation),
        cmocka_unit_test(test_swim_forged_leave_rejected),
        cmocka_unit_test(test_swim_unknown_leave_ignored_unchecked),
        cmocka_unit_test(test_swim_replay_no_rollback),
        cmocka_unit_test(test_swim_signature_cost),
        cmocka_unit_test(test_swim_record_golden_vector),
        cmocka_unit_test(test_swim_digest_mismatch_want_sync_once),
        cmocka_unit_test(test_swim_digest_pulls_back_off),
        cmocka_unit_test(test_swim_decode_rejects_truncation),
        cmocka_unit_test(test_swim_force_leave_and_reap),
        cmocka_unit_test(test_swim_tombstones_freed),
        cmocka_unit_test(test_swim_state_roundtrip_converges),
        cmocka_unit_test(test_swim_news_gossiped_soon),
        cmocka_unit_test(test_swim_state_merge_steps_count_checks),
        cmocka_unit_test(test_swim_pull_walks_a_fuller_table),
        cmocka_unit_test(test_swim_walk_ends_when_a_page_does_not_move),
        cmocka_unit_test(test_swim_state_paged),
        cmocka_unit_test(test_swim_leave_times_out_alone_acks),
        cmocka_unit_test(test_swim_leave_told_to_many),
        cmocka_unit_test(test_swim_seed_retry_backoff),
        cmocka_unit_test(test_swim_sim_5_converge_and_detect),
        cmocka_unit_test(test_swim_sim_32_converge_and_detect),
        cmocka_unit_test(test_swim_sim_loss_no_false_failures),
        cmocka_unit_test(test_swim_leave_seen_as_left),
        cmocka_unit_test(test_swim_partition_heals),
        cmocka_unit_test(test_swim_stale_verdicts_after_heal_no_flap),
        cmocka_unit_test(test_swim_verdict_about_member_heard_lately),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    keys_free();
    return rc;
}
