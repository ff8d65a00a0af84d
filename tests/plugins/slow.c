/*
 * slow.c — test actors whose handlers hold their shard, for the tests and
 * the hostile-peer bench (bench/hostile.sh).  Tests only: real handlers
 * must never block.
 *
 *   murmer start --shards 3 --plugin build/plugins/slow.so \
 *       --actor 'slowboot=slow:{"ms":1000,"labels":2000,"pad":100}' ...
 *
 * The `slow` actor:
 *   - `nap` with a JSON number N sleeps N ms (default 1000, at most
 *     10000), then replies N; it logs "slow: nap N ms" (through the
 *     library's log sink, which never blocks) as it starts, so that a test
 *     can wait for it; `chatter` with a JSON number N (at most 100000)
 *     logs N lines "slow: chatter line I of N" on the loop, then replies
 *     N; `ping` replies "pong";
 *   - when started with a JSON argument, it registers |labels| extra
 *     labels "fill/<i>-xxx…" (|pad| bytes of padding each; a label is at
 *     most 255 bytes) on itself, so that a LOOKUP or WATCH of the prefix
 *     "fill/" has a large answer, and spawns two `slow_worker` actors on
 *     the node's last shard (never on the network shard 0 when the node
 *     has more than one): "slow/<node>", whose "work" handler sleeps |ms|
 *     milliseconds per message, and "hold/<node>", whose "hold" handler
 *     defers the reply and keeps the obligation until the actor stops (the
 *     caller waits out its deadline).
 */
#include <murmer.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PLUGIN_EXPORT __attribute__((visibility("default")))

struct held {
    struct held *next;
    mm_defer *d;
};

struct worker_state {
    unsigned ms;
    struct held *held;
};

/* The unsigned value of "name": in |json|, or |dflt|. */
static unsigned
arg_uint(const char *json, const char *name, unsigned dflt)
{
    char key[64];
    snprintf(key, sizeof(key), "\"%s\":", name);
    const char *p = json ? strstr(json, key) : NULL;
    if (!p) return dflt;
    return (unsigned)strtoul(p + strlen(key), NULL, 10);
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int
worker_start(mm_ctx *ctx, void *state)
{
    struct worker_state *s = state;
    s->ms = arg_uint(mm_ctx_arg_json(ctx), "ms", 1000);
    return 0;
}

static void
worker_stop(mm_ctx *ctx, void *state, int reason)
{
    struct worker_state *s = state;
    (void)ctx;
    (void)reason;
    while (s->held) {
        struct held *h = s->held;
        s->held = h->next;
        mm_defer_reply(h->d, MM_ECLOSED, NULL);
        free(h);
    }
}

static int
worker_work(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct worker_state *s = state;
    (void)msg;
    sleep_ms(s->ms);
    mm_reply_json(ctx, "\"done\"");
    return 0;
}

static int
worker_hold(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct worker_state *s = state;
    (void)msg;
    struct held *h = malloc(sizeof(*h));
    if (!h) return 0;
    if (!(h->d = mm_ctx_defer(ctx))) {
        free(h);
        return 0;
    }
    h->next = s->held;
    s->held = h;
    return 0;
}

MM_ACTOR_TYPE(slow_worker, struct worker_state, worker_start, worker_stop,
              MM_HANDLER("work", worker_work), MM_HANDLER("hold", worker_hold));

struct boot_state {
    int unused;
};

static int
spawn_worker(mm_node *n, const char *what, const char *arg)
{
    char label[128];
    snprintf(label, sizeof(label), "%s/%s", what, mm_node_name(n));
    mm_spawn_opts o;
    mm_spawn_opts_init(&o);
    o.label = label;
    o.shard = mm_node_shards(n) - 1;
    o.arg_json = arg;
    mm_endpoint ep;
    return mm_spawn(n, "slow_worker", &o, &ep);
}

static int
boot_start(mm_ctx *ctx, void *state)
{
    (void)state;
    mm_node *n = mm_ctx_node(ctx);
    const char *arg = mm_ctx_arg_json(ctx);
    if (arg == NULL) return 0; /* a plain `slow`: nap and ping only */
    unsigned labels = arg_uint(arg, "labels", 0);
    unsigned pad = arg_uint(arg, "pad", 0);
    char label[512];
    if (pad > sizeof(label) - 32) pad = sizeof(label) - 32;
    for (unsigned i = 0; i < labels; i++) {
        int k = snprintf(label, sizeof(label), "fill/%u-", i);
        memset(label + k, 'x', pad);
        label[k + (int)pad] = '\0';
        int rc = mm_register(n, label, mm_ctx_self(ctx), MM_VIS_INTERNAL);
        if (rc != 0) return rc;
    }
    char warg[64];
    snprintf(warg, sizeof(warg), "{\"ms\":%u}", arg_uint(arg, "ms", 1000));
    int rc = spawn_worker(n, "slow", warg);
    if (rc == 0) rc = spawn_worker(n, "hold", warg);
    return rc;
}

static int
boot_ping(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)state;
    (void)msg;
    return mm_reply_json(ctx, "\"pong\"");
}

/* The message's JSON number, |dflt| when there is none or it is not
 * positive, at most |max|. */
static long
msg_number(mm_msg *msg, long dflt, long max)
{
    size_t len = 0;
    const char *data = mm_msg_data(msg, &len);
    long v = data && len ? strtol(data, NULL, 10) : 0;
    return v <= 0 ? dflt : v > max ? max : v;
}

static int
boot_nap(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)state;
    long ms = msg_number(msg, 1000, 10000);
    char line[64];
    snprintf(line, sizeof(line), "slow: nap %ld ms", ms);
    mm_log_line(MM_LOG_WARN, "slow", line);
    sleep_ms((unsigned)ms);
    return mm_reply_jsonf(ctx, "%ld", ms);
}

static int
boot_chatter(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)state;
    long n = msg_number(msg, 0, 100000);
    char line[96];
    for (long i = 1; i <= n; i++) {
        snprintf(line, sizeof(line), "slow: chatter line %ld of %ld", i, n);
        mm_log_line(MM_LOG_WARN, "slow", line);
    }
    return mm_reply_jsonf(ctx, "%ld", n);
}

MM_ACTOR_TYPE(slow, struct boot_state, boot_start, NULL,
              MM_HANDLER("ping", boot_ping), MM_HANDLER("nap", boot_nap),
              MM_HANDLER("chatter", boot_chatter));

PLUGIN_EXPORT const uint32_t mm_plugin_abi = MM_PLUGIN_ABI;

PLUGIN_EXPORT int mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi);

PLUGIN_EXPORT int
mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi)
{
    if (abi != MM_PLUGIN_ABI) return MM_EINVAL;
    int rc = mm_plugin_register_type(ctx, &slow_worker_type);
    if (rc == 0) rc = mm_plugin_register_type(ctx, &slow_type);
    return rc;
}
