/*
 * test_router.c — round-robin, random and broadcast routers over fixed
 * lists and over live listings (pool routers), with the built-in counter as
 * the member type.  Every test runs with one shard and with two.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include "common.h"
#include "router.h"
#include "helpers/nodefix.h"
#include "helpers/testutil.h"

#define WAIT_MS 10000 /* generous bound for anything the tests wait for */

struct fx {
    mm_node *n;
    /* Replies and broadcast results, from shard threads. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int replies, errors, last_status;
    int bcasts;
    size_t bn;
    mm_endpoint beps[8];
    int bstatus[8];
    long long bvalue[8];
    char reply_text[64];
};

static int
fx_setup(void **state, int shards)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    if (fx == NULL) return -1;
    pthread_mutex_init(&fx->lock, NULL);
    pthread_cond_init(&fx->cond, NULL);
    fx->n = nodefix_up(&(struct nodefix_opts){
        .name = "test-router", .shards = shards, .builtins = 1});
    *state = fx;
    return 0;
}

static int
fx_setup1(void **state)
{
    return fx_setup(state, 1);
}

static int
fx_setup2(void **state)
{
    return fx_setup(state, 2);
}

static int
fx_teardown(void **state)
{
    struct fx *fx = *state;

    nodefix_down(fx->n);
    pthread_mutex_destroy(&fx->lock);
    pthread_cond_destroy(&fx->cond);
    free(fx);
    return 0;
}

/* Waits until *|counter| >= |want| (under fx->lock); 0 on time-out. */
static int
wait_count(struct fx *fx, const int *counter, int want)
{
    struct timespec ts;
    int rc = 0, ok;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&fx->lock);
    while (*counter < want && rc == 0)
        rc = pthread_cond_timedwait(&fx->cond, &fx->lock, &ts);
    ok = *counter >= want;
    pthread_mutex_unlock(&fx->lock);
    return ok;
}

/* Polls |r|'s size until it is |want| (a listing delivers asynchronously). */
static void
wait_size(mm_router *r, size_t want)
{
    uint64_t until = now_ms() + WAIT_MS;
    struct timespec ms = {0, 1000000};

    while (mm_router_size(r) != want && now_ms() < until)
        nanosleep(&ms, NULL);
    assert_int_equal(mm_router_size(r), want);
}

static void
reply_cb(void *data, int status, mm_msg *reply)
{
    struct fx *fx = data;
    size_t len = 0;
    const void *d = reply ? mm_msg_data(reply, &len) : NULL;

    pthread_mutex_lock(&fx->lock);
    fx->replies++;
    fx->last_status = status;
    if (status != 0) fx->errors++;
    if (d && len < sizeof(fx->reply_text)) {
        memcpy(fx->reply_text, d, len);
        fx->reply_text[len] = '\0';
    }
    pthread_cond_broadcast(&fx->cond);
    pthread_mutex_unlock(&fx->lock);
}

static void
bcast_cb(void *data, size_t n, const mm_broadcast_result *res)
{
    struct fx *fx = data;

    pthread_mutex_lock(&fx->lock);
    fx->bn = n;
    for (size_t i = 0; i < n && i < 8; i++) {
        size_t len = 0;
        const char *d = res[i].reply ? mm_msg_data(res[i].reply, &len) : NULL;
        fx->beps[i] = res[i].ep;
        fx->bstatus[i] = res[i].status;
        fx->bvalue[i] = d ? strtoll(d, NULL, 10) : -1;
    }
    fx->bcasts++;
    pthread_cond_broadcast(&fx->cond);
    pthread_mutex_unlock(&fx->lock);
}

static mm_endpoint
spawn_counter(struct fx *fx, const char *label, const char *key)
{
    const char *keys[1] = {key};
    mm_spawn_opts o;
    mm_endpoint ep;

    mm_spawn_opts_init(&o);
    o.label = label;
    if (key != NULL) {
        o.keys = keys;
        o.nkeys = 1;
    }
    assert_int_equal(mm_spawn(fx->n, "counter", &o, &ep), 0);
    return ep;
}

/* A blocking call on mm_send(); the reply text lands in |out| (size 64). */
struct sync {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, status;
    char text[64];
};

static void
sync_cb(void *data, int status, mm_msg *m)
{
    struct sync *y = data;
    size_t len = 0;
    const void *d = m ? mm_msg_data(m, &len) : NULL;

    pthread_mutex_lock(&y->lock);
    y->status = status;
    if (d != NULL && len < sizeof(y->text)) {
        memcpy(y->text, d, len);
        y->text[len] = '\0';
    }
    y->done = 1;
    pthread_cond_signal(&y->cond);
    pthread_mutex_unlock(&y->lock);
}

static int
call_sync(struct fx *fx, const mm_endpoint *ep, const char *type, char *out)
{
    struct sync y;
    struct timespec ts;
    mm_msg *m = mm_msg_new(type);
    int rc;

    memset(&y, 0, sizeof(y));
    pthread_mutex_init(&y.lock, NULL);
    pthread_cond_init(&y.cond, NULL);
    rc = mm_send(fx->n, ep, m, sync_cb, &y);
    if (rc != 0) {
        mm_msg_free(m);
    } else {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += WAIT_MS / 1000;
        pthread_mutex_lock(&y.lock);
        while (!y.done && rc == 0)
            rc = pthread_cond_timedwait(&y.cond, &y.lock, &ts);
        pthread_mutex_unlock(&y.lock);
        assert_true(y.done);
        rc = y.status;
    }
    if (out != NULL) memcpy(out, y.text, sizeof(y.text));
    pthread_mutex_destroy(&y.lock);
    pthread_cond_destroy(&y.cond);
    return rc;
}

static long long
counter_get(struct fx *fx, const mm_endpoint *ep)
{
    char buf[64];

    assert_int_equal(call_sync(fx, ep, "get", buf), 0);
    assert_true(buf[0] != '\0');
    return strtoll(buf, NULL, 10);
}

/* Sends |count| increments through |r| and waits for every reply. */
static void
route_increments(struct fx *fx, mm_router *r, int count)
{
    int base = fx->replies;

    for (int i = 0; i < count; i++)
        assert_int_equal(
            mm_router_send(r, mm_msg_new("increment"), reply_cb, fx), 0);
    assert_true(wait_count(fx, &fx->replies, base + count));
    assert_int_equal(fx->errors, 0);
}

/* ---- fixed routers ------------------------------------------------------- */

static void
test_router_round_robin_splits_evenly(void **state)
{
    struct fx *fx = *state;
    mm_endpoint eps[4];
    mm_router *r;

    for (int i = 0; i < 4; i++)
        eps[i] = spawn_counter(fx, NULL, NULL);
    assert_int_equal(mm_router_new(&r, fx->n, MM_ROUTER_ROUND_ROBIN, eps, 4),
                     0);
    assert_int_equal(mm_router_size(r), 4);
    route_increments(fx, r, 400);
    for (int i = 0; i < 4; i++)
        assert_int_equal(counter_get(fx, &eps[i]), 100);
    mm_router_free(r);
}

static void
test_router_random_covers_all(void **state)
{
    struct fx *fx = *state;
    mm_endpoint eps[4];
    long long sum = 0;
    mm_router *r;

    for (int i = 0; i < 4; i++)
        eps[i] = spawn_counter(fx, NULL, NULL);
    assert_int_equal(mm_router_new(&r, fx->n, MM_ROUTER_RANDOM, eps, 4), 0);
    route_increments(fx, r, 400);
    for (int i = 0; i < 4; i++) {
        long long v = counter_get(fx, &eps[i]);
        /* P(a member gets nothing) = 4 * 0.75^400, about 1e-50. */
        assert_true(v > 0);
        sum += v;
    }
    assert_int_equal(sum, 400);
    mm_router_free(r);
}

static void
test_router_broadcast_collects_all(void **state)
{
    struct fx *fx = *state;
    mm_endpoint eps[4];
    mm_router *r;
    int seen[4] = {0};

    for (int i = 0; i < 4; i++)
        eps[i] = spawn_counter(fx, NULL, NULL);
    assert_int_equal(mm_router_new(&r, fx->n, MM_ROUTER_BROADCAST, eps, 4), 0);
    assert_int_equal(mm_router_broadcast(
                         r, mm_msg_new_json("increment", "3", 1), bcast_cb, fx),
                     0);
    assert_true(wait_count(fx, &fx->bcasts, 1));
    assert_int_equal(fx->bn, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(fx->bstatus[i], 0);
        assert_int_equal(fx->bvalue[i], 3);
        for (int j = 0; j < 4; j++)
            if (mm_endpoint_equal(&fx->beps[i], &eps[j])) seen[j]++;
    }
    for (int j = 0; j < 4; j++) {
        assert_int_equal(seen[j], 1);
        assert_int_equal(counter_get(fx, &eps[j]), 3);
    }
    /* The callback ran exactly once. */
    assert_int_equal(fx->bcasts, 1);
    mm_router_free(r);
}

static void
test_router_broadcast_reports_dead_member(void **state)
{
    struct fx *fx = *state;
    mm_endpoint eps[3];
    mm_router *r;
    uint64_t until;
    struct timespec ms = {0, 1000000};
    int rc;

    for (int i = 0; i < 3; i++)
        eps[i] = spawn_counter(fx, NULL, NULL);
    assert_int_equal(mm_actor_stop(fx->n, &eps[1]), 0);
    /* Wait until the stop took effect. */
    until = now_ms() + WAIT_MS;
    do {
        rc = call_sync(fx, &eps[1], "get", NULL);
        if (rc == 0) nanosleep(&ms, NULL);
    } while (rc == 0 && now_ms() < until);
    assert_int_equal(rc, MM_ENOTFOUND);

    assert_int_equal(mm_router_new(&r, fx->n, MM_ROUTER_BROADCAST, eps, 3), 0);
    assert_int_equal(
        mm_router_broadcast(r, mm_msg_new("increment"), bcast_cb, fx), 0);
    assert_true(wait_count(fx, &fx->bcasts, 1));
    assert_int_equal(fx->bn, 3);
    assert_int_equal(fx->bstatus[0], 0);
    assert_int_equal(fx->bstatus[1], MM_ENOTFOUND);
    assert_int_equal(fx->bvalue[1], -1); /* no reply on error */
    assert_int_equal(fx->bstatus[2], 0);
    assert_int_equal(fx->bvalue[2], 1);

    /* A broadcast call through mm_router_send reports the first error. */
    assert_int_equal(mm_router_send(r, mm_msg_new("increment"), reply_cb, fx),
                     0);
    assert_true(wait_count(fx, &fx->replies, 1));
    assert_int_equal(fx->last_status, MM_ENOTFOUND);
    mm_router_free(r);
}

static void
test_router_broadcast_send_call_and_tell(void **state)
{
    struct fx *fx = *state;
    mm_endpoint eps[3];
    mm_router *r;

    for (int i = 0; i < 3; i++)
        eps[i] = spawn_counter(fx, NULL, NULL);
    assert_int_equal(mm_router_new(&r, fx->n, MM_ROUTER_BROADCAST, eps, 3), 0);
    /* A call: one callback after every member answered. */
    assert_int_equal(
        mm_router_send(r, mm_msg_new_json("increment", "2", 1), reply_cb, fx),
        0);
    assert_true(wait_count(fx, &fx->replies, 1));
    assert_int_equal(fx->last_status, 0);
    assert_string_equal(fx->reply_text, "2");
    /* A tell reaches everyone. */
    assert_int_equal(
        mm_router_send(r, mm_msg_new_json("increment", "5", 1), NULL, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(counter_get(fx, &eps[i]), 7);
    assert_int_equal(fx->replies, 1);
    mm_router_free(r);
}

static void
test_router_broadcast_pointer_payload_refused(void **state)
{
    struct fx *fx = *state;
    mm_endpoint eps[2];
    mm_router *r;
    static int x;
    mm_msg *m;

    for (int i = 0; i < 2; i++)
        eps[i] = spawn_counter(fx, NULL, NULL);
    assert_int_equal(mm_router_new(&r, fx->n, MM_ROUTER_BROADCAST, eps, 2), 0);
    m = mm_msg_new_ptr("increment", &x, NULL);
    assert_int_equal(mm_router_broadcast(r, m, bcast_cb, fx), MM_EINVAL);
    mm_msg_free(m); /* still ours */
    assert_int_equal(fx->bcasts, 0);
    mm_router_free(r);
}

static void
test_router_empty_is_eempty(void **state)
{
    struct fx *fx = *state;
    mm_msg *m = mm_msg_new("increment");

    for (int kind = MM_ROUTER_ROUND_ROBIN; kind <= MM_ROUTER_BROADCAST;
         kind++) {
        mm_router *r;
        assert_int_equal(mm_router_new(&r, fx->n, kind, NULL, 0), 0);
        assert_int_equal(mm_router_size(r), 0);
        assert_int_equal(mm_router_send(r, m, reply_cb, fx), MM_EEMPTY);
        assert_int_equal(mm_router_send(r, m, NULL, NULL), MM_EEMPTY);
        assert_int_equal(mm_router_broadcast(r, m, bcast_cb, fx), MM_EEMPTY);
        mm_router_free(r);

        assert_int_equal(mm_router_new_pool(&r, fx->n, kind, "nobody/here"), 0);
        assert_int_equal(mm_router_send(r, m, reply_cb, fx), MM_EEMPTY);
        assert_int_equal(mm_router_broadcast(r, m, bcast_cb, fx), MM_EEMPTY);
        mm_router_free(r);
    }
    /* The message stayed ours; no callback ran. */
    mm_msg_free(m);
    assert_int_equal(fx->replies, 0);
    assert_int_equal(fx->bcasts, 0);
    assert_string_equal(mm_err_name(MM_EEMPTY), "empty");
}

/* ---- pool routers -------------------------------------------------------- */

static void
test_router_pool_follows_adds_and_removes(void **state)
{
    struct fx *fx = *state;
    mm_endpoint eps[4];
    char label[32];
    mm_router *r;

    for (int i = 0; i < 3; i++) {
        snprintf(label, sizeof(label), "worker/%d", i);
        eps[i] = spawn_counter(fx, label, "workers");
    }
    /* Not checked in: never a member. */
    spawn_counter(fx, "loner", NULL);
    assert_int_equal(
        mm_router_new_pool(&r, fx->n, MM_ROUTER_ROUND_ROBIN, "workers"), 0);
    wait_size(r, 3);
    route_increments(fx, r, 30);
    for (int i = 0; i < 3; i++)
        assert_int_equal(counter_get(fx, &eps[i]), 10);

    /* An actor checked in later joins the pool. */
    eps[3] = spawn_counter(fx, "worker/3", "workers");
    wait_size(r, 4);
    route_increments(fx, r, 40);
    for (int i = 0; i < 3; i++)
        assert_int_equal(counter_get(fx, &eps[i]), 20);
    assert_int_equal(counter_get(fx, &eps[3]), 10);

    /* A stopped actor leaves it; routing skips it from then on. */
    assert_int_equal(mm_actor_stop(fx->n, &eps[0]), 0);
    wait_size(r, 3);
    route_increments(fx, r, 30);
    assert_int_equal(counter_get(fx, &eps[1]), 30);
    assert_int_equal(counter_get(fx, &eps[2]), 30);
    assert_int_equal(counter_get(fx, &eps[3]), 20);

    /* Once all are gone the pool is empty again. */
    for (int i = 1; i < 4; i++)
        assert_int_equal(mm_actor_stop(fx->n, &eps[i]), 0);
    wait_size(r, 0);
    {
        mm_msg *m = mm_msg_new("get");
        assert_int_equal(mm_router_send(r, m, reply_cb, fx), MM_EEMPTY);
        mm_msg_free(m);
    }
    mm_router_free(r);
}

static void
test_router_pool_broadcast(void **state)
{
    struct fx *fx = *state;
    mm_endpoint eps[3];
    char label[32];
    mm_router *r;

    for (int i = 0; i < 3; i++) {
        snprintf(label, sizeof(label), "bc/%d", i);
        eps[i] = spawn_counter(fx, label, "bc");
    }
    assert_int_equal(mm_router_new_pool(&r, fx->n, MM_ROUTER_BROADCAST, "bc"),
                     0);
    wait_size(r, 3);
    assert_int_equal(
        mm_router_broadcast(r, mm_msg_new("increment"), bcast_cb, fx), 0);
    assert_true(wait_count(fx, &fx->bcasts, 1));
    assert_int_equal(fx->bn, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx->bstatus[i], 0);
        /* The backfill comes in label order. */
        assert_true(mm_endpoint_equal(&fx->beps[i], &eps[i]));
        assert_int_equal(counter_get(fx, &eps[i]), 1);
    }
    mm_router_free(r);
}

/*
 * Many check-ins at once: more events than a listing queues (1024), so the
 * pool may go through RESYNC + backfill; it must end with exactly the live
 * members either way, and with none once they are stopped.
 */
static void
test_router_pool_many_members(void **state)
{
    struct fx *fx = *state;
    enum { N = 2000 };
    mm_endpoint *eps = calloc(N, sizeof(*eps));
    char label[32];
    mm_router *r;

    assert_non_null(eps);
    assert_int_equal(mm_router_new_pool(&r, fx->n, MM_ROUTER_RANDOM, "many"),
                     0);
    for (int i = 0; i < N; i++) {
        snprintf(label, sizeof(label), "many/%04d", i);
        eps[i] = spawn_counter(fx, label, "many");
    }
    wait_size(r, N);
    for (int i = 0; i < N; i += 2)
        assert_int_equal(mm_actor_stop(fx->n, &eps[i]), 0);
    wait_size(r, N / 2);
    route_increments(fx, r, 100);
    for (int i = 1; i < N; i += 2)
        assert_int_equal(mm_actor_stop(fx->n, &eps[i]), 0);
    wait_size(r, 0);
    mm_router_free(r);
    free(eps);
}

static mm_listing_event
ev_make(int kind, const char *label, uint64_t actor)
{
    mm_listing_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.kind = kind;
    ev.label = label;
    ev.ep.actor = actor;
    return ev;
}

/* The member list through a RESYNC: kept while resyncing, then pruned. */
static void
test_router_pool_resync_prunes_unconfirmed(void **state)
{
    struct fx *fx = *state;
    mm_listing_event ev;
    mm_router *r;

    assert_int_equal(mm_router_new(&r, fx->n, MM_ROUTER_ROUND_ROBIN, NULL, 0),
                     0);
    ev = ev_make(MM_LISTING_ADDED, "a", 1);
    mm__router_apply(r, &ev);
    ev = ev_make(MM_LISTING_ADDED, "b", 2);
    mm__router_apply(r, &ev);
    ev = ev_make(MM_LISTING_ADDED, "b", 2); /* a duplicate is ignored */
    mm__router_apply(r, &ev);
    ev = ev_make(MM_LISTING_ADDED, "c", 3);
    mm__router_apply(r, &ev);
    ev = ev_make(MM_LISTING_SYNCED, NULL, 0);
    mm__router_apply(r, &ev);
    assert_int_equal(mm_router_size(r), 3);

    ev = ev_make(MM_LISTING_RESYNC, NULL, 0);
    mm__router_apply(r, &ev);
    assert_int_equal(mm_router_size(r), 3); /* still routable */
    ev = ev_make(MM_LISTING_ADDED, "b", 2);
    mm__router_apply(r, &ev);
    ev = ev_make(MM_LISTING_ADDED, "d", 4);
    mm__router_apply(r, &ev);
    assert_int_equal(mm_router_size(r), 4);
    ev = ev_make(MM_LISTING_SYNCED, NULL, 0);
    mm__router_apply(r, &ev);
    assert_int_equal(mm_router_size(r), 2); /* a and c were not confirmed */

    ev = ev_make(MM_LISTING_REMOVED, "b", 2);
    mm__router_apply(r, &ev);
    ev = ev_make(MM_LISTING_REMOVED, "zz", 9); /* unknown: ignored */
    mm__router_apply(r, &ev);
    assert_int_equal(mm_router_size(r), 1);
    ev = ev_make(MM_LISTING_REMOVED, "d", 4);
    mm__router_apply(r, &ev);
    assert_int_equal(mm_router_size(r), 0);
    mm_router_free(r);
}

static void
test_router_invalid_arguments(void **state)
{
    struct fx *fx = *state;
    mm_router *r = NULL;

    assert_int_equal(mm_router_new(&r, fx->n, 7, NULL, 0), MM_EINVAL);
    assert_null(r);
    assert_int_equal(mm_router_new_pool(&r, fx->n, MM_ROUTER_RANDOM, NULL),
                     MM_EINVAL);
    assert_int_equal(mm_router_new_pool(&r, fx->n, MM_ROUTER_RANDOM, ""),
                     MM_EINVAL);
    mm_router_free(NULL);
}

/* Every test twice: one shard, then two (" [2 shards]" in the name). */
/* clang-format off */
#define T(fn, setup, sfx) {#fn sfx, fn, setup, fx_teardown, NULL}
/* clang-format on */
#define ALL_TESTS(setup, sfx)                                                  \
    T(test_router_round_robin_splits_evenly, setup, sfx),                      \
        T(test_router_random_covers_all, setup, sfx),                          \
        T(test_router_broadcast_collects_all, setup, sfx),                     \
        T(test_router_broadcast_reports_dead_member, setup, sfx),              \
        T(test_router_broadcast_send_call_and_tell, setup, sfx),               \
        T(test_router_broadcast_pointer_payload_refused, setup, sfx),          \
        T(test_router_empty_is_eempty, setup, sfx),                            \
        T(test_router_pool_follows_adds_and_removes, setup, sfx),              \
        T(test_router_pool_broadcast, setup, sfx),                             \
        T(test_router_pool_many_members, setup, sfx),                          \
        T(test_router_pool_resync_prunes_unconfirmed, setup, sfx),             \
        T(test_router_invalid_arguments, setup, sfx)

int
main(void)
{
    const struct CMUnitTest tests[] = {ALL_TESTS(fx_setup1, ""),
                                       ALL_TESTS(fx_setup2, " [2 shards]")};

    return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
