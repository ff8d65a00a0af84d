/*
 * test_registry.c — the cluster-wide registry over real QUIC: three nodes
 * in one process (B and C seeded only from A) see and call each other's
 * actors, listings follow remote check-ins, conflicts resolve the same
 * everywhere, private registrations stay home, hashes converge.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "murmer.h"
#include "helpers/nodefix.h"
#include "registry.h"

#define N 3

struct fx {
    char dir[256];
    char key[300];
    mm_node *n[N];
};

static mm_node *
node_up(struct fx *fx, const char *name, const char *join)
{
    return nodefix_up(&(struct nodefix_opts){.name = name,
                                             .dir = fx->dir,
                                             .listen = "127.0.0.1:0",
                                             .key = fx->key,
                                             .join = join,
                                             .builtins = 1});
}

static int
setup(void **state)
{
    static struct fx fx;
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/mm-registry-XXXXXX");
    assert_non_null(mkdtemp(fx.dir));
    snprintf(fx.key, sizeof(fx.key), "%s/cluster.key", fx.dir);
    assert_int_equal(mm_cluster_keygen(fx.key), 0);
    fx.n[0] = node_up(&fx, "a", NULL);
    fx.n[1] = node_up(&fx, "b", mm_node_addr(fx.n[0]));
    fx.n[2] = node_up(&fx, "c", mm_node_addr(fx.n[0]));
    *state = &fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    for (int i = N - 1; i >= 0; i--)
        nodefix_down(fx->n[i]);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void
spawn(mm_node *n, const char *type, const char *label, int vis, const char *key,
      mm_endpoint *out)
{
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = label;
    o.visibility = vis;
    const char *keys[1] = {key};
    if (key) {
        o.keys = keys;
        o.nkeys = 1;
    }
    assert_int_equal(mm_spawn(n, type, &o, out), 0);
}

static void
pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls until |label| resolves on |n| (10 s bound). */
static int
wait_lookup(mm_node *n, const char *label, mm_endpoint *ep)
{
    for (int i = 0; i < 1000; i++) {
        if (mm_lookup(n, label, ep) == 0) return 0;
        pause_ms(10);
    }
    return MM_ENOTFOUND;
}

static int
wait_gone(mm_node *n, const char *label)
{
    for (int i = 0; i < 1000; i++) {
        if (mm_lookup(n, label, NULL) == MM_ENOTFOUND) return 0;
        pause_ms(10);
    }
    return MM_EEXISTS;
}

static long
call_num(mm_node *n, const mm_endpoint *ep, const char *type, const char *json)
{
    mm_msg *r = NULL;
    int rc = mm_call(n, ep,
                     json ? mm_msg_new_json(type, json, strlen(json))
                          : mm_msg_new(type),
                     &r);
    if (rc) {
        mm_msg_free(r);
        return rc;
    }
    const cJSON *j = mm_msg_json(r, NULL);
    long v = j && cJSON_IsNumber(j) ? (long)j->valuedouble : -1;
    mm_msg_free(r);
    return v;
}

static void
test_registry_every_node_sees_and_calls_every_actor(void **state)
{
    struct fx *fx = *state;
    const char *labels[N] = {"counter/a", "counter/b", "counter/c"};
    mm_endpoint eps[N];
    for (int i = 0; i < N; i++)
        spawn(fx->n[i], "counter", labels[i], MM_VIS_INTERNAL, NULL, &eps[i]);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            mm_endpoint ep;
            assert_int_equal(wait_lookup(fx->n[i], labels[j], &ep), 0);
            assert_true(mm_endpoint_equal(&ep, &eps[j]));
        }
    }
    /* b and c are connected only through a, yet they call each other. */
    mm_endpoint ep;
    assert_int_equal(mm_lookup(fx->n[1], "counter/c", &ep), 0);
    assert_int_equal(call_num(fx->n[1], &ep, "increment", "3"), 3);
    assert_int_equal(mm_lookup(fx->n[2], "counter/b", &ep), 0);
    assert_int_equal(call_num(fx->n[2], &ep, "increment", "4"), 4);
    /* A stopped actor leaves every view. */
    assert_int_equal(mm_actor_stop(fx->n[2], &eps[2]), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(wait_gone(fx->n[i], "counter/c"), 0);
    /* The views converge to the same hash. */
    uint64_t h0 = 0;
    for (int k = 0; k < 500; k++) {
        h0 = mm__registry_hash(fx->n[0]);
        if (h0 == mm__registry_hash(fx->n[1]) &&
            h0 == mm__registry_hash(fx->n[2]))
            break;
        pause_ms(10);
    }
    assert_int_equal(h0, mm__registry_hash(fx->n[1]));
    assert_int_equal(h0, mm__registry_hash(fx->n[2]));
}

struct lrec {
    pthread_mutex_t lock;
    char log[2048];
};

static void
listing_cb(void *data, const mm_listing_event *ev)
{
    struct lrec *l = data;
    pthread_mutex_lock(&l->lock);
    char item[128];
    if (ev->kind == MM_LISTING_ADDED)
        snprintf(item, sizeof(item), "+%s ", ev->label);
    else if (ev->kind == MM_LISTING_REMOVED)
        snprintf(item, sizeof(item), "-%s ", ev->label);
    else if (ev->kind == MM_LISTING_SYNCED)
        snprintf(item, sizeof(item), "SYNCED ");
    else
        snprintf(item, sizeof(item), "RESYNC ");
    strncat(l->log, item, sizeof(l->log) - strlen(l->log) - 1);
    pthread_mutex_unlock(&l->lock);
}

static int
log_is(struct lrec *l, const char *want)
{
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&l->lock);
        int ok = strcmp(l->log, want) == 0;
        pthread_mutex_unlock(&l->lock);
        if (ok) return 1;
        pause_ms(10);
    }
    fprintf(stderr, "log '%s' != '%s'\n", l->log, want);
    return 0;
}

static void
test_registry_private_stays_home_and_seqs_do_not_stall(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep;
    spawn(fx->n[2], "echo", "v/internal1", MM_VIS_INTERNAL, NULL, &ep);
    spawn(fx->n[2], "echo", "v/private", MM_VIS_PRIVATE, NULL, &ep);
    spawn(fx->n[2], "echo", "v/internal2", MM_VIS_INTERNAL, NULL, &ep);
    assert_int_equal(wait_lookup(fx->n[0], "v/internal1", &ep), 0);
    assert_int_equal(wait_lookup(fx->n[0], "v/internal2", &ep), 0);
    assert_int_equal(mm_lookup(fx->n[2], "v/private", &ep), 0);
    assert_int_equal(mm_lookup(fx->n[0], "v/private", &ep), MM_ENOTFOUND);
    assert_int_equal(mm_lookup(fx->n[1], "v/private", &ep), MM_ENOTFOUND);
    /* At home, an in-process listing sees it; a shared one (a client's
     * watch) never does, in the backfill or as an event. */
    struct lrec own = {PTHREAD_MUTEX_INITIALIZER, ""};
    struct lrec shared = {PTHREAD_MUTEX_INITIALIZER, ""};
    mm_listing_opts o;
    mm_listing_opts_init(&o);
    o.prefix = "v/";
    mm_listing *lo, *ls;
    assert_int_equal(mm_listing_open(&lo, fx->n[2], &o, listing_cb, &own), 0);
    assert_int_equal(
        mm__listing_open_shared(&ls, fx->n[2], &o, listing_cb, &shared), 0);
    assert_true(log_is(&own, "+v/internal1 +v/internal2 +v/private SYNCED "));
    assert_true(log_is(&shared, "+v/internal1 +v/internal2 SYNCED "));
    spawn(fx->n[2], "echo", "v/private2", MM_VIS_PRIVATE, NULL, &ep);
    spawn(fx->n[2], "echo", "v/internal3", MM_VIS_INTERNAL, NULL, &ep);
    assert_true(log_is(&own, "+v/internal1 +v/internal2 +v/private SYNCED "
                             "+v/private2 +v/internal3 "));
    assert_true(
        log_is(&shared, "+v/internal1 +v/internal2 SYNCED +v/internal3 "));
    mm_listing_close(lo);
    mm_listing_close(ls);
}

static void
test_registry_listing_sees_remote_check_in(void **state)
{
    struct fx *fx = *state;
    struct lrec l = {PTHREAD_MUTEX_INITIALIZER, ""};
    mm_listing_opts o;
    mm_listing_opts_init(&o);
    o.key = "workers";
    mm_listing *li;
    assert_int_equal(mm_listing_open(&li, fx->n[0], &o, listing_cb, &l), 0);
    assert_true(log_is(&l, "SYNCED "));
    mm_endpoint ep;
    spawn(fx->n[2], "echo", "w/1", MM_VIS_INTERNAL, "workers", &ep);
    assert_true(log_is(&l, "SYNCED +w/1 "));
    assert_int_equal(mm_actor_stop(fx->n[2], &ep), 0);
    assert_true(log_is(&l, "SYNCED +w/1 -w/1 "));
    mm_listing_close(li);
}

static void
test_registry_conflict_same_winner_and_promotion(void **state)
{
    struct fx *fx = *state;
    mm_endpoint first, second, ep;
    spawn(fx->n[1], "echo", "dup", MM_VIS_INTERNAL, NULL, &first);
    assert_int_equal(wait_lookup(fx->n[2], "dup", &ep), 0);
    spawn(fx->n[2], "echo", "dup", MM_VIS_INTERNAL, NULL, &second);
    /* The earlier registration wins on every node, the later is shadowed. */
    pause_ms(300);
    for (int i = 0; i < N; i++) {
        assert_int_equal(wait_lookup(fx->n[i], "dup", &ep), 0);
        assert_true(mm_endpoint_equal(&ep, &first));
    }
    /* The winner stops: the shadowed one is promoted everywhere. */
    assert_int_equal(mm_actor_stop(fx->n[1], &first), 0);
    for (int i = 0; i < N; i++) {
        int ok = 0;
        for (int k = 0; k < 1000 && !ok; k++) {
            ok = mm_lookup(fx->n[i], "dup", &ep) == 0 &&
                 mm_endpoint_equal(&ep, &second);
            if (!ok) pause_ms(10);
        }
        assert_true(ok);
    }
}

struct rr_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int status;
};

static void
rr_cb(void *data, int status, mm_msg *reply)
{
    struct rr_wait *w = data;
    (void)reply;
    pthread_mutex_lock(&w->lock);
    w->status = status;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void
test_registry_pool_router_spreads_over_remote_workers(void **state)
{
    struct fx *fx = *state;
    mm_endpoint wb, wc, ep;
    spawn(fx->n[1], "counter", "pool/b", MM_VIS_INTERNAL, "pool", &wb);
    spawn(fx->n[2], "counter", "pool/c", MM_VIS_INTERNAL, "pool", &wc);
    assert_int_equal(wait_lookup(fx->n[0], "pool/b", &ep), 0);
    assert_int_equal(wait_lookup(fx->n[0], "pool/c", &ep), 0);
    mm_router *r;
    assert_int_equal(
        mm_router_new_pool(&r, fx->n[0], MM_ROUTER_ROUND_ROBIN, "pool"), 0);
    for (int i = 0; i < 1000 && mm_router_size(r) < 2; i++)
        pause_ms(10);
    assert_int_equal(mm_router_size(r), 2);
    for (int i = 0; i < 10; i++) {
        struct rr_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                            0, 1};
        assert_int_equal(
            mm_router_send(r, mm_msg_new_json("increment", "1", 1), rr_cb, &w),
            0);
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        assert_int_equal(w.status, 0);
    }
    /* Round robin over the two remote workers: five calls each. */
    assert_int_equal(call_num(fx->n[1], &wb, "get", NULL), 5);
    assert_int_equal(call_num(fx->n[2], &wc, "get", NULL), 5);
    mm_router_free(r);
}

int
main(void)
{
    mm_log_set_level(MM_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_registry_every_node_sees_and_calls_every_actor, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_registry_private_stays_home_and_seqs_do_not_stall, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_registry_listing_sees_remote_check_in, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_registry_conflict_same_winner_and_promotion, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_registry_pool_router_spreads_over_remote_workers, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
