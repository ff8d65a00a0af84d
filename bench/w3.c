/*
 * w3.c — W3 ring (anchor: Erlang/CAF ring of 1000 with one token).
 *
 *   w3 [ACTORS] [HOPS]  ACTORS = 1000, HOPS = 10000000
 *
 * ACTORS actors in a ring pass one integer token, decremented at every hop;
 * the actor that receives 0 signals the main thread.  Prints
 * murmer,W3.ring<ACTORS>.throughput in hops/s.
 */
#include "bench.h"

static struct {
    mm_node *n;
    mm_endpoint *eps;
    size_t nactors;
    uint32_t hop_id;
    int failed;
    struct bench_done done;
} g = {.done = BENCH_DONE_INIT};

struct ring_state {
    size_t next; /* index of the next actor in the ring */
};

static int
ring_start(mm_ctx *ctx, void *state)
{
    struct ring_state *s = state;

    s->next = ((size_t)(uintptr_t)mm_ctx_arg_ptr(ctx) + 1) % g.nactors;
    return 0;
}

static int
ring_hop(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct ring_state *s = state;
    uintptr_t hops = (uintptr_t)mm_msg_ptr(msg);
    mm_msg *m;
    int rc;

    (void)ctx;
    if (hops == 0) {
        bench_done_set(&g.done);
        return 0;
    }
    m = mm_msg_new_id(g.n, g.hop_id, (void *)(hops - 1), NULL);
    if ((rc = mm_tell(g.n, &g.eps[s->next], m)) != 0) {
        fprintf(stderr, "w3: tell: %s\n", mm_strerror(rc));
        mm_msg_free(m);
        g.failed = 1;
        bench_done_set(&g.done);
    }
    return 0;
}

MM_ACTOR_TYPE(ring, struct ring_state, ring_start, NULL,
              MM_HANDLER("hop", ring_hop));

int
main(int argc, char **argv)
{
    static const mm_actor_type *const types[] = {&ring_type};
    uint64_t hops, t0, el;
    mm_spawn_opts o;
    char name[64];

    g.nactors = (size_t)bench_arg(argc, argv, 1, 1000);
    hops = (uint64_t)bench_arg(argc, argv, 2, 10000000);
    if (g.nactors < 1 || (g.eps = calloc(g.nactors, sizeof(*g.eps))) == NULL)
        return 1;
    g.n = bench_node("bench-w3", 1, types, 1);
    g.hop_id = mm_node_msg_id(g.n, "hop");
    mm_spawn_opts_init(&o);
    for (size_t i = 0; i < g.nactors; i++) {
        o.arg_ptr = (void *)(uintptr_t)i;
        bench_check(mm_spawn(g.n, "ring", &o, &g.eps[i]), "spawn");
    }
    t0 = bench_now_ns();
    bench_check(
        mm_tell(g.n, &g.eps[0],
                mm_msg_new_id(g.n, g.hop_id, (void *)(uintptr_t)hops, NULL)),
        "first hop");
    if (bench_done_wait(&g.done, 120) != 0) {
        fprintf(stderr, "w3: timed out\n");
        return 1;
    }
    el = bench_now_ns() - t0;
    if (!g.failed) {
        snprintf(name, sizeof(name), "W3.ring%zu.throughput", g.nactors);
        bench_emit(name, (double)hops * 1e9 / (double)el, "hops/s");
    }
    bench_node_end(g.n);
    free(g.eps);
    return g.failed;
}
