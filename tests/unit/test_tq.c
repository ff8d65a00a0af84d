/* test_tq.c — the loop's timer queue (lib/tq.c): deadline order, stop and
 * restart from callbacks, lazy re-arming of the timerfd, close semantics,
 * and the point of it all: with only queue timers pending, libuv would
 * sleep with no timeout (uv_backend_timeout() == -1). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "common.h"
#include "tq.h"

struct rec {
    struct mm_tmr t;
    int id;
    struct fx *fx;
    struct rec *restart; /* started again from this callback, if set */
    struct rec *stop;    /* stopped from this callback, if set */
};

/* A loop with a timer queue, five timers that log their ids, and a
 * referenced handle: the queue's own handle is unreferenced (timers alone
 * keep no loop alive), and a node's loop always has its inbox handle. */
struct fx {
    uv_loop_t loop;
    uv_async_t keepalive;
    struct mm_tq q;
    struct rec r[5];
    int log[64];
    size_t nlog;
};

static void
rec_cb(struct mm_tmr *t)
{
    struct rec *r = mm__container_of(t, struct rec, t);
    struct fx *fx = r->fx;
    if (fx->nlog < sizeof(fx->log) / sizeof(fx->log[0]))
        fx->log[fx->nlog] = r->id;
    fx->nlog++;
    if (r->stop) mm__tq_stop(&fx->q, &r->stop->t);
    if (r->restart) {
        struct rec *x = r->restart;
        r->restart = NULL;
        mm__tq_start(&fx->q, &x->t, mm__now_ns() + 1000000ull);
    }
}

static int
fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || uv_loop_init(&fx->loop) != 0 ||
        uv_async_init(&fx->loop, &fx->keepalive, NULL) != 0 ||
        mm__tq_init(&fx->q, &fx->loop) != 0)
        return -1;
    for (int i = 0; i < 5; i++) {
        fx->r[i].t.fn = rec_cb;
        fx->r[i].id = i;
        fx->r[i].fx = fx;
    }
    *state = fx;
    return 0;
}

static int
fx_teardown(void **state)
{
    struct fx *fx = *state;
    uv_close((uv_handle_t *)&fx->keepalive, NULL);
    mm__tq_close(&fx->q); /* a no-op when the test closed it */
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    int rc = fx->q.fd == -1 && uv_loop_close(&fx->loop) == 0 ? 0 : -1;
    free(fx);
    return rc;
}

/* Runs the loop until |n| callbacks ran (bounded: 2 s). */
static void
run_until(struct fx *fx, size_t n)
{
    uint64_t end = mm__now_ns() + 2000000000ull;
    while (fx->nlog < n && mm__now_ns() < end)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->nlog, n);
}

static void
test_tq_fires_in_deadline_order(void **state)
{
    struct fx *fx = *state;
    struct mm_tq *q = &fx->q;
    struct rec *r = fx->r;
    uint64_t now = mm__now_ns();
    /* Started out of order; r[3] moved later by a restart; r[4] stopped. */
    mm__tq_start(q, &r[2].t, now + 6000000ull);
    mm__tq_start(q, &r[0].t, now + 2000000ull);
    mm__tq_start(q, &r[3].t, now + 1000000ull);
    mm__tq_start(q, &r[1].t, now + 4000000ull);
    mm__tq_start(q, &r[4].t, now + 3000000ull);
    mm__tq_start(q, &r[3].t, now + 8000000ull);
    mm__tq_stop(q, &r[4].t);
    assert_false(mm__tq_active(&r[4].t));
    assert_true(mm__tq_active(&r[3].t));
    /* The whole point: nothing makes libuv wake on a timeout (asked after
     * a turn: libuv answers 0 while watcher changes are pending). */
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->nlog, 0);
    assert_int_equal(uv_backend_timeout(&fx->loop), -1);
    run_until(fx, 4);
    assert_int_equal(fx->log[0], 0);
    assert_int_equal(fx->log[1], 1);
    assert_int_equal(fx->log[2], 2);
    assert_int_equal(fx->log[3], 3);
    assert_false(mm__tq_active(&r[3].t)); /* a fired timer is stopped */
    assert_int_equal(q->len, 0);
}

static void
test_tq_callbacks_start_and_stop(void **state)
{
    struct fx *fx = *state;
    struct rec *r = fx->r;
    uint64_t now = mm__now_ns();
    /* A past deadline runs on the next turn; its callback stops r[1]
     * (due at the same time) and starts r[2] 1 ms later. */
    r[0].stop = &r[1];
    r[0].restart = &r[2];
    mm__tq_start(&fx->q, &r[0].t, now - 1000000ull);
    mm__tq_start(&fx->q, &r[1].t, now);
    run_until(fx, 2);
    assert_int_equal(fx->log[0], 0);
    assert_int_equal(fx->log[1], 2);
    assert_false(mm__tq_active(&r[1].t));
}

static void
test_tq_rearms_only_for_earlier(void **state)
{
    struct fx *fx = *state;
    struct mm_tq *q = &fx->q;
    struct rec *r = fx->r;
    uint64_t now = mm__now_ns();
    mm__tq_start(q, &r[0].t, now + 5000000ull);
    assert_int_equal(q->armed, now + 5000000ull);
    /* Later: the armed deadline stays (no syscall). */
    mm__tq_start(q, &r[0].t, now + 9000000ull);
    assert_int_equal(q->armed, now + 5000000ull);
    /* Earlier than armed: re-armed. */
    mm__tq_start(q, &r[1].t, now + 3000000ull);
    assert_int_equal(q->armed, now + 3000000ull);
    /* The early wake-ups still run each timer at its own deadline. */
    run_until(fx, 2);
    assert_int_equal(fx->log[0], 1);
    assert_int_equal(fx->log[1], 0);
    assert_true(mm__now_ns() >= now + 9000000ull);
}

/* A callback that re-arms itself for a time already due runs once per
 * wake-up, not in a loop inside one: the loop's other handles get their
 * turn. */
static void
spin_cb(struct mm_tmr *t)
{
    struct rec *r = mm__container_of(t, struct rec, t);
    r->fx->nlog++;
    mm__tq_start(&r->fx->q, t, mm__now_ns() - 1000000ull); /* already due */
}

static void
test_tq_due_restart_waits_for_next_wakeup(void **state)
{
    struct fx *fx = *state;
    struct mm_tmr *t = &fx->r[0].t;
    t->fn = spin_cb;
    mm__tq_start(&fx->q, t, mm__now_ns());
    run_until(fx, 1); /* one run per poll phase */
    assert_true(mm__tq_active(t));
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->nlog, 2);
    mm__tq_stop(&fx->q, t);
}

static void
test_tq_close_drops_timers(void **state)
{
    struct fx *fx = *state;
    struct rec *r = fx->r;
    mm__tq_start(&fx->q, &r[0].t, mm__now_ns());
    mm__tq_close(&fx->q);
    /* After close: a stop only marks the timer, a start does nothing. */
    mm__tq_stop(&fx->q, &r[0].t);
    assert_false(mm__tq_active(&r[0].t));
    mm__tq_start(&fx->q, &r[1].t, mm__now_ns());
    assert_false(mm__tq_active(&r[1].t));
    for (int i = 0; i < 3; i++)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->nlog, 0);  /* nothing ran */
    assert_int_equal(fx->q.fd, -1); /* closed in the handle's callback */
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_tq_fires_in_deadline_order),
        T(test_tq_callbacks_start_and_stop),
        T(test_tq_rearms_only_for_earlier),
        T(test_tq_due_restart_waits_for_next_wakeup),
        T(test_tq_close_drops_timers),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
