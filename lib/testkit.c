/*
 * testkit.c — murmer/testkit.h: an in-process cluster with faults.
 *
 * Every node of a kit gets the kit's packet filter on its transport's UDP
 * send path (mm_cluster_ops.set_filter, installed before the node runs).
 * The filter runs on the node's loop thread; it maps the destination port
 * to a node index and reads that link's rule, one atomic word written by
 * the test thread (partition bit, loss %, delay ms).  Delays use the
 * transport's bounded hold queue.  Member states are read on shard 0 by a
 * posted function (mm_cluster_ops.member), answered through a semaphore;
 * the request is reference-counted so that an answer after the waiter gave
 * up writes to memory that still exists.
 */
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "membership/swim.h"
#include "metrics.h"
#include "murmer/testkit.h"
#include "runtime.h"
#include "transport/quic.h"

_Static_assert((int)MM_TK_ALIVE == (int)MM_SWIM_ALIVE &&
                   (int)MM_TK_SUSPECT == (int)MM_SWIM_SUSPECT &&
                   (int)MM_TK_FAILED == (int)MM_SWIM_FAILED &&
                   (int)MM_TK_LEFT == (int)MM_SWIM_LEFT &&
                   (int)MM_TK_UNLISTED == (int)MM_SWIM_NONE,
               "mm_tk_state follows mm_swim_state");

/* A link's rule: 0 = untouched. */
#define LINK_DELAY_MASK 0xffffu /* ms */
#define LINK_LOSS_SHIFT 16      /* % in bits 16..23 */
#define LINK_CUT (1u << 24)     /* partitioned */
#define TK_POLL_MS 20u

struct tk_node {
    mm_tk *tk;
    int index;
    mm_node *n;                 /* NULL while killed */
    _Atomic int silent;         /* the filter drops all it sends (kill) */
    _Atomic uint32_t port;      /* its UDP port (the filter's map) */
    uint64_t rng;               /* loss draws, on the node's loop thread only */
    uint8_t id[MM_NODE_ID_LEN]; /* kept over kill and restart */
    char name[16];
    char addr[64];
};

struct mm_tk {
    int n;
    mm_tk_opts o;
    char dir[256];
    char key[300];
    struct tk_node node[MM_TK_NODES_MAX];
    _Atomic uint32_t link[MM_TK_NODES_MAX][MM_TK_NODES_MAX];
};

static _Thread_local char tk_err[256];

static int tk_fail(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
tk_fail(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tk_err, sizeof(tk_err), fmt, ap);
    va_end(ap);
    return rc;
}

const char *
mm_tk_error(void)
{
    return tk_err;
}

static uint64_t
tk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
tk_nap(unsigned ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint32_t
tk_bound(const mm_tk *tk, uint32_t timeout_ms)
{
    return timeout_ms ? timeout_ms : tk->o.wait_ms;
}

/* ---- the filter (on the sending node's loop thread) ---------------------- */

static uint64_t
tk_rand(struct tk_node *tn)
{
    tn->rng ^= tn->rng >> 12;
    tn->rng ^= tn->rng << 25;
    tn->rng ^= tn->rng >> 27;
    return tn->rng * 2685821657736338717ULL;
}

static int
tk_filter(void *data, const struct sockaddr *to, size_t len, uint32_t *delay_ms)
{
    (void)len;
    struct tk_node *tn = data;
    mm_tk *tk = tn->tk;
    if (atomic_load_explicit(&tn->silent, memory_order_relaxed))
        return MM_QUIC_DROP;
    if (to->sa_family != AF_INET) return MM_QUIC_PASS;
    uint32_t port = ntohs(((const struct sockaddr_in *)to)->sin_port);
    int j = 0;
    while (j < tk->n && atomic_load_explicit(&tk->node[j].port,
                                             memory_order_relaxed) != port)
        j++;
    if (j == tk->n) return MM_QUIC_PASS;
    uint32_t r =
        atomic_load_explicit(&tk->link[tn->index][j], memory_order_relaxed);
    if (r == 0) return MM_QUIC_PASS;
    if (r & LINK_CUT) return MM_QUIC_DROP;
    unsigned loss = (r >> LINK_LOSS_SHIFT) & 0xffu;
    if (loss && tk_rand(tn) % 100u < loss) return MM_QUIC_DROP;
    *delay_ms = r & LINK_DELAY_MASK;
    return *delay_ms ? MM_QUIC_DELAY : MM_QUIC_PASS;
}

/* ---- posted questions to a node's shard 0 ---------------------------------
 */

struct tk_ask {
    _Atomic int refs; /* the waiter's and the posted function's */
    sem_t done;
    mm_node *n;
    int kind; /* 0: up probe, 1: member states, 2: stats */
    int count;
    uint8_t ids[MM_TK_NODES_MAX][MM_NODE_ID_LEN];
    int state[MM_TK_NODES_MAX];
    uint64_t gen[MM_TK_NODES_MAX];
    mm_tk_stats st;
};

static void
tk_ask_put(struct tk_ask *a)
{
    if (atomic_fetch_sub(&a->refs, 1) == 1) {
        sem_destroy(&a->done);
        free(a);
    }
}

static void
tk_ask_fn(void *data)
{
    struct tk_ask *a = data;
    mm_node *n = a->n;
    if (a->kind == 1 && n->cluster) {
        for (int i = 0; i < a->count; i++)
            a->state[i] =
                n->cluster_ops->member(n->cluster, a->ids[i], &a->gen[i]);
    } else if (a->kind == 2 && n->cluster) {
        struct mm_metrics_net *net = calloc(1, sizeof(*net));
        if (net) {
            n->cluster_ops->metrics(n->cluster, net);
            a->st.dropped = net->quic.fault_dropped;
            a->st.delayed = net->quic.fault_delayed;
            a->st.full = net->quic.fault_full;
            a->st.held = net->quic.fault_held;
            free(net);
        }
    }
    sem_post(&a->done);
    tk_ask_put(a);
}

static struct tk_ask *
tk_ask_new(mm_node *n, int kind)
{
    struct tk_ask *a = calloc(1, sizeof(*a));
    if (a == NULL) return NULL;
    atomic_init(&a->refs, 2);
    sem_init(&a->done, 0, 0);
    a->n = n;
    a->kind = kind;
    return a;
}

/* Posts |a| to |shard| and waits for it at most |ms|: 0, MM_ETIMEOUT or
 * the post's error.  The caller still holds its reference. */
static int
tk_ask_run(struct tk_ask *a, int shard, uint32_t ms)
{
    int rc = mm_node_post(a->n, shard, tk_ask_fn, a);
    if (rc != 0) {
        atomic_fetch_sub(&a->refs, 1); /* never runs */
        return rc;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000u;
    ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (sem_timedwait(&a->done, &ts) != 0) {
        if (errno != EINTR) return MM_ETIMEOUT;
    }
    return 0;
}

/* ---- nodes --------------------------------------------------------------- */

/* Creates, initialises and starts node |i|; waits until each shard runs. */
static int
tk_node_up(mm_tk *tk, int i, int restart)
{
    struct tk_node *tn = &tk->node[i];
    char data[512], listen[64];
    snprintf(data, sizeof(data), "%s/%s", tk->dir, tn->name);
    uint32_t port = atomic_load(&tn->port);
    const char *seeds[MM_TK_NODES_MAX];
    size_t nseeds = 0;
    for (int j = 0; j < tk->n; j++)
        if (j != i && tk->node[j].n && (restart || j < i))
            seeds[nseeds++] = tk->node[j].addr;
    mm_node_config cfg;
    mm_node_config_init(&cfg);
    cfg.name = tn->name;
    cfg.data_dir = data;
    cfg.cluster_key_file = tk->key;
    cfg.join = nseeds ? seeds : NULL;
    cfg.njoin = nseeds;
    cfg.mdns = 0;
    cfg.shards = tk->o.shards;
    mm_node *n = NULL;
    int rc = MM_EINVAL;
    /* The same port again after a restart; any when the OS gave it away. */
    for (int attempt = 0; attempt < 2 && n == NULL; attempt++) {
        snprintf(listen, sizeof(listen), "127.0.0.1:%u",
                 attempt == 0 ? (unsigned)port : 0u);
        cfg.listen = listen;
        rc = mm_node_new(&n, &cfg);
        if (rc != 0) n = NULL;
        if (port == 0) break;
    }
    if (n == NULL)
        return tk_fail(rc, "testkit: node %s: cannot create it: %s", tn->name,
                       mm_strerror(rc));
    const char *addr = mm_node_addr(n);
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (colon == NULL || n->cluster == NULL) {
        mm_node_free(n);
        return tk_fail(MM_EINVAL, "testkit: node %s: no address", tn->name);
    }
    snprintf(tn->addr, sizeof(tn->addr), "%s", addr);
    memcpy(tn->id, n->id, MM_NODE_ID_LEN);
    atomic_store(&tn->port, (uint32_t)strtoul(colon + 1, NULL, 10));
    atomic_store(&tn->silent, 0);
    n->cluster_ops->set_filter(n->cluster, tk_filter, tn, tk->o.hold_max,
                               tk->o.hold_bytes);
    if (tk->o.builtins && (rc = mm_node_register_builtins(n)) != 0) {
        mm_node_free(n);
        return tk_fail(rc, "testkit: node %s: builtins: %s", tn->name,
                       mm_strerror(rc));
    }
    if (tk->o.init && (rc = tk->o.init(tk->o.init_data, tk, i, n)) != 0) {
        mm_node_free(n);
        return tk_fail(rc, "testkit: node %s: init returned %d (%s)", tn->name,
                       rc, mm_strerror(rc));
    }
    if ((rc = mm_node_start_thread(n)) != 0) {
        mm_node_free(n);
        return tk_fail(rc, "testkit: node %s: cannot start: %s", tn->name,
                       mm_strerror(rc));
    }
    tn->n = n;
    for (int s = 0; s < mm_node_shards(n); s++) {
        struct tk_ask *a = tk_ask_new(n, 0);
        if (a == NULL) return tk_fail(-ENOMEM, "testkit: out of memory");
        rc = tk_ask_run(a, s, tk->o.wait_ms);
        tk_ask_put(a);
        if (rc != 0)
            return tk_fail(rc, "testkit: node %s: shard %d not running",
                           tn->name, s);
    }
    return 0;
}

static void
tk_node_down(struct tk_node *tn)
{
    if (tn->n == NULL) return;
    mm_node_stop(tn->n);
    mm_node_join(tn->n);
    mm_node_free(tn->n);
    tn->n = NULL;
}

static int
tk_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

/* Fast failure detection: a silent node is failed in about 1-2 s. */
static void
tk_timings(void)
{
    static const char *const knobs[][2] = {
        {"MURMER_SWIM_PROBE_MS", "300"},
        {"MURMER_SWIM_PROBE_TIMEOUT_MS", "150"},
        {"MURMER_SWIM_GOSSIP_MS", "60"},
        {"MURMER_SWIM_SUSPICION_MULT", "3"},
        {"MURMER_SWIM_REPROBE_MIN_MS", "300"},
        {"MURMER_SWIM_REPROBE_MAX_MS", "1000"},
        {"MURMER_SWIM_SEED_MIN_MS", "200"},
        {"MURMER_SWIM_SEED_MAX_MS", "1000"},
        {"MURMER_SWIM_LEAVE_TIMEOUT_MS", "1000"},
        {"MURMER_SWIM_SYNC_JITTER_MS", "100"},
    };
    for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++)
        setenv(knobs[i][0], knobs[i][1], 0);
}

/* ---- life ---------------------------------------------------------------- */

void
mm_tk_opts_init(mm_tk_opts *o)
{
    memset(o, 0, sizeof(*o));
}

int
mm_tk_cluster_start(mm_tk **out, int n, const mm_tk_opts *o)
{
    tk_err[0] = '\0';
    if (out == NULL) return tk_fail(MM_EINVAL, "testkit: no out pointer");
    *out = NULL;
    if (n < 1 || n > MM_TK_NODES_MAX)
        return tk_fail(MM_EINVAL, "testkit: %d nodes: must be 1..%d", n,
                       MM_TK_NODES_MAX);
    if (o && o->shards < 0)
        return tk_fail(MM_EINVAL, "testkit: %d shards", o->shards);
    mm_tk *tk = calloc(1, sizeof(*tk));
    if (tk == NULL) return tk_fail(-ENOMEM, "testkit: out of memory");
    if (o)
        tk->o = *o;
    else
        mm_tk_opts_init(&tk->o);
    if (tk->o.wait_ms == 0) tk->o.wait_ms = MM_TK_WAIT_MS;
    tk->n = n;
    const char *tmp = tk->o.tmpdir;
    if (tmp == NULL || *tmp == '\0') tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0') tmp = "/tmp";
    tk->o.tmpdir = NULL; /* borrowed: not kept */
    if ((size_t)snprintf(tk->dir, sizeof(tk->dir), "%s/murmer-tk-XXXXXX",
                         tmp) >= sizeof(tk->dir)) {
        free(tk);
        return tk_fail(MM_EINVAL, "testkit: tmpdir too long: %s", tmp);
    }
    if (mkdtemp(tk->dir) == NULL) {
        int e = errno;
        free(tk);
        return tk_fail(-e, "testkit: cannot make a dir under %s: %s", tmp,
                       strerror(e));
    }
    snprintf(tk->key, sizeof(tk->key), "%s/cluster.key", tk->dir);
    int rc = mm_cluster_keygen(tk->key);
    if (rc != 0) {
        tk_fail(rc, "testkit: cluster key: %s", mm_strerror(rc));
        goto fail;
    }
    if (!tk->o.library_timings) tk_timings();
    for (int i = 0; i < n; i++) {
        struct tk_node *tn = &tk->node[i];
        tn->tk = tk;
        tn->index = i;
        tn->rng = (tk->o.seed ? tk->o.seed : 1) + (uint64_t)i * 0x9e3779b9u;
        snprintf(tn->name, sizeof(tn->name), "n%d", i);
        atomic_init(&tn->silent, 0);
        atomic_init(&tn->port, 0);
        for (int j = 0; j < n; j++)
            atomic_init(&tk->link[i][j], 0);
    }
    for (int i = 0; i < n; i++)
        if ((rc = tk_node_up(tk, i, 0)) != 0) goto fail;
    if ((rc = mm_tk_wait_converged(tk, 0)) != 0) goto fail;
    *out = tk;
    return 0;
fail:;
    char why[sizeof(tk_err)];
    memcpy(why, tk_err, sizeof(why));
    mm_tk_stop(tk);
    memcpy(tk_err, why, sizeof(why));
    return rc;
}

void
mm_tk_stop(mm_tk *tk)
{
    if (tk == NULL) return;
    mm_tk_heal(tk);
    for (int i = 0; i < tk->n; i++)
        if (tk->node[i].n) mm_node_stop(tk->node[i].n);
    for (int i = 0; i < tk->n; i++)
        tk_node_down(&tk->node[i]);
    (void)nftw(tk->dir, tk_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(tk);
}

int
mm_tk_size(const mm_tk *tk)
{
    return tk ? tk->n : 0;
}

mm_node *
mm_tk_node(mm_tk *tk, int i)
{
    if (tk == NULL || i < 0 || i >= tk->n) return NULL;
    return tk->node[i].n;
}

const char *
mm_tk_dir(const mm_tk *tk)
{
    return tk ? tk->dir : NULL;
}

/* ---- faults -------------------------------------------------------------- */

static int
tk_range(const mm_tk *tk, int i, int any)
{
    return tk && ((any && i == -1) || (i >= 0 && i < tk->n));
}

/* Sets the bits of |mask| in every link |from| -> |to| to |val|. */
static void
tk_links(mm_tk *tk, int from, int to, uint32_t mask, uint32_t val)
{
    for (int i = 0; i < tk->n; i++) {
        if (from != -1 && i != from) continue;
        for (int j = 0; j < tk->n; j++) {
            if (to != -1 && j != to) continue;
            uint32_t old = atomic_load(&tk->link[i][j]), nv;
            do {
                nv = (old & ~mask) | (val & mask);
            } while (!atomic_compare_exchange_weak(&tk->link[i][j], &old, nv));
        }
    }
}

int
mm_tk_loss(mm_tk *tk, int from, int to, unsigned pct)
{
    if (!tk_range(tk, from, 1) || !tk_range(tk, to, 1) || pct > 100)
        return tk_fail(MM_EINVAL, "testkit: loss %d->%d %u%%: out of range",
                       from, to, pct);
    tk_links(tk, from, to, 0xffu << LINK_LOSS_SHIFT,
             (uint32_t)pct << LINK_LOSS_SHIFT);
    return 0;
}

int
mm_tk_delay(mm_tk *tk, int from, int to, uint32_t ms)
{
    if (!tk_range(tk, from, 1) || !tk_range(tk, to, 1) ||
        ms > MM_TK_DELAY_MAX_MS)
        return tk_fail(MM_EINVAL, "testkit: delay %d->%d %u ms: out of range",
                       from, to, ms);
    tk_links(tk, from, to, LINK_DELAY_MASK, ms);
    return 0;
}

int
mm_tk_partition(mm_tk *tk, const int *group)
{
    if (tk == NULL || group == NULL)
        return tk_fail(MM_EINVAL, "testkit: partition: no groups");
    for (int i = 0; i < tk->n; i++)
        for (int j = 0; j < tk->n; j++)
            tk_links(tk, i, j, LINK_CUT, group[i] != group[j] ? LINK_CUT : 0);
    return 0;
}

int
mm_tk_heal(mm_tk *tk)
{
    if (tk == NULL) return tk_fail(MM_EINVAL, "testkit: no kit");
    tk_links(tk, -1, -1, UINT32_MAX, 0);
    return 0;
}

int
mm_tk_kill(mm_tk *tk, int i)
{
    if (!tk_range(tk, i, 0) || tk->node[i].n == NULL)
        return tk_fail(MM_EINVAL, "testkit: kill %d: no such running node", i);
    struct tk_node *tn = &tk->node[i];
    /* From here the node's datagrams go nowhere: its leave, its
     * connection closes and its answers are never seen. */
    atomic_store(&tn->silent, 1);
    tk_node_down(tn);
    return 0;
}

int
mm_tk_restart(mm_tk *tk, int i)
{
    if (!tk_range(tk, i, 0) || tk->node[i].n != NULL)
        return tk_fail(MM_EINVAL, "testkit: restart %d: not a killed node", i);
    int rc = tk_node_up(tk, i, 1);
    if (rc != 0) {
        char why[sizeof(tk_err)];
        memcpy(why, tk_err, sizeof(why));
        tk_node_down(&tk->node[i]);
        memcpy(tk_err, why, sizeof(why));
    }
    return rc;
}

/* ---- what the nodes see -------------------------------------------------- */

/* Asks |viewer| about the members in |a| (ids filled, count set). */
static int
tk_ask_states(mm_tk *tk, int viewer, struct tk_ask *a)
{
    int rc = tk_ask_run(a, 0, tk->o.wait_ms);
    if (rc != 0)
        return tk_fail(rc, "testkit: node %s did not answer: %s",
                       tk->node[viewer].name, mm_strerror(rc));
    return 0;
}

int
mm_tk_state(mm_tk *tk, int viewer, int member, uint64_t *gen)
{
    if (!tk_range(tk, viewer, 0) || !tk_range(tk, member, 0) ||
        tk->node[viewer].n == NULL)
        return tk_fail(MM_EINVAL, "testkit: state %d of %d: no such viewer",
                       member, viewer);
    mm_node *v = tk->node[viewer].n;
    struct tk_ask *a = tk_ask_new(v, 1);
    if (a == NULL) return tk_fail(-ENOMEM, "testkit: out of memory");
    /* A killed member keeps its id: its data dir holds it. */
    memcpy(a->ids[0], tk->node[member].id, MM_NODE_ID_LEN);
    a->count = 1;
    int rc = tk_ask_states(tk, viewer, a);
    int st = a->state[0];
    if (gen) *gen = rc == 0 ? a->gen[0] : 0;
    tk_ask_put(a);
    return rc ? rc : st;
}

int
mm_tk_wait_converged(mm_tk *tk, uint32_t timeout_ms)
{
    if (tk == NULL) return tk_fail(MM_EINVAL, "testkit: no kit");
    uint64_t end = tk_now_ms() + tk_bound(tk, timeout_ms);
    for (;;) {
        int bad_v = -1, bad_m = -1, bad_st = 0, rc = 0;
        for (int v = 0; v < tk->n && bad_v < 0 && rc == 0; v++) {
            if (tk->node[v].n == NULL) continue;
            struct tk_ask *a = tk_ask_new(tk->node[v].n, 1);
            if (a == NULL) return tk_fail(-ENOMEM, "testkit: out of memory");
            int map[MM_TK_NODES_MAX];
            for (int m = 0; m < tk->n; m++) {
                if (m == v || tk->node[m].n == NULL) continue;
                memcpy(a->ids[a->count], tk->node[m].n->id, MM_NODE_ID_LEN);
                map[a->count++] = m;
            }
            rc = tk_ask_states(tk, v, a);
            for (int k = 0; rc == 0 && k < a->count && bad_v < 0; k++) {
                mm_node *m = tk->node[map[k]].n;
                if (a->state[k] != MM_SWIM_ALIVE ||
                    a->gen[k] != mm_node_generation(m)) {
                    bad_v = v;
                    bad_m = map[k];
                    bad_st = a->state[k];
                }
            }
            tk_ask_put(a);
        }
        if (rc != 0) return rc;
        if (bad_v < 0) return 0;
        if (tk_now_ms() >= end) {
            const char *sn = mm_member_state_name(bad_st);
            return tk_fail(MM_ETIMEOUT,
                           "testkit: not converged within %u ms: %s lists %s "
                           "%s",
                           tk_bound(tk, timeout_ms), tk->node[bad_v].name,
                           tk->node[bad_m].name,
                           sn ? sn : "not at all (or at an older generation)");
        }
        tk_nap(TK_POLL_MS);
    }
}

int
mm_tk_wait_state(mm_tk *tk, int member, int state, uint32_t timeout_ms)
{
    if (!tk_range(tk, member, 0) || state < MM_TK_UNLISTED ||
        state > MM_TK_LEFT)
        return tk_fail(MM_EINVAL, "testkit: wait for member %d in state %d",
                       member, state);
    uint8_t id[MM_NODE_ID_LEN];
    memcpy(id, tk->node[member].id, MM_NODE_ID_LEN);
    uint64_t end = tk_now_ms() + tk_bound(tk, timeout_ms);
    for (;;) {
        int bad = -1, bad_st = 0, rc = 0;
        for (int v = 0; v < tk->n && bad < 0 && rc == 0; v++) {
            if (v == member || tk->node[v].n == NULL) continue;
            struct tk_ask *a = tk_ask_new(tk->node[v].n, 1);
            if (a == NULL) return tk_fail(-ENOMEM, "testkit: out of memory");
            memcpy(a->ids[0], id, MM_NODE_ID_LEN);
            a->count = 1;
            rc = tk_ask_states(tk, v, a);
            if (rc == 0 && a->state[0] != state) {
                bad = v;
                bad_st = a->state[0];
            }
            tk_ask_put(a);
        }
        if (rc != 0) return rc;
        if (bad < 0) return 0;
        if (tk_now_ms() >= end) {
            const char *want = mm_member_state_name(state);
            const char *got = mm_member_state_name(bad_st);
            return tk_fail(MM_ETIMEOUT,
                           "testkit: %s does not list %s %s within %u ms (%s)",
                           tk->node[bad].name, tk->node[member].name,
                           want ? want : "unlisted", tk_bound(tk, timeout_ms),
                           got ? got : "unlisted");
        }
        tk_nap(TK_POLL_MS);
    }
}

int
mm_tk_wait_label(mm_tk *tk, const char *label, uint32_t timeout_ms,
                 mm_endpoint *out)
{
    if (tk == NULL || label == NULL)
        return tk_fail(MM_EINVAL, "testkit: wait for a label: none given");
    uint64_t end = tk_now_ms() + tk_bound(tk, timeout_ms);
    for (;;) {
        mm_endpoint first, ep;
        int have = 0, bad = -1, brc = 0;
        for (int v = 0; v < tk->n && bad < 0; v++) {
            if (tk->node[v].n == NULL) continue;
            int rc = mm_lookup(tk->node[v].n, label, &ep);
            if (rc != 0) {
                bad = v;
                brc = rc;
            } else if (!have) {
                first = ep;
                have = 1;
            } else if (!mm_endpoint_equal(&first, &ep)) {
                bad = v;
                brc = MM_EEXISTS;
            }
        }
        if (bad < 0 && have) {
            if (out) *out = first;
            return 0;
        }
        if (tk_now_ms() >= end)
            return tk_fail(MM_ETIMEOUT,
                           "testkit: label '%s' not the same on every node "
                           "within %u ms (%s: %s)",
                           label, tk_bound(tk, timeout_ms),
                           bad >= 0 ? tk->node[bad].name : "no node",
                           brc == MM_EEXISTS ? "another endpoint"
                                             : mm_strerror(brc));
        tk_nap(TK_POLL_MS);
    }
}

int
mm_tk_stats_get(mm_tk *tk, int i, mm_tk_stats *out)
{
    if (!tk_range(tk, i, 0) || tk->node[i].n == NULL || out == NULL)
        return tk_fail(MM_EINVAL, "testkit: stats of %d: no such running node",
                       i);
    struct tk_ask *a = tk_ask_new(tk->node[i].n, 2);
    if (a == NULL) return tk_fail(-ENOMEM, "testkit: out of memory");
    int rc = tk_ask_run(a, 0, tk->o.wait_ms);
    if (rc == 0)
        *out = a->st;
    else
        tk_fail(rc, "testkit: node %s did not answer", tk->node[i].name);
    tk_ask_put(a);
    return rc;
}
