/*
 * bench.h — helpers shared by the local benchmarks (w1.c … w4.c).  They use
 * only the public API and print CSV lines `system,workload,value,unit`, in
 * the shape of ../shared/anchors (RESULTS.md, Part 1): medians from two
 * timestamps per operation, throughput = operations / wall time of the
 * measured loop.  With BENCH_HIST set in the environment, a latency
 * workload also prints its distribution (mean, p10 ... p99.9, max) to
 * stderr.
 */
#ifndef MM_BENCH_H
#define MM_BENCH_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <murmer.h>

static inline uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void
bench_emit(const char *workload, double value, const char *unit)
{
    printf("murmer,%s,%.0f,%s\n", workload, value, unit);
    fflush(stdout);
}

/* A field of /proc/self/status in kB ("VmRSS:", "VmHWM:"), or -1. */
static inline long
bench_proc_kb(const char *key)
{
    char line[256];
    long v = -1;
    size_t klen = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL) return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, klen) == 0) {
            v = atol(line + klen);
            break;
        }
    fclose(f);
    return v;
}

static inline int
bench_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

/* Throughput, median and p99 lines, like the anchors' report_latency. */
static inline void
bench_report_latency(const char *wl, uint32_t *lat, size_t n,
                     uint64_t elapsed_ns, const char *unit)
{
    char name[128];

    snprintf(name, sizeof(name), "%s.throughput", wl);
    bench_emit(name, (double)n * 1e9 / (double)elapsed_ns, unit);
    qsort(lat, n, sizeof(*lat), bench_cmp_u32);
    snprintf(name, sizeof(name), "%s.median", wl);
    bench_emit(name, lat[n / 2], "ns");
    snprintf(name, sizeof(name), "%s.p99", wl);
    bench_emit(name, lat[(size_t)(0.99 * (double)(n - 1))], "ns");
    if (getenv("BENCH_HIST")) {
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += lat[i];
        fprintf(stderr,
                "mean %.0f p10 %u p50 %u p75 %u p90 %u p95 %u p99 %u p999 %u "
                "max %u\n",
                sum / (double)n, lat[n / 10], lat[n / 2], lat[n * 3 / 4],
                lat[n * 9 / 10], lat[n * 95 / 100], lat[n * 99 / 100],
                lat[n * 999 / 1000], lat[n - 1]);
    }
}

/* A one-shot completion flag that shard threads set and main waits on. */
struct bench_done {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
};

#define BENCH_DONE_INIT                                                        \
    {                                                                          \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0                 \
    }

static inline void
bench_done_set(struct bench_done *d)
{
    pthread_mutex_lock(&d->lock);
    d->done = 1;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

/* Waits up to |seconds|; 0 when done, -1 on time-out. */
static inline int
bench_done_wait(struct bench_done *d, int seconds)
{
    struct timespec ts;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += seconds;
    pthread_mutex_lock(&d->lock);
    while (!d->done && rc == 0)
        rc = pthread_cond_timedwait(&d->cond, &d->lock, &ts);
    rc = d->done ? 0 : -1;
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/*
 * Observed runs (bench/observe.sh; w1 and w5 honour it): with
 * BENCH_OBSERVE=DIR in the environment, the node a benchmark measures listens
 * on 127.0.0.1 (its data dir and cluster key in DIR, made here unless given),
 * serves /metrics on 127.0.0.1:0, writes "NODE_ADDR METRICS_ADDR KEY_FILE" to
 * DIR/addr, and the measured loop starts only once DIR/go exists (the script
 * creates it when its observers run, or at once for the unobserved runs),
 * waiting at most 60 s.  Without it nothing changes.
 */
static inline const char *
bench_observe_dir(void)
{
    const char *d = getenv("BENCH_OBSERVE");
    return d && *d ? d : NULL;
}

/* The cluster key of an observed local node: DIR/cluster.key, made once. */
static inline const char *
bench_observe_key(void)
{
    static char key[512];
    struct stat st;

    snprintf(key, sizeof(key), "%s/cluster.key", bench_observe_dir());
    if (stat(key, &st) != 0 && mm_cluster_keygen(key) != 0) {
        fprintf(stderr, "bench: cannot write %s\n", key);
        exit(1);
    }
    return key;
}

/* Serves /metrics for |n| (before it starts). */
static inline void
bench_observe_metrics(mm_node *n)
{
    int rc = mm_node_serve_metrics(n, "127.0.0.1:0");

    if (rc != 0) {
        fprintf(stderr, "bench: serve metrics: %s\n", mm_strerror(rc));
        exit(1);
    }
}

/* Writes DIR/addr for |n| (atomically: a rename). */
static inline void
bench_observe_publish(mm_node *n, const char *key)
{
    char tmp[512], path[512];
    const char *dir = bench_observe_dir();
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s/addr.tmp", dir);
    snprintf(path, sizeof(path), "%s/addr", dir);
    f = fopen(tmp, "w");
    if (f == NULL ||
        fprintf(f, "%s %s %s\n", mm_node_addr(n), mm_node_metrics_addr(n),
                key) < 0 ||
        fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "bench: cannot write %s\n", path);
        exit(1);
    }
}

/* Waits for DIR/go, at most 60 s (then exits 1). */
static inline void
bench_observe_wait(void)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/go", bench_observe_dir());
    for (int i = 0; i < 6000; i++) {
        if (stat(path, &st) == 0) return;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "bench: no %s within 60 s\n", path);
    exit(1);
}

/* A node with |shards| shards (0 = 1), |types| registered: local only, or
 * listening on 127.0.0.1 with /metrics under BENCH_OBSERVE (above). */
static inline mm_node *
bench_node(const char *name, int shards, const mm_actor_type *const *types,
           size_t ntypes)
{
    mm_node_config cfg;
    mm_node *n = NULL;
    char data[512];
    int rc;

    mm_node_config_init(&cfg);
    cfg.name = name;
    cfg.shards = shards;
    if (bench_observe_dir()) {
        snprintf(data, sizeof(data), "%s/node", bench_observe_dir());
        cfg.listen = "127.0.0.1:0";
        cfg.data_dir = data;
        cfg.cluster_key_file = bench_observe_key();
        cfg.mdns = 0;
    }
    if ((rc = mm_node_new(&n, &cfg)) != 0) {
        fprintf(stderr, "%s: mm_node_new: %s\n", name, mm_strerror(rc));
        exit(1);
    }
    for (size_t i = 0; i < ntypes; i++)
        if ((rc = mm_node_register_type(n, types[i])) != 0) {
            fprintf(stderr, "%s: register %s: %s\n", name, types[i]->name,
                    mm_strerror(rc));
            exit(1);
        }
    if (bench_observe_dir()) bench_observe_metrics(n);
    if ((rc = mm_node_start_thread(n)) != 0) {
        fprintf(stderr, "%s: start: %s\n", name, mm_strerror(rc));
        exit(1);
    }
    return n;
}

static inline void
bench_node_end(mm_node *n)
{
    mm_node_stop(n);
    mm_node_join(n);
    mm_node_free(n);
}

static inline void
bench_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "bench: %s: %s\n", what, mm_strerror(rc));
        exit(1);
    }
}

/* argv[i] as a positive integer, or |def|. */
static inline long
bench_arg(int argc, char **argv, int i, long def)
{
    return argc > i ? atol(argv[i]) : def;
}

#endif /* MM_BENCH_H */
