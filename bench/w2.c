/*
 * w2.c — W2 one-way throughput (anchor: Erlang's `Recv ! K` flood).
 *
 *   w2 [N] [SHARDS] [typed]   N = 10000000 messages, SHARDS = 1
 *
 * A sender actor tells the receiver N integer messages; the receiver
 * counts.  Time runs from the first send to the N-th receive.  Mailboxes
 * are bounded (docs/design.md, Shards), so the sender sends until the
 * receiver's mailbox is full (MM_EOVERLOADED: a mailbox-sized batch) and
 * resumes from mm_endpoint_when_writable().  Prints
 * murmer,W2.one-way.{send-side,throughput} and W2.one-way.peak-rss.
 * With "typed" the messages are typed (murmer_typed.h: a struct holding
 * the integer, made with mm_typed_msg_new, and a typed handler): it
 * prints W2.one-way-typed.*.
 */
#include <stdatomic.h>

#include "bench.h"

#include <murmer_typed.h>

MM_MESSAGE(w2msg, "tmsg", (MM_U64(k)), (MM_NONE));
static int g_typed;

static struct {
    mm_node *n;
    mm_endpoint recv;
    uint32_t msg_id;
    uint64_t total, sent, received;
    uint64_t t0, t_sent, t_end;
    uint64_t batches;
    mm_msg *pending; /* refused by a full mailbox; sent again later */
    int failed;
    struct bench_done done;
} g = {.done = BENCH_DONE_INIT};

struct state {
    char unused;
};

static int
recv_msg(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    if (++g.received == g.total) {
        g.t_end = bench_now_ns();
        bench_done_set(&g.done);
    }
    return 0;
}

static int
recv_tmsg(mm_ctx *ctx, void *state, const w2msg_req *in, w2msg_rep *out)
{
    (void)ctx;
    (void)state;
    (void)out;
    if (in->k + 1 != ++g.received) g.failed = 1;
    if (g.received == g.total) {
        g.t_end = bench_now_ns();
        bench_done_set(&g.done);
    }
    return 0;
}
MM_HANDLES(w2msg, recv_tmsg);

static void
w2_fail(const char *what, int rc)
{
    fprintf(stderr, "w2: %s: %s\n", what, mm_strerror(rc));
    g.failed = 1;
    bench_done_set(&g.done);
}

/* Sends until done or the mailbox is full; runs on the sender's shard. */
static void
w2_pump(void *data)
{
    int rc;

    (void)data;
    g.batches++;
    while (g.sent < g.total) {
        mm_msg *m = g.pending;
        g.pending = NULL;
        if (m == NULL && g_typed) {
            w2msg_req req = {.k = g.sent};
            m = mm_typed_msg_new(g.n, &g.recv, &w2msg_desc, &req);
        } else if (m == NULL) {
            m = mm_msg_new_id(g.n, g.msg_id, (void *)(uintptr_t)g.sent, NULL);
        }
        rc = mm_tell(g.n, &g.recv, m);
        if (rc == MM_EOVERLOADED) {
            g.pending = m;
            rc = mm_endpoint_when_writable(g.n, &g.recv, w2_pump, NULL);
            if (rc != 0) w2_fail("when_writable", rc);
            return;
        }
        if (rc != 0) {
            mm_msg_free(m);
            w2_fail("tell", rc);
            return;
        }
        g.sent++;
    }
    g.t_sent = bench_now_ns();
}

static int
send_go(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    g.t0 = bench_now_ns();
    w2_pump(NULL);
    return 0;
}

MM_ACTOR_TYPE(w2recv, struct state, NULL, NULL, MM_HANDLER("msg", recv_msg),
              MM_TYPED(w2msg, recv_tmsg));
MM_ACTOR_TYPE(w2send, struct state, NULL, NULL, MM_HANDLER("go", send_go));

int
main(int argc, char **argv)
{
    static const mm_actor_type *const types[] = {&w2recv_type, &w2send_type};
    mm_spawn_opts o;
    mm_endpoint sender;
    int shards;

    g.total = (uint64_t)bench_arg(argc, argv, 1, 10000000);
    shards = (int)bench_arg(argc, argv, 2, 1);
    g_typed = argc > 3 && strcmp(argv[3], "typed") == 0;
    fprintf(stderr,
            "w2: note: mailboxes are bounded; the sender sends mailbox-sized "
            "batches and continues on mm_endpoint_when_writable()\n");
    g.n = bench_node("bench-w2", shards, types, 2);
    g.msg_id = mm_node_msg_id(g.n, "msg");
    mm_spawn_opts_init(&o);
    o.shard = 0;
    bench_check(mm_spawn(g.n, "w2recv", &o, &g.recv), "spawn receiver");
    o.shard = shards > 1 ? 1 : 0;
    bench_check(mm_spawn(g.n, "w2send", &o, &sender), "spawn sender");
    bench_check(mm_tell(g.n, &sender, mm_msg_new("go")), "go");
    if (bench_done_wait(&g.done, 120) != 0) {
        fprintf(stderr, "w2: timed out\n");
        return 1;
    }
    if (!g.failed) {
        const char *sfx =
            shards > 1 ? (g_typed ? "-typed-cross-shard" : "-cross-shard")
                       : (g_typed ? "-typed" : "");
        char name[96];
        snprintf(name, sizeof(name), "W2.one-way%s.send-side", sfx);
        bench_emit(name, (double)g.total * 1e9 / (double)(g.t_sent - g.t0),
                   "msg/s");
        snprintf(name, sizeof(name), "W2.one-way%s.throughput", sfx);
        bench_emit(name, (double)g.total * 1e9 / (double)(g.t_end - g.t0),
                   "msg/s");
        snprintf(name, sizeof(name), "W2.one-way%s.peak-rss", sfx);
        bench_emit(name, (double)bench_proc_kb("VmHWM:") * 1024.0, "bytes");
        fprintf(stderr, "w2: %llu batches (writable wake-ups)\n",
                (unsigned long long)g.batches);
    }
    bench_node_end(g.n);
    return g.failed;
}
