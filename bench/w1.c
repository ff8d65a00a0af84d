/*
 * w1.c — W1 request/reply on one shard (anchor: CAF's `request().then`).
 *
 *   w1 [N] [WARM] [typed]   N = 1000000 measured round trips, WARM = 10000
 *
 * Under BENCH_OBSERVE=DIR (bench.h, bench/observe.sh) the node listens and
 * serves /metrics, and the run starts when DIR/go exists.
 *
 * A client actor calls the server; the server replies with its argument
 * (an integer carried as a pointer payload, like CAF's int32); the reply
 * callback takes the second timestamp and issues the next call.  Prints
 * murmer,W1.req-reply.{throughput,median,p99}.
 *
 * With "typed" the same through typed messages (murmer_typed.h): the
 * request and the reply are structs holding the integer, the server a
 * typed handler and the client the w1req_send() stub with a typed reply
 * callback; it prints W1.req-reply-typed.*.
 */
#include "bench.h"

#include <murmer_typed.h>

MM_MESSAGE(w1req, "treq", (MM_U64(v)), (MM_U64(v)));

struct w1 {
    mm_node *n;
    mm_endpoint server;
    uint32_t req_id;
    uint64_t i, n_meas, warm;
    uint64_t t0, tstart, elapsed;
    uint32_t *lat;
    int failed;
    struct bench_done done;
};

static struct w1 g = {.done = BENCH_DONE_INIT};

struct server_state {
    char unused;
};
struct client_state {
    char unused;
};

static int
server_req(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)state;
    mm_reply_ptr(ctx, mm_msg_ptr(msg), NULL);
    return 0;
}

static int
server_treq(mm_ctx *ctx, void *state, const w1req_req *in, w1req_rep *out)
{
    (void)ctx;
    (void)state;
    out->v = in->v;
    return 0;
}
MM_HANDLES(w1req, server_treq);

static int g_typed;
static void w1_next(void);

static void
w1_fail(const char *what, int status)
{
    fprintf(stderr, "w1: %s at %llu: %s\n", what, (unsigned long long)g.i,
            mm_strerror(status));
    g.failed = 1;
    bench_done_set(&g.done);
}

static void
w1_typed_cb(void *data, int status, const w1req_rep *rep)
{
    uint64_t t = bench_now_ns();

    (void)data;
    if (status != 0 || rep->v != g.i) {
        w1_fail("bad typed reply", status);
        return;
    }
    if (g.i >= g.warm) g.lat[g.i - g.warm] = (uint32_t)(t - g.t0);
    g.i++;
    w1_next();
}

static void
w1_reply_cb(void *data, int status, mm_msg *reply)
{
    uint64_t t = bench_now_ns();

    (void)data;
    if (status != 0 || (uintptr_t)mm_msg_ptr(reply) != (uintptr_t)g.i) {
        fprintf(stderr, "w1: bad reply at %llu: %s\n", (unsigned long long)g.i,
                mm_strerror(status));
        g.failed = 1;
        bench_done_set(&g.done);
        return;
    }
    if (g.i >= g.warm) g.lat[g.i - g.warm] = (uint32_t)(t - g.t0);
    g.i++;
    w1_next();
}

static void
w1_next(void)
{
    mm_msg *m;
    int rc;

    if (g.i == g.warm + g.n_meas) {
        g.elapsed = bench_now_ns() - g.tstart;
        bench_done_set(&g.done);
        return;
    }
    if (g.i == g.warm) g.tstart = bench_now_ns();
    g.t0 = bench_now_ns();
    if (g_typed) {
        w1req_req req = {.v = g.i};
        rc = w1req_send(g.n, &g.server, &req, w1_typed_cb, NULL);
        if (rc != 0) w1_fail("typed send", rc);
        return;
    }
    m = mm_msg_new_id(g.n, g.req_id, (void *)(uintptr_t)g.i, NULL);
    rc = mm_send(g.n, &g.server, m, w1_reply_cb, NULL);
    if (rc != 0) {
        fprintf(stderr, "w1: send: %s\n", mm_strerror(rc));
        mm_msg_free(m);
        g.failed = 1;
        bench_done_set(&g.done);
    }
}

static int
client_go(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    w1_next();
    return 0;
}

MM_ACTOR_TYPE(w1server, struct server_state, NULL, NULL,
              MM_HANDLER("req", server_req), MM_TYPED(w1req, server_treq));
MM_ACTOR_TYPE(w1client, struct client_state, NULL, NULL,
              MM_HANDLER("go", client_go));

int
main(int argc, char **argv)
{
    static const mm_actor_type *const types[] = {&w1server_type,
                                                 &w1client_type};
    mm_endpoint client;

    g.n_meas = (uint64_t)bench_arg(argc, argv, 1, 1000000);
    g.warm = (uint64_t)bench_arg(argc, argv, 2, 10000);
    g_typed = argc > 3 && strcmp(argv[3], "typed") == 0;
    g.lat = calloc(g.n_meas, sizeof(*g.lat));
    if (g.lat == NULL || g.n_meas == 0) return 1;
    g.n = bench_node("bench-w1", 1, types, 2);
    g.req_id = mm_node_msg_id(g.n, "req");
    bench_check(mm_spawn(g.n, "w1server", NULL, &g.server), "spawn server");
    bench_check(mm_spawn(g.n, "w1client", NULL, &client), "spawn client");
    if (bench_observe_dir()) {
        bench_observe_publish(g.n, bench_observe_key());
        bench_observe_wait();
    }
    bench_check(mm_tell(g.n, &client, mm_msg_new("go")), "go");
    if (bench_done_wait(&g.done, 120) != 0) {
        fprintf(stderr, "w1: timed out at %llu\n", (unsigned long long)g.i);
        return 1;
    }
    if (!g.failed)
        bench_report_latency(g_typed ? "W1.req-reply-typed" : "W1.req-reply",
                             g.lat, g.n_meas, g.elapsed, "rt/s");
    bench_node_end(g.n);
    free(g.lat);
    return g.failed;
}
