/*
 * registry.c — how fast the replicated registry spreads (issue 5).
 *
 *   registry.visible.N{3,8,16}.median|p99   a registration on one node until
 *        every node's listing has reported it (ns; 20 runs each).  Nodes
 *        are seeded from node 0 only, so not every pair is connected: a
 *        registration on a leaf travels leaf -> hub -> every other leaf.
 *   registry.catchup.10000   a new node joins a node that holds 10 000
 *        registrations, until its view holds all of them (ns).
 *   registry.catchup.100000  the same with 100 000 registrations (one actor
 *        registered under every label; ~7 MiB of records, more than one
 *        frame can carry: the catch-up goes in bounded batches) (ns).
 *
 * All nodes run in this process (each with its own loop thread, identity,
 * socket and QUIC connections over loopback); the clock is one clock.
 */
#include "bench.h"

#include <sys/stat.h>
#include <unistd.h>

#define RUNS 20
#define MAXN 16

struct seen {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char want[64];
    int count;  /* nodes that saw |want| */
    long total; /* ADDED events seen (catch-up) */
    uint64_t last_ns;
};

static struct seen g = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, "", 0, 0, 0};
static char dir[256];

static void
listing_cb(void *data, const mm_listing_event *ev)
{
    (void)data;
    if (ev->kind != MM_LISTING_ADDED) return;
    uint64_t t = bench_now_ns();
    pthread_mutex_lock(&g.lock);
    g.total++;
    g.last_ns = t;
    if (strcmp(ev->label, g.want) == 0) g.count++;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
}

static mm_node *
node_up(int i, const char *key, const char *seed)
{
    mm_node_config cfg;
    mm_node_config_init(&cfg);
    char name[32], data[400];
    snprintf(name, sizeof(name), "r%d", i);
    snprintf(data, sizeof(data), "%s/%s", dir, name);
    cfg.name = name;
    cfg.listen = "127.0.0.1:0";
    cfg.data_dir = data;
    cfg.cluster_key_file = key;
    cfg.mdns = 0;
    const char *seeds[1] = {seed};
    if (seed) {
        cfg.join = seeds;
        cfg.njoin = 1;
    }
    mm_node *n;
    bench_check(mm_node_new(&n, &cfg), "node");
    bench_check(mm_node_register_builtins(n), "builtins");
    bench_check(mm_node_start_thread(n), "start");
    return n;
}

static int
wait_count(int want, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    pthread_mutex_lock(&g.lock);
    while (g.count < want)
        if (pthread_cond_timedwait(&g.cond, &g.lock, &ts) != 0) break;
    int ok = g.count >= want;
    pthread_mutex_unlock(&g.lock);
    return ok;
}

static void
nodes_down(mm_node **n, mm_listing **l, int count)
{
    for (int i = count - 1; i >= 0; i--) {
        if (l && l[i]) mm_listing_close(l[i]);
    }
    for (int i = count - 1; i >= 0; i--) {
        mm_node_stop(n[i]);
        mm_node_join(n[i]);
        mm_node_free(n[i]);
    }
}

static void
visible(int nn, const char *key)
{
    mm_node *n[MAXN];
    mm_listing *l[MAXN];
    n[0] = node_up(0, key, NULL);
    for (int i = 1; i < nn; i++)
        n[i] = node_up(i, key, mm_node_addr(n[0]));
    for (int i = 0; i < nn; i++) {
        mm_listing_opts o;
        mm_listing_opts_init(&o);
        o.prefix = "vis/";
        bench_check(mm_listing_open(&l[i], n[i], &o, listing_cb, NULL),
                    "listing");
    }
    /* Let every leaf connect to the hub before measuring. */
    char label[64];
    snprintf(label, sizeof(label), "vis/warm%d", nn);
    pthread_mutex_lock(&g.lock);
    snprintf(g.want, sizeof(g.want), "%s", label);
    g.count = 0;
    pthread_mutex_unlock(&g.lock);
    mm_spawn_opts so;
    mm_spawn_opts_init(&so);
    so.label = label;
    bench_check(mm_spawn(n[nn - 1], "echo", &so, NULL), "spawn");
    if (!wait_count(nn, 30000)) {
        fprintf(stderr, "registry: N=%d never converged\n", nn);
        exit(1);
    }
    uint32_t lat[RUNS];
    for (int r = 0; r < RUNS; r++) {
        snprintf(label, sizeof(label), "vis/%d/%d", nn, r);
        pthread_mutex_lock(&g.lock);
        snprintf(g.want, sizeof(g.want), "%s", label);
        g.count = 0;
        pthread_mutex_unlock(&g.lock);
        so.label = label;
        int origin = 1 + r % (nn - 1); /* a leaf */
        uint64_t t0 = bench_now_ns();
        bench_check(mm_spawn(n[origin], "echo", &so, NULL), "spawn");
        if (!wait_count(nn, 10000)) {
            fprintf(stderr, "registry: N=%d run %d timed out\n", nn, r);
            exit(1);
        }
        pthread_mutex_lock(&g.lock);
        lat[r] = (uint32_t)(g.last_ns - t0);
        pthread_mutex_unlock(&g.lock);
    }
    qsort(lat, RUNS, sizeof(lat[0]), bench_cmp_u32);
    char wl[64];
    snprintf(wl, sizeof(wl), "registry.visible.N%d.median", nn);
    bench_emit(wl, lat[RUNS / 2], "ns");
    snprintf(wl, sizeof(wl), "registry.visible.N%d.p99", nn);
    bench_emit(wl, lat[RUNS - 1], "ns");
    nodes_down(n, l, nn);
}

/* |count| registrations on a node, then a node joins: time until its
 * listing reported them all.  With |one_actor| one actor is registered
 * under every label (spawning 100 000 actors would measure spawning). */
static void
catchup(const char *key, int count, int one_actor)
{
    mm_node *n[2];
    n[0] = node_up(0, key, NULL);
    mm_spawn_opts so;
    mm_spawn_opts_init(&so);
    char label[64];
    mm_endpoint ep;
    if (one_actor) bench_check(mm_spawn(n[0], "echo", &so, &ep), "spawn");
    for (int i = 0; i < count; i++) {
        snprintf(label, sizeof(label), "cu/%0*d", count > 99999 ? 6 : 5, i);
        so.label = label;
        if (one_actor)
            bench_check(mm_register(n[0], label, &ep, MM_VIS_INTERNAL),
                        "register");
        else
            bench_check(mm_spawn(n[0], "echo", &so, NULL), "spawn");
    }
    pthread_mutex_lock(&g.lock);
    g.total = 0;
    g.want[0] = '\0';
    pthread_mutex_unlock(&g.lock);
    /* The joiner's listing counts what arrives. */
    uint64_t t0 = bench_now_ns();
    n[1] = node_up(1, key, mm_node_addr(n[0]));
    mm_listing *l;
    mm_listing_opts o;
    mm_listing_opts_init(&o);
    o.prefix = "cu/";
    o.queue_limit = (uint32_t)count * 2;
    bench_check(mm_listing_open(&l, n[1], &o, listing_cb, NULL), "listing");
    uint64_t deadline = t0 + 60ull * 1000000000ull;
    for (;;) {
        pthread_mutex_lock(&g.lock);
        long total = g.total;
        uint64_t last = g.last_ns;
        pthread_mutex_unlock(&g.lock);
        if (total >= count) {
            char wl[64];
            snprintf(wl, sizeof(wl), "registry.catchup.%d", count);
            bench_emit(wl, (double)(last - t0), "ns");
            break;
        }
        if (bench_now_ns() > deadline) {
            fprintf(stderr, "registry: catch-up saw %ld of %d\n", total, count);
            exit(1);
        }
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    mm_listing_close(l);
    nodes_down(n, NULL, 2);
}

int
main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mm_log_set_level(MM_LOG_ERR);
    snprintf(dir, sizeof(dir), "/tmp/murmer-bench-registry.XXXXXX");
    if (!mkdtemp(dir)) return 1;
    char key[300];
    snprintf(key, sizeof(key), "%s/ck", dir);
    bench_check(mm_cluster_keygen(key), "keygen");
    fprintf(stderr, "registry: star topology (every node seeded from r0); "
                    "time from mm_spawn on a leaf to the last listing event\n");
    const int sizes[] = {3, 8, 16};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        visible(sizes[i], key);
    catchup(key, 10000, 0);
    catchup(key, 100000, 1);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
