/* test_tq.c — the loop's timer queue (lib/tq.c): deadline order, stop and
 * restart from callbacks, lazy re-arming of the timerfd, close semantics,
 * and the point of it all: with only queue timers pending, libuv would
 * sleep with no timeout (uv_backend_timeout() == -1). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "common.h"
#include "tq.h"

struct rec {
    struct mm_tmr t;
    int id;
    struct mm_tq *q;
    int *log;
    size_t *nlog;
    struct rec *restart; /* started again from this callback, if set */
    struct rec *stop;    /* stopped from this callback, if set */
};

static void
rec_cb(struct mm_tmr *t)
{
    struct rec *r = mm__container_of(t, struct rec, t);
    r->log[(*r->nlog)++] = r->id;
    if (r->stop) mm__tq_stop(r->q, &r->stop->t);
    if (r->restart) {
        struct rec *x = r->restart;
        r->restart = NULL;
        mm__tq_start(r->q, &x->t, mm__now_ns() + 1000000ull);
    }
}

/* Runs the loop until |n| callbacks ran (bounded: 2 s). */
static void
run_until(uv_loop_t *loop, size_t *nlog, size_t n)
{
    uint64_t end = mm__now_ns() + 2000000000ull;
    while (*nlog < n && mm__now_ns() < end) uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(*nlog, n);
}

static void
setup_recs(struct rec *r, size_t n, struct mm_tq *q, int *log, size_t *nlog)
{
    memset(r, 0, n * sizeof(*r));
    for (size_t i = 0; i < n; i++) {
        r[i].t.fn = rec_cb;
        r[i].id = (int)i;
        r[i].q = q;
        r[i].log = log;
        r[i].nlog = nlog;
    }
}

/* The queue's handle is unreferenced (timers alone keep no loop alive);
 * a node's loop always has its inbox handle, which this stands for. */
static uv_async_t keepalive;

static void
open_loop(uv_loop_t *loop, struct mm_tq *q)
{
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(uv_async_init(loop, &keepalive, NULL), 0);
    assert_int_equal(mm__tq_init(q, loop), 0);
}

static void
close_loop(uv_loop_t *loop, struct mm_tq *q)
{
    uv_close((uv_handle_t *)&keepalive, NULL);
    mm__tq_close(q);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(q->fd, -1);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void
test_tq_fires_in_deadline_order(void **state)
{
    uv_loop_t loop;
    struct mm_tq q;
    struct rec r[5];
    int log[16];
    size_t nlog = 0;
    (void)state;
    open_loop(&loop, &q);
    setup_recs(r, 5, &q, log, &nlog);
    uint64_t now = mm__now_ns();
    /* Started out of order; r[3] moved later by a restart; r[4] stopped. */
    mm__tq_start(&q, &r[2].t, now + 6000000ull);
    mm__tq_start(&q, &r[0].t, now + 2000000ull);
    mm__tq_start(&q, &r[3].t, now + 1000000ull);
    mm__tq_start(&q, &r[1].t, now + 4000000ull);
    mm__tq_start(&q, &r[4].t, now + 3000000ull);
    mm__tq_start(&q, &r[3].t, now + 8000000ull);
    mm__tq_stop(&q, &r[4].t);
    assert_false(mm__tq_active(&r[4].t));
    assert_true(mm__tq_active(&r[3].t));
    /* The whole point: nothing makes libuv wake on a timeout (asked after
     * a turn: libuv answers 0 while watcher changes are pending). */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(nlog, 0);
    assert_int_equal(uv_backend_timeout(&loop), -1);
    run_until(&loop, &nlog, 4);
    assert_int_equal(log[0], 0);
    assert_int_equal(log[1], 1);
    assert_int_equal(log[2], 2);
    assert_int_equal(log[3], 3);
    assert_false(mm__tq_active(&r[3].t)); /* a fired timer is stopped */
    assert_int_equal(q.len, 0);
    close_loop(&loop, &q);
}

static void
test_tq_callbacks_start_and_stop(void **state)
{
    uv_loop_t loop;
    struct mm_tq q;
    struct rec r[3];
    int log[16];
    size_t nlog = 0;
    (void)state;
    open_loop(&loop, &q);
    setup_recs(r, 3, &q, log, &nlog);
    uint64_t now = mm__now_ns();
    /* A past deadline runs on the next turn; its callback stops r[1]
     * (due at the same time) and starts r[2] 1 ms later. */
    r[0].stop = &r[1];
    r[0].restart = &r[2];
    mm__tq_start(&q, &r[0].t, now - 1000000ull);
    mm__tq_start(&q, &r[1].t, now);
    run_until(&loop, &nlog, 2);
    assert_int_equal(log[0], 0);
    assert_int_equal(log[1], 2);
    assert_false(mm__tq_active(&r[1].t));
    close_loop(&loop, &q);
}

static void
test_tq_rearms_only_for_earlier(void **state)
{
    uv_loop_t loop;
    struct mm_tq q;
    struct rec r[2];
    int log[4];
    size_t nlog = 0;
    (void)state;
    open_loop(&loop, &q);
    setup_recs(r, 2, &q, log, &nlog);
    uint64_t now = mm__now_ns();
    mm__tq_start(&q, &r[0].t, now + 5000000ull);
    assert_int_equal(q.armed, now + 5000000ull);
    /* Later: the armed deadline stays (no syscall). */
    mm__tq_start(&q, &r[0].t, now + 9000000ull);
    assert_int_equal(q.armed, now + 5000000ull);
    /* Earlier than armed: re-armed. */
    mm__tq_start(&q, &r[1].t, now + 3000000ull);
    assert_int_equal(q.armed, now + 3000000ull);
    /* The early wake-ups still run each timer at its own deadline. */
    run_until(&loop, &nlog, 2);
    assert_int_equal(log[0], 1);
    assert_int_equal(log[1], 0);
    assert_true(mm__now_ns() >= now + 9000000ull);
    close_loop(&loop, &q);
}

/* A callback that re-arms itself for "now" runs once per wake-up, not in
 * a loop inside one: the loop's other handles get their turn. */
static int spin_runs;
static struct mm_tq *spin_q;

static void
spin_cb(struct mm_tmr *t)
{
    spin_runs++;
    mm__tq_start(spin_q, t, mm__now_ns() - 1000000ull); /* already due */
}

static void
test_tq_due_restart_waits_for_next_wakeup(void **state)
{
    uv_loop_t loop;
    struct mm_tq q;
    struct mm_tmr t = {0};
    (void)state;
    open_loop(&loop, &q);
    spin_q = &q;
    spin_runs = 0;
    t.fn = spin_cb;
    mm__tq_start(&q, &t, mm__now_ns());
    uint64_t end = mm__now_ns() + 2000000000ull;
    while (spin_runs == 0 && mm__now_ns() < end) uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(spin_runs, 1); /* one run per poll phase */
    assert_true(mm__tq_active(&t));
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(spin_runs, 2);
    mm__tq_stop(&q, &t);
    close_loop(&loop, &q);
}

static void
test_tq_close_drops_timers(void **state)
{
    uv_loop_t loop;
    struct mm_tq q;
    struct rec r[2];
    int log[4];
    size_t nlog = 0;
    (void)state;
    open_loop(&loop, &q);
    setup_recs(r, 2, &q, log, &nlog);
    mm__tq_start(&q, &r[0].t, mm__now_ns());
    mm__tq_close(&q);
    /* After close: a stop only marks the timer, a start does nothing. */
    mm__tq_stop(&q, &r[0].t);
    assert_false(mm__tq_active(&r[0].t));
    mm__tq_start(&q, &r[1].t, mm__now_ns());
    assert_false(mm__tq_active(&r[1].t));
    uv_close((uv_handle_t *)&keepalive, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(nlog, 0); /* nothing ran */
    assert_int_equal(q.fd, -1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tq_fires_in_deadline_order),
        cmocka_unit_test(test_tq_callbacks_start_and_stop),
        cmocka_unit_test(test_tq_rearms_only_for_earlier),
        cmocka_unit_test(test_tq_due_restart_waits_for_next_wakeup),
        cmocka_unit_test(test_tq_close_drops_timers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
