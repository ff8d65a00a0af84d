/*
 * main.c — murmer-sim: N nodes of the real SWIM core (lib/membership/swim.c)
 * and the real registry core (lib/oplog.c) in one process, over a simulated
 * network and clock.  Discrete events in one priority queue ordered by
 * (time, sequence number); every random choice comes from one generator
 * seeded by --seed, so one seed replays one run bit for bit (the trace
 * digest printed at the end folds every event in).  No threads, no sleeps,
 * no wall clock inside the run.
 *
 * What is real: the SWIM core, its packets (byte for byte), its push-pull
 * payloads, the oplog core and its batches.  What is a model: the network
 * (latency, loss, partitions, one-way cuts; the seal adds its overhead to
 * the byte counts but is not computed), the signatures (a keyed hash, see
 * sim_sign), and the registry's transport: records a node applies are pushed
 * to a few random live members (fanout SIM_PUSH_FANOUT) and a digest-first
 * anti-entropy round runs every MM_OPLOG_ANTI_ENTROPY_MS; QUIC streams are
 * reliable (no loss) but cut by partitions.
 *
 * With MURMER_SIM_HEAP set in the environment, a run also prints the heap
 * in use at its end and how much of it the SWIM cores (with their record
 * pool) and the oplogs held (mallinfo2 before and after freeing each).
 *
 * Exit status: 0 all runs held every invariant, 1 an invariant was violated
 * (the line says seed, scenario, simulated time and invariant), 2 usage or
 * scenario error.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core.h"
#include "membership/seal.h"
#include "membership/swim.h"
#include "murmer.h"
#include "oplog.h"
#include "sim.h"

#define SIM_PUSH_FANOUT 3
#define SIM_PUSH_MS 200u
#define SIM_BATCH_MAX (64u * 1024u)
#define SIM_CHECK_MS 250u
#define SIM_PORT 7946
#define SIM_QUIC_OVERHEAD 60u /* per message: headers of a QUIC packet */

enum ev_kind {
    EV_PKT = 1, /* a SWIM datagram a -> b */
    EV_TICK,    /* node a's deadline */
    EV_SYNC,    /* push-pull a <-> b, reported back to a */
    EV_PUSH,    /* node a flushes its outbox of applied records */
    EV_AE,      /* node a starts an anti-entropy round */
    EV_AE_MSG,  /* an anti-entropy step a -> b (step in ver) */
    EV_BATCH,   /* a pushed batch a -> b */
    EV_ACT,     /* scenario action a */
    EV_START,   /* start node a */
    EV_CHURN,   /* churn step of action a */
    EV_CHECK    /* invariants */
};

struct ev {
    uint64_t at, seq;
    int kind, a, b;
    uint32_t ver, len;
    uint8_t *buf;
};

struct node {
    struct mm_swim *s;
    mm__oplog *o;
    uint64_t gen;
    int up, churned, detect_pending;
    uint8_t id[16], pub[32];
    uint64_t sched; /* deadline a tick event is queued for; UINT64_MAX: none
                       (0 is a deadline: a node started at 0 may be due) */
    uint32_t tick_ver, life; /* life: bumps on kill and restart */
    int group;
    uint64_t disturbed_until;
    long view_live;     /* members it sees alive or suspect */
    long alive_seen_by; /* live nodes that see it alive or suspect */
    uint64_t killed_at;
    struct mm__oplog_batch out; /* applied records not yet pushed */
    int push_armed;
    /* mm__oplog_registry_hash(o) as last computed (O(labels)), valid
     * until a call that may change the registry sets reg_dirty. */
    uint64_t reg_hash;
    int reg_dirty;
};

struct cut {
    int alo, ahi, blo, bhi;
};

struct sim {
    const struct sim_scenario *sc;
    uint64_t seed, rng, now, seq;
    int n, nlive;
    struct node *nodes;
    struct ev *heap;
    size_t nheap, capheap;
    double loss;
    uint32_t lat_min, lat_max;
    struct cut *cuts;
    size_t ncuts;
    int partitioned;
    int drop_lo, drop_hi; /* undeclared fault (SIM_DROP) */
    uint64_t loss_until;  /* loss in force, or its grace after */
    uint64_t last_disturb, grace;
    uint64_t trace;
    struct mm_swim_pool *pool; /* the records of every node's core */
    uint64_t events;
    /* figures */
    uint64_t bytes, swim_bytes, node_ms, last_t;
    uint64_t steady_bytes, steady_node_ms;
    uint64_t steady_swim, steady_pp; /* of steady_bytes: datagrams, push-pull */
    int steady, measure;             /* measure: a scenario set the window */
    uint64_t fp, part_verdicts;
    uint64_t join_last; /* launch time of the newest start wave */
    int join_watch, reg_watch;
    int64_t join_conv_ms, reg_conv_ms; /* -1: not yet */
    uint64_t *detect;
    size_t ndetect;
    int violated, settling;
    uint64_t end_at;
    int quiet;
};

/* ---- helpers ------------------------------------------------------------ */

static uint64_t
mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t
rnd(struct sim *S)
{
    S->rng = mix64(S->rng);
    return S->rng;
}

static uint64_t
rnd_below(struct sim *S, uint64_t n)
{
    return n ? rnd(S) % n : 0;
}

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

static void
die_oom(void)
{
    fprintf(stderr, "murmer-sim: out of memory\n");
    exit(2);
}

static void
id_of(struct sim *S, int i, uint8_t id[16])
{
    (void)S;
    uint64_t r = mix64((uint64_t)i);
    id[0] = 'S';
    id[1] = 'M';
    id[2] = (uint8_t)(i >> 24);
    id[3] = (uint8_t)(i >> 16);
    id[4] = (uint8_t)(i >> 8);
    id[5] = (uint8_t)i;
    memcpy(id + 6, &r, 8);
    id[14] = id[15] = 0x5A;
}

static int
idx_of_id(const struct sim *S, const uint8_t *id)
{
    if (id[0] != 'S' || id[1] != 'M') return -1;
    int i = (int)((uint32_t)id[2] << 24 | (uint32_t)id[3] << 16 |
                  (uint32_t)id[4] << 8 | id[5]);
    if (i < 0 || i >= S->n || memcmp(S->nodes[i].id, id, 16) != 0) return -1;
    return i;
}

static struct mm_swim_addr
addr_of(int i)
{
    struct mm_swim_addr a;
    memset(&a, 0, sizeof(a));
    a.family = 4;
    a.ip[0] = 10;
    a.ip[1] = (uint8_t)(i >> 16);
    a.ip[2] = (uint8_t)(i >> 8);
    a.ip[3] = (uint8_t)i;
    a.port = SIM_PORT;
    return a;
}

static int
idx_of_addr(const struct sim *S, const struct mm_swim_addr *a)
{
    if (a->family != 4 || a->ip[0] != 10 || a->port != SIM_PORT) return -1;
    int i = a->ip[1] << 16 | a->ip[2] << 8 | a->ip[3];
    return i < S->n ? i : -1;
}

/* ---- the event queue ---------------------------------------------------- */

static int
ev_less(const struct ev *x, const struct ev *y)
{
    return x->at < y->at || (x->at == y->at && x->seq < y->seq);
}

static void
ev_push(struct sim *S, uint64_t at, int kind, int a, int b, uint32_t ver,
        uint8_t *buf, uint32_t len)
{
    if (S->nheap == S->capheap) {
        S->capheap = S->capheap ? S->capheap * 2 : 1024;
        S->heap = realloc(S->heap, S->capheap * sizeof(*S->heap));
        if (!S->heap) die_oom();
    }
    struct ev e = {
        at < S->now ? S->now : at, S->seq++, kind, a, b, ver, len, buf};
    size_t i = S->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&e, &S->heap[p])) break;
        S->heap[i] = S->heap[p];
        i = p;
    }
    S->heap[i] = e;
}

static struct ev
ev_pop(struct sim *S)
{
    struct ev top = S->heap[0], last = S->heap[--S->nheap];
    size_t i = 0, n = S->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ev_less(&S->heap[c + 1], &S->heap[c])) c++;
        if (!ev_less(&S->heap[c], &last)) break;
        S->heap[i] = S->heap[c];
        i = c;
    }
    if (n) S->heap[i] = last;
    return top;
}

/* ---- the network -------------------------------------------------------- */

static int
in_range(int i, int lo, int hi)
{
    return i >= lo && i < hi;
}

static int
link_ok(const struct sim *S, int a, int b)
{
    if (S->nodes[a].group != S->nodes[b].group) return 0;
    for (size_t k = 0; k < S->ncuts; k++) {
        const struct cut *c = &S->cuts[k];
        if (in_range(a, c->alo, c->ahi) && in_range(b, c->blo, c->bhi))
            return 0;
    }
    return 1;
}

static uint64_t
latency(struct sim *S)
{
    return S->lat_min + rnd_below(S, (uint64_t)(S->lat_max - S->lat_min) + 1);
}

static int
lost(struct sim *S)
{
    return S->loss > 0 && (double)rnd_below(S, 1000000) < S->loss * 10000.0;
}

static uint8_t *
dup_buf(const void *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    if (!b) die_oom();
    if (n) memcpy(b, p, n);
    return b;
}

static void violation(struct sim *S, const char *inv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
violation(struct sim *S, const char *inv, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    printf("VIOLATION seed=%" PRIu64 " scenario=%s nodes=%d t=%.3fs "
           "invariant=%s: %s\n",
           S->seed, S->sc->path, S->n, (double)S->now / 1000.0, inv, msg);
    fflush(stdout);
    S->violated = 1;
}

static int
disturbed(const struct sim *S, int i)
{
    return S->nodes[i].disturbed_until > S->now;
}

/* ---- the cores' callbacks ---------------------------------------------- */

struct cbctx {
    struct sim *S;
    int idx;
};
static struct cbctx *ctxs;

static void
refresh(struct sim *S, int i)
{
    struct node *nd = &S->nodes[i];
    if (!nd->up) return;
    uint64_t d = mm__swim_deadline(nd->s);
    if (d == UINT64_MAX || d == nd->sched) return;
    nd->sched = d;
    ev_push(S, d, EV_TICK, i, 0, ++nd->tick_ver, NULL, 0);
}

static void
cb_send(void *data, const struct mm_swim_addr *to, const uint8_t *buf,
        size_t len)
{
    struct cbctx *c = data;
    struct sim *S = c->S;
    int dst = idx_of_addr(S, to);
    uint64_t wire = len + MM_SEAL_OVERHEAD;
    S->bytes += wire;
    S->swim_bytes += wire;
    if (S->steady) {
        S->steady_bytes += wire;
        S->steady_swim += wire;
    }
    if (dst < 0 || !link_ok(S, c->idx, dst) || lost(S)) return;
    if (in_range(dst, S->drop_lo, S->drop_hi)) return;
    ev_push(S, S->now + latency(S), EV_PKT, c->idx, dst, 0, dup_buf(buf, len),
            (uint32_t)len);
}

static int
live_state(int st)
{
    return st == MM_SWIM_ALIVE || st == MM_SWIM_SUSPECT;
}

static void
cb_changed(void *data, const struct mm_swim_member *m, int was)
{
    struct cbctx *c = data;
    struct sim *S = c->S;
    struct node *v = &S->nodes[c->idx];
    int x = idx_of_id(S, m->rec->id);
    int d = live_state(m->state) - live_state(was);
    v->view_live += d;
    if (x >= 0) S->nodes[x].alive_seen_by += d;
    if (v->o && !m->is_self) {
        mm__oplog_set_origin_state(v->o, m->rec->id, m->rec->generation,
                                   m->state);
        v->reg_dirty = 1;
    }
    if (x < 0 || x == c->idx || was == m->state) return;
    if ((m->state == MM_SWIM_FAILED || m->state == MM_SWIM_LEFT) &&
        S->nodes[x].up && m->rec->generation == S->nodes[x].gen) {
        if (disturbed(S, c->idx) || disturbed(S, x))
            S->part_verdicts++;
        else if (S->loss_until > S->now)
            S->fp++;
        else
            violation(S, "no-false-failure",
                      "node %d declared live node %d %s without loss or "
                      "partition",
                      c->idx, x, mm__swim_state_name(m->state));
    }
}

static void
cb_want_sync(void *data, const struct mm_swim_member *peer)
{
    struct cbctx *c = data;
    struct sim *S = c->S;
    int b = idx_of_addr(S, &peer->rec->addr);
    ev_push(S, S->now + latency(S) + latency(S), EV_SYNC, c->idx, b,
            S->nodes[c->idx].life, NULL, 0);
}

/*
 * Stand-in signatures: a keyed hash of the message under the public key.
 * A node's "public key" is its id followed by 16 bytes; verify checks that
 * the key belongs to the id and the hash matches.  Deterministic and cheap;
 * it proves nothing cryptographically (the simulator checks the protocol).
 */
static void
sim_mac(const uint8_t pub[32], const uint8_t *msg, size_t len, uint8_t sig[64])
{
    uint64_t h = fnv(0xCBF29CE484222325ull, pub, 32);
    h = fnv(h, msg, len);
    for (int i = 0; i < 8; i++) {
        uint64_t w = mix64(h + (uint64_t)i);
        memcpy(sig + 8 * i, &w, 8);
    }
}

static int
cb_sign(void *data, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    struct cbctx *c = data;
    sim_mac(c->S->nodes[c->idx].pub, msg, len, sig);
    return 0;
}

static int
cb_verify(void *data, const uint8_t id[16], const uint8_t pub[32],
          const uint8_t *msg, size_t len, const uint8_t sig[64])
{
    uint8_t want[64];
    (void)data;
    if (memcmp(pub, id, 16) != 0) return -1;
    sim_mac(pub, msg, len, want);
    return memcmp(want, sig, 64) != 0;
}

/* The oplog asks membership about an origin that held nothing so far. */
static int
cb_member(void *data, const uint8_t id[MM_NODE_ID_LEN], uint64_t *generation,
          int *state)
{
    struct cbctx *c = data;
    struct node *nd = &c->S->nodes[c->idx];
    const struct mm_swim_member *m = nd->s ? mm__swim_find(nd->s, id) : NULL;
    if (m == NULL) return -1;
    *generation = m->rec->generation;
    *state = m->state; /* enum mm_swim_state matches enum mm__oplog_state */
    return 0;
}

static void
cb_applied(void *data, const uint8_t *rec, size_t len, int local)
{
    struct cbctx *c = data;
    struct sim *S = c->S;
    struct node *nd = &S->nodes[c->idx];
    (void)local;
    if (nd->out.len + len + 16 > SIM_BATCH_MAX) return; /* anti-entropy */
    if (mm__oplog_batch_add(&nd->out, rec, len) != 0) die_oom();
    if (!nd->push_armed) {
        nd->push_armed = 1;
        ev_push(S, S->now + SIM_PUSH_MS, EV_PUSH, c->idx, 0, nd->life, NULL, 0);
    }
}

/* ---- node life ---------------------------------------------------------- */

static void
node_start(struct sim *S, int i)
{
    struct node *nd = &S->nodes[i];
    if (nd->up) return;
    nd->gen++;
    nd->life++;
    nd->up = 1;
    nd->view_live = 0;
    nd->sched = UINT64_MAX;
    nd->detect_pending = 0;
    S->nlive++;
    struct mm__oplog_cbs ocb = {NULL, cb_applied, &ctxs[i]};
    mm__oplog_batch_init(&nd->out);
    nd->push_armed = 0;
    if (mm__oplog_new(&nd->o, nd->id, nd->gen, &ocb) != 0) die_oom();
    mm__oplog_set_member_lookup(nd->o, cb_member, &ctxs[i]);
    nd->reg_dirty = 1;
    struct mm_swim_config cfg;
    char name[32];
    mm__swim_config_init(&cfg);
    snprintf(name, sizeof(name), "n%d", i);
    cfg.name = name;
    memcpy(cfg.id, nd->id, 16);
    memcpy(cfg.pub, nd->pub, 32);
    cfg.addr = addr_of(i);
    cfg.generation = nd->gen;
    cfg.seed = mix64(S->seed ^ mix64((uint64_t)i << 20 ^ nd->gen)) | 1;
    cfg.pool = S->pool; /* one copy of each record for all the nodes */
    struct mm_swim_ops ops = {&ctxs[i],     cb_send, cb_changed,
                              cb_want_sync, cb_sign, cb_verify};
    if (mm__swim_new(&nd->s, &cfg, &ops, S->now) != 0) die_oom();
    long have = (long)(mm__swim_count(nd->s, MM_SWIM_ALIVE) +
                       mm__swim_count(nd->s, MM_SWIM_SUSPECT));
    /* Self, when new() did not report it. */
    nd->alive_seen_by += have - nd->view_live;
    nd->view_live = have;
    if (i != 0) {
        struct mm_swim_addr seed = addr_of(0);
        mm__swim_join(nd->s, &seed, S->now);
    }
    char label[64];
    /* The labelled nodes spread evenly over the indexes. */
    int pct = S->sc->labelled_pct;
    int labelled = ((i + 1) * pct) / 100 > (i * pct) / 100;
    for (int k = 0; labelled && k < S->sc->labels; k++) {
        if (k == 0)
            snprintf(label, sizeof(label), "shared/%d", i % 16);
        else
            snprintf(label, sizeof(label), "n%d/svc%d", i, k);
        uint64_t hlc = (S->now << 16) | (uint64_t)k;
        mm__oplog_register(nd->o, label, "sim", MM_VIS_PUBLIC, (uint64_t)k + 1,
                           NULL, 0, hlc, NULL);
    }
    refresh(S, i);
    ev_push(S, S->now + 1 + rnd_below(S, MM_OPLOG_ANTI_ENTROPY_MS), EV_AE, i, 0,
            nd->life, NULL, 0);
    S->last_disturb = S->now;
}

static int
drop_view(void *data, const struct mm_swim_member *m)
{
    struct sim *S = ((struct cbctx *)data)->S;
    int x = idx_of_id(S, m->rec->id);
    if (x >= 0 && live_state(m->state)) S->nodes[x].alive_seen_by--;
    return 0;
}

static void
node_kill(struct sim *S, int i)
{
    struct node *nd = &S->nodes[i];
    if (!nd->up) return;
    mm__swim_members(nd->s, drop_view, &ctxs[i]);
    mm__swim_free(nd->s);
    mm__oplog_free(nd->o);
    mm__oplog_batch_release(&nd->out);
    nd->s = NULL;
    nd->o = NULL;
    nd->up = 0;
    nd->life++;
    nd->view_live = 0;
    nd->killed_at = S->now;
    nd->detect_pending = 1;
    S->nlive--;
    S->last_disturb = S->now;
}

/* ---- scenario actions --------------------------------------------------- */

static void
kill_pct(struct sim *S, double pct, int mark_churn)
{
    int *cand = malloc(sizeof(int) * (size_t)S->n), nc = 0;
    if (!cand) die_oom();
    for (int i = 1; i < S->n; i++)
        if (S->nodes[i].up) cand[nc++] = i;
    int k = (int)(pct * S->nlive / 100.0 + 0.5);
    if (k < 1 && pct > 0) k = 1;
    if (k > nc) k = nc;
    for (int j = 0; j < k; j++) {
        int r = j + (int)rnd_below(S, (uint64_t)(nc - j));
        int t = cand[j];
        cand[j] = cand[r];
        cand[r] = t;
        node_kill(S, cand[j]);
        S->nodes[cand[j]].churned = mark_churn;
    }
    free(cand);
}

static void
act_run(struct sim *S, const struct sim_action *a, int ai)
{
    int lo, hi;
    switch (a->kind) {
    case SIM_START: {
        sim_range_bounds(&a->r, S->n, &lo, &hi);
        int cnt = hi - lo;
        for (int i = lo; i < hi; i++) {
            uint64_t off =
                cnt > 1 ? a->over * (uint64_t)(i - lo) / (uint64_t)(cnt - 1)
                        : 0;
            ev_push(S, S->now + off, EV_START, i, 0, 0, NULL, 0);
        }
        if (cnt > 0) {
            S->join_last = S->now + a->over;
            S->join_watch = S->reg_watch = 1;
            if (!S->measure) S->steady = 0;
        }
        break;
    }
    case SIM_KILL:
        if (a->by_pct) {
            kill_pct(S, a->pct, 0);
        } else {
            sim_range_bounds(&a->r, S->n, &lo, &hi);
            for (int i = lo; i < hi; i++)
                node_kill(S, i);
        }
        break;
    case SIM_RESTART:
        sim_range_bounds(&a->r, S->n, &lo, &hi);
        for (int i = lo; i < hi; i++)
            if (S->nodes[i].gen) node_start(S, i);
        break;
    case SIM_CHURN:
        ev_push(S, S->now, EV_CHURN, ai, 0, 0, NULL, 0);
        break;
    case SIM_PARTITION:
        for (int i = 0; i < S->n; i++) {
            S->nodes[i].group = 0;
            S->nodes[i].disturbed_until = UINT64_MAX;
        }
        for (int g = 0; g < a->ngroups; g++) {
            sim_range_bounds(&a->groups[g], S->n, &lo, &hi);
            for (int i = lo; i < hi; i++)
                S->nodes[i].group = g + 1;
        }
        S->partitioned = 1;
        break;
    case SIM_CUT: {
        struct cut c;
        sim_range_bounds(&a->groups[0], S->n, &c.alo, &c.ahi);
        sim_range_bounds(&a->groups[1], S->n, &c.blo, &c.bhi);
        S->cuts = realloc(S->cuts, (S->ncuts + 1) * sizeof(*S->cuts));
        if (!S->cuts) die_oom();
        S->cuts[S->ncuts++] = c;
        for (int i = 0; i < S->n; i++)
            if (in_range(i, c.alo, c.ahi) || in_range(i, c.blo, c.bhi))
                S->nodes[i].disturbed_until = UINT64_MAX;
        break;
    }
    case SIM_HEAL:
        for (int i = 0; i < S->n; i++) {
            S->nodes[i].group = 0;
            if (S->nodes[i].disturbed_until == UINT64_MAX)
                S->nodes[i].disturbed_until = S->now + S->grace;
        }
        S->partitioned = 0;
        S->ncuts = 0;
        break;
    case SIM_LOSS:
        S->loss = a->pct;
        S->loss_until = a->pct > 0 ? UINT64_MAX : S->now + S->grace;
        break;
    case SIM_LATENCY:
        S->lat_min = a->lat_min;
        S->lat_max = a->lat_max;
        break;
    case SIM_MEASURE:
        S->measure = 1;
        S->steady = 1;
        S->steady_bytes = S->steady_node_ms = 0;
        S->steady_swim = S->steady_pp = 0;
        return;
    case SIM_DROP:
        sim_range_bounds(&a->r, S->n, &S->drop_lo, &S->drop_hi);
        return;
    }
    S->last_disturb = S->now;
}

static void
churn_step(struct sim *S, int ai)
{
    const struct sim_action *a = &S->sc->acts[ai];
    for (int i = 0; i < S->n; i++)
        if (!S->nodes[i].up && S->nodes[i].churned) {
            S->nodes[i].churned = 0;
            node_start(S, i);
        }
    if (S->now + a->every <= a->until) {
        kill_pct(S, a->pct, 1);
        ev_push(S, S->now + a->every, EV_CHURN, ai, 0, 0, NULL, 0);
    }
}

/* ---- registry transport (a model, see the top) -------------------------- */

/* A random member |a| sees alive, or -1. */
static int
pick_peer(struct sim *S, int a)
{
    for (int t = 0; t < 8; t++) {
        int j = (int)rnd_below(S, (uint64_t)S->n);
        if (j == a || !S->nodes[j].gen) continue;
        const struct mm_swim_member *m =
            mm__swim_find(S->nodes[a].s, S->nodes[j].id);
        if (m && live_state(m->state)) return j;
    }
    return -1;
}

static void
count_quic(struct sim *S, size_t len)
{
    uint64_t w = len + SIM_QUIC_OVERHEAD;
    S->bytes += w;
    if (S->steady) S->steady_bytes += w;
}

/* Sends |buf| over the modelled QUIC stream a -> b (step |step|). */
static void
quic_send(struct sim *S, int kind, int a, int b, uint32_t step, uint8_t *buf,
          size_t len)
{
    count_quic(S, len);
    if (!link_ok(S, a, b)) {
        free(buf);
        return;
    }
    ev_push(S, S->now + latency(S), kind, a, b, step, buf, (uint32_t)len);
}

static void
push_flush(struct sim *S, int a)
{
    struct node *nd = &S->nodes[a];
    nd->push_armed = 0;
    if (nd->out.count == 0) return;
    if (mm__oplog_batch_finish(&nd->out) != 0) die_oom();
    for (int f = 0; f < SIM_PUSH_FANOUT; f++) {
        int b = pick_peer(S, a);
        if (b >= 0)
            quic_send(S, EV_BATCH, a, b, 0, dup_buf(nd->out.buf, nd->out.len),
                      nd->out.len);
    }
    mm__oplog_batch_release(&nd->out);
    mm__oplog_batch_init(&nd->out);
}

static uint8_t *
vector_of(mm__oplog *o, size_t *len)
{
    size_t n = mm__oplog_vector_size(o);
    uint8_t *v = malloc(n ? n : 1);
    if (!v) die_oom();
    long w = mm__oplog_vector_encode(o, v, n);
    if (w < 0) die_oom();
    *len = (size_t)w;
    return v;
}

static void
apply(struct sim *S, int at, const uint8_t *buf, size_t len)
{
    int rc = mm__oplog_apply_batch(S->nodes[at].o, buf, len, NULL);
    S->nodes[at].reg_dirty = 1;
    if (rc != 0)
        violation(S, "registry-batch", "node %d could not apply a batch: %d",
                  at, rc);
}

/* A batch with what the owner of |vec| lacks, for |o|. */
static uint8_t *
missing_for(mm__oplog *o, const uint8_t *vec, size_t vlen, size_t *len)
{
    struct mm__oplog_batch b;
    mm__oplog_batch_init(&b);
    long n = mm__oplog_missing_batch(o, vec, vlen, SIM_BATCH_MAX, &b);
    if (n < 0 || mm__oplog_batch_finish(&b) != 0) die_oom();
    uint8_t *out = dup_buf(b.buf, b.len);
    *len = b.len;
    mm__oplog_batch_release(&b);
    return out;
}

/*
 * Anti-entropy, digest first: 1 a -> b digest; 2 b -> a its vector (on a
 * mismatch); 3 a -> b (u32 len | batch b lacks | a's vector); 4 b -> a the
 * batch a lacks.  |a| is the initiator in every step's event.
 */
static void
ae_msg(struct sim *S, struct ev *e)
{
    int a = e->a, b = e->b;
    struct node *na = &S->nodes[a], *nb = &S->nodes[b];
    switch (e->ver) {
    case 1: {
        uint64_t d;
        if (!nb->up || e->len != 8) return;
        memcpy(&d, e->buf, 8);
        if (d == mm__oplog_digest(nb->o)) return;
        size_t vl;
        uint8_t *v = vector_of(nb->o, &vl);
        count_quic(S, vl);
        if (link_ok(S, b, a))
            ev_push(S, S->now + latency(S), EV_AE_MSG, a, b, 2, v,
                    (uint32_t)vl);
        else
            free(v);
        return;
    }
    case 2: {
        if (!na->up) return;
        size_t bl, vl;
        uint8_t *batch = missing_for(na->o, e->buf, e->len, &bl);
        uint8_t *v = vector_of(na->o, &vl);
        uint8_t *m = malloc(4 + bl + vl);
        if (!m) die_oom();
        uint32_t l32 = (uint32_t)bl;
        memcpy(m, &l32, 4);
        memcpy(m + 4, batch, bl);
        memcpy(m + 4 + bl, v, vl);
        free(batch);
        free(v);
        count_quic(S, 4 + bl + vl);
        if (link_ok(S, a, b))
            ev_push(S, S->now + latency(S), EV_AE_MSG, a, b, 3, m,
                    (uint32_t)(4 + bl + vl));
        else
            free(m);
        return;
    }
    case 3: {
        uint32_t bl;
        if (!nb->up) return;
        memcpy(&bl, e->buf, 4);
        apply(S, b, e->buf + 4, bl);
        size_t ml;
        uint8_t *batch =
            missing_for(nb->o, e->buf + 4 + bl, e->len - 4 - bl, &ml);
        count_quic(S, ml);
        if (link_ok(S, b, a))
            ev_push(S, S->now + latency(S), EV_AE_MSG, a, b, 4, batch,
                    (uint32_t)ml);
        else
            free(batch);
        return;
    }
    case 4:
        if (na->up) apply(S, a, e->buf, e->len);
        return;
    }
}

/* ---- invariants --------------------------------------------------------- */

static int
views_converged(struct sim *S)
{
    uint64_t dg = 0;
    int first = 1;
    for (int i = 0; i < S->n; i++) {
        struct node *nd = &S->nodes[i];
        if (nd->up) {
            if (nd->view_live != S->nlive) return 0;
        } else if (nd->alive_seen_by != 0) {
            return 0;
        }
    }
    for (int i = 0; i < S->n; i++) {
        if (!S->nodes[i].up) continue;
        uint64_t d = mm__swim_digest(S->nodes[i].s);
        if (first) {
            dg = d;
            first = 0;
        } else if (d != dg) {
            return 0;
        }
    }
    return 1;
}

static uint64_t
reg_hash_of(struct sim *S, int i)
{
    struct node *nd = &S->nodes[i];
    if (nd->reg_dirty) {
        nd->reg_hash = mm__oplog_registry_hash(nd->o);
        nd->reg_dirty = 0;
    }
    return nd->reg_hash;
}

static int
registry_converged(struct sim *S)
{
    uint64_t h = 0;
    int first = 1;
    for (int i = 0; i < S->n; i++) {
        if (!S->nodes[i].up) continue;
        uint64_t d = reg_hash_of(S, i);
        if (first) {
            h = d;
            first = 0;
        } else if (d != h) {
            return 0;
        }
    }
    return 1;
}

static int
cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* --progress: while a join is watched, a line per check on stderr (live
 * nodes, the fewest members a live node lists alive, nodes that list every
 * live node alive, pulls and signature checks so far). */
static int sim_progress;

static void
progress(struct sim *S)
{
    size_t fewest = SIZE_MAX, complete = 0, live = 0;
    uint64_t pulls = 0, verified = 0;
    for (int i = 0; i < S->n; i++)
        live += S->nodes[i].up != 0;
    for (int i = 0; i < S->n; i++) {
        if (!S->nodes[i].up) continue;
        size_t l = mm__swim_count(S->nodes[i].s, MM_SWIM_ALIVE);
        if (l < fewest) fewest = l;
        complete += l >= live;
        pulls += mm__swim_stats(S->nodes[i].s)->syncs;
        verified += mm__swim_stats(S->nodes[i].s)->verified;
    }
    fprintf(stderr,
            "progress t=%.2f live=%zu fewest_alive=%zu complete=%zu "
            "pulls=%" PRIu64 " verified=%" PRIu64 "\n",
            (double)S->now / 1000.0, live, live ? fewest : 0, complete, pulls,
            verified);
}

static void
check(struct sim *S)
{
    /* Kill detection: every live node sees the victim not alive. */
    for (int i = 0; i < S->n; i++) {
        struct node *nd = &S->nodes[i];
        if (nd->up || !nd->detect_pending || nd->alive_seen_by != 0) continue;
        nd->detect_pending = 0;
        S->detect = realloc(S->detect, (S->ndetect + 1) * sizeof(uint64_t));
        if (!S->detect) die_oom();
        S->detect[S->ndetect++] = S->now - nd->killed_at;
    }
    if (sim_progress && S->join_watch) progress(S);
    int calm = !S->partitioned && S->ncuts == 0 && S->loss == 0;
    int views = -1;
    if (S->join_watch && S->now >= S->join_last) {
        views = views_converged(S);
        if (views) {
            S->join_watch = 0;
            S->join_conv_ms = (int64_t)(S->now - S->join_last);
            if (!S->measure) S->steady = 1;
        }
    }
    if (S->reg_watch && !S->join_watch && S->now >= S->join_last) {
        if (registry_converged(S)) {
            S->reg_watch = 0;
            S->reg_conv_ms = (int64_t)(S->now - S->join_last);
        }
    }
    if (calm && S->now >= S->last_disturb + S->sc->settle_ms) {
        if (views < 0) views = views_converged(S);
        if (!views)
            violation(S, "views-converge",
                      "membership views differ %" PRIu64
                      " s after the last disturbance",
                      (S->now - S->last_disturb) / 1000);
        else if (!registry_converged(S))
            violation(S, "registry-hash",
                      "registry hashes differ on live nodes %" PRIu64
                      " s after the last disturbance",
                      (S->now - S->last_disturb) / 1000);
        else if (S->settling)
            S->end_at = S->now; /* settled: the run is over */
    }
    if (S->settling && S->end_at > S->now && calm) {
        if (views < 0) views = views_converged(S);
        if (views && registry_converged(S)) S->end_at = S->now;
    }
}

/* ---- the run ------------------------------------------------------------ */

struct result {
    uint64_t trace, events, sim_ms;
    double wall_s;
    int violated;
};

/* |h| with |n| bytes folded in 8 at a time (the payloads are most of a
 * run's bytes). */
static uint64_t
fold_bytes(uint64_t h, const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001B3ull;
        h ^= h >> 29;
    }
    return fnv(h, p + i, n - i);
}

static void
fold(struct sim *S, const struct ev *e)
{
    uint64_t h = S->trace;
    uint64_t w[4] = {e->at, (uint64_t)e->kind,
                     (uint64_t)e->a << 32 | (uint32_t)e->b,
                     (uint64_t)e->ver << 32 | e->len};
    h = fnv(h, w, sizeof(w));
    if (e->buf) h = fold_bytes(h, e->buf, e->len);
    S->trace = h;
}

static int
run_one(const struct sim_scenario *sc, int n, uint64_t seed, int quiet,
        struct result *res)
{
    struct sim S0, *S = &S0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(S, 0, sizeof(*S));
    S->sc = sc;
    S->seed = seed;
    S->rng = mix64(seed ^ 0x51D5EEDull);
    S->n = n;
    S->now = 0;
    S->lat_min = 2;
    S->lat_max = 10;
    S->grace = sc->settle_ms;
    S->trace = 0xCBF29CE484222325ull;
    S->join_conv_ms = S->reg_conv_ms = -1;
    S->quiet = quiet;
    S->end_at = UINT64_MAX;
    if (mm__swim_pool_new(&S->pool) != 0) die_oom();
    S->nodes = calloc((size_t)n, sizeof(*S->nodes));
    ctxs = calloc((size_t)n, sizeof(*ctxs));
    if (!S->nodes || !ctxs) die_oom();
    for (int i = 0; i < n; i++) {
        ctxs[i].S = S;
        ctxs[i].idx = i;
        id_of(S, i, S->nodes[i].id);
        memcpy(S->nodes[i].pub, S->nodes[i].id, 16);
        uint64_t k = mix64((uint64_t)i * 31 + 7);
        memcpy(S->nodes[i].pub + 16, &k, 8);
        memcpy(S->nodes[i].pub + 24, &k, 8);
    }
    for (size_t i = 0; i < sc->nacts; i++)
        ev_push(S, sc->acts[i].at, EV_ACT, (int)i, 0, 0, NULL, 0);
    ev_push(S, SIM_CHECK_MS, EV_CHECK, 0, 0, 0, NULL, 0);
    while (S->nheap && !S->violated) {
        struct ev e = ev_pop(S);
        if (e.at >= S->end_at) {
            free(e.buf);
            break;
        }
        if (!S->settling && e.at >= sc->run_ms) {
            /* The run is over: stop loss; settle if healed. */
            S->now = sc->run_ms;
            S->steady = 0;
            if (S->partitioned || S->ncuts) {
                S->end_at = sc->run_ms;
            } else {
                S->settling = 1;
                if (S->loss > 0) {
                    S->loss = 0;
                    S->loss_until = S->now + S->grace;
                    S->last_disturb = S->now;
                }
                S->end_at = S->now + sc->settle_ms + 2 * SIM_CHECK_MS;
            }
            if (e.at >= S->end_at) {
                free(e.buf);
                break;
            }
        }
        if (e.at > S->now) {
            S->node_ms += (uint64_t)S->nlive * (e.at - S->now);
            if (S->steady)
                S->steady_node_ms += (uint64_t)S->nlive * (e.at - S->now);
            S->now = e.at;
        }
        S->events++;
        struct node *na = e.a >= 0 && e.a < n ? &S->nodes[e.a] : NULL;
        switch (e.kind) {
        case EV_PKT:
            if (!S->nodes[e.b].up) break;
            fold(S, &e);
            {
                struct mm_swim_addr from = addr_of(e.a);
                mm__swim_recv(S->nodes[e.b].s, &from, e.buf, e.len, S->now);
            }
            refresh(S, e.b);
            break;
        case EV_TICK:
            if (!na->up || e.ver != na->tick_ver) break;
            fold(S, &e);
            na->sched = UINT64_MAX;
            mm__swim_tick(na->s, S->now);
            refresh(S, e.a);
            break;
        case EV_SYNC: {
            if (!na->up || e.ver != na->life) break;
            fold(S, &e);
            int b = e.b;
            if (b < 0 || !S->nodes[b].up || !link_ok(S, e.a, b) ||
                !link_ok(S, b, e.a)) {
                mm__swim_sync_done(na->s, S->now);
                refresh(S, e.a);
                break;
            }
            struct mm_swim *sa = na->s, *sb = S->nodes[b].s;
            size_t la = mm__swim_state_encode(sa, NULL, 0);
            uint8_t *pa = malloc(la ? la : 1);
            if (!pa) die_oom();
            mm__swim_state_encode(sa, pa, la);
            mm__swim_state_merge(sb, pa, la, S->now);
            mm__swim_state_serve(sb, pa, la);
            size_t lb = mm__swim_state_encode(sb, NULL, 0);
            uint8_t *pb = malloc(lb ? lb : 1);
            if (!pb) die_oom();
            mm__swim_state_encode(sb, pb, lb);
            mm__swim_state_merge(sa, pb, lb, S->now);
            count_quic(S, la);
            count_quic(S, lb);
            if (S->steady) S->steady_pp += la + lb + 2 * SIM_QUIC_OVERHEAD;
            free(pa);
            free(pb);
            refresh(S, e.a);
            refresh(S, b);
            break;
        }
        case EV_PUSH:
            if (!na->up || e.ver != na->life) break;
            fold(S, &e);
            push_flush(S, e.a);
            break;
        case EV_AE: {
            if (!na->up || e.ver != na->life) break;
            fold(S, &e);
            int b = pick_peer(S, e.a);
            if (b >= 0) {
                uint64_t d = mm__oplog_digest(na->o);
                quic_send(S, EV_AE_MSG, e.a, b, 1, dup_buf(&d, 8), 8);
            }
            ev_push(S, S->now + MM_OPLOG_ANTI_ENTROPY_MS, EV_AE, e.a, 0,
                    na->life, NULL, 0);
            break;
        }
        case EV_AE_MSG:
            fold(S, &e);
            ae_msg(S, &e);
            break;
        case EV_BATCH:
            if (!S->nodes[e.b].up) break;
            fold(S, &e);
            apply(S, e.b, e.buf, e.len);
            break;
        case EV_ACT:
            fold(S, &e);
            act_run(S, &sc->acts[e.a], e.a);
            break;
        case EV_START:
            fold(S, &e);
            node_start(S, e.a);
            break;
        case EV_CHURN:
            fold(S, &e);
            churn_step(S, e.a);
            break;
        case EV_CHECK:
            check(S);
            ev_push(S, S->now + SIM_CHECK_MS, EV_CHECK, 0, 0, 0, NULL, 0);
            break;
        }
        free(e.buf);
    }
    if (!S->violated && S->settling) {
        if (!views_converged(S))
            violation(S, "views-converge",
                      "membership views differ at the end of the settle "
                      "phase");
        else if (!registry_converged(S))
            violation(S, "registry-hash",
                      "registry hashes differ at the end of the settle phase");
    }
    /* Final state into the trace. */
    for (int i = 0; i < n && !S->violated; i++)
        if (S->nodes[i].up) {
            uint64_t d[2] = {mm__swim_digest(S->nodes[i].s),
                             mm__oplog_registry_hash(S->nodes[i].o)};
            S->trace = fnv(S->trace, d, sizeof(d));
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->trace = S->trace;
    res->events = S->events;
    res->sim_ms = S->now;
    res->wall_s = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    res->violated = S->violated;

    if (!quiet) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double hours = (double)S->node_ms / 3.6e6;
        double p50 = -1, pmax = -1;
        if (S->ndetect) {
            qsort(S->detect, S->ndetect, sizeof(uint64_t), cmp_u64);
            p50 = (double)S->detect[S->ndetect / 2] / 1000.0;
            pmax = (double)S->detect[S->ndetect - 1] / 1000.0;
        }
        double node_s = (double)S->node_ms / 1000.0;
        double steady_s = (double)S->steady_node_ms / 1000.0;
        printf("seed=%" PRIu64 " nodes=%d scenario=%s sim_s=%.1f wall_s=%.2f "
               "events=%" PRIu64 " maxrss_mb=%.0f",
               seed, n, sc->path, (double)S->now / 1000.0, res->wall_s,
               S->events, (double)ru.ru_maxrss / 1024.0);
        if (S->join_conv_ms >= 0)
            printf(" join_converge_s=%.2f join_rounds=%.0f",
                   (double)S->join_conv_ms / 1000.0,
                   (double)((S->join_conv_ms + MM_SWIM_PROBE_MS - 1) /
                            MM_SWIM_PROBE_MS));
        if (S->reg_conv_ms >= 0)
            printf(" registry_converge_s=%.2f",
                   (double)S->reg_conv_ms / 1000.0);
        if (S->ndetect)
            printf(" detected=%zu detect_p50_s=%.2f detect_max_s=%.2f",
                   S->ndetect, p50, pmax);
        printf(" false_failed=%" PRIu64 " fp_per_node_hour=%.4f"
               " partition_verdicts=%" PRIu64,
               S->fp, hours > 0 ? (double)S->fp / hours : 0.0,
               S->part_verdicts);
        printf(" bytes_per_node_s=%.1f swim_bytes_per_node_s=%.1f",
               node_s > 0 ? (double)S->bytes / node_s : 0.0,
               node_s > 0 ? (double)S->swim_bytes / node_s : 0.0);
        if (steady_s > 0)
            printf(
                " steady_bytes_per_node_s=%.1f"
                " steady_swim_per_node_s=%.1f steady_pushpull_per_node_s=%.1f",
                (double)S->steady_bytes / steady_s,
                (double)S->steady_swim / steady_s,
                (double)S->steady_pp / steady_s);
        printf(" violations=%d trace=%016" PRIx64 "\n", S->violated, S->trace);
        fflush(stdout);
    }

    /* The heap the SWIM cores held at the end: in use before and after
     * they (and their record pool) are freed. */
    struct mallinfo2 mi0 = mallinfo2();
    for (int i = 0; i < n; i++)
        if (S->nodes[i].up) mm__swim_free(S->nodes[i].s);
    mm__swim_pool_free(S->pool);
    struct mallinfo2 mi1 = mallinfo2();
    if (!quiet && getenv("MURMER_SIM_HEAP"))
        printf("heap_in_use_bytes=%zu swim_heap_bytes=%zu per_pair=%.1f\n",
               mi0.uordblks + mi0.hblkhd,
               (mi0.uordblks + mi0.hblkhd) - (mi1.uordblks + mi1.hblkhd),
               (double)((mi0.uordblks + mi0.hblkhd) -
                        (mi1.uordblks + mi1.hblkhd)) /
                   ((double)n * n));
    for (int i = 0; i < n; i++)
        if (S->nodes[i].up) {
            mm__oplog_free(S->nodes[i].o);
            mm__oplog_batch_release(&S->nodes[i].out);
        }
    struct mallinfo2 mi2 = mallinfo2();
    if (!quiet && getenv("MURMER_SIM_HEAP"))
        printf("oplog_heap_bytes=%zu\n",
               (mi1.uordblks + mi1.hblkhd) - (mi2.uordblks + mi2.hblkhd));
    while (S->nheap) {
        struct ev e = ev_pop(S);
        free(e.buf);
    }
    free(S->heap);
    free(S->cuts);
    free(S->detect);
    free(S->nodes);
    free(ctxs);
    ctxs = NULL;
    return S->violated;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: murmer-sim [--seed S | --seeds A..B] [--nodes N] "
               "[--labels K] [--labelled PCT]\n"
               "                  [--replay] [--quiet] [--progress] SCENARIO\n"
               "  --labels K: registry labels a registering node registers "
               "(default: the scenario's)\n"
               "  --labelled PCT: share of the nodes that register them, "
               "spread evenly (100)\n"
               "  --progress: a line per check on stderr while a join "
               "converges\n"
               "  exit 0: every invariant held; 1: a violation (printed with "
               "seed, scenario, time, invariant);\n"
               "  2: usage or scenario error; 3: --replay found two runs of "
               "one seed that differ\n");
}

static int
parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno || s[0] == '-') return -1;
    *out = v;
    return 0;
}

int
main(int argc, char **argv)
{
    uint64_t seed_lo = 1, seed_hi = 1, nodes = 0, labels = UINT64_MAX,
             labelled = 100;
    int replay = 0, quiet = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--seed") == 0 && i + 1 < argc) {
            if (parse_u64(argv[++i], &seed_lo)) goto bad_seed;
            seed_hi = seed_lo;
        } else if (strcmp(a, "--seeds") == 0 && i + 1 < argc) {
            char *dots = strstr(argv[++i], "..");
            if (!dots) goto bad_seed;
            *dots = 0;
            if (parse_u64(argv[i], &seed_lo) || parse_u64(dots + 2, &seed_hi) ||
                seed_hi < seed_lo)
                goto bad_seed;
        } else if (strcmp(a, "--nodes") == 0 && i + 1 < argc) {
            if (parse_u64(argv[++i], &nodes) || nodes < 1 || nodes > 1000000) {
                fprintf(stderr, "murmer-sim: --nodes wants 1..1000000\n");
                return 2;
            }
        } else if (strcmp(a, "--labels") == 0 && i + 1 < argc) {
            if (parse_u64(argv[++i], &labels) || labels > 64) {
                fprintf(stderr, "murmer-sim: --labels wants 0..64\n");
                return 2;
            }
        } else if (strcmp(a, "--labelled") == 0 && i + 1 < argc) {
            if (parse_u64(argv[++i], &labelled) || labelled > 100) {
                fprintf(stderr, "murmer-sim: --labelled wants 0..100 (%%)\n");
                return 2;
            }
        } else if (strcmp(a, "--replay") == 0) {
            replay = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--progress") == 0) {
            sim_progress = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-' || path) {
            fprintf(stderr, "murmer-sim: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        } else {
            path = a;
        }
    }
    if (!path) {
        fprintf(stderr, "murmer-sim: no scenario file\n");
        usage(stderr);
        return 2;
    }
    struct sim_scenario sc;
    char err[512];
    if (sim_scenario_load(&sc, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "murmer-sim: %s\n", err);
        return 2;
    }
    if (labels != UINT64_MAX) sc.labels = (int)labels;
    sc.labelled_pct = (int)labelled;
    mm_log_set_level(MM_LOG_ERR - 1); /* the cores' logs: off */
    int n = nodes ? (int)nodes : sc.nodes;
    int rc = 0;
    uint64_t runs = 0;
    for (uint64_t s = seed_lo; s <= seed_hi; s++) {
        struct result r1, r2;
        runs++;
        if (run_one(&sc, n, s, quiet, &r1)) {
            rc = 1;
            break;
        }
        if (replay) {
            run_one(&sc, n, s, 1, &r2);
            if (r1.trace != r2.trace || r1.events != r2.events) {
                printf("REPLAY MISMATCH seed=%" PRIu64 " scenario=%s: trace "
                       "%016" PRIx64 " then %016" PRIx64 "\n",
                       s, path, r1.trace, r2.trace);
                rc = 3;
                break;
            }
            printf("replay seed=%" PRIu64 ": identical (trace %016" PRIx64
                   ", %" PRIu64 " events)\n",
                   s, r1.trace, r1.events);
        }
        if (s == UINT64_MAX) break;
    }
    if (seed_hi > seed_lo)
        printf("seeds %" PRIu64 "..%" PRIu64 ": %" PRIu64 " runs, %s\n",
               seed_lo, seed_hi, runs,
               rc == 1 ? "stopped at a violation"
               : rc    ? "replay mismatch"
                       : "no violation");
    sim_scenario_free(&sc);
    return rc;
bad_seed:
    fprintf(stderr, "murmer-sim: --seed wants a number, --seeds A..B\n");
    return 2;
}
