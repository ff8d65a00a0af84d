/*
 * test_membership.c — SWIM membership on real nodes: several mm_node in one
 * process, each with its own loops, identity, UDP socket and QUIC
 * transport, on loopback.  Membership is inspected on shard 0 through the
 * internal API (mm_node_post + a semaphore).  A "kill -9" is simulated by
 * making the node's transport drop every packet (fault hook), which also
 * lets the same node heal without a restart.
 *
 * Default timings (probe 1 s, ...) unless MURMER_SWIM_* variables are set
 * in the environment (see membership.h); measured times are printed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ckey.h"
#include "cluster.h"
#include "crypto.h"
#include "identity.h"
#include "membership/membership.h"
#include "murmer.h"
#include "helpers/nodefix.h"
#include "helpers/testutil.h"
#include "runtime.h"
#include "transport/quic.h"

#define NNODES 5
#define MAXM 16

struct fx {
    char dir[256];
    char key[300], key_other[300];
    mm_node *n[NNODES];
    char name[NNODES][16];
};

static struct fx the_fx;

/* ---- helpers
 * ------------------------------------------------------------------ */

static void
nap_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Every node is tagged role=test, with mDNS off. */
static mm_node *
node_up_at(const char *dir, const char *name, const char *key, const char *join,
           const char *listen)
{
    static const char *const tags[1] = {"role=test"};
    mm_node *n = nodefix_new(&(struct nodefix_opts){.name = name,
                                                    .dir = dir,
                                                    .listen = listen,
                                                    .key = key,
                                                    .join = join,
                                                    .tags = tags,
                                                    .ntags = 1,
                                                    .no_mdns = 1});
    assert_non_null(n->cluster);
    nodefix_start(n);
    return n;
}

static mm_node *
node_up(const char *dir, const char *name, const char *key, const char *join)
{
    return node_up_at(dir, name, key, join, "127.0.0.1:0");
}

/* A snapshot of one node's member list, taken on its shard 0. */
struct snap {
    mm_node *n;
    sem_t done;
    size_t count;
    struct {
        char name[MM_SWIM_NAME_MAX];
        char tags[MM_SWIM_TAGS_MAX];
        int state;
        int is_self;
        uint8_t id[MM_SWIM_ID_LEN];
        uint64_t generation, incarnation;
        uint16_t port;
    } mb[MAXM];
    struct mm_membership_counters cnt;
    struct mm_seal_stats seal;
    struct mm_swim_stats swim;
    int sync_frames;
};

static int
snap_cb(void *data, const struct mm_swim_member *mb)
{
    struct snap *s = data;
    if (s->count < MAXM) {
        snprintf(s->mb[s->count].name, MM_SWIM_NAME_MAX, "%s", mb->rec->name);
        snprintf(s->mb[s->count].tags, MM_SWIM_TAGS_MAX, "%s", mb->rec->tags);
        s->mb[s->count].state = mb->state;
        s->mb[s->count].is_self = mb->is_self;
        memcpy(s->mb[s->count].id, mb->rec->id, MM_SWIM_ID_LEN);
        s->mb[s->count].generation = mb->rec->generation;
        s->mb[s->count].incarnation = mb->rec->incarnation;
        s->mb[s->count].port = mb->rec->addr.port;
    }
    s->count++;
    return 0;
}

static void
snap_fn(void *arg)
{
    struct snap *s = arg;
    struct mm_membership *m = mm__cluster_membership(s->n->cluster);
    s->count = 0;
    mm__membership_foreach(m, snap_cb, s);
    mm__membership_counters(m, &s->cnt);
    s->seal = *mm__membership_seal_stats(m);
    s->swim = *mm__membership_stats(m);
    sem_post(&s->done);
}

static void
wait_sem(sem_t *sem)
{
    assert_int_equal(sem_wait_s(sem, 10), 0);
}

/* Heap-allocated so that a (failed) late post cannot hit a dead stack. */
static struct snap *
snap_take(mm_node *n)
{
    struct snap *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->n = n;
    sem_init(&s->done, 0, 0);
    assert_int_equal(mm_node_post(n, 0, snap_fn, s), 0);
    wait_sem(&s->done);
    sem_destroy(&s->done);
    return s;
}

/* |name|'s entry in |s| (it must be listed). */
static int
snap_index(const struct snap *s, const char *name)
{
    for (size_t i = 0; i < s->count && i < MAXM; i++)
        if (strcmp(s->mb[i].name, name) == 0) return (int)i;
    fail_msg("%s not listed", name);
    return -1;
}

/* State of |name| in |s|, or MM_SWIM_NONE when not listed. */
static int
snap_state(const struct snap *s, const char *name)
{
    for (size_t i = 0; i < s->count && i < MAXM; i++)
        if (strcmp(s->mb[i].name, name) == 0) return s->mb[i].state;
    return MM_SWIM_NONE;
}

/* The query/command API, run on shard 0. */
struct api_req {
    mm_node *n;
    sem_t done;
    char timings[2048];
    int timings_len;
    int rc_unknown, rc_self, rc_empty;
};

static void
api_fn(void *arg)
{
    struct api_req *r = arg;
    struct mm_membership *m = mm__cluster_membership(r->n->cluster);
    r->timings_len = mm__membership_timings(m, r->timings, sizeof(r->timings));
    r->rc_unknown = mm__membership_force_leave(m, "no-such-node");
    r->rc_self = mm__membership_force_leave(m, mm_node_name(r->n));
    r->rc_empty = mm__membership_force_leave(m, "");
    sem_post(&r->done);
}

static struct api_req *
api_take(mm_node *n)
{
    struct api_req *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->n = n;
    sem_init(&r->done, 0, 0);
    assert_int_equal(mm_node_post(n, 0, api_fn, r), 0);
    wait_sem(&r->done);
    sem_destroy(&r->done);
    return r;
}

struct fault_req {
    mm_node *n;
    struct mm_quic_fault f;
    sem_t done;
};

static void
fault_fn(void *arg)
{
    struct fault_req *r = arg;
    mm__quic_set_fault(mm__cluster_quic(r->n->cluster), &r->f);
    sem_post(&r->done);
}

static void
set_drop(mm_node *n, unsigned pct, uint64_t seed)
{
    struct fault_req *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->n = n;
    r->f.drop_pct = pct;
    r->f.seed = seed;
    sem_init(&r->done, 0, 0);
    assert_int_equal(mm_node_post(n, 0, fault_fn, r), 0);
    wait_sem(&r->done);
    sem_destroy(&r->done);
    free(r);
}

/* 1 when every live node in |skip|'s complement sees every name of |want|
 * in state |st| and lists exactly |total| members. */
static int
all_see(struct fx *fx, int skip, const char *who, int st, size_t total)
{
    for (int i = 0; i < NNODES; i++) {
        if (i == skip || !fx->n[i]) continue;
        struct snap *s = snap_take(fx->n[i]);
        int ok = s->count == total;
        for (size_t k = 0; ok && k < s->count && k < MAXM; k++) {
            if (who && strcmp(s->mb[k].name, who) == 0)
                ok = s->mb[k].state == st;
            else if (!who)
                ok = s->mb[k].state == st;
        }
        if (who && ok) ok = snap_state(s, who) == st;
        free(s);
        if (!ok) return 0;
    }
    return 1;
}

/* Waits until every listed node sees all NNODES members alive. */
static uint64_t
wait_converged(struct fx *fx, uint64_t bound_ms)
{
    uint64_t t0 = now_ms();
    while (!all_see(fx, -1, NULL, MM_SWIM_ALIVE, NNODES)) {
        if (now_ms() - t0 > bound_ms)
            fail_msg("not converged within %llu ms",
                     (unsigned long long)bound_ms);
        nap_ms(20);
    }
    return now_ms() - t0;
}

/* ---- fixture
 * -------------------------------------------------------------------- */

static int
group_setup(void **state)
{
    struct fx *fx = &the_fx;
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/mm-membership-XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    snprintf(fx->key, sizeof(fx->key), "%.200s/ck", fx->dir);
    snprintf(fx->key_other, sizeof(fx->key_other), "%.200s/ck-other", fx->dir);
    if (mm_cluster_keygen(fx->key) != 0 ||
        mm_cluster_keygen(fx->key_other) != 0)
        return -1;
    for (int i = 0; i < NNODES; i++)
        snprintf(fx->name[i], sizeof(fx->name[i]), "node-%c", 'a' + i);
    *state = fx;
    return 0;
}

static int
group_teardown(void **state)
{
    struct fx *fx = *state;
    for (int i = NNODES - 1; i >= 0; i--) {
        if (fx->n[i]) {
            nodefix_down(fx->n[i]);
            fx->n[i] = NULL;
        }
    }
    rm_rf(fx->dir);
    return 0;
}

/* ---- tests
 * ----------------------------------------------------------------------- */

static void
test_membership_five_nodes_converge(void **state)
{
    struct fx *fx = *state;
    uint64_t t0 = now_ms();
    fx->n[0] = node_up(fx->dir, fx->name[0], fx->key, NULL);
    const char *seed = mm_node_addr(fx->n[0]);
    for (int i = 1; i < NNODES; i++)
        fx->n[i] = node_up(fx->dir, fx->name[i], fx->key, seed);
    uint64_t started = now_ms() - t0;
    uint64_t took = wait_converged(fx, 20000);
    fprintf(stderr,
            "# converge: %d nodes alive everywhere %llu ms after the "
            "last start (starting took %llu ms)\n",
            NNODES, (unsigned long long)took, (unsigned long long)started);
    /* The full record travelled: tags and self flag. */
    struct snap *s = snap_take(fx->n[NNODES - 1]);
    int selves = 0;
    for (size_t k = 0; k < s->count; k++) {
        assert_string_equal(s->mb[k].tags, "role=test");
        selves += s->mb[k].is_self;
        if (k) assert_true(strcmp(s->mb[k - 1].name, s->mb[k].name) < 0);
    }
    assert_int_equal(selves, 1);
    assert_true(s->seal.opened > 0);
    free(s);
}

static void
test_membership_wrong_key_never_appears(void **state)
{
    struct fx *fx = *state;
    wait_converged(fx, 20000);
    struct snap *before = snap_take(fx->n[0]);
    uint64_t dropped0 = before->cnt.dropped_seal;
    free(before);
    mm_node *x =
        node_up(fx->dir, "intruder", fx->key_other, mm_node_addr(fx->n[0]));
    /* Wait (bounded) until the seed has refused several of its pings. */
    uint64_t t0 = now_ms();
    for (;;) {
        struct snap *s = snap_take(fx->n[0]);
        uint64_t d = s->cnt.dropped_seal;
        free(s);
        if (d >= dropped0 + 3) break;
        if (now_ms() - t0 > 15000)
            fail_msg("the seed never saw the intruder's datagrams");
        nap_ms(50);
    }
    for (int i = 0; i < NNODES; i++) {
        struct snap *s = snap_take(fx->n[i]);
        assert_int_equal(snap_state(s, "intruder"), MM_SWIM_NONE);
        assert_int_equal(s->count, NNODES);
        free(s);
    }
    struct snap *xs = snap_take(x);
    assert_int_equal(xs->count, 1);
    /* Nothing of the cluster's ever opened there either.  (Stray QUIC
     * short-header packets whose first byte happens to be 0x01 may reach
     * the datagram path; they fail to open and are counted.) */
    assert_int_equal(xs->swim.packets_in, 0);
    assert_int_equal(xs->seal.opened, 0);
    free(xs);
    nodefix_down(x);
}

/* Forged gossip from one address: datagrams that reuse the cluster's real
 * key id (it travels in the clear) under ever new senders, as fast as a
 * thread sends them, for a bounded time. */
struct flood {
    int fd;
    struct sockaddr_in to;
    uint32_t key_id;
    _Atomic int stop;
    uint64_t sent;
};

static void *
flood_thread(void *arg)
{
    struct flood *f = arg;
    uint8_t dg[37 + 100 + 16];
    uint64_t t0 = now_ms();
    memset(dg, 0x5a, sizeof(dg));
    dg[0] = 0x01;
    mm__put_u32(dg + 1, f->key_id);
    while (!atomic_load(&f->stop) && now_ms() - t0 < 8000 &&
           f->sent < 3000000) {
        mm__put_u64(dg + 5, f->sent);      /* a new sender id */
        mm__put_u64(dg + 21, 1);           /* generation */
        mm__put_u64(dg + 29, f->sent + 1); /* counter */
        if (sendto(f->fd, dg, sizeof(dg), 0, (struct sockaddr *)&f->to,
                   sizeof(f->to)) > 0)
            f->sent++;
    }
    return NULL;
}

/* A record in swim.c's format for member |name| (id |id|), signed by
 * |signer| and carrying |pub|; its length. */
static size_t
forge_record(uint8_t *p, const uint8_t id[16], const char *name, uint64_t gen,
             uint64_t inc, uint8_t flags, uint16_t port,
             const struct mm_sign_key *signer, const uint8_t pub[32])
{
    size_t nl = strlen(name), o = 0;
    uint8_t tbs[18 + 200];
    memcpy(p, id, 16);
    mm__put_u64(p + 16, gen);
    mm__put_u64(p + 24, inc);
    p[32] = flags;
    p[33] = 0; /* role: member */
    p[34] = 4;
    p[35] = 127;
    p[36] = p[37] = 0;
    p[38] = 1;
    mm__put_u16(p + 39, port);
    p[41] = (uint8_t)nl;
    memcpy(p + 42, name, nl);
    p[42 + nl] = 0; /* no tags */
    o = 43 + nl;
    memcpy(tbs, "murmer-swim-rec-v1", 18);
    memcpy(tbs + 18, p, o);
    assert_int_equal(mm__ed25519_sign(signer, tbs, 18 + o, p + o + 32), 0);
    p[32] |= 2;
    memcpy(p + o, pub, 32);
    return o + 32 + 64;
}

struct forge_req {
    mm_node *from;
    uint8_t to[16];
    uint8_t *state;
    size_t len;
    int rc;
    sem_t done;
};

static void
forge_fn(void *arg)
{
    struct forge_req *r = arg;
    r->rc = mm__membership_send_state(mm__cluster_membership(r->from->cluster),
                                      r->to, r->state, r->len);
    sem_post(&r->done);
}

/*
 * A member holding the cluster key (node-e) speaks for others in one
 * membership-sync frame to node-a: node-b alive at generation + 1000 on a
 * fake port (signed by node-e, with node-e's key; and with node-b's key),
 * node-c's graceful leave (signed by node-e).  node-a drops and counts all
 * three; node-b and node-c keep their records and stay alive.
 */
static void
test_membership_forged_sync_frame_ignored(void **state)
{
    struct fx *fx = *state;
    wait_converged(fx, 20000);
    struct snap *a0 = snap_take(fx->n[0]), *e0 = snap_take(fx->n[4]);
    int ib = snap_index(a0, fx->name[1]), ic = snap_index(a0, fx->name[2]);
    int ia = snap_index(e0, fx->name[0]), ie = snap_index(e0, fx->name[4]);
    /* node-e's identity key, as any member has its own. */
    char edir[400], err[200];
    struct mm_identity eid;
    snprintf(edir, sizeof(edir), "%.200s/%s", fx->dir, fx->name[4]);
    assert_int_equal(mm__identity_read(&eid, edir, err, sizeof(err)), 0);
    struct mm_sign_key *ekey = NULL;
    assert_int_equal(mm__sign_key_from_pem(&ekey, eid.key_pem), 0);
    uint8_t bpub[32] = {0};
    char bdir[400];
    struct mm_identity bid;
    snprintf(bdir, sizeof(bdir), "%.200s/%s", fx->dir, fx->name[1]);
    assert_int_equal(mm__identity_read(&bid, bdir, err, sizeof(err)), 0);
    memcpy(bpub, bid.pub, 32);
    mm__identity_release(&bid);

    uint8_t st[1024];
    size_t o = 0;
    st[o++] = 3;
    memcpy(st + o, e0->mb[ie].id, 16);
    o += 16;
    mm__put_u32(st + o, 3);
    mm__put_u32(st + o + 4, UINT32_MAX); /* want: the rotation */
    mm__put_u32(st + o + 8, UINT32_MAX); /* next: none */
    o += 12;
    for (int k = 0; k < 3; k++) {
        int victim = k < 2 ? ib : ic;
        size_t n =
            forge_record(st + o + 3, a0->mb[victim].id, a0->mb[victim].name,
                         a0->mb[victim].generation + (k < 2 ? 1000 : 0),
                         a0->mb[victim].incarnation + 1, k < 2 ? 0 : 1, 9, ekey,
                         k == 1 ? bpub : eid.pub);
        st[o] = k < 2 ? MM_SWIM_ALIVE : MM_SWIM_LEFT;
        mm__put_u16(st + o + 1, (uint16_t)n);
        o += 3 + n;
    }
    uint64_t forged0 = a0->swim.forged;
    struct forge_req *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->from = fx->n[4];
    memcpy(r->to, e0->mb[ia].id, 16);
    r->state = st;
    r->len = o;
    sem_init(&r->done, 0, 0);
    assert_int_equal(mm_node_post(fx->n[4], 0, forge_fn, r), 0);
    wait_sem(&r->done);
    sem_destroy(&r->done);
    assert_int_equal(r->rc, 0);
    free(r);
    /* The frame is merged in one go on node-a's shard 0: once the forgery
     * count moved, its whole effect is in. */
    uint64_t t0 = now_ms();
    struct snap *a1 = NULL;
    for (;;) {
        a1 = snap_take(fx->n[0]);
        if (a1->swim.forged >= forged0 + 3) break;
        free(a1);
        if (now_ms() - t0 > 10000) fail_msg("the forged frame was not seen");
        nap_ms(20);
    }
    assert_int_equal(a1->swim.forged, forged0 + 3);
    int jb = snap_index(a1, fx->name[1]), jc = snap_index(a1, fx->name[2]);
    assert_int_equal(a1->mb[jb].generation, a0->mb[ib].generation);
    assert_int_equal(a1->mb[jb].port, a0->mb[ib].port);
    assert_int_equal(a1->mb[jb].state, MM_SWIM_ALIVE);
    assert_int_equal(a1->mb[jc].state, MM_SWIM_ALIVE);
    assert_int_equal(a1->mb[jc].generation, a0->mb[ic].generation);
    fprintf(stderr, "# forged: 3 forged records in one sync frame dropped and "
                    "counted; node-b and node-c unchanged\n");
    free(a1);
    free(a0);
    free(e0);
    mm__sign_key_free(ekey);
    mm__identity_release(&eid);
    /* Everyone still sees everyone alive. */
    wait_converged(fx, 20000);
}

static void
test_membership_gossip_flood_crowds_out_nobody(void **state)
{
    struct fx *fx = *state;
    const unsigned flood_ms = 5000;
    if (!fx->n[0]) { /* run alone (MM_TEST_FILTER) */
        fx->n[0] = node_up(fx->dir, fx->name[0], fx->key, NULL);
        for (int i = 1; i < NNODES; i++)
            fx->n[i] =
                node_up(fx->dir, fx->name[i], fx->key, mm_node_addr(fx->n[0]));
    }
    wait_converged(fx, 20000);
    struct mm_keyring kr;
    char err[256];
    assert_int_equal(mm__keyring_load(&kr, fx->key, err, sizeof(err)), 0);
    struct flood f;
    memset(&f, 0, sizeof(f));
    f.key_id = kr.ids[0];
    mm__keyring_release(&kr);
    f.fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(f.fd >= 0);
    const char *addr = mm_node_addr(fx->n[0]);
    const char *colon = strrchr(addr, ':');
    assert_non_null(colon);
    f.to.sin_family = AF_INET;
    f.to.sin_port = htons((uint16_t)atoi(colon + 1));
    f.to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct snap *before = snap_take(fx->n[0]);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flood_thread, &f), 0);
    uint64_t t0 = now_ms();
    int bad = 0;
    char what[160] = "";
    while (now_ms() - t0 < flood_ms && !bad) {
        for (int i = 0; i < NNODES && !bad; i++) {
            struct snap *s = snap_take(fx->n[i]);
            for (size_t k = 0; k < s->count && k < MAXM; k++) {
                if (s->mb[k].state != MM_SWIM_ALIVE) {
                    snprintf(what, sizeof(what), "%s holds %s %s", fx->name[i],
                             s->mb[k].name,
                             mm__swim_state_name(s->mb[k].state));
                    bad = 1;
                }
            }
            free(s);
        }
        nap_ms(50);
    }
    atomic_store(&f.stop, 1);
    pthread_join(th, NULL);
    close(f.fd);
    struct snap *after = snap_take(fx->n[0]);
    uint64_t flood = after->cnt.dropped_flood - before->cnt.dropped_flood;
    uint64_t derive = after->seal.dropped_derive - before->seal.dropped_derive;
    uint64_t derived = after->seal.derivations - before->seal.derivations;
    fprintf(stderr,
            "# flood: %llu forged datagrams in %u ms: %llu dropped by "
            "source, %llu by the derivation limit, %llu derivations\n",
            (unsigned long long)f.sent, flood_ms, (unsigned long long)flood,
            (unsigned long long)derive, (unsigned long long)derived);
    free(before);
    free(after);
    if (bad) fail_msg("during the flood: %s", what);
    assert_true(flood > 0);
    assert_true(derive > 0);
    /* At most the burst plus the rate for the time it ran. */
    assert_true(derived <= MM_GOSSIP_DERIVE_BURST +
                               MM_GOSSIP_DERIVE_RATE * (flood_ms / 1000 + 4));
    wait_converged(fx, 20000);
}

static void
test_membership_loss_nobody_failed(void **state)
{
    struct fx *fx = *state;
    const unsigned soak_ms = 20000;
    wait_converged(fx, 20000);
    for (int i = 0; i < NNODES; i++)
        set_drop(fx->n[i], 10, 1000 + (uint64_t)i);
    uint64_t t0 = now_ms();
    int suspects_seen = 0;
    while (now_ms() - t0 < soak_ms) {
        for (int i = 0; i < NNODES; i++) {
            struct snap *s = snap_take(fx->n[i]);
            for (size_t k = 0; k < s->count && k < MAXM; k++) {
                if (s->mb[k].state == MM_SWIM_SUSPECT) suspects_seen++;
                if (s->mb[k].state == MM_SWIM_FAILED)
                    fail_msg("%s declared %s failed under 10%% loss",
                             fx->name[i], s->mb[k].name);
            }
            free(s);
        }
        nap_ms(100);
    }
    uint64_t refutes = 0;
    for (int i = 0; i < NNODES; i++) {
        struct snap *s = snap_take(fx->n[i]);
        refutes += s->swim.refutations;
        free(s);
        set_drop(fx->n[i], 0, 0);
    }
    fprintf(stderr,
            "# loss: 10%% drop (send and receive) on %d nodes for "
            "%u s: 0 failed, %d suspect sightings, %llu refutations\n",
            NNODES, soak_ms / 1000, suspects_seen, (unsigned long long)refutes);
    wait_converged(fx, 20000);
}

struct force_req {
    mm_node *n;
    const char *node;
    int rc;
    sem_t done;
};

static void
force_fn(void *arg)
{
    struct force_req *r = arg;
    r->rc = mm__membership_force_leave(mm__cluster_membership(r->n->cluster),
                                       r->node);
    sem_post(&r->done);
}

/* mm__membership_force_leave(|node|) on |n|'s shard 0. */
static int
force_leave_on(mm_node *n, const char *node)
{
    struct force_req r = {n, node, 0, {{0}}};
    sem_init(&r.done, 0, 0);
    assert_int_equal(mm_node_post(n, 0, force_fn, &r), 0);
    wait_sem(&r.done);
    sem_destroy(&r.done);
    return r.rc;
}

/* Force-leave is refused for a member its node sees alive, by name or by
 * id: nothing changes, on that node or elsewhere. */
static void
test_membership_force_leave_refuses_alive(void **state)
{
    struct fx *fx = *state;
    if (!fx->n[0]) skip(); /* the nodes of five_nodes_converge */
    wait_converged(fx, 20000);
    const char *vname = fx->name[1];
    assert_int_equal(force_leave_on(fx->n[0], vname), MM_EALIVE);
    assert_int_equal(force_leave_on(fx->n[0], mm_node_id(fx->n[1])), MM_EALIVE);
    assert_string_equal(mm_strerror(MM_EALIVE), "the member is alive");
    assert_int_equal(mm_err_exit_code(MM_EALIVE), 1);
    for (int i = 0; i < NNODES; i++) {
        if (i == 1) continue;
        struct snap *s = snap_take(fx->n[i]);
        assert_int_equal(snap_state(s, vname), MM_SWIM_ALIVE);
        free(s);
    }
}

static void
test_membership_killed_node_failed_then_heals(void **state)
{
    struct fx *fx = *state;
    const int victim = NNODES - 1;
    const char *vname = fx->name[victim];
    wait_converged(fx, 20000);
    set_drop(fx->n[victim], 100, 7);
    uint64_t t0 = now_ms();
    uint64_t detected = 0;
    while (!detected) {
        int done = 1;
        for (int i = 0; i < NNODES; i++) {
            if (i == victim) continue;
            struct snap *s = snap_take(fx->n[i]);
            for (size_t k = 0; k < s->count && k < MAXM; k++) {
                if (strcmp(s->mb[k].name, vname) == 0) {
                    if (s->mb[k].state != MM_SWIM_FAILED) done = 0;
                } else if (s->mb[k].state == MM_SWIM_FAILED ||
                           s->mb[k].state == MM_SWIM_LEFT) {
                    fail_msg("%s declared %s %s (only %s is dead)", fx->name[i],
                             s->mb[k].name, mm__swim_state_name(s->mb[k].state),
                             vname);
                }
            }
            assert_int_equal(s->count, NNODES);
            free(s);
        }
        if (done)
            detected = now_ms() - t0;
        else if (now_ms() - t0 > 45000)
            fail_msg("%s not declared failed by all within 45 s", vname);
        else
            nap_ms(20);
    }
    fprintf(stderr, "# detect: %s failed on all %d survivors after %llu ms\n",
            vname, NNODES - 1, (unsigned long long)detected);
    /* The survivors stay alive to each other. */
    for (int i = 0; i < NNODES; i++) {
        if (i == victim) continue;
        struct snap *s = snap_take(fx->n[i]);
        for (size_t k = 0; k < s->count && k < MAXM; k++)
            if (strcmp(s->mb[k].name, vname) != 0)
                assert_int_not_equal(s->mb[k].state, MM_SWIM_FAILED);
        free(s);
    }
    /* Heal: no restart; everyone alive again on every node. */
    set_drop(fx->n[victim], 0, 0);
    uint64_t healed = wait_converged(fx, 60000);
    fprintf(stderr,
            "# heal: %s alive again everywhere %llu ms after the "
            "partition ended\n",
            vname, (unsigned long long)healed);
}

static void
test_membership_graceful_leave_seen_left(void **state)
{
    struct fx *fx = *state;
    const int leaver = NNODES - 2;
    const char *lname = fx->name[leaver];
    wait_converged(fx, 20000);
    uint64_t t0 = now_ms();
    mm_node_stop(fx->n[leaver]);
    uint64_t seen = 0;
    while (!seen) {
        int done = 1;
        for (int i = 0; i < NNODES; i++) {
            if (i == leaver) continue;
            struct snap *s = snap_take(fx->n[i]);
            int st = snap_state(s, lname);
            assert_int_not_equal(st, MM_SWIM_FAILED);
            if (st != MM_SWIM_LEFT) done = 0;
            free(s);
        }
        if (done)
            seen = now_ms() - t0;
        else if (now_ms() - t0 > 10000)
            fail_msg("%s not seen left by all within 10 s", lname);
        else
            nap_ms(5);
    }
    mm_node_join(fx->n[leaver]);
    uint64_t stopped = now_ms() - t0;
    mm_node_free(fx->n[leaver]);
    fx->n[leaver] = NULL;
    fprintf(stderr,
            "# leave: %s left on all survivors after %llu ms "
            "(node stopped after %llu ms)\n",
            lname, (unsigned long long)seen, (unsigned long long)stopped);
    assert_true(stopped < 6000); /* bounded by the leave timeout */
    /* Still left (not failed) a little later: no one flips it. */
    for (int i = 0; i < NNODES; i++) {
        if (!fx->n[i]) continue;
        struct snap *s = snap_take(fx->n[i]);
        assert_int_equal(snap_state(s, lname), MM_SWIM_LEFT);
        free(s);
    }
}

/* A lone node leaves at once: nobody to wait for. */
static void
test_membership_lone_leave_is_fast(void **state)
{
    struct fx *fx = *state;
    char dir[400];
    snprintf(dir, sizeof(dir), "%.200s/lone", fx->dir);
    /* Timings can be overridden from the environment. */
    const char *old = getenv("MURMER_SWIM_PROBE_MS");
    char *saved = old ? strdup(old) : NULL;
    setenv("MURMER_SWIM_PROBE_MS", "1700", 1);
    mm_node *n = node_up(dir, "lone", fx->key, NULL);
    if (saved) {
        setenv("MURMER_SWIM_PROBE_MS", saved, 1);
        free(saved);
    } else {
        unsetenv("MURMER_SWIM_PROBE_MS");
    }
    struct api_req *r = api_take(n);
    assert_true(r->timings_len > 0 &&
                (size_t)r->timings_len < sizeof(r->timings));
    assert_non_null(strstr(r->timings, "probe_interval: 1700 ms"));
    assert_non_null(strstr(r->timings, "suspicion_mult: "));
    assert_int_equal(r->rc_unknown, MM_ENOTFOUND);
    assert_int_equal(r->rc_self, MM_EINVAL);
    assert_int_equal(r->rc_empty, MM_EINVAL);
    free(r);
    struct snap *s = snap_take(n);
    assert_int_equal(s->count, 1);
    assert_int_equal(s->mb[0].state, MM_SWIM_ALIVE);
    free(s);
    uint64_t t0 = now_ms();
    nodefix_down(n);
    assert_true(now_ms() - t0 < 2000);
}

/* Two nodes on IPv6 loopback find each other (addresses as [v6]:port). */
static void
test_membership_ipv6_pair(void **state)
{
    struct fx *fx = *state;
    char dir[400];
    snprintf(dir, sizeof(dir), "%.200s/v6", fx->dir);
    mm_node_config cfg;
    mm_node_config_init(&cfg);
    mm_node *probe = NULL;
    char data[500];
    snprintf(data, sizeof(data), "%s/probe", dir);
    cfg.name = "v6probe";
    cfg.listen = "[::1]:0";
    cfg.data_dir = data;
    cfg.cluster_key_file = fx->key;
    if (mm_node_new(&probe, &cfg) != 0) {
        skip(); /* no IPv6 loopback here */
        return;
    }
    mm_node_free(probe);
    mm_node *a = node_up_at(dir, "v6-a", fx->key, NULL, "[::1]:0");
    assert_non_null(strchr(mm_node_addr(a), '['));
    mm_node *b = node_up_at(dir, "v6-b", fx->key, mm_node_addr(a), "[::1]:0");
    uint64_t t0 = now_ms();
    for (;;) {
        struct snap *sa = snap_take(a), *sb = snap_take(b);
        int ok = sa->count == 2 && sb->count == 2 &&
                 snap_state(sa, "v6-b") == MM_SWIM_ALIVE &&
                 snap_state(sb, "v6-a") == MM_SWIM_ALIVE;
        free(sa);
        free(sb);
        if (ok) break;
        if (now_ms() - t0 > 15000) fail_msg("IPv6 pair did not converge");
        nap_ms(20);
    }
    nodefix_down(b);
    nodefix_down(a);
}

static uint64_t log_t0;

/* Verbose runs: each line with its time and the logging node's name. */
static void
log_line(void *data, int level, const char *component, const char *line)
{
    (void)data;
    const char *who = "?";
    struct mm_shard *sh = mm__cur_shard;
    if (sh && sh->node) who = mm_node_name(sh->node);
    fprintf(stderr, "%6llu %-8s %d %s: %s\n",
            (unsigned long long)(now_ms() - log_t0), who, level, component,
            line);
}

int
main(void)
{
    /* MM_TEST_LOG=6 shows swim's INFO lines (state changes, leave). */
    const char *lv = getenv("MM_TEST_LOG");
    log_t0 = now_ms();
    if (lv && *lv) {
        mm_log_set_level(atoi(lv));
        mm_log_set_handler(log_line, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_membership_lone_leave_is_fast),
        cmocka_unit_test(test_membership_ipv6_pair),
        cmocka_unit_test(test_membership_five_nodes_converge),
        cmocka_unit_test(test_membership_wrong_key_never_appears),
        cmocka_unit_test(test_membership_forged_sync_frame_ignored),
        cmocka_unit_test(test_membership_gossip_flood_crowds_out_nobody),
        cmocka_unit_test(test_membership_loss_nobody_failed),
        cmocka_unit_test(test_membership_force_leave_refuses_alive),
        cmocka_unit_test(test_membership_killed_node_failed_then_heals),
        cmocka_unit_test(test_membership_graceful_leave_seen_left),
    };
    if (getenv("MM_TEST_FILTER"))
        cmocka_set_test_filter(getenv("MM_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
