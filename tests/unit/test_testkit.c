/*
 * test_testkit.c — murmer/testkit.h as a user would use it: only the
 * public headers, an actor type of the test's own ("tally"), and faults
 * on the real datagrams of in-process nodes on loopback.
 *
 *   - a call from node 2 to an actor on node 0; node 2 partitioned away:
 *     the others see it failed and its calls fail; healed: it converges
 *     and its calls work again;
 *   - 30 % loss on every link: calls still work, a partition still heals
 *     to a converged cluster, and the kit counts what it dropped;
 *   - a delay on a link shows in a timed call's round trip;
 *   - kill and restart: the restarted node has a higher generation and
 *     its actor (spawned by the init hook) is back, callable;
 *   - the hold queue of delayed datagrams is bounded: past it datagrams
 *     are dropped and counted;
 *   - bad arguments get MM_EINVAL and a line in mm_tk_error().
 *
 * Every wait has a deadline; nothing sleeps a fixed time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "murmer.h"
#include "murmer/testkit.h"

/* ---- the test's own actor: "bump" answers how many bumps it has had ----- */

struct tally {
    long count;
};

static int
tally_bump(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)msg;
    struct tally *t = state;
    t->count++;
    return mm_reply_jsonf(ctx, "%ld", t->count);
}

MM_ACTOR_TYPE(tally, struct tally, NULL, NULL, MM_HANDLER("bump", tally_bump));

/* The init hook: every node knows the type; node |*data| runs "t". */
static int
init_tally(void *data, mm_tk *tk, int i, mm_node *n)
{
    (void)tk;
    int rc = mm_node_register_type(n, &tally_type);
    if (rc != 0 || i != *(const int *)data) return rc;
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = "t";
    return mm_spawn(n, "tally", &o, NULL);
}

static void
nap(void)
{
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t
ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One "bump" from node |from| with a deadline of |timeout_ms|: the count
 * it answered (> 0), or the error. */
static long
bump(mm_tk *tk, int from, const mm_endpoint *ep, uint32_t timeout_ms)
{
    mm_msg *m = mm_msg_new("bump");
    assert_non_null(m);
    mm_msg_set_timeout(m, timeout_ms);
    mm_msg *reply = NULL;
    int rc = mm_call(mm_tk_node(tk, from), ep, m, &reply);
    long v = rc;
    if (rc == 0) {
        size_t len = 0;
        const char *d = mm_msg_data(reply, &len);
        char buf[32] = "";
        if (d && len < sizeof(buf)) memcpy(buf, d, len);
        v = strtol(buf, NULL, 10);
    }
    mm_msg_free(reply);
    return v;
}

/* Bumps until a call works, for at most |bound_ms|: the count, or the
 * last error. */
static long
bump_until_ok(mm_tk *tk, int from, const mm_endpoint *ep, uint64_t bound_ms)
{
    uint64_t end = ms_now() + bound_ms;
    long v;
    while ((v = bump(tk, from, ep, 1000)) <= 0 && ms_now() < end)
        nap();
    return v;
}

static mm_tk *
start(int n, int actor_on, const mm_tk_opts *extra)
{
    static int where;
    where = actor_on;
    mm_tk_opts o;
    if (extra)
        o = *extra;
    else
        mm_tk_opts_init(&o);
    o.init = init_tally;
    o.init_data = &where;
    mm_tk *tk = NULL;
    int rc = mm_tk_cluster_start(&tk, n, &o);
    if (rc != 0) fail_msg("cluster start: %s", mm_tk_error());
    return tk;
}

static void
ok(int rc)
{
    if (rc != 0) fail_msg("%s (%s)", mm_tk_error(), mm_strerror(rc));
}

/* ---- tests --------------------------------------------------------------- */

static void
test_partition_and_heal(void **state)
{
    (void)state;
    mm_tk *tk = start(3, 0, NULL);
    mm_endpoint ep;
    ok(mm_tk_wait_label(tk, "t", 0, &ep));
    assert_int_equal(bump(tk, 2, &ep, 3000), 1);

    ok(mm_tk_partition(tk, (const int[]){0, 0, 1}));
    uint64_t t0 = ms_now();
    ok(mm_tk_wait_state(tk, 2, MM_TK_FAILED, 10000));
    printf("# node 2 seen failed %llu ms after the partition\n",
           (unsigned long long)(ms_now() - t0));
    /* And node 2, on its side, sees node 0 failed. */
    uint64_t end = ms_now() + 10000;
    while (mm_tk_state(tk, 2, 0, NULL) != MM_TK_FAILED && ms_now() < end)
        nap();
    assert_int_equal(mm_tk_state(tk, 2, 0, NULL), MM_TK_FAILED);
    long r = bump(tk, 2, &ep, 500);
    assert_true(r < 0);
    printf("# a call across the partition: %s\n", mm_err_name((int)r));

    ok(mm_tk_heal(tk));
    t0 = ms_now();
    ok(mm_tk_wait_converged(tk, 15000));
    printf("# converged %llu ms after the heal\n",
           (unsigned long long)(ms_now() - t0));
    ok(mm_tk_wait_label(tk, "t", 10000, &ep));
    assert_true(bump_until_ok(tk, 2, &ep, 10000) >= 2);
    mm_tk_stop(tk);
}

static void
test_loss_still_converges(void **state)
{
    (void)state;
    mm_tk_opts o;
    mm_tk_opts_init(&o);
    o.seed = 7;
    mm_tk *tk = start(3, 0, &o);
    mm_endpoint ep;
    ok(mm_tk_wait_label(tk, "t", 0, &ep));
    ok(mm_tk_loss(tk, -1, -1, 30));
    /* Calls get through (QUIC retransmits what was lost). */
    for (int i = 0; i < 5; i++)
        assert_true(bump_until_ok(tk, 2, &ep, 10000) > 0);
    /* A partition under loss, then only the partition lifted. */
    ok(mm_tk_partition(tk, (const int[]){0, 0, 1}));
    ok(mm_tk_wait_state(tk, 2, MM_TK_FAILED, 15000));
    ok(mm_tk_partition(tk, (const int[]){0, 0, 0}));
    uint64_t t0 = ms_now();
    ok(mm_tk_wait_converged(tk, 20000));
    printf("# converged under 30%% loss %llu ms after the partition\n",
           (unsigned long long)(ms_now() - t0));
    assert_true(bump_until_ok(tk, 2, &ep, 10000) > 0);
    mm_tk_stats st;
    for (int i = 0; i < 3; i++) {
        ok(mm_tk_stats_get(tk, i, &st));
        printf("# node %d dropped %llu datagrams\n", i,
               (unsigned long long)st.dropped);
        assert_true(st.dropped > 0);
    }
    mm_tk_stop(tk);
}

static void
test_delay_shows_in_rtt(void **state)
{
    (void)state;
    mm_tk *tk = start(3, 0, NULL);
    mm_endpoint ep;
    ok(mm_tk_wait_label(tk, "t", 0, &ep));
    assert_true(bump(tk, 2, &ep, 3000) > 0);
    uint64_t t0 = ms_now();
    assert_true(bump(tk, 2, &ep, 3000) > 0);
    uint64_t base = ms_now() - t0;

    ok(mm_tk_delay(tk, 2, 0, 150));
    t0 = ms_now();
    assert_true(bump(tk, 2, &ep, 5000) > 0);
    uint64_t one = ms_now() - t0;

    ok(mm_tk_delay(tk, 0, 2, 150));
    t0 = ms_now();
    assert_true(bump(tk, 2, &ep, 5000) > 0);
    uint64_t both = ms_now() - t0;
    printf("# call round trip: %llu ms, 150 ms one way: %llu ms, both "
           "ways: %llu ms\n",
           (unsigned long long)base, (unsigned long long)one,
           (unsigned long long)both);
    assert_true(base < 150);
    assert_true(one >= 150);
    assert_true(both >= 300);
    mm_tk_stats st;
    ok(mm_tk_stats_get(tk, 2, &st));
    assert_true(st.delayed > 0);

    ok(mm_tk_delay(tk, -1, -1, 0));
    t0 = ms_now();
    assert_true(bump(tk, 2, &ep, 3000) > 0);
    assert_true(ms_now() - t0 < 150);
    mm_tk_stop(tk);
}

static void
test_kill_and_restart(void **state)
{
    (void)state;
    mm_tk *tk = start(3, 1, NULL);
    mm_endpoint ep;
    ok(mm_tk_wait_label(tk, "t", 0, &ep));
    assert_int_equal(bump(tk, 2, &ep, 3000), 1);
    uint64_t gen0 = mm_node_generation(mm_tk_node(tk, 1));
    assert_int_equal(ep.generation, gen0);

    uint64_t t0 = ms_now();
    ok(mm_tk_kill(tk, 1));
    printf("# kill took %llu ms\n", (unsigned long long)(ms_now() - t0));
    assert_null(mm_tk_node(tk, 1));
    t0 = ms_now();
    ok(mm_tk_wait_state(tk, 1, MM_TK_FAILED, 10000));
    printf("# node 1 seen failed %llu ms after the kill\n",
           (unsigned long long)(ms_now() - t0));
    assert_true(bump(tk, 2, &ep, 500) < 0);

    ok(mm_tk_restart(tk, 1));
    assert_non_null(mm_tk_node(tk, 1));
    uint64_t gen1 = mm_node_generation(mm_tk_node(tk, 1));
    assert_true(gen1 > gen0);
    ok(mm_tk_wait_converged(tk, 15000));
    uint64_t seen = 0;
    assert_int_equal(mm_tk_state(tk, 0, 1, &seen), MM_TK_ALIVE);
    assert_int_equal(seen, gen1);
    /* The restarted node's actor: a new instance, at the new generation. */
    mm_endpoint ep1;
    uint64_t end = ms_now() + 10000;
    for (;;) {
        ok(mm_tk_wait_label(tk, "t", 10000, &ep1));
        if (ep1.generation == gen1 || ms_now() >= end) break;
        nap();
    }
    assert_int_equal(ep1.generation, gen1);
    assert_int_equal(bump_until_ok(tk, 2, &ep1, 10000), 1);
    /* The old endpoint never reaches the new instance. */
    assert_true(bump(tk, 2, &ep, 1000) < 0);
    mm_tk_stop(tk);
}

static void
test_hold_queue_bound(void **state)
{
    (void)state;
    mm_tk_opts o;
    mm_tk_opts_init(&o);
    o.hold_max = 16;
    mm_tk *tk = start(2, 0, &o);
    /* Everything node 0 sends to node 1 waits a minute: its probes and
     * gossip pile up in the queue, which takes 16. */
    ok(mm_tk_delay(tk, 0, 1, MM_TK_DELAY_MAX_MS));
    mm_tk_stats st;
    uint64_t end = ms_now() + 10000;
    do {
        ok(mm_tk_stats_get(tk, 0, &st));
    } while (st.full == 0 && ms_now() < end && (nap(), 1));
    printf("# held %llu, dropped because full %llu\n",
           (unsigned long long)st.held, (unsigned long long)st.full);
    assert_true(st.full > 0);
    assert_int_equal(st.held, 16);
    assert_int_equal(st.delayed, 0);
    assert_int_equal(mm_tk_delay(tk, 0, 1, MM_TK_DELAY_MAX_MS + 1), MM_EINVAL);
    mm_tk_stop(tk);
}

static void
test_bad_arguments(void **state)
{
    (void)state;
    mm_tk *tk = (mm_tk *)1;
    assert_int_equal(mm_tk_cluster_start(&tk, 0, NULL), MM_EINVAL);
    assert_null(tk);
    assert_non_null(strstr(mm_tk_error(), "1.."));
    assert_int_equal(mm_tk_cluster_start(&tk, MM_TK_NODES_MAX + 1, NULL),
                     MM_EINVAL);
    tk = start(1, 0, NULL);
    assert_int_equal(mm_tk_size(tk), 1);
    assert_null(mm_tk_node(tk, 1));
    assert_int_equal(mm_tk_loss(tk, 0, 0, 101), MM_EINVAL);
    assert_int_equal(mm_tk_loss(tk, 1, 0, 10), MM_EINVAL);
    assert_int_equal(mm_tk_delay(tk, -2, 0, 10), MM_EINVAL);
    assert_int_equal(mm_tk_restart(tk, 0), MM_EINVAL);
    assert_non_null(strstr(mm_tk_error(), "not a killed node"));
    assert_int_equal(mm_tk_state(tk, 1, 0, NULL), MM_EINVAL);
    assert_int_equal(mm_tk_wait_state(tk, 0, 7, 10), MM_EINVAL);
    /* A label nobody registered: the wait ends at its deadline. */
    uint64_t t0 = ms_now();
    assert_int_equal(mm_tk_wait_label(tk, "nobody", 200, NULL), MM_ETIMEOUT);
    assert_true(ms_now() - t0 >= 200);
    assert_non_null(strstr(mm_tk_error(), "nobody"));
    ok(mm_tk_kill(tk, 0));
    assert_int_equal(mm_tk_kill(tk, 0), MM_EINVAL);
    ok(mm_tk_restart(tk, 0));
    mm_tk_stop(tk);
}

int
main(void)
{
    mm_log_set_level(getenv("MM_TEST_LOG") ? atoi(getenv("MM_TEST_LOG"))
                                           : MM_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_partition_and_heal),
        cmocka_unit_test(test_delay_shows_in_rtt),
        cmocka_unit_test(test_kill_and_restart),
        cmocka_unit_test(test_loss_still_converges),
        cmocka_unit_test(test_hold_queue_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
