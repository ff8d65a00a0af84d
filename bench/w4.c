/*
 * w4.c — W4 spawn + terminate, and the memory of idle actors (anchors:
 * CAF's spawn of behaviour-less actors, Erlang's spawn(fun nop/0)).
 *
 *   w4 [N] [IDLE]       N = 1000000 spawn+terminate, IDLE = 100000
 *
 * Spawn: the main thread spawns N actors whose start hook stops them at
 * once; the time runs until the last stop hook ran.  Idle: IDLE actors with
 * one handler, each sent one message (so every one has started and run);
 * VmRSS delta / IDLE after 500 ms.  Prints murmer,W4.spawn-terminate.
 * throughput, W4.idle-spawn.throughput and W4.rss-per-idle-actor.
 */
#include <sched.h>
#include <stdatomic.h>

#include "bench.h"

static _Atomic uint64_t g_stopped, g_pinged;

struct state {
    char unused;
};

static int
nop_start(mm_ctx *ctx, void *state)
{
    int rc = mm_actor_stop(mm_ctx_node(ctx), mm_ctx_self(ctx));

    (void)state;
    if (rc != 0)
        fprintf(stderr, "w4: mm_actor_stop(self): %s\n", mm_strerror(rc));
    return 0;
}

static void
nop_stop(mm_ctx *ctx, void *state, int reason)
{
    (void)ctx;
    (void)state;
    (void)reason;
    atomic_fetch_add_explicit(&g_stopped, 1, memory_order_relaxed);
}

static int
idle_ping(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    atomic_fetch_add_explicit(&g_pinged, 1, memory_order_relaxed);
    return 0;
}

/* The nop handler table is never used: the actor stops in its start hook. */
static int
nop_never(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    return 0;
}

MM_ACTOR_TYPE(nop, struct state, nop_start, nop_stop,
              MM_HANDLER("never", nop_never));
MM_ACTOR_TYPE(idle, struct state, NULL, NULL, MM_HANDLER("ping", idle_ping));

/* Spins (yielding) until *|c| >= |want| or |seconds| pass; 0 when reached. */
static int
wait_atomic(_Atomic uint64_t *c, uint64_t want, int seconds)
{
    uint64_t until = bench_now_ns() + (uint64_t)seconds * 1000000000u;
    struct timespec ts = {0, 50000};

    while (atomic_load_explicit(c, memory_order_relaxed) < want) {
        if (bench_now_ns() > until) return -1;
        nanosleep(&ts, NULL);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static const mm_actor_type *const types[] = {&nop_type, &idle_type};
    uint64_t n = (uint64_t)bench_arg(argc, argv, 1, 1000000);
    uint64_t nidle = (uint64_t)bench_arg(argc, argv, 2, 100000);
    struct timespec settle = {0, 200000000}, idle_wait = {0, 500000000};
    mm_endpoint *eps;
    mm_node *node;
    uint64_t t0, el, el2;
    long rss0, rss1;
    uint32_t ping_id;
    int rc;

    /*
     * Idle actors first, in a fresh process, so that the heap freed by the
     * spawn+terminate phase does not hide their memory.  The endpoint array
     * is touched before the baseline.
     */
    if ((eps = calloc(nidle, sizeof(*eps))) == NULL) return 1;
    memset(eps, 0xff, nidle * sizeof(*eps));
    node = bench_node("bench-w4-idle", 1, types, 2);
    ping_id = mm_node_msg_id(node, "ping");
    nanosleep(&settle, NULL);
    rss0 = bench_proc_kb("VmRSS:");
    t0 = bench_now_ns();
    for (uint64_t i = 0; i < nidle; i++)
        bench_check(mm_spawn(node, "idle", NULL, &eps[i]), "spawn idle");
    el = bench_now_ns() - t0;
    for (uint64_t i = 0; i < nidle; i++)
        bench_check(
            mm_tell(node, &eps[i], mm_msg_new_id(node, ping_id, NULL, NULL)),
            "ping");
    if (wait_atomic(&g_pinged, nidle, 60) != 0) {
        fprintf(stderr, "w4: idle actors did not all run\n");
        return 1;
    }
    nanosleep(&idle_wait, NULL);
    rss1 = bench_proc_kb("VmRSS:");
    bench_node_end(node);
    free(eps);

    /* Spawn + terminate. */
    node = bench_node("bench-w4", 1, types, 2);
    t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        while ((rc = mm_spawn(node, "nop", NULL, NULL)) == MM_EOVERLOADED)
            sched_yield();
        bench_check(rc, "spawn nop");
    }
    if (wait_atomic(&g_stopped, n, 60) != 0) {
        fprintf(stderr, "w4: only %llu of %llu stopped\n",
                (unsigned long long)atomic_load(&g_stopped),
                (unsigned long long)n);
        return 1;
    }
    el2 = bench_now_ns() - t0;
    bench_node_end(node);

    bench_emit("W4.spawn-terminate.throughput", (double)n * 1e9 / (double)el2,
               "actors/s");
    bench_emit("W4.idle-spawn.throughput", (double)nidle * 1e9 / (double)el,
               "actors/s");
    bench_emit("W4.rss-per-idle-actor",
               (double)(rss1 - rss0) * 1024.0 / (double)nidle, "bytes");
    return 0;
}
