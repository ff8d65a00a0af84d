/*
 * slow_plugin.c — a test actor type whose handler holds its shard: `nap`
 * with a JSON number N sleeps N ms (default 1000, at most 10000), then
 * replies N.  It logs "slow: nap N ms" to stderr as it starts, so a test
 * can wait for it.  Tests only: real handlers must never block.
 */
#include <murmer.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PLUGIN_EXPORT __attribute__((visibility("default")))

struct slow_state {
    long naps;
};

static int
slow_nap(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct slow_state *s = state;
    size_t len = 0;
    const char *data = mm_msg_data(msg, &len);
    long ms = data && len ? strtol(data, NULL, 10) : 0;
    if (ms <= 0) ms = 1000;
    if (ms > 10000) ms = 10000;
    fprintf(stderr, "slow: nap %ld ms\n", ms);
    fflush(stderr);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    s->naps++;
    return mm_reply_jsonf(ctx, "%ld", ms);
}

MM_ACTOR_TYPE(slow, struct slow_state, NULL, NULL, MM_HANDLER("nap", slow_nap));

PLUGIN_EXPORT const uint32_t mm_plugin_abi = MM_PLUGIN_ABI;

PLUGIN_EXPORT int mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi);

PLUGIN_EXPORT int
mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi)
{
    if (abi != MM_PLUGIN_ABI) return MM_EINVAL;
    return mm_plugin_register_type(ctx, &slow_type);
}
