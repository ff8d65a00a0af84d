/*
 * test_timers.c — an actor's timers (mm_send_after, mm_send_every,
 * mm_timer_cancel) on a real node of two shards: a one-shot fires once,
 * at or after its time; a periodic one keeps firing until cancelled; both
 * die with their actor (stop, and restart under supervision); the bound
 * MM_ACTOR_TIMERS_MAX is answered MM_EOVERLOADED; a timer reaches another
 * actor (on the other shard); bad arguments are refused at once.
 *
 * "clock" actors set timers when the test calls them; "probe" actors log
 * what reaches them.  Each actor logs to a struct rec (its arg_ptr) that
 * the test waits on (a semaphore per event, bounded).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "murmer.h"
#include "runtime.h" /* mm__ctx_actor: an actor's timers and mailbox */
#include "helpers/nodefix.h"
#include "helpers/testutil.h"

#define REC_MAX 4096
#define WAIT_S 10 /* for any one event */

struct event {
    char kind; /* 't' tick, 'm' mark */
    int inc;   /* the incarnation that set the timer (ticks from starts) */
    uint64_t ns;
};

/* What reached one actor, in order; shared with the test. */
struct rec {
    pthread_mutex_t lock;
    sem_t ev; /* one post per event */
    struct event evs[REC_MAX];
    int n;
    int starts;        /* the clock's start hooks */
    mm_endpoint probe; /* where "to":"probe" timers go */
};

static void
rec_init(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    sem_init(&r->ev, 0, 0);
}

static void
rec_destroy(struct rec *r)
{
    pthread_mutex_destroy(&r->lock);
    sem_destroy(&r->ev);
}

static void
rec_log(struct rec *r, char kind, int inc)
{
    pthread_mutex_lock(&r->lock);
    if (r->n < REC_MAX)
        r->evs[r->n++] = (struct event){kind, inc, mm__now_ns()};
    pthread_mutex_unlock(&r->lock);
    sem_post(&r->ev);
}

/* Events of |kind| (and incarnation |inc|, unless -1) so far. */
static int
rec_count(struct rec *r, char kind, int inc)
{
    int c = 0;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->n; i++)
        if (r->evs[i].kind == kind && (inc < 0 || r->evs[i].inc == inc)) c++;
    pthread_mutex_unlock(&r->lock);
    return c;
}

/* Waits (each event bounded by WAIT_S) until |r| logged |want| events of
 * |kind| (and |inc|, unless -1). */
static void
rec_wait(struct rec *r, char kind, int inc, int want)
{
    while (rec_count(r, kind, inc) < want)
        assert_int_equal(sem_wait_s(&r->ev, WAIT_S), 0);
}

/* ---- the actors ---------------------------------------------------------
 */

struct clock_state {
    long ticks;
    mm_timer_id first; /* fill: the first timer it set */
};

static int
json_int(const cJSON *o, const char *k, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : dflt;
}

/* "set" {"ms":N, "every":0|1, "type":"tick", "to":"probe"|absent}: sets a
 * timer; replies {"rc":rc, "id":id, "t0":ns before the call}. */
static int
clock_set(mm_ctx *ctx, void *st, mm_msg *m)
{
    struct rec *r = mm_ctx_arg_ptr(ctx);
    const cJSON *j = mm_msg_json(m, NULL);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(j, "to");
    mm_msg *t = mm_msg_new_json(
        cJSON_IsString(type) ? type->valuestring : "tick", "0", 1);
    mm_timer_id id = 0;
    uint64_t t0 = mm__now_ns();
    const mm_endpoint *dst = cJSON_IsString(to) ? &r->probe : NULL;
    uint32_t ms = (uint32_t)json_int(j, "ms", 0);
    int rc = json_int(j, "every", 0) ? mm_send_every(ctx, dst, ms, t, &id)
                                     : mm_send_after(ctx, dst, ms, t, &id);
    if (rc) mm_msg_free(t); /* still ours on an error */
    (void)st;
    return mm_reply_jsonf(ctx, "{\"rc\":%d,\"id\":%llu,\"t0\":%llu}", rc,
                          (unsigned long long)id, (unsigned long long)t0);
}

/* Ticks queued in this actor's mailbox now. */
static int
queued_ticks(mm_ctx *ctx)
{
    int c = 0;
    for (mm_msg *q = mm__ctx_actor(ctx)->mb_head; q; q = q->next)
        if (strcmp(mm_msg_type(q), "tick") == 0) c++;
    return c;
}

/* "cancel" {"id":N}: replies {"rc":rc, "ticks":handled so far, "queued":
 * ticks already in the mailbox, which are still delivered}. */
static int
clock_cancel(mm_ctx *ctx, void *st, mm_msg *m)
{
    struct clock_state *s = st;
    const cJSON *id =
        cJSON_GetObjectItemCaseSensitive(mm_msg_json(m, NULL), "id");
    int rc = mm_timer_cancel(ctx, (mm_timer_id)cJSON_GetNumberValue(id));
    return mm_reply_jsonf(ctx, "{\"rc\":%d,\"ticks\":%ld,\"queued\":%d}", rc,
                          s->ticks, queued_ticks(ctx));
}

static int
clock_tick(mm_ctx *ctx, void *st, mm_msg *m)
{
    struct clock_state *s = st;
    (void)m;
    s->ticks++;
    rec_log(mm_ctx_arg_ptr(ctx), 't', 0);
    return 0;
}

static int
clock_mark(mm_ctx *ctx, void *st, mm_msg *m)
{
    struct clock_state *s = st;
    (void)m;
    rec_log(mm_ctx_arg_ptr(ctx), 'm', (int)s->ticks);
    return 0;
}

/* "fill": sets one-shots (a minute away) until refused; replies [set, rc
 * of the refusal, rc of one more after a cancel, rc of the next]. */
static int
clock_fill(mm_ctx *ctx, void *st, mm_msg *m)
{
    struct clock_state *s = st;
    int set = 0, rc = 0;
    (void)m;
    for (int i = 0; i < (int)MM_ACTOR_TIMERS_MAX + 10; i++) {
        mm_msg *t = mm_msg_new("tick");
        mm_timer_id id;
        rc = mm_send_after(ctx, NULL, 60000, t, &id);
        if (rc) {
            mm_msg_free(t);
            break;
        }
        if (!set) s->first = id;
        set++;
    }
    int cancel = mm_timer_cancel(ctx, s->first);
    mm_msg *t = mm_msg_new("tick");
    int again = mm_send_after(ctx, NULL, 60000, t, NULL);
    if (again) mm_msg_free(t);
    t = mm_msg_new("tick");
    int past = mm_send_after(ctx, NULL, 60000, t, NULL);
    if (past) mm_msg_free(t);
    return mm_reply_jsonf(ctx, "[%d,%d,%d,%d,%d,%u]", set, rc, cancel, again,
                          past, mm__ctx_actor(ctx)->ntimers);
}

/* "errors": what bad arguments get, in a JSON array. */
static int
clock_errors(mm_ctx *ctx, void *st, mm_msg *m)
{
    int rc[7];
    mm_msg *t;
    mm_endpoint gone = *mm_ctx_self(ctx), far = *mm_ctx_self(ctx);
    int v = 0;
    (void)st;
    (void)m;
    gone.actor ^= (uint64_t)1 << 40; /* same slot, another serial */
    far.node[0] ^= 0xff;             /* another node */
    t = mm_msg_new("tick");
    if ((rc[0] = mm_send_every(ctx, NULL, 0, t, NULL))) mm_msg_free(t);
    t = mm_msg_new("no-such-message");
    if ((rc[1] = mm_send_after(ctx, NULL, 10, t, NULL))) mm_msg_free(t);
    t = mm_msg_new("tick");
    if ((rc[2] = mm_send_after(ctx, &gone, 10, t, NULL))) mm_msg_free(t);
    t = mm_msg_new_ptr("tick", &v, NULL);
    if ((rc[3] = mm_send_every(ctx, NULL, 10, t, NULL))) mm_msg_free(t);
    t = mm_msg_new_ptr("tick", &v, NULL);
    if ((rc[4] = mm_send_after(ctx, &far, 10, t, NULL))) mm_msg_free(t);
    rc[5] = mm_timer_cancel(ctx, 12345);
    rc[6] = (int)mm__ctx_actor(ctx)->ntimers;
    return mm_reply_jsonf(ctx, "[%d,%d,%d,%d,%d,%d,%d]", rc[0], rc[1], rc[2],
                          rc[3], rc[4], rc[5], rc[6]);
}

static int
clock_ntimers(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)st;
    (void)m;
    return mm_reply_jsonf(ctx, "%u", mm__ctx_actor(ctx)->ntimers);
}

static int
clock_crash(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)st;
    (void)m;
    return mm_fail(ctx, "asked to crash");
}

/* With the spawn argument "every_probe", each start (restarts included)
 * sends {"inc": its start number} to the probe every 5 ms. */
static int
clock_start(mm_ctx *ctx, void *st)
{
    struct rec *r = mm_ctx_arg_ptr(ctx);
    const char *arg = mm_ctx_arg_json(ctx);
    (void)st;
    if (!arg || strcmp(arg, "\"every_probe\"") != 0) return 0;
    char body[32];
    int inc = ++r->starts;
    int len = snprintf(body, sizeof(body), "{\"inc\":%d}", inc);
    mm_msg *t = mm_msg_new_json("tick", body, (size_t)len);
    int rc = mm_send_every(ctx, &r->probe, 5, t, NULL);
    if (rc) mm_msg_free(t);
    return rc;
}

MM_ACTOR_TYPE(tclock, struct clock_state, clock_start, NULL,
              MM_HANDLER("set", clock_set), MM_HANDLER("cancel", clock_cancel),
              MM_HANDLER("tick", clock_tick), MM_HANDLER("mark", clock_mark),
              MM_HANDLER("fill", clock_fill),
              MM_HANDLER("errors", clock_errors),
              MM_HANDLER("ntimers", clock_ntimers),
              MM_HANDLER("crash", clock_crash));

static int
probe_tick(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)st;
    rec_log(mm_ctx_arg_ptr(ctx), 't', json_int(mm_msg_json(m, NULL), "inc", 0));
    return 0;
}

static int
probe_mark(mm_ctx *ctx, void *st, mm_msg *m)
{
    (void)st;
    (void)m;
    rec_log(mm_ctx_arg_ptr(ctx), 'm', 0);
    return 0;
}

MM_ACTOR_TYPE(tprobe, int, NULL, NULL, MM_HANDLER("tick", probe_tick),
              MM_HANDLER("mark", probe_mark));

/* ---- fixture -------------------------------------------------------------
 */

struct fx {
    mm_node *n;
    struct rec clock, probe;
};

static int
setup(void **state)
{
    static struct fx fx;
    rec_init(&fx.clock);
    rec_init(&fx.probe);
    fx.n = nodefix_new(&(struct nodefix_opts){.name = "timers", .shards = 2});
    assert_int_equal(mm_node_register_type(fx.n, &tclock_type), 0);
    assert_int_equal(mm_node_register_type(fx.n, &tprobe_type), 0);
    nodefix_start(fx.n);
    *state = &fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    nodefix_down(fx->n);
    rec_destroy(&fx->clock);
    rec_destroy(&fx->probe);
    return 0;
}

static mm_endpoint
spawn_on(mm_node *n, const char *type, int shard, struct rec *r,
         const char *arg_json, int policy)
{
    mm_spawn_opts o;
    mm_endpoint ep;
    mm_spawn_opts_init(&o);
    o.shard = shard;
    o.arg_ptr = r;
    o.arg_json = arg_json;
    o.policy = policy;
    o.backoff_initial_ms = 1;
    o.backoff_max_ms = 1;
    assert_int_equal(mm_spawn(n, type, &o, &ep), 0);
    return ep;
}

/* Calls |type| with |json| and returns the parsed reply (cJSON_Delete). */
static cJSON *
callj(mm_node *n, const mm_endpoint *ep, const char *type, const char *json)
{
    mm_msg *reply = NULL;
    mm_msg *m =
        json ? mm_msg_new_json(type, json, strlen(json)) : mm_msg_new(type);
    assert_int_equal(mm_call(n, ep, m, &reply), 0);
    size_t len = 0;
    const char *data = mm_msg_data(reply, &len);
    cJSON *j = cJSON_ParseWithLength(data, len);
    assert_non_null(j);
    mm_msg_free(reply);
    return j;
}

static long long
jget(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    assert_true(cJSON_IsNumber(v));
    return (long long)v->valuedouble;
}

/* callj() of |type| with |json| whose reply's "rc" is |rc|. */
static void
call_rc(mm_node *n, const mm_endpoint *ep, const char *type, const char *json,
        long long rc)
{
    cJSON *j = callj(n, ep, type, json);
    assert_int_equal(jget(j, "rc"), rc);
    cJSON_Delete(j);
}

static long long
jat(const cJSON *j, int i)
{
    const cJSON *v = cJSON_GetArrayItem(j, i);
    assert_true(cJSON_IsNumber(v));
    return (long long)v->valuedouble;
}

/* Waits until |ep|'s actor has stopped (its watch fired). */
struct stopped {
    sem_t sem;
    int reason;
};

static void
stopped_cb(void *data, const mm_endpoint *ep, int reason)
{
    struct stopped *s = data;
    (void)ep;
    s->reason = reason;
    sem_post(&s->sem);
}

/* ---- tests ----------------------------------------------------------------
 */

/* A one-shot to self: fires once, not before its time; then its id is
 * spent. */
static void
test_timers_after_fires_once_at_or_after(void **state)
{
    struct fx *fx = *state;
    mm_endpoint c = spawn_on(fx->n, "tclock", 0, &fx->clock, NULL, 0);
    cJSON *j = callj(fx->n, &c, "set", "{\"ms\":30}");
    assert_int_equal(jget(j, "rc"), 0);
    long long id = jget(j, "id");
    uint64_t t0 = (uint64_t)jget(j, "t0");
    assert_true(id != 0);
    cJSON_Delete(j);
    rec_wait(&fx->clock, 't', -1, 1);
    assert_true(fx->clock.evs[0].ns >= t0 + 30 * 1000000ull);
    /* A later one-shot (after 3 periods) finds it fired once only. */
    call_rc(fx->n, &c, "set", "{\"ms\":90,\"type\":\"mark\"}", 0);
    rec_wait(&fx->clock, 'm', -1, 1);
    assert_int_equal(rec_count(&fx->clock, 't', -1), 1);
    char body[64];
    snprintf(body, sizeof(body), "{\"id\":%lld}", id);
    call_rc(fx->n, &c, "cancel", body, MM_ENOTFOUND);
    j = callj(fx->n, &c, "ntimers", NULL);
    assert_int_equal(j->valueint, 0);
    cJSON_Delete(j);
}

/* A periodic timer to self ticks in rhythm until cancelled, then never
 * again (what was queued before the cancel is still delivered). */
static void
test_timers_every_repeats_until_cancel(void **state)
{
    struct fx *fx = *state;
    mm_endpoint c = spawn_on(fx->n, "tclock", 0, &fx->clock, NULL, 0);
    cJSON *j = callj(fx->n, &c, "set", "{\"ms\":10,\"every\":1}");
    assert_int_equal(jget(j, "rc"), 0);
    long long id = jget(j, "id");
    uint64_t t0 = (uint64_t)jget(j, "t0");
    cJSON_Delete(j);
    rec_wait(&fx->clock, 't', -1, 4);
    for (int k = 0; k < 4; k++)
        assert_true(fx->clock.evs[k].ns >=
                    t0 + (uint64_t)(k + 1) * 10000000ull);
    char body[64];
    snprintf(body, sizeof(body), "{\"id\":%lld}", id);
    j = callj(fx->n, &c, "cancel", body);
    assert_int_equal(jget(j, "rc"), 0);
    long long at_cancel = jget(j, "ticks") + jget(j, "queued");
    cJSON_Delete(j);
    /* Six periods later, nothing more came. */
    call_rc(fx->n, &c, "set", "{\"ms\":60,\"type\":\"mark\"}", 0);
    rec_wait(&fx->clock, 'm', -1, 1);
    assert_int_equal(rec_count(&fx->clock, 't', -1), at_cancel);
    call_rc(fx->n, &c, "cancel", body, MM_ENOTFOUND);
}

/* Timers to another actor (on the other shard) arrive; stopping their
 * owner cancels them. */
static void
test_timers_to_another_actor_die_with_owner_stop(void **state)
{
    struct fx *fx = *state;
    fx->clock.probe = spawn_on(fx->n, "tprobe", 1, &fx->probe, NULL, 0);
    mm_endpoint c = spawn_on(fx->n, "tclock", 0, &fx->clock, NULL, 0);
    call_rc(fx->n, &c, "set", "{\"ms\":5,\"every\":1,\"to\":\"probe\"}", 0);
    call_rc(fx->n, &c, "set", "{\"ms\":1,\"type\":\"mark\",\"to\":\"probe\"}",
            0);
    rec_wait(&fx->probe, 'm', -1, 1); /* the one-shot to another actor */
    rec_wait(&fx->probe, 't', -1, 3); /* the periodic one */

    struct stopped w;
    sem_init(&w.sem, 0, 0);
    assert_int_equal(mm_watch(fx->n, NULL, &c, stopped_cb, &w), 0);
    assert_int_equal(mm_actor_stop(fx->n, &c), 0);
    assert_int_equal(sem_wait_s(&w.sem, WAIT_S), 0);
    assert_int_equal(w.reason, MM_REASON_STOPPED);
    sem_destroy(&w.sem);
    /* A mark posted now follows every tick sent before the stop. */
    assert_int_equal(mm_tell(fx->n, &fx->clock.probe, mm_msg_new("mark")), 0);
    rec_wait(&fx->probe, 'm', -1, 2);
    int ticks = rec_count(&fx->probe, 't', -1);
    /* Eight periods later, from the owner's shard: no tick in between. */
    mm_endpoint c2 = spawn_on(fx->n, "tclock", 0, &fx->clock, NULL, 0);
    call_rc(fx->n, &c2, "set", "{\"ms\":40,\"type\":\"mark\",\"to\":\"probe\"}",
            0);
    rec_wait(&fx->probe, 'm', -1, 3);
    assert_int_equal(rec_count(&fx->probe, 't', -1), ticks);
}

/* A restart under supervision cancels the timers of the incarnation that
 * crashed: once the new one's ticks arrive, the old one's never do. */
static void
test_timers_die_with_restart(void **state)
{
    struct fx *fx = *state;
    fx->clock.probe = spawn_on(fx->n, "tprobe", 1, &fx->probe, NULL, 0);
    mm_endpoint c = spawn_on(fx->n, "tclock", 0, &fx->clock, "\"every_probe\"",
                             MM_TRANSIENT);
    rec_wait(&fx->probe, 't', 1, 3);
    assert_int_equal(mm_tell(fx->n, &c, mm_msg_new("crash")), 0);
    rec_wait(&fx->probe, 't', 2, 5);
    pthread_mutex_lock(&fx->probe.lock);
    int seen2 = 0, late1 = 0;
    for (int i = 0; i < fx->probe.n; i++) {
        if (fx->probe.evs[i].inc == 2) seen2 = 1;
        if (fx->probe.evs[i].inc == 1 && seen2) late1++;
    }
    pthread_mutex_unlock(&fx->probe.lock);
    assert_int_equal(late1, 0);
    /* The new incarnation holds its one timer, not two. */
    cJSON *j = callj(fx->n, &c, "ntimers", NULL);
    assert_int_equal(j->valueint, 1);
    cJSON_Delete(j);
    assert_int_equal(fx->clock.starts, 2);
    assert_int_equal(mm_actor_stop(fx->n, &c), 0);
}

/* MM_ACTOR_TIMERS_MAX timers, then MM_EOVERLOADED (the message stays the
 * caller's); a cancel makes room for exactly one. */
static void
test_timers_bound(void **state)
{
    struct fx *fx = *state;
    mm_endpoint c = spawn_on(fx->n, "tclock", 0, &fx->clock, NULL, 0);
    cJSON *j = callj(fx->n, &c, "fill", NULL);
    assert_int_equal(jat(j, 0), MM_ACTOR_TIMERS_MAX);
    assert_int_equal(jat(j, 1), MM_EOVERLOADED);
    assert_int_equal(jat(j, 2), 0);
    assert_int_equal(jat(j, 3), 0);
    assert_int_equal(jat(j, 4), MM_EOVERLOADED);
    assert_int_equal(jat(j, 5), MM_ACTOR_TIMERS_MAX);
    cJSON_Delete(j);
    /* Stopping the actor frees them all (ASan: no leak). */
    assert_int_equal(mm_actor_stop(fx->n, &c), 0);
}

/* Arguments a timer could never deliver are refused at once. */
static void
test_timers_bad_arguments(void **state)
{
    struct fx *fx = *state;
    mm_endpoint c = spawn_on(fx->n, "tclock", 0, &fx->clock, NULL, 0);
    cJSON *j = callj(fx->n, &c, "errors", NULL);
    assert_int_equal(jat(j, 0), MM_EINVAL);            /* every 0 ms */
    assert_int_equal(jat(j, 1), MM_EUNKNOWN_MESSAGE);  /* unknown type */
    assert_int_equal(jat(j, 2), MM_ENOTFOUND);         /* gone endpoint */
    assert_int_equal(jat(j, 3), MM_EINVAL);            /* every, pointer */
    assert_int_equal(jat(j, 4), MM_ENOT_SERIALIZABLE); /* pointer, remote */
    assert_int_equal(jat(j, 5), MM_ENOTFOUND);         /* unknown id */
    assert_int_equal(jat(j, 6), 0);                    /* none armed */
    cJSON_Delete(j);
}

/* A periodic timer whose target is gone cancels itself. */
static void
test_timers_every_to_gone_target_cancels(void **state)
{
    struct fx *fx = *state;
    fx->clock.probe = spawn_on(fx->n, "tprobe", 1, &fx->probe, NULL, 0);
    mm_endpoint c = spawn_on(fx->n, "tclock", 0, &fx->clock, NULL, 0);
    call_rc(fx->n, &c, "set", "{\"ms\":5,\"every\":1,\"to\":\"probe\"}", 0);
    rec_wait(&fx->probe, 't', -1, 1);
    assert_int_equal(mm_actor_stop(fx->n, &fx->clock.probe), 0);
    /* Bounded: the next tick after the stop finds it gone. */
    uint64_t until = now_ms() + WAIT_S * 1000;
    int n = 1;
    while (n != 0 && now_ms() < until) {
        cJSON *j = callj(fx->n, &c, "ntimers", NULL);
        n = j->valueint;
        cJSON_Delete(j);
        if (n) {
            struct timespec ts = {0, 2000000L};
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(n, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_timers_after_fires_once_at_or_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timers_every_repeats_until_cancel,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_timers_to_another_actor_die_with_owner_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timers_die_with_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timers_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timers_bad_arguments, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_timers_every_to_gone_target_cancels, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
