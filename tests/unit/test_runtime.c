/*
 * test_runtime.c — the local actor runtime end to end on a real node:
 * calls, tells, FIFO, backpressure, deadlines, EDEADLK, supervision,
 * watches, listings, ready handles.  test_shards.c runs the same suite with
 * two shards (TEST_SHARDS).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "murmer.h"
#include "runtime.h" /* mm_msg's deadline, MM_MAX_CALL_MS */
#include "helpers/nodefix.h"
#include "helpers/testutil.h"

#ifndef TEST_SHARDS
#define TEST_SHARDS 1
#endif

/* ---- test actor types
 * -------------------------------------------------------- */

struct tcount {
    long count;
    long next_seq;
    int out_of_order;
};

static _Atomic int starts;
static _Atomic int stops;
static sem_t block_sem;   /* released by the test: lets t_block return */
static sem_t blocked_sem; /* posted by t_block once it holds its shard */

static int
t_inc(mm_ctx *ctx, void *st, mm_msg *m)
{
    struct tcount *s = st;
    s->count++;
    (void)ctx;
    (void)m;
    return 0;
}

static int
t_get(mm_ctx *ctx, void *st, mm_msg *m)
{
    struct tcount *s = st;
    (void)m;
    return mm_reply_jsonf(ctx, "%ld", s->count);
}

static int
t_seq(mm_ctx *ctx, void *st, mm_msg *m)
{
    struct tcount *s = st;
    long v = (long)(intptr_t)mm_msg_ptr(m);
    if (v != s->next_seq) s->out_of_order++;
    s->next_seq = v + 1;
    (void)ctx;
    return 0;
}

static int
t_check(mm_ctx *ctx, void *st, mm_msg *m)
{
    struct tcount *s = st;
    (void)m;
    return mm_reply_jsonf(ctx, "[%ld,%d]", s->next_seq, s->out_of_order);
}

static int
t_crash(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)st;
    (void)m;
    return mm_fail(ctx, "asked to crash");
}

static int
t_stop(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)ctx;
    (void)st;
    (void)m;
    return MM_STOP;
}

static int
t_block(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)ctx;
    (void)st;
    (void)m;
    sem_post(&blocked_sem);
    sem_wait(&block_sem); /* test only: holds the shard */
    return 0;
}

static int
t_nested_call(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)st;
    mm_endpoint self = *mm_ctx_self(ctx);
    int rc = mm_call(mm_ctx_node(ctx), &self, mm_msg_new("get"), NULL);
    (void)m;
    return mm_reply_jsonf(ctx, "%d", rc);
}

struct slow_job {
    mm_defer *d;
    int ms;
};

static void
slow_work(void *arg)
{
    struct slow_job *j = arg;
    struct timespec ts = {0, (long)j->ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void
slow_after(void *arg, int status)
{
    struct slow_job *j = arg;
    (void)status;
    mm_defer_reply(j->d, 0, mm_msg_new_json(NULL, "\"late\"", 6));
    free(j);
}

static int
t_slow(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)st;
    (void)m;
    struct slow_job *j = calloc(1, sizeof(*j));
    j->d = mm_ctx_defer(ctx);
    j->ms = 200;
    return mm_node_queue_work(mm_ctx_node(ctx), slow_work, slow_after, j);
}

static sem_t nap_sem; /* posted by t_nap as it starts */

/* Holds its shard for 200 ms (test only), then replies. */
static int
t_nap(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)st;
    (void)m;
    sem_post(&nap_sem);
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    return mm_reply_json(ctx, "1");
}

/* Replies with the ms left before the call's deadline. */
static int
t_deadline(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)st;
    return mm_reply_jsonf(ctx, "%lld",
                          (long long)m->deadline - (long long)mm__now_ms());
}

static void
t_stophook(mm_ctx *ctx, void *st, int reason)
{
    (void)ctx;
    (void)st;
    (void)reason;
    atomic_fetch_add(&stops, 1);
}

MM_ACTOR_TYPE(tcounter, struct tcount, NULL, t_stophook,
              MM_HANDLER("increment", t_inc), MM_HANDLER("get", t_get),
              MM_HANDLER("seq", t_seq), MM_HANDLER("check", t_check),
              MM_HANDLER("crash", t_crash), MM_HANDLER("stop", t_stop),
              MM_HANDLER("block", t_block), MM_HANDLER("nested", t_nested_call),
              MM_HANDLER("slow", t_slow), MM_HANDLER("deadline", t_deadline),
              MM_HANDLER("nap", t_nap));

static int
t_start_hook(mm_ctx *ctx, void *st)
{
    (void)ctx;
    (void)st;
    atomic_fetch_add(&starts, 1);
    return 0;
}

MM_ACTOR_TYPE(tsup, struct tcount, t_start_hook, NULL,
              MM_HANDLER("increment", t_inc), MM_HANDLER("get", t_get),
              MM_HANDLER("crash", t_crash), MM_HANDLER("stop", t_stop));

/* ---- fixture
 * ----------------------------------------------------------------- */

struct fx {
    mm_node *n;
};

static int
setup(void **state)
{
    static struct fx fx;
    fx.n = nodefix_new(
        &(struct nodefix_opts){.name = "test", .shards = TEST_SHARDS});
    assert_int_equal(mm_node_register_type(fx.n, &tcounter_type), 0);
    assert_int_equal(mm_node_register_type(fx.n, &tsup_type), 0);
    assert_int_equal(mm_node_register_type(fx.n, &tcounter_type), MM_EEXISTS);
    nodefix_start(fx.n);
    atomic_store(&starts, 0);
    atomic_store(&stops, 0);
    sem_init(&block_sem, 0, 0);
    sem_init(&blocked_sem, 0, 0);
    *state = &fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    sem_post(&block_sem); /* a failed test may have left its shard held */
    nodefix_down(fx->n);
    sem_destroy(&block_sem);
    sem_destroy(&blocked_sem);
    return 0;
}

static mm_endpoint
spawn(mm_node *n, const char *type, const char *label, int policy)
{
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = label;
    o.policy = policy;
    o.backoff_initial_ms = 1;
    o.backoff_max_ms = 4;
    mm_endpoint ep;
    assert_int_equal(mm_spawn(n, type, &o, &ep), 0);
    return ep;
}

static long
call_long(mm_node *n, const mm_endpoint *ep, const char *type)
{
    mm_msg *r = NULL;
    int rc = mm_call(n, ep, mm_msg_new(type), &r);
    if (rc != 0) {
        mm_msg_free(r);
        return rc;
    }
    const cJSON *j = mm_msg_json(r, NULL);
    long v = j && cJSON_IsNumber(j) ? (long)j->valuedouble : -99999;
    mm_msg_free(r);
    return v;
}

/* Polls |fn| every millisecond for at most |ms|; returns its last value. */
static int
wait_until(int (*fn)(void *), void *arg, int ms)
{
    for (int i = 0; i < ms; i++) {
        if (fn(arg)) return 1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return fn(arg);
}

/* ---- watch helper
 * ------------------------------------------------------------ */

struct wrec {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int fired;
    int reason;
};

static void
watch_cb(void *data, const mm_endpoint *ep, int reason)
{
    struct wrec *w = data;
    (void)ep;
    pthread_mutex_lock(&w->lock);
    w->fired++;
    w->reason = reason;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static int
wrec_wait(struct wrec *w, int ms)
{
    struct timespec ts = realtime_in_ms((unsigned)ms);
    pthread_mutex_lock(&w->lock);
    while (!w->fired)
        if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) != 0) break;
    int f = w->fired;
    pthread_mutex_unlock(&w->lock);
    return f;
}

#define WREC_INIT                                                              \
    {                                                                          \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0              \
    }

/* ---- tests
 * -------------------------------------------------------------------- */

struct sender_arg {
    mm_node *n;
    mm_endpoint ep;
    int errors;
};

static void *
sender_main(void *arg)
{
    struct sender_arg *a = arg;
    for (int i = 0; i < 20; i++)
        if (mm_call(a->n, &a->ep, mm_msg_new("increment"), NULL) != 0)
            a->errors++;
    return NULL;
}

static void
test_runtime_50_senders_total_1000(void **state)
{
    struct fx *fx = *state;
    mm_endpoint c = spawn(fx->n, "tcounter", "counter/a", MM_TEMPORARY);
    pthread_t th[50];
    struct sender_arg args[50];
    for (int i = 0; i < 50; i++) {
        args[i] = (struct sender_arg){fx->n, c, 0};
        pthread_create(&th[i], NULL, sender_main, &args[i]);
    }
    for (int i = 0; i < 50; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].errors, 0);
    }
    assert_int_equal(call_long(fx->n, &c, "get"), 1000);
}

static void
test_runtime_per_sender_fifo(void **state)
{
    struct fx *fx = *state;
    mm_endpoint c = spawn(fx->n, "tcounter", NULL, MM_TEMPORARY);
    uint32_t seq = mm_node_msg_id(fx->n, "seq");
    assert_true(seq != 0);
    for (long i = 0; i < 500; i++) {
        mm_msg *m = mm_msg_new_id(fx->n, seq, (void *)(intptr_t)i, NULL);
        int rc;
        while ((rc = mm_tell(fx->n, &c, m)) == MM_EOVERLOADED)
            sched_yield();
        assert_int_equal(rc, 0);
    }
    mm_msg *r = NULL;
    assert_int_equal(mm_call(fx->n, &c, mm_msg_new("check"), &r), 0);
    size_t len;
    const char *txt = mm_msg_data(r, &len);
    assert_string_equal(txt, "[500,0]");
    mm_msg_free(r);
}

static void
test_runtime_unknown_and_missing(void **state)
{
    struct fx *fx = *state;
    mm_endpoint c = spawn(fx->n, "tcounter", NULL, MM_TEMPORARY);
    mm_msg *m = mm_msg_new("no-such-message");
    assert_int_equal(mm_tell(fx->n, &c, m), MM_EUNKNOWN_MESSAGE);
    mm_msg_free(m); /* still ours on error */
    /* Known to the node but not to this type: refused at dispatch. */
    assert_int_equal(mm_node_register_type(fx->n, &tsup_type), MM_EEXISTS);
    mm_endpoint bogus = c;
    bogus.actor += 1ull << 32; /* same slot, another serial */
    m = mm_msg_new("get");
    assert_int_equal(mm_tell(fx->n, &bogus, m), MM_ENOTFOUND);
    mm_msg_free(m);
    assert_int_equal(mm_spawn(fx->n, "nosuchtype", NULL, NULL), MM_ENOTFOUND);
}

/* A typed lookup: the type must match, a mismatch is not a not-found. */
static void
test_runtime_lookup_typed(void **state)
{
    struct fx *fx = *state;
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = "typed/c";
    mm_endpoint ep, found;
    assert_int_equal(mm_spawn(fx->n, "tcounter", &o, &ep), 0);
    assert_int_equal(mm_lookup_typed(fx->n, "typed/c", "tcounter", &found), 0);
    assert_true(mm_endpoint_equal(&found, &ep));
    assert_int_equal(mm_lookup_typed(fx->n, "typed/c", NULL, &found), 0);
    assert_int_equal(mm_lookup_typed(fx->n, "typed/c", "echo", &found),
                     MM_ETYPE_MISMATCH);
    assert_int_equal(mm_lookup_typed(fx->n, "typed/none", "tcounter", NULL),
                     MM_ENOTFOUND);
    assert_string_equal(mm_err_name(MM_ETYPE_MISMATCH), "type_mismatch");
    assert_int_equal(mm_err_exit_code(MM_ETYPE_MISMATCH), MM_EXIT_NOTFOUND);
    assert_int_equal(mm_err_from_wire(mm_err_to_wire(MM_ETYPE_MISMATCH)),
                     MM_ETYPE_MISMATCH);
    assert_int_equal(mm_err_to_wire(MM_ETYPE_MISMATCH), 17);
}

static void
test_runtime_overloaded_loses_nothing(void **state)
{
    struct fx *fx = *state;
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.mailbox_capacity = 4;
    o.label = "full/box";
    mm_ready *r;
    assert_int_equal(mm_spawn_ready(&r, fx->n, "tcounter", &o), 0);
    mm_endpoint ep = *mm_ready_endpoint(r);
    /* Prepared: registered and queueing, not running. */
    mm_endpoint found;
    assert_int_equal(mm_lookup(fx->n, "full/box", &found), 0);
    assert_true(mm_endpoint_equal(&found, &ep));
    for (int i = 0; i < 4; i++)
        assert_int_equal(mm_tell(fx->n, &ep, mm_msg_new("increment")), 0);
    mm_msg *extra = mm_msg_new("increment");
    assert_int_equal(mm_tell(fx->n, &ep, extra), MM_EOVERLOADED);
    mm_msg_free(extra);
    assert_int_equal(mm_ready_start(r), 0);
    /* The call itself needs room: retry (bounded) until the box drains. */
    long v = MM_EOVERLOADED;
    for (int i = 0; i < 100000 && v == MM_EOVERLOADED; i++) {
        v = call_long(fx->n, &ep, "get");
        if (v == MM_EOVERLOADED) sched_yield();
    }
    assert_int_equal(v, 4);
}

/* A mailbox is bounded in bytes too: big messages are refused past the
 * bound while small ones still go; a message to an empty mailbox always
 * goes, whatever its size. */
static void
test_runtime_mailbox_bytes_bound(void **state)
{
    (void)state;
    mm_node_config cfg;
    mm_node_config_init(&cfg);
    assert_int_equal(cfg.mailbox_bytes, 16u * 1024u * 1024u);
    cfg.name = "bytes";
    cfg.shards = TEST_SHARDS;
    cfg.mailbox_bytes = 64 * 1024;
    mm_node *n;
    assert_int_equal(mm_node_new(&n, &cfg), 0);
    assert_int_equal(mm_node_register_type(n, &tcounter_type), 0);
    nodefix_start(n);
    static char big[100 * 1024];
    memset(big, 'x', sizeof(big));
    mm_ready *r;
    assert_int_equal(mm_spawn_ready(&r, n, "tcounter", NULL), 0);
    mm_endpoint ep = *mm_ready_endpoint(r);
    /* 3 x 20000 bytes fit in 64 KiB, a 4th does not. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            mm_tell(n, &ep, mm_msg_new_raw("increment", big, 20000)), 0);
    mm_msg *m = mm_msg_new_raw("increment", big, 20000);
    assert_int_equal(mm_tell(n, &ep, m), MM_EOVERLOADED);
    mm_msg_free(m);
    /* A call is refused the same way (and its callback never runs). */
    m = mm_msg_new_raw("increment", big, 20000);
    assert_int_equal(mm_call(n, &ep, m, NULL), MM_EOVERLOADED);
    /* Legitimate small traffic still goes. */
    assert_int_equal(mm_tell(n, &ep, mm_msg_new("increment")), 0);
    assert_int_equal(mm_ready_start(r), 0);
    assert_int_equal(call_long(n, &ep, "get"), 4);
    /* Drained: the byte count went back to zero, so big messages go again,
     * and one above the bound goes to an empty mailbox. */
    assert_int_equal(mm_tell(n, &ep, mm_msg_new_raw("increment", big, 20000)),
                     0);
    assert_int_equal(call_long(n, &ep, "get"), 5);
    assert_int_equal(
        mm_call(n, &ep, mm_msg_new_raw("increment", big, sizeof(big)), NULL),
        0);
    assert_int_equal(call_long(n, &ep, "get"), 6);
    nodefix_down(n);
}

struct answers {
    _Atomic int ok, closed, other;
};

static void
answer_cb(void *data, int status, mm_msg *reply)
{
    struct answers *a = data;
    (void)reply;
    if (status == 0)
        atomic_fetch_add(&a->ok, 1);
    else if (status == MM_ECLOSED)
        atomic_fetch_add(&a->closed, 1);
    else
        atomic_fetch_add(&a->other, 1);
}

/* Shutdown has a deadline: with 50 calls of 200 ms queued, the one being
 * handled finishes, the others are answered closed at once, and the node
 * is down well within MM_SHUTDOWN_MS (not after 10 s). */
static void
test_runtime_shutdown_answers_queue_closed(void **state)
{
    (void)state;
    mm_node *n = nodefix_new(
        &(struct nodefix_opts){.name = "stop", .shards = TEST_SHARDS});
    assert_int_equal(mm_node_register_type(n, &tcounter_type), 0);
    nodefix_start(n);
    sem_init(&nap_sem, 0, 0);
    mm_endpoint ep = spawn(n, "tcounter", NULL, MM_TEMPORARY);
    static struct answers ans;
    atomic_store(&ans.ok, 0);
    atomic_store(&ans.closed, 0);
    atomic_store(&ans.other, 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(mm_send(n, &ep, mm_msg_new("nap"), answer_cb, &ans),
                         0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    /* The first one runs: 49 are queued. */
    assert_int_equal(sem_timedwait(&nap_sem, &until), 0);
    uint64_t t0 = now_ms();
    mm_node_stop(n);
    mm_node_join(n);
    uint64_t took = now_ms() - t0;
    mm_node_free(n);
    sem_destroy(&nap_sem);
    assert_true(took < MM_SHUTDOWN_MS);
    /* Every call got its one answer: closed, but the one(s) that ran. */
    assert_int_equal(atomic_load(&ans.ok) + atomic_load(&ans.closed), 50);
    assert_int_equal(atomic_load(&ans.other), 0);
    assert_true(atomic_load(&ans.ok) <= 2);
}

struct writable {
    _Atomic int fired;
};

static void
writable_cb(void *data)
{
    struct writable *w = data;
    atomic_fetch_add(&w->fired, 1);
}

static int
writable_fired(void *arg)
{
    return atomic_load(&((struct writable *)arg)->fired) > 0;
}

static void
test_runtime_when_writable(void **state)
{
    struct fx *fx = *state;
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.mailbox_capacity = 2;
    mm_ready *r;
    assert_int_equal(mm_spawn_ready(&r, fx->n, "tcounter", &o), 0);
    mm_endpoint ep = *mm_ready_endpoint(r);
    assert_int_equal(mm_tell(fx->n, &ep, mm_msg_new("increment")), 0);
    assert_int_equal(mm_tell(fx->n, &ep, mm_msg_new("increment")), 0);
    struct writable w = {0};
    assert_int_equal(mm_endpoint_when_writable(fx->n, &ep, writable_cb, &w), 0);
    /* Full and not running: the callback must not fire yet. */
    assert_int_equal(atomic_load(&w.fired), 0);
    assert_int_equal(mm_ready_start(r), 0);
    assert_true(wait_until(writable_fired, &w, 5000));
    assert_int_equal(call_long(fx->n, &ep, "get"), 2);
}

static void
test_runtime_deadline_timeout_and_late_reply(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx->n, "tcounter", NULL, MM_TEMPORARY);
    mm_msg *m = mm_msg_new("slow");
    mm_msg_set_timeout(m, 30);
    mm_msg *r = NULL;
    assert_int_equal(mm_call(fx->n, &ep, m, &r), MM_ETIMEOUT);
    assert_null(r);
    /* The actor keeps serving; the late reply (200 ms) is dropped safely. */
    assert_int_equal(call_long(fx->n, &ep, "get"), 0);
    m = mm_msg_new("slow");
    mm_msg_set_timeout(m, 5000);
    assert_int_equal(mm_call(fx->n, &ep, m, &r), 0);
    assert_string_equal(mm_msg_data(r, NULL), "\"late\"");
    mm_msg_free(r);
}

/* A caller's deadline is clamped to the node's maximum; shorter ones are
 * kept as asked. */
static void
test_runtime_deadline_clamped(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx->n, "tcounter", NULL, MM_TEMPORARY);
    mm_msg *m = mm_msg_new("deadline");
    mm_msg_set_timeout(m, UINT32_MAX);
    mm_msg *r = NULL;
    assert_int_equal(mm_call(fx->n, &ep, m, &r), 0);
    long left = (long)cJSON_GetNumberValue(mm_msg_json(r, NULL));
    mm_msg_free(r);
    assert_true(left <= (long)MM_MAX_CALL_MS);
    assert_true(left > (long)MM_MAX_CALL_MS - 2000);
    m = mm_msg_new("deadline");
    mm_msg_set_timeout(m, 3000);
    assert_int_equal(mm_call(fx->n, &ep, m, &r), 0);
    left = (long)cJSON_GetNumberValue(mm_msg_json(r, NULL));
    mm_msg_free(r);
    assert_true(left <= 3000 && left > 1000);
}

static void
test_runtime_blocking_call_on_shard_is_edeadlk(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx->n, "tcounter", NULL, MM_TEMPORARY);
    assert_int_equal(call_long(fx->n, &ep, "nested"), MM_EDEADLK);
}

static void
test_runtime_temporary_not_restarted(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx->n, "tsup", "sup/temp", MM_TEMPORARY);
    struct wrec w = WREC_INIT;
    assert_int_equal(mm_watch(fx->n, NULL, &ep, watch_cb, &w), 0);
    assert_int_equal(call_long(fx->n, &ep, "crash"), MM_EHANDLER);
    assert_true(wrec_wait(&w, 5000));
    assert_int_equal(w.reason, MM_REASON_CRASH);
    assert_int_equal(call_long(fx->n, &ep, "get"), MM_ENOTFOUND);
    assert_int_equal(mm_lookup(fx->n, "sup/temp", NULL), MM_ENOTFOUND);
}

static void
test_runtime_transient_restarts_after_crash(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx->n, "tsup", "sup/transient", MM_TRANSIENT);
    assert_int_equal(mm_tell(fx->n, &ep, mm_msg_new("increment")), 0);
    assert_int_equal(call_long(fx->n, &ep, "get"), 1);
    mm_msg *crash = mm_msg_new("crash");
    assert_int_equal(mm_tell(fx->n, &ep, crash), 0);
    /* Queued behind the crash: kept, and served after the restart by the
     * same endpoint with a re-zeroed state. */
    assert_int_equal(call_long(fx->n, &ep, "get"), 0);
    mm_endpoint found;
    assert_int_equal(mm_lookup(fx->n, "sup/transient", &found), 0);
    assert_true(mm_endpoint_equal(&found, &ep));
    /* A normal stop is not restarted. */
    struct wrec w = WREC_INIT;
    assert_int_equal(mm_watch(fx->n, "sup/transient", NULL, watch_cb, &w), 0);
    assert_int_equal(mm_tell(fx->n, &ep, mm_msg_new("stop")), 0);
    assert_true(wrec_wait(&w, 5000));
    assert_int_equal(w.reason, MM_REASON_NORMAL);
    assert_int_equal(call_long(fx->n, &ep, "get"), MM_ENOTFOUND);
}

static void
test_runtime_permanent_restarts_after_stop(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx->n, "tsup", "sup/perm", MM_PERMANENT);
    assert_int_equal(mm_tell(fx->n, &ep, mm_msg_new("stop")), 0);
    assert_int_equal(call_long(fx->n, &ep, "get"), 0);
    assert_int_equal(mm_tell(fx->n, &ep, mm_msg_new("crash")), 0);
    assert_int_equal(call_long(fx->n, &ep, "get"), 0);
    /* An explicit stop from outside is honoured. */
    struct wrec w = WREC_INIT;
    assert_int_equal(mm_watch(fx->n, NULL, &ep, watch_cb, &w), 0);
    assert_int_equal(mm_actor_stop(fx->n, &ep), 0);
    assert_true(wrec_wait(&w, 5000));
    assert_int_equal(w.reason, MM_REASON_STOPPED);
    assert_int_equal(call_long(fx->n, &ep, "get"), MM_ENOTFOUND);
}

static void
test_runtime_restart_limit(void **state)
{
    struct fx *fx = *state;
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.policy = MM_PERMANENT;
    o.max_restarts = 3;
    o.backoff_initial_ms = 1;
    o.backoff_max_ms = 2;
    mm_endpoint ep;
    atomic_store(&starts, 0);
    assert_int_equal(mm_spawn(fx->n, "tsup", &o, &ep), 0);
    struct wrec w = WREC_INIT;
    assert_int_equal(mm_watch(fx->n, NULL, &ep, watch_cb, &w), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(mm_tell(fx->n, &ep, mm_msg_new("crash")), 0);
    assert_true(wrec_wait(&w, 5000));
    assert_int_equal(w.reason, MM_REASON_RESTART_LIMIT);
    assert_int_equal(atomic_load(&starts), 4);
}

static void
test_runtime_watch_missing_fires_at_once(void **state)
{
    struct fx *fx = *state;
    struct wrec w = WREC_INIT;
    assert_int_equal(mm_watch(fx->n, "no/such/label", NULL, watch_cb, &w), 0);
    assert_true(wrec_wait(&w, 5000));
    assert_int_equal(w.reason, MM_REASON_NOT_FOUND);
}

struct lrec {
    pthread_mutex_t lock;
    char log[4096];
    int synced, resyncs;
};

static void
listing_cb(void *data, const mm_listing_event *ev)
{
    struct lrec *l = data;
    pthread_mutex_lock(&l->lock);
    char item[128];
    switch (ev->kind) {
    case MM_LISTING_ADDED:
        snprintf(item, sizeof(item), "+%s ", ev->label);
        break;
    case MM_LISTING_REMOVED:
        snprintf(item, sizeof(item), "-%s ", ev->label);
        break;
    case MM_LISTING_RESYNC:
        snprintf(item, sizeof(item), "RESYNC ");
        l->resyncs++;
        break;
    default:
        snprintf(item, sizeof(item), "SYNCED ");
        l->synced++;
        break;
    }
    strncat(l->log, item, sizeof(l->log) - strlen(l->log) - 1);
    pthread_mutex_unlock(&l->lock);
}

struct lwant {
    struct lrec *l;
    const char *want;
};

static int
log_is(void *arg)
{
    struct lwant *w = arg;
    pthread_mutex_lock(&w->l->lock);
    int ok = strcmp(w->l->log, w->want) == 0;
    pthread_mutex_unlock(&w->l->lock);
    return ok;
}

static void
assert_log(struct lrec *l, const char *want)
{
    struct lwant w = {l, want};
    if (!wait_until(log_is, &w, 5000)) {
        pthread_mutex_lock(&l->lock);
        fprintf(stderr, "listing log: '%s'\nwanted:      '%s'\n", l->log, want);
        pthread_mutex_unlock(&l->lock);
        fail();
    }
}

static void
test_runtime_listing_backfill_then_live(void **state)
{
    struct fx *fx = *state;
    mm_endpoint c = spawn(fx->n, "tcounter", "w/c", MM_TEMPORARY);
    spawn(fx->n, "tcounter", "w/a", MM_TEMPORARY);
    spawn(fx->n, "tcounter", "w/b", MM_TEMPORARY);
    spawn(fx->n, "tcounter", "other/x", MM_TEMPORARY);
    static struct lrec l; /* static: outlives a failed assertion */
    l = (struct lrec){PTHREAD_MUTEX_INITIALIZER, "", 0, 0};
    mm_listing_opts o;
    mm_listing_opts_init(&o);
    o.prefix = "w/";
    mm_listing *li;
    assert_int_equal(mm_listing_open(&li, fx->n, &o, listing_cb, &l), 0);
    assert_log(&l, "+w/a +w/b +w/c SYNCED ");
    spawn(fx->n, "tcounter", "w/d", MM_TEMPORARY);
    assert_log(&l, "+w/a +w/b +w/c SYNCED +w/d ");
    assert_int_equal(mm_actor_stop(fx->n, &c), 0);
    assert_log(&l, "+w/a +w/b +w/c SYNCED +w/d -w/c ");
    mm_listing_close(li);
}

static void
test_runtime_listing_slow_subscriber_resyncs(void **state)
{
    struct fx *fx = *state;
    mm_spawn_opts so;
    mm_spawn_opts_init(&so);
    so.shard = 0;
    mm_endpoint blocker;
    assert_int_equal(mm_spawn(fx->n, "tcounter", &so, &blocker), 0);
    spawn(fx->n, "tcounter", "s/0", MM_TEMPORARY);
    static struct lrec l; /* static: outlives a failed assertion */
    l = (struct lrec){PTHREAD_MUTEX_INITIALIZER, "", 0, 0};
    mm_listing_opts o;
    mm_listing_opts_init(&o);
    o.prefix = "s/";
    o.queue_limit = 2;
    o.shard = 0;
    mm_listing *li;
    assert_int_equal(mm_listing_open(&li, fx->n, &o, listing_cb, &l), 0);
    assert_log(&l, "+s/0 SYNCED ");
    /* Hold shard 0 so the subscriber falls behind; wait until it is held,
     * or the first spawn below may be delivered before the block. */
    assert_int_equal(mm_tell(fx->n, &blocker, mm_msg_new("block")), 0);
    assert_int_equal(sem_wait_s(&blocked_sem, 5), 0);
    const char *labels[] = {"s/5", "s/1", "s/4", "s/2", "s/3"};
    mm_endpoint eps[5];
    for (int i = 0; i < 5; i++) {
        mm_spawn_opts lo;
        mm_spawn_opts_init(&lo);
        lo.label = labels[i];
        lo.shard = TEST_SHARDS - 1;
        assert_int_equal(mm_spawn(fx->n, "tcounter", &lo, &eps[i]), 0);
    }
    sem_post(&block_sem);
    assert_log(&l, "+s/0 SYNCED RESYNC +s/0 +s/1 +s/2 +s/3 +s/4 +s/5 SYNCED ");
    mm_listing_close(li);
}

static void
test_runtime_ready_handle_drop_deregisters(void **state)
{
    struct fx *fx = *state;
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = "ready/dropped";
    mm_ready *r;
    assert_int_equal(mm_spawn_ready(&r, fx->n, "tcounter", &o), 0);
    mm_endpoint ep = *mm_ready_endpoint(r);
    assert_int_equal(mm_lookup(fx->n, "ready/dropped", NULL), 0);
    struct wrec w = WREC_INIT;
    assert_int_equal(mm_watch(fx->n, NULL, &ep, watch_cb, &w), 0);
    mm_ready_drop(r);
    assert_true(wrec_wait(&w, 5000));
    assert_int_equal(w.reason, MM_REASON_DROPPED);
    assert_int_equal(mm_lookup(fx->n, "ready/dropped", NULL), MM_ENOTFOUND);
}

struct lwres {
    pthread_mutex_t lock;
    int status;
    int done;
    mm_endpoint ep;
};

static void
lookup_cb(void *data, int status, const mm_endpoint *ep)
{
    struct lwres *r = data;
    pthread_mutex_lock(&r->lock);
    r->status = status;
    if (ep) r->ep = *ep;
    r->done = 1;
    pthread_mutex_unlock(&r->lock);
}

static int
lw_done(void *arg)
{
    struct lwres *r = arg;
    pthread_mutex_lock(&r->lock);
    int d = r->done;
    pthread_mutex_unlock(&r->lock);
    return d;
}

static void
test_runtime_lookup_wait(void **state)
{
    struct fx *fx = *state;
    struct lwres r = {PTHREAD_MUTEX_INITIALIZER, 1, 0, {{0}, 0, 0}};
    assert_int_equal(mm_lookup_wait(fx->n, "later/one", 5000, lookup_cb, &r),
                     0);
    assert_false(lw_done(&r));
    mm_endpoint ep = spawn(fx->n, "tcounter", "later/one", MM_TEMPORARY);
    assert_true(wait_until(lw_done, &r, 5000));
    assert_int_equal(r.status, 0);
    assert_true(mm_endpoint_equal(&r.ep, &ep));
    struct lwres t = {PTHREAD_MUTEX_INITIALIZER, 1, 0, {{0}, 0, 0}};
    assert_int_equal(mm_lookup_wait(fx->n, "never/there", 20, lookup_cb, &t),
                     0);
    assert_true(wait_until(lw_done, &t, 5000));
    assert_int_equal(t.status, MM_ETIMEOUT);
}

static void
test_runtime_label_conflict_and_keys(void **state)
{
    struct fx *fx = *state;
    spawn(fx->n, "tcounter", "dup/label", MM_TEMPORARY);
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = "dup/label";
    assert_int_equal(mm_spawn(fx->n, "tcounter", &o, NULL), MM_EEXISTS);
    assert_int_equal(mm_check_in(fx->n, "no/such", "k"), MM_ENOTFOUND);
    static struct lrec l; /* static: outlives a failed assertion */
    l = (struct lrec){PTHREAD_MUTEX_INITIALIZER, "", 0, 0};
    mm_listing_opts lo;
    mm_listing_opts_init(&lo);
    lo.key = "pool";
    mm_listing *li;
    assert_int_equal(mm_listing_open(&li, fx->n, &lo, listing_cb, &l), 0);
    assert_log(&l, "SYNCED ");
    assert_int_equal(mm_check_in(fx->n, "dup/label", "pool"), 0);
    assert_int_equal(mm_check_in(fx->n, "dup/label", "pool"), 0); /* no dup */
    assert_log(&l, "SYNCED +dup/label ");
    mm_listing_close(li);
}

struct evlog {
    pthread_mutex_t lock;
    char log[2048];
};

static void
event_cb(void *data, const mm_event *ev)
{
    struct evlog *l = data;
    if (!ev->label || strncmp(ev->label, "ev/", 3) != 0) return;
    char item[128];
    const char *k = ev->kind == MM_EV_REGISTERED     ? "reg"
                    : ev->kind == MM_EV_DEREGISTERED ? "dereg"
                    : ev->kind == MM_EV_RESTARTED    ? "restarted"
                                                     : "stopped";
    snprintf(item, sizeof(item), "%s:%s:%s ", k, ev->label,
             mm_reason_name(ev->reason));
    pthread_mutex_lock(&l->lock);
    strncat(l->log, item, sizeof(l->log) - strlen(l->log) - 1);
    pthread_mutex_unlock(&l->lock);
}

struct evwant {
    struct evlog *l;
    const char *want;
};

static int
evlog_is(void *arg)
{
    struct evwant *w = arg;
    pthread_mutex_lock(&w->l->lock);
    int ok = strcmp(w->l->log, w->want) == 0;
    pthread_mutex_unlock(&w->l->lock);
    return ok;
}

static void
test_runtime_events_once_each(void **state)
{
    struct fx *fx = *state;
    struct evlog l = {PTHREAD_MUTEX_INITIALIZER, ""};
    mm_node_set_event_cb(fx->n, event_cb, &l);
    mm_endpoint ep = spawn(fx->n, "tsup", "ev/a", MM_TRANSIENT);
    assert_int_equal(mm_tell(fx->n, &ep, mm_msg_new("crash")), 0);
    assert_int_equal(call_long(fx->n, &ep, "get"), 0); /* restarted */
    assert_int_equal(mm_actor_stop(fx->n, &ep), 0);
    struct evwant w = {&l, "reg:ev/a:normal restarted:ev/a:crash "
                           "dereg:ev/a:stopped stopped:ev/a:stopped "};
    if (!wait_until(evlog_is, &w, 5000)) {
        fprintf(stderr, "events: '%s'\n", l.log);
        fail();
    }
    mm_node_set_event_cb(fx->n, NULL, NULL);
}

static void
posted_fn(void *data)
{
    (*(int *)data)++;
}

/* A node freed without running empties its inboxes as a stopping node
 * does: a function posted to it runs once (and can free what it owns). */
static void
test_runtime_unrun_node_runs_posted_fn(void **state)
{
    (void)state;
    mm_node_config cfg;
    mm_node_config_init(&cfg);
    cfg.name = "unrun";
    cfg.shards = TEST_SHARDS;
    mm_node *n;
    assert_int_equal(mm_node_new(&n, &cfg), 0);
    int ran = 0;
    assert_int_equal(mm_node_post(n, TEST_SHARDS - 1, posted_fn, &ran), 0);
    assert_int_equal(ran, 0);
    mm_node_free(n);
    assert_int_equal(ran, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_runtime_50_senders_total_1000,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_per_sender_fifo, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_runtime_unknown_and_missing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_runtime_lookup_typed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_runtime_overloaded_loses_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_when_writable, setup,
                                        teardown),
        cmocka_unit_test(test_runtime_mailbox_bytes_bound),
        cmocka_unit_test(test_runtime_shutdown_answers_queue_closed),
        cmocka_unit_test_setup_teardown(
            test_runtime_deadline_timeout_and_late_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_deadline_clamped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_runtime_blocking_call_on_shard_is_edeadlk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_temporary_not_restarted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_runtime_transient_restarts_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_runtime_permanent_restarts_after_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_restart_limit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_runtime_watch_missing_fires_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_listing_backfill_then_live,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_runtime_listing_slow_subscriber_resyncs, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_runtime_ready_handle_drop_deregisters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_lookup_wait, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_runtime_label_conflict_and_keys,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_events_once_each, setup,
                                        teardown),
        cmocka_unit_test(test_runtime_unrun_node_runs_posted_fn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
