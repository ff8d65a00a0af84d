/*
 * test_remote.c — location transparency over real QUIC on loopback: two
 * nodes in one process (each with its own loops, identity and socket),
 * calls both ways, typed errors, wrong key, stale generation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/socket.h>

#include <cJSON.h>

#include "murmer.h"
#include "helpers/nodefix.h"
#include "helpers/testutil.h"
#include "cluster.h"
#include "runtime.h"
#include "transport/quic.h"

struct fx {
    char dir[256];
    char key_a[300], key_b[300];
    mm_node *a, *b;
};

static mm_node *
node_new_at(struct fx *fx, const char *name, const char *key, const char *join,
            const char *listen)
{
    return nodefix_new(&(struct nodefix_opts){.name = name,
                                              .dir = fx->dir,
                                              .listen = listen,
                                              .key = key,
                                              .join = join,
                                              .builtins = 1});
}

static mm_node *
node_up(struct fx *fx, const char *name, const char *key, const char *join)
{
    mm_node *n = node_new_at(fx, name, key, join, "127.0.0.1:0");
    assert_non_null(mm_node_addr(n));
    nodefix_start(n);
    return n;
}

static int call_retry(mm_node *n, const mm_endpoint *ep, const char *type,
                      const char *json, mm_msg **reply);

/* ---- connections per node, read on the node's network shard ---------- */

struct conn_probe {
    mm_node *n;
    size_t total, up;
    int done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void
conn_probe_fn(void *arg)
{
    struct conn_probe *p = arg;
    size_t up = 0, total = 0;
    struct mm_quic *q = mm__cluster_quic(p->n->cluster);
    if (q) total = mm__quic_conn_count(q, &up);
    pthread_mutex_lock(&p->lock);
    p->total = total;
    p->up = up;
    p->done = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static size_t
conns_of(mm_node *n)
{
    struct conn_probe p = {.n = n};
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.cond, NULL);
    assert_int_equal(mm_node_post(n, 0, conn_probe_fn, &p), 0);
    pthread_mutex_lock(&p.lock);
    while (!p.done)
        pthread_cond_wait(&p.cond, &p.lock);
    pthread_mutex_unlock(&p.lock);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.cond);
    return p.total;
}

/* ---- pipelined calls ---------------------------------------------------- */

#define CROSS_CALLS 3000
#define CROSS_DEPTH 64

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    mm_node *n;
    mm_endpoint to;
    int next, done, ok, failed, first_err;
} g_cr = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static int cross_send(int i);

static void
cross_cb(void *data, int status, mm_msg *reply)
{
    (void)reply;
    int i = (int)(intptr_t)data, next = -1;
    long id = -1;
    if (status == 0) {
        const cJSON *j = mm_msg_json(reply, NULL);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "id");
        id = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
    }
    pthread_mutex_lock(&g_cr.lock);
    g_cr.done++;
    if (status == 0 && id == i) {
        g_cr.ok++;
    } else {
        g_cr.failed++;
        if (!g_cr.first_err) g_cr.first_err = status ? status : MM_EDECODE;
    }
    if (g_cr.next < CROSS_CALLS) next = g_cr.next++;
    pthread_cond_broadcast(&g_cr.cond);
    pthread_mutex_unlock(&g_cr.lock);
    if (next >= 0 && cross_send(next) != 0) {
        pthread_mutex_lock(&g_cr.lock);
        g_cr.done++;
        g_cr.failed++;
        pthread_cond_broadcast(&g_cr.cond);
        pthread_mutex_unlock(&g_cr.lock);
    }
}

static int
cross_send(int i)
{
    char json[32];
    int len = snprintf(json, sizeof(json), "{\"id\":%d}", i);
    mm_msg *m = mm_msg_new_json("echo", json, (size_t)len);
    int rc = m ? mm_send(g_cr.n, &g_cr.to, m, cross_cb, (void *)(intptr_t)i)
               : UV_ENOMEM;
    if (rc && m) mm_msg_free(m);
    return rc;
}

/*
 * Two nodes that are each other's seed dial each other at start: a
 * crossing.  Calls made while it is being settled all complete (the losing
 * connection, if calls went on it, drains instead of being cut), and once
 * it has drained each node keeps exactly one connection.  Three rounds.
 */
static void
test_remote_crossing_dial_loses_no_call(void **state)
{
    struct fx *fx = *state;
    for (int round = 0; round < 3; round++) {
        char a_addr[64], names[2][32];
        int port = free_udp_port();
        assert_true(port > 0);
        snprintf(a_addr, sizeof(a_addr), "127.0.0.1:%d", port);
        snprintf(names[0], sizeof(names[0]), "cross-b%d", round);
        snprintf(names[1], sizeof(names[1]), "cross-a%d", round);
        mm_node *b =
            node_new_at(fx, names[0], fx->key_b, a_addr, "127.0.0.1:0");
        mm_node *a =
            node_new_at(fx, names[1], fx->key_b, mm_node_addr(b), a_addr);
        mm_endpoint echo;
        assert_int_equal(mm_spawn(b, "echo", NULL, &echo), 0);
        assert_int_equal(mm_node_start_thread(b), 0);
        assert_int_equal(mm_node_start_thread(a), 0);
        pthread_mutex_lock(&g_cr.lock);
        g_cr.n = a;
        g_cr.to = echo;
        g_cr.next = CROSS_DEPTH;
        g_cr.done = g_cr.ok = g_cr.failed = g_cr.first_err = 0;
        pthread_mutex_unlock(&g_cr.lock);
        mm_msg *r = NULL;
        assert_int_equal(call_retry(a, &echo, "echo", "{\"id\":-1}", &r), 0);
        mm_msg_free(r);
        for (int i = 0; i < CROSS_DEPTH; i++)
            assert_int_equal(cross_send(i), 0);
        uint64_t until = now_ms() + 20000;
        pthread_mutex_lock(&g_cr.lock);
        while (g_cr.done < CROSS_CALLS && now_ms() < until) {
            struct timespec ts = realtime_in_ms(50);
            pthread_cond_timedwait(&g_cr.cond, &g_cr.lock, &ts);
        }
        int done = g_cr.done, ok = g_cr.ok, failed = g_cr.failed;
        int err = g_cr.first_err;
        pthread_mutex_unlock(&g_cr.lock);
        if (failed)
            print_message("round %d: %d calls failed (first %s)\n", round,
                          failed, mm_err_name(err));
        assert_int_equal(done, CROSS_CALLS);
        assert_int_equal(failed, 0);
        assert_int_equal(ok, CROSS_CALLS);
        /* One connection per node once the loser (if any) drained: the
         * sweep closes it after two idle rounds of 1 s. */
        size_t na = 0, nb = 0;
        for (uint64_t t = now_ms() + 10000; now_ms() < t;) {
            na = conns_of(a);
            nb = conns_of(b);
            if (na == 1 && nb == 1) break;
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
        }
        assert_int_equal(na, 1);
        assert_int_equal(nb, 1);
        nodefix_down(a);
        nodefix_down(b);
    }
}

static int
setup(void **state)
{
    static struct fx fx;
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/mm-remote-XXXXXX");
    assert_non_null(mkdtemp(fx.dir));
    snprintf(fx.key_a, sizeof(fx.key_a), "%s/a.key", fx.dir);
    snprintf(fx.key_b, sizeof(fx.key_b), "%s/b.key", fx.dir);
    assert_int_equal(mm_cluster_keygen(fx.key_a), 0);
    assert_int_equal(mm_cluster_keygen(fx.key_b), 0);
    fx.a = node_up(&fx, "alpha", fx.key_a, NULL);
    fx.b = NULL;
    *state = &fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    nodefix_down(fx->b);
    nodefix_down(fx->a);
    rm_rf(fx->dir);
    return 0;
}

static mm_endpoint
spawn_counter(mm_node *n, const char *label)
{
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = label;
    mm_endpoint ep;
    assert_int_equal(mm_spawn(n, "counter", &o, &ep), 0);
    return ep;
}

/* A call that retries while the connection to a just-started seed is still
 * being set up (bounded: 10 s). */
static int
call_retry(mm_node *n, const mm_endpoint *ep, const char *type,
           const char *json, mm_msg **reply)
{
    int rc = MM_EUNREACHABLE;
    for (int i = 0; i < 1000; i++) {
        mm_msg *m =
            json ? mm_msg_new_json(type, json, strlen(json)) : mm_msg_new(type);
        rc = mm_call(n, ep, m, reply);
        if (rc != MM_EUNREACHABLE) return rc;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return rc;
}

static long
reply_long(mm_msg *r)
{
    const cJSON *j = mm_msg_json(r, NULL);
    long v = j && cJSON_IsNumber(j) ? (long)j->valuedouble : -1;
    mm_msg_free(r);
    return v;
}

static void
test_remote_calls_both_ways(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ca = spawn_counter(fx->a, "counter/alpha");
    fx->b = node_up(fx, "beta", fx->key_a, mm_node_addr(fx->a));
    mm_endpoint cb = spawn_counter(fx->b, "counter/beta");
    mm_msg *r = NULL;
    /* b -> a */
    assert_int_equal(call_retry(fx->b, &ca, "increment", "5", &r), 0);
    assert_int_equal(reply_long(r), 5);
    /* a -> b (a learnt b from its connection) */
    assert_int_equal(call_retry(fx->a, &cb, "increment", "7", &r), 0);
    assert_int_equal(reply_long(r), 7);
    /* A tell then a call on the same stream: per-sender order. */
    for (int i = 0; i < 50; i++)
        assert_int_equal(
            mm_tell(fx->b, &ca, mm_msg_new_json("increment", "1", 1)), 0);
    assert_int_equal(call_retry(fx->b, &ca, "get", NULL, &r), 0);
    assert_int_equal(reply_long(r), 55);
    /* Typed errors cross the wire. */
    assert_int_equal(call_retry(fx->b, &ca, "nosuch", NULL, &r),
                     MM_EUNKNOWN_MESSAGE);
    mm_msg_free(r);
    r = NULL;
    assert_int_equal(call_retry(fx->b, &ca, "increment", "\"x\"", &r),
                     MM_EDECODE);
    assert_non_null(r); /* the actor's error text */
    mm_msg_free(r);
    r = NULL;
    /* Malformed JSON is refused before an untyped handler runs, at cJSON's
     * byte offset (checked without a parse; cJSON names the error). */
    {
        mm_msg *probe = mm_msg_new_json("t", "{\"a\" 1}", 8);
        size_t off = 0;
        char want[64];
        assert_null(mm_msg_json(probe, &off));
        mm_msg_free(probe);
        snprintf(want, sizeof(want), "\"malformed JSON at byte %zu\"", off);
        assert_int_equal(call_retry(fx->b, &ca, "increment", "{\"a\" 1}", &r),
                         MM_EDECODE);
        assert_non_null(r);
        size_t n = 0;
        const char *text = mm_msg_data(r, &n);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(text, want, n);
        mm_msg_free(r);
        r = NULL;
        /* A malformed tell is dropped before the handler: the count holds
         * (a call after it on the same stream runs after it). */
        assert_int_equal(
            mm_tell(fx->b, &ca, mm_msg_new_json("increment", "{\"a\" 1}", 8)),
            0);
        assert_int_equal(call_retry(fx->b, &ca, "get", NULL, &r), 0);
        assert_int_equal(reply_long(r), 55);
    }
    mm_endpoint gone = ca;
    gone.actor += 1ull << 32;
    assert_int_equal(call_retry(fx->b, &gone, "get", NULL, &r), MM_ENOTFOUND);
    mm_msg_free(r);
    r = NULL;
    mm_endpoint stale = ca;
    stale.generation -= 1;
    assert_int_equal(call_retry(fx->b, &stale, "get", NULL, &r), MM_ENOTFOUND);
    mm_msg_free(r);
    /* In-memory payloads cannot cross. */
    int x = 1;
    mm_msg *p = mm_msg_new_ptr("increment", &x, NULL);
    assert_int_equal(mm_tell(fx->b, &ca, p), MM_ENOT_SERIALIZABLE);
    mm_msg_free(p);
}

static void
test_remote_call_after_idle_spell(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ca = spawn_counter(fx->a, "counter/alpha");
    fx->b = node_up(fx, "beta", fx->key_a, mm_node_addr(fx->a));
    mm_msg *r = NULL;
    assert_int_equal(call_retry(fx->b, &ca, "increment", "1", &r), 0);
    mm_msg_free(r);
    /* The scenario itself is an idle spell longer than the call timeout:
     * both nodes' loops sleep, then a short call must not be judged
     * against a stale clock (it used to fail at once with timeout). */
    struct timespec idle = {1, 200000000};
    nanosleep(&idle, NULL);
    mm_msg *m = mm_msg_new_json("increment", "1", 1);
    mm_msg_set_timeout(m, 500);
    r = NULL;
    assert_int_equal(mm_call(fx->b, &ca, m, &r), 0);
    assert_int_equal(reply_long(r), 2);
}

static void
test_remote_wrong_key_is_unauthorized(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ca = spawn_counter(fx->a, "counter/alpha");
    fx->b = node_up(fx, "beta", fx->key_b, mm_node_addr(fx->a));
    /* b never gets a connection, so a's endpoint stays unreachable from b,
     * and a never sees b. */
    mm_msg *r = NULL;
    mm_msg *m = mm_msg_new("get");
    mm_msg_set_timeout(m, 2000);
    int rc = mm_call(fx->b, &ca, m, &r);
    assert_true(rc == MM_EUNREACHABLE || rc == MM_EUNAUTHORIZED);
    assert_null(r);
}

/* ---- hot waits (lib/transport/udp.c, quic_hot_rounds) ------------------ */

/* The park protocol on a shard that is not running: a post from a thread
 * that is not the shard's own wakes the socket once, with a zero-length
 * datagram, and only while parked. */
static void
test_remote_park_wakes_once(void **state)
{
    struct fx *fx = *state;
    mm_node *g = node_new_at(fx, "gamma", fx->key_a, NULL, NULL);
    struct mm_shard *s = &g->shards[0];
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);

    /* No wake socket yet: never parks. */
    assert_int_equal(mm__shard_park(s), 0);
    assert_int_equal(mm__shard_set_wake(s, (struct sockaddr *)&sa, sl), 0);
    assert_int_equal(mm__shard_park(s), 1);
    /* Two posts while parked: one wake datagram, empty. */
    assert_int_equal(mm__shard_post(s, mm_msg_new("ping")), 0);
    assert_int_equal(mm__shard_post(s, mm_msg_new("ping")), 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    char buf[16];
    assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 0);
    /* Loopback delivers inside sendto: a second datagram would be here. */
    assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
    assert_int_equal(mm__shard_unpark(s), 1);
    /* Work is waiting: no park; and unparked, a post sends nothing. */
    assert_int_equal(mm__shard_park(s), 0);
    assert_int_equal(mm__shard_unpark(s), 0);
    assert_int_equal(mm__shard_post(s, mm_msg_new("ping")), 0);
    assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
    close(fd);
    mm_node_free(g); /* frees what sits in the inbox */
}

static void
closed_cb(void *data, int status, mm_msg *reply)
{
    (void)reply;
    int *got = data;
    *got = status;
}

/* A call to another node queued on a node that never runs still gets its
 * one answer, MM_ECLOSED, when the node is freed. */
static void
test_remote_unrun_node_answers_queued_call(void **state)
{
    struct fx *fx = *state;
    mm_node *g = node_new_at(fx, "gamma", fx->key_a, NULL, "127.0.0.1:0");
    mm_endpoint far = {{0xfe, 0xed}, 1, 7};
    int got = 1;
    assert_int_equal(mm_send(g, &far, mm_msg_new("get"), closed_cb, &got), 0);
    assert_int_equal(got, 1);
    mm_node_free(g);
    assert_int_equal(got, MM_ECLOSED);
}

struct hot_stats {
    mm_node *n;
    struct mm_quic_stats st;
    sem_t done;
};

static void
hot_stats_fn(void *arg)
{
    struct hot_stats *h = arg;
    mm__quic_stats(mm__cluster_quic(h->n->cluster), &h->st);
    sem_post(&h->done);
}

static struct mm_quic_stats
quic_stats_of(mm_node *n)
{
    struct hot_stats h = {.n = n};
    sem_init(&h.done, 0, 0);
    assert_int_equal(mm_node_post(n, 0, hot_stats_fn, &h), 0);
    assert_int_equal(sem_wait_s(&h.done, 10), 0);
    sem_destroy(&h.done);
    return h.st;
}

#define HOT_CALLS 2000

struct hot_caller {
    mm_node *n;
    mm_endpoint to;
    int ok;
};

static void *
hot_caller_main(void *arg)
{
    struct hot_caller *c = arg;
    for (int i = 0; i < HOT_CALLS; i++) {
        mm_msg *r = NULL;
        if (mm_call(c->n, &c->to, mm_msg_new_json("increment", "1", 1), &r) ==
            0)
            c->ok++;
        mm_msg_free(r);
    }
    return NULL;
}

/* Two threads make sequential calls from a to two counters on b at once:
 * a's network loop waits hot for answers while the other thread posts.
 * Every call lands exactly once, and the hot waits happened. */
static void
test_remote_hot_waits_with_cross_thread_posts(void **state)
{
    struct fx *fx = *state;
    fx->b = node_up(fx, "beta", fx->key_a, mm_node_addr(fx->a));
    mm_endpoint c1 = spawn_counter(fx->b, "counter/one");
    mm_endpoint c2 = spawn_counter(fx->b, "counter/two");
    mm_msg *r = NULL;
    assert_int_equal(call_retry(fx->a, &c1, "get", NULL, &r), 0);
    mm_msg_free(r);
    struct mm_quic_stats before = quic_stats_of(fx->a);
    struct hot_caller h[2] = {{fx->a, c1, 0}, {fx->a, c2, 0}};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hot_caller_main, &h[0]), 0);
    hot_caller_main(&h[1]);
    pthread_join(th, NULL);
    assert_int_equal(h[0].ok, HOT_CALLS);
    assert_int_equal(h[1].ok, HOT_CALLS);
    r = NULL;
    assert_int_equal(mm_call(fx->a, &c1, mm_msg_new("get"), &r), 0);
    assert_int_equal(reply_long(r), HOT_CALLS);
    r = NULL;
    assert_int_equal(mm_call(fx->a, &c2, mm_msg_new("get"), &r), 0);
    assert_int_equal(reply_long(r), HOT_CALLS);
    struct mm_quic_stats after = quic_stats_of(fx->a);
    struct mm_quic_stats sb = quic_stats_of(fx->b);
    print_message("hot waits on a: %llu hits, %llu woken, %llu misses; "
                  "on b: %llu hits, %llu woken, %llu misses\n",
                  (unsigned long long)(after.hot_hits - before.hot_hits),
                  (unsigned long long)(after.hot_woken - before.hot_woken),
                  (unsigned long long)(after.hot_misses - before.hot_misses),
                  (unsigned long long)sb.hot_hits,
                  (unsigned long long)sb.hot_woken,
                  (unsigned long long)sb.hot_misses);
    assert_true(after.hot_hits + after.hot_woken >
                before.hot_hits + before.hot_woken);
}

/* ---- bounds on what a peer holds (issue 18) ------------------------------ */

/* "holder": defers every "hold" and "hbig" call until "release", which
 * answers an "hbig" call with |arg| KiB of raw bytes. */
#define HOLDER_MAX 128
struct holder_state {
    mm_defer *d[HOLDER_MAX];
    size_t kib[HOLDER_MAX]; /* "hbig": the reply's size */
    int n;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int held, answered, ok, over, other;
    uint64_t max_left_ms; /* the longest deadline a held call had */
} g_h = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static int
holder_hold(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct holder_state *h = state;
    uint64_t now = mm__shard_now(mm__cur_shard);
    mm_defer *d = mm_ctx_defer(ctx);
    if (!d) return 0;
    if (h->n >= HOLDER_MAX) return mm_defer_reply(d, MM_EOVERLOADED, NULL);
    h->kib[h->n] = 0;
    if (mm_msg_content(msg) == MM_CONTENT_JSON)
        h->kib[h->n] = (size_t)reply_long(mm__msg_clone(msg));
    h->d[h->n++] = d;
    pthread_mutex_lock(&g_h.lock);
    g_h.held++;
    if (msg->deadline > now && msg->deadline - now > g_h.max_left_ms)
        g_h.max_left_ms = msg->deadline - now;
    pthread_cond_broadcast(&g_h.cond);
    pthread_mutex_unlock(&g_h.lock);
    return 0;
}

static int
holder_release(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct holder_state *h = state;
    (void)ctx;
    (void)msg;
    for (int i = 0; i < h->n; i++) {
        mm_msg *r = NULL;
        if (h->kib[i]) {
            void *buf = calloc(h->kib[i], 1024);
            r = mm_msg_new_raw("big", buf, h->kib[i] * 1024);
            free(buf);
        }
        mm_defer_reply(h->d[i], 0, r);
    }
    h->n = 0;
    return 0;
}

static void
holder_stop(mm_ctx *ctx, void *state, int reason)
{
    (void)reason;
    holder_release(ctx, state, NULL);
}

MM_ACTOR_TYPE(holder, struct holder_state, NULL, holder_stop,
              MM_HANDLER("hold", holder_hold), MM_HANDLER("hbig", holder_hold),
              MM_HANDLER("release", holder_release));

static void
hold_cb(void *data, int status, mm_msg *reply)
{
    (void)data;
    (void)reply;
    pthread_mutex_lock(&g_h.lock);
    g_h.answered++;
    if (status == 0)
        g_h.ok++;
    else if (status == MM_EOVERLOADED)
        g_h.over++;
    else
        g_h.other++;
    pthread_cond_broadcast(&g_h.cond);
    pthread_mutex_unlock(&g_h.lock);
}

/* Waits (bounded) until held + overloaded answers reach |n|. */
static int
hold_wait(int n, unsigned ms)
{
    uint64_t until = now_ms() + ms;
    pthread_mutex_lock(&g_h.lock);
    while (g_h.held + g_h.over + g_h.other < n && now_ms() < until) {
        struct timespec ts = realtime_in_ms(20);
        pthread_cond_timedwait(&g_h.cond, &g_h.lock, &ts);
    }
    int done = g_h.held + g_h.over + g_h.other >= n;
    pthread_mutex_unlock(&g_h.lock);
    return done;
}

static int
answered_wait(int n, unsigned ms)
{
    uint64_t until = now_ms() + ms;
    for (;;) {
        pthread_mutex_lock(&g_h.lock);
        int a = g_h.answered;
        pthread_mutex_unlock(&g_h.lock);
        if (a >= n) return 1;
        if (now_ms() >= until) return 0;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
}

#define HOLD_ACTORS 40
#define HOLD_SENDS 80
#define HOLD_KIB 256

/*
 * A caller whose calls an actor defers: each INVOKE keeps its stream credit
 * until answered, and past MM_CONN_RECV_MAX bytes held on the connection
 * further calls are answered overloaded at once (the bytes a peer can park
 * on a node stay bounded).  Their deadlines, asked for as 2^32-1 ms, are
 * cut to MM_MAX_CALL_MS.  Another node's calls keep working; once the held
 * calls are answered the caller's calls work again.
 */
static void
test_remote_held_calls_bounded(void **state)
{
    struct fx *fx = *state;
    mm_node *h = node_new_at(fx, "holder", fx->key_a, NULL, "127.0.0.1:0");
    assert_int_equal(mm_node_register_type(h, &holder_type), 0);
    mm_endpoint ep[HOLD_ACTORS], echo;
    for (int i = 0; i < HOLD_ACTORS; i++)
        assert_int_equal(mm_spawn(h, "holder", NULL, &ep[i]), 0);
    assert_int_equal(mm_spawn(h, "echo", NULL, &echo), 0);
    nodefix_start(h);
    mm_node *c = node_up(fx, "caller", fx->key_a, mm_node_addr(h));
    mm_msg *r = NULL;
    assert_int_equal(call_retry(c, &echo, "echo", "1", &r), 0);
    mm_msg_free(r);
    pthread_mutex_lock(&g_h.lock);
    g_h.held = g_h.answered = g_h.ok = g_h.over = g_h.other = 0;
    g_h.max_left_ms = 0;
    pthread_mutex_unlock(&g_h.lock);

    void *buf = calloc(HOLD_KIB, 1024);
    for (int i = 0; i < HOLD_SENDS; i++) {
        mm_msg *m = mm_msg_new_raw("hold", buf, HOLD_KIB * 1024);
        mm_msg_set_timeout(m, UINT32_MAX);
        assert_int_equal(mm_send(c, &ep[i % HOLD_ACTORS], m, hold_cb, NULL), 0);
        assert_true(hold_wait(i + 1, 10000));
    }
    free(buf);
    pthread_mutex_lock(&g_h.lock);
    int held = g_h.held, over = g_h.over, other = g_h.other;
    uint64_t left = g_h.max_left_ms;
    pthread_mutex_unlock(&g_h.lock);
    print_message("held %d calls, %d answered overloaded\n", held, over);
    assert_int_equal(other, 0);
    assert_int_equal(held + over, HOLD_SENDS);
    assert_true(over >= 1);
    /* Up to the cap, and not much below it. */
    assert_true((size_t)held * HOLD_KIB * 1024 <= MM_CONN_RECV_MAX);
    assert_true((size_t)(held + 2) * HOLD_KIB * 1024 > MM_CONN_RECV_MAX);
    assert_true(left <= MM_MAX_CALL_MS && left + 60000 > MM_MAX_CALL_MS);

    /* Another node's calls are not affected. */
    mm_node *d = node_up(fx, "bystander", fx->key_a, mm_node_addr(h));
    assert_int_equal(call_retry(d, &echo, "echo", "2", &r), 0);
    mm_msg_free(r);

    /* Answered: every held call completes, the credit comes back. */
    for (int i = 0; i < HOLD_ACTORS; i++) {
        assert_int_equal(mm_call(h, &ep[i], mm_msg_new("release"), &r), 0);
        mm_msg_free(r);
    }
    assert_true(answered_wait(HOLD_SENDS, 10000));
    assert_int_equal(g_h.ok, held);
    assert_int_equal(call_retry(c, &echo, "echo", "3", &r), 0);
    mm_msg_free(r);
    nodefix_down(d);
    nodefix_down(c);
    nodefix_down(h);
}

struct fault_arg {
    mm_node *n;
    unsigned drop;
    sem_t done;
};

static void
fault_fn(void *data)
{
    struct fault_arg *a = data;
    struct mm_quic_fault f = {.drop_pct = a->drop, .seed = 1};
    mm__quic_set_fault(mm__cluster_quic(a->n->cluster), &f);
    sem_post(&a->done);
}

/* Sets |n|'s packet loss (both ways) on its network shard. */
static void
set_drop(mm_node *n, unsigned pct)
{
    struct fault_arg a = {.n = n, .drop = pct};
    sem_init(&a.done, 0, 0);
    assert_int_equal(mm_node_post(n, 0, fault_fn, &a), 0);
    sem_wait(&a.done);
    sem_destroy(&a.done);
}

#define BIG_CALLS 16
#define BIG_KIB 512

/*
 * Responses that find no send room (more than MM_CONN_SEND_MAX bytes not
 * yet acknowledged) wait in the connection's queue and go as
 * acknowledgements come: 16 pipelined calls with 512 KiB replies all
 * complete.  A caller that acknowledges nothing lets the queue fill: the
 * node closes that connection (overloaded) instead of queueing more, and
 * the caller, once it listens again, reconnects and calls.
 */
static void
test_remote_responses_wait_for_room(void **state)
{
    struct fx *fx = *state;
    mm_node *h = node_new_at(fx, "holder", fx->key_a, NULL, "127.0.0.1:0");
    assert_int_equal(mm_node_register_type(h, &holder_type), 0);
    mm_endpoint hb, echo;
    assert_int_equal(mm_spawn(h, "holder", NULL, &hb), 0);
    assert_int_equal(mm_spawn(h, "echo", NULL, &echo), 0);
    nodefix_start(h);
    mm_node *c = node_up(fx, "caller", fx->key_a, mm_node_addr(h));
    mm_msg *r = NULL;
    assert_int_equal(call_retry(c, &echo, "echo", "1", &r), 0);
    mm_msg_free(r);
    char arg[16];
    snprintf(arg, sizeof(arg), "%d", BIG_KIB);

    /* A burst: the replies wait for room and all arrive. */
    pthread_mutex_lock(&g_h.lock);
    g_h.held = g_h.answered = g_h.ok = g_h.over = g_h.other = 0;
    pthread_mutex_unlock(&g_h.lock);
    for (int i = 0; i < BIG_CALLS; i++)
        assert_int_equal(mm_send(c, &hb,
                                 mm_msg_new_json("hbig", arg, strlen(arg)),
                                 hold_cb, NULL),
                         0);
    assert_true(hold_wait(BIG_CALLS, 10000));
    assert_int_equal(mm_call(h, &hb, mm_msg_new("release"), &r), 0);
    mm_msg_free(r);
    assert_true(answered_wait(BIG_CALLS, 10000));
    assert_int_equal(g_h.ok, BIG_CALLS);

    /* The caller goes deaf: the queue fills and the node hangs up. */
    pthread_mutex_lock(&g_h.lock);
    g_h.held = g_h.answered = g_h.ok = g_h.over = g_h.other = 0;
    pthread_mutex_unlock(&g_h.lock);
    int n = 2 * (int)((MM_CONN_SEND_MAX + MM_CONN_RESP_QUEUE_BYTES) /
                      (BIG_KIB * 1024));
    assert_true(n <= HOLDER_MAX);
    for (int i = 0; i < n; i++)
        assert_int_equal(mm_send(c, &hb,
                                 mm_msg_new_json("hbig", arg, strlen(arg)),
                                 hold_cb, NULL),
                         0);
    assert_true(hold_wait(n, 10000));
    set_drop(c, 100);
    assert_int_equal(mm_call(h, &hb, mm_msg_new("release"), &r), 0);
    mm_msg_free(r);
    size_t conns = 1;
    for (uint64_t t = now_ms() + 10000; now_ms() < t && conns;) {
        conns = conns_of(h);
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(conns, 0);
    /* The caller listens again: its calls fail or complete, none hangs,
     * and a new call gets through. */
    set_drop(c, 0);
    assert_true(answered_wait(n, 15000));
    assert_int_equal(g_h.ok + g_h.over + g_h.other, n);
    assert_true(g_h.other >= 1);
    assert_int_equal(call_retry(c, &echo, "echo", "2", &r), 0);
    mm_msg_free(r);
    nodefix_down(c);
    nodefix_down(h);
}

/* ---- calls of a closed connection ---------------------------------------- */

/* A gate actor: "block" waits (bounded) until the test opens the gate;
 * "count" counts the messages it ran. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int blocked, open, counted;
} g_gate = {.lock = PTHREAD_MUTEX_INITIALIZER,
            .cond = PTHREAD_COND_INITIALIZER};

static int
gate_block(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    uint64_t until = now_ms() + 10000;
    pthread_mutex_lock(&g_gate.lock);
    g_gate.blocked = 1;
    pthread_cond_broadcast(&g_gate.cond);
    while (!g_gate.open && now_ms() < until) {
        struct timespec ts = realtime_in_ms(20);
        pthread_cond_timedwait(&g_gate.cond, &g_gate.lock, &ts);
    }
    pthread_mutex_unlock(&g_gate.lock);
    return 0;
}

static int
gate_count(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
    pthread_mutex_lock(&g_gate.lock);
    g_gate.counted++;
    pthread_mutex_unlock(&g_gate.lock);
    return 0;
}

MM_ACTOR_TYPE(gate, int, NULL, NULL, MM_HANDLER("block", gate_block),
              MM_HANDLER("count", gate_count));

static void
ignore_cb(void *data, int status, mm_msg *reply)
{
    (void)data;
    (void)status;
    (void)reply;
}

#define GATE_CALLS 50

/*
 * Calls that came over a connection and still wait in a mailbox when the
 * connection closes are not run: nobody could receive their replies.  The
 * gate actor (on the holder's second shard, so that its network loop keeps
 * running) is blocked in one call while 50 more queue behind it; the
 * caller goes away; once the holder has seen the connection close the gate
 * opens, and of what follows only a local call is run.
 */
static void
test_remote_calls_of_closed_connection_not_run(void **state)
{
    struct fx *fx = *state;
    mm_node *h = nodefix_new(&(struct nodefix_opts){.name = "holder",
                                                    .dir = fx->dir,
                                                    .listen = "127.0.0.1:0",
                                                    .key = fx->key_a,
                                                    .shards = 2,
                                                    .builtins = 1});
    assert_int_equal(mm_node_register_type(h, &gate_type), 0);
    mm_endpoint gate, echo;
    assert_int_equal(mm_spawn(h, "gate", &(mm_spawn_opts){.shard = 1}, &gate),
                     0);
    assert_int_equal(mm_spawn(h, "echo", NULL, &echo), 0);
    nodefix_start(h);
    mm_node *c = node_up(fx, "caller", fx->key_a, mm_node_addr(h));
    mm_msg *r = NULL;
    assert_int_equal(call_retry(c, &echo, "echo", "1", &r), 0);
    mm_msg_free(r);
    g_gate.blocked = g_gate.open = g_gate.counted = 0;
    assert_int_equal(mm_send(c, &gate, mm_msg_new("block"), ignore_cb, NULL),
                     0);
    uint64_t until = now_ms() + 10000;
    pthread_mutex_lock(&g_gate.lock);
    while (!g_gate.blocked && now_ms() < until) {
        pthread_mutex_unlock(&g_gate.lock);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&g_gate.lock);
    }
    assert_int_equal(g_gate.blocked, 1);
    pthread_mutex_unlock(&g_gate.lock);
    for (int i = 0; i < GATE_CALLS; i++)
        assert_int_equal(
            mm_send(c, &gate, mm_msg_new("count"), ignore_cb, NULL), 0);
    /* The holder has every call queued once an echo sent after them on the
     * same connection came back. */
    assert_int_equal(call_retry(c, &echo, "echo", "2", &r), 0);
    mm_msg_free(r);
    nodefix_down(c);
    until = now_ms() + 10000;
    while (conns_of(h) > 0 && now_ms() < until) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(conns_of(h), 0);
    pthread_mutex_lock(&g_gate.lock);
    g_gate.open = 1;
    pthread_cond_broadcast(&g_gate.cond);
    pthread_mutex_unlock(&g_gate.lock);
    /* A local call queued after them runs once they have been dequeued. */
    assert_int_equal(mm_call(h, &gate, mm_msg_new("count"), &r), 0);
    mm_msg_free(r);
    pthread_mutex_lock(&g_gate.lock);
    int counted = g_gate.counted;
    pthread_mutex_unlock(&g_gate.lock);
    print_message("%d of %d calls of the closed connection ran\n", counted - 1,
                  GATE_CALLS);
    assert_int_equal(counted, 1);
    nodefix_down(h);
}

int
main(void)
{
    mm_log_set_level(MM_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_remote_calls_both_ways, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remote_call_after_idle_spell,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_crossing_dial_loses_no_call,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_wrong_key_is_unauthorized,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_park_wakes_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_remote_unrun_node_answers_queued_call, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_remote_hot_waits_with_cross_thread_posts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_held_calls_bounded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remote_responses_wait_for_room,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_remote_calls_of_closed_connection_not_run, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
