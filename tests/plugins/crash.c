/*
 * crash.c — a test actor that crashes on demand, for the restart-policy
 * tests (tests/bats/26-spawn.bats).
 *
 *   murmer start --plugin build/plugins/crash.so ...
 *   murmer spawn crasher k/1 --policy permanent
 *
 * The `crasher` actor: `bump` adds one to its count and replies the count;
 * `get` replies the count; `crash` marks the turn failed (mm_fail) and
 * returns the failure, which the supervisor treats as a crash: the caller
 * gets handler_error, and the actor is restarted with a fresh (zeroed)
 * state under the permanent and transient policies, removed under the
 * temporary one.  `quit` replies "bye" and stops the actor normally
 * (MM_STOP): restarted under the permanent policy only.
 */
#include <murmer.h>

#define PLUGIN_EXPORT __attribute__((visibility("default")))

struct crasher {
    long count;
};

static int
crasher_bump(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct crasher *s = state;
    (void)msg;
    return mm_reply_jsonf(ctx, "%ld", ++s->count) < 0 ? -1 : 0;
}

static int
crasher_get(mm_ctx *ctx, void *state, mm_msg *msg)
{
    struct crasher *s = state;
    (void)msg;
    return mm_reply_jsonf(ctx, "%ld", s->count) < 0 ? -1 : 0;
}

static int
crasher_crash(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)state;
    (void)msg;
    return mm_fail(ctx, "crash on demand");
}

static int
crasher_quit(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)state;
    (void)msg;
    return mm_reply_json(ctx, "\"bye\"") < 0 ? -1 : MM_STOP;
}

MM_ACTOR_TYPE(crasher, struct crasher, NULL, NULL,
              MM_HANDLER("bump", crasher_bump), MM_HANDLER("get", crasher_get),
              MM_HANDLER("crash", crasher_crash),
              MM_HANDLER("quit", crasher_quit));

PLUGIN_EXPORT const uint32_t mm_plugin_abi = MM_PLUGIN_ABI;

PLUGIN_EXPORT int mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi);

PLUGIN_EXPORT int
mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi)
{
    if (abi != MM_PLUGIN_ABI) return MM_EINVAL;
    return mm_plugin_register_type(ctx, &crasher_type);
}
