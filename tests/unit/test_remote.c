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

#include <cJSON.h>

#include "murmer.h"

struct fx {
    char dir[256];
    char key_a[300], key_b[300];
    mm_node *a, *b;
};

static void
rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", dir);
}

static mm_node *
node_up(struct fx *fx, const char *name, const char *key, const char *join)
{
    mm_node_config cfg;
    mm_node_config_init(&cfg);
    char data[400];
    snprintf(data, sizeof(data), "%s/%s", fx->dir, name);
    cfg.name = name;
    cfg.listen = "127.0.0.1:0";
    cfg.data_dir = data;
    cfg.cluster_key_file = key;
    const char *seeds[1] = {join};
    if (join) {
        cfg.join = seeds;
        cfg.njoin = 1;
    }
    mm_node *n;
    assert_int_equal(mm_node_new(&n, &cfg), 0);
    assert_int_equal(mm_node_register_builtins(n), 0);
    assert_non_null(mm_node_addr(n));
    assert_int_equal(mm_node_start_thread(n), 0);
    return n;
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
    mm_node *nodes[2] = {fx->b, fx->a};
    for (int i = 0; i < 2; i++) {
        if (!nodes[i])
            continue;
        mm_node_stop(nodes[i]);
        mm_node_join(nodes[i]);
        mm_node_free(nodes[i]);
    }
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
        mm_msg *m = json ? mm_msg_new_json(type, json, strlen(json))
                         : mm_msg_new(type);
        rc = mm_call(n, ep, m, reply);
        if (rc != MM_EUNREACHABLE)
            return rc;
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
    mm_endpoint gone = ca;
    gone.actor += 1ull << 32;
    assert_int_equal(call_retry(fx->b, &gone, "get", NULL, &r), MM_ENOTFOUND);
    mm_msg_free(r);
    r = NULL;
    mm_endpoint stale = ca;
    stale.generation -= 1;
    assert_int_equal(call_retry(fx->b, &stale, "get", NULL, &r),
                     MM_ENOTFOUND);
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

int
main(void)
{
    mm_log_set_level(MM_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_remote_calls_both_ways, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remote_call_after_idle_spell,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_wrong_key_is_unauthorized,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
