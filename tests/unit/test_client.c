/*
 * test_client.c — client sessions (lib/client.c + lib/session.c) against
 * an in-process node listening on loopback: connect and its errors,
 * members, lookup (label, prefix, key, wait), send (one label, a
 * reception key fan-out, typed errors), watch, oplog.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "murmer.h"
#include "client_int.h"
#include "defaults.h"
#include "wire.h"
#include "helpers/nodefix.h"
#include "helpers/testutil.h"

struct fx {
    char dir[256];
    char key[300];
    char state[300];
    mm_node *n;
    mm_client *c;
};

static int
client_up(struct fx *fx, const char *key, uint32_t timeout_ms, mm_client **out)
{
    const char *seed = mm_node_addr(fx->n);
    mm_client_config cfg;
    mm_client_config_init(&cfg);
    cfg.seeds = &seed;
    cfg.nseeds = 1;
    cfg.cluster_key_file = key;
    cfg.state_dir = fx->state;
    cfg.timeout_ms = timeout_ms;
    return mm_client_connect(out, &cfg);
}

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/mm-test-client-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->key, sizeof(fx->key), "%s/key", fx->dir);
    snprintf(fx->state, sizeof(fx->state), "%s/cli", fx->dir);
    assert_int_equal(mm_cluster_keygen(fx->key), 0);
    mm_log_set_level(MM_LOG_ERR);

    fx->n = nodefix_up(&(struct nodefix_opts){.name = "seed",
                                              .dir = fx->dir,
                                              .listen = "127.0.0.1:0",
                                              .key = fx->key,
                                              .builtins = 1});

    /* counter/seed, and three echo workers under key "workers". */
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = "counter/seed";
    assert_int_equal(mm_spawn(fx->n, "counter", &o, NULL), 0);
    const char *keys[] = {"workers"};
    for (int i = 0; i < 3; i++) {
        char label[32];
        snprintf(label, sizeof(label), "worker/%d", i);
        mm_spawn_opts_init(&o);
        o.label = label;
        o.keys = keys;
        o.nkeys = 1;
        assert_int_equal(mm_spawn(fx->n, "echo", &o, NULL), 0);
    }
    assert_int_equal(client_up(fx, fx->key, 5000, &fx->c), 0);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    mm_client_close(fx->c);
    nodefix_down(fx->n);
    rm_rf(fx->dir);
    free(fx);
    return 0;
}

static void
test_client_connect_names_the_seed(void **state)
{
    struct fx *fx = *state;
    assert_string_equal(mm_client_seed_name(fx->c), "seed");
    assert_string_equal(mm_client_seed_addr(fx->c), mm_node_addr(fx->n));
    assert_string_equal(mm_client_error_text(fx->c), "");
}

static void
test_client_members_lists_the_seed_not_the_client(void **state)
{
    struct fx *fx = *state;
    mm_member_info *m;
    size_t n;
    assert_int_equal(mm_client_members(fx->c, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(m[0].name, "seed");
    assert_string_equal(m[0].id, mm_node_id(fx->n));
    assert_string_equal(m[0].addr, mm_node_addr(fx->n));
    assert_string_equal(m[0].state, "alive");
    assert_int_equal(m[0].generation, mm_node_generation(fx->n));
    mm_client_free_result(fx->c, m);

    /* A second client in the same process (its own identity dir is
     * shared): still only the node. */
    mm_timing *t;
    assert_int_equal(mm_client_timings(fx->c, &t, &n), 0);
    assert_true(n > 0);
    int seen = 0;
    for (size_t i = 0; i < n; i++)
        seen |= strncmp(t[i].name, "probe_interval", 14) == 0 && t[i].value > 0;
    assert_true(seen);
    mm_client_free_result(fx->c, t);
}

static void
test_client_lookup_by_label_prefix_and_key(void **state)
{
    struct fx *fx = *state;
    mm_actor_info *a;
    size_t n;
    assert_int_equal(
        mm_client_lookup(fx->c, "counter/seed", NULL, NULL, 0, 0, &a, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(a[0].label, "counter/seed");
    assert_string_equal(a[0].type, "counter");
    assert_string_equal(a[0].node_name, "seed");
    mm_endpoint ep;
    assert_int_equal(mm_lookup(fx->n, "counter/seed", &ep), 0);
    assert_true(mm_endpoint_equal(&a[0].ep, &ep));
    mm_client_free_result(fx->c, a);

    assert_int_equal(
        mm_client_lookup(fx->c, NULL, "worker/", NULL, 0, 0, &a, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(a[0].label, "worker/0");
    assert_string_equal(a[2].label, "worker/2");
    mm_client_free_result(fx->c, a);

    assert_int_equal(
        mm_client_lookup(fx->c, NULL, NULL, "workers", 0, 0, &a, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(a[1].nkeys, 1);
    assert_string_equal(a[1].keys[0], "workers");
    mm_client_free_result(fx->c, a);

    assert_int_equal(
        mm_client_lookup(fx->c, "nosuch", NULL, NULL, 0, 0, &a, &n),
        MM_ENOTFOUND);
    assert_null(a);
    assert_string_equal(mm_client_error_text(fx->c),
                        "no actor with label 'nosuch'");
    /* A bounded wait that expires. */
    assert_int_equal(
        mm_client_lookup(fx->c, "never", NULL, NULL, 0, 100, &a, &n),
        MM_ENOTFOUND);
}

static void
test_client_send_one_label(void **state)
{
    struct fx *fx = *state;
    mm_send_result *r;
    size_t n;
    assert_int_equal(mm_client_send(fx->c, "counter/seed", NULL, "increment",
                                    "5", 1, &r, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].status, 0);
    assert_int_equal(r[0].len, 1);
    assert_memory_equal(r[0].body, "5", 1);
    mm_endpoint ep;
    assert_int_equal(mm_lookup(fx->n, "counter/seed", &ep), 0);
    assert_true(mm_endpoint_equal(&r[0].ep, &ep));
    mm_client_free_result(fx->c, r);

    assert_int_equal(
        mm_client_send(fx->c, "nosuch", NULL, "increment", "1", 1, &r, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].status, MM_ENOTFOUND);
    mm_client_free_result(fx->c, r);

    assert_int_equal(
        mm_client_send(fx->c, "counter/seed", NULL, "frob", "1", 1, &r, &n), 0);
    assert_int_equal(r[0].status, MM_EUNKNOWN_MESSAGE);
    mm_client_free_result(fx->c, r);

    /* Both a label and a key, or neither: invalid. */
    assert_int_equal(mm_client_send(fx->c, "a", "b", "echo", "1", 1, &r, &n),
                     MM_EINVAL);
    assert_int_equal(mm_client_send(fx->c, NULL, NULL, "echo", "1", 1, &r, &n),
                     MM_EINVAL);
}

static void
test_client_send_key_reaches_every_worker(void **state)
{
    struct fx *fx = *state;
    mm_send_result *r;
    size_t n;
    assert_int_equal(
        mm_client_send(fx->c, NULL, "workers", "echo", "\"hi\"", 4, &r, &n), 0);
    assert_int_equal(n, 3);
    int labels = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r[i].status, 0);
        assert_int_equal(r[i].len, 4);
        assert_memory_equal(r[i].body, "\"hi\"", 4);
        assert_int_equal(strncmp(r[i].label, "worker/", 7), 0);
        labels |= 1 << (r[i].label[7] - '0');
        assert_true(r[i].ep.actor != 0);
    }
    assert_int_equal(labels, 7);
    mm_client_free_result(fx->c, r);

    assert_int_equal(
        mm_client_send(fx->c, NULL, "nobody", "echo", "1", 1, &r, &n), 0);
    assert_int_equal(n, 0);
    mm_client_free_result(fx->c, r);
}

struct watch_st {
    mm_node *n;
    int kinds[16];
    int nkinds;
    char label[64];
    mm_endpoint ep;
};

static int
watch_cb(void *data, const mm_listing_event *ev)
{
    struct watch_st *w = data;
    if (w->nkinds < 16) w->kinds[w->nkinds++] = ev->kind;
    if (ev->kind == MM_LISTING_SYNCED) {
        mm_spawn_opts o;
        mm_spawn_opts_init(&o);
        o.label = "late/1";
        assert_int_equal(mm_spawn(w->n, "echo", &o, &w->ep), 0);
    } else if (ev->kind == MM_LISTING_ADDED && ev->label &&
               strcmp(ev->label, "late/1") == 0) {
        snprintf(w->label, sizeof(w->label), "%s", ev->label);
        assert_true(mm_endpoint_equal(&ev->ep, &w->ep));
        assert_int_equal(mm_actor_stop(w->n, &w->ep), 0);
    } else if (ev->kind == MM_LISTING_REMOVED) {
        assert_string_equal(ev->label, "late/1");
        assert_int_equal(ev->reason, MM_REASON_STOPPED);
        return 1;
    }
    return 0;
}

static void
test_client_watch_sees_added_then_removed(void **state)
{
    struct fx *fx = *state;
    struct watch_st w;
    memset(&w, 0, sizeof(w));
    w.n = fx->n;
    assert_int_equal(mm_client_watch(fx->c, NULL, "late/", 5000, watch_cb, &w),
                     0);
    assert_int_equal(w.nkinds, 3);
    assert_int_equal(w.kinds[0], MM_LISTING_SYNCED);
    assert_int_equal(w.kinds[1], MM_LISTING_ADDED);
    assert_int_equal(w.kinds[2], MM_LISTING_REMOVED);
    assert_string_equal(w.label, "late/1");

    /* The session is still usable after a watch. */
    mm_member_info *m;
    size_t n;
    assert_int_equal(mm_client_members(fx->c, &m, &n), 0);
    mm_client_free_result(fx->c, m);
}

static int
idle_cb(void *data, const mm_listing_event *ev)
{
    int *events = data;
    (*events)++;
    (void)ev;
    return 0;
}

static void
test_client_watch_idle_timeout(void **state)
{
    struct fx *fx = *state;
    int events = 0;
    assert_int_equal(
        mm_client_watch(fx->c, "workers", NULL, 200, idle_cb, &events),
        MM_ETIMEOUT);
    assert_int_equal(events, 4); /* three workers, then SYNCED */
}

static void
test_client_oplog_shows_registrations(void **state)
{
    struct fx *fx = *state;
    mm_oplog_origin *o;
    size_t n;
    assert_int_equal(mm_client_oplog(fx->c, NULL, &o, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(o[0].id, mm_node_id(fx->n));
    assert_string_equal(o[0].name, "seed");
    assert_int_equal(o[0].generation, mm_node_generation(fx->n));
    assert_true(o[0].nops >= 4);
    assert_int_equal(o[0].head, o[0].ops[o[0].nops - 1].seq);
    assert_int_equal(o[0].ops[0].seq, 1);
    assert_string_equal(o[0].ops[0].kind, "register");
    assert_string_equal(o[0].ops[0].label, "counter/seed");
    assert_string_equal(o[0].ops[0].type, "counter");
    assert_true(o[0].ops[0].hlc > (1ull << 53)); /* exact, not a double */
    mm_client_free_result(fx->c, o);

    assert_int_equal(mm_client_oplog(fx->c, "0123", &o, &n), MM_ENOTFOUND);
    assert_int_equal(mm_client_oplog(fx->c, "xyz", &o, &n), MM_EINVAL);
}

static void
test_client_force_leave_errors(void **state)
{
    struct fx *fx = *state;
    char *name, *id, *was;
    assert_int_equal(mm_client_force_leave(fx->c, "ghost", &name, &id, &was),
                     MM_ENOTFOUND);
    assert_string_equal(mm_client_error_text(fx->c), "no member 'ghost'");
    assert_int_equal(mm_client_force_leave(fx->c, "seed", &name, &id, &was),
                     MM_EINVAL);
}

static void
test_client_connect_errors(void **state)
{
    struct fx *fx = *state;
    mm_client *c;
    /* A different cluster key: refused. */
    char other[320];
    snprintf(other, sizeof(other), "%s/other", fx->dir);
    assert_int_equal(mm_cluster_keygen(other), 0);
    assert_int_equal(client_up(fx, other, 5000, &c), MM_EUNAUTHORIZED);
    assert_null(c);
    assert_non_null(strstr(mm_client_error_text(NULL), "refused"));
    /* A loose key file: a key problem, before any traffic. */
    assert_int_equal(chmod(other, 0644), 0);
    assert_int_equal(client_up(fx, other, 5000, &c), MM_EKEY);
    assert_non_null(strstr(mm_client_error_text(NULL), "mode 644"));
    /* Nobody there: unreachable within the timeout. */
    const char *seed = "127.0.0.1:9";
    mm_client_config cfg;
    mm_client_config_init(&cfg);
    cfg.seeds = &seed;
    cfg.nseeds = 1;
    cfg.cluster_key_file = fx->key;
    cfg.state_dir = fx->state;
    cfg.timeout_ms = 300;
    assert_int_equal(mm_client_connect(&c, &cfg), MM_EUNREACHABLE);
    assert_string_equal(mm_client_error_text(NULL),
                        "no answer from seed 127.0.0.1:9");
}

/* Two sessions at once from one identity, as two CLI processes sharing
 * $XDG_STATE_HOME/murmer-cli (a watch in one terminal, a send in another):
 * the seed must keep both connections.  Needs the transport to exempt
 * client-role connections from its one-connection-per-peer rule. */
static void
test_client_two_sessions_share_the_identity(void **state)
{
    struct fx *fx = *state;
    mm_client *c2;
    assert_int_equal(client_up(fx, fx->key, 5000, &c2), 0);
    mm_member_info *m;
    size_t n;
    assert_int_equal(mm_client_members(c2, &m, &n), 0);
    mm_client_free_result(c2, m);
    mm_client_close(c2);
}

/* |n| labels "<prefix>NNNN" padded to about |len| bytes, on counter/seed;
 * the even ones checked in under |key|. */
static void
register_many(mm_node *n, const char *prefix, int count, size_t len,
              const char *key)
{
    mm_endpoint ep;
    assert_int_equal(mm_lookup(n, "counter/seed", &ep), 0);
    char pad[256];
    memset(pad, 'x', sizeof(pad));
    pad[len < sizeof(pad) ? len : sizeof(pad) - 1] = '\0';
    for (int i = 0; i < count; i++) {
        char label[300];
        snprintf(label, sizeof(label), "%s%04d-%s", prefix, i, pad);
        assert_int_equal(mm_register(n, label, &ep, MM_VIS_PUBLIC), 0);
        if (key && i % 2 == 0) assert_int_equal(mm_check_in(n, label, key), 0);
    }
}

/* LOOKUP by prefix or key answers pages with a cursor; the library follows
 * it and sorts by label, so a caller sees the whole listing as before. */
static void
test_client_lookup_pages_follow_the_cursor(void **state)
{
    struct fx *fx = *state;
    register_many(fx->n, "page/", 600, 8, "pk");
    mm_actor_info *a;
    size_t n;
    assert_int_equal(mm_client_lookup(fx->c, NULL, "page/", NULL, 0, 0, &a, &n),
                     0);
    assert_int_equal(n, 600);
    for (size_t i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "page/%04zu-", i);
        assert_int_equal(strncmp(a[i].label, want, strlen(want)), 0);
    }
    mm_client_free_result(fx->c, a);
    assert_int_equal(mm_client_lookup(fx->c, NULL, NULL, "pk", 0, 0, &a, &n),
                     0);
    assert_int_equal(n, 300);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(a[i - 1].label, a[i].label) < 0);
    mm_client_free_result(fx->c, a);

    /* One page by hand: at most "limit" entries, and a cursor. */
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "prefix", "page/");
    cJSON_AddNumberToObject(req, "limit", 10);
    cJSON *resp;
    assert_int_equal(mm__client_request(fx->c, MM_CTRL_LOOKUP, req,
                                        mm__client_deadline(fx->c), &resp),
                     0);
    int got = cJSON_GetArraySize(cJSON_GetObjectItem(resp, "actors"));
    assert_true(got >= 1 && got <= 16); /* whole bucket groups */
    assert_true(cJSON_IsString(cJSON_GetObjectItem(resp, "cursor")));
    cJSON_Delete(resp);
    cJSON_AddStringToObject(req, "cursor", "zz");
    assert_int_equal(mm__client_request(fx->c, MM_CTRL_LOOKUP, req,
                                        mm__client_deadline(fx->c), &resp),
                     MM_EINVAL);
    cJSON_Delete(req);
    /* Nothing anywhere: not_found, as before. */
    assert_int_equal(mm_client_lookup(fx->c, NULL, NULL, "nokey", 0, 0, &a, &n),
                     MM_ENOTFOUND);
    assert_string_equal(mm_client_error_text(fx->c),
                        "no actor checked in under key 'nokey'");
}

/* OPLOG answers pages of records; an origin cut between pages is merged
 * back by the library: every op once, in order. */
static void
test_client_oplog_pages_follow_the_cursor(void **state)
{
    struct fx *fx = *state;
    register_many(fx->n, "op/", 600, 8, NULL);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddNumberToObject(req, "limit", 5);
    cJSON *resp;
    assert_int_equal(mm__client_request(fx->c, MM_CTRL_OPLOG, req,
                                        mm__client_deadline(fx->c), &resp),
                     0);
    cJSON *org = cJSON_GetArrayItem(cJSON_GetObjectItem(resp, "origins"), 0);
    assert_non_null(org);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(org, "ops")), 5);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(resp, "cursor")));
    cJSON_Delete(resp);
    cJSON_Delete(req);

    mm_oplog_origin *o;
    size_t n;
    assert_int_equal(mm_client_oplog(fx->c, NULL, &o, &n), 0);
    assert_int_equal(n, 1);
    assert_true(o[0].nops >= 600);
    for (size_t i = 1; i < o[0].nops; i++)
        assert_int_equal(o[0].ops[i].seq, o[0].ops[i - 1].seq + 1);
    assert_int_equal(o[0].ops[o[0].nops - 1].seq, o[0].head);
    mm_client_free_result(fx->c, o);
}

/* 200 LOOKUPs pipelined, each answer ~45 KB: far more than the connection
 * may hold unacknowledged.  Every one is answered (a page or `overloaded`,
 * none lost to the send cap), and the session goes on. */
static void
test_client_pipelined_lookups_answered_or_overloaded(void **state)
{
    struct fx *fx = *state;
    register_many(fx->n, "big/", 150, 200, NULL);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "prefix", "big/");
    size_t counts[3];
    uint64_t t0 = now_ms();
    assert_int_equal(mm__client_pipeline(fx->c, MM_CTRL_LOOKUP, req, 200, 200,
                                         now_ms() + 60000, counts),
                     0);
    cJSON_Delete(req);
    print_message("200 LOOKUPs: %zu pages, %zu overloaded, %llu ms\n",
                  counts[0], counts[1], (unsigned long long)(now_ms() - t0));
    assert_int_equal(counts[0] + counts[1], 200);
    assert_int_equal(counts[2], 0);
    assert_true(counts[1] > 0);
    mm_member_info *m;
    size_t n;
    assert_int_equal(mm_client_members(fx->c, &m, &n), 0);
    assert_int_equal(n, 1);
    mm_client_free_result(fx->c, m);
}

/* Waiting lookups and subscriptions are capped per connection
 * (`overloaded` past the cap) and end with it. */
static void
test_client_waiters_and_subscriptions_capped(void **state)
{
    struct fx *fx = *state;
    mm_client *c2;
    assert_int_equal(client_up(fx, fx->key, 5000, &c2), 0);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "label", "late/one");
    cJSON_AddNumberToObject(req, "wait_ms", 600000);
    size_t counts[3];
    size_t extra = 6, n = MM_SESSION_WAITERS_MAX + extra;
    assert_int_equal(mm__client_pipeline(c2, MM_CTRL_LOOKUP, req, n, extra,
                                         now_ms() + 10000, counts),
                     0);
    cJSON_Delete(req);
    assert_int_equal(counts[1], extra);
    assert_int_equal(counts[0] + counts[2], 0);

    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "prefix", "worker/");
    n = MM_SESSION_SUBS_MAX + 1;
    assert_int_equal(mm__client_pipeline(c2, MM_CTRL_WATCH, req, n, n,
                                         now_ms() + 10000, counts),
                     0);
    cJSON_Delete(req);
    assert_int_equal(counts[0], MM_SESSION_SUBS_MAX);
    assert_int_equal(counts[1], 1);
    mm_client_close(c2);

    /* The label appears after the waiters' connection went: nothing is
     * answered to it (ASan sees any use after free), and another client's
     * wait for it works. */
    mm_endpoint ep;
    assert_int_equal(mm_lookup(fx->n, "counter/seed", &ep), 0);
    assert_int_equal(mm_register(fx->n, "late/one", &ep, MM_VIS_PUBLIC), 0);
    mm_actor_info *a;
    assert_int_equal(
        mm_client_lookup(fx->c, "late/one", NULL, NULL, 0, 1000, &a, &n), 0);
    assert_int_equal(n, 1);
    mm_client_free_result(fx->c, a);
}

/* Waits (bounded) until the seed lists |want| members. */
static void
wait_members(struct fx *fx, size_t want)
{
    for (int i = 0; i < 400; i++) {
        mm_member_info *m;
        size_t n = 0;
        assert_int_equal(mm_client_members(fx->c, &m, &n), 0);
        mm_client_free_result(fx->c, m);
        if (n >= want) return;
        usleep(25000);
    }
    fail_msg("the seed never listed %zu members", want);
}

struct follow_seen {
    struct fx *fx;
    mm_node *two;
    char dir[300];
    char event[16], name[32];
};

/* Starts the second node once the follow is in place; stops at the first
 * member event. */
static int
follow_one_cb(void *data, const char *event, const mm_member_info *m)
{
    struct follow_seen *s = data;
    if (m == NULL) {
        assert_string_equal(event, "synced");
        assert_null(s->two);
        s->two =
            nodefix_up(&(struct nodefix_opts){.name = "two",
                                              .dir = s->dir,
                                              .listen = "127.0.0.1:0",
                                              .key = s->fx->key,
                                              .join = mm_node_addr(s->fx->n),
                                              .no_mdns = 1});
        return 0;
    }
    snprintf(s->event, sizeof(s->event), "%s", event);
    snprintf(s->name, sizeof(s->name), "%s", m->name);
    return 1;
}

/* SPAWN and STOP through the seed, on itself and relayed to a second
 * node; their refusals; a typed LOOKUP. */
static void
test_client_spawn_stop_typed_lookup(void **state)
{
    struct fx *fx = *state;
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/two", fx->dir);
    mkdir(dir, 0700);
    mm_node *two =
        nodefix_up(&(struct nodefix_opts){.name = "two",
                                          .dir = dir,
                                          .listen = "127.0.0.1:0",
                                          .key = fx->key,
                                          .join = mm_node_addr(fx->n),
                                          .builtins = 1,
                                          .no_mdns = 1});
    wait_members(fx, 2);
    char *node = NULL;
    mm_endpoint ep, here;
    mm_client_spawn_req r = {.type = "counter",
                             .label = "sp/1",
                             .on = "two",
                             .arg_json = "7",
                             .policy = "transient"};
    assert_int_equal(mm_client_spawn(fx->c, &r, &node, &ep), 0);
    assert_string_equal(node, "two");
    mm_client_free_result(fx->c, node);
    assert_int_equal(mm_lookup_typed(two, "sp/1", "counter", &here), 0);
    assert_true(mm_endpoint_equal(&here, &ep));
    /* On the seed itself (the fewest actors would pick two: --on). */
    mm_client_spawn_req r2 = {.type = "echo", .label = "sp/2", .on = "seed"};
    assert_int_equal(mm_client_spawn(fx->c, &r2, &node, &ep), 0);
    assert_string_equal(node, "seed");
    mm_client_free_result(fx->c, node);
    /* Refusals. */
    mm_client_spawn_req bad = {.type = "nosuch", .label = "sp/3", .on = "two"};
    assert_int_equal(mm_client_spawn(fx->c, &bad, &node, &ep), MM_ENOTFOUND);
    assert_string_equal(mm_client_error_text(fx->c),
                        "no actor type 'nosuch' on node two");
    bad.type = "echo";
    bad.label = "sp/2";
    assert_int_equal(mm_client_spawn(fx->c, &bad, &node, &ep), MM_EEXISTS);
    bad.label = "sp/3";
    bad.arg_json = "{nope";
    assert_int_equal(mm_client_spawn(fx->c, &bad, &node, &ep), MM_EDECODE);
    bad.arg_json = NULL;
    bad.policy = "sometimes";
    assert_int_equal(mm_client_spawn(fx->c, &bad, &node, &ep), MM_EINVAL);
    bad.policy = NULL;
    bad.on = NULL;
    bad.where = "zone=nowhere";
    assert_int_equal(mm_client_spawn(fx->c, &bad, &node, &ep), MM_ENOTFOUND);
    assert_string_equal(mm_client_error_text(fx->c),
                        "no alive member has tag zone=nowhere");
    /* A typed lookup, through the session (sp/2 is the seed's own). */
    mm_actor_info *a;
    size_t n;
    assert_int_equal(
        mm_client_lookup_typed(fx->c, "sp/2", NULL, NULL, "echo", 0, 0, &a, &n),
        0);
    assert_int_equal(n, 1);
    mm_client_free_result(fx->c, a);
    assert_int_equal(
        mm_client_lookup_typed(fx->c, "sp/2", NULL, NULL, "kv", 0, 0, &a, &n),
        MM_ETYPE_MISMATCH);
    /* Stop: the relayed one, then the seed's own; then they are gone. */
    assert_int_equal(mm_client_stop(fx->c, "sp/2", &node, &ep), 0);
    assert_string_equal(node, "seed");
    mm_client_free_result(fx->c, node);
    for (int i = 0; i < 400 && mm_lookup(fx->n, "sp/1", NULL) != 0; i++)
        usleep(25000); /* sp/1 replicated to the seed */
    assert_int_equal(mm_client_stop(fx->c, "sp/1", &node, &ep), 0);
    assert_string_equal(node, "two");
    mm_client_free_result(fx->c, node);
    for (int i = 0; i < 400 && mm_lookup(two, "sp/1", NULL) == 0; i++)
        usleep(25000);
    assert_int_equal(mm_lookup(two, "sp/1", NULL), MM_ENOTFOUND);
    assert_int_equal(mm_client_stop(fx->c, "sp/9", &node, &ep), MM_ENOTFOUND);
    nodefix_down(two);
}

/* PARTITIONS, PING, ECHO and MEMBERS_FOLLOW with a second node: views,
 * round trips, a join event; then the second node goes and PINGs to it
 * wait: at most MM_SESSION_GATHERS_MAX of them, the rest `overloaded`. */
static void
test_client_partitions_ping_follow(void **state)
{
    struct fx *fx = *state;
    mm_partition_row *r;
    mm_ping_path *p;
    const char *target;
    size_t n;

    /* The seed alone: its own view, in agreement with itself. */
    assert_int_equal(mm_client_partitions(fx->c, &r, &n), 0);
    assert_int_equal(n, 1);
    assert_null(r[0].error);
    assert_int_equal(r[0].nview, 1);
    assert_string_equal(r[0].view[0].state, "alive");
    mm_client_free_result(fx->c, r);
    assert_int_equal(mm_client_ping(fx->c, "seed", 0, &target, &p, &n),
                     MM_EINVAL);
    assert_int_equal(mm_client_ping(fx->c, "nobody", 0, &target, &p, &n),
                     MM_ENOTFOUND);
    assert_int_equal(mm_client_ping(fx->c, "nobody", 4, &target, &p, &n),
                     MM_EINVAL);
    size_t counts[3];
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "target", mm_node_id(fx->n));
    assert_int_equal(mm__client_pipeline(fx->c, MM_CTRL_PROBE, req, 1, 1,
                                         now_ms() + 5000, counts),
                     0);
    assert_int_equal(counts[2], 1); /* a client may not PROBE */
    cJSON_Delete(req);

    /* A second node joins while a follower waits for its event. */
    mm_client *cf;
    assert_int_equal(client_up(fx, fx->key, 5000, &cf), 0);
    req = cJSON_CreateObject();
    assert_int_equal(mm__client_pipeline(cf, MM_CTRL_MEMBERS_FOLLOW, req, 1, 1,
                                         now_ms() + 5000, counts),
                     0);
    assert_int_equal(counts[0], 1);
    cJSON_Delete(req);
    mm_client_close(cf);
    assert_int_equal(client_up(fx, fx->key, 10000, &cf), 0);
    struct follow_seen seen;
    memset(&seen, 0, sizeof(seen));
    seen.fx = fx;
    snprintf(seen.dir, sizeof(seen.dir), "%s/two", fx->dir);
    mkdir(seen.dir, 0700);
    int rc = mm_client_members_follow(cf, 10000, follow_one_cb, &seen);
    assert_int_equal(rc, 0);
    assert_non_null(seen.two);
    mm_node *two = seen.two;
    assert_string_equal(seen.name, "two");
    assert_string_equal(seen.event, "join");
    mm_client_close(cf);
    wait_members(fx, 2);

    assert_int_equal(mm_client_partitions(fx->c, &r, &n), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_null(r[i].error);
        assert_int_equal(r[i].nview, 2);
    }
    mm_client_free_result(fx->c, r);
    assert_int_equal(mm_client_ping(fx->c, "two", 3, &target, &p, &n), 0);
    assert_string_equal(target, "two");
    assert_int_equal(n, 1); /* no other member to relay */
    assert_string_equal(p[0].via, "");
    assert_null(p[0].error);
    assert_true(p[0].rtt_us > 0);
    mm_client_free_result(fx->c, p);

    /* The second node goes: PINGs to it wait for an answer that does not
     * come, each for its timeout_ms; past the cap they are overloaded. */
    nodefix_down(two);
    mm_client *c2;
    assert_int_equal(client_up(fx, fx->key, 5000, &c2), 0);
    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "node", "two");
    cJSON_AddNumberToObject(req, "timeout_ms", 3000);
    size_t extra = 5, total = MM_SESSION_GATHERS_MAX + extra;
    assert_int_equal(mm__client_pipeline(c2, MM_CTRL_PING, req, total, extra,
                                         now_ms() + 2500, counts),
                     0);
    assert_int_equal(counts[1], extra);
    assert_int_equal(counts[0] + counts[2], 0);
    cJSON_Delete(req);
    /* Their connection goes before they end: nobody is answered (ASan),
     * and once they are over the node takes new ones. */
    mm_client_close(c2);
    for (int i = 0; i < 200; i++) {
        rc = mm_client_ping(fx->c, "two", 0, &target, &p, &n);
        if (rc != MM_EOVERLOADED) break;
        usleep(50000);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 1);
    assert_non_null(p[0].error);
    mm_client_free_result(fx->c, p);
}

/* Key rotation against one node: list, install, use, remove, the refusals
 * and the member-only op. */
static void
test_client_keys_steps_and_refusals(void **state)
{
    struct fx *fx = *state;
    mm_keys_result *r;
    assert_int_equal(mm_client_keys(fx->c, "list", NULL, &r), 0);
    assert_int_equal(r->applied, 1);
    assert_int_equal(r->total, 1);
    assert_int_equal(r->nkeys, 1);
    assert_int_equal(r->keys[0].members, 1);
    assert_int_equal(r->keys[0].primary, 1);
    assert_int_equal(r->nfailed, 0);
    char fp1[17], err[256];
    assert_int_equal(mm_key_file_fingerprint(fx->key, fp1, err, sizeof(err)),
                     0);
    assert_string_equal(r->keys[0].fingerprint, fp1);
    mm_client_free_result(fx->c, r);

    char k2[320];
    snprintf(k2, sizeof(k2), "%s/k2", fx->dir);
    assert_int_equal(mm_cluster_keygen(k2), 0);
    assert_int_equal(mm_client_keys(fx->c, "install", k2, &r), 0);
    assert_int_equal(r->applied, 1);
    assert_int_equal(r->total, 1);
    char fp2[17];
    assert_int_equal(mm_key_file_fingerprint(k2, fp2, err, sizeof(err)), 0);
    assert_string_equal(r->fingerprint, fp2);
    mm_client_free_result(fx->c, r);
    /* Saved in the node's data dir. */
    char saved[400];
    snprintf(saved, sizeof(saved), "%s/seed/keyring", fx->dir);
    struct stat st;
    assert_int_equal(stat(saved, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* The primary cannot go; use k2 first, then k1 can. */
    assert_int_equal(mm_client_keys(fx->c, "remove", fx->key, &r), MM_EINVAL);
    assert_non_null(strstr(mm_client_error_text(fx->c), "is the primary key"));
    assert_int_equal(mm_client_keys(fx->c, "use", k2, &r), 0);
    mm_client_free_result(fx->c, r);
    assert_int_equal(mm_client_keys(fx->c, "remove", fx->key, &r), 0);
    assert_int_equal(r->applied, 1);
    mm_client_free_result(fx->c, r);
    assert_int_equal(mm_client_keys(fx->c, "list", NULL, &r), 0);
    assert_int_equal(r->nkeys, 1);
    assert_string_equal(r->keys[0].fingerprint, fp2);
    mm_client_free_result(fx->c, r);
    /* The old key no longer opens a session; the new one does. */
    mm_client *c2;
    assert_int_equal(client_up(fx, fx->key, 2000, &c2), MM_EUNAUTHORIZED);
    assert_int_equal(client_up(fx, k2, 2000, &c2), 0);
    mm_client_close(c2);

    /* A key file that is not one: MM_EKEY before any request. */
    assert_int_equal(mm_client_keys(fx->c, "install", fx->dir, &r), MM_EKEY);
    /* Bad actions, and KEYS_MEMBER from a client session even with the
     * cluster key: refused. */
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "action", "rotate");
    cJSON *resp = NULL;
    assert_int_equal(mm__client_request(fx->c, MM_CTRL_KEYS, req,
                                        mm__client_deadline(fx->c), &resp),
                     MM_EINVAL);
    cJSON_ReplaceItemInObject(req, "action", cJSON_CreateString("list"));
    assert_int_equal(mm__client_request(fx->c, MM_CTRL_KEYS_MEMBER, req,
                                        mm__client_deadline(fx->c), &resp),
                     MM_EUNAUTHORIZED);
    cJSON_Delete(req);
}

/* A follower that stops reading while its node writes more than a
 * connection may queue (MM_SESSION_SEND_HIGH) is ended by the node with
 * "overloaded: the follower fell behind", not queued for without bound:
 * the follow returns MM_ECLOSED with that text once the client reads
 * again, and the node keeps serving.  Bounded: a follow that is never cut
 * off ends when it has read every event, or is interrupted after 30 s. */
#define FLOOD_ACTORS 12000

struct flood {
    mm_node *n;
    int spawned;
    size_t events;
    atomic_int seen; /* the follow has its first event */
    mm_client *c;
    sem_t done; /* the follow returned */
};

/* A follow starts at the next op: registers one label every 10 ms until
 * the follower has seen one (at most 5 s). */
static void *
flood_trigger(void *data)
{
    struct flood *f = data;
    char label[32];
    for (int i = 0; i < 500 && !atomic_load(&f->seen); i++) {
        snprintf(label, sizeof(label), "trigger/%d", i);
        mm_spawn_opts o;
        mm_spawn_opts_init(&o);
        o.label = label;
        if (mm_spawn(f->n, "echo", &o, NULL) != 0) break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* The bound of the test: a follow never cut off is interrupted. */
    if (sem_wait_s(&f->done, 30) != 0) mm_client_interrupt(f->c);
    return NULL;
}

static int
flood_cb(void *data, const char *origin, uint64_t gen, const mm_oplog_op *op)
{
    struct flood *f = data;
    (void)origin;
    (void)gen;
    (void)op;
    f->events++;
    /* Every flood event read: nobody cut the follow off (a failure). */
    if (f->spawned) return f->events >= FLOOD_ACTORS;
    f->spawned = 1;
    atomic_store(&f->seen, 1);
    /* Inside the callback the client reads nothing: the node's answers
     * back up while it registers FLOOD_ACTORS labels of ~200 bytes. */
    char label[160];
    for (int i = 0; i < FLOOD_ACTORS; i++) {
        snprintf(label, sizeof(label), "flood/%05d/%0120d", i, i);
        mm_spawn_opts o;
        mm_spawn_opts_init(&o);
        o.label = label;
        assert_int_equal(mm_spawn(f->n, "echo", &o, NULL), 0);
    }
    return 0;
}

static void
test_client_follower_that_falls_behind_is_ended(void **state)
{
    struct fx *fx = *state;
    struct flood f = {.n = fx->n, .c = fx->c};
    atomic_init(&f.seen, 0);
    assert_int_equal(sem_init(&f.done, 0, 0), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flood_trigger, &f), 0);
    int rc = mm_client_oplog_follow(fx->c, NULL, flood_cb, &f);
    sem_post(&f.done);
    pthread_join(th, NULL);
    sem_destroy(&f.done);
    assert_int_equal(rc, MM_ECLOSED);
    assert_non_null(strstr(mm_client_error_text(fx->c), "fell behind"));
    /* Far fewer events than were written: it was cut off, not served. */
    assert_true(f.events < FLOOD_ACTORS);
    /* The node still answers a new session. */
    mm_client *c2 = NULL;
    assert_int_equal(client_up(fx, fx->key, 5000, &c2), 0);
    mm_member_info *m;
    size_t n;
    assert_int_equal(mm_client_members(c2, &m, &n), 0);
    assert_int_equal(n, 1);
    mm_client_free_result(c2, m);
    mm_client_close(c2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_partitions_ping_follow,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_connect_names_the_seed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_client_members_lists_the_seed_not_the_client, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_client_lookup_by_label_prefix_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_send_one_label, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_client_send_key_reaches_every_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_client_watch_sees_added_then_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_watch_idle_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_client_oplog_shows_registrations,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_spawn_stop_typed_lookup,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_force_leave_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_client_connect_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_client_two_sessions_share_the_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_client_lookup_pages_follow_the_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_client_oplog_pages_follow_the_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_client_pipelined_lookups_answered_or_overloaded, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_client_waiters_and_subscriptions_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_client_follower_that_falls_behind_is_ended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_keys_steps_and_refusals,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
