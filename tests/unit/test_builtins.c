/*
 * test_builtins.c — the built-in actor types echo, counter, kv and greeter,
 * driven through a real node (blocking calls from the test thread).  Every
 * test runs twice: with one shard and with two.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <time.h>
#include <pthread.h>
#include <cmocka.h>

#include "common.h"
#include "helpers/nodefix.h"

struct fx {
    mm_node *n;
};

static int
fx_setup(void **state, int shards)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    if (fx == NULL) return -1;
    fx->n = nodefix_up(&(struct nodefix_opts){
        .name = "test-builtins", .shards = shards, .builtins = 1});
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
    free(fx);
    return 0;
}

static mm_endpoint
spawn(struct fx *fx, const char *type, const char *arg)
{
    mm_spawn_opts o;
    mm_endpoint ep;

    mm_spawn_opts_init(&o);
    o.arg_json = arg;
    assert_int_equal(mm_spawn(fx->n, type, &o, &ep), 0);
    return ep;
}

/*
 * A blocking call built on mm_send(): the callback copies the reply (it is
 * borrowed), the test thread waits for it (bounded).
 */
struct reply {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, status, content;
    size_t len;
    char text[256];
};

static void
reply_cb(void *data, int status, mm_msg *m)
{
    struct reply *r = data;
    const void *d = NULL;
    size_t len = 0;

    pthread_mutex_lock(&r->lock);
    r->status = status;
    if (m != NULL) {
        r->content = mm_msg_content(m);
        d = mm_msg_data(m, &len);
    }
    r->len = len < sizeof(r->text) ? len : sizeof(r->text) - 1;
    if (d != NULL) memcpy(r->text, d, r->len);
    r->text[r->len] = '\0';
    r->done = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* Sends |m| as a call and waits; the reply's payload lands in |r|. */
static int
call_msg(struct fx *fx, const mm_endpoint *ep, mm_msg *m, struct reply *r)
{
    struct timespec ts;
    int rc;

    assert_non_null(m);
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    rc = mm_send(fx->n, ep, m, reply_cb, r);
    if (rc != 0) {
        mm_msg_free(m);
    } else {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 10;
        pthread_mutex_lock(&r->lock);
        while (!r->done && rc == 0)
            rc = pthread_cond_timedwait(&r->cond, &r->lock, &ts);
        pthread_mutex_unlock(&r->lock);
        assert_true(r->done);
        rc = r->status;
    }
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    return rc;
}

/*
 * Calls |type| with |json| (NULL = no payload) and returns the status; the
 * reply's text (or "" when it has none) goes to |out| (size 256).
 */
static int
call(struct fx *fx, const mm_endpoint *ep, const char *type, const char *json,
     char *out)
{
    mm_msg *m =
        json ? mm_msg_new_json(type, json, strlen(json)) : mm_msg_new(type);
    struct reply r;
    int rc = call_msg(fx, ep, m, &r);

    memcpy(out, r.text, r.len + 1);
    return rc;
}

/* Expects status 0 and exactly |want| as the reply text. */
static void
expect_ok(struct fx *fx, const mm_endpoint *ep, const char *type,
          const char *json, const char *want)
{
    char out[256];

    assert_int_equal(call(fx, ep, type, json, out), 0);
    assert_string_equal(out, want);
}

static void
expect_err(struct fx *fx, const mm_endpoint *ep, const char *type,
           const char *json, int err)
{
    char out[256];

    assert_int_equal(call(fx, ep, type, json, out), err);
}

/* ---- echo ---------------------------------------------------------------- */

static void
test_builtins_echo_returns_input(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "echo", NULL);
    struct reply r;

    expect_ok(fx, &ep, "echo", "{\"a\": [1, 2, \"x\"]}",
              "{\"a\": [1, 2, \"x\"]}");
    expect_ok(fx, &ep, "echo", "\"hi\"", "\"hi\"");
    expect_ok(fx, &ep, "echo", "null", "null");

    /* No payload in, no payload out. */
    assert_int_equal(call_msg(fx, &ep, mm_msg_new("echo"), &r), 0);
    assert_int_equal(r.content, MM_CONTENT_NONE);

    /* Raw bytes come back as the same raw bytes. */
    assert_int_equal(
        call_msg(fx, &ep, mm_msg_new_raw("echo", "\x00\x01\xff", 3), &r), 0);
    assert_int_equal(r.content, MM_CONTENT_RAW);
    assert_int_equal(r.len, 3);
    assert_memory_equal(r.text, "\x00\x01\xff", 3);
}

static void
test_builtins_echo_rejects_pointer_payload(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "echo", NULL);
    static int x;
    struct reply r;

    assert_int_equal(call_msg(fx, &ep, mm_msg_new_ptr("echo", &x, NULL), &r),
                     MM_EDECODE);
    /* The error text says what is wrong. */
    assert_non_null(strstr(r.text, "JSON"));
}

static void
test_builtins_unknown_message_rejected(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "echo", NULL);

    expect_err(fx, &ep, "nosuch", "1", MM_EUNKNOWN_MESSAGE);
}

/* ---- counter ------------------------------------------------------------- */

static void
test_builtins_counter_increment_get_reset(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "counter", NULL);

    expect_ok(fx, &ep, "get", NULL, "0");
    expect_ok(fx, &ep, "increment", NULL, "1");
    expect_ok(fx, &ep, "increment", "null", "2");
    expect_ok(fx, &ep, "increment", "5", "7");
    expect_ok(fx, &ep, "increment", "-10", "-3");
    expect_ok(fx, &ep, "increment", "1e1", "7");
    expect_ok(fx, &ep, "get", NULL, "7");
    expect_ok(fx, &ep, "reset", NULL, "0");
    expect_ok(fx, &ep, "get", NULL, "0");
}

static void
test_builtins_counter_rejects_bad_input(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "counter", NULL);

    expect_err(fx, &ep, "increment", "\"x\"", MM_EDECODE);
    expect_err(fx, &ep, "increment", "1.5", MM_EDECODE);
    expect_err(fx, &ep, "increment", "{", MM_EDECODE);
    expect_err(fx, &ep, "increment", "[1]", MM_EDECODE);
    expect_err(fx, &ep, "increment", "1 2", MM_EDECODE);
    expect_err(fx, &ep, "increment", "1e300", MM_EDECODE);
    /* Leaving the exact integer range is refused, the count unchanged. */
    expect_ok(fx, &ep, "increment", "9007199254740991", "9007199254740991");
    expect_err(fx, &ep, "increment", "1", MM_EINVAL);
    /* The actor survived every bad input. */
    expect_ok(fx, &ep, "get", NULL, "9007199254740991");
}

static void
test_builtins_counter_initial_state(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "counter", "{\"count\":41}");
    mm_endpoint bad = spawn(fx, "counter", "{\"count\":\"x\"}");
    char out[256];

    expect_ok(fx, &ep, "increment", NULL, "42");
    /* A bad init argument fails the start: the actor is not there. */
    assert_int_not_equal(call(fx, &bad, "get", NULL, out), 0);
}

static void
test_builtins_counter_tell_is_not_a_crash(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "counter", NULL);

    /* A tell cannot be replied to; the handler must not fail because of it. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(
            mm_tell(fx->n, &ep, mm_msg_new_json("increment", "2", 1)), 0);
    expect_ok(fx, &ep, "get", NULL, "20");
}

/* ---- kv ------------------------------------------------------------------ */

static void
test_builtins_kv_put_get_delete_keys(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "kv", NULL);

    expect_ok(fx, &ep, "keys", NULL, "[]");
    expect_ok(fx, &ep, "put", "{\"key\":\"c\",\"value\":1}", "null");
    expect_ok(fx, &ep, "put", "{\"key\":\"a\",\"value\":\"x\"}", "null");
    expect_ok(fx, &ep, "put", "{\"key\":\"b\",\"value\":null}", "null");
    /* put returns the previous value. */
    expect_ok(fx, &ep, "put", "{\"key\":\"c\",\"value\":{\"x\": [1, 2]}}", "1");
    expect_ok(fx, &ep, "get", "\"c\"", "{\"x\":[1,2]}");
    expect_ok(fx, &ep, "get", "\"b\"", "null");
    expect_ok(fx, &ep, "keys", NULL, "[\"a\",\"b\",\"c\"]");
    expect_ok(fx, &ep, "delete", "\"a\"", "\"x\"");
    expect_err(fx, &ep, "get", "\"a\"", MM_ENOTFOUND);
    expect_err(fx, &ep, "delete", "\"a\"", MM_ENOTFOUND);
    expect_ok(fx, &ep, "keys", NULL, "[\"b\",\"c\"]");
}

static void
test_builtins_kv_many_keys(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "kv", NULL);
    char json[128], want[32];

    for (int i = 0; i < 200; i++) {
        snprintf(json, sizeof(json), "{\"key\":\"k%03d\",\"value\":%d}", i, i);
        expect_ok(fx, &ep, "put", json, "null");
    }
    for (int i = 0; i < 200; i += 37) {
        snprintf(json, sizeof(json), "\"k%03d\"", i);
        snprintf(want, sizeof(want), "%d", i);
        expect_ok(fx, &ep, "get", json, want);
    }
    for (int i = 0; i < 198; i++) {
        snprintf(json, sizeof(json), "\"k%03d\"", i);
        snprintf(want, sizeof(want), "%d", i);
        expect_ok(fx, &ep, "delete", json, want);
    }
    expect_ok(fx, &ep, "keys", NULL, "[\"k198\",\"k199\"]");
}

static void
test_builtins_kv_not_found_message(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "kv", NULL);
    char out[256];

    assert_int_equal(call(fx, &ep, "get", "\"nope\"", out), MM_ENOTFOUND);
    /* The error reply carries a message naming the key. */
    assert_non_null(strstr(out, "no key"));
    assert_non_null(strstr(out, "nope"));
    assert_int_equal(call(fx, &ep, "increment", NULL, out),
                     MM_EUNKNOWN_MESSAGE);
    assert_int_equal(call(fx, &ep, "get", "5", out), MM_EDECODE);
    assert_non_null(strstr(out, "get takes a key"));
}

static void
test_builtins_kv_rejects_bad_input(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "kv", NULL);

    expect_err(fx, &ep, "put", NULL, MM_EDECODE);
    expect_err(fx, &ep, "put", "\"k\"", MM_EDECODE);
    expect_err(fx, &ep, "put", "{\"key\":1,\"value\":1}", MM_EDECODE);
    expect_err(fx, &ep, "put", "{\"key\":\"k\"}", MM_EDECODE);
    expect_err(fx, &ep, "put", "{\"key\":\"k\",", MM_EDECODE);
    expect_err(fx, &ep, "get", NULL, MM_EDECODE);
    expect_err(fx, &ep, "get", "k", MM_EDECODE);
    expect_err(fx, &ep, "get", "5", MM_EDECODE);
    expect_err(fx, &ep, "delete", "[\"k\"]", MM_EDECODE);
    expect_ok(fx, &ep, "keys", NULL, "[]");
}

static void
test_builtins_kv_initial_state(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "kv", "{\"x\":1,\"y\":[true]}");
    mm_endpoint bad = spawn(fx, "kv", "[1]");
    char out[256];

    expect_ok(fx, &ep, "keys", NULL, "[\"x\",\"y\"]");
    expect_ok(fx, &ep, "get", "\"y\"", "[true]");
    assert_int_not_equal(call(fx, &bad, "keys", NULL, out), 0);
}

/* ---- greeter ------------------------------------------------------------- */

static void
test_builtins_greeter_greets(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "greeter", NULL);

    expect_ok(fx, &ep, "greet", "\"world\"", "\"Hello, world!\"");
    expect_ok(fx, &ep, "greet", NULL, "\"Hello, world!\"");
    /* The reply is valid JSON even when the name needs escaping. */
    expect_ok(fx, &ep, "greet", "\"a\\\"b\"", "\"Hello, a\\\"b!\"");
}

static void
test_builtins_greeter_initial_state(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "greeter", "{\"greeting\":\"Hi\"}");
    mm_endpoint bad = spawn(fx, "greeter", "{\"greeting\":5}");
    char out[256];

    expect_ok(fx, &ep, "greet", "\"bob\"", "\"Hi, bob!\"");
    assert_int_not_equal(call(fx, &bad, "greet", NULL, out), 0);
}

static void
test_builtins_greeter_rejects_bad_input(void **state)
{
    struct fx *fx = *state;
    mm_endpoint ep = spawn(fx, "greeter", NULL);

    expect_err(fx, &ep, "greet", "5", MM_EDECODE);
    expect_err(fx, &ep, "greet", "{\"name\":\"x\"}", MM_EDECODE);
    expect_err(fx, &ep, "greet", "\"unterminated", MM_EDECODE);
    expect_ok(fx, &ep, "greet", "\"again\"", "\"Hello, again!\"");
}

static void
test_builtins_register_twice_is_exists(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(mm_node_register_builtins(fx->n), MM_EEXISTS);
}

/* Every test twice: one shard, then two (" [2 shards]" in the name). */
/* clang-format off */
#define T(fn, setup, sfx) {#fn sfx, fn, setup, fx_teardown, NULL}
/* clang-format on */
#define ALL_TESTS(setup, sfx)                                                  \
    T(test_builtins_echo_returns_input, setup, sfx),                           \
        T(test_builtins_echo_rejects_pointer_payload, setup, sfx),             \
        T(test_builtins_unknown_message_rejected, setup, sfx),                 \
        T(test_builtins_counter_increment_get_reset, setup, sfx),              \
        T(test_builtins_counter_rejects_bad_input, setup, sfx),                \
        T(test_builtins_counter_initial_state, setup, sfx),                    \
        T(test_builtins_counter_tell_is_not_a_crash, setup, sfx),              \
        T(test_builtins_kv_put_get_delete_keys, setup, sfx),                   \
        T(test_builtins_kv_many_keys, setup, sfx),                             \
        T(test_builtins_kv_not_found_message, setup, sfx),                     \
        T(test_builtins_kv_rejects_bad_input, setup, sfx),                     \
        T(test_builtins_kv_initial_state, setup, sfx),                         \
        T(test_builtins_greeter_greets, setup, sfx),                           \
        T(test_builtins_greeter_initial_state, setup, sfx),                    \
        T(test_builtins_greeter_rejects_bad_input, setup, sfx),                \
        T(test_builtins_register_twice_is_exists, setup, sfx)

int
main(void)
{
    const struct CMUnitTest tests[] = {ALL_TESTS(fx_setup1, ""),
                                       ALL_TESTS(fx_setup2, " [2 shards]")};

    return cmocka_run_group_tests_name("builtins", tests, NULL, NULL);
}
