/*
 * w5.c — W5 remote request/reply between two OS processes on loopback
 * (anchors: CAF's and Erlang's W5, the UDP floor W6).
 *
 *   w5 seq [N] [WARM]     sequential calls, 64-byte JSON: throughput,
 *                         median, p99 (run it under `taskset -c 0`)
 *   w5 seqt [N] [WARM]    seq through typed messages: a typed echo actor
 *                         (string field p) called with the w5echo_send()
 *                         stub, reply decoded for a typed callback; the
 *                         same 64 bytes of JSON each way
 *   w5 pipe [N] [DEPTH]   DEPTH (100) calls in flight, each reply sends the
 *                         next: throughput
 *   w5 connect [N] [TAG]  N fresh client nodes (each its own data dir and
 *                         identity): time from the first dial (the node's
 *                         start, which dials its seed) to the first
 *                         successful call: handshake + auth + one call.
 *                         TAG names the run: W5.remote.connect.TAG.median
 *                         (bench/run.sh runs it a second time under
 *                         taskset -c 0 as "pinned")
 *
 * The process forks a server child (before any thread exists) that runs a
 * node with the built-in echo actor and sends its address and the echo's
 * endpoint up a pipe; the parent runs a client node and drives the calls
 * from the client's network shard (reply callbacks send the next call), so
 * no cross-thread hop is measured.  For seq and pipe both nodes run on
 * their process's main thread (mm_node_run), as `murmer start` runs one:
 * one thread per process.  Prints `murmer,W5.remote.*` CSV lines.
 *
 * Under BENCH_OBSERVE=DIR (bench.h, bench/observe.sh) the server node also
 * serves /metrics and writes its addresses to DIR/addr, and the client
 * starts when DIR/go exists.
 */
#include "bench.h"

#include <murmer_typed.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#define PAYLOAD_LEN 64

static char g_dir[256];
static char g_key[300];
static char g_server_addr[96];
static mm_endpoint g_echo, g_techo;
static int g_typed;

/* {"p":"xxx..."}: 64 bytes of JSON, as the untyped payload. */
MM_MESSAGE(w5echo, "techo", (MM_STR(p, 64)), (MM_STR(p, 64)));

static int
techo(mm_ctx *ctx, void *state, const w5echo_req *in, w5echo_rep *out)
{
    (void)ctx;
    (void)state;
    out->p = in->p;
    return 0;
}
MM_HANDLES(w5echo, techo);
MM_ACTOR_TYPE(w5techo, char, NULL, NULL, MM_TYPED(w5echo, techo));
static pid_t g_server;
static char g_payload[PAYLOAD_LEN + 1];

/* ---- server (child) ------------------------------------------------------ */

/*
 * SIGTERM stops the server node from its own loop (a uv_signal on shard 0),
 * so that the server process has one thread, as `murmer start` with one
 * shard and no mDNS has: a second thread, even an idle one, costs every
 * context switch of the pinned exchange (~2.5% of the UDP floor's round
 * trips, measured with an idle thread added to each process).
 */
static uv_signal_t g_term;

static void
server_term_cb(uv_signal_t *h, int sig)
{
    (void)sig;
    uv_close((uv_handle_t *)h, NULL);
    mm_node_stop(h->data);
}

static void
server_term_init(void *arg)
{
    mm_node *n = arg;

    sigset_t set;

    uv_signal_init(mm_node_loop(n, 0), &g_term);
    g_term.data = n;
    uv_signal_start(&g_term, server_term_cb, SIGTERM);
    /* Blocked since the fork, so that no SIGTERM came before this. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void
server_main(int fd)
{
    mm_node_config cfg;
    mm_node *n = NULL;
    mm_endpoint ep, tep;
    char data[400], line[256], eps[80], teps[80];
    sigset_t set;
    int len;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    snprintf(data, sizeof(data), "%s/server", g_dir);
    mm_node_config_init(&cfg);
    cfg.name = "w5-server";
    cfg.listen = "127.0.0.1:0";
    cfg.data_dir = data;
    cfg.cluster_key_file = g_key;
    cfg.mdns = 0;
    if (mm_node_new(&n, &cfg) != 0 ||
        (bench_observe_dir() && mm_node_serve_metrics(n, "127.0.0.1:0")) ||
        mm_node_register_builtins(n) != 0 ||
        mm_spawn(n, "echo", NULL, &ep) != 0 ||
        mm_node_register_type(n, &w5techo_type) != 0 ||
        mm_spawn(n, "w5techo", NULL, &tep) != 0) {
        len = snprintf(line, sizeof(line), "ERR\n");
        if (write(fd, line, (size_t)len) < 0) _exit(2);
        _exit(2);
    }
    len = snprintf(line, sizeof(line), "%s %s %s\n", mm_node_addr(n),
                   mm_endpoint_format(&ep, eps, sizeof(eps)),
                   mm_endpoint_format(&tep, teps, sizeof(teps)));
    if (write(fd, line, (size_t)len) != len) _exit(2);
    close(fd);
    if (bench_observe_dir()) bench_observe_publish(n, g_key);
    if (mm_node_post(n, 0, server_term_init, n) != 0) _exit(3);
    mm_node_run(n);
    mm_node_free(n);
    _exit(0);
}

static void
server_start(void)
{
    char buf[256];
    size_t got = 0;
    int p[2];

    if (pipe(p) != 0) exit(1);
    fflush(stdout);
    fflush(stderr);
    g_server = fork();
    if (g_server < 0) exit(1);
    if (g_server == 0) {
        close(p[0]);
        server_main(p[1]);
    }
    close(p[1]);
    while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
        struct pollfd pfd = {p[0], POLLIN, 0};
        ssize_t r;

        if (poll(&pfd, 1, 30000) <= 0) break;
        r = read(p[0], buf + got, sizeof(buf) - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(p[0]);
    buf[got] = '\0';
    char eps[96], teps[96];
    if (sscanf(buf, "%95s %95s %95s", g_server_addr, eps, teps) != 3 ||
        mm_endpoint_parse(&g_echo, eps) != 0 ||
        mm_endpoint_parse(&g_techo, teps) != 0) {
        fprintf(stderr, "w5: server did not start: '%s'\n", buf);
        exit(1);
    }
}

static void
server_stop(void)
{
    int st;

    if (g_server <= 0) return;
    kill(g_server, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(g_server, &st, WNOHANG) == g_server) {
            g_server = 0;
            return;
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    kill(g_server, SIGKILL);
    waitpid(g_server, &st, 0);
    g_server = 0;
}

/* ---- client ----------------------------------------------------------------
 */

static mm_node *
client_new(const char *name)
{
    mm_node_config cfg;
    mm_node *n = NULL;
    char data[400];
    const char *seeds[1] = {g_server_addr};

    snprintf(data, sizeof(data), "%s/%s", g_dir, name);
    mm_node_config_init(&cfg);
    cfg.name = name;
    cfg.listen = "127.0.0.1:0";
    cfg.data_dir = data;
    cfg.cluster_key_file = g_key;
    cfg.join = seeds;
    cfg.njoin = 1;
    cfg.mdns = 0;
    bench_check(mm_node_new(&n, &cfg), "client node");
    return n;
}

static mm_msg *
payload_msg(void)
{
    return mm_msg_new_json(g_typed ? "techo" : "echo", g_payload, PAYLOAD_LEN);
}

struct run {
    mm_node *n;
    uint64_t i, total, warm, sent, depth;
    uint64_t t0, tstart, elapsed;
    uint32_t *lat;
    int failed;
};

static struct run g;

/*
 * seq and pipe run the client node on the main thread (mm_node_run), as
 * the server and `murmer start` do: each process has one thread.  The
 * workload starts from the loop once a first call has gone through (a
 * uv_check handle retries it after every I/O phase while the seed
 * connection is set up) and ends with mm_node_stop() from the loop.
 */
static struct {
    uv_check_t check;
    uv_timer_t bound;
    int inflight, up;
    void (*go)(void);
} g_run;

static int check_reply(int status, mm_msg *reply);

static void
run_end(void)
{
    if (!uv_is_closing((uv_handle_t *)&g_run.bound))
        uv_close((uv_handle_t *)&g_run.bound, NULL);
    if (!uv_is_closing((uv_handle_t *)&g_run.check))
        uv_close((uv_handle_t *)&g_run.check, NULL);
    mm_node_stop(g.n);
}

static void
run_timeout(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "w5: timed out at %llu\n", (unsigned long long)g.i);
    g.failed = 1;
    run_end();
}

static void
warm_cb(void *data, int status, mm_msg *reply)
{
    (void)data;
    g_run.inflight = 0;
    if (status == MM_EUNREACHABLE) return; /* not yet: the check retries */
    g_run.up = 1;
    uv_close((uv_handle_t *)&g_run.check, NULL);
    if (check_reply(status, reply) != 0) {
        g.failed = 1;
        run_end();
        return;
    }
    g_run.go();
}

static void
warm_check(uv_check_t *h)
{
    mm_msg *m;

    (void)h;
    if (g_run.inflight || g_run.up) return;
    m = payload_msg();
    g_run.inflight = 1;
    /* The typed echo answers JSON callers with the same bytes. */
    if (mm_send(g.n, g_typed ? &g_techo : &g_echo, m, warm_cb, NULL) != 0) {
        mm_msg_free(m);
        g_run.inflight = 0;
    }
}

static void
warm_start(void *arg)
{
    uv_loop_t *loop = mm_node_loop(g.n, 0);

    (void)arg;
    uv_timer_init(loop, &g_run.bound);
    uv_timer_start(&g_run.bound, run_timeout, 110000, 0);
    uv_check_init(loop, &g_run.check);
    uv_check_start(&g_run.check, warm_check);
}

/* Runs |go| on the client node's loop, on this thread, until run_end(). */
static void
client_run(void (*go)(void))
{
    g.n = client_new("client");
    g_run.go = go;
    bench_check(mm_node_post(g.n, 0, warm_start, NULL), "post");
    bench_check(mm_node_run(g.n), "client run");
    mm_node_free(g.n);
}

static int
check_reply(int status, mm_msg *reply)
{
    size_t len = 0;
    const void *p;

    if (status != 0) {
        fprintf(stderr, "w5: call failed: %s\n", mm_strerror(status));
        return -1;
    }
    p = mm_msg_data(reply, &len);
    if (len != PAYLOAD_LEN || memcmp(p, g_payload, len) != 0) {
        fprintf(stderr, "w5: bad echo\n");
        return -1;
    }
    return 0;
}

static void seq_next(void);

static void
seq_cb(void *data, int status, mm_msg *reply)
{
    uint64_t t = bench_now_ns();

    (void)data;
    if (check_reply(status, reply) != 0) {
        g.failed = 1;
        run_end();
        return;
    }
    if (g.i >= g.warm) g.lat[g.i - g.warm] = (uint32_t)(t - g.t0);
    g.i++;
    seq_next();
}

static void
seq_tcb(void *data, int status, const w5echo_rep *rep)
{
    uint64_t t = bench_now_ns();

    (void)data;
    if (status != 0 || strlen(rep->p) != PAYLOAD_LEN - 8 ||
        memcmp(rep->p, g_payload + 6, PAYLOAD_LEN - 8) != 0) {
        fprintf(stderr, "w5: bad typed echo: %s\n", mm_strerror(status));
        g.failed = 1;
        run_end();
        return;
    }
    if (g.i >= g.warm) g.lat[g.i - g.warm] = (uint32_t)(t - g.t0);
    g.i++;
    seq_next();
}

static void
seq_next(void)
{
    mm_msg *m;

    if (g.i == g.warm + g.total) {
        g.elapsed = bench_now_ns() - g.tstart;
        run_end();
        return;
    }
    if (g.i == g.warm) g.tstart = bench_now_ns();
    if (g_typed) {
        static char p[PAYLOAD_LEN];
        memcpy(p, g_payload + 6, PAYLOAD_LEN - 8);
        w5echo_req req = {.p = p};
        g.t0 = bench_now_ns();
        if (w5echo_send(g.n, &g_techo, &req, seq_tcb, NULL) != 0) {
            g.failed = 1;
            run_end();
        }
        return;
    }
    m = payload_msg();
    g.t0 = bench_now_ns();
    if (mm_send(g.n, &g_echo, m, seq_cb, NULL) != 0) {
        mm_msg_free(m);
        g.failed = 1;
        run_end();
    }
}

static void
seq_go(void)
{
    seq_next();
}

static void pipe_send(void);

static void
pipe_cb(void *data, int status, mm_msg *reply)
{
    (void)data;
    if (g.failed) return;
    if (check_reply(status, reply) != 0) {
        g.failed = 1;
        run_end();
        return;
    }
    if (++g.i == g.total) {
        g.elapsed = bench_now_ns() - g.tstart;
        run_end();
        return;
    }
    if (g.sent < g.total) pipe_send();
}

static void
pipe_send(void)
{
    mm_msg *m = payload_msg();

    g.sent++;
    if (mm_send(g.n, &g_echo, m, pipe_cb, NULL) != 0) {
        mm_msg_free(m);
        g.failed = 1;
        run_end();
    }
}

static void
pipe_go(void)
{
    g.tstart = bench_now_ns();
    for (uint64_t k = 0; k < g.depth && g.sent < g.total; k++)
        pipe_send();
}

static int
run_seq(long n_meas, long warm)
{
    g.total = (uint64_t)n_meas;
    g.warm = (uint64_t)warm;
    g.lat = calloc(g.total, sizeof(*g.lat));
    if (!g.lat) return 1;
    client_run(seq_go);
    if (!g.failed)
        bench_report_latency(g_typed ? "W5.remote.seq64B-typed"
                                     : "W5.remote.seq64B",
                             g.lat, g.total, g.elapsed, "rt/s");
    free(g.lat);
    return g.failed;
}

static int
run_pipe(long n, long depth)
{
    char name[96];

    g.total = (uint64_t)n;
    g.depth = (uint64_t)depth;
    client_run(pipe_go);
    snprintf(name, sizeof(name), "W5.remote.pipelined%ld.64B.throughput",
             depth);
    if (!g.failed)
        bench_emit(name, (double)g.total * 1e9 / (double)g.elapsed, "msg/s");
    return g.failed;
}

/*
 * connect: a uv_check handle on the client's network loop tries the call
 * after every I/O phase until the seed connection is up (until then the
 * call fails at once with MM_EUNREACHABLE: the peer is not known yet).
 */
struct conn_try {
    mm_node *n;
    uv_check_t check;
    int inflight, ok, failed;
    uint64_t t_ok;
    struct bench_done done;
};

static void
conn_closed(uv_handle_t *h)
{
    struct conn_try *c = h->data;
    bench_done_set(&c->done);
}

static void
conn_cb(void *data, int status, mm_msg *reply)
{
    struct conn_try *c = data;
    uint64_t t = bench_now_ns();

    c->inflight = 0;
    if (status == MM_EUNREACHABLE) return; /* not yet: the check retries */
    if (check_reply(status, reply) != 0)
        c->failed = 1;
    else
        c->t_ok = t;
    c->ok = 1;
    uv_check_stop(&c->check);
    uv_close((uv_handle_t *)&c->check, conn_closed);
}

static void
conn_check(uv_check_t *h)
{
    struct conn_try *c = h->data;
    mm_msg *m;

    if (c->inflight || c->ok) return;
    m = payload_msg();
    c->inflight = 1;
    if (mm_send(c->n, &g_echo, m, conn_cb, c) != 0) {
        mm_msg_free(m);
        c->inflight = 0;
    }
}

static void
conn_go(void *arg)
{
    struct conn_try *c = arg;

    uv_check_init(mm_node_loop(c->n, 0), &c->check);
    c->check.data = c;
    uv_check_start(&c->check, conn_check);
}

static int
run_connect(long n, const char *tag)
{
    uint32_t *lat = calloc((size_t)n, sizeof(*lat));
    char name[64];
    uint64_t total = 0;

    if (!lat) return 1;
    for (long i = 0; i < n; i++) {
        struct conn_try c;
        uint64_t t0;

        memset(&c, 0, sizeof(c));
        pthread_mutex_init(&c.done.lock, NULL);
        pthread_cond_init(&c.done.cond, NULL);
        snprintf(name, sizeof(name), "c%ld", i);
        c.n = client_new(name);
        /* Queued before the start: runs right after the seed dial. */
        t0 = bench_now_ns();
        bench_check(mm_node_start_thread(c.n), "client start");
        bench_check(mm_node_post(c.n, 0, conn_go, &c), "post");
        if (bench_done_wait(&c.done, 20) != 0 || c.failed) {
            fprintf(stderr, "w5 connect: connection %ld failed\n", i);
            return 1;
        }
        lat[i] = (uint32_t)(c.t_ok - t0);
        total += lat[i];
        bench_node_end(c.n);
        pthread_mutex_destroy(&c.done.lock);
        pthread_cond_destroy(&c.done.cond);
    }
    qsort(lat, (size_t)n, sizeof(*lat), bench_cmp_u32);
    snprintf(name, sizeof(name), "W5.remote.connect%s%s.median", tag ? "." : "",
             tag ? tag : "");
    bench_emit(name, lat[n / 2], "ns");
    snprintf(name, sizeof(name), "W5.remote.connect%s%s.p99", tag ? "." : "",
             tag ? tag : "");
    bench_emit(name, lat[(size_t)(0.99 * (double)(n - 1))], "ns");
    free(lat);
    return 0;
}

static void
cleanup(void)
{
    char cmd[400];

    server_stop();
    if (g_dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "w5: cleanup failed\n");
    }
}

int
main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "seq";
    int rc;

    if (strcmp(mode, "seqt") == 0) {
        g_typed = 1;
        mode = "seq";
    }
    if (strcmp(mode, "seq") != 0 && strcmp(mode, "pipe") != 0 &&
        strcmp(mode, "connect") != 0) {
        fprintf(stderr, "usage: w5 seq|seqt [N] [WARM] | pipe [N] [DEPTH] | "
                        "connect [N] [TAG]\n");
        return 2;
    }
    memset(g_payload, 'x', PAYLOAD_LEN);
    memcpy(g_payload, "{\"p\":\"", 6);
    memcpy(g_payload + PAYLOAD_LEN - 2, "\"}", 2);
    snprintf(g_dir, sizeof(g_dir), "/tmp/murmer-w5-XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    snprintf(g_key, sizeof(g_key), "%s/cluster.key", g_dir);
    bench_check(mm_cluster_keygen(g_key), "keygen");
    server_start();
    if (bench_observe_dir()) bench_observe_wait();
    if (strcmp(mode, "seq") == 0)
        rc = run_seq(bench_arg(argc, argv, 2, 100000),
                     bench_arg(argc, argv, 3, 5000));
    else if (strcmp(mode, "pipe") == 0)
        rc = run_pipe(bench_arg(argc, argv, 2, 500000),
                      bench_arg(argc, argv, 3, 100));
    else
        rc = run_connect(bench_arg(argc, argv, 2, 50),
                         argc > 3 ? argv[3] : NULL);
    cleanup();
    return rc;
}
