/*
 * private_plugin.c — a test actor type for visibility: an actor of type
 * `hideaway` started with a JSON string argument ("secret/1") registers
 * itself under that label as well, privately (MM_VIS_PRIVATE: never leaves
 * the node).  Handlers: `ping` replies "pong"; `hide` with a JSON string
 * label registers the actor under it privately, `show` publicly
 * (internal); both reply true, or the error.  Tests only.
 */
#include <murmer.h>

#include <string.h>

#define PLUGIN_EXPORT __attribute__((visibility("default")))

struct hideaway_state {
    int unused;
};

/* The label of a JSON string "…" (no escapes) into |buf|; 0 or -1. */
static int
label_of(const char *json, size_t len, char *buf, size_t cap)
{
    if (!json || len < 3 || json[0] != '"' || json[len - 1] != '"' ||
        len - 2 >= cap || memchr(json + 1, '\\', len - 2))
        return -1;
    memcpy(buf, json + 1, len - 2);
    buf[len - 2] = '\0';
    return 0;
}

static int
register_as(mm_ctx *ctx, const char *json, size_t len, int vis)
{
    char label[256];
    if (label_of(json, len, label, sizeof(label)) != 0) return MM_EINVAL;
    return mm_register(mm_ctx_node(ctx), label, mm_ctx_self(ctx), vis);
}

static int
hideaway_start(mm_ctx *ctx, void *state)
{
    (void)state;
    const char *arg = mm_ctx_arg_json(ctx);
    if (!arg) return 0;
    return register_as(ctx, arg, strlen(arg), MM_VIS_PRIVATE);
}

static int
hideaway_ping(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)state;
    (void)msg;
    return mm_reply_json(ctx, "\"pong\"");
}

static int
hideaway_reg(mm_ctx *ctx, mm_msg *msg, int vis)
{
    size_t len = 0;
    const char *data = mm_msg_data(msg, &len);
    int rc = register_as(ctx, data, len, vis);
    if (rc != 0) return mm_reply_jsonf(ctx, "\"%s\"", mm_err_name(rc));
    return mm_reply_json(ctx, "true");
}

static int
hideaway_hide(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)state;
    return hideaway_reg(ctx, msg, MM_VIS_PRIVATE);
}

static int
hideaway_show(mm_ctx *ctx, void *state, mm_msg *msg)
{
    (void)state;
    return hideaway_reg(ctx, msg, MM_VIS_INTERNAL);
}

MM_ACTOR_TYPE(hideaway, struct hideaway_state, hideaway_start, NULL,
              MM_HANDLER("ping", hideaway_ping),
              MM_HANDLER("hide", hideaway_hide),
              MM_HANDLER("show", hideaway_show));

PLUGIN_EXPORT const uint32_t mm_plugin_abi = MM_PLUGIN_ABI;

PLUGIN_EXPORT int mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi);

PLUGIN_EXPORT int
mm_plugin_init(mm_plugin_ctx *ctx, uint32_t abi)
{
    if (abi != MM_PLUGIN_ABI) return MM_EINVAL;
    return mm_plugin_register_type(ctx, &hideaway_type);
}
